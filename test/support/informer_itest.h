/*
 * Helpers for informer integration tests: a mirror that event handlers build
 * (what a controller would see through its handlers) and a convergence check
 * that the server, the informer's cache and the mirror hold the same objects
 * at the same resourceVersions. Handlers never call cmocka asserts (they run
 * on the informer's thread); they count nonsense in mirror.bad instead.
 */
#ifndef TEST_INFORMER_ITEST_H
#define TEST_INFORMER_ITEST_H

#include "kube/client.h"
#include "runtime/informer.h"

#include <pthread.h>
#include <stdbool.h>

#define ITEST_MIRROR_MAX 256

typedef struct {
    pthread_mutex_t mu;
    struct {
        char key[300];
        char rv[32];
    } e[ITEST_MIRROR_MAX];
    size_t n;
    char log[32768]; /* "A key\n", "U key\n", "D key\n" in handler order */
    int bad;
} itest_mirror;

/* A zeroed mirror with its lock ready; free with itest_mirror_free. */
itest_mirror *itest_mirror_new(void);
void itest_mirror_free(itest_mirror *m);

/* Handlers that keep m (the ctx) up to date. */
informer_handlers itest_mirror_handlers(itest_mirror *m);

/* True when the handlers reported what ('A', 'U' or 'D') for key. */
bool itest_mirror_logged(itest_mirror *m, char what, const char *key);

/* How many handler calls made no sense (key missing, update changing key). */
int itest_mirror_bad(itest_mirror *m);

/*
 * Polls until the server's objects of r in ns (with the label selector, may be
 * NULL), the informer's cache and the mirror agree on keys and
 * resourceVersions; fails the test with all three after timeout_ms.
 */
void itest_assert_converges(kube_client *c, const kube_resource *r, const char *ns, const char *selector, informer *inf,
                            itest_mirror *m, long timeout_ms);

#endif

/*
 * The handler-built mirror and the convergence check of informer_itest.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "informer_itest.h"
#include "kube_itest.h"

#include "runtime/store.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

itest_mirror *itest_mirror_new(void)
{
    itest_mirror *m = calloc(1, sizeof(*m));
    if (!m)
        fail_msg("out of memory");
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void itest_mirror_free(itest_mirror *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static void bad(itest_mirror *m)
{
    pthread_mutex_lock(&m->mu);
    m->bad++;
    pthread_mutex_unlock(&m->mu);
}

static void mirror_set(itest_mirror *m, const cJSON *obj, char what)
{
    char *key = NULL;
    const char *rv = json_str(obj, "metadata", "resourceVersion", NULL);
    size_t i;
    if (informer_key(&key, obj) < 0) {
        bad(m);
        return;
    }
    pthread_mutex_lock(&m->mu);
    for (i = 0; i < m->n && strcmp(m->e[i].key, key) != 0; i++)
        ;
    if (what == 'D') {
        if (i < m->n)
            m->e[i] = m->e[--m->n];
        else
            m->bad++; /* a delete of something never added */
    } else if (i < ITEST_MIRROR_MAX) {
        if (i == m->n)
            snprintf(m->e[m->n++].key, sizeof(m->e[0].key), "%s", key);
        snprintf(m->e[i].rv, sizeof(m->e[0].rv), "%s", rv ? rv : "");
    }
    snprintf(m->log + strlen(m->log), sizeof(m->log) - strlen(m->log), "%c %s\n", what, key);
    pthread_mutex_unlock(&m->mu);
    free(key);
}

static void on_add(void *ctx, const cJSON *obj)
{
    mirror_set(ctx, obj, 'A');
}

static void on_update(void *ctx, const cJSON *old_obj, const cJSON *new_obj)
{
    itest_mirror *m = ctx;
    char *k1 = NULL, *k2 = NULL;
    if (informer_key(&k1, old_obj) < 0 || informer_key(&k2, new_obj) < 0 || strcmp(k1, k2) != 0)
        bad(m);
    free(k1);
    free(k2);
    mirror_set(m, new_obj, 'U');
}

static void on_delete(void *ctx, const cJSON *obj)
{
    mirror_set(ctx, obj, 'D');
}

informer_handlers itest_mirror_handlers(itest_mirror *m)
{
    return (informer_handlers){on_add, on_update, on_delete, m};
}

bool itest_mirror_logged(itest_mirror *m, char what, const char *key)
{
    char line[320];
    bool found;
    snprintf(line, sizeof(line), "%c %s\n", what, key);
    pthread_mutex_lock(&m->mu);
    found = strstr(m->log, line) != NULL;
    pthread_mutex_unlock(&m->mu);
    return found;
}

int itest_mirror_bad(itest_mirror *m)
{
    int n;
    pthread_mutex_lock(&m->mu);
    n = m->bad;
    pthread_mutex_unlock(&m->mu);
    return n;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *mirror_versions(itest_mirror *m)
{
    char *items[ITEST_MIRROR_MAX];
    size_t len = 1, n;
    char *out;
    pthread_mutex_lock(&m->mu);
    n = m->n;
    for (size_t i = 0; i < n; i++) {
        if (asprintf(&items[i], "%s@%s", m->e[i].key, m->e[i].rv) < 0)
            fail_msg("out of memory");
        len += strlen(items[i]) + 1;
    }
    pthread_mutex_unlock(&m->mu);
    qsort(items, n, sizeof(items[0]), str_cmp);
    out = calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, " ");
        strcat(out, items[i]);
        free(items[i]);
    }
    return out;
}

typedef struct {
    kube_client *c;
    const kube_resource *r;
    const char *ns;
    const char *selector;
    informer *inf;
    itest_mirror *m;
    char last[3][8192];
} converge;

static bool converged(void *ctx)
{
    converge *cv = ctx;
    informer_objs *l = NULL;
    char *server = itest_server_versions(cv->c, cv->r, cv->ns, cv->selector);
    char *cache = NULL, *mirrored;
    bool same;
    if (informer_list(&l, cv->inf) < 0)
        fail_msg("cannot list the informer's cache");
    cache = itest_objs_versions(l);
    mirrored = mirror_versions(cv->m);
    same = server && strcmp(server, cache) == 0 && strcmp(server, mirrored) == 0;
    snprintf(cv->last[0], sizeof(cv->last[0]), "%s", server ? server : "(list failed)");
    snprintf(cv->last[1], sizeof(cv->last[1]), "%s", cache);
    snprintf(cv->last[2], sizeof(cv->last[2]), "%s", mirrored);
    free(server);
    free(cache);
    free(mirrored);
    return same;
}

void itest_assert_converges(kube_client *c, const kube_resource *r, const char *ns, const char *selector, informer *inf,
                            itest_mirror *m, long timeout_ms)
{
    converge *cv = calloc(1, sizeof(*cv));
    cv->c = c;
    cv->r = r;
    cv->ns = ns;
    cv->selector = selector;
    cv->inf = inf;
    cv->m = m;
    if (!itest_eventually(converged, cv, timeout_ms)) {
        char msg[3 * 8192 + 128];
        snprintf(msg, sizeof(msg), "the informer did not converge:\n server: %s\n cache:  %s\n mirror: %s", cv->last[0],
                 cv->last[1], cv->last[2]);
        free(cv);
        fail_msg("%s", msg);
    }
    free(cv);
}

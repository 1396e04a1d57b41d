/*
 * Helpers for integration tests against the local control plane: a client from
 * $KUBECONFIG (the test is skipped when it is unset), a fresh namespace per
 * test, polling for a condition, JSON from a format string, and running
 * hack/cluster.sh subcommands. Use them only inside cmocka tests: failures
 * fail the running test.
 */
#ifndef TEST_KUBE_ITEST_H
#define TEST_KUBE_ITEST_H

#include "kube/client.h"
#include "runtime/store.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

/*
 * A client for $KUBECONFIG, or NULL when KUBECONFIG is unset: call it from a
 * setup function and skip() in the test when the state is NULL (cmocka counts
 * a skip() inside setup as an error).
 */
kube_client *itest_client(void);

/* A client and a fresh namespace for one test group. */
typedef struct {
    kube_client *c;
    char *ns;
} itest_fixture;

/*
 * cmocka group setup: *state becomes an itest_fixture with a client and a
 * namespace "<prefix>-<random>", or NULL when there is no cluster (tests then
 * call itest_need, which skips). Use from a one-line setup of your own.
 */
int itest_fixture_setup(void **state, const char *prefix);

/* cmocka group teardown: deletes the namespace and frees the fixture. */
int itest_fixture_teardown(void **state);

/* The fixture, or a skip when there is no cluster. */
itest_fixture *itest_need(void **state);

/* Creates a namespace "<prefix>-<random>" and returns its name (caller frees). */
char *itest_namespace_new(kube_client *c, const char *prefix);

/* Deletes a namespace (best effort, does not wait) and frees the name. */
void itest_namespace_delete(kube_client *c, char *ns);

/* Polls cond every 50 ms for up to timeout_ms; true as soon as it holds. */
bool itest_eventually(bool (*cond)(void *ctx), void *ctx, long timeout_ms);

/* Parses printf-formatted JSON; fails the test when it does not parse. */
cJSON *itest_json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Runs "bash hack/cluster.sh <args>" from the source tree (for the instance in
 * $MEMBRANE_CLUSTER_DIR, as hack/cluster.sh env exports it); returns its exit
 * status.
 */
int itest_cluster(const char *args);

/*
 * "key@resourceVersion" of every object the server lists (ns and selector may
 * be NULL), space-separated and sorted by key; keys as the informer makes
 * them. Caller frees; NULL (with a message) when the list fails.
 */
char *itest_server_versions(kube_client *c, const kube_resource *r, const char *ns, const char *label_selector);

/* The same for a list of cached objects; frees the list. */
char *itest_objs_versions(informer_objs *l);

/*
 * Deletes one key from etcd directly, through etcd's HTTP gateway, so that it
 * works while kube-apiserver is down: an object removed behind the API's back,
 * as if deleted while no watch was open. key is e.g.
 * "/registry/configmaps/<ns>/<name>". 0, or -1 when the key was not there or
 * etcd could not be reached.
 */
int itest_etcd_delete(const char *key);

/* Sleeps ms milliseconds. */
void itest_sleep_ms(long ms);

#endif

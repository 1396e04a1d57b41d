/*
 * The informer through disruptions of the real control plane (these tests
 * restart kube-apiserver and compact etcd of the instance in
 * $MEMBRANE_CLUSTER_DIR, so run them only against a cluster of your own, as
 * hack/test.sh does):
 *  - kube-apiserver restarts while the informer watches; changes made as soon
 *    as it is back (a delete among them) reach the cache and the handlers;
 *  - while the apiserver is down an object disappears from etcd (no watch can
 *    report it) and etcd is compacted: a watch from the informer's
 *    resourceVersion is then 410 Gone, and the informer relists, reports the
 *    delete it missed to its handlers, and converges.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "informer_itest.h"
#include "kube_itest.h"

#include "kube/client.h"
#include "kube/watch.h"
#include "runtime/informer.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONVERGE_MS 120000

static int setup(void **state)
{
    return itest_fixture_setup(state, "restart");
}

static int teardown(void **state)
{
    /* A failed test must not leave the apiserver down for the next one. */
    if (*state)
        itest_cluster("start kube-apiserver >/dev/null");
    return itest_fixture_teardown(state);
}

static void create_cm(itest_fixture *f, const char *name)
{
    cJSON *cm = itest_json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\"},"
                           "\"data\":{\"v\":\"0\"}}",
                           name);
    assert_int_equal(kube_create(NULL, f->c, &KUBE_CONFIGMAPS, f->ns, cm), 0);
    cJSON_Delete(cm);
}

static void patch_cm(itest_fixture *f, const char *name, const char *v)
{
    char patch[128];
    snprintf(patch, sizeof(patch), "{\"data\":{\"v\":\"%s\"}}", v);
    assert_int_equal(kube_patch(NULL, f->c, &KUBE_CONFIGMAPS, f->ns, name, NULL, KUBE_PATCH_MERGE, patch), 0);
}

static informer *start_informer(itest_fixture *f, itest_mirror *m)
{
    informer *inf = NULL;
    /* A lower cap than the default 30 s keeps the test short; the policy is the same. */
    informer_opts io = {.namespace = f->ns, .backoff_max_ms = 4000};
    informer_handlers h = itest_mirror_handlers(m);
    assert_int_equal(informer_new(&inf, f->c, &KUBE_CONFIGMAPS, &io), 0);
    assert_int_equal(informer_add_handlers(inf, &h), 0);
    assert_int_equal(informer_start(inf), 0);
    assert_int_equal(informer_wait_for_sync(inf, 30000), 0);
    itest_assert_converges(f->c, &KUBE_CONFIGMAPS, f->ns, NULL, inf, m, CONVERGE_MS);
    return inf;
}

static void test_informer_survives_apiserver_restart(void **state)
{
    itest_fixture *f = itest_need(state);
    itest_mirror *m = itest_mirror_new();
    informer *inf;
    unsigned long restarts;
    char key[300];

    create_cm(f, "r1");
    create_cm(f, "r2");
    create_cm(f, "r3");
    inf = start_informer(f, m);
    restarts = informer_watch_restarts(inf);

    assert_int_equal(itest_cluster("restart kube-apiserver"), 0);
    /* Just back: the informer is still reconnecting (or backing off). */
    assert_int_equal(kube_delete(f->c, &KUBE_CONFIGMAPS, f->ns, "r1", NULL), 0);
    patch_cm(f, "r2", "after-restart");
    create_cm(f, "r4");

    itest_assert_converges(f->c, &KUBE_CONFIGMAPS, f->ns, NULL, inf, m, CONVERGE_MS);
    snprintf(key, sizeof(key), "%s/r1", f->ns);
    assert_true(itest_mirror_logged(m, 'D', key));
    snprintf(key, sizeof(key), "%s/r2", f->ns);
    assert_true(itest_mirror_logged(m, 'U', key));
    snprintf(key, sizeof(key), "%s/r4", f->ns);
    assert_true(itest_mirror_logged(m, 'A', key));
    assert_true(informer_watch_restarts(inf) > restarts);
    assert_int_equal(itest_mirror_bad(m), 0);
    informer_free(inf);
    itest_mirror_free(m);
}

static int drop_event(void *ctx, kube_watch_type type, cJSON *obj)
{
    (void)ctx;
    (void)type;
    cJSON_Delete(obj);
    return 0;
}

static void test_informer_relists_after_410(void **state)
{
    itest_fixture *f = itest_need(state);
    itest_mirror *m = itest_mirror_new();
    informer *inf;
    char key[300], *old_rv;
    kube_watch_opts wo = {.timeout_seconds = 10};

    create_cm(f, "x1");
    create_cm(f, "x2");
    create_cm(f, "churn");
    inf = start_informer(f, m);
    assert_int_equal(informer_relists(inf), 1);

    /* Many writes, which the informer follows. */
    for (int i = 0; i < 40; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        patch_cm(f, "churn", v);
    }
    itest_assert_converges(f->c, &KUBE_CONFIGMAPS, f->ns, NULL, inf, m, CONVERGE_MS);
    old_rv = informer_resource_version(inf);
    assert_non_null(old_rv);

    /* With the apiserver down, x1 goes from etcd (which also moves etcd's
     * revision past the informer's) and everything older is compacted away:
     * a watch from old_rv is 410 Gone whether the watch cache or etcd would
     * serve it, and x1's delete can only be learnt by relisting. */
    assert_int_equal(itest_cluster("stop kube-apiserver"), 0);
    snprintf(key, sizeof(key), "/registry/configmaps/%s/x1", f->ns);
    assert_int_equal(itest_etcd_delete(key), 0);
    assert_int_equal(itest_cluster("compact >/dev/null"), 0);
    assert_int_equal(itest_cluster("start kube-apiserver"), 0);

    wo.resource_version = old_rv;
    assert_int_equal(kube_watch(f->c, &KUBE_CONFIGMAPS, f->ns, &wo, drop_event, NULL), MB_EGONE);

    itest_assert_converges(f->c, &KUBE_CONFIGMAPS, f->ns, NULL, inf, m, CONVERGE_MS);
    assert_true(informer_relists(inf) >= 2);
    snprintf(key, sizeof(key), "%s/x1", f->ns);
    assert_true(itest_mirror_logged(m, 'D', key));

    /* And it watches again after the relist. */
    create_cm(f, "x3");
    itest_assert_converges(f->c, &KUBE_CONFIGMAPS, f->ns, NULL, inf, m, CONVERGE_MS);
    snprintf(key, sizeof(key), "%s/x3", f->ns);
    assert_true(itest_mirror_logged(m, 'A', key));
    assert_int_equal(itest_mirror_bad(m), 0);
    free(old_rv);
    informer_free(inf);
    itest_mirror_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_informer_survives_apiserver_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_informer_relists_after_410, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

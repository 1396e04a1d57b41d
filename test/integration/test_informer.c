/*
 * The informer against a real kube-apiserver: it syncs, follows a series of
 * creates, updates and deletes until its cache, the state its handlers built
 * and the server agree; keeps an index up to date; with a label selector sees
 * objects leave and enter the selection as deletes and adds; and stops
 * promptly, also while it is backing off. Each test has its own namespace.
 * The disruptive cases (apiserver restart, 410 relist) are in
 * test_informer_restart.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "informer_itest.h"
#include "kube_itest.h"

#include "kube/client.h"
#include "runtime/informer.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
    return itest_fixture_setup(state, "informer");
}

static void create_cm(itest_fixture *f, const char *name, const char *app)
{
    cJSON *cm = itest_json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\","
                           "\"labels\":{\"app\":\"%s\"}},\"data\":{\"v\":\"0\"}}",
                           name, app);
    assert_int_equal(kube_create(NULL, f->c, &KUBE_CONFIGMAPS, f->ns, cm), 0);
    cJSON_Delete(cm);
}

static void patch_cm(itest_fixture *f, const char *name, const char *patch)
{
    assert_int_equal(kube_patch(NULL, f->c, &KUBE_CONFIGMAPS, f->ns, name, NULL, KUBE_PATCH_MERGE, patch), 0);
}

static int index_app(informer_index_keys *out, const cJSON *obj, void *ctx)
{
    const char *app = json_str(obj, "metadata", "labels", "app", NULL);
    (void)ctx;
    return app ? informer_index_keys_add(out, app) : 0;
}

static char *index_names(informer *inf, const char *app)
{
    informer_objs *l = NULL;
    assert_int_equal(informer_by_index(&l, inf, "by-app", app), 0);
    return itest_objs_versions(l);
}

static bool starts_with_keys(const char *versions, const char *k1, const char *k2)
{
    /* versions is "k1@rv k2@rv"; checks exactly these two keys, in order */
    char want[700];
    const char *at1 = strchr(versions, '@');
    const char *sp = at1 ? strchr(at1, ' ') : NULL;
    if (!at1 || !sp)
        return false;
    snprintf(want, sizeof(want), "%s@", k1);
    if (strncmp(versions, want, strlen(want)) != 0)
        return false;
    snprintf(want, sizeof(want), "%s@", k2);
    return strncmp(sp + 1, want, strlen(want)) == 0 && strchr(sp + 1, ' ') == NULL;
}

static void test_informer_converges(void **state)
{
    itest_fixture *f = itest_need(state);
    itest_mirror *m = itest_mirror_new();
    informer *inf = NULL;
    informer_obj *got = NULL;
    informer_opts io = {.namespace = f->ns, .page_size = 2}; /* pages of 2: the list paginates */
    informer_handlers h = itest_mirror_handlers(m);
    char key[300], key2[300], *v;

    create_cm(f, "pre-1", "a");
    create_cm(f, "pre-2", "a");
    create_cm(f, "pre-3", "a");

    assert_int_equal(informer_new(&inf, f->c, &KUBE_CONFIGMAPS, &io), 0);
    assert_int_equal(informer_add_handlers(inf, &h), 0);
    assert_int_equal(informer_add_index(inf, "by-app", index_app, NULL), 0);
    assert_false(informer_has_synced(inf));
    assert_int_equal(informer_start(inf), 0);
    assert_int_equal(informer_add_handlers(inf, &h), MB_EINVAL);
    assert_int_equal(informer_start(inf), MB_EINVAL);
    assert_int_equal(informer_wait_for_sync(inf, 30000), 0);
    assert_true(informer_has_synced(inf));
    char why[200] = "";
    assert_true(informer_alive(inf, why, sizeof(why)));

    /* The first list is in the cache and was reported as adds. */
    assert_int_equal(informer_get(&got, inf, f->ns, "pre-2"), 0);
    assert_string_equal(json_str(informer_obj_json(got), "metadata", "labels", "app", NULL), "a");
    informer_obj_free(got);
    snprintf(key, sizeof(key), "%s/pre-1", f->ns);
    assert_true(itest_mirror_logged(m, 'A', key));
    itest_assert_converges(f->c, &KUBE_CONFIGMAPS, f->ns, NULL, inf, m, 30000);

    /* A series of changes. */
    for (int i = 1; i <= 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "c%d", i);
        create_cm(f, name, i % 2 ? "a" : "b");
    }
    patch_cm(f, "c1", "{\"data\":{\"v\":\"1\"}}");
    patch_cm(f, "c1", "{\"data\":{\"v\":\"2\"}}");
    assert_int_equal(kube_delete(f->c, &KUBE_CONFIGMAPS, f->ns, "c2", NULL), 0);
    patch_cm(f, "pre-1", "{\"metadata\":{\"labels\":{\"app\":\"b\"}}}");
    assert_int_equal(kube_delete(f->c, &KUBE_CONFIGMAPS, f->ns, "pre-2", NULL), 0);
    itest_assert_converges(f->c, &KUBE_CONFIGMAPS, f->ns, NULL, inf, m, 30000);

    assert_int_equal(informer_get(&got, inf, f->ns, "c1"), 0);
    assert_string_equal(json_str(informer_obj_json(got), "data", "v", NULL), "2");
    informer_obj_free(got);
    assert_int_equal(informer_get(&got, inf, f->ns, "c2"), MB_ENOTFOUND);
    snprintf(key, sizeof(key), "%s/c2", f->ns);
    assert_true(itest_mirror_logged(m, 'D', key));
    snprintf(key, sizeof(key), "%s/pre-2", f->ns);
    assert_true(itest_mirror_logged(m, 'D', key));
    snprintf(key, sizeof(key), "%s/c1", f->ns);
    assert_true(itest_mirror_logged(m, 'U', key));

    /* The index followed: b holds c4 and pre-1 (moved from a). */
    snprintf(key, sizeof(key), "%s/c4", f->ns);
    snprintf(key2, sizeof(key2), "%s/pre-1", f->ns);
    v = index_names(inf, "b");
    assert_true(starts_with_keys(v, key, key2));
    free(v);
    v = index_names(inf, "a");
    assert_null(strstr(v, "/pre-1@"));
    assert_null(strstr(v, "/pre-2@"));
    assert_non_null(strstr(v, "/c1@"));
    assert_non_null(strstr(v, "/pre-3@"));
    free(v);

    v = informer_resource_version(inf);
    assert_non_null(v);
    free(v);
    assert_true(informer_relists(inf) >= 1);
    assert_int_equal(itest_mirror_bad(m), 0);
    informer_stop(inf);
    informer_stop(inf);
    assert_false(informer_alive(inf, why, sizeof(why)));
    assert_string_equal(why, "the configmaps informer is not running");
    /* The cache stays readable after a stop. */
    assert_int_equal(informer_get(&got, inf, f->ns, "c1"), 0);
    informer_obj_free(got);
    informer_free(inf);
    itest_mirror_free(m);
}

static void test_informer_label_selector(void **state)
{
    itest_fixture *f = itest_need(state);
    itest_mirror *m = itest_mirror_new();
    informer *inf = NULL;
    informer_opts io = {.namespace = f->ns, .label_selector = "app=a"};
    informer_handlers h = itest_mirror_handlers(m);
    char key[300];

    create_cm(f, "in", "a");
    create_cm(f, "out", "b");
    assert_int_equal(informer_new(&inf, f->c, &KUBE_CONFIGMAPS, &io), 0);
    assert_int_equal(informer_add_handlers(inf, &h), 0);
    assert_int_equal(informer_start(inf), 0);
    assert_int_equal(informer_wait_for_sync(inf, 30000), 0);
    itest_assert_converges(f->c, &KUBE_CONFIGMAPS, f->ns, "app=a", inf, m, 30000);
    assert_int_equal(informer_store_len(informer_cache(inf)), 1);

    /* "in" leaves the selection (a delete), "out" enters it (an add). */
    patch_cm(f, "in", "{\"metadata\":{\"labels\":{\"app\":\"b\"}}}");
    patch_cm(f, "out", "{\"metadata\":{\"labels\":{\"app\":\"a\"}}}");
    itest_assert_converges(f->c, &KUBE_CONFIGMAPS, f->ns, "app=a", inf, m, 30000);
    snprintf(key, sizeof(key), "%s/in", f->ns);
    assert_true(itest_mirror_logged(m, 'D', key));
    snprintf(key, sizeof(key), "%s/out", f->ns);
    assert_true(itest_mirror_logged(m, 'A', key));
    assert_int_equal(itest_mirror_bad(m), 0);
    informer_free(inf);
    itest_mirror_free(m);
}

/* A resource the server does not serve: every list fails and the informer backs off. */
static const kube_resource no_such = {"nothing.membrane.test", "v1", "nothings", "Nothing", true};

static void test_informer_stops_while_backing_off(void **state)
{
    itest_fixture *f = itest_need(state);
    informer *inf = NULL;
    informer_opts io = {.namespace = f->ns, .backoff_base_ms = 60000, .backoff_max_ms = 60000};

    assert_int_equal(informer_new(&inf, f->c, &no_such, &io), 0);
    assert_int_equal(informer_wait_for_sync(inf, 50), MB_ETIMEOUT);
    assert_int_equal(informer_start(inf), 0);
    assert_int_equal(informer_wait_for_sync(inf, 300), MB_ETIMEOUT);
    assert_false(informer_has_synced(inf));
    /* The back-off wait (30..60 s) is cut short: this returns, and the test
     * would hit ctest's timeout otherwise. */
    informer_stop(inf);
    assert_int_equal(informer_wait_for_sync(inf, 1000), MB_ESTOPPED);
    assert_int_equal(informer_watch_restarts(inf), 0);
    informer_free(inf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_informer_converges, setup, itest_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_informer_label_selector, setup, itest_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_informer_stops_while_backing_off, setup, itest_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

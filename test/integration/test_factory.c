/*
 * The shared informer factory and the controller manager against a real
 * kube-apiserver: two subscribers of one resource share one informer (the same
 * informer back, one index registration, a second transform refused) and both
 * see its events; the --watch-label-selector is applied only to the resources
 * of the selector's group; a deleted object's read-your-writes entries are
 * dropped before a subscriber hears of the delete; and a controller
 * registered with the manager reconciles the keys its subscription enqueues,
 * with /readyz ready as a standby and once synced; one registered with its
 * work table and subscribed with manager_watch_all has the object's own key
 * reconciled on its add, update and delete, its index added, and its table
 * made (and freed with it, also when the registration fails). A resource's own label
 * selector filters its cache (and a second subscriber must name the same);
 * the ConfigMaps of api/informers.c are those labelled managed-by=membrane,
 * with each binaryData value cached as the SHA-256 of its bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kube_itest.h"

#include "api/informers.h"
#include "kube/client.h"
#include "runtime/factory.h"
#include "runtime/manager.h"
#include "util/error.h"
#include "util/json.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
    return itest_fixture_setup(state, "factory");
}

static void create_cm(itest_fixture *f, const char *name, const char *app)
{
    cJSON *cm = itest_json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\","
                           "\"labels\":{\"app\":\"%s\"}},\"data\":{\"v\":\"0\"}}",
                           name, app);
    assert_int_equal(kube_create(NULL, f->c, &KUBE_CONFIGMAPS, f->ns, cm), 0);
    cJSON_Delete(cm);
}

typedef struct {
    atomic_int adds, deletes;
    atomic_bool ahead_gone_at_delete; /* the factory had dropped the ryw copy when this subscriber heard */
    ryw *ryw;
    const char *key;
} subscriber;

/* Counts the test's own ConfigMaps (labelled app), not kube-root-ca.crt, which the controller manager adds to every namespace. */
static void on_add(void *ctx, const cJSON *obj)
{
    subscriber *s = ctx;
    if (json_str(obj, "metadata", "labels", "app", NULL))
        atomic_fetch_add(&s->adds, 1);
}

static void on_delete(void *ctx, const cJSON *obj)
{
    subscriber *s = ctx;
    (void)obj;
    if (s->ryw && s->key) {
        ryw_trail older = {0};
        cJSON *o = ryw_ahead_take(s->ryw, KUBE_CONFIGMAPS.kind, s->key, "1", &older);
        atomic_store(&s->ahead_gone_at_delete, o == NULL);
        cJSON_Delete(o);
        ryw_trail_clear(&older);
    }
    atomic_fetch_add(&s->deletes, 1);
}

static void keep_data(cJSON *obj)
{
    (void)obj;
}

static void keep_nothing(cJSON *obj)
{
    cJSON_DeleteItemFromObject(obj, "data");
}

static int index_app(informer_index_keys *out, const cJSON *obj, void *ctx)
{
    const char *app = json_str(obj, "metadata", "labels", "app", NULL);
    (void)ctx;
    return app ? informer_index_keys_add(out, app) : 0;
}

static int index_other(informer_index_keys *out, const cJSON *obj, void *ctx)
{
    return index_app(out, obj, ctx);
}

static bool both_heard(void *ctx)
{
    subscriber *s = ctx;
    return atomic_load(&s[0].adds) > 0 && atomic_load(&s[1].adds) > 0;
}

static bool both_heard_delete(void *ctx)
{
    subscriber *s = ctx;
    return atomic_load(&s[0].deletes) > 0 && atomic_load(&s[1].deletes) > 0;
}

static void test_two_subscribers_share_one_informer(void **state)
{
    itest_fixture *f = itest_need(state);
    informer_factory *fac = NULL;
    informer *a = NULL, *b = NULL, *other = NULL;
    subscriber subs[2] = {0};
    char key[300];
    informer_factory_opts fo = {.client = f->c, .namespace = f->ns};

    snprintf(key, sizeof(key), "%s/one", f->ns);
    assert_int_equal(informer_factory_new(&fac, &fo), 0);
    assert_int_equal(informer_factory_informer(&a, fac, &KUBE_CONFIGMAPS, keep_data), 0);
    assert_int_equal(informer_factory_informer(&b, fac, &KUBE_CONFIGMAPS, keep_data), 0);
    assert_ptr_equal(a, b); /* one informer for the resource */
    assert_int_equal(informer_factory_informer(&other, fac, &KUBE_CONFIGMAPS, keep_nothing), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "another trim transform"));
    assert_int_equal(informer_factory_add_index(fac, &KUBE_CONFIGMAPS, "by-app", index_app, NULL), 0);
    assert_int_equal(informer_factory_add_index(fac, &KUBE_CONFIGMAPS, "by-app", index_app, NULL), 0);
    assert_int_equal(informer_factory_add_index(fac, &KUBE_CONFIGMAPS, "by-app", index_other, NULL), MB_EINVAL);
    subs[0].ryw = informer_factory_ryw(fac);
    subs[0].key = key;
    for (int i = 0; i < 2; i++) {
        informer_handlers h = {.on_add = on_add, .on_delete = on_delete, .ctx = &subs[i]};
        assert_int_equal(informer_factory_subscribe(fac, &KUBE_CONFIGMAPS, &h), 0);
    }
    assert_false(informer_factory_synced(fac));
    assert_int_equal(informer_factory_start(fac, 30000), 0);
    assert_true(informer_factory_synced(fac));
    char why[200] = "";
    assert_true(informer_factory_alive(fac, why, sizeof(why)));

    create_cm(f, "one", "a");
    assert_true(itest_eventually(both_heard, subs, 30000));
    informer_objs *l = NULL;
    assert_int_equal(informer_by_index(&l, a, "by-app", "a"), 0);
    assert_int_equal(l->len, 1);
    informer_objs_free(l);

    /* a written-ahead copy of "one" (its cache version "1" replaced): dropped by the factory on delete */
    ryw_trail older = {0};
    ryw_trail_add(&older, "1");
    ryw_trail_add(&older, "0");
    ryw_ahead_keep(informer_factory_ryw(fac), KUBE_CONFIGMAPS.kind, key, &older,
                   itest_json("{\"metadata\":{\"name\":\"one\",\"resourceVersion\":\"2\"}}"), NULL);
    assert_int_equal(kube_delete(f->c, &KUBE_CONFIGMAPS, f->ns, "one", NULL), 0);
    assert_true(itest_eventually(both_heard_delete, subs, 30000));
    assert_true(atomic_load(&subs[0].ahead_gone_at_delete));

    informer_factory_stop_request(fac);
    informer_factory_stop(fac);
    informer_factory_free(fac);
}

static void test_selector_applies_to_its_group_only(void **state)
{
    itest_fixture *f = itest_need(state);
    informer_factory *ours = NULL, *theirs = NULL;
    informer *i1 = NULL, *i2 = NULL;
    /* ConfigMaps stand for a kind of ours when the selector's group is the core group "" */
    informer_factory_opts fo1 = {.client = f->c, .namespace = f->ns, .label_selector = "app=a", .selector_group = ""};
    informer_factory_opts fo2 = {.client = f->c,
                                 .namespace = f->ns,
                                 .label_selector = "app=a",
                                 .selector_group = "governance.kfm.dev"};

    create_cm(f, "in", "a");
    create_cm(f, "out", "b");
    assert_int_equal(informer_factory_new(&ours, &fo1), 0);
    assert_int_equal(informer_factory_new(&theirs, &fo2), 0);
    assert_int_equal(informer_factory_informer(&i1, ours, &KUBE_CONFIGMAPS, NULL), 0);
    assert_int_equal(informer_factory_informer(&i2, theirs, &KUBE_CONFIGMAPS, NULL), 0);
    assert_int_equal(informer_factory_start(ours, 30000), 0);
    assert_int_equal(informer_factory_start(theirs, 30000), 0);
    informer_obj *o = NULL;
    assert_int_equal(informer_get(&o, i1, f->ns, "in"), 0);
    informer_obj_free(o);
    assert_int_equal(informer_get(&o, i1, f->ns, "out"), MB_ENOTFOUND); /* filtered by the server */
    assert_int_equal(informer_get(&o, i2, f->ns, "out"), 0);            /* another group: not filtered */
    informer_obj_free(o);
    informer_factory_free(ours);
    informer_factory_free(theirs);
}

static void test_resource_selector_and_configmap_trim(void **state)
{
    itest_fixture *f = itest_need(state);
    informer_factory *fac = NULL, *other = NULL;
    informer *cms = NULL, *sel = NULL, *again = NULL;
    informer_obj *o = NULL;
    informer_factory_opts fo = {.client = f->c, .namespace = f->ns};
    /* "hello": its base64 and SHA-256 */
    cJSON *mine = itest_json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"mine\","
                             "\"labels\":{\"app.kubernetes.io/managed-by\":\"membrane\"}},\"data\":{\"digest\":\"d\"},"
                             "\"binaryData\":{\"bundle.tar.gz\":\"aGVsbG8=\"}}");
    assert_int_equal(kube_create(NULL, f->c, &KUBE_CONFIGMAPS, f->ns, mine), 0);
    cJSON_Delete(mine);
    create_cm(f, "theirs", "a");

    /* a selector of its own: the same again is the same informer, another (or none) is refused */
    assert_int_equal(informer_factory_new(&other, &fo), 0);
    assert_int_equal(informer_factory_informer_selected(&sel, other, &KUBE_CONFIGMAPS, keep_data, "app=a"), 0);
    assert_int_equal(informer_factory_informer_selected(&again, other, &KUBE_CONFIGMAPS, keep_data, "app=a"), 0);
    assert_ptr_equal(sel, again);
    assert_int_equal(informer_factory_informer_selected(&again, other, &KUBE_CONFIGMAPS, keep_data, "app=b"),
                     MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "another label selector"));
    assert_int_equal(informer_factory_informer(&again, other, &KUBE_CONFIGMAPS, keep_data), MB_EINVAL);
    assert_int_equal(informer_factory_start(other, 30000), 0);
    assert_int_equal(informer_get(&o, sel, f->ns, "theirs"), 0);
    informer_obj_free(o);
    assert_int_equal(informer_get(&o, sel, f->ns, "mine"), MB_ENOTFOUND);
    informer_factory_free(other);

    /* the ConfigMaps the controllers cache */
    assert_int_equal(informer_factory_new(&fac, &fo), 0);
    assert_int_equal(api_informer(&cms, fac, &KUBE_CONFIGMAPS), 0);
    assert_int_equal(informer_factory_start(fac, 30000), 0);
    assert_int_equal(informer_get(&o, cms, f->ns, "theirs"), MB_ENOTFOUND); /* not membrane's */
    assert_int_equal(informer_get(&o, cms, f->ns, "mine"), 0);
    assert_string_equal(json_str(informer_obj_json(o), "binaryData", "bundle.tar.gz", NULL),
                        "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    assert_string_equal(json_str(informer_obj_json(o), "data", "digest", NULL), "d");
    informer_obj_free(o);
    informer_factory_free(fac);
}

typedef struct {
    informer *cms;
    loop *loop;
    atomic_int reconciled;
    atomic_bool freed;
} widget_controller;

static int widget_reconcile(reconcile_result *out, void *ctx, const char *key)
{
    widget_controller *w = ctx;
    (void)out;
    (void)key;
    atomic_fetch_add(&w->reconciled, 1);
    return 0;
}

static void widget_enqueue(void *ctx, const cJSON *obj)
{
    widget_controller *w = ctx;
    loop_enqueue_object(w->loop, obj);
}

static int widget_subscribe(void *ctx, informer_factory *f, loop *l)
{
    widget_controller *w = ctx;
    w->loop = l;
    informer_handlers h = {.on_add = widget_enqueue, .ctx = w};
    int err = informer_factory_informer(&w->cms, f, &KUBE_CONFIGMAPS, NULL);
    return err < 0 ? err : informer_factory_subscribe(f, &KUBE_CONFIGMAPS, &h);
}

static void widget_free(void *ctx)
{
    widget_controller *w = ctx;
    atomic_store(&w->freed, true);
}

static bool reconciled(void *ctx)
{
    widget_controller *w = ctx;
    return atomic_load(&w->reconciled) > 0;
}

static void test_manager_runs_a_registered_controller(void **state)
{
    itest_fixture *f = itest_need(state);
    informer_factory *fac = NULL;
    manager *m = NULL;
    widget_controller w = {0};
    char why[200] = "";
    informer_factory_opts fo = {.client = f->c, .namespace = f->ns};

    assert_int_equal(informer_factory_new(&fac, &fo), 0);
    manager_opts mo = {.factory = fac, .workers = 1, .sync_timeout_ms = 30000};
    assert_int_equal(manager_new(&m, &mo), 0);
    manager_registration bad = {.kind = "Widget", .subscribe = widget_subscribe, .free = widget_free, .ctx = &w};
    assert_int_equal(manager_add(m, &bad), MB_EINVAL); /* no reconcile */
    assert_true(atomic_load(&w.freed));                /* the manager owned it, also on error */
    atomic_store(&w.freed, false);
    manager_registration r = {.kind = "Widget",
                              .reconcile = widget_reconcile,
                              .subscribe = widget_subscribe,
                              .free = widget_free,
                              .ctx = &w};
    assert_int_equal(manager_add(m, &r), 0);
    assert_true(manager_ready(m, why, sizeof(why))); /* a standby is ready */
    assert_true(manager_alive(m, why, sizeof(why)));
    assert_int_equal(manager_start(m), 0);
    assert_true(manager_ready(m, why, sizeof(why)));
    assert_true(manager_alive(m, why, sizeof(why)));
    create_cm(f, "w", "a");
    assert_true(itest_eventually(reconciled, &w, 30000));
    assert_int_equal(manager_stop(m, 5000), 0);
    manager_free(m);
    assert_true(atomic_load(&w.freed));
    informer_factory_free(fac);
}

/* A controller subscribed with manager_watch_all and registered with manager_add_with_works. */
typedef struct {
    informer *cms;
    worktable *works;
    const char *key; /* the key it waits for */
    atomic_int reconciled;
    atomic_bool other_key, no_payload, freed;
} keyed_widget;

static int keyed_reconcile(reconcile_result *out, void *ctx, const char *key)
{
    keyed_widget *w = ctx;
    (void)out;
    if (strcmp(key, w->key) != 0) {
        atomic_store(&w->other_key, true);
        return 0;
    }
    if (!worktable_get(w->works, key))
        atomic_store(&w->no_payload, true);
    atomic_fetch_add(&w->reconciled, 1);
    return 0;
}

/* The ConfigMaps untrimmed and unselected (api/informers.c caches only those labelled managed-by=membrane). */
static int plain_informer(informer **out, informer_factory *f, const kube_resource *resource)
{
    return informer_factory_informer(out, f, resource, NULL);
}

static int keyed_subscribe(void *ctx, informer_factory *f, loop *l)
{
    keyed_widget *w = ctx;
    manager_watch watch[] = {
        {.resource = &KUBE_CONFIGMAPS, .out = &w->cms, .index = "namespace", .index_fn = informer_index_namespace}};
    return manager_watch_all(f, l, plain_informer, watch, 1);
}

static void keyed_free(void *ctx)
{
    keyed_widget *w = ctx;
    worktable_free(w->works);
    w->works = NULL;
    atomic_store(&w->freed, true);
}

static void payload_clear(void *payload)
{
    memset(payload, 0, sizeof(int));
}

static keyed_widget *waiting;
static int waiting_for;

static bool reconciled_n(void *ctx)
{
    (void)ctx;
    return atomic_load(&waiting->reconciled) >= waiting_for;
}

static void test_manager_watch_all_and_works(void **state)
{
    itest_fixture *f = itest_need(state);
    informer_factory *fac = NULL;
    manager *m = NULL;
    keyed_widget w = {0};
    char key[300];
    informer_objs *byns = NULL;
    informer_factory_opts fo = {.client = f->c, .namespace = f->ns};
    snprintf(key, sizeof(key), "%s/w", f->ns);
    w.key = key;
    waiting = &w;

    assert_int_equal(informer_factory_new(&fac, &fo), 0);
    manager_opts mo = {.factory = fac, .workers = 1, .sync_timeout_ms = 30000};
    assert_int_equal(manager_new(&m, &mo), 0);
    /* a failed registration: the table was made and goes with the controller's free */
    manager_registration bad = {.kind = "Keyed", .subscribe = keyed_subscribe, .free = keyed_free, .ctx = &w};
    assert_int_equal(manager_add_with_works(m, &bad, &w.works, sizeof(int), payload_clear), MB_EINVAL);
    assert_true(atomic_load(&w.freed));
    assert_null(w.works);
    atomic_store(&w.freed, false);

    manager_registration r = {.kind = "Keyed",
                              .reconcile = keyed_reconcile,
                              .subscribe = keyed_subscribe,
                              .free = keyed_free,
                              .ctx = &w};
    assert_int_equal(manager_add_with_works(m, &r, &w.works, sizeof(int), payload_clear), 0);
    assert_non_null(w.works);
    assert_int_equal(manager_start(m), 0);

    create_cm(f, "w", "a");
    waiting_for = 1;
    assert_true(itest_eventually(reconciled_n, NULL, 30000)); /* added */
    assert_int_equal(informer_by_index(&byns, w.cms, "namespace", f->ns), 0);
    bool found = false;
    for (size_t i = 0; i < byns->len; i++)
        found = found || strcmp(json_str(informer_obj_json(byns->items[i]), "metadata", "name", NULL), "w") == 0;
    informer_objs_free(byns);
    assert_true(found); /* the index was added */

    int before = atomic_load(&w.reconciled);
    assert_int_equal(kube_patch(NULL, f->c, &KUBE_CONFIGMAPS, f->ns, "w", NULL, KUBE_PATCH_MERGE,
                                "{\"data\":{\"v\":\"1\"}}"),
                     0);
    waiting_for = before + 1;
    assert_true(itest_eventually(reconciled_n, NULL, 30000)); /* updated */
    before = atomic_load(&w.reconciled);
    assert_int_equal(kube_delete(f->c, &KUBE_CONFIGMAPS, f->ns, "w", NULL), 0);
    waiting_for = before + 1;
    assert_true(itest_eventually(reconciled_n, NULL, 30000)); /* deleted */
    assert_false(atomic_load(&w.no_payload));

    assert_int_equal(manager_stop(m, 5000), 0);
    manager_free(m);
    assert_true(atomic_load(&w.freed));
    informer_factory_free(fac);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_subscribers_share_one_informer, setup, itest_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_selector_applies_to_its_group_only, setup, itest_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_manager_runs_a_registered_controller, setup, itest_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_resource_selector_and_configmap_trim, setup, itest_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_manager_watch_all_and_works, setup, itest_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

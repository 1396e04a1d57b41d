/*
 * A raw watch (kube_watch) against a real kube-apiserver: started from a
 * list's resourceVersion, it delivers a ConfigMap's create, update and delete
 * in order with increasing resourceVersions; a field selector limits it to
 * one object; started from no resourceVersion (which the apiserver serves as
 * a WatchList, compressed when asked), it replays the existing objects and
 * then follows new ones.
 * Works in its own namespace.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kube_itest.h"

#include "kube/client.h"
#include "kube/watch.h"
#include "util/error.h"
#include "util/json.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int setup(void **state)
{
    return itest_fixture_setup(state, "watch");
}

/*
 * What the watch saw of the object named stop_at, as "TYPE name data.v" lines
 * (other objects, such as the kube-root-ca.crt the controller manager adds to
 * every namespace, are left out), and whether resourceVersions only grew;
 * stops at its DELETED.
 */
typedef struct {
    char log[4096];
    const char *stop_at;
    int others; /* events about other objects */
    long long last_rv;
    bool rv_increasing;
} seen;

static int on_event(void *ctx, kube_watch_type type, cJSON *obj)
{
    seen *s = ctx;
    const char *name = json_str(obj, "metadata", "name", NULL);
    const char *v = json_str(obj, "data", "v", NULL);
    const char *rv = json_str(obj, "metadata", "resourceVersion", NULL);
    int stop = 0;
    if (type != KUBE_WATCH_BOOKMARK && name && strcmp(name, s->stop_at) != 0) {
        s->others++;
    } else if (type != KUBE_WATCH_BOOKMARK && name) {
        long long n = rv ? atoll(rv) : 0;
        if (n <= s->last_rv)
            s->rv_increasing = false;
        s->last_rv = n;
        snprintf(s->log + strlen(s->log), sizeof(s->log) - strlen(s->log), "%s %s %s\n", kube_watch_type_name(type),
                 name, v ? v : "-");
        stop = type == KUBE_WATCH_DELETED && strcmp(name, s->stop_at) == 0;
    }
    cJSON_Delete(obj);
    return stop;
}

static char *list_rv(kube_client *c, const char *ns)
{
    cJSON *list = NULL;
    char *rv;
    assert_int_equal(kube_list(&list, c, &KUBE_CONFIGMAPS, ns, NULL), 0);
    rv = strdup(json_str(list, "metadata", "resourceVersion", NULL));
    cJSON_Delete(list);
    return rv;
}

static void write_sequence(kube_client *c, const char *ns, const char *name)
{
    cJSON *cm = itest_json(
        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\"},\"data\":{\"v\":\"1\"}}", name);
    assert_int_equal(kube_create(NULL, c, &KUBE_CONFIGMAPS, ns, cm), 0);
    assert_int_equal(kube_patch(NULL, c, &KUBE_CONFIGMAPS, ns, name, NULL, KUBE_PATCH_MERGE,
                                "{\"data\":{\"v\":\"2\"}}"),
                     0);
    assert_int_equal(kube_patch(NULL, c, &KUBE_CONFIGMAPS, ns, name, NULL, KUBE_PATCH_MERGE,
                                "{\"data\":{\"v\":\"3\"}}"),
                     0);
    assert_int_equal(kube_delete(c, &KUBE_CONFIGMAPS, ns, name, NULL), 0);
    cJSON_Delete(cm);
}

static void test_watch_sees_changes_in_order(void **state)
{
    itest_fixture *f = itest_need(state);
    seen s = {.stop_at = "w1", .rv_increasing = true};
    char *rv = list_rv(f->c, f->ns);
    kube_watch_opts wo = {.resource_version = rv, .timeout_seconds = 60};

    write_sequence(f->c, f->ns, "w1");
    /* Everything after rv is replayed; the callback stops at the delete. */
    assert_int_equal(kube_watch(f->c, &KUBE_CONFIGMAPS, f->ns, &wo, on_event, &s), MB_ESTOPPED);
    assert_string_equal(s.log, "ADDED w1 1\n"
                               "MODIFIED w1 2\n"
                               "MODIFIED w1 3\n"
                               "DELETED w1 3\n");
    assert_true(s.rv_increasing);
    free(rv);
}

static void test_watch_field_selector(void **state)
{
    itest_fixture *f = itest_need(state);
    seen s = {.stop_at = "wanted", .rv_increasing = true};
    char *rv = list_rv(f->c, f->ns);
    kube_watch_opts wo = {.resource_version = rv, .timeout_seconds = 60, .field_selector = "metadata.name=wanted"};
    /* "other" is written first and must not show up at all. */

    write_sequence(f->c, f->ns, "other");
    write_sequence(f->c, f->ns, "wanted");
    assert_int_equal(kube_watch(f->c, &KUBE_CONFIGMAPS, f->ns, &wo, on_event, &s), MB_ESTOPPED);
    assert_string_equal(s.log, "ADDED wanted 1\n"
                               "MODIFIED wanted 2\n"
                               "MODIFIED wanted 3\n"
                               "DELETED wanted 3\n");
    assert_int_equal(s.others, 0);
    free(rv);
}

static int count_added(void *ctx, kube_watch_type type, cJSON *obj)
{
    int *added = ctx;
    const char *name = json_str(obj, "metadata", "name", NULL);
    if (type == KUBE_WATCH_ADDED && name && strncmp(name, "pre-", 4) == 0)
        (*added)++;
    cJSON_Delete(obj);
    return *added == 4;
}

static void *create_slowly(void *arg)
{
    itest_fixture *f = arg;
    for (int i = 2; i <= 4; i++) {
        nanosleep(&(struct timespec){.tv_nsec = 300 * 1000 * 1000}, NULL);
        cJSON *cm = itest_json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"pre-%d\"}}", i);
        kube_create(NULL, f->c, &KUBE_CONFIGMAPS, f->ns, cm);
        cJSON_Delete(cm);
    }
    return NULL;
}

static void test_watch_from_now_replays_then_follows(void **state)
{
    itest_fixture *f = itest_need(state);
    int added = 0;
    pthread_t th;
    kube_watch_opts wo = {.timeout_seconds = 60};
    cJSON *cm = itest_json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"pre-1\"}}");
    assert_int_equal(kube_create(NULL, f->c, &KUBE_CONFIGMAPS, f->ns, cm), 0);
    cJSON_Delete(cm);
    /* the existing object, then three created one by one while the stream is open: each must arrive */
    assert_int_equal(pthread_create(&th, NULL, create_slowly, f), 0);
    assert_int_equal(kube_watch(f->c, &KUBE_CONFIGMAPS, f->ns, &wo, count_added, &added), MB_ESTOPPED);
    pthread_join(th, NULL);
    assert_int_equal(added, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_watch_sees_changes_in_order, setup, itest_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_watch_field_selector, setup, itest_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_watch_from_now_replays_then_follows, setup, itest_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

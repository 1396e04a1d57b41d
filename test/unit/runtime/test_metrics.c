/*
 * The metrics registry and its exposition: a small registry rendered byte for
 * byte (escaped label values and help, a histogram's cumulative buckets with
 * +Inf, _sum and _count, a gauge set by a collector, families sorted by name
 * and series by label values), number formatting, bucket boundaries,
 * rejected names, collectors that are removed, counts from many threads,
 * and the process-wide registry with API.md's metrics.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "runtime/metrics_families.h"
#include "util/error.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

static int registry_setup(void **state)
{
    metrics_registry *r = NULL;
    assert_int_equal(metrics_registry_new(&r), 0);
    *state = r;
    return 0;
}

static int registry_teardown(void **state)
{
    metrics_registry_free(*state);
    return 0;
}

static char *render(metrics_registry *r)
{
    char *out = NULL;
    assert_int_equal(metrics_render(&out, r), 0);
    assert_non_null(out);
    return out;
}

static void queue_depth(void *ctx, metrics_registry *r)
{
    int *depth = ctx;
    metrics_set(metrics_family_find(r, "test_queue_depth"), L("fast"), *depth);
}

static void test_exposition_byte_for_byte(void **state)
{
    metrics_registry *r = *state;
    metrics_family *req = NULL, *lat = NULL, *up = NULL, *depth = NULL;
    static const double bounds[] = {0.1, 0.5, 1};
    int queued = 7;

    assert_int_equal(metrics_family_add(&req, r, METRICS_COUNTER, "test_requests_total",
                                        "Requests, by path \\ and \"code\".", L("path", "code"), NULL, 0),
                     0);
    assert_int_equal(metrics_family_add(&lat, r, METRICS_HISTOGRAM, "test_latency_seconds", "Latency.", L("op"), bounds,
                                        3),
                     0);
    assert_int_equal(metrics_family_add(&up, r, METRICS_GAUGE, "test_up", "Up.", NULL, NULL, 0), 0);
    assert_int_equal(metrics_family_add(&depth, r, METRICS_GAUGE, "test_queue_depth", "Depth.", L("queue"), NULL, 0),
                     0);
    assert_int_equal(metrics_collector_add(r, queue_depth, &queued), 0);

    metrics_add(req, L("/b", "200"), 2);
    metrics_add(req, L("/a \"q\"\\x\ny", "500"), 1);
    metrics_add(req, L("/b", "200"), 1);
    metrics_observe(lat, L("get"), 0.1); /* on a bound: counts in that bucket */
    metrics_observe(lat, L("get"), 0.75);
    metrics_observe(lat, L("get"), 3);
    metrics_set(up, NULL, 1);

    char *out = render(r);
    assert_string_equal(out, "# HELP test_latency_seconds Latency.\n"
                             "# TYPE test_latency_seconds histogram\n"
                             "test_latency_seconds_bucket{op=\"get\",le=\"0.1\"} 1\n"
                             "test_latency_seconds_bucket{op=\"get\",le=\"0.5\"} 1\n"
                             "test_latency_seconds_bucket{op=\"get\",le=\"1\"} 2\n"
                             "test_latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 3\n"
                             "test_latency_seconds_sum{op=\"get\"} 3.85\n"
                             "test_latency_seconds_count{op=\"get\"} 3\n"
                             "# HELP test_queue_depth Depth.\n"
                             "# TYPE test_queue_depth gauge\n"
                             "test_queue_depth{queue=\"fast\"} 7\n"
                             "# HELP test_requests_total Requests, by path \\\\ and \"code\".\n"
                             "# TYPE test_requests_total counter\n"
                             "test_requests_total{path=\"/a \\\"q\\\"\\\\x\\ny\",code=\"500\"} 1\n"
                             "test_requests_total{path=\"/b\",code=\"200\"} 3\n"
                             "# HELP test_up Up.\n"
                             "# TYPE test_up gauge\n"
                             "test_up 1\n");
    free(out);

    /* the collector runs at every render */
    queued = 3;
    out = render(r);
    assert_non_null(strstr(out, "test_queue_depth{queue=\"fast\"} 3\n"));
    free(out);
    metrics_collector_remove(r, queue_depth, &queued);
}

static void test_numbers(void **state)
{
    metrics_registry *r = *state;
    metrics_family *g = NULL;
    char *out;

    assert_int_equal(metrics_family_add(&g, r, METRICS_GAUGE, "n", "", L("k"), NULL, 0), 0);
    metrics_set(g, L("a"), 0.1 + 0.2);
    metrics_set(g, L("b"), 1e20);
    metrics_set(g, L("c"), -2.5);
    metrics_set(g, L("d"), NAN);
    metrics_set(g, L("e"), INFINITY);
    metrics_set(g, L("f"), -0.0);
    metrics_set(g, L("g"), 123456789);
    out = render(r);
    assert_string_equal(out, "# HELP n \n"
                             "# TYPE n gauge\n"
                             "n{k=\"a\"} 0.30000000000000004\n"
                             "n{k=\"b\"} 1e+20\n"
                             "n{k=\"c\"} -2.5\n"
                             "n{k=\"d\"} NaN\n"
                             "n{k=\"e\"} +Inf\n"
                             "n{k=\"f\"} 0\n"
                             "n{k=\"g\"} 123456789\n");
    free(out);
}

static void test_default_buckets_and_empty_family(void **state)
{
    metrics_registry *r = *state;
    metrics_family *h = NULL;
    char *out;

    assert_int_equal(metrics_family_add(&h, r, METRICS_HISTOGRAM, "h_seconds", "H.", NULL, NULL, 0), 0);
    assert_int_equal(metrics_family_add(NULL, r, METRICS_COUNTER, "unused_total", "Nothing yet.", L("x"), NULL, 0), 0);
    metrics_observe(h, NULL, 301);
    metrics_observe(h, NULL, 0.004);
    out = render(r);
    assert_string_equal(out, "# HELP h_seconds H.\n"
                             "# TYPE h_seconds histogram\n"
                             "h_seconds_bucket{le=\"0.005\"} 1\n"
                             "h_seconds_bucket{le=\"0.01\"} 1\n"
                             "h_seconds_bucket{le=\"0.025\"} 1\n"
                             "h_seconds_bucket{le=\"0.05\"} 1\n"
                             "h_seconds_bucket{le=\"0.1\"} 1\n"
                             "h_seconds_bucket{le=\"0.25\"} 1\n"
                             "h_seconds_bucket{le=\"0.5\"} 1\n"
                             "h_seconds_bucket{le=\"1\"} 1\n"
                             "h_seconds_bucket{le=\"2.5\"} 1\n"
                             "h_seconds_bucket{le=\"5\"} 1\n"
                             "h_seconds_bucket{le=\"10\"} 1\n"
                             "h_seconds_bucket{le=\"30\"} 1\n"
                             "h_seconds_bucket{le=\"60\"} 1\n"
                             "h_seconds_bucket{le=\"120\"} 1\n"
                             "h_seconds_bucket{le=\"300\"} 1\n"
                             "h_seconds_bucket{le=\"+Inf\"} 2\n"
                             "h_seconds_sum 301.004\n"
                             "h_seconds_count 2\n"
                             "# HELP unused_total Nothing yet.\n"
                             "# TYPE unused_total counter\n");
    free(out);
}

static void test_rejected_registrations(void **state)
{
    metrics_registry *r = *state;
    static const double down[] = {1, 0.5};
    static const double inf[] = {1, INFINITY};

    assert_int_equal(metrics_family_add(NULL, r, METRICS_COUNTER, "9lives", "", NULL, NULL, 0), MB_EINVAL);
    assert_int_equal(metrics_family_add(NULL, r, METRICS_COUNTER, "a-b", "", NULL, NULL, 0), MB_EINVAL);
    assert_int_equal(metrics_family_add(NULL, r, METRICS_COUNTER, "", "", NULL, NULL, 0), MB_EINVAL);
    assert_int_equal(metrics_family_add(NULL, r, METRICS_COUNTER, "ok", "two\nlines", NULL, NULL, 0), MB_EINVAL);
    assert_int_equal(metrics_family_add(NULL, r, METRICS_COUNTER, "ok", "", L("__x"), NULL, 0), MB_EINVAL);
    assert_int_equal(metrics_family_add(NULL, r, METRICS_COUNTER, "ok", "", L("a:b"), NULL, 0), MB_EINVAL);
    assert_int_equal(metrics_family_add(NULL, r, METRICS_COUNTER, "ok", "", L("a", "a"), NULL, 0), MB_EINVAL);
    assert_int_equal(metrics_family_add(NULL, r, METRICS_HISTOGRAM, "ok", "", L("le"), NULL, 0), MB_EINVAL);
    assert_int_equal(metrics_family_add(NULL, r, METRICS_HISTOGRAM, "ok", "", NULL, down, 2), MB_EINVAL);
    assert_int_equal(metrics_family_add(NULL, r, METRICS_HISTOGRAM, "ok", "", NULL, inf, 2), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "increasing"));
    assert_int_equal(metrics_family_add(NULL, r, METRICS_COUNTER, "ns:ok_total", "", L("le"), NULL, 0), 0);
    assert_int_equal(metrics_family_add(NULL, r, METRICS_GAUGE, "ns:ok_total", "", NULL, NULL, 0), MB_EEXISTS);
    assert_null(metrics_family_find(r, "ok"));
    assert_non_null(metrics_family_find(r, "ns:ok_total"));
}

static void test_misuse_is_ignored(void **state)
{
    metrics_registry *r = *state;
    metrics_family *c = NULL, *h = NULL;
    char long_value[1000];

    assert_int_equal(metrics_family_add(&c, r, METRICS_COUNTER, "c_total", "", L("k"), NULL, 0), 0);
    assert_int_equal(metrics_family_add(&h, r, METRICS_HISTOGRAM, "h", "", NULL, NULL, 0), 0);
    metrics_add(c, L("a"), 2);
    metrics_add(c, L("a"), -1);    /* counters only go up */
    metrics_observe(c, L("a"), 5); /* not a histogram */
    metrics_set(h, NULL, 5);       /* not a gauge */
    metrics_add(NULL, L("a"), 1);
    assert_true(metrics_value(c, L("a")) == 2);
    assert_true(metrics_value(h, NULL) == 0);

    /* a label set longer than the stack key takes the heap path and is still one series */
    memset(long_value, 'v', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    metrics_add(c, L(long_value), 1);
    metrics_add(c, L(long_value), 1);
    assert_true(metrics_value(c, L(long_value)) == 2);
    assert_true(metrics_value(c, L("b")) == 0);
}

static void counting_collector(void *ctx, metrics_registry *r)
{
    (void)r;
    (*(int *)ctx)++;
}

static void test_removed_collector_is_not_called(void **state)
{
    metrics_registry *r = *state;
    int calls_a = 0, calls_b = 0;
    char *out;

    assert_int_equal(metrics_collector_add(r, counting_collector, &calls_a), 0);
    assert_int_equal(metrics_collector_add(r, counting_collector, &calls_b), 0);
    free(render(r));
    metrics_collector_remove(r, counting_collector, &calls_a);
    out = render(r);
    free(out);
    assert_int_equal(calls_a, 1);
    assert_int_equal(calls_b, 2);
    metrics_collector_remove(r, counting_collector, &calls_b);
}

typedef struct {
    metrics_family *c, *h;
    int id;
} worker_arg;

#define THREADS 4
#define PER_THREAD 20000

static void *count_worker(void *p)
{
    worker_arg *a = p;
    char key[8];
    snprintf(key, sizeof(key), "t%d", a->id % 2);
    for (int i = 0; i < PER_THREAD; i++) {
        metrics_add(a->c, L(key), 1);
        metrics_observe(a->h, L(key), 0.01);
    }
    return NULL;
}

static void test_counts_from_many_threads(void **state)
{
    metrics_registry *r = *state;
    metrics_family *c = NULL, *h = NULL;
    pthread_t threads[THREADS];
    worker_arg args[THREADS];

    assert_int_equal(metrics_family_add(&c, r, METRICS_COUNTER, "hits_total", "", L("t"), NULL, 0), 0);
    assert_int_equal(metrics_family_add(&h, r, METRICS_HISTOGRAM, "hit_seconds", "", L("t"), NULL, 0), 0);
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg){c, h, i};
        assert_int_equal(pthread_create(&threads[i], NULL, count_worker, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    assert_true(metrics_value(c, L("t0")) == THREADS / 2 * PER_THREAD);
    assert_true(metrics_value(c, L("t1")) == THREADS / 2 * PER_THREAD);
    assert_true(metrics_value(h, L("t1")) == THREADS / 2 * PER_THREAD);
}

static void test_membrane_metrics(void **state)
{
    static const char *const names[] = {
        "membrane_reconcile_total counter",
        "membrane_reconcile_duration_seconds histogram",
        "membrane_workqueue_depth gauge",
        "membrane_rollouts_total counter",
        "membrane_rollbacks_total counter",
        "membrane_verification_check_duration_seconds histogram",
        "membrane_verification_failures_total counter",
        "membrane_watch_restarts_total counter",
        "membrane_api_requests_total counter",
        "membrane_is_leader gauge",
        "membrane_build_info gauge",
    };
    metrics_registry *r = metrics_default();
    char *out, line[128];
    (void)state;

    assert_non_null(r);
    assert_ptr_equal(metrics_default(), r);
    metrics_reconcile_observe("GovernedAPIRelease", METRICS_RESULT_SUCCESS, 0.02);
    metrics_reconcile_observe("GovernedAPIRelease", METRICS_RESULT_SUCCESS, 0.2);
    metrics_api_request_inc("GET", 200);
    metrics_api_request_inc("PUT", 409);
    metrics_api_request_inc("GET", 0);
    metrics_rollout_inc("Succeeded");
    metrics_rollback_inc("SmokeFailure");
    metrics_check_observe("membrane-smoke", 1.5, true);
    metrics_check_observe("membrane-contract", 0.5, false);
    metrics_workqueue_depth_set("GovernedAPIRelease", 4);
    metrics_watch_restarts_set("pods", 2);
    metrics_leader_set(true);

    out = render(r);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(line, sizeof(line), "# TYPE %s\n", names[i]);
        assert_non_null(strstr(out, line));
    }
    assert_non_null(strstr(out, "\nmembrane_reconcile_total{kind=\"GovernedAPIRelease\",result=\"success\"} 2\n"));
    assert_non_null(
        strstr(out, "\nmembrane_reconcile_duration_seconds_bucket{kind=\"GovernedAPIRelease\",le=\"0.025\"} 1\n"));
    assert_non_null(strstr(out, "\nmembrane_reconcile_duration_seconds_count{kind=\"GovernedAPIRelease\"} 2\n"));
    assert_non_null(strstr(out, "\nmembrane_api_requests_total{verb=\"GET\",code=\"200\"} 1\n"));
    assert_non_null(strstr(out, "\nmembrane_api_requests_total{verb=\"PUT\",code=\"409\"} 1\n"));
    assert_non_null(strstr(out, "\nmembrane_api_requests_total{verb=\"GET\",code=\"<error>\"} 1\n"));
    assert_non_null(strstr(out, "\nmembrane_rollouts_total{outcome=\"Succeeded\"} 1\n"));
    assert_non_null(strstr(out, "\nmembrane_rollbacks_total{trigger=\"SmokeFailure\"} 1\n"));
    assert_non_null(strstr(out, "\nmembrane_verification_failures_total{check=\"membrane-smoke\"} 1\n"));
    assert_null(strstr(out, "membrane_verification_failures_total{check=\"membrane-contract\"}"));
    assert_non_null(
        strstr(out, "\nmembrane_verification_check_duration_seconds_count{check=\"membrane-contract\"} 1\n"));
    assert_non_null(strstr(out, "\nmembrane_workqueue_depth{kind=\"GovernedAPIRelease\"} 4\n"));
    assert_non_null(strstr(out, "\nmembrane_watch_restarts_total{resource=\"pods\"} 2\n"));
    assert_non_null(strstr(out, "\nmembrane_is_leader 1\n"));
    assert_non_null(strstr(out, "\nmembrane_build_info{version=\"" MEMBRANE_VERSION "\"} 1\n"));
    free(out);

    metrics_default_free();
    /* a fresh registry after free: counts start again */
    metrics_api_request_inc("GET", 200);
    out = render(metrics_default());
    assert_non_null(strstr(out, "\nmembrane_api_requests_total{verb=\"GET\",code=\"200\"} 1\n"));
    assert_non_null(strstr(out, "\nmembrane_is_leader 0\n"));
    free(out);
    metrics_default_free();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exposition_byte_for_byte, registry_setup, registry_teardown),
        cmocka_unit_test_setup_teardown(test_numbers, registry_setup, registry_teardown),
        cmocka_unit_test_setup_teardown(test_default_buckets_and_empty_family, registry_setup, registry_teardown),
        cmocka_unit_test_setup_teardown(test_rejected_registrations, registry_setup, registry_teardown),
        cmocka_unit_test_setup_teardown(test_misuse_is_ignored, registry_setup, registry_teardown),
        cmocka_unit_test_setup_teardown(test_removed_collector_is_not_called, registry_setup, registry_teardown),
        cmocka_unit_test_setup_teardown(test_counts_from_many_threads, registry_setup, registry_teardown),
        cmocka_unit_test(test_membrane_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

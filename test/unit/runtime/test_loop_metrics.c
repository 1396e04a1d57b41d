/*
 * What the reconcile loop reports: membrane_reconcile_total{kind,result} for
 * a success, a requested requeue, a conflict and an error;
 * membrane_reconcile_duration_seconds{kind} with one observation per
 * reconcile; and membrane_workqueue_depth{kind} read from the queue when the
 * registry is rendered, gone from the collectors once the loop is freed.
 * The loop's own log lines name the object by namespace and name.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "runtime/loop.h"
#include "runtime/metrics_families.h"
#include "util/error.h"
#include "util/log.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

static atomic_int done_count;

static int reconcile(reconcile_result *out, void *ctx, const char *key)
{
    (void)ctx;
    int err = 0;
    if (strcmp(key, "ns/requeue") == 0)
        out->requeue_ms = 60000;
    else if (strcmp(key, "ns/conflict") == 0)
        err = mb_error_set(MB_ECONFLICT, "stale");
    else if (strcmp(key, "ns/broken") == 0)
        err = mb_error_set(MB_EINVAL, "terminal"); /* not retried, so counted once */
    atomic_fetch_add(&done_count, 1);
    return err;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double value(const char *family, const char *const *labels)
{
    return metrics_value(metrics_family_find(metrics_default(), family), labels);
}

static void test_reconcile_results_and_durations(void **state)
{
    loop *c = NULL;
    loop_opts opts = {.kind = "Widget", .workers = 2, .reconcile = reconcile};
    (void)state;

    FILE *log = tmpfile();
    assert_non_null(log);
    mb_log_setup(MB_LOG_JSON, MB_LOG_DEBUG, log);
    atomic_store(&done_count, 0);
    assert_int_equal(loop_new(&c, &opts), 0);
    assert_int_equal(loop_start(c), 0);
    loop_enqueue(c, "ns/ok");
    loop_enqueue(c, "ns/requeue");
    loop_enqueue(c, "ns/broken");
    loop_enqueue(c, "ns/conflict");
    /* the conflict comes back after 100 ms and conflicts again: wait for at least 5 reconciles */
    for (int i = 0; i < 500 && atomic_load(&done_count) < 5; i++)
        sleep_ms(10);
    assert_int_equal(loop_stop(c, 5000), 0);

    assert_true(value("membrane_reconcile_total", L("Widget", "success")) == 1);
    assert_true(value("membrane_reconcile_total", L("Widget", "requeue_after")) == 1);
    assert_true(value("membrane_reconcile_total", L("Widget", "error")) == 1);
    double conflicts = value("membrane_reconcile_total", L("Widget", "conflict"));
    assert_true(conflicts >= 2);
    assert_true(value("membrane_reconcile_duration_seconds", L("Widget")) == 3 + conflicts);

    char lines[8192] = "";
    mb_log_setup(MB_LOG_JSON, MB_LOG_INFO, NULL);
    rewind(log);
    size_t n = fread(lines, 1, sizeof(lines) - 1, log);
    lines[n] = '\0';
    fclose(log);
    assert_non_null(strstr(lines,
                           "\"msg\":\"reconcile failed and will not be retried until the object changes: terminal\","
                           "\"kind\":\"Widget\",\"namespace\":\"ns\",\"name\":\"broken\"}"));
    assert_non_null(strstr(lines, "\"msg\":\"conflict, looking again: stale\",\"kind\":\"Widget\",\"namespace\":\"ns\","
                                  "\"name\":\"conflict\"}"));
    loop_free(c);
    metrics_default_free();
}

static int never(reconcile_result *out, void *ctx, const char *key)
{
    (void)out, (void)ctx, (void)key;
    return 0;
}

static void test_workqueue_depth_is_read_when_scraped(void **state)
{
    loop *c = NULL;
    loop_opts opts = {.kind = "Gadget", .workers = 1, .reconcile = never};
    char *out = NULL;
    (void)state;

    assert_int_equal(loop_new(&c, &opts), 0); /* not started: keys stay queued */
    loop_enqueue(c, "ns/a");
    loop_enqueue(c, "ns/b");
    loop_enqueue(c, "ns/c");
    loop_enqueue(c, "ns/a");
    assert_int_equal(metrics_render(&out, metrics_default()), 0);
    assert_non_null(strstr(out, "\nmembrane_workqueue_depth{kind=\"Gadget\"} 3\n"));
    free(out);
    loop_free(c);

    /* freed: its collector is gone, the last value stays */
    assert_int_equal(metrics_render(&out, metrics_default()), 0);
    assert_non_null(strstr(out, "\nmembrane_workqueue_depth{kind=\"Gadget\"} 3\n"));
    free(out);
    metrics_default_free();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reconcile_results_and_durations),
        cmocka_unit_test(test_workqueue_depth_is_read_when_scraped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

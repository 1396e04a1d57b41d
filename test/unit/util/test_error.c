/*
 * The per-thread last-error channel and the JSON path helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/error.h"
#include "util/json.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

static void *other_thread(void *arg)
{
    (void)arg;
    mb_error_set(MB_ECONN, "from the other thread");
    return NULL;
}

static void test_set_and_wrap(void **state)
{
    (void)state;
    assert_int_equal(mb_error_set(MB_ENOTFOUND, "deployment %s not found", "kfm-api"), MB_ENOTFOUND);
    assert_string_equal(mb_error_last(), "deployment kfm-api not found");
    assert_int_equal(mb_error_wrap(MB_EINVAL, "gate %d", 1), MB_EINVAL);
    assert_string_equal(mb_error_last(), "gate 1: deployment kfm-api not found");
    assert_int_equal(mb_error_last_code(), MB_EINVAL);
}

static void test_per_thread(void **state)
{
    (void)state;
    pthread_t t;
    mb_error_set(MB_EGONE, "mine");
    pthread_create(&t, NULL, other_thread, NULL);
    pthread_join(t, NULL);
    assert_string_equal(mb_error_last(), "mine");
    assert_int_equal(mb_error_last_code(), MB_EGONE);
}

static void test_json_paths(void **state)
{
    (void)state;
    cJSON *o = cJSON_Parse("{\"metadata\":{\"name\":\"a\",\"generation\":7,"
                           "\"annotations\":{\"governance.kfm.dev/rollback\":\"true\"}},\"spec\":{\"suspend\":true}}");
    assert_non_null(o);
    assert_string_equal(json_str(o, "metadata", "name", NULL), "a");
    assert_null(json_str(o, "metadata", "generation", NULL));
    assert_int_equal(json_int(0, o, "metadata", "generation", NULL), 7);
    assert_int_equal(json_int(-1, o, "metadata", "missing", NULL), -1);
    assert_true(json_bool(false, o, "spec", "suspend", NULL));
    assert_string_equal(json_str(o, "metadata", "annotations", "governance.kfm.dev/rollback", NULL), "true");
    cJSON *s = json_ensure_object(o, "status", "lastRollback", NULL);
    assert_non_null(s);
    assert_int_equal(json_set_str(s, "trigger", "Manual"), 0);
    assert_int_equal(json_set_str(s, "trigger", "CrashLoop"), 0);
    assert_string_equal(json_str(o, "status", "lastRollback", "trigger", NULL), "CrashLoop");
    cJSON_Delete(o);
}

/* Found by fuzz_status and fuzz_watch: numbers beyond long long were converted with undefined behaviour. */
static void test_json_int_out_of_range(void **state)
{
    (void)state;
    cJSON *o = cJSON_Parse("{\"big\":1e30,\"small\":-1e30,\"inf\":1e999,\"two63\":9223372036854775808,"
                           "\"min\":-9223372036854775808,\"frac\":-2.9}");
    assert_non_null(o);
    assert_non_null(cJSON_AddNumberToObject(o, "nan", NAN));
    assert_true(json_int(0, o, "big", NULL) == LLONG_MAX);
    assert_true(json_int(0, o, "small", NULL) == LLONG_MIN);
    assert_true(json_int(0, o, "inf", NULL) == LLONG_MAX);
    assert_true(json_int(0, o, "two63", NULL) == LLONG_MAX);
    assert_true(json_int(0, o, "min", NULL) == LLONG_MIN);
    assert_true(json_int(0, o, "frac", NULL) == -2);
    assert_true(json_int(-5, o, "nan", NULL) == -5);
    cJSON_Delete(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_and_wrap),
        cmocka_unit_test(test_per_thread),
        cmocka_unit_test(test_json_paths),
        cmocka_unit_test(test_json_int_out_of_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

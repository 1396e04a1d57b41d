/*
 * The informer's pure part: the retry back-off (exponential, capped, jittered
 * into the upper half). The loop itself runs against a real API server in
 * test/integration/test_informer.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "runtime/informer.h"

static void test_same_but_version(void **state)
{
    (void)state;
    static const char *base = "{\"metadata\":{\"name\":\"p\",\"resourceVersion\":\"1\",\"labels\":{\"a\":\"b\"}},"
                              "\"status\":{\"containerStatuses\":[{\"name\":\"api\",\"restartCount\":0}]}}";
    static const struct {
        const char *json;
        bool same;
    } cases[] = {
        /* only the version moved: the same */
        {"{\"metadata\":{\"name\":\"p\",\"resourceVersion\":\"2\",\"labels\":{\"a\":\"b\"}},"
         "\"status\":{\"containerStatuses\":[{\"name\":\"api\",\"restartCount\":0}]}}",
         true},
        /* members in another order: the same */
        {"{\"status\":{\"containerStatuses\":[{\"restartCount\":0,\"name\":\"api\"}]},"
         "\"metadata\":{\"labels\":{\"a\":\"b\"},\"resourceVersion\":\"9\",\"name\":\"p\"}}",
         true},
        /* a restart */
        {"{\"metadata\":{\"name\":\"p\",\"resourceVersion\":\"2\",\"labels\":{\"a\":\"b\"}},"
         "\"status\":{\"containerStatuses\":[{\"name\":\"api\",\"restartCount\":1}]}}",
         false},
        /* a label changed, one added to metadata, the version gone, a top-level member added */
        {"{\"metadata\":{\"name\":\"p\",\"resourceVersion\":\"2\",\"labels\":{\"a\":\"c\"}},"
         "\"status\":{\"containerStatuses\":[{\"name\":\"api\",\"restartCount\":0}]}}",
         false},
        {"{\"metadata\":{\"name\":\"p\",\"resourceVersion\":\"2\",\"labels\":{\"a\":\"b\"},"
         "\"deletionTimestamp\":\"2026-12-06T00:00:00Z\"},"
         "\"status\":{\"containerStatuses\":[{\"name\":\"api\",\"restartCount\":0}]}}",
         false},
        {"{\"metadata\":{\"name\":\"p\",\"labels\":{\"a\":\"b\"}},"
         "\"status\":{\"containerStatuses\":[{\"name\":\"api\",\"restartCount\":0}]}}",
         false},
        {"{\"metadata\":{\"name\":\"p\",\"resourceVersion\":\"2\",\"labels\":{\"a\":\"b\"}},"
         "\"status\":{\"containerStatuses\":[{\"name\":\"api\",\"restartCount\":0}]},\"spec\":{}}",
         false},
    };
    cJSON *old_obj = cJSON_Parse(base);
    assert_non_null(old_obj);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *new_obj = cJSON_Parse(cases[i].json);
        assert_non_null(new_obj);
        if (informer_same_but_version(old_obj, new_obj) != cases[i].same)
            fail_msg("case %zu: want %s", i, cases[i].same ? "the same" : "a change");
        if (informer_same_but_version(new_obj, old_obj) != cases[i].same)
            fail_msg("case %zu, the other way: want %s", i, cases[i].same ? "the same" : "a change");
        cJSON_Delete(new_obj);
    }
    assert_false(informer_same_but_version(old_obj, NULL));
    cJSON_Delete(old_obj);
}

static void test_backoff_doubles_and_caps(void **state)
{
    (void)state;
    /* rnd close to 1: the full delay */
    assert_int_equal(informer_backoff_ms(800, 30000, 1, 0.9999999), 800);
    assert_int_equal(informer_backoff_ms(800, 30000, 2, 0.9999999), 1600);
    assert_int_equal(informer_backoff_ms(800, 30000, 3, 0.9999999), 3200);
    assert_int_equal(informer_backoff_ms(800, 30000, 6, 0.9999999), 25600);
    assert_int_equal(informer_backoff_ms(800, 30000, 7, 0.9999999), 30000);
    assert_int_equal(informer_backoff_ms(800, 30000, 4000000000u, 0.9999999), 30000);
}

static void test_backoff_jitter_stays_in_upper_half(void **state)
{
    (void)state;
    /* rnd 0: half the delay; in between: between half and all of it */
    assert_int_equal(informer_backoff_ms(800, 30000, 1, 0), 400);
    assert_int_equal(informer_backoff_ms(800, 30000, 20, 0), 15000);
    assert_int_equal(informer_backoff_ms(800, 30000, 2, 0.5), 1200);
    for (double r = 0; r < 1; r += 0.01) {
        long d = informer_backoff_ms(1000, 8000, 3, r);
        assert_in_range(d, 2000, 4000);
    }
    /* out-of-range inputs are clamped rather than trusted */
    assert_in_range(informer_backoff_ms(0, 0, 1, 5.0), 0, 1);
    assert_in_range(informer_backoff_ms(100, 50, 1, -1.0), 50, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_doubles_and_caps),
        cmocka_unit_test(test_same_but_version),
        cmocka_unit_test(test_backoff_jitter_stays_in_upper_half),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

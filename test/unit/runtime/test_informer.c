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
        cmocka_unit_test(test_backoff_jitter_stays_in_upper_half),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

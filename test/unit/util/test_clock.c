/*
 * util/clock: the monotonic clock in ns and ms, and elapsed time since a
 * reading. Only orders and lower bounds are asserted, never wall-clock limits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/clock.h"

#include <time.h>

static void test_monotonic(void **state)
{
    (void)state;
    int64_t ns0 = mb_monotonic_ns(), ms0 = mb_monotonic_ms();
    assert_true(ns0 > 0);
    assert_true(ms0 >= ns0 / 1000000);
    nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    int64_t ns1 = mb_monotonic_ns(), ms1 = mb_monotonic_ms();
    assert_true(ns1 - ns0 >= 20 * 1000 * 1000);
    assert_true(ms1 - ms0 >= 19); /* whole milliseconds: a reading may fall just before a tick */
}

static void test_elapsed(void **state)
{
    (void)state;
    int64_t t0 = mb_monotonic_ns();
    nanosleep(&(struct timespec){0, 15 * 1000 * 1000}, NULL);
    double ms = mb_elapsed_ms(t0);
    assert_true(ms >= 15.0);
    /* a fraction of a millisecond is kept */
    assert_true(mb_elapsed_ms(mb_monotonic_ns() - 1500000) >= 1.5);
    /* a reading from the future (a caller's mistake) is not a negative duration */
    assert_true(mb_elapsed_ms(mb_monotonic_ns() + 1000000000LL) == 0.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monotonic),
        cmocka_unit_test(test_elapsed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

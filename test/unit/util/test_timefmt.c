/*
 * RFC 3339 formatting and parsing: the metav1.Time form, offsets, fractions,
 * and what is rejected.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/error.h"
#include "util/timefmt.h"

#include <string.h>

/* 2026-11-22T10:00:00Z, computed by hand: 20779 days since 1970-01-01 (checked with Python), plus 10 h. */
#define T_2026_11_22_10 ((time_t)20779 * 86400 + 10 * 3600)

static void test_format(void **state)
{
    (void)state;
    char buf[TIMEFMT_RFC3339_SIZE];
    assert_int_equal(timefmt_format(buf, sizeof(buf), 0), 0);
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    assert_int_equal(timefmt_format(buf, sizeof(buf), T_2026_11_22_10), 0);
    assert_string_equal(buf, "2026-11-22T10:00:00Z");
    assert_int_equal(timefmt_format(buf, sizeof(buf), 951782400 - 1), 0); /* day before 2000-02-29 ends */
    assert_string_equal(buf, "2000-02-28T23:59:59Z");
    assert_int_equal(timefmt_format(buf, sizeof(buf), 951782400), 0);
    assert_string_equal(buf, "2000-02-29T00:00:00Z");
    assert_int_equal(timefmt_format(buf, sizeof(buf), -1), 0);
    assert_string_equal(buf, "1969-12-31T23:59:59Z");
}

static void test_format_rejects(void **state)
{
    (void)state;
    char buf[TIMEFMT_RFC3339_SIZE];
    assert_int_equal(timefmt_format(buf, sizeof(buf) - 1, 0), MB_EINVAL);
    assert_int_equal(timefmt_format(buf, sizeof(buf), (time_t)253402300800LL), MB_EINVAL); /* 10000-01-01 */
    assert_int_equal(timefmt_format(buf, sizeof(buf), (time_t)253402300799LL), 0);
    assert_string_equal(buf, "9999-12-31T23:59:59Z");
}

static void test_parse(void **state)
{
    (void)state;
    time_t t = 1;
    assert_int_equal(timefmt_parse(&t, "2026-11-22T10:00:00Z"), 0);
    assert_int_equal(t, T_2026_11_22_10);
    assert_int_equal(timefmt_parse(&t, "2026-11-22t10:00:00z"), 0);
    assert_int_equal(t, T_2026_11_22_10);
    assert_int_equal(timefmt_parse(&t, "2026-11-22T12:30:00+02:30"), 0);
    assert_int_equal(t, T_2026_11_22_10);
    assert_int_equal(timefmt_parse(&t, "2026-11-22T05:00:00-05:00"), 0);
    assert_int_equal(t, T_2026_11_22_10);
    assert_int_equal(timefmt_parse(&t, "2026-11-22T10:00:00.999999999Z"), 0);
    assert_int_equal(t, T_2026_11_22_10);
    assert_int_equal(timefmt_parse(&t, "2026-11-22T10:00:00.5-00:00"), 0);
    assert_int_equal(t, T_2026_11_22_10);
    assert_int_equal(timefmt_parse(&t, "2026-11-22T09:59:60Z"), 0);
    assert_int_equal(t, T_2026_11_22_10);
    assert_int_equal(timefmt_parse(&t, "1969-12-31T23:59:59Z"), 0);
    assert_int_equal(t, -1);
    assert_int_equal(timefmt_parse(&t, "2000-02-29T00:00:00Z"), 0);
    assert_int_equal(t, 951782400);
}

static void test_round_trip(void **state)
{
    (void)state;
    char buf[TIMEFMT_RFC3339_SIZE];
    for (time_t t = -86400 * 400; t < (time_t)86400 * 365 * 90; t += 86400 * 97 + 3917) {
        time_t back = 0;
        assert_int_equal(timefmt_format(buf, sizeof(buf), t), 0);
        assert_int_equal(timefmt_parse(&back, buf), 0);
        assert_int_equal(back, t);
    }
}

static void test_parse_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "2026-11-22",
        "2026-11-22T10:00:00",
        "2026-11-22 10:00:00Z",
        "2026-11-22T10:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T10:60:00Z",
        "2026-11-22T10:00:61Z",
        "2026-11-22T10:00:00.Z",
        "2026-11-22T10:00:00+0200",
        "2026-11-22T10:00:00+24:00",
        "2026-11-22T10:00:00Zjunk",
        "26-11-22T10:00:00Z",
        "2026-1-22T10:00:00Z",
        "2026-11-22T10:00:00+02:60",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        time_t t = 42;
        if (timefmt_parse(&t, bad[i]) != MB_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(t, 42);
        assert_non_null(strstr(mb_error_last(), "RFC 3339"));
    }
    assert_int_equal(timefmt_parse(NULL, "2026-11-22T10:00:00Z"), MB_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),     cmocka_unit_test(test_format_rejects), cmocka_unit_test(test_parse),
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_parse_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

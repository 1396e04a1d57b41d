/*
 * The rate limiter with an injected clock: the exact per-key backoff
 * sequence, forget, the token bucket's burst and spacing, and their max.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "runtime/ratelimit.h"
#include "util/error.h"

#include <stdio.h>

#define MS 1000000LL
#define SEC 1000000000LL

static int64_t when(ratelimit *rl, const char *key, int64_t now)
{
    int64_t d = -1;
    assert_int_equal(ratelimit_when(&d, rl, key, now), 0);
    return d;
}

static void test_backoff_sequence(void **state)
{
    (void)state;
    ratelimit *rl = NULL;
    assert_int_equal(ratelimit_new(&rl, NULL), 0);
    /* One failure a minute: the bucket (10/s) is always full, so only the backoff shows. */
    int64_t expect = 5 * MS;
    for (int i = 0; i < 40; i++) {
        assert_int_equal(ratelimit_num_requeues(rl, "ns/a"), i);
        assert_int_equal(when(rl, "ns/a", (int64_t)i * 60 * SEC), expect);
        expect = expect * 2 > 1000 * SEC ? 1000 * SEC : expect * 2;
    }
    /* Spot checks of the same sequence written out. */
    ratelimit_forget(rl, "ns/a");
    static const int64_t seq[] = {5 * MS,     10 * MS,     20 * MS,     40 * MS,     80 * MS,    160 * MS,   320 * MS,
                                  640 * MS,   1280 * MS,   2560 * MS,   5120 * MS,   10240 * MS, 20480 * MS, 40960 * MS,
                                  81920 * MS, 163840 * MS, 327680 * MS, 655360 * MS, 1000 * SEC, 1000 * SEC};
    for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
        assert_int_equal(when(rl, "ns/a", (int64_t)(100 + i) * 60 * SEC), seq[i]);
    ratelimit_free(rl);
}

static void test_backoff_no_overflow(void **state)
{
    (void)state;
    ratelimit *rl = NULL;
    assert_int_equal(ratelimit_new(&rl, NULL), 0);
    int64_t d = 0;
    for (int i = 0; i < 5000; i++)
        d = when(rl, "ns/a", (int64_t)i * 60 * SEC);
    assert_int_equal(d, 1000 * SEC);
    assert_int_equal(ratelimit_num_requeues(rl, "ns/a"), 5000);
    ratelimit_free(rl);
}

static void test_forget_resets_one_key(void **state)
{
    (void)state;
    ratelimit *rl = NULL;
    assert_int_equal(ratelimit_new(&rl, NULL), 0);
    when(rl, "ns/a", 0);
    when(rl, "ns/a", 0);
    when(rl, "ns/a", 0);
    when(rl, "ns/b", 0);
    assert_int_equal(ratelimit_num_requeues(rl, "ns/a"), 3);
    assert_int_equal(ratelimit_num_requeues(rl, "ns/b"), 1);
    ratelimit_forget(rl, "ns/a");
    ratelimit_forget(rl, "ns/never-seen");
    assert_int_equal(ratelimit_num_requeues(rl, "ns/a"), 0);
    assert_int_equal(ratelimit_num_requeues(rl, "ns/b"), 1);
    assert_int_equal(when(rl, "ns/a", 0), 5 * MS);
    assert_int_equal(when(rl, "ns/b", 0), 10 * MS);
    ratelimit_free(rl);
}

static void test_bucket_burst_then_spacing(void **state)
{
    (void)state;
    ratelimit *rl = NULL;
    ratelimit_options o = RATELIMIT_DEFAULT_OPTIONS;
    o.base_delay_ns = 0; /* the bucket alone */
    o.max_delay_ns = 0;
    assert_int_equal(ratelimit_new(&rl, &o), 0);
    char key[32];
    int64_t t0 = 7 * SEC; /* any origin */
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "ns/k%d", i);
        assert_int_equal(when(rl, key, t0), 0);
    }
    /* Past the burst, each request reserves the next token: 100 ms apart at 10/s. */
    for (int i = 1; i <= 20; i++)
        assert_int_equal(when(rl, "ns/more", t0), i * 100 * MS);
    /* 3 s later 30 tokens have come back, 20 of them already promised. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(when(rl, "ns/later", t0 + 3 * SEC), 0);
    assert_int_equal(when(rl, "ns/later", t0 + 3 * SEC), 100 * MS);
    /* A request 50 ms later waits only the remaining 150 ms for the token after that one. */
    assert_int_equal(when(rl, "ns/later", t0 + 3 * SEC + 50 * MS), 150 * MS);
    /* After a long idle time the bucket is full again, but holds no more than burst. */
    for (int i = 0; i < 100; i++)
        assert_int_equal(when(rl, "ns/idle", t0 + 3600 * SEC), 0);
    assert_int_equal(when(rl, "ns/idle", t0 + 3600 * SEC), 100 * MS);
    ratelimit_free(rl);
}

static void test_combined_max(void **state)
{
    (void)state;
    ratelimit *rl = NULL;
    char key[32];
    assert_int_equal(ratelimit_new(&rl, NULL), 0);
    /* 100 first failures within the burst: the backoff (5 ms) wins. */
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "ns/k%d", i);
        assert_int_equal(when(rl, key, 0), 5 * MS);
    }
    /* Bucket empty: a first failure waits for its token (100 ms > 5 ms). */
    assert_int_equal(when(rl, "ns/x", 0), 100 * MS);
    /* "ns/a" failing on: bucket 200, 300, ... ms against backoff 5, 10, ..., 320 ms. */
    for (int i = 0; i < 7; i++)
        assert_int_equal(when(rl, "ns/a", 0), (200 + 100 * i) * MS);
    /* 8th failure: backoff 640 ms < bucket 900 ms; 9th: backoff 1280 ms > bucket 1000 ms. */
    assert_int_equal(when(rl, "ns/a", 0), 900 * MS);
    assert_int_equal(when(rl, "ns/a", 0), 1280 * MS);
    assert_int_equal(ratelimit_num_requeues(rl, "ns/a"), 9);
    ratelimit_free(rl);
}

static void test_bad_options(void **state)
{
    (void)state;
    ratelimit *rl = (ratelimit *)&rl;
    ratelimit_options o = RATELIMIT_DEFAULT_OPTIONS;
    o.max_delay_ns = o.base_delay_ns - 1;
    assert_int_equal(ratelimit_new(&rl, &o), MB_EINVAL);
    assert_null(rl);
    o = RATELIMIT_DEFAULT_OPTIONS;
    o.burst = 0;
    assert_int_equal(ratelimit_new(&rl, &o), MB_EINVAL);
    ratelimit_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_sequence),      cmocka_unit_test(test_backoff_no_overflow),
        cmocka_unit_test(test_forget_resets_one_key), cmocka_unit_test(test_bucket_burst_then_spacing),
        cmocka_unit_test(test_combined_max),          cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

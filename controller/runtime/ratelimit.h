/*
 * The workqueue's rate limiter, as client-go's DefaultControllerRateLimiter:
 * the larger of a per-key exponential backoff (base delay doubling with each
 * failure of that key, capped) and an overall token bucket shared by all
 * keys (qps refill, burst capacity; a request beyond the bucket reserves a
 * future token and waits for it). It is pure: the clock comes in as now_ns
 * (any monotonic nanosecond count), so a test can replay an exact sequence.
 * Not thread-safe; the workqueue calls it under its own lock.
 */
#ifndef MB_RUNTIME_RATELIMIT_H
#define MB_RUNTIME_RATELIMIT_H

#include <stdint.h>

typedef struct ratelimit ratelimit;

typedef struct {
    int64_t base_delay_ns; /* first backoff of a key; client-go: 5 ms */
    int64_t max_delay_ns;  /* backoff cap; client-go: 1000 s */
    double qps;            /* bucket refill per second; client-go: 10; <= 0 disables the bucket */
    int burst;             /* bucket capacity; client-go: 100 */
} ratelimit_options;

/* client-go's defaults: 5 ms doubling up to 1000 s, bucket of 10/s with burst 100. */
#define RATELIMIT_DEFAULT_OPTIONS                                                                                      \
    ((ratelimit_options){.base_delay_ns = 5000000LL, .max_delay_ns = 1000000000000LL, .qps = 10.0, .burst = 100})

/* A new limiter; opts NULL means RATELIMIT_DEFAULT_OPTIONS. 0, MB_EINVAL or MB_ENOMEM. */
int ratelimit_new(ratelimit **out, const ratelimit_options *opts);

/* Accepts NULL. */
void ratelimit_free(ratelimit *rl);

/*
 * Records one more failure of key at now_ns and writes in *out how long
 * (ns) to wait before retrying it: max(base * 2^(failures before this one),
 * capped at max; the wait for the next bucket token). 0 or MB_ENOMEM (then
 * nothing is recorded).
 */
int ratelimit_when(int64_t *out, ratelimit *rl, const char *key, int64_t now_ns);

/* Forgets key's failures (its next backoff is the base delay again). The bucket is unaffected. */
void ratelimit_forget(ratelimit *rl, const char *key);

/* How many failures of key are recorded (calls to ratelimit_when since the last forget). */
int ratelimit_num_requeues(const ratelimit *rl, const char *key);

#endif

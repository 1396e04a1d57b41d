/*
 * Per-key exponential backoff (a uthash table of failure counts) combined by
 * max with a token bucket. The bucket is kept as the single instant at which
 * it would be full again ("full_at"): a reservation moves full_at one token
 * period later, and the caller waits for as long as full_at lies more than
 * burst periods ahead of now. That is golang.org/x/time/rate's Reserve()
 * in integer nanoseconds, so 10/s gives exactly 100 ms per token.
 */
#include "runtime/ratelimit.h"
#include "util/error.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
/* uthash reports a failed allocation by leaving the item's table pointer NULL (instead of exiting). */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

typedef struct {
    UT_hash_handle hh;
    int failures;
    char key[];
} rl_entry;

struct ratelimit {
    ratelimit_options opts;
    int64_t period_ns; /* one token; 0 when the bucket is disabled */
    int64_t full_at;
    bool bucket_started;
    rl_entry *entries;
};

int ratelimit_new(ratelimit **out, const ratelimit_options *opts)
{
    ratelimit_options o = opts ? *opts : RATELIMIT_DEFAULT_OPTIONS;
    ratelimit *rl = NULL;

    *out = NULL;
    if (o.base_delay_ns < 0 || o.max_delay_ns < o.base_delay_ns || (o.qps > 0 && o.burst < 1) || o.qps > 1e9)
        return mb_error_set(MB_EINVAL, "rate limiter options are inconsistent; need "
                                       "0 <= base delay <= max delay, qps <= 1e9 and burst >= 1 when qps > 0");
    if (!(rl = calloc(1, sizeof(*rl))))
        return mb_error_set(MB_ENOMEM, "out of memory creating a rate limiter");
    rl->opts = o;
    rl->period_ns = o.qps > 0 ? (int64_t)(1e9 / o.qps + 0.5) : 0;
    *out = rl;
    return 0;
}

void ratelimit_free(ratelimit *rl)
{
    rl_entry *e, *tmp;

    if (!rl)
        return;
    HASH_ITER(hh, rl->entries, e, tmp) {
        HASH_DEL(rl->entries, e);
        free(e);
    }
    free(rl);
}

static int64_t backoff(const ratelimit_options *o, int exp)
{
    int64_t d = o->base_delay_ns;
    for (int i = 0; i < exp && d > 0 && d < o->max_delay_ns; i++)
        d = d > o->max_delay_ns / 2 ? o->max_delay_ns : d * 2;
    return d < o->max_delay_ns ? d : o->max_delay_ns;
}

static int64_t bucket_reserve(ratelimit *rl, int64_t now)
{
    if (!rl->period_ns)
        return 0;
    if (!rl->bucket_started || rl->full_at < now) {
        rl->full_at = now;
        rl->bucket_started = true;
    }
    rl->full_at += rl->period_ns;
    int64_t ahead = rl->full_at - now;
    int64_t capacity = (int64_t)rl->opts.burst * rl->period_ns;
    return ahead > capacity ? ahead - capacity : 0;
}

int ratelimit_when(int64_t *out, ratelimit *rl, const char *key, int64_t now_ns)
{
    rl_entry *e = NULL;
    size_t len = strlen(key);

    HASH_FIND(hh, rl->entries, key, len, e);
    if (!e) {
        if (!(e = calloc(1, sizeof(*e) + len + 1)))
            return mb_error_set(MB_ENOMEM, "out of memory recording a failure of %s", key);
        memcpy(e->key, key, len + 1);
        HASH_ADD_KEYPTR(hh, rl->entries, e->key, len, e);
        if (!e->hh.tbl) {
            free(e);
            return mb_error_set(MB_ENOMEM, "out of memory recording a failure of %s", key);
        }
    }
    int64_t item = backoff(&rl->opts, e->failures);
    if (e->failures < INT32_MAX)
        e->failures++;
    int64_t bucket = bucket_reserve(rl, now_ns);
    *out = item > bucket ? item : bucket;
    return 0;
}

void ratelimit_forget(ratelimit *rl, const char *key)
{
    rl_entry *e = NULL;

    HASH_FIND(hh, rl->entries, key, strlen(key), e);
    if (e) {
        HASH_DEL(rl->entries, e);
        free(e);
    }
}

int ratelimit_num_requeues(const ratelimit *rl, const char *key)
{
    rl_entry *e = NULL;

    HASH_FIND(hh, rl->entries, key, strlen(key), e);
    return e ? e->failures : 0;
}

/*
 * The double's metrics (double_metrics.h): a small fixed store, one mutex,
 * rendered in the Prometheus text format on each scrape.
 */
#include "double_metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGESTS_MAX 128
#define CODES_MAX 12
#define DIGEST_LEN 80

static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

typedef struct {
    char digest[DIGEST_LEN];
    int codes[CODES_MAX];
    unsigned long long count_by_code[CODES_MAX];
    size_t ncodes;
    unsigned long long buckets[NBOUNDS]; /* cumulative when rendered; here per bucket */
    unsigned long long count;
    double sum;
} series;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static series store[DIGESTS_MAX];
static size_t nstore;

/* The digest's series, made when missing; NULL when the store is full. Under lock. */
static series *find(const char *digest)
{
    for (size_t i = 0; i < nstore; i++)
        if (strcmp(store[i].digest, digest) == 0)
            return &store[i];
    if (nstore == DIGESTS_MAX)
        return NULL;
    series *s = &store[nstore++];
    memset(s, 0, sizeof(*s));
    snprintf(s->digest, sizeof(s->digest), "%s", digest);
    return s;
}

static void code_add(series *s, int code, unsigned long long n)
{
    for (size_t i = 0; i < s->ncodes; i++) {
        if (s->codes[i] == code) {
            s->count_by_code[i] += n;
            return;
        }
    }
    if (s->ncodes < CODES_MAX) {
        s->codes[s->ncodes] = code;
        s->count_by_code[s->ncodes++] = n;
    }
}

void double_metrics_declare(const char *digest)
{
    pthread_mutex_lock(&lock);
    series *s = find(digest);
    if (s) {
        code_add(s, 200, 0);
        code_add(s, 500, 0);
    }
    pthread_mutex_unlock(&lock);
}

void double_metrics_observe(const char *digest, int code, double seconds)
{
    pthread_mutex_lock(&lock);
    series *s = find(digest);
    if (s) {
        code_add(s, code, 1);
        for (size_t i = 0; i < NBOUNDS; i++) {
            if (seconds <= bounds[i]) {
                s->buckets[i]++;
                break;
            }
        }
        s->count++;
        s->sum += seconds;
    }
    pthread_mutex_unlock(&lock);
}

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        if (t->failed)
            return;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->buf && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap < t->len + (size_t)n + 1)
            cap *= 2;
        char *b = realloc(t->buf, cap);
        if (!b) {
            t->failed = 1;
            return;
        }
        t->buf = b;
        t->cap = cap;
    }
}

char *double_metrics_render(void)
{
    text t = {0};
    pthread_mutex_lock(&lock);
    put(&t, "# HELP http_requests_total Answers of the governed API by status code and by the image digest served.\n"
            "# TYPE http_requests_total counter\n");
    for (size_t i = 0; i < nstore; i++)
        for (size_t k = 0; k < store[i].ncodes; k++)
            put(&t, "http_requests_total{code=\"%d\",digest=\"%s\"} %llu\n", store[i].codes[k], store[i].digest,
                store[i].count_by_code[k]);
    put(&t, "# HELP http_request_duration_seconds How long the governed API took to answer, by image digest.\n"
            "# TYPE http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < nstore; i++) {
        unsigned long long cum = 0;
        for (size_t b = 0; b < NBOUNDS; b++) {
            cum += store[i].buckets[b];
            put(&t, "http_request_duration_seconds_bucket{digest=\"%s\",le=\"%g\"} %llu\n", store[i].digest, bounds[b],
                cum);
        }
        put(&t, "http_request_duration_seconds_bucket{digest=\"%s\",le=\"+Inf\"} %llu\n", store[i].digest,
            store[i].count);
        put(&t, "http_request_duration_seconds_sum{digest=\"%s\"} %.6f\n", store[i].digest, store[i].sum);
        put(&t, "http_request_duration_seconds_count{digest=\"%s\"} %llu\n", store[i].digest, store[i].count);
    }
    pthread_mutex_unlock(&lock);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    return t.buf;
}

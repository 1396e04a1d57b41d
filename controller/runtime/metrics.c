/*
 * The metrics registry and the Prometheus text exposition format (0.0.4),
 * a leaf (membrane's own families are in metrics_families.c). A family keeps its
 * series in a hash keyed by the label values joined with 0xff (a byte that
 * never occurs in UTF-8), under the family's mutex; a render copies nothing
 * but the series pointers it sorts.
 */
#include "runtime/metrics.h"
#include "util/error.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* uthash reports a failed allocation by leaving the item's table pointer NULL (instead of exiting). */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#define KEY_SEP '\xff'
#define KEY_STACK 256

const double METRICS_DURATION_BUCKETS[METRICS_DURATION_BUCKETS_N] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
};

typedef struct series {
    UT_hash_handle hh;
    char *key;
    char **values;     /* one per label */
    double value;      /* counter and gauge */
    double sum;        /* histogram */
    uint64_t count;    /* histogram */
    uint64_t *buckets; /* histogram: per bucket, not cumulative; the last is +Inf */
} series;

struct metrics_family {
    pthread_mutex_t mu;
    metrics_type type;
    char *name;
    char *help;
    size_t nlabels;
    char *labels[METRICS_MAX_LABELS];
    double *bounds;
    size_t nbounds;
    series *series; /* uthash head */
    size_t nseries;
};

typedef struct collector {
    metrics_collect_fn fn;
    void *ctx;
    struct collector *next;
} collector;

struct metrics_registry {
    pthread_mutex_t mu;        /* families */
    metrics_family **families; /* sorted by name */
    size_t nfamilies, cap;
    pthread_mutex_t collect_mu; /* collectors, and one collection at a time */
    collector *collectors;
};

/* ---- registry and families ---- */

int metrics_registry_new(metrics_registry **out)
{
    metrics_registry *r = calloc(1, sizeof(*r));
    *out = NULL;
    if (!r)
        return mb_error_set(MB_ENOMEM, "out of memory");
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->collect_mu, NULL);
    *out = r;
    return 0;
}

static void series_free(series *s, size_t nlabels)
{
    if (!s)
        return;
    for (size_t i = 0; s->values && i < nlabels; i++)
        free(s->values[i]);
    free(s->values);
    free(s->buckets);
    free(s->key);
    free(s);
}

static void family_free(metrics_family *f)
{
    series *s, *tmp;
    if (!f)
        return;
    HASH_ITER(hh, f->series, s, tmp) {
        HASH_DEL(f->series, s);
        series_free(s, f->nlabels);
    }
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->bounds);
    free(f->name);
    free(f->help);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void metrics_registry_free(metrics_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nfamilies; i++)
        family_free(r->families[i]);
    free(r->families);
    while (r->collectors) {
        collector *c = r->collectors;
        r->collectors = c->next;
        free(c);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->collect_mu);
    free(r);
}

static bool name_valid(const char *s, bool colon)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || (colon && ch == ':') ||
                  (p > s && ch >= '0' && ch <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static int family_check(metrics_type type, const char *name, const char *help, const char *const *labels,
                        const double *buckets, size_t nbuckets)
{
    size_t n = 0;
    if (type != METRICS_COUNTER && type != METRICS_GAUGE && type != METRICS_HISTOGRAM)
        return mb_error_set(MB_EINVAL, "metric %s: unknown metric type %d", name ? name : "(null)", (int)type);
    if (!name_valid(name, true))
        return mb_error_set(MB_EINVAL,
                            "metric name \"%s\" is not valid: use letters, digits, '_' and ':', not a digit first",
                            name ? name : "");
    if (help && strchr(help, '\n'))
        return mb_error_set(MB_EINVAL, "metric %s: the help text must be one line", name);
    for (; labels && labels[n]; n++) {
        if (n == METRICS_MAX_LABELS)
            return mb_error_set(MB_EINVAL, "metric %s: more than %d labels", name, METRICS_MAX_LABELS);
        if (!name_valid(labels[n], false) || strncmp(labels[n], "__", 2) == 0)
            return mb_error_set(MB_EINVAL,
                                "metric %s: label name \"%s\" is not valid: use letters, digits and '_', "
                                "not a digit first, not \"__\" first",
                                name, labels[n]);
        if (type == METRICS_HISTOGRAM && strcmp(labels[n], "le") == 0)
            return mb_error_set(MB_EINVAL, "metric %s: a histogram cannot have a label \"le\"", name);
        for (size_t j = 0; j < n; j++)
            if (strcmp(labels[j], labels[n]) == 0)
                return mb_error_set(MB_EINVAL, "metric %s: label \"%s\" appears twice", name, labels[n]);
    }
    if (type == METRICS_HISTOGRAM && buckets) {
        if (nbuckets == 0)
            return mb_error_set(MB_EINVAL, "metric %s: a histogram needs at least one bucket", name);
        for (size_t i = 0; i < nbuckets; i++)
            if (isnan(buckets[i]) || isinf(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1]))
                return mb_error_set(MB_EINVAL,
                                    "metric %s: bucket bounds must be finite and strictly increasing "
                                    "(+Inf is implied)",
                                    name);
    }
    return 0;
}

static series *series_get(metrics_family *f, const char *const *values);

int metrics_family_add(metrics_family **out, metrics_registry *r, metrics_type type, const char *name, const char *help,
                       const char *const *labels, const double *buckets, size_t nbuckets)
{
    metrics_family *f = NULL;
    size_t pos = 0;
    int err = 0;

    if (out)
        *out = NULL;
    if (!r)
        return mb_error_set(MB_EINVAL, "metric %s: no registry", name ? name : "(null)");
    if ((err = family_check(type, name, help, labels, buckets, nbuckets)) < 0)
        return err;
    if (!(f = calloc(1, sizeof(*f))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    pthread_mutex_init(&f->mu, NULL);
    f->type = type;
    if (!(f->name = strdup(name)) || !(f->help = strdup(help ? help : "")))
        goto nomem;
    for (; labels && labels[f->nlabels]; f->nlabels++)
        if (!(f->labels[f->nlabels] = strdup(labels[f->nlabels])))
            goto nomem;
    if (type == METRICS_HISTOGRAM) {
        if (!buckets) {
            buckets = METRICS_DURATION_BUCKETS;
            nbuckets = METRICS_DURATION_BUCKETS_N;
        }
        if (!(f->bounds = malloc(nbuckets * sizeof(double))))
            goto nomem;
        memcpy(f->bounds, buckets, nbuckets * sizeof(double));
        f->nbounds = nbuckets;
    }
    if (f->nlabels == 0 && !series_get(f, NULL))
        goto nomem;

    pthread_mutex_lock(&r->mu);
    while (pos < r->nfamilies && strcmp(r->families[pos]->name, name) < 0)
        pos++;
    if (pos < r->nfamilies && strcmp(r->families[pos]->name, name) == 0) {
        pthread_mutex_unlock(&r->mu);
        err = mb_error_set(MB_EEXISTS, "metric %s is already registered", name);
        goto done;
    }
    if (r->nfamilies == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        metrics_family **fs = realloc(r->families, cap * sizeof(*fs));
        if (!fs) {
            pthread_mutex_unlock(&r->mu);
            goto nomem;
        }
        r->families = fs;
        r->cap = cap;
    }
    memmove(&r->families[pos + 1], &r->families[pos], (r->nfamilies - pos) * sizeof(*r->families));
    r->families[pos] = f;
    r->nfamilies++;
    pthread_mutex_unlock(&r->mu);
    if (out)
        *out = f;
    f = NULL;
    goto done;
nomem:
    err = mb_error_set(MB_ENOMEM, "out of memory");
done:
    family_free(f);
    return err;
}

metrics_family *metrics_family_find(metrics_registry *r, const char *name)
{
    metrics_family *f = NULL;
    if (!r || !name)
        return NULL;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->nfamilies && !f; i++)
        if (strcmp(r->families[i]->name, name) == 0)
            f = r->families[i];
    pthread_mutex_unlock(&r->mu);
    return f;
}

/* ---- series ---- */

/*
 * The hash key of a label set into buf (size bytes) when it fits, else into
 * a new allocation (*heap, which the caller frees). NULL when out of memory.
 */
static char *key_build(char *buf, size_t size, char **heap, const metrics_family *f, const char *const *values)
{
    size_t len = 0, off = 0;
    char *k = buf;
    *heap = NULL;
    for (size_t i = 0; i < f->nlabels; i++)
        len += strlen(values && values[i] ? values[i] : "") + 1;
    if (len + 1 > size) {
        if (!(k = *heap = malloc(len + 1)))
            return NULL;
    }
    for (size_t i = 0; i < f->nlabels; i++) {
        const char *v = values && values[i] ? values[i] : "";
        size_t n = strlen(v);
        memcpy(k + off, v, n);
        off += n;
        k[off++] = KEY_SEP;
    }
    k[off] = '\0';
    return k;
}

/* Under f->mu: the series of values, created when new (NULL when memory ran out). */
static series *series_get(metrics_family *f, const char *const *values)
{
    char buf[KEY_STACK], *heap = NULL, *key;
    series *s = NULL;

    if (!(key = key_build(buf, sizeof(buf), &heap, f, values)))
        return NULL;
    HASH_FIND_STR(f->series, key, s);
    if (s)
        goto done;
    if (!(s = calloc(1, sizeof(*s))) || !(s->key = strdup(key)) ||
        (f->nlabels && !(s->values = calloc(f->nlabels, sizeof(char *)))) ||
        (f->type == METRICS_HISTOGRAM && !(s->buckets = calloc(f->nbounds + 1, sizeof(uint64_t)))))
        goto fail;
    for (size_t i = 0; i < f->nlabels; i++)
        if (!(s->values[i] = strdup(values && values[i] ? values[i] : "")))
            goto fail;
    HASH_ADD_KEYPTR(hh, f->series, s->key, strlen(s->key), s);
    if (!s->hh.tbl)
        goto fail;
    f->nseries++;
    goto done;
fail:
    series_free(s, f->nlabels);
    s = NULL;
done:
    free(heap);
    return s;
}

void metrics_add(metrics_family *f, const char *const *values, double v)
{
    series *s;
    if (!f || f->type == METRICS_HISTOGRAM || (f->type == METRICS_COUNTER && !(v >= 0)))
        return;
    pthread_mutex_lock(&f->mu);
    if ((s = series_get(f, values)))
        s->value += v;
    pthread_mutex_unlock(&f->mu);
}

void metrics_set(metrics_family *f, const char *const *values, double v)
{
    series *s;
    if (!f || f->type == METRICS_HISTOGRAM)
        return;
    pthread_mutex_lock(&f->mu);
    if ((s = series_get(f, values)))
        s->value = v;
    pthread_mutex_unlock(&f->mu);
}

void metrics_observe(metrics_family *f, const char *const *values, double v)
{
    series *s;
    size_t i = 0;
    if (!f || f->type != METRICS_HISTOGRAM || isnan(v))
        return;
    while (i < f->nbounds && v > f->bounds[i])
        i++;
    pthread_mutex_lock(&f->mu);
    if ((s = series_get(f, values))) {
        s->buckets[i]++;
        s->count++;
        s->sum += v;
    }
    pthread_mutex_unlock(&f->mu);
}

double metrics_value(metrics_family *f, const char *const *values)
{
    char buf[KEY_STACK], *heap = NULL, *key;
    series *s = NULL;
    double v = 0;
    if (!f)
        return 0;
    pthread_mutex_lock(&f->mu);
    if ((key = key_build(buf, sizeof(buf), &heap, f, values)))
        HASH_FIND_STR(f->series, key, s);
    if (s)
        v = f->type == METRICS_HISTOGRAM ? (double)s->count : s->value;
    pthread_mutex_unlock(&f->mu);
    free(heap);
    return v;
}

/* ---- collectors ---- */

int metrics_collector_add(metrics_registry *r, metrics_collect_fn fn, void *ctx)
{
    collector *c;
    if (!r || !fn)
        return mb_error_set(MB_EINVAL, "metrics: a collector needs a registry and a function");
    if (!(c = calloc(1, sizeof(*c))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    c->fn = fn;
    c->ctx = ctx;
    pthread_mutex_lock(&r->collect_mu);
    c->next = r->collectors;
    r->collectors = c;
    pthread_mutex_unlock(&r->collect_mu);
    return 0;
}

void metrics_collector_remove(metrics_registry *r, metrics_collect_fn fn, void *ctx)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->collect_mu);
    for (collector **pp = &r->collectors; *pp; pp = &(*pp)->next) {
        if ((*pp)->fn == fn && (*pp)->ctx == ctx) {
            collector *c = *pp;
            *pp = c->next;
            free(c);
            break;
        }
    }
    pthread_mutex_unlock(&r->collect_mu);
}

/* ---- exposition ---- */

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} buf;

static void buf_put(buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* Text with '\\' and newline escaped, and '"' too when quoted (a label value). */
static void buf_escaped(buf *b, const char *s, bool quoted)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = NULL;
        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (quoted && *s == '"')
            esc = "\\\"";
        if (!esc)
            continue;
        buf_put(b, run, (size_t)(s - run));
        buf_str(b, esc);
        run = s + 1;
    }
    buf_put(b, run, (size_t)(s - run));
}

/*
 * A sample value or bucket bound as Prometheus writes it: integers in full
 * (up to 2^53), other numbers in the shortest form that reads back the same,
 * and +Inf, -Inf, NaN.
 */
static void fmt_double(char out[40], double v)
{
    if (isnan(v)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) <= 9007199254740992.0) {
        snprintf(out, 40, "%.0f", v);
        if (strcmp(out, "-0") == 0)
            strcpy(out, "0");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* name{l1="v1",...,extra_name="extra_value"} value\n */
static void sample_put(buf *b, const char *name, const char *suffix, const metrics_family *f, const series *s,
                       const char *extra_name, const char *extra_value, double value)
{
    char num[40];
    bool braces = f->nlabels > 0 || extra_name;
    buf_str(b, name);
    buf_str(b, suffix);
    if (braces)
        buf_put(b, "{", 1);
    for (size_t i = 0; i < f->nlabels; i++) {
        if (i > 0)
            buf_put(b, ",", 1);
        buf_str(b, f->labels[i]);
        buf_put(b, "=\"", 2);
        buf_escaped(b, s->values[i], true);
        buf_put(b, "\"", 1);
    }
    if (extra_name) {
        if (f->nlabels > 0)
            buf_put(b, ",", 1);
        buf_str(b, extra_name);
        buf_put(b, "=\"", 2);
        buf_str(b, extra_value);
        buf_put(b, "\"", 1);
    }
    if (braces)
        buf_put(b, "}", 1);
    buf_put(b, " ", 1);
    fmt_double(num, value);
    buf_str(b, num);
    buf_put(b, "\n", 1);
}

static int series_cmp(const void *a, const void *b, void *arg)
{
    const series *x = *(const series *const *)a, *y = *(const series *const *)b;
    size_t nlabels = *(const size_t *)arg;
    for (size_t i = 0; i < nlabels; i++) {
        int c = strcmp(x->values[i], y->values[i]);
        if (c)
            return c;
    }
    return 0;
}

/* Under f->mu. */
static void family_render(buf *b, metrics_family *f)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    series **all = NULL, *s, *tmp;
    size_t n = 0;

    buf_str(b, "# HELP ");
    buf_str(b, f->name);
    buf_put(b, " ", 1);
    buf_escaped(b, f->help, false);
    buf_str(b, "\n# TYPE ");
    buf_str(b, f->name);
    buf_put(b, " ", 1);
    buf_str(b, type_names[f->type]);
    buf_put(b, "\n", 1);
    if (f->nseries == 0)
        return;
    if (!(all = malloc(f->nseries * sizeof(*all)))) {
        b->oom = true;
        return;
    }
    HASH_ITER(hh, f->series, s, tmp)
        all[n++] = s;
    qsort_r(all, n, sizeof(*all), series_cmp, &f->nlabels);

    for (size_t i = 0; i < n; i++) {
        s = all[i];
        if (f->type != METRICS_HISTOGRAM) {
            sample_put(b, f->name, "", f, s, NULL, NULL, s->value);
            continue;
        }
        uint64_t cum = 0;
        char le[40];
        for (size_t j = 0; j < f->nbounds; j++) {
            cum += s->buckets[j];
            fmt_double(le, f->bounds[j]);
            sample_put(b, f->name, "_bucket", f, s, "le", le, (double)cum);
        }
        sample_put(b, f->name, "_bucket", f, s, "le", "+Inf", (double)s->count);
        sample_put(b, f->name, "_sum", f, s, NULL, NULL, s->sum);
        sample_put(b, f->name, "_count", f, s, NULL, NULL, (double)s->count);
    }
    free(all);
}

int metrics_render(char **out, metrics_registry *r)
{
    buf b = {0};
    *out = NULL;
    if (!r)
        return mb_error_set(MB_EINVAL, "metrics: no registry to render");

    pthread_mutex_lock(&r->collect_mu);
    for (collector *c = r->collectors; c; c = c->next)
        c->fn(c->ctx, r);
    pthread_mutex_unlock(&r->collect_mu);

    buf_put(&b, "", 0);
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->nfamilies && !b.oom; i++) {
        metrics_family *f = r->families[i];
        pthread_mutex_lock(&f->mu);
        family_render(&b, f);
        pthread_mutex_unlock(&f->mu);
    }
    pthread_mutex_unlock(&r->mu);
    if (b.oom) {
        free(b.p);
        return mb_error_set(MB_ENOMEM, "out of memory rendering metrics");
    }
    *out = b.p;
    return 0;
}

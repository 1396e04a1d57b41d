/*
 * Prometheus metrics: a small thread-safe registry of counter, gauge and
 * histogram families with labels, rendered in the text exposition format
 * 0.0.4 (HELP, TYPE, escaped label values, _bucket{le}/_sum/_count with
 * +Inf). A leaf: it knows nothing of the project; the metric families API.md
 * fixes live in runtime/metrics_families.h.
 *
 * Cost: a family has one mutex; an increment is one lock, one hash lookup of
 * the label values (a key built on the stack) and an add. Memory is allocated
 * only the first time a label set is seen; series live as long as the
 * registry. Values that are cheaper to read when scraped than to keep up to
 * date (queue depths, watch restarts) come from collectors: callbacks run at
 * the start of every render that set the current values.
 *
 * Nothing here fails its caller: the counting functions drop a sample only
 * when memory for a new label set cannot be had.
 */
#ifndef MB_RUNTIME_METRICS_H
#define MB_RUNTIME_METRICS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct metrics_registry metrics_registry;
typedef struct metrics_family metrics_family;

typedef enum {
    METRICS_COUNTER,
    METRICS_GAUGE,
    METRICS_HISTOGRAM,
} metrics_type;

/* Labels per family, at most. */
#define METRICS_MAX_LABELS 8

/*
 * Histogram buckets for durations from milliseconds to minutes, in seconds:
 * 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 60 120 300 (+Inf implied).
 */
extern const double METRICS_DURATION_BUCKETS[];
#define METRICS_DURATION_BUCKETS_N 15

int metrics_registry_new(metrics_registry **out);

/* Frees the registry, its families and series. Accepts NULL. No other thread may use it any more. */
void metrics_registry_free(metrics_registry *r);

/*
 * Registers a family; *out is borrowed and lives as long as the registry.
 * name must match [a-zA-Z_:][a-zA-Z0-9_:]*; labels is a NULL-terminated list
 * of label names ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", "le" not on
 * a histogram), or NULL for none; help is one line of text. buckets (for a
 * histogram; ignored otherwise) are strictly increasing upper bounds without
 * +Inf: NULL takes METRICS_DURATION_BUCKETS. A family without labels has its
 * one series, at 0, from the start. 0, MB_EINVAL (the message names what is
 * wrong), MB_EEXISTS when the name is taken, or MB_ENOMEM.
 */
int metrics_family_add(metrics_family **out, metrics_registry *r, metrics_type type, const char *name, const char *help,
                       const char *const *labels, const double *buckets, size_t nbuckets);

/* The family registered under name, or NULL. Borrowed. */
metrics_family *metrics_family_find(metrics_registry *r, const char *name);

/*
 * Sample updates. values holds one label value per label of the family, in
 * the order of registration (NULL for a family without labels; a NULL value
 * counts as ""). The series is created at 0 the first time. Wrong use (a
 * negative add on a counter, observe on a counter, set on a histogram, a
 * NULL family) is ignored.
 */
void metrics_add(metrics_family *f, const char *const *values, double v);     /* counter (v >= 0) or gauge */
void metrics_set(metrics_family *f, const char *const *values, double v);     /* gauge, or a counter kept elsewhere */
void metrics_observe(metrics_family *f, const char *const *values, double v); /* histogram */

/*
 * The current value of a counter or gauge series (a histogram's: its count),
 * or 0 when the series does not exist. For tests.
 */
double metrics_value(metrics_family *f, const char *const *values);

/*
 * A collector sets values that are read when scraped (metrics_set on its
 * families). It runs on the scraping thread at the start of every render,
 * one collector at a time; it must not add or remove collectors or render.
 */
typedef void (*metrics_collect_fn)(void *ctx, metrics_registry *r);

/* Adds a collector. 0 or MB_ENOMEM. */
int metrics_collector_add(metrics_registry *r, metrics_collect_fn fn, void *ctx);

/*
 * Removes the collector added with this fn and ctx; when a render is running
 * it waits until that render is done, so ctx may be freed afterwards. The
 * series it set stay with their last values.
 */
void metrics_collector_remove(metrics_registry *r, metrics_collect_fn fn, void *ctx);

/*
 * Runs the collectors and renders every family in the text exposition format
 * 0.0.4, families sorted by name and series by label values. *out is
 * NUL-terminated; the caller frees it. 0 or MB_ENOMEM.
 */
int metrics_render(char **out, metrics_registry *r);

/* The Content-Type of metrics_render's output. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif

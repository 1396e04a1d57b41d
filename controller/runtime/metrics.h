/*
 * Prometheus metrics: a small thread-safe registry of counter, gauge and
 * histogram families with labels, rendered in the text exposition format
 * 0.0.4 (HELP, TYPE, escaped label values, _bucket{le}/_sum/_count with
 * +Inf), and the process-wide registry holding exactly the metrics API.md
 * fixes, each with a one-call function for the code that counts it.
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
#ifndef MB_METRICS_H
#define MB_METRICS_H

#include "runtime/informer.h"

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
int metrics_family_add(metrics_family **out, metrics_registry *r, metrics_type type, const char *name,
                       const char *help, const char *const *labels, const double *buckets, size_t nbuckets);

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

/* ---- membrane's metrics (API.md), all in the process-wide registry ---- */

/*
 * The process-wide registry, created on first use with every metric of
 * API.md registered (prefix membrane_): reconcile_total{kind,result},
 * reconcile_duration_seconds{kind}, workqueue_depth{kind},
 * rollouts_total{outcome}, rollbacks_total{trigger},
 * verification_check_duration_seconds{check},
 * verification_failures_total{check}, watch_restarts_total{resource},
 * api_requests_total{verb,code}, is_leader, build_info{version} (1, with
 * MEMBRANE_VERSION), transfer_bytes_total{kind}, transfer_duration_seconds{kind}. Borrowed; NULL only when memory ran out at first use.
 */
metrics_registry *metrics_default(void);

/* Frees the process-wide registry, for a clean exit once no thread uses it any more. */
void metrics_default_free(void);

/* The result label of reconcile_total. */
#define METRICS_RESULT_SUCCESS "success"             /* 0, no requeue asked for */
#define METRICS_RESULT_REQUEUE_AFTER "requeue_after" /* 0, and a requeue after a delay asked for */
#define METRICS_RESULT_CONFLICT "conflict"           /* MB_ECONFLICT: acted on a stale view, looked at again */
#define METRICS_RESULT_ERROR "error"                 /* any other error, retried or terminal */

/* One reconcile of kind: reconcile_total{kind,result} and reconcile_duration_seconds{kind}. */
void metrics_reconcile_observe(const char *kind, const char *result, double seconds);

/* workqueue_depth{kind}; for a collector. */
void metrics_workqueue_depth_set(const char *kind, double depth);

/* rollouts_total{outcome}: a release ended; outcome as in its receipt (Succeeded, RolledBack, Failed). */
void metrics_rollout_inc(const char *outcome);

/* rollbacks_total{trigger}: a release was rolled back; the trigger's name as in API.md (SmokeFailure, Manual, ...). */
void metrics_rollback_inc(const char *trigger);

/* One verification check run (check: its name, e.g. health or membrane-rbac): its duration, and verification_failures_total{check} when it failed. */
void metrics_check_observe(const char *check, double seconds, bool failed);

/* watch_restarts_total{resource} to the total the informer counted; for a collector. */
void metrics_watch_restarts_set(const char *resource, double total);

/*
 * Adds a collector to the process-wide registry that reports inf's watch
 * restarts as watch_restarts_total{resource="<plural>.<group>"} ("pods" for
 * the core group). Call metrics_informer_remove before informer_free.
 * 0 or MB_ENOMEM.
 */
int metrics_informer_add(informer *inf);
void metrics_informer_remove(informer *inf);

/*
 * One answer from the API server: api_requests_total{verb,code}. verb is the
 * HTTP method ("GET", "POST", "PUT", "PATCH", "DELETE"; a watch is a GET), as
 * client-go's rest_client_requests_total has it; code the HTTP status, or
 * <= 0 for a request that got no answer (connection or TLS failure,
 * timeout), shown as code="<error>". Each attempt counts, retries included.
 */
void metrics_api_request_inc(const char *verb, long code);

/* One outbound transfer ended (net/transfer.h): transfer_bytes_total{kind} += bytes, transfer_duration_seconds{kind}. */
void metrics_transfer_observe(const char *kind, long long bytes, double seconds);

/* is_leader: 1 while this process holds the leader Lease. */
void metrics_leader_set(bool leader);

#endif

/*
 * membrane's own metric families (API.md), all in the process-wide registry
 * of runtime/metrics.h: reconcile, workqueue, rollouts, rollbacks, checks, API
 * requests, watch restarts, leadership and build information, each with a
 * one-call function for the code that counts it. Nothing here fails its
 * caller: a sample is dropped only when memory for a new label set cannot be had.
 */
#ifndef MB_RUNTIME_METRICS_FAMILIES_H
#define MB_RUNTIME_METRICS_FAMILIES_H

#include "runtime/metrics.h"

#include <stdbool.h>

/*
 * The process-wide registry, created on first use with every metric of
 * API.md registered (prefix membrane_): reconcile_total{kind,result},
 * reconcile_duration_seconds{kind}, workqueue_depth{kind},
 * rollouts_total{outcome}, bundles_total{outcome}, promotions_total{outcome},
 * rollbacks_total{trigger},
 * verification_check_duration_seconds{check},
 * verification_failures_total{check}, watch_restarts_total{resource},
 * api_requests_total{verb,code}, is_leader, build_info{version} (1, with
 * MEMBRANE_VERSION), transfer_bytes_total{kind},
 * transfer_duration_seconds{kind}. Borrowed; NULL only when memory ran out at
 * first use.
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

/* bundles_total{outcome}: a PolicyBundle was Published, or failed with outcome (its reason: DigestMismatch, ...). */
void metrics_bundle_inc(const char *outcome);

/* promotions_total{outcome}: a DatasetPromotion was Promoted, Blocked or Revoked (once per transition). */
void metrics_promotion_inc(const char *outcome);

/* rollbacks_total{trigger}: a release was rolled back; the trigger's name as in API.md (SmokeFailure, Manual, ...). */
void metrics_rollback_inc(const char *trigger);

/* One verification check run (check: its name, e.g. health or membrane-rbac): its duration, and verification_failures_total{check} when it failed. */
void metrics_check_observe(const char *check, double seconds, bool failed);

/* watch_restarts_total{resource} to the total the informer counted; for a collector. */
void metrics_watch_restarts_set(const char *resource, double total);

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

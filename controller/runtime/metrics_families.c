/*
 * The metric families of runtime/metrics_families.h: registered once, on
 * first use, in the process-wide registry, with the names, types and labels
 * API.md fixes (test/integration/test_docs_cli.sh reads the ADD lines below).
 */
#include "runtime/metrics_families.h"
#include "util/error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    metrics_registry *r;
    metrics_family *reconcile_total, *reconcile_duration, *workqueue_depth, *rollouts, *bundles, *promotions,
        *rollbacks, *check_duration, *check_failures, *watch_restarts, *api_requests, *is_leader, *build_info;
    metrics_family *transfer_bytes, *transfer_duration;
} defaults;

static _Atomic(defaults *) the_defaults;
static pthread_mutex_t defaults_mu = PTHREAD_MUTEX_INITIALIZER;

static void defaults_free(defaults *d)
{
    if (!d)
        return;
    metrics_registry_free(d->r);
    free(d);
}

#define LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})

static int defaults_build(defaults **out)
{
    defaults *d = calloc(1, sizeof(*d));
    int err = 0;
    *out = NULL;
    if (!d)
        return mb_error_set(MB_ENOMEM, "out of memory");
    if ((err = metrics_registry_new(&d->r)) < 0)
        goto done;
#define ADD(field, type, name, help, labels)                                                                           \
    if ((err = metrics_family_add(&d->field, d->r, type, "membrane_" name, help, labels, NULL, 0)) < 0)                \
        goto done;
    ADD(reconcile_total, METRICS_COUNTER, "reconcile_total",
        "Reconciles by kind and result (success, requeue_after, conflict, error).", LABELS("kind", "result"));
    ADD(reconcile_duration, METRICS_HISTOGRAM, "reconcile_duration_seconds", "How long reconciles took, by kind.",
        LABELS("kind"));
    ADD(workqueue_depth, METRICS_GAUGE, "workqueue_depth", "Keys waiting in the workqueue of each kind.",
        LABELS("kind"));
    ADD(rollouts, METRICS_COUNTER, "rollouts_total", "Rollouts that ended, by outcome.", LABELS("outcome"));
    ADD(bundles, METRICS_COUNTER, "bundles_total",
        "PolicyBundles that reached an outcome: Published, or the failure reason.", LABELS("outcome"));
    ADD(promotions, METRICS_COUNTER, "promotions_total",
        "DatasetPromotions that reached an outcome: Promoted, Blocked or Revoked.", LABELS("outcome"));
    ADD(rollbacks, METRICS_COUNTER, "rollbacks_total", "Rollbacks, by the trigger that fired.", LABELS("trigger"));
    ADD(check_duration, METRICS_HISTOGRAM, "verification_check_duration_seconds",
        "How long verification checks took, by check.", LABELS("check"));
    ADD(check_failures, METRICS_COUNTER, "verification_failures_total", "Verification checks that failed, by check.",
        LABELS("check"));
    ADD(watch_restarts, METRICS_COUNTER, "watch_restarts_total",
        "Watches that ended and were started again, by resource.", LABELS("resource"));
    ADD(api_requests, METRICS_COUNTER, "api_requests_total",
        "Requests to the Kubernetes API server, by HTTP method and status code (<error>: no answer).",
        LABELS("verb", "code"));
    ADD(is_leader, METRICS_GAUGE, "is_leader", "1 while this process holds the leader Lease, else 0.", NULL);
    ADD(build_info, METRICS_GAUGE, "build_info", "Always 1; the version of membrane in its label.", LABELS("version"));
    ADD(transfer_bytes, METRICS_COUNTER, "transfer_bytes_total",
        "Body bytes received by the outbound transfer loop, by the kind of transfer.", LABELS("kind"));
    ADD(transfer_duration, METRICS_HISTOGRAM, "transfer_duration_seconds",
        "How long outbound transfers took, by the kind of transfer.", LABELS("kind"));
#undef ADD
    metrics_set(d->build_info, LABELS(MEMBRANE_VERSION), 1);
    if (metrics_value(d->build_info, LABELS(MEMBRANE_VERSION)) != 1) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    *out = d;
    d = NULL;
done:
    defaults_free(d);
    return err;
}

static defaults *defaults_get(void)
{
    defaults *d = atomic_load_explicit(&the_defaults, memory_order_acquire);
    if (d)
        return d;
    pthread_mutex_lock(&defaults_mu);
    if (!(d = atomic_load_explicit(&the_defaults, memory_order_acquire)) && defaults_build(&d) == 0)
        atomic_store_explicit(&the_defaults, d, memory_order_release);
    pthread_mutex_unlock(&defaults_mu);
    return d;
}

metrics_registry *metrics_default(void)
{
    defaults *d = defaults_get();
    return d ? d->r : NULL;
}

void metrics_default_free(void)
{
    pthread_mutex_lock(&defaults_mu);
    defaults_free(atomic_exchange(&the_defaults, NULL));
    pthread_mutex_unlock(&defaults_mu);
}

void metrics_reconcile_observe(const char *kind, const char *result, double seconds)
{
    defaults *d = defaults_get();
    if (!d)
        return;
    metrics_add(d->reconcile_total, LABELS(kind, result), 1);
    metrics_observe(d->reconcile_duration, LABELS(kind), seconds);
}

void metrics_workqueue_depth_set(const char *kind, double depth)
{
    defaults *d = defaults_get();
    if (d)
        metrics_set(d->workqueue_depth, LABELS(kind), depth);
}

void metrics_rollout_inc(const char *outcome)
{
    defaults *d = defaults_get();
    if (d)
        metrics_add(d->rollouts, LABELS(outcome), 1);
}

void metrics_bundle_inc(const char *outcome)
{
    defaults *d = defaults_get();
    if (d)
        metrics_add(d->bundles, LABELS(outcome), 1);
}

void metrics_promotion_inc(const char *outcome)
{
    defaults *d = defaults_get();
    if (d)
        metrics_add(d->promotions, LABELS(outcome), 1);
}

void metrics_rollback_inc(const char *trigger)
{
    defaults *d = defaults_get();
    if (d)
        metrics_add(d->rollbacks, LABELS(trigger), 1);
}

void metrics_check_observe(const char *check, double seconds, bool failed)
{
    defaults *d = defaults_get();
    if (!d)
        return;
    metrics_observe(d->check_duration, LABELS(check), seconds);
    if (failed)
        metrics_add(d->check_failures, LABELS(check), 1);
}

void metrics_watch_restarts_set(const char *resource, double total)
{
    defaults *d = defaults_get();
    if (d)
        metrics_set(d->watch_restarts, LABELS(resource), total);
}

void metrics_api_request_inc(const char *verb, long code)
{
    defaults *d = defaults_get();
    char num[24];
    if (!d)
        return;
    if (code > 0)
        snprintf(num, sizeof(num), "%ld", code);
    else
        strcpy(num, "<error>");
    metrics_add(d->api_requests, LABELS(verb, num), 1);
}

void metrics_transfer_observe(const char *kind, long long bytes, double seconds)
{
    defaults *d = defaults_get();
    if (!d)
        return;
    metrics_add(d->transfer_bytes, LABELS(kind), bytes > 0 ? (double)bytes : 0);
    metrics_observe(d->transfer_duration, LABELS(kind), seconds);
}

void metrics_leader_set(bool leader)
{
    defaults *d = defaults_get();
    if (d)
        metrics_set(d->is_leader, NULL, leader ? 1 : 0);
}

/*
 * PolicyBundle: the pure decision. From what was observed (the bundle, the
 * published ConfigMap as cached, the work done so far for the bundle's
 * current generation and pin, and the clock) to a plan: the status to
 * write, the next piece of work to start, the Events and when to look again.
 * No I/O, no globals; API.md "PolicyBundle" lives here.
 *
 * The work goes in this order, each step only after the one before held, so
 * that nothing is ever published that did not pass every check:
 *
 *   1. fetch (transfer loop): transport errors and non-2xx are FetchFailed,
 *      transient (Reconciling=True, retried with backoff); a body over
 *      spec.source.maxBytes is TooLarge;
 *   2. digest: the SHA-256 computed while streaming against spec.source.digest
 *      (DigestMismatch), before a byte is unpacked;
 *   3. size for a ConfigMap: more than 900 KiB of bundle is TooLarge;
 *   4. structure: bundle_read under the rules of bundle.h (InvalidBundle);
 *   5. signatures, when spec.signing is set (SignatureInvalid). They come
 *      after the structure because .signatures.json can only be read from
 *      the unpacked bundle; nothing is acted on before they hold. Without
 *      spec.signing, SignatureVerified is True with reason NotRequired;
 *   6. roots: every spec.requiredRoots entry covered by .manifest (MissingRoot);
 *   7. decision tests against spec.decisionTests.opaURL (DecisionTestFailed;
 *      OPA unreachable or a load error is transient, never a pass); without
 *      cases DecisionTestsPassed is True with reason NoTests;
 *   8. publish: the ConfigMap, then status Published with a receipt.
 *
 * Steps 2 to 6 are pure and run in the reconcile (policy/verify.h); their
 * outcome reaches decide as policy_verification. A terminal failure sets
 * Stalled=True and phase Failed until metadata.generation changes.
 *
 * The receipt (status.receipt, audit_receipt_set) is sealed when a digest is
 * first published in a ConfigMap (not again when the same bytes are restored):
 * {verifiedDigest, revision, roots, decisionTests: [{name, passed, got,
 * message}], configMap: {name, uid, resourceVersion}, publishedAt, auditRef,
 * prevAuditRef}. membrane_bundles_total{outcome} counts Published, each
 * terminal reason when it is reached, and FetchFailed once per run of failures.
 *
 * A Published bundle is checked again on every look (the resync, every event
 * of its ConfigMap): when the ConfigMap is gone or its bundle.tar.gz no longer
 * hashes to status.verifiedDigest (the cache keeps only that hash, see
 * api/informers.c), the bundle is fetched, verified and tested again and the
 * ConfigMap restored, with a Warning Event ConfigMapEdited.
 */
#ifndef MB_POLICY_DECIDE_H
#define MB_POLICY_DECIDE_H

#include "runtime/events.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define POLICY_API_VERSION "governance.kfm.dev/v1alpha1"
#define POLICY_KIND "PolicyBundle"
#define POLICY_MANAGED_BY_LABEL "app.kubernetes.io/managed-by"
#define POLICY_MANAGED_BY "membrane"
#define POLICY_CM_KEY "bundle.tar.gz"
#define POLICY_CM_MAX_BYTES (900LL * 1024)           /* the bundle's bytes a ConfigMap may carry */
#define POLICY_MAX_BYTES_DEFAULT (4LL * 1024 * 1024) /* spec.source.maxBytes */
#define POLICY_UNPACKED_FACTOR 16                    /* the unpacked total is at most this times maxBytes */
#define POLICY_BACKOFF_BASE_MS 5000L
#define POLICY_BACKOFF_MAX_MS 300000L
#define POLICY_RESYNC_MS 600000L /* a Published bundle's ConfigMap is looked at again at least this often */
#define POLICY_RUNNING_RECHECK_MS 30000L

typedef enum {
    POLICY_FETCH_NONE = 0, /* none for this generation and pin yet */
    POLICY_FETCH_RUNNING,
    POLICY_FETCH_FAILED,  /* transient: message says what happened */
    POLICY_FETCH_TOO_BIG, /* the body passed spec.source.maxBytes */
    POLICY_FETCH_DONE,    /* the bytes are in; see the verification */
} policy_fetch_state;

/* Steps 2 to 6 on fetched bytes; reason NULL when all held. */
typedef struct {
    const char *reason;   /* DigestMismatch|TooLarge|InvalidBundle|SignatureInvalid|MissingRoot, or NULL */
    const char *message;  /* one sentence naming what to fix */
    const char *revision; /* .manifest revision, once the structure held */
    const cJSON *roots;   /* .manifest roots (array of strings), once the structure held */
    long long rego_modules;
    long long size_bytes; /* the .tar.gz bytes */
    bool structure_checked, signature_checked;
} policy_verification;

typedef enum {
    POLICY_TESTS_NONE = 0, /* not started for these bytes */
    POLICY_TESTS_WAITING,  /* another bundle's tests hold spec.decisionTests.opaURL */
    POLICY_TESTS_RUNNING,
    POLICY_TESTS_ERROR, /* transient: OPA unreachable, a load error (message) */
    POLICY_TESTS_DONE,  /* results: one {name, passed, got, message} per case */
} policy_tests_state;

typedef enum {
    POLICY_PUBLISH_NONE = 0,
    POLICY_PUBLISH_DONE,      /* the ConfigMap holds these bytes (name, uid, resourceVersion below) */
    POLICY_PUBLISH_NOT_OWNED, /* a ConfigMap of that name exists and is not this bundle's */
} policy_publish_state;

/* The work done for the bundle's current generation and spec.source.digest (zero: none yet). */
typedef struct {
    policy_fetch_state fetch;
    const char *fetch_message; /* FAILED, TOO_BIG: what happened */
    unsigned fetch_attempts;   /* fetches that failed in a row */
    time_t fetch_finished_at;  /* of the last one */
    policy_verification verify;
    policy_tests_state tests;
    const char *tests_message; /* ERROR: what happened */
    unsigned tests_attempts;   /* test runs that failed to run in a row */
    time_t tests_finished_at;
    const cJSON *test_results;
    policy_publish_state publish;
    const char *cm_uid, *cm_resource_version;
} policy_work;

typedef struct {
    const cJSON *bundle;    /* the PolicyBundle as read (never modified) */
    const cJSON *configmap; /* spec.publish's ConfigMap as cached (trimmed), NULL when absent */
    policy_work work;
    time_t now;
} policy_observed;

typedef enum {
    POLICY_ACT_NONE = 0,
    POLICY_ACT_FETCH,   /* start a fetch of spec.source.url */
    POLICY_ACT_TEST,    /* start the decision tests on the fetched bytes (again, when their OPA was busy) */
    POLICY_ACT_PUBLISH, /* write the ConfigMap, then decide again */
} policy_action;

#define POLICY_MAX_EVENTS 3

typedef struct {
    cJSON *status; /* the whole new status, NULL when nothing changes */
    policy_action action;
    const char *phase;   /* after this plan (static) */
    const char *outcome; /* for membrane_bundles_total, counted once the status is written: Published or a failure
                            reason; NULL: none */
    char configmap[254]; /* spec.publish.configMapName, or <name>-bundle */
    bool drop_work;      /* the work of this generation is not needed any more (published or failed) */
    event_planned events[POLICY_MAX_EVENTS];
    size_t n_events;
    long requeue_ms;      /* look again after this long (0: only on changes) */
    const cJSON *receipt; /* the receipt sealed by this plan, borrowed from status; NULL: none */
} policy_plan;

int policy_decide(policy_plan *out, const policy_observed *obs);

void policy_plan_clear(policy_plan *plan);

/* spec.publish.configMapName, or "<name>-bundle", into out; false when it does not fit. */
bool policy_configmap_name(char out[254], const cJSON *bundle);

/* spec.source.maxBytes, or POLICY_MAX_BYTES_DEFAULT when absent or not positive. */
long long policy_max_bytes(const cJSON *bundle);

/* The delay before attempt+1 after attempt failures in a row: 5 s, 10 s, 20 s ... at most 5 min. */
long policy_backoff_ms(unsigned attempts);

/* Whether the ConfigMap is controlled by the bundle (an ownerReference with its uid and controller: true). */
bool policy_configmap_owned(const cJSON *configmap, const cJSON *bundle);

/* The trim marker of the bytes with SHA-256 hex digest hex: "sha256:<hex>" (the informer keeps it for binaryData). */
#define POLICY_MARKER_PREFIX "sha256:"

#endif

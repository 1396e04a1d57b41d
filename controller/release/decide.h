/*
 * GovernedAPIRelease: the pure decision. From what was observed (the release,
 * its Deployment, the Deployment's pods, the referenced PolicyBundle, the
 * results of a check run, and the clock) to a plan: the status to write, the
 * Deployment patch to send after it, the Events to record and when to look
 * again. No I/O, no globals; the runbook's rules live here (API.md,
 * GovernedAPIRelease "Behaviour").
 *
 * Durable state is the status and the Deployment's own annotations. The
 * rollout is one Deployment patch that also records the rollback target:
 * the annotations governance.kfm.dev/rollback-image (the full reference the
 * container ran) and governance.kfm.dev/rollback-for (the releaseID) go with
 * the new image, and status.releaseID, status.rollbackTarget and
 * status.rollbackImage follow in the status write after it. A restart
 * between the two finds the annotation of its own releaseID and takes the
 * target from it, never from the image the container now runs. A rollback
 * is likewise one patch (the recorded image, with the annotations
 * governance.kfm.dev/rolled-back-from, the image rolled back from, and
 * governance.kfm.dev/rollback-trigger), then the status write; a restart
 * between them finds the rollback on the Deployment and records it instead
 * of rolling forward again.
 *
 * Observing keeps its window in status.verification.observingSince, written
 * when the Verifying run passed and carried over by every later run, which
 * replaces the rest of status.verification (results, startedAt, finishedAt)
 * with its own. The window ends at observingSince + observationSeconds.
 * During it the checks run again once recheckSeconds have passed since the
 * last judged run finished (status.verification.finishedAt), and once at the
 * end: the release is Succeeded only after a run that started at or after
 * the end passed. A run is judged only when it is fresh: for this releaseID
 * and started no earlier than the last judged run finished; an older result
 * is ignored. So a restart mid-Observing keeps the window and still owes the
 * final run. With observationSeconds 0 there is no window: the Verifying run
 * is the last.
 */
#ifndef MB_RELEASE_DECIDE_H
#define MB_RELEASE_DECIDE_H

#include "runtime/events.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define RELEASE_API_VERSION "governance.kfm.dev/v1alpha1"
#define RELEASE_KIND "GovernedAPIRelease"
#define RELEASE_FINALIZER "governance.kfm.dev/release"
#define RELEASE_OWNER_ANNOTATION "governance.kfm.dev/release-owner"
#define RELEASE_ID_ANNOTATION "governance.kfm.dev/release-id"
#define RELEASE_BUNDLE_ANNOTATION "governance.kfm.dev/policy-bundle-digest"
#define RELEASE_ROLLBACK_ANNOTATION "governance.kfm.dev/rollback"
/* the rollback record on the Deployment, written by the patch that rolls (API.md RollingOut) */
#define RELEASE_ROLLBACK_IMAGE_ANNOTATION "governance.kfm.dev/rollback-image"
#define RELEASE_ROLLBACK_FOR_ANNOTATION "governance.kfm.dev/rollback-for"
#define RELEASE_ROLLED_BACK_FROM_ANNOTATION "governance.kfm.dev/rolled-back-from"
#define RELEASE_ROLLBACK_TRIGGER_ANNOTATION "governance.kfm.dev/rollback-trigger"
/* the break-glass record, read with the rollback annotation and removed with it */
#define RELEASE_ROLLBACK_REASON_ANNOTATION "governance.kfm.dev/rollback-reason"
#define RELEASE_ROLLBACK_APPROVER_ANNOTATION "governance.kfm.dev/rollback-approver"
#define RELEASE_ROLLBACK_REASON_MAX 1024  /* bytes kept of the reason (the CRD's maxLength) */
#define RELEASE_ROLLBACK_APPROVER_MAX 256 /* bytes kept of the approver (the CRD's maxLength) */

/* The outcome of a check run against the version the Deployment now runs. */
typedef struct {
    bool ran;               /* false: no run for this plan (act runs one when asked) */
    const char *release_id; /* the releaseID the run was for */
    time_t started_at;
    time_t finished_at;
    const cJSON *results; /* array of {name, passed, httpStatus, latencyMs, trigger, message} */
} release_checks;

/* What the image verifier said of one digest (spec.image.verify, API.md Gating): the controller looks up the digests a
 * plan asks for (release_plan.verify_digests) and decides again with the verdicts. */
typedef enum {
    RELEASE_IMAGE_VERIFIED = 1, /* signed (and attested) by the key */
    RELEASE_IMAGE_REFUSED,      /* not signed by the key, or its signature or an attestation does not verify */
    RELEASE_IMAGE_UNREACHABLE,  /* the registry or a Secret could not be read: transient */
} release_image_state;

typedef struct {
    const char *digest; /* the digest judged */
    release_image_state state;
    const char *message;        /* why not, naming the digest and what was missing; "" when verified */
    const char *payload_digest; /* "sha256:<hex>" of the verified signature payload */
    const char *layout;         /* where the verified signature was: "v2" (the .sig tag) or "v3" (referrers) */
    const char *key_id;         /* "sha256:<hex>" of the key's public key (DER) */
} release_image_verdict;

#define RELEASE_VERIFY_DIGESTS 2    /* the new digest and the rollback target */
#define RELEASE_ATTESTATIONS_MAX 16 /* spec.image.verify.attestations at most (the CRD's maxItems) */

typedef struct {
    const cJSON *release;     /* the GovernedAPIRelease as read (never modified) */
    const cJSON *deployment;  /* the target Deployment, NULL when it does not exist */
    const cJSON *const *pods; /* the Deployment's pods (its selector, its namespace) */
    size_t n_pods;
    const cJSON *policy_bundle; /* spec.policyBundleRef's PolicyBundle, NULL when absent */
    /* spec.after's GovernedAPIReleases, in its order: upstream[i] is after[i]'s, NULL when it cannot be seen */
    const cJSON *const *upstream;
    size_t n_upstream;
    /* --allow-after-namespaces: the comma-separated namespaces spec.after may name; NULL: any namespace */
    const char *allow_after_namespaces;
    release_checks checks;
    /* with spec.image.verify, the verdicts on the digests a plan asked for; n_images 0: not looked up yet */
    const release_image_verdict *images;
    size_t n_images;
    /* the operator runs with --enable-probe (its install grants and admits the probe's pods) */
    bool probe_enabled;
    time_t now;
} release_observed;

#define RELEASE_MAX_EVENTS 6

typedef struct {
    cJSON *status; /* the whole new status to write, NULL when nothing changes */
    char *
        deployment_patch; /* strategic merge patch (with a resourceVersion precondition), before the status write; NULL: none */
    bool add_finalizer;             /* before anything else */
    bool remove_finalizer;          /* last: the release may then go away */
    bool clear_rollback_annotation; /* the manual trigger was acted on: remove it with its reason and approver */
    bool run_checks;                /* run the verification checks, then decide again with them */
    char checks_release_id[13];     /* the releaseID to run them for */
    char checks_digest[72];         /* the digest they judge (the slo check's {{digest}}): the new one, or the
                                       rollback target's once rolled back */
    const char *phase;              /* the phase after this plan (static string) */
    event_planned events[RELEASE_MAX_EVENTS];
    size_t n_events;
    /* spec.image.verify: the digests whose signatures the image gate needs verdicts on (the new digest, then the
     * rollback target, in the repository of the image it ran from); when obs.images has none yet, look them up and
     * decide again */
    char verify_digests[RELEASE_VERIFY_DIGESTS][72];
    char verify_repositories[RELEASE_VERIFY_DIGESTS][512]; /* the repository each one is looked up in */
    size_t n_verify_digests;
    long requeue_ms; /* look again after this long (0: only on changes) */
    cJSON *receipt;  /* the history entry sealed by this plan, borrowed from status; NULL: none */
} release_plan;

int release_decide(release_plan *out, const release_observed *obs);

void release_plan_clear(release_plan *plan);

/*
 * The trigger of the rollback this plan starts (its status records
 * lastRollback and it records the RollbackTriggered Event), NULL when it
 * starts none. A plan that sends again the patch of a rollback already
 * recorded starts none: a rollback is counted once, when the status write
 * that records it is done, however many tries its patch takes.
 */
const char *release_plan_rollback_trigger(const release_plan *plan);

/* releaseID: the first 12 hex characters of sha256("<ns>/<name>/<generation>/<digest>"). */
int release_id(char out[13], const char *ns, const char *name, long long generation, const char *digest);

/*
 * The digest of the image of the named container of a Deployment (or pod)
 * template spec, copied into out ("" when the image is not pinned by digest);
 * false when there is no such container.
 */
bool release_container_digest(char out[72], const cJSON *pod_spec, const char *container);

#endif

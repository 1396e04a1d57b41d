/*
 * Private to controller/release: what the GovernedAPIRelease decision's files
 * share and decide.h does not publish. decide.c holds the phases and
 * release_decide; gates.c the gates a release passes before the Deployment is
 * touched (the spec, the change record, the target, the PolicyBundle) and the
 * choice of the rollback target; workload.c what is read from the Deployment
 * and its pods (images, crash loops, rollout completion, the progress
 * deadline) and the Deployment patch; status.c the building blocks of the
 * status (setters, conditions, verification results, history entries and
 * their receipts). Everything here is as pure as release_decide: no I/O, no
 * globals; errors are mb_error codes with the message in mb_error_last().
 */
#ifndef MB_RELEASE_DECIDE_PRIVATE_H
#define MB_RELEASE_DECIDE_PRIVATE_H

#include "release/decide.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define PHASE_PENDING "Pending"
#define PHASE_GATING "Gating"
#define PHASE_ROLLING_OUT "RollingOut"
#define PHASE_VERIFYING "Verifying"
#define PHASE_OBSERVING "Observing"
#define PHASE_SUCCEEDED "Succeeded"
#define PHASE_ROLLING_BACK "RollingBack"
#define PHASE_ROLLED_BACK "RolledBack"
#define PHASE_FAILED "Failed"
#define PHASE_SUSPENDED "Suspended"

#define COND_GATES_PASSED "GatesPassed"
#define COND_ROLLED_OUT "RolledOut"
#define COND_VERIFIED "Verified"
#define COND_MEMBRANE_INTACT "MembraneIntact"
#define COND_ROLLED_BACK "RolledBack"

/* Everything one decision works on. */
typedef struct {
    const release_observed *obs;
    release_plan *plan;
    const cJSON *spec;
    const cJSON *old; /* the observed status, may be NULL */
    cJSON *st;        /* the status being written */
    const char *ns, *name;
    long long gen;
    const char *deployment, *container, *repository, *digest;
    char image[512];  /* repository@digest */
    char rid[13];     /* releaseID of this generation and digest */
    char owner[320];  /* "<ns>/<name>" */
    cJSON *no_result; /* owned: the "no result" failures judge_checks last made up */
    const char *why;  /* the message of the trigger or failure that ends this release, for its receipt */
    bool rolled_back; /* the rollback being recorded is already on the Deployment: no patch, it happened */
} release_ctx;

/* ---- decide.c ----------------------------------------------------------- */

/* spec.<section>.<key> as an integer, def when absent. */
long long release_spec_int(const release_ctx *c, long long def, const char *section, const char *key);

/* status.<key> of the observed status as a string, or NULL; borrowed. */
const char *release_old_str(const release_ctx *c, const char *key);

/* ---- status.c ----------------------------------------------------------- */

/* o.key = v ("" for NULL); 0 or MB_ENOMEM. */
int release_str_set(cJSON *o, const char *key, const char *v);

/* o.key = t in RFC 3339; 0, MB_EINVAL when t cannot be formatted, MB_ENOMEM. */
int release_time_set(cJSON *o, const char *key, time_t t);

/* o.key = v; 0 or MB_ENOMEM. */
int release_num_set(cJSON *o, const char *key, double v);

/* Sets the condition type of the status being written, for this generation, at the observed time. */
int release_cond_set(release_ctx *c, const char *type, const char *status, const char *reason, const char *message);

/* The break-glass record of a Manual rollback (reason, approver); "" when absent. */
void release_manual_record(const release_ctx *c, char reason[RELEASE_ROLLBACK_REASON_MAX + 1],
                           char approver[RELEASE_ROLLBACK_APPROVER_MAX + 1]);

/* Appends this release's history entry (outcome, trigger or "") with its receipt; plan->receipt points at it. */
int release_history_record(release_ctx *c, const char *outcome, const char *trigger);

/* status.verification from the run rc, with a failed "no result" for every requested check that did not report. */
int release_verification_write(release_ctx *c, const release_checks *rc);

/* The first failed check of rc, or NULL; sets MembraneIntact when membrane checks ran; *err 0 or an error. */
const cJSON *release_checks_judge(release_ctx *c, const release_checks *rc, int *err);

/* ---- workload.c --------------------------------------------------------- */

/* The digest part of an image reference (after its last '@'), or NULL; borrowed from image. */
const char *release_digest_of(const char *image);

/* The container called name in a pod spec, or NULL; borrowed. */
const cJSON *release_container_find(const cJSON *pod_spec, const char *name);

/* The image the Deployment's target container runs now, or NULL; borrowed. */
const char *release_deployment_image(const release_ctx *c);

/* What a Deployment patch does: claim the Deployment only, roll the new image out, or roll back. */
typedef enum { RELEASE_PATCH_OWNER, RELEASE_PATCH_ROLLOUT, RELEASE_PATCH_ROLLBACK } release_patch_kind;

/*
 * The Deployment patch (resourceVersion precondition and the owner
 * annotation, always). RELEASE_PATCH_ROLLOUT: the container's image, the
 * release-id and bundle-digest pod template annotations, and the rollback
 * record (rollback-image: status.rollbackImage of c->st, rollback-for: the
 * releaseID) in the Deployment's annotations, so the one write that rolls
 * also records the target. RELEASE_PATCH_ROLLBACK: the container's image
 * with rolled-back-from (c->image) and rollback-trigger
 * (status.lastRollback.trigger of c->st). NULL with MB_ENOMEM set; owned by
 * the caller.
 */
char *release_patch_body(const release_ctx *c, const char *image, release_patch_kind kind);

/* The Deployment's annotation key, or NULL; borrowed. */
const char *release_deployment_annotation(const release_ctx *c, const char *key);

/*
 * The field manager membrane's Deployment patches are recorded under: the API
 * server takes it from the client's User-Agent ("membrane/<version>").
 */
#define RELEASE_FIELD_MANAGER "membrane"

/*
 * Another field manager than membrane's owns the target container's image in
 * the Deployment's metadata.managedFields (as the cache keeps them: who set
 * each container's image): true, with its name in out; false when only
 * membrane does, or nobody (no managed fields).
 */
bool release_image_manager(char *out, size_t len, const release_ctx *c);

/* A pod running image crash-loops: true, with its name and why in msg. */
bool release_crashloop(const release_ctx *c, const char *image, char *msg, size_t len);

/*
 * The Deployment runs no replica that could be verified: spec.replicas is 0,
 * or cannot be seen. true with why in msg. A rollout to no replica is never
 * complete: nothing would be verified.
 */
bool release_no_replicas(const release_ctx *c, char *msg, size_t len);

/* The rollout of image is complete (API.md's four conditions) on at least one replica. */
bool release_rollout_complete(const release_ctx *c, const char *image);

/*
 * The rollout started at since has passed its progress deadline: true, with
 * why in msg; otherwise the milliseconds left in *remaining_ms. Callers pass
 * a known since (a missing start is taken as now and recorded: it never
 * disables the deadline).
 */
bool release_progress_deadline(const release_ctx *c, time_t since, char *msg, size_t len, long *remaining_ms);

/* ---- gates.c ------------------------------------------------------------ */

/* Why the gates hold a release: the condition reason, its message, and whether it clears by itself. */
typedef struct {
    const char *reason;
    char message[1200];
    bool transient;
    long recheck_ms; /* a block that needs a human is looked at again after this long anyway (0: only on changes) */
    bool oom;        /* no block: out of memory evaluating the gates */
} release_gate_block;

/* A refused image signature is looked at again after this long (a signature pushed later is found). */
#define IMAGE_REFUSED_RECHECK_MS 60000L

/* What the gates pass on to the status and the receipt; the caller's, freed with cJSON_Delete. */
typedef struct {
    cJSON *promoted;   /* with spec.after, the upstream receipts the order gate passed on (status.promotedFrom) */
    cJSON *signatures; /* with spec.image.verify, the verified signatures (status.imageSignatures) */
} release_gate_record;

/*
 * Every gate, in order; true with the rollback target (its digest and full
 * image) in target and target_image and what the gates pass on in *rec
 * (NULL members when their gate is not asked for), false with what blocks
 * in b (and *rec empty); false with b->oom set when out of memory.
 */
bool release_gates_check(const release_ctx *c, release_gate_block *b, char target[72], char target_image[512],
                         release_gate_record *rec);

/* The rank of an environment: dev 0, staging 1, prod 2; -1 for anything else. */
int release_environment_rank(const char *env);

#endif

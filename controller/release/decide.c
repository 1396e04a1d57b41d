/*
 * The GovernedAPIRelease state machine as a pure function:
 *
 *   Gating -> RollingOut -> Verifying -> Observing -> Succeeded
 *                  \             \           \
 *                   +-------------+-----------+--> (trigger) RollingBack -> RolledBack | Failed
 *                                                  (trigger, no automatic rollback) -> Failed
 *
 * Each call recomputes from the observation; a phase is only a place to
 * resume from. A terminal phase (Succeeded, RolledBack, Failed) is final for
 * its generation: a failed digest is never rolled out again until the spec
 * changes, and a failed rollback never rolls forward.
 */
#include "release/decide.h"
#include "audit/receipt.h"
#include "runtime/conditions.h"
#include "util/error.h"
#include "util/json.h"
#include "util/timefmt.h"
#include "verify/runner.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#define GATE_RECHECK_MS 15000L

static const char *const all_triggers[] = {
    "CrashLoop", "ProgressDeadline", "SmokeFailure", "PolicyBypass",
    "EvidenceFailure", "UncitedAnswer", "MembraneBreach",
};

static const char *const crash_reasons[] = {
    "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull",
    "CreateContainerConfigError", "InvalidImageName",
};

/* Everything one decision works on. */
typedef struct {
    const release_observed *obs;
    release_plan *plan;
    const cJSON *spec;
    const cJSON *old;          /* the observed status, may be NULL */
    cJSON *st;                 /* the status being written */
    const char *ns, *name;
    long long gen;
    const char *deployment, *container, *repository, *digest;
    char image[512];           /* repository@digest */
    char rid[13];              /* releaseID of this generation and digest */
    char owner[320];           /* "<ns>/<name>" */
    cJSON *no_result;          /* owned: the "no result" failures judge_checks last made up */
    const char *why;           /* the message of the trigger or failure that ends this release, for its receipt */
} ctx;

/* ---- small helpers ------------------------------------------------------ */

static int add_event(ctx *c, const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int add_event(ctx *c, const char *type, const char *reason, const char *fmt, ...)
{
    release_plan *p = c->plan;
    va_list ap;
    char *msg = NULL;
    if (p->n_events >= RELEASE_MAX_EVENTS)
        return 0;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return mb_error_set(MB_ENOMEM, "out of memory");
    p->events[p->n_events].type = type;
    p->events[p->n_events].reason = reason;
    p->events[p->n_events].message = msg;
    p->n_events++;
    return 0;
}

static int set_str(cJSON *o, const char *key, const char *v)
{
    return json_set_str(o, key, v ? v : "");
}

static int set_time(cJSON *o, const char *key, time_t t)
{
    char buf[32];
    if (timefmt_format(buf, sizeof(buf), t) < 0)
        return mb_error_set(MB_EINVAL, "time out of range");
    return json_set_str(o, key, buf);
}

static int set_num(cJSON *o, const char *key, double v)
{
    return json_set_item(o, key, cJSON_CreateNumber(v));
}

static int set_phase(ctx *c, const char *phase)
{
    c->plan->phase = phase;
    return json_set_str(c->st, "phase", phase);
}

static int cond(ctx *c, const char *type, const char *status, const char *reason, const char *message)
{
    condition cd = {type, status, reason, message, c->gen};
    return conditions_set(NULL, c->st, &cd, c->obs->now);
}

static long long spec_int(const ctx *c, long long def, const char *section, const char *key)
{
    return json_int(def, c->spec, section, key, NULL);
}

static const char *old_str(const ctx *c, const char *key)
{
    return c->old ? json_str(c->old, key, NULL) : NULL;
}

static bool old_time(const ctx *c, time_t *out, const char *k1, const char *k2)
{
    const char *s = c->old ? (k2 ? json_str(c->old, k1, k2, NULL) : json_str(c->old, k1, NULL)) : NULL;
    return s && *s && timefmt_parse(out, s) == 0;
}

static bool trigger_listed(const ctx *c, const char *trigger)
{
    const cJSON *list = json_get(c->spec, "rollback", "triggers", NULL);
    const cJSON *t;
    if (strcmp(trigger, "Manual") == 0)
        return true; /* break-glass: a human asked for it */
    if (!cJSON_IsArray(list)) {
        for (size_t i = 0; i < sizeof(all_triggers) / sizeof(*all_triggers); i++)
            if (strcmp(all_triggers[i], trigger) == 0)
                return true;
        return false;
    }
    cJSON_ArrayForEach(t, list)
        if (cJSON_IsString(t) && strcmp(t->valuestring, trigger) == 0)
            return true;
    return false;
}

static const char *digest_of(const char *image)
{
    const char *at = image ? strrchr(image, '@') : NULL;
    return at ? at + 1 : NULL;
}

static bool digest_valid(const char *d)
{
    if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
        return false;
    for (const char *p = d + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

static const cJSON *find_container(const cJSON *pod_spec, const char *name)
{
    const cJSON *ct;
    cJSON_ArrayForEach(ct, json_get(pod_spec, "containers", NULL)) {
        const char *n = json_str(ct, "name", NULL);
        if (n && name && strcmp(n, name) == 0)
            return ct;
    }
    return NULL;
}

bool release_container_digest(char out[72], const cJSON *pod_spec, const char *container)
{
    const cJSON *ct = find_container(pod_spec, container);
    const char *d;
    out[0] = '\0';
    if (!ct)
        return false;
    d = digest_of(json_str(ct, "image", NULL));
    if (digest_valid(d))
        memcpy(out, d, 72);
    return true;
}

int release_id(char out[13], const char *ns, const char *name, long long generation, const char *digest)
{
    char *in = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = asprintf(&in, "%s/%s/%lld/%s", ns, name, generation, digest);
    if (n < 0)
        return mb_error_set(MB_ENOMEM, "out of memory");
    if (!EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha256(), NULL)) {
        free(in);
        return mb_error_set(MB_ERROR, "sha256 failed");
    }
    free(in);
    for (int i = 0; i < 6; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* The image the Deployment's target container runs now, or NULL. */
static const char *deployment_image(const ctx *c)
{
    const cJSON *ct = find_container(json_get(c->obs->deployment, "spec", "template", "spec", NULL), c->container);
    return ct ? json_str(ct, "image", NULL) : NULL;
}

/* ---- gates ------------------------------------------------------------- */

typedef struct {
    const char *reason;
    char message[512];
    bool transient;
} gate_block;

static bool block(gate_block *b, const char *reason, bool transient, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool block(gate_block *b, const char *reason, bool transient, const char *fmt, ...)
{
    va_list ap;
    b->reason = reason;
    b->transient = transient;
    va_start(ap, fmt);
    vsnprintf(b->message, sizeof(b->message), fmt, ap);
    va_end(ap);
    return false;
}

static const char *const environments[] = {"dev", "staging", "prod"};

static bool spec_valid(const ctx *c, gate_block *b)
{
    const char *env = json_str(c->spec, "environment", NULL);
    bool env_ok = false;
    for (size_t i = 0; env && i < 3; i++)
        env_ok = env_ok || strcmp(env, environments[i]) == 0;
    if (!env_ok)
        return block(b, "InvalidSpec", false, "spec.environment \"%s\" is not one of dev, staging, prod; fix the spec", env ? env : "");
    if (!c->deployment || !*c->deployment)
        return block(b, "InvalidSpec", false, "spec.target.deployment is empty; name the Deployment to roll out");
    if (!c->container || !*c->container)
        return block(b, "InvalidSpec", false, "spec.target.container is empty; name the container in the Deployment's pod template");
    if (!c->repository || !*c->repository || strchr(c->repository, '@'))
        return block(b, "InvalidSpec", false, "spec.image.repository \"%s\" must be an image repository without a tag or digest", c->repository ? c->repository : "");
    if (!digest_valid(c->digest))
        return block(b, "InvalidSpec", false, "spec.image.digest \"%s\" is not a sha256 digest (sha256:<64 lowercase hex>); pin the image by digest, not by tag", c->digest ? c->digest : "");
    const char *rt = json_str(c->spec, "rollbackTarget", "digest", NULL);
    if (rt && !digest_valid(rt))
        return block(b, "InvalidSpec", false, "spec.rollbackTarget.digest \"%s\" is not a sha256 digest", rt);
    if (rt && strcmp(rt, c->digest) == 0)
        return block(b, "InvalidSpec", false, "spec.rollbackTarget.digest equals spec.image.digest; a release cannot roll back to itself");
    return true;
}

/*
 * The bundle gate: the PolicyBundle has looked at its current spec
 * (status.observedGeneration == metadata.generation), is Ready=True, and
 * verified exactly the digest its spec pins (status.verifiedDigest non-empty
 * and equal to spec.source.digest). Otherwise false, with what is missing or
 * different in why.
 */
static bool bundle_ready(const cJSON *pb, char *why, size_t len)
{
    const cJSON *cd, *ready = NULL;
    long long gen = json_int(-1, pb, "metadata", "generation", NULL);
    long long og = json_int(-2, pb, "status", "observedGeneration", NULL);
    const char *verified = json_str(pb, "status", "verifiedDigest", NULL);
    const char *pinned = json_str(pb, "spec", "source", "digest", NULL);
    cJSON_ArrayForEach(cd, json_get(pb, "status", "conditions", NULL)) {
        const char *type = json_str(cd, "type", NULL);
        if (type && strcmp(type, "Ready") == 0)
            ready = cd;
    }
    const char *rs = json_str(ready, "status", NULL);
    if (og != gen) {
        if (og < 0)
            snprintf(why, len, "its status.observedGeneration is not set (generation %lld): the bundle has not been looked at yet", gen);
        else
            snprintf(why, len, "its status.observedGeneration %lld is not its generation %lld: the status describes an older spec", og, gen);
        return false;
    }
    if (!rs || strcmp(rs, "True") != 0 || json_int(og, ready, "observedGeneration", NULL) != gen) {
        snprintf(why, len, "its Ready condition is %s for generation %lld (%s)", rs ? rs : "absent", gen,
                 json_str(ready, "reason", NULL) ? json_str(ready, "reason", NULL) : "no reason");
        return false;
    }
    if (!pinned || !*pinned) {
        snprintf(why, len, "its spec.source.digest is empty, so there is no pinned digest to compare status.verifiedDigest with");
        return false;
    }
    if (!verified || !*verified) {
        snprintf(why, len, "its status.verifiedDigest is empty: no digest has been verified for spec.source.digest %s", pinned);
        return false;
    }
    if (strcmp(verified, pinned) != 0) {
        snprintf(why, len, "its status.verifiedDigest %s differs from spec.source.digest %s: the verified bundle is not the pinned one",
                 verified, pinned);
        return false;
    }
    return true;
}

/* True when the release recorded in the status (its releaseID) ended Succeeded: its digest was verified. */
static bool last_release_succeeded(const ctx *c)
{
    const char *old_rid = old_str(c, "releaseID");
    const cJSON *h = c->old ? json_get(c->old, "history", NULL) : NULL;
    const cJSON *last = cJSON_GetArrayItem(h, cJSON_GetArraySize(h) - 1);
    const char *rid = json_str(last, "releaseID", NULL), *outcome = json_str(last, "outcome", NULL);
    return old_rid && rid && outcome && strcmp(rid, old_rid) == 0 && strcmp(outcome, PHASE_SUCCEEDED) == 0;
}

/*
 * The rollback target this release would record now, in out ("" if none),
 * and the full image reference a rollback patches the container to, in
 * image. The Deployment's image becomes the target only when no release is
 * recorded or the last one succeeded: after a generation that was cut short,
 * failed or rolled back, the Deployment may run a digest nobody verified, and
 * the target recorded before that generation touched it still stands, with
 * its image. The image is the container's image string as it ran (its own
 * repository, which spec.image.repository may since have changed), or
 * <spec.image.repository>@<digest> for spec.rollbackTarget.digest.
 */
static void rollback_target(const ctx *c, char out[72], char image[512])
{
    const char *rt = json_str(c->spec, "rollbackTarget", "digest", NULL);
    const char *recorded = old_str(c, "rollbackTarget");
    const char *recorded_image = old_str(c, "rollbackImage");
    const char *old_rid = old_str(c, "releaseID");
    out[0] = '\0';
    image[0] = '\0';
    if (rt) {
        snprintf(out, 72, "%s", rt);
        snprintf(image, 512, "%s@%s", c->repository ? c->repository : "", rt);
    } else if (old_rid && recorded && *recorded && (strcmp(old_rid, c->rid) == 0 || !last_release_succeeded(c))) {
        /* already recorded for this very release, or for one that never verified what it left running */
        snprintf(out, 72, "%s", recorded);
        if (recorded_image && digest_of(recorded_image) && strcmp(digest_of(recorded_image), recorded) == 0)
            snprintf(image, 512, "%s", recorded_image);
        else /* recorded before rollbackImage was: the repository is all there is */
            snprintf(image, 512, "%s@%s", c->repository ? c->repository : "", recorded);
    } else {
        const char *running = deployment_image(c);
        const char *d = digest_of(running);
        if (digest_valid(d) && strlen(running) < 512) {
            snprintf(out, 72, "%s", d);
            snprintf(image, 512, "%s", running);
        }
    }
}

static bool gates(const ctx *c, gate_block *b, char target[72], char target_image[512])
{
    const char *cr = json_str(c->spec, "changeRecord", NULL);
    const char *owner;
    const char *pbname = json_str(c->spec, "policyBundleRef", "name", NULL);

    if (!spec_valid(c, b))
        return false;
    if (!cr || !*cr)
        return block(b, "ChangeRecordMissing", false, "spec.changeRecord is empty; link the change ticket or pull request that approves this release");
    if (!c->obs->deployment)
        return block(b, "TargetNotFound", false, "Deployment %s/%s does not exist; create it or fix spec.target.deployment", c->ns, c->deployment);
    if (!find_container(json_get(c->obs->deployment, "spec", "template", "spec", NULL), c->container))
        return block(b, "ContainerNotFound", false, "Deployment %s/%s has no container \"%s\" in its pod template; fix spec.target.container", c->ns, c->deployment, c->container);
    owner = json_str(c->obs->deployment, "metadata", "annotations", RELEASE_OWNER_ANNOTATION, NULL);
    if (owner && *owner && strcmp(owner, c->owner) != 0)
        return block(b, "TargetClaimed", false, "Deployment %s/%s is claimed by GovernedAPIRelease %s; one release may own a Deployment, delete or retarget the other", c->ns, c->deployment, owner);
    if (pbname) {
        if (!c->obs->policy_bundle)
            return block(b, "PolicyBundleNotReady", true, "PolicyBundle %s/%s does not exist yet; the release waits for it to be Ready", c->ns, pbname);
        char why[300];
        if (!bundle_ready(c->obs->policy_bundle, why, sizeof(why)))
            return block(b, "PolicyBundleNotReady", true, "PolicyBundle %s/%s is not ready: %s; the release waits for it", c->ns, pbname, why);
    }
    rollback_target(c, target, target_image);
    if (!*target)
        return block(b, "NoRollbackTarget", false, "no rollback target: container \"%s\" does not run an image pinned by digest; set spec.rollbackTarget.digest", c->container);
    return true;
}

/* ---- the Deployment and its pods ---------------------------------------- */

static char *patch_body(const ctx *c, const char *image, bool owner, bool template_annotations)
{
    cJSON *p = cJSON_CreateObject();
    char *out = NULL;
    cJSON *meta = json_ensure_object(p, "metadata", NULL);
    const char *rv = json_str(c->obs->deployment, "metadata", "resourceVersion", NULL);
    if (!meta || (rv && json_set_str(meta, "resourceVersion", rv) < 0))
        goto done;
    if (owner) {
        cJSON *ann = json_ensure_object(meta, "annotations", NULL);
        if (!ann || json_set_str(ann, RELEASE_OWNER_ANNOTATION, c->owner) < 0)
            goto done;
    }
    if (image) {
        cJSON *tpl = json_ensure_object(p, "spec", "template", NULL);
        cJSON *containers = tpl ? cJSON_AddArrayToObject(json_ensure_object(tpl, "spec", NULL), "containers") : NULL;
        cJSON *ct = cJSON_CreateObject();
        if (!containers || !ct) {
            cJSON_Delete(ct);
            goto done;
        }
        cJSON_AddItemToArray(containers, ct);
        if (json_set_str(ct, "name", c->container) < 0 || json_set_str(ct, "image", image) < 0)
            goto done;
        if (template_annotations) {
            cJSON *ann = json_ensure_object(tpl, "metadata", "annotations", NULL);
            const char *bd = json_str(c->st, "policyBundleDigest", NULL);
            if (!ann || json_set_str(ann, RELEASE_ID_ANNOTATION, c->rid) < 0)
                goto done;
            if (bd && *bd && json_set_str(ann, RELEASE_BUNDLE_ANNOTATION, bd) < 0)
                goto done;
        }
    }
    out = cJSON_PrintUnformatted(p);
done:
    cJSON_Delete(p);
    if (!out)
        mb_error_set(MB_ENOMEM, "out of memory building the Deployment patch");
    return out;
}

static bool pod_runs(const cJSON *pod, const char *container, const char *image)
{
    const cJSON *ct = find_container(json_get(pod, "spec", NULL), container);
    const char *im = ct ? json_str(ct, "image", NULL) : NULL;
    return im && strcmp(im, image) == 0;
}

/* A crash-looping pod running image: its name and why, in msg. */
static bool crashloop(const ctx *c, const char *image, char *msg, size_t len)
{
    long long threshold = spec_int(c, 3, "rollout", "crashLoopRestartThreshold");
    for (size_t i = 0; i < c->obs->n_pods; i++) {
        const cJSON *pod = c->obs->pods[i];
        const cJSON *cs;
        if (!pod_runs(pod, c->container, image))
            continue;
        cJSON_ArrayForEach(cs, json_get(pod, "status", "containerStatuses", NULL)) {
            const char *n = json_str(cs, "name", NULL);
            const char *why = json_str(cs, "state", "waiting", "reason", NULL);
            long long restarts = json_int(0, cs, "restartCount", NULL);
            if (!n || strcmp(n, c->container) != 0)
                continue;
            for (size_t k = 0; why && k < sizeof(crash_reasons) / sizeof(*crash_reasons); k++) {
                if (strcmp(why, crash_reasons[k]) == 0) {
                    snprintf(msg, len, "pod %s container %s is waiting in %s (%lld restarts)",
                             json_str(pod, "metadata", "name", NULL), n, why, restarts);
                    return true;
                }
            }
            if (restarts >= threshold) {
                snprintf(msg, len, "pod %s container %s restarted %lld times (threshold %lld)",
                         json_str(pod, "metadata", "name", NULL), n, restarts, threshold);
                return true;
            }
        }
    }
    return false;
}

/* The rollout of image is complete: API.md's four conditions. */
static bool rollout_complete(const ctx *c, const char *image)
{
    const cJSON *d = c->obs->deployment;
    const char *running = deployment_image(c);
    long long replicas = json_int(1, d, "spec", "replicas", NULL);
    if (!running || strcmp(running, image) != 0)
        return false;
    if (json_int(-1, d, "status", "observedGeneration", NULL) < json_int(0, d, "metadata", "generation", NULL))
        return false;
    if (json_int(0, d, "status", "updatedReplicas", NULL) != replicas ||
        json_int(0, d, "status", "availableReplicas", NULL) != replicas)
        return false;
    for (size_t i = 0; i < c->obs->n_pods; i++)
        if (!pod_runs(c->obs->pods[i], c->container, image))
            return false; /* a pod of an old ReplicaSet remains */
    return true;
}

static bool progress_deadline(const ctx *c, time_t since, char *msg, size_t len, long *remaining_ms)
{
    const cJSON *cd;
    long long secs = spec_int(c, 600, "rollout", "progressDeadlineSeconds");
    cJSON_ArrayForEach(cd, json_get(c->obs->deployment, "status", "conditions", NULL)) {
        const char *type = json_str(cd, "type", NULL), *s = json_str(cd, "status", NULL), *r = json_str(cd, "reason", NULL);
        if (type && s && r && strcmp(type, "Progressing") == 0 && strcmp(s, "False") == 0 &&
            strcmp(r, "ProgressDeadlineExceeded") == 0) {
            snprintf(msg, len, "Deployment %s/%s reports ProgressDeadlineExceeded", c->ns, c->deployment);
            return true;
        }
    }
    if (since > 0 && c->obs->now - since >= secs) {
        snprintf(msg, len, "the rollout has not completed %llds after it started", secs);
        return true;
    }
    *remaining_ms = since > 0 ? (long)(since + secs - c->obs->now) * 1000L + 1000L : 0;
    return false;
}

/* ---- status building blocks ---------------------------------------------- */

/* s cut to at most max bytes without splitting a UTF-8 sequence, into out (max + 1 bytes). */
static void utf8_cut(char *out, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

/*
 * The break-glass record of a Manual rollback: the reason and approver
 * annotations while the request stands, else what lastRollback recorded of
 * them (the annotations are removed once acted on). "" when absent.
 */
static void manual_record(const ctx *c, char reason[RELEASE_ROLLBACK_REASON_MAX + 1],
                          char approver[RELEASE_ROLLBACK_APPROVER_MAX + 1])
{
    const char *lr_trigger = json_str(c->st, "lastRollback", "trigger", NULL);
    const char *r = json_str(c->obs->release, "metadata", "annotations", RELEASE_ROLLBACK_REASON_ANNOTATION, NULL);
    const char *a = json_str(c->obs->release, "metadata", "annotations", RELEASE_ROLLBACK_APPROVER_ANNOTATION, NULL);
    if (lr_trigger && strcmp(lr_trigger, "Manual") == 0 && json_get(c->st, "lastRollback", "time", NULL) &&
        !json_str(c->obs->release, "metadata", "annotations", RELEASE_ROLLBACK_ANNOTATION, NULL)) {
        r = json_str(c->st, "lastRollback", "reason", NULL);
        a = json_str(c->st, "lastRollback", "approver", NULL);
    }
    utf8_cut(reason, r ? r : "", RELEASE_ROLLBACK_REASON_MAX);
    utf8_cut(approver, a ? a : "", RELEASE_ROLLBACK_APPROVER_MAX);
}

/* The members of a verification result the CRD declares (the API server would prune any other, breaking the receipt). */
static const char *const result_members[] = {"name", "passed", "httpStatus", "latencyMs", "trigger", "message", NULL};

#define RECEIPT_MESSAGE_MAX 2048 /* bytes of the trigger's message kept in a receipt (the CRD's maxLength) */

/*
 * What the decision was taken on, into the history entry e (its receipt seals
 * every member): the full image rolled out and the rollback image; the
 * results of the run that decided it (status.verification.results, present
 * only when a run for this release happened) with their verificationDigest;
 * the trigger's or failure's message.
 */
static int seal_inputs(ctx *c, cJSON *e)
{
    const char *ri = json_str(c->st, "rollbackImage", NULL);
    const cJSON *results = json_get(c->st, "verification", "results", NULL);
    char digest[AUDIT_REF_SIZE], why[RECEIPT_MESSAGE_MAX + 1];
    cJSON *kept = NULL, *r;
    int err = 0;

    if (set_str(e, "image", c->image) < 0 || (ri && *ri && set_str(e, "rollbackImage", ri) < 0))
        return mb_error_set(MB_ENOMEM, "out of memory");
    if (c->why && *c->why) {
        utf8_cut(why, c->why, RECEIPT_MESSAGE_MAX);
        if (set_str(e, "message", why) < 0)
            return mb_error_set(MB_ENOMEM, "out of memory");
    }
    if (!cJSON_IsArray(results))
        return 0;
    if (!(kept = cJSON_Duplicate(results, true)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    cJSON_ArrayForEach(r, kept)
        json_keep_only(r, result_members);
    if ((err = audit_results_digest(digest, kept)) < 0) {
        cJSON_Delete(kept);
        return err;
    }
    if ((err = json_set_item(e, AUDIT_RESULTS_MEMBER, kept)) < 0) /* takes kept */
        return err;
    return set_str(e, AUDIT_RESULTS_DIGEST_MEMBER, digest);
}

static int record_history(ctx *c, const char *outcome, const char *trigger)
{
    /* Only fields the CRD declares, and no empty optional ones: the apiserver prunes or rejects the rest. */
    cJSON *e = cJSON_CreateObject();
    const char *bd = json_str(c->st, "policyBundleDigest", NULL);
    const char *started = json_str(c->st, "rolloutStartedAt", NULL);
    const char *prev = json_str(c->st, "rollbackTarget", NULL);
    int err = MB_ENOMEM;
    if (!e || set_str(e, "releaseID", c->rid) < 0 || set_num(e, "generation", (double)c->gen) < 0 ||
        set_str(e, "digest", c->digest) < 0 || set_str(e, "outcome", outcome) < 0 ||
        set_str(e, "environment", json_str(c->spec, "environment", NULL)) < 0 ||
        set_str(e, "changeRecord", json_str(c->spec, "changeRecord", NULL)) < 0 ||
        (prev && *prev && set_str(e, "previousDigest", prev) < 0) ||
        (trigger && *trigger && set_str(e, "trigger", trigger) < 0) ||
        (bd && *bd && set_str(e, "policyBundleDigest", bd) < 0) ||
        (started && *started && set_str(e, "startedAt", started) < 0) ||
        set_time(e, "finishedAt", c->obs->now) < 0) {
        cJSON_Delete(e);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    if (trigger && strcmp(trigger, "Manual") == 0) {
        char reason[RELEASE_ROLLBACK_REASON_MAX + 1], approver[RELEASE_ROLLBACK_APPROVER_MAX + 1];
        manual_record(c, reason, approver);
        if ((*reason && set_str(e, "reason", reason) < 0) || (*approver && set_str(e, "approver", approver) < 0)) {
            cJSON_Delete(e);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
    }
    if ((err = seal_inputs(c, e)) < 0) {
        cJSON_Delete(e);
        return err;
    }
    if ((err = audit_history_append(c->st, e, c->obs->release)) < 0)
        return err;
    c->plan->receipt = cJSON_GetArrayItem(cJSON_GetObjectItem(c->st, "history"),
                                          cJSON_GetArraySize(cJSON_GetObjectItem(c->st, "history")) - 1);
    return 0;
}

static bool has_result(const cJSON *results, const char *name)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, results) {
        const char *n = json_str(r, "name", NULL);
        if (n && strcmp(n, name) == 0)
            return true;
    }
    return false;
}

/*
 * Every check the release asked for that has no result in results, as a
 * failed result of its own ("no result", its row's trigger) appended to out:
 * a check that did not report cannot have passed, whatever the runner did.
 */
static int add_missing_results(cJSON *out, const ctx *c, const cJSON *results)
{
    const char *asked[VERIFY_CHECKS_MAX];
    size_t n = verify_checks_requested(asked, VERIFY_CHECKS_MAX, json_get(c->obs->release, "spec", "verification", "checks", NULL),
                                       json_get(c->obs->release, "spec", "membrane", NULL));
    for (size_t i = 0; i < n; i++) {
        if (has_result(results, asked[i]) || has_result(out, asked[i]))
            continue;
        cJSON *r = cJSON_CreateObject();
        if (!r || set_str(r, "name", asked[i]) < 0 || !cJSON_AddBoolToObject(r, "passed", false) ||
            set_str(r, "trigger", verify_check_trigger(asked[i])) < 0 || set_str(r, "message", "no result") < 0 ||
            !cJSON_AddItemToArray(out, r)) {
            cJSON_Delete(r);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
    }
    return 0;
}

static int write_verification(ctx *c, const release_checks *rc)
{
    cJSON *v = cJSON_CreateObject();
    cJSON *results = rc->results ? cJSON_Duplicate(rc->results, true) : cJSON_CreateArray();
    if (!v || !results || set_time(v, "startedAt", rc->started_at) < 0 || set_time(v, "finishedAt", rc->finished_at) < 0 ||
        add_missing_results(results, c, rc->results) < 0) {
        cJSON_Delete(v);
        cJSON_Delete(results);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    if (json_set_item(v, "results", results) < 0) {
        cJSON_Delete(v);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    return json_set_item(c->st, "verification", v);
}

/*
 * The first failed check, or NULL; membrane results also set MembraneIntact.
 * A requested check without a result in the run is a failed one ("no
 * result"), judged after those that reported.
 */
static const cJSON *judge_checks(ctx *c, const release_checks *rc, int *err)
{
    const cJSON *r, *first = NULL, *first_membrane = NULL;
    bool any_membrane = false;
    cJSON_Delete(c->no_result);
    if (!(c->no_result = cJSON_CreateArray()) || add_missing_results(c->no_result, c, rc->results) < 0) {
        *err = mb_error_set(MB_ENOMEM, "out of memory");
        return NULL;
    }
    for (int pass = 0; pass < 2; pass++) {
        const cJSON *list = pass == 0 ? rc->results : c->no_result;
        cJSON_ArrayForEach(r, list) {
            const char *name = json_str(r, "name", NULL);
            bool membrane = name && strncmp(name, "membrane-", 9) == 0;
            any_membrane = any_membrane || membrane;
            if (!json_bool(false, r, "passed", NULL)) {
                if (!first)
                    first = r;
                if (membrane && !first_membrane)
                    first_membrane = r;
            }
        }
    }
    *err = 0;
    if (any_membrane) {
        if (first_membrane)
            *err = cond(c, COND_MEMBRANE_INTACT, COND_FALSE, "MembraneBreach", json_str(first_membrane, "message", NULL));
        else
            *err = cond(c, COND_MEMBRANE_INTACT, COND_TRUE, "MembraneIntact", "clients cannot reach the stores; every path goes through the governed API");
    }
    return first;
}

/* ---- phases -------------------------------------------------------------- */

static int finish_failed(ctx *c, const char *reason, const char *trigger, const char *message)
{
    int err;
    c->why = message;
    if ((err = set_phase(c, PHASE_FAILED)) < 0 ||
        (err = conditions_mark_stalled(NULL, c->st, reason, message, c->gen, c->obs->now)) < 0 ||
        (err = record_history(c, PHASE_FAILED, trigger)) < 0)
        return err;
    return add_event(c, "Warning", "ReleaseFailed", "%s; receipt %s", message,
                     json_str(c->plan->receipt, "auditRef", NULL));
}

/* The image a rollback to target patches the container to: status.rollbackImage when it names target. */
static void rollback_image(const ctx *c, const char *target, char image[512])
{
    const char *ri = json_str(c->st, "rollbackImage", NULL);
    const char *d = digest_of(ri);
    if (ri && d && strcmp(d, target) == 0)
        snprintf(image, 512, "%s", ri);
    else
        snprintf(image, 512, "%s@%s", c->repository, target);
}

/* A Manual rollback without its reason or approver still happens; a Warning says what to record. */
static int manual_undocumented(ctx *c, const char *reason, const char *approver)
{
    if (*reason && *approver)
        return 0;
    return add_event(c, "Warning", "BreakGlassUndocumented",
                     "the manual rollback was requested without %s%s%s; it goes ahead, but record why in the "
                     RELEASE_ROLLBACK_REASON_ANNOTATION " annotation and who approved it in the "
                     RELEASE_ROLLBACK_APPROVER_ANNOTATION " annotation, set together with "
                     RELEASE_ROLLBACK_ANNOTATION ": \"true\"",
                     *reason ? "" : RELEASE_ROLLBACK_REASON_ANNOTATION, !*reason && !*approver ? " and " : "",
                     *approver ? "" : RELEASE_ROLLBACK_APPROVER_ANNOTATION);
}

static int fire_trigger(ctx *c, const char *trigger, const char *why)
{
    int err;
    char target[72];
    const char *recorded = json_str(c->st, "rollbackTarget", NULL);
    bool automatic = json_bool(true, c->spec, "rollback", "automatic", NULL);
    char msg[768];

    snprintf(target, sizeof(target), "%s", recorded ? recorded : "");
    if ((err = add_event(c, "Warning", "TriggerFired", "%s: %s", trigger, why)) < 0)
        return err;
    char reason[RELEASE_ROLLBACK_REASON_MAX + 1] = "", approver[RELEASE_ROLLBACK_APPROVER_MAX + 1] = "";
    bool manual = strcmp(trigger, "Manual") == 0;
    if (manual) {
        c->plan->clear_rollback_annotation = true;
        manual_record(c, reason, approver);
        if ((err = manual_undocumented(c, reason, approver)) < 0)
            return err;
    }
    if (!trigger_listed(c, trigger) || (!automatic && !manual)) {
        snprintf(msg, sizeof(msg), "%s: %s; automatic rollback %s, so the Deployment is left as it is: "
                 "roll back by hand or revert spec.image.digest in Git", trigger, why,
                 automatic ? "does not cover this trigger" : "is off");
        return finish_failed(c, trigger, trigger, msg);
    }
    if (!*target || strcmp(target, c->digest) == 0) {
        snprintf(msg, sizeof(msg), "%s: %s; there is no rollback target other than the failing digest, so nothing was rolled back", trigger, why);
        return finish_failed(c, "RollbackFailed", trigger, msg);
    }
    cJSON *lr = cJSON_CreateObject();
    if (!lr || set_time(lr, "time", c->obs->now) < 0 || set_str(lr, "trigger", trigger) < 0 ||
        set_str(lr, "fromDigest", c->digest) < 0 || set_str(lr, "toDigest", target) < 0 ||
        set_str(lr, "message", why) < 0 || (*reason && set_str(lr, "reason", reason) < 0) ||
        (*approver && set_str(lr, "approver", approver) < 0)) {
        cJSON_Delete(lr);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    if ((err = json_set_item(c->st, "lastRollback", lr)) < 0)
        return err;
    char image[512];
    rollback_image(c, target, image);
    snprintf(msg, sizeof(msg), "rolling back to %s after %s: %s", image, trigger, why);
    if ((err = set_phase(c, PHASE_ROLLING_BACK)) < 0 ||
        (err = conditions_mark_reconciling(NULL, c->st, "RollingBack", msg, c->gen, c->obs->now)) < 0 ||
        (err = cond(c, COND_ROLLED_BACK, COND_FALSE, "RollingBack", msg)) < 0 ||
        (err = add_event(c, "Warning", "RollbackTriggered", "%s", msg)) < 0)
        return err;
    c->plan->deployment_patch = patch_body(c, image, true, false);
    return c->plan->deployment_patch ? 0 : MB_ENOMEM;
}

/* Triggers that can fire while a new version runs: Manual, CrashLoop, ProgressDeadline. */
static int watch_triggers(ctx *c, bool deadline, bool *fired)
{
    char why[512];
    long remaining = 0;
    time_t started = 0;
    const char *manual = json_str(c->obs->release, "metadata", "annotations", RELEASE_ROLLBACK_ANNOTATION, NULL);

    *fired = true;
    if (manual && strcmp(manual, "true") == 0)
        return fire_trigger(c, "Manual", "the governance.kfm.dev/rollback annotation asks for a rollback");
    if (crashloop(c, c->image, why, sizeof(why)))
        return fire_trigger(c, "CrashLoop", why);
    if (deadline) {
        old_time(c, &started, "rolloutStartedAt", NULL);
        if (progress_deadline(c, started, why, sizeof(why), &remaining))
            return fire_trigger(c, "ProgressDeadline", why);
        if (remaining > 0 && (c->plan->requeue_ms == 0 || remaining < c->plan->requeue_ms))
            c->plan->requeue_ms = remaining;
    }
    *fired = false;
    return 0;
}

/* spec.rollout.recheckSeconds (the CRD defaults it to 15 and refuses less than 1). */
static long long recheck_seconds(const ctx *c)
{
    long long s = spec_int(c, 15, "rollout", "recheckSeconds");
    return s < 1 ? 1 : s;
}

static int ask_checks(ctx *c)
{
    c->plan->run_checks = true;
    memcpy(c->plan->checks_release_id, c->rid, sizeof(c->rid));
    return 0;
}

/*
 * The run in hand is for this release and fresh: it started no earlier than
 * the last judged run finished (last_finished, when seen is true); an older
 * one (a stale result) is not judged.
 */
static bool run_fresh(const ctx *c, const release_checks *rc, bool seen, time_t last_finished)
{
    if (!rc->ran || !rc->release_id || strcmp(rc->release_id, c->rid) != 0)
        return false;
    return !seen || rc->started_at >= last_finished;
}

/* status.verification.observingSince: the window's start, kept across the runs that replace the rest. */
static int observing_since_set(ctx *c, time_t since)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(c->st, "verification");
    int err;
    if (!cJSON_IsObject(v) && (err = json_set_item(c->st, "verification", v = cJSON_CreateObject())) < 0)
        return err;
    return set_time(v, "observingSince", since);
}

/* A failed check, in Verifying or Observing: Verified=False with its trigger, which fires. */
static int check_failed(ctx *c, const cJSON *failed)
{
    int err;
    char why[600];
    const char *trigger = json_str(failed, "trigger", NULL);
    snprintf(why, sizeof(why), "check %s failed: %s", json_str(failed, "name", NULL),
             json_str(failed, "message", NULL) ? json_str(failed, "message", NULL) : "no message");
    if ((err = cond(c, COND_VERIFIED, COND_FALSE, trigger ? trigger : "SmokeFailure", why)) < 0)
        return err;
    return fire_trigger(c, trigger ? trigger : "SmokeFailure", why);
}

static int enter_verifying(ctx *c)
{
    int err;
    char msg[600];
    snprintf(msg, sizeof(msg), "%s runs %s on every replica; running the verification checks", c->deployment, c->digest);
    if ((err = set_phase(c, PHASE_VERIFYING)) < 0 ||
        (err = cond(c, COND_ROLLED_OUT, COND_TRUE, "RolloutComplete", msg)) < 0 ||
        (err = cond(c, COND_VERIFIED, COND_UNKNOWN, "Verifying", "the verification checks are running")) < 0 ||
        (err = conditions_mark_reconciling(NULL, c->st, "Verifying", msg, c->gen, c->obs->now)) < 0)
        return err;
    return ask_checks(c);
}

static int phase_verifying(ctx *c)
{
    int err;
    bool fired;
    const release_checks *rc = &c->obs->checks;
    if ((err = watch_triggers(c, false, &fired)) < 0 || fired)
        return err;
    if (!rc->ran || !rc->release_id || strcmp(rc->release_id, c->rid) != 0)
        return ask_checks(c);
    if ((err = write_verification(c, rc)) < 0)
        return err;
    const cJSON *failed = judge_checks(c, rc, &err);
    if (err < 0)
        return err;
    if (failed)
        return check_failed(c, failed);
    long long obs_secs = spec_int(c, 60, "rollout", "observationSeconds");
    char msg[300];
    if (obs_secs > 0)
        snprintf(msg, sizeof(msg), "every check passed; observing for %llds, the checks running again every %llds "
                 "and at the end, before the release succeeds", obs_secs, recheck_seconds(c));
    else
        snprintf(msg, sizeof(msg), "every check passed; observationSeconds is 0, so this run was the last");
    if ((err = cond(c, COND_VERIFIED, COND_TRUE, "ChecksPassed", "every verification check passed")) < 0 ||
        (err = set_phase(c, PHASE_OBSERVING)) < 0 ||
        (err = conditions_mark_reconciling(NULL, c->st, "Observing", msg, c->gen, c->obs->now)) < 0 ||
        (err = observing_since_set(c, c->obs->now)) < 0)
        return err;
    c->plan->requeue_ms = (obs_secs < recheck_seconds(c) ? obs_secs : recheck_seconds(c)) * 1000L + 500L;
    return 0;
}

/*
 * Observing: the triggers are watched, the checks run again recheckSeconds
 * after the last judged run finished and once at the end of the window
 * (observingSince + observationSeconds); a run that started at or after the
 * end and passed ends the release Succeeded. Everything is read from the
 * status (decide.h), so a restart neither loses the window nor skips the
 * final run. observationSeconds 0: no window, the Verifying run was the last.
 */
static int phase_observing(ctx *c)
{
    int err;
    bool fired;
    time_t since, started = 0, finished = 0;
    long long obs_secs = spec_int(c, 60, "rollout", "observationSeconds");
    const release_checks *rc = &c->obs->checks;
    char msg[600];

    if ((err = watch_triggers(c, false, &fired)) < 0 || fired)
        return err;
    if (obs_secs > 0) {
        bool seen = old_time(c, &finished, "verification", "finishedAt") &&
                    old_time(c, &started, "verification", "startedAt");
        /* the anchor; a status without one (an earlier version's) counts from its Verifying run, as that did */
        if (!old_time(c, &since, "verification", "observingSince"))
            since = seen ? finished : c->obs->now;
        if (run_fresh(c, rc, seen, finished)) {
            if ((err = write_verification(c, rc)) < 0)
                return err;
            const cJSON *failed = judge_checks(c, rc, &err);
            if (err < 0)
                return err;
            if (failed)
                return check_failed(c, failed);
            started = rc->started_at;
            finished = rc->finished_at;
            seen = true;
        }
        if ((err = observing_since_set(c, since)) < 0)
            return err;
        time_t end = since + (time_t)obs_secs;
        if (!seen || started < end) {
            /* the next recheck, or the final run */
            time_t due = finished + (time_t)recheck_seconds(c);
            if (due > end)
                due = end;
            if (!seen || c->obs->now >= due)
                return ask_checks(c);
            c->plan->requeue_ms = (long)(due - c->obs->now) * 1000L;
            return 0;
        }
        snprintf(msg, sizeof(msg), "%s runs %s, verified, observed for %llds and verified again at its end",
                 c->deployment, c->digest, obs_secs);
    } else {
        snprintf(msg, sizeof(msg), "%s runs %s, verified (observationSeconds is 0: the Verifying run was the last)",
                 c->deployment, c->digest);
    }
    if ((err = set_phase(c, PHASE_SUCCEEDED)) < 0 ||
        (err = conditions_mark_ready(NULL, c->st, "Succeeded", msg, c->gen, c->obs->now)) < 0 ||
        (err = record_history(c, PHASE_SUCCEEDED, "")) < 0)
        return err;
    return add_event(c, "Normal", "ReleaseSucceeded", "%s; receipt %s", msg, json_str(c->plan->receipt, "auditRef", NULL));
}

static int phase_rolling_out(ctx *c)
{
    int err;
    bool fired;
    const char *running = deployment_image(c);
    if (!c->obs->deployment)
        return finish_failed(c, "TargetNotFound", "", "the Deployment disappeared during the rollout; recreate it and revert or re-apply the release");
    if ((err = watch_triggers(c, true, &fired)) < 0 || fired)
        return err;
    if (!running || strcmp(running, c->image) != 0) {
        /* the status was written but the patch was not (or was undone): send it again */
        c->plan->deployment_patch = patch_body(c, c->image, true, true);
        return c->plan->deployment_patch ? 0 : MB_ENOMEM;
    }
    if (!rollout_complete(c, c->image))
        return 0;
    if ((err = add_event(c, "Normal", "RolloutComplete", "Deployment %s/%s runs %s on every replica", c->ns, c->deployment, c->digest)) < 0)
        return err;
    return enter_verifying(c);
}

static int phase_rolling_back(ctx *c)
{
    int err;
    const char *target = json_str(c->st, "lastRollback", "toDigest", NULL);
    const char *trigger = json_str(c->st, "lastRollback", "trigger", NULL);
    char image[512], why[512];
    time_t since = 0;
    long remaining = 0;

    if (!target || !*target)
        return finish_failed(c, "RollbackFailed", trigger, "status.lastRollback has no target digest; the rollback cannot go on");
    rollback_image(c, target, image);
    const char *running = deployment_image(c);
    if (!c->obs->deployment)
        return finish_failed(c, "RollbackFailed", trigger, "the Deployment disappeared during the rollback");
    if (!running || strcmp(running, image) != 0) {
        c->plan->deployment_patch = patch_body(c, image, true, false);
        return c->plan->deployment_patch ? 0 : MB_ENOMEM;
    }
    if (crashloop(c, image, why, sizeof(why))) {
        char msg[700];
        snprintf(msg, sizeof(msg), "the rollback target %s does not run either: %s; the operator no longer touches the Deployment", target, why);
        if ((err = add_event(c, "Warning", "RollbackFailed", "%s", msg)) < 0)
            return err;
        return finish_failed(c, "RollbackFailed", trigger, msg);
    }
    old_time(c, &since, "lastRollback", "time");
    if (progress_deadline(c, since, why, sizeof(why), &remaining)) {
        char msg[700];
        snprintf(msg, sizeof(msg), "the rollback to %s did not complete: %s", target, why);
        if ((err = add_event(c, "Warning", "RollbackFailed", "%s", msg)) < 0)
            return err;
        return finish_failed(c, "RollbackFailed", trigger, msg);
    }
    c->plan->requeue_ms = remaining;
    if (!rollout_complete(c, image))
        return 0;
    /* re-run the same checks against the rolled-back version */
    const release_checks *rc = &c->obs->checks;
    if (!rc->ran || !rc->release_id || strcmp(rc->release_id, c->rid) != 0)
        return ask_checks(c);
    if ((err = write_verification(c, rc)) < 0)
        return err;
    const cJSON *failed = judge_checks(c, rc, &err);
    if (err < 0)
        return err;
    char msg[800];
    if (failed) {
        snprintf(msg, sizeof(msg), "rolled back to %s, but check %s still fails: %s; the operator no longer touches the Deployment",
                 target, json_str(failed, "name", NULL), json_str(failed, "message", NULL) ? json_str(failed, "message", NULL) : "");
        if ((err = add_event(c, "Warning", "RollbackFailed", "%s", msg)) < 0)
            return err;
        return finish_failed(c, "RollbackVerificationFailed", trigger, msg);
    }
    snprintf(msg, sizeof(msg), "rolled back from %s to %s after %s; the rolled-back version passes every check; revert spec.image.digest in Git or fix the release",
             c->digest, target, trigger ? trigger : "a trigger");
    c->why = json_str(c->st, "lastRollback", "message", NULL);
    if ((err = set_phase(c, PHASE_ROLLED_BACK)) < 0 ||
        (err = conditions_mark_stalled(NULL, c->st, "RolledBack", msg, c->gen, c->obs->now)) < 0 ||
        (err = cond(c, COND_ROLLED_BACK, COND_TRUE, "RolledBack", msg)) < 0 ||
        (err = record_history(c, PHASE_ROLLED_BACK, trigger)) < 0)
        return err;
    return add_event(c, "Warning", "RolledBack", "%s; receipt %s", msg, json_str(c->plan->receipt, "auditRef", NULL));
}

/* A new generation (or a resumed one): the gates, then the start of the release. */
static int phase_gating(ctx *c)
{
    gate_block b = {0};
    char target[72], target_image[512];
    int err;
    const char *pbname = json_str(c->spec, "policyBundleRef", "name", NULL);

    if (!gates(c, &b, target, target_image)) {
        bool was_blocked = false;
        const cJSON *gp = conditions_get(c->old, COND_GATES_PASSED);
        const char *old_reason = gp ? json_str(gp, "reason", NULL) : NULL;
        was_blocked = old_reason && strcmp(old_reason, b.reason) == 0 &&
                      json_int(-1, gp, "observedGeneration", NULL) == c->gen;
        if ((err = set_phase(c, PHASE_GATING)) < 0 ||
            (err = cond(c, COND_GATES_PASSED, COND_FALSE, b.reason, b.message)) < 0)
            return err;
        if (b.transient) {
            err = conditions_mark_reconciling(NULL, c->st, b.reason, b.message, c->gen, c->obs->now);
            c->plan->requeue_ms = GATE_RECHECK_MS;
        } else {
            err = conditions_mark_stalled(NULL, c->st, b.reason, b.message, c->gen, c->obs->now);
        }
        if (err < 0)
            return err;
        return was_blocked ? 0 : add_event(c, "Warning", "GateBlocked", "%s", b.message);
    }

    /* Record the target and the release before the Deployment is touched. */
    const char *running = deployment_image(c);
    bool already = running && strcmp(running, c->image) == 0;
    if ((err = set_str(c->st, "releaseID", c->rid)) < 0 ||
        (err = set_str(c->st, "rollbackTarget", target)) < 0 ||
        (err = set_str(c->st, "rollbackImage", target_image)) < 0 ||

        (err = set_time(c->st, "rolloutStartedAt", c->obs->now)) < 0 ||
        (err = cond(c, COND_GATES_PASSED, COND_TRUE, "GatesPassed", "every gate passed")) < 0)
        return err;
    /* the gate held: the verified digest is the pinned one */
    const char *bd = pbname ? json_str(c->obs->policy_bundle, "status", "verifiedDigest", NULL) : NULL;
    if (bd && *bd)
        err = set_str(c->st, "policyBundleDigest", bd);
    else
        cJSON_DeleteItemFromObjectCaseSensitive(c->st, "policyBundleDigest");
    if (err < 0)
        return err;
    cJSON_DeleteItemFromObjectCaseSensitive(c->st, "verification");
    conditions_remove(c->st, COND_VERIFIED);
    conditions_remove(c->st, COND_ROLLED_BACK);
    conditions_remove(c->st, COND_MEMBRANE_INTACT);
    if ((err = add_event(c, "Normal", "GatesPassed", "every gate passed for %s; rollback target %s", c->digest, target)) < 0)
        return err;

    if (already) {
        /* GitOps revert (or a re-applied spec): verify what runs, no rollout. */
        const char *owner = json_str(c->obs->deployment, "metadata", "annotations", RELEASE_OWNER_ANNOTATION, NULL);
        if (!owner || strcmp(owner, c->owner) != 0) {
            c->plan->deployment_patch = patch_body(c, NULL, true, false);
            if (!c->plan->deployment_patch)
                return MB_ENOMEM;
        }
        if (rollout_complete(c, c->image))
            return enter_verifying(c);
    } else {
        c->plan->deployment_patch = patch_body(c, c->image, true, true);
        if (!c->plan->deployment_patch)
            return MB_ENOMEM;
        if ((err = add_event(c, "Normal", "RolloutStarted", "rolling Deployment %s/%s container %s to %s", c->ns, c->deployment, c->container, c->image)) < 0)
            return err;
    }
    char msg[600];
    snprintf(msg, sizeof(msg), "rolling Deployment %s/%s to %s", c->ns, c->deployment, c->digest);
    if ((err = set_phase(c, PHASE_ROLLING_OUT)) < 0 ||
        (err = cond(c, COND_ROLLED_OUT, COND_FALSE, "RollingOut", msg)) < 0 ||
        (err = conditions_mark_reconciling(NULL, c->st, "RollingOut", msg, c->gen, c->obs->now)) < 0)
        return err;
    long remaining = spec_int(c, 600, "rollout", "progressDeadlineSeconds") * 1000L + 1000L;
    c->plan->requeue_ms = remaining;
    return 0;
}

static int finalize(ctx *c)
{
    const char *owner = json_str(c->obs->deployment, "metadata", "annotations", RELEASE_OWNER_ANNOTATION, NULL);
    if (owner && strcmp(owner, c->owner) == 0) {
        cJSON *p = cJSON_CreateObject();
        cJSON *ann = json_ensure_object(p, "metadata", "annotations", NULL);
        const char *rv = json_str(c->obs->deployment, "metadata", "resourceVersion", NULL);
        if (!ann || !cJSON_AddNullToObject(ann, RELEASE_OWNER_ANNOTATION) ||
            (rv && json_set_str(cJSON_GetObjectItem(p, "metadata"), "resourceVersion", rv) < 0)) {
            cJSON_Delete(p);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
        c->plan->deployment_patch = cJSON_PrintUnformatted(p);
        cJSON_Delete(p);
        if (!c->plan->deployment_patch)
            return mb_error_set(MB_ENOMEM, "out of memory");
    }
    c->plan->remove_finalizer = true;
    c->plan->phase = old_str(c, "phase") ? old_str(c, "phase") : PHASE_PENDING;
    return 0;
}

static bool has_finalizer(const cJSON *obj)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, json_get(obj, "metadata", "finalizers", NULL))
        if (cJSON_IsString(f) && strcmp(f->valuestring, RELEASE_FINALIZER) == 0)
            return true;
    return false;
}

static bool terminal(const char *phase)
{
    return phase && (strcmp(phase, PHASE_SUCCEEDED) == 0 || strcmp(phase, PHASE_ROLLED_BACK) == 0 ||
                     strcmp(phase, PHASE_FAILED) == 0);
}

/*
 * The phase this release had reached, from its status: the release must be
 * this generation's. Unsuspending changes the spec, so a suspended release
 * resumes as a new generation, at the gates.
 */
static const char *resume_phase(const ctx *c)
{
    const char *phase = old_str(c, "phase");
    const char *rid = old_str(c, "releaseID");
    if (!phase || !rid || strcmp(rid, c->rid) != 0 || strcmp(phase, PHASE_SUSPENDED) == 0 ||
        strcmp(phase, PHASE_PENDING) == 0)
        return PHASE_GATING;
    return phase;
}

int release_decide(release_plan *out, const release_observed *obs)
{
    ctx c = {0};
    int err = 0;
    const char *phase;

    memset(out, 0, sizeof(*out));
    c.obs = obs;
    c.plan = out;
    c.spec = json_get(obs->release, "spec", NULL);
    c.old = json_get(obs->release, "status", NULL);
    c.ns = json_str(obs->release, "metadata", "namespace", NULL);
    c.name = json_str(obs->release, "metadata", "name", NULL);
    c.gen = json_int(0, obs->release, "metadata", "generation", NULL);
    c.deployment = json_str(c.spec, "target", "deployment", NULL);
    c.container = json_str(c.spec, "target", "container", NULL);
    c.repository = json_str(c.spec, "image", "repository", NULL);
    c.digest = json_str(c.spec, "image", "digest", NULL);
    if (!c.ns || !c.name)
        return mb_error_set(MB_EINVAL, "the release has no metadata.namespace or metadata.name");
    snprintf(c.owner, sizeof(c.owner), "%s/%s", c.ns, c.name);
    snprintf(c.image, sizeof(c.image), "%s@%s", c.repository ? c.repository : "", c.digest ? c.digest : "");
    if ((err = release_id(c.rid, c.ns, c.name, c.gen, c.digest ? c.digest : "")) < 0)
        return err;

    if (json_get(obs->release, "metadata", "deletionTimestamp", NULL))
        return has_finalizer(obs->release) ? finalize(&c) : 0;
    out->add_finalizer = !has_finalizer(obs->release);

    c.st = c.old ? cJSON_Duplicate(c.old, true) : cJSON_CreateObject();
    if (!c.st)
        return mb_error_set(MB_ENOMEM, "out of memory");
    if ((err = set_num(c.st, "observedGeneration", (double)c.gen)) < 0)
        goto done;
    if (obs->deployment) {
        char running[72] = "";
        release_container_digest(running, json_get(obs->deployment, "spec", "template", "spec", NULL), c.container);
        if ((err = set_str(c.st, "currentDigest", running)) < 0)
            goto done;
    }

    if (json_bool(false, c.spec, "suspend", NULL)) {
        if ((err = set_phase(&c, PHASE_SUSPENDED)) < 0)
            goto done;
        conditions_remove(c.st, COND_RECONCILING);
        conditions_remove(c.st, COND_STALLED);
        err = cond(&c, COND_READY, COND_FALSE, "Suspended", "spec.suspend is true: the operator does nothing until it is false");
        goto done;
    }

    phase = resume_phase(&c);
    if (terminal(phase)) {
        /* Final for this generation; a manual trigger still rolls a success back. */
        const char *manual = json_str(obs->release, "metadata", "annotations", RELEASE_ROLLBACK_ANNOTATION, NULL);
        if ((err = set_phase(&c, phase)) < 0)
            goto done;
        if (strcmp(phase, PHASE_SUCCEEDED) == 0 && manual && strcmp(manual, "true") == 0)
            err = fire_trigger(&c, "Manual", "the governance.kfm.dev/rollback annotation asks for a rollback");
        else if (manual && strcmp(manual, "true") == 0) {
            out->clear_rollback_annotation = true;
            err = add_event(&c, "Warning", "RollbackIgnored",
                            "the governance.kfm.dev/rollback annotation was removed without effect: the release ended %s "
                            "and the operator does not touch the Deployment again for this generation; %s", phase,
                            strcmp(phase, PHASE_ROLLED_BACK) == 0 ? "the Deployment already runs the rollback target"
                                                                   : "roll back by hand or revert spec.image.digest in Git");
        }
        goto done;
    }
    if (strcmp(phase, PHASE_GATING) == 0)
        err = phase_gating(&c);
    else if (strcmp(phase, PHASE_ROLLING_OUT) == 0)
        err = phase_rolling_out(&c);
    else if (strcmp(phase, PHASE_VERIFYING) == 0)
        err = phase_verifying(&c);
    else if (strcmp(phase, PHASE_OBSERVING) == 0)
        err = phase_observing(&c);
    else if (strcmp(phase, PHASE_ROLLING_BACK) == 0)
        err = phase_rolling_back(&c);
    else
        err = phase_gating(&c);

done:
    cJSON_Delete(c.no_result);
    if (err < 0) {
        cJSON_Delete(c.st);
        release_plan_clear(out);
        return err;
    }
    if (c.old && cJSON_Compare(c.old, c.st, true)) {
        cJSON_Delete(c.st);
        out->receipt = NULL;
    } else {
        out->status = c.st;
    }
    if (!out->phase)
        out->phase = json_str(out->status ? out->status : c.old, "phase", NULL);
    return 0;
}

const char *release_plan_rollback_trigger(const release_plan *plan)
{
    for (size_t i = 0; plan && i < plan->n_events; i++)
        if (strcmp(plan->events[i].reason, "RollbackTriggered") == 0)
            return json_str(plan->status, "lastRollback", "trigger", NULL);
    return NULL;
}

uint64_t release_status_hash(const cJSON *status)
{
    char *text = status ? cJSON_PrintUnformatted(status) : NULL;
    uint64_t h = 0xcbf29ce484222325ULL;
    if (!text)
        return 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    cJSON_free(text);
    return h;
}

bool release_status_landed(const cJSON *wanted, const cJSON *server, uint64_t last_written)
{
    const cJSON *got = json_get(server, "status", NULL);
    return wanted && got && cJSON_Compare(wanted, got, true) && release_status_hash(wanted) != last_written;
}

void release_plan_clear(release_plan *plan)
{
    if (!plan)
        return;
    cJSON_Delete(plan->status);
    free(plan->deployment_patch);
    for (size_t i = 0; i < plan->n_events; i++)
        free(plan->events[i].message);
    memset(plan, 0, sizeof(*plan));
}

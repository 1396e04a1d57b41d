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
 *
 * This file holds the phases and release_decide; the gates are in gates.c,
 * what is read from the Deployment and its pods in workload.c, and the status
 * building blocks in status.c (decide_private.h).
 */
#include "release/decide_private.h"
#include "runtime/conditions.h"
#include "util/error.h"
#include "util/json.h"
#include "util/timefmt.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GATE_RECHECK_MS 15000L

static const char *const all_triggers[] = {
    "CrashLoop",     "ProgressDeadline", "SmokeFailure",    "PolicyBypass", "EvidenceFailure",
    "UncitedAnswer", "MembraneBreach",   "UnpublishedData", "SLOBreach",
};

/* ---- small helpers ------------------------------------------------------ */

#define add_event(c, ...) event_plan((c)->plan->events, &(c)->plan->n_events, RELEASE_MAX_EVENTS, __VA_ARGS__)

/*
 * The plan's phase is one of the static PHASE_ strings, never a pointer into
 * the release as read: act() replaces that object with every write before it
 * logs the phase. NULL for a string that is no phase.
 */
static const char *phase_static(const char *phase)
{
    static const char *const phases[] = {PHASE_PENDING,   PHASE_GATING,    PHASE_ROLLING_OUT,  PHASE_VERIFYING,
                                         PHASE_OBSERVING, PHASE_SUCCEEDED, PHASE_ROLLING_BACK, PHASE_ROLLED_BACK,
                                         PHASE_FAILED,    PHASE_SUSPENDED};
    for (size_t i = 0; phase && i < sizeof(phases) / sizeof(phases[0]); i++)
        if (strcmp(phase, phases[i]) == 0)
            return phases[i];
    return NULL;
}

static int set_phase(release_ctx *c, const char *phase)
{
    c->plan->phase = phase_static(phase);
    return json_set_str(c->st, "phase", phase);
}

long long release_spec_int(const release_ctx *c, long long def, const char *section, const char *key)
{
    return json_int(def, c->spec, section, key, NULL);
}

const char *release_old_str(const release_ctx *c, const char *key)
{
    return c->old ? json_str(c->old, key, NULL) : NULL;
}

static bool old_time(const release_ctx *c, time_t *out, const char *k1, const char *k2)
{
    const char *s = c->old ? (k2 ? json_str(c->old, k1, k2, NULL) : json_str(c->old, k1, NULL)) : NULL;
    return s && *s && timefmt_parse(out, s) == 0;
}

static bool trigger_listed(const release_ctx *c, const char *trigger)
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

/* ---- phases -------------------------------------------------------------- */

static int finish_failed(release_ctx *c, const char *reason, const char *trigger, const char *message)
{
    int err;
    c->why = message;
    if ((err = set_phase(c, PHASE_FAILED)) < 0 ||
        (err = conditions_mark_stalled(NULL, c->st, reason, message, c->gen, c->obs->now)) < 0 ||
        (err = release_history_record(c, PHASE_FAILED, trigger)) < 0)
        return err;
    return add_event(c, "Warning", "ReleaseFailed", "%s; receipt %s", message,
                     json_str(c->plan->receipt, "auditRef", NULL));
}

/* The image a rollback to target patches the container to: status.rollbackImage when it names target. */
static void rollback_image(const release_ctx *c, const char *target, char image[512])
{
    const char *ri = json_str(c->st, "rollbackImage", NULL);
    const char *d = release_digest_of(ri);
    if (ri && d && strcmp(d, target) == 0)
        snprintf(image, 512, "%s", ri);
    else
        snprintf(image, 512, "%s@%s", c->repository, target);
}

/* A Manual rollback without its reason or approver still happens; a Warning says what to record. */
static int manual_undocumented(release_ctx *c, const char *reason, const char *approver)
{
    if (*reason && *approver)
        return 0;
    return add_event(c, "Warning", "BreakGlassUndocumented",
                     "the manual rollback was requested without %s%s%s; it goes ahead, but record why in "
                     "the " RELEASE_ROLLBACK_REASON_ANNOTATION
                     " annotation and who approved it in the " RELEASE_ROLLBACK_APPROVER_ANNOTATION
                     " annotation, set together with " RELEASE_ROLLBACK_ANNOTATION ": \"true\"",
                     *reason ? "" : RELEASE_ROLLBACK_REASON_ANNOTATION, !*reason && !*approver ? " and " : "",
                     *approver ? "" : RELEASE_ROLLBACK_APPROVER_ANNOTATION);
}

static int fire_trigger(release_ctx *c, const char *trigger, const char *why)
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
        release_manual_record(c, reason, approver);
        if ((err = manual_undocumented(c, reason, approver)) < 0)
            return err;
    }
    if (!c->rolled_back && (!trigger_listed(c, trigger) || (!automatic && !manual))) {
        snprintf(msg, sizeof(msg),
                 "%s: %s; automatic rollback %s, so the Deployment is left as it is: "
                 "roll back by hand or revert spec.image.digest in Git",
                 trigger, why, automatic ? "does not cover this trigger" : "is off");
        return finish_failed(c, trigger, trigger, msg);
    }
    if (!*target || strcmp(target, c->digest) == 0) {
        snprintf(msg, sizeof(msg),
                 "%s: %s; there is no rollback target other than the failing digest, so nothing was rolled back",
                 trigger, why);
        return finish_failed(c, "RollbackFailed", trigger, msg);
    }
    cJSON *lr = cJSON_CreateObject();
    if (!lr || release_time_set(lr, "time", c->obs->now) < 0 || release_str_set(lr, "trigger", trigger) < 0 ||
        release_str_set(lr, "fromDigest", c->digest) < 0 || release_str_set(lr, "toDigest", target) < 0 ||
        release_str_set(lr, "message", why) < 0 || (*reason && release_str_set(lr, "reason", reason) < 0) ||
        (*approver && release_str_set(lr, "approver", approver) < 0)) {
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
        (err = release_cond_set(c, COND_ROLLED_BACK, COND_FALSE, "RollingBack", msg)) < 0 ||
        (err = add_event(c, "Warning", "RollbackTriggered", "%s", msg)) < 0)
        return err;
    if (c->rolled_back)
        return 0; /* the patch went through before: the status write is what is left */
    c->plan->deployment_patch = release_patch_body(c, image, RELEASE_PATCH_ROLLBACK);
    return c->plan->deployment_patch ? 0 : MB_ENOMEM;
}

static bool trigger_known(const char *trigger)
{
    if (!trigger)
        return false;
    for (size_t i = 0; i < sizeof(all_triggers) / sizeof(*all_triggers); i++)
        if (strcmp(all_triggers[i], trigger) == 0)
            return true;
    return strcmp(trigger, "Manual") == 0;
}

/*
 * The rollback of this release is on the Deployment but not in the status:
 * its patch went through and the status write after it did not (the
 * operator stopped in between). The Deployment's annotations are the record:
 * rollback-for is this releaseID, rolled-back-from this release's image, and
 * the container no longer runs that image. Then it is recorded as it
 * happened (lastRollback, RollingBack) and never rolled forward again:
 * true, with *fired set, when that is what this decision does.
 */
static int rollback_on_deployment(release_ctx *c, bool *fired)
{
    const char *rid = release_deployment_annotation(c, RELEASE_ROLLBACK_FOR_ANNOTATION);
    const char *from = release_deployment_annotation(c, RELEASE_ROLLED_BACK_FROM_ANNOTATION);
    const char *trigger = release_deployment_annotation(c, RELEASE_ROLLBACK_TRIGGER_ANNOTATION);
    const char *running = release_deployment_image(c);
    char why[1200];

    *fired = false;
    if (!rid || !from || strcmp(rid, c->rid) != 0 || strcmp(from, c->image) != 0 ||
        (running && strcmp(running, c->image) == 0))
        return 0;
    *fired = true;
    if (!trigger_known(trigger)) {
        snprintf(why, sizeof(why),
                 "Deployment %s/%s was rolled back from %s (its " RELEASE_ROLLED_BACK_FROM_ANNOTATION
                 " annotation), but its " RELEASE_ROLLBACK_TRIGGER_ANNOTATION
                 " annotation \"%s\" names no trigger, so the rollback cannot be recorded; the operator no longer "
                 "touches the Deployment: look at it and revert spec.image.digest in Git",
                 c->ns, c->deployment, c->image, trigger ? trigger : "");
        return finish_failed(c, "RollbackFailed", "", why);
    }
    snprintf(why, sizeof(why),
             "Deployment %s/%s was rolled back from %s after %s by a patch whose status write did not follow (the "
             "operator stopped in between); recorded from the Deployment's annotations",
             c->ns, c->deployment, c->image, trigger);
    c->rolled_back = true;
    return fire_trigger(c, trigger, why);
}

/* Triggers that can fire while a new version runs: Manual, CrashLoop, ProgressDeadline. */
static int watch_triggers(release_ctx *c, bool deadline, bool *fired)
{
    int err;
    char why[512];
    long remaining = 0;
    time_t started = 0;
    const char *manual = json_str(c->obs->release, "metadata", "annotations", RELEASE_ROLLBACK_ANNOTATION, NULL);

    if ((err = rollback_on_deployment(c, fired)) < 0 || *fired)
        return err;
    *fired = true;
    if (manual && strcmp(manual, "true") == 0)
        return fire_trigger(c, "Manual", "the governance.kfm.dev/rollback annotation asks for a rollback");
    if (release_crashloop(c, c->image, why, sizeof(why)))
        return fire_trigger(c, "CrashLoop", why);
    if (deadline) {
        /* no start recorded (an older status, a hand edit): it starts now, recorded, never without a deadline */
        if (!old_time(c, &started, "rolloutStartedAt", NULL) || started <= 0) {
            started = c->obs->now;
            if ((err = release_time_set(c->st, "rolloutStartedAt", started)) < 0)
                return err;
        }
        if (release_progress_deadline(c, started, why, sizeof(why), &remaining))
            return fire_trigger(c, "ProgressDeadline", why);
        if (remaining > 0 && (c->plan->requeue_ms == 0 || remaining < c->plan->requeue_ms))
            c->plan->requeue_ms = remaining;
    }
    *fired = false;
    return 0;
}

/* spec.rollout.recheckSeconds (the CRD defaults it to 15 and refuses less than 1). */
static long long recheck_seconds(const release_ctx *c)
{
    long long s = release_spec_int(c, 15, "rollout", "recheckSeconds");
    return s < 1 ? 1 : s;
}

static int ask_checks(release_ctx *c)
{
    c->plan->run_checks = true;
    memcpy(c->plan->checks_release_id, c->rid, sizeof(c->rid));
    snprintf(c->plan->checks_digest, sizeof(c->plan->checks_digest), "%s", c->digest ? c->digest : "");
    return 0;
}

/*
 * The run in hand is for this release and fresh: it started no earlier than
 * the last judged run finished (last_finished, when seen is true); an older
 * one (a stale result) is not judged.
 */
static bool run_fresh(const release_ctx *c, const release_checks *rc, bool seen, time_t last_finished)
{
    if (!rc->ran || !rc->release_id || strcmp(rc->release_id, c->rid) != 0)
        return false;
    return !seen || rc->started_at >= last_finished;
}

/* status.verification.observingSince: the window's start, kept across the runs that replace the rest. */
static int observing_since_set(release_ctx *c, time_t since)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(c->st, "verification");
    int err;
    if (!cJSON_IsObject(v) && (err = json_set_item(c->st, "verification", v = cJSON_CreateObject())) < 0)
        return err;
    return release_time_set(v, "observingSince", since);
}

/* A check run into status.verification, judged: *failed is its first failed check, NULL when all passed. */
static int run_record(release_ctx *c, const release_checks *rc, const cJSON **failed)
{
    int err;
    if ((err = release_verification_write(c, rc)) < 0)
        return err;
    *failed = release_checks_judge(c, rc, &err);
    return err;
}

/* A failed check, in Verifying or Observing: Verified=False with its trigger, which fires. */
static int check_failed(release_ctx *c, const cJSON *failed)
{
    int err;
    char why[600];
    const char *trigger = json_str(failed, "trigger", NULL);
    snprintf(why, sizeof(why), "check %s failed: %s", json_str(failed, "name", NULL),
             json_str(failed, "message", NULL) ? json_str(failed, "message", NULL) : "no message");
    if ((err = release_cond_set(c, COND_VERIFIED, COND_FALSE, trigger ? trigger : "SmokeFailure", why)) < 0)
        return err;
    return fire_trigger(c, trigger ? trigger : "SmokeFailure", why);
}

/*
 * Another field manager set the image back while this release owns the
 * Deployment (a GitOps tool re-applying the image it holds in Git, a hand
 * edit): patching again would fight it, and each would roll the Deployment
 * over and over. So the release stops where it is, Stalled=True with reason
 * ConflictingManager naming that manager, and a Warning Event says so once per
 * generation. *found false: the image is want, or membrane set it last.
 */
static int conflicting_manager(release_ctx *c, const char *want, bool *found)
{
    char manager[128], msg[2048];
    const char *running = release_deployment_image(c);
    int err;
    *found = false;
    if (!c->obs->deployment || !running || strcmp(running, want) == 0 ||
        !release_image_manager(manager, sizeof(manager), c))
        return 0;
    *found = true;
    snprintf(msg, sizeof(msg),
             "field manager \"%s\" set the image of container %s of Deployment %s/%s to %s while this release owns it "
             "(it rolled %s); membrane does not patch it again, which would fight %s and flap the Deployment: make %s "
             "leave that image to membrane (Flux: the annotation kustomize.toolkit.fluxcd.io/ssa: IfNotPresent on the "
             "Deployment; Argo CD: ignoreDifferences with RespectIgnoreDifferences=true; see docs/install.md), then "
             "apply a new generation of the release",
             manager, c->container, c->ns, c->deployment, running, want, manager, manager);
    const cJSON *was = conditions_get(c->old, COND_STALLED);
    bool told = was && json_str(was, "reason", NULL) &&
                strcmp(json_str(was, "reason", NULL), "ConflictingManager") == 0 &&
                json_int(-1, was, "observedGeneration", NULL) == c->gen;
    if ((err = conditions_mark_stalled(NULL, c->st, "ConflictingManager", msg, c->gen, c->obs->now)) < 0)
        return err;
    return told ? 0 : add_event(c, "Warning", "ConflictingManager", "%s", msg);
}

static int enter_verifying(release_ctx *c)
{
    int err;
    char msg[600];
    snprintf(msg, sizeof(msg), "%s runs %s on every replica; running the verification checks", c->deployment,
             c->digest);
    if ((err = set_phase(c, PHASE_VERIFYING)) < 0 ||
        (err = release_cond_set(c, COND_ROLLED_OUT, COND_TRUE, "RolloutComplete", msg)) < 0 ||
        (err = release_cond_set(c, COND_VERIFIED, COND_UNKNOWN, "Verifying", "the verification checks are running")) <
            0 ||
        (err = conditions_mark_reconciling(NULL, c->st, "Verifying", msg, c->gen, c->obs->now)) < 0)
        return err;
    return ask_checks(c);
}

static int phase_verifying(release_ctx *c)
{
    int err;
    bool fired;
    const release_checks *rc = &c->obs->checks;
    if ((err = conflicting_manager(c, c->image, &fired)) < 0 || fired)
        return err;
    if ((err = watch_triggers(c, false, &fired)) < 0 || fired)
        return err;
    if (!rc->ran || !rc->release_id || strcmp(rc->release_id, c->rid) != 0)
        return ask_checks(c);
    const cJSON *failed = NULL;
    if ((err = run_record(c, rc, &failed)) < 0)
        return err;
    if (failed)
        return check_failed(c, failed);
    long long obs_secs = release_spec_int(c, 60, "rollout", "observationSeconds");
    char msg[300];
    if (obs_secs > 0)
        snprintf(msg, sizeof(msg),
                 "every check passed; observing for %llds, the checks running again every %llds "
                 "and at the end, before the release succeeds",
                 obs_secs, recheck_seconds(c));
    else
        snprintf(msg, sizeof(msg), "every check passed; observationSeconds is 0, so this run was the last");
    if ((err = release_cond_set(c, COND_VERIFIED, COND_TRUE, "ChecksPassed", "every verification check passed")) < 0 ||
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
static int phase_observing(release_ctx *c)
{
    int err;
    bool fired;
    time_t since, started = 0, finished = 0;
    long long obs_secs = release_spec_int(c, 60, "rollout", "observationSeconds");
    const release_checks *rc = &c->obs->checks;
    char msg[600];

    if ((err = conflicting_manager(c, c->image, &fired)) < 0 || fired)
        return err;
    if ((err = watch_triggers(c, false, &fired)) < 0 || fired)
        return err;
    if (obs_secs > 0) {
        bool seen = old_time(c, &finished, "verification", "finishedAt") &&
                    old_time(c, &started, "verification", "startedAt");
        /* the anchor; a status without one (an earlier version's) counts from its Verifying run, as that did */
        if (!old_time(c, &since, "verification", "observingSince"))
            since = seen ? finished : c->obs->now;
        if (run_fresh(c, rc, seen, finished)) {
            const cJSON *failed = NULL;
            if ((err = run_record(c, rc, &failed)) < 0)
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
        (err = release_history_record(c, PHASE_SUCCEEDED, "")) < 0)
        return err;
    return add_event(c, "Normal", "ReleaseSucceeded", "%s; receipt %s", msg,
                     json_str(c->plan->receipt, "auditRef", NULL));
}

static int phase_rolling_out(release_ctx *c)
{
    int err;
    bool fired;
    const char *running = release_deployment_image(c);
    if (!c->obs->deployment)
        return finish_failed(c, "TargetNotFound", "",
                             "the Deployment disappeared during the rollout; recreate it and revert or re-apply the "
                             "release");
    /* the rollout patch landed (its release-id is on the pod template), then someone set the image */
    const char *landed = json_str(c->obs->deployment, "spec", "template", "metadata", "annotations",
                                  RELEASE_ID_ANNOTATION, NULL);
    if (landed && strcmp(landed, c->rid) == 0 && ((err = conflicting_manager(c, c->image, &fired)) < 0 || fired))
        return err;
    if ((err = watch_triggers(c, true, &fired)) < 0 || fired)
        return err;
    if (!running || strcmp(running, c->image) != 0) {
        /* the status was written but the patch was not (or was undone): send it again */
        c->plan->deployment_patch = release_patch_body(c, c->image, RELEASE_PATCH_ROLLOUT);
        return c->plan->deployment_patch ? 0 : MB_ENOMEM;
    }
    char why[256];
    if (release_no_replicas(c, why, sizeof(why))) {
        /* not complete, and said so; the progress deadline still runs */
        if ((err = release_cond_set(c, COND_ROLLED_OUT, COND_FALSE, "NoReplicas", why)) < 0 ||
            (err = conditions_mark_reconciling(NULL, c->st, "NoReplicas", why, c->gen, c->obs->now)) < 0)
            return err;
        return 0;
    }
    if (!release_rollout_complete(c, c->image))
        return 0;
    if ((err = add_event(c, "Normal", "RolloutComplete", "Deployment %s/%s runs %s on every replica", c->ns,
                         c->deployment, c->digest)) < 0)
        return err;
    return enter_verifying(c);
}

static int phase_rolling_back(release_ctx *c)
{
    int err;
    const char *target = json_str(c->st, "lastRollback", "toDigest", NULL);
    const char *trigger = json_str(c->st, "lastRollback", "trigger", NULL);
    char image[512], why[512];
    time_t since = 0;
    long remaining = 0;

    if (!target || !*target)
        return finish_failed(c, "RollbackFailed", trigger,
                             "status.lastRollback has no target digest; the rollback cannot go on");
    rollback_image(c, target, image);
    const char *running = release_deployment_image(c);
    if (!c->obs->deployment)
        return finish_failed(c, "RollbackFailed", trigger, "the Deployment disappeared during the rollback");
    bool fought;
    if ((err = conflicting_manager(c, image, &fought)) < 0 || fought)
        return err;
    if (!running || strcmp(running, image) != 0) {
        c->plan->deployment_patch = release_patch_body(c, image, RELEASE_PATCH_ROLLBACK);
        return c->plan->deployment_patch ? 0 : MB_ENOMEM;
    }
    if (release_crashloop(c, image, why, sizeof(why))) {
        char msg[700];
        snprintf(msg, sizeof(msg),
                 "the rollback target %s does not run either: %s; the operator no longer touches the Deployment",
                 target, why);
        if ((err = add_event(c, "Warning", "RollbackFailed", "%s", msg)) < 0)
            return err;
        return finish_failed(c, "RollbackFailed", trigger, msg);
    }
    /* no time recorded for the rollback: it starts now, recorded, never without a deadline */
    if (!old_time(c, &since, "lastRollback", "time") || since <= 0) {
        since = c->obs->now;
        if ((err = release_time_set(cJSON_GetObjectItemCaseSensitive(c->st, "lastRollback"), "time", since)) < 0)
            return err;
    }
    if (release_progress_deadline(c, since, why, sizeof(why), &remaining)) {
        char msg[700];
        snprintf(msg, sizeof(msg), "the rollback to %s did not complete: %s", target, why);
        if ((err = add_event(c, "Warning", "RollbackFailed", "%s", msg)) < 0)
            return err;
        return finish_failed(c, "RollbackFailed", trigger, msg);
    }
    c->plan->requeue_ms = remaining;
    if (!release_rollout_complete(c, image))
        return 0;
    /* re-run the same checks against the rolled-back version */
    const release_checks *rc = &c->obs->checks;
    if (!rc->ran || !rc->release_id || strcmp(rc->release_id, c->rid) != 0) {
        err = ask_checks(c);
        /* the rolled-back version is judged as itself: the slo check's {{digest}} is the target */
        snprintf(c->plan->checks_digest, sizeof(c->plan->checks_digest), "%s", target);
        return err;
    }
    const cJSON *failed = NULL;
    if ((err = run_record(c, rc, &failed)) < 0)
        return err;
    char msg[800];
    if (failed) {
        snprintf(msg, sizeof(msg),
                 "rolled back to %s, but check %s still fails: %s; the operator no longer touches the Deployment",
                 target, json_str(failed, "name", NULL),
                 json_str(failed, "message", NULL) ? json_str(failed, "message", NULL) : "");
        if ((err = add_event(c, "Warning", "RollbackFailed", "%s", msg)) < 0)
            return err;
        return finish_failed(c, "RollbackVerificationFailed", trigger, msg);
    }
    snprintf(msg, sizeof(msg),
             "rolled back from %s to %s after %s; the rolled-back version passes every check; revert spec.image.digest "
             "in Git or fix the release",
             c->digest, target, trigger ? trigger : "a trigger");
    c->why = json_str(c->st, "lastRollback", "message", NULL);
    if ((err = set_phase(c, PHASE_ROLLED_BACK)) < 0 ||
        (err = conditions_mark_stalled(NULL, c->st, "RolledBack", msg, c->gen, c->obs->now)) < 0 ||
        (err = release_cond_set(c, COND_ROLLED_BACK, COND_TRUE, "RolledBack", msg)) < 0 ||
        (err = release_history_record(c, PHASE_ROLLED_BACK, trigger)) < 0)
        return err;
    return add_event(c, "Warning", "RolledBack", "%s; receipt %s", msg, json_str(c->plan->receipt, "auditRef", NULL));
}

/* A new generation (or a resumed one): the gates, then the start of the release. */
static int phase_gating(release_ctx *c)
{
    release_gate_block b = {0};
    char target[72], target_image[512];
    int err;
    const char *pbname = json_str(c->spec, "policyBundleRef", "name", NULL);
    release_gate_record rec = {0};

    if (!release_gates_check(c, &b, target, target_image, &rec)) {
        if (b.oom)
            return mb_error_set(MB_ENOMEM, "out of memory evaluating the gates");
        bool was_blocked = false;
        const cJSON *gp = conditions_get(c->old, COND_GATES_PASSED);
        const char *old_reason = gp ? json_str(gp, "reason", NULL) : NULL;
        was_blocked = old_reason && strcmp(old_reason, b.reason) == 0 &&
                      json_int(-1, gp, "observedGeneration", NULL) == c->gen;
        if ((err = set_phase(c, PHASE_GATING)) < 0 ||
            (err = release_cond_set(c, COND_GATES_PASSED, COND_FALSE, b.reason, b.message)) < 0)
            return err;
        if (b.transient) {
            err = conditions_mark_reconciling(NULL, c->st, b.reason, b.message, c->gen, c->obs->now);
            c->plan->requeue_ms = GATE_RECHECK_MS;
        } else {
            err = conditions_mark_stalled(NULL, c->st, b.reason, b.message, c->gen, c->obs->now);
            c->plan->requeue_ms = b.recheck_ms;
        }
        if (err < 0)
            return err;
        return was_blocked ? 0 : add_event(c, "Warning", "GateBlocked", "%s", b.message);
    }

    /* the order gate held: the upstream receipts it passed on, and the image gate's verified signatures, sealed in
     * this release's receipt */
    err = rec.promoted ? json_set_item(c->st, "promotedFrom", rec.promoted)
                       : (cJSON_DeleteItemFromObjectCaseSensitive(c->st, "promotedFrom"), 0);
    rec.promoted = NULL;
    if (err == 0) {
        err = rec.signatures ? json_set_item(c->st, "imageSignatures", rec.signatures)
                             : (cJSON_DeleteItemFromObjectCaseSensitive(c->st, "imageSignatures"), 0);
        rec.signatures = NULL;
    }
    cJSON_Delete(rec.signatures);
    if (err < 0)
        return err;
    /* The release and its target, in the status write that follows the patch recording the target. */
    const char *running = release_deployment_image(c);
    bool already = running && strcmp(running, c->image) == 0;
    if ((err = release_str_set(c->st, "releaseID", c->rid)) < 0 ||
        (err = release_str_set(c->st, "rollbackTarget", target)) < 0 ||
        (err = release_str_set(c->st, "rollbackImage", target_image)) < 0 ||

        (err = release_time_set(c->st, "rolloutStartedAt", c->obs->now)) < 0 ||
        (err = release_cond_set(c, COND_GATES_PASSED, COND_TRUE, "GatesPassed", "every gate passed")) < 0)
        return err;
    /* the gate held: the verified digest is the pinned one */
    const char *bd = pbname ? json_str(c->obs->policy_bundle, "status", "verifiedDigest", NULL) : NULL;
    if (bd && *bd)
        err = release_str_set(c->st, "policyBundleDigest", bd);
    else
        cJSON_DeleteItemFromObjectCaseSensitive(c->st, "policyBundleDigest");
    if (err < 0)
        return err;
    cJSON_DeleteItemFromObjectCaseSensitive(c->st, "verification");
    conditions_remove(c->st, COND_VERIFIED);
    conditions_remove(c->st, COND_ROLLED_BACK);
    conditions_remove(c->st, COND_MEMBRANE_INTACT);
    if ((err = add_event(c, "Normal", "GatesPassed", "every gate passed for %s; rollback target %s", c->digest,
                         target)) < 0)
        return err;
    if (cJSON_IsTrue(json_get(c->spec, "image", "verify", "insecureRegistry", NULL)) &&
        (err = add_event(c, "Warning", "InsecureRegistry",
                         "spec.image.verify.insecureRegistry is true: the signatures of %s and %s were read over plain "
                         "http, which anyone on the path can change; use it for local tests only",
                         c->digest, target)) < 0)
        return err;

    if (already) {
        /* GitOps revert (or a re-applied spec): verify what runs, no rollout. */
        const char *owner = json_str(c->obs->deployment, "metadata", "annotations", RELEASE_OWNER_ANNOTATION, NULL);
        const char *for_rid = release_deployment_annotation(c, RELEASE_ROLLBACK_FOR_ANNOTATION);
        /* unless this release's own patch rolled it and its status write (and Events) did not follow */
        if (for_rid && strcmp(for_rid, c->rid) == 0 &&
            (err = add_event(c, "Normal", "RolloutStarted",
                             "rolling Deployment %s/%s container %s to %s (the patch went through before the status "
                             "write that records it)",
                             c->ns, c->deployment, c->container, c->image)) < 0)
            return err;
        if (!owner || strcmp(owner, c->owner) != 0) {
            c->plan->deployment_patch = release_patch_body(c, NULL, RELEASE_PATCH_OWNER);
            if (!c->plan->deployment_patch)
                return MB_ENOMEM;
        }
        if (release_rollout_complete(c, c->image))
            return enter_verifying(c);
    } else {
        c->plan->deployment_patch = release_patch_body(c, c->image, RELEASE_PATCH_ROLLOUT);
        if (!c->plan->deployment_patch)
            return MB_ENOMEM;
        if ((err = add_event(c, "Normal", "RolloutStarted", "rolling Deployment %s/%s container %s to %s", c->ns,
                             c->deployment, c->container, c->image)) < 0)
            return err;
    }
    char msg[600];
    snprintf(msg, sizeof(msg), "rolling Deployment %s/%s to %s", c->ns, c->deployment, c->digest);
    if ((err = set_phase(c, PHASE_ROLLING_OUT)) < 0 ||
        (err = release_cond_set(c, COND_ROLLED_OUT, COND_FALSE, "RollingOut", msg)) < 0 ||
        (err = conditions_mark_reconciling(NULL, c->st, "RollingOut", msg, c->gen, c->obs->now)) < 0)
        return err;
    long remaining = release_spec_int(c, 600, "rollout", "progressDeadlineSeconds") * 1000L + 1000L;
    c->plan->requeue_ms = remaining;
    return 0;
}

static int finalize(release_ctx *c)
{
    const char *owner = json_str(c->obs->deployment, "metadata", "annotations", RELEASE_OWNER_ANNOTATION, NULL);
    if (owner && strcmp(owner, c->owner) == 0) {
        cJSON *p = cJSON_CreateObject();
        cJSON *ann = json_ensure_object(p, "metadata", "annotations", NULL);
        const char *rv = json_str(c->obs->deployment, "metadata", "resourceVersion", NULL);
        /* the rollback record is the release's, and goes with it */
        if (!ann || !cJSON_AddNullToObject(ann, RELEASE_OWNER_ANNOTATION) ||
            !cJSON_AddNullToObject(ann, RELEASE_ROLLBACK_IMAGE_ANNOTATION) ||
            !cJSON_AddNullToObject(ann, RELEASE_ROLLBACK_FOR_ANNOTATION) ||
            !cJSON_AddNullToObject(ann, RELEASE_ROLLED_BACK_FROM_ANNOTATION) ||
            !cJSON_AddNullToObject(ann, RELEASE_ROLLBACK_TRIGGER_ANNOTATION) ||
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
    c->plan->phase = phase_static(release_old_str(c, "phase")) ? phase_static(release_old_str(c, "phase"))
                                                               : PHASE_PENDING;
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
static const char *resume_phase(const release_ctx *c)
{
    const char *phase = release_old_str(c, "phase");
    const char *rid = release_old_str(c, "releaseID");
    if (!phase || !rid || strcmp(rid, c->rid) != 0 || strcmp(phase, PHASE_SUSPENDED) == 0 ||
        strcmp(phase, PHASE_PENDING) == 0)
        return PHASE_GATING;
    return phase;
}

int release_decide(release_plan *out, const release_observed *obs)
{
    release_ctx c = {0};
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
    if ((err = release_num_set(c.st, "observedGeneration", (double)c.gen)) < 0)
        goto done;
    if (obs->deployment) {
        char running[72] = "";
        release_container_digest(running, json_get(obs->deployment, "spec", "template", "spec", NULL), c.container);
        if ((err = release_str_set(c.st, "currentDigest", running)) < 0)
            goto done;
    }

    if (json_bool(false, c.spec, "suspend", NULL)) {
        if ((err = set_phase(&c, PHASE_SUSPENDED)) < 0)
            goto done;
        conditions_remove(c.st, COND_RECONCILING);
        conditions_remove(c.st, COND_STALLED);
        err = release_cond_set(&c, COND_READY, COND_FALSE, "Suspended",
                               "spec.suspend is true: the operator does nothing until it is false");
        goto done;
    }

    phase = resume_phase(&c);
    if (terminal(phase)) {
        /* Final for this generation; a manual trigger still rolls a success back. */
        const char *manual = json_str(obs->release, "metadata", "annotations", RELEASE_ROLLBACK_ANNOTATION, NULL);
        if ((err = set_phase(&c, phase)) < 0)
            goto done;
        bool fought = false, fired = false;
        /* a success whose image another manager took back says so: Git and the Deployment disagree */
        if (strcmp(phase, PHASE_SUCCEEDED) == 0 && (err = conflicting_manager(&c, c.image, &fought)) < 0)
            goto done;
        if (fought)
            ;
        else if (strcmp(phase, PHASE_SUCCEEDED) == 0 && manual && strcmp(manual, "true") == 0) {
            if ((err = rollback_on_deployment(&c, &fired)) == 0 && !fired)
                err = fire_trigger(&c, "Manual", "the governance.kfm.dev/rollback annotation asks for a rollback");
        } else if (manual && strcmp(manual, "true") == 0) {
            out->clear_rollback_annotation = true;
            err =
                add_event(&c, "Warning", "RollbackIgnored",
                          "the governance.kfm.dev/rollback annotation was removed without effect: the release ended %s "
                          "and the operator does not touch the Deployment again for this generation; %s",
                          phase,
                          strcmp(phase, PHASE_ROLLED_BACK) == 0
                              ? "the Deployment already runs the rollback target"
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
        out->phase = phase_static(json_str(out->status ? out->status : c.old, "phase", NULL));
    return 0;
}

const char *release_plan_rollback_trigger(const release_plan *plan)
{
    for (size_t i = 0; plan && i < plan->n_events; i++)
        if (strcmp(plan->events[i].reason, "RollbackTriggered") == 0)
            return json_str(plan->status, "lastRollback", "trigger", NULL);
    return NULL;
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

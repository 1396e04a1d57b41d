/*
 * The building blocks of a GovernedAPIRelease's status: the setters and the
 * condition helper the phases write with, status.verification from a check
 * run (a requested check without a result is a failed one, "no result"), the
 * judgement of a run, and the history entry of a release that ended, sealed
 * by its receipt (audit/receipt.h) over what the decision was taken on.
 */
#include "release/decide_private.h"
#include "audit/receipt.h"
#include "runtime/conditions.h"
#include "util/error.h"
#include "util/json.h"
#include "util/timefmt.h"
#include "verify/runner.h"

#include <string.h>

int release_str_set(cJSON *o, const char *key, const char *v)
{
    return json_set_str(o, key, v ? v : "");
}

int release_time_set(cJSON *o, const char *key, time_t t)
{
    char buf[32];
    if (timefmt_format(buf, sizeof(buf), t) < 0)
        return mb_error_set(MB_EINVAL, "time out of range");
    return json_set_str(o, key, buf);
}

int release_num_set(cJSON *o, const char *key, double v)
{
    return json_set_item(o, key, cJSON_CreateNumber(v));
}

int release_cond_set(release_ctx *c, const char *type, const char *status, const char *reason, const char *message)
{
    condition cd = {type, status, reason, message, c->gen};
    return conditions_set(NULL, c->st, &cd, c->obs->now);
}

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
void release_manual_record(const release_ctx *c, char reason[RELEASE_ROLLBACK_REASON_MAX + 1],
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
static int seal_inputs(release_ctx *c, cJSON *e)
{
    const char *ri = json_str(c->st, "rollbackImage", NULL);
    const cJSON *results = json_get(c->st, "verification", "results", NULL);
    char digest[AUDIT_REF_SIZE], why[RECEIPT_MESSAGE_MAX + 1];
    cJSON *kept = NULL, *r;
    int err = 0;

    if (release_str_set(e, "image", c->image) < 0 || (ri && *ri && release_str_set(e, "rollbackImage", ri) < 0))
        return mb_error_set(MB_ENOMEM, "out of memory");
    if (c->why && *c->why) {
        utf8_cut(why, c->why, RECEIPT_MESSAGE_MAX);
        if (release_str_set(e, "message", why) < 0)
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
    return release_str_set(e, AUDIT_RESULTS_DIGEST_MEMBER, digest);
}

int release_history_record(release_ctx *c, const char *outcome, const char *trigger)
{
    /* Only fields the CRD declares, and no empty optional ones: the apiserver prunes or rejects the rest. */
    cJSON *e = cJSON_CreateObject();
    const char *bd = json_str(c->st, "policyBundleDigest", NULL);
    const char *started = json_str(c->st, "rolloutStartedAt", NULL);
    const char *prev = json_str(c->st, "rollbackTarget", NULL);
    int err = MB_ENOMEM;
    if (!e || release_str_set(e, "releaseID", c->rid) < 0 || release_num_set(e, "generation", (double)c->gen) < 0 ||
        release_str_set(e, "digest", c->digest) < 0 || release_str_set(e, "outcome", outcome) < 0 ||
        release_str_set(e, "environment", json_str(c->spec, "environment", NULL)) < 0 ||
        release_str_set(e, "changeRecord", json_str(c->spec, "changeRecord", NULL)) < 0 ||
        (prev && *prev && release_str_set(e, "previousDigest", prev) < 0) ||
        (trigger && *trigger && release_str_set(e, "trigger", trigger) < 0) ||
        (bd && *bd && release_str_set(e, "policyBundleDigest", bd) < 0) ||
        (started && *started && release_str_set(e, "startedAt", started) < 0) ||
        release_time_set(e, "finishedAt", c->obs->now) < 0) {
        cJSON_Delete(e);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    if (trigger && strcmp(trigger, "Manual") == 0) {
        char reason[RELEASE_ROLLBACK_REASON_MAX + 1], approver[RELEASE_ROLLBACK_APPROVER_MAX + 1];
        release_manual_record(c, reason, approver);
        if ((*reason && release_str_set(e, "reason", reason) < 0) ||
            (*approver && release_str_set(e, "approver", approver) < 0)) {
            cJSON_Delete(e);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
    }
    /* the upstream receipts the order gate passed on (receipts chain across environments), and the signatures the
     * image gate verified */
    static const char *const sealed[] = {"promotedFrom", "imageSignatures"};
    for (size_t i = 0; i < sizeof(sealed) / sizeof(sealed[0]); i++) {
        const cJSON *v = json_get(c->st, sealed[i], NULL);
        if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0 &&
            json_set_item(e, sealed[i], cJSON_Duplicate(v, true)) < 0) {
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
static int add_missing_results(cJSON *out, const release_ctx *c, const cJSON *results)
{
    const char *asked[VERIFY_CHECKS_MAX];
    size_t n = verify_checks_requested(asked, VERIFY_CHECKS_MAX,
                                       json_get(c->obs->release, "spec", "verification", "checks", NULL),
                                       json_get(c->obs->release, "spec", "verification", "slo", NULL),
                                       json_get(c->obs->release, "spec", "membrane", NULL));
    for (size_t i = 0; i < n; i++) {
        if (has_result(results, asked[i]) || has_result(out, asked[i]))
            continue;
        cJSON *r = cJSON_CreateObject();
        if (!r || release_str_set(r, "name", asked[i]) < 0 || !cJSON_AddBoolToObject(r, "passed", false) ||
            release_str_set(r, "trigger", verify_check_trigger(asked[i])) < 0 ||
            release_str_set(r, "message", "no result") < 0 || !cJSON_AddItemToArray(out, r)) {
            cJSON_Delete(r);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
    }
    return 0;
}

int release_verification_write(release_ctx *c, const release_checks *rc)
{
    cJSON *v = cJSON_CreateObject();
    cJSON *results = rc->results ? cJSON_Duplicate(rc->results, true) : cJSON_CreateArray();
    if (!v || !results || release_time_set(v, "startedAt", rc->started_at) < 0 ||
        release_time_set(v, "finishedAt", rc->finished_at) < 0 || add_missing_results(results, c, rc->results) < 0) {
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
const cJSON *release_checks_judge(release_ctx *c, const release_checks *rc, int *err)
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
            *err = release_cond_set(c, COND_MEMBRANE_INTACT, COND_FALSE, "MembraneBreach",
                                    json_str(first_membrane, "message", NULL));
        else
            *err = release_cond_set(c, COND_MEMBRANE_INTACT, COND_TRUE, "MembraneIntact",
                                    "clients cannot reach the stores; every path goes through the governed API");
    }
    return first;
}

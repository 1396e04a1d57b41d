/*
 * PolicyBundle: the pure decision (policy/decide.h). One pass from the
 * observed bundle, ConfigMap and work to the status and the next action.
 */
#include "policy/decide.h"
#include "util/text.h"
#include "audit/receipt.h"
#include "runtime/conditions.h"
#include "util/error.h"
#include "util/json.h"
#include "util/timefmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MAX 1024

/* Conditions of the kind, besides Ready, Reconciling and Stalled. */
#define COND_DIGEST "DigestVerified"
#define COND_SIGNATURE "SignatureVerified"
#define COND_STRUCTURE "StructureValid"
#define COND_TESTS "DecisionTestsPassed"
#define COND_PUBLISHED "Published"

typedef struct {
    const policy_observed *obs;
    policy_plan *plan;
    cJSON *st;        /* the new status (owned until handed to the plan) */
    const cJSON *old; /* the status as read, or NULL */
    long long gen;
    const char *ns, *name, *url, *digest, *opa_url;
    const cJSON *cases;
    bool signing;
} ctx;

/* ---- helpers ------------------------------------------------------------- */

#define add_event(c, ...) event_plan((c)->plan->events, &(c)->plan->n_events, POLICY_MAX_EVENTS, __VA_ARGS__)

static int cond(ctx *c, const char *type, const char *status, const char *reason, const char *message)
{
    condition cd = {type, status, reason, message, c->gen};
    return conditions_set(NULL, c->st, &cd, c->obs->now);
}

static int set_phase(ctx *c, const char *phase)
{
    c->plan->phase = phase;
    return json_set_str(c->st, "phase", phase);
}

static bool same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

long policy_backoff_ms(unsigned attempts)
{
    long ms = POLICY_BACKOFF_BASE_MS;
    for (unsigned i = 1; i < attempts && ms < POLICY_BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms < POLICY_BACKOFF_MAX_MS ? ms : POLICY_BACKOFF_MAX_MS;
}

bool policy_configmap_name(char out[254], const cJSON *bundle)
{
    const char *n = json_str(bundle, "spec", "publish", "configMapName", NULL);
    int len = n && *n ? snprintf(out, 254, "%s", n)
                      : snprintf(out, 254, "%s-bundle", json_str(bundle, "metadata", "name", NULL) ?: "");
    return len > 0 && len < 254;
}

long long policy_max_bytes(const cJSON *bundle)
{
    long long v = json_int(0, bundle, "spec", "source", "maxBytes", NULL);
    return v > 0 ? v : POLICY_MAX_BYTES_DEFAULT;
}

bool policy_configmap_owned(const cJSON *configmap, const cJSON *bundle)
{
    const char *uid = json_str(bundle, "metadata", "uid", NULL);
    const cJSON *ref;
    if (!uid)
        return false;
    cJSON_ArrayForEach(ref, json_get(configmap, "metadata", "ownerReferences", NULL))
        if (same(json_str(ref, "uid", NULL), uid) && json_bool(false, ref, "controller", NULL))
            return true;
    return false;
}

/* The published ConfigMap holds the bundle of digest: its bytes' marker and data.digest both say so. */
static bool configmap_holds(const cJSON *cm, const char *digest)
{
    return same(json_str(cm, "binaryData", POLICY_CM_KEY, NULL), digest) &&
           same(json_str(cm, "data", "digest", NULL), digest);
}

/* ---- the status's parts ---------------------------------------------------- */

/* The verified facts go when the bytes they describe are not verified (any more). */
static void clear_verified(ctx *c)
{
    static const char *const facts[] = {"verifiedDigest", "revision", "roots", "regoModules", "sizeBytes", NULL};
    for (size_t i = 0; facts[i]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(c->st, facts[i]);
}

static int set_verified(ctx *c)
{
    const policy_verification *v = &c->obs->work.verify;
    int err;
    if ((err = json_set_str(c->st, "verifiedDigest", c->digest)) < 0 ||
        (err = json_set_str(c->st, "revision", v->revision ? v->revision : "")) < 0 ||
        (err = json_set_item(c->st, "roots", v->roots ? cJSON_Duplicate(v->roots, true) : cJSON_CreateArray())) < 0 ||
        (err = json_set_item(c->st, "regoModules", cJSON_CreateNumber((double)v->rego_modules))) < 0 ||
        (err = json_set_item(c->st, "sizeBytes", cJSON_CreateNumber((double)v->size_bytes))) < 0)
        return err;
    return 0;
}

/* The kind's five conditions from the work so far; failed: the terminal reason, if any. */
static int set_checks(ctx *c, const char *failed, const char *fmsg)
{
    const policy_work *w = &c->obs->work;
    const policy_verification *v = &w->verify;
    char msg[MSG_MAX];
    int err;
    bool done = w->fetch == POLICY_FETCH_DONE;
    bool verified = done && !v->reason;

    /* DigestVerified */
    if (same(failed, "DigestMismatch"))
        err = cond(c, COND_DIGEST, COND_FALSE, failed, fmsg);
    else if (done)
        err = cond(c, COND_DIGEST, COND_TRUE, "DigestVerified", "the fetched bytes hash to spec.source.digest");
    else if (w->fetch == POLICY_FETCH_TOO_BIG)
        err = cond(c, COND_DIGEST, COND_UNKNOWN, "TooLarge", fmsg);
    else
        err = cond(c, COND_DIGEST, COND_UNKNOWN, "Fetching", "the bundle has not been fetched yet");
    if (err < 0)
        return err;

    /* StructureValid: the gzip tar, its .manifest and files, and the required roots */
    if (same(failed, "InvalidBundle") || same(failed, "MissingRoot"))
        err = cond(c, COND_STRUCTURE, COND_FALSE, failed, fmsg);
    else if (done && v->structure_checked)
        err = cond(c, COND_STRUCTURE, COND_TRUE, "Valid", "the bundle is a gzip tar with a valid .manifest and files");
    else
        err = cond(c, COND_STRUCTURE, COND_UNKNOWN, "NotChecked", "the bundle's structure has not been checked yet");
    if (err < 0)
        return err;

    /* SignatureVerified */
    if (!c->signing)
        err = cond(c, COND_SIGNATURE, COND_TRUE, "NotRequired",
                   "spec.signing is not set, so the bundle's signatures are not checked");
    else if (same(failed, "SignatureInvalid"))
        err = cond(c, COND_SIGNATURE, COND_FALSE, failed, fmsg);
    else if (done && v->signature_checked)
        err = cond(c, COND_SIGNATURE, COND_TRUE, "Verified",
                   "the bundle's .signatures.json verifies with the key of spec.signing");
    else
        err = cond(c, COND_SIGNATURE, COND_UNKNOWN, "NotChecked", "the bundle's signatures have not been checked yet");
    if (err < 0)
        return err;

    /* DecisionTestsPassed */
    if (cJSON_GetArraySize(c->cases) == 0)
        err = cond(c, COND_TESTS, COND_TRUE, "NoTests", "spec.decisionTests has no cases");
    else if (same(failed, "DecisionTestFailed"))
        err = cond(c, COND_TESTS, COND_FALSE, failed, fmsg);
    else if (verified && w->tests == POLICY_TESTS_DONE) {
        snprintf(msg, sizeof(msg), "all %d decision tests passed against %s", cJSON_GetArraySize(c->cases), c->opa_url);
        err = cond(c, COND_TESTS, COND_TRUE, "Passed", msg);
    } else if (verified && w->tests == POLICY_TESTS_ERROR)
        err = cond(c, COND_TESTS, COND_UNKNOWN, "DecisionTestsUnavailable", w->tests_message);
    else
        err = cond(c, COND_TESTS, COND_UNKNOWN, "NotRun", "the decision tests have not run on these bytes yet");
    if (err < 0)
        return err;

    /* Published */
    if (same(failed, "ConfigMapNotOwned"))
        err = cond(c, COND_PUBLISHED, COND_FALSE, failed, fmsg);
    else if (verified && w->publish == POLICY_PUBLISH_DONE) {
        snprintf(msg, sizeof(msg), "ConfigMap %s holds bundle %s", c->plan->configmap, c->digest);
        err = cond(c, COND_PUBLISHED, COND_TRUE, "Published", msg);
    } else {
        snprintf(msg, sizeof(msg), "ConfigMap %s does not hold bundle %s yet", c->plan->configmap, c->digest);
        err = cond(c, COND_PUBLISHED, COND_FALSE, failed ? "NotPublished" : "Pending", msg);
    }
    return err;
}

/* Decision test results as the status and receipt show them (the caller's array, or none yet). */
static int set_tests(ctx *c)
{
    const policy_work *w = &c->obs->work;
    if (w->fetch == POLICY_FETCH_DONE && !w->verify.reason && w->tests == POLICY_TESTS_DONE && w->test_results)
        return json_set_item(c->st, "decisionTests", cJSON_Duplicate(w->test_results, true));
    cJSON_DeleteItemFromObjectCaseSensitive(c->st, "decisionTests");
    return 0;
}

/* ---- outcomes ------------------------------------------------------------ */

/* Work in progress: Reconciling=True with reason and message; phase Fetching until verified, then Verified. */
static int progress(ctx *c, const char *reason, const char *message)
{
    const policy_work *w = &c->obs->work;
    bool verified = w->fetch == POLICY_FETCH_DONE && !w->verify.reason;
    int err;
    if ((err = set_phase(c, verified ? "Verified" : "Fetching")) < 0 ||
        (err = conditions_mark_reconciling(NULL, c->st, reason, message, c->gen, c->obs->now)) < 0)
        return err;
    if (verified)
        err = set_verified(c);
    else
        clear_verified(c);
    if (err < 0 || (err = set_tests(c)) < 0 || (err = set_checks(c, NULL, NULL)) < 0)
        return err;
    if (c->plan->requeue_ms <= 0)
        c->plan->requeue_ms = POLICY_RUNNING_RECHECK_MS;
    return 0;
}

/* A transient failure: progress, and a Warning Event when the reason is new. */
static int transient(ctx *c, const char *reason, const char *message)
{
    int err;
    bool fresh = !same(conditions_true_reason(c->old, COND_RECONCILING), reason);
    if ((err = progress(c, reason, message)) < 0)
        return err;
    if (!fresh)
        return 0;
    if (strcmp(reason, "FetchFailed") == 0) /* a failure reason of API.md: counted, though retried */
        c->plan->outcome = reason;
    return add_event(c, "Warning", reason, "%s", message);
}

/* A terminal failure: Stalled=True, phase Failed, never published; until the generation changes. */
static int stalled(ctx *c, const char *reason, const char *message)
{
    const policy_work *w = &c->obs->work;
    int err;
    bool fresh = !same(conditions_true_reason(c->old, COND_STALLED), reason) ||
                 !same(json_str(c->old, "phase", NULL), "Failed") ||
                 json_int(-1, c->old, "observedGeneration", NULL) != c->gen;
    if ((err = set_phase(c, "Failed")) < 0 ||
        (err = conditions_mark_stalled(NULL, c->st, reason, message, c->gen, c->obs->now)) < 0)
        return err;
    if (w->fetch == POLICY_FETCH_DONE && !w->verify.reason)
        err = set_verified(c); /* what was read stays for the diagnosis ... */
    else
        clear_verified(c);
    /* ... but a failed bundle has no verified digest, whichever check failed (decision tests included) */
    cJSON_DeleteItemFromObjectCaseSensitive(c->st, "verifiedDigest");
    if (err < 0 || (err = set_tests(c)) < 0 || (err = set_checks(c, reason, message)) < 0)
        return err;
    c->plan->drop_work = true;
    c->plan->requeue_ms = 0;
    if (fresh) {
        c->plan->outcome = reason;
        return add_event(c, "Warning", reason, "%s", message);
    }
    return 0;
}

/* The receipt of a publication: once per published digest and ConfigMap. */
static int seal_receipt(ctx *c)
{
    const policy_work *w = &c->obs->work;
    const cJSON *prev = json_get(c->old, "receipt", NULL);
    char at[32];
    int err;
    if (same(json_str(prev, "verifiedDigest", NULL), c->digest) &&
        same(json_str(prev, "configMap", "name", NULL), c->plan->configmap))
        return 0;
    cJSON *e = cJSON_CreateObject();
    cJSON *cm = cJSON_AddObjectToObject(e, "configMap");
    if (!e || !cm || timefmt_format(at, sizeof(at), c->obs->now) < 0 ||
        !cJSON_AddStringToObject(e, "verifiedDigest", c->digest) ||
        !cJSON_AddStringToObject(e, "revision", w->verify.revision ? w->verify.revision : "") ||
        json_set_item(e, "roots", w->verify.roots ? cJSON_Duplicate(w->verify.roots, true) : cJSON_CreateArray()) < 0 ||
        json_set_item(e, "decisionTests",
                      w->test_results ? cJSON_Duplicate(w->test_results, true) : cJSON_CreateArray()) < 0 ||
        !cJSON_AddStringToObject(cm, "name", c->plan->configmap) ||
        (w->cm_uid && !cJSON_AddStringToObject(cm, "uid", w->cm_uid)) ||
        (w->cm_resource_version && !cJSON_AddStringToObject(cm, "resourceVersion", w->cm_resource_version)) ||
        !cJSON_AddStringToObject(e, "publishedAt", at)) {
        cJSON_Delete(e);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    if ((err = audit_receipt_set(c->st, e, c->obs->bundle)) < 0)
        return err;
    c->plan->receipt = json_get(c->st, "receipt", NULL);
    return 0;
}

static int published(ctx *c)
{
    char msg[MSG_MAX];
    int err;
    bool fresh = !same(json_str(c->old, "phase", NULL), "Published") ||
                 !same(json_str(c->old, "verifiedDigest", NULL), c->digest) ||
                 json_int(-1, c->old, "observedGeneration", NULL) != c->gen;
    snprintf(msg, sizeof(msg), "bundle %s (revision %s) is verified and published in ConfigMap %s", c->digest,
             c->obs->work.verify.revision ? c->obs->work.verify.revision : "", c->plan->configmap);
    if ((err = set_phase(c, "Published")) < 0 ||
        (err = conditions_mark_ready(NULL, c->st, "Published", msg, c->gen, c->obs->now)) < 0 ||
        (err = set_verified(c)) < 0 || (err = set_tests(c)) < 0 || (err = set_checks(c, NULL, NULL)) < 0 ||
        (err = seal_receipt(c)) < 0)
        return err;
    c->plan->drop_work = true;
    c->plan->requeue_ms = POLICY_RESYNC_MS;
    if (!fresh)
        return 0;
    c->plan->outcome = "Published";
    if (c->plan->receipt)
        return add_event(c, "Normal", "Published", "%s; receipt %s", msg, json_str(c->plan->receipt, "auditRef", NULL));
    return add_event(c, "Normal", "Published", "%s", msg);
}

/* ---- the steps ------------------------------------------------------------- */

static const char *spec_problem(ctx *c, char *msg)
{
    const cJSON *spec = json_get(c->obs->bundle, "spec", NULL);
    if (!c->url || (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0))
        return snprintf(msg, MSG_MAX, "spec.source.url must be an http:// or https:// URL"), msg;
    if (!mb_sha256_digest_valid(c->digest))
        return snprintf(msg, MSG_MAX, "spec.source.digest must be sha256: followed by 64 lowercase hex digits"), msg;
    if (c->signing && (!json_str(spec, "signing", "publicKeySecretRef", "name", NULL) ||
                       !json_str(spec, "signing", "publicKeySecretRef", "key", NULL)))
        return snprintf(msg, MSG_MAX, "spec.signing.publicKeySecretRef needs a name and a key"), msg;
    if (cJSON_GetArraySize(c->cases) > 0 &&
        (!c->opa_url || (strncmp(c->opa_url, "http://", 7) != 0 && strncmp(c->opa_url, "https://", 8) != 0)))
        return snprintf(msg, MSG_MAX,
                        "spec.decisionTests.opaURL must be an http:// or https:// URL when cases are set"),
               msg;
    const cJSON *tc;
    int i = 0;
    cJSON_ArrayForEach(tc, c->cases) {
        const char *n = json_str(tc, "name", NULL), *p = json_str(tc, "path", NULL);
        if (!n || !*n || !p || !*p || !cJSON_GetObjectItemCaseSensitive(tc, "expect"))
            return snprintf(msg, MSG_MAX, "spec.decisionTests.cases[%d] needs a name, a path and expect", i), msg;
        i++;
    }
    if (!policy_configmap_name(c->plan->configmap, c->obs->bundle))
        return snprintf(msg, MSG_MAX, "spec.publish.configMapName is too long"), msg;
    return NULL;
}

/* The time left (ms) before a retry after attempts failures that ended at finished; 0: due now. */
static long retry_in(const ctx *c, unsigned attempts, time_t finished)
{
    long long due = (long long)finished * 1000 + policy_backoff_ms(attempts);
    long long now = (long long)c->obs->now * 1000;
    return due > now ? (long)(due - now) : 0;
}

static int step_tests(ctx *c)
{
    const policy_work *w = &c->obs->work;
    char msg[MSG_MAX];
    int n = cJSON_GetArraySize(c->cases);
    long wait;
    switch (w->tests) {
    case POLICY_TESTS_NONE:
        c->plan->action = POLICY_ACT_TEST;
        snprintf(msg, sizeof(msg), "running %d decision tests against %s", n, c->opa_url);
        return progress(c, "Testing", msg);
    case POLICY_TESTS_WAITING: /* looked at again when that OPA is free: try again */
        c->plan->action = POLICY_ACT_TEST;
        snprintf(msg, sizeof(msg), "waits for %s, which runs another bundle's decision tests", c->opa_url);
        return progress(c, "WaitingForOPA", msg);
    case POLICY_TESTS_RUNNING:
        snprintf(msg, sizeof(msg), "running %d decision tests against %s", n, c->opa_url);
        return progress(c, "Testing", msg);
    case POLICY_TESTS_ERROR:
        if ((wait = retry_in(c, w->tests_attempts, w->tests_finished_at)) == 0)
            c->plan->action = POLICY_ACT_TEST;
        else
            c->plan->requeue_ms = wait;
        return transient(c, "DecisionTestsUnavailable",
                         w->tests_message ? w->tests_message : "the decision tests could not run");
    case POLICY_TESTS_DONE: break;
    }
    const cJSON *r;
    cJSON_ArrayForEach(r, w->test_results) {
        if (json_bool(false, r, "passed", NULL))
            continue;
        snprintf(msg, sizeof(msg),
                 "decision test %s failed (%s): fix the bundle's policy, or that case in spec.decisionTests.cases",
                 json_str(r, "name", NULL) ?: "?", json_str(r, "message", NULL) ?: "no result");
        return stalled(c, "DecisionTestFailed", msg);
    }
    return 1; /* all passed */
}

static int step_publish(ctx *c)
{
    char msg[MSG_MAX];
    switch (c->obs->work.publish) {
    case POLICY_PUBLISH_NONE:
        c->plan->action = POLICY_ACT_PUBLISH;
        snprintf(msg, sizeof(msg), "publishing the bundle in ConfigMap %s", c->plan->configmap);
        return progress(c, "Publishing", msg);
    case POLICY_PUBLISH_NOT_OWNED:
        snprintf(msg, sizeof(msg),
                 "ConfigMap %s/%s exists and is not this bundle's: choose another spec.publish.configMapName "
                 "(or delete that ConfigMap, then change the spec to try again)",
                 c->ns, c->plan->configmap);
        return stalled(c, "ConfigMapNotOwned", msg);
    case POLICY_PUBLISH_DONE: break;
    }
    return published(c);
}

/* The pipeline of decide.h for this generation and pin. */
static int pipeline(ctx *c)
{
    const policy_work *w = &c->obs->work;
    char msg[MSG_MAX];
    long wait;
    int err;
    switch (w->fetch) {
    case POLICY_FETCH_NONE:
        c->plan->action = POLICY_ACT_FETCH;
        /* fall through */
    case POLICY_FETCH_RUNNING: snprintf(msg, sizeof(msg), "fetching %s", c->url); return progress(c, "Fetching", msg);
    case POLICY_FETCH_FAILED:
        if ((wait = retry_in(c, w->fetch_attempts, w->fetch_finished_at)) == 0)
            c->plan->action = POLICY_ACT_FETCH;
        else
            c->plan->requeue_ms = wait;
        return transient(c, "FetchFailed", w->fetch_message ? w->fetch_message : "the fetch failed");
    case POLICY_FETCH_TOO_BIG:
        return stalled(c, "TooLarge",
                       w->fetch_message
                           ? w->fetch_message
                           : "the bundle is larger than spec.source.maxBytes: raise it or shrink the bundle");
    case POLICY_FETCH_DONE: break;
    }
    if (w->verify.reason)
        return stalled(c, w->verify.reason, w->verify.message ? w->verify.message : w->verify.reason);
    if (cJSON_GetArraySize(c->cases) > 0 && (err = step_tests(c)) != 1)
        return err;
    return step_publish(c);
}

/* ---- decide -------------------------------------------------------------- */

static int decide(ctx *c)
{
    const policy_observed *o = c->obs;
    char msg[MSG_MAX];
    const char *problem = spec_problem(c, msg);
    if (problem)
        return stalled(c, "InvalidSpec", problem);

    bool this_gen = json_int(-1, c->old, "observedGeneration", NULL) == c->gen;
    const char *phase = json_str(c->old, "phase", NULL);
    const cJSON *cm = o->configmap;

    /* Published for this generation and pin: re-check the ConfigMap, restore it when it was edited */
    if (this_gen && same(phase, "Published") && same(json_str(c->old, "verifiedDigest", NULL), c->digest) &&
        o->work.fetch == POLICY_FETCH_NONE) {
        if (cm && policy_configmap_owned(cm, o->bundle) && configmap_holds(cm, c->digest)) {
            int err = conditions_mark_ready(NULL, c->st, "Published",
                                            json_str(conditions_get(c->old, COND_READY), "message", NULL), c->gen,
                                            o->now);
            c->plan->phase = "Published";
            c->plan->drop_work = true;
            c->plan->requeue_ms = POLICY_RESYNC_MS;
            return err;
        }
        int err;
        if (!cm)
            snprintf(msg, sizeof(msg),
                     "ConfigMap %s/%s was deleted or lost its %s=%s label by hand and is being restored from the "
                     "verified bundle",
                     c->ns, c->plan->configmap, POLICY_MANAGED_BY_LABEL, POLICY_MANAGED_BY);
        else
            snprintf(msg, sizeof(msg),
                     "ConfigMap %s/%s was edited by hand (it no longer holds bundle %s) and is being restored from "
                     "the verified bundle",
                     c->ns, c->plan->configmap, c->digest);
        c->plan->action = POLICY_ACT_FETCH;
        if ((err = progress(c, "Restoring", msg)) < 0)
            return err;
        return add_event(c, "Warning", "ConfigMapEdited", "%s", msg);
    }

    /* Failed for this generation: stays so until the spec changes (a ConfigMap in the way included: membrane does
     * not watch ConfigMaps it did not write, so it cannot see that one go) */
    if (this_gen && same(phase, "Failed") && conditions_true_reason(c->old, COND_STALLED) &&
        o->work.fetch == POLICY_FETCH_NONE) {
        c->plan->phase = "Failed";
        c->plan->drop_work = true;
        return 0;
    }
    return pipeline(c);
}

int policy_decide(policy_plan *out, const policy_observed *obs)
{
    ctx c = {.obs = obs, .plan = out};
    const cJSON *b = obs->bundle;
    int err = 0;
    memset(out, 0, sizeof(*out));
    c.old = json_get(b, "status", NULL);
    c.gen = json_int(0, b, "metadata", "generation", NULL);
    c.ns = json_str(b, "metadata", "namespace", NULL);
    c.name = json_str(b, "metadata", "name", NULL);
    c.url = json_str(b, "spec", "source", "url", NULL);
    c.digest = json_str(b, "spec", "source", "digest", NULL);
    c.opa_url = json_str(b, "spec", "decisionTests", "opaURL", NULL);
    c.cases = json_get(b, "spec", "decisionTests", "cases", NULL);
    c.signing = cJSON_IsObject(json_get(b, "spec", "signing", NULL));
    if (!c.ns || !c.name)
        return mb_error_set(MB_EINVAL, "the PolicyBundle has no metadata.namespace or metadata.name");
    policy_configmap_name(out->configmap, b);
    c.st = cJSON_IsObject(c.old) ? cJSON_Duplicate(c.old, true) : cJSON_CreateObject();
    if (!c.st) {
        policy_plan_clear(out);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    if ((err = decide(&c)) < 0) {
        cJSON_Delete(c.st);
        policy_plan_clear(out);
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

void policy_plan_clear(policy_plan *plan)
{
    if (!plan)
        return;
    cJSON_Delete(plan->status);
    for (size_t i = 0; i < plan->n_events; i++)
        free(plan->events[i].message);
    memset(plan, 0, sizeof(*plan));
}

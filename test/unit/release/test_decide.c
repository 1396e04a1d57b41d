/*
 * release_decide: every gate outcome, every phase transition, the triggers,
 * rollback, the restart between the target write and the patch, idempotence
 * and clock edges. Fixtures are small JSON objects built per test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audit/receipt.h"
#include "release/decide.h"
#include "release_fixture.h"
#include "runtime/conditions.h"
#include "runtime/ryw.h"
#include "util/error.h"
#include "util/json.h"
#include "util/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixtures (the shared ones: test/support/release_fixture.h) ---------- */

static void fx_status(fx *f, const char *json)
{
    cJSON *st = cJSON_Parse(json);
    assert_non_null(st);
    cJSON_DeleteItemFromObject(f->release, "status");
    cJSON_AddItemToObject(f->release, "status", st);
}

/* Applies the plan's status to the release, as the operator's status write would. */
static void fx_apply(fx *f)
{
    if (f->plan.status) {
        cJSON_DeleteItemFromObject(f->release, "status");
        cJSON_AddItemToObject(f->release, "status", cJSON_Duplicate(f->plan.status, true));
    }
}

static int decide(fx *f)
{
    release_plan_clear(&f->plan);
    fx_observe(f);
    return release_decide(&f->plan, &f->obs);
}

/* ---- assertions ---------------------------------------------------------- */

static const char *st_str(const fx *f, const char *key)
{
    return json_str(f->plan.status, key, NULL);
}

static void assert_cond(const fx *f, const char *type, const char *status, const char *reason)
{
    const cJSON *c = conditions_get(f->plan.status, type);
    if (!status) {
        if (c)
            fail_msg("condition %s should be absent, is %s", type, json_str(c, "status", NULL));
        return;
    }
    if (!c)
        fail_msg("condition %s missing", type);
    assert_string_equal(json_str(c, "status", NULL), status);
    if (reason)
        assert_string_equal(json_str(c, "reason", NULL), reason);
}

static bool has_event(const fx *f, const char *reason)
{
    for (size_t i = 0; i < f->plan.n_events; i++)
        if (strcmp(f->plan.events[i].reason, reason) == 0)
            return true;
    return false;
}

static void assert_event(const fx *f, const char *reason)
{
    if (!has_event(f, reason))
        fail_msg("no %s event", reason);
}

static void assert_patch_has(const fx *f, const char *needle)
{
    assert_non_null(f->plan.deployment_patch);
    if (!strstr(f->plan.deployment_patch, needle))
        fail_msg("patch %s lacks %s", f->plan.deployment_patch, needle);
}

/* ---- the release ID ------------------------------------------------------ */

static void test_release_id(void **state)
{
    (void)state;
    char id[13];
    /* python3: hashlib.sha256(b"kfm/kfm-api/3/sha256:" + b"b"*64).hexdigest()[:12] */
    assert_int_equal(release_id(id, "kfm", "kfm-api", 3, B), 0);
    assert_string_equal(id, "5dee29fd7e28");
}

/* ---- gates --------------------------------------------------------------- */

static void gate_case(fx *f, const char *reason, bool transient)
{
    assert_int_equal(decide(f), 0);
    assert_string_equal(f->plan.phase, "Gating");
    assert_string_equal(st_str(f, "phase"), "Gating");
    assert_null(f->plan.deployment_patch);
    assert_cond(f, "GatesPassed", "False", reason);
    if (transient) {
        assert_cond(f, "Reconciling", "True", reason);
        assert_cond(f, "Stalled", NULL, NULL);
        assert_true(f->plan.requeue_ms > 0);
    } else {
        assert_cond(f, "Stalled", "True", reason);
        assert_cond(f, "Reconciling", NULL, NULL);
    }
    assert_cond(f, "Ready", transient ? "Unknown" : "False", reason);
    assert_event(f, "GateBlocked");
    assert_int_equal(json_int(-1, f->plan.status, "observedGeneration", NULL), 3);
    /* nothing recorded before the gates pass */
    assert_null(st_str(f, "rollbackTarget"));
    assert_null(st_str(f, "releaseID"));
}

static void test_gate_target_not_found(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(3, B, NULL);
    gate_case(&f, "TargetNotFound", false);
    assert_non_null(strstr(f.plan.events[0].message, "kfm/kfm-api does not exist"));
    fx_free(&f);
}

static void test_gate_container_not_found(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(3, B, NULL);
    cJSON_SetValuestring(cJSON_GetObjectItem(json_get(f.release, "spec", "target", NULL), "container"), "web");
    f.deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
    gate_case(&f, "ContainerNotFound", false);
    fx_free(&f);
}

static void test_gate_change_record_missing(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(3, B, NULL);
    cJSON_SetValuestring((cJSON *)json_get(f.release, "spec", "changeRecord", NULL), "");
    f.deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
    gate_case(&f, "ChangeRecordMissing", false);
    fx_free(&f);
}

/* A PolicyBundle of generation 2 pinning pinned, with verifiedDigest verified, Ready=True, its status for generation og. */
static cJSON *bundle_new(const char *pinned, const char *verified, int og)
{
    return fx_parse("{\"metadata\":{\"generation\":2},\"spec\":{\"source\":{\"digest\":\"%s\"}},"
                    "\"status\":{\"observedGeneration\":%d,\"verifiedDigest\":\"%s\","
                    "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"observedGeneration\":%d}]}}",
                    pinned, og, verified, og);
}

static void test_gate_policy_bundle(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(3, B, "\"policyBundleRef\":{\"name\":\"kfm-policy\"}");
    f.deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
    gate_case(&f, "PolicyBundleNotReady", true); /* missing */
    /* Ready for an older generation only */
    f.bundle = bundle_new(C, C, 1);
    gate_case(&f, "PolicyBundleNotReady", true);
    /* Ready now: passes and stamps the bundle digest */
    cJSON_Delete(f.bundle);
    f.bundle = bundle_new(C, C, 2);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_string_equal(st_str(&f, "policyBundleDigest"), C);
    assert_patch_has(&f, "\"governance.kfm.dev/policy-bundle-digest\":\"" C "\"");
    fx_free(&f);
}

/* Ready=True is not enough: the status must be for this generation and the verified digest the pinned one. */
static void test_gate_policy_bundle_digest(void **state)
{
    (void)state;
    struct {
        const char *pinned, *verified;
        int og;
        const char *says;
    } cases[] = {
        {C, A, 2, "status.verifiedDigest " A " differs from spec.source.digest " C},
        {C, "", 2, "status.verifiedDigest is empty"},
        {C, C, 1, "status.observedGeneration 1 is not its generation 2"},
        {"", C, 2, "spec.source.digest is empty"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        fx f = {0};
        f.release = fx_release_new(3, B, "\"policyBundleRef\":{\"name\":\"kfm-policy\"}");
        f.deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
        f.bundle = bundle_new(cases[i].pinned, cases[i].verified, cases[i].og);
        /* the Ready condition itself says True for the current generation in every case but the stale one */
        gate_case(&f, "PolicyBundleNotReady", true);
        const cJSON *gp = conditions_get(f.plan.status, "GatesPassed");
        if (!strstr(json_str(gp, "message", NULL), cases[i].says))
            fail_msg("case %zu: message \"%s\" does not say \"%s\"", i, json_str(gp, "message", NULL), cases[i].says);
        assert_null(st_str(&f, "policyBundleDigest"));
        fx_free(&f);
    }
}

static void test_gate_no_rollback_target(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(3, B, NULL);
    f.deployment = fx_deployment_new(REPO ":v1.2", 3, true, NULL);
    gate_case(&f, "NoRollbackTarget", false);
    /* an explicit rollback target lifts the block */
    cJSON_AddItemToObject(cJSON_GetObjectItem(f.release, "spec"), "rollbackTarget", fx_parse("{\"digest\":\"" A "\"}"));
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_string_equal(st_str(&f, "rollbackTarget"), A);
    fx_free(&f);
}

static void test_gate_target_claimed(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(3, B, NULL);
    f.deployment = fx_deployment_new(REPO "@" A, 3, true, "kfm/other-release");
    gate_case(&f, "TargetClaimed", false);
    assert_non_null(strstr(f.plan.events[0].message, "kfm/other-release"));
    fx_free(&f);
}

static void test_gate_invalid_spec(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(3, "latest", NULL);
    f.deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
    gate_case(&f, "InvalidSpec", false);
    assert_non_null(strstr(f.plan.events[0].message, "spec.image.digest"));
    cJSON_Delete(f.release);
    f.release = fx_release_new(3, B, "\"rollbackTarget\":{\"digest\":\"" B "\"}");
    gate_case(&f, "InvalidSpec", false);
    assert_non_null(strstr(f.plan.events[0].message, "spec.rollbackTarget.digest"));
    fx_free(&f);
}

/*
 * spec.membrane.probe without --enable-probe (the install neither grants nor admits the probe's pods): blocked
 * as InvalidSpec, Stalled, before the Deployment is touched, saying how to enable it. With the flag it passes.
 */
static void test_gate_probe_not_enabled(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(3, B,
                               "\"membrane\":{\"apiServiceAccount\":\"kfm-api\",\"probe\":{\"image\":\"busybox@" A
                               "\"}}");
    f.deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
    gate_case(&f, "InvalidSpec", false);
    assert_non_null(strstr(f.plan.events[0].message, "spec.membrane.probe"));
    assert_non_null(strstr(f.plan.events[0].message, "--enable-probe"));
    assert_non_null(strstr(f.plan.events[0].message, "probe.enabled=true"));
    assert_non_null(strstr(f.plan.events[0].message, "manifests/probe"));
    assert_non_null(strstr(json_str(conditions_get(f.plan.status, "GatesPassed"), "message", NULL), "--enable-probe"));
    release_plan_clear(&f.plan);
    f.obs.probe_enabled = true;
    assert_int_equal(decide(&f), 0);
    assert_cond(&f, "GatesPassed", "True", NULL);
    assert_non_null(f.plan.deployment_patch);
    fx_free(&f);
}

/* A spec.verification.slo the check cannot run with blocks before the Deployment is touched, naming the field. */
static void test_gate_invalid_slo(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(3, B, NULL);
    cJSON_AddItemToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(f.release, "spec"), "verification"), "slo",
                          fx_parse("{\"prometheusURL\":\"http://prometheus:9090\",\"objectives\":[]}"));
    f.deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
    gate_case(&f, "InvalidSpec", false);
    assert_non_null(strstr(f.plan.events[0].message, "spec.verification.slo.objectives is empty"));
    fx_free(&f);
}

static void test_gate_block_event_once(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(3, B, NULL);
    gate_case(&f, "TargetNotFound", false);
    fx_apply(&f);
    assert_int_equal(decide(&f), 0);
    /* the same block again: no new Event, no status change */
    assert_false(has_event(&f, "GateBlocked"));
    assert_null(f.plan.status);
    fx_free(&f);
}

/* ---- rollout ------------------------------------------------------------- */

static void start_rollout(fx *f)
{
    f->release = fx_release_new(3, B, NULL);
    f->deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
    fx_pods(f, REPO "@" A, 3, false);
    assert_int_equal(decide(f), 0);
}

/*
 * The plan's Deployment patch went through: f's Deployment now runs image
 * (rolled out when done), owned by the release, with the patch's
 * annotations (its nulls remove; no patch: the annotations stay). The
 * status write after it is not applied.
 */
static void fx_patch_landed(fx *f, const char *image, bool done)
{
    cJSON *patch = f->plan.deployment_patch ? cJSON_Parse(f->plan.deployment_patch) : cJSON_CreateObject();
    const cJSON *a;
    assert_non_null(patch);
    cJSON *ann = cJSON_Duplicate(json_get(f->deployment, "metadata", "annotations", NULL), true);
    cJSON_ArrayForEach(a, json_get(patch, "metadata", "annotations", NULL)) {
        cJSON_DeleteItemFromObjectCaseSensitive(ann, a->string);
        if (!cJSON_IsNull(a))
            cJSON_AddItemToObject(ann, a->string, cJSON_Duplicate(a, true));
    }
    cJSON_Delete(patch);
    cJSON_Delete(f->deployment);
    f->deployment = fx_deployment_new(image, 3, done, "kfm/kfm-api");
    cJSON *meta = cJSON_GetObjectItem(f->deployment, "metadata");
    cJSON_DeleteItemFromObject(meta, "annotations");
    cJSON_AddItemToObject(meta, "annotations", ann);
    for (size_t i = 0; i < f->n_pods; i++)
        cJSON_Delete(f->pods[i]);
    f->n_pods = 0;
    fx_pods(f, image, 3, false);
}

/* ---- the environment-order gate (spec.after) ----------------------------- */

#define AFTER_STAGING "\"after\":[{\"namespace\":\"kfm-staging\",\"name\":\"kfm-api\"}]"

/* kfm-staging/kfm-api of environment env, whose history holds one sealed entry per (digest, outcome) pair. */
static cJSON *upstream_new(const char *env, size_t n, const char *const *digests, const char *const *outcomes)
{
    cJSON *up = fx_parse("{\"apiVersion\":\"governance.kfm.dev/v1alpha1\",\"kind\":\"GovernedAPIRelease\","
                         "\"metadata\":{\"namespace\":\"kfm-staging\",\"name\":\"kfm-api\",\"uid\":\"u-staging\","
                         "\"generation\":%zu},\"spec\":{\"environment\":\"%s\"},\"status\":{}}",
                         n, env);
    cJSON *st = cJSON_GetObjectItem(up, "status");
    for (size_t i = 0; i < n; i++) {
        cJSON *e = fx_parse("{\"releaseID\":\"0123456789a%zu\",\"generation\":%zu,\"digest\":\"%s\","
                            "\"outcome\":\"%s\",\"environment\":\"%s\"}",
                            i, i + 1, digests[i], outcomes[i], env);
        assert_int_equal(audit_history_append(st, e, up), 0);
    }
    return up;
}

/* A prod release of B after kfm-staging/kfm-api, with upstream as what the cache holds of it. */
static void prod_after(fx *f, cJSON *upstream)
{
    f->release = fx_release_new(3, B, AFTER_STAGING);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(f->release, "spec"), "environment", cJSON_CreateString("prod"));
    f->deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
    f->upstream[0] = upstream;
    f->n_upstream = 1;
}

static void assert_blocked_says(fx *f, bool transient, const char *says)
{
    gate_case(f, "NotPromoted", transient);
    const char *msg = json_str(conditions_get(f->plan.status, "GatesPassed"), "message", NULL);
    if (!strstr(msg, says))
        fail_msg("GatesPassed message \"%s\" does not say \"%s\"", msg, says);
    if (!strstr(msg, "kfm-staging/kfm-api"))
        fail_msg("GatesPassed message \"%s\" does not name the release", msg);
}

/* staging succeeded with B, its chain verifies: prod proceeds, and seals staging's receipt in its own. */
static void test_order_gate_passes(void **state)
{
    (void)state;
    fx f = {0};
    const char *d[] = {A, B}, *o[] = {"Succeeded", "Succeeded"};
    prod_after(&f, upstream_new("staging", 2, d, o));
    const char *staging_ref = json_str(cJSON_GetArrayItem(json_get(f.upstream[0], "status", "history", NULL), 1),
                                       "auditRef", NULL);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_cond(&f, "GatesPassed", "True", "GatesPassed");
    const cJSON *p = cJSON_GetArrayItem(json_get(f.plan.status, "promotedFrom", NULL), 0);
    assert_string_equal(json_str(p, "namespace", NULL), "kfm-staging");
    assert_string_equal(json_str(p, "name", NULL), "kfm-api");
    assert_string_equal(json_str(p, "auditRef", NULL), staging_ref);
    /* to the end: the receipt carries staging's auditRef */
    fx_apply(&f);
    fx_free(&f);
}

/* The receipt of a prod release seals the upstream auditRef: receipts chain across environments. */
static void test_order_gate_sealed_in_receipt(void **state)
{
    (void)state;
    fx f = {0};
    const char *d[] = {B}, *o[] = {"Succeeded"};
    prod_after(&f, upstream_new("staging", 1, d, o));
    const char *staging_ref = json_str(cJSON_GetArrayItem(json_get(f.upstream[0], "status", "history", NULL), 0),
                                       "auditRef", NULL);
    assert_int_equal(decide(&f), 0);
    fx_apply(&f);
    fx_patch_landed(&f, REPO "@" B, true);
    f.obs.now = T0 + 20;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Verifying");
    fx_apply(&f);
    cJSON_AddItemToObject(cJSON_GetObjectItem(f.release, "spec"), "rollout", cJSON_Parse("{\"observationSeconds\":0}"));
    fx_checks(&f, "5dee29fd7e28", "[{\"name\":\"health\",\"passed\":true},{\"name\":\"focus-ask\",\"passed\":true}]");
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Observing"); /* with 0 s, the next look ends it */
    fx_apply(&f);
    f.obs.checks.ran = false;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Succeeded");
    assert_non_null(f.plan.receipt);
    const cJSON *p = cJSON_GetArrayItem(json_get(f.plan.receipt, "promotedFrom", NULL), 0);
    assert_string_equal(json_str(p, "auditRef", NULL), staging_ref);
    /* and it is sealed: changing it breaks this release's own receipt */
    char ref[AUDIT_REF_SIZE];
    assert_int_equal(audit_receipt_ref(ref, f.plan.receipt, f.release), 0);
    assert_string_equal(ref, json_str(f.plan.receipt, "auditRef", NULL));
    cJSON *copy = cJSON_Duplicate(f.plan.receipt, true);
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(copy, "promotedFrom"), 0), "auditRef",
                              cJSON_CreateString("sha256:"
                                                 "0000000000000000000000000000000000000000000000000000000000000000"));
    assert_int_equal(audit_receipt_ref(ref, copy, f.release), 0);
    assert_string_not_equal(ref, json_str(f.plan.receipt, "auditRef", NULL));
    cJSON_Delete(copy);
    fx_free(&f);
}

/* Every way the gate blocks, each naming the release and what is missing. */
static void test_order_gate_blocks(void **state)
{
    (void)state;
    const char *dA[] = {A}, *oS[] = {"Succeeded"}, *dB[] = {B}, *oR[] = {"RolledBack"};

    fx f = {0}; /* not found (not in the cache): waited for */
    prod_after(&f, NULL);
    assert_blocked_says(&f, true, "not found");
    fx_free(&f);

    fx g = {0}; /* staging never succeeded with B */
    prod_after(&g, upstream_new("staging", 1, dA, oS));
    assert_blocked_says(&g, true, "no Succeeded entry for " B);
    fx_free(&g);

    fx h = {0}; /* staging rolled B back: a human must release a fixed digest there */
    prod_after(&h, upstream_new("staging", 1, dB, oR));
    assert_blocked_says(&h, false, "its last entry for " B " (status.history[0]) has outcome RolledBack");
    fx_free(&h);

    fx i = {0}; /* the named release is prod itself: wrong order, a spec change is needed */
    prod_after(&i, upstream_new("prod", 1, dB, oS));
    assert_blocked_says(&i, false, "not earlier than prod");
    fx_free(&i);

    fx j = {0}; /* a staging entry edited by hand: the chain is recomputed and does not verify */
    const char *d2[] = {A, A}, *o2[] = {"Succeeded", "Succeeded"};
    prod_after(&j, upstream_new("staging", 2, d2, o2));
    cJSON *e = cJSON_GetArrayItem(json_get(j.upstream[0], "status", "history", NULL), 1);
    cJSON_ReplaceItemInObject(e, "digest", cJSON_CreateString(B)); /* "A succeeded" made into "B succeeded" */
    assert_blocked_says(&j, false, "receipt chain");
    fx_free(&j);

    fx k = {0}; /* a staging release can wait on dev, not on another staging one */
    prod_after(&k, upstream_new("staging", 1, dB, oS));
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(k.release, "spec"), "environment", cJSON_CreateString("staging"));
    assert_blocked_says(&k, false, "not earlier than staging");
    fx_free(&k);

    fx l = {0}; /* without spec.after, no order gate and no promotedFrom */
    l.release = fx_release_new(3, B, NULL);
    l.deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
    assert_int_equal(decide(&l), 0);
    assert_string_equal(l.plan.phase, "RollingOut");
    assert_null(json_get(l.plan.status, "promotedFrom", NULL));
    fx_free(&l);
}

/* The upstream as its controller leaves it: spec.image.digest, metadata.generation, and the phase it observed. */
static void upstream_at(cJSON *up, const char *digest, long long gen, long long observed, const char *phase)
{
    cJSON *spec = cJSON_GetObjectItem(up, "spec"), *meta = cJSON_GetObjectItem(up, "metadata");
    cJSON *st = cJSON_GetObjectItem(up, "status");
    cJSON_DeleteItemFromObject(spec, "image");
    cJSON_AddItemToObject(spec, "image", fx_parse("{\"repository\":\"" REPO "\",\"digest\":\"%s\"}", digest));
    cJSON_ReplaceItemInObject(meta, "generation", cJSON_CreateNumber((double)gen));
    cJSON_DeleteItemFromObject(st, "observedGeneration");
    cJSON_DeleteItemFromObject(st, "phase");
    if (observed >= 0)
        cJSON_AddNumberToObject(st, "observedGeneration", (double)observed);
    if (phase)
        cJSON_AddStringToObject(st, "phase", phase);
}

/* Appends a sealed entry (digest, outcome) of generation gen to the upstream's history, as its controller would. */
static void upstream_append(cJSON *up, long long gen, const char *digest, const char *outcome)
{
    cJSON *e = fx_parse("{\"releaseID\":\"0123456789f%lld\",\"generation\":%lld,\"digest\":\"%s\","
                        "\"outcome\":\"%s\",\"environment\":\"staging\"}",
                        gen, gen, digest, outcome);
    assert_int_equal(audit_history_append(cJSON_GetObjectItem(up, "status"), e, up), 0);
}

/*
 * Reconciling or Stalled by the upstream's last outcome for this digest:
 * still in flight there waits; its last entry RolledBack or Failed needs a
 * human (a fixed digest there), even after an earlier success.
 */
static void test_order_gate_outcomes(void **state)
{
    (void)state;
    const char *dA[] = {A}, *oS[] = {"Succeeded"}, *dB[] = {B}, *oF[] = {"Failed"}, *oR[] = {"RolledBack"};

    fx f = {0}; /* staging rolling B out now (generation 2 not looked at yet): waits */
    prod_after(&f, upstream_new("staging", 1, dA, oS));
    upstream_at(f.upstream[0], B, 2, 1, "Succeeded");
    assert_blocked_says(&f, true, "is still releasing " B);
    fx_free(&f);

    fx g = {0}; /* staging verifying B in the generation it observed: waits */
    prod_after(&g, upstream_new("staging", 1, dA, oS));
    upstream_at(g.upstream[0], B, 2, 2, "Verifying");
    assert_blocked_says(&g, true, "is still releasing " B " (phase Verifying of generation 2)");
    fx_free(&g);

    fx h = {0}; /* staging failed with B (no automatic rollback): Stalled, naming the outcome and what to do */
    prod_after(&h, upstream_new("staging", 1, dB, oF));
    upstream_at(h.upstream[0], B, 1, 1, "Failed");
    assert_blocked_says(&h, false, "its last entry for " B " (status.history[0]) has outcome Failed");
    assert_blocked_says(&h, false, "release a fixed digest there");
    fx_free(&h);

    fx i = {0}; /* B succeeded in staging, then a later generation rolled B back: the last outcome counts */
    const char *d2[] = {B, B}, *o2[] = {"Succeeded", "RolledBack"};
    prod_after(&i, upstream_new("staging", 2, d2, o2));
    upstream_at(i.upstream[0], B, 2, 2, "RolledBack");
    assert_blocked_says(&i, false, "its last entry for " B " (status.history[1]) has outcome RolledBack");
    fx_free(&i);

    fx j = {0}; /* rolled back, and now staging releases B again in a newer generation: waits again */
    prod_after(&j, upstream_new("staging", 1, dB, oR));
    upstream_at(j.upstream[0], B, 2, 2, "RollingOut");
    assert_blocked_says(&j, true, "is still releasing " B);
    fx_free(&j);

    fx m = {0}; /* staging at B but held at a gate of its own (Stalled): not in flight; no entry for B, waits */
    prod_after(&m, upstream_new("staging", 1, dA, oS));
    upstream_at(m.upstream[0], B, 2, 2, "Gating");
    cJSON_AddItemToObject(cJSON_GetObjectItem(m.upstream[0], "status"), "conditions",
                          fx_parse("[{\"type\":\"Stalled\",\"status\":\"True\",\"reason\":\"NotPromoted\"}]"));
    assert_blocked_says(&m, true, "no Succeeded entry for " B);
    fx_free(&m);

    fx k = {0}; /* staging at another digest and done: no entry for B yet, waits (release it there first) */
    prod_after(&k, upstream_new("staging", 1, dA, oS));
    upstream_at(k.upstream[0], A, 1, 1, "Succeeded");
    assert_blocked_says(&k, true, "no Succeeded entry for " B);
    fx_free(&k);
}

/* Stalled on a rolled-back digest, the release opens at once when staging later succeeds with it. */
static void test_order_gate_unblocks_from_stalled(void **state)
{
    (void)state;
    const char *dB[] = {B}, *oR[] = {"RolledBack"};
    fx f = {0};
    prod_after(&f, upstream_new("staging", 1, dB, oR));
    upstream_at(f.upstream[0], B, 1, 1, "RolledBack");
    gate_case(&f, "NotPromoted", false);
    fx_apply(&f);
    upstream_append(f.upstream[0], 2, B, "Succeeded");
    upstream_at(f.upstream[0], B, 2, 2, "Succeeded");
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_cond(&f, "GatesPassed", "True", "GatesPassed");
    assert_cond(&f, "Stalled", NULL, NULL);
    const char *ref = json_str(cJSON_GetArrayItem(json_get(f.upstream[0], "status", "history", NULL), 1), "auditRef",
                               NULL);
    assert_string_equal(json_str(cJSON_GetArrayItem(json_get(f.plan.status, "promotedFrom", NULL), 0), "auditRef",
                                 NULL),
                        ref);
    fx_free(&f);
}

/* --allow-after-namespaces: an entry outside the list blocks (Stalled), naming the entry, the namespace, the flag. */
static void test_order_gate_allowed_namespaces(void **state)
{
    (void)state;
    const char *dB[] = {B}, *oS[] = {"Succeeded"};
    fx f = {0};
    prod_after(&f, upstream_new("staging", 1, dB, oS));
    f.obs.allow_after_namespaces = "kfm-dev,kfm-qa";
    assert_blocked_says(&f, false,
                        "spec.after[0] names GovernedAPIRelease kfm-staging/kfm-api, but namespace "
                        "kfm-staging is not one the operator trusts for spec.after "
                        "(--allow-after-namespaces kfm-dev,kfm-qa)");
    fx_free(&f);

    fx g = {0}; /* a prefix of a listed namespace is not that namespace */
    prod_after(&g, upstream_new("staging", 1, dB, oS));
    g.obs.allow_after_namespaces = "kfm-staging-old,kfm";
    assert_blocked_says(&g, false, "--allow-after-namespaces");
    fx_free(&g);

    fx h = {0}; /* listed: the gate holds */
    prod_after(&h, upstream_new("staging", 1, dB, oS));
    h.obs.allow_after_namespaces = "kfm-dev,kfm-staging";
    assert_int_equal(decide(&h), 0);
    assert_string_equal(h.plan.phase, "RollingOut");
    assert_cond(&h, "GatesPassed", "True", "GatesPassed");
    fx_free(&h);
}

/* ---- the supply-chain gate (spec.image.verify) ----------------------------- */

#define VERIFY_SPEC                                                                                                    \
    "\"image\":{\"repository\":\"" REPO "\",\"digest\":\"" B "\",\"verify\":{\"publicKeySecretRef\":"                  \
    "{\"name\":\"cosign-pub\",\"key\":\"cosign.pub\"}}}"
#define PAYLOAD_B "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define PAYLOAD_A "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define KEY_ID "sha256:3333333333333333333333333333333333333333333333333333333333333333"

/* A release of B over a Deployment running A, asking for signatures; verdicts[] as the verifier gave them. */
static void verify_release(fx *f, const char *extra_verify)
{
    f->release = fx_release_new(3, B, NULL);
    cJSON *spec = cJSON_GetObjectItem(f->release, "spec");
    cJSON *img = fx_parse("{%s}", VERIFY_SPEC);
    cJSON_ReplaceItemInObject(spec, "image", cJSON_DetachItemFromObject(img, "image"));
    cJSON_Delete(img);
    if (extra_verify) {
        cJSON *v = (cJSON *)json_get(spec, "image", "verify", NULL);
        cJSON *x = fx_parse("{%s}", extra_verify), *m;
        while ((m = x->child)) {
            cJSON_DetachItemViaPointer(x, m);
            cJSON_AddItemToObject(v, m->string, m);
        }
        cJSON_Delete(x);
    }
    f->deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
}

/* Without verdicts the gate asks for both digests (the new one, then the rollback target) and touches nothing. */
static void test_image_gate_asks_for_verdicts(void **state)
{
    (void)state;
    fx f = {0};
    verify_release(&f, NULL);
    gate_case(&f, "ImageNotVerified", true);
    assert_int_equal(f.plan.n_verify_digests, 2);
    assert_string_equal(f.plan.verify_digests[0], B);
    assert_string_equal(f.plan.verify_digests[1], A);
    assert_string_equal(f.plan.verify_repositories[0], REPO);
    assert_string_equal(f.plan.verify_repositories[1], REPO);
    fx_free(&f);

    fx h = {0}; /* the rollback target is looked up where it ran from */
    verify_release(&h, NULL);
    cJSON_Delete(h.deployment);
    h.deployment = fx_deployment_new("registry.example:5000/old/api@" A, 3, true, NULL);
    gate_case(&h, "ImageNotVerified", true);
    assert_string_equal(h.plan.verify_repositories[0], REPO);
    assert_string_equal(h.plan.verify_repositories[1], "registry.example:5000/old/api");
    fx_free(&h);

    fx g = {0}; /* without spec.image.verify: no verdicts asked for */
    g.release = fx_release_new(3, B, NULL);
    g.deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
    assert_int_equal(decide(&g), 0);
    assert_string_equal(g.plan.phase, "RollingOut");
    assert_int_equal(g.plan.n_verify_digests, 0);
    assert_null(json_get(g.plan.status, "imageSignatures", NULL));
    fx_free(&g);
}

/* Both verified: the rollout goes, and both signatures are recorded (then sealed in the receipt). */
static void test_image_gate_passes(void **state)
{
    (void)state;
    fx f = {0};
    verify_release(&f, "\"insecureRegistry\":true");
    release_image_verdict v[2] = {
        {B, RELEASE_IMAGE_VERIFIED, "", PAYLOAD_B, "v3", KEY_ID},
        {A, RELEASE_IMAGE_VERIFIED, "", PAYLOAD_A, "v2", KEY_ID},
    };
    f.obs.images = v;
    f.obs.n_images = 2;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_non_null(f.plan.deployment_patch);
    assert_event(&f, "InsecureRegistry");
    const cJSON *s = json_get(f.plan.status, "imageSignatures", NULL);
    assert_int_equal(cJSON_GetArraySize(s), 2);
    assert_string_equal(json_str(cJSON_GetArrayItem(s, 0), "role", NULL), "image");
    assert_string_equal(json_str(cJSON_GetArrayItem(s, 0), "digest", NULL), B);
    assert_string_equal(json_str(cJSON_GetArrayItem(s, 0), "payloadDigest", NULL), PAYLOAD_B);
    assert_string_equal(json_str(cJSON_GetArrayItem(s, 0), "layout", NULL), "v3");
    assert_string_equal(json_str(cJSON_GetArrayItem(s, 1), "role", NULL), "rollbackTarget");
    assert_string_equal(json_str(cJSON_GetArrayItem(s, 1), "digest", NULL), A);
    assert_string_equal(json_str(cJSON_GetArrayItem(s, 1), "payloadDigest", NULL), PAYLOAD_A);
    assert_string_equal(json_str(cJSON_GetArrayItem(s, 1), "keyID", NULL), KEY_ID);
    /* to the end: the receipt seals them */
    fx_apply(&f);
    fx_patch_landed(&f, REPO "@" B, true);
    f.obs.now = T0 + 20;
    assert_int_equal(decide(&f), 0);
    fx_apply(&f);
    cJSON_AddItemToObject(cJSON_GetObjectItem(f.release, "spec"), "rollout", cJSON_Parse("{\"observationSeconds\":0}"));
    fx_checks(&f, "5dee29fd7e28", "[{\"name\":\"health\",\"passed\":true},{\"name\":\"focus-ask\",\"passed\":true}]");
    assert_int_equal(decide(&f), 0);
    fx_apply(&f);
    f.obs.checks.ran = false;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Succeeded");
    const cJSON *r = json_get(f.plan.receipt, "imageSignatures", NULL);
    assert_string_equal(json_str(cJSON_GetArrayItem(r, 0), "payloadDigest", NULL), PAYLOAD_B);
    char ref[AUDIT_REF_SIZE];
    cJSON *copy = cJSON_Duplicate(f.plan.receipt, true);
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(copy, "imageSignatures"), 0), "payloadDigest",
                              cJSON_CreateString(PAYLOAD_A));
    assert_int_equal(audit_receipt_ref(ref, copy, f.release), 0);
    assert_string_not_equal(ref, json_str(f.plan.receipt, "auditRef", NULL));
    cJSON_Delete(copy);
    fx_free(&f);
}

/* A refusal of either digest blocks (Stalled, looked at again); an unreachable registry waits (Reconciling). */
static void test_image_gate_blocks(void **state)
{
    (void)state;
    fx f = {0};
    verify_release(&f, NULL);
    release_image_verdict v[2] = {
        {B, RELEASE_IMAGE_VERIFIED, "", PAYLOAD_B, "v3", KEY_ID},
        {A, RELEASE_IMAGE_REFUSED, "no cosign signature by key " KEY_ID, "", "", KEY_ID},
    };
    f.obs.images = v;
    f.obs.n_images = 2;
    gate_case(&f, "ImageNotVerified", false);
    const char *msg = json_str(conditions_get(f.plan.status, "GatesPassed"), "message", NULL);
    assert_non_null(strstr(msg, "rollback target " A));
    assert_non_null(strstr(msg, "no cosign signature by key"));
    assert_int_equal(f.plan.requeue_ms, 60000);
    assert_null(json_get(f.plan.status, "imageSignatures", NULL));
    fx_free(&f);

    fx g = {0};
    verify_release(&g, NULL);
    release_image_verdict u[2] = {
        {B, RELEASE_IMAGE_UNREACHABLE, "the registry 127.0.0.1:5000 did not answer", "", "", ""},
        {A, RELEASE_IMAGE_VERIFIED, "", PAYLOAD_A, "v2", KEY_ID},
    };
    g.obs.images = u;
    g.obs.n_images = 2;
    gate_case(&g, "ImageNotVerified", true);
    msg = json_str(conditions_get(g.plan.status, "GatesPassed"), "message", NULL);
    assert_non_null(strstr(msg, "image " B));
    assert_non_null(strstr(msg, "did not answer"));
    fx_free(&g);

    fx h = {0}; /* a verdict on another digest is no verdict on this one */
    verify_release(&h, NULL);
    release_image_verdict w[2] = {
        {C, RELEASE_IMAGE_VERIFIED, "", PAYLOAD_B, "v3", KEY_ID},
        {A, RELEASE_IMAGE_VERIFIED, "", PAYLOAD_A, "v2", KEY_ID},
    };
    h.obs.images = w;
    h.obs.n_images = 2;
    gate_case(&h, "ImageNotVerified", true);
    fx_free(&h);

    fx i = {0}; /* a spec the gate cannot use */
    verify_release(&i, "\"attestations\":[\"\"]");
    gate_case(&i, "InvalidSpec", false);
    assert_non_null(strstr(json_str(conditions_get(i.plan.status, "GatesPassed"), "message", NULL),
                           "spec.image.verify.attestations[0]"));
    fx_free(&i);

    fx j = {0}; /* more attestations than are looked up: refused, never a part of them checked */
    verify_release(&j, "\"attestations\":[\"a1\",\"a2\",\"a3\",\"a4\",\"a5\",\"a6\",\"a7\",\"a8\",\"a9\","
                       "\"a10\",\"a11\",\"a12\",\"a13\",\"a14\",\"a15\",\"a16\",\"a17\"]");
    gate_case(&j, "InvalidSpec", false);
    assert_non_null(strstr(json_str(conditions_get(j.plan.status, "GatesPassed"), "message", NULL), "more than 16"));
    fx_free(&j);
}

static void test_gates_pass_record_target_then_patch(void **state)
{
    (void)state;
    fx f = {0};
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem((f.release = fx_release_new(3, B, NULL)), "metadata"), "finalizers");
    f.deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
    assert_int_equal(decide(&f), 0);
    assert_true(f.plan.add_finalizer);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_string_equal(st_str(&f, "rollbackTarget"), A);
    assert_string_equal(st_str(&f, "releaseID"), "5dee29fd7e28");
    assert_string_equal(st_str(&f, "currentDigest"), A);
    assert_non_null(st_str(&f, "rolloutStartedAt"));
    assert_cond(&f, "GatesPassed", "True", "GatesPassed");
    assert_cond(&f, "RolledOut", "False", "RollingOut");
    assert_cond(&f, "Reconciling", "True", "RollingOut");
    assert_event(&f, "GatesPassed");
    assert_event(&f, "RolloutStarted");
    /* only the image, the two template annotations (no bundle here) and the owner, with a precondition */
    assert_patch_has(&f, "\"resourceVersion\":\"77\"");
    assert_patch_has(&f, "\"governance.kfm.dev/release-owner\":\"kfm/kfm-api\"");
    assert_patch_has(&f, "\"governance.kfm.dev/release-id\":\"5dee29fd7e28\"");
    assert_patch_has(&f, "{\"name\":\"api\",\"image\":\"" REPO "@" B "\"}");
    assert_null(strstr(f.plan.deployment_patch, "sidecar"));
    assert_null(strstr(f.plan.deployment_patch, "policy-bundle-digest"));
    assert_null(strstr(f.plan.deployment_patch, "replicas"));
    fx_free(&f);
}

static void test_restart_between_target_and_patch(void **state)
{
    (void)state;
    fx f = {0};
    start_rollout(&f);
    fx_apply(&f); /* the status write landed, the patch did not */
    f.obs.now = T0 + 5;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_patch_has(&f, REPO "@" B);
    assert_null(f.plan.status); /* the target is not recorded again */

    /* and when the patch did land before the crash: B is never recorded as the target */
    cJSON_Delete(f.deployment);
    f.deployment = fx_deployment_new(REPO "@" B, 3, false, "kfm/kfm-api");
    assert_int_equal(decide(&f), 0);
    assert_null(f.plan.deployment_patch);
    const char *target = json_str(f.plan.status ? f.plan.status : json_get(f.release, "status", NULL), "rollbackTarget",
                                  NULL);
    assert_string_equal(target, A);
    fx_free(&f);
}

static void test_rollout_waits_then_verifies(void **state)
{
    (void)state;
    fx f = {0};
    start_rollout(&f);
    fx_apply(&f);
    /* new pods coming, one old pod left */
    cJSON_Delete(f.deployment);
    f.deployment = fx_deployment_new(REPO "@" B, 3, true, "kfm/kfm-api");
    for (size_t i = 0; i < f.n_pods; i++)
        cJSON_Delete(f.pods[i]);
    f.n_pods = 0;
    fx_pods(&f, REPO "@" B, 3, false);
    f.pods[f.n_pods++] = fx_pod_new("kfm-api-old", REPO "@" A, NULL, 0);
    f.obs.now = T0 + 10;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_null(f.plan.deployment_patch);
    assert_false(f.plan.run_checks);
    /* the old pod is gone: rolled out, checks asked for */
    cJSON_Delete(f.pods[--f.n_pods]);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Verifying");
    assert_true(f.plan.run_checks);
    assert_string_equal(f.plan.checks_release_id, "5dee29fd7e28");
    assert_cond(&f, "RolledOut", "True", "RolloutComplete");
    assert_cond(&f, "Verified", "Unknown", "Verifying");
    assert_event(&f, "RolloutComplete");
    assert_string_equal(st_str(&f, "currentDigest"), B);
    fx_free(&f);
}

static void to_verifying(fx *f)
{
    start_rollout(f);
    fx_apply(f);
    cJSON_Delete(f->deployment);
    f->deployment = fx_deployment_new(REPO "@" B, 3, true, "kfm/kfm-api");
    for (size_t i = 0; i < f->n_pods; i++)
        cJSON_Delete(f->pods[i]);
    f->n_pods = 0;
    fx_pods(f, REPO "@" B, 3, false);
    f->obs.now = T0 + 20;
    assert_int_equal(decide(f), 0);
    assert_string_equal(f->plan.phase, "Verifying");
    fx_apply(f);
}

/* sha256 of [{"httpStatus":200,"latencyMs":3,"name":"health","passed":true},{"httpStatus":200,"latencyMs":5,"name":"focus-ask","passed":true}] */
#define RESULTS_SHA256 "044be6d2c9f8a041f0fdd190e7243a32577623f25f23fe4893e650e4790b368e"
#define PASS_HEALTH                                                                                                    \
    "[{\"name\":\"health\",\"passed\":true,\"httpStatus\":200,\"latencyMs\":3},"                                       \
    "{\"name\":\"focus-ask\",\"passed\":true,\"httpStatus\":200,\"latencyMs\":5}]"
#define FAIL_FOCUS                                                                                                     \
    "[{\"name\":\"health\",\"passed\":true},{\"name\":\"focus-ask\",\"passed\":false,"                                 \
    "\"httpStatus\":200,\"trigger\":\"UncitedAnswer\",\"message\":\"answer has no citations and did not abstain\"}]"

/* A time of the plan's status (or, without one, of the release's), as seconds; -1 when absent. */
static long st_time(const fx *f, const char *k1, const char *k2)
{
    const cJSON *st = f->plan.status ? f->plan.status : json_get(f->release, "status", NULL);
    const char *s = json_str(st, k1, k2, NULL);
    time_t t;
    return s && timefmt_parse(&t, s) == 0 ? (long)t : -1;
}

/* The checks ran from started to finished (seconds after T0). */
static void fx_run(fx *f, long started, long finished, const char *results)
{
    fx_checks(f, "5dee29fd7e28", results);
    f->obs.checks.started_at = T0 + started;
    f->obs.checks.finished_at = T0 + finished;
}

/* Verifying's run passed at T0+21: Observing from T0+21 to T0+81 (the defaults: 60 s, rechecks every 15 s). */
static void to_observing(fx *f)
{
    to_verifying(f);
    f->obs.now = T0 + 21;
    fx_run(f, 21, 21, PASS_HEALTH);
    assert_int_equal(decide(f), 0);
    assert_string_equal(f->plan.phase, "Observing");
    fx_apply(f);
    f->obs.checks.ran = false;
}

static void test_verify_observe_succeed(void **state)
{
    (void)state;
    fx f = {0};
    to_verifying(&f);
    f.obs.now = T0 + 21;
    fx_checks(&f, "5dee29fd7e28", PASS_HEALTH);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Observing");
    assert_cond(&f, "Verified", "True", "ChecksPassed");
    /* the first recheck is 15 s away (the window is 60 s) */
    assert_int_equal(f.plan.requeue_ms, 15500);
    assert_int_equal(st_time(&f, "verification", "observingSince"), T0 + 21);
    assert_int_equal(cJSON_GetArraySize(json_get(f.plan.status, "verification", "results", NULL)), 2);
    fx_apply(&f);
    f.obs.checks.ran = false;

    /* rechecks at T0+36, 51, 66 pass */
    for (long t = 36; t <= 66; t += 15) {
        f.obs.now = T0 + t;
        assert_int_equal(decide(&f), 0);
        assert_true(f.plan.run_checks);
        fx_run(&f, t, t, PASS_HEALTH);
        assert_int_equal(decide(&f), 0);
        assert_string_equal(f.plan.phase, "Observing");
        fx_apply(&f);
        f.obs.checks.ran = false;
    }
    /* one second before the observation ends: wait */
    f.obs.now = T0 + 80;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Observing");
    assert_false(f.plan.run_checks);
    assert_int_equal(f.plan.requeue_ms, 1000);
    assert_null(f.plan.status);
    /* at the end: the final run first */
    f.obs.now = T0 + 81;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Observing");
    assert_true(f.plan.run_checks);
    fx_run(&f, 81, 82, PASS_HEALTH);
    f.obs.now = T0 + 82;
    /* it passed: Succeeded, Ready, a sealed receipt */
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Succeeded");
    assert_int_equal(st_time(&f, "verification", "startedAt"), T0 + 81);
    assert_cond(&f, "Ready", "True", "Succeeded");
    assert_cond(&f, "Reconciling", NULL, NULL);
    assert_cond(&f, "Stalled", NULL, NULL);
    const cJSON *h = json_get(f.plan.status, "history", NULL);
    assert_int_equal(cJSON_GetArraySize(h), 1);
    const cJSON *e = cJSON_GetArrayItem(h, 0);
    assert_string_equal(json_str(e, "outcome", NULL), "Succeeded");
    assert_string_equal(json_str(e, "digest", NULL), B);
    assert_string_equal(json_str(e, "previousDigest", NULL), A);
    assert_int_equal(strlen(json_str(e, "auditRef", NULL)), 71);
    assert_ptr_equal(f.plan.receipt, e);
    assert_event(&f, "ReleaseSucceeded");
    /* the receipt seals the decision's inputs: the images and the results that decided it, with their digest */
    assert_string_equal(json_str(e, "image", NULL), REPO "@" B);
    assert_string_equal(json_str(e, "rollbackImage", NULL), REPO "@" A);
    assert_null(json_get(e, "message", NULL));
    const cJSON *sealed = json_get(e, "verification", NULL);
    assert_true(cJSON_Compare(sealed, json_get(f.plan.status, "verification", "results", NULL), true));
    char digest[AUDIT_REF_SIZE];
    assert_int_equal(audit_results_digest(digest, sealed), 0);
    assert_string_equal(json_str(e, "verificationDigest", NULL), digest);
    /* python3: canonical JSON of the two results, sha256 */
    assert_string_equal(digest, "sha256:" RESULTS_SHA256);
    fx_apply(&f);
    /* terminal: nothing more */
    f.obs.checks.ran = false;
    f.obs.now = T0 + 5000;
    assert_int_equal(decide(&f), 0);
    assert_null(f.plan.status);
    assert_null(f.plan.deployment_patch);
    assert_int_equal(f.plan.n_events, 0);
    fx_free(&f);
}

/* Before recheckSeconds nothing runs and the requeue is the time left; then a run is asked; a passing one replaces status.verification. */
static void test_observe_recheck_schedule(void **state)
{
    (void)state;
    fx f = {0};
    to_observing(&f);
    f.obs.now = T0 + 25;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Observing");
    assert_false(f.plan.run_checks);
    assert_int_equal(f.plan.requeue_ms, 11000);
    assert_null(f.plan.status);
    f.obs.now = T0 + 36;
    assert_int_equal(decide(&f), 0);
    assert_true(f.plan.run_checks);
    assert_string_equal(f.plan.checks_release_id, "5dee29fd7e28");
    assert_null(f.plan.deployment_patch);
    assert_int_equal(f.plan.n_events, 0);
    fx_run(&f, 36, 37, PASS_HEALTH);
    f.obs.now = T0 + 37;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Observing");
    assert_false(f.plan.run_checks);
    assert_int_equal(st_time(&f, "verification", "startedAt"), T0 + 36);
    assert_int_equal(st_time(&f, "verification", "finishedAt"), T0 + 37);
    assert_int_equal(st_time(&f, "verification", "observingSince"), T0 + 21);
    assert_int_equal(cJSON_GetArraySize(json_get(f.plan.status, "verification", "results", NULL)), 2);
    assert_cond(&f, "Verified", "True", "ChecksPassed");
    assert_int_equal(f.plan.requeue_ms, 15000); /* from the end of this run */
    fx_apply(&f);
    f.obs.checks.ran = false;
    /* the next one counts from the end of the last */
    f.obs.now = T0 + 51;
    assert_int_equal(decide(&f), 0);
    assert_false(f.plan.run_checks);
    assert_int_equal(f.plan.requeue_ms, 1000);
    fx_free(&f);
}

/* spec.rollout.recheckSeconds sets the interval; a recheck is never later than the end of the window. */
static void test_observe_recheck_seconds(void **state)
{
    (void)state;
    fx f = {0};
    to_observing(&f);
    cJSON_AddItemToObject(cJSON_GetObjectItem(f.release, "spec"), "rollout",
                          fx_parse("{\"observationSeconds\":30,\"recheckSeconds\":4}"));
    f.obs.now = T0 + 22;
    assert_int_equal(decide(&f), 0);
    assert_false(f.plan.run_checks);
    assert_int_equal(f.plan.requeue_ms, 3000);
    f.obs.now = T0 + 25;
    assert_int_equal(decide(&f), 0);
    assert_true(f.plan.run_checks);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(f.release, "spec"), "rollout");
    cJSON_AddItemToObject(cJSON_GetObjectItem(f.release, "spec"), "rollout",
                          fx_parse("{\"observationSeconds\":10,\"recheckSeconds\":600}"));
    f.obs.now = T0 + 22;
    assert_int_equal(decide(&f), 0);
    assert_false(f.plan.run_checks);
    assert_int_equal(f.plan.requeue_ms, 9000); /* the end, T0+31 */
    fx_free(&f);
}

/* A fresh failing recheck fires its trigger and starts the rollback, exactly as in Verifying. */
static void test_observe_recheck_failure_rolls_back(void **state)
{
    (void)state;
    fx f = {0};
    to_observing(&f);
    f.obs.now = T0 + 37;
    fx_run(&f, 36, 37, FAIL_FOCUS);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_cond(&f, "Verified", "False", "UncitedAnswer");
    assert_cond(&f, "RolledBack", "False", "RollingBack");
    assert_string_equal(json_str(f.plan.status, "lastRollback", "trigger", NULL), "UncitedAnswer");
    assert_string_equal(json_str(f.plan.status, "lastRollback", "fromDigest", NULL), B);
    assert_string_equal(json_str(f.plan.status, "lastRollback", "toDigest", NULL), A);
    assert_non_null(strstr(json_str(f.plan.status, "lastRollback", "message", NULL), "check focus-ask failed"));
    assert_int_equal(st_time(&f, "verification", "startedAt"), T0 + 36);
    assert_int_equal(cJSON_GetArraySize(json_get(f.plan.status, "verification", "results", NULL)), 2);
    assert_patch_has(&f, "{\"name\":\"api\",\"image\":\"" REPO "@" A "\"}");
    assert_event(&f, "TriggerFired");
    assert_event(&f, "RollbackTriggered");
    assert_string_equal(release_plan_rollback_trigger(&f.plan), "UncitedAnswer");
    fx_free(&f);
}

/* The final run at the end: Succeeded only after it, and a failing one (a membrane check here) rolls back. */
static void test_observe_final_run(void **state)
{
    (void)state;
    fx f = {0};
    to_observing(&f);
    cJSON_AddItemToObject(cJSON_GetObjectItem(f.release, "spec"), "rollout", fx_parse("{\"recheckSeconds\":600}"));
    /* a run that started before the end is not the final one, even when it finishes after it */
    f.obs.now = T0 + 82;
    fx_run(&f, 80, 82, PASS_HEALTH);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Observing");
    assert_true(f.plan.run_checks);
    assert_false(has_event(&f, "ReleaseSucceeded"));
    fx_apply(&f);
    f.obs.checks.ran = false;
    /* without a run in hand, past the end: the final run is asked, never Succeeded */
    f.obs.now = T0 + 200;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Observing");
    assert_true(f.plan.run_checks);
    assert_null(f.plan.status);
    /* the final run fails a membrane check: MembraneIntact=False, MembraneBreach rolls back */
    fx_run(&f, 200, 201,
           "[{\"name\":\"health\",\"passed\":true},{\"name\":\"membrane-networkpolicy\",\"passed\":false,"
           "\"trigger\":\"MembraneBreach\",\"message\":\"pod kfm-ui can reach postgis:5432\"}]");
    f.obs.now = T0 + 201;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_cond(&f, "MembraneIntact", "False", "MembraneBreach");
    assert_cond(&f, "Verified", "False", "MembraneBreach");
    assert_string_equal(json_str(f.plan.status, "lastRollback", "trigger", NULL), "MembraneBreach");
    assert_patch_has(&f, REPO "@" A);
    assert_null(json_get(f.plan.status, "history", NULL));
    fx_free(&f);
}

/* A stale run (it started before the last judged run finished) is not judged: no rollback on it, a fresh one is asked. */
static void test_observe_stale_run_not_judged(void **state)
{
    (void)state;
    fx f = {0};
    to_observing(&f);
    f.obs.now = T0 + 37;
    fx_run(&f, 36, 37, PASS_HEALTH);
    assert_int_equal(decide(&f), 0);
    fx_apply(&f);
    f.obs.now = T0 + 52;
    fx_run(&f, 30, 31, FAIL_FOCUS);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Observing");
    assert_null(f.plan.status); /* status.verification still shows the run of T0+36 */
    assert_null(f.plan.deployment_patch);
    assert_int_equal(f.plan.n_events, 0);
    assert_true(f.plan.run_checks);
    /* nor a run for another release */
    fx_checks(&f, "0123456789ab", FAIL_FOCUS);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Observing");
    assert_null(f.plan.status);
    assert_true(f.plan.run_checks);
    /* past the end, a stale passing run is no final run */
    f.obs.now = T0 + 90;
    fx_run(&f, 30, 31, PASS_HEALTH);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Observing");
    assert_null(f.plan.status);
    assert_true(f.plan.run_checks);
    fx_free(&f);
}

/* A restart mid-Observing keeps the window (from the status) and still owes the final run. */
static void test_observe_restart_keeps_window(void **state)
{
    (void)state;
    fx f = {0};
    to_observing(&f);
    f.obs.now = T0 + 37;
    fx_run(&f, 36, 37, PASS_HEALTH);
    assert_int_equal(decide(&f), 0);
    fx_apply(&f);
    /* a new process: no run in hand, only the status */
    f.obs.checks = (release_checks){0};
    f.obs.now = T0 + 40;
    assert_int_equal(decide(&f), 0);
    assert_false(f.plan.run_checks);
    assert_int_equal(f.plan.requeue_ms, 12000);
    assert_null(f.plan.status);
    f.obs.now = T0 + 95;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Observing");
    assert_true(f.plan.run_checks);
    assert_null(f.plan.status);
    /* a status an earlier version wrote (no observingSince) counts from its Verifying run */
    cJSON *v = (cJSON *)json_get(f.release, "status", "verification", NULL);
    cJSON_DeleteItemFromObject(v, "observingSince");
    cJSON_ReplaceItemInObject(v, "finishedAt", cJSON_CreateString("2026-11-18T11:06:59Z")); /* T0+19 */
    cJSON_ReplaceItemInObject(v, "startedAt", cJSON_CreateString("2026-11-18T11:06:58Z"));
    f.obs.now = T0 + 30;
    assert_int_equal(decide(&f), 0);
    assert_false(f.plan.run_checks);
    assert_int_equal(st_time(&f, "verification", "observingSince"), T0 + 19);
    assert_int_equal(f.plan.requeue_ms, 4000); /* the recheck due 15 s after that run */
    fx_free(&f);
}

/* observationSeconds 0: no window, the Verifying run is the last. */
static void test_observe_zero_seconds(void **state)
{
    (void)state;
    fx f = {0};
    to_verifying(&f);
    cJSON_AddItemToObject(cJSON_GetObjectItem(f.release, "spec"), "rollout", fx_parse("{\"observationSeconds\":0}"));
    f.obs.now = T0 + 21;
    fx_run(&f, 21, 21, PASS_HEALTH);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Observing");
    fx_apply(&f);
    f.obs.checks.ran = false;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Succeeded");
    assert_false(f.plan.run_checks);
    fx_free(&f);
}

/* ---- triggers and rollback ----------------------------------------------- */

/* The rollout patch records the target on the Deployment: one write records it and rolls. */
static void test_rollout_patch_records_the_target(void **state)
{
    (void)state;
    fx f = {0};
    start_rollout(&f);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_patch_has(&f, "\"governance.kfm.dev/rollback-image\":\"" REPO "@" A "\"");
    assert_patch_has(&f, "\"governance.kfm.dev/rollback-for\":\"5dee29fd7e28\"");
    assert_patch_has(&f, "{\"name\":\"api\",\"image\":\"" REPO "@" B "\"}");
    /* the status follows with the same record */
    assert_string_equal(st_str(&f, "rollbackTarget"), A);
    assert_string_equal(st_str(&f, "rollbackImage"), REPO "@" A);
    fx_free(&f);
}

/*
 * The patch went through and the operator stopped before the status write:
 * the Deployment runs B, the status knows nothing of this release. The
 * annotation of this releaseID is the record: the target is A, never B.
 */
static void test_restart_between_patch_and_status(void **state)
{
    (void)state;
    fx f = {0};
    start_rollout(&f);
    fx_patch_landed(&f, REPO "@" B, false); /* the status write did not follow */
    f.obs.now = T0 + 5;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_string_equal(st_str(&f, "releaseID"), "5dee29fd7e28");
    assert_string_equal(st_str(&f, "rollbackTarget"), A);
    assert_string_equal(st_str(&f, "rollbackImage"), REPO "@" A);
    assert_null(f.plan.deployment_patch); /* the image is not patched again */
    assert_event(&f, "RolloutStarted");   /* the Events of the lost status write go out now */
    fx_apply(&f);
    /* and a crash loop of B rolls back to A */
    f.pods[f.n_pods++] = fx_pod_new("kfm-api-new", REPO "@" B, "CrashLoopBackOff", 5);
    f.obs.now = T0 + 30;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_patch_has(&f, "{\"name\":\"api\",\"image\":\"" REPO "@" A "\"}");
    fx_free(&f);

    /* rolled out already: straight to Verifying, still with A as the target */
    fx g = {0};
    start_rollout(&g);
    fx_patch_landed(&g, REPO "@" B, true);
    assert_int_equal(decide(&g), 0);
    assert_string_equal(g.plan.phase, "Verifying");
    assert_string_equal(st_str(&g, "rollbackTarget"), A);
    fx_free(&g);
}

/*
 * A generation cut short between its patch and its status write: the status
 * still names an earlier release that succeeded, but the Deployment's record
 * names one the status never heard of. What that one rolled out (B) was
 * never verified: the next generation keeps the record's target A.
 */
static void test_unrecorded_release_keeps_its_target(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(4, C, NULL);
    fx_status(&f, "{\"observedGeneration\":2,\"phase\":\"Succeeded\",\"releaseID\":\"0123456789ab\","
                  "\"rollbackTarget\":\"" C "\",\"history\":[{\"releaseID\":\"0123456789ab\",\"generation\":2,"
                  "\"digest\":\"" A "\",\"outcome\":\"Succeeded\"}]}");
    f.deployment = fx_deployment_new(REPO "@" B, 3, true, "kfm/kfm-api");
    cJSON *ann = (cJSON *)json_get(f.deployment, "metadata", "annotations", NULL);
    cJSON_AddStringToObject(ann, "governance.kfm.dev/rollback-for", "5dee29fd7e28");
    cJSON_AddStringToObject(ann, "governance.kfm.dev/rollback-image", REPO "@" A);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_string_equal(st_str(&f, "rollbackTarget"), A);
    /* another owner's record is not ours to read */
    cJSON_ReplaceItemInObject(ann, "governance.kfm.dev/release-owner", cJSON_CreateString("kfm/other"));
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Gating");
    fx_free(&f);
}

/*
 * The rollback is one patch (back to the recorded image, rolled-back-from and
 * the trigger on the Deployment), then the status write. A restart between
 * the two records the rollback from the Deployment instead of rolling
 * forward to B again.
 */
static void test_restart_between_rollback_patch_and_status(void **state)
{
    (void)state;
    const char *phases[] = {"RollingOut", "Verifying"};
    for (size_t k = 0; k < 2; k++) {
        fx f = {0};
        if (k == 0) {
            start_rollout(&f);
            fx_apply(&f);
            fx_patch_landed(&f, REPO "@" B, false);
            f.pods[f.n_pods++] = fx_pod_new("kfm-api-new", REPO "@" B, "CrashLoopBackOff", 5);
        } else {
            to_verifying(&f);
            cJSON_AddStringToObject((cJSON *)json_get(f.deployment, "metadata", "annotations", NULL),
                                    "governance.kfm.dev/rollback-for", "5dee29fd7e28");
            fx_patch_landed(&f, REPO "@" B, true);
            f.pods[f.n_pods++] = fx_pod_new("kfm-api-new", REPO "@" B, "CrashLoopBackOff", 5);
        }
        f.obs.now = T0 + 30;
        assert_int_equal(decide(&f), 0);
        assert_string_equal(f.plan.phase, "RollingBack");
        assert_patch_has(&f, "\"governance.kfm.dev/rolled-back-from\":\"" REPO "@" B "\"");
        assert_patch_has(&f, "\"governance.kfm.dev/rollback-trigger\":\"CrashLoop\"");
        /* the patch went through, the status write did not: the release still says phases[k] */
        fx_patch_landed(&f, REPO "@" A, false);
        assert_string_equal(json_str(f.release, "status", "phase", NULL), phases[k]);
        f.obs.now = T0 + 35;
        assert_int_equal(decide(&f), 0);
        assert_string_equal(f.plan.phase, "RollingBack");
        assert_null(f.plan.deployment_patch); /* neither forward to B nor back again */
        assert_false(f.plan.run_checks);
        assert_string_equal(json_str(f.plan.status, "lastRollback", "trigger", NULL), "CrashLoop");
        assert_string_equal(json_str(f.plan.status, "lastRollback", "fromDigest", NULL), B);
        assert_string_equal(json_str(f.plan.status, "lastRollback", "toDigest", NULL), A);
        assert_string_equal(release_plan_rollback_trigger(&f.plan), "CrashLoop"); /* counted once, now */
        fx_apply(&f);
        /* then it goes on as any rollback: rolled out, the checks against A */
        fx_patch_landed(&f, REPO "@" A, true);
        f.obs.now = T0 + 40;
        assert_int_equal(decide(&f), 0);
        assert_string_equal(f.plan.phase, "RollingBack");
        assert_null(f.plan.deployment_patch);
        assert_true(f.plan.run_checks);
        fx_free(&f);
    }
}

static void test_crashloop_rolls_back(void **state)
{
    (void)state;
    fx f = {0};
    start_rollout(&f);
    fx_apply(&f);
    cJSON_Delete(f.deployment);
    f.deployment = fx_deployment_new(REPO "@" B, 3, false, "kfm/kfm-api");
    f.pods[f.n_pods++] = fx_pod_new("kfm-api-new", REPO "@" B, "CrashLoopBackOff", 5);
    f.obs.now = T0 + 30;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_event(&f, "TriggerFired");
    assert_event(&f, "RollbackTriggered");
    assert_patch_has(&f, "{\"name\":\"api\",\"image\":\"" REPO "@" A "\"}");
    assert_string_equal(json_str(f.plan.status, "lastRollback", "trigger", NULL), "CrashLoop");
    assert_string_equal(json_str(f.plan.status, "lastRollback", "fromDigest", NULL), B);
    assert_string_equal(json_str(f.plan.status, "lastRollback", "toDigest", NULL), A);
    assert_cond(&f, "RolledBack", "False", "RollingBack");
    fx_free(&f);
}

/* A rollback whose patch did not get through is patched again, and is still one rollback. */
static void test_rollback_patch_retried_counts_once(void **state)
{
    (void)state;
    fx f = {0};
    start_rollout(&f);
    assert_null(release_plan_rollback_trigger(&f.plan)); /* a rollout starts no rollback */
    fx_apply(&f);
    cJSON_Delete(f.deployment);
    f.deployment = fx_deployment_new(REPO "@" B, 3, false, "kfm/kfm-api");
    f.pods[f.n_pods++] = fx_pod_new("kfm-api-new", REPO "@" B, "CrashLoopBackOff", 5);
    f.obs.now = T0 + 30;
    assert_int_equal(decide(&f), 0);
    assert_non_null(release_plan_rollback_trigger(&f.plan));
    assert_string_equal(release_plan_rollback_trigger(&f.plan), "CrashLoop");
    char *patch = strdup(f.plan.deployment_patch);
    /* the status write was done, the patch was answered 429 until the client gave up */
    fx_apply(&f);
    f.obs.now = T0 + 45;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_string_equal(f.plan.deployment_patch, patch); /* the same patch goes out again */
    assert_null(release_plan_rollback_trigger(&f.plan)); /* not a second rollback */
    assert_false(has_event(&f, "RollbackTriggered"));
    free(patch);
    fx_free(&f);
}

/* A status write whose answer was lost: done when the release read back carries exactly that status. */
static void test_status_landed(void **state)
{
    (void)state;
    fx f = {0};
    start_rollout(&f);
    uint64_t before = ryw_status_hash(json_get(f.release, "status", NULL)); /* none yet */
    cJSON *server = cJSON_Duplicate(f.release, true);
    assert_false(ryw_status_matches(f.plan.status, server, before)); /* the write did not land */
    cJSON_AddItemToObject(server, "status", cJSON_Duplicate(f.plan.status, true));
    assert_true(ryw_status_matches(f.plan.status, server, before)); /* it did */
    /* the same status, already written by this process: a stale view deciding it again, not a lost answer */
    assert_false(ryw_status_matches(f.plan.status, server, ryw_status_hash(f.plan.status)));
    /* someone else's status, one field apart, is not ours */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(server, "status"), "phase", cJSON_CreateString("Succeeded"));
    assert_false(ryw_status_matches(f.plan.status, server, before));
    assert_false(ryw_status_matches(NULL, server, before));
    assert_false(ryw_status_matches(f.plan.status, NULL, before));
    assert_int_equal(ryw_status_hash(NULL), 0);
    assert_true(ryw_status_hash(f.plan.status) != ryw_status_hash(json_get(server, "status", NULL)));
    cJSON_Delete(server);
    fx_free(&f);
}

static void test_restart_threshold_counts_as_crashloop(void **state)
{
    (void)state;
    fx f = {0};
    start_rollout(&f);
    fx_apply(&f);
    f.pods[f.n_pods++] = fx_pod_new("kfm-api-new", REPO "@" B, NULL, 3);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    /* below the threshold: nothing */
    cJSON_SetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(json_get(f.pods[f.n_pods - 1], "status",
                                                                         "containerStatuses", NULL),
                                                                0),
                                             "restartCount"),
                         2);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingOut");
    fx_free(&f);
}

static void test_progress_deadline_clock_edge(void **state)
{
    (void)state;
    fx f = {0};
    start_rollout(&f);
    fx_apply(&f);
    cJSON_Delete(f.deployment);
    f.deployment = fx_deployment_new(REPO "@" B, 3, false, "kfm/kfm-api");
    f.obs.now = T0 + 599;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_int_equal(f.plan.requeue_ms, 2000);
    f.obs.now = T0 + 600;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_string_equal(json_str(f.plan.status, "lastRollback", "trigger", NULL), "ProgressDeadline");
    fx_free(&f);
}

/*
 * A status without rolloutStartedAt (an older operator's, a hand edit) does
 * not disable the progress deadline: the rollout counts as started when first
 * seen so, and that start is written.
 */
static void test_progress_deadline_without_start(void **state)
{
    (void)state;
    fx f = {0};
    start_rollout(&f);
    fx_apply(&f);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(f.release, "status"), "rolloutStartedAt");
    cJSON_Delete(f.deployment);
    f.deployment = fx_deployment_new(REPO "@" B, 3, false, "kfm/kfm-api");
    f.obs.now = T0 + 100;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_true(st_time(&f, "rolloutStartedAt", NULL) == T0 + 100); /* recorded */
    assert_int_equal(f.plan.requeue_ms, 601000);
    fx_apply(&f);
    f.obs.now = T0 + 700;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_string_equal(json_str(f.plan.status, "lastRollback", "trigger", NULL), "ProgressDeadline");
    fx_apply(&f);
    /* a rollback without lastRollback.time: the same, from when it is first seen */
    cJSON_DeleteItemFromObject((cJSON *)json_get(f.release, "status", "lastRollback", NULL), "time");
    fx_patch_landed(&f, REPO "@" A, false);
    f.obs.now = T0 + 800;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_true(st_time(&f, "lastRollback", "time") == T0 + 800);
    fx_apply(&f);
    f.obs.now = T0 + 1400;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Failed");
    fx_free(&f);
}

/*
 * A Deployment scaled to 0 replicas (or whose replicas cannot be seen) is
 * never a completed rollout: nothing runs the digest to verify. RolledOut
 * says so, and the progress deadline rolls back.
 */
static void test_zero_replicas_never_complete(void **state)
{
    (void)state;
    for (int absent = 0; absent < 2; absent++) {
        fx f = {0};
        start_rollout(&f);
        fx_apply(&f);
        cJSON_Delete(f.deployment);
        f.deployment = fx_deployment_new(REPO "@" B, 0, true, "kfm/kfm-api");
        if (absent)
            cJSON_DeleteItemFromObject(cJSON_GetObjectItem(f.deployment, "spec"), "replicas");
        for (size_t i = 0; i < f.n_pods; i++)
            cJSON_Delete(f.pods[i]);
        f.n_pods = 0;
        f.obs.now = T0 + 10;
        assert_int_equal(decide(&f), 0);
        assert_string_equal(f.plan.phase, "RollingOut");
        assert_false(f.plan.run_checks);
        assert_cond(&f, "RolledOut", "False", "NoReplicas");
        const char *msg = json_str(conditions_get(f.plan.status, "RolledOut"), "message", NULL);
        assert_non_null(strstr(msg, absent ? "shows no spec.replicas" : "scaled to 0 replicas"));
        fx_apply(&f);
        f.obs.now = T0 + 600;
        assert_int_equal(decide(&f), 0);
        assert_string_equal(f.plan.phase, "RollingBack");
        assert_non_null(strstr(json_str(f.plan.status, "lastRollback", "message", NULL), "cannot be"));
        fx_free(&f);
    }
    /* the GitOps revert path too: the digest already runs, on no replica */
    fx g = {0};
    g.release = fx_release_new(3, B, "\"rollbackTarget\":{\"digest\":\"" A "\"}");
    g.deployment = fx_deployment_new(REPO "@" B, 0, true, NULL);
    assert_int_equal(decide(&g), 0);
    assert_string_equal(g.plan.phase, "RollingOut");
    assert_false(g.plan.run_checks);
    fx_free(&g);
}

static void test_progress_deadline_condition(void **state)
{
    (void)state;
    fx f = {0};
    start_rollout(&f);
    fx_apply(&f);
    cJSON_Delete(f.deployment);
    f.deployment = fx_deployment_new(REPO "@" B, 3, false, "kfm/kfm-api");
    cJSON_AddItemToObject(cJSON_GetObjectItem(f.deployment, "status"), "conditions",
                          fx_parse("[{\"type\":\"Progressing\",\"status\":\"False\",\"reason\":"
                                   "\"ProgressDeadlineExceeded\"}]"));
    f.obs.now = T0 + 60;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(json_str(f.plan.status, "lastRollback", "trigger", NULL), "ProgressDeadline");
    fx_free(&f);
}

static void test_no_automatic_rollback(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(3, B, "\"rollback\":{\"automatic\":false}");
    f.deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
    assert_int_equal(decide(&f), 0);
    fx_apply(&f);
    f.pods[f.n_pods++] = fx_pod_new("kfm-api-new", REPO "@" B, "CrashLoopBackOff", 5);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Failed");
    assert_null(f.plan.deployment_patch);
    assert_cond(&f, "Stalled", "True", "CrashLoop");
    assert_cond(&f, "Ready", "False", "CrashLoop");
    assert_event(&f, "TriggerFired");
    assert_non_null(strstr(f.plan.events[0].message, "CrashLoop"));
    bool says_what_to_do = false;
    for (size_t i = 0; i < f.plan.n_events; i++)
        says_what_to_do = says_what_to_do || strstr(f.plan.events[i].message, "roll back by hand");
    assert_true(says_what_to_do);
    assert_string_equal(json_str(cJSON_GetArrayItem(json_get(f.plan.status, "history", NULL), 0), "outcome", NULL),
                        "Failed");
    fx_free(&f);
}

static void test_trigger_not_listed(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(3, B, "\"rollback\":{\"triggers\":[\"SmokeFailure\"]}");
    f.deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
    assert_int_equal(decide(&f), 0);
    fx_apply(&f);
    f.pods[f.n_pods++] = fx_pod_new("kfm-api-new", REPO "@" B, "CrashLoopBackOff", 5);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Failed");
    assert_null(f.plan.deployment_patch);
    fx_free(&f);
}

static void test_failed_check_rolls_back_then_rolled_back(void **state)
{
    (void)state;
    fx f = {0};
    to_verifying(&f);
    fx_checks(&f, "5dee29fd7e28",
              "[{\"name\":\"health\",\"passed\":true},"
              "{\"name\":\"focus-ask\",\"passed\":false,\"httpStatus\":200,\"trigger\":\"UncitedAnswer\","
              "\"message\":\"answer has no citations and did not abstain\"}]");
    f.obs.now = T0 + 22;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_cond(&f, "Verified", "False", "UncitedAnswer");
    assert_string_equal(json_str(f.plan.status, "lastRollback", "trigger", NULL), "UncitedAnswer");
    assert_patch_has(&f, REPO "@" A);
    fx_apply(&f);
    f.obs.checks.ran = false;

    /* the rollback rolls out */
    cJSON_Delete(f.deployment);
    f.deployment = fx_deployment_new(REPO "@" A, 3, true, "kfm/kfm-api");
    for (size_t i = 0; i < f.n_pods; i++)
        cJSON_Delete(f.pods[i]);
    f.n_pods = 0;
    fx_pods(&f, REPO "@" A, 3, false);
    f.obs.now = T0 + 40;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_true(f.plan.run_checks);
    assert_null(f.plan.deployment_patch);

    /* the rolled-back version passes: RolledBack */
    fx_checks(&f, "5dee29fd7e28", "[{\"name\":\"health\",\"passed\":true},{\"name\":\"focus-ask\",\"passed\":true}]");
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RolledBack");
    assert_cond(&f, "Ready", "False", "RolledBack");
    assert_cond(&f, "Stalled", "True", "RolledBack");
    assert_cond(&f, "RolledBack", "True", "RolledBack");
    assert_cond(&f, "Reconciling", NULL, NULL);
    assert_event(&f, "RolledBack");
    const cJSON *e = cJSON_GetArrayItem(json_get(f.plan.status, "history", NULL), 0);
    assert_string_equal(json_str(e, "outcome", NULL), "RolledBack");
    assert_string_equal(json_str(e, "trigger", NULL), "UncitedAnswer");
    /* the trigger's message, and the results of the run that decided the outcome (the rolled-back version's) */
    assert_string_equal(json_str(e, "message", NULL),
                        "check focus-ask failed: answer has no citations and did not abstain");
    assert_string_equal(json_str(e, "image", NULL), REPO "@" B);
    assert_int_equal(cJSON_GetArraySize(json_get(e, "verification", NULL)), 2);
    assert_true(json_bool(false, cJSON_GetArrayItem(json_get(e, "verification", NULL), 1), "passed", NULL));
    fx_apply(&f);

    /* never flap: the failed digest is not rolled out again for this generation */
    f.obs.checks.ran = false;
    f.obs.now = T0 + 4000;
    assert_int_equal(decide(&f), 0);
    assert_null(f.plan.deployment_patch);
    assert_null(f.plan.status);
    fx_free(&f);
}

/* The result of a requested check, by name, in the status written. */
static const cJSON *result_named(const fx *f, const char *name);

/*
 * With spec.verification.slo, slo is asked for with the other checks (a run
 * without its result fails it with SLOBreach, the default triggers roll
 * back on it), and the digest the checks judge is the new one; after the
 * rollback, the rolled-back version is judged as itself: the target's digest.
 */
static void test_slo_judges_the_running_digest(void **state)
{
    (void)state;
    fx f = {0};
    to_verifying(&f);
    cJSON_AddItemToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(f.release, "spec"), "verification"), "slo",
                          fx_parse("{\"prometheusURL\":\"http://prometheus:9090\",\"objectives\":[{\"name\":"
                                   "\"error-rate\",\"query\":\"up\",\"max\":0.01}]}"));
    f.obs.checks.ran = false;
    assert_int_equal(decide(&f), 0);
    assert_true(f.plan.run_checks);
    assert_string_equal(f.plan.checks_digest, B);
    fx_checks(&f, "5dee29fd7e28", "[{\"name\":\"health\",\"passed\":true},{\"name\":\"focus-ask\",\"passed\":true}]");
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_string_equal(json_str(f.plan.status, "lastRollback", "trigger", NULL), "SLOBreach");
    assert_string_equal(json_str(result_named(&f, "slo"), "message", NULL), "no result");
    assert_string_equal(json_str(result_named(&f, "slo"), "trigger", NULL), "SLOBreach");
    fx_apply(&f);
    f.obs.checks.ran = false;

    /* the rollback rolls out: the checks run against the target, A */
    cJSON_Delete(f.deployment);
    f.deployment = fx_deployment_new(REPO "@" A, 3, true, "kfm/kfm-api");
    for (size_t i = 0; i < f.n_pods; i++)
        cJSON_Delete(f.pods[i]);
    f.n_pods = 0;
    fx_pods(&f, REPO "@" A, 3, false);
    f.obs.now = T0 + 40;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_true(f.plan.run_checks);
    assert_string_equal(f.plan.checks_digest, A);
    fx_free(&f);
}

static const cJSON *result_named(const fx *f, const char *name)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, json_get(f->plan.status, "verification", "results", NULL))
        if (strcmp(json_str(r, "name", NULL), name) == 0)
            return r;
    return NULL;
}

/* A requested check without a result fails ("no result") with its row's trigger; every other check passed. */
static void test_missing_result_fires_its_trigger(void **state)
{
    (void)state;
    fx f = {0};
    to_verifying(&f);
    /* health and focus-ask asked for, only health reported */
    fx_checks(&f, "5dee29fd7e28", "[{\"name\":\"health\",\"passed\":true}]");
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_string_equal(json_str(f.plan.status, "lastRollback", "trigger", NULL), "UncitedAnswer");
    assert_cond(&f, "Verified", "False", "UncitedAnswer");
    const cJSON *r = result_named(&f, "focus-ask");
    assert_non_null(r);
    assert_false(json_bool(true, r, "passed", NULL));
    assert_string_equal(json_str(r, "message", NULL), "no result");
    assert_string_equal(json_str(r, "trigger", NULL), "UncitedAnswer");
    fx_free(&f);

    /* the default list is the nine contract checks and published-only; with spec.membrane the membrane checks are
     * asked for too */
    const char *nine = "[{\"name\":\"health\",\"passed\":true},{\"name\":\"ready\",\"passed\":true},"
                       "{\"name\":\"datasets\",\"passed\":true},{\"name\":\"stac-collections\",\"passed\":true},"
                       "{\"name\":\"stac-items\",\"passed\":true},{\"name\":\"evidence-resolve\",\"passed\":true},"
                       "{\"name\":\"focus-ask\",\"passed\":true},{\"name\":\"lineage\",\"passed\":true}";
    char results[2048];
    fx g = {0};
    to_verifying(&g);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(g.release, "spec"), "verification");
    snprintf(results, sizeof(results), "%s]", nine); /* public-restriction missing */
    fx_checks(&g, "5dee29fd7e28", results);
    assert_int_equal(decide(&g), 0);
    assert_string_equal(json_str(g.plan.status, "lastRollback", "trigger", NULL), "PolicyBypass");
    assert_string_equal(json_str(result_named(&g, "public-restriction"), "message", NULL), "no result");
    fx_free(&g);

    fx p = {0};
    to_verifying(&p);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(p.release, "spec"), "verification");
    snprintf(results, sizeof(results), "%s,{\"name\":\"public-restriction\",\"passed\":true}]",
             nine); /* published-only missing: it is in the default list */
    fx_checks(&p, "5dee29fd7e28", results);
    assert_int_equal(decide(&p), 0);
    assert_string_equal(json_str(p.plan.status, "lastRollback", "trigger", NULL), "UnpublishedData");
    assert_string_equal(json_str(result_named(&p, "published-only"), "message", NULL), "no result");
    fx_free(&p);

    fx m = {0};
    to_verifying(&m);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(m.release, "spec"), "verification");
    cJSON_AddItemToObject(cJSON_GetObjectItem(m.release, "spec"), "membrane",
                          fx_parse("{\"apiServiceAccount\":\"kfm-api\",\"probe\":{\"image\":\"busybox\"}}"));
    snprintf(results, sizeof(results),
             "%s,{\"name\":\"public-restriction\",\"passed\":true},{\"name\":\"published-only\",\"passed\":true},"
             "{\"name\":\"membrane-networkpolicy\",\"passed\":true},{\"name\":\"membrane-rbac\",\"passed\":true}]",
             nine);
    fx_checks(&m, "5dee29fd7e28", results); /* membrane-probe missing */
    assert_int_equal(decide(&m), 0);
    assert_string_equal(json_str(m.plan.status, "lastRollback", "trigger", NULL), "MembraneBreach");
    assert_cond(&m, "MembraneIntact", "False", "MembraneBreach");
    assert_string_equal(json_str(result_named(&m, "membrane-probe"), "message", NULL), "no result");
    fx_free(&m);
}

static void test_rollback_verification_fails(void **state)
{
    (void)state;
    fx f = {0};
    to_verifying(&f);
    fx_checks(&f, "5dee29fd7e28",
              "[{\"name\":\"health\",\"passed\":false,\"trigger\":\"SmokeFailure\",\"message\":\"status 500\"}]");
    assert_int_equal(decide(&f), 0);
    fx_apply(&f);
    cJSON_Delete(f.deployment);
    f.deployment = fx_deployment_new(REPO "@" A, 3, true, "kfm/kfm-api");
    for (size_t i = 0; i < f.n_pods; i++)
        cJSON_Delete(f.pods[i]);
    f.n_pods = 0;
    fx_pods(&f, REPO "@" A, 3, false);
    f.obs.checks.ran = false;
    assert_int_equal(decide(&f), 0);
    assert_true(f.plan.run_checks);
    assert_int_equal(f.plan.n_events, 0);
    fx_checks(&f, "5dee29fd7e28",
              "[{\"name\":\"health\",\"passed\":false,\"trigger\":\"SmokeFailure\",\"message\":\"status 500\"}]");
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Failed");
    assert_cond(&f, "Stalled", "True", "RollbackVerificationFailed");
    assert_event(&f, "RollbackFailed");
    assert_null(f.plan.deployment_patch);
    fx_free(&f);
}

static void test_bad_rollback_target_stalls(void **state)
{
    (void)state;
    fx f = {0};
    start_rollout(&f);
    fx_apply(&f);
    f.pods[f.n_pods++] = fx_pod_new("kfm-api-new", REPO "@" B, "CrashLoopBackOff", 5);
    assert_int_equal(decide(&f), 0);
    fx_apply(&f);
    /* the rollback target crash-loops too */
    cJSON_Delete(f.deployment);
    f.deployment = fx_deployment_new(REPO "@" A, 3, false, "kfm/kfm-api");
    f.pods[f.n_pods++] = fx_pod_new("kfm-api-back", REPO "@" A, "CrashLoopBackOff", 4);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Failed");
    assert_cond(&f, "Stalled", "True", "RollbackFailed");
    assert_event(&f, "RollbackFailed");
    assert_null(f.plan.deployment_patch);
    fx_apply(&f);
    /* and it stops touching the Deployment */
    assert_int_equal(decide(&f), 0);
    assert_null(f.plan.deployment_patch);
    assert_null(f.plan.status);
    fx_free(&f);
}

static void test_manual_trigger(void **state)
{
    (void)state;
    fx f = {0};
    to_verifying(&f);
    cJSON_AddItemToObject(cJSON_GetObjectItem(f.release, "metadata"), "annotations",
                          fx_parse("{\"governance.kfm.dev/rollback\":\"true\"}"));
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_true(f.plan.clear_rollback_annotation);
    assert_string_equal(json_str(f.plan.status, "lastRollback", "trigger", NULL), "Manual");
    fx_free(&f);
}

/* The break-glass record: reason and approver go into lastRollback and the receipt; without them a Warning says what to record. */
static void test_manual_trigger_record(void **state)
{
    (void)state;
    fx f = {0};
    to_verifying(&f);
    cJSON_AddItemToObject(cJSON_GetObjectItem(f.release, "metadata"), "annotations",
                          fx_parse("{\"governance.kfm.dev/rollback\":\"true\","
                                   "\"governance.kfm.dev/rollback-reason\":\"INC-7: answers leak restricted rows\","
                                   "\"governance.kfm.dev/rollback-approver\":\"jane@kfm.example\"}"));
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_true(f.plan.clear_rollback_annotation);
    assert_string_equal(json_str(f.plan.status, "lastRollback", "reason", NULL), "INC-7: answers leak restricted rows");
    assert_string_equal(json_str(f.plan.status, "lastRollback", "approver", NULL), "jane@kfm.example");
    assert_false(has_event(&f, "BreakGlassUndocumented"));
    fx_apply(&f);
    /* the annotations are removed; the rollback completes and its receipt keeps the record */
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(f.release, "metadata"), "annotations");
    cJSON_Delete(f.deployment);
    f.deployment = fx_deployment_new(REPO "@" A, 3, true, "kfm/kfm-api");
    for (size_t i = 0; i < f.n_pods; i++)
        cJSON_Delete(f.pods[i]);
    f.n_pods = 0;
    fx_pods(&f, REPO "@" A, 3, false);
    f.obs.now = T0 + 40;
    fx_checks(&f, "5dee29fd7e28", "[{\"name\":\"health\",\"passed\":true},{\"name\":\"focus-ask\",\"passed\":true}]");
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RolledBack");
    assert_non_null(f.plan.receipt);
    assert_string_equal(json_str(f.plan.receipt, "trigger", NULL), "Manual");
    assert_string_equal(json_str(f.plan.receipt, "reason", NULL), "INC-7: answers leak restricted rows");
    assert_string_equal(json_str(f.plan.receipt, "approver", NULL), "jane@kfm.example");
    fx_free(&f);

    /* without them: the rollback still happens, and a Warning names both annotations */
    fx g = {0};
    to_verifying(&g);
    cJSON_AddItemToObject(cJSON_GetObjectItem(g.release, "metadata"), "annotations",
                          fx_parse("{\"governance.kfm.dev/rollback\":\"true\"}"));
    assert_int_equal(decide(&g), 0);
    assert_string_equal(g.plan.phase, "RollingBack");
    assert_true(g.plan.clear_rollback_annotation);
    assert_null(json_str(g.plan.status, "lastRollback", "reason", NULL));
    assert_null(json_str(g.plan.status, "lastRollback", "approver", NULL));
    assert_event(&g, "BreakGlassUndocumented");
    for (size_t i = 0; i < g.plan.n_events; i++)
        if (strcmp(g.plan.events[i].reason, "BreakGlassUndocumented") == 0) {
            assert_string_equal(g.plan.events[i].type, "Warning");
            assert_non_null(strstr(g.plan.events[i].message, "governance.kfm.dev/rollback-reason"));
            assert_non_null(strstr(g.plan.events[i].message, "governance.kfm.dev/rollback-approver"));
        }
    fx_free(&g);

    /* a reason alone: the Warning names the approver that is missing; an overlong reason is cut to what the CRD holds */
    fx h = {0};
    char big[RELEASE_ROLLBACK_REASON_MAX + 64];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    to_verifying(&h);
    cJSON *ann = fx_parse("{\"governance.kfm.dev/rollback\":\"true\"}");
    cJSON_AddStringToObject(ann, "governance.kfm.dev/rollback-reason", big);
    cJSON_AddItemToObject(cJSON_GetObjectItem(h.release, "metadata"), "annotations", ann);
    assert_int_equal(decide(&h), 0);
    assert_int_equal(strlen(json_str(h.plan.status, "lastRollback", "reason", NULL)), RELEASE_ROLLBACK_REASON_MAX);
    assert_event(&h, "BreakGlassUndocumented");
    fx_free(&h);
}

/* On a release that ended without success, the annotation is removed with a Warning saying why nothing happened. */
static void test_manual_trigger_on_an_ended_release(void **state)
{
    (void)state;
    const char *ended[] = {"RolledBack", "Failed"};
    for (int i = 0; i < 2; i++) {
        fx f = {0};
        char st[256], rid[13];
        assert_int_equal(release_id(rid, "kfm", "kfm-api", 5, B), 0);
        f.release = fx_release_new(5, B, NULL);
        snprintf(st, sizeof(st),
                 "{\"observedGeneration\":5,\"phase\":\"%s\",\"releaseID\":\"%s\",\"rollbackTarget\":\"" A "\"}",
                 ended[i], rid);
        fx_status(&f, st);
        cJSON_AddItemToObject(cJSON_GetObjectItem(f.release, "metadata"), "annotations",
                              fx_parse("{\"governance.kfm.dev/rollback\":\"true\"}"));
        f.deployment = fx_deployment_new(REPO "@" A, 3, true, "kfm/kfm-api");
        assert_int_equal(decide(&f), 0);
        assert_string_equal(f.plan.phase, ended[i]);
        assert_true(f.plan.clear_rollback_annotation);
        assert_null(f.plan.deployment_patch);
        assert_event(&f, "RollbackIgnored");
        assert_false(has_event(&f, "TriggerFired"));
        fx_free(&f);
    }
}

/* ---- other behaviour ----------------------------------------------------- */

static void test_gitops_revert_skips_rollout(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(5, A, NULL);
    fx_status(&f, "{\"observedGeneration\":4,\"phase\":\"RolledBack\",\"releaseID\":\"0123456789ab\","
                  "\"rollbackTarget\":\"" A "\"}");
    f.deployment = fx_deployment_new(REPO "@" A, 3, true, "kfm/kfm-api");
    fx_pods(&f, REPO "@" A, 3, false);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Verifying");
    assert_null(f.plan.deployment_patch);
    assert_true(f.plan.run_checks);
    assert_false(has_event(&f, "RolloutStarted"));
    assert_cond(&f, "RolledBack", NULL, NULL);
    fx_free(&f);
}

static void test_suspend(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(3, B, "\"suspend\":true");
    f.deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "Suspended");
    assert_null(f.plan.deployment_patch);
    assert_cond(&f, "Ready", "False", "Suspended");
    assert_cond(&f, "Reconciling", NULL, NULL);
    fx_free(&f);
}

/* A generation that did not verify what it left running: the Deployment's image must not become the target. */
static void target_after(const char *last_outcome, const char *want_target)
{
    fx f = {0};
    char st[512];
    f.release = fx_release_new(4, C, NULL);
    if (last_outcome)
        snprintf(st, sizeof(st),
                 "{\"observedGeneration\":3,\"phase\":\"%s\",\"releaseID\":\"0123456789ab\","
                 "\"rollbackTarget\":\"" A "\",\"history\":[{\"releaseID\":\"0123456789ab\",\"generation\":3,"
                 "\"digest\":\"" B "\",\"outcome\":\"%s\"}]}",
                 last_outcome, last_outcome);
    else /* cut short mid-rollout: no receipt for it */
        snprintf(st, sizeof(st),
                 "{\"observedGeneration\":3,\"phase\":\"RollingOut\",\"releaseID\":\"0123456789ab\","
                 "\"rollbackTarget\":\"" A "\"}");
    fx_status(&f, st);
    f.deployment = fx_deployment_new(REPO "@" B, 3, last_outcome != NULL, "kfm/kfm-api");
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_string_equal(st_str(&f, "rollbackTarget"), want_target);
    assert_patch_has(&f, REPO "@" C);
    fx_free(&f);
}

/*
 * status.rollbackImage: the full reference the container ran, recorded with
 * the target; a rollback patches back to it, not to the new repository with
 * the old digest.
 */
#define OLD_REPO "registry.old.example/kfm/api"
static void test_rollback_image_is_what_ran(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(3, B, NULL);
    f.deployment = fx_deployment_new(OLD_REPO "@" A, 3, true, NULL);
    fx_pods(&f, OLD_REPO "@" A, 3, false);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_string_equal(st_str(&f, "rollbackTarget"), A);
    assert_string_equal(st_str(&f, "rollbackImage"), OLD_REPO "@" A);
    assert_patch_has(&f, REPO "@" B);
    fx_apply(&f);
    /* the new digest crash-loops: back to the old repository's reference */
    cJSON_Delete(f.deployment);
    f.deployment = fx_deployment_new(REPO "@" B, 3, false, "kfm/kfm-api");
    f.pods[f.n_pods++] = fx_pod_new("kfm-api-new", REPO "@" B, "CrashLoopBackOff", 5);
    f.obs.now = T0 + 30;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_patch_has(&f, "{\"name\":\"api\",\"image\":\"" OLD_REPO "@" A "\"}");
    fx_apply(&f);
    /* rolled back to that reference: no patch again, the checks are asked for */
    cJSON_Delete(f.deployment);
    f.deployment = fx_deployment_new(OLD_REPO "@" A, 3, true, "kfm/kfm-api");
    for (size_t i = 0; i < f.n_pods; i++)
        cJSON_Delete(f.pods[i]);
    f.n_pods = 0;
    fx_pods(&f, OLD_REPO "@" A, 3, false);
    f.obs.now = T0 + 40;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_null(f.plan.deployment_patch);
    assert_true(f.plan.run_checks);
    fx_free(&f);

    /* spec.rollbackTarget.digest: <spec.image.repository>@<digest> */
    fx g = {0};
    g.release = fx_release_new(3, B, "\"rollbackTarget\":{\"digest\":\"" C "\"}");
    g.deployment = fx_deployment_new(OLD_REPO "@" A, 3, true, NULL);
    assert_int_equal(decide(&g), 0);
    assert_string_equal(st_str(&g, "rollbackTarget"), C);
    assert_string_equal(st_str(&g, "rollbackImage"), REPO "@" C);
    fx_free(&g);
}

/* A generation that keeps the recorded target keeps its rollbackImage too. */
static void test_rollback_image_survives_a_generation_cut_short(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(4, C, NULL);
    fx_status(&f, "{\"observedGeneration\":3,\"phase\":\"RollingOut\",\"releaseID\":\"0123456789ab\","
                  "\"rollbackTarget\":\"" A "\",\"rollbackImage\":\"" OLD_REPO "@" A "\"}");
    f.deployment = fx_deployment_new(REPO "@" B, 3, false, "kfm/kfm-api");
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_string_equal(st_str(&f, "rollbackTarget"), A);
    assert_string_equal(st_str(&f, "rollbackImage"), OLD_REPO "@" A);
    fx_apply(&f);
    /* and the rollback of this generation goes back to it */
    cJSON_Delete(f.deployment);
    f.deployment = fx_deployment_new(REPO "@" C, 3, false, "kfm/kfm-api");
    f.pods[f.n_pods++] = fx_pod_new("kfm-api-new", REPO "@" C, "CrashLoopBackOff", 5);
    f.obs.now = T0 + 30;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    assert_patch_has(&f, "{\"name\":\"api\",\"image\":\"" OLD_REPO "@" A "\"}");
    fx_free(&f);
}

static void test_target_survives_a_generation_cut_short(void **state)
{
    (void)state;
    target_after(NULL, A);        /* the spec changed mid-rollout: B was never verified */
    target_after("Failed", A);    /* B failed and was left running (no automatic rollback) */
    target_after("Succeeded", B); /* B was verified: it is the next target */
}

/* Unsuspending is a new generation: it starts at the gates, with the target recorded before the suspension. */
static void test_unsuspend_starts_at_the_gates(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(6, C, NULL);
    fx_status(&f, "{\"observedGeneration\":5,\"phase\":\"Suspended\",\"releaseID\":\"0123456789ab\","
                  "\"rollbackTarget\":\"" A "\"}");
    f.deployment = fx_deployment_new(REPO "@" B, 3, false, "kfm/kfm-api");
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_string_equal(st_str(&f, "rollbackTarget"), A);
    assert_cond(&f, "Ready", "Unknown", NULL); /* in progress, no longer Suspended */
    assert_true(strcmp(json_str(conditions_get(f.plan.status, "Ready"), "reason", NULL), "Suspended") != 0);
    fx_free(&f);
}

static void test_deletion_releases_the_deployment(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(3, B, NULL);
    cJSON_AddStringToObject(cJSON_GetObjectItem(f.release, "metadata"), "deletionTimestamp", "2026-11-20T00:00:00Z");
    f.deployment = fx_deployment_new(REPO "@" B, 3, true, "kfm/kfm-api");
    assert_int_equal(decide(&f), 0);
    assert_true(f.plan.remove_finalizer);
    assert_patch_has(&f, "\"governance.kfm.dev/release-owner\":null");
    /* the rollback record goes with the release; the container is left as it is */
    assert_patch_has(&f, "\"governance.kfm.dev/rollback-for\":null");
    assert_patch_has(&f, "\"governance.kfm.dev/rollback-image\":null");
    assert_null(strstr(f.plan.deployment_patch, "containers"));
    assert_null(f.plan.status);
    /* another release's annotation is left alone */
    cJSON_Delete(f.deployment);
    f.deployment = fx_deployment_new(REPO "@" B, 3, true, "kfm/other");
    assert_int_equal(decide(&f), 0);
    assert_true(f.plan.remove_finalizer);
    assert_null(f.plan.deployment_patch);
    fx_free(&f);
}

static void test_idempotent(void **state)
{
    (void)state;
    fx f = {0};
    start_rollout(&f);
    char *status1 = cJSON_PrintUnformatted(f.plan.status);
    char *patch1 = strdup(f.plan.deployment_patch);
    assert_int_equal(decide(&f), 0);
    char *status2 = cJSON_PrintUnformatted(f.plan.status);
    assert_string_equal(status1, status2);
    assert_string_equal(patch1, f.plan.deployment_patch);
    assert_int_equal(f.plan.requeue_ms, 601000);
    free(status1);
    free(status2);
    free(patch1);
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_id),
        cmocka_unit_test(test_image_gate_asks_for_verdicts),
        cmocka_unit_test(test_image_gate_passes),
        cmocka_unit_test(test_image_gate_blocks),
        cmocka_unit_test(test_gate_target_not_found),
        cmocka_unit_test(test_gate_container_not_found),
        cmocka_unit_test(test_gate_change_record_missing),
        cmocka_unit_test(test_gate_policy_bundle),
        cmocka_unit_test(test_gate_policy_bundle_digest),
        cmocka_unit_test(test_gate_no_rollback_target),
        cmocka_unit_test(test_gate_target_claimed),
        cmocka_unit_test(test_gate_invalid_spec),
        cmocka_unit_test(test_gate_invalid_slo),
        cmocka_unit_test(test_gate_probe_not_enabled),
        cmocka_unit_test(test_gate_block_event_once),
        cmocka_unit_test(test_order_gate_passes),
        cmocka_unit_test(test_order_gate_sealed_in_receipt),
        cmocka_unit_test(test_order_gate_blocks),
        cmocka_unit_test(test_order_gate_outcomes),
        cmocka_unit_test(test_order_gate_unblocks_from_stalled),
        cmocka_unit_test(test_order_gate_allowed_namespaces),
        cmocka_unit_test(test_gates_pass_record_target_then_patch),
        cmocka_unit_test(test_restart_between_target_and_patch),
        cmocka_unit_test(test_rollout_patch_records_the_target),
        cmocka_unit_test(test_restart_between_patch_and_status),
        cmocka_unit_test(test_unrecorded_release_keeps_its_target),
        cmocka_unit_test(test_restart_between_rollback_patch_and_status),
        cmocka_unit_test(test_rollout_waits_then_verifies),
        cmocka_unit_test(test_verify_observe_succeed),
        cmocka_unit_test(test_observe_recheck_schedule),
        cmocka_unit_test(test_observe_recheck_seconds),
        cmocka_unit_test(test_observe_recheck_failure_rolls_back),
        cmocka_unit_test(test_observe_final_run),
        cmocka_unit_test(test_observe_stale_run_not_judged),
        cmocka_unit_test(test_observe_restart_keeps_window),
        cmocka_unit_test(test_observe_zero_seconds),
        cmocka_unit_test(test_crashloop_rolls_back),
        cmocka_unit_test(test_rollback_patch_retried_counts_once),
        cmocka_unit_test(test_status_landed),
        cmocka_unit_test(test_restart_threshold_counts_as_crashloop),
        cmocka_unit_test(test_progress_deadline_without_start),
        cmocka_unit_test(test_zero_replicas_never_complete),
        cmocka_unit_test(test_progress_deadline_clock_edge),
        cmocka_unit_test(test_progress_deadline_condition),
        cmocka_unit_test(test_no_automatic_rollback),
        cmocka_unit_test(test_trigger_not_listed),
        cmocka_unit_test(test_failed_check_rolls_back_then_rolled_back),
        cmocka_unit_test(test_missing_result_fires_its_trigger),
        cmocka_unit_test(test_slo_judges_the_running_digest),
        cmocka_unit_test(test_rollback_verification_fails),
        cmocka_unit_test(test_bad_rollback_target_stalls),
        cmocka_unit_test(test_manual_trigger),
        cmocka_unit_test(test_manual_trigger_record),
        cmocka_unit_test(test_manual_trigger_on_an_ended_release),
        cmocka_unit_test(test_gitops_revert_skips_rollout),
        cmocka_unit_test(test_suspend),
        cmocka_unit_test(test_target_survives_a_generation_cut_short),
        cmocka_unit_test(test_rollback_image_is_what_ran),
        cmocka_unit_test(test_rollback_image_survives_a_generation_cut_short),
        cmocka_unit_test(test_unsuspend_starts_at_the_gates),
        cmocka_unit_test(test_deletion_releases_the_deployment),
        cmocka_unit_test(test_idempotent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

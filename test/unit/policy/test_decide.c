/*
 * policy_decide: every phase, failure reason and transient path of a
 * PolicyBundle (API.md "PolicyBundle"), the publication and its receipt, the
 * re-check of a published ConfigMap and its restoration after a hand edit.
 * Each test asserts the plan: status, conditions, action, Events, requeue.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audit/receipt.h"
#include "policy/decide.h"
#include "runtime/conditions.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define OTHER "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define NOW 1790000000

typedef struct {
    cJSON *bundle, *cm, *roots, *results;
    policy_observed obs;
    policy_plan plan;
} fx;

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    return j;
}

/* A bundle of generation 2; extra_spec: more members of spec (JSON text without braces, may be ""). */
static void fx_init(fx *f, const char *extra_spec)
{
    char text[4096];
    memset(f, 0, sizeof(*f));
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"governance.kfm.dev/v1alpha1\",\"kind\":\"PolicyBundle\","
             "\"metadata\":{\"name\":\"kfm-policy\",\"namespace\":\"kfm\",\"uid\":\"u-1\",\"generation\":2},"
             "\"spec\":{\"source\":{\"url\":\"https://bundles.example/kfm.tar.gz\",\"digest\":\"" DIGEST "\"},"
             "\"requiredRoots\":[\"kfm\"]%s%s}}",
             extra_spec[0] ? "," : "", extra_spec);
    f->bundle = parse(text);
    f->roots = parse("[\"kfm\"]");
    f->obs.bundle = f->bundle;
    f->obs.now = NOW;
}

static void fx_free(fx *f)
{
    policy_plan_clear(&f->plan);
    cJSON_Delete(f->bundle);
    cJSON_Delete(f->cm);
    cJSON_Delete(f->roots);
    cJSON_Delete(f->results);
}

static void decide(fx *f)
{
    policy_plan_clear(&f->plan);
    f->obs.bundle = f->bundle;
    f->obs.configmap = f->cm;
    assert_int_equal(policy_decide(&f->plan, &f->obs), 0);
}

/* The plan's status is written: the bundle carries it from now on. */
static void apply(fx *f)
{
    if (!f->plan.status)
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(f->bundle, "status");
    cJSON_AddItemToObject(f->bundle, "status", cJSON_Duplicate(f->plan.status, true));
}

static const cJSON *status(const fx *f)
{
    return f->plan.status ? f->plan.status : json_get(f->bundle, "status", NULL);
}

static void assert_cond(const fx *f, const char *type, const char *st, const char *reason)
{
    const cJSON *c = conditions_get(status(f), type);
    if (!c)
        fail_msg("no condition %s", type);
    assert_string_equal(json_str(c, "status", NULL), st);
    if (reason)
        assert_string_equal(json_str(c, "reason", NULL), reason);
    assert_int_equal(json_int(-1, c, "observedGeneration", NULL), 2);
}

static void assert_no_cond(const fx *f, const char *type)
{
    assert_null(conditions_get(status(f), type));
}

static void assert_event(const fx *f, const char *type, const char *reason, const char *part)
{
    for (size_t i = 0; i < f->plan.n_events; i++)
        if (strcmp(f->plan.events[i].reason, reason) == 0) {
            assert_string_equal(f->plan.events[i].type, type);
            if (part && !strstr(f->plan.events[i].message, part))
                fail_msg("event %s: \"%s\" does not say \"%s\"", reason, f->plan.events[i].message, part);
            return;
        }
    fail_msg("no event %s", reason);
}

static void assert_message_has(const fx *f, const char *type, const char *part)
{
    const char *m = json_str(conditions_get(status(f), type), "message", NULL);
    if (!m || !strstr(m, part))
        fail_msg("%s's message \"%s\" does not say \"%s\"", type, m ? m : "", part);
}

/* The work after a fetch whose bytes passed every check. */
static void fx_verified(fx *f)
{
    f->obs.work.fetch = POLICY_FETCH_DONE;
    f->obs.work.verify.revision = "2026.11.20-3";
    f->obs.work.verify.roots = f->roots;
    f->obs.work.verify.rego_modules = 3;
    f->obs.work.verify.size_bytes = 4321;
    f->obs.work.verify.structure_checked = true;
}

static void fx_configmap(fx *f, const char *marker, const char *owner_uid)
{
    char text[2048];
    cJSON_Delete(f->cm);
    snprintf(text, sizeof(text),
             "{\"metadata\":{\"name\":\"kfm-policy-bundle\",\"namespace\":\"kfm\",\"uid\":\"cm-1\","
             "\"resourceVersion\":\"7\",\"ownerReferences\":[{\"apiVersion\":\"governance.kfm.dev/v1alpha1\","
             "\"kind\":\"PolicyBundle\",\"name\":\"kfm-policy\",\"uid\":\"%s\",\"controller\":true}]},"
             "\"data\":{\"digest\":\"" DIGEST "\",\"revision\":\"2026.11.20-3\"},"
             "\"binaryData\":{\"bundle.tar.gz\":\"%s\"}}",
             owner_uid, marker);
    f->cm = parse(text);
}

/* From a new bundle to Published (no decision tests), the status applied at each step. */
static void fx_publish(fx *f)
{
    decide(f);
    apply(f);
    fx_verified(f);
    decide(f);
    assert_int_equal(f->plan.action, POLICY_ACT_PUBLISH);
    apply(f);
    f->obs.work.publish = POLICY_PUBLISH_DONE;
    f->obs.work.cm_uid = "cm-1";
    f->obs.work.cm_resource_version = "7";
    decide(f);
    apply(f);
    fx_configmap(f, DIGEST, "u-1");
    memset(&f->obs.work, 0, sizeof(f->obs.work)); /* the work is dropped once published */
}

/* ---- fetch --------------------------------------------------------------- */

static void test_new_bundle_starts_fetch(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, "");
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_FETCH);
    assert_string_equal(f.plan.phase, "Fetching");
    assert_string_equal(json_str(status(&f), "phase", NULL), "Fetching");
    assert_int_equal(json_int(-1, status(&f), "observedGeneration", NULL), 2);
    assert_cond(&f, "Reconciling", "True", "Fetching");
    assert_cond(&f, "Ready", "Unknown", "Fetching");
    assert_no_cond(&f, "Stalled");
    assert_cond(&f, "SignatureVerified", "True", "NotRequired");
    assert_cond(&f, "DigestVerified", "Unknown", NULL);
    assert_cond(&f, "Published", "False", "Pending");
    assert_cond(&f, "DecisionTestsPassed", "True", "NoTests");
    assert_null(json_get(status(&f), "verifiedDigest", NULL));
    assert_string_equal(f.plan.configmap, "kfm-policy-bundle");
    assert_true(f.plan.requeue_ms > 0);
    fx_free(&f);
}

static void test_fetch_running_waits(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, "");
    f.obs.work.fetch = POLICY_FETCH_RUNNING;
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_NONE);
    assert_string_equal(f.plan.phase, "Fetching");
    assert_cond(&f, "Reconciling", "True", "Fetching");
    fx_free(&f);
}

static void test_fetch_failed_is_transient_with_backoff(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, "");
    f.obs.work.fetch = POLICY_FETCH_FAILED;
    f.obs.work.fetch_message = "GET https://bundles.example/kfm.tar.gz answered HTTP 503: check spec.source.url";
    f.obs.work.fetch_attempts = 2;
    f.obs.work.fetch_finished_at = NOW - 3;
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_NONE);
    assert_int_equal(f.plan.requeue_ms, 10000 - 3000);
    assert_string_equal(f.plan.phase, "Fetching");
    assert_cond(&f, "Reconciling", "True", "FetchFailed");
    assert_cond(&f, "Ready", "Unknown", "FetchFailed");
    assert_no_cond(&f, "Stalled");
    assert_message_has(&f, "Reconciling", "HTTP 503");
    assert_event(&f, "Warning", "FetchFailed", "https://bundles.example/kfm.tar.gz");
    assert_string_equal(f.plan.outcome, "FetchFailed");
    assert_false(f.plan.drop_work);
    apply(&f);

    /* the backoff has passed: fetch again; the same reason raises no second Event */
    f.obs.now = NOW + 8;
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_FETCH);
    assert_int_equal(f.plan.n_events, 0);
    assert_null(f.plan.outcome); /* counted once per run of failures */
    assert_cond(&f, "Reconciling", "True", "FetchFailed");
    fx_free(&f);
}

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(policy_backoff_ms(0), 5000);
    assert_int_equal(policy_backoff_ms(1), 5000);
    assert_int_equal(policy_backoff_ms(2), 10000);
    assert_int_equal(policy_backoff_ms(3), 20000);
    assert_int_equal(policy_backoff_ms(40), 300000);
}

/* ---- terminal failures ------------------------------------------------------- */

static void check_stalled(fx *f, const char *reason, const char *cond_type, const char *part)
{
    decide(f);
    assert_int_equal(f->plan.action, POLICY_ACT_NONE);
    assert_string_equal(f->plan.phase, "Failed");
    assert_string_equal(json_str(status(f), "phase", NULL), "Failed");
    assert_cond(f, "Stalled", "True", reason);
    assert_cond(f, "Ready", "False", reason);
    assert_no_cond(f, "Reconciling");
    if (cond_type)
        assert_cond(f, cond_type, "False", reason);
    assert_cond(f, "Published", "False", NULL);
    assert_message_has(f, "Stalled", part);
    assert_event(f, "Warning", reason, part);
    assert_string_equal(f->plan.outcome, reason);
    assert_true(f->plan.drop_work);
    assert_int_equal(f->plan.requeue_ms, 0);
    assert_int_equal(json_int(-1, status(f), "observedGeneration", NULL), 2);
}

static void test_too_large_fetch(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, "");
    f.obs.work.fetch = POLICY_FETCH_TOO_BIG;
    f.obs.work.fetch_message = "the bundle is larger than spec.source.maxBytes (4194304 bytes): raise it";
    check_stalled(&f, "TooLarge", NULL, "spec.source.maxBytes");
    assert_null(json_get(status(&f), "verifiedDigest", NULL));
    fx_free(&f);
}

static void test_verification_failures(void **state)
{
    static const struct {
        const char *reason, *cond, *message;
    } cases[] = {
        {"DigestMismatch", "DigestVerified", "hash to " OTHER ", not to spec.source.digest " DIGEST},
        {"InvalidBundle", "StructureValid", "entry ../etc/passwd: a path with .. is not allowed"},
        {"MissingRoot", "StructureValid", "no root covers kfm of spec.requiredRoots"},
        {"TooLarge", NULL, "more than the 921600 a ConfigMap can carry"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fx f;
        fx_init(&f, "");
        f.obs.work.fetch = POLICY_FETCH_DONE;
        f.obs.work.verify.reason = cases[i].reason;
        f.obs.work.verify.message = cases[i].message;
        check_stalled(&f, cases[i].reason, cases[i].cond, cases[i].message);
        assert_null(json_get(status(&f), "verifiedDigest", NULL)); /* never published, never called verified */
        fx_free(&f);
    }
}

static void test_signature_invalid(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, "\"signing\":{\"publicKeySecretRef\":{\"name\":\"bundle-signing\",\"key\":\"key.pem\"}}");
    decide(&f);
    assert_cond(&f, "SignatureVerified", "Unknown", "NotChecked");
    f.obs.work.fetch = POLICY_FETCH_DONE;
    f.obs.work.verify.structure_checked = true;
    f.obs.work.verify.reason = "SignatureInvalid";
    f.obs.work.verify.message = "the bundle's .signatures.json does not verify: file policy.rego changed";
    check_stalled(&f, "SignatureInvalid", "SignatureVerified", "policy.rego");
    assert_cond(&f, "StructureValid", "True", NULL);
    assert_cond(&f, "DigestVerified", "True", NULL);
    fx_free(&f);
}

static void test_signature_verified(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, "\"signing\":{\"publicKeySecretRef\":{\"name\":\"bundle-signing\",\"key\":\"key.pem\"}}");
    fx_verified(&f);
    f.obs.work.verify.signature_checked = true;
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_PUBLISH);
    assert_cond(&f, "SignatureVerified", "True", "Verified");
    fx_free(&f);
}

static void test_failed_stays_until_generation_changes(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, "");
    f.obs.work.fetch = POLICY_FETCH_DONE;
    f.obs.work.verify.reason = "DigestMismatch";
    f.obs.work.verify.message = "the bytes hash to " OTHER;
    decide(&f);
    apply(&f);
    memset(&f.obs.work, 0, sizeof(f.obs.work)); /* dropped; or the operator restarted */
    f.obs.now = NOW + 3600;
    decide(&f);
    assert_null(f.plan.status);
    assert_int_equal(f.plan.action, POLICY_ACT_NONE);
    assert_int_equal(f.plan.n_events, 0);
    assert_string_equal(f.plan.phase, "Failed");

    /* a new generation starts again */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(f.bundle, "metadata"), "generation", cJSON_CreateNumber(3));
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_FETCH);
    assert_string_equal(f.plan.phase, "Fetching");
    assert_int_equal(json_int(-1, status(&f), "observedGeneration", NULL), 3);
    assert_null(conditions_get(status(&f), "Stalled"));
    fx_free(&f);
}

static void test_invalid_spec(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, "");
    cJSON_ReplaceItemInObject(json_ensure_object(f.bundle, "spec", "source", NULL), "digest",
                              cJSON_CreateString("sha256:ABC"));
    check_stalled(&f, "InvalidSpec", NULL, "spec.source.digest");
    fx_free(&f);

    fx_init(&f, "\"decisionTests\":{\"cases\":[{\"name\":\"a\",\"path\":\"kfm/allow\",\"expect\":true}]}");
    check_stalled(&f, "InvalidSpec", NULL, "spec.decisionTests.opaURL");
    fx_free(&f);
}

/* ---- decision tests --------------------------------------------------------------- */

#define TESTS_SPEC                                                                                                     \
    "\"decisionTests\":{\"opaURL\":\"http://127.0.0.1:8181\",\"cases\":["                                              \
    "{\"name\":\"public-cannot-read-restricted\",\"path\":\"kfm/allow\",\"input\":{\"role\":\"public\"},"              \
    "\"expect\":false},{\"name\":\"admin-reads\",\"path\":\"kfm/allow\",\"input\":{\"role\":\"admin\"},"               \
    "\"expect\":true}]}"

static void test_tests_start_after_verification(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, TESTS_SPEC);
    fx_verified(&f);
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_TEST);
    assert_string_equal(f.plan.phase, "Verified");
    assert_cond(&f, "Reconciling", "True", "Testing");
    assert_cond(&f, "DecisionTestsPassed", "Unknown", "NotRun");
    assert_string_equal(json_str(status(&f), "verifiedDigest", NULL), DIGEST);
    assert_string_equal(json_str(status(&f), "revision", NULL), "2026.11.20-3");
    assert_int_equal(json_int(-1, status(&f), "regoModules", NULL), 3);
    assert_int_equal(json_int(-1, status(&f), "sizeBytes", NULL), 4321);
    fx_free(&f);
}

static void test_tests_wait_for_busy_opa(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, TESTS_SPEC);
    fx_verified(&f);
    f.obs.work.tests = POLICY_TESTS_WAITING;
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_TEST); /* its turn may have come: try again */
    assert_cond(&f, "Reconciling", "True", "WaitingForOPA");
    assert_message_has(&f, "Reconciling", "waits for http://127.0.0.1:8181");
    fx_free(&f);
}

static void test_tests_unavailable_is_transient_never_a_pass(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, TESTS_SPEC);
    fx_verified(&f);
    f.obs.work.tests = POLICY_TESTS_ERROR;
    f.obs.work.tests_message = "PUT http://127.0.0.1:8181/v1/policies/... failed: Connection refused";
    f.obs.work.tests_attempts = 1;
    f.obs.work.tests_finished_at = NOW;
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_NONE);
    assert_int_equal(f.plan.requeue_ms, 5000);
    assert_cond(&f, "Reconciling", "True", "DecisionTestsUnavailable");
    assert_cond(&f, "Ready", "Unknown", NULL);
    assert_cond(&f, "DecisionTestsPassed", "Unknown", "DecisionTestsUnavailable");
    assert_cond(&f, "Published", "False", NULL);
    assert_no_cond(&f, "Stalled");
    assert_event(&f, "Warning", "DecisionTestsUnavailable", "Connection refused");
    f.obs.now = NOW + 5;
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_TEST);
    fx_free(&f);
}

static void test_tests_failed_case(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, TESTS_SPEC);
    fx_verified(&f);
    f.results = parse(
        "[{\"name\":\"public-cannot-read-restricted\",\"passed\":false,\"got\":\"true\","
        "\"message\":\"got true, expected false\"},"
        "{\"name\":\"admin-reads\",\"passed\":true,\"got\":\"true\",\"message\":\"got true as expected\"}]");
    f.obs.work.tests = POLICY_TESTS_DONE;
    f.obs.work.test_results = f.results;
    check_stalled(&f, "DecisionTestFailed", "DecisionTestsPassed", "public-cannot-read-restricted");
    assert_message_has(&f, "Stalled", "got true, expected false");
    assert_true(cJSON_Compare(json_get(status(&f), "decisionTests", NULL), f.results, true));
    /* a failed bundle has no verified digest; what was read stays for the diagnosis */
    assert_null(json_get(status(&f), "verifiedDigest", NULL));
    assert_string_equal(json_str(status(&f), "revision", NULL), "2026.11.20-3");
    fx_free(&f);
}

static void test_tests_pass_then_publish_with_receipt(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, TESTS_SPEC);
    fx_verified(&f);
    f.results = parse(
        "[{\"name\":\"public-cannot-read-restricted\",\"passed\":true,\"got\":\"false\",\"message\":\"\"},"
        "{\"name\":\"admin-reads\",\"passed\":true,\"got\":\"true\",\"message\":\"\"}]");
    f.obs.work.tests = POLICY_TESTS_DONE;
    f.obs.work.test_results = f.results;
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_PUBLISH);
    assert_cond(&f, "DecisionTestsPassed", "True", "Passed");
    assert_cond(&f, "Reconciling", "True", "Publishing");
    apply(&f);

    f.obs.work.publish = POLICY_PUBLISH_DONE;
    f.obs.work.cm_uid = "cm-1";
    f.obs.work.cm_resource_version = "7";
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_NONE);
    assert_string_equal(f.plan.phase, "Published");
    assert_cond(&f, "Ready", "True", "Published");
    assert_no_cond(&f, "Reconciling");
    assert_no_cond(&f, "Stalled");
    assert_cond(&f, "Published", "True", "Published");
    assert_cond(&f, "DigestVerified", "True", NULL);
    assert_cond(&f, "StructureValid", "True", NULL);
    assert_string_equal(f.plan.outcome, "Published");
    assert_event(&f, "Normal", "Published", "kfm-policy-bundle");
    assert_true(f.plan.drop_work);
    assert_int_equal(f.plan.requeue_ms, POLICY_RESYNC_MS);

    const cJSON *r = json_get(status(&f), "receipt", NULL);
    assert_non_null(f.plan.receipt);
    assert_string_equal(json_str(r, "verifiedDigest", NULL), DIGEST);
    assert_string_equal(json_str(r, "revision", NULL), "2026.11.20-3");
    assert_string_equal(json_str(r, "configMap", "name", NULL), "kfm-policy-bundle");
    assert_string_equal(json_str(r, "configMap", "uid", NULL), "cm-1");
    assert_string_equal(json_str(r, "configMap", "resourceVersion", NULL), "7");
    assert_string_equal(json_str(r, "prevAuditRef", NULL), "");
    assert_non_null(json_str(r, "publishedAt", NULL));
    assert_true(cJSON_Compare(json_get(r, "roots", NULL), f.roots, true));
    assert_true(cJSON_Compare(json_get(r, "decisionTests", NULL), f.results, true));
    char ref[AUDIT_REF_SIZE];
    assert_int_equal(audit_receipt_ref(ref, r, f.bundle), 0);
    assert_string_equal(ref, json_str(r, "auditRef", NULL));
    fx_free(&f);
}

/* ---- publication -------------------------------------------------------------- */

static void test_configmap_not_owned(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, "\"publish\":{\"configMapName\":\"kfm-opa\"}");
    fx_verified(&f);
    f.obs.work.publish = POLICY_PUBLISH_NOT_OWNED;
    check_stalled(&f, "ConfigMapNotOwned", "Published", "spec.publish.configMapName");
    assert_message_has(&f, "Stalled", "kfm/kfm-opa");
    assert_string_equal(f.plan.configmap, "kfm-opa");
    apply(&f);

    /* stays until the spec changes: no fetch again and again (the ConfigMap in the way is not in the cache) */
    memset(&f.obs.work, 0, sizeof(f.obs.work));
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_NONE);
    assert_null(f.plan.status);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(f.bundle, "metadata"), "generation", cJSON_CreateNumber(3));
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_FETCH);
    fx_free(&f);
}

static void test_published_steady(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, "");
    fx_publish(&f);
    f.obs.now = NOW + 600;
    decide(&f);
    assert_null(f.plan.status); /* nothing changes: Ready's lastTransitionTime stays */
    assert_int_equal(f.plan.action, POLICY_ACT_NONE);
    assert_int_equal(f.plan.n_events, 0);
    assert_null(f.plan.outcome);
    assert_int_equal(f.plan.requeue_ms, POLICY_RESYNC_MS);
    assert_string_equal(f.plan.phase, "Published");
    fx_free(&f);
}

static void test_hand_edit_is_restored(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, "");
    fx_publish(&f);
    const char *first_ref = json_str(json_get(f.bundle, "status", "receipt", NULL), "auditRef", NULL);
    char ref[AUDIT_REF_SIZE];
    snprintf(ref, sizeof(ref), "%s", first_ref);

    fx_configmap(&f, OTHER, "u-1"); /* someone put other bytes in */
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_FETCH);
    assert_string_equal(f.plan.phase, "Fetching");
    assert_cond(&f, "Reconciling", "True", "Restoring");
    assert_cond(&f, "Ready", "Unknown", NULL);
    assert_event(&f, "Warning", "ConfigMapEdited", "edited by hand");
    assert_message_has(&f, "Reconciling", "is being restored");
    assert_null(json_get(status(&f), "verifiedDigest", NULL));
    apply(&f);

    /* fetched again, verified, published again: Published, and the receipt is not sealed twice for one digest */
    fx_verified(&f);
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_PUBLISH);
    apply(&f);
    f.obs.work.publish = POLICY_PUBLISH_DONE;
    decide(&f);
    assert_string_equal(f.plan.phase, "Published");
    assert_cond(&f, "Ready", "True", "Published");
    assert_null(f.plan.receipt);
    assert_string_equal(json_str(json_get(status(&f), "receipt", NULL), "auditRef", NULL), ref);
    assert_event(&f, "Normal", "Published", NULL);
    fx_free(&f);
}

static void test_deleted_configmap_is_restored(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, "");
    fx_publish(&f);
    cJSON_Delete(f.cm);
    f.cm = NULL; /* deleted, or its managed-by label removed (then the cache does not show it) */
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_FETCH);
    assert_event(&f, "Warning", "ConfigMapEdited", "app.kubernetes.io/managed-by=membrane");
    fx_free(&f);
}

static void test_data_digest_edit_is_restored(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, "");
    fx_publish(&f);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(f.cm, "data"), "digest", cJSON_CreateString(OTHER));
    decide(&f);
    assert_int_equal(f.plan.action, POLICY_ACT_FETCH);
    assert_event(&f, "Warning", "ConfigMapEdited", NULL);
    fx_free(&f);
}

static void test_new_digest_reseals(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, "");
    fx_publish(&f);
    char first[AUDIT_REF_SIZE];
    snprintf(first, sizeof(first), "%s", json_str(json_get(f.bundle, "status", "receipt", NULL), "auditRef", NULL));
    cJSON *src = json_ensure_object(f.bundle, "spec", "source", NULL);
    cJSON_ReplaceItemInObject(src, "digest", cJSON_CreateString(OTHER));
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(f.bundle, "metadata"), "generation", cJSON_CreateNumber(2));
    decide(&f); /* same generation number in this fixture, but the pin differs: not steady */
    assert_int_equal(f.plan.action, POLICY_ACT_FETCH);
    apply(&f);
    fx_verified(&f);
    f.obs.work.publish = POLICY_PUBLISH_DONE;
    decide(&f);
    assert_string_equal(f.plan.phase, "Published");
    assert_non_null(f.plan.receipt);
    assert_string_equal(json_str(f.plan.receipt, "verifiedDigest", NULL), OTHER);
    assert_string_equal(json_str(f.plan.receipt, "prevAuditRef", NULL), first);
    fx_free(&f);
}

static void test_configmap_name_and_limits(void **state)
{
    fx f;
    char name[254];
    (void)state;
    fx_init(&f, "");
    assert_true(policy_configmap_name(name, f.bundle));
    assert_string_equal(name, "kfm-policy-bundle");
    assert_int_equal(policy_max_bytes(f.bundle), 4 * 1024 * 1024);
    cJSON_AddNumberToObject(json_ensure_object(f.bundle, "spec", "source", NULL), "maxBytes", 1000);
    assert_int_equal(policy_max_bytes(f.bundle), 1000);
    fx_configmap(&f, DIGEST, "u-1");
    assert_true(policy_configmap_owned(f.cm, f.bundle));
    fx_configmap(&f, DIGEST, "u-2");
    assert_false(policy_configmap_owned(f.cm, f.bundle));
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_bundle_starts_fetch),
        cmocka_unit_test(test_fetch_running_waits),
        cmocka_unit_test(test_fetch_failed_is_transient_with_backoff),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_too_large_fetch),
        cmocka_unit_test(test_verification_failures),
        cmocka_unit_test(test_signature_invalid),
        cmocka_unit_test(test_signature_verified),
        cmocka_unit_test(test_failed_stays_until_generation_changes),
        cmocka_unit_test(test_invalid_spec),
        cmocka_unit_test(test_tests_start_after_verification),
        cmocka_unit_test(test_tests_wait_for_busy_opa),
        cmocka_unit_test(test_tests_unavailable_is_transient_never_a_pass),
        cmocka_unit_test(test_tests_failed_case),
        cmocka_unit_test(test_tests_pass_then_publish_with_receipt),
        cmocka_unit_test(test_configmap_not_owned),
        cmocka_unit_test(test_published_steady),
        cmocka_unit_test(test_hand_edit_is_restored),
        cmocka_unit_test(test_deleted_configmap_is_restored),
        cmocka_unit_test(test_data_digest_edit_is_restored),
        cmocka_unit_test(test_new_digest_reseals),
        cmocka_unit_test(test_configmap_name_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Allocation-failure torture of release_decide (test/support/torture.h) at
 * every step of a release's life: gates blocked and passed, the rollout, the
 * checks, observation and success with its sealed receipt, a failed check and
 * the rollback to RolledBack, a trigger with automatic rollback off (Failed),
 * a manual rollback of a success, suspension and deletion. A decision that
 * fails returns an error with an empty plan; every one that succeeds makes
 * the same plan as the unhindered run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "release/checks.h"
#include "release/decide.h"
#include "fixture.h"
#include "release_fixture.h"
#include "torture.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RID "5dee29fd7e28" /* release_id of kfm/kfm-api generation 3 digest B */

/* ---- fixtures (test/support/release_fixture.h) ------------------------------ */

/* The Deployment, replaced: 3 replicas of image, owned by the release. */
static void fx_deployment(fx *f, const char *image, bool done)
{
    cJSON_Delete(f->deployment);
    f->deployment = fx_deployment_new(image, 3, done, "kfm/kfm-api");
}

/* The pods, replaced: 3 of image. */
static void fx_replace_pods(fx *f, const char *image, bool crash)
{
    for (size_t i = 0; i < f->n_pods; i++)
        cJSON_Delete(f->pods[i]);
    f->n_pods = 0;
    fx_pods(f, image, 3, crash);
}

/* ---- the torture of one decision ------------------------------------------------ */

typedef struct {
    fx *f;
    release_plan plan;
    int rc;
    char *first; /* the first successful plan, as text */
} decide_ctx;

static int decide_run(void *arg)
{
    decide_ctx *d = arg;
    return d->rc = release_decide(&d->plan, &d->f->obs);
}

/* Everything a plan says, as one text. */
static char *plan_text(const release_plan *p)
{
    char *text = NULL, *status = p->status ? cJSON_PrintUnformatted(p->status) : NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_true(!p->status || status);
    fprintf(f, "status %s\npatch %s\nphase %s\nrequeue %ld\n", status ? status : "-",
            p->deployment_patch ? p->deployment_patch : "-", p->phase ? p->phase : "-", p->requeue_ms);
    fprintf(f, "flags %d%d%d%d %s\nreceipt %s\n", p->add_finalizer, p->remove_finalizer, p->clear_rollback_annotation,
            p->run_checks, p->checks_release_id, p->receipt ? json_str(p->receipt, "auditRef", NULL) : "-");
    for (size_t i = 0; i < p->n_events; i++)
        fprintf(f, "event %s %s %s\n", p->events[i].type, p->events[i].reason, p->events[i].message);
    fclose(f);
    free(status);
    return text;
}

static void decide_check(void *arg)
{
    decide_ctx *d = arg;
    char *text = plan_text(&d->plan);
    if (!d->first) {
        d->first = text;
        return;
    }
    assert_string_equal(text, d->first);
    free(text);
}

static void decide_clear(void *arg)
{
    decide_ctx *d = arg;
    static const release_plan empty;
    if (d->rc < 0 && memcmp(&d->plan, &empty, sizeof(empty)) != 0)
        fail_msg("release_decide failed (%s) but left a plan", mb_error_last());
    release_plan_clear(&d->plan);
}

/*
 * Tortures the decision for f as observed, checks it reaches phase, then
 * leaves the unhindered plan in f->plan and applies its status to the release
 * as the operator's status write would.
 */
static void decide_torture(fx *f, const char *phase)
{
    decide_ctx d = {.f = f};
    /*
     * OpenSSL computes the release ID and the receipts' digests; it recovers
     * from some of its own failed allocations, so a decision may succeed
     * after one (then with the same plan), and a digest that fails is MB_ERROR.
     */
    torture_case tc = {.name = phase,
                       .run = decide_run,
                       .check = decide_check,
                       .clear = decide_clear,
                       .ctx = &d,
                       .errors = {MB_ERROR},
                       .may_succeed = true};
    fx_observe(f);
    assert_true(torture_check(&tc) > 0);
    free(d.first);

    release_plan_clear(&f->plan);
    assert_int_equal(release_decide(&f->plan, &f->obs), 0);
    if (f->plan.phase == NULL || strcmp(f->plan.phase, phase) != 0)
        fail_msg("the decision reached phase %s, not %s", f->plan.phase ? f->plan.phase : "(none)", phase);
    if (f->plan.status) {
        cJSON_DeleteItemFromObjectCaseSensitive(f->release, "status");
        cJSON_AddItemToObject(f->release, "status", cJSON_Duplicate(f->plan.status, true));
    }
    f->obs.checks.ran = false;
}

/* ---- a release's life ------------------------------------------------------------- */

static void start(fx *f, const char *extra_spec)
{
    f->release = fx_release_new(3, B, extra_spec);
    f->deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
    fx_replace_pods(f, REPO "@" A, false);
    f->obs.now = T0;
}

static void test_gates_rollout_checks_success(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(3, B, "\"policyBundleRef\":{\"name\":\"kfm-policy\"}");
    f.obs.now = T0;
    decide_torture(&f, "Gating"); /* no Deployment: blocked */
    f.deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
    fx_replace_pods(&f, REPO "@" A, false);
    f.bundle = fx_parse("{\"metadata\":{\"generation\":2},\"spec\":{\"source\":{\"digest\":\"" C "\"}},"
                        "\"status\":{\"observedGeneration\":2,\"verifiedDigest\":\"" C "\","
                        "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"observedGeneration\":2}]}}");
    decide_torture(&f, "RollingOut");
    fx_deployment(&f, REPO "@" B, true);
    fx_replace_pods(&f, REPO "@" B, false);
    f.obs.now = T0 + 20;
    decide_torture(&f, "Verifying");
    f.obs.now = T0 + 21;
    fx_checks(&f, RID,
              "[{\"name\":\"health\",\"passed\":true,\"httpStatus\":200,\"latencyMs\":3},"
              "{\"name\":\"focus-ask\",\"passed\":true},{\"name\":\"membrane-store\",\"passed\":true}]");
    decide_torture(&f, "Observing");
    f.obs.now = T0 + 21 + 15;
    fx_checks(&f, RID, "[{\"name\":\"health\",\"passed\":true},{\"name\":\"focus-ask\",\"passed\":true}]");
    decide_torture(&f, "Observing"); /* a recheck passed */
    f.obs.now = T0 + 21 + 60;
    decide_torture(&f, "Observing"); /* the final run is asked */
    fx_checks(&f, RID, "[{\"name\":\"health\",\"passed\":true},{\"name\":\"focus-ask\",\"passed\":true}]");
    decide_torture(&f, "Succeeded");
    /* a manual rollback of the success */
    cJSON_AddItemToObject(cJSON_GetObjectItem(f.release, "metadata"), "annotations",
                          fx_parse("{\"governance.kfm.dev/rollback\":\"true\"}"));
    f.obs.now = T0 + 500;
    decide_torture(&f, "RollingBack");
    fx_free(&f);
}

/* The image gate: asked, blocked on a refusal, passed; its signatures sealed in the receipt of the success. */
static void test_image_gate_sealed(void **state)
{
    (void)state;
    fx f = {0};
    start(&f, "\"rollout\":{\"observationSeconds\":0}");
    cJSON *img = cJSON_GetObjectItem(cJSON_GetObjectItem(f.release, "spec"), "image");
    cJSON_AddItemToObject(img, "verify",
                          fx_parse("{\"publicKeySecretRef\":{\"name\":\"k\",\"key\":\"cosign.pub\"},"
                                   "\"attestations\":[\"https://slsa.dev/provenance/v1\"]}"));
    decide_torture(&f, "Gating"); /* no verdicts yet */
    release_image_verdict v[2] = {
        {B, RELEASE_IMAGE_VERIFIED, "", "sha256:1111111111111111111111111111111111111111111111111111111111111111", "v3",
         "sha256:3333333333333333333333333333333333333333333333333333333333333333"},
        {A, RELEASE_IMAGE_REFUSED, "no signature by the key", "", "", ""},
    };
    f.obs.images = v;
    f.obs.n_images = 2;
    decide_torture(&f, "Gating");
    v[1] = v[0];
    v[1].digest = A;
    decide_torture(&f, "RollingOut");
    f.obs.images = NULL;
    f.obs.n_images = 0;
    fx_deployment(&f, REPO "@" B, true);
    fx_replace_pods(&f, REPO "@" B, false);
    f.obs.now = T0 + 20;
    decide_torture(&f, "Verifying");
    fx_checks(&f, RID, "[{\"name\":\"health\",\"passed\":true},{\"name\":\"focus-ask\",\"passed\":true}]");
    decide_torture(&f, "Observing");
    f.obs.now = T0 + 21;
    fx_checks(&f, RID, "[{\"name\":\"health\",\"passed\":true},{\"name\":\"focus-ask\",\"passed\":true}]");
    decide_torture(&f, "Succeeded");
    const cJSON *h = json_get(f.release, "status", "history", NULL);
    const cJSON *sig = json_get(cJSON_GetArrayItem(h, cJSON_GetArraySize(h) - 1), "imageSignatures", NULL);
    assert_int_equal(cJSON_GetArraySize(sig), 2);
    fx_free(&f);
}

static void test_failed_check_rollback(void **state)
{
    (void)state;
    fx f = {0};
    start(&f, NULL);
    decide_torture(&f, "RollingOut");
    fx_deployment(&f, REPO "@" B, true);
    fx_replace_pods(&f, REPO "@" B, false);
    decide_torture(&f, "Verifying");
    fx_checks(&f, RID,
              "[{\"name\":\"health\",\"passed\":true},"
              "{\"name\":\"focus-ask\",\"passed\":false,\"httpStatus\":200,\"trigger\":\"UncitedAnswer\","
              "\"message\":\"answer has no citations and did not abstain\"}]");
    decide_torture(&f, "RollingBack");
    fx_deployment(&f, REPO "@" A, true);
    fx_replace_pods(&f, REPO "@" A, false);
    f.obs.now = T0 + 40;
    decide_torture(&f, "RollingBack"); /* rolled back: checks asked for */
    fx_checks(&f, RID, "[{\"name\":\"health\",\"passed\":true},{\"name\":\"focus-ask\",\"passed\":true}]");
    decide_torture(&f, "RolledBack");
    fx_free(&f);
}

/* A requested check that did not report is made up as a failed result ("no result"): its trigger rolls back. */
static void test_missing_result_rollback(void **state)
{
    (void)state;
    fx f = {0};
    start(&f, "\"membrane\":{\"apiServiceAccount\":\"kfm-api\"}");
    decide_torture(&f, "RollingOut");
    fx_deployment(&f, REPO "@" B, true);
    fx_replace_pods(&f, REPO "@" B, false);
    decide_torture(&f, "Verifying");
    fx_checks(&f, RID, "[{\"name\":\"health\",\"passed\":true},{\"name\":\"membrane-rbac\",\"passed\":true}]");
    decide_torture(&f, "RollingBack");
    fx_free(&f);
}

/* A documented break-glass rollback: its reason and approver go into lastRollback, then into the receipt. */
static void test_manual_rollback_record(void **state)
{
    (void)state;
    fx f = {0};
    start(&f, NULL);
    decide_torture(&f, "RollingOut");
    fx_deployment(&f, REPO "@" B, true);
    fx_replace_pods(&f, REPO "@" B, false);
    decide_torture(&f, "Verifying");
    cJSON_AddItemToObject(cJSON_GetObjectItem(f.release, "metadata"), "annotations",
                          fx_parse("{\"governance.kfm.dev/rollback\":\"true\",\"governance.kfm.dev/"
                                   "rollback-reason\":\"INC-7\","
                                   "\"governance.kfm.dev/rollback-approver\":\"jane\"}"));
    decide_torture(&f, "RollingBack");
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(f.release, "metadata"), "annotations");
    fx_deployment(&f, REPO "@" A, true);
    fx_replace_pods(&f, REPO "@" A, false);
    f.obs.now = T0 + 40;
    fx_checks(&f, RID, "[{\"name\":\"health\",\"passed\":true},{\"name\":\"focus-ask\",\"passed\":true}]");
    decide_torture(&f, "RolledBack");
    assert_string_equal(json_str(f.plan.receipt, "approver", NULL), "jane");
    fx_free(&f);
}

static void test_crashloop_without_automatic_rollback(void **state)
{
    (void)state;
    fx f = {0};
    start(&f, "\"rollback\":{\"automatic\":false}");
    decide_torture(&f, "RollingOut");
    fx_replace_pods(&f, REPO "@" B, true);
    f.obs.now = T0 + 30;
    decide_torture(&f, "Failed");
    fx_free(&f);
}

static void test_suspend_and_delete(void **state)
{
    (void)state;
    fx f = {0};
    start(&f, "\"suspend\":true");
    decide_torture(&f, "Suspended");
    fx_free(&f);

    memset(&f, 0, sizeof(f));
    start(&f, NULL);
    decide_torture(&f, "RollingOut");
    fx_deployment(&f, REPO "@" B, false);
    cJSON_AddStringToObject(cJSON_GetObjectItem(f.release, "metadata"), "deletionTimestamp", "2026-11-20T00:00:00Z");
    decide_torture(&f, "RollingOut");
    assert_true(f.plan.remove_finalizer);
    assert_non_null(strstr(f.plan.deployment_patch, "\"governance.kfm.dev/release-owner\":null"));
    fx_free(&f);
}

/* ---- the contract's base URL --------------------------------------------------------------- */

typedef struct {
    const cJSON *release;
    const char *want;
    char *url;
} url_ctx;

static int url_run(void *arg)
{
    url_ctx *u = arg;
    return release_contract_base_url(&u->url, u->release);
}

static void url_check(void *arg)
{
    url_ctx *u = arg;
    assert_string_equal(u->url, u->want);
}

static void url_clear(void *arg)
{
    url_ctx *u = arg;
    free(u->url);
    u->url = NULL;
}

static void test_release_contract_base_url(void **state)
{
    (void)state;
    cJSON *with = fixture_yaml_text(
        "{metadata: {namespace: kfm}, spec: {verification: {baseURL: 'http://api:8080/v1'}}}");
    cJSON *formed = fixture_yaml_text("{metadata: {namespace: kfm}, spec: {target: {deployment: kfm-api}}}");
    url_ctx a = {.release = with, .want = "http://api:8080/v1"};
    url_ctx b = {.release = formed, .want = "http://kfm-api.kfm.svc"};
    torture_case ta = {.name = "release_contract_base_url",
                       .run = url_run,
                       .check = url_check,
                       .clear = url_clear,
                       .ctx = &a};
    /* glibc's vasprintf recovers when it cannot shrink its buffer: the URL is right all the same */
    torture_case tb = {.name = "release_contract_base_url (formed)",
                       .run = url_run,
                       .check = url_check,
                       .clear = url_clear,
                       .ctx = &b,
                       .may_succeed = true};
    assert_int_equal(torture_check(&ta), 1);
    assert_true(torture_check(&tb) > 0);
    cJSON_Delete(with);
    cJSON_Delete(formed);
}

/* ---- a release's verification input (no Secret: pure) ---------------------------------------- */

typedef struct {
    const cJSON *release;
    release_verify_input vi;
} vi_ctx;

static int vi_run(void *arg)
{
    vi_ctx *v = arg;
    return release_verify_input_build(&v->vi, NULL, v->release, "3f9c0a1b2c4d", "sha256:aa", 1795341600);
}

static void vi_check(void *arg)
{
    vi_ctx *v = arg;
    if (json_get(v->release, "spec", "verification", "baseURL", NULL)) {
        assert_string_equal(v->vi.in.contract.base_url, "http://api:8080/v1");
        assert_null(v->vi.in.contract_error);
    } else {
        assert_non_null(strstr(v->vi.in.contract_error, "the checks cannot run"));
    }
}

static void vi_clear(void *arg)
{
    vi_ctx *v = arg;
    release_verify_input_clear(&v->vi);
}

static void test_release_verify_input(void **state)
{
    (void)state;
    cJSON *with = fixture_yaml_text(
        "{metadata: {name: r, namespace: kfm, uid: u}, spec: {target: {deployment: d}, "
        "verification: {baseURL: 'http://api:8080/v1'}, membrane: {apiServiceAccount: a}}}");
    cJSON *without = fixture_yaml_text("{metadata: {name: r, namespace: kfm}, spec: {}}");
    vi_ctx a = {.release = with}, b = {.release = without};
    torture_case ta = {.name = "release_verify_input_build",
                       .run = vi_run,
                       .check = vi_check,
                       .clear = vi_clear,
                       .ctx = &a};
    torture_case tb = {.name = "release_verify_input_build (no base URL)",
                       .run = vi_run,
                       .check = vi_check,
                       .clear = vi_clear,
                       .ctx = &b};
    assert_true(torture_check(&ta) > 0);
    assert_true(torture_check(&tb) > 0);
    cJSON_Delete(with);
    cJSON_Delete(without);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gates_rollout_checks_success),
        cmocka_unit_test(test_image_gate_sealed),
        cmocka_unit_test(test_failed_check_rollback),
        cmocka_unit_test(test_missing_result_rollback),
        cmocka_unit_test(test_manual_rollback_record),
        cmocka_unit_test(test_crashloop_without_automatic_rollback),
        cmocka_unit_test(test_suspend_and_delete),
        cmocka_unit_test(test_release_contract_base_url),
        cmocka_unit_test(test_release_verify_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

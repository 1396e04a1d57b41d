/*
 * Allocation-failure torture of policy_decide (test/support/torture.h) at
 * each step of a bundle's life: the first fetch, a transient fetch failure,
 * a terminal failure, the decision tests failing, the publication with its
 * sealed receipt, the steady re-check and the hand-edited ConfigMap. A
 * decision that fails returns an error with an empty plan; every one that
 * succeeds makes the same plan as the unhindered run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "policy/decide.h"
#include "torture.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define OTHER "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static const char *const bundle_text =
    "{\"apiVersion\":\"governance.kfm.dev/v1alpha1\",\"kind\":\"PolicyBundle\","
    "\"metadata\":{\"name\":\"kfm-policy\",\"namespace\":\"kfm\",\"uid\":\"u-1\",\"generation\":2},"
    "\"spec\":{\"source\":{\"url\":\"https://bundles.example/kfm.tar.gz\",\"digest\":\"" DIGEST "\"},"
    "\"requiredRoots\":[\"kfm\"],\"decisionTests\":{\"opaURL\":\"http://127.0.0.1:8181\",\"cases\":["
    "{\"name\":\"a\",\"path\":\"kfm/allow\",\"input\":{},\"expect\":false}]}}}";

typedef struct {
    cJSON *bundle, *cm, *roots, *results;
    policy_observed obs;
    policy_plan plan;
    int rc;
    char *first;
} tctx;

static char *plan_text(const policy_plan *p)
{
    char *text = NULL, *status = p->status ? cJSON_PrintUnformatted(p->status) : NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    fprintf(f, "status %s\naction %d phase %s outcome %s cm %s drop %d requeue %ld receipt %s\n", status ? status : "-",
            p->action, p->phase ? p->phase : "-", p->outcome ? p->outcome : "-", p->configmap, p->drop_work,
            p->requeue_ms, p->receipt ? json_str(p->receipt, "auditRef", NULL) : "-");
    for (size_t i = 0; i < p->n_events; i++)
        fprintf(f, "event %s %s %s\n", p->events[i].type, p->events[i].reason, p->events[i].message);
    fclose(f);
    free(status);
    return text;
}

static int run(void *arg)
{
    tctx *t = arg;
    t->obs.bundle = t->bundle;
    t->obs.configmap = t->cm;
    return t->rc = policy_decide(&t->plan, &t->obs);
}

static void check(void *arg)
{
    tctx *t = arg;
    char *text = plan_text(&t->plan);
    if (!t->first) {
        t->first = text;
        return;
    }
    assert_string_equal(text, t->first);
    free(text);
}

static void clear(void *arg)
{
    tctx *t = arg;
    static const policy_plan empty;
    if (t->rc < 0 && memcmp(&t->plan, &empty, sizeof(empty)) != 0)
        fail_msg("policy_decide failed (%s) but left a plan", mb_error_last());
    policy_plan_clear(&t->plan);
}

/* Tortures the decision as observed, checks its phase, then applies its status as the operator's write would. */
static void torture(tctx *t, const char *phase)
{
    torture_case tc = {.name = phase,
                       .run = run,
                       .check = check,
                       .clear = clear,
                       .ctx = t,
                       .errors = {MB_ERROR},
                       .may_succeed = true};
    assert_true(torture_check(&tc) > 0);
    free(t->first);
    t->first = NULL;
    policy_plan_clear(&t->plan);
    assert_int_equal(run(t), 0);
    assert_string_equal(t->plan.phase, phase);
    if (t->plan.status) {
        cJSON_DeleteItemFromObjectCaseSensitive(t->bundle, "status");
        cJSON_AddItemToObject(t->bundle, "status", cJSON_Duplicate(t->plan.status, true));
    }
    policy_plan_clear(&t->plan);
}

static void verified(tctx *t)
{
    memset(&t->obs.work, 0, sizeof(t->obs.work));
    t->obs.work.fetch = POLICY_FETCH_DONE;
    t->obs.work.verify.revision = "r1";
    t->obs.work.verify.roots = t->roots;
    t->obs.work.verify.rego_modules = 1;
    t->obs.work.verify.size_bytes = 100;
    t->obs.work.verify.structure_checked = true;
}

static void test_life(void **state)
{
    tctx t = {0};
    (void)state;
    t.bundle = cJSON_Parse(bundle_text);
    t.roots = cJSON_Parse("[\"kfm\"]");
    t.results = cJSON_Parse("[{\"name\":\"a\",\"passed\":true,\"got\":\"false\",\"message\":\"\"}]");
    assert_non_null(t.bundle);
    t.obs.now = 1790000000;

    torture(&t, "Fetching"); /* the first look: fetch */
    t.obs.work.fetch = POLICY_FETCH_FAILED;
    t.obs.work.fetch_message = "GET answered HTTP 503";
    t.obs.work.fetch_attempts = 1;
    t.obs.work.fetch_finished_at = t.obs.now;
    torture(&t, "Fetching"); /* transient */
    verified(&t);
    torture(&t, "Verified"); /* decision tests start */
    t.obs.work.tests = POLICY_TESTS_ERROR;
    t.obs.work.tests_message = "OPA did not answer";
    t.obs.work.tests_attempts = 1;
    t.obs.work.tests_finished_at = t.obs.now;
    torture(&t, "Verified");
    t.obs.work.tests = POLICY_TESTS_DONE;
    t.obs.work.test_results = t.results;
    torture(&t, "Verified"); /* publish */
    t.obs.work.publish = POLICY_PUBLISH_DONE;
    t.obs.work.cm_uid = "cm-1";
    t.obs.work.cm_resource_version = "9";
    torture(&t, "Published"); /* with its receipt */

    memset(&t.obs.work, 0, sizeof(t.obs.work));
    t.cm = cJSON_Parse("{\"metadata\":{\"name\":\"kfm-policy-bundle\",\"namespace\":\"kfm\",\"ownerReferences\":[{"
                       "\"uid\":\"u-1\",\"controller\":true}]},\"data\":{\"digest\":\"" DIGEST "\"},"
                       "\"binaryData\":{\"bundle.tar.gz\":\"" DIGEST "\"}}");
    torture(&t, "Published"); /* steady */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(t.cm, "binaryData"), "bundle.tar.gz", cJSON_CreateString(OTHER));
    torture(&t, "Fetching"); /* edited by hand: restored */

    t.obs.work.fetch = POLICY_FETCH_DONE;
    t.obs.work.verify.reason = "DigestMismatch";
    t.obs.work.verify.message = "the bytes hash to " OTHER;
    torture(&t, "Failed");

    cJSON_Delete(t.bundle);
    cJSON_Delete(t.cm);
    cJSON_Delete(t.roots);
    cJSON_Delete(t.results);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_life),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

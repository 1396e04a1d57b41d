/*
 * release_decide when another field manager takes the image back (a GitOps
 * tool re-applying the image it holds in Git): the release stops where it is,
 * Stalled=True ConflictingManager naming that manager, one Warning Event, and
 * no patch that would fight it; membrane's own unfinished patch, its own
 * image, or another container's manager are no conflict.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "release/decide.h"
#include "release_fixture.h"
#include "runtime/conditions.h"
#include "util/json.h"

#include <stdio.h>
#include <string.h>

#define RID "5dee29fd7e28" /* kfm/kfm-api generation 3 at B */

static int decide(fx *f)
{
    release_plan_clear(&f->plan);
    fx_observe(f);
    return release_decide(&f->plan, &f->obs);
}

static void fx_apply(fx *f)
{
    if (f->plan.status) {
        cJSON_DeleteItemFromObject(f->release, "status");
        cJSON_AddItemToObject(f->release, "status", cJSON_Duplicate(f->plan.status, true));
    }
}

static bool has_event(const fx *f, const char *reason)
{
    for (size_t i = 0; i < f->plan.n_events; i++)
        if (strcmp(f->plan.events[i].reason, reason) == 0)
            return true;
    return false;
}

static const char *event_message(const fx *f, const char *reason)
{
    for (size_t i = 0; i < f->plan.n_events; i++)
        if (strcmp(f->plan.events[i].reason, reason) == 0)
            return f->plan.events[i].message;
    return NULL;
}

static const cJSON *cond(const fx *f, const char *type)
{
    return conditions_get(f->plan.status ? f->plan.status : json_get(f->release, "status", NULL), type);
}

/*
 * The Deployment as the cache keeps it after our rollout patch (release-id
 * RID on the pod template, when landed) and then manager's write of image to
 * container (a managedFields entry, cut down to the image as the cache's trim
 * leaves it).
 */
static void deployment_set_by(fx *f, const char *image, const char *manager, const char *container, bool landed)
{
    cJSON_Delete(f->deployment);
    f->deployment = fx_deployment_new(image, 3, true, "kfm/kfm-api");
    if (landed)
        json_set_str(json_ensure_object(f->deployment, "spec", "template", "metadata", "annotations", NULL),
                     "governance.kfm.dev/release-id", RID);
    cJSON_AddItemToObject(
        cJSON_GetObjectItem(f->deployment, "metadata"), "managedFields",
        fx_parse("[{\"manager\":\"membrane\",\"operation\":\"Update\",\"fieldsV1\":{\"f:spec\":{\"f:template\":"
                 "{\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":\\\"api\\\"}\":{\"f:image\":{}}}}}}}},"
                 "{\"manager\":\"%s\",\"operation\":\"Apply\",\"fieldsV1\":{\"f:spec\":{\"f:template\":"
                 "{\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":\\\"%s\\\"}\":{\"f:image\":{}}}}}}}}]",
                 manager, container));
}

static void start_rollout(fx *f)
{
    f->release = fx_release_new(3, B, NULL);
    f->deployment = fx_deployment_new(REPO "@" A, 3, true, NULL);
    fx_pods(f, REPO "@" A, 3, false);
    assert_int_equal(decide(f), 0);
    assert_string_equal(f->plan.phase, "RollingOut");
    fx_apply(f);
    f->obs.now = T0 + 5;
}

static void assert_conflict(const fx *f, const char *phase, const char *manager)
{
    char want[128];
    snprintf(want, sizeof(want), "field manager \"%s\"", manager);
    assert_string_equal(f->plan.phase, phase);
    assert_null(f->plan.deployment_patch);
    assert_string_equal(json_str(cond(f, "Stalled"), "status", NULL), "True");
    assert_string_equal(json_str(cond(f, "Stalled"), "reason", NULL), "ConflictingManager");
    assert_string_equal(json_str(cond(f, "Ready"), "status", NULL), "False");
    assert_null(cond(f, "Reconciling"));
    assert_non_null(strstr(json_str(cond(f, "Stalled"), "message", NULL), want));
    assert_non_null(strstr(json_str(cond(f, "Stalled"), "message", NULL), "docs/install.md"));
    assert_true(has_event(f, "ConflictingManager"));
    assert_non_null(strstr(event_message(f, "ConflictingManager"), want));
    assert_false(has_event(f, "TriggerFired"));
}

/* Our own patch that did not land (no release-id of this release on the template) is sent again. */
static void patch_not_landed_is_resent(void)
{
    fx f = {0};
    start_rollout(&f);
    deployment_set_by(&f, REPO "@" A, "kustomize-controller", "api", false);
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingOut");
    assert_non_null(f.plan.deployment_patch);
    assert_non_null(strstr(f.plan.deployment_patch, REPO "@" B));
    assert_false(has_event(&f, "ConflictingManager"));
    fx_free(&f);
}

/* Another manager owning another container's image, or membrane owning this one: no conflict. */
static void no_conflict_without_another_manager_of_the_image(void)
{
    fx f = {0};
    start_rollout(&f);
    deployment_set_by(&f, REPO "@" A, "kustomize-controller", "sidecar", true);
    assert_int_equal(decide(&f), 0);
    assert_non_null(f.plan.deployment_patch);
    assert_false(has_event(&f, "ConflictingManager"));

    deployment_set_by(&f, REPO "@" A, "membrane", "api", true);
    assert_int_equal(decide(&f), 0);
    assert_non_null(f.plan.deployment_patch);
    assert_false(has_event(&f, "ConflictingManager"));

    /* the image is the release's, whoever applied it last (a GitOps tool holding the same image) */
    deployment_set_by(&f, REPO "@" B, "kustomize-controller", "api", true);
    assert_int_equal(decide(&f), 0);
    assert_null(f.plan.deployment_patch);
    assert_false(has_event(&f, "ConflictingManager"));
    fx_free(&f);
}

/*
 * The rollout patch landed, then Flux applied Git's image again: no second patch, ConflictingManager, once
 * (and not before: an unfinished patch of membrane's own, another container's manager, membrane's own image).
 */
static void test_rolling_out_image_taken_back(void **state)
{
    (void)state;
    fx f = {0};
    patch_not_landed_is_resent();
    no_conflict_without_another_manager_of_the_image();
    start_rollout(&f);
    deployment_set_by(&f, REPO "@" A, "kustomize-controller", "api", true);
    assert_int_equal(decide(&f), 0);
    assert_conflict(&f, "RollingOut", "kustomize-controller");
    assert_non_null(strstr(json_str(cond(&f, "Stalled"), "message", NULL), "to " REPO "@" A));

    /* looked at again: nothing to write, no second Event, still no patch; nor after the progress deadline */
    fx_apply(&f);
    f.obs.now = T0 + 700;
    assert_int_equal(decide(&f), 0);
    assert_null(f.plan.deployment_patch);
    assert_null(f.plan.status);
    assert_false(has_event(&f, "ConflictingManager"));
    assert_false(has_event(&f, "TriggerFired"));
    fx_free(&f);
}

/* Taken back while Verifying, or after the release Succeeded: said, not fought, and no success on it. */
static void test_verifying_and_succeeded_image_taken_back(void **state)
{
    (void)state;
    fx f = {0};
    f.release = fx_release_new(3, B, NULL);
    json_set_item(f.release, "status",
                  fx_parse("{\"observedGeneration\":3,\"phase\":\"Verifying\",\"releaseID\":\"" RID "\","
                           "\"rollbackTarget\":\"" A "\",\"rollbackImage\":\"" REPO "@" A "\"}"));
    deployment_set_by(&f, REPO "@" A, "argocd-controller", "api", true);
    fx_pods(&f, REPO "@" A, 3, false);
    assert_int_equal(decide(&f), 0);
    assert_conflict(&f, "Verifying", "argocd-controller");
    assert_false(f.plan.run_checks);

    json_set_item(f.release, "status",
                  fx_parse("{\"observedGeneration\":3,\"phase\":\"Succeeded\",\"releaseID\":\"" RID "\","
                           "\"rollbackTarget\":\"" A "\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
                           "\"reason\":\"Succeeded\",\"message\":\"m\",\"observedGeneration\":3,"
                           "\"lastTransitionTime\":\"2026-11-18T00:00:00Z\"}]}"));
    assert_int_equal(decide(&f), 0);
    assert_conflict(&f, "Succeeded", "argocd-controller");
    /* the operator replaces the release as read with the written one before it logs the plan's phase: the
       phase must not point into the old object (under ASan and valgrind this reads freed memory otherwise) */
    json_set_item(f.release, "status", fx_parse("{\"phase\":\"Overwritten\"}"));
    assert_string_equal(f.plan.phase, "Succeeded");
    fx_free(&f);
}

/* A rollback whose image another manager took back is not patched again either. */
static void test_rolling_back_image_taken_back(void **state)
{
    (void)state;
    fx f = {0};
    start_rollout(&f);
    deployment_set_by(&f, REPO "@" B, "membrane", "api", true);
    f.pods[f.n_pods++] = fx_pod_new("kfm-api-new", REPO "@" B, "CrashLoopBackOff", 5);
    f.obs.now = T0 + 30;
    assert_int_equal(decide(&f), 0);
    assert_string_equal(f.plan.phase, "RollingBack");
    fx_apply(&f);
    deployment_set_by(&f, REPO "@" C, "kubectl-edit", "api", true);
    assert_int_equal(decide(&f), 0);
    assert_conflict(&f, "RollingBack", "kubectl-edit");
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rolling_out_image_taken_back),
        cmocka_unit_test(test_verifying_and_succeeded_image_taken_back),
        cmocka_unit_test(test_rolling_back_image_taken_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

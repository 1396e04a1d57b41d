/*
 * api/informers: the trim transforms keep what decide reads. Deployments and
 * pods as the API server sends them (managedFields, labels, annotations,
 * selector, template metadata, ports, env, the whole status) are trimmed to the
 * fields listed in informers.c (the pod template's annotations of ours, which the
 * conflict check reads, and its service account, which the membrane-rbac
 * identity check reads, among them); and release_decide on the trimmed release,
 * Deployment and pods gives the same plan as on the whole objects, through a
 * release's life: gating and the rollout patch, rolling out, verifying, a
 * crash loop and its rollback, a progress deadline, a manual rollback request.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "release_fixture.h"

#include "api/informers.h"
#include "api/resources.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MANAGED_ENTRY "{\"manager\":\"kubectl\",\"operation\":\"Apply\",\"fieldsV1\":{\"f:spec\":{}}}"
#define MANAGED "\"managedFields\":[" MANAGED_ENTRY "]"
#define LAST_APPLIED "\"kubectl.kubernetes.io/last-applied-configuration\":\"{\\\"big\\\":true}\""

/* A Deployment as the API server sends it: image on replicas, rolled out when done, owned by owner. */
static cJSON *fat_deployment(const char *image, int replicas, bool done, const char *owner, bool deadline)
{
    return fx_parse(
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"namespace\":\"kfm\",\"name\":\"kfm-api\","
        "\"uid\":\"u-1\",\"generation\":4,\"resourceVersion\":\"77\",\"creationTimestamp\":\"2026-11-01T00:00:00Z\","
        "\"labels\":{\"app\":\"kfm-api\"},\"annotations\":{\"deployment.kubernetes.io/revision\":\"3\"," LAST_APPLIED
        "%s%s%s}," MANAGED "},"
        "\"spec\":{\"replicas\":%d,\"selector\":{\"matchLabels\":{\"app\":\"kfm-api\"}},\"strategy\":{\"type\":"
        "\"RollingUpdate\"},\"progressDeadlineSeconds\":600,\"template\":{\"metadata\":{\"labels\":{\"app\":"
        "\"kfm-api\"},\"annotations\":{\"governance.kfm.dev/release-id\":\"0123456789ab\"}},\"spec\":{"
        "\"serviceAccountName\":\"kfm-api\",\"containers\":[{\"name\":\"sidecar\",\"image\":\"opa@" C "\","
        "\"ports\":[{\"containerPort\":8181}]},{\"name\":\"api\",\"image\":\"%s\",\"env\":[{\"name\":\"X\","
        "\"value\":\"1\"}],\"ports\":[{\"containerPort\":8080}],\"resources\":{\"limits\":{\"memory\":\"128Mi\"}}}]}}},"
        "\"status\":{\"observedGeneration\":%d,\"replicas\":%d,\"updatedReplicas\":%d,\"readyReplicas\":%d,"
        "\"availableReplicas\":%d,\"conditions\":[{\"type\":\"Available\",\"status\":\"True\",\"reason\":"
        "\"MinimumReplicasAvailable\",\"message\":\"Deployment has minimum availability.\",\"lastUpdateTime\":"
        "\"2026-11-01T00:00:00Z\",\"lastTransitionTime\":\"2026-11-01T00:00:00Z\"},{\"type\":\"Progressing\","
        "\"status\":\"%s\",\"reason\":\"%s\",\"message\":\"ReplicaSet \\\"kfm-api-5d8f\\\" is progressing.\","
        "\"lastUpdateTime\":\"2026-11-01T00:00:00Z\",\"lastTransitionTime\":\"2026-11-01T00:00:00Z\"}]}}",
        owner ? ",\"governance.kfm.dev/release-owner\":\"" : "", owner ? owner : "", owner ? "\"" : "", replicas, image,
        done ? 4 : 3, replicas, done ? replicas : 0, done ? replicas : 0, done ? replicas : 0,
        deadline ? "False" : "True", deadline ? "ProgressDeadlineExceeded" : "NewReplicaSetAvailable");
}

/* A pod of image as the API server sends it, crash-looping with 5 restarts when crash. */
static cJSON *fat_pod(int i, const char *image, bool crash)
{
    return fx_parse(
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"namespace\":\"kfm\",\"name\":\"kfm-api-5d8f-%d\","
        "\"uid\":\"p-%d\",\"resourceVersion\":\"9%d\",\"labels\":{\"app\":\"kfm-api\",\"pod-template-hash\":\"5d8f\"},"
        "\"annotations\":{\"kubectl.kubernetes.io/restartedAt\":\"x\"},\"ownerReferences\":[{\"apiVersion\":"
        "\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"kfm-api-5d8f\",\"uid\":\"rs\",\"controller\":true}]," MANAGED
        "},\"spec\":{\"nodeName\":\"kwok-node-0\",\"containers\":[{\"name\":\"api\",\"image\":\"%s\",\"ports\":"
        "[{\"containerPort\":8080}]}]},\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.%d\",\"conditions\":"
        "[{\"type\":\"Ready\",\"status\":\"%s\"}],\"containerStatuses\":[{\"name\":\"api\",\"image\":\"%s\","
        "\"imageID\":\"x\",\"ready\":%s,\"restartCount\":%d,\"lastState\":{\"terminated\":{\"exitCode\":1}},"
        "\"state\":%s}]}}",
        i, i, i, image, i, crash ? "False" : "True", image, crash ? "false" : "true", crash ? 5 : 0,
        crash ? "{\"waiting\":{\"reason\":\"CrashLoopBackOff\",\"message\":\"back-off 40s\"}}"
              : "{\"running\":{\"startedAt\":\"2026-11-01T00:00:00Z\"}}");
}

/* The release as the API server sends it: fx_release_new's, with what the server and kubectl add. */
static cJSON *fat_release(const char *annotations)
{
    cJSON *r = fx_release_new(2, B, NULL);
    cJSON *meta = json_ensure_object(r, "metadata", NULL);
    assert_int_equal(json_set_str(r, "apiVersion", RELEASE_API_VERSION), 0);
    assert_int_equal(json_set_str(r, "kind", RELEASE_KIND), 0);
    assert_int_equal(json_set_str(meta, "uid", "r-1"), 0);
    assert_int_equal(json_set_str(meta, "resourceVersion", "50"), 0);
    assert_int_equal(json_set_str(meta, "creationTimestamp", "2026-11-01T00:00:00Z"), 0);
    assert_int_equal(json_set_item(meta, "labels", fx_parse("{\"team\":\"kfm\"}")), 0);
    assert_int_equal(json_set_item(meta, "managedFields", fx_parse("[" MANAGED_ENTRY "]")), 0);
    assert_int_equal(json_set_item(meta, "annotations", fx_parse("{" LAST_APPLIED "%s}", annotations)), 0);
    return r;
}

/* A copy of obj trimmed as the informer caches it (informer_trim: managedFields, last-applied, the transform). */
static cJSON *trimmed(const kube_resource *res, const cJSON *obj)
{
    cJSON *t = cJSON_Duplicate(obj, true);
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(t, "metadata");
    void (*trim)(cJSON *) = api_trim(res);
    assert_non_null(t);
    assert_non_null(trim);
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "managedFields");
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(meta, "annotations"),
                                            "kubectl.kubernetes.io/last-applied-configuration");
    trim(t);
    return t;
}

static void assert_json(const cJSON *got, const char *want)
{
    char *s = cJSON_PrintUnformatted(got);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
}

static void test_deployment_and_pod_keep_what_decide_reads(void **state)
{
    (void)state;
    cJSON *d = fat_deployment("ghcr.io/kfm/kfm-api@" A, 2, true, "kfm/kfm-api", false);
    cJSON *p = fat_pod(0, "ghcr.io/kfm/kfm-api@" A, true);
    cJSON *td = trimmed(&KUBE_DEPLOYMENTS, d), *tp = trimmed(&KUBE_PODS, p);
    assert_json(td,
                "{\"metadata\":{\"namespace\":\"kfm\",\"name\":\"kfm-api\",\"uid\":\"u-1\",\"generation\":4,"
                "\"resourceVersion\":\"77\",\"annotations\":{\"governance.kfm.dev/release-owner\":\"kfm/kfm-api\"}},"
                "\"spec\":{\"replicas\":2,\"template\":{\"metadata\":{\"annotations\":{\"governance.kfm.dev/"
                "release-id\":\"0123456789ab\"}},\"spec\":{\"serviceAccountName\":\"kfm-api\",\"containers\":[{"
                "\"name\":\"sidecar\",\"image\":"
                "\"opa@" C "\"},{\"name\":\"api\",\"image\":\"ghcr.io/kfm/kfm-api@" A "\"}]}}},"
                "\"status\":{\"observedGeneration\":4,\"updatedReplicas\":2,\"availableReplicas\":2,\"conditions\":"
                "[{\"type\":\"Available\",\"status\":\"True\",\"reason\":\"MinimumReplicasAvailable\"},"
                "{\"type\":\"Progressing\",\"status\":\"True\",\"reason\":\"NewReplicaSetAvailable\"}]}}");
    assert_json(tp, "{\"metadata\":{\"namespace\":\"kfm\",\"name\":\"kfm-api-5d8f-0\",\"uid\":\"p-0\","
                    "\"resourceVersion\":\"90\",\"labels\":{\"app\":\"kfm-api\",\"pod-template-hash\":\"5d8f\"},"
                    "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":"
                    "\"kfm-api-5d8f\",\"uid\":\"rs\",\"controller\":true}]},\"spec\":{\"containers\":[{\"name\":"
                    "\"api\",\"image\":\"ghcr.io/kfm/kfm-api@" A "\"}]},\"status\":{\"containerStatuses\":[{\"name\":"
                    "\"api\",\"restartCount\":5,\"state\":{\"waiting\":{\"reason\":\"CrashLoopBackOff\"}}}]}}");
    cJSON_Delete(d);
    cJSON_Delete(p);
    cJSON_Delete(td);
    cJSON_Delete(tp);
}

static void test_release_keeps_spec_status_and_our_metadata(void **state)
{
    (void)state;
    cJSON *r = fat_release(",\"governance.kfm.dev/rollback\":\"true\",\"other.io/x\":\"y\"");
    cJSON *t = trimmed(&API_GOVERNEDAPIRELEASES, r);
    assert_true(cJSON_Compare(json_get(t, "spec", NULL), json_get(r, "spec", NULL), true));
    assert_json(
        json_get(t, "metadata", NULL),
        "{\"namespace\":\"kfm\",\"name\":\"kfm-api\",\"uid\":\"r-1\",\"generation\":2,\"resourceVersion\":\"50\","
        "\"finalizers\":[\"governance.kfm.dev/release\"],\"annotations\":{\"governance.kfm.dev/rollback\":\"true\"}}");
    assert_string_equal(json_str(t, "apiVersion", NULL), RELEASE_API_VERSION);
    cJSON_Delete(r);
    cJSON_Delete(t);
}

/* One step of a release's life: decide on the whole objects and on the trimmed ones, and compare the plans. */
typedef struct {
    cJSON *release; /* whole; its status follows the plans */
    cJSON *deployment;
    cJSON *pods[4];
    size_t n_pods;
    time_t now;
} life;

static char *plan_text(const release_plan *p)
{
    char *status = p->status ? cJSON_PrintUnformatted(p->status) : strdup("-"), *out = NULL;
    size_t len = 4096 + strlen(status) + (p->deployment_patch ? strlen(p->deployment_patch) : 0);
    assert_non_null(status);
    out = calloc(1, len);
    assert_non_null(out);
    int n = snprintf(out, len, "status %s\npatch %s\nphase %s requeue %ld fin +%d -%d clear %d checks %d %s\n", status,
                     p->deployment_patch ? p->deployment_patch : "-", p->phase ? p->phase : "-", p->requeue_ms,
                     p->add_finalizer, p->remove_finalizer, p->clear_rollback_annotation, p->run_checks,
                     p->checks_release_id);
    for (size_t i = 0; i < p->n_events; i++)
        n += snprintf(out + n, len - (size_t)n, "event %s %s %s\n", p->events[i].type, p->events[i].reason,
                      p->events[i].message);
    free(status);
    return out;
}

/* Decides on both; asserts the same plan; the whole release takes the plan's status. Returns the phase. */
static void step(life *l, const char *results, const char *want_phase)
{
    cJSON *tr = trimmed(&API_GOVERNEDAPIRELEASES, l->release);
    cJSON *td = l->deployment ? trimmed(&KUBE_DEPLOYMENTS, l->deployment) : NULL;
    cJSON *tp[4] = {0}, *res = results ? cJSON_Parse(results) : NULL;
    release_observed whole = {.release = l->release,
                              .deployment = l->deployment,
                              .pods = (const cJSON *const *)l->pods,
                              .n_pods = l->n_pods,
                              .now = l->now};
    release_observed cut = whole;
    release_plan pw, pc;
    char *a, *b;
    for (size_t i = 0; i < l->n_pods; i++)
        tp[i] = trimmed(&KUBE_PODS, l->pods[i]);
    cut.release = tr;
    cut.deployment = td;
    cut.pods = (const cJSON *const *)tp;
    if (res) {
        const char *rid = json_str(l->release, "status", "releaseID", NULL);
        whole.checks = (release_checks){true, rid, l->now, l->now, res};
        cut.checks = whole.checks;
    }
    assert_int_equal(release_decide(&pw, &whole), 0);
    assert_int_equal(release_decide(&pc, &cut), 0);
    a = plan_text(&pw);
    b = plan_text(&pc);
    assert_string_equal(b, a);
    if (want_phase)
        assert_string_equal(pw.phase, want_phase);
    if (pw.status)
        assert_int_equal(json_set_item(l->release, "status", cJSON_Duplicate(pw.status, true)), 0);
    free(a);
    free(b);
    release_plan_clear(&pw);
    release_plan_clear(&pc);
    cJSON_Delete(tr);
    cJSON_Delete(td);
    cJSON_Delete(res);
    for (size_t i = 0; i < l->n_pods; i++)
        cJSON_Delete(tp[i]);
}

static void set_deployment(life *l, cJSON *d)
{
    cJSON_Delete(l->deployment);
    l->deployment = d;
}

static void set_pods(life *l, const char *image, size_t n, bool crash)
{
    for (size_t i = 0; i < l->n_pods; i++)
        cJSON_Delete(l->pods[i]);
    for (size_t i = 0; i < n; i++)
        l->pods[i] = fat_pod((int)i, image, crash);
    l->n_pods = n;
}

static void life_free(life *l)
{
    set_pods(l, NULL, 0, false);
    cJSON_Delete(l->deployment);
    cJSON_Delete(l->release);
}

#define PASSED                                                                                                         \
    "[{\"name\":\"health\",\"passed\":true,\"httpStatus\":200,\"latencyMs\":3,\"message\":\"ok\"},"                    \
    "{\"name\":\"focus-ask\",\"passed\":true,\"httpStatus\":200,\"latencyMs\":4,\"message\":\"ok\"}]"

static void test_decide_same_plan_rollout_and_crash_loop(void **state)
{
    (void)state;
    life l = {.release = fat_release(""), .now = T0};
    set_deployment(&l, fat_deployment(REPO "@" A, 2, true, NULL, false));
    set_pods(&l, REPO "@" A, 2, false);
    step(&l, NULL, NULL); /* gating: the finalizer, the status, the rollout patch */
    step(&l, NULL, NULL);
    l.now += 5;
    set_deployment(&l, fat_deployment(REPO "@" B, 2, false, "kfm/kfm-api", false));
    step(&l, NULL, "RollingOut");
    set_pods(&l, REPO "@" B, 2, true); /* the new pods crash-loop: rollback */
    l.now += 5;
    step(&l, NULL, NULL);
    step(&l, NULL, NULL);
    life_free(&l);
}

static void test_decide_same_plan_verify_and_manual_rollback(void **state)
{
    (void)state;
    life l = {.release = fat_release(""), .now = T0};
    set_deployment(&l, fat_deployment(REPO "@" A, 2, true, NULL, false));
    set_pods(&l, REPO "@" A, 2, false);
    step(&l, NULL, NULL);
    set_deployment(&l, fat_deployment(REPO "@" B, 2, true, "kfm/kfm-api", false));
    set_pods(&l, REPO "@" B, 2, false);
    l.now += 5;
    step(&l, NULL, NULL); /* rolled out: the checks */
    step(&l, PASSED, NULL);
    l.now += 3600;
    step(&l, PASSED, NULL);
    /* a manual rollback request on the release */
    cJSON *ann = json_ensure_object(l.release, "metadata", "annotations", NULL);
    assert_int_equal(json_set_str(ann, RELEASE_ROLLBACK_ANNOTATION, "true"), 0);
    assert_int_equal(json_set_str(ann, RELEASE_ROLLBACK_REASON_ANNOTATION, "bad answers"), 0);
    assert_int_equal(json_set_str(ann, RELEASE_ROLLBACK_APPROVER_ANNOTATION, "oncall"), 0);
    step(&l, NULL, NULL);
    step(&l, NULL, NULL);
    life_free(&l);
}

static void test_decide_same_plan_progress_deadline(void **state)
{
    (void)state;
    life l = {.release = fat_release(""), .now = T0};
    set_deployment(&l, fat_deployment(REPO "@" A, 2, true, NULL, false));
    step(&l, NULL, NULL);
    set_deployment(&l, fat_deployment(REPO "@" B, 2, false, "kfm/kfm-api", true));
    l.now += 5;
    step(&l, NULL, NULL);
    step(&l, NULL, NULL);
    life_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deployment_and_pod_keep_what_decide_reads),
        cmocka_unit_test(test_release_keeps_spec_status_and_our_metadata),
        cmocka_unit_test(test_decide_same_plan_rollout_and_crash_loop),
        cmocka_unit_test(test_decide_same_plan_verify_and_manual_rollback),
        cmocka_unit_test(test_decide_same_plan_progress_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

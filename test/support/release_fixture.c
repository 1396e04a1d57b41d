/*
 * Fixtures for the tests of release_decide (release_fixture.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "release_fixture.h"

#include <stdio.h>
#include <stdlib.h>

cJSON *fx_parse(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    assert_true(vasprintf(&s, fmt, ap) >= 0);
    va_end(ap);
    cJSON *j = cJSON_Parse(s);
    if (!j)
        fail_msg("fixture does not parse: %s", s);
    free(s);
    return j;
}

cJSON *fx_release_new(long gen, const char *digest, const char *extra_spec)
{
    return fx_parse("{\"apiVersion\":\"governance.kfm.dev/v1alpha1\",\"kind\":\"GovernedAPIRelease\","
                    "\"metadata\":{\"namespace\":\"kfm\",\"name\":\"kfm-api\",\"uid\":\"u-1\",\"generation\":%ld,"
                    "\"resourceVersion\":\"10\",\"finalizers\":[\"governance.kfm.dev/release\"]},"
                    "\"spec\":{\"environment\":\"staging\",\"changeRecord\":\"CHG-1\","
                    "\"target\":{\"deployment\":\"kfm-api\",\"container\":\"api\"},"
                    "\"image\":{\"repository\":\"" REPO "\",\"digest\":\"%s\"},"
                    "\"verification\":{\"checks\":[\"health\",\"focus-ask\"]}%s%s}}",
                    gen, digest, extra_spec ? "," : "", extra_spec ? extra_spec : "");
}

cJSON *fx_deployment_new(const char *image, int replicas, bool done, const char *owner)
{
    return fx_parse(
        "{\"metadata\":{\"namespace\":\"kfm\",\"name\":\"kfm-api\",\"generation\":4,\"resourceVersion\":\"77\","
        "\"annotations\":{%s%s%s}},"
        "\"spec\":{\"replicas\":%d,\"template\":{\"spec\":{\"containers\":["
        "{\"name\":\"sidecar\",\"image\":\"opa@" C "\"},{\"name\":\"api\",\"image\":\"%s\"}]}}},"
        "\"status\":{\"observedGeneration\":%d,\"replicas\":%d,\"updatedReplicas\":%d,\"availableReplicas\":%d}}",
        owner ? "\"governance.kfm.dev/release-owner\":\"" : "", owner ? owner : "", owner ? "\"" : "", replicas, image,
        done ? 4 : 3, replicas, done ? replicas : 0, done ? replicas : 0);
}

cJSON *fx_pod_new(const char *name, const char *image, const char *waiting, int restarts)
{
    return fx_parse("{\"metadata\":{\"namespace\":\"kfm\",\"name\":\"%s\"},"
                    "\"spec\":{\"containers\":[{\"name\":\"api\",\"image\":\"%s\"}]},"
                    "\"status\":{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"api\",\"restartCount\":%d,"
                    "\"state\":%s}]}}",
                    name, image, restarts,
                    waiting ? "{\"waiting\":{\"reason\":\"CrashLoopBackOff\"}}" : "{\"running\":{}}");
}

void fx_pods(fx *f, const char *image, int n, bool crash)
{
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "kfm-api-%d", i);
        f->pods[f->n_pods++] = fx_pod_new(name, image, crash ? "CrashLoopBackOff" : NULL, crash ? 5 : 0);
    }
}

void fx_checks(fx *f, const char *rid, const char *results_json)
{
    cJSON_Delete(f->results);
    f->results = cJSON_Parse(results_json);
    assert_non_null(f->results);
    f->obs.checks.ran = true;
    f->obs.checks.release_id = rid;
    f->obs.checks.started_at = f->obs.now;
    f->obs.checks.finished_at = f->obs.now;
    f->obs.checks.results = f->results;
}

void fx_observe(fx *f)
{
    f->obs.release = f->release;
    f->obs.deployment = f->deployment;
    f->obs.pods = (const cJSON *const *)f->pods;
    f->obs.n_pods = f->n_pods;
    f->obs.policy_bundle = f->bundle;
    f->obs.upstream = (const cJSON *const *)f->upstream;
    f->obs.n_upstream = f->n_upstream;
    if (!f->obs.now)
        f->obs.now = T0;
}

void fx_free(fx *f)
{
    release_plan_clear(&f->plan);
    cJSON_Delete(f->release);
    cJSON_Delete(f->deployment);
    for (size_t i = 0; i < f->n_pods; i++)
        cJSON_Delete(f->pods[i]);
    cJSON_Delete(f->bundle);
    for (size_t i = 0; i < f->n_upstream; i++)
        cJSON_Delete(f->upstream[i]);
    cJSON_Delete(f->results);
}

/*
 * Check runs that never hold their caller (verify/runner.h), against the
 * loopback replay server: verify_run_start returns while the answers are
 * still on their way and done is called once when they are in, with the
 * results judged; input the contract checks cannot run with fails every
 * check it asked for; membrane checks that cannot see the cluster fail (on
 * the executor's thread); published-only judges against the index ConfigMap
 * read through the Kubernetes API when the check runs, and fails closed when
 * it is missing or cannot be read; a run let go of before its end never
 * calls done.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kube/client.h"
#include "replay.h"
#include "util/error.h"
#include "util/json.h"
#include "verify/runner.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int done_calls;

static void on_done(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&done_calls, 1);
}

static bool wait_done(int want, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        if (atomic_load(&done_calls) >= want)
            return true;
        usleep(10 * 1000);
    }
    return atomic_load(&done_calls) >= want;
}

static verify_input input(const char *base_url, cJSON *checks)
{
    return (verify_input){
        .owner = {"kfm", "kfm-api", "u-1", "governance.kfm.dev/v1alpha1"},
        .release_id = "3f9c0a1b2c4d",
        .target_deployment = "kfm-api",
        .contract = {.base_url = base_url, .timeout_ms = 5000, .checks = checks, .release_id = "3f9c0a1b2c4d"},
    };
}

static void test_run_returns_before_answers(void **state)
{
    (void)state;
    replay *srv = NULL;
    net_loop *loop = NULL;
    verify_executor *ex = NULL;
    verify_run *run = NULL;
    cJSON *checks = cJSON_Parse("[\"health\",\"ready\"]"), *res = NULL;
    atomic_store(&done_calls, 0);
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_route(srv, "GET", "/healthz", &(replay_reply){.status = 200, .body = "ok", .delay_ms = 800});
    replay_route(srv, "GET", "/readyz", &(replay_reply){.status = 503, .body = "no", .delay_ms = 800});
    assert_int_equal(net_loop_new(&loop, NULL), 0);
    assert_int_equal(verify_executor_new(&ex), 0);
    verify_input in = input(replay_url(srv), checks);
    assert_int_equal(verify_run_start(&run, &in, NULL, loop, ex, on_done, NULL), 0);
    /* the caller is back while both answers are still delayed */
    assert_false(verify_run_finished(run, NULL));
    assert_int_equal(verify_run_results(&res, run), MB_EINVAL);
    assert_null(res);
    assert_true(wait_done(1, 10000));
    time_t at = 0;
    assert_true(verify_run_finished(run, &at));
    assert_true(at > 0);
    assert_int_equal(verify_run_results(&res, run), 0);
    assert_int_equal(cJSON_GetArraySize(res), 2);
    assert_string_equal(json_str(cJSON_GetArrayItem(res, 0), "name", NULL), "health");
    assert_true(json_bool(false, cJSON_GetArrayItem(res, 0), "passed", NULL));
    assert_string_equal(json_str(cJSON_GetArrayItem(res, 1), "name", NULL), "ready");
    assert_false(json_bool(true, cJSON_GetArrayItem(res, 1), "passed", NULL));
    assert_string_equal(json_str(cJSON_GetArrayItem(res, 1), "trigger", NULL), "SmokeFailure");
    usleep(50 * 1000);
    assert_int_equal(atomic_load(&done_calls), 1);
    cJSON_Delete(res);
    verify_run_free(run);
    verify_executor_free(ex);
    net_loop_free(loop);
    replay_free(srv);
    cJSON_Delete(checks);
}

static void test_contract_cannot_run(void **state)
{
    (void)state;
    net_loop *loop = NULL;
    verify_executor *ex = NULL;
    verify_run *run = NULL;
    cJSON *checks = cJSON_Parse("[\"health\",\"focus-ask\"]"), *res = NULL;
    atomic_store(&done_calls, 0);
    assert_int_equal(net_loop_new(&loop, NULL), 0);
    assert_int_equal(verify_executor_new(&ex), 0);

    /* the builder could not form the input: every check asked for fails with its reason */
    verify_input in = input(NULL, checks);
    in.contract_error = "the checks cannot run: the verification base URL cannot be formed";
    assert_int_equal(verify_run_start(&run, &in, NULL, loop, ex, on_done, NULL), 0);
    assert_true(wait_done(1, 5000));
    assert_int_equal(verify_run_results(&res, run), 0);
    assert_int_equal(cJSON_GetArraySize(res), 2);
    assert_false(json_bool(true, cJSON_GetArrayItem(res, 1), "passed", NULL));
    assert_string_equal(json_str(cJSON_GetArrayItem(res, 1), "trigger", NULL), "UncitedAnswer");
    assert_string_equal(json_str(cJSON_GetArrayItem(res, 1), "message", NULL), in.contract_error);
    cJSON_Delete(res);
    verify_run_free(run);

    /* input contract.c refuses (focus-ask without a question): the same, with contract.c's words */
    verify_input bad = input("http://127.0.0.1:1", checks);
    assert_int_equal(verify_run_start(&run, &bad, NULL, loop, ex, on_done, NULL), 0);
    assert_true(wait_done(2, 5000));
    assert_int_equal(verify_run_results(&res, run), 0);
    assert_int_equal(cJSON_GetArraySize(res), 2);
    assert_non_null(strstr(json_str(cJSON_GetArrayItem(res, 0), "message", NULL),
                           "the checks cannot run: focus-ask needs spec.verification.focusQuestion"));
    cJSON_Delete(res);
    verify_run_free(run);
    verify_executor_free(ex);
    net_loop_free(loop);
    cJSON_Delete(checks);
}

static void test_membrane_unseen_fails(void **state)
{
    (void)state;
    net_loop *loop = NULL;
    verify_executor *ex = NULL;
    verify_run *run = NULL;
    kube_client *client = NULL;
    kube_config *cfg = NULL;
    cJSON *checks = cJSON_Parse("[\"health\"]"), *res = NULL;
    cJSON *membrane = cJSON_Parse("{\"apiServiceAccount\":\"kfm-api\",\"clients\":[{\"podSelector\":{\"matchLabels\":"
                                  "{\"app\":\"ui\"}}}],\"stores\":[{\"name\":\"db\",\"podSelector\":{\"matchLabels\":"
                                  "{\"app\":\"db\"}},\"ports\":[5432]}]}");
    replay *gone = NULL;
    atomic_store(&done_calls, 0);
    /* a Kubernetes API that is not there: a server started and stopped, its port closed */
    assert_int_equal(replay_start(&gone, NULL), 0);
    cfg = replay_config(gone, NULL);
    replay_free(gone);
    kube_client_opts co = {.max_retries = -1, .timeout_ms = 2000};
    assert_int_equal(kube_client_new(&client, cfg, &co), 0);
    assert_int_equal(net_loop_new(&loop, NULL), 0);
    assert_int_equal(verify_executor_new(&ex), 0);
    verify_input in = input("http://127.0.0.1:1", checks);
    in.membrane = membrane;
    assert_int_equal(verify_run_start(&run, &in, client, loop, ex, on_done, NULL), 0);
    assert_true(wait_done(1, 20000));
    assert_int_equal(verify_run_results(&res, run), 0);
    assert_int_equal(cJSON_GetArraySize(res), 3);
    const cJSON *np = cJSON_GetArrayItem(res, 1), *rb = cJSON_GetArrayItem(res, 2);
    assert_string_equal(json_str(np, "name", NULL), "membrane-networkpolicy");
    assert_false(json_bool(true, np, "passed", NULL));
    assert_non_null(strstr(json_str(np, "message", NULL), "cannot be read"));
    assert_string_equal(json_str(rb, "name", NULL), "membrane-rbac");
    assert_false(json_bool(true, rb, "passed", NULL));
    assert_non_null(strstr(json_str(rb, "message", NULL), "Deployment kfm/kfm-api cannot be read"));
    cJSON_Delete(res);
    verify_run_free(run);
    verify_executor_free(ex);
    net_loop_free(loop);
    kube_client_free(client);
    cJSON_Delete(checks);
    cJSON_Delete(membrane);
}

/*
 * One replay server is both the governed API and the Kubernetes API: the
 * index ConfigMap is read from it (spec.verification.publishedIndex, in the
 * release's namespace) and published-only is judged against what it holds.
 */
static void test_published_index_read(void **state)
{
    (void)state;
    static const char listing[] =
        "{\"items\":[{\"dataset_id\":\"kfm.hydrology.wells\",\"dataset_version_id\":\"2026-03-01.1\","
        "\"policy_label\":\"public\"}]}";
    static const char promoted[] =
        "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"kfm-index\",\"namespace\":\"kfm\"},\"data\":{"
        "\"kfm.hydrology.wells\":\"{\\\"datasetID\\\":\\\"kfm.hydrology.wells\\\",\\\"policyLabel\\\":\\\"public\\\","
        "\\\"versionID\\\":\\\"2026-03-01.1\\\"}\"}}";
    static const char other[] =
        "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"kfm-published-datasets\",\"namespace\":\"kfm\"},"
        "\"data\":{\"kfm.hydrology.wells\":\"{\\\"datasetID\\\":\\\"kfm.hydrology.wells\\\",\\\"policyLabel\\\":"
        "\\\"public\\\",\\\"versionID\\\":\\\"2026-02-01.1\\\"}\"}}";
    static const char not_found[] = "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"NotFound\",\"code\":404}";
    static const struct {
        const char *index;     /* spec.verification.publishedIndex */
        const char *configmap; /* the ConfigMap answered, NULL: 404 */
        const char *checks;    /* spec.verification.checks, NULL: the default */
        bool passed;
        const char *message;
    } cases[] = {
        {"kfm-index", promoted, "[\"published-only\"]", true, "every one published in ConfigMap kfm/kfm-index"},
        {NULL, other, "[\"health\",\"published-only\"]", false,
         "kfm.hydrology.wells@2026-03-01.1 (the index publishes 2026-02-01.1)"},
        {"kfm-index", NULL, "[\"published-only\"]", false,
         "no published index: ConfigMap kfm/kfm-index (spec.verification.publishedIndex) does not exist; promote the "
         "datasets with DatasetPromotion, or remove published-only from spec.verification.checks"},
        {"kfm-index", NULL, NULL, false, "no published index: ConfigMap kfm/kfm-index"}, /* in the default list */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        replay *srv = NULL;
        net_loop *loop = NULL;
        verify_executor *ex = NULL;
        verify_run *run = NULL;
        kube_client *client = NULL;
        kube_config *cfg = NULL;
        cJSON *checks = cases[i].checks ? cJSON_Parse(cases[i].checks) : NULL, *res = NULL;
        atomic_store(&done_calls, 0);
        assert_int_equal(replay_start(&srv, NULL), 0);
        replay_route(srv, "GET", "/healthz", &(replay_reply){.status = 200, .body = "ok"});
        replay_route(srv, "GET", "/api/v1/datasets", &(replay_reply){.status = 200, .body = listing});
        replay_route(srv, "GET",
                     cases[i].index ? "/api/v1/namespaces/kfm/configmaps/kfm-index"
                                    : "/api/v1/namespaces/kfm/configmaps/kfm-published-datasets",
                     &(replay_reply){.status = cases[i].configmap ? 200 : 404,
                                     .body = cases[i].configmap ? cases[i].configmap : not_found});
        cfg = replay_config(srv, NULL);
        kube_client_opts co = {.max_retries = -1, .timeout_ms = 2000};
        assert_int_equal(kube_client_new(&client, cfg, &co), 0);
        assert_int_equal(net_loop_new(&loop, NULL), 0);
        assert_int_equal(verify_executor_new(&ex), 0);
        verify_input in = input(replay_url(srv), checks);
        in.published_index = cases[i].index;
        cJSON *refs = cJSON_Parse("[{\"type\":\"stac_item\",\"id\":\"wells-2026-03\"}]");
        in.contract.evidence_refs = refs; /* what the default list needs besides */
        in.contract.focus_question = "Which wells?";
        in.contract.restricted_dataset_id = "kfm.sacred-sites";
        assert_int_equal(verify_run_start(&run, &in, client, loop, ex, on_done, NULL), 0);
        assert_true(wait_done(1, 10000));
        assert_int_equal(verify_run_results(&res, run), 0);
        const cJSON *r = NULL, *it;
        cJSON_ArrayForEach(it, res)
            if (strcmp(json_str(it, "name", NULL), "published-only") == 0)
                r = it;
        char *text = cJSON_PrintUnformatted(res);
        print_message("case %zu: %s\n", i, text);
        free(text);
        assert_non_null(r);
        assert_int_equal(json_bool(!cases[i].passed, r, "passed", NULL), cases[i].passed);
        assert_non_null(strstr(json_str(r, "message", NULL), cases[i].message));
        if (!cases[i].passed)
            assert_string_equal(json_str(r, "trigger", NULL), "UnpublishedData");
        cJSON_Delete(res);
        verify_run_free(run);
        verify_executor_free(ex);
        net_loop_free(loop);
        kube_client_free(client);
        replay_free(srv);
        cJSON_Delete(checks);
        cJSON_Delete(refs);
    }
}

/* A checks list without published-only reads no index: nothing asks the Kubernetes API for it. */
static void test_published_index_not_asked(void **state)
{
    (void)state;
    replay *srv = NULL;
    net_loop *loop = NULL;
    verify_executor *ex = NULL;
    verify_run *run = NULL;
    kube_client *client = NULL;
    cJSON *checks = cJSON_Parse("[\"health\"]"), *res = NULL;
    atomic_store(&done_calls, 0);
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_route(srv, "GET", "/healthz", &(replay_reply){.status = 200, .body = "ok"});
    kube_client_opts co = {.max_retries = -1, .timeout_ms = 2000};
    assert_int_equal(kube_client_new(&client, replay_config(srv, NULL), &co), 0);
    assert_int_equal(net_loop_new(&loop, NULL), 0);
    assert_int_equal(verify_executor_new(&ex), 0);
    verify_input in = input(replay_url(srv), checks);
    assert_int_equal(verify_run_start(&run, &in, client, loop, ex, on_done, NULL), 0);
    assert_true(wait_done(1, 10000));
    assert_int_equal(verify_run_results(&res, run), 0);
    assert_int_equal(cJSON_GetArraySize(res), 1);
    assert_int_equal(replay_count(srv), 1); /* /healthz, and no ConfigMap */
    assert_string_equal(replay_get(srv, 0)->target, "/healthz");
    cJSON_Delete(res);
    verify_run_free(run);
    verify_executor_free(ex);
    net_loop_free(loop);
    kube_client_free(client);
    replay_free(srv);
    cJSON_Delete(checks);
}

static void test_let_go_never_calls_done(void **state)
{
    (void)state;
    replay *srv = NULL;
    net_loop *loop = NULL;
    verify_executor *ex = NULL;
    verify_run *run = NULL;
    cJSON *checks = cJSON_Parse("[\"health\"]");
    atomic_store(&done_calls, 0);
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_route(srv, "GET", "/healthz", &(replay_reply){.status = 200, .body = "ok", .delay_ms = 500});
    assert_int_equal(net_loop_new(&loop, NULL), 0);
    assert_int_equal(verify_executor_new(&ex), 0);
    verify_input in = input(replay_url(srv), checks);
    assert_int_equal(verify_run_start(&run, &in, NULL, loop, ex, on_done, NULL), 0);
    verify_run_free(run); /* superseded: cancelled, and freed when its request has ended */
    usleep(900 * 1000);
    assert_int_equal(atomic_load(&done_calls), 0);
    verify_executor_free(ex);
    net_loop_free(loop);
    replay_free(srv);
    cJSON_Delete(checks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_returns_before_answers), cmocka_unit_test(test_contract_cannot_run),
        cmocka_unit_test(test_membrane_unseen_fails),      cmocka_unit_test(test_published_index_read),
        cmocka_unit_test(test_published_index_not_asked),  cmocka_unit_test(test_let_go_never_calls_done),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The decision tests' chain of transfers (policy/tests.h) against a local
 * double of OPA's REST API (test/support/replay.h): what is loaded and how,
 * the cases and their judgement, the cleanup after a pass, a failing case, a
 * load error and an unreachable OPA, and one bundle at a time per OPA (a
 * second waits, and its key is enqueued when the first ends).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "policy/bundle.h"
#include "policy/tests.h"
#include "replay.h"
#include "runtime/loop.h"
#include "tarball.h"
#include "util/error.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REGO "package kfm\n\ndefault allow := false\n"
#define DATA "{\"labels\":{\"public\":true}}"

typedef struct {
    bundle *b;
    net_loop *net;
    loop *loop;
    replay *opa;
    cJSON *cases;
} fx;

static int no_reconcile(reconcile_result *out, void *ctx, const char *key)
{
    (void)out;
    (void)ctx;
    (void)key;
    return 0;
}

static void fx_init(fx *f, const char *cases)
{
    static const tar_entry entries[] = {
        {.name = ".manifest", .data = "{\"revision\":\"r1\",\"roots\":[\"kfm\"]}"},
        {.name = "kfm/policy.rego", .data = REGO},
        {.name = "kfm/data.json", .data = DATA},
    };
    unsigned char *gz = NULL;
    size_t len = 0;
    char err[BUNDLE_ERROR_MAX];
    memset(f, 0, sizeof(*f));
    tarball_make(&gz, &len, entries, 3, TARBALL_GZIP_PAX);
    assert_int_equal(bundle_read(&f->b, gz, len, 1 << 20, err), 0);
    free(gz);
    assert_int_equal(net_loop_new(&f->net, NULL), 0);
    loop_opts lo = {.kind = "PolicyBundle", .workers = 1, .reconcile = no_reconcile};
    assert_int_equal(loop_new(&f->loop, &lo), 0);
    assert_int_equal(replay_start(&f->opa, NULL), 0);
    f->cases = cJSON_Parse(cases);
    assert_non_null(f->cases);
}

static void fx_free(fx *f)
{
    policy_tests_forget_loop(f->loop);
    net_loop_free(f->net);
    loop_free(f->loop);
    replay_free(f->opa);
    bundle_free(f->b);
    cJSON_Delete(f->cases);
}

static const replay_reply ok = {.status = 200, .body = "{}"};
static const replay_reply no_content = {.status = 204};

static policy_test_run *start(fx *f, const char *url, const char *key, int expect)
{
    policy_test_run *r = NULL;
    policy_tests_opts o = {.net = f->net,
                           .loop = f->loop,
                           .key = key,
                           .opa_url = url,
                           .ns = "kfm",
                           .name = "p",
                           .b = f->b,
                           .cases = f->cases};
    assert_int_equal(policy_tests_start(&r, &o), expect);
    return r;
}

static void wait_finished(policy_test_run *r)
{
    for (int i = 0; i < 1000 && !policy_tests_finished(r); i++)
        usleep(10000);
    assert_true(policy_tests_finished(r));
}

/* The next key the loop's queue holds (the run's end enqueued it). */
static void assert_enqueued(fx *f, const char *key)
{
    char *got = NULL;
    assert_int_equal(workqueue_get(&got, loop_queue(f->loop)), 0);
    assert_string_equal(got, key);
    workqueue_done(loop_queue(f->loop), got);
    free(got);
}

static void assert_request(fx *f, size_t i, const char *method, const char *target)
{
    const replay_request *q = replay_get(f->opa, i);
    if (!q)
        fail_msg("no request %zu", i);
    assert_string_equal(q->method, method);
    assert_string_equal(q->target, target);
}

static void test_load_run_judge_unload(void **state)
{
    fx f;
    cJSON *results = NULL;
    char *error = NULL;
    (void)state;
    fx_init(&f, "[{\"name\":\"public-denied\",\"path\":\"kfm/allow\",\"input\":{\"role\":\"public\"},\"expect\":false},"
                "{\"name\":\"admin-allowed\",\"path\":\"kfm/allow\",\"input\":{\"role\":\"admin\"},\"expect\":true}]");
    replay_route(f.opa, "PUT", "/v1/*", &ok);
    replay_route(f.opa, "DELETE", "/v1/*", &no_content);
    replay_add(f.opa, &(replay_reply){.status = 200, .body = "{\"result\":false}"});
    replay_add(f.opa, &(replay_reply){.status = 200, .body = "{\"result\":true}"});
    policy_test_run *r = start(&f, replay_url(f.opa), "kfm/p", 0);
    wait_finished(r);
    assert_enqueued(&f, "kfm/p");
    assert_int_equal(policy_tests_take(r, &results, &error), 0);
    assert_null(error);
    assert_non_null(results);
    assert_int_equal(cJSON_GetArraySize(results), 2);
    assert_string_equal(json_str(cJSON_GetArrayItem(results, 0), "name", NULL), "public-denied");
    assert_true(json_bool(false, cJSON_GetArrayItem(results, 0), "passed", NULL));
    assert_string_equal(json_str(cJSON_GetArrayItem(results, 0), "got", NULL), "false");
    assert_true(json_bool(false, cJSON_GetArrayItem(results, 1), "passed", NULL));

    assert_int_equal(replay_count(f.opa), 6);
    assert_request(&f, 0, "PUT", "/v1/policies/membrane/kfm/p/kfm/policy.rego");
    assert_string_equal(replay_header(replay_get(f.opa, 0), "Content-Type"), "text/plain");
    assert_string_equal(replay_get(f.opa, 0)->body, REGO);
    assert_request(&f, 1, "PUT", "/v1/data/kfm");
    assert_string_equal(replay_get(f.opa, 1)->body, DATA);
    assert_request(&f, 2, "POST", "/v1/data/kfm/allow");
    assert_string_equal(replay_get(f.opa, 2)->body, "{\"input\":{\"role\":\"public\"}}");
    assert_request(&f, 3, "POST", "/v1/data/kfm/allow");
    assert_request(&f, 4, "DELETE", "/v1/policies/membrane/kfm/p/kfm/policy.rego");
    assert_request(&f, 5, "DELETE", "/v1/data/kfm");
    cJSON_Delete(results);
    policy_tests_release(r);
    fx_free(&f);
}

static void test_failing_case(void **state)
{
    fx f;
    cJSON *results = NULL;
    char *error = NULL;
    (void)state;
    fx_init(&f, "[{\"name\":\"public-denied\",\"path\":\"kfm/allow\",\"input\":{},\"expect\":false}]");
    replay_route(f.opa, "PUT", "/v1/*", &ok);
    replay_route(f.opa, "DELETE", "/v1/*", &no_content);
    replay_add(f.opa, &(replay_reply){.status = 200, .body = "{\"result\":true}"});
    policy_test_run *r = start(&f, replay_url(f.opa), "kfm/p", 0);
    wait_finished(r);
    assert_int_equal(policy_tests_take(r, &results, &error), 0);
    assert_null(error);
    assert_false(json_bool(true, cJSON_GetArrayItem(results, 0), "passed", NULL));
    assert_string_equal(json_str(cJSON_GetArrayItem(results, 0), "message", NULL), "got true, expected false");
    assert_int_equal(replay_count(f.opa), 5); /* unloaded all the same */
    cJSON_Delete(results);
    policy_tests_release(r);
    fx_free(&f);
}

static void test_load_error_is_an_error_and_unloads(void **state)
{
    fx f;
    cJSON *results = NULL;
    char *error = NULL;
    (void)state;
    fx_init(&f, "[{\"name\":\"a\",\"path\":\"kfm/allow\",\"input\":{},\"expect\":false}]");
    replay_route(f.opa, "PUT", "/v1/policies/*",
                 &(replay_reply){.status = 400,
                                 .body = "{\"code\":\"invalid_parameter\",\"message\":\"rego_parse_error\"}"});
    replay_route(f.opa, "DELETE", "/v1/*", &no_content);
    policy_test_run *r = start(&f, replay_url(f.opa), "kfm/p", 0);
    wait_finished(r);
    assert_int_equal(policy_tests_take(r, &results, &error), 0);
    assert_null(results); /* never a pass */
    assert_non_null(error);
    assert_non_null(strstr(error, "refused to load kfm/policy.rego"));
    assert_non_null(strstr(error, "HTTP 400"));
    assert_int_equal(replay_count(f.opa), 3); /* the PUT, then both unloads; no case ran */
    assert_request(&f, 1, "DELETE", "/v1/policies/membrane/kfm/p/kfm/policy.rego");
    free(error);
    policy_tests_release(r);
    fx_free(&f);
}

static void test_unreachable_opa(void **state)
{
    fx f;
    cJSON *results = NULL;
    char *error = NULL;
    (void)state;
    fx_init(&f, "[{\"name\":\"a\",\"path\":\"kfm/allow\",\"input\":{},\"expect\":false}]");
    policy_test_run *r = start(&f, "http://127.0.0.1:1", "kfm/p", 0);
    wait_finished(r);
    assert_int_equal(policy_tests_take(r, &results, &error), 0);
    assert_null(results);
    assert_non_null(strstr(error, "http://127.0.0.1:1/v1/policies/membrane/kfm/p/kfm/policy.rego"));
    free(error);
    policy_tests_release(r);
    fx_free(&f);
}

static void test_one_bundle_at_a_time_per_opa(void **state)
{
    fx f;
    cJSON *results = NULL;
    char *error = NULL;
    (void)state;
    fx_init(&f, "[{\"name\":\"a\",\"path\":\"kfm/allow\",\"input\":{},\"expect\":false}]");
    replay_route(f.opa, "PUT", "/v1/*", &(replay_reply){.status = 200, .body = "{}", .delay_ms = 200});
    replay_route(f.opa, "DELETE", "/v1/*", &no_content);
    replay_add(f.opa, &(replay_reply){.status = 200, .body = "{\"result\":false}"});
    policy_test_run *a = start(&f, replay_url(f.opa), "kfm/a", 0);
    assert_null(start(&f, replay_url(f.opa), "kfm/b", POLICY_TESTS_BUSY)); /* waits its turn */
    wait_finished(a);
    /* the end of a's run enqueues b, the waiter, as well as a */
    char *k1 = NULL, *k2 = NULL;
    assert_int_equal(workqueue_get(&k1, loop_queue(f.loop)), 0);
    assert_int_equal(workqueue_get(&k2, loop_queue(f.loop)), 0);
    assert_true((strcmp(k1, "kfm/a") == 0 && strcmp(k2, "kfm/b") == 0) ||
                (strcmp(k1, "kfm/b") == 0 && strcmp(k2, "kfm/a") == 0));
    free(k1);
    free(k2);
    assert_int_equal(policy_tests_take(a, &results, &error), 0);
    cJSON_Delete(results);
    free(error);
    policy_tests_release(a);
    /* free now: b starts */
    policy_test_run *b = start(&f, replay_url(f.opa), "kfm/b", 0);
    policy_tests_release(b); /* cancelled: its cleanup still runs, and nothing is enqueued for it */
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_run_judge_unload),
        cmocka_unit_test(test_failing_case),
        cmocka_unit_test(test_load_error_is_an_error_and_unloads),
        cmocka_unit_test(test_unreachable_opa),
        cmocka_unit_test(test_one_bundle_at_a_time_per_opa),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

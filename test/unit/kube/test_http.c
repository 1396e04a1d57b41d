/*
 * The HTTP side of the Kubernetes client against the loopback replay server:
 * what each verb sends (method, path, query, headers, body), how answers come
 * back, and the retry policy (429 with Retry-After, 5xx, connection errors,
 * never 409, POST only when it certainly was not processed), stop, and
 * connection reuse from many threads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kube/client.h"
#include "replay.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    replay *srv;
    kube_client *client;
} fixture;

static const char STATUS_404[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
    "\"message\":\"deployments.apps \\\"kfm-api\\\" not found\",\"reason\":\"NotFound\","
    "\"details\":{\"name\":\"kfm-api\",\"group\":\"apps\",\"kind\":\"deployments\"},\"code\":404}";
static const char STATUS_409[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"Operation cannot be "
    "fulfilled on configmaps \\\"c\\\": the object has been modified; please apply your changes to the latest "
    "version and try again\",\"reason\":\"Conflict\",\"code\":409}";
static const char STATUS_429[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"Too many requests, "
    "please try again later.\",\"reason\":\"TooManyRequests\",\"details\":{\"retryAfterSeconds\":1},\"code\":429}";
static const char STATUS_500[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"etcdserver: request timed "
    "out\",\"reason\":\"InternalError\",\"code\":500}";
static const char CM[] = "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"c\","
                         "\"namespace\":\"kfm\",\"resourceVersion\":\"42\"},\"data\":{\"k\":\"v\"}}";

static void reply(replay *srv, int status, const char *headers, const char *body)
{
    replay_add(srv, &(replay_reply){.status = status, .headers = headers, .body = body});
}

static fixture *fixture_start(const replay_opts *ropts, const kube_client_opts *copts, const char *token)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(replay_start(&f->srv, ropts), 0);
    kube_client_opts defaults = {.max_retries = 5, .backoff_base_ms = 10, .backoff_max_ms = 50, .timeout_ms = 10000};
    assert_int_equal(kube_client_new(&f->client, replay_config(f->srv, token), copts ? copts : &defaults), 0);
    return f;
}

static void fixture_stop(fixture *f)
{
    kube_client_free(f->client);
    replay_free(f->srv);
    free(f);
}

static void test_path(void **state)
{
    (void)state;
    char *p = kube_path(&KUBE_DEPLOYMENTS, "kfm", "kfm-api", NULL);
    assert_string_equal(p, "/apis/apps/v1/namespaces/kfm/deployments/kfm-api");
    free(p);
    p = kube_path(&KUBE_PODS, NULL, NULL, NULL);
    assert_string_equal(p, "/api/v1/pods");
    free(p);
    p = kube_path(&KUBE_CONFIGMAPS, "kfm", "c", "status");
    assert_string_equal(p, "/api/v1/namespaces/kfm/configmaps/c/status");
    free(p);
    p = kube_path(&KUBE_NAMESPACES, "ignored", "kfm", NULL);
    assert_string_equal(p, "/api/v1/namespaces/kfm");
    free(p);
    p = kube_path(&KUBE_CUSTOMRESOURCEDEFINITIONS, NULL, "governedapireleases.kfm.dev", NULL);
    assert_string_equal(p, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/governedapireleases.kfm.dev");
    free(p);
    p = kube_path(&KUBE_CONFIGMAPS, "a b", "x/y", NULL);
    assert_string_equal(p, "/api/v1/namespaces/a%20b/configmaps/x%2Fy");
    free(p);
}

static void test_get_sends_bearer_and_accept(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "s3cret-token");
    reply(f->srv, 200, NULL, CM);
    cJSON *obj = NULL;
    assert_int_equal(kube_get(&obj, f->client, &KUBE_CONFIGMAPS, "kfm", "c"), 0);
    assert_string_equal(json_str(obj, "data", "k", NULL), "v");
    cJSON_Delete(obj);

    const replay_request *q = replay_get(f->srv, 0);
    assert_non_null(q);
    assert_string_equal(q->method, "GET");
    assert_string_equal(q->target, "/api/v1/namespaces/kfm/configmaps/c");
    assert_string_equal(replay_header(q, "authorization"), "Bearer s3cret-token");
    assert_string_equal(replay_header(q, "accept"), "application/json");
    assert_non_null(strstr(replay_header(q, "user-agent"), "membrane"));
    fixture_stop(f);
}

static void test_no_token_no_authorization(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, NULL);
    reply(f->srv, 200, NULL, CM);
    assert_int_equal(kube_get(NULL, f->client, &KUBE_CONFIGMAPS, "kfm", "c"), 0);
    assert_null(replay_header(replay_get(f->srv, 0), "authorization"));
    fixture_stop(f);
}

static void test_not_found(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    reply(f->srv, 404, NULL, STATUS_404);
    cJSON *obj = NULL;
    assert_int_equal(kube_get(&obj, f->client, &KUBE_DEPLOYMENTS, "kfm", "kfm-api"), MB_ENOTFOUND);
    assert_null(obj);
    assert_string_equal(mb_error_last(), "deployments.apps \"kfm-api\" not found (404 NotFound)");
    assert_int_equal(kube_status_last()->code, 404);
    assert_string_equal(kube_status_last()->reason, "NotFound");
    assert_int_equal(replay_count(f->srv), 1);
    fixture_stop(f);
}

static void test_429_retry_after_header(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    reply(f->srv, 429, "Retry-After: 1\r\n", "{\"kind\":\"Status\",\"code\":429,\"reason\":\"TooManyRequests\"}");
    reply(f->srv, 200, NULL, CM);
    long t0 = mb_monotonic_ms();
    cJSON *obj = NULL;
    assert_int_equal(kube_get(&obj, f->client, &KUBE_CONFIGMAPS, "kfm", "c"), 0);
    long elapsed = mb_monotonic_ms() - t0;
    assert_non_null(obj);
    cJSON_Delete(obj);
    assert_int_equal(replay_count(f->srv), 2);
    assert_true(elapsed >= 900); /* the behaviour under test is the delay itself */
    fixture_stop(f);
}

static void test_429_retry_after_in_status_details(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    reply(f->srv, 429, NULL, STATUS_429);
    reply(f->srv, 201, NULL, CM);
    long t0 = mb_monotonic_ms();
    cJSON *obj = cJSON_Parse(CM);
    /* a POST is retried on 429: the server turned it away before processing it */
    assert_int_equal(kube_create(NULL, f->client, &KUBE_CONFIGMAPS, NULL, obj), 0);
    cJSON_Delete(obj);
    assert_true(mb_monotonic_ms() - t0 >= 900);
    assert_int_equal(replay_count(f->srv), 2);
    assert_string_equal(replay_get(f->srv, 1)->method, "POST");
    fixture_stop(f);
}

static void test_503_twice_then_200(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    reply(f->srv, 503, NULL, "");
    reply(f->srv, 503, NULL, "upstream unavailable");
    reply(f->srv, 200, NULL, CM);
    cJSON *obj = NULL;
    assert_int_equal(kube_get(&obj, f->client, &KUBE_CONFIGMAPS, "kfm", "c"), 0);
    assert_string_equal(json_str(obj, "metadata", "name", NULL), "c");
    cJSON_Delete(obj);
    assert_int_equal(replay_count(f->srv), 3);
    fixture_stop(f);
}

static void test_500_beyond_max_retries(void **state)
{
    (void)state;
    kube_client_opts opts = {.max_retries = 2, .backoff_base_ms = 5, .backoff_max_ms = 20};
    fixture *f = fixture_start(NULL, &opts, "t");
    for (int i = 0; i < 4; i++)
        reply(f->srv, 500, NULL, STATUS_500);
    cJSON *obj = NULL;
    assert_int_equal(kube_get(&obj, f->client, &KUBE_CONFIGMAPS, "kfm", "c"), MB_EHTTP);
    assert_null(obj);
    assert_int_equal(kube_status_last()->code, 500);
    assert_string_equal(kube_status_last()->reason, "InternalError");
    assert_string_equal(mb_error_last(), "etcdserver: request timed out (500 InternalError)");
    assert_int_equal(replay_count(f->srv), 3); /* the first try and two retries */
    fixture_stop(f);
}

static void test_no_retries_when_negative(void **state)
{
    (void)state;
    kube_client_opts opts = {.max_retries = -1};
    fixture *f = fixture_start(NULL, &opts, "t");
    reply(f->srv, 503, NULL, "");
    reply(f->srv, 200, NULL, CM);
    assert_int_equal(kube_get(NULL, f->client, &KUBE_CONFIGMAPS, "kfm", "c"), MB_EHTTP);
    assert_int_equal(replay_count(f->srv), 1);
    fixture_stop(f);
}

static void test_409_not_retried(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    reply(f->srv, 409, NULL, STATUS_409);
    reply(f->srv, 200, NULL, CM);
    cJSON *obj = cJSON_Parse(CM);
    cJSON *got = NULL;
    assert_int_equal(kube_update(&got, f->client, &KUBE_CONFIGMAPS, NULL, obj, NULL), MB_ECONFLICT);
    assert_null(got);
    cJSON_Delete(obj);
    assert_int_equal(replay_count(f->srv), 1);
    assert_int_equal(kube_status_last()->code, 409);
    assert_non_null(strstr(mb_error_last(), "(409 Conflict)"));
    fixture_stop(f);
}

static void test_post_5xx_not_retried(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    reply(f->srv, 503, NULL, "");
    reply(f->srv, 201, NULL, CM);
    cJSON *obj = cJSON_Parse(CM);
    assert_int_equal(kube_create(NULL, f->client, &KUBE_CONFIGMAPS, "kfm", obj), MB_EHTTP);
    cJSON_Delete(obj);
    assert_int_equal(replay_count(f->srv), 1);
    assert_int_equal(kube_status_last()->code, 503);
    fixture_stop(f);
}

static void test_get_dropped_connection_retried(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    reply(f->srv, 0, NULL, NULL); /* the connection closes without an answer */
    replay_add(f->srv, &(replay_reply){.status = 200, .body = CM, .drop = true, .drop_at = 10});
    reply(f->srv, 200, NULL, CM);
    cJSON *obj = NULL;
    assert_int_equal(kube_get(&obj, f->client, &KUBE_CONFIGMAPS, "kfm", "c"), 0);
    assert_non_null(obj);
    cJSON_Delete(obj);
    assert_int_equal(replay_count(f->srv), 3);
    fixture_stop(f);
}

static void test_post_dropped_connection_not_retried(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    reply(f->srv, 0, NULL, NULL);
    reply(f->srv, 201, NULL, CM);
    cJSON *obj = cJSON_Parse(CM);
    assert_int_equal(kube_create(NULL, f->client, &KUBE_CONFIGMAPS, "kfm", obj), MB_ECONN);
    cJSON_Delete(obj);
    assert_int_equal(replay_count(f->srv), 1);
    assert_non_null(strstr(mb_error_last(), "POST /api/v1/namespaces/kfm/configmaps"));
    fixture_stop(f);
}

static void test_post_connection_refused_retried(void **state)
{
    (void)state;
    /* the port is bound but refuses connections for 300 ms */
    replay_opts ropts = {.listen_after_ms = 300};
    kube_client_opts copts = {.max_retries = 200, .backoff_base_ms = 10, .backoff_max_ms = 20};
    fixture *f = fixture_start(&ropts, &copts, "t");
    reply(f->srv, 201, NULL, CM);
    cJSON *obj = cJSON_Parse(CM);
    cJSON *got = NULL;
    assert_int_equal(kube_create(&got, f->client, &KUBE_CONFIGMAPS, "kfm", obj), 0);
    assert_non_null(got);
    cJSON_Delete(got);
    cJSON_Delete(obj);
    assert_int_equal(replay_count(f->srv), 1);
    fixture_stop(f);
}

static void test_connection_refused_error(void **state)
{
    (void)state;
    replay *srv;
    kube_client *c;
    assert_int_equal(replay_start(&srv, &(replay_opts){.listen_after_ms = 60000}), 0);
    kube_client_opts opts = {.max_retries = 2, .backoff_base_ms = 1, .backoff_max_ms = 2};
    assert_int_equal(kube_client_new(&c, replay_config(srv, "t"), &opts), 0);
    assert_int_equal(kube_get(NULL, c, &KUBE_PODS, "kfm", "p"), MB_ECONN);
    assert_non_null(strstr(mb_error_last(), "cannot connect to the API server"));
    kube_client_free(c);
    replay_free(srv);
}

static void test_list_pagination(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    reply(f->srv, 200, NULL,
          "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"100\","
          "\"continue\":\"tok/1==\"},\"items\":[{\"metadata\":{\"name\":\"a\"}},{\"metadata\":{\"name\":\"b\"}}]}");
    reply(f->srv, 200, NULL,
          "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"100\","
          "\"continue\":\"tok&2\"},\"items\":[{\"metadata\":{\"name\":\"c\"}},{\"metadata\":{\"name\":\"d\"}}]}");
    reply(f->srv, 200, NULL,
          "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"100\"},"
          "\"items\":[{\"metadata\":{\"name\":\"e\"}}]}");
    kube_list_opts opts = {.label_selector = "app=kfm,tier in (api, web)", .limit = 2};
    cJSON *list = NULL;
    assert_int_equal(kube_list(&list, f->client, &KUBE_PODS, "kfm", &opts), 0);

    const cJSON *items = json_get(list, "items", NULL);
    assert_int_equal(cJSON_GetArraySize(items), 5);
    const char *want[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(json_str(cJSON_GetArrayItem(items, i), "metadata", "name", NULL), want[i]);
    assert_string_equal(json_str(list, "metadata", "resourceVersion", NULL), "100");
    assert_null(json_get(list, "metadata", "continue", NULL));
    cJSON_Delete(list);

    assert_int_equal(replay_count(f->srv), 3);
    assert_string_equal(replay_get(f->srv, 0)->target,
                        "/api/v1/namespaces/kfm/pods?labelSelector=app%3Dkfm%2Ctier%20in%20%28api%2C%20web%29&limit=2");
    assert_string_equal(replay_get(f->srv, 1)->target,
                        "/api/v1/namespaces/kfm/pods?labelSelector=app%3Dkfm%2Ctier%20in%20%28api%2C%20web%29"
                        "&limit=2&continue=tok%2F1%3D%3D");
    assert_string_equal(replay_get(f->srv, 2)->target,
                        "/api/v1/namespaces/kfm/pods?labelSelector=app%3Dkfm%2Ctier%20in%20%28api%2C%20web%29"
                        "&limit=2&continue=tok%262");
    fixture_stop(f);
}

static void test_list_expired_continue_relists(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    reply(f->srv, 200, NULL,
          "{\"metadata\":{\"resourceVersion\":\"7\",\"continue\":\"old\"},\"items\":[{\"metadata\":{\"name\":\"a\"}}]"
          "}");
    reply(f->srv, 410, NULL,
          "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"The provided continue parameter is too old\","
          "\"reason\":\"Expired\",\"code\":410}");
    reply(f->srv, 200, NULL,
          "{\"metadata\":{\"resourceVersion\":\"9\"},\"items\":[{\"metadata\":{\"name\":\"a\"}},"
          "{\"metadata\":{\"name\":\"b\"}}]}");
    cJSON *list = NULL;
    assert_int_equal(kube_list(&list, f->client, &KUBE_SECRETS, NULL, &(kube_list_opts){.limit = 1}), 0);
    assert_int_equal(cJSON_GetArraySize(json_get(list, "items", NULL)), 2);
    assert_string_equal(json_str(list, "metadata", "resourceVersion", NULL), "9");
    cJSON_Delete(list);
    assert_string_equal(replay_get(f->srv, 2)->target, "/api/v1/secrets");
    fixture_stop(f);
}

static void test_list_default_limit_and_rv(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    reply(f->srv, 200, NULL, "{\"metadata\":{\"resourceVersion\":\"5\"},\"items\":[]}");
    cJSON *list = NULL;
    kube_list_opts opts = {.resource_version = "0", .field_selector = "metadata.name=x"};
    assert_int_equal(kube_list(&list, f->client, &KUBE_NETWORKPOLICIES, "kfm", &opts), 0);
    assert_int_equal(cJSON_GetArraySize(json_get(list, "items", NULL)), 0);
    cJSON_Delete(list);
    assert_string_equal(replay_get(f->srv, 0)->target, "/apis/networking.k8s.io/v1/namespaces/kfm/networkpolicies"
                                                       "?fieldSelector=metadata.name%3Dx&limit=500&resourceVersion=0");
    fixture_stop(f);
}

static void test_patch_content_types(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    for (int i = 0; i < 3; i++)
        reply(f->srv, 200, NULL, CM);
    const char *merge = "{\"status\":{\"phase\":\"Verifying\"}}";
    const char *jsonp = "[{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":2}]";
    const char *strategic = "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"a\":\"b\"}}}}}";
    cJSON *out = NULL;
    assert_int_equal(kube_patch(&out, f->client, &KUBE_DEPLOYMENTS, "kfm", "kfm-api", "status", KUBE_PATCH_MERGE,
                                merge),
                     0);
    assert_non_null(out);
    cJSON_Delete(out);
    assert_int_equal(kube_patch(NULL, f->client, &KUBE_DEPLOYMENTS, "kfm", "kfm-api", NULL, KUBE_PATCH_JSON, jsonp), 0);
    assert_int_equal(kube_patch(NULL, f->client, &KUBE_DEPLOYMENTS, "kfm", "kfm-api", NULL, KUBE_PATCH_STRATEGIC,
                                strategic),
                     0);

    const replay_request *q = replay_get(f->srv, 0);
    assert_string_equal(q->method, "PATCH");
    assert_string_equal(q->target, "/apis/apps/v1/namespaces/kfm/deployments/kfm-api/status");
    assert_string_equal(replay_header(q, "content-type"), "application/merge-patch+json");
    assert_string_equal(q->body, merge);
    q = replay_get(f->srv, 1);
    assert_string_equal(q->target, "/apis/apps/v1/namespaces/kfm/deployments/kfm-api");
    assert_string_equal(replay_header(q, "content-type"), "application/json-patch+json");
    assert_string_equal(q->body, jsonp);
    q = replay_get(f->srv, 2);
    assert_string_equal(replay_header(q, "content-type"), "application/strategic-merge-patch+json");
    assert_string_equal(q->body, strategic);
    fixture_stop(f);
}

static void test_json_patch_5xx_not_retried_merge_patch_is(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    reply(f->srv, 503, NULL, "");
    reply(f->srv, 503, NULL, "");
    reply(f->srv, 200, NULL, CM);
    assert_int_equal(kube_patch(NULL, f->client, &KUBE_CONFIGMAPS, "kfm", "c", NULL, KUBE_PATCH_JSON,
                                "[{\"op\":\"add\",\"path\":\"/data/x\",\"value\":\"1\"}]"),
                     MB_EHTTP);
    assert_int_equal(replay_count(f->srv), 1);
    assert_int_equal(kube_patch(NULL, f->client, &KUBE_CONFIGMAPS, "kfm", "c", NULL, KUBE_PATCH_MERGE,
                                "{\"data\":{\"x\":\"1\"}}"),
                     0);
    assert_int_equal(replay_count(f->srv), 3);
    fixture_stop(f);
}

static void test_delete_options(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    reply(f->srv, 200, NULL, "{\"kind\":\"Status\",\"status\":\"Success\"}");
    reply(f->srv, 202, NULL, CM);
    kube_delete_opts opts = {.uid = "0f5c-11", .resource_version = "42", .propagation_policy = "Foreground"};
    assert_int_equal(kube_delete(f->client, &KUBE_REPLICASETS, "kfm", "kfm-api-6d4", &opts), 0);
    assert_int_equal(kube_delete(f->client, &KUBE_PODS, "kfm", "p", NULL), 0);

    const replay_request *q = replay_get(f->srv, 0);
    assert_string_equal(q->method, "DELETE");
    assert_string_equal(q->target, "/apis/apps/v1/namespaces/kfm/replicasets/kfm-api-6d4");
    assert_string_equal(replay_header(q, "content-type"), "application/json");
    cJSON *body = cJSON_Parse(q->body);
    assert_non_null(body);
    assert_string_equal(json_str(body, "kind", NULL), "DeleteOptions");
    assert_string_equal(json_str(body, "preconditions", "uid", NULL), "0f5c-11");
    assert_string_equal(json_str(body, "preconditions", "resourceVersion", NULL), "42");
    assert_string_equal(json_str(body, "propagationPolicy", NULL), "Foreground");
    cJSON_Delete(body);
    q = replay_get(f->srv, 1);
    assert_string_equal(q->method, "DELETE");
    assert_int_equal(q->body_len, 0);
    fixture_stop(f);
}

static void test_update_and_create(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    reply(f->srv, 200, NULL, CM);
    reply(f->srv, 200, NULL, CM);
    reply(f->srv, 201, NULL, CM);
    cJSON *obj = cJSON_Parse(CM);
    cJSON *got = NULL;
    assert_int_equal(kube_update(&got, f->client, &KUBE_CONFIGMAPS, NULL, obj, NULL), 0);
    assert_non_null(got);
    cJSON_Delete(got);
    assert_int_equal(kube_update(NULL, f->client, &KUBE_CONFIGMAPS, "kfm", obj, "status"), 0);
    cJSON *ns = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"kfm\"}}");
    assert_int_equal(kube_create(NULL, f->client, &KUBE_NAMESPACES, NULL, ns), 0);
    cJSON_Delete(ns);

    const replay_request *q = replay_get(f->srv, 0);
    assert_string_equal(q->method, "PUT");
    assert_string_equal(q->target, "/api/v1/namespaces/kfm/configmaps/c");
    assert_string_equal(replay_header(q, "content-type"), "application/json");
    cJSON *sent = cJSON_Parse(q->body);
    assert_string_equal(json_str(sent, "metadata", "resourceVersion", NULL), "42");
    cJSON_Delete(sent);
    assert_string_equal(replay_get(f->srv, 1)->target, "/api/v1/namespaces/kfm/configmaps/c/status");
    q = replay_get(f->srv, 2);
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->target, "/api/v1/namespaces");

    /* an update without the version it was based on is refused before sending */
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(obj, "metadata"), "resourceVersion");
    assert_int_equal(kube_update(NULL, f->client, &KUBE_CONFIGMAPS, NULL, obj, NULL), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "resourceVersion"));
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(obj, "metadata"), "namespace");
    assert_int_equal(kube_create(NULL, f->client, &KUBE_CONFIGMAPS, NULL, obj), MB_EINVAL);
    assert_int_equal(replay_count(f->srv), 3);
    cJSON_Delete(obj);
    fixture_stop(f);
}

static void test_raw_request_returns_status_as_data(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    reply(f->srv, 404, NULL, STATUS_404);
    reply(f->srv, 200, "Content-Type: text/plain\r\n", "ok");
    kube_response resp = {0};
    assert_int_equal(kube_request(&resp, f->client, "GET", "/apis/apps/v1/namespaces/kfm/deployments/kfm-api", NULL,
                                  NULL, 0),
                     0);
    assert_int_equal(resp.status, 404);
    assert_string_equal(resp.body, STATUS_404);
    kube_response_clear(&resp);
    assert_int_equal(kube_request(&resp, f->client, "GET", "/readyz", NULL, NULL, 0), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "ok");
    assert_int_equal(resp.len, 2);
    kube_response_clear(&resp);
    fixture_stop(f);
}

static void test_malformed_answer(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    reply(f->srv, 200, NULL, "{\"kind\":");
    cJSON *obj = NULL;
    assert_int_equal(kube_get(&obj, f->client, &KUBE_CONFIGMAPS, "kfm", "c"), MB_EJSON);
    assert_null(obj);
    fixture_stop(f);
}

static void test_connection_reused(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    for (int i = 0; i < 3; i++)
        reply(f->srv, 200, NULL, CM);
    for (int i = 0; i < 3; i++)
        assert_int_equal(kube_get(NULL, f->client, &KUBE_CONFIGMAPS, "kfm", "c"), 0);
    assert_int_equal(replay_get(f->srv, 0)->conn, 1);
    assert_int_equal(replay_get(f->srv, 1)->conn, 1);
    assert_int_equal(replay_get(f->srv, 2)->conn, 1);
    fixture_stop(f);
}

typedef struct {
    kube_client *client;
    atomic_int *ok;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    for (int i = 0; i < 20; i++) {
        cJSON *obj = NULL;
        if (kube_get(&obj, a->client, &KUBE_CONFIGMAPS, "kfm", "c") == 0 && obj &&
            strcmp(json_str(obj, "metadata", "name", NULL), "c") == 0)
            atomic_fetch_add(a->ok, 1);
        cJSON_Delete(obj);
    }
    return NULL;
}

static void test_many_threads(void **state)
{
    (void)state;
    enum { THREADS = 6 };
    fixture *f = fixture_start(NULL, NULL, "t");
    for (int i = 0; i < THREADS * 20; i++)
        reply(f->srv, 200, NULL, CM);
    atomic_int ok = 0;
    pthread_t t[THREADS];
    worker_arg a = {f->client, &ok};
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, &a), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&ok), THREADS * 20);
    assert_int_equal(replay_count(f->srv), THREADS * 20);
    /* connections were reused: far fewer than one per request */
    int max_conn = 0;
    for (size_t i = 0; i < THREADS * 20; i++)
        if (replay_get(f->srv, i)->conn > max_conn)
            max_conn = replay_get(f->srv, i)->conn;
    assert_true(max_conn <= 16);
    fixture_stop(f);
}

static void *stopper(void *p)
{
    fixture *f = p;
    replay_wait(f->srv, 1, 10000);
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    kube_client_stop(f->client);
    return NULL;
}

static void test_stop_wakes_retry_wait(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    reply(f->srv, 429, "Retry-After: 30\r\n", STATUS_429);
    reply(f->srv, 200, NULL, CM);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stopper, f), 0);
    /* without stop the retry would succeed after 30 s; stopped, it gives up */
    assert_int_equal(kube_get(NULL, f->client, &KUBE_CONFIGMAPS, "kfm", "c"), MB_ESTOPPED);
    pthread_join(t, NULL);
    assert_int_equal(replay_count(f->srv), 1);
    fixture_stop(f);
}

static void test_bad_server(void **state)
{
    (void)state;
    kube_client *c = NULL;
    kube_config *cfg = calloc(1, sizeof(*cfg));
    pthread_mutex_init(&cfg->lock, NULL);
    cfg->server = strdup("ftp://example");
    assert_int_equal(kube_client_new(&c, cfg, NULL), MB_EINVAL);
    assert_null(c);
    assert_non_null(strstr(mb_error_last(), "ftp://example"));
}

static const char STATUS_EXISTS[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"configmaps \\\"c\\\" "
    "already exists\",\"reason\":\"AlreadyExists\",\"code\":409}";

/* kube_write_seen: a PUT with the resourceVersion of the copy seen, a POST without one, and which failures lost a race. */
static void test_write_seen(void **state)
{
    (void)state;
    fixture *f = fixture_start(NULL, NULL, "t");
    cJSON *seen = cJSON_Parse(CM), *got = NULL;
    cJSON *body = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\","
                              "\"namespace\":\"kfm\",\"resourceVersion\":\"7\"},\"data\":{\"k\":\"w\"}}");
    bool lost = true;
    reply(f->srv, 200, NULL, CM);
    assert_int_equal(kube_write_seen(&got, &lost, f->client, &KUBE_CONFIGMAPS, NULL, seen, body), 0);
    assert_false(lost);
    assert_non_null(got);
    cJSON_Delete(got);
    const replay_request *q = replay_get(f->srv, 0);
    assert_string_equal(q->method, "PUT");
    assert_string_equal(q->target, "/api/v1/namespaces/kfm/configmaps/c");
    cJSON *sent = cJSON_Parse(q->body);
    assert_string_equal(json_str(sent, "metadata", "resourceVersion", NULL),
                        "42"); /* the seen copy's, not the body's */
    assert_string_equal(json_str(sent, "data", "k", NULL), "w");
    cJSON_Delete(sent);

    /* a stale copy, and one deleted meanwhile: lost, to be made again */
    reply(f->srv, 409, NULL, STATUS_409);
    assert_int_equal(kube_write_seen(NULL, &lost, f->client, &KUBE_CONFIGMAPS, NULL, seen, body), MB_ECONFLICT);
    assert_true(lost);
    reply(f->srv, 404, NULL, STATUS_404);
    assert_int_equal(kube_write_seen(NULL, &lost, f->client, &KUBE_CONFIGMAPS, NULL, seen, body), MB_ENOTFOUND);
    assert_true(lost);

    /* nothing seen: a POST; created meanwhile: lost */
    cJSON *fresh = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\","
                               "\"namespace\":\"kfm\"},\"data\":{}}");
    reply(f->srv, 409, NULL, STATUS_EXISTS);
    assert_int_equal(kube_write_seen(NULL, &lost, f->client, &KUBE_CONFIGMAPS, NULL, NULL, fresh), MB_EEXISTS);
    assert_true(lost);
    q = replay_get(f->srv, 3);
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->target, "/api/v1/namespaces/kfm/configmaps");
    sent = cJSON_Parse(q->body);
    assert_null(json_str(sent, "metadata", "resourceVersion", NULL));
    cJSON_Delete(sent);

    /* a server error is no lost race */
    kube_client_opts once = {.max_retries = -1};
    fixture *g = fixture_start(NULL, &once, "t");
    reply(g->srv, 500, NULL, STATUS_500);
    assert_int_equal(kube_write_seen(NULL, &lost, g->client, &KUBE_CONFIGMAPS, NULL, seen, body), MB_EHTTP);
    assert_false(lost);
    fixture_stop(g);

    /* a seen copy without a resourceVersion cannot be a precondition */
    cJSON *norv = cJSON_Parse("{\"metadata\":{\"name\":\"c\",\"namespace\":\"kfm\"}}");
    assert_int_equal(kube_write_seen(NULL, &lost, f->client, &KUBE_CONFIGMAPS, NULL, norv, body), MB_EINVAL);
    assert_int_equal(replay_count(f->srv), 4);
    cJSON_Delete(norv);
    cJSON_Delete(fresh);
    cJSON_Delete(body);
    cJSON_Delete(seen);
    fixture_stop(f);
}

int main(void)
{
    mb_log_setup(MB_LOG_TEXT, MB_LOG_WARN, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_get_sends_bearer_and_accept),
        cmocka_unit_test(test_no_token_no_authorization),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_429_retry_after_header),
        cmocka_unit_test(test_429_retry_after_in_status_details),
        cmocka_unit_test(test_503_twice_then_200),
        cmocka_unit_test(test_500_beyond_max_retries),
        cmocka_unit_test(test_no_retries_when_negative),
        cmocka_unit_test(test_409_not_retried),
        cmocka_unit_test(test_post_5xx_not_retried),
        cmocka_unit_test(test_get_dropped_connection_retried),
        cmocka_unit_test(test_post_dropped_connection_not_retried),
        cmocka_unit_test(test_post_connection_refused_retried),
        cmocka_unit_test(test_connection_refused_error),
        cmocka_unit_test(test_list_pagination),
        cmocka_unit_test(test_list_expired_continue_relists),
        cmocka_unit_test(test_list_default_limit_and_rv),
        cmocka_unit_test(test_patch_content_types),
        cmocka_unit_test(test_json_patch_5xx_not_retried_merge_patch_is),
        cmocka_unit_test(test_delete_options),
        cmocka_unit_test(test_update_and_create),
        cmocka_unit_test(test_write_seen),
        cmocka_unit_test(test_raw_request_returns_status_as_data),
        cmocka_unit_test(test_malformed_answer),
        cmocka_unit_test(test_connection_reused),
        cmocka_unit_test(test_many_threads),
        cmocka_unit_test(test_stop_wakes_retry_wait),
        cmocka_unit_test(test_bad_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

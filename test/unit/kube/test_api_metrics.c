/*
 * membrane_api_requests_total as the client counts it, against a local
 * replay server: every attempt is one sample labelled with the HTTP method
 * and the status the server answered (a retried 500 and the 200 after it are
 * two), and a request that got no answer counts as code "<error>".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "replay.h"

#include "kube/client.h"
#include "runtime/metrics_families.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

static const char CM[] = "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"c\","
                         "\"namespace\":\"ns\",\"resourceVersion\":\"42\"},\"data\":{\"k\":\"v\"}}";
static const char NOT_FOUND[] = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
                                "\"configmaps \\\"c\\\" not found\",\"reason\":\"NotFound\",\"code\":404}";

static double count(const char *verb, const char *code)
{
    return metrics_value(metrics_family_find(metrics_default(), "membrane_api_requests_total"),
                         (const char *const[]){verb, code});
}

static void test_each_attempt_counts_with_its_status(void **state)
{
    replay *srv = NULL;
    kube_client *c = NULL;
    kube_client_opts opts = {.max_retries = 3,
                             .backoff_base_ms = 1,
                             .backoff_max_ms = 2,
                             .timeout_ms = 10000,
                             .on_answer = metrics_api_request_inc};
    (void)state;

    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_add(srv, &(replay_reply){.status = 500, .body = "{}"});
    replay_add(srv, &(replay_reply){.status = 200, .body = CM});
    replay_add(srv, &(replay_reply){.status = 404, .body = NOT_FOUND});
    replay_add(srv, &(replay_reply){.status = 200, .body = CM});
    assert_int_equal(kube_client_new(&c, replay_config(srv, "t"), &opts), 0);

    assert_int_equal(kube_get(NULL, c, &KUBE_CONFIGMAPS, "ns", "c"), 0);
    assert_int_equal(kube_get(NULL, c, &KUBE_CONFIGMAPS, "ns", "c"), MB_ENOTFOUND);
    assert_int_equal(kube_patch(NULL, c, &KUBE_CONFIGMAPS, "ns", "c", NULL, KUBE_PATCH_MERGE, "{}"), 0);

    assert_true(count("GET", "500") == 1);
    assert_true(count("GET", "200") == 1);
    assert_true(count("GET", "404") == 1);
    assert_true(count("PATCH", "200") == 1);
    assert_true(count("GET", "<error>") == 0);
    kube_client_free(c);
    replay_free(srv);
    metrics_default_free();
}

static void test_no_answer_counts_as_error(void **state)
{
    replay *srv = NULL;
    kube_client *c = NULL;
    kube_client_opts opts = {.max_retries = 1,
                             .backoff_base_ms = 1,
                             .backoff_max_ms = 2,
                             .on_answer = metrics_api_request_inc};
    (void)state;

    /* bound but not yet listening: every connection is refused */
    assert_int_equal(replay_start(&srv, &(replay_opts){.listen_after_ms = 60000}), 0);
    assert_int_equal(kube_client_new(&c, replay_config(srv, "t"), &opts), 0);
    assert_int_equal(kube_get(NULL, c, &KUBE_PODS, "ns", "p"), MB_ECONN);
    assert_true(count("GET", "<error>") == 2); /* the try and one retry */
    kube_client_free(c);
    replay_free(srv);
    metrics_default_free();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_attempt_counts_with_its_status),
        cmocka_unit_test(test_no_answer_counts_as_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

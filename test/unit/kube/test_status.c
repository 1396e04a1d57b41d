/*
 * metav1.Status parsing: code, reason, message and the mapped mb_error code
 * for the answers the API server gives, and for bodies that are not a Status.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kube/client.h"
#include "util/error.h"

#include <limits.h>
#include <string.h>

static int parse(kube_status *st, long code, const char *body)
{
    return kube_status_parse(st, code, body, body ? strlen(body) : 0);
}

static void test_not_found(void **state)
{
    (void)state;
    kube_status st;
    const char *body = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
                       "\"message\":\"deployments.apps \\\"kfm-api\\\" not found\",\"reason\":\"NotFound\","
                       "\"details\":{\"name\":\"kfm-api\",\"group\":\"apps\",\"kind\":\"deployments\"},\"code\":404}";
    assert_int_equal(parse(&st, 404, body), MB_ENOTFOUND);
    assert_int_equal(st.code, 404);
    assert_string_equal(st.reason, "NotFound");
    assert_string_equal(st.message, "deployments.apps \"kfm-api\" not found");
    assert_int_equal(st.retry_after, 0);
    assert_string_equal(mb_error_last(), "deployments.apps \"kfm-api\" not found (404 NotFound)");
    assert_int_equal(mb_error_last_code(), MB_ENOTFOUND);
}

static void test_conflict(void **state)
{
    (void)state;
    kube_status st;
    const char *body = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
                       "\"Operation cannot be fulfilled on configmaps \\\"c\\\": the object has been modified; "
                       "please apply your changes to the latest version and try again\",\"reason\":\"Conflict\","
                       "\"details\":{\"name\":\"c\",\"kind\":\"configmaps\"},\"code\":409}";
    assert_int_equal(parse(&st, 409, body), MB_ECONFLICT);
    assert_string_equal(st.reason, "Conflict");
    assert_non_null(strstr(st.message, "the object has been modified"));
    assert_non_null(strstr(mb_error_last(), "(409 Conflict)"));
}

static void test_already_exists(void **state)
{
    (void)state;
    kube_status st;
    const char *body = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
                       "\"configmaps \\\"c\\\" already exists\",\"reason\":\"AlreadyExists\",\"code\":409}";
    assert_int_equal(parse(&st, 409, body), MB_EEXISTS);
    assert_string_equal(st.reason, "AlreadyExists");
    assert_string_equal(mb_error_last(), "configmaps \"c\" already exists (409 AlreadyExists)");
}

static void test_expired(void **state)
{
    (void)state;
    kube_status st;
    const char *body = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
                       "\"too old resource version: 1 (2201)\",\"reason\":\"Expired\",\"code\":410}";
    assert_int_equal(parse(&st, 410, body), MB_EGONE);
    assert_string_equal(st.reason, "Expired");
    assert_string_equal(mb_error_last(), "too old resource version: 1 (2201) (410 Expired)");

    /* a watch ERROR event carries no HTTP status: the code comes from the Status */
    assert_int_equal(parse(&st, 0, body), MB_EGONE);
    assert_int_equal(st.code, 410);
}

static void test_forbidden_invalid_and_retry_after(void **state)
{
    (void)state;
    kube_status st;
    assert_int_equal(parse(&st, 403, "{\"kind\":\"Status\",\"reason\":\"Forbidden\",\"message\":\"no\",\"code\":403}"),
                     MB_EFORBIDDEN);
    assert_int_equal(parse(&st, 401, "{\"kind\":\"Status\",\"message\":\"Unauthorized\",\"code\":401}"), MB_EFORBIDDEN);
    assert_string_equal(st.reason, "Unauthorized");
    assert_int_equal(parse(&st, 422, "{\"kind\":\"Status\",\"reason\":\"Invalid\",\"message\":\"bad\",\"code\":422}"),
                     MB_EINVALID);
    assert_int_equal(parse(&st, 429,
                           "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\",\"message\":\"slow down\","
                           "\"details\":{\"retryAfterSeconds\":3},\"code\":429}"),
                     MB_EHTTP);
    assert_int_equal(st.retry_after, 3);
}

static void test_not_a_status(void **state)
{
    (void)state;
    kube_status st;
    assert_int_equal(parse(&st, 502, "<html><body>Bad Gateway</body></html>\n"), MB_EHTTP);
    assert_int_equal(st.code, 502);
    assert_string_equal(st.reason, "");
    assert_string_equal(st.message, "the server answered HTTP 502 with a body that is not a Status: <html><body>Bad "
                                    "Gateway</body></html>");
    assert_string_equal(mb_error_last(), "the server answered HTTP 502 with a body that is not a Status: "
                                         "<html><body>Bad Gateway</body></html> (502)");

    /* JSON, but another kind: the HTTP status still decides */
    assert_int_equal(parse(&st, 404, "{\"kind\":\"ConfigMap\"}"), MB_ENOTFOUND);
    assert_string_equal(st.reason, "NotFound");
    assert_non_null(strstr(st.message, "a JSON body that is not a Status"));
}

static void test_malformed_json(void **state)
{
    (void)state;
    kube_status st;
    assert_int_equal(parse(&st, 500, "{\"kind\":\"Status\",\"message\":"), MB_EHTTP);
    assert_int_equal(st.code, 500);
    assert_string_equal(st.reason, "InternalError");
    assert_string_equal(st.message, "the server answered HTTP 500 with malformed JSON instead of a Status: "
                                    "{\"kind\":\"Status\",\"message\":");
}

static void test_empty_body(void **state)
{
    (void)state;
    kube_status st;
    assert_int_equal(parse(&st, 503, ""), MB_EHTTP);
    assert_string_equal(st.message, "the server answered HTTP 503 with an empty body");
    assert_string_equal(mb_error_last(), "the server answered HTTP 503 with an empty body (503 ServiceUnavailable)");
    assert_int_equal(parse(&st, 409, NULL), MB_ECONFLICT);
    assert_string_equal(st.reason, "Conflict");
}

/* Found by fuzz_status: a number beyond long long was converted with undefined behaviour (x86 gave LONG_MIN). */
static void test_numbers_out_of_range(void **state)
{
    (void)state;
    kube_status st;
    assert_int_equal(parse(&st, 0,
                           "{\"kind\":\"Status\",\"message\":\"m\",\"code\":4e33,"
                           "\"details\":{\"retryAfterSeconds\":1e300}}"),
                     MB_EHTTP);
    assert_true(st.code == LONG_MAX);
    assert_true(st.retry_after == LONG_MAX);
    assert_int_equal(parse(&st, 429,
                           "{\"kind\":\"Status\",\"message\":\"m\",\"details\":{\"retryAfterSeconds\":-1e300}}"),
                     MB_EHTTP);
    assert_int_equal(st.retry_after, 0);
}

static void test_long_body_is_cut(void **state)
{
    (void)state;
    kube_status st;
    char body[2048];
    memset(body, 'x', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    assert_int_equal(parse(&st, 500, body), MB_EHTTP);
    assert_true(strlen(st.message) < 300);
    assert_non_null(strstr(st.message, "xxx..."));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_conflict),
        cmocka_unit_test(test_already_exists),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_forbidden_invalid_and_retry_after),
        cmocka_unit_test(test_not_a_status),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_empty_body),
        cmocka_unit_test(test_numbers_out_of_range),
        cmocka_unit_test(test_long_body_is_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

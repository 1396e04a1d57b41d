/*
 * The slo check (verify/slo.h): the judge of Prometheus's answer for every
 * shape it may take (one finite sample at, under or over max; an empty
 * vector; several series; NaN and infinities; a scalar, a matrix, a string;
 * an error answer, a non-200, a body that is not JSON), the substitution of
 * {{digest}} and {{window}}, the spec's validation with the field each
 * message names, and a run against the loopback replay server: the query
 * sent substituted and escaped with the bearer token, one result named slo
 * whose message says breached or cannot be judged.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "replay.h"
#include "util/error.h"
#include "util/json.h"
#include "verify/slo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static slo_verdict judge(long status, const char *body, double max)
{
    slo_verdict v;
    slo_answer_judge(&v, status, body, body ? strlen(body) : 0, max);
    return v;
}

#define VEC(value)                                                                                                     \
    "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":[1765000000.1,"  \
    "\"" value "\"]}]}}"

static void test_judge_one_sample(void **state)
{
    (void)state;
    slo_verdict v = judge(200, VEC("0.004"), 0.01);
    assert_int_equal(v.state, SLO_MET);
    assert_true(fabs(v.value - 0.004) < 1e-12);
    assert_string_equal(v.msg, "0.004 <= max 0.01");
    v = judge(200, VEC("0.01"), 0.01); /* max itself holds */
    assert_int_equal(v.state, SLO_MET);
    v = judge(200, VEC("0.0512"), 0.01);
    assert_int_equal(v.state, SLO_BREACHED);
    assert_string_equal(v.msg, "0.0512 > max 0.01");
    v = judge(200, VEC("1e-3"), 0.01);
    assert_int_equal(v.state, SLO_MET);
}

static void test_judge_empty_and_several(void **state)
{
    (void)state;
    slo_verdict v = judge(200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}", 1);
    assert_int_equal(v.state, SLO_UNJUDGED);
    assert_non_null(strstr(v.msg, "an empty vector: no series matched"));
    v = judge(200,
              "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
              "{\"metric\":{\"code\":\"200\"},\"value\":[1,\"0\"]},{\"metric\":{\"code\":\"500\"},\"value\":[1,\"0\"]}"
              "]}}",
              1);
    assert_int_equal(v.state, SLO_UNJUDGED);
    assert_non_null(strstr(v.msg, "2 series, not one"));
}

static void test_judge_not_finite(void **state)
{
    (void)state;
    slo_verdict v = judge(200, VEC("NaN"), 1);
    assert_int_equal(v.state, SLO_UNJUDGED);
    assert_non_null(strstr(v.msg, "NaN"));
    v = judge(200, VEC("+Inf"), 1);
    assert_int_equal(v.state, SLO_UNJUDGED);
    assert_non_null(strstr(v.msg, "+Inf, not a finite number"));
    v = judge(200, VEC("-Inf"), 1);
    assert_int_equal(v.state, SLO_UNJUDGED);
    assert_non_null(strstr(v.msg, "-Inf"));
    v = judge(200, VEC("fast"), 1);
    assert_int_equal(v.state, SLO_UNJUDGED);
    assert_non_null(strstr(v.msg, "not a [time, \"number\"] pair"));
    v = judge(200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"value\":[1,0.5]}]}}", 1);
    assert_int_equal(v.state, SLO_UNJUDGED); /* a number where Prometheus writes a string */
}

static void test_judge_wrong_shapes(void **state)
{
    (void)state;
    slo_verdict v = judge(200, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"0.1\"]}}",
                          1);
    assert_int_equal(v.state, SLO_UNJUDGED);
    assert_non_null(strstr(v.msg, "a scalar, not an instant vector"));
    v = judge(200,
              "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},"
              "\"values\":[[1,\"0.1\"],[2,\"0.2\"]]}]}}",
              1);
    assert_int_equal(v.state, SLO_UNJUDGED);
    assert_non_null(strstr(v.msg, "range vector (matrix)"));
    v = judge(200, "{\"status\":\"success\",\"data\":{\"resultType\":\"string\",\"result\":[1,\"x\"]}}", 1);
    assert_int_equal(v.state, SLO_UNJUDGED);
    assert_non_null(strstr(v.msg, "returns a string"));
    v = judge(200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":{}}}", 1);
    assert_int_equal(v.state, SLO_UNJUDGED);
    v = judge(200, "{\"status\":\"success\",\"data\":{}}", 1);
    assert_int_equal(v.state, SLO_UNJUDGED);
    assert_non_null(strstr(v.msg, "no data.resultType"));
}

static void test_judge_errors(void **state)
{
    (void)state;
    slo_verdict v = judge(400,
                          "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid parameter "
                          "\\\"query\\\": 1:6: parse error\"}",
                          1);
    assert_int_equal(v.state, SLO_UNJUDGED);
    assert_non_null(strstr(v.msg, "Prometheus answered 400 with an error: bad_data: invalid parameter"));
    v = judge(503, "Service Unavailable", 1);
    assert_int_equal(v.state, SLO_UNJUDGED);
    assert_non_null(strstr(v.msg, "answered HTTP 503, not 200"));
    v = judge(200, "<html>Grafana</html>", 1);
    assert_int_equal(v.state, SLO_UNJUDGED);
    assert_non_null(strstr(v.msg, "not Prometheus's JSON"));
    v = judge(200, NULL, 1);
    assert_int_equal(v.state, SLO_UNJUDGED);
    v = judge(200, "{\"status\":\"pending\"}", 1);
    assert_int_equal(v.state, SLO_UNJUDGED);
    assert_non_null(strstr(v.msg, "status is \"pending\", not success"));
}

static void test_query_expand(void **state)
{
    (void)state;
    char *q = NULL;
    const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_int_equal(slo_query_expand(&q,
                                      "sum(rate(http_requests_total{code=~\"5..\",digest=\"{{digest}}\"}[{{window}}]))"
                                      " / sum(rate(http_requests_total{digest=\"{{digest}}\"}[{{window}}]))",
                                      d, 300),
                     0);
    assert_string_equal(q, "sum(rate(http_requests_total{code=~\"5..\",digest=\"sha256:0123456789abcdef0123456789abcdef"
                           "0123456789abcdef0123456789abcdef\"}[300s])) / sum(rate(http_requests_total{digest=\"sha256:"
                           "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}[300s]))");
    free(q);
    assert_int_equal(slo_query_expand(&q, "up", d, 10), 0);
    assert_string_equal(q, "up");
    free(q);
    assert_int_equal(slo_query_expand(&q, "{{window}}{{window}}{{digest", d, 7), MB_EINVAL);
    assert_null(q);
    assert_int_equal(slo_query_expand(&q, "rate(x[{{range}}])", d, 7), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "{{range}}"));
}

static bool valid(const char *json, char *why, size_t len)
{
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    bool ok = slo_spec_valid(why, len, j);
    cJSON_Delete(j);
    return ok;
}

static void test_spec_valid(void **state)
{
    (void)state;
    char why[512];
    assert_true(valid("{\"prometheusURL\":\"http://prometheus.monitoring.svc:9090\",\"windowSeconds\":300,"
                      "\"objectives\":[{\"name\":\"error-rate\",\"query\":\"x{d=\\\"{{digest}}\\\"}\",\"max\":0.01}]}",
                      why, sizeof(why)));
    assert_false(valid("{\"prometheusURL\":\"http://p:9090\",\"objectives\":[]}", why, sizeof(why)));
    assert_non_null(strstr(why, "spec.verification.slo.objectives is empty"));
    assert_false(valid("{\"prometheusURL\":\"http://p:9090\"}", why, sizeof(why)));
    assert_non_null(strstr(why, "spec.verification.slo.objectives is missing"));
    assert_false(valid("{\"prometheusURL\":\"http://"
                       "p:9090\",\"objectives\":[{\"name\":\"e\",\"query\":\"up\",\"max\":\"0.01\"}]}",
                       why, sizeof(why)));
    assert_non_null(strstr(why, "spec.verification.slo.objectives[0].max (e) is a string, not a number"));
    assert_false(valid("{\"prometheusURL\":\"http://p:9090\",\"objectives\":[{\"name\":\"e\",\"query\":\"up\"}]}", why,
                       sizeof(why)));
    assert_non_null(strstr(why, "objectives[0].max (e) is missing"));
    assert_false(valid("{\"prometheusURL\":\"ftp://p\",\"objectives\":[{\"name\":\"e\",\"query\":\"up\",\"max\":1}]}",
                       why, sizeof(why)));
    assert_non_null(strstr(why, "spec.verification.slo.prometheusURL \"ftp://p\" is not an http:// or https:// URL"));
    assert_false(valid("{\"objectives\":[{\"name\":\"e\",\"query\":\"up\",\"max\":1}]}", why, sizeof(why)));
    assert_non_null(strstr(why, "prometheusURL"));
    assert_false(valid("{\"prometheusURL\":\"http://p\",\"windowSeconds\":0,\"objectives\":[{\"name\":\"e\",\"query\":"
                       "\"up\",\"max\":1}]}",
                       why, sizeof(why)));
    assert_non_null(strstr(why, "spec.verification.slo.windowSeconds"));
    assert_false(valid("{\"prometheusURL\":\"http://p\",\"objectives\":[{\"name\":\"e\",\"query\":\"up\",\"max\":1},"
                       "{\"name\":\"e\",\"query\":\"up\",\"max\":1}]}",
                       why, sizeof(why)));
    assert_non_null(strstr(why, "objectives[1].name \"e\" is used twice"));
    assert_false(valid("{\"prometheusURL\":\"http://p\",\"objectives\":[{\"name\":\"e\",\"query\":\"x[{{win}}]\","
                       "\"max\":1}]}",
                       why, sizeof(why)));
    assert_non_null(strstr(why, "objectives[0].query (e) holds {{win}}"));
    assert_false(valid("{\"prometheusURL\":\"http://p\",\"authSecretRef\":{\"name\":\"t\"},\"objectives\":[{\"name\":"
                       "\"e\",\"query\":\"up\",\"max\":1}]}",
                       why, sizeof(why)));
    assert_non_null(strstr(why, "spec.verification.slo.authSecretRef needs a name and a key"));
}

/* ---- a run against the replay server ------------------------------------- */

static cJSON *run_once(const char *url, const char *objectives, const char *token, replay *srv, size_t nreq)
{
    net_loop *loop = NULL;
    slo_run *run = NULL;
    cJSON *res = NULL;
    char *spec = NULL;
    assert_true(asprintf(&spec, "{\"prometheusURL\":\"%s/\",\"windowSeconds\":30,\"objectives\":%s}", url, objectives) >
                0);
    cJSON *slo = cJSON_Parse(spec);
    assert_non_null(slo);
    assert_int_equal(net_loop_new(&loop, NULL), 0);
    slo_input in = {slo, "sha256:ab", token, "3f9c0a1b2c4d", 2000};
    assert_int_equal(slo_check_start(&run, loop, &in, NULL, NULL), 0);
    assert_int_equal(slo_run_result(&res, run), 0);
    if (srv)
        assert_true(replay_wait(srv, nreq, 5000));
    slo_run_free(run);
    net_loop_free(loop);
    cJSON_Delete(slo);
    free(spec);
    return res;
}

static void test_run(void **state)
{
    (void)state;
    replay *srv = NULL;
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_route(srv, "GET", "/api/v1/query?query=sum%28errors%7Bd%3D%22sha256%3Aab%22%7D%5B30s%5D%29*",
                 &(replay_reply){.status = 200, .body = VEC("0.05")});
    replay_route(srv, "GET", "/api/v1/query?query=p99*", &(replay_reply){.status = 200, .body = VEC("0.1")});
    cJSON *r = run_once(replay_url(srv),
                        "[{\"name\":\"latency-p99\",\"query\":\"p99\",\"max\":0.5},"
                        "{\"name\":\"error-rate\",\"query\":\"sum(errors{d=\\\"{{digest}}\\\"}[{{window}}])\","
                        "\"max\":0.01}]",
                        "prom-token-123456", srv, 2);
    assert_string_equal(json_str(r, "name", NULL), "slo");
    assert_false(json_bool(true, r, "passed", NULL));
    assert_string_equal(json_str(r, "trigger", NULL), "SLOBreach");
    assert_int_equal(json_int(0, r, "httpStatus", NULL), 200);
    /* the breached objective first, with its substituted query; the met one after */
    assert_string_equal(json_str(r, "message", NULL),
                        "error-rate breached: 0.05 > max 0.01 (query: sum(errors{d=\"sha256:ab\"}[30s])); "
                        "latency-p99 met: 0.1 <= max 0.5 (query: p99)");
    const replay_request *q = replay_get(srv, 0);
    assert_non_null(q);
    assert_string_equal(replay_header(q, "Authorization"), "Bearer prom-token-123456");
    assert_string_equal(replay_header(q, "X-Request-ID"), "3f9c0a1b2c4d-slo");
    cJSON_Delete(r);
    replay_free(srv);

    /* nothing listens: the objective cannot be judged, which is not a breach */
    r = run_once("http://127.0.0.1:1", "[{\"name\":\"error-rate\",\"query\":\"up\",\"max\":1}]", NULL, NULL, 0);
    assert_false(json_bool(true, r, "passed", NULL));
    assert_string_equal(json_str(r, "trigger", NULL), "SLOBreach");
    const char *m = json_str(r, "message", NULL);
    assert_non_null(strstr(m,
                           "error-rate cannot be judged: Prometheus at http://127.0.0.1:1 cannot be queried: Failed to "
                           "connect to 127.0.0.1 port 1"));
    assert_null(strstr(m, "breached"));
    cJSON_Delete(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_judge_one_sample), cmocka_unit_test(test_judge_empty_and_several),
        cmocka_unit_test(test_judge_not_finite), cmocka_unit_test(test_judge_wrong_shapes),
        cmocka_unit_test(test_judge_errors),     cmocka_unit_test(test_query_expand),
        cmocka_unit_test(test_spec_valid),       cmocka_unit_test(test_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The NetworkPolicy evaluator and the membrane-networkpolicy check. The policy
 * table lives in test/fixtures/netpol/cases.yaml (cases from the Kubernetes
 * NetworkPolicy documentation and its edge cases, each with expected
 * verdicts), evaluated in the cluster of world.yaml; the membrane scenarios of
 * API.md are below, in a small "kfm" cluster.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "util/error.h"
#include "util/json.h"
#include "util/yaml.h"
#include "verify/netpol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *yaml(const char *text)
{
    cJSON *doc = NULL;
    if (mb_yaml_parse(&doc, text, strlen(text), "test") < 0)
        fail_msg("test YAML does not parse: %s", mb_error_last());
    return doc;
}

static cJSON *yaml_fixture(const char *rel)
{
    size_t len = 0;
    char *text = fixture_read(rel, &len);
    cJSON *doc = NULL;
    if (!text)
        fail_msg("fixture %s is missing", rel);
    if (mb_yaml_parse(&doc, text, len, rel) < 0)
        fail_msg("fixture %s does not parse: %s", rel, mb_error_last());
    free(text);
    return doc;
}

static const cJSON *find_pod(const cJSON *pods, const char *ns_name)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, pods) {
        char key[256];
        snprintf(key, sizeof(key), "%s/%s", json_str(p, "metadata", "namespace", NULL),
                 json_str(p, "metadata", "name", NULL));
        if (strcmp(key, ns_name) == 0)
            return p;
    }
    fail_msg("no pod %s in the test world", ns_name);
    return NULL;
}

static const char *side_name(netpol_side s)
{
    switch (s) {
    case NETPOL_OPEN: return "open";
    case NETPOL_POLICY_ALLOWS: return "policy";
    case NETPOL_DENIED: return "denied";
    case NETPOL_HOST_NETWORK: return "host-network";
    case NETPOL_LOCAL_NODE: return "local-node";
    case NETPOL_SAME_POD: return "same-pod";
    case NETPOL_UNKNOWN: return "unknown";
    }
    return "?";
}

static void render_why(char *buf, size_t size, const netpol_verdict *v)
{
    snprintf(buf, size, "egress=%s%s%s ingress=%s%s%s", side_name(v->egress), v->egress_policy ? ":" : "",
             v->egress_policy ? v->egress_policy : "", side_name(v->ingress), v->ingress_policy ? ":" : "",
             v->ingress_policy ? v->ingress_policy : "");
}

/* ---- the policy table ------------------------------------------------- */

typedef struct {
    int cases, allowed, denied, errors;
} table_stats;

/* Checks one [src, dst, port[/proto], verdict, why] row; appends a line to report on a mismatch. */
static void check_row(FILE *report, table_stats *st, const char *case_name, const netpol_world *w, const cJSON *pods,
                      const cJSON *row)
{
    const char *src = cJSON_GetArrayItem(row, 0)->valuestring;
    const char *dst = cJSON_GetArrayItem(row, 1)->valuestring;
    const cJSON *portj = cJSON_GetArrayItem(row, 2);
    const char *want = cJSON_GetArrayItem(row, 3)->valuestring;
    const cJSON *whyj = cJSON_GetArrayItem(row, 4);
    char portbuf[32], proto[16] = "TCP", why[256];
    int port;
    netpol_verdict v;
    int err;

    if (cJSON_IsNumber(portj)) {
        port = portj->valueint;
    } else {
        if (sscanf(portj->valuestring, "%d/%15s", &port, proto) != 2)
            fail_msg("case \"%s\": bad port %s", case_name, portj->valuestring);
    }
    snprintf(portbuf, sizeof(portbuf), "%d/%s", port, proto);
    mb_error_clear();
    err = netpol_evaluate(&v, w, find_pod(pods, src), find_pod(pods, dst), port, proto);
    if (strncmp(want, "error: ", 7) == 0) {
        st->errors++;
        if (err != MB_EINVAL)
            fprintf(report, "  %s: %s -> %s:%s: want an error, got %s (%d)\n", case_name, src, dst, portbuf,
                    err < 0 ? mb_error_last() : v.allowed ? "allowed" : "denied", err);
        else if (!strstr(mb_error_last(), want + 7))
            fprintf(report, "  %s: %s -> %s:%s: error \"%s\" does not contain \"%s\"\n", case_name, src, dst,
                    portbuf, mb_error_last(), want + 7);
        return;
    }
    if (err < 0) {
        fprintf(report, "  %s: %s -> %s:%s: unexpected error: %s\n", case_name, src, dst, portbuf, mb_error_last());
        return;
    }
    if (strcmp(want, "allowed") == 0)
        st->allowed++;
    else
        st->denied++;
    if (v.allowed != (strcmp(want, "allowed") == 0))
        fprintf(report, "  %s: %s -> %s:%s: want %s, got %s\n", case_name, src, dst, portbuf, want,
                v.allowed ? "allowed" : "denied");
    render_why(why, sizeof(why), &v);
    if (cJSON_IsString(whyj) && strcmp(why, whyj->valuestring) != 0)
        fprintf(report, "  %s: %s -> %s:%s: want \"%s\", got \"%s\"\n", case_name, src, dst, portbuf,
                whyj->valuestring, why);
}

static void test_policy_table(void **state)
{
    (void)state;
    cJSON *world = yaml_fixture("netpol/world.yaml");
    cJSON *cases = yaml_fixture("netpol/cases.yaml");
    const cJSON *pods = json_get(world, "pods", NULL), *c, *row;
    char *text = NULL;
    size_t len = 0;
    FILE *report = open_memstream(&text, &len);
    table_stats st = {0};

    assert_non_null(report);
    assert_true(cJSON_IsArray(cases));
    cJSON_ArrayForEach(c, cases) {
        const char *name = json_str(c, "name", NULL);
        netpol_world *w = NULL;
        assert_non_null(name);
        if (netpol_world_new(&w, json_get(world, "namespaces", NULL), json_get(c, "policies", NULL)) < 0)
            fail_msg("case \"%s\": world does not build: %s", name, mb_error_last());
        assert_true(cJSON_GetArraySize(json_get(c, "expect", NULL)) > 0);
        cJSON_ArrayForEach(row, json_get(c, "expect", NULL)) {
            check_row(report, &st, name, w, pods, row);
        }
        netpol_world_free(w);
        st.cases++;
    }
    fclose(report);
    print_message("policy table: %d cases, %d allowed, %d denied, %d errors\n", st.cases, st.allowed, st.denied,
                  st.errors);
    if (len)
        fail_msg("policy table mismatches:\n%s", text);
    free(text);
    /* The table is what this test is for: it must not shrink to nothing. */
    assert_true(st.cases >= 25);
    assert_true(st.allowed >= 25 && st.denied >= 25 && st.errors >= 8);
    cJSON_Delete(cases);
    cJSON_Delete(world);
}

/* ---- the world and the arguments -------------------------------------- */

static void test_world_inputs(void **state)
{
    (void)state;
    netpol_world *w = NULL;
    cJSON *list = yaml("{kind: NamespaceList, items: [{metadata: {name: a, labels: {x: y}}}]}");
    cJSON *pols = yaml("{kind: NetworkPolicyList, items: [{metadata: {name: p, namespace: a},"
                       " spec: {podSelector: {}, policyTypes: [Ingress]}}]}");
    cJSON *pods = yaml("[{metadata: {name: one, namespace: a}}, {metadata: {name: two, namespace: a}}]");
    bool allowed = true;

    /* *List objects with items are accepted as well as plain arrays */
    assert_int_equal(netpol_world_new(&w, list, pols), 0);
    assert_int_equal(netpol_allowed(&allowed, w, cJSON_GetArrayItem(pods, 0), cJSON_GetArrayItem(pods, 1), 80, NULL),
                     0);
    assert_false(allowed);
    netpol_world_free(w);

    /* no policies at all */
    assert_int_equal(netpol_world_new(&w, NULL, NULL), 0);
    assert_int_equal(netpol_allowed(&allowed, w, cJSON_GetArrayItem(pods, 0), cJSON_GetArrayItem(pods, 1), 80, NULL),
                     0);
    assert_true(allowed);
    netpol_world_free(w);
    netpol_world_free(NULL);

    cJSON *bad = yaml("{kind: NamespaceList}");
    w = (netpol_world *)0x1;
    assert_int_equal(netpol_world_new(&w, bad, NULL), MB_EINVAL);
    assert_null(w);
    cJSON_Delete(bad);

    bad = yaml("[{metadata: {name: p}, spec: {podSelector: {}}}]");
    assert_int_equal(netpol_world_new(&w, NULL, bad), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "metadata.namespace"));
    cJSON_Delete(bad);

    bad = yaml("[{metadata: {labels: {a: b}}}]");
    assert_int_equal(netpol_world_new(&w, bad, NULL), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "Namespace #0 has no metadata.name"));
    cJSON_Delete(bad);

    cJSON_Delete(list);
    cJSON_Delete(pols);
    cJSON_Delete(pods);
}

static void test_evaluate_arguments(void **state)
{
    (void)state;
    netpol_world *w = NULL;
    cJSON *pods = yaml("[{metadata: {name: one, namespace: a}}, {metadata: {name: two, namespace: a}},"
                       " {metadata: {name: nameless}}]");
    const cJSON *one = cJSON_GetArrayItem(pods, 0), *two = cJSON_GetArrayItem(pods, 1);
    bool allowed = false;

    assert_int_equal(netpol_world_new(&w, NULL, NULL), 0);
    assert_int_equal(netpol_allowed(&allowed, w, one, two, 80, "ICMP"), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "\"ICMP\""));
    assert_int_equal(netpol_allowed(&allowed, w, one, two, 80, "tcp"), MB_EINVAL); /* case matters, as in the API */
    assert_int_equal(netpol_allowed(&allowed, w, one, two, 0, "TCP"), MB_EINVAL);
    assert_int_equal(netpol_allowed(&allowed, w, one, two, 65536, "TCP"), MB_EINVAL);
    assert_int_equal(netpol_allowed(&allowed, w, one, cJSON_GetArrayItem(pods, 2), 80, NULL), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "destination pod has no metadata.namespace"));
    assert_int_equal(netpol_allowed(&allowed, NULL, one, two, 80, NULL), MB_EINVAL);
    assert_int_equal(netpol_allowed(&allowed, w, one, two, 65535, "SCTP"), 0);
    assert_true(allowed);
    netpol_world_free(w);
    cJSON_Delete(pods);
}

/* The first allowing policy is the first by name, whatever order the API listed them in. */
static void test_policy_order_does_not_matter(void **state)
{
    (void)state;
    const char *a = "{metadata: {name: allow-a, namespace: n}, spec: {podSelector: {}, ingress: [{}]}}";
    const char *b = "{metadata: {name: allow-b, namespace: n}, spec: {podSelector: {}, ingress: [{}]}}";
    char text[512];
    cJSON *pods = yaml("[{metadata: {name: one, namespace: n}}, {metadata: {name: two, namespace: n}}]");
    for (int order = 0; order < 2; order++) {
        netpol_world *w = NULL;
        netpol_verdict v;
        snprintf(text, sizeof(text), "[%s, %s]", order ? a : b, order ? b : a);
        cJSON *pols = yaml(text);
        assert_int_equal(netpol_world_new(&w, NULL, pols), 0);
        assert_int_equal(netpol_evaluate(&v, w, cJSON_GetArrayItem(pods, 0), cJSON_GetArrayItem(pods, 1), 80, NULL),
                         0);
        assert_true(v.allowed);
        assert_string_equal(v.ingress_policy, "allow-a");
        netpol_world_free(w);
        cJSON_Delete(pols);
    }
    cJSON_Delete(pods);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_table),
        cmocka_unit_test(test_world_inputs),
        cmocka_unit_test(test_evaluate_arguments),
        cmocka_unit_test(test_policy_order_does_not_matter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

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
#include "verify/netpol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
                    err < 0     ? mb_error_last()
                    : v.allowed ? "allowed"
                                : "denied",
                    err);
        else if (!strstr(mb_error_last(), want + 7))
            fprintf(report, "  %s: %s -> %s:%s: error \"%s\" does not contain \"%s\"\n", case_name, src, dst, portbuf,
                    mb_error_last(), want + 7);
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
        fprintf(report, "  %s: %s -> %s:%s: want \"%s\", got \"%s\"\n", case_name, src, dst, portbuf, whyj->valuestring,
                why);
}

static void test_policy_table(void **state)
{
    (void)state;
    cJSON *world = fixture_yaml("netpol/world.yaml");
    cJSON *cases = fixture_yaml("netpol/cases.yaml");
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
    cJSON *list = fixture_yaml_text("{kind: NamespaceList, items: [{metadata: {name: a, labels: {x: y}}}]}");
    cJSON *pols = fixture_yaml_text("{kind: NetworkPolicyList, items: [{metadata: {name: p, namespace: a},"
                                    " spec: {podSelector: {}, policyTypes: [Ingress]}}]}");
    cJSON *pods = fixture_yaml_text("[{metadata: {name: one, namespace: a}}, {metadata: {name: two, namespace: a}}]");
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

    cJSON *bad = fixture_yaml_text("{kind: NamespaceList}");
    w = (netpol_world *)0x1;
    assert_int_equal(netpol_world_new(&w, bad, NULL), MB_EINVAL);
    assert_null(w);
    cJSON_Delete(bad);

    bad = fixture_yaml_text("[{metadata: {name: p}, spec: {podSelector: {}}}]");
    assert_int_equal(netpol_world_new(&w, NULL, bad), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "metadata.namespace"));
    cJSON_Delete(bad);

    bad = fixture_yaml_text("[{metadata: {labels: {a: b}}}]");
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
    cJSON *pods = fixture_yaml_text("[{metadata: {name: one, namespace: a}}, {metadata: {name: two, namespace: a}},"
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
    cJSON *pods = fixture_yaml_text("[{metadata: {name: one, namespace: n}}, {metadata: {name: two, namespace: n}}]");
    for (int order = 0; order < 2; order++) {
        netpol_world *w = NULL;
        netpol_verdict v;
        snprintf(text, sizeof(text), "[%s, %s]", order ? a : b, order ? b : a);
        cJSON *pols = fixture_yaml_text(text);
        assert_int_equal(netpol_world_new(&w, NULL, pols), 0);
        assert_int_equal(netpol_evaluate(&v, w, cJSON_GetArrayItem(pods, 0), cJSON_GetArrayItem(pods, 1), 80, NULL), 0);
        assert_true(v.allowed);
        assert_string_equal(v.ingress_policy, "allow-a");
        netpol_world_free(w);
        cJSON_Delete(pols);
    }
    cJSON_Delete(pods);
}

/* The Namespaces given, sorted by name; not the namespaces only a NetworkPolicy names. */
static void test_namespace_iteration(void **state)
{
    (void)state;
    netpol_world *w = NULL;
    cJSON *nss = fixture_yaml_text("[{metadata: {name: zeta}}, {metadata: {name: alpha, labels: {a: b}}},"
                                   " {metadata: {name: mid}}]");
    cJSON *pols = fixture_yaml_text("[{metadata: {name: p, namespace: only-policy}, spec: {podSelector: {}}}]");

    assert_int_equal(netpol_world_new(&w, nss, pols), 0);
    assert_int_equal(netpol_namespace_count(w), 3);
    assert_string_equal(netpol_namespace_name(w, 0), "alpha");
    assert_string_equal(netpol_namespace_name(w, 1), "mid");
    assert_string_equal(netpol_namespace_name(w, 2), "zeta");
    assert_null(netpol_namespace_name(w, 3));
    netpol_world_free(w);

    assert_int_equal(netpol_world_new(&w, NULL, pols), 0);
    assert_int_equal(netpol_namespace_count(w), 0);
    assert_null(netpol_namespace_name(w, 0));
    netpol_world_free(w);
    assert_int_equal(netpol_namespace_count(NULL), 0);
    cJSON_Delete(nss);
    cJSON_Delete(pols);
}

/*
 * A hypothetical destination has no containers: a named port in a rule of the
 * connection's protocol matches it, in ingress and egress rules alike; one of
 * another protocol does not.
 */
static void test_hypothetical_destination_named_ports(void **state)
{
    (void)state;
    netpol_world *w = NULL;
    netpol_verdict v;
    cJSON *pods = fixture_yaml_text("[{metadata: {name: client, namespace: n, labels: {app: ui}}},"
                                    " {metadata: {name: '<app=db>', namespace: n, labels: {app: db}}}]");
    const cJSON *src = cJSON_GetArrayItem(pods, 0), *dst = cJSON_GetArrayItem(pods, 1);
    cJSON *pols = fixture_yaml_text("- metadata: {name: db-in, namespace: n}\n"
                                    "  spec: {podSelector: {matchLabels: {app: db}},"
                                    " ingress: [{ports: [{port: postgres}, {protocol: UDP, port: dns}]}]}\n"
                                    "- metadata: {name: ui-out, namespace: n}\n"
                                    "  spec: {podSelector: {matchLabels: {app: ui}}, policyTypes: [Egress],"
                                    " egress: [{ports: [{port: postgres}]}]}\n");

    assert_int_equal(netpol_world_new(&w, NULL, pols), 0);
    /* a live pod without that container port: neither rule matches */
    assert_int_equal(netpol_evaluate(&v, w, src, dst, 5432, "TCP"), 0);
    assert_false(v.allowed);
    assert_int_equal(v.egress, NETPOL_DENIED);
    assert_int_equal(netpol_evaluate_flags(&v, w, src, dst, 5432, "TCP", 0), 0);
    assert_false(v.allowed);
    /* hypothetical: both named ports match, whatever the number */
    assert_int_equal(netpol_evaluate_flags(&v, w, src, dst, 5432, "TCP", NETPOL_DST_HYPOTHETICAL), 0);
    assert_true(v.allowed);
    assert_string_equal(v.egress_policy, "ui-out");
    assert_string_equal(v.ingress_policy, "db-in");
    assert_int_equal(netpol_evaluate_flags(&v, w, src, dst, 6379, NULL, NETPOL_DST_HYPOTHETICAL), 0);
    assert_true(v.allowed);
    /* the protocol still counts: UDP passes no TCP-only egress rule */
    assert_int_equal(netpol_evaluate_flags(&v, w, src, dst, 53, "UDP", NETPOL_DST_HYPOTHETICAL), 0);
    assert_false(v.allowed);
    assert_int_equal(v.egress, NETPOL_DENIED);
    netpol_world_free(w);
    cJSON_Delete(pols);
    cJSON_Delete(pods);
}

/* ---- the membrane-networkpolicy check --------------------------------- */

#define API_MEMBRANE                                                                                                   \
    "clients:\n"                                                                                                       \
    "  - {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kfm}},\n"                                     \
    "     podSelector: {matchLabels: {app: kfm-ui}}}\n"                                                                \
    "stores:\n"                                                                                                        \
    "  - {name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432]}\n"

#define DENY_INGRESS_KFM                                                                                               \
    "- {metadata: {name: default-deny, namespace: kfm}, spec: {podSelector: {}, policyTypes: [Ingress]}}\n"

/* Runs the check in the kfm cluster (release namespace kfm) with these policies and spec.membrane. */
static int run_check(netpol_result *out, const char *policies, const char *membrane, const cJSON *pods)
{
    cJSON *world = fixture_yaml("netpol/kfm.yaml");
    cJSON *pols = fixture_yaml_text(policies);
    cJSON *spec = fixture_yaml_text(membrane);
    netpol_world *w = NULL;
    int err;
    if (netpol_world_new(&w, json_get(world, "namespaces", NULL), pols) < 0)
        fail_msg("world does not build: %s", mb_error_last());
    err = netpol_membrane_check(out, w, spec, "kfm", pods ? pods : json_get(world, "pods", NULL));
    netpol_world_free(w);
    cJSON_Delete(spec);
    cJSON_Delete(pols);
    cJSON_Delete(world);
    return err;
}

static void assert_contains(const char *text, const char *needle)
{
    if (!text || !strstr(text, needle))
        fail_msg("\"%s\" does not contain \"%s\"", text ? text : "(null)", needle);
}

static void test_membrane_no_policies_is_a_breach(void **state)
{
    (void)state;
    netpol_result r;
    assert_int_equal(run_check(&r, "[]", API_MEMBRANE, NULL), 0);
    assert_false(r.passed);
    assert_string_equal(r.message,
                        "kfm/kfm-ui-7c9f (app=kfm-ui) \xe2\x86\x92 kfm/postgis-0:5432 (store postgis) is allowed: "
                        "no NetworkPolicy isolates kfm/postgis-0 for ingress and none isolates kfm/kfm-ui-7c9f for "
                        "egress (the first of 2 allowed paths); isolate kfm/postgis-0 with an Ingress NetworkPolicy in "
                        "kfm that admits only the API");
    assert_int_equal(r.client_pods, 2); /* the Succeeded UI pod is left out */
    assert_int_equal(r.store_pods, 1);  /* kfm-data/postgis-0 is not in the release namespace */
    assert_int_equal(r.paths_checked, 2);
    assert_int_equal(r.paths_allowed, 2);
    netpol_result_dispose(&r);
    netpol_result_dispose(&r); /* idempotent */
    netpol_result_dispose(NULL);
}

static void test_membrane_default_deny_in_store_namespace_is_intact(void **state)
{
    (void)state;
    netpol_result r;
    assert_int_equal(run_check(&r, DENY_INGRESS_KFM, API_MEMBRANE, NULL), 0);
    assert_true(r.passed);
    assert_string_equal(r.message, "NetworkPolicy denies all 2 paths from 2 client pods to 1 store pod");
    assert_int_equal(r.paths_allowed, 0);
    netpol_result_dispose(&r);
}

static void test_membrane_policy_letting_ui_in_is_a_breach(void **state)
{
    (void)state;
    netpol_result r;
    assert_int_equal(run_check(&r,
                               DENY_INGRESS_KFM "- metadata: {name: postgis-clients, namespace: kfm}\n"
                                                "  spec:\n"
                                                "    podSelector: {matchLabels: {app: postgis}}\n"
                                                "    ingress:\n"
                                                "      - from: [{podSelector: {matchLabels: {app: kfm-api}}},"
                                                " {podSelector: {matchLabels: {app: kfm-ui}}}]\n"
                                                "        ports: [{port: 5432}]\n",
                               API_MEMBRANE, NULL),
                     0);
    assert_false(r.passed);
    assert_string_equal(r.message,
                        "kfm/kfm-ui-7c9f (app=kfm-ui) \xe2\x86\x92 kfm/postgis-0:5432 (store postgis) is allowed: "
                        "NetworkPolicy kfm/postgis-clients admits it into kfm/postgis-0 and no NetworkPolicy isolates "
                        "kfm/kfm-ui-7c9f for egress (the first of 2 allowed paths); narrow NetworkPolicy "
                        "kfm/postgis-clients so that it does not admit kfm/kfm-ui-7c9f");
    netpol_result_dispose(&r);
}

static void test_membrane_policy_admitting_only_the_api_is_intact(void **state)
{
    (void)state;
    netpol_result r;
    assert_int_equal(run_check(&r,
                               "- metadata: {name: postgis-from-api, namespace: kfm}\n"
                               "  spec:\n"
                               "    podSelector: {matchLabels: {app: postgis}}\n"
                               "    policyTypes: [Ingress]\n"
                               "    ingress:\n"
                               "      - from: [{podSelector: {matchLabels: {app: kfm-api}}}]\n"
                               "        ports: [{protocol: TCP, port: postgres}]\n",
                               API_MEMBRANE, NULL),
                     0);
    assert_true(r.passed);
    assert_int_equal(r.paths_checked, 2);
    netpol_result_dispose(&r);
}

static void test_membrane_client_egress_deny_only_is_intact(void **state)
{
    (void)state;
    netpol_result r;
    assert_int_equal(run_check(&r,
                               "- metadata: {name: ui-egress, namespace: kfm}\n"
                               "  spec:\n"
                               "    podSelector: {matchLabels: {app: kfm-ui}}\n"
                               "    policyTypes: [Egress]\n"
                               "    egress:\n"
                               "      - to: [{podSelector: {matchLabels: {app: kfm-api}}}]\n"
                               "        ports: [{port: 8080}]\n"
                               "      - ports: [{protocol: UDP, port: 53}]\n",
                               API_MEMBRANE, NULL),
                     0);
    assert_true(r.passed);
    assert_string_equal(r.message, "NetworkPolicy denies all 2 paths from 2 client pods to 1 store pod");
    netpol_result_dispose(&r);
}

static void test_membrane_client_egress_policy_that_allows_names_it(void **state)
{
    (void)state;
    netpol_result r;
    assert_int_equal(run_check(&r,
                               "- metadata: {name: ui-egress, namespace: kfm}\n"
                               "  spec:\n"
                               "    podSelector: {matchLabels: {app: kfm-ui}}\n"
                               "    egress: [{ports: [{port: 5432}]}]\n",
                               API_MEMBRANE, NULL),
                     0);
    assert_false(r.passed);
    assert_contains(r.message, "no NetworkPolicy isolates kfm/postgis-0 for ingress and NetworkPolicy "
                               "kfm/ui-egress lets it out of kfm/kfm-ui-7c9f");
    netpol_result_dispose(&r);
}

/*
 * Client entries that match no live pod (a selector typo, a UI scaled to
 * zero) are evaluated with hypothetical pods carrying the labels their
 * selectors require: with no policy that is a breach, named through the
 * hypothetical pod; with the stores isolated it passes, saying which pods were
 * hypothetical.
 */
static void test_membrane_no_client_pods_hypothetical(void **state)
{
    (void)state;
    netpol_result r;
    const char *membrane = "clients:\n"
                           "  - {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kfm}},"
                           " podSelector: {matchLabels: {app: kfm-web}}}\n"
                           "  - {podSelector: {matchLabels: {app: shell}}}\n"
                           "stores: [{name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432]}]\n";

    assert_int_equal(run_check(&r, "[]", membrane, NULL), 0);
    assert_false(r.passed);
    assert_string_equal(r.message,
                        "hypothetical pod kfm/<app=kfm-web> (app=kfm-web) \xe2\x86\x92 kfm/postgis-0:5432 (store "
                        "postgis) is allowed: no NetworkPolicy isolates kfm/postgis-0 for ingress and none isolates "
                        "hypothetical pod kfm/<app=kfm-web> for egress (the first of 2 allowed paths); isolate "
                        "kfm/postgis-0 with an Ingress NetworkPolicy in kfm that admits only the API (hypothetical "
                        "pods, where no live pod matches their entries: kfm/<app=kfm-web>, kfm/<app=shell>)");
    assert_int_equal(r.client_pods, 2);
    assert_int_equal(r.store_pods, 1);
    assert_int_equal(r.hypothetical_pods, 2);
    assert_int_equal(r.paths_checked, 2);
    assert_int_equal(r.paths_allowed, 2);
    netpol_result_dispose(&r);

    /* a policy that admits the hypothetical pod is named, and so is the pod */
    assert_int_equal(run_check(&r,
                               DENY_INGRESS_KFM
                               "- metadata: {name: web-to-postgis, namespace: kfm}\n"
                               "  spec:\n"
                               "    podSelector: {matchLabels: {app: postgis}}\n"
                               "    ingress: [{from: [{podSelector: {matchLabels: {app: kfm-web}}}]}]\n",
                               membrane, NULL),
                     0);
    assert_false(r.passed);
    assert_string_equal(r.message,
                        "hypothetical pod kfm/<app=kfm-web> (app=kfm-web) \xe2\x86\x92 kfm/postgis-0:5432 (store "
                        "postgis) is allowed: NetworkPolicy kfm/web-to-postgis admits it into kfm/postgis-0 and no "
                        "NetworkPolicy isolates hypothetical pod kfm/<app=kfm-web> for egress; narrow NetworkPolicy "
                        "kfm/web-to-postgis so that it does not admit hypothetical pod kfm/<app=kfm-web> "
                        "(hypothetical pods, where no live pod matches their entries: kfm/<app=kfm-web>, "
                        "kfm/<app=shell>)");
    assert_int_equal(r.paths_allowed, 1);
    netpol_result_dispose(&r);

    assert_int_equal(run_check(&r, DENY_INGRESS_KFM, membrane, NULL), 0);
    assert_true(r.passed);
    assert_string_equal(r.message,
                        "NetworkPolicy denies all 2 paths from 2 client pods to 1 store pod (hypothetical "
                        "pods, where no live pod matches their entries: kfm/<app=kfm-web>, kfm/<app=shell>)");
    assert_int_equal(r.client_pods, 2);
    assert_int_equal(r.hypothetical_pods, 2);
    assert_int_equal(r.paths_checked, 2);
    netpol_result_dispose(&r);
}

/*
 * The UI scaled to zero: API.md's membrane with no UI pod running is judged as
 * if one ran. A policy admitting every pod of the namespace lets it in.
 */
static void test_membrane_client_scaled_to_zero(void **state)
{
    (void)state;
    netpol_result r;
    cJSON *world = fixture_yaml("netpol/kfm.yaml");
    cJSON *pods = cJSON_CreateArray(), *p;
    cJSON_ArrayForEach(p, json_get(world, "pods", NULL)) {
        if (strcmp(json_str(p, "metadata", "labels", "app", NULL), "kfm-ui") != 0)
            cJSON_AddItemToArray(pods, cJSON_Duplicate(p, 1));
    }
    assert_int_equal(run_check(&r,
                               DENY_INGRESS_KFM
                               "- {metadata: {name: same-ns, namespace: kfm}, spec: {podSelector: {}, ingress: [{from: "
                               "[{podSelector: {}}]}]}}\n",
                               API_MEMBRANE, pods),
                     0);
    assert_false(r.passed);
    assert_contains(r.message, "hypothetical pod kfm/<app=kfm-ui> (app=kfm-ui) \xe2\x86\x92 kfm/postgis-0:5432 (store "
                               "postgis) is allowed: NetworkPolicy kfm/same-ns admits it");
    assert_contains(r.message, "(hypothetical pod, where no live pod matches its entry: kfm/<app=kfm-ui>)");
    assert_int_equal(r.client_pods, 1);
    assert_int_equal(r.hypothetical_pods, 1);
    netpol_result_dispose(&r);

    /* an ipBlock never matches a hypothetical pod: it has no IP */
    assert_int_equal(run_check(&r,
                               DENY_INGRESS_KFM
                               "- metadata: {name: from-cluster, namespace: kfm}\n"
                               "  spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 0.0.0.0/0}},"
                               " {ipBlock: {cidr: '::/0'}}]}]}\n",
                               API_MEMBRANE, pods),
                     0);
    assert_true(r.passed);
    assert_string_equal(r.message, "NetworkPolicy denies the one path from 1 client pod to 1 store pod (hypothetical "
                                   "pod, where no live pod matches its entry: kfm/<app=kfm-ui>)");
    netpol_result_dispose(&r);
    cJSON_Delete(pods);
    cJSON_Delete(world);
}

/* A store with no live pod is judged with a hypothetical one, not failed out of hand. */
static void test_membrane_no_store_pods_hypothetical(void **state)
{
    (void)state;
    netpol_result r;
    assert_int_equal(run_check(&r, DENY_INGRESS_KFM,
                               "clients: [{podSelector: {matchLabels: {app: kfm-ui}}}]\n"
                               "stores:\n"
                               "  - {name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432]}\n"
                               "  - {name: cache, podSelector: {matchLabels: {app: redis}}, ports: [6379]}\n",
                               NULL),
                     0);
    assert_true(r.passed);
    assert_string_equal(r.message, "NetworkPolicy denies all 4 paths from 2 client pods to 2 store pods (hypothetical "
                                   "pod, where no live pod matches its entry: kfm/<app=redis>)");
    assert_int_equal(r.store_pods, 2);
    assert_int_equal(r.hypothetical_pods, 1);
    netpol_result_dispose(&r);

    /* a breach through a live store is named first; the hypothetical store is listed */
    assert_int_equal(run_check(&r, "[]",
                               "clients: [{podSelector: {matchLabels: {app: kfm-ui}}}]\n"
                               "stores:\n"
                               "  - {name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432]}\n"
                               "  - {podSelector: {matchLabels: {app: redis}}, ports: [6379]}\n",
                               NULL),
                     0);
    assert_false(r.passed);
    assert_contains(r.message, "kfm/kfm-ui-7c9f (app=kfm-ui) \xe2\x86\x92 kfm/postgis-0:5432 (store postgis) is "
                               "allowed");
    assert_contains(r.message, "(the first of 4 allowed paths)");
    assert_contains(r.message, "(hypothetical pod, where no live pod matches its entry: kfm/<app=redis>)");
    netpol_result_dispose(&r);
}

/*
 * A hypothetical store has no containers: a rule's named port is taken to
 * match it. A policy that lets the UI in on a named port is a breach; one
 * that lets in only the API passes.
 */
static void test_membrane_hypothetical_store_named_port(void **state)
{
    (void)state;
    netpol_result r;
    const char *membrane = "clients: [{podSelector: {matchLabels: {app: kfm-ui}}}]\n"
                           "stores: [{name: cache, podSelector: {matchExpressions: [{key: app, operator: In, values:"
                           " [redis, valkey]}, {key: role, operator: Exists}]}, ports: [6379]}]\n";
    const char *ui_in = DENY_INGRESS_KFM
        "- metadata: {name: cache-clients, namespace: kfm}\n"
        "  spec:\n"
        "    podSelector: {matchLabels: {app: redis}}\n"
        "    ingress: [{from: [{podSelector: {matchLabels: {app: kfm-ui}}}], ports: [{port: redis}]}]\n";
    cJSON *world = fixture_yaml("netpol/kfm.yaml");
    cJSON *pods = cJSON_Duplicate(json_get(world, "pods", NULL), 1);

    assert_int_equal(run_check(&r, ui_in, membrane, NULL), 0);
    assert_false(r.passed);
    assert_string_equal(r.message,
                        "kfm/kfm-ui-7c9f (app=kfm-ui) \xe2\x86\x92 hypothetical pod kfm/<app=redis,role=membrane-"
                        "hypothetical>:6379 (store cache) is allowed: NetworkPolicy kfm/cache-clients admits it into "
                        "hypothetical pod kfm/<app=redis,role=membrane-hypothetical> and no NetworkPolicy isolates "
                        "kfm/kfm-ui-7c9f for egress (the first of 2 allowed paths); narrow NetworkPolicy "
                        "kfm/cache-clients so that it does not admit kfm/kfm-ui-7c9f (hypothetical pod, where no live "
                        "pod matches its entry: kfm/<app=redis,role=membrane-hypothetical>)");
    assert_int_equal(r.store_pods, 1);
    assert_int_equal(r.hypothetical_pods, 1);
    netpol_result_dispose(&r);

    /* the same policy and a live cache pod without a port named redis: the named port matches nothing */
    cJSON_AddItemToArray(pods, fixture_yaml_text("{metadata: {name: redis-0, namespace: kfm, labels: {app: redis,"
                                                 " role: primary}}, spec: {containers: [{name: redis, ports: [{name:"
                                                 " tcp, containerPort: 6379}]}]}, status: {phase: Running}}"));
    assert_int_equal(run_check(&r, ui_in, membrane, pods), 0);
    assert_true(r.passed);
    assert_string_equal(r.message, "NetworkPolicy denies all 2 paths from 2 client pods to 1 store pod");
    netpol_result_dispose(&r);

    assert_int_equal(run_check(&r,
                               DENY_INGRESS_KFM "- metadata: {name: cache-from-api, namespace: kfm}\n"
                                                "  spec:\n"
                                                "    podSelector: {matchLabels: {app: redis}}\n"
                                                "    ingress: [{from: [{podSelector: {matchLabels: {app: kfm-api}}}],"
                                                " ports: [{port: redis}]}]\n",
                               membrane, NULL),
                     0);
    assert_true(r.passed);
    assert_string_equal(r.message,
                        "NetworkPolicy denies all 2 paths from 2 client pods to 1 store pod (hypothetical "
                        "pod, where no live pod matches its entry: kfm/<app=redis,role=membrane-hypothetical>)");
    netpol_result_dispose(&r);
    cJSON_Delete(pods);
    cJSON_Delete(world);
}

/* Live pods where an entry has them, hypothetical ones only for the entries that have none. */
static void test_membrane_live_and_hypothetical_mixed(void **state)
{
    (void)state;
    netpol_result r;
    assert_int_equal(run_check(&r, DENY_INGRESS_KFM,
                               "clients:\n"
                               "  - {podSelector: {matchLabels: {app: kfm-ui}}}\n"
                               "  - {podSelector: {matchExpressions: [{key: app, operator: In, values: [kfm-ui]}]}}\n"
                               "  - {podSelector: {matchLabels: {app: kfm-web}}}\n"
                               "stores: [{name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432]}]\n",
                               NULL),
                     0);
    assert_true(r.passed);
    /* clients[1] matches the live UI pods clients[0] took: it gets no hypothetical pod */
    assert_string_equal(r.message, "NetworkPolicy denies all 3 paths from 3 client pods to 1 store pod (hypothetical "
                                   "pod, where no live pod matches its entry: kfm/<app=kfm-web>)");
    assert_int_equal(r.client_pods, 3);
    assert_int_equal(r.hypothetical_pods, 1);
    netpol_result_dispose(&r);

    /* a hypothetical client and a hypothetical store with the same labels are one pod */
    assert_int_equal(run_check(&r, DENY_INGRESS_KFM,
                               "clients: [{podSelector: {matchLabels: {app: cache}}}]\n"
                               "stores: [{name: cache, podSelector: {matchLabels: {app: cache}}, ports: [6379]}]\n",
                               NULL),
                     0);
    assert_false(r.passed);
    assert_string_equal(r.message,
                        "hypothetical pod kfm/<app=cache> (app=cache) \xe2\x86\x92 hypothetical pod "
                        "kfm/<app=cache>:6379 "
                        "(store cache) is allowed: hypothetical pod kfm/<app=cache> is both a client and a store pod, "
                        "and a pod's traffic to itself is never filtered; make the client and store selectors pick "
                        "different pods (hypothetical pod, where no live pod matches its entry: kfm/<app=cache>)");
    assert_int_equal(r.hypothetical_pods, 1);
    netpol_result_dispose(&r);

    /* a store entry matches live pods only, never a client's hypothetical pod: it gets its own in every namespace */
    assert_int_equal(run_check(&r, DENY_INGRESS_KFM,
                               "clients: [{podSelector: {matchLabels: {app: cache}}}]\n"
                               "stores: [{name: cache, namespaceSelector: {}, podSelector: {matchLabels: {app: cache}},"
                               " ports: [6379]}]\n",
                               NULL),
                     0);
    assert_false(r.passed);
    assert_int_equal(r.client_pods, 1);
    assert_int_equal(r.store_pods, 5);
    assert_int_equal(r.hypothetical_pods, 5);
    assert_int_equal(r.paths_checked, 5);
    assert_int_equal(r.paths_allowed, 5); /* kfm/<app=cache> to itself, and the four namespaces without policies */
    assert_contains(r.message, "hypothetical pod kfm/<app=cache> is both a client and a store pod");
    assert_contains(r.message,
                    "(hypothetical pods, where no live pod matches their entries: kfm/<app=cache>, "
                    "kfm-data/<app=cache>, partner-a/<app=cache>, partner-b/<app=cache>, tools/<app=cache>)");
    netpol_result_dispose(&r);
}

/*
 * An entry with live pods in one namespace it selects is still judged in the
 * others: a UI pod that would start in partner-a, which the store's policy
 * admits, is a breach although the live UI pods in kfm are denied.
 */
static void test_membrane_hypothetical_where_an_entry_has_no_live_pod(void **state)
{
    (void)state;
    netpol_result r;
    const char *membrane =
        "clients:\n"
        "  - {namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In,"
        " values: [kfm, partner-a]}]}, podSelector: {matchLabels: {app: kfm-ui}}}\n"
        "stores: [{name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432]}]\n";
    assert_int_equal(run_check(&r,
                               DENY_INGRESS_KFM
                               "- metadata: {name: partners-in, namespace: kfm}\n"
                               "  spec:\n"
                               "    podSelector: {matchLabels: {app: postgis}}\n"
                               "    ingress: [{from: [{namespaceSelector: {matchLabels: {audience: external}}}]}]\n",
                               membrane, NULL),
                     0);
    assert_false(r.passed);
    assert_int_equal(r.client_pods, 3); /* the two live UI pods in kfm, and one in partner-a */
    assert_int_equal(r.hypothetical_pods, 1);
    assert_int_equal(r.paths_allowed, 1);
    assert_contains(r.message, "hypothetical pod partner-a/<app=kfm-ui> (app=kfm-ui) \xe2\x86\x92 kfm/postgis-0:5432");
    assert_contains(r.message, "NetworkPolicy kfm/partners-in admits it");
    netpol_result_dispose(&r);

    /* without the partners' policy every path, live and hypothetical, is denied */
    assert_int_equal(run_check(&r, DENY_INGRESS_KFM, membrane, NULL), 0);
    assert_true(r.passed);
    assert_contains(r.message, "partner-a/<app=kfm-ui>");
    netpol_result_dispose(&r);
}

/*
 * A client entry with only a namespaceSelector and no live pod: a
 * hypothetical pod without labels in every namespace it selects.
 */
static void test_membrane_hypothetical_in_every_selected_namespace(void **state)
{
    (void)state;
    netpol_result r;
    const char *membrane = "clients:\n"
                           "  - {namespaceSelector: {matchLabels: {audience: external}}}\n"
                           "  - {namespaceSelector: {matchExpressions: [{key: audience, operator: Exists}]},"
                           " podSelector: {matchLabels: {app: portal}}}\n"
                           "stores: [{name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432]}]\n";

    assert_int_equal(run_check(&r, DENY_INGRESS_KFM, membrane, NULL), 0);
    assert_true(r.passed);
    assert_string_equal(r.message, "NetworkPolicy denies all 4 paths from 4 client pods to 1 store pod (hypothetical "
                                   "pods, where no live pod matches their entries: partner-a/<app=portal>, "
                                   "partner-a/<no labels>, partner-b/<app=portal>, partner-b/<no labels>)");
    assert_int_equal(r.client_pods, 4);
    assert_int_equal(r.hypothetical_pods, 4);
    netpol_result_dispose(&r);

    /* partner-b is let in: its hypothetical pods are the breach, partner-a's are not */
    assert_int_equal(run_check(&r,
                               DENY_INGRESS_KFM
                               "- metadata: {name: from-partner-b, namespace: kfm}\n"
                               "  spec:\n"
                               "    podSelector: {matchLabels: {app: postgis}}\n"
                               "    ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: "
                               "partner-b}}}]}]\n",
                               membrane, NULL),
                     0);
    assert_false(r.passed);
    assert_int_equal(r.paths_allowed, 2);
    assert_contains(r.message,
                    "hypothetical pod partner-b/<app=portal> (app=portal) \xe2\x86\x92 kfm/postgis-0:5432 "
                    "(store postgis) is allowed: NetworkPolicy kfm/from-partner-b admits it into "
                    "kfm/postgis-0 and no NetworkPolicy isolates hypothetical pod partner-b/<app=portal> for "
                    "egress (the first of 2 allowed paths)");
    netpol_result_dispose(&r);
}

/* An entry no pod could match fails the check, naming the entry and the field to fix. */
static void test_membrane_entry_no_pod_could_match(void **state)
{
    (void)state;
    netpol_result r;
    const char *postgis = "stores: [{name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432]}]\n";
    char text[1024];

    snprintf(text, sizeof(text),
             "clients:\n"
             "  - {podSelector: {matchLabels: {app: kfm-ui}}}\n"
             "  - {podSelector: {matchLabels: {app: a}, matchExpressions: [{key: app, operator: In, values: [b]}]}}\n"
             "%s",
             postgis);
    assert_int_equal(run_check(&r, DENY_INGRESS_KFM, text, NULL), 0);
    assert_false(r.passed);
    assert_string_equal(r.message, "no live pod matches spec.membrane.clients[1] (app=a,app in (b) in namespace kfm), "
                                   "and no pod could: no labels can satisfy its podSelector, so the membrane cannot be "
                                   "checked for it; fix spec.membrane.clients[1].podSelector");
    assert_int_equal(r.client_pods, 2);
    netpol_result_dispose(&r);

    /* after a breach, the entry is still named */
    assert_int_equal(run_check(&r, "[]", text, NULL), 0);
    assert_false(r.passed);
    assert_contains(r.message, "kfm/kfm-ui-7c9f (app=kfm-ui) \xe2\x86\x92 kfm/postgis-0:5432");
    assert_contains(r.message, "; also, no live pod matches spec.membrane.clients[1] (app=a,app in (b) in namespace "
                               "kfm), and no pod could");
    netpol_result_dispose(&r);

    snprintf(text, sizeof(text), "clients: [{namespaceSelector: {matchLabels: {team: nobody}}}]\n%s", postgis);
    assert_int_equal(run_check(&r, DENY_INGRESS_KFM, text, NULL), 0);
    assert_false(r.passed);
    assert_string_equal(r.message,
                        "no live pod matches spec.membrane.clients[0] (every pod in namespaces team=nobody), "
                        "and no pod could: its namespaceSelector matches no Namespace, so the membrane cannot "
                        "be checked for it; fix spec.membrane.clients[0].namespaceSelector or create a "
                        "Namespace it selects");
    assert_int_equal(r.paths_checked, 0);
    netpol_result_dispose(&r);

    assert_int_equal(run_check(&r, DENY_INGRESS_KFM,
                               "clients: [{podSelector: {matchLabels: {app: kfm-ui}}}]\n"
                               "stores:\n"
                               "  - {name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432]}\n"
                               "  - {name: cache, namespaceSelector: {matchLabels: {tier: cache}},"
                               " podSelector: {matchLabels: {app: redis}}, ports: [6379]}\n"
                               "  - {podSelector: {matchExpressions: [{key: app, operator: Exists},"
                               " {key: app, operator: DoesNotExist}]}, ports: [1]}\n",
                               NULL),
                     0);
    assert_false(r.passed);
    assert_string_equal(r.message,
                        "no live pod matches store cache (spec.membrane.stores[1]: app=redis in namespaces "
                        "tier=cache), and no pod could: its namespaceSelector matches no Namespace, so the "
                        "membrane cannot be checked for it; fix spec.membrane.stores[1].namespaceSelector or "
                        "create a Namespace it selects");
    netpol_result_dispose(&r);

    assert_int_equal(run_check(&r, DENY_INGRESS_KFM,
                               "clients: [{podSelector: {matchLabels: {app: kfm-ui}}}]\n"
                               "stores: [{podSelector: {matchExpressions: [{key: app, operator: Exists},"
                               " {key: app, operator: DoesNotExist}]}, ports: [1]}]\n",
                               NULL),
                     0);
    assert_false(r.passed);
    assert_string_equal(r.message,
                        "no live pod matches spec.membrane.stores[0] (app,!app in namespace kfm), and no pod "
                        "could: no labels can satisfy its podSelector, so the membrane cannot be checked for "
                        "it; fix spec.membrane.stores[0].podSelector");
    netpol_result_dispose(&r);
}

static void test_membrane_stores_in_other_namespaces_and_ports(void **state)
{
    (void)state;
    netpol_result r;
    const char *membrane = "clients:\n"
                           "  - {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: tools}}}\n"
                           "  - {podSelector: {matchLabels: {app: kfm-ui}}}\n"
                           "stores:\n"
                           "  - {name: data-postgis, namespaceSelector: {matchLabels: {tier: data}},"
                           " podSelector: {matchLabels: {app: postgis}}, ports: [5432]}\n"
                           "  - {name: minio, podSelector: {matchLabels: {app: minio}}, ports: [9000, 9001]}\n";
    /* kfm denies all ingress but lets anything reach MinIO's console; kfm-data denies all ingress */
    assert_int_equal(run_check(&r,
                               DENY_INGRESS_KFM "- {metadata: {name: deny, namespace: kfm-data}, spec: {podSelector: "
                                                "{}, policyTypes: [Ingress]}}\n"
                                                "- metadata: {name: minio-console, namespace: kfm}\n"
                                                "  spec: {podSelector: {matchLabels: {app: minio}}, ingress: [{from: "
                                                "[{namespaceSelector: {}}], ports: [{port: 9001}]}]}\n",
                               membrane, NULL),
                     0);
    assert_false(r.passed);
    /* clients sorted: kfm/kfm-ui-7c9f, kfm/kfm-ui-9d2e, tools/shell; stores: kfm-data/postgis-0, kfm/minio-0 */
    assert_int_equal(r.client_pods, 3);
    assert_int_equal(r.store_pods, 2);
    assert_int_equal(r.paths_checked, 3 * (1 + 2));
    assert_int_equal(r.paths_allowed, 3);
    assert_string_equal(r.message,
                        "kfm/kfm-ui-7c9f (app=kfm-ui) \xe2\x86\x92 kfm/minio-0:9001 (store minio) is allowed: "
                        "NetworkPolicy kfm/minio-console admits it into kfm/minio-0 and no NetworkPolicy isolates "
                        "kfm/kfm-ui-7c9f for egress (the first of 3 allowed paths); narrow NetworkPolicy "
                        "kfm/minio-console so that it does not admit kfm/kfm-ui-7c9f");
    netpol_result_dispose(&r);

    /* a client entry without podSelector takes every pod of its namespaces: tools/shell */
    assert_int_equal(run_check(&r,
                               DENY_INGRESS_KFM "- metadata: {name: from-tools, namespace: kfm-data}\n"
                                                "  spec:\n"
                                                "    podSelector: {}\n"
                                                "    ingress: [{from: [{namespaceSelector: {matchLabels: "
                                                "{kubernetes.io/metadata.name: tools}}}]}]\n",
                               membrane, NULL),
                     0);
    assert_false(r.passed);
    assert_int_equal(r.paths_allowed, 1);
    assert_contains(r.message, "tools/shell (every pod) \xe2\x86\x92 kfm-data/postgis-0:5432 (store data-postgis) is "
                               "allowed: NetworkPolicy kfm-data/from-tools admits it into kfm-data/postgis-0");
    netpol_result_dispose(&r);
}

static void test_membrane_client_that_is_a_store_pod(void **state)
{
    (void)state;
    netpol_result r;
    assert_int_equal(run_check(&r, DENY_INGRESS_KFM,
                               "clients: [{podSelector: {matchExpressions: [{key: app, operator: In, values: "
                               "[postgis]}]}}]\n"
                               "stores: [{name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432]}]\n",
                               NULL),
                     0);
    assert_false(r.passed);
    assert_string_equal(r.message,
                        "kfm/postgis-0 (app in (postgis)) \xe2\x86\x92 kfm/postgis-0:5432 (store postgis) is allowed: "
                        "kfm/postgis-0 is both a client and a store pod, and a pod's traffic to itself is never "
                        "filtered; make the client and store selectors pick different pods");
    netpol_result_dispose(&r);
}

static void test_membrane_host_network_store(void **state)
{
    (void)state;
    netpol_result r;
    cJSON *world = fixture_yaml("netpol/kfm.yaml");
    cJSON *pods = cJSON_Duplicate(json_get(world, "pods", NULL), 1);
    cJSON *pg = cJSON_GetArrayItem(pods, 4);
    assert_string_equal(json_str(pg, "metadata", "name", NULL), "postgis-0");
    cJSON_AddTrueToObject(cJSON_GetObjectItem(pg, "spec"), "hostNetwork");
    assert_int_equal(run_check(&r, DENY_INGRESS_KFM, API_MEMBRANE, pods), 0);
    assert_false(r.passed);
    assert_contains(r.message, "kfm/postgis-0 uses the host network, which NetworkPolicy does not reliably isolate");
    netpol_result_dispose(&r);
    cJSON_Delete(pods);
    cJSON_Delete(world);
}

/* The same cluster listed in another order gives the same message. */
static void test_membrane_order_independent(void **state)
{
    (void)state;
    netpol_result a, b;
    cJSON *world = fixture_yaml("netpol/kfm.yaml");
    const cJSON *pods = json_get(world, "pods", NULL);
    cJSON *reversed = cJSON_CreateArray();
    for (int i = cJSON_GetArraySize(pods) - 1; i >= 0; i--)
        cJSON_AddItemToArray(reversed, cJSON_Duplicate(cJSON_GetArrayItem(pods, i), 1));
    assert_int_equal(run_check(&a, "[]", API_MEMBRANE, pods), 0);
    assert_int_equal(run_check(&b, "[]", API_MEMBRANE, reversed), 0);
    assert_string_equal(a.message, b.message);
    assert_contains(a.message, "kfm/kfm-ui-7c9f");
    netpol_result_dispose(&a);
    netpol_result_dispose(&b);
    cJSON_Delete(reversed);
    cJSON_Delete(world);
}

static void assert_check_error(const char *policies, const char *membrane, const char *needle)
{
    netpol_result r;
    assert_int_equal(run_check(&r, policies, membrane, NULL), MB_EINVAL);
    assert_false(r.passed);
    assert_contains(mb_error_last(), needle);
    assert_contains(r.message, "the membrane cannot be checked: ");
    assert_contains(r.message, needle);
    netpol_result_dispose(&r);
}

static void test_membrane_cannot_be_checked(void **state)
{
    (void)state;
    const char *stores = "stores: [{name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432]}]\n";
    char text[1024];

    assert_check_error("[]", stores, "spec.membrane.clients must list at least one entry");
    assert_check_error("[]", "clients: [{podSelector: {}}]\n", "spec.membrane.stores must list at least one entry");
    snprintf(text, sizeof(text), "clients: [{}]\n%s", stores);
    assert_check_error("[]", text, "spec.membrane.clients[0] has neither podSelector nor namespaceSelector");
    snprintf(text, sizeof(text), "clients: [{podSelector: {matchExpressions: [{key: app, operator: In}]}}]\n%s",
             stores);
    assert_check_error("[]", text, "spec.membrane.clients[0].podSelector.matchExpressions[0] (key app)");
    assert_check_error("[]", "clients: [{podSelector: {}}]\nstores: [{name: pg, ports: [5432]}]\n",
                       "spec.membrane.stores[0] has no podSelector");
    assert_check_error("[]", "clients: [{podSelector: {}}]\nstores: [{name: pg, podSelector: {}}]\n",
                       "spec.membrane.stores[0] has no ports");
    assert_check_error("[]", "clients: [{podSelector: {}}]\nstores: [{name: pg, podSelector: {}, ports: [postgres]}]\n",
                       "spec.membrane.stores[0].ports[0] is not a port number");
    assert_check_error("[]", "clients: [{podSelector: {}}]\nstores: [{name: pg, podSelector: {}, ports: [70000]}]\n",
                       "spec.membrane.stores[0].ports[0] is not a port number");
    /* a client namespaceSelector against a namespace the world does not know */
    snprintf(text, sizeof(text), "clients: [{namespaceSelector: {matchLabels: {team: x}}}]\n%s", stores);
    {
        netpol_result r;
        cJSON *world = fixture_yaml("netpol/kfm.yaml");
        cJSON *spec = fixture_yaml_text(text);
        netpol_world *w = NULL;
        assert_int_equal(netpol_world_new(&w, NULL, NULL), 0);
        assert_int_equal(netpol_membrane_check(&r, w, spec, "kfm", json_get(world, "pods", NULL)), MB_EINVAL);
        assert_false(r.passed);
        assert_contains(r.message, "Namespace kfm is not among the Namespaces");
        netpol_result_dispose(&r);
        netpol_world_free(w);
        cJSON_Delete(spec);
        cJSON_Delete(world);
    }
    /* an invalid policy in the store namespace: cannot tell whether the store is isolated */
    assert_check_error("- {metadata: {name: broken, namespace: kfm}, spec: {podSelector: {}, ingress: [{from: "
                       "[{ipBlock: {cidr: nope}}]}]}}\n",
                       API_MEMBRANE, "NetworkPolicy kfm/broken spec.ingress[0].from[0].ipBlock.cidr \"nope\"");
    /* bad arguments */
    {
        netpol_result r;
        cJSON *spec = fixture_yaml_text(API_MEMBRANE);
        assert_int_equal(netpol_membrane_check(&r, NULL, spec, "kfm", NULL), MB_EINVAL);
        assert_false(r.passed);
        assert_non_null(r.message);
        netpol_result_dispose(&r);
        cJSON_Delete(spec);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_table),
        cmocka_unit_test(test_world_inputs),
        cmocka_unit_test(test_evaluate_arguments),
        cmocka_unit_test(test_policy_order_does_not_matter),
        cmocka_unit_test(test_namespace_iteration),
        cmocka_unit_test(test_hypothetical_destination_named_ports),
        cmocka_unit_test(test_membrane_no_policies_is_a_breach),
        cmocka_unit_test(test_membrane_default_deny_in_store_namespace_is_intact),
        cmocka_unit_test(test_membrane_policy_letting_ui_in_is_a_breach),
        cmocka_unit_test(test_membrane_policy_admitting_only_the_api_is_intact),
        cmocka_unit_test(test_membrane_client_egress_deny_only_is_intact),
        cmocka_unit_test(test_membrane_client_egress_policy_that_allows_names_it),
        cmocka_unit_test(test_membrane_no_client_pods_hypothetical),
        cmocka_unit_test(test_membrane_client_scaled_to_zero),
        cmocka_unit_test(test_membrane_no_store_pods_hypothetical),
        cmocka_unit_test(test_membrane_hypothetical_store_named_port),
        cmocka_unit_test(test_membrane_live_and_hypothetical_mixed),
        cmocka_unit_test(test_membrane_hypothetical_in_every_selected_namespace),
        cmocka_unit_test(test_membrane_hypothetical_where_an_entry_has_no_live_pod),
        cmocka_unit_test(test_membrane_entry_no_pod_could_match),
        cmocka_unit_test(test_membrane_stores_in_other_namespaces_and_ports),
        cmocka_unit_test(test_membrane_client_that_is_a_store_pod),
        cmocka_unit_test(test_membrane_host_network_store),
        cmocka_unit_test(test_membrane_order_independent),
        cmocka_unit_test(test_membrane_cannot_be_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

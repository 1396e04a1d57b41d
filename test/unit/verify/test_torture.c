/*
 * Allocation-failure torture of the pure parts of verify (test/support/
 * torture.h): label selectors, the NetworkPolicy evaluator over every case of
 * test/fixtures/netpol/cases.yaml (world building and every expected verdict,
 * the cases that must be refused included), the membrane-networkpolicy check
 * (live and hypothetical pods, and entries no pod could match), the membrane
 * probe's pure parts (planning, the Pod objects, reading reports and judging
 * them), the contract's base URL, and the slo check's query substitution. Every run that succeeds gives the same
 * verdicts and messages as the unhindered one. (The contract checks judge
 * answers inside libcurl transfers: they are not pure, and not here.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "torture.h"
#include "util/error.h"
#include "util/json.h"
#include "verify/contract.h"
#include "verify/labels.h"
#include "verify/netpol.h"
#include "verify/probe.h"
#include "verify/slo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- label selectors -------------------------------------------------------------- */

typedef struct {
    const cJSON *sel, *labels;
    labels_selector *s;
    transcript t;
} sel_ctx;

static int sel_run(void *arg)
{
    sel_ctx *c = arg;
    int err;
    bool match = false;
    if ((err = labels_selector_parse(&c->s, c->sel, "test selector")) < 0)
        return err;
    if ((err = labels_selector_match(&match, c->sel, c->labels)) < 0)
        return err;
    tprintf(&c->t, "%s %d %d\n", labels_selector_string(c->s), labels_selector_matches(c->s, c->labels), match);
    return 0;
}

static void sel_check(void *arg)
{
    transcript_check(&((sel_ctx *)arg)->t);
}

static void sel_clear(void *arg)
{
    sel_ctx *c = arg;
    labels_selector_free(c->s);
    c->s = NULL;
    transcript_reset(&c->t);
}

static void test_label_selectors(void **state)
{
    (void)state;
    cJSON *sel = fixture_yaml_text("{matchLabels: {app: kfm-ui, tier: web},"
                                   " matchExpressions: [{key: env, operator: In, values: [prod, staging]},"
                                   "  {key: legacy, operator: DoesNotExist}, {key: zone, operator: NotIn, values: [a]},"
                                   "  {key: team, operator: Exists}]}");
    cJSON *labels = fixture_yaml_text("{app: kfm-ui, tier: web, env: prod, team: data}");
    cJSON *bad = fixture_yaml_text("{matchLabels: {app: x}, matchExpressions: [{key: env, operator: In, values: [a]},"
                                   " {key: k, operator: Exists, values: [a]}]}");
    static sel_ctx c, b;
    c = (sel_ctx){.sel = sel, .labels = labels};
    b = (sel_ctx){.sel = bad, .labels = labels};
    torture_case tc = {.name = "labels_selector_parse",
                       .run = sel_run,
                       .check = sel_check,
                       .clear = sel_clear,
                       .ctx = &c};
    torture_case tb = {.name = "labels_selector_parse (invalid)",
                       .run = sel_run,
                       .clear = sel_clear,
                       .ctx = &b,
                       .expect = MB_EINVAL};
    assert_true(torture_check(&tc) > 0);
    assert_non_null(strstr(c.t.first, " 1 1\n"));
    assert_true(torture_check(&tb) > 0);
    free(c.t.first);
    cJSON_Delete(sel);
    cJSON_Delete(labels);
    cJSON_Delete(bad);
}

/* ---- the NetworkPolicy evaluator ------------------------------------------------------ */

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

typedef struct {
    const cJSON *world, *c; /* the world and one case of cases.yaml */
    netpol_world *w;
    transcript t;
} case_ctx;

/* Builds the case's world and evaluates every expected row; a refused row is a verdict too. */
static int case_run(void *arg)
{
    case_ctx *k = arg;
    const cJSON *pods = json_get(k->world, "pods", NULL), *row;
    int err;

    if ((err = netpol_world_new(&k->w, json_get(k->world, "namespaces", NULL), json_get(k->c, "policies", NULL))) < 0)
        return err;
    cJSON_ArrayForEach(row, json_get(k->c, "expect", NULL)) {
        const cJSON *portj = cJSON_GetArrayItem(row, 2);
        char proto[16] = "TCP";
        int port = 0;
        netpol_verdict v;
        if (cJSON_IsNumber(portj))
            port = portj->valueint;
        else if (sscanf(portj->valuestring, "%d/%15s", &port, proto) != 2)
            return MB_ERROR;
        err = netpol_evaluate(&v, k->w, find_pod(pods, cJSON_GetArrayItem(row, 0)->valuestring),
                              find_pod(pods, cJSON_GetArrayItem(row, 1)->valuestring), port, proto);
        if (err == MB_EINVAL)
            tprintf(&k->t, "refused: %s\n", mb_error_last());
        else if (err < 0)
            return err;
        else
            tprintf(&k->t, "%d %d %s %d %s\n", v.allowed, v.egress, v.egress_policy ? v.egress_policy : "-", v.ingress,
                    v.ingress_policy ? v.ingress_policy : "-");
    }
    return 0;
}

static void case_check(void *arg)
{
    transcript_check(&((case_ctx *)arg)->t);
}

static void case_clear(void *arg)
{
    case_ctx *k = arg;
    netpol_world_free(k->w);
    k->w = NULL;
    transcript_reset(&k->t);
}

static void test_policy_table(void **state)
{
    (void)state;
    cJSON *world = fixture_yaml("netpol/world.yaml");
    cJSON *cases = fixture_yaml("netpol/cases.yaml");
    const cJSON *c;
    int n = 0;

    cJSON_ArrayForEach(c, cases) {
        static case_ctx k;
        k = (case_ctx){.world = world, .c = c};
        torture_case tc = {.name = json_str(c, "name", NULL),
                           .run = case_run,
                           .check = case_check,
                           .clear = case_clear,
                           .ctx = &k};
        assert_true(torture_check(&tc) > 0);
        free(k.t.first);
        n++;
    }
    assert_true(n >= 25);
    cJSON_Delete(cases);
    cJSON_Delete(world);
}

/* ---- the membrane-networkpolicy check -------------------------------------------------- */

typedef struct {
    const cJSON *world, *policies, *membrane;
    netpol_world *w;
    netpol_result r;
    int rc;
    transcript t;
} membrane_ctx;

static int membrane_run(void *arg)
{
    membrane_ctx *m = arg;
    int err;
    if ((err = netpol_world_new(&m->w, json_get(m->world, "namespaces", NULL), m->policies)) < 0)
        return m->rc = err;
    err = netpol_membrane_check(&m->r, m->w, m->membrane, "kfm", json_get(m->world, "pods", NULL));
    if (err < 0) /* the message is then a copy of the error's, when there was memory for it */
        tprintf(&m->t, "error %s\n", mb_error_last());
    else
        tprintf(&m->t, "%d %s %zu %zu %zu %zu %zu\n", m->r.passed, m->r.message ? m->r.message : "-", m->r.client_pods,
                m->r.store_pods, m->r.hypothetical_pods, m->r.paths_checked, m->r.paths_allowed);
    return m->rc = err;
}

static void membrane_check(void *arg)
{
    transcript_check(&((membrane_ctx *)arg)->t);
}

static void membrane_clear(void *arg)
{
    membrane_ctx *m = arg;
    if (m->rc < 0 && m->w && m->r.passed)
        fail_msg("netpol_membrane_check failed (%s) but says passed", mb_error_last());
    netpol_result_dispose(&m->r);
    netpol_world_free(m->w);
    m->w = NULL;
    transcript_reset(&m->t);
}

static void membrane_torture(const cJSON *world, const char *policies, const char *membrane, int expect)
{
    cJSON *pols = fixture_yaml_text(policies), *spec = fixture_yaml_text(membrane);
    static membrane_ctx m;
    m = (membrane_ctx){.world = world, .policies = pols, .membrane = spec};
    torture_case tc = {.name = "netpol_membrane_check",
                       .run = membrane_run,
                       .check = membrane_check,
                       .clear = membrane_clear,
                       .ctx = &m,
                       .expect = expect};
    assert_true(torture_check(&tc) > 0);
    free(m.t.first);
    cJSON_Delete(pols);
    cJSON_Delete(spec);
}

#define API_MEMBRANE                                                                                                   \
    "clients:\n"                                                                                                       \
    "  - {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kfm}},\n"                                     \
    "     podSelector: {matchLabels: {app: kfm-ui}}}\n"                                                                \
    "stores:\n"                                                                                                        \
    "  - {name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432]}\n"                                 \
    "  - {name: minio, podSelector: {matchLabels: {app: minio}}, ports: [9000, 9001]}\n"

static void test_membrane_check(void **state)
{
    (void)state;
    cJSON *world = fixture_yaml("netpol/kfm.yaml");
    /* no policy: a breach, with the first allowed path named */
    membrane_torture(world, "[]", API_MEMBRANE, 0);
    /* the stores admit only the API: intact */
    membrane_torture(world,
                     "- {metadata: {name: default-deny, namespace: kfm}, spec: {podSelector: {}, policyTypes: "
                     "[Ingress]}}\n"
                     "- {metadata: {name: api-to-stores, namespace: kfm}, spec: {podSelector: {matchExpressions:"
                     " [{key: app, operator: In, values: [postgis, minio]}]}, policyTypes: [Ingress],"
                     " ingress: [{from: [{podSelector: {matchLabels: {app: kfm-api}}}],"
                     " ports: [{port: 5432}, {port: s3}, {port: 9001, protocol: TCP}]}]}}\n",
                     API_MEMBRANE, 0);
    /* an invalid spec is refused, saying why */
    membrane_torture(world, "[]", "clients: [{}]\nstores: [{name: x, ports: [1]}]\n", MB_EINVAL);
    /*
     * entries no live pod matches: hypothetical clients in several namespaces
     * and in the release namespace, a hypothetical store let in on a named
     * port (a breach), next to live pods
     */
    membrane_torture(world,
                     "- {metadata: {name: default-deny, namespace: kfm}, spec: {podSelector: {}, policyTypes: "
                     "[Ingress]}}\n"
                     "- {metadata: {name: cache-in, namespace: kfm}, spec: {podSelector: {matchLabels: {app: redis}},"
                     " ingress: [{from: [{namespaceSelector: {matchLabels: {audience: external}}}],"
                     " ports: [{port: redis}]}]}}\n",
                     "clients:\n"
                     "  - {podSelector: {matchLabels: {app: kfm-ui}}}\n"
                     "  - {namespaceSelector: {matchLabels: {audience: external}}}\n"
                     "  - {podSelector: {matchExpressions: [{key: app, operator: In, values: [kfm-web]},"
                     " {key: tier, operator: Exists}]}}\n"
                     "stores:\n"
                     "  - {name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432]}\n"
                     "  - {name: cache, podSelector: {matchLabels: {app: redis}}, ports: [6379]}\n",
                     0);
    /* the same, denied: a pass that lists the hypothetical pods */
    membrane_torture(world,
                     "- {metadata: {name: default-deny, namespace: kfm}, spec: {podSelector: {}, policyTypes: "
                     "[Ingress]}}\n",
                     "clients:\n"
                     "  - {podSelector: {matchLabels: {app: kfm-ui}}}\n"
                     "  - {namespaceSelector: {matchLabels: {audience: external}}}\n"
                     "stores: [{name: cache, podSelector: {matchLabels: {app: redis}}, ports: [6379]}]\n",
                     0);
    /* entries no pod could match: an unsatisfiable podSelector, a namespaceSelector without a Namespace */
    membrane_torture(world, "[]",
                     "clients:\n"
                     "  - {podSelector: {matchLabels: {app: kfm-ui}}}\n"
                     "  - {podSelector: {matchExpressions: [{key: app, operator: Exists},"
                     " {key: app, operator: DoesNotExist}]}}\n"
                     "stores: [{name: cache, namespaceSelector: {matchLabels: {tier: none}}, podSelector: {matchLabels:"
                     " {app: redis}}, ports: [6379]}]\n",
                     0);
    cJSON_Delete(world);
}

/* ---- the membrane probe --------------------------------------------------------------- */

static const char probe_release_yaml[] =
    "apiVersion: governance.kfm.dev/v1alpha1\n"
    "kind: GovernedAPIRelease\n"
    "metadata: {name: kfm-api, namespace: kfm, uid: 0b7f-uid}\n"
    "spec:\n"
    "  membrane:\n"
    "    clients:\n"
    "    - podSelector: {matchLabels: {app: kfm-ui}}\n"
    "    - podSelector: {matchExpressions: [{key: tier, operator: In, values: [web, edge]},"
    " {key: team, operator: Exists}]}\n"
    "      namespaceSelector: {matchLabels: {zone: public}}\n"
    "    stores:\n"
    "    - {name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432, 5433]}\n"
    "    - {name: minio, podSelector: {matchLabels: {app: minio}},"
    " namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: storage}}, ports: [9000]}\n"
    "    apiServiceAccount: kfm-api\n"
    "    probe: {image: \"busybox@sha256:0123\", timeoutSeconds: 20}\n";

static const char probe_pods_yaml[] = "items:\n"
                                      "- {metadata: {namespace: kfm, name: postgis-0, labels: {app: postgis}}, status: "
                                      "{phase: Running, podIP: 10.0.0.10}}\n"
                                      "- {metadata: {namespace: kfm, name: postgis-1, labels: {app: postgis}}, status: "
                                      "{phase: Running, podIP: 10.0.0.11}}\n"
                                      "- {metadata: {namespace: storage, name: minio-0, labels: {app: minio}}, status: "
                                      "{phase: Running, podIP: 10.0.1.5}}\n";

static const char probe_namespaces_yaml[] =
    "items:\n"
    "- {metadata: {name: kfm, labels: {kubernetes.io/metadata.name: kfm}}}\n"
    "- {metadata: {name: storage, labels: {kubernetes.io/metadata.name: storage}}}\n"
    "- {metadata: {name: web-a, labels: {zone: public}}}\n"
    "- {metadata: {name: web-b, labels: {zone: public}}}\n";

typedef struct {
    const cJSON *release, *pods, *namespaces;
    const char *const *reports; /* one per pod of the plan */
    probe_plan *p;
    char *msg;
    transcript t;
} probe_ctx;

/* Plans, makes every Pod object, gives each pod its report and judges. */
static int probe_run(void *arg)
{
    probe_ctx *k = arg;
    bool passed = false;
    int err;
    if ((err = probe_plan_build(&k->p,
                                &(verify_owner){json_str(k->release, "metadata", "namespace", NULL),
                                                json_str(k->release, "metadata", "name", NULL),
                                                json_str(k->release, "metadata", "uid", NULL),
                                                json_str(k->release, "apiVersion", NULL)},
                                json_get(k->release, "spec", "membrane", NULL), "3f9c0a1b2c4d", k->pods,
                                k->namespaces)) < 0)
        return err;
    for (size_t i = 0; i < k->p->n_pods; i++) {
        cJSON *pod = NULL;
        char *text;
        if ((err = probe_pod_manifest(&pod, k->p, i)) < 0)
            return err;
        text = cJSON_PrintUnformatted(pod);
        cJSON_Delete(pod);
        if (!text)
            return MB_ENOMEM;
        tprintf(&k->t, "%s\n", text);
        free(text);
        k->p->pods[i].state = PROBE_POD_ENDED;
        if (!(k->p->pods[i].report = strdup(k->reports[i])))
            return MB_ENOMEM;
    }
    if ((err = probe_plan_judge(&passed, &k->msg, k->p)) < 0)
        return err;
    tprintf(&k->t, "%d %s\n", passed, k->msg);
    return 0;
}

static void probe_check(void *arg)
{
    transcript_check(&((probe_ctx *)arg)->t);
}

static void probe_clear(void *arg)
{
    probe_ctx *k = arg;
    probe_plan_free(k->p);
    k->p = NULL;
    free(k->msg);
    k->msg = NULL;
    transcript_reset(&k->t);
}

static void probe_torture(const char *release, const char *const *reports, int expect, const char *needle)
{
    cJSON *rel = fixture_yaml_text(release), *pods = fixture_yaml_text(probe_pods_yaml);
    cJSON *nss = fixture_yaml_text(probe_namespaces_yaml);
    static probe_ctx k;
    k = (probe_ctx){.release = rel, .pods = pods, .namespaces = nss, .reports = reports};
    torture_case tc = {.name = "membrane probe",
                       .run = probe_run,
                       .check = probe_check,
                       .clear = probe_clear,
                       .ctx = &k,
                       .expect = expect,
                       .may_succeed = true};
    assert_true(torture_check(&tc) > 0);
    if (needle && (!k.t.first || !strstr(k.t.first, needle)))
        fail_msg("the probe's transcript does not say \"%s\": %s", needle, k.t.first ? k.t.first : "(none)");
    free(k.t.first);
    cJSON_Delete(rel);
    cJSON_Delete(pods);
    cJSON_Delete(nss);
}

#define PROBE_CLOSED_ALL                                                                                               \
    "closed 10.0.0.10:5432\nclosed 10.0.0.10:5433\nclosed 10.0.0.11:5432\nclosed 10.0.0.11:5433\nclosed "              \
    "10.0.1.5:9000\n"

static void test_membrane_probe(void **state)
{
    (void)state;
    const char *const intact[] = {PROBE_CLOSED_ALL, PROBE_CLOSED_ALL, PROBE_CLOSED_ALL};
    const char *const mixed[] = {PROBE_CLOSED_ALL,
                                 "closed 10.0.0.10:5432\nerror 10.0.0.10:5433 nc not found\nclosed 10.0.0.11:5432\n"
                                 "stray line\n",
                                 "open 10.0.0.10:5432\nclosed 10.0.0.10:5433\n"};
    probe_torture(probe_release_yaml, intact, 0, "1 3 probe pods with the labels of clients[0]");
    probe_torture(probe_release_yaml, mixed, 0, "opened a TCP connection to 10.0.0.10:5432");
    {
        char *bad = strdup(probe_release_yaml), *at = strstr(bad, "values: [web, edge]");
        memcpy(at, "values: []        ,", 19); /* In without values: refused, naming the entry */
        probe_torture(bad, intact, MB_EINVAL, NULL);
        free(bad);
    }
}

/* Reading a report alone: every kind of line. */
typedef struct {
    probe_report *r;
    transcript t;
} report_ctx;

static int report_run(void *arg)
{
    report_ctx *k = arg;
    static const char *const addrs[] = {"10.0.0.1:1", "10.0.0.1:2", "10.0.0.1:3", "10.0.0.1:4", "10.0.0.1:5"};
    int err = probe_report_parse(&k->r, addrs, 5,
                                 "closed 10.0.0.1:1\nopen 10.0.0.1:2\nerror 10.0.0.1:3 nc exited 1: bad\n"
                                 "error 10.0.0.1:4\nclosed 10.0.0.1:1\nwhat\n");
    if (err < 0)
        return err;
    for (size_t i = 0; i < k->r->n; i++)
        tprintf(&k->t, "%d %s\n", k->r->verdicts[i], k->r->whys[i] ? k->r->whys[i] : "-");
    tprintf(&k->t, "%d %s\n", k->r->truncated, k->r->stray ? k->r->stray : "-");
    return 0;
}

static void report_check(void *arg)
{
    transcript_check(&((report_ctx *)arg)->t);
}

static void report_clear(void *arg)
{
    report_ctx *k = arg;
    probe_report_free(k->r);
    k->r = NULL;
    transcript_reset(&k->t);
}

static void test_probe_report(void **state)
{
    (void)state;
    static report_ctx k;
    k = (report_ctx){0};
    torture_case tc = {.name = "probe_report_parse",
                       .run = report_run,
                       .check = report_check,
                       .clear = report_clear,
                       .ctx = &k};
    assert_true(torture_check(&tc) > 0);
    assert_non_null(strstr(k.t.first, "2 nc exited 1: bad\n2 (no reason given)\n0 -\n0 closed 10.0.0.1:1\n"));
    free(k.t.first);
}

/* ---- the slo check's queries ----------------------------------------------------- */

typedef struct {
    char *q;
} expand_ctx;

static int expand_run(void *arg)
{
    expand_ctx *e = arg;
    return slo_query_expand(&e->q, "sum(rate(x{d=\"{{digest}}\"}[{{window}}])) / sum(rate(x[{{window}}]))", "sha256:ab",
                            300);
}

static void expand_check(void *arg)
{
    assert_string_equal(((expand_ctx *)arg)->q, "sum(rate(x{d=\"sha256:ab\"}[300s])) / sum(rate(x[300s]))");
}

static void expand_clear(void *arg)
{
    expand_ctx *e = arg;
    free(e->q);
    e->q = NULL;
}

static void test_slo_query_expand(void **state)
{
    (void)state;
    static expand_ctx e;
    e = (expand_ctx){0};
    torture_case tc = {.name = "slo_query_expand",
                       .run = expand_run,
                       .check = expand_check,
                       .clear = expand_clear,
                       .ctx = &e};
    assert_true(torture_check(&tc) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_selectors), cmocka_unit_test(test_policy_table),
        cmocka_unit_test(test_membrane_check),  cmocka_unit_test(test_membrane_probe),
        cmocka_unit_test(test_probe_report),    cmocka_unit_test(test_slo_query_expand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

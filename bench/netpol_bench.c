/*
 * Benchmark of the NetworkPolicy evaluator: a synthetic cluster of 1,000 pods
 * and 200 NetworkPolicies across 20 namespaces (default-deny, same-namespace
 * allows, cross-namespace namespaceSelector+podSelector peers, ipBlocks with
 * except, named ports, endPort ranges, egress rules), timed for building the
 * world, for netpol_membrane_check over 100 client pods x 100 store pods x 2
 * ports, and for the full all-pairs verdict (1,000 x 1,000 connections on one
 * port). It prints figures and asserts nothing. Built as bench_netpol; run
 * by hack/bench.sh.
 */
#include "util/clock.h"
#include "util/error.h"
#include "verify/netpol.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define N_NS 20
#define PODS_PER_NS 50
#define POLICIES_PER_NS 10
#define N_APPS 10

static const char *const apps[N_APPS] = {"ui",    "api",    "db",   "cache", "worker",
                                         "queue", "search", "auth", "batch", "proxy"};

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j) {
        fprintf(stderr, "bench: bad generated JSON: %s\n", text);
        exit(1);
    }
    return j;
}

static cJSON *make_namespaces(void)
{
    char buf[512];
    cJSON *arr = cJSON_CreateArray();
    for (int n = 0; n < N_NS; n++) {
        snprintf(buf, sizeof(buf),
                 "{\"metadata\":{\"name\":\"ns-%02d\",\"labels\":{\"team\":\"team-%d\",\"env\":\"%s\"}}}", n, n % 5,
                 n % 2 ? "prod" : "staging");
        cJSON_AddItemToArray(arr, parse(buf));
    }
    return arr;
}

static cJSON *make_pods(void)
{
    char buf[1024];
    cJSON *arr = cJSON_CreateArray();
    for (int n = 0; n < N_NS; n++) {
        for (int i = 0; i < PODS_PER_NS; i++) {
            const char *app = apps[i % N_APPS];
            snprintf(buf, sizeof(buf),
                     "{\"metadata\":{\"name\":\"%s-%03d\",\"namespace\":\"ns-%02d\","
                     "\"labels\":{\"app\":\"%s\",\"shard\":\"s%d\",\"version\":\"v%d\"}},"
                     "\"spec\":{\"nodeName\":\"node-%d\",\"containers\":[{\"name\":\"main\",\"ports\":["
                     "{\"name\":\"postgres\",\"containerPort\":5432},{\"name\":\"http\",\"containerPort\":8080},"
                     "{\"name\":\"metrics\",\"containerPort\":9090}]}]},"
                     "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.%d.%d.%d\","
                     "\"podIPs\":[{\"ip\":\"10.%d.%d.%d\"},{\"ip\":\"fd00::%x:%x\"}]}}",
                     app, i, n, app, i % 4, i % 3, i % 8, n, i / 250, i % 250 + 1, n, i / 250, i % 250 + 1, n, i);
            cJSON_AddItemToArray(arr, parse(buf));
        }
    }
    return arr;
}

/* Ten policies per namespace, of the shapes real clusters use. */
static cJSON *make_policies(void)
{
    char buf[2048];
    cJSON *arr = cJSON_CreateArray();
    for (int n = 0; n < N_NS; n++) {
        for (int k = 0; k < POLICIES_PER_NS; k++) {
            const char *app = apps[k % N_APPS];
            const char *spec;
            char specbuf[1536];
            switch (k) {
            case 0: /* default deny ingress */ spec = "{\"podSelector\":{},\"policyTypes\":[\"Ingress\"]}"; break;
            case 1: /* api admitted into db on the named postgres port */
                spec = "{\"podSelector\":{\"matchLabels\":{\"app\":\"db\"}},\"ingress\":[{\"from\":["
                       "{\"podSelector\":{\"matchLabels\":{\"app\":\"api\"}}}],"
                       "\"ports\":[{\"protocol\":\"TCP\",\"port\":\"postgres\"}]}]}";
                break;
            case 2: /* cross-namespace: prod api of team-0 namespaces (AND peer) */
                spec = "{\"podSelector\":{\"matchLabels\":{\"app\":\"db\"}},\"ingress\":[{\"from\":["
                       "{\"namespaceSelector\":{\"matchLabels\":{\"team\":\"team-0\"},\"matchExpressions\":["
                       "{\"key\":\"env\",\"operator\":\"In\",\"values\":[\"prod\"]}]},"
                       "\"podSelector\":{\"matchLabels\":{\"app\":\"api\"}}}],\"ports\":[{\"port\":5432}]}]}";
                break;
            case 3: /* monitoring from an ipBlock with except, on a port range */
                spec = "{\"podSelector\":{},\"ingress\":[{\"from\":[{\"ipBlock\":{\"cidr\":\"10.19.0.0/16\","
                       "\"except\":[\"10.19.0.0/24\"]}}],\"ports\":[{\"port\":9000,\"endPort\":9100}]}]}";
                break;
            case 4: /* ui egress locked to api */
                spec = "{\"podSelector\":{\"matchLabels\":{\"app\":\"ui\"}},\"policyTypes\":[\"Egress\"],"
                       "\"egress\":[{\"to\":[{\"podSelector\":{\"matchLabels\":{\"app\":\"api\"}}}],"
                       "\"ports\":[{\"port\":\"http\"}]},{\"ports\":[{\"protocol\":\"UDP\",\"port\":53}]}]}";
                break;
            default: /* app-to-app allows with expressions */
                snprintf(specbuf, sizeof(specbuf),
                         "{\"podSelector\":{\"matchLabels\":{\"app\":\"%s\"}},\"ingress\":[{\"from\":["
                         "{\"podSelector\":{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"In\","
                         "\"values\":[\"%s\",\"%s\"]},{\"key\":\"shard\",\"operator\":\"NotIn\",\"values\":[\"s3\"]}]}}"
                         ","
                         "{\"namespaceSelector\":{\"matchLabels\":{\"env\":\"staging\"}}}],"
                         "\"ports\":[{\"port\":8080},{\"port\":\"metrics\"}]}]}",
                         app, apps[(k + 1) % N_APPS], apps[(k + 2) % N_APPS]);
                spec = specbuf;
                break;
            }
            snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"pol-%02d\",\"namespace\":\"ns-%02d\"},\"spec\":%s}",
                     k, n, spec);
            cJSON_AddItemToArray(arr, parse(buf));
        }
    }
    return arr;
}

int main(void)
{
    cJSON *nss = make_namespaces(), *pods = make_pods(), *pols = make_policies();
    cJSON *membrane = parse(
        "{\"clients\":[{\"namespaceSelector\":{},\"podSelector\":{\"matchLabels\":{\"app\":\"ui\"}}}],"
        "\"stores\":[{\"name\":\"db\",\"namespaceSelector\":{},"
        "\"podSelector\":{\"matchLabels\":{\"app\":\"db\"}},\"ports\":[5432,6379]}]}");
    netpol_world *w = NULL;
    netpol_result r;
    int n_pods = cJSON_GetArraySize(pods), allowed = 0, errors = 0;
    int64_t t0;
    double t_world, t_check, t_pairs;
    const int rounds = 5;

    t0 = mb_monotonic_ns();
    for (int i = 0; i < rounds; i++) {
        netpol_world_free(w);
        w = NULL;
        if (netpol_world_new(&w, nss, pols) < 0) {
            fprintf(stderr, "bench: world: %s\n", mb_error_last());
            return 1;
        }
    }
    t_world = mb_elapsed_ms(t0) / rounds;

    t0 = mb_monotonic_ns();
    for (int i = 0; i < rounds; i++) {
        if (i)
            netpol_result_dispose(&r);
        if (netpol_membrane_check(&r, w, membrane, "ns-00", pods) < 0) {
            fprintf(stderr, "bench: check: %s\n", mb_error_last());
            return 1;
        }
    }
    t_check = mb_elapsed_ms(t0) / rounds;

    /* every pod to every pod, one port: the all-pairs verdict */
    const cJSON **arr = malloc((size_t)n_pods * sizeof(*arr));
    for (int i = 0; i < n_pods; i++)
        arr[i] = cJSON_GetArrayItem(pods, i);
    t0 = mb_monotonic_ns();
    for (int s = 0; s < n_pods; s++) {
        for (int d = 0; d < n_pods; d++) {
            bool ok = false;
            if (netpol_allowed(&ok, w, arr[s], arr[d], 8080, "TCP") < 0)
                errors++;
            else
                allowed += ok;
        }
    }
    t_pairs = mb_elapsed_ms(t0);
    long pairs = (long)n_pods * n_pods;

    printf("cluster: %d namespaces, %d pods, %d NetworkPolicies\n", N_NS, n_pods, cJSON_GetArraySize(pols));
    printf("world build:            %8.2f ms\n", t_world);
    printf("membrane check:         %8.2f ms  (%zu client pods x %zu store pods, %zu paths, %.0f ns/path; %s)\n",
           t_check, r.client_pods, r.store_pods, r.paths_checked, t_check * 1e6 / (double)r.paths_checked,
           r.passed ? "intact" : "breach");
    printf("  message: %s\n", r.message);
    printf("all pairs, port 8080:   %8.2f ms  (%ld connections, %.0f ns/connection; %d allowed, %d errors)\n", t_pairs,
           pairs, t_pairs * 1e6 / (double)pairs, allowed, errors);

    netpol_result_dispose(&r);
    free(arr);
    netpol_world_free(w);
    cJSON_Delete(membrane);
    cJSON_Delete(pols);
    cJSON_Delete(pods);
    cJSON_Delete(nss);
    return 0;
}

/*
 * The contract checks run in parallel (verify/contract.c); the membrane
 * checks read the cluster through the API at check time (a check run is rare:
 * once per verification), evaluate, and append their results.
 */
#include "verify/runner.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"
#include "verify/contract.h"
#include "verify/netpol.h"
#include "verify/probe.h"
#include "verify/rbac.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The membrane checks' rows (API.md, "Membrane checks"); the contract checks' rows are contract.c's. */
static const struct {
    const char *name;
    const char *trigger;
} membrane_rows[] = {
    {"membrane-networkpolicy", "MembraneBreach"},
    {"membrane-rbac", "MembraneBreach"},
    {"membrane-probe", "MembraneBreach"},
};

const char *verify_check_trigger(const char *name)
{
    for (size_t i = 0; name && i < sizeof(membrane_rows) / sizeof(*membrane_rows); i++)
        if (strcmp(membrane_rows[i].name, name) == 0)
            return membrane_rows[i].trigger;
    return contract_check_trigger(name);
}

size_t verify_checks_requested(const char **out, size_t max, const cJSON *release)
{
    const cJSON *checks = json_get(release, "spec", "verification", "checks", NULL);
    const cJSON *membrane = json_get(release, "spec", "membrane", NULL);
    const cJSON *c;
    size_t n = 0;
    if (cJSON_IsArray(checks)) {
        cJSON_ArrayForEach(c, checks)
            if (cJSON_IsString(c) && n < max)
                out[n++] = c->valuestring;
    } else {
        /* API.md's default also lists published-only, and slo runs with verification.slo: neither is
         * implemented by the runner yet, so they are not requested here (a request would always fail) */
        for (size_t i = 0; i < CONTRACT_N_CHECKS && n < max; i++)
            out[n++] = contract_check_names[i];
    }
    if (cJSON_IsObject(membrane)) {
        for (size_t i = 0; i < 2 && n < max; i++)
            out[n++] = membrane_rows[i].name;
        if (json_get(membrane, "probe", NULL) && n < max)
            out[n++] = membrane_rows[2].name;
    }
    return n;
}

static cJSON *result(const char *name, bool passed, long long ms, const char *trigger, const char *message)
{
    cJSON *r = cJSON_CreateObject();
    if (!r || !cJSON_AddStringToObject(r, "name", name) || !cJSON_AddBoolToObject(r, "passed", passed) ||
        !cJSON_AddNumberToObject(r, "latencyMs", (double)ms) || (!passed && !cJSON_AddStringToObject(r, "trigger", trigger)) ||
        !cJSON_AddStringToObject(r, "message", message)) {
        cJSON_Delete(r);
        return NULL;
    }
    return r;
}

static long long elapsed_ms(int64_t t0)
{
    return (long long)mb_elapsed_ms(t0);
}

/* Every contract check failed for one reason (the run could not be made as asked). */
static int contract_all_failed(cJSON *results, const cJSON *release, const char *why)
{
    const cJSON *checks = json_get(release, "spec", "verification", "checks", NULL);
    const cJSON *c;
    char msg[CONTRACT_MESSAGE_MAX];
    snprintf(msg, sizeof(msg), "%s", why);
    if (cJSON_IsArray(checks)) {
        cJSON_ArrayForEach(c, checks) {
            cJSON *r = cJSON_IsString(c) ? result(c->valuestring, false, 0, contract_check_trigger(c->valuestring), msg) : NULL;
            if (r)
                cJSON_AddItemToArray(results, r);
        }
    } else {
        for (size_t i = 0; i < CONTRACT_N_CHECKS; i++) {
            cJSON *r = result(contract_check_names[i], false, 0, contract_check_trigger(contract_check_names[i]), msg);
            if (r)
                cJSON_AddItemToArray(results, r);
        }
    }
    return 0;
}

static int run_contract(cJSON *results, kube_client *client, const cJSON *release, const char *release_id, time_t now)
{
    contract_input in;
    char *base = NULL, *token = NULL;
    cJSON *out = NULL, *r;
    char why[CONTRACT_MESSAGE_MAX];
    int err;

    contract_input_from_release(&in, release);
    if ((err = contract_base_url(&base, release)) < 0) {
        snprintf(why, sizeof(why), "the checks cannot run: %s", mb_error_last());
        return contract_all_failed(results, release, why);
    }
    if ((err = contract_token_read(&token, client, release)) < 0) {
        snprintf(why, sizeof(why), "the bearer token cannot be read, so the authorized checks cannot run: %s", mb_error_last());
        free(base);
        return contract_all_failed(results, release, why);
    }
    in.base_url = base;
    in.token = token;
    in.release_id = release_id;
    in.now = now;
    err = contract_checks_run(&out, &in);
    contract_token_free(token);
    free(base);
    if (err == MB_EINVAL) {
        snprintf(why, sizeof(why), "the checks cannot run: %s", mb_error_last());
        return contract_all_failed(results, release, why);
    }
    if (err < 0)
        return err;
    while ((r = cJSON_DetachItemFromArray(out, 0)) != NULL)
        cJSON_AddItemToArray(results, r);
    cJSON_Delete(out);
    return 0;
}

static int run_networkpolicy(cJSON *results, kube_client *client, const cJSON *release)
{
    cJSON *namespaces = NULL, *policies = NULL, *pods = NULL, *r = NULL;
    netpol_world *world = NULL;
    netpol_result res = {0};
    int64_t t0 = mb_monotonic_ns();
    char msg[CONTRACT_MESSAGE_MAX];
    int err = 0;

    if ((err = kube_list(&namespaces, client, &KUBE_NAMESPACES, NULL, NULL)) < 0 ||
        (err = kube_list(&policies, client, &KUBE_NETWORKPOLICIES, NULL, NULL)) < 0 ||
        (err = kube_list(&pods, client, &KUBE_PODS, NULL, NULL)) < 0) {
        snprintf(msg, sizeof(msg), "the NetworkPolicies, Pods and Namespaces cannot be read, so the membrane cannot be shown intact: %s", mb_error_last());
        r = result("membrane-networkpolicy", false, elapsed_ms(t0), "MembraneBreach", msg);
        err = 0;
        goto done;
    }
    if (netpol_world_new(&world, cJSON_GetObjectItem(namespaces, "items"), cJSON_GetObjectItem(policies, "items")) < 0 ||
        netpol_membrane_check(&res, world, json_get(release, "spec", "membrane", NULL),
                              json_str(release, "metadata", "namespace", NULL), cJSON_GetObjectItem(pods, "items")) < 0) {
        snprintf(msg, sizeof(msg), "the NetworkPolicies cannot be evaluated, so the membrane cannot be shown intact: %s", mb_error_last());
        r = result("membrane-networkpolicy", false, elapsed_ms(t0), "MembraneBreach", msg);
        goto done;
    }
    snprintf(msg, sizeof(msg), "%s", res.message ? res.message : "");
    r = result("membrane-networkpolicy", res.passed, elapsed_ms(t0), "MembraneBreach", msg);
done:
    netpol_result_dispose(&res);
    netpol_world_free(world);
    cJSON_Delete(namespaces);
    cJSON_Delete(policies);
    cJSON_Delete(pods);
    if (!r)
        return mb_error_set(MB_ENOMEM, "out of memory");
    cJSON_AddItemToArray(results, r);
    return err;
}

/*
 * membrane-rbac, about the identity the API really has: the target
 * Deployment must run as spec.membrane.apiServiceAccount, or the reviews
 * would judge another account.
 */
static int run_rbac(cJSON *results, kube_client *client, const cJSON *release, const char *ns, const char *sa)
{
    cJSON *deployment = NULL, *r = NULL;
    const char *name = json_str(release, "spec", "target", "deployment", NULL);
    char msg[CONTRACT_MESSAGE_MAX];
    int64_t t0 = mb_monotonic_ns();
    int err = 0;

    if (!sa || !*sa) {
        r = result("membrane-rbac", false, 0, "MembraneBreach",
                   "spec.membrane.apiServiceAccount is empty, so there is no ServiceAccount to review; name the one the "
                   "API runs as");
    } else if (!name || kube_get(&deployment, client, &KUBE_DEPLOYMENTS, ns, name) < 0) {
        snprintf(msg, sizeof(msg), "Deployment %s/%s cannot be read, so which ServiceAccount the API runs as cannot be "
                 "seen: %s", ns ? ns : "", name ? name : "", name ? mb_error_last() : "spec.target.deployment is empty");
        r = result("membrane-rbac", false, elapsed_ms(t0), "MembraneBreach", msg);
    } else if (!rbac_identity_matches(msg, sizeof(msg), deployment, sa)) {
        r = result("membrane-rbac", false, elapsed_ms(t0), "MembraneBreach", msg);
    } else if ((err = rbac_membrane_check(&r, client, ns, sa)) < 0) {
        goto done;
    }
    if (!r) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    cJSON_AddItemToArray(results, r);
done:
    cJSON_Delete(deployment);
    return err;
}

int verify_release(cJSON **out, kube_client *client, const cJSON *release, const char *release_id, time_t now)
{
    cJSON *results = cJSON_CreateArray();
    const cJSON *membrane = json_get(release, "spec", "membrane", NULL);
    int err = 0;

    *out = NULL;
    if (!results)
        return mb_error_set(MB_ENOMEM, "out of memory");
    if ((err = run_contract(results, client, release, release_id, now)) < 0)
        goto done;
    if (membrane) {
        const char *ns = json_str(release, "metadata", "namespace", NULL);
        const char *sa = json_str(membrane, "apiServiceAccount", NULL);
        cJSON *r = NULL;
        if ((err = run_networkpolicy(results, client, release)) < 0)
            goto done;
        if ((err = run_rbac(results, client, release, ns, sa)) < 0)
            goto done;
        if (json_get(membrane, "probe", NULL)) {
            if ((err = probe_membrane_check(&r, client, release, release_id)) < 0)
                goto done;
            cJSON_AddItemToArray(results, r);
        }
    }
    *out = results;
    results = NULL;
done:
    cJSON_Delete(results);
    return err;
}

/*
 * One SubjectAccessReview per forbidden action, as the ServiceAccount itself
 * (its user name and its groups), so RoleBindings to the ServiceAccount or
 * to system:serviceaccounts both count. Every action must be denied.
 */
#include "verify/rbac.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *verb, *resource, *subresource;
    bool other_namespace; /* in a namespace other than the ServiceAccount's; else in its own */
    bool cluster_wide;    /* namespace "" : every namespace */
    const char *what;     /* for the message */
} forbidden_action;

static const forbidden_action actions[] = {
    {"get", "secrets", NULL, false, true, "get Secrets in every namespace"},
    {"list", "secrets", NULL, false, true, "list Secrets in every namespace"},
    {"get", "secrets", NULL, true, false, "get Secrets in namespace %s"},
    {"list", "secrets", NULL, true, false, "list Secrets in namespace %s"},
    {"create", "pods", "exec", false, false, "create pods/exec in its namespace %s"},
};

/* A namespace that is not the ServiceAccount's, to ask about. */
static const char *other_namespace(const char *ns)
{
    return strcmp(ns, "kube-system") == 0 ? "default" : "kube-system";
}

static int review(bool *allowed, char *reason, size_t len, kube_client *c, const char *ns, const char *sa,
                  const forbidden_action *a)
{
    char user[600], g2[600];
    cJSON *body = NULL, *res = NULL;
    int err = 0;
    const char *target_ns = a->cluster_wide ? "" : a->other_namespace ? other_namespace(ns) : ns;

    snprintf(user, sizeof(user), "system:serviceaccount:%s:%s", ns, sa);
    snprintf(g2, sizeof(g2), "system:serviceaccounts:%s", ns);
    body = cJSON_CreateObject();
    cJSON *spec = json_ensure_object(body, "spec", NULL);
    cJSON *ra = json_ensure_object(spec, "resourceAttributes", NULL);
    cJSON *groups = cJSON_AddArrayToObject(spec, "groups");
    if (!ra || !groups || json_set_str(body, "apiVersion", "authorization.k8s.io/v1") < 0 ||
        json_set_str(body, "kind", "SubjectAccessReview") < 0 || json_set_str(spec, "user", user) < 0 ||
        json_set_str(ra, "namespace", target_ns) < 0 || json_set_str(ra, "verb", a->verb) < 0 ||
        json_set_str(ra, "resource", a->resource) < 0 ||
        (a->subresource && json_set_str(ra, "subresource", a->subresource) < 0)) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    cJSON_AddItemToArray(groups, cJSON_CreateString("system:serviceaccounts"));
    cJSON_AddItemToArray(groups, cJSON_CreateString(g2));
    cJSON_AddItemToArray(groups, cJSON_CreateString("system:authenticated"));
    if ((err = kube_create(&res, c, &KUBE_SUBJECTACCESSREVIEWS, NULL, body)) < 0)
        goto done;
    *allowed = json_bool(false, res, "status", "allowed", NULL);
    snprintf(reason, len, "%s", json_str(res, "status", "reason", NULL) ? json_str(res, "status", "reason", NULL) : "");
done:
    cJSON_Delete(body);
    cJSON_Delete(res);
    return err;
}

int rbac_membrane_check(cJSON **out, kube_client *client, const char *ns, const char *sa)
{
    cJSON *r = cJSON_CreateObject();
    char msg[1024] = "";
    struct timespec t0, t1;
    bool passed = true;
    int err = 0;

    *out = NULL;
    if (!r)
        return mb_error_set(MB_ENOMEM, "out of memory");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < sizeof(actions) / sizeof(*actions) && passed; i++) {
        bool allowed = false;
        char reason[512] = "", what[300];
        snprintf(what, sizeof(what), actions[i].what,
                 actions[i].other_namespace ? other_namespace(ns) : ns);
        if (review(&allowed, reason, sizeof(reason), client, ns, sa, &actions[i]) < 0) {
            snprintf(msg, sizeof(msg), "could not ask whether ServiceAccount %s/%s can %s: %s; the membrane cannot be shown intact",
                     ns, sa, what, mb_error_last());
            passed = false;
        } else if (allowed) {
            snprintf(msg, sizeof(msg), "ServiceAccount %s/%s can %s%s%s; remove that grant so the governed API stays least-privileged",
                     ns, sa, what, reason[0] ? " (" : "", reason[0] ? reason : "");
            if (reason[0])
                strncat(msg, ")", sizeof(msg) - strlen(msg) - 1);
            passed = false;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (passed)
        snprintf(msg, sizeof(msg), "ServiceAccount %s/%s cannot read Secrets outside its namespace nor exec into pods", ns, sa);
    long long ms = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000LL;
    if (!cJSON_AddStringToObject(r, "name", "membrane-rbac") || !cJSON_AddBoolToObject(r, "passed", passed) ||
        !cJSON_AddNumberToObject(r, "latencyMs", (double)ms) || !cJSON_AddStringToObject(r, "message", msg) ||
        (!passed && !cJSON_AddStringToObject(r, "trigger", "MembraneBreach"))) {
        cJSON_Delete(r);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    *out = r;
    return err;
}

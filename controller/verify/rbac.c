/*
 * The membrane-rbac reviews. Every forbidden action is asked of the apiserver
 * as the ServiceAccount itself (its user name and its groups, so bindings to
 * the ServiceAccount, to system:serviceaccounts[:<ns>] or to
 * system:authenticated all count): once cluster-wide (a SubjectAccessReview,
 * which ClusterRoleBindings answer) and once in every existing namespace (a
 * LocalSubjectAccessReview, which that namespace's RoleBindings answer too),
 * since a RoleBinding in any one namespace is enough to breach the membrane.
 * Secrets are asked about in every namespace but the ServiceAccount's own;
 * everything else in every namespace. The few actions whose authorization the
 * apiserver only ever asks cluster-wide (impersonating users and groups,
 * escalating ClusterRoles) are asked cluster-wide only. The reviews run on a
 * small bounded pool of threads over the synchronous client (the calling
 * thread is one of them); every review must be made and must deny. A review
 * asks without a resource name, so it does not see a rule restricted by
 * resourceNames; the RoleBindings and ClusterRoleBindings naming the
 * ServiceAccount are therefore read too, and every rule of the roles they
 * bind is matched against the same forbidden actions, resourceNames or not.
 */
#include "verify/rbac.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/json.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* At most this many reviews are in flight at once. */
#define RBAC_INFLIGHT 8

typedef struct {
    const char *verb, *group, *resource, *subresource;
    bool own_namespace; /* asked in the ServiceAccount's own namespace too */
    bool cluster_only;  /* the apiserver authorizes it cluster-wide only */
} forbidden_action;

static const forbidden_action actions[] = {
    {"get", "", "secrets", NULL, false, false},
    {"list", "", "secrets", NULL, false, false},
    {"watch", "", "secrets", NULL, false, false},
    {"create", "", "pods", "exec", true, false},
    {"create", "", "pods", "attach", true, false},
    {"create", "", "pods", "portforward", true, false},
    {"create", "", "serviceaccounts", "token", true, false},
    {"impersonate", "", "users", NULL, true, true},
    {"impersonate", "", "groups", NULL, true, true},
    {"impersonate", "", "serviceaccounts", NULL, true, false},
    {"escalate", "rbac.authorization.k8s.io", "roles", NULL, true, false},
    {"bind", "rbac.authorization.k8s.io", "roles", NULL, true, false},
    {"escalate", "rbac.authorization.k8s.io", "clusterroles", NULL, true, true},
    /* a RoleBinding to a ClusterRole is authorized as bind on clusterroles in its namespace */
    {"bind", "rbac.authorization.k8s.io", "clusterroles", NULL, true, false},
};

#define N_ACTIONS (sizeof(actions) / sizeof(*actions))

/* One review: what is asked, and what came back. */
typedef struct {
    const forbidden_action *a;
    const char *ns; /* NULL: cluster-wide; borrowed from the namespace list */
    int err;        /* < 0: the review could not be made */
    bool allowed;
    char *detail; /* the authorizer's reason, or why the review could not be made; owned, may be NULL */
} rbac_review;

typedef struct {
    kube_client *client;
    const char *user, *group; /* system:serviceaccount:<ns>:<sa>, system:serviceaccounts:<ns> */
    rbac_review *reviews;
    size_t n;
    atomic_size_t next;
} rbac_pool;

/* "pods/exec", "roles.rbac.authorization.k8s.io" */
static void rbac_resource_format(char *buf, size_t len, const forbidden_action *a)
{
    snprintf(buf, len, "%s%s%s%s%s", a->resource, a->subresource ? "/" : "", a->subresource ? a->subresource : "",
             a->group[0] ? "." : "", a->group);
}

static cJSON *rbac_review_body(const rbac_pool *p, const rbac_review *rv)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *spec = json_ensure_object(body, "spec", NULL);
    cJSON *ra = json_ensure_object(spec, "resourceAttributes", NULL);
    cJSON *groups = spec ? cJSON_AddArrayToObject(spec, "groups") : NULL;
    const forbidden_action *a = rv->a;

    if (!body || !ra || !groups || json_set_str(body, "apiVersion", "authorization.k8s.io/v1") < 0 ||
        json_set_str(body, "kind", rv->ns ? "LocalSubjectAccessReview" : "SubjectAccessReview") < 0 ||
        (rv->ns && json_set_str(json_ensure_object(body, "metadata", NULL), "namespace", rv->ns) < 0) ||
        json_set_str(spec, "user", p->user) < 0 || json_set_str(ra, "namespace", rv->ns ? rv->ns : "") < 0 ||
        json_set_str(ra, "verb", a->verb) < 0 || json_set_str(ra, "group", a->group) < 0 ||
        json_set_str(ra, "resource", a->resource) < 0 ||
        (a->subresource && json_set_str(ra, "subresource", a->subresource) < 0) ||
        !cJSON_AddItemToArray(groups, cJSON_CreateString("system:serviceaccounts")) ||
        !cJSON_AddItemToArray(groups, cJSON_CreateString(p->group)) ||
        !cJSON_AddItemToArray(groups, cJSON_CreateString("system:authenticated"))) {
        cJSON_Delete(body);
        return NULL;
    }
    return body;
}

/* Makes one review and records its outcome in rv; the message of a failure is kept in rv->detail. */
static void rbac_review_make(rbac_pool *p, rbac_review *rv)
{
    cJSON *body = rbac_review_body(p, rv), *res = NULL;
    const cJSON *allowed;
    const char *reason, *eval;
    int err = 0;

    if (!body) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    if ((err = kube_create(&res, p->client, rv->ns ? &KUBE_LOCALSUBJECTACCESSREVIEWS : &KUBE_SUBJECTACCESSREVIEWS,
                           rv->ns, body)) < 0)
        goto done;
    allowed = json_get(res, "status", "allowed", NULL);
    if (!cJSON_IsBool(allowed)) {
        err = mb_error_set(MB_EJSON, "the answer carries no status.allowed");
        goto done;
    }
    eval = json_str(res, "status", "evaluationError", NULL);
    if (!cJSON_IsTrue(allowed) && eval && *eval) {
        err = mb_error_set(MB_ERROR, "the authorizer could not evaluate it: %s", eval);
        goto done;
    }
    rv->allowed = cJSON_IsTrue(allowed);
    reason = json_str(res, "status", "reason", NULL);
    if (rv->allowed && reason && *reason && !(rv->detail = strdup(reason)))
        err = mb_error_set(MB_ENOMEM, "out of memory");
done:
    if (err < 0) {
        rv->err = err;
        rv->detail = strdup(mb_error_last()); /* NULL when out of memory: the message then says so */
    }
    cJSON_Delete(body);
    cJSON_Delete(res);
}

static void *rbac_pool_work(void *arg)
{
    rbac_pool *p = arg;
    size_t i;
    while ((i = atomic_fetch_add(&p->next, 1)) < p->n)
        rbac_review_make(p, &p->reviews[i]);
    return NULL;
}

/* Runs every review, at most RBAC_INFLIGHT at once; a thread that cannot be started leaves its share to the rest. */
static void rbac_pool_run(rbac_pool *p)
{
    pthread_t threads[RBAC_INFLIGHT - 1];
    size_t started = 0;

    for (size_t i = 0; i < RBAC_INFLIGHT - 1 && i + 1 < p->n; i++) {
        if (pthread_create(&threads[started], NULL, rbac_pool_work, p) != 0)
            break;
        started++;
    }
    rbac_pool_work(p);
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
}

static int rbac_namespace_cmp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/*
 * The reviews to make, in the order breaches are reported: cluster-wide ones
 * first, then namespace by namespace (sorted), each in the actions' order.
 */
static int rbac_reviews_plan(rbac_review **out, size_t *n_out, const char **names, size_t n_names, const char *own)
{
    rbac_review *r = calloc(N_ACTIONS * (n_names + 1), sizeof(*r));
    size_t n = 0;

    *out = NULL;
    *n_out = 0;
    if (!r)
        return mb_error_set(MB_ENOMEM, "out of memory");
    for (size_t i = 0; i < N_ACTIONS; i++)
        r[n++] = (rbac_review){.a = &actions[i]};
    for (size_t k = 0; k < n_names; k++) {
        for (size_t i = 0; i < N_ACTIONS; i++) {
            if (actions[i].cluster_only || (!actions[i].own_namespace && strcmp(names[k], own) == 0))
                continue;
            r[n++] = (rbac_review){.a = &actions[i], .ns = names[k]};
        }
    }
    *out = r;
    *n_out = n;
    return 0;
}

/*
 * The names of every namespace, sorted (borrowed from list); fails when the
 * list cannot be read or does not hold the ServiceAccount's own namespace
 * (then it cannot be the whole list).
 */
static int rbac_namespaces_names(const char ***out, size_t *n_out, const cJSON *list, const char *own)
{
    const cJSON *items = cJSON_GetObjectItem(list, "items"), *it;
    const char **names = NULL;
    size_t n = 0;
    bool has_own = false;

    *out = NULL;
    *n_out = 0;
    if (!cJSON_IsArray(items))
        return mb_error_set(MB_EJSON, "the namespace list has no items");
    if (!(names = calloc((size_t)cJSON_GetArraySize(items) + 1, sizeof(*names))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    cJSON_ArrayForEach(it, items) {
        const char *name = json_str(it, "metadata", "name", NULL);
        if (!name || !*name) {
            free(names);
            return mb_error_set(MB_EJSON, "a listed namespace has no metadata.name");
        }
        has_own = has_own || strcmp(name, own) == 0;
        names[n++] = name;
    }
    if (!has_own) {
        free(names);
        return mb_error_set(MB_ENOTFOUND,
                            "the namespace list does not hold the ServiceAccount's namespace %s, so it is not the "
                            "whole list",
                            own);
    }
    qsort(names, n, sizeof(*names), rbac_namespace_cmp);
    *out = names;
    *n_out = n;
    return 0;
}

/* "in namespace x" or "in every namespace (cluster-wide)" */
static void rbac_where_format(char *buf, size_t len, const rbac_review *rv)
{
    if (rv->ns)
        snprintf(buf, len, "in namespace %s", rv->ns);
    else if (rv->a->cluster_only)
        snprintf(buf, len, "cluster-wide");
    else
        snprintf(buf, len, "in every namespace (cluster-wide)");
}

/* The check's verdict from the finished reviews: the first breach, else the first review not made, else a pass. */
static bool rbac_verdict(char *msg, size_t len, const rbac_review *r, size_t n, const char *ns, const char *sa,
                         size_t n_namespaces)
{
    const rbac_review *breach = NULL, *unasked = NULL;
    size_t n_breach = 0, n_unasked = 0;
    char res[128], where[320], more[160] = "";

    for (size_t i = 0; i < n; i++) {
        if (r[i].err < 0) {
            unasked = unasked ? unasked : &r[i];
            n_unasked++;
        } else if (r[i].allowed) {
            breach = breach ? breach : &r[i];
            n_breach++;
        }
    }
    if (breach) {
        rbac_resource_format(res, sizeof(res), breach->a);
        rbac_where_format(where, sizeof(where), breach);
        if (n_breach > 1 && n_unasked > 0)
            snprintf(more, sizeof(more), " (and %zu more allowed action(s); %zu review(s) could not be made)",
                     n_breach - 1, n_unasked);
        else if (n_breach > 1)
            snprintf(more, sizeof(more), " (and %zu more allowed action(s))", n_breach - 1);
        else if (n_unasked > 0)
            snprintf(more, sizeof(more), " (and %zu review(s) could not be made)", n_unasked);
        snprintf(msg, len,
                 "ServiceAccount %s/%s can %s %s %s%s%s%s%s; remove that grant so the governed API stays "
                 "least-privileged",
                 ns, sa, breach->a->verb, res, where, breach->detail ? " (" : "", breach->detail ? breach->detail : "",
                 breach->detail ? ")" : "", more);
        return false;
    }
    if (unasked) {
        rbac_resource_format(res, sizeof(res), unasked->a);
        rbac_where_format(where, sizeof(where), unasked);
        if (n_unasked > 1)
            snprintf(more, sizeof(more), " (and %zu more review(s) could not be made)", n_unasked - 1);
        snprintf(msg, len,
                 "could not ask whether ServiceAccount %s/%s can %s %s %s: %s%s; the membrane cannot be shown "
                 "intact: let the operator create subjectaccessreviews and localsubjectaccessreviews "
                 "(authorization.k8s.io)",
                 ns, sa, unasked->a->verb, res, where, unasked->detail ? unasked->detail : "out of memory", more);
        return false;
    }
    snprintf(msg, len,
             "ServiceAccount %s/%s cannot read Secrets outside its namespace (cluster-wide and in each of the "
             "%zu other namespaces), nor create pods/exec, pods/attach, pods/portforward or serviceaccounts/token, "
             "impersonate users, groups or serviceaccounts, nor escalate or bind roles or clusterroles (%zu reviews)",
             ns, sa, n_namespaces ? n_namespaces - 1 : 0, n);
    return true;
}

/* ---- the rules bound to the ServiceAccount ------------------------------- */

static bool rbac_list_has(const cJSON *list, const char *want)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, list)
        if (cJSON_IsString(v) && (strcmp(v->valuestring, "*") == 0 || strcmp(v->valuestring, want) == 0))
            return true;
    return false;
}

/* A rule's resources cover a's resource (and subresource): "*", "r", "r/s", "r/<any>" or "<any>/s". */
static bool rbac_rule_resource(const cJSON *resources, const forbidden_action *a)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, resources) {
        const char *r = cJSON_IsString(v) ? v->valuestring : NULL;
        const char *slash = r ? strchr(r, '/') : NULL;
        if (!r)
            continue;
        if (strcmp(r, "*") == 0)
            return true;
        if (!a->subresource) {
            if (!slash && strcmp(r, a->resource) == 0)
                return true;
            continue;
        }
        if (!slash)
            continue;
        size_t n = (size_t)(slash - r);
        bool res_ok = (n == 1 && r[0] == '*') || (n == strlen(a->resource) && strncmp(r, a->resource, n) == 0);
        bool sub_ok = strcmp(slash + 1, "*") == 0 || strcmp(slash + 1, a->subresource) == 0;
        if (res_ok && sub_ok)
            return true;
    }
    return false;
}

/* The binding names the ServiceAccount: by kind ServiceAccount, as its user, or through one of its groups. */
static bool rbac_binding_subject(const cJSON *binding, const char *ns, const char *sa)
{
    const cJSON *s;
    const char *bns = json_str(binding, "metadata", "namespace", NULL);
    char user[600], group[600];
    snprintf(user, sizeof(user), "system:serviceaccount:%s:%s", ns, sa);
    snprintf(group, sizeof(group), "system:serviceaccounts:%s", ns);
    cJSON_ArrayForEach(s, json_get(binding, "subjects", NULL)) {
        const char *kind = json_str(s, "kind", NULL), *name = json_str(s, "name", NULL);
        const char *sns = json_str(s, "namespace", NULL);
        if (!kind || !name)
            continue;
        if (strcmp(kind, "ServiceAccount") == 0 && strcmp(name, sa) == 0 &&
            strcmp(sns && *sns ? sns
                   : bns       ? bns
                               : "",
                   ns) == 0)
            return true;
        if (strcmp(kind, "User") == 0 && strcmp(name, user) == 0)
            return true;
        if (strcmp(kind, "Group") == 0 && (strcmp(name, "system:serviceaccounts") == 0 || strcmp(name, group) == 0 ||
                                           strcmp(name, "system:authenticated") == 0))
            return true;
    }
    return false;
}

/* The role a binding refers to, from roles (in the binding's namespace) or clusterroles; NULL when it does not exist. */
static const cJSON *rbac_binding_role(const cJSON *binding, const cJSON *roles, const cJSON *clusterroles)
{
    const char *kind = json_str(binding, "roleRef", "kind", NULL), *name = json_str(binding, "roleRef", "name", NULL);
    const char *bns = json_str(binding, "metadata", "namespace", NULL);
    bool cluster = kind && strcmp(kind, "ClusterRole") == 0;
    const cJSON *r;
    if (!kind || !name || (!cluster && (strcmp(kind, "Role") != 0 || !bns)))
        return NULL;
    cJSON_ArrayForEach(r, json_get(cluster ? clusterroles : roles, "items", NULL)) {
        const char *rn = json_str(r, "metadata", "name", NULL), *rns = json_str(r, "metadata", "namespace", NULL);
        if (rn && strcmp(rn, name) == 0 && (cluster || (rns && strcmp(rns, bns) == 0)))
            return r;
    }
    return NULL;
}

/* "[a, b]" of a rule's resourceNames, or "" without them. */
static void rbac_names_format(char *buf, size_t len, const cJSON *names)
{
    const cJSON *v;
    size_t used = 0;
    buf[0] = '\0';
    if (cJSON_GetArraySize(names) == 0)
        return;
    used += (size_t)snprintf(buf, len, ", restricted to resourceNames [");
    cJSON_ArrayForEach(v, names) {
        if (used >= len)
            break;
        used += (size_t)snprintf(buf + used, len - used, "%s%s", v == names->child ? "" : ", ",
                                 cJSON_IsString(v) ? v->valuestring : "?");
    }
    if (used < len)
        snprintf(buf + used, len - used, "], which reviews without a name do not see");
}

/*
 * The first rule of the role a binding grants that allows a forbidden action
 * where the binding reaches (bns: the RoleBinding's namespace; NULL: a
 * ClusterRoleBinding, every namespace): into msg, true.
 */
static bool rbac_binding_breach(char *msg, size_t size, const cJSON *binding, const cJSON *role, const char *bns,
                                const char *ns, const char *sa)
{
    const cJSON *rule;
    cJSON_ArrayForEach(rule, json_get(role, "rules", NULL)) {
        if (json_get(rule, "nonResourceURLs", NULL) && !json_get(rule, "resources", NULL))
            continue;
        for (size_t i = 0; i < N_ACTIONS; i++) {
            const forbidden_action *a = &actions[i];
            /* cluster-only actions are never authorized in a namespace; Secrets are fine in the SA's own */
            if (bns && (a->cluster_only || (!a->own_namespace && strcmp(bns, ns) == 0)))
                continue;
            if (!rbac_list_has(json_get(rule, "verbs", NULL), a->verb) ||
                !rbac_list_has(json_get(rule, "apiGroups", NULL), a->group) ||
                !rbac_rule_resource(json_get(rule, "resources", NULL), a))
                continue;
            char res[128], names[400], where[320];
            rbac_resource_format(res, sizeof(res), a);
            rbac_names_format(names, sizeof(names), json_get(rule, "resourceNames", NULL));
            if (bns)
                snprintf(where, sizeof(where), "in namespace %s", bns);
            else
                snprintf(where, sizeof(where), "%s", a->cluster_only ? "cluster-wide" : "in every namespace");
            snprintf(msg, size,
                     "ServiceAccount %s/%s can %s %s %s: %s %s%s%s bound by %s %s%s%s%s; remove that grant so the "
                     "governed API stays least-privileged",
                     ns, sa, a->verb, res, where, json_str(binding, "roleRef", "kind", NULL),
                     bns && strcmp(json_str(binding, "roleRef", "kind", NULL), "Role") == 0 ? bns : "",
                     bns && strcmp(json_str(binding, "roleRef", "kind", NULL), "Role") == 0 ? "/" : "",
                     json_str(role, "metadata", "name", NULL), bns ? "RoleBinding" : "ClusterRoleBinding",
                     bns ? bns : "", bns ? "/" : "", json_str(binding, "metadata", "name", NULL), names);
            return true;
        }
    }
    return false;
}

bool rbac_rules_breach(char *msg, size_t size, const cJSON *rolebindings, const cJSON *clusterrolebindings,
                       const cJSON *roles, const cJSON *clusterroles, const char *ns, const char *sa)
{
    const cJSON *b;
    for (int pass = 0; pass < 2; pass++) {
        cJSON_ArrayForEach(b, json_get(pass == 0 ? clusterrolebindings : rolebindings, "items", NULL)) {
            const char *bns = pass == 0 ? NULL : json_str(b, "metadata", "namespace", NULL);
            const cJSON *role;
            if (pass == 1 && !bns)
                continue;
            if (!rbac_binding_subject(b, ns, sa) || !(role = rbac_binding_role(b, roles, clusterroles)))
                continue;
            if (rbac_binding_breach(msg, size, b, role, bns, ns, sa))
                return true;
        }
    }
    return false;
}

/*
 * Reads the four RBAC lists and judges them (rbac_rules_breach): true when
 * the rules show no breach; false with the breach, or with what could not be
 * read, in msg (fail closed).
 */
static bool rbac_rules_check(char *msg, size_t len, kube_client *client, const char *ns, const char *sa)
{
    cJSON *lists[4] = {NULL, NULL, NULL, NULL};
    const kube_resource *kinds[4] = {&KUBE_ROLEBINDINGS, &KUBE_CLUSTERROLEBINDINGS, &KUBE_ROLES, &KUBE_CLUSTERROLES};
    bool ok = false;
    for (int i = 0; i < 4; i++) {
        if (kube_list(&lists[i], client, kinds[i], NULL, NULL) < 0 ||
            !cJSON_IsArray(cJSON_GetObjectItem(lists[i], "items"))) {
            snprintf(msg, len,
                     "the %s cannot be listed, so grants to ServiceAccount %s/%s restricted by resourceNames (which "
                     "reviews without a name do not see) cannot be ruled out: %s; let the operator list roles, "
                     "rolebindings, clusterroles and clusterrolebindings (rbac.authorization.k8s.io)",
                     kinds[i]->resource, ns, sa, lists[i] ? "the answer has no items" : mb_error_last());
            goto done;
        }
    }
    ok = !rbac_rules_breach(msg, len, lists[0], lists[1], lists[2], lists[3], ns, sa);
done:
    for (int i = 0; i < 4; i++)
        cJSON_Delete(lists[i]);
    return ok;
}

int rbac_membrane_check(cJSON **out, kube_client *client, const char *ns, const char *sa)
{
    cJSON *r = cJSON_CreateObject(), *list = NULL;
    const char **names = NULL;
    size_t n_names = 0;
    char msg[1024] = "", user[600], group[600];
    int64_t t0 = 0;
    rbac_pool pool = {.client = client, .user = user, .group = group};
    bool passed = false;
    int err = 0;

    *out = NULL;
    if (!r)
        return mb_error_set(MB_ENOMEM, "out of memory");
    t0 = mb_monotonic_ns();
    snprintf(user, sizeof(user), "system:serviceaccount:%s:%s", ns, sa);
    snprintf(group, sizeof(group), "system:serviceaccounts:%s", ns);
    if (kube_list(&list, client, &KUBE_NAMESPACES, NULL, NULL) < 0 ||
        rbac_namespaces_names(&names, &n_names, list, ns) < 0) {
        snprintf(msg, sizeof(msg),
                 "the namespaces cannot be listed, so whether ServiceAccount %s/%s can read Secrets or "
                 "exec in any of them cannot be asked: %s; let the operator list namespaces",
                 ns, sa, mb_error_last());
    } else if ((err = rbac_reviews_plan(&pool.reviews, &pool.n, names, n_names, ns)) < 0) {
        goto done;
    } else {
        atomic_init(&pool.next, 0);
        rbac_pool_run(&pool);
        passed = rbac_verdict(msg, sizeof(msg), pool.reviews, pool.n, ns, sa, n_names);
        /* what the reviews cannot see: grants restricted by resourceNames */
        char rules_msg[1024];
        if (passed && !rbac_rules_check(rules_msg, sizeof(rules_msg), client, ns, sa)) {
            passed = false;
            snprintf(msg, sizeof(msg), "%s", rules_msg);
        }
    }
    long long ms = (long long)mb_elapsed_ms(t0);
    if (!cJSON_AddStringToObject(r, "name", "membrane-rbac") || !cJSON_AddBoolToObject(r, "passed", passed) ||
        !cJSON_AddNumberToObject(r, "latencyMs", (double)ms) || !cJSON_AddStringToObject(r, "message", msg) ||
        (!passed && !cJSON_AddStringToObject(r, "trigger", "MembraneBreach"))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    *out = r;
    r = NULL;
done:
    for (size_t i = 0; i < pool.n; i++)
        free(pool.reviews[i].detail);
    free(pool.reviews);
    free(names);
    cJSON_Delete(list);
    cJSON_Delete(r);
    return err;
}

bool rbac_identity_matches(char *msg, size_t size, const cJSON *deployment, const char *sa)
{
    const char *ns = json_str(deployment, "metadata", "namespace", NULL);
    const char *name = json_str(deployment, "metadata", "name", NULL);
    const char *runs_as = json_str(deployment, "spec", "template", "spec", "serviceAccountName", NULL);

    if (!runs_as || !*runs_as)
        runs_as = json_str(deployment, "spec", "template", "spec", "serviceAccount", NULL);
    if (!runs_as || !*runs_as)
        runs_as = "default";
    if (!deployment || !ns || !name) {
        snprintf(msg, size,
                 "the target Deployment cannot be read, so which ServiceAccount the API runs as cannot be "
                 "seen and spec.membrane.apiServiceAccount %s cannot be shown to be it",
                 sa ? sa : "");
        return false;
    }
    if (!sa || strcmp(runs_as, sa) != 0) {
        snprintf(msg, size,
                 "Deployment %s/%s runs as ServiceAccount %s, not spec.membrane.apiServiceAccount %s, so the "
                 "reviews would judge an identity the API does not have; set apiServiceAccount to %s or run the API as "
                 "%s",
                 ns, name, runs_as, sa ? sa : "", runs_as, sa ? sa : "");
        return false;
    }
    return true;
}

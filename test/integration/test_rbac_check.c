/*
 * membrane-rbac against the real apiserver's RBAC: a ServiceAccount with no
 * grants passes; one bound to a ClusterRole that reads Secrets everywhere, or
 * to a Role in any one namespace out of many that reads Secrets there, or
 * allows pods/exec, serviceaccounts/token, impersonation or escalating roles,
 * fails naming the verb, the resource and the namespace; so does a Role
 * restricted by resourceNames, which a review without a name does not see;
 * an operator that cannot list the namespaces or ask in them fails the check
 * too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kube_itest.h"
#include "util/error.h"
#include "util/json.h"
#include "verify/rbac.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_OTHER 6

typedef struct {
    kube_client *c;
    char *home;           /* the ServiceAccounts' namespace */
    char *other[N_OTHER]; /* namespaces a grant may hide in */
} rbac_fixture;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int setup(void **state)
{
    rbac_fixture *f = NULL;
    kube_client *c = itest_client();
    *state = NULL;
    if (!c)
        return 0;
    f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->c = c;
    f->home = itest_namespace_new(c, "rbac");
    for (int i = 0; i < N_OTHER; i++)
        f->other[i] = itest_namespace_new(c, "rbac-other");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    rbac_fixture *f = *state;
    if (!f)
        return 0;
    sh("kubectl delete clusterrolebinding,clusterrole -l membrane.test/rbac=%s --ignore-not-found >/dev/null", f->home);
    for (int i = 0; i < N_OTHER; i++)
        itest_namespace_delete(f->c, f->other[i]);
    itest_namespace_delete(f->c, f->home);
    kube_client_free(f->c);
    free(f);
    return 0;
}

static rbac_fixture *need(void **state)
{
    if (!*state)
        skip();
    return *state;
}

/* A fresh ServiceAccount in the home namespace. */
static void sa_new(rbac_fixture *f, const char *sa)
{
    assert_int_equal(sh("kubectl -n %s create serviceaccount %s >/dev/null", f->home, sa), 0);
}

/* A Role in ns allowing verbs on resource, bound to the ServiceAccount home/sa. */
static void role_grant(rbac_fixture *f, const char *ns, const char *sa, const char *verbs, const char *resource)
{
    assert_int_equal(sh("kubectl -n %s create role %s --verb=%s --resource=%s >/dev/null && "
                        "kubectl -n %s create rolebinding %s --role=%s --serviceaccount=%s:%s >/dev/null",
                        ns, sa, verbs, resource, ns, sa, sa, f->home, sa),
                     0);
}

/* A ClusterRole allowing verbs on resource, bound cluster-wide to home/sa; labelled for the teardown. */
static void cluster_grant(rbac_fixture *f, const char *sa, const char *verbs, const char *resource)
{
    assert_int_equal(sh("kubectl create clusterrole %s-%s --verb=%s --resource=%s >/dev/null && "
                        "kubectl create clusterrolebinding %s-%s --clusterrole=%s-%s --serviceaccount=%s:%s >/dev/null "
                        "&& "
                        "kubectl label clusterrole,clusterrolebinding %s-%s membrane.test/rbac=%s >/dev/null",
                        f->home, sa, verbs, resource, f->home, sa, f->home, sa, f->home, sa, f->home, sa, f->home),
                     0);
}

static void assert_result(rbac_fixture *f, const char *sa, bool passed, const char *needle)
{
    cJSON *r = NULL;
    /* RBAC changes reach the authorizer's cache within moments */
    for (int i = 0; i < 50; i++) {
        cJSON_Delete(r);
        r = NULL;
        assert_int_equal(rbac_membrane_check(&r, f->c, f->home, sa), 0);
        if (json_bool(!passed, r, "passed", NULL) == passed)
            break;
        itest_sleep_ms(100);
    }
    assert_string_equal(json_str(r, "name", NULL), "membrane-rbac");
    print_message("%s: %s\n", sa, json_str(r, "message", NULL));
    if (json_bool(!passed, r, "passed", NULL) != passed)
        fail_msg("passed is %s, not %s: %s", passed ? "false" : "true", passed ? "true" : "false",
                 json_str(r, "message", NULL));
    if (!strstr(json_str(r, "message", NULL), needle))
        fail_msg("message \"%s\" lacks \"%s\"", json_str(r, "message", NULL), needle);
    if (!passed)
        assert_string_equal(json_str(r, "trigger", NULL), "MembraneBreach");
    else
        assert_null(json_get(r, "trigger", NULL));
    cJSON_Delete(r);
}

static void test_clean(void **state)
{
    rbac_fixture *f = need(state);
    sa_new(f, "kfm-api");
    /* Secrets in its own namespace are its own business */
    role_grant(f, f->home, "kfm-api", "get,list,watch", "secrets");
    assert_result(f, "kfm-api", true, "cannot read Secrets outside its namespace");
}

static void test_secrets_everywhere(void **state)
{
    rbac_fixture *f = need(state);
    sa_new(f, "reads-all");
    cluster_grant(f, "reads-all", "get,list", "secrets");
    assert_result(f, "reads-all", false, "can get secrets in every namespace (cluster-wide)");
}

static void test_secrets_in_one_namespace(void **state)
{
    rbac_fixture *f = need(state);
    char needle[256];
    sa_new(f, "reads-one");
    role_grant(f, f->other[3], "reads-one", "get", "secrets");
    snprintf(needle, sizeof(needle), "can get secrets in namespace %s", f->other[3]);
    assert_result(f, "reads-one", false, needle);
}

static void test_watch_secrets(void **state)
{
    rbac_fixture *f = need(state);
    char needle[256];
    sa_new(f, "watches");
    role_grant(f, f->other[5], "watches", "watch", "secrets");
    snprintf(needle, sizeof(needle), "can watch secrets in namespace %s", f->other[5]);
    assert_result(f, "watches", false, needle);
}

static void test_exec_in_another_namespace(void **state)
{
    rbac_fixture *f = need(state);
    char needle[256];
    sa_new(f, "execs");
    role_grant(f, f->other[1], "execs", "create", "pods/exec");
    snprintf(needle, sizeof(needle), "can create pods/exec in namespace %s", f->other[1]);
    assert_result(f, "execs", false, needle);
}

static void test_exec_in_its_own_namespace(void **state)
{
    rbac_fixture *f = need(state);
    char needle[256];
    sa_new(f, "execs-home");
    role_grant(f, f->home, "execs-home", "create", "pods/exec");
    snprintf(needle, sizeof(needle), "can create pods/exec in namespace %s", f->home);
    assert_result(f, "execs-home", false, needle);
}

static void test_token(void **state)
{
    rbac_fixture *f = need(state);
    char needle[256];
    sa_new(f, "mints");
    role_grant(f, f->other[2], "mints", "create", "serviceaccounts/token");
    snprintf(needle, sizeof(needle), "can create serviceaccounts/token in namespace %s", f->other[2]);
    assert_result(f, "mints", false, needle);
}

static void test_impersonate(void **state)
{
    rbac_fixture *f = need(state);
    char needle[256];
    sa_new(f, "poses");
    cluster_grant(f, "poses", "impersonate", "users");
    assert_result(f, "poses", false, "can impersonate users cluster-wide");
    sa_new(f, "poses-sa");
    role_grant(f, f->other[4], "poses-sa", "impersonate", "serviceaccounts");
    snprintf(needle, sizeof(needle), "can impersonate serviceaccounts in namespace %s", f->other[4]);
    assert_result(f, "poses-sa", false, needle);
}

static void test_escalate(void **state)
{
    rbac_fixture *f = need(state);
    char needle[256];
    sa_new(f, "escalates");
    role_grant(f, f->other[0], "escalates", "escalate", "roles.rbac.authorization.k8s.io");
    snprintf(needle, sizeof(needle), "can escalate roles.rbac.authorization.k8s.io in namespace %s", f->other[0]);
    assert_result(f, "escalates", false, needle);
    sa_new(f, "binds");
    cluster_grant(f, "binds", "bind", "clusterroles.rbac.authorization.k8s.io");
    assert_result(f, "binds", false,
                  "can bind clusterroles.rbac.authorization.k8s.io in every namespace (cluster-wide)");
}

/* A client that authenticates as ServiceAccount home/sa, as the operator does in the cluster. */
static kube_client *client_as(rbac_fixture *f, const char *sa)
{
    char path[512];
    kube_config *cfg = NULL;
    kube_client *c = NULL;
    kube_client_opts o = {.max_retries = -1};
    snprintf(path, sizeof(path), "/tmp/membrane-rbac-%s-%s.kubeconfig", f->home, sa);
    assert_int_equal(sh("bash %s/hack/cluster.sh sa-kubeconfig %s %s %s", SOURCE_DIR, f->home, sa, path), 0);
    if (kube_config_load(&cfg, path, NULL) < 0 || kube_client_new(&c, cfg, &o) < 0)
        fail_msg("a client for %s: %s", path, mb_error_last());
    unlink(path);
    return c;
}

/* A grant restricted by resourceNames: a review without a name answers no; the rules bound to the account say yes. */
static void test_named_secret(void **state)
{
    rbac_fixture *f = need(state);
    char needle[512];
    sa_new(f, "reads-named");
    assert_int_equal(sh("kubectl -n %s create role reads-named --verb=get --resource=secrets "
                        "--resource-name=db-password >/dev/null && kubectl -n %s create rolebinding reads-named "
                        "--role=reads-named --serviceaccount=%s:reads-named >/dev/null",
                        f->other[2], f->other[2], f->home),
                     0);
    snprintf(needle, sizeof(needle),
             "can get secrets in namespace %s: Role %s/reads-named bound by RoleBinding %s/reads-named, restricted to "
             "resourceNames [db-password]",
             f->other[2], f->other[2], f->other[2]);
    assert_result(f, "reads-named", false, needle);
}

/* An operator that cannot list the namespaces, or cannot ask in them, cannot show the membrane intact. */
static void test_cannot_ask(void **state)
{
    rbac_fixture *f = need(state);
    cJSON *r = NULL;
    sa_new(f, "clean");
    sa_new(f, "operator");
    cluster_grant(f, "operator", "create", "subjectaccessreviews.authorization.k8s.io");
    kube_client *op = client_as(f, "operator");
    for (int i = 0; i < 50; i++) { /* until the grant is seen: the cluster-wide reviews are made */
        cJSON_Delete(r);
        assert_int_equal(rbac_membrane_check(&r, op, f->home, "clean"), 0);
        if (strstr(json_str(r, "message", NULL), "namespaces cannot be listed"))
            break;
        itest_sleep_ms(100);
    }
    assert_false(json_bool(true, r, "passed", NULL));
    assert_string_equal(json_str(r, "trigger", NULL), "MembraneBreach");
    if (!strstr(json_str(r, "message", NULL), "the namespaces cannot be listed, so whether ServiceAccount"))
        fail_msg("message \"%s\" does not say the namespaces cannot be listed", json_str(r, "message", NULL));
    cJSON_Delete(r);
    r = NULL;

    /* namespaces listed, but no LocalSubjectAccessReview may be created */
    assert_int_equal(sh("kubectl create clusterrole %s-operator-ns --verb=list --resource=namespaces >/dev/null && "
                        "kubectl create clusterrolebinding %s-operator-ns --clusterrole=%s-operator-ns "
                        "--serviceaccount=%s:operator >/dev/null && kubectl label clusterrole,clusterrolebinding "
                        "%s-operator-ns membrane.test/rbac=%s >/dev/null",
                        f->home, f->home, f->home, f->home, f->home, f->home),
                     0);
    for (int i = 0; i < 50; i++) {
        cJSON_Delete(r);
        assert_int_equal(rbac_membrane_check(&r, op, f->home, "clean"), 0);
        if (strstr(json_str(r, "message", NULL), "could not ask"))
            break;
        itest_sleep_ms(100);
    }
    assert_false(json_bool(true, r, "passed", NULL));
    assert_string_equal(json_str(r, "trigger", NULL), "MembraneBreach");
    const char *msg = json_str(r, "message", NULL);
    print_message("%s\n", msg);
    if (!strstr(msg, "could not ask whether ServiceAccount") || !strstr(msg, "can get secrets in namespace ") ||
        !strstr(msg, "localsubjectaccessreviews"))
        fail_msg("message \"%s\" does not name the review that could not be made", msg);
    cJSON_Delete(r);
    kube_client_free(op);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean),
        cmocka_unit_test(test_secrets_everywhere),
        cmocka_unit_test(test_secrets_in_one_namespace),
        cmocka_unit_test(test_watch_secrets),
        cmocka_unit_test(test_exec_in_another_namespace),
        cmocka_unit_test(test_exec_in_its_own_namespace),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_impersonate),
        cmocka_unit_test(test_escalate),
        cmocka_unit_test(test_named_secret),
        cmocka_unit_test(test_cannot_ask),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

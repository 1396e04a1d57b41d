/*
 * membrane-rbac against the real apiserver's RBAC: a ServiceAccount with no
 * grants passes; one bound to a ClusterRole that reads Secrets everywhere, or
 * to a Role allowing pods/exec, fails naming what it can do.
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

static int sh(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void assert_result(kube_client *c, const char *ns, bool passed, const char *needle)
{
    cJSON *r = NULL;
    /* RBAC changes reach the authorizer's cache within moments */
    for (int i = 0; i < 50; i++) {
        cJSON_Delete(r);
        r = NULL;
        assert_int_equal(rbac_membrane_check(&r, c, ns, "kfm-api"), 0);
        if (json_bool(!passed, r, "passed", NULL) == passed)
            break;
        itest_sleep_ms(100);
    }
    assert_string_equal(json_str(r, "name", NULL), "membrane-rbac");
    assert_int_equal(json_bool(!passed, r, "passed", NULL), passed);
    if (!strstr(json_str(r, "message", NULL), needle))
        fail_msg("message \"%s\" lacks \"%s\"", json_str(r, "message", NULL), needle);
    if (!passed)
        assert_string_equal(json_str(r, "trigger", NULL), "MembraneBreach");
    else
        assert_null(json_get(r, "trigger", NULL));
    cJSON_Delete(r);
}

static void test_rbac_membrane(void **state)
{
    (void)state;
    kube_client *c = itest_client();
    if (!c)
        skip();
    char *ns = itest_namespace_new(c, "rbac");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "kubectl -n %s create serviceaccount kfm-api >/dev/null", ns);
    assert_int_equal(sh(cmd), 0);
    assert_result(c, ns, true, "cannot read Secrets outside its namespace");

    snprintf(cmd, sizeof(cmd), "kubectl create clusterrolebinding %s-secrets --clusterrole=view-secrets-%s "
             "--serviceaccount=%s:kfm-api >/dev/null && kubectl create clusterrole view-secrets-%s "
             "--verb=get,list --resource=secrets >/dev/null", ns, ns, ns, ns);
    assert_int_equal(sh(cmd), 0);
    assert_result(c, ns, false, "can get Secrets in every namespace");
    snprintf(cmd, sizeof(cmd), "kubectl delete clusterrolebinding %s-secrets >/dev/null && kubectl delete clusterrole view-secrets-%s >/dev/null", ns, ns);
    assert_int_equal(sh(cmd), 0);
    assert_result(c, ns, true, "cannot");

    snprintf(cmd, sizeof(cmd), "kubectl -n %s create role exec --verb=create --resource=pods/exec >/dev/null && "
             "kubectl -n %s create rolebinding exec --role=exec --serviceaccount=%s:kfm-api >/dev/null", ns, ns, ns);
    assert_int_equal(sh(cmd), 0);
    assert_result(c, ns, false, "can create pods/exec");

    itest_namespace_delete(c, ns);
    kube_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rbac_membrane),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

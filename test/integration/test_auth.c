/*
 * Authentication against the real kube-apiserver of the local control plane:
 * the admin client certificate, a ServiceAccount bearer token (authenticated,
 * then authorized only once RBAC allows it), and a CA that did not sign the
 * server's certificate (a clear TLS error, nothing sent).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kube/client.h"
#include "kube/config.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/membrane-auth-XXXXXX";

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static kube_client *client_for(const char *kubeconfig)
{
    kube_config *cfg = NULL;
    kube_client *c = NULL;
    if (kube_config_load(&cfg, kubeconfig, NULL) < 0)
        fail_msg("loading %s: %s", kubeconfig ? kubeconfig : "$KUBECONFIG", mb_error_last());
    kube_client_opts o = {.max_retries = -1};
    if (kube_client_new(&c, cfg, &o) < 0)
        fail_msg("client: %s", mb_error_last());
    return c;
}

static int setup(void **state)
{
    (void)state;
    if (!getenv("KUBECONFIG") || !getenv("MEMBRANE_CLUSTER_DIR"))
        return 0;
    if (!mkdtemp(tmpdir))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (getenv("KUBECONFIG")) {
        sh("kubectl delete namespace auth-test --wait=false >/dev/null 2>&1");
        sh("rm -rf %s", tmpdir);
    }
    return 0;
}

static void test_client_certificate(void **state)
{
    (void)state;
    if (!getenv("KUBECONFIG"))
        skip();
    kube_client *c = client_for(NULL);
    cJSON *ns = NULL;
    assert_int_equal(kube_get(&ns, c, &KUBE_NAMESPACES, NULL, "default"), 0);
    assert_string_equal(json_str(ns, "metadata", "name", NULL), "default");
    cJSON_Delete(ns);
    kube_client_free(c);
}

static void test_bearer_token(void **state)
{
    (void)state;
    if (!getenv("KUBECONFIG"))
        skip();
    char path[512];
    snprintf(path, sizeof(path), "%s/sa.kubeconfig", tmpdir);
    assert_int_equal(sh("kubectl create namespace auth-test >/dev/null && "
                        "kubectl create serviceaccount reader -n auth-test >/dev/null && "
                        "bash %s/hack/cluster.sh sa-kubeconfig auth-test reader %s",
                        SOURCE_DIR, path),
                     0);

    kube_client *c = client_for(path);
    cJSON *list = NULL;
    /* Authenticated as the ServiceAccount, but RBAC grants it nothing yet. */
    assert_int_equal(kube_list(&list, c, &KUBE_CONFIGMAPS, "auth-test", NULL), MB_EFORBIDDEN);
    assert_int_equal(kube_status_last()->code, 403);
    assert_string_equal(kube_status_last()->reason, "Forbidden");
    assert_non_null(strstr(kube_status_last()->message, "system:serviceaccount:auth-test:reader"));

    assert_int_equal(sh("kubectl create role cm-reader -n auth-test --verb=get,list --resource=configmaps >/dev/null "
                        "&& "
                        "kubectl create rolebinding reader -n auth-test --role=cm-reader "
                        "--serviceaccount=auth-test:reader >/dev/null"),
                     0);
    /* RBAC changes reach the authorizer's cache within moments. */
    int err = MB_EFORBIDDEN;
    for (int i = 0; i < 50 && err == MB_EFORBIDDEN; i++) {
        err = kube_list(&list, c, &KUBE_CONFIGMAPS, "auth-test", NULL);
        if (err == MB_EFORBIDDEN)
            usleep(100 * 1000);
    }
    assert_int_equal(err, 0);
    /* the namespace's root CA ConfigMap is published into every namespace */
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(list, "items")));
    cJSON_Delete(list);
    kube_client_free(c);
}

static void test_wrong_ca(void **state)
{
    (void)state;
    if (!getenv("KUBECONFIG"))
        skip();
    char path[512];
    snprintf(path, sizeof(path), "%s/wrong-ca.kubeconfig", tmpdir);
    assert_int_equal(sh("cd %s && openssl ecparam -name prime256v1 -genkey -noout -out other.key 2>/dev/null && "
                        "openssl req -x509 -new -key other.key -subj /CN=other-ca -days 1 -out other.crt 2>/dev/null "
                        "&& "
                        "sed \"s|certificate-authority: .*|certificate-authority: %s/other.crt|\" \"$KUBECONFIG\" > %s",
                        tmpdir, tmpdir, path),
                     0);
    kube_client *c = client_for(path);
    cJSON *ns = NULL;
    assert_int_equal(kube_get(&ns, c, &KUBE_NAMESPACES, NULL, "default"), MB_ETLS);
    assert_null(ns);
    if (!strstr(mb_error_last(), "certificate-authority"))
        fail_msg("the TLS error does not point at the certificate-authority: %s", mb_error_last());
    kube_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_certificate),
        cmocka_unit_test(test_bearer_token),
        cmocka_unit_test(test_wrong_ca),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

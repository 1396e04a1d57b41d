/*
 * membrane-rbac's identity check: the reviews are asked about
 * spec.membrane.apiServiceAccount only when the target Deployment really runs
 * as it (serviceAccountName, the deprecated serviceAccount, or "default"); a
 * Deployment that cannot be read, or runs as another account, fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "verify/rbac.h"

#include <string.h>

static bool identity(char *msg, size_t size, const char *deployment, const char *sa)
{
    cJSON *d = deployment ? cJSON_Parse(deployment) : NULL;
    bool ok;
    if (deployment && !d)
        fail_msg("test JSON does not parse: %s", deployment);
    msg[0] = '\0';
    ok = rbac_identity_matches(msg, size, d, sa);
    cJSON_Delete(d);
    return ok;
}

static void assert_contains(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("\"%s\" does not contain \"%s\"", text, needle);
}

#define DEPLOYMENT(spec)                                                                                               \
    "{\"metadata\":{\"namespace\":\"kfm\",\"name\":\"kfm-api\"},\"spec\":{\"template\":{\"spec\":" spec "}}}"

static void test_runs_as_the_named_account(void **state)
{
    char msg[1024];
    (void)state;
    assert_true(identity(msg, sizeof(msg), DEPLOYMENT("{\"serviceAccountName\":\"kfm-api\"}"), "kfm-api"));
    assert_true(identity(msg, sizeof(msg), DEPLOYMENT("{\"serviceAccount\":\"kfm-api\"}"), "kfm-api"));
    assert_true(identity(msg, sizeof(msg), DEPLOYMENT("{\"containers\":[]}"), "default"));
}

static void test_runs_as_another_account(void **state)
{
    char msg[1024];
    (void)state;
    assert_false(identity(msg, sizeof(msg), DEPLOYMENT("{\"serviceAccountName\":\"kfm-api-admin\"}"), "kfm-api"));
    assert_contains(msg, "Deployment kfm/kfm-api runs as ServiceAccount kfm-api-admin, not "
                         "spec.membrane.apiServiceAccount kfm-api");
    assert_contains(msg, "set apiServiceAccount to kfm-api-admin");
    /* no serviceAccountName: the pods run as "default", whatever the spec names */
    assert_false(identity(msg, sizeof(msg), DEPLOYMENT("{\"containers\":[]}"), "kfm-api"));
    assert_contains(msg, "runs as ServiceAccount default");
    assert_false(identity(msg, sizeof(msg), DEPLOYMENT("{\"serviceAccountName\":\"kfm-api\"}"), NULL));
}

static void test_unreadable_deployment_fails(void **state)
{
    char msg[1024];
    (void)state;
    assert_false(identity(msg, sizeof(msg), NULL, "kfm-api"));
    assert_contains(msg, "cannot be read");
    assert_false(identity(msg, sizeof(msg), "{\"spec\":{}}", "kfm-api"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_as_the_named_account),
        cmocka_unit_test(test_runs_as_another_account),
        cmocka_unit_test(test_unreadable_deployment_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

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

#include <stdio.h>
#include <stdlib.h>
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

/* ---- the rules bound to the ServiceAccount (resourceNames) --------------- */

static cJSON *items(const char *json)
{
    char *s = NULL;
    assert_true(asprintf(&s, "{\"items\":[%s]}", json) >= 0);
    cJSON *j = cJSON_Parse(s);
    if (!j)
        fail_msg("test JSON does not parse: %s", s);
    free(s);
    return j;
}

/* rules_breach with one binding (rb: a RoleBinding in bns, else a ClusterRoleBinding) of subject to a role of rules. */
static bool rules_breach(char *msg, size_t size, bool rb, const char *bns, const char *subject, const char *role_kind,
                         const char *rules)
{
    char binding[1024], role[1024];
    snprintf(binding, sizeof(binding),
             "{\"metadata\":{\"name\":\"b\"%s%s%s},\"subjects\":[%s],\"roleRef\":{\"kind\":\"%s\",\"name\":\"r\"}}",
             rb ? ",\"namespace\":\"" : "", rb ? bns : "", rb ? "\"" : "", subject, role_kind);
    snprintf(role, sizeof(role), "{\"kind\":\"%s\",\"metadata\":{\"name\":\"r\"%s%s%s},\"rules\":[%s]}", role_kind,
             strcmp(role_kind, "Role") == 0 ? ",\"namespace\":\"" : "", strcmp(role_kind, "Role") == 0 ? bns : "",
             strcmp(role_kind, "Role") == 0 ? "\"" : "", rules);
    bool cluster_role = strcmp(role_kind, "ClusterRole") == 0;
    cJSON *rbs = items(rb ? binding : ""), *crbs = items(rb ? "" : binding);
    cJSON *roles = items(cluster_role ? "" : role), *croles = items(cluster_role ? role : "");
    msg[0] = '\0';
    bool breach = rbac_rules_breach(msg, size, rbs, crbs, roles, croles, "kfm", "kfm-api");
    cJSON_Delete(rbs);
    cJSON_Delete(crbs);
    cJSON_Delete(roles);
    cJSON_Delete(croles);
    return breach;
}

#define SA_SUBJECT "{\"kind\":\"ServiceAccount\",\"name\":\"kfm-api\",\"namespace\":\"kfm\"}"
#define GET_NAMED_SECRET                                                                                               \
    "{\"apiGroups\":[\"\"],\"resources\":[\"secrets\"],\"verbs\":[\"get\"],\"resourceNames\":[\"db-password\"]}"

/* A get on one named Secret in another namespace: invisible to a review without a name, a breach all the same. */
static void test_named_secret_in_another_namespace(void **state)
{
    (void)state;
    char msg[1024];
    assert_true(rules_breach(msg, sizeof(msg), true, "kfm-db", SA_SUBJECT, "Role", GET_NAMED_SECRET));
    assert_contains(msg, "ServiceAccount kfm/kfm-api can get secrets in namespace kfm-db");
    assert_contains(msg, "Role kfm-db/r bound by RoleBinding kfm-db/b");
    assert_contains(msg, "restricted to resourceNames [db-password]");
    /* in its own namespace a Secret is its own business */
    assert_false(rules_breach(msg, sizeof(msg), true, "kfm", SA_SUBJECT, "Role", GET_NAMED_SECRET));
    /* bound cluster-wide: every namespace */
    assert_true(rules_breach(msg, sizeof(msg), false, NULL, SA_SUBJECT, "ClusterRole", GET_NAMED_SECRET));
    assert_contains(msg, "can get secrets in every namespace");
    assert_contains(msg, "ClusterRoleBinding b");
}

/* Named pods/exec, wildcards, and the groups and user name the ServiceAccount authenticates with. */
static void test_named_grants_and_subjects(void **state)
{
    (void)state;
    char msg[1024];
    const char *exec = "{\"apiGroups\":[\"\"],\"resources\":[\"pods/exec\"],\"verbs\":[\"create\"],"
                       "\"resourceNames\":[\"db-0\"]}";
    assert_true(rules_breach(msg, sizeof(msg), true, "kfm", SA_SUBJECT, "Role", exec));
    assert_contains(msg, "can create pods/exec in namespace kfm");
    assert_true(rules_breach(msg, sizeof(msg), true, "kfm-db", SA_SUBJECT, "ClusterRole",
                             "{\"apiGroups\":[\"*\"],\"resources\":[\"pods/*\"],\"verbs\":[\"*\"],"
                             "\"resourceNames\":[\"db-0\"]}"));
    assert_contains(msg, "ClusterRole r bound by RoleBinding kfm-db/b");
    const char *subjects[] = {
        "{\"kind\":\"User\",\"name\":\"system:serviceaccount:kfm:kfm-api\"}",
        "{\"kind\":\"Group\",\"name\":\"system:serviceaccounts:kfm\"}",
        "{\"kind\":\"Group\",\"name\":\"system:serviceaccounts\"}",
        "{\"kind\":\"Group\",\"name\":\"system:authenticated\"}",
    };
    for (size_t i = 0; i < sizeof(subjects) / sizeof(*subjects); i++)
        assert_true(rules_breach(msg, sizeof(msg), true, "kfm-db", subjects[i], "Role", GET_NAMED_SECRET));
    /* someone else, another namespace's account of the same name, a harmless rule, a missing role: no breach */
    assert_false(rules_breach(msg, sizeof(msg), true, "kfm-db",
                              "{\"kind\":\"ServiceAccount\",\"name\":\"other\",\"namespace\":\"kfm\"}", "Role",
                              GET_NAMED_SECRET));
    assert_false(rules_breach(msg, sizeof(msg), true, "kfm-db",
                              "{\"kind\":\"ServiceAccount\",\"name\":\"kfm-api\",\"namespace\":\"x\"}", "Role",
                              GET_NAMED_SECRET));
    assert_false(rules_breach(msg, sizeof(msg), true, "kfm-db", SA_SUBJECT, "Role",
                              "{\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],\"verbs\":[\"get\"],"
                              "\"resourceNames\":[\"c\"]}"));
    cJSON *rbs = items("{\"metadata\":{\"name\":\"b\",\"namespace\":\"kfm-db\"},\"subjects\":[" SA_SUBJECT "],"
                       "\"roleRef\":{\"kind\":\"Role\",\"name\":\"gone\"}}");
    cJSON *none = items("");
    assert_false(rbac_rules_breach(msg, sizeof(msg), rbs, none, none, none, "kfm", "kfm-api"));
    cJSON_Delete(rbs);
    cJSON_Delete(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_as_the_named_account),   cmocka_unit_test(test_runs_as_another_account),
        cmocka_unit_test(test_unreadable_deployment_fails), cmocka_unit_test(test_named_secret_in_another_namespace),
        cmocka_unit_test(test_named_grants_and_subjects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

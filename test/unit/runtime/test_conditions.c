/*
 * metav1.Condition handling on status objects: lastTransitionTime only moving
 * with the status, the changed flag, validation leaving status untouched,
 * and the kstatus helpers leaving exactly the conditions API.md requires.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "runtime/conditions.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2026-11-22T10:00:00Z and a few minutes later. */
#define T1 ((time_t)20779 * 86400 + 10 * 3600)
#define T1_S "2026-11-22T10:00:00Z"
#define T2 (T1 + 60)
#define T2_S "2026-11-22T10:01:00Z"
#define T3 (T1 + 120)
#define T3_S "2026-11-22T10:02:00Z"
#define T4 (T1 + 180)
#define T4_S "2026-11-22T10:03:00Z"

static cJSON *parse(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    assert_non_null(j);
    return j;
}

static const char *field(const cJSON *status, const char *type, const char *name)
{
    const char *v = json_str(conditions_get(status, type), name, NULL);
    if (!v)
        fail_msg("condition %s has no string %s", type, name);
    return v;
}

static long long cond_generation(const cJSON *status, const char *type)
{
    return json_int(-1, conditions_get(status, type), "observedGeneration", NULL);
}

/*
 * Asserts status.conditions holds exactly the listed "Type=Status" pairs, in
 * order (e.g. "Ready=True Verified=True").
 */
static void expect_conditions(const cJSON *status, const char *want)
{
    char got[512] = "";
    const cJSON *c = NULL;
    cJSON_ArrayForEach(c, json_get(status, "conditions", NULL)) {
        char one[128];
        snprintf(one, sizeof(one), "%s%s=%s", got[0] ? " " : "", json_str(c, "type", NULL),
                 json_str(c, "status", NULL));
        strncat(got, one, sizeof(got) - strlen(got) - 1);
    }
    assert_string_equal(got, want);
}

/* kstatus' reading of an object: Ready=True excludes Reconciling=True and Stalled=True. */
static void expect_kstatus_consistent(const cJSON *status)
{
    if (conditions_is_true(status, COND_READY)) {
        assert_false(conditions_is_true(status, COND_RECONCILING));
        assert_false(conditions_is_true(status, COND_STALLED));
    }
    if (conditions_is_true(status, COND_STALLED))
        assert_false(conditions_is_true(status, COND_RECONCILING));
    /* "absent or False": membrane writes them absent. */
    const char *r = json_str(conditions_get(status, COND_RECONCILING), "status", NULL);
    const char *s = json_str(conditions_get(status, COND_STALLED), "status", NULL);
    assert_true(!r || !strcmp(r, COND_TRUE));
    assert_true(!s || !strcmp(s, COND_TRUE));
}

static void test_set_creates_list_with_all_fields(void **state)
{
    (void)state;
    cJSON *st = parse("{\"phase\":\"Pending\"}");
    bool changed = false;
    condition c = {"Verified", COND_UNKNOWN, "ChecksPending", "Checks have not run yet.", 3};

    assert_int_equal(conditions_set(&changed, st, &c, T1), 0);
    assert_true(changed);
    cJSON *expect = parse("{\"phase\":\"Pending\",\"conditions\":[{\"type\":\"Verified\",\"status\":\"Unknown\","
                          "\"observedGeneration\":3,\"lastTransitionTime\":\"" T1_S "\","
                          "\"reason\":\"ChecksPending\",\"message\":\"Checks have not run yet.\"}]}");
    assert_true(cJSON_Compare(st, expect, true));
    cJSON_Delete(expect);

    /* NULL message writes "", and the out flag is optional. */
    condition d = {"RolledOut", COND_FALSE, "NotStarted", NULL, 3};
    assert_int_equal(conditions_set(NULL, st, &d, T1), 0);
    assert_string_equal(field(st, "RolledOut", "message"), "");
    expect_conditions(st, "Verified=Unknown RolledOut=False");
    cJSON_Delete(st);
}

static void test_transition_time_moves_only_with_status(void **state)
{
    (void)state;
    cJSON *st = parse("{}");
    bool changed = false;
    condition c = {COND_READY, COND_FALSE, "GatesPending", "Waiting for gates.", 1};

    assert_int_equal(conditions_set(&changed, st, &c, T1), 0);
    assert_true(changed);
    assert_string_equal(field(st, COND_READY, "lastTransitionTime"), T1_S);

    /* Same status, new reason, message and generation: written, time kept. */
    condition c2 = {COND_READY, COND_FALSE, "SmokeFailure", "GET /readyz returned 500; fix the API.", 2};
    assert_int_equal(conditions_set(&changed, st, &c2, T2), 0);
    assert_true(changed);
    assert_string_equal(field(st, COND_READY, "lastTransitionTime"), T1_S);
    assert_string_equal(field(st, COND_READY, "reason"), "SmokeFailure");
    assert_string_equal(field(st, COND_READY, "message"), "GET /readyz returned 500; fix the API.");
    assert_int_equal(cond_generation(st, COND_READY), 2);

    /* Exactly the same again, later: nothing changed. */
    assert_int_equal(conditions_set(&changed, st, &c2, T3), 0);
    assert_false(changed);
    assert_string_equal(field(st, COND_READY, "lastTransitionTime"), T1_S);

    /* Only the generation differs: changed, time kept. */
    c2.observed_generation = 3;
    assert_int_equal(conditions_set(&changed, st, &c2, T3), 0);
    assert_true(changed);
    assert_string_equal(field(st, COND_READY, "lastTransitionTime"), T1_S);

    /* Status flips: the transition time moves. */
    condition c3 = {COND_READY, COND_TRUE, "Succeeded", "Rolled out and verified.", 3};
    assert_int_equal(conditions_set(&changed, st, &c3, T4), 0);
    assert_true(changed);
    assert_string_equal(field(st, COND_READY, "lastTransitionTime"), T4_S);
    assert_string_equal(field(st, COND_READY, "status"), COND_TRUE);
    expect_conditions(st, "Ready=True");
    cJSON_Delete(st);
}

static void test_unchanged_against_server_order(void **state)
{
    (void)state;
    /* As the API server returns it: other field order; an equal condition is no change. */
    cJSON *st = parse("{\"conditions\":[{\"lastTransitionTime\":\"2026-11-22T09:00:00Z\",\"message\":\"ok\","
                      "\"observedGeneration\":4,\"reason\":\"Succeeded\",\"status\":\"True\",\"type\":\"Ready\"}]}");
    bool changed = true;
    condition c = {COND_READY, COND_TRUE, "Succeeded", "ok", 4};
    assert_int_equal(conditions_set(&changed, st, &c, T1), 0);
    assert_false(changed);
    assert_string_equal(field(st, COND_READY, "lastTransitionTime"), "2026-11-22T09:00:00Z");
    cJSON_Delete(st);
}

static void test_bad_transition_time_is_replaced(void **state)
{
    (void)state;
    cJSON *st = parse("{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"Succeeded\","
                      "\"message\":\"ok\",\"observedGeneration\":4,\"lastTransitionTime\":\"yesterday\"}]}");
    bool changed = false;
    condition c = {COND_READY, COND_TRUE, "Succeeded", "ok", 4};
    assert_int_equal(conditions_set(&changed, st, &c, T1), 0);
    assert_true(changed);
    assert_string_equal(field(st, COND_READY, "lastTransitionTime"), T1_S);
    cJSON_Delete(st);
}

static void test_duplicates_collapse(void **state)
{
    (void)state;
    cJSON *st = parse("{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"A\",\"message\":\"\","
                      "\"observedGeneration\":1,\"lastTransitionTime\":\"" T1_S "\"},"
                      "{\"type\":\"Verified\",\"status\":\"True\",\"reason\":\"B\",\"message\":\"\","
                      "\"observedGeneration\":1,\"lastTransitionTime\":\"" T1_S "\"},"
                      "{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"C\",\"message\":\"\","
                      "\"observedGeneration\":1,\"lastTransitionTime\":\"" T1_S "\"}]}");
    bool changed = false;
    condition c = {COND_READY, COND_FALSE, "A", "", 1};
    assert_int_equal(conditions_set(&changed, st, &c, T2), 0);
    assert_true(changed); /* the first Ready was already equal; dropping the second is the change */
    expect_conditions(st, "Ready=False Verified=True");
    assert_string_equal(field(st, COND_READY, "lastTransitionTime"), T1_S);
    cJSON_Delete(st);
}

static void test_get_is_true_remove(void **state)
{
    (void)state;
    cJSON *st = parse("{}");
    condition a = {COND_READY, COND_TRUE, "Succeeded", "", 1};
    condition b = {"Verified", COND_FALSE, "SmokeFailure", "", 1};
    condition c = {"RolledBack", COND_TRUE, "Manual", "", 1};

    assert_null(conditions_get(st, COND_READY));
    assert_false(conditions_is_true(st, COND_READY));
    assert_false(conditions_remove(st, COND_READY));
    assert_int_equal(conditions_set(NULL, st, &a, T1), 0);
    assert_int_equal(conditions_set(NULL, st, &b, T1), 0);
    assert_int_equal(conditions_set(NULL, st, &c, T1), 0);
    assert_true(conditions_is_true(st, COND_READY));
    assert_false(conditions_is_true(st, "Verified"));
    assert_true(conditions_is_true(st, "RolledBack"));
    assert_false(conditions_is_true(st, "Published"));
    assert_string_equal(field(st, "Verified", "reason"), "SmokeFailure");
    assert_string_equal(conditions_true_reason(st, "RolledBack"), "Manual");
    assert_null(conditions_true_reason(st, "Verified")); /* False: no reason */
    assert_null(conditions_true_reason(st, "Published"));
    assert_null(conditions_true_reason(NULL, COND_READY));

    assert_true(conditions_remove(st, "Verified"));
    assert_false(conditions_remove(st, "Verified"));
    expect_conditions(st, "Ready=True RolledBack=True");
    assert_null(conditions_get(st, "Verified"));
    assert_null(conditions_get(NULL, COND_READY));
    cJSON_Delete(st);
}

static void test_invalid_input_leaves_status_alone(void **state)
{
    (void)state;
    static const condition bad[] = {
        {COND_READY, "true", "Succeeded", "", 1},     {COND_READY, COND_TRUE, "rolled back", "", 1},
        {COND_READY, COND_TRUE, "", "", 1},           {COND_READY, COND_TRUE, NULL, "", 1},
        {COND_READY, COND_TRUE, "Trailing:", "", 1},  {"", COND_TRUE, "Succeeded", "", 1},
        {"Has Space", COND_TRUE, "Succeeded", "", 1}, {NULL, COND_TRUE, "Succeeded", "", 1},
        {COND_READY, COND_TRUE, "Succeeded", "", -1},
    };
    cJSON *st = parse("{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"A\","
                      "\"message\":\"\",\"observedGeneration\":1,\"lastTransitionTime\":\"" T1_S "\"}]}");
    char *before = cJSON_PrintUnformatted(st);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool changed = true;
        if (conditions_set(&changed, st, &bad[i], T2) != MB_EINVAL)
            fail_msg("bad condition %zu accepted", i);
        assert_false(changed);
        char *after = cJSON_PrintUnformatted(st);
        assert_string_equal(after, before);
        free(after);
    }
    /* The kstatus helpers validate before writing anything. */
    bool changed = true;
    assert_int_equal(conditions_mark_ready(&changed, st, "not camel", "", 2, T2), MB_EINVAL);
    assert_false(changed);
    assert_non_null(strstr(mb_error_last(), "CamelCase"));
    char *after = cJSON_PrintUnformatted(st);
    assert_string_equal(after, before);
    free(after);
    free(before);
    cJSON_Delete(st);

    condition ok = {COND_READY, COND_TRUE, "Succeeded", "", 1};
    cJSON *arr = parse("[]");
    assert_int_equal(conditions_set(NULL, arr, &ok, T1), MB_EINVAL);
    cJSON *not_list = parse("{\"conditions\":{}}");
    assert_int_equal(conditions_set(NULL, not_list, &ok, T1), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "not a list"));
    assert_int_equal(conditions_set(NULL, NULL, &ok, T1), MB_EINVAL);
    cJSON_Delete(arr);
    cJSON_Delete(not_list);
}

static void test_kstatus_reconciling_stalled_ready(void **state)
{
    (void)state;
    cJSON *st = parse("{\"phase\":\"Pending\"}");
    bool changed = false;
    condition verified = {"Verified", COND_FALSE, "ChecksPending", "Checks have not run yet.", 1};

    /* First visit of generation 1: work starts. */
    assert_int_equal(conditions_mark_reconciling(&changed, st, "Progressing", "Rolling out.", 1, T1), 0);
    assert_true(changed);
    assert_int_equal(conditions_set(NULL, st, &verified, T1), 0);
    expect_conditions(st, "Ready=Unknown Reconciling=True Verified=False");
    assert_string_equal(field(st, COND_READY, "reason"), "Progressing");
    assert_int_equal(json_int(-1, st, "observedGeneration", NULL), 1);
    assert_int_equal(cond_generation(st, COND_READY), 1);
    assert_int_equal(cond_generation(st, COND_RECONCILING), 1);
    expect_kstatus_consistent(st);

    /* Still at work: nothing changes, times kept. */
    assert_int_equal(conditions_mark_reconciling(&changed, st, "Progressing", "Rolling out.", 1, T2), 0);
    assert_false(changed);
    assert_string_equal(field(st, COND_RECONCILING, "lastTransitionTime"), T1_S);

    /* Terminal failure: Stalled, Ready=False with the same reason, Reconciling gone. */
    assert_int_equal(conditions_mark_stalled(&changed, st, "RolledBack",
                                             "Verification failed and the release was rolled back; "
                                             "fix the image or revert in Git.",
                                             1, T2),
                     0);
    assert_true(changed);
    expect_conditions(st, "Ready=False Verified=False Stalled=True");
    assert_string_equal(field(st, COND_READY, "reason"), "RolledBack");
    assert_string_equal(field(st, COND_STALLED, "reason"), "RolledBack");
    assert_string_equal(field(st, COND_READY, "lastTransitionTime"), T2_S);
    assert_string_equal(field(st, COND_STALLED, "lastTransitionTime"), T2_S);
    assert_int_equal(cond_generation(st, COND_STALLED), 1);
    expect_kstatus_consistent(st);

    /* A new generation (a Git revert): work again, Stalled gone, observedGeneration follows. */
    assert_int_equal(conditions_mark_reconciling(&changed, st, "Progressing", "Rolling out.", 2, T3), 0);
    assert_true(changed);
    expect_conditions(st, "Ready=Unknown Verified=False Reconciling=True");
    assert_int_equal(json_int(-1, st, "observedGeneration", NULL), 2);
    assert_int_equal(cond_generation(st, COND_READY), 2);
    assert_string_equal(field(st, COND_READY, "lastTransitionTime"), T3_S);
    expect_kstatus_consistent(st);

    /* Success: Ready=True, Reconciling and Stalled absent, kind-specific conditions untouched. */
    verified = (condition){"Verified", COND_TRUE, "ChecksPassed", "All checks passed.", 2};
    assert_int_equal(conditions_set(NULL, st, &verified, T4), 0);
    assert_int_equal(conditions_mark_ready(&changed, st, "Succeeded", "Rolled out and verified.", 2, T4), 0);
    assert_true(changed);
    expect_conditions(st, "Ready=True Verified=True");
    assert_string_equal(field(st, COND_READY, "lastTransitionTime"), T4_S);
    assert_int_equal(cond_generation(st, COND_READY), 2);
    assert_int_equal(json_int(-1, st, "observedGeneration", NULL), 2);
    assert_string_equal(json_str(st, "phase", NULL), "Pending"); /* not the helpers' business */
    expect_kstatus_consistent(st);

    /* Ready again later: a no-op, so the caller can skip the status write. */
    assert_int_equal(conditions_mark_ready(&changed, st, "Succeeded", "Rolled out and verified.", 2, T4 + 600), 0);
    assert_false(changed);
    assert_string_equal(field(st, COND_READY, "lastTransitionTime"), T4_S);
    cJSON_Delete(st);
}

static void test_kstatus_from_stalled_straight_to_ready(void **state)
{
    (void)state;
    cJSON *st = parse("{}");
    bool changed = false;
    assert_int_equal(conditions_mark_stalled(&changed, st, "ContainerNotFound",
                                             "Container api is not in Deployment kfm-api; fix spec.container.", 5, T1),
                     0);
    assert_true(changed);
    expect_conditions(st, "Ready=False Stalled=True");
    assert_int_equal(conditions_mark_stalled(&changed, st, "ContainerNotFound",
                                             "Container api is not in Deployment kfm-api; fix spec.container.", 5, T2),
                     0);
    assert_false(changed);
    assert_int_equal(conditions_mark_ready(&changed, st, "Succeeded", "", 6, T2), 0);
    assert_true(changed);
    expect_conditions(st, "Ready=True");
    assert_string_equal(field(st, COND_READY, "lastTransitionTime"), T2_S);
    expect_kstatus_consistent(st);
    cJSON_Delete(st);
}

static void test_observed_generation_replaced(void **state)
{
    (void)state;
    cJSON *st = parse("{\"observedGeneration\":\"7\"}");
    bool changed = false;
    assert_int_equal(conditions_mark_ready(&changed, st, "Succeeded", "", 7, T1), 0);
    assert_true(changed);
    const cJSON *g = json_get(st, "observedGeneration", NULL);
    assert_true(cJSON_IsNumber(g));
    assert_int_equal((long long)g->valuedouble, 7);
    /* Exactly one observedGeneration member. */
    int n = 0;
    const cJSON *m = NULL;
    cJSON_ArrayForEach(m, st)
        n += strcmp(m->string, "observedGeneration") == 0;
    assert_int_equal(n, 1);
    cJSON_Delete(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_creates_list_with_all_fields),
        cmocka_unit_test(test_transition_time_moves_only_with_status),
        cmocka_unit_test(test_unchanged_against_server_order),
        cmocka_unit_test(test_bad_transition_time_is_replaced),
        cmocka_unit_test(test_duplicates_collapse),
        cmocka_unit_test(test_get_is_true_remove),
        cmocka_unit_test(test_invalid_input_leaves_status_alone),
        cmocka_unit_test(test_kstatus_reconciling_stalled_ready),
        cmocka_unit_test(test_kstatus_from_stalled_straight_to_ready),
        cmocka_unit_test(test_observed_generation_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * util/json: json_merge_patch, the JSON merge patch (RFC 7386) from one
 * document to another that status writes send. Each case checks the patch
 * itself, and that applying it to the old document (RFC 7386's MergePatch,
 * written out below as the API server applies it) gives the new one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/json.h"

#include <stdlib.h>
#include <string.h>

/* RFC 7386 section 2: target (taken) patched by patch; returns the result. */
static cJSON *apply(cJSON *target, const cJSON *patch)
{
    const cJSON *it;
    if (!cJSON_IsObject(patch)) {
        cJSON_Delete(target);
        return cJSON_Duplicate(patch, true);
    }
    if (!cJSON_IsObject(target)) {
        cJSON_Delete(target);
        target = cJSON_CreateObject();
    }
    cJSON_ArrayForEach(it, patch) {
        if (cJSON_IsNull(it)) {
            cJSON_DeleteItemFromObjectCaseSensitive(target, it->string);
            continue;
        }
        cJSON *old = cJSON_DetachItemFromObjectCaseSensitive(target, it->string);
        assert_int_equal(json_set_item(target, it->string, apply(old, it)), 0);
    }
    return target;
}

static char *print(const cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    assert_non_null(s);
    return s;
}

/* The patch from -> to is want, and applying it to from gives to. from may be NULL ("" for none). */
static void check(const char *from, const char *to, const char *want)
{
    cJSON *f = *from ? cJSON_Parse(from) : NULL, *t = cJSON_Parse(to), *patch = NULL, *applied;
    char *got, *round;
    assert_true(!*from || f);
    assert_non_null(t);
    assert_int_equal(json_merge_patch(&patch, f, t), 0);
    got = print(patch);
    assert_string_equal(got, want);
    applied = apply(f ? cJSON_Duplicate(f, true) : cJSON_CreateNull(), patch);
    round = print(applied);
    if (!cJSON_Compare(applied, t, true))
        fail_msg("the patch %s applied to %s gives %s, not %s", got, from, round, to);
    free(got);
    free(round);
    cJSON_Delete(applied);
    cJSON_Delete(patch);
    cJSON_Delete(f);
    cJSON_Delete(t);
}

static void test_changed_added_removed(void **state)
{
    (void)state;
    check("{\"a\":1,\"b\":\"x\",\"c\":true}", "{\"a\":2,\"b\":\"x\",\"d\":[1]}", "{\"c\":null,\"a\":2,\"d\":[1]}");
    check("{\"a\":1}", "{\"a\":1}", "{}");
    check("{}", "{}", "{}");
}

/* A nested object is patched key by key: a nested key that went away is nulled, not left behind. */
static void test_nested_keys_removed(void **state)
{
    (void)state;
    check("{\"verification\":{\"startedAt\":\"t1\",\"finishedAt\":\"t2\",\"results\":[{\"name\":\"health\"}]},"
          "\"phase\":\"Verifying\"}",
          "{\"verification\":{\"startedAt\":\"t3\",\"observingSince\":\"t4\"},\"phase\":\"Observing\"}",
          "{\"verification\":{\"finishedAt\":null,\"results\":null,\"startedAt\":\"t3\",\"observingSince\":\"t4\"},"
          "\"phase\":\"Observing\"}");
    check("{\"lastRollback\":{\"reason\":\"r\",\"approver\":\"a\",\"trigger\":\"Manual\"}}", "{}",
          "{\"lastRollback\":null}");
    check("{\"a\":{\"b\":{\"c\":1,\"d\":2}}}", "{\"a\":{\"b\":{\"c\":1}}}", "{\"a\":{\"b\":{\"d\":null}}}");
}

/* Arrays (conditions, history) are replaced whole when anything in them changed, left out when not. */
static void test_arrays_whole(void **state)
{
    (void)state;
    check("{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"},{\"type\":\"Stalled\",\"status\":\"False\"}],"
          "\"history\":[{\"releaseID\":\"1\"}]}",
          "{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],\"history\":[{\"releaseID\":\"1\"}]}",
          "{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}");
    check("{\"history\":[1,2]}", "{\"history\":[]}", "{\"history\":[]}");
}

/* From nothing, or between an object and something else: the new value whole. */
static void test_replacements(void **state)
{
    (void)state;
    check("", "{\"phase\":\"Gating\",\"conditions\":[]}", "{\"phase\":\"Gating\",\"conditions\":[]}");
    check("{\"a\":\"x\"}", "{\"a\":{\"b\":1}}", "{\"a\":{\"b\":1}}");
    check("{\"a\":{\"b\":1}}", "{\"a\":\"x\"}", "{\"a\":\"x\"}");
    check("{\"a\":{\"b\":1}}", "{\"a\":{}}", "{\"a\":{\"b\":null}}");
    check("[1]", "{\"a\":1}", "{\"a\":1}");
    check("{\"a\":1}", "\"x\"", "\"x\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_changed_added_removed),
        cmocka_unit_test(test_nested_keys_removed),
        cmocka_unit_test(test_arrays_whole),
        cmocka_unit_test(test_replacements),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

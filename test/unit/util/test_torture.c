/*
 * Allocation-failure torture of util (test/support/torture.h): YAML parsing of
 * documents that use every construct (anchors, aliases, merge keys, tags,
 * block scalars, several documents) and of documents that must fail, the JSON
 * tree helpers, and proof that timestamps and the error channel allocate
 * nothing at all.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "torture.h"
#include "util/error.h"
#include "util/json.h"
#include "util/timefmt.h"
#include "util/yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- YAML ------------------------------------------------------------------ */

typedef struct {
    const char *text;
    bool all;           /* mb_yaml_parse_all */
    const char *needle; /* for a document that must fail: in the message */
    cJSON *doc;
    char *first; /* the unhindered run's result, printed */
} yaml_case;

static int yaml_run(void *arg)
{
    yaml_case *y = arg;
    return y->all ? mb_yaml_parse_all(&y->doc, y->text, strlen(y->text), "torture.yaml")
                  : mb_yaml_parse(&y->doc, y->text, strlen(y->text), "torture.yaml");
}

/* Every successful run gives the same tree; a failing document names its problem. */
static void yaml_check(void *arg)
{
    yaml_case *y = arg;
    if (y->needle) {
        assert_null(y->doc);
        if (!strstr(mb_error_last(), y->needle))
            fail_msg("error \"%s\" does not contain \"%s\"", mb_error_last(), y->needle);
        return;
    }
    char *printed = cJSON_PrintUnformatted(y->doc);
    assert_non_null(printed);
    if (!y->first) {
        y->first = printed;
        return;
    }
    assert_string_equal(printed, y->first);
    free(printed);
}

static void yaml_clear(void *arg)
{
    yaml_case *y = arg;
    cJSON_Delete(y->doc);
    y->doc = NULL;
}

static void yaml_torture(const char *text, bool all, int expect, const char *needle)
{
    yaml_case y = {.text = text, .all = all, .needle = needle};
    torture_case tc = {.name = "mb_yaml_parse",
                       .run = yaml_run,
                       .check = yaml_check,
                       .clear = yaml_clear,
                       .ctx = &y,
                       .expect = expect};
    assert_true(torture_check(&tc) > 0);
    free(y.first);
}

static const char kubeconfig_like[] = "apiVersion: v1\n"
                                      "kind: Config\n"
                                      "current-context: dev\n"
                                      "defaults: &defaults\n"
                                      "  insecure-skip-tls-verify: false\n"
                                      "  timeout: 30\n"
                                      "  ratio: 0.25\n"
                                      "  hex: 0x1f\n"
                                      "  oct: 0o17\n"
                                      "  inf: -.inf\n"
                                      "  nothing: ~\n"
                                      "extra: &extra {proxy: 'http://proxy:3128', tags: [a, b, c]}\n"
                                      "clusters:\n"
                                      "- name: dev\n"
                                      "  cluster:\n"
                                      "    <<: [*defaults, *extra]\n"
                                      "    server: https://127.0.0.1:6443\n"
                                      "    certificate-authority-data: !!str 12345\n"
                                      "- name: copy\n"
                                      "  cluster: *defaults\n"
                                      "users:\n"
                                      "- name: dev\n"
                                      "  user:\n"
                                      "    token: |\n"
                                      "      line one\n"
                                      "      line two\n"
                                      "    note: >-\n"
                                      "      folded\n"
                                      "      text\n"
                                      "    args: [\"--a\", '--b', {nested: [1, [2, [3]]]}]\n"
                                      "contexts:\n"
                                      "- {name: dev, context: {cluster: dev, user: dev, namespace: kfm}}\n";

static void test_yaml_document(void **state)
{
    (void)state;
    yaml_torture(kubeconfig_like, false, 0, NULL);
}

static void test_yaml_stream(void **state)
{
    (void)state;
    yaml_torture("---\n"
                 "kind: Namespace\n"
                 "metadata: {name: kfm, labels: {team: data, tier: api}}\n"
                 "---\n"
                 "---\n"
                 "kind: ConfigMap\n"
                 "metadata:\n"
                 "  name: cm\n"
                 "  labels: &l {team: data}\n"
                 "  annotations: *l\n"
                 "data: {a: '1', b: \"2\"}\n"
                 "---\n"
                 "[1, 2, 3]\n",
                 true, 0, NULL);
}

static void test_yaml_errors(void **state)
{
    (void)state;
    /* each fails late, with a tree (and anchors, and held merge values) to free */
    yaml_torture("a: &x {b: [1, 2, 3]}\n"
                 "m:\n"
                 "  <<: *x\n"
                 "  c: {d: e}\n"
                 "  c: again\n",
                 false, MB_EINVAL, "duplicate key \"c\"");
    yaml_torture("a: &x [1, 2]\nb: [*x, *y]\n", false, MB_EINVAL, "names no anchor");
    yaml_torture("a: {b: [1, 2, {c: d}]}\n? [k]\n: v\n", false, MB_EINVAL, "mapping keys must be scalars");
    yaml_torture("a: &m [1]\nb:\n  <<: *m\n", false, MB_EINVAL, "merge key");
    yaml_torture("---\na: 1\n---\nb: [1, 2\n", true, MB_EINVAL, "torture.yaml: line");
    yaml_torture("a: !!int nope\n", false, MB_EINVAL, "is not a valid !!int");
}

/* ---- JSON helpers ------------------------------------------------------------ */

typedef struct {
    cJSON *tree;
} json_ctx;

static int json_run(void *arg)
{
    json_ctx *j = arg;
    static const char *const keep[] = {"metadata", "spec", NULL};
    cJSON *ann;
    int err = 0;

    if (!(j->tree = cJSON_Parse("{\"metadata\":{\"name\":\"x\",\"labels\":7},\"status\":{},\"spec\":1}")))
        return MB_ENOMEM;
    if (!(ann = json_ensure_object(j->tree, "metadata", "annotations", NULL)))
        return MB_ENOMEM;
    if ((err = json_set_str(ann, "governance.kfm.dev/release-owner", "kfm/kfm-api")) < 0 ||
        (err = json_set_str(ann, "governance.kfm.dev/release-owner", "kfm/other")) < 0 ||
        (err = json_set_str(j->tree, "spec", "replaced")) < 0)
        return err;
    if (!json_ensure_object(j->tree, "metadata", "labels", "deep", NULL))
        return MB_ENOMEM;
    json_keep_only(j->tree, keep);
    return 0;
}

static void json_check(void *arg)
{
    json_ctx *j = arg;
    char *printed = cJSON_PrintUnformatted(j->tree);
    assert_non_null(printed);
    assert_string_equal(printed, "{\"metadata\":{\"name\":\"x\",\"annotations\":"
                                 "{\"governance.kfm.dev/release-owner\":\"kfm/other\"},"
                                 "\"labels\":{\"deep\":{}}},\"spec\":\"replaced\"}");
    free(printed);
}

static void json_clear(void *arg)
{
    json_ctx *j = arg;
    cJSON_Delete(j->tree);
    j->tree = NULL;
}

static void test_json_helpers(void **state)
{
    (void)state;
    json_ctx j = {0};
    torture_case tc = {.name = "json helpers", .run = json_run, .check = json_check, .clear = json_clear, .ctx = &j};
    assert_true(torture_check(&tc) > 0);
}

/* ---- the merge patch of a status write ------------------------------------------ */

static int merge_patch_run(void *arg)
{
    json_ctx *j = arg;
    cJSON *from = cJSON_Parse("{\"phase\":\"Verifying\",\"verification\":{\"startedAt\":\"t1\",\"results\":[1]},"
                              "\"lastRollback\":{\"reason\":\"r\"},\"history\":[{\"a\":1}]}");
    cJSON *to = cJSON_Parse(
        "{\"phase\":\"Observing\",\"verification\":{\"startedAt\":\"t2\",\"observingSince\":\"t3\"},"
        "\"history\":[{\"a\":1}],\"conditions\":[{\"type\":\"Ready\"}]}");
    int err = from && to ? json_merge_patch(&j->tree, from, to) : MB_ENOMEM;
    cJSON_Delete(from);
    cJSON_Delete(to);
    return err;
}

static void merge_patch_check(void *arg)
{
    json_ctx *j = arg;
    char *printed = cJSON_PrintUnformatted(j->tree);
    assert_non_null(printed);
    assert_string_equal(printed,
                        "{\"lastRollback\":null,\"phase\":\"Observing\",\"verification\":{\"results\":null,"
                        "\"startedAt\":\"t2\",\"observingSince\":\"t3\"},\"conditions\":[{\"type\":\"Ready\"}]}");
    free(printed);
}

static void test_json_merge_patch(void **state)
{
    (void)state;
    json_ctx j = {0};
    torture_case tc = {.name = "json_merge_patch",
                       .run = merge_patch_run,
                       .check = merge_patch_check,
                       .clear = json_clear,
                       .ctx = &j};
    assert_true(torture_check(&tc) > 0);
}

/* ---- timestamps and errors allocate nothing ------------------------------------ */

static int timefmt_run(void *arg)
{
    (void)arg;
    char buf[TIMEFMT_RFC3339_SIZE];
    time_t t = 0;
    int err;
    if ((err = timefmt_format(buf, sizeof(buf), 1795428000)) < 0 ||
        (err = timefmt_parse(&t, "2026-11-22T12:00:00.25+02:00")) < 0)
        return err;
    if (timefmt_parse(&t, "yesterday") != MB_EINVAL || timefmt_format(buf, 4, 0) != MB_EINVAL)
        return MB_ERROR;
    return 0;
}

static int error_run(void *arg)
{
    (void)arg;
    mb_error_set(MB_ENOTFOUND, "the %s %s/%s is not there", "Deployment", "kfm", "kfm-api");
    mb_error_wrap(MB_ENOTFOUND, "cannot read %s", "the target");
    return strstr(mb_error_last(), "cannot read the target: the Deployment") ? 0 : MB_ERROR;
}

static void test_timefmt_and_error_allocate_nothing(void **state)
{
    (void)state;
    torture_case t = {.name = "timefmt", .run = timefmt_run};
    torture_case e = {.name = "mb_error", .run = error_run};
    /* glibc's gmtime_r reads the local time zone once (tzset): let it, before counting */
    assert_int_equal(timefmt_run(NULL), 0);
    assert_int_equal(torture_check(&t), 0);
    assert_int_equal(torture_check(&e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_document),    cmocka_unit_test(test_yaml_stream),
        cmocka_unit_test(test_yaml_errors),      cmocka_unit_test(test_json_helpers),
        cmocka_unit_test(test_json_merge_patch), cmocka_unit_test(test_timefmt_and_error_allocate_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

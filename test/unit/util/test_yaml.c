/*
 * YAML to cJSON: core-schema typing of scalars, nested and flow collections,
 * anchors, aliases and merge keys, multi-document streams, and errors that name
 * the source, line and column (including hostile inputs that must fail, not
 * crash).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/error.h"
#include "util/json.h"
#include "util/yaml.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *parse_ok(const char *text)
{
    cJSON *doc = NULL;
    int err = mb_yaml_parse(&doc, text, strlen(text), "test.yaml");
    if (err < 0)
        fail_msg("parse failed: %s", mb_error_last());
    assert_non_null(doc);
    return doc;
}

static void assert_parse_fails(const char *text, const char *needle)
{
    cJSON *doc = (cJSON *)0x1;
    assert_int_equal(mb_yaml_parse(&doc, text, strlen(text), "bad.yaml"), MB_EINVAL);
    assert_null(doc);
    if (!strstr(mb_error_last(), needle))
        fail_msg("error \"%s\" does not contain \"%s\"", mb_error_last(), needle);
    assert_non_null(strstr(mb_error_last(), "bad.yaml: "));
}

static void test_scalar_types(void **state)
{
    (void)state;
    cJSON *d = parse_ok("n1: null\n"
                        "n2: ~\n"
                        "n3:\n"
                        "n4: NULL\n"
                        "b1: true\n"
                        "b2: False\n"
                        "b3: TRUE\n"
                        "i1: 42\n"
                        "i2: -17\n"
                        "i3: 0x1f\n"
                        "i4: 0o17\n"
                        "i5: +8\n"
                        "f1: 3.25\n"
                        "f2: 1e3\n"
                        "f3: -.5\n"
                        "f4: .inf\n"
                        "f5: -.Inf\n"
                        "f6: .nan\n"
                        "s1: hello world\n"
                        "s2: \"42\"\n"
                        "s3: 'true'\n"
                        "s4: yes\n"
                        "s5: 1.2.3\n"
                        "s6: 0x\n"
                        "s7: !!str 12\n"
                        "s8: |\n"
                        "  line one\n"
                        "  line two\n"
                        "s9: >-\n"
                        "  folded\n"
                        "  text\n"
                        "s10: 08:00\n"
                        "s11: ''\n"
                        "s12: nullish\n");
    for (const char *const *k = (const char *const[]){"n1", "n2", "n3", "n4", NULL}; *k; k++)
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(d, *k)));
    assert_true(cJSON_IsTrue(json_get(d, "b1", NULL)));
    assert_true(cJSON_IsFalse(json_get(d, "b2", NULL)));
    assert_true(cJSON_IsTrue(json_get(d, "b3", NULL)));
    assert_int_equal(json_int(0, d, "i1", NULL), 42);
    assert_int_equal(json_int(0, d, "i2", NULL), -17);
    assert_int_equal(json_int(0, d, "i3", NULL), 31);
    assert_int_equal(json_int(0, d, "i4", NULL), 15);
    assert_int_equal(json_int(0, d, "i5", NULL), 8);
    assert_true(json_get(d, "f1", NULL)->valuedouble == 3.25);
    assert_true(json_get(d, "f2", NULL)->valuedouble == 1000.0);
    assert_true(json_get(d, "f3", NULL)->valuedouble == -0.5);
    assert_true(isinf(json_get(d, "f4", NULL)->valuedouble) && json_get(d, "f4", NULL)->valuedouble > 0);
    assert_true(isinf(json_get(d, "f5", NULL)->valuedouble) && json_get(d, "f5", NULL)->valuedouble < 0);
    assert_true(isnan(json_get(d, "f6", NULL)->valuedouble));
    assert_string_equal(json_str(d, "s1", NULL), "hello world");
    assert_string_equal(json_str(d, "s2", NULL), "42");
    assert_string_equal(json_str(d, "s3", NULL), "true");
    assert_string_equal(json_str(d, "s4", NULL), "yes");
    assert_string_equal(json_str(d, "s5", NULL), "1.2.3");
    assert_string_equal(json_str(d, "s6", NULL), "0x");
    assert_string_equal(json_str(d, "s7", NULL), "12");
    assert_string_equal(json_str(d, "s8", NULL), "line one\nline two\n");
    assert_string_equal(json_str(d, "s9", NULL), "folded text");
    assert_string_equal(json_str(d, "s10", NULL), "08:00");
    assert_string_equal(json_str(d, "s11", NULL), "");
    assert_string_equal(json_str(d, "s12", NULL), "nullish");
    cJSON_Delete(d);
}

static void test_nested_structures(void **state)
{
    (void)state;
    cJSON *d = parse_ok("apiVersion: v1\n"
                        "clusters:\n"
                        "- name: a\n"
                        "  cluster:\n"
                        "    server: https://a:6443\n"
                        "    extensions: []\n"
                        "- name: b\n"
                        "  cluster: {server: 'https://b', insecure-skip-tls-verify: true}\n"
                        "matrix: [[1, 2], [3, [4, {deep: x}]]]\n"
                        "empty: {}\n");
    const cJSON *clusters = json_get(d, "clusters", NULL);
    assert_true(cJSON_IsArray(clusters));
    assert_int_equal(cJSON_GetArraySize(clusters), 2);
    assert_string_equal(json_str(cJSON_GetArrayItem(clusters, 0), "cluster", "server", NULL), "https://a:6443");
    assert_true(cJSON_IsArray(json_get(cJSON_GetArrayItem(clusters, 0), "cluster", "extensions", NULL)));
    assert_string_equal(json_str(cJSON_GetArrayItem(clusters, 1), "cluster", "server", NULL), "https://b");
    assert_true(json_bool(false, cJSON_GetArrayItem(clusters, 1), "cluster", "insecure-skip-tls-verify", NULL));
    const cJSON *m = json_get(d, "matrix", NULL);
    const cJSON *inner = cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetArrayItem(m, 1), 1), 1);
    assert_string_equal(json_str(inner, "deep", NULL), "x");
    assert_true(cJSON_IsObject(json_get(d, "empty", NULL)));
    assert_null(json_get(d, "empty", NULL)->child);

    /* The same tree JSON gives: print and compare. */
    char *printed = cJSON_PrintUnformatted(json_get(d, "matrix", NULL));
    assert_string_equal(printed, "[[1,2],[3,[4,{\"deep\":\"x\"}]]]");
    cJSON_free(printed);
    cJSON_Delete(d);
}

static void test_json_is_yaml(void **state)
{
    (void)state;
    cJSON *d = parse_ok("{\"kind\": \"Config\", \"n\": 1.5, \"list\": [true, null, \"s\"]}");
    char *printed = cJSON_PrintUnformatted(d);
    assert_string_equal(printed, "{\"kind\":\"Config\",\"n\":1.5,\"list\":[true,null,\"s\"]}");
    cJSON_free(printed);
    cJSON_Delete(d);
}

static void test_anchors_aliases_merge(void **state)
{
    (void)state;
    cJSON *d = parse_ok("base: &base\n"
                        "  server: https://x\n"
                        "  port: 6443\n"
                        "  tags: &tags [a, b]\n"
                        "copy: *base\n"
                        "tags2: *tags\n"
                        "scalar: &s hello\n"
                        "again: *s\n"
                        "derived:\n"
                        "  <<: *base\n"
                        "  port: 443\n"
                        "multi:\n"
                        "  <<: [{a: 1}, {a: 2, b: 2}]\n"
                        "  c: 3\n");
    assert_string_equal(json_str(d, "copy", "server", NULL), "https://x");
    assert_int_equal(json_int(0, d, "copy", "port", NULL), 6443);
    assert_int_equal(cJSON_GetArraySize(json_get(d, "tags2", NULL)), 2);
    assert_string_equal(json_str(d, "again", NULL), "hello");
    /* explicit keys win over merged ones, wherever the << stands */
    assert_int_equal(json_int(0, d, "derived", "port", NULL), 443);
    assert_string_equal(json_str(d, "derived", "server", NULL), "https://x");
    assert_null(json_get(d, "derived", "<<", NULL));
    /* among merged mappings the first wins */
    assert_int_equal(json_int(0, d, "multi", "a", NULL), 1);
    assert_int_equal(json_int(0, d, "multi", "b", NULL), 2);
    assert_int_equal(json_int(0, d, "multi", "c", NULL), 3);
    /* an alias is a copy: the two trees are independent */
    assert_ptr_not_equal(json_get(d, "copy", NULL), json_get(d, "base", NULL));
    cJSON_Delete(d);
}

static void test_multi_document(void **state)
{
    (void)state;
    const char *text = "a: 1\n---\n---\nb: 2\n...\n---\n- x\n";
    cJSON *docs = NULL;
    assert_int_equal(mb_yaml_parse_all(&docs, text, strlen(text), "multi.yaml"), 0);
    assert_int_equal(cJSON_GetArraySize(docs), 3);
    assert_int_equal(json_int(0, cJSON_GetArrayItem(docs, 0), "a", NULL), 1);
    assert_int_equal(json_int(0, cJSON_GetArrayItem(docs, 1), "b", NULL), 2);
    assert_true(cJSON_IsArray(cJSON_GetArrayItem(docs, 2)));
    cJSON_Delete(docs);

    /* the first-document parser stops after the first one */
    cJSON *first = parse_ok(text);
    assert_int_equal(json_int(0, first, "a", NULL), 1);
    cJSON_Delete(first);
}

static void test_empty_input(void **state)
{
    (void)state;
    cJSON *d = NULL;
    assert_int_equal(mb_yaml_parse(&d, "", 0, "empty.yaml"), 0);
    assert_true(cJSON_IsNull(d));
    cJSON_Delete(d);
    d = parse_ok("# only a comment\n");
    assert_true(cJSON_IsNull(d));
    cJSON_Delete(d);
    assert_int_equal(mb_yaml_parse_all(&d, "", 0, "empty.yaml"), 0);
    assert_int_equal(cJSON_GetArraySize(d), 0);
    cJSON_Delete(d);
}

static void test_not_nul_terminated(void **state)
{
    (void)state;
    const char buf[] = {'k', ':', ' ', 'v', 'X', 'Y'};
    cJSON *d = NULL;
    assert_int_equal(mb_yaml_parse(&d, buf, 4, "buf"), 0);
    assert_string_equal(json_str(d, "k", NULL), "v");
    cJSON_Delete(d);
}

static void test_syntax_error_names_line_and_column(void **state)
{
    (void)state;
    assert_parse_fails("a: 1\nb: c: d\n", "bad.yaml: line 2, column 5: mapping values are not allowed");
    assert_parse_fails("list:\n  - a\n  - [b, c\n", "line 4");
    assert_parse_fails("a: \"unterminated\n", "line ");
    /* the message carries the context libyaml gives */
    assert_parse_fails("k: v\n  bad: indent\n", "column");
}

static void test_structure_errors(void **state)
{
    (void)state;
    assert_parse_fails("a: 1\nb: 2\na: 3\n", "line 3, column 1: duplicate key \"a\"");
    assert_parse_fails("x: *nope\n", "line 1, column 4: alias *nope names no anchor");
    assert_parse_fails("? [a, b]\n: c\n", "line 1, column 3: mapping keys must be scalars");
    assert_parse_fails("m:\n  <<: 3\n", "line 2, column 3: a merge key");
    assert_parse_fails("n: !!int abc\n", "line 1, column 4: \"abc\" is not a valid !!int");
    assert_parse_fails("s: \"a\\0b\"\n", "NUL character");
    /* a self-referencing anchor is not yet defined inside itself */
    assert_parse_fails("a: &x [*x]\n", "alias *x names no anchor");
}

static void test_hostile_inputs_fail_cleanly(void **state)
{
    (void)state;
    /* billion laughs: each level multiplies by 10 */
    const char *laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                         "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                         "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                         "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                         "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                         "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                         "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                         "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    assert_parse_fails(laughs, "too many aliases");

    /* nesting deeper than the limit */
    size_t depth = 5000;
    char *deep = malloc(2 * depth + 1);
    assert_non_null(deep);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    assert_parse_fails(deep, "nest more than");
    free(deep);

    /* aliases that stack depth beyond the limit */
    char chain[8192];
    size_t n = 0;
    n += (size_t)snprintf(chain + n, sizeof(chain) - n, "a0: &a0 ");
    for (int i = 0; i < 200; i++)
        chain[n++] = '[';
    for (int i = 0; i < 200; i++)
        chain[n++] = ']';
    n += (size_t)snprintf(chain + n, sizeof(chain) - n,
                          "\na1: &a1 [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                          "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*a0");
    for (int i = 0; i < 100; i++)
        chain[n++] = ']';
    chain[n++] = '\n';
    chain[n] = '\0';
    assert_parse_fails(chain, "nests the document too deeply");

    /*
     * The same through merge keys: a mapping whose members all come from "<<" was recorded as one
     * level high, so aliases of it nested without limit (300 levels here; chained, over 8000).
     */
    n = 0;
    n += (size_t)snprintf(chain + n, sizeof(chain) - n, "a0: &a0 ");
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(chain + n, sizeof(chain) - n, "{k: ");
    n += (size_t)snprintf(chain + n, sizeof(chain) - n, "{}");
    for (int i = 0; i < 200; i++)
        chain[n++] = '}';
    n += (size_t)snprintf(chain + n, sizeof(chain) - n, "\na1: &a1 {<<: *a0}\nb: ");
    for (int i = 0; i < 100; i++)
        chain[n++] = '[';
    n += (size_t)snprintf(chain + n, sizeof(chain) - n, "*a1");
    for (int i = 0; i < 100; i++)
        chain[n++] = ']';
    chain[n++] = '\n';
    chain[n] = '\0';
    assert_parse_fails(chain, "nests the document too deeply");

    /* invalid UTF-8 */
    assert_parse_fails("k: \xff\xfe\xfd\n", "bad.yaml: ");
}

static void test_default_source_name(void **state)
{
    (void)state;
    cJSON *d = NULL;
    assert_int_equal(mb_yaml_parse(&d, "[", 1, NULL), MB_EINVAL);
    assert_null(d);
    assert_int_equal(strncmp(mb_error_last(), "yaml: line ", 11), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_types),        cmocka_unit_test(test_nested_structures),
        cmocka_unit_test(test_json_is_yaml),        cmocka_unit_test(test_anchors_aliases_merge),
        cmocka_unit_test(test_multi_document),      cmocka_unit_test(test_empty_input),
        cmocka_unit_test(test_not_nul_terminated),  cmocka_unit_test(test_syntax_error_names_line_and_column),
        cmocka_unit_test(test_structure_errors),    cmocka_unit_test(test_hostile_inputs_fail_cleanly),
        cmocka_unit_test(test_default_source_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * metav1.LabelSelector matching: every operator, matchLabels and
 * matchExpressions together, empty {} against nil, the kubectl rendering used
 * in messages, and the invalid selectors that must fail to parse instead of
 * matching or missing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/error.h"
#include "verify/labels.h"

#include <stdlib.h>
#include <string.h>

static cJSON *js(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j)
        fail_msg("test JSON does not parse: %s", text);
    return j;
}

/* Whether selector (JSON text, or NULL for nil) matches labels (JSON text). */
static bool sel_matches(const char *selector, const char *labels)
{
    cJSON *s = selector ? js(selector) : NULL;
    cJSON *l = js(labels);
    bool m = false;
    int err = labels_selector_match(&m, s, l);
    if (err < 0)
        fail_msg("selector %s does not parse: %s", selector ? selector : "(nil)", mb_error_last());
    cJSON_Delete(s);
    cJSON_Delete(l);
    return m;
}

static void assert_invalid(const char *selector, const char *needle)
{
    cJSON *s = js(selector);
    labels_selector *ls = (labels_selector *)0x1;
    assert_int_equal(labels_selector_parse(&ls, s, "spec.podSelector"), MB_EINVAL);
    assert_null(ls);
    if (!strstr(mb_error_last(), needle))
        fail_msg("error \"%s\" does not contain \"%s\"", mb_error_last(), needle);
    assert_non_null(strstr(mb_error_last(), "spec.podSelector"));
    cJSON_Delete(s);
}

static void test_empty_matches_everything(void **state)
{
    (void)state;
    assert_true(sel_matches("{}", "{}"));
    assert_true(sel_matches("{}", "{\"app\":\"x\"}"));
    assert_true(sel_matches("{\"matchLabels\":{}}", "{\"app\":\"x\"}"));
    assert_true(sel_matches("{\"matchLabels\":null,\"matchExpressions\":[]}", "{}"));
}

static void test_nil_matches_nothing(void **state)
{
    (void)state;
    assert_false(sel_matches(NULL, "{}"));
    assert_false(sel_matches(NULL, "{\"app\":\"x\"}"));
    assert_false(sel_matches("null", "{\"app\":\"x\"}"));

    labels_selector *s = NULL;
    assert_int_equal(labels_selector_parse(&s, NULL, NULL), 0);
    assert_true(labels_selector_is_nothing(s));
    assert_false(labels_selector_is_everything(s));
    assert_string_equal(labels_selector_string(s), "<none>");
    labels_selector_free(s);
}

static void test_match_labels(void **state)
{
    (void)state;
    const char *sel = "{\"matchLabels\":{\"app\":\"kfm-ui\",\"tier\":\"web\"}}";
    assert_true(sel_matches(sel, "{\"app\":\"kfm-ui\",\"tier\":\"web\",\"x\":\"y\"}"));
    assert_false(sel_matches(sel, "{\"app\":\"kfm-ui\"}"));
    assert_false(sel_matches(sel, "{\"app\":\"kfm-api\",\"tier\":\"web\"}"));
    assert_false(sel_matches(sel, "{}"));
    /* values are case-sensitive, and an empty value is a value */
    assert_false(sel_matches("{\"matchLabels\":{\"app\":\"KFM-UI\"}}", "{\"app\":\"kfm-ui\"}"));
    assert_true(sel_matches("{\"matchLabels\":{\"flag\":\"\"}}", "{\"flag\":\"\"}"));
    assert_false(sel_matches("{\"matchLabels\":{\"flag\":\"\"}}", "{}"));
}

static void test_operator_in(void **state)
{
    (void)state;
    const char *sel = "{\"matchExpressions\":[{\"key\":\"env\",\"operator\":\"In\",\"values\":[\"dev\",\"staging\"]}]}";
    assert_true(sel_matches(sel, "{\"env\":\"dev\"}"));
    assert_true(sel_matches(sel, "{\"env\":\"staging\"}"));
    assert_false(sel_matches(sel, "{\"env\":\"prod\"}"));
    assert_false(sel_matches(sel, "{}"));
}

static void test_operator_not_in(void **state)
{
    (void)state;
    const char *sel = "{\"matchExpressions\":[{\"key\":\"env\",\"operator\":\"NotIn\",\"values\":[\"prod\"]}]}";
    assert_true(sel_matches(sel, "{\"env\":\"dev\"}"));
    assert_false(sel_matches(sel, "{\"env\":\"prod\"}"));
    /* Kubernetes: NotIn is satisfied when the key is absent */
    assert_true(sel_matches(sel, "{}"));
}

static void test_operator_exists(void **state)
{
    (void)state;
    const char *sel = "{\"matchExpressions\":[{\"key\":\"team\",\"operator\":\"Exists\"}]}";
    assert_true(sel_matches(sel, "{\"team\":\"a\"}"));
    assert_true(sel_matches(sel, "{\"team\":\"\"}"));
    assert_false(sel_matches(sel, "{\"teams\":\"a\"}"));
    /* values: [] is the same as no values */
    assert_true(sel_matches("{\"matchExpressions\":[{\"key\":\"team\",\"operator\":\"Exists\",\"values\":[]}]}",
                            "{\"team\":\"a\"}"));
}

static void test_operator_does_not_exist(void **state)
{
    (void)state;
    const char *sel = "{\"matchExpressions\":[{\"key\":\"legacy\",\"operator\":\"DoesNotExist\"}]}";
    assert_true(sel_matches(sel, "{}"));
    assert_true(sel_matches(sel, "{\"app\":\"x\"}"));
    assert_false(sel_matches(sel, "{\"legacy\":\"true\"}"));
}

static void test_requirements_are_anded(void **state)
{
    (void)state;
    const char *sel = "{\"matchLabels\":{\"app\":\"db\"},"
                      "\"matchExpressions\":[{\"key\":\"env\",\"operator\":\"In\",\"values\":[\"prod\"]},"
                      "{\"key\":\"legacy\",\"operator\":\"DoesNotExist\"}]}";
    assert_true(sel_matches(sel, "{\"app\":\"db\",\"env\":\"prod\"}"));
    assert_false(sel_matches(sel, "{\"app\":\"db\",\"env\":\"prod\",\"legacy\":\"1\"}"));
    assert_false(sel_matches(sel, "{\"app\":\"db\",\"env\":\"dev\"}"));
    assert_false(sel_matches(sel, "{\"app\":\"web\",\"env\":\"prod\"}"));
}

static void test_missing_or_odd_labels(void **state)
{
    (void)state;
    labels_selector *s = NULL;
    cJSON *sel = js("{\"matchLabels\":{\"app\":\"x\"}}");
    cJSON *num = js("{\"app\":1}");
    assert_int_equal(labels_selector_parse(&s, sel, NULL), 0);
    assert_false(labels_selector_matches(s, NULL));
    assert_false(labels_selector_matches(s, num)); /* not a string label */
    labels_selector_free(s);
    cJSON_Delete(sel);
    cJSON_Delete(num);

    cJSON *empty = js("{}");
    assert_int_equal(labels_selector_parse(&s, empty, NULL), 0);
    assert_true(labels_selector_matches(s, NULL)); /* {} matches an object with no labels */
    labels_selector_free(s);
    cJSON_Delete(empty);
}

static void test_string_rendering(void **state)
{
    (void)state;
    labels_selector *s = NULL;
    cJSON *sel = js("{\"matchLabels\":{\"app\":\"kfm-ui\"},\"matchExpressions\":["
                    "{\"key\":\"tier\",\"operator\":\"In\",\"values\":[\"a\",\"b\"]},"
                    "{\"key\":\"env\",\"operator\":\"NotIn\",\"values\":[\"prod\"]},"
                    "{\"key\":\"team\",\"operator\":\"Exists\"},"
                    "{\"key\":\"legacy\",\"operator\":\"DoesNotExist\"}]}");
    assert_int_equal(labels_selector_parse(&s, sel, NULL), 0);
    cJSON_Delete(sel); /* the selector keeps its own copy */
    assert_string_equal(labels_selector_string(s), "app=kfm-ui,tier in (a,b),env notin (prod),team,!legacy");
    cJSON *ok = js("{\"app\":\"kfm-ui\",\"tier\":\"b\",\"team\":\"t\"}");
    assert_true(labels_selector_matches(s, ok)); /* still valid after the input was freed */
    cJSON_Delete(ok);
    labels_selector_free(s);

    cJSON *empty = js("{}");
    assert_int_equal(labels_selector_parse(&s, empty, NULL), 0);
    assert_true(labels_selector_is_everything(s));
    assert_string_equal(labels_selector_string(s), "<all>");
    labels_selector_free(s);
    cJSON_Delete(empty);
}

static void test_invalid_selectors(void **state)
{
    (void)state;
    assert_invalid("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Has\"}]}", "\"Has\"");
    assert_invalid("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"in\",\"values\":[\"x\"]}]}", "\"in\"");
    assert_invalid("{\"matchExpressions\":[{\"key\":\"a\"}]}", "operator missing");
    assert_invalid("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}", "at least one value");
    assert_invalid("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[]}]}", "at least one value");
    assert_invalid("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"NotIn\",\"values\":[]}]}",
                   "at least one value");
    assert_invalid("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\",\"values\":[\"x\"]}]}",
                   "takes no values");
    assert_invalid("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"DoesNotExist\",\"values\":[\"x\"]}]}",
                   "takes no values");
    assert_invalid("{\"matchExpressions\":[{\"operator\":\"Exists\"}]}", "no key");
    assert_invalid("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[1]}]}", "must be a string");
    assert_invalid("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":\"x\"}]}", "list of strings");
    assert_invalid("{\"matchExpressions\":[\"a=b\"]}", "not an object");
    assert_invalid("{\"matchExpressions\":{}}", "must be a list");
    assert_invalid("{\"matchLabels\":{\"app\":true}}", "must be a string");
    assert_invalid("{\"matchLabels\":[]}", "map of label keys");
    assert_invalid("[]", "must be an object");
    assert_invalid("\"app=x\"", "must be an object");
}

/* The labels of a hypothetical object for selector, as compact JSON, or NULL when none can satisfy it. */
static char *example(const char *selector)
{
    cJSON *s = selector ? js(selector) : NULL, *labels = NULL;
    labels_selector *ls = NULL;
    char *text = NULL;
    if (labels_selector_parse(&ls, s, "spec.podSelector") < 0)
        fail_msg("selector %s does not parse: %s", selector ? selector : "(nil)", mb_error_last());
    if (labels_selector_example(&labels, ls) == 0) {
        assert_true(labels_selector_matches(ls, labels));
        text = cJSON_PrintUnformatted(labels);
    } else {
        assert_null(labels);
        assert_non_null(strstr(mb_error_last(), "no"));
    }
    cJSON_Delete(labels);
    labels_selector_free(ls);
    cJSON_Delete(s);
    return text;
}

static void assert_example(const char *selector, const char *want)
{
    char *got = example(selector);
    if (!want && got)
        fail_msg("selector %s: want no labels, got %s", selector ? selector : "(nil)", got);
    if (want && (!got || strcmp(got, want) != 0))
        fail_msg("selector %s: want %s, got %s", selector ? selector : "(nil)", want, got ? got : "none");
    free(got);
}

static void test_example_labels(void **state)
{
    (void)state;
    assert_example("{}", "{}");
    assert_example("{\"matchLabels\":{\"app\":\"kfm-ui\",\"tier\":\"web\"}}", "{\"app\":\"kfm-ui\",\"tier\":\"web\"}");
    assert_example("{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"In\",\"values\":[\"a\",\"b\"]}]}",
                   "{\"tier\":\"a\"}");
    assert_example("{\"matchExpressions\":[{\"key\":\"team\",\"operator\":\"Exists\"}]}",
                   "{\"team\":\"" LABELS_PLACEHOLDER "\"}");
    /* the first value every other requirement on the key accepts */
    assert_example("{\"matchExpressions\":[{\"key\":\"t\",\"operator\":\"In\",\"values\":[\"a\",\"b\"]},"
                   "{\"key\":\"t\",\"operator\":\"NotIn\",\"values\":[\"a\"]}]}",
                   "{\"t\":\"b\"}");
    assert_example("{\"matchExpressions\":[{\"key\":\"t\",\"operator\":\"Exists\"},"
                   "{\"key\":\"t\",\"operator\":\"In\",\"values\":[\"x\"]}]}",
                   "{\"t\":\"x\"}");
    assert_example("{\"matchExpressions\":[{\"key\":\"legacy\",\"operator\":\"DoesNotExist\"},"
                   "{\"key\":\"env\",\"operator\":\"NotIn\",\"values\":[\"prod\"]}]}",
                   "{}");
    /* nothing can satisfy these */
    assert_example(NULL, NULL);
    assert_example("{\"matchLabels\":{\"app\":\"a\"},\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"In\","
                   "\"values\":[\"b\"]}]}",
                   NULL);
    assert_example("{\"matchExpressions\":[{\"key\":\"t\",\"operator\":\"Exists\"},"
                   "{\"key\":\"t\",\"operator\":\"DoesNotExist\"}]}",
                   NULL);
    assert_example("{\"matchLabels\":{\"app\":\"a\"},\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"NotIn\","
                   "\"values\":[\"a\"]}]}",
                   NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_matches_everything),
        cmocka_unit_test(test_nil_matches_nothing),
        cmocka_unit_test(test_match_labels),
        cmocka_unit_test(test_operator_in),
        cmocka_unit_test(test_operator_not_in),
        cmocka_unit_test(test_operator_exists),
        cmocka_unit_test(test_operator_does_not_exist),
        cmocka_unit_test(test_requirements_are_anded),
        cmocka_unit_test(test_missing_or_odd_labels),
        cmocka_unit_test(test_string_rendering),
        cmocka_unit_test(test_invalid_selectors),
        cmocka_unit_test(test_example_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * dataset/index: the policy-label gate, the index entry as canonical JSON,
 * and the pure updates of the index ConfigMap's data: a first promotion, a
 * replacement by another version (the replaced entry returned), the same
 * entry again (nothing changes), the same version with another entry
 * (refused), the 900 KiB limit, and removal on revocation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dataset/index.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define REF2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static char msg[DATASET_MSG_MAX];

static cJSON *spec_for(const char *version)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "{\"datasetID\":\"kfm.hydrology.wells\",\"versionID\":\"%s\",\"license\":\"CC-BY-4.0\","
             "\"policyLabel\":\"restricted\",\"artifacts\":[{\"url\":\"https://s/a\"}],\"catalog\":{\"dcat\":{\"url\":"
             "\"https://s/d.jsonld\"},\"stac\":{\"url\":\"https://s/c.json\"},\"prov\":{\"url\":\"https://s/"
             "p.json\"}}}",
             version);
    cJSON *spec = cJSON_Parse(text);
    assert_non_null(spec);
    return spec;
}

static char *entry_for(const char *version, const char *ref)
{
    cJSON *spec = spec_for(version);
    char *e = NULL;
    assert_int_equal(dataset_index_entry(&e, spec, ref, msg), 0);
    cJSON_Delete(spec);
    return e;
}

static void test_policy_label(void **state)
{
    (void)state;
    const char *ok[] = {"{\"policyLabel\":\"public\"}", "{\"policyLabel\":\"restricted\"}",
                        "{\"policyLabel\":\"sensitive\"}"};
    for (size_t i = 0; i < 3; i++) {
        cJSON *s = cJSON_Parse(ok[i]);
        assert_int_equal(dataset_policy_label_judge(s, msg), 0);
        cJSON_Delete(s);
    }
    cJSON *bad = cJSON_Parse("{\"policyLabel\":\"Public\"}");
    assert_int_equal(dataset_policy_label_judge(bad, msg), MB_EINVAL);
    assert_string_equal(msg, "spec.policyLabel \"Public\" is not public, restricted or sensitive: set one");
    cJSON_Delete(bad);
    assert_int_equal(dataset_policy_label_judge(NULL, msg), MB_EINVAL);
    assert_non_null(strstr(msg, "spec.policyLabel is missing"));
}

static void test_entry(void **state)
{
    (void)state;
    char *e = entry_for("2026-03-01.1", REF1);
    assert_string_equal(e, "{\"auditRef\":\"" REF1 "\",\"catalog\":{\"dcat\":\"https://s/d.jsonld\",\"prov\":"
                           "\"https://s/p.json\",\"stac\":\"https://s/c.json\"},\"datasetID\":\"kfm.hydrology.wells\","
                           "\"license\":\"CC-BY-4.0\",\"policyLabel\":\"restricted\",\"versionID\":\"2026-03-01.1\"}");
    free(e);

    struct {
        const char *spec;
        const char *ref;
        const char *needle;
    } bad[] = {
        {"{\"datasetID\":\"kfm/wells\",\"versionID\":\"1\",\"license\":\"MIT\",\"policyLabel\":\"public\"}", REF1,
         "spec.datasetID \"kfm/wells\" cannot be a key of the index ConfigMap"},
        {"{\"versionID\":\"1\",\"license\":\"MIT\",\"policyLabel\":\"public\"}", REF1, "spec.datasetID \"\" cannot"},
        {"{\"datasetID\":\"w\",\"license\":\"MIT\",\"policyLabel\":\"public\"}", REF1, "spec.versionID is empty"},
        {"{\"datasetID\":\"w\",\"versionID\":\"1\",\"policyLabel\":\"public\"}", REF1, "spec.license is empty"},
        {"{\"datasetID\":\"w\",\"versionID\":\"1\",\"license\":\"MIT\",\"policyLabel\":\"open\"}", REF1,
         "spec.policyLabel \"open\""},
        {"{\"datasetID\":\"w\",\"versionID\":\"1\",\"license\":\"MIT\",\"policyLabel\":\"public\"}", "sha256:xyz",
         "the auditRef \"sha256:xyz\" of the index entry is not sha256:<64 hex>"},
        {"{\"datasetID\":\"w\",\"versionID\":\"1\",\"license\":\"MIT\",\"policyLabel\":\"public\"}", NULL,
         "the auditRef \"\""},
        {"{\"datasetID\":\"w\",\"versionID\":\"\xff\",\"license\":\"MIT\",\"policyLabel\":\"public\"}", REF1,
         "has no canonical form"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *spec = cJSON_Parse(bad[i].spec);
        assert_non_null(spec);
        e = (char *)"untouched";
        assert_int_equal(dataset_index_entry(&e, spec, bad[i].ref, msg), MB_EINVAL);
        assert_null(e);
        if (!strstr(msg, bad[i].needle))
            fail_msg("case %zu: \"%s\" does not contain \"%s\"", i, msg, bad[i].needle);
        cJSON_Delete(spec);
    }
}

static void test_update(void **state)
{
    (void)state;
    char *v1 = entry_for("2026-03-01.1", REF1), *v2 = entry_for("2026-04-01.1", REF2);
    char *v1_other = entry_for("2026-03-01.1", REF2);
    cJSON *other = cJSON_Parse("{\"kfm.other\":\"{\\\"versionID\\\":\\\"9\\\"}\"}");
    cJSON *d1 = NULL, *d2 = NULL, *d3 = NULL, *bad = NULL;
    char *replaced = NULL;

    /* the first promotion: added beside the other datasets, nothing replaced; the input is not touched */
    assert_int_equal(dataset_index_update(&d1, &replaced, other, v1, msg), 0);
    assert_null(replaced);
    assert_string_equal(json_str(d1, "kfm.hydrology.wells", NULL), v1);
    assert_non_null(json_str(d1, "kfm.other", NULL));
    assert_null(json_str(other, "kfm.hydrology.wells", NULL));

    /* no data yet */
    assert_int_equal(dataset_index_update(&d3, &replaced, NULL, v1, msg), 0);
    assert_string_equal(json_str(d3, "kfm.hydrology.wells", NULL), v1);
    cJSON_Delete(d3);

    /* the same entry again: unchanged, nothing replaced */
    assert_int_equal(dataset_index_update(&d2, &replaced, d1, v1, msg), 0);
    assert_null(replaced);
    assert_true(cJSON_Compare(d1, d2, true));
    cJSON_Delete(d2);

    /* the same version with another entry: refused */
    d2 = (cJSON *)1;
    assert_int_equal(dataset_index_update(&d2, &replaced, d1, v1_other, msg), MB_EINVAL);
    assert_null(d2);
    assert_null(replaced);
    assert_non_null(strstr(msg, "version \"2026-03-01.1\" of kfm.hydrology.wells is already published with another "
                                "entry (auditRef " REF1 "): promote it under a new versionID"));

    /* another version replaces it, and the replaced entry comes back for the receipt */
    assert_int_equal(dataset_index_update(&d2, &replaced, d1, v2, msg), 0);
    assert_string_equal(replaced, v1);
    assert_string_equal(json_str(d2, "kfm.hydrology.wells", NULL), v2);
    free(replaced);
    cJSON_Delete(d2);

    /* a key that holds no entry blocks (fail closed) */
    bad = cJSON_Parse("{\"kfm.hydrology.wells\":\"garbage\"}");
    assert_int_equal(dataset_index_update(&d2, &replaced, bad, v2, msg), MB_EINVAL);
    assert_non_null(strstr(msg, "key \"kfm.hydrology.wells\" holds no index entry"));
    assert_int_equal(dataset_index_update(&d2, &replaced, NULL, "{\"datasetID\":\"x\"}", msg), MB_EINVAL);
    assert_non_null(strstr(msg, "not an entry with a datasetID and a versionID"));
    assert_int_equal(dataset_index_update(&d2, &replaced, NULL, "{\"datasetID\":\"a b\",\"versionID\":\"1\"}", msg),
                     MB_EINVAL);
    assert_non_null(strstr(msg, "cannot be a ConfigMap key"));
    cJSON *list = cJSON_Parse("[\"x\"]");
    assert_int_equal(dataset_index_update(&d2, &replaced, list, v2, msg), MB_EINVAL);
    assert_non_null(strstr(msg, "data is not a map"));
    assert_int_equal(dataset_index_remove(&d2, &replaced, list, "kfm.hydrology.wells", "1", msg), MB_EINVAL);
    assert_non_null(strstr(msg, "data is not a map"));
    cJSON_Delete(list);

    cJSON_Delete(bad);
    cJSON_Delete(d1);
    cJSON_Delete(other);
    free(v1);
    free(v2);
    free(v1_other);
}

static void test_size_limit(void **state)
{
    (void)state;
    char *v1 = entry_for("2026-03-01.1", REF1);
    size_t fill = (size_t)DATASET_INDEX_MAX_BYTES - strlen("filler") - strlen("kfm.hydrology.wells") - strlen(v1);
    char *big = malloc(fill + 2);
    cJSON *data = cJSON_CreateObject(), *out = NULL;
    char *replaced = NULL;

    /* exactly at the limit: published */
    memset(big, 'x', fill);
    big[fill] = '\0';
    cJSON_AddStringToObject(data, "filler", big);
    assert_int_equal(dataset_index_update(&out, &replaced, data, v1, msg), 0);
    cJSON_Delete(out);
    /* one byte more: blocked, with a message saying so */
    big[fill] = 'x';
    big[fill + 1] = '\0';
    cJSON_ReplaceItemInObject(data, "filler", cJSON_CreateString(big));
    assert_int_equal(dataset_index_update(&out, &replaced, data, v1, msg), MB_EINVAL);
    assert_null(out);
    assert_non_null(strstr(msg, "would make the index ConfigMap's data 921601 bytes, more than its 921600-byte (900 "
                                "KiB) limit"));
    cJSON_Delete(data);
    free(big);
    free(v1);
}

static void test_remove(void **state)
{
    (void)state;
    char *v1 = entry_for("2026-03-01.1", REF1);
    cJSON *data = cJSON_CreateObject(), *out = NULL;
    char *removed = NULL;

    cJSON_AddStringToObject(data, "kfm.hydrology.wells", v1);
    cJSON_AddStringToObject(data, "kfm.other", "{\"versionID\":\"9\"}");

    /* another version's revocation leaves the entry */
    assert_int_equal(dataset_index_remove(&out, &removed, data, "kfm.hydrology.wells", "2026-02-01.1", msg), 0);
    assert_null(removed);
    assert_true(cJSON_Compare(out, data, true));
    cJSON_Delete(out);
    /* a dataset with no entry: nothing to remove */
    assert_int_equal(dataset_index_remove(&out, &removed, data, "kfm.none", "1", msg), 0);
    assert_null(removed);
    assert_true(cJSON_Compare(out, data, true));
    cJSON_Delete(out);
    assert_int_equal(dataset_index_remove(&out, &removed, NULL, "kfm.none", "1", msg), 0);
    assert_null(out->child);
    cJSON_Delete(out);
    /* this version's: removed, and returned */
    assert_int_equal(dataset_index_remove(&out, &removed, data, "kfm.hydrology.wells", "2026-03-01.1", msg), 0);
    assert_string_equal(removed, v1);
    assert_null(json_get(out, "kfm.hydrology.wells", NULL));
    assert_non_null(json_get(out, "kfm.other", NULL));
    assert_non_null(json_get(data, "kfm.hydrology.wells", NULL)); /* the input is not touched */
    free(removed);
    cJSON_Delete(out);
    /* a key that holds no entry: blocked */
    cJSON_ReplaceItemInObject(data, "kfm.hydrology.wells", cJSON_CreateString("[]"));
    assert_int_equal(dataset_index_remove(&out, &removed, data, "kfm.hydrology.wells", "1", msg), MB_EINVAL);
    assert_null(out);
    assert_null(removed);
    assert_non_null(strstr(msg, "holds no index entry"));
    cJSON_Delete(data);
    free(v1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_label), cmocka_unit_test(test_entry),  cmocka_unit_test(test_update),
        cmocka_unit_test(test_size_limit),   cmocka_unit_test(test_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * dataset/prov: the catalog-prov gate on PROV-JSON: the kfm prefix, the
 * version's entity by kfm:dataset_version_id (plain, typed or a list), and a
 * wasGeneratedBy naming it, qualified names compared by the IRI they stand
 * for.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dataset/prov.h"
#include "util/error.h"

#include <string.h>

static char msg[DATASET_MSG_MAX];

static int judge_spec(const char *doc, const char *spec_json)
{
    cJSON *spec = cJSON_Parse(spec_json);
    int rc;
    assert_non_null(spec);
    msg[0] = '\0';
    rc = dataset_prov_judge(doc, strlen(doc), spec, msg);
    cJSON_Delete(spec);
    return rc;
}

static int judge(const char *doc)
{
    return judge_spec(doc, "{\"versionID\":\"2026-03-01.1\"}");
}

static void passes(const char *doc)
{
    int rc = judge(doc);
    if (rc != 0)
        fail_msg("expected to pass, got %d: %s\n%s", rc, msg, doc);
}

static void fails(const char *doc, const char *needle)
{
    int rc = judge(doc);
    if (rc != MB_EINVAL)
        fail_msg("expected MB_EINVAL, got %d (%s)\n%s", rc, msg, doc);
    if (!strstr(msg, needle))
        fail_msg("message \"%s\" does not contain \"%s\"", msg, needle);
}

#define PREFIX "\"prefix\":{\"kfm\":\"https://kfm.example/ns/\",\"ex\":\"https://kfm.example/ns/\"}"
#define GEN(e) ",\"wasGeneratedBy\":{\"_:g1\":{\"prov:entity\":" e ",\"prov:activity\":\"kfm:promote\"}}"

static void test_passes(void **state)
{
    (void)state;
    passes("{" PREFIX ",\"entity\":{\"kfm:v1\":{\"kfm:dataset_version_id\":\"2026-03-01.1\"}}" GEN("\"kfm:v1\"") "}");
    /* typed, as prov writes a literal with a datatype */
    passes("{" PREFIX
           ",\"entity\":{\"kfm:v1\":{\"kfm:dataset_version_id\":{\"$\":\"2026-03-01.1\",\"type\":\"xsd:string\"}}}" GEN(
               "\"kfm:v1\"") "}");
    /* several values, as prov writes a multi-valued attribute */
    passes("{" PREFIX
           ",\"entity\":{\"kfm:raw\":{\"kfm:dataset_version_id\":\"raw\"},\"kfm:v1\":{\"kfm:dataset_version_id\":"
           "[\"x\",{\"$\":\"2026-03-01.1\",\"type\":\"kfm:VersionID\"}]}}" GEN("\"kfm:v1\"") "}");
    /* the same IRI under another prefix, for the attribute and for the entity */
    passes("{" PREFIX ",\"entity\":{\"ex:v1\":{\"ex:dataset_version_id\":\"2026-03-01.1\"}}" GEN("\"kfm:v1\"") "}");
    /* the entity in the default namespace, referred to by prefix; a typed reference */
    passes("{\"prefix\":{\"kfm\":\"https://kfm.example/ns/\",\"default\":\"https://kfm.example/ns/\"},"
           "\"entity\":{\"v1\":{\"kfm:dataset_version_id\":\"2026-03-01.1\"}}" GEN(
               "{\"$\":\"kfm:v1\",\"type\":\"prov:QUALIFIED_NAME\"}") "}");
}

static void test_fails(void **state)
{
    (void)state;
    fails("{\"entity\":{}}", "does not declare the prefix kfm");
    fails("{\"prefix\":{\"kfm\":5}}", "does not declare the prefix kfm");
    fails("{" PREFIX "}", "has no entity whose kfm:dataset_version_id is spec.versionID \"2026-03-01.1\"");
    fails("{" PREFIX ",\"entity\":{\"kfm:v1\":{\"kfm:dataset_version_id\":\"2026-02-01.1\"}}}", "has no entity whose");
    fails("{" PREFIX ",\"entity\":{\"kfm:v1\":{\"kfm:other\":\"2026-03-01.1\"}}}", "has no entity whose");
    fails("{\"prefix\":{\"kfm\":\"https://kfm.example/ns/\",\"other\":\"https://x.example/\"},\"entity\":{\"kfm:v1\":"
          "{\"other:dataset_version_id\":\"2026-03-01.1\"}}}",
          "has no entity whose");
    fails("{" PREFIX ",\"entity\":{\"kfm:v1\":{\"kfm:dataset_version_id\":\"2026-03-01.1\"}}}",
          "has no wasGeneratedBy relation whose prov:entity is kfm:v1");
    fails("{" PREFIX ",\"entity\":{\"kfm:v1\":{\"kfm:dataset_version_id\":\"2026-03-01.1\"}}" GEN("\"kfm:v2\"") "}",
          "has no wasGeneratedBy relation whose prov:entity is kfm:v1, the entity of version \"2026-03-01.1\"");
    fails("{" PREFIX ",\"entity\":{\"kfm:v1\":{\"kfm:dataset_version_id\":\"2026-03-01.1\"}},\"wasGeneratedBy\":"
          "{\"_:g\":{\"prov:activity\":\"kfm:a\"}},\"used\":{\"_:u\":{\"prov:entity\":\"kfm:v1\"}}}",
          "has no wasGeneratedBy relation");
    /* maps written as arrays (found by fuzz_prov): no entity, no relation, and no crash */
    fails("{" PREFIX ",\"entity\":[{\"kfm:dataset_version_id\":\"2026-03-01.1\"}]}", "has no entity whose");
    fails("{" PREFIX ",\"entity\":{\"kfm:v1\":[{\"$\":\"2026-03-01.1\"}]}}", "has no entity whose");
    fails("{" PREFIX ",\"entity\":{\"kfm:v1\":{\"kfm:dataset_version_id\":\"2026-03-01.1\"}},\"wasGeneratedBy\":"
          "[{\"prov:entity\":\"kfm:v1\"}]}",
          "has no wasGeneratedBy relation");
    fails("[]", "is not a JSON object");
    fails("nope", "is not JSON");
    assert_int_equal(judge_spec("{}", "{}"), MB_EINVAL);
    assert_non_null(strstr(msg, "spec.versionID is empty"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passes),
        cmocka_unit_test(test_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

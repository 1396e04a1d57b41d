/*
 * Allocation-failure torture of the dataset judges (test/support/torture.h):
 * the DCAT gate through the JSON-LD reader (contexts, nested and flattened
 * nodes), the STAC gate and its links, the PROV gate, the license gate, the
 * index entry and the index updates. Each run with a refused allocation must
 * return MB_ENOMEM (or the input's own verdict) and free everything; every
 * run that succeeds must make the same result.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dataset/dcat.h"
#include "dataset/index.h"
#include "dataset/license.h"
#include "dataset/prov.h"
#include "dataset/stac.h"
#include "torture.h"
#include "util/error.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

#define A "https://store.kfm.example/processed/wells.parquet"
#define B "https://store.kfm.example/processed/wells.csv"
#define DCAT "http://www.w3.org/ns/dcat#"
#define DCT "http://purl.org/dc/terms/"
#define REF1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"

static const char *spec_text =
    "{\"datasetID\":\"kfm.hydrology.wells\",\"versionID\":\"2026-03-01.1\",\"license\":\"CC-BY-4.0\","
    "\"policyLabel\":\"public\",\"artifacts\":[{\"url\":\"" A "\"},{\"url\":\"" B "\"}],"
    "\"catalog\":{\"dcat\":{\"url\":\"https://store.kfm.example/catalog/dcat.jsonld\"},"
    "\"stac\":{\"url\":\"https://store.kfm.example/catalog/collection.json\"},"
    "\"prov\":{\"url\":\"https://store.kfm.example/catalog/prov.json\"}}}";

/* cJSON's parser reports a refused allocation as text it could not parse */
static bool parse_refused(void *ctx, int rc)
{
    (void)ctx;
    return rc == MB_EINVAL && strstr(mb_error_last(), "is not JSON") != NULL;
}

typedef struct {
    const cJSON *spec;
    const char *doc;
    const char *needle; /* the failing verdict's message, or NULL */
    char msg[DATASET_MSG_MAX];
    dataset_dcat_result dcat;
    dataset_stac_result stac;
    char **links;
    transcript t;
} judge_ctx;

static void needle_check(judge_ctx *c)
{
    if (c->needle && !strstr(c->msg, c->needle))
        fail_msg("\"%s\" does not contain \"%s\"", c->msg, c->needle);
}

static int dcat_run(void *arg)
{
    judge_ctx *c = arg;
    int rc = dataset_dcat_judge(&c->dcat, c->doc, strlen(c->doc), c->spec, c->msg);
    if (rc == MB_EINVAL && c->needle && !strstr(c->msg, c->needle) && !strstr(c->msg, "is not JSON"))
        fail_msg("a refused allocation surfaced as \"%s\"", c->msg);
    return rc;
}

static void dcat_check(void *arg)
{
    judge_ctx *c = arg;
    if (c->needle) {
        /* a failing verdict: its message, unless the parse was refused memory (see parse_refused) */
        if (!strstr(c->msg, "is not JSON"))
            needle_check(c);
        return;
    }
    transcript_reset(&c->t);
    for (size_t i = 0; i < c->dcat.ndownloads; i++)
        tprintf(&c->t, "download %s\n", c->dcat.downloads[i]);
    for (size_t i = 0; i < c->dcat.nlicenses; i++)
        tprintf(&c->t, "license %s\n", c->dcat.licenses[i]);
    transcript_check(&c->t);
}

static void dcat_clear(void *arg)
{
    judge_ctx *c = arg;
    dataset_dcat_result_free(&c->dcat);
}

static void run_dcat(const char *name, const char *doc, int expect, const char *needle)
{
    cJSON *spec = cJSON_Parse(spec_text);
    judge_ctx c = {.spec = spec, .doc = doc, .needle = needle};
    torture_case tc = {.name = name,
                       .run = dcat_run,
                       .check = dcat_check,
                       .clear = dcat_clear,
                       .ctx = &c,
                       .expect = expect,
                       .allowed = parse_refused,
                       .may_succeed = true /* a URL libcurl refused for want of memory is resolved again */};
    assert_true(torture_check(&tc) > 0);
    if (needle) {
        assert_int_equal(dcat_run(&c), expect);
        needle_check(&c);
        dcat_clear(&c);
    }
    transcript_free(&c.t);
    cJSON_Delete(spec);
}

static void test_dcat(void **state)
{
    (void)state;
    run_dcat("dcat compact, nested, context array",
             "{\"@context\":[\"https://www.w3.org/ns/dcat.jsonld\",{\"@base\":\"https://store.kfm.example/processed/"
             "\",\"ex\":\"https://ex.example/\",\"dl\":{\"@id\":"
             "\"dcat:downloadURL\",\"@type\":\"@id\"}}],\"type\":\"Dataset\",\"identifier\":\"kfm.hydrology.wells\","
             "\"license\":\"https://spdx.org/licenses/CC-BY-4.0\",\"distribution\":[{\"dl\":\"../processed/"
             "wells.csv\"},"
             "{\"@context\":{\"@vocab\":\"" DCAT "\"},\"downloadURL\":{\"@id\":\"" A "\"}}]}",
             0, NULL);
    run_dcat("dcat expanded, flattened",
             "[{\"@id\":\"https://c/ds\",\"@type\":[\"" DCAT "Dataset\"],\"" DCT
             "identifier\":[{\"@value\":\"kfm.hydrology.wells\"}],\"" DCAT
             "distribution\":[{\"@id\":\"https://c/d\"}]},{\"@graph\":[{\"@id\":\"https://c/d\",\"" DCAT
             "downloadURL\":[{\"@id\":\"" B "\"}],\"" DCT "license\":[{\"@list\":[\"CC-BY-4.0\"]}]}]}]",
             0, NULL);
    run_dcat("dcat, a download URL not among the artifacts",
             "{\"@context\":{\"dcat\":\"" DCAT "\",\"dct\":\"" DCT "\"},\"@type\":\"dcat:Dataset\",\"dct:identifier\":"
             "\"kfm.hydrology.wells\",\"dcat:distribution\":{\"dcat:downloadURL\":\"https://x.example/y\"}}",
             MB_EINVAL, "is not among spec.artifacts[].url");
    run_dcat("dcat, an unknown remote context", "{\"@context\":\"https://example.org/c.jsonld\"}", MB_EINVAL,
             "remote @context \"https://example.org/c.jsonld\"");
}

static int stac_run(void *arg)
{
    judge_ctx *c = arg;
    int rc = dataset_stac_judge(&c->stac, c->doc, strlen(c->doc), c->spec, c->msg);
    if (rc < 0)
        return rc;
    return dataset_stac_links(&c->links, c->doc, strlen(c->doc), json_str(c->spec, "catalog", "stac", "url", NULL),
                              c->msg);
}

static void stac_check(void *arg)
{
    judge_ctx *c = arg;
    transcript_reset(&c->t);
    tprintf(&c->t, "license %s\n", c->stac.license ? c->stac.license : "-");
    for (size_t i = 0; c->links && c->links[i]; i++)
        tprintf(&c->t, "link %s\n", c->links[i]);
    transcript_check(&c->t);
}

static void stac_clear(void *arg)
{
    judge_ctx *c = arg;
    dataset_stac_result_free(&c->stac);
    dataset_stac_links_free(c->links);
    c->links = NULL;
}

static void test_stac(void **state)
{
    (void)state;
    cJSON *spec = cJSON_Parse(spec_text);
    judge_ctx c = {.spec = spec,
                   .doc = "{\"type\":\"Collection\",\"stac_version\":\"1.1.0\",\"id\":\"w\",\"license\":\"CC-BY-4.0\","
                          "\"links\":[{\"rel\":\"self\",\"href\":\"./collection.json\"},{\"rel\":\"root\",\"href\":"
                          "\"../root.json\"},{\"rel\":\"license\",\"href\":\"https://spdx.org/licenses/CC-BY-4.0\"}],"
                          "\"assets\":{\"p\":{\"href\":\"../processed/wells.parquet\"},\"c\":{\"href\":\"" B "\"}}}"};
    torture_case tc = {.name = "stac judge and links",
                       .run = stac_run,
                       .check = stac_check,
                       .clear = stac_clear,
                       .ctx = &c,
                       .allowed = parse_refused,
                       .may_succeed = true /* as in run_dcat */};
    assert_true(torture_check(&tc) > 0);
    transcript_free(&c.t);
    cJSON_Delete(spec);
}

static int prov_run(void *arg)
{
    judge_ctx *c = arg;
    return dataset_prov_judge(c->doc, strlen(c->doc), c->spec, c->msg);
}

static void test_prov(void **state)
{
    (void)state;
    cJSON *spec = cJSON_Parse(spec_text);
    judge_ctx c =
        {.spec = spec,
         .doc = "{\"prefix\":{\"kfm\":\"https://kfm.example/ns/\",\"default\":\"https://kfm.example/ns/\"},"
                "\"entity\":{\"kfm:raw\":{\"kfm:dataset_version_id\":\"raw\"},\"v1\":{\"kfm:dataset_version_id\":"
                "[{\"$\":\"2026-03-01.1\",\"type\":\"xsd:string\"}]}},\"wasGeneratedBy\":{\"_:g\":{\"prov:entity\":"
                "\"kfm:v1\"}}}"};
    torture_case tc = {.name = "prov judge", .run = prov_run, .ctx = &c, .allowed = parse_refused};
    assert_true(torture_check(&tc) > 0);
    c.doc = "{\"prefix\":{\"kfm\":\"https://kfm.example/ns/\"},\"entity\":{\"kfm:v1\":{\"kfm:dataset_version_id\":"
            "\"2026-03-01.1\"}},\"wasGeneratedBy\":{\"_:g\":{\"prov:entity\":\"kfm:v2\"}}}";
    tc.name = "prov judge, no generation";
    tc.expect = MB_EINVAL;
    assert_true(torture_check(&tc) > 0);
    cJSON_Delete(spec);
}

static int license_run(void *arg)
{
    judge_ctx *c = arg;
    const char *dcat[] = {"https://spdx.org/licenses/CC-BY-4.0.html", "CC-BY-4.0"};
    return dataset_license_judge(c->doc, dcat, 2, "CC-BY-4.0", c->msg);
}

static void test_license(void **state)
{
    (void)state;
    judge_ctx c = {.doc = "CC-BY-4.0"};
    torture_case tc = {.name = "license judge", .run = license_run, .ctx = &c};
    assert_true(torture_check(&tc) >= 0);
    c.doc = "GPL-2.0";
    tc.expect = MB_EINVAL;
    assert_true(torture_check(&tc) >= 0);
}

/* the same for an index entry read back from the ConfigMap, or the new entry */
static bool entry_refused(void *ctx, int rc)
{
    (void)ctx;
    return rc == MB_EINVAL && (strstr(mb_error_last(), "holds no index entry") ||
                               strstr(mb_error_last(), "is not an entry with a datasetID"));
}

typedef struct {
    const cJSON *spec;
    const cJSON *data;
    char msg[DATASET_MSG_MAX];
    char *entry, *replaced, *removed;
    cJSON *updated, *after;
    transcript t;
} index_ctx;

static int index_run(void *arg)
{
    index_ctx *c = arg;
    int err = 0;
    if ((err = dataset_index_entry(&c->entry, c->spec, REF1, c->msg)) < 0 ||
        (err = dataset_index_update(&c->updated, &c->replaced, c->data, c->entry, c->msg)) < 0)
        return err;
    return dataset_index_remove(&c->after, &c->removed, c->updated, "kfm.hydrology.wells", "2026-03-01.1", c->msg);
}

static void index_check(void *arg)
{
    index_ctx *c = arg;
    char *u = cJSON_PrintUnformatted(c->updated), *a = cJSON_PrintUnformatted(c->after);
    transcript_reset(&c->t);
    tprintf(&c->t, "entry %s\nreplaced %s\nremoved %s\n", c->entry, c->replaced ? c->replaced : "-",
            c->removed ? c->removed : "-");
    tprintf(&c->t, "updated %s\nafter %s\n", u ? u : "?", a ? a : "?");
    free(u);
    free(a);
    transcript_check(&c->t);
}

static void index_clear(void *arg)
{
    index_ctx *c = arg;
    free(c->entry);
    free(c->replaced);
    free(c->removed);
    cJSON_Delete(c->updated);
    cJSON_Delete(c->after);
    c->entry = c->replaced = c->removed = NULL;
    c->updated = c->after = NULL;
}

static void test_index(void **state)
{
    (void)state;
    cJSON *spec = cJSON_Parse(spec_text);
    cJSON *data = cJSON_Parse("{\"kfm.other\":\"{}\",\"kfm.hydrology.wells\":\"{\\\"versionID\\\":\\\"2026-02-01.1\\\","
                              "\\\"auditRef\\\":\\\"x\\\"}\"}");
    index_ctx c = {.spec = spec, .data = data};
    torture_case tc = {.name = "index entry, update and removal",
                       .run = index_run,
                       .check = index_check,
                       .clear = index_clear,
                       .ctx = &c,
                       .allowed = entry_refused};
    assert_true(torture_check(&tc) > 0);
    transcript_free(&c.t);
    cJSON_Delete(data);
    cJSON_Delete(spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dcat),    cmocka_unit_test(test_stac),  cmocka_unit_test(test_prov),
        cmocka_unit_test(test_license), cmocka_unit_test(test_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The dataset judges on documents the publishers' own libraries wrote:
 * test/fixtures/dataset/generate.py (pystac, stac-valid, prov, rdflib) writes
 * them into a directory, named by the first argument, by
 * $MEMBRANE_DATASET_DOCS, or else the build's dataset-documents/ (CMake runs
 * the generator first, as a test fixture). Without the documents the test
 * fails: it never passes on nothing. Every
 * document passes its gate with the spec generate.py wrote beside it, and
 * fails once mutated (an artifact missing from the spec, another identifier,
 * another version, a field removed, another license).
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
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *docs_dir;
static char msg[DATASET_MSG_MAX];

static char *read_doc(const char *name)
{
    char path[4096];
    FILE *f = NULL;
    char *buf = NULL;
    long n;

    snprintf(path, sizeof(path), "%s/%s", docs_dir, name);
    if (!(f = fopen(path, "rb")))
        fail_msg("cannot open %s (run test/fixtures/dataset/generate.sh %s)", path, docs_dir);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static cJSON *manifest(void)
{
    char *text = read_doc("manifest.json");
    cJSON *m = cJSON_Parse(text);
    free(text);
    if (!m || !json_get(m, "spec", NULL))
        fail_msg("%s/manifest.json is not the generator's manifest", docs_dir);
    return m;
}

/* text with every occurrence of from replaced by to (caller frees); fails when from does not occur */
static char *replace(const char *text, const char *from, const char *to)
{
    size_t lf = strlen(from), lt = strlen(to), count = 0;
    const char *p = text;
    char *out = NULL, *w = NULL;

    while ((p = strstr(p, from))) {
        count++;
        p += lf;
    }
    if (count == 0)
        fail_msg("the mutation finds no \"%s\" in the document", from);
    out = malloc(strlen(text) + count * lt + 1);
    assert_non_null(out);
    w = out;
    for (p = text; *p;) {
        if (strncmp(p, from, lf) == 0) {
            memcpy(w, to, lt);
            w += lt;
            p += lf;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    return out;
}

static void expect_fail(int rc, const char *name, const char *needle)
{
    if (rc != MB_EINVAL)
        fail_msg("%s: expected the mutated document to fail, got %d (%s)", name, rc, msg);
    if (!strstr(msg, needle))
        fail_msg("%s: message \"%s\" does not contain \"%s\"", name, msg, needle);
}

static void test_stac(void **state)
{
    (void)state;
    cJSON *m = manifest();
    cJSON *spec = cJSON_Duplicate(json_get(m, "spec", NULL), 1);
    const cJSON *d = NULL;
    size_t judged = 0;

    cJSON_ArrayForEach(d, json_get(m, "stac", NULL)) {
        const char *name = json_str(d, "file", NULL);
        char *text = read_doc(name), *bad = NULL;
        dataset_stac_result r = {0};
        char **links = NULL;
        size_t nlinks = 0;

        json_set_str(json_ensure_object(spec, "catalog", "stac", NULL), "url", json_str(d, "url", NULL));
        if (dataset_stac_judge(&r, text, strlen(text), spec, msg) != 0)
            fail_msg("%s: the STAC gate fails: %s", name, msg);
        assert_string_equal(r.license, json_str(spec, "license", NULL));
        dataset_stac_result_free(&r);

        /* the links gate's URLs: absolute, and the self link is the document's own URL */
        assert_int_equal(dataset_stac_links(&links, text, strlen(text), json_str(d, "url", NULL), msg), 0);
        for (; links[nlinks]; nlinks++)
            assert_true(strncmp(links[nlinks], "https://", 8) == 0);
        assert_true(nlinks >= 2);
        bool self = false;
        for (size_t i = 0; i < nlinks; i++)
            self = self || strcmp(links[i], json_str(d, "url", NULL)) == 0;
        assert_true(self);
        dataset_stac_links_free(links);

        /* mutated: an artifact the spec does not list */
        bad = replace(text, "wells.parquet\"", "wells-old.parquet\"");
        expect_fail(dataset_stac_judge(&r, bad, strlen(bad), spec, msg), name, "is not among spec.artifacts[].url");
        dataset_stac_result_free(&r);
        free(bad);
        /* mutated: stac_version removed */
        bad = replace(text, "\"stac_version\"", "\"stac_versio\"");
        expect_fail(dataset_stac_judge(&r, bad, strlen(bad), spec, msg), name, "has no stac_version");
        dataset_stac_result_free(&r);
        free(bad);
        /* the same document published at another URL: relative hrefs no longer reach the artifacts */
        if (strcmp(name, "collection.json") == 0) {
            cJSON *moved = cJSON_Duplicate(spec, 1);
            json_set_str(json_ensure_object(moved, "catalog", "stac", NULL), "url",
                         "https://store.kfm.example/catalog/wells/v2/collection.json");
            expect_fail(dataset_stac_judge(&r, text, strlen(text), moved, msg), name, "is not among");
            dataset_stac_result_free(&r);
            cJSON_Delete(moved);
        }
        free(text);
        judged++;
    }
    assert_int_equal(judged, 2);
    cJSON_Delete(spec);
    cJSON_Delete(m);
}

static void test_prov(void **state)
{
    (void)state;
    cJSON *m = manifest();
    const cJSON *spec = json_get(m, "spec", NULL);
    const cJSON *d = NULL;
    size_t judged = 0;

    cJSON_ArrayForEach(d, json_get(m, "prov", NULL)) {
        const char *name = d->valuestring;
        char *text = read_doc(name), *bad = NULL;
        if (dataset_prov_judge(text, strlen(text), spec, msg) != 0)
            fail_msg("%s: the PROV gate fails: %s", name, msg);
        bad = replace(text, "\"2026-03-01.1\"", "\"2026-03-02.1\"");
        expect_fail(dataset_prov_judge(bad, strlen(bad), spec, msg), name, "has no entity whose");
        free(bad);
        bad = replace(text, "\"wasGeneratedBy\"", "\"wasAttributedTo\"");
        expect_fail(dataset_prov_judge(bad, strlen(bad), spec, msg), name, "has no wasGeneratedBy relation");
        free(bad);
        bad = replace(text, "\"kfm\":", "\"kfm2\":");
        expect_fail(dataset_prov_judge(bad, strlen(bad), spec, msg), name, "does not declare the prefix kfm");
        free(bad);
        free(text);
        judged++;
    }
    assert_int_equal(judged, 2);
    cJSON_Delete(m);
}

static void test_dcat_and_license(void **state)
{
    (void)state;
    cJSON *m = manifest();
    const cJSON *spec = json_get(m, "spec", NULL);
    const char *license = json_str(spec, "license", NULL);
    const cJSON *d = NULL;
    size_t judged = 0;
    char *coll = read_doc("collection.json");
    dataset_stac_result stac = {0};

    assert_int_equal(dataset_stac_judge(&stac, coll, strlen(coll), spec, msg), 0);
    cJSON_ArrayForEach(d, json_get(m, "dcat", NULL)) {
        const char *name = d->valuestring;
        char *text = read_doc(name), *bad = NULL;
        dataset_dcat_result r = {0};
        cJSON *fewer = NULL;

        if (dataset_dcat_judge(&r, text, strlen(text), spec, msg) != 0)
            fail_msg("%s: the DCAT gate fails: %s", name, msg);
        assert_int_equal(r.ndownloads, (size_t)cJSON_GetArraySize(json_get(spec, "artifacts", NULL)));
        assert_int_equal(r.nlicenses, 3); /* the dataset's and each distribution's */
        /* the license gate over what both documents declare */
        if (dataset_license_judge(license, (const char *const *)r.licenses, r.nlicenses, stac.license, msg) != 0)
            fail_msg("%s: the license gate fails: %s", name, msg);
        expect_fail(dataset_license_judge("CC-BY-SA-4.0", (const char *const *)r.licenses, r.nlicenses, "CC-BY-SA-4.0",
                                          msg),
                    name, "is not spec.license \"CC-BY-SA-4.0\"");
        dataset_dcat_result_free(&r);

        /* mutated: the spec lists one artifact fewer */
        fewer = cJSON_Duplicate(spec, 1);
        cJSON_DeleteItemFromArray(cJSON_GetObjectItem(fewer, "artifacts"), 0);
        expect_fail(dataset_dcat_judge(&r, text, strlen(text), fewer, msg), name, "is not among spec.artifacts[].url");
        dataset_dcat_result_free(&r);
        cJSON_Delete(fewer);
        /* mutated: another identifier */
        bad = replace(text, "\"kfm.hydrology.wells\"", "\"kfm.hydrology.springs\"");
        expect_fail(dataset_dcat_judge(&r, bad, strlen(bad), spec, msg), name, "(it has \"kfm.hydrology.springs\")");
        dataset_dcat_result_free(&r);
        free(bad);
        /* mutated: the distributions give access URLs, not download URLs */
        bad = replace(text, "downloadURL", "accessURL");
        expect_fail(dataset_dcat_judge(&r, bad, strlen(bad), spec, msg), name, "has no dcat:downloadURL");
        dataset_dcat_result_free(&r);
        free(bad);
        /* mutated: no dcat:Dataset */
        bad = replace(text, "Dataset\"", "Catalog\"");
        expect_fail(dataset_dcat_judge(&r, bad, strlen(bad), spec, msg), name, "has no node of type dcat:Dataset");
        dataset_dcat_result_free(&r);
        free(bad);
        free(text);
        judged++;
    }
    assert_true(judged >= 4);
    dataset_stac_result_free(&stac);
    free(coll);
    cJSON_Delete(m);
}

static void test_index_entry(void **state)
{
    (void)state;
    cJSON *m = manifest();
    char *entry = NULL, *replaced = NULL;
    cJSON *data = NULL;

    assert_int_equal(dataset_index_entry(&entry, json_get(m, "spec", NULL),
                                         "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                                         msg),
                     0);
    assert_int_equal(dataset_index_update(&data, &replaced, NULL, entry, msg), 0);
    assert_string_equal(json_str(data, json_str(m, "spec", "datasetID", NULL), NULL), entry);
    assert_non_null(strstr(entry, "\"catalog\":{\"dcat\":\"https://store.kfm.example/catalog/wells/dcat.jsonld\""));
    cJSON_Delete(data);
    free(entry);
    cJSON_Delete(m);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stac),
        cmocka_unit_test(test_prov),
        cmocka_unit_test(test_dcat_and_license),
        cmocka_unit_test(test_index_entry),
    };
    char probe[4096];
    FILE *f = NULL;

    docs_dir = argc > 1 ? argv[1] : getenv("MEMBRANE_DATASET_DOCS");
#ifdef DATASET_DOCS
    if (!docs_dir || !*docs_dir)
        docs_dir = DATASET_DOCS; /* where the build's ctest fixture writes them */
#endif
    if (!docs_dir || !*docs_dir) {
        fprintf(stderr, "test_libraries: no documents to judge: pass the directory test/fixtures/dataset/generate.sh "
                        "wrote, or set MEMBRANE_DATASET_DOCS\n");
        return 1;
    }
    snprintf(probe, sizeof(probe), "%s/manifest.json", docs_dir);
    if (!(f = fopen(probe, "rb"))) {
        fprintf(stderr, "test_libraries: %s is missing: run test/fixtures/dataset/generate.sh %s\n", probe, docs_dir);
        return 1;
    }
    fclose(f);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

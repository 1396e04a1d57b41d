/*
 * Fixtures shared by the tests of dataset_decide (test_decide.c and its
 * allocation-failure torture): a promotion of generation 3 with two
 * artifacts, catalog documents that pass every judge, and the work of a
 * generation whose transfers all came back good, to be spoilt one at a time.
 */
#ifndef TEST_DATASET_DECIDE_FIXTURE_H
#define TEST_DATASET_DECIDE_FIXTURE_H

#include "dataset/decide.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#define FX_NOW 1790000000
#define FX_A "https://catalog.kfm.example/store/wells.parquet"
#define FX_B "https://store.kfm.example/wells/wells.csv"
#define FX_STAC_URL "https://catalog.kfm.example/wells/collection.json"
#define FX_HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FX_HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define FX_HEX_D "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"

#define FX_DCAT                                                                                                        \
    "{\"@context\":{\"dcat\":\"http://www.w3.org/ns/dcat#\",\"dct\":\"http://purl.org/dc/terms/\"},"                   \
    "\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.hydrology.wells\",\"dct:license\":\"CC-BY-4.0\","             \
    "\"dcat:distribution\":[{\"dcat:downloadURL\":{\"@id\":\"" FX_A "\"}},{\"dcat:downloadURL\":{\"@id\":\"" FX_B      \
    "\"}}]}"
#define FX_STAC                                                                                                        \
    "{\"type\":\"Collection\",\"stac_version\":\"1.1.0\",\"id\":\"wells\",\"license\":\"CC-BY-4.0\","                  \
    "\"links\":[{\"rel\":\"self\",\"href\":\"collection.json\"},{\"rel\":\"license\","                                 \
    "\"href\":\"https://spdx.org/licenses/CC-BY-4.0\"},{\"rel\":\"related\",\"href\":\"https://elsewhere.example/"     \
    "\"}],"                                                                                                            \
    "\"assets\":{\"p\":{\"href\":\"../../store/wells.parquet\"},\"c\":{\"href\":\"" FX_B "\"}}}"
#define FX_PROV                                                                                                        \
    "{\"prefix\":{\"kfm\":\"https://kfm.example/ns/\"},\"entity\":{\"kfm:v1\":{\"kfm:dataset_version_id\":"            \
    "\"2026-03-01.1\"}},\"wasGeneratedBy\":{\"_:g1\":{\"prov:entity\":\"kfm:v1\",\"prov:activity\":\"kfm:promote\"}}}"

typedef struct {
    cJSON *p, *index;
    dataset_item art[2], links[2];
    const char *link_urls[3];
    dataset_observed obs;
    dataset_plan plan;
    char text[8192];
} dfx;

/* The promotion with the finalizer; spec_extra: more members of spec (JSON without braces, may be ""). */
static inline cJSON *dfx_promotion(const char *license, const char *extra)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"governance.kfm.dev/v1alpha1\",\"kind\":\"DatasetPromotion\","
             "\"metadata\":{\"name\":\"wells-1\",\"namespace\":\"kfm\",\"uid\":\"u-1\",\"generation\":3,"
             "\"finalizers\":[\"governance.kfm.dev/published-index\"]},"
             "\"spec\":{\"datasetID\":\"kfm.hydrology.wells\",\"versionID\":\"2026-03-01.1\",\"license\":\"%s\","
             "\"policyLabel\":\"public\",\"artifacts\":["
             "{\"name\":\"wells.parquet\",\"url\":\"" FX_A "\","
             "\"digest\":\"sha256:" FX_HEX_A "\",\"sizeBytes\":100},"
             "{\"name\":\"wells.csv\",\"url\":\"" FX_B "\",\"digest\":\"sha256:" FX_HEX_B "\"}],"
             "\"catalog\":{\"dcat\":{\"url\":\"https://catalog.kfm.example/wells/dcat.jsonld\"},"
             "\"stac\":{\"url\":\"" FX_STAC_URL
             "\"},\"prov\":{\"url\":\"https://catalog.kfm.example/wells/prov.json\"}},"
             "\"publish\":{\"indexConfigMap\":\"kfm-published-datasets\"},\"revoke\":false%s%s}}",
             license, extra[0] ? "," : "", extra);
    return cJSON_Parse(text);
}

/* Every transfer of the generation came back good. */
static inline void dfx_good_work(dfx *f)
{
    static const char *const docs[] = {FX_DCAT, FX_STAC, FX_PROV};
    memset(&f->obs.work, 0, sizeof(f->obs.work));
    f->art[0] =
        (dataset_item){.state = DATASET_ITEM_DONE, .sha256_hex = FX_HEX_A, .bytes = 100, .total = 100, .status = 200};
    f->art[1] =
        (dataset_item){.state = DATASET_ITEM_DONE, .sha256_hex = FX_HEX_B, .bytes = 7, .total = -1, .status = 200};
    for (int k = 0; k < DATASET_NDOCS; k++)
        f->obs.work.docs[k] = (dataset_item){.state = DATASET_ITEM_DONE,
                                             .sha256_hex = FX_HEX_D,
                                             .body = docs[k],
                                             .len = strlen(docs[k]),
                                             .status = 200};
    f->links[0] = (dataset_item){.state = DATASET_ITEM_DONE, .status = 200};
    f->links[1] = (dataset_item){.state = DATASET_ITEM_DONE, .status = 200};
    f->link_urls[0] = FX_STAC_URL;
    f->link_urls[1] = "https://spdx.org/licenses/CC-BY-4.0";
    f->link_urls[2] = NULL;
    f->obs.work.artifacts = f->art;
    f->obs.work.nartifacts = 2;
    f->obs.work.links = f->links;
    f->obs.work.link_urls = f->link_urls;
    f->obs.work.nlinks = 2;
    f->obs.work.links_listed = true;
}

#endif

/*
 * libFuzzer target for the catalog-stac gate and the links of the links
 * gate: the input is a STAC document judged for a fixed spec (its URL the
 * base of relative hrefs). Checked properties: the verdict is 0, MB_EINVAL
 * with a message, or MB_ENOMEM; a pass comes with the document's license
 * exactly as written; every link returned is an absolute URL that resolves
 * to itself (already normalized); judging again gives the same verdict.
 */
#include "dataset/stac.h"
#include "dataset/urls.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BASE "https://store.kfm.example/catalog/wells/collection.json"

static cJSON *spec;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mb_log_setup(MB_LOG_TEXT, MB_LOG_ERROR, NULL);
    spec = cJSON_Parse(
        "{\"datasetID\":\"kfm.hydrology.wells\",\"versionID\":\"2026-03-01.1\",\"license\":\"CC-BY-4.0\","
        "\"artifacts\":[{\"url\":\"https://store.kfm.example/processed/wells/2026-03-01.1/wells.parquet\"},"
        "{\"url\":\"https://store.kfm.example/processed/wells/2026-03-01.1/wells.csv\"}],"
        "\"catalog\":{\"stac\":{\"url\":\"" BASE "\"}}}");
    return spec ? 0 : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[DATASET_MSG_MAX], msg2[DATASET_MSG_MAX];
    dataset_stac_result r = {0}, r2 = {0};
    char **links = NULL;
    int rc = dataset_stac_judge(&r, (const char *)data, size, spec, msg);
    int rc2 = dataset_stac_judge(&r2, (const char *)data, size, spec, msg2);
    int lrc = 0;

    if (rc != 0 && rc != MB_EINVAL && rc != MB_ENOMEM)
        abort();
    if (rc < 0 && !msg[0])
        abort();
    if (rc != rc2 || (rc < 0 && strcmp(msg, msg2) != 0) || !r.license != !r2.license ||
        (r.license && strcmp(r.license, r2.license) != 0))
        abort();
    if (rc == 0) {
        cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
        const char *lic = json_str(doc, "type", NULL) && !strcmp(json_str(doc, "type", NULL), "Feature")
                              ? json_str(doc, "properties", "license", NULL)
                              : NULL;
        if (!lic)
            lic = json_str(doc, "license", NULL);
        if (!doc || !lic != !r.license || (lic && strcmp(lic, r.license) != 0))
            abort();
        cJSON_Delete(doc);
    }
    lrc = dataset_stac_links(&links, (const char *)data, size, BASE, msg);
    if (lrc != 0 && lrc != MB_EINVAL && lrc != MB_ENOMEM)
        abort();
    if ((lrc == 0) != (links != NULL))
        abort();
    for (size_t i = 0; links && links[i]; i++) {
        char *again = NULL;
        if (dataset_url_resolve(&again, NULL, links[i]) != 0 || strcmp(again, links[i]) != 0)
            abort();
        free(again);
    }
    dataset_stac_links_free(links);
    dataset_stac_result_free(&r);
    dataset_stac_result_free(&r2);
    return 0;
}

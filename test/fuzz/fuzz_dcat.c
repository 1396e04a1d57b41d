/*
 * libFuzzer target for the catalog-dcat gate and its JSON-LD reader: the
 * input is a DCAT document (any JSON-LD) judged for a fixed spec. Checked
 * properties: the verdict is 0 or MB_EINVAL with a message (never another
 * code but MB_ENOMEM); a pass has at least one download URL and every one is
 * among the spec's artifacts; judging the same bytes again gives the same
 * verdict, message and results.
 */
#include "dataset/dcat.h"
#include "dataset/urls.h"
#include "util/error.h"
#include "util/log.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
        "\"catalog\":{\"dcat\":{\"url\":\"https://store.kfm.example/catalog/wells/dcat.jsonld\"}}}");
    return spec ? 0 : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[DATASET_MSG_MAX], msg2[DATASET_MSG_MAX];
    dataset_dcat_result r = {0}, r2 = {0};
    int rc = dataset_dcat_judge(&r, (const char *)data, size, spec, msg);
    int rc2 = dataset_dcat_judge(&r2, (const char *)data, size, spec, msg2);

    if (rc != 0 && rc != MB_EINVAL && rc != MB_ENOMEM)
        abort();
    if (rc < 0 && (!msg[0] || strlen(msg) >= DATASET_MSG_MAX))
        abort();
    if (rc != rc2 || (rc < 0 && strcmp(msg, msg2) != 0) || r.ndownloads != r2.ndownloads || r.nlicenses != r2.nlicenses)
        abort();
    for (size_t i = 0; i < r.ndownloads; i++)
        if (strcmp(r.downloads[i], r2.downloads[i]) != 0)
            abort();
    for (size_t i = 0; i < r.nlicenses; i++)
        if (strcmp(r.licenses[i], r2.licenses[i]) != 0)
            abort();
    if (rc == 0) {
        if (r.ndownloads == 0)
            abort();
        for (size_t i = 0; i < r.ndownloads; i++) {
            bool among = false;
            if (dataset_url_among_artifacts(&among, r.downloads[i], spec) == 0 && !among)
                abort();
        }
    }
    dataset_dcat_result_free(&r);
    dataset_dcat_result_free(&r2);
    return 0;
}

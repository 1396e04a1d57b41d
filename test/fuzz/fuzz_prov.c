/*
 * libFuzzer target for the catalog-prov gate: the input is a PROV-JSON
 * document judged for a fixed versionID. Checked properties: the verdict is
 * 0, MB_EINVAL with a message, or MB_ENOMEM; a pass means the document
 * declares the prefix kfm and has an entity map and a wasGeneratedBy map;
 * judging again gives the same verdict and message.
 */
#include "dataset/prov.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static cJSON *spec;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mb_log_setup(MB_LOG_TEXT, MB_LOG_ERROR, NULL);
    spec = cJSON_Parse("{\"datasetID\":\"kfm.hydrology.wells\",\"versionID\":\"2026-03-01.1\"}");
    return spec ? 0 : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[DATASET_MSG_MAX], msg2[DATASET_MSG_MAX];
    int rc = dataset_prov_judge((const char *)data, size, spec, msg);
    int rc2 = dataset_prov_judge((const char *)data, size, spec, msg2);

    if (rc != 0 && rc != MB_EINVAL && rc != MB_ENOMEM)
        abort();
    if (rc != rc2 || (rc < 0 && (!msg[0] || strcmp(msg, msg2) != 0)))
        abort();
    if (rc == 0) {
        cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
        if (!doc || !json_str(doc, "prefix", "kfm", NULL) || !cJSON_IsObject(json_get(doc, "entity", NULL)) ||
            !cJSON_IsObject(json_get(doc, "wasGeneratedBy", NULL)))
            abort();
        cJSON_Delete(doc);
    }
    return 0;
}

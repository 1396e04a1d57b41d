/*
 * libFuzzer target for the YAML reader under the kubeconfig loader (and the
 * manifests and CRDs membrane reads): the input is a YAML stream, parsed both
 * as its first document and as all of its documents, without a trailing NUL.
 * A parse that succeeds must give a tree that nests collections at most
 * MB_YAML_MAX_DEPTH deep (however anchors, aliases and merge keys combine)
 * and that cJSON can print and read back, and the stream's documents must be
 * an array; one that fails must say why.
 */
#include "util/error.h"
#include "util/log.h"
#include "util/yaml.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>

/* Collections on the deepest path: 0 for a scalar. */
static int collection_depth(const cJSON *v)
{
    int deepest = 0;
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
        return 0;
    for (const cJSON *c = v->child; c; c = c->next) {
        int d = collection_depth(c);
        if (d > deepest)
            deepest = d;
    }
    return deepest + 1;
}

/* extra: the levels the caller adds above the documents (1 for the array of parse_all) */
static void check(int err, const cJSON *doc, int extra)
{
    char *printed = NULL;
    cJSON *back = NULL;

    if (err < 0) {
        if (doc || (err != MB_EINVAL && err != MB_ENOMEM) || mb_error_last()[0] == '\0')
            abort();
        return;
    }
    if (!doc || collection_depth(doc) > MB_YAML_MAX_DEPTH + extra)
        abort();
    if (!(printed = cJSON_PrintUnformatted(doc)) || !(back = cJSON_Parse(printed)))
        abort();
    cJSON_Delete(back);
    cJSON_free(printed);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mb_log_setup(MB_LOG_TEXT, MB_LOG_ERROR, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *doc = NULL, *all = NULL;
    int err;

    err = mb_yaml_parse(&doc, (const char *)data, size, "fuzz");
    check(err, doc, 0);
    err = mb_yaml_parse_all(&all, (const char *)data, size, "fuzz");
    check(err, all, 1);
    if (err == 0 && !cJSON_IsArray(all))
        abort();
    cJSON_Delete(all);
    cJSON_Delete(doc);
    return 0;
}

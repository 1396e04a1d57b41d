/*
 * The published index entry and the pure updates of the index ConfigMap's
 * data: add or replace on promotion, remove on revocation.
 */
#include "dataset/index.h"
#include "util/text.h"

#include "audit/canonical.h"
#include "util/error.h"
#include "util/json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char *const labels[] = {"public", "restricted", "sensitive"};

int dataset_policy_label_judge(const cJSON *spec, char msg[DATASET_MSG_MAX])
{
    const char *label = json_str(spec, "policyLabel", NULL);
    for (size_t i = 0; label && i < sizeof(labels) / sizeof(labels[0]); i++)
        if (strcmp(label, labels[i]) == 0)
            return 0;
    return dataset_fail(msg, MB_EINVAL, "spec.policyLabel %s%.50s%s is not public, restricted or sensitive: set one",
                        label ? "\"" : "", label ? label : "is missing and", label ? "\"" : "");
}

/* A ConfigMap data key: 1 to 253 of [-._a-zA-Z0-9]. */
static bool configmap_key(const char *k)
{
    size_t n = k ? strlen(k) : 0;
    if (n == 0 || n > 253)
        return false;
    for (; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') || *k == '-' ||
              *k == '_' || *k == '.'))
            return false;
    return true;
}

int dataset_index_entry(char **out, const cJSON *spec, const char *audit_ref, char msg[DATASET_MSG_MAX])
{
    static const char *const docs[] = {"dcat", "prov", "stac"};
    const char *id = json_str(spec, "datasetID", NULL);
    const char *version = json_str(spec, "versionID", NULL);
    const char *license = json_str(spec, "license", NULL);
    cJSON *e = NULL, *catalog = NULL;
    int err = 0;

    *out = NULL;
    if (!configmap_key(id))
        return dataset_fail(msg, MB_EINVAL,
                            "spec.datasetID \"%.100s\" cannot be a key of the index ConfigMap: use 1 to 253 letters, "
                            "digits, '-', '_' or '.'",
                            id ? id : "");
    if (!version || !*version)
        return dataset_fail(msg, MB_EINVAL, "spec.versionID is empty: set the dataset version's identifier");
    if (!license || !*license)
        return dataset_fail(msg, MB_EINVAL, "spec.license is empty: set an SPDX license identifier");
    if ((err = dataset_policy_label_judge(spec, msg)) < 0)
        return err;
    if (!mb_sha256_digest_valid(audit_ref))
        return dataset_fail(msg, MB_EINVAL, "the auditRef \"%.80s\" of the index entry is not sha256:<64 hex>",
                            audit_ref ? audit_ref : "");
    if (!(e = cJSON_CreateObject()) || !(catalog = cJSON_AddObjectToObject(e, "catalog")))
        goto nomem;
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        const char *url = json_str(spec, "catalog", docs[i], "url", NULL);
        if (json_set_str(catalog, docs[i], url ? url : "") < 0)
            goto nomem;
    }
    if (json_set_str(e, "auditRef", audit_ref) < 0 || json_set_str(e, "datasetID", id) < 0 ||
        json_set_str(e, "license", license) < 0 ||
        json_set_str(e, "policyLabel", json_str(spec, "policyLabel", NULL)) < 0 ||
        json_set_str(e, "versionID", version) < 0)
        goto nomem;
    if ((err = audit_canonical_json(out, NULL, e)) < 0) {
        err = err == MB_ENOMEM
                  ? dataset_nomem(msg)
                  : dataset_fail(msg, MB_EINVAL, "the index entry has no canonical form: %s", mb_error_last());
    }
    cJSON_Delete(e);
    return err;
nomem:
    cJSON_Delete(e);
    return dataset_nomem(msg);
}

/* cJSON_Parse, where text that parses a second time was a failed allocation (*nomem). */
static cJSON *parse_entry(const char *text, bool *nomem)
{
    cJSON *e = cJSON_Parse(text), *again = NULL;
    *nomem = false;
    if (!e && text && (again = cJSON_Parse(text))) {
        cJSON_Delete(again);
        *nomem = true;
    }
    return e;
}

/* The entry text at key in data parsed, with its versionID; MB_EINVAL when it is not an entry. */
static int read_entry(cJSON **out, const char **version, const char *key, const char *text, char msg[DATASET_MSG_MAX])
{
    bool nomem = false;
    cJSON *e = parse_entry(text, &nomem);

    *out = NULL;
    if (nomem)
        return dataset_nomem(msg);
    if (!e || !(*version = json_str(e, "versionID", NULL))) {
        cJSON_Delete(e);
        return dataset_fail(msg, MB_EINVAL,
                            "the index ConfigMap's key \"%.100s\" holds no index entry (JSON with a versionID): "
                            "remove or repair that key",
                            key);
    }
    *out = e;
    return 0;
}

static long data_bytes(const cJSON *data)
{
    const cJSON *v = NULL;
    long n = 0;
    cJSON_ArrayForEach(v, data) {
        n += (long)strlen(v->string);
        if (cJSON_IsString(v))
            n += (long)strlen(v->valuestring);
    }
    return n;
}

int dataset_index_update(cJSON **out, char **replaced, const cJSON *data, const char *entry, char msg[DATASET_MSG_MAX])
{
    cJSON *next = NULL, *e = NULL, *old = NULL;
    const char *id = NULL, *version = NULL, *old_version = NULL, *current = NULL;
    char *was = NULL;
    long size = 0;
    int err = 0;

    *out = NULL;
    *replaced = NULL;
    bool nomem = false;
    if (entry && !(e = parse_entry(entry, &nomem)) && nomem)
        goto nomem;
    if (!entry || !e || !(id = json_str(e, "datasetID", NULL)) || !(version = json_str(e, "versionID", NULL))) {
        err = dataset_fail(msg, MB_EINVAL, "the new index entry is not an entry with a datasetID and a versionID");
        goto done;
    }
    if (!configmap_key(id)) {
        err = dataset_fail(msg, MB_EINVAL, "the index entry's datasetID \"%.100s\" cannot be a ConfigMap key", id);
        goto done;
    }
    if (data && !cJSON_IsObject(data)) {
        err = dataset_fail(msg, MB_EINVAL, "the index ConfigMap's data is not a map of keys to entries");
        goto done;
    }
    next = data ? cJSON_Duplicate(data, 1) : cJSON_CreateObject();
    if (!next)
        goto nomem;
    current = json_str(next, id, NULL);
    if (current) {
        if ((err = read_entry(&old, &old_version, id, current, msg)) < 0)
            goto done;
        if (strcmp(old_version, version) == 0) {
            if (strcmp(current, entry) == 0)
                goto keep; /* published already, exactly so: nothing to change */
            err = dataset_fail(msg, MB_EINVAL,
                               "version \"%.100s\" of %.100s is already published with another entry (auditRef "
                               "%.80s): promote it under a new versionID",
                               version, id, json_str(old, "auditRef", NULL) ? json_str(old, "auditRef", NULL) : "none");
            goto done;
        }
        if (!(was = strdup(current)))
            goto nomem;
    }
    if (json_set_str(next, id, entry) < 0)
        goto nomem;
    if ((size = data_bytes(next)) > DATASET_INDEX_MAX_BYTES) {
        err = dataset_fail(msg, MB_EINVAL,
                           "publishing %.100s would make the index ConfigMap's data %ld bytes, more than its %ld-byte "
                           "(900 KiB) limit: use another spec.publish.indexConfigMap or revoke old datasets",
                           id, size, DATASET_INDEX_MAX_BYTES);
        goto done;
    }
keep:
    *out = next;
    next = NULL;
    *replaced = was;
    was = NULL;
    goto done;
nomem:
    err = dataset_nomem(msg);
done:
    free(was);
    cJSON_Delete(next);
    cJSON_Delete(old);
    cJSON_Delete(e);
    return err;
}

int dataset_index_remove(cJSON **out, char **removed, const cJSON *data, const char *dataset_id, const char *version_id,
                         char msg[DATASET_MSG_MAX])
{
    cJSON *next = NULL, *old = NULL;
    const char *current = NULL, *old_version = NULL;
    int err = 0;

    *out = NULL;
    *removed = NULL;
    if (data && !cJSON_IsObject(data))
        return dataset_fail(msg, MB_EINVAL, "the index ConfigMap's data is not a map of keys to entries");
    if (!(next = data ? cJSON_Duplicate(data, 1) : cJSON_CreateObject()))
        return dataset_nomem(msg);
    if (dataset_id && (current = json_str(next, dataset_id, NULL))) {
        if ((err = read_entry(&old, &old_version, dataset_id, current, msg)) < 0)
            goto done;
        if (version_id && strcmp(old_version, version_id) == 0) {
            if (!(*removed = strdup(current))) {
                err = dataset_nomem(msg);
                goto done;
            }
            cJSON_DeleteItemFromObjectCaseSensitive(next, dataset_id);
        }
    }
    *out = next;
    next = NULL;
done:
    cJSON_Delete(old);
    cJSON_Delete(next);
    return err;
}

/*
 * The catalog-prov gate: qualified names expanded through the document's
 * prefixes, the version's entity found by its attribute, and its generation.
 */
#include "dataset/prov.h"

#include "util/error.h"
#include "util/json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define WHAT "the PROV document"
#define VERSION_ATTR "dataset_version_id"

/* The IRI a qualified name stands for (malloc'd), or a copy of it when its prefix is not declared. NULL: no memory. */
static char *expand(const cJSON *prefixes, const char *qname)
{
    const char *colon = strchr(qname, ':');
    const char *ns = NULL, *local = qname;
    char *out = NULL;

    if (!cJSON_IsObject(prefixes))
        prefixes = NULL;
    if (colon) {
        size_t plen = (size_t)(colon - qname);
        const cJSON *p = NULL;
        cJSON_ArrayForEach(p, prefixes) {
            if (cJSON_IsString(p) && strlen(p->string) == plen && strncmp(p->string, qname, plen) == 0) {
                ns = p->valuestring;
                local = colon + 1;
                break;
            }
        }
    } else {
        ns = json_str(prefixes, "default", NULL);
    }
    if (!ns)
        return strdup(qname);
    if (!(out = malloc(strlen(ns) + strlen(local) + 1)))
        return NULL;
    strcpy(out, ns);
    strcat(out, local);
    return out;
}

/* Whether the attribute value v (plain, typed {"$": ...} or an array of these) has the string s. */
static bool value_has(const cJSON *v, const char *s)
{
    const cJSON *item = NULL;
    if (cJSON_IsString(v))
        return strcmp(v->valuestring, s) == 0;
    if (cJSON_IsObject(v))
        return value_has(cJSON_GetObjectItemCaseSensitive(v, "$"), s);
    if (cJSON_IsArray(v)) {
        cJSON_ArrayForEach(item, v) {
            if (!cJSON_IsArray(item) && value_has(item, s))
                return true;
        }
    }
    return false;
}

/* The first string of v as value_has reads it, or NULL. */
static const char *value_str(const cJSON *v)
{
    if (cJSON_IsString(v))
        return v->valuestring;
    if (cJSON_IsObject(v))
        return json_str(v, "$", NULL);
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1 && !cJSON_IsArray(v->child))
        return value_str(v->child);
    return NULL;
}

/* *out: whether qualified names a and b stand for the same IRI. 0 or MB_ENOMEM. */
static int same_name(bool *out, const cJSON *prefixes, const char *a, const char *b)
{
    char *ea = expand(prefixes, a), *eb = expand(prefixes, b);
    int err = ea && eb ? 0 : MB_ENOMEM;
    *out = ea && eb && strcmp(ea, eb) == 0;
    free(ea);
    free(eb);
    return err;
}

int dataset_prov_judge(const char *doc, size_t len, const cJSON *spec, char msg[DATASET_MSG_MAX])
{
    const char *version = json_str(spec, "versionID", NULL);
    const cJSON *prefixes = NULL, *entities = NULL, *e = NULL, *g = NULL, *gens = NULL;
    const char *kfm = NULL;
    const char *entity = NULL;
    char *attr = NULL;
    cJSON *parsed = NULL;
    bool generated = false;
    int err = 0;

    if (!version || !*version)
        return dataset_fail(msg, MB_EINVAL, "spec.versionID is empty: set the dataset version's identifier");
    if ((err = dataset_parse_doc(&parsed, doc, len, WHAT, 1, msg)) < 0)
        return err;
    prefixes = json_get(parsed, "prefix", NULL);
    if (!(kfm = json_str(prefixes, "kfm", NULL))) {
        err = dataset_fail(msg, MB_EINVAL,
                           WHAT " does not declare the prefix kfm in its \"prefix\" map: declare it with the kfm "
                                "namespace IRI");
        goto done;
    }
    if (!(attr = malloc(strlen(kfm) + sizeof(VERSION_ATTR)))) {
        err = dataset_nomem(msg);
        goto done;
    }
    strcpy(attr, kfm);
    strcat(attr, VERSION_ATTR);
    entities = json_get(parsed, "entity", NULL);
    if (!cJSON_IsObject(entities))
        entities = NULL; /* an "entity" that is not a map has no entities */
    cJSON_ArrayForEach(e, entities) {
        const cJSON *a = NULL;
        if (!cJSON_IsObject(e))
            continue; /* an entity's attributes are a map */
        cJSON_ArrayForEach(a, e) {
            char *name = NULL;
            bool match = false;
            if (!value_has(a, version))
                continue;
            if (!(name = expand(prefixes, a->string))) {
                err = dataset_nomem(msg);
                goto done;
            }
            match = strcmp(name, attr) == 0;
            free(name);
            if (match) {
                entity = e->string;
                break;
            }
        }
        if (entity)
            break;
    }
    if (!entity) {
        err = dataset_fail(msg, MB_EINVAL,
                           WHAT " has no entity whose kfm:dataset_version_id is spec.versionID \"%.100s\": add one "
                                "to its \"entity\" map",
                           version);
        goto done;
    }
    if (!cJSON_IsObject(gens = json_get(parsed, "wasGeneratedBy", NULL)))
        gens = NULL; /* a relation map written as an array has no relations */
    cJSON_ArrayForEach(g, gens) {
        const char *named = cJSON_IsObject(g) ? value_str(cJSON_GetObjectItemCaseSensitive(g, "prov:entity")) : NULL;
        if (!named)
            continue;
        if ((err = same_name(&generated, prefixes, named, entity)) < 0) {
            err = dataset_nomem(msg);
            goto done;
        }
        if (generated)
            break;
    }
    if (!generated)
        err = dataset_fail(msg, MB_EINVAL,
                           WHAT " has no wasGeneratedBy relation whose prov:entity is %.200s, the entity of version "
                                "\"%.100s\": record the activity that generated it",
                           entity, version);
done:
    free(attr);
    cJSON_Delete(parsed);
    return err;
}

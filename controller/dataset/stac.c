/*
 * The catalog-stac gate and the STAC links for the links gate: the required
 * fields, the asset hrefs against the artifacts, the license.
 */
#include "dataset/stac.h"

#include "dataset/urls.h"
#include "util/error.h"
#include "util/json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define WHAT "the STAC document"

static const char *const link_rels[] = {"self", "root", "parent", "item", "child", "license"};

/* The fields every STAC Collection and Item has. */
static int check_shape(const cJSON *doc, char msg[DATASET_MSG_MAX])
{
    const char *type = json_str(doc, "type", NULL);

    if (!type || (strcmp(type, "Collection") != 0 && strcmp(type, "Feature") != 0))
        return dataset_fail(msg, MB_EINVAL,
                            WHAT "'s type is %s%.50s%s: publish a STAC Collection (\"Collection\") or Item "
                                 "(\"Feature\")",
                            type ? "\"" : "", type ? type : "missing", type ? "\"" : "");
    if (!json_str(doc, "stac_version", NULL))
        return dataset_fail(msg, MB_EINVAL, WHAT " has no stac_version string: set it (e.g. \"1.1.0\")");
    if (!json_str(doc, "id", NULL))
        return dataset_fail(msg, MB_EINVAL, WHAT " has no id string: set it");
    if (!cJSON_IsArray(json_get(doc, "links", NULL)))
        return dataset_fail(msg, MB_EINVAL, WHAT " has no links array: add links (at least [])");
    return 0;
}

static int judge_assets(const cJSON *doc, const cJSON *spec, const char *base, char msg[DATASET_MSG_MAX])
{
    const cJSON *assets = json_get(doc, "assets", NULL);
    const cJSON *a = NULL;
    int err = 0;

    if (assets && !cJSON_IsObject(assets))
        return dataset_fail(msg, MB_EINVAL, WHAT "'s assets is not an object of named assets");
    if (!assets || !assets->child)
        return dataset_fail(msg, MB_EINVAL, WHAT " has no assets: add each artifact as an asset with its href");
    cJSON_ArrayForEach(a, assets) {
        const char *href = json_str(a, "href", NULL);
        char *url = NULL;
        bool among = false;
        if (!href)
            return dataset_fail(msg, MB_EINVAL, WHAT "'s asset \"%.100s\" has no href string: set it", a->string);
        if ((err = dataset_url_resolve(&url, base, href)) < 0) {
            if (err == MB_ENOMEM)
                return dataset_nomem(msg);
            return dataset_fail(msg, MB_EINVAL,
                                WHAT "'s asset \"%.100s\" href \"%.200s\" does not resolve to a URL: %s", a->string,
                                href, base ? "correct it" : "spec.catalog.stac.url is needed to resolve it");
        }
        if ((err = dataset_url_among_artifacts(&among, url, spec)) < 0) {
            free(url);
            return dataset_nomem(msg);
        }
        if (!among) {
            err = dataset_fail(msg, MB_EINVAL,
                               WHAT "'s asset \"%.100s\" href %.250s is not among spec.artifacts[].url: list the "
                                    "artifact or correct the href",
                               a->string, url);
            free(url);
            return err;
        }
        free(url);
    }
    return 0;
}

int dataset_stac_judge(dataset_stac_result *out, const char *doc, size_t len, const cJSON *spec,
                       char msg[DATASET_MSG_MAX])
{
    const char *base = json_str(spec, "catalog", "stac", "url", NULL);
    const char *license = NULL;
    cJSON *parsed = NULL;
    int err = 0;

    memset(out, 0, sizeof(*out));
    if ((err = dataset_parse_doc(&parsed, doc, len, WHAT, 1, msg)) < 0)
        return err;
    if ((err = check_shape(parsed, msg)) < 0)
        goto done;
    if (strcmp(json_str(parsed, "type", NULL), "Feature") == 0)
        license = json_str(parsed, "properties", "license", NULL);
    if (!license)
        license = json_str(parsed, "license", NULL);
    if (license && !(out->license = strdup(license))) {
        err = dataset_nomem(msg);
        goto done;
    }
    err = judge_assets(parsed, spec, base, msg);
done:
    cJSON_Delete(parsed);
    return err;
}

void dataset_stac_result_free(dataset_stac_result *r)
{
    if (!r)
        return;
    free(r->license);
    r->license = NULL;
}

static bool checked_rel(const char *rel)
{
    for (size_t i = 0; rel && i < sizeof(link_rels) / sizeof(link_rels[0]); i++)
        if (strcmp(rel, link_rels[i]) == 0)
            return true;
    return false;
}

int dataset_stac_links(char ***out, const char *doc, size_t len, const char *base, char msg[DATASET_MSG_MAX])
{
    cJSON *parsed = NULL;
    const cJSON *l = NULL;
    char **links = NULL;
    size_t n = 0;
    int err = 0;

    *out = NULL;
    if ((err = dataset_parse_doc(&parsed, doc, len, WHAT, 1, msg)) < 0)
        return err;
    if ((err = check_shape(parsed, msg)) < 0)
        goto done;
    if (!(links = calloc(1, sizeof(*links)))) {
        err = dataset_nomem(msg);
        goto done;
    }
    cJSON_ArrayForEach(l, json_get(parsed, "links", NULL)) {
        const char *rel = json_str(l, "rel", NULL);
        const char *href = json_str(l, "href", NULL);
        char *url = NULL;
        char **grown = NULL;
        if (!checked_rel(rel))
            continue;
        if ((err = dataset_url_resolve(&url, base, href)) < 0) {
            if (err == MB_ENOMEM)
                err = dataset_nomem(msg);
            else
                err = dataset_fail(msg, MB_EINVAL, WHAT "'s %s link href \"%.200s\" does not resolve to a URL: %s", rel,
                                   href ? href : "", href ? "correct it" : "set it");
            goto done;
        }
        if (!(grown = realloc(links, (n + 2) * sizeof(*links)))) {
            free(url);
            err = dataset_nomem(msg);
            goto done;
        }
        links = grown;
        links[n++] = url;
        links[n] = NULL;
    }
    *out = links;
    links = NULL;
done:
    dataset_stac_links_free(links);
    cJSON_Delete(parsed);
    return err;
}

void dataset_stac_links_free(char **links)
{
    for (size_t i = 0; links && links[i]; i++)
        free(links[i]);
    free(links);
}

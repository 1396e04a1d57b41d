/*
 * The catalog-dcat gate over the JSON-LD node map: find the dataset by its
 * identifier, follow its distributions (nested or by @id), check their
 * download URLs against the artifacts and gather the licenses.
 */
#include "dataset/dcat.h"

#include "dataset/jsonld.h"
#include "dataset/urls.h"
#include "util/error.h"
#include "util/json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define WHAT "the DCAT document"

static int push(char ***items, size_t *count, const char *s)
{
    char **p = NULL;
    char *copy = strdup(s);
    if (!copy || !(p = realloc(*items, (*count + 1) * sizeof(**items)))) {
        free(copy);
        return MB_ENOMEM;
    }
    *items = p;
    p[(*count)++] = copy;
    return 0;
}

static int gather_licenses(dataset_dcat_result *out, const jsonld_node *n)
{
    const jsonld_prop *p = jsonld_node_prop(n, JSONLD_DCT "license");
    for (size_t i = 0; p && i < p->count; i++)
        if (push(&out->licenses, &out->nlicenses, p->values[i].text) < 0)
            return MB_ENOMEM;
    return 0;
}

static bool identifier_is(const jsonld_node *n, const char *id)
{
    const jsonld_prop *p = jsonld_node_prop(n, JSONLD_DCT "identifier");
    for (size_t i = 0; p && i < p->count; i++)
        if (strcmp(p->values[i].text, id) == 0)
            return true;
    return false;
}

/* One distribution: its download URLs all among the artifacts. */
static int judge_distribution(dataset_dcat_result *out, const jsonld_node *d, const cJSON *spec, const char *base,
                              char msg[DATASET_MSG_MAX])
{
    const jsonld_prop *p = jsonld_node_prop(d, JSONLD_DCAT "downloadURL");
    int err = 0;

    if ((err = gather_licenses(out, d)) < 0)
        return dataset_nomem(msg);
    if (!p || p->count == 0)
        return dataset_fail(msg, MB_EINVAL,
                            WHAT "'s distribution %.200s has no dcat:downloadURL: give it the URL of its artifact",
                            d->id);
    for (size_t i = 0; i < p->count; i++) {
        char *url = NULL;
        bool among = false;
        if ((err = dataset_url_resolve(&url, base, p->values[i].text)) < 0) {
            if (err == MB_ENOMEM)
                return dataset_nomem(msg);
            return dataset_fail(msg, MB_EINVAL, WHAT "'s dcat:downloadURL \"%.200s\" is not a URL: %.200s",
                                p->values[i].text, mb_error_last());
        }
        if ((err = push(&out->downloads, &out->ndownloads, url)) < 0 ||
            (err = dataset_url_among_artifacts(&among, url, spec)) < 0) {
            free(url);
            return dataset_nomem(msg);
        }
        if (!among) {
            err = dataset_fail(msg, MB_EINVAL,
                               WHAT "'s dcat:downloadURL %.250s is not among spec.artifacts[].url: list the artifact "
                                    "or correct the URL",
                               url);
            free(url);
            return err;
        }
        free(url);
    }
    return 0;
}

static int judge_dataset(dataset_dcat_result *out, const jsonld_graph *g, const jsonld_node *ds, const cJSON *spec,
                         const char *base, char msg[DATASET_MSG_MAX])
{
    const jsonld_prop *p = jsonld_node_prop(ds, JSONLD_DCAT "distribution");
    int err = 0;

    if ((err = gather_licenses(out, ds)) < 0)
        return dataset_nomem(msg);
    if (!p || p->count == 0)
        return dataset_fail(msg, MB_EINVAL,
                            WHAT "'s dcat:Dataset %.200s has no dcat:distribution: describe each artifact as one",
                            ds->id);
    for (size_t i = 0; i < p->count; i++) {
        const jsonld_node *d = NULL;
        if (p->values[i].kind != JSONLD_REF)
            return dataset_fail(msg, MB_EINVAL,
                                WHAT "'s dcat:distribution \"%.200s\" is a string, not a node: write it as an object "
                                     "or a reference {\"@id\": ...}",
                                p->values[i].text);
        if (!(d = jsonld_node_find(g, p->values[i].text)) || d->nprops == 0)
            return dataset_fail(msg, MB_EINVAL,
                                WHAT " refers to the distribution %.200s but does not describe it: add the node "
                                     "with its dcat:downloadURL",
                                p->values[i].text);
        if ((err = judge_distribution(out, d, spec, base, msg)) < 0)
            return err;
    }
    return 0;
}

int dataset_dcat_judge(dataset_dcat_result *out, const char *doc, size_t len, const cJSON *spec,
                       char msg[DATASET_MSG_MAX])
{
    const char *id = json_str(spec, "datasetID", NULL);
    const char *base = json_str(spec, "catalog", "dcat", "url", NULL);
    cJSON *parsed = NULL;
    jsonld_graph *g = NULL;
    const jsonld_node *first_other = NULL;
    size_t found = 0, datasets = 0;
    int err = 0;

    memset(out, 0, sizeof(*out));
    if (!id || !*id)
        return dataset_fail(msg, MB_EINVAL, "spec.datasetID is empty: set the dataset's identifier");
    if ((err = dataset_parse_doc(&parsed, doc, len, WHAT, 0, msg)) < 0)
        return err;
    if ((err = jsonld_read(&g, parsed, WHAT, msg)) < 0)
        goto done;
    for (size_t i = 0; i < g->count; i++) {
        const jsonld_node *n = &g->nodes[i];
        if (!jsonld_node_has_type(n, JSONLD_DCAT "Dataset"))
            continue;
        datasets++;
        if (!identifier_is(n, id)) {
            if (!first_other)
                first_other = n;
            continue;
        }
        found++;
        if ((err = judge_dataset(out, g, n, spec, base, msg)) < 0)
            goto done;
    }
    if (datasets == 0) {
        err = dataset_fail(msg, MB_EINVAL,
                           WHAT " has no node of type dcat:Dataset (http://www.w3.org/ns/dcat#Dataset): describe "
                                "the dataset as one");
    } else if (found == 0) {
        const jsonld_prop *p = jsonld_node_prop(first_other, JSONLD_DCT "identifier");
        /* the document's only dataset: its licenses still go to the license gate, judged on their own */
        if (datasets == 1 && gather_licenses(out, first_other) < 0) {
            err = dataset_nomem(msg);
            goto done;
        }
        err = dataset_fail(msg, MB_EINVAL,
                           WHAT " has no dcat:Dataset whose dct:identifier is spec.datasetID \"%.100s\" (it has "
                                "%s%.100s%s): make them the same",
                           id, p && p->count ? "\"" : "", p && p->count ? p->values[0].text : "none",
                           p && p->count ? "\"" : "");
    }
done:
    jsonld_graph_free(g);
    cJSON_Delete(parsed);
    return err;
}

void dataset_dcat_result_free(dataset_dcat_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nlicenses; i++)
        free(r->licenses[i]);
    for (size_t i = 0; i < r->ndownloads; i++)
        free(r->downloads[i]);
    free(r->licenses);
    free(r->downloads);
    memset(r, 0, sizeof(*r));
}

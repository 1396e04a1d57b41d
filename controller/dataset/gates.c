/*
 * DatasetPromotion: the seven gates judged on what the transfers brought in
 * (dataset/gates.h), each to Passed, Failed, Unavailable or Pending with one
 * sentence naming what to fix. Pure: the judges of license.h, dcat.h,
 * stac.h, prov.h and index.h on the work's bytes.
 */
#include "dataset/gates.h"
#include "dataset/dcat.h"
#include "dataset/index.h"
#include "dataset/license.h"
#include "dataset/prov.h"
#include "dataset/stac.h"
#include "util/error.h"
#include "util/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

const char *const dataset_gate_names[DATASET_NGATES] = {"checksums",    "license",      "policy-label", "catalog-dcat",
                                                        "catalog-stac", "catalog-prov", "links"};
const char *const dataset_gate_reasons[DATASET_NGATES] = {"ChecksumsFailed",   "LicenseFailed",     "PolicyLabelFailed",
                                                          "CatalogDCATFailed", "CatalogSTACFailed", "CatalogPROVFailed",
                                                          "LinksFailed"};

static const char *const doc_names[DATASET_NDOCS] = {"DCAT", "STAC", "PROV"};
static const char *const doc_fields[DATASET_NDOCS] = {"dcat", "stac", "prov"};

static void verdict(dataset_gate *g, dataset_gate_state s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void verdict(dataset_gate *g, dataset_gate_state s, const char *fmt, ...)
{
    va_list ap;
    g->state = s;
    va_start(ap, fmt);
    vsnprintf(g->message, sizeof(g->message), fmt, ap);
    va_end(ap);
}

/* The state of a catalog document for the gate named gate: 1 when its bytes are in, else the gate's verdict set. */
static int doc_ready(dataset_gate *g, const dataset_observed *o, int d, const char *gate)
{
    const dataset_item *it = &o->work.docs[d];
    const char *url = json_str(o->promotion, "spec", "catalog", doc_fields[d], "url", NULL);
    switch (it->state) {
    case DATASET_ITEM_NONE:
    case DATASET_ITEM_RUNNING: verdict(g, DATASET_GATE_PENDING, "waiting for the %s document", doc_names[d]); return 0;
    case DATASET_ITEM_UNAVAILABLE:
        verdict(g, DATASET_GATE_UNAVAILABLE,
                "%s cannot be evaluated yet: the %s document at %s could not be fetched (%s)", gate, doc_names[d],
                url ? url : "?", it->message ? it->message : "no answer");
        return 0;
    case DATASET_ITEM_REFUSED:
        verdict(g, DATASET_GATE_FAILED,
                "%s cannot be evaluated: the %s document at %s could not be read (%s): fix spec.catalog.%s.url or "
                "the document",
                gate, doc_names[d], url ? url : "?", it->message ? it->message : "refused", doc_fields[d]);
        return 0;
    case DATASET_ITEM_DONE: break;
    }
    return 1;
}

static int gate_checksums(dataset_gate *g, const dataset_observed *o)
{
    const cJSON *arts = json_get(o->promotion, "spec", "artifacts", NULL);
    size_t n = (size_t)cJSON_GetArraySize(arts);
    const dataset_work *w = &o->work;
    int failed = -1, unavailable = -1, pending = 0;
    long long bytes = 0;
    char fail[DATASET_MSG_MAX] = "";
    if (!w->artifacts || w->nartifacts != n) {
        verdict(g, DATASET_GATE_PENDING, "the %zu artifacts have not been downloaded yet", n);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const cJSON *a = cJSON_GetArrayItem(arts, (int)i);
        const dataset_item *it = &w->artifacts[i];
        const char *name = json_str(a, "name", NULL), *digest = json_str(a, "digest", NULL);
        const cJSON *size = json_get(a, "sizeBytes", NULL);
        if (it->state == DATASET_ITEM_NONE || it->state == DATASET_ITEM_RUNNING) {
            pending++;
            continue;
        }
        if (it->state == DATASET_ITEM_UNAVAILABLE) {
            if (unavailable < 0)
                unavailable = (int)i;
            continue;
        }
        if (failed >= 0)
            continue;
        if (it->state == DATASET_ITEM_REFUSED) {
            snprintf(fail, sizeof(fail),
                     "artifact %s could not be downloaded (%s): fix spec.artifacts[%zu] or the file at its URL",
                     name ? name : "?", it->message ? it->message : "refused", i);
            failed = (int)i;
        } else if (cJSON_IsNumber(size) && (long long)size->valuedouble != it->bytes) {
            snprintf(fail, sizeof(fail),
                     "artifact %s is %lld bytes, not the %lld of spec.artifacts[%zu].sizeBytes: fix sizeBytes or the "
                     "file",
                     name ? name : "?", it->bytes, (long long)size->valuedouble, i);
            failed = (int)i;
        } else if (!digest || strncmp(digest, "sha256:", 7) != 0 || !it->sha256_hex ||
                   strcmp(digest + 7, it->sha256_hex) != 0) {
            snprintf(fail, sizeof(fail),
                     "artifact %s hashes to sha256:%s, not to spec.artifacts[%zu].digest %s: fix the digest or the "
                     "file",
                     name ? name : "?", it->sha256_hex ? it->sha256_hex : "?", i, digest ? digest : "(none)");
            failed = (int)i;
        } else {
            bytes += it->bytes;
        }
    }
    if (failed >= 0)
        verdict(g, DATASET_GATE_FAILED, "%s", fail);
    else if (unavailable >= 0)
        verdict(g, DATASET_GATE_UNAVAILABLE, "artifact %s could not be downloaded yet (%s)",
                json_str(cJSON_GetArrayItem(arts, unavailable), "name", NULL) ?: "?",
                w->artifacts[unavailable].message ? w->artifacts[unavailable].message : "no answer");
    else if (pending)
        verdict(g, DATASET_GATE_PENDING, "%d of %zu artifacts are still being downloaded and hashed", pending, n);
    else
        verdict(g, DATASET_GATE_PASSED, "all %zu artifacts (%lld bytes) hash to their digests", n, bytes);
    return 0;
}

static int gate_license(dataset_gate *g, const dataset_observed *o, const dataset_judged *j)
{
    char msg[DATASET_MSG_MAX];
    const char *license = json_str(o->promotion, "spec", "license", NULL);
    int err;
    /* spec.license alone first: a wrong identifier needs no document to be refused */
    if ((err = dataset_license_check_spec(license, msg)) < 0) {
        if (err == MB_ENOMEM)
            return err;
        verdict(g, DATASET_GATE_FAILED, "%s", msg);
        return 0;
    }
    if (!doc_ready(g, o, DATASET_DOC_DCAT, "the license gate") ||
        !doc_ready(g, o, DATASET_DOC_STAC, "the license gate"))
        return 0;
    if (!j->dcat_read || !j->stac_read) {
        verdict(g, DATASET_GATE_FAILED, "the license gate cannot be evaluated: the %s document could not be read: %s",
                !j->dcat_read ? "DCAT" : "STAC", !j->dcat_read ? j->dcat_msg : j->stac_msg);
        return 0;
    }
    if ((err = dataset_license_judge(license, (const char *const *)j->dcat.licenses, j->dcat.nlicenses, j->stac.license,
                                     msg)) < 0) {
        if (err == MB_ENOMEM)
            return err;
        verdict(g, DATASET_GATE_FAILED, "%s", msg);
        return 0;
    }
    verdict(g, DATASET_GATE_PASSED, "%s is on the SPDX License List %s and the DCAT and STAC documents declare it",
            license, dataset_spdx_version);
    return 0;
}

static int gate_doc(dataset_gate *g, const dataset_observed *o, int d, int err, const char *msg)
{
    char what[64];
    snprintf(what, sizeof(what), "the catalog-%s gate", doc_fields[d]);
    if (!doc_ready(g, o, d, what))
        return 0;
    if (err == MB_ENOMEM)
        return err;
    if (err < 0)
        verdict(g, DATASET_GATE_FAILED, "%s", msg);
    else
        verdict(g, DATASET_GATE_PASSED, "the %s document at %s holds what the spec promotes", doc_names[d],
                json_str(o->promotion, "spec", "catalog", doc_fields[d], "url", NULL) ?: "?");
    return 0;
}

static int gate_links(dataset_gate *g, const dataset_observed *o)
{
    const dataset_work *w = &o->work;
    int pending = 0, unavailable = -1;
    if (!doc_ready(g, o, DATASET_DOC_STAC, "the links gate"))
        return 0;
    if (!w->links_listed) {
        verdict(g, DATASET_GATE_PENDING, "the STAC document's links have not been checked yet");
        return 0;
    }
    if (w->links_message) {
        verdict(g, DATASET_GATE_FAILED, "the links gate cannot be evaluated: %s", w->links_message);
        return 0;
    }
    if (w->nlinks == 0) { /* nothing it could check is no pass */
        verdict(g, DATASET_GATE_FAILED,
                "the STAC document has no link of rel self, root, parent, item, child or license, so the links gate "
                "has nothing to check: add at least its self or root link");
        return 0;
    }
    for (size_t i = 0; i < w->nlinks; i++) {
        const dataset_item *it = &w->links[i];
        const char *url = w->link_urls ? w->link_urls[i] : "?";
        if (it->state == DATASET_ITEM_REFUSED) {
            verdict(g, DATASET_GATE_FAILED, "STAC link %s does not resolve (%s): fix or remove that link", url,
                    it->message ? it->message : "refused");
            return 0;
        }
        if (it->state == DATASET_ITEM_UNAVAILABLE && unavailable < 0)
            unavailable = (int)i;
        if (it->state == DATASET_ITEM_NONE || it->state == DATASET_ITEM_RUNNING)
            pending++;
    }
    if (unavailable >= 0)
        verdict(g, DATASET_GATE_UNAVAILABLE, "STAC link %s could not be checked yet (%s)", w->link_urls[unavailable],
                w->links[unavailable].message ? w->links[unavailable].message : "no answer");
    else if (pending)
        verdict(g, DATASET_GATE_PENDING, "%d of %zu STAC links are still being checked", pending, w->nlinks);
    else
        verdict(g, DATASET_GATE_PASSED, "all %zu STAC links of rel self, root, parent, item, child or license resolve",
                w->nlinks);
    return 0;
}

void dataset_judged_free(dataset_judged *j)
{
    dataset_dcat_result_free(&j->dcat);
    dataset_stac_result_free(&j->stac);
    memset(j, 0, sizeof(*j));
}

int dataset_gates_judge(dataset_gate out[DATASET_NGATES], dataset_judged *j, const dataset_observed *o)
{
    const cJSON *spec = json_get(o->promotion, "spec", NULL);
    const dataset_item *docs = o->work.docs;
    char msg[DATASET_MSG_MAX];
    int err = 0, derr = 0, serr = 0, perr = 0;
    char dmsg[DATASET_MSG_MAX] = "", smsg[DATASET_MSG_MAX] = "", pmsg[DATASET_MSG_MAX] = "";

    memset(out, 0, sizeof(dataset_gate) * DATASET_NGATES);
    memset(j, 0, sizeof(*j));
    for (int i = 0; i < DATASET_NGATES; i++)
        out[i].name = dataset_gate_names[i];
    if (docs[DATASET_DOC_DCAT].state == DATASET_ITEM_DONE) {
        derr = dataset_dcat_judge(&j->dcat, docs[DATASET_DOC_DCAT].body, docs[DATASET_DOC_DCAT].len, spec, dmsg);
        if (derr == MB_ENOMEM)
            goto nomem;
        /* read: the licenses were gathered (a judge that failed only on URLs or the identifier read them) */
        j->dcat_read = derr == 0 || j->dcat.nlicenses > 0;
        snprintf(j->dcat_msg, sizeof(j->dcat_msg), "%s", dmsg);
    }
    if (docs[DATASET_DOC_STAC].state == DATASET_ITEM_DONE) {
        serr = dataset_stac_judge(&j->stac, docs[DATASET_DOC_STAC].body, docs[DATASET_DOC_STAC].len, spec, smsg);
        if (serr == MB_ENOMEM)
            goto nomem;
        j->stac_read = serr == 0 || j->stac.license != NULL;
        snprintf(j->stac_msg, sizeof(j->stac_msg), "%s", smsg);
    }
    if (docs[DATASET_DOC_PROV].state == DATASET_ITEM_DONE &&
        (perr = dataset_prov_judge(docs[DATASET_DOC_PROV].body, docs[DATASET_DOC_PROV].len, spec, pmsg)) == MB_ENOMEM)
        goto nomem;

    if ((err = gate_checksums(&out[DATASET_GATE_CHECKSUMS], o)) < 0 ||
        (err = gate_license(&out[DATASET_GATE_LICENSE], o, j)) < 0)
        goto done;
    if ((err = dataset_policy_label_judge(spec, msg)) == MB_ENOMEM)
        goto nomem;
    if (err < 0)
        verdict(&out[DATASET_GATE_POLICY_LABEL], DATASET_GATE_FAILED, "%s", msg);
    else
        verdict(&out[DATASET_GATE_POLICY_LABEL], DATASET_GATE_PASSED, "the version is published with label %s",
                json_str(spec, "policyLabel", NULL));
    if ((err = gate_doc(&out[DATASET_GATE_DCAT], o, DATASET_DOC_DCAT, derr, dmsg)) < 0 ||
        (err = gate_doc(&out[DATASET_GATE_STAC], o, DATASET_DOC_STAC, serr, smsg)) < 0 ||
        (err = gate_doc(&out[DATASET_GATE_PROV], o, DATASET_DOC_PROV, perr, pmsg)) < 0 ||
        (err = gate_links(&out[DATASET_GATE_LINKS], o)) < 0)
        goto done;
    return 0;
nomem:
    err = mb_error_set(MB_ENOMEM, "out of memory");
done:
    dataset_judged_free(j);
    return err;
}

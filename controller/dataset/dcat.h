/*
 * The catalog-dcat gate (API.md "DatasetPromotion"): the DCAT document, read
 * as JSON-LD in any of the forms dataset/jsonld.h reads, has a dcat:Dataset
 * whose dct:identifier is spec.datasetID, with at least one
 * dcat:distribution, and every distribution's dcat:downloadURL (resolved
 * against spec.catalog.dcat.url when relative) is one of
 * spec.artifacts[].url. A distribution without a dcat:downloadURL fails the
 * gate: its dcat:accessURL names a landing page or a service, not the bytes
 * that were hashed, so it is not judged and cannot stand in for one.
 * The gate also gathers the dct:license values of that dataset and its
 * distributions for the license gate. Pure: bytes and the spec in.
 */
#ifndef MB_DATASET_DCAT_H
#define MB_DATASET_DCAT_H

#include "dataset/verdict.h"

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct {
    char **licenses; /* dct:license of the dataset and its distributions, as written (an IRI or an identifier) */
    size_t nlicenses;
    char **downloads; /* every distribution's download URL, resolved */
    size_t ndownloads;
} dataset_dcat_result;

/*
 * Judges the DCAT document doc[0..len) for spec (a DatasetPromotion spec).
 * 0 when the gate passes; MB_EINVAL with msg naming what to fix; MB_ENOMEM.
 * out is filled as far as the document could be read, also on MB_EINVAL (so
 * the license gate sees the licenses of a document whose URLs are wrong); the
 * caller frees it with dataset_dcat_result_free in every case.
 */
int dataset_dcat_judge(dataset_dcat_result *out, const char *doc, size_t len, const cJSON *spec,
                       char msg[DATASET_MSG_MAX]);

void dataset_dcat_result_free(dataset_dcat_result *r);

#endif

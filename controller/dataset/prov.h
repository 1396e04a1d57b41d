/*
 * The catalog-prov gate (API.md "DatasetPromotion"): the PROV document is
 * PROV-JSON (the W3C member submission, as the prov library writes it) that
 * declares the prefix "kfm" in its "prefix" map, has an entity (in the
 * "entity" map) whose kfm:dataset_version_id is spec.versionID, and a
 * relation in the "wasGeneratedBy" map whose prov:entity names that entity.
 * Qualified names are compared by the IRI they stand for (through "prefix"
 * and its "default"), so an entity written as kfm:x and referred to by
 * another prefix of the same IRI is the same entity. Attribute values may be
 * plain strings, typed values {"$": ..., "type": ...} or arrays of these.
 * Only the document's top level is read, not its bundles. Pure.
 */
#ifndef MB_DATASET_PROV_H
#define MB_DATASET_PROV_H

#include "dataset/verdict.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* 0 when the gate passes; MB_EINVAL with msg naming what to fix; MB_ENOMEM. */
int dataset_prov_judge(const char *doc, size_t len, const cJSON *spec, char msg[DATASET_MSG_MAX]);

#endif

/*
 * The catalog-stac gate (API.md "DatasetPromotion"): the STAC document is a
 * Collection ("type": "Collection") or an Item ("type": "Feature") with
 * stac_version, id and links; it has at least one asset, and every asset's
 * href, resolved against spec.catalog.stac.url by RFC 3986 when relative
 * (libcurl's CURLU), is one of spec.artifacts[].url. Also read from it: the
 * license (a Collection's license; an Item's properties.license, else its
 * top-level license) for the license gate, and the links the links gate
 * checks. Pure: bytes and the spec in.
 */
#ifndef MB_DATASET_STAC_H
#define MB_DATASET_STAC_H

#include "dataset/verdict.h"

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct {
    char *license; /* as written, or NULL when the document declares none */
} dataset_stac_result;

/*
 * Judges the STAC document doc[0..len) for spec. 0 when the gate passes;
 * MB_EINVAL with msg naming what to fix; MB_ENOMEM. out is filled as far as
 * the document was read, also on MB_EINVAL; free it with
 * dataset_stac_result_free in every case.
 */
int dataset_stac_judge(dataset_stac_result *out, const char *doc, size_t len, const cJSON *spec,
                       char msg[DATASET_MSG_MAX]);

void dataset_stac_result_free(dataset_stac_result *r);

/*
 * The links the links gate checks: every links[] entry whose rel is self,
 * root, parent, item, child or license, its href resolved against base
 * (spec.catalog.stac.url), in document order, as a NULL-terminated array of
 * URLs in *out (free with dataset_stac_links_free). 0; MB_EINVAL when the
 * document is not a STAC object with links or an href of those rels is not a
 * URL (msg names it); MB_ENOMEM.
 */
int dataset_stac_links(char ***out, const char *doc, size_t len, const char *base, char msg[DATASET_MSG_MAX]);

void dataset_stac_links_free(char **links);

#endif

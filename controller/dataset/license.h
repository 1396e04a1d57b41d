/*
 * The license gate (API.md "DatasetPromotion"): spec.license is an identifier
 * on the SPDX License List pinned in the project (controller/dataset/
 * spdx-licenses.tsv, made by hack/spdx-licenses.sh from a pinned package and
 * turned into C at build time by controller/dataset/spdx_gen.cmake), compared as SPDX writes
 * it (case-sensitive); a deprecated identifier is refused with its
 * replacement; or a custom LicenseRef-<idstring> (idstring: letters, digits,
 * "-" and ".", SPDX specification Annex D). And it equals what the DCAT
 * document (dct:license: the identifier, or the SPDX license page
 * http(s)://spdx.org/licenses/<id> with or without .html or .json) and the
 * STAC document (license: the identifier; "other", "proprietary" and
 * "various" equal nothing) declare. Pure: strings in, verdict out.
 */
#ifndef MB_DATASET_LICENSE_H
#define MB_DATASET_LICENSE_H

#include "dataset/verdict.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *id;
    bool deprecated;
    const char *replacement; /* for a deprecated id: what SPDX names in its place, or NULL */
} dataset_spdx_license;

/* The generated list (sorted by strcmp), its length and the License List version ("3.29"). */
extern const dataset_spdx_license dataset_spdx_licenses[];
extern const size_t dataset_spdx_count;
extern const char dataset_spdx_version[];

/* The entry for id (exact, case-sensitive), or NULL. */
const dataset_spdx_license *dataset_spdx_find(const char *id);

/* Whether s is LicenseRef-<idstring> with idstring 1*(ALPHA / DIGIT / "-" / "."). */
bool dataset_license_ref_valid(const char *s);

/*
 * spec.license alone: 0 when it is a current listed identifier or a valid
 * LicenseRef; MB_EINVAL naming spec.license and what to write instead
 * (the replacement of a deprecated id; the listed spelling of a wrong-case
 * one).
 */
int dataset_license_check_spec(const char *license, char msg[DATASET_MSG_MAX]);

/*
 * The SPDX identifier a DCAT dct:license value names: the value itself, or
 * the <id> of http(s)://spdx.org/licenses/<id>[.html|.json]. A borrowed
 * pointer into value with its length in *len; NULL when value is NULL.
 */
const char *dataset_license_from_dcat(const char *value, size_t *len);

/*
 * The whole gate: spec.license checked as above, then equal to every one of
 * the ndcat dct:license values read from the DCAT document (at least one) and
 * to the STAC license (not NULL). A side that declared none fails the gate
 * naming the document that must declare it.
 */
int dataset_license_judge(const char *license, const char *const *dcat, size_t ndcat, const char *stac,
                          char msg[DATASET_MSG_MAX]);

#endif

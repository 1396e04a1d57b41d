/*
 * The published index (API.md "DatasetPromotion", Details "Index"): one
 * ConfigMap (spec.publish.indexConfigMap) whose data holds, under the key
 * <datasetID>, the entry of the version published for it as canonical JSON
 * (controller/audit/canonical.h): {auditRef, catalog: {dcat, prov, stac},
 * datasetID, license, policyLabel, versionID}. Pure updates of that data: the
 * controller writes what these return with a resourceVersion precondition
 * and starts again from a fresh read on a conflict, so no update is lost.
 */
#ifndef MB_DATASET_INDEX_H
#define MB_DATASET_INDEX_H

#include "dataset/verdict.h"

#include <cjson/cJSON.h>

/* A promotion that would make the ConfigMap's data larger than this blocks. */
#define DATASET_INDEX_MAX_BYTES (900L * 1024L)

/* The policy-label gate: spec.policyLabel is public, restricted or sensitive. 0 or MB_EINVAL. */
int dataset_policy_label_judge(const cJSON *spec, char msg[DATASET_MSG_MAX]);

/*
 * The index entry of spec's version, sealed by audit_ref (the promotion's
 * receipt), as canonical JSON in *out (caller frees). 0; MB_EINVAL naming
 * the spec field that cannot go into an entry (a datasetID that is not a
 * ConfigMap key, an empty versionID, a bad policyLabel or auditRef);
 * MB_ENOMEM.
 */
int dataset_index_entry(char **out, const cJSON *spec, const char *audit_ref, char msg[DATASET_MSG_MAX]);

/*
 * The ConfigMap data (an object of strings, NULL for none) with entry (from
 * dataset_index_entry) published: a new object in *out (caller deletes), and
 * in *replaced the entry it replaces (caller frees), or NULL when the
 * dataset had none or already has exactly this entry (then *out equals
 * data). MB_EINVAL when the dataset's key holds the same versionID with
 * another entry (a version is published once), holds no entry, or the data
 * would pass DATASET_INDEX_MAX_BYTES; MB_ENOMEM. On error *out and
 * *replaced are NULL.
 */
int dataset_index_update(cJSON **out, char **replaced, const cJSON *data, const char *entry, char msg[DATASET_MSG_MAX]);

/*
 * The data with the entry of dataset_id removed when it is version_id's (on
 * revoke: true or deletion): a new object in *out, the removed entry in
 * *removed (NULL when the dataset had no entry or another version's, which
 * stays). 0; MB_EINVAL when the key holds no entry; MB_ENOMEM.
 */
int dataset_index_remove(cJSON **out, char **removed, const cJSON *data, const char *dataset_id, const char *version_id,
                         char msg[DATASET_MSG_MAX]);

#endif

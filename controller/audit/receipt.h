/*
 * Receipts and their hash chain. A receipt is a JSON object in an object's
 * status recording a terminal outcome (a GovernedAPIRelease's status.history[]
 * entry, a DatasetPromotion's or PolicyBundle's status.receipt). It carries
 * auditRef, the audit_ref() of its body, and prevAuditRef, the auditRef of the
 * previous receipt of the same object ("" for the first).
 *
 * The body is the entry itself without its "auditRef" member, plus the
 * identity of the object it belongs to under "object":
 *
 *   {...every member of the entry but auditRef..., "prevAuditRef": "...",
 *    "object": {"apiGroup": "governance.kfm.dev", "kind": "GovernedAPIRelease",
 *               "namespace": "kfm", "name": "kfm-api", "uid": "..."}}
 *
 * so every member ever added to an entry is covered without a list to keep
 * up to date, and a receipt can be recomputed from the object alone (any
 * RFC 8785 implementation and sha256sum will do). The identity uses the API
 * group, not apiVersion: the version is how a reader chose to look at the
 * object (kubectl may show v1beta1 after a CRD upgrade) and must not break
 * receipts; the uid pins the object instance, so a receipt copied onto a
 * re-created or restored object no longer verifies.
 *
 * What callers must know: put only members the CRD schema declares into an
 * entry (the API server prunes unknown members, which would break the
 * receipt), never null values (dropped the same way; audit_seal refuses
 * them), and not a member named "object" (reserved for the identity). Sealing
 * is not idempotent: append a receipt once per terminal outcome.
 */
#ifndef MB_AUDIT_RECEIPT_H
#define MB_AUDIT_RECEIPT_H

#include "audit/canonical.h"

#include <cjson/cJSON.h>

/* status.history keeps the newest this many entries. */
#define AUDIT_HISTORY_MAX 20

/*
 * The auditRef entry should carry as a receipt of object (a Kubernetes object:
 * apiVersion, kind, metadata.namespace, metadata.name and metadata.uid are
 * read from it). The entry's own auditRef, if any, is ignored; its
 * prevAuditRef is part of the body as it stands. On error out is "".
 * 0, MB_EINVAL (the object lacks an identity field, the entry is not an
 * object, has a member named "object", or has no canonical form), MB_ENOMEM
 * or MB_ERROR (the digest failed, as in audit_ref).
 */
int audit_receipt_ref(char out[AUDIT_REF_SIZE], const cJSON *entry, const cJSON *object);

/*
 * A receipt that seals the results a decision was taken on (a release's
 * history entry) carries them in its "verification" member, an array, and
 * their digest in "verificationDigest": audit_results_digest() of that array,
 * so the digest can be recomputed from the entry alone (audit/verify.h
 * checks it). Entries written before these members existed carry neither.
 */
#define AUDIT_RESULTS_MEMBER "verification"
#define AUDIT_RESULTS_DIGEST_MEMBER "verificationDigest"

/*
 * "sha256:" + hex SHA-256 of the canonical JSON of results (audit_ref() of
 * the array). On error out is "". 0, MB_EINVAL (results is not an array or
 * has no canonical form), MB_ENOMEM or MB_ERROR.
 */
int audit_results_digest(char out[AUDIT_REF_SIZE], const cJSON *results);

/*
 * Seals entry as the next receipt of object: sets entry.prevAuditRef to
 * prev_audit_ref ("" when NULL or empty) and then entry.auditRef, replacing
 * either if present. prev_audit_ref must be empty or well-formed. On error
 * entry is unchanged. 0, MB_EINVAL (see audit_receipt_ref; also a malformed
 * prev_audit_ref or a null value anywhere in entry), MB_ENOMEM or MB_ERROR.
 */
int audit_seal(cJSON *entry, const cJSON *object, const char *prev_audit_ref);

/*
 * Appends entry to status.history (created when absent) as the next receipt
 * of object: the previous entry's auditRef becomes its prevAuditRef, it is
 * sealed, appended last, and the oldest entries are dropped until at most
 * AUDIT_HISTORY_MAX remain. entry is taken in every case (freed on error);
 * on error status is unchanged. MB_EINVAL when status.history is not a list,
 * when its last entry has no well-formed auditRef to chain to (the history
 * was edited by hand: `membrane receipt verify` shows how), or as audit_seal.
 */
int audit_history_append(cJSON *status, cJSON *entry, const cJSON *object);

/*
 * Sets status.receipt to entry as the next receipt of object (the shape of
 * DatasetPromotion and PolicyBundle): the current receipt's auditRef, if there
 * is a receipt, becomes its prevAuditRef, then it is sealed and replaces the
 * current one. entry is taken in every case; on error status is unchanged.
 * MB_EINVAL when status.receipt is not an object or has no well-formed
 * auditRef, or as audit_seal.
 */
int audit_receipt_set(cJSON *status, cJSON *entry, const cJSON *object);

#endif

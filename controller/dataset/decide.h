/*
 * DatasetPromotion: the pure decision. From what was observed (the
 * promotion, the index ConfigMap as cached, the transfers done so far for
 * the promotion's generation, and the clock) to a plan: the status to write,
 * the next action, the Events and when to look again. No I/O, no globals;
 * API.md "DatasetPromotion" lives here, the gates' judges in the modules
 * beside it (license.h, dcat.h, stac.h, prov.h, index.h).
 *
 * The seven gates, in the order status.gates shows them: checksums,
 * license, policy-label, catalog-dcat, catalog-stac, catalog-prov, links.
 * Each is Passed, Failed (only a spec or source change helps), Unavailable
 * (a server down, 5xx, a timeout or stall: transient) or Pending (its
 * transfers run). The promotion is
 *
 *   - Blocked with Stalled=True and the reason of the first failed gate
 *     (<Gate>Failed: ChecksumsFailed, LicenseFailed, PolicyLabelFailed,
 *     CatalogDCATFailed, CatalogSTACFailed, CatalogPROVFailed, LinksFailed),
 *     until metadata.generation changes; a gate that cannot be evaluated
 *     because what it judges could not be read fails so too;
 *   - else Blocked with Reconciling=True, reason SourceUnavailable, when a
 *     gate is Unavailable: the failed transfers start again after a backoff
 *     (5 s, doubling, at most 5 min);
 *   - else Validating (Reconciling=True, reason Validating) while transfers
 *     run, with status.progress {bytesHashed, bytesTotal, updatedAt} while
 *     checksums runs, written at most every DATASET_PROGRESS_MS;
 *   - else, every gate passed: the receipt is sealed into the status first
 *     (phase Validating, reason Publishing), then the index entry is
 *     written, then phase Promoted, Ready=True, Published=True.
 *
 * The index (spec.publish.indexConfigMap): one key per datasetID holding
 * dataset_index_entry of the spec sealed by the receipt's auditRef. A
 * different versionID's entry is replaced (named in the receipt as
 * replacedEntry); the same versionID with another entry, or an index over
 * 900 KiB, blocks (VersionConflict, IndexFull; Stalled). A Promoted
 * promotion whose entry was removed by hand is written again (Warning Event
 * IndexEntryRestored); one whose entry another version replaced stays
 * Promoted with Published=False, reason Superseded.
 *
 * spec.revoke: true removes the entry when it is this promotion's (its
 * auditRef is that of the promotion's Promoted receipt), then phase Revoked
 * with a Revoked receipt naming the removed entry. Deletion removes it the
 * same way, then the finalizer governance.kfm.dev/published-index, which is
 * added before anything is published.
 *
 * The receipt (status.receipt, audit_receipt_set, chained): Promoted:
 * {outcome, generation, promotedAt, datasetID, versionID, gates: [{name,
 * passed, message}], artifacts: [{name, digest, sizeBytes}], documents:
 * {dcat, stac, prov} (their SHA-256), inputsDigest (sha256 of the canonical
 * {artifacts, documents}), indexConfigMap, indexEntry (the entry without its
 * auditRef, which is the receipt's own), replacedEntry}; Revoked: {outcome,
 * generation, revokedAt, datasetID, versionID, indexConfigMap,
 * removedEntry}. membrane_promotions_total{outcome} counts Promoted, Blocked
 * and Revoked, once per transition.
 */
#ifndef MB_DATASET_DECIDE_H
#define MB_DATASET_DECIDE_H

#include "runtime/events.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define DATASET_API_VERSION "governance.kfm.dev/v1alpha1"
#define DATASET_KIND "DatasetPromotion"
#define DATASET_FINALIZER "governance.kfm.dev/published-index"
#define DATASET_INDEX_DEFAULT "kfm-published-datasets"
#define DATASET_MANAGED_BY_LABEL "app.kubernetes.io/managed-by"
#define DATASET_MANAGED_BY "membrane"
#define DATASET_MAX_ARTIFACTS 64
#define DATASET_MAX_LINKS 64
#define DATASET_DOWNLOADS_AT_ONCE 4
#define DATASET_PROGRESS_MS 5000L
#define DATASET_BACKOFF_BASE_MS 5000L
#define DATASET_BACKOFF_MAX_MS 300000L
#define DATASET_RESYNC_MS 600000L

enum { DATASET_DOC_DCAT = 0, DATASET_DOC_STAC, DATASET_DOC_PROV, DATASET_NDOCS };

typedef enum {
    DATASET_ITEM_NONE = 0,    /* not started */
    DATASET_ITEM_RUNNING,     /* on the transfer loop */
    DATASET_ITEM_UNAVAILABLE, /* transient: no connection, a timeout or stall, a 5xx (message) */
    DATASET_ITEM_REFUSED,     /* terminal: a 4xx, too large, a refused redirect (message) */
    DATASET_ITEM_DONE,        /* a 2xx answer in full */
} dataset_item_state;

/* One transfer: an artifact's download, a catalog document's fetch or a link's check. */
typedef struct {
    dataset_item_state state;
    const char *message;    /* UNAVAILABLE, REFUSED: what happened (one sentence) */
    const char *sha256_hex; /* DONE: of the bytes received */
    long long bytes;        /* received so far (hashed) */
    long long total;        /* expected: spec sizeBytes, or Content-Length; -1 unknown */
    const char *body;       /* documents, DONE: the bytes */
    size_t len;
    long status; /* HTTP status when answered */
} dataset_item;

/* The transfers of the promotion's current generation (zero: none yet). */
typedef struct {
    const dataset_item *artifacts; /* one per spec.artifacts[] in order, or NULL: none started */
    size_t nartifacts;
    dataset_item docs[DATASET_NDOCS];
    const dataset_item *links; /* one per STAC link, once the STAC document is in */
    const char *const *link_urls;
    size_t nlinks;
    bool links_listed;         /* the STAC document was read for its links */
    const char *links_message; /* its links could not be listed: why */
    bool removed;              /* this process removed the promotion's entry (UNPUBLISH) for this generation */
    unsigned attempts;         /* rounds that ended with a transient failure, in a row */
    time_t failed_at;          /* when the last of them was seen */
} dataset_work;

typedef struct {
    const cJSON *promotion; /* as read (never modified) */
    const cJSON *index;     /* the index ConfigMap (cached or as last written); NULL when absent */
    dataset_work work;
    time_t now;
} dataset_observed;

typedef enum {
    DATASET_ACT_NONE = 0,
    DATASET_ACT_ADD_FINALIZER,    /* add DATASET_FINALIZER, then decide again */
    DATASET_ACT_FETCH,            /* start what is not started or failed transiently (at most 4 downloads at once) */
    DATASET_ACT_SEAL,             /* write the status (its new receipt) before publishing, then decide again */
    DATASET_ACT_PUBLISH,          /* write entry into the index (replacing expect_replaced), then decide again */
    DATASET_ACT_UNPUBLISH,        /* remove the entry whose auditRef is unpublish_ref, then decide again */
    DATASET_ACT_REMOVE_FINALIZER, /* deletion: the entry is gone */
} dataset_action;

#define DATASET_MAX_EVENTS 3

typedef struct {
    cJSON *status; /* the whole new status, NULL when nothing changes */
    dataset_action action;
    const char *phase;      /* after this plan (static) */
    const char *outcome;    /* membrane_promotions_total: Promoted, Blocked, Revoked; NULL none */
    char index[254];        /* spec.publish.indexConfigMap or the default */
    char *entry;            /* PUBLISH: the entry (canonical JSON), owned */
    char *expect_replaced;  /* PUBLISH: the entry it replaces as sealed, owned; NULL: none */
    char unpublish_ref[80]; /* UNPUBLISH: the auditRef of the entry to remove */
    bool retry;             /* FETCH: the transfers that failed transiently start again too (their backoff is over) */
    bool drop_work;         /* the transfers of this generation are not needed any more */
    event_planned events[DATASET_MAX_EVENTS];
    size_t n_events;
    long requeue_ms;
    const cJSON *receipt; /* the receipt sealed by this plan (borrowed from status), NULL: none */
} dataset_plan;

int dataset_decide(dataset_plan *out, const dataset_observed *obs);

void dataset_plan_clear(dataset_plan *plan);

/* spec.publish.indexConfigMap or DATASET_INDEX_DEFAULT into out; false when it does not fit. */
bool dataset_index_name(char out[254], const cJSON *promotion);

/* The delay before attempt+1 after attempt failures in a row: 5 s, 10 s, 20 s ... at most 5 min. */
long dataset_backoff_ms(unsigned attempts);

/* The auditRef of the entry this promotion published (its last Promoted receipt), or NULL. Borrowed. */
const char *dataset_published_ref(const cJSON *promotion);

#endif

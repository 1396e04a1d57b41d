/*
 * DatasetPromotion: the transfers of one promotion's generation, kept by the
 * controller per key, and the I/O around them: artifact downloads (kind
 * "artifact", streamed and hashed, never kept in memory, at most
 * DATASET_DOWNLOADS_AT_ONCE at once, spec sizeBytes as the byte limit), the
 * catalog documents (kind "document", kept up to 4 MiB each), the STAC
 * links (kind "link", HEAD, GET when HEAD is not allowed), all on the shared
 * transfer loop with the bearer token of spec.sourceAuthSecretRef and the
 * extra CA of spec.caSecretRef (read by name for every start, never cached,
 * wiped after use); and the index
 * ConfigMap's writes with resourceVersion preconditions. Private to
 * controller/dataset.
 */
#ifndef MB_DATASET_WORK_H
#define MB_DATASET_WORK_H

#include "dataset/decide.h"
#include "kube/client.h"
#include "net/transfer.h"
#include "runtime/keyed_transfer.h"
#include "runtime/loop.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <time.h>

#define DATASET_CONNECT_TIMEOUT_MS 30000L
#define DATASET_STALL_SECONDS 60L
#define DATASET_INDEX_RETRIES 32

typedef struct {
    keyed_transfer *x; /* while running (and until collected) */
    dataset_item_state state;
    char *msg;
    char sha[65];
    long long bytes, total;
    char *body; /* documents */
    size_t len;
    long status;
    bool get; /* links: HEAD was not allowed, GET instead */
} dataset_slot;

typedef struct {
    long long gen;
    bool started;
    dataset_slot art[DATASET_MAX_ARTIFACTS];
    char *art_url[DATASET_MAX_ARTIFACTS]; /* for messages */
    char *doc_url[DATASET_NDOCS];
    dataset_item art_view[DATASET_MAX_ARTIFACTS];
    size_t nart;
    dataset_slot doc[DATASET_NDOCS];
    dataset_slot *links;
    dataset_item *link_view;
    char **link_urls;
    size_t nlinks;
    bool links_listed;
    char *links_msg;
    unsigned attempts;
    time_t failed_at;
    bool failed_round; /* a transient failure was seen since the last retry */
    bool removed;
} dataset_work_state;

/* Cancels what runs and frees everything; the struct is zeroed. */
void dataset_work_clear(dataset_work_state *w);

/* Takes in what ended (and the bytes so far of what runs). 0 or MB_ENOMEM. */
int dataset_work_collect(dataset_work_state *w, time_t now);

/* The view decide reads (pointers into w). */
void dataset_work_view(dataset_work *out, dataset_work_state *w);

/*
 * Starts what is not started (and, with retry, what failed transiently):
 * the documents, artifacts up to DATASET_DOWNLOADS_AT_ONCE running, and the
 * STAC links once the STAC document is in. Each end enqueues key on l. A
 * token or CA Secret that cannot be read marks what would start UNAVAILABLE
 * with the message naming its field. 0 or MB_ENOMEM.
 */
int dataset_work_fetch(dataset_work_state *w, kube_client *kc, net_loop *net, loop *l, const char *key,
                       const cJSON *promotion, bool retry, time_t now);

/*
 * Writes entry under the promotion's datasetID into the index ConfigMap
 * name (created when absent, labelled app.kubernetes.io/managed-by=
 * membrane), when the key holds expect_replaced (NULL: nothing) or entry
 * already; with the resourceVersion of the copy read, starting again from a
 * fresh read on a conflict. *written: the ConfigMap as the API answered
 * (NULL when nothing was written). 0; MB_ECONFLICT when the key holds
 * something else (decide again); MB_EINVAL when the index would pass 900 KiB;
 * other errors to retry.
 */
int dataset_index_publish(cJSON **written, kube_client *kc, const cJSON *promotion, const char *name, const char *entry,
                          const char *expect_replaced, const cJSON *cached);

/*
 * Removes the datasetID's key from the index when its entry is sealed by ref
 * (another promotion's entry stays), in the same way. *removed: whether it
 * did. 0 or an error to retry.
 */
int dataset_index_unpublish(cJSON **written, bool *removed, kube_client *kc, const cJSON *promotion, const char *name,
                            const char *ref, const cJSON *cached);

#endif

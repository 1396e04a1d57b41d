/*
 * client-go's shared informer in C, one per resource type: a thread lists the
 * resource (optionally in one namespace and by label or field selector), fills
 * the cache (runtime/store.h), then watches from the list's resourceVersion and
 * applies every event to the cache, calling the event handlers after each
 * change. When the server ends a watch it watches again from the newest
 * resourceVersion seen (bookmarks included); on 410 Gone it relists, and a
 * relist that no longer holds an object reports its delete; on other errors it
 * backs off (exponential, capped, jittered) and watches again.
 *
 * Objects read from the informer are shared, read-only references: NEVER modify
 * an object from the store (cJSON_Duplicate() it first), and drop each
 * reference with informer_obj_free().
 */
#ifndef MB_RUNTIME_INFORMER_H
#define MB_RUNTIME_INFORMER_H

#include "kube/client.h"
#include "runtime/store.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

typedef struct informer informer;

/*
 * Event handlers, called on the informer's thread, in the order of the cache
 * changes, never under the cache lock. The objects are borrowed for the call
 * (read-only); keep what you need by copying it, e.g. the key to enqueue.
 * Handlers should be quick: the next event waits for them. Any may be NULL.
 */
typedef struct {
    void (*on_add)(void *ctx, const cJSON *obj);
    void (*on_update)(void *ctx, const cJSON *old_obj, const cJSON *new_obj);
    /* obj is the last known state: the watch event's, or the cache's when a relist found it gone. */
    void (*on_delete)(void *ctx, const cJSON *obj);
    void *ctx;
} informer_handlers;

typedef struct {
    const char *namespace;      /* NULL: all namespaces */
    const char *label_selector; /* NULL: none */
    const char *field_selector; /* NULL: none */
    long page_size;             /* list page size; 0: 100 */
    int watch_timeout_seconds;  /* 0: a random 300..600 per watch, as client-go */
    long backoff_base_ms;       /* first retry delay after an error; 0: 800 */
    long backoff_max_ms;        /* cap; 0: 30000 */
    /*
     * Trims an object before it is cached (client-go's SetTransform), to keep
     * only what the controller reads; NULL: none. The last-applied-configuration
     * annotation is always dropped, and metadata.managedFields too when there is
     * no transform; a transform keeps of managedFields what its readers need.
     */
    void (*transform)(cJSON *obj);
} informer_opts;

/* The client is borrowed and must outlive the informer. opts may be NULL; strings are copied. */
int informer_new(informer **out, kube_client *client, const kube_resource *resource, const informer_opts *opts);

/* Stops (as informer_stop) and frees. Accepts NULL. */
void informer_free(informer *inf);

/* Adds a set of handlers (copied). Only before informer_start: MB_EINVAL after. */
int informer_add_handlers(informer *inf, const informer_handlers *handlers);

/*
 * Adds a named index (see informer_index_fn; informer_index_owner and
 * informer_index_namespace are ready-made). Best before start; added later, it
 * files the objects already cached.
 */
int informer_add_index(informer *inf, const char *name, informer_index_fn fn, void *ctx);

/* Starts the list-and-watch thread. MB_EINVAL when already started. */
int informer_start(informer *inf);

/*
 * Asks the thread to stop and joins it. A watch and a back-off wait end at
 * once; a list in flight ends with its request (bounded by the client's
 * timeout). Idempotent; the cache stays readable afterwards.
 */
void informer_stop(informer *inf);

/* Asks the thread to stop without waiting for it: several informers then stop together. informer_stop joins. */
void informer_stop_request(informer *inf);

/*
 * False, with the reason in reason, when the informer's loop is not running
 * or has shown no sign of life (a list, a watch, an event) for longer than a
 * watch can last; for /healthz.
 */
bool informer_alive(informer *inf, char *reason, size_t size);

/* True once the first list has filled the cache. */
bool informer_has_synced(informer *inf);

/* Waits until synced: 0, MB_ETIMEOUT after timeout_ms, or MB_ESTOPPED when stopped first. */
int informer_wait_for_sync(informer *inf, long timeout_ms);

/* A reference to namespace/name (ns NULL or "" for cluster-scoped); MB_ENOTFOUND when absent. */
int informer_get(informer_obj **out, informer *inf, const char *ns, const char *name);

/* A reference to the object under a store key ("ns/name"). */
int informer_get_key(informer_obj **out, informer *inf, const char *key);

/* References to every cached object, sorted by key. */
int informer_list(informer_objs **out, informer *inf);

/* References to the objects filed under key in the named index, sorted by key. */
int informer_by_index(informer_objs **out, informer *inf, const char *index, const char *key);

/* Borrowed: the cache itself, for reads. */
informer_store *informer_cache(informer *inf);

/* Borrowed: the resource this informer watches. */
const kube_resource *informer_resource(const informer *inf);

/* Trims obj as the cache does before keeping it: the last-applied-configuration annotation dropped, then the
 * transform of informer_opts (without one, managedFields dropped). For a controller keeping its own writes'
 * answers beside the cache. */
void informer_trim(const informer *inf, cJSON *obj);

/*
 * Whether an update changed nothing of the cached (trimmed) object but its
 * metadata.resourceVersion: a status field the trim drops, managedFields, a
 * timestamp nobody reads. Such an update cannot change a decision made from the
 * cache, so a handler may leave it out (controller-runtime's predicates).
 */
bool informer_same_but_version(const cJSON *old_obj, const cJSON *new_obj);

/*
 * How many times a watch ended (server timeout, error, 410) and another was
 * started; a stop is not counted. For membrane_watch_restarts_total{resource}.
 */
unsigned long informer_watch_restarts(informer *inf);

/*
 * Adds a collector to the process-wide registry that reports inf's watch
 * restarts as membrane_watch_restarts_total{resource="<plural>.<group>"}
 * ("pods" for the core group). Call informer_metrics_remove before
 * informer_free. 0 or MB_ENOMEM. (runtime/informer_metrics.c)
 */
int informer_metrics_add(informer *inf);
void informer_metrics_remove(informer *inf);

/* How many lists have replaced the cache (the first one included). */
unsigned long informer_relists(informer *inf);

/* A copy of the newest resourceVersion seen (NULL before the first list). The caller frees. */
char *informer_resource_version(informer *inf);

/*
 * Backoff before retry number attempt (1-based): base * 2^(attempt-1) capped at
 * max, then jittered down to between half and all of it. rnd is a uniform
 * value in [0, 1). Pure; exposed for tests.
 */
long informer_backoff_ms(long base_ms, long max_ms, unsigned attempt, double rnd);

#endif

/*
 * The informer's cache, without any I/O: a thread-safe map from "namespace/name"
 * (or "name" for cluster-scoped objects) to immutable, reference-counted cJSON
 * objects, with named secondary indexes maintained on every change, and the
 * relist diff (replace) that turns a fresh list into adds, updates and deletes.
 * The informer (runtime/informer.h) feeds it from list and watch; it is kept
 * separate so that it can be tested without a server.
 *
 * Reads hand out references, not copies: an informer_obj is never modified
 * once it is in the store (a change replaces it by a new one), so any number of
 * threads may read the same object while it is referenced, and holding a
 * reference costs one atomic increment. NEVER modify an object from the store;
 * cJSON_Duplicate() it first. Drop each reference with informer_obj_free().
 */
#ifndef MB_RUNTIME_STORE_H
#define MB_RUNTIME_STORE_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* One cached object: read-only, reference-counted. */
typedef struct informer_obj informer_obj;

/* Borrowed, read-only; valid while the caller holds its reference. */
const cJSON *informer_obj_json(const informer_obj *o);

/* Borrowed: the store key, "namespace/name" or "name". */
const char *informer_obj_key(const informer_obj *o);

/* Borrowed: metadata.resourceVersion, "" when absent. */
const char *informer_obj_resource_version(const informer_obj *o);

/* Takes one more reference; returns o. */
informer_obj *informer_obj_ref(informer_obj *o);

/* Drops one reference; the object is freed with its last one. Accepts NULL. */
void informer_obj_free(informer_obj *o);

/* A list of references, sorted by key. */
typedef struct {
    size_t len;
    informer_obj **items;
} informer_objs;

/* Drops every reference and frees the list. Accepts NULL. */
void informer_objs_free(informer_objs *l);

/*
 * The store key of an object: "namespace/name", or "name" when it has no
 * namespace (client-go's MetaNamespaceKeyFunc). MB_EINVAL when metadata.name
 * is missing. The caller frees *out.
 */
int informer_key(char **out, const cJSON *obj);

/* The keys an index function files one object under. */
typedef struct informer_index_keys informer_index_keys;

/* Adds one key (copied; duplicates are ignored). 0 or MB_ENOMEM. */
int informer_index_keys_add(informer_index_keys *keys, const char *key);

/*
 * An index function: adds the index keys of obj to out (none is fine) and
 * returns 0, or a negative mb_error code. It must be a pure function of obj.
 */
typedef int (*informer_index_fn)(informer_index_keys *out, const cJSON *obj, void *ctx);

/* Index function: the object's namespace ("" for cluster-scoped objects). */
int informer_index_namespace(informer_index_keys *out, const cJSON *obj, void *ctx);

/*
 * Index function: one key per metadata.ownerReferences entry,
 * "<object namespace>/<owner kind>/<owner name>" (e.g. "ns/ReplicaSet/web-5d8f"),
 * or "<owner kind>/<owner name>" for cluster-scoped objects. ctx is unused.
 */
int informer_index_owner(informer_index_keys *out, const cJSON *obj, void *ctx);

typedef enum {
    INFORMER_ADDED,
    INFORMER_UPDATED,
    INFORMER_DELETED,
} informer_change_type;

/*
 * One change the store went through. ADDED: new_obj. UPDATED: old_obj and
 * new_obj. DELETED: old_obj, the last known state (the watch event's final
 * state when there was one, else what the cache held).
 */
typedef struct {
    informer_change_type type;
    informer_obj *old_obj;
    informer_obj *new_obj;
} informer_change;

/* Changes in the order they happened; start zeroed, reuse after clear. */
typedef struct {
    size_t len;
    size_t cap;
    informer_change *items;
} informer_changes;

/* Drops the references and empties the list (keeps nothing allocated). */
void informer_changes_clear(informer_changes *c);

typedef struct informer_store informer_store;

int informer_store_new(informer_store **out);

/* Accepts NULL. Objects still referenced elsewhere stay valid. */
void informer_store_free(informer_store *s);

/*
 * Adds a named index (name copied) and files the objects already in the store
 * under it. MB_EEXISTS when the name is taken.
 */
int informer_store_add_index(informer_store *s, const char *name, informer_index_fn fn, void *ctx);

/*
 * Adds or replaces obj (ADDED or UPDATED, appended to out). Takes ownership of
 * obj in every case. On MB_ENOMEM the store stays consistent but may have lost
 * the object's previous version: a relist repairs it.
 */
int informer_store_upsert(informer_changes *out, informer_store *s, cJSON *obj);

/*
 * Removes the object with obj's key; obj is its final state (appended to out
 * as DELETED). Nothing happens when the key is not in the store. Takes
 * ownership of obj.
 */
int informer_store_delete(informer_changes *out, informer_store *s, cJSON *obj);

/*
 * Makes the store hold exactly the objects of the array items (a relist) and
 * appends the difference to out: ADDED for new keys, UPDATED for keys whose
 * resourceVersion changed (unchanged objects give no change), DELETED for keys
 * no longer listed, in key order within each kind. Items without a name are
 * skipped. Takes ownership of items (NULL is an empty list). On error the store
 * is unchanged.
 */
int informer_store_replace(informer_changes *out, informer_store *s, cJSON *items);

/*
 * The same built one object at a time (a paged list feeds it as the pages
 * arrive, so that only one page is ever parsed at once): fresh_new, then
 * fresh_add for each listed object (taking ownership; objects without a name
 * are skipped), fresh_reset to start over, and fresh_commit, which makes the
 * store hold exactly those objects, appends the difference to out as replace
 * does, and frees f in every case. On error the store is unchanged.
 */
typedef struct informer_store_fresh informer_store_fresh;
int informer_store_fresh_new(informer_store_fresh **out, informer_store *s);
int informer_store_fresh_add(informer_store_fresh *f, cJSON *item);
void informer_store_fresh_reset(informer_store_fresh *f);
int informer_store_fresh_commit(informer_changes *out, informer_store_fresh *f);
void informer_store_fresh_free(informer_store_fresh *f);

/* A reference to the object under key; MB_ENOTFOUND when absent. */
int informer_store_get(informer_obj **out, informer_store *s, const char *key);

/* References to every object, sorted by key. */
int informer_store_list(informer_objs **out, informer_store *s);

/*
 * References to the objects filed under key in the named index, sorted by key
 * (an empty list when none). MB_ENOTFOUND when there is no such index.
 */
int informer_store_by_index(informer_objs **out, informer_store *s, const char *index, const char *key);

/* The number of objects. */
size_t informer_store_len(informer_store *s);

#endif

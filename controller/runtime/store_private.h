/*
 * Private to the informer's cache (runtime/store.c and runtime/store_index.c):
 * the index machinery the store keeps up to date on every change. An index's
 * data holds index key -> set of object keys (buckets of members) and object
 * key -> the index keys it was filed under, so that removing an object never
 * re-runs the index function. Nothing here locks: the store calls it under its
 * own lock, or on a state it builds aside. Errors are mb_error codes with the
 * message in mb_error_last().
 */
#ifndef MB_RUNTIME_STORE_PRIVATE_H
#define MB_RUNTIME_STORE_PRIVATE_H

#include "runtime/store.h"

#include <cjson/cJSON.h>

/* uthash reports a failed allocation by leaving the item's table pointer NULL. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>
/*
 * A table starts with 4 buckets, not uthash's 32, and doubles as it fills as
 * before. An index holds one member set per index key, most of them of one
 * object (the release of a Deployment, the pods of one): at 32 buckets each
 * set cost 512 bytes of empty buckets: 1 MB for 1,000 releases and their pods.
 */
#undef HASH_INITIAL_NUM_BUCKETS
#undef HASH_INITIAL_NUM_BUCKETS_LOG2
#define HASH_INITIAL_NUM_BUCKETS 4U
#define HASH_INITIAL_NUM_BUCKETS_LOG2 2U

/* The keys one object is filed under in one index (store.h keeps the type opaque). */
struct informer_index_keys {
    size_t len;
    size_t cap;
    char **keys;
};

/* A bucket's member: one object key. */
typedef struct informer_index_member {
    UT_hash_handle hh;
    char key[]; /* an object key */
} informer_index_member;

/* One index key and the set of object keys filed under it. */
typedef struct informer_index_bucket {
    UT_hash_handle hh;
    informer_index_member *members;
    char key[]; /* an index key */
} informer_index_bucket;

/* What one object is filed under in one index. */
typedef struct informer_index_filed {
    UT_hash_handle hh;
    informer_index_keys keys;
    char objkey[];
} informer_index_filed;

/* One index's data: index key -> object keys, and object key -> its index keys. */
typedef struct {
    informer_index_bucket *buckets;
    informer_index_filed *filed;
} informer_index_data;

/* A named index of a store, in the store's list of them. */
typedef struct informer_index {
    char *name;
    informer_index_fn fn;
    void *ctx;
    informer_index_data data;
    struct informer_index *next;
} informer_index;

/* Frees every key of keys and empties it. */
void informer_index_keys_clear(informer_index_keys *keys);

/* Runs one index function into a fresh key list (cleared on error). */
int informer_index_compute(informer_index_keys *out, const informer_index *ix, const cJSON *obj);

/* Files objkey under keys (moved into the index, also on error); on MB_ENOMEM nothing of objkey is filed. */
int informer_index_file(informer_index_data *d, const char *objkey, informer_index_keys *keys);

/* Removes objkey from every bucket it was filed under. Never allocates. */
void informer_index_unfile(informer_index_data *d, const char *objkey);

/* Frees everything d holds and leaves it empty. */
void informer_index_data_clear(informer_index_data *d);

#endif

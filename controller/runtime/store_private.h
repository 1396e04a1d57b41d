/*
 * Private to the informer's cache (runtime/store.c and runtime/store_index.c):
 * a state's entries and the index machinery the store keeps up to date on
 * every change. An index's data is a table of buckets, one per index key,
 * each holding the entries filed under that key; each entry holds where it is
 * filed (bucket and position, in every index), so that removing an object
 * never re-runs the index function and never searches. Nothing here locks:
 * the store calls it under its own lock, or on a state it builds aside.
 * Errors are mb_error codes with the message in mb_error_last().
 *
 * What it costs (glibc's chunks of 16 bytes, 8 of them its own): an object an
 * index files under no key costs that index nothing; under one key, 16 bytes
 * of its entry's places (one allocation per entry for all its places, 32 bytes
 * for the first) and 8 for its pointer in the bucket. A bucket is one
 * allocation, 24 bytes and its key, with its one member inline; from two on,
 * the members are an array of pointers beside it. The table of buckets is an
 * array of pointers, open addressing. Before, one object under one key of
 * one index held four uthash records (56-byte handles), a copy of its key in
 * two of them, a copy of the index key, and a hash table of one member's set:
 * some 550 bytes of heap where this takes some 100, and an index that filed
 * an object under no key still cost it some 115 (test_store.c's
 * test_index_heap; bench/store_bench.c: 1,000 releases under the release
 * controller's three indexes and 1,000 pods under its one took 1,322,560
 * bytes, now some 182,000).
 */
#ifndef MB_RUNTIME_STORE_PRIVATE_H
#define MB_RUNTIME_STORE_PRIVATE_H

#include "runtime/store.h"

#include <cjson/cJSON.h>
#include <stdint.h>

/* uthash reports a failed allocation by leaving the item's table pointer NULL. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>
/*
 * A state's table of entries starts with 4 buckets, not uthash's 32 (512
 * bytes), and doubles as it fills as before: many informers cache a handful
 * of objects, and a relist builds a second table beside the first.
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

typedef struct informer_index_bucket informer_index_bucket;

/* One place an entry is filed at: in index ix (the store's list order), members[pos] of bucket. */
typedef struct {
    informer_index_bucket *bucket;
    uint32_t ix;
    uint32_t pos;
} informer_index_place;

/* Every place one entry is filed at, in any index: one allocation, or none when there is none. */
typedef struct {
    uint32_t len;
    uint32_t cap;
    informer_index_place at[];
} informer_index_places;

/* A cached object in one state (the store's, or one built aside by a relist). */
typedef struct informer_entry {
    UT_hash_handle hh;
    informer_obj *obj;             /* its key is the hash key */
    informer_index_places *places; /* NULL when no index files it under any key */
} informer_entry;

/*
 * One index key and the entries filed under it, in no order. The first member
 * lives in the bucket (cap 1); from the second on, they are an array beside it
 * that grows by doubling, and goes back inline when one member is left.
 */
struct informer_index_bucket {
    uint32_t hash; /* of key */
    uint32_t len;
    uint32_t cap;
    union {
        informer_entry *one;   /* cap 1 */
        informer_entry **many; /* cap > 1 */
    } m;
    char key[]; /* the index key */
};

/* The members of b: b->len of them. */
static inline informer_entry *const *informer_index_members(const informer_index_bucket *b)
{
    return b->cap > 1 ? b->m.many : &b->m.one;
}

/*
 * One index's data: its buckets, open addressing with linear probing in an
 * array of cap slots (a power of two, or 0 while empty), at most three
 * quarters full. It grows by doubling and is freed when emptied, but does
 * not shrink in between (nor does a bucket's member array, until one member
 * is left): a relist builds the whole index anew, to size.
 */
typedef struct {
    informer_index_bucket **slots;
    size_t cap;
    size_t len;
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

/*
 * Files e under keys in d, the data of index number ix (keys are consumed,
 * also on error). On MB_ENOMEM nothing of e is filed in ix. e must not be
 * filed in ix yet.
 */
int informer_index_file(informer_index_data *d, uint32_t ix, informer_entry *e, informer_index_keys *keys);

/* Removes e from every bucket of d, the data of index number ix, it was filed in. Never allocates. */
void informer_index_unfile(informer_index_data *d, uint32_t ix, informer_entry *e);

/* Removes e from every index (datas[i] is index number i's). Never allocates. */
void informer_index_unfile_all(informer_index_data *const *datas, informer_entry *e);

/* The bucket of key in d, or NULL when nothing is filed under key. */
const informer_index_bucket *informer_index_find(const informer_index_data *d, const char *key);

/* Frees every bucket of d and leaves it empty (the entries' places are theirs to free). */
void informer_index_data_clear(informer_index_data *d);

#endif

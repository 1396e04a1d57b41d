/*
 * The indexes of the informer's cache: the index keys an index function
 * files an object under (informer_index_keys_add), the two index functions
 * every informer may use (by namespace, by owner), and an index's data kept
 * both ways (index key -> bucket of entries, entry -> its places in buckets)
 * so that an object is filed and unfiled without running its index function
 * again, each in time independent of how many objects share an index key
 * (store_private.h has the layout and what it costs). Nothing here locks: the
 * store (store.c) calls it under its own lock, or on a state it builds aside.
 */
#include "runtime/store_private.h"
#include "util/error.h"
#include "util/json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int informer_index_keys_add(informer_index_keys *keys, const char *key)
{
    char *copy;
    for (size_t i = 0; i < keys->len; i++)
        if (strcmp(keys->keys[i], key) == 0)
            return 0;
    if (keys->len == keys->cap) {
        size_t cap = keys->cap ? keys->cap * 2 : 4;
        char **k = realloc(keys->keys, cap * sizeof(*k));
        if (!k)
            return mb_error_set(MB_ENOMEM, "out of memory adding an index key");
        keys->keys = k;
        keys->cap = cap;
    }
    if (!(copy = strdup(key)))
        return mb_error_set(MB_ENOMEM, "out of memory adding an index key");
    keys->keys[keys->len++] = copy;
    return 0;
}

void informer_index_keys_clear(informer_index_keys *keys)
{
    for (size_t i = 0; i < keys->len; i++)
        free(keys->keys[i]);
    free(keys->keys);
    memset(keys, 0, sizeof(*keys));
}

int informer_index_namespace(informer_index_keys *out, const cJSON *obj, void *ctx)
{
    const char *ns = json_str(obj, "metadata", "namespace", NULL);
    (void)ctx;
    return informer_index_keys_add(out, ns ? ns : "");
}

int informer_index_owner(informer_index_keys *out, const cJSON *obj, void *ctx)
{
    const char *ns = json_str(obj, "metadata", "namespace", NULL);
    const cJSON *owners = json_get(obj, "metadata", "ownerReferences", NULL);
    const cJSON *ref;
    int err = 0;
    (void)ctx;
    cJSON_ArrayForEach(ref, owners) {
        const char *kind = json_str(ref, "kind", NULL);
        const char *name = json_str(ref, "name", NULL);
        char *key = NULL;
        int n;
        if (!kind || !name)
            continue;
        if (ns && *ns)
            n = asprintf(&key, "%s/%s/%s", ns, kind, name);
        else
            n = asprintf(&key, "%s/%s", kind, name);
        if (n < 0)
            return mb_error_set(MB_ENOMEM, "out of memory building an owner index key");
        err = informer_index_keys_add(out, key);
        free(key);
        if (err < 0)
            return err;
    }
    return 0;
}

/* Runs one index function into a fresh key list. */
int informer_index_compute(informer_index_keys *out, const informer_index *ix, const cJSON *obj)
{
    int err;
    memset(out, 0, sizeof(*out));
    if ((err = ix->fn(out, obj, ix->ctx)) < 0) {
        informer_index_keys_clear(out);
        return mb_error_wrap(err, "index %s", ix->name);
    }
    return 0;
}

/* ---- the table of buckets ---- */

/* FNV-1a, then murmur3's finalizer: linear probing uses the low bits, which FNV alone mixes poorly. */
static uint32_t key_hash(const char *key)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static informer_index_bucket *table_find(const informer_index_data *d, const char *key, uint32_t h)
{
    size_t mask = d->cap - 1;
    if (!d->cap)
        return NULL;
    for (size_t i = h & mask; d->slots[i]; i = (i + 1) & mask)
        if (d->slots[i]->hash == h && strcmp(d->slots[i]->key, key) == 0)
            return d->slots[i];
    return NULL;
}

/* Puts b in the first free slot from its home (there is one: the table is never full). */
static void table_put(informer_index_bucket **slots, size_t cap, informer_index_bucket *b)
{
    size_t i = b->hash & (cap - 1);
    while (slots[i])
        i = (i + 1) & (cap - 1);
    slots[i] = b;
}

/* Room for one more bucket: the table doubles when it would be more than three quarters full. */
static int table_reserve(informer_index_data *d)
{
    size_t cap = d->cap ? d->cap * 2 : 8;
    informer_index_bucket **slots;
    if ((d->len + 1) * 4 <= d->cap * 3)
        return 0;
    if (!(slots = calloc(cap, sizeof(*slots))))
        return mb_error_set(MB_ENOMEM, "out of memory growing an index");
    for (size_t i = 0; i < d->cap; i++)
        if (d->slots[i])
            table_put(slots, cap, d->slots[i]);
    free(d->slots);
    d->slots = slots;
    d->cap = cap;
    return 0;
}

/* Takes b out of the table, shifting back the buckets that probed past its slot (no tombstones). */
static void table_remove(informer_index_data *d, const informer_index_bucket *b)
{
    size_t mask = d->cap - 1, i = b->hash & mask, j;
    while (d->slots[i] != b)
        i = (i + 1) & mask;
    for (j = (i + 1) & mask; d->slots[j]; j = (j + 1) & mask) {
        size_t home = d->slots[j]->hash & mask;
        /* the bucket at j stays when its home lies cyclically in (i, j] */
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
            continue;
        d->slots[i] = d->slots[j];
        i = j;
    }
    d->slots[i] = NULL;
    if (--d->len == 0) {
        free(d->slots);
        d->slots = NULL;
        d->cap = 0;
    }
}

/* ---- buckets and places ---- */

static informer_index_place *place_in(informer_entry *e, const informer_index_bucket *b)
{
    for (uint32_t i = 0; i < e->places->len; i++)
        if (e->places->at[i].bucket == b)
            return &e->places->at[i];
    return NULL; /* not reached: every member has its place */
}

/* Appends e to the members of b; returns its position, or -1 when memory ran out (b unchanged). */
static long bucket_add(informer_index_bucket *b, informer_entry *e)
{
    if (b->len == b->cap) {
        /* 3 pointers fill glibc's smallest chunk; then doubling, so n adds cost O(n) */
        uint32_t cap = b->cap == 1 ? 3 : b->cap * 2;
        informer_entry **many = b->cap == 1 ? malloc(cap * sizeof(*many)) : realloc(b->m.many, cap * sizeof(*many));
        if (!many)
            return -1;
        if (b->cap == 1)
            many[0] = b->m.one;
        b->m.many = many;
        b->cap = cap;
    }
    b->m.many[b->len] = e; /* a bucket is never empty: one inline member is a full cap 1 */
    return b->len++;
}

/* Removes members[pos] of b: the last member moves into its place; an emptied bucket is freed. */
static void bucket_remove(informer_index_data *d, informer_index_bucket *b, uint32_t pos)
{
    informer_entry **m = b->cap > 1 ? b->m.many : &b->m.one;
    if (pos != --b->len) {
        m[pos] = m[b->len];
        place_in(m[pos], b)->pos = pos;
    }
    if (b->len == 0) {
        table_remove(d, b);
        if (b->cap > 1)
            free(b->m.many);
        free(b);
    } else if (b->len == 1 && b->cap > 1) {
        informer_entry *one = b->m.many[0];
        free(b->m.many);
        b->m.one = one;
        b->cap = 1;
    }
}

/* e's place list with room for more places; 0 or MB_ENOMEM (the list unchanged). */
static int places_reserve(informer_entry *e, uint32_t more)
{
    uint32_t len = e->places ? e->places->len : 0;
    informer_index_places *p;
    if (e->places && e->places->cap - len >= more)
        return 0;
    if (!(p = realloc(e->places, sizeof(*p) + (len + more) * sizeof(p->at[0]))))
        return mb_error_set(MB_ENOMEM, "out of memory indexing %s", informer_obj_key(e->obj));
    p->len = len;
    p->cap = len + more;
    e->places = p;
    return 0;
}

/* ---- index data ---- */

int informer_index_file(informer_index_data *d, uint32_t ix, informer_entry *e, informer_index_keys *keys)
{
    int err = 0;
    if (keys->len && (err = places_reserve(e, (uint32_t)keys->len)) < 0)
        goto done;
    for (size_t k = 0; k < keys->len; k++) {
        const char *key = keys->keys[k];
        uint32_t h = key_hash(key);
        informer_index_bucket *b = table_find(d, key, h);
        long pos = 0;
        if (b) {
            pos = bucket_add(b, e);
        } else if (table_reserve(d) < 0 || !(b = malloc(sizeof(*b) + strlen(key) + 1))) {
            pos = -1;
        } else {
            memset(b, 0, sizeof(*b));
            b->hash = h;
            b->len = b->cap = 1;
            b->m.one = e;
            strcpy(b->key, key);
            table_put(d->slots, d->cap, b);
            d->len++;
        }
        if (pos < 0) {
            informer_index_unfile(d, ix, e); /* what was filed above */
            err = mb_error_set(MB_ENOMEM, "out of memory indexing %s", informer_obj_key(e->obj));
            goto done;
        }
        e->places->at[e->places->len++] = (informer_index_place){b, ix, (uint32_t)pos};
    }
done:
    informer_index_keys_clear(keys);
    return err;
}

void informer_index_unfile(informer_index_data *d, uint32_t ix, informer_entry *e)
{
    informer_index_places *p = e->places;
    uint32_t kept = 0;
    if (!p)
        return;
    for (uint32_t i = 0; i < p->len; i++) {
        if (p->at[i].ix == ix)
            bucket_remove(d, p->at[i].bucket, p->at[i].pos);
        else
            p->at[kept++] = p->at[i];
    }
    p->len = kept;
    if (!kept) {
        free(p);
        e->places = NULL;
    }
}

void informer_index_unfile_all(informer_index_data *const *datas, informer_entry *e)
{
    informer_index_places *p = e->places;
    if (!p)
        return;
    for (uint32_t i = 0; i < p->len; i++)
        bucket_remove(datas[p->at[i].ix], p->at[i].bucket, p->at[i].pos);
    free(p);
    e->places = NULL;
}

const informer_index_bucket *informer_index_find(const informer_index_data *d, const char *key)
{
    return table_find(d, key, key_hash(key));
}

void informer_index_data_clear(informer_index_data *d)
{
    for (size_t i = 0; i < d->cap; i++) {
        informer_index_bucket *b = d->slots[i];
        if (!b)
            continue;
        if (b->cap > 1)
            free(b->m.many);
        free(b);
    }
    free(d->slots);
    memset(d, 0, sizeof(*d));
}

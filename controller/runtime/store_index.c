/*
 * The indexes of the informer's cache: the index keys an index function
 * files an object under (informer_index_keys_add), the two index functions
 * every informer may use (by namespace, by owner), and an index's data, kept
 * both ways (index key -> object keys, object key -> index keys) so that an
 * object is filed and unfiled without running its index function again.
 * Nothing here locks: the store (store.c) calls it under its own lock, or on
 * a state it builds aside.
 */
#include "runtime/store_private.h"
#include "util/error.h"
#include "util/json.h"

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

/* ---- index data ---- */

/* Removes objkey from every bucket it was filed under. Never allocates. */
void informer_index_unfile(informer_index_data *d, const char *objkey)
{
    informer_index_filed *f = NULL;
    HASH_FIND(hh, d->filed, objkey, strlen(objkey), f);
    if (!f)
        return;
    for (size_t i = 0; i < f->keys.len; i++) {
        const char *ik = f->keys.keys[i];
        informer_index_bucket *b = NULL;
        informer_index_member *m = NULL;
        HASH_FIND(hh, d->buckets, ik, strlen(ik), b);
        if (!b)
            continue;
        HASH_FIND(hh, b->members, objkey, strlen(objkey), m);
        if (m) {
            HASH_DEL(b->members, m);
            free(m);
        }
        if (!b->members) {
            HASH_DEL(d->buckets, b);
            free(b);
        }
    }
    HASH_DEL(d->filed, f);
    informer_index_keys_clear(&f->keys);
    free(f);
}

/* Files objkey under keys (moved into the index, also on error). */
int informer_index_file(informer_index_data *d, const char *objkey, informer_index_keys *keys)
{
    size_t klen = strlen(objkey);
    informer_index_filed *f = malloc(sizeof(*f) + klen + 1);
    if (!f) {
        informer_index_keys_clear(keys);
        return mb_error_set(MB_ENOMEM, "out of memory indexing %s", objkey);
    }
    memset(f, 0, sizeof(*f));
    memcpy(f->objkey, objkey, klen + 1);
    f->keys = *keys;
    memset(keys, 0, sizeof(*keys));
    HASH_ADD_KEYPTR(hh, d->filed, f->objkey, klen, f);
    if (!f->hh.tbl) {
        informer_index_keys_clear(&f->keys);
        free(f);
        return mb_error_set(MB_ENOMEM, "out of memory indexing %s", objkey);
    }
    for (size_t i = 0; i < f->keys.len; i++) {
        const char *ik = f->keys.keys[i];
        size_t iklen = strlen(ik);
        informer_index_bucket *b = NULL;
        informer_index_member *m = NULL;
        HASH_FIND(hh, d->buckets, ik, iklen, b);
        if (!b) {
            if (!(b = malloc(sizeof(*b) + iklen + 1)))
                goto oom;
            memset(b, 0, sizeof(*b));
            memcpy(b->key, ik, iklen + 1);
            HASH_ADD_KEYPTR(hh, d->buckets, b->key, iklen, b);
            if (!b->hh.tbl) {
                free(b);
                goto oom;
            }
        }
        if (!(m = malloc(sizeof(*m) + klen + 1)))
            goto oom;
        memset(m, 0, sizeof(*m));
        memcpy(m->key, objkey, klen + 1);
        HASH_ADD_KEYPTR(hh, b->members, m->key, klen, m);
        if (!m->hh.tbl) {
            free(m);
            goto oom;
        }
    }
    return 0;
oom:
    informer_index_unfile(d, objkey); /* also drops an empty bucket made above */
    return mb_error_set(MB_ENOMEM, "out of memory indexing %s", objkey);
}

void informer_index_data_clear(informer_index_data *d)
{
    informer_index_filed *f, *ftmp;
    informer_index_bucket *b, *btmp;
    informer_index_member *m, *mtmp;
    HASH_ITER(hh, d->filed, f, ftmp) {
        HASH_DEL(d->filed, f);
        informer_index_keys_clear(&f->keys);
        free(f);
    }
    HASH_ITER(hh, d->buckets, b, btmp) {
        HASH_ITER(hh, b->members, m, mtmp) {
            HASH_DEL(b->members, m);
            free(m);
        }
        HASH_DEL(d->buckets, b);
        free(b);
    }
}

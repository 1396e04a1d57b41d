/*
 * The informer's cache: uthash maps under one writer-preferring rwlock. The
 * primary map holds key -> immutable object, kept as compact JSON text
 * deflated (zlib, raw deflate at its fastest level with a 4 KiB window: a
 * Kubernetes object's text shrinks three to four times, and a parsed cJSON
 * tree would take four to five times the text); readers get a view that
 * inflates and parses the text on first use and is theirs alone. Each named index holds
 * index key -> the entries filed under it, and each entry where it is filed,
 * so that removing an object never re-runs the index function. Every
 * change is made under the write lock and reported as informer_change values
 * holding their own references, so that handlers run after the lock is gone.
 * The index machinery is in store_index.c (store_private.h).
 */
#include "runtime/store_private.h"

#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <zlib.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/*
 * Three kinds share the type. Parsed: json owned (objects from the watch, in
 * change records). Stored: the cache's copy, text and rv owned, json NULL;
 * never handed out. View: a reference to a stored object, whose text it
 * parses into json on the first informer_obj_json().
 */
struct informer_obj {
    atomic_long refs;
    _Atomic(cJSON *) json;
    unsigned char *text; /* stored: compact JSON, deflated */
    size_t len;          /* of text */
    size_t raw_len;      /* of the JSON text before deflating */
    char *key;           /* owned, except by a view (its backing's) */
    char *rv_own;        /* stored: a copy of the resourceVersion */
    const char *rv;
    informer_obj *backing; /* view: the stored object it reads */
};

/* A state's entry: the object and where the indexes file it (store_private.h). */
typedef informer_entry entry;

struct informer_store {
    pthread_rwlock_t lock;
    entry *entries;
    informer_index *indexes;
    size_t nindexes;
};

/* ---- objects ---- */

/* Raw deflate, a 4 KiB window and little state: objects are small, and the state is allocated per call. */
#define TEXT_WINDOW_BITS 12
#define TEXT_MEM_LEVEL 5

/* text (len bytes) deflated into a new buffer *out of *out_len bytes; 0 or MB_ENOMEM. */
static int text_deflate(unsigned char **out, size_t *out_len, const char *text, size_t len)
{
    z_stream z = {0};
    unsigned char *buf = NULL;
    *out = NULL;
    if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, -TEXT_WINDOW_BITS, TEXT_MEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK)
        return mb_error_set(MB_ENOMEM, "out of memory compressing a cached object");
    uLong cap = deflateBound(&z, (uLong)len);
    if ((buf = malloc(cap))) {
        z.next_in = (Bytef *)text;
        z.avail_in = (uInt)len;
        z.next_out = buf;
        z.avail_out = (uInt)cap;
        if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
            free(buf);
            buf = NULL;
        }
    }
    deflateEnd(&z);
    /* the bound is generous: the cache keeps an exact copy */
    if (buf && (*out = malloc(z.total_out ? z.total_out : 1)))
        memcpy(*out, buf, z.total_out);
    free(buf);
    if (!*out)
        return mb_error_set(MB_ENOMEM, "out of memory compressing a cached object");
    *out_len = z.total_out;
    return 0;
}

/* The JSON text of a stored object, inflated (NUL-terminated, the caller's), or NULL when memory ran out. */
static char *text_inflate(const informer_obj *stored)
{
    z_stream z = {0};
    char *text = malloc(stored->raw_len + 1);
    if (!text || inflateInit2(&z, -TEXT_WINDOW_BITS) != Z_OK) {
        free(text);
        return NULL;
    }
    z.next_in = stored->text;
    z.avail_in = (uInt)stored->len;
    z.next_out = (Bytef *)text;
    z.avail_out = (uInt)stored->raw_len;
    int rc = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    if (rc != Z_STREAM_END || z.total_out != stored->raw_len) {
        free(text);
        return NULL;
    }
    text[stored->raw_len] = '\0';
    return text;
}

const cJSON *informer_obj_json(const informer_obj *o)
{
    informer_obj *w = (informer_obj *)o; /* the parse is a cache: the object's value never changes */
    cJSON *j = atomic_load(&w->json), *none = NULL;
    if (j || !o->backing)
        return j;
    char *text = text_inflate(o->backing);
    j = text ? cJSON_ParseWithLength(text, o->backing->raw_len) : NULL;
    free(text);
    if (!j)
        return NULL; /* out of memory: the object reads as empty */
    if (!atomic_compare_exchange_strong(&w->json, &none, j)) {
        cJSON_Delete(j); /* another thread parsed it first */
        j = none;
    }
    return j;
}
const char *informer_obj_key(const informer_obj *o)
{
    return o->key;
}
const char *informer_obj_resource_version(const informer_obj *o)
{
    return o->rv;
}

informer_obj *informer_obj_ref(informer_obj *o)
{
    atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
    return o;
}

void informer_obj_free(informer_obj *o)
{
    if (!o || atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) != 1)
        return;
    cJSON_Delete(atomic_load(&o->json));
    if (o->backing) {
        informer_obj_free(o->backing);
    } else {
        free(o->text);
        free(o->rv_own);
        free(o->key);
    }
    free(o);
}

int informer_key(char **out, const cJSON *obj)
{
    const char *name = json_str(obj, "metadata", "name", NULL);
    const char *ns = json_str(obj, "metadata", "namespace", NULL);
    char *key = NULL;
    *out = NULL;
    if (!name || !*name)
        return mb_error_set(MB_EINVAL, "object has no metadata.name; it cannot be cached");
    if (ns && *ns) {
        if (asprintf(&key, "%s/%s", ns, name) < 0)
            key = NULL;
    } else {
        key = strdup(name);
    }
    if (!key)
        return mb_error_set(MB_ENOMEM, "out of memory building a cache key");
    *out = key;
    return 0;
}

/* Wraps json (always taking ownership) in a new object with one reference. */
static int obj_new(informer_obj **out, cJSON *json)
{
    int err = 0;
    informer_obj *o = NULL;
    *out = NULL;
    if (!(o = calloc(1, sizeof(*o)))) {
        err = mb_error_set(MB_ENOMEM, "out of memory caching an object");
        goto done;
    }
    if ((err = informer_key(&o->key, json)) < 0)
        goto done;
    atomic_init(&o->refs, 1);
    atomic_init(&o->json, json);
    o->rv = json_str(json, "metadata", "resourceVersion", NULL);
    json = NULL;
    if (!o->rv)
        o->rv = "";
    *out = o;
    o = NULL;
done:
    if (o) {
        free(o->key);
        free(o);
    }
    cJSON_Delete(json);
    return err;
}

/* The cache's compact copy of a parsed object: one reference. */
static int obj_store(informer_obj **out, const informer_obj *parsed)
{
    informer_obj *o = calloc(1, sizeof(*o));
    char *text = NULL;
    *out = NULL;
    if (!o || !(o->key = strdup(parsed->key)) || !(o->rv_own = strdup(parsed->rv)) ||
        !(text = cJSON_PrintUnformatted(atomic_load(&((informer_obj *)parsed)->json))) ||
        text_deflate(&o->text, &o->len, text, (o->raw_len = strlen(text))) < 0) {
        free(text);
        if (o) {
            free(o->key);
            free(o->rv_own);
            free(o);
        }
        return mb_error_set(MB_ENOMEM, "out of memory caching %s", parsed->key);
    }
    free(text);
    atomic_init(&o->refs, 1);
    atomic_init(&o->json, NULL);
    o->rv = o->rv_own;
    *out = o;
    return 0;
}

/* A view of a stored object: one reference; NULL when memory ran out. */
static informer_obj *obj_view(informer_obj *stored)
{
    informer_obj *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    atomic_init(&v->refs, 1);
    atomic_init(&v->json, NULL);
    v->backing = informer_obj_ref(stored);
    v->key = stored->key;
    v->rv = stored->rv;
    return v;
}

void informer_objs_free(informer_objs *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->len; i++)
        informer_obj_free(l->items[i]);
    free(l->items);
    free(l);
}

static int objs_cmp(const void *a, const void *b)
{
    return strcmp((*(informer_obj *const *)a)->key, (*(informer_obj *const *)b)->key);
}

static int objs_new(informer_objs **out, size_t cap)
{
    informer_objs *l = calloc(1, sizeof(*l));
    *out = NULL;
    if (!l || (cap && !(l->items = calloc(cap, sizeof(*l->items))))) {
        free(l);
        return mb_error_set(MB_ENOMEM, "out of memory listing cached objects");
    }
    *out = l;
    return 0;
}

/* ---- a whole state: entries plus one informer_index_data per index ---- */

static void entries_clear(entry **entries)
{
    entry *e, *tmp;
    HASH_ITER(hh, *entries, e, tmp) {
        HASH_DEL(*entries, e);
        informer_obj_free(e->obj);
        free(e->places);
        free(e);
    }
}

/* Unfiles key from every index and drops its entry; returns the entry's object reference. */
static informer_obj *state_remove(entry **entries, informer_index_data *const *datas, const char *key)
{
    entry *e = NULL;
    informer_obj *o;
    HASH_FIND(hh, *entries, key, strlen(key), e);
    if (!e)
        return NULL;
    informer_index_unfile_all(datas, e);
    HASH_DEL(*entries, e);
    o = e->obj;
    free(e);
    return o;
}

/*
 * Adds o (taking the caller's reference, also on error) with its index keys
 * (one list per index, moved in). The key must not be present.
 */
static int state_add(entry **entries, informer_index_data *const *datas, size_t n, informer_obj *o,
                     informer_index_keys *keys)
{
    int err = 0;
    size_t filed_n = 0;
    entry *e = calloc(1, sizeof(*e));
    if (!e) {
        err = mb_error_set(MB_ENOMEM, "out of memory caching %s", o->key);
        goto fail;
    }
    e->obj = o;
    HASH_ADD_KEYPTR(hh, *entries, o->key, strlen(o->key), e);
    if (!e->hh.tbl) {
        free(e);
        err = mb_error_set(MB_ENOMEM, "out of memory caching %s", o->key);
        goto fail;
    }
    for (; filed_n < n; filed_n++)
        if ((err = informer_index_file(datas[filed_n], (uint32_t)filed_n, e, &keys[filed_n])) < 0)
            goto unwind;
    return 0;
unwind:
    informer_index_unfile_all(datas, e);
    HASH_DEL(*entries, e);
    free(e);
fail:
    for (size_t i = 0; i < n; i++)
        informer_index_keys_clear(&keys[i]);
    informer_obj_free(o);
    return err;
}

/* The index keys of o under every index: an array of n lists the caller clears and frees. */
static int keys_compute(informer_index_keys **out, const informer_store *s, const informer_obj *o)
{
    size_t i = 0;
    int err = 0;
    informer_index_keys *keys = calloc(s->nindexes ? s->nindexes : 1, sizeof(*keys));
    *out = NULL;
    if (!keys)
        return mb_error_set(MB_ENOMEM, "out of memory indexing %s", o->key);
    for (const informer_index *ix = s->indexes; ix; ix = ix->next, i++) {
        if ((err = informer_index_compute(&keys[i], ix, informer_obj_json(o))) < 0) {
            for (size_t j = 0; j < i; j++)
                informer_index_keys_clear(&keys[j]);
            free(keys);
            return mb_error_wrap(err, "indexing %s", o->key);
        }
    }
    *out = keys;
    return 0;
}

static void keys_free(informer_index_keys *keys, size_t n)
{
    if (!keys)
        return;
    for (size_t i = 0; i < n; i++)
        informer_index_keys_clear(&keys[i]);
    free(keys);
}

/* ---- changes ---- */

void informer_changes_clear(informer_changes *c)
{
    for (size_t i = 0; i < c->len; i++) {
        informer_obj_free(c->items[i].old_obj);
        informer_obj_free(c->items[i].new_obj);
    }
    free(c->items);
    memset(c, 0, sizeof(*c));
}

static int changes_reserve(informer_changes *c, size_t more)
{
    if (c->cap - c->len >= more)
        return 0;
    size_t cap = c->cap ? c->cap : 8;
    while (cap - c->len < more)
        cap *= 2;
    informer_change *items = realloc(c->items, cap * sizeof(*items));
    if (!items)
        return mb_error_set(MB_ENOMEM, "out of memory recording cache changes");
    c->items = items;
    c->cap = cap;
    return 0;
}

/* Appends into reserved room; takes the references given. */
static void changes_push(informer_changes *c, informer_change_type type, informer_obj *old_obj, informer_obj *new_obj)
{
    c->items[c->len++] = (informer_change){type, old_obj, new_obj};
}

static const char *change_key(const informer_change *c)
{
    return (c->new_obj ? c->new_obj : c->old_obj)->key;
}

static int changes_cmp(const void *a, const void *b)
{
    return strcmp(change_key(a), change_key(b));
}

/* ---- the store ---- */

int informer_store_new(informer_store **out)
{
    pthread_rwlockattr_t attr;
    informer_store *s = calloc(1, sizeof(*s));
    *out = NULL;
    if (!s)
        return mb_error_set(MB_ENOMEM, "out of memory creating a cache");
    pthread_rwlockattr_init(&attr);
    /* A steady stream of readers must not starve the informer's writes. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (pthread_rwlock_init(&s->lock, &attr) != 0) {
        pthread_rwlockattr_destroy(&attr);
        free(s);
        return mb_error_set(MB_ENOMEM, "cannot create the cache lock");
    }
    pthread_rwlockattr_destroy(&attr);
    *out = s;
    return 0;
}

void informer_store_free(informer_store *s)
{
    informer_index *ix, *next;
    if (!s)
        return;
    entries_clear(&s->entries);
    for (ix = s->indexes; ix; ix = next) {
        next = ix->next;
        informer_index_data_clear(&ix->data);
        free(ix->name);
        free(ix);
    }
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

/* Pointers to each index's live data, in list order (n = s->nindexes). */
static int datas_of(informer_index_data ***out, informer_store *s)
{
    size_t i = 0;
    informer_index_data **d = calloc(s->nindexes ? s->nindexes : 1, sizeof(*d));
    *out = NULL;
    if (!d)
        return mb_error_set(MB_ENOMEM, "out of memory updating the cache");
    for (informer_index *ix = s->indexes; ix; ix = ix->next)
        d[i++] = &ix->data;
    *out = d;
    return 0;
}

int informer_store_add_index(informer_store *s, const char *name, informer_index_fn fn, void *ctx)
{
    int err = 0;
    informer_index *ix = NULL, **tail;
    entry *e, *tmp;
    if (!name || !fn)
        return mb_error_set(MB_EINVAL, "an index needs a name and a function");
    if (!(ix = calloc(1, sizeof(*ix))) || !(ix->name = strdup(name))) {
        free(ix);
        return mb_error_set(MB_ENOMEM, "out of memory adding index %s", name);
    }
    ix->fn = fn;
    ix->ctx = ctx;
    pthread_rwlock_wrlock(&s->lock);
    for (tail = &s->indexes; *tail; tail = &(*tail)->next) {
        if (strcmp((*tail)->name, name) == 0) {
            err = mb_error_set(MB_EEXISTS, "the cache already has an index named %s", name);
            goto done;
        }
    }
    HASH_ITER(hh, s->entries, e, tmp) {
        informer_index_keys keys;
        informer_obj *v = obj_view(e->obj);
        const cJSON *j = v ? informer_obj_json(v) : NULL;
        if (!j) {
            informer_obj_free(v);
            err = mb_error_set(MB_ENOMEM, "out of memory adding index %s", name);
            goto done;
        }
        err = informer_index_compute(&keys, ix, j);
        informer_obj_free(v);
        if (err < 0 || (err = informer_index_file(&ix->data, (uint32_t)s->nindexes, e, &keys)) < 0)
            goto done;
    }
    *tail = ix;
    s->nindexes++;
    ix = NULL;
done:
    if (ix) /* the entries filed before the failure forget the index */
        HASH_ITER(hh, s->entries, e, tmp)
            informer_index_unfile(&ix->data, (uint32_t)s->nindexes, e);
    pthread_rwlock_unlock(&s->lock);
    if (ix) {
        informer_index_data_clear(&ix->data);
        free(ix->name);
        free(ix);
    }
    return err;
}

int informer_store_upsert(informer_changes *out, informer_store *s, cJSON *obj)
{
    int err = 0;
    informer_obj *o = NULL, *stored = NULL, *old = NULL, *old_view = NULL;
    informer_index_keys *keys = NULL;
    informer_index_data **datas = NULL;
    bool locked = false;

    if ((err = obj_new(&o, obj)) < 0)
        return err;
    if ((err = changes_reserve(out, 1)) < 0 || (err = obj_store(&stored, o)) < 0)
        goto done;
    pthread_rwlock_wrlock(&s->lock);
    locked = true;
    if ((err = datas_of(&datas, s)) < 0 || (err = keys_compute(&keys, s, o)) < 0)
        goto done;
    old = state_remove(&s->entries, datas, o->key);
    if (old && !(old_view = obj_view(old))) {
        err = mb_error_set(MB_ENOMEM, "out of memory caching %s", o->key);
        goto done;
    }
    err = state_add(&s->entries, datas, s->nindexes, stored, keys);
    stored = NULL;
    free(keys);
    keys = NULL;
    if (err < 0)
        goto done;
    changes_push(out, old ? INFORMER_UPDATED : INFORMER_ADDED, old_view, o);
    old_view = NULL;
    o = NULL;
done:
    if (locked)
        pthread_rwlock_unlock(&s->lock);
    keys_free(keys, s->nindexes);
    free(datas);
    informer_obj_free(old_view);
    informer_obj_free(old);
    informer_obj_free(stored);
    informer_obj_free(o);
    return err;
}

int informer_store_delete(informer_changes *out, informer_store *s, cJSON *obj)
{
    int err = 0;
    informer_obj *last = NULL, *cached = NULL;
    informer_index_data **datas = NULL;

    if ((err = obj_new(&last, obj)) < 0)
        return err;
    if ((err = changes_reserve(out, 1)) < 0)
        goto done;
    pthread_rwlock_wrlock(&s->lock);
    if ((err = datas_of(&datas, s)) == 0)
        cached = state_remove(&s->entries, datas, last->key);
    pthread_rwlock_unlock(&s->lock);
    if (cached) {
        changes_push(out, INFORMER_DELETED, last, NULL);
        last = NULL;
    }
done:
    free(datas);
    informer_obj_free(cached);
    informer_obj_free(last);
    return err;
}

/* A new state built aside, one listed object at a time; the store changes only when it is complete. */
struct informer_store_fresh {
    informer_store *s;
    entry *entries;
    informer_index_data *data;   /* one per index */
    informer_index_data **datas; /* pointers into data */
    size_t n;
};

int informer_store_fresh_new(informer_store_fresh **out, informer_store *s)
{
    informer_store_fresh *f = calloc(1, sizeof(*f));
    size_t n = s->nindexes ? s->nindexes : 1;
    *out = NULL;
    if (!f || !(f->data = calloc(n, sizeof(*f->data))) || !(f->datas = calloc(n, sizeof(*f->datas)))) {
        if (f)
            free(f->data);
        free(f);
        return mb_error_set(MB_ENOMEM, "out of memory replacing the cache");
    }
    f->s = s;
    for (size_t i = 0; i < s->nindexes; i++)
        f->datas[i] = &f->data[i];
    *out = f;
    return 0;
}

void informer_store_fresh_reset(informer_store_fresh *f)
{
    for (size_t i = 0; i < f->s->nindexes; i++)
        informer_index_data_clear(&f->data[i]);
    entries_clear(&f->entries);
    f->n = 0;
}

void informer_store_fresh_free(informer_store_fresh *f)
{
    if (!f)
        return;
    informer_store_fresh_reset(f);
    free(f->data);
    free(f->datas);
    free(f);
}

int informer_store_fresh_add(informer_store_fresh *f, cJSON *item)
{
    informer_store *s = f->s;
    informer_obj *parsed = NULL, *o = NULL, *dup;
    informer_index_keys *keys = NULL;
    int err;
    if ((err = obj_new(&parsed, item)) == MB_EINVAL) {
        log_warn("skipping a listed object without metadata.name");
        return 0;
    }
    if (err < 0)
        return err;
    pthread_rwlock_rdlock(&s->lock); /* the index functions */
    err = keys_compute(&keys, s, parsed);
    pthread_rwlock_unlock(&s->lock);
    if (err < 0 || (err = obj_store(&o, parsed)) < 0) {
        keys_free(keys, s->nindexes);
        informer_obj_free(parsed);
        return err;
    }
    informer_obj_free(parsed);
    /* A key listed twice: the later one wins. */
    if ((dup = state_remove(&f->entries, f->datas, o->key)) != NULL) {
        informer_obj_free(dup);
        f->n--;
    }
    err = state_add(&f->entries, f->datas, s->nindexes, o, keys);
    free(keys);
    if (err == 0)
        f->n++;
    return err;
}

int informer_store_fresh_commit(informer_changes *out, informer_store_fresh *f)
{
    informer_store *s = f->s;
    entry *e, *tmp;
    size_t start = out->len;
    int err = 0;

    pthread_rwlock_wrlock(&s->lock);
    if ((err = changes_reserve(out, f->n + HASH_COUNT(s->entries))) < 0)
        goto done;
    HASH_ITER(hh, f->entries, e, tmp) {
        entry *old = NULL;
        HASH_FIND(hh, s->entries, e->obj->key, strlen(e->obj->key), old);
        if (!old)
            changes_push(out, INFORMER_ADDED, NULL, obj_view(e->obj));
        else if (strcmp(old->obj->rv, e->obj->rv) != 0 || !*e->obj->rv)
            changes_push(out, INFORMER_UPDATED, obj_view(old->obj), obj_view(e->obj));
    }
    HASH_ITER(hh, s->entries, e, tmp) {
        entry *now = NULL;
        HASH_FIND(hh, f->entries, e->obj->key, strlen(e->obj->key), now);
        if (!now)
            changes_push(out, INFORMER_DELETED, obj_view(e->obj), NULL);
    }
    for (size_t i = start; i < out->len; i++) {
        const informer_change *c = &out->items[i];
        if ((c->type != INFORMER_DELETED && !c->new_obj) || (c->type != INFORMER_ADDED && !c->old_obj)) {
            for (size_t j = start; j < out->len; j++) {
                informer_obj_free(out->items[j].old_obj);
                informer_obj_free(out->items[j].new_obj);
            }
            out->len = start;
            err = mb_error_set(MB_ENOMEM, "out of memory replacing the cache");
            goto done;
        }
    }

    /* Swap: the store takes the new state; the old one is freed with f. */
    tmp = s->entries;
    s->entries = f->entries;
    f->entries = tmp;
    {
        size_t i = 0;
        for (informer_index *ix = s->indexes; ix; ix = ix->next, i++) {
            informer_index_data old = ix->data;
            ix->data = f->data[i];
            f->data[i] = old;
        }
    }
done:
    pthread_rwlock_unlock(&s->lock);
    informer_store_fresh_free(f);
    if (err == 0 && out->len - start > 1)
        qsort(out->items + start, out->len - start, sizeof(*out->items), changes_cmp);
    return err;
}

int informer_store_replace(informer_changes *out, informer_store *s, cJSON *items)
{
    informer_store_fresh *f = NULL;
    cJSON *item;
    int err = informer_store_fresh_new(&f, s);
    while (err == 0 && items && (item = cJSON_DetachItemViaPointer(items, items->child)) != NULL)
        err = informer_store_fresh_add(f, item);
    cJSON_Delete(items);
    if (err < 0) {
        informer_store_fresh_free(f);
        return err;
    }
    return informer_store_fresh_commit(out, f);
}

int informer_store_get(informer_obj **out, informer_store *s, const char *key)
{
    entry *e = NULL;
    *out = NULL;
    pthread_rwlock_rdlock(&s->lock);
    HASH_FIND(hh, s->entries, key, strlen(key), e);
    if (e)
        *out = obj_view(e->obj);
    pthread_rwlock_unlock(&s->lock);
    if (!e)
        return mb_error_set(MB_ENOTFOUND, "%s is not in the cache", key);
    if (!*out)
        return mb_error_set(MB_ENOMEM, "out of memory reading %s from the cache", key);
    return 0;
}

/* After the lock: a listing sorted by key into *out, or its error (MB_ENOMEM: a view could not be made). */
static int objs_finish(informer_objs **out, informer_objs *l, int err)
{
    if (err == MB_ENOMEM) {
        informer_objs_free(l);
        return mb_error_set(MB_ENOMEM, "out of memory listing cached objects");
    }
    if (err < 0)
        return err;
    if (l->len > 1)
        qsort(l->items, l->len, sizeof(*l->items), objs_cmp);
    *out = l;
    return 0;
}

int informer_store_list(informer_objs **out, informer_store *s)
{
    int err;
    informer_objs *l = NULL;
    entry *e, *tmp;
    *out = NULL;
    pthread_rwlock_rdlock(&s->lock);
    if ((err = objs_new(&l, HASH_COUNT(s->entries))) == 0) {
        HASH_ITER(hh, s->entries, e, tmp)
            if (!(l->items[l->len++] = obj_view(e->obj)))
                err = MB_ENOMEM;
    }
    pthread_rwlock_unlock(&s->lock);
    return objs_finish(out, l, err);
}

int informer_store_by_index(informer_objs **out, informer_store *s, const char *index, const char *key)
{
    int err = 0;
    informer_objs *l = NULL;
    informer_index *ix;
    const informer_index_bucket *b;
    *out = NULL;
    pthread_rwlock_rdlock(&s->lock);
    for (ix = s->indexes; ix && strcmp(ix->name, index) != 0; ix = ix->next)
        ;
    if (!ix) {
        err = mb_error_set(MB_ENOTFOUND, "the cache has no index named %s", index);
        goto done;
    }
    b = informer_index_find(&ix->data, key);
    if ((err = objs_new(&l, b ? b->len : 0)) < 0)
        goto done;
    for (uint32_t i = 0; b && i < b->len; i++)
        if (!(l->items[l->len++] = obj_view(informer_index_members(b)[i]->obj)))
            err = MB_ENOMEM;
done:
    pthread_rwlock_unlock(&s->lock);
    return objs_finish(out, l, err);
}

size_t informer_store_len(informer_store *s)
{
    size_t n;
    pthread_rwlock_rdlock(&s->lock);
    n = HASH_COUNT(s->entries);
    pthread_rwlock_unlock(&s->lock);
    return n;
}

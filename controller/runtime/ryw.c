/*
 * The read-your-writes overlay and status records of runtime/ryw.h: two hash
 * tables keyed by "<kind>\n<namespace>/<name>" under one mutex. Moved out of
 * the release controller so that every controller shares one, and the
 * informer factory can drop an object's entries when it is deleted.
 */
#include "runtime/ryw.h"
#include "util/error.h"
#include "util/json.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* uthash reports a failed allocation by leaving the item's table pointer NULL. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

/* An object as this process's last writes left it, while the cache may still show a version they replaced. */
typedef struct ahead {
    UT_hash_handle hh;
    cJSON *obj;
    ryw_trail older;
    char key[];
} ahead;

/* The status this process last wrote for an object (its ryw_status_hash). */
typedef struct written {
    UT_hash_handle hh;
    uint64_t hash;
    char key[];
} written;

struct ryw {
    pthread_mutex_t mu;
    ahead *ahead;
    written *written;
};

bool ryw_trail_has(const ryw_trail *t, const char *rv)
{
    for (size_t i = 0; rv && i < t->n; i++)
        if (strcmp(t->rv[i], rv) == 0)
            return true;
    return false;
}

void ryw_trail_add(ryw_trail *t, const char *rv)
{
    if (!rv || ryw_trail_has(t, rv))
        return;
    if (t->n == RYW_TRAIL_MAX) {
        free(t->rv[0]);
        memmove(t->rv, t->rv + 1, (RYW_TRAIL_MAX - 1) * sizeof(t->rv[0]));
        t->n--;
    }
    if ((t->rv[t->n] = strdup(rv)))
        t->n++;
}

void ryw_trail_add_version(ryw_trail *t, const cJSON *obj)
{
    ryw_trail_add(t, json_str(obj, "metadata", "resourceVersion", NULL));
}

void ryw_trail_remove(ryw_trail *t, const char *rv)
{
    for (size_t i = 0; rv && i < t->n; i++)
        if (strcmp(t->rv[i], rv) == 0) {
            free(t->rv[i]);
            memmove(t->rv + i, t->rv + i + 1, (t->n - i - 1) * sizeof(t->rv[0]));
            t->n--;
            return;
        }
}

void ryw_trail_clear(ryw_trail *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->rv[i]);
    t->n = 0;
}

/* "<kind>\n<key>" into buf; false when it does not fit (the entry is then neither kept nor found) */
static bool full_key(char *buf, size_t size, const char *kind, const char *key)
{
    int n = snprintf(buf, size, "%s\n%s", kind ? kind : "", key ? key : "");
    return n >= 0 && (size_t)n < size;
}

int ryw_new(ryw **out)
{
    ryw *w = calloc(1, sizeof(*w));
    *out = NULL;
    if (!w)
        return mb_error_set(MB_ENOMEM, "out of memory");
    pthread_mutex_init(&w->mu, NULL);
    *out = w;
    return 0;
}

static void ahead_free(ahead *e)
{
    if (!e)
        return;
    cJSON_Delete(e->obj);
    ryw_trail_clear(&e->older);
    free(e);
}

void ryw_free(ryw *w)
{
    ahead *a, *atmp;
    written *s, *stmp;
    if (!w)
        return;
    HASH_ITER(hh, w->ahead, a, atmp) {
        HASH_DEL(w->ahead, a);
        ahead_free(a);
    }
    HASH_ITER(hh, w->written, s, stmp) {
        HASH_DEL(w->written, s);
        free(s);
    }
    pthread_mutex_destroy(&w->mu);
    free(w);
}

cJSON *ryw_ahead_take(ryw *w, const char *kind, const char *key, const char *cache_rv, ryw_trail *older)
{
    char k[1024];
    ahead *e = NULL;
    cJSON *obj = NULL;
    if (!full_key(k, sizeof(k), kind, key))
        return NULL;
    pthread_mutex_lock(&w->mu);
    HASH_FIND_STR(w->ahead, k, e);
    if (e)
        HASH_DEL(w->ahead, e);
    pthread_mutex_unlock(&w->mu);
    if (e && ryw_trail_has(&e->older, cache_rv)) {
        obj = e->obj;
        *older = e->older;
        e->obj = NULL;
        e->older.n = 0;
    }
    ahead_free(e);
    return obj;
}

void ryw_ahead_drop(ryw *w, const char *kind, const char *key)
{
    ryw_trail none = {0};
    cJSON_Delete(ryw_ahead_take(w, kind, key, NULL, &none));
}

/* Keeps obj and older (both taken) as the copy under k. */
static void ahead_put(ryw *w, const char *k, ryw_trail *older, cJSON *obj)
{
    size_t len = strlen(k) + 1;
    ahead *e = calloc(1, sizeof(*e) + len), *old = NULL;
    if (!e) {
        ryw_trail_clear(older);
        cJSON_Delete(obj);
        return;
    }
    e->obj = obj;
    e->older = *older;
    older->n = 0;
    memcpy(e->key, k, len);
    pthread_mutex_lock(&w->mu);
    HASH_FIND_STR(w->ahead, k, old);
    if (old)
        HASH_DEL(w->ahead, old);
    HASH_ADD_STR(w->ahead, key, e);
    if (!e->hh.tbl)
        ahead_free(e);
    pthread_mutex_unlock(&w->mu);
    ahead_free(old);
}

void ryw_ahead_keep(ryw *w, const char *kind, const char *key, ryw_trail *older, cJSON *obj, const informer *inf)
{
    char k[1024];
    ryw_trail_remove(older, json_str(obj, "metadata", "resourceVersion", NULL));
    if (obj && older->n > 0 && full_key(k, sizeof(k), kind, key)) {
        if (inf)
            informer_trim(inf, obj);
        ahead_put(w, k, older, obj);
        return;
    }
    ryw_trail_clear(older);
    cJSON_Delete(obj);
}

uint64_t ryw_status_hash(const cJSON *status)
{
    char *text = status ? cJSON_PrintUnformatted(status) : NULL;
    uint64_t h = 0xcbf29ce484222325ULL;
    if (!text)
        return 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    cJSON_free(text);
    return h;
}

bool ryw_status_matches(const cJSON *wanted, const cJSON *server, uint64_t last_written)
{
    const cJSON *got = json_get(server, "status", NULL);
    return wanted && got && cJSON_Compare(wanted, got, true) && ryw_status_hash(wanted) != last_written;
}

/* hash 0: forget the object */
static void written_set(ryw *w, const char *kind, const char *key, uint64_t hash)
{
    char k[1024];
    written *e = NULL;
    if (!full_key(k, sizeof(k), kind, key))
        return;
    size_t len = strlen(k) + 1;
    pthread_mutex_lock(&w->mu);
    HASH_FIND_STR(w->written, k, e);
    if (e && !hash) {
        HASH_DEL(w->written, e);
        free(e);
    } else if (e) {
        e->hash = hash;
    } else if (hash && (e = malloc(sizeof(*e) + len))) { /* without it only a lost answer goes unnoticed */
        e->hash = hash;
        memcpy(e->key, k, len);
        HASH_ADD_STR(w->written, key, e);
        if (!e->hh.tbl)
            free(e);
    }
    pthread_mutex_unlock(&w->mu);
}

void ryw_status_record(ryw *w, const char *kind, const char *key, const cJSON *status)
{
    written_set(w, kind, key, ryw_status_hash(status));
}

bool ryw_status_landed(ryw *w, const char *kind, const char *key, const cJSON *wanted, const cJSON *server)
{
    char k[1024];
    written *e = NULL;
    uint64_t last = 0;
    if (full_key(k, sizeof(k), kind, key)) {
        pthread_mutex_lock(&w->mu);
        HASH_FIND_STR(w->written, k, e);
        if (e)
            last = e->hash;
        pthread_mutex_unlock(&w->mu);
    }
    return ryw_status_matches(wanted, server, last);
}

void ryw_forget(ryw *w, const char *kind, const char *key)
{
    written_set(w, kind, key, 0);
    ryw_ahead_drop(w, kind, key);
}

/*
 * Per-key work of a controller (runtime/worktable.h): a uthash table under a
 * mutex, entries with the key and the payload after it.
 */
#include "runtime/worktable.h"
#include "util/error.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define HASH_NONFATAL_OOM 1
#include <uthash.h>

typedef struct entry {
    UT_hash_handle hh;
    char *key;
    alignas(max_align_t) unsigned char payload[];
} entry;

struct worktable {
    pthread_mutex_t mu;
    entry *entries;
    size_t payload_size;
    void (*clear)(void *payload);
};

int worktable_new(worktable **out, size_t payload_size, void (*clear)(void *payload))
{
    worktable *t = calloc(1, sizeof(*t));
    *out = NULL;
    if (!t)
        return mb_error_set(MB_ENOMEM, "out of memory");
    pthread_mutex_init(&t->mu, NULL);
    t->payload_size = payload_size;
    t->clear = clear;
    *out = t;
    return 0;
}

static void entry_free(worktable *t, entry *e)
{
    t->clear(e->payload);
    free(e->key);
    free(e);
}

void worktable_free(worktable *t)
{
    entry *e, *tmp;
    if (!t)
        return;
    HASH_ITER(hh, t->entries, e, tmp) {
        HASH_DEL(t->entries, e);
        entry_free(t, e);
    }
    pthread_mutex_destroy(&t->mu);
    free(t);
}

void *worktable_get(worktable *t, const char *key)
{
    entry *e = NULL;
    size_t klen = strlen(key);
    pthread_mutex_lock(&t->mu);
    HASH_FIND(hh, t->entries, key, klen, e);
    pthread_mutex_unlock(&t->mu);
    if (e)
        return e->payload;
    if (!(e = calloc(1, sizeof(*e) + t->payload_size)) || !(e->key = strdup(key))) {
        free(e);
        return NULL;
    }
    pthread_mutex_lock(&t->mu);
    HASH_ADD_KEYPTR(hh, t->entries, e->key, klen, e);
    bool added = e->hh.tbl != NULL;
    pthread_mutex_unlock(&t->mu);
    if (!added) {
        free(e->key);
        free(e);
        return NULL;
    }
    return e->payload;
}

void worktable_drop(worktable *t, const char *key)
{
    entry *e = NULL;
    pthread_mutex_lock(&t->mu);
    HASH_FIND(hh, t->entries, key, strlen(key), e);
    if (e)
        HASH_DEL(t->entries, e);
    pthread_mutex_unlock(&t->mu);
    if (e)
        entry_free(t, e);
}

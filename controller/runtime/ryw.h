/*
 * Read-your-writes for every controller of the process: an object as our last
 * write left it is served instead of a stale cached copy until the informer
 * cache catches up (the written-ahead overlay), and the status a controller
 * last wrote is remembered so that a status write that met 409 because its own
 * first copy landed (the answer was lost, the retry met the resourceVersion
 * the first one made) is told from a stale view. Entries are keyed by kind and
 * "namespace/name"; the informer factory drops a kind's entries when the
 * object is deleted. Thread-safe.
 */
#ifndef MB_RUNTIME_RYW_H
#define MB_RUNTIME_RYW_H

#include "kube/client.h"
#include "runtime/informer.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

/* resourceVersions an object went through, oldest first: the versions older than the one in hand. */
#define RYW_TRAIL_MAX 8
typedef struct {
    char *rv[RYW_TRAIL_MAX];
    size_t n;
} ryw_trail;

/* Adds rv (copied; NULL ignored). Past RYW_TRAIL_MAX, or without memory, the oldest is forgotten:
 * the object is then read from the cache, as always. */
void ryw_trail_add(ryw_trail *t, const char *rv);

/* Adds obj's metadata.resourceVersion. */
void ryw_trail_add_version(ryw_trail *t, const cJSON *obj);

bool ryw_trail_has(const ryw_trail *t, const char *rv);

void ryw_trail_remove(ryw_trail *t, const char *rv);

void ryw_trail_clear(ryw_trail *t);

typedef struct ryw ryw;

int ryw_new(ryw **out);

/* Accepts NULL. */
void ryw_free(ryw *w);

/*
 * Takes the written-ahead copy of kind's key out of the overlay; returns it
 * (the caller owns it, its trail moved into *older) only if the cache shows
 * cache_rv, one of the versions our writes replaced; otherwise drops it and
 * returns NULL (read the cache's copy).
 */
cJSON *ryw_ahead_take(ryw *w, const char *kind, const char *key, const char *cache_rv, ryw_trail *older);

/* Forgets kind's key's written-ahead copy. */
void ryw_ahead_drop(ryw *w, const char *kind, const char *key);

/*
 * Where the next reconcile starts: obj (taken) is kept as kind's key's
 * written-ahead copy, trimmed as inf's cache would (inf NULL: it already is),
 * while the cache may still show a version older than it (in older, also
 * taken); otherwise both are freed. Without memory only a 409 is risked.
 */
void ryw_ahead_keep(ryw *w, const char *kind, const char *key, ryw_trail *older, cJSON *obj, const informer *inf);

/* A 64-bit digest of a status (FNV-1a of its unformatted JSON); 0 for NULL. */
uint64_t ryw_status_hash(const cJSON *status);

/*
 * Whether a status write that met 409 was applied all the same: the object
 * read back (server) carries exactly the status written (wanted), and that
 * status is not the one this process last wrote (last_written, its
 * ryw_status_hash): that one is a stale view deciding the same again. Pure.
 */
bool ryw_status_matches(const cJSON *wanted, const cJSON *server, uint64_t last_written);

/* Remembers status as the one last written for kind's key. */
void ryw_status_record(ryw *w, const char *kind, const char *key, const cJSON *status);

/* ryw_status_matches against the status last recorded for kind's key. */
bool ryw_status_landed(ryw *w, const char *kind, const char *key, const cJSON *wanted, const cJSON *server);

/* The object is gone: its written-ahead copy and its status record go too. */
void ryw_forget(ryw *w, const char *kind, const char *key);

/*
 * Writes status as the /status of *cur (the object of resource res in ns, key
 * "ns/name", as read: its resourceVersion is the precondition), as a JSON
 * merge patch from *cur's status (kube_patch_status). A 409 that is
 * this write's own lost answer (ryw_status_landed on a fresh read) counts as
 * done. On success *cur becomes the API's answer and the status is recorded
 * (ryw_status_record). 0, MB_ECONFLICT (another write came between) or the
 * error of the write. (runtime/ryw_write.c)
 */
int ryw_status_write(cJSON **cur, ryw *w, kube_client *kc, const kube_resource *res, const char *ns, const char *key,
                     const cJSON *status);

#endif

/*
 * The work a controller keeps in memory per object key ("ns/name") between
 * reconciles: transfers started on the loop, bytes fetched, results not yet
 * written (a PolicyBundle's fetch and decision tests, a DatasetPromotion's
 * downloads). A table of fixed-size payloads by key, made zeroed on first
 * use; the controller's clear function cancels and frees what a payload
 * holds. A key's payload is only touched by that key's reconcile (the
 * workqueue runs one at a time per key), so the table locks only its own
 * structure. The payload says which generation it is for; the controller
 * clears it when it is for another.
 */
#ifndef MB_RUNTIME_WORKTABLE_H
#define MB_RUNTIME_WORKTABLE_H

#include <stddef.h>

typedef struct worktable worktable;

/* clear: cancels and frees what a payload holds and zeroes it (required). 0 or MB_ENOMEM. */
int worktable_new(worktable **out, size_t payload_size, void (*clear)(void *payload));

/* Clears and frees every payload, then the table. Accepts NULL. */
void worktable_free(worktable *t);

/* The payload of key, made (zeroed) when absent; NULL only without memory. Borrowed until worktable_drop. */
void *worktable_get(worktable *t, const char *key);

/* Clears and forgets the payload of key, if any. */
void worktable_drop(worktable *t, const char *key);

#endif

/*
 * The controller manager: owns the process's controllers and their reconcile
 * loops. A controller registers its kind, its reconcile function and a
 * subscribe callback that takes its informers from the shared factory
 * (runtime/factory.h) and adds the handlers that feed its loop; the manager
 * does the rest: it starts every informer and waits for the caches, then
 * every loop (when leading, or at once without leader election), stops them
 * on SIGTERM with a drain timeout, and answers alive/synced for /healthz and
 * /readyz from all of them.
 */
#ifndef MB_RUNTIME_MANAGER_H
#define MB_RUNTIME_MANAGER_H

#include "runtime/factory.h"
#include "runtime/loop.h"
#include "runtime/worktable.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct manager manager;

typedef struct {
    const char *kind;       /* for logs and metrics, e.g. "GovernedAPIRelease" */
    reconcile_fn reconcile; /* called with ctx */
    /* Takes the informers it reads from f and subscribes handlers that feed l (borrowed, owned by the manager). */
    int (*subscribe)(void *ctx, informer_factory *f, loop *l);
    void (*free)(void *ctx); /* frees ctx once the manager is done with it; may be NULL */
    void *ctx;
} manager_registration;

typedef struct {
    informer_factory *factory; /* borrowed; outlives the manager */
    int workers;               /* concurrent reconciles per kind; 0: 4 */
    long sync_timeout_ms;      /* how long manager_start waits for the caches; 0: 60000 */
} manager_opts;

int manager_new(manager **out, const manager_opts *opts);

/*
 * Registers a controller: its loop is made and subscribe called at once. The
 * manager owns ctx from here on, also when this fails (it calls free). Only
 * before manager_start.
 */
int manager_add(manager *m, const manager_registration *r);

/*
 * manager_add for a controller that keeps work by key: its table
 * (runtime/worktable.h: payloads of payload_size, cleared by clear) is made
 * into *works first (works points into r->ctx). As with manager_add, the
 * manager owns r->ctx from here, also on error.
 */
int manager_add_with_works(manager *m, const manager_registration *r, worktable **works, size_t payload_size,
                           void (*clear)(void *payload));

/* How a controller takes a resource's informer from the factory: api_informer (api/informers.h), with its trim. */
typedef int (*manager_informer_fn)(informer **out, informer_factory *f, const kube_resource *resource);

/* A resource a controller reads, for manager_watch_all. */
typedef struct {
    const kube_resource *resource;
    informer **out;             /* its informer (the factory's, borrowed) */
    informer_handlers handlers; /* on_add NULL: the object's own key is enqueued when it is added, updated, deleted */
    const char *index;          /* an index to add to its informer (shared as the factory shares them); NULL: none */
    informer_index_fn index_fn;
} manager_watch;

/*
 * The body of a subscribe callback: for each of the n watches, its informer
 * from informer_of, its index, and its handlers subscribed (by default, the
 * object's own key enqueued on l). 0 or the first error.
 */
int manager_watch_all(informer_factory *f, loop *l, manager_informer_fn informer_of, const manager_watch *w, size_t n);

/* Starts the informers, waits for their caches, then starts every loop. */
int manager_start(manager *m);

/* Stops taking work: the watches wind down while the loops drain (up to timeout_ms); the caches stay readable. */
int manager_stop(manager *m, long timeout_ms);

/* For /healthz (httpserver's alive callback, ctx the manager): alive until started, then while every informer is. */
bool manager_alive(void *ctx, char *reason, size_t size);

/* For /readyz (ctx the manager): ready while not starting (a standby), or once every cache has synced. */
bool manager_ready(void *ctx, char *reason, size_t size);

/* Stops (as manager_stop with no wait), frees every registered controller and loop. Accepts NULL. */
void manager_free(manager *m);

#endif

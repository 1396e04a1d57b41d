/*
 * The reconcile loop of one kind: a workqueue and N worker threads that hand
 * keys to a reconcile function, requeue with backoff on error, requeue after
 * the delay the reconcile asks for, and forget a key's failures on success.
 * Informer handlers feed the queue with controller_enqueue().
 */
#ifndef MB_CONTROLLER_H
#define MB_CONTROLLER_H

#include "runtime/workqueue.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int64_t requeue_ms; /* > 0: look at the key again after this long */
} reconcile_result;

/*
 * Reconciles one "namespace/name" key. Returns 0, or a negative mb_error:
 * the key is retried with backoff, unless the error is MB_EINVAL (a
 * terminal error that only a change to the object can fix).
 */
typedef int (*reconcile_fn)(reconcile_result *out, void *ctx, const char *key);

typedef struct controller controller;

typedef struct {
    const char *kind;        /* for logs and metrics, e.g. "GovernedAPIRelease" */
    int workers;             /* >= 1 */
    reconcile_fn reconcile;
    void *ctx;
    const ratelimit_options *ratelimit; /* NULL: client-go's defaults */
} controller_opts;

int controller_new(controller **out, const controller_opts *opts);

/* Starts the workers. */
int controller_start(controller *c);

/* Adds key to the queue; callable from any thread, before or after start. */
void controller_enqueue(controller *c, const char *key);

/* Adds "ns/name" of obj (a Kubernetes object as cJSON) to the queue. */
void controller_enqueue_object(controller *c, const void *obj_json);

/* Stops taking work, waits up to timeout_ms for in-flight reconciles, joins the workers. */
int controller_stop(controller *c, int64_t timeout_ms);

/* The queue, for its depth. Borrowed. */
workqueue *controller_queue(controller *c);

void controller_free(controller *c);

#endif

/*
 * The reconcile loop of one kind: a workqueue and N worker threads that hand
 * keys to a reconcile function, requeue with backoff on error, requeue after
 * the delay the reconcile asks for, and forget a key's failures on success.
 * Informer handlers feed the queue with loop_enqueue().
 */
#ifndef MB_RUNTIME_LOOP_H
#define MB_RUNTIME_LOOP_H

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

typedef struct loop loop;

typedef struct {
    const char *kind; /* for logs and metrics, e.g. "GovernedAPIRelease" */
    int workers;      /* >= 1 */
    reconcile_fn reconcile;
    void *ctx;
    const ratelimit_options *ratelimit; /* NULL: client-go's defaults */
} loop_opts;

int loop_new(loop **out, const loop_opts *opts);

/* Starts the workers. */
int loop_start(loop *c);

/* Adds key to the queue; callable from any thread, before or after start. */
void loop_enqueue(loop *c, const char *key);

/* Adds "ns/name" of obj (a Kubernetes object as cJSON) to the queue. */
void loop_enqueue_object(loop *c, const void *obj_json);

/* Stops taking work, waits up to timeout_ms for in-flight reconciles, joins the workers. */
int loop_stop(loop *c, int64_t timeout_ms);

/* The queue, for its depth. Borrowed. */
workqueue *loop_queue(loop *c);

void loop_free(loop *c);

#endif

/*
 * The controller workqueue, with client-go's rate-limited delaying queue
 * semantics for string keys ("namespace/name"): a key waiting in the queue is
 * there once however often it is added; a key is never handed to two workers
 * at once (a key added while a worker holds it is handed out again, once,
 * after workqueue_done); keys can come back after a delay (the earliest
 * deadline asked for wins) or after a per-key exponential backoff combined
 * with an overall token bucket (runtime/ratelimit.h). All calls are
 * thread-safe.
 *
 * Shutting down (both forms) differs from client-go on purpose: from then on
 * adds are ignored, workqueue_get returns MB_ESTOPPED at once, and keys still
 * queued or waiting for their delay are dropped rather than handed out.
 * The operator is level-triggered, so the next start lists every object
 * again and nothing is lost, and a replica that has lost its leader lease
 * must stop acting instead of working through a backlog. The draining form
 * also waits until every key already handed out has been marked done.
 */
#ifndef MB_RUNTIME_WORKQUEUE_H
#define MB_RUNTIME_WORKQUEUE_H

#include "runtime/ratelimit.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct workqueue workqueue;

/*
 * A new queue and its timer thread; opts configures the rate limiter (NULL:
 * client-go's defaults, RATELIMIT_DEFAULT_OPTIONS). 0, MB_EINVAL, MB_ENOMEM
 * or MB_ERROR when the timer thread cannot start.
 */
int workqueue_new(workqueue **out, const ratelimit_options *opts);

/*
 * Shuts the queue down (if not yet), stops its timer thread and frees it.
 * Accepts NULL. Call it only once no other thread uses the queue (workers
 * joined), since a worker blocked in workqueue_get would wake into freed memory.
 */
void workqueue_free(workqueue *wq);

/*
 * Marks key as needing processing. Does nothing when key is already waiting
 * to be handed out; when a worker holds key, it is handed out again after
 * that worker's workqueue_done. Ignored (returns 0) after shutdown.
 * 0, MB_EINVAL (NULL or empty key) or MB_ENOMEM.
 */
int workqueue_add(workqueue *wq, const char *key);

/*
 * Adds key once delay_ms has passed (<= 0: now). When key is already waiting
 * for a delay, the earlier of the two deadlines is kept. A delayed key is
 * independent of the key being queued or in flight now: it is added (and
 * deduplicated) when its time comes. Same returns as workqueue_add.
 */
int workqueue_add_after(workqueue *wq, const char *key, int64_t delay_ms);

/*
 * Counts one more failure of key and adds it after the rate limiter's delay
 * (5 ms doubling per failure up to 1000 s, and at most 10 keys/s with a
 * burst of 100, with the default options). Same returns as workqueue_add.
 */
int workqueue_add_rate_limited(workqueue *wq, const char *key);

/* Resets key's failure count, after a successful reconcile. Does not cancel a pending delayed add. */
void workqueue_forget(workqueue *wq, const char *key);

/* Failures counted for key since its last workqueue_forget. */
int workqueue_num_requeues(workqueue *wq, const char *key);

/*
 * Blocks until a key is ready and hands it out: *out is a copy the caller
 * frees with free() after calling workqueue_done(wq, *out). 0, MB_ESTOPPED
 * once the queue shuts down (also waking every blocked caller), or
 * MB_ENOMEM (the key stays queued).
 */
int workqueue_get(char **out, workqueue *wq);

/* Tells the queue the worker is finished with key (from workqueue_get); re-queues it if it was added meanwhile. */
void workqueue_done(workqueue *wq, const char *key);

/* Stops the queue without waiting (see the top of this file); blocked getters return MB_ESTOPPED. Idempotent. */
void workqueue_shutdown(workqueue *wq);

/*
 * Stops the queue like workqueue_shutdown, then waits until every key that
 * was handed out has been marked done, for at most timeout_ms (< 0: no
 * limit). 0, or MB_ETIMEOUT when keys were still in flight at the deadline.
 */
int workqueue_shutdown_drain(workqueue *wq, int64_t timeout_ms);

/* Whether a shutdown has begun. */
bool workqueue_shutting_down(workqueue *wq);

/*
 * Keys ready to be handed out now (client-go's Len, the workqueue_depth
 * metric): neither those waiting for a delay nor those in flight count.
 */
size_t workqueue_len(workqueue *wq);

#endif

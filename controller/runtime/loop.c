/*
 * Worker threads over a workqueue, in the shape of sample-controller's
 * processNextWorkItem: get a key, reconcile it, then forget it, requeue it
 * with backoff, or requeue it after the delay the reconcile asked for.
 */
#include "runtime/loop.h"
#include "runtime/metrics_families.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONFLICT_RETRY_MS 100

struct loop {
    loop_opts opts;
    char *kind;
    workqueue *queue;
    pthread_t *threads;
    int started;
};

/* membrane_workqueue_depth{kind}, read when scraped. */
static void depth_collect(void *ctx, metrics_registry *r)
{
    loop *c = ctx;
    (void)r;
    metrics_workqueue_depth_set(c->kind, (double)workqueue_len(c->queue));
}

int loop_new(loop **out, const loop_opts *opts)
{
    loop *c = NULL;
    int err = 0;
    *out = NULL;
    if (!opts || !opts->reconcile || opts->workers < 1)
        return mb_error_set(MB_EINVAL, "loop: a reconcile function and at least one worker are needed");
    if (!(c = calloc(1, sizeof(*c))) || !(c->kind = strdup(opts->kind ? opts->kind : "object")) ||
        !(c->threads = calloc((size_t)opts->workers, sizeof(pthread_t)))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    c->opts = *opts;
    c->opts.kind = c->kind;
    if ((err = workqueue_new(&c->queue, opts->ratelimit)) < 0)
        goto done;
    metrics_collector_add(metrics_default(), depth_collect, c); /* without it only the depth gauge is missing */
    *out = c;
    c = NULL;
done:
    loop_free(c);
    return err;
}

static void process(loop *c, const char *key)
{
    reconcile_result res = {0};
    mb_log_fields f = {.kind = c->kind, .name = key};
    const char *slash = strchr(key, '/');
    char ns[254]; /* a namespace name is at most 63 characters */
    int err;

    if (slash && (size_t)(slash - key) < sizeof(ns)) {
        memcpy(ns, key, (size_t)(slash - key));
        ns[slash - key] = '\0';
        f.namespace = ns;
        f.name = slash + 1;
    }

    mb_error_clear();
    int64_t start = mb_monotonic_ns();
    err = c->opts.reconcile(&res, c->opts.ctx, key);
    metrics_reconcile_observe(c->kind,
                              err == MB_ECONFLICT  ? METRICS_RESULT_CONFLICT
                              : err < 0            ? METRICS_RESULT_ERROR
                              : res.requeue_ms > 0 ? METRICS_RESULT_REQUEUE_AFTER
                                                   : METRICS_RESULT_SUCCESS,
                              mb_elapsed_ms(start) / 1e3);
    if (err == MB_ECONFLICT) {
        /*
         * Acted on a stale view. The watch event that makes the cache current
         * requeues the key (or already has: then it comes back right after
         * workqueue_done); the short delay is a safety net. Not a failure: no
         * backoff, and not through the overall token bucket.
         */
        MB_LOG(MB_LOG_DEBUG, &f, "conflict, looking again: %s", mb_error_last());
        workqueue_add_after(c->queue, key, CONFLICT_RETRY_MS);
        return;
    }
    if (err < 0 && err != MB_EINVAL) {
        MB_LOG(MB_LOG_WARN, &f, "reconcile failed, retrying with backoff: %s", mb_error_last());
        workqueue_add_rate_limited(c->queue, key);
        return;
    }
    if (err == MB_EINVAL)
        MB_LOG(MB_LOG_ERROR, &f, "reconcile failed and will not be retried until the object changes: %s",
               mb_error_last());
    workqueue_forget(c->queue, key);
    if (res.requeue_ms > 0)
        workqueue_add_after(c->queue, key, res.requeue_ms);
}

static void *worker(void *arg)
{
    loop *c = arg;
    char *key = NULL;
    while (workqueue_get(&key, c->queue) == 0) {
        process(c, key);
        workqueue_done(c->queue, key);
        free(key);
        key = NULL;
    }
    return NULL;
}

int loop_start(loop *c)
{
    for (int i = 0; i < c->opts.workers; i++) {
        if (pthread_create(&c->threads[i], NULL, worker, c) != 0) {
            workqueue_shutdown(c->queue);
            for (int j = 0; j < i; j++)
                pthread_join(c->threads[j], NULL);
            c->started = 0;
            return mb_error_set(MB_ERROR, "loop %s: cannot start worker threads", c->kind);
        }
        c->started = i + 1;
    }
    return 0;
}

void loop_enqueue(loop *c, const char *key)
{
    if (key && *key)
        workqueue_add(c->queue, key);
}

void loop_enqueue_object(loop *c, const void *obj_json)
{
    const cJSON *obj = obj_json;
    const char *ns = json_str(obj, "metadata", "namespace", NULL);
    const char *name = json_str(obj, "metadata", "name", NULL);
    char key[512];
    if (!name)
        return;
    snprintf(key, sizeof(key), "%s%s%s", ns ? ns : "", ns ? "/" : "", name);
    workqueue_add(c->queue, key);
}

int loop_stop(loop *c, int64_t timeout_ms)
{
    int err = 0;
    if (!c || !c->queue)
        return 0;
    err = workqueue_shutdown_drain(c->queue, timeout_ms);
    for (int i = 0; i < c->started; i++)
        pthread_join(c->threads[i], NULL);
    c->started = 0;
    return err;
}

workqueue *loop_queue(loop *c)
{
    return c->queue;
}

void loop_free(loop *c)
{
    if (!c)
        return;
    loop_stop(c, 0);
    metrics_collector_remove(metrics_default(), depth_collect, c);
    workqueue_free(c->queue);
    free(c->threads);
    free(c->kind);
    free(c);
}

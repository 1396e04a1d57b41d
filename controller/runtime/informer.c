/*
 * The informer's run loop (client-go's Reflector plus its shared informer) on
 * one thread per informer: list -> replace the cache -> watch from the list's
 * resourceVersion -> apply events, calling the handlers after each cache change
 * and outside the cache lock. The cache and the relist diff are in store.c;
 * this file holds the loop, its error policy and its back-off.
 */
#include "runtime/informer.h"

#include "kube/watch.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Pages are cached as they arrive: only one is ever parsed at once. */
#define DEFAULT_PAGE_SIZE 100
#define DEFAULT_BACKOFF_BASE_MS 800
#define DEFAULT_BACKOFF_MAX_MS 30000
#define MIN_WATCH_TIMEOUT_S 300
/* A watch that ends sooner than this without an event counts as a failure, so
 * that a server closing every stream at once is not hammered. */
#define HEALTHY_WATCH_MS 1000

struct informer {
    kube_client *client;
    const kube_resource *resource;
    char *ns;
    char *label_selector;
    char *field_selector;
    long page_size;
    int watch_timeout_s;
    long backoff_base_ms;
    long backoff_max_ms;
    void (*transform)(cJSON *obj);

    informer_store *store;
    informer_handlers *handlers;
    size_t nhandlers;

    atomic_bool stop;
    atomic_bool synced;
    atomic_ulong restarts;
    atomic_ulong relists;
    atomic_llong beat_ms; /* the loop's last sign of life (monotonic): a list, a watch, an event */

    pthread_mutex_t mu; /* guards what follows; cond signals sync, stop and exit */
    pthread_cond_t cond;
    char *rv;
    bool started;
    bool running;
    bool joined;
    pthread_t thread;

    /* owned by the loop thread */
    unsigned int seed;
    informer_changes changes;
    bool watch_failed; /* the stream carried an ERROR event other than 410 */
    bool need_relist;  /* the cache could not take an event */
    unsigned long watch_events;
};

static mb_log_fields log_fields(const informer *inf)
{
    return (mb_log_fields){.kind = inf->resource->kind, .namespace = inf->ns};
}

long informer_backoff_ms(long base_ms, long max_ms, unsigned attempt, double rnd)
{
    long d = base_ms > 0 ? base_ms : 1;
    if (max_ms < d)
        max_ms = d;
    for (unsigned i = 1; i < attempt && d < max_ms; i++)
        d = d > max_ms / 2 ? max_ms : d * 2;
    if (d > max_ms)
        d = max_ms;
    if (rnd < 0)
        rnd = 0;
    if (rnd >= 1)
        rnd = 0.999999;
    return d / 2 + (long)((double)(d - d / 2) * rnd + 0.5);
}

static double random_unit(informer *inf)
{
    return (double)rand_r(&inf->seed) / ((double)RAND_MAX + 1.0);
}

/* Sleeps ms or until stopped. */
static void wait_or_stop(informer *inf, long ms)
{
    struct timespec until = timefmt_deadline(CLOCK_MONOTONIC, ms);
    pthread_mutex_lock(&inf->mu);
    while (!atomic_load(&inf->stop))
        if (pthread_cond_timedwait(&inf->cond, &inf->mu, &until) != 0)
            break;
    pthread_mutex_unlock(&inf->mu);
}

static void set_rv(informer *inf, char *rv)
{
    pthread_mutex_lock(&inf->mu);
    free(inf->rv);
    inf->rv = rv;
    pthread_mutex_unlock(&inf->mu);
}

/* Calls every handler for each change, then drops the changes. */
static void dispatch(informer *inf)
{
    for (size_t i = 0; i < inf->changes.len; i++) {
        const informer_change *c = &inf->changes.items[i];
        for (size_t h = 0; h < inf->nhandlers; h++) {
            const informer_handlers *hs = &inf->handlers[h];
            switch (c->type) {
            case INFORMER_ADDED:
                if (hs->on_add)
                    hs->on_add(hs->ctx, informer_obj_json(c->new_obj));
                break;
            case INFORMER_UPDATED:
                if (hs->on_update)
                    hs->on_update(hs->ctx, informer_obj_json(c->old_obj), informer_obj_json(c->new_obj));
                break;
            case INFORMER_DELETED:
                if (hs->on_delete)
                    hs->on_delete(hs->ctx, informer_obj_json(c->old_obj));
                break;
            }
        }
    }
    informer_changes_clear(&inf->changes);
}

void informer_trim(const informer *inf, cJSON *obj)
{
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(meta, "annotations"),
                                            "kubectl.kubernetes.io/last-applied-configuration");
    /* a transform keeps of metadata.managedFields what its readers need, if anything */
    if (inf->transform)
        inf->transform(obj);
    else
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "managedFields");
}

bool informer_same_but_version(const cJSON *old_obj, const cJSON *new_obj)
{
    const cJSON *x, *m;
    if (!cJSON_IsObject(old_obj) || !cJSON_IsObject(new_obj) ||
        cJSON_GetArraySize(old_obj) != cJSON_GetArraySize(new_obj))
        return false;
    cJSON_ArrayForEach(x, old_obj) {
        const cJSON *y = x->string ? cJSON_GetObjectItemCaseSensitive(new_obj, x->string) : NULL;
        if (!y)
            return false;
        if (strcmp(x->string, "metadata") != 0 || !cJSON_IsObject(x) || !cJSON_IsObject(y)) {
            if (!cJSON_Compare(x, y, true))
                return false;
            continue;
        }
        if (cJSON_GetArraySize(x) != cJSON_GetArraySize(y))
            return false;
        cJSON_ArrayForEach(m, x) {
            const cJSON *n = m->string ? cJSON_GetObjectItemCaseSensitive(y, m->string) : NULL;
            if (!n || (strcmp(m->string, "resourceVersion") != 0 && !cJSON_Compare(m, n, true)))
                return false;
        }
    }
    return true;
}

typedef struct {
    const informer *inf;
    informer_store_fresh *fresh;
} list_ctx;

/* Each listed object, as its page arrives: trimmed, then into the state being built. */
static int list_each(void *ctx, cJSON *item)
{
    list_ctx *lc = ctx;
    if (!item) { /* the list starts over */
        informer_store_fresh_reset(lc->fresh);
        return 0;
    }
    informer_trim(lc->inf, item);
    return informer_store_fresh_add(lc->fresh, item);
}

static int list_into_cache(informer *inf)
{
    int err = 0;
    cJSON *list = NULL;
    const char *rv;
    char *rv_copy = NULL;
    informer_store_fresh *fresh = NULL;
    list_ctx lc = {.inf = inf};
    kube_list_opts lo = {
        .label_selector = inf->label_selector,
        .field_selector = inf->field_selector,
        .limit = inf->page_size,
        .each = list_each,
        .each_ctx = &lc,
    };
    mb_log_fields f = log_fields(inf);

    if ((err = informer_store_fresh_new(&fresh, inf->store)) < 0)
        goto done;
    lc.fresh = fresh;
    if ((err = kube_list(&list, inf->client, inf->resource, inf->ns, &lo)) < 0)
        goto done;
    rv = json_str(list, "metadata", "resourceVersion", NULL);
    if (!rv || !*rv) {
        err = mb_error_set(MB_EJSON, "the %s list has no metadata.resourceVersion to watch from",
                           inf->resource->resource);
        goto done;
    }
    if (!(rv_copy = strdup(rv))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    err = informer_store_fresh_commit(&inf->changes, fresh);
    fresh = NULL;
    if (err < 0)
        goto done;
    set_rv(inf, rv_copy);
    rv_copy = NULL;
    atomic_fetch_add(&inf->relists, 1);
    MB_LOG(MB_LOG_DEBUG, &f, "listed %zu %s at resourceVersion %s (%zu changes)", informer_store_len(inf->store),
           inf->resource->resource, rv, inf->changes.len);
    dispatch(inf);
    if (!atomic_load(&inf->synced)) {
        pthread_mutex_lock(&inf->mu);
        atomic_store(&inf->synced, true);
        pthread_cond_broadcast(&inf->cond);
        pthread_mutex_unlock(&inf->mu);
    }
done:
    informer_store_fresh_free(fresh);
    informer_changes_clear(&inf->changes);
    cJSON_Delete(list);
    free(rv_copy);
    return err;
}

static int on_watch_event(void *ctx, kube_watch_type type, cJSON *obj)
{
    informer *inf = ctx;
    int err = 0;
    const char *rv = json_str(obj, "metadata", "resourceVersion", NULL);
    char *rv_copy = rv ? strdup(rv) : NULL;
    mb_log_fields f = log_fields(inf);

    inf->watch_events++;
    atomic_store(&inf->beat_ms, mb_monotonic_ms());
    switch (type) {
    case KUBE_WATCH_BOOKMARK: cJSON_Delete(obj); break;
    case KUBE_WATCH_ERROR:
        MB_LOG(MB_LOG_WARN, &f, "the %s watch reported an error: %s (code %lld)", inf->resource->resource,
               json_str(obj, "message", NULL) ? json_str(obj, "message", NULL) : "no message",
               json_int(0, obj, "code", NULL));
        cJSON_Delete(obj);
        inf->watch_failed = true;
        free(rv_copy);
        return 1;
    case KUBE_WATCH_ADDED:
    case KUBE_WATCH_MODIFIED:
        informer_trim(inf, obj);
        err = informer_store_upsert(&inf->changes, inf->store, obj);
        break;
    case KUBE_WATCH_DELETED: err = informer_store_delete(&inf->changes, inf->store, obj); break;
    }
    if (err < 0) {
        MB_LOG(MB_LOG_WARN, &f, "cannot apply a %s %s event to the cache, will relist: %s", inf->resource->resource,
               kube_watch_type_name(type), mb_error_last());
        informer_changes_clear(&inf->changes);
        inf->need_relist = true;
        free(rv_copy);
        return 1;
    }
    if (rv_copy)
        set_rv(inf, rv_copy);
    dispatch(inf);
    return 0;
}

static int watch_into_cache(informer *inf)
{
    char *rv;
    int err;
    kube_watch_opts wo = {
        .label_selector = inf->label_selector,
        .field_selector = inf->field_selector,
        .timeout_seconds = inf->watch_timeout_s,
        .stop = &inf->stop,
    };
    if (!wo.timeout_seconds)
        wo.timeout_seconds = MIN_WATCH_TIMEOUT_S + (int)(random_unit(inf) * MIN_WATCH_TIMEOUT_S);
    pthread_mutex_lock(&inf->mu);
    rv = inf->rv ? strdup(inf->rv) : NULL;
    pthread_mutex_unlock(&inf->mu);
    if (!rv)
        return mb_error_set(MB_ENOMEM, "out of memory");
    wo.resource_version = rv;
    inf->watch_failed = false;
    inf->need_relist = false;
    inf->watch_events = 0;
    err = kube_watch(inf->client, inf->resource, inf->ns, &wo, on_watch_event, inf);
    free(rv);
    return err;
}

static void *run(void *arg)
{
    informer *inf = arg;
    unsigned failures = 0;
    bool need_list = true;
    mb_log_fields f = log_fields(inf);

    while (!atomic_load(&inf->stop)) {
        int err;
        long started;
        atomic_store(&inf->beat_ms, mb_monotonic_ms());
        if (need_list) {
            err = list_into_cache(inf);
            if (atomic_load(&inf->stop))
                break;
            if (err < 0) {
                long ms = informer_backoff_ms(inf->backoff_base_ms, inf->backoff_max_ms, ++failures, random_unit(inf));
                MB_LOG(MB_LOG_WARN, &f, "listing %s failed, retrying in %ld ms: %s", inf->resource->resource, ms,
                       mb_error_last());
                wait_or_stop(inf, ms);
                continue;
            }
            need_list = false;
            failures = 0;
        }

        started = mb_monotonic_ms();
        err = watch_into_cache(inf);
        if (atomic_load(&inf->stop))
            break;
        atomic_fetch_add(&inf->restarts, 1);
        if (inf->watch_events > 0)
            failures = 0;
        if (err == MB_EGONE) {
            MB_LOG(MB_LOG_INFO, &f, "the %s watch's resourceVersion is too old; relisting", inf->resource->resource);
            need_list = true;
            continue;
        }
        if (inf->need_relist) {
            need_list = true;
        } else if (err == 0 && (inf->watch_events > 0 || mb_monotonic_ms() - started >= HEALTHY_WATCH_MS)) {
            /* The server ended the stream: resume from the newest resourceVersion. */
            MB_LOG(MB_LOG_DEBUG, &f, "the %s watch ended; watching again", inf->resource->resource);
            failures = 0;
            continue;
        }
        {
            long ms = informer_backoff_ms(inf->backoff_base_ms, inf->backoff_max_ms, ++failures, random_unit(inf));
            MB_LOG(MB_LOG_WARN, &f, "the %s watch failed, retrying in %ld ms: %s", inf->resource->resource, ms,
                   inf->watch_failed ? "the server sent an error event"
                   : err == 0        ? "the server closed the stream at once"
                                     : mb_error_last());
            wait_or_stop(inf, ms);
        }
    }
    pthread_mutex_lock(&inf->mu);
    inf->running = false;
    pthread_cond_broadcast(&inf->cond);
    pthread_mutex_unlock(&inf->mu);
    return NULL;
}

static int dup_opt(char **out, const char *s)
{
    *out = NULL;
    if (s && *s && !(*out = strdup(s)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    return 0;
}

int informer_new(informer **out, kube_client *client, const kube_resource *resource, const informer_opts *opts)
{
    int err = 0;
    informer *inf = NULL;
    informer_opts o = {0};
    pthread_condattr_t ca;
    *out = NULL;
    if (!client || !resource)
        return mb_error_set(MB_EINVAL, "an informer needs a client and a resource");
    if (opts)
        o = *opts;
    if (!(inf = calloc(1, sizeof(*inf))))
        return mb_error_set(MB_ENOMEM, "out of memory creating an informer");
    inf->client = client;
    inf->resource = resource;
    inf->page_size = o.page_size > 0 ? o.page_size : DEFAULT_PAGE_SIZE;
    inf->watch_timeout_s = o.watch_timeout_seconds > 0 ? o.watch_timeout_seconds : 0;
    inf->backoff_base_ms = o.backoff_base_ms > 0 ? o.backoff_base_ms : DEFAULT_BACKOFF_BASE_MS;
    inf->backoff_max_ms = o.backoff_max_ms > 0 ? o.backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    inf->transform = o.transform;
    inf->seed = (unsigned int)time(NULL) ^ (unsigned int)(uintptr_t)inf;
    atomic_init(&inf->stop, false);
    atomic_init(&inf->synced, false);
    atomic_init(&inf->restarts, 0);
    atomic_init(&inf->relists, 0);
    pthread_mutex_init(&inf->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&inf->cond, &ca);
    pthread_condattr_destroy(&ca);
    if ((err = dup_opt(&inf->ns, o.namespace)) < 0 || (err = dup_opt(&inf->label_selector, o.label_selector)) < 0 ||
        (err = dup_opt(&inf->field_selector, o.field_selector)) < 0 || (err = informer_store_new(&inf->store)) < 0)
        goto done;
    *out = inf;
    inf = NULL;
done:
    informer_free(inf);
    return err;
}

void informer_free(informer *inf)
{
    if (!inf)
        return;
    informer_stop(inf);
    informer_store_free(inf->store);
    informer_changes_clear(&inf->changes);
    free(inf->handlers);
    free(inf->ns);
    free(inf->label_selector);
    free(inf->field_selector);
    free(inf->rv);
    pthread_cond_destroy(&inf->cond);
    pthread_mutex_destroy(&inf->mu);
    free(inf);
}

int informer_add_handlers(informer *inf, const informer_handlers *handlers)
{
    int err = 0;
    pthread_mutex_lock(&inf->mu);
    if (inf->started) {
        err = mb_error_set(MB_EINVAL, "handlers must be added to the %s informer before it starts",
                           inf->resource->resource);
    } else {
        informer_handlers *h = realloc(inf->handlers, (inf->nhandlers + 1) * sizeof(*h));
        if (!h) {
            err = mb_error_set(MB_ENOMEM, "out of memory adding informer handlers");
        } else {
            h[inf->nhandlers++] = *handlers;
            inf->handlers = h;
        }
    }
    pthread_mutex_unlock(&inf->mu);
    return err;
}

int informer_add_index(informer *inf, const char *name, informer_index_fn fn, void *ctx)
{
    return informer_store_add_index(inf->store, name, fn, ctx);
}

int informer_start(informer *inf)
{
    int err = 0;
    pthread_mutex_lock(&inf->mu);
    if (inf->started) {
        err = mb_error_set(MB_EINVAL, "the %s informer is already started", inf->resource->resource);
    } else if (pthread_create(&inf->thread, NULL, run, inf) != 0) {
        err = mb_error_set(MB_ERROR, "cannot start a thread for the %s informer", inf->resource->resource);
    } else {
        inf->started = true;
        inf->running = true;
        atomic_store(&inf->beat_ms, mb_monotonic_ms());
    }
    pthread_mutex_unlock(&inf->mu);
    return err;
}

void informer_stop_request(informer *inf)
{
    if (!inf)
        return;
    pthread_mutex_lock(&inf->mu);
    kube_client_stop_stream(inf->client, &inf->stop);
    pthread_cond_broadcast(&inf->cond);
    pthread_mutex_unlock(&inf->mu);
}

void informer_stop(informer *inf)
{
    bool join;
    if (!inf)
        return;
    informer_stop_request(inf);
    pthread_mutex_lock(&inf->mu);
    join = inf->started && !inf->joined;
    inf->joined = inf->joined || inf->started;
    pthread_mutex_unlock(&inf->mu);
    if (join)
        pthread_join(inf->thread, NULL);
}

bool informer_alive(informer *inf, char *reason, size_t size)
{
    bool running;
    long timeout_s = inf->watch_timeout_s > 0 ? inf->watch_timeout_s : 2 * MIN_WATCH_TIMEOUT_S;
    long quiet = mb_monotonic_ms() - (long)atomic_load(&inf->beat_ms);
    pthread_mutex_lock(&inf->mu);
    running = inf->running;
    pthread_mutex_unlock(&inf->mu);
    if (!running) {
        snprintf(reason, size, "the %s informer is not running", inf->resource->resource);
        return false;
    }
    /* a watch ends within its timeout and bookmarks come every minute: twice that, and a back-off, is a stall */
    if (quiet > 2 * timeout_s * 1000 + inf->backoff_max_ms) {
        snprintf(reason, size, "the %s informer has shown no sign of life for %ld s", inf->resource->resource,
                 quiet / 1000);
        return false;
    }
    return true;
}

bool informer_has_synced(informer *inf)
{
    return atomic_load(&inf->synced);
}

int informer_wait_for_sync(informer *inf, long timeout_ms)
{
    struct timespec until = timefmt_deadline(CLOCK_MONOTONIC, timeout_ms > 0 ? timeout_ms : 0);
    int err = 0;
    pthread_mutex_lock(&inf->mu);
    while (!atomic_load(&inf->synced)) {
        if (atomic_load(&inf->stop) || (inf->started && !inf->running)) {
            err = mb_error_set(MB_ESTOPPED, "the %s informer stopped before its first list", inf->resource->resource);
            break;
        }
        if (pthread_cond_timedwait(&inf->cond, &inf->mu, &until) != 0 && !atomic_load(&inf->synced)) {
            err = mb_error_set(MB_ETIMEOUT, "the %s informer has not synced within %ld ms", inf->resource->resource,
                               timeout_ms);
            break;
        }
    }
    pthread_mutex_unlock(&inf->mu);
    return err;
}

int informer_get_key(informer_obj **out, informer *inf, const char *key)
{
    return informer_store_get(out, inf->store, key);
}

int informer_get(informer_obj **out, informer *inf, const char *ns, const char *name)
{
    char *key = NULL;
    int err;
    *out = NULL;
    if (!name)
        return mb_error_set(MB_EINVAL, "informer_get needs a name");
    if (ns && *ns) {
        if (asprintf(&key, "%s/%s", ns, name) < 0)
            return mb_error_set(MB_ENOMEM, "out of memory");
        err = informer_store_get(out, inf->store, key);
        free(key);
        return err;
    }
    return informer_store_get(out, inf->store, name);
}

int informer_list(informer_objs **out, informer *inf)
{
    return informer_store_list(out, inf->store);
}

int informer_by_index(informer_objs **out, informer *inf, const char *index, const char *key)
{
    return informer_store_by_index(out, inf->store, index, key);
}

informer_store *informer_cache(informer *inf)
{
    return inf->store;
}

const kube_resource *informer_resource(const informer *inf)
{
    return inf->resource;
}

unsigned long informer_watch_restarts(informer *inf)
{
    return atomic_load(&inf->restarts);
}

unsigned long informer_relists(informer *inf)
{
    return atomic_load(&inf->relists);
}

char *informer_resource_version(informer *inf)
{
    char *rv;
    pthread_mutex_lock(&inf->mu);
    rv = inf->rv ? strdup(inf->rv) : NULL;
    pthread_mutex_unlock(&inf->mu);
    return rv;
}

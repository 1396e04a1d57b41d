/*
 * The controller manager of runtime/manager.h: a short list of registered
 * controllers, each with the loop the manager made for it. Leadership is
 * main.c's: it calls manager_start when the Lease is won (or at once).
 */
#include "runtime/manager.h"
#include "util/error.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONTROLLERS 8

typedef struct {
    manager_registration reg;
    loop *loop;
} controller_entry;

struct manager {
    manager_opts opts;
    controller_entry controllers[MAX_CONTROLLERS];
    size_t n;
    atomic_bool starting; /* the caches are being filled */
    atomic_bool started;  /* they are, and the loops run */
};

int manager_new(manager **out, const manager_opts *opts)
{
    manager *m = NULL;
    *out = NULL;
    if (!opts || !opts->factory)
        return mb_error_set(MB_EINVAL, "manager: an informer factory is needed");
    if (!(m = calloc(1, sizeof(*m))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    m->opts = *opts;
    if (m->opts.workers <= 0)
        m->opts.workers = 4;
    if (m->opts.sync_timeout_ms <= 0)
        m->opts.sync_timeout_ms = 60000;
    *out = m;
    return 0;
}

int manager_add(manager *m, const manager_registration *r)
{
    controller_entry *c = NULL;
    int err = 0;
    if (!r || !r->reconcile || !r->subscribe) {
        err = mb_error_set(MB_EINVAL, "manager: a controller needs a reconcile and a subscribe function");
        goto done;
    }
    if (atomic_load(&m->starting)) {
        err = mb_error_set(MB_EINVAL, "manager: controller %s registered after start", r->kind);
        goto done;
    }
    if (m->n == MAX_CONTROLLERS) {
        err = mb_error_set(MB_EINVAL, "manager: more than %d controllers", MAX_CONTROLLERS);
        goto done;
    }
    c = &m->controllers[m->n];
    memset(c, 0, sizeof(*c));
    loop_opts lo = {.kind = r->kind, .workers = m->opts.workers, .reconcile = r->reconcile, .ctx = r->ctx};
    if ((err = loop_new(&c->loop, &lo)) < 0)
        goto done;
    c->reg = *r;
    m->n++; /* from here the entry (and ctx) is the manager's, freed with it */
    if ((err = r->subscribe(r->ctx, m->opts.factory, c->loop)) < 0)
        return mb_error_wrap(err, "subscribing the %s controller", r->kind);
    return 0;
done:
    if (r && r->free)
        r->free(r->ctx);
    return err;
}

int manager_add_with_works(manager *m, const manager_registration *r, worktable **works, size_t payload_size,
                           void (*clear)(void *payload))
{
    if (worktable_new(works, payload_size, clear) < 0) {
        if (r->free)
            r->free(r->ctx);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    return manager_add(m, r);
}

static void enqueue_own(void *ctx, const cJSON *obj)
{
    loop_enqueue_object(ctx, obj);
}

static void enqueue_own_update(void *ctx, const cJSON *old_obj, const cJSON *new_obj)
{
    (void)old_obj;
    loop_enqueue_object(ctx, new_obj);
}

int manager_watch_all(informer_factory *f, loop *l, manager_informer_fn informer_of, const manager_watch *w, size_t n)
{
    int err = 0;
    for (size_t i = 0; i < n; i++) {
        informer_handlers h = w[i].handlers;
        if (!h.on_add)
            h = (informer_handlers){enqueue_own, enqueue_own_update, enqueue_own, l};
        if ((err = informer_of(w[i].out, f, w[i].resource)) < 0 ||
            (w[i].index && (err = informer_factory_add_index(f, w[i].resource, w[i].index, w[i].index_fn, NULL)) < 0) ||
            (err = informer_factory_subscribe(f, w[i].resource, &h)) < 0)
            return err;
    }
    return 0;
}

int manager_start(manager *m)
{
    int err = 0;
    atomic_store(&m->starting, true);
    if ((err = informer_factory_start(m->opts.factory, m->opts.sync_timeout_ms)) < 0)
        return err;
    for (size_t i = 0; i < m->n; i++)
        if ((err = loop_start(m->controllers[i].loop)) < 0)
            return mb_error_wrap(err, "starting the %s controller", m->controllers[i].reg.kind);
    atomic_store(&m->started, true);
    return 0;
}

int manager_stop(manager *m, long timeout_ms)
{
    int err = 0;
    /* the watches wind down while the loops drain; the caches stay readable for the reconciles in flight */
    informer_factory_stop_request(m->opts.factory);
    for (size_t i = 0; i < m->n; i++) {
        int e = loop_stop(m->controllers[i].loop, timeout_ms);
        if (e < 0 && err == 0)
            err = e;
    }
    informer_factory_stop(m->opts.factory);
    return err;
}

bool manager_alive(void *ctx, char *reason, size_t size)
{
    manager *m = ctx;
    return !atomic_load(&m->started) || informer_factory_alive(m->opts.factory, reason, size);
}

bool manager_ready(void *ctx, char *reason, size_t size)
{
    manager *m = ctx;
    if (!atomic_load(&m->starting) || informer_factory_synced(m->opts.factory))
        return true;
    snprintf(reason, size, "the informer caches have not synced yet");
    return false;
}

void manager_free(manager *m)
{
    if (!m)
        return;
    /* the informers feed the loops: they stop first */
    informer_factory_stop(m->opts.factory);
    /* each loop stops taking work, then its controller goes (its own threads may still enqueue), then the loop */
    for (size_t i = 0; i < m->n; i++) {
        loop_stop(m->controllers[i].loop, 0);
        if (m->controllers[i].reg.free)
            m->controllers[i].reg.free(m->controllers[i].reg.ctx);
        loop_free(m->controllers[i].loop);
    }
    free(m);
}

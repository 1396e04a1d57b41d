/*
 * The shared informer factory of runtime/factory.h: a short list of
 * registered resources, each with its one informer, its transform and the
 * names of its indexes, so that a second subscriber reuses them. The first
 * handlers of every informer are the factory's own: a delete drops the
 * object's read-your-writes entries before any subscriber sees it.
 */
#include "runtime/factory.h"
#include "runtime/metrics_families.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESOURCES 16
#define MAX_INDEXES 8

typedef struct {
    informer_factory *f;
    const kube_resource *resource;
    informer *inf;
    void (*transform)(cJSON *obj);
    char *selector; /* the resource's own label selector, or NULL */
    struct {
        char *name;
        informer_index_fn fn;
    } indexes[MAX_INDEXES];
    size_t n_indexes;
} entry;

struct informer_factory {
    kube_client *client;
    char *namespace, *label_selector, *selector_group;
    ryw *ryw;
    entry entries[MAX_RESOURCES];
    size_t n;
    bool started;
};

int informer_factory_new(informer_factory **out, const informer_factory_opts *opts)
{
    informer_factory *f = NULL;
    int err = 0;
    *out = NULL;
    if (!opts || !opts->client)
        return mb_error_set(MB_EINVAL, "informer factory: a client is needed");
    if (!(f = calloc(1, sizeof(*f))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    f->client = opts->client;
    if ((opts->namespace && !(f->namespace = strdup(opts->namespace))) ||
        (opts->label_selector && !(f->label_selector = strdup(opts->label_selector))) ||
        (opts->selector_group && !(f->selector_group = strdup(opts->selector_group)))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    if ((err = ryw_new(&f->ryw)) < 0)
        goto done;
    *out = f;
    f = NULL;
done:
    informer_factory_free(f);
    return err;
}

void informer_factory_free(informer_factory *f)
{
    if (!f)
        return;
    informer_factory_stop(f);
    for (size_t i = 0; i < f->n; i++) {
        informer_metrics_remove(f->entries[i].inf);
        informer_free(f->entries[i].inf);
        free(f->entries[i].selector);
        for (size_t j = 0; j < f->entries[i].n_indexes; j++)
            free(f->entries[i].indexes[j].name);
    }
    ryw_free(f->ryw);
    free(f->namespace);
    free(f->label_selector);
    free(f->selector_group);
    free(f);
}

static bool same_resource(const kube_resource *a, const kube_resource *b)
{
    return strcmp(a->group ? a->group : "", b->group ? b->group : "") == 0 && strcmp(a->resource, b->resource) == 0;
}

static entry *find(informer_factory *f, const kube_resource *resource)
{
    for (size_t i = 0; i < f->n; i++)
        if (same_resource(f->entries[i].resource, resource))
            return &f->entries[i];
    return NULL;
}

/* The factory's own handler: a deleted object's read-your-writes entries go with it. */
static void on_delete(void *ctx, const cJSON *obj)
{
    entry *e = ctx;
    char *key = NULL;
    if (informer_key(&key, obj) == 0)
        ryw_forget(e->f->ryw, e->resource->kind, key);
    free(key);
}

int informer_factory_informer(informer **out, informer_factory *f, const kube_resource *resource,
                              void (*transform)(cJSON *obj))
{
    return informer_factory_informer_selected(out, f, resource, transform, NULL);
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int informer_factory_informer_selected(informer **out, informer_factory *f, const kube_resource *resource,
                                       void (*transform)(cJSON *obj), const char *label_selector)
{
    entry *e = find(f, resource);
    char *selector = NULL;
    int err = 0;
    *out = NULL;
    if (label_selector && !*label_selector)
        label_selector = NULL;
    if (e) {
        if (e->transform != transform)
            return mb_error_set(MB_EINVAL,
                                "the %s informer is registered with another trim transform: "
                                "extend the one transform to keep what every subscriber reads",
                                resource->resource);
        if (!same_str(e->selector, label_selector))
            return mb_error_set(MB_EINVAL,
                                "the %s informer is registered with another label selector: "
                                "subscribers of one cache share one selector",
                                resource->resource);
        *out = e->inf;
        return 0;
    }
    if (f->started)
        return mb_error_set(MB_EINVAL, "the %s informer must be registered before the factory starts",
                            resource->resource);
    if (f->n == MAX_RESOURCES)
        return mb_error_set(MB_EINVAL, "informer factory: more than %d resources", MAX_RESOURCES);
    bool ours = f->selector_group && resource->group && strcmp(resource->group, f->selector_group) == 0;
    const char *global = ours ? f->label_selector : NULL;
    /* the resource's own selector and --watch-label-selector both hold: joined with "," (AND) */
    if (global && label_selector
            ? asprintf(&selector, "%s,%s", label_selector, global) < 0
            : (label_selector || global) && !(selector = strdup(label_selector ? label_selector : global)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    informer_opts io = {.namespace = f->namespace, .label_selector = selector, .transform = transform};
    e = &f->entries[f->n];
    memset(e, 0, sizeof(*e));
    e->f = f;
    e->resource = resource;
    e->transform = transform;
    err = informer_new(&e->inf, f->client, resource, &io);
    free(selector);
    if (err < 0)
        return err;
    if (label_selector && !(e->selector = strdup(label_selector))) {
        informer_free(e->inf);
        e->inf = NULL;
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    informer_handlers h = {.on_delete = on_delete, .ctx = e};
    if ((err = informer_add_handlers(e->inf, &h)) < 0 || (err = informer_metrics_add(e->inf)) < 0) {
        informer_free(e->inf);
        e->inf = NULL;
        free(e->selector);
        e->selector = NULL;
        return err;
    }
    f->n++;
    *out = e->inf;
    return 0;
}

int informer_factory_add_index(informer_factory *f, const kube_resource *resource, const char *name,
                               informer_index_fn fn, void *ctx)
{
    entry *e = find(f, resource);
    int err = 0;
    if (!e)
        return mb_error_set(MB_EINVAL, "index %s: the %s informer is not registered", name, resource->resource);
    for (size_t i = 0; i < e->n_indexes; i++)
        if (strcmp(e->indexes[i].name, name) == 0)
            return e->indexes[i].fn == fn
                       ? 0
                       : mb_error_set(MB_EINVAL, "index %s of %s is registered with another function", name,
                                      resource->resource);
    if (e->n_indexes == MAX_INDEXES)
        return mb_error_set(MB_EINVAL, "the %s informer has more than %d indexes", resource->resource, MAX_INDEXES);
    if (!(e->indexes[e->n_indexes].name = strdup(name)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    if ((err = informer_add_index(e->inf, name, fn, ctx)) < 0) {
        free(e->indexes[e->n_indexes].name);
        return err;
    }
    e->indexes[e->n_indexes++].fn = fn;
    return 0;
}

int informer_factory_subscribe(informer_factory *f, const kube_resource *resource, const informer_handlers *h)
{
    entry *e = find(f, resource);
    if (!e)
        return mb_error_set(MB_EINVAL, "subscribing: the %s informer is not registered", resource->resource);
    return informer_add_handlers(e->inf, h);
}

int informer_factory_start(informer_factory *f, long timeout_ms)
{
    int err = 0;
    f->started = true;
    for (size_t i = 0; i < f->n; i++)
        if ((err = informer_start(f->entries[i].inf)) < 0)
            return err;
    for (size_t i = 0; i < f->n; i++)
        if ((err = informer_wait_for_sync(f->entries[i].inf, timeout_ms)) < 0)
            return mb_error_wrap(err, "waiting for the %s cache", f->entries[i].resource->resource);
    return 0;
}

void informer_factory_stop_request(informer_factory *f)
{
    for (size_t i = 0; i < f->n; i++)
        informer_stop_request(f->entries[i].inf);
}

void informer_factory_stop(informer_factory *f)
{
    for (size_t i = 0; i < f->n; i++)
        informer_stop(f->entries[i].inf);
}

bool informer_factory_alive(informer_factory *f, char *reason, size_t size)
{
    for (size_t i = 0; i < f->n; i++)
        if (!informer_alive(f->entries[i].inf, reason, size))
            return false;
    return true;
}

bool informer_factory_synced(informer_factory *f)
{
    if (f->n == 0)
        return false; /* nothing watched is not a synced cache */
    for (size_t i = 0; i < f->n; i++)
        if (!informer_has_synced(f->entries[i].inf))
            return false;
    return true;
}

ryw *informer_factory_ryw(informer_factory *f)
{
    return f->ryw;
}

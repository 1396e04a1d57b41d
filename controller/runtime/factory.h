/*
 * The shared informer factory: one informer per resource for the whole
 * process. A resource is registered once, with its trim transform (what every
 * subscriber's reconcile may read of it); each controller then subscribes its
 * own handlers and adds the indexes it needs, so that several controllers
 * watch a kind through one list/watch and one cache. The label selector of
 * --watch-label-selector is applied to the list/watch of every resource of the
 * project's own API group (selector_group). The factory also owns the
 * process's read-your-writes state (runtime/ryw.h) and drops an object's
 * entries there when the object is deleted.
 */
#ifndef MB_RUNTIME_FACTORY_H
#define MB_RUNTIME_FACTORY_H

#include "kube/client.h"
#include "runtime/informer.h"
#include "runtime/ryw.h"

#include <stdbool.h>

typedef struct informer_factory informer_factory;

typedef struct {
    kube_client *client;        /* borrowed; outlives the factory */
    const char *namespace;      /* NULL: all namespaces */
    const char *label_selector; /* NULL: none; applied to the resources of selector_group */
    const char *selector_group; /* the API group of the kinds of ours, e.g. "governance.kfm.dev" */
} informer_factory_opts;

/* Strings are copied. */
int informer_factory_new(informer_factory **out, const informer_factory_opts *opts);

/* Stops the informers and frees them, and the read-your-writes state. Accepts NULL. */
void informer_factory_free(informer_factory *f);

/*
 * The informer of resource (borrowed; the factory owns it), created on the
 * first call with transform (NULL: no trim beyond managedFields and the
 * last-applied annotation). A later call for the same resource returns the same
 * informer, and must name the same transform (MB_EINVAL otherwise: two
 * subscribers cannot read two different trims of one cache). Only before
 * informer_factory_start.
 */
int informer_factory_informer(informer **out, informer_factory *f, const kube_resource *resource,
                              void (*transform)(cJSON *obj));

/*
 * As informer_factory_informer, with the resource's own label selector
 * (NULL or "": none): its list/watch, and so its cache, hold only the objects
 * that match it (and --watch-label-selector too, for the kinds of
 * selector_group). A later call for the same resource must name the same
 * selector (MB_EINVAL otherwise: the subscribers of one cache share it).
 */
int informer_factory_informer_selected(informer **out, informer_factory *f, const kube_resource *resource,
                                       void (*transform)(cJSON *obj), const char *label_selector);

/*
 * Adds a named index to resource's informer, once: a second registration of
 * the same name with the same function is a no-op (another subscriber needs
 * it too); with another function, MB_EINVAL.
 */
int informer_factory_add_index(informer_factory *f, const kube_resource *resource, const char *name,
                               informer_index_fn fn, void *ctx);

/* Subscribes handlers (copied) to resource's informer. Only before informer_factory_start. */
int informer_factory_subscribe(informer_factory *f, const kube_resource *resource, const informer_handlers *h);

/* Starts every informer, then waits up to timeout_ms for all their caches. */
int informer_factory_start(informer_factory *f, long timeout_ms);

/* Asks every informer to stop without waiting (the caches stay readable); informer_factory_stop joins them. */
void informer_factory_stop_request(informer_factory *f);
void informer_factory_stop(informer_factory *f);

/* False, with the reason, when one informer is not running or has stalled. */
bool informer_factory_alive(informer_factory *f, char *reason, size_t size);

/* True once every informer has synced (and at least one exists). */
bool informer_factory_synced(informer_factory *f);

/* Borrowed: the process's read-your-writes state. */
ryw *informer_factory_ryw(informer_factory *f);

#endif

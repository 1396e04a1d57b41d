/*
 * The informer's metric hooks: a collector on the process-wide registry that
 * reports an informer's watch restarts as
 * membrane_watch_restarts_total{resource="<plural>.<group>"} ("pods" for the
 * core group) when /metrics is scraped. Beside the informer, so that the
 * registry (runtime/metrics.h) stays a leaf.
 */
#include "runtime/informer.h"
#include "runtime/metrics_families.h"
#include "util/error.h"

#include <stdio.h>

static void informer_collect(void *ctx, metrics_registry *r)
{
    informer *inf = ctx;
    const kube_resource *res = informer_resource(inf);
    char name[256];
    (void)r;
    if (res->group && *res->group)
        snprintf(name, sizeof(name), "%s.%s", res->resource, res->group);
    else
        snprintf(name, sizeof(name), "%s", res->resource);
    metrics_watch_restarts_set(name, (double)informer_watch_restarts(inf));
}

int informer_metrics_add(informer *inf)
{
    metrics_registry *r = metrics_default();
    if (!r)
        return mb_error_set(MB_ENOMEM, "out of memory");
    return metrics_collector_add(r, informer_collect, inf);
}

void informer_metrics_remove(informer *inf)
{
    metrics_registry *r = metrics_default();
    if (r)
        metrics_collector_remove(r, informer_collect, inf);
}

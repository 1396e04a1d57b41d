/*
 * DatasetPromotion: observe and act around the pure decision
 * (dataset/decide.h). DatasetPromotions and the index ConfigMaps come
 * through the shared informer factory (ConfigMaps labelled
 * app.kubernetes.io/managed-by=membrane only); an index's change requeues
 * every promotion of its namespace that names it. Downloads, documents and
 * link checks run on the transfer loop: a reconcile starts them and
 * returns, each end requeues the promotion, and the next reconcile collects
 * it. The transfers of a promotion's generation are kept in memory by key.
 */
#ifndef MB_DATASET_CONTROLLER_H
#define MB_DATASET_CONTROLLER_H

#include "kube/client.h"
#include "net/transfer.h"
#include "runtime/events.h"
#include "runtime/manager.h"

typedef struct {
    kube_client *client;    /* borrowed */
    event_recorder *events; /* borrowed, may be NULL */
    net_loop *net;          /* borrowed, required */
} dataset_controller_opts;

/* Registers the DatasetPromotion controller with m; the manager owns it from here on (also on error). */
int dataset_controller_register(manager *m, const dataset_controller_opts *opts);

#endif

/*
 * PolicyBundle: observe and act around the pure decision (policy/decide.h).
 * PolicyBundles and the ConfigMaps membrane publishes come through the shared
 * informer factory (the ConfigMaps labelled app.kubernetes.io/managed-by=
 * membrane only, trimmed to the SHA-256 of their binaryData); a ConfigMap's
 * change requeues its owning bundle. The fetch and the decision tests run on
 * the transfer loop: a reconcile starts them and returns, their end requeues
 * the bundle, and the next reconcile collects the result. The work done for
 * a bundle's generation (its bytes until published) is kept in memory by key.
 */
#ifndef MB_POLICY_CONTROLLER_H
#define MB_POLICY_CONTROLLER_H

#include "kube/client.h"
#include "net/transfer.h"
#include "runtime/events.h"
#include "runtime/manager.h"

typedef struct {
    kube_client *client;    /* borrowed */
    event_recorder *events; /* borrowed, may be NULL */
    net_loop *net;          /* borrowed, required: the fetches and the decision tests */
} policy_controller_opts;

/*
 * Registers the PolicyBundle controller with m; the manager owns it from here
 * on (also on error).
 */
int policy_controller_register(manager *m, const policy_controller_opts *opts);

#endif

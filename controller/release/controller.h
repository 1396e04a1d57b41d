/*
 * GovernedAPIRelease: observe and act around the pure decision. Releases,
 * Deployments, Pods and PolicyBundles come through the shared informer
 * factory, with indexes so that a pod's change requeues only the release of
 * its Deployment. The verification checks run beside the workers
 * (verify/runner.h: the requests on the transfer loop, the membrane checks on
 * the controller's executor thread); a reconcile that needs them starts a run
 * and is requeued when it ends.
 */
#ifndef MB_RELEASE_CONTROLLER_H
#define MB_RELEASE_CONTROLLER_H

#include "kube/client.h"
#include "net/transfer.h"
#include "runtime/events.h"
#include "runtime/manager.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

typedef struct {
    kube_client *client;    /* borrowed */
    event_recorder *events; /* borrowed, may be NULL */
    net_loop *net;          /* borrowed, required: the transfer loop of the checks' requests */
    /* --allow-after-namespaces: the comma-separated namespaces spec.after may name (borrowed); NULL: any */
    const char *allow_after_namespaces;
    bool enable_probe; /* --enable-probe: spec.membrane.probe may run; its pods are swept on deletion */
} release_controller_opts;

/*
 * Registers the GovernedAPIRelease controller with m: it subscribes to the
 * factory's GovernedAPIReleases, Deployments, Pods and PolicyBundles, and the
 * manager runs its reconcile loop. The manager owns it from here on.
 */
int release_controller_register(manager *m, const release_controller_opts *opts);

#endif

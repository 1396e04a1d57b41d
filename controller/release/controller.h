/*
 * GovernedAPIRelease: observe and act around the pure decision. Releases,
 * Deployments, Pods and PolicyBundles come through the shared informer
 * factory, with indexes so that a pod's change requeues only the release of
 * its Deployment.
 */
#ifndef MB_RELEASE_CONTROLLER_H
#define MB_RELEASE_CONTROLLER_H

#include "kube/client.h"
#include "runtime/events.h"
#include "runtime/manager.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

/*
 * Runs the verification checks of a release against what its Deployment runs
 * now; *out is an array of check results (see decide.h). A non-nil error is a
 * failure to run them at all (the reconcile is retried).
 */
typedef int (*release_checks_fn)(cJSON **out, void *ctx, const cJSON *release, const char *release_id);

typedef struct {
    kube_client *client;          /* borrowed */
    event_recorder *events;       /* borrowed, may be NULL */
    release_checks_fn run_checks; /* NULL: no checks (every verification passes) */
    void *checks_ctx;
} release_controller_opts;

/*
 * Registers the GovernedAPIRelease controller with m: it subscribes to the
 * factory's GovernedAPIReleases, Deployments, Pods and PolicyBundles, and the
 * manager runs its reconcile loop. The manager owns it from here on.
 */
int release_controller_register(manager *m, const release_controller_opts *opts);

#endif

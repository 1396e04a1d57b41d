/*
 * GovernedAPIRelease: observe and act around the pure decision. Releases,
 * Deployments, Pods and PolicyBundles come through informers, with indexes
 * so that a pod's change requeues only the release of its Deployment. The
 * verification checks run beside the workers (verify/runner.h: the requests
 * on the transfer loop, the membrane checks on the controller's executor
 * thread); a reconcile that needs them starts a run and is requeued when it
 * ends.
 */
#ifndef RELEASE_CONTROLLER_H
#define RELEASE_CONTROLLER_H

#include "kube/client.h"
#include "net/transfer.h"
#include "runtime/events.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

typedef struct {
    kube_client *client;          /* borrowed */
    event_recorder *events;       /* borrowed, may be NULL */
    const char *namespace;        /* NULL: all namespaces */
    int workers;                  /* default 4 */
    net_loop *net;                /* borrowed: the transfer loop of the checks' requests; NULL: no checks (every
                                   * verification passes) */
} release_controller_opts;

typedef struct release_controller release_controller;

int release_controller_new(release_controller **out, const release_controller_opts *opts);

/* Starts the informers, waits for their caches (up to timeout_ms), then the workers. */
int release_controller_start(release_controller *rc, long timeout_ms);

/* False, with the reason, when one of its informers is not running or has stalled (for /healthz). */
bool release_controller_alive(release_controller *rc, char *reason, size_t size);

/* True once every informer has synced. */
bool release_controller_synced(release_controller *rc);

/* Stops taking work and lets in-flight reconciles finish (up to timeout_ms). */
int release_controller_stop(release_controller *rc, long timeout_ms);

void release_controller_free(release_controller *rc);

#endif

/*
 * Every verification check of one GovernedAPIRelease, against what its
 * Deployment runs now: the governed API contract checks of
 * spec.verification, and with spec.membrane the membrane checks
 * (membrane-networkpolicy from the live NetworkPolicies, Pods and Namespaces;
 * membrane-rbac from SubjectAccessReviews; membrane-probe, a pod with the
 * client's labels). The results are
 * one array shaped for status.verification.results.
 */
#ifndef VERIFY_RUNNER_H
#define VERIFY_RUNNER_H

#include "kube/client.h"

#include <cjson/cJSON.h>
#include <time.h>

/*
 * Runs them; *out is the results array. Checks that fail, or cannot be
 * evaluated, are failed results (fail closed); an error return means the run
 * itself could not happen (the reconcile is retried).
 */
int verify_release(cJSON **out, kube_client *client, const cJSON *release, const char *release_id, time_t now);

#endif

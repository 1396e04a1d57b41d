/*
 * Every verification check of one GovernedAPIRelease, against what its
 * Deployment runs now: the governed API contract checks of
 * spec.verification, and with spec.membrane the membrane checks
 * (membrane-networkpolicy from the live NetworkPolicies, Pods and Namespaces;
 * membrane-rbac from SubjectAccessReviews; membrane-probe, a pod with the
 * client's labels). The results are
 * one array shaped for status.verification.results.
 */
#ifndef MB_VERIFY_RUNNER_H
#define MB_VERIFY_RUNNER_H

#include "kube/client.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <time.h>

/* At most this many checks are requested by one release (the nine contract checks, the three membrane ones, room to grow). */
#define VERIFY_CHECKS_MAX 32

/*
 * The trigger of a check's row in API.md's tables: the contract checks'
 * (verify/contract.h), MembraneBreach for membrane-networkpolicy,
 * membrane-rbac and membrane-probe. SmokeFailure for a name in no table.
 */
const char *verify_check_trigger(const char *name);

/*
 * The checks a release asks for, whose every one must return a result (a
 * check without one fails, "no result"): spec.verification.checks, or when
 * it is absent the nine contract checks; with spec.membrane also
 * membrane-networkpolicy and membrane-rbac, and with spec.membrane.probe
 * membrane-probe. out[] gets borrowed names (from release or static), at most
 * max; returns how many. Pure: no I/O, no allocation.
 */
size_t verify_checks_requested(const char **out, size_t max, const cJSON *release);

/*
 * Runs them; *out is the results array. Checks that fail, or cannot be
 * evaluated, are failed results (fail closed); an error return means the run
 * itself could not happen (the reconcile is retried).
 */
int verify_release(cJSON **out, kube_client *client, const cJSON *release, const char *release_id, time_t now);

#endif

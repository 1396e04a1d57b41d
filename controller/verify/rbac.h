/*
 * membrane-rbac: SubjectAccessReviews (cluster-wide) and
 * LocalSubjectAccessReviews (in every existing namespace) asked of the real
 * apiserver show that the governed API's ServiceAccount cannot get, list or
 * watch Secrets outside its namespace, nor create pods/exec, pods/attach,
 * pods/portforward or serviceaccounts/token, nor impersonate users, groups or
 * serviceaccounts, nor escalate or bind roles or clusterroles (API.md,
 * "Membrane checks").
 */
#ifndef VERIFY_RBAC_H
#define VERIFY_RBAC_H

#include "kube/client.h"

#include <cjson/cJSON.h>

/*
 * Runs the reviews for ServiceAccount ns/sa (at most 8 in flight) and returns
 * one check result {name: "membrane-rbac", passed, latencyMs, message[,
 * trigger]} in *out. The message of a failure names the first allowed action:
 * verb, resource and namespace (cluster-wide ones first, then namespaces in
 * name order). A namespace list that cannot be read, or a review that cannot
 * be made, fails the check (fail closed) naming what could not be asked.
 * Returns an error only when out of memory.
 */
int rbac_membrane_check(cJSON **out, kube_client *client, const char *ns, const char *sa);

#endif

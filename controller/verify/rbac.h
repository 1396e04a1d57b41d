/*
 * membrane-rbac: SubjectAccessReviews asked of the real apiserver show that
 * the governed API's ServiceAccount cannot get or list Secrets outside its
 * namespace, nor create pods/exec (API.md, "Membrane checks").
 */
#ifndef VERIFY_RBAC_H
#define VERIFY_RBAC_H

#include "kube/client.h"

#include <cjson/cJSON.h>

/*
 * Runs the reviews for ServiceAccount ns/sa and returns one check result
 * {name: "membrane-rbac", passed, latencyMs, message[, trigger]} in *out.
 * A review that cannot be made fails the check (fail closed) with the reason.
 */
int rbac_membrane_check(cJSON **out, kube_client *client, const char *ns, const char *sa);

#endif

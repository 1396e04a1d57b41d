/*
 * membrane-rbac: SubjectAccessReviews (cluster-wide) and
 * LocalSubjectAccessReviews (in every existing namespace) asked of the real
 * apiserver show that the governed API's ServiceAccount cannot get, list or
 * watch Secrets outside its namespace, nor create pods/exec, pods/attach,
 * pods/portforward or serviceaccounts/token, nor impersonate users, groups or
 * serviceaccounts, nor escalate or bind roles or clusterroles (API.md,
 * "Membrane checks"). A review without a resource name does not see a grant
 * restricted by resourceNames (get on the one Secret db-password): so the
 * Roles and ClusterRoles bound to the ServiceAccount are read as well, and
 * any rule granting a forbidden action, with or without resourceNames,
 * fails the check.
 */
#ifndef MB_VERIFY_RBAC_H
#define MB_VERIFY_RBAC_H

#include "kube/client.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

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

/*
 * The rules side, pure: from the lists (as kube_list returns them, {"items":
 * [...]}) of RoleBindings, ClusterRoleBindings, Roles and ClusterRoles, the
 * first rule of a role bound to ServiceAccount ns/sa (by name, as the user
 * system:serviceaccount:<ns>:<sa>, or through the groups
 * system:serviceaccounts, system:serviceaccounts:<ns> or
 * system:authenticated) that grants a forbidden action where it is
 * forbidden, resourceNames or not (wildcards count). true with a sentence
 * naming the verb, resource, where, the role, the binding and the
 * resourceNames in msg; false when no rule does. A binding to a role that
 * does not exist grants nothing.
 */
bool rbac_rules_breach(char *msg, size_t size, const cJSON *rolebindings, const cJSON *clusterrolebindings,
                       const cJSON *roles, const cJSON *clusterroles, const char *ns, const char *sa);

/*
 * Whether the Deployment the release targets runs as ServiceAccount sa: the
 * reviews are only worth something about the identity the API really has.
 * deployment is the Deployment as read (NULL: it could not be read);
 * its pod template's serviceAccountName (or the deprecated serviceAccount;
 * "default" when neither is set) must equal sa. false with a sentence naming
 * both accounts and what to fix in msg otherwise. Pure.
 */
bool rbac_identity_matches(char *msg, size_t size, const cJSON *deployment, const char *sa);

#endif

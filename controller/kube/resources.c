/*
 * The resource types membrane reads and writes, as kube_resource constants:
 * group, version, plural resource, kind and whether it lives in a namespace.
 */
#include "kube/client.h"

const kube_resource KUBE_NAMESPACES = {"", "v1", "namespaces", "Namespace", false};
const kube_resource KUBE_CONFIGMAPS = {"", "v1", "configmaps", "ConfigMap", true};
const kube_resource KUBE_SECRETS = {"", "v1", "secrets", "Secret", true};
const kube_resource KUBE_PODS = {"", "v1", "pods", "Pod", true};
const kube_resource KUBE_EVENTS = {"", "v1", "events", "Event", true};
const kube_resource KUBE_SERVICEACCOUNTS = {"", "v1", "serviceaccounts", "ServiceAccount", true};
const kube_resource KUBE_DEPLOYMENTS = {"apps", "v1", "deployments", "Deployment", true};
const kube_resource KUBE_REPLICASETS = {"apps", "v1", "replicasets", "ReplicaSet", true};
const kube_resource KUBE_NETWORKPOLICIES = {"networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true};
const kube_resource KUBE_LEASES = {"coordination.k8s.io", "v1", "leases", "Lease", true};
const kube_resource KUBE_SUBJECTACCESSREVIEWS = {"authorization.k8s.io", "v1", "subjectaccessreviews",
                                                 "SubjectAccessReview", false};
const kube_resource KUBE_LOCALSUBJECTACCESSREVIEWS = {"authorization.k8s.io", "v1", "localsubjectaccessreviews",
                                                      "LocalSubjectAccessReview", true};
const kube_resource KUBE_ROLES = {"rbac.authorization.k8s.io", "v1", "roles", "Role", true};
const kube_resource KUBE_ROLEBINDINGS = {"rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true};
const kube_resource KUBE_CLUSTERROLES = {"rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false};
const kube_resource KUBE_CLUSTERROLEBINDINGS = {"rbac.authorization.k8s.io", "v1", "clusterrolebindings",
                                                "ClusterRoleBinding", false};
const kube_resource KUBE_CUSTOMRESOURCEDEFINITIONS = {"apiextensions.k8s.io", "v1", "customresourcedefinitions",
                                                      "CustomResourceDefinition", false};

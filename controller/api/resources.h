/*
 * membrane's own API types as Kubernetes resources (governance.kfm.dev/v1alpha1).
 */
#ifndef MB_API_RESOURCES_H
#define MB_API_RESOURCES_H

#include "kube/client.h"

#define API_GROUP "governance.kfm.dev"
#define API_VERSION "v1alpha1"

extern const kube_resource API_GOVERNEDAPIRELEASES, API_POLICYBUNDLES, API_DATASETPROMOTIONS;

#endif

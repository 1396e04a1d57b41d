/*
 * The three custom resources, addressed like any other kube_resource.
 */
#include "api/resources.h"

const kube_resource API_GOVERNEDAPIRELEASES = {API_GROUP, API_VERSION, "governedapireleases", "GovernedAPIRelease",
                                               true};
const kube_resource API_POLICYBUNDLES = {API_GROUP, API_VERSION, "policybundles", "PolicyBundle", true};
const kube_resource API_DATASETPROMOTIONS = {API_GROUP, API_VERSION, "datasetpromotions", "DatasetPromotion", true};

/*
 * The trim transforms of the cached resources (client-go's SetTransform), one
 * per resource and shared by every subscriber: a field a reconcile reads from
 * the cache must be kept here, whichever controller reads it. The informer
 * always drops metadata.managedFields and the last-applied-configuration
 * annotation.
 */
#include "api/informers.h"
#include "api/resources.h"
#include "util/base64.h"
#include "util/error.h"
#include "util/json.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* metadata every trimmed kind keeps: identity, labels (selectors, pod-template-hash), owners, deletion */
static const char *const keep_meta[] = {"name",
                                        "namespace",
                                        "uid",
                                        "resourceVersion",
                                        "generation",
                                        "labels",
                                        "annotations",
                                        "ownerReferences",
                                        "deletionTimestamp",
                                        NULL};
static const char *const keep_container[] = {"name", "image", "ports", NULL};

static void trim_containers(cJSON *pod_spec)
{
    static const char *const keep_spec[] = {"containers", "nodeName", "hostNetwork", NULL};
    cJSON *ct;
    json_keep_only(pod_spec, keep_spec);
    cJSON_ArrayForEach(ct, cJSON_GetObjectItemCaseSensitive(pod_spec, "containers"))
        json_keep_only(ct, keep_container);
}

/*
 * Pods (release: the Deployment's pods for crash loops and readiness; verify reads the API itself): metadata
 * without annotations, spec.containers (name, image, ports), nodeName, hostNetwork, and status phase, pod IPs
 * and containerStatuses (name, image, restartCount, state, ready).
 */
static void trim_pod(cJSON *pod)
{
    static const char *const keep[] = {"metadata", "spec", "status", NULL};
    static const char *const keep_status[] = {"phase", "podIP", "podIPs", "containerStatuses", NULL};
    static const char *const keep_cs[] = {"name", "image", "restartCount", "state", "ready", NULL};
    cJSON *cs;
    json_keep_only(pod, keep);
    json_keep_only(cJSON_GetObjectItemCaseSensitive(pod, "metadata"), keep_meta);
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "metadata"), "annotations");
    trim_containers(cJSON_GetObjectItemCaseSensitive(pod, "spec"));
    json_keep_only(cJSON_GetObjectItemCaseSensitive(pod, "status"), keep_status);
    cJSON_ArrayForEach(cs, json_get(pod, "status", "containerStatuses", NULL))
        json_keep_only(cs, keep_cs);
}

/*
 * Deployments (release: the target Deployment it rolls and rolls back): metadata, spec.replicas, selector and
 * template (its metadata and containers as for pods), and the whole status (rollout progress and conditions).
 */
static void trim_deployment(cJSON *d)
{
    static const char *const keep[] = {"metadata", "spec", "status", NULL};
    static const char *const keep_spec[] = {"replicas", "selector", "template", NULL};
    static const char *const keep_tpl[] = {"metadata", "spec", NULL};
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(d, "spec");
    cJSON *tpl = cJSON_GetObjectItemCaseSensitive(spec, "template");
    json_keep_only(d, keep);
    json_keep_only(cJSON_GetObjectItemCaseSensitive(d, "metadata"), keep_meta);
    json_keep_only(spec, keep_spec);
    json_keep_only(tpl, keep_tpl);
    trim_containers(cJSON_GetObjectItemCaseSensitive(tpl, "spec"));
}

/*
 * ConfigMaps (PolicyBundle: the ConfigMap it publishes, its owner and labels, data.digest and
 * data.revision, and the digest of binaryData's bundle.tar.gz; DatasetPromotion: its index, in data): the
 * metadata, data whole, and binaryData with each value replaced by "sha256:<hex of the SHA-256 of its
 * decoded bytes>", so that a cached ConfigMap costs its data and a few dozen bytes per binary value, not the
 * base64 of a bundle (100 published bundles would otherwise keep 100 bundles in memory). A value that is not
 * valid base64 becomes "invalid" (it cannot equal any digest). Only the ConfigMaps membrane writes are
 * watched: those labelled app.kubernetes.io/managed-by=membrane (CONFIGMAP_SELECTOR).
 */
static void trim_configmap(cJSON *cm)
{
    static const char *const keep[] = {"metadata", "data", "binaryData", NULL};
    cJSON *v;
    json_keep_only(cm, keep);
    json_keep_only(cJSON_GetObjectItemCaseSensitive(cm, "metadata"), keep_meta);
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(cm, "binaryData")) {
        char *bytes = NULL, marker[7 + 65] = "invalid";
        size_t len = 0;
        unsigned char md[SHA256_DIGEST_LENGTH];
        if (!cJSON_IsString(v))
            continue;
        if (mb_base64_decode(&bytes, &len, v->valuestring) == 0 && SHA256((unsigned char *)bytes, len, md)) {
            memcpy(marker, "sha256:", 7);
            for (size_t i = 0; i < sizeof(md); i++)
                snprintf(marker + 7 + 2 * i, 3, "%02x", md[i]);
        }
        free(bytes);
        char *copy = strdup(marker);
        if (!copy) { /* without memory the value goes: a digest nobody matches, looked at again on the next event */
            v->valuestring[0] = '\0';
            continue;
        }
        cJSON_free(v->valuestring);
        v->valuestring = copy;
    }
}

#define CONFIGMAP_SELECTOR "app.kubernetes.io/managed-by=membrane"

/*
 * Every resource the controllers watch. NULL transform: the object is cached
 * whole (GovernedAPIReleases: decide reads spec and status, receipts included;
 * PolicyBundles: the bundle gate reads status conditions, generation and
 * verifiedDigest).
 */
static const struct {
    const kube_resource *resource;
    void (*transform)(cJSON *obj);
    const char *selector; /* the resource's own label selector, or NULL */
} registry[] = {
    {&KUBE_DEPLOYMENTS, trim_deployment, NULL},
    {&KUBE_PODS, trim_pod, NULL},
    {&KUBE_CONFIGMAPS, trim_configmap, CONFIGMAP_SELECTOR},
    {&API_POLICYBUNDLES, NULL, NULL},
    {&API_GOVERNEDAPIRELEASES, NULL, NULL},
    {&API_DATASETPROMOTIONS, NULL, NULL},
};

int api_informer(informer **out, informer_factory *f, const kube_resource *resource)
{
    *out = NULL;
    for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
        if (registry[i].resource == resource)
            return informer_factory_informer_selected(out, f, resource, registry[i].transform, registry[i].selector);
    return mb_error_set(MB_EINVAL, "no informer registration for %s: add it to api/informers.c with its trim",
                        resource->resource);
}

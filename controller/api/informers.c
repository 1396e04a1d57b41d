/*
 * The trim transforms of the cached resources (client-go's SetTransform), one
 * per resource and shared by every subscriber: a field a reconcile reads from
 * the cache must be kept here, whichever controller reads it. The informer
 * always drops the last-applied-configuration annotation, and
 * metadata.managedFields of the resources without a transform; the
 * transforms keep of managedFields only what a reader needs (Deployments: who
 * set each container's image).
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
 * metadata.managedFields of a Deployment cut down to who set a container's image: the entries whose
 * fieldsV1 hold f:spec.f:template.f:spec.f:containers.<key>.f:image, each with its manager, operation
 * and those image fields only; NULL when none (or without memory: then nobody is seen as the image's
 * manager, as for a Deployment written before managed fields existed).
 */
static cJSON *image_managers(const cJSON *managed)
{
    cJSON *out = NULL;
    const cJSON *e;
    cJSON_ArrayForEach(e, managed) {
        const cJSON *cts = json_get(e, "fieldsV1", "f:spec", "f:template", "f:spec", "f:containers", NULL);
        const cJSON *k;
        cJSON *keep = NULL;
        cJSON_ArrayForEach(k, cts) {
            if (!k->string || !cJSON_GetObjectItemCaseSensitive(k, "f:image"))
                continue;
            cJSON *ck = (keep || (keep = cJSON_CreateObject())) ? cJSON_AddObjectToObject(keep, k->string) : NULL;
            if (!ck || !cJSON_AddObjectToObject(ck, "f:image"))
                break;
        }
        if (!keep)
            continue;
        cJSON *entry = cJSON_CreateObject();
        cJSON *f = entry ? json_ensure_object(entry, "fieldsV1", "f:spec", "f:template", "f:spec", NULL) : NULL;
        if (!f || (!out && !(out = cJSON_CreateArray())) ||
            json_set_str(entry, "manager", json_str(e, "manager", NULL) ? json_str(e, "manager", NULL) : "") < 0 ||
            json_set_str(entry, "operation", json_str(e, "operation", NULL) ? json_str(e, "operation", NULL) : "") <
                0) {
            cJSON_Delete(keep);
            cJSON_Delete(entry);
            continue;
        }
        cJSON_AddItemToObject(f, "f:containers", keep);
        cJSON_AddItemToArray(out, entry);
    }
    return out;
}

/*
 * Deployments (release: the target Deployment it rolls and rolls back): metadata, spec.replicas, selector and
 * template (its metadata and containers as for pods), the whole status (rollout progress and conditions), and
 * of metadata.managedFields who set each container's image (image_managers: the release sees another field
 * manager taking the image back).
 */
static void trim_deployment(cJSON *d)
{
    static const char *const keep[] = {"metadata", "spec", "status", NULL};
    static const char *const keep_spec[] = {"replicas", "selector", "template", NULL};
    static const char *const keep_tpl[] = {"metadata", "spec", NULL};
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(d, "spec");
    cJSON *tpl = cJSON_GetObjectItemCaseSensitive(spec, "template");
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(d, "metadata");
    cJSON *managers = image_managers(cJSON_GetObjectItemCaseSensitive(meta, "managedFields"));
    json_keep_only(d, keep);
    json_keep_only(meta, keep_meta);
    if (managers && meta)
        cJSON_AddItemToObject(meta, "managedFields", managers);
    else
        cJSON_Delete(managers);
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

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
#include "util/text.h"

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
static const char *const keep_container[] = {"name", "image", NULL};

/* annotations: only ours (governance.kfm.dev/...), the ones decide reads; NULL when none is left */
static void keep_our_annotations(cJSON *meta)
{
    cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations"), *it, *next;
    for (it = ann ? ann->child : NULL; it; it = next) {
        next = it->next;
        if (!it->string || strncmp(it->string, "governance.kfm.dev/", 19) != 0)
            cJSON_Delete(cJSON_DetachItemViaPointer(ann, it));
    }
    if (ann && !ann->child)
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "annotations");
}

/* a pod spec: of the containers name and image, and of the rest what keep_spec names ("containers" among them) */
static void trim_containers(cJSON *pod_spec, const char *const *keep_spec)
{
    cJSON *ct;
    json_keep_only(pod_spec, keep_spec);
    cJSON_ArrayForEach(ct, cJSON_GetObjectItemCaseSensitive(pod_spec, "containers"))
        json_keep_only(ct, keep_container);
}

/*
 * Pods (release: the Deployment's pods, for crash loops and whether an old ReplicaSet's pod remains; the
 * membrane checks read pods from the API itself): metadata without annotations (labels: the
 * pod-template-hash the owner index reads), spec.containers (name, image), and of
 * status.containerStatuses name, restartCount and state.waiting.reason.
 */
static void trim_pod(cJSON *pod)
{
    static const char *const keep[] = {"metadata", "spec", "status", NULL};
    static const char *const keep_status[] = {"containerStatuses", NULL};
    static const char *const keep_cs[] = {"name", "restartCount", "state", NULL};
    static const char *const keep_state[] = {"waiting", NULL};
    static const char *const keep_waiting[] = {"reason", NULL};
    cJSON *cs;
    json_keep_only(pod, keep);
    json_keep_only(cJSON_GetObjectItemCaseSensitive(pod, "metadata"), keep_meta);
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "metadata"), "annotations");
    static const char *const keep_pod_spec[] = {"containers", NULL};
    trim_containers(cJSON_GetObjectItemCaseSensitive(pod, "spec"), keep_pod_spec);
    json_keep_only(cJSON_GetObjectItemCaseSensitive(pod, "status"), keep_status);
    cJSON_ArrayForEach(cs, json_get(pod, "status", "containerStatuses", NULL)) {
        cJSON *state = cJSON_GetObjectItemCaseSensitive(cs, "state");
        json_keep_only(cs, keep_cs);
        json_keep_only(state, keep_state);
        json_keep_only(cJSON_GetObjectItemCaseSensitive(state, "waiting"), keep_waiting);
    }
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
 * Deployments (release: the target Deployment it rolls and rolls back): metadata without labels, of the
 * annotations only ours (the release-owner and rollback record annotations), spec.replicas, of
 * spec.template the annotations that are ours (the release-id the rollout patch stamps) and of its spec
 * the containers (name, image) and the service account (the membrane-rbac identity check), of the status
 * observedGeneration, updatedReplicas, availableReplicas and the conditions' type, status and reason
 * (ProgressDeadlineExceeded), and of metadata.managedFields who set each container's image
 * (image_managers: the release sees another field manager taking the image back).
 */
static void trim_deployment(cJSON *d)
{
    static const char *const keep[] = {"metadata", "spec", "status", NULL};
    static const char *const keep_spec[] = {"replicas", "template", NULL};
    static const char *const keep_tpl[] = {"metadata", "spec", NULL};
    static const char *const keep_tpl_meta[] = {"annotations", NULL};
    static const char *const keep_pod_spec[] = {"containers", "serviceAccountName", "serviceAccount", NULL};
    static const char *const keep_status[] = {"observedGeneration", "updatedReplicas", "availableReplicas",
                                              "conditions", NULL};
    static const char *const keep_cond[] = {"type", "status", "reason", NULL};
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(d, "spec");
    cJSON *tpl = cJSON_GetObjectItemCaseSensitive(spec, "template");
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(d, "metadata"), *cd;
    cJSON *managers = image_managers(cJSON_GetObjectItemCaseSensitive(meta, "managedFields"));
    json_keep_only(d, keep);
    json_keep_only(meta, keep_meta);
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "labels");
    keep_our_annotations(meta);
    if (managers && meta)
        cJSON_AddItemToObject(meta, "managedFields", managers);
    else
        cJSON_Delete(managers);
    json_keep_only(spec, keep_spec);
    json_keep_only(tpl, keep_tpl);
    json_keep_only(cJSON_GetObjectItemCaseSensitive(tpl, "metadata"), keep_tpl_meta);
    keep_our_annotations(cJSON_GetObjectItemCaseSensitive(tpl, "metadata"));
    trim_containers(cJSON_GetObjectItemCaseSensitive(tpl, "spec"), keep_pod_spec);
    json_keep_only(cJSON_GetObjectItemCaseSensitive(d, "status"), keep_status);
    cJSON_ArrayForEach(cd, json_get(d, "status", "conditions", NULL))
        json_keep_only(cd, keep_cond);
}

/*
 * GovernedAPIReleases (release: decide reads the spec whole, the status whole, since it writes the status
 * back from it, and of the metadata identity, generation, finalizers, deletion and our annotations, the
 * rollback request with its reason and approver; the checks read apiVersion and uid for owner references):
 * labels, creationTimestamp and the other annotations go.
 */
static void trim_release(cJSON *r)
{
    static const char *const keep[] = {"apiVersion", "kind", "metadata", "spec", "status", NULL};
    static const char *const keep_release_meta[] = {"name",       "namespace",   "uid",        "resourceVersion",
                                                    "generation", "annotations", "finalizers", "deletionTimestamp",
                                                    NULL};
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(r, "metadata");
    json_keep_only(r, keep);
    json_keep_only(meta, keep_release_meta);
    keep_our_annotations(meta);
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
        char *bytes = NULL, marker[72] = "invalid";
        size_t len = 0;
        if (!cJSON_IsString(v))
            continue;
        if (mb_base64_decode(&bytes, &len, v->valuestring) < 0 || mb_sha256_digest(marker, bytes, len) < 0)
            snprintf(marker, sizeof(marker), "invalid");
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
 * whole (PolicyBundles: the bundle gate reads status conditions, generation and
 * verifiedDigest, the PolicyBundle controller spec and status).
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
    {&API_GOVERNEDAPIRELEASES, trim_release, NULL},
    {&API_DATASETPROMOTIONS, NULL, NULL},
};

void (*api_trim(const kube_resource *resource))(cJSON *obj)
{
    for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
        if (registry[i].resource == resource)
            return registry[i].transform;
    return NULL;
}

int api_informer(informer **out, informer_factory *f, const kube_resource *resource)
{
    *out = NULL;
    for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
        if (registry[i].resource == resource)
            return informer_factory_informer_selected(out, f, resource, registry[i].transform, registry[i].selector);
    return mb_error_set(MB_EINVAL, "no informer registration for %s: add it to api/informers.c with its trim",
                        resource->resource);
}

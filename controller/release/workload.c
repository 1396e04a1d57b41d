/*
 * What a GovernedAPIRelease reads from its Deployment and the Deployment's
 * pods, and what it writes back: image references and digests, the target
 * container, crash-looping pods, whether a rollout is complete, the progress
 * deadline, and the Deployment patch (image, owner annotation, pod template
 * annotations) with its resourceVersion precondition. Pure: the objects come
 * from the observation.
 */
#include "release/decide_private.h"
#include "util/text.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <string.h>

static const char *const crash_reasons[] = {
    "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "InvalidImageName",
};

const char *release_digest_of(const char *image)
{
    const char *at = image ? strrchr(image, '@') : NULL;
    return at ? at + 1 : NULL;
}

const cJSON *release_container_find(const cJSON *pod_spec, const char *name)
{
    const cJSON *ct;
    cJSON_ArrayForEach(ct, json_get(pod_spec, "containers", NULL)) {
        const char *n = json_str(ct, "name", NULL);
        if (n && name && strcmp(n, name) == 0)
            return ct;
    }
    return NULL;
}

bool release_container_digest(char out[72], const cJSON *pod_spec, const char *container)
{
    const cJSON *ct = release_container_find(pod_spec, container);
    const char *d;
    out[0] = '\0';
    if (!ct)
        return false;
    d = release_digest_of(json_str(ct, "image", NULL));
    if (mb_sha256_digest_valid(d))
        memcpy(out, d, 72);
    return true;
}

/* The image the Deployment's target container runs now, or NULL. */
const char *release_deployment_image(const release_ctx *c)
{
    const cJSON *pod_spec = json_get(c->obs->deployment, "spec", "template", "spec", NULL);
    const cJSON *ct = release_container_find(pod_spec, c->container);
    return ct ? json_str(ct, "image", NULL) : NULL;
}

const char *release_deployment_annotation(const release_ctx *c, const char *key)
{
    return json_str(c->obs->deployment, "metadata", "annotations", key, NULL);
}

char *release_patch_body(const release_ctx *c, const char *image, release_patch_kind kind)
{
    cJSON *p = cJSON_CreateObject();
    char *out = NULL;
    cJSON *meta = json_ensure_object(p, "metadata", NULL);
    cJSON *ann = meta ? json_ensure_object(meta, "annotations", NULL) : NULL;
    const char *rv = json_str(c->obs->deployment, "metadata", "resourceVersion", NULL);
    if (!ann || (rv && json_set_str(meta, "resourceVersion", rv) < 0) ||
        json_set_str(ann, RELEASE_OWNER_ANNOTATION, c->owner) < 0)
        goto done;
    if (kind == RELEASE_PATCH_ROLLOUT) {
        /* the record of the target, in the same write that rolls */
        if (json_set_str(ann, RELEASE_ROLLBACK_IMAGE_ANNOTATION, json_str(c->st, "rollbackImage", NULL)) < 0 ||
            json_set_str(ann, RELEASE_ROLLBACK_FOR_ANNOTATION, c->rid) < 0)
            goto done;
        /* an earlier release's rollback is not this one's */
        if (json_set_item(ann, RELEASE_ROLLED_BACK_FROM_ANNOTATION, cJSON_CreateNull()) < 0 ||
            json_set_item(ann, RELEASE_ROLLBACK_TRIGGER_ANNOTATION, cJSON_CreateNull()) < 0)
            goto done;
    } else if (kind == RELEASE_PATCH_ROLLBACK) {
        const char *trigger = json_str(c->st, "lastRollback", "trigger", NULL);
        if (json_set_str(ann, RELEASE_ROLLED_BACK_FROM_ANNOTATION, c->image) < 0 ||
            json_set_str(ann, RELEASE_ROLLBACK_TRIGGER_ANNOTATION, trigger ? trigger : "") < 0)
            goto done;
    }
    if (image && kind != RELEASE_PATCH_OWNER) {
        cJSON *tpl = json_ensure_object(p, "spec", "template", NULL);
        cJSON *containers = tpl ? cJSON_AddArrayToObject(json_ensure_object(tpl, "spec", NULL), "containers") : NULL;
        cJSON *ct = cJSON_CreateObject();
        if (!containers || !ct) {
            cJSON_Delete(ct);
            goto done;
        }
        cJSON_AddItemToArray(containers, ct);
        if (json_set_str(ct, "name", c->container) < 0 || json_set_str(ct, "image", image) < 0)
            goto done;
        if (kind == RELEASE_PATCH_ROLLOUT) {
            cJSON *tann = json_ensure_object(tpl, "metadata", "annotations", NULL);
            const char *bd = json_str(c->st, "policyBundleDigest", NULL);
            if (!tann || json_set_str(tann, RELEASE_ID_ANNOTATION, c->rid) < 0)
                goto done;
            if (bd && *bd && json_set_str(tann, RELEASE_BUNDLE_ANNOTATION, bd) < 0)
                goto done;
        }
    }
    out = cJSON_PrintUnformatted(p);
done:
    cJSON_Delete(p);
    if (!out)
        mb_error_set(MB_ENOMEM, "out of memory building the Deployment patch");
    return out;
}

static bool pod_runs(const cJSON *pod, const char *container, const char *image)
{
    const cJSON *ct = release_container_find(json_get(pod, "spec", NULL), container);
    const char *im = ct ? json_str(ct, "image", NULL) : NULL;
    return im && strcmp(im, image) == 0;
}

/* A crash-looping pod running image: its name and why, in msg. */
bool release_crashloop(const release_ctx *c, const char *image, char *msg, size_t len)
{
    long long threshold = release_spec_int(c, 3, "rollout", "crashLoopRestartThreshold");
    for (size_t i = 0; i < c->obs->n_pods; i++) {
        const cJSON *pod = c->obs->pods[i];
        const cJSON *cs;
        if (!pod_runs(pod, c->container, image))
            continue;
        cJSON_ArrayForEach(cs, json_get(pod, "status", "containerStatuses", NULL)) {
            const char *n = json_str(cs, "name", NULL);
            const char *why = json_str(cs, "state", "waiting", "reason", NULL);
            long long restarts = json_int(0, cs, "restartCount", NULL);
            if (!n || strcmp(n, c->container) != 0)
                continue;
            for (size_t k = 0; why && k < sizeof(crash_reasons) / sizeof(*crash_reasons); k++) {
                if (strcmp(why, crash_reasons[k]) == 0) {
                    snprintf(msg, len, "pod %s container %s is waiting in %s (%lld restarts)",
                             json_str(pod, "metadata", "name", NULL), n, why, restarts);
                    return true;
                }
            }
            if (restarts >= threshold) {
                snprintf(msg, len, "pod %s container %s restarted %lld times (threshold %lld)",
                         json_str(pod, "metadata", "name", NULL), n, restarts, threshold);
                return true;
            }
        }
    }
    return false;
}

bool release_no_replicas(const release_ctx *c, char *msg, size_t len)
{
    const cJSON *r = json_get(c->obs->deployment, "spec", "replicas", NULL);
    if (!cJSON_IsNumber(r)) {
        snprintf(msg, len,
                 "Deployment %s/%s shows no spec.replicas, so whether every replica runs the new digest cannot be "
                 "seen",
                 c->ns, c->deployment);
        return true;
    }
    if (r->valuedouble < 1) {
        snprintf(msg, len,
                 "Deployment %s/%s is scaled to 0 replicas: nothing runs the new digest, so it cannot be verified; "
                 "scale it up",
                 c->ns, c->deployment);
        return true;
    }
    return false;
}

/* The rollout of image is complete: API.md's four conditions, on at least one replica (none is nothing verified). */
bool release_rollout_complete(const release_ctx *c, const char *image)
{
    const cJSON *d = c->obs->deployment;
    const char *running = release_deployment_image(c);
    long long replicas = json_int(0, d, "spec", "replicas", NULL);
    char why[256];
    if (!running || strcmp(running, image) != 0 || release_no_replicas(c, why, sizeof(why)))
        return false;
    if (json_int(-1, d, "status", "observedGeneration", NULL) < json_int(0, d, "metadata", "generation", NULL))
        return false;
    if (json_int(0, d, "status", "updatedReplicas", NULL) != replicas ||
        json_int(0, d, "status", "availableReplicas", NULL) != replicas)
        return false;
    for (size_t i = 0; i < c->obs->n_pods; i++)
        if (!pod_runs(c->obs->pods[i], c->container, image))
            return false; /* a pod of an old ReplicaSet remains */
    return true;
}

bool release_progress_deadline(const release_ctx *c, time_t since, char *msg, size_t len, long *remaining_ms)
{
    const cJSON *cd;
    long long secs = release_spec_int(c, 600, "rollout", "progressDeadlineSeconds");
    cJSON_ArrayForEach(cd, json_get(c->obs->deployment, "status", "conditions", NULL)) {
        const char *type = json_str(cd, "type", NULL), *s = json_str(cd, "status", NULL),
                   *r = json_str(cd, "reason", NULL);
        if (type && s && r && strcmp(type, "Progressing") == 0 && strcmp(s, "False") == 0 &&
            strcmp(r, "ProgressDeadlineExceeded") == 0) {
            snprintf(msg, len, "Deployment %s/%s reports ProgressDeadlineExceeded", c->ns, c->deployment);
            return true;
        }
    }
    if (since > 0 && c->obs->now - since >= secs) {
        char why[256];
        if (release_no_replicas(c, why, sizeof(why)))
            snprintf(msg, len, "the rollout has not completed %llds after it started: %s", secs, why);
        else
            snprintf(msg, len, "the rollout has not completed %llds after it started", secs);
        return true;
    }
    *remaining_ms = since > 0 ? (long)(since + secs - c->obs->now) * 1000L + 1000L : 0;
    return false;
}

/* A managedFields key of the containers list ("k:{\"name\":\"api\"}") names the container called name. */
static bool container_key_is(const char *key, const char *name)
{
    cJSON *k = key && strncmp(key, "k:", 2) == 0 ? cJSON_Parse(key + 2) : NULL;
    const char *n = json_str(k, "name", NULL);
    bool is = n && name && strcmp(n, name) == 0;
    cJSON_Delete(k);
    return is;
}

bool release_image_manager(char *out, size_t len, const release_ctx *c)
{
    const cJSON *e;
    bool found = false;
    if (len)
        out[0] = '\0';
    cJSON_ArrayForEach(e, json_get(c->obs->deployment, "metadata", "managedFields", NULL)) {
        const char *manager = json_str(e, "manager", NULL);
        const cJSON *k;
        if (!manager || strcmp(manager, RELEASE_FIELD_MANAGER) == 0)
            continue;
        cJSON_ArrayForEach(k, json_get(e, "fieldsV1", "f:spec", "f:template", "f:spec", "f:containers", NULL)) {
            if (cJSON_GetObjectItemCaseSensitive(k, "f:image") && container_key_is(k->string, c->container)) {
                /* with several (an Apply and an Update of the same value), the first names one of them */
                if (!found)
                    snprintf(out, len, "%s", manager);
                found = true;
            }
        }
    }
    return found;
}

/*
 * PolicyBundle: a generation's work and its I/O (policy/work.h).
 */
#include "policy/work.h"
#include "kube/secretref.h"
#include "runtime/keyed_transfer.h"
#include "util/base64.h"
#include "util/error.h"
#include "util/json.h"
#include "util/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void policy_work_clear(policy_work_state *w)
{
    keyed_transfer_detach(w->fetch);
    policy_tests_release(w->run);
    free(w->fetch_msg);
    if (w->body)
        free(w->body);
    policy_checked_clear(&w->chk);
    cJSON_Delete(w->results);
    free(w->tests_msg);
    free(w->cm_uid);
    free(w->cm_rv);
    memset(w, 0, sizeof(*w));
}

void policy_work_view(policy_work *o, const policy_work_state *w)
{
    memset(o, 0, sizeof(*o));
    o->fetch = w->fetch_state;
    o->fetch_message = w->fetch_msg;
    o->fetch_attempts = w->fetch_attempts;
    o->fetch_finished_at = w->fetch_finished;
    if (w->checked)
        o->verify = w->chk.v;
    o->tests = w->tests;
    o->tests_message = w->tests_msg;
    o->tests_attempts = w->tests_attempts;
    o->tests_finished_at = w->tests_finished;
    o->test_results = w->results;
    o->publish = w->publish;
    o->cm_uid = w->cm_uid;
    o->cm_resource_version = w->cm_rv;
}

static int fail_fetch(policy_work_state *w, const char *msg, time_t now)
{
    free(w->fetch_msg);
    if (!(w->fetch_msg = strdup(msg)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    w->fetch_state = POLICY_FETCH_FAILED;
    w->fetch_attempts++;
    w->fetch_finished = now;
    return 0;
}

int policy_fetch_start(policy_work_state *w, kube_client *kc, net_loop *net, loop *l, const char *key,
                       const cJSON *bundle, time_t now)
{
    const char *ns = json_str(bundle, "metadata", "namespace", NULL);
    const cJSON *auth = json_get(bundle, "spec", "source", "authSecretRef", NULL);
    const cJSON *ca = json_get(bundle, "spec", "source", "caSecretRef", NULL);
    char *token = NULL, *ca_pem = NULL;
    size_t token_len = 0, ca_len = 0;
    char msg[1024];
    keyed_transfer *f = NULL;
    int err = 0;

    if (auth &&
        (err = kube_secret_ref_read(&token, &token_len, kc, ns, auth, "spec.source.authSecretRef", msg, sizeof(msg))))
        goto secret;
    if (ca && (err = kube_secret_ref_read(&ca_pem, &ca_len, kc, ns, ca, "spec.source.caSecretRef", msg, sizeof(msg))))
        goto secret;
    net_request req = {.kind = "bundle",
                       .url = json_str(bundle, "spec", "source", "url", NULL),
                       .token = token,
                       .ca_pem = ca_pem,
                       .timeout_ms = 60000,
                       .stall_seconds = 30,
                       .max_bytes = policy_max_bytes(bundle),
                       .max_redirects = 3,
                       .keep_body = true};
    if ((err = keyed_transfer_start(&f, net, l, key, &req)) < 0) {
        if (err == MB_ENOMEM)
            goto done;
        snprintf(msg, sizeof(msg), "the fetch of spec.source.url could not start: %s", mb_error_last());
        err = fail_fetch(w, msg, now);
        goto done;
    }
    keyed_transfer_detach(w->fetch);
    w->fetch = f;
    w->fetch_state = POLICY_FETCH_RUNNING;
    goto done;
secret:
    if (err == 1)
        err = fail_fetch(w, msg, now);
done:
    mb_secret_free_len(token, token_len);
    mb_secret_free_len(ca_pem, ca_len);
    return err;
}

int policy_fetch_collect(policy_work_state *w, kube_client *kc, const cJSON *bundle, time_t now)
{
    const char *url = json_str(bundle, "spec", "source", "url", NULL);
    keyed_result r;
    char msg[1400];
    int err = 0;
    if (!w->fetch || w->fetch_state != POLICY_FETCH_RUNNING)
        return 0;
    keyed_transfer_poll(&r, w->fetch);
    if (!r.done)
        return 0;
    if (r.outcome == NET_TOO_BIG) {
        snprintf(msg, sizeof(msg),
                 "the bundle at %s is larger than spec.source.maxBytes (%lld bytes): raise spec.source.maxBytes or "
                 "shrink the bundle",
                 url, policy_max_bytes(bundle));
        free(w->fetch_msg);
        w->fetch_msg = strdup(msg);
        w->fetch_state = POLICY_FETCH_TOO_BIG;
        w->fetch_finished = now;
    } else if (r.outcome != NET_DONE || r.status < 200 || r.status > 299 ||
               !(w->body = keyed_transfer_take_body(w->fetch, &w->len))) {
        if (r.outcome == NET_DONE && r.status >= 200 && r.status <= 299)
            snprintf(msg, sizeof(msg), "the bytes fetched from %s could not be kept: out of memory", url);
        else if (r.outcome == NET_DONE)
            snprintf(msg, sizeof(msg), "GET %s answered HTTP %ld: check spec.source.url and its credentials", url,
                     r.status);
        else
            snprintf(msg, sizeof(msg), "fetching spec.source.url failed: %s", *r.error ? r.error : "no answer");
        err = fail_fetch(w, msg, now);
    } else {
        memcpy(w->sha, r.sha256_hex, sizeof(w->sha));
        w->fetch_state = POLICY_FETCH_DONE;
        w->fetch_attempts = 0;
        w->fetch_finished = now;
    }
    keyed_transfer_detach(w->fetch); /* ended: freed */
    w->fetch = NULL;
    if (err < 0 || w->fetch_state != POLICY_FETCH_DONE)
        return err;

    /* the checks: the signing key first, when there is one */
    char *key = NULL;
    size_t key_len = 0;
    const cJSON *signing = json_get(bundle, "spec", "signing", NULL);
    if (cJSON_IsObject(signing) &&
        (err = kube_secret_ref_read(&key, &key_len, kc, json_str(bundle, "metadata", "namespace", NULL),
                                    json_get(signing, "publicKeySecretRef", NULL), "spec.signing.publicKeySecretRef",
                                    msg, sizeof(msg))) != 0) {
        free(w->body);
        w->body = NULL;
        w->len = 0;
        return err < 0 ? err : fail_fetch(w, msg, now);
    }
    err = policy_verify_bytes(&w->chk, w->body, w->len, w->sha, bundle, key);
    mb_secret_free_len(key, key_len);
    if (err < 0)
        return err;
    w->checked = true;
    if (w->chk.v.reason) { /* never published: the bytes go */
        free(w->body);
        w->body = NULL;
        w->len = 0;
    }
    return 0;
}

/* The ConfigMap to write: the bundle's bytes, digest and revision, the label, the owner; metadata of seen kept. */
static cJSON *configmap_body(const policy_work_state *w, const cJSON *bundle, const char *name, const cJSON *seen)
{
    cJSON *cm = cJSON_CreateObject(), *meta, *labels, *refs, *ref, *data, *bin;
    char *b64 = NULL;
    const char *ns = json_str(bundle, "metadata", "namespace", NULL);
    if (!cm || !cJSON_AddStringToObject(cm, "apiVersion", "v1") || !cJSON_AddStringToObject(cm, "kind", "ConfigMap") ||
        !(meta = cJSON_AddObjectToObject(cm, "metadata")) || !cJSON_AddStringToObject(meta, "name", name) ||
        !cJSON_AddStringToObject(meta, "namespace", ns))
        goto nomem;
    if (seen) {
        const cJSON *l = json_get(seen, "metadata", "labels", NULL),
                    *a = json_get(seen, "metadata", "annotations", NULL);
        if ((l && json_set_item(meta, "labels", cJSON_Duplicate(l, true)) < 0) ||
            (a && json_set_item(meta, "annotations", cJSON_Duplicate(a, true)) < 0))
            goto nomem;
    }
    if (!(labels = json_ensure_object(meta, "labels", NULL)) ||
        json_set_str(labels, POLICY_MANAGED_BY_LABEL, POLICY_MANAGED_BY) < 0 ||
        !(refs = cJSON_AddArrayToObject(meta, "ownerReferences")) || !(ref = cJSON_CreateObject()) ||
        !cJSON_AddItemToArray(refs, ref) || !cJSON_AddStringToObject(ref, "apiVersion", POLICY_API_VERSION) ||
        !cJSON_AddStringToObject(ref, "kind", POLICY_KIND) ||
        !cJSON_AddStringToObject(ref, "name", json_str(bundle, "metadata", "name", NULL)) ||
        !cJSON_AddStringToObject(ref, "uid", json_str(bundle, "metadata", "uid", NULL) ?: "") ||
        !cJSON_AddTrueToObject(ref, "controller") || !cJSON_AddTrueToObject(ref, "blockOwnerDeletion"))
        goto nomem;
    if (!(data = cJSON_AddObjectToObject(cm, "data")) ||
        !cJSON_AddStringToObject(data, "digest", json_str(bundle, "spec", "source", "digest", NULL)) ||
        !cJSON_AddStringToObject(data, "revision", w->chk.v.revision ? w->chk.v.revision : "") ||
        mb_base64_encode(&b64, w->body, w->len) < 0 || !(bin = cJSON_AddObjectToObject(cm, "binaryData")) ||
        !cJSON_AddStringToObject(bin, POLICY_CM_KEY, b64))
        goto nomem;
    free(b64);
    return cm;
nomem:
    free(b64);
    cJSON_Delete(cm);
    return NULL;
}

static int published(policy_work_state *w, cJSON *res, cJSON **written)
{
    free(w->cm_uid);
    free(w->cm_rv);
    w->cm_uid = strdup(json_str(res, "metadata", "uid", NULL) ?: "");
    w->cm_rv = strdup(json_str(res, "metadata", "resourceVersion", NULL) ?: "");
    w->publish = POLICY_PUBLISH_DONE;
    *written = res;
    return w->cm_uid && w->cm_rv ? 0 : mb_error_set(MB_ENOMEM, "out of memory");
}

int policy_publish(policy_work_state *w, kube_client *kc, const cJSON *bundle, const char *name, const cJSON *cached,
                   cJSON **written)
{
    const char *ns = json_str(bundle, "metadata", "namespace", NULL);
    cJSON *body = NULL, *res = NULL, *direct = NULL;
    int err;
    *written = NULL;
    if (!w->body)
        return mb_error_set(MB_EINVAL, "no verified bytes to publish");
    if (cached && !policy_configmap_owned(cached, bundle)) {
        w->publish = POLICY_PUBLISH_NOT_OWNED;
        return 0;
    }
    if (!(body = configmap_body(w, bundle, name, cached)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    if ((err = kube_write_seen(&res, NULL, kc, &KUBE_CONFIGMAPS, ns, cached, body)) == MB_EEXISTS && !cached) {
        /* not in the cache but there: not ours, or its label was removed by hand (the cache only has labelled ones) */
        cJSON_Delete(body);
        body = NULL;
        if ((err = kube_get(&direct, kc, &KUBE_CONFIGMAPS, ns, name)) < 0)
            goto done;
        if (!policy_configmap_owned(direct, bundle)) {
            w->publish = POLICY_PUBLISH_NOT_OWNED;
            goto done;
        }
        if (!(body = configmap_body(w, bundle, name, direct))) {
            err = mb_error_set(MB_ENOMEM, "out of memory");
            goto done;
        }
        err = kube_write_seen(&res, NULL, kc, &KUBE_CONFIGMAPS, ns, direct, body);
    }
    if (err == 0)
        err = published(w, res, written);
done:
    if (err < 0 && err != MB_ENOMEM)
        err = mb_error_wrap(err, "writing ConfigMap %s/%s", ns, name);
    cJSON_Delete(direct);
    cJSON_Delete(body);
    return err;
}

/*
 * The Kubernetes REST verbs (get, list with paging, create, update, patch,
 * delete) over kube_request() (http.c),
 * and the API paths they address: a non-2xx answer goes into the Status
 * channel (status.c), a 2xx body is parsed into the cJSON the caller owns.
 */
#include "kube/client_private.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- paths --- */

int kube_str_append(char **s, const char *a, const char *b, const char *c)
{
    size_t n0 = *s ? strlen(*s) : 0;
    size_t na = a ? strlen(a) : 0, nb = b ? strlen(b) : 0, nc = c ? strlen(c) : 0;
    char *r = realloc(*s, n0 + na + nb + nc + 1);
    if (!r)
        return mb_error_set(MB_ENOMEM, "out of memory");
    memcpy(r + n0, a ? a : "", na);
    memcpy(r + n0 + na, b ? b : "", nb);
    memcpy(r + n0 + na + nb, c ? c : "", nc);
    r[n0 + na + nb + nc] = '\0';
    *s = r;
    return 0;
}

static int str_append_escaped(char **s, const char *sep, const char *value)
{
    char *esc = curl_easy_escape(NULL, value, 0);
    if (!esc)
        return mb_error_set(MB_ENOMEM, "out of memory");
    int err = kube_str_append(s, sep, esc, NULL);
    curl_free(esc);
    return err;
}

int kube_query_add(char **path, const char *key, const char *value)
{
    int err = kube_str_append(path, strchr(*path, '?') ? "&" : "?", key, "=");
    if (err < 0)
        return err;
    return str_append_escaped(path, NULL, value);
}

char *kube_path(const kube_resource *r, const char *ns, const char *name, const char *subresource)
{
    char *p = NULL;
    int err = 0;

    if (r->group && *r->group)
        err = kube_str_append(&p, "/apis/", r->group, "/");
    else
        err = kube_str_append(&p, "/api/", NULL, NULL);
    if (!err)
        err = kube_str_append(&p, r->version, NULL, NULL);
    if (!err && r->namespaced && ns && *ns) {
        err = kube_str_append(&p, "/namespaces", NULL, NULL);
        if (!err)
            err = str_append_escaped(&p, "/", ns);
    }
    if (!err)
        err = kube_str_append(&p, "/", r->resource, NULL);
    if (!err && name && *name)
        err = str_append_escaped(&p, "/", name);
    if (!err && subresource && *subresource)
        err = kube_str_append(&p, "/", subresource, NULL);
    if (err < 0) {
        free(p);
        return NULL;
    }
    return p;
}
/* --- verbs --- */

static bool ok_status(long s)
{
    return s >= 200 && s < 300;
}

/* A 2xx answer's body into *out (when out is non-NULL), a non-2xx into the Status channel. */
static int answer(cJSON **out, const kube_response *resp, const char *method, const char *path)
{
    if (!ok_status(resp->status))
        return kube_status_record(resp->status, resp->body, resp->len, resp->retry_after);
    if (!out)
        return 0;
    cJSON *doc = cJSON_ParseWithLength(resp->body, resp->len);
    if (!doc)
        return mb_error_set(MB_EJSON, "%s %s: the answer (HTTP %ld, %zu bytes) is not valid JSON", method, path,
                            resp->status, resp->len);
    *out = doc;
    return 0;
}

static int verb(cJSON **out, kube_client *c, const char *method, const char *path, const char *content_type,
                const char *body)
{
    kube_response resp = {0};
    int err = kube_request(&resp, c, method, path, content_type, body, body ? strlen(body) : 0);
    if (err == 0)
        err = answer(out, &resp, method, path);
    kube_response_clear(&resp);
    return err;
}

static int nomem(void)
{
    return mb_error_set(MB_ENOMEM, "out of memory");
}

int kube_get(cJSON **out, kube_client *c, const kube_resource *r, const char *ns, const char *name)
{
    char *path = NULL;
    int err = 0;

    if (out)
        *out = NULL;
    if (!name || !*name)
        return mb_error_set(MB_EINVAL, "getting a %s needs a name", r->kind);
    if (!(path = kube_path(r, ns, name, NULL)))
        return nomem();
    err = verb(out, c, "GET", path, NULL, NULL);
    free(path);
    return err;
}

/* Moves every element of from's "items" to the end of to. */
static void items_move(cJSON *to, cJSON *page)
{
    cJSON *items = cJSON_GetObjectItemCaseSensitive(page, "items");
    if (!cJSON_IsArray(items))
        return;
    cJSON *it;
    while ((it = cJSON_DetachItemViaPointer(items, items->child)) != NULL)
        cJSON_AddItemToArray(to, it);
}

static int list_path(char **out, const kube_resource *r, const char *ns, const kube_list_opts *opts, long limit,
                     const char *cont)
{
    char *p = kube_path(r, ns, NULL, NULL);
    char num[32];
    int err = 0;

    *out = NULL;
    if (!p)
        return nomem();
    if (opts && opts->label_selector && *opts->label_selector)
        err = kube_query_add(&p, "labelSelector", opts->label_selector);
    if (!err && opts && opts->field_selector && *opts->field_selector)
        err = kube_query_add(&p, "fieldSelector", opts->field_selector);
    if (!err && limit > 0) {
        snprintf(num, sizeof(num), "%ld", limit);
        err = kube_query_add(&p, "limit", num);
    }
    if (!err && cont)
        err = kube_query_add(&p, "continue", cont);
    else if (!err && opts && opts->resource_version)
        err = kube_query_add(&p, "resourceVersion", opts->resource_version); /* not allowed with continue */
    if (err < 0) {
        free(p);
        return err;
    }
    *out = p;
    return 0;
}

int kube_list(cJSON **out, kube_client *c, const kube_resource *r, const char *ns, const kube_list_opts *opts)
{
    cJSON *merged = NULL, *items = NULL, *page = NULL;
    char *path = NULL, *cont = NULL, *rv = NULL;
    kube_response resp = {0};
    long limit = opts && opts->limit > 0 ? opts->limit : 500;
    int err = 0;

    *out = NULL;
    if (!(merged = cJSON_CreateObject()) || !(items = cJSON_AddArrayToObject(merged, "items"))) {
        err = nomem();
        goto done;
    }
    for (;;) {
        if ((err = list_path(&path, r, ns, opts, limit, cont)) < 0 ||
            (err = kube_request(&resp, c, "GET", path, NULL, NULL, 0)) < 0)
            goto done;
        if (resp.status == 410 && cont) {
            /*
             * The continue token expired (the list took longer than the
             * server keeps its snapshot): start again in one page, as
             * client-go's pager does.
             */
            log_info("GET %s: the continue token expired; listing again without pages", path);
            if (opts && opts->each && (err = opts->each(opts->each_ctx, NULL)) < 0)
                goto done;
            cJSON_Delete(cJSON_DetachItemViaPointer(merged, items));
            if (!(items = cJSON_AddArrayToObject(merged, "items"))) {
                err = nomem();
                goto done;
            }
            free(cont);
            cont = NULL;
            limit = 0;
            free(path);
            path = NULL;
            kube_response_clear(&resp);
            continue;
        }
        if ((err = answer(&page, &resp, "GET", path)) < 0)
            goto done;
        if (opts && opts->each) {
            cJSON *list = cJSON_GetObjectItemCaseSensitive(page, "items"), *item;
            while (cJSON_IsArray(list) && (item = cJSON_DetachItemViaPointer(list, list->child)) != NULL)
                if ((err = opts->each(opts->each_ctx, item)) < 0)
                    goto done;
        }
        items_move(items, page);
        const char *page_rv = json_str(page, "metadata", "resourceVersion", NULL);
        if (page_rv) {
            free(rv);
            if (!(rv = strdup(page_rv))) {
                err = nomem();
                goto done;
            }
        }
        const char *kind = json_str(page, "kind", NULL);
        const char *api = json_str(page, "apiVersion", NULL);
        if (kind && !cJSON_GetObjectItemCaseSensitive(merged, "kind") &&
            (!cJSON_AddStringToObject(merged, "kind", kind) ||
             (api && !cJSON_AddStringToObject(merged, "apiVersion", api)))) {
            err = nomem();
            goto done;
        }
        const char *next = json_str(page, "metadata", "continue", NULL);
        free(cont);
        cont = NULL;
        if (next && *next && !(cont = strdup(next))) {
            err = nomem();
            goto done;
        }
        cJSON_Delete(page);
        page = NULL;
        free(path);
        path = NULL;
        kube_response_clear(&resp);
        if (!cont)
            break;
    }
    cJSON *meta = cJSON_AddObjectToObject(merged, "metadata");
    if (!meta || !cJSON_AddStringToObject(meta, "resourceVersion", rv ? rv : "")) {
        err = nomem();
        goto done;
    }
    *out = merged;
    merged = NULL;
done:
    cJSON_Delete(merged);
    cJSON_Delete(page);
    kube_response_clear(&resp);
    free(path);
    free(cont);
    free(rv);
    return err;
}

/* The namespace to use for obj: ns, else its metadata.namespace; NULL for cluster-scoped kinds. */
static int object_namespace(const char **out, const kube_resource *r, const char *ns, const cJSON *obj,
                            const char *what)
{
    *out = NULL;
    if (!r->namespaced)
        return 0;
    *out = ns && *ns ? ns : json_str(obj, "metadata", "namespace", NULL);
    if (!*out || !**out)
        return mb_error_set(MB_EINVAL, "%s a %s needs a namespace: pass one or set metadata.namespace", what, r->kind);
    return 0;
}

int kube_create(cJSON **out, kube_client *c, const kube_resource *r, const char *ns, const cJSON *obj)
{
    char *path = NULL, *body = NULL;
    const char *obj_ns;
    int err = 0;

    if (out)
        *out = NULL;
    if ((err = object_namespace(&obj_ns, r, ns, obj, "creating")) < 0)
        goto done;
    if (!(path = kube_path(r, obj_ns, NULL, NULL)) || !(body = cJSON_PrintUnformatted(obj))) {
        err = nomem();
        goto done;
    }
    err = verb(out, c, "POST", path, "application/json", body);
done:
    free(path);
    cJSON_free(body);
    return err;
}

int kube_update(cJSON **out, kube_client *c, const kube_resource *r, const char *ns, const cJSON *obj,
                const char *subresource)
{
    char *path = NULL, *body = NULL;
    const char *obj_ns;
    const char *name = json_str(obj, "metadata", "name", NULL);
    int err = 0;

    if (out)
        *out = NULL;
    if (!name || !*name) {
        err = mb_error_set(MB_EINVAL, "updating a %s needs metadata.name in the object", r->kind);
        goto done;
    }
    if (!json_str(obj, "metadata", "resourceVersion", NULL)) {
        err = mb_error_set(MB_EINVAL,
                           "updating %s \"%s\" needs metadata.resourceVersion in the object (the version it was "
                           "based on); get it first, or patch instead",
                           r->kind, name);
        goto done;
    }
    if ((err = object_namespace(&obj_ns, r, ns, obj, "updating")) < 0)
        goto done;
    if (!(path = kube_path(r, obj_ns, name, subresource)) || !(body = cJSON_PrintUnformatted(obj))) {
        err = nomem();
        goto done;
    }
    err = verb(out, c, "PUT", path, "application/json", body);
done:
    free(path);
    cJSON_free(body);
    return err;
}

static const char *patch_content_type(kube_patch_type type)
{
    switch (type) {
    case KUBE_PATCH_JSON: return "application/json-patch+json";
    case KUBE_PATCH_STRATEGIC: return "application/strategic-merge-patch+json";
    case KUBE_PATCH_MERGE:
    default: return "application/merge-patch+json";
    }
}

int kube_write_seen(cJSON **out, bool *lost, kube_client *c, const kube_resource *r, const char *ns, const cJSON *seen,
                    cJSON *obj)
{
    const char *rv = json_str(seen, "metadata", "resourceVersion", NULL);
    cJSON *meta = NULL;
    int err;
    if (lost)
        *lost = false;
    if (out)
        *out = NULL;
    if (seen && !rv)
        return mb_error_set(MB_EINVAL, "writing a %s over a copy without metadata.resourceVersion", r->kind);
    if (rv && (!(meta = json_ensure_object(obj, "metadata", NULL)) || json_set_str(meta, "resourceVersion", rv) < 0))
        return nomem();
    err = seen ? kube_update(out, c, r, ns, obj, NULL) : kube_create(out, c, r, ns, obj);
    if (lost)
        *lost = err == MB_ECONFLICT || err == MB_EEXISTS || (seen && err == MB_ENOTFOUND);
    return err;
}

int kube_patch(cJSON **out, kube_client *c, const kube_resource *r, const char *ns, const char *name,
               const char *subresource, kube_patch_type type, const char *patch)
{
    char *path = NULL;
    int err = 0;

    if (out)
        *out = NULL;
    if (!name || !*name || !patch)
        return mb_error_set(MB_EINVAL, "patching a %s needs a name and a patch", r->kind);
    if (r->namespaced && (!ns || !*ns))
        return mb_error_set(MB_EINVAL, "patching %s \"%s\" needs a namespace", r->kind, name);
    if (!(path = kube_path(r, ns, name, subresource)))
        return nomem();
    err = verb(out, c, "PATCH", path, patch_content_type(type), patch);
    free(path);
    return err;
}

int kube_patch_status(cJSON **out, kube_client *c, const kube_resource *r, const char *ns, const cJSON *obj,
                      const cJSON *status)
{
    const char *name = json_str(obj, "metadata", "name", NULL);
    const char *rv = json_str(obj, "metadata", "resourceVersion", NULL);
    const char *obj_ns;
    cJSON *patch = NULL, *diff = NULL, *meta;
    char *body = NULL;
    int err = 0;

    if (out)
        *out = NULL;
    if (!name || !*name)
        return mb_error_set(MB_EINVAL, "writing the status of a %s needs metadata.name in the object", r->kind);
    if (!rv || !*rv)
        return mb_error_set(MB_EINVAL,
                            "writing the status of %s \"%s\" needs metadata.resourceVersion in the object (the "
                            "version it was based on); get it first",
                            r->kind, name);
    if (!cJSON_IsObject(status))
        return mb_error_set(MB_EINVAL, "writing the status of %s \"%s\" needs a status object", r->kind, name);
    if ((err = object_namespace(&obj_ns, r, ns, obj, "writing the status of")) < 0)
        return err;
    if ((err = json_merge_patch(&diff, json_get(obj, "status", NULL), status)) < 0)
        goto done;
    if (!(patch = cJSON_CreateObject()) || !(meta = cJSON_AddObjectToObject(patch, "metadata"))) {
        err = nomem();
        goto done;
    }
    if ((err = json_set_str(meta, "resourceVersion", rv)) < 0)
        goto done;
    err = json_set_item(patch, "status", diff); /* takes diff in every case */
    diff = NULL;
    if (err < 0)
        goto done;
    if (!(body = cJSON_PrintUnformatted(patch))) {
        err = nomem();
        goto done;
    }
    err = kube_patch(out, c, r, obj_ns, name, "status", KUBE_PATCH_MERGE, body);
done:
    cJSON_Delete(diff);
    cJSON_Delete(patch);
    cJSON_free(body);
    return err;
}

static int delete_body(char **out, const kube_delete_opts *opts)
{
    cJSON *o = cJSON_CreateObject();
    int err = 0;

    *out = NULL;
    if (!o || !cJSON_AddStringToObject(o, "apiVersion", "v1") || !cJSON_AddStringToObject(o, "kind", "DeleteOptions"))
        goto nomem;
    if (opts->uid || opts->resource_version) {
        cJSON *pre = cJSON_AddObjectToObject(o, "preconditions");
        if (!pre || (opts->uid && !cJSON_AddStringToObject(pre, "uid", opts->uid)) ||
            (opts->resource_version && !cJSON_AddStringToObject(pre, "resourceVersion", opts->resource_version)))
            goto nomem;
    }
    if (opts->propagation_policy && !cJSON_AddStringToObject(o, "propagationPolicy", opts->propagation_policy))
        goto nomem;
    if (!(*out = cJSON_PrintUnformatted(o)))
        goto nomem;
    goto done;
nomem:
    err = nomem();
done:
    cJSON_Delete(o);
    return err;
}

int kube_delete(kube_client *c, const kube_resource *r, const char *ns, const char *name, const kube_delete_opts *opts)
{
    char *path = NULL, *body = NULL;
    int err = 0;

    if (!name || !*name)
        return mb_error_set(MB_EINVAL, "deleting a %s needs a name", r->kind);
    if (r->namespaced && (!ns || !*ns))
        return mb_error_set(MB_EINVAL, "deleting %s \"%s\" needs a namespace", r->kind, name);
    if (!(path = kube_path(r, ns, name, NULL))) {
        err = nomem();
        goto done;
    }
    if (opts && (err = delete_body(&body, opts)) < 0)
        goto done;
    err = verb(NULL, c, "DELETE", path, body ? "application/json" : NULL, body);
done:
    free(path);
    cJSON_free(body);
    return err;
}

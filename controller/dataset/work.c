/*
 * DatasetPromotion: a generation's transfers and the index writes (dataset/work.h).
 */
#include "dataset/work.h"
#include "dataset/index.h"
#include "dataset/stac.h"
#include "dataset/verdict.h"
#include "kube/secretref.h"
#include "runtime/keyed_transfer.h"
#include "util/error.h"
#include "util/json.h"
#include "util/secret.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARTIFACT_TIMEOUT_MS (6L * 3600L * 1000L)
#define DOC_TIMEOUT_MS 120000L
#define LINK_TIMEOUT_MS 60000L
#define NO_SIZE_LIMIT (1LL << 40)

enum { KIND_ARTIFACT, KIND_DOC, KIND_LINK };

static void slot_clear(dataset_slot *s)
{
    keyed_transfer_detach(s->x);
    free(s->msg);
    free(s->body);
    memset(s, 0, sizeof(*s));
}

void dataset_work_clear(dataset_work_state *w)
{
    for (size_t i = 0; i < DATASET_MAX_ARTIFACTS; i++) {
        slot_clear(&w->art[i]);
        free(w->art_url[i]);
    }
    for (int k = 0; k < DATASET_NDOCS; k++) {
        slot_clear(&w->doc[k]);
        free(w->doc_url[k]);
    }
    for (size_t i = 0; w->links && i < w->nlinks; i++)
        slot_clear(&w->links[i]);
    free(w->links);
    free(w->link_view);
    dataset_stac_links_free(w->link_urls);
    free(w->links_msg);
    memset(w, 0, sizeof(*w));
}

static int slot_fail(dataset_slot *s, dataset_item_state st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int slot_fail(dataset_slot *s, dataset_item_state st, const char *fmt, ...)
{
    va_list ap;
    free(s->msg);
    s->msg = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s->msg, fmt, ap);
    va_end(ap);
    s->state = st;
    if (n < 0) {
        s->msg = NULL;
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    return 0;
}

/* An ended transfer into its slot. */
static int slot_collect(dataset_work_state *w, dataset_slot *s, int kind, const char *url, time_t now)
{
    keyed_result r;
    int err = 0;
    if (!s->x)
        return 0;
    keyed_transfer_poll(&r, s->x);
    s->bytes = r.bytes;
    if (r.total >= 0 && !(kind == KIND_ARTIFACT && s->total > 0))
        s->total = r.total;
    if (!r.done)
        return 0;
    s->status = r.status;
    bool ok = r.status >= 200 && r.status <= 299;
    if (r.outcome == NET_DONE && ok) {
        s->state = DATASET_ITEM_DONE;
        memcpy(s->sha, r.sha256_hex, sizeof(s->sha));
        if (kind == KIND_DOC && !(s->body = keyed_transfer_take_body(s->x, &s->len)))
            err = mb_error_set(MB_ENOMEM, "out of memory");
    } else if (r.outcome == NET_DONE && kind == KIND_LINK && !s->get && (r.status == 405 || r.status == 501)) {
        s->state = DATASET_ITEM_NONE; /* HEAD not allowed: GET */
        s->get = true;
    } else if (r.outcome == NET_DONE && r.status >= 500) {
        err = slot_fail(s, DATASET_ITEM_UNAVAILABLE, "%s answered HTTP %ld", url, r.status);
    } else if (r.outcome == NET_DONE) {
        err = slot_fail(s, DATASET_ITEM_REFUSED, "%s answered HTTP %ld", url, r.status);
    } else if (r.outcome == NET_TOO_BIG && kind == KIND_LINK && ok) {
        s->state = DATASET_ITEM_DONE;
    } else if (r.outcome == NET_TOO_BIG) {
        err = kind == KIND_DOC ? slot_fail(s, DATASET_ITEM_REFUSED, "%s is larger than 4 MiB", url)
                               : slot_fail(s, DATASET_ITEM_REFUSED, "%s sent more bytes than its sizeBytes", url);
    } else if (r.outcome == NET_REDIRECT) {
        err = slot_fail(s, DATASET_ITEM_REFUSED, "%s: %s", url, *r.error ? r.error : "a redirect was refused");
    } else if (r.outcome == NET_CANCELLED) {
        s->state = DATASET_ITEM_NONE;
    } else {
        err = slot_fail(s, DATASET_ITEM_UNAVAILABLE, "%s: %s", url, *r.error ? r.error : "no answer");
    }
    if (s->state == DATASET_ITEM_UNAVAILABLE && !w->failed_round) {
        w->failed_round = true;
        w->attempts++;
    }
    if (s->state == DATASET_ITEM_UNAVAILABLE)
        w->failed_at = now;
    keyed_transfer_detach(s->x); /* ended: freed */
    s->x = NULL;
    return err;
}

int dataset_work_collect(dataset_work_state *w, time_t now)
{
    int err = 0;
    for (size_t i = 0; i < w->nart && err == 0; i++)
        err = slot_collect(w, &w->art[i], KIND_ARTIFACT, w->art_url[i] ? w->art_url[i] : "the artifact", now);
    for (int k = 0; k < DATASET_NDOCS && err == 0; k++)
        err = slot_collect(w, &w->doc[k], KIND_DOC, w->doc_url[k] ? w->doc_url[k] : "the document", now);
    for (size_t i = 0; i < w->nlinks && err == 0; i++)
        err = slot_collect(w, &w->links[i], KIND_LINK, w->link_urls[i], now);
    return err;
}

static void item_view(dataset_item *o, const dataset_slot *s)
{
    o->state = s->state;
    o->message = s->msg;
    o->sha256_hex = s->state == DATASET_ITEM_DONE ? s->sha : NULL;
    o->bytes = s->bytes;
    o->total = s->total;
    o->body = s->body;
    o->len = s->len;
    o->status = s->status;
}

void dataset_work_view(dataset_work *o, dataset_work_state *w)
{
    memset(o, 0, sizeof(*o));
    if (w->started) {
        for (size_t i = 0; i < w->nart; i++)
            item_view(&w->art_view[i], &w->art[i]);
        o->artifacts = w->art_view;
        o->nartifacts = w->nart;
    }
    for (int k = 0; k < DATASET_NDOCS; k++)
        item_view(&o->docs[k], &w->doc[k]);
    for (size_t i = 0; i < w->nlinks; i++)
        item_view(&w->link_view[i], &w->links[i]);
    o->links = w->link_view;
    o->link_urls = (const char *const *)w->link_urls;
    o->nlinks = w->nlinks;
    o->links_listed = w->links_listed;
    o->links_message = w->links_msg;
    o->removed = w->removed;
    o->attempts = w->attempts;
    o->failed_at = w->failed_at;
}

static int start(dataset_slot *s, net_loop *net, loop *l, const char *key, const char *url, int kind,
                 long long max_bytes, const char *token, const char *ca_pem)
{
    static const char *const kinds[] = {"artifact", "document", "link"};
    int err;
    net_request req = {.kind = kinds[kind],
                       .method = kind == KIND_LINK && !s->get ? "HEAD" : NULL,
                       .url = url,
                       .token = token,
                       .ca_pem = ca_pem,
                       .timeout_ms = kind == KIND_ARTIFACT ? ARTIFACT_TIMEOUT_MS
                                     : kind == KIND_DOC    ? DOC_TIMEOUT_MS
                                                           : LINK_TIMEOUT_MS,
                       .connect_timeout_ms = DATASET_CONNECT_TIMEOUT_MS,
                       .stall_seconds = DATASET_STALL_SECONDS,
                       .max_bytes = max_bytes,
                       .max_redirects = 3,
                       .keep_body = kind == KIND_DOC};
    if ((err = keyed_transfer_start(&s->x, net, l, key, &req)) < 0) {
        if (err == MB_ENOMEM)
            return err;
        return slot_fail(s, DATASET_ITEM_REFUSED, "%s cannot be fetched: %s", url, mb_error_last());
    }
    free(s->msg);
    s->msg = NULL;
    s->state = DATASET_ITEM_RUNNING;
    s->bytes = 0;
    return 0;
}

static bool due(const dataset_slot *s, bool retry)
{
    return s->state == DATASET_ITEM_NONE || (retry && s->state == DATASET_ITEM_UNAVAILABLE);
}

static int list_links(dataset_work_state *w, const cJSON *p)
{
    char msg[DATASET_MSG_MAX];
    const dataset_slot *stac = &w->doc[DATASET_DOC_STAC];
    int err = dataset_stac_links(&w->link_urls, stac->body, stac->len,
                                 json_str(p, "spec", "catalog", "stac", "url", NULL), msg);
    if (err == MB_ENOMEM)
        return err;
    w->links_listed = true;
    if (err < 0)
        return (w->links_msg = strdup(msg)) ? 0 : mb_error_set(MB_ENOMEM, "out of memory");
    size_t n = 0;
    while (w->link_urls[n])
        n++;
    if (n > DATASET_MAX_LINKS) {
        char m[128];
        snprintf(m, sizeof(m), "the STAC document has %zu links to check, more than %d", n, DATASET_MAX_LINKS);
        return (w->links_msg = strdup(m)) ? 0 : mb_error_set(MB_ENOMEM, "out of memory");
    }
    if (n && (!(w->links = calloc(n, sizeof(*w->links))) || !(w->link_view = calloc(n, sizeof(*w->link_view)))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    w->nlinks = n;
    return 0;
}

int dataset_work_fetch(dataset_work_state *w, kube_client *kc, net_loop *net, loop *l, const char *key, const cJSON *p,
                       bool retry, time_t now)
{
    static const char *const docs[DATASET_NDOCS] = {"dcat", "stac", "prov"};
    const cJSON *arts = json_get(p, "spec", "artifacts", NULL);
    const cJSON *auth = json_get(p, "spec", "sourceAuthSecretRef", NULL);
    const cJSON *ca = json_get(p, "spec", "caSecretRef", NULL);
    const char *ns = json_str(p, "metadata", "namespace", NULL);
    char *token = NULL, *ca_pem = NULL, msg[1024];
    size_t token_len = 0, ca_len = 0;
    int err = 0, running = 0;
    (void)now;
    if (!w->started) {
        w->nart = (size_t)cJSON_GetArraySize(arts);
        if (w->nart > DATASET_MAX_ARTIFACTS)
            w->nart = DATASET_MAX_ARTIFACTS;
        for (size_t i = 0; i < w->nart; i++) {
            const cJSON *size = json_get(cJSON_GetArrayItem(arts, (int)i), "sizeBytes", NULL);
            w->art[i].total = cJSON_IsNumber(size) ? (long long)size->valuedouble : -1;
            if (!(w->art_url[i] = strdup(json_str(cJSON_GetArrayItem(arts, (int)i), "url", NULL) ?: "")))
                return mb_error_set(MB_ENOMEM, "out of memory");
        }
        for (int k = 0; k < DATASET_NDOCS; k++)
            if (!(w->doc_url[k] = strdup(json_str(p, "spec", "catalog", docs[k], "url", NULL) ?: "")))
                return mb_error_set(MB_ENOMEM, "out of memory");
        w->started = true;
    }
    if (retry)
        w->failed_round = false;
    if (w->doc[DATASET_DOC_STAC].state == DATASET_ITEM_DONE && !w->links_listed && (err = list_links(w, p)) < 0)
        return err;
    if ((auth && (err = kube_secret_ref_read(&token, &token_len, kc, ns, auth, "spec.sourceAuthSecretRef", msg,
                                             sizeof(msg))) != 0) ||
        (ca && (err = kube_secret_ref_read(&ca_pem, &ca_len, kc, ns, ca, "spec.caSecretRef", msg, sizeof(msg))) != 0)) {
        if (err < 0)
            goto done;
        /* nothing can be fetched without them: what would start waits, transiently (the Secret may come) */
        for (int k = 0; k < DATASET_NDOCS && err >= 0; k++)
            if (due(&w->doc[k], retry))
                err = slot_fail(&w->doc[k], DATASET_ITEM_UNAVAILABLE, "%s", msg);
        for (size_t i = 0; i < w->nart && err >= 0; i++)
            if (due(&w->art[i], retry))
                err = slot_fail(&w->art[i], DATASET_ITEM_UNAVAILABLE, "%s", msg);
        if (!w->failed_round) {
            w->failed_round = true;
            w->attempts++;
        }
        w->failed_at = now;
        goto done;
    }
    for (int k = 0; k < DATASET_NDOCS && err >= 0; k++)
        if (due(&w->doc[k], retry))
            err = start(&w->doc[k], net, l, key, json_str(p, "spec", "catalog", docs[k], "url", NULL), KIND_DOC,
                        DATASET_DOC_MAX, token, ca_pem);
    for (size_t i = 0; i < w->nart; i++)
        if (w->art[i].state == DATASET_ITEM_RUNNING)
            running++;
    for (size_t i = 0; i < w->nart && err >= 0 && running < DATASET_DOWNLOADS_AT_ONCE; i++) {
        const cJSON *a = cJSON_GetArrayItem(arts, (int)i);
        const cJSON *size = json_get(a, "sizeBytes", NULL);
        if (!due(&w->art[i], retry))
            continue;
        long long max = cJSON_IsNumber(size) ? (size->valuedouble > 0 ? (long long)size->valuedouble : 1)
                                             : NO_SIZE_LIMIT;
        if ((err = start(&w->art[i], net, l, key, json_str(a, "url", NULL), KIND_ARTIFACT, max, token, ca_pem)) >= 0 &&
            w->art[i].state == DATASET_ITEM_RUNNING)
            running++;
    }
    for (size_t i = 0; i < w->nlinks && err >= 0; i++)
        if (due(&w->links[i], retry))
            err = start(&w->links[i], net, l, key, w->link_urls[i], KIND_LINK, DATASET_DOC_MAX, token, ca_pem);
done:
    mb_secret_free_len(token, token_len);
    mb_secret_free_len(ca_pem, ca_len);
    return err < 0 ? err : 0;
}

/* ---- the index ------------------------------------------------------------ */

static long data_bytes(const cJSON *data)
{
    const cJSON *v;
    long n = 0;
    cJSON_ArrayForEach(v, data) {
        n += (long)strlen(v->string);
        if (cJSON_IsString(v))
            n += (long)strlen(v->valuestring);
    }
    return n;
}

/* The ConfigMap to write from seen (NULL: a new one), with the label. */
static cJSON *index_body(const cJSON *seen, const char *ns, const char *name)
{
    cJSON *cm = seen ? cJSON_Duplicate(seen, true) : cJSON_CreateObject(), *meta, *labels;
    if (!cm)
        return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(cm, "binaryData"); /* trimmed in the cache; a fresh read keeps it */
    if (!(meta = json_ensure_object(cm, "metadata", NULL)) || json_set_str(cm, "apiVersion", "v1") < 0 ||
        json_set_str(cm, "kind", "ConfigMap") < 0 || json_set_str(meta, "name", name) < 0 ||
        json_set_str(meta, "namespace", ns) < 0 || !(labels = json_ensure_object(meta, "labels", NULL)) ||
        json_set_str(labels, DATASET_MANAGED_BY_LABEL, DATASET_MANAGED_BY) < 0 ||
        !json_ensure_object(cm, "data", NULL)) {
        cJSON_Delete(cm);
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "managedFields");
    return cm;
}

/* The copy to start from: the cached one first, then fresh reads. NULL in *out when absent. */
static int index_read(cJSON **out, kube_client *kc, const char *ns, const char *name, const cJSON *cached, int attempt)
{
    int err;
    *out = NULL;
    if (attempt == 0) {
        if (cached && !(*out = cJSON_Duplicate(cached, true)))
            return mb_error_set(MB_ENOMEM, "out of memory");
        return 0;
    }
    if ((err = kube_get(out, kc, &KUBE_CONFIGMAPS, ns, name)) == MB_ENOTFOUND)
        return 0;
    return err;
}

int dataset_index_publish(cJSON **written, kube_client *kc, const cJSON *p, const char *name, const char *entry,
                          const char *expect_replaced, const cJSON *cached)
{
    const char *ns = json_str(p, "metadata", "namespace", NULL), *id = json_str(p, "spec", "datasetID", NULL);
    int err = 0;
    *written = NULL;
    for (int attempt = 0; attempt < DATASET_INDEX_RETRIES; attempt++) {
        cJSON *seen = NULL, *body = NULL;
        bool again = false;
        if ((err = index_read(&seen, kc, ns, name, cached, attempt)) < 0)
            return err;
        const char *cur = json_str(seen, "data", id, NULL);
        if (cur && strcmp(cur, entry) == 0) {
            cJSON_Delete(seen);
            return 0; /* there already */
        }
        if ((cur || expect_replaced) && !(cur && expect_replaced && strcmp(cur, expect_replaced) == 0)) {
            cJSON_Delete(seen);
            if (attempt == 0)
                continue; /* the cache may be behind: read it fresh */
            return mb_error_set(MB_ECONFLICT, "the index entry of %s in ConfigMap %s/%s changed meanwhile", id, ns,
                                name);
        }
        if (!(body = index_body(seen, ns, name)) ||
            json_set_str(cJSON_GetObjectItemCaseSensitive(body, "data"), id, entry) < 0) {
            cJSON_Delete(seen);
            cJSON_Delete(body);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
        if (data_bytes(cJSON_GetObjectItemCaseSensitive(body, "data")) > DATASET_INDEX_MAX_BYTES) {
            cJSON_Delete(seen);
            cJSON_Delete(body);
            return mb_error_set(MB_EINVAL, "ConfigMap %s/%s would pass 900 KiB with the entry of %s", ns, name, id);
        }
        err = kube_write_seen(written, &again, kc, &KUBE_CONFIGMAPS, ns, seen, body);
        cJSON_Delete(seen);
        cJSON_Delete(body);
        if (err == 0 || !again)
            return err < 0 ? mb_error_wrap(err, "writing the index ConfigMap %s/%s", ns, name) : 0;
    }
    return mb_error_set(MB_ECONFLICT, "the index ConfigMap %s/%s kept changing: tried %d times", ns, name,
                        DATASET_INDEX_RETRIES);
}

int dataset_index_unpublish(cJSON **written, bool *removed, kube_client *kc, const cJSON *p, const char *name,
                            const char *ref, const cJSON *cached)
{
    const char *ns = json_str(p, "metadata", "namespace", NULL), *id = json_str(p, "spec", "datasetID", NULL);
    int err = 0;
    *written = NULL;
    *removed = false;
    for (int attempt = 0; attempt < DATASET_INDEX_RETRIES; attempt++) {
        cJSON *seen = NULL, *body = NULL, *e = NULL;
        bool again = false;
        if ((err = index_read(&seen, kc, ns, name, cached, attempt)) < 0)
            return err;
        const char *cur = json_str(seen, "data", id, NULL);
        bool ours = cur && (e = cJSON_Parse(cur)) && json_str(e, "auditRef", NULL) &&
                    strcmp(json_str(e, "auditRef", NULL), ref) == 0;
        cJSON_Delete(e);
        if (!ours) {
            cJSON_Delete(seen);
            if (attempt == 0 && cached)
                continue; /* as the API has it */
            return 0;
        }
        if (!(body = index_body(seen, ns, name))) {
            cJSON_Delete(seen);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(body, "data"), id);
        err = kube_write_seen(written, &again, kc, &KUBE_CONFIGMAPS, ns, seen, body);
        cJSON_Delete(seen);
        cJSON_Delete(body);
        if (err == 0) {
            *removed = true;
            return 0;
        }
        if (!again)
            return mb_error_wrap(err, "writing the index ConfigMap %s/%s", ns, name);
    }
    return mb_error_set(MB_ECONFLICT, "the index ConfigMap %s/%s kept changing: tried %d times", ns, name,
                        DATASET_INDEX_RETRIES);
}

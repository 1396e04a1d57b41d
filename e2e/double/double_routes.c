/*
 * The answers of the governed API double (double_routes.h): a small catalog
 * of two public datasets and one restricted one (each at the version
 * e2e/lib.sh's published index promotes), its STAC collections and
 * items, evidence bundles built from the refs asked for, a focus answer with
 * citations and an audit_ref (the SHA-256 of the question), and the lineage
 * status; each behaviour changes exactly the answer it is named after.
 */
#include "double_routes.h"
#include "audit/canonical.h"

#include <cjson/cJSON.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {
    [DOUBLE_GOOD] = "good",
    [DOUBLE_UNCITED] = "uncited",
    [DOUBLE_RESTRICTED_LEAK] = "restricted-leak",
    [DOUBLE_EXISTENCE_LEAK] = "existence-leak",
    [DOUBLE_EVIDENCE_500] = "evidence-500",
    [DOUBLE_SLOW] = "slow",
    [DOUBLE_MALFORMED] = "malformed",
    [DOUBLE_LINEAGE_404] = "lineage-404",
    [DOUBLE_UNPUBLISHED] = "unpublished",
    [DOUBLE_ERROR_5PCT] = "error-5pct",
    [DOUBLE_SLOW_P99] = "slow-p99",
    [DOUBLE_UNKNOWN] = "unknown",
};

/* cJSON_Parse records errors in a global: one parse at a time across the connection threads */
static pthread_mutex_t parse_lock = PTHREAD_MUTEX_INITIALIZER;

int double_behaviour_parse(double_behaviour *out, const char *name)
{
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (double_behaviour)i;
            return 0;
        }
    }
    return -1;
}

const char *double_behaviour_name(double_behaviour b)
{
    return (size_t)b < sizeof(names) / sizeof(names[0]) ? names[b] : "?";
}

const char *double_status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

/* ---- the catalog ------------------------------------------------------- */

typedef struct {
    const char *id;
    const char *version;
    const char *title;
    const char *label;
    const char *license;
} dataset;

static const dataset public_sets[] = {
    {"kfm.hydrology.wells", "2026-03-01.1", "Groundwater wells", "public", "CC-BY-4.0"},
    {"kfm.soils.survey", "2025-11-02.4", "Soil survey", "public", "CC0-1.0"},
};

/* The version the unpublished behaviour serves of the first public dataset instead of its promoted one. */
#define UNPUBLISHED_VERSION "2026-04-01.1"

static cJSON *dataset_json(const double_context *ctx, const dataset *d, const char *id)
{
    cJSON *o = cJSON_CreateObject();
    bool unpublished = ctx->behaviour == DOUBLE_UNPUBLISHED && d == &public_sets[0];
    cJSON_AddStringToObject(o, "dataset_id", id ? id : d->id);
    cJSON_AddStringToObject(o, "dataset_version_id", unpublished ? UNPUBLISHED_VERSION : d->version);
    cJSON_AddStringToObject(o, "title", d->title);
    cJSON_AddStringToObject(o, "policy_label", d->label);
    cJSON_AddStringToObject(o, "license", d->license);
    return o;
}

static const dataset restricted_set = {NULL, "2026-01-15.2", "Restricted sites", "restricted",
                                       "LicenseRef-kfm-restricted"};

static cJSON *error_json(const char *code, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
    return o;
}

static cJSON *datasets_list(const double_context *ctx, bool full)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *items = cJSON_AddArrayToObject(o, "items");
    for (size_t i = 0; i < sizeof(public_sets) / sizeof(public_sets[0]); i++)
        cJSON_AddItemToArray(items, dataset_json(ctx, &public_sets[i], NULL));
    if (full || ctx->behaviour == DOUBLE_RESTRICTED_LEAK)
        cJSON_AddItemToArray(items, dataset_json(ctx, &restricted_set, ctx->restricted_id));
    cJSON_AddNumberToObject(o, "total", cJSON_GetArraySize(items));
    return o;
}

static int dataset_one(cJSON **body, const double_context *ctx, const char *id, bool full)
{
    for (size_t i = 0; i < sizeof(public_sets) / sizeof(public_sets[0]); i++) {
        if (strcmp(id, public_sets[i].id) == 0) {
            *body = dataset_json(ctx, &public_sets[i], NULL);
            return 200;
        }
    }
    if (strcmp(id, ctx->restricted_id) == 0) {
        if (full) {
            *body = dataset_json(ctx, &restricted_set, ctx->restricted_id);
            return 200;
        }
        if (ctx->behaviour == DOUBLE_EXISTENCE_LEAK) {
            *body = error_json("policy_denied", "this dataset is restricted");
            return 403;
        }
    }
    *body = error_json("not_found", "dataset not found");
    return 404;
}

/* One index entry as canonical JSON (audit/canonical.h), sealed by a made-up but well-formed auditRef. */
static char *index_entry(const dataset *d, const char *id)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char ref[AUDIT_REF_SIZE], url[512], *text = NULL, seed[512];
    static const char *const docs[][2] = {{"dcat", "dcat.jsonld"}, {"prov", "prov.json"}, {"stac", "collection.json"}};
    cJSON *e = cJSON_CreateObject(), *catalog = cJSON_AddObjectToObject(e, "catalog");

    snprintf(seed, sizeof(seed), "e2e promotion of %s@%s", id, d->version);
    SHA256((const unsigned char *)seed, strlen(seed), md);
    strcpy(ref, "sha256:");
    for (size_t i = 0; i < sizeof(md); i++)
        snprintf(ref + 7 + 2 * i, 3, "%02x", md[i]);
    for (size_t i = 0; catalog && i < 3; i++) {
        snprintf(url, sizeof(url), "https://store.kfm.example/catalog/%s/%s/%s", id, d->version, docs[i][1]);
        cJSON_AddStringToObject(catalog, docs[i][0], url);
    }
    cJSON_AddStringToObject(e, "auditRef", ref);
    cJSON_AddStringToObject(e, "datasetID", id);
    cJSON_AddStringToObject(e, "license", d->license);
    cJSON_AddStringToObject(e, "policyLabel", d->label);
    cJSON_AddStringToObject(e, "versionID", d->version);
    if (audit_canonical_json(&text, NULL, e) < 0)
        text = NULL;
    cJSON_Delete(e);
    return text;
}

char *double_published_index(const char *ns, const char *name, const char *restricted_id)
{
    cJSON *cm = cJSON_CreateObject(), *meta, *labels, *data;
    char *entry = NULL, *out = NULL;
    bool ok = cm && cJSON_AddStringToObject(cm, "apiVersion", "v1") &&
              cJSON_AddStringToObject(cm, "kind", "ConfigMap") && (meta = cJSON_AddObjectToObject(cm, "metadata")) &&
              cJSON_AddStringToObject(meta, "name", name) && cJSON_AddStringToObject(meta, "namespace", ns) &&
              (labels = cJSON_AddObjectToObject(meta, "labels")) &&
              cJSON_AddStringToObject(labels, "app.kubernetes.io/managed-by", "membrane") &&
              (data = cJSON_AddObjectToObject(cm, "data"));
    for (size_t i = 0; ok && i <= sizeof(public_sets) / sizeof(public_sets[0]); i++) {
        bool restricted = i == sizeof(public_sets) / sizeof(public_sets[0]);
        const dataset *d = restricted ? &restricted_set : &public_sets[i];
        const char *id = restricted ? restricted_id : d->id;
        ok = (entry = index_entry(d, id)) && cJSON_AddStringToObject(data, id, entry);
        free(entry);
    }
    if (ok)
        out = cJSON_Print(cm);
    cJSON_Delete(cm);
    return out;
}

static cJSON *stac_collections(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *cols = cJSON_AddArrayToObject(o, "collections");
    for (size_t i = 0; i < sizeof(public_sets) / sizeof(public_sets[0]); i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "type", "Collection");
        cJSON_AddStringToObject(c, "stac_version", "1.0.0");
        cJSON_AddStringToObject(c, "id", public_sets[i].id);
        cJSON_AddStringToObject(c, "title", public_sets[i].title);
        cJSON_AddStringToObject(c, "license", public_sets[i].license);
        cJSON_AddItemToObject(c, "extent",
                              cJSON_Parse("{\"spatial\":{\"bbox\":[[-102.05,36.99,-94.59,40.0]]},"
                                          "\"temporal\":{\"interval\":[[\"2020-01-01T00:00:00Z\",null]]}}"));
        cJSON_AddArrayToObject(c, "links");
        cJSON_AddItemToArray(cols, c);
    }
    cJSON_AddArrayToObject(o, "links");
    return o;
}

static cJSON *stac_items(void)
{
    static const char *const ids[] = {"wells-2026-03", "wells-2026-04"};
    static const char *const times[] = {"2026-03-15T00:00:00Z", "2026-04-15T00:00:00Z"};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "FeatureCollection");
    cJSON *features = cJSON_AddArrayToObject(o, "features");
    for (size_t i = 0; i < 2; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "type", "Feature");
        cJSON_AddStringToObject(f, "stac_version", "1.0.0");
        cJSON_AddStringToObject(f, "id", ids[i]);
        cJSON_AddStringToObject(f, "collection", "kfm.hydrology.wells");
        cJSON_AddItemToObject(f, "geometry", cJSON_Parse("{\"type\":\"Point\",\"coordinates\":[-98.5,38.5]}"));
        cJSON *props = cJSON_AddObjectToObject(f, "properties");
        cJSON_AddStringToObject(props, "datetime", times[i]);
        cJSON_AddObjectToObject(f, "assets");
        cJSON_AddArrayToObject(f, "links");
        cJSON_AddItemToArray(features, f);
    }
    cJSON_AddNumberToObject(o, "numberReturned", 2);
    return o;
}

static cJSON *parse_body(const double_request *req)
{
    pthread_mutex_lock(&parse_lock);
    cJSON *j = cJSON_ParseWithLength(req->body, req->body_len);
    pthread_mutex_unlock(&parse_lock);
    return j;
}

static void sha256_hex(char out[72], const char *s)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s, strlen(s), md);
    strcpy(out, "sha256:");
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

static int evidence_resolve(cJSON **body, const double_context *ctx, const double_request *req)
{
    cJSON *in = parse_body(req);
    const cJSON *refs = cJSON_GetObjectItemCaseSensitive(in, "refs"), *ref;
    int status = 200;

    if (!cJSON_IsArray(refs)) {
        *body = error_json("bad_request", "the body must be {\"refs\": [...]}");
        status = 400;
    } else if (ctx->behaviour == DOUBLE_EVIDENCE_500) {
        *body = error_json("internal", "the evidence store is unavailable");
        status = 500;
    } else {
        char digest[72];
        *body = cJSON_CreateObject();
        cJSON *bundle = cJSON_AddObjectToObject(*body, "bundle");
        char *text = cJSON_PrintUnformatted(refs);
        sha256_hex(digest, text ? text : "");
        free(text);
        cJSON_AddStringToObject(bundle, "id", digest);
        cJSON *ev = cJSON_AddArrayToObject(bundle, "evidence");
        cJSON_ArrayForEach(ref, refs) {
            cJSON *e = cJSON_CreateObject();
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(ref, "type");
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(ref, "id");
            cJSON_AddStringToObject(e, "type", cJSON_IsString(t) ? t->valuestring : "unknown");
            cJSON_AddStringToObject(e, "id", cJSON_IsString(id) ? id->valuestring : "");
            cJSON_AddBoolToObject(e, "resolved", true);
            cJSON_AddStringToObject(e, "policy_label", "public");
            cJSON_AddItemToArray(ev, e);
        }
    }
    cJSON_Delete(in);
    return status;
}

static int focus_ask(cJSON **body, const double_context *ctx, const double_request *req)
{
    cJSON *in = parse_body(req);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(in, "question");
    char audit[72];
    int status = 200;

    if (!cJSON_IsString(q) || !q->valuestring[0]) {
        *body = error_json("bad_request", "the body must carry a question");
        status = 400;
    } else {
        sha256_hex(audit, q->valuestring);
        *body = cJSON_CreateObject();
        cJSON_AddStringToObject(*body, "answer", "In March 2026 wells 12 and 14 were sampled.");
        cJSON *cites = cJSON_AddArrayToObject(*body, "citations");
        if (ctx->behaviour != DOUBLE_UNCITED) {
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "ref", "stac_item:wells-2026-03");
            cJSON_AddStringToObject(c, "title", "Well samples, March 2026");
            cJSON_AddItemToArray(cites, c);
        }
        cJSON_AddBoolToObject(*body, "abstained", false);
        cJSON_AddStringToObject(*body, "audit_ref", audit);
    }
    cJSON_Delete(in);
    return status;
}

static int lineage_status(cJSON **body, const double_context *ctx)
{
    if (ctx->behaviour == DOUBLE_LINEAGE_404) {
        *body = error_json("not_found", "lineage is not implemented in this version");
        return 404;
    }
    *body = cJSON_CreateObject();
    cJSON_AddStringToObject(*body, "status", "ok");
    cJSON_AddNumberToObject(*body, "datasets", 2);
    cJSON_AddNumberToObject(*body, "edges", 5);
    cJSON_AddStringToObject(*body, "updated_at", "2026-11-20T00:00:00Z");
    return 200;
}

/* ---- routing ----------------------------------------------------------- */

static int route(cJSON **body, const double_context *ctx, const double_request *req)
{
    const char *p = req->path;
    bool get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0;
    bool full = req->has_auth && req->auth_ok;
    static const char ds[] = "/api/v1/datasets/";

    if (strcmp(p, "/healthz") == 0 && get) {
        *body = cJSON_CreateObject();
        cJSON_AddStringToObject(*body, "status", "ok");
        return 200;
    }
    if (ctx->behaviour == DOUBLE_UNKNOWN) {
        char msg[256];
        snprintf(msg, sizeof(msg), "the double has no behaviour for digest \"%s\"", ctx->digest);
        *body = error_json("unknown_version", msg);
        return 503;
    }
    if (strcmp(p, "/readyz") == 0 && get) {
        *body = cJSON_CreateObject();
        cJSON_AddStringToObject(*body, "status", "ready");
        cJSON_AddStringToObject(*body, "digest", ctx->digest);
        return 200;
    }
    bool known = strcmp(p, "/api/v1/datasets") == 0 || strncmp(p, ds, sizeof(ds) - 1) == 0 ||
                 strcmp(p, "/api/v1/stac/collections") == 0 || strcmp(p, "/api/v1/stac/items") == 0 ||
                 strcmp(p, "/api/v1/evidence/resolve") == 0 || strcmp(p, "/api/v1/focus/ask") == 0 ||
                 strcmp(p, "/api/v1/lineage/status") == 0 || strcmp(p, "/readyz") == 0;
    if (!known) {
        *body = error_json("not_found", "no such endpoint");
        return 404;
    }
    bool wants_post = strcmp(p, "/api/v1/evidence/resolve") == 0 || strcmp(p, "/api/v1/focus/ask") == 0;
    if ((wants_post && !post) || (!wants_post && !get)) {
        *body = error_json("method_not_allowed", wants_post ? "use POST" : "use GET");
        return 405;
    }
    /* the dataset endpoints answer the public; a wrong token is refused everywhere */
    bool public_ok = strncmp(p, "/api/v1/datasets", 16) == 0;
    if ((req->has_auth && !req->auth_ok) || (!public_ok && !req->has_auth && ctx->token_required)) {
        *body = error_json("unauthorized", "a valid bearer token is required");
        return 401;
    }
    if (strcmp(p, "/api/v1/datasets") == 0) {
        *body = datasets_list(ctx, full);
        return 200;
    }
    if (strncmp(p, ds, sizeof(ds) - 1) == 0)
        return dataset_one(body, ctx, p + sizeof(ds) - 1, full);
    if (strcmp(p, "/api/v1/stac/collections") == 0) {
        *body = stac_collections();
        return 200;
    }
    if (strcmp(p, "/api/v1/stac/items") == 0) {
        *body = stac_items();
        return 200;
    }
    if (strcmp(p, "/api/v1/evidence/resolve") == 0)
        return evidence_resolve(body, ctx, req);
    if (strcmp(p, "/api/v1/focus/ask") == 0)
        return focus_ask(body, ctx, req);
    return lineage_status(body, ctx);
}

int double_answer(double_response *out, const double_context *ctx, const double_request *req)
{
    cJSON *body = NULL;
    out->status = route(&body, ctx, req);
    out->body = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!out->body)
        return -1;
    if (ctx->behaviour == DOUBLE_MALFORMED)
        out->body[strlen(out->body) / 2] = '\0'; /* a JSON document cut in half */
    return 0;
}

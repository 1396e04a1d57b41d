/*
 * The governed API contract checks of contract.h: each check becomes one or
 * three transfers on the shared transfer loop (net/transfer.h), all of them
 * started at once (each bounded by the per-request timeout and the body
 * limit); when the last has ended, the run's callback is called, and each
 * check is judged from its answers into one result object. Also the bearer
 * token read from its Secret.
 */
#include "verify/contract.h"
#include "net/transfer.h"
#include "util/base64.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/text.h"
#include "util/timefmt.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const contract_check_names[CONTRACT_N_CHECKS] = {
    "health", "ready", "datasets", "stac-collections", "stac-items",
    "evidence-resolve", "focus-ask", "lineage", "public-restriction",
};

typedef enum {
    CK_HEALTH, CK_READY, CK_DATASETS, CK_STAC_COLLECTIONS, CK_STAC_ITEMS,
    CK_EVIDENCE, CK_FOCUS, CK_LINEAGE, CK_PUBLIC,
} check_id;

/* One row of the table: the (first) request and the trigger. */
typedef struct {
    const char *trigger;
    const char *method;
    const char *path;
    bool auth;
} check_def;

static const check_def defs[CONTRACT_N_CHECKS] = {
    [CK_HEALTH] = {"SmokeFailure", "GET", "/healthz", false},
    [CK_READY] = {"SmokeFailure", "GET", "/readyz", false},
    [CK_DATASETS] = {"SmokeFailure", "GET", "/api/v1/datasets", true},
    [CK_STAC_COLLECTIONS] = {"SmokeFailure", "GET", "/api/v1/stac/collections", true},
    [CK_STAC_ITEMS] = {"SmokeFailure", "GET", "/api/v1/stac/items", true},
    [CK_EVIDENCE] = {"EvidenceFailure", "POST", "/api/v1/evidence/resolve", true},
    [CK_FOCUS] = {"UncitedAnswer", "POST", "/api/v1/focus/ask", true},
    [CK_LINEAGE] = {"SmokeFailure", "GET", "/api/v1/lineage/status", true},
    [CK_PUBLIC] = {"PolicyBypass", "GET", "/api/v1/datasets", false},
};

const char *contract_check_trigger(const char *name)
{
    for (size_t i = 0; name && i < CONTRACT_N_CHECKS; i++)
        if (strcmp(contract_check_names[i], name) == 0)
            return defs[i].trigger;
    return "SmokeFailure";
}

#define QUOTE_MAX 120 /* bytes of untrusted text quoted in a message */

/* One HTTP request and what came back. */
typedef struct contract_run contract_run_t;
typedef struct {
    contract_run_t *run;
    const char *method;
    char *path;        /* as sent, after the base URL; for messages */
    char *url;
    char *body;        /* request body (POST), NULL for GET */
    bool auth;
    char *resp;        /* response body, NUL-terminated */
    size_t resp_len;
    net_outcome outcome;
    int curl_code;
    char *error;       /* the transfer loop's sentence when no answer came */
    bool done;
    long status;       /* 0: no response */
    long latency_ms;
    long os_errno;
} call;

/* One check: its calls (public-restriction: listing, restricted, missing). */
typedef struct {
    check_id id;
    call calls[3];
    size_t ncalls;
} job;

/* The judgement of one check. */
typedef struct {
    bool passed;
    long status; /* the answer the verdict is about; 0: none */
    char msg[CONTRACT_MESSAGE_MAX];
} verdict;

/* ---- small helpers ------------------------------------------------------- */

static void say(verdict *v, bool passed, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Sets the verdict; a message too long for the CRD is cut at a UTF-8 character boundary with "...". */
static void say(verdict *v, bool passed, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(v->msg, sizeof(v->msg), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(v->msg)) {
        size_t cut = sizeof(v->msg) - 4;
        while (cut > 0 && ((unsigned char)v->msg[cut] & 0xC0) == 0x80)
            cut--;
        strcpy(v->msg + cut, "...");
    }
    v->passed = passed;
}

/*
 * Untrusted text for a message: at most QUOTE_MAX bytes, cut at a UTF-8
 * character boundary (with "..." when cut), control characters as '?'.
 */
static const char *quote(char *buf, size_t size, const char *s)
{
    size_t n = strlen(s), max = size - 4 < QUOTE_MAX ? size - 4 : QUOTE_MAX;
    bool cut = n > max;
    if (cut) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    strcpy(buf + n, cut ? "..." : "");
    return buf;
}

static const char *json_kind(const cJSON *j)
{
    if (!j)
        return "missing";
    if (cJSON_IsString(j))
        return "a string";
    if (cJSON_IsNumber(j))
        return "a number";
    if (cJSON_IsBool(j))
        return "a boolean";
    if (cJSON_IsNull(j))
        return "null";
    if (cJSON_IsArray(j))
        return "an array";
    return "an object";
}

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* ---- input --------------------------------------------------------------- */

static int check_lookup(check_id *out, const char *name)
{
    for (int i = 0; i < CONTRACT_N_CHECKS; i++) {
        if (strcmp(name, contract_check_names[i]) == 0) {
            *out = (check_id)i;
            return 0;
        }
    }
    return mb_error_set(MB_EINVAL,
                        "spec.verification.checks lists \"%s\", which is not a contract check; use health, ready, "
                        "datasets, stac-collections, stac-items, evidence-resolve, focus-ask, lineage or "
                        "public-restriction", name);
}

/* The checks to run, in order, into ids; *n their number. */
static int input_checks(check_id *ids, size_t *n, const contract_input *in)
{
    int err = 0;
    bool seen[CONTRACT_N_CHECKS] = {false};
    *n = 0;
    if (!in->checks) {
        for (int i = 0; i < CONTRACT_N_CHECKS; i++)
            ids[(*n)++] = (check_id)i;
        return 0;
    }
    if (!cJSON_IsArray(in->checks) || cJSON_GetArraySize(in->checks) == 0)
        return mb_error_set(MB_EINVAL, "spec.verification.checks must be a non-empty list of check names");
    const cJSON *it;
    cJSON_ArrayForEach(it, in->checks) {
        check_id id = CK_HEALTH;
        if (!cJSON_IsString(it))
            return mb_error_set(MB_EINVAL, "spec.verification.checks holds %s; list check names only",
                                json_kind(it));
        if ((err = check_lookup(&id, it->valuestring)) < 0)
            return err;
        if (seen[id])
            return mb_error_set(MB_EINVAL, "spec.verification.checks lists %s twice; list each check once",
                                it->valuestring);
        seen[id] = true;
        ids[(*n)++] = id;
    }
    return 0;
}

static int input_validate(const contract_input *in, const check_id *ids, size_t n)
{
    if (!in->base_url || (strncmp(in->base_url, "http://", 7) != 0 && strncmp(in->base_url, "https://", 8) != 0) ||
        mb_has_control(in->base_url))
        return mb_error_set(MB_EINVAL, "the verification base URL \"%s\" is not an http:// or https:// URL; "
                            "fix spec.verification.baseURL", in->base_url ? in->base_url : "");
    if (!in->release_id || !in->release_id[0] || mb_has_control(in->release_id) || strlen(in->release_id) > 64)
        return mb_error_set(MB_EINVAL, "the checks need the release ID for X-Request-ID (at most 64 printable characters)");
    if (in->token && (!in->token[0] || mb_has_control(in->token)))
        return mb_error_set(MB_EINVAL, "the bearer token is empty or holds control characters, so it cannot be sent "
                            "in an Authorization header; fix the Secret named by spec.verification.authSecretRef");
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == CK_EVIDENCE && (!cJSON_IsArray(in->evidence_refs) || cJSON_GetArraySize(in->evidence_refs) == 0))
            return mb_error_set(MB_EINVAL, "evidence-resolve needs spec.verification.evidenceRefs (at least one "
                                "reference); add one or remove evidence-resolve from spec.verification.checks");
        if (ids[i] == CK_FOCUS && (!in->focus_question || !in->focus_question[0]))
            return mb_error_set(MB_EINVAL, "focus-ask needs spec.verification.focusQuestion; set one or remove "
                                "focus-ask from spec.verification.checks");
        if (ids[i] == CK_PUBLIC && (!in->restricted_dataset_id || !in->restricted_dataset_id[0]))
            return mb_error_set(MB_EINVAL, "public-restriction needs spec.verification.restrictedDatasetID; name a "
                                "restricted dataset or remove public-restriction from spec.verification.checks");
    }
    return 0;
}

/* A dataset id that cannot exist, shaped like the restricted one (see contract.h). */
static int missing_id(char **out, const char *restricted)
{
    unsigned char rnd[8];
    char hex[17];
    const char *dot = strrchr(restricted, '.');
    int prefix = dot ? (int)(dot - restricted + 1) : 0;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return mb_error_set(MB_ERROR, "OpenSSL could not produce random bytes for the missing-dataset id");
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    if (!(*out = str_printf("%.*sabsent-%s", prefix, restricted, hex)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    return 0;
}

/* ---- requests ------------------------------------------------------------ */

/* Sets up one call; body NULL for GET. Takes ownership of path and body. */
static int call_setup(call *c, const char *base, const char *method, char *path, char *body, bool auth)
{
    c->method = method;
    c->path = path;
    c->body = body;
    c->auth = auth;
    if (!path || !(c->url = str_printf("%s%s", base, path)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    return 0;
}

static void call_dispose(call *c)
{
    free(c->path);
    free(c->url);
    free(c->body);
    free(c->resp);
    free(c->error);
    memset(c, 0, sizeof(*c));
}

static char *body_evidence(const contract_input *in)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *refs = cJSON_Duplicate(in->evidence_refs, true);
    char *s = NULL;
    if (o && refs && cJSON_AddItemToObject(o, "refs", refs)) {
        refs = NULL;
        s = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(refs);
    cJSON_Delete(o);
    return s;
}

static char *body_focus(const contract_input *in)
{
    char when[TIMEFMT_RFC3339_SIZE];
    cJSON *o = NULL;
    char *s = NULL;
    if (timefmt_format(when, sizeof(when), in->now) < 0)
        return NULL;
    if ((o = cJSON_CreateObject()) && cJSON_AddStringToObject(o, "question", in->focus_question)) {
        cJSON *ctx = cJSON_AddObjectToObject(o, "context");
        if (ctx && cJSON_AddStringToObject(ctx, "time", when))
            s = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(o);
    return s;
}

static char *dataset_path(const char *id)
{
    char *esc = curl_easy_escape(NULL, id, 0);
    char *p = esc ? str_printf("/api/v1/datasets/%s", esc) : NULL;
    curl_free(esc);
    return p;
}

static int job_setup(job *j, check_id id, const contract_input *in, const char *base, const char *missing)
{
    int err = 0;
    const check_def *d = &defs[id];
    char *body = NULL;

    j->id = id;
    if (id == CK_EVIDENCE && !(body = body_evidence(in)))
        return mb_error_set(MB_ENOMEM, "out of memory building the evidence-resolve request");
    if (id == CK_FOCUS && !(body = body_focus(in)))
        return mb_error_set(MB_EINVAL, "the focus-ask request cannot be built (is the clock within years 0-9999?)");
    j->ncalls = 1;
    if ((err = call_setup(&j->calls[0], base, d->method, strdup(d->path), body, d->auth)) < 0)
        return err;
    if (id != CK_PUBLIC)
        return 0;
    j->ncalls = 2;
    if ((err = call_setup(&j->calls[1], base, "GET", dataset_path(in->restricted_dataset_id), NULL, false)) < 0)
        return err;
    j->ncalls = 3;
    return call_setup(&j->calls[2], base, "GET", dataset_path(missing), NULL, false);
}

/*
 * An answer that echoes the request's Authorization header (a debug page, a
 * proxy's error page) would carry the bearer token into the quotes of the
 * messages, and so into the log, Events and the release's status: every
 * occurrence of the token in an answer is overwritten with '*' before the
 * answer is judged. A token shorter than TOKEN_MASK_MIN is not looked for:
 * masking it would mangle answers that merely contain those few characters.
 */
#define TOKEN_MASK_MIN 8

static void token_mask(job *jobs, size_t n, const char *token)
{
    size_t tlen = token ? strlen(token) : 0;
    if (tlen < TOKEN_MASK_MIN)
        return;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < jobs[i].ncalls; k++) {
            call *c = &jobs[i].calls[k];
            char *at = c->resp, *end = c->resp + c->resp_len;
            while (at && (at = memmem(at, (size_t)(end - at), token, tlen))) {
                memset(at, '*', tlen);
                at += tlen;
            }
        }
}

/* ---- judging ------------------------------------------------------------- */

static void timeout_text(char *buf, size_t size, long ms)
{
    if (ms % 1000 == 0)
        snprintf(buf, size, "%ld s", ms / 1000);
    else
        snprintf(buf, size, "%ld ms", ms);
}

/* When the call got no usable answer, says why in v and returns true. */
static bool transport_failed(verdict *v, const call *c, long timeout_ms)
{
    char t[32];
    if (c->outcome == NET_DONE)
        return false;
    v->status = c->status;
    if (c->outcome == NET_TOO_BIG) {
        say(v, false, "%s %s answered more than %ld MiB; the check reads at most that much", c->method, c->url,
            CONTRACT_BODY_MAX / (1024 * 1024));
        return true;
    }
    switch (c->outcome == NET_TIMEOUT || c->outcome == NET_STALLED ? CURLE_OPERATION_TIMEDOUT : c->curl_code) {
    case CURLE_OPERATION_TIMEDOUT:
        timeout_text(t, sizeof(t), timeout_ms);
        say(v, false, "%s %s did not answer within %s (spec.verification.timeoutSeconds)", c->method, c->url, t);
        break;
    case CURLE_COULDNT_CONNECT:
        say(v, false, "could not connect to %s: %s; check that the API's Service is up and spec.verification.baseURL "
            "is right", c->url, c->os_errno ? strerror((int)c->os_errno) : "connection failed");
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        say(v, false, "could not resolve the host of %s; check spec.verification.baseURL and the API's Service",
            c->url);
        break;
    default:
        say(v, false, "%s", c->error && c->error[0] ? c->error : "the request got no answer");
        break;
    }
    return true;
}

/* "503 (body: {...})": the status with a short quote of the body, for failures. */
static const char *status_text(char *buf, size_t size, const call *c)
{
    char q[QUOTE_MAX + 4];
    if (c->resp_len == 0)
        snprintf(buf, size, "%ld", c->status);
    else
        snprintf(buf, size, "%ld (body: %s)", c->status, quote(q, sizeof(q), c->resp));
    return buf;
}

static bool status_is(verdict *v, const call *c, long want)
{
    char s[QUOTE_MAX + 64];
    v->status = c->status;
    if (c->status == want)
        return true;
    say(v, false, "%s %s answered %s, expected %ld", c->method, c->path, status_text(s, sizeof(s), c), want);
    return false;
}

/* The body as a JSON object (caller deletes), or NULL with the reason in v. */
static cJSON *body_object(verdict *v, const call *c)
{
    const char *end = NULL;
    if (c->resp_len == 0) {
        say(v, false, "%s %s answered %ld with an empty body, expected a JSON object", c->method, c->path, c->status);
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLengthOpts(c->resp, c->resp_len, &end, false);
    if (j && end >= c->resp && end <= c->resp + c->resp_len) { /* only whitespace may follow the value */
        while (end < c->resp + c->resp_len && strchr(" \t\r\n", *end) && *end)
            end++;
        if (end < c->resp + c->resp_len) {
            cJSON_Delete(j);
            j = NULL;
        }
    }
    if (!j) {
        /* the 1-based byte where parsing stopped */
        size_t at = end && end >= c->resp && end < c->resp + c->resp_len ? (size_t)(end - c->resp) + 1 : c->resp_len;
        say(v, false, "%s %s answered %ld with malformed JSON (parse error near byte %zu of %zu)", c->method, c->path,
            c->status, at, c->resp_len);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        say(v, false, "%s %s answered %ld with %s, expected a JSON object", c->method, c->path, c->status,
            json_kind(j));
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* The array at key, or NULL with the reason in v. */
static const cJSON *need_array(verdict *v, const call *c, const cJSON *obj, const char *key)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsArray(a))
        return a;
    if (!a)
        say(v, false, "%s %s answered %ld without the %s array", c->method, c->path, c->status, key);
    else
        say(v, false, "%s %s answered %ld with %s as %s, expected an array", c->method, c->path, c->status, key,
            json_kind(a));
    return NULL;
}

static void judge_status_only(verdict *v, const call *c)
{
    if (status_is(v, c, 200))
        say(v, true, "%s answered 200", c->path);
}

static void judge_datasets(verdict *v, const call *c)
{
    cJSON *b = NULL;
    const cJSON *items, *it;
    size_t i = 0;
    if (!status_is(v, c, 200) || !(b = body_object(v, c)) || !(items = need_array(v, c, b, "items")))
        goto done;
    cJSON_ArrayForEach(it, items) {
        static const char *const keys[] = {"dataset_id", "dataset_version_id"};
        if (!cJSON_IsObject(it)) {
            say(v, false, "%s %s: items[%zu] is %s, expected a dataset object", c->method, c->path, i, json_kind(it));
            goto done;
        }
        for (size_t k = 0; k < 2; k++) {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(it, keys[k]);
            if (!f) {
                say(v, false, "%s %s: items[%zu] has no %s; every dataset needs a non-empty %s", c->method, c->path,
                    i, keys[k], keys[k]);
                goto done;
            }
            if (!cJSON_IsString(f) || !f->valuestring[0]) {
                say(v, false, "%s %s: items[%zu].%s is %s, expected a non-empty string", c->method, c->path, i,
                    keys[k], cJSON_IsString(f) ? "empty" : json_kind(f));
                goto done;
            }
        }
        i++;
    }
    if (i == 0) {
        say(v, false, "%s %s answered 200 with an empty items array: the API listed no datasets, so there is nothing "
            "to show it serves; publish at least one dataset before releasing", c->method, c->path);
        goto done;
    }
    say(v, true, "200 with %zu %s", i, plural(i, "dataset", "datasets"));
done:
    cJSON_Delete(b);
}

static void judge_stac_collections(verdict *v, const call *c)
{
    cJSON *b = NULL;
    const cJSON *a;
    if (status_is(v, c, 200) && (b = body_object(v, c)) && (a = need_array(v, c, b, "collections"))) {
        int n = cJSON_GetArraySize(a);
        say(v, true, "200 with %d %s", n, plural((size_t)n, "collection", "collections"));
    }
    cJSON_Delete(b);
}

static void judge_stac_items(verdict *v, const call *c)
{
    cJSON *b = NULL;
    const cJSON *type, *a;
    char q[QUOTE_MAX + 4];
    if (!status_is(v, c, 200) || !(b = body_object(v, c)))
        goto done;
    type = cJSON_GetObjectItemCaseSensitive(b, "type");
    if (!type) {
        say(v, false, "%s %s answered 200 without type, expected \"FeatureCollection\"", c->method, c->path);
        goto done;
    }
    if (!cJSON_IsString(type)) {
        say(v, false, "%s %s answered 200 with type as %s, expected \"FeatureCollection\"", c->method, c->path,
            json_kind(type));
        goto done;
    }
    if (strcmp(type->valuestring, "FeatureCollection") != 0) {
        say(v, false, "%s %s answered 200 with type \"%s\", expected \"FeatureCollection\"", c->method, c->path,
            quote(q, sizeof(q), type->valuestring));
        goto done;
    }
    if ((a = need_array(v, c, b, "features"))) {
        int n = cJSON_GetArraySize(a);
        say(v, true, "200 FeatureCollection with %d %s", n, plural((size_t)n, "feature", "features"));
    }
done:
    cJSON_Delete(b);
}

static void judge_evidence(verdict *v, const call *c)
{
    cJSON *b = NULL;
    char s[QUOTE_MAX + 64], q[QUOTE_MAX + 4];
    v->status = c->status;
    if (c->status != 200 && c->status != 403) {
        say(v, false, "%s %s answered %s, expected 200 with bundle.evidence or 403 with error.code \"policy_denied\"",
            c->method, c->path, status_text(s, sizeof(s), c));
        return;
    }
    if (!(b = body_object(v, c)))
        return;
    if (c->status == 403) {
        const cJSON *code = json_get(b, "error", "code", NULL);
        if (cJSON_IsString(code) && strcmp(code->valuestring, "policy_denied") == 0)
            say(v, true, "403 policy_denied: the evidence is withheld by policy");
        else if (cJSON_IsString(code))
            say(v, false, "%s %s answered 403 with error.code \"%s\", expected \"policy_denied\"", c->method, c->path,
                quote(q, sizeof(q), code->valuestring));
        else if (!code)
            say(v, false, "%s %s answered 403 without error.code, expected error.code \"policy_denied\"", c->method,
                c->path);
        else
            say(v, false, "%s %s answered 403 with error.code as %s, expected \"policy_denied\"", c->method, c->path,
                json_kind(code));
    } else {
        const cJSON *bundle = cJSON_GetObjectItemCaseSensitive(b, "bundle");
        const cJSON *ev = json_get(b, "bundle", "evidence", NULL);
        if (!bundle)
            say(v, false, "%s %s answered 200 without bundle, expected bundle.evidence with at least one record",
                c->method, c->path);
        else if (!cJSON_IsObject(bundle))
            say(v, false, "%s %s answered 200 with bundle as %s, expected an object with an evidence array",
                c->method, c->path, json_kind(bundle));
        else if (!ev)
            say(v, false, "%s %s answered 200 without bundle.evidence, expected at least one evidence record",
                c->method, c->path);
        else if (!cJSON_IsArray(ev))
            say(v, false, "%s %s answered 200 with bundle.evidence as %s, expected a non-empty array", c->method,
                c->path, json_kind(ev));
        else if (cJSON_GetArraySize(ev) == 0)
            say(v, false, "%s %s answered 200 with an empty bundle.evidence: none of the evidenceRefs resolved",
                c->method, c->path);
        else
            say(v, true, "200 with %d evidence %s", cJSON_GetArraySize(ev),
                plural((size_t)cJSON_GetArraySize(ev), "record", "records"));
    }
    cJSON_Delete(b);
}

/*
 * The index of the first element of citations that is not a non-empty string
 * or a non-empty object, or -1 when every one is; what it is, in *what.
 */
static int citation_bad(const cJSON *cites, char *what, size_t len)
{
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, cites) {
        if (!(cJSON_IsString(e) && e->valuestring[0]) && !(cJSON_IsObject(e) && e->child)) {
            snprintf(what, len, "%s", cJSON_IsString(e) ? "an empty string" : cJSON_IsObject(e) ? "an empty object"
                                                                                                 : json_kind(e));
            return i;
        }
        i++;
    }
    return -1;
}

static void judge_focus(verdict *v, const call *c)
{
    cJSON *b = NULL;
    char q[QUOTE_MAX + 4];
    if (!status_is(v, c, 200) || !(b = body_object(v, c)))
        goto done;
    const cJSON *audit = cJSON_GetObjectItemCaseSensitive(b, "audit_ref");
    const cJSON *cites = cJSON_GetObjectItemCaseSensitive(b, "citations");
    const cJSON *abstained = cJSON_GetObjectItemCaseSensitive(b, "abstained");
    bool has_audit = cJSON_IsString(audit) && audit->valuestring[0];
    char bad_what[32];
    int bad = cJSON_IsArray(cites) ? citation_bad(cites, bad_what, sizeof(bad_what)) : -1;
    bool cited = cJSON_IsArray(cites) && cJSON_GetArraySize(cites) > 0 && bad < 0;
    bool abstain = cJSON_IsTrue(abstained);
    char audit_why[64];

    if (!audit)
        snprintf(audit_why, sizeof(audit_why), "has no audit_ref");
    else if (cJSON_IsString(audit))
        snprintf(audit_why, sizeof(audit_why), "has an empty audit_ref");
    else
        snprintf(audit_why, sizeof(audit_why), "has audit_ref as %s, expected a non-empty string", json_kind(audit));
    if (!cited && !abstain) {
        char why[192];
        if (cites && !cJSON_IsArray(cites))
            snprintf(why, sizeof(why), "answer has citations as %s, not an array, and did not abstain",
                     json_kind(cites));
        else if (bad >= 0)
            snprintf(why, sizeof(why), "answer has citations[%d] as %s, expected a non-empty string or object "
                     "naming a source, and did not abstain", bad, bad_what);
        else
            snprintf(why, sizeof(why), "answer has no citations and did not abstain");
        if (has_audit)
            say(v, false, "%s", why);
        else
            say(v, false, "%s, and it %s", why, audit_why);
    } else if (!has_audit) {
        say(v, false, "answer %s", audit_why);
    } else if (cited) {
        int n = cJSON_GetArraySize(cites);
        say(v, true, "200 with %d %s, audit_ref %s", n, plural((size_t)n, "citation", "citations"),
            quote(q, sizeof(q), audit->valuestring));
    } else {
        say(v, true, "200, abstained, audit_ref %s", quote(q, sizeof(q), audit->valuestring));
    }
done:
    cJSON_Delete(b);
}

static void judge_lineage(verdict *v, const call *c)
{
    cJSON *b = NULL;
    char s[QUOTE_MAX + 64];
    v->status = c->status;
    if (c->status == 404) {
        say(v, true, "not implemented");
        return;
    }
    if (c->status != 200) {
        say(v, false, "%s %s answered %s, expected 200 (or 404: not implemented)", c->method, c->path,
            status_text(s, sizeof(s), c));
        return;
    }
    if ((b = body_object(v, c)))
        say(v, true, "200 lineage status");
    cJSON_Delete(b);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "a, b, c": the object's keys, sorted, as many as fit in buf (then "..."); returns buf. */
static const char *keys_text(char *buf, size_t size, const cJSON *obj)
{
    const cJSON *it;
    size_t n = 0, len = 0;
    const char *keys[32];
    cJSON_ArrayForEach(it, obj) {
        if (n < 32)
            keys[n++] = it->string;
    }
    qsort(keys, n, sizeof(keys[0]), key_cmp);
    snprintf(buf, size, "%s", n ? "" : "none");
    for (size_t i = 0; i < n; i++) {
        char q[48];
        quote(q, sizeof(q), keys[i]);
        if (len + strlen(q) + 2 + 5 >= size || (i == 31 && cJSON_GetArraySize(obj) > 32)) {
            snprintf(buf + len, size - len, "%s...", i ? ", " : "");
            break;
        }
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "", q);
    }
    return buf;
}

static bool same_keys(const cJSON *a, const cJSON *b)
{
    const cJSON *it;
    if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
        return false;
    cJSON_ArrayForEach(it, a) {
        if (!cJSON_GetObjectItemCaseSensitive(b, it->string))
            return false;
    }
    return true;
}

static void judge_public(verdict *v, const job *j, long timeout_ms)
{
    const call *list = &j->calls[0], *restricted = &j->calls[1], *missing = &j->calls[2];
    cJSON *lb = NULL, *rb = NULL, *mb = NULL;
    const cJSON *items, *it;
    char s[QUOTE_MAX + 64], q[QUOTE_MAX + 4], ka[256], kb[256];
    size_t i = 0;

    for (size_t k = 0; k < 3; k++)
        if (transport_failed(v, &j->calls[k], timeout_ms))
            return;
    v->status = list->status;
    if (list->status != 200) {
        say(v, false, "%s %s without credentials answered %s, expected 200 with the public listing", list->method,
            list->path, status_text(s, sizeof(s), list));
        return;
    }
    if (!(lb = body_object(v, list)) || !(items = need_array(v, list, lb, "items")))
        goto done;
    cJSON_ArrayForEach(it, items) {
        const char *id = json_str(it, "dataset_id", NULL);
        const cJSON *label = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "policy_label") : NULL;
        char who[QUOTE_MAX + 32];
        if (id)
            quote(who, sizeof(who), id);
        else
            snprintf(who, sizeof(who), "items[%zu]", i);
        if (cJSON_IsString(label) && strcmp(label->valuestring, "public") == 0) {
            i++;
            continue;
        }
        if (cJSON_IsString(label))
            say(v, false, "the public listing (%s %s without credentials) shows %s with policy_label \"%s\"; only "
                "public datasets may be listed to the public", list->method, list->path, who,
                quote(q, sizeof(q), label->valuestring));
        else if (!label)
            say(v, false, "the public listing (%s %s without credentials) shows %s without a policy_label; only "
                "datasets labelled public may be listed to the public", list->method, list->path, who);
        else
            say(v, false, "the public listing (%s %s without credentials) shows %s with policy_label as %s; only "
                "datasets labelled public may be listed to the public", list->method, list->path, who,
                json_kind(label));
        goto done;
    }

    v->status = restricted->status;
    if (restricted->status >= 200 && restricted->status < 300) {
        say(v, false, "%s %s without credentials answered %ld: the restricted dataset is served to the public",
            restricted->method, restricted->path, restricted->status);
        goto done;
    }
    if (restricted->status != missing->status) {
        say(v, false, "%s %s answered %ld but %s %s (a dataset that cannot exist) answered %ld, without "
            "credentials: %ld vs %ld tells the public that the restricted dataset exists", restricted->method,
            restricted->path, restricted->status, missing->method, missing->path, missing->status,
            restricted->status, missing->status);
        goto done;
    }
    if (!(rb = body_object(v, restricted)))
        goto done;
    v->status = missing->status;
    if (!(mb = body_object(v, missing)))
        goto done;
    v->status = restricted->status;
    if (!same_keys(rb, mb)) {
        say(v, false, "%s %s and %s %s (a dataset that cannot exist) both answered %ld but with different top-level "
            "keys (%s vs %s): the difference tells the public that the restricted dataset exists",
            restricted->method, restricted->path, missing->method, missing->path, restricted->status,
            keys_text(ka, sizeof(ka), rb), keys_text(kb, sizeof(kb), mb));
        goto done;
    }
    say(v, true, "public listing shows %zu public %s; the restricted and a missing dataset both answer %ld with keys %s",
        i, plural(i, "dataset", "datasets"), restricted->status, keys_text(ka, sizeof(ka), rb));
done:
    cJSON_Delete(lb);
    cJSON_Delete(rb);
    cJSON_Delete(mb);
}

static void job_judge(verdict *v, const job *j, long timeout_ms)
{
    const call *c = &j->calls[0];
    memset(v, 0, sizeof(*v));
    if (j->id == CK_PUBLIC) {
        judge_public(v, j, timeout_ms);
        return;
    }
    if (transport_failed(v, c, timeout_ms))
        return;
    switch (j->id) {
    case CK_HEALTH:
    case CK_READY: judge_status_only(v, c); break;
    case CK_DATASETS: judge_datasets(v, c); break;
    case CK_STAC_COLLECTIONS: judge_stac_collections(v, c); break;
    case CK_STAC_ITEMS: judge_stac_items(v, c); break;
    case CK_EVIDENCE: judge_evidence(v, c); break;
    case CK_FOCUS: judge_focus(v, c); break;
    case CK_LINEAGE: judge_lineage(v, c); break;
    case CK_PUBLIC: break;
    }
}

static int result_add(cJSON *results, const job *j, const verdict *v, const char *release_id)
{
    long latency = 0;
    cJSON *r = cJSON_CreateObject();
    for (size_t k = 0; k < j->ncalls; k++)
        if (j->calls[k].latency_ms > latency)
            latency = j->calls[k].latency_ms;
    if (!r || !cJSON_AddStringToObject(r, "name", contract_check_names[j->id]) ||
        !cJSON_AddBoolToObject(r, "passed", v->passed) ||
        (v->status > 0 && v->status <= 999 && !cJSON_AddNumberToObject(r, "httpStatus", (double)v->status)) ||
        !cJSON_AddNumberToObject(r, "latencyMs", (double)latency) ||
        (!v->passed && !cJSON_AddStringToObject(r, "trigger", defs[j->id].trigger)) ||
        !cJSON_AddStringToObject(r, "message", v->msg) || !cJSON_AddItemToArray(results, r)) {
        cJSON_Delete(r);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    MB_LOG(v->passed ? MB_LOG_DEBUG : MB_LOG_INFO, &((mb_log_fields){.release_id = release_id}),
           "contract check %s %s in %ld ms: %s", contract_check_names[j->id], v->passed ? "passed" : "failed",
           latency, v->msg);
    return 0;
}

/* ---- public -------------------------------------------------------------- */

struct contract_run {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    size_t pending;        /* transfers started whose callback has not returned yet; under mu */
    bool finished;         /* every callback and the run's own have returned; under mu */
    job jobs[CONTRACT_N_CHECKS];
    size_t n;
    net_transfer *handles[3 * CONTRACT_N_CHECKS];
    size_t nhandles;
    char *base, *missing, *token;
    char release_id[65];
    long timeout_ms;
    contract_done_fn done;
    void *ctx;
};

static void run_free(contract_run *run)
{
    for (size_t i = 0; i < run->nhandles; i++)
        net_transfer_release(run->handles[i]);
    for (size_t i = 0; i < CONTRACT_N_CHECKS; i++)
        for (size_t k = 0; k < 3; k++)
            call_dispose(&run->jobs[i].calls[k]);
    free(run->base);
    free(run->missing);
    mb_secret_free(run->token);
    pthread_mutex_destroy(&run->mu);
    pthread_cond_destroy(&run->cond);
    free(run);
}

/* A call has ended (on the loop thread): keep what came back; the last one ends the run. */
static void call_done(void *arg, const net_result *r)
{
    call *c = arg;
    contract_run *run = c->run;
    bool last;

    c->outcome = r->outcome;
    c->curl_code = r->curl_code;
    c->status = r->status;
    c->latency_ms = r->latency_ms;
    c->os_errno = r->os_errno;
    c->error = r->error[0] ? strdup(r->error) : NULL;
    if (r->error[0] && !c->error && c->outcome == NET_DONE)
        c->outcome = NET_FAILED;
    if (r->body && r->body_len && !(c->resp = malloc(r->body_len + 1))) {
        c->outcome = NET_FAILED; /* judged as no answer: out of memory */
    } else if (c->resp) {
        memcpy(c->resp, r->body, r->body_len);
        c->resp[r->body_len] = '\0';
        c->resp_len = r->body_len;
    }
    c->done = true;
    pthread_mutex_lock(&run->mu);
    last = --run->pending == 0;
    /* the run is finished before its callback, which may free it (nothing here touches it afterwards) */
    contract_done_fn done = last ? run->done : NULL;
    void *ctx = run->ctx;
    if (last) {
        run->finished = true;
        pthread_cond_broadcast(&run->cond);
    }
    pthread_mutex_unlock(&run->mu);
    if (done)
        done(ctx);
}

static void run_wait(contract_run *run)
{
    pthread_mutex_lock(&run->mu);
    while (!run->finished)
        pthread_cond_wait(&run->cond, &run->mu);
    pthread_mutex_unlock(&run->mu);
}

static int call_start(contract_run *run, call *c, const char *check, net_loop *loop)
{
    int err = 0;
    char *rid = str_printf("X-Request-ID: %s-%s", run->release_id, check);
    const char *headers[] = {"Accept: application/json", rid, NULL};
    net_request req = {
        .kind = "check",
        .method = c->method,
        .url = c->url,
        .headers = headers,
        .body = c->body,
        .body_len = c->body ? strlen(c->body) : 0,
        .token = c->auth ? run->token : NULL,
        .timeout_ms = run->timeout_ms,
        .connect_timeout_ms = run->timeout_ms,
        .max_bytes = CONTRACT_BODY_MAX,
        .keep_body = true,
        .on_done = call_done,
        .ctx = c,
    };
    if (!rid)
        return mb_error_set(MB_ENOMEM, "out of memory");
    c->run = run;
    pthread_mutex_lock(&run->mu);
    run->pending++;
    pthread_mutex_unlock(&run->mu);
    if ((err = net_transfer_start(&run->handles[run->nhandles], loop, &req)) < 0) {
        pthread_mutex_lock(&run->mu);
        run->pending--;
        pthread_mutex_unlock(&run->mu);
    } else {
        run->nhandles++;
    }
    free(rid);
    return err;
}

int contract_checks_start(contract_run **out, net_loop *loop, const contract_input *in, contract_done_fn done,
                          void *ctx)
{
    int err = 0;
    check_id ids[CONTRACT_N_CHECKS];
    size_t n = 0;
    contract_run *run = NULL;

    *out = NULL;
    if ((err = input_checks(ids, &n, in)) < 0 || (err = input_validate(in, ids, n)) < 0)
        return err;
    if (!(run = calloc(1, sizeof(*run))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    pthread_mutex_init(&run->mu, NULL);
    pthread_cond_init(&run->cond, NULL);
    run->pending = 1; /* held while the calls are started, so that none ends the run early */
    run->timeout_ms = in->timeout_ms > 0 ? in->timeout_ms : CONTRACT_TIMEOUT_MS_DEFAULT;
    snprintf(run->release_id, sizeof(run->release_id), "%s", in->release_id);
    size_t blen = strlen(in->base_url);
    while (blen > 0 && in->base_url[blen - 1] == '/')
        blen--;
    if (!(run->base = strndup(in->base_url, blen)) || (in->token && !(run->token = strdup(in->token)))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == CK_PUBLIC && (err = missing_id(&run->missing, in->restricted_dataset_id)) < 0)
            goto done;
    }
    for (size_t i = 0; i < n; i++, run->n++) {
        if ((err = job_setup(&run->jobs[i], ids[i], in, run->base, run->missing)) < 0)
            goto done;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < run->jobs[i].ncalls; k++)
            if ((err = call_start(run, &run->jobs[i].calls[k], contract_check_names[ids[i]], loop)) < 0)
                goto done;
    run->done = done;
    run->ctx = ctx;
done:
    if (err < 0) {
        /* what was started is cancelled, and its callbacks have returned before the run goes */
        for (size_t i = 0; i < run->nhandles; i++)
            net_transfer_cancel(run->handles[i]);
    }
    pthread_mutex_lock(&run->mu);
    bool last = --run->pending == 0;
    if (last)
        run->finished = true;
    pthread_mutex_unlock(&run->mu);
    if (err < 0) {
        run_wait(run);
        run_free(run);
        return err;
    }
    *out = run;
    if (last && done)
        done(ctx); /* every request ended before the start returned: the callback runs here, once */
    return 0;
}

bool contract_run_finished(contract_run *run)
{
    pthread_mutex_lock(&run->mu);
    bool f = run->finished;
    pthread_mutex_unlock(&run->mu);
    return f;
}

void contract_run_cancel(contract_run *run)
{
    for (size_t i = 0; run && i < run->nhandles; i++)
        net_transfer_cancel(run->handles[i]);
}

int contract_run_results(cJSON **out, contract_run *run)
{
    int err = 0;
    cJSON *results = NULL;

    *out = NULL;
    run_wait(run);
    if (!(results = cJSON_CreateArray()))
        return mb_error_set(MB_ENOMEM, "out of memory");
    token_mask(run->jobs, run->n, run->token);
    for (size_t i = 0; i < run->n; i++) {
        verdict v;
        job_judge(&v, &run->jobs[i], run->timeout_ms);
        if ((err = result_add(results, &run->jobs[i], &v, run->release_id)) < 0)
            goto done;
    }
    *out = results;
    results = NULL;
done:
    cJSON_Delete(results);
    return err;
}

void contract_run_free(contract_run *run)
{
    if (!run)
        return;
    contract_run_cancel(run);
    run_wait(run);
    run_free(run);
}

int contract_checks_run(cJSON **out, const contract_input *in)
{
    int err = 0;
    net_loop *own = NULL;
    contract_run *run = NULL;

    *out = NULL;
    if (!in->loop && (err = net_loop_new(&own, NULL)) < 0)
        return err;
    if ((err = contract_checks_start(&run, in->loop ? in->loop : own, in, NULL, NULL)) < 0)
        goto done;
    err = contract_run_results(out, run);
done:
    contract_run_free(run);
    net_loop_free(own);
    return err;
}

int contract_token_read(char **out, kube_client *c, const char *ns, const char *name, const char *key)
{
    int err = 0;
    cJSON *secret = NULL;
    char *token = NULL;
    size_t len = 0;
    cJSON *value;

    *out = NULL;
    if (!name && !key)
        return 0;
    if (!ns || !name || !name[0] || !key || !key[0])
        return mb_error_set(MB_EINVAL, "spec.verification.authSecretRef needs a name and a key (and the release a "
                            "namespace)");
    if ((err = kube_get(&secret, c, &KUBE_SECRETS, ns, name)) < 0) {
        if (err == MB_ENOTFOUND)
            err = mb_error_set(MB_ENOTFOUND, "Secret %s/%s does not exist; create it or fix "
                               "spec.verification.authSecretRef", ns, name);
        else
            err = mb_error_wrap(err, "cannot read Secret %s/%s named by spec.verification.authSecretRef", ns, name);
        goto done;
    }
    value = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(secret, "data"), key);
    if (!cJSON_IsString(value)) {
        err = mb_error_set(MB_ENOTFOUND, "Secret %s/%s has no key \"%s\"; add the key or fix "
                           "spec.verification.authSecretRef", ns, name, key);
        goto done;
    }
    if ((err = mb_base64_decode(&token, &len, value->valuestring)) < 0) {
        if (err == MB_EINVAL)
            err = mb_error_set(MB_EINVAL, "Secret %s/%s key \"%s\" is not valid base64", ns, name, key);
        goto done;
    }
    while (len > 0 && (token[len - 1] == '\n' || token[len - 1] == '\r' || token[len - 1] == ' ' ||
                       token[len - 1] == '\t'))
        token[--len] = '\0';
    if (len == 0) {
        err = mb_error_set(MB_EINVAL, "Secret %s/%s key \"%s\" is empty; put the bearer token there", ns, name, key);
        goto done;
    }
    if (strlen(token) != len || mb_has_control(token)) {
        err = mb_error_set(MB_EINVAL, "Secret %s/%s key \"%s\" holds control characters, so it cannot be sent in an "
                           "Authorization header; store the bare token", ns, name, key);
        goto done;
    }
    *out = token;
    token = NULL;
done:
    if (secret) {
        cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(secret, "data")) {
            if (cJSON_IsString(d))
                OPENSSL_cleanse(d->valuestring, strlen(d->valuestring));
        }
    }
    cJSON_Delete(secret);
    if (token) {
        OPENSSL_cleanse(token, len);
        free(token);
    }
    return err;
}

void contract_token_free(char *token)
{
    mb_secret_free(token);
}

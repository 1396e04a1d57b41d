/*
 * The governed API contract checks of contract.h: the check table, the
 * input validation, the requests (each check becomes one or three transfers
 * on the shared transfer loop, net/transfer.h, all of them started at once,
 * each bounded by the per-request timeout and the body limit) and the
 * results. When the last transfer has ended, the run's callback is called;
 * the results judge each check from its answers (contract_judge.c) into one
 * result object. Also the bearer token read from its Secret.
 */
#include "verify/contract_private.h"
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
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const contract_check_names[CONTRACT_N_CHECKS] = {
    "health",           "ready",     "datasets", "stac-collections",   "stac-items",
    "evidence-resolve", "focus-ask", "lineage",  "public-restriction", "published-only",
};

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
    [CK_PUBLISHED] = {"UnpublishedData", "GET", "/api/v1/datasets", true},
};

const char *contract_check_trigger(const char *name)
{
    for (size_t i = 0; name && i < CONTRACT_N_CHECKS; i++)
        if (strcmp(contract_check_names[i], name) == 0)
            return defs[i].trigger;
    return "SmokeFailure";
}

/* A printf into a new string; NULL when out of memory. */
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

/* ---- input --------------------------------------------------------------- */

static int check_lookup(contract_check_id *out, const char *name)
{
    for (int i = 0; i < CONTRACT_N_CHECKS; i++) {
        if (strcmp(name, contract_check_names[i]) == 0) {
            *out = (contract_check_id)i;
            return 0;
        }
    }
    return mb_error_set(MB_EINVAL,
                        "spec.verification.checks lists \"%s\", which is not a contract check; use health, ready, "
                        "datasets, stac-collections, stac-items, evidence-resolve, focus-ask, lineage, "
                        "public-restriction or published-only",
                        name);
}

/* The checks to run, in order, into ids; *n their number. */
static int input_checks(contract_check_id *ids, size_t *n, const contract_input *in)
{
    int err = 0;
    bool seen[CONTRACT_N_CHECKS] = {false};
    *n = 0;
    if (!in->checks) {
        for (int i = 0; i < CONTRACT_N_CHECKS; i++)
            ids[(*n)++] = (contract_check_id)i;
        return 0;
    }
    if (!cJSON_IsArray(in->checks) || cJSON_GetArraySize(in->checks) == 0)
        return mb_error_set(MB_EINVAL, "spec.verification.checks must be a non-empty list of check names");
    const cJSON *it;
    cJSON_ArrayForEach(it, in->checks) {
        contract_check_id id = CK_HEALTH;
        if (!cJSON_IsString(it))
            return mb_error_set(MB_EINVAL, "spec.verification.checks holds %s; list check names only",
                                contract_json_kind(it));
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

static int input_validate(const contract_input *in, const contract_check_id *ids, size_t n)
{
    if (!in->base_url || (strncmp(in->base_url, "http://", 7) != 0 && strncmp(in->base_url, "https://", 8) != 0) ||
        mb_has_control(in->base_url))
        return mb_error_set(MB_EINVAL,
                            "the verification base URL \"%s\" is not an http:// or https:// URL; "
                            "fix spec.verification.baseURL",
                            in->base_url ? in->base_url : "");
    if (!in->release_id || !in->release_id[0] || mb_has_control(in->release_id) || strlen(in->release_id) > 64)
        return mb_error_set(MB_EINVAL,
                            "the checks need the release ID for X-Request-ID (at most 64 printable characters)");
    if (in->token && (!in->token[0] || mb_has_control(in->token)))
        return mb_error_set(MB_EINVAL,
                            "the bearer token is empty or holds control characters, so it cannot be sent "
                            "in an Authorization header; fix the Secret named by spec.verification.authSecretRef");
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == CK_EVIDENCE && (!cJSON_IsArray(in->evidence_refs) || cJSON_GetArraySize(in->evidence_refs) == 0))
            return mb_error_set(MB_EINVAL,
                                "evidence-resolve needs spec.verification.evidenceRefs (at least one "
                                "reference); add one or remove evidence-resolve from spec.verification.checks");
        if (ids[i] == CK_FOCUS && (!in->focus_question || !in->focus_question[0]))
            return mb_error_set(MB_EINVAL, "focus-ask needs spec.verification.focusQuestion; set one or remove "
                                           "focus-ask from spec.verification.checks");
        if (ids[i] == CK_PUBLIC && (!in->restricted_dataset_id || !in->restricted_dataset_id[0]))
            return mb_error_set(MB_EINVAL,
                                "public-restriction needs spec.verification.restrictedDatasetID; name a "
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
static int call_setup(contract_call *c, const char *base, const char *method, char *path, char *body, bool auth)
{
    c->method = method;
    c->path = path;
    c->body = body;
    c->auth = auth;
    if (!path || !(c->url = str_printf("%s%s", base, path)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    return 0;
}

static void call_dispose(contract_call *c)
{
    free(c->path);
    free(c->url);
    free(c->body);
    batch_answer_dispose(&c->answer);
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

static int job_setup(contract_job *j, contract_check_id id, const contract_input *in, const char *base,
                     const char *missing)
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

static void token_mask(contract_job *jobs, size_t n, const char *token)
{
    size_t tlen = token ? strlen(token) : 0;
    if (tlen < TOKEN_MASK_MIN)
        return;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < jobs[i].ncalls; k++) {
            contract_call *c = &jobs[i].calls[k];
            char *at = c->answer.resp, *end = c->answer.resp + c->answer.resp_len;
            while (at && (at = memmem(at, (size_t)(end - at), token, tlen))) {
                memset(at, '*', tlen);
                at += tlen;
            }
        }
}

static int result_add(cJSON *results, const contract_job *j, const contract_verdict *v, const char *release_id)
{
    long latency = 0;
    cJSON *r = cJSON_CreateObject();
    for (size_t k = 0; k < j->ncalls; k++)
        if (j->calls[k].answer.latency_ms > latency)
            latency = j->calls[k].answer.latency_ms;
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
           "contract check %s %s in %ld ms: %s", contract_check_names[j->id], v->passed ? "passed" : "failed", latency,
           v->msg);
    return 0;
}

/* ---- public -------------------------------------------------------------- */

struct contract_run {
    batch batch;
    contract_job jobs[CONTRACT_N_CHECKS];
    size_t n;
    char *missing;
};

_Static_assert(3 * CONTRACT_N_CHECKS <= BATCH_MAX, "a run's calls fit in one batch");

static void run_free(contract_run *run)
{
    batch_dispose(&run->batch);
    for (size_t i = 0; i < CONTRACT_N_CHECKS; i++)
        for (size_t k = 0; k < 3; k++)
            call_dispose(&run->jobs[i].calls[k]);
    free(run->missing);
    free(run);
}

int contract_checks_start(contract_run **out, net_loop *loop, const contract_input *in, contract_done_fn done,
                          void *ctx)
{
    int err = 0;
    contract_check_id ids[CONTRACT_N_CHECKS];
    size_t n = 0;
    contract_run *run = NULL;

    *out = NULL;
    if ((err = input_checks(ids, &n, in)) < 0 || (err = input_validate(in, ids, n)) < 0)
        return err;
    if (!(run = calloc(1, sizeof(*run))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    if ((err = batch_init(&run->batch, in->base_url, in->token, in->release_id,
                          in->timeout_ms > 0 ? in->timeout_ms : CONTRACT_TIMEOUT_MS_DEFAULT)) < 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == CK_PUBLIC && (err = missing_id(&run->missing, in->restricted_dataset_id)) < 0)
            goto done;
    }
    for (size_t i = 0; i < n; i++, run->n++) {
        if ((err = job_setup(&run->jobs[i], ids[i], in, run->batch.base, run->missing)) < 0)
            goto done;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < run->jobs[i].ncalls; k++) {
            contract_call *c = &run->jobs[i].calls[k];
            batch_request req = {.kind = "check",
                                 .check = contract_check_names[ids[i]],
                                 .method = c->method,
                                 .url = c->url,
                                 .body = c->body,
                                 .auth = c->auth,
                                 .max_bytes = CONTRACT_BODY_MAX};
            if ((err = batch_start(&run->batch, loop, &req, &c->answer)) < 0)
                goto done;
        }
    }
done:
    if (err < 0) {
        /* what was started is cancelled, and its callbacks have returned before the run goes */
        batch_abort(&run->batch);
        run_free(run);
        return err;
    }
    *out = run;
    batch_seal(&run->batch, done, ctx); /* every request may have ended already: done runs here then, once */
    return 0;
}

bool contract_run_finished(contract_run *run)
{
    return batch_finished(&run->batch);
}

void contract_run_cancel(contract_run *run)
{
    if (run)
        batch_cancel(&run->batch);
}

int contract_run_results(cJSON **out, contract_run *run, const contract_index *index)
{
    int err = 0;
    cJSON *results = NULL;

    *out = NULL;
    batch_wait(&run->batch);
    if (!(results = cJSON_CreateArray()))
        return mb_error_set(MB_ENOMEM, "out of memory");
    token_mask(run->jobs, run->n, run->batch.token);
    for (size_t i = 0; i < run->n; i++) {
        contract_verdict v;
        contract_job_judge(&v, &run->jobs[i], run->batch.timeout_ms, index);
        if ((err = result_add(results, &run->jobs[i], &v, run->batch.release_id)) < 0)
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
    batch_wait(&run->batch);
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
    err = contract_run_results(out, run, &in->published);
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
            err = mb_error_set(MB_ENOTFOUND,
                               "Secret %s/%s does not exist; create it or fix "
                               "spec.verification.authSecretRef",
                               ns, name);
        else
            err = mb_error_wrap(err, "cannot read Secret %s/%s named by spec.verification.authSecretRef", ns, name);
        goto done;
    }
    value = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(secret, "data"), key);
    if (!cJSON_IsString(value)) {
        err = mb_error_set(MB_ENOTFOUND,
                           "Secret %s/%s has no key \"%s\"; add the key or fix "
                           "spec.verification.authSecretRef",
                           ns, name, key);
        goto done;
    }
    if ((err = mb_base64_decode(&token, &len, value->valuestring)) < 0) {
        if (err == MB_EINVAL)
            err = mb_error_set(MB_EINVAL, "Secret %s/%s key \"%s\" is not valid base64", ns, name, key);
        goto done;
    }
    while (len > 0 &&
           (token[len - 1] == '\n' || token[len - 1] == '\r' || token[len - 1] == ' ' || token[len - 1] == '\t'))
        token[--len] = '\0';
    if (len == 0) {
        err = mb_error_set(MB_EINVAL, "Secret %s/%s key \"%s\" is empty; put the bearer token there", ns, name, key);
        goto done;
    }
    if (strlen(token) != len || mb_has_control(token)) {
        err = mb_error_set(MB_EINVAL,
                           "Secret %s/%s key \"%s\" holds control characters, so it cannot be sent in an "
                           "Authorization header; store the bare token",
                           ns, name, key);
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

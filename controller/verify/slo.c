/*
 * The slo check of slo.h: the spec's validation, the query substitution and
 * the judge of Prometheus's answer (pure), then the run: one instant query
 * per objective on the shared transfer loop, all started at once, each
 * bounded by the verification timeout and SLO_BODY_MAX, and the one result
 * that judges them all.
 */
#include "verify/slo.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"
#include "util/text.h"
#include "verify/batch.h"
#include "verify/contract.h"

#include <curl/curl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F "spec.verification.slo"

/* ---- the spec ------------------------------------------------------------ */

static bool invalid(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool invalid(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return false;
}

/* The first {{...}} in query that is neither {{digest}} nor {{window}} into bad (NUL when none). */
static void placeholder_unknown(char *bad, size_t len, const char *query)
{
    const char *at = query;
    bad[0] = '\0';
    while ((at = strstr(at, "{{")) != NULL) {
        if (strncmp(at, "{{digest}}", 10) == 0) {
            at += 10;
        } else if (strncmp(at, "{{window}}", 10) == 0) {
            at += 10;
        } else {
            const char *end = strstr(at + 2, "}}");
            int n = end ? (int)(end + 2 - at) : (int)strlen(at);
            snprintf(bad, len, "%.*s", n > 40 ? 40 : n, at);
            return;
        }
    }
}

long long slo_window_seconds(const cJSON *slo)
{
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(slo, "windowSeconds");
    return cJSON_IsNumber(w) ? (long long)w->valuedouble : SLO_WINDOW_SECONDS_DEFAULT;
}

bool slo_spec_valid(char *why, size_t len, const cJSON *slo)
{
    char bad[48];
    if (!cJSON_IsObject(slo))
        return invalid(why, len, F " must be an object with prometheusURL and objectives");
    const char *url = json_str(slo, "prometheusURL", NULL);
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) || mb_has_control(url) ||
        strchr(url, '?') || strchr(url, '#') || strlen(url) > 2048)
        return invalid(why, len,
                       F ".prometheusURL \"%.200s\" is not an http:// or https:// URL without query or fragment; set "
                         "it to Prometheus's address, e.g. http://prometheus.monitoring.svc:9090",
                       url ? url : "");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(slo, "windowSeconds");
    if (w && (!cJSON_IsNumber(w) || w->valuedouble != floor(w->valuedouble) || w->valuedouble < 1 ||
              w->valuedouble > SLO_WINDOW_SECONDS_MAX))
        return invalid(why, len, F ".windowSeconds must be a whole number of seconds between 1 and %d",
                       SLO_WINDOW_SECONDS_MAX);
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(slo, "authSecretRef");
    if (ref && (!json_str(ref, "name", NULL) || !json_str(ref, "name", NULL)[0] || !json_str(ref, "key", NULL) ||
                !json_str(ref, "key", NULL)[0]))
        return invalid(why, len, F ".authSecretRef needs a name and a key (the Secret holding Prometheus's token)");
    const cJSON *objs = cJSON_GetObjectItemCaseSensitive(slo, "objectives");
    int n = cJSON_IsArray(objs) ? cJSON_GetArraySize(objs) : 0;
    if (n == 0)
        return invalid(why, len, F ".objectives is %s; list at least one objective {name, query, max}",
                       objs ? (cJSON_IsArray(objs) ? "empty" : "not a list") : "missing");
    if (n > SLO_OBJECTIVES_MAX)
        return invalid(why, len, F ".objectives lists %d objectives; at most %d are allowed", n, SLO_OBJECTIVES_MAX);
    for (int i = 0; i < n; i++) {
        const cJSON *o = cJSON_GetArrayItem(objs, i);
        const char *name = json_str(o, "name", NULL), *query = json_str(o, "query", NULL);
        const cJSON *max = cJSON_GetObjectItemCaseSensitive(o, "max");
        if (!name || !name[0] || mb_has_control(name) || strlen(name) > 63)
            return invalid(why, len, F ".objectives[%d].name must be a non-empty name of at most 63 characters", i);
        for (int k = 0; k < i; k++)
            if (strcmp(name, json_str(cJSON_GetArrayItem(objs, k), "name", NULL)) == 0)
                return invalid(why, len, F ".objectives[%d].name \"%s\" is used twice; name each objective once", i,
                               name);
        if (!query || !query[0] || strlen(query) > SLO_QUERY_MAX)
            return invalid(why, len, F ".objectives[%d].query (%s) must be a PromQL query of 1 to %d bytes", i, name,
                           SLO_QUERY_MAX);
        placeholder_unknown(bad, sizeof(bad), query);
        if (bad[0])
            return invalid(why, len,
                           F ".objectives[%d].query (%s) holds %s; the only placeholders are {{digest}} and "
                             "{{window}}",
                           i, name, bad);
        if (!cJSON_IsNumber(max) || !isfinite(max->valuedouble))
            return invalid(why, len,
                           F ".objectives[%d].max (%s) is %s, not a number; write the bound as a number, e.g. max: "
                             "0.01",
                           i, name, max ? (cJSON_IsString(max) ? "a string" : "not a finite number") : "missing");
    }
    return true;
}

int slo_query_expand(char **out, const char *query, const char *digest, long long window_seconds)
{
    char bad[48], window[32];
    size_t dlen = digest ? strlen(digest) : 0, wlen, cap, n = 0;
    char *s = NULL;

    *out = NULL;
    placeholder_unknown(bad, sizeof(bad), query);
    if (bad[0])
        return mb_error_set(MB_EINVAL, "the query holds %s; the only placeholders are {{digest}} and {{window}}", bad);
    wlen = (size_t)snprintf(window, sizeof(window), "%llds", window_seconds);
    cap = strlen(query) + 1;
    for (const char *at = query; (at = strstr(at, "{{")) != NULL; at += 2)
        cap += (dlen > wlen ? dlen : wlen);
    if (!(s = malloc(cap)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    for (const char *at = query; *at;) {
        if (strncmp(at, "{{digest}}", 10) == 0) {
            memcpy(s + n, digest ? digest : "", dlen);
            n += dlen;
            at += 10;
        } else if (strncmp(at, "{{window}}", 10) == 0) {
            memcpy(s + n, window, wlen);
            n += wlen;
            at += 10;
        } else {
            s[n++] = *at++;
        }
    }
    s[n] = '\0';
    *out = s;
    return 0;
}

/* ---- the judge ----------------------------------------------------------- */

static void verdict(slo_verdict *v, slo_state state, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void verdict(slo_verdict *v, slo_state state, const char *fmt, ...)
{
    va_list ap;
    v->state = state;
    va_start(ap, fmt);
    vsnprintf(v->msg, sizeof(v->msg), fmt, ap);
    va_end(ap);
}

/* A sample's value as Prometheus writes it (a string: "0.25", "NaN", "+Inf"); false when it is not a number. */
static bool sample_value(double *out, const char *s)
{
    char *end = NULL;
    if (!s || !*s)
        return false;
    *out = strtod(s, &end);
    return end && *end == '\0';
}

void slo_answer_judge(slo_verdict *v, long status, const char *body, size_t len, double max)
{
    cJSON *j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    const char *st = json_str(j, "status", NULL);
    const cJSON *data = json_get(j, "data", NULL);
    const char *type = json_str(data, "resultType", NULL);
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(data, "result");
    double value = 0;

    memset(v, 0, sizeof(*v));
    v->state = SLO_UNJUDGED;
    if (st && strcmp(st, "error") == 0) {
        verdict(v, SLO_UNJUDGED, "Prometheus answered %ld with an error: %.40s: %.300s", status,
                json_str(j, "errorType", NULL) ? json_str(j, "errorType", NULL) : "no errorType",
                json_str(j, "error", NULL) ? json_str(j, "error", NULL) : "no error message");
    } else if (status != 200) {
        verdict(v, SLO_UNJUDGED, "Prometheus answered HTTP %ld, not 200 (is prometheusURL Prometheus's address?)",
                status);
    } else if (!cJSON_IsObject(j)) {
        verdict(v, SLO_UNJUDGED, "the answer is not Prometheus's JSON (is prometheusURL Prometheus's address?)");
    } else if (!st || strcmp(st, "success") != 0) {
        verdict(v, SLO_UNJUDGED, "the answer's status is %s%.40s%s, not success", st ? "\"" : "", st ? st : "missing",
                st ? "\"" : "");
    } else if (!type) {
        verdict(v, SLO_UNJUDGED, "the answer has no data.resultType");
    } else if (strcmp(type, "scalar") == 0) {
        verdict(v, SLO_UNJUDGED,
                "the query returns a scalar, not an instant vector of one sample; return a vector (e.g. the "
                "aggregation itself, not scalar(...))");
    } else if (strcmp(type, "matrix") == 0) {
        verdict(v, SLO_UNJUDGED,
                "the query returns a range vector (matrix), not an instant vector of one sample; wrap the [range] "
                "in a function such as rate() and aggregate it");
    } else if (strcmp(type, "vector") != 0) {
        verdict(v, SLO_UNJUDGED, "the query returns a %.20s, not an instant vector of one sample", type);
    } else if (!cJSON_IsArray(result)) {
        verdict(v, SLO_UNJUDGED, "the answer's data.result is not a list of samples");
    } else if (cJSON_GetArraySize(result) == 0) {
        verdict(v, SLO_UNJUDGED,
                "an empty vector: no series matched the query (check its labels, and that the window spans at "
                "least two scrapes)");
    } else if (cJSON_GetArraySize(result) > 1) {
        verdict(v, SLO_UNJUDGED, "%d series, not one; aggregate the query to a single series (e.g. sum(...))",
                cJSON_GetArraySize(result));
    } else {
        const cJSON *pair = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(result, 0), "value");
        const cJSON *s = cJSON_GetArrayItem(pair, 1);
        if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 || !cJSON_IsString(s) ||
            !sample_value(&value, s->valuestring))
            verdict(v, SLO_UNJUDGED, "the sample's value is not a [time, \"number\"] pair");
        else if (isnan(value))
            verdict(v, SLO_UNJUDGED, "the value is NaN (no traffic in the window makes 0/0)");
        else if (isinf(value))
            verdict(v, SLO_UNJUDGED, "the value is %s, not a finite number", value > 0 ? "+Inf" : "-Inf");
        else if (value <= max) {
            v->value = value;
            verdict(v, SLO_MET, "%.6g <= max %.6g", value, max);
        } else {
            v->value = value;
            verdict(v, SLO_BREACHED, "%.6g > max %.6g", value, max);
        }
    }
    cJSON_Delete(j);
}

/* ---- the run ------------------------------------------------------------- */

typedef struct {
    char *name, *query, *url;
    double max;
    batch_answer answer;
} slo_call;

struct slo_run {
    batch batch;
    slo_call calls[SLO_OBJECTIVES_MAX];
    size_t n;
};

_Static_assert(SLO_OBJECTIVES_MAX <= BATCH_MAX, "a run's queries fit in one batch");

static void run_free(slo_run *run)
{
    batch_dispose(&run->batch);
    for (size_t i = 0; i < run->n; i++) {
        slo_call *c = &run->calls[i];
        free(c->name);
        free(c->query);
        free(c->url);
        batch_answer_dispose(&c->answer);
    }
    free(run);
}

static int call_setup(slo_call *c, const cJSON *o, const char *base, const char *digest, long long window)
{
    int err = 0;
    char *esc = NULL;
    if (!(c->name = strdup(json_str(o, "name", NULL))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    c->max = cJSON_GetObjectItemCaseSensitive(o, "max")->valuedouble;
    if ((err = slo_query_expand(&c->query, json_str(o, "query", NULL), digest, window)) < 0)
        return err;
    if (!(esc = curl_easy_escape(NULL, c->query, 0)) || asprintf(&c->url, "%s/api/v1/query?query=%s", base, esc) < 0) {
        c->url = NULL;
        err = mb_error_set(MB_ENOMEM, "out of memory");
    }
    curl_free(esc);
    return err;
}

int slo_check_start(slo_run **out, net_loop *loop, const slo_input *in, slo_done_fn done, void *ctx)
{
    int err = 0;
    char why[CONTRACT_MESSAGE_MAX];
    slo_run *run = NULL;

    *out = NULL;
    if (!slo_spec_valid(why, sizeof(why), in->slo))
        return mb_error_set(MB_EINVAL, "%s", why);
    if (!in->digest || !in->digest[0] || mb_has_control(in->digest))
        return mb_error_set(MB_EINVAL, "the slo check needs the digest the Deployment runs, for {{digest}}");
    if (!in->release_id || !in->release_id[0] || mb_has_control(in->release_id) || strlen(in->release_id) > 64)
        return mb_error_set(MB_EINVAL, "the slo check needs the release ID for X-Request-ID");
    if (in->token && (!in->token[0] || mb_has_control(in->token)))
        return mb_error_set(MB_EINVAL, "the Prometheus token is empty or holds control characters; fix the Secret "
                                       "named by " F ".authSecretRef");
    if (!(run = calloc(1, sizeof(*run))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    if ((err = batch_init(&run->batch, json_str(in->slo, "prometheusURL", NULL), in->token, in->release_id,
                          in->timeout_ms > 0 ? in->timeout_ms : CONTRACT_TIMEOUT_MS_DEFAULT)) < 0)
        goto done;
    const cJSON *o;
    long long window = slo_window_seconds(in->slo);
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(in->slo, "objectives")) {
        run->n++;
        if ((err = call_setup(&run->calls[run->n - 1], o, run->batch.base, in->digest, window)) < 0)
            goto done;
    }
    for (size_t i = 0; i < run->n; i++) {
        batch_request req = {.kind = "prometheus",
                             .check = SLO_CHECK_NAME,
                             .method = "GET",
                             .url = run->calls[i].url,
                             .auth = true,
                             .max_bytes = SLO_BODY_MAX};
        if ((err = batch_start(&run->batch, loop, &req, &run->calls[i].answer)) < 0)
            goto done;
    }
done:
    if (err < 0) {
        batch_abort(&run->batch);
        run_free(run);
        return err;
    }
    *out = run;
    batch_seal(&run->batch, done, ctx); /* every query may have ended already: done runs here then, once */
    return 0;
}

bool slo_run_finished(slo_run *run)
{
    return batch_finished(&run->batch);
}

void slo_run_cancel(slo_run *run)
{
    if (run)
        batch_cancel(&run->batch);
}

/* An objective's verdict from its call: the answer judged, or why no answer came. */
static void call_judge(slo_verdict *v, const slo_call *c, const char *base, long timeout_ms)
{
    const batch_answer *a = &c->answer;
    memset(v, 0, sizeof(*v));
    switch (a->outcome) {
    case NET_DONE: slo_answer_judge(v, a->status, a->resp, a->resp_len, c->max); return;
    case NET_TIMEOUT:
    case NET_STALLED:
        verdict(v, SLO_UNJUDGED, "Prometheus at %.200s did not answer within %ld ms", base, timeout_ms);
        return;
    case NET_TOO_BIG: verdict(v, SLO_UNJUDGED, "Prometheus's answer is larger than %ld bytes", SLO_BODY_MAX); return;
    case NET_CANCELLED: verdict(v, SLO_UNJUDGED, "the query was cancelled before Prometheus answered"); return;
    default: {
        /* the transfer loop's sentence names the URL, which holds the whole query again: keep what follows it */
        const char *why = a->error ? a->error : "the request failed";
        const char *at = c->url ? strstr(why, c->url) : NULL;
        if (at) {
            why = at + strlen(c->url);
            if (strncmp(why, " failed: ", 9) == 0)
                why += 9;
            else
                while (*why == ' ')
                    why++;
        }
        verdict(v, SLO_UNJUDGED, "Prometheus at %.200s cannot be queried: %.250s", base,
                *why ? why : "the request failed");
        return;
    }
    }
}

/* Appends to buf (NUL-terminated, size cap); the end is marked with "..." when it does not fit. */
static void append(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(buf);
    va_list ap;
    if (n + 1 >= cap)
        return;
    va_start(ap, fmt);
    int w = vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
    if (w >= 0 && (size_t)w >= cap - n && cap > 4)
        memcpy(buf + cap - 4, "...", 4);
}

static cJSON *result_object(bool passed, long status, long latency, const char *msg)
{
    cJSON *r = cJSON_CreateObject();
    if (!r || !cJSON_AddStringToObject(r, "name", SLO_CHECK_NAME) || !cJSON_AddBoolToObject(r, "passed", passed) ||
        (status > 0 && status <= 999 && !cJSON_AddNumberToObject(r, "httpStatus", (double)status)) ||
        !cJSON_AddNumberToObject(r, "latencyMs", (double)latency) ||
        (!passed && !cJSON_AddStringToObject(r, "trigger", SLO_TRIGGER)) ||
        !cJSON_AddStringToObject(r, "message", msg)) {
        cJSON_Delete(r);
        return NULL;
    }
    return r;
}

cJSON *slo_result_failed(const char *why)
{
    return result_object(false, 0, 0, why);
}

int slo_run_result(cJSON **out, slo_run *run)
{
    slo_verdict v[SLO_OBJECTIVES_MAX];
    char msg[CONTRACT_MESSAGE_MAX] = "";
    long latency = 0, status = 0;
    size_t failed = 0;

    *out = NULL;
    batch_wait(&run->batch);
    for (size_t i = 0; i < run->n; i++) {
        call_judge(&v[i], &run->calls[i], run->batch.base, run->batch.timeout_ms);
        if (run->calls[i].answer.latency_ms > latency)
            latency = run->calls[i].answer.latency_ms;
        if (v[i].state != SLO_MET && failed++ == 0)
            status = run->calls[i].answer.status;
    }
    if (!failed && run->n)
        status = run->calls[run->n - 1].answer.status;
    /* the failed objectives first, so that a long message keeps them */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < run->n; i++) {
            if ((v[i].state == SLO_MET) != (pass == 1))
                continue;
            static const char *const said[] =
                {[SLO_MET] = "met", [SLO_BREACHED] = "breached", [SLO_UNJUDGED] = "cannot be judged"};
            append(msg, sizeof(msg), "%s%s %s: %s (query: %s)", msg[0] ? "; " : "", run->calls[i].name,
                   said[v[i].state], v[i].msg, run->calls[i].query);
        }
    }
    MB_LOG(failed ? MB_LOG_INFO : MB_LOG_DEBUG, &((mb_log_fields){.release_id = run->batch.release_id}),
           "slo check %s in %ld ms: %s", failed ? "failed" : "passed", latency, msg);
    if (!(*out = result_object(failed == 0, status, latency, msg)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    return 0;
}

void slo_run_free(slo_run *run)
{
    if (!run)
        return;
    slo_run_cancel(run);
    batch_wait(&run->batch);
    run_free(run);
}

/*
 * The judges of the governed API contract checks (contract.h, API.md's table
 * of checks): each turns the answers of one check, as contract.c gathered
 * them on the transfer loop, into one verdict (passed, the status it is
 * about, a message that names what was wrong). Pure: no I/O, no globals, no
 * allocation that outlives a call. Untrusted text is quoted short, cut at a
 * UTF-8 boundary, control characters replaced.
 */
#include "verify/contract_private.h"
#include "util/json.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUOTE_MAX 120 /* bytes of untrusted text quoted in a message */

/* ---- small helpers ------------------------------------------------------- */

static void say(contract_verdict *v, bool passed, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Sets the verdict; a message too long for the CRD is cut at a UTF-8 character boundary with "...". */
static void say(contract_verdict *v, bool passed, const char *fmt, ...)
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

const char *contract_json_kind(const cJSON *j)
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

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
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
static bool transport_failed(contract_verdict *v, const contract_call *c, long timeout_ms)
{
    char t[32];
    if (c->answer.outcome == NET_DONE)
        return false;
    v->status = c->answer.status;
    if (c->answer.outcome == NET_TOO_BIG) {
        say(v, false, "%s %s answered more than %ld MiB; the check reads at most that much", c->method, c->url,
            CONTRACT_BODY_MAX / (1024 * 1024));
        return true;
    }
    switch (c->answer.outcome == NET_TIMEOUT || c->answer.outcome == NET_STALLED ? CURLE_OPERATION_TIMEDOUT
                                                                                 : c->answer.curl_code) {
    case CURLE_OPERATION_TIMEDOUT:
        timeout_text(t, sizeof(t), timeout_ms);
        say(v, false, "%s %s did not answer within %s (spec.verification.timeoutSeconds)", c->method, c->url, t);
        break;
    case CURLE_COULDNT_CONNECT:
        say(v, false,
            "could not connect to %s: %s; check that the API's Service is up and spec.verification.baseURL "
            "is right",
            c->url, c->answer.os_errno ? strerror((int)c->answer.os_errno) : "connection failed");
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        say(v, false, "could not resolve the host of %s; check spec.verification.baseURL and the API's Service",
            c->url);
        break;
    default:
        say(v, false, "%s", c->answer.error && c->answer.error[0] ? c->answer.error : "the request got no answer");
        break;
    }
    return true;
}

/* "503 (body: {...})": the status with a short quote of the body, for failures. */
static const char *status_text(char *buf, size_t size, const contract_call *c)
{
    char q[QUOTE_MAX + 4];
    if (c->answer.resp_len == 0)
        snprintf(buf, size, "%ld", c->answer.status);
    else
        snprintf(buf, size, "%ld (body: %s)", c->answer.status, quote(q, sizeof(q), c->answer.resp));
    return buf;
}

static bool status_is(contract_verdict *v, const contract_call *c, long want)
{
    char s[QUOTE_MAX + 64];
    v->status = c->answer.status;
    if (c->answer.status == want)
        return true;
    say(v, false, "%s %s answered %s, expected %ld", c->method, c->path, status_text(s, sizeof(s), c), want);
    return false;
}

/* The body as a JSON object (caller deletes), or NULL with the reason in v. */
static cJSON *body_object(contract_verdict *v, const contract_call *c)
{
    const batch_answer *a = &c->answer;
    const char *end = NULL;
    if (a->resp_len == 0) {
        say(v, false, "%s %s answered %ld with an empty body, expected a JSON object", c->method, c->path, a->status);
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLengthOpts(a->resp, a->resp_len, &end, false);
    if (j && end >= a->resp && end <= a->resp + a->resp_len) { /* only whitespace may follow the value */
        while (end < a->resp + a->resp_len && strchr(" \t\r\n", *end) && *end)
            end++;
        if (end < a->resp + a->resp_len) {
            cJSON_Delete(j);
            j = NULL;
        }
    }
    if (!j) {
        /* the 1-based byte where parsing stopped */
        size_t at = end && end >= a->resp && end < a->resp + a->resp_len ? (size_t)(end - a->resp) + 1 : a->resp_len;
        say(v, false, "%s %s answered %ld with malformed JSON (parse error near byte %zu of %zu)", c->method, c->path,
            a->status, at, a->resp_len);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        say(v, false, "%s %s answered %ld with %s, expected a JSON object", c->method, c->path, a->status,
            contract_json_kind(j));
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* The array at key, or NULL with the reason in v. */
static const cJSON *need_array(contract_verdict *v, const contract_call *c, const cJSON *obj, const char *key)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsArray(a))
        return a;
    if (!a)
        say(v, false, "%s %s answered %ld without the %s array", c->method, c->path, c->answer.status, key);
    else
        say(v, false, "%s %s answered %ld with %s as %s, expected an array", c->method, c->path, c->answer.status, key,
            contract_json_kind(a));
    return NULL;
}

static void judge_status_only(contract_verdict *v, const contract_call *c)
{
    if (status_is(v, c, 200))
        say(v, true, "%s answered 200", c->path);
}

static void judge_datasets(contract_verdict *v, const contract_call *c)
{
    cJSON *b = NULL;
    const cJSON *items, *it;
    size_t i = 0;
    if (!status_is(v, c, 200) || !(b = body_object(v, c)) || !(items = need_array(v, c, b, "items")))
        goto done;
    cJSON_ArrayForEach(it, items) {
        static const char *const keys[] = {"dataset_id", "dataset_version_id"};
        if (!cJSON_IsObject(it)) {
            say(v, false, "%s %s: items[%zu] is %s, expected a dataset object", c->method, c->path, i,
                contract_json_kind(it));
            goto done;
        }
        for (size_t k = 0; k < 2; k++) {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(it, keys[k]);
            if (!f) {
                say(v, false, "%s %s: items[%zu] has no %s; every dataset needs a non-empty %s", c->method, c->path, i,
                    keys[k], keys[k]);
                goto done;
            }
            if (!cJSON_IsString(f) || !f->valuestring[0]) {
                say(v, false, "%s %s: items[%zu].%s is %s, expected a non-empty string", c->method, c->path, i, keys[k],
                    cJSON_IsString(f) ? "empty" : contract_json_kind(f));
                goto done;
            }
        }
        i++;
    }
    if (i == 0) {
        say(v, false,
            "%s %s answered 200 with an empty items array: the API listed no datasets, so there is nothing "
            "to show it serves; publish at least one dataset before releasing",
            c->method, c->path);
        goto done;
    }
    say(v, true, "200 with %zu %s", i, plural(i, "dataset", "datasets"));
done:
    cJSON_Delete(b);
}

static void judge_stac_collections(contract_verdict *v, const contract_call *c)
{
    cJSON *b = NULL;
    const cJSON *a;
    if (status_is(v, c, 200) && (b = body_object(v, c)) && (a = need_array(v, c, b, "collections"))) {
        int n = cJSON_GetArraySize(a);
        say(v, true, "200 with %d %s", n, plural((size_t)n, "collection", "collections"));
    }
    cJSON_Delete(b);
}

static void judge_stac_items(contract_verdict *v, const contract_call *c)
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
            contract_json_kind(type));
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

static void judge_evidence(contract_verdict *v, const contract_call *c)
{
    cJSON *b = NULL;
    char s[QUOTE_MAX + 64], q[QUOTE_MAX + 4];
    v->status = c->answer.status;
    if (c->answer.status != 200 && c->answer.status != 403) {
        say(v, false, "%s %s answered %s, expected 200 with bundle.evidence or 403 with error.code \"policy_denied\"",
            c->method, c->path, status_text(s, sizeof(s), c));
        return;
    }
    if (!(b = body_object(v, c)))
        return;
    if (c->answer.status == 403) {
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
                contract_json_kind(code));
    } else {
        const cJSON *bundle = cJSON_GetObjectItemCaseSensitive(b, "bundle");
        const cJSON *ev = json_get(b, "bundle", "evidence", NULL);
        if (!bundle)
            say(v, false, "%s %s answered 200 without bundle, expected bundle.evidence with at least one record",
                c->method, c->path);
        else if (!cJSON_IsObject(bundle))
            say(v, false, "%s %s answered 200 with bundle as %s, expected an object with an evidence array", c->method,
                c->path, contract_json_kind(bundle));
        else if (!ev)
            say(v, false, "%s %s answered 200 without bundle.evidence, expected at least one evidence record",
                c->method, c->path);
        else if (!cJSON_IsArray(ev))
            say(v, false, "%s %s answered 200 with bundle.evidence as %s, expected a non-empty array", c->method,
                c->path, contract_json_kind(ev));
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
            snprintf(what, len, "%s",
                     cJSON_IsString(e)   ? "an empty string"
                     : cJSON_IsObject(e) ? "an empty object"
                                         : contract_json_kind(e));
            return i;
        }
        i++;
    }
    return -1;
}

static void judge_focus(contract_verdict *v, const contract_call *c)
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
        snprintf(audit_why, sizeof(audit_why), "has audit_ref as %s, expected a non-empty string",
                 contract_json_kind(audit));
    if (!cited && !abstain) {
        char why[192];
        if (cites && !cJSON_IsArray(cites))
            snprintf(why, sizeof(why), "answer has citations as %s, not an array, and did not abstain",
                     contract_json_kind(cites));
        else if (bad >= 0)
            snprintf(why, sizeof(why),
                     "answer has citations[%d] as %s, expected a non-empty string or object "
                     "naming a source, and did not abstain",
                     bad, bad_what);
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

static void judge_lineage(contract_verdict *v, const contract_call *c)
{
    cJSON *b = NULL;
    char s[QUOTE_MAX + 64];
    v->status = c->answer.status;
    if (c->answer.status == 404) {
        say(v, true, "not implemented");
        return;
    }
    if (c->answer.status != 200) {
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

static void judge_public(contract_verdict *v, const contract_job *j, long timeout_ms)
{
    const contract_call *list = &j->calls[0], *restricted = &j->calls[1], *missing = &j->calls[2];
    cJSON *lb = NULL, *rb = NULL, *mb = NULL;
    const cJSON *items, *it;
    char s[QUOTE_MAX + 64], q[QUOTE_MAX + 4], ka[256], kb[256];
    size_t i = 0;

    for (size_t k = 0; k < 3; k++)
        if (transport_failed(v, &j->calls[k], timeout_ms))
            return;
    v->status = list->answer.status;
    if (list->answer.status != 200) {
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
            say(v, false,
                "the public listing (%s %s without credentials) shows %s with policy_label \"%s\"; only "
                "public datasets may be listed to the public",
                list->method, list->path, who, quote(q, sizeof(q), label->valuestring));
        else if (!label)
            say(v, false,
                "the public listing (%s %s without credentials) shows %s without a policy_label; only "
                "datasets labelled public may be listed to the public",
                list->method, list->path, who);
        else
            say(v, false,
                "the public listing (%s %s without credentials) shows %s with policy_label as %s; only "
                "datasets labelled public may be listed to the public",
                list->method, list->path, who, contract_json_kind(label));
        goto done;
    }

    v->status = restricted->answer.status;
    if (restricted->answer.status >= 200 && restricted->answer.status < 300) {
        say(v, false, "%s %s without credentials answered %ld: the restricted dataset is served to the public",
            restricted->method, restricted->path, restricted->answer.status);
        goto done;
    }
    if (restricted->answer.status != missing->answer.status) {
        say(v, false,
            "%s %s answered %ld but %s %s (a dataset that cannot exist) answered %ld, without "
            "credentials: %ld vs %ld tells the public that the restricted dataset exists",
            restricted->method, restricted->path, restricted->answer.status, missing->method, missing->path,
            missing->answer.status, restricted->answer.status, missing->answer.status);
        goto done;
    }
    if (!(rb = body_object(v, restricted)))
        goto done;
    v->status = missing->answer.status;
    if (!(mb = body_object(v, missing)))
        goto done;
    v->status = restricted->answer.status;
    if (!same_keys(rb, mb)) {
        say(v, false,
            "%s %s and %s %s (a dataset that cannot exist) both answered %ld but with different top-level "
            "keys (%s vs %s): the difference tells the public that the restricted dataset exists",
            restricted->method, restricted->path, missing->method, missing->path, restricted->answer.status,
            keys_text(ka, sizeof(ka), rb), keys_text(kb, sizeof(kb), mb));
        goto done;
    }
    say(v, true,
        "public listing shows %zu public %s; the restricted and a missing dataset both answer %ld with keys %s", i,
        plural(i, "dataset", "datasets"), restricted->answer.status, keys_text(ka, sizeof(ka), rb));
done:
    cJSON_Delete(lb);
    cJSON_Delete(rb);
    cJSON_Delete(mb);
}

/* ---- published-only ------------------------------------------------------ */

#define PUBLISHED_NAMED_MAX 5 /* unpublished versions named in a message; the rest are counted */
#define PUBLISHED_ID_QUOTE 72 /* bytes of a dataset id or version quoted */

/* How one listed version stands in the index: promoted, not (another version, no entry, another label), or unreadable. */
typedef enum { PUB_OK, PUB_UNPUBLISHED, PUB_MALFORMED } pub_state;

/*
 * The entry of id in index->data judged for version and label (the listed
 * policy_label, NULL: none listed). PUB_UNPUBLISHED: why says how the index
 * differs; PUB_MALFORMED: why says what the entry is instead of an entry.
 */
static pub_state published_entry(char *why, size_t size, const contract_index *index, const char *id,
                                 const char *version, const cJSON *label)
{
    const cJSON *text = index->data ? cJSON_GetObjectItemCaseSensitive(index->data, id) : NULL;
    char q[PUBLISHED_ID_QUOTE + 4], q2[PUBLISHED_ID_QUOTE + 4];
    pub_state st = PUB_OK;
    cJSON *e = NULL;

    if (!text) {
        snprintf(why, size, "no entry");
        return PUB_UNPUBLISHED;
    }
    if (!cJSON_IsString(text) || !(e = cJSON_Parse(text->valuestring))) {
        snprintf(why, size, "text that is not JSON");
        return PUB_MALFORMED;
    }
    const char *ev = json_str(e, "versionID", NULL), *eid = json_str(e, "datasetID", NULL);
    const cJSON *elabel = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "policyLabel") : NULL;
    if (!cJSON_IsObject(e)) {
        snprintf(why, size, "JSON that is %s, not an entry object", contract_json_kind(e));
        st = PUB_MALFORMED;
    } else if (!ev || !ev[0]) {
        snprintf(why, size, "an entry without a versionID");
        st = PUB_MALFORMED;
    } else if (!eid || strcmp(eid, id) != 0) {
        if (eid)
            snprintf(why, size, "an entry for datasetID \"%s\"", quote(q, sizeof(q), eid));
        else
            snprintf(why, size, "an entry without a datasetID");
        st = PUB_MALFORMED;
    } else if (strcmp(ev, version) != 0) {
        snprintf(why, size, "the index publishes %s", quote(q, sizeof(q), ev));
        st = PUB_UNPUBLISHED;
    } else if (label && !(cJSON_IsString(label) && cJSON_IsString(elabel) &&
                          strcmp(label->valuestring, elabel->valuestring) == 0)) {
        snprintf(why, size, "listed as %s%s%s but promoted as %s%s%s", cJSON_IsString(label) ? "\"" : "",
                 cJSON_IsString(label) ? quote(q, sizeof(q), label->valuestring) : contract_json_kind(label),
                 cJSON_IsString(label) ? "\"" : "", cJSON_IsString(elabel) ? "\"" : "",
                 cJSON_IsString(elabel) ? quote(q2, sizeof(q2), elabel->valuestring) : "no policyLabel",
                 cJSON_IsString(elabel) ? "\"" : "");
        st = PUB_UNPUBLISHED;
    }
    cJSON_Delete(e);
    return st;
}

void contract_published_judge(contract_verdict *v, const contract_call *c, const contract_index *index)
{
    cJSON *b = NULL;
    const cJSON *items, *it;
    char named[640], why[256], qi[PUBLISHED_ID_QUOTE + 4], qv[PUBLISHED_ID_QUOTE + 4], where[340];
    size_t i = 0, bad = 0, len = 0;

    named[0] = '\0';
    if (index && index->name && index->name[0])
        snprintf(where, sizeof(where), "ConfigMap %.320s", index->name);
    else
        snprintf(where, sizeof(where), "the published index");
    v->status = c->answer.status;
    if (!index || index->error) {
        say(v, false,
            "no published index: %s; promote the datasets with DatasetPromotion, or remove published-only from "
            "spec.verification.checks",
            index ? index->error : "it was not read");
        return;
    }
    if (!status_is(v, c, 200) || !(b = body_object(v, c)) || !(items = need_array(v, c, b, "items")))
        goto done;
    cJSON_ArrayForEach(it, items) {
        const char *id = json_str(it, "dataset_id", NULL), *version = json_str(it, "dataset_version_id", NULL);
        const cJSON *label = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "policy_label") : NULL;
        if (!id || !id[0] || !version || !version[0]) {
            say(v, false,
                "%s %s: items[%zu] has no non-empty dataset_id and dataset_version_id, so whether it is published "
                "cannot be judged",
                c->method, c->path, i);
            goto done;
        }
        i++;
        pub_state st = published_entry(why, sizeof(why), index, id, version, label);
        if (st == PUB_MALFORMED) {
            say(v, false,
                "%s key \"%s\" holds %s, so whether %s@%s is published cannot be judged; repair the key "
                "or promote the dataset again with DatasetPromotion",
                where, quote(qi, sizeof(qi), id), why, qi, quote(qv, sizeof(qv), version));
            goto done;
        }
        if (st == PUB_OK)
            continue;
        if (bad++ < PUBLISHED_NAMED_MAX && len < sizeof(named)) {
            int n = snprintf(named + len, sizeof(named) - len, "%s%s@%s (%s)", len ? ", " : "",
                             quote(qi, sizeof(qi), id), quote(qv, sizeof(qv), version), why);
            len = n < 0 ? len : len + (size_t)n;
        }
    }
    if (i == 0) {
        say(v, false,
            "%s %s answered 200 with an empty items array: nothing is listed, so nothing shows that only "
            "promoted versions are served",
            c->method, c->path);
        goto done;
    }
    if (bad > 0) {
        char more[64] = "";
        if (bad > PUBLISHED_NAMED_MAX)
            snprintf(more, sizeof(more), " and %zu more", bad - PUBLISHED_NAMED_MAX);
        say(v, false,
            "%zu of %zu listed dataset %s not published in %s: %s%s; promote %s with DatasetPromotion "
            "or stop serving %s",
            bad, i, plural(bad, "version is", "versions are"), where, named, more, plural(bad, "it", "them"),
            plural(bad, "it", "them"));
        goto done;
    }
    say(v, true, "200 with %zu %s, every one published in %s", i, plural(i, "dataset version", "dataset versions"),
        where);
done:
    cJSON_Delete(b);
}

void contract_job_judge(contract_verdict *v, const contract_job *j, long timeout_ms, const contract_index *index)
{
    const contract_call *c = &j->calls[0];
    memset(v, 0, sizeof(*v));
    if (j->id == CK_PUBLIC) {
        judge_public(v, j, timeout_ms);
        return;
    }
    if (j->id == CK_PUBLISHED && (!index || index->error)) {
        contract_published_judge(v, c, index); /* no index fails first, whatever the API answered */
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
    case CK_PUBLISHED: contract_published_judge(v, c, index); break;
    case CK_PUBLIC: break;
    }
}

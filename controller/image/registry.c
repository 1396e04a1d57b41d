/*
 * The OCI distribution client of registry.h. Each request is one transfer on
 * the shared loop; the calling thread waits on a condition variable for its
 * completion callback, which copies the answer (status, body, SHA-256,
 * Content-Type, challenge) out of the loop's buffers. fetch() sends a GET
 * with the client's credentials, answers a 401's challenge once (a token
 * from the realm, or Basic) and sends it again, then judges the answer.
 */
#include "image/registry.h"
#include "util/base64.h"
#include "util/error.h"
#include "util/secret.h"
#include "util/text.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <ctype.h>
#include <stdarg.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- cancelling ---------------------------------------------------------------- */

void registry_cancel_init(registry_cancel *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
}

void registry_cancel_destroy(registry_cancel *c)
{
    pthread_mutex_destroy(&c->mu);
}

void registry_cancel_fire(registry_cancel *c)
{
    pthread_mutex_lock(&c->mu);
    c->stopped = true;
    if (c->current)
        net_transfer_cancel(c->current);
    pthread_mutex_unlock(&c->mu);
}

/* ---- one request --------------------------------------------------------------- */

struct registry {
    net_loop *net;
    registry_ref ref;
    char base[300]; /* "https://host" */
    char *user, *password;
    char *basic_header; /* "Authorization: Basic <b64>", when there are credentials */
    char *token;        /* the bearer token, once one was fetched */
    bool basic;         /* the registry asked for Basic: every request carries basic_header */
    char *ca_pem;
    long timeout_ms;
    registry_cancel *cancel;
    unsigned long requests;
};

/* What one transfer answered, copied out of the loop's buffers. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool done, nomem;
    net_outcome outcome;
    int curl_code;
    long status;
    char *body;
    size_t len;
    char sha256[72]; /* "sha256:<hex>" */
    char content_type[128];
    char *challenge;
    char error[NET_ERROR_MAX];
} raw;

static void raw_init(raw *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
}

static void raw_clear(raw *w)
{
    free(w->body);
    free(w->challenge);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
}

static void raw_done(void *ctx, const net_result *r)
{
    raw *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->outcome = r->outcome;
    w->curl_code = r->curl_code;
    w->status = r->status;
    snprintf(w->sha256, sizeof(w->sha256), "sha256:%s", r->sha256_hex);
    snprintf(w->content_type, sizeof(w->content_type), "%s", r->content_type ? r->content_type : "");
    snprintf(w->error, sizeof(w->error), "%s", r->error);
    if (r->body && (w->body = malloc(r->body_len + 1))) {
        memcpy(w->body, r->body, r->body_len);
        w->body[r->body_len] = '\0';
        w->len = r->body_len;
    } else if (r->body) {
        w->nomem = true;
    }
    if (r->www_authenticate && !(w->challenge = strdup(r->www_authenticate)))
        w->nomem = true;
    w->done = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

/* Sends one GET and waits for its end. 0 (w filled), MB_ENOMEM, or the error of a request the loop refused. */
static int send_get(registry *r, const char *url, const char *const *headers, const char *token, long redirects, raw *w)
{
    net_transfer *t = NULL;
    int err = 0;
    net_request req = {.kind = "registry",
                       .url = url,
                       .headers = headers,
                       .token = token,
                       .ca_pem = r->ca_pem,
                       .timeout_ms = r->timeout_ms,
                       .connect_timeout_ms = r->timeout_ms,
                       .max_bytes = REGISTRY_MAX_BYTES,
                       .max_redirects = redirects,
                       .keep_body = true,
                       .on_done = raw_done,
                       .ctx = w};

    if (r->cancel) {
        pthread_mutex_lock(&r->cancel->mu);
        if (r->cancel->stopped) {
            pthread_mutex_unlock(&r->cancel->mu);
            w->outcome = NET_CANCELLED;
            w->done = true;
            snprintf(w->error, sizeof(w->error), "GET %s was cancelled", url);
            return 0;
        }
    }
    r->requests++;
    err = net_transfer_start(&t, r->net, &req);
    if (r->cancel) {
        r->cancel->current = t;
        pthread_mutex_unlock(&r->cancel->mu);
    }
    if (err < 0)
        return err;
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cond, &w->mu);
    pthread_mutex_unlock(&w->mu);
    if (r->cancel) {
        pthread_mutex_lock(&r->cancel->mu);
        r->cancel->current = NULL;
        pthread_mutex_unlock(&r->cancel->mu);
    }
    net_transfer_release(t);
    return w->nomem ? mb_error_set(MB_ENOMEM, "out of memory") : 0;
}

/* A certificate that does not verify is a configuration to fix (the CA), not a registry that is down. */
static bool untrusted(int curl_code)
{
    return curl_code == CURLE_PEER_FAILED_VERIFICATION;
}

static void answer_set(registry_answer *out, registry_outcome o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void answer_set(registry_answer *out, registry_outcome o, const char *fmt, ...)
{
    va_list ap;
    out->outcome = o;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof(out->message), fmt, ap);
    va_end(ap);
}

void registry_answer_clear(registry_answer *a)
{
    if (!a)
        return;
    free(a->body);
    memset(a, 0, sizeof(*a));
}

static const char *cred_hint(const registry *r)
{
    return r->user ? "with the credentials of spec.image.verify.registrySecretRef; check that they may pull it"
                   : "anonymously; name a kubernetes.io/dockerconfigjson Secret with credentials for it in "
                     "spec.image.verify.registrySecretRef";
}

static void pct_encode(char *out, size_t size, const char *in)
{
    size_t o = 0;
    for (; *in && o + 4 < size; in++) {
        unsigned char c = (unsigned char)*in;
        if (isalnum(c) || strchr("-._~", c))
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, size - o, "%%%02X", c);
    }
    out[o] = '\0';
}

/* The token service's answer: "token" or "access_token". 0 (r->token set), 1 (out says why not), MB_ENOMEM. */
static int take_token(registry *r, raw *w, registry_answer *out, const char *realm)
{
    cJSON *doc = cJSON_ParseWithLength(w->body ? w->body : "", w->len);
    const char *tok = NULL;
    int rc = 1;
    if (doc) {
        tok = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "token"));
        if (!tok || !tok[0])
            tok = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "access_token"));
    }
    if (!tok || !tok[0] || mb_has_control(tok) || strpbrk(tok, " \t")) {
        answer_set(out, REGISTRY_REFUSED, "the registry's token service %.300s answered no usable token", realm);
    } else {
        mb_secret_free(r->token);
        rc = (r->token = strdup(tok)) ? 0 : mb_error_set(MB_ENOMEM, "out of memory");
    }
    if (doc) {
        cJSON *f;
        cJSON_ArrayForEach(f, doc)
            if (cJSON_IsString(f) && f->valuestring)
                OPENSSL_cleanse(f->valuestring, strlen(f->valuestring));
        cJSON_Delete(doc);
    }
    return rc;
}

/*
 * Answers a 401's challenge: 0 (send again), 1 (out says why it cannot be
 * answered), MB_ENOMEM.
 */
static int authenticate(registry *r, const char *challenge, registry_answer *out, const char *what)
{
    registry_challenge ch;
    char service[600], scope[800], *url = NULL;
    raw w;
    int rc = 1, err = 0;

    if (!challenge || registry_challenge_parse(&ch, challenge) < 0) {
        answer_set(out, REGISTRY_REFUSED,
                   "the registry %s answered 401 for %s without a WWW-Authenticate challenge it could be answered by",
                   r->ref.host, what);
        return 1;
    }
    if (strcasecmp(ch.scheme, "Basic") == 0) {
        if (!r->basic_header || r->basic) {
            out->denied = true;
            answer_set(out, REGISTRY_REFUSED, "the registry %s refused %s %s", r->ref.host, what, cred_hint(r));
            return 1;
        }
        r->basic = true;
        return 0;
    }
    if (strcasecmp(ch.scheme, "Bearer") != 0) {
        answer_set(out, REGISTRY_REFUSED, "the registry %s asks for %s authentication for %s, which is not supported",
                   r->ref.host, ch.scheme, what);
        return 1;
    }
    if (strncmp(ch.realm, "https://", 8) != 0 && (strncmp(ch.realm, "http://", 7) != 0 || r->base[4] == 's')) {
        answer_set(out, REGISTRY_REFUSED,
                   "the registry %s names a token service \"%.300s\" that is not an https URL (http only with "
                   "spec.image.verify.insecureRegistry)",
                   r->ref.host, ch.realm);
        return 1;
    }
    snprintf(scope, sizeof(scope), "repository:%s:pull", r->ref.name);
    pct_encode(service, sizeof(service), ch.service);
    {
        char enc[900];
        pct_encode(enc, sizeof(enc), scope);
        if (asprintf(&url, "%s%s%s%s%sscope=%s", ch.realm, strchr(ch.realm, '?') ? "&" : "?",
                     ch.service[0] ? "service=" : "", service, ch.service[0] ? "&" : "", enc) < 0)
            return mb_error_set(MB_ENOMEM, "out of memory");
    }
    const char *headers[] = {"Accept: application/json", r->basic_header, NULL};
    raw_init(&w);
    if ((err = send_get(r, url, headers, NULL, 0, &w)) < 0) {
        rc = err == MB_ENOMEM ? err : 1;
        if (rc == 1)
            answer_set(out, REGISTRY_REFUSED, "the registry's token service %.300s cannot be asked: %s", ch.realm,
                       mb_error_last());
    } else if (w.outcome != NET_DONE) {
        bool refused = w.outcome == NET_TOO_BIG || w.outcome == NET_REDIRECT ||
                       (w.outcome == NET_FAILED && untrusted(w.curl_code));
        answer_set(out, refused ? REGISTRY_REFUSED : REGISTRY_UNREACHABLE,
                   "the registry's token service could not be asked: %s%s", w.error,
                   untrusted(w.curl_code) ? " (trust its CA with spec.image.verify.caSecretRef)" : "");
    } else if (w.status == 401 || w.status == 403) {
        out->denied = true;
        answer_set(out, REGISTRY_REFUSED, "the registry's token service %.300s refused a token for %s %s", ch.realm,
                   r->ref.name, cred_hint(r));
    } else if (w.status == 429 || w.status >= 500) {
        answer_set(out, REGISTRY_UNREACHABLE, "the registry's token service %.300s answered HTTP %ld", ch.realm,
                   w.status);
    } else if (w.status != 200) {
        answer_set(out, REGISTRY_REFUSED, "the registry's token service %.300s answered HTTP %ld", ch.realm, w.status);
    } else {
        rc = take_token(r, &w, out, ch.realm);
    }
    if (w.body)
        OPENSSL_cleanse(w.body, w.len);
    raw_clear(&w);
    free(url);
    return rc;
}

/*
 * GET url with the client's credentials (answering one 401 challenge), and
 * judge the answer: 200 (hashing to want_digest when given) is FOUND, else
 * the outcome says what it was. 0 or MB_ENOMEM.
 */
static int fetch(registry_answer *out, registry *r, const char *url, const char *what, const char *accept,
                 long redirects, const char *want_digest)
{
    raw w;
    int err = 0;

    memset(out, 0, sizeof(*out));
    for (int attempt = 0;; attempt++) {
        const char *headers[3] = {accept, NULL, NULL};
        if (r->basic)
            headers[accept ? 1 : 0] = r->basic_header;
        raw_init(&w);
        if ((err = send_get(r, url, headers, r->basic ? NULL : r->token, redirects, &w)) < 0) {
            raw_clear(&w);
            if (err == MB_ENOMEM)
                return err;
            answer_set(out, REGISTRY_REFUSED, "%s cannot be asked for: %s", what, mb_error_last());
            return 0;
        }
        if (attempt > 0 || w.outcome != NET_DONE || w.status != 401)
            break;
        int rc = authenticate(r, w.challenge, out, what);
        raw_clear(&w);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
    if (w.outcome == NET_TOO_BIG)
        answer_set(out, REGISTRY_REFUSED, "%s is larger than %lld bytes, more than a signature needs", what,
                   REGISTRY_MAX_BYTES);
    else if (w.outcome == NET_REDIRECT)
        answer_set(out, REGISTRY_REFUSED, "%s: %s", what, w.error);
    else if (w.outcome == NET_FAILED && untrusted(w.curl_code))
        answer_set(out, REGISTRY_REFUSED,
                   "%s could not be fetched: the registry's TLS certificate is not trusted (%s); trust its CA with "
                   "spec.image.verify.caSecretRef",
                   what, w.error);
    else if (w.outcome != NET_DONE)
        answer_set(out, REGISTRY_UNREACHABLE, "%s could not be fetched: %s", what, w.error);
    else if (w.status == 404)
        answer_set(out, REGISTRY_NOT_FOUND, "%s is not in the registry (HTTP 404)", what);
    else if (w.status == 401 || w.status == 403)
        out->denied = true, answer_set(out, REGISTRY_REFUSED, "the registry %s refused %s (HTTP %ld) %s", r->ref.host,
                                       what, w.status, cred_hint(r));
    else if (w.status == 429 || w.status >= 500)
        answer_set(out, REGISTRY_UNREACHABLE, "the registry %s answered HTTP %ld for %s", r->ref.host, w.status, what);
    else if (w.status != 200)
        answer_set(out, REGISTRY_REFUSED, "the registry %s answered HTTP %ld for %s", r->ref.host, w.status, what);
    else if (want_digest && strcmp(w.sha256, want_digest) != 0)
        answer_set(out, REGISTRY_REFUSED, "the registry answered %s for %s (%s): the bytes do not match the digest",
                   w.sha256, want_digest, what);
    else {
        out->outcome = REGISTRY_FOUND;
        out->body = w.body ? w.body : strdup("");
        out->len = w.body ? w.len : 0;
        w.body = NULL;
        snprintf(out->content_type, sizeof(out->content_type), "%s", w.content_type);
        if (!out->body) {
            raw_clear(&w);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
    }
    raw_clear(&w);
    return 0;
}

/* ---- the client -------------------------------------------------------------- */

int registry_new(registry **out, const registry_opts *o)
{
    registry *r = calloc(1, sizeof(*r));
    char err[REGISTRY_MESSAGE_MAX];
    int rc = 0;

    *out = NULL;
    if (!r)
        return mb_error_set(MB_ENOMEM, "out of memory");
    r->net = o->net;
    r->ref = *o->ref;
    r->timeout_ms = o->timeout_ms;
    r->cancel = o->cancel;
    snprintf(r->base, sizeof(r->base), "%s://%s", o->insecure ? "http" : "https", r->ref.host);
    if (o->ca_pem && !(r->ca_pem = strdup(o->ca_pem))) {
        rc = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    rc = registry_docker_auth(&r->user, &r->password, o->docker_config, &r->ref, err);
    if (rc == MB_ENOTFOUND) {
        rc = 0;
    } else if (rc == MB_EINVAL) {
        rc = mb_error_set(MB_EINVAL, "%s", err);
        goto done;
    } else if (rc < 0) {
        goto done;
    } else {
        char *pair = NULL, *b64 = NULL;
        size_t plen = 0;
        if (asprintf(&pair, "%s:%s", r->user, r->password) < 0) {
            rc = mb_error_set(MB_ENOMEM, "out of memory");
            goto done;
        }
        plen = strlen(pair);
        rc = mb_base64_encode(&b64, pair, plen);
        mb_secret_free_len(pair, plen);
        if (rc < 0)
            goto done;
        if (asprintf(&r->basic_header, "Authorization: Basic %s", b64) < 0) {
            r->basic_header = NULL;
            rc = mb_error_set(MB_ENOMEM, "out of memory");
        }
        mb_secret_free(b64);
        if (rc < 0)
            goto done;
    }
    *out = r;
    r = NULL;
done:
    registry_free(r);
    return rc;
}

void registry_free(registry *r)
{
    if (!r)
        return;
    mb_secret_free(r->user);
    mb_secret_free(r->password);
    mb_secret_free(r->basic_header);
    mb_secret_free(r->token);
    free(r->ca_pem);
    free(r);
}

unsigned long registry_requests(const registry *r)
{
    return r ? r->requests : 0;
}

static bool tag_ok(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)t[i]) && !strchr("._-", t[i]))
            return false;
    return true;
}

#define ACCEPT_MANIFESTS                                                                                               \
    "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "                    \
    "application/vnd.docker.distribution.manifest.v2+json, "                                                           \
    "application/vnd.docker.distribution.manifest.list.v2+json"

int registry_manifest(registry_answer *out, registry *r, const char *reference)
{
    char url[1024], what[640];
    bool by_digest = mb_sha256_digest_valid(reference);

    memset(out, 0, sizeof(*out));
    if (!by_digest && !tag_ok(reference)) {
        answer_set(out, REGISTRY_REFUSED, "\"%.100s\" is neither a sha256 digest nor a tag",
                   reference ? reference : "");
        return 0;
    }
    snprintf(url, sizeof(url), "%s/v2/%s/manifests/%s", r->base, r->ref.name, reference);
    snprintf(what, sizeof(what), "the manifest %s/%s%s%s", r->ref.host, r->ref.name, by_digest ? "@" : ":", reference);
    return fetch(out, r, url, what, ACCEPT_MANIFESTS, 0, by_digest ? reference : NULL);
}

int registry_blob(registry_answer *out, registry *r, const char *digest)
{
    char url[1024], what[640];

    memset(out, 0, sizeof(*out));
    if (!mb_sha256_digest_valid(digest)) {
        answer_set(out, REGISTRY_REFUSED, "\"%.100s\" is not a sha256 digest", digest ? digest : "");
        return 0;
    }
    snprintf(url, sizeof(url), "%s/v2/%s/blobs/%s", r->base, r->ref.name, digest);
    snprintf(what, sizeof(what), "the blob %s/%s@%s", r->ref.host, r->ref.name, digest);
    return fetch(out, r, url, what, NULL, REGISTRY_REDIRECTS_MAX, digest);
}

int registry_referrers(registry_answer *out, registry *r, const char *digest, bool *fallback)
{
    char url[1024], what[640], tag[80];
    int err = 0;

    *fallback = false;
    memset(out, 0, sizeof(*out));
    if (!mb_sha256_digest_valid(digest)) {
        answer_set(out, REGISTRY_REFUSED, "\"%.100s\" is not a sha256 digest", digest ? digest : "");
        return 0;
    }
    snprintf(url, sizeof(url), "%s/v2/%s/referrers/%s", r->base, r->ref.name, digest);
    snprintf(what, sizeof(what), "the referrers of %s/%s@%s", r->ref.host, r->ref.name, digest);
    if ((err = fetch(out, r, url, what, "Accept: application/vnd.oci.image.index.v1+json", 0, NULL)) < 0 ||
        out->outcome != REGISTRY_NOT_FOUND)
        return err;
    /* no referrers API: the tag schema's index */
    registry_answer_clear(out);
    *fallback = true;
    snprintf(tag, sizeof(tag), "sha256-%s", digest + 7);
    return registry_manifest(out, r, tag);
}

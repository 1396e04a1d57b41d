/*
 * The Kubernetes API client's HTTP transport over libcurl: a mutex-guarded
 * pool of curl handles (each an easy handle driven by its own multi handle,
 * whose connection cache keeps connections alive between requests), TLS from
 * the configuration's in-memory PEM, per-request credentials, the retry
 * policy (429, 5xx, connection errors; never 409) with waits that
 * kube_client_stop() interrupts, and streaming GETs for watches. The REST
 * verbs on top of kube_request() are client.c's.
 */
#include "kube/client_private.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/timefmt.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POOL_MAX 16 /* idle handles kept; more are made on demand */
#define CONNECT_TIMEOUT_MS 10000L
#define RETRY_AFTER_MAX_S 60L        /* a longer Retry-After is cut to this */
#define BODY_MAX ((size_t)512 << 20) /* a larger answer is refused */
#define STREAM_POLL_MS 60000         /* a stream's wait when nothing wakes it (kube_client_stop_stream does) */

typedef struct handle {
    CURL *easy;
    CURLM *multi;               /* owns the connection cache the easy handle reuses */
    atomic_bool *stop;          /* while it streams: the flag that ends it (may be NULL) */
    struct handle *next_stream; /* while it streams: the next in the client's streams */
} handle;

struct kube_client {
    kube_config *cfg;
    int max_retries;
    long backoff_base_ms;
    long backoff_max_ms;
    long timeout_ms;
    char *user_agent;
    void (*on_answer)(const char *method, long status);

    char *base_url;                /* cfg->server, with its host replaced by tls_server_name if set */
    struct curl_slist *connect_to; /* tls_server_name: connect to the real host */
    char *host_header;             /* tls_server_name: "Host: <real host>" */

    pthread_mutex_t pool_lock;
    handle *idle[POOL_MAX];
    size_t nidle;

    atomic_bool stopped;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond; /* CLOCK_MONOTONIC */

    pthread_mutex_t streams_lock;
    handle *streams; /* the handles streaming now: a stop wakes their waits */
};

/* One transfer's receiving side. */
typedef struct {
    CURL *easy;
    char *buf;
    size_t len, cap;
    bool too_big;
    kube_stream_fn fn; /* NULL: collect everything into buf */
    void *ctx;
    long status; /* known once the first body bytes arrive */
    int stream_err;
} xfer;

/* --- curl_global_init once for all clients --- */

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static int global_users;

static int global_acquire(void)
{
    int err = 0;
    pthread_mutex_lock(&global_lock);
    if (global_users == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        err = mb_error_set(MB_ERROR, "libcurl could not be initialised (curl_global_init failed)");
    else
        global_users++;
    pthread_mutex_unlock(&global_lock);
    return err;
}

static void global_release(void)
{
    pthread_mutex_lock(&global_lock);
    if (--global_users == 0)
        curl_global_cleanup();
    pthread_mutex_unlock(&global_lock);
}

/* --- the client --- */

/*
 * tls_server_name: libcurl verifies the certificate against (and sends as
 * SNI) the host of the URL, and has no option to name another. So the URL
 * carries tls_server_name as its host, CURLOPT_CONNECT_TO sends the TCP
 * connection to the configured server, and an explicit Host header keeps the
 * HTTP authority the configured one, which is what client-go does with
 * ServerName.
 */
static int server_name_setup(kube_client *c)
{
    const kube_config *cfg = c->cfg;
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *explicit_port = NULL, *url = NULL;
    char *connect_to = NULL;
    int err = 0;

    if (!u)
        return mb_error_set(MB_ENOMEM, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, cfg->server, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        err = mb_error_set(MB_EINVAL,
                           "the server \"%s\" in %s is not a URL; set clusters[].cluster.server to https://host:port",
                           cfg->server, cfg->source ? cfg->source : "the configuration");
        goto done;
    }
    if (!cfg->tls_server_name || !*cfg->tls_server_name || strcmp(cfg->tls_server_name, host) == 0) {
        err = kube_str_append(&c->base_url, cfg->server, NULL, NULL);
        goto done;
    }
    curl_url_get(u, CURLUPART_PORT, &explicit_port, 0);
    if ((err = kube_str_append(&connect_to, cfg->tls_server_name, ":", port)) < 0 ||
        (err = kube_str_append(&connect_to, ":", host, ":")) < 0 ||
        (err = kube_str_append(&connect_to, port, NULL, NULL)) < 0 ||
        (err = kube_str_append(&c->host_header, "Host: ", host, explicit_port ? ":" : NULL)) < 0 ||
        (err = kube_str_append(&c->host_header, explicit_port, NULL, NULL)) < 0)
        goto done;
    if (curl_url_set(u, CURLUPART_HOST, cfg->tls_server_name, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
        err = mb_error_set(MB_EINVAL, "tls-server-name \"%s\" in %s is not a valid host name", cfg->tls_server_name,
                           cfg->source ? cfg->source : "the configuration");
        goto done;
    }
    if ((err = kube_str_append(&c->base_url, url, NULL, NULL)) < 0)
        goto done;
    size_t n = strlen(c->base_url);
    if (n > 0 && c->base_url[n - 1] == '/')
        c->base_url[n - 1] = '\0';
    if (!(c->connect_to = curl_slist_append(NULL, connect_to)))
        err = mb_error_set(MB_ENOMEM, "out of memory");
done:
    curl_free(host);
    curl_free(port);
    curl_free(explicit_port);
    curl_free(url);
    free(connect_to);
    curl_url_cleanup(u);
    return err;
}

int kube_client_new(kube_client **out, kube_config *cfg, const kube_client_opts *opts)
{
    kube_client *c = NULL;
    pthread_condattr_t attr;
    int err = 0;
    bool global = false;

    *out = NULL;
    if (!cfg || !cfg->server || !*cfg->server) {
        err = mb_error_set(MB_EINVAL, "the Kubernetes configuration names no API server");
        goto done;
    }
    if (strncmp(cfg->server, "https://", 8) != 0 && strncmp(cfg->server, "http://", 7) != 0) {
        err = mb_error_set(MB_EINVAL, "the API server \"%s\" in %s is not an http(s):// URL", cfg->server,
                           cfg->source ? cfg->source : "the configuration");
        goto done;
    }
    if ((err = global_acquire()) < 0)
        goto done;
    global = true;
    if (!(c = calloc(1, sizeof(*c)))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    pthread_mutex_init(&c->pool_lock, NULL);
    pthread_mutex_init(&c->stop_lock, NULL);
    pthread_mutex_init(&c->streams_lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->stop_cond, &attr);
    pthread_condattr_destroy(&attr);
    atomic_init(&c->stopped, false);
    c->cfg = cfg;
    cfg = NULL;
    global = false; /* kube_client_free() releases it from here on */
    c->max_retries = 5;
    c->backoff_base_ms = 100;
    c->backoff_max_ms = 10000;
    c->timeout_ms = 30000;
    if (opts) {
        if (opts->max_retries > 0)
            c->max_retries = opts->max_retries;
        else if (opts->max_retries < 0)
            c->max_retries = 0;
        if (opts->backoff_base_ms > 0)
            c->backoff_base_ms = opts->backoff_base_ms;
        if (opts->backoff_max_ms > 0)
            c->backoff_max_ms = opts->backoff_max_ms;
        if (opts->timeout_ms > 0)
            c->timeout_ms = opts->timeout_ms;
    }
    c->on_answer = opts ? opts->on_answer : NULL;
    const char *ua = opts && opts->user_agent ? opts->user_agent : "membrane/" MEMBRANE_VERSION;
    if (!(c->user_agent = strdup(ua))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    if ((err = server_name_setup(c)) < 0)
        goto done;
    if (c->cfg->insecure_skip_tls_verify && strncmp(c->cfg->server, "https://", 8) == 0)
        log_warn("insecure-skip-tls-verify is set for %s: the API server's certificate is not verified",
                 c->cfg->server);
    *out = c;
    c = NULL;
done:
    kube_client_free(c);
    if (global)
        global_release();
    kube_config_free(cfg);
    return err;
}

static void handle_free(handle *h)
{
    if (!h)
        return;
    curl_multi_cleanup(h->multi);
    curl_easy_cleanup(h->easy);
    free(h);
}

void kube_client_free(kube_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nidle; i++)
        handle_free(c->idle[i]);
    kube_config_free(c->cfg);
    free(c->user_agent);
    free(c->base_url);
    free(c->host_header);
    curl_slist_free_all(c->connect_to);
    pthread_mutex_destroy(&c->pool_lock);
    pthread_mutex_destroy(&c->stop_lock);
    pthread_mutex_destroy(&c->streams_lock);
    pthread_cond_destroy(&c->stop_cond);
    free(c);
    global_release();
}

const kube_config *kube_client_config(const kube_client *c)
{
    return c->cfg;
}

/* Wakes the waits of the streams that stop ends (NULL: every stream) to look at their flags. */
static void streams_wake(kube_client *c, const atomic_bool *stop)
{
    pthread_mutex_lock(&c->streams_lock);
    for (handle *h = c->streams; h; h = h->next_stream)
        if (!stop || h->stop == stop)
            curl_multi_wakeup(h->multi);
    pthread_mutex_unlock(&c->streams_lock);
}

void kube_client_stop(kube_client *c)
{
    pthread_mutex_lock(&c->stop_lock);
    atomic_store(&c->stopped, true);
    pthread_cond_broadcast(&c->stop_cond);
    pthread_mutex_unlock(&c->stop_lock);
    streams_wake(c, NULL);
}

void kube_client_stop_stream(kube_client *c, atomic_bool *stop)
{
    atomic_store(stop, true);
    streams_wake(c, stop);
}

/* Waits ms, or less when the client is stopped: 0 or MB_ESTOPPED. */
static int stop_wait(kube_client *c, long ms)
{
    struct timespec deadline = timefmt_deadline(CLOCK_MONOTONIC, ms);
    pthread_mutex_lock(&c->stop_lock);
    while (!atomic_load(&c->stopped)) {
        if (pthread_cond_timedwait(&c->stop_cond, &c->stop_lock, &deadline) == ETIMEDOUT)
            break;
    }
    bool stopped = atomic_load(&c->stopped);
    pthread_mutex_unlock(&c->stop_lock);
    return stopped ? MB_ESTOPPED : 0;
}

static int handle_get(handle **out, kube_client *c)
{
    handle *h = NULL;
    pthread_mutex_lock(&c->pool_lock);
    if (c->nidle > 0)
        h = c->idle[--c->nidle];
    pthread_mutex_unlock(&c->pool_lock);
    if (!h) {
        if (!(h = calloc(1, sizeof(*h))) || !(h->easy = curl_easy_init()) || !(h->multi = curl_multi_init())) {
            if (h) {
                curl_easy_cleanup(h->easy);
                free(h);
            }
            *out = NULL;
            return mb_error_set(MB_ENOMEM, "out of memory making a curl handle");
        }
    }
    *out = h;
    return 0;
}

static void handle_put(kube_client *c, handle *h)
{
    if (!h)
        return;
    curl_easy_reset(h->easy); /* drops pointers into the finished request; keeps the connections */
    pthread_mutex_lock(&c->pool_lock);
    if (c->nidle < POOL_MAX) {
        c->idle[c->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->pool_lock);
    handle_free(h);
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
    xfer *x = userp;
    size_t len = size * nmemb;

    if (x->fn) {
        if (x->status == 0)
            curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
        if (x->status >= 200 && x->status < 300) {
            int err = x->fn(x->ctx, data, len);
            if (err < 0) {
                x->stream_err = err;
                return len == 0 ? 1 : 0; /* anything but len aborts */
            }
            return len;
        }
    }
    if (x->len + len + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 16384;
        while (cap < x->len + len + 1)
            cap *= 2;
        char *b = cap <= BODY_MAX ? realloc(x->buf, cap) : NULL;
        if (!b) {
            x->too_big = true;
            return len == 0 ? 1 : 0;
        }
        x->buf = b;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, data, len);
    x->len += len;
    x->buf[x->len] = '\0';
    return len;
}

static bool is_stopped(kube_client *c, atomic_bool *stop)
{
    return atomic_load(&c->stopped) || (stop && atomic_load(stop));
}

/*
 * Drives one transfer on h. Streams look at the stop flags after every burst
 * of data and whenever a stop wakes their wait (they are in c->streams while
 * they run); *stopped tells whether that ended it.
 */
static CURLcode handle_run(kube_client *c, handle *h, bool stream, atomic_bool *stop, bool *stopped)
{
    CURLcode rc = CURLE_OK;
    int running = 0;

    *stopped = false;
    if (curl_multi_add_handle(h->multi, h->easy) != CURLM_OK)
        return CURLE_OUT_OF_MEMORY;
    if (stream) {
        pthread_mutex_lock(&c->streams_lock);
        h->stop = stop;
        h->next_stream = c->streams;
        c->streams = h;
        pthread_mutex_unlock(&c->streams_lock);
    }
    for (;;) {
        CURLMcode mc = curl_multi_perform(h->multi, &running);
        if (mc != CURLM_OK) {
            rc = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_RECV_ERROR;
            break;
        }
        if (!running) {
            int left;
            CURLMsg *msg;
            rc = CURLE_GOT_NOTHING;
            while ((msg = curl_multi_info_read(h->multi, &left)) != NULL)
                if (msg->msg == CURLMSG_DONE && msg->easy_handle == h->easy)
                    rc = msg->data.result;
            break;
        }
        if (stream && is_stopped(c, stop)) {
            *stopped = true;
            break;
        }
        if (curl_multi_poll(h->multi, NULL, 0, stream ? STREAM_POLL_MS : 1000, NULL) != CURLM_OK) {
            rc = CURLE_RECV_ERROR;
            break;
        }
    }
    if (stream) {
        pthread_mutex_lock(&c->streams_lock);
        handle **p = &c->streams;
        while (*p != h)
            p = &(*p)->next_stream;
        *p = h->next_stream;
        h->next_stream = NULL;
        h->stop = NULL;
        pthread_mutex_unlock(&c->streams_lock);
    }
    curl_multi_remove_handle(h->multi, h->easy);
    return rc;
}

/* Why a TLS verification failed, from OpenSSL's X509_V_ERR_* code in verify. */
static int tls_error(kube_client *c, CURLcode rc, long verify, const char *detail)
{
    const kube_config *cfg = c->cfg;
    const char *ca = cfg->ca.len > 0 ? "the configured certificate-authority"
                                     : "a certificate-authority of the system trust store "
                                       "(set certificate-authority-data in the kubeconfig)";
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
        /* libcurl checks the name itself and reports a mismatch in its text, with verify 0 or 1 */
        if (verify == 0 || verify == 62 /* X509_V_ERR_HOSTNAME_MISMATCH */ || strstr(detail, "target host name"))
            return mb_error_set(MB_ETLS,
                                "TLS: the server certificate of %s is not valid for the host name%s%s "
                                "(set tls-server-name to a name the certificate carries): %s",
                                cfg->server, cfg->tls_server_name ? " " : "",
                                cfg->tls_server_name ? cfg->tls_server_name : "", detail);
        if (verify == 10) /* X509_V_ERR_CERT_HAS_EXPIRED */
            return mb_error_set(MB_ETLS, "TLS: the server certificate of %s has expired: %s", cfg->server, detail);
        if (verify == 9) /* X509_V_ERR_CERT_NOT_YET_VALID */
            return mb_error_set(MB_ETLS, "TLS: the server certificate of %s is not valid yet (check the clock): %s",
                                cfg->server, detail);
        if (verify == 2 || (verify >= 18 && verify <= 21) || verify == 27) /* no trusted issuer */
            return mb_error_set(MB_ETLS, "TLS: the server certificate of %s is not signed by %s: %s", cfg->server, ca,
                                detail);
        return mb_error_set(MB_ETLS, "TLS: the server certificate of %s failed verification: %s", cfg->server, detail);
    case CURLE_SSL_CERTPROBLEM:
        return mb_error_set(MB_ETLS, "TLS: the client certificate or key for %s cannot be used: %s", cfg->server,
                            detail);
    case CURLE_SSL_CACERT_BADFILE:
        return mb_error_set(MB_ETLS, "TLS: the certificate-authority for %s cannot be loaded (is it PEM?): %s",
                            cfg->server, detail);
    default: return mb_error_set(MB_ETLS, "TLS: the handshake with %s failed: %s", cfg->server, detail);
    }
}

/*
 * Maps a failed transfer to an error code and message. *not_sent is true when
 * the request certainly never reached the server; *retryable when trying
 * again may help.
 */
static int transport_error(kube_client *c, CURL *easy, CURLcode rc, const char *errbuf, const char *method,
                           const char *path, bool *not_sent, bool *retryable)
{
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    long verify = 0;
    curl_off_t connect_time = 0;

    *not_sent = false;
    *retryable = false;
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        *not_sent = *retryable = true;
        return mb_error_set(MB_ECONN, "%s %s: cannot connect to the API server %s: %s", method, path, c->cfg->server,
                            detail);
    case CURLE_OPERATION_TIMEDOUT:
        curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect_time);
        *not_sent = connect_time == 0;
        *retryable = true;
        return mb_error_set(MB_ETIMEOUT, "%s %s: the API server %s did not answer in time: %s", method, path,
                            c->cfg->server, detail);
    case CURLE_OUT_OF_MEMORY: return mb_error_set(MB_ENOMEM, "out of memory during %s %s", method, path);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
        curl_easy_getinfo(easy, CURLINFO_SSL_VERIFYRESULT, &verify);
        return tls_error(c, rc, verify, detail);
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
        *retryable = true;
        return mb_error_set(MB_ECONN, "%s %s: the connection to the API server %s broke: %s", method, path,
                            c->cfg->server, detail);
    default:
        return mb_error_set(MB_ECONN, "%s %s: the request to the API server %s failed: %s", method, path,
                            c->cfg->server, detail);
    }
}

/* The headers of one request; the Authorization line is wiped when freed. */
static int headers_build(struct curl_slist **out, kube_client *c, const kube_credentials *creds,
                         const char *content_type)
{
    struct curl_slist *h = NULL, *n;
    char *auth = NULL;
    char *ct = NULL;
    int err = 0;

    *out = NULL;
    if (!(n = curl_slist_append(h, "Accept: application/json")))
        goto nomem;
    h = n;
    if (!(n = curl_slist_append(h, "Expect:"))) /* no 100-continue round trip */
        goto nomem;
    h = n;
    if (content_type) {
        if (kube_str_append(&ct, "Content-Type: ", content_type, NULL) < 0 || !(n = curl_slist_append(h, ct)))
            goto nomem;
        h = n;
    }
    if (c->host_header) {
        if (!(n = curl_slist_append(h, c->host_header)))
            goto nomem;
        h = n;
    }
    if (creds->bearer && *creds->bearer) {
        if (kube_str_append(&auth, "Authorization: Bearer ", creds->bearer, NULL) < 0 ||
            !(n = curl_slist_append(h, auth)))
            goto nomem;
        h = n;
    }
    *out = h;
    h = NULL;
    goto done;
nomem:
    err = mb_error_set(MB_ENOMEM, "out of memory");
done:
    free(ct);
    mb_secret_free(auth);
    for (n = h; n; n = n->next)
        explicit_bzero(n->data, strlen(n->data));
    curl_slist_free_all(h);
    return err;
}

static void headers_free(struct curl_slist *h)
{
    for (struct curl_slist *n = h; n; n = n->next)
        explicit_bzero(n->data, strlen(n->data));
    curl_slist_free_all(h);
}

static CURLcode blob_set(CURL *easy, CURLoption opt, const kube_pem *pem)
{
    struct curl_blob blob = {.data = pem->data, .len = pem->len, .flags = CURL_BLOB_COPY};
    return curl_easy_setopt(easy, opt, &blob);
}

/* Sets every option of one request on h->easy. */
static int handle_setup(kube_client *c, handle *h, const char *method, const char *url, struct curl_slist *headers,
                        const kube_credentials *creds, const char *body, size_t body_len, bool stream, xfer *x,
                        char *errbuf)
{
    CURL *e = h->easy;
    CURLcode rc = CURLE_OK;
    const kube_config *cfg = c->cfg;

    curl_easy_reset(e); /* keeps the connection cache */
    errbuf[0] = '\0';
#define SET(opt, val)                                                                                                  \
    do {                                                                                                               \
        if (rc == CURLE_OK)                                                                                            \
            rc = curl_easy_setopt(e, opt, val);                                                                        \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_USERAGENT, c->user_agent);
    SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms < CONNECT_TIMEOUT_MS ? c->timeout_ms : CONNECT_TIMEOUT_MS);
    /*
     * Whatever this libcurl can decode, except on a stream: a watch from no
     * resourceVersion is served as a WatchList, which the apiserver gzips one
     * member per event, and libcurl stops after the first member.
     */
    if (!stream)
        SET(CURLOPT_ACCEPT_ENCODING, "");
    /*
     * TCP keepalive on every connection, since a watch may reuse one a plain
     * request opened; it finds a dead peer on an idle watch.
     */
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_TCP_KEEPIDLE, 30L);
    SET(CURLOPT_TCP_KEEPINTVL, 15L);
    if (!stream) /* no overall timeout on a watch: the server's timeoutSeconds ends it */
        SET(CURLOPT_TIMEOUT_MS, c->timeout_ms);
    if (strcmp(method, "GET") == 0) {
        SET(CURLOPT_HTTPGET, 1L);
    } else {
        SET(CURLOPT_CUSTOMREQUEST, method);
        if (body || strcmp(method, "DELETE") != 0) {
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
            SET(CURLOPT_POSTFIELDS, body ? body : "");
        }
    }
    if (cfg->insecure_skip_tls_verify) {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
    }
    if (rc == CURLE_OK && cfg->ca.len > 0)
        rc = blob_set(e, CURLOPT_CAINFO_BLOB, &cfg->ca);
    if (creds->cert.len > 0) {
        SET(CURLOPT_SSLCERTTYPE, "PEM");
        if (rc == CURLE_OK)
            rc = blob_set(e, CURLOPT_SSLCERT_BLOB, &creds->cert);
    }
    if (creds->key.len > 0) {
        SET(CURLOPT_SSLKEYTYPE, "PEM");
        if (rc == CURLE_OK)
            rc = blob_set(e, CURLOPT_SSLKEY_BLOB, &creds->key);
    }
    if (c->connect_to)
        SET(CURLOPT_CONNECT_TO, c->connect_to);
#undef SET
    if (rc != CURLE_OK)
        return mb_error_set(rc == CURLE_OUT_OF_MEMORY ? MB_ENOMEM : MB_ERROR, "%s %s: libcurl refused an option: %s",
                            method, url, curl_easy_strerror(rc));
    return 0;
}

/* details.retryAfterSeconds of a Status body, 0 when absent. */
static long body_retry_after(const char *body, size_t len)
{
    if (!body || len == 0)
        return 0;
    cJSON *doc = cJSON_ParseWithLength(body, len);
    long s = (long)json_int(0, doc, "details", "retryAfterSeconds", NULL);
    cJSON_Delete(doc);
    return s > 0 ? s : 0;
}

/*
 * One attempt: 0 with out filled (any status), or a transport error with
 * *not_sent / *retryable set as transport_error() says.
 */
static int request_once(kube_response *out, kube_client *c, const char *method, const char *path,
                        const char *content_type, const char *body, size_t body_len, bool stream, kube_stream_fn fn,
                        void *ctx, atomic_bool *stop, bool *not_sent, bool *retryable)
{
    kube_credentials creds = {0};
    struct curl_slist *headers = NULL;
    handle *h = NULL;
    char *url = NULL;
    char errbuf[CURL_ERROR_SIZE];
    xfer x = {.fn = fn, .ctx = ctx};
    bool stopped = false;
    int err = 0;

    memset(out, 0, sizeof(*out));
    *not_sent = *retryable = false;
    if ((err = kube_config_credentials(&creds, c->cfg)) < 0) {
        *not_sent = true;
        goto done;
    }
    if ((err = kube_str_append(&url, c->base_url, path, NULL)) < 0 ||
        (err = headers_build(&headers, c, &creds, content_type)) < 0 || (err = handle_get(&h, c)) < 0)
        goto done;
    x.easy = h->easy;
    if ((err = handle_setup(c, h, method, url, headers, &creds, body, body_len, stream, &x, errbuf)) < 0)
        goto done;
    CURLcode rc = handle_run(c, h, stream, stop, &stopped);
    if (x.stream_err < 0) {
        err = x.stream_err; /* the stream consumer's message stands */
        goto done;
    }
    if (stopped) {
        err = mb_error_set(MB_ESTOPPED, "%s %s was stopped", method, path);
        goto done;
    }
    if (x.too_big) {
        err = mb_error_set(MB_ENOMEM, "%s %s: the answer is larger than %zu MiB or memory ran out", method, path,
                           BODY_MAX >> 20);
        goto done;
    }
    if (rc != CURLE_OK) {
        if (c->on_answer)
            c->on_answer(method, 0); /* no answer */
        err = transport_error(c, h->easy, rc, errbuf, method, path, not_sent, retryable);
        goto done;
    }
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &out->status);
    if (c->on_answer)
        c->on_answer(method, out->status);
    if (!stream && MB_LOG_DEBUG >= mb_log_threshold) {
        curl_off_t total = 0, tls = 0;
        long connects = 0;
        curl_easy_getinfo(h->easy, CURLINFO_TOTAL_TIME_T, &total);
        curl_easy_getinfo(h->easy, CURLINFO_APPCONNECT_TIME_T, &tls);
        curl_easy_getinfo(h->easy, CURLINFO_NUM_CONNECTS, &connects);
        if (connects > 0)
            log_debug("%s %s (%zu bytes sent): %ld in %.1f ms (a new connection, TLS after %.1f ms)", method, path,
                      body_len, out->status, total / 1e3, tls / 1e3);
        else
            log_debug("%s %s (%zu bytes sent): %ld in %.1f ms", method, path, body_len, out->status, total / 1e3);
    }
    curl_off_t ra = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RETRY_AFTER, &ra);
    out->retry_after = ra > 0 ? (long)ra : 0;
    if (out->status == 429 || out->status >= 500) {
        long s = body_retry_after(x.buf, x.len);
        if (s > out->retry_after)
            out->retry_after = s;
    }
    if (!x.buf && !(x.buf = calloc(1, 1))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    out->body = x.buf;
    out->len = x.len;
    x.buf = NULL;
done:
    free(x.buf);
    free(url);
    headers_free(headers);
    kube_credentials_clear(&creds);
    handle_put(c, h);
    return err;
}

/* xorshift64*, one state per thread, for backoff jitter. */
static uint64_t jitter_next(void)
{
    static _Thread_local uint64_t state;
    if (state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&state;
        if (state == 0)
            state = 0x9e3779b97f4a7c15ULL;
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1DULL;
}

/* Full jitter: uniform in [0, min(max, base * 2^attempt)]. */
static long backoff_ms(const kube_client *c, int attempt)
{
    long cap = c->backoff_base_ms;
    for (int i = 0; i < attempt && cap < c->backoff_max_ms; i++)
        cap *= 2;
    if (cap > c->backoff_max_ms)
        cap = c->backoff_max_ms;
    return (long)(jitter_next() % (uint64_t)(cap + 1));
}

/*
 * Which requests may be sent twice. GET, HEAD, PUT and DELETE can: a PUT
 * carries the resourceVersion it was based on, so a second copy after a first
 * that was applied fails with 409 instead of applying twice, and a second
 * DELETE finds 404 (or 409 on its preconditions). Merge and strategic-merge
 * patches set fields to values, so applying one twice gives the same object.
 * POST creates (a second create answers AlreadyExists at best, or makes a
 * second object for generateName) and a JSON patch may append to lists, so
 * those are retried only when the server certainly did not process them: the
 * connection was never made (refused, no such host, connect timeout), or the
 * server said 429, which the API server's priority-and-fairness and
 * max-in-flight filters answer before the request reaches any handler. A 5xx
 * or a connection that broke after the request was sent may come after the
 * object was written, so those go back to the caller, whose reconcile loop
 * observes again and decides.
 */
static bool method_idempotent(const char *method, const char *content_type)
{
    if (strcmp(method, "POST") == 0)
        return false;
    if (strcmp(method, "PATCH") == 0)
        return !(content_type && strcmp(content_type, "application/json-patch+json") == 0);
    return true;
}

static bool status_retryable(long status)
{
    return status == 500 || status == 502 || status == 503 || status == 504;
}

int kube_request(kube_response *out, kube_client *c, const char *method, const char *path, const char *content_type,
                 const char *body, size_t body_len)
{
    bool idempotent = method_idempotent(method, content_type);
    int err = 0;

    for (int attempt = 0;; attempt++) {
        bool not_sent = false, retryable = false;
        long wait = -1;
        err = request_once(out, c, method, path, content_type, body, body_len, false, NULL, NULL, NULL, &not_sent,
                           &retryable);
        if (err == 0) {
            if (out->status == 429 || (idempotent && status_retryable(out->status))) {
                if (out->retry_after > 0)
                    wait = (out->retry_after < RETRY_AFTER_MAX_S ? out->retry_after : RETRY_AFTER_MAX_S) * 1000;
                else
                    wait = backoff_ms(c, attempt);
            }
        } else if (retryable && (idempotent || not_sent)) {
            wait = backoff_ms(c, attempt);
        }
        if (wait < 0 || attempt >= c->max_retries)
            return err; /* done, or out of retries: out holds the last answer */
        if (err == 0)
            log_info("%s %s answered %ld; retrying in %ld ms (retry %d of %d)", method, path, out->status, wait,
                     attempt + 1, c->max_retries);
        else
            log_info("%s %s failed; retrying in %ld ms (retry %d of %d): %s", method, path, wait, attempt + 1,
                     c->max_retries, mb_error_last());
        kube_response_clear(out);
        if (stop_wait(c, wait) < 0)
            return mb_error_set(MB_ESTOPPED, "%s %s: the client was stopped while waiting to retry", method, path);
    }
}

int kube_request_stream(kube_response *out, kube_client *c, const char *path, kube_stream_fn fn, void *ctx,
                        atomic_bool *stop)
{
    bool not_sent, retryable;
    if (is_stopped(c, stop)) {
        memset(out, 0, sizeof(*out));
        return mb_error_set(MB_ESTOPPED, "GET %s was stopped before it started", path);
    }
    return request_once(out, c, "GET", path, NULL, NULL, 0, true, fn, ctx, stop, &not_sent, &retryable);
}

void kube_response_clear(kube_response *r)
{
    if (!r)
        return;
    free(r->body);
    memset(r, 0, sizeof(*r));
}

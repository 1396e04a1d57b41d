/*
 * The transfer loop of transfer.h: one thread owns a curl multi handle. A
 * transfer started from any thread is queued under the loop's mutex and the
 * loop is woken (curl_multi_wakeup); the loop adds it, drives every transfer,
 * and when one ends (or its cancel flag is seen) takes it out of the multi,
 * builds its result and calls its completion callback, outside the mutex. The
 * body is hashed (OpenSSL EVP SHA-256) in the write callback as it arrives,
 * then kept, streamed, or both. A transfer's struct is reference counted: the
 * loop holds one reference until the callback has returned, the caller one
 * for its cancel handle.
 */
#include "net/transfer.h"
#include "util/error.h"
#include "util/text.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct net_transfer {
    atomic_int refs;
    atomic_bool cancel;
    net_loop *loop;
    net_transfer *next; /* in the loop's pending or active list */
    CURL *easy;
    struct curl_slist *headers; /* the Authorization line holds the token: wiped before it is freed */
    char *url, *method, *body, *kind;
    size_t body_len;
    long long max_bytes;
    bool keep_body, stall, redirects;
    net_data_fn on_data;
    net_progress_fn on_progress;
    net_done_fn on_done;
    void *ctx;
    EVP_MD_CTX *md;
    char *buf;
    size_t len, cap;
    long long bytes;
    bool too_big, data_refused, nomem;
    char errbuf[CURL_ERROR_SIZE];
};

struct net_loop {
    net_loop_opts opts;
    pthread_t thread;
    bool started;
    CURLM *multi;
    pthread_mutex_t mu;
    net_transfer *pending; /* under mu: started, not yet in the multi */
    bool stopping;         /* under mu */
    net_transfer *active;  /* loop thread only */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_once_rc;

static void curl_init_once(void)
{
    curl_once_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool has_break(const char *s)
{
    for (; s && *s; s++)
        if (*s == '\r' || *s == '\n' || *s == '\0')
            return true;
    return false;
}

static void wipe_list(struct curl_slist *l)
{
    for (struct curl_slist *h = l; h; h = h->next)
        OPENSSL_cleanse(h->data, strlen(h->data));
    curl_slist_free_all(l);
}

/* Frees everything but the struct: the easy handle, the token, the body. Loop thread (or before it is queued). */
static void transfer_dispose(net_transfer *t)
{
    if (t->easy)
        curl_easy_cleanup(t->easy);
    t->easy = NULL;
    wipe_list(t->headers);
    t->headers = NULL;
    EVP_MD_CTX_free(t->md);
    t->md = NULL;
    free(t->buf);
    t->buf = NULL;
    free(t->url);
    free(t->method);
    free(t->body);
    free(t->kind);
    t->url = t->method = t->body = t->kind = NULL;
}

static void transfer_unref(net_transfer *t)
{
    if (t && atomic_fetch_sub(&t->refs, 1) == 1) {
        transfer_dispose(t);
        free(t);
    }
}

void net_transfer_release(net_transfer *t)
{
    transfer_unref(t);
}

void net_transfer_cancel(net_transfer *t)
{
    if (!t)
        return;
    atomic_store(&t->cancel, true);
    curl_multi_wakeup(t->loop->multi);
}

/* ---- the easy handle's callbacks ----------------------------------------- */

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
    net_transfer *t = arg;
    size_t n = size * nmemb;
    curl_off_t total = -1;

    if (atomic_load(&t->cancel))
        return 0;
    if (t->bytes + (long long)n > t->max_bytes) {
        t->too_big = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (EVP_DigestUpdate(t->md, data, n) != 1) {
        t->nomem = true;
        return 0;
    }
    if (t->keep_body) {
        if (t->len + n + 1 > t->cap) {
            size_t cap = (t->len + n + 1) * 2;
            char *p = realloc(t->buf, cap);
            if (!p) {
                t->nomem = true;
                return 0;
            }
            t->buf = p;
            t->cap = cap;
        }
        memcpy(t->buf + t->len, data, n);
        t->len += n;
        t->buf[t->len] = '\0';
    }
    if (t->on_data && t->on_data(t->ctx, data, n) != 0) {
        t->data_refused = true;
        return 0;
    }
    t->bytes += (long long)n;
    if (t->on_progress) {
        curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &total);
        t->on_progress(t->ctx, t->bytes, (long long)total);
    }
    return n;
}

/* ---- starting ------------------------------------------------------------ */

static int header_add(net_transfer *t, const char *prefix, const char *value)
{
    char *h = NULL;
    struct curl_slist *l;
    if (asprintf(&h, "%s%s", prefix, value) < 0)
        return mb_error_set(MB_ENOMEM, "out of memory");
    l = curl_slist_append(t->headers, h);
    OPENSSL_cleanse(h, strlen(h));
    free(h);
    if (!l)
        return mb_error_set(MB_ENOMEM, "out of memory");
    t->headers = l;
    return 0;
}

static int request_check(const net_request *req)
{
    if (!req->on_done)
        return mb_error_set(MB_EINVAL, "a transfer needs a completion callback");
    if (!req->url || (strncmp(req->url, "http://", 7) != 0 && strncmp(req->url, "https://", 8) != 0) ||
        mb_has_control(req->url))
        return mb_error_set(MB_EINVAL, "\"%s\" is not an http:// or https:// URL",
                            req->url && !mb_has_control(req->url) ? req->url : "");
    if (req->method && (!req->method[0] || mb_has_control(req->method) || strchr(req->method, ' ')))
        return mb_error_set(MB_EINVAL, "the HTTP method of the transfer to %s is not a token", req->url);
    for (size_t i = 0; req->headers && req->headers[i]; i++)
        if (has_break(req->headers[i]) || !strchr(req->headers[i], ':'))
            return mb_error_set(MB_EINVAL, "the header \"%.40s\" for %s is not one \"Name: value\" line",
                                req->headers[i], req->url);
    if (req->token && (!req->token[0] || mb_has_control(req->token)))
        return mb_error_set(MB_EINVAL,
                            "the bearer token for %s is empty or holds control characters, so it cannot "
                            "be sent in an Authorization header",
                            req->url);
    if (req->content_type && mb_has_control(req->content_type))
        return mb_error_set(MB_EINVAL, "the Content-Type for %s holds control characters", req->url);
    return 0;
}

static int transfer_setup(net_transfer *t, const net_request *req)
{
    int err = 0;
    CURLcode rc = CURLE_OK;
    bool https = strncmp(req->url, "https://", 8) == 0;
    const char *method = req->method ? req->method : req->body ? "POST" : "GET";
    long timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : NET_TIMEOUT_MS_DEFAULT;
    long connect_ms = req->connect_timeout_ms > 0 ? req->connect_timeout_ms : NET_CONNECT_TIMEOUT_MS_DEFAULT;

    t->max_bytes = req->max_bytes > 0 ? req->max_bytes : NET_MAX_BYTES_DEFAULT;
    t->keep_body = req->keep_body;
    t->stall = req->stall_seconds > 0;
    t->redirects = req->max_redirects > 0;
    t->on_data = req->on_data;
    t->on_progress = req->on_progress;
    t->on_done = req->on_done;
    t->ctx = req->ctx;
    if (!(t->url = strdup(req->url)) || !(t->method = strdup(method)) ||
        !(t->kind = strdup(req->kind ? req->kind : "other")) || !(t->md = EVP_MD_CTX_new()) ||
        (req->body && !(t->body = malloc(req->body_len + 1))) || !(t->easy = curl_easy_init()))
        return mb_error_set(MB_ENOMEM, "out of memory");
    if (EVP_DigestInit_ex(t->md, EVP_sha256(), NULL) != 1)
        return mb_error_set(MB_ERROR, "OpenSSL cannot compute SHA-256");
    if (req->body) {
        memcpy(t->body, req->body, req->body_len);
        t->body[req->body_len] = '\0';
        t->body_len = req->body_len;
    }
    for (size_t i = 0; req->headers && req->headers[i]; i++)
        if ((err = header_add(t, "", req->headers[i])) < 0)
            return err;
    if ((err = header_add(t, "Expect:", "")) < 0)
        return err;
    if (req->body &&
        (err = header_add(t, "Content-Type: ", req->content_type ? req->content_type : "application/json")) < 0)
        return err;
    if (req->token && (err = header_add(t, "Authorization: Bearer ", req->token)) < 0)
        return err;
#define SET(opt, val)                                                                                                  \
    do {                                                                                                               \
        if (rc == CURLE_OK)                                                                                            \
            rc = curl_easy_setopt(t->easy, opt, val);                                                                  \
    } while (0)
    SET(CURLOPT_URL, t->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_PROXY, ""); /* never through a proxy from the environment */
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    if (t->stall) {
        SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
        SET(CURLOPT_LOW_SPEED_TIME, req->stall_seconds);
    }
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->max_bytes);
    SET(CURLOPT_FOLLOWLOCATION, t->redirects ? 1L : 0L);
    if (t->redirects) {
        SET(CURLOPT_MAXREDIRS, req->max_redirects);
        SET(CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https"); /* never from https down to http */
    }
    SET(CURLOPT_ERRORBUFFER, t->errbuf);
    SET(CURLOPT_USERAGENT, "membrane/" MEMBRANE_VERSION);
    SET(CURLOPT_HTTPHEADER, t->headers);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, t);
    SET(CURLOPT_PRIVATE, t);
    SET(CURLOPT_ACCEPT_ENCODING, "");
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        SET(CURLOPT_CUSTOMREQUEST, t->method);
    if (strcmp(method, "HEAD") == 0)
        SET(CURLOPT_NOBODY, 1L);
    if (t->body) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->body_len);
        SET(CURLOPT_POSTFIELDS, t->body);
    }
    if (req->ca_pem) {
        /* the extra CAs are trusted beside the system's: a blob replaces the CA file, the CA directory stays */
        struct curl_blob blob = {.data = (void *)req->ca_pem, .len = strlen(req->ca_pem), .flags = CURL_BLOB_COPY};
        char *capath = NULL;
        SET(CURLOPT_CAINFO_BLOB, &blob);
        if (rc == CURLE_OK && curl_easy_getinfo(t->easy, CURLINFO_CAPATH, &capath) == CURLE_OK && capath)
            SET(CURLOPT_CAPATH, capath);
        else
            SET(CURLOPT_CAPATH, X509_get_default_cert_dir());
    }
#undef SET
    if (rc != CURLE_OK)
        return mb_error_set(rc == CURLE_OUT_OF_MEMORY ? MB_ENOMEM : MB_ERROR, "libcurl refused an option for %s %s: %s",
                            method, t->url, curl_easy_strerror(rc));
    return 0;
}

int net_transfer_start(net_transfer **out, net_loop *l, const net_request *req)
{
    int err = 0;
    net_transfer *t = NULL;

    if (out)
        *out = NULL;
    if ((err = request_check(req)) < 0)
        return err;
    if (!(t = calloc(1, sizeof(*t))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    atomic_init(&t->refs, 1);
    atomic_init(&t->cancel, false);
    t->loop = l;
    if ((err = transfer_setup(t, req)) < 0)
        goto done;
    pthread_mutex_lock(&l->mu);
    if (l->stopping) {
        pthread_mutex_unlock(&l->mu);
        err = mb_error_set(MB_ERROR, "the transfer loop has stopped; %s %s was not started", t->method, t->url);
        goto done;
    }
    if (out) {
        atomic_fetch_add(&t->refs, 1);
        *out = t;
    }
    /* one wake-up for a batch: a list that was not empty has one on its way, and the loop takes the whole
     * list when it comes (a run's eleven starts cost one wake-up of the loop, not eleven) */
    bool wake = !l->pending;
    t->next = l->pending;
    l->pending = t;
    t = NULL;
    pthread_mutex_unlock(&l->mu);
    if (wake)
        curl_multi_wakeup(l->multi);
done:
    transfer_unref(t);
    return err;
}

/* ---- the loop ------------------------------------------------------------ */

static void bytes_text(char *buf, size_t size, long long n)
{
    if (n >= 1024 * 1024 && n % (1024 * 1024) == 0)
        snprintf(buf, size, "%lld MiB", n / (1024 * 1024));
    else if (n >= 1024 && n % 1024 == 0)
        snprintf(buf, size, "%lld KiB", n / 1024);
    else
        snprintf(buf, size, "%lld bytes", n);
}

/* Takes t out of the multi, calls its callback once with what it got, and drops the loop's reference. */
static void transfer_finish(net_loop *l, net_transfer *t, CURLcode code, bool cancelled)
{
    net_result r = {.curl_code = (int)code, .error = "", .total_bytes = -1};
    char error[NET_ERROR_MAX], size[32];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    curl_off_t us = 0, cus = 0, total = -1;
    char *ctype = NULL, *location = NULL;
    struct curl_header *challenge = NULL;

    curl_multi_remove_handle(l->multi, t->easy);
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(t->easy, CURLINFO_OS_ERRNO, &r.os_errno);
    curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &us);
    curl_easy_getinfo(t->easy, CURLINFO_APPCONNECT_TIME_T, &cus);
    if (cus == 0)
        curl_easy_getinfo(t->easy, CURLINFO_CONNECT_TIME_T, &cus);
    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &total);
    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ctype);
    curl_easy_getinfo(t->easy, CURLINFO_REDIRECT_URL, &location);
    r.latency_ms = (long)((us + 500) / 1000);
    r.connect_ms = (long)((cus + 500) / 1000);
    r.total_bytes = (long long)total;
    r.content_type = ctype;
    if (curl_easy_header(t->easy, "WWW-Authenticate", 0, CURLH_HEADER, -1, &challenge) == CURLHE_OK && challenge)
        r.www_authenticate = challenge->value;
    r.bytes = t->bytes;
    r.body = t->keep_body ? (t->buf ? t->buf : "") : NULL;
    r.body_len = t->keep_body ? t->len : 0;
    if (EVP_DigestFinal_ex(t->md, md, &mdlen) == 1)
        for (unsigned int i = 0; i < mdlen && i < 32; i++)
            snprintf(r.sha256_hex + 2 * i, 3, "%02x", md[i]);

    bytes_text(size, sizeof(size), t->max_bytes);
    if (cancelled) {
        r.outcome = NET_CANCELLED;
        snprintf(error, sizeof(error), "%s %s was cancelled", t->method, t->url);
    } else if (t->too_big || code == CURLE_FILESIZE_EXCEEDED) {
        r.outcome = NET_TOO_BIG;
        snprintf(error, sizeof(error), "%s %s answered more than %s; at most that much is read", t->method, t->url,
                 size);
    } else if (t->nomem) {
        r.outcome = NET_FAILED;
        snprintf(error, sizeof(error), "out of memory receiving %s %s", t->method, t->url);
    } else if (t->data_refused) {
        r.outcome = NET_FAILED;
        snprintf(error, sizeof(error), "the receiver of %s %s refused its data", t->method, t->url);
    } else if (code == CURLE_OPERATION_TIMEDOUT && t->stall && strncmp(t->errbuf, "Operation too slow", 18) == 0) {
        r.outcome = NET_STALLED;
        snprintf(error, sizeof(error), "%s %s stalled: no byte came for too long (%s)", t->method, t->url, t->errbuf);
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
        r.outcome = NET_TIMEOUT;
        snprintf(error, sizeof(error), "%s %s did not finish in time (%s)", t->method, t->url, t->errbuf);
    } else if (code == CURLE_TOO_MANY_REDIRECTS || (t->redirects && code == CURLE_UNSUPPORTED_PROTOCOL)) {
        r.outcome = NET_REDIRECT;
        r.location = location;
        snprintf(error, sizeof(error),
                 "%s %s: a redirect was refused (%s); only https may follow https, within "
                 "the redirect limit",
                 t->method, t->url, t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
    } else if (code != CURLE_OK) {
        r.outcome = NET_FAILED;
        snprintf(error, sizeof(error), "%s %s failed: %s", t->method, t->url,
                 t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
    } else {
        r.outcome = NET_DONE;
        error[0] = '\0';
    }
    r.error = error;
    if (l->opts.on_finish)
        l->opts.on_finish(t->kind, t->bytes, us / 1e6);
    /* the token goes before the callback runs: nothing after this point sends it */
    wipe_list(t->headers);
    t->headers = NULL;
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, NULL);
    t->on_done(t->ctx, &r);
    transfer_dispose(t);
    transfer_unref(t);
}

static void *loop_main(void *arg)
{
    net_loop *l = arg;
    bool stopping = false;

    while (!stopping) {
        net_transfer *add, *next, **pp;
        int running = 0, left = 0;
        CURLMsg *msg;

        pthread_mutex_lock(&l->mu);
        add = l->pending;
        l->pending = NULL;
        stopping = l->stopping;
        pthread_mutex_unlock(&l->mu);
        for (; add; add = next) {
            next = add->next;
            add->next = l->active;
            l->active = add;
            if (curl_multi_add_handle(l->multi, add->easy) != CURLM_OK)
                atomic_store(&add->cancel, true); /* reported as cancelled below, never left hanging */
        }
        /* the cancelled (and, when stopping, all) end here */
        for (pp = &l->active; *pp;) {
            net_transfer *t = *pp;
            if (stopping || atomic_load(&t->cancel)) {
                *pp = t->next;
                transfer_finish(l, t, CURLE_ABORTED_BY_CALLBACK, true);
            } else {
                pp = &t->next;
            }
        }
        if (stopping)
            break;
        curl_multi_perform(l->multi, &running);
        while ((msg = curl_multi_info_read(l->multi, &left))) {
            net_transfer *t = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *easy = msg->easy_handle;
            CURLcode code = msg->data.result;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
            for (pp = &l->active; *pp && *pp != t; pp = &(*pp)->next)
                ;
            if (*pp)
                *pp = t->next;
            transfer_finish(l, t, code, atomic_load(&t->cancel) && code != CURLE_OK);
        }
        curl_multi_poll(l->multi, NULL, 0, 1000, NULL);
    }
    return NULL;
}

int net_loop_new(net_loop **out, const net_loop_opts *opts)
{
    net_loop *l = NULL;
    int err = 0;

    *out = NULL;
    pthread_once(&curl_once, curl_init_once);
    if (curl_once_rc != CURLE_OK)
        return mb_error_set(MB_ERROR, "libcurl could not be initialised (curl_global_init failed)");
    if (!(l = calloc(1, sizeof(*l))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    if (opts)
        l->opts = *opts;
    pthread_mutex_init(&l->mu, NULL);
    if (!(l->multi = curl_multi_init())) {
        err = mb_error_set(MB_ENOMEM, "out of memory making a curl multi handle");
        goto done;
    }
    /* one host is not flooded: beyond this many connections to it, its transfers wait their turn in the multi */
    curl_multi_setopt(l->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)NET_HOST_CONNECTIONS_MAX);
    if (pthread_create(&l->thread, NULL, loop_main, l) != 0) {
        err = mb_error_set(MB_ERROR, "cannot start the transfer loop's thread");
        goto done;
    }
    l->started = true;
    *out = l;
    l = NULL;
done:
    net_loop_free(l);
    return err;
}

void net_loop_free(net_loop *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stopping = true;
    pthread_mutex_unlock(&l->mu);
    if (l->started) {
        curl_multi_wakeup(l->multi);
        pthread_join(l->thread, NULL);
    }
    if (l->multi)
        curl_multi_cleanup(l->multi);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

bool net_loop_is_current(const net_loop *l)
{
    return l && l->started && pthread_equal(pthread_self(), l->thread);
}

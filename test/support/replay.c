/*
 * The replay server of replay.h: one thread polling a listening socket on
 * 127.0.0.1 and its accepted connections, reading whole HTTP/1.1 requests,
 * recording them and writing the next scripted reply. A wake-up pipe lets
 * replay_free() end the thread at once.
 */
#include "replay.h"
#include "util/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 32

typedef struct {
    int fd;
    int id;
    SSL *ssl;
    char client_cn[128];
    char *buf;
    size_t len, cap;
    bool held;      /* a reply left open: only watch for the client leaving */
    bool continued; /* "100 Continue" already sent for the pending request */
    bool waiting;   /* a delayed reply is due at due_ms: nothing else is answered before */
    long due_ms;
    replay_reply pending;
    replay_request *pending_q;
} conn;

typedef struct {
    replay_reply reply; /* with owned copies of headers, body and pieces */
    char *method;       /* routes only: NULL matches any */
    char *target;       /* routes only */
} script_item;

struct replay {
    int listen_fd;
    int wake[2];
    char url[64];
    pthread_t thread;
    int listen_after_ms;
    SSL_CTX *ssl_ctx;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    script_item *script;
    size_t nscript, script_cap, next;
    script_item *routes;
    size_t nroutes, routes_cap;
    replay_request **requests;
    size_t nrequests, requests_cap;

    conn conns[MAX_CONNS];
    size_t nconns;
    int conn_ids;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        abort();
    if (n)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void send_all(int fd, SSL *ssl, const char *data, size_t len)
{
    if (ssl) {
        while (len > 0) {
            int n = SSL_write(ssl, data, len > 65536 ? 65536 : (int)len);
            if (n <= 0)
                return;
            data += n;
            len -= (size_t)n;
        }
        return;
    }
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

static void conn_close(replay *r, size_t i)
{
    SSL_free(r->conns[i].ssl);
    close(r->conns[i].fd);
    free(r->conns[i].buf);
    r->conns[i] = r->conns[r->nconns - 1];
    r->nconns--;
}

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 404: return "Not Found";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

/* Writes reply on c; returns false when the connection is to be closed. */
static bool reply_send(conn *c, const replay_reply *rep)
{
    char head[4096];
    size_t len = rep->body ? (rep->len ? rep->len : strlen(rep->body)) : 0;
    bool has_type = rep->headers && strcasestr(rep->headers, "content-type:");

    if (rep->status == 0)
        return false;
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n%s", rep->status, status_text(rep->status),
                     has_type ? "" : "Content-Type: application/json\r\n");
    if (rep->chunked)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Transfer-Encoding: chunked\r\n");
    else
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", len);
    n += snprintf(head + n, sizeof(head) - (size_t)n, "%s\r\n", rep->headers ? rep->headers : "");
    send_all(c->fd, c->ssl, head, (size_t)n);

    if (!rep->chunked) {
        if (rep->drop && rep->drop_at < len) {
            send_all(c->fd, c->ssl, rep->body, rep->drop_at);
            return false;
        }
        send_all(c->fd, c->ssl, rep->body, len);
        return true;
    }

    size_t off = 0;
    size_t one[2] = {len, 0};
    const size_t *pieces = rep->pieces ? rep->pieces : one;
    for (size_t i = 0; pieces[i] && off < len; i++) {
        size_t piece = pieces[i];
        if (piece > len - off)
            piece = len - off;
        if (i > 0 && rep->pause_ms > 0)
            sleep_ms(rep->pause_ms);
        char size_line[32];
        int m = snprintf(size_line, sizeof(size_line), "%zx\r\n", piece);
        send_all(c->fd, c->ssl, size_line, (size_t)m);
        if (rep->drop && off + piece > rep->drop_at) {
            send_all(c->fd, c->ssl, rep->body + off, rep->drop_at - off);
            return false;
        }
        send_all(c->fd, c->ssl, rep->body + off, piece);
        send_all(c->fd, c->ssl, "\r\n", 2);
        off += piece;
    }
    if (rep->drop)
        return false;
    if (rep->hold) {
        c->held = true;
        return true;
    }
    send_all(c->fd, c->ssl, "0\r\n\r\n", 5);
    return true;
}

static void request_free(replay_request *q)
{
    if (!q)
        return;
    free(q->target);
    for (size_t i = 0; i < q->nheaders; i++) {
        free(q->names[i]);
        free(q->values[i]);
    }
    free(q->names);
    free(q->values);
    free(q->body);
    free(q);
}

const char *replay_header(const replay_request *q, const char *name)
{
    for (size_t i = 0; q && i < q->nheaders; i++)
        if (strcasecmp(q->names[i], name) == 0)
            return q->values[i];
    return NULL;
}

/*
 * Parses the head of the request in c->buf (ending at head_end, the index just
 * past "\r\n\r\n"). Returns NULL when malformed.
 */
static replay_request *request_parse_head(const char *buf, size_t head_end)
{
    replay_request *q = calloc(1, sizeof(*q));
    if (!q)
        abort();
    const char *p = buf;
    const char *end = buf + head_end;
    const char *eol = strstr(p, "\r\n");
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || (size_t)(sp1 - p) >= sizeof(q->method)) {
        request_free(q);
        return NULL;
    }
    memcpy(q->method, p, (size_t)(sp1 - p));
    q->target = dup_n(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    for (p = eol + 2; p < end - 2; p = eol + 2) {
        eol = strstr(p, "\r\n");
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon)
            continue;
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        q->names = realloc(q->names, (q->nheaders + 1) * sizeof(char *));
        q->values = realloc(q->values, (q->nheaders + 1) * sizeof(char *));
        if (!q->names || !q->values)
            abort();
        q->names[q->nheaders] = dup_n(p, (size_t)(colon - p));
        q->values[q->nheaders] = dup_n(v, (size_t)(eol - v));
        q->nheaders++;
    }
    return q;
}

static void request_record(replay *r, replay_request *q)
{
    pthread_mutex_lock(&r->lock);
    if (r->nrequests == r->requests_cap) {
        r->requests_cap = r->requests_cap ? r->requests_cap * 2 : 16;
        r->requests = realloc(r->requests, r->requests_cap * sizeof(*r->requests));
        if (!r->requests)
            abort();
    }
    r->requests[r->nrequests++] = q;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static bool route_matches(const script_item *it, const replay_request *q)
{
    size_t n = strlen(it->target);
    if (it->method && strcmp(it->method, q->method) != 0)
        return false;
    if (n > 0 && it->target[n - 1] == '*')
        return strncmp(it->target, q->target, n - 1) == 0;
    return strcmp(it->target, q->target) == 0;
}

static replay_reply script_next(replay *r, const replay_request *q)
{
    static const char exhausted[] =
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
        "\"message\":\"replay: no reply left in the script\",\"reason\":\"InternalError\",\"code\":500}";
    replay_reply rep = {.status = 500, .body = exhausted};
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nroutes; i++) {
        if (route_matches(&r->routes[i], q)) {
            rep = r->routes[i].reply;
            pthread_mutex_unlock(&r->lock);
            return rep;
        }
    }
    if (r->next < r->nscript)
        rep = r->script[r->next++].reply;
    pthread_mutex_unlock(&r->lock);
    return rep;
}

static void mark_answered(replay *r, replay_request *q)
{
    pthread_mutex_lock(&r->lock);
    q->answered_ms = mb_monotonic_ms();
    pthread_mutex_unlock(&r->lock);
}

/* Handles the bytes buffered on connection i; returns false when it was closed. */
static bool conn_serve(replay *r, size_t i)
{
    conn *c = &r->conns[i];
    for (;;) {
        if (c->waiting)
            return true;
        char *head_end = c->len >= 4 ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (!head_end)
            return true;
        size_t head_len = (size_t)(head_end - c->buf) + 4;
        char saved = c->buf[head_len - 1];
        c->buf[head_len - 1] = '\0'; /* the head as a string for strstr */
        replay_request *q = request_parse_head(c->buf, head_len);
        c->buf[head_len - 1] = saved;
        if (!q) {
            conn_close(r, i);
            return false;
        }
        const char *cl = replay_header(q, "content-length");
        size_t body_len = cl ? strtoul(cl, NULL, 10) : 0;
        const char *expect = replay_header(q, "expect");
        if (c->len < head_len + body_len) {
            if (expect && strcasecmp(expect, "100-continue") == 0 && !c->continued) {
                send_all(c->fd, c->ssl, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                c->continued = true;
            }
            request_free(q);
            return true;
        }
        q->body = dup_n(c->buf + head_len, body_len);
        q->body_len = body_len;
        memmove(c->buf, c->buf + head_len + body_len, c->len - head_len - body_len);
        c->len -= head_len + body_len;
        c->continued = false;
        q->conn = c->id;
        memcpy(q->client_cn, c->client_cn, sizeof(q->client_cn));
        q->received_ms = mb_monotonic_ms();
        request_record(r, q);

        replay_reply rep = script_next(r, q);
        if (rep.delay_ms > 0) {
            c->waiting = true;
            c->due_ms = mb_monotonic_ms() + rep.delay_ms;
            c->pending = rep;
            c->pending_q = q;
            return true;
        }
        mark_answered(r, q); /* before the client can see the answer */
        bool open = reply_send(c, &rep);
        if (!open) {
            conn_close(r, i);
            return false;
        }
        if (c->held)
            return true;
    }
}

/* Sends the delayed reply of connection i when it is due, then serves what came meanwhile. */
static void conn_due(replay *r, size_t i)
{
    conn *c = &r->conns[i];
    if (!c->waiting || mb_monotonic_ms() < c->due_ms)
        return;
    c->waiting = false;
    mark_answered(r, c->pending_q); /* before the client can see the answer */
    bool open = reply_send(c, &c->pending);
    if (!open)
        conn_close(r, i);
    else if (!c->held)
        conn_serve(r, i);
}

static void conn_readable(replay *r, size_t i)
{
    conn *c = &r->conns[i];
    char tmp[16384];
    ssize_t n;
    do {
        n = c->ssl ? SSL_read(c->ssl, tmp, sizeof(tmp)) : recv(c->fd, tmp, sizeof(tmp), 0);
        if (n < 0 && !c->ssl && errno == EINTR)
            return;
        if (n <= 0) {
            conn_close(r, i);
            return;
        }
        if (c->held)
            continue; /* nothing more is answered on a held stream */
        if (c->len + (size_t)n + 1 > c->cap) {
            c->cap = (c->len + (size_t)n + 1) * 2;
            c->buf = realloc(c->buf, c->cap);
            if (!c->buf)
                abort();
        }
        memcpy(c->buf + c->len, tmp, (size_t)n);
        c->len += (size_t)n;
    } while (c->ssl && SSL_pending(c->ssl) > 0);
    if (!c->held && !c->waiting)
        conn_serve(r, i);
}

/* The TLS handshake on a new connection; false when it failed (the client gave up, or no client certificate). */
static bool tls_accept(replay *r, conn *c)
{
    if (!(c->ssl = SSL_new(r->ssl_ctx)) || !SSL_set_fd(c->ssl, c->fd) || SSL_accept(c->ssl) != 1) {
        ERR_clear_error();
        return false;
    }
    X509 *peer = SSL_get1_peer_certificate(c->ssl);
    if (peer) {
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, c->client_cn, sizeof(c->client_cn));
        X509_free(peer);
    }
    return true;
}

static SSL_CTX *tls_context(const replay_opts *opts)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    BIO *b = NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    bool ok = false;

    if (!ctx)
        return NULL;
    if ((b = BIO_new_mem_buf(opts->tls_cert, -1)) && (cert = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        BIO_free(b);
        if ((b = BIO_new_mem_buf(opts->tls_key, -1)) && (key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)))
            ok = SSL_CTX_use_certificate(ctx, cert) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1;
    }
    BIO_free(b);
    X509_free(cert);
    EVP_PKEY_free(key);
    if (ok && opts->tls_client_ca) {
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        X509 *ca = NULL;
        ok = (b = BIO_new_mem_buf(opts->tls_client_ca, -1)) && (ca = PEM_read_bio_X509(b, NULL, NULL, NULL)) &&
             X509_STORE_add_cert(store, ca) == 1;
        BIO_free(b);
        X509_free(ca);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static void *replay_main(void *arg)
{
    replay *r = arg;
    long listen_at = mb_monotonic_ms() + r->listen_after_ms;
    bool listening = r->listen_after_ms <= 0;
    struct pollfd pfds[MAX_CONNS + 2];

    for (;;) {
        size_t n = 0;
        pfds[n++] = (struct pollfd){.fd = r->wake[0], .events = POLLIN};
        if (listening)
            pfds[n++] = (struct pollfd){.fd = r->listen_fd, .events = POLLIN};
        size_t first_conn = n;
        for (size_t i = 0; i < r->nconns; i++)
            pfds[n++] = (struct pollfd){.fd = r->conns[i].fd, .events = POLLIN};
        int timeout = -1;
        if (!listening) {
            long left = listen_at - mb_monotonic_ms();
            timeout = left > 0 ? (int)left : 0;
        }
        for (size_t i = 0; i < r->nconns; i++) {
            if (r->conns[i].waiting) {
                long left = r->conns[i].due_ms - mb_monotonic_ms();
                if (left < 0)
                    left = 0;
                if (timeout < 0 || left < timeout)
                    timeout = (int)left;
            }
        }
        int rc = poll(pfds, n, timeout);
        if (rc < 0 && errno != EINTR)
            break;
        if (pfds[0].revents) {
            char cmd = 'q';
            if (read(r->wake[0], &cmd, 1) != 1 || cmd == 'q')
                break;
            while (r->nconns > 0) /* 'h': hang up on every client */
                conn_close(r, r->nconns - 1);
            continue;
        }
        if (!listening) {
            if (mb_monotonic_ms() >= listen_at) {
                listen(r->listen_fd, 16);
                listening = true;
            }
            continue;
        }
        /* connections first (indices shift when one closes, so walk backwards) */
        for (size_t k = n; k-- > first_conn;) {
            if (pfds[k].revents)
                conn_readable(r, k - first_conn);
        }
        for (size_t k = r->nconns; k-- > 0;)
            conn_due(r, k);
        if (pfds[1].revents & POLLIN) {
            int fd = accept(r->listen_fd, NULL, NULL);
            if (fd >= 0) {
                conn c = {.fd = fd, .id = ++r->conn_ids};
                if (r->nconns == MAX_CONNS || (r->ssl_ctx && !tls_accept(r, &c))) {
                    SSL_free(c.ssl);
                    close(fd);
                } else {
                    r->conns[r->nconns++] = c;
                }
            }
        }
    }
    return NULL;
}

int replay_start(replay **out, const replay_opts *opts)
{
    replay *r = calloc(1, sizeof(*r));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(addr);
    int one = 1;

    *out = NULL;
    if (!r)
        return -1;
    r->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    r->listen_after_ms = opts ? opts->listen_after_ms : 0;
    if (opts && opts->tls_cert) {
        signal(SIGPIPE, SIG_IGN); /* OpenSSL writes to sockets the client may have closed */
        if (!(r->ssl_ctx = tls_context(opts))) {
            close(r->listen_fd);
            free(r);
            return -1;
        }
    }
    if (r->listen_fd < 0 || setsockopt(r->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(r->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        getsockname(r->listen_fd, (struct sockaddr *)&addr, &alen) < 0 ||
        (r->listen_after_ms <= 0 && listen(r->listen_fd, 16) < 0) || pipe(r->wake) < 0) {
        if (r->listen_fd >= 0)
            close(r->listen_fd);
        SSL_CTX_free(r->ssl_ctx);
        free(r);
        return -1;
    }
    snprintf(r->url, sizeof(r->url), "%s://127.0.0.1:%u", r->ssl_ctx ? "https" : "http",
             (unsigned)ntohs(addr.sin_port));
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    if (pthread_create(&r->thread, NULL, replay_main, r) != 0) {
        SSL_CTX_free(r->ssl_ctx);
        close(r->listen_fd);
        close(r->wake[0]);
        close(r->wake[1]);
        free(r);
        return -1;
    }
    *out = r;
    return 0;
}

static script_item item_copy(const replay_reply *reply)
{
    script_item it = {.reply = *reply};
    if (reply->headers)
        it.reply.headers = dup_n(reply->headers, strlen(reply->headers));
    if (reply->body) {
        size_t len = reply->len ? reply->len : strlen(reply->body);
        it.reply.body = dup_n(reply->body, len);
        it.reply.len = len;
    }
    if (reply->pieces) {
        size_t n = 0;
        while (reply->pieces[n])
            n++;
        size_t *p = calloc(n + 1, sizeof(size_t));
        if (!p)
            abort();
        memcpy(p, reply->pieces, n * sizeof(size_t));
        it.reply.pieces = p;
    }
    return it;
}

static void item_free(script_item *it)
{
    free((char *)it->reply.headers);
    free((char *)it->reply.body);
    free((size_t *)it->reply.pieces);
    free(it->method);
    free(it->target);
}

void replay_route(replay *r, const char *method, const char *target, const replay_reply *reply)
{
    script_item it = item_copy(reply);
    it.method = method ? dup_n(method, strlen(method)) : NULL;
    it.target = dup_n(target, strlen(target));
    pthread_mutex_lock(&r->lock);
    if (r->nroutes == r->routes_cap) {
        r->routes_cap = r->routes_cap ? r->routes_cap * 2 : 8;
        r->routes = realloc(r->routes, r->routes_cap * sizeof(*r->routes));
        if (!r->routes)
            abort();
    }
    r->routes[r->nroutes++] = it;
    pthread_mutex_unlock(&r->lock);
}

void replay_add(replay *r, const replay_reply *reply)
{
    script_item it = item_copy(reply);
    pthread_mutex_lock(&r->lock);
    if (r->nscript == r->script_cap) {
        r->script_cap = r->script_cap ? r->script_cap * 2 : 8;
        r->script = realloc(r->script, r->script_cap * sizeof(*r->script));
        if (!r->script)
            abort();
    }
    r->script[r->nscript++] = it;
    pthread_mutex_unlock(&r->lock);
}

const char *replay_url(const replay *r)
{
    return r->url;
}

size_t replay_count(replay *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->nrequests;
    pthread_mutex_unlock(&r->lock);
    return n;
}

bool replay_wait(replay *r, size_t n, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->lock);
    while (r->nrequests < n) {
        if (pthread_cond_timedwait(&r->cond, &r->lock, &deadline) == ETIMEDOUT)
            break;
    }
    bool ok = r->nrequests >= n;
    pthread_mutex_unlock(&r->lock);
    return ok;
}

const replay_request *replay_get(replay *r, size_t i)
{
    pthread_mutex_lock(&r->lock);
    const replay_request *q = i < r->nrequests ? r->requests[i] : NULL;
    pthread_mutex_unlock(&r->lock);
    return q;
}

void replay_hangup(replay *r)
{
    char b = 'h';
    if (write(r->wake[1], &b, 1) != 1)
        abort();
}

void replay_free(replay *r)
{
    if (!r)
        return;
    char b = 'q';
    if (write(r->wake[1], &b, 1) != 1)
        abort();
    pthread_join(r->thread, NULL);
    while (r->nconns > 0)
        conn_close(r, r->nconns - 1);
    close(r->listen_fd);
    close(r->wake[0]);
    close(r->wake[1]);
    for (size_t i = 0; i < r->nscript; i++)
        item_free(&r->script[i]);
    free(r->script);
    for (size_t i = 0; i < r->nroutes; i++)
        item_free(&r->routes[i]);
    free(r->routes);
    for (size_t i = 0; i < r->nrequests; i++)
        request_free(r->requests[i]);
    free(r->requests);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    SSL_CTX_free(r->ssl_ctx);
    free(r);
}

kube_config *replay_config(const replay *r, const char *token)
{
    kube_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        abort();
    pthread_mutex_init(&cfg->lock, NULL);
    cfg->source = dup_n("replay", 6);
    cfg->server = dup_n(r->url, strlen(r->url));
    if (token)
        cfg->token = dup_n(token, strlen(token));
    return cfg;
}

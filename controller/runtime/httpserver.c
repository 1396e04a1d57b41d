/*
 * /metrics, /healthz and /readyz over libwebsockets' plain HTTP server: one
 * lws context with a vhost per listen address, serviced by one thread.
 * Without mounts, lws hands every request to the vhost's first protocol
 * (LWS_CALLBACK_HTTP with the path), which answers it whole: headers with a
 * Content-Length (so keep-alive works), then the body in pieces as the
 * socket takes them. Two things lws 4.1 does not do well are done here
 * first: it binds an IPv4 literal to every interface unless IPv6 is
 * switched off on that vhost, and it accepts an address that is not local
 * without a listener (it waits for the "interface" to appear), so names are
 * resolved here, IPv6 is switched off for IPv4 addresses, and a test bind
 * says clearly when an address cannot be listened on.
 */
#include "runtime/httpserver.h"
#include "runtime/metrics_families.h"
#include "util/error.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK 16384
#define REASON_MAX 256

enum { SERVE_METRICS = 1, SERVE_HEALTH = 2 };

typedef struct {
    struct lws_vhost *vh;
    int serves; /* SERVE_* bits */
    int port;
} listener;

struct httpserver {
    httpserver_opts opts;
    struct lws_context *ctx;
    listener listeners[2];
    int nlisteners;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
};

/* Per HTTP transaction: the answer being written. */
typedef struct {
    char *body;
    size_t len, off;
} session;

/* ---- addresses ---- */

int httpserver_addr_parse(httpserver_addr *out, const char *s, const char *flag)
{
    const char *colon, *host = s;
    size_t hostlen;
    char *end = NULL;
    long port;

    memset(out, 0, sizeof(*out));
    if (!s || !*s)
        return mb_error_set(MB_EINVAL, "%s is empty: give [host]:port, e.g. :8080 or 127.0.0.1:8080", flag);
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return mb_error_set(MB_EINVAL,
                                "%s \"%s\": an IPv6 address goes in brackets before the port, "
                                "e.g. [::1]:8080",
                                flag, s);
        host = s + 1;
        hostlen = (size_t)(close - host);
        colon = close + 1;
        if (hostlen == 0)
            return mb_error_set(MB_EINVAL, "%s \"%s\": the brackets are empty", flag, s);
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return mb_error_set(MB_EINVAL,
                                "%s \"%s\" has no port: give [host]:port, e.g. :8080 or "
                                "127.0.0.1:8080",
                                flag, s);
        hostlen = (size_t)(colon - s);
        if (memchr(s, ':', hostlen))
            return mb_error_set(MB_EINVAL, "%s \"%s\": put an IPv6 address in brackets, e.g. [::1]:8080", flag, s);
    }
    if (hostlen >= sizeof(out->host))
        return mb_error_set(MB_EINVAL, "%s: the host name is longer than %zu characters", flag, sizeof(out->host) - 1);
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end || errno || port < 0 || port > 65535)
        return mb_error_set(MB_EINVAL, "%s \"%s\": the port must be a number from 0 to 65535", flag, s);
    memcpy(out->host, host, hostlen);
    out->host[hostlen] = '\0';
    out->port = (int)port;
    return 0;
}

/* Whether this kernel can make IPv6 sockets (not when booted with ipv6.disable=1). */
static bool ipv6_available(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/*
 * Resolves a.host to a numeric address in numeric (empty for every
 * interface), sets *ipv4 when it is an IPv4 address, and checks by binding
 * a socket of its own that the address and port can be listened on.
 */
static int addr_resolve(char *numeric, size_t size, bool *ipv4, const httpserver_addr *a, const char *flag,
                        const char *text)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[8];
    int fd = -1, one = 1, rc, err = 0;

    numeric[0] = '\0';
    *ipv4 = !ipv6_available();
    snprintf(port, sizeof(port), "%d", a->port);
    if ((rc = getaddrinfo(a->host[0] ? a->host : NULL, port, &hints, &res)) != 0 || !res) {
        err = mb_error_set(MB_EINVAL, "%s \"%s\": cannot resolve \"%s\": %s", flag, text, a->host, gai_strerror(rc));
        goto done;
    }
    if (a->host[0]) {
        const void *ip = res->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr
                                                   : (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
        inet_ntop(res->ai_family, ip, numeric, (socklen_t)size);
        *ipv4 = res->ai_family == AF_INET;
    }
    /* with no host, AI_PASSIVE gives the IPv4 wildcard first; lws listens on both families then */
    if ((fd = socket(res->ai_family, SOCK_STREAM, 0)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
        err = mb_error_set(MB_EIO, "%s \"%s\": cannot listen there: %s", flag, text, strerror(errno));
        goto done;
    }
done:
    if (fd >= 0)
        close(fd);
    if (res)
        freeaddrinfo(res);
    return err;
}

/* ---- answers ---- */

/* Writes the status line and headers of an answer and queues its body. 0 or -1 (close). */
static int answer(struct lws *wsi, session *ss, unsigned status, const char *content_type, char *body)
{
    uint8_t buf[LWS_PRE + 512], *start = &buf[LWS_PRE], *p = start, *end = &buf[sizeof(buf) - 1];

    free(ss->body);
    ss->body = body;
    ss->len = body ? strlen(body) : 0;
    ss->off = 0;
    if (!body)
        return -1;
    if (lws_add_http_common_headers(wsi, status, content_type, ss->len, &p, end) ||
        (status == HTTP_STATUS_METHOD_NOT_ALLOWED &&
         lws_add_http_header_by_name(wsi, (const unsigned char *)"allow:", (const unsigned char *)"GET", 3, &p, end)) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:", (const unsigned char *)"no-store", 8,
                                    &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

/* "<line>\n" in a new allocation; NULL when out of memory. */
static char *text_line(const char *line)
{
    char *s = NULL;
    if (asprintf(&s, "%s\n", line) < 0)
        return NULL;
    return s;
}

/* 200 "ok", or 503 with the check's reason. */
static int answer_check(struct lws *wsi, session *ss, httpserver_check_fn check, void *ctx, const char *what)
{
    char reason[REASON_MAX] = "";
    if (!check || check(ctx, reason, sizeof(reason)))
        return answer(wsi, ss, HTTP_STATUS_OK, "text/plain; charset=utf-8", text_line("ok"));
    reason[strcspn(reason, "\r\n")] = '\0';
    if (!reason[0])
        snprintf(reason, sizeof(reason), "%s", what);
    return answer(wsi, ss, HTTP_STATUS_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", text_line(reason));
}

static int answer_metrics(struct lws *wsi, session *ss, httpserver *s)
{
    metrics_registry *r = s->opts.registry ? s->opts.registry : metrics_default();
    char *out = NULL;
    if (metrics_render(&out, r) < 0) {
        log_warn("/metrics: %s", mb_error_last());
        return answer(wsi, ss, HTTP_STATUS_INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8",
                      text_line("cannot render the metrics: out of memory"));
    }
    return answer(wsi, ss, HTTP_STATUS_OK, METRICS_CONTENT_TYPE, out);
}

static int route(struct lws *wsi, session *ss, const char *path)
{
    httpserver *s = lws_context_user(lws_get_context(wsi));
    struct lws_vhost *vh = lws_get_vhost(wsi);
    int serves = 0;

    for (int i = 0; i < s->nlisteners; i++)
        if (s->listeners[i].vh == vh)
            serves = s->listeners[i].serves;
    if (!((serves & SERVE_METRICS) && strcmp(path, "/metrics") == 0) &&
        !((serves & SERVE_HEALTH) && (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0)))
        return answer(wsi, ss, HTTP_STATUS_NOT_FOUND, "text/plain; charset=utf-8", text_line("404 page not found"));
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
        return answer(wsi, ss, HTTP_STATUS_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
                      text_line("method not allowed: use GET"));
    if (strcmp(path, "/metrics") == 0)
        return answer_metrics(wsi, ss, s);
    if (strcmp(path, "/healthz") == 0)
        return answer_check(wsi, ss, s->opts.alive, s->opts.alive_ctx, "not alive");
    return answer_check(wsi, ss, s->opts.ready, s->opts.ready_ctx, "not ready");
}

/* The next piece of the body; the last ends the transaction. */
static int write_body(struct lws *wsi, session *ss)
{
    uint8_t buf[LWS_PRE + CHUNK];
    size_t n = ss->len - ss->off < CHUNK ? ss->len - ss->off : CHUNK;
    bool last = ss->off + n == ss->len;

    memcpy(&buf[LWS_PRE], ss->body + ss->off, n);
    if (lws_write(wsi, &buf[LWS_PRE], n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
        return -1;
    ss->off += n;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    free(ss->body);
    ss->body = NULL;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int on_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    session *ss = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP: return route(wsi, ss, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!ss || !ss->body)
            return 0;
        return write_body(wsi, ss);
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (ss) {
            free(ss->body);
            ss->body = NULL;
        }
        break;
    default: break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {.name = "http", .callback = on_http, .per_session_data_size = sizeof(session)},
    {0},
};

/* ---- the server ---- */

static void lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    MB_LOG(level == LLL_ERR ? MB_LOG_WARN : MB_LOG_DEBUG, NULL, "libwebsockets: %.*s", (int)n, line);
}

static void *service_main(void *arg)
{
    httpserver *s = arg;
    while (!atomic_load(&s->stop))
        if (lws_service(s->ctx, 0) < 0)
            break;
    if (!atomic_load(&s->stop))
        log_error("the metrics and health server stopped serving");
    return NULL;
}

static int listener_add(httpserver *s, const char *text, const char *flag, int serves)
{
    struct lws_context_creation_info info;
    httpserver_addr a;
    char numeric[INET6_ADDRSTRLEN] = "";
    bool ipv4 = false;
    listener *l = &s->listeners[s->nlisteners];
    int err = 0;

    if ((err = httpserver_addr_parse(&a, text, flag)) < 0 ||
        (err = addr_resolve(numeric, sizeof(numeric), &ipv4, &a, flag, text)) < 0)
        return err;
    memset(&info, 0, sizeof(info));
    info.port = a.port;
    info.iface = numeric[0] ? numeric : NULL;
    info.protocols = protocols;
    info.vhost_name = serves & SERVE_METRICS ? "metrics" : "health";
    info.options = ipv4 ? LWS_SERVER_OPTION_DISABLE_IPV6 : 0;
    info.server_string = "membrane";
    if (!(l->vh = lws_create_vhost(s->ctx, &info)))
        return mb_error_set(MB_EIO, "%s \"%s\": cannot listen there (the port may be in use)", flag, text);
    l->serves = serves;
    l->port = lws_get_vhost_listen_port(l->vh);
    s->nlisteners++;
    if (l->port <= 0 || (a.port != 0 && l->port != a.port))
        return mb_error_set(MB_EIO, "%s \"%s\": cannot listen there", flag, text);
    log_info("serving %s on %s (port %d)",
             serves == (SERVE_METRICS | SERVE_HEALTH) ? "/metrics, /healthz and /readyz"
             : serves == SERVE_METRICS                ? "/metrics"
                                                      : "/healthz and /readyz",
             text, l->port);
    return 0;
}

/* Whether two addresses name the same fixed listener (port 0 means two different free ports). */
static bool same_listener(const char *x, const char *y)
{
    httpserver_addr a, b;
    if (httpserver_addr_parse(&a, x, "") < 0 || httpserver_addr_parse(&b, y, "") < 0)
        return false;
    return a.port != 0 && a.port == b.port && strcmp(a.host, b.host) == 0;
}

int httpserver_start(httpserver **out, const httpserver_opts *opts)
{
    struct lws_context_creation_info info;
    httpserver *s = NULL;
    int err = 0;

    *out = NULL;
    if (!opts)
        return mb_error_set(MB_EINVAL, "httpserver: no options");
    if (!(s = calloc(1, sizeof(*s))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    s->opts = *opts;

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.user = s;
    if (!(s->ctx = lws_create_context(&info))) {
        err = mb_error_set(MB_ERROR, "cannot start the metrics and health server: libwebsockets failed to initialise");
        goto done;
    }
    if (opts->metrics_addr && opts->health_addr && same_listener(opts->metrics_addr, opts->health_addr)) {
        if ((err = listener_add(s, opts->metrics_addr, "--metrics-addr", SERVE_METRICS | SERVE_HEALTH)) < 0)
            goto done;
    } else {
        if (opts->metrics_addr && (err = listener_add(s, opts->metrics_addr, "--metrics-addr", SERVE_METRICS)) < 0)
            goto done;
        if (opts->health_addr && (err = listener_add(s, opts->health_addr, "--health-addr", SERVE_HEALTH)) < 0)
            goto done;
    }
    if (pthread_create(&s->thread, NULL, service_main, s) != 0) {
        err = mb_error_set(MB_ERROR, "cannot start the metrics and health server's thread");
        goto done;
    }
    s->thread_started = true;
    *out = s;
    s = NULL;
done:
    httpserver_free(s);
    return err;
}

static int port_of(const httpserver *s, int serves)
{
    for (int i = 0; s && i < s->nlisteners; i++)
        if (s->listeners[i].serves & serves)
            return s->listeners[i].port;
    return -1;
}

int httpserver_metrics_port(const httpserver *s)
{
    return port_of(s, SERVE_METRICS);
}

int httpserver_health_port(const httpserver *s)
{
    return port_of(s, SERVE_HEALTH);
}

void httpserver_free(httpserver *s)
{
    if (!s)
        return;
    if (s->thread_started) {
        atomic_store(&s->stop, true);
        lws_cancel_service(s->ctx);
        pthread_join(s->thread, NULL);
    }
    if (s->ctx)
        lws_context_destroy(s->ctx);
    free(s);
}

/*
 * governed-api-double: a local stand-in for the governed API, for tests and
 * the demo. It serves the contract endpoints (double_routes.h) on
 * 127.0.0.1, and its behaviour follows the digest the target Deployment's
 * container runs, read from the API server (at most every --cache-ms) and
 * mapped through a table of digest=behaviour, so a rollout or a rollback
 * really changes what the verification checks see. A digest without a
 * behaviour fails closed (503 everywhere but /healthz). Plain POSIX sockets,
 * one thread per connection (HTTP/1.1 keep-alive); one log line per request
 * on stderr (method, path, X-Request-ID, status; never the token); SIGTERM or
 * SIGINT closes every connection and exits 0. A test may change a digest's
 * behaviour while the double runs with the control request
 * PUT /__double/behaviour/<digest> (body: the behaviour's name), accepted
 * only from loopback. GET /metrics serves the double's own metrics
 * (double_metrics.h) for a Prometheus to scrape: every answer of the governed
 * API's endpoints counts, by status and digest. Requests without an
 * X-Request-ID are the user traffic (a load generator's; the operator's
 * checks always send one): error-5pct answers 500 to every 20th of them and
 * slow-p99 holds every 20th for --slow-p99-ms.
 *
 *   governed-api-double --listen 127.0.0.1:0 --namespace kfm --deployment kfm-api --container api \
 *       --behaviour sha256:<hex>=good --behaviour sha256:<hex>=uncited [--token T] [--kubeconfig F]
 *   governed-api-double --listen 127.0.0.1:0 --fixed-digest sha256:<hex> --behaviour sha256:<hex>=slow
 *
 *   governed-api-double --print-published-index kfm/kfm-published-datasets | kubectl create -f -
 *
 * Once listening it prints "listening on http://127.0.0.1:<port>" on stdout.
 * --print-published-index prints the ConfigMap of the published index that
 * promotes what the double serves (double_routes.h) and exits.
 * Exit codes: 0 after SIGTERM/SIGINT, 1 runtime failure, 2 bad flags.
 */
#include "double_metrics.h"
#include "double_routes.h"
#include "kube/client.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/json.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BEHAVIOURS 64
#define MAX_CONNS 256
#define HEAD_MAX (16 * 1024)
#define BODY_MAX (1024 * 1024)
#define DIGEST_MAX 80

typedef struct {
    char digest[DIGEST_MAX];
    double_behaviour behaviour;
} table_entry;

/* One connection and its thread; joined once done, so nothing outlives main. */
typedef struct {
    int fd;
    pthread_t thread;
    bool used;
    bool done;
} conn_slot;

static struct {
    /* flags */
    const char *listen;
    const char *kubeconfig;
    const char *context;
    const char *namespace;
    const char *deployment;
    const char *container;
    const char *fixed_digest;
    char *token; /* NULL: no token required */
    const char *restricted_id;
    long slow_ms;
    long slow_p99_ms;
    long cache_ms;
    bool close_connections; /* every answer says Connection: close, and the connection is closed after it */
    double_behaviour fallback;
    pthread_mutex_t table_lock; /* guards the table once serving (the control request changes it) */
    table_entry table[MAX_BEHAVIOURS];
    size_t ntable;

    kube_client *kube;
    int sig_pipe[2];  /* the signal handler writes here */
    int stop_pipe[2]; /* the write end is closed at shutdown: the read end then polls readable */

    pthread_mutex_t lock; /* guards the connections */
    pthread_cond_t idle;
    conn_slot conns[MAX_CONNS];
    size_t active; /* used and not done */
    bool stopping;

    pthread_mutex_t digest_lock; /* guards the digest cache; held while it is read from the API server */
    char digest[DIGEST_MAX];     /* the cached digest ("" unknown) */
    long fetched_ms;             /* when it was read; 0: never */
    bool fetched_once;
    char last_problem[256]; /* the last lookup problem logged, so each is logged once */
} g = {.slow_ms = 3000,
       .slow_p99_ms = 1500,
       .cache_ms = 0, /* every request reads the Deployment: a rollback that completes in a few hundred ms is seen */
       .restricted_id = "kfm.sacred-sites",
       .fallback = DOUBLE_UNKNOWN,
       .lock = PTHREAD_MUTEX_INITIALIZER,
       .idle = PTHREAD_COND_INITIALIZER,
       .digest_lock = PTHREAD_MUTEX_INITIALIZER,
       .table_lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&log_lock);
    fputs("governed-api-double: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

/* ---- the digest the Deployment runs, and its behaviour --------------------- */

static bool digest_valid(const char *d)
{
    if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 7 + 64)
        return false;
    for (const char *p = d + 7; *p; p++)
        if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f'))
            return false;
    return true;
}

static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Logs a lookup problem once (until another one, or success, replaces it). Call with g.digest_lock held. */
static void problem(const char *fmt, ...)
{
    char msg[sizeof(g.last_problem)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (strcmp(msg, g.last_problem) != 0) {
        say("%s", msg);
        snprintf(g.last_problem, sizeof(g.last_problem), "%s", msg);
    }
}

/* Reads the container's image digest from the Deployment into g.digest. Call with g.digest_lock held. */
static void digest_fetch(void)
{
    cJSON *dep = NULL;
    int err = kube_get(&dep, g.kube, &KUBE_DEPLOYMENTS, g.namespace, g.deployment);
    if (err < 0) {
        if (err == MB_ENOTFOUND) {
            g.digest[0] = '\0';
            problem("Deployment %s/%s does not exist: answering as unknown", g.namespace, g.deployment);
        } else {
            problem("cannot read Deployment %s/%s (%s): keeping digest \"%s\"", g.namespace, g.deployment,
                    mb_error_last(), g.digest);
        }
        return;
    }
    const cJSON *c;
    const char *image = NULL;
    cJSON_ArrayForEach(c, json_get(dep, "spec", "template", "spec", "containers", NULL)) {
        const char *name = json_str(c, "name", NULL);
        if (name && strcmp(name, g.container) == 0)
            image = json_str(c, "image", NULL);
    }
    const char *at = image ? strrchr(image, '@') : NULL;
    if (!image)
        problem("Deployment %s/%s has no container %s: answering as unknown", g.namespace, g.deployment, g.container);
    else if (!at || !digest_valid(at + 1))
        problem("container %s of Deployment %s/%s runs %s, not pinned by digest: answering as unknown", g.container,
                g.namespace, g.deployment, image);
    if (at && digest_valid(at + 1)) {
        if (strcmp(g.digest, at + 1) != 0)
            say("Deployment %s/%s container %s now runs %s", g.namespace, g.deployment, g.container, at + 1);
        snprintf(g.digest, sizeof(g.digest), "%s", at + 1);
        g.last_problem[0] = '\0';
    } else {
        g.digest[0] = '\0';
    }
    cJSON_Delete(dep);
}

/* The current digest (copied into out) and its behaviour. */
static double_behaviour behaviour_now(char out[DIGEST_MAX])
{
    double_behaviour b = g.fallback;
    if (g.fixed_digest) {
        snprintf(out, DIGEST_MAX, "%s", g.fixed_digest);
    } else {
        pthread_mutex_lock(&g.digest_lock);
        long t = mb_monotonic_ms();
        if (!g.fetched_once || t - g.fetched_ms >= g.cache_ms) {
            digest_fetch();
            g.fetched_ms = mb_monotonic_ms();
            g.fetched_once = true;
        }
        snprintf(out, DIGEST_MAX, "%s", g.digest);
        pthread_mutex_unlock(&g.digest_lock);
    }
    if (!out[0])
        return DOUBLE_UNKNOWN;
    pthread_mutex_lock(&g.table_lock);
    for (size_t i = 0; i < g.ntable; i++)
        if (strcmp(g.table[i].digest, out) == 0)
            b = g.table[i].behaviour;
    pthread_mutex_unlock(&g.table_lock);
    return b;
}

/* From now on digest behaves as b: its entries are replaced, or one is added; false when the table is full. */
static bool table_set(const char *digest, double_behaviour b)
{
    bool found = false, ok = true;
    pthread_mutex_lock(&g.table_lock);
    for (size_t i = 0; i < g.ntable; i++) {
        if (strcmp(g.table[i].digest, digest) == 0) {
            g.table[i].behaviour = b;
            found = true;
        }
    }
    if (!found && g.ntable < MAX_BEHAVIOURS) {
        double_metrics_declare(digest);
        snprintf(g.table[g.ntable].digest, DIGEST_MAX, "%s", digest);
        g.table[g.ntable++].behaviour = b;
    } else if (!found) {
        ok = false;
    }
    pthread_mutex_unlock(&g.table_lock);
    return ok;
}

/* ---- HTTP ------------------------------------------------------------------ */

typedef struct {
    char method[16];
    char path[2048];
    char request_id[128];
    bool has_auth;
    bool auth_ok;
    bool close;
    char *body;
    size_t body_len;
} request;

static bool send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

/* Printable copy of untrusted text for the log. */
static void printable(char *out, size_t size, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && s[i] && k + 1 < size; i++)
        out[k++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    out[k] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The path of a request target, without the query, percent-decoded. */
static void path_decode(char *out, size_t size, const char *target, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && target[i] != '?' && k + 1 < size; i++) {
        if (target[i] == '%' && i + 2 < n && hexval(target[i + 1]) >= 0 && hexval(target[i + 2]) >= 0) {
            out[k++] = (char)(hexval(target[i + 1]) * 16 + hexval(target[i + 2]));
            i += 2;
        } else {
            out[k++] = target[i];
        }
    }
    out[k] = '\0';
}

static bool token_matches(const char *value, size_t len)
{
    size_t tl;
    if (!g.token)
        return true;
    tl = strlen(g.token);
    if (len < 7 || strncasecmp(value, "Bearer ", 7) != 0)
        return false;
    value += 7;
    len -= 7;
    return len == tl && CRYPTO_memcmp(value, g.token, tl) == 0;
}

/*
 * Reads one request from fd into q, with buf/len holding bytes already read
 * (and what follows the request on return). 1: a request; 0: the client
 * closed; -1: a malformed or too large request (status in *bad).
 */
static int request_read(request *q, int fd, char *buf, size_t *len, int *bad)
{
    char *end = NULL;
    memset(q, 0, sizeof(*q));
    for (;;) {
        if (*len >= 4 && (end = memmem(buf, *len, "\r\n\r\n", 4)))
            break;
        if (*len >= HEAD_MAX) {
            *bad = 413;
            return -1;
        }
        ssize_t n = recv(fd, buf + *len, HEAD_MAX - *len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        *len += (size_t)n;
    }
    size_t head_len = (size_t)(end - buf) + 4;
    char *eol = memmem(buf, head_len, "\r\n", 2);
    char *sp1 = memchr(buf, ' ', (size_t)(eol - buf));
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || (size_t)(sp1 - buf) >= sizeof(q->method)) {
        *bad = 400;
        return -1;
    }
    memcpy(q->method, buf, (size_t)(sp1 - buf));
    path_decode(q->path, sizeof(q->path), sp1 + 1, (size_t)(sp2 - sp1 - 1));
    q->auth_ok = true;
    size_t content_length = 0;
    for (char *p = eol + 2; p < end; p = eol + 2) {
        eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
        char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon)
            continue;
        char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        size_t name_len = (size_t)(colon - p), vlen = (size_t)(eol - v);
        if (name_len == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
            content_length = strtoul(v, NULL, 10);
        } else if (name_len == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
            *bad = 411; /* the checks send Content-Length; keep the double small */
            return -1;
        } else if (name_len == 13 && strncasecmp(p, "Authorization", 13) == 0) {
            q->has_auth = true;
            q->auth_ok = token_matches(v, vlen);
        } else if (name_len == 12 && strncasecmp(p, "X-Request-ID", 12) == 0) {
            printable(q->request_id, sizeof(q->request_id), v, vlen);
        } else if (name_len == 10 && strncasecmp(p, "Connection", 10) == 0) {
            q->close = vlen >= 5 && strncasecmp(v, "close", 5) == 0;
        }
    }
    if (content_length > BODY_MAX) {
        *bad = 413;
        return -1;
    }
    if (!(q->body = malloc(content_length + 1))) {
        *bad = 500;
        return -1;
    }
    size_t have = *len - head_len < content_length ? *len - head_len : content_length;
    memcpy(q->body, buf + head_len, have);
    while (have < content_length) {
        ssize_t n = recv(fd, q->body + have, content_length - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(q->body);
            q->body = NULL;
            return 0;
        }
        have += (size_t)n;
    }
    q->body[content_length] = '\0';
    q->body_len = content_length;
    size_t used = head_len + (*len - head_len < content_length ? *len - head_len : content_length);
    memmove(buf, buf + used, *len - used);
    *len -= used;
    return 1;
}

static bool respond_as(int fd, int status, const char *type, const char *body, bool close)
{
    char head[256];
    size_t len = strlen(body);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: %s\r\n\r\n",
                     status, double_status_text(status), type, len, close ? "close" : "keep-alive");
    return send_all(fd, head, (size_t)n) && send_all(fd, body, len);
}

static bool respond(int fd, int status, const char *body, bool close)
{
    return respond_as(fd, status, "application/json", body, close);
}

/* The user traffic's requests so far (those without an X-Request-ID): error-5pct and slow-p99 pick every 20th. */
static atomic_ulong user_requests;

/* Waits ms, or less when shutting down; false when shutting down. */
static bool pause_ms(long ms)
{
    struct pollfd p = {.fd = g.stop_pipe[0], .events = POLLIN};
    long until = mb_monotonic_ms() + ms;
    for (;;) {
        long left = until - mb_monotonic_ms();
        if (left <= 0)
            return true;
        int rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return false;
    }
}

/* The end of a connection thread: it may now be joined. */
static void conn_done(size_t slot)
{
    pthread_mutex_lock(&g.lock);
    close(g.conns[slot].fd);
    g.conns[slot].done = true;
    g.active--;
    pthread_cond_broadcast(&g.idle);
    pthread_mutex_unlock(&g.lock);
}

/* Joins the threads that are done and frees their slots. */
static void conns_reap(void)
{
    for (size_t i = 0; i < MAX_CONNS; i++) {
        pthread_mutex_lock(&g.lock);
        bool join = g.conns[i].used && g.conns[i].done;
        pthread_mutex_unlock(&g.lock);
        if (join) {
            pthread_join(g.conns[i].thread, NULL);
            pthread_mutex_lock(&g.lock);
            g.conns[i].used = false;
            pthread_mutex_unlock(&g.lock);
        }
    }
}

#define CONTROL_PREFIX "/__double/"
#define CONTROL_BEHAVIOUR CONTROL_PREFIX "behaviour/"

/*
 * The control request: PUT /__double/behaviour/<digest> with a behaviour's
 * name as its body makes that digest behave so from the next request on.
 * Only a peer on loopback may send it (403 otherwise). Returns the status to
 * answer, with its JSON body in out.
 */
static int control(int fd, const request *q, char *out, size_t size)
{
    struct sockaddr_in peer;
    socklen_t plen = sizeof(peer);
    double_behaviour b;
    char name[64];
    const char *digest = q->path + strlen(CONTROL_BEHAVIOUR);
    size_t n = q->body_len;

    if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0 || peer.sin_family != AF_INET ||
        (ntohl(peer.sin_addr.s_addr) >> 24) != 127) {
        snprintf(out, size,
                 "{\"error\":{\"code\":\"forbidden\",\"message\":\"control requests are accepted "
                 "from loopback only\"}}");
        return 403;
    }
    if (strncmp(q->path, CONTROL_BEHAVIOUR, strlen(CONTROL_BEHAVIOUR)) != 0) {
        snprintf(out, size,
                 "{\"error\":{\"code\":\"not_found\",\"message\":\"the only control request is "
                 "PUT " CONTROL_BEHAVIOUR "<digest>\"}}");
        return 404;
    }
    if (strcmp(q->method, "PUT") != 0) {
        snprintf(out, size,
                 "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"use PUT with the "
                 "behaviour's name as the body\"}}");
        return 405;
    }
    if (!digest_valid(digest)) {
        snprintf(out, size,
                 "{\"error\":{\"code\":\"bad_request\",\"message\":\"the path must end in a "
                 "sha256:<64 lowercase hex> digest\"}}");
        return 400;
    }
    while (n > 0 && isspace((unsigned char)q->body[n - 1]))
        n--;
    const char *s = q->body;
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    if (n == 0 || n >= sizeof(name)) {
        snprintf(out, size,
                 "{\"error\":{\"code\":\"bad_request\",\"message\":\"the body must be a "
                 "behaviour's name, e.g. uncited\"}}");
        return 400;
    }
    memcpy(name, s, n);
    name[n] = '\0';
    if (double_behaviour_parse(&b, name) < 0) {
        snprintf(out, size,
                 "{\"error\":{\"code\":\"bad_request\",\"message\":\"unknown behaviour; one of "
                 "good uncited restricted-leak existence-leak evidence-500 slow malformed lineage-404 unpublished "
                 "error-5pct slow-p99 "
                 "unknown\"}}");
        return 400;
    }
    if (!table_set(digest, b)) {
        snprintf(out, size, "{\"error\":{\"code\":\"bad_request\",\"message\":\"at most %d behaviours\"}}",
                 MAX_BEHAVIOURS);
        return 400;
    }
    say("control: %s now behaves as %s", digest, double_behaviour_name(b));
    snprintf(out, size, "{\"digest\":\"%s\",\"behaviour\":\"%s\"}", digest, double_behaviour_name(b));
    return 200;
}

static void *conn_main(void *arg)
{
    size_t slot = (size_t)(uintptr_t)arg;
    int fd = g.conns[slot].fd; /* set before the thread started */
    char *buf = malloc(HEAD_MAX);
    size_t len = 0;

    while (buf) {
        request q;
        int bad = 0;
        int rc = request_read(&q, fd, buf, &len, &bad);
        if (rc == 0)
            break;
        if (rc < 0) {
            char body[128];
            snprintf(body, sizeof(body), "{\"error\":{\"code\":\"bad_request\",\"message\":\"%s\"}}",
                     double_status_text(bad));
            respond(fd, bad, body, true);
            say("%s %s x-request-id=%s status=%d (bad request)", q.method[0] ? q.method : "-", q.path[0] ? q.path : "-",
                q.request_id[0] ? q.request_id : "-", bad);
            free(q.body);
            break;
        }
        if (strncmp(q.path, CONTROL_PREFIX, strlen(CONTROL_PREFIX)) == 0) {
            char body[512];
            int status = control(fd, &q, body, sizeof(body));
            bool close = q.close || g.close_connections;
            bool sent = respond(fd, status, body, close);
            say("%s %s status=%d (control)", q.method, q.path, status);
            free(q.body);
            if (!sent || close)
                break;
            continue;
        }
        if (strcmp(q.path, "/metrics") == 0 && strcmp(q.method, "GET") == 0) {
            char *page = double_metrics_render();
            bool close = q.close || g.close_connections;
            bool sent = respond_as(fd, page ? 200 : 500, "text/plain; version=0.0.4; charset=utf-8", page ? page : "",
                                   close);
            free(page);
            free(q.body);
            if (!sent || close)
                break;
            continue;
        }
        int64_t t0 = mb_monotonic_ns();
        char digest[DIGEST_MAX];
        double_behaviour b = behaviour_now(digest);
        bool stopping = false;
        bool picked = !q.request_id[0] && (b == DOUBLE_ERROR_5PCT || b == DOUBLE_SLOW_P99) &&
                      atomic_fetch_add(&user_requests, 1) % 20 == 19;
        if (b == DOUBLE_SLOW && !pause_ms(g.slow_ms))
            stopping = true;
        if (picked && b == DOUBLE_SLOW_P99 && !pause_ms(g.slow_p99_ms))
            stopping = true;
        double_response resp = {0};
        if (!stopping) {
            double_context ctx = {.behaviour = b,
                                  .digest = digest,
                                  .restricted_id = g.restricted_id,
                                  .token_required = g.token != NULL};
            double_request dq = {.method = q.method,
                                 .path = q.path,
                                 .body = q.body,
                                 .body_len = q.body_len,
                                 .has_auth = q.has_auth,
                                 .auth_ok = q.auth_ok};
            if (double_answer(&resp, &ctx, &dq) < 0) {
                resp.status = 500;
                resp.body = NULL;
            } else if (picked && b == DOUBLE_ERROR_5PCT) {
                free(resp.body);
                resp.status = 500;
                resp.body = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"error-5pct: one request in "
                                   "20 of the user traffic fails\"}}");
            }
            pthread_mutex_lock(&g.lock);
            stopping = g.stopping;
            pthread_mutex_unlock(&g.lock);
        }
        bool close = q.close || g.close_connections;
        bool ok = !stopping && respond(fd, resp.status, resp.body ? resp.body : "{}", close);
        if (ok)
            double_metrics_observe(digest, resp.status, (double)(mb_monotonic_ns() - t0) / 1e9);
        say("%s %s x-request-id=%s status=%d behaviour=%s%s", q.method, q.path, q.request_id[0] ? q.request_id : "-",
            stopping ? 0 : resp.status, double_behaviour_name(b), stopping ? " (shutting down, not answered)" : "");
        free(resp.body);
        free(q.body);
        if (!ok || close)
            break;
    }
    free(buf);
    conn_done(slot);
    return NULL;
}

/* ---- start-up -------------------------------------------------------------- */

static void on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;
    if (write(g.sig_pipe[1], &c, 1) < 0) {
        /* nothing to do: the pipe is full, a stop is already pending */
    }
    errno = saved;
}

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage(const char *fmt, ...)
{
    va_list ap;
    fputs("governed-api-double: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nusage: governed-api-double --listen 127.0.0.1:PORT (--fixed-digest DIGEST | --namespace NS "
          "--deployment NAME --container NAME [--kubeconfig FILE] [--context NAME])\n"
          "         [--behaviour DIGEST[=NAME]]... [--behaviours-file FILE] [--default-behaviour NAME]\n"
          "         [--token TOKEN | --token-file FILE] [--slow-ms MS] [--slow-p99-ms MS] [--cache-ms MS] "
          "[--restricted-dataset ID]\n"
          "         [--close-connections]\n"
          "       governed-api-double --print-published-index NAMESPACE/NAME [--restricted-dataset ID]\n"
          "behaviours: good uncited restricted-leak existence-leak evidence-500 slow malformed lineage-404 unpublished "
          "error-5pct slow-p99 "
          "unknown\n",
          stderr);
    return 2;
}

static int table_add(const char *spec, const char *origin)
{
    char digest[DIGEST_MAX];
    const char *eq = strchr(spec, '=');
    size_t dl = eq ? (size_t)(eq - spec) : strlen(spec);
    double_behaviour b = DOUBLE_GOOD;

    if (dl >= sizeof(digest))
        return usage("%s: \"%s\" does not start with a sha256:<64 hex> digest", origin, spec);
    memcpy(digest, spec, dl);
    digest[dl] = '\0';
    if (!digest_valid(digest))
        return usage("%s: \"%s\" is not a sha256:<64 lowercase hex> digest", origin, digest);
    if (eq && double_behaviour_parse(&b, eq + 1) < 0)
        return usage("%s: unknown behaviour \"%s\"", origin, eq + 1);
    if (g.ntable == MAX_BEHAVIOURS)
        return usage("%s: at most %d behaviours", origin, MAX_BEHAVIOURS);
    memcpy(g.table[g.ntable].digest, digest, dl + 1); /* valid: 71 bytes and the NUL */
    g.table[g.ntable++].behaviour = b;
    return 0;
}

static int table_load(const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    int err = 0, lineno = 0;
    if (!f)
        return usage("--behaviours-file %s: %s", path, strerror(errno));
    while (err == 0 && getline(&line, &cap, f) >= 0) {
        char origin[512];
        char *s = line, *e;
        lineno++;
        while (isspace((unsigned char)*s))
            s++;
        for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]); e--)
            ;
        *e = '\0';
        if (!*s || *s == '#')
            continue;
        snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
        err = table_add(s, origin);
    }
    free(line);
    fclose(f);
    return err;
}

static int token_load(const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    if (!f)
        return usage("--token-file %s: %s", path, strerror(errno));
    ssize_t n = getline(&line, &cap, f);
    fclose(f);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n <= 0) {
        free(line);
        return usage("--token-file %s is empty", path);
    }
    g.token = line;
    return 0;
}

/* The number in s, or -1 after saying what is wrong. */
static long number(const char *flag, const char *s, long min, long max)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min || v > max) {
        usage("%s wants a whole number from %ld to %ld, not \"%s\"", flag, min, max, s);
        return -1;
    }
    return v;
}

static int listen_on(int *out, char *url, size_t url_size)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t alen = sizeof(addr);
    char host[64];
    const char *colon = strrchr(g.listen, ':');
    int one = 1;
    long port;

    if (!colon || (size_t)(colon - g.listen) >= sizeof(host))
        return usage("--listen wants HOST:PORT (e.g. 127.0.0.1:8080, port 0 for any), not \"%s\"", g.listen);
    if ((port = number("--listen port", colon + 1, 0, 65535)) < 0)
        return 2;
    memcpy(host, g.listen, (size_t)(colon - g.listen));
    host[colon - g.listen] = '\0';
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return usage("--listen: \"%s\" is not an IPv4 address", host);
    addr.sin_port = htons((uint16_t)port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &alen) < 0) {
        say("cannot listen on %s: %s", g.listen, strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    snprintf(url, url_size, "http://%s:%u", host, (unsigned)ntohs(addr.sin_port));
    *out = fd;
    return 0;
}

static int flags_parse(int argc, char **argv)
{
    enum {
        O_LISTEN = 256,
        O_KUBECONFIG,
        O_CONTEXT,
        O_NAMESPACE,
        O_DEPLOYMENT,
        O_CONTAINER,
        O_FIXED,
        O_BEHAVIOUR,
        O_BEHAVIOURS_FILE,
        O_DEFAULT,
        O_TOKEN,
        O_TOKEN_FILE,
        O_SLOW,
        O_SLOW_P99,
        O_CACHE,
        O_RESTRICTED,
        O_PRINT_INDEX,
        O_CLOSE,
        O_HELP
    };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"kubeconfig", required_argument, NULL, O_KUBECONFIG},
        {"context", required_argument, NULL, O_CONTEXT},
        {"namespace", required_argument, NULL, O_NAMESPACE},
        {"deployment", required_argument, NULL, O_DEPLOYMENT},
        {"container", required_argument, NULL, O_CONTAINER},
        {"fixed-digest", required_argument, NULL, O_FIXED},
        {"behaviour", required_argument, NULL, O_BEHAVIOUR},
        {"behaviours-file", required_argument, NULL, O_BEHAVIOURS_FILE},
        {"default-behaviour", required_argument, NULL, O_DEFAULT},
        {"token", required_argument, NULL, O_TOKEN},
        {"token-file", required_argument, NULL, O_TOKEN_FILE},
        {"slow-ms", required_argument, NULL, O_SLOW},
        {"slow-p99-ms", required_argument, NULL, O_SLOW_P99},
        {"cache-ms", required_argument, NULL, O_CACHE},
        {"restricted-dataset", required_argument, NULL, O_RESTRICTED},
        {"print-published-index", required_argument, NULL, O_PRINT_INDEX},
        {"close-connections", no_argument, NULL, O_CLOSE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int o, err;
    const char *print_index = NULL;
    g.listen = "127.0.0.1:8080";
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_LISTEN: g.listen = optarg; break;
        case O_KUBECONFIG: g.kubeconfig = optarg; break;
        case O_CONTEXT: g.context = optarg; break;
        case O_NAMESPACE: g.namespace = optarg; break;
        case O_DEPLOYMENT: g.deployment = optarg; break;
        case O_CONTAINER: g.container = optarg; break;
        case O_FIXED:
            if (!digest_valid(optarg))
                return usage("--fixed-digest \"%s\" is not a sha256:<64 lowercase hex> digest", optarg);
            g.fixed_digest = optarg;
            break;
        case O_BEHAVIOUR:
            if ((err = table_add(optarg, "--behaviour")) != 0)
                return err;
            break;
        case O_BEHAVIOURS_FILE:
            if ((err = table_load(optarg)) != 0)
                return err;
            break;
        case O_DEFAULT:
            if (double_behaviour_parse(&g.fallback, optarg) < 0)
                return usage("--default-behaviour: unknown behaviour \"%s\"", optarg);
            break;
        case O_TOKEN:
            free(g.token);
            if (!optarg[0] || !(g.token = strdup(optarg)))
                return usage("--token must not be empty");
            break;
        case O_TOKEN_FILE:
            free(g.token);
            g.token = NULL;
            if ((err = token_load(optarg)) != 0)
                return err;
            break;
        case O_SLOW:
            if ((g.slow_ms = number("--slow-ms", optarg, 0, 600000)) < 0)
                return 2;
            break;
        case O_SLOW_P99:
            if ((g.slow_p99_ms = number("--slow-p99-ms", optarg, 0, 600000)) < 0)
                return 2;
            break;
        case O_CACHE:
            if ((g.cache_ms = number("--cache-ms", optarg, 0, 600000)) < 0)
                return 2;
            break;
        case O_RESTRICTED: g.restricted_id = optarg; break;
        case O_PRINT_INDEX: print_index = optarg; break;
        case O_CLOSE: g.close_connections = true; break;
        case O_HELP: usage("a local stand-in for the governed API"); exit(0);
        default: return usage("unknown flag");
        }
    }
    if (optind < argc)
        return usage("unexpected argument \"%s\"", argv[optind]);
    if (print_index) {
        const char *slash = strchr(print_index, '/');
        if (!slash || slash == print_index || !slash[1] || strchr(slash + 1, '/'))
            return usage("--print-published-index wants NAMESPACE/NAME, not \"%s\"", print_index);
        char ns[254];
        snprintf(ns, sizeof(ns), "%.*s", (int)(slash - print_index), print_index);
        char *text = double_published_index(ns, slash + 1, g.restricted_id);
        if (!text || puts(text) == EOF || fflush(stdout) != 0) {
            free(text);
            say("cannot print the published index");
            exit(1);
        }
        free(text);
        exit(0);
    }
    if (!g.fixed_digest && (!g.namespace || !g.deployment || !g.container))
        return usage("--namespace, --deployment and --container are required (or --fixed-digest)");
    return 0;
}

int main(int argc, char **argv)
{
    int err, lfd = -1;
    char url[96];

    if ((err = flags_parse(argc, argv)) != 0)
        return err;
    for (size_t i = 0; i < g.ntable; i++)
        double_metrics_declare(g.table[i].digest);
    if (!g.fixed_digest) {
        kube_config *cfg = NULL;
        kube_config_opts copts = {.path = g.kubeconfig, .context = g.context};
        kube_client_opts kopts = {.max_retries = -1, .timeout_ms = 2000, .user_agent = "governed-api-double"};
        if (kube_config_load_opts(&cfg, &copts) < 0 || kube_client_new(&g.kube, cfg, &kopts) < 0) {
            say("%s", mb_error_last());
            return 2;
        }
    }
    if (pipe2(g.sig_pipe, O_CLOEXEC) < 0 || pipe2(g.stop_pipe, O_CLOEXEC) < 0) {
        say("cannot make a pipe: %s", strerror(errno));
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if ((err = listen_on(&lfd, url, sizeof(url))) != 0)
        return err;

    if (g.fixed_digest)
        say("serving %s as digest %s", url, g.fixed_digest);
    else
        say("serving %s as whatever Deployment %s/%s container %s runs (read at most every %ld ms)", url, g.namespace,
            g.deployment, g.container, g.cache_ms);
    say("%zu digest%s with a behaviour, any other: %s; bearer token %s", g.ntable, g.ntable == 1 ? "" : "s",
        double_behaviour_name(g.fallback), g.token ? "required" : "not required");
    printf("listening on %s\n", url);
    fflush(stdout);

    for (;;) {
        struct pollfd p[2] = {{.fd = lfd, .events = POLLIN}, {.fd = g.sig_pipe[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            say("poll: %s", strerror(errno));
            break;
        }
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        /* an answer's head and body are two sends: without this, the body of an answer on a reused connection
         * waits for the client's delayed ACK (about 40 ms) */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
        conns_reap();
        size_t slot = MAX_CONNS;
        pthread_mutex_lock(&g.lock);
        for (size_t i = 0; i < MAX_CONNS && slot == MAX_CONNS; i++)
            if (!g.conns[i].used)
                slot = i;
        if (slot < MAX_CONNS) {
            g.conns[slot] = (conn_slot){.fd = fd, .used = true};
            g.active++;
        }
        pthread_mutex_unlock(&g.lock);
        if (slot == MAX_CONNS) {
            close(fd);
            say("too many connections: one refused");
        } else if (pthread_create(&g.conns[slot].thread, NULL, conn_main, (void *)(uintptr_t)slot) != 0) {
            pthread_mutex_lock(&g.lock);
            close(fd);
            g.conns[slot].used = false;
            g.active--;
            pthread_mutex_unlock(&g.lock);
            say("cannot start a thread: one connection refused");
        }
    }

    /* shutdown: stop accepting, wake sleepers and readers, wait for the threads */
    close(lfd);
    pthread_mutex_lock(&g.lock);
    g.stopping = true;
    close(g.stop_pipe[1]);
    for (size_t i = 0; i < MAX_CONNS; i++)
        if (g.conns[i].used && !g.conns[i].done)
            shutdown(g.conns[i].fd, SHUT_RDWR);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    while (g.active > 0)
        if (pthread_cond_timedwait(&g.idle, &g.lock, &deadline) == ETIMEDOUT)
            break;
    size_t left = g.active;
    pthread_mutex_unlock(&g.lock);
    conns_reap();
    say("stopped%s", left ? " (some connections did not finish)" : "");
    if (left == 0) /* a thread still running may be using the client */
        kube_client_free(g.kube);
    if (g.token)
        OPENSSL_cleanse(g.token, strlen(g.token));
    free(g.token);
    return 0;
}

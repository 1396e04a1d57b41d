/*
 * The transfer loop: every outbound HTTP call that is not the Kubernetes API
 * (contract checks, bundle fetches, artifact downloads, link checks,
 * Prometheus queries) runs on one libcurl multi handle driven by one thread,
 * shared by all controllers. A caller starts a transfer and returns; the
 * loop calls its completion callback (on the loop thread, exactly once, so it
 * must be short: judge a small answer, enqueue a key) when it has finished,
 * failed, hit a limit or been cancelled. Every transfer has limits (total
 * time, connect time, a stall with no byte for N s, the bytes it may receive,
 * redirects, never from https to http), HTTP and HTTPS only, no proxy from
 * the environment; the body's SHA-256 is computed as it arrives, and the body
 * is kept in memory (up to the limit) or streamed to a callback. The bearer
 * token is never logged and is wiped when the transfer ends. Each finished
 * transfer counts into membrane_transfer_bytes_total{kind} and
 * membrane_transfer_duration_seconds{kind}.
 */
#ifndef MB_NET_TRANSFER_H
#define MB_NET_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct net_loop net_loop;
typedef struct net_transfer net_transfer;

#define NET_TIMEOUT_MS_DEFAULT 30000L
#define NET_CONNECT_TIMEOUT_MS_DEFAULT 10000L
#define NET_MAX_BYTES_DEFAULT (4LL * 1024 * 1024)
#define NET_ERROR_MAX 1024
#define NET_HOST_CONNECTIONS_MAX 16 /* at once to one host; more transfers wait their turn */

typedef enum {
    NET_DONE = 0,  /* an answer came in full (any HTTP status) */
    NET_FAILED,    /* no usable answer: connection, TLS, DNS, a malformed reply (error says which) */
    NET_TIMEOUT,   /* the total timeout passed */
    NET_STALLED,   /* no byte for stall_seconds */
    NET_TOO_BIG,   /* the body passed max_bytes; the transfer was aborted */
    NET_REDIRECT,  /* a redirect was refused: too many, or from https to http */
    NET_CANCELLED, /* net_transfer_cancel, or the loop shut down */
} net_outcome;

/* What came back; every pointer is borrowed for the duration of the completion callback. */
typedef struct {
    net_outcome outcome;
    int curl_code;    /* libcurl's CURLcode (0 on NET_DONE) */
    long os_errno;    /* the socket error of a failed connect, else 0 */
    long status;      /* HTTP status; 0: no response */
    const char *body; /* keep_body: NUL-terminated, body_len bytes; else NULL */
    size_t body_len;
    long long bytes;          /* body bytes received (hashed) */
    long long total_bytes;    /* Content-Length when known, else -1 */
    char sha256_hex[65];      /* of the bytes received (complete only on NET_DONE) */
    const char *content_type; /* NULL when absent */
    const char
        *www_authenticate; /* the last response's WWW-Authenticate header (a 401's challenge), NULL when absent */
    const char *location;  /* a refused redirect's target, else NULL */
    long latency_ms;       /* the whole transfer */
    long connect_ms;       /* until the connection was made (TLS included) */
    const char *error;     /* one sentence when outcome != NET_DONE, "" otherwise */
} net_result;

typedef void (*net_done_fn)(void *ctx, const net_result *r);
/* Streams the body as it arrives (on the loop thread); non-zero aborts the transfer as NET_FAILED. */
typedef int (*net_data_fn)(void *ctx, const void *data, size_t len);
/* Bytes received so far, and the total when known (-1 otherwise); on the loop thread. */
typedef void (*net_progress_fn)(void *ctx, long long now, long long total);

typedef struct {
    const char *kind;           /* the metrics label: "check", "bundle", "artifact", "document", "link", "prometheus",
                                   "registry" */
    const char *method;         /* NULL: GET (POST when body is set) */
    const char *url;            /* http:// or https:// only */
    const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
    const char *body;           /* request body, or NULL */
    size_t body_len;
    const char *content_type;    /* of the body; NULL: application/json when there is one */
    const char *token;           /* bearer token (Authorization: Bearer), NULL: none; never logged, wiped after use */
    const char *ca_pem;          /* extra CA certificates (PEM), trusted with the system's; NULL: the system's only */
    long timeout_ms;             /* the whole transfer; 0: NET_TIMEOUT_MS_DEFAULT */
    long connect_timeout_ms;     /* 0: NET_CONNECT_TIMEOUT_MS_DEFAULT */
    long stall_seconds;          /* no byte for this long aborts (NET_STALLED); 0: no stall limit */
    long long max_bytes;         /* body bytes at most (NET_TOO_BIG beyond); 0: NET_MAX_BYTES_DEFAULT */
    long max_redirects;          /* 0: redirects are not followed (the 3xx is the answer) */
    bool keep_body;              /* keep the body in memory (up to max_bytes) for the completion callback */
    net_data_fn on_data;         /* may be NULL */
    net_progress_fn on_progress; /* may be NULL */
    net_done_fn on_done;         /* required */
    void *ctx;
} net_request;

typedef struct {
    /* Called on the loop thread when a transfer ends (cancelled too): its kind, body bytes and seconds. The
     * operator counts membrane_transfer_bytes_total{kind} and membrane_transfer_duration_seconds{kind} with
     * it (metrics_transfer_observe); NULL: nothing. */
    void (*on_finish)(const char *kind, long long bytes, double seconds);
} net_loop_opts;

/* Starts the loop's thread; opts may be NULL. 0, MB_ENOMEM or MB_ERROR (libcurl or the thread could not be made). */
int net_loop_new(net_loop **out, const net_loop_opts *opts);

/*
 * Cancels every transfer still running (their callbacks are called with
 * NET_CANCELLED), stops the thread and frees the loop. Not from the loop
 * thread. Accepts NULL.
 */
void net_loop_free(net_loop *l);

/*
 * Starts a transfer; every pointer in req is copied, so req may go at once.
 * With out, *out is a handle for net_transfer_cancel that the caller releases
 * with net_transfer_release (after the completion callback or not). 0, or
 * MB_EINVAL (the message names what is wrong: the URL, a header with a line
 * break, the token), MB_ENOMEM, MB_ERROR (the loop has stopped); on an error
 * the completion callback is never called.
 */
int net_transfer_start(net_transfer **out, net_loop *l, const net_request *req);

/*
 * Cancels the transfer: its completion callback is called (on the loop
 * thread) with NET_CANCELLED unless it has been called already. Safe from any
 * thread, any number of times, while the loop lives.
 */
void net_transfer_cancel(net_transfer *t);

/* Releases the caller's handle. Accepts NULL. */
void net_transfer_release(net_transfer *t);

/* The loop's thread is the caller's (a completion callback runs there). */
bool net_loop_is_current(const net_loop *l);

#endif

/*
 * A tiny HTTP/1.1 server for tests, on 127.0.0.1 with an ephemeral port, in
 * its own thread: it answers each request it receives with the next reply of
 * a script (status, headers, body; optionally chunked in given pieces with
 * pauses, cut off mid-body, or left open) and records every request (method,
 * path and query, headers, body) for the test to inspect. Connections are kept
 * alive between replies, so connection reuse works as against a real server.
 * Routes answer by method and path instead of by order, and a reply may be
 * delayed without holding up the other connections, for clients that send
 * requests in parallel.
 */
#ifndef TEST_REPLAY_H
#define TEST_REPLAY_H

#include "kube/config.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct replay replay;

typedef struct {
    int status;           /* HTTP status; 0: close the connection without answering */
    const char *headers;  /* extra header lines, each ending in "\r\n"; may be NULL */
    const char *body;     /* may be NULL */
    size_t len;           /* 0: strlen(body) */
    bool chunked;         /* Transfer-Encoding: chunked */
    const size_t *pieces; /* chunked: sizes of the pieces, ending with 0; NULL: one piece */
    int pause_ms;         /* chunked: pause before each piece after the first */
    bool drop;            /* close the connection after drop_at bytes of the body */
    size_t drop_at;
    bool hold;    /* chunked: after the body keep the stream open (no last chunk) */
    int delay_ms; /* answer only after this long; other connections are served meanwhile */
} replay_reply;

typedef struct {
    char method[16];
    char *target; /* path and query as received */
    size_t nheaders;
    char **names;
    char **values;
    char *body; /* NUL-terminated */
    size_t body_len;
    int conn;            /* which connection it came on: 1, 2, ... in the order they were accepted */
    char client_cn[128]; /* TLS: the common name of the client certificate, "" if none */
    long received_ms;    /* CLOCK_MONOTONIC ms when the whole request had arrived */
    long answered_ms;    /* CLOCK_MONOTONIC ms when its reply began to be written; 0 before */
} replay_request;

typedef struct {
    int listen_after_ms;  /* bind at once but accept connections (listen) only after this delay */
    const char *tls_cert; /* PEM: serve HTTPS with this certificate and key */
    const char *tls_key;
    const char *tls_client_ca; /* PEM: ask for a client certificate signed by this CA (and require it) */
} replay_opts;

/* Starts the server; opts may be NULL. Returns 0 or -1. */
int replay_start(replay **out, const replay_opts *opts);

/* Appends a copy of reply to the script. */
void replay_add(replay *r, const replay_reply *reply);

/*
 * Answers every request for method and target with a copy of reply, before
 * the script is looked at (so concurrent requests get their replies whatever
 * order they arrive in). method NULL matches any; a target ending in '*'
 * matches every target that starts with what comes before it. The first
 * matching route wins.
 */
void replay_route(replay *r, const char *method, const char *target, const replay_reply *reply);

/* "http://127.0.0.1:<port>" (https with TLS); borrowed. */
const char *replay_url(const replay *r);

/* The number of requests received so far. */
size_t replay_count(replay *r);

/* Waits up to timeout_ms for at least n requests; true when they came. */
bool replay_wait(replay *r, size_t n, int timeout_ms);

/* The i-th request received (from 0), NULL past the end; borrowed until replay_free. */
const replay_request *replay_get(replay *r, size_t i);

/* The value of a request header (case-insensitive name), NULL when absent. */
const char *replay_header(const replay_request *q, const char *name);

/* Closes every open connection (held streams too); the server goes on accepting new ones. */
void replay_hangup(replay *r);

/* Stops the thread, closes every connection and frees everything. Accepts NULL. */
void replay_free(replay *r);

/* A kube_config pointing at the server, with a static bearer token (may be NULL); free with kube_config_free. */
kube_config *replay_config(const replay *r, const char *token);

#endif

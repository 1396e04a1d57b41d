/*
 * The operator's own HTTP endpoints, plain HTTP/1.1 served by libwebsockets
 * on a thread of its own: GET /metrics (the Prometheus text format of a
 * metrics registry) on the metrics address, GET /healthz and GET /readyz on
 * the health address; anything else is 404, another method 405. /healthz is
 * 200 "ok" while the process is alive (the server thread answers and the
 * alive check passes), /readyz 200 "ok" once the ready check passes (caches
 * synced); both are 503 with a one-line reason otherwise. When both
 * addresses are the same, one listener serves all three paths.
 */
#ifndef MB_RUNTIME_HTTPSERVER_H
#define MB_RUNTIME_HTTPSERVER_H

#include "runtime/metrics.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct httpserver httpserver;

/*
 * A probe: true when it passes; otherwise it writes a one-line reason
 * ("caches not synced") into reason, which holds size bytes. Called on the
 * server's thread for every probe: it must be quick and thread-safe.
 */
typedef bool (*httpserver_check_fn)(void *ctx, char *reason, size_t size);

typedef struct {
    /*
     * "host:port", "[ipv6]:port" or ":port" (every interface, IPv4 and IPv6);
     * port 0 takes a free port (see httpserver_metrics_port). host may be a
     * name, which is resolved once. NULL: not served.
     */
    const char *metrics_addr;
    const char *health_addr;
    metrics_registry *registry; /* NULL: metrics_default() */
    httpserver_check_fn alive;  /* NULL: alive while the server thread runs */
    void *alive_ctx;
    httpserver_check_fn ready; /* NULL: ready at once */
    void *ready_ctx;
} httpserver_opts;

/*
 * Binds the listeners and starts the thread; the checks and the registry
 * are borrowed and must outlive the server. 0, MB_EINVAL for an address
 * that does not parse or resolve (the message names the flag,
 * --metrics-addr or --health-addr), MB_EIO when it cannot be listened on
 * (in use, not a local address), MB_ENOMEM, or MB_ERROR.
 */
int httpserver_start(httpserver **out, const httpserver_opts *opts);

/* The port /metrics is served on (the bound one when 0 was asked for), or -1 when not served. */
int httpserver_metrics_port(const httpserver *s);

/* The port /healthz and /readyz are served on, or -1 when not served. */
int httpserver_health_port(const httpserver *s);

/* Stops the thread (connections are closed), frees everything. Accepts NULL. */
void httpserver_free(httpserver *s);

/* A listen address, parsed. host is "" for every interface, without brackets. */
typedef struct {
    char host[256];
    int port;
} httpserver_addr;

/*
 * Parses "host:port", "[ipv6]:port" or ":port" (port 0..65535). flag names
 * the address in the message ("--metrics-addr"). 0 or MB_EINVAL. Pure.
 */
int httpserver_addr_parse(httpserver_addr *out, const char *s, const char *flag);

#endif

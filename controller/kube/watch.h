/*
 * Watch streams: the newline-delimited JSON events of ?watch=1, parsed
 * incrementally however the bytes are split, and one streaming request.
 * Resuming from the last resourceVersion and relisting on 410 are the
 * informer's loop (runtime/informer.h) built on these.
 */
#ifndef MB_KUBE_WATCH_H
#define MB_KUBE_WATCH_H

#include "kube/client.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef enum {
    KUBE_WATCH_ADDED,
    KUBE_WATCH_MODIFIED,
    KUBE_WATCH_DELETED,
    KUBE_WATCH_BOOKMARK,
    KUBE_WATCH_ERROR, /* object is a metav1.Status */
} kube_watch_type;

const char *kube_watch_type_name(kube_watch_type t);

/* Receives one event; takes ownership of object. Returns 0 to go on, non-zero to stop. */
typedef int (*kube_watch_fn)(void *ctx, kube_watch_type type, cJSON *object);

typedef struct kube_watch_parser kube_watch_parser;

int kube_watch_parser_new(kube_watch_parser **out, kube_watch_fn fn, void *ctx);

/*
 * Feeds bytes; complete lines are delivered to fn (CRLF and blank lines are
 * accepted). Returns 0, MB_EJSON for a line that is not a watch event
 * (malformed JSON, no or unknown type, no object; the message names the
 * problem), or MB_ESTOPPED when fn asked to stop. After an error the rest of
 * that feed is dropped; the stream should be abandoned.
 */
int kube_watch_parser_feed(kube_watch_parser *p, const char *data, size_t len);

/* Bytes held back waiting for the rest of their line. */
size_t kube_watch_parser_pending(const kube_watch_parser *p);

void kube_watch_parser_free(kube_watch_parser *p);

typedef struct {
    const char *label_selector;
    const char *field_selector;
    const char *resource_version; /* start after this one; NULL: from now */
    int timeout_seconds;          /* asks the server to end the stream after this; 0: server default */
    atomic_bool *stop;            /* kube_client_stop_stream() ends the stream with it; may be NULL */
} kube_watch_opts;

/*
 * Streams one watch (allowWatchBookmarks on) and delivers its events to fn, in
 * order, on the calling thread. Returns 0 when the server ended the stream,
 * MB_ESTOPPED when fn, kube_client_stop_stream() on *stop or
 * kube_client_stop() ended it (at once), MB_EGONE on 410 (as an HTTP status
 * or as an ERROR event, which is then not delivered; kube_status_last()
 * holds it), MB_ECONN when the connection broke or the stream ended inside
 * an event, MB_EJSON for a malformed event, or the mapped error of a non-2xx
 * answer. Other ERROR events are delivered. One attempt, no retries:
 * reconnecting from the last resourceVersion is the caller's loop. No overall
 * timeout; TCP keepalive is on.
 */
int kube_watch(kube_client *c, const kube_resource *r, const char *ns, const kube_watch_opts *opts, kube_watch_fn fn,
               void *ctx);

#endif

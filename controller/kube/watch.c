/*
 * Watch streams: an incremental parser for the newline-delimited JSON events
 * of ?watch=1 (one event per line, however the bytes arrive), and
 * kube_watch(), one streaming GET whose body feeds the parser, which turns a
 * 410 (as HTTP status or as an ERROR event) into MB_EGONE and honours the
 * stop flags.
 */
#include "kube/watch.h"
#include "kube/client_private.h"
#include "util/error.h"
#include "util/json.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES ((size_t)64 << 20) /* an event larger than this is refused */
#define SNIPPET 80

struct kube_watch_parser {
    kube_watch_fn fn;
    void *ctx;
    char *buf; /* the start of a line whose end has not arrived yet */
    size_t len, cap;
};

static const char *const type_names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};

const char *kube_watch_type_name(kube_watch_type t)
{
    return (unsigned)t < sizeof(type_names) / sizeof(type_names[0]) ? type_names[t] : "UNKNOWN";
}

int kube_watch_parser_new(kube_watch_parser **out, kube_watch_fn fn, void *ctx)
{
    kube_watch_parser *p = calloc(1, sizeof(*p));
    *out = NULL;
    if (!p)
        return mb_error_set(MB_ENOMEM, "out of memory");
    p->fn = fn;
    p->ctx = ctx;
    *out = p;
    return 0;
}

void kube_watch_parser_free(kube_watch_parser *p)
{
    if (!p)
        return;
    free(p->buf);
    free(p);
}

size_t kube_watch_parser_pending(const kube_watch_parser *p)
{
    return p->len;
}

/* A printable start of line for messages. */
static void snippet(char *out, size_t size, const char *line, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < size && n < SNIPPET; i++)
        out[n++] = isprint((unsigned char)line[i]) ? line[i] : '?';
    out[n] = '\0';
    if (len > n && n + 4 < size)
        memcpy(out + n, "...", 4);
}

/* Parses one complete line (without its newline) and hands the event to fn. */
static int line_deliver(kube_watch_parser *p, const char *line, size_t len)
{
    char text[SNIPPET + 8];
    cJSON *ev = NULL;
    int err = 0;
    size_t t;

    if (len > 0 && line[len - 1] == '\r')
        len--;
    size_t i = 0;
    while (i < len && isspace((unsigned char)line[i]))
        i++;
    if (i == len)
        return 0; /* blank lines carry nothing */

    if (!(ev = cJSON_ParseWithLength(line, len)) || !cJSON_IsObject(ev)) {
        snippet(text, sizeof(text), line + i, len - i);
        err = mb_error_set(MB_EJSON, "a watch event is not a JSON object: %s", text);
        goto done;
    }
    const char *type = json_str(ev, "type", NULL);
    if (!type) {
        snippet(text, sizeof(text), line + i, len - i);
        err = mb_error_set(MB_EJSON, "a watch event has no \"type\": %s", text);
        goto done;
    }
    for (t = 0; t < sizeof(type_names) / sizeof(type_names[0]); t++)
        if (strcmp(type, type_names[t]) == 0)
            break;
    if (t == sizeof(type_names) / sizeof(type_names[0])) {
        err = mb_error_set(MB_EJSON,
                           "a watch event has the unknown type \"%.64s\" (expected ADDED, MODIFIED, DELETED, BOOKMARK "
                           "or ERROR)",
                           type);
        goto done;
    }
    cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
    if (!cJSON_IsObject(obj)) {
        err = mb_error_set(MB_EJSON, "a watch event of type %s has no \"object\"", type);
        goto done;
    }
    cJSON_DetachItemViaPointer(ev, obj);
    if (p->fn(p->ctx, (kube_watch_type)t, obj) != 0)
        err = mb_error_set(MB_ESTOPPED, "the watch event handler asked to stop");
done:
    cJSON_Delete(ev);
    return err;
}

static int pending_append(kube_watch_parser *p, const char *data, size_t len)
{
    if (p->len + len > LINE_MAX_BYTES)
        return mb_error_set(MB_EJSON, "a watch event is longer than %zu MiB without a newline", LINE_MAX_BYTES >> 20);
    if (p->len + len > p->cap) {
        size_t cap = p->cap ? p->cap : 4096;
        while (cap < p->len + len)
            cap *= 2;
        char *b = realloc(p->buf, cap);
        if (!b)
            return mb_error_set(MB_ENOMEM, "out of memory");
        p->buf = b;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, data, len);
    p->len += len;
    return 0;
}

int kube_watch_parser_feed(kube_watch_parser *p, const char *data, size_t len)
{
    int err = 0;
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        if (!nl)
            return pending_append(p, data, len);
        size_t n = (size_t)(nl - data);
        if (p->len == 0) {
            err = line_deliver(p, data, n); /* the whole line is here: no copy */
        } else {
            if ((err = pending_append(p, data, n)) < 0)
                return err;
            err = line_deliver(p, p->buf, p->len);
            p->len = 0;
        }
        if (err < 0)
            return err;
        data = nl + 1;
        len -= n + 1;
    }
    return 0;
}

/* --- one watch request --- */

typedef struct {
    kube_watch_fn fn;
    void *ctx;
    kube_watch_parser *parser;
    bool gone;
} watch_ctx;

/* Between the parser and the caller's fn: a 410 ERROR event ends the stream instead of being delivered. */
static int watch_event(void *ctx, kube_watch_type type, cJSON *object)
{
    watch_ctx *w = ctx;
    if (type == KUBE_WATCH_ERROR) {
        const char *reason = json_str(object, "reason", NULL);
        if (json_int(0, object, "code", NULL) == 410 ||
            (reason && (strcmp(reason, "Expired") == 0 || strcmp(reason, "Gone") == 0))) {
            if (json_int(0, object, "code", NULL) == 0)
                cJSON_AddNumberToObject(object, "code", 410);
            kube_status_record_object(object);
            cJSON_Delete(object);
            w->gone = true;
            return 1;
        }
    }
    return w->fn(w->ctx, type, object);
}

static int watch_feed(void *ctx, const char *data, size_t len)
{
    watch_ctx *w = ctx;
    return kube_watch_parser_feed(w->parser, data, len);
}

int kube_watch(kube_client *c, const kube_resource *r, const char *ns, const kube_watch_opts *opts, kube_watch_fn fn,
               void *ctx)
{
    watch_ctx w = {.fn = fn, .ctx = ctx};
    kube_response resp = {0};
    char *path = NULL;
    char num[32];
    int err = 0;

    if (!(path = kube_path(r, ns, NULL, NULL))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    if ((err = kube_query_add(&path, "watch", "1")) < 0 ||
        (err = kube_query_add(&path, "allowWatchBookmarks", "true")) < 0)
        goto done;
    if (opts && opts->label_selector && *opts->label_selector &&
        (err = kube_query_add(&path, "labelSelector", opts->label_selector)) < 0)
        goto done;
    if (opts && opts->field_selector && *opts->field_selector &&
        (err = kube_query_add(&path, "fieldSelector", opts->field_selector)) < 0)
        goto done;
    if (opts && opts->resource_version && *opts->resource_version &&
        (err = kube_query_add(&path, "resourceVersion", opts->resource_version)) < 0)
        goto done;
    if (opts && opts->timeout_seconds > 0) {
        snprintf(num, sizeof(num), "%d", opts->timeout_seconds);
        if ((err = kube_query_add(&path, "timeoutSeconds", num)) < 0)
            goto done;
    }
    if ((err = kube_watch_parser_new(&w.parser, watch_event, &w)) < 0)
        goto done;

    err = kube_request_stream(&resp, c, path, watch_feed, &w, opts ? opts->stop : NULL);
    if (w.gone) {
        err = MB_EGONE; /* kube_status_record_object() left the Status's message */
        mb_error_set(MB_EGONE, "%s (%ld %s)", kube_status_last()->message, kube_status_last()->code,
                     kube_status_last()->reason);
        goto done;
    }
    if (err < 0)
        goto done;
    if (resp.status < 200 || resp.status >= 300) {
        err = kube_status_record(resp.status, resp.body, resp.len, resp.retry_after);
        goto done;
    }
    if (kube_watch_parser_pending(w.parser) > 0) {
        /* a clean end in the middle of a line: the last event was cut off */
        err = mb_error_set(MB_ECONN, "GET %s: the watch stream ended in the middle of an event (%zu bytes held back)",
                           path, kube_watch_parser_pending(w.parser));
        goto done;
    }
done:
    kube_watch_parser_free(w.parser);
    kube_response_clear(&resp);
    free(path);
    return err;
}

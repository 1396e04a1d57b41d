/*
 * libFuzzer target for the watch stream parser: the newline-delimited JSON
 * events of ?watch=1 come from the network in chunks cut anywhere. The first
 * two bytes of the input pick where the stream is cut (two feeds, so lines
 * are also completed from the held-back buffer) and the third after how many
 * events the handler asks to stop (0: never); the rest is the stream. ERROR
 * events go through the Status reader as kube_watch() sends them. When every
 * feed succeeds, each complete non-blank line must have given exactly one
 * event and what is held back must be the bytes after the last newline.
 */
#include "kube/client_private.h"
#include "kube/watch.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t events;
    size_t stop_after; /* 0: never */
} fuzz_watch_ctx;

static int on_event(void *ctx, kube_watch_type type, cJSON *object)
{
    fuzz_watch_ctx *c = ctx;

    if (strcmp(kube_watch_type_name(type), "UNKNOWN") == 0 || !cJSON_IsObject(object))
        abort();
    if (type == KUBE_WATCH_ERROR && kube_status_record_object(object) >= 0)
        abort();
    (void)json_str(object, "metadata", "resourceVersion", NULL);
    cJSON_Delete(object);
    c->events++;
    return c->stop_after && c->events >= c->stop_after;
}

/* Complete lines that carry something (line_deliver skips blank ones), and the bytes after the last newline. */
static size_t lines_count(size_t *tail, const uint8_t *data, size_t size)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] != '\n')
            continue;
        for (size_t j = start; j < i; j++) {
            if (!isspace(data[j])) {
                n++;
                break;
            }
        }
        start = i + 1;
    }
    *tail = size - start;
    return n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mb_log_setup(MB_LOG_TEXT, MB_LOG_ERROR, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_watch_ctx ctx = {0, 0};
    kube_watch_parser *p = NULL;
    size_t cut, tail = 0, lines;
    int err = 0;

    if (size < 3)
        return 0;
    cut = ((size_t)data[0] << 8 | data[1]);
    ctx.stop_after = data[2] % 8;
    data += 3, size -= 3;
    cut = size ? cut % (size + 1) : 0;

    if (kube_watch_parser_new(&p, on_event, &ctx) < 0)
        return 0;
    if ((err = kube_watch_parser_feed(p, (const char *)data, cut)) == 0)
        err = kube_watch_parser_feed(p, (const char *)data + cut, size - cut);

    if (err == 0) {
        lines = lines_count(&tail, data, size);
        if (ctx.events != lines || kube_watch_parser_pending(p) != tail)
            abort();
    } else if (err != MB_EJSON && err != MB_ESTOPPED) {
        abort();
    }
    kube_watch_parser_free(p);
    return 0;
}

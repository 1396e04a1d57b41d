/*
 * metav1.Status errors: turns the body of a non-2xx answer (or of a watch
 * ERROR event) into code, reason, message and retry delay, keeps the last one
 * per thread for kube_status_last(), writes the human sentence into
 * mb_error_last() and maps the HTTP status to an mb_error code.
 */
#include "kube/client_private.h"
#include "util/error.h"
#include "util/json.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define SNIPPET_MAX 200

static _Thread_local kube_status last_status;

const kube_status *kube_status_last(void)
{
    return &last_status;
}

/* The StatusReason the API server uses for a code, for bodies that carry none. */
static const char *reason_for(long code)
{
    switch (code) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 406: return "NotAcceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "RequestEntityTooLarge";
    case 415: return "UnsupportedMediaType";
    case 422: return "Invalid";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 503: return "ServiceUnavailable";
    case 504: return "Timeout";
    default: return "";
    }
}

static int code_map(long code, const char *reason)
{
    switch (code) {
    case 404: return MB_ENOTFOUND;
    case 409: return strcmp(reason, "AlreadyExists") == 0 ? MB_EEXISTS : MB_ECONFLICT;
    case 410: return MB_EGONE;
    case 401:
    case 403: return MB_EFORBIDDEN;
    case 422: return MB_EINVALID;
    default: return MB_EHTTP;
    }
}

/* The first SNIPPET_MAX bytes of body on one line, for messages. */
static void snippet(char *out, size_t size, const char *body, size_t len)
{
    size_t n = 0;
    size_t i = 0;
    while (i < len && isspace((unsigned char)body[i]))
        i++;
    for (; i < len && n + 1 < size && n < SNIPPET_MAX; i++) {
        unsigned char ch = (unsigned char)body[i];
        out[n++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    if (i < len && n + 4 < size)
        memcpy(out + n, "...", 4);
}

/*
 * Fills out from doc (the parsed body, may be NULL) and sets the last-error
 * message; body and len are only used to describe a body that is not a Status.
 * assume_status: read doc as a Status even without "kind".
 */
static int status_fill(kube_status *out, long http_code, const cJSON *doc, const char *body, size_t len,
                       bool assume_status)
{
    char text[SNIPPET_MAX + 8];
    const char *reason = NULL;
    const char *message = NULL;
    bool is_json_object = cJSON_IsObject(doc);

    memset(out, 0, sizeof(*out));
    out->code = http_code;
    const char *kind = is_json_object ? json_str(doc, "kind", NULL) : NULL;
    bool is_status = is_json_object && (assume_status || (kind && strcmp(kind, "Status") == 0));
    if (is_status) {
        reason = json_str(doc, "reason", NULL);
        message = json_str(doc, "message", NULL);
        if (out->code <= 0)
            out->code = (long)json_int(0, doc, "code", NULL);
        out->retry_after = (long)json_int(0, doc, "details", "retryAfterSeconds", NULL);
        if (out->retry_after < 0)
            out->retry_after = 0;
    }
    if (!reason || !*reason)
        reason = reason_for(out->code);
    snprintf(out->reason, sizeof(out->reason), "%s", reason);

    if (message && *message) {
        snprintf(out->message, sizeof(out->message), "%s", message);
    } else if (is_status) {
        snprintf(out->message, sizeof(out->message), "the server answered HTTP %ld with a Status that has no message",
                 out->code);
    } else if (!body || len == 0) {
        snprintf(out->message, sizeof(out->message), "the server answered HTTP %ld with an empty body", out->code);
    } else {
        snippet(text, sizeof(text), body, len);
        const char *what = is_json_object                     ? "a JSON body that is not a Status"
                           : doc                              ? "a JSON value that is not a Status"
                           : text[0] == '{' || text[0] == '[' ? "malformed JSON instead of a Status"
                                                              : "a body that is not a Status";
        snprintf(out->message, sizeof(out->message), "the server answered HTTP %ld with %s: %s", out->code, what, text);
    }

    int code = code_map(out->code, out->reason);
    if (out->reason[0])
        return mb_error_set(code, "%s (%ld %s)", out->message, out->code, out->reason);
    return mb_error_set(code, "%s (%ld)", out->message, out->code);
}

int kube_status_parse(kube_status *out, long http_code, const char *body, size_t len)
{
    cJSON *doc = body && len > 0 ? cJSON_ParseWithLength(body, len) : NULL;
    int code = status_fill(out, http_code, doc, body, len, false);
    cJSON_Delete(doc);
    return code;
}

int kube_status_record_object(const cJSON *status)
{
    kube_status st;
    int code = status_fill(&st, 0, status, "{}", 2, true); /* an ERROR event's object is a Status */
    last_status = st;
    return code;
}

int kube_status_record(long http_code, const char *body, size_t len, long retry_after)
{
    kube_status st;
    int code = kube_status_parse(&st, http_code, body, len);
    if (retry_after > st.retry_after)
        st.retry_after = retry_after;
    last_status = st;
    return code;
}

/*
 * Per-thread last-error storage behind mb_error_set()/mb_error_last().
 */
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MB_ERROR_MAX 1024

static _Thread_local char last_msg[MB_ERROR_MAX];
static _Thread_local int last_code;

int mb_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof(last_msg), fmt, ap);
    va_end(ap);
    last_code = code;
    return code;
}

int mb_error_wrap(int code, const char *fmt, ...)
{
    char prefix[MB_ERROR_MAX];
    char old[MB_ERROR_MAX];
    va_list ap;

    memcpy(old, last_msg, sizeof(old));
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    size_t n = strlen(prefix);
    memcpy(last_msg, prefix, n + 1);
    if (old[0] && n + 2 < sizeof(last_msg)) {
        memcpy(last_msg + n, ": ", 3);
        n += 2;
        size_t rest = strlen(old);
        if (rest > sizeof(last_msg) - 1 - n)
            rest = sizeof(last_msg) - 1 - n;
        memcpy(last_msg + n, old, rest);
        last_msg[n + rest] = '\0';
    }
    last_code = code;
    return code;
}

const char *mb_error_last(void)
{
    return last_msg;
}

int mb_error_last_code(void)
{
    return last_code;
}

void mb_error_clear(void)
{
    last_msg[0] = '\0';
    last_code = 0;
}

const char *mb_error_name(int code)
{
    switch (code) {
    case MB_OK: return "ok";
    case MB_ENOMEM: return "out of memory";
    case MB_EINVAL: return "invalid argument";
    case MB_ENOTFOUND: return "not found";
    case MB_ECONFLICT: return "conflict";
    case MB_EEXISTS: return "already exists";
    case MB_EGONE: return "gone";
    case MB_EFORBIDDEN: return "forbidden";
    case MB_EINVALID: return "invalid";
    case MB_EHTTP: return "http error";
    case MB_EJSON: return "malformed json";
    case MB_ETIMEOUT: return "timeout";
    case MB_ECONN: return "connection error";
    case MB_ETLS: return "tls error";
    case MB_EIO: return "i/o error";
    case MB_ESTOPPED: return "stopped";
    default: return "error";
    }
}

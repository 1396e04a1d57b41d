/*
 * The one error channel of membrane: every fallible function returns 0 or a
 * negative mb_error code, and leaves a human sentence in a per-thread
 * last-error message (read with mb_error_last()). HTTP statuses are data and
 * travel in responses, never as return codes.
 */
#ifndef MB_UTIL_ERROR_H
#define MB_UTIL_ERROR_H

typedef enum {
    MB_OK = 0,
    MB_ERROR = -1,      /* anything not listed below */
    MB_ENOMEM = -2,     /* an allocation failed */
    MB_EINVAL = -3,     /* bad input, flag or configuration */
    MB_ENOTFOUND = -4,  /* 404, or a missing file */
    MB_ECONFLICT = -5,  /* 409: resourceVersion conflict */
    MB_EEXISTS = -6,    /* 409 AlreadyExists */
    MB_EGONE = -7,      /* 410: resourceVersion too old */
    MB_EFORBIDDEN = -8, /* 401/403 */
    MB_EINVALID = -9,   /* 422: the server rejected the object */
    MB_EHTTP = -10,     /* any other non-2xx */
    MB_EJSON = -11,     /* malformed JSON */
    MB_ETIMEOUT = -12,  /* a deadline passed */
    MB_ECONN = -13,     /* connection refused, reset, DNS */
    MB_ETLS = -14,      /* TLS handshake or verification */
    MB_EIO = -15,       /* local I/O */
    MB_ESTOPPED = -16,  /* the operation was cancelled by a stop request */
} mb_error;

/* Sets the calling thread's last-error message (printf-style) and returns code. */
int mb_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to the current message; returns code. */
int mb_error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The calling thread's last-error message; borrowed, valid until the next set. Never NULL. */
const char *mb_error_last(void);

/* The code recorded with the last message (0 if none). */
int mb_error_last_code(void);

void mb_error_clear(void);

/* A short constant name for a code ("not found", "conflict", ...). */
const char *mb_error_name(int code);

#endif

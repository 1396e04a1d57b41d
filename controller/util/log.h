/*
 * Logging: JSON lines (ts, level, msg, kind, namespace, name and, where they
 * apply, release_id, audit_ref, dataset_version_id) or text for humans. The
 * MB_LOG macro checks the level before evaluating its arguments. Never pass a
 * secret to a log call.
 */
#ifndef MB_UTIL_LOG_H
#define MB_UTIL_LOG_H

#include <stdio.h>

typedef enum { MB_LOG_DEBUG = 0, MB_LOG_INFO, MB_LOG_WARN, MB_LOG_ERROR } mb_log_level;
typedef enum { MB_LOG_JSON = 0, MB_LOG_TEXT } mb_log_format;

/* Object fields of a log line; any may be NULL. */
typedef struct {
    const char *kind;
    const char *namespace;
    const char *name;
    const char *release_id;
    const char *audit_ref;
    const char *dataset_version_id;
} mb_log_fields;

extern mb_log_level mb_log_threshold;

/* Format, level and stream (NULL: stderr). Not thread-safe; call at start-up. */
void mb_log_setup(mb_log_format format, mb_log_level level, FILE *out);

/* Parses "debug|info|warn|error" / "json|text"; 0 or MB_EINVAL. */
int mb_log_level_parse(mb_log_level *out, const char *s);
int mb_log_format_parse(mb_log_format *out, const char *s);

void mb_log_write(mb_log_level level, const mb_log_fields *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define MB_LOG(level, fields, ...)                                                                                     \
    do {                                                                                                               \
        if ((level) >= mb_log_threshold)                                                                               \
            mb_log_write((level), (fields), __VA_ARGS__);                                                              \
    } while (0)

#define log_debug(...) MB_LOG(MB_LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(...) MB_LOG(MB_LOG_INFO, NULL, __VA_ARGS__)
#define log_warn(...) MB_LOG(MB_LOG_WARN, NULL, __VA_ARGS__)
#define log_error(...) MB_LOG(MB_LOG_ERROR, NULL, __VA_ARGS__)

#endif

/*
 * One line per call, written whole under a lock so that lines from worker
 * threads never interleave.
 */
#include "util/log.h"
#include "util/error.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

mb_log_level mb_log_threshold = MB_LOG_INFO;
static mb_log_format log_format = MB_LOG_JSON;
static FILE *log_out;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void mb_log_setup(mb_log_format format, mb_log_level level, FILE *out)
{
    log_format = format;
    mb_log_threshold = level;
    log_out = out;
}

int mb_log_level_parse(mb_log_level *out, const char *s)
{
    for (int i = 0; i < 4; i++) {
        if (s && strcmp(s, level_names[i]) == 0) {
            *out = (mb_log_level)i;
            return 0;
        }
    }
    return mb_error_set(MB_EINVAL, "log level \"%s\" is not one of debug, info, warn, error", s ? s : "");
}

int mb_log_format_parse(mb_log_format *out, const char *s)
{
    if (s && strcmp(s, "json") == 0)
        *out = MB_LOG_JSON;
    else if (s && strcmp(s, "text") == 0)
        *out = MB_LOG_TEXT;
    else
        return mb_error_set(MB_EINVAL, "log format \"%s\" is not one of json, text", s ? s : "");
    return 0;
}

static void timestamp(char *buf, size_t len)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

static void add_field(cJSON *o, const char *key, const char *value)
{
    if (value && *value)
        cJSON_AddStringToObject(o, key, value);
}

void mb_log_write(mb_log_level level, const mb_log_fields *f, const char *fmt, ...)
{
    char msg[2048];
    char ts[40];
    va_list ap;
    FILE *out = log_out ? log_out : stderr;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    timestamp(ts, sizeof(ts));

    if (log_format == MB_LOG_TEXT) {
        pthread_mutex_lock(&log_lock);
        fprintf(out, "%s %-5s %s", ts, level_names[level], msg);
        if (f && f->name)
            fprintf(out, " [%s %s/%s]", f->kind ? f->kind : "", f->namespace ? f->namespace : "", f->name);
        if (f && f->audit_ref)
            fprintf(out, " audit_ref=%s", f->audit_ref);
        fputc('\n', out);
        fflush(out);
        pthread_mutex_unlock(&log_lock);
        return;
    }

    cJSON *o = cJSON_CreateObject();
    char *line = NULL;
    if (!o)
        return;
    cJSON_AddStringToObject(o, "ts", ts);
    cJSON_AddStringToObject(o, "level", level_names[level]);
    cJSON_AddStringToObject(o, "msg", msg);
    if (f) {
        add_field(o, "kind", f->kind);
        add_field(o, "namespace", f->namespace);
        add_field(o, "name", f->name);
        add_field(o, "release_id", f->release_id);
        add_field(o, "audit_ref", f->audit_ref);
        add_field(o, "dataset_version_id", f->dataset_version_id);
    }
    line = cJSON_PrintUnformatted(o);
    if (line) {
        pthread_mutex_lock(&log_lock);
        fputs(line, out);
        fputc('\n', out);
        fflush(out);
        pthread_mutex_unlock(&log_lock);
    }
    cJSON_free(line);
    cJSON_Delete(o);
}

/*
 * The Event recorder: a bounded queue filled by event_record() from any thread
 * and drained by one writer thread, which keeps client-go's correlation cache
 * (the Events it wrote, keyed by object, type, reason and message, evicted
 * least recently used) and either patches the existing Event's count or
 * creates a new Event, trying a write that failed for a passing reason again
 * a few times (event_retry_ms). Only the writer touches the cache and the API.
 */
#include "runtime/events.h"

#include "util/error.h"
#include "util/json.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* uthash reports a failed allocation by leaving the item's table pointer NULL. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#define DEFAULT_COMPONENT "membrane"
#define DEFAULT_WINDOW_S 600
#define DEFAULT_QUEUE_MAX 1000
#define DEFAULT_CACHE_MAX 4096
#define MESSAGE_MAX 1024
#define NAME_MAX_LEN 253

/* One queued Event: every string is a copy. */
typedef struct pending {
    struct pending *next;
    event_object obj;
    event_type type;
    char *reason;
    char *message;
    time_t at;
    char *strings[9]; /* what to free */
} pending;

/* One Event the writer made, for folding repeats. */
typedef struct folded {
    UT_hash_handle hh;
    unsigned char key[SHA256_DIGEST_LENGTH]; /* of the fields that make Events the same */
    char *namespace;
    char *name;
    long count;
    time_t last;
} folded;

struct event_recorder {
    kube_client *client;
    char *component;
    char *instance;
    long window_s;
    size_t queue_max;
    size_t cache_max;

    pthread_mutex_t mu;  /* guards the queue, the flags and the stats */
    pthread_cond_t wake; /* the writer: work or stop */
    pthread_cond_t idle; /* flushers: nothing queued or in flight */
    pending *head, *tail;
    size_t queued;
    bool busy;
    bool stopping;
    pthread_t thread;
    event_recorder_stats stats;

    /* writer thread only */
    folded *cache;
    uint64_t last_unique;
};

const char *event_type_name(event_type t)
{
    return t == EVENT_WARNING ? "Warning" : "Normal";
}

int event_object_from_json(event_object *out, const cJSON *obj, const char *kind, const char *api_version)
{
    const char *k = json_str(obj, "kind", NULL);
    const char *v = json_str(obj, "apiVersion", NULL);
    memset(out, 0, sizeof(*out));
    out->name = json_str(obj, "metadata", "name", NULL);
    if (!out->name || !*out->name)
        return mb_error_set(MB_EINVAL, "cannot record an Event about an object without metadata.name");
    out->kind = k && *k ? k : kind;
    out->api_version = v && *v ? v : api_version;
    out->namespace = json_str(obj, "metadata", "namespace", NULL);
    out->uid = json_str(obj, "metadata", "uid", NULL);
    out->resource_version = json_str(obj, "metadata", "resourceVersion", NULL);
    return 0;
}

/* ---- pure helpers ---- */

int event_name_new(char **out, const char *object_name, uint64_t unique)
{
    char suffix[24];
    size_t n = strlen(object_name), sl;
    char *name;
    *out = NULL;
    sl = (size_t)snprintf(suffix, sizeof(suffix), ".%016llx", (unsigned long long)unique);
    if (n > NAME_MAX_LEN - sl)
        n = NAME_MAX_LEN - sl;
    /* A shortened name must still end in an alphanumeric character. */
    while (n > 0 && (object_name[n - 1] == '.' || object_name[n - 1] == '-'))
        n--;
    if (!(name = malloc(n + sl + 1)))
        return mb_error_set(MB_ENOMEM, "out of memory naming an Event");
    memcpy(name, object_name, n);
    memcpy(name + n, suffix, sl + 1);
    if (n == 0)
        memmove(name, name + 1, sl); /* no usable object name: the hex alone */
    *out = name;
    return 0;
}

static void format_time(char buf[32], time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static cJSON *add_str(cJSON *obj, const char *key, const char *value)
{
    if (!value || !*value)
        return obj;
    return cJSON_AddStringToObject(obj, key, value) ? obj : NULL;
}

int event_body_new(cJSON **out, const event_object *obj, event_type type, const char *reason, const char *message,
                   const char *component, const char *instance, const char *name, time_t now)
{
    int err = 0;
    char ts[32];
    cJSON *ev = NULL, *meta, *inv, *src;
    const char *ns = obj->namespace && *obj->namespace ? obj->namespace : "default";
    *out = NULL;
    format_time(ts, now);
    if (!(ev = cJSON_CreateObject()) || !add_str(ev, "apiVersion", "v1") || !add_str(ev, "kind", "Event") ||
        !(meta = cJSON_AddObjectToObject(ev, "metadata")) || !add_str(meta, "name", name) ||
        !add_str(meta, "namespace", ns) || !(inv = cJSON_AddObjectToObject(ev, "involvedObject")) ||
        !add_str(inv, "kind", obj->kind) || !add_str(inv, "apiVersion", obj->api_version) ||
        !add_str(inv, "namespace", obj->namespace) || !add_str(inv, "name", obj->name) ||
        !add_str(inv, "uid", obj->uid) || !add_str(inv, "resourceVersion", obj->resource_version) ||
        !add_str(inv, "fieldPath", obj->field_path) || !add_str(ev, "type", event_type_name(type)) ||
        !add_str(ev, "reason", reason) || !cJSON_AddStringToObject(ev, "message", message ? message : "") ||
        !(src = cJSON_AddObjectToObject(ev, "source")) || !add_str(src, "component", component) ||
        !add_str(ev, "reportingComponent", component) || !add_str(ev, "reportingInstance", instance) ||
        !add_str(ev, "firstTimestamp", ts) || !add_str(ev, "lastTimestamp", ts) ||
        !cJSON_AddNumberToObject(ev, "count", 1)) {
        err = mb_error_set(MB_ENOMEM, "out of memory building an Event");
        goto done;
    }
    *out = ev;
    ev = NULL;
done:
    cJSON_Delete(ev);
    return err;
}

int event_patch_new(char **out, long count, const char *message, time_t now)
{
    char ts[32];
    cJSON *p = cJSON_CreateObject();
    char *s = NULL;
    *out = NULL;
    format_time(ts, now);
    if (p && cJSON_AddNumberToObject(p, "count", (double)count) && cJSON_AddStringToObject(p, "lastTimestamp", ts) &&
        cJSON_AddStringToObject(p, "message", message ? message : ""))
        s = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    if (!s)
        return mb_error_set(MB_ENOMEM, "out of memory building an Event patch");
    *out = s;
    return 0;
}

/* ---- the folding cache (writer thread only) ---- */

/* The digest of what makes two Events the same: a cache of thousands keeps 32 bytes each, not the fields. */
static int fold_key(unsigned char out[SHA256_DIGEST_LENGTH], const pending *p)
{
    char *key = NULL;
    /* Unit separators keep fields from running into each other. */
    int n = asprintf(&key, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", p->obj.kind ? p->obj.kind : "",
                     p->obj.api_version ? p->obj.api_version : "", p->obj.namespace ? p->obj.namespace : "",
                     p->obj.name, p->obj.uid ? p->obj.uid : "", p->obj.field_path ? p->obj.field_path : "",
                     event_type_name(p->type), p->reason, p->message);
    if (n < 0)
        return mb_error_set(MB_ENOMEM, "out of memory");
    SHA256((const unsigned char *)key, (size_t)n, out);
    free(key);
    return 0;
}

static void folded_free(folded *f)
{
    if (!f)
        return;
    free(f->namespace);
    free(f->name);
    free(f);
}

static void cache_forget(event_recorder *r, folded *f)
{
    HASH_DEL(r->cache, f);
    folded_free(f);
}

/* Remembers an Event just created under key, evicting the least recently used. */
static void cache_remember(event_recorder *r, const unsigned char *key, const char *ns, const char *name, time_t at)
{
    folded *f = calloc(1, sizeof(*f));
    if (!f || !(f->namespace = strdup(ns)) || !(f->name = strdup(name))) {
        folded_free(f);
        return; /* folding is best effort */
    }
    memcpy(f->key, key, sizeof(f->key));
    f->count = 1;
    f->last = at;
    HASH_ADD(hh, r->cache, key, sizeof(f->key), f);
    if (!f->hh.tbl) {
        folded_free(f);
        return;
    }
    while (HASH_COUNT(r->cache) > r->cache_max)
        cache_forget(r, r->cache); /* the head is the least recently used */
}

/* ---- the writer ---- */

static uint64_t next_unique(event_recorder *r)
{
    struct timespec ts;
    uint64_t u;
    clock_gettime(CLOCK_REALTIME, &ts);
    u = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    if (u <= r->last_unique)
        u = r->last_unique + 1;
    r->last_unique = u;
    return u;
}

static void count_stat(event_recorder *r, unsigned long *stat)
{
    pthread_mutex_lock(&r->mu);
    (*stat)++;
    pthread_mutex_unlock(&r->mu);
}

static int write_new(event_recorder *r, const pending *p, const unsigned char *key)
{
    int err = 0;
    char *name = NULL;
    cJSON *body = NULL;
    const char *ns = p->obj.namespace && *p->obj.namespace ? p->obj.namespace : "default";
    for (int attempt = 0; attempt < 2; attempt++) {
        free(name);
        name = NULL;
        cJSON_Delete(body);
        body = NULL;
        if ((err = event_name_new(&name, p->obj.name, next_unique(r))) < 0 ||
            (err = event_body_new(&body, &p->obj, p->type, p->reason, p->message, r->component, r->instance, name,
                                  p->at)) < 0)
            break;
        err = kube_create(NULL, r->client, &KUBE_EVENTS, ns, body);
        if (err != MB_EEXISTS)
            break;
    }
    if (err == 0) {
        cache_remember(r, key, ns, name, p->at);
        count_stat(r, &r->stats.created);
    }
    free(name);
    cJSON_Delete(body);
    return err;
}

long event_retry_ms(int err, long http_code, unsigned attempt)
{
    bool transient = err == MB_ECONN || err == MB_ETIMEOUT ||
                     (err == MB_EHTTP && (http_code == 429 || http_code >= 500));
    long ms = 1000;
    if (!transient || attempt >= EVENT_WRITE_RETRIES)
        return -1;
    for (unsigned i = 0; i < attempt && ms < 30000; i++)
        ms *= 2;
    return ms < 30000 ? ms : 30000;
}

/* One try at writing p: 0, or the error (not logged). */
static int write_one(event_recorder *r, const pending *p)
{
    int err = 0;
    unsigned char key[SHA256_DIGEST_LENGTH];
    folded *f = NULL;

    if ((err = fold_key(key, p)) < 0)
        goto done;
    HASH_FIND(hh, r->cache, key, sizeof(key), f);
    if (f && p->at - f->last <= r->window_s) {
        char *patch = NULL;
        if ((err = event_patch_new(&patch, f->count + 1, p->message, p->at)) == 0)
            err = kube_patch(NULL, r->client, &KUBE_EVENTS, f->namespace, f->name, NULL, KUBE_PATCH_MERGE, patch);
        free(patch);
        if (err == 0) {
            f->count++;
            f->last = p->at;
            HASH_DEL(r->cache, f); /* most recently used goes to the tail */
            HASH_ADD(hh, r->cache, key, sizeof(f->key), f);
            if (!f->hh.tbl)
                folded_free(f); /* forgotten: the next repeat starts a new Event */
            count_stat(r, &r->stats.folded);
            goto done;
        }
        if (err != MB_ENOTFOUND)
            goto done;
        /* The Event expired or was deleted: start a new one. */
    }
    if (f)
        cache_forget(r, f);
    err = write_new(r, p, key);
done:
    return err;
}

/* Writes p, trying again while event_retry_ms says so; a stop ends the waits. Called without r->mu. */
static void write_retrying(event_recorder *r, const pending *p)
{
    mb_log_fields lf = {.kind = p->obj.kind, .namespace = p->obj.namespace, .name = p->obj.name};
    for (unsigned attempt = 0;; attempt++) {
        int err = write_one(r, p);
        long ms;
        bool stopping;
        if (err == 0)
            return;
        ms = event_retry_ms(err, err == MB_EHTTP ? kube_status_last()->code : 0, attempt);
        pthread_mutex_lock(&r->mu);
        stopping = r->stopping;
        pthread_mutex_unlock(&r->mu);
        if (ms < 0 || stopping) {
            MB_LOG(MB_LOG_WARN, &lf, "cannot record the %s event %s: %s", event_type_name(p->type), p->reason,
                   mb_error_last());
            count_stat(r, &r->stats.failed);
            return;
        }
        MB_LOG(MB_LOG_INFO, &lf, "cannot record the %s event %s yet, trying again in %ld ms: %s",
               event_type_name(p->type), p->reason, ms, mb_error_last());
        count_stat(r, &r->stats.retried);
        struct timespec until = timefmt_deadline(CLOCK_REALTIME, ms); /* r->wake uses the default clock */
        pthread_mutex_lock(&r->mu);
        while (!r->stopping && pthread_cond_timedwait(&r->wake, &r->mu, &until) == 0)
            ;
        stopping = r->stopping;
        pthread_mutex_unlock(&r->mu);
        if (stopping) {
            MB_LOG(MB_LOG_WARN, &lf, "cannot record the %s event %s before stopping", event_type_name(p->type),
                   p->reason);
            count_stat(r, &r->stats.failed);
            return;
        }
    }
}

static void pending_free(pending *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < sizeof(p->strings) / sizeof(p->strings[0]); i++)
        free(p->strings[i]);
    free(p);
}

static void *writer(void *arg)
{
    event_recorder *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        pending *p;
        while (!r->head && !r->stopping)
            pthread_cond_wait(&r->wake, &r->mu);
        if (r->stopping)
            break;
        p = r->head;
        r->head = p->next;
        if (!r->head)
            r->tail = NULL;
        r->queued--;
        r->busy = true;
        pthread_mutex_unlock(&r->mu);
        write_retrying(r, p);
        pending_free(p);
        pthread_mutex_lock(&r->mu);
        r->busy = false;
        if (!r->head)
            pthread_cond_broadcast(&r->idle);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int event_recorder_new(event_recorder **out, kube_client *client, const event_recorder_opts *opts)
{
    int err = 0;
    event_recorder_opts o = {0};
    event_recorder *r = NULL;
    char host[256];
    bool threaded = false;
    *out = NULL;
    if (!client)
        return mb_error_set(MB_EINVAL, "an Event recorder needs a client");
    if (opts)
        o = *opts;
    if (!o.instance) {
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "unknown");
        host[sizeof(host) - 1] = '\0';
        o.instance = host;
    }
    if (!(r = calloc(1, sizeof(*r))))
        return mb_error_set(MB_ENOMEM, "out of memory creating an Event recorder");
    r->client = client;
    r->window_s = o.window_seconds > 0 ? o.window_seconds : DEFAULT_WINDOW_S;
    r->queue_max = o.queue_max ? o.queue_max : DEFAULT_QUEUE_MAX;
    r->cache_max = o.cache_max ? o.cache_max : DEFAULT_CACHE_MAX;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->wake, NULL);
    pthread_cond_init(&r->idle, NULL);
    if (!(r->component = strdup(o.component ? o.component : DEFAULT_COMPONENT)) ||
        !(r->instance = strndup(o.instance, 128))) { /* reportingInstance: at most 128 characters */
        err = mb_error_set(MB_ENOMEM, "out of memory creating an Event recorder");
        goto done;
    }
    if (pthread_create(&r->thread, NULL, writer, r) != 0) {
        err = mb_error_set(MB_ERROR, "cannot start the Event recorder's thread");
        goto done;
    }
    threaded = true;
    *out = r;
    r = NULL;
done:
    if (r && !threaded) {
        free(r->component);
        free(r->instance);
        pthread_cond_destroy(&r->idle);
        pthread_cond_destroy(&r->wake);
        pthread_mutex_destroy(&r->mu);
        free(r);
    }
    return err;
}

void event_recorder_free(event_recorder *r)
{
    folded *f, *tmp;
    pending *p, *next;
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_broadcast(&r->wake);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    if (r->queued)
        log_warn("dropping %zu unwritten Events at shutdown", r->queued);
    for (p = r->head; p; p = next) {
        next = p->next;
        pending_free(p);
    }
    HASH_ITER(hh, r->cache, f, tmp)
        cache_forget(r, f);
    free(r->component);
    free(r->instance);
    pthread_cond_destroy(&r->idle);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* Copies s into p->strings[i]; NULL stays NULL. */
static bool keep(pending *p, size_t i, const char *s, const char **dst)
{
    if (!s) {
        *dst = NULL;
        return true;
    }
    if (!(p->strings[i] = strdup(s)))
        return false;
    *dst = p->strings[i];
    return true;
}

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
static void cut_utf8(char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    s[n] = '\0';
}

int event_plan(event_planned *events, size_t *n, size_t max, const char *type, const char *reason, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;
    if (*n >= max)
        return 0;
    va_start(ap, fmt);
    int len = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (len < 0)
        return mb_error_set(MB_ENOMEM, "out of memory");
    events[*n].type = type;
    events[*n].reason = reason;
    events[*n].message = msg;
    (*n)++;
    return 0;
}

void event_record_planned(event_recorder *r, const event_object *obj, const event_planned *events, size_t n)
{
    for (size_t i = 0; i < n; i++)
        event_record(r, obj, strcmp(events[i].type, "Warning") == 0 ? EVENT_WARNING : EVENT_NORMAL, events[i].reason,
                     "%s", events[i].message);
}

void event_record(event_recorder *r, const event_object *obj, event_type type, const char *reason, const char *fmt, ...)
{
    pending *p = NULL;
    char *message = NULL;
    va_list ap;
    const char *ignored;
    bool ok;
    if (!r)
        return;
    if (!obj || !obj->name || !*obj->name || !reason || !fmt) {
        log_warn("not recording an event without an object name, a reason or a message");
        return;
    }
    va_start(ap, fmt);
    if (vasprintf(&message, fmt, ap) < 0)
        message = NULL;
    va_end(ap);
    if (!message || !(p = calloc(1, sizeof(*p)))) {
        free(message);
        log_warn("cannot record the event %s: out of memory", reason);
        return;
    }
    cut_utf8(message, MESSAGE_MAX);
    p->strings[0] = message;
    p->message = message;
    p->type = type;
    p->at = time(NULL);
    ok = keep(p, 1, reason, &ignored) && keep(p, 2, obj->kind, &p->obj.kind) &&
         keep(p, 3, obj->api_version, &p->obj.api_version) && keep(p, 4, obj->namespace, &p->obj.namespace) &&
         keep(p, 5, obj->name, &p->obj.name) && keep(p, 6, obj->uid, &p->obj.uid) &&
         keep(p, 7, obj->resource_version, &p->obj.resource_version) && keep(p, 8, obj->field_path, &p->obj.field_path);
    if (!ok) {
        pending_free(p);
        log_warn("cannot record the event %s: out of memory", reason);
        return;
    }
    p->reason = p->strings[1];

    pthread_mutex_lock(&r->mu);
    if (r->queued >= r->queue_max || r->stopping) {
        r->stats.dropped++;
        pthread_mutex_unlock(&r->mu);
        MB_LOG(MB_LOG_WARN, (&(mb_log_fields){.kind = obj->kind, .namespace = obj->namespace, .name = obj->name}),
               "dropping the event %s: %zu events are already waiting to be written", reason, r->queue_max);
        pending_free(p);
        return;
    }
    if (r->tail)
        r->tail->next = p;
    else
        r->head = p;
    r->tail = p;
    r->queued++;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->mu);
}

int event_recorder_flush(event_recorder *r, long timeout_ms)
{
    struct timespec until;
    int err = 0;
    if (!r)
        return 0;
    until = timefmt_deadline(CLOCK_REALTIME, timeout_ms);
    pthread_mutex_lock(&r->mu);
    while ((r->head || r->busy) && !r->stopping) {
        if (pthread_cond_timedwait(&r->idle, &r->mu, &until) != 0 && (r->head || r->busy)) {
            err = mb_error_set(MB_ETIMEOUT, "%zu Events are still waiting to be written after %ld ms",
                               r->queued + (r->busy ? 1 : 0), timeout_ms);
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return err;
}

void event_recorder_get_stats(event_recorder_stats *out, event_recorder *r)
{
    memset(out, 0, sizeof(*out));
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    *out = r->stats;
    pthread_mutex_unlock(&r->mu);
}

/*
 * The Event recorder: writes core/v1 Events about an object ("Normal"/"Warning",
 * a CamelCase reason, a message), reported by component "membrane", and folds
 * repeats as client-go does: the same (object, type, reason, message) seen
 * again within the window raises count and lastTimestamp on the existing Event
 * by a merge patch instead of creating a new one. Recording only queues: a
 * writer thread talks to the API, so event_record() never waits on the network
 * and never fails its caller (problems are logged as warnings; when the queue
 * is full the event is dropped). Thread-safe.
 */
#ifndef MB_RUNTIME_EVENTS_H
#define MB_RUNTIME_EVENTS_H

#include "kube/client.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <time.h>

typedef enum {
    EVENT_NORMAL,
    EVENT_WARNING,
} event_type;

/* "Normal" or "Warning". */
const char *event_type_name(event_type t);

/* The object an Event is about; all borrowed. namespace NULL/"" for cluster-scoped objects. */
typedef struct {
    const char *kind;
    const char *api_version;
    const char *namespace;
    const char *name;
    const char *uid;
    const char *resource_version; /* may be NULL */
    const char *field_path;       /* may be NULL */
} event_object;

/*
 * Fills out with pointers borrowed from obj's metadata; kind and apiVersion
 * come from obj when it has them (watch events do, list items do not), else
 * from the given defaults. MB_EINVAL when obj has no metadata.name.
 */
int event_object_from_json(event_object *out, const cJSON *obj, const char *kind, const char *api_version);

typedef struct event_recorder event_recorder;

typedef struct {
    const char *component; /* source.component and reportingComponent; NULL: "membrane" */
    const char *instance;  /* reportingInstance; NULL: the host name */
    long window_seconds;   /* repeats within this long of the last one are folded; 0: 600 */
    size_t queue_max;      /* events waiting to be written; 0: 1000 */
    size_t cache_max;      /* Events remembered for folding; 0: 4096 */
} event_recorder_opts;

/* The client is borrowed and must outlive the recorder. opts may be NULL. */
int event_recorder_new(event_recorder **out, kube_client *client, const event_recorder_opts *opts);

/* Stops the writer (an Event being written is finished) and drops what is still queued. Accepts NULL. */
void event_recorder_free(event_recorder *r);

/*
 * Queues an Event about obj; reason is CamelCase (e.g. "RolloutStarted"), the
 * message is printf-formatted and cut at 1024 bytes. Never blocks on the API
 * and never fails; a NULL recorder is ignored.
 */
void event_record(event_recorder *r, const event_object *obj, event_type type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Waits until everything recorded so far is written (or given up): 0 or MB_ETIMEOUT. r may be NULL. */
int event_recorder_flush(event_recorder *r, long timeout_ms);

/*
 * An Event a pure decide function plans, for its reconcile to record once it
 * has acted (the plans of the three controllers hold a few of them).
 */
typedef struct {
    const char *type;   /* "Normal" or "Warning" */
    const char *reason; /* CamelCase, static */
    char *message;      /* owned */
} event_planned;

/*
 * Appends an Event to events, of which *n of max are in use: the message
 * printf-formatted. With all max in use it is left out (0). 0 or MB_ENOMEM.
 */
int event_plan(event_planned *events, size_t *n, size_t max, const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Records the n planned Events about obj ("Warning" as EVENT_WARNING, anything else EVENT_NORMAL). */
void event_record_planned(event_recorder *r, const event_object *obj, const event_planned *events, size_t n);

/* Counters since creation. */
typedef struct {
    unsigned long created; /* Events created */
    unsigned long folded;  /* repeats folded into an existing Event */
    unsigned long failed;  /* writes given up (logged), after event_retry_ms's tries */
    unsigned long retried; /* writes tried again */
    unsigned long dropped; /* not queued: the queue was full */
} event_recorder_stats;

/* Zeroes when r is NULL. */
void event_recorder_get_stats(event_recorder_stats *out, event_recorder *r);

/* ---- pure helpers, exposed for tests ---- */

/*
 * The name of a new Event: "<object name>.<16 hex digits of unique>", the
 * object name shortened so that the whole stays within 253 characters.
 */
int event_name_new(char **out, const char *object_name, uint64_t unique);

/* The core/v1 Event to create, with count 1 and both timestamps at now. */
int event_body_new(cJSON **out, const event_object *obj, event_type type, const char *reason, const char *message,
                   const char *component, const char *instance, const char *name, time_t now);

/*
 * How long to wait before trying a failed Event write again, after the
 * client's own retries: -1 to give up. Only what may pass later is tried
 * again (a connection error, a timeout, 429 or 5xx; http_code is the answer's
 * status for MB_EHTTP), at most EVENT_WRITE_RETRIES times, 1 s, 2 s, 4 s...
 * at most 30 s apart, so that an API server refusing requests for a minute
 * (429 with Retry-After, a restart) does not lose an Event.
 */
#define EVENT_WRITE_RETRIES 6
long event_retry_ms(int err, long http_code, unsigned attempt);

/* The merge patch that folds one more repeat: {"count":count,"lastTimestamp":now,"message":message}. */
int event_patch_new(char **out, long count, const char *message, time_t now);

#endif

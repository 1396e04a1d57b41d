/*
 * The Kubernetes API client: HTTP over libcurl with connection reuse and TLS
 * verification, the REST verbs on any resource, and metav1.Status errors.
 *
 * Every verb returns 0 or a negative mb_error code. A non-2xx answer is parsed
 * as a metav1.Status: its code, reason and message are kept per thread
 * (kube_status_last()) and in mb_error_last(), and mapped to a code: 404
 * MB_ENOTFOUND, 409 MB_ECONFLICT (reason AlreadyExists: MB_EEXISTS), 410
 * MB_EGONE, 401/403 MB_EFORBIDDEN, 422 MB_EINVALID, others MB_EHTTP. 429 is
 * retried after Retry-After; 5xx and connection errors are retried with capped
 * exponential backoff and jitter; 409 is never retried.
 *
 * Transport failures return MB_ECONN (refused, reset, DNS), MB_ETIMEOUT or
 * MB_ETLS (the message says whether the certificate has no trusted issuer,
 * names another host, or expired) and leave kube_status_last() unchanged.
 * TLS is verified unless the configuration says insecure_skip_tls_verify; the
 * CA, client certificate and key are used from memory. tls_server_name is the
 * name the certificate is verified against (and sent as SNI) while the
 * connection goes to the configured server and the Host header stays its.
 * All functions are safe to call from many threads on one client.
 */
#ifndef MB_KUBE_CLIENT_H
#define MB_KUBE_CLIENT_H

#include "kube/config.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct kube_client kube_client;

/* A resource type: group "" is the core group. */
typedef struct {
    const char *group;
    const char *version;
    const char *resource; /* plural, lower case */
    const char *kind;
    bool namespaced;
} kube_resource;

extern const kube_resource KUBE_NAMESPACES, KUBE_CONFIGMAPS, KUBE_SECRETS, KUBE_PODS, KUBE_EVENTS, KUBE_SERVICEACCOUNTS,
    KUBE_DEPLOYMENTS, KUBE_REPLICASETS, KUBE_NETWORKPOLICIES, KUBE_LEASES, KUBE_SUBJECTACCESSREVIEWS,
    KUBE_CUSTOMRESOURCEDEFINITIONS;
extern const kube_resource KUBE_LOCALSUBJECTACCESSREVIEWS;
extern const kube_resource KUBE_ROLES, KUBE_ROLEBINDINGS, KUBE_CLUSTERROLES, KUBE_CLUSTERROLEBINDINGS;

/* The last non-2xx answer's metav1.Status, per thread. */
typedef struct {
    long code;       /* HTTP status */
    char reason[64]; /* e.g. NotFound, Conflict, Expired */
    char message[512];
    long retry_after; /* seconds from Retry-After or details.retryAfterSeconds, 0 if none */
} kube_status;

const kube_status *kube_status_last(void);

/*
 * Parses a non-2xx body as metav1.Status into out (a body that is not a Status
 * still yields code and a message built from the HTTP status). Returns the
 * mapped mb_error code and sets the last-error message to
 * "<message> (<code> <reason>)". http_code 0 takes the code from the Status
 * (as in a watch ERROR event). Does not touch kube_status_last().
 */
int kube_status_parse(kube_status *out, long http_code, const char *body, size_t len);

/* Zero fields take the defaults. */
typedef struct {
    int max_retries;        /* for 429, 5xx and connection errors; 0: default 5; negative: none */
    long backoff_base_ms;   /* default 100 */
    long backoff_max_ms;    /* default 10000 */
    long timeout_ms;        /* per non-watch request; default 30000 (connecting: at most 10000) */
    const char *user_agent; /* default "membrane/<version>"; copied */
    /*
     * Called for every attempt once its outcome is known: the HTTP method and
     * the status, 0 when no answer came. For counters (api_requests_total);
     * any thread, must be quick. NULL: none.
     */
    void (*on_answer)(const char *method, long status);
} kube_client_opts;

/* Takes ownership of cfg, also on failure. opts may be NULL. */
int kube_client_new(kube_client **out, kube_config *cfg, const kube_client_opts *opts);
void kube_client_free(kube_client *c);

/* Borrowed: the configuration the client was made with. */
const kube_config *kube_client_config(const kube_client *c);

/*
 * Makes every retry wait and every watch on this client return MB_ESTOPPED
 * at once. A single request already on the wire finishes (bounded by
 * timeout_ms), and requests made afterwards are tried once without retries,
 * so a last status write or lease release at shutdown still goes out.
 * Thread-safe; the client must still be freed.
 */
void kube_client_stop(kube_client *c);

/*
 * Sets *stop and wakes the watch of this client that it ends (its
 * kube_watch_opts.stop), which then returns MB_ESTOPPED at once. The one way
 * to set that flag while the watch runs: a watch waits for data without
 * looking at its flag until something wakes it. Thread-safe.
 */
void kube_client_stop_stream(kube_client *c, atomic_bool *stop);

/* A raw answer. */
typedef struct {
    long status;
    char *body; /* NUL-terminated, owned */
    size_t len;
    long retry_after; /* seconds, 0 if absent */
} kube_response;

void kube_response_clear(kube_response *r);

/*
 * One request with the retry policy above; path starts with '/' and may carry
 * a query (escape its values). Non-2xx answers are returned in out with 0
 * (they are data here, after retries are used up); only transport failures
 * and stop return an error. Retries: 429 always (the API server refuses
 * those before any handler runs); 500/502/503/504 and broken connections only
 * for GET, PUT, DELETE and merge/strategic PATCH, which are safe to send
 * twice; POST and JSON PATCH otherwise only when the connection was never
 * made. Clear out with kube_response_clear().
 */
int kube_request(kube_response *out, kube_client *c, const char *method, const char *path, const char *content_type,
                 const char *body, size_t body_len);

/*
 * "/api/v1/namespaces/ns/pods/name/sub" and friends; ns/name/sub may be NULL,
 * ns is ignored for cluster-scoped resources, ns and name are URL-escaped.
 * Caller frees; NULL when out of memory.
 */
char *kube_path(const kube_resource *r, const char *ns, const char *name, const char *subresource);

/* out may be NULL (existence check). */
int kube_get(cJSON **out, kube_client *c, const kube_resource *r, const char *ns, const char *name);

typedef struct {
    const char *label_selector;
    const char *field_selector;
    long limit;                   /* page size; 0: 500 */
    const char *resource_version; /* NULL: most recent */
    /*
     * When set, each listed object is handed to each (which takes it) as its
     * page arrives, instead of being merged into the answer's items; NULL
     * means the list starts over (a continue token expired) and the objects
     * handed so far are void. A negative return ends the list with it.
     */
    int (*each)(void *ctx, cJSON *item);
    void *each_ctx;
} kube_list_opts;

/*
 * All pages, merged: {"items":[...], "metadata":{"resourceVersion": <of the
 * list>}} (plus the list's kind and apiVersion). ns NULL: all namespaces.
 * Pages are fetched with limit and continue; when a continue token expires
 * (410) the list starts again in one page, as client-go's pager does.
 */
int kube_list(cJSON **out, kube_client *c, const kube_resource *r, const char *ns, const kube_list_opts *opts);

/* POST; ns NULL: obj's metadata.namespace. out may be NULL. */
int kube_create(cJSON **out, kube_client *c, const kube_resource *r, const char *ns, const cJSON *obj);

/*
 * PUT; obj's metadata.resourceVersion is the precondition and must be there
 * (MB_EINVAL otherwise); a stale one answers MB_ECONFLICT. subresource NULL or
 * "status". ns NULL: obj's metadata.namespace. out may be NULL.
 */
int kube_update(cJSON **out, kube_client *c, const kube_resource *r, const char *ns, const cJSON *obj,
                const char *subresource);

typedef enum {
    KUBE_PATCH_MERGE,     /* application/merge-patch+json */
    KUBE_PATCH_JSON,      /* application/json-patch+json */
    KUBE_PATCH_STRATEGIC, /* application/strategic-merge-patch+json (built-in kinds only) */
} kube_patch_type;

/*
 * Writes obj over seen, the copy it was made from (NULL: none, the object is
 * new): PUT with seen's metadata.resourceVersion as the precondition (set
 * into obj's metadata), or POST when seen is NULL. *lost (may be NULL): the
 * write lost a race with another writer and is to be made again from a
 * fresh read: a stale resourceVersion (MB_ECONFLICT), an object created
 * meanwhile (MB_EEXISTS) or, for a PUT, deleted meanwhile (MB_ENOTFOUND).
 * ns NULL: obj's metadata.namespace. out may be NULL.
 */
int kube_write_seen(cJSON **out, bool *lost, kube_client *c, const kube_resource *r, const char *ns, const cJSON *seen,
                    cJSON *obj);

/* subresource NULL or "status". out may be NULL. */
int kube_patch(cJSON **out, kube_client *c, const kube_resource *r, const char *ns, const char *name,
               const char *subresource, kube_patch_type type, const char *patch);

/*
 * Writes status as the /status of obj (the object as read, of resource r; ns
 * NULL: obj's metadata.namespace): a JSON merge patch from obj's status to
 * status (json_merge_patch: changed keys, null for the keys that went away;
 * the API server keeps every other field as it is) carrying obj's
 * metadata.resourceVersion, which stays an optimistic lock: a stale one
 * answers MB_ECONFLICT, as kube_update's. A fraction of the bytes of a PUT of
 * the whole object. out may be NULL.
 */
int kube_patch_status(cJSON **out, kube_client *c, const kube_resource *r, const char *ns, const cJSON *obj,
                      const cJSON *status);

typedef struct {
    const char *uid;                /* precondition, may be NULL */
    const char *resource_version;   /* precondition, may be NULL */
    const char *propagation_policy; /* Orphan | Background | Foreground, may be NULL */
} kube_delete_opts;

/* opts may be NULL (no body). A missing object is MB_ENOTFOUND; failed preconditions MB_ECONFLICT. */
int kube_delete(kube_client *c, const kube_resource *r, const char *ns, const char *name, const kube_delete_opts *opts);

#endif

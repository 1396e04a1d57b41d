/*
 * Private to controller/kube: the pieces the transport (http.c), the verbs
 * (client.c), the Status parser and the watch stream share that are not part
 * of the public API (client.h, watch.h).
 */
#ifndef MB_KUBE_CLIENT_PRIVATE_H
#define MB_KUBE_CLIENT_PRIVATE_H

#include "kube/client.h"

#include <stdatomic.h>
#include <stddef.h>

/*
 * Parses a non-2xx answer as kube_status_parse() does into the calling
 * thread's kube_status_last(); retry_after (seconds from the header, 0 if
 * none) is kept when larger than what the body says. Returns the mapped code.
 */
int kube_status_record(long http_code, const char *body, size_t len, long retry_after);

/* The same for a Status object already parsed (a watch ERROR event's object); its code field is the code. */
int kube_status_record_object(const cJSON *status);

/* Appends a, b and c (each may be NULL) to *s (reallocated; NULL starts a string); 0 or MB_ENOMEM. */
int kube_str_append(char **s, const char *a, const char *b, const char *c);

/* Appends "?key=value" or "&key=value", value URL-escaped, to *path (reallocated); 0 or MB_ENOMEM. */
int kube_query_add(char **path, const char *key, const char *value);

/* Receives the body of a 2xx answer as it arrives; 0 to go on, a negative mb_error to end. */
typedef int (*kube_stream_fn)(void *ctx, const char *data, size_t len);

/*
 * One streaming GET without retries, without an overall timeout and with TCP
 * keepalive. A 2xx body goes to fn; a non-2xx body is collected into out.
 * Returns 0 when the server ended the answer, fn's error, MB_ESTOPPED when
 * kube_client_stop_stream() on *stop (may be NULL) or kube_client_stop()
 * ended it, or a transport error.
 */
int kube_request_stream(kube_response *out, kube_client *c, const char *path, kube_stream_fn fn, void *ctx,
                        atomic_bool *stop);

#endif

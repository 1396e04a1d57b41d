/*
 * A batch of requests on the shared transfer loop (net/transfer.h), as the
 * contract checks (contract.h) and the slo check (slo.h) run theirs: one base
 * URL, one bearer token (sent by the requests that ask for it, never logged,
 * wiped with the batch), X-Request-ID: <release ID>-<check> and the same
 * timeout on every request, no redirects followed, JSON accepted. Every
 * request of a run is started at once, each answer is copied into the
 * caller's batch_answer when its transfer ends, and the batch is finished
 * when the last one has ended. Its callback is then called once, on the loop
 * thread (or by batch_seal itself when every request ended before the seal),
 * after the batch is finished, so it may free what holds the batch. The
 * batch lives inside its owner's run; the answers too, until batch_dispose.
 *
 * A run: batch_init, batch_start for each request, then batch_seal (all
 * started) or batch_abort (a start failed: what was started is cancelled and
 * waited for, and no callback is called); batch_wait before reading the
 * answers, batch_cancel from any thread, batch_dispose to release.
 */
#ifndef MB_VERIFY_BATCH_H
#define MB_VERIFY_BATCH_H

#include "net/transfer.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define BATCH_MAX 32 /* requests in one batch */

typedef struct batch batch;
typedef void (*batch_done_fn)(void *ctx);

/* What came back for one request; owned by the caller's run, filled on the loop thread. */
typedef struct {
    batch *batch;
    bool done;
    net_outcome outcome; /* NET_FAILED too when the answer could not be kept (out of memory) */
    int curl_code;
    long status; /* 0: no response */
    long latency_ms;
    long os_errno;
    char *resp; /* response body, NUL-terminated; NULL when empty */
    size_t resp_len;
    char *error; /* the transfer loop's sentence when no answer came */
} batch_answer;

/* Embedded in its owner; the fields are the module's. */
struct batch {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    size_t pending; /* started transfers whose callback has not returned, and the hold until the seal; under mu */
    bool finished;  /* every callback and the hold have gone; under mu */
    net_transfer *handles[BATCH_MAX];
    size_t nhandles;
    batch_done_fn done; /* under mu */
    void *ctx;
    /* what every request shares; the owner may read them */
    char *base;          /* the base URL without trailing '/' */
    char *token;         /* bearer token, NULL: none */
    char release_id[65]; /* X-Request-ID is <release_id>-<check> */
    long timeout_ms;     /* per request, and to connect */
};

/*
 * Readies b, holding it open until batch_seal or batch_abort, with copies of
 * base_url (trailing '/' dropped), token (NULL: none) and release_id (at most
 * 64 bytes). 0 or MB_ENOMEM; b is to be aborted and disposed either way.
 */
int batch_init(batch *b, const char *base_url, const char *token, const char *release_id, long timeout_ms);

/* One request of a batch. */
typedef struct {
    const char *kind;  /* the transfer metrics' label */
    const char *check; /* X-Request-ID: <release_id>-<check> */
    const char *method;
    const char *url;
    const char *body; /* NUL-terminated, NULL: none */
    bool auth;        /* carries the batch's token */
    long long max_bytes;
} batch_request;

/*
 * Starts req with its answer into `into`, which must live until
 * batch_dispose. 0, or the error of net_transfer_start (nothing started
 * then); MB_ERROR beyond BATCH_MAX.
 */
int batch_start(batch *b, net_loop *loop, const batch_request *req, batch_answer *into);

/*
 * Every request is started: done(ctx) (may be NULL) is called once when the
 * last has ended, here when they all have already.
 */
void batch_seal(batch *b, batch_done_fn done, void *ctx);

/* A start failed: cancels what was started and waits for its callbacks; no done is called. */
void batch_abort(batch *b);

bool batch_finished(batch *b);

/* Ends the transfers still running (their answers are NET_CANCELLED); any thread. */
void batch_cancel(batch *b);

/* Waits until the batch is finished. */
void batch_wait(batch *b);

/* Releases the handles and wipes the token; the batch must be finished (on the loop thread only then, as in done). */
void batch_dispose(batch *b);

/* Frees what an answer holds. */
void batch_answer_dispose(batch_answer *a);

#endif

/*
 * A transfer on the shared transfer loop (net/transfer.h) started by a
 * reconcile for one workqueue key, as the PolicyBundle fetch and the
 * DatasetPromotion downloads are: the reconcile starts it and returns, the
 * loop thread records how it ended and enqueues the key on the controller's
 * loop, and the next reconcile of the key polls it and takes what came. It
 * is shared by its owner (the work kept by key, runtime/worktable.h) and the
 * completion callback, and freed when both have let go: the owner lets go
 * with keyed_transfer_detach, at once when the object goes away or its
 * generation changes (the transfer is cancelled if it still runs, and its
 * end enqueues nothing), or after it has taken the result.
 */
#ifndef MB_RUNTIME_KEYED_TRANSFER_H
#define MB_RUNTIME_KEYED_TRANSFER_H

#include "net/transfer.h"
#include "runtime/loop.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct keyed_transfer keyed_transfer;

/* What keyed_transfer_poll sees. Before the end only bytes and total are set. */
typedef struct {
    bool done; /* the completion has come: the rest is final */
    net_outcome outcome;
    long status;     /* HTTP status; 0: no response */
    long long bytes; /* body bytes received (hashed) so far */
    long long total; /* Content-Length when known, else -1 */
    char sha256_hex[65];
    const char *error; /* one sentence when outcome != NET_DONE, else ""; borrowed until the detach */
} keyed_result;

/*
 * Starts req on net for key (copied): the completion enqueues key on l
 * unless the owner has detached. req's on_done, on_data, on_progress and ctx
 * are the helper's (the caller's are ignored); with keep_body the body of a
 * 2xx answer is kept for keyed_transfer_take_body. 0, or the error of
 * net_transfer_start (MB_EINVAL with its message, MB_ENOMEM, MB_ERROR), with
 * nothing started and *out NULL.
 */
int keyed_transfer_start(keyed_transfer **out, net_loop *net, loop *l, const char *key, const net_request *req);

/* The state of x into *out (done or not). */
void keyed_transfer_poll(keyed_result *out, keyed_transfer *x);

/* After the end: the kept body (NUL-terminated, *len bytes), now the caller's; NULL when none was kept. */
char *keyed_transfer_take_body(keyed_transfer *x, size_t *len);

/*
 * The owner lets go of x: cancelled if it still runs (its end then enqueues
 * nothing), freed once the completion has run too. x must not be used after.
 * Accepts NULL.
 */
void keyed_transfer_detach(keyed_transfer *x);

/* How many keyed transfers the process holds (started, not yet freed): for tests and leak checks. */
size_t keyed_transfer_live(void);

#endif

/*
 * The request batch of batch.h: a count of the transfers still running (and
 * the hold of the starting thread), the finished flag and its condition
 * variable, the handles to cancel, and the copy of each answer, kept past
 * the completion callback for the judge.
 */
#include "verify/batch.h"
#include "util/error.h"
#include "util/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int batch_init(batch *b, const char *base_url, const char *token, const char *release_id, long timeout_ms)
{
    size_t blen = strlen(base_url);

    memset(b, 0, sizeof(*b));
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cond, NULL);
    b->pending = 1; /* held while the requests are started, so that none finishes the batch early */
    b->timeout_ms = timeout_ms;
    snprintf(b->release_id, sizeof(b->release_id), "%s", release_id);
    while (blen > 0 && base_url[blen - 1] == '/')
        blen--;
    if (!(b->base = strndup(base_url, blen)) || (token && !(b->token = strdup(token))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    return 0;
}

/* One part has ended; the last finishes the batch and calls done (outside the lock: done may free the batch). */
static void part_done(batch *b, bool call_done)
{
    pthread_mutex_lock(&b->mu);
    bool last = --b->pending == 0;
    batch_done_fn done = last && call_done ? b->done : NULL;
    void *ctx = b->ctx;
    if (last) {
        b->finished = true;
        pthread_cond_broadcast(&b->cond);
    }
    pthread_mutex_unlock(&b->mu);
    if (done)
        done(ctx);
}

/* A request has ended (on the loop thread): keep what came back. */
static void answer_done(void *arg, const net_result *r)
{
    batch_answer *a = arg;

    a->outcome = r->outcome;
    a->curl_code = r->curl_code;
    a->status = r->status;
    a->latency_ms = r->latency_ms;
    a->os_errno = r->os_errno;
    a->error = r->error[0] ? strdup(r->error) : NULL;
    if (r->error[0] && !a->error && a->outcome == NET_DONE)
        a->outcome = NET_FAILED;
    if (r->body && r->body_len) {
        if (!(a->resp = malloc(r->body_len + 1))) {
            a->outcome = NET_FAILED; /* judged as no answer: out of memory */
        } else {
            memcpy(a->resp, r->body, r->body_len);
            a->resp[r->body_len] = '\0';
            a->resp_len = r->body_len;
        }
    }
    a->done = true;
    part_done(a->batch, true);
}

int batch_start(batch *b, net_loop *loop, const batch_request *req, batch_answer *into)
{
    int err = 0;
    char rid[160];
    snprintf(rid, sizeof(rid), "X-Request-ID: %s-%s", b->release_id, req->check);
    const char *headers[] = {"Accept: application/json", rid, NULL};
    net_request r = {
        .kind = req->kind,
        .method = req->method,
        .url = req->url,
        .headers = headers,
        .body = req->body,
        .body_len = req->body ? strlen(req->body) : 0,
        .token = req->auth ? b->token : NULL,
        .timeout_ms = b->timeout_ms,
        .connect_timeout_ms = b->timeout_ms,
        .max_bytes = req->max_bytes,
        .keep_body = true,
        .on_done = answer_done,
        .ctx = into,
    };

    if (b->nhandles >= BATCH_MAX)
        return mb_error_set(MB_ERROR, "more than %d requests in one batch", BATCH_MAX);
    into->batch = b;
    pthread_mutex_lock(&b->mu);
    b->pending++;
    pthread_mutex_unlock(&b->mu);
    if ((err = net_transfer_start(&b->handles[b->nhandles], loop, &r)) < 0) {
        pthread_mutex_lock(&b->mu);
        b->pending--;
        pthread_mutex_unlock(&b->mu);
        return err;
    }
    b->nhandles++;
    return 0;
}

void batch_seal(batch *b, batch_done_fn done, void *ctx)
{
    pthread_mutex_lock(&b->mu);
    b->done = done;
    b->ctx = ctx;
    pthread_mutex_unlock(&b->mu);
    part_done(b, true);
}

void batch_abort(batch *b)
{
    batch_cancel(b);
    part_done(b, false);
    batch_wait(b);
}

bool batch_finished(batch *b)
{
    pthread_mutex_lock(&b->mu);
    bool f = b->finished;
    pthread_mutex_unlock(&b->mu);
    return f;
}

void batch_cancel(batch *b)
{
    for (size_t i = 0; i < b->nhandles; i++)
        net_transfer_cancel(b->handles[i]);
}

void batch_wait(batch *b)
{
    pthread_mutex_lock(&b->mu);
    while (!b->finished)
        pthread_cond_wait(&b->cond, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

void batch_dispose(batch *b)
{
    for (size_t i = 0; i < b->nhandles; i++)
        net_transfer_release(b->handles[i]);
    b->nhandles = 0;
    free(b->base);
    mb_secret_free(b->token);
    b->base = b->token = NULL;
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cond);
}

void batch_answer_dispose(batch_answer *a)
{
    free(a->resp);
    free(a->error);
    a->resp = a->error = NULL;
    a->resp_len = 0;
}

/*
 * A transfer started for a workqueue key, shared by its owner and its
 * completion callback (runtime/keyed_transfer.h).
 */
#include "runtime/keyed_transfer.h"
#include "util/error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct keyed_transfer {
    pthread_mutex_t mu;
    int refs; /* the owner's and the callback's */
    bool done, detached;
    loop *l;
    char *key;
    net_transfer *t;
    long long bytes, total;
    net_outcome outcome;
    long status;
    char sha[65];
    char *body;
    size_t len;
    char *error;
};

static atomic_size_t live;

static void unref(keyed_transfer *x)
{
    pthread_mutex_lock(&x->mu);
    int left = --x->refs;
    pthread_mutex_unlock(&x->mu);
    if (left > 0)
        return;
    net_transfer_release(x->t);
    free(x->key);
    free(x->body);
    free(x->error);
    pthread_mutex_destroy(&x->mu);
    free(x);
    atomic_fetch_sub(&live, 1);
}

static void on_progress(void *ctx, long long now, long long total)
{
    keyed_transfer *x = ctx;
    pthread_mutex_lock(&x->mu);
    x->bytes = now;
    x->total = total;
    pthread_mutex_unlock(&x->mu);
}

static void on_done(void *ctx, const net_result *r)
{
    keyed_transfer *x = ctx;
    pthread_mutex_lock(&x->mu);
    if (!x->detached) {
        x->outcome = r->outcome;
        x->status = r->status;
        x->bytes = r->bytes;
        memcpy(x->sha, r->sha256_hex, sizeof(x->sha));
        x->error = strdup(r->error ? r->error : "");
        if (r->body && r->outcome == NET_DONE && r->status >= 200 && r->status <= 299 &&
            (x->body = malloc(r->body_len + 1))) {
            memcpy(x->body, r->body, r->body_len);
            x->body[r->body_len] = '\0';
            x->len = r->body_len;
        }
        x->done = true;
        loop_enqueue(x->l, x->key);
    }
    pthread_mutex_unlock(&x->mu);
    unref(x);
}

int keyed_transfer_start(keyed_transfer **out, net_loop *net, loop *l, const char *key, const net_request *req)
{
    keyed_transfer *x = calloc(1, sizeof(*x));
    int err;
    *out = NULL;
    if (!x || !(x->key = strdup(key))) {
        free(x);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&x->mu, NULL);
    atomic_fetch_add(&live, 1);
    x->refs = 2;
    x->l = l;
    x->total = -1;
    net_request r = *req;
    r.on_done = on_done;
    r.on_data = NULL;
    r.on_progress = on_progress;
    r.ctx = x;
    if ((err = net_transfer_start(&x->t, net, &r)) < 0) {
        x->refs = 1; /* the callback will never run */
        unref(x);
        return err;
    }
    *out = x;
    return 0;
}

void keyed_transfer_poll(keyed_result *out, keyed_transfer *x)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&x->mu);
    out->bytes = x->bytes;
    out->total = x->total;
    out->error = "";
    if ((out->done = x->done)) {
        out->outcome = x->outcome;
        out->status = x->status;
        memcpy(out->sha256_hex, x->sha, sizeof(out->sha256_hex));
        out->error = x->error ? x->error : "";
    }
    pthread_mutex_unlock(&x->mu);
}

char *keyed_transfer_take_body(keyed_transfer *x, size_t *len)
{
    pthread_mutex_lock(&x->mu); /* kept only by the completion */
    char *body = x->body;
    *len = x->len;
    x->body = NULL;
    x->len = 0;
    pthread_mutex_unlock(&x->mu);
    return body;
}

void keyed_transfer_detach(keyed_transfer *x)
{
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    x->detached = true;
    bool running = !x->done;
    pthread_mutex_unlock(&x->mu);
    if (running)
        net_transfer_cancel(x->t);
    unref(x);
}

size_t keyed_transfer_live(void)
{
    return atomic_load(&live);
}

/*
 * The cached asynchronous verifier of verify.h. One thread runs the
 * verifications one after the other, in the order they were asked for (so a
 * burst of releases cannot flood a registry). The cache is a list of entries
 * by cache key, most recently used first: the SHA-256 of the repository, the
 * digest, the key (the SHA-256 of its PEM text), the attestation types, the
 * insecure flag and the SHA-256 of the CA and of the docker config (so a
 * changed credential is a new key, and no secret is kept in a key). An entry
 * is pending (queued or running: it holds a copy of the input, wiped when the
 * run ends, and the workqueue keys to notify) or done (its result and when it
 * was made). Done entries age: VERIFIED is kept until the LRU bound pushes it
 * out, REFUSED for IMAGE_VERIFY_REFUSED_TTL_MS, UNREACHABLE for
 * IMAGE_VERIFY_RETRY_MS (answered as it is meanwhile: a registry that is down
 * is asked at most once per that interval per cache key).
 */
#include "image/signature.h"
#include "image/verify_private.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/secret.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAITERS_MAX 64

typedef struct entry entry;
struct entry {
    entry *prev, *next;   /* the LRU list, most recent first */
    entry *queue_next;    /* in the queue while pending and not yet taken */
    unsigned char id[32]; /* the cache key */
    bool pending;
    long long done_ms;
    image_verify_result result;
    /* pending: the input, copied (secrets wiped when the run ends) */
    char *repository, *digest, *pem, *docker_config, *ca_pem;
    size_t pem_len;
    char **attestations;
    size_t n_attestations;
    bool insecure;
    long timeout_ms;
    char *waiters[WAITERS_MAX];
    size_t n_waiters;
};

struct image_verifier {
    net_loop *net;
    void (*on_done)(void *ctx, const char *key);
    void *ctx;
    long long (*now_ms)(void *ctx);
    void *now_ctx;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t thread;
    bool started, stopping;
    entry *lru;                 /* every entry, most recently used first */
    entry *queue, **queue_tail; /* pending entries not yet taken by the thread */
    size_t capacity;            /* done entries kept at most */
    registry_cancel cancel;
    atomic_ulong runs;
};

static long long real_now(void *ctx)
{
    (void)ctx;
    return (long long)mb_monotonic_ms();
}

static void input_free(entry *e)
{
    free(e->repository);
    free(e->digest);
    mb_secret_free_len(e->pem, e->pem_len);
    mb_secret_free(e->docker_config);
    free(e->ca_pem);
    for (size_t i = 0; i < e->n_attestations; i++)
        free(e->attestations[i]);
    free(e->attestations);
    e->repository = e->digest = e->pem = e->docker_config = e->ca_pem = NULL;
    e->attestations = NULL;
    e->n_attestations = 0;
    e->pem_len = 0;
}

static void entry_free(entry *e)
{
    if (!e)
        return;
    input_free(e);
    for (size_t i = 0; i < e->n_waiters; i++)
        free(e->waiters[i]);
    free(e);
}

static int input_copy(entry *e, const image_verify_input *in)
{
    e->pem_len = in->public_key_len;
    e->insecure = in->insecure;
    e->timeout_ms = in->timeout_ms;
    if (!(e->repository = strdup(in->repository)) || !(e->digest = strdup(in->digest)) ||
        !(e->pem = malloc(in->public_key_len + 1)) ||
        (in->docker_config && !(e->docker_config = strdup(in->docker_config))) ||
        (in->ca_pem && !(e->ca_pem = strdup(in->ca_pem))) ||
        (in->n_attestations && !(e->attestations = calloc(in->n_attestations, sizeof(char *)))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    memcpy(e->pem, in->public_key_pem, in->public_key_len);
    e->pem[in->public_key_len] = '\0';
    for (size_t i = 0; i < in->n_attestations; i++, e->n_attestations++)
        if (!(e->attestations[i] = strdup(in->attestations[i])))
            return mb_error_set(MB_ENOMEM, "out of memory");
    return 0;
}

/* Hashes one field with its length, so that no two different inputs run together into one text. */
static void field(EVP_MD_CTX *md, const void *p, size_t n)
{
    unsigned long long len = p ? n : ~0ULL;
    EVP_DigestUpdate(md, &len, sizeof(len));
    if (p && n)
        EVP_DigestUpdate(md, p, n);
}

static void field_hash(EVP_MD_CTX *md, const char *s)
{
    unsigned char h[32];
    unsigned int hl = 0;
    if (!s) {
        field(md, NULL, 0);
        return;
    }
    EVP_Digest(s, strlen(s), h, &hl, EVP_sha256(), NULL);
    field(md, h, hl);
    OPENSSL_cleanse(h, sizeof(h));
}

static int cache_key(unsigned char id[32], const image_verify_input *in)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    unsigned char flag = in->insecure ? 1 : 0;
    if (!md)
        return mb_error_set(MB_ENOMEM, "out of memory");
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    field(md, in->repository, strlen(in->repository));
    field(md, in->digest, strlen(in->digest));
    {
        unsigned char h[32];
        unsigned int hl = 0;
        EVP_Digest(in->public_key_pem, in->public_key_len, h, &hl, EVP_sha256(), NULL);
        field(md, h, hl);
    }
    field(md, &in->n_attestations, sizeof(in->n_attestations));
    for (size_t i = 0; i < in->n_attestations; i++)
        field(md, in->attestations[i], strlen(in->attestations[i]));
    field(md, &flag, 1);
    field_hash(md, in->ca_pem);
    field_hash(md, in->docker_config);
    int ok = EVP_DigestFinal_ex(md, id, &n) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : mb_error_set(MB_ERROR, "OpenSSL cannot compute SHA-256");
}

static void lru_unlink(image_verifier *v, entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        v->lru = e->next;
    if (e->next)
        e->next->prev = e->prev;
    e->prev = e->next = NULL;
}

static void lru_front(image_verifier *v, entry *e)
{
    e->next = v->lru;
    e->prev = NULL;
    if (v->lru)
        v->lru->prev = e;
    v->lru = e;
}

/*
 * Drops the least recently used results beyond the bound. Only results count
 * and go: a pending entry is work someone waits for (the queue is bounded by
 * the callers, one entry per cache key).
 */
static void lru_trim(image_verifier *v)
{
    entry *e = v->lru, *tail = NULL;
    size_t done = 0;
    for (; e; e = e->next) {
        done += !e->pending;
        tail = e;
    }
    for (e = tail; e && done > v->capacity;) {
        entry *prev = e->prev;
        if (!e->pending) {
            lru_unlink(v, e);
            entry_free(e);
            done--;
        }
        e = prev;
    }
}

static void enqueue(image_verifier *v, entry *e)
{
    e->pending = true;
    e->queue_next = NULL;
    *v->queue_tail = e;
    v->queue_tail = &e->queue_next;
    pthread_cond_signal(&v->cond);
}

static int waiter_add(entry *e, const char *key)
{
    if (!key)
        return 0;
    for (size_t i = 0; i < e->n_waiters; i++)
        if (strcmp(e->waiters[i], key) == 0)
            return 0;
    if (e->n_waiters == WAITERS_MAX)
        return 0; /* the rest poll: they requeue on PENDING */
    if (!(e->waiters[e->n_waiters] = strdup(key)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    e->n_waiters++;
    return 0;
}

static void *verifier_main(void *arg)
{
    image_verifier *v = arg;
    pthread_mutex_lock(&v->mu);
    for (;;) {
        while (!v->stopping && !v->queue)
            pthread_cond_wait(&v->cond, &v->mu);
        if (v->stopping)
            break;
        entry *e = v->queue;
        v->queue = e->queue_next;
        if (!v->queue)
            v->queue_tail = &v->queue;
        e->queue_next = NULL;
        const char *const *atts = (const char *const *)e->attestations;
        image_verify_input in = {.repository = e->repository,
                                 .digest = e->digest,
                                 .public_key_pem = e->pem,
                                 .public_key_len = e->pem_len,
                                 .attestations = atts,
                                 .n_attestations = e->n_attestations,
                                 .docker_config = e->docker_config,
                                 .ca_pem = e->ca_pem,
                                 .insecure = e->insecure,
                                 .timeout_ms = e->timeout_ms};
        image_verify_result res;
        pthread_mutex_unlock(&v->mu); /* the entry stays: pending ones are never evicted, and free joins first */
        int err = image_verify_run_with(&res, v->net, &in, &v->cancel);
        atomic_fetch_add(&v->runs, 1);
        if (err < 0) {
            memset(&res, 0, sizeof(res));
            res.state = IMAGE_VERIFY_UNREACHABLE;
            snprintf(res.message, sizeof(res.message), "image %.300s@%s could not be verified: %s", e->repository,
                     e->digest, mb_error_last());
        }
        pthread_mutex_lock(&v->mu);
        char *waiters[WAITERS_MAX];
        size_t n = e->n_waiters;
        e->result = res;
        e->pending = false;
        e->done_ms = v->now_ms(v->now_ctx);
        input_free(e);
        memcpy(waiters, e->waiters, n * sizeof(char *));
        e->n_waiters = 0;
        lru_trim(v);
        bool stopping = v->stopping; /* a run cut short by image_verifier_free notifies nobody */
        pthread_mutex_unlock(&v->mu);
        for (size_t i = 0; i < n; i++) {
            if (v->on_done && !stopping)
                v->on_done(v->ctx, waiters[i]);
            free(waiters[i]);
        }
        pthread_mutex_lock(&v->mu);
    }
    pthread_mutex_unlock(&v->mu);
    return NULL;
}

int image_verifier_new(image_verifier **out, net_loop *net, void (*on_done)(void *ctx, const char *key), void *ctx)
{
    image_verifier *v = NULL;
    *out = NULL;
    if (!net)
        return mb_error_set(MB_EINVAL, "the image verifier needs a transfer loop");
    if (!(v = calloc(1, sizeof(*v))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    v->net = net;
    v->on_done = on_done;
    v->ctx = ctx;
    v->now_ms = real_now;
    v->queue_tail = &v->queue;
    v->capacity = IMAGE_VERIFY_CACHE_MAX;
    atomic_init(&v->runs, 0);
    pthread_mutex_init(&v->mu, NULL);
    pthread_cond_init(&v->cond, NULL);
    registry_cancel_init(&v->cancel);
    if (pthread_create(&v->thread, NULL, verifier_main, v) != 0) {
        image_verifier_free(v);
        return mb_error_set(MB_ERROR, "cannot start the image verifier's thread");
    }
    v->started = true;
    *out = v;
    return 0;
}

void image_verifier_free(image_verifier *v)
{
    if (!v)
        return;
    pthread_mutex_lock(&v->mu);
    v->stopping = true;
    pthread_cond_broadcast(&v->cond);
    pthread_mutex_unlock(&v->mu);
    registry_cancel_fire(&v->cancel);
    if (v->started)
        pthread_join(v->thread, NULL);
    for (entry *e = v->lru, *next; e; e = next) {
        next = e->next;
        entry_free(e);
    }
    registry_cancel_destroy(&v->cancel);
    pthread_mutex_destroy(&v->mu);
    pthread_cond_destroy(&v->cond);
    free(v);
}

void image_verifier_set_clock(image_verifier *v, long long (*now_ms)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&v->mu);
    v->now_ms = now_ms ? now_ms : real_now;
    v->now_ctx = now_ms ? ctx : NULL;
    pthread_mutex_unlock(&v->mu);
}

void image_verifier_set_capacity(image_verifier *v, size_t max)
{
    pthread_mutex_lock(&v->mu);
    v->capacity = max ? max : 1;
    lru_trim(v);
    pthread_mutex_unlock(&v->mu);
}

unsigned long image_verifier_runs(const image_verifier *v)
{
    return v ? atomic_load(&v->runs) : 0;
}

/* The entry of cache key id, or NULL; under mu. */
static entry *find(const image_verifier *v, const unsigned char id[32])
{
    entry *e = v->lru;
    while (e && memcmp(e->id, id, 32) != 0)
        e = e->next;
    return e;
}

/* A result that is no longer good: REFUSED past its TTL, UNREACHABLE past the retry interval. */
static bool stale(const image_verifier *v, const entry *e)
{
    long long age = v->now_ms(v->now_ctx) - e->done_ms;
    if (e->result.state == IMAGE_VERIFY_REFUSED)
        return age >= IMAGE_VERIFY_REFUSED_TTL_MS;
    if (e->result.state == IMAGE_VERIFY_UNREACHABLE)
        return age >= IMAGE_VERIFY_RETRY_MS;
    return false;
}

int image_verifier_get(image_verify_result *out, image_verifier *v, const image_verify_input *in, const char *key)
{
    unsigned char id[32];
    image_key *k = NULL;
    char kerr[IMAGE_SIG_ERROR_MAX];
    entry *e = NULL;
    int err = 0;

    if (!out || !v || !in || !in->repository || !in->digest || (!in->public_key_pem && in->public_key_len) ||
        (in->n_attestations && !in->attestations))
        return mb_error_set(MB_EINVAL, "image_verifier_get needs a result, a verifier and a whole input");
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < in->n_attestations; i++)
        if (!in->attestations[i])
            return mb_error_set(MB_EINVAL, "image_verifier_get: attestation %zu is NULL", i);
    if ((err = cache_key(id, in)) < 0)
        return err;
    pthread_mutex_lock(&v->mu);
    e = find(v, id);
    if (e && (e->pending || !stale(v, e))) {
        lru_unlink(v, e);
        lru_front(v, e);
        if (e->pending) {
            err = waiter_add(e, key);
            out->state = IMAGE_VERIFY_PENDING;
        } else {
            *out = e->result;
        }
        pthread_mutex_unlock(&v->mu);
        return err;
    }
    pthread_mutex_unlock(&v->mu);

    /* a new run: a key that cannot be read is answered at once */
    if ((err = image_input_key(&k, in, kerr)) < 0) {
        if (err == MB_ENOMEM)
            return err;
        out->state = IMAGE_VERIFY_REFUSED;
        snprintf(out->message, sizeof(out->message),
                 "image %s cannot be verified: the public key of spec.image.verify.publicKeySecretRef: %s", in->digest,
                 kerr);
        return 0;
    }
    image_key_free(k);

    pthread_mutex_lock(&v->mu);
    e = find(v, id);
    if (e && e->pending) { /* another caller queued it meanwhile */
        err = waiter_add(e, key);
        out->state = IMAGE_VERIFY_PENDING;
        pthread_mutex_unlock(&v->mu);
        return err;
    }
    if (!e) {
        if (!(e = calloc(1, sizeof(*e)))) {
            pthread_mutex_unlock(&v->mu);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
        memcpy(e->id, id, sizeof(id));
        lru_front(v, e);
    } else {
        lru_unlink(v, e);
        lru_front(v, e);
    }
    if ((err = input_copy(e, in)) < 0 || (err = waiter_add(e, key)) < 0) {
        input_free(e);
        lru_unlink(v, e);
        entry_free(e);
        pthread_mutex_unlock(&v->mu);
        return err;
    }
    enqueue(v, e);
    lru_trim(v);
    out->state = IMAGE_VERIFY_PENDING;
    pthread_mutex_unlock(&v->mu);
    return 0;
}

/*
 * The workqueue: one record per key (a uthash table) carrying client-go's
 * three sets as flags — dirty (needs processing), processing (held by a
 * worker) and waiting (in the delay heap) — with the invariant that a key is
 * in the ready FIFO exactly when it is dirty and not processing. Delayed
 * keys sit in a binary min-heap on (deadline, arrival); a timer thread
 * sleeps on a CLOCK_MONOTONIC condition variable until the earliest
 * deadline, or until an earlier one arrives, and moves due keys to the FIFO.
 * One mutex guards everything; every operation is O(1) or O(log n).
 */
#include "runtime/workqueue.h"
#include "util/clock.h"
#include "util/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
/* uthash reports a failed allocation by leaving the item's table pointer NULL (instead of exiting). */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#define NOT_WAITING SIZE_MAX
#define NS_PER_MS 1000000LL
#define NS_PER_SEC 1000000000LL

typedef struct wq_item {
    UT_hash_handle hh;
    struct wq_item *next; /* ready FIFO */
    int64_t ready_at;     /* deadline (monotonic ns) while waiting */
    uint64_t seq;         /* arrival order among equal deadlines */
    size_t heap_pos;      /* index in the heap, or NOT_WAITING */
    bool dirty;
    bool processing;
    char key[];
} wq_item;

struct workqueue {
    pthread_mutex_t mu;
    pthread_cond_t ready_cond; /* getters: a key became ready, or shutdown */
    pthread_cond_t timer_cond; /* timer thread: a new earliest deadline, or shutdown */
    pthread_cond_t idle_cond;  /* drain: the last key in flight was done */
    pthread_t timer;
    bool shutting_down;

    wq_item *items; /* every key that is dirty, processing or waiting */
    wq_item *head, *tail;
    size_t len;       /* keys in the FIFO */
    size_t in_flight; /* keys processing */

    wq_item **heap;
    size_t heap_len, heap_cap;
    uint64_t seq;

    ratelimit *rl;
};

static struct timespec to_timespec(int64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / NS_PER_SEC), .tv_nsec = (long)(ns % NS_PER_SEC)};
    return ts;
}

/* now + delay, saturating instead of overflowing. */
static int64_t deadline_after(int64_t now, int64_t delay_ns)
{
    return delay_ns > INT64_MAX - now ? INT64_MAX : now + delay_ns;
}

static int64_t ms_to_ns(int64_t ms)
{
    return ms > INT64_MAX / NS_PER_MS ? INT64_MAX : ms * NS_PER_MS;
}

/* ---- heap of waiting keys ---- */

static bool heap_less(const wq_item *a, const wq_item *b)
{
    return a->ready_at < b->ready_at || (a->ready_at == b->ready_at && a->seq < b->seq);
}

static void heap_place(workqueue *wq, size_t i, wq_item *it)
{
    wq->heap[i] = it;
    it->heap_pos = i;
}

static void heap_up(workqueue *wq, size_t i)
{
    wq_item *it = wq->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(it, wq->heap[parent]))
            break;
        heap_place(wq, i, wq->heap[parent]);
        i = parent;
    }
    heap_place(wq, i, it);
}

static void heap_down(workqueue *wq, size_t i)
{
    wq_item *it = wq->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= wq->heap_len)
            break;
        if (child + 1 < wq->heap_len && heap_less(wq->heap[child + 1], wq->heap[child]))
            child++;
        if (!heap_less(wq->heap[child], it))
            break;
        heap_place(wq, i, wq->heap[child]);
        i = child;
    }
    heap_place(wq, i, it);
}

static int heap_push(workqueue *wq, wq_item *it)
{
    if (wq->heap_len == wq->heap_cap) {
        size_t cap = wq->heap_cap ? wq->heap_cap * 2 : 64;
        wq_item **h = realloc(wq->heap, cap * sizeof(*h));
        if (!h)
            return mb_error_set(MB_ENOMEM, "out of memory delaying workqueue key %s", it->key);
        wq->heap = h;
        wq->heap_cap = cap;
    }
    wq->heap[wq->heap_len] = it;
    it->heap_pos = wq->heap_len++;
    heap_up(wq, it->heap_pos);
    return 0;
}

static wq_item *heap_pop(workqueue *wq)
{
    wq_item *top = wq->heap[0];
    wq->heap_len--;
    if (wq->heap_len > 0) {
        heap_place(wq, 0, wq->heap[wq->heap_len]);
        heap_down(wq, 0);
    }
    top->heap_pos = NOT_WAITING;
    return top;
}

/* ---- key records ---- */

static wq_item *item_find(workqueue *wq, const char *key)
{
    wq_item *it = NULL;
    HASH_FIND(hh, wq->items, key, strlen(key), it);
    return it;
}

static int item_get_or_create(wq_item **out, workqueue *wq, const char *key)
{
    size_t len = strlen(key);
    wq_item *it = NULL;

    HASH_FIND(hh, wq->items, key, len, it);
    if (!it) {
        if (!(it = calloc(1, sizeof(*it) + len + 1)))
            return mb_error_set(MB_ENOMEM, "out of memory adding workqueue key %s", key);
        memcpy(it->key, key, len + 1);
        it->heap_pos = NOT_WAITING;
        HASH_ADD_KEYPTR(hh, wq->items, it->key, len, it);
        if (!it->hh.tbl) {
            free(it);
            return mb_error_set(MB_ENOMEM, "out of memory adding workqueue key %s", key);
        }
    }
    *out = it;
    return 0;
}

/* Frees the record once the key is in none of the three sets. */
static void item_release_if_idle(workqueue *wq, wq_item *it)
{
    if (it->dirty || it->processing || it->heap_pos != NOT_WAITING)
        return;
    HASH_DEL(wq->items, it);
    free(it);
}

static void fifo_push(workqueue *wq, wq_item *it)
{
    it->next = NULL;
    if (wq->tail)
        wq->tail->next = it;
    else
        wq->head = it;
    wq->tail = it;
    wq->len++;
    pthread_cond_signal(&wq->ready_cond);
}

static wq_item *fifo_pop(workqueue *wq)
{
    wq_item *it = wq->head;
    wq->head = it->next;
    if (!wq->head)
        wq->tail = NULL;
    it->next = NULL;
    wq->len--;
    return it;
}

/* client-go's Add on an existing record. */
static void item_mark_dirty(workqueue *wq, wq_item *it)
{
    if (it->dirty)
        return;
    it->dirty = true;
    if (!it->processing)
        fifo_push(wq, it);
}

static int check_key(const char *key)
{
    if (!key || !*key)
        return mb_error_set(MB_EINVAL, "a workqueue key must be a non-empty \"namespace/name\"");
    return 0;
}

static int add_locked(workqueue *wq, const char *key)
{
    wq_item *it = NULL;
    int err = 0;

    if ((err = item_get_or_create(&it, wq, key)) < 0)
        return err;
    item_mark_dirty(wq, it);
    return 0;
}

static int add_at_locked(workqueue *wq, const char *key, int64_t deadline)
{
    wq_item *it = NULL;
    int err = 0;

    if ((err = item_get_or_create(&it, wq, key)) < 0)
        return err;
    if (it->heap_pos != NOT_WAITING) {
        if (deadline >= it->ready_at)
            return 0;
        it->ready_at = deadline;
        heap_up(wq, it->heap_pos);
    } else {
        it->ready_at = deadline;
        it->seq = wq->seq++;
        if ((err = heap_push(wq, it)) < 0) {
            item_release_if_idle(wq, it);
            return err;
        }
    }
    if (wq->heap[0] == it)
        pthread_cond_signal(&wq->timer_cond);
    return 0;
}

/* ---- the timer thread ---- */

static void *timer_main(void *arg)
{
    workqueue *wq = arg;

    pthread_mutex_lock(&wq->mu);
    while (!wq->shutting_down) {
        int64_t now = mb_monotonic_ns();
        while (wq->heap_len > 0 && wq->heap[0]->ready_at <= now) {
            wq_item *it = heap_pop(wq);
            item_mark_dirty(wq, it);
            item_release_if_idle(wq, it);
        }
        if (wq->heap_len == 0) {
            pthread_cond_wait(&wq->timer_cond, &wq->mu);
        } else {
            struct timespec ts = to_timespec(wq->heap[0]->ready_at);
            pthread_cond_timedwait(&wq->timer_cond, &wq->mu, &ts);
        }
    }
    pthread_mutex_unlock(&wq->mu);
    return NULL;
}

/* ---- public ---- */

static int cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t attr;
    int rc;

    if ((rc = pthread_condattr_init(&attr)) != 0)
        return rc;
    if ((rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)) == 0)
        rc = pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}

int workqueue_new(workqueue **out, const ratelimit_options *opts)
{
    workqueue *wq = NULL;
    int made = 0; /* of mu, ready_cond, timer_cond, idle_cond, in that order */
    int err = 0;

    *out = NULL;
    if (!(wq = calloc(1, sizeof(*wq)))) {
        err = mb_error_set(MB_ENOMEM, "out of memory creating a workqueue");
        goto done;
    }
    if ((err = ratelimit_new(&wq->rl, opts)) < 0)
        goto done;
    if (pthread_mutex_init(&wq->mu, NULL) == 0)
        made++;
    if (made == 1 && cond_init_monotonic(&wq->ready_cond) == 0)
        made++;
    if (made == 2 && cond_init_monotonic(&wq->timer_cond) == 0)
        made++;
    if (made == 3 && cond_init_monotonic(&wq->idle_cond) == 0)
        made++;
    if (made < 4) {
        err = mb_error_set(MB_ERROR, "cannot create the workqueue's lock and monotonic-clock "
                                     "condition variables");
        goto done;
    }
    if (pthread_create(&wq->timer, NULL, timer_main, wq) != 0) {
        err = mb_error_set(MB_ERROR, "cannot start the workqueue's timer thread; "
                                     "check the process thread limit (ulimit -u)");
        goto done;
    }
    *out = wq;
    wq = NULL;

done:
    if (wq) {
        if (made > 3)
            pthread_cond_destroy(&wq->idle_cond);
        if (made > 2)
            pthread_cond_destroy(&wq->timer_cond);
        if (made > 1)
            pthread_cond_destroy(&wq->ready_cond);
        if (made > 0)
            pthread_mutex_destroy(&wq->mu);
        ratelimit_free(wq->rl);
        free(wq);
    }
    return err;
}

static void shutdown_locked(workqueue *wq)
{
    wq_item *it, *tmp;

    if (wq->shutting_down)
        return;
    wq->shutting_down = true;
    /* Drop what is queued or waiting; keep the records of keys in flight until their done. */
    for (size_t i = 0; i < wq->heap_len; i++)
        wq->heap[i]->heap_pos = NOT_WAITING;
    wq->heap_len = 0;
    wq->head = wq->tail = NULL;
    wq->len = 0;
    HASH_ITER(hh, wq->items, it, tmp) {
        it->dirty = false;
        it->next = NULL;
        item_release_if_idle(wq, it);
    }
    pthread_cond_broadcast(&wq->ready_cond);
    pthread_cond_broadcast(&wq->timer_cond);
    if (wq->in_flight == 0)
        pthread_cond_broadcast(&wq->idle_cond);
}

void workqueue_free(workqueue *wq)
{
    wq_item *it, *tmp;

    if (!wq)
        return;
    pthread_mutex_lock(&wq->mu);
    shutdown_locked(wq);
    pthread_mutex_unlock(&wq->mu);
    pthread_join(wq->timer, NULL);

    HASH_ITER(hh, wq->items, it, tmp) {
        HASH_DEL(wq->items, it);
        free(it);
    }
    free(wq->heap);
    ratelimit_free(wq->rl);
    pthread_cond_destroy(&wq->idle_cond);
    pthread_cond_destroy(&wq->timer_cond);
    pthread_cond_destroy(&wq->ready_cond);
    pthread_mutex_destroy(&wq->mu);
    free(wq);
}

int workqueue_add(workqueue *wq, const char *key)
{
    int err = 0;

    if ((err = check_key(key)) < 0)
        return err;
    pthread_mutex_lock(&wq->mu);
    if (!wq->shutting_down)
        err = add_locked(wq, key);
    pthread_mutex_unlock(&wq->mu);
    return err;
}

int workqueue_add_after(workqueue *wq, const char *key, int64_t delay_ms)
{
    int err = 0;

    if ((err = check_key(key)) < 0)
        return err;
    pthread_mutex_lock(&wq->mu);
    if (wq->shutting_down)
        goto done;
    if (delay_ms <= 0)
        err = add_locked(wq, key);
    else
        err = add_at_locked(wq, key, deadline_after(mb_monotonic_ns(), ms_to_ns(delay_ms)));

done:
    pthread_mutex_unlock(&wq->mu);
    return err;
}

int workqueue_add_rate_limited(workqueue *wq, const char *key)
{
    int64_t now, delay = 0;
    int err = 0;

    if ((err = check_key(key)) < 0)
        return err;
    pthread_mutex_lock(&wq->mu);
    if (wq->shutting_down)
        goto done;
    now = mb_monotonic_ns();
    if ((err = ratelimit_when(&delay, wq->rl, key, now)) < 0)
        goto done;
    if (delay <= 0)
        err = add_locked(wq, key);
    else
        err = add_at_locked(wq, key, deadline_after(now, delay));

done:
    pthread_mutex_unlock(&wq->mu);
    return err;
}

void workqueue_forget(workqueue *wq, const char *key)
{
    if (check_key(key) < 0)
        return;
    pthread_mutex_lock(&wq->mu);
    ratelimit_forget(wq->rl, key);
    pthread_mutex_unlock(&wq->mu);
}

int workqueue_num_requeues(workqueue *wq, const char *key)
{
    int n = 0;

    if (check_key(key) < 0)
        return 0;
    pthread_mutex_lock(&wq->mu);
    n = ratelimit_num_requeues(wq->rl, key);
    pthread_mutex_unlock(&wq->mu);
    return n;
}

int workqueue_get(char **out, workqueue *wq)
{
    wq_item *it = NULL;
    char *copy = NULL;
    int err = 0;

    *out = NULL;
    pthread_mutex_lock(&wq->mu);
    while (!wq->head && !wq->shutting_down)
        pthread_cond_wait(&wq->ready_cond, &wq->mu);
    if (wq->shutting_down) {
        err = mb_error_set(MB_ESTOPPED, "the workqueue is shutting down; the worker should return");
        goto done;
    }
    if (!(copy = strdup(wq->head->key))) {
        err = mb_error_set(MB_ENOMEM, "out of memory handing out workqueue key %s", wq->head->key);
        goto done;
    }
    it = fifo_pop(wq);
    it->dirty = false;
    it->processing = true;
    wq->in_flight++;
    *out = copy;
    /* Another key may be ready for another blocked getter. */
    if (wq->head)
        pthread_cond_signal(&wq->ready_cond);

done:
    pthread_mutex_unlock(&wq->mu);
    return err;
}

void workqueue_done(workqueue *wq, const char *key)
{
    wq_item *it = NULL;

    if (check_key(key) < 0)
        return;
    pthread_mutex_lock(&wq->mu);
    if (!(it = item_find(wq, key)) || !it->processing)
        goto done;
    it->processing = false;
    wq->in_flight--;
    if (it->dirty)
        fifo_push(wq, it);
    item_release_if_idle(wq, it);
    if (wq->in_flight == 0 && wq->shutting_down)
        pthread_cond_broadcast(&wq->idle_cond);

done:
    pthread_mutex_unlock(&wq->mu);
}

void workqueue_shutdown(workqueue *wq)
{
    pthread_mutex_lock(&wq->mu);
    shutdown_locked(wq);
    pthread_mutex_unlock(&wq->mu);
}

int workqueue_shutdown_drain(workqueue *wq, int64_t timeout_ms)
{
    struct timespec ts = {0};
    int err = 0;

    pthread_mutex_lock(&wq->mu);
    shutdown_locked(wq);
    if (timeout_ms >= 0)
        ts = to_timespec(deadline_after(mb_monotonic_ns(), ms_to_ns(timeout_ms)));
    while (wq->in_flight > 0) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&wq->idle_cond, &wq->mu);
        } else if (pthread_cond_timedwait(&wq->idle_cond, &wq->mu, &ts) == ETIMEDOUT && wq->in_flight > 0) {
            err = mb_error_set(MB_ETIMEOUT,
                               "%zu workqueue key(s) were still being processed "
                               "when the drain timeout of %lld ms passed",
                               wq->in_flight, (long long)timeout_ms);
            break;
        }
    }
    pthread_mutex_unlock(&wq->mu);
    return err;
}

bool workqueue_shutting_down(workqueue *wq)
{
    bool r;

    pthread_mutex_lock(&wq->mu);
    r = wq->shutting_down;
    pthread_mutex_unlock(&wq->mu);
    return r;
}

size_t workqueue_len(workqueue *wq)
{
    size_t n;

    pthread_mutex_lock(&wq->mu);
    n = wq->len;
    pthread_mutex_unlock(&wq->mu);
    return n;
}

/*
 * The workqueue with real threads: deduplication, one worker per key at a
 * time, keys re-added while held, delayed adds in deadline order, the
 * earlier deadline winning, rate-limited adds, shutdown waking getters,
 * draining, and 10,000 keys. A watchdog shuts the queue down if a test
 * hangs, so a broken queue fails (getters see MB_ESTOPPED) instead of
 * blocking forever. Times are only checked as lower bounds of delays.
 * What the test's threads touch is static, so threads left behind by a
 * failed test never write into a dead stack frame.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "runtime/workqueue.h"
#include "util/clock.h"
#include "util/error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void sleep_us(int us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000L};
    nanosleep(&ts, NULL);
}

/* ---- watchdog ---- */

typedef struct {
    workqueue *wq;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop;
    atomic_bool fired;
} watchdog;

static void *watchdog_main(void *arg)
{
    watchdog *w = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock(&w->mu);
    while (!w->stop)
        if (pthread_cond_timedwait(&w->cond, &w->mu, &until) != 0)
            break;
    if (!w->stop) {
        atomic_store(&w->fired, true);
        workqueue_shutdown(w->wq);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void watchdog_start(watchdog *w, workqueue *wq)
{
    memset(w, 0, sizeof(*w));
    w->wq = wq;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    assert_int_equal(pthread_create(&w->thread, NULL, watchdog_main, w), 0);
}

/* Stops the watchdog; fails the test if it had to fire. */
static void watchdog_stop(watchdog *w)
{
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    assert_false(atomic_load(&w->fired));
}

/* ---- helpers ---- */

static void expect_get(workqueue *wq, const char *key)
{
    char *got = NULL;
    int rc = workqueue_get(&got, wq);
    if (rc != 0)
        fail_msg("waiting for %s: get returned %d (%s)", key, rc, mb_error_last());
    assert_string_equal(got, key);
    free(got);
}

static void expect_get_done(workqueue *wq, const char *key)
{
    expect_get(wq, key);
    workqueue_done(wq, key);
}

typedef struct {
    workqueue *wq;
    char *key;
    int rc;
    atomic_bool returned;
} getter;

static void *getter_main(void *arg)
{
    getter *g = arg;
    g->rc = workqueue_get(&g->key, g->wq);
    atomic_store(&g->returned, true);
    return NULL;
}

/* ---- tests ---- */

static void test_dedupe(void **state)
{
    (void)state;
    workqueue *wq = NULL;
    assert_int_equal(workqueue_new(&wq, NULL), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(workqueue_add(wq, "ns/a"), 0);
    assert_int_equal(workqueue_len(wq), 1);
    assert_int_equal(workqueue_add(wq, "ns/b"), 0);
    assert_int_equal(workqueue_len(wq), 2);
    expect_get(wq, "ns/a");
    expect_get(wq, "ns/b");
    assert_int_equal(workqueue_len(wq), 0);
    workqueue_done(wq, "ns/a");
    workqueue_done(wq, "ns/b");
    assert_int_equal(workqueue_len(wq), 0);
    /* FIFO among distinct keys. */
    assert_int_equal(workqueue_add(wq, "ns/c"), 0);
    assert_int_equal(workqueue_add(wq, "ns/a"), 0);
    assert_int_equal(workqueue_add(wq, "ns/c"), 0);
    expect_get_done(wq, "ns/c");
    expect_get_done(wq, "ns/a");
    assert_int_equal(workqueue_len(wq), 0);
    workqueue_free(wq);
}

static void test_bad_keys(void **state)
{
    (void)state;
    workqueue *wq = NULL;
    assert_int_equal(workqueue_new(&wq, NULL), 0);
    assert_int_equal(workqueue_add(wq, ""), MB_EINVAL);
    assert_int_equal(workqueue_add(wq, NULL), MB_EINVAL);
    assert_int_equal(workqueue_add_after(wq, "", 10), MB_EINVAL);
    assert_int_equal(workqueue_add_rate_limited(wq, NULL), MB_EINVAL);
    workqueue_done(wq, "ns/never-handed-out");
    workqueue_done(wq, NULL);
    assert_int_equal(workqueue_len(wq), 0);
    workqueue_free(wq);
    workqueue_free(NULL);
}

static void test_added_while_processing_comes_back_once(void **state)
{
    (void)state;
    workqueue *wq = NULL;
    static watchdog w;
    static getter g;
    pthread_t t;

    assert_int_equal(workqueue_new(&wq, NULL), 0);
    watchdog_start(&w, wq);
    assert_int_equal(workqueue_add(wq, "ns/a"), 0);
    expect_get(wq, "ns/a"); /* held by this thread */

    memset(&g, 0, sizeof(g));
    g.wq = wq;
    assert_int_equal(pthread_create(&t, NULL, getter_main, &g), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(workqueue_add(wq, "ns/a"), 0);
    /* Held: not ready, and not handed to the second worker. */
    assert_int_equal(workqueue_len(wq), 0);
    sleep_ms(50);
    assert_false(atomic_load(&g.returned));

    /* Another key overtakes the held one. */
    assert_int_equal(workqueue_add(wq, "ns/b"), 0);
    pthread_join(t, NULL);
    assert_int_equal(g.rc, 0);
    assert_string_equal(g.key, "ns/b");
    workqueue_done(wq, "ns/b");
    free(g.key);

    /* Done: the three adds come back as one. */
    memset(&g, 0, sizeof(g));
    g.wq = wq;
    assert_int_equal(pthread_create(&t, NULL, getter_main, &g), 0);
    workqueue_done(wq, "ns/a");
    pthread_join(t, NULL);
    assert_int_equal(g.rc, 0);
    assert_string_equal(g.key, "ns/a");
    assert_int_equal(workqueue_len(wq), 0);
    workqueue_done(wq, g.key);
    free(g.key);
    assert_int_equal(workqueue_len(wq), 0);

    watchdog_stop(&w);
    workqueue_free(wq);
}

/*
 * NWORKERS workers over fewer keys (NKEYS), counting how many workers hold
 * each key at once: with more workers than keys some are always blocked in
 * get, ready to take a key the moment the queue wrongly offers a held one.
 */
#define NKEYS 4
#define NWORKERS 6
#define REPEATS 40

typedef struct {
    workqueue *wq;
    atomic_int in_progress[NKEYS];
    atomic_int count[NKEYS];
    atomic_int overlaps; /* times a worker got a key another worker held */
    atomic_int total;
    int repeats; /* re-add the key while holding it until it was processed this often; 0: never */
} worker_ctx;

static void *worker_main(void *arg)
{
    worker_ctx *c = arg;
    for (;;) {
        char *key = NULL;
        int idx = -1;
        if (workqueue_get(&key, c->wq) != 0)
            break;
        if (sscanf(key, "ns/k%d", &idx) != 1 || idx < 0 || idx >= NKEYS)
            idx = 0, atomic_fetch_add(&c->overlaps, 1000); /* a key nobody added */
        if (atomic_fetch_add(&c->in_progress[idx], 1) != 0)
            atomic_fetch_add(&c->overlaps, 1);
        int n = atomic_fetch_add(&c->count[idx], 1) + 1;
        if (n < c->repeats)
            workqueue_add(c->wq, key);     /* re-added while this worker holds it */
        sleep_us(n % 4 == 0 ? 1000 : 200); /* hold it long enough for another worker to try */
        atomic_fetch_sub(&c->in_progress[idx], 1);
        atomic_fetch_add(&c->total, 1);
        workqueue_done(c->wq, key);
        free(key);
    }
    return NULL;
}

static void key_name(char *buf, size_t size, int i)
{
    snprintf(buf, size, "ns/k%d", i);
}

static void test_one_worker_per_key_and_readd_while_processing(void **state)
{
    (void)state;
    static worker_ctx c;
    pthread_t workers[NWORKERS];
    static watchdog w;
    char key[32];

    memset(&c, 0, sizeof(c));
    c.repeats = REPEATS;
    assert_int_equal(workqueue_new(&c.wq, NULL), 0);
    watchdog_start(&w, c.wq);
    for (int i = 0; i < NWORKERS; i++)
        assert_int_equal(pthread_create(&workers[i], NULL, worker_main, &c), 0);
    for (int i = 0; i < NKEYS; i++) {
        key_name(key, sizeof(key), i);
        assert_int_equal(workqueue_add(c.wq, key), 0);
    }
    /* Each key is processed exactly REPEATS times: once per add, re-adds while held collapse to one. */
    while (atomic_load(&c.total) < NKEYS * REPEATS && !atomic_load(&w.fired))
        sleep_ms(2);
    int drained = workqueue_shutdown_drain(c.wq, 30000);
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(workers[i], NULL);
    watchdog_stop(&w);

    assert_int_equal(atomic_load(&c.overlaps), 0);
    assert_int_equal(drained, 0);
    for (int i = 0; i < NKEYS; i++)
        assert_int_equal(atomic_load(&c.count[i]), REPEATS);
    assert_int_equal(atomic_load(&c.total), NKEYS * REPEATS);
    workqueue_free(c.wq);
}

typedef struct {
    workqueue *wq;
    int rounds;
} adder_ctx;

static void *adder_main(void *arg)
{
    adder_ctx *a = arg;
    char key[32];
    for (int r = 0; r < a->rounds; r++) {
        for (int i = 0; i < NKEYS; i++) {
            key_name(key, sizeof(key), (i + r) % NKEYS);
            workqueue_add(a->wq, key);
        }
        if (r % 50 == 0)
            sleep_ms(1);
    }
    return NULL;
}

static void test_concurrent_adders_never_overlap(void **state)
{
    (void)state;
    static worker_ctx c;
    pthread_t workers[NWORKERS], adders[2];
    static adder_ctx a;
    static watchdog w;

    memset(&c, 0, sizeof(c));
    assert_int_equal(workqueue_new(&c.wq, NULL), 0);
    a.wq = c.wq;
    a.rounds = 1000;
    watchdog_start(&w, c.wq);
    for (int i = 0; i < NWORKERS; i++)
        assert_int_equal(pthread_create(&workers[i], NULL, worker_main, &c), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&adders[i], NULL, adder_main, &a), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(adders[i], NULL);
    while (workqueue_len(c.wq) > 0 && !atomic_load(&w.fired))
        sleep_ms(2);
    int drained = workqueue_shutdown_drain(c.wq, 30000);
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(workers[i], NULL);
    watchdog_stop(&w);

    assert_int_equal(atomic_load(&c.overlaps), 0);
    assert_int_equal(drained, 0);
    int total = 0;
    for (int i = 0; i < NKEYS; i++) {
        assert_true(atomic_load(&c.count[i]) >= 1);
        total += atomic_load(&c.count[i]);
    }
    /* Deduplication: far fewer runs than the 2 x 1000 x NKEYS adds. */
    assert_true(total < 2 * 1000 * NKEYS);
    print_message("concurrent adders: %d adds became %d runs\n", 2 * 1000 * NKEYS, total);
    workqueue_free(c.wq);
}

static void test_add_after_in_deadline_order(void **state)
{
    (void)state;
    workqueue *wq = NULL;
    static watchdog w;
    char *got = NULL;

    assert_int_equal(workqueue_new(&wq, NULL), 0);
    watchdog_start(&w, wq);
    int64_t t0 = mb_monotonic_ns();
    assert_int_equal(workqueue_add_after(wq, "ns/c", 90), 0);
    assert_int_equal(workqueue_add_after(wq, "ns/a", 30), 0);
    assert_int_equal(workqueue_add_after(wq, "ns/b", 60), 0);
    assert_int_equal(workqueue_add_after(wq, "ns/now", 0), 0);
    assert_int_equal(workqueue_add(wq, "ns/d"), 0);
    expect_get_done(wq, "ns/now");
    expect_get_done(wq, "ns/d");

    static const struct {
        const char *key;
        int ms;
    } order[] = {{"ns/a", 30}, {"ns/b", 60}, {"ns/c", 90}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(workqueue_get(&got, wq), 0);
        int64_t elapsed_ms = (mb_monotonic_ns() - t0) / 1000000;
        assert_string_equal(got, order[i].key);
        assert_true(elapsed_ms >= order[i].ms); /* not before its delay */
        workqueue_done(wq, got);
        free(got);
    }
    assert_int_equal(workqueue_len(wq), 0);
    watchdog_stop(&w);
    workqueue_free(wq);
}

static void test_add_after_earlier_deadline_wins(void **state)
{
    (void)state;
    workqueue *wq = NULL;
    static watchdog w;

    assert_int_equal(workqueue_new(&wq, NULL), 0);
    watchdog_start(&w, wq);
    /* A shorter delay moves the key forward... */
    assert_int_equal(workqueue_add_after(wq, "ns/a", 60000), 0);
    assert_int_equal(workqueue_add_after(wq, "ns/b", 150), 0);
    assert_int_equal(workqueue_add_after(wq, "ns/a", 20), 0);
    expect_get_done(wq, "ns/a");
    expect_get_done(wq, "ns/b");
    /* ...a longer one does not push it back. */
    assert_int_equal(workqueue_add_after(wq, "ns/c", 20), 0);
    assert_int_equal(workqueue_add_after(wq, "ns/c", 60000), 0);
    assert_int_equal(workqueue_add_after(wq, "ns/d", 150), 0);
    expect_get_done(wq, "ns/c");
    expect_get_done(wq, "ns/d");
    watchdog_stop(&w);
    workqueue_free(wq);
}

static void test_add_after_while_queued_and_held(void **state)
{
    (void)state;
    workqueue *wq = NULL;
    static watchdog w;

    assert_int_equal(workqueue_new(&wq, NULL), 0);
    watchdog_start(&w, wq);
    /* A timed requeue is independent of the key being held now: it comes back after done. */
    assert_int_equal(workqueue_add(wq, "ns/a"), 0);
    expect_get(wq, "ns/a");
    assert_int_equal(workqueue_add_after(wq, "ns/a", 20), 0);
    sleep_ms(60); /* due (or nearly) while held: never ready while held */
    assert_int_equal(workqueue_len(wq), 0);
    workqueue_done(wq, "ns/a");
    expect_get_done(wq, "ns/a");
    assert_int_equal(workqueue_len(wq), 0);
    watchdog_stop(&w);
    workqueue_free(wq);
}

static void test_add_rate_limited(void **state)
{
    (void)state;
    workqueue *wq = NULL;
    static watchdog w;

    assert_int_equal(workqueue_new(&wq, NULL), 0);
    watchdog_start(&w, wq);
    for (int i = 1; i <= 4; i++) {
        int64_t t0 = mb_monotonic_ns();
        assert_int_equal(workqueue_add_rate_limited(wq, "ns/a"), 0);
        expect_get(wq, "ns/a");
        int64_t min_ns = 5000000LL << (i - 1); /* 5, 10, 20, 40 ms */
        assert_true(mb_monotonic_ns() - t0 >= min_ns);
        assert_int_equal(workqueue_num_requeues(wq, "ns/a"), i);
        workqueue_done(wq, "ns/a");
    }
    workqueue_forget(wq, "ns/a");
    assert_int_equal(workqueue_num_requeues(wq, "ns/a"), 0);
    assert_int_equal(workqueue_num_requeues(wq, "ns/other"), 0);
    watchdog_stop(&w);
    workqueue_free(wq);
}

static void test_shutdown_wakes_blocked_getters(void **state)
{
    (void)state;
    workqueue *wq = NULL;
    static getter g[3];
    pthread_t t[3];

    assert_int_equal(workqueue_new(&wq, NULL), 0);
    for (int i = 0; i < 3; i++) {
        memset(&g[i], 0, sizeof(g[i]));
        g[i].wq = wq;
        assert_int_equal(pthread_create(&t[i], NULL, getter_main, &g[i]), 0);
    }
    sleep_ms(50); /* let them block */
    for (int i = 0; i < 3; i++)
        assert_false(atomic_load(&g[i].returned));
    assert_false(workqueue_shutting_down(wq));
    workqueue_shutdown(wq);
    assert_true(workqueue_shutting_down(wq));
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(g[i].rc, MB_ESTOPPED);
        assert_null(g[i].key);
    }
    /* Later adds are ignored and later gets return at once. */
    assert_int_equal(workqueue_add(wq, "ns/a"), 0);
    assert_int_equal(workqueue_add_after(wq, "ns/b", 1), 0);
    assert_int_equal(workqueue_add_rate_limited(wq, "ns/c"), 0);
    assert_int_equal(workqueue_len(wq), 0);
    char *got = NULL;
    assert_int_equal(workqueue_get(&got, wq), MB_ESTOPPED);
    assert_null(got);
    workqueue_shutdown(wq); /* idempotent */
    workqueue_free(wq);
}

static void test_shutdown_drops_queued_and_delayed(void **state)
{
    (void)state;
    workqueue *wq = NULL;
    char *got = NULL;

    assert_int_equal(workqueue_new(&wq, NULL), 0);
    assert_int_equal(workqueue_add(wq, "ns/a"), 0);
    assert_int_equal(workqueue_add(wq, "ns/b"), 0);
    assert_int_equal(workqueue_add_after(wq, "ns/c", 10), 0);
    assert_int_equal(workqueue_add_after(wq, "ns/d", 60000), 0);
    assert_int_equal(workqueue_len(wq), 2);
    workqueue_shutdown(wq);
    assert_int_equal(workqueue_len(wq), 0);
    sleep_ms(30); /* past ns/c's deadline: nothing comes back */
    assert_int_equal(workqueue_len(wq), 0);
    assert_int_equal(workqueue_get(&got, wq), MB_ESTOPPED);
    workqueue_free(wq);
}

typedef struct {
    workqueue *wq;
    atomic_int got;      /* 1 once the worker holds a key */
    atomic_int finished; /* 1 once it finished processing, just before done */
    atomic_int runs;
} slow_worker;

static void *slow_worker_main(void *arg)
{
    slow_worker *s = arg;
    char *key = NULL;
    while (workqueue_get(&key, s->wq) == 0) {
        atomic_fetch_add(&s->runs, 1);
        atomic_store(&s->got, 1);
        sleep_ms(100);
        workqueue_add(s->wq, key); /* added during the drain: ignored */
        atomic_store(&s->finished, 1);
        workqueue_done(s->wq, key);
        free(key);
    }
    return NULL;
}

static void test_drain_waits_for_in_flight(void **state)
{
    (void)state;
    static slow_worker s;
    pthread_t t;
    static watchdog w;

    assert_int_equal(workqueue_new(&s.wq, NULL), 0);
    watchdog_start(&w, s.wq);
    assert_int_equal(workqueue_add(s.wq, "ns/a"), 0);
    assert_int_equal(workqueue_add(s.wq, "ns/b"), 0);
    assert_int_equal(pthread_create(&t, NULL, slow_worker_main, &s), 0);
    while (!atomic_load(&s.got) && !atomic_load(&w.fired))
        sleep_ms(1);
    assert_int_equal(workqueue_shutdown_drain(s.wq, -1), 0);
    /* Returned only after the key in flight was done. */
    assert_int_equal(atomic_load(&s.finished), 1);
    pthread_join(t, NULL);
    watchdog_stop(&w);
    /* ns/b was still queued: dropped, so one run in all. */
    assert_int_equal(atomic_load(&s.runs), 1);
    assert_int_equal(workqueue_len(s.wq), 0);
    workqueue_free(s.wq);
}

static void test_drain_timeout(void **state)
{
    (void)state;
    workqueue *wq = NULL;

    assert_int_equal(workqueue_new(&wq, NULL), 0);
    assert_int_equal(workqueue_add(wq, "ns/a"), 0);
    expect_get(wq, "ns/a"); /* held by this thread, so the drain cannot finish */
    int64_t t0 = mb_monotonic_ns();
    assert_int_equal(workqueue_shutdown_drain(wq, 50), MB_ETIMEOUT);
    assert_true(mb_monotonic_ns() - t0 >= 50 * 1000000LL);
    assert_non_null(strstr(mb_error_last(), "still being processed"));
    workqueue_done(wq, "ns/a");
    assert_int_equal(workqueue_shutdown_drain(wq, 50), 0);
    assert_int_equal(workqueue_shutdown_drain(wq, -1), 0);
    workqueue_free(wq);
}

#define MANY 10000

static void test_ten_thousand_keys(void **state)
{
    (void)state;
    workqueue *wq = NULL;
    static watchdog w;
    char key[32];
    int64_t *lo = calloc(MANY, sizeof(*lo)), *hi = calloc(MANY, sizeof(*hi));
    unsigned char *seen = calloc(MANY, 1);
    assert_non_null(lo);
    assert_non_null(hi);
    assert_non_null(seen);

    assert_int_equal(workqueue_new(&wq, NULL), 0);
    watchdog_start(&w, wq);
    int64_t t0 = mb_monotonic_ns();
    /* Delayed adds with scattered delays, each key twice (the second, later deadline is ignored). */
    for (int i = 0; i < MANY; i++) {
        int delay = 1 + (int)(((unsigned)i * 7919u) % 300u);
        snprintf(key, sizeof(key), "ns/key-%d", i);
        lo[i] = mb_monotonic_ns() + delay * 1000000LL;
        assert_int_equal(workqueue_add_after(wq, key, delay), 0);
        hi[i] = mb_monotonic_ns() + delay * 1000000LL;
        assert_int_equal(workqueue_add_after(wq, key, delay + 500), 0);
    }
    int64_t t_added = mb_monotonic_ns();
    /* One getter: keys come out in deadline order, each once. */
    int64_t prev_lo = INT64_MIN;
    int prev = -1;
    for (int n = 0; n < MANY; n++) {
        char *got = NULL;
        int i = -1;
        assert_int_equal(workqueue_get(&got, wq), 0);
        assert_int_equal(sscanf(got, "ns/key-%d", &i), 1);
        assert_true(i >= 0 && i < MANY);
        assert_false(seen[i]);
        seen[i] = 1;
        /* Deadline of prev <= deadline of i, with each deadline known within [lo, hi]. */
        if (prev >= 0 && prev_lo > hi[i])
            fail_msg("key %d (deadline >= %lld) came before key %d (deadline <= %lld)", prev, (long long)prev_lo, i,
                     (long long)hi[i]);
        prev = i;
        prev_lo = lo[i];
        workqueue_done(wq, got);
        free(got);
    }
    int64_t t_delayed = mb_monotonic_ns();
    /* Immediate adds, each key added three times, got by the same thread. */
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < MANY; i++) {
            snprintf(key, sizeof(key), "ns/key-%d", i);
            assert_int_equal(workqueue_add(wq, key), 0);
        }
    assert_int_equal(workqueue_len(wq), MANY);
    for (int n = 0; n < MANY; n++) {
        char *got = NULL;
        snprintf(key, sizeof(key), "ns/key-%d", n);
        assert_int_equal(workqueue_get(&got, wq), 0);
        assert_string_equal(got, key); /* FIFO */
        workqueue_done(wq, got);
        free(got);
    }
    assert_int_equal(workqueue_len(wq), 0);
    print_message("10000 keys: 20000 delayed adds in %.1f ms, all out after %.1f ms (delays <= 300 ms); "
                  "30000 adds + 10000 gets in %.1f ms\n",
                  (t_added - t0) / 1e6, (t_delayed - t0) / 1e6, (mb_monotonic_ns() - t_delayed) / 1e6);
    watchdog_stop(&w);
    workqueue_free(wq); /* frees the 10000 ignored later deadlines */
    free(lo);
    free(hi);
    free(seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedupe),
        cmocka_unit_test(test_bad_keys),
        cmocka_unit_test(test_added_while_processing_comes_back_once),
        cmocka_unit_test(test_one_worker_per_key_and_readd_while_processing),
        cmocka_unit_test(test_concurrent_adders_never_overlap),
        cmocka_unit_test(test_add_after_in_deadline_order),
        cmocka_unit_test(test_add_after_earlier_deadline_wins),
        cmocka_unit_test(test_add_after_while_queued_and_held),
        cmocka_unit_test(test_add_rate_limited),
        cmocka_unit_test(test_shutdown_wakes_blocked_getters),
        cmocka_unit_test(test_shutdown_drops_queued_and_delayed),
        cmocka_unit_test(test_drain_waits_for_in_flight),
        cmocka_unit_test(test_drain_timeout),
        cmocka_unit_test(test_ten_thousand_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

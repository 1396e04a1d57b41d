/*
 * The request batch (verify/batch.h) against the loopback replay server: the
 * answers kept per request with the headers every request carries (the
 * X-Request-ID, the token only where asked for, the base URL without its
 * trailing '/'); the done callback called exactly once, on the loop thread
 * after the last request, or by batch_seal itself when every request had
 * already ended; batch_abort and batch_cancel ending what still runs, the
 * abort without any callback.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "replay.h"
#include "verify/batch.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int done_calls;

static void on_done(void *ctx)
{
    __atomic_add_fetch((int *)ctx, 1, __ATOMIC_SEQ_CST);
}

static int calls(void)
{
    return __atomic_load_n(&done_calls, __ATOMIC_SEQ_CST);
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits up to 5 s for cond(); its last value. */
static bool soon(bool (*cond)(void *), void *arg)
{
    for (int i = 0; i < 500 && !cond(arg); i++)
        pause_ms(10);
    return cond(arg);
}

static bool called(void *arg)
{
    (void)arg;
    return calls() > 0;
}

static bool answered(void *arg)
{
    return __atomic_load_n(&((batch_answer *)arg)->done, __ATOMIC_SEQ_CST);
}

static char *url_of(char *buf, size_t len, const char *base, const char *path)
{
    snprintf(buf, len, "%s%s", base, path);
    return buf;
}

static void test_answers_and_done_once(void **state)
{
    (void)state;
    replay *srv = NULL;
    net_loop *loop = NULL;
    batch b;
    batch_answer a = {0}, n = {0};
    char base[128], ua[160], un[160];

    done_calls = 0;
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_route(srv, "GET", "/a", &(replay_reply){.status = 200, .body = "{\"a\":1}", .delay_ms = 200});
    replay_route(srv, "GET", "/n", &(replay_reply){.status = 404});
    assert_int_equal(net_loop_new(&loop, NULL), 0);
    snprintf(base, sizeof(base), "%s//", replay_url(srv));
    assert_int_equal(batch_init(&b, base, "batch-token-1234", "rel-7", 2000), 0);
    assert_string_equal(b.base, replay_url(srv));
    assert_int_equal(batch_start(&b, loop,
                                 &(batch_request){.kind = "check",
                                                  .check = "datasets",
                                                  .method = "GET",
                                                  .url = url_of(ua, sizeof(ua), b.base, "/a"),
                                                  .auth = true,
                                                  .max_bytes = 1024},
                                 &a),
                     0);
    assert_int_equal(batch_start(&b, loop,
                                 &(batch_request){.kind = "check",
                                                  .check = "health",
                                                  .method = "GET",
                                                  .url = url_of(un, sizeof(un), b.base, "/n"),
                                                  .max_bytes = 1024},
                                 &n),
                     0);
    batch_seal(&b, on_done, &done_calls);
    batch_wait(&b);
    assert_true(batch_finished(&b));
    assert_true(soon(called, NULL));
    net_loop_free(loop); /* every callback has returned */
    assert_int_equal(calls(), 1);

    assert_int_equal(a.outcome, NET_DONE);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.resp, "{\"a\":1}");
    assert_int_equal(a.resp_len, 7);
    assert_int_equal(n.status, 404);
    assert_null(n.resp);
    assert_true(replay_wait(srv, 2, 5000));
    for (size_t i = 0; i < 2; i++) {
        const replay_request *q = replay_get(srv, i);
        bool is_a = strcmp(q->target, "/a") == 0;
        assert_string_equal(replay_header(q, "X-Request-ID"), is_a ? "rel-7-datasets" : "rel-7-health");
        assert_string_equal(replay_header(q, "Accept"), "application/json");
        if (is_a)
            assert_string_equal(replay_header(q, "Authorization"), "Bearer batch-token-1234");
        else
            assert_null(replay_header(q, "Authorization"));
    }
    batch_answer_dispose(&a);
    batch_answer_dispose(&n);
    batch_dispose(&b);
    replay_free(srv);
}

/* Every request ended before the seal: the seal calls done itself, once. */
static void test_done_at_seal(void **state)
{
    (void)state;
    net_loop *loop = NULL;
    batch b;
    batch_answer a = {0};

    done_calls = 0;
    assert_int_equal(net_loop_new(&loop, NULL), 0);
    assert_int_equal(batch_init(&b, "http://127.0.0.1:1", NULL, "rel-8", 2000), 0);
    assert_int_equal(batch_start(&b, loop,
                                 &(batch_request){.kind = "check",
                                                  .check = "ready",
                                                  .method = "GET",
                                                  .url = "http://127.0.0.1:1/readyz",
                                                  .max_bytes = 1024},
                                 &a),
                     0);
    assert_true(soon(answered, &a));
    assert_false(batch_finished(&b)); /* held until the seal */
    batch_seal(&b, on_done, &done_calls);
    assert_int_equal(calls(), 1);
    assert_true(batch_finished(&b));
    assert_int_not_equal(a.outcome, NET_DONE);
    assert_non_null(a.error);
    net_loop_free(loop);
    assert_int_equal(calls(), 1);
    batch_answer_dispose(&a);
    batch_dispose(&b);
}

/* A batch of one request that the replay server answers only after 5 s, once the server has it. */
typedef struct {
    replay *srv;
    net_loop *loop;
    batch b;
    batch_answer a;
    char url[160];
} slow_run;

static void slow_start(slow_run *r)
{
    memset(r, 0, sizeof(*r));
    done_calls = 0;
    assert_int_equal(replay_start(&r->srv, NULL), 0);
    replay_route(r->srv, "GET", "/slow", &(replay_reply){.status = 200, .body = "{}", .delay_ms = 5000});
    assert_int_equal(net_loop_new(&r->loop, NULL), 0);
    assert_int_equal(batch_init(&r->b, replay_url(r->srv), NULL, "rel-9", 10000), 0);
    assert_int_equal(batch_start(&r->b, r->loop,
                                 &(batch_request){.kind = "check",
                                                  .check = "lineage",
                                                  .method = "GET",
                                                  .url = url_of(r->url, sizeof(r->url), r->b.base, "/slow"),
                                                  .max_bytes = 1024},
                                 &r->a),
                     0);
    assert_true(replay_wait(r->srv, 1, 5000));
}

/* After the batch has finished: the answer was cancelled, and done called `want` times. */
static void slow_end(slow_run *r, int want)
{
    assert_true(batch_finished(&r->b));
    assert_int_equal(r->a.outcome, NET_CANCELLED);
    net_loop_free(r->loop);
    assert_int_equal(calls(), want);
    batch_answer_dispose(&r->a);
    batch_dispose(&r->b);
    replay_free(r->srv);
}

/* A start failed: what was started is cancelled and waited for, and no done is called. */
static void test_abort(void **state)
{
    (void)state;
    slow_run r;
    slow_start(&r);
    batch_abort(&r.b);
    slow_end(&r, 0);
}

/* batch_cancel ends what still runs; done comes once, after it. */
static void test_cancel(void **state)
{
    (void)state;
    slow_run r;
    slow_start(&r);
    batch_seal(&r.b, on_done, &done_calls);
    assert_false(batch_finished(&r.b));
    batch_cancel(&r.b);
    batch_wait(&r.b);
    assert_true(soon(called, NULL));
    slow_end(&r, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_and_done_once),
        cmocka_unit_test(test_done_at_seal),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

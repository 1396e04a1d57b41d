/*
 * Keyed transfers (runtime/keyed_transfer.h) on a real transfer loop against
 * the loopback replay server, with a reconcile loop that is never started so
 * that its queue shows what was enqueued: an ended transfer enqueues its key
 * once and keeps its result and body until its owner lets go, and is freed
 * then; one the owner detaches while it runs is cancelled, enqueues nothing
 * and is freed when its completion comes after the detach, also when many
 * end at the same moment as their detach; the bytes so far show while one
 * runs; one that cannot start leaves nothing behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "net/transfer.h"
#include "replay.h"
#include "runtime/keyed_transfer.h"
#include "runtime/loop.h"
#include "runtime/workqueue.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    replay *srv;
    net_loop *net;
    loop *l;
} fixture;

static int never(reconcile_result *out, void *ctx, const char *key)
{
    (void)out;
    (void)ctx;
    (void)key;
    return 0;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    loop_opts o = {.kind = "Test", .workers = 1, .reconcile = never};
    if (!f || replay_start(&f->srv, NULL) != 0 || net_loop_new(&f->net, NULL) != 0 || loop_new(&f->l, &o) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    net_loop_free(f->net);
    loop_free(f->l);
    replay_free(f->srv);
    free(f);
    return 0;
}

static char *url_of(const fixture *f, const char *path)
{
    char *u = NULL;
    assert_true(asprintf(&u, "%s%s", replay_url(f->srv), path) > 0);
    return u;
}

/* Waits up to ms for cond(f) to hold. */
static bool wait_for(bool (*cond)(fixture *), fixture *f, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        if (cond(f))
            return true;
        usleep(10 * 1000);
    }
    return cond(f);
}

static bool queued(fixture *f)
{
    return workqueue_len(loop_queue(f->l)) > 0;
}

/* The next key of the queue (the caller's to free). */
static char *next_key(fixture *f)
{
    char *key = NULL;
    assert_int_equal(workqueue_get(&key, loop_queue(f->l)), 0);
    workqueue_done(loop_queue(f->l), key);
    return key;
}

static bool none_live(fixture *f)
{
    (void)f;
    return keyed_transfer_live() == 0;
}

/* A GET of path answered with reply, kept in memory, started for key; waits for its key in the queue. */
static keyed_transfer *fetched(fixture *f, const char *path, const replay_reply *reply, const char *key)
{
    keyed_transfer *x = NULL;
    replay_route(f->srv, "GET", path, reply);
    char *url = url_of(f, path);
    net_request req = {.kind = "document", .url = url, .keep_body = true};
    assert_int_equal(keyed_transfer_start(&x, f->net, f->l, key, &req), 0);
    free(url); /* copied by the loop */
    assert_true(wait_for(queued, f, 5000));
    return x;
}

static void test_end_enqueues_the_key_once_and_keeps_the_result(void **state)
{
    fixture *f = *state;
    keyed_result r;
    size_t len = 0;
    keyed_transfer *x = fetched(f, "/doc", &(replay_reply){.status = 200, .body = "{\"ok\":true}"}, "ns/one");
    usleep(50 * 1000);
    assert_int_equal(workqueue_len(loop_queue(f->l)), 1);
    char *key = next_key(f);
    assert_string_equal(key, "ns/one");
    free(key);

    keyed_transfer_poll(&r, x);
    assert_true(r.done);
    assert_int_equal(r.outcome, NET_DONE);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.bytes, 11);
    assert_string_equal(r.error, "");
    /* echo -n '{"ok":true}' | sha256sum */
    assert_string_equal(r.sha256_hex, "4062edaf750fb8074e7e83e0c9028c94e32468a8b6f1614774328ef045150f93");
    /* the callback has let go; the owner still holds it */
    assert_int_equal(keyed_transfer_live(), 1);
    char *body = keyed_transfer_take_body(x, &len);
    assert_non_null(body);
    assert_int_equal(len, 11);
    assert_string_equal(body, "{\"ok\":true}");
    assert_null(keyed_transfer_take_body(x, &len)); /* taken once */
    assert_int_equal(len, 0);
    free(body);
    keyed_transfer_detach(x); /* after the end: freed at once, nothing cancelled or enqueued */
    assert_int_equal(keyed_transfer_live(), 0);
    assert_int_equal(workqueue_len(loop_queue(f->l)), 0);
}

static void test_non_2xx_keeps_no_body(void **state)
{
    fixture *f = *state;
    keyed_result r;
    size_t len = 0;
    keyed_transfer *x = fetched(f, "/missing", &(replay_reply){.status = 404, .body = "not here"}, "ns/missing");
    keyed_transfer_poll(&r, x);
    assert_true(r.done);
    assert_int_equal(r.status, 404);
    assert_null(keyed_transfer_take_body(x, &len));
    keyed_transfer_detach(x);
    assert_int_equal(keyed_transfer_live(), 0);
}

static void test_detach_while_running_cancels_and_enqueues_nothing(void **state)
{
    fixture *f = *state;
    keyed_transfer *x = NULL;
    keyed_result r;
    static const size_t pieces[] = {5, 0};
    /* five bytes, then the stream stays open: it ends only when cancelled */
    replay_route(f->srv, "GET", "/held",
                 &(replay_reply){.status = 200, .body = "hello", .chunked = true, .pieces = pieces, .hold = true});
    char *url = url_of(f, "/held");
    net_request req = {.kind = "artifact", .url = url, .timeout_ms = 60000};
    assert_int_equal(keyed_transfer_start(&x, f->net, f->l, "ns/held", &req), 0);
    for (int i = 0; i < 500; i++) {
        keyed_transfer_poll(&r, x);
        if (r.bytes == 5)
            break;
        usleep(10 * 1000);
    }
    assert_false(r.done);
    assert_int_equal(r.bytes, 5); /* the bytes so far, while it runs */
    assert_int_equal(keyed_transfer_live(), 1);
    keyed_transfer_detach(x);
    /* the completion (cancelled) comes after the detach and frees it; the hold would keep it alive otherwise */
    assert_true(wait_for(none_live, f, 5000));
    usleep(50 * 1000);
    assert_int_equal(workqueue_len(loop_queue(f->l)), 0);
    free(url);
}

#define MANY 32

static void test_ends_racing_their_detach_enqueue_nothing(void **state)
{
    fixture *f = *state;
    keyed_transfer *x[MANY];
    replay_route(f->srv, "GET", "/fast", &(replay_reply){.status = 200, .body = "x"});
    char *url = url_of(f, "/fast");
    net_request req = {.url = url, .keep_body = true};
    for (int i = 0; i < MANY; i++) {
        char key[32];
        snprintf(key, sizeof(key), "ns/race-%d", i);
        assert_int_equal(keyed_transfer_start(&x[i], f->net, f->l, key, &req), 0);
    }
    /* some have ended, some not: each detached at once, none seen */
    for (int i = 0; i < MANY; i++)
        keyed_transfer_detach(x[i]);
    assert_true(wait_for(none_live, f, 10000));
    /* what ended before its detach enqueued its key; nothing after a detach did */
    size_t n = workqueue_len(loop_queue(f->l));
    assert_true(n <= MANY);
    for (size_t i = 0; i < n; i++)
        free(next_key(f));
    free(url);
}

static void test_detach_after_end_and_before_collect(void **state)
{
    fixture *f = *state;
    keyed_transfer *x = fetched(f, "/gone", &(replay_reply){.status = 200, .body = "bytes"}, "ns/gone");
    /* the object went before its reconcile collected: the kept body goes with the transfer */
    keyed_transfer_detach(x);
    assert_int_equal(keyed_transfer_live(), 0);
    char *key = next_key(f);
    assert_string_equal(key, "ns/gone");
    free(key);
}

static void test_start_refused_leaves_nothing(void **state)
{
    fixture *f = *state;
    keyed_transfer *x = (keyed_transfer *)1;
    net_request req = {.url = "ftp://127.0.0.1/file"};
    assert_int_equal(keyed_transfer_start(&x, f->net, f->l, "ns/bad", &req), MB_EINVAL);
    assert_null(x);
    assert_non_null(strstr(mb_error_last(), "ftp://127.0.0.1/file"));
    assert_int_equal(keyed_transfer_live(), 0);
    usleep(50 * 1000);
    assert_int_equal(workqueue_len(loop_queue(f->l)), 0);
    keyed_transfer_detach(NULL); /* accepted */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_end_enqueues_the_key_once_and_keeps_the_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_2xx_keeps_no_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detach_while_running_cancels_and_enqueues_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ends_racing_their_detach_enqueue_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detach_after_end_and_before_collect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_refused_leaves_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

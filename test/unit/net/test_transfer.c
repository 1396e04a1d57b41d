/*
 * The transfer loop against the loopback replay server (HTTP, and HTTPS with
 * a throw-away CA): an answer kept in memory with its status, headers sent
 * and progress; the limits (bytes, a stall, the total timeout); a redirect
 * from https to http refused and one within http followed; an extra CA
 * trusted; the streamed SHA-256 of a large body equal to sha256sum's;
 * cancellation; many transfers at once; the metrics; bad input refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "net/transfer.h"
#include "replay.h"
#include "runtime/metrics_families.h"
#include "testpki.h"
#include "util/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* What one transfer's callbacks saw. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int calls;
    net_outcome outcome;
    long status;
    char *body;
    long long bytes;
    char sha[65];
    char error[NET_ERROR_MAX];
    char ctype[64];
    char challenge[256];
    int progress;
    long long last_progress;
    FILE *sink; /* on_data writes here when set */
} seen;

static void seen_init(seen *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
}

static void seen_clear(seen *s)
{
    free(s->body);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
}

static void on_done(void *ctx, const net_result *r)
{
    seen *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->calls++;
    s->outcome = r->outcome;
    s->status = r->status;
    s->bytes = r->bytes;
    if (r->body)
        s->body = strndup(r->body, r->body_len);
    snprintf(s->sha, sizeof(s->sha), "%s", r->sha256_hex);
    snprintf(s->error, sizeof(s->error), "%s", r->error);
    snprintf(s->ctype, sizeof(s->ctype), "%s", r->content_type ? r->content_type : "");
    snprintf(s->challenge, sizeof(s->challenge), "%s", r->www_authenticate ? r->www_authenticate : "");
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

static void on_progress(void *ctx, long long now, long long total)
{
    seen *s = ctx;
    (void)total;
    s->progress++;
    s->last_progress = now;
}

static int on_data(void *ctx, const void *data, size_t len)
{
    seen *s = ctx;
    return fwrite(data, 1, len, s->sink) == len ? 0 : -1;
}

/* Waits up to ms for the completion callback; true when it came. */
static bool seen_wait(seen *s, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (s->calls == 0 && pthread_cond_timedwait(&s->cond, &s->mu, &until) == 0)
        ;
    bool ok = s->calls > 0;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static char *url_of(const replay *r, const char *path)
{
    char *u = NULL;
    assert_true(asprintf(&u, "%s%s", replay_url(r), path) > 0);
    return u;
}

/* Starts req and waits for its end. */
static void run(net_loop *l, net_request *req, seen *s, int wait_ms)
{
    req->on_done = on_done;
    req->ctx = s;
    if (net_transfer_start(NULL, l, req) < 0)
        fail_msg("net_transfer_start: %s", mb_error_last());
    assert_true(seen_wait(s, wait_ms));
}

static void test_get_keeps_body_and_sends_headers(void **state)
{
    (void)state;
    net_loop *l = NULL;
    replay *srv = NULL;
    seen s;
    const char *hdrs[] = {"X-Request-ID: r1-health", NULL};
    seen_init(&s);
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_route(srv, "GET", "/data",
                 &(replay_reply){.status = 200,
                                 .headers = "Content-Type: application/json\r\n",
                                 .body = "{\"ok\":true}"});
    assert_int_equal(net_loop_new(&l, NULL), 0);
    char *url = url_of(srv, "/data");
    net_request req = {.kind = "check",
                       .url = url,
                       .headers = hdrs,
                       .token = "tok-123456789",
                       .keep_body = true,
                       .on_progress = on_progress};
    run(l, &req, &s, 5000);
    assert_int_equal(s.outcome, NET_DONE);
    assert_int_equal(s.status, 200);
    assert_string_equal(s.body, "{\"ok\":true}");
    assert_string_equal(s.ctype, "application/json");
    assert_string_equal(s.error, "");
    /* echo -n '{"ok":true}' | sha256sum */
    assert_string_equal(s.sha, "4062edaf750fb8074e7e83e0c9028c94e32468a8b6f1614774328ef045150f93");
    assert_true(s.progress >= 1);
    assert_int_equal(s.last_progress, 11);
    const replay_request *q = replay_get(srv, 0);
    assert_non_null(q);
    assert_string_equal(replay_header(q, "X-Request-ID"), "r1-health");
    assert_string_equal(replay_header(q, "Authorization"), "Bearer tok-123456789");
    net_loop_free(l);
    replay_free(srv);
    free(url);
    seen_clear(&s);
}

/* A 401's WWW-Authenticate challenge reaches the completion callback (a registry's token dance starts there). */
static void test_challenge_header(void **state)
{
    (void)state;
    net_loop *l = NULL;
    replay *srv = NULL;
    seen s, t;
    seen_init(&s);
    seen_init(&t);
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_route(srv, "GET", "/v2/",
                 &(replay_reply){.status = 401,
                                 .headers = "WWW-Authenticate: Bearer realm=\"http://a/token\",service=\"reg\"\r\n",
                                 .body = "{}"});
    replay_route(srv, "GET", "/plain", &(replay_reply){.status = 200, .body = "ok"});
    assert_int_equal(net_loop_new(&l, NULL), 0);
    char *url = url_of(srv, "/v2/"), *plain = url_of(srv, "/plain");
    net_request req = {.kind = "registry", .url = url, .keep_body = true};
    run(l, &req, &s, 5000);
    assert_int_equal(s.outcome, NET_DONE);
    assert_int_equal(s.status, 401);
    assert_string_equal(s.challenge, "Bearer realm=\"http://a/token\",service=\"reg\"");
    net_request req2 = {.kind = "registry", .url = plain, .keep_body = true};
    run(l, &req2, &t, 5000);
    assert_int_equal(t.status, 200);
    assert_string_equal(t.challenge, "");
    net_loop_free(l);
    replay_free(srv);
    free(url);
    free(plain);
    seen_clear(&s);
    seen_clear(&t);
}

static void test_post_body(void **state)
{
    (void)state;
    net_loop *l = NULL;
    replay *srv = NULL;
    seen s;
    seen_init(&s);
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_route(srv, "POST", "/ask", &(replay_reply){.status = 201, .body = "made"});
    assert_int_equal(net_loop_new(&l, NULL), 0);
    char *url = url_of(srv, "/ask");
    net_request req = {.url = url, .body = "{\"q\":1}", .body_len = 7, .keep_body = true};
    run(l, &req, &s, 5000);
    assert_int_equal(s.outcome, NET_DONE);
    assert_int_equal(s.status, 201);
    const replay_request *q = replay_get(srv, 0);
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->body, "{\"q\":1}");
    assert_string_equal(replay_header(q, "Content-Type"), "application/json");
    assert_null(replay_header(q, "Authorization"));
    net_loop_free(l);
    replay_free(srv);
    free(url);
    seen_clear(&s);
}

static void test_max_bytes(void **state)
{
    (void)state;
    net_loop *l = NULL;
    replay *srv = NULL;
    seen s, c;
    static const size_t pieces[] = {600, 600, 0};
    char body[1201];
    memset(body, 'x', 1200);
    body[1200] = '\0';
    seen_init(&s);
    seen_init(&c);
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_route(srv, "GET", "/big", &(replay_reply){.status = 200, .body = body});
    replay_route(srv, "GET", "/chunked",
                 &(replay_reply){.status = 200, .body = body, .chunked = true, .pieces = pieces});
    assert_int_equal(net_loop_new(&l, NULL), 0);
    char *url = url_of(srv, "/big"), *url2 = url_of(srv, "/chunked");
    net_request req = {.url = url, .max_bytes = 1000, .keep_body = true};
    run(l, &req, &s, 5000);
    assert_int_equal(s.outcome, NET_TOO_BIG);
    assert_non_null(strstr(s.error, "more than 1000 bytes"));
    /* without a Content-Length the limit is met while the body arrives */
    net_request req2 = {.url = url2, .max_bytes = 1000, .keep_body = true};
    run(l, &req2, &c, 5000);
    assert_int_equal(c.outcome, NET_TOO_BIG);
    assert_true(c.bytes <= 1000);
    net_loop_free(l);
    replay_free(srv);
    free(url);
    free(url2);
    seen_clear(&s);
    seen_clear(&c);
}

static void test_stalled_and_timeout(void **state)
{
    (void)state;
    net_loop *l = NULL;
    replay *srv = NULL;
    seen s, t;
    static const size_t pieces[] = {2, 2, 0};
    seen_init(&s);
    seen_init(&t);
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_route(srv, "GET", "/stall",
                 &(replay_reply){.status = 200, .body = "abcd", .chunked = true, .pieces = pieces, .pause_ms = 4000});
    replay_route(srv, "GET", "/slow", &(replay_reply){.status = 200, .body = "late", .delay_ms = 3000});
    assert_int_equal(net_loop_new(&l, NULL), 0);
    char *u1 = url_of(srv, "/stall"), *u2 = url_of(srv, "/slow");
    net_request r1 = {.url = u1, .stall_seconds = 1, .timeout_ms = 20000};
    net_request r2 = {.url = u2, .timeout_ms = 500};
    run(l, &r1, &s, 10000);
    run(l, &r2, &t, 10000);
    assert_int_equal(s.outcome, NET_STALLED);
    assert_non_null(strstr(s.error, "stalled"));
    assert_int_equal(t.outcome, NET_TIMEOUT);
    assert_non_null(strstr(t.error, "did not finish in time"));
    net_loop_free(l);
    replay_free(srv);
    free(u1);
    free(u2);
    seen_clear(&s);
    seen_clear(&t);
}

static void test_https_extra_ca_and_redirects(void **state)
{
    (void)state;
    testpki pki;
    net_loop *l = NULL;
    replay *tls = NULL, *plain = NULL;
    seen ok, unknown, down, within;
    char hdr[256];
    seen_init(&ok);
    seen_init(&unknown);
    seen_init(&down);
    seen_init(&within);
    assert_int_equal(testpki_make(&pki, "IP:127.0.0.1"), 0);
    replay_opts opts = {.tls_cert = pki.server_cert, .tls_key = pki.server_key};
    assert_int_equal(replay_start(&tls, &opts), 0);
    assert_int_equal(replay_start(&plain, NULL), 0);
    snprintf(hdr, sizeof(hdr), "Location: %s/landing\r\n", replay_url(plain));
    replay_route(tls, "GET", "/hello", &(replay_reply){.status = 200, .body = "secure"});
    replay_route(tls, "GET", "/down", &(replay_reply){.status = 302, .headers = hdr});
    replay_route(plain, "GET", "/hop", &(replay_reply){.status = 302, .headers = "Location: /landing\r\n"});
    replay_route(plain, "GET", "/landing", &(replay_reply){.status = 200, .body = "landed"});
    assert_int_equal(net_loop_new(&l, NULL), 0);
    char *u1 = url_of(tls, "/hello"), *u2 = url_of(tls, "/down"), *u3 = url_of(plain, "/hop");

    net_request r1 = {.url = u1, .ca_pem = pki.ca_cert, .keep_body = true};
    run(l, &r1, &ok, 5000);
    assert_int_equal(ok.outcome, NET_DONE);
    assert_string_equal(ok.body, "secure");

    net_request r2 = {.url = u1, .ca_pem = pki.other_ca_cert};
    run(l, &r2, &unknown, 5000);
    assert_int_equal(unknown.outcome, NET_FAILED);

    net_request r3 = {.url = u2, .ca_pem = pki.ca_cert, .max_redirects = 3};
    run(l, &r3, &down, 5000);
    assert_int_equal(down.outcome, NET_REDIRECT);
    assert_non_null(strstr(down.error, "redirect was refused"));
    assert_int_equal(replay_count(plain), 0); /* the http URL was never asked */

    net_request r4 = {.url = u3, .max_redirects = 3, .keep_body = true};
    run(l, &r4, &within, 5000);
    assert_int_equal(within.outcome, NET_DONE);
    assert_string_equal(within.body, "landed");

    net_loop_free(l);
    replay_free(tls);
    replay_free(plain);
    testpki_clear(&pki);
    free(u1);
    free(u2);
    free(u3);
    seen_clear(&ok);
    seen_clear(&unknown);
    seen_clear(&down);
    seen_clear(&within);
}

static void test_sha256_of_large_streamed_body(void **state)
{
    (void)state;
    net_loop *l = NULL;
    replay *srv = NULL;
    seen s;
    size_t n = 8u * 1024 * 1024 + 13;
    char *body = malloc(n + 1), want[65] = "", cmd[256], path[] = "/tmp/membrane-net-XXXXXX",
         got[] = "/tmp/membrane-net-got-XXXXXX";
    unsigned x = 12345;
    assert_non_null(body);
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        body[i] = (char)('a' + (x >> 16) % 26);
    }
    body[n] = '\0';
    int fd = mkstemp(path), fd2 = mkstemp(got);
    assert_true(fd >= 0 && fd2 >= 0);
    assert_int_equal(write(fd, body, n), (ssize_t)n);
    close(fd);
    close(fd2);
    snprintf(cmd, sizeof(cmd), "sha256sum %s", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%64s", want), 1);
    pclose(p);

    seen_init(&s);
    s.sink = fopen(got, "wb");
    assert_non_null(s.sink);
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_route(srv, "GET", "/blob", &(replay_reply){.status = 200, .body = body, .len = n});
    assert_int_equal(net_loop_new(&l, NULL), 0);
    char *url = url_of(srv, "/blob");
    net_request req = {.kind = "artifact",
                       .url = url,
                       .max_bytes = 16LL * 1024 * 1024,
                       .on_data = on_data,
                       .on_progress = on_progress,
                       .timeout_ms = 60000};
    run(l, &req, &s, 60000);
    fclose(s.sink);
    assert_int_equal(s.outcome, NET_DONE);
    assert_null(s.body); /* streamed, not kept */
    assert_int_equal(s.bytes, (long long)n);
    assert_string_equal(s.sha, want);
    assert_true(s.progress > 1);
    assert_int_equal(s.last_progress, (long long)n);
    /* what was streamed is the body */
    snprintf(cmd, sizeof(cmd), "sha256sum %s", got);
    char again[65] = "";
    p = popen(cmd, "r");
    assert_int_equal(fscanf(p, "%64s", again), 1);
    pclose(p);
    assert_string_equal(again, want);
    net_loop_free(l);
    replay_free(srv);
    unlink(path);
    unlink(got);
    free(url);
    free(body);
    seen_clear(&s);
}

static void test_cancel(void **state)
{
    (void)state;
    net_loop *l = NULL;
    replay *srv = NULL;
    net_transfer *t = NULL;
    seen s;
    seen_init(&s);
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_route(srv, "GET", "/wait", &(replay_reply){.status = 200, .body = "late", .delay_ms = 8000});
    assert_int_equal(net_loop_new(&l, NULL), 0);
    char *url = url_of(srv, "/wait");
    net_request req = {.url = url, .timeout_ms = 20000, .on_done = on_done, .ctx = &s};
    assert_int_equal(net_transfer_start(&t, l, &req), 0);
    assert_true(replay_wait(srv, 1, 5000));
    net_transfer_cancel(t);
    net_transfer_cancel(t);           /* twice is fine */
    assert_true(seen_wait(&s, 3000)); /* well before the answer */
    assert_int_equal(s.outcome, NET_CANCELLED);
    net_transfer_cancel(t); /* after the end: nothing */
    net_transfer_release(t);
    usleep(100 * 1000);
    assert_int_equal(s.calls, 1);

    /* a loop that shuts down ends what still runs, as cancelled */
    seen s2;
    seen_init(&s2);
    net_request req2 = {.url = url, .timeout_ms = 20000, .on_done = on_done, .ctx = &s2};
    assert_int_equal(net_transfer_start(NULL, l, &req2), 0);
    net_loop_free(l);
    assert_int_equal(s2.calls, 1);
    assert_int_equal(s2.outcome, NET_CANCELLED);
    replay_free(srv);
    free(url);
    seen_clear(&s);
    seen_clear(&s2);
}

#define MANY 64

static void test_many_at_once(void **state)
{
    (void)state;
    net_loop *l = NULL;
    replay *srv = NULL;
    seen s[MANY];
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_route(srv, "GET", "/n/*", &(replay_reply){.status = 200, .body = "n", .delay_ms = 300});
    assert_int_equal(net_loop_new(&l, &(net_loop_opts){.on_finish = metrics_transfer_observe}), 0);
    double before = metrics_value(metrics_family_find(metrics_default(), "membrane_transfer_bytes_total"),
                                  (const char *const[]){"link", NULL});
    char *urls[MANY];
    for (int i = 0; i < MANY; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/n/%d", i);
        urls[i] = url_of(srv, path);
        seen_init(&s[i]);
        net_request req = {.kind = "link", .url = urls[i], .on_done = on_done, .ctx = &s[i]};
        assert_int_equal(net_transfer_start(NULL, l, &req), 0);
    }
    for (int i = 0; i < MANY; i++) {
        assert_true(seen_wait(&s[i], 20000));
        if (s[i].outcome != NET_DONE)
            fail_msg("transfer %d: %s", i, s[i].error);
        assert_int_equal(s[i].status, 200);
    }
    double after = metrics_value(metrics_family_find(metrics_default(), "membrane_transfer_bytes_total"),
                                 (const char *const[]){"link", NULL});
    assert_true(after - before == MANY);
    assert_true(metrics_value(metrics_family_find(metrics_default(), "membrane_transfer_duration_seconds"),
                              (const char *const[]){"link", NULL}) >= MANY);
    net_loop_free(l);
    replay_free(srv);
    for (int i = 0; i < MANY; i++) {
        free(urls[i]);
        seen_clear(&s[i]);
    }
    metrics_default_free();
}

static void test_bad_input(void **state)
{
    (void)state;
    net_loop *l = NULL;
    seen s;
    seen_init(&s);
    assert_int_equal(net_loop_new(&l, NULL), 0);
    net_request ftp = {.url = "ftp://127.0.0.1/x", .on_done = on_done, .ctx = &s};
    assert_int_equal(net_transfer_start(NULL, l, &ftp), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "not an http:// or https:// URL"));
    const char *bad[] = {"X-Evil: a\r\nHost: b", NULL};
    net_request hdr = {.url = "http://127.0.0.1:1/", .headers = bad, .on_done = on_done, .ctx = &s};
    assert_int_equal(net_transfer_start(NULL, l, &hdr), MB_EINVAL);
    net_request tok = {.url = "http://127.0.0.1:1/", .token = "a\nb", .on_done = on_done, .ctx = &s};
    assert_int_equal(net_transfer_start(NULL, l, &tok), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "bearer token"));
    net_loop_free(l);
    assert_int_equal(s.calls, 0);
    seen_clear(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_keeps_body_and_sends_headers),
        cmocka_unit_test(test_challenge_header),
        cmocka_unit_test(test_post_body),
        cmocka_unit_test(test_max_bytes),
        cmocka_unit_test(test_stalled_and_timeout),
        cmocka_unit_test(test_https_extra_ca_and_redirects),
        cmocka_unit_test(test_sha256_of_large_streamed_body),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_many_at_once),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The metrics and health server on loopback, on ports the kernel picks:
 * /metrics answers the registry's exposition (parsed back here), /healthz and
 * /readyz follow their checks (503 with the reason, then 200 once the check
 * passes), other paths are 404 and other methods 405, each path only on its
 * own listener unless both addresses are the same; a body larger than one
 * write arrives whole; connections are kept alive; an IPv4 address is bound
 * to that address only; bad, busy and foreign addresses are refused with a
 * message naming the flag. Also the address parser.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http_client.h"
#include "runtime/httpserver.h"
#include "runtime/metrics_families.h"
#include "util/error.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- checks ---- */

static atomic_bool synced;
static atomic_bool alive_flag;

static bool ready_check(void *ctx, char *reason, size_t size)
{
    (void)ctx;
    if (atomic_load(&synced))
        return true;
    snprintf(reason, size, "caches not synced\nsecond line is dropped");
    return false;
}

static bool alive_check(void *ctx, char *reason, size_t size)
{
    (void)ctx;
    if (atomic_load(&alive_flag))
        return true;
    snprintf(reason, size, "informer for pods has stopped");
    return false;
}

typedef struct {
    metrics_registry *reg;
    httpserver *srv;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    metrics_family *hits = NULL;
    assert_int_equal(metrics_registry_new(&f->reg), 0);
    assert_int_equal(metrics_family_add(&hits, f->reg, METRICS_COUNTER, "test_hits_total", "Hits.", L("path"), NULL, 0),
                     0);
    metrics_add(hits, L("/x"), 3);
    atomic_store(&synced, false);
    atomic_store(&alive_flag, true);
    httpserver_opts opts = {.metrics_addr = "127.0.0.1:0",
                            .health_addr = "127.0.0.1:0",
                            .registry = f->reg,
                            .alive = alive_check,
                            .ready = ready_check};
    assert_int_equal(httpserver_start(&f->srv, &opts), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    httpserver_free(f->srv);
    metrics_registry_free(f->reg);
    free(f);
    return 0;
}

static void test_metrics_endpoint(void **state)
{
    fixture *f = *state;
    int port = httpserver_metrics_port(f->srv);
    double v = 0;

    assert_true(port > 0);
    assert_true(port != httpserver_health_port(f->srv));
    reply r = fetch("GET", port, "/metrics");
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, METRICS_CONTENT_TYPE);
    assert_true(sample_value(&v, r.body, "test_hits_total{path=\"/x\"}"));
    assert_true(v == 3);
    assert_non_null(strstr(r.body, "# TYPE test_hits_total counter\n"));
    reply_free(&r);

    metrics_add(metrics_family_find(f->reg, "test_hits_total"), L("/x"), 2);
    r = fetch("GET", port, "/metrics");
    assert_true(sample_value(&v, r.body, "test_hits_total{path=\"/x\"}"));
    assert_true(v == 5);
    reply_free(&r);
}

static void test_probes(void **state)
{
    fixture *f = *state;
    int port = httpserver_health_port(f->srv);

    assert_true(port > 0);
    reply r = fetch("GET", port, "/healthz");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    reply_free(&r);

    r = fetch("GET", port, "/readyz");
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "caches not synced\n");
    reply_free(&r);

    atomic_store(&synced, true);
    r = fetch("GET", port, "/readyz");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    reply_free(&r);

    atomic_store(&alive_flag, false);
    r = fetch("GET", port, "/healthz");
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "informer for pods has stopped\n");
    reply_free(&r);
}

static void test_unknown_paths_and_methods(void **state)
{
    fixture *f = *state;
    int mport = httpserver_metrics_port(f->srv), hport = httpserver_health_port(f->srv);
    struct {
        const char *method;
        int port;
        const char *path;
        long status;
    } cases[] = {
        {"GET", mport, "/", 404},           {"GET", mport, "/nope", 404},     {"GET", mport, "/healthz", 404},
        {"GET", hport, "/metrics", 404},    {"GET", hport, "/readyz/x", 404}, {"POST", hport, "/healthz", 405},
        {"DELETE", mport, "/metrics", 405}, {"GET", mport, "/metricsx", 404},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        reply r = fetch(cases[i].method, cases[i].port, cases[i].path);
        if (r.status != cases[i].status)
            fail_msg("%s %s on %s: %ld, expected %ld", cases[i].method, cases[i].path,
                     cases[i].port == mport ? "metrics" : "health", r.status, cases[i].status);
        reply_free(&r);
    }
}

static void test_keep_alive(void **state)
{
    fixture *f = *state;
    CURL *easy = curl_easy_init();
    reply a = fetch_with(easy, "GET", "127.0.0.1", httpserver_health_port(f->srv), "/healthz");
    reply b = fetch_with(easy, "GET", "127.0.0.1", httpserver_health_port(f->srv), "/readyz");
    assert_int_equal(a.status, 200);
    assert_int_equal(b.status, 503);
    assert_int_equal(a.connects, 1);
    assert_int_equal(b.connects, 0); /* the second request went over the first connection */
    reply_free(&a);
    reply_free(&b);
    curl_easy_cleanup(easy);
}

static void test_large_body(void **state)
{
    metrics_registry *reg = NULL;
    metrics_family *fam = NULL;
    httpserver *srv = NULL;
    char *expected = NULL, label[32];
    (void)state;

    assert_int_equal(metrics_registry_new(&reg), 0);
    assert_int_equal(metrics_family_add(&fam, reg, METRICS_GAUGE, "big", "Many series.", L("n"), NULL, 0), 0);
    for (int i = 0; i < 5000; i++) {
        snprintf(label, sizeof(label), "series-%05d", i);
        metrics_set(fam, L(label), i);
    }
    assert_int_equal(httpserver_start(&srv, &(httpserver_opts){.metrics_addr = "127.0.0.1:0", .registry = reg}), 0);
    assert_int_equal(httpserver_health_port(srv), -1);
    reply r = fetch("GET", httpserver_metrics_port(srv), "/metrics");
    assert_int_equal(metrics_render(&expected, reg), 0);
    assert_true(strlen(expected) > 100000);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, strlen(expected));
    assert_string_equal(r.body, expected);
    free(expected);
    reply_free(&r);
    httpserver_free(srv);
    metrics_registry_free(reg);
}

static void test_one_listener_for_the_same_address(void **state)
{
    httpserver *srv = NULL;
    char addr[64];
    int port;
    (void)state;

    /* a port that was free a moment ago */
    assert_int_equal(httpserver_start(&srv, &(httpserver_opts){.health_addr = "127.0.0.1:0"}), 0);
    port = httpserver_health_port(srv);
    httpserver_free(srv);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);

    assert_int_equal(httpserver_start(&srv, &(httpserver_opts){.metrics_addr = addr, .health_addr = addr}), 0);
    assert_int_equal(httpserver_metrics_port(srv), port);
    assert_int_equal(httpserver_health_port(srv), port);
    reply a = fetch("GET", port, "/metrics"), b = fetch("GET", port, "/healthz"), c = fetch("GET", port, "/readyz");
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(a.body, "# TYPE membrane_is_leader gauge\n")); /* the process-wide registry */
    assert_int_equal(b.status, 200);
    assert_int_equal(c.status, 200); /* no ready check: ready */
    reply_free(&a);
    reply_free(&b);
    reply_free(&c);
    httpserver_free(srv);
    metrics_default_free();
}

static bool ipv6_loopback(void)
{
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void test_address_families(void **state)
{
    httpserver *v4 = NULL, *any = NULL;
    CURL *easy;
    (void)state;

    if (!ipv6_loopback())
        skip();
    assert_int_equal(httpserver_start(&v4, &(httpserver_opts){.health_addr = "127.0.0.1:0"}), 0);
    assert_int_equal(httpserver_start(&any, &(httpserver_opts){.health_addr = ":0"}), 0);
    easy = curl_easy_init();
    /* 127.0.0.1 only: not reachable over IPv6 */
    reply r = fetch_with(easy, "GET", "[::1]", httpserver_health_port(v4), "/healthz");
    assert_int_equal(r.rc, CURLE_COULDNT_CONNECT);
    reply_free(&r);
    /* every interface: both families */
    r = fetch_with(easy, "GET", "[::1]", httpserver_health_port(any), "/healthz");
    assert_int_equal(r.status, 200);
    reply_free(&r);
    r = fetch_with(easy, "GET", "127.0.0.1", httpserver_health_port(any), "/healthz");
    assert_int_equal(r.status, 200);
    reply_free(&r);
    curl_easy_cleanup(easy);
    httpserver_free(v4);
    httpserver_free(any);
}

static void test_refused_addresses(void **state)
{
    httpserver *a = NULL, *b = NULL;
    char busy[64];
    (void)state;

    assert_int_equal(httpserver_start(&b, &(httpserver_opts){.metrics_addr = "127.0.0.1:http"}), MB_EINVAL);
    assert_null(b);
    assert_non_null(strstr(mb_error_last(), "--metrics-addr"));
    assert_int_equal(httpserver_start(&b, &(httpserver_opts){.health_addr = "no-such-host.invalid:0"}), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "--health-addr"));
    /* TEST-NET-1 is never a local address */
    assert_int_equal(httpserver_start(&b, &(httpserver_opts){.health_addr = "192.0.2.1:0"}), MB_EIO);
    assert_non_null(strstr(mb_error_last(), "cannot listen"));

    assert_int_equal(httpserver_start(&a, &(httpserver_opts){.metrics_addr = "127.0.0.1:0"}), 0);
    snprintf(busy, sizeof(busy), "127.0.0.1:%d", httpserver_metrics_port(a));
    assert_int_equal(httpserver_start(&b, &(httpserver_opts){.metrics_addr = "127.0.0.1:0", .health_addr = busy}),
                     MB_EIO);
    assert_null(b);
    assert_non_null(strstr(mb_error_last(), "--health-addr"));
    httpserver_free(a);
}

static void test_addr_parse(void **state)
{
    struct {
        const char *in;
        const char *host;
        int port;
    } good[] = {
        {":8080", "", 8080},   {"127.0.0.1:0", "127.0.0.1", 0},
        {"[::1]:9", "::1", 9}, {"localhost:65535", "localhost", 65535},
        {"[::]:80", "::", 80},
    };
    const char *bad[] = {"",        "8080",  ":",   ":x",   ":65536",  "::1:80",
                         "[::1]80", "[]:80", ":-1", ": 80", "[::1:80", ":80x"};
    httpserver_addr a;
    (void)state;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(httpserver_addr_parse(&a, good[i].in, "--metrics-addr"), 0);
        assert_string_equal(a.host, good[i].host);
        assert_int_equal(a.port, good[i].port);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (httpserver_addr_parse(&a, bad[i], "--health-addr") != MB_EINVAL)
            fail_msg("\"%s\" was accepted", bad[i]);
        assert_non_null(strstr(mb_error_last(), "--health-addr"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metrics_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_paths_and_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive, setup, teardown),
        cmocka_unit_test(test_large_body),
        cmocka_unit_test(test_one_listener_for_the_same_address),
        cmocka_unit_test(test_address_families),
        cmocka_unit_test(test_refused_addresses),
        cmocka_unit_test(test_addr_parse),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}

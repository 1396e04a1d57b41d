/*
 * The metrics and health server wired as the operator wires it, against a
 * real kube-apiserver: /readyz is 503 until an informer's cache has synced
 * and 200 after; /metrics (parsed back) counts the informer's requests in
 * membrane_api_requests_total and its restarted watches (the server ends
 * each after a second) in membrane_watch_restarts_total, read from the
 * informer when scraped; /healthz is 200 and other paths 404. Ephemeral
 * ports on loopback.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http_client.h"
#include "kube_itest.h"

#include "kube/client.h"
#include "runtime/httpserver.h"
#include "runtime/informer.h"
#include "runtime/metrics_families.h"
#include "util/error.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
    return itest_fixture_setup(state, "httpserver");
}

static int teardown(void **state)
{
    metrics_default_free();
    return itest_fixture_teardown(state);
}

static bool informer_ready(void *ctx, char *reason, size_t size)
{
    if (informer_has_synced(ctx))
        return true;
    snprintf(reason, size, "the ConfigMap cache has not synced yet");
    return false;
}

typedef struct {
    int port;
    const char *path;
    const char *series;
    double at_least;
} probe;

static bool scrape_shows(void *ctx)
{
    probe *p = ctx;
    reply r = fetch("GET", p->port, p->path);
    double v = -1;
    bool found = sample_value(&v, r.body, p->series);
    reply_free(&r);
    return r.status == 200 && found && v >= p->at_least;
}

static bool ready(void *ctx)
{
    probe *p = ctx;
    reply r = fetch("GET", p->port, "/readyz");
    reply_free(&r);
    return r.status == 200;
}

static void test_server_over_a_real_informer(void **state)
{
    itest_fixture *f = itest_need(state);
    informer *inf = NULL;
    httpserver *srv = NULL;
    informer_opts iopts = {.namespace = f->ns, .watch_timeout_seconds = 1};
    reply r;

    assert_int_equal(informer_new(&inf, f->c, &KUBE_CONFIGMAPS, &iopts), 0);
    assert_int_equal(informer_metrics_add(inf), 0);
    httpserver_opts opts = {.metrics_addr = "127.0.0.1:0",
                            .health_addr = "127.0.0.1:0",
                            .ready = informer_ready,
                            .ready_ctx = inf};
    assert_int_equal(httpserver_start(&srv, &opts), 0);
    int mport = httpserver_metrics_port(srv), hport = httpserver_health_port(srv);

    r = fetch("GET", hport, "/readyz");
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "the ConfigMap cache has not synced yet\n");
    reply_free(&r);
    r = fetch("GET", hport, "/healthz");
    assert_int_equal(r.status, 200);
    reply_free(&r);

    assert_int_equal(informer_start(inf), 0);
    probe p = {.port = hport};
    assert_true(itest_eventually(ready, &p, 30000));

    /* the informer's list went through the client: counted with its verb and status */
    p = (probe){mport, "/metrics", "membrane_api_requests_total{verb=\"GET\",code=\"200\"}", 1};
    assert_true(itest_eventually(scrape_shows, &p, 5000));
    /* the server ends each watch after a second; the restarts are read from the informer when scraped */
    p = (probe){mport, "/metrics", "membrane_watch_restarts_total{resource=\"configmaps\"}", 1};
    assert_true(itest_eventually(scrape_shows, &p, 20000));

    r = fetch("GET", mport, "/readyz");
    assert_int_equal(r.status, 404);
    reply_free(&r);
    r = fetch("GET", hport, "/metrics");
    assert_int_equal(r.status, 404);
    reply_free(&r);

    httpserver_free(srv);
    informer_stop(inf);
    informer_metrics_remove(inf);
    informer_free(inf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_server_over_a_real_informer, setup, teardown),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}

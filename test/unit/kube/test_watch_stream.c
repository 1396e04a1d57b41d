/*
 * kube_watch() against the loopback replay server: the query it sends, events
 * split across chunks delivered in order, 410 (as an ERROR event or as the
 * HTTP status) ending the watch with MB_EGONE, other ERROR events delivered,
 * a dropped connection, and the stop flag and kube_client_stop() ending an
 * idle stream.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kube/watch.h"
#include "replay.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char seen[4096];
    int count;
} recorder;

static void recorder_init(recorder *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
}

static void recorder_destroy(recorder *r)
{
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
}

static int record(void *ctx, kube_watch_type type, cJSON *object)
{
    recorder *r = ctx;
    const char *name = json_str(object, "metadata", "name", NULL);
    if (!name)
        name = json_str(object, "reason", NULL);
    pthread_mutex_lock(&r->lock);
    size_t n = strlen(r->seen);
    snprintf(r->seen + n, sizeof(r->seen) - n, "%s %s;", kube_watch_type_name(type), name ? name : "?");
    r->count++;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    cJSON_Delete(object);
    return 0;
}

static bool recorder_wait(recorder *r, int n, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    pthread_mutex_lock(&r->lock);
    while (r->count < n)
        if (pthread_cond_timedwait(&r->cond, &r->lock, &deadline) != 0)
            break;
    bool ok = r->count >= n;
    pthread_mutex_unlock(&r->lock);
    return ok;
}

static kube_client *client_for(replay *srv)
{
    kube_client *c = NULL;
    kube_client_opts opts = {.max_retries = -1};
    assert_int_equal(kube_client_new(&c, replay_config(srv, "watch-token"), &opts), 0);
    return c;
}

#define EV(type, name, rv)                                                                                             \
    "{\"type\":\"" type "\",\"object\":{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"" name   \
    "\",\"namespace\":\"kfm\",\"resourceVersion\":\"" rv "\"}}}\n"

#define EXPIRED                                                                                                        \
    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","                                       \
    "\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old resource version: 5 "                                \
    "(27)\",\"reason\":\"Expired\",\"code\":410}}\n"

static void test_chunked_events_in_order(void **state)
{
    (void)state;
    replay *srv;
    recorder rec;
    recorder_init(&rec);
    assert_int_equal(replay_start(&srv, NULL), 0);
    static const char body[] = EV("ADDED", "a", "10") EV("MODIFIED", "a", "11")
        EV("ADDED", "b", "12") "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{"
                               "\"resourceVersion\":\"13\"}}}\n" EV("DELETED", "a", "14");
    /* pieces cut across and between lines: a line in many chunks, many lines in one chunk */
    static const size_t pieces[] = {3, 40, 1, 1, 90, 200, 7, 150, 4096, 0};
    replay_add(srv, &(replay_reply){.status = 200, .body = body, .chunked = true, .pieces = pieces, .pause_ms = 20});
    kube_client *c = client_for(srv);
    kube_watch_opts opts = {.resource_version = "9", .timeout_seconds = 300, .label_selector = "app=kfm"};
    assert_int_equal(kube_watch(c, &KUBE_CONFIGMAPS, "kfm", &opts, record, &rec), 0);
    assert_string_equal(rec.seen, "ADDED a;MODIFIED a;ADDED b;BOOKMARK ?;DELETED a;");

    const replay_request *q = replay_get(srv, 0);
    assert_string_equal(q->method, "GET");
    assert_string_equal(q->target, "/api/v1/namespaces/kfm/configmaps?watch=1&allowWatchBookmarks=true"
                                   "&labelSelector=app%3Dkfm&resourceVersion=9&timeoutSeconds=300");
    assert_string_equal(replay_header(q, "authorization"), "Bearer watch-token");
    kube_client_free(c);
    replay_free(srv);
    recorder_destroy(&rec);
}

static void test_error_410_event_is_gone(void **state)
{
    (void)state;
    replay *srv;
    recorder rec;
    recorder_init(&rec);
    assert_int_equal(replay_start(&srv, NULL), 0);
    static const char body[] = EV("ADDED", "a", "10") EXPIRED EV("ADDED", "never", "30");
    replay_add(srv, &(replay_reply){.status = 200,
                                    .body = body,
                                    .chunked = true,
                                    .pieces = (const size_t[]){50, 50, 50, 50, 4096, 0}});
    kube_client *c = client_for(srv);
    assert_int_equal(kube_watch(c, &KUBE_CONFIGMAPS, NULL, &(kube_watch_opts){.resource_version = "5"}, record, &rec),
                     MB_EGONE);
    assert_string_equal(rec.seen, "ADDED a;"); /* the ERROR event is not delivered, nor what follows */
    assert_string_equal(mb_error_last(), "too old resource version: 5 (27) (410 Expired)");
    assert_int_equal(kube_status_last()->code, 410);
    assert_string_equal(kube_status_last()->reason, "Expired");
    kube_client_free(c);
    replay_free(srv);
    recorder_destroy(&rec);
}

static void test_error_gone_without_kind_or_code(void **state)
{
    (void)state;
    replay *srv;
    recorder rec;
    recorder_init(&rec);
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_add(srv, &(replay_reply){.status = 200,
                                    .chunked = true,
                                    .body = "{\"type\":\"ERROR\",\"object\":{\"reason\":\"Gone\","
                                            "\"message\":\"resource version 3 is gone\"}}\n"});
    kube_client *c = client_for(srv);
    assert_int_equal(kube_watch(c, &KUBE_PODS, NULL, NULL, record, &rec), MB_EGONE);
    assert_string_equal(mb_error_last(), "resource version 3 is gone (410 Gone)");
    assert_int_equal(rec.count, 0);
    kube_client_free(c);
    replay_free(srv);
    recorder_destroy(&rec);
}

static void test_other_error_event_delivered(void **state)
{
    (void)state;
    replay *srv;
    recorder rec;
    recorder_init(&rec);
    assert_int_equal(replay_start(&srv, NULL), 0);
    static const char body[] =
        "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"status\":\"Failure\","
        "\"message\":\"internal error\",\"reason\":\"InternalError\",\"code\":500}}\n" EV("ADDED", "a", "10");
    replay_add(srv, &(replay_reply){.status = 200, .body = body, .chunked = true});
    kube_client *c = client_for(srv);
    assert_int_equal(kube_watch(c, &KUBE_CONFIGMAPS, "kfm", NULL, record, &rec), 0);
    assert_string_equal(rec.seen, "ERROR InternalError;ADDED a;");
    kube_client_free(c);
    replay_free(srv);
    recorder_destroy(&rec);
}

static void test_http_410_is_gone(void **state)
{
    (void)state;
    replay *srv;
    recorder rec;
    recorder_init(&rec);
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_add(srv, &(replay_reply){.status = 410,
                                    .body = "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"too old "
                                            "resource version: 1 (50)\",\"reason\":\"Expired\",\"code\":410}"});
    replay_add(srv, &(replay_reply){.status = 403,
                                    .body = "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"configmaps is "
                                            "forbidden\",\"reason\":\"Forbidden\",\"code\":403}"});
    kube_client *c = client_for(srv);
    assert_int_equal(kube_watch(c, &KUBE_CONFIGMAPS, "kfm", &(kube_watch_opts){.resource_version = "1"}, record, &rec),
                     MB_EGONE);
    assert_string_equal(mb_error_last(), "too old resource version: 1 (50) (410 Expired)");
    assert_int_equal(kube_watch(c, &KUBE_CONFIGMAPS, "kfm", NULL, record, &rec), MB_EFORBIDDEN);
    assert_int_equal(rec.count, 0);
    kube_client_free(c);
    replay_free(srv);
    recorder_destroy(&rec);
}

static void test_dropped_mid_body(void **state)
{
    (void)state;
    replay *srv;
    recorder rec;
    recorder_init(&rec);
    assert_int_equal(replay_start(&srv, NULL), 0);
    static const char body[] = EV("ADDED", "a", "10") EV("ADDED", "b", "11");
    size_t first = strlen(EV("ADDED", "a", "10"));
    replay_add(srv, &(replay_reply){.status = 200,
                                    .body = body,
                                    .chunked = true,
                                    .pieces = (const size_t[]){first, 4096, 0},
                                    .drop = true,
                                    .drop_at = first + 20});
    kube_client *c = client_for(srv);
    assert_int_equal(kube_watch(c, &KUBE_CONFIGMAPS, "kfm", NULL, record, &rec), MB_ECONN);
    assert_string_equal(rec.seen, "ADDED a;");
    kube_client_free(c);
    replay_free(srv);
    recorder_destroy(&rec);
}

static void test_malformed_line_ends_stream(void **state)
{
    (void)state;
    replay *srv;
    recorder rec;
    recorder_init(&rec);
    assert_int_equal(replay_start(&srv, NULL), 0);
    static const char body[] = EV("ADDED", "a", "10") "{\"type\":\"ADDED\",\"object\":\n" EV("ADDED", "b", "11");
    replay_add(srv, &(replay_reply){.status = 200, .body = body, .chunked = true, .hold = true});
    kube_client *c = client_for(srv);
    assert_int_equal(kube_watch(c, &KUBE_CONFIGMAPS, "kfm", NULL, record, &rec), MB_EJSON);
    assert_non_null(strstr(mb_error_last(), "not a JSON object"));
    assert_string_equal(rec.seen, "ADDED a;");
    kube_client_free(c);
    replay_free(srv);
    recorder_destroy(&rec);
}

/* --- stopping an idle stream from another thread --- */

typedef struct {
    replay *srv;
    kube_client *client;
    recorder *rec;
    atomic_bool *flag; /* stop with kube_client_stop_stream(), or */
    bool client_stop;  /* call kube_client_stop() */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool returned;
} stopper_arg;

static void *stopper(void *p)
{
    stopper_arg *a = p;
    recorder_wait(a->rec, 1, 10000); /* the stream is open after its first event */
    usleep(300 * 1000);              /* and waiting for more */
    if (a->flag)
        kube_client_stop_stream(a->client, a->flag);
    if (a->client_stop)
        kube_client_stop(a->client);

    /*
     * watchdog: if the watch does not end within 5 s, hang up so that it ends otherwise and the test fails (a
     * stop that did not wake the stream would be seen when libcurl's connect timer of 10 s ends its wait)
     */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    pthread_mutex_lock(&a->lock);
    while (!a->returned)
        if (pthread_cond_timedwait(&a->cond, &a->lock, &deadline) != 0)
            break;
    bool returned = a->returned;
    pthread_mutex_unlock(&a->lock);
    if (!returned)
        replay_hangup(a->srv);
    return NULL;
}

static void stop_idle_stream(bool use_flag)
{
    replay *srv;
    recorder rec;
    atomic_bool stop = false;
    recorder_init(&rec);
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_add(srv, &(replay_reply){.status = 200, .body = EV("ADDED", "a", "10"), .chunked = true, .hold = true});
    kube_client *c = client_for(srv);
    stopper_arg a = {.srv = srv, .client = c, .rec = &rec, .flag = use_flag ? &stop : NULL, .client_stop = !use_flag};
    pthread_mutex_init(&a.lock, NULL);
    pthread_cond_init(&a.cond, NULL);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stopper, &a), 0);

    int err = kube_watch(c, &KUBE_CONFIGMAPS, "kfm", &(kube_watch_opts){.stop = &stop}, record, &rec);

    pthread_mutex_lock(&a.lock);
    a.returned = true;
    pthread_cond_broadcast(&a.cond);
    pthread_mutex_unlock(&a.lock);
    pthread_join(t, NULL);
    assert_int_equal(err, MB_ESTOPPED);
    assert_string_equal(rec.seen, "ADDED a;");

    /* a set flag or a stopped client ends a new watch before it connects */
    err = kube_watch(c, &KUBE_CONFIGMAPS, "kfm", &(kube_watch_opts){.stop = &stop}, record, &rec);
    assert_int_equal(err, MB_ESTOPPED);
    assert_int_equal(replay_count(srv), 1);

    pthread_mutex_destroy(&a.lock);
    pthread_cond_destroy(&a.cond);
    kube_client_free(c);
    replay_free(srv);
    recorder_destroy(&rec);
}

static void test_stop_flag_ends_idle_stream(void **state)
{
    (void)state;
    stop_idle_stream(true);
}

static void test_client_stop_ends_idle_stream(void **state)
{
    (void)state;
    stop_idle_stream(false);
}

static int stop_at_second(void *ctx, kube_watch_type type, cJSON *object)
{
    int *n = ctx;
    (void)type;
    cJSON_Delete(object);
    return ++*n >= 2;
}

static void test_handler_stops_stream(void **state)
{
    (void)state;
    replay *srv;
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_add(srv, &(replay_reply){.status = 200,
                                    .body = EV("ADDED", "a", "1") EV("ADDED", "b", "2") EV("ADDED", "c", "3"),
                                    .chunked = true,
                                    .hold = true});
    kube_client *c = client_for(srv);
    int n = 0;
    assert_int_equal(kube_watch(c, &KUBE_CONFIGMAPS, "kfm", NULL, stop_at_second, &n), MB_ESTOPPED);
    assert_int_equal(n, 2);
    kube_client_free(c);
    replay_free(srv);
}

int main(void)
{
    mb_log_setup(MB_LOG_TEXT, MB_LOG_WARN, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked_events_in_order),
        cmocka_unit_test(test_error_410_event_is_gone),
        cmocka_unit_test(test_error_gone_without_kind_or_code),
        cmocka_unit_test(test_other_error_event_delivered),
        cmocka_unit_test(test_http_410_is_gone),
        cmocka_unit_test(test_dropped_mid_body),
        cmocka_unit_test(test_malformed_line_ends_stream),
        cmocka_unit_test(test_stop_flag_ends_idle_stream),
        cmocka_unit_test(test_client_stop_ends_idle_stream),
        cmocka_unit_test(test_handler_stops_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

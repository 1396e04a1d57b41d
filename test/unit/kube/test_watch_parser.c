/*
 * The incremental watch-event parser: the same events come out however the
 * stream is cut into pieces, partial lines are held back, and lines that are
 * not watch events are refused with MB_EJSON and a message naming the problem.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kube/watch.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the handler saw, as "TYPE name;" per event. */
typedef struct {
    char seen[4096];
    int count;
    int stop_after; /* 0: never ask to stop */
} recorder;

static int record(void *ctx, kube_watch_type type, cJSON *object)
{
    recorder *r = ctx;
    const char *name = json_str(object, "metadata", "name", NULL);
    if (!name)
        name = json_str(object, "reason", NULL);
    size_t n = strlen(r->seen);
    snprintf(r->seen + n, sizeof(r->seen) - n, "%s %s;", kube_watch_type_name(type), name ? name : "?");
    cJSON_Delete(object);
    r->count++;
    return r->stop_after && r->count >= r->stop_after;
}

static const char STREAM[] =
    "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"10\"}}}\n"
    "{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"11\"},"
    "\"status\":{\"phase\":\"Running\",\"message\":\"line\\nbreak inside a string\"}}}\r\n"
    "\n"
    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"bm\",\"resourceVersion\":\"12\"}}}\n"
    "{\"type\":\"DELETED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"b\",\"resourceVersion\":\"13\"}}}\r\n"
    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"InternalError\","
    "\"message\":\"boom\",\"code\":500}}\n"
    "{ \"type\" : \"ADDED\" , \"object\" : {\"metadata\":{\"name\":\"c\"}} }\n";

static const char EXPECTED[] = "ADDED a;MODIFIED a;BOOKMARK bm;DELETED b;ERROR InternalError;ADDED c;";

static void feed_pieces(const size_t *cuts, size_t ncuts, recorder *rec)
{
    kube_watch_parser *p = NULL;
    size_t len = strlen(STREAM), off = 0;
    assert_int_equal(kube_watch_parser_new(&p, record, rec), 0);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        assert_int_equal(kube_watch_parser_feed(p, STREAM + off, end - off), 0);
        off = end;
    }
    assert_int_equal(kube_watch_parser_pending(p), 0);
    kube_watch_parser_free(p);
}

static void test_whole_stream(void **state)
{
    (void)state;
    recorder rec = {0};
    feed_pieces(NULL, 0, &rec);
    assert_string_equal(rec.seen, EXPECTED);
}

static void test_every_split_point(void **state)
{
    (void)state;
    size_t len = strlen(STREAM);
    for (size_t cut = 0; cut <= len; cut++) {
        recorder rec = {0};
        feed_pieces(&cut, 1, &rec);
        if (strcmp(rec.seen, EXPECTED) != 0)
            fail_msg("split at byte %zu gave %s", cut, rec.seen);
    }
}

static void test_every_pair_of_split_points_sampled(void **state)
{
    (void)state;
    /* every first cut, with the second cut at a spread of distances after it */
    size_t len = strlen(STREAM);
    static const size_t gaps[] = {1, 2, 3, 7, 31, 64, 101, 250};
    for (size_t a = 0; a < len; a++) {
        for (size_t g = 0; g < sizeof(gaps) / sizeof(gaps[0]) && a + gaps[g] <= len; g++) {
            size_t cuts[2] = {a, a + gaps[g]};
            recorder rec = {0};
            feed_pieces(cuts, 2, &rec);
            if (strcmp(rec.seen, EXPECTED) != 0)
                fail_msg("cuts at %zu and %zu gave %s", cuts[0], cuts[1], rec.seen);
        }
    }
}

static void test_byte_at_a_time(void **state)
{
    (void)state;
    size_t len = strlen(STREAM);
    size_t *cuts = malloc(len * sizeof(size_t));
    assert_non_null(cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i;
    recorder rec = {0};
    feed_pieces(cuts, len, &rec);
    assert_string_equal(rec.seen, EXPECTED);
    free(cuts);
}

static void test_partial_line_held_back(void **state)
{
    (void)state;
    recorder rec = {0};
    kube_watch_parser *p = NULL;
    const char *first = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n{\"type\":\"DEL";
    assert_int_equal(kube_watch_parser_new(&p, record, &rec), 0);
    assert_int_equal(kube_watch_parser_feed(p, first, strlen(first)), 0);
    assert_string_equal(rec.seen, "ADDED a;");
    assert_int_equal(kube_watch_parser_pending(p), strlen("{\"type\":\"DEL"));
    const char *rest = "ETED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n";
    assert_int_equal(kube_watch_parser_feed(p, rest, strlen(rest)), 0);
    assert_string_equal(rec.seen, "ADDED a;DELETED a;");
    assert_int_equal(kube_watch_parser_pending(p), 0);
    kube_watch_parser_free(p);
}

static int feed_one(const char *line, recorder *rec)
{
    kube_watch_parser *p = NULL;
    assert_int_equal(kube_watch_parser_new(&p, record, rec), 0);
    int err = kube_watch_parser_feed(p, line, strlen(line));
    kube_watch_parser_free(p);
    return err;
}

static void test_malformed_json(void **state)
{
    (void)state;
    recorder rec = {0};
    assert_int_equal(feed_one("{\"type\":\"ADDED\",\"object\":{\"metadata\":\n", &rec), MB_EJSON);
    assert_non_null(strstr(mb_error_last(), "not a JSON object"));
    assert_non_null(strstr(mb_error_last(), "{\"type\":\"ADDED\""));
    assert_int_equal(feed_one("[1,2]\n", &rec), MB_EJSON);
    assert_int_equal(rec.count, 0);
}

static void test_unknown_type(void **state)
{
    (void)state;
    recorder rec = {0};
    assert_int_equal(feed_one("{\"type\":\"RENAMED\",\"object\":{}}\n", &rec), MB_EJSON);
    assert_non_null(strstr(mb_error_last(), "unknown type \"RENAMED\""));
    assert_int_equal(feed_one("{\"object\":{}}\n", &rec), MB_EJSON);
    assert_non_null(strstr(mb_error_last(), "no \"type\""));
    assert_int_equal(feed_one("{\"type\":\"ADDED\",\"object\":\"x\"}\n", &rec), MB_EJSON);
    assert_non_null(strstr(mb_error_last(), "no \"object\""));
    assert_int_equal(rec.count, 0);
}

static void test_events_before_a_bad_line_are_delivered(void **state)
{
    (void)state;
    recorder rec = {0};
    assert_int_equal(feed_one("{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\nnot json\n", &rec),
                     MB_EJSON);
    assert_string_equal(rec.seen, "ADDED a;");
}

static void test_handler_stops(void **state)
{
    (void)state;
    recorder rec = {.stop_after = 2};
    assert_int_equal(feed_one(STREAM, &rec), MB_ESTOPPED);
    assert_string_equal(rec.seen, "ADDED a;MODIFIED a;");
}

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(kube_watch_type_name(KUBE_WATCH_ADDED), "ADDED");
    assert_string_equal(kube_watch_type_name(KUBE_WATCH_ERROR), "ERROR");
    assert_string_equal(kube_watch_type_name((kube_watch_type)99), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_stream),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_every_pair_of_split_points_sampled),
        cmocka_unit_test(test_byte_at_a_time),
        cmocka_unit_test(test_partial_line_held_back),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_events_before_a_bad_line_are_delivered),
        cmocka_unit_test(test_handler_stops),
        cmocka_unit_test(test_type_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

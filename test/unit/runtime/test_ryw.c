/*
 * Read-your-writes without a server: the written-ahead copy is served while
 * the cache shows a version our writes replaced and dropped once it shows
 * anything else; entries of two kinds under one name stay apart; a delete
 * forgets both the copy and the status record; the trail keeps the newest
 * versions; and the lost-answer check tells our own landed write from a stale
 * view deciding the same status again.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "runtime/ryw.h"
#include "util/json.h"

#include <stdio.h>
#include <string.h>

static cJSON *obj(const char *rv, const char *phase)
{
    char text[256];
    snprintf(text, sizeof(text),
             "{\"metadata\":{\"namespace\":\"kfm\",\"name\":\"api\",\"resourceVersion\":\"%s\"},"
             "\"status\":{\"phase\":\"%s\"}}",
             rv, phase);
    return cJSON_Parse(text);
}

/* Our write made version 12 from 10 and 11: while the cache shows 10 or 11 the copy at 12 is what is read. */
static void test_written_ahead_served_until_the_cache_catches_up(void **state)
{
    (void)state;
    ryw *w = NULL;
    ryw_trail older = {0}, got = {0};
    assert_int_equal(ryw_new(&w), 0);
    ryw_trail_add(&older, "10");
    ryw_trail_add(&older, "11");
    ryw_ahead_keep(w, "GovernedAPIRelease", "kfm/api", &older, obj("12", "Verifying"), NULL);
    assert_int_equal(older.n, 0); /* taken */

    cJSON *o = ryw_ahead_take(w, "GovernedAPIRelease", "kfm/api", "11", &got);
    assert_non_null(o);
    assert_string_equal(json_str(o, "metadata", "resourceVersion", NULL), "12");
    assert_string_equal(json_str(o, "status", "phase", NULL), "Verifying");
    assert_true(ryw_trail_has(&got, "10") && ryw_trail_has(&got, "11"));
    /* the reconcile keeps it again (nothing newer written) */
    ryw_ahead_keep(w, "GovernedAPIRelease", "kfm/api", &got, o, NULL);

    /* another kind under the same name is another object */
    ryw_trail none = {0};
    assert_null(ryw_ahead_take(w, "Deployment", "kfm/api", "11", &none));

    /* the cache shows 12 (or anything newer): the copy is dropped, the cache's read */
    assert_null(ryw_ahead_take(w, "GovernedAPIRelease", "kfm/api", "12", &got));
    assert_null(ryw_ahead_take(w, "GovernedAPIRelease", "kfm/api", "11", &got)); /* gone for good */
    ryw_free(w);
}

/* Nothing older to hide: a write the cache may already show is not kept. */
static void test_nothing_kept_without_older_versions(void **state)
{
    (void)state;
    ryw *w = NULL;
    ryw_trail older = {0}, got = {0};
    assert_int_equal(ryw_new(&w), 0);
    ryw_trail_add(&older, "12"); /* the object's own version only */
    ryw_ahead_keep(w, "GovernedAPIRelease", "kfm/api", &older, obj("12", "Pending"), NULL);
    assert_null(ryw_ahead_take(w, "GovernedAPIRelease", "kfm/api", "12", &got));
    ryw_free(w);
}

/* A deleted object's copy and status record go with it. */
static void test_forget_on_delete(void **state)
{
    (void)state;
    ryw *w = NULL;
    ryw_trail older = {0}, got = {0};
    cJSON *status = cJSON_Parse("{\"phase\":\"Verifying\"}");
    cJSON *server = obj("13", "Verifying");
    assert_int_equal(ryw_new(&w), 0);
    ryw_trail_add(&older, "10");
    ryw_ahead_keep(w, "Deployment", "kfm/api", &older, obj("11", "x"), NULL);
    ryw_status_record(w, "GovernedAPIRelease", "kfm/api", status);
    assert_false(ryw_status_landed(w, "GovernedAPIRelease", "kfm/api", status, server)); /* ours, already */
    ryw_forget(w, "Deployment", "kfm/api");
    ryw_forget(w, "GovernedAPIRelease", "kfm/api");
    assert_null(ryw_ahead_take(w, "Deployment", "kfm/api", "10", &got));
    /* after the delete, the same status on the server is no longer "already written by us" */
    assert_true(ryw_status_landed(w, "GovernedAPIRelease", "kfm/api", status, server));
    cJSON_Delete(server);
    cJSON_Delete(status);
    ryw_free(w);
}

/* The trail keeps the newest RYW_TRAIL_MAX versions, once each. */
static void test_trail_keeps_the_newest(void **state)
{
    (void)state;
    ryw_trail t = {0};
    char rv[16];
    for (int i = 0; i < RYW_TRAIL_MAX + 3; i++) {
        snprintf(rv, sizeof(rv), "%d", i);
        ryw_trail_add(&t, rv);
        ryw_trail_add(&t, rv);
    }
    assert_int_equal(t.n, RYW_TRAIL_MAX);
    assert_false(ryw_trail_has(&t, "2"));
    assert_true(ryw_trail_has(&t, "3"));
    snprintf(rv, sizeof(rv), "%d", RYW_TRAIL_MAX + 2);
    assert_true(ryw_trail_has(&t, rv));
    ryw_trail_remove(&t, rv);
    assert_false(ryw_trail_has(&t, rv));
    assert_int_equal(t.n, RYW_TRAIL_MAX - 1);
    ryw_trail_clear(&t);
    assert_int_equal(t.n, 0);
}

/* A 409 on a status write: it landed when the server carries exactly it and it is not what we last wrote. */
static void test_status_landed(void **state)
{
    (void)state;
    ryw *w = NULL;
    cJSON *wanted = cJSON_Parse("{\"phase\":\"Progressing\",\"observedGeneration\":2}");
    cJSON *before = cJSON_Parse("{\"phase\":\"Pending\",\"observedGeneration\":1}");
    cJSON *server = obj("20", "Pending");
    assert_int_equal(ryw_new(&w), 0);
    ryw_status_record(w, "GovernedAPIRelease", "kfm/api", before);
    assert_false(ryw_status_landed(w, "GovernedAPIRelease", "kfm/api", wanted, server)); /* did not land */
    cJSON_ReplaceItemInObject(server, "status", cJSON_Duplicate(wanted, true));
    assert_true(ryw_status_landed(w, "GovernedAPIRelease", "kfm/api", wanted, server)); /* it did */
    /* the same status already written by this process: a stale view deciding it again */
    ryw_status_record(w, "GovernedAPIRelease", "kfm/api", wanted);
    assert_false(ryw_status_landed(w, "GovernedAPIRelease", "kfm/api", wanted, server));
    /* the record is per kind and name */
    assert_true(ryw_status_landed(w, "PolicyBundle", "kfm/api", wanted, server));
    assert_false(ryw_status_matches(NULL, server, 0));
    assert_false(ryw_status_matches(wanted, NULL, 0));
    assert_int_equal(ryw_status_hash(NULL), 0);
    assert_true(ryw_status_hash(wanted) != ryw_status_hash(before));
    cJSON_Delete(server);
    cJSON_Delete(before);
    cJSON_Delete(wanted);
    ryw_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_written_ahead_served_until_the_cache_catches_up),
        cmocka_unit_test(test_nothing_kept_without_older_versions),
        cmocka_unit_test(test_forget_on_delete),
        cmocka_unit_test(test_trail_keeps_the_newest),
        cmocka_unit_test(test_status_landed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

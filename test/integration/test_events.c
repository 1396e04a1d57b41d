/*
 * The Event recorder against a real kube-apiserver: the same event recorded
 * three times is one Event with count 3 (read back by a field selector on the
 * involved object), a different message is a second Event, and the Event
 * carries the involved object, type, reason and reporting component.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kube_itest.h"

#include "kube/client.h"
#include "runtime/events.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
    return itest_fixture_setup(state, "events");
}

static const cJSON *find_by_message(const cJSON *items, const char *message)
{
    const cJSON *ev;
    cJSON_ArrayForEach(ev, items)
        if (strcmp(json_str(ev, "message", NULL), message) == 0)
            return ev;
    return NULL;
}

static void test_repeats_fold_into_one_event(void **state)
{
    itest_fixture *f = itest_need(state);
    cJSON *cm = itest_json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"subject\"}}");
    cJSON *created = NULL, *list = NULL;
    event_recorder *rec = NULL;
    event_recorder_stats st;
    event_object obj;
    char selector[256];
    const cJSON *items, *ev;

    assert_int_equal(kube_create(&created, f->c, &KUBE_CONFIGMAPS, f->ns, cm), 0);
    assert_int_equal(event_object_from_json(&obj, created, "ConfigMap", "v1"), 0);
    assert_int_equal(event_recorder_new(&rec, f->c, NULL), 0);

    for (int i = 0; i < 3; i++)
        event_record(rec, &obj, EVENT_WARNING, "CheckFailed", "check %s failed", "smoke");
    event_record(rec, &obj, EVENT_NORMAL, "CheckPassed", "all %d checks passed", 5);
    assert_int_equal(event_recorder_flush(rec, 60000), 0);
    event_recorder_get_stats(&st, rec);
    assert_int_equal(st.created, 2);
    assert_int_equal(st.folded, 2);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.dropped, 0);

    snprintf(selector, sizeof(selector), "involvedObject.name=subject,involvedObject.uid=%s", obj.uid);
    kube_list_opts lo = {.field_selector = selector};
    assert_int_equal(kube_list(&list, f->c, &KUBE_EVENTS, f->ns, &lo), 0);
    items = json_get(list, "items", NULL);
    assert_int_equal(cJSON_GetArraySize(items), 2);

    ev = find_by_message(items, "check smoke failed");
    assert_non_null(ev);
    assert_int_equal(json_int(0, ev, "count", NULL), 3);
    assert_string_equal(json_str(ev, "type", NULL), "Warning");
    assert_string_equal(json_str(ev, "reason", NULL), "CheckFailed");
    assert_string_equal(json_str(ev, "involvedObject", "kind", NULL), "ConfigMap");
    assert_string_equal(json_str(ev, "involvedObject", "apiVersion", NULL), "v1");
    assert_string_equal(json_str(ev, "involvedObject", "namespace", NULL), f->ns);
    assert_string_equal(json_str(ev, "involvedObject", "uid", NULL), obj.uid);
    assert_string_equal(json_str(ev, "source", "component", NULL), "membrane");
    assert_string_equal(json_str(ev, "reportingComponent", NULL), "membrane");
    assert_non_null(strstr(json_str(ev, "metadata", "name", NULL), "subject."));
    assert_true(strcmp(json_str(ev, "lastTimestamp", NULL), json_str(ev, "firstTimestamp", NULL)) >= 0);

    ev = find_by_message(items, "all 5 checks passed");
    assert_non_null(ev);
    assert_int_equal(json_int(0, ev, "count", NULL), 1);
    assert_string_equal(json_str(ev, "type", NULL), "Normal");

    event_recorder_free(rec);
    cJSON_Delete(cm);
    cJSON_Delete(created);
    cJSON_Delete(list);
}

static void test_deleted_event_is_recreated(void **state)
{
    itest_fixture *f = itest_need(state);
    event_recorder *rec = NULL;
    event_recorder_stats st;
    cJSON *list = NULL;
    const cJSON *items;
    event_object obj = {.kind = "ConfigMap",
                        .api_version = "v1",
                        .namespace = f->ns,
                        .name = "ghost",
                        .uid = "00000000-0000-0000-0000-000000000001"};
    kube_list_opts lo = {.field_selector = "involvedObject.name=ghost"};

    assert_int_equal(event_recorder_new(&rec, f->c, NULL), 0);
    event_record(rec, &obj, EVENT_NORMAL, "Seen", "seen");
    assert_int_equal(event_recorder_flush(rec, 60000), 0);
    assert_int_equal(kube_list(&list, f->c, &KUBE_EVENTS, f->ns, &lo), 0);
    items = json_get(list, "items", NULL);
    assert_int_equal(cJSON_GetArraySize(items), 1);
    assert_int_equal(kube_delete(f->c, &KUBE_EVENTS, f->ns,
                                 json_str(cJSON_GetArrayItem(items, 0), "metadata", "name", NULL), NULL),
                     0);
    cJSON_Delete(list);
    list = NULL;

    /* The repeat finds its Event gone and starts a new one instead of failing. */
    event_record(rec, &obj, EVENT_NORMAL, "Seen", "seen");
    assert_int_equal(event_recorder_flush(rec, 60000), 0);
    event_recorder_get_stats(&st, rec);
    assert_int_equal(st.created, 2);
    assert_int_equal(st.failed, 0);
    assert_int_equal(kube_list(&list, f->c, &KUBE_EVENTS, f->ns, &lo), 0);
    items = json_get(list, "items", NULL);
    assert_int_equal(cJSON_GetArraySize(items), 1);
    assert_int_equal(json_int(0, cJSON_GetArrayItem(items, 0), "count", NULL), 1);
    cJSON_Delete(list);
    event_recorder_free(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_repeats_fold_into_one_event, setup, itest_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_deleted_event_is_recreated, setup, itest_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The Event recorder's pure parts: Event names, the core/v1 Event body, the
 * merge patch that folds a repeat, which failed writes are tried again and
 * when, reading the involved object from JSON, and the Events a decide
 * function plans.
 * Writing and folding against the API is in test/integration/test_events.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "runtime/events.h"
#include "util/error.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

static void test_names(void **state)
{
    (void)state;
    char *name = NULL;
    char longname[300];

    assert_int_equal(event_name_new(&name, "web", 0x17a8b3c4d5e6f789ULL), 0);
    assert_string_equal(name, "web.17a8b3c4d5e6f789");
    free(name);

    assert_int_equal(event_name_new(&name, "web", 0x2a), 0);
    assert_string_equal(name, "web.000000000000002a");
    free(name);

    /* A 253-character object name is shortened so the Event name fits, and
     * never ends the shortened part with '-' or '.'. */
    memset(longname, 'a', 253);
    longname[253] = '\0';
    longname[235] = '-';
    longname[234] = '.';
    assert_int_equal(event_name_new(&name, longname, 1), 0);
    assert_true(strlen(name) <= 253);
    assert_string_equal(name + strlen(name) - 17, ".0000000000000001");
    assert_int_equal(strlen(name), 234 + 17);
    assert_true(name[233] == 'a');
    free(name);
}

static void test_body(void **state)
{
    (void)state;
    cJSON *body = NULL;
    event_object o = {
        .kind = "GovernedAPIRelease",
        .api_version = "governance.kfm.dev/v1alpha1",
        .namespace = "kfm",
        .name = "kfm-api",
        .uid = "0b7c-11",
        .resource_version = "42",
    };
    /* 2026-01-02T03:04:05Z */
    assert_int_equal(event_body_new(&body, &o, EVENT_WARNING, "SmokeFailed", "3 of 5 checks failed", "membrane",
                                    "node-a", "kfm-api.1", 1767323045),
                     0);
    assert_string_equal(json_str(body, "apiVersion", NULL), "v1");
    assert_string_equal(json_str(body, "kind", NULL), "Event");
    assert_string_equal(json_str(body, "metadata", "name", NULL), "kfm-api.1");
    assert_string_equal(json_str(body, "metadata", "namespace", NULL), "kfm");
    assert_string_equal(json_str(body, "involvedObject", "kind", NULL), "GovernedAPIRelease");
    assert_string_equal(json_str(body, "involvedObject", "apiVersion", NULL), "governance.kfm.dev/v1alpha1");
    assert_string_equal(json_str(body, "involvedObject", "namespace", NULL), "kfm");
    assert_string_equal(json_str(body, "involvedObject", "name", NULL), "kfm-api");
    assert_string_equal(json_str(body, "involvedObject", "uid", NULL), "0b7c-11");
    assert_string_equal(json_str(body, "involvedObject", "resourceVersion", NULL), "42");
    assert_null(json_get(body, "involvedObject", "fieldPath", NULL));
    assert_string_equal(json_str(body, "type", NULL), "Warning");
    assert_string_equal(json_str(body, "reason", NULL), "SmokeFailed");
    assert_string_equal(json_str(body, "message", NULL), "3 of 5 checks failed");
    assert_string_equal(json_str(body, "source", "component", NULL), "membrane");
    assert_string_equal(json_str(body, "reportingComponent", NULL), "membrane");
    assert_string_equal(json_str(body, "reportingInstance", NULL), "node-a");
    assert_string_equal(json_str(body, "firstTimestamp", NULL), "2026-01-02T03:04:05Z");
    assert_string_equal(json_str(body, "lastTimestamp", NULL), "2026-01-02T03:04:05Z");
    assert_int_equal(json_int(0, body, "count", NULL), 1);
    cJSON_Delete(body);

    /* A cluster-scoped object's Events live in "default". */
    o.namespace = NULL;
    o.kind = "Namespace";
    assert_int_equal(event_body_new(&body, &o, EVENT_NORMAL, "Seen", "", "membrane", "h", "x.1", 0), 0);
    assert_string_equal(json_str(body, "metadata", "namespace", NULL), "default");
    assert_null(json_get(body, "involvedObject", "namespace", NULL));
    assert_string_equal(json_str(body, "type", NULL), "Normal");
    cJSON_Delete(body);
}

static void test_patch(void **state)
{
    (void)state;
    char *patch = NULL;
    cJSON *p;
    assert_int_equal(event_patch_new(&patch, 3, "again", 1767323045), 0);
    p = cJSON_Parse(patch);
    assert_non_null(p);
    assert_int_equal(json_int(0, p, "count", NULL), 3);
    assert_string_equal(json_str(p, "lastTimestamp", NULL), "2026-01-02T03:04:05Z");
    assert_string_equal(json_str(p, "message", NULL), "again");
    assert_null(json_get(p, "firstTimestamp", NULL));
    cJSON_Delete(p);
    free(patch);
}

static void test_retry_policy(void **state)
{
    (void)state;
    /* what may pass later: 1 s, 2 s, 4 s ... at most 30 s, EVENT_WRITE_RETRIES times */
    assert_int_equal(event_retry_ms(MB_EHTTP, 429, 0), 1000);
    assert_int_equal(event_retry_ms(MB_EHTTP, 429, 1), 2000);
    assert_int_equal(event_retry_ms(MB_EHTTP, 503, 2), 4000);
    assert_int_equal(event_retry_ms(MB_ECONN, 0, 4), 16000);
    assert_int_equal(event_retry_ms(MB_ETIMEOUT, 0, 5), 30000);
    assert_int_equal(event_retry_ms(MB_ECONN, 0, EVENT_WRITE_RETRIES), -1);
    long total = 0;
    for (unsigned a = 0; event_retry_ms(MB_EHTTP, 429, a) >= 0; a++)
        total += event_retry_ms(MB_EHTTP, 429, a);
    assert_true(total >= 60000); /* a minute of 429s loses nothing */
    /* what will not: the request itself is wrong, or the object or its namespace is gone */
    assert_int_equal(event_retry_ms(MB_EHTTP, 400, 0), -1);
    assert_int_equal(event_retry_ms(MB_EFORBIDDEN, 403, 0), -1);
    assert_int_equal(event_retry_ms(MB_EINVALID, 422, 0), -1);
    assert_int_equal(event_retry_ms(MB_ENOTFOUND, 404, 0), -1);
    assert_int_equal(event_retry_ms(MB_ENOMEM, 0, 0), -1);
    assert_int_equal(event_retry_ms(MB_ESTOPPED, 0, 0), -1);
}

static void test_object_from_json(void **state)
{
    (void)state;
    event_object o;
    cJSON *watched = cJSON_Parse("{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\",\"metadata\":{\"name\":\"web\","
                                 "\"namespace\":\"ns\",\"uid\":\"u1\",\"resourceVersion\":\"7\"}}");
    cJSON *listed = cJSON_Parse("{\"metadata\":{\"name\":\"web\",\"namespace\":\"ns\",\"uid\":\"u1\"}}");
    cJSON *nameless = cJSON_Parse("{\"metadata\":{}}");

    assert_int_equal(event_object_from_json(&o, watched, "Other", "v9"), 0);
    assert_string_equal(o.kind, "Deployment");
    assert_string_equal(o.api_version, "apps/v1");
    assert_string_equal(o.namespace, "ns");
    assert_string_equal(o.name, "web");
    assert_string_equal(o.uid, "u1");
    assert_string_equal(o.resource_version, "7");

    assert_int_equal(event_object_from_json(&o, listed, "Deployment", "apps/v1"), 0);
    assert_string_equal(o.kind, "Deployment");
    assert_string_equal(o.api_version, "apps/v1");
    assert_null(o.resource_version);

    assert_int_equal(event_object_from_json(&o, nameless, "Deployment", "apps/v1"), MB_EINVAL);
    cJSON_Delete(watched);
    cJSON_Delete(listed);
    cJSON_Delete(nameless);
}

static void test_planned(void **state)
{
    (void)state;
    event_planned ev[2];
    size_t n = 0;
    assert_int_equal(event_plan(ev, &n, 2, "Warning", "GateBlocked", "gate %s: %d", "slo", 3), 0);
    assert_int_equal(event_plan(ev, &n, 2, "Normal", "Published", "%s", "in ConfigMap kfm-policy"), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ev[0].type, "Warning");
    assert_string_equal(ev[0].reason, "GateBlocked");
    assert_string_equal(ev[0].message, "gate slo: 3");
    assert_string_equal(ev[1].type, "Normal");
    assert_string_equal(ev[1].reason, "Published");
    assert_string_equal(ev[1].message, "in ConfigMap kfm-policy");
    /* full: left out, no error, the others untouched */
    assert_int_equal(event_plan(ev, &n, 2, "Warning", "Third", "dropped"), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ev[1].reason, "Published");
    event_record_planned(NULL, NULL, ev, n); /* a NULL recorder records nothing */
    for (size_t i = 0; i < n; i++)
        free(ev[i].message);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_patch),
        cmocka_unit_test(test_retry_policy),
        cmocka_unit_test(test_object_from_json),
        cmocka_unit_test(test_planned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

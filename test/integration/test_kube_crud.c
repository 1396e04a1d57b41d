/*
 * The client's verbs against a real kube-apiserver: create, get, update with a
 * resourceVersion precondition (a stale one is MB_ECONFLICT), merge and
 * strategic merge patches, delete, on a ConfigMap and on a Deployment. Each
 * test works in its own namespace.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kube_itest.h"

#include "kube/client.h"
#include "util/error.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
    return itest_fixture_setup(state, "crud");
}

static void set_data(cJSON *cm, const char *key, const char *value)
{
    cJSON *data = json_ensure_object(cm, "data", NULL);
    assert_non_null(data);
    assert_int_equal(json_set_str(data, key, value), 0);
}

static void test_configmap_crud(void **state)
{
    itest_fixture *f = itest_need(state);
    kube_client *c = f->c;
    cJSON *cm = itest_json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"settings\"},"
                           "\"data\":{\"a\":\"1\"}}");
    cJSON *created = NULL, *got = NULL, *edit = NULL, *updated = NULL, *stale = NULL, *patched = NULL;
    char *rv1;

    /* create */
    assert_int_equal(kube_create(&created, c, &KUBE_CONFIGMAPS, f->ns, cm), 0);
    assert_string_equal(json_str(created, "metadata", "namespace", NULL), f->ns);
    assert_non_null(json_str(created, "metadata", "uid", NULL));
    rv1 = strdup(json_str(created, "metadata", "resourceVersion", NULL));

    /* creating it again: AlreadyExists */
    assert_int_equal(kube_create(NULL, c, &KUBE_CONFIGMAPS, f->ns, cm), MB_EEXISTS);
    assert_int_equal(kube_status_last()->code, 409);
    assert_string_equal(kube_status_last()->reason, "AlreadyExists");

    /* get */
    assert_int_equal(kube_get(&got, c, &KUBE_CONFIGMAPS, f->ns, "settings"), 0);
    assert_string_equal(json_str(got, "data", "a", NULL), "1");
    assert_string_equal(json_str(got, "metadata", "resourceVersion", NULL), rv1);

    /* update with the current resourceVersion */
    edit = cJSON_Duplicate(got, 1);
    set_data(edit, "a", "2");
    assert_int_equal(kube_update(&updated, c, &KUBE_CONFIGMAPS, f->ns, edit, NULL), 0);
    assert_string_equal(json_str(updated, "data", "a", NULL), "2");
    assert_string_not_equal(json_str(updated, "metadata", "resourceVersion", NULL), rv1);

    /* update with the stale one: conflict, and the server keeps "2" */
    stale = cJSON_Duplicate(got, 1);
    set_data(stale, "a", "3");
    assert_int_equal(kube_update(NULL, c, &KUBE_CONFIGMAPS, f->ns, stale, NULL), MB_ECONFLICT);
    assert_int_equal(kube_status_last()->code, 409);
    assert_string_equal(kube_status_last()->reason, "Conflict");
    cJSON_Delete(got);
    got = NULL;
    assert_int_equal(kube_get(&got, c, &KUBE_CONFIGMAPS, f->ns, "settings"), 0);
    assert_string_equal(json_str(got, "data", "a", NULL), "2");

    /* merge patch: null removes a key */
    assert_int_equal(kube_patch(&patched, c, &KUBE_CONFIGMAPS, f->ns, "settings", NULL, KUBE_PATCH_MERGE,
                                "{\"data\":{\"a\":null,\"b\":\"x\"}}"),
                     0);
    assert_null(json_get(patched, "data", "a", NULL));
    assert_string_equal(json_str(patched, "data", "b", NULL), "x");
    cJSON_Delete(patched);
    patched = NULL;

    /* strategic merge patch */
    assert_int_equal(kube_patch(&patched, c, &KUBE_CONFIGMAPS, f->ns, "settings", NULL, KUBE_PATCH_STRATEGIC,
                                "{\"metadata\":{\"labels\":{\"tier\":\"web\"}},\"data\":{\"c\":\"y\"}}"),
                     0);
    assert_string_equal(json_str(patched, "metadata", "labels", "tier", NULL), "web");
    assert_string_equal(json_str(patched, "data", "b", NULL), "x");
    assert_string_equal(json_str(patched, "data", "c", NULL), "y");

    /* delete, then it is gone */
    assert_int_equal(kube_delete(c, &KUBE_CONFIGMAPS, f->ns, "settings", NULL), 0);
    cJSON_Delete(got);
    got = NULL;
    assert_int_equal(kube_get(&got, c, &KUBE_CONFIGMAPS, f->ns, "settings"), MB_ENOTFOUND);
    assert_null(got);
    assert_int_equal(kube_status_last()->code, 404);
    assert_int_equal(kube_delete(c, &KUBE_CONFIGMAPS, f->ns, "settings", NULL), MB_ENOTFOUND);

    free(rv1);
    cJSON_Delete(cm);
    cJSON_Delete(created);
    cJSON_Delete(edit);
    cJSON_Delete(updated);
    cJSON_Delete(stale);
    cJSON_Delete(patched);
}

static const char *container_image(const cJSON *deploy, const char *name)
{
    const cJSON *ctr;
    cJSON_ArrayForEach(ctr, json_get(deploy, "spec", "template", "spec", "containers", NULL))
        if (strcmp(json_str(ctr, "name", NULL), name) == 0)
            return json_str(ctr, "image", NULL);
    return NULL;
}

static void test_deployment_crud(void **state)
{
    itest_fixture *f = itest_need(state);
    kube_client *c = f->c;
    cJSON *d = itest_json("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\"},"
                          "\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
                          "\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":["
                          "{\"name\":\"app\",\"image\":\"registry.local/app:1\"},"
                          "{\"name\":\"sidecar\",\"image\":\"registry.local/sidecar:1\"}]}}}}");
    cJSON *created = NULL, *got = NULL, *patched = NULL, *stale = NULL, *updated = NULL;
    int err = 0;

    assert_int_equal(kube_create(&created, c, &KUBE_DEPLOYMENTS, f->ns, d), 0);
    assert_int_equal(json_int(0, created, "metadata", "generation", NULL), 1);
    assert_int_equal(kube_get(&got, c, &KUBE_DEPLOYMENTS, f->ns, "web"), 0);
    assert_string_equal(container_image(got, "app"), "registry.local/app:1");
    stale = cJSON_Duplicate(created, 1);

    /* Strategic merge merges containers by name: the sidecar stays. */
    assert_int_equal(kube_patch(&patched, c, &KUBE_DEPLOYMENTS, f->ns, "web", NULL, KUBE_PATCH_STRATEGIC,
                                "{\"spec\":{\"template\":{\"spec\":{\"containers\":"
                                "[{\"name\":\"app\",\"image\":\"registry.local/app:2\"}]}}}}"),
                     0);
    assert_string_equal(container_image(patched, "app"), "registry.local/app:2");
    assert_string_equal(container_image(patched, "sidecar"), "registry.local/sidecar:1");
    assert_int_equal(json_int(0, patched, "metadata", "generation", NULL), 2);
    cJSON_Delete(patched);
    patched = NULL;

    /* A merge patch replaces the list as a whole. */
    assert_int_equal(kube_patch(&patched, c, &KUBE_DEPLOYMENTS, f->ns, "web", NULL, KUBE_PATCH_MERGE,
                                "{\"spec\":{\"replicas\":3,\"template\":{\"spec\":{\"containers\":"
                                "[{\"name\":\"app\",\"image\":\"registry.local/app:3\"}]}}}}"),
                     0);
    assert_int_equal(json_int(0, patched, "spec", "replicas", NULL), 3);
    assert_int_equal(cJSON_GetArraySize(json_get(patched, "spec", "template", "spec", "containers", NULL)), 1);
    assert_string_equal(container_image(patched, "app"), "registry.local/app:3");

    /* An update from the object as first created is stale. */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(stale, "spec"), "replicas", cJSON_CreateNumber(5));
    assert_int_equal(kube_update(NULL, c, &KUBE_DEPLOYMENTS, f->ns, stale, NULL), MB_ECONFLICT);

    /* Read-modify-write with the current resourceVersion; the deployment
     * controller also writes the object, so a conflict means read again. */
    for (int attempt = 0; attempt < 5; attempt++) {
        cJSON *cur = NULL;
        assert_int_equal(kube_get(&cur, c, &KUBE_DEPLOYMENTS, f->ns, "web"), 0);
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(cur, "spec"), "replicas", cJSON_CreateNumber(2));
        err = kube_update(&updated, c, &KUBE_DEPLOYMENTS, f->ns, cur, NULL);
        cJSON_Delete(cur);
        if (err != MB_ECONFLICT)
            break;
    }
    assert_int_equal(err, 0);
    assert_int_equal(json_int(0, updated, "spec", "replicas", NULL), 2);

    kube_delete_opts del = {.propagation_policy = "Background"};
    assert_int_equal(kube_delete(c, &KUBE_DEPLOYMENTS, f->ns, "web", &del), 0);
    cJSON_Delete(got);
    got = NULL;
    assert_int_equal(kube_get(&got, c, &KUBE_DEPLOYMENTS, f->ns, "web"), MB_ENOTFOUND);

    cJSON_Delete(d);
    cJSON_Delete(created);
    cJSON_Delete(patched);
    cJSON_Delete(stale);
    cJSON_Delete(updated);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_configmap_crud, setup, itest_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_deployment_crud, setup, itest_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Status writes against a real kube-apiserver: kube_patch_status sends a JSON
 * merge patch to /status carrying the resourceVersion the object was read at.
 * A stale one meets 409 and leaves the object as it was; the current one
 * changes the status alone, nested keys that went away included, and every
 * other field stays. ryw_status_write, the one status write of the
 * controllers, goes through it: one PATCH, no PUT, and a status field the
 * writer's (trimmed) view did not hold is kept, where a PUT of the whole
 * object would have cleared it. The resource is a CRD of this test's own
 * (statuswrites.itest.membrane.dev, with the status subresource), installed
 * when missing and deleted at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kube_itest.h"

#include "kube/client.h"
#include "kube/config.h"
#include "runtime/ryw.h"
#include "util/error.h"
#include "util/json.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const kube_resource STATUSWRITES = {"itest.membrane.dev", "v1", "statuswrites", "StatusWrite", true};

#define CRD_NAME "statuswrites.itest.membrane.dev"

static atomic_int puts_seen, patches_seen;

static void count_answer(const char *method, long status)
{
    (void)status;
    if (strcmp(method, "PUT") == 0)
        atomic_fetch_add(&puts_seen, 1);
    else if (strcmp(method, "PATCH") == 0)
        atomic_fetch_add(&patches_seen, 1);
}

typedef struct {
    kube_client *c; /* counts its PUTs and PATCHes */
    char *ns;
} fixture;

static cJSON *crd_json(void)
{
    return itest_json(
        "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
        "\"metadata\":{\"name\":\"" CRD_NAME "\"},\"spec\":{\"group\":\"itest.membrane.dev\",\"scope\":\"Namespaced\","
        "\"names\":{\"plural\":\"statuswrites\",\"singular\":\"statuswrite\",\"kind\":\"StatusWrite\","
        "\"listKind\":\"StatusWriteList\"},\"versions\":[{\"name\":\"v1\",\"served\":true,\"storage\":true,"
        "\"subresources\":{\"status\":{}},\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\",\"properties\":{"
        "\"spec\":{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true},"
        "\"status\":{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true}}}}}]}}");
}

/* The CRD is there and Established: created when missing, waited for while a previous run's is being deleted. */
static bool crd_established(void *ctx)
{
    kube_client *c = ctx;
    cJSON *crd = NULL;
    const cJSON *cd;
    bool ok = false;
    int err = kube_get(&crd, c, &KUBE_CUSTOMRESOURCEDEFINITIONS, NULL, CRD_NAME);
    if (err == MB_ENOTFOUND) {
        cJSON *want = crd_json();
        err = kube_create(NULL, c, &KUBE_CUSTOMRESOURCEDEFINITIONS, NULL, want);
        cJSON_Delete(want);
        if (err < 0 && err != MB_EEXISTS)
            fail_msg("cannot create the CRD %s: %s", CRD_NAME, mb_error_last());
        return false;
    }
    if (err < 0 || json_get(crd, "metadata", "deletionTimestamp", NULL)) {
        cJSON_Delete(crd);
        return false;
    }
    cJSON_ArrayForEach(cd, json_get(crd, "status", "conditions", NULL))
        ok |= strcmp(json_str(cd, "type", NULL) ? json_str(cd, "type", NULL) : "", "Established") == 0 &&
              strcmp(json_str(cd, "status", NULL) ? json_str(cd, "status", NULL) : "", "True") == 0;
    cJSON_Delete(crd);
    return ok;
}

typedef struct {
    kube_client *c;
    const char *ns;
} served_ctx;

/* Established comes a moment before the resource is served: a list answers 404 until then. */
static bool crd_served(void *arg)
{
    served_ctx *s = arg;
    cJSON *list = NULL;
    int err = kube_list(&list, s->c, &STATUSWRITES, s->ns, NULL);
    cJSON_Delete(list);
    return err == 0;
}

static int setup(void **state)
{
    kube_config *cfg = NULL;
    kube_client_opts o = {.on_answer = count_answer};
    fixture *f;
    *state = NULL;
    if (!getenv("KUBECONFIG"))
        return 0; /* the tests skip */
    f = calloc(1, sizeof(*f));
    assert_non_null(f);
    if (kube_config_load(&cfg, NULL, NULL) < 0 || kube_client_new(&f->c, cfg, &o) < 0)
        fail_msg("cannot make a client: %s", mb_error_last());
    if (!itest_eventually(crd_established, f->c, 60000))
        fail_msg("the CRD %s was not there and Established within 60 s", CRD_NAME);
    f->ns = itest_namespace_new(f->c, "status-write");
    served_ctx s = {f->c, f->ns};
    if (!itest_eventually(crd_served, &s, 30000))
        fail_msg("statuswrites are not served 30 s after the CRD was Established");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (!f)
        return 0;
    itest_namespace_delete(f->c, f->ns);
    /* the CRD goes too, best effort (its objects go with it) */
    if (kube_delete(f->c, &KUBE_CUSTOMRESOURCEDEFINITIONS, NULL, CRD_NAME, NULL) < 0)
        print_message("cannot delete the CRD %s: %s\n", CRD_NAME, mb_error_last());
    kube_client_free(f->c);
    free(f);
    return 0;
}

static fixture *need(void **state)
{
    if (!*state)
        skip();
    return *state;
}

/* A StatusWrite named name, with a spec and a label, and its status set to status: as the server answers. */
static cJSON *make(fixture *f, const char *name, const char *status)
{
    cJSON *obj = itest_json("{\"apiVersion\":\"itest.membrane.dev/v1\",\"kind\":\"StatusWrite\","
                            "\"metadata\":{\"name\":\"%s\",\"labels\":{\"app\":\"kfm-api\"}},"
                            "\"spec\":{\"image\":{\"digest\":\"sha256:aa\"},\"replicas\":2}}",
                            name);
    cJSON *created = NULL, *written = NULL, *st = cJSON_Parse(status);
    assert_non_null(st);
    assert_int_equal(kube_create(&created, f->c, &STATUSWRITES, f->ns, obj), 0);
    assert_int_equal(kube_patch_status(&written, f->c, &STATUSWRITES, f->ns, created, st), 0);
    assert_true(cJSON_Compare(json_get(written, "status", NULL), st, true));
    cJSON_Delete(obj);
    cJSON_Delete(created);
    cJSON_Delete(st);
    return written;
}

static void assert_status(fixture *f, const char *name, const char *want)
{
    cJSON *got = NULL, *w = cJSON_Parse(want);
    assert_non_null(w);
    assert_int_equal(kube_get(&got, f->c, &STATUSWRITES, f->ns, name), 0);
    if (!cJSON_Compare(json_get(got, "status", NULL), w, true)) {
        char *s = cJSON_PrintUnformatted(json_get(got, "status", NULL));
        fail_msg("the status of %s is %s, not %s", name, s ? s : "(none)", want);
    }
    /* only the status changed */
    assert_string_equal(json_str(got, "spec", "image", "digest", NULL), "sha256:aa");
    assert_int_equal(json_int(0, got, "spec", "replicas", NULL), 2);
    assert_string_equal(json_str(got, "metadata", "labels", "app", NULL), "kfm-api");
    cJSON_Delete(got);
    cJSON_Delete(w);
}

#define FIRST                                                                                                          \
    "{\"phase\":\"Verifying\",\"verification\":{\"startedAt\":\"2026-12-06T09:00:00Z\","                               \
    "\"results\":[{\"name\":\"health\",\"passed\":true}]},\"lastRollback\":{\"reason\":\"r\",\"approver\":\"a\"},"     \
    "\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"},{\"type\":\"Reconciling\",\"status\":\"True\"}]}"
#define SECOND                                                                                                         \
    "{\"phase\":\"Observing\",\"verification\":{\"startedAt\":\"2026-12-06T09:01:00Z\"},"                              \
    "\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}]}"

/* The version read is the lock: stale, 409 and nothing changes; current, the status becomes the new one exactly. */
static void test_patch_status_is_an_optimistic_lock(void **state)
{
    fixture *f = need(state);
    cJSON *first = make(f, "lock", FIRST), *stale = NULL, *second = cJSON_Parse(SECOND), *answer = NULL;
    const char *rv;
    assert_non_null(second);

    /* another write comes between: what was read (first) is stale now */
    cJSON *other = cJSON_Parse("{\"phase\":\"Verifying\",\"verification\":{\"startedAt\":\"2026-12-06T09:00:30Z\"}}");
    assert_int_equal(kube_patch_status(&stale, f->c, &STATUSWRITES, f->ns, first, other), 0);
    assert_string_not_equal(json_str(stale, "metadata", "resourceVersion", NULL),
                            json_str(first, "metadata", "resourceVersion", NULL));
    assert_int_equal(kube_patch_status(NULL, f->c, &STATUSWRITES, f->ns, first, second), MB_ECONFLICT);
    assert_int_equal(kube_status_last()->code, 409);
    /* that write removed lastRollback and conditions: the status is other, exactly */
    assert_status(f, "lock", "{\"phase\":\"Verifying\",\"verification\":{\"startedAt\":\"2026-12-06T09:00:30Z\"}}");

    /* from the current version: applied, keys that went away (nested ones too) are gone */
    assert_int_equal(kube_patch_status(&answer, f->c, &STATUSWRITES, f->ns, stale, second), 0);
    rv = json_str(answer, "metadata", "resourceVersion", NULL);
    assert_non_null(rv);
    assert_string_not_equal(rv, json_str(stale, "metadata", "resourceVersion", NULL));
    assert_status(f, "lock", SECOND);

    /* a status that is not an object is refused before anything is sent */
    assert_int_equal(kube_patch_status(NULL, f->c, &STATUSWRITES, f->ns, answer, NULL), MB_EINVAL);

    cJSON_Delete(first);
    cJSON_Delete(stale);
    cJSON_Delete(other);
    cJSON_Delete(second);
    cJSON_Delete(answer);
}

/*
 * ryw_status_write, as every controller writes its status: one PATCH and no PUT; a field of the status the
 * writer's view did not hold (a cache trims what no one reads) is kept, and a stale view meets 409.
 */
static void test_ryw_status_write_patches(void **state)
{
    fixture *f = need(state);
    ryw *w = NULL;
    cJSON *cur = make(f, "ryw", "{\"phase\":\"Verifying\",\"kept\":{\"by\":\"someone else\"},\"n\":1}");
    cJSON *view = cJSON_Duplicate(cur, true), *status = cJSON_Parse("{\"phase\":\"Observing\",\"n\":2}");
    cJSON *later = cJSON_Parse("{\"phase\":\"Succeeded\",\"n\":3}");
    assert_non_null(view);
    assert_non_null(status);
    assert_non_null(later);
    assert_int_equal(ryw_new(&w), 0);
    char *key = NULL;
    assert_true(asprintf(&key, "%s/ryw", f->ns) > 0);

    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(view, "status"), "kept");
    atomic_store(&puts_seen, 0);
    atomic_store(&patches_seen, 0);
    assert_int_equal(ryw_status_write(&view, w, f->c, &STATUSWRITES, f->ns, key, status), 0);
    assert_int_equal(atomic_load(&puts_seen), 0);
    assert_int_equal(atomic_load(&patches_seen), 1);
    assert_string_equal(json_str(view, "status", "phase", NULL), "Observing"); /* *cur is the answer */
    assert_status(f, "ryw", "{\"phase\":\"Observing\",\"kept\":{\"by\":\"someone else\"},\"n\":2}");

    /* cur was read before that write: stale, 409, and the status stays */
    assert_int_equal(ryw_status_write(&cur, w, f->c, &STATUSWRITES, f->ns, key, later), MB_ECONFLICT);
    assert_status(f, "ryw", "{\"phase\":\"Observing\",\"kept\":{\"by\":\"someone else\"},\"n\":2}");

    free(key);
    ryw_free(w);
    cJSON_Delete(cur);
    cJSON_Delete(view);
    cJSON_Delete(status);
    cJSON_Delete(later);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patch_status_is_an_optimistic_lock),
        cmocka_unit_test(test_ryw_status_write_patches),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

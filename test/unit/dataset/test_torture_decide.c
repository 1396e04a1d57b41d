/*
 * Allocation-failure torture of dataset_decide (test/support/torture.h) at
 * each step of a promotion's life: the first look, downloads running with
 * progress, a transient failure, a failed gate, every gate passed with the
 * receipt sealed, the publication, Promoted, a replaced version, revoke and
 * deletion. A decision that fails returns an error with an empty plan; every
 * one that succeeds makes the same plan as the unhindered run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dataset/decide.h"
#include "decide_fixture.h"
#include "torture.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    dfx f;
    int rc;
    char *first;
} tctx;

static char *plan_text(const dataset_plan *p)
{
    char *text = NULL, *status = p->status ? cJSON_PrintUnformatted(p->status) : NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    fprintf(f,
            "status %s\naction %d phase %s outcome %s index %s entry %s replaced %s unpublish %s drop %d requeue %ld\n",
            status ? status : "-", p->action, p->phase ? p->phase : "-", p->outcome ? p->outcome : "-", p->index,
            p->entry ? p->entry : "-", p->expect_replaced ? p->expect_replaced : "-", p->unpublish_ref, p->drop_work,
            p->requeue_ms);
    for (size_t i = 0; i < p->n_events; i++)
        fprintf(f, "event %s %s %s\n", p->events[i].type, p->events[i].reason, p->events[i].message);
    fclose(f);
    free(status);
    return text;
}

static int run(void *arg)
{
    tctx *t = arg;
    t->f.obs.promotion = t->f.p;
    t->f.obs.index = t->f.index;
    return t->rc = dataset_decide(&t->f.plan, &t->f.obs);
}

static void check(void *arg)
{
    tctx *t = arg;
    char *text = plan_text(&t->f.plan);
    if (!t->first) {
        t->first = text;
        return;
    }
    if (strcmp(text, t->first) != 0) {
        size_t k = 0;
        while (text[k] && text[k] == t->first[k])
            k++;
        fail_msg("the plan differs from the unhindered run's at byte %zu:\n%.300s\nnot\n%.300s", k,
                 text + (k > 100 ? k - 100 : 0), t->first + (k > 100 ? k - 100 : 0));
    }
    free(text);
}

static void clear(void *arg)
{
    tctx *t = arg;
    static const dataset_plan empty;
    if (t->rc < 0 && memcmp(&t->f.plan, &empty, sizeof(empty)) != 0)
        fail_msg("dataset_decide failed (%s) but left a plan", mb_error_last());
    dataset_plan_clear(&t->f.plan);
}

/* Tortures the decision as observed, checks its action, then applies its status and index write. */
static void torture(tctx *t, dataset_action action)
{
    torture_case tc = {.name = "dataset_decide",
                       .run = run,
                       .check = check,
                       .clear = clear,
                       .ctx = t,
                       .errors = {MB_ERROR},
                       .may_succeed = true};
    assert_true(torture_check(&tc) > 0);
    free(t->first);
    t->first = NULL;
    dataset_plan_clear(&t->f.plan);
    assert_int_equal(run(t), 0);
    assert_int_equal(t->f.plan.action, action);
    if (t->f.plan.status) {
        cJSON_DeleteItemFromObjectCaseSensitive(t->f.p, "status");
        cJSON_AddItemToObject(t->f.p, "status", cJSON_Duplicate(t->f.plan.status, true));
    }
    if (action == DATASET_ACT_PUBLISH) {
        cJSON *data = cJSON_GetObjectItemCaseSensitive(t->f.index, "data");
        cJSON_DeleteItemFromObject(data, "kfm.hydrology.wells");
        cJSON_AddStringToObject(data, "kfm.hydrology.wells", t->f.plan.entry);
    }
    dataset_plan_clear(&t->f.plan);
}

static void test_life(void **state)
{
    tctx t = {0};
    (void)state;
    t.f.p = dfx_promotion("CC-BY-4.0", "");
    t.f.index = cJSON_Parse(
        "{\"metadata\":{\"name\":\"kfm-published-datasets\"},\"data\":{\"kfm.hydrology.wells\":"
        "\"{\\\"auditRef\\\":\\\"sha256:1111111111111111111111111111111111111111111111111111111111"
        "111111\\\",\\\"datasetID\\\":\\\"kfm.hydrology.wells\\\",\\\"versionID\\\":\\\"1\\\"}\"}}");
    assert_non_null(t.f.p);
    assert_non_null(t.f.index);
    t.f.obs.now = FX_NOW;

    torture(&t, DATASET_ACT_FETCH); /* the first look */
    dfx_good_work(&t.f);
    t.f.art[0] = (dataset_item){.state = DATASET_ITEM_RUNNING, .bytes = 10, .total = 100};
    torture(&t, DATASET_ACT_NONE); /* downloading, with progress */
    t.f.obs.work.docs[DATASET_DOC_PROV] = (dataset_item){.state = DATASET_ITEM_UNAVAILABLE, .message = "HTTP 503"};
    t.f.obs.work.attempts = 1;
    t.f.obs.work.failed_at = FX_NOW;
    torture(&t, DATASET_ACT_NONE); /* transient */
    dfx_good_work(&t.f);
    t.f.obs.now = FX_NOW + 30;
    torture(&t, DATASET_ACT_SEAL); /* every gate passed: sealed, naming the replaced entry */
    torture(&t, DATASET_ACT_PUBLISH);
    torture(&t, DATASET_ACT_NONE); /* Promoted */
    torture(&t, DATASET_ACT_NONE); /* steady */

    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(t.f.p, "spec"), "revoke", cJSON_CreateTrue());
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(t.f.p, "metadata"), "generation", cJSON_CreateNumber(4));
    torture(&t, DATASET_ACT_UNPUBLISH);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(t.f.index, "data"), "kfm.hydrology.wells");
    t.f.obs.work.removed = true;
    torture(&t, DATASET_ACT_NONE); /* Revoked, with its receipt */

    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(t.f.p, "spec"), "revoke", cJSON_CreateFalse());
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(t.f.p, "metadata"), "generation", cJSON_CreateNumber(5));
    dfx_good_work(&t.f);
    t.f.art[1].sha256_hex = FX_HEX_D;
    torture(&t, DATASET_ACT_NONE); /* Blocked: ChecksumsFailed */

    cJSON_AddStringToObject(cJSON_GetObjectItem(t.f.p, "metadata"), "deletionTimestamp", "2026-12-06T00:00:00Z");
    torture(&t, DATASET_ACT_REMOVE_FINALIZER);

    cJSON_Delete(t.f.p);
    cJSON_Delete(t.f.index);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_life),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

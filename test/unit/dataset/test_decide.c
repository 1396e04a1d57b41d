/*
 * dataset_decide: every phase, reason and gate of a DatasetPromotion (API.md
 * "DatasetPromotion"), in order; transient against terminal failures and the
 * backoff; the progress throttle; sealing the receipt before the index is
 * written, publishing, replacing another version, the index refusing;
 * revoke; deletion and the finalizer. Each test asserts the plan: status,
 * conditions, action, Events, outcome, requeue.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audit/receipt.h"
#include "dataset/decide.h"
#include "decide_fixture.h"
#include "runtime/conditions.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void init(dfx *f, const char *license, const char *extra)
{
    memset(f, 0, sizeof(*f));
    f->p = dfx_promotion(license, extra);
    assert_non_null(f->p);
    f->obs.promotion = f->p;
    f->obs.now = FX_NOW;
}

static void fin(dfx *f)
{
    dataset_plan_clear(&f->plan);
    cJSON_Delete(f->p);
    cJSON_Delete(f->index);
}

static void decide(dfx *f)
{
    dataset_plan_clear(&f->plan);
    f->obs.promotion = f->p;
    f->obs.index = f->index;
    assert_int_equal(dataset_decide(&f->plan, &f->obs), 0);
}

/* The plan's status becomes the promotion's (as the status write would make it). */
static void apply(dfx *f)
{
    if (!f->plan.status)
        return;
    cJSON_DeleteItemFromObject(f->p, "status");
    cJSON_AddItemToObject(f->p, "status", cJSON_Duplicate(f->plan.status, true));
}

static const char *cond_field(const dfx *f, const char *type, const char *field)
{
    const cJSON *st = f->plan.status ? f->plan.status : json_get(f->p, "status", NULL);
    return json_str(conditions_get(st, type), field, NULL);
}

static const char *gate_message(const dfx *f, int i)
{
    return json_str(cJSON_GetArrayItem(json_get(f->plan.status, "gates", NULL), i), "message", NULL);
}

static bool gate_passed(const dfx *f, int i)
{
    return json_bool(false, cJSON_GetArrayItem(json_get(f->plan.status, "gates", NULL), i), "passed", NULL);
}

static void set_index(dfx *f, const char *key, const char *entry)
{
    if (!f->index) {
        f->index = cJSON_Parse("{\"metadata\":{\"name\":\"kfm-published-datasets\",\"namespace\":\"kfm\","
                               "\"resourceVersion\":\"5\"},\"data\":{}}");
    }
    cJSON *data = cJSON_GetObjectItemCaseSensitive(f->index, "data");
    cJSON_DeleteItemFromObject(data, key);
    if (entry)
        cJSON_AddStringToObject(data, key, entry);
}

static void assert_contains(const char *s, const char *needle)
{
    if (!s || !strstr(s, needle))
        fail_msg("\"%s\" does not contain \"%s\"", s ? s : "(null)", needle);
}

/* Runs a good promotion to Promoted: seal, publish (the index as written), promoted. */
static void promote(dfx *f)
{
    dfx_good_work(f);
    decide(f);
    assert_int_equal(f->plan.action, DATASET_ACT_SEAL);
    apply(f);
    decide(f);
    assert_int_equal(f->plan.action, DATASET_ACT_PUBLISH);
    set_index(f, "kfm.hydrology.wells", f->plan.entry);
    decide(f);
    assert_string_equal(f->plan.phase, "Promoted");
    apply(f);
}

/* ---- the finalizer and the first look -------------------------------------- */

static void test_finalizer_first(void **state)
{
    (void)state;
    dfx f;
    init(&f, "CC-BY-4.0", "");
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(f.p, "metadata"), "finalizers");
    decide(&f);
    assert_int_equal(f.plan.action, DATASET_ACT_ADD_FINALIZER);
    assert_null(f.plan.status);
    fin(&f);
}

static void test_validating_starts_transfers(void **state)
{
    (void)state;
    dfx f;
    init(&f, "CC-BY-4.0", "");
    decide(&f);
    assert_int_equal(f.plan.action, DATASET_ACT_FETCH);
    assert_string_equal(json_str(f.plan.status, "phase", NULL), "Validating");
    assert_string_equal(cond_field(&f, COND_RECONCILING, "status"), "True");
    assert_string_equal(cond_field(&f, COND_READY, "status"), "Unknown");
    assert_string_equal(cond_field(&f, "GatesPassed", "status"), "Unknown");
    assert_int_equal(json_int(0, f.plan.status, "observedGeneration", NULL), 3);
    /* seven gates, in API.md's order */
    static const char *const order[] = {"checksums",    "license",      "policy-label", "catalog-dcat",
                                        "catalog-stac", "catalog-prov", "links"};
    const cJSON *g = json_get(f.plan.status, "gates", NULL);
    assert_int_equal(cJSON_GetArraySize(g), 7);
    for (int i = 0; i < 7; i++)
        assert_string_equal(json_str(cJSON_GetArrayItem(g, i), "name", NULL), order[i]);
    assert_true(gate_passed(&f, 2)); /* policy-label needs nothing fetched */
    assert_false(gate_passed(&f, 0));
    assert_null(f.plan.outcome);
    assert_int_equal(f.plan.requeue_ms, DATASET_PROGRESS_MS);
    fin(&f);
}

/* ---- promotion ------------------------------------------------------------- */

static void test_promoted_with_receipt(void **state)
{
    (void)state;
    dfx f;
    init(&f, "CC-BY-4.0", "");
    dfx_good_work(&f);
    decide(&f);
    /* every gate passed: the receipt is sealed into the status before anything is written */
    assert_int_equal(f.plan.action, DATASET_ACT_SEAL);
    for (int i = 0; i < 7; i++)
        assert_true(gate_passed(&f, i));
    assert_string_equal(json_str(f.plan.status, "phase", NULL), "Validating");
    assert_string_equal(cond_field(&f, COND_RECONCILING, "reason"), "Publishing");
    const cJSON *r = json_get(f.plan.status, "receipt", NULL);
    assert_non_null(f.plan.receipt);
    assert_string_equal(json_str(r, "outcome", NULL), "Promoted");
    assert_int_equal(json_int(0, r, "generation", NULL), 3);
    assert_string_equal(json_str(r, "prevAuditRef", NULL), "");
    assert_int_equal(cJSON_GetArraySize(json_get(r, "gates", NULL)), 7);
    assert_string_equal(json_str(cJSON_GetArrayItem(json_get(r, "artifacts", NULL), 0), "digest", NULL),
                        "sha256:" FX_HEX_A);
    assert_string_equal(json_str(r, "documents", "stac", NULL), "sha256:" FX_HEX_D);
    assert_string_equal(json_str(r, "indexEntry", "policyLabel", NULL), "public");
    assert_null(json_get(r, "indexEntry", "auditRef", NULL));
    assert_null(json_get(r, "replacedEntry", NULL));
    assert_non_null(json_str(r, "inputsDigest", NULL));
    char ref[AUDIT_REF_SIZE];
    assert_int_equal(audit_receipt_ref(ref, r, f.p), 0);
    assert_string_equal(ref, json_str(r, "auditRef", NULL));
    /* the entry carries the receipt's auditRef */
    cJSON *e = cJSON_Parse(f.plan.entry);
    assert_string_equal(json_str(e, "auditRef", NULL), ref);
    assert_string_equal(json_str(e, "versionID", NULL), "2026-03-01.1");
    cJSON_Delete(e);
    assert_null(f.plan.outcome);

    apply(&f);
    f.obs.work = (dataset_work){0}; /* the work may be gone (a restart): the sealed receipt is enough */
    decide(&f);
    assert_int_equal(f.plan.action, DATASET_ACT_PUBLISH);
    assert_null(f.plan.expect_replaced);
    assert_null(f.plan.status); /* nothing changes until it is written */
    set_index(&f, "kfm.hydrology.wells", f.plan.entry);
    decide(&f);
    assert_string_equal(json_str(f.plan.status, "phase", NULL), "Promoted");
    assert_string_equal(cond_field(&f, COND_READY, "status"), "True");
    assert_null(conditions_get(f.plan.status, COND_RECONCILING));
    assert_null(conditions_get(f.plan.status, COND_STALLED));
    assert_string_equal(cond_field(&f, "Published", "status"), "True");
    assert_string_equal(cond_field(&f, "GatesPassed", "status"), "True");
    assert_string_equal(f.plan.outcome, "Promoted");
    assert_int_equal(f.plan.n_events, 1);
    assert_string_equal(f.plan.events[0].reason, "Promoted");
    assert_contains(f.plan.events[0].message, ref);
    assert_true(f.plan.drop_work);
    assert_int_equal(f.plan.requeue_ms, DATASET_RESYNC_MS);
    /* the receipt is unchanged by the publication */
    assert_string_equal(json_str(f.plan.status, "receipt", "auditRef", NULL), ref);
    apply(&f);
    /* looked at again: nothing changes, no Event, no second count */
    decide(&f);
    assert_null(f.plan.status);
    assert_null(f.plan.outcome);
    assert_int_equal(f.plan.n_events, 0);
    assert_int_equal(f.plan.action, DATASET_ACT_NONE);
    fin(&f);
}

static void test_entry_removed_by_hand_restored(void **state)
{
    (void)state;
    dfx f;
    init(&f, "CC-BY-4.0", "");
    promote(&f);
    set_index(&f, "kfm.hydrology.wells", NULL);
    decide(&f);
    assert_int_equal(f.plan.action, DATASET_ACT_PUBLISH);
    assert_int_equal(f.plan.n_events, 1);
    assert_string_equal(f.plan.events[0].reason, "IndexEntryRestored");
    assert_null(f.plan.outcome);
    fin(&f);
}

static void test_replaces_other_version(void **state)
{
    (void)state;
    dfx f;
    const char *old =
        "{\"auditRef\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
        "\"catalog\":{\"dcat\":\"d\",\"prov\":\"p\",\"stac\":\"s\"},\"datasetID\":\"kfm.hydrology.wells\","
        "\"license\":\"MIT\",\"policyLabel\":\"public\",\"versionID\":\"2025-01-01.1\"}";
    init(&f, "CC-BY-4.0", "");
    set_index(&f, "kfm.hydrology.wells", old);
    set_index(&f, "kfm.other", "{\"versionID\":\"x\"}");
    dfx_good_work(&f);
    decide(&f);
    assert_int_equal(f.plan.action, DATASET_ACT_SEAL);
    assert_string_equal(json_str(f.plan.status, "receipt", "replacedEntry", NULL), old);
    apply(&f);
    decide(&f);
    assert_int_equal(f.plan.action, DATASET_ACT_PUBLISH);
    assert_string_equal(f.plan.expect_replaced, old);
    /* another version came in meanwhile: sealed again, naming it, chained to the first */
    const char *first = json_str(f.p, "status", "receipt", "auditRef", NULL);
    char firstref[AUDIT_REF_SIZE];
    snprintf(firstref, sizeof(firstref), "%s", first);
    const char *newer = "{\"auditRef\":\"sha256:2222222222222222222222222222222222222222222222222222222222222222\","
                        "\"datasetID\":\"kfm.hydrology.wells\",\"versionID\":\"2025-06-01.1\"}";
    set_index(&f, "kfm.hydrology.wells", newer);
    decide(&f);
    assert_int_equal(f.plan.action, DATASET_ACT_SEAL);
    assert_string_equal(json_str(f.plan.status, "receipt", "replacedEntry", NULL), newer);
    assert_string_equal(json_str(f.plan.status, "receipt", "prevAuditRef", NULL), firstref);
    fin(&f);
}

static void test_index_refuses(void **state)
{
    (void)state;
    dfx f;
    /* the same version published with another entry: IndexConflict */
    init(&f, "CC-BY-4.0", "");
    set_index(&f, "kfm.hydrology.wells",
              "{\"auditRef\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
              "\"datasetID\":\"kfm.hydrology.wells\",\"versionID\":\"2026-03-01.1\"}");
    dfx_good_work(&f);
    decide(&f);
    assert_string_equal(json_str(f.plan.status, "phase", NULL), "Blocked");
    assert_string_equal(cond_field(&f, COND_STALLED, "reason"), "IndexConflict");
    assert_contains(cond_field(&f, COND_STALLED, "message"), "new versionID");
    assert_null(json_get(f.plan.status, "receipt", NULL));
    assert_int_equal(f.plan.action, DATASET_ACT_NONE);
    assert_string_equal(f.plan.outcome, "Blocked");
    fin(&f);

    /* an index that would pass 900 KiB: IndexFull */
    init(&f, "CC-BY-4.0", "");
    char *big = malloc(950 * 1024);
    memset(big, 'x', 950 * 1024 - 1);
    big[950 * 1024 - 1] = '\0';
    set_index(&f, "blob", big);
    free(big);
    dfx_good_work(&f);
    decide(&f);
    assert_string_equal(cond_field(&f, COND_STALLED, "reason"), "IndexFull");
    assert_contains(cond_field(&f, COND_STALLED, "message"), "900 KiB");
    fin(&f);
}

/* ---- each gate failing ------------------------------------------------------ */

typedef struct {
    const char *license, *extra;
    void (*spoil)(dfx *f);
    int gate;
    const char *reason, *needle;
} gate_case;

static void wrong_digest(dfx *f)
{
    f->art[1].sha256_hex = FX_HEX_D;
}
static void wrong_size(dfx *f)
{
    f->art[0].bytes = 99;
}
static void artifact_404(dfx *f)
{
    f->art[1] = (dataset_item){.state = DATASET_ITEM_REFUSED, .message = "the artifact answered HTTP 404"};
}
static const char *mismatch_stac =
    "{\"type\":\"Collection\",\"stac_version\":\"1.1.0\",\"id\":\"wells\",\"license\":\"MIT\",\"links\":[],"
    "\"assets\":{\"c\":{\"href\":\"" FX_B "\"}}}";
static void license_mismatch(dfx *f)
{
    f->obs.work.docs[DATASET_DOC_STAC].body = mismatch_stac;
    f->obs.work.docs[DATASET_DOC_STAC].len = strlen(mismatch_stac);
}
static const char *dcat_wrong_id =
    "{\"@context\":{\"dcat\":\"http://www.w3.org/ns/dcat#\",\"dct\":\"http://purl.org/dc/terms/\"},"
    "\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.other\",\"dct:license\":\"CC-BY-4.0\","
    "\"dcat:distribution\":{\"dcat:downloadURL\":{\"@id\":\"" FX_B "\"}}}";
static void dcat_identifier(dfx *f)
{
    f->obs.work.docs[DATASET_DOC_DCAT].body = dcat_wrong_id;
    f->obs.work.docs[DATASET_DOC_DCAT].len = strlen(dcat_wrong_id);
}
static const char *dcat_outside =
    "{\"@context\":{\"dcat\":\"http://www.w3.org/ns/dcat#\",\"dct\":\"http://purl.org/dc/terms/\"},"
    "\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.hydrology.wells\",\"dct:license\":\"CC-BY-4.0\","
    "\"dcat:distribution\":{\"dcat:downloadURL\":{\"@id\":\"https://elsewhere.example/x.csv\"}}}";
static void dcat_distribution(dfx *f)
{
    f->obs.work.docs[DATASET_DOC_DCAT].body = dcat_outside;
    f->obs.work.docs[DATASET_DOC_DCAT].len = strlen(dcat_outside);
}
static const char *stac_outside =
    "{\"type\":\"Collection\",\"stac_version\":\"1.1.0\",\"id\":\"wells\",\"license\":\"CC-BY-4.0\",\"links\":[],"
    "\"assets\":{\"c\":{\"href\":\"https://elsewhere.example/x.csv\"}}}";
static void stac_asset(dfx *f)
{
    f->obs.work.docs[DATASET_DOC_STAC].body = stac_outside;
    f->obs.work.docs[DATASET_DOC_STAC].len = strlen(stac_outside);
}
static const char *prov_other = "{\"prefix\":{\"kfm\":\"https://kfm.example/ns/\"},\"entity\":{\"kfm:v1\":{"
                                "\"kfm:dataset_version_id\":\"2025-01-01.1\"}},\"wasGeneratedBy\":{}}";
static void prov_entity(dfx *f)
{
    f->obs.work.docs[DATASET_DOC_PROV].body = prov_other;
    f->obs.work.docs[DATASET_DOC_PROV].len = strlen(prov_other);
}
static void prov_404(dfx *f)
{
    f->obs.work.docs[DATASET_DOC_PROV] = (dataset_item){.state = DATASET_ITEM_REFUSED,
                                                        .message = "the document answered HTTP 404"};
}
static void dead_link(dfx *f)
{
    f->links[1] = (dataset_item){.state = DATASET_ITEM_REFUSED,
                                 .message = "https://spdx.org/licenses/CC-BY-4.0 answered HTTP 404"};
}
static void no_links(dfx *f)
{
    f->obs.work.nlinks = 0;
}
static void nothing(dfx *f)
{
    (void)f;
}

static void test_each_gate_fails_alone(void **state)
{
    (void)state;
    static const gate_case cases[] = {
        {"CC-BY-4.0", "", wrong_digest, 0, "ChecksumsFailed", "spec.artifacts[1].digest"},
        {"CC-BY-4.0", "", wrong_size, 0, "ChecksumsFailed", "sizeBytes"},
        {"CC-BY-4.0", "", artifact_404, 0, "ChecksumsFailed", "HTTP 404"},
        {"Made-Up-License", "", nothing, 1, "LicenseFailed", "spec.license"},
        {"CC-BY-4.0", "", license_mismatch, 1, "LicenseFailed", "MIT"},
        {"CC-BY-4.0", "", nothing, 2, "PolicyLabelFailed", "spec.policyLabel"},
        {"CC-BY-4.0", "", dcat_identifier, 3, "CatalogDCATFailed", "kfm.hydrology.wells"},
        {"CC-BY-4.0", "", dcat_distribution, 3, "CatalogDCATFailed", "elsewhere.example"},
        {"CC-BY-4.0", "", stac_asset, 4, "CatalogSTACFailed", "elsewhere.example"},
        {"CC-BY-4.0", "", prov_entity, 5, "CatalogPROVFailed", "2026-03-01.1"},
        {"CC-BY-4.0", "", prov_404, 5, "CatalogPROVFailed", "cannot be evaluated"},
        {"CC-BY-4.0", "", dead_link, 6, "LinksFailed", "https://spdx.org/licenses/CC-BY-4.0"},
        {"CC-BY-4.0", "", no_links, 6, "LinksFailed", "nothing to check"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const gate_case *c = &cases[i];
        dfx f;
        init(&f, c->license, c->extra);
        if (strcmp(c->reason, "PolicyLabelFailed") == 0)
            cJSON_ReplaceItemInObject(cJSON_GetObjectItem(f.p, "spec"), "policyLabel", cJSON_CreateString("secret"));
        dfx_good_work(&f);
        c->spoil(&f);
        decide(&f);
        if (!f.plan.status || strcmp(json_str(f.plan.status, "phase", NULL), "Blocked") != 0)
            fail_msg("case %zu (%s): not Blocked", i, c->reason);
        assert_string_equal(cond_field(&f, COND_STALLED, "reason"), c->reason);
        assert_string_equal(cond_field(&f, COND_READY, "status"), "False");
        assert_null(conditions_get(f.plan.status, COND_RECONCILING));
        assert_string_equal(cond_field(&f, "GatesPassed", "status"), "False");
        assert_string_equal(cond_field(&f, "Published", "status"), "False");
        for (int g = 0; g < 7; g++)
            if (gate_passed(&f, g) == (g == c->gate))
                fail_msg("case %zu (%s): gate %d passed=%d: %s", i, c->reason, g, gate_passed(&f, g),
                         gate_message(&f, g));
        assert_contains(gate_message(&f, c->gate), c->needle);
        assert_contains(cond_field(&f, COND_STALLED, "message"), c->needle);
        assert_string_equal(f.plan.outcome, "Blocked");
        assert_int_equal(f.plan.n_events, 1);
        assert_string_equal(f.plan.events[0].type, "Warning");
        assert_string_equal(f.plan.events[0].reason, c->reason);
        assert_int_equal(f.plan.action, DATASET_ACT_NONE);
        assert_true(f.plan.drop_work);
        assert_null(json_get(f.plan.status, "receipt", NULL));
        /* stays Blocked, without an Event or a count, until the spec changes */
        apply(&f);
        f.obs.work = (dataset_work){0};
        decide(&f);
        assert_null(f.plan.status);
        assert_null(f.plan.outcome);
        assert_int_equal(f.plan.n_events, 0);
        assert_int_equal(f.plan.action, DATASET_ACT_NONE);
        /* a new generation starts again */
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(f.p, "metadata"), "generation", cJSON_CreateNumber(4));
        decide(&f);
        assert_int_equal(f.plan.action, DATASET_ACT_FETCH);
        fin(&f);
    }
}

static void test_gate_order(void **state)
{
    (void)state;
    dfx f;
    /* license and prov both fail: the first in order names the reason */
    init(&f, "CC-BY-4.0", "");
    dfx_good_work(&f);
    license_mismatch(&f);
    prov_entity(&f);
    decide(&f);
    assert_string_equal(cond_field(&f, COND_STALLED, "reason"), "LicenseFailed");
    assert_false(gate_passed(&f, 1));
    assert_false(gate_passed(&f, 5));
    fin(&f);
    /* every gate is judged before blocking: a failure waits for the transfers still running */
    init(&f, "CC-BY-4.0", "");
    dfx_good_work(&f);
    f.art[0] = (dataset_item){.state = DATASET_ITEM_RUNNING, .bytes = 10, .total = 100};
    prov_entity(&f);
    decide(&f);
    assert_string_equal(json_str(f.plan.status, "phase", NULL), "Validating");
    assert_false(gate_passed(&f, 5));
    assert_contains(gate_message(&f, 5), "2026-03-01.1");
    assert_false(f.plan.drop_work);
    apply(&f);
    dfx_good_work(&f);
    prov_entity(&f);
    decide(&f);
    assert_string_equal(cond_field(&f, COND_STALLED, "reason"), "CatalogPROVFailed");
    assert_true(f.plan.drop_work);
    fin(&f);
}

/* ---- transient -------------------------------------------------------------- */

static void test_transient_backoff(void **state)
{
    (void)state;
    dfx f;
    init(&f, "CC-BY-4.0", "");
    dfx_good_work(&f);
    f.obs.work.docs[DATASET_DOC_DCAT] = (dataset_item){.state = DATASET_ITEM_UNAVAILABLE,
                                                       .message = "connection refused"};
    f.obs.work.attempts = 1;
    f.obs.work.failed_at = FX_NOW;
    decide(&f);
    assert_string_equal(json_str(f.plan.status, "phase", NULL), "Blocked");
    assert_string_equal(cond_field(&f, COND_RECONCILING, "reason"), "SourceUnavailable");
    assert_null(conditions_get(f.plan.status, COND_STALLED));
    assert_contains(cond_field(&f, COND_RECONCILING, "message"), "connection refused");
    assert_int_equal(f.plan.action, DATASET_ACT_NONE); /* not due yet */
    assert_int_equal(f.plan.requeue_ms, 5000);
    assert_string_equal(f.plan.outcome, "Blocked");
    assert_int_equal(f.plan.n_events, 1);
    assert_string_equal(f.plan.events[0].reason, "SourceUnavailable");
    assert_false(f.plan.drop_work);
    apply(&f);
    /* the third failure in a row waits 20 s; once due, the transfers start again; one Event per run */
    f.obs.work.attempts = 3;
    f.obs.now = FX_NOW + 5;
    decide(&f);
    assert_int_equal(f.plan.requeue_ms, 15000);
    assert_int_equal(f.plan.action, DATASET_ACT_NONE);
    assert_int_equal(f.plan.n_events, 0);
    assert_null(f.plan.outcome);
    f.obs.now = FX_NOW + 20;
    decide(&f);
    assert_int_equal(f.plan.action, DATASET_ACT_FETCH);
    /* the server came back: promoted */
    dfx_good_work(&f);
    decide(&f);
    assert_int_equal(f.plan.action, DATASET_ACT_SEAL);
    assert_int_equal(dataset_backoff_ms(1), 5000);
    assert_int_equal(dataset_backoff_ms(20), DATASET_BACKOFF_MAX_MS);
    fin(&f);
}

static void test_progress_throttle(void **state)
{
    (void)state;
    dfx f;
    init(&f, "CC-BY-4.0", "");
    dfx_good_work(&f);
    f.art[0] = (dataset_item){.state = DATASET_ITEM_RUNNING, .bytes = 40, .total = 100};
    f.art[1] = (dataset_item){.state = DATASET_ITEM_RUNNING, .bytes = 2, .total = 8};
    decide(&f);
    assert_string_equal(json_str(f.plan.status, "phase", NULL), "Validating");
    assert_int_equal(json_int(-1, f.plan.status, "progress", "bytesHashed", NULL), 42);
    assert_int_equal(json_int(-1, f.plan.status, "progress", "bytesTotal", NULL), 108);
    assert_int_equal(f.plan.requeue_ms, DATASET_PROGRESS_MS);
    apply(&f);
    /* 4 s later: not rewritten */
    f.art[0].bytes = 80;
    f.obs.now = FX_NOW + 4;
    decide(&f);
    assert_null(f.plan.status);
    /* 5 s after the last: rewritten */
    f.obs.now = FX_NOW + 5;
    decide(&f);
    assert_int_equal(json_int(-1, f.plan.status, "progress", "bytesHashed", NULL), 82);
    apply(&f);
    /* done: the progress goes */
    dfx_good_work(&f);
    f.obs.now = FX_NOW + 6;
    decide(&f);
    assert_null(json_get(f.plan.status, "progress", NULL));
    fin(&f);
}

/* ---- revoke and deletion ------------------------------------------------------ */

static void test_revoke(void **state)
{
    (void)state;
    dfx f;
    init(&f, "CC-BY-4.0", "");
    promote(&f);
    const char *promoted_ref = json_str(f.p, "status", "receipt", "auditRef", NULL);
    char ref[AUDIT_REF_SIZE], *entry = strdup(json_str(f.index, "data", "kfm.hydrology.wells", NULL));
    snprintf(ref, sizeof(ref), "%s", promoted_ref);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(f.p, "spec"), "revoke", cJSON_CreateTrue());
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(f.p, "metadata"), "generation", cJSON_CreateNumber(4));
    f.obs.work = (dataset_work){0};
    decide(&f);
    assert_int_equal(f.plan.action, DATASET_ACT_UNPUBLISH);
    assert_string_equal(f.plan.unpublish_ref, ref);
    /* removed */
    set_index(&f, "kfm.hydrology.wells", NULL);
    f.obs.work.removed = true;
    decide(&f);
    assert_string_equal(json_str(f.plan.status, "phase", NULL), "Revoked");
    assert_string_equal(cond_field(&f, COND_READY, "status"), "True");
    assert_string_equal(cond_field(&f, "Published", "reason"), "Revoked");
    const cJSON *r = json_get(f.plan.status, "receipt", NULL);
    assert_string_equal(json_str(r, "outcome", NULL), "Revoked");
    assert_string_equal(json_str(r, "prevAuditRef", NULL), ref);
    assert_string_equal(json_str(r, "removedEntry", NULL), entry);
    char again[AUDIT_REF_SIZE];
    assert_int_equal(audit_receipt_ref(again, r, f.p), 0);
    assert_string_equal(again, json_str(r, "auditRef", NULL));
    assert_string_equal(f.plan.outcome, "Revoked");
    assert_string_equal(f.plan.events[0].reason, "Revoked");
    apply(&f);
    decide(&f);
    assert_null(f.plan.status);
    assert_null(f.plan.outcome);
    free(entry);
    fin(&f);

    /* another version's entry is never removed by a revoke */
    init(&f, "CC-BY-4.0", "\"revoke\":true");
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(f.p, "spec"), "revoke");
    cJSON_AddTrueToObject(cJSON_GetObjectItem(f.p, "spec"), "revoke");
    set_index(&f, "kfm.hydrology.wells",
              "{\"auditRef\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
              "\"datasetID\":\"kfm.hydrology.wells\",\"versionID\":\"2026-03-01.1\"}");
    decide(&f);
    assert_string_equal(json_str(f.plan.status, "phase", NULL), "Revoked");
    assert_null(json_get(f.plan.status, "receipt", "removedEntry", NULL));
    assert_int_equal(f.plan.action, DATASET_ACT_NONE);
    fin(&f);
}

static void test_deletion(void **state)
{
    (void)state;
    dfx f;
    init(&f, "CC-BY-4.0", "");
    promote(&f);
    cJSON_AddStringToObject(cJSON_GetObjectItem(f.p, "metadata"), "deletionTimestamp", "2026-12-06T00:00:00Z");
    decide(&f);
    assert_int_equal(f.plan.action, DATASET_ACT_UNPUBLISH);
    assert_string_equal(f.plan.unpublish_ref, json_str(f.p, "status", "receipt", "auditRef", NULL));
    assert_null(f.plan.status);
    /* the entry is gone: the finalizer goes */
    set_index(&f, "kfm.hydrology.wells", NULL);
    decide(&f);
    assert_int_equal(f.plan.action, DATASET_ACT_REMOVE_FINALIZER);
    /* another promotion's entry stays */
    set_index(&f, "kfm.hydrology.wells",
              "{\"auditRef\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
              "\"datasetID\":\"kfm.hydrology.wells\",\"versionID\":\"2027-01-01.1\"}");
    decide(&f);
    assert_int_equal(f.plan.action, DATASET_ACT_REMOVE_FINALIZER);
    /* without the finalizer: nothing to do */
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(f.p, "metadata"), "finalizers");
    decide(&f);
    assert_int_equal(f.plan.action, DATASET_ACT_NONE);
    assert_true(f.plan.drop_work);
    fin(&f);
}

static void test_superseded(void **state)
{
    (void)state;
    dfx f;
    init(&f, "CC-BY-4.0", "");
    promote(&f);
    set_index(&f, "kfm.hydrology.wells",
              "{\"auditRef\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
              "\"datasetID\":\"kfm.hydrology.wells\",\"versionID\":\"2027-01-01.1\"}");
    decide(&f);
    assert_string_equal(f.plan.phase, "Promoted");
    assert_string_equal(cond_field(&f, "Published", "reason"), "Superseded");
    assert_contains(cond_field(&f, "Published", "message"), "2027-01-01.1");
    assert_string_equal(cond_field(&f, COND_READY, "status"), "True");
    assert_int_equal(f.plan.action, DATASET_ACT_NONE);
    fin(&f);
}

static void test_invalid_spec(void **state)
{
    (void)state;
    dfx f;
    init(&f, "CC-BY-4.0", "");
    cJSON *a = cJSON_GetArrayItem(json_get(f.p, "spec", "artifacts", NULL), 0);
    cJSON_ReplaceItemInObject(a, "digest", cJSON_CreateString("md5:abc"));
    decide(&f);
    assert_string_equal(cond_field(&f, COND_STALLED, "reason"), "InvalidSpec");
    assert_contains(cond_field(&f, COND_STALLED, "message"), "spec.artifacts[0].digest");
    fin(&f);
}

static void test_links_pending_then_listed(void **state)
{
    (void)state;
    dfx f;
    init(&f, "CC-BY-4.0", "");
    dfx_good_work(&f);
    f.obs.work.links_listed = false;
    f.obs.work.nlinks = 0;
    decide(&f);
    /* the STAC document is in but its links are not checked yet: start them */
    assert_int_equal(f.plan.action, DATASET_ACT_FETCH);
    assert_false(gate_passed(&f, 6));
    f.obs.work.links_listed = true;
    f.obs.work.links_message = "the STAC document's link 3 has no href";
    decide(&f);
    assert_string_equal(cond_field(&f, COND_STALLED, "reason"), "LinksFailed");
    fin(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finalizer_first),
        cmocka_unit_test(test_validating_starts_transfers),
        cmocka_unit_test(test_promoted_with_receipt),
        cmocka_unit_test(test_entry_removed_by_hand_restored),
        cmocka_unit_test(test_replaces_other_version),
        cmocka_unit_test(test_index_refuses),
        cmocka_unit_test(test_each_gate_fails_alone),
        cmocka_unit_test(test_gate_order),
        cmocka_unit_test(test_transient_backoff),
        cmocka_unit_test(test_progress_throttle),
        cmocka_unit_test(test_revoke),
        cmocka_unit_test(test_deletion),
        cmocka_unit_test(test_superseded),
        cmocka_unit_test(test_invalid_spec),
        cmocka_unit_test(test_links_pending_then_listed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

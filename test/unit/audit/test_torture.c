/*
 * Allocation-failure torture of audit (test/support/torture.h): canonical JSON
 * and audit references, sealing a receipt, appending to a full history (with
 * the trim) and replacing a single receipt, which must leave the caller's tree
 * exactly as it was on error, and verifying objects and files, whose reports
 * must be the same in every run that succeeds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audit/canonical.h"
#include "audit/receipt.h"
#include "audit/verify.h"
#include "fixture.h"
#include "torture.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * OpenSSL's digest allocates too. audit_ref reports its failure as MB_ERROR,
 * but OpenSSL also recovers from some of its own failed allocations (fetching
 * the SHA-256 implementation) and then computes the digest all the same: the
 * cases that digest may succeed, and their checks prove the result is the
 * same as unhindered.
 */
#define DIGEST_FAILED MB_ERROR

static cJSON *parse(const char *text)
{
    cJSON *v = cJSON_Parse(text);
    if (!v)
        fail_msg("test input is not JSON: %s", text);
    return v;
}

static cJSON *parse_fixture(const char *rel)
{
    char *text = fixture_read(rel, NULL);
    cJSON *v;
    if (!text)
        fail_msg("cannot read fixture %s", rel);
    v = parse(text);
    free(text);
    return v;
}

/* ---- canonical JSON -------------------------------------------------------------- */

typedef struct {
    const cJSON *value;
    char *json;
    char ref[AUDIT_REF_SIZE];
    char *first_json;
    char first_ref[AUDIT_REF_SIZE];
    const char *needle;
} canon_ctx;

static int canon_run(void *arg)
{
    canon_ctx *c = arg;
    int err;
    if ((err = audit_canonical_json(&c->json, NULL, c->value)) < 0)
        return err;
    return audit_ref(c->ref, c->value);
}

static void canon_check(void *arg)
{
    canon_ctx *c = arg;
    if (c->needle) {
        assert_null(c->json);
        assert_non_null(strstr(mb_error_last(), c->needle));
        return;
    }
    if (!c->first_json) {
        c->first_json = strdup(c->json);
        memcpy(c->first_ref, c->ref, sizeof(c->ref));
        return;
    }
    assert_string_equal(c->json, c->first_json);
    assert_string_equal(c->ref, c->first_ref);
}

static void canon_clear(void *arg)
{
    canon_ctx *c = arg;
    free(c->json);
    c->json = NULL;
}

static void test_canonical_json(void **state)
{
    (void)state;
    cJSON *v = parse("{\"z\":[1,2.5,1e21,-0,1e-7,true,false,null,\"a\\u0001\\\"\\\\\\n\"],"
                     "\"\\u00e9t\\u00e9\":{\"b\":{\"c\":[{\"d\":\"\\ud83d\\ude00\"}]},\"a\":0.1},"
                     "\"a\":{},\"\\ue000\":[],\"\\ud800\\udc00\":\"astral\"}");
    canon_ctx c = {.value = v};
    torture_case tc = {.name = "audit_canonical_json",
                       .run = canon_run,
                       .check = canon_check,
                       .clear = canon_clear,
                       .ctx = &c,
                       .errors = {DIGEST_FAILED},
                       .may_succeed = true};
    assert_true(torture_check(&tc) > 0);
    free(c.first_json);
    cJSON_Delete(v);
}

static void test_canonical_refusal(void **state)
{
    (void)state;
    /* refused late, deep inside, after most of the output was written */
    cJSON *v = parse("{\"a\":[1,2,3],\"b\":{\"c\":[{\"d\":1,\"e\":{\"f\":\"x\",\"f\":\"y\"}}]}}");
    canon_ctx c = {.value = v, .needle = "two members named \"f\""};
    torture_case tc = {.name = "audit_canonical_json refusal",
                       .run = canon_run,
                       .check = canon_check,
                       .clear = canon_clear,
                       .ctx = &c,
                       .expect = MB_EINVAL};
    assert_true(torture_check(&tc) > 0);
    cJSON_Delete(v);
}

/* ---- sealing and chaining: on error the caller's tree is unchanged ----------------- */

typedef enum { DO_SEAL, DO_APPEND, DO_RECEIPT_SET } seal_op;

typedef struct {
    seal_op op;
    const cJSON *object;   /* the object the receipt belongs to */
    const cJSON *template; /* the status (append, set) or entry (seal) as it starts */
    const cJSON *entry;    /* the entry to add (append, set) */
    cJSON *work;           /* a copy of template the run works on */
    int rc;
    char *first; /* the first successful result, printed */
} seal_ctx;

static int seal_run(void *arg)
{
    seal_ctx *s = arg;
    cJSON *entry = NULL;

    s->rc = 0;
    switch (s->op) {
    case DO_SEAL:
        s->rc = audit_seal(s->work, s->object,
                           "sha256:1111111111111111111111111111111111111111111111111111111111111111");
        break;
    case DO_APPEND:
    case DO_RECEIPT_SET:
        /* both take the entry in every case */
        if (!(entry = cJSON_Duplicate(s->entry, true)))
            return s->rc = MB_ENOMEM;
        s->rc = s->op == DO_APPEND ? audit_history_append(s->work, entry, s->object)
                                   : audit_receipt_set(s->work, entry, s->object);
        break;
    }
    return s->rc;
}

static void seal_check(void *arg)
{
    seal_ctx *s = arg;
    char *printed = cJSON_PrintUnformatted(s->work);
    assert_non_null(printed);
    if (!s->first) {
        s->first = printed;
        return;
    }
    assert_string_equal(printed, s->first);
    free(printed);
}

/* After each run: an error left the tree as it was; then a fresh copy for the next run. */
static void seal_clear(void *arg)
{
    seal_ctx *s = arg;
    if (s->rc < 0 && !cJSON_Compare(s->work, s->template, true)) {
        char *printed = cJSON_PrintUnformatted(s->work);
        fail_msg("%s failed (%s) but changed the tree: %s", s->op == DO_SEAL ? "audit_seal" : "append", mb_error_last(),
                 printed);
    }
    cJSON_Delete(s->work);
    s->work = cJSON_Duplicate(s->template, true);
    assert_non_null(s->work);
}

static void seal_torture(const char *name, seal_op op, const cJSON *object, const cJSON *template, const cJSON *entry)
{
    seal_ctx s = {.op = op, .object = object, .template = template, .entry = entry};
    torture_case tc = {.name = name,
                       .run = seal_run,
                       .check = seal_check,
                       .clear = seal_clear,
                       .ctx = &s,
                       .errors = {DIGEST_FAILED},
                       .may_succeed = true};
    s.work = cJSON_Duplicate(template, true);
    assert_true(torture_check(&tc) > 0);
    cJSON_Delete(s.work);
    free(s.first);
}

static void test_seal(void **state)
{
    (void)state;
    cJSON *object = parse_fixture("audit/gar-history.json");
    const cJSON *history = json_get(object, "status", "history", NULL);
    cJSON *entry = cJSON_Duplicate(cJSON_GetArrayItem(history, 1), true);
    seal_torture("audit_seal", DO_SEAL, object, entry, NULL);
    cJSON_Delete(entry);
    cJSON_Delete(object);
}

static void test_history_append_full(void **state)
{
    (void)state;
    cJSON *object = parse_fixture("audit/gar-history.json");
    cJSON *status = cJSON_Duplicate(json_get(object, "status", NULL), true);
    cJSON *history = cJSON_GetObjectItemCaseSensitive(status, "history");
    cJSON *entry = cJSON_Duplicate(cJSON_GetArrayItem(history, 0), true);

    /* fill the history to the brim, so that the append also trims */
    assert_int_equal(audit_history_append(status, cJSON_Duplicate(entry, true), object), 0);
    while (cJSON_GetArraySize(history) < AUDIT_HISTORY_MAX)
        assert_int_equal(audit_history_append(status, cJSON_Duplicate(entry, true), object), 0);
    seal_torture("audit_history_append", DO_APPEND, object, status, entry);

    /* and into a status without a history yet */
    cJSON_DeleteItemFromObjectCaseSensitive(status, "history");
    seal_torture("audit_history_append (first)", DO_APPEND, object, status, entry);
    cJSON_Delete(entry);
    cJSON_Delete(status);
    cJSON_Delete(object);
}

static void test_receipt_set(void **state)
{
    (void)state;
    cJSON *object = parse_fixture("audit/pb-receipt.json");
    const cJSON *status = json_get(object, "status", NULL);
    const cJSON *entry = json_get(status, "receipt", NULL);
    seal_torture("audit_receipt_set", DO_RECEIPT_SET, object, status, entry);
    cJSON_Delete(object);
}

/* ---- verification ------------------------------------------------------------------ */

typedef struct {
    const cJSON *object;
    audit_report report;
    char *first; /* every finding's text, one a line, of the first successful run */
} verify_ctx;

static int verify_run(void *arg)
{
    verify_ctx *v = arg;
    return audit_verify_object(&v->report, v->object);
}

static char *report_text(const audit_report *r)
{
    size_t len = 0;
    char *text = NULL;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    fprintf(f, "%zu objects, %zu receipts, %zu breaks, %zu errors\n", r->objects, r->receipts, r->breaks, r->errors);
    for (size_t i = 0; i < r->count; i++)
        fprintf(f, "%d %s\n", r->findings[i].kind, r->findings[i].text);
    fclose(f);
    return text;
}

static void verify_check(void *arg)
{
    verify_ctx *v = arg;
    char *text = report_text(&v->report);
    if (!v->first) {
        v->first = text;
        return;
    }
    assert_string_equal(text, v->first);
    free(text);
}

static void verify_clear(void *arg)
{
    verify_ctx *v = arg;
    audit_report_free(&v->report);
}

static void verify_torture(const char *rel, size_t breaks)
{
    cJSON *object = parse_fixture(rel);
    verify_ctx v = {.object = object};
    torture_case tc = {.name = rel,
                       .run = verify_run,
                       .check = verify_check,
                       .clear = verify_clear,
                       .ctx = &v,
                       .errors = {DIGEST_FAILED},
                       .may_succeed = true};
    assert_true(torture_check(&tc) > 0);
    assert_non_null(strstr(v.first, "breaks"));
    if (breaks == 0)
        assert_non_null(strstr(v.first, " 0 breaks"));
    else
        assert_null(strstr(v.first, " 0 breaks"));
    free(v.first);
    cJSON_Delete(object);
}

static void test_verify_objects(void **state)
{
    (void)state;
    verify_torture("audit/gar-history.json", 0);
    verify_torture("audit/gar-history-tampered.json", 1);
    verify_torture("audit/list.json", 0);
    verify_torture("audit/gar-history-sealed.json", 0);
    verify_torture("audit/gar-history-sealed-mismatch.json", 1);
}

typedef struct {
    const char *path;
    FILE *out;
    char *first;
} file_ctx;

/* membrane receipt verify -f: exit status 0 as 0; 2 (could not check) as MB_ERROR. */
static int file_run(void *arg)
{
    file_ctx *f = arg;
    rewind(f->out);
    int rc = audit_verify_file(f->path, f->out);
    return rc == 0 ? 0 : rc == 2 ? MB_ERROR : MB_EINVAL;
}

static void file_check(void *arg)
{
    file_ctx *f = arg;
    long n = ftell(f->out);
    char *text = calloc(1, (size_t)n + 1);
    assert_non_null(text);
    rewind(f->out);
    assert_int_equal(fread(text, 1, (size_t)n, f->out), (size_t)n);
    if (!f->first) {
        f->first = text;
        return;
    }
    assert_string_equal(text, f->first);
    free(text);
}

static void test_verify_file(void **state)
{
    (void)state;
    file_ctx f = {.path = fixture_path("audit/list.json"), .out = tmpfile()};
    /* stdio reads unbuffered when it cannot allocate a buffer: that run succeeds, with the same output */
    torture_case tc = {.name = "audit_verify_file",
                       .run = file_run,
                       .check = file_check,
                       .ctx = &f,
                       .errors = {MB_ERROR},
                       .may_succeed = true};
    assert_non_null(f.out);
    assert_true(torture_check(&tc) > 0);
    assert_non_null(strstr(f.first, "chain holds"));
    free(f.first);
    fclose(f.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_json), cmocka_unit_test(test_canonical_refusal),
        cmocka_unit_test(test_seal),           cmocka_unit_test(test_history_append_full),
        cmocka_unit_test(test_receipt_set),    cmocka_unit_test(test_verify_objects),
        cmocka_unit_test(test_verify_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Receipts and their chain: sealing, appending with the 20-entry trim, the
 * single receipt of DatasetPromotion and PolicyBundle, and verification —
 * every kind of tampering (a field of any entry, the object's identity,
 * reordering, deleting from the middle or the front, malformed refs) is
 * reported naming the entry, while re-encodings that keep the values (member
 * order, another served version) still verify. Then `membrane receipt verify`
 * on the fixtures of test/fixtures/audit: output lines and exit codes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audit/receipt.h"
#include "util/text.h"
#include "audit/verify.h"
#include "fixture.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ZEROS "sha256:0000000000000000000000000000000000000000000000000000000000000000"
#define ONES "sha256:1111111111111111111111111111111111111111111111111111111111111111"

static cJSON *make_object(const char *kind, const char *name)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(o, "apiVersion", "governance.kfm.dev/v1alpha1");
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddStringToObject(meta, "namespace", "kfm");
    cJSON_AddStringToObject(meta, "name", name);
    cJSON_AddStringToObject(meta, "uid", "6c1f2e0a-8d55-4b8e-9a51-0f3c2d9e7b10");
    cJSON_AddNumberToObject(meta, "generation", 1);
    cJSON_AddObjectToObject(o, "spec");
    cJSON_AddObjectToObject(o, "status");
    return o;
}

static cJSON *status_of(cJSON *o)
{
    return cJSON_GetObjectItemCaseSensitive(o, "status");
}

static cJSON *history_of(cJSON *o)
{
    return cJSON_GetObjectItemCaseSensitive(status_of(o), "history");
}

static cJSON *make_entry(int n)
{
    cJSON *e = cJSON_CreateObject();
    char buf[80];
    snprintf(buf, sizeof(buf), "r%011d", n);
    cJSON_AddStringToObject(e, "releaseID", buf);
    cJSON_AddNumberToObject(e, "generation", n);
    snprintf(buf, sizeof(buf), "sha256:%064d", n);
    cJSON_AddStringToObject(e, "digest", buf);
    snprintf(buf, sizeof(buf), "sha256:%064d", n - 1);
    cJSON_AddStringToObject(e, "previousDigest", buf);
    cJSON_AddStringToObject(e, "outcome", n % 2 ? "Succeeded" : "RolledBack");
    cJSON_AddStringToObject(e, "trigger", n % 2 ? "" : "SmokeFailure");
    snprintf(buf, sizeof(buf), "2026-11-%02dT10:00:00Z", 1 + n % 28);
    cJSON_AddStringToObject(e, "startedAt", buf);
    snprintf(buf, sizeof(buf), "2026-11-%02dT10:05:00Z", 1 + n % 28);
    cJSON_AddStringToObject(e, "finishedAt", buf);
    return e;
}

/* A GovernedAPIRelease with entries 1..n appended. */
static cJSON *make_chain(int n)
{
    cJSON *o = make_object("GovernedAPIRelease", "kfm-api");
    for (int i = 1; i <= n; i++)
        if (audit_history_append(status_of(o), make_entry(i), o) < 0)
            fail_msg("append %d: %s", i, mb_error_last());
    return o;
}

static const char *entry_str(cJSON *o, int i, const char *key)
{
    return json_str(cJSON_GetArrayItem(history_of(o), i), key, NULL);
}

static size_t count_kind(const audit_report *r, audit_finding_kind kind)
{
    size_t n = 0;
    for (size_t i = 0; i < r->count; i++)
        n += r->findings[i].kind == kind;
    return n;
}

/* The first finding of kind at path whose text contains needle; fails the test when there is none. */
static const audit_finding *expect_finding(const audit_report *r, audit_finding_kind kind, const char *path,
                                           const char *needle)
{
    for (size_t i = 0; i < r->count; i++) {
        const audit_finding *f = &r->findings[i];
        if (f->kind == kind && (!path || (f->path && strcmp(f->path, path) == 0)) &&
            (!needle || strstr(f->text, needle)))
            return f;
    }
    for (size_t i = 0; i < r->count; i++)
        print_message("finding %d %s: %s\n", r->findings[i].kind, r->findings[i].path ? r->findings[i].path : "-",
                      r->findings[i].text);
    fail_msg("no finding of kind %d at %s containing \"%s\"", kind, path ? path : "(any)", needle ? needle : "");
    return NULL;
}

static void verify_ok(const cJSON *o, size_t receipts)
{
    audit_report r;
    assert_int_equal(audit_verify_object(&r, o), 0);
    if (r.breaks)
        expect_finding(&r, AUDIT_FINDING_OK, "no such path", NULL); /* prints the findings */
    assert_int_equal(r.breaks, 0);
    assert_int_equal(r.errors, 0);
    assert_int_equal(r.receipts, receipts);
    assert_int_equal(count_kind(&r, AUDIT_FINDING_OK), receipts);
    audit_report_free(&r);
}

/* ---- sealing ---- */

static void test_seal_sets_refs(void **state)
{
    (void)state;
    cJSON *o = make_object("GovernedAPIRelease", "kfm-api");
    cJSON *e = make_entry(1), *again = NULL;
    char ref[AUDIT_REF_SIZE];

    assert_int_equal(audit_seal(e, o, NULL), 0);
    assert_string_equal(json_str(e, "prevAuditRef", NULL), "");
    assert_true(mb_sha256_digest_valid(json_str(e, "auditRef", NULL)));
    assert_int_equal(audit_receipt_ref(ref, e, o), 0);
    assert_string_equal(ref, json_str(e, "auditRef", NULL));

    /* resealing is deterministic and replaces, never duplicates, the members */
    again = cJSON_Duplicate(e, 1);
    assert_int_equal(audit_seal(again, o, ""), 0);
    assert_string_equal(json_str(again, "auditRef", NULL), json_str(e, "auditRef", NULL));
    assert_int_equal(cJSON_GetArraySize(again), cJSON_GetArraySize(e));

    /* the previous ref and the object's identity are covered */
    assert_int_equal(audit_seal(again, o, ZEROS), 0);
    assert_string_equal(json_str(again, "prevAuditRef", NULL), ZEROS);
    assert_string_not_equal(json_str(again, "auditRef", NULL), json_str(e, "auditRef", NULL));
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "uid",
                                           cJSON_CreateString("another-uid"));
    assert_int_equal(audit_receipt_ref(ref, e, o), 0);
    assert_string_not_equal(ref, json_str(e, "auditRef", NULL));

    cJSON_Delete(again);
    cJSON_Delete(e);
    cJSON_Delete(o);
}

static void assert_seal_refused(cJSON *e, const cJSON *o, const char *prev, const char *needle)
{
    char *before = cJSON_PrintUnformatted(e);
    assert_int_equal(audit_seal(e, o, prev), MB_EINVAL);
    if (!strstr(mb_error_last(), needle))
        fail_msg("error \"%s\" does not contain \"%s\"", mb_error_last(), needle);
    char *after = cJSON_PrintUnformatted(e);
    assert_string_equal(before, after); /* unchanged on error */
    free(before);
    free(after);
}

static void test_seal_refusals(void **state)
{
    (void)state;
    cJSON *o = make_object("GovernedAPIRelease", "kfm-api");
    cJSON *e = make_entry(1);

    assert_seal_refused(e, o, "sha256:abc", "previous receipt's auditRef \"sha256:abc\"");
    assert_seal_refused(e, o, ONES "0", "previous receipt's auditRef");

    cJSON_AddNullToObject(cJSON_AddObjectToObject(e, "extra"), "why");
    assert_seal_refused(e, o, NULL, "null value at .extra.why");
    cJSON_DeleteItemFromObjectCaseSensitive(e, "extra");

    cJSON_AddObjectToObject(e, "object");
    assert_seal_refused(e, o, NULL, "member named \"object\"");
    cJSON_DeleteItemFromObjectCaseSensitive(e, "object");

    cJSON_AddStringToObject(e, "message", "not \xff UTF-8");
    assert_seal_refused(e, o, NULL, "$.message is not valid UTF-8");
    cJSON_DeleteItemFromObjectCaseSensitive(e, "message");

    cJSON *meta = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "uid");
    assert_seal_refused(e, o, NULL, "GovernedAPIRelease kfm/kfm-api has no metadata.uid");
    cJSON_AddStringToObject(meta, "uid", "");
    assert_seal_refused(e, o, NULL, "has no metadata.uid");
    assert_seal_refused(e, NULL, NULL, "needs the Kubernetes object");

    cJSON *arr = cJSON_CreateArray();
    assert_int_equal(audit_seal(arr, o, NULL), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "must be a JSON object"));

    cJSON_Delete(arr);
    cJSON_Delete(e);
    cJSON_Delete(o);
}

/* ---- history ---- */

static void test_append_builds_chain(void **state)
{
    (void)state;
    cJSON *o = make_chain(3);
    audit_report r;

    assert_int_equal(cJSON_GetArraySize(history_of(o)), 3);
    assert_string_equal(entry_str(o, 0, "releaseID"), "r00000000001"); /* newest last */
    assert_string_equal(entry_str(o, 2, "releaseID"), "r00000000003");
    assert_string_equal(entry_str(o, 0, "prevAuditRef"), "");
    assert_string_equal(entry_str(o, 1, "prevAuditRef"), entry_str(o, 0, "auditRef"));
    assert_string_equal(entry_str(o, 2, "prevAuditRef"), entry_str(o, 1, "auditRef"));
    assert_string_not_equal(entry_str(o, 1, "auditRef"), entry_str(o, 2, "auditRef"));

    assert_int_equal(audit_verify_object(&r, o), 0);
    assert_int_equal(r.objects, 1);
    assert_int_equal(r.receipts, 3);
    assert_int_equal(r.breaks, 0);
    const audit_finding *f = expect_finding(&r, AUDIT_FINDING_OK, "status.history[2]", NULL);
    char want[200];
    snprintf(want, sizeof(want), "GovernedAPIRelease kfm/kfm-api: status.history[2] (releaseID r00000000003) %s",
             entry_str(o, 2, "auditRef"));
    assert_string_equal(f->text, want);
    assert_string_equal(f->object, "GovernedAPIRelease kfm/kfm-api");
    audit_report_free(&r);
    audit_report_free(&r); /* twice is harmless */
    audit_report_free(NULL);
    cJSON_Delete(o);
}

static void test_append_trims_to_20(void **state)
{
    (void)state;
    cJSON *o = make_chain(AUDIT_HISTORY_MAX);
    char first_ref[AUDIT_REF_SIZE];

    assert_int_equal(cJSON_GetArraySize(history_of(o)), 20);
    verify_ok(o, 20);
    snprintf(first_ref, sizeof(first_ref), "%s", entry_str(o, 0, "auditRef"));

    assert_int_equal(audit_history_append(status_of(o), make_entry(21), o), 0);
    assert_int_equal(cJSON_GetArraySize(history_of(o)), 20);
    assert_string_equal(entry_str(o, 0, "releaseID"), "r00000000002");
    assert_string_equal(entry_str(o, 19, "releaseID"), "r00000000021");
    /* the first retained entry points at the dropped one */
    assert_string_equal(entry_str(o, 0, "prevAuditRef"), first_ref);
    verify_ok(o, 20);

    for (int i = 22; i <= 45; i++)
        assert_int_equal(audit_history_append(status_of(o), make_entry(i), o), 0);
    assert_int_equal(cJSON_GetArraySize(history_of(o)), 20);
    assert_string_equal(entry_str(o, 0, "releaseID"), "r00000000026");
    verify_ok(o, 20);
    cJSON_Delete(o);
}

/* Each listed field of each entry, changed, is reported as exactly that entry not matching. */
static void test_tampering_any_field_is_detected(void **state)
{
    (void)state;
    const char *fields[] = {"digest", "outcome", "trigger", "generation", "startedAt", "releaseID", "added"};

    for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
        for (int i = 0; i < 3; i++) {
            cJSON *o = make_chain(3);
            cJSON *e = cJSON_GetArrayItem(history_of(o), i);
            cJSON *item = cJSON_GetObjectItemCaseSensitive(e, fields[f]);
            audit_report r;
            char path[32];

            if (!item)
                cJSON_AddStringToObject(e, fields[f], "x");
            else if (cJSON_IsNumber(item))
                cJSON_SetNumberValue(item, item->valuedouble + 1);
            else
                cJSON_ReplaceItemInObjectCaseSensitive(e, fields[f], cJSON_CreateString("RolledBackX"));

            assert_int_equal(audit_verify_object(&r, o), 0);
            snprintf(path, sizeof(path), "status.history[%d]", i);
            if (r.breaks != 1)
                fail_msg("%s of %s: %zu breaks, want 1", fields[f], path, r.breaks);
            const audit_finding *b = expect_finding(&r, AUDIT_FINDING_BREAK, path, "does not match its contents");
            char want[160];
            snprintf(want, sizeof(want), "GovernedAPIRelease kfm/kfm-api: %s (releaseID %s): auditRef %s", path,
                     json_str(e, "releaseID", NULL), json_str(e, "auditRef", NULL));
            if (strncmp(b->text, want, strlen(want)) != 0)
                fail_msg("got \"%s\", want it to start with \"%s\"", b->text, want);
            assert_non_null(strstr(b->text, "(recomputed sha256:"));
            assert_int_equal(count_kind(&r, AUDIT_FINDING_OK), 2);
            audit_report_free(&r);
            cJSON_Delete(o);
        }
    }
}

static void test_tampering_links_and_identity(void **state)
{
    (void)state;
    cJSON *o = make_chain(3);
    cJSON *e1 = cJSON_GetArrayItem(history_of(o), 1), *e2 = cJSON_GetArrayItem(history_of(o), 2);
    audit_report r;

    /* a different (well-formed) auditRef on entry 1: its contents no longer match,
     * and entry 2 no longer links to it */
    cJSON_ReplaceItemInObjectCaseSensitive(e1, "auditRef", cJSON_CreateString(ZEROS));
    assert_int_equal(audit_verify_object(&r, o), 0);
    assert_int_equal(r.breaks, 2);
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[1]", "auditRef " ZEROS " does not match");
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[2]",
                   "status.history[2] (releaseID r00000000003): prevAuditRef sha256:");
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[2]", "is not status.history[1].auditRef " ZEROS);
    audit_report_free(&r);
    cJSON_Delete(o);

    /* entry 2 re-pointed elsewhere: both its contents and its link break */
    o = make_chain(3);
    e2 = cJSON_GetArrayItem(history_of(o), 2);
    cJSON_ReplaceItemInObjectCaseSensitive(e2, "prevAuditRef", cJSON_CreateString(ONES));
    assert_int_equal(audit_verify_object(&r, o), 0);
    assert_int_equal(r.breaks, 2);
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[2]",
                   "prevAuditRef " ONES " is not status.history[1].auditRef sha256:");
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[2]", "does not match its contents");
    audit_report_free(&r);

    /* the receipts belong to one object instance: another uid or name breaks them all */
    cJSON_Delete(o);
    o = make_chain(3);
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "name",
                                           cJSON_CreateString("kfm-api-copy"));
    assert_int_equal(audit_verify_object(&r, o), 0);
    assert_int_equal(r.breaks, 3);
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[0]", "GovernedAPIRelease kfm/kfm-api-copy: ");
    audit_report_free(&r);
    cJSON_Delete(o);
}

static void test_reordering_is_detected(void **state)
{
    (void)state;
    cJSON *o = make_chain(3);
    cJSON *h = history_of(o);
    audit_report r;

    /* (cJSON_InsertItemInArray fails in Debian's cJSON 1.7.15-1+deb12u4: move to the end instead) */
    assert_true(cJSON_AddItemToArray(h, cJSON_DetachItemFromArray(h, 1))); /* 1, 3, 2 */
    assert_string_equal(entry_str(o, 1, "releaseID"), "r00000000003");
    assert_int_equal(audit_verify_object(&r, o), 0);
    assert_true(r.breaks >= 1);
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[1]",
                   "status.history[1] (releaseID r00000000003): prevAuditRef sha256:");
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[2]", "is not status.history[1].auditRef");
    expect_finding(&r, AUDIT_FINDING_OK, "status.history[0]", NULL);
    audit_report_free(&r);
    cJSON_Delete(o);
}

static void test_deleted_entries_are_detected(void **state)
{
    (void)state;
    cJSON *o = make_chain(3);
    audit_report r;
    char want[200];

    /* from the middle */
    snprintf(want, sizeof(want), "prevAuditRef %s is not status.history[0].auditRef %s", entry_str(o, 1, "auditRef"),
             entry_str(o, 0, "auditRef"));
    cJSON_DeleteItemFromArray(history_of(o), 1);
    assert_int_equal(audit_verify_object(&r, o), 0);
    assert_int_equal(r.breaks, 1);
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[1]", want);
    audit_report_free(&r);
    cJSON_Delete(o);

    /* from the front of a history that was never full */
    o = make_chain(3);
    cJSON_DeleteItemFromArray(history_of(o), 0);
    assert_int_equal(audit_verify_object(&r, o), 0);
    assert_int_equal(r.breaks, 1);
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[0]",
                   "names an earlier receipt, but the history holds only 2 entries and entries are "
                   "dropped only beyond 20, so earlier entries were removed");
    audit_report_free(&r);
    cJSON_Delete(o);

    /* from the front of a full history */
    o = make_chain(25);
    cJSON_DeleteItemFromArray(history_of(o), 0);
    assert_int_equal(audit_verify_object(&r, o), 0);
    assert_int_equal(r.breaks, 1);
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[0]", "holds only 19 entries");
    audit_report_free(&r);
    cJSON_Delete(o);
}

static void test_malformed_refs_are_reported(void **state)
{
    (void)state;
    const char *bad[] = {"sha256:XYZ", "", "sha256:3BFEBA8ED863B63AF2C643FB96A948EB27AA3C603E33CCAEA52EE2825B099968"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *o = make_chain(2);
        cJSON *e = cJSON_GetArrayItem(history_of(o), 0);
        audit_report r;
        char want[200];
        cJSON_ReplaceItemInObjectCaseSensitive(e, "auditRef", cJSON_CreateString(bad[i]));
        assert_int_equal(audit_verify_object(&r, o), 0);
        snprintf(want, sizeof(want),
                 "status.history[0] (releaseID r00000000001): auditRef \"%s\" is not \"sha256:\" followed by "
                 "64 lowercase hex digits (recomputed sha256:",
                 bad[i]);
        expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[0]", want);
        audit_report_free(&r);
        cJSON_Delete(o);
    }

    /* missing members, a control character in a value, an entry that is not an object */
    cJSON *o = make_chain(2);
    cJSON *e = cJSON_GetArrayItem(history_of(o), 1);
    audit_report r;
    cJSON_DeleteItemFromObjectCaseSensitive(e, "auditRef");
    cJSON_DeleteItemFromObjectCaseSensitive(e, "prevAuditRef");
    assert_int_equal(audit_verify_object(&r, o), 0);
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[1]", "auditRef (none) is not");
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[1]", "prevAuditRef is missing");
    audit_report_free(&r);
    cJSON_AddStringToObject(e, "auditRef", "evil\nok status.history[1]");
    cJSON_AddNumberToObject(e, "prevAuditRef", 7);
    assert_int_equal(audit_verify_object(&r, o), 0);
    const audit_finding *f = expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[1]", "auditRef \"evil?ok");
    assert_null(strchr(f->text, '\n'));
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[1]", "prevAuditRef is not a string");
    audit_report_free(&r);
    /* a stored entry with two members of one name has no canonical form */
    cJSON_AddStringToObject(e, "note\nok forged", "a");
    cJSON_AddStringToObject(e, "note\nok forged", "b");
    assert_int_equal(audit_verify_object(&r, o), 0);
    f = expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[1]",
                       "status.history[1] (releaseID r00000000002): cannot be recomputed: the object at $ has "
                       "two members named \"note?ok forged\"");
    assert_null(strchr(f->text, '\n'));
    audit_report_free(&r);
    cJSON_DeleteItemFromObjectCaseSensitive(e, "note\nok forged");
    cJSON_DeleteItemFromObjectCaseSensitive(e, "note\nok forged");

    /* a long non-ASCII releaseID is shortened at a character boundary */
    char rid[300] = "x"; /* odd offset: the cut falls inside a character */
    for (int i = 0; i < 100; i++)
        strcat(rid, "\xc3\xa9");
    cJSON_ReplaceItemInObjectCaseSensitive(e, "releaseID", cJSON_CreateString(rid));
    assert_int_equal(audit_verify_object(&r, o), 0);
    f = expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[1]", "\xc3\xa9\xc3\xa9...): auditRef");
    cJSON *as_json = cJSON_CreateString(f->text);
    char *canon = NULL;
    assert_int_equal(audit_canonical_json(&canon, NULL, as_json), 0); /* i.e. valid UTF-8 */
    free(canon);
    cJSON_Delete(as_json);
    audit_report_free(&r);
    cJSON_ReplaceItemInArray(history_of(o), 1, cJSON_CreateString("entry"));
    assert_int_equal(audit_verify_object(&r, o), 0);
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[1]", "status.history[1]: is not an object");
    audit_report_free(&r);
    cJSON_ReplaceItemInObjectCaseSensitive(status_of(o), "history", cJSON_CreateString("gone"));
    assert_int_equal(audit_verify_object(&r, o), 0);
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.history", "status.history is not a list");
    audit_report_free(&r);
    cJSON_Delete(o);
}

/* What the API server or kubectl may change without changing values still verifies. */
static void test_reencoding_still_verifies(void **state)
{
    (void)state;
    cJSON *o = make_chain(3);
    cJSON *h = history_of(o), *e = cJSON_GetArrayItem(h, 1), *rebuilt = cJSON_CreateObject();

    /* members in reverse order */
    while (e->child) {
        cJSON *last = e->child->prev; /* cJSON keeps the tail in child->prev */
        cJSON *m = cJSON_DetachItemViaPointer(e, last);
        cJSON_AddItemToObject(rebuilt, m->string, m);
    }
    cJSON_ReplaceItemInArray(h, 1, rebuilt);
    /* a number written as 2.0, and the object read at another served version */
    cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(rebuilt, "generation"), 2.0);
    cJSON_ReplaceItemInObjectCaseSensitive(o, "apiVersion", cJSON_CreateString("governance.kfm.dev/v1beta1"));
    verify_ok(o, 3);

    /* through text: print and parse back */
    char *text = cJSON_Print(o);
    cJSON *parsed = cJSON_Parse(text);
    verify_ok(parsed, 3);
    free(text);
    cJSON_Delete(parsed);
    cJSON_Delete(o);
}

static void test_append_refusals(void **state)
{
    (void)state;
    cJSON *o = make_chain(2);
    char *before;

    /* the tip has no well-formed auditRef: nothing is chained to it */
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetArrayItem(history_of(o), 1), "auditRef",
                                           cJSON_CreateString("sha256:edited"));
    before = cJSON_PrintUnformatted(o);
    assert_int_equal(audit_history_append(status_of(o), make_entry(3), o), MB_EINVAL); /* entry freed */
    assert_non_null(strstr(mb_error_last(), "status.history[1] has no well-formed auditRef"));
    char *after = cJSON_PrintUnformatted(o);
    assert_string_equal(before, after);
    free(before);
    free(after);

    cJSON_ReplaceItemInObjectCaseSensitive(status_of(o), "history", cJSON_CreateObject());
    assert_int_equal(audit_history_append(status_of(o), make_entry(3), o), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "status.history is not a list"));

    /* a null history is an absent one */
    cJSON_ReplaceItemInObjectCaseSensitive(status_of(o), "history", cJSON_CreateNull());
    assert_int_equal(audit_history_append(status_of(o), make_entry(3), o), 0);
    assert_int_equal(cJSON_GetArraySize(history_of(o)), 1);
    assert_string_equal(entry_str(o, 0, "prevAuditRef"), "");
    verify_ok(o, 1);

    /* a refused seal leaves the history as it was */
    cJSON_Delete(o);
    o = make_chain(1);
    cJSON *bad = make_entry(2);
    cJSON_AddNullToObject(bad, "trigger2");
    assert_int_equal(audit_history_append(status_of(o), bad, o), MB_EINVAL);
    assert_int_equal(cJSON_GetArraySize(history_of(o)), 1);
    assert_int_equal(audit_history_append(NULL, make_entry(2), o), MB_EINVAL);
    cJSON_Delete(o);
}

/* ---- DatasetPromotion, PolicyBundle ---- */

static cJSON *make_receipt(const char *when_key, const char *when, const char *inputs)
{
    cJSON *e = cJSON_CreateObject();
    if (strcmp(when_key, "promotedAt") == 0)
        cJSON_AddStringToObject(e, "outcome", "Promoted");
    cJSON_AddStringToObject(e, when_key, when);
    cJSON_AddStringToObject(e, "inputsDigest", inputs);
    return e;
}

static void single_receipt_case(const char *kind, const char *when_key)
{
    cJSON *o = make_object(kind, "thing");
    cJSON *receipt;
    char first[AUDIT_REF_SIZE];
    audit_report r;

    assert_int_equal(audit_receipt_set(status_of(o), make_receipt(when_key, "2026-11-20T09:03:40Z", ZEROS), o), 0);
    receipt = cJSON_GetObjectItemCaseSensitive(status_of(o), "receipt");
    assert_string_equal(json_str(receipt, "prevAuditRef", NULL), "");
    snprintf(first, sizeof(first), "%s", json_str(receipt, "auditRef", NULL));
    verify_ok(o, 1);

    assert_int_equal(audit_receipt_set(status_of(o), make_receipt(when_key, "2026-11-21T09:03:40Z", ONES), o), 0);
    receipt = cJSON_GetObjectItemCaseSensitive(status_of(o), "receipt");
    assert_string_equal(json_str(receipt, "prevAuditRef", NULL), first);
    assert_string_not_equal(json_str(receipt, "auditRef", NULL), first);
    assert_string_equal(json_str(receipt, "inputsDigest", NULL), ONES);
    verify_ok(o, 1);

    /* tampering with the decision's inputs */
    cJSON_ReplaceItemInObjectCaseSensitive(receipt, "inputsDigest", cJSON_CreateString(ZEROS));
    assert_int_equal(audit_verify_object(&r, o), 0);
    assert_int_equal(r.breaks, 1);
    char want[120];
    snprintf(want, sizeof(want), "%s kfm/thing: status.receipt: auditRef sha256:", kind);
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.receipt", want);
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.receipt", "does not match its contents");
    audit_report_free(&r);

    /* a malformed prevAuditRef */
    cJSON_ReplaceItemInObjectCaseSensitive(receipt, "inputsDigest", cJSON_CreateString(ONES));
    cJSON_ReplaceItemInObjectCaseSensitive(receipt, "prevAuditRef", cJSON_CreateString("sha256:short"));
    assert_int_equal(audit_verify_object(&r, o), 0);
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.receipt",
                   "prevAuditRef \"sha256:short\" is neither empty nor \"sha256:\" followed by 64");
    audit_report_free(&r);

    /* a receipt without a well-formed auditRef is not built upon */
    cJSON_DeleteItemFromObjectCaseSensitive(receipt, "auditRef");
    assert_int_equal(audit_receipt_set(status_of(o), make_receipt(when_key, "x", ONES), o), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "status.receipt has no well-formed auditRef"));
    cJSON_ReplaceItemInObjectCaseSensitive(status_of(o), "receipt", cJSON_CreateArray());
    assert_int_equal(audit_receipt_set(status_of(o), make_receipt(when_key, "x", ONES), o), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "status.receipt is not an object"));
    assert_int_equal(audit_verify_object(&r, o), 0);
    expect_finding(&r, AUDIT_FINDING_BREAK, "status.receipt", "status.receipt: is not an object");
    audit_report_free(&r);
    cJSON_Delete(o);
}

static void test_dataset_promotion_receipt(void **state)
{
    (void)state;
    single_receipt_case("DatasetPromotion", "promotedAt");
}

static void test_policy_bundle_receipt(void **state)
{
    (void)state;
    single_receipt_case("PolicyBundle", "publishedAt");
}

/* ---- objects, lists, kinds ---- */

static void test_no_receipts_yet(void **state)
{
    (void)state;
    const char *kinds[] = {"GovernedAPIRelease", "DatasetPromotion", "PolicyBundle"};
    for (int i = 0; i < 3; i++) {
        cJSON *o = make_object(kinds[i], "new");
        audit_report r;
        assert_int_equal(audit_verify_object(&r, o), 0);
        assert_int_equal(r.breaks, 0);
        assert_int_equal(r.receipts, 0);
        assert_int_equal(r.objects, 1);
        const audit_finding *f = expect_finding(&r, AUDIT_FINDING_NOTE, NULL, "kfm/new: no receipts yet");
        assert_null(f->path);
        audit_report_free(&r);
        cJSON_DeleteItemFromObjectCaseSensitive(o, "status");
        assert_int_equal(audit_verify_object(&r, o), 0);
        expect_finding(&r, AUDIT_FINDING_NOTE, NULL, "no receipts yet");
        audit_report_free(&r);
        cJSON_Delete(o);
    }
}

static void test_list_of_objects(void **state)
{
    (void)state;
    cJSON *list = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(list, "items");
    cJSON *dp = make_object("DatasetPromotion", "wells"), *pb = make_object("PolicyBundle", "kfm-policy");
    audit_report r;

    cJSON_AddStringToObject(list, "apiVersion", "v1");
    cJSON_AddStringToObject(list, "kind", "List");
    cJSON_AddItemToArray(items, make_chain(3));
    assert_int_equal(audit_receipt_set(status_of(dp), make_receipt("promotedAt", "t", ZEROS), dp), 0);
    assert_int_equal(audit_receipt_set(status_of(pb), make_receipt("publishedAt", "t", ZEROS), pb), 0);
    cJSON_AddItemToArray(items, dp);
    cJSON_AddItemToArray(items, pb);
    verify_ok(list, 5);

    /* the break names the object it is in */
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(status_of(dp), "receipt"), "outcome",
                                           cJSON_CreateString("Revoked"));
    assert_int_equal(audit_verify_object(&r, list), 0);
    assert_int_equal(r.objects, 3);
    assert_int_equal(r.breaks, 1);
    const audit_finding *f = expect_finding(&r, AUDIT_FINDING_BREAK, "status.receipt", "DatasetPromotion kfm/wells: ");
    assert_string_equal(f->object, "DatasetPromotion kfm/wells");
    assert_int_equal(count_kind(&r, AUDIT_FINDING_OK), 4);
    audit_report_free(&r);

    /* the API's own list kind, and an empty List */
    cJSON_ReplaceItemInObjectCaseSensitive(list, "kind", cJSON_CreateString("GovernedAPIReleaseList"));
    assert_int_equal(audit_verify_object(&r, list), 0);
    assert_int_equal(r.objects, 3);
    audit_report_free(&r);
    cJSON_ReplaceItemInObjectCaseSensitive(list, "items", cJSON_CreateArray());
    assert_int_equal(audit_verify_object(&r, list), 0);
    expect_finding(&r, AUDIT_FINDING_NOTE, NULL, "the List has no items");
    audit_report_free(&r);
    cJSON_Delete(list);
}

static void test_unsupported_objects(void **state)
{
    (void)state;
    cJSON *dep = cJSON_Parse("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
                             "\"metadata\":{\"namespace\":\"kfm\",\"name\":\"web\",\"uid\":\"u\"}}");
    audit_report r;

    assert_int_equal(audit_verify_object(&r, dep), MB_EINVAL);
    assert_int_equal(r.errors, 1);
    assert_int_equal(r.objects, 0);
    assert_non_null(strstr(mb_error_last(), "Deployment kfm/web (apiVersion apps/v1) is not supported"));
    audit_report_free(&r);

    /* one of ours by kind, but another group */
    cJSON *other = make_chain(1);
    cJSON_ReplaceItemInObjectCaseSensitive(other, "apiVersion", cJSON_CreateString("example.com/v1"));
    assert_int_equal(audit_verify_object(&r, other), MB_EINVAL);
    audit_report_free(&r);
    cJSON_Delete(other);

    /* no uid: cannot be checked */
    cJSON *nouid = make_chain(1);
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(nouid, "metadata"), "uid");
    assert_int_equal(audit_verify_object(&r, nouid), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "GovernedAPIRelease kfm/kfm-api: has no metadata.uid"));
    audit_report_free(&r);
    cJSON_Delete(nouid);

    /* in a List the others are still checked */
    cJSON *list = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(list, "items");
    cJSON_AddStringToObject(list, "kind", "List");
    cJSON_AddItemToArray(items, make_chain(3));
    cJSON_AddItemToArray(items, dep);
    cJSON_AddItemToArray(items, cJSON_CreateNumber(4));
    assert_int_equal(audit_verify_object(&r, list), MB_EINVAL);
    assert_int_equal(r.receipts, 3);
    assert_int_equal(r.breaks, 0);
    assert_int_equal(r.errors, 2);
    expect_finding(&r, AUDIT_FINDING_ERROR, NULL, "items[1]: Deployment kfm/web");
    expect_finding(&r, AUDIT_FINDING_ERROR, NULL, "items[2] is not a JSON object");
    audit_report_free(&r);
    cJSON_Delete(list);

    cJSON *arr = cJSON_CreateArray();
    assert_int_equal(audit_verify_object(&r, arr), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "the document is not a JSON object"));
    audit_report_free(&r);
    cJSON_Delete(arr);
    cJSON *nokind = cJSON_CreateObject();
    assert_int_equal(audit_verify_object(&r, nokind), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "the document has no kind"));
    audit_report_free(&r);
    cJSON_Delete(nokind);
}

/* ---- membrane receipt verify -f ---- */

/* Runs audit_verify_file on path; returns its exit status and its output in *text (caller frees). */
static int run_verify(const char *path, char **text)
{
    size_t len = 0;
    FILE *out = open_memstream(text, &len);
    assert_non_null(out);
    int rc = audit_verify_file(path, out);
    fclose(out);
    return rc;
}

static void expect_output(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("output does not contain \"%s\":\n%s", needle, text);
}

static int count_lines_starting(const char *text, const char *prefix)
{
    int n = 0;
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        n += strncmp(l, prefix, strlen(prefix)) == 0;
    return n;
}

/* ---- receipts that seal the decision's inputs ---- */

static cJSON *fixture_json(const char *rel)
{
    char *text = fixture_read(rel, NULL);
    cJSON *o = cJSON_Parse(text);
    free(text);
    assert_non_null(o);
    return o;
}

/*
 * gar-history-sealed.json (written and sealed with Python, README.md): two
 * entries from before the inputs were sealed, then two that seal the image,
 * rollbackImage, the results and their verificationDigest, the message,
 * reason and approver; and gar-history.json, whose entries all predate them:
 * both verify.
 */
static void test_sealed_inputs_old_and_new(void **state)
{
    (void)state;
    cJSON *old = fixture_json("audit/gar-history.json");
    cJSON *e;
    cJSON_ArrayForEach(e, history_of(old)) {
        assert_null(cJSON_GetObjectItem(e, "verificationDigest"));
        assert_null(cJSON_GetObjectItem(e, "verification"));
        assert_null(cJSON_GetObjectItem(e, "image"));
    }
    verify_ok(old, 3);
    cJSON_Delete(old);

    cJSON *o = fixture_json("audit/gar-history-sealed.json");
    const cJSON *last = cJSON_GetArrayItem(history_of(o), 3);
    char digest[AUDIT_REF_SIZE];
    assert_int_equal(audit_results_digest(digest, cJSON_GetObjectItem(last, "verification")), 0);
    assert_string_equal(json_str(last, "verificationDigest", NULL), digest);
    assert_string_equal(json_str(last, "approver", NULL), "oncall-lead@kfm.example");
    verify_ok(o, 4);
    cJSON_Delete(o);
}

/* Any change to a sealed input breaks the receipt it is in, and only that one. */
static void test_sealed_inputs_tampering(void **state)
{
    (void)state;
    const char *fields[] = {"image", "rollbackImage", "message", "reason", "approver", "verificationDigest"};
    for (size_t f = 0; f <= sizeof(fields) / sizeof(*fields); f++) {
        cJSON *o = fixture_json("audit/gar-history-sealed.json");
        cJSON *e = cJSON_GetArrayItem(history_of(o), 3);
        audit_report r;
        if (f < sizeof(fields) / sizeof(*fields)) {
            const char *was = json_str(e, fields[f], NULL);
            char changed[600];
            assert_non_null(was);
            snprintf(changed, sizeof(changed), "%s", was);
            changed[strlen(changed) - 1] = changed[strlen(changed) - 1] == 'a' ? 'b' : 'a';
            cJSON_ReplaceItemInObjectCaseSensitive(e, fields[f], cJSON_CreateString(changed));
        } else { /* a result turned from failed to passed, or back */
            cJSON *result = cJSON_GetArrayItem(cJSON_GetObjectItem(e, "verification"), 1);
            bool passed = cJSON_IsTrue(cJSON_GetObjectItem(result, "passed"));
            cJSON_ReplaceItemInObjectCaseSensitive(result, "passed", cJSON_CreateBool(!passed));
        }
        assert_int_equal(audit_verify_object(&r, o), 0);
        if (r.breaks < 1)
            fail_msg("tampering with %s went unnoticed",
                     f < sizeof(fields) / sizeof(*fields) ? fields[f] : "verification");
        expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[3]", "does not match its contents");
        assert_int_equal(count_kind(&r, AUDIT_FINDING_OK), 3);
        audit_report_free(&r);
        cJSON_Delete(o);
    }
}

/* The results' digest is recomputed, not trusted: a receipt sealed over a wrong verificationDigest is broken. */
static void test_sealed_results_digest_recomputed(void **state)
{
    (void)state;
    struct {
        bool results, digest, right;
        const char *says;
    } cases[] = {
        {true, true, false, "verificationDigest " ONES " does not match its verification results (recomputed sha256:"},
        {true, false, false, "has verification results but no verificationDigest"},
        {false, true, false, "the verification results it seals are missing"},
        {true, true, true, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        cJSON *o = make_chain(2);
        cJSON *e = make_entry(3);
        cJSON *results = cJSON_Parse("[{\"name\":\"health\",\"passed\":true,\"httpStatus\":200,\"latencyMs\":2},"
                                     "{\"name\":\"focus-ask\",\"passed\":false,\"trigger\":\"UncitedAnswer\","
                                     "\"message\":\"no result\"}]");
        char digest[AUDIT_REF_SIZE];
        audit_report r;
        assert_int_equal(audit_results_digest(digest, results), 0);
        if (cases[i].digest)
            cJSON_AddStringToObject(e, "verificationDigest", cases[i].right ? digest : ONES);
        if (cases[i].results)
            cJSON_AddItemToObject(e, "verification", results);
        else
            cJSON_Delete(results);
        assert_int_equal(audit_history_append(status_of(o), e, o), 0); /* its auditRef is right */
        assert_int_equal(audit_verify_object(&r, o), 0);
        if (cases[i].says) {
            assert_int_equal(r.breaks, 1);
            expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[2]", cases[i].says);
        } else {
            assert_int_equal(r.breaks, 0);
            assert_int_equal(count_kind(&r, AUDIT_FINDING_OK), 3);
        }
        audit_report_free(&r);
        cJSON_Delete(o);
    }
}

static void test_verify_file_fixtures(void **state)
{
    (void)state;
    char *text = NULL;
    char want[512];

    assert_int_equal(run_verify(fixture_path("audit/gar-history.json"), &text), 0);
    expect_output(text, "ok GovernedAPIRelease kfm/kfm-api: status.history[0] (releaseID 3f9c0a1b2c4d) "
                        "sha256:3bfeba8ed863b63af2c643fb96a948eb27aa3c603e33ccaea52ee2825b099968\n");
    assert_int_equal(count_lines_starting(text, "ok "), 3);
    snprintf(want, sizeof(want), "%s: chain holds: 3 receipts in 1 object verified\n",
             fixture_path("audit/gar-history.json"));
    expect_output(text, want);
    free(text);

    assert_int_equal(run_verify(fixture_path("audit/gar-history-tampered.json"), &text), 1);
    expect_output(text, "broken GovernedAPIRelease kfm/kfm-api: status.history[1] (releaseID b58d2e7f9a10): "
                        "auditRef sha256:2a015de144868044f1b0cc979443bebb2d73a30b8db3c70bb6caab9cc02d65cd "
                        "does not match its contents (recomputed sha256:");
    assert_int_equal(count_lines_starting(text, "ok "), 2);
    assert_int_equal(count_lines_starting(text, "broken "), 1);
    expect_output(text, "chain broken: 1 problem in 3 receipts\n");
    free(text);

    assert_int_equal(run_verify(fixture_path("audit/gar-history-sealed.json"), &text), 0);
    assert_int_equal(count_lines_starting(text, "ok "), 4);
    free(text);
    assert_int_equal(run_verify(fixture_path("audit/gar-history-sealed-mismatch.json"), &text), 1);
    expect_output(text, "broken GovernedAPIRelease kfm/kfm-api: status.history[3] (releaseID e0c4a9d3b1f2): "
                        "verificationDigest sha256:db25a48f3b0e0389ade0c796bad3796d96fbcc47b0b18750d7ce58ba8f44498c "
                        "does not match its verification results (recomputed "
                        "sha256:30ef065dd436f1d64aafdcda79a7119dd9a0e5a36233388e6a3fa81301e89c8d)\n");
    assert_int_equal(count_lines_starting(text, "ok "), 3);
    free(text);

    assert_int_equal(run_verify(fixture_path("audit/gar-no-history.json"), &text), 0);
    expect_output(text, "note GovernedAPIRelease kfm/kfm-api-next: no receipts yet (status.history is empty)\n");
    expect_output(text, ": no receipts to verify yet\n");
    free(text);

    assert_int_equal(run_verify(fixture_path("audit/dp-receipt.json"), &text), 0);
    expect_output(text, "ok DatasetPromotion kfm/wells-2026-03-01-1: status.receipt sha256:");
    free(text);
    assert_int_equal(run_verify(fixture_path("audit/pb-receipt.json"), &text), 0);
    expect_output(text, "ok PolicyBundle kfm/kfm-policy: status.receipt sha256:");
    free(text);
    assert_int_equal(run_verify(fixture_path("audit/list.json"), &text), 0);
    assert_int_equal(count_lines_starting(text, "ok "), 5);
    expect_output(text, "chain holds: 5 receipts in 3 objects verified\n");
    free(text);

    assert_int_equal(run_verify(fixture_path("audit/deployment.json"), &text), 2);
    snprintf(want, sizeof(want), "error %s: Deployment kfm/kfm-api (apiVersion apps/v1) is not supported: ",
             fixture_path("audit/deployment.json"));
    expect_output(text, want);
    free(text);

    assert_int_equal(run_verify(fixture_path("audit/gar-history.yaml"), &text), 2);
    snprintf(want, sizeof(want),
             "error %s is not JSON (syntax error at line 1, column 1); expected the output "
             "of kubectl get -o json (not -o yaml)\n",
             fixture_path("audit/gar-history.yaml"));
    assert_string_equal(text, want);
    free(text);

    assert_int_equal(run_verify(fixture_path("audit/no-such-file.json"), &text), 2);
    expect_output(text, "cannot open ");
    expect_output(text, "no-such-file.json: No such file or directory");
    free(text);

    assert_int_equal(run_verify(fixture_path("audit"), &text), 2);
    expect_output(text, "cannot read ");
    free(text);
}

/* Writes text to a temporary file; returns its path (static). */
static const char *write_temp(const char *text, size_t len)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/membrane-audit-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static void test_verify_file_edge_cases(void **state)
{
    (void)state;
    char *text = NULL, *json;
    const char *path;

    path = write_temp("  \n", 3);
    assert_int_equal(run_verify(path, &text), 2);
    expect_output(text, " is empty; expected the output of kubectl get -o json\n");
    unlink(path);
    free(text);

    path = write_temp("{\"kind\":\n\"List\",\n  \"items\": [}", 29);
    assert_int_equal(run_verify(path, &text), 2);
    expect_output(text, "is not JSON (syntax error at line 3, column 13)");
    unlink(path);
    free(text);

    path = write_temp("{}\0{}", 5);
    assert_int_equal(run_verify(path, &text), 2);
    expect_output(text, "holds a NUL byte");
    unlink(path);
    free(text);

    /* a byte order mark is tolerated */
    char *fx = fixture_read("audit/dp-receipt.json", NULL);
    assert_non_null(fx);
    size_t fl = strlen(fx);
    char *bom = malloc(fl + 3);
    memcpy(bom, "\xef\xbb\xbf", 3);
    memcpy(bom + 3, fx, fl);
    path = write_temp(bom, fl + 3);
    assert_int_equal(run_verify(path, &text), 0);
    unlink(path);
    free(text);
    free(bom);
    free(fx);

    /* a List with a break and an object that cannot be checked: the break decides (1) */
    cJSON *list = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(list, "items");
    cJSON_AddStringToObject(list, "kind", "List");
    cJSON *gar = make_chain(2);
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetArrayItem(history_of(gar), 0), "outcome",
                                           cJSON_CreateString("Succeeded!"));
    cJSON_AddItemToArray(items, gar);
    cJSON_AddItemToArray(items, cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\"}"));
    json = cJSON_Print(list);
    path = write_temp(json, strlen(json));
    assert_int_equal(run_verify(path, &text), 1);
    expect_output(text, "broken GovernedAPIRelease kfm/kfm-api: status.history[0]");
    expect_output(text, ": items[1]: ConfigMap ?/? (apiVersion v1) is not supported");
    unlink(path);
    free(text);
    free(json);

    /* without the break, the unsupported item gives 2 */
    cJSON_DeleteItemFromArray(items, 0);
    json = cJSON_Print(list);
    path = write_temp(json, strlen(json));
    assert_int_equal(run_verify(path, &text), 2);
    expect_output(text, "1 object could not be checked\n");
    unlink(path);
    free(text);
    free(json);
    cJSON_Delete(list);

    /* "-" reads stdin (last: it consumes this process's stdin) */
    assert_non_null(freopen(fixture_path("audit/gar-history.json"), "r", stdin));
    assert_int_equal(run_verify("-", &text), 0);
    expect_output(text, "stdin: chain holds: 3 receipts in 1 object verified\n");
    free(text);
}

/*
 * The fixture's refs, recomputed from the object by this code, equal the
 * values computed independently with Python (test/fixtures/audit/README.md):
 * a change to the body's shape or to canonicalization fails here even if the
 * fixtures were regenerated.
 */
static void test_fixture_refs_match_independent_computation(void **state)
{
    (void)state;
    static const char *const want[] = {
        "sha256:3bfeba8ed863b63af2c643fb96a948eb27aa3c603e33ccaea52ee2825b099968",
        "sha256:2a015de144868044f1b0cc979443bebb2d73a30b8db3c70bb6caab9cc02d65cd",
        "sha256:20e3d58a90010d5949611119c8434cdbe150e2a3731e12e202f9480dde888b73",
    };
    char *text = fixture_read("audit/gar-history.json", NULL);
    cJSON *o = cJSON_Parse(text);
    char ref[AUDIT_REF_SIZE];

    assert_non_null(o);
    assert_int_equal(cJSON_GetArraySize(history_of(o)), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(audit_receipt_ref(ref, cJSON_GetArrayItem(history_of(o), i), o), 0);
        assert_string_equal(ref, want[i]);
    }
    cJSON_Delete(o);
    free(text);

    text = fixture_read("audit/dp-receipt.json", NULL);
    o = cJSON_Parse(text);
    assert_int_equal(audit_receipt_ref(ref, json_get(o, "status", "receipt", NULL), o), 0);
    assert_string_equal(ref, "sha256:4b353593370428bd8acd631c7f32e6f0e259223a2a58e453c9c8e45c31ee5640");
    cJSON_Delete(o);
    free(text);
}

/* ---- promotedFrom: the links between environments ---- */

/* A GovernedAPIRelease kfm-api in namespace ns. */
static cJSON *release_in(const char *ns)
{
    cJSON *o = make_object("GovernedAPIRelease", "kfm-api");
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(o, "metadata"), "namespace", cJSON_CreateString(ns));
    return o;
}

/* kfm-prod/kfm-api whose entry n was promoted on kfm-staging/kfm-api's receipt ref (also in status.promotedFrom). */
static cJSON *prod_promoted(int n, const char *ref)
{
    cJSON *o = release_in("kfm-prod"), *e = make_entry(n), *link = cJSON_CreateObject(), *list = cJSON_CreateArray();
    cJSON_AddStringToObject(link, "namespace", "kfm-staging");
    cJSON_AddStringToObject(link, "name", "kfm-api");
    cJSON_AddStringToObject(link, "auditRef", ref);
    cJSON_AddItemToArray(list, link);
    cJSON_AddItemToObject(status_of(o), "promotedFrom", cJSON_Duplicate(list, true));
    cJSON_AddItemToObject(e, "promotedFrom", list);
    cJSON_AddStringToObject(status_of(o), "releaseID", json_str(e, "releaseID", NULL));
    if (audit_history_append(status_of(o), e, o) < 0)
        fail_msg("append: %s", mb_error_last());
    return o;
}

/* kfm-staging/kfm-api with entries 1 (Succeeded) and 2 (RolledBack). */
static cJSON *staging_chain(void)
{
    cJSON *o = release_in("kfm-staging");
    for (int i = 1; i <= 2; i++)
        if (audit_history_append(status_of(o), make_entry(i), o) < 0)
            fail_msg("append %d: %s", i, mb_error_last());
    return o;
}

static void links(audit_report *r, const cJSON *a, const cJSON *b)
{
    const cJSON *docs[] = {a, b};
    assert_int_equal(audit_verify_promotions(r, docs, b ? 2 : 1), 0);
}

static void test_promoted_from_links(void **state)
{
    (void)state;
    audit_report r;
    cJSON *staging = staging_chain();
    char *ok_ref = strdup(entry_str(staging, 0, "auditRef")), *rolled_ref = strdup(entry_str(staging, 1, "auditRef"));

    cJSON *prod = prod_promoted(1, ok_ref); /* digest 1, Succeeded in staging: both links hold */
    links(&r, staging, prod);
    assert_int_equal(r.breaks, 0);
    assert_int_equal(count_kind(&r, AUDIT_FINDING_OK), 2);
    expect_finding(&r, AUDIT_FINDING_OK, "status.history[0].promotedFrom[0]",
                   "GovernedAPIRelease kfm-prod/kfm-api status.history[0].promotedFrom[0]: promotedFrom "
                   "kfm-staging/kfm-api status.history[0] (sha256:"
                   "0000000000000000000000000000000000000000000000000000000000000001) Succeeded, same digest: ok");
    expect_finding(&r, AUDIT_FINDING_OK, "status.promotedFrom[0]", "status.history[0] (sha256:");
    audit_report_free(&r);

    links(&r, prod, NULL); /* the upstream not given: a note, not a break */
    assert_int_equal(r.breaks, 0);
    assert_int_equal(count_kind(&r, AUDIT_FINDING_NOTE), 2);
    expect_finding(&r, AUDIT_FINDING_NOTE, "status.history[0].promotedFrom[0]", "not among the files");
    audit_report_free(&r);
    cJSON_Delete(prod);

    /* each a broken link, whichever file comes first: both of prod's links (history and status) break */
    const struct {
        int digest;
        const char *ref;
        bool upstream_first;
        const char *message;
    } broken[] = {
        {2, rolled_ref, true, /* promoted on staging's RolledBack entry */
         "status.history[1] (sha256:0000000000000000000000000000000000000000000000000000000000000002) "
         "RolledBack (not Succeeded), same digest: broken"},
        {3, ok_ref, false, /* staging succeeded with digest 1, prod released digest 3 on it */
         "Succeeded, a digest other than this entry's "
         "sha256:0000000000000000000000000000000000000000000000000000000000000003: broken"},
        {1, ZEROS, false, /* a ref staging's history does not hold */
         "promotedFrom kfm-staging/kfm-api auditRef " ZEROS " is not in that release's status.history"},
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        prod = prod_promoted(broken[i].digest, broken[i].ref);
        if (broken[i].upstream_first)
            links(&r, staging, prod);
        else
            links(&r, prod, staging);
        assert_int_equal(r.breaks, 2);
        expect_finding(&r, AUDIT_FINDING_BREAK, "status.history[0].promotedFrom[0]", broken[i].message);
        audit_report_free(&r);
        cJSON_Delete(prod);
    }

    /* the upstream's entry edited to "Succeeded" by hand: its own chain breaks (the link alone cannot see it) */
    prod = prod_promoted(2, rolled_ref);
    cJSON *e = cJSON_GetArrayItem(history_of(staging), 1);
    cJSON_ReplaceItemInObject(e, "outcome", cJSON_CreateString("Succeeded"));
    assert_int_equal(audit_verify_object(&r, staging), 0);
    assert_true(r.breaks > 0);
    audit_report_free(&r);
    cJSON_Delete(prod);

    free(ok_ref);
    free(rolled_ref);
    cJSON_Delete(staging);
}

/* Writes o to a temporary file as kubectl would; returns its path (caller frees). */
static char *write_object(const cJSON *o)
{
    char *json = cJSON_Print(o), *path = strdup("/tmp/membrane-audit-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    free(json);
    return path;
}

/* membrane receipt verify -f staging.json -f prod.json: each file as before, then the links; a broken link exits 1. */
static void test_verify_files_links(void **state)
{
    (void)state;
    cJSON *staging = staging_chain();
    cJSON *good = prod_promoted(1, entry_str(staging, 0, "auditRef"));
    cJSON *bad = prod_promoted(2, entry_str(staging, 1, "auditRef"));
    char *sp = write_object(staging), *gp = write_object(good), *bp = write_object(bad), *text = NULL;
    size_t len = 0;
    FILE *out;

    const char *both[] = {sp, gp};
    assert_non_null(out = open_memstream(&text, &len));
    assert_int_equal(audit_verify_files(both, 2, out), 0);
    fclose(out);
    expect_output(text, ": chain holds: 2 receipts in 1 object verified\n");
    expect_output(text, ": chain holds: 1 receipt in 1 object verified\n");
    expect_output(text, "ok GovernedAPIRelease kfm-prod/kfm-api status.history[0].promotedFrom[0]: promotedFrom "
                        "kfm-staging/kfm-api status.history[0] (sha256:");
    expect_output(text, "promotedFrom: 2 links to an upstream release hold\n");
    free(text);

    const char *one[] = {gp}; /* as before with one file: the chain holds, the link is a note */
    assert_non_null(out = open_memstream(&text, &len));
    assert_int_equal(audit_verify_files(one, 1, out), 0);
    fclose(out);
    expect_output(text, "note GovernedAPIRelease kfm-prod/kfm-api status.history[0].promotedFrom[0]: promotedFrom "
                        "kfm-staging/kfm-api");
    assert_int_equal(count_lines_starting(text, "broken "), 0);
    free(text);

    const char *broken[] = {sp, bp};
    assert_non_null(out = open_memstream(&text, &len));
    assert_int_equal(audit_verify_files(broken, 2, out), 1);
    fclose(out);
    assert_int_equal(count_lines_starting(text, "broken "), 2);
    expect_output(text, "promotedFrom: 2 of 2 links to an upstream release broken\n");
    free(text);

    unlink(sp);
    unlink(gp);
    unlink(bp);
    free(sp);
    free(gp);
    free(bp);
    cJSON_Delete(staging);
    cJSON_Delete(good);
    cJSON_Delete(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_sets_refs),
        cmocka_unit_test(test_seal_refusals),
        cmocka_unit_test(test_append_builds_chain),
        cmocka_unit_test(test_append_trims_to_20),
        cmocka_unit_test(test_tampering_any_field_is_detected),
        cmocka_unit_test(test_tampering_links_and_identity),
        cmocka_unit_test(test_reordering_is_detected),
        cmocka_unit_test(test_deleted_entries_are_detected),
        cmocka_unit_test(test_malformed_refs_are_reported),
        cmocka_unit_test(test_reencoding_still_verifies),
        cmocka_unit_test(test_append_refusals),
        cmocka_unit_test(test_dataset_promotion_receipt),
        cmocka_unit_test(test_policy_bundle_receipt),
        cmocka_unit_test(test_no_receipts_yet),
        cmocka_unit_test(test_list_of_objects),
        cmocka_unit_test(test_unsupported_objects),
        cmocka_unit_test(test_fixture_refs_match_independent_computation),
        cmocka_unit_test(test_sealed_inputs_old_and_new),
        cmocka_unit_test(test_sealed_inputs_tampering),
        cmocka_unit_test(test_sealed_results_digest_recomputed),
        cmocka_unit_test(test_verify_file_fixtures),
        cmocka_unit_test(test_verify_file_edge_cases),
        cmocka_unit_test(test_promoted_from_links),
        cmocka_unit_test(test_verify_files_links),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

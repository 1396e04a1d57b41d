/*
 * libFuzzer target for the receipt canonicalizer and verifier: the input is a
 * JSON document (what `membrane receipt verify -f` reads, or any value a
 * receipt body may hold). Checked properties: canonical JSON is itself JSON
 * that canonicalizes to the same bytes (so its ref is stable), audit_ref
 * agrees with audit_canonical_json on success and failure, verifying an
 * object keeps its counts consistent, and a receipt sealed for the object
 * (its status.receipt, else its first status.history entry) is recomputed to
 * the auditRef it was sealed with.
 */
#include "audit/canonical.h"
#include "util/text.h"
#include "audit/receipt.h"
#include "audit/verify.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void canonical_check(const cJSON *doc)
{
    char *canon = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    char ref[AUDIT_REF_SIZE], ref2[AUDIT_REF_SIZE];
    cJSON *reparsed = NULL;
    int err = audit_canonical_json(&canon, &len, doc);

    if (audit_ref(ref, doc) != err || (err == 0) != mb_sha256_digest_valid(ref))
        abort();
    if (err < 0) {
        if (canon || len || ref[0] || (err != MB_EINVAL && err != MB_ENOMEM))
            abort();
        return;
    }
    if (strlen(canon) != len || !(reparsed = cJSON_ParseWithLength(canon, len)))
        abort();
    if (audit_canonical_json(&again, &len2, reparsed) < 0 || len2 != len || memcmp(canon, again, len) != 0)
        abort();
    if (audit_ref(ref2, reparsed) < 0 || strcmp(ref, ref2) != 0)
        abort();
    cJSON_Delete(reparsed);
    free(again);
    free(canon);
}

static void verify_check(const cJSON *doc)
{
    audit_report report;
    size_t breaks = 0, errors = 0;
    int err = audit_verify_object(&report, doc);

    for (size_t i = 0; i < report.count; i++) {
        const audit_finding *f = &report.findings[i];
        if (!f->object || !f->text || strchr(f->text, '\n'))
            abort();
        breaks += f->kind == AUDIT_FINDING_BREAK;
        errors += f->kind == AUDIT_FINDING_ERROR;
    }
    if (breaks != report.breaks || errors != report.errors || (err == MB_EINVAL) != (errors > 0) ||
        (err < 0 && err != MB_EINVAL))
        abort();
    audit_report_free(&report);
}

static void seal_check(const cJSON *doc)
{
    const cJSON *entry = json_get(doc, "status", "receipt", NULL);
    cJSON *copy = NULL;
    char ref[AUDIT_REF_SIZE];

    if (!cJSON_IsObject(entry))
        entry = cJSON_GetArrayItem(json_get(doc, "status", "history", NULL), 0);
    if (!cJSON_IsObject(entry) || !(copy = cJSON_Duplicate(entry, 1)))
        return;
    if (audit_seal(copy, doc, "") == 0) {
        const char *sealed = json_str(copy, "auditRef", NULL);
        if (!mb_sha256_digest_valid(sealed) || audit_receipt_ref(ref, copy, doc) < 0 || strcmp(ref, sealed) != 0)
            abort();
    }
    cJSON_Delete(copy);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mb_log_setup(MB_LOG_TEXT, MB_LOG_ERROR, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *doc = cJSON_ParseWithLength((const char *)data, size);

    if (!doc)
        return 0;
    canonical_check(doc);
    verify_check(doc);
    seal_check(doc);
    cJSON_Delete(doc);
    return 0;
}

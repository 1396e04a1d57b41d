/*
 * Receipt verification: dispatch on the object's kind (or walk a List),
 * recompute each receipt with audit_receipt_ref(), check the links of the
 * chain, and collect one finding per receipt, break, note or unusable object.
 * audit_verify_file() is the CLI face: the only I/O of the audit module
 * (reading the file) and the printing of the findings.
 */
#include "audit/verify.h"
#include "util/text.h"
#include "audit/receipt.h"
#include "util/error.h"
#include "util/json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_GROUP "governance.kfm.dev"
#define AUDIT_FILE_MAX (64u << 20)
#define AUDIT_SUPPORTED                                                                                                \
    "GovernedAPIRelease, DatasetPromotion and PolicyBundle objects (" AUDIT_GROUP                                      \
    "), or a List of them, as kubectl get -o json prints them"

/* A short printable form of untrusted text for a one-line message: controls become '?'. */
static const char *printable(char *buf, size_t size, const char *s)
{
    size_t i = 0;
    for (; s && *s && i + 1 < size; s++)
        buf[i++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
    buf[i] = '\0';
    if (s && *s && size > 4) { /* cut, at a character boundary */
        i = size - 4;
        while (i > 0 && ((unsigned char)buf[i] & 0xc0) == 0x80)
            i--;
        memcpy(buf + i, "...", 4);
    }
    return buf;
}

/* How a ref-like value is shown: as is when well-formed, "" when empty, quoted otherwise, (none) when absent. */
static const char *ref_shown(char *buf, size_t size, const cJSON *item)
{
    char tmp[96];
    if (!cJSON_IsString(item))
        snprintf(buf, size, "%s", item ? "(not a string)" : "(none)");
    else if (mb_sha256_digest_valid(item->valuestring))
        snprintf(buf, size, "%s", item->valuestring);
    else
        snprintf(buf, size, "\"%s\"", printable(tmp, sizeof(tmp), item->valuestring));
    return buf;
}

static int finding_add(audit_report *r, audit_finding_kind kind, const char *object, const char *path, const char *fmt,
                       ...) __attribute__((format(printf, 5, 6)));

static int finding_add(audit_report *r, audit_finding_kind kind, const char *object, const char *path, const char *fmt,
                       ...)
{
    audit_finding f = {.kind = kind};
    audit_finding *grown;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&f.text, fmt, ap);
    va_end(ap);
    if (n < 0) {
        f.text = NULL;
        goto nomem;
    }
    if (!(f.object = strdup(object)) || (path && !(f.path = strdup(path))))
        goto nomem;
    if (!(grown = realloc(r->findings, (r->count + 1) * sizeof(*grown))))
        goto nomem;
    r->findings = grown;
    r->findings[r->count++] = f;
    if (kind == AUDIT_FINDING_BREAK)
        r->breaks++;
    else if (kind == AUDIT_FINDING_ERROR)
        r->errors++;
    return 0;
nomem:
    free(f.text);
    free(f.object);
    free(f.path);
    return mb_error_set(MB_ENOMEM, "out of memory while verifying receipts");
}

typedef enum {
    PREV_EMPTY_OR_WELL_FORMED, /* a single receipt, or the first of a full history */
    PREV_EMPTY,                /* the first of a history that was never trimmed */
    PREV_EQUALS,               /* the auditRef of the entry before */
} prev_rule;

typedef struct {
    const cJSON *object; /* the Kubernetes object, for its identity */
    const char *label;   /* "GovernedAPIRelease kfm/kfm-api" */
} verify_ctx;

/*
 * A receipt that seals the results its decision was taken on: its
 * verificationDigest must be the digest recomputed from its verification
 * array. A receipt with neither member was written before they existed, and
 * is not a break.
 */
static int results_check(audit_report *r, const verify_ctx *ctx, const char *path, const char *where,
                         const cJSON *entry)
{
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(entry, AUDIT_RESULTS_MEMBER);
    const cJSON *digest = cJSON_GetObjectItemCaseSensitive(entry, AUDIT_RESULTS_DIGEST_MEMBER);
    char recomputed[AUDIT_REF_SIZE], shown[128], why[512];
    int err = 0;

    if (!results && !digest)
        return 0;
    if (!digest)
        return finding_add(r, AUDIT_FINDING_BREAK, ctx->label, path,
                           "%s: %s: has verification results but no verificationDigest to check them against",
                           ctx->label, where);
    if (!cJSON_IsArray(results))
        return finding_add(r, AUDIT_FINDING_BREAK, ctx->label, path,
                           "%s: %s: verificationDigest %s, but the verification results it seals are %s", ctx->label,
                           where, ref_shown(shown, sizeof(shown), digest), results ? "not a list" : "missing");
    if ((err = audit_results_digest(recomputed, results)) < 0) {
        if (err != MB_EINVAL)
            return err;
        return finding_add(r, AUDIT_FINDING_BREAK, ctx->label, path,
                           "%s: %s: the verification results cannot be recomputed: %s", ctx->label, where,
                           printable(why, sizeof(why), mb_error_last()));
    }
    if (!cJSON_IsString(digest) || strcmp(digest->valuestring, recomputed) != 0)
        return finding_add(r, AUDIT_FINDING_BREAK, ctx->label, path,
                           "%s: %s: verificationDigest %s does not match its verification results (recomputed %s)",
                           ctx->label, where, ref_shown(shown, sizeof(shown), digest), recomputed);
    return 0;
}

/*
 * Checks one receipt at path. rule says what its prevAuditRef must be; for
 * PREV_EQUALS, want is the entry before's auditRef item (may be NULL) and
 * want_path names it; for PREV_EMPTY, held is the history's length.
 */
static int receipt_check(audit_report *r, const verify_ctx *ctx, const char *path, const cJSON *entry, prev_rule rule,
                         const cJSON *want, const char *want_path, int held)
{
    int err = 0;
    size_t breaks = r->breaks;
    char where[320], rid[64], recomputed[AUDIT_REF_SIZE] = "";
    char shown[128], shown2[128];
    const cJSON *ref, *prev;
    const char *release_id = json_str(entry, "releaseID", NULL);

    if (release_id)
        snprintf(where, sizeof(where), "%s (releaseID %s)", path, printable(rid, sizeof(rid), release_id));
    else
        snprintf(where, sizeof(where), "%s", path);
    r->receipts++;
    if (!cJSON_IsObject(entry))
        return finding_add(r, AUDIT_FINDING_BREAK, ctx->label, path, "%s: %s: is not an object", ctx->label, where);

    ref = cJSON_GetObjectItemCaseSensitive(entry, "auditRef");
    prev = cJSON_GetObjectItemCaseSensitive(entry, "prevAuditRef");
    if ((err = audit_receipt_ref(recomputed, entry, ctx->object)) < 0) {
        if (err != MB_EINVAL) /* out of memory, or the digest failed: nothing wrong with the receipt */
            return err;
        char why[512];
        if ((err = finding_add(r, AUDIT_FINDING_BREAK, ctx->label, path, "%s: %s: cannot be recomputed: %s", ctx->label,
                               where, printable(why, sizeof(why), mb_error_last()))) < 0)
            return err;
    }

    if (!cJSON_IsString(ref) || !mb_sha256_digest_valid(ref->valuestring)) {
        err = finding_add(r, AUDIT_FINDING_BREAK, ctx->label, path,
                          "%s: %s: auditRef %s is not \"sha256:\" followed by 64 lowercase hex digits%s%s%s",
                          ctx->label, where, ref_shown(shown, sizeof(shown), ref), *recomputed ? " (recomputed " : "",
                          recomputed, *recomputed ? ")" : "");
    } else if (*recomputed && strcmp(ref->valuestring, recomputed) != 0) {
        err = finding_add(r, AUDIT_FINDING_BREAK, ctx->label, path,
                          "%s: %s: auditRef %s does not match its contents (recomputed %s)", ctx->label, where,
                          ref->valuestring, recomputed);
    }
    if (err < 0)
        return err;

    if (!cJSON_IsString(prev)) {
        err = finding_add(r, AUDIT_FINDING_BREAK, ctx->label, path, "%s: %s: prevAuditRef is %s", ctx->label, where,
                          prev ? "not a string" : "missing");
    } else if (rule == PREV_EQUALS) {
        if (!cJSON_IsString(want) || strcmp(prev->valuestring, want->valuestring) != 0)
            err = finding_add(r, AUDIT_FINDING_BREAK, ctx->label, path, "%s: %s: prevAuditRef %s is not %s %s",
                              ctx->label, where, ref_shown(shown, sizeof(shown), prev), want_path,
                              ref_shown(shown2, sizeof(shown2), want));
    } else if (*prev->valuestring && !mb_sha256_digest_valid(prev->valuestring)) {
        err = finding_add(r, AUDIT_FINDING_BREAK, ctx->label, path,
                          "%s: %s: prevAuditRef %s is neither empty nor \"sha256:\" followed by 64 "
                          "lowercase hex digits",
                          ctx->label, where, ref_shown(shown, sizeof(shown), prev));
    } else if (rule == PREV_EMPTY && *prev->valuestring) {
        err = finding_add(r, AUDIT_FINDING_BREAK, ctx->label, path,
                          "%s: %s: prevAuditRef %s names an earlier receipt, but the history holds "
                          "only %d entr%s and entries are dropped only beyond %d, so earlier entries "
                          "were removed",
                          ctx->label, where, prev->valuestring, held, held == 1 ? "y" : "ies", AUDIT_HISTORY_MAX);
    }
    if (err < 0)
        return err;
    if ((err = results_check(r, ctx, path, where, entry)) < 0)
        return err;

    if (r->breaks == breaks)
        err = finding_add(r, AUDIT_FINDING_OK, ctx->label, path, "%s: %s %s", ctx->label, where, ref->valuestring);
    return err;
}

static int history_check(audit_report *r, const verify_ctx *ctx)
{
    int err = 0;
    const cJSON *history = json_get(ctx->object, "status", "history", NULL);
    const cJSON *e, *before = NULL;
    int n, i = 0;
    char path[64], want_path[64];

    if (!history || cJSON_IsNull(history) || (cJSON_IsArray(history) && !history->child))
        return finding_add(r, AUDIT_FINDING_NOTE, ctx->label, NULL, "%s: no receipts yet (status.history is empty)",
                           ctx->label);
    if (!cJSON_IsArray(history))
        return finding_add(r, AUDIT_FINDING_BREAK, ctx->label, "status.history", "%s: status.history is not a list",
                           ctx->label);
    n = cJSON_GetArraySize(history);
    for (e = history->child; e; before = e, e = e->next, i++) {
        snprintf(path, sizeof(path), "status.history[%d]", i);
        if (i == 0) {
            err = receipt_check(r, ctx, path, e, n >= AUDIT_HISTORY_MAX ? PREV_EMPTY_OR_WELL_FORMED : PREV_EMPTY, NULL,
                                NULL, n);
        } else {
            snprintf(want_path, sizeof(want_path), "status.history[%d].auditRef", i - 1);
            err = receipt_check(r, ctx, path, e, PREV_EQUALS,
                                cJSON_IsObject(before) ? cJSON_GetObjectItemCaseSensitive(before, "auditRef") : NULL,
                                want_path, n);
        }
        if (err < 0)
            return err;
    }
    return 0;
}

static int single_receipt_check(audit_report *r, const verify_ctx *ctx)
{
    const cJSON *receipt = json_get(ctx->object, "status", "receipt", NULL);

    if (!receipt || cJSON_IsNull(receipt))
        return finding_add(r, AUDIT_FINDING_NOTE, ctx->label, NULL, "%s: no receipts yet (status.receipt is absent)",
                           ctx->label);
    return receipt_check(r, ctx, "status.receipt", receipt, PREV_EMPTY_OR_WELL_FORMED, NULL, NULL, 1);
}

static bool is_ours(const char *kind)
{
    return kind && (strcmp(kind, "GovernedAPIRelease") == 0 || strcmp(kind, "DatasetPromotion") == 0 ||
                    strcmp(kind, "PolicyBundle") == 0);
}

static bool is_list(const char *kind)
{
    size_t n = kind ? strlen(kind) : 0;
    char base[64];
    if (!kind || strcmp(kind, "List") == 0)
        return kind != NULL;
    if (n <= 4 || n - 4 >= sizeof(base) || strcmp(kind + n - 4, "List") != 0)
        return false;
    memcpy(base, kind, n - 4);
    base[n - 4] = '\0';
    return is_ours(base); /* GovernedAPIReleaseList and friends, as the API itself lists them */
}

static int object_check(audit_report *r, const cJSON *obj, const char *where);

static int list_check(audit_report *r, const cJSON *list, const char *where, const char *label)
{
    int err = 0;
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(list, "items");
    char item_where[256];
    int i = 0;

    if (!cJSON_IsArray(items))
        return finding_add(r, AUDIT_FINDING_ERROR, label, NULL, "%s: the List has no items list", label);
    if (!items->child)
        return finding_add(r, AUDIT_FINDING_NOTE, label, NULL, "%s: the List has no items", label);
    for (const cJSON *it = items->child; it; it = it->next, i++) {
        snprintf(item_where, sizeof(item_where), "%s%sitems[%d]", where, *where ? "." : "", i);
        if ((err = object_check(r, it, item_where)) < 0)
            return err;
    }
    return 0;
}

/* where: "" for the document itself, "items[2]" for an item of a List. 0, MB_ENOMEM or MB_ERROR. */
static int object_check(audit_report *r, const cJSON *obj, const char *where)
{
    char label[320], b1[96], b2[96], b3[96], b4[96];
    const char *loc = *where ? where : "the document";
    const char *kind = json_str(obj, "kind", NULL);
    const char *api_version = json_str(obj, "apiVersion", NULL);
    const char *ns = json_str(obj, "metadata", "namespace", NULL);
    const char *name = json_str(obj, "metadata", "name", NULL);
    const char *uid = json_str(obj, "metadata", "uid", NULL);
    const char *missing = NULL;
    verify_ctx ctx = {.object = obj, .label = label};

    if (!cJSON_IsObject(obj))
        return finding_add(r, AUDIT_FINDING_ERROR, loc, NULL, "%s is not a JSON object; expected " AUDIT_SUPPORTED,
                           loc);
    if (!kind || !*kind)
        return finding_add(r, AUDIT_FINDING_ERROR, loc, NULL, "%s has no kind; expected " AUDIT_SUPPORTED, loc);
    if (is_list(kind))
        return list_check(r, obj, where, *where ? where : "List");
    if (!is_ours(kind) || !api_version || strncmp(api_version, AUDIT_GROUP "/", strlen(AUDIT_GROUP "/")) != 0)
        return finding_add(r, AUDIT_FINDING_ERROR, loc, NULL,
                           "%s%s%s %s/%s (apiVersion %s) is not supported: membrane receipt verify "
                           "checks " AUDIT_SUPPORTED,
                           where, *where ? ": " : "", printable(b1, sizeof(b1), kind),
                           printable(b2, sizeof(b2), ns ? ns : "?"), printable(b3, sizeof(b3), name ? name : "?"),
                           api_version ? printable(b4, sizeof(b4), api_version) : "missing");
    snprintf(label, sizeof(label), "%s %s/%s", kind, printable(b1, sizeof(b1), ns ? ns : "?"),
             printable(b2, sizeof(b2), name ? name : "?"));
    r->objects++;
    missing = !ns || !*ns       ? "metadata.namespace"
              : !name || !*name ? "metadata.name"
              : !uid || !*uid   ? "metadata.uid"
                                : NULL;
    if (missing)
        return finding_add(r, AUDIT_FINDING_ERROR, label, NULL,
                           "%s: has no %s; receipts name the object instance they belong to, so "
                           "verify the object as kubectl get -o json prints it",
                           label, missing);
    if (strcmp(kind, "GovernedAPIRelease") == 0)
        return history_check(r, &ctx);
    return single_receipt_check(r, &ctx);
}

int audit_verify_object(audit_report *out, const cJSON *object)
{
    int err = 0;

    memset(out, 0, sizeof(*out));
    if ((err = object_check(out, object, "")) < 0)
        return err;
    for (size_t i = 0; i < out->count; i++)
        if (out->findings[i].kind == AUDIT_FINDING_ERROR)
            return mb_error_set(MB_EINVAL, "%s", out->findings[i].text);
    return 0;
}

void audit_report_free(audit_report *report)
{
    if (!report)
        return;
    for (size_t i = 0; i < report->count; i++) {
        free(report->findings[i].object);
        free(report->findings[i].path);
        free(report->findings[i].text);
    }
    free(report->findings);
    memset(report, 0, sizeof(*report));
}

/* Reads all of path ("-": stdin) into a NUL-terminated buffer. */
static int file_read(char **out, size_t *len, const char *path, const char *name)
{
    int err = 0;
    FILE *f = NULL;
    char *buf = NULL, *grown;
    size_t used = 0, cap = 0, n;

    *out = NULL;
    *len = 0;
    if (strcmp(path, "-") == 0) {
        f = stdin;
    } else if (!(f = fopen(path, "rb"))) {
        err = mb_error_set(errno == ENOENT ? MB_ENOTFOUND : MB_EIO, "cannot open %s: %s", name, strerror(errno));
        goto done;
    }
    do {
        if (cap - used < 4096) {
            cap = cap ? cap * 2 : 65536;
            if (cap > (size_t)AUDIT_FILE_MAX + 1)
                cap = (size_t)AUDIT_FILE_MAX + 1;
            if (cap - used == 0) {
                err = mb_error_set(MB_EINVAL,
                                   "%s is larger than %u MiB; verify one object or a "
                                   "smaller List at a time",
                                   name, AUDIT_FILE_MAX >> 20);
                goto done;
            }
            if (!(grown = realloc(buf, cap + 1))) {
                err = mb_error_set(MB_ENOMEM, "out of memory while reading %s", name);
                goto done;
            }
            buf = grown;
        }
        n = fread(buf + used, 1, cap - used, f);
        used += n;
    } while (n > 0);
    if (ferror(f)) {
        err = mb_error_set(MB_EIO, "cannot read %s: %s", name, strerror(errno));
        goto done;
    }
    buf[used] = '\0';
    *out = buf;
    *len = used;
    buf = NULL;
done:
    if (f && f != stdin)
        fclose(f);
    free(buf);
    return err;
}

/* Parses the text of name as one JSON document. */
static int file_parse(cJSON **out, const char *text, size_t len, const char *name)
{
    const char *end = NULL;
    int line = 1, col = 1;

    *out = NULL;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) /* a UTF-8 byte order mark */
        text += 3, len -= 3;
    if (strlen(text) != len)
        return mb_error_set(MB_EJSON,
                            "%s is not JSON (it holds a NUL byte); expected the output "
                            "of kubectl get -o json",
                            name);
    if (strspn(text, " \t\r\n") == len)
        return mb_error_set(MB_EJSON, "%s is empty; expected the output of kubectl get -o json", name);
    if ((*out = cJSON_ParseWithOpts(text, &end, 1)))
        return 0;
    for (const char *c = text; end && c < end && *c; c++) {
        if (*c == '\n')
            line++, col = 1;
        else
            col++;
    }
    return mb_error_set(MB_EJSON,
                        "%s is not JSON (syntax error at line %d, column %d); expected "
                        "the output of kubectl get -o json (not -o yaml)",
                        name, line, col);
}

/* ---- promotedFrom: the links between environments ---- */

/* The GovernedAPIReleases of doc (itself, or a List's items) appended to objs; 0 or MB_ENOMEM. */
static int releases_collect(const cJSON ***objs, size_t *n, const cJSON *doc)
{
    const char *kind = json_str(doc, "kind", NULL);
    if (kind && is_list(kind)) {
        const cJSON *it;
        int err;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "items"))
            if (cJSON_IsObject(it) && (err = releases_collect(objs, n, it)) < 0)
                return err;
        return 0;
    }
    if (!kind || strcmp(kind, "GovernedAPIRelease") != 0 || !json_str(doc, "metadata", "namespace", NULL) ||
        !json_str(doc, "metadata", "name", NULL))
        return 0;
    const cJSON **grown = realloc(*objs, (*n + 1) * sizeof(*grown));
    if (!grown)
        return mb_error_set(MB_ENOMEM, "out of memory while verifying receipts");
    *objs = grown;
    (*objs)[(*n)++] = doc;
    return 0;
}

static const cJSON *release_find(const cJSON *const *objs, size_t n, const char *ns, const char *name)
{
    for (size_t i = 0; ns && name && i < n; i++)
        if (strcmp(json_str(objs[i], "metadata", "namespace", NULL), ns) == 0 &&
            strcmp(json_str(objs[i], "metadata", "name", NULL), name) == 0)
            return objs[i];
    return NULL;
}

/*
 * The digest a release's status.promotedFrom was checked for: that of the
 * release status.releaseID names (its history entry once it ended, else the
 * spec's digest, which it is rolling out).
 */
static const char *status_digest(const cJSON *obj)
{
    const char *rid = json_str(obj, "status", "releaseID", NULL);
    const cJSON *e;
    cJSON_ArrayForEach(e, json_get(obj, "status", "history", NULL)) {
        const char *r = json_str(e, "releaseID", NULL);
        if (rid && r && strcmp(r, rid) == 0)
            return json_str(e, "digest", NULL);
    }
    return json_str(obj, "spec", "image", "digest", NULL);
}

/* Checks one promotedFrom entry (at path, for digest) of the release labelled label against the objects given. */
static int link_check(audit_report *r, const cJSON *const *objs, size_t n, const char *label, const char *path,
                      const cJSON *link, const char *digest)
{
    char b1[96], b2[96], shown[128], d_shown[128], where[200];
    const char *ns = json_str(link, "namespace", NULL), *name = json_str(link, "name", NULL);
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(link, "auditRef");
    cJSON dshown = {.type = cJSON_String, .valuestring = (char *)(digest ? digest : "")};

    if (!ns || !name)
        return finding_add(r, AUDIT_FINDING_BREAK, label, path,
                           "%s %s: promotedFrom entry has no namespace or name: it names no upstream release", label,
                           path);
    snprintf(where, sizeof(where), "%s/%s", printable(b1, sizeof(b1), ns), printable(b2, sizeof(b2), name));
    const cJSON *up = release_find(objs, n, ns, name);
    if (!up)
        return finding_add(r, AUDIT_FINDING_NOTE, label, path,
                           "%s %s: promotedFrom %s (auditRef %s) not checked: that release is not among the files; "
                           "give it with another -f to check the link",
                           label, path, where, ref_shown(shown, sizeof(shown), ref));
    const cJSON *history = json_get(up, "status", "history", NULL), *e, *found = NULL;
    int i = 0, at = -1;
    cJSON_ArrayForEach(e, history) {
        const cJSON *er = cJSON_GetObjectItemCaseSensitive(e, "auditRef");
        if (cJSON_IsString(ref) && cJSON_IsString(er) && strcmp(er->valuestring, ref->valuestring) == 0)
            found = e, at = i;
        i++;
    }
    if (!found && cJSON_GetArraySize(history) >= AUDIT_HISTORY_MAX)
        return finding_add(r, AUDIT_FINDING_NOTE, label, path,
                           "%s %s: promotedFrom %s auditRef %s not checked: it is no longer in that release's "
                           "status.history, which is full (%d entries; older ones are dropped)",
                           label, path, where, ref_shown(shown, sizeof(shown), ref), AUDIT_HISTORY_MAX);
    if (!found)
        return finding_add(r, AUDIT_FINDING_BREAK, label, path,
                           "%s %s: promotedFrom %s auditRef %s is not in that release's status.history: the receipt "
                           "it was promoted on is not there",
                           label, path, where, ref_shown(shown, sizeof(shown), ref));
    const char *outcome = json_str(found, "outcome", NULL), *ud = json_str(found, "digest", NULL);
    cJSON ushown = {.type = cJSON_String, .valuestring = (char *)(ud ? ud : "")};
    bool succeeded = outcome && strcmp(outcome, "Succeeded") == 0;
    bool same = ud && digest && strcmp(ud, digest) == 0;
    if (!succeeded || !same)
        return finding_add(r, AUDIT_FINDING_BREAK, label, path,
                           "%s %s: promotedFrom %s status.history[%d] (%s) %s%s%s%s: broken, the upstream entry it was "
                           "promoted on did not succeed with this digest",
                           label, path, where, at, ref_shown(shown, sizeof(shown), &ushown),
                           outcome ? printable(b1, sizeof(b1), outcome) : "(no outcome)",
                           succeeded ? "" : " (not Succeeded)",
                           same ? ", same digest" : ", a digest other than this entry's ",
                           same ? "" : ref_shown(d_shown, sizeof(d_shown), &dshown));
    return finding_add(r, AUDIT_FINDING_OK, label, path,
                       "%s %s: promotedFrom %s status.history[%d] (%s) Succeeded, same digest: ok", label, path, where,
                       at, ud);
}

/* Every promotedFrom of release obj (status.promotedFrom, status.history[].promotedFrom) against the objects given. */
static int links_check(audit_report *r, const cJSON *const *objs, size_t n, const cJSON *obj)
{
    char label[320], b1[96], b2[96], path[96];
    const cJSON *l, *e;
    int err = 0, i = 0, j;

    snprintf(label, sizeof(label), "GovernedAPIRelease %s/%s",
             printable(b1, sizeof(b1), json_str(obj, "metadata", "namespace", NULL)),
             printable(b2, sizeof(b2), json_str(obj, "metadata", "name", NULL)));
    j = 0;
    cJSON_ArrayForEach(l, json_get(obj, "status", "promotedFrom", NULL)) {
        snprintf(path, sizeof(path), "status.promotedFrom[%d]", j++);
        if ((err = link_check(r, objs, n, label, path, l, status_digest(obj))) < 0)
            return err;
    }
    cJSON_ArrayForEach(e, json_get(obj, "status", "history", NULL)) {
        j = 0;
        cJSON_ArrayForEach(l, json_get(e, "promotedFrom", NULL)) {
            snprintf(path, sizeof(path), "status.history[%d].promotedFrom[%d]", i, j++);
            if ((err = link_check(r, objs, n, label, path, l, json_str(e, "digest", NULL))) < 0)
                return err;
        }
        i++;
    }
    return 0;
}

int audit_verify_promotions(audit_report *out, const cJSON *const *docs, size_t n)
{
    const cJSON **objs = NULL;
    size_t n_objs = 0;
    int err = 0;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n && err == 0; i++)
        err = releases_collect(&objs, &n_objs, docs[i]);
    for (size_t i = 0; i < n_objs && err == 0; i++)
        err = links_check(out, objs, n_objs, objs[i]);
    free(objs);
    return err;
}

static const char *const finding_tags[] = {
    [AUDIT_FINDING_OK] = "ok",
    [AUDIT_FINDING_BREAK] = "broken",
    [AUDIT_FINDING_NOTE] = "note",
    [AUDIT_FINDING_ERROR] = "error",
};

/* Verifies one file's receipts, printing as audit_verify_file says; *doc keeps what was parsed (NULL if nothing). */
static int verify_one_file(const char *path, FILE *out, cJSON **doc)
{
    int err = 0, rc = 2;
    char *text = NULL;
    size_t len = 0;
    audit_report report = {0};
    const char *name;

    *doc = NULL;
    if (!path)
        path = "-";
    name = strcmp(path, "-") == 0 ? "stdin" : path;
    if ((err = file_read(&text, &len, path, name)) < 0 || (err = file_parse(doc, text, len, name)) < 0) {
        fprintf(out, "error %s\n", mb_error_last());
        goto done;
    }
    err = audit_verify_object(&report, *doc);
    if (err < 0 && err != MB_EINVAL) {
        fprintf(out, "error %s: %s\n", name, mb_error_last());
        goto done;
    }
    for (size_t i = 0; i < report.count; i++) {
        const audit_finding *f = &report.findings[i];
        if (f->kind == AUDIT_FINDING_ERROR)
            fprintf(out, "error %s: %s\n", name, f->text);
        else
            fprintf(out, "%s %s\n", finding_tags[f->kind], f->text);
    }
    if (report.breaks) {
        rc = 1;
        fprintf(out, "%s: chain broken: %zu problem%s in %zu receipt%s\n", name, report.breaks,
                report.breaks == 1 ? "" : "s", report.receipts, report.receipts == 1 ? "" : "s");
    } else if (report.errors) {
        rc = 2;
        fprintf(out, "%s: %zu object%s could not be checked\n", name, report.errors, report.errors == 1 ? "" : "s");
    } else {
        rc = 0;
        if (report.receipts)
            fprintf(out, "%s: chain holds: %zu receipt%s in %zu object%s verified\n", name, report.receipts,
                    report.receipts == 1 ? "" : "s", report.objects, report.objects == 1 ? "" : "s");
        else
            fprintf(out, "%s: no receipts to verify yet\n", name);
    }
done:
    audit_report_free(&report);
    free(text);
    return rc;
}

int audit_verify_files(const char *const *paths, size_t n, FILE *out)
{
    cJSON **docs = calloc(n ? n : 1, sizeof(*docs));
    audit_report links = {0};
    bool broken = false, unchecked = false;
    size_t linked = 0;
    int err;

    if (!docs) {
        fprintf(out, "error out of memory\n");
        fflush(out);
        return 2;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = verify_one_file(paths[i], out, &docs[i]);
        broken = broken || rc == 1;
        unchecked = unchecked || rc == 2;
    }
    if ((err = audit_verify_promotions(&links, (const cJSON *const *)docs, n)) < 0) {
        fprintf(out, "error promotedFrom: %s\n", mb_error_last());
        unchecked = true;
    }
    for (size_t i = 0; i < links.count; i++) {
        fprintf(out, "%s %s\n", finding_tags[links.findings[i].kind], links.findings[i].text);
        linked += links.findings[i].kind != AUDIT_FINDING_NOTE;
    }
    if (links.breaks)
        fprintf(out, "promotedFrom: %zu of %zu link%s to an upstream release broken\n", links.breaks, linked,
                linked == 1 ? "" : "s");
    else if (linked)
        fprintf(out, "promotedFrom: %zu link%s to an upstream release hold\n", linked, linked == 1 ? "" : "s");
    broken = broken || links.breaks;
    fflush(out);
    audit_report_free(&links);
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(docs[i]);
    free(docs);
    return broken ? 1 : unchecked ? 2 : 0;
}

int audit_verify_file(const char *path, FILE *out)
{
    return audit_verify_files(&path, 1, out);
}

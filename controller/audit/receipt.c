/*
 * Sealing receipts: the body of a receipt (entry without auditRef, plus the
 * object's identity), its auditRef, and the two places receipts are kept in
 * status (the bounded status.history chain and the single status.receipt).
 * Every fallible step runs before the first change to the caller's tree, so an
 * error leaves entry and status as they were.
 */
#include "audit/receipt.h"
#include "util/text.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The object's identity as receipts name it: {apiGroup, kind, namespace, name, uid}. */
static int receipt_identity(cJSON **out, const cJSON *object)
{
    int err = 0;
    cJSON *id = NULL;
    const char *api_version = json_str(object, "apiVersion", NULL);
    const char *kind = json_str(object, "kind", NULL);
    const char *ns = json_str(object, "metadata", "namespace", NULL);
    const char *name = json_str(object, "metadata", "name", NULL);
    const char *uid = json_str(object, "metadata", "uid", NULL);
    const char *missing = !api_version || !*api_version ? "apiVersion"
                          : !kind || !*kind             ? "kind"
                          : !ns || !*ns                 ? "metadata.namespace"
                          : !name || !*name             ? "metadata.name"
                          : !uid || !*uid               ? "metadata.uid"
                                                        : NULL;
    const char *slash;
    char *group = NULL;

    *out = NULL;
    if (!cJSON_IsObject(object)) {
        err = mb_error_set(MB_EINVAL, "a receipt needs the Kubernetes object it belongs to, "
                                      "and none was given");
        goto done;
    }
    if (missing) {
        err = mb_error_set(MB_EINVAL,
                           "the %s %s/%s has no %s; a receipt names the object it "
                           "belongs to, so use the object as the API server returns it",
                           kind && *kind ? kind : "object", ns && *ns ? ns : "?", name && *name ? name : "?", missing);
        goto done;
    }
    /* the group is what precedes the version: "governance.kfm.dev/v1alpha1"; "" for "v1" */
    slash = strchr(api_version, '/');
    if (!(group = strndup(api_version, slash ? (size_t)(slash - api_version) : 0)) || !(id = cJSON_CreateObject()) ||
        !cJSON_AddStringToObject(id, "apiGroup", group))
        goto nomem;
    if (!cJSON_AddStringToObject(id, "kind", kind) || !cJSON_AddStringToObject(id, "namespace", ns) ||
        !cJSON_AddStringToObject(id, "name", name) || !cJSON_AddStringToObject(id, "uid", uid))
        goto nomem;
    *out = id;
    id = NULL;
    goto done;
nomem:
    err = mb_error_set(MB_ENOMEM, "out of memory while building a receipt");
done:
    free(group);
    cJSON_Delete(id);
    return err;
}

/*
 * The body the auditRef of entry covers; prev, when not NULL, stands in for
 * the entry's prevAuditRef.
 */
static int receipt_body(cJSON **out, const cJSON *entry, const cJSON *object, const char *prev)
{
    int err = 0;
    cJSON *body = NULL, *id = NULL, *p = NULL;

    *out = NULL;
    if (!cJSON_IsObject(entry)) {
        err = mb_error_set(MB_EINVAL, "a receipt entry must be a JSON object");
        goto done;
    }
    if (cJSON_GetObjectItemCaseSensitive(entry, "object")) {
        err = mb_error_set(MB_EINVAL, "the receipt entry has a member named \"object\", which "
                                      "receipts reserve for the identity of the object they belong to; "
                                      "give it another name");
        goto done;
    }
    if ((err = receipt_identity(&id, object)) < 0)
        goto done;
    if (!(body = cJSON_Duplicate(entry, 1)))
        goto nomem;
    cJSON_DeleteItemFromObjectCaseSensitive(body, "auditRef");
    if (cJSON_GetObjectItemCaseSensitive(body, "auditRef")) {
        err = mb_error_set(MB_EINVAL, "the receipt entry has two members named \"auditRef\"");
        goto done;
    }
    if (prev) {
        while (cJSON_GetObjectItemCaseSensitive(body, "prevAuditRef"))
            cJSON_DeleteItemFromObjectCaseSensitive(body, "prevAuditRef");
        if (!(p = cJSON_CreateString(prev)) || !cJSON_AddItemToObject(body, "prevAuditRef", p))
            goto nomem;
        p = NULL;
    }
    if (!cJSON_AddItemToObject(body, "object", id))
        goto nomem;
    id = NULL;
    *out = body;
    body = NULL;
    goto done;
nomem:
    err = mb_error_set(MB_ENOMEM, "out of memory while building a receipt");
done:
    cJSON_Delete(p);
    cJSON_Delete(id);
    cJSON_Delete(body);
    return err;
}

int audit_receipt_ref(char out[AUDIT_REF_SIZE], const cJSON *entry, const cJSON *object)
{
    int err = 0;
    cJSON *body = NULL;

    out[0] = '\0';
    if ((err = receipt_body(&body, entry, object, NULL)) < 0)
        goto done;
    err = audit_ref(out, body);
done:
    cJSON_Delete(body);
    return err;
}

/* Writes the path of the first null value under v into path (e.g. ".verification.results[1]"). */
static bool find_null(const cJSON *v, char *path, size_t size, size_t used)
{
    int i = 0;
    if (cJSON_IsNull(v))
        return true;
    for (const cJSON *c = v->child; c && (cJSON_IsObject(v) || cJSON_IsArray(v)); c = c->next, i++) {
        int n = cJSON_IsObject(v) ? snprintf(path + used, size - used, ".%s", c->string ? c->string : "")
                                  : snprintf(path + used, size - used, "[%d]", i);
        size_t next = n < 0 ? used : (size_t)n < size - used ? used + (size_t)n : size - 1;
        if (find_null(c, path, size, next))
            return true;
        path[used] = '\0';
    }
    return false;
}

/* Replaces every member named key (a string constant) by item; cannot fail. */
static void member_put(cJSON *obj, const char *key, cJSON *item)
{
    while (cJSON_GetObjectItemCaseSensitive(obj, key))
        cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddItemToObjectCS(obj, key, item); /* a constant key is not copied */
}

int audit_seal(cJSON *entry, const cJSON *object, const char *prev_audit_ref)
{
    int err = 0;
    cJSON *body = NULL, *prev = NULL, *ref_item = NULL;
    char ref[AUDIT_REF_SIZE];
    char where[256] = "";

    if (!prev_audit_ref)
        prev_audit_ref = "";
    if (*prev_audit_ref && !mb_sha256_digest_valid(prev_audit_ref)) {
        err = mb_error_set(MB_EINVAL,
                           "the previous receipt's auditRef \"%.80s\" is not \"sha256:\" "
                           "followed by 64 lowercase hex digits",
                           prev_audit_ref);
        goto done;
    }
    if (cJSON_IsObject(entry) && find_null(entry, where, sizeof(where), 0)) {
        err = mb_error_set(MB_EINVAL,
                           "the receipt entry has a null value at %s; the API server "
                           "drops null members, which would break the receipt, so leave the member out",
                           where);
        goto done;
    }
    if ((err = receipt_body(&body, entry, object, prev_audit_ref)) < 0)
        goto done;
    if ((err = audit_ref(ref, body)) < 0) {
        mb_error_wrap(err, "cannot seal the receipt");
        goto done;
    }
    if (!(prev = cJSON_CreateString(prev_audit_ref)) || !(ref_item = cJSON_CreateString(ref))) {
        err = mb_error_set(MB_ENOMEM, "out of memory while sealing a receipt");
        goto done;
    }
    member_put(entry, "prevAuditRef", prev);
    member_put(entry, "auditRef", ref_item);
    prev = ref_item = NULL;
done:
    cJSON_Delete(prev);
    cJSON_Delete(ref_item);
    cJSON_Delete(body);
    return err;
}

int audit_history_append(cJSON *status, cJSON *entry, const cJSON *object)
{
    int err = 0;
    cJSON *history = NULL, *created = NULL;
    const char *prev = "";
    int n = 0;

    if (!cJSON_IsObject(status)) {
        err = mb_error_set(MB_EINVAL, "the status to append a receipt to is not a JSON object");
        goto done;
    }
    history = cJSON_GetObjectItemCaseSensitive(status, "history");
    if (cJSON_IsNull(history))
        history = NULL; /* replaced below */
    if (history && !cJSON_IsArray(history)) {
        err = mb_error_set(MB_EINVAL, "status.history is not a list; it holds the receipts of "
                                      "past releases and must be a list of entries");
        goto done;
    }
    n = history ? cJSON_GetArraySize(history) : 0;
    if (n > 0) {
        prev = json_str(cJSON_GetArrayItem(history, n - 1), "auditRef", NULL);
        if (!mb_sha256_digest_valid(prev)) {
            err = mb_error_set(MB_EINVAL,
                               "status.history[%d] has no well-formed auditRef, so a new "
                               "receipt cannot be chained to it; the history was changed by hand "
                               "(membrane receipt verify shows where)",
                               n - 1);
            goto done;
        }
    }
    if ((err = audit_seal(entry, object, prev)) < 0)
        goto done;
    if (!history) {
        if (!(created = cJSON_CreateArray())) {
            err = mb_error_set(MB_ENOMEM, "out of memory while appending a receipt");
            goto done;
        }
        member_put(status, "history", created);
        history = created;
        created = NULL;
    }
    cJSON_AddItemToArray(history, entry);
    entry = NULL;
    for (n++; n > AUDIT_HISTORY_MAX; n--)
        cJSON_DeleteItemFromArray(history, 0);
done:
    cJSON_Delete(created);
    cJSON_Delete(entry);
    return err;
}

int audit_receipt_set(cJSON *status, cJSON *entry, const cJSON *object)
{
    int err = 0;
    const cJSON *current = NULL;
    const char *prev = "";

    if (!cJSON_IsObject(status)) {
        err = mb_error_set(MB_EINVAL, "the status to set a receipt in is not a JSON object");
        goto done;
    }
    current = cJSON_GetObjectItemCaseSensitive(status, "receipt");
    if (current && !cJSON_IsNull(current)) {
        if (!cJSON_IsObject(current)) {
            err = mb_error_set(MB_EINVAL, "status.receipt is not an object; it holds the last "
                                          "receipt and must be an object");
            goto done;
        }
        prev = json_str(current, "auditRef", NULL);
        if (!mb_sha256_digest_valid(prev)) {
            err = mb_error_set(MB_EINVAL, "status.receipt has no well-formed auditRef, so a new "
                                          "receipt cannot be chained to it; it was changed by hand "
                                          "(membrane receipt verify shows how)");
            goto done;
        }
    }
    if ((err = audit_seal(entry, object, prev)) < 0)
        goto done;
    member_put(status, "receipt", entry);
    entry = NULL;
done:
    cJSON_Delete(entry);
    return err;
}

int audit_results_digest(char out[AUDIT_REF_SIZE], const cJSON *results)
{
    out[0] = '\0';
    if (!cJSON_IsArray(results))
        return mb_error_set(MB_EINVAL, "the verification results are not a list");
    return audit_ref(out, results);
}

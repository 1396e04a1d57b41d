/*
 * Path walking over cJSON objects (case-sensitive keys).
 */
#include "util/json.h"
#include "util/error.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

static const cJSON *walk(const cJSON *obj, va_list ap)
{
    const char *key;
    while (obj && (key = va_arg(ap, const char *)) != NULL)
        obj = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return obj;
}

const cJSON *json_get(const cJSON *obj, ...)
{
    va_list ap;
    va_start(ap, obj);
    const cJSON *r = walk(obj, ap);
    va_end(ap);
    return r;
}

const char *json_str(const cJSON *obj, ...)
{
    va_list ap;
    va_start(ap, obj);
    const cJSON *r = walk(obj, ap);
    va_end(ap);
    return cJSON_IsString(r) ? r->valuestring : NULL;
}

long long json_int(long long def, const cJSON *obj, ...)
{
    va_list ap;
    va_start(ap, obj);
    const cJSON *r = walk(obj, ap);
    va_end(ap);
    if (!cJSON_IsNumber(r) || isnan(r->valuedouble))
        return def;
    /* converting a double outside long long's range is undefined: clamp (2^63 itself is already out) */
    if (r->valuedouble >= 0x1p63)
        return LLONG_MAX;
    if (r->valuedouble < -0x1p63)
        return LLONG_MIN;
    return (long long)r->valuedouble;
}

bool json_bool(bool def, const cJSON *obj, ...)
{
    va_list ap;
    va_start(ap, obj);
    const cJSON *r = walk(obj, ap);
    va_end(ap);
    return cJSON_IsBool(r) ? cJSON_IsTrue(r) : def;
}

cJSON *json_ensure_object(cJSON *obj, ...)
{
    va_list ap;
    const char *key;
    va_start(ap, obj);
    while (obj && (key = va_arg(ap, const char *)) != NULL) {
        cJSON *next = cJSON_GetObjectItemCaseSensitive(obj, key);
        if (!cJSON_IsObject(next)) {
            if (next)
                cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
            next = cJSON_AddObjectToObject(obj, key);
        }
        obj = next;
    }
    va_end(ap);
    return obj;
}

int json_set_item(cJSON *obj, const char *key, cJSON *item)
{
    cJSON *old;
    char *name;
    size_t n;

    if (!item)
        return mb_error_set(MB_ENOMEM, "out of memory");
    if (!(old = cJSON_GetObjectItemCaseSensitive(obj, key))) {
        if (!cJSON_AddItemToObject(obj, key, item)) { /* copying key failed: item is not in obj */
            cJSON_Delete(item);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
        return 0;
    }
    /* cJSON_ReplaceItemInObject would put item in nameless when copying key fails: name it first */
    n = strlen(key) + 1;
    if (!(name = cJSON_malloc(n))) {
        cJSON_Delete(item);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    memcpy(name, key, n);
    if (item->string && !(item->type & cJSON_StringIsConst))
        cJSON_free(item->string);
    item->string = name;
    item->type &= ~cJSON_StringIsConst;
    cJSON_ReplaceItemViaPointer(obj, old, item);
    return 0;
}

int json_set_str(cJSON *obj, const char *key, const char *value)
{
    return json_set_item(obj, key, cJSON_CreateString(value));
}

void json_keep_only(cJSON *obj, const char *const *keep)
{
    cJSON *it, *next;
    if (!cJSON_IsObject(obj))
        return;
    for (it = obj->child; it; it = next) {
        bool wanted = false;
        next = it->next;
        for (const char *const *k = keep; *k && !wanted; k++)
            wanted = it->string && strcmp(it->string, *k) == 0;
        if (!wanted)
            cJSON_Delete(cJSON_DetachItemViaPointer(obj, it));
    }
}

/* The patch of from -> to under key, added to patch; 0 or MB_ENOMEM. */
static int merge_patch_member(cJSON *patch, const char *key, const cJSON *from, const cJSON *to)
{
    cJSON *sub = NULL;
    int err;
    if (from && cJSON_Compare(from, to, true))
        return 0;
    if ((err = json_merge_patch(&sub, from, to)) < 0)
        return err;
    return json_set_item(patch, key, sub);
}

int json_merge_patch(cJSON **out, const cJSON *from, const cJSON *to)
{
    cJSON *patch = NULL;
    const cJSON *it;
    int err = 0;

    *out = NULL;
    if (!cJSON_IsObject(from) || !cJSON_IsObject(to)) {
        /* not two objects: the patch is the new value, replacing whatever was there */
        if (!(*out = to ? cJSON_Duplicate(to, true) : cJSON_CreateNull()))
            return mb_error_set(MB_ENOMEM, "out of memory");
        return 0;
    }
    if (!(patch = cJSON_CreateObject()))
        return mb_error_set(MB_ENOMEM, "out of memory");
    cJSON_ArrayForEach(it, from) /* a key that went away: null removes it */
        if (it->string && !cJSON_GetObjectItemCaseSensitive(to, it->string) &&
            (err = json_set_item(patch, it->string, cJSON_CreateNull())) < 0)
            goto done;
    cJSON_ArrayForEach(it, to)
        if (it->string &&
            (err = merge_patch_member(patch, it->string, cJSON_GetObjectItemCaseSensitive(from, it->string), it)) < 0)
            goto done;
done:
    if (err < 0) {
        cJSON_Delete(patch);
        return err;
    }
    *out = patch;
    return 0;
}

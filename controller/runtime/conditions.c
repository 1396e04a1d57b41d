/*
 * status.conditions as metav1.Condition entries. A set builds the complete
 * new entry first (carrying the old lastTransitionTime over when the status
 * is unchanged), compares it with the old one and swaps it in only if they
 * differ, so a failed allocation leaves the list as it was and "changed" is
 * exact. The kstatus helpers are sets and removes in a fixed pattern.
 */
#include "runtime/conditions.h"
#include "util/error.h"
#include "util/timefmt.h"

#include <ctype.h>
#include <string.h>

#define TYPE_MAX 316
#define REASON_MAX 1024
#define MESSAGE_MAX 32768

/* metav1.Condition's type: a qualified name, e.g. "Ready" or "example.com/Verified". */
static bool valid_type(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > TYPE_MAX || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("-_./", s[i]))
            return false;
    return true;
}

/* metav1.Condition's reason: ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$ */
static bool valid_reason(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > REASON_MAX || !isalpha((unsigned char)s[0]) ||
        !(isalnum((unsigned char)s[n - 1]) || s[n - 1] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_,:", s[i]))
            return false;
    return true;
}

static bool valid_status(const char *s)
{
    return s && (!strcmp(s, COND_TRUE) || !strcmp(s, COND_FALSE) || !strcmp(s, COND_UNKNOWN));
}

static int check(const cJSON *status, const condition *c)
{
    const cJSON *list = NULL;

    if (!cJSON_IsObject(status))
        return mb_error_set(MB_EINVAL, "cannot set a condition: status is not a JSON object");
    list = cJSON_GetObjectItemCaseSensitive(status, "conditions");
    if (list && !cJSON_IsArray(list))
        return mb_error_set(MB_EINVAL, "cannot set a condition: status.conditions is not a list; "
                                       "fix or remove it");
    if (!c || !valid_type(c->type))
        return mb_error_set(MB_EINVAL,
                            "condition type \"%.64s\" is not a valid name; use CamelCase "
                            "such as Ready",
                            c && c->type ? c->type : "");
    if (!valid_status(c->status))
        return mb_error_set(MB_EINVAL, "condition %s has status \"%.32s\"; use True, False or Unknown", c->type,
                            c->status ? c->status : "");
    if (!valid_reason(c->reason))
        return mb_error_set(MB_EINVAL,
                            "condition %s has reason \"%.64s\"; a reason is one CamelCase "
                            "word such as RolledBack",
                            c->type, c->reason ? c->reason : "");
    if (c->message && strlen(c->message) > MESSAGE_MAX)
        return mb_error_set(MB_EINVAL, "condition %s has a message over %d bytes; shorten it", c->type, MESSAGE_MAX);
    if (c->observed_generation < 0)
        return mb_error_set(MB_EINVAL, "condition %s has observedGeneration %lld; it cannot be negative", c->type,
                            c->observed_generation);
    return 0;
}

static bool has_type(const cJSON *cond, const char *type)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cond, "type");
    return cJSON_IsString(t) && strcmp(t->valuestring, type) == 0;
}

static cJSON *find(const cJSON *list, const char *type)
{
    cJSON *cond = NULL;

    if (!type || !cJSON_IsArray(list))
        return NULL;
    cJSON_ArrayForEach(cond, list)
        if (has_type(cond, type))
            return cond;
    return NULL;
}

const cJSON *conditions_get(const cJSON *status, const char *type)
{
    return find(cJSON_GetObjectItemCaseSensitive(status, "conditions"), type);
}

bool conditions_is_true(const cJSON *status, const char *type)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(conditions_get(status, type), "status");
    return cJSON_IsString(s) && strcmp(s->valuestring, COND_TRUE) == 0;
}

const char *conditions_true_reason(const cJSON *status, const char *type)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(conditions_get(status, type), "reason");
    return conditions_is_true(status, type) && cJSON_IsString(r) ? r->valuestring : NULL;
}

/* Removes the conditions of that type from list, except keep (may be NULL). */
static bool remove_type(cJSON *list, const char *type, const cJSON *keep)
{
    cJSON *cond = list ? list->child : NULL;
    bool removed = false;

    while (cond) {
        cJSON *next = cond->next;
        if (cond != keep && has_type(cond, type)) {
            cJSON_Delete(cJSON_DetachItemViaPointer(list, cond));
            removed = true;
        }
        cond = next;
    }
    return removed;
}

bool conditions_remove(cJSON *status, const char *type)
{
    cJSON *list = cJSON_GetObjectItemCaseSensitive(status, "conditions");

    if (!type || !cJSON_IsArray(list))
        return false;
    return remove_type(list, type, NULL);
}

/* The lastTransitionTime to keep from old, or NULL when the transition is now. */
static const char *kept_transition(const cJSON *old, const char *new_status)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(old, "status");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(old, "lastTransitionTime");
    time_t parsed;

    if (!cJSON_IsString(s) || strcmp(s->valuestring, new_status) != 0 || !cJSON_IsString(t) ||
        timefmt_parse(&parsed, t->valuestring) < 0)
        return NULL;
    return t->valuestring;
}

int conditions_set(bool *out, cJSON *status, const condition *c, time_t now)
{
    char ts[TIMEFMT_RFC3339_SIZE];
    cJSON *list = NULL, *old = NULL, *fresh = NULL, *new_list = NULL;
    const char *transition = NULL;
    bool changed = false;
    int err = 0;

    if (out)
        *out = false;
    if ((err = check(status, c)) < 0)
        goto done;
    if ((err = timefmt_format(ts, sizeof(ts), now)) < 0)
        goto done;
    list = cJSON_GetObjectItemCaseSensitive(status, "conditions");
    old = find(list, c->type);
    transition = old ? kept_transition(old, c->status) : NULL;

    if (!(fresh = cJSON_CreateObject()) || !cJSON_AddStringToObject(fresh, "type", c->type) ||
        !cJSON_AddStringToObject(fresh, "status", c->status) ||
        !cJSON_AddNumberToObject(fresh, "observedGeneration", (double)c->observed_generation) ||
        !cJSON_AddStringToObject(fresh, "lastTransitionTime", transition ? transition : ts) ||
        !cJSON_AddStringToObject(fresh, "reason", c->reason) ||
        !cJSON_AddStringToObject(fresh, "message", c->message ? c->message : "")) {
        err = mb_error_set(MB_ENOMEM, "out of memory setting condition %s", c->type);
        goto done;
    }

    if (!list) {
        if (!(new_list = cJSON_CreateArray()) || !cJSON_AddItemToArray(new_list, fresh)) {
            err = mb_error_set(MB_ENOMEM, "out of memory setting condition %s", c->type);
            goto done;
        }
        fresh = NULL;
        if (!cJSON_AddItemToObject(status, "conditions", new_list)) {
            err = mb_error_set(MB_ENOMEM, "out of memory setting condition %s", c->type);
            goto done;
        }
        new_list = NULL;
        changed = true;
    } else if (!old) {
        if (!cJSON_AddItemToArray(list, fresh)) {
            err = mb_error_set(MB_ENOMEM, "out of memory setting condition %s", c->type);
            goto done;
        }
        fresh = NULL;
        changed = true;
    } else {
        if (!cJSON_Compare(old, fresh, true)) {
            cJSON_ReplaceItemViaPointer(list, old, fresh);
            old = fresh;
            fresh = NULL;
            changed = true;
        }
        if (remove_type(list, c->type, old))
            changed = true;
    }
    if (out)
        *out = changed;

done:
    cJSON_Delete(fresh);
    cJSON_Delete(new_list);
    return err;
}

/* Writes status.observedGeneration; sets *changed when it was different. */
static int set_observed_generation(bool *changed, cJSON *status, long long generation)
{
    cJSON *g = cJSON_GetObjectItemCaseSensitive(status, "observedGeneration");
    cJSON *n = NULL;

    if (cJSON_IsNumber(g)) {
        if (g->valuedouble != (double)generation) {
            cJSON_SetNumberValue(g, (double)generation);
            *changed = true;
        }
        return 0;
    }
    /* Missing, or not a number: add the new member before dropping the old one. */
    if (!(n = cJSON_CreateNumber((double)generation)))
        return mb_error_set(MB_ENOMEM, "out of memory setting status.observedGeneration");
    if (!cJSON_AddItemToObject(status, "observedGeneration", n)) {
        cJSON_Delete(n);
        return mb_error_set(MB_ENOMEM, "out of memory setting status.observedGeneration");
    }
    if (g)
        cJSON_Delete(cJSON_DetachItemViaPointer(status, g));
    *changed = true;
    return 0;
}

/*
 * Sets Ready (first in the list for new objects) and, when other has a type,
 * that condition; removes up to two types; writes observedGeneration.
 */
static int mark(bool *out, cJSON *status, const condition *ready, const condition *other, const char *drop1,
                const char *drop2, time_t now)
{
    bool changed = false, one = false;
    int err = 0;

    if (out)
        *out = false;
    if ((err = conditions_set(&one, status, ready, now)) < 0)
        goto done;
    changed |= one;
    if (other->type) {
        if ((err = conditions_set(&one, status, other, now)) < 0)
            goto done;
        changed |= one;
    }
    if (drop1 && conditions_remove(status, drop1))
        changed = true;
    if (drop2 && conditions_remove(status, drop2))
        changed = true;
    if ((err = set_observed_generation(&changed, status, ready->observed_generation)) < 0)
        goto done;

done:
    if (out)
        *out = changed;
    return err;
}

int conditions_mark_reconciling(bool *out, cJSON *status, const char *reason, const char *message, long long generation,
                                time_t now)
{
    condition ready = {COND_READY, COND_UNKNOWN, reason, message, generation};
    condition reconciling = {COND_RECONCILING, COND_TRUE, reason, message, generation};
    return mark(out, status, &ready, &reconciling, COND_STALLED, NULL, now);
}

int conditions_mark_stalled(bool *out, cJSON *status, const char *reason, const char *message, long long generation,
                            time_t now)
{
    condition ready = {COND_READY, COND_FALSE, reason, message, generation};
    condition stalled = {COND_STALLED, COND_TRUE, reason, message, generation};
    return mark(out, status, &ready, &stalled, COND_RECONCILING, NULL, now);
}

int conditions_mark_ready(bool *out, cJSON *status, const char *reason, const char *message, long long generation,
                          time_t now)
{
    condition ready = {COND_READY, COND_TRUE, reason, message, generation};
    condition none = {0};
    return mark(out, status, &ready, &none, COND_RECONCILING, COND_STALLED, now);
}

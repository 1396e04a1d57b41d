/*
 * Small read helpers over cJSON trees: walk a path of object keys and read a
 * typed leaf. All returned pointers are borrowed from the tree.
 */
#ifndef MB_UTIL_JSON_H
#define MB_UTIL_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>

/* The item at obj.k1.k2...; the key list ends with NULL. NULL when any step is missing. */
const cJSON *json_get(const cJSON *obj, ...) __attribute__((sentinel));

/* The string at the path, or NULL when missing or not a string. */
const char *json_str(const cJSON *obj, ...) __attribute__((sentinel));

/* The number at the path (truncated, clamped to long long), or def when missing, not a number or NaN. */
long long json_int(long long def, const cJSON *obj, ...) __attribute__((sentinel));

/* The boolean at the path, or def when missing or not a boolean. */
bool json_bool(bool def, const cJSON *obj, ...) __attribute__((sentinel));

/* Item at path obj.k1...kn, creating empty objects for missing steps; NULL on allocation failure. */
cJSON *json_ensure_object(cJSON *obj, ...) __attribute__((sentinel));

/* Removes every member of obj (an object; anything else is left alone) whose key is not in keep (NULL-terminated). */
void json_keep_only(cJSON *obj, const char *const *keep);

/*
 * Sets (replacing) member key of obj to item, which it takes in every case: on
 * error item is freed and obj is unchanged. item may be NULL (a failed
 * cJSON_Create* passed straight in). 0 or MB_ENOMEM.
 */
int json_set_item(cJSON *obj, const char *key, cJSON *item);

/* Sets (replacing) a string member; 0 or MB_ENOMEM (obj is then unchanged). */
int json_set_str(cJSON *obj, const char *key, const char *value);

/*
 * The JSON merge patch (RFC 7386, application/merge-patch+json) that turns from
 * into to: for two objects, a member for each key whose value changed (nested
 * objects as patches of their own), and null for each key of from that to no
 * longer has; otherwise to itself (a value, or an array, replaces whatever was
 * there). Applied to from it gives to, as long as to holds no null inside an
 * object (a merge patch cannot say "set to null"). from may be NULL (nothing
 * there yet). *out is the caller's. 0 or MB_ENOMEM.
 */
int json_merge_patch(cJSON **out, const cJSON *from, const cJSON *to);

#endif

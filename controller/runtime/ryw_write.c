/*
 * The status write of a controller with read-your-writes (runtime/ryw.h,
 * ryw_status_write): the object as read, its status replaced, written to
 * /status with its resourceVersion; a 409 that is the write's own lost answer
 * counts as done.
 */
#include "runtime/ryw.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>

int ryw_status_write(cJSON **cur, ryw *w, kube_client *kc, const kube_resource *res, const char *ns, const char *key,
                     const cJSON *status)
{
    cJSON *body = NULL, *answer = NULL, *back = NULL;
    char msg[512];
    int err;
    if (!(body = cJSON_Duplicate(*cur, true)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    cJSON_DeleteItemFromObject(body, "status");
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(body, "metadata"), "managedFields");
    if ((err = json_set_item(body, "status", cJSON_Duplicate(status, true))) < 0) {
        cJSON_Delete(body);
        return err;
    }
    err = kube_update(&answer, kc, res, ns, body, "status");
    cJSON_Delete(body);
    if (err == MB_ECONFLICT) {
        snprintf(msg, sizeof(msg), "%s", mb_error_last());
        if (kube_get(&back, kc, res, ns, json_str(*cur, "metadata", "name", NULL)) == 0 &&
            ryw_status_landed(w, res->kind, key, status, back)) {
            answer = back;
            err = 0;
        } else {
            cJSON_Delete(back);
            return mb_error_set(MB_ECONFLICT, "%s", msg);
        }
    }
    if (err < 0)
        return err;
    ryw_status_record(w, res->kind, key, status);
    cJSON_Delete(*cur);
    *cur = answer;
    return 0;
}

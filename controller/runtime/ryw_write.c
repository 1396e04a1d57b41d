/*
 * The status write of a controller with read-your-writes (runtime/ryw.h,
 * ryw_status_write): the change from the status as read to the new one, sent
 * to /status as a JSON merge patch with the object's resourceVersion
 * (kube_patch_status); a 409 that is the write's own lost answer counts as
 * done.
 */
#include "runtime/ryw.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>

int ryw_status_write(cJSON **cur, ryw *w, kube_client *kc, const kube_resource *res, const char *ns, const char *key,
                     const cJSON *status)
{
    cJSON *answer = NULL, *back = NULL;
    char msg[512];
    int err = kube_patch_status(&answer, kc, res, ns, *cur, status);
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

/*
 * One key of a Secret by reference (kube/secretref.h).
 */
#include "kube/secretref.h"
#include "util/base64.h"
#include "util/error.h"
#include "util/json.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

static void wipe_json(cJSON *j)
{
    for (cJSON *c = j; c; c = c->next) {
        if (cJSON_IsString(c) && c->valuestring)
            OPENSSL_cleanse(c->valuestring, strlen(c->valuestring));
        wipe_json(c->child);
    }
}

int kube_secret_ref_read(char **out, size_t *len, kube_client *kc, const char *ns, const cJSON *ref, const char *field,
                         char *msg, size_t msize)
{
    const char *name = json_str(ref, "name", NULL), *key = json_str(ref, "key", NULL);
    cJSON *s = NULL;
    int err;
    *out = NULL;
    *len = 0;
    if (!name || !key) {
        snprintf(msg, msize, "%s needs a name and a key", field);
        return 1;
    }
    if ((err = kube_get(&s, kc, &KUBE_SECRETS, ns, name)) < 0) {
        if (err == MB_ENOMEM)
            return err;
        snprintf(msg, msize, "cannot read Secret %s/%s of %s: %s", ns, name, field, mb_error_last());
        return 1;
    }
    const char *b64 = json_str(s, "data", key, NULL);
    if (!b64)
        snprintf(msg, msize, "Secret %s/%s of %s has no key %s", ns, name, field, key);
    else if ((err = mb_base64_decode(out, len, b64)) < 0 && err != MB_ENOMEM)
        snprintf(msg, msize, "Secret %s/%s of %s: key %s is not valid base64", ns, name, field, key);
    wipe_json(s);
    cJSON_Delete(s);
    if (err == MB_ENOMEM)
        return err;
    return *out ? 0 : 1;
}

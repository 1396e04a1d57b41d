/* Objects and index functions the informer cache's tests share (storetest.h). */
#include "storetest.h"
#include "util/json.h"

#include <string.h>

/* A pod-like object; ns, rv, owner and app may be NULL. */
cJSON *storetest_obj(const char *ns, const char *name, const char *rv, const char *owner, const char *app)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(meta, "name", name);
    if (ns)
        cJSON_AddStringToObject(meta, "namespace", ns);
    if (rv)
        cJSON_AddStringToObject(meta, "resourceVersion", rv);
    if (owner) {
        cJSON *ref = cJSON_CreateObject();
        cJSON_AddStringToObject(ref, "apiVersion", "apps/v1");
        cJSON_AddStringToObject(ref, "kind", "ReplicaSet");
        cJSON_AddStringToObject(ref, "name", owner);
        cJSON_AddStringToObject(ref, "uid", "u-1");
        cJSON_AddItemToArray(cJSON_AddArrayToObject(meta, "ownerReferences"), ref);
    }
    if (app)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(meta, "labels"), "app", app);
    return o;
}

/* Index function: the "app" label, plus "any" for every labelled object. */
int storetest_index_app(informer_index_keys *out, const cJSON *o, void *ctx)
{
    int err;
    const char *app = json_str(o, "metadata", "labels", "app", NULL);
    (void)ctx;
    if (!app)
        return 0;
    if ((err = informer_index_keys_add(out, app)) < 0)
        return err;
    return informer_index_keys_add(out, "any");
}

/* Whether index_app files o under key. */
bool storetest_app_files(const cJSON *o, const char *key)
{
    const char *app = json_str(o, "metadata", "labels", "app", NULL);
    return app && (strcmp(key, "any") == 0 || strcmp(key, app) == 0);
}

/* Whether informer_index_namespace files o under key. */
bool storetest_namespace_files(const cJSON *o, const char *key)
{
    const char *ns = json_str(o, "metadata", "namespace", NULL);
    return strcmp(ns ? ns : "", key) == 0;
}

/*
 * What the informer cache's tests share: pod-like objects, an index function
 * on the "app" label, and predicates saying under which keys an index files an
 * object, to check an index against a full listing.
 */
#ifndef MB_TEST_STORETEST_H
#define MB_TEST_STORETEST_H

#include "runtime/store.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

/* A pod-like object; ns, rv, owner (a ReplicaSet) and app (the "app" label) may be NULL. */
cJSON *storetest_obj(const char *ns, const char *name, const char *rv, const char *owner, const char *app);

/* Index function: the "app" label, plus "any" for every labelled object. */
int storetest_index_app(informer_index_keys *out, const cJSON *o, void *ctx);

/* Whether storetest_index_app files o under key. */
bool storetest_app_files(const cJSON *o, const char *key);

/* Whether informer_index_namespace files o under key. */
bool storetest_namespace_files(const cJSON *o, const char *key);

#endif

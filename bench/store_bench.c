/*
 * Benchmark of the informer cache's indexes (runtime/store.h). Heap: 1,000
 * GovernedAPIRelease-like objects under the release controller's three
 * indexes (by Deployment: one key each; by bundle and by after: none) and
 * 1,000 pods under its one (by Deployment), filed by upsert and again by a
 * relist; the index bookkeeping is the heap (mallinfo2) of a store with the
 * indexes less that of the same store without them. Time: 10,000 objects in
 * one namespace under the namespace index, added one by one, relisted,
 * relisted in place, updated one by one, looked up, and deleted one by one:
 * none of these may grow quadratically with the members of one index key.
 * It prints figures and asserts nothing. Built as bench_store.
 */
#include "runtime/store.h"
#include "util/clock.h"
#include "util/json.h"

#include <cjson/cJSON.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_RELEASES 1000
#define N_ONE_KEY 10000

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j) {
        fprintf(stderr, "bench: bad generated JSON: %s\n", text);
        exit(1);
    }
    return j;
}

static cJSON *release(int i)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"metadata\":{\"name\":\"api-%d\",\"namespace\":\"bench\",\"resourceVersion\":\"%d\"},"
             "\"spec\":{\"target\":{\"deployment\":\"api-%d\"}}}",
             i, 100 + i, i);
    return parse(buf);
}

static cJSON *pod(int i)
{
    char buf[768];
    snprintf(buf, sizeof(buf),
             "{\"metadata\":{\"name\":\"api-%d-5d8f7c9b4-x%04d\",\"namespace\":\"bench\",\"resourceVersion\":\"%d\","
             "\"labels\":{\"pod-template-hash\":\"5d8f7c9b4\"},\"ownerReferences\":[{\"apiVersion\":\"apps/v1\","
             "\"kind\":\"ReplicaSet\",\"name\":\"api-%d-5d8f7c9b4\",\"uid\":\"u-%d\"}]}}",
             i, i, 5000 + i, i, i);
    return parse(buf);
}

static cJSON *plain(int i, int rv)
{
    char buf[256];
    snprintf(buf, sizeof(buf),
             "{\"metadata\":{\"name\":\"obj-%05d\",\"namespace\":\"one\",\"resourceVersion\":\"%d\"}}", i, rv);
    return parse(buf);
}

/* The release controller's index functions, in short: "<namespace>/<name>" of one field. */
static int index_ns_name(informer_index_keys *out, const cJSON *obj, const char *name)
{
    char key[512];
    if (!name)
        return 0;
    snprintf(key, sizeof(key), "%s/%s", json_str(obj, "metadata", "namespace", NULL), name);
    return informer_index_keys_add(out, key);
}

static int index_deployment(informer_index_keys *out, const cJSON *obj, void *ctx)
{
    (void)ctx;
    return index_ns_name(out, obj, json_str(obj, "spec", "target", "deployment", NULL));
}

static int index_bundle(informer_index_keys *out, const cJSON *obj, void *ctx)
{
    (void)ctx;
    return index_ns_name(out, obj, json_str(obj, "spec", "policyBundleRef", "name", NULL));
}

static int index_after(informer_index_keys *out, const cJSON *obj, void *ctx)
{
    const cJSON *a;
    int err;
    (void)ctx;
    cJSON_ArrayForEach(a, json_get(obj, "spec", "after", NULL))
        if ((err = index_ns_name(out, obj, json_str(a, "name", NULL))) < 0)
            return err;
    return 0;
}

/* The pod's ReplicaSet name less its "-<pod-template-hash>". */
static int index_pod_deployment(informer_index_keys *out, const cJSON *obj, void *ctx)
{
    char name[256];
    const char *rs = json_str(json_get(obj, "metadata", "ownerReferences", NULL)->child, "name", NULL);
    const char *dash = strrchr(rs, '-');
    (void)ctx;
    snprintf(name, sizeof(name), "%.*s", (int)(dash - rs), rs);
    return index_ns_name(out, obj, name);
}

static void check(int err, const char *what)
{
    if (err < 0) {
        fprintf(stderr, "bench: %s failed (%d)\n", what, err);
        exit(1);
    }
}

static size_t heap(void)
{
    return mallinfo2().uordblks;
}

/* Heap of the releases and pods in two stores, with the indexes or without, filed by upsert or by a relist. */
static size_t stores_heap(int indexed, int relist)
{
    informer_store *rel = NULL, *pods = NULL;
    informer_changes ch = {0};
    size_t before = heap(), after;
    check(informer_store_new(&rel), "store");
    check(informer_store_new(&pods), "store");
    if (indexed) {
        check(informer_store_add_index(rel, "deployment", index_deployment, NULL), "index");
        check(informer_store_add_index(rel, "bundle", index_bundle, NULL), "index");
        check(informer_store_add_index(rel, "after", index_after, NULL), "index");
        check(informer_store_add_index(pods, "deployment", index_pod_deployment, NULL), "index");
    }
    if (relist) {
        cJSON *r = cJSON_CreateArray(), *p = cJSON_CreateArray();
        for (int i = 0; i < N_RELEASES; i++) {
            cJSON_AddItemToArray(r, release(i));
            cJSON_AddItemToArray(p, pod(i));
        }
        check(informer_store_replace(&ch, rel, r), "relist");
        informer_changes_clear(&ch);
        check(informer_store_replace(&ch, pods, p), "relist");
        informer_changes_clear(&ch);
    } else {
        for (int i = 0; i < N_RELEASES; i++) {
            check(informer_store_upsert(&ch, rel, release(i)), "upsert");
            check(informer_store_upsert(&ch, pods, pod(i)), "upsert");
            informer_changes_clear(&ch);
        }
    }
    malloc_trim(0);
    after = heap();
    informer_store_free(rel);
    informer_store_free(pods);
    return after - before;
}

static void bench_heap(void)
{
    for (int relist = 0; relist <= 1; relist++) {
        size_t plain_heap = stores_heap(0, relist), indexed_heap = stores_heap(1, relist);
        size_t ix = indexed_heap - plain_heap;
        printf("heap, %d releases (3 indexes) + %d pods (1 index), by %s: stores %zu bytes without indexes, "
               "%zu with; the indexes %zu bytes, %.0f per object, %.0f per object and index\n",
               N_RELEASES, N_RELEASES, relist ? "relist" : "upsert", plain_heap, indexed_heap, ix,
               (double)ix / (2 * N_RELEASES), (double)ix / (4 * N_RELEASES));
    }
}

static void bench_one_key(void)
{
    informer_store *s = NULL;
    informer_changes ch = {0};
    informer_objs *l = NULL;
    cJSON *items;
    int64_t t;
    check(informer_store_new(&s), "store");
    check(informer_store_add_index(s, "namespace", informer_index_namespace, NULL), "index");

    t = mb_monotonic_ns();
    for (int i = 0; i < N_ONE_KEY; i++) {
        check(informer_store_upsert(&ch, s, plain(i, 1)), "upsert");
        informer_changes_clear(&ch);
    }
    printf("%d objects in one index key: added one by one in %.1f ms\n", N_ONE_KEY, mb_elapsed_ms(t));

    items = cJSON_CreateArray();
    for (int i = 0; i < N_ONE_KEY; i++)
        cJSON_AddItemToArray(items, plain(i, 2));
    t = mb_monotonic_ns();
    check(informer_store_replace(&ch, s, items), "relist");
    printf("%d objects in one index key: relisted (all updated) in %.1f ms (%zu changes)\n", N_ONE_KEY,
           mb_elapsed_ms(t), ch.len);
    informer_changes_clear(&ch);

    items = cJSON_CreateArray();
    for (int i = 0; i < N_ONE_KEY; i++)
        cJSON_AddItemToArray(items, plain(i, 2));
    t = mb_monotonic_ns();
    check(informer_store_replace(&ch, s, items), "relist");
    printf("%d objects in one index key: relisted (unchanged) in %.1f ms (%zu changes)\n", N_ONE_KEY, mb_elapsed_ms(t),
           ch.len);
    informer_changes_clear(&ch);

    t = mb_monotonic_ns();
    for (int i = 0; i < N_ONE_KEY; i++) {
        check(informer_store_upsert(&ch, s, plain(i, 3)), "upsert");
        informer_changes_clear(&ch);
    }
    printf("%d objects in one index key: updated one by one in %.1f ms\n", N_ONE_KEY, mb_elapsed_ms(t));

    t = mb_monotonic_ns();
    for (int i = 0; i < 10; i++) {
        check(informer_store_by_index(&l, s, "namespace", "one"), "by_index");
        informer_objs_free(l);
    }
    printf("%d objects in one index key: looked up 10 times in %.1f ms\n", N_ONE_KEY, mb_elapsed_ms(t));

    t = mb_monotonic_ns();
    for (int i = 0; i < N_ONE_KEY; i++) {
        check(informer_store_delete(&ch, s, plain(i, 4)), "delete");
        informer_changes_clear(&ch);
    }
    printf("%d objects in one index key: deleted one by one in %.1f ms (%zu left)\n", N_ONE_KEY, mb_elapsed_ms(t),
           informer_store_len(s));
    informer_store_free(s);
}

int main(void)
{
    bench_heap();
    bench_one_key();
    return 0;
}

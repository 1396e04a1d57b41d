/*
 * Allocation-failure torture of the informer's cache (test/support/torture.h)
 * with two indexes: an upsert that moves an object to a new index key (a new
 * bucket, the table of buckets growing) and out of a bucket of several (the
 * last member moving into its place), an upsert that grows a bucket's member
 * array, a delete, a relist (with a duplicate and an object under no key), and
 * an index added to a full store. After every run the indexes hold exactly the
 * cached objects their functions file under each key; after a failed relist or
 * added index the store is as it was; after a failed one the store still works
 * (every object updated, then deleted, the indexes right at each step). Every
 * run that succeeds leaves the same store.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "runtime/store.h"
#include "torture.h"
#include "storetest.h"
#include "util/error.h"
#include "util/json.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    bool (*files)(const cJSON *o, const char *key);
} index_spec;

static const index_spec INDEXES[] = {{"by-app", storetest_app_files},
                                     {"by-namespace", storetest_namespace_files},
                                     {"by-app-2", storetest_app_files}};
static const char *const KEYS[] = {"a1", "a2", "a3", "a4", "a5", "a6", "any", "ns", "other", "none", NULL};

/* Appends the store's objects and what each index holds under each key to t, asserting that it is right. */
static void store_print(transcript *t, informer_store *s)
{
    informer_objs *all = NULL;
    assert_int_equal(informer_store_list(&all, s), 0);
    for (size_t i = 0; i < all->len; i++)
        tprintf(t, "%s@%s ", informer_obj_key(all->items[i]), informer_obj_resource_version(all->items[i]));
    tprintf(t, "\n");
    for (size_t x = 0; x < sizeof(INDEXES) / sizeof(INDEXES[0]); x++) {
        for (const char *const *k = KEYS; *k; k++) {
            informer_objs *got = NULL;
            size_t j = 0;
            int rc = informer_store_by_index(&got, s, INDEXES[x].name, *k);
            if (rc == MB_ENOTFOUND)
                break; /* no such index */
            assert_int_equal(rc, 0);
            tprintf(t, "%s %s:", INDEXES[x].name, *k);
            for (size_t i = 0; i < all->len; i++) {
                if (!INDEXES[x].files(informer_obj_json(all->items[i]), *k))
                    continue;
                if (j >= got->len || strcmp(informer_obj_key(got->items[j]), informer_obj_key(all->items[i])) != 0)
                    fail_msg("index %s, key %s: %s is not filed", INDEXES[x].name, *k, informer_obj_key(all->items[i]));
                tprintf(t, " %s", informer_obj_key(got->items[j]));
                j++;
            }
            if (j != got->len)
                fail_msg("index %s, key %s: %s is filed and should not be", INDEXES[x].name, *k,
                         informer_obj_key(got->items[j]));
            tprintf(t, "\n");
            informer_objs_free(got);
        }
    }
    informer_objs_free(all);
}

typedef enum { OP_MOVE, OP_GROW, OP_DELETE, OP_RELIST, OP_ADD_INDEX } store_op;

typedef struct {
    store_op op;
    informer_store *s;
    cJSON *input; /* what the run hands over (the run owns it) */
    informer_changes ch;
    int rc;
    transcript before; /* the store as set up */
    transcript t;
} store_ctx;

/*
 * Thirteen objects: o00..o12, app a1..a5 in turn (a1 has three members, the
 * capacity of a first member array), o05 and o11 unlabelled (under no app key),
 * o03 and o09 in namespace "other". Two indexes: by-app (six buckets, the
 * most the first table of eight holds) and by-namespace.
 */
static void setup(store_ctx *c)
{
    static const char *const apps[] = {"a1", "a2", "a3", "a4", "a5", NULL};
    informer_changes ch = {0};
    char name[16];
    assert_int_equal(informer_store_new(&c->s), 0);
    assert_int_equal(informer_store_add_index(c->s, "by-app", storetest_index_app, NULL), 0);
    assert_int_equal(informer_store_add_index(c->s, "by-namespace", informer_index_namespace, NULL), 0);
    for (int i = 0; i < 13; i++) {
        snprintf(name, sizeof(name), "o%02d", i);
        assert_int_equal(informer_store_upsert(&ch, c->s,
                                               storetest_obj(i % 6 == 3 ? "other" : "ns", name, "1", NULL,
                                                             apps[i % 6])),
                         0);
        informer_changes_clear(&ch);
    }
    switch (c->op) {
    case OP_MOVE: c->input = storetest_obj("ns", "o01", "2", NULL, "a6"); break;
    case OP_GROW: c->input = storetest_obj("ns", "o13", "2", NULL, "a1"); break;
    case OP_DELETE: c->input = storetest_obj("ns", "o06", "2", NULL, NULL); break;
    case OP_RELIST:
        c->input = cJSON_CreateArray();
        cJSON_AddItemToArray(c->input, storetest_obj("ns", "o00", "1", NULL, "a1"));
        cJSON_AddItemToArray(c->input, storetest_obj("ns", "o02", "3", NULL, "a6"));
        cJSON_AddItemToArray(c->input, storetest_obj("ns", "o04", "3", NULL, NULL));
        cJSON_AddItemToArray(c->input, storetest_obj("other", "o09", "3", NULL, "a1"));
        cJSON_AddItemToArray(c->input, storetest_obj("ns", "o14", "3", NULL, "a2"));
        cJSON_AddItemToArray(c->input, storetest_obj("ns", "o02", "4", NULL, "a2"));
        break;
    case OP_ADD_INDEX: c->input = NULL; break;
    }
    transcript_reset(&c->before);
    store_print(&c->before, c->s);
}

static int store_run(void *arg)
{
    store_ctx *c = arg;
    cJSON *in = c->input;
    c->input = NULL;
    switch (c->op) {
    case OP_MOVE:
    case OP_GROW: return c->rc = informer_store_upsert(&c->ch, c->s, in);
    case OP_DELETE: return c->rc = informer_store_delete(&c->ch, c->s, in);
    case OP_RELIST: return c->rc = informer_store_replace(&c->ch, c->s, in);
    case OP_ADD_INDEX: return c->rc = informer_store_add_index(c->s, "by-app-2", storetest_index_app, NULL);
    }
    return c->rc = MB_EINVAL;
}

static void store_check(void *arg)
{
    store_ctx *c = arg;
    transcript_reset(&c->t);
    for (size_t i = 0; i < c->ch.len; i++) {
        const informer_change *ch = &c->ch.items[i];
        tprintf(&c->t, "%d %s ", ch->type, informer_obj_key(ch->new_obj ? ch->new_obj : ch->old_obj));
    }
    tprintf(&c->t, "\n");
    store_print(&c->t, c->s);
    transcript_check(&c->t);
}

/* After a failure: the store still takes every change, and its indexes follow. */
static void store_exercise(store_ctx *c)
{
    informer_objs *all = NULL;
    informer_changes ch = {0};
    transcript t = {0};
    assert_int_equal(informer_store_list(&all, c->s), 0);
    for (size_t i = 0; i < all->len; i++) {
        const cJSON *o = informer_obj_json(all->items[i]);
        const char *ns = json_str(o, "metadata", "namespace", NULL), *name = json_str(o, "metadata", "name", NULL);
        assert_int_equal(informer_store_upsert(&ch, c->s, storetest_obj(ns, name, "8", NULL, i % 2 ? "a3" : NULL)), 0);
        store_print(&t, c->s);
        transcript_reset(&t);
    }
    for (size_t i = 0; i < all->len; i++) {
        const cJSON *o = informer_obj_json(all->items[i]);
        const char *ns = json_str(o, "metadata", "namespace", NULL), *name = json_str(o, "metadata", "name", NULL);
        assert_int_equal(informer_store_delete(&ch, c->s, storetest_obj(ns, name, "9", NULL, NULL)), 0);
        store_print(&t, c->s);
        transcript_reset(&t);
    }
    assert_int_equal(informer_store_len(c->s), 0);
    informer_changes_clear(&ch);
    informer_objs_free(all);
}

/* After every run: a failed one left the indexes right (and a failed relist or added index, the store as it was). */
static void store_clear(void *arg)
{
    store_ctx *c = arg;
    if (c->rc < 0) {
        informer_objs *l = NULL;
        transcript_reset(&c->t);
        store_print(&c->t, c->s); /* asserts the indexes */
        if (c->op == OP_RELIST || c->op == OP_ADD_INDEX)
            assert_string_equal(c->t.text, c->before.text);
        if (c->op == OP_ADD_INDEX)
            assert_int_equal(informer_store_by_index(&l, c->s, "by-app-2", "any"), MB_ENOTFOUND);
        store_exercise(c);
    }
    informer_changes_clear(&c->ch);
    cJSON_Delete(c->input);
    c->input = NULL;
    informer_store_free(c->s);
    c->s = NULL;
    setup(c); /* for the next run, outside it */
}

static void store_torture(const char *name, store_op op)
{
    store_ctx c = {.op = op};
    setup(&c);
    torture_case tc = {.name = name,
                       .run = store_run,
                       .check = store_check,
                       .clear = store_clear,
                       .ctx = &c,
                       .may_succeed =
                           true /* glibc's asprintf (the store key) gets by when one of its allocations fails */};
    assert_true(torture_check(&tc) > 0);
    informer_store_free(c.s);
    cJSON_Delete(c.input);
    transcript_free(&c.t);
    transcript_free(&c.before);
}

static void test_upsert_moving_keys(void **state)
{
    (void)state;
    store_torture("informer_store_upsert to a new key", OP_MOVE);
}

static void test_upsert_growing_a_bucket(void **state)
{
    (void)state;
    store_torture("informer_store_upsert into a full bucket", OP_GROW);
}

static void test_delete(void **state)
{
    (void)state;
    store_torture("informer_store_delete", OP_DELETE);
}

static void test_relist(void **state)
{
    (void)state;
    store_torture("informer_store_replace", OP_RELIST);
}

static void test_add_index(void **state)
{
    (void)state;
    store_torture("informer_store_add_index", OP_ADD_INDEX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upsert_moving_keys),
        cmocka_unit_test(test_upsert_growing_a_bucket),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_relist),
        cmocka_unit_test(test_add_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

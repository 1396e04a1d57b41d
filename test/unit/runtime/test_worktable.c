/*
 * runtime/worktable: a controller's per-key work. A payload is made zeroed on
 * first use and is the same one on every later get of its key; drop clears it
 * (the controller's clear runs) and the next get makes a fresh one; free
 * clears every payload left.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "runtime/worktable.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    long long gen;
    char note[16];
} payload;

static int cleared;

static void clear(void *p)
{
    cleared++;
    memset(p, 0, sizeof(payload));
}

static void test_get_drop_free(void **state)
{
    (void)state;
    worktable *t = NULL;
    cleared = 0;
    assert_int_equal(worktable_new(&t, sizeof(payload), clear), 0);
    payload *a = worktable_get(t, "kfm/a");
    assert_non_null(a);
    assert_int_equal(a->gen, 0);
    a->gen = 7;
    snprintf(a->note, sizeof(a->note), "a");
    assert_ptr_equal(worktable_get(t, "kfm/a"), a);
    payload *b = worktable_get(t, "kfm/b");
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_int_equal(b->gen, 0);
    b->gen = 9;
    worktable_drop(t, "kfm/a");
    assert_int_equal(cleared, 1);
    worktable_drop(t, "kfm/none"); /* nothing */
    assert_int_equal(cleared, 1);
    payload *again = worktable_get(t, "kfm/a");
    assert_int_equal(again->gen, 0);
    assert_string_equal(again->note, "");
    assert_int_equal(((payload *)worktable_get(t, "kfm/b"))->gen, 9);
    for (int i = 0; i < 200; i++) { /* the table grows */
        char key[32];
        snprintf(key, sizeof(key), "ns/%d", i);
        ((payload *)worktable_get(t, key))->gen = i;
    }
    assert_int_equal(((payload *)worktable_get(t, "ns/150"))->gen, 150);
    worktable_free(t);
    assert_int_equal(cleared, 1 + 2 + 200);
    worktable_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_drop_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

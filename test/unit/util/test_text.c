/*
 * util/text: mb_has_control, the one test for control characters that the
 * transfer loop and the contract checks make before a string goes into a URL
 * or a header.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/text.h"

static void test_has_control(void **state)
{
    (void)state;
    assert_false(mb_has_control(NULL));
    assert_false(mb_has_control(""));
    assert_false(mb_has_control("https://api.example/v1?q=a b~"));
    assert_false(mb_has_control("caf\xc3\xa9 \xe2\x82\xac")); /* UTF-8 bytes are not control characters */
    assert_true(mb_has_control("line\nbreak"));
    assert_true(mb_has_control("\r"));
    assert_true(mb_has_control("tab\there"));
    assert_true(mb_has_control("\x01"));
    assert_true(mb_has_control("del\x7f"));
    assert_true(mb_has_control("ends with \x1f"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_has_control),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

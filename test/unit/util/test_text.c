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

static void test_sha256_digest_valid(void **state)
{
    (void)state;
    assert_true(mb_sha256_digest_valid("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_false(mb_sha256_digest_valid(NULL));
    assert_false(mb_sha256_digest_valid(""));
    assert_false(mb_sha256_digest_valid("sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_false(mb_sha256_digest_valid("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"));
    assert_false(mb_sha256_digest_valid("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0"));
    assert_false(mb_sha256_digest_valid("sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_false(mb_sha256_digest_valid("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg"));
}

static void test_sha256_digest(void **state)
{
    (void)state;
    char out[72];
    assert_int_equal(mb_sha256_digest(out, "abc", 3), 0);
    assert_string_equal(out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(mb_sha256_digest_valid(out));
    assert_int_equal(mb_sha256_digest(out, "", 0), 0);
    assert_string_equal(out, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_shown(void **state)
{
    (void)state;
    char out[8 + 4];
    assert_string_equal(mb_text_shown(out, 8, "short"), "short");
    assert_string_equal(mb_text_shown(out, 8, "exactly8"), "exactly8");
    assert_string_equal(mb_text_shown(out, 8, "longer than eight"), "longer t...");
    assert_string_equal(mb_text_shown(out, 8,
                                      "a\nb\x7f"
                                      "c"),
                        "a?b?c");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_has_control),
        cmocka_unit_test(test_sha256_digest_valid),
        cmocka_unit_test(test_sha256_digest),
        cmocka_unit_test(test_shown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

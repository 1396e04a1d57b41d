/*
 * util/base64 and util/secret: the one base64 decoder and encoder (kubeconfig
 * *-data fields, Secret data, the exec plugin's cluster info) and
 * wipe-then-free.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/base64.h"
#include "util/error.h"
#include "util/secret.h"

#include <stdlib.h>
#include <string.h>

static void test_decode(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 99;
    assert_int_equal(mb_base64_decode(&out, &len, "aGVsbG8gd29ybGQ="), 0);
    assert_int_equal(len, 11);
    assert_string_equal(out, "hello world");
    mb_secret_free_len(out, len);

    /* line breaks, as a PEM block or `base64` without -w0 writes them */
    assert_int_equal(mb_base64_decode(&out, &len, "aGVs\nbG8g\r\nd29y\nbGQ=\n"), 0);
    assert_int_equal(len, 11);
    assert_string_equal(out, "hello world");
    mb_secret_free(out);

    /* bytes with a NUL keep their length */
    assert_int_equal(mb_base64_decode(&out, &len, "AGEA"), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(out, "\0a\0", 3);
    assert_int_equal(out[3], '\0');
    free(out);

    /* empty in, empty out: what is empty is the caller's judgement */
    assert_int_equal(mb_base64_decode(&out, &len, ""), 0);
    assert_int_equal(len, 0);
    assert_string_equal(out, "");
    free(out);
}

static void test_decode_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {"***", "aGVsbG8*", "aGVsbG8", "a", "aGVsbG8=x==="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *out = (char *)"untouched";
        size_t len = 7;
        if (mb_base64_decode(&out, &len, bad[i]) != MB_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_null(out);
        assert_int_equal(len, 0);
        assert_string_equal(mb_error_last(), "not valid base64");
    }
}

static void test_encode(void **state)
{
    (void)state;
    char *out = NULL, *back = NULL;
    size_t len = 0;
    assert_int_equal(mb_base64_encode(&out, "hello world", 11), 0);
    assert_string_equal(out, "aGVsbG8gd29ybGQ=");
    free(out);
    assert_int_equal(mb_base64_encode(&out, "", 0), 0);
    assert_string_equal(out, "");
    free(out);

    /* a round trip of every byte value, on one line */
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    assert_int_equal(mb_base64_encode(&out, all, sizeof(all)), 0);
    assert_null(strchr(out, '\n'));
    assert_int_equal(mb_base64_decode(&back, &len, out), 0);
    assert_int_equal(len, sizeof(all));
    assert_memory_equal(back, all, sizeof(all));
    free(out);
    free(back);
}

static void test_base64url(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(mb_base64url_decode(&out, &len, "eyJhIjoxfQ", 10), 0);
    assert_int_equal(len, 7);
    assert_string_equal(out, "{\"a\":1}");
    free(out);
    assert_int_equal(mb_base64url_decode(&out, &len, "-_8", 3), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(out, "\xfb\xff", 2);
    free(out);
    assert_int_equal(mb_base64url_decode(&out, &len, "", 0), 0);
    assert_int_equal(len, 0);
    free(out);
    const char *bad[] = {"eyJhIjoxfQ==", "a+b/", "ab\ncd", "abcde", "ab cd"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(mb_base64url_decode(&out, &len, bad[i], strlen(bad[i])), MB_EINVAL);
        assert_null(out);
    }
}

static void test_decode_strict(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(mb_base64_decode_strict(&out, &len, "eyJhIjoxfQ=="), 0);
    assert_int_equal(len, 7);
    assert_string_equal(out, "{\"a\":1}");
    free(out);
    assert_int_equal(mb_base64_decode_strict(&out, &len, "+/8="), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(out, "\xfb\xff", 2);
    free(out);
    assert_int_equal(mb_base64_decode_strict(&out, &len, ""), 0);
    assert_int_equal(len, 0);
    free(out);
    /* what the lenient decoder takes and a JSON document may not carry: line breaks, spaces, no padding, base64url */
    const char *bad[] = {"eyJhIjox\nfQ==", "eyJh IjoxfQ==", "eyJhIjoxfQ", "-_8=", "ab=c", "a===", "abc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(mb_base64_decode_strict(&out, &len, bad[i]), MB_EINVAL);
        assert_null(out);
    }
    assert_int_equal(mb_base64_decode(&out, &len, "eyJhIjox\nfQ=="), 0); /* the lenient one does */
    free(out);
}

static void test_secret_free(void **state)
{
    (void)state;
    mb_secret_free(NULL);
    mb_secret_free_len(NULL, 10);
    mb_secret_free(strdup("a token"));
    mb_secret_free_len(calloc(1, 64), 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),    cmocka_unit_test(test_decode_rejects), cmocka_unit_test(test_encode),
        cmocka_unit_test(test_base64url), cmocka_unit_test(test_decode_strict),  cmocka_unit_test(test_secret_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * policy_verify_bytes: the checks on fetched bytes in their order (the
 * digest before anything is unpacked, the size a ConfigMap can carry, the
 * structure, the signatures when spec.signing is set, the required roots),
 * each failure with its reason and a message naming what to fix.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "policy/verify.h"
#include "tarball.h"
#include "util/json.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned char *gz;
    size_t len;
    char hex[65];
    cJSON *pb;
    policy_checked out;
} fx;

static void fx_init(fx *f, const tar_entry *entries, size_t n, const char *extra_spec)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char text[1024];
    memset(f, 0, sizeof(*f));
    tarball_make(&f->gz, &f->len, entries, n, TARBALL_GZIP_PAX);
    SHA256(f->gz, f->len, md);
    for (size_t i = 0; i < sizeof(md); i++)
        snprintf(f->hex + 2 * i, 3, "%02x", md[i]);
    snprintf(text, sizeof(text),
             "{\"metadata\":{\"name\":\"p\",\"namespace\":\"kfm\"},\"spec\":{\"source\":{\"url\":\"http://x/b.tar.gz\","
             "\"digest\":\"sha256:%s\"},\"requiredRoots\":[\"kfm\"]%s%s}}",
             f->hex, extra_spec[0] ? "," : "", extra_spec);
    f->pb = cJSON_Parse(text);
    assert_non_null(f->pb);
}

static void fx_free(fx *f)
{
    policy_checked_clear(&f->out);
    free(f->gz);
    cJSON_Delete(f->pb);
}

static const tar_entry good[] = {
    {.name = ".manifest", .data = "{\"revision\":\"r7\",\"roots\":[\"kfm\"]}"},
    {.name = "kfm/a.rego", .data = "package kfm\n"},
    {.name = "kfm/b.rego", .data = "package kfm\n"},
};

static void test_all_hold(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, good, 3, "");
    assert_int_equal(policy_verify_bytes(&f.out, f.gz, f.len, f.hex, f.pb, NULL), 0);
    assert_null(f.out.v.reason);
    assert_true(f.out.v.structure_checked);
    assert_false(f.out.v.signature_checked);
    assert_string_equal(f.out.v.revision, "r7");
    assert_int_equal(f.out.v.rego_modules, 2);
    assert_int_equal(f.out.v.size_bytes, (long long)f.len);
    assert_string_equal(cJSON_GetArrayItem(f.out.v.roots, 0)->valuestring, "kfm");
    assert_non_null(f.out.b);
    fx_free(&f);
}

static void test_digest_first(void **state)
{
    fx f;
    char other[65];
    (void)state;
    fx_init(&f, good, 3, "");
    memset(other, 'a', 64);
    other[64] = '\0';
    assert_int_equal(policy_verify_bytes(&f.out, f.gz, f.len, other, f.pb, NULL), 0);
    assert_string_equal(f.out.v.reason, "DigestMismatch");
    assert_non_null(strstr(f.out.v.message, other));
    assert_non_null(strstr(f.out.v.message, f.hex));
    assert_non_null(strstr(f.out.v.message, "spec.source.digest"));
    assert_false(f.out.v.structure_checked); /* nothing unpacked */
    assert_null(f.out.b);
    fx_free(&f);
}

static void test_invalid_bundle(void **state)
{
    static const tar_entry bad[] = {
        {.name = ".manifest", .data = "{\"revision\":\"r\"}"},
        {.name = "../x.rego", .data = "package x\n"},
    };
    fx f;
    (void)state;
    fx_init(&f, bad, 2, "");
    assert_int_equal(policy_verify_bytes(&f.out, f.gz, f.len, f.hex, f.pb, NULL), 0);
    assert_string_equal(f.out.v.reason, "InvalidBundle");
    assert_non_null(strstr(f.out.v.message, "../x.rego"));
    fx_free(&f);
}

static void test_missing_root(void **state)
{
    static const tar_entry other_root[] = {
        {.name = ".manifest", .data = "{\"revision\":\"r\",\"roots\":[\"other\"]}"},
        {.name = "other/a.rego", .data = "package other\n"},
    };
    fx f;
    (void)state;
    fx_init(&f, other_root, 2, "");
    assert_int_equal(policy_verify_bytes(&f.out, f.gz, f.len, f.hex, f.pb, NULL), 0);
    assert_string_equal(f.out.v.reason, "MissingRoot");
    assert_non_null(strstr(f.out.v.message, "kfm of spec.requiredRoots"));
    assert_true(f.out.v.structure_checked);
    fx_free(&f);
}

static void test_unsigned_with_signing(void **state)
{
    fx f;
    (void)state;
    fx_init(&f, good, 3, "\"signing\":{\"publicKeySecretRef\":{\"name\":\"k\",\"key\":\"key.pem\"}}");
    assert_int_equal(policy_verify_bytes(&f.out, f.gz, f.len, f.hex, f.pb, "-----BEGIN PUBLIC KEY-----\n"), 0);
    assert_string_equal(f.out.v.reason, "SignatureInvalid");
    assert_non_null(strstr(f.out.v.message, ".signatures.json"));
    fx_free(&f);
}

static void test_too_large_for_a_configmap(void **state)
{
    /* random bytes do not compress: more than 900 KiB of .tar.gz */
    size_t n = 1000 * 1024;
    char *noise = malloc(n);
    assert_non_null(noise);
    srand(7);
    for (size_t i = 0; i < n; i++)
        noise[i] = (char)(rand() & 0xff);
    tar_entry big[] = {
        {.name = ".manifest", .data = "{\"revision\":\"r\",\"roots\":[\"kfm\"]}"},
        {.name = "kfm/a.rego", .data = "package kfm\n"},
        {.name = "kfm/blob.bin", .data = noise, .len = n},
    };
    fx f;
    (void)state;
    fx_init(&f, big, 3, "");
    assert_true(f.len > 900 * 1024);
    assert_int_equal(policy_verify_bytes(&f.out, f.gz, f.len, f.hex, f.pb, NULL), 0);
    assert_string_equal(f.out.v.reason, "TooLarge");
    assert_non_null(strstr(f.out.v.message, "900 KiB"));
    free(noise);
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_hold),
        cmocka_unit_test(test_digest_first),
        cmocka_unit_test(test_invalid_bundle),
        cmocka_unit_test(test_missing_root),
        cmocka_unit_test(test_unsigned_with_signing),
        cmocka_unit_test(test_too_large_for_a_configmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

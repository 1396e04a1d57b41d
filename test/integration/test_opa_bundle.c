/*
 * The bundle module against the real OPA: bundles written and signed by
 * `opa build` (the binary named by MEMBRANE_OPA, OPA v1.22) are read with
 * bundle_read and verified with bundle_verify_signatures: OPA's "/" entry
 * names, its manifest, its canonical hashes of data.json and .manifest (data
 * chosen to tell canonical forms apart), every signing algorithm the contract
 * lists, kid from the header and from --claims-file, scope, and a wrong key.
 * Skipped, saying so, when MEMBRANE_OPA is not set.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "jwstest.h"
#include "policy/bundle.h"
#include "util/error.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *opa;
    char dir[64];
} opa_fixture;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void write_file(const char *dir, const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc((size_t)n + 1);
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return data;
}

static int setup(void **state)
{
    const char *opa = getenv("MEMBRANE_OPA");
    *state = NULL;
    if (!opa || !*opa) {
        fprintf(stderr, "test_opa_bundle: skipped: MEMBRANE_OPA is not set (the path of an opa v1.22 binary)\n");
        return 0;
    }
    opa_fixture *f = calloc(1, sizeof(*f));
    f->opa = opa;
    snprintf(f->dir, sizeof(f->dir), "/tmp/membrane-opa.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char path[256];
    snprintf(path, sizeof(path), "%s/src", f->dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/src/kfm", f->dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/src", f->dir);
    write_file(path, "kfm/policy.rego", "package kfm\n\nallow if input.role == \"admin\"\n");
    /* numbers by their text, <>& and U+2028 as OPA's hash writes them, keys out of order */
    write_file(path, "data.json",
               "{\"kfm\":{\"z\":1.0,\"a\":[1e2,\"x<y&z\",\"\xe2\x80\xa8\"],\"big\":12345678901234567890,"
               "\"\xc3\xa9\":true}}");
    write_file(path, ".manifest", "{\"revision\":\"2026.11.20-3\",\"roots\":[\"kfm\"]}");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    opa_fixture *f = *state;
    if (f) {
        sh("rm -rf '%s'", f->dir);
        free(f);
    }
    return 0;
}

static bundle *read_bundle(const opa_fixture *f, const char *name)
{
    char path[256], err[BUNDLE_ERROR_MAX];
    size_t len = 0;
    bundle *b = NULL;
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    unsigned char *gz = read_all(path, &len);
    if (bundle_read(&b, gz, len, 1 << 24, err) != 0)
        fail_msg("bundle_read %s: %s", name, err);
    free(gz);
    return b;
}

static void test_build(void **state)
{
    opa_fixture *f = *state;
    if (!f)
        skip();
    assert_int_equal(sh("cd '%s/src' && '%s' build -b . -o ../plain.tar.gz", f->dir, f->opa), 0);
    /* what OPA wrote, for the record: names with a leading "/" */
    assert_int_equal(sh("tar tzvf '%s/plain.tar.gz' 2>/dev/null | grep -q ' /.manifest$'", f->dir), 0);
    bundle *b = read_bundle(f, "plain.tar.gz");
    assert_non_null(bundle_find(b, "data.json"));
    assert_non_null(bundle_find(b, "kfm/policy.rego"));
    assert_non_null(b->manifest);
    assert_null(b->signatures);
    assert_string_equal(b->revision, "2026.11.20-3");
    assert_int_equal(b->rego_modules, 1);
    cJSON *req = cJSON_Parse("[\"kfm\",\"kfm/allow\"]");
    assert_null(bundle_missing_root(b, req));
    cJSON_Delete(req);
    bundle_free(b);
}

static EVP_PKEY *private_key(const opa_fixture *f, const char *name, const char *type, const char *param)
{
    EVP_PKEY *k = param                      ? EVP_PKEY_Q_keygen(NULL, NULL, type, param)
                  : strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, type, (size_t)2048)
                                             : EVP_PKEY_Q_keygen(NULL, NULL, type);
    assert_non_null(k);
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(PEM_write_PrivateKey(out, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(out);
    return k;
}

static void expect(const bundle *b, const char *pem, const char *kid, const char *scope, const char *needle)
{
    bundle_signing s = {.public_key_pem = pem, .key_id = kid, .scope = scope};
    char err[BUNDLE_ERROR_MAX];
    int rc = bundle_verify_signatures(b, &s, err);
    if (!needle && rc != 0)
        fail_msg("bundle_verify_signatures: %s", err);
    if (needle && (rc != MB_EINVAL || !strstr(err, needle)))
        fail_msg("bundle_verify_signatures: %d \"%s\", wanted \"%s\"", rc, err, needle);
}

static void test_signed(void **state)
{
    opa_fixture *f = *state;
    if (!f)
        skip();
    EVP_PKEY *rsa = private_key(f, "rsa.pem", "RSA", NULL), *p256 = private_key(f, "p256.pem", "EC", "P-256"),
             *p384 = private_key(f, "p384.pem", "EC", "P-384"), *ed = private_key(f, "ed.pem", "ED25519", NULL);
    char *rsa_pub = jwstest_public_pem(rsa), *p256_pub = jwstest_public_pem(p256), *p384_pub = jwstest_public_pem(p384),
         *ed_pub = jwstest_public_pem(ed);
    struct {
        const char *alg, *key, *pub;
    } cases[] = {
        {"RS256", "rsa.pem", rsa_pub},   {"RS384", "rsa.pem", rsa_pub},   {"RS512", "rsa.pem", rsa_pub},
        {"PS256", "rsa.pem", rsa_pub},   {"PS384", "rsa.pem", rsa_pub},   {"PS512", "rsa.pem", rsa_pub},
        {"ES256", "p256.pem", p256_pub}, {"ES384", "p384.pem", p384_pub}, {"EdDSA", "ed.pem", ed_pub},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (sh("cd '%s/src' && '%s' build -b . --signing-key ../%s --signing-alg %s -o ../signed.tar.gz", f->dir,
               f->opa, cases[i].key, cases[i].alg) != 0)
            fail_msg("opa build --signing-alg %s failed", cases[i].alg);
        bundle *b = read_bundle(f, "signed.tar.gz");
        assert_non_null(b->signatures);
        /* opa build names its key "default" (header kid and payload keyid) */
        expect(b, cases[i].pub, "default", NULL, NULL);
        expect(b, cases[i].pub, NULL, NULL, NULL);
        expect(b, cases[i].pub, "kfm-2026", NULL, "kid default differs from spec.signing.keyID kfm-2026");
        expect(b, cases[i].pub == rsa_pub ? p256_pub : rsa_pub, NULL, NULL, "does not fit");
        bundle_free(b);
    }
    /* another RSA key */
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    char *other_pub = jwstest_public_pem(other);
    assert_int_equal(sh("cd '%s/src' && '%s' build -b . --signing-key ../rsa.pem -o ../signed.tar.gz", f->dir, f->opa),
                     0);
    bundle *b = read_bundle(f, "signed.tar.gz");
    expect(b, other_pub, NULL, NULL, "signature does not verify with spec.signing.publicKeySecretRef");
    bundle_free(b);

    /* claims: keyid and scope in the payload, no kid in the header */
    write_file(f->dir, "claims.json", "{\"keyid\":\"kfm-2026\",\"scope\":\"write\"}");
    assert_int_equal(sh("cd '%s/src' && '%s' build -b . --signing-key ../p256.pem --signing-alg ES256 "
                        "--claims-file ../claims.json -o ../claims.tar.gz",
                        f->dir, f->opa),
                     0);
    b = read_bundle(f, "claims.tar.gz");
    expect(b, p256_pub, "kfm-2026", "write", NULL);
    expect(b, p256_pub, "kfm-2025", NULL, "kid kfm-2026 differs from spec.signing.keyID kfm-2025");
    expect(b, p256_pub, NULL, "read", "scope write differs from spec.signing.scope read");
    bundle_free(b);

    EVP_PKEY *keys[] = {rsa, p256, p384, ed, other};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        EVP_PKEY_free(keys[i]);
    free(rsa_pub);
    free(p256_pub);
    free(p384_pub);
    free(ed_pub);
    free(other_pub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_signed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * Allocation-failure torture of the cosign signature checks
 * (image/signature.h, test/support/torture.h): loading a key, and the simple
 * signing, DSSE envelope and sigstore bundle checks on documents that verify
 * and on ones that are refused (OpenSSL's allocations sampled).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cosigntest.h"
#include "image/signature.h"
#include "jwstest.h"
#include "torture.h"
#include "util/error.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST "sha256:0f3e5a7c1d2b4c6e8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e"
#define OTHER "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define SLSA "https://slsa.dev/provenance/v1"
#define INTOTO "application/vnd.in-toto+json"

/*
 * OpenSSL does not report every failed allocation of its own: some leave the
 * PEM decoder without a decoder for the block (the key reads as none), some
 * make a verification come out false. Both refuse, which is the fail-closed
 * answer; the messages say which.
 */
static bool openssl_unreported(void *ctx, int rc)
{
    (void)ctx;
    return rc == MB_EINVAL && (strstr(mb_error_last(), "not a PEM public key") ||
                               strstr(mb_error_last(), "does not verify with the key") ||
                               strstr(mb_error_last(), "verifies with the key"));
}

/* ---- image_key_load ---------------------------------------------------------------- */

typedef struct {
    const char *pem;
    image_key *k;
    char err[IMAGE_SIG_ERROR_MAX];
    transcript t;
} key_ctx;

static int key_run(void *arg)
{
    key_ctx *c = arg;
    int rc = image_key_load(&c->k, c->pem, strlen(c->pem), c->err);
    if (rc == 0)
        tprintf(&c->t, "%s %s\n", image_key_id(c->k), image_key_kind(c->k));
    else if (rc != MB_ENOMEM)
        tprintf(&c->t, "%d %s\n", rc, c->err);
    return rc;
}

static void key_check(void *arg)
{
    key_ctx *c = arg;
    if (torture_refused() && openssl_unreported(NULL, MB_EINVAL))
        return;
    transcript_check(&c->t);
}

static void key_clear(void *arg)
{
    key_ctx *c = arg;
    image_key_free(c->k);
    c->k = NULL;
    transcript_reset(&c->t);
}

static void test_key_load(void **state)
{
    (void)state;
    const char *kinds[][2] = {{"EC", "P-256"}, {"EC", "P-384"}, {"ED25519", NULL}, {"RSA", NULL}};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        EVP_PKEY *k = kinds[i][1]                       ? EVP_PKEY_Q_keygen(NULL, NULL, kinds[i][0], kinds[i][1])
                      : strcmp(kinds[i][0], "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                                        : EVP_PKEY_Q_keygen(NULL, NULL, kinds[i][0]);
        assert_non_null(k);
        char *pem = jwstest_public_pem(k);
        key_ctx c = {.pem = pem};
        torture_case tc = {.name = kinds[i][0],
                           .run = key_run,
                           .check = key_check,
                           .clear = key_clear,
                           .ctx = &c,
                           .may_succeed = true,
                           .errors = {MB_ERROR},
                           .allowed = openssl_unreported};
        assert_true(torture_check(&tc) > 0);
        transcript_free(&c.t);
        free(pem);
        EVP_PKEY_free(k);
    }
}

/* ---- the checks ----------------------------------------------------------------------- */

typedef enum { SIMPLE, ENVELOPE, BUNDLE } which;

typedef struct {
    which w;
    const image_key *k;
    const char *digest, *doc, *sig, *cert, *predicate;
    image_sig_verdict v;
    transcript t;
} check_ctx;

static int check_run(void *arg)
{
    check_ctx *c = arg;
    int rc = 0;
    size_t len = strlen(c->doc);
    switch (c->w) {
    case SIMPLE: rc = image_sig_check_simple(&c->v, c->k, c->digest, c->doc, len, c->sig, c->cert); break;
    case ENVELOPE: rc = image_sig_check_envelope(&c->v, c->k, c->digest, c->doc, len, c->predicate); break;
    case BUNDLE: rc = image_sig_check_bundle(&c->v, c->k, c->digest, c->doc, len, c->predicate); break;
    }
    if (rc != MB_ENOMEM)
        tprintf(&c->t, "%d %s %s\n", rc, c->v.payload_sha256, c->v.message);
    return rc;
}

static void check_check(void *arg)
{
    check_ctx *c = arg;
    if (torture_refused() && openssl_unreported(NULL, MB_EINVAL))
        return;
    transcript_check(&c->t);
}

static void check_clear(void *arg)
{
    check_ctx *c = arg;
    transcript_reset(&c->t);
}

static void torture(check_ctx *c, const char *name, int expect, const char *needle)
{
    torture_case tc = {.name = name,
                       .run = check_run,
                       .check = check_check,
                       .clear = check_clear,
                       .ctx = c,
                       .expect = expect,
                       .may_succeed = true,
                       .errors = {MB_ERROR},
                       .allowed = openssl_unreported};
    assert_true(torture_check(&tc) > 0);
    if (!strstr(c->t.first, needle))
        fail_msg("\"%s\" does not contain \"%s\"", c->t.first, needle);
    transcript_free(&c->t);
}

static image_key *load(EVP_PKEY *k)
{
    image_key *ik = NULL;
    char err[IMAGE_SIG_ERROR_MAX];
    char *pem = jwstest_public_pem(k);
    assert_int_equal(image_key_load(&ik, pem, strlen(pem), err), 0);
    free(pem);
    return ik;
}

static void test_checks(void **state)
{
    (void)state;
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    image_key *iec = load(ec), *ied = load(ed), *irsa = load(rsa);

    char *payload = cosigntest_simple_payload(DIGEST);
    char *sig = cosigntest_sign(ec, false, payload, strlen(payload));
    check_ctx c = {.w = SIMPLE, .k = iec, .digest = DIGEST, .doc = payload, .sig = sig};
    torture(&c, "simple", 0, "0 sha256:");
    c.digest = OTHER;
    torture(&c, "simple, another image", MB_EINVAL, "the signature is for another image");
    c = (check_ctx){.w = SIMPLE, .k = ied, .digest = DIGEST, .doc = payload, .sig = sig, .cert = "-----BEGIN"};
    torture(&c, "simple, keyless", MB_EINVAL, "keyless signatures");

    char *st = cosigntest_statement(NULL, DIGEST, SLSA);
    EVP_PKEY *signers[] = {ed, rsa};
    char *env = cosigntest_envelope(INTOTO, st, signers, 2);
    c = (check_ctx){.w = ENVELOPE, .k = irsa, .digest = DIGEST, .doc = env, .predicate = SLSA};
    torture(&c, "envelope", 0, "0 sha256:");
    c.predicate = "https://spdx.dev/Document";
    torture(&c, "envelope, another predicate", MB_EINVAL, "predicateType is " SLSA);

    char *sign = cosigntest_statement(NULL, DIGEST, IMAGE_SIG_COSIGN_SIGN_PREDICATE);
    char *env2 = cosigntest_envelope(INTOTO, sign, &ed, 1);
    char content[8192];
    snprintf(content, sizeof(content), "\"dsseEnvelope\":%s", env2);
    char *b = cosigntest_bundle(content);
    c = (check_ctx){.w = BUNDLE, .k = ied, .digest = DIGEST, .doc = b};
    torture(&c, "bundle", 0, "0 sha256:");
    c.digest = OTHER;
    torture(&c, "bundle, another image", MB_EINVAL, "does not name this digest");

    unsigned char hash[32];
    for (size_t i = 0; i < 32; i++) {
        unsigned x = 0;
        sscanf(DIGEST + 7 + 2 * i, "%2x", &x);
        hash[i] = (unsigned char)x;
    }
    char *msig = cosigntest_sign_digest(ec, hash), *h = cosigntest_b64(hash, 32);
    snprintf(content, sizeof(content),
             "\"messageSignature\":{\"messageDigest\":{\"algorithm\":\"SHA2_256\",\"digest\":\"%s\"},\"signature\":"
             "\"%s\"}",
             h, msig);
    char *mb = cosigntest_bundle(content);
    c = (check_ctx){.w = BUNDLE, .k = iec, .digest = DIGEST, .doc = mb};
    torture(&c, "bundle, messageSignature", 0, "0 sha256:");

    const char *keyless = "{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":"
                          "{\"certificate\":{\"rawBytes\":\"AAAA\"}},\"dsseEnvelope\":{}}";
    c = (check_ctx){.w = BUNDLE, .k = iec, .digest = DIGEST, .doc = keyless};
    torture(&c, "bundle, keyless", MB_EINVAL, "keyless signatures");

    free(payload);
    free(sig);
    free(st);
    free(env);
    free(sign);
    free(env2);
    free(b);
    free(msig);
    free(h);
    free(mb);
    image_key_free(iec);
    image_key_free(ied);
    image_key_free(irsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(rsa);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_load),
        cmocka_unit_test(test_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

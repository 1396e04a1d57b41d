/*
 * Shared public-key verification (util/pkey.h): loading PEM keys (and a
 * certificate's only when asked), naming their kind, and verifying ECDSA in
 * DER and raw r||s, RSA PKCS#1 v1.5 and PSS, Ed25519, over a message or a
 * digest. Keys and signatures made in the test with OpenSSL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "jwstest.h"
#include "util/error.h"
#include "util/pkey.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

static const char MSG[] = "DSSEv1 28 application/vnd.in-toto+json 2 {}";

static unsigned char *sign(EVP_PKEY *k, const char *md, bool pss, size_t *n)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *p = NULL;
    assert_int_equal(EVP_DigestSignInit_ex(m, &p, md, NULL, NULL, k, NULL), 1);
    if (pss) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(p, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(p, RSA_PSS_SALTLEN_DIGEST), 1);
    }
    assert_int_equal(EVP_DigestSign(m, NULL, n, (const unsigned char *)MSG, strlen(MSG)), 1);
    unsigned char *sig = malloc(*n);
    assert_int_equal(EVP_DigestSign(m, sig, n, (const unsigned char *)MSG, strlen(MSG)), 1);
    EVP_MD_CTX_free(m);
    return sig;
}

static EVP_PKEY *reload(EVP_PKEY *k)
{
    char *pem = jwstest_public_pem(k);
    EVP_PKEY *pub = NULL;
    assert_int_equal(mb_pkey_load(&pub, pem, strlen(pem), 0), 0);
    free(pem);
    return pub;
}

static void kinds(void **state)
{
    (void)state;
    EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521"), *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *a = reload(p256), *b = reload(p384), *c = reload(p521), *d = reload(ed), *e = reload(rsa);
    assert_int_equal(mb_pkey_type_of(a), MB_PKEY_P256);
    assert_int_equal(mb_pkey_type_of(b), MB_PKEY_P384);
    assert_int_equal(mb_pkey_type_of(c), MB_PKEY_UNSUPPORTED);
    assert_int_equal(mb_pkey_type_of(d), MB_PKEY_ED25519);
    assert_int_equal(mb_pkey_type_of(e), MB_PKEY_RSA);
    assert_string_equal(mb_pkey_kind(c), "an ECDSA key");
    assert_true(mb_pkey_ec_curve_is(a, "prime256v1") && mb_pkey_ec_curve_is(a, "P-256"));
    assert_false(mb_pkey_ec_curve_is(a, "P-384"));
    assert_false(mb_pkey_ec_curve_is(e, "P-256"));
    EVP_PKEY *none = NULL;
    assert_int_equal(mb_pkey_load(&none, "not a key", 9, 0), MB_EINVAL);
    assert_null(none);
    EVP_PKEY *all[] = {p256, p384, p521, ed, rsa, a, b, c, d, e};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        EVP_PKEY_free(all[i]);
}

static void certificate_only_when_asked(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, k);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    assert_true(X509_sign(cert, k, EVP_sha256()) > 0);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(bio, cert), 1);
    char *pem = NULL;
    long n = BIO_get_mem_data(bio, &pem);
    EVP_PKEY *got = NULL;
    assert_int_equal(mb_pkey_load(&got, pem, (size_t)n, 0), MB_EINVAL);
    assert_int_equal(mb_pkey_load(&got, pem, (size_t)n, MB_PKEY_CERT), 0);
    assert_int_equal(EVP_PKEY_eq(got, k), 1);
    EVP_PKEY_free(got);
    BIO_free(bio);
    X509_free(cert);
    EVP_PKEY_free(k);
}

static void ecdsa_der_and_raw(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"), *pub = reload(k);
    size_t n = 0;
    unsigned char *der = sign(k, "SHA384", false, &n);
    mb_pkey_scheme s = {.digest = "SHA384", .ecdsa_form = MB_PKEY_ECDSA_DER};
    assert_int_equal(mb_pkey_verify(pub, &s, MSG, strlen(MSG), der, n), 1);
    assert_int_equal(mb_pkey_verify(pub, &s, MSG, strlen(MSG) - 1, der, n), 0);
    s.digest = "SHA256";
    assert_int_equal(mb_pkey_verify(pub, &s, MSG, strlen(MSG), der, n), 0);

    /* the same signature as r||s */
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
    unsigned char raw[96];
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 48), 48);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 48, 48), 48);
    mb_pkey_scheme r = {.digest = "SHA384", .ecdsa_form = MB_PKEY_ECDSA_RAW, .ecdsa_half = 48};
    assert_int_equal(mb_pkey_verify(pub, &r, MSG, strlen(MSG), raw, 96), 1);
    assert_int_equal(mb_pkey_verify(pub, &r, MSG, strlen(MSG), raw, 95), 0);
    assert_int_equal(mb_pkey_verify(pub, &r, MSG, strlen(MSG), der, n), 0);
    s.digest = "SHA384";
    assert_int_equal(mb_pkey_verify(pub, &s, MSG, strlen(MSG), raw, 96), 0);

    /* over the digest */
    unsigned char md[48];
    unsigned int mdlen = 0;
    assert_int_equal(EVP_Digest(MSG, strlen(MSG), md, &mdlen, EVP_sha384(), NULL), 1);
    assert_int_equal(mb_pkey_verify_digest(pub, &s, md, mdlen, der, n), 1);
    md[0] ^= 1;
    assert_int_equal(mb_pkey_verify_digest(pub, &s, md, mdlen, der, n), 0);
    ECDSA_SIG_free(es);
    free(der);
    EVP_PKEY_free(k);
    EVP_PKEY_free(pub);
}

static void rsa_pkcs1_pss_and_ed25519(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048), *pub = reload(k);
    size_t n = 0, m = 0;
    unsigned char *v15 = sign(k, "SHA256", false, &n), *pss = sign(k, "SHA256", true, &m);
    mb_pkey_scheme s = {.digest = "SHA256"};
    mb_pkey_scheme p = {.digest = "SHA256", .pss = true, .pss_saltlen = RSA_PSS_SALTLEN_AUTO};
    assert_int_equal(mb_pkey_verify(pub, &s, MSG, strlen(MSG), v15, n), 1);
    assert_int_equal(mb_pkey_verify(pub, &s, MSG, strlen(MSG), pss, m), 0);
    assert_int_equal(mb_pkey_verify(pub, &p, MSG, strlen(MSG), pss, m), 1);
    assert_int_equal(mb_pkey_verify(pub, &p, MSG, strlen(MSG), v15, n), 0);
    free(v15);
    free(pss);
    EVP_PKEY_free(k);
    EVP_PKEY_free(pub);

    k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    pub = reload(k);
    unsigned char *ed = sign(k, NULL, false, &n);
    mb_pkey_scheme e = {0};
    assert_int_equal(mb_pkey_verify(pub, &e, MSG, strlen(MSG), ed, n), 1);
    ed[0] ^= 1;
    assert_int_equal(mb_pkey_verify(pub, &e, MSG, strlen(MSG), ed, n), 0);
    unsigned char md[32] = {0};
    assert_int_equal(mb_pkey_verify_digest(pub, &e, md, 32, ed, n), MB_ERROR);
    free(ed);
    EVP_PKEY_free(k);
    EVP_PKEY_free(pub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kinds),
        cmocka_unit_test(certificate_only_when_asked),
        cmocka_unit_test(ecdsa_der_and_raw),
        cmocka_unit_test(rsa_pkcs1_pss_and_ed25519),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

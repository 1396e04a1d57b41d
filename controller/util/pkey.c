/*
 * Public keys and signature verification over OpenSSL EVP, for the
 * PolicyBundle JWS and the cosign image signatures (util/pkey.h): PEM keys
 * through OSSL_DECODER (SubjectPublicKeyInfo or PKCS#1), a certificate's key
 * through PEM_read_bio_X509, ECDSA signatures in DER or JWS's raw r||s.
 */
#include "util/pkey.h"
#include "util/error.h"

#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <string.h>

bool mb_pkey_ossl_oom(void)
{
    unsigned long e;
    bool oom = false;
    while ((e = ERR_get_error()) != 0)
        if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
            oom = true;
    return oom;
}

int mb_pkey_load(EVP_PKEY **out, const char *pem, size_t len, unsigned flags)
{
    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *dctx = NULL;
    BIO *bio = NULL;
    int rc = MB_EINVAL;

    *out = NULL;
    if (len > INT_MAX)
        return MB_EINVAL;
    bio = BIO_new_mem_buf(pem, (int)len);
    dctx = bio ? OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, NULL, EVP_PKEY_PUBLIC_KEY, NULL, NULL) : NULL;
    if (!bio || !dctx) {
        rc = MB_ENOMEM;
        goto done;
    }
    if (OSSL_DECODER_from_bio(dctx, bio) == 1 && pkey) {
        rc = 0;
        goto done;
    }
    EVP_PKEY_free(pkey);
    pkey = NULL;
    if (mb_pkey_ossl_oom()) {
        rc = MB_ENOMEM;
        goto done;
    }
    if (!(flags & MB_PKEY_CERT))
        goto done;
    /* a certificate: its key */
    (void)BIO_reset(bio);
    X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (cert) {
        pkey = X509_get_pubkey(cert);
        X509_free(cert);
        rc = pkey ? 0 : MB_ENOMEM;
    } else if (mb_pkey_ossl_oom()) {
        rc = MB_ENOMEM;
    }
done:
    OSSL_DECODER_CTX_free(dctx);
    BIO_free(bio);
    ERR_clear_error();
    *out = pkey;
    return rc;
}

bool mb_pkey_ec_curve_is(EVP_PKEY *k, const char *curve)
{
    char name[64];
    size_t len = 0;
    if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(k, "group", name, sizeof(name), &len) != 1)
        return false;
    bool p256 = strcmp(curve, "prime256v1") == 0 || strcmp(curve, "P-256") == 0;
    bool p384 = strcmp(curve, "secp384r1") == 0 || strcmp(curve, "P-384") == 0;
    return strcmp(name, curve) == 0 || (p256 && (strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0)) ||
           (p384 && (strcmp(name, "secp384r1") == 0 || strcmp(name, "P-384") == 0));
}

mb_pkey_type mb_pkey_type_of(EVP_PKEY *k)
{
    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_RSA: return MB_PKEY_RSA;
    case EVP_PKEY_ED25519: return MB_PKEY_ED25519;
    case EVP_PKEY_EC:
        if (mb_pkey_ec_curve_is(k, "P-256"))
            return MB_PKEY_P256;
        if (mb_pkey_ec_curve_is(k, "P-384"))
            return MB_PKEY_P384;
        return MB_PKEY_UNSUPPORTED;
    default: return MB_PKEY_UNSUPPORTED;
    }
}

const char *mb_pkey_kind(EVP_PKEY *k)
{
    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_RSA: return "an RSA key";
    case EVP_PKEY_EC: return "an ECDSA key";
    case EVP_PKEY_ED25519: return "an Ed25519 key";
    default: return "a key of an unsupported type";
    }
}

/* A raw r||s signature as the DER that OpenSSL verifies; MB_EINVAL when it is not 2*half bytes. */
static int ecdsa_der(const unsigned char *sig, size_t len, size_t half, unsigned char **der, int *der_len)
{
    *der = NULL;
    if (half == 0 || len != 2 * half)
        return MB_EINVAL;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *s = BN_bin2bn(sig + half, (int)half, NULL);
    if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
        ECDSA_SIG_free(es);
        BN_free(r);
        BN_free(s);
        return MB_ENOMEM;
    }
    *der_len = i2d_ECDSA_SIG(es, der);
    ECDSA_SIG_free(es);
    return *der_len > 0 ? 0 : MB_ENOMEM;
}

/* The signature as OpenSSL verifies it: *use points at sig or at *der (freed by the caller). 0, 1 (malformed), <0. */
static int prepare(EVP_PKEY *key, const mb_pkey_scheme *s, const unsigned char **use, size_t *use_len,
                   unsigned char **der)
{
    int der_len = 0;
    *der = NULL;
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC || s->ecdsa_form != MB_PKEY_ECDSA_RAW)
        return 0;
    int e = ecdsa_der(*use, *use_len, s->ecdsa_half, der, &der_len);
    if (e == MB_EINVAL)
        return 1;
    if (e < 0)
        return e;
    *use = *der;
    *use_len = (size_t)der_len;
    return 0;
}

static int set_padding(EVP_PKEY *key, EVP_PKEY_CTX *pctx, const mb_pkey_scheme *s)
{
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
        return 1;
    if (!s->pss)
        return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING);
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, s->pss_saltlen) == 1;
}

int mb_pkey_verify(EVP_PKEY *key, const mb_pkey_scheme *s, const void *msg, size_t len, const unsigned char *sig,
                   size_t sig_len)
{
    unsigned char *der = NULL;
    int rc = MB_ENOMEM;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();

    if (!mctx)
        return MB_ENOMEM;
    int e = prepare(key, s, &sig, &sig_len, &der);
    if (e != 0) {
        rc = e > 0 ? 0 : e;
        goto done;
    }
    /* the scheme fits the key (the caller checked): failing to set up is OpenSSL's trouble, not the signature's */
    if (EVP_DigestVerifyInit_ex(mctx, &pctx, s->digest, NULL, NULL, key, NULL) != 1 || set_padding(key, pctx, s) != 1) {
        rc = mb_pkey_ossl_oom() ? MB_ENOMEM : MB_ERROR;
        goto done;
    }
    rc = EVP_DigestVerify(mctx, sig, sig_len, msg, len) == 1 ? 1 : 0;
    if (rc == 0 && mb_pkey_ossl_oom())
        rc = MB_ENOMEM;
done:
    ERR_clear_error();
    OPENSSL_free(der);
    EVP_MD_CTX_free(mctx);
    return rc;
}

int mb_pkey_verify_digest(EVP_PKEY *key, const mb_pkey_scheme *s, const unsigned char *hash, size_t hash_len,
                          const unsigned char *sig, size_t sig_len)
{
    unsigned char *der = NULL;
    int rc = MB_ENOMEM;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_MD *md = NULL;

    if (!s->digest || EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519)
        return MB_ERROR;
    int e = prepare(key, s, &sig, &sig_len, &der);
    if (e != 0) {
        rc = e > 0 ? 0 : e;
        goto done;
    }
    if (!(md = EVP_MD_fetch(NULL, s->digest, NULL)) || !(pctx = EVP_PKEY_CTX_new(key, NULL))) {
        rc = mb_pkey_ossl_oom() ? MB_ENOMEM : MB_ERROR;
        goto done;
    }
    if (EVP_PKEY_verify_init(pctx) != 1 || set_padding(key, pctx, s) != 1 ||
        EVP_PKEY_CTX_set_signature_md(pctx, md) != 1) {
        rc = mb_pkey_ossl_oom() ? MB_ENOMEM : MB_ERROR;
        goto done;
    }
    rc = EVP_PKEY_verify(pctx, sig, sig_len, hash, hash_len) == 1 ? 1 : 0;
    if (rc == 0 && mb_pkey_ossl_oom())
        rc = MB_ENOMEM;
done:
    ERR_clear_error();
    EVP_MD_free(md);
    EVP_PKEY_CTX_free(pctx);
    OPENSSL_free(der);
    return rc;
}

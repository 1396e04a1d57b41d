/*
 * JWS compact tokens signed in the test with OpenSSL, as OPA's signer writes
 * them (ES*: raw r||s; PS*: salt length = digest length).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "jwstest.h"
#include "util/base64.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *jwstest_public_pem(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PUBKEY(bio, k), 1);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *pem = strndup(data, (size_t)n);
    BIO_free(bio);
    return pem;
}

/* Unpadded base64url of len bytes. */
char *jwstest_b64url(const void *data, size_t len)
{
    char *s = NULL;
    assert_int_equal(mb_base64_encode(&s, data, len), 0);
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '=')
            continue;
        *o++ = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    }
    *o = '\0';
    return s;
}

/* The JWS signature of input by key with alg, in the JWS's form (ES*: raw r||s). */
static unsigned char *sign(EVP_PKEY *key, const char *alg, const char *input, size_t *len)
{
    const char *md = strstr(alg, "256") ? "SHA256" : strstr(alg, "384") ? "SHA384" : "SHA512";
    if (strcmp(alg, "EdDSA") == 0)
        md = NULL;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_int_equal(EVP_DigestSignInit_ex(mctx, &pctx, md, NULL, NULL, key, NULL), 1);
    if (alg[0] == 'P') {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
    }
    size_t n = 0;
    assert_int_equal(EVP_DigestSign(mctx, NULL, &n, (const unsigned char *)input, strlen(input)), 1);
    unsigned char *sig = malloc(n);
    assert_int_equal(EVP_DigestSign(mctx, sig, &n, (const unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(mctx);
    if (alg[0] == 'E' && alg[1] == 'S') {
        size_t half = strstr(alg, "256") ? 32 : 48;
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
        assert_non_null(es);
        unsigned char *raw = calloc(1, 2 * half);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)half), (int)half);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + half, (int)half), (int)half);
        ECDSA_SIG_free(es);
        free(sig);
        sig = raw;
        n = 2 * half;
    }
    *len = n;
    return sig;
}

/* A JWS compact token of header and payload (JSON text) signed by key with alg. */
char *jwstest_token(EVP_PKEY *key, const char *alg, const char *header, const char *payload)
{
    char *h = jwstest_b64url(header, strlen(header)), *p = jwstest_b64url(payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + 2;
    char *input = malloc(n);
    snprintf(input, n, "%s.%s", h, p);
    size_t sig_len = 0;
    unsigned char *sig = sign(key, alg, input, &sig_len);
    char *s = jwstest_b64url(sig, sig_len);
    size_t tn = n + strlen(s) + 1;
    char *tok = malloc(tn);
    snprintf(tok, tn, "%s.%s", input, s);
    free(h);
    free(p);
    free(input);
    free(sig);
    free(s);
    return tok;
}

void jwstest_sha256_hex(char out[65], const char *data, size_t len)
{
    unsigned char md[32];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL), 1);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

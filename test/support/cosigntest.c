/*
 * cosign's documents made and signed in the test (cosigntest.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cosigntest.h"
#include "util/base64.h"

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

char *cosigntest_b64(const void *data, size_t len)
{
    char *s = NULL;
    assert_int_equal(mb_base64_encode(&s, data, len), 0);
    return s;
}

char *cosigntest_sign(EVP_PKEY *key, bool pss, const void *msg, size_t len)
{
    const char *md = NULL;
    int id = EVP_PKEY_get_base_id(key);
    if (id == EVP_PKEY_RSA)
        md = "SHA256";
    else if (id == EVP_PKEY_EC)
        md = EVP_PKEY_get_bits(key) > 256 ? "SHA384" : "SHA256";
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_int_equal(EVP_DigestSignInit_ex(mctx, &pctx, md, NULL, NULL, key, NULL), 1);
    if (pss) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
    }
    size_t n = 0;
    assert_int_equal(EVP_DigestSign(mctx, NULL, &n, msg, len), 1);
    unsigned char *sig = malloc(n);
    assert_non_null(sig);
    assert_int_equal(EVP_DigestSign(mctx, sig, &n, msg, len), 1);
    EVP_MD_CTX_free(mctx);
    char *b = cosigntest_b64(sig, n);
    free(sig);
    return b;
}

char *cosigntest_sign_digest(EVP_PKEY *key, const unsigned char hash[32])
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new(key, NULL);
    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_sign_init(pctx), 1);
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()), 1);
    size_t n = 0;
    assert_int_equal(EVP_PKEY_sign(pctx, NULL, &n, hash, 32), 1);
    unsigned char *sig = malloc(n);
    assert_non_null(sig);
    assert_int_equal(EVP_PKEY_sign(pctx, sig, &n, hash, 32), 1);
    EVP_PKEY_CTX_free(pctx);
    char *b = cosigntest_b64(sig, n);
    free(sig);
    return b;
}

char *cosigntest_simple_payload(const char *digest)
{
    return format("{\"critical\":{\"identity\":{\"docker-reference\":\"registry.local/kfm/kfm-api\"},\"image\":{"
                  "\"docker-manifest-digest\":\"%s\"},\"type\":\"cosign container image signature\"},"
                  "\"optional\":null}",
                  digest);
}

char *cosigntest_statement(const char *statement_type, const char *digest, const char *predicate_type)
{
    return format("{\"_type\":\"%s\",\"subject\":[{\"name\":\"registry.local/kfm/kfm-api\",\"digest\":{\"sha256\":"
                  "\"%s\"}}],\"predicateType\":\"%s\",\"predicate\":{\"buildDefinition\":{}}}",
                  statement_type ? statement_type : "https://in-toto.io/Statement/v1",
                  strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest, predicate_type);
}

char *cosigntest_envelope(const char *payload_type, const char *payload, EVP_PKEY *const *keys, size_t nkeys)
{
    size_t plen = strlen(payload);
    char *pae = format("DSSEv1 %zu %s %zu ", strlen(payload_type), payload_type, plen);
    size_t hlen = strlen(pae);
    pae = realloc(pae, hlen + plen + 1);
    assert_non_null(pae);
    memcpy(pae + hlen, payload, plen + 1);
    char *sigs = strdup("");
    for (size_t i = 0; i < nkeys; i++) {
        char *sig = keys[i] ? cosigntest_sign(keys[i], false, pae, hlen + plen) : cosigntest_b64("junk", 4);
        char *more = format("%s%s{\"keyid\":\"\",\"sig\":\"%s\"}", sigs, i ? "," : "", sig);
        free(sig);
        free(sigs);
        sigs = more;
    }
    char *b64 = cosigntest_b64(payload, plen);
    char *env = format("{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[%s]}", payload_type, b64, sigs);
    free(b64);
    free(sigs);
    free(pae);
    return env;
}

char *cosigntest_bundle(const char *content)
{
    return format("{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":{"
                  "\"publicKey\":{\"hint\":\"test\"},\"tlogEntries\":[]},%s}",
                  content);
}

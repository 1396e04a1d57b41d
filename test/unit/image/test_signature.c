/*
 * cosign signature checks (image/signature.h): keys made in the test with
 * OpenSSL and documents signed in the test as cosign signs them
 * (test/support/cosigntest.h), for every key kind cosign uses; and documents
 * written by real cosign v2 and v3 (test/fixtures/cosign/, see its README).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cosigntest.h"
#include "fixture.h"
#include "image/signature.h"
#include "jwstest.h"
#include "util/error.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST "sha256:0f3e5a7c1d2b4c6e8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e"
#define OTHER "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define SLSA "https://slsa.dev/provenance/v1"
#define INTOTO "application/vnd.in-toto+json"

enum { K_RSA, K_RSA2, K_P256, K_P384, K_ED, K_NKEYS };

static EVP_PKEY *K[K_NKEYS];
static image_key *IK[K_NKEYS];

static int setup(void **state)
{
    (void)state;
    K[K_RSA] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    K[K_RSA2] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    K[K_P256] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    K[K_P384] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    K[K_ED] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    for (int i = 0; i < K_NKEYS; i++) {
        char err[IMAGE_SIG_ERROR_MAX];
        if (!K[i])
            return -1;
        char *pem = jwstest_public_pem(K[i]);
        int rc = image_key_load(&IK[i], pem, strlen(pem), err);
        free(pem);
        if (rc != 0) {
            fprintf(stderr, "key %d: %s\n", i, err);
            return -1;
        }
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < K_NKEYS; i++) {
        EVP_PKEY_free(K[i]);
        image_key_free(IK[i]);
    }
    return 0;
}

static void sha256_of(char out[72], const char *data, size_t len)
{
    memcpy(out, "sha256:", 7);
    jwstest_sha256_hex(out + 7, data, len);
}

static void assert_refused(int rc, const image_sig_verdict *v, const char *needle)
{
    if (rc != MB_EINVAL || !strstr(v->message, needle))
        fail_msg("expected a refusal with \"%s\", got %d: %s", needle, rc, v->message);
    assert_string_equal(v->payload_sha256, "");
}

/* ---- keys --------------------------------------------------------------------------- */

static void key_kinds_and_ids(void **state)
{
    (void)state;
    assert_string_equal(image_key_kind(IK[K_P256]), "ECDSA P-256");
    assert_string_equal(image_key_kind(IK[K_P384]), "ECDSA P-384");
    assert_string_equal(image_key_kind(IK[K_ED]), "Ed25519");
    assert_string_equal(image_key_kind(IK[K_RSA]), "RSA-2048");
    /* the id is the sha256 of the DER SubjectPublicKeyInfo */
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(K[K_P256], &der);
    assert_true(n > 0);
    char want[72];
    sha256_of(want, (const char *)der, (size_t)n);
    OPENSSL_free(der);
    assert_string_equal(image_key_id(IK[K_P256]), want);
    assert_string_not_equal(image_key_id(IK[K_P256]), image_key_id(IK[K_P384]));
    image_key_free(NULL);
}

static void load_refused(const char *pem, const char *needle)
{
    image_key *k = NULL;
    char err[IMAGE_SIG_ERROR_MAX];
    int rc = image_key_load(&k, pem, strlen(pem), err);
    if (rc != MB_EINVAL || !strstr(err, needle))
        fail_msg("expected the key refused with \"%s\", got %d: %s", needle, rc, err);
    assert_null(k);
}

static void keys_refused(void **state)
{
    (void)state;
    load_refused("", "not a PEM public key");
    load_refused("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a PEM public key");

    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    char *pem = jwstest_public_pem(small);
    load_refused(pem, "RSA key of 1024 bits; at least 2048");
    free(pem);

    EVP_PKEY *p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    pem = jwstest_public_pem(p521);
    load_refused(pem, "an ECDSA key on a curve other than P-256 and P-384");
    free(pem);

    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, K[K_P256], NULL, NULL, 0, NULL, NULL), 1);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    pem = strndup(data, (size_t)n);
    load_refused(pem, "private key");
    free(pem);
    BIO_free(bio);

    /* a certificate is what keyless signing carries */
    X509 *cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, K[K_P256]);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    assert_true(X509_sign(cert, K[K_P256], EVP_sha256()) > 0);
    bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(bio, cert), 1);
    n = BIO_get_mem_data(bio, &data);
    pem = strndup(data, (size_t)n);
    load_refused(pem, "keyless signatures (Fulcio certificate, Rekor) are not supported");
    free(pem);
    BIO_free(bio);
    X509_free(cert);
    EVP_PKEY_free(small);
    EVP_PKEY_free(p521);
}

/* ---- cosign v2: simple signing --------------------------------------------------------- */

static int simple(image_sig_verdict *v, int key, int signer, bool pss, const char *digest, const char *signed_digest)
{
    char *payload = cosigntest_simple_payload(signed_digest);
    char *sig = cosigntest_sign(K[signer], pss, payload, strlen(payload));
    int rc = image_sig_check_simple(v, IK[key], digest, payload, strlen(payload), sig, NULL);
    if (rc == 0) {
        char want[72];
        sha256_of(want, payload, strlen(payload));
        assert_string_equal(v->payload_sha256, want);
    }
    free(payload);
    free(sig);
    return rc;
}

static void simple_every_key_kind(void **state)
{
    (void)state;
    image_sig_verdict v;
    for (int k = 0; k < K_NKEYS; k++)
        assert_int_equal(simple(&v, k, k, false, DIGEST, DIGEST), 0);
    /* K_RSA PSS with SHA-256 */
    assert_int_equal(simple(&v, K_RSA, K_RSA, true, DIGEST, DIGEST), 0);
}

static void simple_other_digest_refused(void **state)
{
    (void)state;
    image_sig_verdict v;
    for (int k = 0; k < K_NKEYS; k++)
        assert_refused(simple(&v, k, k, false, DIGEST, OTHER), &v, "the signature is for another image, " OTHER);
    /* the same digest in capitals is not the digest: strict */
    char upper[72];
    snprintf(upper, sizeof(upper), "sha256:%s", DIGEST + 7);
    for (char *p = upper + 7; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    assert_refused(simple(&v, K_P256, K_P256, false, DIGEST, upper), &v, "for another image");
    /* the digest asked about must be sha256:<64 lowercase hex> */
    assert_refused(simple(&v, K_P256, K_P256, false, upper, upper), &v, "not sha256:<64 lowercase hex>");
    assert_refused(simple(&v, K_P256, K_P256, false, "ghcr.io/kfm/kfm-api:v1", DIGEST), &v, "not sha256:");
}

static void simple_wrong_key_refused(void **state)
{
    (void)state;
    image_sig_verdict v;
    assert_refused(simple(&v, K_RSA, K_RSA2, false, DIGEST, DIGEST), &v, "does not verify with the key");
    assert_refused(simple(&v, K_P256, K_P384, false, DIGEST, DIGEST), &v, "does not verify with the key");
    assert_refused(simple(&v, K_P384, K_P256, false, DIGEST, DIGEST), &v, "does not verify with the key");
    assert_refused(simple(&v, K_ED, K_P256, false, DIGEST, DIGEST), &v, "does not verify with the key");
    assert_refused(simple(&v, K_P256, K_ED, false, DIGEST, DIGEST), &v, image_key_id(IK[K_P256]));
}

static void simple_tampered_and_malformed(void **state)
{
    (void)state;
    image_sig_verdict v;
    char *payload = cosigntest_simple_payload(DIGEST);
    char *sig = cosigntest_sign(K[K_P256], false, payload, strlen(payload));
    size_t len = strlen(payload);

    /* one byte changed after signing */
    char *t = strdup(payload);
    t[len - 2] = ' ';
    assert_refused(image_sig_check_simple(&v, IK[K_P256], DIGEST, t, len, sig, NULL), &v,
                   "the signature does not verify with the key");
    /* the payload cut short */
    assert_refused(image_sig_check_simple(&v, IK[K_P256], DIGEST, payload, len - 1, sig, NULL), &v, "does not verify");
    /* the annotation missing, or not base64 */
    assert_refused(image_sig_check_simple(&v, IK[K_P256], DIGEST, payload, len, NULL, NULL), &v,
                   "no dev.cosignproject.cosign/signature annotation");
    assert_refused(image_sig_check_simple(&v, IK[K_P256], DIGEST, payload, len, "!!notbase64!!", NULL), &v,
                   "not valid base64");
    char *spaced = malloc(strlen(sig) + 2);
    snprintf(spaced, strlen(sig) + 2, "%.10s\n%s", sig, sig + 10);
    assert_refused(image_sig_check_simple(&v, IK[K_P256], DIGEST, payload, len, spaced, NULL), &v, "not valid base64");
    /* keyless: a certificate and no signature by the key */
    char *other = cosigntest_sign(K[K_P384], false, payload, len);
    assert_refused(image_sig_check_simple(&v, IK[K_P256], DIGEST, payload, len, other,
                                          "-----BEGIN CERTIFICATE-----\n..."),
                   &v,
                   "keyless signatures (Fulcio certificate, Rekor) are not supported; sign with a key: cosign "
                   "sign --key");
    /* a certificate besides a signature by the key changes nothing */
    assert_int_equal(image_sig_check_simple(&v, IK[K_P256], DIGEST, payload, len, sig, "-----BEGIN CERTIFICATE-----"),
                     0);
    free(t);
    free(spaced);
    free(other);
    free(sig);
    free(payload);
}

static int signed_simple(image_sig_verdict *v, const char *payload)
{
    char *sig = cosigntest_sign(K[K_ED], false, payload, strlen(payload));
    int rc = image_sig_check_simple(v, IK[K_ED], DIGEST, payload, strlen(payload), sig, NULL);
    free(sig);
    return rc;
}

static void simple_signed_but_wrong(void **state)
{
    (void)state;
    image_sig_verdict v;
    assert_refused(signed_simple(&v, "[1,2]"), &v, "the signature payload is not a JSON object");
    assert_refused(signed_simple(&v, "{\"critical\":"), &v, "not a JSON object");
    assert_refused(signed_simple(&v, "{\"critical\":{\"type\":\"cosign container image signature\"}}"), &v,
                   "no critical.image.docker-manifest-digest");
    assert_refused(signed_simple(&v, "{\"critical\":{\"image\":{\"docker-manifest-digest\":\"" DIGEST
                                     "\"},\"type\":\"something else\"}}"),
                   &v, "critical.type is something else");
    /* Go reads the last of two members, cJSON the first: refused */
    assert_refused(signed_simple(&v, "{\"critical\":{\"image\":{\"docker-manifest-digest\":\"" OTHER
                                     "\",\"docker-manifest-digest\":\"" DIGEST
                                     "\"},\"type\":\"cosign container image signature\"}}"),
                   &v, "has a member twice");
    assert_int_equal(signed_simple(&v, "{\"critical\":{\"image\":{\"docker-manifest-digest\":\"" DIGEST
                                       "\"},\"type\":\"cosign container image signature\"}}"),
                     0);
    /* too large */
    size_t big = IMAGE_SIG_MAX_PAYLOAD + 1;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    assert_refused(image_sig_check_simple(&v, IK[K_ED], DIGEST, huge, big, "AAAA", NULL), &v, "more than");
    free(huge);
}

/* ---- DSSE envelopes (cosign v2 .att) ------------------------------------------------- */

static int envelope(image_sig_verdict *v, int key, EVP_PKEY *const *signers, size_t n, const char *payload_type,
                    const char *statement, const char *predicate_type)
{
    char *env = cosigntest_envelope(payload_type, statement, signers, n);
    int rc = image_sig_check_envelope(v, IK[key], DIGEST, env, strlen(env), predicate_type);
    if (rc == 0) {
        char want[72];
        sha256_of(want, statement, strlen(statement));
        assert_string_equal(v->payload_sha256, want);
    }
    free(env);
    return rc;
}

static void envelope_attestation_every_key_kind(void **state)
{
    (void)state;
    image_sig_verdict v;
    char *st = cosigntest_statement(NULL, DIGEST, SLSA);
    char *st01 = cosigntest_statement("https://in-toto.io/Statement/v0.1", DIGEST, SLSA);
    for (int k = 0; k < K_NKEYS; k++) {
        assert_int_equal(envelope(&v, k, &K[k], 1, INTOTO, st, SLSA), 0);
        assert_int_equal(envelope(&v, k, &K[k], 1, INTOTO, st01, SLSA), 0);
    }
    free(st);
    free(st01);
}

static void envelope_attestation_refused(void **state)
{
    (void)state;
    image_sig_verdict v;
    char *st = cosigntest_statement(NULL, DIGEST, SLSA);
    char *other = cosigntest_statement(NULL, OTHER, SLSA);
    char *spdx = cosigntest_statement(NULL, DIGEST, "https://spdx.dev/Document");
    char *old = cosigntest_statement("https://in-toto.io/Statement/v0.2", DIGEST, SLSA);

    assert_refused(envelope(&v, K_P256, &K[K_P256], 1, INTOTO, spdx, SLSA), &v,
                   "predicateType is https://spdx.dev/Document, not " SLSA);
    assert_refused(envelope(&v, K_P256, &K[K_P256], 1, INTOTO, other, SLSA), &v,
                   "does not name this digest as its subject");
    assert_refused(envelope(&v, K_P256, &K[K_P256], 1, INTOTO, old, SLSA), &v, "not an in-toto statement");
    assert_refused(envelope(&v, K_P256, &K[K_P384], 1, INTOTO, st, SLSA), &v, "no signature of the attestation's DSSE");
    assert_refused(envelope(&v, K_P256, &K[K_P256], 1, "application/json", st, SLSA), &v,
                   "carries application/json, not an in-toto statement");
    /* an attestation is not a signature: predicate NULL wants cosign's sign predicate */
    assert_refused(envelope(&v, K_P256, &K[K_P256], 1, INTOTO, st, NULL), &v,
                   "predicateType is " SLSA ", not " IMAGE_SIG_COSIGN_SIGN_PREDICATE);
    assert_refused(envelope(&v, K_P256, &K[K_P256], 1, INTOTO, "[]", SLSA), &v, "not a JSON object");
    free(st);
    free(other);
    free(spdx);
    free(old);
}

static void envelope_several_signatures(void **state)
{
    (void)state;
    image_sig_verdict v;
    char *st = cosigntest_statement(NULL, DIGEST, SLSA);
    EVP_PKEY *one_good[] = {K[K_P384], NULL, K[K_ED], K[K_P256]};
    assert_int_equal(envelope(&v, K_P256, one_good, 4, INTOTO, st, SLSA), 0);
    assert_int_equal(envelope(&v, K_ED, one_good, 4, INTOTO, st, SLSA), 0);
    assert_refused(envelope(&v, K_RSA, one_good, 4, INTOTO, st, SLSA), &v, "no signature");
    EVP_PKEY *none[] = {NULL};
    assert_refused(envelope(&v, K_P256, none, 0, INTOTO, st, SLSA), &v, "has no signature");
    free(st);
}

static void envelope_malformed(void **state)
{
    (void)state;
    image_sig_verdict v;
    const char *bad[][2] = {
        {"[1]", "the DSSE envelope is not a JSON object"},
        {"{\"payloadType\":\"" INTOTO "\",\"payload\":\"e30=\"}", "lacks payloadType, payload or signatures"},
        {"{\"payloadType\":\"" INTOTO "\",\"payload\":\"e30\",\"signatures\":[{\"sig\":\"AAAA\"}]}",
         "payload is not valid base64"},
        {"{\"payloadType\":\"" INTOTO "\",\"payload\":\"e30=\",\"signatures\":[{\"sig\":\"AA-A\"}]}",
         "signatures[0].sig of the DSSE envelope is not valid base64"},
        {"{\"payloadType\":\"" INTOTO "\",\"payload\":\"e30=\",\"signatures\":[{\"sig\":1}]}", "is not {keyid, sig}"},
        {"{\"payloadType\":\"" INTOTO "\",\"payload\":\"e30=\",\"payload\":\"e30=\",\"signatures\":[]}",
         "has a member twice"},
        {"{\"payloadType\":\"" INTOTO "\",\"payload\":\"e30=\",\"signatures\":[]} x", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_refused(image_sig_check_envelope(&v, IK[K_P256], DIGEST, bad[i][0], strlen(bad[i][0]), SLSA), &v,
                       bad[i][1]);
}

/* ---- sigstore bundles (cosign v3) ------------------------------------------------------ */

static int bundle_dsse(image_sig_verdict *v, int key, int signer, const char *statement, const char *predicate_type)
{
    char *env = cosigntest_envelope(INTOTO, statement, &K[signer], 1);
    size_t n = strlen(env) + 32;
    char *content = malloc(n);
    snprintf(content, n, "\"dsseEnvelope\":%s", env);
    char *b = cosigntest_bundle(content);
    int rc = image_sig_check_bundle(v, IK[key], DIGEST, b, strlen(b), predicate_type);
    free(env);
    free(content);
    free(b);
    return rc;
}

static void bundle_signature_as_cosign_v3_writes(void **state)
{
    (void)state;
    image_sig_verdict v;
    char *sign = cosigntest_statement(NULL, DIGEST, IMAGE_SIG_COSIGN_SIGN_PREDICATE);
    char *sign_other = cosigntest_statement(NULL, OTHER, IMAGE_SIG_COSIGN_SIGN_PREDICATE);
    char *slsa = cosigntest_statement(NULL, DIGEST, SLSA);
    for (int k = 0; k < K_NKEYS; k++)
        assert_int_equal(bundle_dsse(&v, k, k, sign, NULL), 0);
    assert_refused(bundle_dsse(&v, K_P256, K_P384, sign, NULL), &v, "no signature of the signature's DSSE envelope");
    assert_refused(bundle_dsse(&v, K_P256, K_P256, sign_other, NULL), &v, "does not name this digest as its subject");
    /* an attestation does not count as a signature, nor a signature as an attestation */
    assert_refused(bundle_dsse(&v, K_P256, K_P256, slsa, NULL), &v, "predicateType is " SLSA);
    assert_refused(bundle_dsse(&v, K_P256, K_P256, sign, SLSA), &v,
                   "predicateType is " IMAGE_SIG_COSIGN_SIGN_PREDICATE);
    assert_int_equal(bundle_dsse(&v, K_P384, K_P384, slsa, SLSA), 0);
    free(sign);
    free(sign_other);
    free(slsa);
}

static int bundle_message(image_sig_verdict *v, int key, int signer, const char *signed_digest, const char *alg)
{
    unsigned char hash[32];
    for (size_t i = 0; i < 32; i++) {
        unsigned x = 0;
        sscanf(signed_digest + 7 + 2 * i, "%2x", &x);
        hash[i] = (unsigned char)x;
    }
    char *sig = cosigntest_sign_digest(K[signer], hash);
    char *h = cosigntest_b64(hash, 32);
    char content[1024];
    snprintf(content, sizeof(content),
             "\"messageSignature\":{\"messageDigest\":{\"algorithm\":\"%s\",\"digest\":\"%s\"},\"signature\":\"%s\"}",
             alg, h, sig);
    char *b = cosigntest_bundle(content);
    int rc = image_sig_check_bundle(v, IK[key], DIGEST, b, strlen(b), NULL);
    if (rc == 0) {
        char want[72];
        sha256_of(want, b, strlen(b));
        assert_string_equal(v->payload_sha256, want);
    }
    free(sig);
    free(h);
    free(b);
    return rc;
}

static void bundle_message_signature(void **state)
{
    (void)state;
    image_sig_verdict v;
    assert_int_equal(bundle_message(&v, K_P256, K_P256, DIGEST, "SHA2_256"), 0);
    assert_int_equal(bundle_message(&v, K_P384, K_P384, DIGEST, "SHA2_256"), 0);
    assert_int_equal(bundle_message(&v, K_RSA, K_RSA, DIGEST, "SHA2_256"), 0);
    assert_refused(bundle_message(&v, K_P256, K_P384, DIGEST, "SHA2_256"), &v, "does not verify with the key");
    assert_refused(bundle_message(&v, K_P256, K_P256, OTHER, "SHA2_256"), &v, "over another digest");
    assert_refused(bundle_message(&v, K_P256, K_P256, DIGEST, "SHA2_384"), &v, "over a SHA2_384 digest");
    assert_refused(bundle_message(&v, K_ED, K_P256, DIGEST, "SHA2_256"), &v, "Ed25519");
}

static void bundle_refused(void **state)
{
    (void)state;
    image_sig_verdict v;
    const char *env = "\"dsseEnvelope\":{\"payloadType\":\"" INTOTO "\",\"payload\":\"e30=\",\"signatures\":[]}";
    char b[2048];
    const char *cases[][2] = {
        {"[]", "the sigstore bundle is not a JSON object"},
        {"{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":{\"certificate\":"
         "{\"rawBytes\":\"AAAA\"},\"tlogEntries\":[{}]},%s}",
         "is signed keyless: keyless signatures (Fulcio certificate, Rekor) are not supported; sign with a key: "
         "cosign sign --key"},
        {"{\"mediaType\":\"application/vnd.dev.sigstore.bundle+json;version=0.1\",\"verificationMaterial\":{"
         "\"x509CertificateChain\":{\"certificates\":[]}},%s}",
         "keyless signatures (Fulcio certificate, Rekor) are not supported"},
        {"{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.4+json\",\"verificationMaterial\":{\"publicKey\":{}}"
         ",%s}",
         "mediaType is application/vnd.dev.sigstore.bundle.v0.4+json"},
        {"{\"verificationMaterial\":{\"publicKey\":{}},%s}", "mediaType is missing"},
        {"{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":{},%s}",
         "names no publicKey"},
        {"{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":{\"publicKey\":{}}"
         "}",
         "exactly one of messageSignature and dsseEnvelope"},
        {"{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":{\"publicKey\":{}}"
         ",%s,\"messageSignature\":{}}",
         "exactly one of messageSignature and dsseEnvelope"},
        {"{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":{\"publicKey\":{}}"
         ",%s,%s}",
         "has a member twice"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(b, sizeof(b), cases[i][0], env, env);
#pragma GCC diagnostic pop
        assert_refused(image_sig_check_bundle(&v, IK[K_P256], DIGEST, b, strlen(b), NULL), &v, cases[i][1]);
    }
    /* a messageSignature is no attestation */
    snprintf(b, sizeof(b),
             "{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":{\"publicKey\":"
             "{}},\"messageSignature\":{}}");
    assert_refused(image_sig_check_bundle(&v, IK[K_P256], DIGEST, b, strlen(b), SLSA), &v, "not an attestation of");
}

/* ---- what real cosign wrote (test/fixtures/cosign) ------------------------------ */

static char *fx(const char *rel, size_t *len)
{
    char path[256];
    size_t n = 0;
    snprintf(path, sizeof(path), "cosign/%s", rel);
    char *s = fixture_read(path, len ? len : &n);
    if (!s)
        fail_msg("missing fixture %s", path);
    return s;
}

static image_key *fx_key(const char *name)
{
    char rel[64], err[IMAGE_SIG_ERROR_MAX];
    size_t len = 0;
    image_key *k = NULL;
    snprintf(rel, sizeof(rel), "keys/%s.pub", name);
    char *pem = fx(rel, &len);
    if (image_key_load(&k, pem, len, err) != 0)
        fail_msg("%s: %s", rel, err);
    free(pem);
    return k;
}

/* The digest in a file (one line). */
static void fx_digest(char out[72], const char *rel)
{
    char *d = fx(rel, NULL);
    d[strcspn(d, "\r\n")] = '\0';
    assert_int_equal(strlen(d), 71);
    memcpy(out, d, 72);
    free(d);
}

/* image_sig_check_simple on the v2 signature of dir: its payload, and the annotation of its manifest's layer. */
static int fx_simple(image_sig_verdict *v, const image_key *k, const char *digest, const char *dir)
{
    char rel[64];
    size_t len = 0;
    snprintf(rel, sizeof(rel), "v2/%s/sig.manifest.json", dir);
    char *m = fx(rel, NULL);
    cJSON *man = cJSON_Parse(m);
    const cJSON *layer = cJSON_GetArrayItem(cJSON_GetObjectItem(man, "layers"), 0);
    const char *sig = cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(layer, "annotations"), "dev.cosignproject.cosign/signature"));
    assert_non_null(sig);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(layer, "mediaType")),
                        "application/vnd.dev.cosign.simplesigning.v1+json");
    snprintf(rel, sizeof(rel), "v2/%s/sig.payload.json", dir);
    char *payload = fx(rel, &len);
    int rc = image_sig_check_simple(v, k, digest, payload, len, sig, NULL);
    if (rc == 0) {
        char want[72];
        sha256_of(want, payload, len);
        assert_string_equal(v->payload_sha256, want);
        /* the layer's digest in the manifest is the payload's: what the receipt records */
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(layer, "digest")), want);
    }
    free(payload);
    free(m);
    cJSON_Delete(man);
    return rc;
}

static int fx_doc(image_sig_verdict *v, const image_key *k, const char *digest, const char *rel, bool bundle,
                  const char *predicate_type)
{
    size_t len = 0;
    char *doc = fx(rel, &len);
    int rc = bundle ? image_sig_check_bundle(v, k, digest, doc, len, predicate_type)
                    : image_sig_check_envelope(v, k, digest, doc, len, predicate_type);
    free(doc);
    return rc;
}

static void cosign_fixtures(void **state)
{
    (void)state;
    const char *names[] = {"p256", "p384", "rsa", "other"};
    image_key *p256 = fx_key("p256"), *ed = fx_key("ed25519");
    char a[72], b[72], rel[64];
    image_sig_verdict v;
    fx_digest(a, "image/digest");
    fx_digest(b, "image/other-digest");

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        image_key *k = fx_key(names[i]);
        /* cosign v2 and v3 signatures pass with their key */
        if (fx_simple(&v, k, a, names[i]) != 0)
            fail_msg("v2 %s: %s", names[i], v.message);
        snprintf(rel, sizeof(rel), "v3/%s/bundle.json", names[i]);
        if (fx_doc(&v, k, a, rel, true, NULL) != 0)
            fail_msg("v3 %s: %s", names[i], v.message);
        /* not for the other image, not as an attestation */
        assert_refused(fx_simple(&v, k, b, names[i]), &v, "the signature is for another image");
        assert_refused(fx_doc(&v, k, b, rel, true, NULL), &v, "does not name this digest as its subject");
        assert_refused(fx_doc(&v, k, a, rel, true, SLSA), &v, "predicateType is " IMAGE_SIG_COSIGN_SIGN_PREDICATE);
        /* and refused with another key */
        image_key *wrong = i == 0 ? ed : p256;
        assert_refused(fx_simple(&v, wrong, a, names[i]), &v, "does not verify with the key");
        assert_refused(fx_doc(&v, wrong, a, rel, true, NULL), &v, "no signature of the signature's DSSE envelope");
        image_key_free(k);
    }
    /* the re-tag: A's signature under B's tag */
    assert_refused(fx_simple(&v, p256, b, "retag"), &v, "the signature is for another image, ");
    assert_int_equal(fx_simple(&v, p256, a, "retag"), 0);

    /* attestations: v2 .att envelope (Statement v0.1), v3 bundle */
    assert_int_equal(fx_doc(&v, p256, a, "v2/att/att.envelope.json", false, SLSA), 0);
    assert_int_equal(fx_doc(&v, p256, a, "v3/att/bundle.json", true, SLSA), 0);
    assert_refused(fx_doc(&v, p256, b, "v2/att/att.envelope.json", false, SLSA), &v, "does not name this digest");
    assert_refused(fx_doc(&v, p256, a, "v3/att/bundle.json", true, "https://spdx.dev/Document"), &v,
                   "predicateType is " SLSA);
    assert_refused(fx_doc(&v, p256, a, "v3/att/bundle.json", true, NULL), &v, "predicateType is " SLSA);
    image_key *other = fx_key("other");
    assert_refused(fx_doc(&v, other, a, "v2/att/att.envelope.json", false, SLSA), &v, "no signature");
    assert_refused(fx_doc(&v, other, a, "v3/att/bundle.json", true, SLSA), &v, "no signature");

    /* Ed25519: cosign signs Ed25519ph, refused with the reason */
    assert_refused(fx_simple(&v, ed, a, "ed25519"), &v, "cosign signs Ed25519ph with Ed25519 keys");
    assert_refused(fx_doc(&v, ed, a, "v3/ed25519/bundle.json", true, NULL), &v,
                   "cosign signs Ed25519ph with Ed25519 keys");
    image_key_free(other);
    image_key_free(p256);
    image_key_free(ed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_kinds_and_ids),
        cmocka_unit_test(keys_refused),
        cmocka_unit_test(simple_every_key_kind),
        cmocka_unit_test(simple_other_digest_refused),
        cmocka_unit_test(simple_wrong_key_refused),
        cmocka_unit_test(simple_tampered_and_malformed),
        cmocka_unit_test(simple_signed_but_wrong),
        cmocka_unit_test(envelope_attestation_every_key_kind),
        cmocka_unit_test(envelope_attestation_refused),
        cmocka_unit_test(envelope_several_signatures),
        cmocka_unit_test(envelope_malformed),
        cmocka_unit_test(bundle_signature_as_cosign_v3_writes),
        cmocka_unit_test(bundle_message_signature),
        cmocka_unit_test(bundle_refused),
        cmocka_unit_test(cosign_fixtures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

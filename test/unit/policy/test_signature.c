/*
 * OPA bundle signatures (policy/bundle.h, bundle_verify_signatures): keys made
 * in the test with OpenSSL, JWS signed in the test, archives written by
 * libarchive; and documents whose hashes `opa sign` (v1.22.4) computed, to hold
 * the canonical form of structured files to OPA's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "jwstest.h"
#include "policy/bundle.h"
#include "tarball.h"
#include "util/base64.h"
#include "util/error.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F(n, d)                                                                                                        \
    {                                                                                                                  \
        .name = (n), .data = (d)                                                                                       \
    }
#define N(a) (sizeof(a) / sizeof((a)[0]))

#define MANIFEST "{\"revision\":\"r1\",\"roots\":[\"kfm\"]}"
#define POLICY "package kfm\n\nallow if input.role == \"admin\"\n"
#define DATA "{\"kfm\":{\"labels\":[\"public\",\"restricted\"]}}"

typedef struct {
    EVP_PKEY *rsa, *rsa2, *p256, *p384, *ed;
    char *rsa_pem, *rsa2_pem, *p256_pem, *p384_pem, *ed_pem;
} keys;

static keys K;

static int setup(void **state)
{
    (void)state;
    K.rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    K.rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    K.p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    K.p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    K.ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!K.rsa || !K.rsa2 || !K.p256 || !K.p384 || !K.ed)
        return -1;
    K.rsa_pem = jwstest_public_pem(K.rsa);
    K.rsa2_pem = jwstest_public_pem(K.rsa2);
    K.p256_pem = jwstest_public_pem(K.p256);
    K.p384_pem = jwstest_public_pem(K.p384);
    K.ed_pem = jwstest_public_pem(K.ed);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY *all[] = {K.rsa, K.rsa2, K.p256, K.p384, K.ed};
    for (size_t i = 0; i < N(all); i++)
        EVP_PKEY_free(all[i]);
    free(K.rsa_pem);
    free(K.rsa2_pem);
    free(K.p256_pem);
    free(K.p384_pem);
    free(K.ed_pem);
    return 0;
}

/* A files entry with the SHA-256 of text (the canonical form when text is a structured document already in it). */
static void add_file(char *payload, size_t cap, const char *name, const char *text)
{
    char hex[65];
    jwstest_sha256_hex(hex, text, strlen(text));
    size_t n = strlen(payload);
    snprintf(payload + n, cap - n, "%s{\"name\":\"%s\",\"hash\":\"%s\",\"algorithm\":\"SHA-256\"}",
             payload[n - 1] == '[' ? "" : ",", name, hex);
}

/* The payload OPA writes for the standard three files, then extra claims (",\"scope\":...", or ""). */
static char *standard_payload(const char *claims)
{
    char *p = calloc(1, 4096);
    strcpy(p, "{\"files\":[");
    add_file(p, 4096, "kfm/policy.rego", POLICY);
    add_file(p, 4096, "data.json", DATA);
    add_file(p, 4096, ".manifest", MANIFEST);
    strcat(p, "]");
    strcat(p, claims);
    strcat(p, "}");
    return p;
}

static char *signatures_json(const char *tok)
{
    size_t n = strlen(tok) + 64;
    char *s = malloc(n);
    snprintf(s, n, "{\n \"signatures\": [\n  \"%s\"\n ],\n \"plugin\": \"_default\"\n}", tok);
    return s;
}

static bundle *make_bundle(const tar_entry *e, size_t n)
{
    unsigned char *gz = NULL;
    size_t len = 0;
    bundle *b = NULL;
    char err[BUNDLE_ERROR_MAX];
    tarball_make(&gz, &len, e, n, TARBALL_GZIP_PAX);
    if (bundle_read(&b, gz, len, 1 << 24, err) != 0)
        fail_msg("bundle_read: %s", err);
    free(gz);
    return b;
}

/* The standard bundle as opa build writes it ("/" names), with sigs as its .signatures.json. */
static bundle *standard_bundle(const char *sigs, const char *policy)
{
    tar_entry e[] = {F("/data.json", DATA), F("/kfm/policy.rego", policy ? policy : POLICY),
                     F("/.signatures.json", sigs), F("/.manifest", MANIFEST)};
    return make_bundle(e, N(e));
}

static void expect_verify(const bundle *b, const char *pem, const char *kid, const char *scope, const char *needle)
{
    bundle_signing s = {.public_key_pem = pem, .key_id = kid, .scope = scope};
    char err[BUNDLE_ERROR_MAX];
    int rc = bundle_verify_signatures(b, &s, err);
    if (!needle) {
        if (rc != 0)
            fail_msg("bundle_verify_signatures: %d %s", rc, err);
        return;
    }
    if (rc != MB_EINVAL)
        fail_msg("bundle_verify_signatures returned %d (%s), not MB_EINVAL, for \"%s\"", rc, err, needle);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not contain \"%s\"", err, needle);
}

/* A bundle of the standard files signed by key with alg, header and extra payload claims. */
static bundle *signed_bundle(EVP_PKEY *key, const char *alg, const char *header, const char *claims)
{
    char *payload = standard_payload(claims);
    char *tok = jwstest_token(key, alg, header, payload);
    char *sigs = signatures_json(tok);
    tar_entry e[] = {F("/data.json", DATA), F("/kfm/policy.rego", POLICY), F("/.signatures.json", sigs),
                     F("/.manifest", MANIFEST)};
    bundle *b = make_bundle(e, N(e));
    free(payload);
    free(tok);
    free(sigs);
    return b;
}

static void test_good_signatures(void **state)
{
    (void)state;
    struct {
        EVP_PKEY **key;
        const char *alg;
        char **pem;
    } cases[] = {
        {&K.rsa, "RS256", &K.rsa_pem},   {&K.rsa, "RS384", &K.rsa_pem},   {&K.rsa, "RS512", &K.rsa_pem},
        {&K.rsa, "PS256", &K.rsa_pem},   {&K.rsa, "PS384", &K.rsa_pem},   {&K.rsa, "PS512", &K.rsa_pem},
        {&K.p256, "ES256", &K.p256_pem}, {&K.p384, "ES384", &K.p384_pem}, {&K.ed, "EdDSA", &K.ed_pem},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char header[128];
        snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"kid\":\"kfm-2026\",\"typ\":\"JWT\"}", cases[i].alg);
        bundle *b = signed_bundle(*cases[i].key, cases[i].alg, header, ",\"keyid\":\"kfm-2026\",\"scope\":\"write\"");
        expect_verify(b, *cases[i].pem, "kfm-2026", "write", NULL);
        expect_verify(b, *cases[i].pem, NULL, NULL, NULL);
        expect_verify(b, *cases[i].pem, "", "", NULL);
        bundle_free(b);
    }
}

static void test_wrong_key(void **state)
{
    (void)state;
    bundle *b = signed_bundle(K.rsa, "RS256", "{\"alg\":\"RS256\"}", "");
    expect_verify(b, K.rsa2_pem, NULL, NULL, "signature does not verify with spec.signing.publicKeySecretRef");
    /* a key of another type than alg names */
    expect_verify(b, K.p256_pem, NULL, NULL,
                  "the JWT's alg RS256 does not fit an ECDSA key in spec.signing.publicKeySecretRef");
    expect_verify(b, K.ed_pem, NULL, NULL, "does not fit an Ed25519 key");
    expect_verify(b, "not a key", NULL, NULL, "spec.signing.publicKeySecretRef does not hold a PEM public key");
    expect_verify(b, "", NULL, NULL, "spec.signing.publicKeySecretRef does not hold a PEM public key");
    expect_verify(b, NULL, NULL, NULL, "spec.signing.publicKeySecretRef does not hold a PEM public key");
    bundle_free(b);

    /* an RSA key too short */
    EVP_PKEY *weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    char *weak_pem = jwstest_public_pem(weak);
    b = signed_bundle(weak, "RS256", "{\"alg\":\"RS256\"}", "");
    expect_verify(b, weak_pem, NULL, NULL,
                  "spec.signing.publicKeySecretRef holds an RSA key of 1024 bits; at least 2048 are needed");
    bundle_free(b);
    free(weak_pem);
    EVP_PKEY_free(weak);

    /* ES256 on a P-384 key, ES384 on a P-256 key */
    b = signed_bundle(K.p256, "ES256", "{\"alg\":\"ES256\"}", "");
    expect_verify(b, K.p384_pem, NULL, NULL, "the JWT's alg ES256 does not fit an ECDSA key");
    bundle_free(b);
    b = signed_bundle(K.p384, "ES384", "{\"alg\":\"ES384\"}", "");
    expect_verify(b, K.p256_pem, NULL, NULL, "the JWT's alg ES384 does not fit an ECDSA key");
    bundle_free(b);
    /* PS256 signed, the header claiming RS256: the padding differs */
    char *payload = standard_payload("");
    char *tok = jwstest_token(K.rsa, "PS256", "{\"alg\":\"RS256\"}", payload);
    char *sigs = signatures_json(tok);
    tar_entry e[] = {F("/data.json", DATA), F("/kfm/policy.rego", POLICY), F("/.signatures.json", sigs),
                     F("/.manifest", MANIFEST)};
    b = make_bundle(e, N(e));
    expect_verify(b, K.rsa_pem, NULL, NULL, "signature does not verify");
    bundle_free(b);
    free(payload);
    free(tok);
    free(sigs);
}

static void test_kid_and_scope(void **state)
{
    (void)state;
    bundle *b = signed_bundle(K.p256, "ES256", "{\"alg\":\"ES256\",\"kid\":\"kfm-2025\"}",
                              ",\"keyid\":\"kfm-2026\",\"scope\":\"read\"");
    /* the header's kid is the one that counts */
    expect_verify(b, K.p256_pem, "kfm-2026", NULL, "kid kfm-2025 differs from spec.signing.keyID kfm-2026");
    expect_verify(b, K.p256_pem, "kfm-2025", NULL, NULL);
    expect_verify(b, K.p256_pem, NULL, "write", "scope read differs from spec.signing.scope write");
    expect_verify(b, K.p256_pem, NULL, "read", NULL);
    bundle_free(b);

    /* no kid in the header (opa build --claims-file): the payload's keyid */
    b = signed_bundle(K.p256, "ES256", "{\"alg\":\"ES256\",\"typ\":\"JWT\"}", ",\"keyid\":\"kfm-2026\"");
    expect_verify(b, K.p256_pem, "kfm-2026", NULL, NULL);
    expect_verify(b, K.p256_pem, "kfm-2025", NULL, "kid kfm-2026 differs from spec.signing.keyID kfm-2025");
    expect_verify(b, K.p256_pem, NULL, "write", "scope (none) differs from spec.signing.scope write");
    bundle_free(b);

    /* neither */
    b = signed_bundle(K.p256, "ES256", "{\"alg\":\"ES256\"}", "");
    expect_verify(b, K.p256_pem, "kfm-2026", NULL, "the JWT names no kid, and spec.signing.keyID is kfm-2026");
    bundle_free(b);

    /* types */
    b = signed_bundle(K.p256, "ES256", "{\"alg\":\"ES256\",\"kid\":7}", "");
    expect_verify(b, K.p256_pem, NULL, NULL, "the JWT's header kid is not a string");
    bundle_free(b);
    b = signed_bundle(K.p256, "ES256", "{\"alg\":\"ES256\"}", ",\"scope\":[\"write\"]");
    expect_verify(b, K.p256_pem, NULL, NULL, "keyid, scope or iss that is not a string");
    bundle_free(b);
    b = signed_bundle(K.p256, "ES256", "{\"alg\":\"ES256\"}", ",\"iat\":\"yesterday\"");
    expect_verify(b, K.p256_pem, NULL, NULL, "iat that is not a number");
    bundle_free(b);
}

static void test_files_changed(void **state)
{
    (void)state;
    char *payload = standard_payload("");
    char *tok = jwstest_token(K.rsa, "RS256", "{\"alg\":\"RS256\"}", payload);
    char *sigs = signatures_json(tok);

    /* a policy changed after signing */
    tar_entry t[] = {F("/data.json", DATA), F("/kfm/policy.rego", "package kfm\n\nallow := true\n"),
                     F("/.signatures.json", sigs), F("/.manifest", MANIFEST)};
    bundle *b = make_bundle(t, N(t));
    expect_verify(b, K.rsa_pem, NULL, NULL, "file kfm/policy.rego changed after signing (hash mismatch)");
    bundle_free(b);

    /* data changed, even by one value */
    tar_entry d[] = {F("/data.json", "{\"kfm\":{\"labels\":[\"public\"]}}"), F("/kfm/policy.rego", POLICY),
                     F("/.signatures.json", sigs), F("/.manifest", MANIFEST)};
    b = make_bundle(d, N(d));
    expect_verify(b, K.rsa_pem, NULL, NULL, "file data.json changed after signing (hash mismatch)");
    bundle_free(b);

    /* the same data written otherwise: OPA hashes the value, not the bytes */
    tar_entry w[] = {F("/data.json", "{ \"kfm\" : {\n  \"labels\": [ \"public\", \"restricted\" ] } }\n"),
                     F("/kfm/policy.rego", POLICY), F("/.signatures.json", sigs),
                     F("/.manifest", "{\"roots\": [\"kfm\"], \"revision\": \"r1\"}")};
    b = make_bundle(w, N(w));
    expect_verify(b, K.rsa_pem, NULL, NULL, NULL);
    bundle_free(b);

    /* a file added */
    tar_entry x[] = {F("/data.json", DATA), F("/kfm/policy.rego", POLICY), F("/extra.rego", "package extra\n"),
                     F("/.signatures.json", sigs), F("/.manifest", MANIFEST)};
    b = make_bundle(x, N(x));
    expect_verify(b, K.rsa_pem, NULL, NULL, "file extra.rego is not listed in .signatures.json");
    bundle_free(b);

    /* a file removed */
    tar_entry m[] = {F("/kfm/policy.rego", POLICY), F("/.signatures.json", sigs), F("/.manifest", MANIFEST)};
    b = make_bundle(m, N(m));
    expect_verify(b, K.rsa_pem, NULL, NULL, "file data.json listed in .signatures.json is missing from the bundle");
    bundle_free(b);

    /* no signatures at all */
    tar_entry n[] = {F("/kfm/policy.rego", POLICY), F("/.manifest", MANIFEST)};
    b = make_bundle(n, N(n));
    expect_verify(b, K.rsa_pem, NULL, NULL, "the bundle has no .signatures.json");
    bundle_free(b);
    free(payload);
    free(tok);
    free(sigs);
}

static void test_refused_algorithms(void **state)
{
    (void)state;
    char *payload = standard_payload("");
    char *p = jwstest_b64url(payload, strlen(payload));
    const char *headers[] = {"{\"alg\":\"none\"}", "{\"alg\":\"HS256\"}", "{\"alg\":\"ES512\"}",
                             "{\"typ\":\"JWT\"}",  "{\"alg\":\"\"}",      "{\"alg\":1}"};
    const char *needles[] = {"alg none is not accepted",    "alg HS256 is not accepted",
                             "alg ES512 is not accepted",   "the JWT's header has no alg",
                             "the JWT's header has no alg", "the JWT's header has no alg"};
    for (size_t i = 0; i < N(headers); i++) {
        char *h = jwstest_b64url(headers[i], strlen(headers[i]));
        char tok[8192];
        /* "none" tokens have an empty signature; the others a made-up one */
        snprintf(tok, sizeof(tok), "%s.%s.%s", h, p, i == 0 ? "" : "c2lnbmF0dXJl");
        char *sigs = signatures_json(tok);
        bundle *b = standard_bundle(sigs, NULL);
        expect_verify(b, K.rsa_pem, NULL, NULL, needles[i]);
        bundle_free(b);
        free(sigs);
        free(h);
    }
    free(p);
    free(payload);
}

static void test_malformed(void **state)
{
    (void)state;
    char *payload = standard_payload("");
    char *good = jwstest_token(K.rsa, "RS256", "{\"alg\":\"RS256\"}", payload);
    char *h = jwstest_b64url("{\"alg\":\"RS256\"}", 15), *p = jwstest_b64url(payload, strlen(payload));
    char *dot = strrchr(good, '.');
    struct {
        const char *sigs, *needle;
    } cases[] = {
        {"not json", ".signatures.json is not a JSON object"},
        {"[]", ".signatures.json is not a JSON object"},
        {"{\"signatures\":[]}", ".signatures.json holds no JWT (expected exactly one)"},
        {"{}", ".signatures.json holds no JWT (expected exactly one)"},
        {"{\"signatures\":\"a.b.c\"}", ".signatures.json: signatures must be an array of JWTs"},
        {"{\"signatures\":[1]}", ".signatures.json: signatures[0] is not a string"},
        {"{\"signatures\":[\"a.b.c\",\"a.b.c\"]}", ".signatures.json holds 2 JWTs; OPA supports exactly one"},
        {"{\"signatures\":[\"a.b.c\"],\"plugin\":\"kms\"}", ".signatures.json: plugin kms is not supported"},
        {"{\"signatures\":[\"abc\"]}", "the JWT is not three dot-separated parts"},
        {"{\"signatures\":[\"a.b\"]}", "the JWT is not three dot-separated parts"},
        {"{\"signatures\":[\"a.b.c.d\"]}", "the JWT is not three dot-separated parts"},
        {"{\"signatures\":[\"a+b.c.d\"]}", "the JWT's header is not valid base64url"},
        {"{\"signatures\":[\"eyJh=.c.d\"]}", "the JWT's header is not valid base64url"},
        {"{\"signatures\":[\"bm90IGpzb24.e30.YQ\"]}", "the JWT's header is not a JSON object"},
        {"{\"signatures\":[\"W10.e30.YQ\"]}", "the JWT's header is not a JSON object"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        bundle *b = standard_bundle(cases[i].sigs, NULL);
        expect_verify(b, K.rsa_pem, NULL, NULL, cases[i].needle);
        bundle_free(b);
    }
    /* payload and signature parts broken one at a time */
    char tok[8192], *sigs;
    bundle *b;
    snprintf(tok, sizeof(tok), "%s.%s!.%s", h, p, dot + 1);
    sigs = signatures_json(tok);
    b = standard_bundle(sigs, NULL);
    expect_verify(b, K.rsa_pem, NULL, NULL, "the JWT's payload is not valid base64url");
    bundle_free(b);
    free(sigs);
    snprintf(tok, sizeof(tok), "%s.%s.%s=", h, p, dot + 1);
    sigs = signatures_json(tok);
    b = standard_bundle(sigs, NULL);
    expect_verify(b, K.rsa_pem, NULL, NULL, "the JWT's signature is not valid base64url");
    bundle_free(b);
    free(sigs);
    /* a signature cut short */
    snprintf(tok, sizeof(tok), "%.*s", (int)(strlen(good) - 8), good);
    sigs = signatures_json(tok);
    b = standard_bundle(sigs, NULL);
    expect_verify(b, K.rsa_pem, NULL, NULL, "signature does not verify");
    bundle_free(b);
    free(sigs);
    free(good);
    free(h);
    free(p);
    free(payload);
}

static void test_payload_files(void **state)
{
    (void)state;
    char hex[65];
    jwstest_sha256_hex(hex, POLICY, strlen(POLICY));
    char manifest_hex[65];
    jwstest_sha256_hex(manifest_hex, MANIFEST, strlen(MANIFEST));
    struct {
        const char *files, *needle;
    } cases[] = {
        {"\"files\":{}", "the JWT's payload has no files array"},
        {"\"nofiles\":[]", "the JWT's payload has no files array"},
        {"\"files\":[{\"name\":\"kfm/policy.rego\",\"hash\":\"%s\"}]", "files[0] of the JWT's payload"},
        {"\"files\":[1]", "files[0] of the JWT's payload is not {name, hash, algorithm} strings"},
        {"\"files\":[{\"name\":\"kfm/policy.rego\",\"hash\":\"%s\",\"algorithm\":\"MD5\"}]",
         "file kfm/policy.rego: hashing algorithm MD5 is too weak to trust"},
        {"\"files\":[{\"name\":\"kfm/policy.rego\",\"hash\":\"%s\",\"algorithm\":\"SHA-3\"}]",
         "file kfm/policy.rego: unsupported hashing algorithm SHA-3"},
        {"\"files\":[{\"name\":\"kfm/policy.rego\",\"hash\":\"%s\",\"algorithm\":\"\"}]",
         "file kfm/policy.rego: .signatures.json names no hashing algorithm"},
        {"\"files\":[{\"name\":\"kfm/policy.rego\",\"hash\":\"%.62s\",\"algorithm\":\"SHA-256\"}]",
         "its hash in .signatures.json is not 64 hex digits"},
        {"\"files\":[{\"name\":\"kfm/policy.rego\",\"hash\":\"%.62sxx\",\"algorithm\":\"SHA-256\"}]",
         "its hash in .signatures.json is not hex"},
        {"\"files\":[{\"name\":\"kfm/policy.rego\",\"hash\":\"%s\",\"algorithm\":\"SHA-256\"},"
         "{\"name\":\"kfm/policy.rego\",\"hash\":\"%s\",\"algorithm\":\"SHA-256\"}]",
         "file kfm/policy.rego is listed twice in .signatures.json"},
        /* the name as OPA writes it: no leading "/" */
        {"\"files\":[{\"name\":\"/kfm/policy.rego\",\"hash\":\"%s\",\"algorithm\":\"SHA-256\"}]",
         "file kfm/policy.rego is not listed in .signatures.json"},
    };
    tar_entry e[] = {F("/kfm/policy.rego", POLICY), F("/.signatures.json", NULL), F("/.manifest", MANIFEST)};
    for (size_t i = 0; i < N(cases); i++) {
        char files[1024], payload[2048];
        snprintf(files, sizeof(files), cases[i].files, hex, hex);
        snprintf(payload, sizeof(payload), "{%s}", files);
        char *tok = jwstest_token(K.ed, "EdDSA", "{\"alg\":\"EdDSA\"}", payload);
        char *sigs = signatures_json(tok);
        e[1].data = sigs;
        bundle *b = make_bundle(e, N(e));
        expect_verify(b, K.ed_pem, NULL, NULL, cases[i].needle);
        bundle_free(b);
        free(tok);
        free(sigs);
    }

    /* other hashing algorithms OPA offers; upper- or lowercase hex */
    unsigned char md[64];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(POLICY, strlen(POLICY), md, &n, EVP_sha384(), NULL), 1);
    char h384[97];
    for (unsigned i = 0; i < n; i++)
        snprintf(h384 + 2 * i, 3, "%02X", md[i]);
    char payload[2048];
    snprintf(payload, sizeof(payload),
             "{\"files\":[{\"name\":\"kfm/policy.rego\",\"hash\":\"%s\",\"algorithm\":\"SHA-384\"},"
             "{\"name\":\".manifest\",\"hash\":\"%s\",\"algorithm\":\"SHA-256\"}]}",
             h384, manifest_hex);
    char *tok = jwstest_token(K.ed, "EdDSA", "{\"alg\":\"EdDSA\"}", payload);
    char *sigs = signatures_json(tok);
    e[1].data = sigs;
    bundle *b = make_bundle(e, N(e));
    expect_verify(b, K.ed_pem, NULL, NULL, NULL);
    bundle_free(b);
    free(tok);
    free(sigs);
}

/*
 * Structured documents hashed as OPA hashes them: the files below were signed
 * with `opa sign --bundle .` (OPA v1.22.4) and the hashes are the ones it
 * wrote. data.json holds what a canonical form can get wrong: whitespace, a
 * member twice (Go keeps the last), keys outside ASCII (sorted by bytes),
 * control characters, U+2029, "\/", <>& (not escaped), invalid UTF-8, -0,
 * 1E+2 and 1.50 (numbers keep their text); data.yaml numbers OPA re-encodes.
 */
static const char OPA_MANIFEST[] = "{\n  \"roots\": [\"kfm\"],\n  \"revision\": \"2026.11.20-3\"\n}\n";
static const char OPA_DATA_JSON[] =
    "{ \"b\" : 1.50, \"a\":{\"\xc3\xa9\":1,\"z\":2,\"\\u00e9x\":3, \"\xf0\x9f\x98\x80\":4, \"\xef\xbf\xbf\":5}, "
    "\"s\":\"tab\\there\\u0007 \\u2029 \\/ <>& \\u00e9 \\b\\f\\u001f\\u007f\",\n \"dup\":1, \"dup\":2, \"n\":-0, "
    "\"e\":1E+2, \"l\":[true,false,null,{}], \"inv\":\"\xff\xfe\" }\n";
static const char OPA_DATA_YAML[] = "labels:\n  - public\n  - restricted\nlimits: {max: 10, ratio: 0.25, big: 1e21, "
                                    "small: 0.0000001, neg: -3, f: 1.0}\nflag: true\nnothing: ~\nname: \"a<b\"\n";
static const char OPA_REGO[] = "package kfm\n\nallow := true\n";
static const char OPA_PAYLOAD[] =
    "{\"files\":[{\"name\":\".manifest\",\"hash\":\"a7e5cd8958751cbe6587a614ce2847bce899529ad0a2b3e59186be152f16396f\","
    "\"algorithm\":\"SHA-256\"},{\"name\":\"kfm/data.json\",\"hash\":"
    "\"c90e9d81a671cc836592d07ee07f20fc72b501c2db74793fd81d05d394ddf25c\",\"algorithm\":\"SHA-256\"},{\"name\":"
    "\"kfm/data.yaml\",\"hash\":\"d9a0fb9c62d5235c4edc827007666267ea0a219fed5774ca68342993303baeff\",\"algorithm\":"
    "\"SHA-256\"},{\"name\":\"kfm/x.rego\",\"hash\":"
    "\"af8a01a5dc5e0ed35a966332a3071a84ff45205b5708ad52bb1f4751a1610d7a\",\"algorithm\":\"SHA-256\"}]}";

static void test_opa_hashes(void **state)
{
    (void)state;
    char *tok = jwstest_token(K.rsa, "RS256", "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", OPA_PAYLOAD);
    char *sigs = signatures_json(tok);
    tar_entry e[] = {F(".manifest", OPA_MANIFEST), F(".signatures.json", sigs), F("kfm/data.json", OPA_DATA_JSON),
                     F("kfm/x.rego", OPA_REGO), F("kfm/data.yaml", OPA_DATA_YAML)};
    bundle *b = make_bundle(e, N(e));
    expect_verify(b, K.rsa_pem, NULL, NULL, NULL);
    bundle_free(b);

    /* the second "dup" is the one that counts */
    char *changed = strdup(OPA_DATA_JSON);
    char *dup = strstr(changed, "\"dup\":2");
    dup[6] = '3';
    e[2].data = changed;
    b = make_bundle(e, N(e));
    expect_verify(b, K.rsa_pem, NULL, NULL, "file kfm/data.json changed after signing (hash mismatch)");
    bundle_free(b);
    dup[6] = '2';
    dup = strstr(changed, "\"dup\":1");
    dup[6] = '7';
    b = make_bundle(e, N(e));
    expect_verify(b, K.rsa_pem, NULL, NULL, NULL);
    bundle_free(b);
    /* 1.50 is not 1.5 to OPA's hash */
    strstr(changed, "1.50")[3] = ' ';
    b = make_bundle(e, N(e));
    expect_verify(b, K.rsa_pem, NULL, NULL, "file kfm/data.json changed after signing (hash mismatch)");
    bundle_free(b);
    free(changed);

    free(tok);
    free(sigs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_signatures),    cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_kid_and_scope),      cmocka_unit_test(test_files_changed),
        cmocka_unit_test(test_refused_algorithms), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_payload_files),      cmocka_unit_test(test_opa_hashes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

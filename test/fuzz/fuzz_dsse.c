/*
 * libFuzzer target for cosign v2's documents (image/signature.h): DSSE
 * envelopes of `sha256-<hex>.att` layers and simple-signing payloads of
 * `sha256-<hex>.sig` layers. The input is one flag byte, then the bytes:
 *   bit 0 set: the bytes are an in-toto statement, wrapped here in a DSSE
 *              envelope (payloadType application/vnd.in-toto+json) signed with
 *              a fixed Ed25519 key, so that the statement's reading is reached;
 *   bit 1 set (bit 0 clear): the bytes are a simple-signing payload, signed
 *              here with that key and checked with image_sig_check_simple;
 *   neither: the bytes are the envelope as a registry serves it.
 * Each envelope is checked as a signature (predicate NULL) and as an
 * attestation of https://slsa.dev/provenance/v1, for a fixed digest, with the
 * fixed key. Checked properties: every check returns 0 with an empty message
 * and payload_sha256 "sha256:<64 hex>", or MB_EINVAL with a message and no
 * payload_sha256 (never another code; MB_ENOMEM cannot happen here); a
 * document that verifies as a signature does not as an attestation, and back.
 */
#include "image/signature.h"
#include "util/base64.h"
#include "util/error.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST "sha256:3d982f01441809d85f88bf063a270c2790060fcba0ffa4c146c61d86aba88faf"
#define SLSA "https://slsa.dev/provenance/v1"
#define INTOTO "application/vnd.in-toto+json"

static EVP_PKEY *key;
static image_key *ikey;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const unsigned char seed[32] = "membrane fuzz_dsse fixed seed";
    char err[IMAGE_SIG_ERROR_MAX];
    (void)argc;
    (void)argv;
    if (!(key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed))))
        abort();
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    if (!bio || PEM_write_bio_PUBKEY(bio, key) != 1)
        abort();
    long n = BIO_get_mem_data(bio, &data);
    if (image_key_load(&ikey, data, (size_t)n, err) != 0)
        abort();
    BIO_free(bio);
    return 0;
}

/* The Ed25519 signature over len bytes of msg, base64. */
static char *sign(const void *msg, size_t len)
{
    unsigned char sig[64];
    size_t n = sizeof(sig);
    char *b64 = NULL;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!m || EVP_DigestSignInit_ex(m, NULL, NULL, NULL, NULL, key, NULL) != 1 ||
        EVP_DigestSign(m, sig, &n, msg, len) != 1 || mb_base64_encode(&b64, sig, n) != 0)
        abort();
    EVP_MD_CTX_free(m);
    return b64;
}

/* A DSSE envelope around the statement, signed over its PAE. */
static char *envelope(const uint8_t *st, size_t len)
{
    char head[64];
    int h = snprintf(head, sizeof(head), "DSSEv1 %zu %s %zu ", strlen(INTOTO), INTOTO, len);
    unsigned char *pae = malloc((size_t)h + len + 1);
    char *body = NULL;
    if (!pae || mb_base64_encode(&body, st, len) != 0)
        abort();
    memcpy(pae, head, (size_t)h);
    if (len)
        memcpy(pae + h, st, len);
    char *sig = sign(pae, (size_t)h + len);
    size_t n = strlen(body) + strlen(sig) + 128;
    char *env = malloc(n);
    if (!env)
        abort();
    snprintf(env, n,
             "{\"payloadType\":\"" INTOTO "\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"\",\"sig\":\"%s\"}]}",
             body, sig);
    free(pae);
    free(body);
    free(sig);
    return env;
}

static void verdict_ok(int rc, const image_sig_verdict *v)
{
    if (rc == 0) {
        if (v->message[0] || strncmp(v->payload_sha256, "sha256:", 7) != 0 || strlen(v->payload_sha256) != 71)
            abort();
    } else if (rc != MB_EINVAL || !v->message[0] || v->payload_sha256[0]) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    image_sig_verdict v;
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    data++, size--;
    if (!(flags & 1) && (flags & 2)) {
        char *sig = sign(data, size);
        verdict_ok(image_sig_check_simple(&v, ikey, DIGEST, data, size, sig, NULL), &v);
        verdict_ok(image_sig_check_simple(&v, ikey, DIGEST, data, size, sig, "-----BEGIN CERTIFICATE-----"), &v);
        free(sig);
        return 0;
    }
    char *env = NULL;
    if (flags & 1)
        env = envelope(data, size);
    else if ((env = malloc(size + 1)) != NULL) {
        if (size)
            memcpy(env, data, size);
        env[size] = '\0';
    } else
        abort();
    size_t len = (flags & 1) ? strlen(env) : size;
    int as_sig = image_sig_check_envelope(&v, ikey, DIGEST, env, len, NULL);
    verdict_ok(as_sig, &v);
    int as_att = image_sig_check_envelope(&v, ikey, DIGEST, env, len, SLSA);
    verdict_ok(as_att, &v);
    if (as_sig == 0 && as_att == 0)
        abort();
    free(env);
    return 0;
}

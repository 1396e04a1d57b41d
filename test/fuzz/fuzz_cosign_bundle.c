/*
 * libFuzzer target for the sigstore bundles cosign v3 attaches to an image
 * (image/signature.h, image_sig_check_bundle). The input is one flag byte,
 * then the bytes:
 *   bit 0 set: the bytes are an in-toto statement, wrapped here in a DSSE
 *              envelope signed with a fixed Ed25519 key inside a v0.3 bundle
 *              with publicKey material, so that the statement's reading is
 *              reached;
 *   clear:     the bytes are the bundle as a registry serves it.
 * Each bundle is checked as a signature (predicate NULL) and as an
 * attestation of https://slsa.dev/provenance/v1, for a fixed digest, with the
 * fixed key. Checked properties: every check returns 0 with an empty message
 * and payload_sha256 "sha256:<64 hex>", or MB_EINVAL with a message and no
 * payload_sha256 (never another code); a bundle that verifies as a signature
 * does not as an attestation, and back; a bundle whose verificationMaterial
 * has a certificate and no publicKey is never verified.
 */
#include "image/signature.h"
#include "util/base64.h"
#include "util/error.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
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
    static const unsigned char seed[32] = "membrane fuzz_cosign_bundle key";
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

/* A v0.3 bundle holding a DSSE envelope around the statement, signed over its PAE. */
static char *bundle(const uint8_t *st, size_t len)
{
    char head[64];
    int h = snprintf(head, sizeof(head), "DSSEv1 %zu %s %zu ", strlen(INTOTO), INTOTO, len);
    unsigned char *pae = malloc((size_t)h + len + 1), sig[64];
    char *body = NULL, *sig64 = NULL;
    size_t n = sizeof(sig);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!pae || !m || mb_base64_encode(&body, st, len) != 0)
        abort();
    memcpy(pae, head, (size_t)h);
    if (len)
        memcpy(pae + h, st, len);
    if (EVP_DigestSignInit_ex(m, NULL, NULL, NULL, NULL, key, NULL) != 1 ||
        EVP_DigestSign(m, sig, &n, pae, (size_t)h + len) != 1 || mb_base64_encode(&sig64, sig, n) != 0)
        abort();
    size_t cap = strlen(body) + strlen(sig64) + 256;
    char *b = malloc(cap);
    if (!b)
        abort();
    snprintf(b, cap,
             "{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":{\"publicKey\":"
             "{\"hint\":\"\"}},\"dsseEnvelope\":{\"payload\":\"%s\",\"payloadType\":\"" INTOTO
             "\",\"signatures\":[{\"sig\":\"%s\"}]}}",
             body, sig64);
    EVP_MD_CTX_free(m);
    free(pae);
    free(body);
    free(sig64);
    return b;
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

/* Whether the bundle, read as JSON at all, is keyless only. */
static bool keyless(const char *b, size_t len)
{
    cJSON *doc = cJSON_ParseWithLength(b, len);
    const cJSON *vm = cJSON_GetObjectItemCaseSensitive(doc, "verificationMaterial");
    bool k = vm && !cJSON_GetObjectItemCaseSensitive(vm, "publicKey") &&
             (cJSON_GetObjectItemCaseSensitive(vm, "certificate") ||
              cJSON_GetObjectItemCaseSensitive(vm, "x509CertificateChain"));
    cJSON_Delete(doc);
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    image_sig_verdict v;
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    data++, size--;
    char *b = NULL;
    if (flags & 1)
        b = bundle(data, size);
    else if ((b = malloc(size + 1)) != NULL) {
        if (size)
            memcpy(b, data, size);
        b[size] = '\0';
    } else
        abort();
    size_t len = (flags & 1) ? strlen(b) : size;
    int as_sig = image_sig_check_bundle(&v, ikey, DIGEST, b, len, NULL);
    verdict_ok(as_sig, &v);
    int as_att = image_sig_check_bundle(&v, ikey, DIGEST, b, len, SLSA);
    verdict_ok(as_att, &v);
    if (as_sig == 0 && as_att == 0)
        abort();
    if ((as_sig == 0 || as_att == 0) && keyless(b, len))
        abort();
    free(b);
    return 0;
}

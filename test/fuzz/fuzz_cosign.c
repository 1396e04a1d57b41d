/*
 * libFuzzer target for cosign's documents (image/signature.h): the sigstore
 * bundles cosign v3 attaches to an image (image_sig_check_bundle), the DSSE
 * envelopes of cosign v2's `sha256-<hex>.att` layers
 * (image_sig_check_envelope) and the simple-signing payloads of its
 * `sha256-<hex>.sig` layers (image_sig_check_simple). The input is one flag
 * byte, then the bytes:
 *   bit 2 set: the document is a bundle, else an envelope;
 *   bit 0 set: the bytes are an in-toto statement, wrapped here in a DSSE
 *              envelope (payloadType application/vnd.in-toto+json) signed with
 *              a fixed Ed25519 key (inside a v0.3 bundle with publicKey
 *              material with bit 2), so that the statement's reading is
 *              reached;
 *   bit 1 set (bits 0 and 2 clear): the bytes are a simple-signing payload,
 *              signed here with that key and checked with
 *              image_sig_check_simple;
 *   otherwise: the bytes are the document as a registry serves it.
 * Each document is checked as a signature (predicate NULL) and as an
 * attestation of https://slsa.dev/provenance/v1, for a fixed digest, with the
 * fixed key. Checked properties: every check returns 0 with an empty message
 * and payload_sha256 "sha256:<64 hex>", or MB_EINVAL with a message and no
 * payload_sha256 (never another code; MB_ENOMEM cannot happen here); a
 * document that verifies as a signature does not as an attestation, and
 * back; a bundle whose verificationMaterial has a certificate and no
 * publicKey is never verified.
 */
#include "image/signature.h"
#include "util/base64.h"
#include "util/error.h"
#include "fuzz_key.h"

#include <cjson/cJSON.h>
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
    char err[IMAGE_SIG_ERROR_MAX], *pem;
    size_t pem_len;
    (void)argc;
    (void)argv;
    key = fuzz_key_new("membrane fuzz_cosign fixed seed", &pem, &pem_len);
    if (image_key_load(&ikey, pem, pem_len, err) != 0)
        abort();
    free(pem);
    return 0;
}

/* The Ed25519 signature over len bytes of msg, base64. */
static char *sign(const void *msg, size_t len)
{
    unsigned char sig[64];
    char *b64 = NULL;
    fuzz_key_sign(sig, key, msg, len);
    if (mb_base64_encode(&b64, sig, sizeof(sig)) != 0)
        abort();
    return b64;
}

/* A DSSE envelope around the statement, signed over its PAE; inside a v0.3 bundle with in_bundle. */
static char *envelope(const uint8_t *st, size_t len, bool in_bundle)
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
    size_t n = strlen(body) + strlen(sig) + 256;
    char *doc = malloc(n);
    if (!doc)
        abort();
    snprintf(doc, n,
             "%s{\"payloadType\":\"" INTOTO "\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"\",\"sig\":\"%s\"}]}%s",
             in_bundle ? "{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":"
                         "{\"publicKey\":{\"hint\":\"\"}},\"dsseEnvelope\":"
                       : "",
             body, sig, in_bundle ? "}" : "");
    free(pae);
    free(body);
    free(sig);
    return doc;
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
    bool bundle = flags & 4;
    data++, size--;
    if (!bundle && !(flags & 1) && (flags & 2)) {
        char *sig = sign(data, size);
        verdict_ok(image_sig_check_simple(&v, ikey, DIGEST, data, size, sig, NULL), &v);
        verdict_ok(image_sig_check_simple(&v, ikey, DIGEST, data, size, sig, "-----BEGIN CERTIFICATE-----"), &v);
        free(sig);
        return 0;
    }
    char *doc = NULL;
    if (flags & 1)
        doc = envelope(data, size, bundle);
    else if ((doc = malloc(size + 1)) != NULL) {
        if (size)
            memcpy(doc, data, size);
        doc[size] = '\0';
    } else
        abort();
    size_t len = (flags & 1) ? strlen(doc) : size;
    int (*check)(image_sig_verdict *, const image_key *, const char *, const char *, size_t,
                 const char *) = bundle ? image_sig_check_bundle : image_sig_check_envelope;
    int as_sig = check(&v, ikey, DIGEST, doc, len, NULL);
    verdict_ok(as_sig, &v);
    int as_att = check(&v, ikey, DIGEST, doc, len, SLSA);
    verdict_ok(as_att, &v);
    if (as_sig == 0 && as_att == 0)
        abort();
    if (bundle && (as_sig == 0 || as_att == 0) && keyless(doc, len))
        abort();
    free(doc);
    return 0;
}

/*
 * cosign signature readers and their OpenSSL verification (placeholder of the
 * agreed interface until the implementation lands).
 */
#ifndef MB_IMAGE_SIGNATURE_H
#define MB_IMAGE_SIGNATURE_H

#include <stddef.h>

#define IMAGE_SIG_ERROR_MAX 512
typedef struct image_key image_key;
int image_key_load(image_key **out, const char *pem, size_t len, char err[IMAGE_SIG_ERROR_MAX]);
void image_key_free(image_key *k);
const char *image_key_id(const image_key *k); /* "sha256:<hex>" of the key's DER SPKI */
typedef struct {
    char payload_sha256[72];
    char message[IMAGE_SIG_ERROR_MAX];
} image_sig_verdict;
/* each: 0 verified, MB_EINVAL refused (message says why), MB_ENOMEM */
int image_sig_check_simple(
    image_sig_verdict *out, const image_key *k, const char *digest, const void *payload, size_t len,
    const char *sig_b64,
    const char *
        cert_pem); /* v2 .sig layer: bytes + dev.cosignproject.cosign/signature (+ dev.sigstore.cosign/certificate or NULL) */
int image_sig_check_bundle(
    image_sig_verdict *out, const image_key *k, const char *digest, const char *bundle, size_t len,
    const char *predicate_type); /* v3 bundle; predicate_type NULL: a signature, else an attestation of that type */
int image_sig_check_envelope(image_sig_verdict *out, const image_key *k, const char *digest, const char *envelope,
                             size_t len, const char *predicate_type); /* v2 .att layer (DSSE) */

#endif

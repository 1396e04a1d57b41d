/*
 * cosign signatures and attestations over an image digest, judged against one
 * public key: the readers of what cosign writes next to an image (the
 * simple-signing payload and annotation of a v2 sha256-<hex>.sig layer, the
 * DSSE envelope of a v2 sha256-<hex>.att layer, the sigstore bundle v0.3 that
 * cosign v3 attaches through the OCI referrers API) and the checks that one of
 * them is signed by the key over exactly the digest. Pure logic: the OCI
 * client (image/registry.c, image/verify.c) fetches the bytes and calls these.
 * Key-based only: keyless material (a Fulcio certificate, Rekor entries) is
 * refused with a sentence saying so.
 */
#ifndef MB_IMAGE_SIGNATURE_H
#define MB_IMAGE_SIGNATURE_H

#include <stddef.h>

#define IMAGE_SIG_ERROR_MAX 512

/* The largest simple-signing payload (a v2 .sig layer) and the largest envelope or bundle accepted, in bytes. */
#define IMAGE_SIG_MAX_PAYLOAD (1 << 20)
#define IMAGE_SIG_MAX_DOCUMENT (16 << 20)

/* The predicate type cosign v3 gives the in-toto statement of `cosign sign` (counts as a signature). */
#define IMAGE_SIG_COSIGN_SIGN_PREDICATE "https://sigstore.dev/cosign/sign/v1"

typedef struct image_key image_key;

/*
 * A PEM public key as cosign writes or imports it (SubjectPublicKeyInfo,
 * "-----BEGIN PUBLIC KEY-----"): ECDSA P-256/P-384, Ed25519, RSA >= 2048 bits.
 * len bytes of pem (need not be NUL-terminated). 0, MB_EINVAL (err names what
 * is wrong with the key), MB_ENOMEM. *out belongs to the caller.
 */
int image_key_load(image_key **out, const char *pem, size_t len, char err[IMAGE_SIG_ERROR_MAX]);

/* Accepts NULL. */
void image_key_free(image_key *k);

/* "sha256:<hex>" of the key's DER SubjectPublicKeyInfo: identifies the key (cache key, messages). Borrowed. */
const char *image_key_id(const image_key *k);

/* "ECDSA P-256", "ECDSA P-384", "Ed25519" or "RSA-<bits>". Borrowed. */
const char *image_key_kind(const image_key *k);

typedef struct {
    /*
     * "sha256:<hex>" of the verified signed payload, set when verified: the
     * simple-signing payload, the DSSE payload (the in-toto statement), or for
     * a bundle's messageSignature (which has no payload) the bundle's bytes.
     */
    char payload_sha256[72];
    char message[IMAGE_SIG_ERROR_MAX]; /* one sentence: why refused (names the digest and what is wrong) */
} image_sig_verdict;

/*
 * cosign v2 signature: one layer of the sha256-<hex>.sig image. payload: the
 * layer's bytes (cosign simple signing JSON:
 * {"critical":{"identity":{"docker-reference":...},"image":{"docker-manifest-digest":"sha256:..."},
 *  "type":"cosign container image signature"},"optional":...}); sig_b64: the
 * layer's annotation dev.cosignproject.cosign/signature. Verified when the
 * signature verifies with k over the payload bytes AND the payload's
 * docker-manifest-digest is exactly digest AND its type is cosign's.
 * cert_pem: the layer's dev.sigstore.cosign/certificate annotation or NULL
 * (keyless: the message says keyless is not supported when the key does not
 * verify). 0 verified (out->payload_sha256 set); MB_EINVAL refused
 * (out->message); MB_ENOMEM.
 */
int image_sig_check_simple(image_sig_verdict *out, const image_key *k, const char *digest, const void *payload,
                           size_t len, const char *sig_b64, const char *cert_pem);

/*
 * cosign v3: a sigstore bundle (application/vnd.dev.sigstore.bundle.v0.3+json,
 * also v0.1/v0.2). predicate_type NULL: an image SIGNATURE: a messageSignature
 * whose messageDigest is the image digest (SHA2_256) and whose signature
 * verifies over it, or a DSSE envelope holding an in-toto statement with
 * predicateType IMAGE_SIG_COSIGN_SIGN_PREDICATE whose subject includes the
 * digest. predicate_type non-NULL: an ATTESTATION: a DSSE envelope
 * (payloadType application/vnd.in-toto+json) holding an in-toto statement
 * (_type https://in-toto.io/Statement/v0.1 or v1) whose predicateType equals
 * predicate_type and whose subject[] has a digest.sha256 equal to the digest's
 * hex; signature verified with k over DSSE's PAE. Keyless-only bundles are
 * refused ("keyless signatures (Fulcio certificate, Rekor) are not supported;
 * sign with a key: cosign sign --key"). 0 verified; MB_EINVAL refused
 * (message); MB_ENOMEM.
 */
int image_sig_check_bundle(image_sig_verdict *out, const image_key *k, const char *digest, const char *bundle,
                           size_t len, const char *predicate_type);

/*
 * cosign v2 attestation: one layer of the sha256-<hex>.att image, a DSSE
 * envelope (JSON: payloadType, payload (base64), signatures[{keyid, sig
 * (base64)}]); the rules of the attestation branch above. predicate_type NULL
 * accepts only IMAGE_SIG_COSIGN_SIGN_PREDICATE.
 */
int image_sig_check_envelope(image_sig_verdict *out, const image_key *k, const char *digest, const char *envelope,
                             size_t len, const char *predicate_type);

#endif

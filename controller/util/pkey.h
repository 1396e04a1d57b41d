/*
 * Public-key signature verification shared by the PolicyBundle signature
 * check (OPA's JWS) and the image gate (cosign): load a PEM public key
 * (SubjectPublicKeyInfo "PUBLIC KEY", PKCS#1 "RSA PUBLIC KEY", or with
 * MB_PKEY_CERT a certificate's key), name its kind, and verify a signature
 * over a message with one scheme (a digest, PKCS#1 v1.5 or PSS padding for
 * RSA, raw r||s or DER for ECDSA, pure Ed25519), over OpenSSL EVP. The kinds
 * membrane trusts: RSA of at least MB_PKEY_RSA_MIN_BITS, ECDSA on P-256 and
 * P-384, Ed25519.
 */
#ifndef MB_UTIL_PKEY_H
#define MB_UTIL_PKEY_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

#define MB_PKEY_RSA_MIN_BITS 2048

/* mb_pkey_load flags: also take the public key of a PEM certificate. */
#define MB_PKEY_CERT 1u

typedef enum {
    MB_PKEY_UNSUPPORTED = 0,
    MB_PKEY_RSA,
    MB_PKEY_P256,
    MB_PKEY_P384,
    MB_PKEY_ED25519,
} mb_pkey_type;

/*
 * The public key in len bytes of pem (need not be NUL-terminated) into *out
 * (the caller frees it with EVP_PKEY_free). 0; MB_EINVAL when pem holds no
 * public key OpenSSL can read (of any type: judge it with mb_pkey_type_of);
 * MB_ENOMEM. OpenSSL's error queue is left empty.
 */
int mb_pkey_load(EVP_PKEY **out, const char *pem, size_t len, unsigned flags);

/* The kind of k among those membrane trusts (an EC key on another curve is MB_PKEY_UNSUPPORTED). */
mb_pkey_type mb_pkey_type_of(EVP_PKEY *k);

/* "an RSA key", "an ECDSA key", "an Ed25519 key" or "a key of an unsupported type" (the base type only). */
const char *mb_pkey_kind(EVP_PKEY *k);

/* The EC curve of k is curve ("prime256v1"/"P-256", "secp384r1"/"P-384"); false for other keys. */
bool mb_pkey_ec_curve_is(EVP_PKEY *k, const char *curve);

typedef enum {
    MB_PKEY_ECDSA_DER = 0, /* ASN.1 DER Ecdsa-Sig-Value, as cosign and X.509 write it */
    MB_PKEY_ECDSA_RAW,     /* r||s, each ecdsa_half bytes, as JWS writes it (RFC 7518 3.4) */
} mb_pkey_ecdsa_form;

typedef struct {
    const char *digest;            /* "SHA256", "SHA384", ...; NULL for Ed25519 (pure, over the message) */
    bool pss;                      /* RSA: PSS padding (MGF1 with digest) instead of PKCS#1 v1.5 */
    int pss_saltlen;               /* RSA PSS: RSA_PSS_SALTLEN_DIGEST, RSA_PSS_SALTLEN_AUTO, or a length */
    mb_pkey_ecdsa_form ecdsa_form; /* ECDSA: how the signature is encoded */
    size_t ecdsa_half;             /* ECDSA raw: bytes of r and of s (32 for P-256, 48 for P-384) */
} mb_pkey_scheme;

/*
 * Whether sig is a signature by key over len bytes of msg with scheme s (the
 * caller has checked that the scheme fits the key's type). 1 verifies; 0 does
 * not (a malformed signature included); MB_ENOMEM; MB_ERROR when OpenSSL
 * cannot set the verification up.
 */
int mb_pkey_verify(EVP_PKEY *key, const mb_pkey_scheme *s, const void *msg, size_t len, const unsigned char *sig,
                   size_t sig_len);

/*
 * As mb_pkey_verify, over a message already hashed with s->digest (hash is
 * that digest's output): RSA and ECDSA only (Ed25519 signs the message itself:
 * MB_ERROR).
 */
int mb_pkey_verify_digest(EVP_PKEY *key, const mb_pkey_scheme *s, const unsigned char *hash, size_t hash_len,
                          const unsigned char *sig, size_t sig_len);

/* Whether OpenSSL's error queue says an allocation failed; empties the queue. */
bool mb_pkey_ossl_oom(void);

#endif

/*
 * cosign's documents made and signed in the test with OpenSSL, as cosign
 * writes them: simple-signing payloads, in-toto statements, DSSE envelopes and
 * sigstore bundles (v0.3), for the image signature tests. Every string comes
 * back malloc'ed (the caller frees it); failures fail the running cmocka test.
 */
#ifndef TEST_COSIGNTEST_H
#define TEST_COSIGNTEST_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

/* Standard padded base64 of len bytes. */
char *cosigntest_b64(const void *data, size_t len);

/*
 * key's signature over len bytes of msg, as cosign signs with it (ECDSA
 * P-256/SHA-256 and P-384/SHA-384 in DER, Ed25519 pure, RSA PKCS#1 v1.5
 * SHA-256, or PSS SHA-256 with pss), standard base64.
 */
char *cosigntest_sign(EVP_PKEY *key, bool pss, const void *msg, size_t len);

/* key's signature over a SHA-256 digest (prehashed; ECDSA or RSA PKCS#1), standard base64. */
char *cosigntest_sign_digest(EVP_PKEY *key, const unsigned char hash[32]);

/* The simple-signing payload cosign v2 writes for digest. */
char *cosigntest_simple_payload(const char *digest);

/* An in-toto statement (_type statement_type, https://in-toto.io/Statement/v1 when NULL) for digest. */
char *cosigntest_statement(const char *statement_type, const char *digest, const char *predicate_type);

/*
 * A DSSE envelope of payload_type and payload, with one signature per key
 * (NULL keys sign with a junk signature) over its PAE.
 */
char *cosigntest_envelope(const char *payload_type, const char *payload, EVP_PKEY *const *keys, size_t nkeys);

/* A sigstore bundle v0.3 with publicKey verification material around content ("\"dsseEnvelope\":{...}"). */
char *cosigntest_bundle(const char *content);

#endif

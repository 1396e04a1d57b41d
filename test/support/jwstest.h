/*
 * JWS compact tokens signed in the test, for the bundle signature tests.
 */
#ifndef TEST_JWSTEST_H
#define TEST_JWSTEST_H

#include <openssl/evp.h>
#include <stddef.h>

/* The SubjectPublicKeyInfo PEM of k (the caller frees it). */
char *jwstest_public_pem(EVP_PKEY *k);

/* Unpadded base64url of len bytes (the caller frees it). */
char *jwstest_b64url(const void *data, size_t len);

/*
 * A JWS compact token of header and payload (JSON text) signed by key with
 * alg (RS*, PS*, ES256/384, EdDSA); the caller frees it.
 */
char *jwstest_token(EVP_PKEY *key, const char *alg, const char *header, const char *payload);

/* Lowercase hex SHA-256 of len bytes. */
void jwstest_sha256_hex(char out[65], const char *data, size_t len);

#endif

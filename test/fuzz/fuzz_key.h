/*
 * The fuzz targets' signing key: an Ed25519 key made from a fixed seed (so
 * that every run, and every crash a run saves, replays the same signatures),
 * its public half as PEM, and raw signatures over a message.
 */
#ifndef MB_FUZZ_KEY_H
#define MB_FUZZ_KEY_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

/* The key made from seed (up to 32 bytes, zero-padded); *pem gets its public half (malloc'd). Aborts on failure. */
static EVP_PKEY *fuzz_key_new(const char *seed, char **pem, size_t *pem_len)
{
    unsigned char raw[32] = {0};
    memcpy(raw, seed, strnlen(seed, sizeof(raw)));
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, sizeof(raw));
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    if (!key || !bio || PEM_write_bio_PUBKEY(bio, key) != 1)
        abort();
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || !(*pem = strndup(data, (size_t)n)))
        abort();
    *pem_len = (size_t)n;
    BIO_free(bio);
    return key;
}

/* The 64-byte Ed25519 signature of key over len bytes of msg into sig. Aborts on failure. */
static void fuzz_key_sign(unsigned char sig[64], EVP_PKEY *key, const void *msg, size_t len)
{
    size_t n = 64;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!m || EVP_DigestSignInit_ex(m, NULL, NULL, NULL, NULL, key, NULL) != 1 ||
        EVP_DigestSign(m, sig, &n, msg, len) != 1 || n != 64)
        abort();
    EVP_MD_CTX_free(m);
}

#endif

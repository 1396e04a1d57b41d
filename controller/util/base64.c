/*
 * Base64 decoding and encoding over OpenSSL's EVP_Decode* and EVP_EncodeBlock,
 * with mb_error codes and wiped buffers.
 */
#include "util/base64.h"
#include "util/error.h"
#include "util/secret.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

int mb_base64_decode(char **out, size_t *out_len, const char *in)
{
    int err = 0, n1 = 0, n2 = 0;
    size_t len = strlen(in), cap = len / 4 * 3 + 4;
    EVP_ENCODE_CTX *ctx = NULL;
    unsigned char *buf = NULL;

    *out = NULL;
    *out_len = 0;
    if (len > INT_MAX / 2)
        return mb_error_set(MB_EINVAL, "too long");
    if (!(ctx = EVP_ENCODE_CTX_new()) || !(buf = malloc(cap))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, buf, &n1, (const unsigned char *)in, (int)len) < 0 ||
        EVP_DecodeFinal(ctx, buf + n1, &n2) < 0) {
        err = mb_error_set(MB_EINVAL, "not valid base64");
        goto done;
    }
    buf[n1 + n2] = '\0';
    *out = (char *)buf;
    *out_len = (size_t)(n1 + n2);
    buf = NULL;

done:
    mb_secret_free_len(buf, cap);
    EVP_ENCODE_CTX_free(ctx);
    return err;
}

int mb_base64_decode_strict(char **out, size_t *out_len, const char *in)
{
    size_t n = strlen(in), pad = 0;
    *out = NULL;
    *out_len = 0;
    if (n % 4 != 0)
        return mb_error_set(MB_EINVAL, "not valid base64 (its length is not a multiple of 4)");
    while (pad < 2 && n > pad && in[n - 1 - pad] == '=')
        pad++;
    for (size_t i = 0; i < n - pad; i++) {
        char c = in[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
            return mb_error_set(MB_EINVAL, "not valid base64 (a character outside A-Z a-z 0-9 + /, or \"=\" "
                                           "before the end)");
    }
    return mb_base64_decode(out, out_len, in);
}

int mb_base64url_decode(char **out, size_t *out_len, const char *in, size_t len)
{
    *out = NULL;
    *out_len = 0;
    if (len % 4 == 1)
        return mb_error_set(MB_EINVAL, "not valid base64url (its length cannot be)");
    if (len > INT_MAX / 2)
        return mb_error_set(MB_EINVAL, "too long");
    char *std = malloc(len + 4);
    if (!std)
        return mb_error_set(MB_ENOMEM, "out of memory");
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            free(std);
            return mb_error_set(MB_EINVAL, "not valid base64url (a character outside A-Z a-z 0-9 - _)");
        }
        std[i] = c;
    }
    size_t n = len;
    while (n % 4)
        std[n++] = '=';
    std[n] = '\0';
    int err = mb_base64_decode(out, out_len, std);
    free(std);
    if (err == MB_EINVAL)
        return mb_error_set(MB_EINVAL, "not valid base64url");
    return err;
}

int mb_base64_encode(char **out, const void *in, size_t len)
{
    *out = NULL;
    if (len > INT_MAX / 2)
        return mb_error_set(MB_EINVAL, "too long to encode as base64");
    if (!(*out = malloc(4 * ((len + 2) / 3) + 1)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    EVP_EncodeBlock((unsigned char *)*out, in, (int)len);
    return 0;
}

/*
 * The text helpers of text.h: what a string holds, byte by byte, without
 * allocating; a SHA-256 digest as text.
 */
#include "util/text.h"
#include "util/error.h"

#include <openssl/evp.h>
#include <string.h>

bool mb_has_control(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

bool mb_sha256_digest_valid(const char *d)
{
    if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
        return false;
    for (const char *p = d + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

int mb_sha256_digest(char out[72], const void *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = '\0';
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
        return mb_error_set(MB_ERROR, "OpenSSL could not compute a SHA-256 digest");
    memcpy(out, "sha256:", 7);
    for (unsigned int i = 0; i < n; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[8 + 2 * i] = hex[md[i] & 0x0f];
    }
    out[71] = '\0';
    return 0;
}

const char *mb_text_shown(char *out, size_t max, const char *s)
{
    size_t i = 0;
    for (; s[i] && i < max; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    if (s[i])
        memcpy(out + i, "...", 3), i += 3;
    out[i] = '\0';
    return out;
}

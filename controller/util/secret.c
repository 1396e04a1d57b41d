/*
 * Wipe-then-free for secrets, over OPENSSL_cleanse.
 */
#include "util/secret.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

void mb_secret_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void mb_secret_free_len(void *p, size_t len)
{
    if (p) {
        OPENSSL_cleanse(p, len);
        free(p);
    }
}

/*
 * Freeing secrets: tokens, keys and the buffers that held them are wiped
 * (OPENSSL_cleanse, which the compiler may not optimise away) before they
 * are freed, so that a credential does not linger in freed memory.
 */
#ifndef MB_UTIL_SECRET_H
#define MB_UTIL_SECRET_H

#include <stddef.h>

/* Wipes the NUL-terminated string s and frees it; accepts NULL. */
void mb_secret_free(char *s);

/* Wipes the first len bytes of p (its whole allocation, as the caller knows it) and frees it; accepts NULL. */
void mb_secret_free_len(void *p, size_t len);

#endif

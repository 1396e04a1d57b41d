/*
 * Small tests on text that more than one module makes before a string goes
 * where it must not break a line or a header: a URL, an HTTP method, a bearer
 * token, a request id; and how a value read from a document is shown in a message.
 */
#ifndef MB_UTIL_TEXT_H
#define MB_UTIL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* True when s holds a control character (below 0x20, or DEL); false for NULL and "". */
bool mb_has_control(const char *s);

/* True when d is "sha256:" and 64 lowercase hex digits (an image, bundle or artifact digest, an auditRef). */
bool mb_sha256_digest_valid(const char *d);

/* "sha256:" and the 64 lowercase hex digits of the SHA-256 of len bytes of data into out. 0, or MB_ERROR (OpenSSL
 * failed; out is then ""). */
int mb_sha256_digest(char out[72], const void *data, size_t len);

/*
 * s as a message shows a value read from a document: control bytes as '?', cut after max bytes with "..."
 * added; out holds max + 4 bytes. Returns out.
 */
const char *mb_text_shown(char *out, size_t max, const char *s);

#endif

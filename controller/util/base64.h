/*
 * Standard base64 (RFC 4648, with padding), as kubeconfig *-data fields,
 * Secret data and ExecCredential cluster info carry it; over OpenSSL's
 * EVP_Decode and EVP_EncodeBlock. Decoded bytes may be a secret: buffers are
 * wiped when a decode fails, and the caller wipes what it gets back.
 */
#ifndef MB_UTIL_BASE64_H
#define MB_UTIL_BASE64_H

#include <stddef.h>

/*
 * Decodes in (line breaks allowed) into *out, NUL-terminated, its length in
 * *out_len (which may be 0); the caller frees *out (mb_secret_free_len when it
 * is a secret). MB_EINVAL ("not valid base64", or "too long") or MB_ENOMEM;
 * *out is NULL then.
 */
int mb_base64_decode(char **out, size_t *out_len, const char *in);

/*
 * Decodes strict standard base64 (RFC 4648 section 4, as JSON documents such
 * as DSSE envelopes and sigstore bundles carry bytes): padded to a multiple
 * of 4, only A-Z a-z 0-9 + / and at most two trailing "=", no line breaks.
 * Otherwise as mb_base64_decode.
 */
int mb_base64_decode_strict(char **out, size_t *out_len, const char *in);

/*
 * Decodes unpadded base64url (RFC 4648 section 5, as JWS compact serialization
 * carries its parts): len bytes of in, only A-Z a-z 0-9 - _, no "=" padding,
 * no line breaks. Otherwise as mb_base64_decode.
 */
int mb_base64url_decode(char **out, size_t *out_len, const char *in, size_t len);

/* Encodes len bytes of in, without line breaks, into *out (NUL-terminated, the caller frees it). */
int mb_base64_encode(char **out, const void *in, size_t len);

#endif

/*
 * Canonical JSON and audit references. A receipt is identified by the SHA-256
 * of its canonical JSON, so the same value must give the same bytes however
 * it was built or re-encoded on the way (by the API server, by kubectl, by a
 * human's editor). The form is the JSON Canonicalization Scheme (RFC 8785):
 * object members sorted by the UTF-16 code units of their names, no
 * insignificant whitespace, strings escaped minimally (only '"', '\\' and the
 * controls below U+0020; \b \f \n \r \t in short form, others as \u00xx) with
 * all other text passed through as UTF-8, numbers in ECMAScript's shortest
 * round-trip form (integers up to 2^53 print as integers; 1e21, 0.5, 1e-7,
 * 2^60 as "1152921504606847000"), and the literals true, false, null.
 *
 * Numbers are canonicalized by value (the IEEE double cJSON holds), not by
 * their text, so "1.0", "1" and "1e0" all canonicalize to 1: the API server
 * is free to re-encode a number and the receipt still verifies. Values that
 * have no canonical form are refused with MB_EINVAL and a message naming the
 * member: strings that are not valid UTF-8 (or carry surrogate code points),
 * objects with two members of the same name, NaN and infinities, and cJSON
 * raw items.
 */
#ifndef MB_AUDIT_CANONICAL_H
#define MB_AUDIT_CANONICAL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* "sha256:" + 64 hex digits + NUL. */
#define AUDIT_REF_SIZE 72

/*
 * The canonical JSON of value: a NUL-terminated buffer the caller frees with
 * free(), and its length (without the NUL) in *len when len is not NULL.
 * 0, MB_EINVAL (no canonical form; the message names the member) or MB_ENOMEM.
 */
int audit_canonical_json(char **out, size_t *len, const cJSON *value);

/*
 * "sha256:" + lowercase hex SHA-256 of the canonical JSON of body. On error out
 * is the empty string. 0, MB_EINVAL, MB_ENOMEM or MB_ERROR (the digest failed).
 */
int audit_ref(char out[AUDIT_REF_SIZE], const cJSON *body);

#endif

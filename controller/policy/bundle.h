/*
 * OPA bundles, the pure part: reading a .tar.gz (libarchive) under the
 * structure rules, its .manifest, its signatures (.signatures.json, JWS
 * verified with OpenSSL) and the comparison of a decision with what a test
 * case expects. No I/O but memory; the PolicyBundle controller fetches the
 * bytes, checks their digest first, and calls these on them.
 *
 * Rules (API.md "PolicyBundle", Details): a gzip tar; every entry a regular
 * file or a directory; no absolute path, no "..", no symlink, hardlink or
 * device; the unpacked total at most max_unpacked bytes; a .manifest that is
 * a JSON object whose revision is a string and whose roots is an array of
 * strings (absent roots mean [""]); at least one .rego file; every data.json
 * a JSON object. A violation is MB_EINVAL with a message that names the entry
 * and what is wrong.
 *
 * How they are read, precisely:
 * - Entry names: `opa build` writes every name with a leading "/"
 *   ("/.manifest", "/kfm/policy.rego") and OPA reads that "/" as the bundle
 *   root, so one leading "/" is dropped, and so is a leading "./" (as
 *   `tar -C dir .` writes). What remains must be a clean relative path: one
 *   still starting with "/" ("//etc/passwd") is absolute; a ".." segment
 *   anywhere is refused; so are empty and "." segments inside ("a//b",
 *   "a/./b"), which would let two names denote one file. Directories ".",
 *   "./" and "/" are the root itself. The same path twice is refused.
 * - Only the root holds .manifest and .signatures.json: OPA takes any file
 *   whose name ends in ".manifest", and any ".signatures.json", for them, so
 *   "kfm/.manifest" or "kfm/.signatures.json" is refused. A protobuf
 *   .manifest.pb alone is "no .manifest".
 * - JSON (.manifest, data.json, .signatures.json, the JWT's parts) is read as
 *   Go's encoding/json reads it: strict tokens, no text after the value, no
 *   raw control characters in strings, nesting at most 512 deep.
 * - .manifest: revision and roots may be null (= absent, as for OPA); each
 *   at most once; at most 4096 roots, no two overlapping ("kfm" and
 *   "kfm/data", or "" and anything), as OPA refuses them.
 * - data.json, and data.yaml / data.yml (OPA loads those as data too), must
 *   hold an object (a YAML mapping).
 * - At most 65536 files; libarchive's gzip stream may unpack to at most
 *   2 * max_unpacked + 1 MiB including tar headers and padding.
  */
#ifndef MB_POLICY_BUNDLE_H
#define MB_POLICY_BUNDLE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define BUNDLE_ERROR_MAX 512

typedef struct {
    char *name;          /* the entry's path in the bundle as OPA names it: no leading "/" or "./" */
    unsigned char *data; /* its bytes (NUL-terminated beyond len) */
    size_t len;
} bundle_file;

typedef struct {
    bundle_file *files; /* regular files, in archive order; directories are not kept */
    size_t nfiles;
    char *revision;                /* .manifest revision ("" when the manifest has none) */
    cJSON *roots;                  /* .manifest roots, an array of strings; [""] when absent */
    size_t rego_modules;           /* files whose name ends in .rego */
    long long unpacked_bytes;      /* the sum of the regular files' sizes */
    const bundle_file *manifest;   /* the .manifest among files */
    const bundle_file *signatures; /* .signatures.json among files, or NULL */
} bundle;

/*
 * Reads the gzip tar in gz[0..len) into *out. 0; MB_EINVAL when a rule above
 * does not hold (err: one sentence naming the entry, e.g. "entry
 * ../etc/passwd: a path with .. is not allowed"); MB_ENOMEM. On an error
 * *out is NULL.
 */
int bundle_read(bundle **out, const void *gz, size_t len, long long max_unpacked, char err[BUNDLE_ERROR_MAX]);

void bundle_free(bundle *b);

/* The file named name (OPA's form, as in bundle_file.name), or NULL. */
const bundle_file *bundle_find(const bundle *b, const char *name);

/*
 * The first of required (an array of strings) that no root of the manifest
 * covers, or NULL when all are covered. A root covers a path when it equals
 * it or is an ancestor of it segment by segment ("kfm" covers "kfm/data";
 * "" covers every path, as in OPA).
 */
const char *bundle_missing_root(const bundle *b, const cJSON *required);

typedef struct {
    const char *public_key_pem; /* RSA, ECDSA P-256/P-384 or Ed25519 public key */
    const char *key_id;         /* NULL or "": any; else must equal the JWT header's kid (or payload keyid) */
    const char *scope;          /* NULL or "": any; else must equal the payload's scope */
} bundle_signing;

/*
 * Verifies .signatures.json as OPA writes it ({"signatures": ["<JWS compact>"]}):
 * the JWS signature with the key (RS256/384/512, PS256/384/512, ES256/384,
 * EdDSA), kid and scope, and that the payload's files list every file of the
 * bundle but .signatures.json with a matching hash (OPA's hashing, its
 * algorithms) and names no file the bundle lacks. 0; MB_EINVAL with err naming
 * what failed (the file added, removed or changed; the key; kid; scope); MB_ENOMEM;
 * MB_ERROR when OpenSSL cannot set a verification up.
 *
 * As OPA v1.22 does: exactly one JWT (none, or two, are refused); plugin
 * absent or "_default"; file names as in the payload (no leading "/"); the hash
 * of data.json, data.yaml, data.yml and .manifest taken over OPA's canonical
 * form of the parsed document, of every other file over its bytes. Where
 * membrane is stricter or differs: the algorithm is the JWT header's alg and
 * must fit the key (OPA takes it from its own key configuration); "none" and
 * HS* are refused; RSA keys need 2048 bits (OPA: 1024); hashing algorithms SHA-224 to SHA-512/256 (OPA's MD5 and
 * SHA-1 are refused); a file listed twice is refused; the kid compared with
 * key_id is the header's kid, else the payload's keyid; scope is compared only
 * when set (OPA with no scope configured wants a token without one).
 */
int bundle_verify_signatures(const bundle *b, const bundle_signing *s, char err[BUNDLE_ERROR_MAX]);

/*
 * Judges one decision: body is OPA's answer to POST /v1/data/<path> (a JSON
 * object; "result" absent when the rule is undefined) and expect what the
 * case expects. True when result is present and equals expect as JSON (object
 * members in any order, numbers by value); an absent result equals nothing.
 * *got (may be NULL) receives the result as compact JSON, "undefined" when
 * absent, or NULL when body is not a JSON object or memory ran out (then the
 * answer is false too); the caller frees it.
 */
bool bundle_decision_matches(const char *body, size_t len, const cJSON *expect, char **got);

#endif

/*
 * What bundle.c and signature.c share and the controller does not need.
 */
#ifndef MB_POLICY_BUNDLE_PRIVATE_H
#define MB_POLICY_BUNDLE_PRIVATE_H

#include "policy/bundle.h"

/*
 * Parses text[0..len) as one JSON value the way Go's encoding/json (OPA's
 * reader) accepts it: cJSON's parse, then a strict scan that refuses what
 * cJSON lets through and Go does not (raw control characters in strings,
 * whitespace other than space, tab, CR and LF, numbers outside the JSON
 * grammar such as "01" or "+1", text after the value). With keep_numbers,
 * every number becomes a cJSON_Raw holding its literal as written (OPA hashes
 * numbers by their text). 0; MB_EINVAL (not valid JSON) or MB_ENOMEM.
 */
int bundle_json_parse(cJSON **out, const unsigned char *text, size_t len, bool keep_numbers);

/*
 * bundle_read's checks of what it unpacked: b holds the files (names already
 * normalized, data NUL-terminated) and unpacked_bytes; the rest of b is
 * filled here (manifest, signatures, revision, roots, rego_modules). Duplicate
 * names, the .manifest and its members, nested .manifest or .signatures.json,
 * the .rego count and the data files. 0, MB_EINVAL (err says why), MB_ENOMEM.
 * Apart from libarchive so that it can be tortured alone (libarchive 3.6 aborts
 * the process on some failed allocations of its own).
 */
int bundle_check_structure(bundle *b, char err[BUNDLE_ERROR_MAX]);

#endif

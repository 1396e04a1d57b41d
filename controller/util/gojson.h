/*
 * JSON read the way Go's encoding/json reads it (what OPA and cosign accept),
 * into cJSON: a strict validator over the text, then cJSON's parse, which
 * after validation can fail only for memory, so a refusal and an allocation
 * failure are told apart.
 */
#ifndef MB_UTIL_GOJSON_H
#define MB_UTIL_GOJSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Parses text[0..len) as one JSON value the way Go's encoding/json accepts
 * it: cJSON's parse, then a strict scan that refuses what cJSON lets through
 * and Go does not (raw control characters in strings, whitespace other than
 * space, tab, CR and LF, numbers outside the JSON grammar such as "01" or
 * "+1", text after the value). With keep_numbers, every number becomes a
 * cJSON_Raw holding its literal as written (OPA hashes numbers by their text).
 * 0; MB_EINVAL (not valid JSON) or MB_ENOMEM. *out belongs to the caller.
 */
int mb_gojson_parse(cJSON **out, const unsigned char *text, size_t len, bool keep_numbers);

#endif

/*
 * YAML to cJSON: parses YAML text with libyaml into the same tree a JSON
 * document would give, so the rest of membrane reads kubeconfigs, manifests and
 * CRDs with the json.h helpers. Mappings become objects, sequences arrays;
 * plain scalars are resolved with the YAML 1.2 core schema (null, ~ and empty
 * give null; true/false in any of the three spellings give booleans; decimal,
 * 0x and 0o integers and decimal floats, .inf and .nan give numbers; anything
 * else is a string); quoted and block scalars, and scalars tagged !!str, are
 * always strings. Anchors and aliases are expanded (an alias is a copy of what
 * its anchor names) and "<<" merge keys merge mappings; explicit keys win over
 * merged ones. Duplicate keys, non-scalar keys and NUL bytes in strings are
 * errors. Numbers are doubles: integers beyond 2^53 lose precision. Errors name
 * the source and the 1-based line and column.
 */
#ifndef MB_UTIL_YAML_H
#define MB_UTIL_YAML_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Limits that keep hostile input from exhausting the stack or memory. */
#define MB_YAML_MAX_DEPTH 256        /* nested collections */
#define MB_YAML_MAX_NODES (1L << 20) /* nodes after alias expansion, per document */

/*
 * Parses the first document of text (len bytes, need not be NUL-terminated)
 * into *out. An empty stream gives a cJSON null. source_name (e.g. a file
 * name) starts every error message; NULL means "yaml". Returns 0, MB_EINVAL
 * for a syntax or structure error, or MB_ENOMEM.
 */
int mb_yaml_parse(cJSON **out, const char *text, size_t len, const char *source_name);

/*
 * Parses every document of a stream ("---" separated) into a cJSON array, in
 * order. Documents that are empty (null) are left out, as kubectl does.
 */
int mb_yaml_parse_all(cJSON **out, const char *text, size_t len, const char *source_name);

#endif

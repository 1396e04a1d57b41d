/*
 * Test helpers shared by the unit and integration tests.
 */
#ifndef TEST_FIXTURE_H
#define TEST_FIXTURE_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Reads test/fixtures/<rel> into a NUL-terminated buffer the caller frees; NULL when missing. */
char *fixture_read(const char *rel, size_t *len);

/* The absolute path of test/fixtures/<rel> in a static buffer. */
const char *fixture_path(const char *rel);

/* YAML text, or the file test/fixtures/<rel>, parsed to JSON; fails the cmocka test when it does not parse. */
cJSON *fixture_yaml_text(const char *text);
cJSON *fixture_yaml(const char *rel);

#endif

/*
 * Test helpers shared by the unit and integration tests.
 */
#ifndef TEST_FIXTURE_H
#define TEST_FIXTURE_H

#include <stddef.h>

/* Reads test/fixtures/<rel> into a NUL-terminated buffer the caller frees; NULL when missing. */
char *fixture_read(const char *rel, size_t *len);

/* The absolute path of test/fixtures/<rel> in a static buffer. */
const char *fixture_path(const char *rel);

#endif

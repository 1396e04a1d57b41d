/*
 * Small tests on text that more than one module makes before a string goes
 * where it must not break a line or a header: a URL, an HTTP method, a bearer
 * token, a request id.
 */
#ifndef MB_UTIL_TEXT_H
#define MB_UTIL_TEXT_H

#include <stdbool.h>

/* True when s holds a control character (below 0x20, or DEL); false for NULL and "". */
bool mb_has_control(const char *s);

#endif

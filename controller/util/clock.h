/*
 * The monotonic clock, read once here: now in nanoseconds or whole
 * milliseconds since an unspecified start (CLOCK_MONOTONIC, which wall-clock
 * changes do not move), and the time elapsed since an earlier reading. For
 * deadlines, backoff and measured durations; never for timestamps written
 * into objects (those are wall-clock, util/timefmt.h).
 */
#ifndef MB_UTIL_CLOCK_H
#define MB_UTIL_CLOCK_H

#include <stdint.h>

/* Now on CLOCK_MONOTONIC, in nanoseconds. */
int64_t mb_monotonic_ns(void);

/* Now on CLOCK_MONOTONIC, in whole milliseconds (rounded down). */
int64_t mb_monotonic_ms(void);

/* Milliseconds, with their fraction, since since_ns (a reading of mb_monotonic_ns()); never negative. */
double mb_elapsed_ms(int64_t since_ns);

#endif

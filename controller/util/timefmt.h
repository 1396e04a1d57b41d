/*
 * RFC 3339 timestamps as Kubernetes writes them: formatting a time_t as UTC
 * with whole seconds ("2026-11-22T10:00:00Z", the metav1.Time form used by
 * lastTransitionTime) and parsing any RFC 3339 date-time back to a time_t
 * (a "Z" or a numeric offset, optional fractional seconds, which are dropped).
 * Also the deadline for a timed wait: now on a clock, plus some milliseconds.
 */
#ifndef MB_UTIL_TIMEFMT_H
#define MB_UTIL_TIMEFMT_H

#include <stddef.h>
#include <time.h>

/* Bytes needed for a formatted timestamp, terminating NUL included. */
#define TIMEFMT_RFC3339_SIZE 21

/*
 * Writes t as "YYYY-MM-DDTHH:MM:SSZ" (UTC) into out, which holds size bytes.
 * 0, or MB_EINVAL when size is below TIMEFMT_RFC3339_SIZE or the year of t
 * falls outside 0000-9999.
 */
int timefmt_format(char *out, size_t size, time_t t);

/*
 * Parses an RFC 3339 date-time ("2026-11-22T10:00:00Z",
 * "2026-11-22T12:00:00.25+02:00") into seconds since the epoch; fractional
 * seconds are truncated. A leap second (:60) counts as the next second.
 * 0, or MB_EINVAL (the message quotes the text) when s is not RFC 3339.
 */
int timefmt_parse(time_t *out, const char *s);

/* Now on clock plus ms (>= 0), as pthread_cond_timedwait and its kin take it. */
struct timespec timefmt_deadline(clockid_t clock, long ms);

#endif

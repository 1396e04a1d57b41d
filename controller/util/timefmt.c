/*
 * RFC 3339 formatting (UTC, whole seconds) and parsing (Z or offset,
 * optional fraction) over gmtime_r/timegm.
 */
#include "util/timefmt.h"
#include "util/error.h"

#include <stdbool.h>
#include <string.h>

int timefmt_format(char *out, size_t size, time_t t)
{
    struct tm tm;

    if (!out || size < TIMEFMT_RFC3339_SIZE)
        return mb_error_set(MB_EINVAL, "a timestamp needs a buffer of %d bytes, got %zu", TIMEFMT_RFC3339_SIZE,
                            out ? size : 0);
    if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
        return mb_error_set(MB_EINVAL,
                            "time %lld cannot be written as an RFC 3339 timestamp; "
                            "its year is outside 0000-9999",
                            (long long)t);
    if (strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) != TIMEFMT_RFC3339_SIZE - 1)
        return mb_error_set(MB_EINVAL, "time %lld did not format as an RFC 3339 timestamp", (long long)t);
    return 0;
}

/* Reads exactly n decimal digits at *p into *v and advances *p. */
static bool digits(const char **p, int n, int *v)
{
    int r = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        r = r * 10 + (c - '0');
    }
    *p += n;
    *v = r;
    return true;
}

static bool expect(const char **p, const char *one_of)
{
    if (**p == '\0' || !strchr(one_of, **p))
        return false;
    (*p)++;
    return true;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

int timefmt_parse(time_t *out, const char *s)
{
    int year, mon, day, hour, min, sec, off_h = 0, off_m = 0, sign = 0;
    const char *p = s;
    struct tm tm;

    if (!out || !s)
        return mb_error_set(MB_EINVAL, "no timestamp given to parse");
    if (!digits(&p, 4, &year) || !expect(&p, "-") || !digits(&p, 2, &mon) || !expect(&p, "-") || !digits(&p, 2, &day) ||
        !expect(&p, "Tt") || !digits(&p, 2, &hour) || !expect(&p, ":") || !digits(&p, 2, &min) || !expect(&p, ":") ||
        !digits(&p, 2, &sec))
        goto bad;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            goto bad;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
        if (!digits(&p, 2, &off_h) || !expect(&p, ":") || !digits(&p, 2, &off_m))
            goto bad;
    } else {
        goto bad;
    }
    if (*p != '\0')
        goto bad;
    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 || min > 59 || sec > 60 ||
        off_h > 23 || off_m > 59)
        goto bad;

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    *out = timegm(&tm) - (time_t)sign * (off_h * 3600 + off_m * 60);
    return 0;

bad:
    return mb_error_set(MB_EINVAL,
                        "\"%.64s\" is not an RFC 3339 timestamp; "
                        "write it as 2026-11-22T10:00:00Z",
                        s);
}

struct timespec timefmt_deadline(clockid_t clock, long ms)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/*
 * The monotonic clock over clock_gettime(CLOCK_MONOTONIC): the one place the
 * operator reads it for deadlines and measured durations.
 */
#include "util/clock.h"

#include <time.h>

int64_t mb_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t mb_monotonic_ms(void)
{
    return mb_monotonic_ns() / 1000000LL;
}

double mb_elapsed_ms(int64_t since_ns)
{
    int64_t d = mb_monotonic_ns() - since_ns;
    return d > 0 ? (double)d / 1e6 : 0.0;
}

/* SPDX-License-Identifier: MIT */
/* A clock reading as one integer, for deadlines, timestamps and durations. */
#ifndef IMGW_CLOCK_H
#define IMGW_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Returns the time of clock (CLOCK_MONOTONIC, CLOCK_REALTIME) in ns. */
static inline uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

#endif

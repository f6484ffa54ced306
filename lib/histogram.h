/* SPDX-License-Identifier: MIT */
/*
 * A Prometheus histogram of durations with fixed buckets from 100 us to
 * 1 s, for the admin /metrics endpoints. Observing is a short linear scan
 * over HISTOGRAM_BUCKETS bounds, with no allocation.
 */
#ifndef IMGW_HISTOGRAM_H
#define IMGW_HISTOGRAM_H

#include <stdint.h>

#include <event2/buffer.h>

#define HISTOGRAM_BUCKETS 15

struct histogram {
	/* Observations at or below each bound, not cumulative; the last
	 * slot counts those above the largest bound. */
	uint64_t counts[HISTOGRAM_BUCKETS + 1];
	uint64_t sum_us;
	uint64_t count;
};

void histogram_observe(struct histogram *h, uint64_t us);

/* Appends name_bucket{le="..."} lines in seconds, name_sum and name_count
 * with HELP and TYPE lines. */
void histogram_append(struct evbuffer *out, const char *name,
		      const char *help, const struct histogram *h);

#endif

// SPDX-License-Identifier: MIT
/* Fixed-bucket duration histogram; see histogram.h. */
#include "histogram.h"

/* Upper bounds in microseconds, dense around the few milliseconds a
 * fan-out of a big room takes. */
static const uint64_t histogram_bounds_us[HISTOGRAM_BUCKETS] = {
	100, 250, 500, 1000, 2000, 3000, 4000, 5000, 7500, 10000,
	25000, 50000, 100000, 250000, 1000000,
};

void histogram_observe(struct histogram *h, uint64_t us)
{
	unsigned int i = 0;

	while (i < HISTOGRAM_BUCKETS && us > histogram_bounds_us[i])
		i++;
	h->counts[i]++;
	h->sum_us += us;
	h->count++;
}

void histogram_append(struct evbuffer *out, const char *name,
		      const char *help, const struct histogram *h)
{
	uint64_t cumulative = 0;

	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name,
			    help, name);
	for (unsigned int i = 0; i < HISTOGRAM_BUCKETS; i++) {
		cumulative += h->counts[i];
		evbuffer_add_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name,
				    (double)histogram_bounds_us[i] / 1e6,
				    (unsigned long long)cumulative);
	}
	evbuffer_add_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name,
			    (unsigned long long)h->count);
	evbuffer_add_printf(out, "%s_sum %.6f\n%s_count %llu\n", name,
			    (double)h->sum_us / 1e6, name,
			    (unsigned long long)h->count);
}

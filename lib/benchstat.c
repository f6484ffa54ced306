// SPDX-License-Identifier: MIT
/*
 * Measuring helpers for the benchmark tools: latency histogram, quantiles
 * and /proc readers. /proc counts CPU time in clock ticks (usually 10 ms),
 * so short intervals are only good to a tick.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "benchstat.h"
#include "clock.h"

#define NSEC_PER_MSEC 1000000ULL

uint64_t benchstat_now_ns(int clock)
{
	return clock_ns((clockid_t)clock);
}

static unsigned int hist_index(uint64_t v)
{
	unsigned int msb, shift, idx;

	if (v < 2 * BENCHSTAT_HIST_SUB)
		return (unsigned int)v;
	msb = 63 - (unsigned int)__builtin_clzll(v);
	shift = msb - BENCHSTAT_HIST_SUB_BITS;
	idx = (shift + 1) * BENCHSTAT_HIST_SUB + (unsigned int)(v >> shift) -
	      BENCHSTAT_HIST_SUB;
	return idx < BENCHSTAT_HIST_BUCKETS ? idx : BENCHSTAT_HIST_BUCKETS - 1;
}

/* Returns the midpoint of bucket idx. */
static uint64_t hist_value(unsigned int idx)
{
	unsigned int shift;
	uint64_t lo;

	if (idx < 2 * BENCHSTAT_HIST_SUB)
		return idx;
	shift = idx / BENCHSTAT_HIST_SUB - 1;
	lo = (uint64_t)(idx % BENCHSTAT_HIST_SUB + BENCHSTAT_HIST_SUB) << shift;
	return lo + ((1ULL << shift) >> 1);
}

void benchstat_hist_add(struct benchstat_hist *h, uint64_t v)
{
	h->count[hist_index(v)]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

void benchstat_hist_merge(struct benchstat_hist *into,
			  const struct benchstat_hist *from)
{
	for (unsigned int i = 0; i < BENCHSTAT_HIST_BUCKETS; i++)
		into->count[i] += from->count[i];
	into->n += from->n;
	if (from->max > into->max)
		into->max = from->max;
}

double benchstat_hist_quantile_ms(const struct benchstat_hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->n == 0)
		return 0;
	if (q >= 1.0)
		return (double)h->max / NSEC_PER_MSEC;
	rank = (uint64_t)ceil(q * (double)h->n);
	rank = rank ? rank : 1;
	for (unsigned int i = 0; i < BENCHSTAT_HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= rank) {
			uint64_t v = hist_value(i);

			return (double)(v < h->max ? v : h->max) / NSEC_PER_MSEC;
		}
	}
	return (double)h->max / NSEC_PER_MSEC;
}

double benchstat_sorted_quantile_ms(const uint64_t *v, uint64_t n, double q)
{
	uint64_t rank;

	if (n == 0)
		return 0;
	rank = (uint64_t)ceil(q * (double)n);
	rank = rank ? rank : 1;
	return (double)v[(rank > n ? n : rank) - 1] / NSEC_PER_MSEC;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void benchstat_sort_u64(uint64_t *v, uint64_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
}

int benchstat_proc_cpu_us(pid_t pid, uint64_t *out)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	/* The command name may contain spaces: fields count from the last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2)
		return -EPROTO;
	*out = (ut + st) * 1000000ULL / (uint64_t)sysconf(_SC_CLK_TCK);
	return 0;
}

int benchstat_proc_hwm_kb(pid_t pid, uint64_t *out)
{
	char path[64], line[256];
	unsigned long long kb;
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "VmHWM: %llu kB", &kb) == 1;
	fclose(f);
	if (!found)
		return -EPROTO;
	*out = kb;
	return 0;
}

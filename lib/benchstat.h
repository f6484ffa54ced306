/* SPDX-License-Identifier: MIT */
/*
 * Measuring helpers shared by the benchmark tools: a log-linear latency
 * histogram in nanoseconds and readers of a process's CPU time and peak
 * resident set from /proc.
 */
#ifndef IMGW_BENCHSTAT_H
#define IMGW_BENCHSTAT_H

#include <stdint.h>
#include <sys/types.h>

/*
 * Values below 2 * BENCHSTAT_HIST_SUB are exact, larger ones fall into
 * BENCHSTAT_HIST_SUB buckets per power of two, so a bucket's midpoint is
 * within 1/128 of any value in it.
 */
#define BENCHSTAT_HIST_SUB_BITS 6
#define BENCHSTAT_HIST_SUB (1u << BENCHSTAT_HIST_SUB_BITS)
#define BENCHSTAT_HIST_BUCKETS (BENCHSTAT_HIST_SUB * 60)

struct benchstat_hist {
	uint64_t count[BENCHSTAT_HIST_BUCKETS];
	uint64_t n;
	uint64_t max;
};

uint64_t benchstat_now_ns(int clock);
void benchstat_hist_add(struct benchstat_hist *h, uint64_t v);
void benchstat_hist_merge(struct benchstat_hist *into,
			  const struct benchstat_hist *from);
/* Returns the q quantile (nearest rank) in ms; q >= 1.0 gives the exact max. */
double benchstat_hist_quantile_ms(const struct benchstat_hist *h, double q);
/* Returns the q quantile (nearest rank) of n sorted values, in ms. */
double benchstat_sorted_quantile_ms(const uint64_t *v, uint64_t n, double q);
void benchstat_sort_u64(uint64_t *v, uint64_t n);
/* Reads utime + stime of all threads of pid, in microseconds. */
int benchstat_proc_cpu_us(pid_t pid, uint64_t *out);
/* Reads VmHWM (peak resident set) of pid in kB. */
int benchstat_proc_hwm_kb(pid_t pid, uint64_t *out);

#endif

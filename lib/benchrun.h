/* SPDX-License-Identifier: MIT */
/*
 * Run helpers shared by the benchmark tools (imgw-bench, bench-peer): the
 * group plan, the payload head that carries a message's index and publish
 * time, whole
 * reads and writes on the pipes between parent and workers, the open-file
 * limit, CPU time from getrusage(), and the latency lines of the summary.
 */
#ifndef IMGW_BENCHRUN_H
#define IMGW_BENCHRUN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>

#include "benchstat.h"

/* A payload starts with "imgwbench:<10-digit index>:<19-digit ns>". */
#define BENCHRUN_PAYLOAD_TAG "imgwbench:"
#define BENCHRUN_PAYLOAD_TAG_LEN 10
#define BENCHRUN_PAYLOAD_HEAD_LEN (BENCHRUN_PAYLOAD_TAG_LEN + 10 + 1 + 19)

/* p50, p99, p99.9 and max of one latency series, in ms. */
#define BENCHRUN_QUANTILES 4

/*
 * Sizes group k (1-based rank) of groups at members * k^-s / H(groups, s),
 * at least 2, so the sizes follow Zipf's law and add up to about members.
 * One group gets all members. Returns the sum of the sizes.
 */
int benchrun_plan_sizes(int *group_size, int groups, int members, double s);
/* Lays out the members group by group: member_group[i] is member i's
 * group. */
void benchrun_plan_members(int *member_group, const int *group_size,
			   int groups);
/* Picks the group of each message with srand(seed) and rand() of the C
 * library, so the same seed gives the same targets in both tools. With one
 * group, every message goes to group 0 and rand() is not called. */
void benchrun_plan_messages(int *msg_group, int messages, int groups,
			    unsigned int seed);

/* Writes the payload head of message index published at pub_ns
 * (CLOCK_REALTIME) into the first BENCHRUN_PAYLOAD_HEAD_LEN bytes of out,
 * without a NUL. */
void benchrun_payload_stamp(char *out, int index, uint64_t pub_ns);
/* Parses a payload head. Returns 0, or -EINVAL when p does not start with
 * one. */
int benchrun_payload_parse(const uint8_t *p, size_t len, uint64_t *index,
			   uint64_t *pub_ns);

/* Writes len bytes to fd, waiting while a non-blocking fd is full.
 * Returns 0 or a negative errno. */
int benchrun_write_full(int fd, const void *data, size_t len);
/* Reads len bytes from the blocking fd, waiting at most timeout_sec for
 * each chunk, or for ever when timeout_sec < 0. Returns 0, -ETIMEDOUT,
 * -ECONNRESET at end of file, or another negative errno. */
int benchrun_read_full(int fd, void *data, size_t len, int timeout_sec);

/* Raises the soft open-file limit to the hard one. Returns 0, -EMFILE
 * after printing to stderr (prefixed with program) when per_worker members
 * and 64 more descriptors do not fit, or the negative errno of a failed
 * getrlimit() or setrlimit(). */
int benchrun_raise_nofile(const char *program, int per_worker);
/* Returns the user and system CPU time of r in microseconds. */
uint64_t benchrun_rusage_us(const struct rusage *r);
/* Returns a / n, or 0 when n is 0. */
double benchrun_per(uint64_t a, uint64_t n);

/* Fills lat with the quantiles of the per-delivery histogram and last with
 * those of the last_n sorted last-member latencies, all in ms. */
void benchrun_quantiles(const struct benchstat_hist *hist,
			const uint64_t *last_sorted, uint64_t last_n,
			double lat[BENCHRUN_QUANTILES],
			double last[BENCHRUN_QUANTILES]);
/* Prints the latency table of the summary: a header, the per-delivery
 * line and the last-member line. */
void benchrun_print_latency(FILE *out, const double lat[BENCHRUN_QUANTILES],
			    uint64_t samples,
			    const double last[BENCHRUN_QUANTILES],
			    uint64_t messages);
/* Opens path for appending a CSV row and writes header when the file is
 * new. Returns the stream, or NULL with errno set. */
FILE *benchrun_csv_open(const char *path, const char *header);

#endif

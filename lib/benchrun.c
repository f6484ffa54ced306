// SPDX-License-Identifier: MIT
/*
 * Run helpers shared by the benchmark tools; see benchrun.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchrun.h"

int benchrun_plan_sizes(int *group_size, int groups, int members, double s)
{
	double h = 0;
	int sum = 0;

	if (groups == 1) {
		group_size[0] = members;
		return members;
	}
	for (int k = 1; k <= groups; k++)
		h += pow(k, -s);
	for (int k = 0; k < groups; k++) {
		int size = (int)lround(members * pow(k + 1, -s) / h);

		group_size[k] = size < 2 ? 2 : size;
		sum += group_size[k];
	}
	return sum;
}

void benchrun_plan_members(int *member_group, const int *group_size,
			   int groups)
{
	for (int k = 0, i = 0; k < groups; k++) {
		for (int j = 0; j < group_size[k]; j++)
			member_group[i++] = k;
	}
}

void benchrun_plan_messages(int *msg_group, int messages, int groups,
			    unsigned int seed)
{
	if (groups == 1) {
		memset(msg_group, 0, (size_t)messages * sizeof(*msg_group));
		return;
	}
	srand(seed);
	for (int i = 0; i < messages; i++)
		msg_group[i] = rand() % groups;
}

void benchrun_payload_stamp(char *out, int index, uint64_t pub_ns)
{
	char head[BENCHRUN_PAYLOAD_HEAD_LEN + 1];

	snprintf(head, sizeof(head), BENCHRUN_PAYLOAD_TAG "%010d:%019" PRIu64,
		 index, pub_ns);
	memcpy(out, head, BENCHRUN_PAYLOAD_HEAD_LEN);
}

static int parse_digits(const uint8_t *p, int n, uint64_t *out)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return 0;
}

int benchrun_payload_parse(const uint8_t *p, size_t len, uint64_t *index,
			   uint64_t *pub_ns)
{
	if (len < BENCHRUN_PAYLOAD_HEAD_LEN ||
	    memcmp(p, BENCHRUN_PAYLOAD_TAG, BENCHRUN_PAYLOAD_TAG_LEN) ||
	    p[BENCHRUN_PAYLOAD_TAG_LEN + 10] != ':')
		return -EINVAL;
	if (parse_digits(p + BENCHRUN_PAYLOAD_TAG_LEN, 10, index) < 0)
		return -EINVAL;
	return parse_digits(p + BENCHRUN_PAYLOAD_TAG_LEN + 11, 19, pub_ns);
}

int benchrun_write_full(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			poll(&pfd, 1, 1000);
			continue;
		}
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int benchrun_read_full(int fd, void *data, size_t len, int timeout_sec)
{
	int timeout_ms = timeout_sec < 0 ? -1 : timeout_sec * 1000;
	uint8_t *p = data;

	while (len > 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (timeout_ms >= 0 && poll(&pfd, 1, timeout_ms) == 0)
			return -ETIMEDOUT;
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int benchrun_raise_nofile(const char *program, int per_worker)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)per_worker + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			return -errno;
	}
	if (rl.rlim_cur < need) {
		fprintf(stderr, "%s: %d members per worker need %llu open files, the limit is %llu: raise --workers\n",
			program, per_worker, (unsigned long long)need,
			(unsigned long long)rl.rlim_cur);
		return -EMFILE;
	}
	return 0;
}

uint64_t benchrun_rusage_us(const struct rusage *r)
{
	return (uint64_t)(r->ru_utime.tv_sec + r->ru_stime.tv_sec) * 1000000ULL +
	       (uint64_t)(r->ru_utime.tv_usec + r->ru_stime.tv_usec);
}

double benchrun_per(uint64_t a, uint64_t n)
{
	return n ? (double)a / (double)n : 0;
}

void benchrun_quantiles(const struct benchstat_hist *hist,
			const uint64_t *last_sorted, uint64_t last_n,
			double lat[BENCHRUN_QUANTILES],
			double last[BENCHRUN_QUANTILES])
{
	static const double q[BENCHRUN_QUANTILES] = { 0.50, 0.99, 0.999, 1.0 };

	for (int i = 0; i < BENCHRUN_QUANTILES; i++) {
		lat[i] = benchstat_hist_quantile_ms(hist, q[i]);
		last[i] = benchstat_sorted_quantile_ms(last_sorted, last_n, q[i]);
	}
}

void benchrun_print_latency(FILE *out, const double lat[BENCHRUN_QUANTILES],
			    uint64_t samples,
			    const double last[BENCHRUN_QUANTILES],
			    uint64_t messages)
{
	fprintf(out, "  latency (ms)                 p50      p99    p99.9      max\n");
	fprintf(out, "  per delivery           %8.3f %8.3f %8.3f %8.3f  (%" PRIu64 " samples)\n",
		lat[0], lat[1], lat[2], lat[3], samples);
	fprintf(out, "  last member            %8.3f %8.3f %8.3f %8.3f  (%" PRIu64 " messages)\n",
		last[0], last[1], last[2], last[3], messages);
}

FILE *benchrun_csv_open(const char *path, const char *header)
{
	FILE *out = fopen(path, "ae");

	if (out && ftell(out) == 0)
		fputs(header, out);
	return out;
}

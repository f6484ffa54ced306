/* SPDX-License-Identifier: MIT */
/*
 * Login-failure guard: counts failed logins per source address and, when a
 * source fails --block-after times within --block-window seconds, adds its
 * /32 or /128 with an expiry to the XDP guard's pinned blocklist maps
 * (imgw_block_v4, imgw_block_v6), so the kernel drops its packets before
 * they reach the gateway. The counting part (struct guard_table) has no
 * BPF or gateway dependency, so unit tests drive it with their own clock.
 */
#ifndef IMGW_GUARD_H
#define IMGW_GUARD_H

#include <stdint.h>
#include <sys/socket.h>

#define GUARD_MAX_SOURCES 4096

struct evbuffer;
struct gateway;
struct conn;

/* A source address; IPv4 (and IPv4-mapped IPv6) uses addr[0..3]. */
struct guard_source {
	uint8_t family;         /* 4 or 6 */
	uint8_t addr[16];
};

struct guard_table;

/*
 * Creates a table that reports a source once it has failed threshold times
 * within window_ns, and tracks at most capacity sources, forgetting the
 * least recently failed one first. Returns NULL with errno set.
 */
struct guard_table *guard_table_new(unsigned int threshold, uint64_t window_ns,
				    unsigned int capacity);
void guard_table_free(struct guard_table *t);

/*
 * Records one failure of src at now_ns. Returns 1 when this failure reaches
 * the threshold (the source's count then starts again from 0), 0 when it
 * does not, or -ENOMEM. *failures gets the count including this failure.
 */
int guard_table_fail(struct guard_table *t, const struct guard_source *src,
		     uint64_t now_ns, unsigned int *failures);

/* Failures of src counted in its current window at now_ns (0 if unknown). */
unsigned int guard_table_failures(const struct guard_table *t,
				  const struct guard_source *src,
				  uint64_t now_ns);
unsigned int guard_table_size(const struct guard_table *t);

/* Fills src from a socket address; returns -EAFNOSUPPORT for other families. */
int guard_source_from_sockaddr(struct guard_source *src,
			       const struct sockaddr *sa);
int guard_source_is_loopback(const struct guard_source *src);

struct guard_settings {
	unsigned int block_after;       /* failures; 0 disables the guard */
	unsigned int block_window;      /* seconds */
	unsigned int block_ttl;         /* seconds a blocklist entry lasts */
};

struct guard_stats {
	uint64_t failures;              /* failed logins counted */
	uint64_t blocked;               /* sources added to the blocklist */
	uint64_t skipped_loopback;      /* over the limit, loopback: not blocked */
	uint64_t skipped_no_map;        /* over the limit, no pinned map */
	uint64_t map_errors;            /* over the limit, map update failed */
};

struct guard;

/*
 * Creates a guard. It opens the blocklist maps pinned in pin_dir; when they
 * are missing it counts only and logs that once. Returns NULL with errno
 * set on out-of-memory; a guard with block_after 0 counts nothing.
 */
struct guard *guard_new(const struct guard_settings *settings,
			const char *pin_dir);
void guard_free(struct guard *g);

/*
 * Records a failed login from sa at CLOCK_MONOTONIC now_ns and blocks the
 * source when it reaches the limit. Returns 1 when the source was added to
 * the blocklist, 0 otherwise, or a negative errno.
 */
int guard_note_failure(struct guard *g, const struct sockaddr *sa,
		       uint64_t now_ns);
const struct guard_stats *guard_get_stats(const struct guard *g);
int guard_can_block(const struct guard *g);

/* Gateway glue: gw->guard from gw->cfg, a failed login on c, metrics. */
int guard_start(struct gateway *gw);
void guard_stop(struct gateway *gw);
void guard_login_failed(struct gateway *gw, struct conn *c);
void guard_metrics(struct gateway *gw, struct evbuffer *out);

#endif

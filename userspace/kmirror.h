/* SPDX-License-Identifier: MIT */
/*
 * The gateway's use of the kernel fan-out engine (kpath.h): opening it at
 * start by the kernel_path setting, mirroring the super-session caches into
 * its BPF maps through the sess_cache hooks, sending SUPER broadcasts through
 * it for members with an empty output buffer, and its counters. Every
 * function takes gw->kmirror, which is NULL when the kernel path is off.
 */
#ifndef IMGW_KMIRROR_H
#define IMGW_KMIRROR_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "conn.h"
#include "deliver.h"
#include "gateway.h"

/* Recipients a broadcast moved from the kernel path to the userspace path. */
enum kmirror_reason {
	KMIRROR_MOVED_OUTPUT_PENDING,	/* userspace output buffer not empty */
	KMIRROR_MOVED_NOT_MIRRORED,	/* socket never added to the sockhash */
	KMIRROR_MOVED_NOT_IN_MAP,	/* the kernel found no socket or member */
	KMIRROR_MOVED_PARTIAL,		/* kernel queued part; rest resumed */
	KMIRROR_MOVED_FULL,		/* socket buffer full, nothing queued */
	KMIRROR_MOVED_CTL_BUSY,		/* control socket took no more bytes */
	KMIRROR_MOVED_TOO_BIG,		/* frame over KPATH_MAX_FRAME */
	KMIRROR_MOVED_ERROR,		/* map or sendmmsg failure */
	KMIRROR_MOVED_MAX,
};

struct kmirror_stats {
	uint64_t broadcasts_kernel;	/* SUPER broadcasts with a kernel call */
	uint64_t broadcasts_user;	/* SUPER broadcasts without one */
	uint64_t deliveries_kernel;	/* whole frames queued by the kernel */
	uint64_t deliveries_user;	/* frames or rests queued in userspace */
	uint64_t moved[KMIRROR_MOVED_MAX];
	uint64_t errors;		/* failed kpath_broadcast() calls */
	uint64_t mirror_ops;		/* map updates and deletes tried */
	uint64_t mirror_failures;	/* of those, the ones that failed */
	uint64_t sockets;		/* sockets in the sockhash now */
};

struct kpath;
struct event;

/*
 * Gateways on one host share the pinned maps and number their connections
 * from 1 each, so a map key is the conn id under a tag of the gateway's
 * control slot in its top 16 bits.
 */
#define KMIRROR_CONN_BITS 48
#define KMIRROR_CONN_MASK ((UINT64_C(1) << KMIRROR_CONN_BITS) - 1)

struct kmirror {
	struct kpath *kp;
	uint64_t key_tag;
	/* Reads the copies the kernel could not deliver (kpath_drain). */
	struct event *drain_ev;
	struct kmirror_stats stats;
	/* Scratch arrays of one broadcast, grown to the largest cache. */
	size_t cap;
	uint64_t *ids;
	uint32_t *sent;
	struct conn **kernel;
	struct conn **user;
};

enum kmirror_mode {
	KMIRROR_OFF = 0,
	KMIRROR_AUTO,
	KMIRROR_ON,
};

/* Returns "off", "auto" or "on". */
const char *kmirror_mode_name(int mode);
/* Parses "off", "auto" or "on". Returns the mode or -EINVAL. */
int kmirror_mode_parse(const char *text);

/*
 * Opens the kernel path by gw->cfg.kernel_path and installs the cache hooks.
 * Must run before the first cache change. Returns 0 (also when the kernel
 * path stays off, saying why in one log line), or a negative errno when
 * the mode is "on" and the pinned maps cannot be used.
 */
int kmirror_start(struct gateway *gw);
void kmirror_stop(struct gateway *gw);

/* Wraps kp, which the kmirror then owns. Returns NULL with errno set. */
struct kmirror *kmirror_new(struct kpath *kp);
void kmirror_free(struct kmirror *km);
/* Returns the map key of conn_id: see KMIRROR_CONN_BITS. */
uint64_t kmirror_key(const struct kmirror *km, uint64_t conn_id);

/* Hook table that mirrors a sess_cache into the maps; arg is a kmirror. */
extern const struct sess_cache_hooks kmirror_hooks;

/*
 * Takes c's socket out of the sockhash when it is there. The gateway calls
 * it when c starts closing and when c is freed.
 */
void kmirror_sock_release(struct kmirror *km, struct conn *c);

/*
 * Queues sf on the n connections: through the kernel for those whose output
 * buffer is empty, through their output buffers for the others and for the
 * rest of a partial kernel write. Returns how many connections got it.
 */
size_t kmirror_broadcast(struct gateway *gw, uint64_t session_id,
			 struct shared_frame *sf, struct conn **conns,
			 size_t n);

/* Appends the kernel path's Prometheus lines. */
void kmirror_metrics(struct gateway *gw, struct evbuffer *out);
/* Returns the state shown by GET /v1/kpath. */
json_t *kmirror_state_json(struct gateway *gw);

#endif

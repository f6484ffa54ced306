/* SPDX-License-Identifier: MIT */
/*
 * The gateway's process-wide state: the event base, settings, connection
 * registry, the link to the business daemon and the counters the admin
 * endpoint exports. One instance lives in main().
 */
#ifndef IMGW_GATEWAY_H
#define IMGW_GATEWAY_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/time.h>

#include "config.h"
#include "histogram.h"
#include "conn.h"
#include "sess_cache.h"

#define GW_BOOT_ID_LEN 16

struct event_base;
struct event;
struct evconnlistener;
struct evhttp;
struct upstream;
struct kmirror;
struct guard;
struct sendring;

struct gw_stats {
	uint64_t connections_accepted;
	uint64_t logins;
	uint64_t login_failures;
	uint64_t frames_received;
	uint64_t frames_sent;
	uint64_t protocol_errors;
	uint64_t kicks;
	uint64_t slow_closes;
	uint64_t socket_writes;
	uint64_t ring_submits;
	uint64_t deliver_frames;
	uint64_t deliveries;
	uint64_t delivery_misses;
	uint64_t upstream_reconnects;
	uint64_t upstream_unavailable;
	uint64_t broadcasts;
	uint64_t cache_deliveries;
	uint64_t super_transitions;
	uint64_t super_acks_sent;
	uint64_t super_acks_dropped;
	uint64_t super_broadcast_without_cache;
	uint64_t session_cache_updates;
};

/* Switches for tests, set by flags or POST /v1/faults. */
struct gw_faults {
	/* Apply super-session transitions but send no SUPER_ACK. */
	int drop_super_acks;
};

struct gateway {
	struct event_base *base;
	struct gw_config cfg;
	char boot_id[GW_BOOT_ID_LEN + 1];
	struct conn_registry conns;
	struct evconnlistener *listener;
	/* Re-enables the listener after an accept error such as EMFILE. */
	struct event *accept_pause_timer;
	/* Connections with output queued in this loop pass, and the event
	 * that writes them all once at the end of the pass. */
	TAILQ_HEAD(conn_flush_list, conn) flush_list;
	struct event *flush_event;
	/* Sends the flush list with one io_uring_enter(); NULL: writev(). */
	struct sendring *sendring;
	/* CLOCK_MONOTONIC ns when the first frame of the pending flush was
	 * queued, and the time from then to the end of each flush. */
	uint64_t flush_queued_ns;
	struct histogram flush_duration;
	struct evhttp *http;
	struct upstream *upstream;
	/* Super-session caches: session id -> local connections. */
	struct sess_cache caches;
	/* Kernel fan-out path; NULL when off or unavailable. */
	struct kmirror *kmirror;
	/* Failed-login counter that feeds the XDP blocklist. */
	struct guard *guard;
	struct gw_faults faults;
	/* Rate limit of the warning on SUPER frames without a cache. */
	uint64_t super_warn_ms;
	uint64_t super_warn_suppressed;
	struct gw_stats stats;
	/* Common timeouts: libevent keeps equal timeouts in O(1) queues. */
	const struct timeval *login_tv;
	const struct timeval *heartbeat_tv;
};

#endif

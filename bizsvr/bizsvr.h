/* SPDX-License-Identifier: MIT */
/*
 * The business daemon's shared state: configuration, store, caches, the
 * gateway links and the counters the admin API exports. One instance lives
 * in main() and every module gets a pointer to it.
 */
#ifndef BIZSVR_BIZSVR_H
#define BIZSVR_BIZSVR_H

#include <stdint.h>

#include <event2/event.h>

#include "config.h"
#include "presence.h"
#include "session.h"
#include "store.h"

struct link_server;
struct admin;
struct superwire;
struct batch;

struct bizsvr_stats {
	uint64_t logins;
	uint64_t login_failures;
	uint64_t messages_stored;
	uint64_t messages_rejected;
	uint64_t messages_duplicate;
	uint64_t store_commits;      /* batches of messages committed */
	uint64_t deliver_frames;
	uint64_t deliveries;         /* device targets over all DELIVER frames */
	uint64_t broadcasts;         /* DELIVER frames of type SUPER */
	uint64_t transition_frames;  /* DELIVERs without a message: retries */
	uint64_t session_cache_frames; /* SESSION_CACHE frames */
	uint64_t syncs;
	uint64_t http_requests;
};

struct bizsvr {
	struct event_base *base;
	const struct bizsvr_config *cfg;
	struct store *store;
	struct session_cache *sessions;
	struct presence *presence;
	struct link_server *links;
	struct admin *admin;
	struct superwire *super;     /* NULL when [super] enabled is false */
	struct batch *batch;         /* messages waiting for their commit */
	struct bizsvr_stats stats;
	char boot_id[33];            /* random hex, new at every start */
};

/* Returns the wall clock time in milliseconds since the epoch. */
uint64_t bizsvr_now_ms(void);

/* Returns CLOCK_MONOTONIC in milliseconds, the clock of the super table. */
int64_t bizsvr_mono_ms(void);

/* Returns whether text is valid UTF-8 of at most max_len bytes without
 * control characters. */
int bizsvr_valid_text(const char *text, size_t max_len);

/* Returns whether id is a usable user, device or node id: 1 to 128 bytes of
 * UTF-8 without control characters. */
int bizsvr_valid_id(const char *id);

#endif

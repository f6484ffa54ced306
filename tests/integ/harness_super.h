/* SPDX-License-Identifier: MIT */
/*
 * Super-session helpers for the integration tests: the bizsvr and gateway
 * admin calls of super sessions, waits on a session's state, and a message
 * log that checks each device's pushes and syncs against every message the
 * daemon acknowledged.
 */
#ifndef IMGW_TEST_HARNESS_SUPER_H
#define IMGW_TEST_HARNESS_SUPER_H

#include "harness.h"

#define SG_MAX_MSGS 2048
/* Stall bound for a session to reach a state: a retry period or two, a
 * rule evaluation, and slow sanitizer builds. */
#define SUPER_WAIT_MS 15000

/* One acknowledged message of the session under test. */
struct sg_msg {
	uint64_t seq;
	const struct tclient *from;     /* NULL for an admin push */
	char sender[64];
	char payload[64];
};

/* Every acknowledged message of one session, in seq order. */
struct sgroup {
	struct harness *h;
	uint64_t sid;
	struct sg_msg msgs[SG_MAX_MSGS];
	size_t n_msgs;
};

void super_sleep_ms(int ms);

/* Sends payload "<tag>-<n>" from t, requires success and logs it. Returns
 * the seq. */
uint64_t sg_send(struct sgroup *g, struct tclient *t, const char *tag);
/* Stores a server message from "system" and logs it. Returns the seq. */
uint64_t sg_push(struct sgroup *g, const char *tag);
/* Returns the seq of the last logged message, or 0. */
uint64_t sg_last_seq(const struct sgroup *g);

/*
 * Checks that t got by push exactly the logged messages with seq in
 * [from_seq, to_seq] that it did not send itself: each once, in seq order,
 * and nothing else of the session. Waits for the last one first.
 */
void sg_check_pushes(struct sgroup *g, struct tclient *t, uint64_t from_seq,
		     uint64_t to_seq);
/*
 * Syncs the session from from_seq to its end on t and checks that the
 * result contains every logged message from from_seq on exactly once, in
 * order, with its payload.
 */
void sg_check_sync(struct sgroup *g, struct tclient *t, uint64_t from_seq);

/* GET /v1/sessions/{sid}/super on bizsvr. */
json_t *super_get(struct harness *h, uint64_t sid);
/* POST /v1/sessions/{sid}/super {"action": action} and returns the reply. */
json_t *super_post(struct harness *h, uint64_t sid, const char *action);
/* Returns the gateways[] element of reply for node_id, or NULL. */
json_t *super_gateway(json_t *reply, const char *node_id);
/* Waits until the session has type ("normal" or "super") and is converged
 * (converged 1) or not (0); returns the matching reply. */
json_t *super_wait(struct harness *h, uint64_t sid, const char *type,
		   int converged, int timeout_ms);
/* Returns the reply once pred(reply, arg) holds, failing with what after
 * timeout_ms. */
json_t *super_wait_for(struct harness *h, uint64_t sid,
		       int (*pred)(json_t *reply, void *arg), void *arg,
		       const char *what, int timeout_ms);

/* Returns gateway gw's cache entry of sid from GET /v1/sessions (a new
 * reference), or NULL when it holds none. */
json_t *gw_cache_get(struct harness *h, int gw, uint64_t sid);
/* Checks that gateway gw's cache of sid contains exactly conns (n ids), at
 * epoch unless epoch is -1. */
void gw_cache_check(struct harness *h, int gw, uint64_t sid,
		    const uint64_t *conns, size_t n, long long epoch);
/* Waits until gateway gw's cache of sid contains n connections. */
void gw_cache_wait_count(struct harness *h, int gw, uint64_t sid, size_t n);
/* Waits until gateway gw has no cache for sid. */
void gw_cache_wait_gone(struct harness *h, int gw, uint64_t sid);
/* Turns gateway gw's drop_super_acks fault on or off at run time. */
void gw_drop_acks(struct harness *h, int gw, int on);

#endif

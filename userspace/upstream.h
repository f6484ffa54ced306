/* SPDX-License-Identifier: MIT */
/*
 * The link to the business daemon: one TCP connection, REGISTER on connect,
 * reconnect with backoff, the table of AUTH requests in flight, and the
 * dispatch of the daemon's frames.
 */
#ifndef IMGW_UPSTREAM_H
#define IMGW_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "gateway.h"
#include "imgw.pb-c.h"

#define UPSTREAM_BACKOFF_MIN_MS 100
#define UPSTREAM_BACKOFF_MAX_MS 5000
/* Seconds to wait for TCP connect and then for REGISTER_RESULT. */
#define UPSTREAM_CONNECT_TIMEOUT_SEC 5
#define UPSTREAM_REGISTER_TIMEOUT_SEC 10

struct upstream;

/* Resolves cfg.bizsvr; the link is opened by upstream_start(). Returns NULL
 * with errno set. */
struct upstream *upstream_new(struct gateway *gw);
void upstream_start(struct upstream *up);
void upstream_free(struct upstream *up);

/* Returns whether REGISTER was accepted on the current link. */
int upstream_is_up(const struct upstream *up);

/*
 * Sends AUTH for c's login and remembers it; sets c->auth_request_id.
 * Returns 0, -ENOTCONN when the link is not up, or -ENOMEM.
 */
int upstream_auth(struct upstream *up, struct conn *c,
		  Imgw__LoginRequest *login, uint32_t client_request_id);

/* Requests one connection may have forwarded and not yet answered. */
#define UPSTREAM_MAX_REQUESTS_PER_CONN 256

/*
 * Sends a client's SEND or SYNC body as UPSTREAM and records it until its
 * REPLY, so that a link drop answers it with ERROR_UNAVAILABLE. session_id
 * and client_msg_id (NULL for SYNC) go into that answer. Returns 0,
 * -ENOTCONN, -EBUSY when c has UPSTREAM_MAX_REQUESTS_PER_CONN in flight, or
 * -ENOMEM.
 */
int upstream_forward(struct upstream *up, struct conn *c, unsigned int op,
		     uint32_t client_request_id, const uint8_t *body,
		     size_t len, uint64_t session_id,
		     const char *client_msg_id);

/* Forgets the requests in flight of c, which is being freed. */
void upstream_conn_gone(struct upstream *up, struct conn *c);

/* Sends SUPER_ACK for a transition the gateway applied. Returns 0,
 * -ENOTCONN or -ENOMEM. */
int upstream_super_ack(struct upstream *up, uint64_t session_id,
		       uint32_t epoch, Imgw__SessionType type, uint32_t cached);

/* Sends PRESENCE offline for logged-in connection c, if the link is up. */
void upstream_presence_offline(struct upstream *up, const struct conn *c);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Client frame handling: parsing frames from a client connection, login
 * through the business daemon, heartbeats, forwarding SEND and SYNC
 * upstream, and the daemon's frames that concern one client (AUTH_RESULT,
 * REPLY, KICK_DEVICE).
 */
#ifndef IMGW_USERSPACE_CLIENT_H
#define IMGW_USERSPACE_CLIENT_H

#include <stdint.h>

#include "conn.h"
#include "gateway.h"
#include "imgw.pb-c.h"

struct bufferevent;

/* bufferevent read callback of a client connection (arg is the conn). */
void client_read_cb(struct bufferevent *bev, void *arg);

/* Handles the complete frames buffered on c, the TCP input or the imgw
 * frames of WebSocket messages, while c is not logging in or closing. */
void client_process_input(struct conn *c);

/*
 * Finishes the login of connection conn_id with the daemon's result.
 * Returns 0, or -ENOENT when the connection is gone or no longer waiting
 * for this AUTH (request_id), in which case nothing was sent.
 */
int client_on_auth_result(struct gateway *gw, uint64_t conn_id,
			  uint32_t request_id, uint32_t client_request_id,
			  const Imgw__LoginResult *result);

/* Sends LOGIN_RESULT ERROR_UNAVAILABLE for c's login and closes c. */
void client_login_unavailable(struct conn *c);

/* Queues the client frame a REPLY carries on its connection, if it lives. */
void client_on_reply(struct gateway *gw, const Imgw__Reply *reply);

/* Replies to a SEND or SYNC of c with ERROR_UNAVAILABLE and reason.
 * client_msg_id is NULL for SYNC. */
void client_send_unavailable(struct conn *c, unsigned int op,
			     uint32_t request_id, uint64_t session_id,
			     const char *client_msg_id, const char *reason);

/* Closes c, after its output drains, when the peer half-closed and every
 * request of c has its reply. */
void client_close_if_done(struct conn *c);

/* Kicks the device a KICK_DEVICE names, if its conn id matches. */
void client_on_kick_device(struct gateway *gw, const Imgw__KickDevice *kick);

#endif

// SPDX-License-Identifier: MIT
/*
 * Client frame handling; see client.h. Frames are checked in the order of
 * docs/protocol.md: header (length, version), op, login state, then body.
 * While a login waits for the daemon, reading is paused, so frames a client
 * pipelines behind its LOGIN are handled after the login succeeds.
 */
#include <errno.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "client.h"
#include "conn_io.h"
#include "guard.h"
#include "log.h"
#include "pbcheck.h"
#include "upstream.h"
#include "wire.h"
#include "ws.h"

static const char unavailable_text[] = "business daemon unavailable";

/* Sends ERROR with code, logs what was wrong, and closes c after it. */
static void client_protocol_error(struct conn *c,
				  const struct frame_header *hdr,
				  Imgw__ErrorCode code, const char *what)
{
	Imgw__Error error = IMGW__ERROR__INIT;
	const char *op_name = frame_op_name(hdr->op);

	c->gw->stats.protocol_errors++;
	pr_warn("conn %llu peer %s: protocol error on op %u (%s) request %u body %u bytes: %s",
		(unsigned long long)c->id, c->peer, hdr->op,
		op_name ? op_name : "unknown", hdr->request_id, hdr->body_len,
		what);
	error.code = code;
	error.text = (char *)what;
	conn_send(c, OP_ERROR, hdr->request_id, &error.base);
	conn_close(c, "protocol error", 1);
}

void client_close_if_done(struct conn *c)
{
	if (c->peer_eof && c->state == CONN_LOGGED_IN && !c->n_requests)
		conn_close(c, "peer closed", 1);
}

static void client_login_reply(struct conn *c, uint32_t request_id,
			       Imgw__ErrorCode code, const char *reason)
{
	Imgw__LoginResult result = IMGW__LOGIN_RESULT__INIT;

	result.code = code;
	result.reason = (char *)reason;
	conn_send(c, OP_LOGIN_RESULT, request_id, &result.base);
}

static void client_login_fail(struct conn *c, uint32_t request_id,
			      Imgw__ErrorCode code, const char *reason)
{
	c->gw->stats.login_failures++;
	/* Only failures caused by the client count toward blocking it. */
	if (code == IMGW__ERROR_CODE__ERROR_AUTH_FAILED ||
	    code == IMGW__ERROR_CODE__ERROR_BAD_REQUEST)
		guard_login_failed(c->gw, c);
	pr_info("conn %llu peer %s user %s device %s: login failed (code %d): %s",
		(unsigned long long)c->id, c->peer,
		c->user_id ? c->user_id : "-",
		c->device_id ? c->device_id : "-", code, reason);
	client_login_reply(c, request_id, code, reason);
	conn_close(c, "login failed", 1);
}

void client_login_unavailable(struct conn *c)
{
	c->gw->stats.upstream_unavailable++;
	c->auth_request_id = 0;
	client_login_fail(c, c->login_request_id, IMGW__ERROR_CODE__ERROR_UNAVAILABLE,
			  unavailable_text);
}

static void client_handle_login(struct conn *c, const struct frame_header *hdr,
				const uint8_t *body)
{
	Imgw__LoginRequest *req;
	int err;

	if (c->state != CONN_NEW) {
		client_login_reply(c, hdr->request_id,
				   IMGW__ERROR_CODE__ERROR_BAD_REQUEST,
				   "already logged in");
		return;
	}
	req = imgw__login_request__unpack(NULL, hdr->body_len, body);
	if (!req) {
		client_protocol_error(c, hdr, IMGW__ERROR_CODE__ERROR_BAD_BODY,
				      "LOGIN body does not decode as LoginRequest");
		return;
	}
	c->login_request_id = hdr->request_id;
	/* Checked before conn_set_device(): every later log line prints
	 * the ids. */
	if (!text_is_printable(req->user_id, CONN_MAX_ID_LEN) ||
	    !text_is_printable(req->device_id, CONN_MAX_ID_LEN) ||
	    !text_is_printable(req->platform, CONN_MAX_ID_LEN))
		err = -EINVAL;
	else
		err = conn_set_device(c, req->user_id, req->device_id,
				      req->platform);
	if (err == -EINVAL) {
		client_login_fail(c, hdr->request_id,
				  IMGW__ERROR_CODE__ERROR_BAD_REQUEST,
				  "user id and device id must be 1 to 128 bytes, platform at most 128, all UTF-8 without control characters");
	} else if (err) {
		client_login_fail(c, hdr->request_id,
				  IMGW__ERROR_CODE__ERROR_INTERNAL,
				  "out of memory");
	} else {
		err = upstream_auth(c->gw->upstream, c, req, hdr->request_id);
		if (err == -ENOTCONN) {
			client_login_unavailable(c);
		} else if (err) {
			client_login_fail(c, hdr->request_id,
					  IMGW__ERROR_CODE__ERROR_INTERNAL,
					  strerror(-err));
		} else {
			c->state = CONN_LOGGING_IN;
			bufferevent_disable(c->bev, EV_READ);
		}
	}
	imgw__login_request__free_unpacked(req, NULL);
}

void client_send_unavailable(struct conn *c, unsigned int op,
			     uint32_t request_id, uint64_t session_id,
			     const char *client_msg_id, const char *reason)
{
	c->gw->stats.upstream_unavailable++;
	if (op == OP_SEND) {
		Imgw__SendResult res = IMGW__SEND_RESULT__INIT;

		res.code = IMGW__ERROR_CODE__ERROR_UNAVAILABLE;
		res.reason = (char *)reason;
		res.session_id = session_id;
		if (client_msg_id)
			res.client_msg_id = (char *)client_msg_id;
		conn_send(c, OP_SEND_RESULT, request_id, &res.base);
	} else {
		Imgw__SyncResult res = IMGW__SYNC_RESULT__INIT;

		res.code = IMGW__ERROR_CODE__ERROR_UNAVAILABLE;
		res.reason = (char *)reason;
		res.session_id = session_id;
		conn_send(c, OP_SYNC_RESULT, request_id, &res.base);
	}
	client_close_if_done(c);
}

/* Unpacks a SEND or SYNC body; the session id and client message id point
 * into *msg, which the caller frees. */
static ProtobufCMessage *client_unpack_request(const struct frame_header *hdr,
					       const uint8_t *body,
					       uint64_t *session_id,
					       const char **client_msg_id)
{
	Imgw__SendRequest *send;
	Imgw__SyncRequest *sync;

	*client_msg_id = NULL;
	if (hdr->op == OP_SEND) {
		send = imgw__send_request__unpack(NULL, hdr->body_len, body);
		if (!send)
			return NULL;
		*session_id = send->session_id;
		*client_msg_id = send->client_msg_id;
		return &send->base;
	}
	sync = imgw__sync_request__unpack(NULL, hdr->body_len, body);
	if (!sync)
		return NULL;
	*session_id = sync->session_id;
	return &sync->base;
}

static void client_forward(struct conn *c, const struct frame_header *hdr,
			   const uint8_t *body)
{
	const char *client_msg_id;
	ProtobufCMessage *msg;
	uint64_t session_id;
	int err;

	msg = client_unpack_request(hdr, body, &session_id, &client_msg_id);
	if (!msg) {
		client_protocol_error(c, hdr, IMGW__ERROR_CODE__ERROR_BAD_BODY,
				      hdr->op == OP_SEND ?
				      "SEND body does not decode as SendRequest" :
				      "SYNC body does not decode as SyncRequest");
		return;
	}
	err = upstream_forward(c->gw->upstream, c, hdr->op, hdr->request_id,
			       body, hdr->body_len, session_id, client_msg_id);
	if (err == -ENOTCONN) {
		client_send_unavailable(c, hdr->op, hdr->request_id,
					session_id, client_msg_id,
					unavailable_text);
	} else if (err == -EBUSY) {
		pr_warn("conn %llu peer %s: %s request %u rejected: %u requests in flight",
			(unsigned long long)c->id, c->peer,
			frame_op_name(hdr->op), hdr->request_id,
			c->n_requests);
		client_send_unavailable(c, hdr->op, hdr->request_id,
					session_id, client_msg_id,
					"too many requests in flight");
	} else if (err) {
		pr_warn("conn %llu peer %s: forwarding %s request %u upstream failed: %s",
			(unsigned long long)c->id, c->peer,
			frame_op_name(hdr->op), hdr->request_id,
			strerror(-err));
	}
	protobuf_c_message_free_unpacked(msg, NULL);
}

/* Returns whether no string field of the body of a LOGIN, SEND or SYNC
 * contains a NUL byte, which protobuf-c would cut the string at. */
static int client_strings_valid(const struct frame_header *hdr,
				const uint8_t *body)
{
	const ProtobufCMessageDescriptor *desc;

	if (hdr->op == OP_LOGIN)
		desc = &imgw__login_request__descriptor;
	else if (hdr->op == OP_SEND)
		desc = &imgw__send_request__descriptor;
	else if (hdr->op == OP_SYNC)
		desc = &imgw__sync_request__descriptor;
	else
		return 1;
	return pb_check_strings(desc, body, hdr->body_len, 0) == 0;
}

static void client_handle_frame(struct conn *c, const struct frame_header *hdr,
				const uint8_t *body)
{
	if (!frame_op_name(hdr->op) || !frame_op_from_client(hdr->op)) {
		client_protocol_error(c, hdr, IMGW__ERROR_CODE__ERROR_UNKNOWN_OP,
				      "unknown op or op not allowed from clients");
		return;
	}
	if (hdr->op != OP_LOGIN && c->state != CONN_LOGGED_IN) {
		client_protocol_error(c, hdr, IMGW__ERROR_CODE__ERROR_NOT_LOGGED_IN,
				      "frame before login");
		return;
	}
	if (c->state == CONN_LOGGED_IN)
		conn_touch(c);
	if (!client_strings_valid(hdr, body)) {
		client_protocol_error(c, hdr, IMGW__ERROR_CODE__ERROR_BAD_BODY,
				      "string field contains a NUL byte or the body is malformed");
		return;
	}

	switch (hdr->op) {
	case OP_LOGIN:
		client_handle_login(c, hdr, body);
		break;
	case OP_HEARTBEAT:
		conn_send(c, OP_HEARTBEAT_ACK, hdr->request_id, NULL);
		break;
	case OP_SEND:
	case OP_SYNC:
		client_forward(c, hdr, body);
		break;
	}
}

static void client_reject_header(struct conn *c,
				 const struct frame_header *hdr, int status)
{
	if (status == FRAME_TOO_LARGE)
		client_protocol_error(c, hdr,
				      IMGW__ERROR_CODE__ERROR_FRAME_TOO_LARGE,
				      "frame body larger than max_frame");
	else if (status == FRAME_BAD_VERSION)
		client_protocol_error(c, hdr, IMGW__ERROR_CODE__ERROR_BAD_VERSION,
				      "unsupported protocol version");
	else
		client_protocol_error(c, hdr, IMGW__ERROR_CODE__ERROR_BAD_FRAME,
				      frame_status_str(status));
}

void client_process_input(struct conn *c)
{
	struct evbuffer *in = c->ws ? ws_frame_input(c) :
				      bufferevent_get_input(c->bev);
	size_t max_frame = c->gw->cfg.max_frame;
	struct frame_header hdr;
	const uint8_t *body;
	int rc;

	while (c->state == CONN_NEW || c->state == CONN_LOGGED_IN) {
		rc = wire_peek(in, max_frame, &hdr);
		if (rc == 0)
			return;
		if (rc < 0) {
			client_reject_header(c, &hdr, rc);
			return;
		}
		c->gw->stats.frames_received++;
		body = wire_body(in, &hdr);
		if (!body) {
			pr_warn("conn %llu peer %s: out of memory reading a frame",
				(unsigned long long)c->id, c->peer);
			conn_close(c, "out of memory", 0);
			return;
		}
		client_handle_frame(c, &hdr, body);
		wire_consume(in, &hdr);
	}
}

/* Makes c a WebSocket connection when its first bytes are an upgrade
 * request. Returns whether to stop: wait for more bytes, or c closed. */
static int client_start_ws(struct conn *c, struct evbuffer *in)
{
	int rc = ws_is_upgrade(in);

	if (rc == -EAGAIN)
		return 1;
	if (rc == 0)
		return 0;
	if (rc > 0)
		rc = ws_attach(c);
	if (rc < 0) {
		pr_warn("conn %llu peer %s: starting a WebSocket failed: %s",
			(unsigned long long)c->id, c->peer, strerror(-rc));
		conn_close(c, "out of memory", 0);
		return 1;
	}
	return 0;
}

void client_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->state == CONN_CLOSING) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if (!c->ws && c->state == CONN_NEW && client_start_ws(c, in))
		return;
	if (c->ws) {
		ws_read(c);
		return;
	}
	client_process_input(c);
}

static void client_kick_replaced(struct conn *old, const struct conn *c)
{
	pr_info("conn %llu peer %s user %s device %s: replaced by conn %llu peer %s, kicking",
		(unsigned long long)old->id, old->peer, old->user_id,
		old->device_id, (unsigned long long)c->id, c->peer);
	conn_kick(old, "duplicate login");
}

static void client_login_succeeded(struct conn *c, uint32_t request_id,
				   const Imgw__LoginResult *result)
{
	Imgw__LoginResult reply = *result;
	struct conn *old;

	old = conn_registry_bind_device(&c->gw->conns, c);
	if (old)
		client_kick_replaced(old, c);
	c->state = CONN_LOGGED_IN;
	c->gw->stats.logins++;
	pr_debug("conn %llu peer %s user %s device %s platform %s logged in",
		 (unsigned long long)c->id, c->peer, c->user_id, c->device_id,
		 c->platform);
	reply.conn_id = c->id;
	if (conn_send(c, OP_LOGIN_RESULT, request_id, &reply.base) < 0)
		return;
	conn_touch(c);
	if (!c->peer_eof)
		bufferevent_enable(c->bev, EV_READ);
	/* Frames pipelined behind LOGIN are buffered already: no read event
	 * will fire for them. */
	client_process_input(c);
	client_close_if_done(c);
}

int client_on_auth_result(struct gateway *gw, uint64_t conn_id,
			  uint32_t request_id, uint32_t client_request_id,
			  const Imgw__LoginResult *result)
{
	struct conn *c = conn_registry_find(&gw->conns, conn_id);

	if (!c || c->state != CONN_LOGGING_IN ||
	    c->auth_request_id != request_id)
		return -ENOENT;
	c->auth_request_id = 0;
	if (!result) {
		client_login_fail(c, client_request_id,
				  IMGW__ERROR_CODE__ERROR_INTERNAL,
				  "business daemon sent no login result");
		return 0;
	}
	if (result->code != IMGW__ERROR_CODE__ERROR_NONE) {
		client_login_fail(c, client_request_id, result->code,
				  result->reason ? result->reason : "");
		return 0;
	}
	client_login_succeeded(c, client_request_id, result);
	return 0;
}

void client_on_reply(struct gateway *gw, const Imgw__Reply *reply)
{
	struct conn *c = conn_registry_find(&gw->conns, reply->conn_id);

	if (!c || c->state != CONN_LOGGED_IN) {
		pr_debug("REPLY op %u for conn %llu dropped: connection gone",
			 reply->op, (unsigned long long)reply->conn_id);
		return;
	}
	if (!frame_op_name(reply->op) || reply->op >= OP_REGISTER) {
		pr_warn("REPLY for conn %llu has op %u, which is not a client op; dropped",
			(unsigned long long)reply->conn_id, reply->op);
		return;
	}
	conn_send_raw(c, reply->op, reply->client_request_id,
		      reply->body.data, reply->body.len);
	client_close_if_done(c);
}

void client_on_kick_device(struct gateway *gw, const Imgw__KickDevice *kick)
{
	const Imgw__Device *dev = kick->device;
	const char *reason = kick->reason && *kick->reason ?
			     kick->reason : "removed by server";
	struct conn *c;

	if (!dev || !dev->user_id || !dev->device_id)
		return;
	c = conn_registry_find_device(&gw->conns, dev->user_id,
				      dev->device_id);
	if (!c || (dev->conn_id && dev->conn_id != c->id)) {
		pr_debug("KICK_DEVICE user %s device %s conn %llu: no such connection here",
			 dev->user_id, dev->device_id,
			 (unsigned long long)dev->conn_id);
		return;
	}
	pr_info("conn %llu peer %s user %s device %s: kicked by business daemon: %s",
		(unsigned long long)c->id, c->peer, c->user_id, c->device_id,
		reason);
	conn_kick(c, reason);
}

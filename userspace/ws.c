// SPDX-License-Identifier: MIT
/*
 * WebSocket connections; see ws.h. The opening handshake is parsed here.
 * wslay parses the client's frames (masking, lengths, fragments, control
 * frames, close codes). It writes its control frames through a send
 * callback that appends them to the connection's output buffer. Data
 * frames from the gateway bypass wslay: each is a binary frame header
 * followed by the imgw frame, appended to the same buffer. Because the send
 * callback always takes every byte, no wslay frame is ever half written, so
 * the two writers cannot interleave inside a frame.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <wslay/wslay.h>

#include "client.h"
#include "conn_io.h"
#include "deliver.h"
#include "log.h"
#include "wire.h"
#include "ws.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* Close reasons are at most 123 bytes: a control frame carries 125. */
#define WS_MAX_CLOSE_REASON 123

struct ws {
	/* NULL until the handshake succeeded. */
	wslay_event_context_ptr ctx;
	/* imgw frames of complete binary messages, for the frame parser. */
	struct evbuffer *frames;
	/* A close frame was appended outside wslay. */
	unsigned close_sent : 1;
};

/* The header fields of an opening handshake that the checks use. */
struct ws_request {
	const char *method;
	const char *target;
	const char *version;
	const char *host;
	const char *upgrade;
	const char *connection;
	const char *key;
	const char *ws_version;
	const char *origin;
	int offers_subprotocol;
};

int ws_attach(struct conn *c)
{
	struct ws *ws = calloc(1, sizeof(*ws));

	if (!ws)
		return -ENOMEM;
	ws->frames = evbuffer_new();
	if (!ws->frames) {
		free(ws);
		return -ENOMEM;
	}
	c->ws = ws;
	return 0;
}

void ws_detach(struct conn *c)
{
	struct ws *ws = c->ws;

	if (!ws)
		return;
	if (ws->ctx)
		wslay_event_context_free(ws->ctx);
	evbuffer_free(ws->frames);
	free(ws);
	c->ws = NULL;
}

struct evbuffer *ws_frame_input(struct conn *c)
{
	return c->ws->frames;
}

size_t ws_frame_header(uint8_t *out, uint64_t payload_len)
{
	out[0] = 0x80 | WSLAY_BINARY_FRAME;
	if (payload_len < 126) {
		out[1] = (uint8_t)payload_len;
		return 2;
	}
	if (payload_len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(payload_len >> 8);
		out[3] = (uint8_t)payload_len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
	return 10;
}

int ws_accept_key(const char *key, char *out)
{
	uint8_t raw[18], digest[SHA_DIGEST_LENGTH];
	char joined[24 + sizeof(WS_GUID)];

	/* 16 bytes encode to 22 base64 characters and "==". */
	if (strlen(key) != 24 || key[22] != '=' || key[23] != '=')
		return -EINVAL;
	if (EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18)
		return -EINVAL;
	snprintf(joined, sizeof(joined), "%s%s", key, WS_GUID);
	SHA1((const unsigned char *)joined, strlen(joined), digest);
	EVP_EncodeBlock((unsigned char *)out, digest, sizeof(digest));
	return 0;
}

/* Returns whether the comma-separated list value contains token, compared
 * without case as HTTP tokens are. */
static int ws_list_has_token(const char *value, const char *token)
{
	size_t len = strlen(token);
	const char *p = value;

	while (p && *p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (strncasecmp(p, token, len) == 0) {
			const char *end = p + len;

			while (*end == ' ' || *end == '\t')
				end++;
			if (*end == ',' || *end == '\0')
				return 1;
		}
		p = strchr(p, ',');
	}
	return 0;
}

/* Returns the value with surrounding spaces and tabs cut, in place. */
static char *ws_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return s;
}

static void ws_request_set(struct ws_request *req, const char *name,
			   const char *value)
{
	if (!strcasecmp(name, "Host"))
		req->host = value;
	else if (!strcasecmp(name, "Upgrade"))
		req->upgrade = value;
	else if (!strcasecmp(name, "Connection"))
		req->connection = value;
	else if (!strcasecmp(name, "Sec-WebSocket-Key"))
		req->key = value;
	else if (!strcasecmp(name, "Sec-WebSocket-Version"))
		req->ws_version = value;
	else if (!strcasecmp(name, "Origin"))
		req->origin = value;
	else if (!strcasecmp(name, "Sec-WebSocket-Protocol") &&
		 ws_list_has_token(value, WS_SUBPROTOCOL))
		req->offers_subprotocol = 1;
}

/*
 * Splits text (the request up to its empty line, NUL-terminated) in place
 * into req. Returns 0, or -EINVAL when the request line or a header line is
 * malformed.
 */
static int ws_parse_request(char *text, struct ws_request *req)
{
	char *line, *next, *colon;

	memset(req, 0, sizeof(*req));
	next = strstr(text, "\r\n");
	if (!next)
		return -EINVAL;
	*next = '\0';
	next += 2;
	req->method = strtok(text, " ");
	req->target = strtok(NULL, " ");
	req->version = strtok(NULL, " ");
	if (!req->version || strtok(NULL, " "))
		return -EINVAL;
	while (*next) {
		line = next;
		next = strstr(line, "\r\n");
		if (!next)
			return -EINVAL;
		/* The empty line that ends the headers. */
		if (next == line)
			break;
		*next = '\0';
		next += 2;
		colon = strchr(line, ':');
		/* Folded lines are obsolete (RFC 9112 section 5.2). */
		if (!colon || colon == line || line[0] == ' ' ||
		    line[0] == '\t' || colon[-1] == ' ')
			return -EINVAL;
		*colon = '\0';
		ws_request_set(req, line, ws_trim(colon + 1));
	}
	return 0;
}

int ws_is_upgrade(struct evbuffer *in)
{
	struct ws_request req;
	struct evbuffer_ptr end;
	uint8_t head[4];
	char *text;
	int upgrade;

	if (evbuffer_copyout(in, head, sizeof(head)) != sizeof(head) ||
	    memcmp(head, "GET ", sizeof(head)))
		return 0;
	end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0 || end.pos + 4 > WS_MAX_REQUEST)
		return evbuffer_get_length(in) < WS_MAX_REQUEST ? -EAGAIN : 0;
	text = malloc((size_t)end.pos + 5);
	if (!text)
		return -ENOMEM;
	evbuffer_copyout(in, text, (size_t)end.pos + 4);
	text[end.pos + 4] = '\0';
	upgrade = ws_parse_request(text, &req) == 0 && req.upgrade &&
		  ws_list_has_token(req.upgrade, "websocket");
	free(text);
	return upgrade;
}

/* Returns whether origin is in the comma-separated allow list. */
static int ws_origin_allowed(const char *list, const char *origin)
{
	return origin && ws_list_has_token(list, origin);
}

/* Sends an HTTP error for a rejected handshake and closes c after it. */
static void ws_reject(struct conn *c, int status, const char *phrase,
		      const char *extra_header, const char *text)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	pr_info("conn %llu peer %s: WebSocket handshake rejected with %d: %s",
		(unsigned long long)c->id, c->peer, status, text);
	evbuffer_add_printf(out,
			    "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n%s\n",
			    status, phrase, strlen(text) + 1,
			    extra_header ? extra_header : "", text);
	conn_close(c, "websocket handshake rejected", 1);
}

/* Checks req as RFC 6455 section 4.2.1 requires. Rejects c and returns -EINVAL
 * when a check fails. */
static int ws_check_request(struct conn *c, const struct ws_request *req)
{
	const char *origins = c->gw->cfg.ws_origins;

	if (strcmp(req->method, "GET")) {
		ws_reject(c, 405, "Method Not Allowed", "Allow: GET\r\n",
			  "the WebSocket handshake must use GET");
	} else if (strcmp(req->version, "HTTP/1.1")) {
		ws_reject(c, 400, "Bad Request", NULL,
			  "the WebSocket handshake must use HTTP/1.1");
	} else if (!req->host || !req->upgrade || !req->connection ||
		   !ws_list_has_token(req->upgrade, "websocket") ||
		   !ws_list_has_token(req->connection, "upgrade")) {
		ws_reject(c, 400, "Bad Request", NULL,
			  "Host, Upgrade: websocket and Connection: Upgrade are required");
	} else if (!req->ws_version || strcmp(req->ws_version, "13")) {
		ws_reject(c, 426, "Upgrade Required",
			  "Sec-WebSocket-Version: 13\r\n",
			  "Sec-WebSocket-Version must be 13");
	} else if (!req->key) {
		ws_reject(c, 400, "Bad Request", NULL,
			  "Sec-WebSocket-Key is missing");
	} else if (origins[0] && !ws_origin_allowed(origins, req->origin)) {
		ws_reject(c, 403, "Forbidden", NULL,
			  "Origin is not in the gateway's --ws-origins list");
	} else {
		return 0;
	}
	return -EINVAL;
}

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf,
			  size_t len, int flags, void *user_data)
{
	struct conn *c = user_data;
	int n = evbuffer_remove(bufferevent_get_input(c->bev), buf, len);

	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	return n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
			  size_t len, int flags, void *user_data)
{
	struct conn *c = user_data;

	if (evbuffer_add(bufferevent_get_output(c->bev), data, len) < 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

/* Queues a close frame through wslay and stops reading further frames. */
static void ws_queue_close(wslay_event_context_ptr ctx, uint16_t code,
			   const char *reason)
{
	wslay_event_queue_close(ctx, code, (const uint8_t *)reason,
				strlen(reason));
	wslay_event_shutdown_read(ctx);
}

/* Rejects what imgw does not accept as soon as wslay reports the frame,
 * which wslay 1.1.1 does with its first payload byte. */
static void ws_frame_start_cb(wslay_event_context_ptr ctx,
			      const struct wslay_event_on_frame_recv_start_arg *arg,
			      void *user_data)
{
	struct conn *c = user_data;

	if (arg->opcode == WSLAY_TEXT_FRAME) {
		pr_info("conn %llu peer %s: WebSocket text message, closing with 1003",
			(unsigned long long)c->id, c->peer);
		ws_queue_close(ctx, WS_CLOSE_UNSUPPORTED_DATA,
			       "imgw takes binary messages only");
	} else if (arg->opcode == WSLAY_CONNECTION_CLOSE &&
		   arg->payload_length == 1) {
		/* A close body is empty or a 2-byte code and a reason. */
		ws_queue_close(ctx, WS_CLOSE_PROTOCOL_ERROR,
			       "close frame with a 1-byte body");
	}
}

/* Returns whether a binary message is exactly one imgw frame. */
static int ws_message_is_frame(const uint8_t *msg, size_t len)
{
	uint32_t body_len;

	if (len < FRAME_HEADER_LEN)
		return 0;
	memcpy(&body_len, msg, sizeof(body_len));
	return ntohl(body_len) == len - FRAME_HEADER_LEN;
}

static void ws_msg_cb(wslay_event_context_ptr ctx,
		      const struct wslay_event_on_msg_recv_arg *arg,
		      void *user_data)
{
	struct conn *c = user_data;

	if (arg->opcode != WSLAY_BINARY_FRAME ||
	    (c->ws->close_sent || wslay_event_get_close_sent(ctx)))
		return;
	if (!ws_message_is_frame(arg->msg, arg->msg_length)) {
		pr_info("conn %llu peer %s: WebSocket message of %zu bytes is not one imgw frame, closing with 1007",
			(unsigned long long)c->id, c->peer, arg->msg_length);
		ws_queue_close(ctx, WS_CLOSE_INVALID_PAYLOAD,
			       "a message must hold exactly one imgw frame");
		return;
	}
	if (evbuffer_add(c->ws->frames, arg->msg, arg->msg_length) < 0)
		ws_queue_close(ctx, WS_CLOSE_INTERNAL_ERROR, "out of memory");
}

static const struct wslay_event_callbacks ws_callbacks = {
	.recv_callback = ws_recv_cb,
	.send_callback = ws_send_cb,
	.on_frame_recv_start_callback = ws_frame_start_cb,
	.on_msg_recv_callback = ws_msg_cb,
};

/* Appends a close frame with code and reason (cut to 123 bytes). */
static void ws_append_close(struct conn *c, uint16_t code, const char *reason)
{
	size_t len = strnlen(reason, WS_MAX_CLOSE_REASON);
	uint8_t frame[4 + WS_MAX_CLOSE_REASON];

	frame[0] = 0x80 | WSLAY_CONNECTION_CLOSE;
	frame[1] = (uint8_t)(2 + len);
	frame[2] = (uint8_t)(code >> 8);
	frame[3] = (uint8_t)code;
	memcpy(frame + 4, reason, len);
	evbuffer_add(bufferevent_get_output(c->bev), frame, 4 + len);
	c->ws->close_sent = 1;
}

/* Closes c with a close frame the gateway writes itself, for errors after
 * which wslay would send a close frame without a code. */
static void ws_fail(struct conn *c, uint16_t code, const char *reason)
{
	pr_info("conn %llu peer %s: closing WebSocket with %u: %s",
		(unsigned long long)c->id, c->peer, code, reason);
	ws_append_close(c, code, reason);
	conn_close(c, "websocket protocol error", 1);
}

void ws_conn_closing(struct conn *c, const char *reason)
{
	struct ws *ws = c->ws;
	uint16_t code = WS_CLOSE_NORMAL;

	if (!ws || !ws->ctx || ws->close_sent ||
	    wslay_event_get_close_sent(ws->ctx))
		return;
	if (!strcmp(reason, "protocol error") ||
	    !strcmp(reason, "login failed"))
		code = WS_CLOSE_POLICY_VIOLATION;
	else if (!strcmp(reason, "out of memory"))
		code = WS_CLOSE_INTERNAL_ERROR;
	ws_append_close(c, code, reason);
}

/* Writes the 101 response and starts the wslay session. Returns 0 or a
 * negative errno. */
static int ws_accept(struct conn *c, const struct ws_request *req,
		     const char *accept)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	int err;

	if (wslay_event_context_server_init(&c->ws->ctx, &ws_callbacks, c))
		return -ENOMEM;
	wslay_event_config_set_max_recv_msg_length(c->ws->ctx,
						   FRAME_HEADER_LEN +
						   c->gw->cfg.max_frame);
	err = evbuffer_add_printf(out,
				  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
				  accept,
				  req->offers_subprotocol ?
				  "Sec-WebSocket-Protocol: " WS_SUBPROTOCOL "\r\n" :
				  "");
	if (err < 0)
		return -ENOMEM;
	pr_debug("conn %llu peer %s: WebSocket handshake done for %s",
		 (unsigned long long)c->id, c->peer, req->target);
	return conn_commit_frame(c);
}

/* Parses and replies to a handshake of head_len bytes at the head of in. */
static int ws_handshake_parse(struct conn *c, struct evbuffer *in,
			      size_t head_len)
{
	struct ws_request req;
	char *text = malloc(head_len + 1);
	char accept[32];
	int err;

	if (!text)
		return -ENOMEM;
	evbuffer_remove(in, text, head_len);
	text[head_len] = '\0';
	if (ws_parse_request(text, &req)) {
		ws_reject(c, 400, "Bad Request", NULL,
			  "malformed HTTP request");
		err = -EINVAL;
	} else if (ws_check_request(c, &req)) {
		err = -EINVAL;
	} else if (ws_accept_key(req.key, accept)) {
		ws_reject(c, 400, "Bad Request", NULL,
			  "Sec-WebSocket-Key must be 16 bytes in base64");
		err = -EINVAL;
	} else {
		err = ws_accept(c, &req, accept);
	}
	free(text);
	return err;
}

/*
 * Handles the opening handshake once its empty line arrived. Returns 1 when
 * the connection is open, 0 when more bytes are needed, or a negative errno
 * after c was rejected or closed.
 */
static int ws_handshake(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr end;
	int err;

	end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0 || end.pos + 4 > WS_MAX_REQUEST) {
		if (evbuffer_get_length(in) < WS_MAX_REQUEST)
			return 0;
		ws_reject(c, 431, "Request Header Fields Too Large", NULL,
			  "the handshake request exceeds 8192 bytes");
		return -EMSGSIZE;
	}
	err = ws_handshake_parse(c, in, (size_t)end.pos + 4);
	if (err == -ENOMEM || err == -ENOBUFS) {
		pr_warn("conn %llu peer %s: answering the WebSocket handshake failed: %s",
			(unsigned long long)c->id, c->peer, strerror(-err));
		conn_close(c, "out of memory", 0);
	}
	return err ? err : 1;
}

/* Sends what wslay queued (pong, close) and commits it. */
static void ws_send_control(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t before = evbuffer_get_length(out);

	if (wslay_event_send(c->ws->ctx)) {
		conn_close(c, "out of memory", 0);
		return;
	}
	if (evbuffer_get_length(out) != before)
		conn_commit_frame(c);
}

/* Feeds the buffered input to wslay, then its frames to the parser. */
static void ws_read_frames(struct conn *c)
{
	wslay_event_context_ptr ctx = c->ws->ctx;
	int rc = wslay_event_recv(ctx);

	if (rc == WSLAY_ERR_CALLBACK_FAILURE) {
		/* wslay saw an invalid frame header: a control frame over
		 * 125 bytes or fragmented, or a length not minimally
		 * encoded. Its own close would carry no code. */
		ws_fail(c, WS_CLOSE_PROTOCOL_ERROR, "invalid WebSocket frame");
		return;
	} else if (rc) {
		ws_fail(c, WS_CLOSE_INTERNAL_ERROR, "out of memory");
		return;
	}
	client_process_input(c);
	if (c->state == CONN_CLOSING)
		return;
	ws_send_control(c);
	if (c->state == CONN_CLOSING || !wslay_event_get_close_sent(ctx))
		return;
	if (wslay_event_get_close_received(ctx))
		conn_close(c, "peer closed websocket", 1);
	else
		conn_close(c, "websocket protocol error", 1);
}

void ws_read(struct conn *c)
{
	if (!c->ws->ctx && ws_handshake(c) <= 0)
		return;
	ws_read_frames(c);
}

int ws_append_frame(struct conn *c, unsigned int op, uint32_t request_id,
		    const ProtobufCMessage *msg, const void *body, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	uint8_t header[WS_MAX_HEADER];
	size_t body_len = msg ? protobuf_c_message_get_packed_size(msg) : len;
	int err;

	if (!c->ws->ctx || c->ws->close_sent ||
	    wslay_event_get_close_sent(c->ws->ctx))
		return -ENOTCONN;
	if (body_len > FRAME_HARD_MAX_BODY)
		return -EMSGSIZE;
	if (evbuffer_add(out, header,
			 ws_frame_header(header, FRAME_HEADER_LEN + body_len)))
		return -ENOMEM;
	if (msg)
		err = wire_append(out, op, request_id, msg);
	else
		err = wire_append_raw(out, op, request_id, body, len);
	if (err) {
		/* The stream contains a header without its payload now. */
		conn_close(c, "out of memory", 0);
		return err;
	}
	return 0;
}

struct shared_frame *ws_shared_frame(struct shared_frame *sf)
{
	struct shared_frame *ws_sf;
	size_t header_len;

	if (sf->ws)
		return sf->ws;
	ws_sf = malloc(sizeof(*ws_sf));
	if (!ws_sf)
		return NULL;
	ws_sf->data = malloc(WS_MAX_HEADER + sf->len);
	if (!ws_sf->data) {
		free(ws_sf);
		errno = ENOMEM;
		return NULL;
	}
	header_len = ws_frame_header(ws_sf->data, sf->len);
	memcpy(ws_sf->data + header_len, sf->data, sf->len);
	ws_sf->len = header_len + sf->len;
	ws_sf->refs = 1;
	ws_sf->ws = NULL;
	sf->ws = ws_sf;
	return ws_sf;
}

/* SPDX-License-Identifier: MIT */
/*
 * WebSocket (RFC 6455) clients on the client port. A connection whose first
 * bytes are "GET " and whose request asks for Upgrade: websocket is a
 * WebSocket client (no imgw frame can start with "GET ", because its
 * body_len would exceed FRAME_HARD_MAX_BODY). After the opening
 * handshake each binary message carries exactly one imgw frame in each
 * direction; wslay parses the client's WebSocket frames and answers ping and
 * close, and the gateway writes its own binary frames, which are unmasked,
 * so one encoded broadcast serves every WebSocket member.
 */
#ifndef IMGW_WS_H
#define IMGW_WS_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <protobuf-c/protobuf-c.h>

#include "conn.h"

/* Subprotocol the gateway selects when the client offers it. */
#define WS_SUBPROTOCOL "imgw.v1"
/* Largest opening handshake request, request line and headers. */
#define WS_MAX_REQUEST 8192
/* Longest header of a binary frame the server sends (no mask). */
#define WS_MAX_HEADER 10

/* Close codes of RFC 6455 section 7.4.1 that the gateway sends. */
enum ws_close_code {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL_ERROR = 1002,
	WS_CLOSE_UNSUPPORTED_DATA = 1003,
	WS_CLOSE_INVALID_PAYLOAD = 1007,
	WS_CLOSE_POLICY_VIOLATION = 1008,
	WS_CLOSE_MESSAGE_TOO_BIG = 1009,
	WS_CLOSE_INTERNAL_ERROR = 1011,
};

struct shared_frame;

/*
 * Returns 1 when the input buffer of a new connection starts with a GET
 * request whose Upgrade header names websocket, 0 when it starts otherwise
 * (an imgw frame, or another HTTP request, which the frame parser rejects
 * as before), -EAGAIN while a GET request has not ended, or -ENOMEM.
 */
int ws_is_upgrade(struct evbuffer *in);

/* Makes c a WebSocket connection before its handshake. Returns 0 or
 * -ENOMEM. */
int ws_attach(struct conn *c);

/* Frees c's WebSocket state; harmless on a TCP connection. */
void ws_detach(struct conn *c);

/* Reads what c's socket delivered: the handshake, then WebSocket frames,
 * whose imgw frames go to the client frame parser. */
void ws_read(struct conn *c);

/* Returns the buffer of imgw frames the client frame parser reads from. */
struct evbuffer *ws_frame_input(struct conn *c);

/*
 * Appends one imgw frame, in a binary WebSocket frame, to c's output: msg
 * packed, or len bytes at body when msg is NULL. The caller commits it with
 * conn_commit_frame(). Returns 0, -ENOTCONN before the handshake or after a
 * close frame, -EMSGSIZE, or -ENOMEM.
 */
int ws_append_frame(struct conn *c, unsigned int op, uint32_t request_id,
		    const ProtobufCMessage *msg, const void *body, size_t len);

/*
 * Queues a close frame with a code that fits reason, when c is open and no
 * close frame was sent yet. conn_close() calls it before it flushes.
 */
void ws_conn_closing(struct conn *c, const char *reason);

/*
 * Returns sf wrapped in a binary WebSocket frame, built on the first call
 * and kept with sf, so every WebSocket member shares one copy. Returns NULL
 * with errno set.
 */
struct shared_frame *ws_shared_frame(struct shared_frame *sf);

/*
 * Writes the header of an unmasked final binary frame with payload_len
 * bytes into out (room for WS_MAX_HEADER bytes). Returns its length.
 */
size_t ws_frame_header(uint8_t *out, uint64_t payload_len);

/*
 * Computes the Sec-WebSocket-Accept value of key (RFC 6455 section 4.2.2)
 * into out, which has room for 29 bytes. Returns 0 or -EINVAL when key is
 * not the base64 form of 16 bytes.
 */
int ws_accept_key(const char *key, char *out);

#endif

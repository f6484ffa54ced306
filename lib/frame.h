/* SPDX-License-Identifier: MIT */
/*
 * Frame header of the imgw wire protocol, shared by the client link and the
 * gateway <-> business daemon link. A frame is a 12-byte header in network
 * byte order followed by body_len bytes of protobuf:
 *
 *   0      4        5      6        8             12
 *   | body_len | version | flags | op | request_id | body ...
 */
#ifndef IMGW_FRAME_H
#define IMGW_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER_LEN 12
#define FRAME_VERSION 1
#define FRAME_DEFAULT_MAX_BODY (64 * 1024)
/* The largest body a peer may announce, whatever the configuration. */
#define FRAME_HARD_MAX_BODY (16 * 1024 * 1024)

enum frame_op {
	/* client <-> gateway */
	OP_LOGIN = 1,
	OP_LOGIN_RESULT = 2,
	OP_HEARTBEAT = 3,
	OP_HEARTBEAT_ACK = 4,
	OP_SEND = 5,
	OP_SEND_RESULT = 6,
	OP_PUSH = 7,
	OP_SYNC = 8,
	OP_SYNC_RESULT = 9,
	OP_KICK = 10,
	OP_ERROR = 11,

	/* gateway <-> business daemon */
	OP_REGISTER = 100,
	OP_REGISTER_RESULT = 101,
	OP_AUTH = 102,
	OP_AUTH_RESULT = 103,
	OP_UPSTREAM = 104,
	OP_REPLY = 105,
	OP_PRESENCE = 106,
	OP_DELIVER = 107,
	OP_KICK_DEVICE = 108,
	OP_SUPER_ACK = 109,
	OP_SESSION_CACHE = 110,
};

struct frame_header {
	uint32_t body_len;
	uint8_t version;
	uint8_t flags;
	uint16_t op;
	uint32_t request_id;
};

enum frame_status {
	FRAME_OK = 0,
	FRAME_NEED_MORE = 1,    /* fewer than FRAME_HEADER_LEN bytes */
	FRAME_BAD_VERSION = -1,
	FRAME_TOO_LARGE = -2,
};

/* Writes hdr into out, which has room for FRAME_HEADER_LEN bytes. */
void frame_header_pack(const struct frame_header *hdr, uint8_t *out);

/*
 * Parses a header from the first len bytes of buf and checks it against
 * max_body. Returns FRAME_OK, FRAME_NEED_MORE or a negative frame_status;
 * hdr is filled whenever at least FRAME_HEADER_LEN bytes were given.
 */
int frame_header_parse(const uint8_t *buf, size_t len, size_t max_body,
		       struct frame_header *hdr);

/* Returns the name of op ("LOGIN", ...) or NULL when op is unknown. */
const char *frame_op_name(unsigned int op);

/* Returns whether a client may send op to the gateway. */
int frame_op_from_client(unsigned int op);

const char *frame_status_str(int status);

#endif

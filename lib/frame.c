// SPDX-License-Identifier: MIT
/* Frame header packing and checks; see frame.h for the layout. */
#include <arpa/inet.h>
#include <string.h>

#include "frame.h"

void frame_header_pack(const struct frame_header *hdr, uint8_t *out)
{
	uint32_t len = htonl(hdr->body_len);
	uint16_t op = htons(hdr->op);
	uint32_t rid = htonl(hdr->request_id);

	memcpy(out, &len, 4);
	out[4] = hdr->version;
	out[5] = hdr->flags;
	memcpy(out + 6, &op, 2);
	memcpy(out + 8, &rid, 4);
}

int frame_header_parse(const uint8_t *buf, size_t len, size_t max_body,
		       struct frame_header *hdr)
{
	uint32_t body_len, rid;
	uint16_t op;

	if (len < FRAME_HEADER_LEN)
		return FRAME_NEED_MORE;

	memcpy(&body_len, buf, 4);
	memcpy(&op, buf + 6, 2);
	memcpy(&rid, buf + 8, 4);
	hdr->body_len = ntohl(body_len);
	hdr->version = buf[4];
	hdr->flags = buf[5];
	hdr->op = ntohs(op);
	hdr->request_id = ntohl(rid);

	if (hdr->version != FRAME_VERSION)
		return FRAME_BAD_VERSION;
	if (max_body > FRAME_HARD_MAX_BODY)
		max_body = FRAME_HARD_MAX_BODY;
	if (hdr->body_len > max_body)
		return FRAME_TOO_LARGE;
	return FRAME_OK;
}

static const char *const op_names[] = {
	[OP_LOGIN] = "LOGIN",
	[OP_LOGIN_RESULT] = "LOGIN_RESULT",
	[OP_HEARTBEAT] = "HEARTBEAT",
	[OP_HEARTBEAT_ACK] = "HEARTBEAT_ACK",
	[OP_SEND] = "SEND",
	[OP_SEND_RESULT] = "SEND_RESULT",
	[OP_PUSH] = "PUSH",
	[OP_SYNC] = "SYNC",
	[OP_SYNC_RESULT] = "SYNC_RESULT",
	[OP_KICK] = "KICK",
	[OP_ERROR] = "ERROR",
	[OP_REGISTER] = "REGISTER",
	[OP_REGISTER_RESULT] = "REGISTER_RESULT",
	[OP_AUTH] = "AUTH",
	[OP_AUTH_RESULT] = "AUTH_RESULT",
	[OP_UPSTREAM] = "UPSTREAM",
	[OP_REPLY] = "REPLY",
	[OP_PRESENCE] = "PRESENCE",
	[OP_DELIVER] = "DELIVER",
	[OP_KICK_DEVICE] = "KICK_DEVICE",
	[OP_SUPER_ACK] = "SUPER_ACK",
	[OP_SESSION_CACHE] = "SESSION_CACHE",
};

const char *frame_op_name(unsigned int op)
{
	if (op >= sizeof(op_names) / sizeof(op_names[0]))
		return NULL;
	return op_names[op];
}

int frame_op_from_client(unsigned int op)
{
	switch (op) {
	case OP_LOGIN:
	case OP_HEARTBEAT:
	case OP_SEND:
	case OP_SYNC:
		return 1;
	default:
		return 0;
	}
}

const char *frame_status_str(int status)
{
	switch (status) {
	case FRAME_OK:
		return "ok";
	case FRAME_NEED_MORE:
		return "incomplete header";
	case FRAME_BAD_VERSION:
		return "unsupported protocol version";
	case FRAME_TOO_LARGE:
		return "frame body larger than the maximum";
	default:
		return "invalid frame";
	}
}

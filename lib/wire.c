// SPDX-License-Identifier: MIT
/* Frames on libevent buffers; see wire.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int wire_append_raw(struct evbuffer *out, unsigned int op,
		    uint32_t request_id, const void *body, size_t len)
{
	struct frame_header hdr = {
		.body_len = (uint32_t)len,
		.version = FRAME_VERSION,
		.op = (uint16_t)op,
		.request_id = request_id,
	};
	uint8_t head[FRAME_HEADER_LEN];

	if (len > FRAME_HARD_MAX_BODY)
		return -EMSGSIZE;
	frame_header_pack(&hdr, head);
	if (evbuffer_add(out, head, sizeof(head)) < 0)
		return -ENOMEM;
	if (len && evbuffer_add(out, body, len) < 0)
		return -ENOMEM;
	return 0;
}

int wire_append(struct evbuffer *out, unsigned int op, uint32_t request_id,
		const ProtobufCMessage *msg)
{
	size_t len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
	struct frame_header hdr = {
		.body_len = (uint32_t)len,
		.version = FRAME_VERSION,
		.op = (uint16_t)op,
		.request_id = request_id,
	};
	struct evbuffer_iovec vec;

	/* No peer accepts a longer body: sending one would only get the whole
	 * link dropped at the receiver. */
	if (len > FRAME_HARD_MAX_BODY)
		return -EMSGSIZE;
	/* Pack straight into the buffer's free space: no temporary copy. */
	if (evbuffer_reserve_space(out, FRAME_HEADER_LEN + len, &vec, 1) < 1)
		return -ENOMEM;
	frame_header_pack(&hdr, vec.iov_base);
	if (len)
		protobuf_c_message_pack(msg,
					(uint8_t *)vec.iov_base + FRAME_HEADER_LEN);
	vec.iov_len = FRAME_HEADER_LEN + len;
	if (evbuffer_commit_space(out, &vec, 1) < 0)
		return -ENOMEM;
	return 0;
}

int wire_peek(struct evbuffer *in, size_t max_body, struct frame_header *hdr)
{
	uint8_t head[FRAME_HEADER_LEN];
	size_t have = evbuffer_get_length(in);
	int status;

	if (have < FRAME_HEADER_LEN)
		return 0;
	evbuffer_copyout(in, head, sizeof(head));
	status = frame_header_parse(head, sizeof(head), max_body, hdr);
	if (status != FRAME_OK)
		return status;
	return have >= FRAME_HEADER_LEN + (size_t)hdr->body_len;
}

const uint8_t *wire_body(struct evbuffer *in, const struct frame_header *hdr)
{
	const uint8_t *p;

	p = evbuffer_pullup(in, FRAME_HEADER_LEN + (ev_ssize_t)hdr->body_len);
	return p ? p + FRAME_HEADER_LEN : NULL;
}

void wire_consume(struct evbuffer *in, const struct frame_header *hdr)
{
	evbuffer_drain(in, FRAME_HEADER_LEN + (size_t)hdr->body_len);
}

/* Allocates a frame buffer for body_len body bytes and writes its header. */
static uint8_t *frame_alloc(unsigned int op, uint32_t request_id,
			    size_t body_len, size_t *len_out)
{
	struct frame_header hdr = {
		.body_len = (uint32_t)body_len,
		.version = FRAME_VERSION,
		.op = (uint16_t)op,
		.request_id = request_id,
	};
	uint8_t *buf;

	if (body_len > FRAME_HARD_MAX_BODY) {
		errno = EMSGSIZE;
		return NULL;
	}
	buf = malloc(FRAME_HEADER_LEN + body_len);
	if (!buf)
		return NULL;
	frame_header_pack(&hdr, buf);
	*len_out = FRAME_HEADER_LEN + body_len;
	return buf;
}

uint8_t *wire_pack_frame_raw(unsigned int op, uint32_t request_id,
			     const void *body, size_t body_len,
			     size_t *len_out)
{
	uint8_t *buf = frame_alloc(op, request_id, body_len, len_out);

	if (buf && body_len)
		memcpy(buf + FRAME_HEADER_LEN, body, body_len);
	return buf;
}

uint8_t *wire_pack_frame(unsigned int op, uint32_t request_id,
			 const ProtobufCMessage *msg, size_t *len_out)
{
	size_t len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
	uint8_t *buf = frame_alloc(op, request_id, len, len_out);

	if (buf && len)
		protobuf_c_message_pack(msg, buf + FRAME_HEADER_LEN);
	return buf;
}

/* SPDX-License-Identifier: MIT */
/*
 * Frames on libevent buffers: appending an encoded protobuf-c message with its
 * header, and finding a complete frame at the head of an input buffer.
 */
#ifndef IMGW_WIRE_H
#define IMGW_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <protobuf-c/protobuf-c.h>

#include "frame.h"

/* Appends a frame whose body is msg packed (an empty body when msg is NULL).
 * Returns 0, -EMSGSIZE when the body would exceed FRAME_HARD_MAX_BODY, or
 * -ENOMEM. */
int wire_append(struct evbuffer *out, unsigned int op, uint32_t request_id,
		const ProtobufCMessage *msg);

/* Appends a frame whose body is the len bytes at body. Returns as
 * wire_append(). */
int wire_append_raw(struct evbuffer *out, unsigned int op,
		    uint32_t request_id, const void *body, size_t len);

/*
 * Looks at the head of in. Returns 1 and fills hdr when a whole frame
 * (header and body) is buffered, 0 when more bytes are needed, or a negative
 * frame_status when the header is invalid; hdr is filled in that case too.
 */
int wire_peek(struct evbuffer *in, size_t max_body, struct frame_header *hdr);

/* Returns a pointer to the body of the frame wire_peek() found, made
 * contiguous. Valid until the buffer changes. */
const uint8_t *wire_body(struct evbuffer *in, const struct frame_header *hdr);

/* Removes the frame wire_peek() found. */
void wire_consume(struct evbuffer *in, const struct frame_header *hdr);

/*
 * Packs a complete frame (header and body) into one malloc'd buffer, the form
 * a broadcast shares across connections. Returns NULL with errno set
 * (EMSGSIZE when the body would exceed FRAME_HARD_MAX_BODY).
 */
uint8_t *wire_pack_frame(unsigned int op, uint32_t request_id,
			 const ProtobufCMessage *msg, size_t *len_out);

uint8_t *wire_pack_frame_raw(unsigned int op, uint32_t request_id,
			     const void *body, size_t body_len,
			     size_t *len_out);

#endif

// SPDX-License-Identifier: MIT
/*
 * Unit tests of the body size cap of lib/wire.c: a body over
 * FRAME_HARD_MAX_BODY is rejected with EMSGSIZE by every append and pack
 * function, leaves the buffer untouched, and a body of exactly the cap
 * still goes out.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "imgw.pb-c.h"
#include "wire.h"

/* A SendRequest whose packed body is exactly body_len bytes: field 4
 * (payload) takes a one-byte tag and a four-byte length. */
static void make_send(Imgw__SendRequest *req, uint8_t **payload,
		      size_t body_len)
{
	size_t len = body_len - 5;

	imgw__send_request__init(req);
	*payload = calloc(1, len);
	assert_non_null(*payload);
	req->payload.data = *payload;
	req->payload.len = len;
	assert_int_equal(protobuf_c_message_get_packed_size(&req->base),
			 body_len);
}

static void wire_append_over_cap(void **state)
{
	struct evbuffer *out = evbuffer_new();
	Imgw__SendRequest req;
	uint8_t *payload;

	assert_non_null(out);
	make_send(&req, &payload, FRAME_HARD_MAX_BODY + 1);
	assert_int_equal(wire_append(out, OP_SEND, 1, &req.base), -EMSGSIZE);
	assert_int_equal(evbuffer_get_length(out), 0);
	assert_int_equal(wire_append_raw(out, OP_SEND, 1, payload,
					 FRAME_HARD_MAX_BODY + 1), -EMSGSIZE);
	assert_int_equal(evbuffer_get_length(out), 0);
	free(payload);
	evbuffer_free(out);
}

static void wire_append_at_cap(void **state)
{
	struct evbuffer *out = evbuffer_new();
	Imgw__SendRequest req;
	uint8_t *payload;

	assert_non_null(out);
	make_send(&req, &payload, FRAME_HARD_MAX_BODY);
	assert_int_equal(wire_append(out, OP_SEND, 1, &req.base), 0);
	assert_int_equal(evbuffer_get_length(out),
			 FRAME_HEADER_LEN + FRAME_HARD_MAX_BODY);
	free(payload);
	evbuffer_free(out);
}

static void wire_pack_over_cap(void **state)
{
	Imgw__SendRequest req;
	uint8_t *payload, *frame;
	size_t len = 0;

	make_send(&req, &payload, FRAME_HARD_MAX_BODY + 1);
	errno = 0;
	frame = wire_pack_frame(OP_PUSH, 0, &req.base, &len);
	assert_null(frame);
	assert_int_equal(errno, EMSGSIZE);
	errno = 0;
	frame = wire_pack_frame_raw(OP_PUSH, 0, payload,
				    FRAME_HARD_MAX_BODY + 1, &len);
	assert_null(frame);
	assert_int_equal(errno, EMSGSIZE);
	free(payload);
}

static void wire_pack_at_cap(void **state)
{
	Imgw__SendRequest req;
	uint8_t *payload, *frame;
	size_t len = 0;

	make_send(&req, &payload, FRAME_HARD_MAX_BODY);
	frame = wire_pack_frame(OP_PUSH, 0, &req.base, &len);
	assert_non_null(frame);
	assert_int_equal(len, FRAME_HEADER_LEN + FRAME_HARD_MAX_BODY);
	free(frame);
	free(payload);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wire_append_over_cap),
		cmocka_unit_test(wire_append_at_cap),
		cmocka_unit_test(wire_pack_over_cap),
		cmocka_unit_test(wire_pack_at_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

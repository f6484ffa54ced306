// SPDX-License-Identifier: MIT
/*
 * Unit tests of lib/wire.c on real libevent buffers: appending frames,
 * finding them again with wire_peek() when they arrive whole, in pieces or
 * back to back, and the packed single-buffer form a broadcast shares.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "imgw.pb-c.h"
#include "wire.h"

static int setup_buffer(void **state)
{
	*state = evbuffer_new();
	return *state ? 0 : -1;
}

static int teardown_buffer(void **state)
{
	evbuffer_free(*state);
	return 0;
}

static void fill_send(Imgw__SendRequest *req, uint8_t *payload, size_t len)
{
	imgw__send_request__init(req);
	for (size_t i = 0; i < len; i++)
		payload[i] = (uint8_t)(i * 7 + 3);
	req->session_id = 42;
	req->to_user = "bob";
	req->client_msg_id = "m-1";
	req->payload.data = payload;
	req->payload.len = len;
}

/* Copies the whole buffer out into a malloc'd array. */
static uint8_t *copy_all(struct evbuffer *buf, size_t *len)
{
	uint8_t *out;

	*len = evbuffer_get_length(buf);
	out = malloc(*len ? *len : 1);
	assert_non_null(out);
	assert_int_equal(evbuffer_copyout(buf, out, *len), (ev_ssize_t)*len);
	return out;
}

static void test_append_peek_body(void **state)
{
	struct evbuffer *buf = *state;
	Imgw__SendRequest req, *got;
	struct frame_header hdr;
	uint8_t payload[300];
	const uint8_t *body;
	size_t packed;

	fill_send(&req, payload, sizeof(payload));
	packed = imgw__send_request__get_packed_size(&req);
	assert_int_equal(wire_append(buf, OP_SEND, 77, &req.base), 0);
	assert_int_equal(evbuffer_get_length(buf), FRAME_HEADER_LEN + packed);

	assert_int_equal(wire_peek(buf, FRAME_DEFAULT_MAX_BODY, &hdr), 1);
	assert_int_equal(hdr.body_len, packed);
	assert_int_equal(hdr.version, FRAME_VERSION);
	assert_int_equal(hdr.flags, 0);
	assert_int_equal(hdr.op, OP_SEND);
	assert_int_equal(hdr.request_id, 77);
	/* Peeking leaves the buffer alone. */
	assert_int_equal(evbuffer_get_length(buf), FRAME_HEADER_LEN + packed);

	body = wire_body(buf, &hdr);
	assert_non_null(body);
	got = imgw__send_request__unpack(NULL, hdr.body_len, body);
	assert_non_null(got);
	assert_int_equal(got->session_id, 42);
	assert_string_equal(got->to_user, "bob");
	assert_string_equal(got->client_msg_id, "m-1");
	assert_int_equal(got->payload.len, sizeof(payload));
	assert_memory_equal(got->payload.data, payload, sizeof(payload));
	imgw__send_request__free_unpacked(got, NULL);

	wire_consume(buf, &hdr);
	assert_int_equal(evbuffer_get_length(buf), 0);
	assert_int_equal(wire_peek(buf, FRAME_DEFAULT_MAX_BODY, &hdr), 0);
}

static void test_append_empty_body(void **state)
{
	struct evbuffer *buf = *state;
	struct frame_header hdr;

	assert_int_equal(wire_append(buf, OP_HEARTBEAT, 9, NULL), 0);
	assert_int_equal(evbuffer_get_length(buf), FRAME_HEADER_LEN);
	assert_int_equal(wire_peek(buf, FRAME_DEFAULT_MAX_BODY, &hdr), 1);
	assert_int_equal(hdr.body_len, 0);
	assert_int_equal(hdr.op, OP_HEARTBEAT);
	assert_int_equal(hdr.request_id, 9);
	assert_non_null(wire_body(buf, &hdr));
	wire_consume(buf, &hdr);
	assert_int_equal(evbuffer_get_length(buf), 0);

	/* A message whose fields are all defaults packs to zero bytes. */
	Imgw__Kick kick = IMGW__KICK__INIT;

	assert_int_equal(wire_append(buf, OP_KICK, 0, &kick.base), 0);
	assert_int_equal(evbuffer_get_length(buf), FRAME_HEADER_LEN);
}

static void test_partial_frames(void **state)
{
	struct evbuffer *buf = *state;
	Imgw__SendRequest req;
	struct frame_header hdr;
	uint8_t payload[100], *frame;
	size_t len;

	fill_send(&req, payload, sizeof(payload));
	frame = wire_pack_frame(OP_SEND, 5, &req.base, &len);
	assert_non_null(frame);

	/* One byte at a time: complete only with the last byte. */
	for (size_t i = 0; i < len; i++) {
		int rc = wire_peek(buf, FRAME_DEFAULT_MAX_BODY, &hdr);

		if (rc != 0)
			fail_msg("wire_peek with %zu of %zu bytes returned %d, expected 0",
				 i, len, rc);
		assert_int_equal(evbuffer_add(buf, frame + i, 1), 0);
	}
	assert_int_equal(wire_peek(buf, FRAME_DEFAULT_MAX_BODY, &hdr), 1);
	assert_int_equal(hdr.body_len, len - FRAME_HEADER_LEN);

	/* The body spans many chain segments; wire_body makes it whole. */
	assert_memory_equal(wire_body(buf, &hdr), frame + FRAME_HEADER_LEN,
			    hdr.body_len);
	wire_consume(buf, &hdr);
	assert_int_equal(evbuffer_get_length(buf), 0);
	free(frame);
}

static void test_back_to_back(void **state)
{
	struct evbuffer *buf = *state;
	Imgw__Push push = IMGW__PUSH__INIT;
	struct frame_header hdr;
	char sender[16];
	uint8_t *tail;
	size_t tail_len;

	for (uint32_t i = 0; i < 50; i++) {
		snprintf(sender, sizeof(sender), "user%u", i);
		push.seq = i + 1;
		push.sender = sender;
		assert_int_equal(wire_append(buf, OP_PUSH, i, &push.base), 0);
	}
	/* The start of a 51st frame: the 50 whole ones come out, then a stop. */
	tail = wire_pack_frame_raw(OP_PUSH, 999, "abcdef", 6, &tail_len);
	assert_non_null(tail);
	assert_int_equal(evbuffer_add(buf, tail, 3), 0);
	free(tail);

	for (uint32_t i = 0; i < 50; i++) {
		Imgw__Push *got;

		assert_int_equal(wire_peek(buf, FRAME_DEFAULT_MAX_BODY, &hdr),
				 1);
		assert_int_equal(hdr.op, OP_PUSH);
		assert_int_equal(hdr.request_id, i);
		got = imgw__push__unpack(NULL, hdr.body_len,
					 wire_body(buf, &hdr));
		assert_non_null(got);
		assert_int_equal(got->seq, i + 1);
		snprintf(sender, sizeof(sender), "user%u", i);
		assert_string_equal(got->sender, sender);
		imgw__push__free_unpacked(got, NULL);
		wire_consume(buf, &hdr);
	}
	assert_int_equal(wire_peek(buf, FRAME_DEFAULT_MAX_BODY, &hdr), 0);
	assert_int_equal(evbuffer_get_length(buf), 3);
}

static void test_peek_invalid(void **state)
{
	struct evbuffer *buf = *state;
	struct frame_header bad = {
		.body_len = 5000, .version = FRAME_VERSION, .op = OP_SEND,
		.request_id = 4,
	};
	struct frame_header hdr;
	uint8_t head[FRAME_HEADER_LEN];

	/* Rejected from the header alone, without waiting for the body. */
	frame_header_pack(&bad, head);
	evbuffer_add(buf, head, sizeof(head));
	assert_int_equal(wire_peek(buf, 4096, &hdr), FRAME_TOO_LARGE);
	assert_int_equal(hdr.body_len, 5000);
	assert_int_equal(hdr.request_id, 4);
	assert_int_equal(evbuffer_get_length(buf), FRAME_HEADER_LEN);
	evbuffer_drain(buf, FRAME_HEADER_LEN);

	bad.body_len = 1;
	bad.version = 3;
	frame_header_pack(&bad, head);
	evbuffer_add(buf, head, sizeof(head));
	assert_int_equal(wire_peek(buf, 4096, &hdr), FRAME_BAD_VERSION);
	assert_int_equal(hdr.version, 3);
	evbuffer_drain(buf, FRAME_HEADER_LEN);

	/* Fewer than 12 bytes cannot be judged yet. */
	evbuffer_add(buf, head, 11);
	assert_int_equal(wire_peek(buf, 4096, &hdr), 0);
}

static void test_packed_equals_appended(void **state)
{
	struct evbuffer *buf = *state;
	Imgw__SendRequest req;
	uint8_t payload[1000], *packed, *appended;
	size_t packed_len, appended_len;

	fill_send(&req, payload, sizeof(payload));
	packed = wire_pack_frame(OP_SEND, 123456, &req.base, &packed_len);
	assert_non_null(packed);
	assert_int_equal(wire_append(buf, OP_SEND, 123456, &req.base), 0);
	appended = copy_all(buf, &appended_len);
	assert_int_equal(packed_len, appended_len);
	assert_memory_equal(packed, appended, packed_len);
	free(packed);
	free(appended);
	evbuffer_drain(buf, appended_len);

	/* The raw forms agree with each other. */
	packed = wire_pack_frame_raw(OP_DELIVER, 1, "hello", 5, &packed_len);
	assert_non_null(packed);
	assert_int_equal(wire_append_raw(buf, OP_DELIVER, 1, "hello", 5), 0);
	appended = copy_all(buf, &appended_len);
	assert_int_equal(packed_len, FRAME_HEADER_LEN + 5);
	assert_int_equal(appended_len, packed_len);
	assert_memory_equal(packed, appended, packed_len);
	free(packed);
	free(appended);
	evbuffer_drain(buf, appended_len);

	packed = wire_pack_frame(OP_HEARTBEAT_ACK, 8, NULL, &packed_len);
	assert_non_null(packed);
	assert_int_equal(packed_len, FRAME_HEADER_LEN);
	assert_int_equal(wire_append_raw(buf, OP_HEARTBEAT_ACK, 8, NULL, 0), 0);
	appended = copy_all(buf, &appended_len);
	assert_int_equal(appended_len, packed_len);
	assert_memory_equal(packed, appended, packed_len);
	free(packed);
	free(appended);
}

static void test_packed_message_raw(void **state)
{
	Imgw__Push push = IMGW__PUSH__INIT;
	uint8_t body[256], *a, *b;
	size_t body_len, a_len, b_len;

	push.session_id = 7;
	push.seq = 99;
	push.sender = "carol";
	push.payload.data = (uint8_t *)"payload";
	push.payload.len = 7;
	body_len = imgw__push__pack(&push, body);
	assert_true(body_len > 0);

	/* The gateway frames a Push body it got from the daemon with the raw
	 * form: it must equal framing the message itself. */
	a = wire_pack_frame(OP_PUSH, 0, &push.base, &a_len);
	b = wire_pack_frame_raw(OP_PUSH, 0, body, body_len, &b_len);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a_len, FRAME_HEADER_LEN + body_len);
	assert_int_equal(a_len, b_len);
	assert_memory_equal(a, b, a_len);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_peek_body,
						setup_buffer, teardown_buffer),
		cmocka_unit_test_setup_teardown(test_append_empty_body,
						setup_buffer, teardown_buffer),
		cmocka_unit_test_setup_teardown(test_partial_frames,
						setup_buffer, teardown_buffer),
		cmocka_unit_test_setup_teardown(test_back_to_back,
						setup_buffer, teardown_buffer),
		cmocka_unit_test_setup_teardown(test_peek_invalid,
						setup_buffer, teardown_buffer),
		cmocka_unit_test_setup_teardown(test_packed_equals_appended,
						setup_buffer, teardown_buffer),
		cmocka_unit_test(test_packed_message_raw),
	};

	return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * Unit tests of lib/frame.c: header packing and parsing in network byte
 * order, the length and version checks, op names and the ops a client may
 * send.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"

static void test_pack_parse_round_trip(void **state)
{
	static const struct frame_header cases[] = {
		{ 0, FRAME_VERSION, 0, OP_LOGIN, 0 },
		{ 1, FRAME_VERSION, 0, OP_SEND, 1 },
		{ 65536, FRAME_VERSION, 0, OP_PUSH, 0x01020304 },
		{ 12345, FRAME_VERSION, 0xab, OP_KICK_DEVICE, 0xffffffff },
		{ FRAME_DEFAULT_MAX_BODY, FRAME_VERSION, 0, 0xffff, 7 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct frame_header out;
		uint8_t buf[FRAME_HEADER_LEN];
		int rc;

		memset(&out, 0xee, sizeof(out));
		frame_header_pack(&cases[i], buf);
		rc = frame_header_parse(buf, sizeof(buf),
					FRAME_DEFAULT_MAX_BODY, &out);
		assert_int_equal(rc, FRAME_OK);
		assert_int_equal(out.body_len, cases[i].body_len);
		assert_int_equal(out.version, cases[i].version);
		assert_int_equal(out.flags, cases[i].flags);
		assert_int_equal(out.op, cases[i].op);
		assert_int_equal(out.request_id, cases[i].request_id);
	}
}

static void test_pack_network_order(void **state)
{
	const struct frame_header hdr = {
		.body_len = 0x01020304,
		.version = FRAME_VERSION,
		.flags = 0x5a,
		.op = 0x0607,
		.request_id = 0x08090a0b,
	};
	static const uint8_t want[FRAME_HEADER_LEN] = {
		0x01, 0x02, 0x03, 0x04, 0x01, 0x5a,
		0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
	};
	uint8_t buf[FRAME_HEADER_LEN + 1];

	buf[FRAME_HEADER_LEN] = 0xcc;
	frame_header_pack(&hdr, buf);
	assert_memory_equal(buf, want, FRAME_HEADER_LEN);
	/* The packer writes exactly FRAME_HEADER_LEN bytes. */
	assert_int_equal(buf[FRAME_HEADER_LEN], 0xcc);
}

static void test_parse_too_large(void **state)
{
	struct frame_header hdr = {
		.body_len = 4097, .version = FRAME_VERSION, .op = OP_SEND,
	};
	struct frame_header out;
	uint8_t buf[FRAME_HEADER_LEN];

	frame_header_pack(&hdr, buf);
	assert_int_equal(frame_header_parse(buf, sizeof(buf), 4096, &out),
			 FRAME_TOO_LARGE);
	/* The header is filled even when rejected, for the error log. */
	assert_int_equal(out.body_len, 4097);
	assert_int_equal(out.op, OP_SEND);

	/* Exactly at the limit is accepted. */
	assert_int_equal(frame_header_parse(buf, sizeof(buf), 4097, &out),
			 FRAME_OK);

	hdr.body_len = 0xffffffff;
	frame_header_pack(&hdr, buf);
	assert_int_equal(frame_header_parse(buf, sizeof(buf),
					    FRAME_DEFAULT_MAX_BODY, &out),
			 FRAME_TOO_LARGE);
	assert_int_equal(out.body_len, 0xffffffff);

	/* A configured limit over the hard maximum is capped by it. */
	hdr.body_len = FRAME_HARD_MAX_BODY + 1;
	frame_header_pack(&hdr, buf);
	assert_int_equal(frame_header_parse(buf, sizeof(buf), SIZE_MAX, &out),
			 FRAME_TOO_LARGE);
	hdr.body_len = FRAME_HARD_MAX_BODY;
	frame_header_pack(&hdr, buf);
	assert_int_equal(frame_header_parse(buf, sizeof(buf), SIZE_MAX, &out),
			 FRAME_OK);
}

static void test_parse_bad_version(void **state)
{
	static const uint8_t versions[] = { 0, 2, 0x7f, 0xff };

	for (size_t i = 0; i < sizeof(versions); i++) {
		struct frame_header hdr = {
			.body_len = 10, .version = versions[i], .op = OP_LOGIN,
			.request_id = 3,
		};
		struct frame_header out;
		uint8_t buf[FRAME_HEADER_LEN];

		frame_header_pack(&hdr, buf);
		assert_int_equal(frame_header_parse(buf, sizeof(buf),
						    FRAME_DEFAULT_MAX_BODY,
						    &out),
				 FRAME_BAD_VERSION);
		assert_int_equal(out.version, versions[i]);
	}
}

static void test_parse_bad_version_before_length(void **state)
{
	/* A header that is both too long and of the wrong version reports the
	 * version, because the length means nothing in another version. */
	struct frame_header hdr = {
		.body_len = 0xffffffff, .version = 9, .op = OP_SEND,
	};
	struct frame_header out;
	uint8_t buf[FRAME_HEADER_LEN];

	frame_header_pack(&hdr, buf);
	assert_int_equal(frame_header_parse(buf, sizeof(buf), 100, &out),
			 FRAME_BAD_VERSION);
}

static void test_parse_need_more(void **state)
{
	struct frame_header hdr = {
		.body_len = 3, .version = FRAME_VERSION, .op = OP_HEARTBEAT,
	};
	struct frame_header out;
	uint8_t buf[FRAME_HEADER_LEN];

	frame_header_pack(&hdr, buf);
	for (size_t len = 0; len < FRAME_HEADER_LEN; len++)
		assert_int_equal(frame_header_parse(buf, len,
						    FRAME_DEFAULT_MAX_BODY,
						    &out),
				 FRAME_NEED_MORE);
	/* The parser reads only the header, so a bare header is OK. */
	assert_int_equal(frame_header_parse(buf, FRAME_HEADER_LEN,
					    FRAME_DEFAULT_MAX_BODY, &out),
			 FRAME_OK);
}

static void test_op_names(void **state)
{
	static const struct {
		unsigned int op;
		const char *name;
	} known[] = {
		{ OP_LOGIN, "LOGIN" },
		{ OP_LOGIN_RESULT, "LOGIN_RESULT" },
		{ OP_HEARTBEAT, "HEARTBEAT" },
		{ OP_HEARTBEAT_ACK, "HEARTBEAT_ACK" },
		{ OP_SEND, "SEND" },
		{ OP_SEND_RESULT, "SEND_RESULT" },
		{ OP_PUSH, "PUSH" },
		{ OP_SYNC, "SYNC" },
		{ OP_SYNC_RESULT, "SYNC_RESULT" },
		{ OP_KICK, "KICK" },
		{ OP_ERROR, "ERROR" },
		{ OP_REGISTER, "REGISTER" },
		{ OP_REGISTER_RESULT, "REGISTER_RESULT" },
		{ OP_AUTH, "AUTH" },
		{ OP_AUTH_RESULT, "AUTH_RESULT" },
		{ OP_UPSTREAM, "UPSTREAM" },
		{ OP_REPLY, "REPLY" },
		{ OP_PRESENCE, "PRESENCE" },
		{ OP_DELIVER, "DELIVER" },
		{ OP_KICK_DEVICE, "KICK_DEVICE" },
		{ OP_SUPER_ACK, "SUPER_ACK" },
		{ OP_SESSION_CACHE, "SESSION_CACHE" },
	};
	static const unsigned int unknown[] = {
		0, 12, 50, 99, 111, 200, 0xffff, 0x10000, 0xffffffff,
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		const char *name = frame_op_name(known[i].op);

		assert_non_null(name);
		assert_string_equal(name, known[i].name);
	}
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		assert_null(frame_op_name(unknown[i]));
}

static void test_client_ops(void **state)
{
	for (unsigned int op = 0; op < 0x10000; op++) {
		int want = op == OP_LOGIN || op == OP_HEARTBEAT ||
			   op == OP_SEND || op == OP_SYNC;

		if (!!frame_op_from_client(op) != want)
			fail_msg("frame_op_from_client(%u) = %d, expected %d",
				 op, frame_op_from_client(op), want);
	}
	assert_false(frame_op_from_client(0xffffffffu));
}

static void test_status_strings(void **state)
{
	static const int statuses[] = {
		FRAME_OK, FRAME_NEED_MORE, FRAME_BAD_VERSION, FRAME_TOO_LARGE,
	};

	for (size_t i = 0; i < 4; i++) {
		const char *text = frame_status_str(statuses[i]);

		assert_non_null(text);
		assert_true(strlen(text) > 0);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(text,
						frame_status_str(statuses[j]));
	}
	assert_non_null(frame_status_str(-99));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pack_parse_round_trip),
		cmocka_unit_test(test_pack_network_order),
		cmocka_unit_test(test_parse_too_large),
		cmocka_unit_test(test_parse_bad_version),
		cmocka_unit_test(test_parse_bad_version_before_length),
		cmocka_unit_test(test_parse_need_more),
		cmocka_unit_test(test_op_names),
		cmocka_unit_test(test_client_ops),
		cmocka_unit_test(test_status_strings),
	};

	return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}

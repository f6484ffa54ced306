// SPDX-License-Identifier: MIT
/*
 * Malformed input, each case on a fresh connection: the gateway replies with
 * the documented ERROR or LOGIN_RESULT code and closes that connection, and
 * after every case an already logged-in pair of clients still sends and
 * receives.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "token.h"
#include "wire.h"

#define MAX_FRAME 4096

static struct harness *h;
static struct tclient *pair_a, *pair_b;
static uint64_t pair_sid;
static int device_counter;

static int setup_pair(void **state)
{
	const struct gw_options opts[] = { { .max_frame = MAX_FRAME } };
	const char *const members[] = { "pa", "pb" };

	h = harness_start(1, opts);
	pair_sid = admin_session_create(h, "group", "pair", members, 2);
	pair_a = tc_login(h, 0, "pa", "d");
	pair_b = tc_login(h, 0, "pb", "d");
	return 0;
}

static int teardown_pair(void **state)
{
	tc_free(pair_a);
	tc_free(pair_b);
	pair_a = pair_b = NULL;
	return harness_teardown(state);
}

/* Checks that the logged-in pair still works and the gateway is healthy. */
static void check_pair(const char *after)
{
	char payload[96];
	uint64_t seq;
	json_t *health;
	const char *status;

	snprintf(payload, sizeof(payload), "after %s", after);
	seq = tc_send_ok(pair_a, pair_sid, payload);
	H_CHECK(tc_wait_push(pair_b, pair_sid, seq, HARNESS_WAIT_MS) >= 0,
		"pb did not receive seq %llu after %s",
		(unsigned long long)seq, after);
	health = harness_healthz(&h->gw[0]);
	status = json_string_value(json_object_get(health, "status"));
	H_CHECK(status && strcmp(status, "ok") == 0,
		"gateway status \"%s\" after %s, expected \"ok\"",
		status ? status : "(missing)", after);
	json_decref(health);
}

static struct tclient *login_fresh(void)
{
	char device[32];

	snprintf(device, sizeof(device), "probe-%d", device_counter++);
	return tc_login(h, 0, "mal", device);
}

static void send_raw(struct tclient *t, uint32_t body_len, uint8_t version,
		     uint16_t op, const void *body, size_t len)
{
	struct frame_header hdr = {
		.body_len = body_len, .version = version, .op = op,
		.request_id = 4242,
	};
	uint8_t head[FRAME_HEADER_LEN];
	int err;

	frame_header_pack(&hdr, head);
	err = client_send_bytes(t->c, head, sizeof(head));
	if (err == 0 && len)
		err = client_send_bytes(t->c, body, len);
	H_CHECK(err == 0, "sending a raw frame failed: %s", strerror(-err));
}

/* Expects an ERROR frame with code (any code when code < 0), then a close. */
static void expect_error_close(struct tclient *t, int code, const char *what)
{
	struct client_frame f;
	Imgw__Error *error;
	int err;

	err = tc_wait_op(t, OP_ERROR, 0, HARNESS_WAIT_MS, &f);
	H_CHECK(err == 0, "%s: no ERROR frame (%s)", what, strerror(-err));
	error = imgw__error__unpack(NULL, f.hdr.body_len, f.body);
	client_frame_free(&f);
	H_CHECK(error != NULL, "%s: ERROR body does not decode", what);
	H_CHECK(code < 0 || (int)error->code == code,
		"%s: ERROR code %d (%s), expected %d", what, error->code,
		error->text ? error->text : "", code);
	imgw__error__free_unpacked(error, NULL);
	err = tc_wait_closed(t, HARNESS_WAIT_MS);
	H_CHECK(err == 0, "%s: connection still open %d ms after the ERROR",
		what, HARNESS_WAIT_MS);
}

static void case_error(struct tclient *t, int code, const char *what)
{
	expect_error_close(t, code, what);
	tc_free(t);
	check_pair(what);
}

static void test_frame_too_large(void **state)
{
	struct tclient *t = tc_connect(h, 0);

	/* The header alone must trigger the error: no body follows. */
	send_raw(t, MAX_FRAME + 1, FRAME_VERSION, OP_LOGIN, NULL, 0);
	case_error(t, IMGW__ERROR_CODE__ERROR_FRAME_TOO_LARGE,
		   "length max_frame + 1");

	t = tc_connect(h, 0);
	send_raw(t, 0xffffffff, FRAME_VERSION, OP_LOGIN, NULL, 0);
	case_error(t, IMGW__ERROR_CODE__ERROR_FRAME_TOO_LARGE,
		   "length 0xFFFFFFFF");

	t = login_fresh();
	send_raw(t, MAX_FRAME + 1, FRAME_VERSION, OP_SEND, NULL, 0);
	case_error(t, IMGW__ERROR_CODE__ERROR_FRAME_TOO_LARGE,
		   "length max_frame + 1 after login");
}

static void test_frame_at_limit(void **state)
{
	Imgw__SendRequest req = IMGW__SEND_REQUEST__INIT;
	static uint8_t payload[MAX_FRAME];
	struct tclient *t = login_fresh();
	size_t len = MAX_FRAME - 16;
	uint8_t *frame;
	size_t frame_len;
	struct client_frame f;
	Imgw__SendResult *res;
	int err;

	/* Grow the payload until the body is exactly max_frame bytes. */
	memset(payload, 'p', sizeof(payload));
	req.session_id = pair_sid;
	req.payload.data = payload;
	do {
		req.payload.len = len++;
	} while (imgw__send_request__get_packed_size(&req) < MAX_FRAME);
	H_CHECK(imgw__send_request__get_packed_size(&req) == MAX_FRAME,
		"could not build a body of exactly %d bytes", MAX_FRAME);
	frame = wire_pack_frame(OP_SEND, 77, &req.base, &frame_len);
	H_CHECK(frame != NULL, "out of memory");
	err = client_send_bytes(t->c, frame, frame_len);
	free(frame);
	H_CHECK(err == 0, "sending a max_frame body failed: %s",
		strerror(-err));
	err = tc_wait_op(t, OP_SEND_RESULT, 77, HARNESS_WAIT_MS, &f);
	H_CHECK(err == 0, "no SEND_RESULT for a body of exactly max_frame: %s",
		strerror(-err));
	res = imgw__send_result__unpack(NULL, f.hdr.body_len, f.body);
	client_frame_free(&f);
	H_CHECK(res != NULL, "SEND_RESULT does not decode");
	/* The sender "mal" is no member: the frame was accepted and judged. */
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NOT_MEMBER,
		"body of exactly max_frame: SEND_RESULT code %d, expected ERROR_NOT_MEMBER (%d)",
		res->code, IMGW__ERROR_CODE__ERROR_NOT_MEMBER);
	imgw__send_result__free_unpacked(res, NULL);
	H_CHECK(tc_heartbeat(t, HARNESS_WAIT_MS) == 0,
		"no HEARTBEAT_ACK after a max_frame body");
	tc_free(t);
	check_pair("a body of exactly max_frame");
}

static void test_bad_version(void **state)
{
	static const uint8_t versions[] = { 0, 2, 0xff };

	for (size_t i = 0; i < sizeof(versions); i++) {
		struct tclient *t = tc_connect(h, 0);
		char what[48];

		snprintf(what, sizeof(what), "version %u", versions[i]);
		send_raw(t, 0, versions[i], OP_HEARTBEAT, NULL, 0);
		case_error(t, IMGW__ERROR_CODE__ERROR_BAD_VERSION, what);
	}
	{
		struct tclient *t = login_fresh();

		send_raw(t, 0, 2, OP_HEARTBEAT, NULL, 0);
		case_error(t, IMGW__ERROR_CODE__ERROR_BAD_VERSION,
			   "version 2 after login");
	}
}

static void test_unknown_op(void **state)
{
	static const uint16_t ops[] = {
		0, 12, 77, 0xffff, OP_LOGIN_RESULT, OP_HEARTBEAT_ACK,
		OP_SEND_RESULT, OP_PUSH, OP_SYNC_RESULT, OP_KICK, OP_ERROR,
		OP_REGISTER, OP_AUTH, OP_UPSTREAM, OP_DELIVER, OP_KICK_DEVICE,
	};

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct tclient *t = login_fresh();
		char what[64];

		snprintf(what, sizeof(what), "op %u (%s) from a client",
			 ops[i],
			 frame_op_name(ops[i]) ? frame_op_name(ops[i]) :
						 "unknown");
		send_raw(t, 0, FRAME_VERSION, ops[i], NULL, 0);
		case_error(t, IMGW__ERROR_CODE__ERROR_UNKNOWN_OP, what);
	}
}

static void test_bad_body(void **state)
{
	/* Field 1 as length-delimited, announcing 127 bytes of 1. */
	static const uint8_t truncated[] = { 0x0a, 0x7f, 0x00 };
	/* A varint that never ends. */
	static const uint8_t endless[] = { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
					   0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct tclient *t;

	t = login_fresh();
	send_raw(t, sizeof(truncated), FRAME_VERSION, OP_SEND, truncated,
		 sizeof(truncated));
	case_error(t, IMGW__ERROR_CODE__ERROR_BAD_BODY, "truncated SEND body");

	t = login_fresh();
	send_raw(t, sizeof(endless), FRAME_VERSION, OP_SYNC, endless,
		 sizeof(endless));
	case_error(t, IMGW__ERROR_CODE__ERROR_BAD_BODY, "endless SYNC varint");

	t = tc_connect(h, 0);
	send_raw(t, sizeof(truncated), FRAME_VERSION, OP_LOGIN, truncated,
		 sizeof(truncated));
	case_error(t, IMGW__ERROR_CODE__ERROR_BAD_BODY,
		   "truncated LOGIN body");
}

static void test_not_logged_in(void **state)
{
	Imgw__SendRequest req = IMGW__SEND_REQUEST__INIT;
	Imgw__SyncRequest sync = IMGW__SYNC_REQUEST__INIT;
	struct tclient *t;

	req.session_id = pair_sid;
	req.payload.data = (uint8_t *)"x";
	req.payload.len = 1;
	t = tc_connect(h, 0);
	H_CHECK(client_send(t->c, OP_SEND, &req.base) > 0, "send failed");
	case_error(t, IMGW__ERROR_CODE__ERROR_NOT_LOGGED_IN,
		   "SEND before LOGIN");

	sync.session_id = pair_sid;
	t = tc_connect(h, 0);
	H_CHECK(client_send(t->c, OP_SYNC, &sync.base) > 0, "send failed");
	case_error(t, IMGW__ERROR_CODE__ERROR_NOT_LOGGED_IN,
		   "SYNC before LOGIN");

	t = tc_connect(h, 0);
	H_CHECK(client_send(t->c, OP_HEARTBEAT, NULL) > 0, "send failed");
	case_error(t, IMGW__ERROR_CODE__ERROR_NOT_LOGGED_IN,
		   "HEARTBEAT before LOGIN");
}

/* Logs in with token and expects code in LOGIN_RESULT, then a close. */
static void expect_login_rejected(const char *user, const char *token,
				  int code, const char *what)
{
	struct tclient *t = tc_connect(h, 0);
	int err = tc_login_token(t, user, "d", token);

	H_CHECK(err == -EACCES, "%s: login returned %d (%s), expected a rejection",
		what, err, strerror(-err));
	H_CHECK(code < 0 || (int)t->login->code == code,
		"%s: LOGIN_RESULT code %d (%s), expected %d", what,
		t->login->code, t->login->reason ? t->login->reason : "",
		code);
	H_CHECK(tc_wait_closed(t, HARNESS_WAIT_MS) == 0,
		"%s: connection still open %d ms after the failed login", what,
		HARNESS_WAIT_MS);
	tc_free(t);
	check_pair(what);
}

static void test_bad_tokens(void **state)
{
	int64_t now = (int64_t)time(NULL);
	char token[TOKEN_MAX_LEN + 1];
	int auth_failed = IMGW__ERROR_CODE__ERROR_AUTH_FAILED;

	expect_login_rejected("mal", "v1.bm9wZQ.99999999999.AAAA",
			      auth_failed, "malformed token");
	expect_login_rejected("mal", "", auth_failed, "empty token");

	harness_token(h, "mal", now - 10, token);
	expect_login_rejected("mal", token, auth_failed, "expired token");

	harness_token(h, "pa", now + 3600, token);
	expect_login_rejected("mal", token, auth_failed,
			      "token of another user");

	H_CHECK(token_mint("not-the-secret", "mal", now + 3600, token,
			   sizeof(token)) == 0,
		"token_mint failed");
	expect_login_rejected("mal", token, auth_failed,
			      "token signed with another secret");

	/* The admin API's token works where the forged ones did not. */
	admin_token(h, "mal", 600, token);
	{
		struct tclient *t = tc_connect(h, 0);
		int err = tc_login_token(t, "mal", "api", token);

		H_CHECK(err == 0, "login with a token from POST /v1/tokens failed: %s",
			strerror(-err));
		tc_free(t);
	}
}

static void test_empty_user(void **state)
{
	char token[TOKEN_MAX_LEN + 1];
	struct tclient *t = tc_connect(h, 0);
	int err;

	harness_token(h, "mal", (int64_t)time(NULL) + 3600, token);
	err = tc_login_token(t, "", "d", token);
	H_CHECK(err == -EACCES, "login with an empty user id returned %d (%s), expected a rejection",
		err, strerror(-err));
	H_CHECK(tc_wait_closed(t, HARNESS_WAIT_MS) == 0,
		"connection still open after a login with an empty user id");
	tc_free(t);

	t = tc_connect(h, 0);
	err = tc_login_token(t, "mal", "", token);
	H_CHECK(err == -EACCES, "login with an empty device id returned %d (%s), expected a rejection",
		err, strerror(-err));
	H_CHECK(tc_wait_closed(t, HARNESS_WAIT_MS) == 0,
		"connection still open after a login with an empty device id");
	tc_free(t);
	check_pair("logins with empty ids");
}

static void test_cut_short(void **state)
{
	struct frame_header hdr = {
		.body_len = 100, .version = FRAME_VERSION, .op = OP_LOGIN,
	};
	uint8_t head[FRAME_HEADER_LEN];
	struct tclient *t;

	frame_header_pack(&hdr, head);
	for (size_t cut = 1; cut < FRAME_HEADER_LEN; cut += 5) {
		t = tc_connect(h, 0);
		H_CHECK(client_send_bytes(t->c, head, cut) == 0,
			"send failed");
		tc_free(t);
		check_pair("a header cut short");
	}

	/* A whole header and half the body, then close. */
	t = login_fresh();
	hdr.op = OP_SEND;
	frame_header_pack(&hdr, head);
	H_CHECK(client_send_bytes(t->c, head, sizeof(head)) == 0,
		"send failed");
	H_CHECK(client_send_bytes(t->c, "0123456789", 10) == 0,
		"send failed");
	tc_free(t);
	check_pair("a body cut short");

	/* A half header left hanging while the pair keeps working. */
	t = tc_connect(h, 0);
	H_CHECK(client_send_bytes(t->c, head, 6) == 0, "send failed");
	check_pair("a hanging half header");
	tc_free(t);
}

static void test_garbage(void **state)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	uint8_t junk[512];
	struct tclient *t;

	t = tc_connect(h, 0);
	H_CHECK(client_send_bytes(t->c, http, strlen(http)) == 0,
		"send failed");
	case_error(t, -1, "an HTTP request");

	srandom(12345);
	for (int round = 0; round < 5; round++) {
		char what[32];

		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)random();
		junk[4] = 0x80;         /* never version 1 */
		t = tc_connect(h, 0);
		H_CHECK(client_send_bytes(t->c, junk, sizeof(junk)) == 0,
			"send failed");
		snprintf(what, sizeof(what), "garbage round %d", round);
		case_error(t, -1, what);
	}

	/* Garbage after a valid login closes that connection too. */
	t = login_fresh();
	H_CHECK(client_send_bytes(t->c, junk, sizeof(junk)) == 0,
		"send failed");
	case_error(t, -1, "garbage after login");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_too_large),
		cmocka_unit_test(test_frame_at_limit),
		cmocka_unit_test(test_bad_version),
		cmocka_unit_test(test_unknown_op),
		cmocka_unit_test(test_bad_body),
		cmocka_unit_test(test_not_logged_in),
		cmocka_unit_test(test_bad_tokens),
		cmocka_unit_test(test_empty_user),
		cmocka_unit_test(test_cut_short),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests_name("malformed", tests, setup_pair,
					   teardown_pair);
}

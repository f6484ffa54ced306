// SPDX-License-Identifier: MIT
/*
 * Ids and strings in LOGIN: a NUL byte in the user id or token gets
 * ERROR_BAD_BODY instead of logging in as the prefix, and a device id with
 * a newline is rejected without reaching either daemon's log raw.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "token.h"

/* Appends a length-delimited field (len < 128) at buf + *n. */
static void put_field(uint8_t *buf, size_t *n, unsigned int num,
		      const void *data, size_t len)
{
	buf[(*n)++] = (uint8_t)(num << 3 | 2);
	buf[(*n)++] = (uint8_t)len;
	memcpy(buf + *n, data, len);
	*n += len;
}

/* Sends a LOGIN frame with body and returns the first frame received. */
static void login_raw(struct tclient *t, const uint8_t *body, size_t len,
		      struct client_frame *f)
{
	struct frame_header hdr = {
		.body_len = (uint32_t)len, .version = FRAME_VERSION,
		.op = OP_LOGIN, .request_id = 7,
	};
	uint8_t frame[256];
	int rc;

	frame_header_pack(&hdr, frame);
	memcpy(frame + FRAME_HEADER_LEN, body, len);
	H_CHECK(client_send_bytes(t->c, frame, FRAME_HEADER_LEN + len) == 0,
		"sending LOGIN failed");
	rc = client_recv(t->c, HARNESS_WAIT_MS, f);
	H_CHECK(rc == 0, "no answer to LOGIN: %s", strerror(-rc));
}

static void expect_bad_body(struct harness *h, const char *token,
			    size_t token_len, const char *user,
			    size_t user_len, const char *what)
{
	struct tclient *t = tc_connect(h, 0);
	struct client_frame f;
	Imgw__Error *error;
	uint8_t body[200];
	size_t n = 0;

	put_field(body, &n, 1, token, token_len);
	put_field(body, &n, 2, user, user_len);
	put_field(body, &n, 3, "d", 1);
	login_raw(t, body, n, &f);
	H_CHECK(f.hdr.op == OP_ERROR, "LOGIN with %s: op %u, expected ERROR",
		what, f.hdr.op);
	error = imgw__error__unpack(NULL, f.hdr.body_len, f.body);
	client_frame_free(&f);
	H_CHECK(error && error->code == IMGW__ERROR_CODE__ERROR_BAD_BODY,
		"LOGIN with %s: code %d, expected ERROR_BAD_BODY", what,
		error ? (int)error->code : -1);
	imgw__error__free_unpacked(error, NULL);
	H_CHECK(tc_wait_closed(t, HARNESS_WAIT_MS) == 0,
		"LOGIN with %s: the connection stayed open", what);
	tc_free(t);
}

static void login_nul_rejected(void **state)
{
	struct harness *h = harness_start(1, NULL);
	char token[TOKEN_MAX_LEN + 16];
	size_t len;

	/* A valid token for "fz", so only the NUL check can reject it. */
	harness_token(h, "fz", time(NULL) + 600, token);
	len = strlen(token);
	H_CHECK(len < 100, "token of %zu bytes is too long for this test", len);
	expect_bad_body(h, token, len, "fz\0evil", 7, "a NUL in the user id");
	memcpy(token + len, "\0junk", 5);
	expect_bad_body(h, token, len + 5, "fz", 2, "a NUL in the token");
	harness_stop(h);
}

/* Returns whether the log at path has a line that starts with prefix. */
static int log_has_line(const char *path, const char *prefix)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int found = 0;

	H_CHECK(f, "opening %s failed: %s", path, strerror(errno));
	while (!found && fgets(line, sizeof(line), f))
		found = strncmp(line, prefix, strlen(prefix)) == 0;
	fclose(f);
	return found;
}

static void login_newline_not_logged(void **state)
{
	struct harness *h = harness_start(1, NULL);
	struct tclient *t = tc_connect(h, 0);
	char token[TOKEN_MAX_LEN + 1];
	Imgw__LoginResult *res = NULL;
	int rc;

	harness_token(h, "nl", time(NULL) + 600, token);
	rc = client_login(t->c, token, "nl", "a\nINJECT", "test",
			  HARNESS_WAIT_MS, &res);
	H_CHECK(rc == -EACCES, "LOGIN with a newline in the device id: %d, expected a rejection",
		rc);
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_BAD_REQUEST,
		"LOGIN with a newline in the device id: code %d, expected ERROR_BAD_REQUEST",
		res->code);
	imgw__login_result__free_unpacked(res, NULL);
	tc_free(t);

	/* A clean login afterwards proves the logs were flushed this far. */
	tc_free(tc_login(h, 0, "nl", "d"));
	H_CHECK(!log_has_line(h->gw[0].log_path, "INJECT"),
		"gw0 log has a line starting with the injected text");
	H_CHECK(!log_has_line(h->biz.log_path, "INJECT"),
		"bizsvr log has a line starting with the injected text");
	harness_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(login_nul_rejected,
					  harness_teardown),
		cmocka_unit_test_teardown(login_newline_not_logged,
					  harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

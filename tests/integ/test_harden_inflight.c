// SPDX-License-Identifier: MIT
/*
 * Requests the gateway forwards to the business daemon: every SEND and SYNC
 * in flight when the link drops is answered with ERROR_UNAVAILABLE, one
 * connection has at most 256 in flight, and a client that half-closes
 * after LOGIN or SEND still receives the answer before the close.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "token.h"

#define MAX_IN_FLIGHT 256

static uint32_t send_request(struct tclient *t, uint64_t session_id,
			     const char *client_msg_id)
{
	Imgw__SendRequest req = IMGW__SEND_REQUEST__INIT;
	int64_t id;

	req.session_id = session_id;
	req.client_msg_id = (char *)client_msg_id;
	req.payload.data = (uint8_t *)"hi";
	req.payload.len = 2;
	id = client_send(t->c, OP_SEND, &req.base);
	H_CHECK(id > 0, "sending SEND failed: %s", strerror((int)-id));
	return (uint32_t)id;
}

static uint32_t sync_request(struct tclient *t, uint64_t session_id)
{
	Imgw__SyncRequest req = IMGW__SYNC_REQUEST__INIT;
	int64_t id;

	req.session_id = session_id;
	req.from_seq = 1;
	id = client_send(t->c, OP_SYNC, &req.base);
	H_CHECK(id > 0, "sending SYNC failed: %s", strerror((int)-id));
	return (uint32_t)id;
}

static Imgw__SendResult *wait_send_result(struct tclient *t, uint32_t id)
{
	struct client_frame f;
	Imgw__SendResult *res;
	int rc;

	rc = tc_wait_op(t, OP_SEND_RESULT, id, HARNESS_WAIT_MS, &f);
	H_CHECK(rc == 0, "no SEND_RESULT for request %u: %s", id,
		strerror(-rc));
	res = imgw__send_result__unpack(NULL, f.hdr.body_len, f.body);
	client_frame_free(&f);
	H_CHECK(res, "SEND_RESULT for request %u does not decode", id);
	return res;
}

static void inflight_failed_on_drop(void **state)
{
	const char *const members[] = { "ia", "ib" };
	struct harness *h = harness_start(1, NULL);
	Imgw__SendResult *send_res;
	Imgw__SyncResult *sync_res;
	struct client_frame f;
	uint32_t send_id, sync_id;
	struct tclient *t;
	uint64_t sid;
	int rc;

	sid = admin_session_create(h, "group", "g", members, 2);
	t = tc_login(h, 0, "ia", "d");
	/* The daemon reads nothing more, then its link drops. */
	kill(h->biz.pid, SIGSTOP);
	send_id = send_request(t, sid, "m-drop");
	sync_id = sync_request(t, sid);
	usleep(300 * 1000);
	harness_biz_stop(h, SIGKILL);

	send_res = wait_send_result(t, send_id);
	H_CHECK(send_res->code == IMGW__ERROR_CODE__ERROR_UNAVAILABLE,
		"SEND in flight at the drop: code %d, expected ERROR_UNAVAILABLE",
		send_res->code);
	H_CHECK(send_res->session_id == sid,
		"SEND in flight at the drop: session %llu, expected %llu",
		(unsigned long long)send_res->session_id,
		(unsigned long long)sid);
	H_CHECK(strcmp(send_res->client_msg_id, "m-drop") == 0,
		"SEND in flight at the drop: client_msg_id \"%s\", expected \"m-drop\"",
		send_res->client_msg_id);
	imgw__send_result__free_unpacked(send_res, NULL);

	rc = tc_wait_op(t, OP_SYNC_RESULT, sync_id, HARNESS_WAIT_MS, &f);
	H_CHECK(rc == 0, "no SYNC_RESULT for request %u: %s", sync_id,
		strerror(-rc));
	sync_res = imgw__sync_result__unpack(NULL, f.hdr.body_len, f.body);
	client_frame_free(&f);
	H_CHECK(sync_res, "SYNC_RESULT does not decode");
	H_CHECK(sync_res->code == IMGW__ERROR_CODE__ERROR_UNAVAILABLE,
		"SYNC in flight at the drop: code %d, expected ERROR_UNAVAILABLE",
		sync_res->code);
	imgw__sync_result__free_unpacked(sync_res, NULL);

	/* The retry after the daemon is back succeeds. */
	harness_biz_start(h);
	harness_wait_upstream(h, 0, 1);
	send_res = wait_send_result(t, send_request(t, sid, "m-drop"));
	H_CHECK(send_res->code == IMGW__ERROR_CODE__ERROR_NONE,
		"retried SEND: code %d, expected ERROR_NONE", send_res->code);
	imgw__send_result__free_unpacked(send_res, NULL);
	tc_free(t);
	harness_stop(h);
}

static void inflight_capped_per_conn(void **state)
{
	const char *const members[] = { "ca", "cb" };
	struct harness *h = harness_start(1, NULL);
	uint32_t ids[MAX_IN_FLIGHT + 1];
	Imgw__SendResult *res;
	struct tclient *t;
	char msg_id[32];
	uint64_t sid;

	sid = admin_session_create(h, "group", "g", members, 2);
	t = tc_login(h, 0, "ca", "d");
	kill(h->biz.pid, SIGSTOP);
	for (int i = 0; i <= MAX_IN_FLIGHT; i++) {
		snprintf(msg_id, sizeof(msg_id), "cap-%d", i);
		ids[i] = send_request(t, sid, msg_id);
	}
	/* The one over the cap gets its reply while the daemon is stopped. */
	res = wait_send_result(t, ids[MAX_IN_FLIGHT]);
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_UNAVAILABLE,
		"SEND over the in-flight cap: code %d, expected ERROR_UNAVAILABLE",
		res->code);
	H_CHECK(strstr(res->reason, "in flight"),
		"SEND over the in-flight cap: reason \"%s\"", res->reason);
	imgw__send_result__free_unpacked(res, NULL);

	kill(h->biz.pid, SIGCONT);
	for (int i = 0; i < MAX_IN_FLIGHT; i++) {
		res = wait_send_result(t, ids[i]);
		H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NONE,
			"SEND %d under the cap: code %d, expected ERROR_NONE",
			i, res->code);
		imgw__send_result__free_unpacked(res, NULL);
	}
	/* Requests with a reply leave the table, so the next one goes through. */
	res = wait_send_result(t, send_request(t, sid, "after"));
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NONE,
		"SEND after the answers: code %d, expected ERROR_NONE",
		res->code);
	imgw__send_result__free_unpacked(res, NULL);
	tc_free(t);
	harness_stop(h);
}

static void half_close_answered(void **state)
{
	const char *const members[] = { "ha", "hb" };
	struct harness *h = harness_start(1, NULL);
	Imgw__LoginRequest login = IMGW__LOGIN_REQUEST__INIT;
	char token[TOKEN_MAX_LEN + 1];
	Imgw__LoginResult *login_res;
	Imgw__SendResult *res;
	struct client_frame f;
	struct tclient *t;
	uint64_t sid;
	int64_t id;
	int rc;

	sid = admin_session_create(h, "group", "g", members, 2);

	/* LOGIN, then EOF at once. */
	t = tc_connect(h, 0);
	harness_token(h, "ha", time(NULL) + 600, token);
	login.token = token;
	login.user_id = "ha";
	login.device_id = "d";
	id = client_send(t->c, OP_LOGIN, &login.base);
	H_CHECK(id > 0, "sending LOGIN failed");
	H_CHECK(shutdown(t->c->fd, SHUT_WR) == 0, "shutdown failed");
	rc = tc_wait_op(t, OP_LOGIN_RESULT, (uint32_t)id, HARNESS_WAIT_MS, &f);
	H_CHECK(rc == 0, "no LOGIN_RESULT after a half-close: %s",
		strerror(-rc));
	login_res = imgw__login_result__unpack(NULL, f.hdr.body_len, f.body);
	client_frame_free(&f);
	H_CHECK(login_res && login_res->code == IMGW__ERROR_CODE__ERROR_NONE,
		"LOGIN after a half-close: code %d, expected ERROR_NONE",
		login_res ? (int)login_res->code : -1);
	imgw__login_result__free_unpacked(login_res, NULL);
	H_CHECK(tc_wait_closed(t, HARNESS_WAIT_MS) == 0,
		"the gateway kept a half-closed, answered connection open");
	tc_free(t);

	/* SEND, then EOF. */
	t = tc_login(h, 0, "hb", "d");
	id = send_request(t, sid, "half");
	H_CHECK(shutdown(t->c->fd, SHUT_WR) == 0, "shutdown failed");
	res = wait_send_result(t, (uint32_t)id);
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NONE,
		"SEND after a half-close: code %d, expected ERROR_NONE",
		res->code);
	H_CHECK(res->seq == 1, "SEND after a half-close: seq %llu, expected 1",
		(unsigned long long)res->seq);
	imgw__send_result__free_unpacked(res, NULL);
	H_CHECK(tc_wait_closed(t, HARNESS_WAIT_MS) == 0,
		"the gateway kept a half-closed, answered connection open");
	tc_free(t);
	harness_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(inflight_failed_on_drop,
					  harness_teardown),
		cmocka_unit_test_teardown(inflight_capped_per_conn,
					  harness_teardown),
		cmocka_unit_test_teardown(half_close_answered,
					  harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * Idle timeouts on a gateway started with --heartbeat-timeout 1 and
 * --login-timeout 1: a silent logged-in connection is kicked with
 * "heartbeat timeout", one that never logs in with "login timeout", and a
 * client sending HEARTBEAT every 300 ms stays and gets every HEARTBEAT_ACK.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define TIMEOUT_S 1
/* Lower bound for a kick; a little under the timeout for timer slack. */
#define MIN_KICK_MS 800
#define BEAT_MS 300
#define BEATS 10

static const struct gw_options opts[] = {
	{ .heartbeat_timeout = TIMEOUT_S, .login_timeout = TIMEOUT_S },
};

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void expect_kick(struct tclient *t, const char *reason,
			uint64_t since_ms)
{
	uint64_t elapsed;
	int err = tc_wait_closed(t, HARNESS_WAIT_MS);

	elapsed = client_now_ms(1) - since_ms;
	H_CHECK(err == 0, "connection not closed within %d ms, expected \"%s\"",
		HARNESS_WAIT_MS, reason);
	H_CHECK(t->kicked, "connection closed without a KICK, expected \"%s\"",
		reason);
	H_CHECK(strcmp(t->kick_reason, reason) == 0,
		"KICK reason \"%s\", expected \"%s\"", t->kick_reason, reason);
	print_message("\"%s\" kick after %llu ms\n", reason,
		      (unsigned long long)elapsed);
	H_CHECK(elapsed >= MIN_KICK_MS,
		"kicked after %llu ms, expected at least %d ms of silence",
		(unsigned long long)elapsed, MIN_KICK_MS);
}

static void test_heartbeat_timeout(void **state)
{
	struct harness *h = harness_start(1, opts);
	struct tclient *t = tc_login(h, 0, "idle", "d");
	uint64_t start = client_now_ms(1);

	expect_kick(t, "heartbeat timeout", start);
	tc_free(t);

	/* The device can come back after the kick. */
	t = tc_login(h, 0, "idle", "d");
	H_CHECK(tc_heartbeat(t, HARNESS_WAIT_MS) == 0,
		"no HEARTBEAT_ACK after logging in again");
	tc_free(t);
}

static void test_login_timeout(void **state)
{
	struct harness *h = harness_start(1, opts);
	struct tclient *t = tc_connect(h, 0);
	uint64_t start = client_now_ms(1);

	expect_kick(t, "login timeout", start);
	tc_free(t);
}

static void test_heartbeat_keepalive(void **state)
{
	struct harness *h = harness_start(1, opts);
	const char *const members[] = { "beat", "peer" };
	struct tclient *t, *peer;
	uint64_t sid, seq;

	sid = admin_session_create(h, "group", "alive", members, 2);
	t = tc_login(h, 0, "beat", "d");
	for (int i = 0; i < BEATS; i++) {
		int err;

		sleep_ms(BEAT_MS);
		err = tc_heartbeat(t, HARNESS_WAIT_MS);
		H_CHECK(err == 0,
			"heartbeat %d: no HEARTBEAT_ACK with the request id (%s)",
			i, strerror(-err));
	}
	H_CHECK(!t->kicked, "kicked after %d heartbeats: %s", BEATS,
		t->kick_reason);
	H_CHECK(!t->closed, "closed after %d heartbeats", BEATS);

	/* Still a full member after three timeouts' worth of time. */
	peer = tc_login(h, 0, "peer", "d");
	seq = tc_send_ok(peer, sid, "are you there");
	H_CHECK(tc_wait_push(t, sid, seq, HARNESS_WAIT_MS) >= 0,
		"the heartbeating client did not get seq %llu",
		(unsigned long long)seq);
	tc_free(peer);
	tc_free(t);
}

static void test_heartbeat_any_frame(void **state)
{
	struct harness *h = harness_start(1, opts);
	const char *const members[] = { "talk", "peer" };
	struct tclient *t;
	uint64_t sid;

	/* SEND and SYNC count as activity, like HEARTBEAT. */
	sid = admin_session_create(h, "group", "chatty", members, 2);
	t = tc_login(h, 0, "talk", "d");
	for (int i = 0; i < BEATS; i++) {
		Imgw__SyncResult *res;
		char payload[16];
		int err;

		sleep_ms(BEAT_MS);
		snprintf(payload, sizeof(payload), "beat %d", i);
		if (i % 2 == 0) {
			tc_send_ok(t, sid, payload);
			continue;
		}
		err = tc_sync(t, sid, 1, 1, &res);
		H_CHECK(err == 0, "sync %d failed: %s", i, strerror(-err));
		imgw__sync_result__free_unpacked(res, NULL);
	}
	H_CHECK(!t->kicked, "kicked while sending every %d ms: %s", BEAT_MS,
		t->kick_reason);
	tc_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_heartbeat_timeout,
					  harness_teardown),
		cmocka_unit_test_teardown(test_login_timeout,
					  harness_teardown),
		cmocka_unit_test_teardown(test_heartbeat_keepalive,
					  harness_teardown),
		cmocka_unit_test_teardown(test_heartbeat_any_frame,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("heartbeat", tests, NULL, NULL);
}

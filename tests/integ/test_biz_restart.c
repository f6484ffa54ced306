// SPDX-License-Identifier: MIT
/*
 * bizsvr restart: while the daemon is down, SEND and SYNC get
 * ERROR_UNAVAILABLE on a connection that stays open, and LOGIN gets it too.
 * After a restart on the same database the gateway reconnects by itself,
 * logged-in clients receive pushes again without logging in, acknowledged
 * messages are still there, and seq numbers continue without reuse.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "token.h"

#define BEFORE 5

static void expect_unavailable(struct tclient *a, uint64_t sid)
{
	Imgw__SendResult *send;
	Imgw__SyncResult *sync;
	int err;

	err = tc_send(a, sid, NULL, "into the void", &send);
	H_CHECK(err == 0, "send while bizsvr is down: %s", strerror(-err));
	H_CHECK(send->code == IMGW__ERROR_CODE__ERROR_UNAVAILABLE,
		"send while bizsvr is down: code %d, expected ERROR_UNAVAILABLE (%d)",
		send->code, IMGW__ERROR_CODE__ERROR_UNAVAILABLE);
	imgw__send_result__free_unpacked(send, NULL);

	err = tc_sync(a, sid, 1, 0, &sync);
	H_CHECK(err == 0, "sync while bizsvr is down: %s", strerror(-err));
	H_CHECK(sync->code == IMGW__ERROR_CODE__ERROR_UNAVAILABLE,
		"sync while bizsvr is down: code %d, expected ERROR_UNAVAILABLE (%d)",
		sync->code, IMGW__ERROR_CODE__ERROR_UNAVAILABLE);
	imgw__sync_result__free_unpacked(sync, NULL);

	/* The connection stays. */
	H_CHECK(tc_heartbeat(a, HARNESS_WAIT_MS) == 0,
		"no HEARTBEAT_ACK while bizsvr is down");
	H_CHECK(!a->closed && !a->kicked,
		"connection closed while bizsvr is down (kick \"%s\")",
		a->kick_reason);
}

static void expect_login_unavailable(struct harness *h)
{
	char token[TOKEN_MAX_LEN + 1];
	struct tclient *t = tc_connect(h, 0);
	int err;

	harness_token(h, "newbie", (int64_t)time(NULL) + 3600, token);
	err = tc_login_token(t, "newbie", "d", token);
	H_CHECK(err == -EACCES,
		"login while bizsvr is down returned %d (%s), expected a rejection",
		err, strerror(-err));
	H_CHECK(t->login->code == IMGW__ERROR_CODE__ERROR_UNAVAILABLE,
		"login while bizsvr is down: code %d, expected ERROR_UNAVAILABLE (%d)",
		t->login->code, IMGW__ERROR_CODE__ERROR_UNAVAILABLE);
	tc_free(t);
}

/* Checks that sync from 1 returns exactly want, in order. */
static void expect_history(struct tclient *t, uint64_t sid,
			   const struct sent_msg *want, size_t count)
{
	Imgw__SyncResult *res;
	int err = tc_sync(t, sid, 1, 0, &res);

	H_CHECK(err == 0, "sync after restart failed: %s", strerror(-err));
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NONE,
		"sync after restart: code %d, expected 0", res->code);
	H_CHECK(res->n_messages == count,
		"sync after restart: %zu messages, expected %zu",
		res->n_messages, count);
	for (size_t i = 0; i < count; i++) {
		const Imgw__Push *m = res->messages[i];

		H_CHECK(m->seq == want[i].seq,
			"history entry %zu: seq %llu, expected %llu", i,
			(unsigned long long)m->seq,
			(unsigned long long)want[i].seq);
		H_CHECK(m->payload.len == strlen(want[i].payload) &&
			memcmp(m->payload.data, want[i].payload,
			       m->payload.len) == 0,
			"history seq %llu: payload differs from \"%s\"",
			(unsigned long long)m->seq, want[i].payload);
	}
	imgw__sync_result__free_unpacked(res, NULL);
}

static void run_biz_restart(int sig)
{
	struct harness *h = harness_start(1, NULL);
	const char *const members[] = { "ada", "bea" };
	static struct sent_msg sent[BEFORE * 3];
	struct tclient *ada, *bea;
	size_t sent_count = 0;
	uint64_t sid, seq;

	sid = admin_session_create(h, "group", "durable", members, 2);
	ada = tc_login(h, 0, "ada", "d");
	bea = tc_login(h, 0, "bea", "d");
	for (int i = 0; i < BEFORE; i++) {
		char payload[32];

		snprintf(payload, sizeof(payload), "before-%d", i);
		sent_add(sent, &sent_count, tc_send_ok(ada, sid, payload),
			 "ada", payload);
	}

	harness_biz_stop(h, sig);
	harness_wait_upstream(h, 0, 0);
	expect_unavailable(ada, sid);
	expect_login_unavailable(h);

	harness_biz_start(h);
	harness_wait_upstream(h, 0, 1);
	harness_wait_gateways(h, 1);

	/* Seqs continue after the stored ones; bea's login is remembered. */
	seq = tc_send_ok(ada, sid, "after");
	H_CHECK(seq > sent[sent_count - 1].seq,
		"first seq after restart %llu reuses one, expected above %llu",
		(unsigned long long)seq,
		(unsigned long long)sent[sent_count - 1].seq);
	sent_add(sent, &sent_count, seq, "ada", "after");
	H_CHECK(tc_wait_push(bea, sid, seq, HARNESS_WAIT_MS) >= 0,
		"bea, logged in before the restart, did not get seq %llu",
		(unsigned long long)seq);
	/* Exactly the acknowledged messages: the unavailable send is not
	 * stored either. */
	expect_history(bea, sid, sent, sent_count);

	/* New logins work again. */
	{
		struct tclient *late = tc_login(h, 0, "newbie", "d");

		tc_free(late);
	}

	tc_free(ada);
	tc_free(bea);
}

static void test_biz_sigterm(void **state)
{
	run_biz_restart(SIGTERM);
}

static void test_biz_sigkill(void **state)
{
	run_biz_restart(SIGKILL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_biz_sigterm, harness_teardown),
		cmocka_unit_test_teardown(test_biz_sigkill, harness_teardown),
	};

	return cmocka_run_group_tests_name("biz_restart", tests, NULL, NULL);
}

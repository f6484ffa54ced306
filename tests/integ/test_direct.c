// SPDX-License-Identifier: MIT
/*
 * One-to-one chat: a SEND with to_user opens the direct session of the two
 * users, the peer gets exactly that push, and later messages in either
 * direction reuse the same session id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define QUIET_MS 300

static uint64_t send_direct(struct tclient *t, const char *to_user,
			    const char *payload, uint64_t *seq)
{
	Imgw__SendResult *res;
	uint64_t sid;
	int err = tc_send(t, 0, to_user, payload, &res);

	H_CHECK(err == 0, "%s: send to user %s failed: %s", t->user, to_user,
		strerror(-err));
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NONE,
		"%s: send to user %s: code %d (%s), expected 0", t->user,
		to_user, res->code, res->reason ? res->reason : "");
	H_CHECK(res->session_id > 0,
		"%s: send to user %s: session id 0, expected one", t->user,
		to_user);
	H_CHECK(res->seq > 0, "%s: send to user %s: seq 0, expected > 0",
		t->user, to_user);
	sid = res->session_id;
	*seq = res->seq;
	imgw__send_result__free_unpacked(res, NULL);
	return sid;
}

static void test_direct_push(void **state)
{
	struct harness *h = harness_start(2, NULL);
	struct tclient *alice, *bob, *bob2, *carol;
	struct sent_msg to_bob[4], to_alice[4];
	size_t n_bob = 0, n_alice = 0;
	uint64_t sid, sid2, seq;

	alice = tc_login(h, 0, "alice", "phone");
	bob = tc_login(h, 1, "bob", "phone");
	bob2 = tc_login(h, 0, "bob", "laptop");
	carol = tc_login(h, 1, "carol", "phone");

	sid = send_direct(alice, "bob", "hi bob", &seq);
	sent_add(to_bob, &n_bob, seq, "alice", "hi bob");
	tc_collect(bob, 1, HARNESS_WAIT_MS);
	tc_collect(bob, 2, QUIET_MS);
	tc_check_pushes(bob, sid, to_bob, n_bob);
	H_CHECK(bob->push_count == 1, "bob got %zu pushes, expected 1",
		bob->push_count);

	/* The reply in the other direction reuses the session. */
	sid2 = send_direct(bob, "alice", "hi alice", &seq);
	H_CHECK(sid2 == sid, "reply went to session %llu, expected %llu",
		(unsigned long long)sid2, (unsigned long long)sid);
	sent_add(to_alice, &n_alice, seq, "bob", "hi alice");
	sent_add(to_bob, &n_bob, seq, "bob", "hi alice");

	/* So does a second message from the same side. */
	sid2 = send_direct(alice, "bob", "again", &seq);
	H_CHECK(sid2 == sid, "second message went to session %llu, expected %llu",
		(unsigned long long)sid2, (unsigned long long)sid);
	sent_add(to_bob, &n_bob, seq, "alice", "again");

	/* And a send by session id. */
	seq = tc_send_ok(alice, sid, "by id");
	sent_add(to_bob, &n_bob, seq, "alice", "by id");

	tc_collect(alice, n_alice, HARNESS_WAIT_MS);
	tc_collect(alice, n_alice + 1, QUIET_MS);
	tc_check_pushes(alice, sid, to_alice, n_alice);
	H_CHECK(alice->push_count == n_alice,
		"alice got %zu pushes, expected %zu", alice->push_count,
		n_alice);

	/* bob's phone sent "hi alice" itself; his laptop gets all four. */
	{
		struct sent_msg phone[4];
		size_t n_phone = 0;

		for (size_t i = 0; i < n_bob; i++)
			if (strcmp(to_bob[i].payload, "hi alice") != 0)
				phone[n_phone++] = to_bob[i];
		tc_collect(bob, n_phone, HARNESS_WAIT_MS);
		tc_collect(bob, n_phone + 1, QUIET_MS);
		tc_check_pushes(bob, sid, phone, n_phone);
	}
	tc_collect(bob2, n_bob, HARNESS_WAIT_MS);
	tc_collect(bob2, n_bob + 1, QUIET_MS);
	tc_check_pushes(bob2, sid, to_bob, n_bob);

	tc_collect(carol, 1, QUIET_MS);
	H_CHECK(carol->push_count == 0, "carol got %zu pushes, expected none",
		carol->push_count);

	tc_free(alice);
	tc_free(bob);
	tc_free(bob2);
	tc_free(carol);
}

static void test_direct_rejects(void **state)
{
	struct harness *h = harness_start(1, NULL);
	struct tclient *alice, *carol;
	Imgw__SendResult *res;
	uint64_t sid, seq;
	int err;

	alice = tc_login(h, 0, "alice", "phone");
	carol = tc_login(h, 0, "carol", "phone");
	sid = send_direct(alice, "bob", "bob is offline", &seq);

	/* A third user is not a member of the pair's session. */
	err = tc_send(carol, sid, NULL, "let me in", &res);
	H_CHECK(err == 0, "carol's send failed: %s", strerror(-err));
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NOT_MEMBER,
		"third user's send: code %d, expected ERROR_NOT_MEMBER (%d)",
		res->code, IMGW__ERROR_CODE__ERROR_NOT_MEMBER);
	imgw__send_result__free_unpacked(res, NULL);

	/* No such session. */
	err = tc_send(alice, 987654321, NULL, "nowhere", &res);
	H_CHECK(err == 0, "send to an unknown session failed: %s",
		strerror(-err));
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NO_SESSION,
		"send to an unknown session: code %d, expected ERROR_NO_SESSION (%d)",
		res->code, IMGW__ERROR_CODE__ERROR_NO_SESSION);
	imgw__send_result__free_unpacked(res, NULL);

	/* Sending to yourself is a bad request. */
	err = tc_send(alice, 0, "alice", "me", &res);
	H_CHECK(err == 0, "send to self failed: %s", strerror(-err));
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_BAD_REQUEST,
		"send to self: code %d, expected ERROR_BAD_REQUEST (%d)",
		res->code, IMGW__ERROR_CODE__ERROR_BAD_REQUEST);
	imgw__send_result__free_unpacked(res, NULL);

	/* A payload over bizsvr's --max-payload (32768 bytes). */
	{
		char *big = malloc(h->max_payload + 2);

		H_CHECK(big != NULL, "out of memory");
		memset(big, 'x', h->max_payload + 1);
		big[h->max_payload + 1] = '\0';
		err = tc_send(alice, sid, NULL, big, &res);
		free(big);
		H_CHECK(err == 0, "oversized send failed: %s", strerror(-err));
		H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_TOO_LARGE,
			"payload of max_payload + 1 bytes: code %d, expected ERROR_TOO_LARGE (%d)",
			res->code, IMGW__ERROR_CODE__ERROR_TOO_LARGE);
		imgw__send_result__free_unpacked(res, NULL);
	}

	/* The connections stay usable after rejected sends. */
	H_CHECK(tc_heartbeat(alice, HARNESS_WAIT_MS) == 0,
		"alice: no HEARTBEAT_ACK after rejected sends");
	H_CHECK(tc_heartbeat(carol, HARNESS_WAIT_MS) == 0,
		"carol: no HEARTBEAT_ACK after a rejected send");

	/* bob, offline while it was sent, finds the message by syncing. */
	{
		struct tclient *bob = tc_login(h, 0, "bob", "phone");
		Imgw__SyncResult *sync;

		err = tc_sync(bob, sid, 1, 0, &sync);
		H_CHECK(err == 0, "bob's sync failed: %s", strerror(-err));
		H_CHECK(sync->code == IMGW__ERROR_CODE__ERROR_NONE,
			"bob's sync: code %d, expected 0", sync->code);
		H_CHECK(sync->n_messages == 1,
			"bob's sync: %zu messages, expected 1",
			sync->n_messages);
		H_CHECK(sync->messages[0]->seq == seq,
			"bob's sync: seq %llu, expected %llu",
			(unsigned long long)sync->messages[0]->seq,
			(unsigned long long)seq);
		H_CHECK(sync->messages[0]->payload.len == 14 &&
			memcmp(sync->messages[0]->payload.data,
			       "bob is offline", 14) == 0,
			"bob's sync: wrong payload");
		imgw__sync_result__free_unpacked(sync, NULL);
		tc_free(bob);
	}

	tc_free(alice);
	tc_free(carol);
}

static void test_direct_retry_once(void **state)
{
	struct harness *h = harness_start(1, NULL);
	struct tclient *alice, *bob;
	Imgw__SendResult *res;
	uint64_t sid, seq, next;
	int err;

	alice = tc_login(h, 0, "alice", "phone");
	bob = tc_login(h, 0, "bob", "phone");
	sid = send_direct(alice, "bob", "open", &seq);
	tc_wait_push(bob, sid, seq, HARNESS_WAIT_MS);

	err = tc_send_id(alice, sid, NULL, "retry-1", "only once", &res);
	H_CHECK(err == 0, "first send of retry-1 failed: %s", strerror(-err));
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NONE,
		"first send of retry-1: code %d, expected 0", res->code);
	seq = res->seq;
	imgw__send_result__free_unpacked(res, NULL);

	/* The retry with the same client_msg_id gets the same seq. */
	err = tc_send_id(alice, sid, NULL, "retry-1", "only once", &res);
	H_CHECK(err == 0, "retry of retry-1 failed: %s", strerror(-err));
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NONE,
		"retry of retry-1: code %d, expected 0", res->code);
	H_CHECK(res->seq == seq, "retry got seq %llu, expected the first seq %llu",
		(unsigned long long)res->seq, (unsigned long long)seq);
	H_CHECK(strcmp(res->client_msg_id, "retry-1") == 0,
		"SEND_RESULT client_msg_id \"%s\", expected \"retry-1\"",
		res->client_msg_id);
	imgw__send_result__free_unpacked(res, NULL);

	/* The next message takes the next seq: the retry stored nothing. */
	next = tc_send_ok(alice, sid, "next");
	H_CHECK(next == seq + 1, "seq after a retry %llu, expected %llu",
		(unsigned long long)next, (unsigned long long)seq + 1);
	H_CHECK(tc_wait_push(bob, sid, next, HARNESS_WAIT_MS) >= 0,
		"bob did not get seq %llu", (unsigned long long)next);
	{
		size_t copies = 0;

		for (size_t i = 0; i < bob->push_count; i++)
			copies += bob->pushes[i].seq == seq;
		H_CHECK(copies == 1, "bob got seq %llu %zu times, expected once",
			(unsigned long long)seq, copies);
	}
	tc_free(alice);
	tc_free(bob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_direct_push, harness_teardown),
		cmocka_unit_test_teardown(test_direct_rejects,
					  harness_teardown),
		cmocka_unit_test_teardown(test_direct_retry_once,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("direct", tests, NULL, NULL);
}

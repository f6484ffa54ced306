// SPDX-License-Identifier: MIT
/*
 * Group delivery across two gateways and one bizsvr: every online device of
 * every member receives every message exactly once and in seq order, except
 * the device that sent it, which gets its SEND_RESULT instead. Membership
 * changes through the admin API take effect for the next message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define ROUNDS 4
#define QUIET_MS 300

struct member_dev {
	const char *user;
	const char *device;
	int gw;
};

/* ann has two devices, one on each gateway. */
static const struct member_dev devices[] = {
	{ "ann", "phone", 0 }, { "ben", "phone", 1 }, { "cid", "pc", 0 },
	{ "ann", "laptop", 1 }, { "dan", "phone", 1 }, { "eve", "pad", 0 },
	{ "fay", "phone", 1 },
};
#define DEVICE_COUNT (sizeof(devices) / sizeof(devices[0]))
static const char *const members[] = {
	"ann", "ben", "cid", "dan", "eve", "fay",
};

static int login_has_session(const Imgw__LoginResult *login, uint64_t sid)
{
	for (size_t i = 0; i < login->n_sessions; i++)
		if (login->sessions[i]->session_id == sid)
			return 1;
	return 0;
}

static void login_all(struct harness *h, uint64_t sid,
		      struct tclient **clients)
{
	for (size_t i = 0; i < DEVICE_COUNT; i++) {
		clients[i] = tc_login(h, devices[i].gw, devices[i].user,
				      devices[i].device);
		H_CHECK(login_has_session(clients[i]->login, sid),
			"%s/%s: LOGIN_RESULT lacks group session %llu",
			devices[i].user, devices[i].device,
			(unsigned long long)sid);
	}
}

static void test_group_delivery(void **state)
{
	struct harness *h = harness_start(2, NULL);
	struct tclient *clients[DEVICE_COUNT], *outsider;
	static struct sent_msg sent[DEVICE_COUNT * ROUNDS];
	const char *senders[DEVICE_COUNT * ROUNDS];
	size_t sent_count = 0;
	uint64_t sid;

	sid = admin_session_create(h, "group", "team", members, 6);
	login_all(h, sid, clients);
	outsider = tc_login(h, 0, "zed", "phone");

	/* Interleaved senders on both gateways, ann from both devices. */
	for (int r = 0; r < ROUNDS; r++) {
		for (size_t i = 0; i < DEVICE_COUNT; i++) {
			char payload[64];
			uint64_t seq;

			snprintf(payload, sizeof(payload), "r%d-%s-%s", r,
				 devices[i].user, devices[i].device);
			seq = tc_send_ok(clients[i], sid, payload);
			H_CHECK(sent_count == 0 ||
				seq == sent[sent_count - 1].seq + 1,
				"seq %llu after %llu, expected consecutive seqs",
				(unsigned long long)seq,
				(unsigned long long)sent[sent_count - 1].seq);
			senders[sent_count] = devices[i].device;
			sent_add(sent, &sent_count, seq, devices[i].user,
				 payload);
		}
	}

	for (size_t i = 0; i < DEVICE_COUNT; i++) {
		static struct sent_msg want[DEVICE_COUNT * ROUNDS];
		size_t want_count = 0;

		/* Everything except what this very device sent. */
		for (size_t m = 0; m < sent_count; m++)
			if (strcmp(sent[m].sender, devices[i].user) != 0 ||
			    strcmp(senders[m], devices[i].device) != 0)
				want[want_count++] = sent[m];
		tc_collect(clients[i], want_count, HARNESS_WAIT_MS);
		/* Give duplicates a moment to show up. */
		tc_collect(clients[i], want_count + 1, QUIET_MS);
		tc_check_pushes(clients[i], sid, want, want_count);
		H_CHECK(clients[i]->push_count == want_count,
			"%s/%s: %zu pushes in all, expected %zu",
			devices[i].user, devices[i].device,
			clients[i]->push_count, want_count);
		H_CHECK(!clients[i]->kicked, "%s/%s was kicked: %s",
			devices[i].user, devices[i].device,
			clients[i]->kick_reason);
	}

	tc_collect(outsider, 1, QUIET_MS);
	H_CHECK(outsider->push_count == 0,
		"non-member zed got %zu pushes, expected none",
		outsider->push_count);

	for (size_t i = 0; i < DEVICE_COUNT; i++)
		tc_free(clients[i]);
	tc_free(outsider);
}

static void test_group_membership(void **state)
{
	struct harness *h = harness_start(2, NULL);
	const char *const start[] = { "amy", "bob", "cat" };
	const char *const added[] = { "dov" };
	struct tclient *amy, *bob, *cat, *dov;
	static struct sent_msg want_bob[8], want_cat[8], want_dov[8];
	size_t n_bob = 0, n_cat = 0, n_dov = 0;
	uint64_t sid, seq;

	sid = admin_session_create(h, "group", "club", start, 3);
	amy = tc_login(h, 0, "amy", "d1");
	bob = tc_login(h, 1, "bob", "d1");
	cat = tc_login(h, 0, "cat", "d1");
	dov = tc_login(h, 1, "dov", "d1");

	/* A server push reaches every member, the sender need not be one. */
	seq = admin_push(h, sid, "system", "welcome");
	sent_add(want_bob, &n_bob, seq, "system", "welcome");
	sent_add(want_cat, &n_cat, seq, "system", "welcome");

	/* dov is not a member yet: rejected, and gets nothing. */
	{
		Imgw__SendResult *res;
		int err = tc_send(dov, sid, NULL, "let me in", &res);

		H_CHECK(err == 0, "dov's send failed: %s", strerror(-err));
		H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NOT_MEMBER,
			"non-member send: code %d, expected ERROR_NOT_MEMBER (%d)",
			res->code, IMGW__ERROR_CODE__ERROR_NOT_MEMBER);
		imgw__send_result__free_unpacked(res, NULL);
	}

	admin_members_add(h, sid, added, 1);
	seq = tc_send_ok(amy, sid, "hello dov");
	sent_add(want_bob, &n_bob, seq, "amy", "hello dov");
	sent_add(want_cat, &n_cat, seq, "amy", "hello dov");
	sent_add(want_dov, &n_dov, seq, "amy", "hello dov");
	seq = tc_send_ok(dov, sid, "hi all");
	sent_add(want_bob, &n_bob, seq, "dov", "hi all");
	sent_add(want_cat, &n_cat, seq, "dov", "hi all");

	admin_member_remove(h, sid, "cat");
	seq = tc_send_ok(bob, sid, "cat left");
	sent_add(want_dov, &n_dov, seq, "bob", "cat left");
	{
		Imgw__SendResult *res;
		int err = tc_send(cat, sid, NULL, "still here?", &res);

		H_CHECK(err == 0, "cat's send failed: %s", strerror(-err));
		H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NOT_MEMBER,
			"removed member's send: code %d, expected ERROR_NOT_MEMBER (%d)",
			res->code, IMGW__ERROR_CODE__ERROR_NOT_MEMBER);
		imgw__send_result__free_unpacked(res, NULL);
	}

	tc_collect(bob, n_bob, HARNESS_WAIT_MS);
	tc_collect(cat, n_cat, HARNESS_WAIT_MS);
	tc_collect(dov, n_dov, HARNESS_WAIT_MS);
	/* Give stray pushes a moment to show up. */
	tc_collect(bob, n_bob + 1, QUIET_MS);
	tc_collect(cat, n_cat + 1, QUIET_MS);
	tc_collect(dov, n_dov + 1, QUIET_MS);
	tc_check_pushes(bob, sid, want_bob, n_bob);
	tc_check_pushes(cat, sid, want_cat, n_cat);
	tc_check_pushes(dov, sid, want_dov, n_dov);

	tc_free(amy);
	tc_free(bob);
	tc_free(cat);
	tc_free(dov);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_group_delivery,
					  harness_teardown),
		cmocka_unit_test_teardown(test_group_membership,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("group", tests, NULL, NULL);
}

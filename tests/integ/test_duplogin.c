// SPDX-License-Identifier: MIT
/*
 * Duplicate login: the same user and device logging in again, on the same
 * gateway or on another one, kicks the old connection with "duplicate
 * login" and closes it, while the new connection keeps receiving pushes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define QUIET_MS 300

static void expect_kicked(struct tclient *t, const char *why)
{
	int err = tc_wait_closed(t, HARNESS_WAIT_MS);

	H_CHECK(err == 0, "%s: old connection still open after %d ms (%s)",
		t->user, HARNESS_WAIT_MS, why);
	H_CHECK(t->kicked, "%s: old connection closed without a KICK (%s)",
		t->user, why);
	H_CHECK(strcmp(t->kick_reason, "duplicate login") == 0,
		"%s: KICK reason \"%s\", expected \"duplicate login\" (%s)",
		t->user, t->kick_reason, why);
}

/* Pushes one message and checks that t, and only t of the pair, gets it. */
static void expect_push(struct harness *h, uint64_t sid, struct tclient *t,
			const char *payload)
{
	uint64_t seq = admin_push(h, sid, "system", payload);
	long at;

	at = tc_wait_push(t, sid, seq, HARNESS_WAIT_MS);
	H_CHECK(at >= 0, "%s/%s (conn %llu on %s): push seq %llu (\"%s\") not received",
		t->user, t->device, (unsigned long long)t->conn_id,
		t->h->gw[t->gw].name, (unsigned long long)seq, payload);
	H_CHECK(strcmp(t->pushes[at].payload, payload) == 0,
		"%s: push seq %llu payload \"%s\", expected \"%s\"", t->user,
		(unsigned long long)seq, t->pushes[at].payload, payload);
}

static void test_duplogin_same_gateway(void **state)
{
	struct harness *h = harness_start(2, NULL);
	const char *const members[] = { "xia", "yan" };
	struct tclient *old, *fresh, *other_dev;
	uint64_t sid;

	sid = admin_session_create(h, "group", "dup", members, 2);
	old = tc_login(h, 0, "xia", "phone");
	other_dev = tc_login(h, 0, "xia", "laptop");
	expect_push(h, sid, old, "first");

	fresh = tc_login(h, 0, "xia", "phone");
	expect_kicked(old, "second login on the same gateway");
	expect_push(h, sid, fresh, "after same-gateway relogin");

	/* Another device of the same user is left alone. */
	expect_push(h, sid, other_dev, "laptop still here");
	H_CHECK(!other_dev->kicked, "xia/laptop was kicked: %s",
		other_dev->kick_reason);

	tc_free(old);
	tc_free(fresh);
	tc_free(other_dev);
}

static void test_duplogin_other_gateway(void **state)
{
	struct harness *h = harness_start(2, NULL);
	const char *const members[] = { "xia", "yan" };
	struct tclient *first, *second, *third, *pad;
	uint64_t sid;

	sid = admin_session_create(h, "group", "dup", members, 2);
	first = tc_login(h, 0, "xia", "phone");
	expect_push(h, sid, first, "first");

	/* Open a spare connection on gw1 first, so connection ids on the two
	 * gateways are likely to collide: presence must key on the node too. */
	pad = tc_connect(h, 1);
	second = tc_login(h, 1, "xia", "phone");
	expect_kicked(first, "second login on the other gateway");
	/* Let the old connection's offline presence reach bizsvr. */
	tc_collect(second, 1, QUIET_MS);
	expect_push(h, sid, second, "after cross-gateway relogin");

	/* And back to the first gateway. */
	third = tc_login(h, 0, "xia", "phone");
	expect_kicked(second, "third login, back on the first gateway");
	tc_collect(third, 1, QUIET_MS);
	expect_push(h, sid, third, "after the third login");

	/* The new connection's SEND still works and reaches the peer. */
	{
		struct tclient *yan = tc_login(h, 1, "yan", "phone");
		uint64_t seq = tc_send_ok(third, sid, "from the survivor");

		tc_collect(yan, 1, HARNESS_WAIT_MS);
		H_CHECK(tc_find_push(yan, sid, seq) >= 0,
			"yan did not get seq %llu from the newest connection",
			(unsigned long long)seq);
		tc_free(yan);
	}

	tc_free(first);
	tc_free(second);
	tc_free(third);
	tc_free(pad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_duplogin_same_gateway,
					  harness_teardown),
		cmocka_unit_test_teardown(test_duplogin_other_gateway,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("duplogin", tests, NULL, NULL);
}

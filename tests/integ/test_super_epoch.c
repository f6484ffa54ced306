// SPDX-License-Identifier: MIT
/*
 * Forced upgrade, demote and upgrade in quick succession, with and without
 * messages in between: acks of the earlier transitions arrive late and
 * must not count for the later ones. The session converges with every
 * gateway's cache at the daemon's epoch, and each member gets every
 * message once and in order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_super.h"

#define GWS 3
#define MEMBERS 9
#define ROUNDS 5

static const char *const biz_args[] = {
	"--super-upgrade-min-members", "1000",
	"--super-retry-ms", "200",
	NULL,
};

static const char *const members[MEMBERS] = {
	"ann", "ben", "cid", "dan", "eve", "fay", "gil", "hal", "ivy",
};

static struct sgroup group;

static void check_caches(struct harness *h, struct tclient **devs,
			 long long epoch)
{
	for (int gw = 0; gw < GWS; gw++) {
		uint64_t conns[MEMBERS];
		size_t n = 0;

		for (int i = 0; i < MEMBERS; i++)
			if (devs[i]->gw == gw)
				conns[n++] = devs[i]->conn_id;
		gw_cache_check(h, gw, group.sid, conns, n, epoch);
	}
}

static long long epoch_of(json_t *reply)
{
	return (long long)json_integer_value(json_object_get(reply, "epoch"));
}

/* Forces upgrade, demote, upgrade, sending a message after each when
 * with_messages is set, and checks the converged result. */
static void flip(struct harness *h, struct tclient **devs, int with_messages)
{
	static const char *const actions[] = { "upgrade", "demote",
					       "upgrade" };
	long long first = -1, epoch;
	json_t *reply;

	for (int a = 0; a < 3; a++) {
		reply = super_post(h, group.sid, actions[a]);
		epoch = epoch_of(reply);
		/* Epochs are 32-bit serial numbers and may wrap. */
		H_CHECK(first < 0 || epoch == (uint32_t)(first + a),
			"epoch %lld after %d forced transitions from %lld, expected %u",
			epoch, a, first, (uint32_t)(first + a));
		if (first < 0)
			first = epoch;
		json_decref(reply);
		if (with_messages)
			sg_send(&group, devs[a % MEMBERS], actions[a]);
	}
	reply = super_wait(h, group.sid, "super", 1, SUPER_WAIT_MS);
	epoch = epoch_of(reply);
	json_decref(reply);
	H_CHECK(epoch == (uint32_t)(first + 2),
		"converged at epoch %lld, expected %u", epoch,
		(uint32_t)(first + 2));
	check_caches(h, devs, epoch);
}

static void test_super_epoch_flips(void **state)
{
	struct harness *h = harness_start_args(GWS, NULL, biz_args);
	struct tclient *devs[MEMBERS];

	memset(&group, 0, sizeof(group));
	group.h = h;
	group.sid = admin_session_create(h, "group", "flips", members,
					 MEMBERS);
	for (int i = 0; i < MEMBERS; i++)
		devs[i] = tc_login(h, i % GWS, members[i], "phone");

	for (int r = 0; r < ROUNDS; r++) {
		flip(h, devs, r % 2);
		for (int n = 0; n < MEMBERS; n++)
			sg_send(&group, devs[n], "super");
		/* Back to normal, converged, before the next round. */
		json_decref(super_post(h, group.sid, "demote"));
		json_decref(super_wait(h, group.sid, "normal", 1,
				       SUPER_WAIT_MS));
		for (int gw = 0; gw < GWS; gw++)
			gw_cache_wait_gone(h, gw, group.sid);
	}
	sg_push(&group, "last");
	for (int i = 0; i < MEMBERS; i++)
		sg_check_pushes(&group, devs[i], 1, UINT64_MAX);
	for (int i = 0; i < MEMBERS; i++)
		tc_free(devs[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_super_epoch_flips,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("super_epoch", tests, NULL, NULL);
}

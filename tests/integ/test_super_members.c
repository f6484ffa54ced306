// SPDX-License-Identifier: MIT
/*
 * Membership changes of a super session, both while the upgrade is still
 * pending on one gateway (its acks are dropped) and after it converged. A
 * member who joins gets every message from the next one on and can sync
 * the earlier ones; a removed member gets nothing after the removal reply;
 * a device that logs in finds the session marked SUPER in its login
 * result and gets the broadcasts; a closed connection leaves its gateway's cache at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_super.h"

#define GWS 2
#define MEMBERS 8
#define BURST 6

static const char *const biz_args[] = {
	"--super-upgrade-min-members", "1000",
	"--super-retry-ms", "200",
	NULL,
};

static const char *const members[MEMBERS + 1] = {
	"m00", "m01", "m02", "m03", "m04", "m05", "m06", "m07", "m08",
};

/* A device under test and the seq range it must get by push. */
struct mdev {
	struct tclient *t;
	uint64_t from, to;
	int closed;             /* freed before the end */
};

enum {
	/* m00 .. m07 are devices 0 .. 7, one each, on gateway i % 2 */
	J1_PHONE = MEMBERS, J1_LAPTOP, J2_PHONE, J2_LAPTOP, LATE, DEVS,
};

static struct sgroup group;
static struct mdev devs[DEVS];

static int node1_pending(json_t *reply, void *arg)
{
	json_t *n0 = super_gateway(reply, "node-0");
	json_t *n1 = super_gateway(reply, "node-1");
	const char *s0 = json_string_value(json_object_get(n0, "state"));
	const char *s1 = json_string_value(json_object_get(n1, "state"));

	return s0 && s1 && strcmp(s0, "acked") == 0 &&
	       strcmp(s1, "pending") == 0 &&
	       json_is_true(json_object_get(n1, "sent"));
}

/* Sends BURST messages from the online members m00 .. m02. */
static void burst(const char *tag)
{
	for (int n = 0; n < BURST; n++)
		sg_send(&group, devs[n % 3].t, tag);
}

static void add_member(const char *user, int phone, int laptop)
{
	admin_members_add(group.h, group.sid, &user, 1);
	devs[phone].from = sg_last_seq(&group) + 1;
	devs[laptop].from = devs[phone].from;
}

static void remove_member(int i)
{
	admin_member_remove(group.h, group.sid, members[i]);
	devs[i].to = sg_last_seq(&group);
}

/* Checks that each gateway caches exactly the member devices online on
 * it, as the test tracks them. */
static void check_caches(struct harness *h)
{
	for (int gw = 0; gw < GWS; gw++) {
		uint64_t conns[DEVS];
		size_t n = 0;

		for (int i = 0; i < DEVS; i++)
			if (devs[i].t && !devs[i].closed &&
			    devs[i].to == UINT64_MAX &&
			    devs[i].from != 0 && devs[i].t->gw == gw)
				conns[n++] = devs[i].t->conn_id;
		gw_cache_wait_count(h, gw, group.sid, n);
		gw_cache_check(h, gw, group.sid, conns, n, -1);
	}
}

static void login_devices(struct harness *h)
{
	for (int i = 0; i < MEMBERS; i++)
		devs[i] = (struct mdev){ tc_login(h, i % GWS, members[i],
						  "phone"), 1, UINT64_MAX, 0 };
	/* Not members yet: from 0 means nothing is expected. */
	devs[J1_PHONE] = (struct mdev){ tc_login(h, 0, "j1", "phone"), 0,
					UINT64_MAX, 0 };
	devs[J1_LAPTOP] = (struct mdev){ tc_login(h, 1, "j1", "laptop"), 0,
					 UINT64_MAX, 0 };
	devs[J2_PHONE] = (struct mdev){ tc_login(h, 0, "j2", "phone"), 0,
					UINT64_MAX, 0 };
	devs[J2_LAPTOP] = (struct mdev){ tc_login(h, 1, "j2", "laptop"), 0,
					 UINT64_MAX, 0 };
}

/* Logs in the offline member m08 to the super session on gateway 1. */
static void login_late(struct harness *h)
{
	struct tclient *t = tc_login(h, 1, members[MEMBERS], "phone");

	H_CHECK(t->login->n_sessions == 1 &&
		t->login->sessions[0]->session_id == group.sid,
		"m08: login lists %zu sessions, expected only session %llu",
		t->login->n_sessions, (unsigned long long)group.sid);
	H_CHECK(t->login->sessions[0]->type ==
		IMGW__SESSION_TYPE__SESSION_TYPE_SUPER,
		"m08: session type %d at login, expected SUPER (%d)",
		t->login->sessions[0]->type,
		IMGW__SESSION_TYPE__SESSION_TYPE_SUPER);
	devs[LATE] = (struct mdev){ t, sg_last_seq(&group) + 1, UINT64_MAX,
				    0 };
}

/*
 * Logs m06's device in again on the other gateway: the daemon kicks the
 * old connection, which leaves its cache, and the new one joins the cache
 * of its gateway.
 */
static void login_again(struct harness *h)
{
	struct mdev *d = &devs[6];
	struct tclient *t = tc_login(h, !d->t->gw, members[6], "phone");

	H_CHECK(tc_wait_closed(d->t, HARNESS_WAIT_MS) == 0,
		"m06: old connection not closed after a login elsewhere");
	H_CHECK(d->t->kicked, "m06: old connection closed without a KICK");
	d->t->kicked = 0;       /* expected here; sg_check_pushes rejects it */
	sg_check_pushes(&group, d->t, d->from, sg_last_seq(&group));
	tc_free(d->t);
	d->t = t;
	d->from = sg_last_seq(&group) + 1;
	check_caches(h);
}

/* Closes m05's connection and waits for it to leave gateway 1's cache. */
static void close_one(struct harness *h)
{
	struct mdev *d = &devs[5];

	sg_check_pushes(&group, d->t, d->from, sg_last_seq(&group));
	tc_free(d->t);
	d->t = NULL;
	d->closed = 1;
	check_caches(h);
}

static void check_all(void)
{
	for (int i = 0; i < DEVS; i++)
		if (devs[i].t && devs[i].to == UINT64_MAX)
			sg_check_pushes(&group, devs[i].t, devs[i].from,
					UINT64_MAX);
	/*
	 * Every gateway has pushed the last message, so a push it sent a
	 * removed member by mistake is queued ahead of a HEARTBEAT_ACK.
	 */
	for (int i = 0; i < DEVS; i++) {
		struct mdev *d = &devs[i];
		int err;

		if (!d->t || d->to == UINT64_MAX)
			continue;
		err = tc_heartbeat(d->t, HARNESS_WAIT_MS);
		H_CHECK(err == 0, "%s/%s: heartbeat failed: %s", d->t->user,
			d->t->device, strerror(-err));
		sg_check_pushes(&group, d->t, d->from, d->to);
	}
	/* Joined members can read what came before they joined. */
	sg_check_sync(&group, devs[J1_LAPTOP].t, 1);
	sg_check_sync(&group, devs[J2_PHONE].t, 1);
	sg_check_sync(&group, devs[LATE].t, 1);
}

static void test_super_members_change(void **state)
{
	struct harness *h = harness_start_args(GWS, NULL, biz_args);

	memset(&group, 0, sizeof(group));
	group.h = h;
	group.sid = admin_session_create(h, "group", "members", members,
					 MEMBERS + 1);
	login_devices(h);
	burst("normal");

	/* Upgrade pending on gateway 1: its acks are dropped. */
	gw_drop_acks(h, 1, 1);
	json_decref(super_post(h, group.sid, "upgrade"));
	json_decref(super_wait_for(h, group.sid, node1_pending, NULL,
				   "acked on node-0 and pending on node-1",
				   SUPER_WAIT_MS));
	burst("pending");
	add_member("j1", J1_PHONE, J1_LAPTOP);
	burst("pending-j1");
	sg_send(&group, devs[J1_LAPTOP].t, "from-j1");
	remove_member(3);
	burst("pending-no-m03");

	gw_drop_acks(h, 1, 0);
	json_decref(super_wait(h, group.sid, "super", 1, SUPER_WAIT_MS));
	check_caches(h);
	burst("super");
	add_member("j2", J2_PHONE, J2_LAPTOP);
	burst("super-j2");
	remove_member(4);
	burst("super-no-m04");
	login_late(h);
	burst("super-m08");
	close_one(h);
	burst("super-no-m05");
	login_again(h);
	burst("super-m06-moved");
	sg_push(&group, "last");

	check_all();
	check_caches(h);
	for (int i = 0; i < DEVS; i++)
		tc_free(devs[i].t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_super_members_change,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("super_members", tests, NULL, NULL);
}

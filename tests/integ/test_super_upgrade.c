// SPDX-License-Identifier: MIT
/*
 * Upgrade by the rules under traffic: a 40-member group on three gateways
 * (some members with two devices, some offline) crosses the message rate
 * rule while four senders keep sending. Every online device gets every
 * message once and in seq order before, during and after the upgrade; the
 * daemon reports the session super and converged; each gateway's cache
 * contains exactly its online member connections; later messages go out as
 * broadcasts without device lists; members who log in later find the
 * session marked SUPER in their login result, sync everything and get the next broadcasts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_super.h"

#define GWS 3
#define MEMBERS 40
#define ONLINE 30               /* members 0 .. ONLINE - 1 log in */
#define TWO_DEVICES 8           /* members 0 .. 7 have a second device */
#define SENDERS 4
#define DEVS (ONLINE + TWO_DEVICES)
#define LATE 3                  /* offline members who log in at the end */
#define MAX_BEFORE 600          /* messages sent waiting for the upgrade */
#define AFTER_UPGRADE 60
#define BROADCASTS 30
/* Between two sends, so the rule sees a rate and not a burst. */
#define SEND_GAP_MS 4

static const char *const biz_args[] = {
	"--super-upgrade-min-members", "20",
	"--super-upgrade-min-online", "1000",
	"--super-upgrade-rate", "20",
	"--super-demote-rate", "1",
	"--super-demote-online", "1",
	"--super-window-ms", "1000",
	"--super-min-dwell-ms", "600000",
	"--super-retry-ms", "200",
	NULL,
};

static char users[MEMBERS][16];
static const char *members[MEMBERS];
static struct sgroup group;

static const char *super_type_of(json_t *reply)
{
	return json_string_value(json_object_get(reply, "type"));
}

static int login_session_type(const Imgw__LoginResult *login, uint64_t sid)
{
	for (size_t i = 0; i < login->n_sessions; i++)
		if (login->sessions[i]->session_id == sid)
			return (int)login->sessions[i]->type;
	return -1;
}

static void login_online(struct harness *h, struct tclient **devs)
{
	for (int i = 0; i < ONLINE; i++)
		devs[i] = tc_login(h, i % GWS, members[i], "phone");
	for (int i = 0; i < TWO_DEVICES; i++)
		devs[ONLINE + i] = tc_login(h, (i + 1) % GWS, members[i],
					    "laptop");
	for (int i = 0; i < DEVS; i++)
		H_CHECK(login_session_type(devs[i]->login, group.sid) ==
			IMGW__SESSION_TYPE__SESSION_TYPE_NORMAL,
			"%s/%s: session type %d at login, expected NORMAL",
			devs[i]->user, devs[i]->device,
			login_session_type(devs[i]->login, group.sid));
}

/* Sends from the senders in turn until the daemon reports the session
 * super. Returns how many messages went out before it did. */
static size_t send_until_super(struct harness *h, struct tclient **devs)
{
	for (size_t n = 0; n < MAX_BEFORE; n++) {
		sg_send(&group, devs[n % SENDERS], "before");
		super_sleep_ms(SEND_GAP_MS);
		if (n % 10 == 9) {
			json_t *reply = super_get(h, group.sid);
			int is_super = strcmp(super_type_of(reply),
					      "super") == 0;

			json_decref(reply);
			if (is_super)
				return n + 1;
		}
	}
	harness_fail(__FILE__, __LINE__,
		     "session %llu not upgraded after %d messages at one per %d ms",
		     (unsigned long long)group.sid, MAX_BEFORE, SEND_GAP_MS);
}

/* Checks each gateway's cache against the logged-in devices on it. */
static void check_caches(struct harness *h, struct tclient **devs, size_t n,
			 long long epoch)
{
	for (int gw = 0; gw < GWS; gw++) {
		uint64_t conns[DEVS + LATE];
		size_t count = 0;

		for (size_t i = 0; i < n; i++)
			if (devs[i]->gw == gw)
				conns[count++] = devs[i]->conn_id;
		gw_cache_check(h, gw, group.sid, conns, count, epoch);
	}
}

/* Sends BROADCASTS messages and checks they went out as SUPER frames,
 * one per gateway, with no device list. */
static void check_broadcasts(struct harness *h, struct tclient **devs)
{
	double casts = harness_metric(&h->biz, "bizsvr_broadcasts_total");
	double listed = harness_metric(&h->biz, "bizsvr_deliveries_total");
	double gw_casts[GWS];

	for (int gw = 0; gw < GWS; gw++)
		gw_casts[gw] = harness_metric(&h->gw[gw],
					      "imgw_broadcasts_total");
	for (int n = 0; n < BROADCASTS; n++)
		sg_send(&group, devs[n % SENDERS], "super");
	H_CHECK(harness_metric(&h->biz, "bizsvr_broadcasts_total") ==
		casts + BROADCASTS * GWS,
		"bizsvr_broadcasts_total %.0f after %d messages, expected %.0f",
		harness_metric(&h->biz, "bizsvr_broadcasts_total"), BROADCASTS,
		casts + BROADCASTS * GWS);
	H_CHECK(harness_metric(&h->biz, "bizsvr_deliveries_total") == listed,
		"bizsvr_deliveries_total %.0f, expected %.0f: converged super messages must carry no device lists",
		harness_metric(&h->biz, "bizsvr_deliveries_total"), listed);
	for (int gw = 0; gw < GWS; gw++) {
		double now = harness_metric(&h->gw[gw],
					    "imgw_broadcasts_total");

		/* The gateway counts a broadcast when it reads the frame. */
		for (int i = 0; i < 250 && now < gw_casts[gw] + BROADCASTS;
		     i++) {
			super_sleep_ms(20);
			now = harness_metric(&h->gw[gw],
					     "imgw_broadcasts_total");
		}
		H_CHECK(now == gw_casts[gw] + BROADCASTS,
			"%s: imgw_broadcasts_total %.0f, expected %.0f",
			h->gw[gw].name, now, gw_casts[gw] + BROADCASTS);
	}
}

/* Logs in LATE offline members, checks they see the session as super, and
 * syncs everything so far on each. */
static void login_late(struct harness *h, struct tclient **late)
{
	for (int i = 0; i < LATE; i++) {
		late[i] = tc_login(h, i % GWS, members[ONLINE + i], "phone");
		H_CHECK(login_session_type(late[i]->login, group.sid) ==
			IMGW__SESSION_TYPE__SESSION_TYPE_SUPER,
			"%s: session type %d at login, expected SUPER (%d)",
			late[i]->user,
			login_session_type(late[i]->login, group.sid),
			IMGW__SESSION_TYPE__SESSION_TYPE_SUPER);
		sg_check_sync(&group, late[i], 1);
	}
}

static void test_super_upgrade_rules(void **state)
{
	struct harness *h = harness_start_args(GWS, NULL, biz_args);
	struct tclient *devs[DEVS + LATE];
	size_t before;
	uint64_t late_from;
	json_t *reply;
	long long epoch;

	for (int i = 0; i < MEMBERS; i++) {
		snprintf(users[i], sizeof(users[i]), "u%02d", i);
		members[i] = users[i];
	}
	memset(&group, 0, sizeof(group));
	group.h = h;
	group.sid = admin_session_create(h, "group", "big", members, MEMBERS);
	login_online(h, devs);

	before = send_until_super(h, devs);
	H_CHECK(before >= 10,
		"upgraded after %zu messages, expected some normal ones first",
		before);
	for (int n = 0; n < AFTER_UPGRADE; n++)
		sg_send(&group, devs[n % SENDERS], "during");
	reply = super_wait(h, group.sid, "super", 1, SUPER_WAIT_MS);
	epoch = (long long)json_integer_value(json_object_get(reply, "epoch"));
	H_CHECK(json_array_size(json_object_get(reply, "gateways")) == GWS,
		"%zu gateways in the super state, expected %d",
		json_array_size(json_object_get(reply, "gateways")), GWS);
	json_decref(reply);
	H_CHECK(harness_metric(&h->biz,
			       "bizsvr_super_transitions_total{kind=\"upgrade\"}") == 1,
		"bizsvr upgrade transitions %.0f, expected 1",
		harness_metric(&h->biz,
			       "bizsvr_super_transitions_total{kind=\"upgrade\"}"));
	check_caches(h, devs, DEVS, epoch);

	check_broadcasts(h, devs);
	login_late(h, devs + DEVS);
	late_from = sg_push(&group, "after-late-login");
	sg_send(&group, devs[0], "last");

	for (int i = 0; i < DEVS; i++)
		sg_check_pushes(&group, devs[i], 1, UINT64_MAX);
	for (int i = DEVS; i < DEVS + LATE; i++)
		sg_check_pushes(&group, devs[i], late_from, UINT64_MAX);
	check_caches(h, devs, DEVS + LATE, epoch);
	fprintf(stderr, "upgrade after %zu messages, %zu messages in all\n",
		before, group.n_msgs);

	for (int i = 0; i < DEVS + LATE; i++)
		tc_free(devs[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_super_upgrade_rules,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("super_upgrade", tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * Demote of a super session under traffic, by the rules (traffic stops and
 * members go offline) and by force. Everyone gets every message once and
 * in order across both transitions, every gateway drops its cache, and
 * later messages go out NORMAL with device lists instead of broadcasts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_super.h"

#define GWS 2
#define MEMBERS 10
#define STAYING 4               /* members 0 .. 3 stay online */
#define SENDERS 4
#define MAX_BEFORE 600
#define SEND_GAP_MS 4
#define DWELL_MS 1500
/* The daemon applies the rules to a session at most once a second. */
#define EVAL_INTERVAL_MS 1000
/* Covers rounding between the daemon's clocks and the test's. */
#define CLOCK_SLACK_MS 100

static const char *const rules_args[] = {
	"--super-upgrade-min-members", "8",
	"--super-upgrade-min-online", "1000",
	"--super-upgrade-rate", "20",
	"--super-demote-rate", "5",
	"--super-demote-online", "5",
	"--super-window-ms", "1000",
	"--super-min-dwell-ms", "1500",
	"--super-retry-ms", "200",
	NULL,
};

static const char *const force_args[] = {
	"--super-upgrade-min-members", "1000",
	"--super-retry-ms", "200",
	NULL,
};

static const char *const members[MEMBERS] = {
	"ann", "ben", "cid", "dan", "eve", "fay", "gil", "hal", "ivy", "jon",
};

static struct sgroup group;

static int is_type(json_t *reply, const char *type)
{
	const char *t = json_string_value(json_object_get(reply, "type"));

	return t && strcmp(t, type) == 0;
}

static void start_group(struct harness *h, struct tclient **devs)
{
	memset(&group, 0, sizeof(group));
	group.h = h;
	group.sid = admin_session_create(h, "group", "demote", members,
					 MEMBERS);
	for (int i = 0; i < MEMBERS; i++)
		devs[i] = tc_login(h, i % GWS, members[i], "phone");
}

static void send_until_super(struct harness *h, struct tclient **devs)
{
	for (int n = 0; n < MAX_BEFORE; n++) {
		sg_send(&group, devs[n % SENDERS], "before");
		super_sleep_ms(SEND_GAP_MS);
		if (n % 10 == 9) {
			json_t *reply = super_get(h, group.sid);
			int done = is_type(reply, "super");

			json_decref(reply);
			if (done)
				return;
		}
	}
	harness_fail(__FILE__, __LINE__, "session %llu not upgraded after %d messages",
		     (unsigned long long)group.sid, MAX_BEFORE);
}

/* Sends count messages and checks that they went out NORMAL: device lists
 * for the other online devices, no broadcasts. */
static void check_normal_sends(struct harness *h, struct tclient **devs,
			       int online, int count)
{
	double casts = harness_metric(&h->biz, "bizsvr_broadcasts_total");
	double listed = harness_metric(&h->biz, "bizsvr_deliveries_total");

	for (int n = 0; n < count; n++)
		sg_send(&group, devs[n % online], "normal-again");
	H_CHECK(harness_metric(&h->biz, "bizsvr_broadcasts_total") == casts,
		"bizsvr_broadcasts_total rose to %.0f from %.0f after the demote",
		harness_metric(&h->biz, "bizsvr_broadcasts_total"), casts);
	H_CHECK(harness_metric(&h->biz, "bizsvr_deliveries_total") ==
		listed + count * (online - 1),
		"bizsvr_deliveries_total %.0f, expected %.0f: each message lists the %d other online devices",
		harness_metric(&h->biz, "bizsvr_deliveries_total"),
		listed + count * (online - 1), online - 1);
}

struct quiet_want {
	uint64_t last_send_mono;
};

/* Holds once the rules may demote on the next message: an empty rate
 * window, the dwell over, and a second since the last evaluation. */
static int rules_may_demote(json_t *reply, void *arg)
{
	const struct quiet_want *want = arg;
	json_t *last = json_object_get(reply, "last_transition_ms");

	return json_number_value(json_object_get(reply, "rate")) == 0 &&
	       json_is_integer(last) &&
	       client_now_ms(0) >= (uint64_t)json_integer_value(last) +
	       DWELL_MS + CLOCK_SLACK_MS &&
	       client_now_ms(1) >= want->last_send_mono + EVAL_INTERVAL_MS +
	       CLOCK_SLACK_MS;
}

static void test_super_demote_rules(void **state)
{
	struct harness *h = harness_start_args(GWS, NULL, rules_args);
	struct tclient *devs[MEMBERS];
	struct quiet_want quiet;
	json_t *reply;

	start_group(h, devs);
	send_until_super(h, devs);
	for (int n = 0; n < 30; n++)
		sg_send(&group, devs[n % SENDERS], "super");
	json_decref(super_wait(h, group.sid, "super", 1, SUPER_WAIT_MS));

	/* Traffic stops and all but STAYING members go offline. */
	quiet.last_send_mono = client_now_ms(1);
	for (int i = STAYING; i < MEMBERS; i++) {
		sg_check_pushes(&group, devs[i], 1, sg_last_seq(&group));
		tc_free(devs[i]);
	}
	for (int gw = 0; gw < GWS; gw++)
		gw_cache_wait_count(h, gw, group.sid, STAYING / GWS);
	json_decref(super_wait_for(h, group.sid, rules_may_demote, &quiet,
				   "quiet for the demote rule",
				   SUPER_WAIT_MS));

	/* This message carries the demote. */
	sg_send(&group, devs[0], "demote");
	reply = super_get(h, group.sid);
	H_CHECK(is_type(reply, "normal"),
		"session is %s after a message below the demote rule, expected normal",
		json_string_value(json_object_get(reply, "type")));
	json_decref(reply);
	json_decref(super_wait(h, group.sid, "normal", 1, SUPER_WAIT_MS));
	for (int gw = 0; gw < GWS; gw++)
		gw_cache_wait_gone(h, gw, group.sid);
	H_CHECK(harness_metric(&h->biz,
			       "bizsvr_super_transitions_total{kind=\"demote\"}") == 1,
		"demote transitions %.0f, expected 1",
		harness_metric(&h->biz,
			       "bizsvr_super_transitions_total{kind=\"demote\"}"));

	check_normal_sends(h, devs, STAYING, 8);
	sg_push(&group, "last");
	for (int i = 0; i < STAYING; i++)
		sg_check_pushes(&group, devs[i], 1, UINT64_MAX);
	for (int i = 0; i < STAYING; i++)
		tc_free(devs[i]);
}

static void test_super_demote_forced(void **state)
{
	struct harness *h = harness_start_args(GWS, NULL, force_args);
	struct tclient *devs[MEMBERS];
	json_t *reply;

	start_group(h, devs);
	for (int n = 0; n < 10; n++)
		sg_send(&group, devs[n % MEMBERS], "normal");
	json_decref(super_post(h, group.sid, "upgrade"));
	for (int n = 0; n < 10; n++)
		sg_send(&group, devs[n % MEMBERS], "upgrading");
	json_decref(super_wait(h, group.sid, "super", 1, SUPER_WAIT_MS));
	for (int n = 0; n < 10; n++)
		sg_send(&group, devs[n % MEMBERS], "super");

	reply = super_post(h, group.sid, "demote");
	H_CHECK(json_is_true(json_object_get(reply, "pinned")),
		"a forced demote did not pin the session");
	json_decref(reply);
	for (int n = 0; n < 10; n++)
		sg_send(&group, devs[n % MEMBERS], "demoting");
	json_decref(super_wait(h, group.sid, "normal", 1, SUPER_WAIT_MS));
	for (int gw = 0; gw < GWS; gw++)
		gw_cache_wait_gone(h, gw, group.sid);
	check_normal_sends(h, devs, MEMBERS, 10);

	reply = super_post(h, group.sid, "auto");
	H_CHECK(!json_is_true(json_object_get(reply, "pinned")),
		"\"auto\" did not unpin the session");
	json_decref(reply);
	sg_push(&group, "last");
	for (int i = 0; i < MEMBERS; i++)
		sg_check_pushes(&group, devs[i], 1, UINT64_MAX);
	for (int i = 0; i < MEMBERS; i++)
		tc_free(devs[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_super_demote_rules,
					  harness_teardown),
		cmocka_unit_test_teardown(test_super_demote_forced,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("super_demote", tests, NULL, NULL);
}

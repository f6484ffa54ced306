// SPDX-License-Identifier: MIT
/*
 * Tests of the super-session state machine: rules and hysteresis, per-node
 * plans and acks, epochs across the 32-bit wrap, node restarts, retries,
 * freeing, and a randomized run against simulated gateways.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../bizsvr/super.h"

#define NODES 4
#define SID 42

struct fixture {
	struct super_rules rules;
	struct super_table *t;
};

static void test_rules(struct super_rules *r)
{
	r->upgrade_min_members = 100;
	r->upgrade_min_online = 50;
	r->upgrade_rate = 20;
	r->demote_rate = 5;
	r->demote_online = 20;
	r->window_ms = 10000;
	r->min_dwell_ms = 60000;
	r->retry_ms = 2000;
}

/* A table with nodes 0, 1 and 2 up and node 3 never registered. */
static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	test_rules(&fx->rules);
	fx->t = super_table_new(&fx->rules, NODES);
	if (!fx->t) {
		free(fx);
		return -1;
	}
	for (unsigned int n = 0; n < 3; n++) {
		if (super_node_up(fx->t, n, "boot-a", 0) != 0)
			return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	super_table_free(fx->t);
	free(fx);
	return 0;
}

/* Returns the planned type for node, or the negative errno of the plan. */
static int plan_type(struct super_table *t, uint64_t sid, unsigned int node,
		     int64_t now)
{
	struct super_plan plan;
	int err = super_plan(t, sid, node, now, &plan);

	if (err < 0)
		return err;
	assert_int_equal(plan.with_devices, plan.type != SUPER_TYPE_SUPER);
	return plan.type;
}

static uint32_t epoch_of(struct super_table *t, uint64_t sid)
{
	struct super_session_info info;

	assert_int_equal(super_session_info(t, sid, 0, &info), 0);
	return info.epoch;
}

/* Sends the current transition to node and acknowledges it. */
static void deliver_and_ack(struct super_table *t, uint64_t sid,
			    unsigned int node, int64_t now)
{
	struct super_plan plan;

	assert_int_equal(super_plan(t, sid, node, now, &plan), 0);
	if (plan.type == SUPER_TYPE_UPGRADE || plan.type == SUPER_TYPE_DEMOTE)
		assert_int_equal(super_ack(t, sid, node, plan.epoch, plan.type,
					   now),
				 SUPER_ACK_ACCEPTED);
}

static void feed_messages(struct super_table *t, uint64_t sid, int64_t from,
			  int64_t step, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++)
		assert_int_equal(super_note_message(t, sid, from + i * step), 0);
}

static void test_epoch_serial_order(void **state)
{
	(void)state;
	assert_true(super_epoch_before(1, 2));
	assert_false(super_epoch_before(2, 1));
	assert_false(super_epoch_before(7, 7));
	assert_true(super_epoch_before(0xffffffffu, 0));
	assert_false(super_epoch_before(0, 0xffffffffu));
	assert_true(super_epoch_before(0xfffffffeu, 1));
	assert_true(super_epoch_before(0, 0x7fffffffu));
	/* RFC 1982 leaves pairs 2^31 apart undefined: neither is older. */
	assert_false(super_epoch_before(0, 0x80000000u));
	assert_false(super_epoch_before(0x80000000u, 0));
}

static void test_rules_check_rejects(void **state)
{
	struct super_rules r;

	(void)state;
	super_rules_default(&r);
	assert_int_equal(super_rules_check(&r), 0);
	r.window_ms = SUPER_RATE_SLOTS - 1;
	assert_int_equal(super_rules_check(&r), -EINVAL);
	super_rules_default(&r);
	r.retry_ms = 0;
	assert_int_equal(super_rules_check(&r), -EINVAL);
	super_rules_default(&r);
	r.demote_rate = r.upgrade_rate + 1;
	assert_int_equal(super_rules_check(&r), -EINVAL);
	super_rules_default(&r);
	r.demote_online = r.upgrade_min_online + 1;
	assert_int_equal(super_rules_check(&r), -EINVAL);

	super_rules_default(&r);
	errno = 0;
	assert_null(super_table_new(&r, 0));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(super_table_new(&r, SUPER_MAX_NODES + 1));
	assert_int_equal(errno, EINVAL);
	r.retry_ms = 0;
	errno = 0;
	assert_null(super_table_new(&r, 4));
	assert_int_equal(errno, EINVAL);
}

static void test_unknown_session_is_normal(void **state)
{
	struct fixture *fx = *state;
	struct super_session_info info;
	struct super_stats stats;

	assert_int_equal(plan_type(fx->t, SID, 0, 1), SUPER_TYPE_NORMAL);
	assert_int_equal(plan_type(fx->t, SID, 3, 1), -ENOTCONN);
	assert_int_equal(plan_type(fx->t, SID, NODES, 1), -EINVAL);
	assert_true(super_converged(fx->t, SID));
	assert_int_equal(super_type_of(fx->t, SID), SUPER_TYPE_NORMAL);
	assert_int_equal(super_session_info(fx->t, SID, 1, &info), -ENOENT);
	assert_int_equal(super_ack(fx->t, SID, 0, 1, SUPER_TYPE_UPGRADE, 1),
			 SUPER_ACK_UNKNOWN);
	/* Evaluating a session that stays normal creates no entry. */
	assert_int_equal(super_evaluate(fx->t, SID, 1000, 0, 1),
			 SUPER_TYPE_NORMAL);
	super_stats_get(fx->t, &stats);
	assert_int_equal(stats.entries, 0);
	assert_int_equal(stats.acks_unknown, 1);
}

static void test_upgrade_by_members_online(void **state)
{
	struct fixture *fx = *state;
	struct super_stats stats;

	/* Enough online members but too few members. */
	assert_int_equal(super_evaluate(fx->t, SID, 99, 99, 1000),
			 SUPER_TYPE_NORMAL);
	/* Enough members but too few online and no messages. */
	assert_int_equal(super_evaluate(fx->t, SID, 100, 49, 1000),
			 SUPER_TYPE_NORMAL);
	assert_int_equal(super_evaluate(fx->t, SID, 100, 50, 1000),
			 SUPER_TYPE_SUPER);
	assert_int_equal(super_type_of(fx->t, SID), SUPER_TYPE_SUPER);
	assert_int_equal(epoch_of(fx->t, SID), 1);
	assert_false(super_converged(fx->t, SID));
	super_stats_get(fx->t, &stats);
	assert_int_equal(stats.upgrades, 1);
	assert_int_equal(stats.demotes, 0);
	assert_int_equal(stats.entries, 1);
	assert_int_equal(stats.tracked, 1);
}

static void test_upgrade_by_rate(void **state)
{
	struct fixture *fx = *state;

	/* 20 messages per second over a 10 s window is 200 messages. */
	feed_messages(fx->t, SID, 0, 49, 199);
	assert_int_equal(super_evaluate(fx->t, SID, 100, 0, 9999),
			 SUPER_TYPE_NORMAL);
	assert_int_equal(super_note_message(fx->t, SID, 9999), 0);
	/* Rate alone is not enough below the member minimum. */
	assert_int_equal(super_evaluate(fx->t, SID, 99, 0, 9999),
			 SUPER_TYPE_NORMAL);
	assert_int_equal(super_evaluate(fx->t, SID, 100, 0, 9999),
			 SUPER_TYPE_SUPER);
}

static void test_rate_window_slides(void **state)
{
	struct fixture *fx = *state;
	struct super_session_info info;

	/* 300 messages within the first second: 30 per second. */
	feed_messages(fx->t, SID, 0, 3, 300);
	assert_int_equal(super_session_info(fx->t, SID, 999, &info), 0);
	assert_int_equal(info.rate_milli, 30000);
	/* Still inside the window nine seconds later. */
	assert_int_equal(super_session_info(fx->t, SID, 9999, &info), 0);
	assert_int_equal(info.rate_milli, 30000);
	/* The first slot left the window. */
	assert_int_equal(super_session_info(fx->t, SID, 10000, &info), 0);
	assert_int_equal(info.rate_milli, 0);
	assert_int_equal(super_evaluate(fx->t, SID, 100, 0, 10000),
			 SUPER_TYPE_NORMAL);

	/* A message long after the last one clears the whole ring first. */
	assert_int_equal(super_note_message(fx->t, SID, 500000), 0);
	assert_int_equal(super_session_info(fx->t, SID, 500000, &info), 0);
	assert_int_equal(info.rate_milli, 100);
	/* Skipping a few slots clears only those. */
	assert_int_equal(super_note_message(fx->t, SID, 503500), 0);
	assert_int_equal(super_session_info(fx->t, SID, 503500, &info), 0);
	assert_int_equal(info.rate_milli, 200);
}

/* Puts SID into super at time 0 with every live node acknowledged. */
static void make_converged_super(struct fixture *fx)
{
	assert_int_equal(super_force(fx->t, SID, SUPER_TYPE_SUPER, 0, 0), 0);
	for (unsigned int n = 0; n < 3; n++)
		deliver_and_ack(fx->t, SID, n, 0);
	assert_true(super_converged(fx->t, SID));
}

static void test_demote_needs_both_low(void **state)
{
	struct fixture *fx = *state;
	int64_t t = 100000;

	make_converged_super(fx);
	/* Rate high (10/s), online low. */
	feed_messages(fx->t, SID, t - 9000, 100, 100);
	assert_int_equal(super_evaluate(fx->t, SID, 100, 0, t),
			 SUPER_TYPE_SUPER);
	/* Rate low, online high. */
	t += 20000;
	assert_int_equal(super_evaluate(fx->t, SID, 100, 20, t),
			 SUPER_TYPE_SUPER);
	/* Both low: 4 messages per second is under demote_rate 5. */
	feed_messages(fx->t, SID, t - 9999, 250, 40);
	assert_int_equal(super_evaluate(fx->t, SID, 100, 19, t),
			 SUPER_TYPE_NORMAL);
	assert_int_equal(epoch_of(fx->t, SID), 2);
}

static void test_dwell_blocks_transition(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(super_evaluate(fx->t, SID, 100, 50, 1000),
			 SUPER_TYPE_SUPER);
	/* Nobody online and no messages, but within min_dwell_ms. */
	assert_int_equal(super_evaluate(fx->t, SID, 100, 0, 60999),
			 SUPER_TYPE_SUPER);
	assert_int_equal(super_evaluate(fx->t, SID, 100, 0, 61000),
			 SUPER_TYPE_NORMAL);
	/* And back up is blocked for another dwell. */
	assert_int_equal(super_evaluate(fx->t, SID, 1000, 1000, 120999),
			 SUPER_TYPE_NORMAL);
	assert_int_equal(super_evaluate(fx->t, SID, 1000, 1000, 121000),
			 SUPER_TYPE_SUPER);
	assert_int_equal(epoch_of(fx->t, SID), 3);
}

/*
 * Drives a session for ten minutes at a rate that switches between low and
 * high every period_s seconds, evaluating every second. Returns the number
 * of transitions and stores the shortest time between two in *min_gap.
 */
static unsigned int oscillate(struct super_table *t, unsigned int low,
			      unsigned int high, int period_s, int64_t *min_gap)
{
	struct super_stats before, after;
	int64_t last = -1, now;
	int type, prev = super_type_of(t, SID);

	super_stats_get(t, &before);
	*min_gap = INT64_MAX;
	for (int sec = 0; sec < 600; sec++) {
		unsigned int per_sec = (sec / period_s) % 2 ? high : low;

		now = (int64_t)sec * 1000;
		for (unsigned int i = 0; i < per_sec; i++)
			super_note_message(t, SID, now + i * (1000 / per_sec));
		type = super_evaluate(t, SID, 1000, 0, now + 999);
		if (type != prev) {
			if (last >= 0 && now - last < *min_gap)
				*min_gap = now - last;
			last = now;
			prev = type;
		}
	}
	super_stats_get(t, &after);
	return (after.upgrades - before.upgrades) +
	       (after.demotes - before.demotes);
}

static void test_no_flapping_near_upgrade(void **state)
{
	struct fixture *fx = *state;
	int64_t gap;

	/* The window rate crosses upgrade_rate every 20 s: one upgrade, and
	 * the band down to demote_rate keeps it. */
	assert_int_equal(oscillate(fx->t, 17, 23, 20, &gap), 1);
	assert_int_equal(super_type_of(fx->t, SID), SUPER_TYPE_SUPER);
}

static void test_no_flapping_near_demote(void **state)
{
	struct fixture *fx = *state;
	int64_t gap;

	make_converged_super(fx);
	/* The window rate crosses demote_rate: one demote, never back up. */
	assert_int_equal(oscillate(fx->t, 3, 7, 20, &gap), 1);
	assert_int_equal(super_type_of(fx->t, SID), SUPER_TYPE_NORMAL);
}

static void test_dwell_spaces_without_band(void **state)
{
	struct fixture *fx = *state;
	int64_t gap;
	unsigned int count;

	/* No band between the thresholds: only the dwell limits flapping. */
	fx->rules.demote_rate = fx->rules.upgrade_rate;
	fx->rules.min_dwell_ms = 30000;
	assert_int_equal(super_set_rules(fx->t, &fx->rules), 0);
	count = oscillate(fx->t, 10, 30, 20, &gap);
	assert_true(count >= 2);
	assert_true(count <= 600000 / 30000 + 1);
	assert_true(gap >= 30000);
}

static void test_force_and_pin(void **state)
{
	struct fixture *fx = *state;
	struct super_session_info info;

	assert_int_equal(super_force(fx->t, SID, SUPER_TYPE_UPGRADE, 0, 0),
			 -EINVAL);
	assert_int_equal(super_unpin(fx->t, SID), -ENOENT);
	assert_int_equal(super_force(fx->t, SID, SUPER_TYPE_SUPER, 1, 0), 0);
	assert_int_equal(epoch_of(fx->t, SID), 1);
	/* The rules call for a demote, but the pin holds. */
	assert_int_equal(super_evaluate(fx->t, SID, 0, 0, 1000000),
			 SUPER_TYPE_SUPER);
	assert_int_equal(super_session_info(fx->t, SID, 0, &info), 0);
	assert_true(info.pinned);
	/* Forcing the type it has starts a new epoch all the same. */
	assert_int_equal(super_force(fx->t, SID, SUPER_TYPE_SUPER, 0, 1000), 0);
	assert_int_equal(epoch_of(fx->t, SID), 2);
	assert_int_equal(plan_type(fx->t, SID, 0, 1000), SUPER_TYPE_UPGRADE);
	assert_int_equal(super_unpin(fx->t, SID), 0);
	/* Unpinned, the forced transition still counts for the dwell. */
	assert_int_equal(super_evaluate(fx->t, SID, 0, 0, 60999),
			 SUPER_TYPE_SUPER);
	assert_int_equal(super_evaluate(fx->t, SID, 0, 0, 61000),
			 SUPER_TYPE_NORMAL);
	/* A forced demote ignores the dwell. */
	assert_int_equal(super_force(fx->t, SID, SUPER_TYPE_SUPER, 0, 61001), 0);
	assert_int_equal(super_force(fx->t, SID, SUPER_TYPE_NORMAL, 1, 61002), 0);
	assert_int_equal(super_type_of(fx->t, SID), SUPER_TYPE_NORMAL);
	assert_int_equal(super_evaluate(fx->t, SID, 1000, 1000, 500000),
			 SUPER_TYPE_NORMAL);
}

static void test_plan_before_after_ack(void **state)
{
	struct fixture *fx = *state;
	struct super_plan plan;
	struct super_node_info ni;
	struct super_stats stats;

	assert_int_equal(super_force(fx->t, SID, SUPER_TYPE_SUPER, 0, 100), 0);
	assert_int_equal(super_plan(fx->t, SID, 0, 200, &plan), 0);
	assert_int_equal(plan.type, SUPER_TYPE_UPGRADE);
	assert_int_equal(plan.epoch, 1);
	assert_true(plan.with_devices);
	assert_false(plan.retry);
	assert_int_equal(super_plan(fx->t, SID, 0, 300, &plan), 0);
	assert_int_equal(plan.type, SUPER_TYPE_UPGRADE);
	assert_true(plan.retry);
	assert_int_equal(super_node_info(fx->t, SID, 0, &ni), 0);
	assert_int_equal(ni.state, SUPER_NODE_PENDING);
	assert_int_equal(ni.retries, 1);
	assert_int_equal(ni.last_send_ms, 300);
	assert_int_equal(ni.since_ms, 100);
	assert_true(ni.sent);
	assert_true(ni.may_cache);

	assert_int_equal(super_ack(fx->t, SID, 0, 1, SUPER_TYPE_UPGRADE, 400),
			 SUPER_ACK_ACCEPTED);
	assert_int_equal(super_plan(fx->t, SID, 0, 500, &plan), 0);
	assert_int_equal(plan.type, SUPER_TYPE_SUPER);
	assert_false(plan.with_devices);
	assert_int_equal(plan.epoch, 1);
	assert_int_equal(super_node_info(fx->t, SID, 0, &ni), 0);
	assert_int_equal(ni.state, SUPER_NODE_ACKED);
	assert_int_equal(ni.since_ms, 400);
	/* Other nodes still get the upgrade. */
	assert_int_equal(plan_type(fx->t, SID, 1, 500), SUPER_TYPE_UPGRADE);
	assert_false(super_converged(fx->t, SID));
	assert_int_equal(super_ack(fx->t, SID, 1, 1, SUPER_TYPE_UPGRADE, 600),
			 SUPER_ACK_ACCEPTED);
	assert_false(super_converged(fx->t, SID));
	deliver_and_ack(fx->t, SID, 2, 1100);
	assert_true(super_converged(fx->t, SID));
	super_stats_get(fx->t, &stats);
	assert_int_equal(stats.retries, 1);
	assert_int_equal(stats.acks_accepted, 3);
	assert_int_equal(stats.convergences, 1);
	assert_int_equal(stats.convergence_ms_sum, 1000);
	/* A node that never registered gets nothing and blocks nothing. */
	assert_int_equal(plan_type(fx->t, SID, 3, 1200), -ENOTCONN);
	assert_int_equal(super_node_info(fx->t, SID, 3, &ni), 0);
	assert_false(ni.up);
}

static void test_ack_stale_duplicate_unknown(void **state)
{
	struct fixture *fx = *state;
	struct super_stats stats;

	assert_int_equal(super_force(fx->t, SID, SUPER_TYPE_SUPER, 0, 0), 0);
	assert_int_equal(super_force(fx->t, SID, SUPER_TYPE_SUPER, 0, 0), 0);
	/* Not sent to node 0 yet. */
	assert_int_equal(super_ack(fx->t, SID, 0, 2, SUPER_TYPE_UPGRADE, 1),
			 SUPER_ACK_STALE);
	assert_int_equal(plan_type(fx->t, SID, 0, 1), SUPER_TYPE_UPGRADE);
	assert_int_equal(super_ack(fx->t, SID, 0, 1, SUPER_TYPE_UPGRADE, 1),
			 SUPER_ACK_STALE);
	assert_int_equal(super_ack(fx->t, SID, 0, 2, SUPER_TYPE_DEMOTE, 1),
			 SUPER_ACK_STALE);
	assert_int_equal(super_ack(fx->t, SID, 0, 3, SUPER_TYPE_UPGRADE, 1),
			 SUPER_ACK_UNKNOWN);
	assert_int_equal(super_ack(fx->t, SID, 0, 2, SUPER_TYPE_SUPER, 1),
			 SUPER_ACK_UNKNOWN);
	assert_int_equal(super_ack(fx->t, SID, NODES, 2, SUPER_TYPE_UPGRADE, 1),
			 SUPER_ACK_UNKNOWN);
	assert_int_equal(super_ack(fx->t, SID, 3, 2, SUPER_TYPE_UPGRADE, 1),
			 SUPER_ACK_UNKNOWN);
	assert_int_equal(super_ack(fx->t, SID + 1, 0, 2, SUPER_TYPE_UPGRADE, 1),
			 SUPER_ACK_UNKNOWN);
	assert_int_equal(super_ack(fx->t, SID, 0, 2, SUPER_TYPE_UPGRADE, 1),
			 SUPER_ACK_ACCEPTED);
	assert_int_equal(super_ack(fx->t, SID, 0, 2, SUPER_TYPE_UPGRADE, 2),
			 SUPER_ACK_DUPLICATE);
	super_stats_get(fx->t, &stats);
	assert_int_equal(stats.acks_accepted, 1);
	assert_int_equal(stats.acks_stale, 3);
	assert_int_equal(stats.acks_duplicate, 1);
	assert_int_equal(stats.acks_unknown, 5);
}

static void test_upgrade_ack_after_demote(void **state)
{
	struct fixture *fx = *state;
	struct super_node_info ni;

	assert_int_equal(super_force(fx->t, SID, SUPER_TYPE_SUPER, 0, 0), 0);
	assert_int_equal(plan_type(fx->t, SID, 0, 10), SUPER_TYPE_UPGRADE);
	assert_int_equal(super_force(fx->t, SID, SUPER_TYPE_NORMAL, 0, 20), 0);
	/* The upgrade ack was in flight when the demote started. */
	assert_int_equal(super_ack(fx->t, SID, 0, 1, SUPER_TYPE_UPGRADE, 30),
			 SUPER_ACK_STALE);
	assert_int_equal(super_node_info(fx->t, SID, 0, &ni), 0);
	assert_int_equal(ni.state, SUPER_NODE_PENDING);
	assert_int_equal(plan_type(fx->t, SID, 0, 40), SUPER_TYPE_DEMOTE);
	/* Nodes that never got the upgrade hold no cache: nothing to demote. */
	assert_int_equal(plan_type(fx->t, SID, 1, 40), SUPER_TYPE_NORMAL);
	assert_int_equal(plan_type(fx->t, SID, 2, 40), SUPER_TYPE_NORMAL);
	assert_false(super_converged(fx->t, SID));
	assert_int_equal(super_ack(fx->t, SID, 0, 2, SUPER_TYPE_DEMOTE, 50),
			 SUPER_ACK_ACCEPTED);
	assert_true(super_converged(fx->t, SID));
	assert_int_equal(plan_type(fx->t, SID, 0, 60), SUPER_TYPE_NORMAL);
}

static void test_epoch_wrap(void **state)
{
	struct fixture *fx = *state;
	uint32_t expect = 0xfffffffeu;

	super_set_epoch_origin(fx->t, expect);
	for (int i = 0; i < 6; i++) {
		enum super_type target = (i % 2) ? SUPER_TYPE_NORMAL :
						   SUPER_TYPE_SUPER;
		enum super_type transition = (i % 2) ? SUPER_TYPE_DEMOTE :
						       SUPER_TYPE_UPGRADE;
		uint32_t old = expect;

		expect++;
		assert_int_equal(super_force(fx->t, SID, target, 1, i), 0);
		assert_int_equal(epoch_of(fx->t, SID), expect);
		for (unsigned int n = 0; n < 3; n++) {
			struct super_plan plan;

			assert_int_equal(super_plan(fx->t, SID, n, i, &plan), 0);
			assert_int_equal(plan.type, transition);
			assert_int_equal(plan.epoch, expect);
			/* The previous epoch is older, even across the wrap. */
			assert_int_equal(super_ack(fx->t, SID, n, old,
						   transition, i),
					 SUPER_ACK_STALE);
			assert_int_equal(super_ack(fx->t, SID, n, expect,
						   transition, i),
					 SUPER_ACK_ACCEPTED);
		}
		assert_true(super_converged(fx->t, SID));
	}
	assert_int_equal(expect, 4);
}

static void test_node_restart_new_boot(void **state)
{
	struct fixture *fx = *state;
	struct super_node_info ni;

	make_converged_super(fx);
	assert_int_equal(super_node_down(fx->t, 1, 10), 0);
	assert_false(super_node_is_up(fx->t, 1));
	assert_int_equal(plan_type(fx->t, SID, 1, 10), -ENOTCONN);
	assert_true(super_converged(fx->t, SID));
	assert_int_equal(super_node_up(fx->t, 1, "boot-b", 20), 0);
	assert_false(super_converged(fx->t, SID));
	assert_int_equal(super_node_info(fx->t, SID, 1, &ni), 0);
	assert_int_equal(ni.state, SUPER_NODE_PENDING);
	assert_false(ni.may_cache);
	assert_false(ni.sent);
	assert_int_equal(ni.since_ms, 20);
	assert_int_equal(plan_type(fx->t, SID, 1, 30), SUPER_TYPE_UPGRADE);
	/* Untouched nodes keep their acknowledged state. */
	assert_int_equal(plan_type(fx->t, SID, 0, 30), SUPER_TYPE_SUPER);
	assert_int_equal(super_ack(fx->t, SID, 1, 1, SUPER_TYPE_UPGRADE, 40),
			 SUPER_ACK_ACCEPTED);
	assert_true(super_converged(fx->t, SID));
	assert_int_equal(plan_type(fx->t, SID, 1, 50), SUPER_TYPE_SUPER);

	assert_int_equal(super_node_up(fx->t, NODES, "boot-c", 60), -EINVAL);
	assert_int_equal(super_node_up(fx->t, 1, "", 60), -EINVAL);
	assert_int_equal(super_node_up(fx->t, 1, NULL, 60), -EINVAL);
	char long_id[SUPER_BOOT_ID_MAX + 2];
	memset(long_id, 'x', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	assert_int_equal(super_node_up(fx->t, 1, long_id, 60), -EINVAL);
	assert_int_equal(super_node_down(fx->t, NODES, 60), -EINVAL);
}

static void test_node_blip_same_boot(void **state)
{
	struct fixture *fx = *state;
	struct super_stats stats;

	make_converged_super(fx);
	/* Re-registering with the same boot id re-sends the upgrade. */
	assert_int_equal(super_node_down(fx->t, 0, 10), 0);
	assert_int_equal(super_node_up(fx->t, 0, "boot-a", 20), 0);
	assert_false(super_converged(fx->t, SID));
	assert_int_equal(plan_type(fx->t, SID, 0, 30), SUPER_TYPE_UPGRADE);
	assert_int_equal(super_ack(fx->t, SID, 0, 1, SUPER_TYPE_UPGRADE, 70),
			 SUPER_ACK_ACCEPTED);
	assert_true(super_converged(fx->t, SID));
	super_stats_get(fx->t, &stats);
	assert_int_equal(stats.convergences, 2);
	assert_int_equal(stats.convergence_ms_sum, 50);

	/*
	 * A demote pending on a node stays pending when the node registers
	 * again with the same boot id (here before its old link's close was
	 * seen, so without a node_down in between)...
	 */
	assert_int_equal(super_force(fx->t, SID, SUPER_TYPE_NORMAL, 1, 100), 0);
	deliver_and_ack(fx->t, SID, 0, 110);
	deliver_and_ack(fx->t, SID, 1, 110);
	assert_int_equal(plan_type(fx->t, SID, 2, 120), SUPER_TYPE_DEMOTE);
	assert_int_equal(super_node_up(fx->t, 2, "boot-a", 130), 0);
	assert_false(super_converged(fx->t, SID));
	assert_int_equal(plan_type(fx->t, SID, 2, 140), SUPER_TYPE_DEMOTE);
	/* ... and a new boot id means the cache is gone with the process. */
	assert_int_equal(super_node_up(fx->t, 2, "boot-b", 150), 0);
	assert_true(super_converged(fx->t, SID));
	assert_int_equal(plan_type(fx->t, SID, 2, 160), SUPER_TYPE_NORMAL);
}

static void test_node_down_unblocks_demote(void **state)
{
	struct fixture *fx = *state;
	struct super_session_info info;
	struct super_stats stats;

	make_converged_super(fx);
	assert_int_equal(super_force(fx->t, SID, SUPER_TYPE_NORMAL, 0, 100), 0);
	deliver_and_ack(fx->t, SID, 0, 110);
	deliver_and_ack(fx->t, SID, 1, 110);
	assert_int_equal(super_session_info(fx->t, SID, 110, &info), 0);
	assert_true(info.tracked);
	assert_int_equal(info.pending_nodes, 1);
	assert_int_equal(super_node_down(fx->t, 2, 120), 0);
	assert_true(super_converged(fx->t, SID));
	/* Converged demote: per-node state is gone (entry kept for the dwell). */
	assert_int_equal(super_session_info(fx->t, SID, 120, &info), 0);
	assert_false(info.tracked);
	super_stats_get(fx->t, &stats);
	assert_int_equal(stats.tracked, 0);
}

struct due_list {
	unsigned int count;
	unsigned int nodes[16];
	enum super_type types[16];
	uint32_t epochs[16];
	unsigned int stop_after;
};

static int collect_due(void *arg, uint64_t session_id, unsigned int node,
		       enum super_type transition, uint32_t epoch)
{
	struct due_list *l = arg;

	assert_int_equal(session_id, SID);
	assert_true(l->count < 16);
	l->nodes[l->count] = node;
	l->types[l->count] = transition;
	l->epochs[l->count] = epoch;
	l->count++;
	return l->stop_after && l->count >= l->stop_after ? 7 : 0;
}

static struct due_list due_at(struct super_table *t, int64_t now)
{
	struct due_list l = { 0 };

	assert_int_equal(super_due_retries(t, now, collect_due, &l), 0);
	return l;
}

static void test_retries_due_after_retry_ms(void **state)
{
	struct fixture *fx = *state;
	struct due_list l;
	struct super_stats stats;

	/* A normal session that never changed has nothing due. */
	assert_int_equal(super_note_message(fx->t, SID + 1, 0), 0);
	assert_int_equal(super_force(fx->t, SID, SUPER_TYPE_SUPER, 0, 1000), 0);
	assert_int_equal(due_at(fx->t, 2999).count, 0);
	l = due_at(fx->t, 3000);
	assert_int_equal(l.count, 3);
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(l.nodes[i], i);
		assert_int_equal(l.types[i], SUPER_TYPE_UPGRADE);
		assert_int_equal(l.epochs[i], 1);
	}
	/* The timer sends to node 0 (a first send, not a retry). */
	assert_int_equal(plan_type(fx->t, SID, 0, 3000), SUPER_TYPE_UPGRADE);
	l = due_at(fx->t, 4999);
	assert_int_equal(l.count, 2);
	assert_int_equal(l.nodes[0], 1);
	assert_int_equal(l.nodes[1], 2);
	l = due_at(fx->t, 5000);
	assert_int_equal(l.count, 3);
	assert_int_equal(plan_type(fx->t, SID, 0, 5000), SUPER_TYPE_UPGRADE);
	/* Acknowledged and down nodes are never due. */
	deliver_and_ack(fx->t, SID, 1, 5000);
	assert_int_equal(super_node_down(fx->t, 2, 5000), 0);
	l = due_at(fx->t, 100000);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.nodes[0], 0);
	super_stats_get(fx->t, &stats);
	assert_int_equal(stats.retries, 1);

	/* A non-zero return stops the walk and is returned. */
	assert_int_equal(super_node_up(fx->t, 2, "boot-b", 100000), 0);
	memset(&l, 0, sizeof(l));
	l.stop_after = 1;
	assert_int_equal(super_due_retries(fx->t, 200000, collect_due, &l), 7);
	assert_int_equal(l.count, 1);
}

static void test_demote_converged_frees_entry(void **state)
{
	struct fixture *fx = *state;
	struct super_session_info info;
	struct super_stats stats;

	make_converged_super(fx);
	/* Demote after the dwell, with no messages in the window. */
	assert_int_equal(super_evaluate(fx->t, SID, 100, 0, 70000),
			 SUPER_TYPE_NORMAL);
	assert_int_equal(epoch_of(fx->t, SID), 2);
	for (unsigned int n = 0; n < 3; n++)
		assert_int_equal(plan_type(fx->t, SID, n, 70000 + 130000),
				 SUPER_TYPE_DEMOTE);
	assert_int_equal(super_ack(fx->t, SID, 0, 2, SUPER_TYPE_DEMOTE, 200000),
			 SUPER_ACK_ACCEPTED);
	assert_int_equal(super_ack(fx->t, SID, 1, 2, SUPER_TYPE_DEMOTE, 200000),
			 SUPER_ACK_ACCEPTED);
	super_stats_get(fx->t, &stats);
	assert_int_equal(stats.entries, 1);
	assert_int_equal(super_ack(fx->t, SID, 2, 2, SUPER_TYPE_DEMOTE, 200000),
			 SUPER_ACK_ACCEPTED);
	super_stats_get(fx->t, &stats);
	assert_int_equal(stats.entries, 0);
	assert_int_equal(stats.tracked, 0);
	assert_int_equal(super_session_info(fx->t, SID, 200000, &info), -ENOENT);
	/* A late copy of the ack finds nothing. */
	assert_int_equal(super_ack(fx->t, SID, 2, 2, SUPER_TYPE_DEMOTE, 200001),
			 SUPER_ACK_UNKNOWN);
	/* The next entry of the session continues past the freed epochs. */
	assert_int_equal(super_force(fx->t, SID, SUPER_TYPE_SUPER, 0, 300000),
			 0);
	assert_int_equal(epoch_of(fx->t, SID), 3);
}

static void test_sweep_frees_after_dwell(void **state)
{
	struct fixture *fx = *state;
	struct super_node_info ni;
	struct super_stats stats;

	make_converged_super(fx);
	assert_int_equal(super_force(fx->t, SID, SUPER_TYPE_NORMAL, 0, 1000), 0);
	feed_messages(fx->t, SID, 1000, 10, 3);
	for (unsigned int n = 0; n < 3; n++)
		deliver_and_ack(fx->t, SID, n, 2000);
	/* Converged within the dwell: the entry stays, its node state goes. */
	super_stats_get(fx->t, &stats);
	assert_int_equal(stats.entries, 1);
	assert_int_equal(stats.tracked, 0);
	assert_int_equal(super_node_info(fx->t, SID, 0, &ni), -ENODATA);
	assert_int_equal(super_sweep(fx->t, 60999), 0);
	assert_int_equal(super_sweep(fx->t, 61000), 1);
	super_stats_get(fx->t, &stats);
	assert_int_equal(stats.entries, 0);

	/* Busy and pinned entries are kept. */
	feed_messages(fx->t, SID, 100000, 10, 3);
	assert_int_equal(super_force(fx->t, SID + 1, SUPER_TYPE_NORMAL, 1, 0),
			 0);
	assert_int_equal(super_sweep(fx->t, 100500), 0);
	assert_int_equal(super_sweep(fx->t, 200000), 1);
	super_stats_get(fx->t, &stats);
	assert_int_equal(stats.entries, 1);
	assert_int_equal(super_unpin(fx->t, SID + 1), 0);
	assert_int_equal(super_sweep(fx->t, 200000), 1);
	super_stats_get(fx->t, &stats);
	assert_int_equal(stats.entries, 0);
}

static int count_session(void *arg, const struct super_session_info *info)
{
	unsigned int *count = arg;

	assert_true(info->session_id == SID || info->session_id == SID + 1);
	(*count)++;
	return 0;
}

static void test_introspection(void **state)
{
	struct fixture *fx = *state;
	struct super_session_info info;
	struct super_node_info ni;
	unsigned int count = 0;

	assert_int_equal(super_force(fx->t, SID, SUPER_TYPE_SUPER, 1, 500), 0);
	assert_int_equal(super_note_message(fx->t, SID + 1, 500), 0);
	deliver_and_ack(fx->t, SID, 2, 700);
	assert_int_equal(super_session_info(fx->t, SID, 800, &info), 0);
	assert_int_equal(info.session_id, SID);
	assert_int_equal(info.type, SUPER_TYPE_SUPER);
	assert_int_equal(info.epoch, 1);
	assert_true(info.tracked);
	assert_true(info.pinned);
	assert_false(info.converged);
	assert_int_equal(info.pending_nodes, 2);
	assert_int_equal(info.last_transition_ms, 500);
	assert_int_equal(info.rate_milli, 0);
	assert_int_equal(super_session_info(fx->t, SID + 1, 800, &info), 0);
	assert_int_equal(info.type, SUPER_TYPE_NORMAL);
	assert_false(info.tracked);
	assert_true(info.converged);
	assert_int_equal(info.last_transition_ms, -1);
	assert_int_equal(info.rate_milli, 100);
	assert_int_equal(super_node_info(fx->t, SID, 2, &ni), 0);
	assert_int_equal(ni.state, SUPER_NODE_ACKED);
	assert_true(ni.up);
	assert_int_equal(ni.since_ms, 700);
	assert_int_equal(super_node_info(fx->t, SID, 1, &ni), 0);
	assert_int_equal(ni.state, SUPER_NODE_PENDING);
	assert_false(ni.sent);
	assert_int_equal(ni.last_send_ms, 0);
	assert_int_equal(super_node_info(fx->t, SID, NODES, &ni), -EINVAL);
	assert_int_equal(super_node_info(fx->t, SID + 2, 0, &ni), -ENOENT);
	assert_int_equal(super_node_info(fx->t, SID + 1, 0, &ni), -ENODATA);
	assert_int_equal(super_foreach_session(fx->t, 800, count_session,
					       &count),
			 0);
	assert_int_equal(count, 2);
	assert_string_equal(super_type_name(SUPER_TYPE_DEMOTE), "super_demote");
	assert_string_equal(super_type_name(SUPER_TYPE_SUPER), "super");
}

/* ---- randomized run against simulated gateways ---- */

#define SIM_NODES 6
#define SIM_SESSIONS 5
#define SIM_EVENTS 4000
#define SIM_MAX_ACKS 65536

/* A gateway as the daemon cannot see it: what it cached, per session. */
struct sim_gateway {
	int up;
	unsigned int boot;
	unsigned int link;        /* bumped when the link drops */
	int cached[SIM_SESSIONS];
	uint32_t cache_epoch[SIM_SESSIONS];
};

struct sim_ack {
	unsigned int session;
	unsigned int node;
	unsigned int link;
	uint32_t epoch;
	enum super_type type;
	int64_t due;
};

struct sim {
	struct super_table *t;
	uint64_t rng;
	int64_t now;
	unsigned int drop_pct;
	struct sim_gateway gw[SIM_NODES];
	struct sim_ack acks[SIM_MAX_ACKS];
	size_t nacks;
	/* Accepted upgrade acks since the node last registered. */
	int acked_super[SIM_SESSIONS][SIM_NODES];
	uint32_t acked_epoch[SIM_SESSIONS][SIM_NODES];
	unsigned int sends[4];
	int forced[SIM_SESSIONS];
};

static const unsigned int sim_members[SIM_SESSIONS] = { 1000, 1000, 50,
							1000, 500 };

static uint32_t sim_rand(struct sim *sim)
{
	/* xorshift64*, so a seed replays the same run on every libc. */
	sim->rng ^= sim->rng >> 12;
	sim->rng ^= sim->rng << 25;
	sim->rng ^= sim->rng >> 27;
	return (uint32_t)((sim->rng * 2685821657736338717ull) >> 32);
}

static unsigned int sim_below(struct sim *sim, unsigned int n)
{
	return sim_rand(sim) % n;
}

static uint64_t sim_sid(unsigned int session)
{
	return 1000 + session;
}

static int sim_current_epoch(struct sim *sim, unsigned int s, uint32_t *epoch)
{
	struct super_session_info info;

	if (super_session_info(sim->t, sim_sid(s), sim->now, &info) < 0)
		return 0;
	*epoch = info.epoch;
	return 1;
}

/* Returns whether the table accepted an upgrade ack from node for the
 * session's current epoch since the node last registered. */
static int sim_acked_super(struct sim *sim, unsigned int s, unsigned int n)
{
	uint32_t epoch;

	if (!sim->acked_super[s][n] || !sim_current_epoch(sim, s, &epoch))
		return 0;
	return sim->acked_epoch[s][n] == epoch &&
	       super_type_of(sim->t, sim_sid(s)) == SUPER_TYPE_SUPER;
}

static void sim_queue_ack(struct sim *sim, unsigned int s, unsigned int n,
			  uint32_t epoch, enum super_type type)
{
	struct sim_ack *a;

	if (sim_below(sim, 100) < sim->drop_pct)
		return;
	assert_true(sim->nacks < SIM_MAX_ACKS);
	a = &sim->acks[sim->nacks++];
	a->session = s;
	a->node = n;
	a->link = sim->gw[n].link;
	a->epoch = epoch;
	a->type = type;
	a->due = sim->now + sim_below(sim, 300);
}

/* Sends the next message of session s to node n, as the daemon would, and
 * applies it to the simulated gateway. */
static void sim_send(struct sim *sim, unsigned int s, unsigned int n)
{
	struct sim_gateway *gw = &sim->gw[n];
	int acked = sim_acked_super(sim, s, n);
	struct super_plan plan;
	int err;

	err = super_plan(sim->t, sim_sid(s), n, sim->now, &plan);
	if (!gw->up) {
		assert_int_equal(err, -ENOTCONN);
		return;
	}
	assert_int_equal(err, 0);
	sim->sends[plan.type]++;
	/* Acknowledged as super gets SUPER; anything else never does. */
	if (acked)
		assert_int_equal(plan.type, SUPER_TYPE_SUPER);
	else
		assert_int_not_equal(plan.type, SUPER_TYPE_SUPER);
	switch (plan.type) {
	case SUPER_TYPE_SUPER:
		/* The gateway must hold the cache of this very epoch. */
		assert_true(gw->cached[s]);
		assert_int_equal(gw->cache_epoch[s], plan.epoch);
		break;
	case SUPER_TYPE_UPGRADE:
		gw->cached[s] = 1;
		gw->cache_epoch[s] = plan.epoch;
		sim_queue_ack(sim, s, n, plan.epoch, plan.type);
		break;
	case SUPER_TYPE_DEMOTE:
		gw->cached[s] = 0;
		sim_queue_ack(sim, s, n, plan.epoch, plan.type);
		break;
	case SUPER_TYPE_NORMAL:
		break;
	}
}

static void sim_apply_ack(struct sim *sim, const struct sim_ack *a)
{
	uint32_t epoch;
	int current, result;

	current = sim_current_epoch(sim, a->session, &epoch) &&
		  epoch == a->epoch;
	result = super_ack(sim->t, sim_sid(a->session), a->node, a->epoch,
			   a->type, sim->now);
	if (!current)
		assert_int_not_equal(result, SUPER_ACK_ACCEPTED);
	if (result == SUPER_ACK_ACCEPTED && a->type == SUPER_TYPE_UPGRADE) {
		sim->acked_super[a->session][a->node] = 1;
		sim->acked_epoch[a->session][a->node] = a->epoch;
	}
}

/* Delivers due acks, some later than others; flush delivers all. Acks of a
 * link that dropped are lost with it. */
static void sim_deliver_acks(struct sim *sim, int flush)
{
	size_t i, kept = 0;

	for (i = 0; i < sim->nacks; i++) {
		struct sim_ack a = sim->acks[i];
		const struct sim_gateway *gw = &sim->gw[a.node];

		if (!gw->up || gw->link != a.link)
			continue;
		if (!flush && (a.due > sim->now || sim_below(sim, 4) == 0)) {
			sim->acks[kept++] = a;
			continue;
		}
		sim_apply_ack(sim, &a);
	}
	sim->nacks = kept;
}

static void sim_message(struct sim *sim)
{
	unsigned int s = sim_below(sim, SIM_SESSIONS);
	int type;

	assert_int_equal(super_note_message(sim->t, sim_sid(s), sim->now), 0);
	type = super_evaluate(sim->t, sim_sid(s), sim_members[s],
			      sim_below(sim, 80), sim->now);
	assert_true(type == SUPER_TYPE_NORMAL || type == SUPER_TYPE_SUPER);
	/* Too few members for the rules: only a force makes it super. */
	if (sim_members[s] < 100 && !sim->forced[s])
		assert_int_equal(type, SUPER_TYPE_NORMAL);
	for (unsigned int n = 0; n < SIM_NODES; n++)
		sim_send(sim, s, n);
}

static void sim_node_down(struct sim *sim)
{
	unsigned int n = sim_below(sim, SIM_NODES);

	if (!sim->gw[n].up)
		return;
	assert_int_equal(super_node_down(sim->t, n, sim->now), 0);
	sim->gw[n].up = 0;
	sim->gw[n].link++;
	/* Gateways drop every super cache when their daemon link drops. */
	memset(sim->gw[n].cached, 0, sizeof(sim->gw[n].cached));
}

static void sim_node_up(struct sim *sim, unsigned int n)
{
	struct sim_gateway *gw = &sim->gw[n];
	char boot_id[32];

	/* Half of the returns are a new process without caches. */
	if (sim_below(sim, 2)) {
		gw->boot++;
		memset(gw->cached, 0, sizeof(gw->cached));
	}
	snprintf(boot_id, sizeof(boot_id), "node%u-boot%u", n, gw->boot);
	assert_int_equal(super_node_up(sim->t, n, boot_id, sim->now), 0);
	gw->up = 1;
	for (unsigned int s = 0; s < SIM_SESSIONS; s++)
		sim->acked_super[s][n] = 0;
}

static int sim_retry(void *arg, uint64_t session_id, unsigned int node,
		     enum super_type transition, uint32_t epoch)
{
	struct sim *sim = arg;
	unsigned int s = session_id - sim_sid(0);
	uint32_t current;

	assert_true(s < SIM_SESSIONS);
	assert_true(sim->gw[node].up);
	assert_true(sim_current_epoch(sim, s, &current));
	assert_int_equal(epoch, current);
	assert_int_equal(transition,
			 super_type_of(sim->t, session_id) == SUPER_TYPE_SUPER ?
				 SUPER_TYPE_UPGRADE :
				 SUPER_TYPE_DEMOTE);
	sim_send(sim, s, node);
	return 0;
}

static void sim_event(struct sim *sim)
{
	unsigned int r = sim_below(sim, 100);
	unsigned int s = sim_below(sim, SIM_SESSIONS);

	sim->now += sim_below(sim, 30);
	if (r < 40) {
		sim_message(sim);
	} else if (r < 70) {
		sim_deliver_acks(sim, 0);
	} else if (r < 74) {
		sim_node_down(sim);
	} else if (r < 80) {
		unsigned int n = sim_below(sim, SIM_NODES);

		if (!sim->gw[n].up)
			sim_node_up(sim, n);
	} else if (r < 82) {
		enum super_type target = sim_below(sim, 2) ? SUPER_TYPE_SUPER :
							     SUPER_TYPE_NORMAL;

		assert_int_equal(super_force(sim->t, sim_sid(s), target,
					     sim_below(sim, 4) == 0, sim->now),
				 0);
		assert_int_equal(super_type_of(sim->t, sim_sid(s)), target);
		sim->forced[s] = 1;
	} else if (r < 84) {
		super_unpin(sim->t, sim_sid(s));
	} else if (r < 92) {
		assert_int_equal(super_due_retries(sim->t, sim->now, sim_retry,
						   sim),
				 0);
	} else if (r < 95) {
		super_sweep(sim->t, sim->now);
	} else {
		sim->now += 250;
	}
}

static int sim_all_converged(struct sim *sim)
{
	for (unsigned int s = 0; s < SIM_SESSIONS; s++) {
		if (!super_converged(sim->t, sim_sid(s)))
			return 0;
	}
	return 1;
}

/* With events stopped and every ack delivered, the retry timer alone must
 * bring every live node to the session's current type. */
static void sim_converge(struct sim *sim)
{
	int rounds = 0;

	sim->drop_pct = 0;
	sim_deliver_acks(sim, 1);
	while (!sim_all_converged(sim)) {
		assert_true(++rounds <= 3);
		sim->now += 100;
		assert_int_equal(super_due_retries(sim->t, sim->now, sim_retry,
						   sim),
				 0);
		sim_deliver_acks(sim, 1);
	}
	for (unsigned int s = 0; s < SIM_SESSIONS; s++) {
		enum super_type type = super_type_of(sim->t, sim_sid(s));

		for (unsigned int n = 0; n < SIM_NODES; n++) {
			if (!sim->gw[n].up)
				continue;
			assert_int_equal(plan_type(sim->t, sim_sid(s), n,
						   sim->now),
					 type);
			/* Converged also means no gateway keeps a cache that
			 * a normal session no longer uses. */
			assert_int_equal(sim->gw[n].cached[s],
					 type == SUPER_TYPE_SUPER);
		}
	}
}

static int sim_count_entry(void *arg, const struct super_session_info *info)
{
	uint64_t *count = arg;

	(*count)++;
	return 0;
}

static void sim_run(uint64_t seed, struct super_stats *total)
{
	struct super_rules rules = {
		.upgrade_min_members = 100,
		.upgrade_min_online = 50,
		.upgrade_rate = 8,
		.demote_rate = 3,
		.demote_online = 20,
		.window_ms = 1000,
		.min_dwell_ms = 300,
		.retry_ms = 100,
	};
	struct sim *sim = calloc(1, sizeof(*sim));
	struct super_stats stats;
	uint64_t entries = 0;

	assert_non_null(sim);
	sim->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	sim->drop_pct = 15;
	sim->now = 1000;
	sim->t = super_table_new(&rules, SIM_NODES);
	assert_non_null(sim->t);
	/* Start near the wrap so the run crosses it. */
	super_set_epoch_origin(sim->t, 0xffffffffu - sim_below(sim, 40));
	for (unsigned int n = 0; n < SIM_NODES; n++)
		sim_node_up(sim, n);
	for (int i = 0; i < SIM_EVENTS; i++)
		sim_event(sim);
	sim_converge(sim);

	super_stats_get(sim->t, &stats);
	assert_int_equal(super_foreach_session(sim->t, sim->now,
					       sim_count_entry, &entries),
			 0);
	assert_int_equal(stats.entries, entries);
	assert_true(stats.tracked <= stats.entries);
	total->upgrades += stats.upgrades;
	total->demotes += stats.demotes;
	total->acks_accepted += stats.acks_accepted;
	total->acks_stale += stats.acks_stale;
	total->acks_duplicate += stats.acks_duplicate;
	total->retries += stats.retries;
	total->convergences += stats.convergences;
	super_table_free(sim->t);
	free(sim);
}

static void test_random_events_converge(void **state)
{
	struct super_stats total = { 0 };
	(void)state;

	for (uint64_t seed = 1; seed <= 100; seed++)
		sim_run(seed, &total);
	/* The runs must have exercised every path the invariants guard. */
	assert_true(total.upgrades > 100);
	assert_true(total.demotes > 100);
	assert_true(total.acks_stale > 0);
	assert_true(total.retries > 100);
	assert_true(total.convergences > 100);
	print_message("random: %llu up, %llu down, %llu acked, %llu stale, %llu retries\n",
		      (unsigned long long)total.upgrades,
		      (unsigned long long)total.demotes,
		      (unsigned long long)total.acks_accepted,
		      (unsigned long long)total.acks_stale,
		      (unsigned long long)total.retries);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_epoch_serial_order),
		cmocka_unit_test(test_rules_check_rejects),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_unknown_session_is_normal),
		T(test_upgrade_by_members_online),
		T(test_upgrade_by_rate),
		T(test_rate_window_slides),
		T(test_demote_needs_both_low),
		T(test_dwell_blocks_transition),
		T(test_no_flapping_near_upgrade),
		T(test_no_flapping_near_demote),
		T(test_dwell_spaces_without_band),
		T(test_force_and_pin),
		T(test_plan_before_after_ack),
		T(test_ack_stale_duplicate_unknown),
		T(test_upgrade_ack_after_demote),
		T(test_epoch_wrap),
		T(test_node_restart_new_boot),
		T(test_node_blip_same_boot),
		T(test_node_down_unblocks_demote),
		T(test_retries_due_after_retry_ms),
		T(test_demote_converged_frees_entry),
		T(test_sweep_frees_after_dwell),
		T(test_introspection),
#undef T
		cmocka_unit_test(test_random_events_converge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

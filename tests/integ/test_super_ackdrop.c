// SPDX-License-Identifier: MIT
/*
 * A gateway whose SUPER_ACK frames are dropped (the drop_super_acks fault,
 * switched at run time) stays pending: it gets the upgrade again with every
 * message and from the retry timer while the session is quiet, and the
 * retries show in the admin view and the metrics. Its members still get
 * every message once and in order. When the fault is switched off, the
 * gateway acknowledges and the session converges.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_super.h"

#define GWS 2
#define MEMBERS 8
#define BUSY 20
#define QUIET_RETRIES 3

static const char *const biz_args[] = {
	"--super-upgrade-min-members", "1000",
	"--super-retry-ms", "200",
	NULL,
};

static const char *const members[MEMBERS] = {
	"ann", "ben", "cid", "dan", "eve", "fay", "gil", "hal",
};

struct node_want {
	const char *node_id;
	const char *state;
	json_int_t min_retries;
};

/* Holds when the node is in the wanted state with enough retries. */
static int node_is(json_t *reply, void *arg)
{
	const struct node_want *want = arg;
	json_t *g = super_gateway(reply, want->node_id);
	const char *state;

	if (!g)
		return 0;
	state = json_string_value(json_object_get(g, "state"));
	return state && strcmp(state, want->state) == 0 &&
	       json_integer_value(json_object_get(g, "retries")) >=
	       want->min_retries;
}

static json_int_t node_retries(json_t *reply, const char *node_id)
{
	json_t *g = super_gateway(reply, node_id);

	H_CHECK(g != NULL, "no gateway %s in the super state", node_id);
	return json_integer_value(json_object_get(g, "retries"));
}

/* Sends BUSY messages; each must reach gw1 as an upgrade again. */
static void send_busy(struct harness *h, struct sgroup *g,
		      struct tclient **devs)
{
	double dropped = harness_metric(&h->gw[1],
					"imgw_super_acks_dropped_total");
	double gw0_casts = harness_metric(&h->gw[0], "imgw_broadcasts_total");
	json_t *reply;

	for (int n = 0; n < BUSY; n++)
		sg_send(g, devs[n % MEMBERS], "busy");
	/* Once ben on gw1 has the last message, gw1 has read every DELIVER
	 * (ben did not send it). */
	H_CHECK(tc_wait_push(devs[1], g->sid, sg_last_seq(g),
			     HARNESS_WAIT_MS) >= 0,
		"ben on gw1 did not get seq %llu",
		(unsigned long long)sg_last_seq(g));
	H_CHECK(harness_metric(&h->gw[1], "imgw_super_acks_dropped_total") >=
		dropped + BUSY,
		"gw1 dropped %.0f acks, expected at least %.0f: one per message",
		harness_metric(&h->gw[1], "imgw_super_acks_dropped_total"),
		dropped + BUSY);
	H_CHECK(harness_metric(&h->gw[1], "imgw_broadcasts_total") == 0,
		"gw1 got %.0f broadcasts while pending, expected none",
		harness_metric(&h->gw[1], "imgw_broadcasts_total"));
	H_CHECK(harness_metric(&h->gw[0], "imgw_broadcasts_total") >=
		gw0_casts + BUSY,
		"gw0 got %.0f broadcasts, expected at least %.0f",
		harness_metric(&h->gw[0], "imgw_broadcasts_total"),
		gw0_casts + BUSY);
	reply = super_get(h, g->sid);
	H_CHECK(node_retries(reply, "node-1") >= BUSY,
		"node-1 retries %lld after %d messages, expected at least %d",
		(long long)node_retries(reply, "node-1"), BUSY, BUSY);
	H_CHECK(!json_is_true(json_object_get(reply, "converged")),
		"session converged although gw1 dropped every ack");
	json_decref(reply);
}

/* Waits for the timer to re-send the upgrade to the quiet session. */
static void wait_quiet_retries(struct harness *h, struct sgroup *g)
{
	double metric = harness_metric(&h->biz, "bizsvr_super_retries_total");
	json_t *reply = super_get(h, g->sid);
	struct node_want want = {
		"node-1", "pending",
		node_retries(reply, "node-1") + QUIET_RETRIES,
	};

	json_decref(reply);
	reply = super_wait_for(h, g->sid, node_is, &want,
			       "re-sent to node-1 by the timer",
			       SUPER_WAIT_MS);
	H_CHECK(!json_is_true(json_object_get(reply, "converged")),
		"session converged although gw1 dropped every ack");
	json_decref(reply);
	H_CHECK(harness_metric(&h->biz, "bizsvr_super_retries_total") >=
		metric + QUIET_RETRIES,
		"bizsvr_super_retries_total %.0f, expected at least %.0f",
		harness_metric(&h->biz, "bizsvr_super_retries_total"),
		metric + QUIET_RETRIES);
}

static void test_super_ackdrop_retry(void **state)
{
	struct harness *h = harness_start_args(GWS, NULL, biz_args);
	static struct sgroup g;
	struct tclient *devs[MEMBERS];
	struct node_want acked0 = { "node-0", "acked", 0 };
	uint64_t conns[GWS][MEMBERS / GWS];
	json_t *reply;
	long long epoch;

	memset(&g, 0, sizeof(g));
	g.h = h;
	g.sid = admin_session_create(h, "group", "drops", members, MEMBERS);
	for (int i = 0; i < MEMBERS; i++) {
		devs[i] = tc_login(h, i % GWS, members[i], "phone");
		conns[i % GWS][i / GWS] = devs[i]->conn_id;
	}
	sg_send(&g, devs[0], "normal");
	gw_drop_acks(h, 1, 1);
	H_CHECK(harness_metric(&h->gw[1], "imgw_fault_drop_super_acks") == 1,
		"gw1 imgw_fault_drop_super_acks is not 1 after switching it on");

	json_decref(super_post(h, g.sid, "upgrade"));
	reply = super_wait_for(h, g.sid, node_is, &acked0,
			       "acknowledged by node-0", SUPER_WAIT_MS);
	epoch = (long long)json_integer_value(json_object_get(reply, "epoch"));
	json_decref(reply);

	send_busy(h, &g, devs);
	wait_quiet_retries(h, &g);
	/* gw1 applied every upgrade, it only kept quiet about it. */
	gw_cache_check(h, 1, g.sid, conns[1], MEMBERS / GWS, epoch);

	gw_drop_acks(h, 1, 0);
	json_decref(super_wait(h, g.sid, "super", 1, SUPER_WAIT_MS));
	for (int gw = 0; gw < GWS; gw++)
		gw_cache_check(h, gw, g.sid, conns[gw], MEMBERS / GWS, epoch);
	for (int n = 0; n < 4; n++)
		sg_send(&g, devs[n], "converged");
	sg_push(&g, "last");
	for (int i = 0; i < MEMBERS; i++)
		sg_check_pushes(&g, devs[i], 1, UINT64_MAX);
	H_CHECK(harness_metric(&h->gw[1], "imgw_broadcasts_total") >= 5,
		"gw1 got %.0f broadcasts after converging, expected at least 5",
		harness_metric(&h->gw[1], "imgw_broadcasts_total"));

	for (int i = 0; i < MEMBERS; i++)
		tc_free(devs[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_super_ackdrop_retry,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("super_ackdrop", tests, NULL, NULL);
}

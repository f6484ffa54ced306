// SPDX-License-Identifier: MIT
/*
 * A gateway killed with SIGKILL mid-upgrade (its acks are dropped, so it is
 * still pending) while messages flow, then started again: the new process
 * has a new boot id and no caches, so the daemon upgrades the session on it
 * again. Its clients reconnect and log in, which puts them into the rebuilt
 * cache. The session converges, and per member the pushes before the kill,
 * the sync after the login and the pushes after it hold every acknowledged
 * message exactly once. A bizsvr killed while a session is super comes
 * back with no super state: the gateways drop their caches when the link
 * drops, the session goes on as normal, and can be upgraded again. A
 * gateway whose link drops while both daemons keep running (same boot id)
 * drops its caches and gets the upgrade again when it registers.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_proxy.h"
#include "harness_super.h"

#define GWS 3
#define MEMBERS 12
#define VICTIM 2                /* the gateway that is killed */
#define PER_GW (MEMBERS / GWS)

static const char *const biz_args[] = {
	"--super-upgrade-min-members", "1000",
	"--super-retry-ms", "200",
	NULL,
};

static const char *const members[MEMBERS] = {
	"m00", "m01", "m02", "m03", "m04", "m05",
	"m06", "m07", "m08", "m09", "m10", "m11",
};

/* Returns the highest seq of the session that t got by push, or 0. */
static uint64_t last_pushed(const struct tclient *t, uint64_t sid)
{
	uint64_t last = 0;

	for (size_t i = 0; i < t->push_count; i++)
		if (t->pushes[i].session_id == sid && t->pushes[i].seq > last)
			last = t->pushes[i].seq;
	return last;
}

/* Sends count messages from the members on the other gateways. */
static void send_others(struct sgroup *g, struct tclient **devs, int count,
			const char *tag)
{
	for (int n = 0, i = 0; n < count; i++) {
		if (devs[i % MEMBERS]->gw == VICTIM)
			continue;
		sg_send(g, devs[i % MEMBERS], tag);
		n++;
	}
}

static int node_victim_pending(json_t *reply, void *arg)
{
	json_t *gw = super_gateway(reply, "node-2");
	const char *state = json_string_value(json_object_get(gw, "state"));

	return state && strcmp(state, "pending") == 0 &&
	       json_is_true(json_object_get(gw, "sent"));
}

/* Re-connects the victim's members and syncs what they missed. */
static void reconnect_victims(struct harness *h, struct sgroup *g,
			      struct tclient **devs, struct tclient **old)
{
	for (int i = 0; i < MEMBERS; i++) {
		uint64_t seen;

		if (devs[i]->gw != VICTIM)
			continue;
		old[i] = devs[i];
		H_CHECK(tc_wait_closed(old[i], HARNESS_WAIT_MS) == 0,
			"%s: connection to the killed gateway stayed open",
			members[i]);
		seen = last_pushed(old[i], g->sid);
		/* What arrived before the kill is a gap-free prefix. */
		sg_check_pushes(g, old[i], 1, seen);
		devs[i] = tc_login(h, VICTIM, members[i], "phone");
		H_CHECK(devs[i]->login->n_sessions == 1 &&
			devs[i]->login->sessions[0]->type ==
			IMGW__SESSION_TYPE__SESSION_TYPE_SUPER,
			"%s: login lists %zu sessions, expected the super session",
			members[i], devs[i]->login->n_sessions);
		sg_check_sync(g, devs[i], seen + 1);
	}
}

static void test_super_restart_midway(void **state)
{
	struct gw_options opts[GWS] = { [VICTIM] = { .drop_super_acks = 1 } };
	struct harness *h = harness_start_args(GWS, opts, biz_args);
	static struct sgroup g;
	struct tclient *devs[MEMBERS], *old[MEMBERS] = { 0 };
	uint64_t conns[GWS][PER_GW], resumed;
	json_t *reply;
	long long epoch;

	memset(&g, 0, sizeof(g));
	g.h = h;
	g.sid = admin_session_create(h, "group", "restart", members, MEMBERS);
	for (int i = 0; i < MEMBERS; i++)
		devs[i] = tc_login(h, i % GWS, members[i], "phone");

	send_others(&g, devs, 10, "normal");
	json_decref(super_post(h, g.sid, "upgrade"));
	send_others(&g, devs, 10, "upgrading");
	json_decref(super_wait_for(h, g.sid, node_victim_pending, NULL,
				   "pending on node-2 after an upgrade was sent",
				   SUPER_WAIT_MS));

	harness_gw_stop(h, VICTIM, SIGKILL);
	send_others(&g, devs, 10, "victim-down");
	h->gw[VICTIM].opts.drop_super_acks = 0;
	harness_gw_start(h, VICTIM);
	harness_wait_gateways(h, GWS);
	send_others(&g, devs, 10, "victim-back");
	reconnect_victims(h, &g, devs, old);
	resumed = sg_last_seq(&g) + 1;

	reply = super_wait(h, g.sid, "super", 1, SUPER_WAIT_MS);
	epoch = (long long)json_integer_value(json_object_get(reply, "epoch"));
	json_decref(reply);
	for (int i = 0; i < MEMBERS; i++)
		conns[i % GWS][i / GWS] = devs[i]->conn_id;
	for (int gw = 0; gw < GWS; gw++)
		gw_cache_check(h, gw, g.sid, conns[gw], PER_GW, epoch);

	for (int n = 0; n < MEMBERS; n++)
		sg_send(&g, devs[n], "after");
	sg_push(&g, "last");
	for (int i = 0; i < MEMBERS; i++)
		sg_check_pushes(&g, devs[i], old[i] ? resumed : 1,
				UINT64_MAX);
	H_CHECK(harness_metric(&h->gw[VICTIM], "imgw_broadcasts_total") >=
		MEMBERS,
		"restarted gw%d got %.0f broadcasts, expected at least %d",
		VICTIM, harness_metric(&h->gw[VICTIM], "imgw_broadcasts_total"),
		MEMBERS);

	for (int i = 0; i < MEMBERS; i++) {
		tc_free(devs[i]);
		tc_free(old[i]);
	}
}

static void test_super_restart_bizsvr(void **state)
{
	struct harness *h = harness_start_args(GWS, NULL, biz_args);
	static struct sgroup g;
	struct tclient *devs[MEMBERS];
	uint64_t conns[GWS][PER_GW];
	json_t *reply;
	long long epoch;

	memset(&g, 0, sizeof(g));
	g.h = h;
	g.sid = admin_session_create(h, "group", "bizsvr", members, MEMBERS);
	for (int i = 0; i < MEMBERS; i++) {
		devs[i] = tc_login(h, i % GWS, members[i], "phone");
		conns[i % GWS][i / GWS] = devs[i]->conn_id;
	}
	json_decref(super_post(h, g.sid, "upgrade"));
	json_decref(super_wait(h, g.sid, "super", 1, SUPER_WAIT_MS));
	for (int n = 0; n < MEMBERS; n++)
		sg_send(&g, devs[n], "super");
	/* A kill loses the DELIVERs still queued in bizsvr; this test is
	 * about the super state, so they all go out first. */
	for (int i = 0; i < MEMBERS; i++)
		sg_check_pushes(&g, devs[i], 1, UINT64_MAX);

	harness_biz_stop(h, SIGKILL);
	for (int gw = 0; gw < GWS; gw++) {
		harness_wait_upstream(h, gw, 0);
		gw_cache_wait_gone(h, gw, g.sid);
	}
	harness_biz_start(h);
	harness_wait_gateways(h, GWS);
	reply = super_get(h, g.sid);
	H_CHECK(strcmp(json_string_value(json_object_get(reply, "type")),
		       "normal") == 0,
		"session is %s in a new bizsvr process, expected normal",
		json_string_value(json_object_get(reply, "type")));
	json_decref(reply);
	for (int n = 0; n < MEMBERS; n++)
		sg_send(&g, devs[n], "normal-again");

	json_decref(super_post(h, g.sid, "upgrade"));
	reply = super_wait(h, g.sid, "super", 1, SUPER_WAIT_MS);
	epoch = (long long)json_integer_value(json_object_get(reply, "epoch"));
	json_decref(reply);
	for (int gw = 0; gw < GWS; gw++)
		gw_cache_check(h, gw, g.sid, conns[gw], PER_GW, epoch);
	for (int n = 0; n < MEMBERS; n++)
		sg_send(&g, devs[n], "super-again");
	sg_push(&g, "last");
	for (int i = 0; i < MEMBERS; i++)
		sg_check_pushes(&g, devs[i], 1, UINT64_MAX);
	for (int i = 0; i < MEMBERS; i++)
		tc_free(devs[i]);
}

/* Moves gateway 1's link to bizsvr behind p. */
static void proxy_gateway(struct harness *h, struct tcp_proxy *p)
{
	harness_gw_stop(h, 1, SIGTERM);
	proxy_start(p, h->biz.port);
	h->gw[1].opts.bizsvr_port = p->port;
	harness_gw_start(h, 1);
	harness_wait_gateways(h, GWS);
}

/* Cuts gateway 1's link and waits until it has registered again. */
static void cut_link(struct harness *h, struct tcp_proxy *p)
{
	double before = harness_metric(&h->gw[1],
				       "imgw_upstream_reconnects_total");
	uint64_t deadline = client_now_ms(1) + SUPER_WAIT_MS;

	proxy_cut(p);
	while (harness_metric(&h->gw[1], "imgw_upstream_reconnects_total") <=
	       before || harness_metric(&h->gw[1], "imgw_upstream_up") != 1) {
		H_CHECK(client_now_ms(1) < deadline,
			"gw1 did not reconnect within %d ms after the link was cut",
			SUPER_WAIT_MS);
		super_sleep_ms(20);
	}
	harness_wait_gateways(h, GWS);
}

static void test_super_restart_link_drop(void **state)
{
	struct harness *h = harness_start_args(GWS, NULL, biz_args);
	static struct sgroup g;
	struct tcp_proxy proxy = { 0 };
	struct tclient *devs[MEMBERS];
	uint64_t conns[GWS][PER_GW];
	double acks;
	json_t *reply;
	long long epoch;

	proxy_gateway(h, &proxy);
	memset(&g, 0, sizeof(g));
	g.h = h;
	g.sid = admin_session_create(h, "group", "blip", members, MEMBERS);
	for (int i = 0; i < MEMBERS; i++) {
		devs[i] = tc_login(h, i % GWS, members[i], "phone");
		conns[i % GWS][i / GWS] = devs[i]->conn_id;
	}
	json_decref(super_post(h, g.sid, "upgrade"));
	reply = super_wait(h, g.sid, "super", 1, SUPER_WAIT_MS);
	epoch = (long long)json_integer_value(json_object_get(reply, "epoch"));
	json_decref(reply);
	for (int n = 0; n < MEMBERS; n++)
		sg_send(&g, devs[n], "super");
	/* The cut loses DELIVERs in flight; this test is about the state. */
	for (int i = 0; i < MEMBERS; i++)
		sg_check_pushes(&g, devs[i], 1, UINT64_MAX);

	acks = harness_metric(&h->gw[1], "imgw_super_acks_sent_total");
	cut_link(h, &proxy);
	reply = super_wait(h, g.sid, "super", 1, SUPER_WAIT_MS);
	H_CHECK(json_integer_value(json_object_get(reply, "epoch")) == epoch,
		"epoch %lld after the link came back, expected %lld",
		(long long)json_integer_value(json_object_get(reply, "epoch")),
		epoch);
	json_decref(reply);
	H_CHECK(harness_metric(&h->gw[1], "imgw_super_acks_sent_total") > acks,
		"gw1 sent no SUPER_ACK after registering again, expected one for the re-sent upgrade");
	for (int gw = 0; gw < GWS; gw++)
		gw_cache_check(h, gw, g.sid, conns[gw], PER_GW, epoch);

	for (int n = 0; n < MEMBERS; n++)
		sg_send(&g, devs[n], "after-cut");
	sg_push(&g, "last");
	for (int i = 0; i < MEMBERS; i++)
		sg_check_pushes(&g, devs[i], 1, UINT64_MAX);
	for (int i = 0; i < MEMBERS; i++)
		tc_free(devs[i]);
	harness_gw_stop(h, 1, SIGTERM);
	proxy_stop(&proxy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_super_restart_midway,
					  harness_teardown),
		cmocka_unit_test_teardown(test_super_restart_bizsvr,
					  harness_teardown),
		cmocka_unit_test_teardown(test_super_restart_link_drop,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("super_restart", tests, NULL, NULL);
}

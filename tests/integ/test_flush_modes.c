// SPDX-License-Identifier: MIT
/*
 * Both ways the gateway writes client output: gateway 0 sends the output of
 * a loop pass with one io_uring submission (the default), gateway 1 runs
 * with --flush-writev. Members on both get a burst of group messages that
 * they read only afterwards, so frames pile up per connection (more
 * chains than one io_uring entry carries), first as a normal session and
 * then as a super session. Every member must get every message once and
 * in order, and the metrics must show which path wrote and how long the
 * flushes took.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_super.h"

#define MEMBERS 8
#define BURST 200

static const char *const writev_args[] = { "--flush-writev", NULL };

static const char *const members[MEMBERS] = {
	"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7",
};

/* Pushes BURST messages without reading, then checks every member. */
static void burst_and_check(struct harness *h, uint64_t sid,
			    struct tclient **clients, struct sent_msg *sent,
			    size_t *sent_count)
{
	size_t want;

	for (int i = 0; i < BURST; i++) {
		char payload[100];
		uint64_t seq;

		/* Payload sizes from 1 to 99 bytes. */
		snprintf(payload, sizeof(payload), "%d-%.*s", i, i % 90,
			 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
			 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
		seq = admin_push(h, sid, "system", payload);
		sent_add(sent, sent_count, seq, "system", payload);
	}
	want = *sent_count;
	for (int i = 0; i < MEMBERS; i++) {
		size_t got = tc_collect(clients[i], want, HARNESS_WAIT_MS);

		H_CHECK(got == want, "%s on gw%d: %zu of %zu pushes",
			members[i], clients[i]->gw, got, want);
		tc_check_pushes(clients[i], sid, sent, want);
	}
}

static void test_flush_modes_deliver(void **state)
{
	const struct gw_options opts[] = { { 0 }, { .args = writev_args } };
	struct harness *h = harness_start(2, opts);
	struct tclient *clients[MEMBERS];
	static struct sent_msg sent[2 * BURST];
	size_t sent_count = 0;
	double ring0, ring1, writes0, writes1;
	uint64_t sid;

	sid = admin_session_create(h, "group", "burst", members, MEMBERS);
	for (int i = 0; i < MEMBERS; i++)
		clients[i] = tc_login(h, i % 2, members[i], "d");

	burst_and_check(h, sid, clients, sent, &sent_count);
	json_decref(super_post(h, sid, "upgrade"));
	json_decref(super_wait(h, sid, "super", 1, HARNESS_WAIT_MS));
	burst_and_check(h, sid, clients, sent, &sent_count);

	ring0 = harness_metric(&h->gw[0], "imgw_ring_submits_total");
	ring1 = harness_metric(&h->gw[1], "imgw_ring_submits_total");
	writes0 = harness_metric(&h->gw[0], "imgw_socket_writes_total");
	writes1 = harness_metric(&h->gw[1], "imgw_socket_writes_total");
	print_message("gw0 (io_uring): %.0f submits, %.0f writes; gw1 (writev): %.0f submits, %.0f writes\n",
		      ring0, writes0, ring1, writes1);
	/* Without io_uring in the kernel, gw0 falls back to writev(). */
	if (ring0 == 0)
		print_message("gw0 wrote with writev: io_uring unavailable here\n");
	else
		H_CHECK(writes0 >= ring0, "fewer writes than io_uring submits");
	H_CHECK(ring1 == 0, "gw1 with --flush-writev used io_uring %.0f times",
		ring1);
	H_CHECK(writes0 > 0 && writes1 > 0, "a gateway wrote nothing");
	for (int g = 0; g < 2; g++)
		H_CHECK(harness_metric(&h->gw[g],
				       "imgw_flush_duration_seconds_count") > 0,
			"gw%d observed no flush duration", g);

	for (int i = 0; i < MEMBERS; i++)
		tc_free(clients[i]);
	harness_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_flush_modes_deliver,
					  harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

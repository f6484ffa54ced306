// SPDX-License-Identifier: MIT
/*
 * Slow reader: a member with a tiny socket receive buffer stops reading while
 * the server pushes many large messages through a gateway with a small
 * --out-cap. The gateway must close the slow connection and keep serving the
 * members that read, without losing anything for them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "token.h"

#define OUT_CAP (64 * 1024)
#define PUSHES 300
#define PAYLOAD_LEN 30000       /* under bizsvr's --max-payload of 32768 */
#define SLOW_RCVBUF 4096

static char *make_payload(int i)
{
	char *payload = malloc(PAYLOAD_LEN + 1);
	int n;

	H_CHECK(payload != NULL, "out of memory");
	n = snprintf(payload, PAYLOAD_LEN + 1, "big-%d-", i);
	memset(payload + n, 'a' + i % 26, PAYLOAD_LEN - (size_t)n);
	payload[PAYLOAD_LEN] = '\0';
	return payload;
}

static void test_slow_reader_closed(void **state)
{
	const struct gw_options opts[] = { { .out_cap = OUT_CAP } };
	struct harness *h = harness_start(1, opts);
	const char *const members[] = { "slow", "fast1", "fast2" };
	char token[TOKEN_MAX_LEN + 1];
	struct tclient *slow, *fast[2], *late;
	uint64_t sid, seqs[PUSHES];
	json_t *health;
	const char *status;
	double slow_closes;
	int err;

	sid = admin_session_create(h, "group", "firehose", members, 3);
	slow = tc_connect_rcvbuf(h, 0, SLOW_RCVBUF);
	harness_token(h, "slow", (int64_t)time(NULL) + 3600, token);
	err = tc_login_token(slow, "slow", "d", token);
	H_CHECK(err == 0, "slow client login failed: %s", strerror(-err));
	fast[0] = tc_login(h, 0, "fast1", "d");
	fast[1] = tc_login(h, 0, "fast2", "d");

	/* The fast members read each push before the next is sent, so only
	 * the slow one builds up a backlog. */
	for (int i = 0; i < PUSHES; i++) {
		char *payload = make_payload(i);

		seqs[i] = admin_push(h, sid, "system", payload);
		for (int f = 0; f < 2; f++) {
			long at = tc_wait_push(fast[f], sid, seqs[i],
					       HARNESS_WAIT_MS);

			H_CHECK(at >= 0, "%s did not get push %d (seq %llu)",
				fast[f]->user, i, (unsigned long long)seqs[i]);
			H_CHECK(fast[f]->pushes[at].payload_len == PAYLOAD_LEN,
				"%s: push %d has %zu payload bytes, expected %d",
				fast[f]->user, i,
				fast[f]->pushes[at].payload_len, PAYLOAD_LEN);
			H_CHECK(strcmp(fast[f]->pushes[at].payload, payload) ==
					0,
				"%s: push %d payload differs", fast[f]->user,
				i);
		}
		free(payload);
	}
	for (int f = 0; f < 2; f++) {
		H_CHECK(fast[f]->push_count == PUSHES,
			"%s got %zu pushes, expected %d", fast[f]->user,
			fast[f]->push_count, PUSHES);
		H_CHECK(!fast[f]->closed, "%s was closed: %s", fast[f]->user,
			strerror(-fast[f]->last_err));
	}

	/* Reading now drains what the kernel buffered, then hits the close. */
	err = tc_wait_closed(slow, HARNESS_WAIT_MS);
	H_CHECK(err == 0,
		"slow reader still open after %zu of %d pushes, expected a close at out-cap %d",
		slow->push_count, PUSHES, OUT_CAP);
	print_message("slow reader got %zu of %d pushes before the close\n",
		      slow->push_count, PUSHES);
	H_CHECK(slow->push_count < PUSHES,
		"slow reader got all %d pushes, expected the gateway to close it",
		PUSHES);
	for (size_t i = 0; i < slow->push_count; i++)
		H_CHECK(slow->pushes[i].seq == seqs[i],
			"slow reader push %zu has seq %llu, expected %llu", i,
			(unsigned long long)slow->pushes[i].seq,
			(unsigned long long)seqs[i]);

	health = harness_healthz(&h->gw[0]);
	status = json_string_value(json_object_get(health, "status"));
	H_CHECK(status && strcmp(status, "ok") == 0,
		"gateway status \"%s\" after the slow close, expected \"ok\"",
		status ? status : "(missing)");
	json_decref(health);
	slow_closes = harness_metric(&h->gw[0], "imgw_slow_closes_total");
	H_CHECK(slow_closes >= 1,
		"imgw_slow_closes_total is %g, expected at least 1",
		slow_closes);

	/* The others are still served, and new logins work. */
	late = tc_login(h, 0, "slow", "d2");
	{
		uint64_t seq = tc_send_ok(fast[0], sid, "still alive");

		H_CHECK(tc_wait_push(fast[1], sid, seq, HARNESS_WAIT_MS) >= 0,
			"fast2 did not get the message after the slow close");
		H_CHECK(tc_wait_push(late, sid, seq, HARNESS_WAIT_MS) >= 0,
			"a new connection did not get the message after the slow close");
	}

	tc_free(slow);
	tc_free(fast[0]);
	tc_free(fast[1]);
	tc_free(late);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_slow_reader_closed,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("slow", tests, NULL, NULL);
}

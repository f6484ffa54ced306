// SPDX-License-Identifier: MIT
/*
 * Gateway restart: a gateway is killed (SIGKILL, and SIGTERM) while messages
 * flow and started again on the same ports. Its clients reconnect, log in
 * and sync from the last seq they saw; per client, the union of pushes and
 * synced messages contains every acknowledged message exactly once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define BATCH 10
#define SYNC_PAGE 7

static const char *const members[] = { "s1", "s2", "r1", "r2", "r3" };

/* Everything a receiver has seen of the session, in arrival order. */
struct seen {
	uint64_t seqs[HARNESS_MAX_MSGS];
	char payloads[HARNESS_MAX_MSGS][128];
	size_t count;
};

static void seen_add(struct seen *s, uint64_t seq, const char *payload,
		     size_t len, const char *who)
{
	H_CHECK(s->count < HARNESS_MAX_MSGS, "%s: too many messages", who);
	s->seqs[s->count] = seq;
	snprintf(s->payloads[s->count], sizeof(s->payloads[0]), "%.*s",
		 (int)len, payload);
	s->count++;
}

static void seen_add_pushes(struct seen *s, const struct tclient *t,
			    uint64_t sid)
{
	for (size_t i = 0; i < t->push_count; i++)
		if (t->pushes[i].session_id == sid)
			seen_add(s, t->pushes[i].seq, t->pushes[i].payload,
				 t->pushes[i].payload_len, t->user);
}

/* Pages through SYNC from from_seq to the end, adding to s. */
static void sync_rest(struct tclient *t, uint64_t sid, uint64_t from_seq,
		      struct seen *s)
{
	for (int pages = 0; pages < 1000; pages++) {
		Imgw__SyncResult *res;
		int err = tc_sync(t, sid, from_seq, SYNC_PAGE, &res);
		int more;

		H_CHECK(err == 0, "%s: sync from %llu failed: %s", t->user,
			(unsigned long long)from_seq, strerror(-err));
		H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NONE,
			"%s: sync from %llu: code %d, expected 0", t->user,
			(unsigned long long)from_seq, res->code);
		for (size_t i = 0; i < res->n_messages; i++) {
			Imgw__Push *m = res->messages[i];

			seen_add(s, m->seq, (const char *)m->payload.data,
				 m->payload.len, t->user);
			from_seq = m->seq + 1;
		}
		more = res->more;
		imgw__sync_result__free_unpacked(res, NULL);
		if (!more)
			return;
	}
	harness_fail(__FILE__, __LINE__, "%s: sync never ended", t->user);
}

/* Checks s against the acknowledged messages: each exactly once. Messages
 * that were not acknowledged may appear once, or not at all. */
static void check_seen(const struct seen *s, const struct sent_msg *acked,
		       size_t acked_count, const char *who)
{
	for (size_t i = 0; i < s->count; i++)
		for (size_t j = 0; j < i; j++)
			H_CHECK(s->seqs[i] != s->seqs[j],
				"%s: seq %llu seen twice (\"%s\")", who,
				(unsigned long long)s->seqs[i],
				s->payloads[i]);
	for (size_t a = 0; a < acked_count; a++) {
		size_t found = 0;

		for (size_t i = 0; i < s->count; i++) {
			if (s->seqs[i] != acked[a].seq)
				continue;
			found++;
			H_CHECK(strcmp(s->payloads[i], acked[a].payload) == 0,
				"%s: seq %llu payload \"%s\", expected \"%s\"",
				who, (unsigned long long)acked[a].seq,
				s->payloads[i], acked[a].payload);
		}
		H_CHECK(found == 1,
			"%s: acknowledged seq %llu (\"%s\") seen %zu times, expected once",
			who, (unsigned long long)acked[a].seq, acked[a].payload,
			found);
	}
}

/* Sends a batch from t; counts only acknowledged messages. */
static void send_batch(struct tclient *t, uint64_t sid, const char *tag,
		       struct sent_msg *acked, size_t *acked_count)
{
	for (int i = 0; i < BATCH; i++) {
		Imgw__SendResult *res;
		char payload[128];

		snprintf(payload, sizeof(payload), "%s-%s-%d", tag, t->user,
			 i);
		if (tc_send(t, sid, NULL, payload, &res) < 0)
			return;         /* the gateway went away */
		if (res->code == IMGW__ERROR_CODE__ERROR_NONE)
			sent_add(acked, acked_count, res->seq, t->user,
				 payload);
		imgw__send_result__free_unpacked(res, NULL);
	}
}

/* Writes a batch of SENDs without waiting for their results. */
static void send_pipelined(struct tclient *t, uint64_t sid, const char *tag,
			   uint32_t *first_rid)
{
	for (int i = 0; i < BATCH; i++) {
		Imgw__SendRequest req = IMGW__SEND_REQUEST__INIT;
		char payload[128];
		int64_t rid;

		snprintf(payload, sizeof(payload), "%s-%s-%d", tag, t->user,
			 i);
		req.session_id = sid;
		req.payload.data = (uint8_t *)payload;
		req.payload.len = strlen(payload);
		rid = client_send(t->c, OP_SEND, &req.base);
		H_CHECK(rid > 0, "%s: pipelined send %d failed: %s", t->user,
			i, strerror((int)-rid));
		if (i == 0)
			*first_rid = (uint32_t)rid;
	}
}

/* Reads the SEND_RESULTs of a pipelined batch until they are all in or the
 * connection fails; the acknowledged ones join acked. Returns how many. */
static int read_pipelined(struct tclient *t, const char *tag,
			  uint32_t first_rid, struct sent_msg *acked,
			  size_t *acked_count)
{
	int results = 0;

	while (results < BATCH) {
		struct client_frame f;
		Imgw__SendResult *res;
		char payload[128];
		uint32_t i;

		if (tc_wait_op(t, OP_SEND_RESULT, 0, HARNESS_WAIT_MS, &f) < 0)
			break;
		i = f.hdr.request_id - first_rid;
		res = imgw__send_result__unpack(NULL, f.hdr.body_len, f.body);
		client_frame_free(&f);
		H_CHECK(res != NULL, "%s: SEND_RESULT does not decode",
			t->user);
		H_CHECK(i < BATCH, "%s: SEND_RESULT for unknown request id",
			t->user);
		snprintf(payload, sizeof(payload), "%s-%s-%u", tag, t->user,
			 i);
		if (res->code == IMGW__ERROR_CODE__ERROR_NONE)
			sent_add(acked, acked_count, res->seq, t->user,
				 payload);
		imgw__send_result__free_unpacked(res, NULL);
		results++;
	}
	return results;
}

static uint64_t max_seq(const struct tclient *t, uint64_t sid)
{
	uint64_t max = 0;

	for (size_t i = 0; i < t->push_count; i++)
		if (t->pushes[i].session_id == sid && t->pushes[i].seq > max)
			max = t->pushes[i].seq;
	return max;
}

static void run_restart(int sig)
{
	struct harness *h = harness_start(2, NULL);
	static struct sent_msg acked[HARNESS_MAX_MSGS];
	static struct seen seen_r1, seen_r2, seen_r3;
	struct tclient *s1, *s2, *r1, *r2, *r3;
	size_t acked_count = 0;
	uint32_t rid_s1, rid_s2;
	uint64_t sid;
	int results;

	memset(&seen_r1, 0, sizeof(seen_r1));
	memset(&seen_r2, 0, sizeof(seen_r2));
	memset(&seen_r3, 0, sizeof(seen_r3));
	sid = admin_session_create(h, "group", "restart", members, 5);
	s1 = tc_login(h, 1, "s1", "d");         /* stays up */
	s2 = tc_login(h, 0, "s2", "d");         /* on the killed gateway */
	r1 = tc_login(h, 0, "r1", "d");
	r2 = tc_login(h, 0, "r2", "d");
	r3 = tc_login(h, 1, "r3", "d");

	send_batch(s1, sid, "before", acked, &acked_count);
	send_batch(s2, sid, "before", acked, &acked_count);
	/* r1 reads some pushes before the crash, r2 none. */
	tc_collect(r1, BATCH, HARNESS_WAIT_MS);

	/* Kill gw0 with sends in flight on both gateways. */
	send_pipelined(s1, sid, "flow", &rid_s1);
	send_pipelined(s2, sid, "flow", &rid_s2);
	harness_gw_stop(h, 0, sig);
	results = read_pipelined(s1, "flow", rid_s1, acked, &acked_count);
	H_CHECK(results == BATCH,
		"s1 on the surviving gateway got %d of %d SEND_RESULTs",
		results, BATCH);
	read_pipelined(s2, "flow", rid_s2, acked, &acked_count);

	/* Messages keep flowing while gw0 is down. */
	send_batch(s1, sid, "down", acked, &acked_count);
	send_batch(s2, sid, "dead", acked, &acked_count);
	H_CHECK(tc_wait_closed(r1, HARNESS_WAIT_MS) == 0,
		"r1 still connected to the stopped gateway");
	H_CHECK(tc_wait_closed(r2, HARNESS_WAIT_MS) == 0,
		"r2 still connected to the stopped gateway");
	H_CHECK(tc_wait_closed(s2, HARNESS_WAIT_MS) == 0,
		"s2 still connected to the stopped gateway");

	harness_gw_start(h, 0);
	harness_wait_gateways(h, 2);
	send_batch(s1, sid, "after", acked, &acked_count);

	/* Reconnect, log in, sync from the last seq each one saw. */
	{
		struct tclient *old[] = { r1, r2 };
		struct seen *seen[] = { &seen_r1, &seen_r2 };

		for (int i = 0; i < 2; i++) {
			struct tclient *fresh;

			seen_add_pushes(seen[i], old[i], sid);
			fresh = tc_login(h, 0, old[i]->user, "d");
			sync_rest(fresh, sid, max_seq(old[i], sid) + 1,
				  seen[i]);
			/* Later messages arrive as pushes on the new
			 * connection. */
			{
				uint64_t seq = tc_send_ok(s1, sid, "final");

				H_CHECK(tc_wait_push(fresh, sid, seq,
						     HARNESS_WAIT_MS) >= 0,
					"%s: no push of seq %llu after reconnecting",
					fresh->user, (unsigned long long)seq);
				sent_add(acked, &acked_count, seq, "s1",
					 "final");
				seen_add_pushes(seen[i], fresh, sid);
			}
			tc_free(fresh);
		}
	}

	/* r3 never left: its pushes alone hold everything. */
	H_CHECK(tc_wait_push(r3, sid, acked[acked_count - 1].seq,
			     HARNESS_WAIT_MS) >= 0,
		"r3 did not get the last message, seq %llu",
		(unsigned long long)acked[acked_count - 1].seq);
	seen_add_pushes(&seen_r3, r3, sid);

	/* "final" went out twice; each receiver window covers what it saw. */
	check_seen(&seen_r3, acked, acked_count, "r3");
	check_seen(&seen_r1, acked, acked_count - 1, "r1");
	check_seen(&seen_r2, acked, acked_count, "r2");

	tc_free(s1);
	tc_free(s2);
	tc_free(r1);
	tc_free(r2);
	tc_free(r3);
}

static void test_gw_sigkill(void **state)
{
	run_restart(SIGKILL);
}

static void test_gw_sigterm(void **state)
{
	run_restart(SIGTERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_gw_sigkill, harness_teardown),
		cmocka_unit_test_teardown(test_gw_sigterm, harness_teardown),
	};

	return cmocka_run_group_tests_name("gw_restart", tests, NULL, NULL);
}

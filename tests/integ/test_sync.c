// SPDX-License-Identifier: MIT
/*
 * Sync after a reconnect: a member misses 20 messages while offline, logs in
 * again and SYNCs from its last seq + 1. It must get exactly the missed
 * messages in order; limit and `more` page through them. A page of the
 * largest messages must reach the client with default settings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MISSED 20

/* Checks one SYNC_RESULT page against want[0 .. count). */
static void check_page(const Imgw__SyncResult *res, uint64_t sid,
		       const struct sent_msg *want, size_t count, int more)
{
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NONE,
		"SYNC_RESULT code %d (%s), expected 0", res->code,
		res->reason ? res->reason : "");
	H_CHECK(res->session_id == sid,
		"SYNC_RESULT session %llu, expected %llu",
		(unsigned long long)res->session_id, (unsigned long long)sid);
	H_CHECK(res->n_messages == count,
		"SYNC_RESULT has %zu messages, expected %zu", res->n_messages,
		count);
	H_CHECK(!!res->more == more, "SYNC_RESULT more = %d, expected %d",
		(int)res->more, more);
	for (size_t i = 0; i < count; i++) {
		const Imgw__Push *m = res->messages[i];

		H_CHECK(m->seq == want[i].seq,
			"synced message %zu has seq %llu, expected %llu", i,
			(unsigned long long)m->seq,
			(unsigned long long)want[i].seq);
		H_CHECK(m->session_id == sid,
			"synced seq %llu has session %llu, expected %llu",
			(unsigned long long)m->seq,
			(unsigned long long)m->session_id,
			(unsigned long long)sid);
		H_CHECK(m->sender && strcmp(m->sender, want[i].sender) == 0,
			"synced seq %llu sender \"%s\", expected \"%s\"",
			(unsigned long long)m->seq, m->sender ? m->sender : "",
			want[i].sender);
		H_CHECK(m->payload.len == strlen(want[i].payload) &&
			memcmp(m->payload.data, want[i].payload,
			       m->payload.len) == 0,
			"synced seq %llu payload differs from \"%s\"",
			(unsigned long long)m->seq, want[i].payload);
	}
}

static Imgw__SyncResult *sync_ok(struct tclient *t, uint64_t sid,
				 uint64_t from, uint32_t limit)
{
	Imgw__SyncResult *res;
	int err = tc_sync(t, sid, from, limit, &res);

	H_CHECK(err == 0, "%s: sync of session %llu from %llu failed: %s",
		t->user, (unsigned long long)sid, (unsigned long long)from,
		strerror(-err));
	return res;
}

static uint64_t login_last_seq(const struct tclient *t, uint64_t sid)
{
	for (size_t i = 0; i < t->login->n_sessions; i++)
		if (t->login->sessions[i]->session_id == sid)
			return t->login->sessions[i]->last_seq;
	harness_fail(__FILE__, __LINE__,
		     "%s: LOGIN_RESULT lacks session %llu", t->user,
		     (unsigned long long)sid);
}

static void test_sync_reconnect(void **state)
{
	struct harness *h = harness_start(2, NULL);
	const char *const members[] = { "ana", "bo", "cy" };
	static struct sent_msg before[3], missed[MISSED];
	size_t n_before = 0, n_missed = 0;
	struct tclient *ana, *bo, *cy;
	Imgw__SyncResult *res;
	uint64_t sid, last, from;

	sid = admin_session_create(h, "group", "sync", members, 3);
	ana = tc_login(h, 0, "ana", "d");
	bo = tc_login(h, 1, "bo", "d");
	cy = tc_login(h, 1, "cy", "d");

	for (int i = 0; i < 3; i++) {
		char payload[32];

		snprintf(payload, sizeof(payload), "before-%d", i);
		sent_add(before, &n_before, tc_send_ok(ana, sid, payload),
			 "ana", payload);
	}
	tc_collect(cy, n_before, HARNESS_WAIT_MS);
	tc_check_pushes(cy, sid, before, n_before);
	last = cy->pushes[cy->push_count - 1].seq;
	tc_free(cy);

	for (int i = 0; i < MISSED; i++) {
		struct tclient *from_client = i % 2 ? bo : ana;
		char payload[32];

		snprintf(payload, sizeof(payload), "missed-%d", i);
		sent_add(missed, &n_missed,
			 tc_send_ok(from_client, sid, payload),
			 from_client->user, payload);
	}

	cy = tc_login(h, 0, "cy", "d");
	H_CHECK(login_last_seq(cy, sid) == missed[MISSED - 1].seq,
		"LOGIN_RESULT last_seq %llu, expected %llu",
		(unsigned long long)login_last_seq(cy, sid),
		(unsigned long long)missed[MISSED - 1].seq);

	/* All at once: the default limit covers 20. */
	res = sync_ok(cy, sid, last + 1, 0);
	check_page(res, sid, missed, MISSED, 0);
	H_CHECK(res->last_seq == missed[MISSED - 1].seq,
		"SYNC_RESULT last_seq %llu, expected %llu",
		(unsigned long long)res->last_seq,
		(unsigned long long)missed[MISSED - 1].seq);
	imgw__sync_result__free_unpacked(res, NULL);

	/* Pages of 7: 7, 7 and 6, `more` on all but the last. */
	from = last + 1;
	for (size_t done = 0; done < MISSED; done += 7) {
		size_t page = MISSED - done < 7 ? MISSED - done : 7;

		res = sync_ok(cy, sid, from, 7);
		check_page(res, sid, missed + done, page, done + page < MISSED);
		from = missed[done + page - 1].seq + 1;
		imgw__sync_result__free_unpacked(res, NULL);
	}

	/* Nothing after the last message. */
	res = sync_ok(cy, sid, from, 0);
	check_page(res, sid, NULL, 0, 0);
	imgw__sync_result__free_unpacked(res, NULL);

	/* From 0 means from the first message. */
	res = sync_ok(cy, sid, 0, 2);
	check_page(res, sid, before, 2, 1);
	imgw__sync_result__free_unpacked(res, NULL);

	/* A limit of exactly the rest: `more` is false. */
	res = sync_ok(cy, sid, last + 1, MISSED);
	check_page(res, sid, missed, MISSED, 0);
	imgw__sync_result__free_unpacked(res, NULL);

	/* Synced messages were not pushed to the new connection. */
	tc_collect(cy, 1, 300);
	H_CHECK(cy->push_count == 0,
		"cy got %zu pushes after reconnecting, expected none",
		cy->push_count);

	tc_free(ana);
	tc_free(bo);
	tc_free(cy);
}

static void test_sync_rejects(void **state)
{
	struct harness *h = harness_start(1, NULL);
	const char *const members[] = { "ana", "bo" };
	struct tclient *ana, *eve;
	Imgw__SyncResult *res;
	uint64_t sid;

	sid = admin_session_create(h, "group", "private", members, 2);
	ana = tc_login(h, 0, "ana", "d");
	eve = tc_login(h, 0, "eve", "d");
	tc_send_ok(ana, sid, "secret");

	res = sync_ok(eve, sid, 1, 0);
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NOT_MEMBER,
		"non-member sync: code %d, expected ERROR_NOT_MEMBER (%d)",
		res->code, IMGW__ERROR_CODE__ERROR_NOT_MEMBER);
	H_CHECK(res->n_messages == 0,
		"non-member sync returned %zu messages, expected none",
		res->n_messages);
	imgw__sync_result__free_unpacked(res, NULL);

	res = sync_ok(ana, 987654321, 1, 0);
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NO_SESSION,
		"sync of an unknown session: code %d, expected ERROR_NO_SESSION (%d)",
		res->code, IMGW__ERROR_CODE__ERROR_NO_SESSION);
	imgw__sync_result__free_unpacked(res, NULL);

	H_CHECK(tc_heartbeat(eve, HARNESS_WAIT_MS) == 0,
		"eve: no HEARTBEAT_ACK after a rejected sync");
	tc_free(ana);
	tc_free(eve);
}

/* Big messages fill a page to bizsvr's byte budget, so with the default
 * --max-payload, --sync-limit and --out-cap the SYNC_RESULT frame alone is
 * over out_cap. The client asked for it and has nothing else queued, so it
 * must get the page, not a close as slow. */
static void test_sync_big_page(void **state)
{
	struct harness *h = harness_start(1, NULL);
	const char *const members[] = { "ana" };
	static char payload[32768 + 1];
	Imgw__SyncResult *res;
	struct tclient *ana;
	uint64_t sid;

	memset(payload, 'p', sizeof(payload) - 1);
	sid = admin_session_create(h, "group", "big", members, 1);
	for (int i = 0; i < 40; i++)
		admin_push(h, sid, "system", payload);
	ana = tc_login(h, 0, "ana", "d");

	res = sync_ok(ana, sid, 1, 0);
	H_CHECK(res->code == 0, "big sync: code %d", res->code);
	H_CHECK(res->n_messages > 1 && res->n_messages < 40,
		"big sync: %zu messages, expected a page cut by bytes",
		res->n_messages);
	H_CHECK(res->more, "big sync: more is not set");
	H_CHECK(res->messages[0]->payload.len == sizeof(payload) - 1,
		"big sync: payload of %zu bytes", res->messages[0]->payload.len);
	imgw__sync_result__free_unpacked(res, NULL);
	H_CHECK(tc_heartbeat(ana, HARNESS_WAIT_MS) == 0,
		"ana: no HEARTBEAT_ACK after a big sync");
	tc_free(ana);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_sync_reconnect,
					  harness_teardown),
		cmocka_unit_test_teardown(test_sync_rejects, harness_teardown),
		cmocka_unit_test_teardown(test_sync_big_page, harness_teardown),
	};

	return cmocka_run_group_tests_name("sync", tests, NULL, NULL);
}

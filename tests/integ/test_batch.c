// SPDX-License-Identifier: MIT
/*
 * Group commit under traffic: senders write many SENDs without waiting, so
 * that bizsvr reads several in one pass and commits them together. Each
 * stored message must still get one seq, retries of a client_msg_id must get
 * the first seq, and every device must get each message once, in order.
 * Changes in the middle of the traffic take effect at a commit boundary: a
 * removed member gets a prefix of the messages, a device that logs in gets
 * exactly those after the last_seq of its LOGIN_RESULT. A SIGTERM during a
 * burst keeps every acknowledged message.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "token.h"

#define BURST 40
#define PART 20                 /* messages between two changes */
#define RETRY_EVERY 5           /* every 5th message is sent twice */
#define QUIET_MS 300

/* A SEND written without waiting for its result. */
struct pending_send {
	uint32_t request_id;
	char client_msg_id[48];
	char payload[64];
	int retry;                  /* repeats the client_msg_id before it */
};

/* Writes one SEND on t and records its request id in p. */
static void send_nowait(struct tclient *t, uint64_t sid,
			struct pending_send *p)
{
	Imgw__SendRequest req = IMGW__SEND_REQUEST__INIT;
	int64_t rid;

	req.session_id = sid;
	req.client_msg_id = p->client_msg_id;
	req.payload.data = (uint8_t *)p->payload;
	req.payload.len = strlen(p->payload);
	rid = client_send(t->c, OP_SEND, &req.base);
	H_CHECK(rid > 0, "%s/%s: writing SEND %s failed: %s", t->user,
		t->device, p->client_msg_id, strerror((int)-rid));
	p->request_id = (uint32_t)rid;
}

/*
 * Writes count SENDs from t, tagged with tag, without waiting. Every
 * RETRY_EVERY-th message is followed at once by a retry with the same
 * client_msg_id. Returns how many entries of sends were filled.
 */
static size_t send_burst(struct tclient *t, uint64_t sid, const char *tag,
			 size_t first, size_t count, struct pending_send *sends)
{
	size_t n = 0;

	for (size_t i = first; i < first + count; i++) {
		struct pending_send *p = &sends[n++];

		snprintf(p->client_msg_id, sizeof(p->client_msg_id), "%s-%zu",
			 tag, i);
		snprintf(p->payload, sizeof(p->payload), "%s payload %zu", tag,
			 i);
		p->retry = 0;
		send_nowait(t, sid, p);
		if (i % RETRY_EVERY != 0)
			continue;
		sends[n] = *p;
		sends[n].retry = 1;
		send_nowait(t, sid, &sends[n++]);
	}
	return n;
}

/* Waits for the SEND_RESULT of p on t and returns it decoded. */
static Imgw__SendResult *wait_send_result(struct tclient *t,
					  const struct pending_send *p)
{
	Imgw__SendResult *res;
	struct client_frame f;
	int err;

	err = tc_wait_op(t, OP_SEND_RESULT, p->request_id, HARNESS_WAIT_MS,
			 &f);
	H_CHECK(err == 0, "%s/%s: no SEND_RESULT for %s: %s", t->user,
		t->device, p->client_msg_id, strerror(-err));
	res = imgw__send_result__unpack(NULL, f.hdr.body_len, f.body);
	client_frame_free(&f);
	H_CHECK(res != NULL, "SEND_RESULT of %s does not decode",
		p->client_msg_id);
	return res;
}

/*
 * Waits for the SEND_RESULT of each of sends[0 .. n), which one connection
 * gets in request order, and adds each new message to sent. A retry must
 * get the seq of the message it repeats, marked as the same message.
 */
static void collect_results(struct tclient *t, struct pending_send *sends,
			    size_t n, struct sent_msg *sent, size_t *sent_count)
{
	uint64_t last_seq = 0;

	for (size_t i = 0; i < n; i++) {
		Imgw__SendResult *res = wait_send_result(t, &sends[i]);

		H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NONE,
			"SEND_RESULT of %s has code %d (%s), expected 0",
			sends[i].client_msg_id, res->code,
			res->reason ? res->reason : "");
		if (sends[i].retry) {
			H_CHECK(res->seq == last_seq,
				"retry of %s got seq %llu, expected the first seq %llu",
				sends[i].client_msg_id,
				(unsigned long long)res->seq,
				(unsigned long long)last_seq);
		} else {
			H_CHECK(res->seq > last_seq,
				"%s got seq %llu after %llu, expected a larger one",
				sends[i].client_msg_id,
				(unsigned long long)res->seq,
				(unsigned long long)last_seq);
			sent_add(sent, sent_count, res->seq, t->user,
				 sends[i].payload);
		}
		last_seq = res->seq;
		imgw__send_result__free_unpacked(res, NULL);
	}
}

static int cmp_seq(const void *a, const void *b)
{
	const struct sent_msg *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Checks that the seqs of the count sorted messages are 1 .. count. */
static void check_dense(const struct sent_msg *sent, size_t count)
{
	for (size_t i = 0; i < count; i++)
		H_CHECK(sent[i].seq == i + 1,
			"message %zu has seq %llu, expected %zu: a seq was skipped or reused",
			i, (unsigned long long)sent[i].seq, i + 1);
}

static void pipelined_sends_dedupe(void **state)
{
	static const char *const members[] = { "ann", "ben", "cid", "dan" };
	static struct pending_send sends[3][BURST * 2];
	static struct sent_msg sent[HARNESS_MAX_MSGS];
	struct harness *h = harness_start(2, NULL);
	struct tclient *senders[3], *watchers[2];
	size_t n[3], sent_count = 0;
	uint64_t sid;

	sid = admin_session_create(h, "group", "burst", members, 4);
	senders[0] = tc_login(h, 0, "ann", "phone");
	senders[1] = tc_login(h, 1, "ben", "phone");
	senders[2] = tc_login(h, 0, "cid", "phone");
	watchers[0] = tc_login(h, 0, "dan", "phone");
	watchers[1] = tc_login(h, 1, "dan", "laptop");

	/* All three write before anyone waits, so bizsvr reads them in
	 * few passes and commits several messages at a time. */
	for (int i = 0; i < 3; i++)
		n[i] = send_burst(senders[i], sid, senders[i]->user, 1, BURST,
				  sends[i]);
	for (int i = 0; i < 3; i++)
		collect_results(senders[i], sends[i], n[i], sent, &sent_count);
	H_CHECK(sent_count == 3 * BURST, "%zu messages stored, expected %d",
		sent_count, 3 * BURST);
	qsort(sent, sent_count, sizeof(sent[0]), cmp_seq);
	check_dense(sent, sent_count);

	for (int i = 0; i < 2; i++) {
		tc_collect(watchers[i], sent_count, HARNESS_WAIT_MS);
		tc_collect(watchers[i], sent_count + 1, QUIET_MS);
		tc_check_pushes(watchers[i], sid, sent, sent_count);
	}
	/* A sender gets the others' messages, never its own. */
	for (int i = 0; i < 3; i++) {
		struct sent_msg others[HARNESS_MAX_MSGS];
		size_t count = 0;

		for (size_t k = 0; k < sent_count; k++)
			if (strcmp(sent[k].sender, senders[i]->user) != 0)
				others[count++] = sent[k];
		tc_collect(senders[i], count, HARNESS_WAIT_MS);
		tc_collect(senders[i], count + 1, QUIET_MS);
		tc_check_pushes(senders[i], sid, others, count);
	}
	H_CHECK(harness_metric(&h->biz, "bizsvr_messages_duplicate_total") ==
		3 * (BURST / RETRY_EVERY),
		"bizsvr counted %.0f duplicates, expected %d",
		harness_metric(&h->biz, "bizsvr_messages_duplicate_total"),
		3 * (BURST / RETRY_EVERY));
	print_message("# %zu messages in %.0f commits\n", sent_count,
		      harness_metric(&h->biz, "bizsvr_store_commits_total"));

	for (int i = 0; i < 3; i++)
		tc_free(senders[i]);
	for (int i = 0; i < 2; i++)
		tc_free(watchers[i]);
	harness_stop(h);
}

/* Returns the seqs of t's pushes for sid, which must be consecutive, as
 * [*first, *last]; both are 0 when there are none. */
static void push_range(const struct tclient *t, uint64_t sid, uint64_t *first,
		       uint64_t *last)
{
	*first = *last = 0;
	for (size_t i = 0; i < t->push_count; i++) {
		const struct push_rec *p = &t->pushes[i];

		if (p->session_id != sid)
			continue;
		H_CHECK(*last == 0 || p->seq == *last + 1,
			"%s/%s: push seq %llu after %llu, expected consecutive seqs",
			t->user, t->device, (unsigned long long)p->seq,
			(unsigned long long)*last);
		if (*first == 0)
			*first = p->seq;
		*last = p->seq;
	}
}

static uint64_t login_last_seq(const struct tclient *t, uint64_t sid)
{
	for (size_t i = 0; i < t->login->n_sessions; i++)
		if (t->login->sessions[i]->session_id == sid)
			return t->login->sessions[i]->last_seq;
	H_CHECK(0, "%s/%s: LOGIN_RESULT lacks session %llu", t->user,
		t->device, (unsigned long long)sid);
	return 0;
}

static void changes_mid_traffic(void **state)
{
	static const char *const members[] = { "ann", "ben", "cid" };
	static struct pending_send sends[PART * 3 * 2];
	static struct sent_msg sent[HARNESS_MAX_MSGS];
	struct harness *h = harness_start(1, NULL);
	struct tclient *ann, *ben, *cid, *late;
	uint64_t sid, first, last, late_from;
	char token[TOKEN_MAX_LEN + 1];
	size_t n, sent_count = 0;
	int err;

	sid = admin_session_create(h, "group", "churn", members, 3);
	ann = tc_login(h, 0, "ann", "phone");
	ben = tc_login(h, 0, "ben", "phone");
	cid = tc_login(h, 0, "cid", "phone");

	/* Each change is made right after a part of the burst was written,
	 * while those messages may still wait in an open batch. */
	late = tc_connect(h, 0);
	harness_token(h, "cid", (int64_t)time(NULL) + 3600, token);
	n = send_burst(ann, sid, "churn", 1, PART, sends);
	admin_member_remove(h, sid, "ben");
	n += send_burst(ann, sid, "churn", PART + 1, PART, sends + n);
	err = tc_login_token(late, "cid", "pad", token);
	H_CHECK(err == 0, "login of cid/pad failed: %s", strerror(-err));
	late_from = login_last_seq(late, sid) + 1;
	n += send_burst(ann, sid, "churn", 2 * PART + 1, PART, sends + n);
	collect_results(ann, sends, n, sent, &sent_count);
	H_CHECK(sent_count == 3 * PART, "%zu messages stored, expected %d",
		sent_count, 3 * PART);
	check_dense(sent, sent_count);

	/* cid's first device received every message. */
	tc_collect(cid, sent_count, HARNESS_WAIT_MS);
	tc_collect(cid, sent_count + 1, QUIET_MS);
	tc_check_pushes(cid, sid, sent, sent_count);

	/* ben got the messages committed before the removal and none
	 * after: a prefix, at most the first part. */
	tc_collect(ben, sent_count + 1, QUIET_MS);
	push_range(ben, sid, &first, &last);
	H_CHECK(first == 0 || first == 1,
		"removed member's pushes start at seq %llu, expected 1",
		(unsigned long long)first);
	H_CHECK(last <= PART,
		"removed member got seq %llu, sent after the removal returned",
		(unsigned long long)last);

	/* The late device got exactly the messages after the last_seq of
	 * its LOGIN_RESULT: none twice with a SYNC from there, none lost. */
	H_CHECK(late_from <= 2 * PART + 1,
		"LOGIN_RESULT last_seq %llu is past the messages sent before the login",
		(unsigned long long)late_from - 1);
	tc_collect(late, sent_count - late_from + 1, HARNESS_WAIT_MS);
	tc_collect(late, sent_count - late_from + 2, QUIET_MS);
	tc_check_pushes(late, sid, sent + late_from - 1,
			sent_count - (late_from - 1));
	print_message("# the late device logged in after seq %llu\n",
		      (unsigned long long)late_from - 1);

	tc_free(ann);
	tc_free(ben);
	tc_free(cid);
	tc_free(late);
	harness_stop(h);
}

/*
 * Waits for the result of each of sends[0 .. n) written before bizsvr was
 * stopped: OK with a seq, or ERROR_UNAVAILABLE. Adds the acknowledged new
 * messages to acked.
 */
static void collect_until_stop(struct tclient *t, struct pending_send *sends,
			       size_t n, struct sent_msg *acked,
			       size_t *acked_count)
{
	for (size_t i = 0; i < n; i++) {
		Imgw__SendResult *res = wait_send_result(t, &sends[i]);

		H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NONE ||
			res->code == IMGW__ERROR_CODE__ERROR_UNAVAILABLE,
			"SEND_RESULT of %s has code %d (%s), expected 0 or ERROR_UNAVAILABLE",
			sends[i].client_msg_id, res->code,
			res->reason ? res->reason : "");
		if (res->code == IMGW__ERROR_CODE__ERROR_NONE &&
		    !sends[i].retry)
			sent_add(acked, acked_count, res->seq, t->user,
				 sends[i].payload);
		imgw__send_result__free_unpacked(res, NULL);
	}
}

static void stop_during_burst(void **state)
{
	static const char *const members[] = { "ann", "ben" };
	static struct pending_send sends[BURST * 2];
	static struct sent_msg acked[HARNESS_MAX_MSGS];
	struct harness *h = harness_start(1, NULL);
	size_t n, acked_count = 0, found;
	Imgw__SyncResult *sync;
	struct tclient *ann, *ben;
	uint64_t sid;
	int err;

	sid = admin_session_create(h, "group", "stop", members, 2);
	ann = tc_login(h, 0, "ann", "phone");
	n = send_burst(ann, sid, "stop", 1, BURST, sends);
	/* SIGTERM commits the open batch and replies before the exit. */
	harness_biz_stop(h, SIGTERM);
	collect_until_stop(ann, sends, n, acked, &acked_count);
	harness_biz_start(h);
	harness_wait_upstream(h, 0, 1);

	ben = tc_login(h, 0, "ben", "phone");
	err = tc_sync(ben, sid, 1, HARNESS_MAX_MSGS, &sync);
	H_CHECK(err == 0, "SYNC after the restart failed: %s", strerror(-err));
	H_CHECK(sync->n_messages >= acked_count,
		"SYNC after the restart returned %zu messages, %zu were acknowledged",
		sync->n_messages, acked_count);
	found = 0;
	for (size_t i = 0; i < sync->n_messages; i++) {
		const Imgw__Push *m = sync->messages[i];

		H_CHECK(m->seq == i + 1,
			"synced message %zu has seq %llu, expected %zu", i,
			(unsigned long long)m->seq, i + 1);
		if (found < acked_count && acked[found].seq == m->seq) {
			H_CHECK(m->payload.len == strlen(acked[found].payload) &&
				memcmp(m->payload.data, acked[found].payload,
				       m->payload.len) == 0,
				"seq %llu payload differs from the acknowledged \"%s\"",
				(unsigned long long)m->seq,
				acked[found].payload);
			found++;
		}
	}
	H_CHECK(found == acked_count,
		"%zu of %zu acknowledged messages are stored after the restart",
		found, acked_count);
	print_message("# %zu of %d messages acknowledged before the stop\n",
		      acked_count, BURST);
	imgw__sync_result__free_unpacked(sync, NULL);
	tc_free(ann);
	tc_free(ben);
	harness_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(pipelined_sends_dedupe,
					  harness_teardown),
		cmocka_unit_test_teardown(changes_mid_traffic,
					  harness_teardown),
		cmocka_unit_test_teardown(stop_during_burst,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("batch", tests, NULL, NULL);
}

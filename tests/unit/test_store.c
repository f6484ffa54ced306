// SPDX-License-Identifier: MIT
/*
 * Tests of the business daemon's SQLite store against a real database file
 * in a fresh temporary directory per test.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "log.h"
#include "../../bizsvr/store.h"

struct fixture {
	char dir[64];
	char path[128];
	struct store *st;
};

static void remove_db_files(struct fixture *fx)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	char name[160];

	for (size_t i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "%s%s", fx->path, suffixes[i]);
		unlink(name);
	}
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	strcpy(fx->dir, "/tmp/imgw-store-test.XXXXXX");
	if (!mkdtemp(fx->dir)) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/test.db", fx->dir);
	fx->st = store_open(fx->path);
	if (!fx->st) {
		rmdir(fx->dir);
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	store_close(fx->st);
	remove_db_files(fx);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static struct store_message text_message(uint64_t session,
					 const char *sender, const char *cmid,
					 const char *text, uint64_t time_ms)
{
	struct store_message msg = {
		.session_id = session,
		.sender = (char *)sender,
		.sender_device = "phone",
		.time_ms = time_ms,
		.client_msg_id = (char *)cmid,
		.payload = (uint8_t *)text,
		.payload_len = strlen(text),
	};

	return msg;
}

static int append_text(struct store *st, uint64_t session, const char *sender,
		       const char *cmid, const char *text, uint64_t time_ms,
		       struct store_append_result *res)
{
	struct store_message msg = text_message(session, sender, cmid, text,
						time_ms);

	return store_message_append(st, &msg, res);
}

static void test_seq_per_session(void **state)
{
	struct fixture *fx = *state;
	struct store_append_result res;
	uint64_t s1, s2;

	assert_int_equal(store_session_create(fx->st, STORE_KIND_GROUP, "one",
					      1000, &s1), 0);
	assert_int_equal(store_session_create(fx->st, STORE_KIND_GROUP, "two",
					      1000, &s2), 0);
	assert_int_not_equal(s1, s2);

	for (uint64_t i = 1; i <= 3; i++) {
		assert_int_equal(append_text(fx->st, s1, "alice", "", "hi",
					     2000 + i, &res), 0);
		assert_int_equal(res.seq, i);
		assert_int_equal(res.time_ms, 2000 + i);
		assert_false(res.duplicate);
	}
	assert_int_equal(append_text(fx->st, s2, "bob", "", "yo", 3000, &res),
			 0);
	assert_int_equal(res.seq, 1);
	assert_int_equal(append_text(fx->st, s1, "bob", "", "x", 3001, &res), 0);
	assert_int_equal(res.seq, 4);

	struct store_session s;

	assert_int_equal(store_session_get(fx->st, s1, &s), 0);
	assert_int_equal(s.last_seq, 4);
	assert_string_equal(s.name, "one");
	assert_int_equal(s.kind, STORE_KIND_GROUP);
	store_session_clear(&s);
	assert_int_equal(store_session_get(fx->st, s2, &s), 0);
	assert_int_equal(s.last_seq, 1);
	store_session_clear(&s);
}

static void test_append_unknown_session(void **state)
{
	struct fixture *fx = *state;
	struct store_append_result res;
	struct store_session s;

	assert_int_equal(append_text(fx->st, 4242, "alice", "m1", "hi", 1, &res),
			 -ENOENT);
	assert_int_equal(store_session_get(fx->st, 4242, &s), -ENOENT);
}

static void test_duplicate_client_msg_id(void **state)
{
	struct fixture *fx = *state;
	struct store_append_result res;
	struct store_message *msgs;
	size_t n;
	uint64_t s1;

	assert_int_equal(store_session_create(fx->st, STORE_KIND_GROUP, "g",
					      1, &s1), 0);
	assert_int_equal(append_text(fx->st, s1, "alice", "m1", "a", 10, &res),
			 0);
	assert_int_equal(res.seq, 1);
	assert_int_equal(append_text(fx->st, s1, "alice", "m2", "b", 20, &res),
			 0);
	assert_int_equal(res.seq, 2);

	/* A retry returns the first seq and time and stores nothing. */
	assert_int_equal(append_text(fx->st, s1, "alice", "m1", "a", 30, &res),
			 0);
	assert_true(res.duplicate);
	assert_int_equal(res.seq, 1);
	assert_int_equal(res.time_ms, 10);

	/* The same id from another sender is another message. */
	assert_int_equal(append_text(fx->st, s1, "bob", "m1", "c", 40, &res), 0);
	assert_false(res.duplicate);
	assert_int_equal(res.seq, 3);

	/* Empty ids never collide. */
	assert_int_equal(append_text(fx->st, s1, "alice", "", "d", 50, &res), 0);
	assert_int_equal(append_text(fx->st, s1, "alice", "", "e", 60, &res), 0);
	assert_false(res.duplicate);
	assert_int_equal(res.seq, 5);

	assert_int_equal(store_messages_range(fx->st, s1, 1, 100, &msgs, &n), 0);
	assert_int_equal(n, 5);
	store_messages_free(msgs, n);
}

static void test_range_from_limit(void **state)
{
	struct fixture *fx = *state;
	struct store_append_result res;
	struct store_message *msgs;
	char text[16];
	size_t n;
	uint64_t s1;

	assert_int_equal(store_session_create(fx->st, STORE_KIND_GROUP, "g",
					      1, &s1), 0);
	for (int i = 1; i <= 10; i++) {
		snprintf(text, sizeof(text), "msg %d", i);
		assert_int_equal(append_text(fx->st, s1, "alice", "", text,
					     (uint64_t)i, &res), 0);
	}

	assert_int_equal(store_messages_range(fx->st, s1, 4, 3, &msgs, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "msg %zu", i + 4);
		assert_int_equal(msgs[i].seq, i + 4);
		assert_int_equal(msgs[i].session_id, s1);
		assert_int_equal(msgs[i].payload_len, strlen(text));
		assert_memory_equal(msgs[i].payload, text, strlen(text));
		assert_string_equal(msgs[i].sender, "alice");
		assert_string_equal(msgs[i].sender_device, "phone");
	}
	store_messages_free(msgs, n);

	/* The tail is shorter than the limit. */
	assert_int_equal(store_messages_range(fx->st, s1, 9, 5, &msgs, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(msgs[0].seq, 9);
	assert_int_equal(msgs[1].seq, 10);
	store_messages_free(msgs, n);

	/* Past the end. */
	assert_int_equal(store_messages_range(fx->st, s1, 11, 5, &msgs, &n), 0);
	assert_int_equal(n, 0);
	store_messages_free(msgs, n);
}

static int list_has(char **users, size_t n, const char *user)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(users[i], user) == 0)
			return 1;
	}
	return 0;
}

static void test_members_add_remove_list(void **state)
{
	struct fixture *fx = *state;
	struct store_session *sessions;
	char **users;
	size_t n;
	uint64_t s1;

	assert_int_equal(store_session_create(fx->st, STORE_KIND_GROUP, "g",
					      1, &s1), 0);
	assert_int_equal(store_member_add(fx->st, s1, "carol", 2), 1);
	assert_int_equal(store_member_add(fx->st, s1, "alice", 2), 1);
	assert_int_equal(store_member_add(fx->st, s1, "bob", 2), 1);
	assert_int_equal(store_member_add(fx->st, s1, "bob", 3), 0);
	assert_int_equal(store_member_add(fx->st, 999, "bob", 3), -ENOENT);

	assert_int_equal(store_member_list(fx->st, s1, &users, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(users[0], "alice");
	assert_string_equal(users[1], "bob");
	assert_string_equal(users[2], "carol");
	store_strings_free(users, n);

	assert_int_equal(store_member_remove(fx->st, s1, "bob"), 1);
	assert_int_equal(store_member_remove(fx->st, s1, "bob"), 0);
	assert_int_equal(store_member_list(fx->st, s1, &users, &n), 0);
	assert_int_equal(n, 2);
	assert_false(list_has(users, n, "bob"));
	store_strings_free(users, n);

	assert_int_equal(store_user_sessions(fx->st, "alice", &sessions, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(sessions[0].id, s1);
	store_sessions_free(sessions, n);
	assert_int_equal(store_user_sessions(fx->st, "bob", &sessions, &n), 0);
	assert_int_equal(n, 0);
	store_sessions_free(sessions, n);
}

static void test_direct_find_or_create(void **state)
{
	struct fixture *fx = *state;
	uint64_t ab, ba, ac, note, note2;
	int created;
	char **users;
	size_t n;

	assert_int_equal(store_direct_session(fx->st, "alice", "bob", 1, &ab,
					      &created), 0);
	assert_true(created);
	assert_int_equal(store_direct_session(fx->st, "bob", "alice", 2, &ba,
					      &created), 0);
	assert_false(created);
	assert_int_equal(ab, ba);
	assert_int_equal(store_direct_session(fx->st, "alice", "carol", 3, &ac,
					      &created), 0);
	assert_true(created);
	assert_int_not_equal(ab, ac);
	assert_int_equal(store_direct_session(fx->st, "alice", "alice", 3, &ac,
					      &created), -EINVAL);

	assert_int_equal(store_member_list(fx->st, ab, &users, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(users[0], "alice");
	assert_string_equal(users[1], "bob");
	store_strings_free(users, n);

	assert_int_equal(store_notice_session(fx->st, "alice", 4, &note,
					      &created), 0);
	assert_true(created);
	assert_int_equal(store_notice_session(fx->st, "alice", 5, &note2,
					      &created), 0);
	assert_false(created);
	assert_int_equal(note, note2);
	assert_int_not_equal(note, ab);
	assert_int_equal(store_member_list(fx->st, note, &users, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(users[0], "alice");
	store_strings_free(users, n);
}

static void test_reopen_keeps_data(void **state)
{
	struct fixture *fx = *state;
	struct store_append_result res;
	struct store_message *msgs;
	struct store_session s;
	uint64_t s1, ab, again;
	int created;
	size_t n;

	assert_int_equal(store_session_create(fx->st, STORE_KIND_GROUP, "kept",
					      1, &s1), 0);
	assert_int_equal(store_member_add(fx->st, s1, "alice", 1), 1);
	assert_int_equal(append_text(fx->st, s1, "alice", "m1", "one", 5, &res),
			 0);
	assert_int_equal(append_text(fx->st, s1, "alice", "m2", "two", 6, &res),
			 0);
	assert_int_equal(store_direct_session(fx->st, "a", "b", 1, &ab,
					      &created), 0);

	store_close(fx->st);
	fx->st = store_open(fx->path);
	assert_non_null(fx->st);

	assert_int_equal(store_session_get(fx->st, s1, &s), 0);
	assert_string_equal(s.name, "kept");
	assert_int_equal(s.last_seq, 2);
	store_session_clear(&s);
	assert_int_equal(store_messages_range(fx->st, s1, 1, 10, &msgs, &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(msgs[1].payload, "two", 3);
	assert_string_equal(msgs[1].client_msg_id, "m2");
	store_messages_free(msgs, n);

	/* Dedupe and numbering continue across the reopen. */
	assert_int_equal(append_text(fx->st, s1, "alice", "m1", "one", 9, &res),
			 0);
	assert_true(res.duplicate);
	assert_int_equal(res.seq, 1);
	assert_int_equal(append_text(fx->st, s1, "alice", "m3", "3", 9, &res),
			 0);
	assert_int_equal(res.seq, 3);
	assert_int_equal(store_direct_session(fx->st, "b", "a", 1, &again,
					      &created), 0);
	assert_false(created);
	assert_int_equal(again, ab);
}

static void test_empty_payload_roundtrip(void **state)
{
	struct fixture *fx = *state;
	struct store_append_result res;
	struct store_message *msgs;
	size_t n;
	uint64_t s1;

	assert_int_equal(store_session_create(fx->st, STORE_KIND_GROUP, "g",
					      1, &s1), 0);
	assert_int_equal(append_text(fx->st, s1, "alice", "", "", 1, &res), 0);
	assert_int_equal(store_messages_range(fx->st, s1, 0, 10, &msgs, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(msgs[0].payload_len, 0);
	assert_null(msgs[0].payload);
	store_messages_free(msgs, n);
}

/* Adds a text message with time 7 inside the open batch. */
static int add_text(struct store *st, uint64_t session, const char *sender,
		    const char *cmid, const char *text,
		    struct store_append_result *res)
{
	struct store_message msg = text_message(session, sender, cmid, text, 7);

	return store_message_add(st, &msg, res);
}

static void test_batch_commit_keeps_all(void **state)
{
	struct fixture *fx = *state;
	struct store_append_result res;
	struct store_message *msgs;
	struct store_session s;
	uint64_t s1, s2;
	size_t n;

	assert_int_equal(store_session_create(fx->st, STORE_KIND_GROUP, "one",
					      1, &s1), 0);
	assert_int_equal(store_session_create(fx->st, STORE_KIND_GROUP, "two",
					      1, &s2), 0);
	assert_int_equal(store_batch_begin(fx->st), 0);
	assert_int_equal(add_text(fx->st, s1, "alice", "a1", "x", &res), 0);
	assert_int_equal(res.seq, 1);
	assert_int_equal(add_text(fx->st, s2, "alice", "a1", "y", &res), 0);
	assert_int_equal(res.seq, 1);
	assert_int_equal(add_text(fx->st, s1, "bob", "", "z", &res), 0);
	assert_int_equal(res.seq, 2);
	assert_int_equal(store_batch_commit(fx->st), 0);

	assert_int_equal(store_session_get(fx->st, s1, &s), 0);
	assert_int_equal(s.last_seq, 2);
	store_session_clear(&s);
	assert_int_equal(store_messages_range(fx->st, s1, 1, 10, &msgs, &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(msgs[0].payload, "x", 1);
	assert_memory_equal(msgs[1].payload, "z", 1);
	store_messages_free(msgs, n);
}

static void test_batch_dedupes_within(void **state)
{
	struct fixture *fx = *state;
	struct store_append_result res;
	struct store_message *msgs;
	uint64_t s1;
	size_t n;

	assert_int_equal(store_session_create(fx->st, STORE_KIND_GROUP, "g",
					      1, &s1), 0);
	assert_int_equal(store_batch_begin(fx->st), 0);
	assert_int_equal(add_text(fx->st, s1, "alice", "m1", "first", &res), 0);
	assert_int_equal(res.seq, 1);
	assert_false(res.duplicate);
	/* The retry finds the uncommitted row of the same batch. */
	assert_int_equal(add_text(fx->st, s1, "alice", "m1", "again", &res), 0);
	assert_true(res.duplicate);
	assert_int_equal(res.seq, 1);
	assert_int_equal(res.time_ms, 7);
	assert_int_equal(store_batch_commit(fx->st), 0);

	assert_int_equal(store_messages_range(fx->st, s1, 1, 10, &msgs, &n), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(msgs[0].payload, "first", 5);
	store_messages_free(msgs, n);
}

static void test_batch_rollback_drops_all(void **state)
{
	struct fixture *fx = *state;
	struct store_append_result res;
	struct store_message *msgs;
	struct store_session s;
	uint64_t s1;
	size_t n;

	assert_int_equal(store_session_create(fx->st, STORE_KIND_GROUP, "g",
					      1, &s1), 0);
	assert_int_equal(append_text(fx->st, s1, "alice", "m1", "kept", 1,
				     &res), 0);
	assert_int_equal(store_batch_begin(fx->st), 0);
	assert_int_equal(add_text(fx->st, s1, "alice", "m2", "gone", &res), 0);
	assert_int_equal(res.seq, 2);
	assert_int_equal(add_text(fx->st, s1, "bob", "m3", "gone", &res), 0);
	assert_int_equal(res.seq, 3);
	store_batch_rollback(fx->st);

	assert_int_equal(store_session_get(fx->st, s1, &s), 0);
	assert_int_equal(s.last_seq, 1);
	store_session_clear(&s);
	assert_int_equal(store_messages_range(fx->st, s1, 1, 10, &msgs, &n), 0);
	assert_int_equal(n, 1);
	store_messages_free(msgs, n);
	/* The rolled-back seqs and client_msg_ids are free again. */
	assert_int_equal(append_text(fx->st, s1, "alice", "m2", "new", 2, &res),
			 0);
	assert_false(res.duplicate);
	assert_int_equal(res.seq, 2);
}

static void test_batch_add_unknown_session(void **state)
{
	struct fixture *fx = *state;
	struct store_append_result res;

	assert_int_equal(store_batch_begin(fx->st), 0);
	assert_int_equal(add_text(fx->st, 999, "alice", "m1", "x", &res),
			 -ENOENT);
	store_batch_rollback(fx->st);
}

/* Sets sessions.last_seq of session id, as a database written by a version
 * that bumped the column with every message may have it. */
static void set_last_seq_column(const char *path, uint64_t id, uint64_t seq)
{
	char sql[128];
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql),
		 "UPDATE sessions SET last_seq = %llu WHERE id = %llu",
		 (unsigned long long)seq, (unsigned long long)id);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 1);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_last_seq_column_respected(void **state)
{
	struct fixture *fx = *state;
	struct store_append_result res;
	struct store_session s;
	uint64_t s1;

	assert_int_equal(store_session_create(fx->st, STORE_KIND_GROUP, "old",
					      1, &s1), 0);
	assert_int_equal(append_text(fx->st, s1, "alice", "m1", "one", 1, &res),
			 0);
	assert_int_equal(res.seq, 1);
	store_close(fx->st);
	set_last_seq_column(fx->path, s1, 10);
	fx->st = store_open(fx->path);
	assert_non_null(fx->st);

	assert_int_equal(store_session_get(fx->st, s1, &s), 0);
	assert_int_equal(s.last_seq, 10);
	store_session_clear(&s);
	assert_int_equal(append_text(fx->st, s1, "alice", "m2", "two", 2, &res),
			 0);
	assert_int_equal(res.seq, 11);
	assert_int_equal(store_session_get(fx->st, s1, &s), 0);
	assert_int_equal(s.last_seq, 11);
	store_session_clear(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_seq_per_session, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_append_unknown_session,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_client_msg_id,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_range_from_limit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_members_add_remove_list,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_direct_find_or_create,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_empty_payload_roundtrip,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_commit_keeps_all,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_dedupes_within,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_rollback_drops_all,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_add_unknown_session,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_last_seq_column_respected,
						setup, teardown),
	};

	log_init("test_store", LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * Login results that would not fit in a frame. Session names are checked
 * when created, and a login lists at most 1,000 sessions with
 * sessions_truncated set. A login result that still exceeds the hard frame
 * limit (names written to the database directly) fails only that login with
 * ERROR_INTERNAL, while the gateway's link and its other users stay.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "harness.h"
#include "token.h"

#define LOGIN_MAX_SESSIONS 1000

/* Posts a group session with name; returns the HTTP status and the body. */
static int post_session(struct harness *h, const char *name, char **body)
{
	json_t *req = json_pack("{s:s, s:s, s:[s]}", "kind", "group", "name",
				name, "members", "nm");
	char *text = json_dumps(req, JSON_COMPACT);
	int status;

	json_decref(req);
	H_CHECK(text, "encoding the session request failed");
	status = http_call(h->biz.http_port, "POST", "/v1/sessions", text,
			   body);
	free(text);
	return status;
}

static void expect_name_rejected(struct harness *h, const char *name,
				 const char *what)
{
	char *body = NULL;
	int status = post_session(h, name, &body);

	H_CHECK(status == 400, "session name %s: status %d, expected 400",
		what, status);
	H_CHECK(body && strstr(body, "name"),
		"session name %s: reply \"%s\" does not name the field", what,
		body ? body : "");
	free(body);
}

static void session_name_checked(void **state)
{
	struct harness *h = harness_start(1, NULL);
	char name[258], *body = NULL;
	int status;

	memset(name, 'n', 257);
	name[257] = '\0';
	expect_name_rejected(h, name, "of 257 bytes");
	expect_name_rejected(h, "line\nbreak", "with a newline");
	expect_name_rejected(h, "tab\there", "with a tab");
	expect_name_rejected(h, "del\x7f", "with DEL");

	name[256] = '\0';
	status = post_session(h, name, &body);
	H_CHECK(status == 201, "session name of 256 bytes: status %d, expected 201",
		status);
	free(body);
	status = post_session(h, "caf\xc3\xa9 \xe2\x9c\x93", &body);
	H_CHECK(status == 201, "UTF-8 session name: status %d, expected 201",
		status);
	free(body);
	harness_stop(h);
}

static int login_lists(const Imgw__LoginResult *res, uint64_t session_id)
{
	for (size_t i = 0; i < res->n_sessions; i++)
		if (res->sessions[i]->session_id == session_id)
			return 1;
	return 0;
}

static void login_sessions_capped(void **state)
{
	struct harness *h = harness_start(1, NULL);
	const char *const members[] = { "many" };
	uint64_t first = 0, second = 0, id;
	struct tclient *t;

	for (int i = 0; i <= LOGIN_MAX_SESSIONS; i++) {
		id = admin_session_create(h, "group", "s", members, 1);
		if (!first)
			first = id;
		else if (!second)
			second = id;
	}
	/* The oldest session gets the latest message, so it must be listed.
	 * The others have no messages and rank by creation: the second
	 * oldest is the one left out. */
	admin_push(h, first, "many", "latest");

	t = tc_login(h, 0, "many", "d");
	H_CHECK(t->login->n_sessions == LOGIN_MAX_SESSIONS,
		"login listed %zu sessions, expected %d",
		t->login->n_sessions, LOGIN_MAX_SESSIONS);
	H_CHECK(t->login->sessions_truncated,
		"sessions_truncated is not set for a user in %d sessions",
		LOGIN_MAX_SESSIONS + 1);
	H_CHECK(login_lists(t->login, first),
		"session %llu with the latest message is not listed",
		(unsigned long long)first);
	H_CHECK(!login_lists(t->login, second),
		"session %llu, the oldest without messages, is listed although the list was cut",
		(unsigned long long)second);
	tc_free(t);

	/* Exactly at the cap nothing is cut. */
	admin_member_remove(h, second, "many");
	t = tc_login(h, 0, "many", "d2");
	H_CHECK(t->login->n_sessions == LOGIN_MAX_SESSIONS,
		"login listed %zu sessions, expected %d",
		t->login->n_sessions, LOGIN_MAX_SESSIONS);
	H_CHECK(!t->login->sessions_truncated,
		"sessions_truncated is set for a user in exactly %d sessions",
		LOGIN_MAX_SESSIONS);
	tc_free(t);
	harness_stop(h);
}

/* Sets the names of sessions a and b to 9 MiB each in the database. */
static void write_huge_names(struct harness *h, uint64_t a, uint64_t b)
{
	char sql[256];
	sqlite3 *db;
	char *err = NULL;
	int rc;

	rc = sqlite3_open(h->db_path, &db);
	H_CHECK(rc == SQLITE_OK, "opening %s failed: %s", h->db_path,
		sqlite3_errstr(rc));
	sqlite3_busy_timeout(db, HARNESS_WAIT_MS);
	snprintf(sql, sizeof(sql),
		 "UPDATE sessions SET name = replace(hex(zeroblob(%d)), '0', 'x') WHERE id IN (%llu, %llu)",
		 9 * 1024 * 1024 / 2, (unsigned long long)a,
		 (unsigned long long)b);
	rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	H_CHECK(rc == SQLITE_OK, "writing huge names failed: %s",
		err ? err : sqlite3_errstr(rc));
	H_CHECK(sqlite3_changes(db) == 2, "updated %d sessions, expected 2",
		sqlite3_changes(db));
	sqlite3_close(db);
}

static void oversized_login_result(void **state)
{
	struct harness *h = harness_start(1, NULL);
	const char *const big[] = { "big", "other" };
	const char *const pair[] = { "pa", "pb" };
	Imgw__LoginResult *res = NULL;
	struct tclient *pa, *pb, *t;
	uint64_t a, b, sid, seq;
	char token[TOKEN_MAX_LEN + 1];
	int rc;

	sid = admin_session_create(h, "group", "pair", pair, 2);
	pa = tc_login(h, 0, "pa", "d");
	pb = tc_login(h, 0, "pb", "d");
	a = admin_session_create(h, "group", "a", big, 2);
	b = admin_session_create(h, "group", "b", big, 2);
	write_huge_names(h, a, b);

	for (int i = 0; i < 3; i++) {
		t = tc_connect(h, 0);
		harness_token(h, "big", time(NULL) + 600, token);
		rc = client_login(t->c, token, "big", "d", "test",
				  HARNESS_WAIT_MS, &res);
		H_CHECK(rc == -EACCES,
			"login with an oversized result: %d (%s), expected a rejection",
			rc, strerror(-rc));
		H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_INTERNAL,
			"login with an oversized result: code %d, expected ERROR_INTERNAL",
			res->code);
		imgw__login_result__free_unpacked(res, NULL);
		res = NULL;
		H_CHECK(tc_wait_closed(t, HARNESS_WAIT_MS) == 0,
			"the gateway kept the failed login's connection open");
		tc_free(t);
	}
	H_CHECK(harness_metric(&h->gw[0], "imgw_upstream_reconnects_total") == 0,
		"the gateway reconnected to bizsvr %.0f times, expected 0",
		harness_metric(&h->gw[0], "imgw_upstream_reconnects_total"));

	/* The link stayed: the logged-in pair still talks. */
	seq = tc_send_ok(pa, sid, "still here");
	H_CHECK(tc_wait_push(pb, sid, seq, HARNESS_WAIT_MS) >= 0,
		"pb did not receive seq %llu after the failed logins",
		(unsigned long long)seq);
	tc_free(pa);
	tc_free(pb);
	harness_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(session_name_checked,
					  harness_teardown),
		cmocka_unit_test_teardown(login_sessions_capped,
					  harness_teardown),
		cmocka_unit_test_teardown(oversized_login_result,
					  harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

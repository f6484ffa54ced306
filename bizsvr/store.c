// SPDX-License-Identifier: MIT
/*
 * SQLite storage of sessions, members and messages; see store.h. Every
 * statement is prepared once at open and reset after each use, so the hot
 * path (message append, range fetch) parses no SQL.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "store.h"

#define STORE_BUSY_TIMEOUT_MS 5000

enum store_stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SESSION_INSERT,
	ST_SESSION_GET,
	ST_SESSION_BY_KEY,
	ST_SESSION_LAST_SEQ,
	ST_MEMBER_INSERT,
	ST_MEMBER_DELETE,
	ST_MEMBER_LIST,
	ST_USER_SESSIONS,
	ST_USER_SESSIONS_RECENT,
	ST_MESSAGE_FIND,
	ST_MESSAGE_INSERT,
	ST_MESSAGE_RANGE,
	ST_COUNT,
};

/*
 * A session's last seq: the largest seq among its messages, or the
 * sessions.last_seq column when that is larger. Appends take the seq from
 * the messages table and leave the column alone, so that a message writes
 * no sessions page. Databases written by older versions bumped the column
 * with every message, and for them it still guards against reusing the seq
 * of a deleted message. The session row is s.
 */
#define STORE_LAST_SEQ_SQL \
	"MAX(s.last_seq, COALESCE((SELECT MAX(seq) FROM messages WHERE session_id = s.id), 0))"

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SESSION_INSERT] =
		"INSERT INTO sessions (kind, name, last_seq, created_ms, direct_key) VALUES (?1, ?2, 0, ?3, ?4)",
	[ST_SESSION_GET] =
		"SELECT s.id, s.kind, s.name, " STORE_LAST_SEQ_SQL ", s.created_ms FROM sessions s WHERE s.id = ?1",
	[ST_SESSION_BY_KEY] = "SELECT id FROM sessions WHERE direct_key = ?1",
	[ST_SESSION_LAST_SEQ] =
		"SELECT " STORE_LAST_SEQ_SQL " FROM sessions s WHERE s.id = ?1",
	[ST_MEMBER_INSERT] =
		"INSERT OR IGNORE INTO members (session_id, user_id, joined_ms) VALUES (?1, ?2, ?3)",
	[ST_MEMBER_DELETE] =
		"DELETE FROM members WHERE session_id = ?1 AND user_id = ?2",
	[ST_MEMBER_LIST] =
		"SELECT user_id FROM members WHERE session_id = ?1 ORDER BY user_id",
	[ST_USER_SESSIONS] =
		"SELECT s.id, s.kind, s.name, " STORE_LAST_SEQ_SQL ", s.created_ms FROM members m JOIN sessions s ON s.id = m.session_id WHERE m.user_id = ?1 ORDER BY s.id",
	/* A session's latest message is its last row by primary key. A
	 * session without messages counts from its creation. */
	[ST_USER_SESSIONS_RECENT] =
		"SELECT s.id, s.kind, s.name, " STORE_LAST_SEQ_SQL ", s.created_ms FROM members m JOIN sessions s ON s.id = m.session_id WHERE m.user_id = ?1 ORDER BY COALESCE((SELECT time_ms FROM messages WHERE session_id = s.id ORDER BY seq DESC LIMIT 1), s.created_ms) DESC, s.id DESC LIMIT ?2",
	/* The last term lets SQLite use the partial index messages_client_id;
	 * without it every append scans the session's messages. */
	[ST_MESSAGE_FIND] =
		"SELECT seq, time_ms FROM messages WHERE session_id = ?1 AND sender = ?2 AND client_msg_id = ?3 AND client_msg_id <> ''",
	/* Inserts nothing when the client_msg_id is stored already (the
	 * unique index conflicts). */
	[ST_MESSAGE_INSERT] =
		"INSERT INTO messages (session_id, seq, sender, sender_device, time_ms, client_msg_id, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
	[ST_MESSAGE_RANGE] =
		"SELECT seq, sender, sender_device, time_ms, client_msg_id, payload FROM messages WHERE session_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3",
};

/*
 * WAL with synchronous=NORMAL: a commit is durable once its write() to the
 * WAL returns, so a crash of this process loses nothing acknowledged. Only a
 * power loss or kernel crash may roll back the last transactions, since the
 * WAL is synced at checkpoints and not at every commit.
 */
static const char schema_sql[] =
	"PRAGMA journal_mode = WAL;"
	"PRAGMA synchronous = NORMAL;"
	"PRAGMA foreign_keys = ON;"
	"CREATE TABLE IF NOT EXISTS sessions ("
	" id INTEGER PRIMARY KEY,"
	" kind INTEGER NOT NULL,"
	" name TEXT NOT NULL DEFAULT '',"
	" last_seq INTEGER NOT NULL DEFAULT 0,"
	" created_ms INTEGER NOT NULL,"
	" direct_key TEXT UNIQUE NULL);"
	"CREATE TABLE IF NOT EXISTS members ("
	" session_id INTEGER NOT NULL REFERENCES sessions(id),"
	" user_id TEXT NOT NULL,"
	" joined_ms INTEGER NOT NULL,"
	" PRIMARY KEY (session_id, user_id)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS members_by_user ON members (user_id);"
	"CREATE TABLE IF NOT EXISTS messages ("
	" session_id INTEGER NOT NULL REFERENCES sessions(id),"
	" seq INTEGER NOT NULL,"
	" sender TEXT NOT NULL,"
	" sender_device TEXT NOT NULL DEFAULT '',"
	" time_ms INTEGER NOT NULL,"
	" client_msg_id TEXT NOT NULL DEFAULT '',"
	" payload BLOB,"
	" PRIMARY KEY (session_id, seq)) WITHOUT ROWID;"
	"CREATE UNIQUE INDEX IF NOT EXISTS messages_client_id"
	" ON messages (session_id, sender, client_msg_id)"
	" WHERE client_msg_id <> '';";

struct store {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmt[ST_COUNT];
};

static int store_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	default:
		return -EIO;
	}
}

static int store_fail(struct store *st, const char *what, int rc)
{
	pr_error("store %s: %s failed: %s (sqlite code %d)", st->path, what,
		 sqlite3_errmsg(st->db), rc);
	return store_errno(rc);
}

/* Returns the statement, reset and with its bindings cleared. */
static sqlite3_stmt *store_stmt(struct store *st, enum store_stmt which)
{
	sqlite3_stmt *stmt = st->stmt[which];

	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return stmt;
}

/* Runs a statement whose result rows are not needed. Returns 0 or a
 * negative errno. */
static int store_exec(struct store *st, enum store_stmt which,
		      sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		int err = store_fail(st, stmt_sql[which], rc);

		sqlite3_reset(stmt);
		return err;
	}
	sqlite3_reset(stmt);
	return 0;
}

static int store_begin(struct store *st)
{
	return store_exec(st, ST_BEGIN, store_stmt(st, ST_BEGIN));
}

static int store_commit(struct store *st)
{
	return store_exec(st, ST_COMMIT, store_stmt(st, ST_COMMIT));
}

static void store_rollback(struct store *st)
{
	if (sqlite3_get_autocommit(st->db))
		return;
	store_exec(st, ST_ROLLBACK, store_stmt(st, ST_ROLLBACK));
}

static char *column_strdup(sqlite3_stmt *stmt, int col)
{
	const unsigned char *text = sqlite3_column_text(stmt, col);

	return strdup(text ? (const char *)text : "");
}

static int store_prepare_all(struct store *st)
{
	for (int i = 0; i < ST_COUNT; i++) {
		int rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
					    SQLITE_PREPARE_PERSISTENT,
					    &st->stmt[i], NULL);

		if (rc != SQLITE_OK)
			return store_fail(st, stmt_sql[i], rc);
	}
	return 0;
}

static int store_init_schema(struct store *st)
{
	char *errmsg = NULL;
	int rc;

	rc = sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	if (rc != SQLITE_OK)
		return store_fail(st, "busy timeout", rc);
	rc = sqlite3_exec(st->db, schema_sql, NULL, NULL, &errmsg);
	if (rc != SQLITE_OK) {
		pr_error("store %s: schema setup failed: %s", st->path,
			 errmsg ? errmsg : sqlite3_errstr(rc));
		sqlite3_free(errmsg);
		return store_errno(rc);
	}
	return 0;
}

struct store *store_open(const char *path)
{
	struct store *st = calloc(1, sizeof(*st));
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
		    SQLITE_OPEN_NOMUTEX;
	int rc, err;

	if (!st)
		return NULL;
	st->path = strdup(path);
	if (!st->path) {
		err = -ENOMEM;
		goto err_free;
	}
	rc = sqlite3_open_v2(path, &st->db, flags, NULL);
	if (rc != SQLITE_OK) {
		err = store_fail(st, "open", rc);
		goto err_close;
	}
	sqlite3_extended_result_codes(st->db, 1);
	err = store_init_schema(st);
	if (err < 0)
		goto err_close;
	err = store_prepare_all(st);
	if (err < 0)
		goto err_close;
	return st;

err_close:
	store_close(st);
	errno = -err;
	return NULL;
err_free:
	free(st);
	errno = -err;
	return NULL;
}

void store_close(struct store *st)
{
	int rc;

	if (!st)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	rc = sqlite3_close(st->db);
	if (rc != SQLITE_OK)
		pr_error("store %s: close failed: %s", st->path,
			 sqlite3_errstr(rc));
	free(st->path);
	free(st);
}

static int store_session_insert(struct store *st, int kind, const char *name,
				int64_t now_ms, const char *key, uint64_t *id)
{
	sqlite3_stmt *stmt = store_stmt(st, ST_SESSION_INSERT);
	int err;

	sqlite3_bind_int(stmt, 1, kind);
	sqlite3_bind_text(stmt, 2, name ? name : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, now_ms);
	if (key)
		sqlite3_bind_text(stmt, 4, key, -1, SQLITE_STATIC);
	err = store_exec(st, ST_SESSION_INSERT, stmt);
	if (err < 0)
		return err;
	*id = (uint64_t)sqlite3_last_insert_rowid(st->db);
	return 0;
}

int store_session_create(struct store *st, int kind, const char *name,
			 int64_t now_ms, uint64_t *id)
{
	return store_session_insert(st, kind, name, now_ms, NULL, id);
}

static int session_from_row(sqlite3_stmt *stmt, struct store_session *out)
{
	out->id = (uint64_t)sqlite3_column_int64(stmt, 0);
	out->kind = sqlite3_column_int(stmt, 1);
	out->name = column_strdup(stmt, 2);
	out->last_seq = (uint64_t)sqlite3_column_int64(stmt, 3);
	out->created_ms = sqlite3_column_int64(stmt, 4);
	return out->name ? 0 : -ENOMEM;
}

int store_session_get(struct store *st, uint64_t id, struct store_session *out)
{
	sqlite3_stmt *stmt = store_stmt(st, ST_SESSION_GET);
	int rc, err;

	memset(out, 0, sizeof(*out));
	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE)
		err = -ENOENT;
	else if (rc == SQLITE_ROW)
		err = session_from_row(stmt, out);
	else
		err = store_fail(st, stmt_sql[ST_SESSION_GET], rc);
	sqlite3_reset(stmt);
	return err;
}

void store_session_clear(struct store_session *s)
{
	free(s->name);
	s->name = NULL;
}

/* Looks up a keyed session. Returns 1 and sets *id when found, 0 when not,
 * or a negative errno. */
static int store_session_by_key(struct store *st, const char *key,
				uint64_t *id)
{
	sqlite3_stmt *stmt = store_stmt(st, ST_SESSION_BY_KEY);
	int rc, ret;

	sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*id = (uint64_t)sqlite3_column_int64(stmt, 0);
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		ret = store_fail(st, stmt_sql[ST_SESSION_BY_KEY], rc);
	}
	sqlite3_reset(stmt);
	return ret;
}

static int store_member_insert(struct store *st, uint64_t session_id,
			       const char *user, int64_t now_ms)
{
	sqlite3_stmt *stmt = store_stmt(st, ST_MEMBER_INSERT);
	int err;

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)session_id);
	sqlite3_bind_text(stmt, 2, user, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, now_ms);
	err = store_exec(st, ST_MEMBER_INSERT, stmt);
	if (err < 0)
		return err;
	return sqlite3_changes(st->db) > 0;
}

/*
 * Finds the session with key or creates it of kind with users as members, in
 * one transaction so two creators cannot both insert.
 */
static int store_keyed_session(struct store *st, const char *key, int kind,
			       const char *const *users, size_t n_users,
			       int64_t now_ms, uint64_t *id, int *created)
{
	int err;

	*created = 0;
	err = store_begin(st);
	if (err < 0)
		return err;
	err = store_session_by_key(st, key, id);
	if (err != 0)
		goto out;
	err = store_session_insert(st, kind, "", now_ms, key, id);
	for (size_t i = 0; err >= 0 && i < n_users; i++)
		err = store_member_insert(st, *id, users[i], now_ms);
	if (err < 0)
		goto out;
	*created = 1;
out:
	if (err >= 0)
		err = store_commit(st);
	if (err < 0) {
		store_rollback(st);
		*created = 0;
		return err;
	}
	return 0;
}

int store_group_create(struct store *st, const char *name,
		       const char *const *users, size_t count, int64_t now_ms,
		       uint64_t *id)
{
	int err;

	err = store_begin(st);
	if (err < 0)
		return err;
	err = store_session_insert(st, STORE_KIND_GROUP, name, now_ms, NULL,
				   id);
	for (size_t i = 0; err >= 0 && i < count; i++)
		err = store_member_insert(st, *id, users[i], now_ms);
	if (err < 0) {
		store_rollback(st);
		return err;
	}
	err = store_commit(st);
	if (err < 0)
		store_rollback(st);
	return err;
}

int store_direct_session(struct store *st, const char *a, const char *b,
			 int64_t now_ms, uint64_t *id, int *created)
{
	const char *users[2];
	char *key;
	int err;

	if (strcmp(a, b) == 0)
		return -EINVAL;
	/* Sorted, so (a, b) and (b, a) share one key and one session. */
	users[0] = strcmp(a, b) < 0 ? a : b;
	users[1] = users[0] == a ? b : a;
	if (asprintf(&key, "%s\n%s", users[0], users[1]) < 0)
		return -ENOMEM;
	err = store_keyed_session(st, key, STORE_KIND_DIRECT, users, 2, now_ms,
				  id, created);
	free(key);
	return err;
}

int store_notice_session(struct store *st, const char *user, int64_t now_ms,
			 uint64_t *id, int *created)
{
	const char *users[1] = { user };
	char *key;
	int err;

	/* A leading newline cannot start a direct key: user ids are never
	 * empty, so the two key spaces do not meet. */
	if (asprintf(&key, "\n%s", user) < 0)
		return -ENOMEM;
	err = store_keyed_session(st, key, STORE_KIND_NOTICE, users, 1, now_ms,
				  id, created);
	free(key);
	return err;
}

int store_member_add(struct store *st, uint64_t session_id, const char *user,
		     int64_t now_ms)
{
	struct store_session s;
	int err;

	/* Checked first so that a missing session is not logged as a failed
	 * foreign key. */
	err = store_session_get(st, session_id, &s);
	if (err < 0)
		return err;
	store_session_clear(&s);
	return store_member_insert(st, session_id, user, now_ms);
}

int store_member_remove(struct store *st, uint64_t session_id,
			const char *user)
{
	sqlite3_stmt *stmt = store_stmt(st, ST_MEMBER_DELETE);
	int err;

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)session_id);
	sqlite3_bind_text(stmt, 2, user, -1, SQLITE_STATIC);
	err = store_exec(st, ST_MEMBER_DELETE, stmt);
	if (err < 0)
		return err;
	return sqlite3_changes(st->db) > 0;
}

/* Grows *array of elem_size elements to hold at least need elements. */
static int grow_array(void **array, size_t *cap, size_t need, size_t elem_size)
{
	size_t new_cap = *cap ? *cap : 8;
	void *p;

	if (need <= *cap)
		return 0;
	while (new_cap < need)
		new_cap *= 2;
	p = realloc(*array, new_cap * elem_size);
	if (!p)
		return -ENOMEM;
	*array = p;
	*cap = new_cap;
	return 0;
}

int store_member_list(struct store *st, uint64_t session_id, char ***users,
		      size_t *count)
{
	sqlite3_stmt *stmt = store_stmt(st, ST_MEMBER_LIST);
	char **list = NULL;
	size_t n = 0, cap = 0;
	int rc, err = 0;

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)session_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		err = grow_array((void **)&list, &cap, n + 1, sizeof(*list));
		if (err < 0)
			break;
		list[n] = column_strdup(stmt, 0);
		if (!list[n]) {
			err = -ENOMEM;
			break;
		}
		n++;
	}
	if (!err && rc != SQLITE_DONE)
		err = store_fail(st, stmt_sql[ST_MEMBER_LIST], rc);
	sqlite3_reset(stmt);
	if (err < 0) {
		store_strings_free(list, n);
		return err;
	}
	*users = list;
	*count = n;
	return 0;
}

void store_strings_free(char **strings, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(strings[i]);
	free(strings);
}

/* Collects the session rows of stmt (statement which, parameters bound). */
static int store_collect_sessions(struct store *st, enum store_stmt which,
				  sqlite3_stmt *stmt,
				  struct store_session **sessions,
				  size_t *count)
{
	struct store_session *list = NULL;
	size_t n = 0, cap = 0;
	int rc, err = 0;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		err = grow_array((void **)&list, &cap, n + 1, sizeof(*list));
		if (err < 0)
			break;
		err = session_from_row(stmt, &list[n]);
		if (err < 0)
			break;
		n++;
	}
	if (!err && rc != SQLITE_DONE)
		err = store_fail(st, stmt_sql[which], rc);
	sqlite3_reset(stmt);
	if (err < 0) {
		store_sessions_free(list, n);
		return err;
	}
	*sessions = list;
	*count = n;
	return 0;
}

int store_user_sessions(struct store *st, const char *user,
			struct store_session **sessions, size_t *count)
{
	sqlite3_stmt *stmt = store_stmt(st, ST_USER_SESSIONS);

	sqlite3_bind_text(stmt, 1, user, -1, SQLITE_STATIC);
	return store_collect_sessions(st, ST_USER_SESSIONS, stmt, sessions,
				      count);
}

int store_user_sessions_recent(struct store *st, const char *user,
			       unsigned int limit,
			       struct store_session **sessions, size_t *count)
{
	sqlite3_stmt *stmt = store_stmt(st, ST_USER_SESSIONS_RECENT);

	sqlite3_bind_text(stmt, 1, user, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, limit);
	return store_collect_sessions(st, ST_USER_SESSIONS_RECENT, stmt,
				      sessions, count);
}

void store_sessions_free(struct store_session *sessions, size_t count)
{
	for (size_t i = 0; i < count; i++)
		store_session_clear(&sessions[i]);
	free(sessions);
}

/* Looks up an earlier message with the same client_msg_id. Returns 1 and
 * fills res when found, 0 when not, or a negative errno. */
static int store_message_find(struct store *st,
			      const struct store_message *msg,
			      struct store_append_result *res)
{
	sqlite3_stmt *stmt = store_stmt(st, ST_MESSAGE_FIND);
	int rc, ret = 0;

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)msg->session_id);
	sqlite3_bind_text(stmt, 2, msg->sender, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, msg->client_msg_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		res->seq = (uint64_t)sqlite3_column_int64(stmt, 0);
		res->time_ms = (uint64_t)sqlite3_column_int64(stmt, 1);
		res->duplicate = 1;
		ret = 1;
	} else if (rc != SQLITE_DONE) {
		ret = store_fail(st, stmt_sql[ST_MESSAGE_FIND], rc);
	}
	sqlite3_reset(stmt);
	return ret;
}

/* Stores the session's last seq in *seq. Returns 0, -ENOENT or a negative
 * errno. */
static int store_last_seq(struct store *st, uint64_t session_id, uint64_t *seq)
{
	sqlite3_stmt *stmt = store_stmt(st, ST_SESSION_LAST_SEQ);
	int rc, err = 0;

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)session_id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*seq = (uint64_t)sqlite3_column_int64(stmt, 0);
	else if (rc == SQLITE_DONE)
		err = -ENOENT;
	else
		err = store_fail(st, stmt_sql[ST_SESSION_LAST_SEQ], rc);
	sqlite3_reset(stmt);
	return err;
}

/* Inserts msg with seq. Returns 1 when inserted, 0 when its client_msg_id
 * is stored already, or a negative errno. */
static int store_message_insert(struct store *st,
				const struct store_message *msg, uint64_t seq)
{
	sqlite3_stmt *stmt = store_stmt(st, ST_MESSAGE_INSERT);
	const char *cmid = msg->client_msg_id ? msg->client_msg_id : "";
	const char *device = msg->sender_device ? msg->sender_device : "";
	int err;

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)msg->session_id);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)seq);
	sqlite3_bind_text(stmt, 3, msg->sender, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, (sqlite3_int64)msg->time_ms);
	sqlite3_bind_text(stmt, 6, cmid, -1, SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 7, msg->payload ? (const void *)msg->payload : "",
			  (int)msg->payload_len, SQLITE_STATIC);
	err = store_exec(st, ST_MESSAGE_INSERT, stmt);
	if (err < 0)
		return err;
	return sqlite3_changes(st->db) > 0;
}

int store_batch_begin(struct store *st)
{
	return store_begin(st);
}

int store_batch_commit(struct store *st)
{
	int err = store_commit(st);

	if (err < 0)
		store_rollback(st);
	return err;
}

void store_batch_rollback(struct store *st)
{
	store_rollback(st);
}

int store_message_add(struct store *st, const struct store_message *msg,
		      struct store_append_result *res)
{
	int has_id = msg->client_msg_id && msg->client_msg_id[0];
	uint64_t seq = 0;
	int ret;

	memset(res, 0, sizeof(*res));
	if (msg->payload_len > INT32_MAX)
		return -EMSGSIZE;
	ret = store_last_seq(st, msg->session_id, &seq);
	if (ret < 0)
		return ret;
	ret = store_message_insert(st, msg, seq + 1);
	if (ret < 0)
		return ret;
	if (ret == 1) {
		res->seq = seq + 1;
		res->time_ms = msg->time_ms;
		return 0;
	}
	/* Only the client_msg_id index can conflict, because seq + 1 is
	 * past every stored seq of the session. */
	ret = has_id ? store_message_find(st, msg, res) : 0;
	if (ret < 0)
		return ret;
	if (ret == 0) {
		pr_error("store %s: message seq %llu of session %llu was neither inserted nor a duplicate",
			 st->path, (unsigned long long)(seq + 1),
			 (unsigned long long)msg->session_id);
		return -EIO;
	}
	return 0;
}

int store_message_append(struct store *st, const struct store_message *msg,
			 struct store_append_result *res)
{
	int err;

	memset(res, 0, sizeof(*res));
	if (msg->payload_len > INT32_MAX)
		return -EMSGSIZE;
	err = store_begin(st);
	if (err < 0)
		return err;
	err = store_message_add(st, msg, res);
	if (err >= 0)
		err = store_batch_commit(st);
	else
		store_rollback(st);
	if (err < 0)
		memset(res, 0, sizeof(*res));
	return err;
}

static int message_from_row(sqlite3_stmt *stmt, uint64_t session_id,
			    struct store_message *m)
{
	const void *blob = sqlite3_column_blob(stmt, 5);
	int len = sqlite3_column_bytes(stmt, 5);

	memset(m, 0, sizeof(*m));
	m->session_id = session_id;
	m->seq = (uint64_t)sqlite3_column_int64(stmt, 0);
	m->sender = column_strdup(stmt, 1);
	m->sender_device = column_strdup(stmt, 2);
	m->time_ms = (uint64_t)sqlite3_column_int64(stmt, 3);
	m->client_msg_id = column_strdup(stmt, 4);
	if (blob && len > 0) {
		m->payload = malloc((size_t)len);
		if (m->payload) {
			memcpy(m->payload, blob, (size_t)len);
			m->payload_len = (size_t)len;
		}
	}
	if (!m->sender || !m->sender_device || !m->client_msg_id ||
	    (len > 0 && !m->payload))
		return -ENOMEM;
	return 0;
}

int store_messages_range(struct store *st, uint64_t session_id,
			 uint64_t from_seq, unsigned int limit,
			 struct store_message **messages, size_t *count)
{
	sqlite3_stmt *stmt = store_stmt(st, ST_MESSAGE_RANGE);
	struct store_message *list = NULL;
	size_t n = 0, cap = 0;
	int rc, err = 0;

	/* Seqs fit in SQLite's signed 64-bit integers, so nothing lies beyond
	 * INT64_MAX; the cast would turn a larger from_seq negative. */
	if (from_seq > INT64_MAX)
		from_seq = INT64_MAX;
	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)session_id);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)from_seq);
	sqlite3_bind_int64(stmt, 3, limit);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		err = grow_array((void **)&list, &cap, n + 1, sizeof(*list));
		if (err < 0)
			break;
		/* Counted before the check so a half-filled row is freed. */
		err = message_from_row(stmt, session_id, &list[n++]);
		if (err < 0)
			break;
	}
	if (!err && rc != SQLITE_DONE)
		err = store_fail(st, stmt_sql[ST_MESSAGE_RANGE], rc);
	sqlite3_reset(stmt);
	if (err < 0) {
		store_messages_free(list, n);
		return err;
	}
	*messages = list;
	*count = n;
	return 0;
}

void store_messages_free(struct store_message *messages, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(messages[i].sender);
		free(messages[i].sender_device);
		free(messages[i].client_msg_id);
		free(messages[i].payload);
	}
	free(messages);
}

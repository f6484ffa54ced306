/* SPDX-License-Identifier: MIT */
/*
 * Durable state of the business daemon in one SQLite database in WAL mode:
 * sessions, their members and their messages with per-session sequence
 * numbers. All SQL of the daemon lives behind this API. Calls block on the
 * disk and are made from the event loop thread only.
 */
#ifndef BIZSVR_STORE_H
#define BIZSVR_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Same values as imgw.SessionKind in proto/imgw.proto. */
enum store_kind {
	STORE_KIND_GROUP = 0,
	STORE_KIND_DIRECT = 1,
	STORE_KIND_NOTICE = 2,
};

struct store;

struct store_session {
	uint64_t id;
	int kind;                /* enum store_kind */
	char *name;              /* malloc'd, never NULL after a successful get */
	uint64_t last_seq;
	int64_t created_ms;
};

struct store_message {
	uint64_t session_id;
	uint64_t seq;
	char *sender;
	char *sender_device;
	uint64_t time_ms;
	char *client_msg_id;     /* "" when the client gave none */
	uint8_t *payload;        /* NULL when payload_len is 0 */
	size_t payload_len;
};

struct store_append_result {
	uint64_t seq;
	uint64_t time_ms;
	int duplicate;           /* the client_msg_id was stored before */
};

/* Opens (creating when needed) the database at path. NULL with errno set. */
struct store *store_open(const char *path);
void store_close(struct store *st);

/* Creates a session and stores its id in *id. Returns 0 or a negative errno. */
int store_session_create(struct store *st, int kind, const char *name,
			 int64_t now_ms, uint64_t *id);

/* Creates a group session with users as members (duplicates ignored) in one
 * transaction. Returns 0 or a negative errno. */
int store_group_create(struct store *st, const char *name,
		       const char *const *users, size_t count, int64_t now_ms,
		       uint64_t *id);

/* Fills *out; free with store_session_clear(). Returns 0, -ENOENT or a
 * negative errno. */
int store_session_get(struct store *st, uint64_t id, struct store_session *out);
void store_session_clear(struct store_session *s);

/*
 * Finds or creates the one-to-one session of users a and b (a != b), with
 * both as members. *created is set to 1 when the session was created here. Returns 0 or a negative
 * errno.
 */
int store_direct_session(struct store *st, const char *a, const char *b,
			 int64_t now_ms, uint64_t *id, int *created);

/* Finds or creates the notice session of user, the target of server pushes,
 * with user as its only member. Returns as store_direct_session(). */
int store_notice_session(struct store *st, const char *user, int64_t now_ms,
			 uint64_t *id, int *created);

/* Returns 1 when user was added, 0 when already a member, or a negative
 * errno (-ENOENT for an unknown session). */
int store_member_add(struct store *st, uint64_t session_id, const char *user,
		     int64_t now_ms);

/* Returns 1 when user was removed, 0 when not a member, or a negative errno. */
int store_member_remove(struct store *st, uint64_t session_id,
			const char *user);

/* Stores the members, sorted, in a malloc'd array; free with
 * store_strings_free(). Returns 0 or a negative errno. */
int store_member_list(struct store *st, uint64_t session_id, char ***users,
		      size_t *count);
void store_strings_free(char **strings, size_t count);

/* Stores the sessions user is a member of, by id; free with
 * store_sessions_free(). Returns 0 or a negative errno. */
int store_user_sessions(struct store *st, const char *user,
			struct store_session **sessions, size_t *count);
/* Stores at most limit sessions of user, those with the latest message (or
 * creation, when a session has none) first. Returns as store_user_sessions(). */
int store_user_sessions_recent(struct store *st, const char *user,
			       unsigned int limit,
			       struct store_session **sessions, size_t *count);
void store_sessions_free(struct store_session *sessions, size_t count);

/*
 * Stores msg (its seq is ignored) in one transaction: a message with the same
 * session, sender and non-empty client_msg_id is a duplicate and returns the
 * stored seq and time. Otherwise the session's last_seq + 1 is assigned and
 * msg->time_ms is kept. Returns 0, -ENOENT for an unknown session, or a
 * negative errno; nothing is stored on failure.
 */
int store_message_append(struct store *st, const struct store_message *msg,
			 struct store_append_result *res);

/*
 * Group commit: store_batch_begin() opens a write transaction, each
 * store_message_add() in it appends one message as store_message_append()
 * does, and store_batch_commit() makes them all durable at once. A failed
 * add leaves the transaction open for the caller to roll back, because the
 * statements before the failure may have changed the database. A failed
 * commit rolls back. All return 0 or a negative errno.
 */
int store_batch_begin(struct store *st);
int store_message_add(struct store *st, const struct store_message *msg,
		      struct store_append_result *res);
int store_batch_commit(struct store *st);
void store_batch_rollback(struct store *st);

/*
 * Stores up to limit messages of a session with seq >= from_seq, in seq
 * order, in a malloc'd array; free with store_messages_free(). Returns 0 or a
 * negative errno.
 */
int store_messages_range(struct store *st, uint64_t session_id,
			 uint64_t from_seq, unsigned int limit,
			 struct store_message **messages, size_t *count);
void store_messages_free(struct store_message *messages, size_t count);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Cached session metadata and member sets. A session is loaded from the
 * store on first use and kept current by the calls below, which write the
 * store first and the cache after, so the cache never runs ahead of the disk.
 */
#ifndef BIZSVR_SESSION_H
#define BIZSVR_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include <uthash.h>

#include "store.h"

struct session_member {
	char *user_id;
	/* The member's presence entry (NULL when offline) as looked up at
	 * presence generation presence_generation; see presence.h. */
	struct presence_user *presence;
	uint64_t presence_generation;
	UT_hash_handle hh;
};

struct session {
	uint64_t id;
	int kind;                          /* enum store_kind */
	char *name;
	uint64_t last_seq;
	struct session_member *members;    /* uthash set by user_id */
	unsigned int member_count;
	int stale;                         /* reload on next session_get() */
	int64_t super_eval_ms;             /* last super rules check, monotonic */
	UT_hash_handle hh;
};

struct session_cache;

struct session_cache *session_cache_new(struct store *st);
void session_cache_free(struct session_cache *sc);

/* Returns the session, loading it when not cached, or NULL with errno
 * ENOENT or another error. */
struct session *session_get(struct session_cache *sc, uint64_t id);

int session_is_member(const struct session *s, const char *user_id);

/* Creates a group session with members (duplicates ignored). Returns it or
 * NULL with errno set. */
struct session *session_create_group(struct session_cache *sc,
				     const char *name,
				     const char *const *members, size_t count,
				     int64_t now_ms);

/* Finds or creates the direct session of a and b, or the notice session of
 * user. *created is set to 1 when the session was created here. NULL with errno set on failure. */
struct session *session_direct(struct session_cache *sc, const char *a,
			       const char *b, int64_t now_ms, int *created);
struct session *session_notice(struct session_cache *sc, const char *user,
			       int64_t now_ms, int *created);

/* Return 1 when the set changed, 0 when not, or a negative errno. */
int session_member_add(struct session_cache *sc, struct session *s,
		       const char *user_id, int64_t now_ms);
int session_member_remove(struct session_cache *sc, struct session *s,
			  const char *user_id);

/* Records a sequence number the store assigned. */
void session_note_seq(struct session *s, uint64_t seq);

size_t session_cache_count(const struct session_cache *sc);

#endif

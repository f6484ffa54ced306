// SPDX-License-Identifier: MIT
/* Session cache over the store; see session.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "session.h"

struct session_cache {
	struct store *store;
	struct session *sessions;      /* uthash by id */
};

struct session_cache *session_cache_new(struct store *st)
{
	struct session_cache *sc = calloc(1, sizeof(*sc));

	if (sc)
		sc->store = st;
	return sc;
}

static void session_free(struct session *s)
{
	struct session_member *m, *tmp;

	HASH_ITER(hh, s->members, m, tmp) {
		HASH_DEL(s->members, m);
		free(m->user_id);
		free(m);
	}
	free(s->name);
	free(s);
}

void session_cache_free(struct session_cache *sc)
{
	struct session *s, *tmp;

	if (!sc)
		return;
	HASH_ITER(hh, sc->sessions, s, tmp) {
		HASH_DEL(sc->sessions, s);
		session_free(s);
	}
	free(sc);
}

static struct session_member *session_member_find(const struct session *s,
						  const char *user_id)
{
	struct session_member *m;

	HASH_FIND_STR(s->members, user_id, m);
	return m;
}

int session_is_member(const struct session *s, const char *user_id)
{
	return session_member_find(s, user_id) != NULL;
}

/* Adds user_id to the cached set. Returns 1, 0 when present, or -ENOMEM. */
static int session_member_insert(struct session *s, const char *user_id)
{
	struct session_member *m;

	if (session_member_find(s, user_id))
		return 0;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->user_id = strdup(user_id);
	if (!m->user_id) {
		free(m);
		return -ENOMEM;
	}
	HASH_ADD_KEYPTR(hh, s->members, m->user_id, strlen(m->user_id), m);
	s->member_count++;
	return 1;
}

static int session_load_members(struct session_cache *sc, struct session *s)
{
	char **users;
	size_t n;
	int err;

	err = store_member_list(sc->store, s->id, &users, &n);
	if (err < 0)
		return err;
	for (size_t i = 0; i < n && err >= 0; i++)
		err = session_member_insert(s, users[i]);
	store_strings_free(users, n);
	return err < 0 ? err : 0;
}

static struct session *session_load(struct session_cache *sc, uint64_t id)
{
	struct store_session row;
	struct session *s;
	int err;

	err = store_session_get(sc->store, id, &row);
	if (err < 0) {
		errno = -err;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		store_session_clear(&row);
		errno = ENOMEM;
		return NULL;
	}
	s->id = row.id;
	s->kind = row.kind;
	s->name = row.name;         /* ownership moves to s */
	s->last_seq = row.last_seq;
	err = session_load_members(sc, s);
	if (err < 0) {
		session_free(s);
		errno = -err;
		return NULL;
	}
	/* XXX: Sessions stay cached until exit, so memory grows with the number of sessions used since start. */
	HASH_ADD(hh, sc->sessions, id, sizeof(s->id), s);
	return s;
}

struct session *session_get(struct session_cache *sc, uint64_t id)
{
	struct session *s;

	HASH_FIND(hh, sc->sessions, &id, sizeof(id), s);
	if (s && !s->stale)
		return s;
	if (s) {
		HASH_DEL(sc->sessions, s);
		session_free(s);
	}
	return session_load(sc, id);
}

struct session *session_create_group(struct session_cache *sc,
				     const char *name,
				     const char *const *members, size_t count,
				     int64_t now_ms)
{
	uint64_t id;
	int err;

	err = store_group_create(sc->store, name, members, count, now_ms, &id);
	if (err < 0) {
		errno = -err;
		return NULL;
	}
	return session_get(sc, id);
}

struct session *session_direct(struct session_cache *sc, const char *a,
			       const char *b, int64_t now_ms, int *created)
{
	uint64_t id;
	int err;

	err = store_direct_session(sc->store, a, b, now_ms, &id, created);
	if (err < 0) {
		errno = -err;
		return NULL;
	}
	return session_get(sc, id);
}

struct session *session_notice(struct session_cache *sc, const char *user,
			       int64_t now_ms, int *created)
{
	uint64_t id;
	int err;

	err = store_notice_session(sc->store, user, now_ms, &id, created);
	if (err < 0) {
		errno = -err;
		return NULL;
	}
	return session_get(sc, id);
}

int session_member_add(struct session_cache *sc, struct session *s,
		       const char *user_id, int64_t now_ms)
{
	int ret = store_member_add(sc->store, s->id, user_id, now_ms);

	if (ret <= 0)
		return ret;
	/* The store has the member: a cache that missed it would drop the
	 * member's pushes, so the next session_get() reloads the set. */
	if (session_member_insert(s, user_id) < 0) {
		pr_error("session %llu: caching member %s failed: %s; reloading the session on next use",
			 (unsigned long long)s->id, user_id, strerror(ENOMEM));
		s->stale = 1;
	}
	return 1;
}

int session_member_remove(struct session_cache *sc, struct session *s,
			  const char *user_id)
{
	struct session_member *m;
	int ret = store_member_remove(sc->store, s->id, user_id);

	if (ret <= 0)
		return ret;
	m = session_member_find(s, user_id);
	if (m) {
		HASH_DEL(s->members, m);
		s->member_count--;
		free(m->user_id);
		free(m);
	}
	return 1;
}

void session_note_seq(struct session *s, uint64_t seq)
{
	if (seq > s->last_seq)
		s->last_seq = seq;
}

size_t session_cache_count(const struct session_cache *sc)
{
	return HASH_COUNT(sc->sessions);
}

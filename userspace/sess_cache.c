// SPDX-License-Identifier: MIT
/*
 * Super-session caches; see sess_cache.h. A membership is stored twice: as
 * entry->members[i] = {conn, ref} and as conn->cache_refs[ref] = {entry, i}.
 * Both arrays are unordered and remove by swapping in the last element, and
 * the moved element's back index is fixed up, so add and remove cost
 * O(sessions of the connection) and never O(members of the session).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sess_cache.h"

#define SESS_CACHE_MIN_CAP 4

void sess_cache_init(struct sess_cache *sc,
		     const struct sess_cache_hooks *hooks, void *hook_arg)
{
	memset(sc, 0, sizeof(*sc));
	sc->hooks = hooks;
	sc->hook_arg = hook_arg;
}

struct sess_cache_entry *sess_cache_find(struct sess_cache *sc,
					 uint64_t session_id)
{
	struct sess_cache_entry *e;

	HASH_FIND(hh, sc->by_id, &session_id, sizeof(session_id), e);
	return e;
}

struct sess_cache_entry *sess_cache_create(struct sess_cache *sc,
					   uint64_t session_id,
					   uint32_t epoch)
{
	struct sess_cache_entry *e = sess_cache_find(sc, session_id);
	int err;

	if (e) {
		e->epoch = epoch;
		return e;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->session_id = session_id;
	e->epoch = epoch;
	if (sc->hooks && sc->hooks->session_create) {
		err = sc->hooks->session_create(sc->hook_arg, session_id);
		if (err) {
			free(e);
			errno = -err;
			return NULL;
		}
	}
	HASH_ADD(hh, sc->by_id, session_id, sizeof(e->session_id), e);
	sc->n_sessions++;
	return e;
}

/* Returns the index of e in c->cache_refs, or -1. */
static int conn_ref_find(const struct conn *c,
			 const struct sess_cache_entry *e)
{
	for (uint32_t i = 0; i < c->n_cache_refs; i++) {
		if (c->cache_refs[i].entry == e)
			return (int)i;
	}
	return -1;
}

int sess_cache_has(const struct sess_cache_entry *e, const struct conn *c)
{
	return conn_ref_find(c, e) >= 0;
}

/* Grows *array of *cap elements of size bytes to hold one more than n. */
static int grow(void **array, uint32_t *cap, uint32_t n, size_t size)
{
	uint32_t new_cap;
	void *p;

	if (n < *cap)
		return 0;
	if (*cap > UINT32_MAX / 2)
		return -ENOMEM;
	new_cap = *cap ? *cap * 2 : SESS_CACHE_MIN_CAP;
	p = realloc(*array, (size_t)new_cap * size);
	if (!p)
		return -ENOMEM;
	*array = p;
	*cap = new_cap;
	return 0;
}

int sess_cache_add(struct sess_cache *sc, struct sess_cache_entry *e,
		   struct conn *c)
{
	int err;

	if (sess_cache_has(e, c))
		return 0;
	err = grow((void **)&e->members, &e->cap_members, e->n_members,
		   sizeof(*e->members));
	if (!err)
		err = grow((void **)&c->cache_refs, &c->cap_cache_refs,
			   c->n_cache_refs, sizeof(*c->cache_refs));
	if (err)
		return err;
	if (sc->hooks && sc->hooks->conn_add) {
		err = sc->hooks->conn_add(sc->hook_arg, e->session_id, c);
		if (err)
			return err;
	}
	e->members[e->n_members] = (struct sess_cache_member){
		.conn = c,
		.ref = c->n_cache_refs,
	};
	c->cache_refs[c->n_cache_refs] = (struct conn_cache_ref){
		.entry = e,
		.index = e->n_members,
	};
	e->n_members++;
	c->n_cache_refs++;
	sc->n_members++;
	return 1;
}

/* Unlinks member index i of e, whose connection holds it at ref. */
static void unlink_member(struct sess_cache *sc, struct sess_cache_entry *e,
			  uint32_t i)
{
	struct conn *c = e->members[i].conn;
	uint32_t ref = e->members[i].ref;
	uint32_t last;

	last = --e->n_members;
	if (i != last) {
		e->members[i] = e->members[last];
		e->members[i].conn->cache_refs[e->members[i].ref].index = i;
	}
	last = --c->n_cache_refs;
	if (ref != last) {
		struct conn_cache_ref *moved = &c->cache_refs[last];

		c->cache_refs[ref] = *moved;
		moved = &c->cache_refs[ref];
		moved->entry->members[moved->index].ref = ref;
	}
	sc->n_members--;
}

int sess_cache_remove(struct sess_cache *sc, struct sess_cache_entry *e,
		      struct conn *c)
{
	int ref = conn_ref_find(c, e);

	if (ref < 0)
		return -ENOENT;
	unlink_member(sc, e, c->cache_refs[ref].index);
	if (sc->hooks && sc->hooks->conn_remove)
		sc->hooks->conn_remove(sc->hook_arg, e->session_id, c);
	return 0;
}

void sess_cache_drop(struct sess_cache *sc, struct sess_cache_entry *e)
{
	uint64_t session_id = e->session_id;

	while (e->n_members)
		unlink_member(sc, e, e->n_members - 1);
	HASH_DEL(sc->by_id, e);
	sc->n_sessions--;
	free(e->members);
	free(e);
	if (sc->hooks && sc->hooks->session_drop)
		sc->hooks->session_drop(sc->hook_arg, session_id);
}

void sess_cache_clear(struct sess_cache *sc)
{
	struct sess_cache_entry *e, *tmp;

	sess_cache_for_each(sc, e, tmp)
		sess_cache_drop(sc, e);
}

static int compare_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(struct conn *const *)a;
	uintptr_t y = (uintptr_t)*(struct conn *const *)b;

	return x < y ? -1 : x > y;
}

/* Removes the members of e that are not in the sorted array keep. */
static void remove_others(struct sess_cache *sc, struct sess_cache_entry *e,
			  struct conn **keep, size_t n)
{
	uint32_t i = e->n_members;

	/* Walk backwards: a removal only moves the last member. */
	while (i-- > 0) {
		struct conn *c = e->members[i].conn;

		if (n == 0 ||
		    !bsearch(&c, keep, n, sizeof(*keep), compare_ptr))
			sess_cache_remove(sc, e, c);
	}
}

int sess_cache_replace(struct sess_cache *sc, uint64_t session_id,
		       uint32_t epoch, struct conn *const *conns, size_t n)
{
	struct sess_cache_entry *e;
	struct conn **sorted = NULL;
	int err = 0;

	e = sess_cache_create(sc, session_id, epoch);
	if (!e)
		return -errno;
	if (n) {
		sorted = malloc(n * sizeof(*sorted));
		if (!sorted) {
			err = -ENOMEM;
			goto err_drop;
		}
		memcpy(sorted, conns, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), compare_ptr);
	}
	remove_others(sc, e, sorted, n);
	for (size_t i = 0; i < n; i++) {
		err = sess_cache_add(sc, e, sorted[i]);
		if (err < 0)
			goto err_drop;
	}
	free(sorted);
	return 0;

err_drop:
	free(sorted);
	sess_cache_drop(sc, e);
	return err;
}

void sess_cache_conn_gone(struct sess_cache *sc, struct conn *c)
{
	while (c->n_cache_refs) {
		struct sess_cache_entry *e = c->cache_refs[0].entry;

		unlink_member(sc, e, c->cache_refs[0].index);
		if (sc->hooks && sc->hooks->conn_remove)
			sc->hooks->conn_remove(sc->hook_arg, e->session_id, c);
	}
	free(c->cache_refs);
	c->cache_refs = NULL;
	c->cap_cache_refs = 0;
}

int sess_cache_update(struct sess_cache *sc, uint64_t session_id,
		      struct conn *const *add, size_t n_add,
		      struct conn *const *remove, size_t n_remove)
{
	struct sess_cache_entry *e = sess_cache_find(sc, session_id);
	int err = 0, rc;

	if (!e)
		return 0;
	for (size_t i = 0; i < n_add && !err; i++) {
		rc = sess_cache_add(sc, e, add[i]);
		if (rc < 0)
			err = rc;
	}
	for (size_t i = 0; i < n_remove; i++)
		sess_cache_remove(sc, e, remove[i]);
	return err;
}

int sess_cache_join(struct sess_cache *sc, struct conn *c,
		    const uint64_t *session_ids, size_t n)
{
	int joined = 0, rc;

	for (size_t i = 0; i < n; i++) {
		struct sess_cache_entry *e = sess_cache_find(sc,
							     session_ids[i]);

		if (!e)
			continue;
		rc = sess_cache_add(sc, e, c);
		if (rc < 0)
			return rc;
		joined += rc;
	}
	return joined;
}

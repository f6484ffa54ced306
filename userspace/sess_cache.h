/* SPDX-License-Identifier: MIT */
/*
 * Super-session caches: per session id, the local connections that a SUPER
 * broadcast goes to, and per connection the sessions whose cache holds it,
 * so a closing connection leaves every cache without a scan. Every change
 * goes through sess_cache_create(), sess_cache_drop(), sess_cache_add() and
 * sess_cache_remove(), which call an optional hook table: the kernel fast
 * path mirrors the caches into BPF maps through it. The module only stores
 * pointers, so it can be used and tested without sockets.
 */
#ifndef IMGW_SESS_CACHE_H
#define IMGW_SESS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include <uthash.h>

#include "conn.h"

struct sess_cache_member {
	struct conn *conn;
	uint32_t ref;           /* index in conn->cache_refs */
};

struct sess_cache_entry {
	uint64_t session_id;
	/* Epoch of the last upgrade applied to this cache. */
	uint32_t epoch;
	uint32_t n_members;
	uint32_t cap_members;
	struct sess_cache_member *members;
	UT_hash_handle hh;
};

/*
 * Mirror of every cache change. Any pointer may be NULL. session_create
 * and conn_add run before the change and may reject it with a negative
 * errno, so a mirror never holds less than the cache. conn_remove runs
 * after a connection left a cache; session_drop runs after the entry lost
 * all its members, without a conn_remove call per member.
 */
struct sess_cache_hooks {
	int (*session_create)(void *arg, uint64_t session_id);
	void (*session_drop)(void *arg, uint64_t session_id);
	int (*conn_add)(void *arg, uint64_t session_id, const struct conn *c);
	void (*conn_remove)(void *arg, uint64_t session_id,
			    const struct conn *c);
};

struct sess_cache {
	struct sess_cache_entry *by_id;
	size_t n_sessions;
	/* (session, connection) pairs over all caches. */
	size_t n_members;
	const struct sess_cache_hooks *hooks;
	void *hook_arg;
};

void sess_cache_init(struct sess_cache *sc,
		     const struct sess_cache_hooks *hooks, void *hook_arg);

struct sess_cache_entry *sess_cache_find(struct sess_cache *sc,
					 uint64_t session_id);

/*
 * Returns the cache of session_id, created empty when absent, with its
 * epoch set to epoch. Returns NULL with errno set when allocation or the
 * session_create hook failed.
 */
struct sess_cache_entry *sess_cache_create(struct sess_cache *sc,
					   uint64_t session_id,
					   uint32_t epoch);

/* Removes every member of e, then frees e. */
void sess_cache_drop(struct sess_cache *sc, struct sess_cache_entry *e);

/* Drops every cache. */
void sess_cache_clear(struct sess_cache *sc);

/*
 * Adds c to e. Returns 1 when added, 0 when c was a member already, or a
 * negative errno (-ENOMEM, or the conn_add hook's error).
 */
int sess_cache_add(struct sess_cache *sc, struct sess_cache_entry *e,
		   struct conn *c);

/* Removes c from e. Returns 0, or -ENOENT when c was not a member. */
int sess_cache_remove(struct sess_cache *sc, struct sess_cache_entry *e,
		      struct conn *c);

/* Returns whether c is a member of e. */
int sess_cache_has(const struct sess_cache_entry *e, const struct conn *c);

/*
 * Makes the cache of session_id exactly the n connections in conns
 * (duplicates allowed), creating it if needed, with epoch. On failure the
 * cache is dropped, so no SUPER broadcast uses a partial set, and a
 * negative errno is returned.
 */
int sess_cache_replace(struct sess_cache *sc, uint64_t session_id,
		       uint32_t epoch, struct conn *const *conns, size_t n);

/*
 * Applies a SESSION_CACHE change when session_id has a cache: adds the
 * connections in add, then removes those in remove, so a remove wins over
 * an add of the same connection. Without a cache nothing changes. Returns
 * 0, or a negative errno from an add that failed (the removes are done
 * anyway).
 */
int sess_cache_update(struct sess_cache *sc, uint64_t session_id,
		      struct conn *const *add, size_t n_add,
		      struct conn *const *remove, size_t n_remove);

/*
 * Adds c to the caches of those of the n sessions that have one (a login
 * with AuthResult.cache_sessions). Returns how many caches took c, or a
 * negative errno from the first add that failed.
 */
int sess_cache_join(struct sess_cache *sc, struct conn *c,
		    const uint64_t *session_ids, size_t n);

/* Removes c from every cache that holds it and frees c's list of them. */
void sess_cache_conn_gone(struct sess_cache *sc, struct conn *c);

#define sess_cache_for_each(sc, e, tmp) HASH_ITER(hh, (sc)->by_id, e, tmp)

#endif

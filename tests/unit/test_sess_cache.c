// SPDX-License-Identifier: MIT
/*
 * Unit tests of the gateway's super-session caches (userspace/sess_cache.c):
 * add and remove, replace on upgrade, drop, a closing connection leaving
 * every cache, and many sessions per connection. A recording hook table
 * checks that every change reaches the mirror, and that a rejecting hook
 * leaves the cache unchanged. The connections are bare structs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../userspace/sess_cache.h"

#define MAX_PAIRS 4096

/* A mirror of the caches built only from hook calls. */
struct mirror {
	uint64_t sessions[512];
	size_t n_sessions;
	struct {
		uint64_t session_id;
		uint64_t conn_id;
	} pairs[MAX_PAIRS];
	size_t n_pairs;
	int fail_add;           /* conn_add returns this when non-zero */
	int fail_create;
};

static int mirror_session_index(struct mirror *m, uint64_t session_id)
{
	for (size_t i = 0; i < m->n_sessions; i++) {
		if (m->sessions[i] == session_id)
			return (int)i;
	}
	return -1;
}

static int mirror_pair_index(struct mirror *m, uint64_t session_id,
			     uint64_t conn_id)
{
	for (size_t i = 0; i < m->n_pairs; i++) {
		if (m->pairs[i].session_id == session_id &&
		    m->pairs[i].conn_id == conn_id)
			return (int)i;
	}
	return -1;
}

static int hook_session_create(void *arg, uint64_t session_id)
{
	struct mirror *m = arg;

	if (m->fail_create)
		return m->fail_create;
	assert_int_equal(mirror_session_index(m, session_id), -1);
	m->sessions[m->n_sessions++] = session_id;
	return 0;
}

static void hook_session_drop(void *arg, uint64_t session_id)
{
	struct mirror *m = arg;
	int i = mirror_session_index(m, session_id);
	size_t j = 0;

	assert_true(i >= 0);
	m->sessions[i] = m->sessions[--m->n_sessions];
	/* A drop clears the session's member set without conn_remove calls. */
	for (size_t k = 0; k < m->n_pairs; k++) {
		if (m->pairs[k].session_id != session_id)
			m->pairs[j++] = m->pairs[k];
	}
	m->n_pairs = j;
}

static int hook_conn_add(void *arg, uint64_t session_id, const struct conn *c)
{
	struct mirror *m = arg;

	if (m->fail_add)
		return m->fail_add;
	assert_true(mirror_session_index(m, session_id) >= 0);
	assert_int_equal(mirror_pair_index(m, session_id, c->id), -1);
	assert_true(m->n_pairs < MAX_PAIRS);
	m->pairs[m->n_pairs].session_id = session_id;
	m->pairs[m->n_pairs].conn_id = c->id;
	m->n_pairs++;
	return 0;
}

static void hook_conn_remove(void *arg, uint64_t session_id,
			     const struct conn *c)
{
	struct mirror *m = arg;
	int i = mirror_pair_index(m, session_id, c->id);

	assert_true(i >= 0);
	m->pairs[i] = m->pairs[--m->n_pairs];
}

static const struct sess_cache_hooks mirror_hooks = {
	.session_create = hook_session_create,
	.session_drop = hook_session_drop,
	.conn_add = hook_conn_add,
	.conn_remove = hook_conn_remove,
};

struct fixture {
	struct sess_cache sc;
	struct mirror mirror;
	struct conn conns[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	for (size_t i = 0; i < 64; i++)
		f->conns[i].id = 1000 + i;
	sess_cache_init(&f->sc, &mirror_hooks, &f->mirror);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sess_cache_clear(&f->sc);
	assert_int_equal(f->sc.n_sessions, 0);
	assert_int_equal(f->sc.n_members, 0);
	assert_int_equal(f->mirror.n_sessions, 0);
	assert_int_equal(f->mirror.n_pairs, 0);
	for (size_t i = 0; i < 64; i++) {
		assert_int_equal(f->conns[i].n_cache_refs, 0);
		sess_cache_conn_gone(&f->sc, &f->conns[i]);
	}
	free(f);
	return 0;
}

/*
 * Checks that the two directions of every membership agree, that the
 * counters match, and that the mirror holds exactly the same pairs.
 */
static void check_consistent(struct fixture *f)
{
	struct sess_cache_entry *e, *tmp;
	size_t sessions = 0, pairs = 0;

	sess_cache_for_each(&f->sc, e, tmp) {
		sessions++;
		assert_true(mirror_session_index(&f->mirror,
						 e->session_id) >= 0);
		for (uint32_t i = 0; i < e->n_members; i++) {
			const struct sess_cache_member *m = &e->members[i];
			const struct conn *c = m->conn;

			assert_true(m->ref < c->n_cache_refs);
			assert_ptr_equal(c->cache_refs[m->ref].entry, e);
			assert_int_equal(c->cache_refs[m->ref].index, i);
			assert_true(mirror_pair_index(&f->mirror, e->session_id,
						      c->id) >= 0);
			pairs++;
		}
	}
	assert_int_equal(f->sc.n_sessions, sessions);
	assert_int_equal(f->sc.n_members, pairs);
	assert_int_equal(f->mirror.n_sessions, sessions);
	assert_int_equal(f->mirror.n_pairs, pairs);
}

static void add_remove(void **state)
{
	struct fixture *f = *state;
	struct sess_cache_entry *e;

	e = sess_cache_create(&f->sc, 7, 3);
	assert_non_null(e);
	assert_ptr_equal(sess_cache_find(&f->sc, 7), e);
	assert_null(sess_cache_find(&f->sc, 8));
	assert_int_equal(e->epoch, 3);

	assert_int_equal(sess_cache_add(&f->sc, e, &f->conns[0]), 1);
	assert_int_equal(sess_cache_add(&f->sc, e, &f->conns[1]), 1);
	assert_int_equal(sess_cache_add(&f->sc, e, &f->conns[2]), 1);
	assert_int_equal(sess_cache_add(&f->sc, e, &f->conns[1]), 0);
	assert_int_equal(e->n_members, 3);
	check_consistent(f);

	assert_int_equal(sess_cache_remove(&f->sc, e, &f->conns[0]), 0);
	assert_int_equal(sess_cache_remove(&f->sc, e, &f->conns[0]), -ENOENT);
	assert_false(sess_cache_has(e, &f->conns[0]));
	assert_true(sess_cache_has(e, &f->conns[1]));
	assert_true(sess_cache_has(e, &f->conns[2]));
	assert_int_equal(e->n_members, 2);
	check_consistent(f);

	/* An empty cache stays, so later adds still apply. */
	assert_int_equal(sess_cache_remove(&f->sc, e, &f->conns[1]), 0);
	assert_int_equal(sess_cache_remove(&f->sc, e, &f->conns[2]), 0);
	assert_ptr_equal(sess_cache_find(&f->sc, 7), e);
	assert_int_equal(e->n_members, 0);
	check_consistent(f);
}

static void create_existing_sets_epoch(void **state)
{
	struct fixture *f = *state;
	struct sess_cache_entry *e, *again;

	e = sess_cache_create(&f->sc, 7, 3);
	assert_int_equal(sess_cache_add(&f->sc, e, &f->conns[4]), 1);
	again = sess_cache_create(&f->sc, 7, 9);
	assert_ptr_equal(again, e);
	assert_int_equal(e->epoch, 9);
	assert_int_equal(e->n_members, 1);
	assert_int_equal(f->sc.n_sessions, 1);
	check_consistent(f);
}

static void replace_on_upgrade(void **state)
{
	struct fixture *f = *state;
	struct conn *first[] = { &f->conns[0], &f->conns[1], &f->conns[2],
				 &f->conns[3] };
	/* Overlaps first in 2 and 3, drops 0 and 1, duplicates 5. */
	struct conn *second[] = { &f->conns[5], &f->conns[3], &f->conns[2],
				  &f->conns[5], &f->conns[6] };
	struct sess_cache_entry *e;

	assert_int_equal(sess_cache_replace(&f->sc, 42, 10, first, 4), 0);
	e = sess_cache_find(&f->sc, 42);
	assert_non_null(e);
	assert_int_equal(e->epoch, 10);
	assert_int_equal(e->n_members, 4);
	check_consistent(f);

	assert_int_equal(sess_cache_replace(&f->sc, 42, 11, second, 5), 0);
	assert_ptr_equal(sess_cache_find(&f->sc, 42), e);
	assert_int_equal(e->epoch, 11);
	assert_int_equal(e->n_members, 4);
	assert_false(sess_cache_has(e, &f->conns[0]));
	assert_false(sess_cache_has(e, &f->conns[1]));
	assert_true(sess_cache_has(e, &f->conns[2]));
	assert_true(sess_cache_has(e, &f->conns[3]));
	assert_true(sess_cache_has(e, &f->conns[5]));
	assert_true(sess_cache_has(e, &f->conns[6]));
	assert_int_equal(f->conns[0].n_cache_refs, 0);
	check_consistent(f);

	/* An upgrade with no local connection leaves an empty cache. */
	assert_int_equal(sess_cache_replace(&f->sc, 42, 12, NULL, 0), 0);
	assert_int_equal(e->n_members, 0);
	assert_int_equal(e->epoch, 12);
	check_consistent(f);
}

static void replace_failure_drops_cache(void **state)
{
	struct fixture *f = *state;
	struct conn *conns[] = { &f->conns[0], &f->conns[1] };

	assert_int_equal(sess_cache_replace(&f->sc, 42, 1, conns, 2), 0);
	f->mirror.fail_add = -ENOSPC;
	conns[1] = &f->conns[9];
	assert_int_equal(sess_cache_replace(&f->sc, 42, 2, conns, 2), -ENOSPC);
	assert_null(sess_cache_find(&f->sc, 42));
	assert_int_equal(f->conns[0].n_cache_refs, 0);
	check_consistent(f);

	f->mirror.fail_add = 0;
	f->mirror.fail_create = -EPERM;
	assert_int_equal(sess_cache_replace(&f->sc, 43, 1, conns, 2), -EPERM);
	assert_null(sess_cache_find(&f->sc, 43));
	f->mirror.fail_create = 0;
	check_consistent(f);
}

static void rejected_add_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct sess_cache_entry *e = sess_cache_create(&f->sc, 5, 1);

	assert_int_equal(sess_cache_add(&f->sc, e, &f->conns[0]), 1);
	f->mirror.fail_add = -ENOSPC;
	assert_int_equal(sess_cache_add(&f->sc, e, &f->conns[1]), -ENOSPC);
	f->mirror.fail_add = 0;
	assert_false(sess_cache_has(e, &f->conns[1]));
	assert_int_equal(f->conns[1].n_cache_refs, 0);
	assert_int_equal(e->n_members, 1);
	check_consistent(f);
}

static void drop_frees_members(void **state)
{
	struct fixture *f = *state;
	struct sess_cache_entry *a = sess_cache_create(&f->sc, 1, 1);
	struct sess_cache_entry *b = sess_cache_create(&f->sc, 2, 1);

	for (size_t i = 0; i < 10; i++) {
		assert_int_equal(sess_cache_add(&f->sc, a, &f->conns[i]), 1);
		assert_int_equal(sess_cache_add(&f->sc, b, &f->conns[i]), 1);
	}
	check_consistent(f);
	sess_cache_drop(&f->sc, a);
	assert_null(sess_cache_find(&f->sc, 1));
	assert_int_equal(f->sc.n_sessions, 1);
	assert_int_equal(f->sc.n_members, 10);
	for (size_t i = 0; i < 10; i++) {
		assert_int_equal(f->conns[i].n_cache_refs, 1);
		assert_true(sess_cache_has(b, &f->conns[i]));
	}
	check_consistent(f);

	sess_cache_clear(&f->sc);
	assert_int_equal(f->sc.n_sessions, 0);
	assert_int_equal(f->sc.n_members, 0);
	check_consistent(f);
}

static void conn_gone_leaves_every_cache(void **state)
{
	struct fixture *f = *state;
	struct conn *gone = &f->conns[3];
	struct sess_cache_entry *e;

	for (uint64_t s = 1; s <= 5; s++) {
		e = sess_cache_create(&f->sc, s, 1);
		for (size_t i = 0; i < 8; i++)
			assert_int_equal(sess_cache_add(&f->sc, e,
							&f->conns[i]), 1);
	}
	assert_int_equal(gone->n_cache_refs, 5);
	sess_cache_conn_gone(&f->sc, gone);
	assert_int_equal(gone->n_cache_refs, 0);
	assert_null(gone->cache_refs);
	for (uint64_t s = 1; s <= 5; s++) {
		e = sess_cache_find(&f->sc, s);
		assert_non_null(e);
		assert_int_equal(e->n_members, 7);
		assert_false(sess_cache_has(e, gone));
	}
	assert_int_equal(f->sc.n_members, 35);
	check_consistent(f);
	/* Harmless on a connection in no cache. */
	sess_cache_conn_gone(&f->sc, gone);
	check_consistent(f);
}

static void add_without_cache_ignored(void **state)
{
	struct fixture *f = *state;
	struct conn *add[] = { &f->conns[0], &f->conns[1] };
	struct conn *remove[] = { &f->conns[2] };
	struct sess_cache_entry *e;

	/* SESSION_CACHE for a session without a cache: nothing appears. */
	assert_int_equal(sess_cache_update(&f->sc, 99, add, 2, remove, 1), 0);
	assert_null(sess_cache_find(&f->sc, 99));
	assert_int_equal(f->sc.n_sessions, 0);
	assert_int_equal(f->conns[0].n_cache_refs, 0);

	/* With a cache, adds apply and removes too. */
	e = sess_cache_create(&f->sc, 99, 4);
	assert_int_equal(sess_cache_add(&f->sc, e, &f->conns[2]), 1);
	assert_int_equal(sess_cache_update(&f->sc, 99, add, 2, remove, 1), 0);
	assert_true(sess_cache_has(e, &f->conns[0]));
	assert_true(sess_cache_has(e, &f->conns[1]));
	assert_false(sess_cache_has(e, &f->conns[2]));
	assert_int_equal(e->epoch, 4);
	check_consistent(f);

	/* A connection both added and removed in one update ends removed. */
	remove[0] = &f->conns[1];
	assert_int_equal(sess_cache_update(&f->sc, 99, add, 2, remove, 1), 0);
	assert_false(sess_cache_has(e, &f->conns[1]));
	check_consistent(f);
}

static void join_adds_only_held_caches(void **state)
{
	struct fixture *f = *state;
	const uint64_t sessions[] = { 10, 11, 12, 11 };
	struct conn *c = &f->conns[7];

	assert_non_null(sess_cache_create(&f->sc, 10, 1));
	assert_non_null(sess_cache_create(&f->sc, 12, 1));
	assert_int_equal(sess_cache_join(&f->sc, c, sessions, 4), 2);
	assert_true(sess_cache_has(sess_cache_find(&f->sc, 10), c));
	assert_true(sess_cache_has(sess_cache_find(&f->sc, 12), c));
	assert_null(sess_cache_find(&f->sc, 11));
	assert_int_equal(c->n_cache_refs, 2);
	/* Joining again changes nothing. */
	assert_int_equal(sess_cache_join(&f->sc, c, sessions, 4), 0);
	check_consistent(f);
}

static void many_sessions_per_conn(void **state)
{
	struct fixture *f = *state;
	const uint64_t n_sessions = 300;
	struct sess_cache_entry *e;

	for (uint64_t s = 1; s <= n_sessions; s++) {
		e = sess_cache_create(&f->sc, s, (uint32_t)s);
		assert_non_null(e);
		for (size_t i = 0; i < 10; i++)
			assert_int_equal(sess_cache_add(&f->sc, e,
							&f->conns[(s + i) % 64]),
					 1);
	}
	assert_int_equal(f->sc.n_sessions, n_sessions);
	assert_int_equal(f->sc.n_members, n_sessions * 10);
	/* Each connection is in 10 of every 64 consecutive sessions. */
	assert_true(f->conns[0].n_cache_refs >= 40);
	check_consistent(f);
	/* Remove in an order unlike the insert order, checking as we go. */
	for (size_t i = 0; i < 64; i += 2) {
		sess_cache_conn_gone(&f->sc, &f->conns[i]);
		check_consistent(f);
	}
	for (size_t i = 1; i < 64; i += 2) {
		while (f->conns[i].n_cache_refs) {
			e = f->conns[i].cache_refs[f->conns[i].n_cache_refs / 2]
				.entry;
			assert_int_equal(sess_cache_remove(&f->sc, e,
							   &f->conns[i]), 0);
		}
		check_consistent(f);
	}
	assert_int_equal(f->sc.n_members, 0);
}

/* Random operations against a plain matrix of who is in which cache. */
static void random_ops_match_model(void **state)
{
	struct fixture *f = *state;
	enum { SESSIONS = 16, CONNS = 64 };
	static uint8_t model[SESSIONS][CONNS];
	uint8_t held[SESSIONS] = { 0 };
	unsigned int seed = 12345;

	memset(model, 0, sizeof(model));
	for (int step = 0; step < 20000; step++) {
		unsigned int op = rand_r(&seed) % 100;
		unsigned int s = rand_r(&seed) % SESSIONS;
		unsigned int c = rand_r(&seed) % CONNS;
		struct sess_cache_entry *e = sess_cache_find(&f->sc, s + 1);

		assert_int_equal(e != NULL, held[s]);
		if (op < 5) {
			assert_non_null(sess_cache_create(&f->sc, s + 1, 1));
			held[s] = 1;
		} else if (op < 7 && e) {
			sess_cache_drop(&f->sc, e);
			memset(model[s], 0, CONNS);
			held[s] = 0;
		} else if (op < 9) {
			sess_cache_conn_gone(&f->sc, &f->conns[c]);
			for (int i = 0; i < SESSIONS; i++)
				model[i][c] = 0;
		} else if (op < 60 && e) {
			assert_int_equal(sess_cache_add(&f->sc, e,
							&f->conns[c]),
					 !model[s][c]);
			model[s][c] = 1;
		} else if (e) {
			assert_int_equal(sess_cache_remove(&f->sc, e,
							   &f->conns[c]),
					 model[s][c] ? 0 : -ENOENT);
			model[s][c] = 0;
		}
		if (step % 500 == 0)
			check_consistent(f);
	}
	for (int s = 0; s < SESSIONS; s++) {
		struct sess_cache_entry *e = sess_cache_find(&f->sc, s + 1);

		for (int c = 0; c < CONNS && e; c++)
			assert_int_equal(sess_cache_has(e, &f->conns[c]),
					 model[s][c]);
	}
	check_consistent(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(add_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(create_existing_sets_epoch,
						setup, teardown),
		cmocka_unit_test_setup_teardown(replace_on_upgrade, setup,
						teardown),
		cmocka_unit_test_setup_teardown(replace_failure_drops_cache,
						setup, teardown),
		cmocka_unit_test_setup_teardown(rejected_add_changes_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(drop_frees_members, setup,
						teardown),
		cmocka_unit_test_setup_teardown(conn_gone_leaves_every_cache,
						setup, teardown),
		cmocka_unit_test_setup_teardown(add_without_cache_ignored,
						setup, teardown),
		cmocka_unit_test_setup_teardown(join_adds_only_held_caches,
						setup, teardown),
		cmocka_unit_test_setup_teardown(many_sessions_per_conn, setup,
						teardown),
		cmocka_unit_test_setup_teardown(random_ops_match_model, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * Tests of the gateway's cache mirror (userspace/kmirror.c) against the real
 * BPF maps in a private bpffs: a long random run of cache changes (sessions
 * created, dropped and replaced, connections joining, leaving and closing)
 * with real TCP sockets, and after every step a dump of imgw_socks and
 * imgw_members compared with the sess_cache contents.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "imgw_fanout.skel.h"
#include "imgw_shared.h"
#include "../../userspace/kmirror.h"
#include "../../userspace/kpath.h"
#include "../../userspace/sess_cache.h"
#include "fanout_test_load.h"
#include "kpath_test_env.h"

#define N_CONNS 48
#define N_SESSIONS 6
#define CHURN_STEPS 3000

struct tconn {
	struct conn c;
	int cli_fd;
};

struct fixture {
	struct imgw_fanout *skel;
	struct kmirror *km;
	struct sess_cache sc;
	int lfd;
	struct sockaddr_in addr;
	struct tconn conns[N_CONNS];
	uint64_t next_id;
};

/* Gives slot t a fresh connection: a new id and a new TCP socket pair. */
static void tconn_open(struct fixture *f, struct tconn *t)
{
	memset(t, 0, sizeof(*t));
	t->cli_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(t->cli_fd >= 0);
	assert_int_equal(connect(t->cli_fd, (struct sockaddr *)&f->addr,
				 sizeof(f->addr)), 0);
	t->c.fd = accept(f->lfd, NULL, NULL);
	assert_true(t->c.fd >= 0);
	t->c.id = ++f->next_id;
	t->c.state = CONN_LOGGED_IN;
}

/* Closes t as the gateway does: caches first, then the sockhash. */
static void tconn_close(struct fixture *f, struct tconn *t)
{
	sess_cache_conn_gone(&f->sc, &t->c);
	kmirror_sock_release(f->km, &t->c);
	close(t->c.fd);
	close(t->cli_fd);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	socklen_t alen = sizeof(f->addr);
	char reason[256];
	struct kpath *kp;

	assert_non_null(f);
	assert_int_equal(fanout_load(&f->skel), 0);
	kp = kpath_open(TEST_PIN_DIR, reason, sizeof(reason));
	if (!kp)
		fail_msg("kpath_open: %s", reason);
	f->km = kmirror_new(kp);
	assert_non_null(f->km);
	sess_cache_init(&f->sc, &kmirror_hooks, f->km);
	f->addr.sin_family = AF_INET;
	f->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&f->addr,
			      sizeof(f->addr)), 0);
	assert_int_equal(listen(f->lfd, 128), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&f->addr,
				     &alen), 0);
	for (int i = 0; i < N_CONNS; i++)
		tconn_open(f, &f->conns[i]);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sess_cache_clear(&f->sc);
	for (int i = 0; i < N_CONNS; i++)
		tconn_close(f, &f->conns[i]);
	close(f->lfd);
	kmirror_free(f->km);
	bpf_object__unpin_maps(f->skel->obj, NULL);
	imgw_fanout__destroy(f->skel);
	free(f);
	return 0;
}

static struct tconn *tconn_by_key(struct fixture *f, uint64_t key)
{
	for (int i = 0; i < N_CONNS; i++) {
		if (kmirror_key(f->km, f->conns[i].c.id) == key)
			return &f->conns[i];
	}
	return NULL;
}

static uint64_t socket_cookie(int fd)
{
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);

	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len),
			 0);
	return cookie;
}

/* imgw_socks contains exactly the in_kpath connections, with their sockets. */
static void check_socks(struct fixture *f, int step)
{
	int fd = bpf_map__fd(f->skel->maps.imgw_socks);
	uint64_t key, next, cookie;
	void *prev = NULL;
	size_t in_map = 0, expected = 0;
	struct tconn *t;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		t = tconn_by_key(f, key);
		if (!t || !t->c.in_kpath)
			fail_msg("step %d: imgw_socks has key %#llx of no mirrored connection",
				 step, (unsigned long long)key);
		assert_int_equal(bpf_map_lookup_elem(fd, &key, &cookie), 0);
		assert_int_equal(cookie, socket_cookie(t->c.fd));
		in_map++;
	}
	for (int i = 0; i < N_CONNS; i++) {
		expected += f->conns[i].c.in_kpath;
		/* A cache member must be a redirect target. */
		if (f->conns[i].c.n_cache_refs && !f->conns[i].c.in_kpath)
			fail_msg("step %d: conn %llu is cached but not mirrored",
				 step, (unsigned long long)f->conns[i].c.id);
	}
	assert_int_equal(in_map, expected);
	assert_int_equal(f->km->stats.sockets, expected);
}

/* imgw_members contains exactly the (session, connection) pairs of the caches. */
static void check_members(struct fixture *f, int step)
{
	int fd = bpf_map__fd(f->skel->maps.imgw_members);
	struct imgw_member_key key, next;
	struct sess_cache_entry *e;
	void *prev = NULL;
	size_t in_map = 0;
	struct tconn *t;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		t = tconn_by_key(f, key.conn_id);
		e = sess_cache_find(&f->sc, key.session_id);
		if (!t || !e || !sess_cache_has(e, &t->c))
			fail_msg("step %d: imgw_members has session %llu key %#llx, which no cache holds",
				 step, (unsigned long long)key.session_id,
				 (unsigned long long)key.conn_id);
		in_map++;
	}
	assert_int_equal(in_map, f->sc.n_members);
}

static struct conn *random_conn(struct fixture *f)
{
	return &f->conns[rand() % N_CONNS].c;
}

/* Applies one random cache change, as the gateway's handlers would. */
static void churn_step(struct fixture *f)
{
	uint64_t sid = 1 + rand() % N_SESSIONS;
	struct sess_cache_entry *e = sess_cache_find(&f->sc, sid);
	struct conn *pick[8];
	size_t n;
	int op = rand() % 10;

	if (op == 0 && e) {
		sess_cache_drop(&f->sc, e);
	} else if (op <= 1 || !e) {
		n = rand() % 8;
		for (size_t i = 0; i < n; i++)
			pick[i] = random_conn(f);
		assert_int_equal(sess_cache_replace(&f->sc, sid, 1, pick, n),
				 0);
	} else if (op <= 5) {
		assert_true(sess_cache_add(&f->sc, e, random_conn(f)) >= 0);
	} else if (op <= 7) {
		sess_cache_remove(&f->sc, e, random_conn(f));
	} else if (op == 8) {
		struct tconn *t = &f->conns[rand() % N_CONNS];

		tconn_close(f, t);
		tconn_open(f, t);
		assert_true(sess_cache_join(&f->sc, &t->c, &sid, 1) >= 0);
	} else {
		struct tconn *t = &f->conns[rand() % N_CONNS];

		tconn_close(f, t);
		tconn_open(f, t);
	}
}

static void test_kmirror_random_churn(void **state)
{
	struct fixture *f = *state;
	unsigned int seed = (unsigned int)time(NULL);

	printf("kmirror churn seed %u\n", seed);
	srand(seed);
	for (int step = 0; step < CHURN_STEPS; step++) {
		churn_step(f);
		check_socks(f, step);
		check_members(f, step);
	}
	assert_int_equal(f->km->stats.mirror_failures, 0);
	assert_true(f->km->stats.mirror_ops > CHURN_STEPS);
	sess_cache_clear(&f->sc);
	check_socks(f, CHURN_STEPS);
	check_members(f, CHURN_STEPS);
}

/* A socket the sockhash rejects (UDP) makes the cache reject the add. */
static void test_kmirror_failed_add_rejects(void **state)
{
	struct fixture *f = *state;
	struct sess_cache_entry *e = sess_cache_create(&f->sc, 9, 1);
	struct conn udp = { .id = 1000000, .state = CONN_LOGGED_IN };
	int rc;

	assert_non_null(e);
	udp.fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(udp.fd >= 0);
	rc = sess_cache_add(&f->sc, e, &udp);
	assert_true(rc < 0);
	assert_int_equal(e->n_members, 0);
	assert_false(udp.in_kpath);
	assert_int_equal(f->km->stats.mirror_failures, 1);
	assert_int_equal(sess_cache_add(&f->sc, e, &f->conns[0].c), 1);
	check_socks(f, 0);
	check_members(f, 0);
	sess_cache_conn_gone(&f->sc, &udp);
	close(udp.fd);
}

/*
 * Two gateways on one host share the maps and both number connections from
 * 1: dropping a session in one must leave the other's entries alone.
 */
static void test_kmirror_two_gateways(void **state)
{
	struct fixture *f = *state;
	struct kmirror *other;
	struct sess_cache other_sc;
	struct sess_cache_entry *e;
	struct conn twin;
	char reason[256];
	struct kpath *kp;

	kp = kpath_open(TEST_PIN_DIR, reason, sizeof(reason));
	if (!kp)
		fail_msg("kpath_open: %s", reason);
	other = kmirror_new(kp);
	assert_non_null(other);
	assert_int_not_equal(other->key_tag, f->km->key_tag);
	sess_cache_init(&other_sc, &kmirror_hooks, other);
	twin = (struct conn){ .id = f->conns[0].c.id, .fd = f->conns[1].c.fd,
			      .state = CONN_LOGGED_IN };
	e = sess_cache_create(&f->sc, 5, 1);
	assert_int_equal(sess_cache_add(&f->sc, e, &f->conns[0].c), 1);
	e = sess_cache_create(&other_sc, 5, 1);
	assert_int_equal(sess_cache_add(&other_sc, e, &twin), 1);
	assert_int_equal(kpath_member_test(f->km->kp, 5,
					   kmirror_key(f->km, twin.id)), 1);
	sess_cache_drop(&other_sc, e);
	sess_cache_conn_gone(&other_sc, &twin);
	kmirror_sock_release(other, &twin);
	check_socks(f, 0);
	check_members(f, 0);
	assert_int_equal(f->sc.n_members, 1);
	sess_cache_clear(&other_sc);
	kmirror_free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kmirror_random_churn,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_kmirror_failed_add_rejects,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_kmirror_two_gateways,
						setup, teardown),
	};
	char reason[256];

	if (test_env_enter(reason, sizeof(reason))) {
		printf("skipped: %s\n", reason);
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}

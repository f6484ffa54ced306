// SPDX-License-Identifier: MIT
/*
 * Unit tests of userspace/sendring.c with real sockets and a real io_uring.
 * Output spread over many evbuffer chains arrives whole and in order, and
 * the byte limit cuts a send. A full socket reports -EAGAIN without
 * blocking, and a closed peer reports -EPIPE without SIGPIPE. A ring with
 * every entry or 4 MiB in use reports itself full. Each test skips when the
 * kernel rejects io_uring.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "../../userspace/sendring.h"

#define PAIRS 64
#define CHAINS 40               /* more than SENDRING_IOV */
#define CHAIN_LEN 100

/* Stands in for struct conn: sendring only hands the pointer back. */
struct fake_conn {
	int index;
	ssize_t res;
	int calls;
};

static void record_done(struct conn *c, ssize_t res)
{
	struct fake_conn *fc = (struct fake_conn *)c;

	fc->res = res;
	fc->calls++;
}

static struct sendring *ring_or_skip(void)
{
	struct sendring *sr = sendring_new();

	if (!sr) {
		print_message("skipped: io_uring unavailable: %s\n",
			      strerror(errno));
		skip();
	}
	return sr;
}

static void nonblocking_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
}

/* Appends CHAINS separate chains of CHAIN_LEN bytes; byte k of the whole
 * buffer is (seed + k) % 251. */
static void fill_chains(struct evbuffer *buf, int seed)
{
	static char data[PAIRS][CHAINS][CHAIN_LEN];

	for (int i = 0; i < CHAINS; i++) {
		for (int k = 0; k < CHAIN_LEN; k++)
			data[seed][i][k] = (char)((seed + i * CHAIN_LEN + k) % 251);
		assert_int_equal(evbuffer_add_reference(buf, data[seed][i],
							CHAIN_LEN, NULL, NULL),
				 0);
	}
}

static void check_received(int fd, int seed, size_t len)
{
	char got[CHAINS * CHAIN_LEN + 1];
	ssize_t n = recv(fd, got, sizeof(got), 0);

	assert_int_equal(n, (ssize_t)len);
	for (size_t k = 0; k < len; k++)
		assert_int_equal((unsigned char)got[k], (seed + k) % 251);
}

static void test_chains_sent_in_order(void **state)
{
	struct sendring *sr = ring_or_skip();
	struct fake_conn conns[PAIRS] = { 0 };
	struct evbuffer *bufs[PAIRS];
	int sv[PAIRS][2];
	size_t sent_len = (size_t)SENDRING_IOV * CHAIN_LEN;

	(void)state;
	for (int i = 0; i < PAIRS; i++) {
		nonblocking_pair(sv[i]);
		bufs[i] = evbuffer_new();
		fill_chains(bufs[i], i);
		conns[i].index = i;
		assert_int_equal(sendring_add(sr, (struct conn *)&conns[i],
					      sv[i][0], bufs[i], 1 << 20),
				 0);
	}
	assert_int_equal(sendring_submit(sr, record_done), 0);
	for (int i = 0; i < PAIRS; i++) {
		/* One entry carries at most SENDRING_IOV chains. */
		assert_int_equal(conns[i].calls, 1);
		assert_int_equal(conns[i].res, (ssize_t)sent_len);
		check_received(sv[i][1], i, sent_len);
		evbuffer_free(bufs[i]);
		close(sv[i][0]);
		close(sv[i][1]);
	}
	sendring_free(sr);
}

static void test_max_bytes_cuts_send(void **state)
{
	struct sendring *sr = ring_or_skip();
	struct evbuffer *buf = evbuffer_new();
	struct fake_conn fc = { 0 };
	int sv[2];
	size_t max = CHAIN_LEN * 3 + 17;

	(void)state;
	nonblocking_pair(sv);
	fill_chains(buf, 5);
	assert_int_equal(sendring_add(sr, (struct conn *)&fc, sv[0], buf, max),
			 0);
	assert_int_equal(sendring_submit(sr, record_done), 0);
	assert_int_equal(fc.calls, 1);
	assert_int_equal(fc.res, (ssize_t)max);
	check_received(sv[1], 5, max);
	evbuffer_free(buf);
	close(sv[0]);
	close(sv[1]);
	sendring_free(sr);
}

static void test_full_socket_eagain(void **state)
{
	struct sendring *sr = ring_or_skip();
	struct evbuffer *buf = evbuffer_new();
	struct fake_conn fc = { 0 };
	char filler[4096] = { 0 };
	int sv[2];

	(void)state;
	nonblocking_pair(sv);
	while (send(sv[0], filler, sizeof(filler), MSG_DONTWAIT) > 0)
		;
	assert_int_equal(errno, EAGAIN);
	fill_chains(buf, 1);
	assert_int_equal(sendring_add(sr, (struct conn *)&fc, sv[0], buf,
				      1 << 20),
			 0);
	/* A blocking send would hang here; the entry must fail at once. */
	assert_int_equal(sendring_submit(sr, record_done), 0);
	assert_int_equal(fc.calls, 1);
	assert_int_equal(fc.res, -EAGAIN);
	evbuffer_free(buf);
	close(sv[0]);
	close(sv[1]);
	sendring_free(sr);
}

static void test_closed_peer_epipe(void **state)
{
	struct sendring *sr = ring_or_skip();
	struct evbuffer *buf = evbuffer_new();
	struct fake_conn fc = { 0 };
	int sv[2];

	(void)state;
	nonblocking_pair(sv);
	close(sv[1]);
	fill_chains(buf, 2);
	assert_int_equal(sendring_add(sr, (struct conn *)&fc, sv[0], buf,
				      1 << 20),
			 0);
	/* MSG_NOSIGNAL: without it SIGPIPE would end this test program. */
	assert_int_equal(sendring_submit(sr, record_done), 0);
	assert_int_equal(fc.calls, 1);
	assert_int_equal(fc.res, -EPIPE);
	evbuffer_free(buf);
	close(sv[0]);
	sendring_free(sr);
}

static void test_full_ring_rejects(void **state)
{
	struct sendring *sr = ring_or_skip();
	struct fake_conn *conns = calloc(SENDRING_ENTRIES, sizeof(*conns));
	struct evbuffer *buf = evbuffer_new();
	struct fake_conn extra = { 0 };
	char filler[4096];
	int sv[2], calls = 0;

	(void)state;
	assert_non_null(conns);
	nonblocking_pair(sv);
	assert_int_equal(evbuffer_add(buf, "x", 1), 0);
	/* Every entry sends the same byte: nothing drains between them. */
	for (int i = 0; i < SENDRING_ENTRIES; i++)
		assert_int_equal(sendring_add(sr, (struct conn *)&conns[i],
					      sv[0], buf, 1),
				 0);
	assert_int_equal(sendring_add(sr, (struct conn *)&extra, sv[0], buf, 1),
			 -ENOSPC);
	assert_int_equal(sendring_submit(sr, record_done), 0);
	/* The socket buffer may fill before the last entries run. */
	for (int i = 0; i < SENDRING_ENTRIES; i++) {
		assert_true(conns[i].res == 1 || conns[i].res == -EAGAIN);
		calls += conns[i].calls;
	}
	assert_int_equal(calls, SENDRING_ENTRIES);
	assert_int_equal(extra.calls, 0);
	/* The ring takes new sends after a submit. */
	while (recv(sv[1], filler, sizeof(filler), MSG_DONTWAIT) > 0)
		;
	assert_int_equal(sendring_add(sr, (struct conn *)&extra, sv[0], buf, 1),
			 0);
	assert_int_equal(sendring_submit(sr, record_done), 0);
	assert_int_equal(extra.res, 1);
	evbuffer_free(buf);
	free(conns);
	close(sv[0]);
	close(sv[1]);
	sendring_free(sr);
}

static void test_byte_bound_marks_full(void **state)
{
	static char big[1 << 20];
	struct sendring *sr = ring_or_skip();
	struct evbuffer *buf = evbuffer_new();
	struct fake_conn conns[4] = { 0 };
	int sv[2];

	(void)state;
	nonblocking_pair(sv);
	assert_int_equal(evbuffer_add_reference(buf, big, sizeof(big), NULL,
						NULL),
			 0);
	assert_false(sendring_pending(sr));
	/* Four entries of 1 MiB reach SENDRING_MAX_BYTES (4 MiB). */
	for (int i = 0; i < 4; i++) {
		assert_false(sendring_full(sr));
		assert_int_equal(sendring_add(sr, (struct conn *)&conns[i],
					      sv[0], buf, sizeof(big)),
				 0);
		assert_true(sendring_pending(sr));
	}
	assert_true(sendring_full(sr));
	assert_int_equal(sendring_submit(sr, record_done), 0);
	assert_false(sendring_full(sr));
	assert_false(sendring_pending(sr));
	for (int i = 0; i < 4; i++)
		assert_int_equal(conns[i].calls, 1);
	evbuffer_free(buf);
	close(sv[0]);
	close(sv[1]);
	sendring_free(sr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chains_sent_in_order),
		cmocka_unit_test(test_max_bytes_cuts_send),
		cmocka_unit_test(test_full_socket_eagain),
		cmocka_unit_test(test_closed_peer_epipe),
		cmocka_unit_test(test_full_ring_rejects),
		cmocka_unit_test(test_byte_bound_marks_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

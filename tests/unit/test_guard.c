// SPDX-License-Identifier: MIT
/*
 * Tests of the login-failure guard (userspace/guard.c): the counting table
 * (threshold, window, LRU bound) with a clock the test sets, the source
 * address rules, and, with root and BPF, that reaching the limit puts the
 * source's /32 or /128 with the right expiry into the XDP guard's real
 * blocklist maps, pinned in a private bpffs, and that the XDP program then
 * drops its packets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../../userspace/guard.h"
#include "imgw_guard.skel.h"
#include "imgw_shared.h"
#include "kpath_test_env.h"
#include "log.h"

#define SEC_NS 1000000000ULL
#define WINDOW_NS (60 * SEC_NS)
#define THRESHOLD 20
/* A monotonic time far from 0, so windows never start at 0. */
#define T0 (1000 * SEC_NS)

static int bpf_ready;
static char bpf_reason[256];

static struct guard_source src_v4(uint8_t last)
{
	struct guard_source s = { .family = 4, .addr = { 203, 0, 113, last } };

	return s;
}

static void test_table_threshold(void **state)
{
	struct guard_table *t = guard_table_new(THRESHOLD, WINDOW_NS, 16);
	struct guard_source s = src_v4(1);
	unsigned int failures = 0;

	(void)state;
	assert_non_null(t);
	for (unsigned int i = 1; i < THRESHOLD; i++) {
		assert_int_equal(guard_table_fail(t, &s, T0 + i * SEC_NS,
						  &failures), 0);
		assert_int_equal(failures, i);
	}
	assert_int_equal(guard_table_fail(t, &s, T0 + 59 * SEC_NS, &failures),
			 1);
	assert_int_equal(failures, THRESHOLD);
	/* After a report the source counts from 0 again. */
	assert_int_equal(guard_table_failures(t, &s, T0 + 59 * SEC_NS), 0);
	assert_int_equal(guard_table_fail(t, &s, T0 + 59 * SEC_NS, &failures),
			 0);
	assert_int_equal(failures, 1);
	guard_table_free(t);
}

static void test_table_window_expiry(void **state)
{
	struct guard_table *t = guard_table_new(THRESHOLD, WINDOW_NS, 16);
	struct guard_source s = src_v4(2);
	unsigned int failures = 0;

	(void)state;
	assert_non_null(t);
	for (unsigned int i = 0; i < THRESHOLD - 1; i++)
		assert_int_equal(guard_table_fail(t, &s, T0, &failures), 0);
	/* One nanosecond before the end of the window the count is kept. */
	assert_int_equal(guard_table_failures(t, &s, T0 + WINDOW_NS - 1),
			 THRESHOLD - 1);
	/* At the end of the window the old failures are gone. */
	assert_int_equal(guard_table_failures(t, &s, T0 + WINDOW_NS), 0);
	assert_int_equal(guard_table_fail(t, &s, T0 + WINDOW_NS, &failures), 0);
	assert_int_equal(failures, 1);
	for (unsigned int i = 2; i < THRESHOLD; i++)
		assert_int_equal(guard_table_fail(t, &s, T0 + WINDOW_NS + i,
						  &failures), 0);
	assert_int_equal(guard_table_fail(t, &s, T0 + 2 * WINDOW_NS - 1,
					  &failures), 1);
	guard_table_free(t);
}

static void test_table_sources_apart(void **state)
{
	struct guard_table *t = guard_table_new(3, WINDOW_NS, 16);
	struct guard_source a = src_v4(3), b = src_v4(4);
	struct guard_source a6 = { .family = 6 };
	unsigned int failures;

	(void)state;
	assert_non_null(t);
	memcpy(a6.addr, a.addr, 4);
	assert_int_equal(guard_table_fail(t, &a, T0, &failures), 0);
	assert_int_equal(guard_table_fail(t, &b, T0, &failures), 0);
	assert_int_equal(guard_table_fail(t, &a6, T0, &failures), 0);
	assert_int_equal(guard_table_fail(t, &a, T0, &failures), 0);
	assert_int_equal(guard_table_failures(t, &b, T0), 1);
	assert_int_equal(guard_table_failures(t, &a6, T0), 1);
	assert_int_equal(guard_table_fail(t, &a, T0, &failures), 1);
	assert_int_equal(guard_table_size(t), 3);
	guard_table_free(t);
}

static void test_table_lru_bound(void **state)
{
	struct guard_table *t = guard_table_new(THRESHOLD, WINDOW_NS, 8);
	unsigned int failures;
	struct guard_source s;

	(void)state;
	assert_non_null(t);
	for (uint8_t i = 0; i < 8; i++) {
		s = src_v4(i);
		assert_int_equal(guard_table_fail(t, &s, T0 + i, &failures), 0);
	}
	/* Source 0 fails again, so source 1 is now the least recent. */
	s = src_v4(0);
	assert_int_equal(guard_table_fail(t, &s, T0 + 10, &failures), 0);
	s = src_v4(100);
	assert_int_equal(guard_table_fail(t, &s, T0 + 11, &failures), 0);
	assert_int_equal(guard_table_size(t), 8);
	s = src_v4(1);
	assert_int_equal(guard_table_failures(t, &s, T0 + 12), 0);
	s = src_v4(0);
	assert_int_equal(guard_table_failures(t, &s, T0 + 12), 2);
	s = src_v4(2);
	assert_int_equal(guard_table_failures(t, &s, T0 + 12), 1);
	guard_table_free(t);
}

static void test_table_full_size(void **state)
{
	struct guard_table *t = guard_table_new(THRESHOLD, WINDOW_NS,
						GUARD_MAX_SOURCES);
	struct guard_source s = { .family = 6 };
	unsigned int failures;

	(void)state;
	assert_non_null(t);
	for (uint32_t i = 0; i < 3 * GUARD_MAX_SOURCES; i++) {
		memcpy(s.addr, &i, sizeof(i));
		assert_int_equal(guard_table_fail(t, &s, T0, &failures), 0);
		assert_true(guard_table_size(t) <= GUARD_MAX_SOURCES);
	}
	assert_int_equal(guard_table_size(t), GUARD_MAX_SOURCES);
	guard_table_free(t);
}

static void test_table_rejects_zero(void **state)
{
	(void)state;
	assert_null(guard_table_new(0, WINDOW_NS, 8));
	assert_null(guard_table_new(THRESHOLD, 0, 8));
	assert_null(guard_table_new(THRESHOLD, WINDOW_NS, 0));
}

static void sockaddr_v4(struct sockaddr_storage *ss, const char *text)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, text, &sin->sin_addr), 1);
}

static void sockaddr_v6(struct sockaddr_storage *ss, const char *text)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
}

static void test_source_addresses(void **state)
{
	static const uint8_t v4[4] = { 198, 51, 100, 9 };
	struct sockaddr_storage ss;
	struct guard_source s;

	(void)state;
	sockaddr_v6(&ss, "::ffff:198.51.100.9");
	assert_int_equal(guard_source_from_sockaddr(&s, (struct sockaddr *)&ss), 0);
	assert_int_equal(s.family, 4);
	assert_memory_equal(s.addr, v4, 4);
	assert_false(guard_source_is_loopback(&s));

	sockaddr_v6(&ss, "::ffff:127.0.0.5");
	assert_int_equal(guard_source_from_sockaddr(&s, (struct sockaddr *)&ss), 0);
	assert_true(guard_source_is_loopback(&s));
	sockaddr_v4(&ss, "127.1.2.3");
	assert_int_equal(guard_source_from_sockaddr(&s, (struct sockaddr *)&ss), 0);
	assert_true(guard_source_is_loopback(&s));
	sockaddr_v6(&ss, "::1");
	assert_int_equal(guard_source_from_sockaddr(&s, (struct sockaddr *)&ss), 0);
	assert_int_equal(s.family, 6);
	assert_true(guard_source_is_loopback(&s));
	sockaddr_v6(&ss, "2001:db8::1");
	assert_int_equal(guard_source_from_sockaddr(&s, (struct sockaddr *)&ss), 0);
	assert_false(guard_source_is_loopback(&s));

	ss.ss_family = AF_UNIX;
	assert_int_equal(guard_source_from_sockaddr(&s, (struct sockaddr *)&ss),
			 -EAFNOSUPPORT);
}

static void test_guard_disabled(void **state)
{
	struct guard_settings set = { .block_after = 0, .block_window = 60,
				      .block_ttl = 300 };
	struct guard *g = guard_new(&set, "/nonexistent/imgw-guard-test");
	struct sockaddr_storage ss;

	(void)state;
	assert_non_null(g);
	sockaddr_v4(&ss, "198.51.100.1");
	for (int i = 0; i < 50; i++)
		assert_int_equal(guard_note_failure(g, (struct sockaddr *)&ss, T0), 0);
	assert_int_equal(guard_get_stats(g)->failures, 0);
	guard_free(g);
}

static void test_guard_without_maps(void **state)
{
	struct guard_settings set = { .block_after = 3, .block_window = 60,
				      .block_ttl = 300 };
	struct guard *g = guard_new(&set, "/nonexistent/imgw-guard-test");
	struct sockaddr_storage ss;

	(void)state;
	assert_non_null(g);
	assert_false(guard_can_block(g));
	sockaddr_v4(&ss, "198.51.100.1");
	for (int i = 0; i < 3; i++)
		assert_int_equal(guard_note_failure(g, (struct sockaddr *)&ss, T0), 0);
	assert_int_equal(guard_get_stats(g)->failures, 3);
	assert_int_equal(guard_get_stats(g)->skipped_no_map, 1);
	assert_int_equal(guard_get_stats(g)->blocked, 0);
	guard_free(g);
}

/* Builds an Ethernet + IPv4 + TCP SYN from src and runs the XDP guard on it. */
static int xdp_verdict_v4(struct imgw_guard *skel, const char *src)
{
	struct {
		struct ethhdr eth;
		struct iphdr ip;
		struct tcphdr tcp;
	} __attribute__((packed)) p = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = &p,
		    .data_size_in = sizeof(p), .repeat = 1);

	p.eth.h_proto = htons(ETH_P_IP);
	p.ip.version = 4;
	p.ip.ihl = 5;
	p.ip.ttl = 64;
	p.ip.protocol = IPPROTO_TCP;
	p.ip.tot_len = htons(sizeof(p.ip) + sizeof(p.tcp));
	inet_pton(AF_INET, src, &p.ip.saddr);
	inet_pton(AF_INET, "192.0.2.1", &p.ip.daddr);
	p.tcp.source = htons(40000);
	p.tcp.dest = htons(7070);
	p.tcp.doff = 5;
	p.tcp.syn = 1;
	assert_int_equal(bpf_prog_test_run_opts(
				 bpf_program__fd(skel->progs.imgw_guard), &opts), 0);
	return (int)opts.retval;
}

static struct imgw_guard *guard_skel_load(void)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = TEST_PIN_DIR);
	struct imgw_guard *skel = imgw_guard__open_opts(&opts);

	assert_non_null(skel);
	assert_int_equal(imgw_guard__load(skel), 0);
	return skel;
}

static void guard_skel_unload(struct imgw_guard *skel)
{
	bpf_object__unpin_maps(skel->obj, NULL);
	imgw_guard__destroy(skel);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SEC_NS + (uint64_t)ts.tv_nsec;
}

static void test_guard_blocks_in_map(void **state)
{
	struct guard_settings set = { .block_after = 5, .block_window = 60,
				      .block_ttl = 300 };
	struct imgw_lpm_v4 key4 = { .prefixlen = 32 };
	struct imgw_lpm_v6 key6 = { .prefixlen = 128 };
	struct imgw_block val = { 0 };
	struct sockaddr_storage ss;
	struct imgw_guard *skel;
	uint64_t now = mono_ns();
	struct guard *g;

	(void)state;
	if (!bpf_ready) {
		printf("skipped: %s\n", bpf_reason);
		skip();
	}
	skel = guard_skel_load();
	g = guard_new(&set, TEST_PIN_DIR);
	assert_non_null(g);
	assert_true(guard_can_block(g));

	sockaddr_v4(&ss, "203.0.113.77");
	assert_int_equal(xdp_verdict_v4(skel, "203.0.113.77"), XDP_PASS);
	for (int i = 0; i < 4; i++)
		assert_int_equal(guard_note_failure(g, (struct sockaddr *)&ss, now), 0);
	inet_pton(AF_INET, "203.0.113.77", key4.addr);
	assert_int_not_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.imgw_block_v4),
						 &key4, &val), 0);
	assert_int_equal(guard_note_failure(g, (struct sockaddr *)&ss, now), 1);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.imgw_block_v4),
					     &key4, &val), 0);
	assert_int_equal(val.expires_ns, now + 300 * SEC_NS);
	assert_int_equal(xdp_verdict_v4(skel, "203.0.113.77"), XDP_DROP);
	assert_int_equal(xdp_verdict_v4(skel, "203.0.113.78"), XDP_PASS);

	sockaddr_v6(&ss, "2001:db8:7::9");
	for (int i = 0; i < 5; i++)
		guard_note_failure(g, (struct sockaddr *)&ss, now + SEC_NS);
	inet_pton(AF_INET6, "2001:db8:7::9", key6.addr);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.imgw_block_v6),
					     &key6, &val), 0);
	assert_int_equal(val.expires_ns, now + 301 * SEC_NS);

	/* Loopback reaches the limit but never enters the map. */
	sockaddr_v4(&ss, "127.0.0.1");
	for (int i = 0; i < 5; i++)
		assert_int_equal(guard_note_failure(g, (struct sockaddr *)&ss, now), 0);
	inet_pton(AF_INET, "127.0.0.1", key4.addr);
	assert_int_not_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.imgw_block_v4),
						 &key4, &val), 0);

	assert_int_equal(guard_get_stats(g)->blocked, 2);
	assert_int_equal(guard_get_stats(g)->skipped_loopback, 1);
	assert_int_equal(guard_get_stats(g)->map_errors, 0);
	guard_free(g);
	guard_skel_unload(skel);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_threshold),
		cmocka_unit_test(test_table_window_expiry),
		cmocka_unit_test(test_table_sources_apart),
		cmocka_unit_test(test_table_lru_bound),
		cmocka_unit_test(test_table_full_size),
		cmocka_unit_test(test_table_rejects_zero),
		cmocka_unit_test(test_source_addresses),
		cmocka_unit_test(test_guard_disabled),
		cmocka_unit_test(test_guard_without_maps),
		cmocka_unit_test(test_guard_blocks_in_map),
	};

	log_init("test_guard", LOG_LEVEL_WARN);
	bpf_ready = test_env_enter(bpf_reason, sizeof(bpf_reason)) == 0;
	return cmocka_run_group_tests(tests, NULL, NULL);
}

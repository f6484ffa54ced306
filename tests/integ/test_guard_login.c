// SPDX-License-Identifier: MIT
/*
 * End-to-end test of the login guard: a real gateway with --block-after 5
 * over BPF objects that imgw-loader pins into a private bpffs. The test runs
 * in its own network namespace, where lo also carries 10.200.0.2, so the
 * clients can log in from a source that is not loopback. After five failed
 * logins from that source its /32 must be in the pinned imgw_block_v4 map
 * with an expiry of --block-ttl seconds, counted in the metrics, while five
 * failed logins from 127.0.0.1 block nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>

#include "harness.h"
#include "imgw_shared.h"
#include "../unit/kpath_test_env.h"

#define SOURCE_ADDR "10.200.0.2"
#define BLOCK_AFTER "5"
#define BLOCK_TTL_SEC 120
#define STRINGIFY(x) #x
#define TO_STRING(x) STRINGIFY(x)

static const char *const gw_args[] = {
	"--bpf-pin-dir", TEST_PIN_DIR, "--block-after", BLOCK_AFTER,
	"--block-window", "60", "--block-ttl", TO_STRING(BLOCK_TTL_SEC), NULL,
};

/* Connects to gateway 0 from source (bound before connect), logs in with
 * a forged token and checks that the login fails with AUTH_FAILED. */
static void login_forged(struct harness *h, const char *source)
{
	struct sockaddr_in local = { .sin_family = AF_INET };
	struct sockaddr_in gw = { .sin_family = AF_INET };
	Imgw__LoginResult *res = NULL;
	struct client *c;
	int fd, err;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	H_CHECK(fd >= 0, "socket failed: %s", strerror(errno));
	inet_pton(AF_INET, source, &local.sin_addr);
	H_CHECK(bind(fd, (struct sockaddr *)&local, sizeof(local)) == 0,
		"bind to %s failed: %s", source, strerror(errno));
	gw.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	gw.sin_port = htons(h->gw[0].port);
	H_CHECK(connect(fd, (struct sockaddr *)&gw, sizeof(gw)) == 0,
		"connect from %s failed: %s", source, strerror(errno));
	c = calloc(1, sizeof(*c));
	H_CHECK(c != NULL, "out of memory");
	c->fd = fd;
	c->next_request_id = 1;
	err = client_login(c, "v1.forged.token", "mallory", "d1", "test",
			   HARNESS_WAIT_MS, &res);
	H_CHECK(res != NULL, "login from %s got no LOGIN_RESULT: %s", source,
		strerror(-err));
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_AUTH_FAILED,
		"login from %s: code %d, expected AUTH_FAILED", source,
		(int)res->code);
	imgw__login_result__free_unpacked(res, NULL);
	client_close(c);
}

static int block_lookup(const char *addr, struct imgw_block *val)
{
	struct imgw_lpm_v4 key = { .prefixlen = 32 };
	char path[PATH_MAX];
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/imgw_block_v4", TEST_PIN_DIR);
	fd = bpf_obj_get(path);
	H_CHECK(fd >= 0, "cannot open %s: %s", path, strerror(errno));
	inet_pton(AF_INET, addr, key.addr);
	if (bpf_map_lookup_elem(fd, &key, val))
		err = -errno;
	close(fd);
	return err;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void test_guard_login_blocks(void **state)
{
	const struct gw_options opt = { .args = gw_args };
	struct harness *h = harness_start(1, &opt);
	struct imgw_block val;
	uint64_t before, after;
	int threshold = atoi(BLOCK_AFTER);

	(void)state;
	H_CHECK(harness_metric(&h->gw[0], "imgw_login_guard_blocking") == 1,
		"the gateway did not open the blocklist maps in %s",
		TEST_PIN_DIR);

	/* Loopback reaches the limit and is never blocked. */
	for (int i = 0; i < threshold; i++)
		login_forged(h, "127.0.0.1");
	assert_int_equal(block_lookup("127.0.0.1", &val), -ENOENT);

	for (int i = 0; i < threshold - 1; i++)
		login_forged(h, SOURCE_ADDR);
	assert_int_equal(block_lookup(SOURCE_ADDR, &val), -ENOENT);
	assert_int_equal(harness_metric(&h->gw[0], "imgw_sources_blocked_total"), 0);

	before = mono_ns();
	login_forged(h, SOURCE_ADDR);
	after = mono_ns();
	assert_int_equal(block_lookup(SOURCE_ADDR, &val), 0);
	assert_true(val.expires_ns >= before + BLOCK_TTL_SEC * 1000000000ULL);
	assert_true(val.expires_ns <= after + BLOCK_TTL_SEC * 1000000000ULL);
	assert_int_equal(harness_metric(&h->gw[0], "imgw_sources_blocked_total"), 1);
	assert_int_equal(harness_metric(&h->gw[0], "imgw_login_guard_failures_total"),
			 2 * threshold);
	harness_stop(h);
}

/* Gives the test its own network namespace with 10.200.0.2 on lo. */
static int netns_enter(char *reason, size_t size)
{
	if (unshare(CLONE_NEWNET) < 0) {
		snprintf(reason, size, "unshare(CLONE_NEWNET) failed: %s",
			 strerror(errno));
		return -errno;
	}
	if (system("ip link set lo up && ip addr add " SOURCE_ADDR "/32 dev lo") != 0) {
		snprintf(reason, size, "cannot configure lo in the test's network namespace (is iproute2 installed?)");
		return -ENODEV;
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_guard_login_blocks,
					  harness_teardown),
	};
	char reason[256], cmd[PATH_MAX + 64];

	if (!getenv("IMGW_BUILD")) {
		printf("skipped: IMGW_BUILD is not set (run through tests/run.sh)\n");
		return 0;
	}
	if (test_env_enter(reason, sizeof(reason)) ||
	    netns_enter(reason, sizeof(reason))) {
		printf("skipped: %s\n", reason);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "%s/imgw-loader --pin-dir %s load >/dev/null",
		 getenv("IMGW_BUILD"), TEST_PIN_DIR);
	if (system(cmd) != 0) {
		printf("skipped: imgw-loader could not load the BPF objects\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}

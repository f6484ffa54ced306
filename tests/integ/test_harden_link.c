// SPDX-License-Identifier: MIT
/*
 * Connections to bizsvr's gateway port that never register. One that sends
 * nothing is closed about 5 s after accept, and one that announces another
 * op than REGISTER is closed when its header arrives. Past 64 waiting
 * connections, newer ones are closed at accept. The real gateway stays
 * registered throughout.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define MAX_UNREGISTERED 64

static struct client *link_connect(struct harness *h)
{
	struct client *c = client_connect("127.0.0.1", h->biz.port,
					  HARNESS_WAIT_MS);

	H_CHECK(c, "connecting to bizsvr port %u failed: %s", h->biz.port,
		strerror(errno));
	return c;
}

/* Returns the milliseconds until the daemon closed c, or -1 when it stayed
 * open for timeout_ms. */
static long wait_closed_ms(struct client *c, int timeout_ms)
{
	uint64_t start = client_now_ms(1);
	struct client_frame f;
	int rc;

	for (;;) {
		rc = client_recv(c, timeout_ms, &f);
		if (rc == 0) {
			client_frame_free(&f);
			continue;
		}
		if (rc == -ETIMEDOUT)
			return -1;
		return (long)(client_now_ms(1) - start);
	}
}

static void check_gateway_registered(struct harness *h)
{
	json_t *health = harness_healthz(&h->biz);
	json_int_t gateways = json_integer_value(json_object_get(health,
								 "gateways"));

	json_decref(health);
	H_CHECK(gateways == 1, "bizsvr reports %lld gateways, expected 1",
		(long long)gateways);
}

static void link_register_deadline(void **state)
{
	struct harness *h = harness_start(1, NULL);
	struct client *c = link_connect(h);
	long ms = wait_closed_ms(c, 10000);

	H_CHECK(ms >= 4000 && ms <= 8000,
		"idle unregistered link closed after %ld ms, expected about 5000",
		ms);
	client_close(c);
	check_gateway_registered(h);
	harness_stop(h);
}

static void link_op_before_register(void **state)
{
	struct frame_header hdr = {
		.body_len = FRAME_HARD_MAX_BODY, .version = FRAME_VERSION,
		.op = OP_AUTH, .request_id = 1,
	};
	struct harness *h = harness_start(1, NULL);
	struct client *c = link_connect(h);
	uint8_t head[FRAME_HEADER_LEN];
	long ms;

	frame_header_pack(&hdr, head);
	H_CHECK(client_send_bytes(c, head, sizeof(head)) == 0,
		"sending the header failed");
	ms = wait_closed_ms(c, 3000);
	H_CHECK(ms >= 0, "a 16 MiB AUTH header before REGISTER kept the link open");
	client_close(c);
	check_gateway_registered(h);
	harness_stop(h);
}

static void link_unregistered_capped(void **state)
{
	struct harness *h = harness_start(1, NULL);
	struct client *idle[MAX_UNREGISTERED], *extra;
	struct pollfd pfd;

	for (int i = 0; i < MAX_UNREGISTERED; i++)
		idle[i] = link_connect(h);
	extra = link_connect(h);
	H_CHECK(wait_closed_ms(extra, 2000) >= 0,
		"link %d awaiting REGISTER was kept open",
		MAX_UNREGISTERED + 1);
	client_close(extra);

	/* The first ones are still open: nothing to read, no EOF. */
	for (int i = 0; i < MAX_UNREGISTERED; i++) {
		pfd.fd = idle[i]->fd;
		pfd.events = POLLIN;
		H_CHECK(poll(&pfd, 1, 0) == 0,
			"unregistered link %d was closed within the cap", i);
	}
	for (int i = 0; i < MAX_UNREGISTERED; i++)
		client_close(idle[i]);

	/* Closed links free their places. */
	usleep(200 * 1000);
	extra = link_connect(h);
	H_CHECK(wait_closed_ms(extra, 1000) < 0,
		"a new link was closed after the others went away");
	client_close(extra);
	check_gateway_registered(h);
	harness_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(link_register_deadline,
					  harness_teardown),
		cmocka_unit_test_teardown(link_op_before_register,
					  harness_teardown),
		cmocka_unit_test_teardown(link_unregistered_capped,
					  harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

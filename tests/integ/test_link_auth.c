// SPDX-License-Identifier: MIT
/*
 * The gateway <-> bizsvr link secret. Gateways and a daemon with the same
 * --link-secret link up and deliver. Three REGISTERs are rejected with
 * ERROR_AUTH_FAILED and a closed link: one from a gateway with another
 * secret, a raw one without auth, and one signed more than 300 s off the
 * daemon's clock. The real gateway of the same node id keeps its link and
 * its devices throughout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "linkauth.h"

#define LINK_SECRET "test-link-secret-4f1c"
#define WRONG_SECRET "another-link-secret"
/* How long a rejected gateway is watched for a link that comes up. */
#define WATCH_DOWN_MS 2000

static const char *const biz_args[] = { "--link-secret", LINK_SECRET, NULL };
static const char *const gw_args[] = { "--link-secret", LINK_SECRET, NULL };
/* The same node id as gateway 0, so an accepted REGISTER would replace it. */
static const char *const wrong_gw_args[] = {
	"--link-secret", WRONG_SECRET, "--node-id", "node-0", NULL,
};

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Returns the number of lines of the log at path that contain needle. */
static int log_count(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	int count = 0;

	H_CHECK(f, "opening %s failed: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		count += strstr(line, needle) != NULL;
	fclose(f);
	return count;
}

static json_int_t biz_health_int(struct harness *h, const char *key)
{
	json_t *health = harness_healthz(&h->biz);
	json_int_t value = json_integer_value(json_object_get(health, key));

	json_decref(health);
	return value;
}

static const char *gw_upstream(struct harness *h, int i, char *out,
			       size_t cap)
{
	json_t *health = harness_healthz(&h->gw[i]);
	const char *upstream = json_string_value(json_object_get(health,
								 "upstream"));

	snprintf(out, cap, "%s", upstream ? upstream : "(missing)");
	json_decref(health);
	return out;
}

/* Sends one message from a to b's user in their direct session and checks
 * that b receives it. */
static void check_delivery(struct tclient *a, struct tclient *b,
			   const char *payload)
{
	Imgw__SendResult *res = NULL;
	uint64_t sid, seq;
	int err = tc_send(a, 0, b->user, payload, &res);

	H_CHECK(err == 0, "%s: send to %s failed: %s", a->user, b->user,
		strerror(-err));
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NONE,
		"%s: send to %s: code %d (%s), expected 0", a->user, b->user,
		res->code, res->reason ? res->reason : "");
	sid = res->session_id;
	seq = res->seq;
	imgw__send_result__free_unpacked(res, NULL);
	H_CHECK(tc_wait_push(b, sid, seq, HARNESS_WAIT_MS) >= 0,
		"%s did not receive '%s' (session %llu seq %llu) from %s",
		b->user, payload, (unsigned long long)sid,
		(unsigned long long)seq, a->user);
}

/* Fails the test if a log of the harness contains the link secret. */
static void check_secret_not_logged(struct harness *h)
{
	H_CHECK(log_count(h->biz.log_path, LINK_SECRET) == 0,
		"bizsvr log contains the link secret");
	for (int i = 0; i < h->gw_count; i++) {
		H_CHECK(log_count(h->gw[i].log_path, LINK_SECRET) == 0,
			"gw%d log contains the link secret", i);
		H_CHECK(log_count(h->gw[i].log_path, WRONG_SECRET) == 0,
			"gw%d log contains its link secret", i);
	}
}

static struct harness *start_with_secret(int gw_count)
{
	struct gw_options opts[2] = {
		{ .args = gw_args }, { .args = gw_args },
	};

	return harness_start_args(gw_count, opts, biz_args);
}

static void link_auth_same_secret(void **state)
{
	struct harness *h = start_with_secret(2);
	struct tclient *alice = tc_login(h, 0, "alice", "phone");
	struct tclient *bob = tc_login(h, 1, "bob", "phone");

	check_delivery(alice, bob, "across two signed links");
	check_delivery(bob, alice, "and back");
	H_CHECK(biz_health_int(h, "gateways") == 2,
		"bizsvr reports %lld gateways, expected 2",
		(long long)biz_health_int(h, "gateways"));
	H_CHECK(log_count(h->biz.log_path, "rejected REGISTER") == 0,
		"bizsvr rejected a REGISTER signed with the right secret");
	H_CHECK(log_count(h->gw[0].log_path, "signed with the link secret") >= 1,
		"gw0 did not log a signed REGISTER");
	check_secret_not_logged(h);
	tc_free(alice);
	tc_free(bob);
	harness_stop(h);
}

static void link_auth_wrong_secret(void **state)
{
	struct harness *h = start_with_secret(1);
	struct gw_options wrong = { .args = wrong_gw_args };
	struct tclient *alice = tc_login(h, 0, "alice", "phone");
	struct tclient *bob = tc_login(h, 0, "bob", "phone");
	uint64_t deadline;
	char upstream[32];
	int bad;

	bad = harness_gw_add(h, &wrong);
	deadline = client_now_ms(1) + WATCH_DOWN_MS;
	while (client_now_ms(1) < deadline) {
		H_CHECK(strcmp(gw_upstream(h, bad, upstream, sizeof(upstream)),
			       "down") == 0,
			"gateway with the wrong secret reports upstream %s, expected down",
			upstream);
		sleep_ms(100);
	}
	H_CHECK(log_count(h->biz.log_path,
			  "rejected REGISTER of node node-0: link auth invalid") >= 1,
		"bizsvr log has no rejection of node-0 for an invalid link auth");
	/* The gateway retried with backoff and logged each rejection. */
	H_CHECK(log_count(h->gw[bad].log_path,
			  "rejected REGISTER of node node-0: code 7") >= 2,
		"the rejected gateway logged fewer than 2 rejections in %d ms",
		WATCH_DOWN_MS);

	/* The real node-0 kept its link and its devices. */
	H_CHECK(strcmp(gw_upstream(h, 0, upstream, sizeof(upstream)), "up") == 0,
		"gw0 reports upstream %s after the rejections, expected up",
		upstream);
	H_CHECK(log_count(h->biz.log_path, "replacing link") == 0,
		"bizsvr replaced node-0's link");
	H_CHECK(biz_health_int(h, "gateways") == 1,
		"bizsvr reports %lld gateways, expected 1",
		(long long)biz_health_int(h, "gateways"));
	H_CHECK(biz_health_int(h, "devices_online") == 2,
		"bizsvr reports %lld devices online, expected 2",
		(long long)biz_health_int(h, "devices_online"));
	check_delivery(alice, bob, "still delivered");
	check_secret_not_logged(h);
	tc_free(alice);
	tc_free(bob);
	harness_stop(h);
}

/* Sends a REGISTER for node_id listing victim's device. auth NULL leaves
 * auth and auth_time unset. */
static struct client *raw_register(struct harness *h, const char *node_id,
				   const struct tclient *victim,
				   const uint8_t *auth, int64_t auth_time)
{
	Imgw__Register reg = IMGW__REGISTER__INIT;
	Imgw__Device dev = IMGW__DEVICE__INIT;
	Imgw__Device *devs[] = { &dev };
	struct client *c = client_connect("127.0.0.1", h->biz.port,
					  HARNESS_WAIT_MS);
	int64_t rc;

	H_CHECK(c, "connecting to bizsvr port %u failed: %s", h->biz.port,
		strerror(errno));
	dev.user_id = (char *)victim->user;
	dev.device_id = "forged";
	dev.conn_id = 999;
	reg.node_id = (char *)node_id;
	reg.boot_id = "raw-boot";
	reg.n_devices = 1;
	reg.devices = devs;
	if (auth) {
		reg.auth.data = (uint8_t *)auth;
		reg.auth.len = LINKAUTH_MAC_LEN;
		reg.auth_time = auth_time;
	}
	rc = client_send(c, OP_REGISTER, &reg.base);
	H_CHECK(rc >= 0, "sending REGISTER failed: %s", strerror((int)-rc));
	return c;
}

/* Receives the REGISTER_RESULT on c and checks its code, and that a reason
 * containing reason_part comes with a rejection. */
static void check_register_result(struct client *c, int code,
				  const char *reason_part)
{
	Imgw__RegisterResult *res;
	struct client_frame f;
	int rc = client_recv_op(c, OP_REGISTER_RESULT, HARNESS_WAIT_MS, &f,
				NULL, NULL);

	H_CHECK(rc == 0, "no REGISTER_RESULT: %s", strerror(-rc));
	res = imgw__register_result__unpack(NULL, f.hdr.body_len, f.body);
	client_frame_free(&f);
	H_CHECK(res, "REGISTER_RESULT does not decode");
	H_CHECK((int)res->code == code,
		"REGISTER_RESULT code %d (%s), expected %d",
		res->code, res->reason ? res->reason : "", code);
	if (reason_part)
		H_CHECK(res->reason && strstr(res->reason, reason_part),
			"REGISTER_RESULT reason '%s' lacks '%s'",
			res->reason ? res->reason : "", reason_part);
	imgw__register_result__free_unpacked(res, NULL);
}

/* Checks that the daemon closed c, sending nothing more. */
static void check_closed(struct client *c)
{
	struct client_frame f;
	int rc = client_recv(c, HARNESS_WAIT_MS, &f);

	if (rc == 0)
		client_frame_free(&f);
	H_CHECK(rc != 0, "bizsvr sent op %u after the rejection",
		(unsigned int)f.hdr.op);
	H_CHECK(rc != -ETIMEDOUT, "bizsvr kept a rejected link open");
}

/* Checks that node-0 and alice and bob on it are untouched. */
static void check_node0_intact(struct harness *h, struct tclient *alice,
			       struct tclient *bob, const char *payload)
{
	char upstream[32];

	H_CHECK(strcmp(gw_upstream(h, 0, upstream, sizeof(upstream)), "up") == 0,
		"gw0 reports upstream %s, expected up", upstream);
	H_CHECK(biz_health_int(h, "gateways") == 1,
		"bizsvr reports %lld gateways, expected 1",
		(long long)biz_health_int(h, "gateways"));
	H_CHECK(biz_health_int(h, "devices_online") == 2,
		"bizsvr reports %lld devices online, expected 2",
		(long long)biz_health_int(h, "devices_online"));
	check_delivery(alice, bob, payload);
}

static void link_auth_raw_unsigned(void **state)
{
	struct harness *h = start_with_secret(1);
	struct tclient *alice = tc_login(h, 0, "alice", "phone");
	struct tclient *bob = tc_login(h, 0, "bob", "phone");
	struct client *c;

	c = raw_register(h, "node-0", alice, NULL, 0);
	check_register_result(c, IMGW__ERROR_CODE__ERROR_AUTH_FAILED,
			      "link auth missing");
	check_closed(c);
	client_close(c);
	H_CHECK(log_count(h->biz.log_path,
			  "rejected REGISTER of node node-0: link auth missing") == 1,
		"bizsvr log has no single line for the unsigned REGISTER");
	check_node0_intact(h, alice, bob, "after an unsigned REGISTER");
	tc_free(alice);
	tc_free(bob);
	harness_stop(h);
}

static void link_auth_stale_time(void **state)
{
	static const int64_t offsets[] = {
		-(LINKAUTH_MAX_SKEW_SEC + 100), LINKAUTH_MAX_SKEW_SEC + 100,
	};
	struct harness *h = start_with_secret(1);
	struct tclient *alice = tc_login(h, 0, "alice", "phone");
	struct tclient *bob = tc_login(h, 0, "bob", "phone");
	uint8_t mac[LINKAUTH_MAC_LEN];
	struct client *c;
	int64_t when;

	for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		when = (int64_t)time(NULL) + offsets[i];
		H_CHECK(linkauth_mac(LINK_SECRET, "node-0", "raw-boot", when,
				     mac) == 0, "linkauth_mac failed");
		c = raw_register(h, "node-0", alice, mac, when);
		check_register_result(c, IMGW__ERROR_CODE__ERROR_AUTH_FAILED,
				      "auth_time");
		check_closed(c);
		client_close(c);
		check_node0_intact(h, alice, bob, "after a stale REGISTER");
	}

	/* The same REGISTER signed now is accepted, under another node id
	 * so that gw0 keeps its link. */
	when = (int64_t)time(NULL);
	H_CHECK(linkauth_mac(LINK_SECRET, "node-raw", "raw-boot", when,
			     mac) == 0, "linkauth_mac failed");
	c = raw_register(h, "node-raw", bob, mac, when);
	check_register_result(c, IMGW__ERROR_CODE__ERROR_NONE, NULL);
	harness_wait_gateways(h, 2);
	client_close(c);
	harness_wait_gateways(h, 1);
	tc_free(alice);
	tc_free(bob);
	harness_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(link_auth_same_secret,
					  harness_teardown),
		cmocka_unit_test_teardown(link_auth_wrong_secret,
					  harness_teardown),
		cmocka_unit_test_teardown(link_auth_raw_unsigned,
					  harness_teardown),
		cmocka_unit_test_teardown(link_auth_stale_time,
					  harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

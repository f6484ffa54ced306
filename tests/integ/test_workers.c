// SPDX-License-Identifier: MIT
/*
 * imgw --workers 2: both workers accept on the one listen port and register
 * as their own nodes; a group push reaches members on both; the supervisor
 * restarts killed workers and exits 0 on SIGTERM after stopping both.
 * Worker 1's admin HTTP port is the harness's port plus one, which other
 * programs on a busy machine may hold as an ephemeral port, so the test
 * reads only worker 0's /healthz and counts nodes through bizsvr.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* Enough members that SO_REUSEPORT puts some on each worker: when the
 * kernel hashes connections evenly, all land on one with a chance of about
 * 2^-23. */
#define MEMBERS 24

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/*
 * Waits until the worker with admin HTTP on port reports node id node_id
 * and upstream up, with a boot id other than not_boot (when given). Returns
 * its /healthz reply.
 */
static json_t *wait_worker(uint16_t port, const char *node_id,
			   const char *not_boot)
{
	double deadline = now_ms() + HARNESS_START_MS;

	while (now_ms() < deadline) {
		char *body = NULL;
		json_t *j = NULL;
		const char *node, *up, *boot;

		if (http_call(port, "GET", "/healthz", NULL, &body) == 200)
			j = json_loads(body, 0, NULL);
		free(body);
		node = json_string_value(json_object_get(j, "node_id"));
		up = json_string_value(json_object_get(j, "upstream"));
		boot = json_string_value(json_object_get(j, "boot_id"));
		if (node && up && boot && strcmp(node, node_id) == 0 &&
		    strcmp(up, "up") == 0 &&
		    (!not_boot || strcmp(boot, not_boot) != 0))
			return j;
		json_decref(j);
		usleep(50 * 1000);
	}
	H_CHECK(0, "worker %s on HTTP port %u not up within %d ms", node_id,
		port, HARNESS_START_MS);
	return NULL;
}

static long long json_int(json_t *j, const char *key)
{
	return json_integer_value(json_object_get(j, key));
}

/* Returns the pid of the supervisor's child other than not_pid (0: any). */
static pid_t child_pid(pid_t parent, pid_t not_pid)
{
	char path[64];
	long pid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)parent,
		 (int)parent);
	f = fopen(path, "r");
	H_CHECK(f, "cannot open %s", path);
	while (fscanf(f, "%ld", &pid) == 1) {
		if ((pid_t)pid != not_pid) {
			fclose(f);
			return (pid_t)pid;
		}
	}
	fclose(f);
	H_CHECK(0, "supervisor %d has no worker other than %d", (int)parent,
		(int)not_pid);
	return 0;
}

static void test_workers_share_port(void **state)
{
	static const char *const args[] = { "--workers", "2", NULL };
	struct gw_options opts = { .args = args };
	/* Gateway 0 is a plain one: harness_start() expects bizsvr to count
	 * exactly its gateways, and the workers add two nodes. */
	struct harness *h = harness_start(1, NULL);
	struct tclient *t[MEMBERS];
	const char *names[MEMBERS];
	char users[MEMBERS][16], node0[64];
	uint16_t http0;
	json_t *w0;
	uint64_t sid, seq;
	pid_t pid;

	harness_gw_add(h, &opts);
	http0 = h->gw[1].http_port;
	snprintf(node0, sizeof(node0), "%s-w0", h->gw[1].node_id);
	json_decref(wait_worker(http0, node0, NULL));
	harness_wait_gateways(h, 3);

	for (int i = 0; i < MEMBERS; i++) {
		snprintf(users[i], sizeof(users[i]), "w%02d", i);
		names[i] = users[i];
		t[i] = tc_login(h, 1, users[i], "phone");
	}
	w0 = wait_worker(http0, node0, NULL);
	H_CHECK(json_int(w0, "connections") > 0,
		"worker 0 has no connection of %d", MEMBERS);
	H_CHECK(json_int(w0, "connections") < MEMBERS,
		"worker 0 has all %d connections, worker 1 none", MEMBERS);

	sid = admin_session_create(h, "group", "workers", names, MEMBERS);
	seq = admin_push(h, sid, names[0], "to both workers");
	for (int i = 0; i < MEMBERS; i++)
		H_CHECK(tc_wait_push(t[i], sid, seq, HARNESS_WAIT_MS) >= 0,
			"%s: seq %llu not pushed", users[i],
			(unsigned long long)seq);

	/* Killed workers come back: worker 0 with a new boot id, and both
	 * register with bizsvr again. */
	for (int i = 0; i < MEMBERS; i++)
		tc_free(t[i]);
	pid = child_pid(h->gw[1].pid, 0);
	kill(child_pid(h->gw[1].pid, pid), SIGKILL);
	kill(pid, SIGKILL);
	json_decref(wait_worker(http0, node0, json_string_value(
		json_object_get(w0, "boot_id"))));
	json_decref(w0);
	harness_wait_gateways(h, 3);

	/* SIGTERM to the supervisor; the harness requires exit status 0. */
	harness_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_workers_share_port,
					  harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

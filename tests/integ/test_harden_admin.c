// SPDX-License-Identifier: MIT
/*
 * Session ids in admin API paths: digits only. A leading space, '+' or '-',
 * a hex prefix or a trailing byte gets 400, and the plain number still finds
 * the session.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static int get_status(struct harness *h, const char *path)
{
	char *body = NULL;
	int status = http_call(h->biz.http_port, "GET", path, NULL, &body);

	free(body);
	return status;
}

static void admin_path_id_digits(void **state)
{
	static const char *const bad[] = {
		"+%llu", "%%20%llu", " %llu", "-%llu", "%llux", "0x%llx",
		"%llu%%20", "%%2B%llu",
	};
	const char *const members[] = { "u1", "u2" };
	struct harness *h = harness_start(1, NULL);
	char path[96], segment[48];
	uint64_t sid;
	int status;

	sid = admin_session_create(h, "group", "g", members, 2);
	snprintf(path, sizeof(path), "/v1/sessions/%llu",
		 (unsigned long long)sid);
	status = get_status(h, path);
	H_CHECK(status == 200, "GET %s: status %d, expected 200", path,
		status);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(segment, sizeof(segment), bad[i],
			 (unsigned long long)sid);
		snprintf(path, sizeof(path), "/v1/sessions/%s", segment);
		status = get_status(h, path);
		H_CHECK(status == 400, "GET %s: status %d, expected 400",
			path, status);
	}
	harness_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(admin_path_id_digits,
					  harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

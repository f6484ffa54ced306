// SPDX-License-Identifier: MIT
/*
 * Unit tests of store_messages_range() at the top of the uint64 range: a
 * from_seq of 2^63 or more (which SQLite's signed integers cannot hold)
 * returns no messages, and INT64_MAX still behaves as a number.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../bizsvr/store.h"

struct fixture {
	char dir[64];
	char path[128];
	struct store *st;
	uint64_t session;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct store_append_result res;
	struct store_message msg = {
		.sender = "ann",
		.sender_device = "phone",
		.time_ms = 1000,
		.client_msg_id = "",
		.payload = (uint8_t *)"hi",
		.payload_len = 2,
	};

	if (!fx)
		return -1;
	strcpy(fx->dir, "/tmp/imgw-store-range.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/test.db", fx->dir);
	fx->st = store_open(fx->path);
	if (!fx->st)
		return -1;
	if (store_session_create(fx->st, STORE_KIND_GROUP, "g", 1000,
				 &fx->session) < 0)
		return -1;
	msg.session_id = fx->session;
	for (int i = 0; i < 2; i++)
		if (store_message_append(fx->st, &msg, &res) < 0)
			return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	char name[160];

	store_close(fx->st);
	for (size_t i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "%s%s", fx->path, suffixes[i]);
		unlink(name);
	}
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static void expect_range_count(struct fixture *fx, uint64_t from_seq,
			       size_t want)
{
	struct store_message *list = NULL;
	size_t count = 99;

	assert_int_equal(store_messages_range(fx->st, fx->session, from_seq,
					      10, &list, &count), 0);
	assert_int_equal(count, want);
	store_messages_free(list, count);
}

static void range_from_one(void **state)
{
	expect_range_count(*state, 1, 2);
}

static void range_from_int64_max(void **state)
{
	expect_range_count(*state, INT64_MAX, 0);
}

static void range_from_2_pow_63(void **state)
{
	expect_range_count(*state, (uint64_t)INT64_MAX + 1, 0);
}

static void range_from_uint64_max(void **state)
{
	expect_range_count(*state, UINT64_MAX, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(range_from_one, setup,
						teardown),
		cmocka_unit_test_setup_teardown(range_from_int64_max, setup,
						teardown),
		cmocka_unit_test_setup_teardown(range_from_2_pow_63, setup,
						teardown),
		cmocka_unit_test_setup_teardown(range_from_uint64_max, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

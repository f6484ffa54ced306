// SPDX-License-Identifier: MIT
/*
 * Unit tests of the benchmark run helpers (lib/benchrun.c): the payload
 * head, the group plan both benchmark tools share, and the pipe reads and
 * writes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "benchrun.h"

static void payload_round_trip(void **state)
{
	char payload[BENCHRUN_PAYLOAD_HEAD_LEN + 8];
	uint64_t index, pub_ns;

	memset(payload, '.', sizeof(payload));
	benchrun_payload_stamp(payload, 42, 1700000000123456789ULL);
	assert_memory_equal(payload, "imgwbench:0000000042:1700000000123456789",
			    BENCHRUN_PAYLOAD_HEAD_LEN);
	assert_int_equal(payload[BENCHRUN_PAYLOAD_HEAD_LEN], '.');
	assert_int_equal(benchrun_payload_parse((const uint8_t *)payload,
						sizeof(payload), &index,
						&pub_ns), 0);
	assert_int_equal(index, 42);
	assert_int_equal(pub_ns, 1700000000123456789ULL);
}

static void payload_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"imgwbench:0000000042:170000000012345678",   /* short */
		"imgwbenhc:0000000042:1700000000123456789",  /* tag */
		"imgwbench:0000000042-1700000000123456789",  /* separator */
		"imgwbench:00000000x2:1700000000123456789",  /* index digit */
		"imgwbench:0000000042:17000000001234567x9",  /* time digit */
	};
	uint64_t index, pub_ns;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(benchrun_payload_parse((const uint8_t *)bad[i],
							strlen(bad[i]), &index,
							&pub_ns), -EINVAL);
}

static void plan_sizes_zipf(void **state)
{
	int size[10];
	int sum = benchrun_plan_sizes(size, 10, 1000, 1.0);
	int total = 0;

	for (int k = 0; k < 10; k++) {
		assert_true(size[k] >= 2);
		if (k > 0)
			assert_true(size[k] <= size[k - 1]);
		total += size[k];
	}
	assert_int_equal(sum, total);
	/* H(10, 1) is about 2.929, so the largest group is 1000 / 2.929. */
	assert_int_equal(size[0], 341);
	assert_true(sum >= 990 && sum <= 1010);
}

static void plan_sizes_minimum(void **state)
{
	int size[50];

	benchrun_plan_sizes(size, 50, 20, 1.0);
	assert_int_equal(size[49], 2);
}

static void plan_sizes_one_group(void **state)
{
	int size[1];

	assert_int_equal(benchrun_plan_sizes(size, 1, 777, 1.0), 777);
	assert_int_equal(size[0], 777);
}

static void plan_members_layout(void **state)
{
	const int size[3] = { 3, 2, 1 };
	const int expected[6] = { 0, 0, 0, 1, 1, 2 };
	int member_group[6];

	benchrun_plan_members(member_group, size, 3);
	assert_memory_equal(member_group, expected, sizeof(expected));
}

static void plan_messages_seeded(void **state)
{
	int first[64], second[64], other[64];

	benchrun_plan_messages(first, 64, 7, 1);
	benchrun_plan_messages(second, 64, 7, 1);
	benchrun_plan_messages(other, 64, 7, 2);
	assert_memory_equal(first, second, sizeof(first));
	assert_memory_not_equal(first, other, sizeof(first));
	for (int i = 0; i < 64; i++) {
		assert_true(first[i] >= 0);
		assert_true(first[i] < 7);
	}
}

static void plan_messages_one_group(void **state)
{
	int msg_group[8];

	memset(msg_group, 0xff, sizeof(msg_group));
	benchrun_plan_messages(msg_group, 8, 1, 1);
	for (int i = 0; i < 8; i++)
		assert_int_equal(msg_group[i], 0);
}

static void pipe_read_write(void **state)
{
	char out[5000], in[5000];
	int fds[2];

	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (char)i;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(benchrun_write_full(fds[1], out, sizeof(out)), 0);
	assert_int_equal(benchrun_read_full(fds[0], in, sizeof(in), 1), 0);
	assert_memory_equal(in, out, sizeof(out));

	/* Nothing more to read: the timeout ends the wait. */
	assert_int_equal(benchrun_read_full(fds[0], in, 1, 1), -ETIMEDOUT);
	close(fds[1]);
	assert_int_equal(benchrun_read_full(fds[0], in, 1, -1), -ECONNRESET);
	close(fds[0]);
}

static void per_zero_count(void **state)
{
	assert_true(benchrun_per(10, 0) == 0);
	assert_true(benchrun_per(10, 4) == 2.5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(payload_round_trip),
		cmocka_unit_test(payload_parse_rejects),
		cmocka_unit_test(plan_sizes_zipf),
		cmocka_unit_test(plan_sizes_minimum),
		cmocka_unit_test(plan_sizes_one_group),
		cmocka_unit_test(plan_members_layout),
		cmocka_unit_test(plan_messages_seeded),
		cmocka_unit_test(plan_messages_one_group),
		cmocka_unit_test(pipe_read_write),
		cmocka_unit_test(per_zero_count),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

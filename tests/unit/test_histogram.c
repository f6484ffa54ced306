// SPDX-License-Identifier: MIT
/*
 * Unit tests of lib/histogram.c: observations land in the first bucket
 * whose bound is not below them, the Prometheus text is cumulative and
 * ends with +Inf, _sum and _count, and values above the largest bound
 * count only in +Inf.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "histogram.h"

/* Returns the Prometheus text of h as a NUL-terminated string. */
static char *render(const struct histogram *h)
{
	struct evbuffer *out = evbuffer_new();
	size_t len;
	char *text;

	assert_non_null(out);
	histogram_append(out, "t_seconds", "test help", h);
	len = evbuffer_get_length(out);
	text = malloc(len + 1);
	assert_non_null(text);
	evbuffer_remove(out, text, len);
	text[len] = '\0';
	evbuffer_free(out);
	return text;
}

static void test_bucket_bounds_inclusive(void **state)
{
	struct histogram h = { 0 };

	(void)state;
	histogram_observe(&h, 0);
	histogram_observe(&h, 100);     /* on the first bound */
	histogram_observe(&h, 101);     /* just above it */
	histogram_observe(&h, 5000);
	histogram_observe(&h, 1000000);
	histogram_observe(&h, 1000001); /* above every bound */
	assert_int_equal(h.counts[0], 2);
	assert_int_equal(h.counts[1], 1);
	assert_int_equal(h.counts[7], 1);
	assert_int_equal(h.counts[HISTOGRAM_BUCKETS - 1], 1);
	assert_int_equal(h.counts[HISTOGRAM_BUCKETS], 1);
	assert_int_equal(h.count, 6);
	assert_int_equal(h.sum_us, 100 + 101 + 5000 + 1000000 + 1000001);
}

static void test_text_cumulative(void **state)
{
	struct histogram h = { 0 };
	char *text;

	(void)state;
	histogram_observe(&h, 50);
	histogram_observe(&h, 3500);
	histogram_observe(&h, 3500);
	histogram_observe(&h, 2000000);
	text = render(&h);
	assert_non_null(strstr(text, "# HELP t_seconds test help\n"));
	assert_non_null(strstr(text, "# TYPE t_seconds histogram\n"));
	assert_non_null(strstr(text, "t_seconds_bucket{le=\"0.0001\"} 1\n"));
	assert_non_null(strstr(text, "t_seconds_bucket{le=\"0.003\"} 1\n"));
	assert_non_null(strstr(text, "t_seconds_bucket{le=\"0.004\"} 3\n"));
	assert_non_null(strstr(text, "t_seconds_bucket{le=\"1\"} 3\n"));
	assert_non_null(strstr(text, "t_seconds_bucket{le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(text, "t_seconds_sum 2.007050\n"));
	assert_non_null(strstr(text, "t_seconds_count 4\n"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_bounds_inclusive),
		cmocka_unit_test(test_text_cumulative),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

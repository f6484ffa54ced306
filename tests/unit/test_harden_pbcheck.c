// SPDX-License-Identifier: MIT
/*
 * Unit tests of lib/pbcheck.c. A NUL byte in a string field is rejected at
 * the top level and, when asked, in nested messages. NUL bytes in bytes
 * fields, unknown fields and empty bodies pass, and truncated bodies fail.
 * Bodies are written by hand because protobuf-c packs strings up to their
 * first NUL.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "imgw.pb-c.h"
#include "pbcheck.h"

/* Appends a length-delimited field (len < 128) at buf + *n. */
static void put_field(uint8_t *buf, size_t *n, unsigned int num,
		      const void *data, size_t len)
{
	buf[(*n)++] = (uint8_t)(num << 3 | 2);
	buf[(*n)++] = (uint8_t)len;
	memcpy(buf + *n, data, len);
	*n += len;
}

static void login_user_with_nul(void **state)
{
	uint8_t buf[64];
	size_t n = 0;

	put_field(buf, &n, 1, "tok", 3);
	put_field(buf, &n, 2, "fz\0evil", 7);
	assert_int_equal(pb_check_strings(&imgw__login_request__descriptor,
					  buf, n, 0), -EBADMSG);
}

static void login_token_with_nul(void **state)
{
	uint8_t buf[64];
	size_t n = 0;

	put_field(buf, &n, 1, "tok\0junk", 8);
	put_field(buf, &n, 2, "fz", 2);
	assert_int_equal(pb_check_strings(&imgw__login_request__descriptor,
					  buf, n, 0), -EBADMSG);
}

static void login_clean_passes(void **state)
{
	uint8_t buf[64];
	size_t n = 0;

	put_field(buf, &n, 1, "tok", 3);
	put_field(buf, &n, 2, "fz", 2);
	put_field(buf, &n, 3, "d", 1);
	/* Unknown field 15 may hold anything. */
	put_field(buf, &n, 15, "a\0b", 3);
	assert_int_equal(pb_check_strings(&imgw__login_request__descriptor,
					  buf, n, 0), 0);
	assert_int_equal(pb_check_strings(&imgw__login_request__descriptor,
					  buf, 0, 0), 0);
}

static void send_payload_nul_passes(void **state)
{
	uint8_t buf[64];
	size_t n = 0;

	buf[n++] = 1 << 3;  /* session_id, varint */
	buf[n++] = 0x96;
	buf[n++] = 0x01;
	put_field(buf, &n, 4, "\0\0\0", 3);
	assert_int_equal(pb_check_strings(&imgw__send_request__descriptor,
					  buf, n, 0), 0);
	put_field(buf, &n, 3, "id\0", 3);
	assert_int_equal(pb_check_strings(&imgw__send_request__descriptor,
					  buf, n, 0), -EBADMSG);
}

static void nested_only_when_recursive(void **state)
{
	uint8_t login[32], buf[64];
	size_t ln = 0, n = 0;

	put_field(login, &ln, 2, "fz\0evil", 7);
	put_field(buf, &n, 2, login, ln);   /* Auth.login */
	assert_int_equal(pb_check_strings(&imgw__auth__descriptor, buf, n, 0),
			 0);
	assert_int_equal(pb_check_strings(&imgw__auth__descriptor, buf, n, 1),
			 -EBADMSG);
}

static void truncated_body_fails(void **state)
{
	uint8_t buf[64];
	size_t n = 0;

	put_field(buf, &n, 2, "fz", 2);
	assert_int_equal(pb_check_strings(&imgw__login_request__descriptor,
					  buf, n - 1, 0), -EBADMSG);
	buf[0] = 2 << 3 | 3;  /* a group start: not proto3 */
	assert_int_equal(pb_check_strings(&imgw__login_request__descriptor,
					  buf, n, 0), -EBADMSG);
}

static void printable_text(void **state)
{
	assert_true(text_is_printable("fz", 128));
	assert_true(text_is_printable("caf\xc3\xa9", 128));
	assert_false(text_is_printable("a\nINJECT", 128));
	assert_false(text_is_printable("a\x7f", 128));
	assert_false(text_is_printable("\xc3", 128));
	assert_false(text_is_printable("abc", 2));
	assert_false(text_is_printable(NULL, 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(login_user_with_nul),
		cmocka_unit_test(login_token_with_nul),
		cmocka_unit_test(login_clean_passes),
		cmocka_unit_test(send_payload_nul_passes),
		cmocka_unit_test(nested_only_when_recursive),
		cmocka_unit_test(truncated_body_fails),
		cmocka_unit_test(printable_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * Unit tests of the WebSocket helpers in userspace/ws.c: the header of the
 * server's unmasked binary frames at each length boundary of RFC 6455
 * section 5.2, and the Sec-WebSocket-Accept value of section 4.2.2.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../userspace/ws.h"

struct header_case {
	uint64_t payload_len;
	size_t header_len;
	uint8_t header[WS_MAX_HEADER];
};

/* FIN set, opcode 2 (binary), no mask bit: the server never masks. */
static const struct header_case header_cases[] = {
	{ 0, 2, { 0x82, 0 } },
	{ 1, 2, { 0x82, 1 } },
	{ 125, 2, { 0x82, 125 } },
	{ 126, 4, { 0x82, 126, 0x00, 0x7e } },
	{ 65535, 4, { 0x82, 126, 0xff, 0xff } },
	{ 65536, 10, { 0x82, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00 } },
	{ 16777228, 10, { 0x82, 127, 0, 0, 0, 0, 0x01, 0x00, 0x00, 0x0c } },
	{ 0x0102030405060708ULL, 10,
	  { 0x82, 127, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08 } },
};

static void test_frame_header_lengths(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]);
	     i++) {
		const struct header_case *hc = &header_cases[i];
		uint8_t out[WS_MAX_HEADER + 1];
		size_t len;

		memset(out, 0xaa, sizeof(out));
		len = ws_frame_header(out, hc->payload_len);
		print_message("payload_len %llu\n",
			      (unsigned long long)hc->payload_len);
		assert_int_equal(len, hc->header_len);
		assert_memory_equal(out, hc->header, hc->header_len);
		/* Nothing is written past the header. */
		assert_int_equal(out[len], 0xaa);
	}
}

static void test_accept_key_rfc_example(void **state)
{
	char out[29];

	(void)state;
	memset(out, 'x', sizeof(out));
	assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_accept_key_rejects_invalid(void **state)
{
	static const char *const keys[] = {
		"",
		"dGhlIHNhbXBsZSBub25jZQ=",     /* 23 characters */
		"dGhlIHNhbXBsZSBub25jZQ===",   /* 25 characters */
		"dGhlIHNhbXBsZSBub25jZQQQ",    /* no padding: 18 bytes */
		"dGhlIHNhbXBsZSBub25j!Q==",    /* not base64 */
		"dGhlIHNhbXBsZSBub25jZXg=",    /* 17 bytes */
	};
	char out[29];

	(void)state;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		print_message("key '%s'\n", keys[i]);
		assert_int_equal(ws_accept_key(keys[i], out), -EINVAL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_header_lengths),
		cmocka_unit_test(test_accept_key_rfc_example),
		cmocka_unit_test(test_accept_key_rejects_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

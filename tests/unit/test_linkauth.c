// SPDX-License-Identifier: MIT
/*
 * Unit tests of the link secret MAC (lib/linkauth.c): a fixed vector made
 * with the openssl command line, and each way linkauth_verify() rejects.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "linkauth.h"

#define NOW 1700000000

/*
 * printf 'imgw-link-v1\nnode-a\nboot-b\n1700000000' |
 *	openssl dgst -sha256 -hmac k3y
 */
static const uint8_t vector_mac[LINKAUTH_MAC_LEN] = {
	0xb2, 0x3c, 0x81, 0x29, 0x9f, 0x28, 0x8d, 0xf7,
	0xb4, 0xed, 0xe3, 0x82, 0xd2, 0x81, 0x74, 0x83,
	0xc0, 0xd5, 0xe6, 0x91, 0x15, 0xc6, 0x7c, 0x9c,
	0x37, 0x36, 0x79, 0xaa, 0x48, 0x68, 0x27, 0x51,
};

static void linkauth_mac_vector(void **state)
{
	uint8_t mac[LINKAUTH_MAC_LEN];

	assert_int_equal(linkauth_mac("k3y", "node-a", "boot-b", NOW, mac), 0);
	assert_memory_equal(mac, vector_mac, LINKAUTH_MAC_LEN);
}

static void linkauth_mac_rejects_newlines(void **state)
{
	uint8_t mac[LINKAUTH_MAC_LEN];

	assert_int_equal(linkauth_mac("k3y", "node\na", "boot-b", NOW, mac),
			 -EINVAL);
	assert_int_equal(linkauth_mac("k3y", "node-a", "boot\nb", NOW, mac),
			 -EINVAL);
	assert_int_equal(linkauth_mac("", "node-a", "boot-b", NOW, mac),
			 -EINVAL);
}

static void linkauth_verify_accepts_window(void **state)
{
	uint8_t mac[LINKAUTH_MAC_LEN];
	const int64_t times[] = {
		NOW, NOW - LINKAUTH_MAX_SKEW_SEC, NOW + LINKAUTH_MAX_SKEW_SEC,
	};

	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		assert_int_equal(linkauth_mac("k3y", "node-a", "boot-b",
					      times[i], mac), 0);
		assert_int_equal(linkauth_verify("k3y", "node-a", "boot-b",
						 times[i], mac, sizeof(mac),
						 NOW), LINKAUTH_OK);
	}
}

static void linkauth_verify_rejects(void **state)
{
	const int64_t far = NOW - LINKAUTH_MAX_SKEW_SEC - 1;
	uint8_t mac[LINKAUTH_MAC_LEN], far_mac[LINKAUTH_MAC_LEN];

	memcpy(mac, vector_mac, sizeof(mac));
	assert_int_equal(linkauth_verify("k3y", "node-a", "boot-b", NOW, mac,
					 0, NOW), LINKAUTH_MISSING);
	assert_int_equal(linkauth_verify("k3y", "node-a", "boot-b", 0, mac,
					 sizeof(mac), NOW), LINKAUTH_MISSING);
	assert_int_equal(linkauth_verify("k3y", "node-a", "boot-b", NOW, mac,
					 sizeof(mac) - 1, NOW),
			 LINKAUTH_BAD_MAC);
	assert_int_equal(linkauth_verify("other", "node-a", "boot-b", NOW,
					 mac, sizeof(mac), NOW),
			 LINKAUTH_BAD_MAC);
	/* The MAC binds the node id, the boot id and the time. */
	assert_int_equal(linkauth_verify("k3y", "node-b", "boot-b", NOW, mac,
					 sizeof(mac), NOW), LINKAUTH_BAD_MAC);
	assert_int_equal(linkauth_verify("k3y", "node-a", "boot-c", NOW, mac,
					 sizeof(mac), NOW), LINKAUTH_BAD_MAC);
	assert_int_equal(linkauth_verify("k3y", "node-a", "boot-b", NOW + 1,
					 mac, sizeof(mac), NOW),
			 LINKAUTH_BAD_MAC);
	mac[LINKAUTH_MAC_LEN - 1] ^= 1;
	assert_int_equal(linkauth_verify("k3y", "node-a", "boot-b", NOW, mac,
					 sizeof(mac), NOW), LINKAUTH_BAD_MAC);

	assert_int_equal(linkauth_mac("k3y", "node-a", "boot-b", far, far_mac),
			 0);
	assert_int_equal(linkauth_verify("k3y", "node-a", "boot-b", far,
					 far_mac, sizeof(far_mac), NOW),
			 LINKAUTH_STALE);
	/* A forged MAC with a stale time reads as invalid, not as stale. */
	assert_int_equal(linkauth_verify("other", "node-a", "boot-b", far,
					 far_mac, sizeof(far_mac), NOW),
			 LINKAUTH_BAD_MAC);
}

static void linkauth_verify_extreme_time(void **state)
{
	uint8_t mac[LINKAUTH_MAC_LEN];

	assert_int_equal(linkauth_mac("k3y", "node-a", "boot-b", INT64_MIN,
				      mac), 0);
	assert_int_equal(linkauth_verify("k3y", "node-a", "boot-b", INT64_MIN,
					 mac, sizeof(mac), NOW),
			 LINKAUTH_STALE);
	assert_int_equal(linkauth_mac("k3y", "node-a", "boot-b", INT64_MAX,
				      mac), 0);
	assert_int_equal(linkauth_verify("k3y", "node-a", "boot-b", INT64_MAX,
					 mac, sizeof(mac), NOW),
			 LINKAUTH_STALE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(linkauth_mac_vector),
		cmocka_unit_test(linkauth_mac_rejects_newlines),
		cmocka_unit_test(linkauth_verify_accepts_window),
		cmocka_unit_test(linkauth_verify_rejects),
		cmocka_unit_test(linkauth_verify_extreme_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

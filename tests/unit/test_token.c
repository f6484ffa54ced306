// SPDX-License-Identifier: MIT
/*
 * Unit tests of lib/token.c: minting and verifying login tokens, and the
 * rejection of expired, forged, tampered, malformed and over-long ones. Some
 * tokens are signed here with OpenSSL directly, to reach the checks that run
 * after the signature check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "token.h"

#define SECRET "unit-test-secret-3f9a"
#define NOW 1700000000LL

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Encodes base64url without padding, independently of lib/token.c. */
static void encode_b64url(const uint8_t *in, size_t len, char *out)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = b64url[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = b64url[(acc << (6 - bits)) & 63];
	out[o] = '\0';
}

/* Writes "<signed>.<HMAC of signed>" into out (1024 bytes). */
static void sign_text(const char *secret, const char *signed_text, char *out)
{
	uint8_t sig[32];
	unsigned int sig_len = sizeof(sig);
	char sig_b64[64];

	assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret),
			     (const uint8_t *)signed_text, strlen(signed_text),
			     sig, &sig_len));
	assert_int_equal(sig_len, 32);
	encode_b64url(sig, sizeof(sig), sig_b64);
	snprintf(out, 1024, "%s.%s", signed_text, sig_b64);
}

static void mint(const char *user, int64_t expires, char *out)
{
	int rc = token_mint(SECRET, user, expires, out, TOKEN_MAX_LEN + 1);

	assert_int_equal(rc, 0);
}

static void test_mint_verify(void **state)
{
	static const char *const users[] = {
		"alice", "b", "user with spaces", "u\xc3\xa9\xe2\x82\xac",
		"a.b.c", "x-_y",
	};
	char tok[TOKEN_MAX_LEN + 1];

	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		mint(users[i], NOW + 60, tok);
		assert_int_equal(strncmp(tok, "v1.", 3), 0);
		assert_int_equal(token_verify(SECRET, tok, users[i], NOW),
				 TOKEN_OK);
		assert_int_equal(token_verify(SECRET, tok, users[i],
					      NOW + 59),
				 TOKEN_OK);
	}
}

static void test_mint_matches_format(void **state)
{
	char tok[TOKEN_MAX_LEN + 1], want[1024], signed_text[256], user[16];

	mint("alice", NOW + 3600, tok);
	encode_b64url((const uint8_t *)"alice", 5, user);
	snprintf(signed_text, sizeof(signed_text), "v1.%s.%lld", user,
		 NOW + 3600);
	sign_text(SECRET, signed_text, want);
	assert_string_equal(tok, want);
}

static void test_expired(void **state)
{
	char tok[TOKEN_MAX_LEN + 1];

	mint("alice", NOW, tok);
	/* The expiry second itself is already too late. */
	assert_int_equal(token_verify(SECRET, tok, "alice", NOW),
			 TOKEN_EXPIRED);
	assert_int_equal(token_verify(SECRET, tok, "alice", NOW + 1000),
			 TOKEN_EXPIRED);
	assert_int_equal(token_verify(SECRET, tok, "alice", NOW - 1),
			 TOKEN_OK);

	mint("alice", 0, tok);
	assert_int_equal(token_verify(SECRET, tok, "alice", NOW),
			 TOKEN_EXPIRED);
	/* A negative expiry is never minted, and its text does not verify. */
	assert_int_equal(token_mint(SECRET, "alice", -5, tok, sizeof(tok)),
			 -EINVAL);
}

static void test_forged_signature(void **state)
{
	char tok[TOKEN_MAX_LEN + 1], forged[TOKEN_MAX_LEN + 1];
	char *sig;

	mint("alice", NOW + 60, tok);
	assert_int_equal(token_verify("another-secret", tok, "alice", NOW),
			 TOKEN_BAD_SIGNATURE);
	assert_int_equal(token_verify("", tok, "alice", NOW),
			 TOKEN_BAD_SIGNATURE);

	/* Flip the first signature character: its 6 bits are all data. */
	strcpy(forged, tok);
	sig = strrchr(forged, '.') + 1;
	sig[0] = sig[0] == 'A' ? 'B' : 'A';
	assert_int_equal(token_verify(SECRET, forged, "alice", NOW),
			 TOKEN_BAD_SIGNATURE);

	/* A token signed with another secret is forged too. */
	assert_int_equal(token_mint("another-secret", "alice", NOW + 60,
				    forged, sizeof(forged)),
			 0);
	assert_int_equal(token_verify(SECRET, forged, "alice", NOW),
			 TOKEN_BAD_SIGNATURE);
}

static void test_tampered_user(void **state)
{
	char tok[TOKEN_MAX_LEN + 1], tampered[1024], user_b64[16];
	const char *exp_part;

	mint("alice", NOW + 60, tok);
	exp_part = strchr(tok + 3, '.');
	encode_b64url((const uint8_t *)"mallory", 7, user_b64);
	snprintf(tampered, sizeof(tampered), "v1.%s%s", user_b64, exp_part);
	assert_int_equal(token_verify(SECRET, tampered, "mallory", NOW),
			 TOKEN_BAD_SIGNATURE);
	assert_int_equal(token_verify(SECRET, tampered, "alice", NOW),
			 TOKEN_BAD_SIGNATURE);
}

static void test_tampered_expiry(void **state)
{
	char tok[TOKEN_MAX_LEN + 1], tampered[1024], head[256];
	char *dot;

	mint("alice", NOW + 60, tok);
	strcpy(head, tok);
	dot = strchr(head + 3, '.');
	*dot = '\0';
	snprintf(tampered, sizeof(tampered), "%s.%lld%s", head, NOW + 999999,
		 strrchr(tok, '.'));
	assert_int_equal(token_verify(SECRET, tampered, "alice", NOW),
			 TOKEN_BAD_SIGNATURE);
}

static void test_wrong_user(void **state)
{
	char tok[TOKEN_MAX_LEN + 1];

	mint("alice", NOW + 60, tok);
	assert_int_equal(token_verify(SECRET, tok, "bob", NOW),
			 TOKEN_WRONG_USER);
	assert_int_equal(token_verify(SECRET, tok, "alic", NOW),
			 TOKEN_WRONG_USER);
	assert_int_equal(token_verify(SECRET, tok, "alicee", NOW),
			 TOKEN_WRONG_USER);
	assert_int_equal(token_verify(SECRET, tok, "Alice", NOW),
			 TOKEN_WRONG_USER);
	assert_int_equal(token_verify(SECRET, tok, "", NOW),
			 TOKEN_WRONG_USER);
	assert_int_equal(token_verify(SECRET, tok, NULL, NOW),
			 TOKEN_WRONG_USER);
}

static void test_missing(void **state)
{
	assert_int_equal(token_verify(SECRET, NULL, "alice", NOW),
			 TOKEN_MISSING);
	assert_int_equal(token_verify(SECRET, "", "alice", NOW),
			 TOKEN_MISSING);
}

static void test_malformed_shapes(void **state)
{
	char tok[TOKEN_MAX_LEN + 1], bad[1024];
	static const char *const shapes[] = {
		"x", "v1", "v1.", "v1..", "v1...", "v2.YWxpY2U.1.AAAA",
		"V1.YWxpY2U.1.AAAA", "v1.YWxpY2U", "v1.YWxpY2U.1700000060",
		"v1.YWxpY2U.1700000060.", "v1.YWxpY2U.1700000060.!!!!",
		"v1.YWxpY2U.1700000060.AAAA",
	};

	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		int rc = token_verify(SECRET, shapes[i], "alice", NOW);

		if (rc != TOKEN_MALFORMED)
			fail_msg("token \"%s\": status %d (%s), expected malformed",
				 shapes[i], rc, token_status_str(rc));
	}

	/* A fifth part after a valid token. */
	mint("alice", NOW + 60, tok);
	snprintf(bad, sizeof(bad), "%s.AAAA", tok);
	assert_int_equal(token_verify(SECRET, bad, "alice", NOW),
			 TOKEN_MALFORMED);

	/* A signature one character short no longer decodes to 32 bytes. */
	strcpy(bad, tok);
	bad[strlen(bad) - 2] = '\0';
	assert_int_equal(token_verify(SECRET, bad, "alice", NOW),
			 TOKEN_MALFORMED);
}

/* Parts after the signature check: correctly signed but invalid content. */
static void test_malformed_signed(void **state)
{
	static const char *const bodies[] = {
		"v1.YWxpY2U.12x",        /* expiry not a number */
		"v1.YWxpY2U.",           /* expiry empty */
		"v1.YWxpY2U.99999999999999999999999", /* expiry overflows */
		"v1..1700000060",        /* user empty */
		"v1.YW*pY2U.1700000060", /* user not base64url */
		"v1.YWxpY2U.+1700000060", /* expiry with a sign */
		"v1.YWxpY2U. 1700000060", /* expiry after a space */
		"v1.YWxpY2V.1700000060", /* user with non-zero spare bits */
	};
	char tok[1024];

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		int rc;

		sign_text(SECRET, bodies[i], tok);
		rc = token_verify(SECRET, tok, "alice", NOW);
		if (rc != TOKEN_MALFORMED)
			fail_msg("signed \"%s\": status %d (%s), expected malformed",
				 bodies[i], rc, token_status_str(rc));
	}

	/* The same construction with valid parts is accepted. */
	sign_text(SECRET, "v1.YWxpY2U.1700000060", tok);
	assert_int_equal(token_verify(SECRET, tok, "alice", NOW), TOKEN_OK);
}

/* Each signature has one encoding: the last character's spare bits are zero. */
static void test_signature_spare_bits(void **state)
{
	char tok[TOKEN_MAX_LEN + 1];
	size_t len;
	const char *p;

	assert_int_equal(token_mint(SECRET, "alice", NOW + 60, tok, sizeof(tok)), 0);
	len = strlen(tok);
	p = strchr(b64url, tok[len - 1]);
	assert_non_null(p);
	/* 32 bytes take 43 characters with 2 spare bits: set the lowest one. */
	tok[len - 1] = b64url[(p - b64url) | 1];
	assert_int_equal(token_verify(SECRET, tok, "alice", NOW), TOKEN_MALFORMED);
}

static void test_over_long(void **state)
{
	char user[TOKEN_MAX_USER_LEN + 2];
	char tok[TOKEN_MAX_LEN + 1], big[TOKEN_MAX_LEN + 64];

	memset(user, 'u', sizeof(user));
	user[TOKEN_MAX_USER_LEN] = '\0';
	assert_int_equal(token_mint(SECRET, user, NOW + 60, tok, sizeof(tok)),
			 0);
	assert_true(strlen(tok) <= TOKEN_MAX_LEN);
	assert_int_equal(token_verify(SECRET, tok, user, NOW), TOKEN_OK);

	user[TOKEN_MAX_USER_LEN] = 'u';
	user[TOKEN_MAX_USER_LEN + 1] = '\0';
	assert_int_equal(token_mint(SECRET, user, NOW + 60, tok, sizeof(tok)),
			 -EINVAL);
	assert_int_equal(token_mint(SECRET, "", NOW + 60, tok, sizeof(tok)),
			 -EINVAL);

	/* A token longer than TOKEN_MAX_LEN is rejected before any work. */
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "v1.YWxpY2U.1700000060.", 22);
	assert_int_equal(token_verify(SECRET, big, "alice", NOW),
			 TOKEN_MALFORMED);
}

static void test_mint_small_buffer(void **state)
{
	char tok[TOKEN_MAX_LEN + 1], small[TOKEN_MAX_LEN + 1];
	size_t need;

	mint("alice", NOW + 60, tok);
	need = strlen(tok) + 1;
	for (size_t cap = 1; cap < need; cap++)
		if (token_mint(SECRET, "alice", NOW + 60, small, cap) !=
		    -ENOSPC)
			fail_msg("token_mint into %zu bytes did not return -ENOSPC (needs %zu)",
				 cap, need);
	assert_int_equal(token_mint(SECRET, "alice", NOW + 60, small, need),
			 0);
	assert_string_equal(small, tok);
}

static void test_status_strings(void **state)
{
	for (int s = TOKEN_OK; s <= TOKEN_WRONG_USER; s++) {
		assert_non_null(token_status_str(s));
		for (int t = TOKEN_OK; t < s; t++)
			assert_string_not_equal(token_status_str(s),
						token_status_str(t));
	}
	assert_non_null(token_status_str(99));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mint_verify),
		cmocka_unit_test(test_mint_matches_format),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_forged_signature),
		cmocka_unit_test(test_tampered_user),
		cmocka_unit_test(test_tampered_expiry),
		cmocka_unit_test(test_wrong_user),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_malformed_shapes),
		cmocka_unit_test(test_malformed_signed),
		cmocka_unit_test(test_signature_spare_bits),
		cmocka_unit_test(test_over_long),
		cmocka_unit_test(test_mint_small_buffer),
		cmocka_unit_test(test_status_strings),
	};

	return cmocka_run_group_tests_name("token", tests, NULL, NULL);
}

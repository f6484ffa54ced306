// SPDX-License-Identifier: MIT
/* HMAC-SHA256 login tokens; see token.h for the format. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "token.h"

#define TOKEN_PREFIX "v1."
#define SIG_LEN 32

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Encodes len bytes without padding; out needs 4 * len / 3 + 2 bytes. */
static size_t b64url_encode(const uint8_t *in, size_t len, char *out)
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
	return o;
}

static int b64url_value(char c)
{
	const char *p = c ? strchr(b64url, c) : NULL;

	return p ? (int)(p - b64url) : -1;
}

/* Decodes len characters into out (cap bytes). Returns the byte count or -1. */
static ssize_t b64url_decode(const char *in, size_t len, uint8_t *out,
			     size_t cap)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		int v = b64url_value(in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* Unused low bits must be zero, so each byte string has one encoding. */
	if (bits >= 6 || (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return (ssize_t)o;
}

static int sign(const char *secret, const char *data, size_t len,
		uint8_t sig[SIG_LEN])
{
	unsigned int sig_len = SIG_LEN;

	if (!HMAC(EVP_sha256(), secret, (int)strlen(secret),
		  (const uint8_t *)data, len, sig, &sig_len))
		return -EIO;
	return 0;
}

int token_mint(const char *secret, const char *user_id, int64_t expires,
	       char *out, size_t out_len)
{
	size_t user_len = strlen(user_id);
	char user_b64[TOKEN_MAX_USER_LEN * 2];
	char sig_b64[SIG_LEN * 2];
	uint8_t sig[SIG_LEN];
	int n;

	if (user_len == 0 || user_len > TOKEN_MAX_USER_LEN || expires < 0)
		return -EINVAL;
	b64url_encode((const uint8_t *)user_id, user_len, user_b64);
	n = snprintf(out, out_len, TOKEN_PREFIX "%s.%" PRId64, user_b64,
		     expires);
	if (n < 0 || (size_t)n >= out_len)
		return -ENOSPC;
	if (sign(secret, out, (size_t)n, sig) < 0)
		return -EIO;
	b64url_encode(sig, SIG_LEN, sig_b64);
	if ((size_t)n + 1 + strlen(sig_b64) >= out_len)
		return -ENOSPC;
	out[n] = '.';
	strcpy(out + n + 1, sig_b64);
	return 0;
}

/* Checks the signature over token[0 .. signed_len) against sig_text. */
static int check_signature(const char *secret, const char *token,
			   size_t signed_len, const char *sig_text)
{
	uint8_t want[SIG_LEN], got[SIG_LEN + 2];

	if (b64url_decode(sig_text, strlen(sig_text), got, sizeof(got)) !=
	    SIG_LEN)
		return TOKEN_MALFORMED;
	if (sign(secret, token, signed_len, want) < 0)
		return TOKEN_BAD_SIGNATURE;
	if (CRYPTO_memcmp(want, got, SIG_LEN) != 0)
		return TOKEN_BAD_SIGNATURE;
	return TOKEN_OK;
}

int token_verify(const char *secret, const char *token, const char *user_id,
		 int64_t now)
{
	const char *user_text, *exp_text, *sig_text;
	uint8_t user[TOKEN_MAX_USER_LEN + 2];
	ssize_t user_len;
	char *end;
	long long expires;
	int status;

	if (!token || !*token)
		return TOKEN_MISSING;
	if (strlen(token) > TOKEN_MAX_LEN ||
	    strncmp(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0)
		return TOKEN_MALFORMED;
	user_text = token + strlen(TOKEN_PREFIX);
	exp_text = strchr(user_text, '.');
	sig_text = exp_text ? strchr(exp_text + 1, '.') : NULL;
	if (!exp_text || !sig_text || strchr(sig_text + 1, '.'))
		return TOKEN_MALFORMED;
	exp_text++;
	sig_text++;

	status = check_signature(secret, token, (size_t)(sig_text - 1 - token),
				 sig_text);
	if (status != TOKEN_OK)
		return status;

	/* strtoll() would also take a sign or leading spaces: digits only. */
	if (*exp_text < '0' || *exp_text > '9')
		return TOKEN_MALFORMED;
	errno = 0;
	expires = strtoll(exp_text, &end, 10);
	if (errno || end != sig_text - 1 || end == exp_text)
		return TOKEN_MALFORMED;
	if (expires <= now)
		return TOKEN_EXPIRED;

	user_len = b64url_decode(user_text, (size_t)(exp_text - 1 - user_text),
				 user, TOKEN_MAX_USER_LEN);
	if (user_len <= 0)
		return TOKEN_MALFORMED;
	if (!user_id || strlen(user_id) != (size_t)user_len ||
	    memcmp(user, user_id, (size_t)user_len) != 0)
		return TOKEN_WRONG_USER;
	return TOKEN_OK;
}

const char *token_status_str(int status)
{
	switch (status) {
	case TOKEN_OK:
		return "ok";
	case TOKEN_MISSING:
		return "token missing";
	case TOKEN_MALFORMED:
		return "token malformed";
	case TOKEN_BAD_SIGNATURE:
		return "token signature invalid";
	case TOKEN_EXPIRED:
		return "token expired";
	case TOKEN_WRONG_USER:
		return "token issued for another user";
	default:
		return "token invalid";
	}
}

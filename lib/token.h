/* SPDX-License-Identifier: MIT */
/*
 * Login tokens: "v1.<user id, base64url>.<expiry, unix seconds>.<signature>",
 * where the signature is the base64url HMAC-SHA256 of everything before the
 * last dot, keyed with the business daemon's secret.
 */
#ifndef IMGW_TOKEN_H
#define IMGW_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_MAX_LEN 512
#define TOKEN_MAX_USER_LEN 128

enum token_status {
	TOKEN_OK = 0,
	TOKEN_MISSING = 1,
	TOKEN_MALFORMED = 2,
	TOKEN_BAD_SIGNATURE = 3,
	TOKEN_EXPIRED = 4,
	TOKEN_WRONG_USER = 5,
};

/*
 * Writes a token for user_id valid until expires (unix seconds) into out.
 * Returns 0, -EINVAL for an empty or over-long user id or a negative expiry,
 * -ENOSPC when out is too small, or -EIO when HMAC fails.
 */
int token_mint(const char *secret, const char *user_id, int64_t expires,
	       char *out, size_t out_len);

/* Checks token against secret, the claimed user_id and the time now.
 * Returns a token_status. */
int token_verify(const char *secret, const char *token, const char *user_id,
		 int64_t now);

const char *token_status_str(int status);

#endif

// SPDX-License-Identifier: MIT
/* Link secret MACs of REGISTER frames; see linkauth.h for the format. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "linkauth.h"

#define LINKAUTH_CONTEXT "imgw-link-v1\n"
#define LINKAUTH_STR_(x) #x
#define LINKAUTH_STR(x) LINKAUTH_STR_(x)

int linkauth_mac(const char *secret, const char *node_id, const char *boot_id,
		 int64_t auth_time, uint8_t mac[LINKAUTH_MAC_LEN])
{
	unsigned int mac_len = LINKAUTH_MAC_LEN;
	char text[512];
	int n;

	if (!secret || !secret[0] || strchr(node_id, '\n') ||
	    strchr(boot_id, '\n'))
		return -EINVAL;
	n = snprintf(text, sizeof(text), LINKAUTH_CONTEXT "%s\n%s\n%" PRId64,
		     node_id, boot_id, auth_time);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -EINVAL;
	if (!HMAC(EVP_sha256(), secret, (int)strlen(secret),
		  (const uint8_t *)text, (size_t)n, mac, &mac_len))
		return -EIO;
	return 0;
}

int linkauth_verify(const char *secret, const char *node_id,
		    const char *boot_id, int64_t auth_time, const uint8_t *mac,
		    size_t mac_len, int64_t now)
{
	uint8_t want[LINKAUTH_MAC_LEN];

	if (mac_len == 0 || auth_time == 0)
		return LINKAUTH_MISSING;
	if (mac_len != LINKAUTH_MAC_LEN)
		return LINKAUTH_BAD_MAC;
	if (linkauth_mac(secret, node_id, boot_id, auth_time, want) < 0)
		return LINKAUTH_BAD_MAC;
	if (CRYPTO_memcmp(want, mac, LINKAUTH_MAC_LEN) != 0)
		return LINKAUTH_BAD_MAC;
	/* Compared this way round, an extreme auth_time cannot overflow. */
	if (auth_time < now - LINKAUTH_MAX_SKEW_SEC ||
	    auth_time > now + LINKAUTH_MAX_SKEW_SEC)
		return LINKAUTH_STALE;
	return LINKAUTH_OK;
}

const char *linkauth_status_str(int status)
{
	switch (status) {
	case LINKAUTH_OK:
		return "ok";
	case LINKAUTH_MISSING:
		return "link auth missing: the daemon requires a link secret";
	case LINKAUTH_BAD_MAC:
		return "link auth invalid: the link secrets differ";
	case LINKAUTH_STALE:
		return "link auth_time more than " LINKAUTH_STR(LINKAUTH_MAX_SKEW_SEC) " s from the daemon's clock";
	default:
		return "link auth invalid";
	}
}

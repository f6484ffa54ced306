/* SPDX-License-Identifier: MIT */
/*
 * Authentication of the gateway <-> business daemon link with a shared
 * secret. A gateway's REGISTER carries auth_time (unix seconds) and auth.
 * auth is the HMAC-SHA256, keyed with the link secret, of the text
 * "imgw-link-v1\n" node_id "\n" boot_id "\n" auth_time (decimal).
 * The daemon recomputes it and accepts auth_time within
 * LINKAUTH_MAX_SKEW_SEC of its own clock.
 */
#ifndef IMGW_LINKAUTH_H
#define IMGW_LINKAUTH_H

#include <stddef.h>
#include <stdint.h>

#define LINKAUTH_MAC_LEN 32
/* Largest difference between auth_time and the daemon's clock. */
#define LINKAUTH_MAX_SKEW_SEC 300
/* Maximum length of a link secret in bytes, in both daemons. */
#define LINKAUTH_SECRET_MAX 255

enum linkauth_status {
	LINKAUTH_OK = 0,
	LINKAUTH_MISSING = 1,    /* no auth or no auth_time */
	LINKAUTH_BAD_MAC = 2,    /* wrong length, or another secret signed it */
	LINKAUTH_STALE = 3,      /* auth_time too far from the daemon's clock */
};

/*
 * Computes the link MAC into mac. Returns 0, -EINVAL when node_id or
 * boot_id contains a newline (the signed text would be ambiguous) or the
 * secret is empty, or -EIO when HMAC fails.
 */
int linkauth_mac(const char *secret, const char *node_id, const char *boot_id,
		 int64_t auth_time, uint8_t mac[LINKAUTH_MAC_LEN]);

/*
 * Checks a REGISTER's auth (mac_len bytes) and auth_time against secret and
 * the daemon's clock now (unix seconds). The MAC is checked before the
 * time, so only a holder of the secret learns that its clock is off.
 * Returns an enum linkauth_status.
 */
int linkauth_verify(const char *secret, const char *node_id,
		    const char *boot_id, int64_t auth_time, const uint8_t *mac,
		    size_t mac_len, int64_t now);

/* Returns a short reason for status, for logs and REGISTER_RESULT. */
const char *linkauth_status_str(int status);

#endif

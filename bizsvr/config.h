/* SPDX-License-Identifier: MIT */
/*
 * Settings of the business daemon: defaults, then the [bizsvr] and [super]
 * sections of an INI file, then IMGW_SECRET and IMGW_LINK_SECRET for the
 * secrets, then command line flags (--super-KEY for the keys of [super]).
 */
#ifndef BIZSVR_CONFIG_H
#define BIZSVR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "super.h"

#define CONFIG_SYNC_LIMIT_MAX 1000
#define CONFIG_MAX_PAYLOAD_MAX (8 * 1024 * 1024)
/* One hundred years, the longest token lifetime the admin API accepts. */
#define CONFIG_TOKEN_TTL_MAX (100LL * 365 * 86400)

struct bizsvr_config {
	char *listen;            /* host:port for gateway links */
	char *http;              /* host:port for the admin API */
	char *db;                /* SQLite database path */
	char *secret;            /* token HMAC key */
	char *link_secret;       /* gateway REGISTER HMAC key, or NULL: none */
	size_t max_payload;      /* bytes */
	int64_t token_ttl;       /* seconds */
	unsigned int sync_limit; /* messages per SYNC by default and at most */
	int log_level;           /* enum log_level */
	int super_enabled;       /* [super] enabled: 0 keeps every session normal */
	unsigned int super_max_nodes; /* gateway node indexes of the super table */
	struct super_rules super_rules; /* [super] knobs, checked by config_load */
};

enum config_result {
	CONFIG_OK = 0,
	CONFIG_EXIT_OK = 1,      /* --help was printed */
	CONFIG_EXIT_USAGE = 2,   /* an error was printed; exit with status 2 */
};

/* Fills cfg from the command line, the file it names and the environment.
 * Returns an enum config_result; free cfg with config_free() in every case. */
int config_load(struct bizsvr_config *cfg, int argc, char **argv);
void config_free(struct bizsvr_config *cfg);

#endif

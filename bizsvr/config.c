// SPDX-License-Identifier: MIT
/*
 * Command line and INI settings of the business daemon; see config.h. The
 * keys share one table, which lib/config_parse.c walks, and every value goes
 * through one parser per value kind, so a bad value gets the same error
 * whether it came from the file or a flag.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "config.h"
#include "config_parse.h"
#include "linkauth.h"
#include "log.h"

enum bizsvr_config_kind {
	KIND_ADDR,              /* HOST:PORT */
	KIND_TEXT,              /* a non-empty string */
	KIND_SECRET,            /* a non-empty string never shown */
	KIND_LINK_SECRET,       /* 1 to LINKAUTH_SECRET_MAX bytes never shown */
	KIND_SIZE,              /* size_t from min to max */
	KIND_INT64,             /* int64_t from min to max */
	KIND_UINT,              /* unsigned int from min to max */
	KIND_LOG_LEVEL,
	KIND_BOOL,              /* true, false, yes, no, 1 or 0 */
};

#define CONFIG_COUNT_MAX 1000000000LL
#define CONFIG_MS_MAX (24LL * 3600 * 1000)

/* String kinds store a malloc'd copy in a char * field. */
static int set_string(char **field, const char *value)
{
	char *copy = strdup(value);

	if (!copy)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

/* Parses a decimal integer in [min, max]. Returns 0 or -EINVAL. A sign or
 * leading space is invalid, as in imgw, though strtoll() would take it. */
static int parse_int(const char *value, long long min, long long max,
		     long long *out)
{
	char *end;
	long long v;

	if (value[0] < '0' || value[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoll(value, &end, 10);
	if (errno || end == value || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_bool(const char *value, int *out)
{
	if (!strcmp(value, "true") || !strcmp(value, "yes") ||
	    !strcmp(value, "1"))
		*out = 1;
	else if (!strcmp(value, "false") || !strcmp(value, "no") ||
		 !strcmp(value, "0"))
		*out = 0;
	else
		return -EINVAL;
	return 0;
}

/* Parses a number kind into its field. Returns 0 or -EINVAL. */
static int config_apply_number(void *field, const struct config_key *key,
			       const char *value)
{
	long long v;

	if (parse_int(value, (long long)key->min, (long long)key->max, &v))
		return -EINVAL;
	if (key->kind == KIND_SIZE)
		*(size_t *)field = (size_t)v;
	else if (key->kind == KIND_INT64)
		*(int64_t *)field = v;
	else
		*(unsigned int *)field = (unsigned int)v;
	return 0;
}

static int config_apply(void *cfg, const struct config_key *key,
			const char *value)
{
	void *field = (char *)cfg + key->offset;
	int level;

	switch (key->kind) {
	case KIND_ADDR:
		if (config_check_addr(value))
			return -EINVAL;
		return set_string(field, value);
	case KIND_TEXT:
	case KIND_SECRET:
		return value[0] ? set_string(field, value) : -EINVAL;
	case KIND_LINK_SECRET:
		if (!value[0] || strlen(value) > LINKAUTH_SECRET_MAX)
			return -EINVAL;
		return set_string(field, value);
	case KIND_SIZE:
	case KIND_INT64:
	case KIND_UINT:
		return config_apply_number(field, key, value);
	case KIND_LOG_LEVEL:
		level = log_level_parse(value);
		if (level < 0)
			return -EINVAL;
		*(int *)field = level;
		return 0;
	case KIND_BOOL:
		return parse_bool(value, field);
	}
	return -EINVAL;
}

#define KEY(section, name, metavar, kind, field, min, max, help, expected) \
	{ section, name, metavar, help, kind,                               \
	  offsetof(struct bizsvr_config, field), min, max, expected,        \
	  kind == KIND_SECRET || kind == KIND_LINK_SECRET }

static const struct config_key config_keys[] = {
	KEY("bizsvr", "listen", "HOST:PORT", KIND_ADDR, listen, 0, 0,
	    "address for gateway links (default 127.0.0.1:7080)",
	    "HOST:PORT with a port from 1 to 65535"),
	KEY("bizsvr", "http", "HOST:PORT", KIND_ADDR, http, 0, 0,
	    "address of the admin HTTP API (default 127.0.0.1:7081)",
	    "HOST:PORT with a port from 1 to 65535"),
	KEY("bizsvr", "db", "PATH", KIND_TEXT, db, 0, 0,
	    "SQLite database file (default ./imgw.db)",
	    "a non-empty path"),
	KEY("bizsvr", "secret", "SECRET", KIND_SECRET, secret, 0, 0,
	    "token signing key; also [bizsvr] secret or env IMGW_SECRET",
	    "a non-empty string"),
	KEY("bizsvr", "link_secret", "SECRET", KIND_LINK_SECRET, link_secret,
	    0, 0,
	    "key gateways must sign REGISTER with (default none: any gateway may register); also env IMGW_LINK_SECRET",
	    "1 to 255 bytes"),
	KEY("bizsvr", "max_payload", "BYTES", KIND_SIZE, max_payload, 1,
	    CONFIG_MAX_PAYLOAD_MAX,
	    "largest message payload in bytes (default 32768)",
	    "bytes from 1 to 8388608"),
	KEY("bizsvr", "token_ttl", "SEC", KIND_INT64, token_ttl, 1,
	    CONFIG_TOKEN_TTL_MAX,
	    "lifetime of admin-minted tokens in seconds (default 86400)",
	    "seconds from 1 to 3153600000"),
	KEY("bizsvr", "sync_limit", "N", KIND_UINT, sync_limit, 1,
	    CONFIG_SYNC_LIMIT_MAX,
	    "messages per SYNC reply, default and maximum (default 100)",
	    "a count from 1 to 1000"),
	KEY("bizsvr", "log_level", "LEVEL", KIND_LOG_LEVEL, log_level, 0, 0,
	    "error, warn, info or debug (default info)",
	    "error, warn, info or debug"),
	KEY("super", "enabled", "BOOL", KIND_BOOL, super_enabled, 0, 0,
	    "super sessions on or off (default true)",
	    "true, false, yes, no, 1 or 0"),
	KEY("super", "upgrade_min_members", "N", KIND_UINT,
	    super_rules.upgrade_min_members, 0, CONFIG_COUNT_MAX,
	    "members needed before the rules upgrade (default 500)",
	    "a count from 0 to 1000000000"),
	KEY("super", "upgrade_min_online", "N", KIND_UINT,
	    super_rules.upgrade_min_online, 0, CONFIG_COUNT_MAX,
	    "online members that upgrade a big session (default 200)",
	    "a count from 0 to 1000000000"),
	KEY("super", "upgrade_rate", "MSG/S", KIND_UINT,
	    super_rules.upgrade_rate, 0, CONFIG_COUNT_MAX,
	    "messages per second that upgrade a big session (default 20)",
	    "messages per second from 0 to 1000000000"),
	KEY("super", "demote_rate", "MSG/S", KIND_UINT,
	    super_rules.demote_rate, 0, CONFIG_COUNT_MAX,
	    "demote below this rate with few members online (default 5)",
	    "messages per second from 0 to 1000000000"),
	KEY("super", "demote_online", "N", KIND_UINT,
	    super_rules.demote_online, 0, CONFIG_COUNT_MAX,
	    "demote below this many online members at a low rate (default 100)",
	    "a count from 0 to 1000000000"),
	KEY("super", "window_ms", "MS", KIND_UINT, super_rules.window_ms,
	    SUPER_RATE_SLOTS, CONFIG_MS_MAX,
	    "length of the message rate window, ms (default 10000)",
	    "milliseconds from 10 to 86400000"),
	KEY("super", "min_dwell_ms", "MS", KIND_UINT, super_rules.min_dwell_ms,
	    0, CONFIG_MS_MAX,
	    "ms from one rule-made transition to the next (default 60000)",
	    "milliseconds from 0 to 86400000"),
	KEY("super", "retry_ms", "MS", KIND_UINT, super_rules.retry_ms, 2,
	    CONFIG_MS_MAX,
	    "re-send period of unacknowledged transitions, ms (default 2000)",
	    "milliseconds from 2 to 86400000"),
	KEY("super", "max_nodes", "N", KIND_UINT, super_max_nodes, 1,
	    SUPER_MAX_NODES,
	    "gateway nodes the super table tracks (default 256)",
	    "a count from 1 to 4096"),
};

static void config_defaults(struct bizsvr_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen = strdup("127.0.0.1:7080");
	cfg->http = strdup("127.0.0.1:7081");
	cfg->db = strdup("./imgw.db");
	cfg->max_payload = 32768;
	cfg->token_ttl = 86400;
	cfg->sync_limit = 100;
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->super_enabled = 1;
	cfg->super_max_nodes = SUPER_DEFAULT_MAX_NODES;
	super_rules_default(&cfg->super_rules);
}

static void config_report(const struct config_problem *p)
{
	switch (p->kind) {
	case CONFIG_READ_FAILED:
		fprintf(stderr, "bizsvr: reading config file %s failed: %s\n",
			p->path, strerror(p->err));
		break;
	case CONFIG_SYNTAX_ERROR:
		fprintf(stderr, "bizsvr: %s:%d: INI syntax error%s%s\n",
			p->path, p->status, p->detail ? ": " : "",
			p->detail ? p->detail : "");
		break;
	case CONFIG_UNKNOWN_KEY:
		fprintf(stderr, "bizsvr: %s: unknown key '%s' in [%s]\n",
			p->path, p->name, p->section);
		break;
	case CONFIG_INVALID_VALUE:
		if (p->path)
			fprintf(stderr, "bizsvr: %s: invalid [%s] %s '%s': expected %s\n",
				p->path, p->section, p->name, p->value,
				p->key->expected);
		else
			fprintf(stderr, "bizsvr: invalid %s '%s': expected %s\n",
				p->name, p->value, p->key->expected);
		break;
	case CONFIG_EXTRA_ARGUMENT:
		fprintf(stderr, "bizsvr: unexpected argument '%s'\n",
			p->value);
		break;
	}
}

/* Takes the secrets from IMGW_SECRET and IMGW_LINK_SECRET, between the file
 * and the flags. */
static int config_load_env(void *arg)
{
	struct bizsvr_config *cfg = arg;
	const char *secret = getenv("IMGW_SECRET");
	const char *link_secret = getenv("IMGW_LINK_SECRET");

	if (secret && secret[0] && set_string(&cfg->secret, secret) < 0)
		return -EINVAL;
	if (link_secret && link_secret[0] &&
	    (strlen(link_secret) > LINKAUTH_SECRET_MAX ||
	     set_string(&cfg->link_secret, link_secret) < 0)) {
		fprintf(stderr, "bizsvr: invalid IMGW_LINK_SECRET: expected 1 to 255 bytes\n");
		return -EINVAL;
	}
	return 0;
}

static const char *const config_sections[] = { "bizsvr", "super", NULL };

static const struct config_spec config_spec = {
	.program = "bizsvr",
	.usage = "usage: bizsvr [--config FILE] [OPTION...]",
	.config_help = "INI file with [bizsvr] and [super] sections whose keys are the option names with '_' for '-' ([super] keys without the 'super-' prefix); flags override it",
	.help_width = 34,
	.sections = config_sections,
	.sections_text = "[bizsvr] or [super]",
	.keys = config_keys,
	.key_count = sizeof(config_keys) / sizeof(config_keys[0]),
	.apply = config_apply,
	.report = config_report,
	.load_env = config_load_env,
};

int config_load(struct bizsvr_config *cfg, int argc, char **argv)
{
	int rc;

	config_defaults(cfg);
	if (!cfg->listen || !cfg->http || !cfg->db) {
		fprintf(stderr, "bizsvr: out of memory\n");
		return CONFIG_EXIT_USAGE;
	}
	rc = config_parse(&config_spec, cfg, argc, argv);
	if (rc == 1)
		return CONFIG_EXIT_OK;
	if (rc < 0)
		return CONFIG_EXIT_USAGE;
	if (!cfg->secret) {
		fprintf(stderr, "bizsvr: missing token secret: set --secret, [bizsvr] secret or IMGW_SECRET\n");
		return CONFIG_EXIT_USAGE;
	}
	if (super_rules_check(&cfg->super_rules) < 0) {
		fprintf(stderr, "bizsvr: invalid [super] rules: demote_rate must not exceed upgrade_rate, nor demote_online upgrade_min_online\n");
		return CONFIG_EXIT_USAGE;
	}
	return CONFIG_OK;
}

void config_free(struct bizsvr_config *cfg)
{
	if (cfg->secret)
		explicit_bzero(cfg->secret, strlen(cfg->secret));
	if (cfg->link_secret)
		explicit_bzero(cfg->link_secret, strlen(cfg->link_secret));
	free(cfg->listen);
	free(cfg->http);
	free(cfg->db);
	free(cfg->secret);
	free(cfg->link_secret);
	memset(cfg, 0, sizeof(*cfg));
}

// SPDX-License-Identifier: MIT
/*
 * Command line and INI parsing of the business daemon; see config.h. Every
 * value goes through one setter per key, so a bad value gets the same error
 * whether it came from the file or a flag.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config.h"
#include "httputil.h"
#include "linkauth.h"
#include "log.h"

struct config_key {
	const char *section;     /* INI section: "bizsvr" or "super" */
	const char *name;        /* INI key; the flag is --name with '-' */
	const char *metavar;
	int (*set)(struct bizsvr_config *cfg, const char *value);
	const char *help;
	const char *expected;    /* the valid values, for error messages */
};

static int set_string(char **field, const char *value)
{
	char *copy = strdup(value);

	if (!copy)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

static int set_address(char **field, const char *value)
{
	char host[256];
	uint16_t port;

	if (parse_host_port(value, host, sizeof(host), &port) < 0 || !port)
		return -EINVAL;
	return set_string(field, value);
}

/* Parses a decimal integer in [min, max]. Returns 0 or -EINVAL. */
static int parse_int(const char *value, long long min, long long max,
		     long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(value, &end, 10);
	if (errno || end == value || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int set_listen(struct bizsvr_config *cfg, const char *value)
{
	return set_address(&cfg->listen, value);
}

static int set_http(struct bizsvr_config *cfg, const char *value)
{
	return set_address(&cfg->http, value);
}

static int set_db(struct bizsvr_config *cfg, const char *value)
{
	return value[0] ? set_string(&cfg->db, value) : -EINVAL;
}

static int set_secret(struct bizsvr_config *cfg, const char *value)
{
	return value[0] ? set_string(&cfg->secret, value) : -EINVAL;
}

static int set_link_secret(struct bizsvr_config *cfg, const char *value)
{
	if (!value[0] || strlen(value) > LINKAUTH_SECRET_MAX)
		return -EINVAL;
	return set_string(&cfg->link_secret, value);
}

/* Returns whether key sets a secret, whose value no message may show. */
static int config_key_is_secret(const struct config_key *key)
{
	return key->set == set_secret || key->set == set_link_secret;
}

static int set_max_payload(struct bizsvr_config *cfg, const char *value)
{
	long long v;
	int err = parse_int(value, 1, CONFIG_MAX_PAYLOAD_MAX, &v);

	if (!err)
		cfg->max_payload = (size_t)v;
	return err;
}

static int set_token_ttl(struct bizsvr_config *cfg, const char *value)
{
	long long v;
	int err = parse_int(value, 1, CONFIG_TOKEN_TTL_MAX, &v);

	if (!err)
		cfg->token_ttl = v;
	return err;
}

static int set_sync_limit(struct bizsvr_config *cfg, const char *value)
{
	long long v;
	int err = parse_int(value, 1, CONFIG_SYNC_LIMIT_MAX, &v);

	if (!err)
		cfg->sync_limit = (unsigned int)v;
	return err;
}

static int set_log_level(struct bizsvr_config *cfg, const char *value)
{
	int level = log_level_parse(value);

	if (level < 0)
		return -EINVAL;
	cfg->log_level = level;
	return 0;
}

static int set_super_enabled(struct bizsvr_config *cfg, const char *value)
{
	if (!strcmp(value, "true") || !strcmp(value, "yes") ||
	    !strcmp(value, "1"))
		cfg->super_enabled = 1;
	else if (!strcmp(value, "false") || !strcmp(value, "no") ||
		 !strcmp(value, "0"))
		cfg->super_enabled = 0;
	else
		return -EINVAL;
	return 0;
}

/* Parses value into *field within [min, max]. Returns 0 or -EINVAL. */
static int set_uint(unsigned int *field, const char *value, long long min,
		    long long max)
{
	long long v;
	int err = parse_int(value, min, max, &v);

	if (!err)
		*field = (unsigned int)v;
	return err;
}

#define CONFIG_COUNT_MAX 1000000000LL
#define CONFIG_MS_MAX (24LL * 3600 * 1000)

static int set_super_min_members(struct bizsvr_config *cfg, const char *value)
{
	return set_uint(&cfg->super_rules.upgrade_min_members, value, 0,
			CONFIG_COUNT_MAX);
}

static int set_super_min_online(struct bizsvr_config *cfg, const char *value)
{
	return set_uint(&cfg->super_rules.upgrade_min_online, value, 0,
			CONFIG_COUNT_MAX);
}

static int set_super_upgrade_rate(struct bizsvr_config *cfg, const char *value)
{
	return set_uint(&cfg->super_rules.upgrade_rate, value, 0,
			CONFIG_COUNT_MAX);
}

static int set_super_demote_rate(struct bizsvr_config *cfg, const char *value)
{
	return set_uint(&cfg->super_rules.demote_rate, value, 0,
			CONFIG_COUNT_MAX);
}

static int set_super_demote_online(struct bizsvr_config *cfg, const char *value)
{
	return set_uint(&cfg->super_rules.demote_online, value, 0,
			CONFIG_COUNT_MAX);
}

static int set_super_window(struct bizsvr_config *cfg, const char *value)
{
	return set_uint(&cfg->super_rules.window_ms, value, SUPER_RATE_SLOTS,
			CONFIG_MS_MAX);
}

static int set_super_dwell(struct bizsvr_config *cfg, const char *value)
{
	return set_uint(&cfg->super_rules.min_dwell_ms, value, 0,
			CONFIG_MS_MAX);
}

static int set_super_retry(struct bizsvr_config *cfg, const char *value)
{
	return set_uint(&cfg->super_rules.retry_ms, value, 2, CONFIG_MS_MAX);
}

static int set_super_max_nodes(struct bizsvr_config *cfg, const char *value)
{
	return set_uint(&cfg->super_max_nodes, value, 1, SUPER_MAX_NODES);
}

static const struct config_key config_keys[] = {
	{ "bizsvr", "listen", "HOST:PORT", set_listen,
	  "address for gateway links (default 127.0.0.1:7080)",
	  "HOST:PORT with a port from 1 to 65535" },
	{ "bizsvr", "http", "HOST:PORT", set_http,
	  "address of the admin HTTP API (default 127.0.0.1:7081)",
	  "HOST:PORT with a port from 1 to 65535" },
	{ "bizsvr", "db", "PATH", set_db, "SQLite database file (default ./imgw.db)",
	  "a non-empty path" },
	{ "bizsvr", "secret", "SECRET", set_secret,
	  "token signing key; also [bizsvr] secret or env IMGW_SECRET",
	  "a non-empty string" },
	{ "bizsvr", "link_secret", "SECRET", set_link_secret,
	  "key gateways must sign REGISTER with (default none: any gateway may register); also env IMGW_LINK_SECRET",
	  "1 to 255 bytes" },
	{ "bizsvr", "max_payload", "BYTES", set_max_payload,
	  "largest message payload in bytes (default 32768)",
	  "bytes from 1 to 8388608" },
	{ "bizsvr", "token_ttl", "SEC", set_token_ttl,
	  "lifetime of admin-minted tokens in seconds (default 86400)",
	  "seconds from 1 to 3153600000" },
	{ "bizsvr", "sync_limit", "N", set_sync_limit,
	  "messages per SYNC reply, default and maximum (default 100)",
	  "a count from 1 to 1000" },
	{ "bizsvr", "log_level", "LEVEL", set_log_level,
	  "error, warn, info or debug (default info)",
	  "error, warn, info or debug" },
	{ "super", "enabled", "BOOL", set_super_enabled,
	  "super sessions on or off (default true)",
	  "true, false, yes, no, 1 or 0" },
	{ "super", "upgrade_min_members", "N", set_super_min_members,
	  "members needed before the rules upgrade (default 500)",
	  "a count from 0 to 1000000000" },
	{ "super", "upgrade_min_online", "N", set_super_min_online,
	  "online members that upgrade a big session (default 200)",
	  "a count from 0 to 1000000000" },
	{ "super", "upgrade_rate", "MSG/S", set_super_upgrade_rate,
	  "messages per second that upgrade a big session (default 20)",
	  "messages per second from 0 to 1000000000" },
	{ "super", "demote_rate", "MSG/S", set_super_demote_rate,
	  "demote below this rate with few members online (default 5)",
	  "messages per second from 0 to 1000000000" },
	{ "super", "demote_online", "N", set_super_demote_online,
	  "demote below this many online members at a low rate (default 100)",
	  "a count from 0 to 1000000000" },
	{ "super", "window_ms", "MS", set_super_window,
	  "length of the message rate window, ms (default 10000)",
	  "milliseconds from 10 to 86400000" },
	{ "super", "min_dwell_ms", "MS", set_super_dwell,
	  "ms from one rule-made transition to the next (default 60000)",
	  "milliseconds from 0 to 86400000" },
	{ "super", "retry_ms", "MS", set_super_retry,
	  "re-send period of unacknowledged transitions, ms (default 2000)",
	  "milliseconds from 2 to 86400000" },
	{ "super", "max_nodes", "N", set_super_max_nodes,
	  "gateway nodes the super table tracks (default 256)",
	  "a count from 1 to 4096" },
};

#define CONFIG_KEY_COUNT (sizeof(config_keys) / sizeof(config_keys[0]))
/* Room for the longest flag name, "super-upgrade-min-members", and a NUL. */
#define CONFIG_FLAG_MAX 32

static const struct config_key *config_key_find(const char *section,
						const char *name)
{
	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		if (strcmp(config_keys[i].section, section) == 0 &&
		    strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	}
	return NULL;
}

/* Writes the flag name of key, without the dashes: the [super] keys get a
 * "super-" prefix, and '_' becomes '-'. */
static void config_flag_name(const struct config_key *key, char *out,
			     size_t cap)
{
	snprintf(out, cap, "%s%s",
		 strcmp(key->section, "super") == 0 ? "super-" : "", key->name);
	for (char *p = out; *p; p++)
		*p = *p == '_' ? '-' : *p;
}

static void config_usage(FILE *out)
{
	fprintf(out, "usage: bizsvr [--config FILE] [OPTION...]\n\n"
		"  --config FILE                      INI file with [bizsvr] and [super] sections whose keys are the option names with '_' for '-' ([super] keys without the 'super-' prefix); flags override it\n");
	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		char name[CONFIG_FLAG_MAX], flag[CONFIG_FLAG_MAX + 16];

		config_flag_name(&config_keys[i], name, sizeof(name));
		snprintf(flag, sizeof(flag), "--%s %s", name,
			 config_keys[i].metavar);
		fprintf(out, "  %-34s %s\n", flag, config_keys[i].help);
	}
	fprintf(out, "  --help                             print this help and exit\n");
}

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

struct ini_state {
	struct bizsvr_config *cfg;
	const char *path;
	int failed;
	char bad_section[64];    /* the last unknown section reported */
};

/* Rejects a key outside [bizsvr] and [super], naming each bad section
 * once. libinih reports sections only through their keys, so an empty
 * unknown section passes. */
static void config_ini_bad_section(struct ini_state *st, const char *section,
				   const char *name)
{
	st->failed = 1;
	if (!section[0]) {
		fprintf(stderr, "bizsvr: %s: key '%s' is outside a section: expected it under [bizsvr] or [super]\n",
			st->path, name);
		return;
	}
	if (strcmp(st->bad_section, section) == 0)
		return;
	snprintf(st->bad_section, sizeof(st->bad_section), "%s", section);
	fprintf(stderr, "bizsvr: %s: unknown section [%s]: expected [bizsvr] or [super]\n",
		st->path, section);
}

static int config_ini_entry(void *arg, const char *section, const char *name,
			    const char *value)
{
	struct ini_state *st = arg;
	const struct config_key *key;

	if (strcmp(section, "bizsvr") != 0 && strcmp(section, "super") != 0) {
		config_ini_bad_section(st, section, name);
		return 1;
	}
	key = config_key_find(section, name);
	if (!key) {
		fprintf(stderr, "bizsvr: %s: unknown key '%s' in [%s]\n",
			st->path, name, section);
		st->failed = 1;
		return 1;
	}
	if (key->set(st->cfg, value) < 0) {
		fprintf(stderr, "bizsvr: %s: invalid [%s] %s '%s': expected %s\n",
			st->path, section, name,
			config_key_is_secret(key) ? "(hidden)" : value,
			key->expected);
		st->failed = 1;
	}
	return 1;
}

static int config_read_file(struct bizsvr_config *cfg, const char *path)
{
	struct ini_state st = { .cfg = cfg, .path = path };
	int rc = ini_parse(path, config_ini_entry, &st);

	if (rc < 0) {
		fprintf(stderr, "bizsvr: reading config file %s failed: %s\n",
			path, strerror(errno));
		return -EINVAL;
	}
	if (rc > 0) {
		fprintf(stderr, "bizsvr: %s:%d: INI syntax error\n", path, rc);
		return -EINVAL;
	}
	return st.failed ? -EINVAL : 0;
}

enum {
	OPT_CONFIG = 1000,
	OPT_HELP,
	OPT_KEY_BASE,            /* OPT_KEY_BASE + i is config_keys[i] */
};

/* Builds the getopt_long table with the flag names in names. */
static void config_options(struct option *opts, char names[][CONFIG_FLAG_MAX])
{
	size_t i;

	for (i = 0; i < CONFIG_KEY_COUNT; i++) {
		config_flag_name(&config_keys[i], names[i], CONFIG_FLAG_MAX);
		opts[i] = (struct option){ names[i], required_argument, NULL,
					   OPT_KEY_BASE + (int)i };
	}
	opts[i++] = (struct option){ "config", required_argument, NULL,
				     OPT_CONFIG };
	opts[i++] = (struct option){ "help", no_argument, NULL, OPT_HELP };
	opts[i] = (struct option){ 0 };
}

/*
 * Runs getopt over argv. The first pass (apply_keys 0) only finds --config
 * and --help, so that the second pass can let every other flag override the
 * file.
 */
static int config_parse_args(struct bizsvr_config *cfg, int argc, char **argv,
			     int apply_keys, const char **config_path)
{
	struct option opts[CONFIG_KEY_COUNT + 3];
	char names[CONFIG_KEY_COUNT][CONFIG_FLAG_MAX];
	const struct config_key *key;
	int c;

	config_options(opts, names);
	optind = 1;
	opterr = apply_keys;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == OPT_HELP) {
			config_usage(stdout);
			return CONFIG_EXIT_OK;
		}
		if (c == OPT_CONFIG) {
			*config_path = optarg;
			continue;
		}
		if (c < OPT_KEY_BASE) {
			if (!apply_keys)
				continue;
			/* getopt_long has printed what was wrong. */
			fprintf(stderr, "bizsvr: run 'bizsvr --help' for the options\n");
			return CONFIG_EXIT_USAGE;
		}
		if (!apply_keys)
			continue;
		key = &config_keys[c - OPT_KEY_BASE];
		if (key->set(cfg, optarg) < 0) {
			fprintf(stderr, "bizsvr: invalid --%s '%s': expected %s\n",
				names[c - OPT_KEY_BASE],
				config_key_is_secret(key) ? "(hidden)" : optarg,
				key->expected);
			return CONFIG_EXIT_USAGE;
		}
	}
	if (apply_keys && optind < argc) {
		fprintf(stderr, "bizsvr: unexpected argument '%s'\n",
			argv[optind]);
		return CONFIG_EXIT_USAGE;
	}
	return CONFIG_OK;
}

int config_load(struct bizsvr_config *cfg, int argc, char **argv)
{
	const char *config_path = NULL;
	const char *env_secret, *env_link_secret;
	int rc;

	config_defaults(cfg);
	if (!cfg->listen || !cfg->http || !cfg->db) {
		fprintf(stderr, "bizsvr: out of memory\n");
		return CONFIG_EXIT_USAGE;
	}
	rc = config_parse_args(cfg, argc, argv, 0, &config_path);
	if (rc != CONFIG_OK)
		return rc;
	if (config_path && config_read_file(cfg, config_path) < 0)
		return CONFIG_EXIT_USAGE;
	env_secret = getenv("IMGW_SECRET");
	if (env_secret && env_secret[0] && set_secret(cfg, env_secret) < 0)
		return CONFIG_EXIT_USAGE;
	env_link_secret = getenv("IMGW_LINK_SECRET");
	if (env_link_secret && env_link_secret[0] &&
	    set_link_secret(cfg, env_link_secret) < 0) {
		fprintf(stderr, "bizsvr: invalid IMGW_LINK_SECRET: expected 1 to 255 bytes\n");
		return CONFIG_EXIT_USAGE;
	}
	rc = config_parse_args(cfg, argc, argv, 1, &config_path);
	if (rc != CONFIG_OK)
		return rc;
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

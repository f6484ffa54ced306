// SPDX-License-Identifier: MIT
/*
 * Gateway settings; see config.h. Flags and INI keys share one table and
 * one parser per value kind, so a value is checked the same way wherever it
 * comes from. --config is found first, the file is loaded, then the other
 * flags override it.
 */
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "frame.h"
#include "httputil.h"
#include "kmirror.h"
#include "kpath.h"
#include "log.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MIN_MAX_FRAME 64
#define MIN_OUT_CAP 4096
#define MAX_OUT_CAP (1024UL * 1024 * 1024)
#define MAX_TIMEOUT_SEC 86400

enum config_kind {
	KIND_ADDR,
	KIND_NODE_ID,
	KIND_BYTES,
	KIND_SECONDS,
	KIND_LOG_LEVEL,
	KIND_BOOL,              /* a flag without value, or true/false in INI */
	KIND_KPATH_MODE,        /* off, auto or on */
	KIND_PATH,
	KIND_COUNT,             /* unsigned int from min to max */
	KIND_SECRET,            /* never shown in messages */
	KIND_LIST,              /* comma-separated values */
};

struct config_key {
	const char *key;        /* INI key; the flag is the same with dashes */
	const char *flag;
	enum config_kind kind;
	size_t offset;          /* in struct gw_config */
	unsigned long min, max; /* for KIND_BYTES and KIND_SECONDS */
	const char *help;
};

#define KEY(k, f, kind, field, min, max, help) \
	{ k, f, kind, offsetof(struct gw_config, field), min, max, help }

static const struct config_key config_keys[] = {
	KEY("listen", "listen", KIND_ADDR, listen, 0, 0,
	    "HOST:PORT  client listen address (default 127.0.0.1:7070)"),
	KEY("http", "http", KIND_ADDR, http, 0, 0,
	    "HOST:PORT  admin HTTP address (default 127.0.0.1:7071)"),
	KEY("bizsvr", "bizsvr", KIND_ADDR, bizsvr, 0, 0,
	    "HOST:PORT  business daemon address (default 127.0.0.1:7080)"),
	KEY("node_id", "node-id", KIND_NODE_ID, node_id, 0, 0,
	    "ID  node id sent to the daemon (default <hostname>-<listen port>)"),
	KEY("link_secret", "link-secret", KIND_SECRET, link_secret, 0, 0,
	    "SECRET  key to sign REGISTER with, as bizsvr's --link-secret; also env IMGW_LINK_SECRET (default none)"),
	KEY("max_frame", "max-frame", KIND_BYTES, max_frame, MIN_MAX_FRAME,
	    FRAME_HARD_MAX_BODY,
	    "BYTES  largest client frame body (default 65536)"),
	KEY("heartbeat_timeout", "heartbeat-timeout", KIND_SECONDS,
	    heartbeat_timeout, 1, MAX_TIMEOUT_SEC,
	    "SEC  idle seconds before a logged-in client is kicked (default 60)"),
	KEY("login_timeout", "login-timeout", KIND_SECONDS, login_timeout, 1,
	    MAX_TIMEOUT_SEC,
	    "SEC  seconds a new client has to log in (default 10)"),
	KEY("out_cap", "out-cap", KIND_BYTES, out_cap, MIN_OUT_CAP,
	    MAX_OUT_CAP,
	    "BYTES  output bytes queued to a client before it is closed as slow (default 1048576)"),
	KEY("log_level", "log-level", KIND_LOG_LEVEL, log_level, 0, 0,
	    "LEVEL  error, warn, info or debug (default info)"),
	KEY("kernel_path", "kernel-path", KIND_KPATH_MODE, kernel_path, 0, 0,
	    "off|auto|on  send SUPER broadcasts through the BPF maps pinned by imgw-loader: auto when they exist, on or fail to start (default off, because the userspace path used less CPU per delivery under load in scripts/bench-kpath.sh: see docs/kernel-path.md)"),
	KEY("bpf_pin_dir", "bpf-pin-dir", KIND_PATH, bpf_pin_dir, 0, 0,
	    "DIR  where imgw-loader pinned the kernel path's maps (default /sys/fs/bpf/imgw)"),
	KEY("block_after", "block-after", KIND_COUNT, block_after, 0, 1000000,
	    "N  failed logins from one source address within --block-window that add it to the XDP blocklist; 0 disables (default 20)"),
	KEY("block_window", "block-window", KIND_SECONDS, block_window, 1,
	    MAX_TIMEOUT_SEC,
	    "SEC  window in which --block-after failed logins count (default 60)"),
	KEY("block_ttl", "block-ttl", KIND_SECONDS, block_ttl, 1,
	    MAX_TIMEOUT_SEC * 30,
	    "SEC  how long a source stays in the blocklist (default 300)"),
	KEY("ws_origins", "ws-origins", KIND_LIST, ws_origins, 0, 0,
	    "LIST  comma-separated Origin values (such as http://127.0.0.1:7071) a WebSocket handshake must carry one of (default: any origin, or none)"),
	KEY("web_dir", "web-dir", KIND_PATH, web_dir, 0, 0,
	    "DIR  serve the files of DIR (the repository's web/ holds the chat page) under /web/ on the --http port (default: none, nothing served)"),
	KEY("workers", "workers", KIND_COUNT, workers, 1, 64,
	    "N  gateway processes that share the listen port (SO_REUSEPORT), each its own node with node id <node-id>-w<index> and admin HTTP on the --http port plus its index; the parent restarts a worker that dies (default 1)"),
	KEY("flush_writev", "flush-writev", KIND_BOOL, flush_writev, 0, 0,
	    "  write each client's queued output with its own writev() instead of sending the output of all clients of one loop pass with one io_uring_enter() (default off; io_uring is used when the kernel allows it)"),
	KEY("fault_drop_super_acks", "fault-drop-super-acks", KIND_BOOL,
	    fault_drop_super_acks, 0, 0,
	    "  for tests: apply super-session transitions but send no SUPER_ACK (default off; also POST /v1/faults)"),
};

static void config_defaults(struct gw_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->listen, "127.0.0.1:7070");
	strcpy(cfg->http, "127.0.0.1:7071");
	strcpy(cfg->bizsvr, "127.0.0.1:7080");
	cfg->max_frame = FRAME_DEFAULT_MAX_BODY;
	cfg->heartbeat_timeout = 60;
	cfg->login_timeout = 10;
	cfg->out_cap = 1024 * 1024;
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->kernel_path = KMIRROR_OFF;
	strcpy(cfg->bpf_pin_dir, KPATH_PIN_DIR);
	cfg->block_after = 20;
	cfg->block_window = 60;
	cfg->block_ttl = 300;
	cfg->workers = 1;
}

static int parse_number(const char *text, unsigned long min,
			unsigned long max, unsigned long *out)
{
	unsigned long long value;
	char *end;

	if (text[0] < '0' || text[0] > '9')
		return -EINVAL;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno || *end || value < min || value > max)
		return -EINVAL;
	*out = (unsigned long)value;
	return 0;
}

/* Parses a boolean INI value; a flag without a value (NULL) means true. */
static int parse_bool(const char *text, int *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	if (!text) {
		*out = 1;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(text, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(text, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -EINVAL;
}

static int set_string(char *dst, size_t cap, const char *value)
{
	if (strlen(value) >= cap)
		return -EINVAL;
	strcpy(dst, value);
	return 0;
}

static int check_addr(const char *value)
{
	char host[256];
	uint16_t port;

	if (parse_host_port(value, host, sizeof(host), &port) < 0 || port == 0)
		return -EINVAL;
	return 0;
}

static int check_node_id(const char *value)
{
	if (!*value)
		return -EINVAL;
	for (const char *p = value; *p; p++) {
		if (*p <= ' ' || *p == 0x7f)
			return -EINVAL;
	}
	return 0;
}

static int config_apply(struct gw_config *cfg, const struct config_key *k,
			const char *value)
{
	char *field = (char *)cfg + k->offset;
	unsigned long number;
	int level;

	switch (k->kind) {
	case KIND_ADDR:
		if (check_addr(value))
			return -EINVAL;
		return set_string(field, CONFIG_ADDR_LEN, value);
	case KIND_NODE_ID:
		if (check_node_id(value))
			return -EINVAL;
		return set_string(field, CONFIG_NODE_ID_LEN, value);
	case KIND_BYTES:
		if (parse_number(value, k->min, k->max, &number))
			return -EINVAL;
		*(size_t *)field = number;
		return 0;
	case KIND_SECONDS:
	case KIND_COUNT:
		if (parse_number(value, k->min, k->max, &number))
			return -EINVAL;
		*(unsigned int *)field = (unsigned int)number;
		return 0;
	case KIND_LOG_LEVEL:
		level = log_level_parse(value);
		if (level < 0)
			return -EINVAL;
		*(int *)field = level;
		return 0;
	case KIND_BOOL:
		return parse_bool(value, (int *)field);
	case KIND_KPATH_MODE:
		level = kmirror_mode_parse(value);
		if (level < 0)
			return -EINVAL;
		*(int *)field = level;
		return 0;
	case KIND_PATH:
		if (!*value)
			return -EINVAL;
		return set_string(field, CONFIG_PATH_LEN, value);
	case KIND_SECRET:
		if (!*value)
			return -EINVAL;
		return set_string(field, CONFIG_SECRET_LEN, value);
	case KIND_LIST:
		return set_string(field, CONFIG_LIST_LEN, value);
	}
	return -EINVAL;
}

static void config_describe_expected(const struct config_key *k, char *out,
				     size_t cap)
{
	switch (k->kind) {
	case KIND_ADDR:
		snprintf(out, cap, "HOST:PORT with a port from 1 to 65535");
		break;
	case KIND_NODE_ID:
		snprintf(out, cap, "1 to %d characters without spaces",
			 CONFIG_NODE_ID_LEN - 1);
		break;
	case KIND_BYTES:
		snprintf(out, cap, "a whole number of bytes from %lu to %lu",
			 k->min, k->max);
		break;
	case KIND_SECONDS:
		snprintf(out, cap, "a whole number of seconds from %lu to %lu",
			 k->min, k->max);
		break;
	case KIND_LOG_LEVEL:
		snprintf(out, cap, "error, warn, info or debug");
		break;
	case KIND_BOOL:
		snprintf(out, cap, "true or false");
		break;
	case KIND_KPATH_MODE:
		snprintf(out, cap, "off, auto or on");
		break;
	case KIND_PATH:
		snprintf(out, cap, "a path of 1 to %d bytes",
			 CONFIG_PATH_LEN - 1);
		break;
	case KIND_COUNT:
		snprintf(out, cap, "a whole number from %lu to %lu", k->min,
			 k->max);
		break;
	case KIND_SECRET:
		snprintf(out, cap, "1 to %d bytes", CONFIG_SECRET_LEN - 1);
		break;
	case KIND_LIST:
		snprintf(out, cap, "a comma-separated list of at most %d bytes",
			 CONFIG_LIST_LEN - 1);
		break;
	}
}

static void config_report_invalid(const char *where,
				  const struct config_key *k,
				  const char *name, const char *value)
{
	char expected[96];

	config_describe_expected(k, expected, sizeof(expected));
	fprintf(stderr, "imgw: %sinvalid value '%s' for %s: expected %s\n",
		where, k->kind == KIND_SECRET ? "(hidden)" : value, name,
		expected);
}

struct ini_state {
	struct gw_config *cfg;
	const char *path;
	int failed;
	char bad_section[64];   /* the last unknown section reported */
};

/* Rejects a key outside [gateway], naming each bad section once. libinih
 * reports sections only through their keys, so an empty unknown section
 * passes. */
static void config_ini_bad_section(struct ini_state *st, const char *section,
				   const char *name)
{
	st->failed = 1;
	if (!section[0]) {
		fprintf(stderr, "imgw: %s: key '%s' is outside a section: expected it under [gateway]\n",
			st->path, name);
		return;
	}
	if (strcmp(st->bad_section, section) == 0)
		return;
	snprintf(st->bad_section, sizeof(st->bad_section), "%s", section);
	fprintf(stderr, "imgw: %s: unknown section [%s]: expected [gateway]\n",
		st->path, section);
}

static int config_ini_cb(void *arg, const char *section, const char *name,
			 const char *value)
{
	struct ini_state *st = arg;
	char where[320];

	/* This libinih build passes no line numbers to the handler. */
	snprintf(where, sizeof(where), "%s: ", st->path);
	if (strcmp(section, "gateway") != 0) {
		config_ini_bad_section(st, section, name);
		return 1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++) {
		const struct config_key *k = &config_keys[i];

		if (strcmp(k->key, name) != 0)
			continue;
		if (config_apply(st->cfg, k, value)) {
			config_report_invalid(where, k, name, value);
			st->failed = 1;
		}
		return 1;
	}
	fprintf(stderr, "imgw: %sunknown key '%s' in section [gateway]\n",
		where, name);
	st->failed = 1;
	return 1;
}

static int config_load_file(struct gw_config *cfg, const char *path)
{
	struct ini_state st = { .cfg = cfg, .path = path };
	int rc = ini_parse(path, config_ini_cb, &st);

	if (rc < 0) {
		fprintf(stderr, "imgw: cannot read config file %s: %s\n", path,
			rc == -1 ? strerror(errno) : "out of memory");
		return -EINVAL;
	}
	if (rc > 0) {
		fprintf(stderr, "imgw: %s:%d: syntax error\n", path, rc);
		return -EINVAL;
	}
	return st.failed ? -EINVAL : 0;
}

static void config_usage(FILE *out)
{
	char left[64];

	fprintf(out, "usage: imgw [options]\n\n");
	fprintf(out, "  %-30s %s\n", "--config FILE",
		"INI file with a [gateway] section whose keys are the option names with '_' for '-'; flags override it");
	for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++) {
		const char *help = config_keys[i].help;
		const char *gap = strstr(help, "  ");

		/* help is "METAVAR  description". */
		snprintf(left, sizeof(left), "--%s %.*s", config_keys[i].flag,
			 (int)(gap - help), help);
		fprintf(out, "  %-30s %s\n", left, gap + 2);
	}
	fprintf(out, "  %-30s %s\n", "--help", "print this help and exit");
}

static void config_default_node_id(struct gw_config *cfg)
{
	char host[256] = "localhost", addr_host[256];
	uint16_t port = 0;

	if (gethostname(host, sizeof(host)) < 0 || !host[0])
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	parse_host_port(cfg->listen, addr_host, sizeof(addr_host), &port);
	snprintf(cfg->node_id, sizeof(cfg->node_id), "%.100s-%u", host, port);
}

/* Flag ids are 1 + the index in config_keys; these come after them. */
enum { OPT_CONFIG = 1000, OPT_HELP };

static struct option *config_long_options(void)
{
	static struct option opts[ARRAY_SIZE(config_keys) + 3];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(config_keys); i++)
		opts[i] = (struct option){ config_keys[i].flag,
					   config_keys[i].kind == KIND_BOOL ?
					   no_argument : required_argument,
					   NULL, (int)i + 1 };
	opts[i++] = (struct option){ "config", required_argument, NULL,
				     OPT_CONFIG };
	opts[i++] = (struct option){ "help", no_argument, NULL, OPT_HELP };
	opts[i] = (struct option){ 0 };
	return opts;
}

/* First pass: --help and --config only. Returns 1 for --help. */
static int config_find_file(int argc, char **argv, const char **path)
{
	const struct option *opts = config_long_options();
	int opt;

	opterr = 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == OPT_HELP)
			return 1;
		if (opt == OPT_CONFIG)
			*path = optarg;
	}
	return 0;
}

static int config_apply_flags(struct gw_config *cfg, int argc, char **argv)
{
	const struct option *opts = config_long_options();
	char name[64];
	int opt;

	opterr = 1;
	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == OPT_CONFIG)
			continue;
		if (opt < 1 || opt > (int)ARRAY_SIZE(config_keys)) {
			fprintf(stderr, "imgw: run 'imgw --help' for the options\n");
			return -EINVAL;
		}
		const struct config_key *k = &config_keys[opt - 1];

		if (config_apply(cfg, k, optarg)) {
			snprintf(name, sizeof(name), "--%s", k->flag);
			config_report_invalid("", k, name,
					      optarg ? optarg : "");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "imgw: unexpected argument '%s'; run 'imgw --help' for the options\n",
			argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* Takes the link secret from IMGW_LINK_SECRET, between the file and the
 * flags. */
static int config_load_env(struct gw_config *cfg)
{
	const char *secret = getenv("IMGW_LINK_SECRET");

	if (!secret || !secret[0])
		return 0;
	if (set_string(cfg->link_secret, sizeof(cfg->link_secret), secret)) {
		fprintf(stderr, "imgw: invalid IMGW_LINK_SECRET: expected 1 to %d bytes\n",
			CONFIG_SECRET_LEN - 1);
		return -EINVAL;
	}
	return 0;
}

int config_load(struct gw_config *cfg, int argc, char **argv)
{
	const char *path = NULL;
	int err;

	config_defaults(cfg);
	if (config_find_file(argc, argv, &path)) {
		config_usage(stdout);
		return 1;
	}
	if (path) {
		err = config_load_file(cfg, path);
		if (err)
			return err;
	}
	err = config_load_env(cfg);
	if (err)
		return err;
	err = config_apply_flags(cfg, argc, argv);
	if (err)
		return err;
	if (!cfg->node_id[0])
		config_default_node_id(cfg);
	return 0;
}

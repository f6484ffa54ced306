// SPDX-License-Identifier: MIT
/*
 * Gateway settings; see config.h. Flags and INI keys share one table, which
 * lib/config_parse.c walks, and one parser per value kind, so a value is
 * checked the same way wherever it comes from.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "config_parse.h"
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

enum gw_config_kind {
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

/* min and max bound KIND_BYTES, KIND_SECONDS and KIND_COUNT. */
#define KEY(name, metavar, kind, field, min, max, help)                    \
	{ "gateway", name, metavar, help, kind,                             \
	  offsetof(struct gw_config, field), min, max, NULL,                \
	  kind == KIND_SECRET }

static const struct config_key config_keys[] = {
	KEY("listen", "HOST:PORT", KIND_ADDR, listen, 0, 0,
	    "client listen address (default 127.0.0.1:7070)"),
	KEY("http", "HOST:PORT", KIND_ADDR, http, 0, 0,
	    "admin HTTP address (default 127.0.0.1:7071)"),
	KEY("bizsvr", "HOST:PORT", KIND_ADDR, bizsvr, 0, 0,
	    "business daemon address (default 127.0.0.1:7080)"),
	KEY("node_id", "ID", KIND_NODE_ID, node_id, 0, 0,
	    "node id sent to the daemon (default <hostname>-<listen port>)"),
	KEY("link_secret", "SECRET", KIND_SECRET, link_secret, 0, 0,
	    "key to sign REGISTER with, as bizsvr's --link-secret; also env IMGW_LINK_SECRET (default none)"),
	KEY("max_frame", "BYTES", KIND_BYTES, max_frame,
	    MIN_MAX_FRAME, FRAME_HARD_MAX_BODY,
	    "largest client frame body (default 65536)"),
	KEY("heartbeat_timeout", "SEC", KIND_SECONDS, heartbeat_timeout,
	    1, MAX_TIMEOUT_SEC,
	    "idle seconds before a logged-in client is kicked (default 60)"),
	KEY("login_timeout", "SEC", KIND_SECONDS, login_timeout,
	    1, MAX_TIMEOUT_SEC,
	    "seconds a new client has to log in (default 10)"),
	KEY("out_cap", "BYTES", KIND_BYTES, out_cap, MIN_OUT_CAP, MAX_OUT_CAP,
	    "output bytes queued to a client before it is closed as slow (default 1048576)"),
	KEY("log_level", "LEVEL", KIND_LOG_LEVEL, log_level, 0, 0,
	    "error, warn, info or debug (default info)"),
	KEY("kernel_path", "off|auto|on", KIND_KPATH_MODE, kernel_path, 0, 0,
	    "send SUPER broadcasts through the BPF maps pinned by imgw-loader: auto when they exist, on or fail to start (default off, because the userspace path used less CPU per delivery under load in scripts/bench-kpath.sh: see docs/kernel-path.md)"),
	KEY("bpf_pin_dir", "DIR", KIND_PATH, bpf_pin_dir, 0, 0,
	    "where imgw-loader pinned the kernel path's maps (default /sys/fs/bpf/imgw)"),
	KEY("block_after", "N", KIND_COUNT, block_after, 0, 1000000,
	    "failed logins from one source address within --block-window that add it to the XDP blocklist; 0 disables (default 20)"),
	KEY("block_window", "SEC", KIND_SECONDS, block_window,
	    1, MAX_TIMEOUT_SEC,
	    "window in which --block-after failed logins count (default 60)"),
	KEY("block_ttl", "SEC", KIND_SECONDS, block_ttl,
	    1, MAX_TIMEOUT_SEC * 30,
	    "how long a source stays in the blocklist (default 300)"),
	KEY("ws_origins", "LIST", KIND_LIST, ws_origins, 0, 0,
	    "comma-separated Origin values (such as http://127.0.0.1:7071) a WebSocket handshake must carry one of (default: any origin, or none)"),
	KEY("web_dir", "DIR", KIND_PATH, web_dir, 0, 0,
	    "serve the files of DIR (the repository's web/ holds the chat page) under /web/ on the --http port (default: none, nothing served)"),
	KEY("workers", "N", KIND_COUNT, workers, 1, 64,
	    "gateway processes that share the listen port (SO_REUSEPORT), each its own node with node id <node-id>-w<index> and admin HTTP on the --http port plus its index; the parent restarts a worker that dies (default 1)"),
	KEY("flush_writev", NULL, KIND_BOOL, flush_writev, 0, 0,
	    "write each client's queued output with its own writev() instead of sending the output of all clients of one loop pass with one io_uring_enter() (default off; io_uring is used when the kernel allows it)"),
	KEY("fault_drop_super_acks", NULL, KIND_BOOL, fault_drop_super_acks,
	    0, 0,
	    "for tests: apply super-session transitions but send no SUPER_ACK (default off; also POST /v1/faults)"),
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

static int parse_number(const char *text, unsigned long long min,
			unsigned long long max, unsigned long *out)
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

static int config_apply(void *cfg, const struct config_key *k,
			const char *value)
{
	char *field = (char *)cfg + k->offset;
	unsigned long number;
	int level;

	switch (k->kind) {
	case KIND_ADDR:
		if (config_check_addr(value))
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
		snprintf(out, cap, "a whole number of bytes from %llu to %llu",
			 k->min, k->max);
		break;
	case KIND_SECONDS:
		snprintf(out, cap, "a whole number of seconds from %llu to %llu",
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
		snprintf(out, cap, "a whole number from %llu to %llu", k->min,
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

static void config_report_invalid(const struct config_problem *p)
{
	char expected[96];

	config_describe_expected(p->key, expected, sizeof(expected));
	fprintf(stderr, "imgw: %s%sinvalid value '%s' for %s: expected %s\n",
		p->path ? p->path : "", p->path ? ": " : "", p->value, p->name,
		expected);
}

static void config_report(const struct config_problem *p)
{
	switch (p->kind) {
	case CONFIG_READ_FAILED:
		fprintf(stderr, "imgw: cannot read config file %s: %s\n",
			p->path,
			p->status == -1 ? strerror(p->err) : "out of memory");
		break;
	case CONFIG_SYNTAX_ERROR:
		fprintf(stderr, "imgw: %s:%d: syntax error%s%s\n", p->path,
			p->status, p->detail ? ": " : "",
			p->detail ? p->detail : "");
		break;
	case CONFIG_UNKNOWN_KEY:
		fprintf(stderr, "imgw: %s: unknown key '%s' in section [%s]\n",
			p->path, p->name, p->section);
		break;
	case CONFIG_INVALID_VALUE:
		config_report_invalid(p);
		break;
	case CONFIG_EXTRA_ARGUMENT:
		fprintf(stderr, "imgw: unexpected argument '%s'; run 'imgw --help' for the options\n",
			p->value);
		break;
	}
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

/* Takes the link secret from IMGW_LINK_SECRET, between the file and the
 * flags. */
static int config_load_env(void *arg)
{
	struct gw_config *cfg = arg;
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

static const char *const config_sections[] = { "gateway", NULL };

static const struct config_spec config_spec = {
	.program = "imgw",
	.usage = "usage: imgw [options]",
	.config_help = "INI file with a [gateway] section whose keys are the option names with '_' for '-'; flags override it",
	.help_width = 30,
	.sections = config_sections,
	.sections_text = "[gateway]",
	.keys = config_keys,
	.key_count = ARRAY_SIZE(config_keys),
	.apply = config_apply,
	.report = config_report,
	.load_env = config_load_env,
};

int config_load(struct gw_config *cfg, int argc, char **argv)
{
	int err;

	config_defaults(cfg);
	err = config_parse(&config_spec, cfg, argc, argv);
	if (err)
		return err;
	if (!cfg->node_id[0])
		config_default_node_id(cfg);
	return 0;
}

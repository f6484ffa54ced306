/* SPDX-License-Identifier: MIT */
/*
 * Gateway settings: defaults, the [gateway] section of an INI file,
 * IMGW_LINK_SECRET for the link secret, and command-line flags, which
 * override both.
 */
#ifndef IMGW_CONFIG_H
#define IMGW_CONFIG_H

#include <stddef.h>

#define CONFIG_ADDR_LEN 272
#define CONFIG_NODE_ID_LEN 128
#define CONFIG_PATH_LEN 256
/* LINKAUTH_SECRET_MAX (lib/linkauth.h) bytes and a NUL. */
#define CONFIG_SECRET_LEN 256
#define CONFIG_LIST_LEN 1024

struct gw_config {
	char listen[CONFIG_ADDR_LEN];
	char http[CONFIG_ADDR_LEN];
	char bizsvr[CONFIG_ADDR_LEN];
	char node_id[CONFIG_NODE_ID_LEN];
	char link_secret[CONFIG_SECRET_LEN]; /* signs REGISTER; "": none */
	size_t max_frame;             /* bytes of frame body */
	unsigned int heartbeat_timeout; /* seconds */
	unsigned int login_timeout;   /* seconds */
	size_t out_cap;               /* bytes queued to one client */
	int log_level;
	int kernel_path;              /* enum kmirror_mode */
	char bpf_pin_dir[CONFIG_PATH_LEN];
	unsigned int block_after;     /* failed logins; 0: no blocking */
	unsigned int block_window;    /* seconds */
	unsigned int block_ttl;       /* seconds */
	/* Comma-separated Origin values a WebSocket handshake must carry
	 * one of; "": any origin or none. */
	char ws_origins[CONFIG_LIST_LEN];
	/* Directory of the browser chat page served under /web/ on the
	 * admin HTTP port; "": nothing served. */
	char web_dir[CONFIG_PATH_LEN];
	/* Worker processes; 1 runs the gateway in this process. */
	unsigned int workers;
	/* This process's worker index, set by workers_start(); not a key. */
	unsigned int worker_index;
	/* Write each connection with writev() instead of one io_uring
	 * submission per loop pass. */
	int flush_writev;
	/* Test switch: apply super-session transitions but never ack them. */
	int fault_drop_super_acks;
};

/*
 * Fills cfg from the defaults, the config file named by --config and the
 * flags in argv. Returns 0, 1 when --help was printed, or -EINVAL after
 * printing what was wrong to stderr.
 */
int config_load(struct gw_config *cfg, int argc, char **argv);

#endif

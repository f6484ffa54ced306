// SPDX-License-Identifier: MIT
/*
 * imgw, the push gateway: keeps client TCP connections, logs clients in
 * through the business daemon, delivers its pushes and forwards client
 * requests to it. main() wires the modules to one libevent loop and tears
 * everything down on SIGTERM or SIGINT.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>

#include <event2/event.h>

#include "admin.h"
#include "config.h"
#include "conn_io.h"
#include "gateway.h"
#include "guard.h"
#include "kmirror.h"
#include "log.h"
#include "upstream.h"
#include "workers.h"

static void raise_nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		pr_warn("reading RLIMIT_NOFILE failed: %s", strerror(errno));
		return;
	}
	if (rl.rlim_cur == rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		pr_warn("raising RLIMIT_NOFILE to %llu failed: %s",
			(unsigned long long)rl.rlim_max, strerror(errno));
}

/*
 * A fan-out allocates one buffer chain per member and message and frees them
 * all after the write. With glibc's default trim threshold every burst grew
 * the heap top, trimmed it again and faulted the pages back in, which took
 * about a quarter of the gateway's perf samples at 64 messages in flight
 * (docs/performance.md). Keep the freed top instead.
 */
#define GW_MALLOC_TRIM_BYTES (64 << 20)

static void tune_malloc(void)
{
	/* ASan's allocator rejects the option; glibc's accepts it. */
	if (!mallopt(M_TRIM_THRESHOLD, GW_MALLOC_TRIM_BYTES))
		pr_info("malloc trim threshold left at its default: the allocator rejected %d bytes",
			GW_MALLOC_TRIM_BYTES);
}

static int make_boot_id(char *out)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t bytes[GW_BOOT_ID_LEN / 2];

	if (getrandom(bytes, sizeof(bytes), 0) != sizeof(bytes))
		return -errno;
	for (size_t i = 0; i < sizeof(bytes); i++) {
		out[2 * i] = hex[bytes[i] >> 4];
		out[2 * i + 1] = hex[bytes[i] & 0xf];
	}
	out[GW_BOOT_ID_LEN] = '\0';
	return 0;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct gateway *gw = arg;

	pr_info("received %s, stopping", strsignal((int)sig));
	event_base_loopbreak(gw->base);
}

static int gateway_init_base(struct gateway *gw)
{
	struct timeval login = { .tv_sec = gw->cfg.login_timeout };
	struct timeval heartbeat = { .tv_sec = gw->cfg.heartbeat_timeout };

	gw->base = event_base_new();
	if (!gw->base)
		return -ENOMEM;
	gw->login_tv = event_base_init_common_timeout(gw->base, &login);
	gw->heartbeat_tv = event_base_init_common_timeout(gw->base, &heartbeat);
	if (!gw->login_tv || !gw->heartbeat_tv)
		return -ENOMEM;
	return 0;
}

static int gateway_start(struct gateway *gw)
{
	int err;

	err = make_boot_id(gw->boot_id);
	if (err) {
		pr_error("generating the boot id failed: %s", strerror(-err));
		return err;
	}
	conn_registry_init(&gw->conns);
	/* kmirror_start() installs the kernel path's hooks when it is on. */
	sess_cache_init(&gw->caches, NULL, NULL);
	gw->faults.drop_super_acks = gw->cfg.fault_drop_super_acks;
	err = gateway_init_base(gw);
	if (err) {
		pr_error("creating the event loop failed: %s", strerror(-err));
		return err;
	}
	err = kmirror_start(gw);
	if (err)
		return err;
	err = guard_start(gw);
	if (err)
		return err;
	gw->upstream = upstream_new(gw);
	if (!gw->upstream) {
		err = -errno;
		pr_error("invalid bizsvr address %s: %s", gw->cfg.bizsvr,
			 strerror(-err));
		return err;
	}
	err = conn_io_listen(gw);
	if (err)
		return err;
	err = admin_start(gw);
	if (err && gw->cfg.worker_index == 0)
		return err;
	/*
	 * XXX: A worker other than 0 whose admin HTTP port (the --http port
	 * plus its index) is taken serves clients without /healthz and
	 * /metrics until it restarts.
	 */
	if (err)
		pr_warn("worker %u serves clients without admin HTTP on %s: %s",
			gw->cfg.worker_index, gw->cfg.http, strerror(-err));
	upstream_start(gw->upstream);
	return 0;
}

static void gateway_stop(struct gateway *gw)
{
	sess_cache_clear(&gw->caches);
	conn_io_shutdown(gw);
	admin_stop(gw);
	upstream_free(gw->upstream);
	gw->upstream = NULL;
	kmirror_stop(gw);
	guard_stop(gw);
	if (gw->base)
		event_base_free(gw->base);
	gw->base = NULL;
}

static int gateway_run(struct gateway *gw)
{
	struct event *sigterm, *sigint;
	int err = 0;

	sigterm = evsignal_new(gw->base, SIGTERM, signal_cb, gw);
	sigint = evsignal_new(gw->base, SIGINT, signal_cb, gw);
	if (!sigterm || !sigint || evsignal_add(sigterm, NULL) < 0 ||
	    evsignal_add(sigint, NULL) < 0) {
		pr_error("installing signal handlers failed");
		err = -ENOMEM;
		goto out_free;
	}
	pr_info("imgw started: listen %s, http %s, bizsvr %s, node id %s, boot id %s",
		gw->cfg.listen, gw->cfg.http, gw->cfg.bizsvr, gw->cfg.node_id,
		gw->boot_id);
	if (event_base_dispatch(gw->base) < 0) {
		pr_error("event loop failed");
		err = -EIO;
	}
out_free:
	if (sigterm)
		event_free(sigterm);
	if (sigint)
		event_free(sigint);
	return err;
}

int main(int argc, char **argv)
{
	struct gateway gw = { 0 };
	size_t open_conns;
	int err, status;

	err = config_load(&gw.cfg, argc, argv);
	if (err)
		return err > 0 ? 0 : 2;
	log_init("imgw", gw.cfg.log_level);
	log_route_libevent();
	raise_nofile_limit();
	tune_malloc();
	signal(SIGPIPE, SIG_IGN);
	err = workers_start(&gw.cfg, &status);
	if (err < 0) {
		pr_error("starting %u workers failed: %s", gw.cfg.workers,
			 strerror(-err));
		return 1;
	}
	if (err > 0)
		return status;

	err = gateway_start(&gw);
	if (!err)
		err = gateway_run(&gw);
	open_conns = gw.conns.count;
	gateway_stop(&gw);
	if (err)
		return 1;
	pr_info("imgw stopped: node id %s, boot id %s, closed %zu connections",
		gw.cfg.node_id, gw.boot_id, open_conns);
	return 0;
}

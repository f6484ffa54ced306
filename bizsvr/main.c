// SPDX-License-Identifier: MIT
/*
 * Entry point of bizsvr, the business daemon: reads the configuration, opens
 * the store, listens for gateway links and the admin API, and runs the event
 * loop until SIGTERM or SIGINT, then frees everything and exits 0.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "admin.h"
#include "batch.h"
#include "bizsvr.h"
#include "link.h"
#include "log.h"
#include "superwire.h"

/* Heap kept after frees, and the allocation size from which malloc uses
 * mmap(), in bytes. */
#define MAIN_MALLOC_THRESHOLD (8 * 1024 * 1024)

static void main_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct bizsvr *bz = arg;

	pr_info("bizsvr: received %s, stopping", strsignal((int)sig));
	event_base_loopbreak(bz->base);
}

static int main_boot_id(struct bizsvr *bz)
{
	uint8_t raw[16];

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -errno;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(bz->boot_id + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

/*
 * Checks that the folder of the database file exists, because SQLite then
 * fails with only "unable to open database file". Logs what failed.
 */
static int main_check_db_dir(const char *db)
{
	const char *slash = strrchr(db, '/');
	char dir[4096];
	struct stat st;
	int err;

	if (!slash)
		return 0;
	snprintf(dir, sizeof(dir), "%.*s", slash == db ? 1 : (int)(slash - db),
		 db);
	if (stat(dir, &st) < 0) {
		err = -errno;
		pr_error("bizsvr: opening database %s failed: directory %s: %s",
			 db, dir, strerror(-err));
		return err;
	}
	if (!S_ISDIR(st.st_mode)) {
		pr_error("bizsvr: opening database %s failed: %s is not a directory",
			 db, dir);
		return -ENOTDIR;
	}
	return 0;
}

/* Opens the store and caches and starts both listeners. Logs what failed. */
static int main_start(struct bizsvr *bz)
{
	const struct bizsvr_config *cfg = bz->cfg;

	if (main_check_db_dir(cfg->db) < 0)
		return -1;
	bz->store = store_open(cfg->db);
	if (!bz->store) {
		pr_error("bizsvr: opening database %s failed: %s", cfg->db,
			 strerror(errno));
		return -1;
	}
	bz->sessions = session_cache_new(bz->store);
	bz->presence = presence_new();
	bz->batch = batch_new(bz);
	if (!bz->sessions || !bz->presence || !bz->batch) {
		pr_error("bizsvr: allocating caches failed: %s",
			 strerror(ENOMEM));
		return -1;
	}
	if (cfg->super_enabled) {
		bz->super = superwire_new(bz);
		if (!bz->super) {
			pr_error("bizsvr: creating the super-session table failed: %s",
				 strerror(errno));
			return -1;
		}
	}
	bz->links = link_server_new(bz);
	if (!bz->links) {
		pr_error("bizsvr: listening for gateways on %s failed: %s",
			 cfg->listen, strerror(errno));
		return -1;
	}
	bz->admin = admin_new(bz);
	if (!bz->admin) {
		pr_error("bizsvr: binding the admin API to %s failed: %s",
			 cfg->http, strerror(errno));
		return -1;
	}
	return 0;
}

static void main_stop(struct bizsvr *bz)
{
	/* Messages posted in the last loop pass get their commit and replies
	 * while the admin server and the links still exist. */
	if (bz->batch)
		batch_commit(bz->batch);
	admin_free(bz->admin);
	/* Closing links marks their nodes down in the super table. */
	link_server_free(bz->links);
	superwire_free(bz->super);
	session_cache_free(bz->sessions);
	presence_free(bz->presence);
	batch_free(bz->batch);
	store_close(bz->store);
}

/* Runs the daemon until a signal. *started tells whether the start
 * succeeded, so that main logs the stop summary only then. */
static int main_run(struct bizsvr *bz, int *started)
{
	struct event *sigterm, *sigint;
	int rc = 1;

	sigterm = evsignal_new(bz->base, SIGTERM, main_signal_cb, bz);
	sigint = evsignal_new(bz->base, SIGINT, main_signal_cb, bz);
	if (!sigterm || !sigint || evsignal_add(sigterm, NULL) < 0 ||
	    evsignal_add(sigint, NULL) < 0) {
		pr_error("bizsvr: installing signal handlers failed: %s",
			 strerror(ENOMEM));
		goto out;
	}
	if (main_start(bz) < 0)
		goto out;
	*started = 1;
	pr_info("bizsvr: started: gateways on %s, admin on %s, database %s, boot %s",
		bz->cfg->listen, bz->cfg->http, bz->cfg->db, bz->boot_id);
	if (event_base_dispatch(bz->base) < 0)
		pr_error("bizsvr: event loop failed");
	else
		rc = 0;
out:
	main_stop(bz);
	if (sigterm)
		event_free(sigterm);
	if (sigint)
		event_free(sigint);
	return rc;
}

/*
 * Keeps freed memory at the top of the heap for reuse. SQLite frees about
 * 148 KiB at the top of the heap after a statement of each message append.
 * That is over glibc's default 128 KiB trim threshold, so every append shrank
 * the heap with brk() and grew it again, two brk() calls per message. That
 * cost about 8% of the daemon's CPU in the zipf500-rate5000-128B run of
 * scripts/bench-peers.sh. Setting the trim
 * threshold turns off glibc's dynamic mmap threshold, so that one is set too,
 * or such allocations would go to mmap() each time.
 */
static void main_tune_malloc(void)
{
	if (!mallopt(M_MMAP_THRESHOLD, MAIN_MALLOC_THRESHOLD) ||
	    !mallopt(M_TRIM_THRESHOLD, MAIN_MALLOC_THRESHOLD))
		/* Sanitizer allocators, for one, reject mallopt(). */
		pr_info("malloc thresholds left at their defaults: the allocator rejected %d bytes",
			MAIN_MALLOC_THRESHOLD);
}

/*
 * Creates the event loop with libevent's epoll change list, which merges
 * the changes made to one fd in a loop pass into one epoll_ctl(). Every
 * admin HTTP request turns reading off and writing on and back again, and
 * the change list halved the epoll_ctl() calls per message (4.2 to 2.1 in
 * the zipf500-rate5000-128B run). libevent documents it as unsafe with fds
 * cloned by dup(), and the daemon registers none.
 */
static struct event_base *main_new_base(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (!cfg)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

int main(int argc, char **argv)
{
	struct bizsvr_config cfg;
	struct bizsvr bz = { .cfg = &cfg };
	int rc, started = 0;

	rc = config_load(&cfg, argc, argv);
	if (rc != CONFIG_OK) {
		config_free(&cfg);
		return rc == CONFIG_EXIT_OK ? 0 : 2;
	}
	log_init("bizsvr", cfg.log_level);
	log_route_libevent();
	main_tune_malloc();
	signal(SIGPIPE, SIG_IGN);
	if (main_boot_id(&bz) < 0) {
		pr_error("bizsvr: reading random bytes for the boot id failed: %s",
			 strerror(errno));
		config_free(&cfg);
		return 1;
	}
	bz.base = main_new_base();
	if (!bz.base) {
		pr_error("bizsvr: creating the event loop failed");
		config_free(&cfg);
		return 1;
	}
	rc = main_run(&bz, &started);
	event_base_free(bz.base);
	libevent_global_shutdown();
	if (started)
		pr_info("bizsvr: stopped: %llu messages stored in %llu commits, %llu logins",
			(unsigned long long)bz.stats.messages_stored,
			(unsigned long long)bz.stats.store_commits,
			(unsigned long long)bz.stats.logins);
	config_free(&cfg);
	return rc;
}

// SPDX-License-Identifier: MIT
/*
 * Login-failure guard; see guard.h. The table is a uthash kept in least
 * recently failed order (a source that fails again is moved to the tail),
 * so the head is what goes when the table is full. Each source counts its
 * failures in a fixed window that opens at its first failure: once the
 * window is over, the next failure opens a new one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <event2/buffer.h>
#include <uthash.h>

#include "clock.h"
#include "conn.h"
#include "gateway.h"
#include "guard.h"
#include "httputil.h"
#include "imgw_shared.h"
#include "log.h"

#define NSEC_PER_SEC 1000000000ULL

struct guard_entry {
	struct guard_source src;        /* hash key */
	uint64_t window_start_ns;
	unsigned int failures;
	UT_hash_handle hh;
};

struct guard_table {
	struct guard_entry *entries;    /* oldest failure first */
	unsigned int threshold;
	uint64_t window_ns;
	unsigned int capacity;
};

struct guard {
	struct guard_table *table;      /* NULL when disabled */
	struct guard_settings settings;
	int block_v4_fd;                /* -1 when not pinned */
	int block_v6_fd;
	struct guard_stats stats;
};

struct guard_table *guard_table_new(unsigned int threshold, uint64_t window_ns,
				    unsigned int capacity)
{
	struct guard_table *t;

	if (!threshold || !window_ns || !capacity) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->threshold = threshold;
	t->window_ns = window_ns;
	t->capacity = capacity;
	return t;
}

void guard_table_free(struct guard_table *t)
{
	struct guard_entry *e, *tmp;

	if (!t)
		return;
	HASH_ITER(hh, t->entries, e, tmp) {
		HASH_DEL(t->entries, e);
		free(e);
	}
	free(t);
}

static struct guard_entry *guard_table_find(const struct guard_table *t,
					    const struct guard_source *src)
{
	struct guard_entry *e;

	HASH_FIND(hh, t->entries, src, sizeof(*src), e);
	return e;
}

/* Finds src or adds it at the tail, dropping the head when full. */
static struct guard_entry *guard_table_touch(struct guard_table *t,
					     const struct guard_source *src)
{
	struct guard_entry *e = guard_table_find(t, src);

	if (e) {
		HASH_DEL(t->entries, e);
	} else {
		if (HASH_COUNT(t->entries) >= t->capacity) {
			struct guard_entry *oldest = t->entries;

			HASH_DEL(t->entries, oldest);
			free(oldest);
		}
		e = calloc(1, sizeof(*e));
		if (!e)
			return NULL;
		e->src = *src;
	}
	HASH_ADD(hh, t->entries, src, sizeof(e->src), e);
	return e;
}

int guard_table_fail(struct guard_table *t, const struct guard_source *src,
		     uint64_t now_ns, unsigned int *failures)
{
	struct guard_entry *e = guard_table_touch(t, src);

	if (!e)
		return -ENOMEM;
	/* XXX: Windows are fixed, not sliding, so a source whose failures
	 * straddle two windows can fail up to 2 * threshold - 2 times within
	 * one window length before it is reported. */
	if (!e->failures || now_ns - e->window_start_ns >= t->window_ns) {
		e->window_start_ns = now_ns;
		e->failures = 0;
	}
	e->failures++;
	*failures = e->failures;
	if (e->failures < t->threshold)
		return 0;
	e->failures = 0;
	return 1;
}

unsigned int guard_table_failures(const struct guard_table *t,
				  const struct guard_source *src,
				  uint64_t now_ns)
{
	const struct guard_entry *e = guard_table_find(t, src);

	if (!e || now_ns - e->window_start_ns >= t->window_ns)
		return 0;
	return e->failures;
}

unsigned int guard_table_size(const struct guard_table *t)
{
	return HASH_COUNT(t->entries);
}

int guard_source_from_sockaddr(struct guard_source *src,
			       const struct sockaddr *sa)
{
	static const uint8_t v4_mapped[12] = { [10] = 0xff, [11] = 0xff };
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

	memset(src, 0, sizeof(*src));
	if (sa->sa_family == AF_INET) {
		src->family = 4;
		memcpy(src->addr, &sin->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	/* An IPv4 client of a dual-stack socket reaches XDP as IPv4. */
	if (!memcmp(&sin6->sin6_addr, v4_mapped, sizeof(v4_mapped))) {
		src->family = 4;
		memcpy(src->addr, (const uint8_t *)&sin6->sin6_addr + 12, 4);
		return 0;
	}
	src->family = 6;
	memcpy(src->addr, &sin6->sin6_addr, 16);
	return 0;
}

int guard_source_is_loopback(const struct guard_source *src)
{
	static const uint8_t v6_loopback[16] = { [15] = 1 };

	if (src->family == 4)
		return src->addr[0] == 127;
	return !memcmp(src->addr, v6_loopback, sizeof(v6_loopback));
}

static void guard_source_text(const struct guard_source *src, char *out,
			      size_t size)
{
	if (!inet_ntop(src->family == 4 ? AF_INET : AF_INET6, src->addr, out,
		       (socklen_t)size))
		snprintf(out, size, "?");
}

static int guard_open_map(const char *dir, const char *name, char *reason,
			  size_t reason_size)
{
	char path[320];
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		err = -errno;
		snprintf(reason, reason_size, "cannot open pinned map %s: %s",
			 path, strerror(-err));
		errno = -err;
	}
	return fd;
}

/* Opens both blocklist maps or neither; logs once why blocking is off. */
static void guard_open_maps(struct guard *g, const char *pin_dir)
{
	char reason[400];

	g->block_v4_fd = guard_open_map(pin_dir, "imgw_block_v4", reason,
					sizeof(reason));
	if (g->block_v4_fd >= 0) {
		g->block_v6_fd = guard_open_map(pin_dir, "imgw_block_v6",
						reason, sizeof(reason));
		if (g->block_v6_fd >= 0) {
			pr_info("login guard: blocking a source for %u s after %u failed logins within %u s (maps in %s)",
				g->settings.block_ttl, g->settings.block_after,
				g->settings.block_window, pin_dir);
			return;
		}
		close(g->block_v4_fd);
		g->block_v4_fd = -1;
	}
	pr_info("login guard: blocking unavailable, counting failed logins only: %s (load the XDP guard with imgw-loader load)",
		reason);
}

struct guard *guard_new(const struct guard_settings *settings,
			const char *pin_dir)
{
	struct guard *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->settings = *settings;
	g->block_v4_fd = -1;
	g->block_v6_fd = -1;
	if (!settings->block_after)
		return g;
	g->table = guard_table_new(settings->block_after,
				   (uint64_t)settings->block_window * NSEC_PER_SEC,
				   GUARD_MAX_SOURCES);
	if (!g->table) {
		free(g);
		return NULL;
	}
	guard_open_maps(g, pin_dir);
	return g;
}

void guard_free(struct guard *g)
{
	if (!g)
		return;
	if (g->block_v4_fd >= 0)
		close(g->block_v4_fd);
	if (g->block_v6_fd >= 0)
		close(g->block_v6_fd);
	guard_table_free(g->table);
	free(g);
}

/* Adds src's /32 or /128 to the blocklist until now_ns + block_ttl. */
static int guard_block(struct guard *g, const struct guard_source *src,
		       uint64_t now_ns)
{
	struct imgw_block val = {
		.expires_ns = now_ns + (uint64_t)g->settings.block_ttl * NSEC_PER_SEC,
	};
	struct imgw_lpm_v6 key = { 0 };
	int fd = src->family == 4 ? g->block_v4_fd : g->block_v6_fd;

	/* XXX: An IPv6 client usually holds a whole /64, so blocking one
	 * /128 only slows down a client that rotates its addresses. */
	key.prefixlen = src->family == 4 ? 32 : 128;
	memcpy(key.addr, src->addr, src->family == 4 ? 4 : 16);
	/* The IPv4 key is the same struct cut after the first four bytes. */
	if (bpf_map_update_elem(fd, &key, &val, BPF_ANY))
		return -errno;
	return 0;
}

/* Blocks src, which just reached the limit, unless it must not be. */
static int guard_over_limit(struct guard *g, const struct guard_source *src,
			    unsigned int failures, uint64_t now_ns)
{
	char text[INET6_ADDRSTRLEN];
	int err;

	guard_source_text(src, text, sizeof(text));
	if (guard_source_is_loopback(src)) {
		g->stats.skipped_loopback++;
		pr_info("login guard: source %s failed %u logins within %u s; loopback is never blocked",
			text, failures, g->settings.block_window);
		return 0;
	}
	if (!guard_can_block(g)) {
		g->stats.skipped_no_map++;
		pr_info("login guard: source %s failed %u logins within %u s; not blocked, blocklist maps unavailable",
			text, failures, g->settings.block_window);
		return 0;
	}
	err = guard_block(g, src, now_ns);
	if (err) {
		g->stats.map_errors++;
		pr_warn("login guard: blocking source %s after %u failed logins failed: %s",
			text, failures, strerror(-err));
		return err;
	}
	g->stats.blocked++;
	pr_warn("login guard: blocked source %s for %u s after %u failed logins within %u s",
		text, g->settings.block_ttl, failures, g->settings.block_window);
	return 1;
}

int guard_note_failure(struct guard *g, const struct sockaddr *sa,
		       uint64_t now_ns)
{
	struct guard_source src;
	unsigned int failures;
	int err;

	if (!g->table)
		return 0;
	err = guard_source_from_sockaddr(&src, sa);
	if (err)
		return err;
	g->stats.failures++;
	err = guard_table_fail(g->table, &src, now_ns, &failures);
	if (err <= 0)
		return err;
	return guard_over_limit(g, &src, failures, now_ns);
}

const struct guard_stats *guard_get_stats(const struct guard *g)
{
	return &g->stats;
}

int guard_can_block(const struct guard *g)
{
	return g->block_v4_fd >= 0 && g->block_v6_fd >= 0;
}

static uint64_t guard_now_ns(void)
{
	/* The XDP program compares expiries with bpf_ktime_get_ns(), which
	 * is CLOCK_MONOTONIC. */
	return clock_ns(CLOCK_MONOTONIC);
}

int guard_start(struct gateway *gw)
{
	struct guard_settings settings = {
		.block_after = gw->cfg.block_after,
		.block_window = gw->cfg.block_window,
		.block_ttl = gw->cfg.block_ttl,
	};

	gw->guard = guard_new(&settings, gw->cfg.bpf_pin_dir);
	if (!gw->guard) {
		pr_error("creating the login guard failed: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

void guard_stop(struct gateway *gw)
{
	guard_free(gw->guard);
	gw->guard = NULL;
}

void guard_login_failed(struct gateway *gw, struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int err;

	if (!gw->guard || !gw->guard->table)
		return;
	if (getpeername(c->fd, (struct sockaddr *)&ss, &len) < 0) {
		err = -errno;
		pr_warn("conn %llu fd %d: login guard cannot read the peer address: %s",
			(unsigned long long)c->id, c->fd, strerror(-err));
		return;
	}
	err = guard_note_failure(gw->guard, (struct sockaddr *)&ss,
				 guard_now_ns());
	if (err == -ENOMEM)
		pr_warn("conn %llu peer %s: login guard out of memory: %s",
			(unsigned long long)c->id, c->peer, strerror(-err));
}

void guard_metrics(struct gateway *gw, struct evbuffer *out)
{
	static const struct guard_stats zero;
	const struct guard_stats *st = gw->guard ? &gw->guard->stats : &zero;
	const char *name = "imgw_sources_not_blocked_total";

	metrics_append(out, "imgw_login_guard_blocking", "gauge",
		       "1 when the login guard can add sources to the XDP blocklist, else 0.",
		       gw->guard && gw->guard->table && guard_can_block(gw->guard));
	metrics_append(out, "imgw_login_guard_sources", "gauge",
		       "Sources with failed logins tracked by the login guard.",
		       gw->guard && gw->guard->table ?
		       guard_table_size(gw->guard->table) : 0);
	metrics_append(out, "imgw_login_guard_failures_total", "counter",
		       "Failed logins counted by the login guard.", st->failures);
	metrics_append(out, "imgw_sources_blocked_total", "counter",
		       "Sources added to the XDP blocklist after repeated failed logins.",
		       st->blocked);
	evbuffer_add_printf(out, "# HELP %s Sources over the failed-login limit that were not blocked, by reason.\n# TYPE %s counter\n",
			    name, name);
	evbuffer_add_printf(out, "%s{reason=\"loopback\"} %llu\n", name,
			    (unsigned long long)st->skipped_loopback);
	evbuffer_add_printf(out, "%s{reason=\"no_map\"} %llu\n", name,
			    (unsigned long long)st->skipped_no_map);
	evbuffer_add_printf(out, "%s{reason=\"map_error\"} %llu\n", name,
			    (unsigned long long)st->map_errors);
}

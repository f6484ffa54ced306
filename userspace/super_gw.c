// SPDX-License-Identifier: MIT
/*
 * The gateway's side of super sessions; see super_gw.h. Every frame from
 * the daemon arrives on one ordered link, so a SUPER frame for a session
 * always follows the SUPER_UPGRADE that built its cache, and a connection
 * that logs in joins the caches before the next DELIVER is read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "conn_io.h"
#include "deliver.h"
#include "log.h"
#include "super_gw.h"
#include "upstream.h"

static uint64_t monotonic_ms(void)
{
	return clock_ns(CLOCK_MONOTONIC) / 1000000;
}

static const char *type_name(Imgw__SessionType type)
{
	return type == IMGW__SESSION_TYPE__SESSION_TYPE_SUPER_UPGRADE ?
	       "SUPER_UPGRADE" : "SUPER_DEMOTE";
}

static void super_gw_ack(struct gateway *gw, uint64_t session_id,
			 uint32_t epoch, Imgw__SessionType type,
			 uint32_t cached)
{
	int err;

	if (gw->faults.drop_super_acks) {
		gw->stats.super_acks_dropped++;
		pr_debug("session %llu: dropped SUPER_ACK of %s epoch %u (fault drop_super_acks is on)",
			 (unsigned long long)session_id, type_name(type),
			 epoch);
		return;
	}
	err = upstream_super_ack(gw->upstream, session_id, epoch, type,
				 cached);
	if (err) {
		pr_warn("session %llu: sending SUPER_ACK of %s epoch %u failed: %s",
			(unsigned long long)session_id, type_name(type), epoch,
			strerror(-err));
		return;
	}
	gw->stats.super_acks_sent++;
}

/* Logs the first SUPER without a cache, then at most one line a second
 * with the count of those not logged. */
static void warn_no_cache(struct gateway *gw, const Imgw__Deliver *msg)
{
	uint64_t now = monotonic_ms();

	if (gw->super_warn_ms &&
	    now - gw->super_warn_ms < SUPER_GW_WARN_INTERVAL_MS) {
		gw->super_warn_suppressed++;
		return;
	}
	if (gw->super_warn_suppressed)
		pr_warn("DELIVER SUPER session %llu seq %llu epoch %u: no cache for the session here, message not pushed (%llu such frames not logged since the previous warning)",
			(unsigned long long)msg->session_id,
			(unsigned long long)msg->seq, msg->epoch,
			(unsigned long long)gw->super_warn_suppressed);
	else
		pr_warn("DELIVER SUPER session %llu seq %llu epoch %u: no cache for the session here, message not pushed",
			(unsigned long long)msg->session_id,
			(unsigned long long)msg->seq, msg->epoch);
	gw->super_warn_ms = now;
	gw->super_warn_suppressed = 0;
}

void super_gw_broadcast(struct gateway *gw, const Imgw__Deliver *msg)
{
	struct sess_cache_entry *e;
	struct conn **conns;
	size_t n;

	gw->stats.broadcasts++;
	e = sess_cache_find(&gw->caches, msg->session_id);
	if (!e) {
		gw->stats.super_broadcast_without_cache++;
		warn_no_cache(gw, msg);
		return;
	}
	if (e->epoch != msg->epoch)
		pr_debug("DELIVER SUPER session %llu seq %llu: epoch %u, cache built at epoch %u",
			 (unsigned long long)msg->session_id,
			 (unsigned long long)msg->seq, msg->epoch, e->epoch);
	if (e->n_members == 0 || msg->push.len == 0)
		return;
	/* The kernel path keeps its one broadcast per message. */
	if (!gw->kmirror && deliver_batch_add(gw, msg) == 0)
		return;
	deliver_batch_flush(gw);
	/* A copy: a slow close during the push removes from the cache. */
	conns = malloc(e->n_members * sizeof(*conns));
	if (!conns) {
		pr_warn("DELIVER SUPER session %llu seq %llu to %u cached connections dropped: out of memory",
			(unsigned long long)msg->session_id,
			(unsigned long long)msg->seq, e->n_members);
		return;
	}
	for (uint32_t i = 0; i < e->n_members; i++)
		conns[i] = e->members[i].conn;
	n = e->n_members;
	gw->stats.cache_deliveries += deliver_push(gw, msg, conns, n);
	free(conns);
}

/* Keeps the connections of conns that are still live; returns how many. */
static size_t keep_live(struct conn **conns, size_t n)
{
	size_t kept = 0;

	for (size_t i = 0; i < n; i++) {
		if (conn_is_live(conns[i]))
			conns[kept++] = conns[i];
	}
	return kept;
}

/* Pushes msg to its targets; returns their connections in *out (live ones
 * only, the excluded sender included) or -ENOMEM. */
static int push_to_targets(struct gateway *gw, const Imgw__Deliver *msg,
			   struct conn ***out, size_t *n_out)
{
	struct conn **conns = calloc(msg->n_targets + 1, sizeof(*conns));
	size_t n;

	if (!conns)
		return -ENOMEM;
	n = deliver_find_targets(gw, msg, conns);
	deliver_push(gw, msg, conns, n);
	*out = conns;
	*n_out = keep_live(conns, n);
	return 0;
}

static void log_upgrade(const Imgw__Deliver *msg, int fresh, size_t cached)
{
	if (fresh)
		pr_info("session %llu: applied SUPER_UPGRADE epoch %u seq %llu: %zu connections cached",
			(unsigned long long)msg->session_id, msg->epoch,
			(unsigned long long)msg->seq, cached);
	else
		pr_debug("session %llu: applied SUPER_UPGRADE epoch %u seq %llu again: %zu connections cached",
			 (unsigned long long)msg->session_id, msg->epoch,
			 (unsigned long long)msg->seq, cached);
}

void super_gw_upgrade(struct gateway *gw, const Imgw__Deliver *msg)
{
	struct sess_cache_entry *e;
	struct conn **conns = NULL;
	size_t n;
	int fresh, err;

	e = sess_cache_find(&gw->caches, msg->session_id);
	fresh = !e || e->epoch != msg->epoch;
	err = push_to_targets(gw, msg, &conns, &n);
	if (!err)
		err = sess_cache_replace(&gw->caches, msg->session_id,
					 msg->epoch, conns, n);
	free(conns);
	if (err) {
		/* No ack: the daemon re-sends the upgrade. */
		pr_warn("session %llu: applying SUPER_UPGRADE epoch %u seq %llu failed, cache dropped: %s",
			(unsigned long long)msg->session_id, msg->epoch,
			(unsigned long long)msg->seq, strerror(-err));
		return;
	}
	if (fresh)
		gw->stats.super_transitions++;
	log_upgrade(msg, fresh, n);
	super_gw_ack(gw, msg->session_id, msg->epoch,
		     IMGW__SESSION_TYPE__SESSION_TYPE_SUPER_UPGRADE,
		     (uint32_t)n);
}

void super_gw_demote(struct gateway *gw, const Imgw__Deliver *msg)
{
	struct sess_cache_entry *e;
	struct conn **conns = NULL;
	uint32_t cached;
	size_t n;
	int err;

	err = push_to_targets(gw, msg, &conns, &n);
	free(conns);
	if (err)
		pr_warn("DELIVER SUPER_DEMOTE session %llu seq %llu to %zu devices not pushed: out of memory",
			(unsigned long long)msg->session_id,
			(unsigned long long)msg->seq, msg->n_targets);
	e = sess_cache_find(&gw->caches, msg->session_id);
	if (e) {
		cached = e->n_members;
		sess_cache_drop(&gw->caches, e);
		gw->stats.super_transitions++;
		pr_info("session %llu: applied SUPER_DEMOTE epoch %u seq %llu: dropped the cache of %u connections",
			(unsigned long long)msg->session_id, msg->epoch,
			(unsigned long long)msg->seq, cached);
	} else {
		pr_debug("session %llu: applied SUPER_DEMOTE epoch %u seq %llu: no cache to drop",
			 (unsigned long long)msg->session_id, msg->epoch,
			 (unsigned long long)msg->seq);
	}
	super_gw_ack(gw, msg->session_id, msg->epoch,
		     IMGW__SESSION_TYPE__SESSION_TYPE_SUPER_DEMOTE, 0);
}

/* Returns the connection of dev on this node, matching its conn id when
 * the daemon gave one, or NULL. */
static struct conn *find_device(struct gateway *gw, const Imgw__Device *dev)
{
	struct conn *c;

	if (!dev->user_id || !dev->device_id)
		return NULL;
	c = conn_registry_find_device(&gw->conns, dev->user_id,
				      dev->device_id);
	if (!c || (dev->conn_id && dev->conn_id != c->id))
		return NULL;
	return c;
}

/*
 * Collects the connections to remove for dev: the one with its conn id,
 * and the device's current connection if that is another one, because a
 * removed member must not keep any connection in the cache. Returns how
 * many it stored in out (room for 2).
 */
static size_t find_removed(struct gateway *gw, const Imgw__Device *dev,
			   struct conn **out)
{
	struct conn *by_id = NULL, *by_device = NULL;
	size_t n = 0;

	if (!dev->user_id)
		return 0;
	if (dev->conn_id) {
		by_id = conn_registry_find(&gw->conns, dev->conn_id);
		if (by_id && (!by_id->user_id ||
			      strcmp(by_id->user_id, dev->user_id) != 0))
			by_id = NULL;
	}
	if (dev->device_id)
		by_device = conn_registry_find_device(&gw->conns, dev->user_id,
						      dev->device_id);
	if (by_id)
		out[n++] = by_id;
	if (by_device && by_device != by_id)
		out[n++] = by_device;
	return n;
}

static int session_cache_apply(struct gateway *gw,
			       const Imgw__SessionCache *msg)
{
	struct conn **add, **remove;
	size_t n_add = 0, n_remove = 0;
	int err = -ENOMEM;

	add = calloc(msg->n_add + 1, sizeof(*add));
	remove = calloc(2 * msg->n_remove + 1, sizeof(*remove));
	if (!add || !remove)
		goto out_free;
	for (size_t i = 0; i < msg->n_add; i++) {
		struct conn *c = find_device(gw, msg->add[i]);

		if (c)
			add[n_add++] = c;
	}
	for (size_t i = 0; i < msg->n_remove; i++)
		n_remove += find_removed(gw, msg->remove[i],
					 remove + n_remove);
	err = sess_cache_update(&gw->caches, msg->session_id, add, n_add,
				remove, n_remove);
out_free:
	free(add);
	free(remove);
	return err;
}

void super_gw_session_cache(struct gateway *gw, const Imgw__SessionCache *msg)
{
	struct sess_cache_entry *e;
	int err;

	deliver_batch_flush(gw);
	gw->stats.session_cache_updates++;
	e = sess_cache_find(&gw->caches, msg->session_id);
	if (!e) {
		pr_debug("SESSION_CACHE session %llu epoch %u: no cache here; %zu adds and %zu removes ignored",
			 (unsigned long long)msg->session_id, msg->epoch,
			 msg->n_add, msg->n_remove);
		return;
	}
	err = session_cache_apply(gw, msg);
	if (err) {
		/* A partial cache must not serve SUPER frames. */
		pr_warn("SESSION_CACHE session %llu epoch %u: applying %zu adds and %zu removes failed, cache dropped: %s",
			(unsigned long long)msg->session_id, msg->epoch,
			msg->n_add, msg->n_remove, strerror(-err));
		e = sess_cache_find(&gw->caches, msg->session_id);
		if (e)
			sess_cache_drop(&gw->caches, e);
		return;
	}
	pr_debug("SESSION_CACHE session %llu epoch %u: %zu adds, %zu removes, %u connections cached",
		 (unsigned long long)msg->session_id, msg->epoch, msg->n_add,
		 msg->n_remove, e->n_members);
}

void super_gw_login(struct gateway *gw, struct conn *c,
		    const uint64_t *session_ids, size_t n)
{
	int joined;

	if (n == 0)
		return;
	deliver_batch_flush(gw);
	joined = sess_cache_join(&gw->caches, c, session_ids, n);
	if (joined < 0) {
		/*
		 * XXX: The connection misses the SUPER broadcasts of the
		 * caches it could not join until the daemon sends the next
		 * upgrade. The client finds the gap only by SYNC.
		 */
		pr_warn("conn %llu user %s device %s: joining %zu super-session caches failed: %s",
			(unsigned long long)c->id, c->user_id, c->device_id, n,
			strerror(-joined));
		return;
	}
	pr_debug("conn %llu user %s device %s: joined %d of %zu super-session caches",
		 (unsigned long long)c->id, c->user_id, c->device_id, joined,
		 n);
}

void super_gw_link_down(struct gateway *gw)
{
	size_t sessions, members;

	deliver_batch_flush(gw);
	sessions = gw->caches.n_sessions;
	members = gw->caches.n_members;
	if (sessions == 0)
		return;
	sess_cache_clear(&gw->caches);
	pr_info("dropped %zu super-session caches holding %zu connections: the link to bizsvr is down",
		sessions, members);
}

void super_gw_set_drop_acks(struct gateway *gw, int on)
{
	if (gw->faults.drop_super_acks == !!on)
		return;
	gw->faults.drop_super_acks = !!on;
	pr_info("fault drop_super_acks turned %s", on ? "on" : "off");
}

// SPDX-License-Identifier: MIT
/*
 * Super sessions wired into the daemon; see superwire.h. The state machine
 * itself is bizsvr/super.c, which keeps time in monotonic milliseconds:
 * every call here passes bizsvr_mono_ms().
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <event2/event.h>
#include <utlist.h>

#include "batch.h"
#include "imgw.pb-c.h"
#include "log.h"
#include "msg.h"
#include "superwire.h"

/* Rules are checked at most this often per session, because counting the
 * online members scans the member set. */
#define SUPERWIRE_EVAL_INTERVAL_MS 1000
#define SUPERWIRE_SWEEP_INTERVAL_MS 5000

struct superwire {
	struct bizsvr *bz;
	struct super_table *table;
	char **node_ids;             /* index -> node id, max_nodes slots */
	unsigned int n_nodes;        /* indexes 0 .. n_nodes - 1 are assigned */
	unsigned int max_nodes;
	uint64_t boot_fallbacks;     /* stand-in boot ids handed out */
	struct event *timer;
	int64_t last_sweep_ms;
};

/* (session, node) pairs whose transition is due, grouped by session
 * because super_due_retries() walks one session at a time. */
struct superwire_due {
	uint64_t *sessions;
	int *nodes;
	size_t n, cap;
	int only_node;               /* SUPERWIRE_NO_NODE: every node */
};

static const char *const ack_result_names[] = {
	[SUPER_ACK_ACCEPTED] = "accepted",
	[SUPER_ACK_STALE] = "stale",
	[SUPER_ACK_DUPLICATE] = "duplicate",
	[SUPER_ACK_UNKNOWN] = "unknown",
};

const struct super_table *superwire_table(const struct superwire *sw)
{
	return sw->table;
}

const char *superwire_node_id(const struct superwire *sw, unsigned int node)
{
	return node < sw->n_nodes ? sw->node_ids[node] : NULL;
}

unsigned int superwire_node_count(const struct superwire *sw)
{
	return sw->n_nodes;
}

static int superwire_due_add(void *arg, uint64_t session_id,
			     unsigned int node, enum super_type transition,
			     uint32_t epoch)
{
	struct superwire_due *due = arg;

	if (due->only_node != SUPERWIRE_NO_NODE && (int)node != due->only_node)
		return 0;
	if (due->n == due->cap) {
		size_t cap = due->cap ? due->cap * 2 : 16;
		uint64_t *s = realloc(due->sessions, cap * sizeof(*s));
		int *n;

		if (!s)
			return -ENOMEM;
		due->sessions = s;
		n = realloc(due->nodes, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		due->nodes = n;
		due->cap = cap;
	}
	due->sessions[due->n] = session_id;
	due->nodes[due->n++] = (int)node;
	return 0;
}

/* Sends each due pair its transition without a message, one member scan
 * per session. */
static void superwire_due_send(struct superwire *sw,
			       const struct superwire_due *due)
{
	size_t i = 0, j;
	struct session *s;

	while (i < due->n) {
		for (j = i + 1; j < due->n && due->sessions[j] == due->sessions[i];)
			j++;
		s = session_get(sw->bz->sessions, due->sessions[i]);
		if (s)
			msg_send_transitions(sw->bz, s, &due->nodes[i], j - i);
		else
			pr_warn("super: loading session %" PRIu64 " to re-send its transition failed: %s",
				due->sessions[i], strerror(errno));
		i = j;
	}
}

/* Sends every (session, node) transition unacknowledged since retry_ms
 * before now_ms, to only_node or to every node. */
static void superwire_send_due(struct superwire *sw, int64_t now_ms,
			       int only_node)
{
	struct superwire_due due = { .only_node = only_node };
	int err;

	err = super_due_retries(sw->table, now_ms, superwire_due_add, &due);
	if (err < 0)
		pr_warn("super: listing due transitions failed: %s; sending %zu of them",
			strerror(-err), due.n);
	superwire_due_send(sw, &due);
	free(due.sessions);
	free(due.nodes);
}

static void superwire_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct superwire *sw = arg;
	int64_t now = bizsvr_mono_ms();
	unsigned int freed;

	batch_commit(sw->bz->batch);
	superwire_send_due(sw, now, SUPERWIRE_NO_NODE);
	if (now - sw->last_sweep_ms < SUPERWIRE_SWEEP_INTERVAL_MS)
		return;
	sw->last_sweep_ms = now;
	freed = super_sweep(sw->table, now);
	if (freed)
		pr_debug("super: sweep freed %u idle session entries", freed);
}

static int superwire_start_timer(struct superwire *sw)
{
	unsigned int period = sw->bz->cfg->super_rules.retry_ms / 2;
	struct timeval tv = {
		.tv_sec = period / 1000,
		.tv_usec = (period % 1000) * 1000,
	};

	sw->timer = event_new(sw->bz->base, -1, EV_PERSIST, superwire_timer_cb,
			      sw);
	if (!sw->timer)
		return -ENOMEM;
	if (event_add(sw->timer, &tv) < 0)
		return -EINVAL;
	return 0;
}

struct superwire *superwire_new(struct bizsvr *bz)
{
	const struct bizsvr_config *cfg = bz->cfg;
	struct superwire *sw = calloc(1, sizeof(*sw));
	uint32_t origin;
	int err = ENOMEM;

	if (!sw)
		goto err_errno;
	sw->bz = bz;
	sw->max_nodes = cfg->super_max_nodes;
	sw->node_ids = calloc(sw->max_nodes, sizeof(*sw->node_ids));
	sw->table = super_table_new(&cfg->super_rules, cfg->super_max_nodes);
	if (!sw->node_ids || !sw->table) {
		err = sw->table ? ENOMEM : errno;
		goto err_free;
	}
	/* Acks meant for an earlier daemon process must not match. */
	if (getrandom(&origin, sizeof(origin), 0) != (ssize_t)sizeof(origin)) {
		err = errno;
		goto err_free;
	}
	super_set_epoch_origin(sw->table, origin);
	sw->last_sweep_ms = bizsvr_mono_ms();
	err = -superwire_start_timer(sw);
	if (err)
		goto err_free;
	return sw;

err_free:
	superwire_free(sw);
err_errno:
	errno = err;
	return NULL;
}

void superwire_free(struct superwire *sw)
{
	if (!sw)
		return;
	if (sw->timer)
		event_free(sw->timer);
	for (unsigned int i = 0; i < sw->n_nodes; i++)
		free(sw->node_ids[i]);
	free(sw->node_ids);
	super_table_free(sw->table);
	free(sw);
}

/* Returns the index of node_id, assigning the next free one for a new
 * node id, or SUPERWIRE_NO_NODE when every index is taken. */
static int superwire_node_index(struct superwire *sw, const char *node_id)
{
	for (unsigned int i = 0; i < sw->n_nodes; i++) {
		if (strcmp(sw->node_ids[i], node_id) == 0)
			return (int)i;
	}
	if (sw->n_nodes == sw->max_nodes)
		return SUPERWIRE_NO_NODE;
	sw->node_ids[sw->n_nodes] = strdup(node_id);
	if (!sw->node_ids[sw->n_nodes])
		return SUPERWIRE_NO_NODE;
	return (int)sw->n_nodes++;
}

int superwire_node_up(struct superwire *sw, const char *node_id,
		      const char *boot_id)
{
	int node = superwire_node_index(sw, node_id);
	char fallback[32];
	int err;

	if (node == SUPERWIRE_NO_NODE) {
		pr_warn("super: no node index for node %s (%u of %u taken, or out of memory): it gets normal DELIVERs only",
			node_id, sw->n_nodes, sw->max_nodes);
		return SUPERWIRE_NO_NODE;
	}
	if (!boot_id || !boot_id[0] || strlen(boot_id) > SUPER_BOOT_ID_MAX) {
		/* A stand-in that never repeats counts as a new process,
		 * which is the safe reading: it has no caches. */
		snprintf(fallback, sizeof(fallback), "invalid-%" PRIu64,
			 ++sw->boot_fallbacks);
		pr_warn("super: node %s registered with an empty or over-long boot id, treating it as a new process",
			node_id);
		boot_id = fallback;
	}
	err = super_node_up(sw->table, (unsigned int)node, boot_id,
			    bizsvr_mono_ms());
	if (err < 0) {
		pr_error("super: marking node %s (index %d) up failed: %s",
			 node_id, node, strerror(-err));
		return SUPERWIRE_NO_NODE;
	}
	pr_debug("super: node %s is up as index %d", node_id, node);
	return node;
}

void superwire_node_resend(struct superwire *sw, int node)
{
	int64_t now = bizsvr_mono_ms();

	if (node == SUPERWIRE_NO_NODE)
		return;
	/* super_node_up() made every transition pending as of now, so each
	 * one is due retry_ms from now: ask for those, for this node. */
	superwire_send_due(sw, now + sw->bz->cfg->super_rules.retry_ms, node);
}

void superwire_node_down(struct superwire *sw, int node)
{
	struct super_stats before, after;

	if (node == SUPERWIRE_NO_NODE)
		return;
	super_stats_get(sw->table, &before);
	super_node_down(sw->table, (unsigned int)node, bizsvr_mono_ms());
	super_stats_get(sw->table, &after);
	if (after.convergences > before.convergences)
		pr_info("super: %" PRIu64 " sessions converged when node %s went down",
			after.convergences - before.convergences,
			sw->node_ids[node]);
}

static void superwire_log_converged(struct superwire *sw, uint64_t session_id,
				    const struct super_session_info *info,
				    const char *why)
{
	int64_t took = info->last_transition_ms >= 0 ?
		       bizsvr_mono_ms() - info->last_transition_ms : 0;

	pr_info("super: session %" PRIu64 " converged as %s at epoch %u, %" PRId64 " ms after the transition (%s)",
		session_id, super_type_name(info->type), info->epoch, took,
		why);
}

void superwire_handle_ack(struct superwire *sw, struct link *l, int node,
			  const uint8_t *body, size_t len)
{
	struct super_session_info info;
	Imgw__SuperAck *ack;
	int had_info, was_converged, result;

	ack = imgw__super_ack__unpack(NULL, len, body);
	if (!ack) {
		pr_warn("super: undecodable SUPER_ACK body (%zu bytes) from node %s, ignoring it",
			len, link_node_id(l));
		return;
	}
	had_info = super_session_info(sw->table, ack->session_id,
				      bizsvr_mono_ms(), &info) == 0;
	was_converged = super_converged(sw->table, ack->session_id);
	/* A node without an index never got a transition: super_ack()
	 * counts the out-of-range index as unknown. */
	result = super_ack(sw->table, ack->session_id,
			   node == SUPERWIRE_NO_NODE ? sw->max_nodes :
			   (unsigned int)node, ack->epoch,
			   (enum super_type)ack->type, bizsvr_mono_ms());
	pr_debug("super: SUPER_ACK %s epoch %u of session %" PRIu64 " from node %s (%u cached): %s",
		 super_type_name((enum super_type)ack->type), ack->epoch,
		 ack->session_id, link_node_id(l), ack->cached,
		 ack_result_names[result]);
	if (result == SUPER_ACK_ACCEPTED && had_info && !was_converged &&
	    super_converged(sw->table, ack->session_id))
		superwire_log_converged(sw, ack->session_id, &info,
					"last acknowledgement");
	imgw__super_ack__free_unpacked(ack, NULL);
}

/* Returns how many members of s have at least one device online. */
static unsigned int superwire_count_online(struct superwire *sw,
					   const struct session *s)
{
	struct session_member *m, *tmp;
	unsigned int online = 0;

	HASH_ITER(hh, s->members, m, tmp) {
		if (presence_user_find(sw->bz->presence, m->user_id))
			online++;
	}
	return online;
}

static void superwire_evaluate(struct superwire *sw, struct session *s,
			       int64_t now)
{
	struct super_session_info info;
	enum super_type before = super_type_of(sw->table, s->id);
	unsigned int online = superwire_count_online(sw, s);
	int ret;

	ret = super_evaluate(sw->table, s->id, s->member_count, online, now);
	if (ret < 0) {
		pr_warn("super: applying the rules to session %" PRIu64 " failed: %s",
			s->id, strerror(-ret));
		return;
	}
	if ((enum super_type)ret == before ||
	    super_session_info(sw->table, s->id, now, &info) < 0)
		return;
	pr_info("super: session %" PRIu64 " %s started: epoch %u, %u members, %u online, %" PRIu64 ".%03" PRIu64 " messages/s",
		s->id, ret == SUPER_TYPE_SUPER ? "upgrade" : "demote",
		info.epoch, s->member_count, online, info.rate_milli / 1000,
		info.rate_milli % 1000);
}

void superwire_note_message(struct superwire *sw, struct session *s)
{
	struct super_session_info info;
	int64_t now;
	int err;

	if (!sw)
		return;
	now = bizsvr_mono_ms();
	/* Small sessions cannot be upgraded by the rules, so they need no
	 * entry unless they already have one (forced, or members left). */
	if (s->member_count < sw->bz->cfg->super_rules.upgrade_min_members &&
	    super_session_info(sw->table, s->id, now, &info) == -ENOENT)
		return;
	err = super_note_message(sw->table, s->id, now);
	if (err < 0)
		pr_warn("super: counting a message of session %" PRIu64 " failed: %s",
			s->id, strerror(-err));
	if (s->super_eval_ms &&
	    now - s->super_eval_ms < SUPERWIRE_EVAL_INTERVAL_MS)
		return;
	s->super_eval_ms = now;
	superwire_evaluate(sw, s, now);
}

int superwire_plan(struct superwire *sw, uint64_t session_id, int node,
		   struct super_plan *plan)
{
	if (!sw || node == SUPERWIRE_NO_NODE) {
		plan->type = SUPER_TYPE_NORMAL;
		plan->epoch = 0;
		plan->with_devices = 1;
		plan->retry = 0;
		return 0;
	}
	return super_plan(sw->table, session_id, (unsigned int)node,
			  bizsvr_mono_ms(), plan);
}

int superwire_may_cache(const struct superwire *sw, uint64_t session_id,
			int node)
{
	struct super_node_info info;

	if (!sw || node == SUPERWIRE_NO_NODE)
		return 0;
	if (super_node_info(sw->table, session_id, (unsigned int)node,
			    &info) < 0)
		return 0;
	return info.may_cache;
}

enum super_type superwire_type(const struct superwire *sw,
			       uint64_t session_id)
{
	return sw ? super_type_of(sw->table, session_id) : SUPER_TYPE_NORMAL;
}

/* Collects the online devices of user on node_id into devs, pointers into
 * presence. Returns how many, at most cap. */
static size_t superwire_user_devices(struct superwire *sw, const char *user,
				     const char *node_id, Imgw__Device *devs,
				     Imgw__Device **ptrs, size_t cap)
{
	struct presence_user *u = presence_user_find(sw->bz->presence, user);
	struct presence_device *d;
	size_t n = 0;

	if (!u)
		return 0;
	DL_FOREACH2(u->devices, d, user_next) {
		if (n == cap || strcmp(d->node->node_id, node_id) != 0)
			continue;
		imgw__device__init(&devs[n]);
		devs[n].user_id = u->user_id;
		devs[n].device_id = d->device_id;
		devs[n].conn_id = d->conn_id;
		ptrs[n] = &devs[n];
		n++;
	}
	return n;
}

/* Sends one SESSION_CACHE for user's devices on node, if it has any. */
static void superwire_cache_node(struct superwire *sw, const struct session *s,
				 uint32_t epoch, unsigned int node,
				 const char *user, int added)
{
	Imgw__SessionCache sc = IMGW__SESSION_CACHE__INIT;
	struct presence_user *u = presence_user_find(sw->bz->presence, user);
	const char *node_id = sw->node_ids[node];
	struct link *l = link_find(sw->bz->links, node_id);
	Imgw__Device *devs, **ptrs;
	size_t n;
	int err;

	if (!u || !u->count || !l)
		return;
	devs = calloc(u->count, sizeof(*devs));
	ptrs = calloc(u->count, sizeof(*ptrs));
	err = -ENOMEM;
	if (!devs || !ptrs)
		goto out;
	n = superwire_user_devices(sw, user, node_id, devs, ptrs, u->count);
	err = 0;
	if (!n)
		goto out;
	sc.session_id = s->id;
	sc.epoch = epoch;
	sc.add = added ? ptrs : NULL;
	sc.n_add = added ? n : 0;
	sc.remove = added ? NULL : ptrs;
	sc.n_remove = added ? 0 : n;
	err = link_send(l, OP_SESSION_CACHE, 0, &sc.base);
	if (!err) {
		sw->bz->stats.session_cache_frames++;
		pr_info("super: SESSION_CACHE %s %zu devices of %s in session %" PRIu64 " on node %s",
			added ? "adds" : "removes", n, user, s->id, node_id);
	}
out:
	if (err < 0)
		pr_warn("super: SESSION_CACHE for %s in session %" PRIu64 " to node %s failed: %s",
			user, s->id, node_id, strerror(-err));
	free(ptrs);
	free(devs);
}

void superwire_member_changed(struct superwire *sw, const struct session *s,
			      const char *user, int added)
{
	struct super_session_info info;

	if (!sw || super_session_info(sw->table, s->id, bizsvr_mono_ms(),
				      &info) < 0)
		return;
	for (unsigned int node = 0; node < sw->n_nodes; node++) {
		if (!super_node_is_up(sw->table, node) ||
		    !superwire_may_cache(sw, s->id, (int)node))
			continue;
		superwire_cache_node(sw, s, info.epoch, node, user, added);
	}
}

int superwire_force(struct superwire *sw, struct session *s,
		    enum super_type target)
{
	struct super_session_info info;
	int nodes[SUPER_MAX_NODES];
	int64_t now = bizsvr_mono_ms();
	size_t n = 0;
	int err;

	err = super_force(sw->table, s->id, target, 1, now);
	if (err < 0)
		return err;
	super_session_info(sw->table, s->id, now, &info);
	pr_info("super: session %" PRIu64 " forced to %s and pinned: epoch %u",
		s->id, super_type_name(target), info.epoch);
	if (super_converged(sw->table, s->id)) {
		superwire_log_converged(sw, s->id, &info, "no gateway to wait for");
		return 0;
	}
	/* Start the transition now instead of on the next message. */
	for (unsigned int node = 0; node < sw->n_nodes; node++) {
		if (super_node_is_up(sw->table, node))
			nodes[n++] = (int)node;
	}
	msg_send_transitions(sw->bz, s, nodes, n);
	return 0;
}

int superwire_unpin(struct superwire *sw, uint64_t session_id)
{
	int err = super_unpin(sw->table, session_id);

	if (!err)
		pr_info("super: session %" PRIu64 " unpinned: the rules decide its type again",
			session_id);
	return err;
}

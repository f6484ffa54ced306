// SPDX-License-Identifier: MIT
// Super-session state machine: per-session type and epoch, a message-rate
// window, and per-node acknowledgement state for the transition in flight.
// Sessions that are normal and hold no history have no entry, and per-node
// state exists only while a session is super or a demote is unconverged, so
// millions of idle sessions cost nothing. See docs/super-sessions.md.

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "super.h"

/* An element the hash could not index is marked instead of aborting. */
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) ((obj)->add_failed = 1)
#include <uthash.h>

#include "imgw.pb-c.h"

#define SUPER_SAME_AS_PROTO(ours, proto) \
	_Static_assert((int)(ours) == (int)(proto), \
		       #ours " must equal imgw.SessionType " #proto)
SUPER_SAME_AS_PROTO(SUPER_TYPE_NORMAL, IMGW__SESSION_TYPE__SESSION_TYPE_NORMAL);
SUPER_SAME_AS_PROTO(SUPER_TYPE_SUPER, IMGW__SESSION_TYPE__SESSION_TYPE_SUPER);
SUPER_SAME_AS_PROTO(SUPER_TYPE_UPGRADE,
		    IMGW__SESSION_TYPE__SESSION_TYPE_SUPER_UPGRADE);
SUPER_SAME_AS_PROTO(SUPER_TYPE_DEMOTE,
		    IMGW__SESSION_TYPE__SESSION_TYPE_SUPER_DEMOTE);

/* struct super_peer flags */
#define PEER_ACKED 0x1     /* acknowledged the current epoch */
#define PEER_SENT 0x2      /* got the transition since epoch or node reset */
#define PEER_MAY_CACHE 0x4 /* got an upgrade and no acknowledged demote since */

/* struct super_entry flags */
#define ENTRY_CHANGED 0x1   /* last_transition_ms is valid */
#define ENTRY_PINNED 0x2    /* super_force() with pin */
#define ENTRY_CONVERGED 0x4 /* convergence of the current state was counted */

/* One node's state for one session's current epoch. */
struct super_peer {
	int64_t since_ms;
	int64_t last_send_ms;
	uint32_t retries;
	uint8_t flags;
};

struct super_entry {
	UT_hash_handle hh;
	uint64_t session_id;
	int64_t last_transition_ms;
	int64_t pending_since_ms;   /* start of the wait for convergence */
	int64_t ring_interval;      /* interval of the newest ring slot, -1: none */
	struct super_peer *peers;   /* max_nodes elements, or NULL */
	uint32_t epoch;
	uint16_t ring[SUPER_RATE_SLOTS];
	uint8_t type;               /* SUPER_TYPE_NORMAL or SUPER_TYPE_SUPER */
	uint8_t flags;
	uint8_t add_failed;         /* set by uthash when indexing ran out of memory */
};

struct super_node {
	uint8_t up;
	uint8_t known;              /* boot_id is the last registration's id */
	char boot_id[SUPER_BOOT_ID_MAX + 1];
};

struct super_table {
	struct super_rules rules;
	struct super_entry *entries;
	struct super_node *nodes;
	unsigned int max_nodes;
	uint32_t epoch_origin;
	struct super_stats stats;
};

int super_epoch_before(uint32_t a, uint32_t b)
{
	/* RFC 1982: a < b when b - a, modulo 2^32, is in 1 .. 2^31 - 1. */
	uint32_t diff = b - a;

	return diff != 0 && diff < 0x80000000u;
}

void super_rules_default(struct super_rules *rules)
{
	rules->upgrade_min_members = SUPER_DEFAULT_UPGRADE_MIN_MEMBERS;
	rules->upgrade_min_online = SUPER_DEFAULT_UPGRADE_MIN_ONLINE;
	rules->upgrade_rate = SUPER_DEFAULT_UPGRADE_RATE;
	rules->demote_rate = SUPER_DEFAULT_DEMOTE_RATE;
	rules->demote_online = SUPER_DEFAULT_DEMOTE_ONLINE;
	rules->window_ms = SUPER_DEFAULT_WINDOW_MS;
	rules->min_dwell_ms = SUPER_DEFAULT_MIN_DWELL_MS;
	rules->retry_ms = SUPER_DEFAULT_RETRY_MS;
}

int super_rules_check(const struct super_rules *rules)
{
	if (rules->window_ms < SUPER_RATE_SLOTS || rules->retry_ms == 0)
		return -EINVAL;
	if (rules->demote_rate > rules->upgrade_rate ||
	    rules->demote_online > rules->upgrade_min_online)
		return -EINVAL;
	return 0;
}

struct super_table *super_table_new(const struct super_rules *rules,
				    unsigned int max_nodes)
{
	struct super_table *table;

	if (super_rules_check(rules) < 0 || max_nodes == 0 ||
	    max_nodes > SUPER_MAX_NODES) {
		errno = EINVAL;
		return NULL;
	}
	table = calloc(1, sizeof(*table));
	if (!table)
		return NULL;
	table->nodes = calloc(max_nodes, sizeof(*table->nodes));
	if (!table->nodes)
		goto err_free_table;
	table->rules = *rules;
	table->max_nodes = max_nodes;
	return table;

err_free_table:
	free(table);
	errno = ENOMEM;
	return NULL;
}

void super_table_free(struct super_table *table)
{
	struct super_entry *e, *tmp;

	if (!table)
		return;
	HASH_ITER(hh, table->entries, e, tmp) {
		HASH_DEL(table->entries, e);
		free(e->peers);
		free(e);
	}
	free(table->nodes);
	free(table);
}

int super_set_rules(struct super_table *table, const struct super_rules *rules)
{
	if (super_rules_check(rules) < 0)
		return -EINVAL;
	table->rules = *rules;
	return 0;
}

void super_set_epoch_origin(struct super_table *table, uint32_t epoch)
{
	table->epoch_origin = epoch;
}

const char *super_type_name(enum super_type type)
{
	switch (type) {
	case SUPER_TYPE_NORMAL:
		return "normal";
	case SUPER_TYPE_SUPER:
		return "super";
	case SUPER_TYPE_UPGRADE:
		return "super_upgrade";
	case SUPER_TYPE_DEMOTE:
		return "super_demote";
	}
	return "unknown";
}

/* ---- entries ---- */

static struct super_entry *entry_find(const struct super_table *table,
				      uint64_t session_id)
{
	struct super_entry *e;

	HASH_FIND(hh, table->entries, &session_id, sizeof(session_id), e);
	return e;
}

static struct super_entry *entry_get(struct super_table *table,
				     uint64_t session_id)
{
	struct super_entry *e = entry_find(table, session_id);

	if (e)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->session_id = session_id;
	e->epoch = table->epoch_origin;
	e->type = SUPER_TYPE_NORMAL;
	e->ring_interval = -1;
	HASH_ADD(hh, table->entries, session_id, sizeof(e->session_id), e);
	if (e->add_failed) {
		free(e);
		errno = ENOMEM;
		return NULL;
	}
	table->stats.entries++;
	return e;
}

static void entry_drop_peers(struct super_table *table, struct super_entry *e)
{
	if (!e->peers)
		return;
	free(e->peers);
	e->peers = NULL;
	table->stats.tracked--;
}

static void entry_free(struct super_table *table, struct super_entry *e)
{
	/* The next entry of this session must start past every epoch it used. */
	if (super_epoch_before(table->epoch_origin, e->epoch))
		table->epoch_origin = e->epoch;
	HASH_DEL(table->entries, e);
	entry_drop_peers(table, e);
	free(e);
	table->stats.entries--;
}

/* ---- rate window ---- */

static int64_t rate_slot_ms(const struct super_rules *rules)
{
	return rules->window_ms / SUPER_RATE_SLOTS;
}

static int64_t rate_interval(const struct super_rules *rules, int64_t now_ms)
{
	int64_t slot = rate_slot_ms(rules);

	/* Floor division, so a negative clock still maps to one interval. */
	return now_ms >= 0 ? now_ms / slot : -((-now_ms + slot - 1) / slot);
}

/* Moves the ring forward to interval, zeroing the slots it skips. */
static void rate_advance(struct super_entry *e, int64_t interval)
{
	int64_t gap = interval - e->ring_interval;
	int64_t i;

	if (e->ring_interval < 0 || gap >= SUPER_RATE_SLOTS) {
		memset(e->ring, 0, sizeof(e->ring));
		e->ring_interval = interval;
		return;
	}
	/* A clock that stepped back counts into the newest slot. */
	if (gap <= 0)
		return;
	for (i = e->ring_interval + 1; i <= interval; i++)
		e->ring[i % SUPER_RATE_SLOTS] = 0;
	e->ring_interval = interval;
}

/* Returns the messages counted in the window that ends at now_ms. */
static uint64_t rate_count(const struct super_rules *rules,
			   const struct super_entry *e, int64_t now_ms)
{
	int64_t age, k;
	uint64_t sum = 0;

	if (e->ring_interval < 0)
		return 0;
	age = rate_interval(rules, now_ms) - e->ring_interval;
	if (age < 0)
		age = 0;
	for (k = 0; k + age < SUPER_RATE_SLOTS && k <= e->ring_interval; k++)
		sum += e->ring[(e->ring_interval - k) % SUPER_RATE_SLOTS];
	return sum;
}

/* Returns whether count messages in the window reach rate per second. */
static int rate_at_least(const struct super_rules *rules, uint64_t count,
			 unsigned int rate)
{
	uint64_t window = (uint64_t)rate_slot_ms(rules) * SUPER_RATE_SLOTS;

	return count * 1000 >= (uint64_t)rate * window;
}

int super_note_message(struct super_table *table, uint64_t session_id,
		       int64_t now_ms)
{
	struct super_entry *e = entry_get(table, session_id);
	int64_t interval = rate_interval(&table->rules, now_ms);
	uint16_t *slot;

	if (!e)
		return -ENOMEM;
	if (interval < 0)
		interval = 0;
	rate_advance(e, interval);
	slot = &e->ring[e->ring_interval % SUPER_RATE_SLOTS];
	if (*slot < UINT16_MAX)
		(*slot)++;
	return 0;
}

/* ---- convergence ---- */

static unsigned int entry_pending_nodes(const struct super_table *table,
					const struct super_entry *e)
{
	unsigned int n, pending = 0;

	if (!e->peers)
		return 0;
	for (n = 0; n < table->max_nodes; n++) {
		if (table->nodes[n].up && !(e->peers[n].flags & PEER_ACKED))
			pending++;
	}
	return pending;
}

/* Returns whether the rules and the gateways need nothing more from e. */
static int entry_idle(const struct super_table *table,
		      const struct super_entry *e, int64_t now_ms)
{
	if (e->type != SUPER_TYPE_NORMAL || e->peers ||
	    (e->flags & ENTRY_PINNED))
		return 0;
	if ((e->flags & ENTRY_CHANGED) &&
	    now_ms - e->last_transition_ms < table->rules.min_dwell_ms)
		return 0;
	return rate_count(&table->rules, e, now_ms) == 0;
}

/*
 * Counts the convergence of e once every live node has acknowledged, and
 * then, for a normal session, drops the per-node state and frees an idle
 * entry. Returns 1 when e was freed.
 */
static int entry_settle(struct super_table *table, struct super_entry *e,
			int64_t now_ms)
{
	if (!e->peers || (e->flags & ENTRY_CONVERGED))
		return 0;
	if (entry_pending_nodes(table, e) > 0)
		return 0;
	e->flags |= ENTRY_CONVERGED;
	table->stats.convergences++;
	if (now_ms > e->pending_since_ms)
		table->stats.convergence_ms_sum += now_ms - e->pending_since_ms;
	if (e->type != SUPER_TYPE_NORMAL)
		return 0;
	/*
	 * XXX: A node that was down when the demote converged never gets the
	 * demote, so a gateway that kept its cache over the link loss keeps it
	 * until a later upgrade replaces it. Gateways must drop every super
	 * cache when their daemon link drops.
	 */
	entry_drop_peers(table, e);
	if (!entry_idle(table, e, now_ms))
		return 0;
	entry_free(table, e);
	return 1;
}

/* Marks e waiting for convergence again, after a node reset. */
static void entry_unsettle(struct super_entry *e, int64_t now_ms)
{
	if (!(e->flags & ENTRY_CONVERGED))
		return;
	e->flags &= ~ENTRY_CONVERGED;
	e->pending_since_ms = now_ms;
}

/*
 * Clears a peer for a new epoch or a node registration. A node that cannot
 * hold a cache has nothing to demote, so a normal session counts it as
 * acknowledged at once.
 */
static void peer_reset(struct super_peer *p, enum super_type type,
		       int64_t now_ms)
{
	p->flags &= ~(PEER_ACKED | PEER_SENT);
	p->retries = 0;
	p->last_send_ms = 0;
	p->since_ms = now_ms;
	if (type == SUPER_TYPE_NORMAL && !(p->flags & PEER_MAY_CACHE))
		p->flags |= PEER_ACKED;
}

/* ---- transitions ---- */

/*
 * Moves e to target with a new epoch; every node must acknowledge again.
 * Returns 1 when e was freed (a demote no node had to act on), 0, or
 * -ENOMEM with e unchanged.
 */
static int entry_transition(struct super_table *table, struct super_entry *e,
			    enum super_type target, int64_t now_ms)
{
	unsigned int n;

	if (!e->peers) {
		e->peers = calloc(table->max_nodes, sizeof(*e->peers));
		if (!e->peers)
			return -ENOMEM;
		table->stats.tracked++;
	}
	e->epoch++;
	e->type = target;
	e->flags |= ENTRY_CHANGED;
	e->flags &= ~ENTRY_CONVERGED;
	e->last_transition_ms = now_ms;
	e->pending_since_ms = now_ms;
	for (n = 0; n < table->max_nodes; n++)
		peer_reset(&e->peers[n], target, now_ms);
	if (target == SUPER_TYPE_SUPER)
		table->stats.upgrades++;
	else
		table->stats.demotes++;
	return entry_settle(table, e, now_ms);
}

static int rules_want_upgrade(const struct super_rules *rules,
			      unsigned int members, unsigned int online,
			      uint64_t count)
{
	if (members < rules->upgrade_min_members)
		return 0;
	return online >= rules->upgrade_min_online ||
	       rate_at_least(rules, count, rules->upgrade_rate);
}

static int rules_want_demote(const struct super_rules *rules,
			     unsigned int online, uint64_t count)
{
	return online < rules->demote_online &&
	       !rate_at_least(rules, count, rules->demote_rate);
}

/* Returns whether e is still within min_dwell_ms of its last transition. */
static int entry_dwelling(const struct super_table *table,
			  const struct super_entry *e, int64_t now_ms)
{
	return (e->flags & ENTRY_CHANGED) &&
	       now_ms - e->last_transition_ms < table->rules.min_dwell_ms;
}

static int evaluate_new(struct super_table *table, uint64_t session_id,
			unsigned int members, unsigned int online,
			int64_t now_ms)
{
	struct super_entry *e;
	int err;

	if (!rules_want_upgrade(&table->rules, members, online, 0))
		return SUPER_TYPE_NORMAL;
	e = entry_get(table, session_id);
	if (!e)
		return -ENOMEM;
	err = entry_transition(table, e, SUPER_TYPE_SUPER, now_ms);
	if (err < 0) {
		entry_free(table, e);
		return err;
	}
	return SUPER_TYPE_SUPER;
}

int super_evaluate(struct super_table *table, uint64_t session_id,
		   unsigned int members, unsigned int online, int64_t now_ms)
{
	const struct super_rules *rules = &table->rules;
	struct super_entry *e = entry_find(table, session_id);
	uint64_t count;
	int err;

	if (!e)
		return evaluate_new(table, session_id, members, online, now_ms);
	if ((e->flags & ENTRY_PINNED) || entry_dwelling(table, e, now_ms))
		return e->type;
	count = rate_count(rules, e, now_ms);
	if (e->type == SUPER_TYPE_NORMAL &&
	    rules_want_upgrade(rules, members, online, count)) {
		err = entry_transition(table, e, SUPER_TYPE_SUPER, now_ms);
		return err < 0 ? err : SUPER_TYPE_SUPER;
	}
	if (e->type == SUPER_TYPE_SUPER &&
	    rules_want_demote(rules, online, count)) {
		err = entry_transition(table, e, SUPER_TYPE_NORMAL, now_ms);
		return err < 0 ? err : SUPER_TYPE_NORMAL;
	}
	return e->type;
}

int super_force(struct super_table *table, uint64_t session_id,
		enum super_type target, int pin, int64_t now_ms)
{
	struct super_entry *e;
	int created, err;
	uint8_t was_pinned;

	if (target != SUPER_TYPE_NORMAL && target != SUPER_TYPE_SUPER)
		return -EINVAL;
	created = !entry_find(table, session_id);
	e = entry_get(table, session_id);
	if (!e)
		return -ENOMEM;
	was_pinned = e->flags & ENTRY_PINNED;
	/* Pin first: a pinned entry is never idle, so the transition keeps it. */
	if (pin)
		e->flags |= ENTRY_PINNED;
	err = entry_transition(table, e, target, now_ms);
	if (err == 0 || err == 1)
		return 0;
	if (created) {
		entry_free(table, e);
		return err;
	}
	e->flags = (e->flags & ~ENTRY_PINNED) | was_pinned;
	return err;
}

int super_unpin(struct super_table *table, uint64_t session_id)
{
	struct super_entry *e = entry_find(table, session_id);

	if (!e)
		return -ENOENT;
	e->flags &= ~ENTRY_PINNED;
	return 0;
}

/* ---- sending and acknowledging ---- */

int super_plan(struct super_table *table, uint64_t session_id,
	       unsigned int node, int64_t now_ms, struct super_plan *plan)
{
	struct super_entry *e;
	struct super_peer *p;

	if (node >= table->max_nodes)
		return -EINVAL;
	if (!table->nodes[node].up)
		return -ENOTCONN;
	e = entry_find(table, session_id);
	plan->epoch = e ? e->epoch : table->epoch_origin;
	plan->retry = 0;
	if (!e || !e->peers || (e->peers[node].flags & PEER_ACKED)) {
		plan->type = e ? e->type : SUPER_TYPE_NORMAL;
		plan->with_devices = plan->type != SUPER_TYPE_SUPER;
		return 0;
	}
	p = &e->peers[node];
	if (e->type == SUPER_TYPE_SUPER) {
		plan->type = SUPER_TYPE_UPGRADE;
		p->flags |= PEER_MAY_CACHE;
	} else {
		plan->type = SUPER_TYPE_DEMOTE;
	}
	plan->with_devices = 1;
	if (p->flags & PEER_SENT) {
		plan->retry = 1;
		p->retries++;
		table->stats.retries++;
	}
	p->flags |= PEER_SENT;
	p->last_send_ms = now_ms;
	return 0;
}

/* Classifies an ack against e without changing anything; ACCEPTED means
 * the caller may apply it. */
static int ack_classify(const struct super_table *table,
			const struct super_entry *e, unsigned int node,
			uint32_t epoch, enum super_type acked_type)
{
	enum super_type expected;
	const struct super_peer *p;

	if (!e)
		return SUPER_ACK_UNKNOWN;
	if (super_epoch_before(epoch, e->epoch))
		return SUPER_ACK_STALE;
	if (epoch != e->epoch || !e->peers || !table->nodes[node].up)
		return SUPER_ACK_UNKNOWN;
	expected = e->type == SUPER_TYPE_SUPER ? SUPER_TYPE_UPGRADE :
						 SUPER_TYPE_DEMOTE;
	if (acked_type != expected)
		return SUPER_ACK_STALE;
	p = &e->peers[node];
	if (p->flags & PEER_ACKED)
		return SUPER_ACK_DUPLICATE;
	/* Never sent to this registration of the node, so not a reply to it. */
	if (!(p->flags & PEER_SENT))
		return SUPER_ACK_STALE;
	return SUPER_ACK_ACCEPTED;
}

static void ack_count(struct super_table *table, int result)
{
	switch (result) {
	case SUPER_ACK_ACCEPTED:
		table->stats.acks_accepted++;
		break;
	case SUPER_ACK_STALE:
		table->stats.acks_stale++;
		break;
	case SUPER_ACK_DUPLICATE:
		table->stats.acks_duplicate++;
		break;
	default:
		table->stats.acks_unknown++;
		break;
	}
}

int super_ack(struct super_table *table, uint64_t session_id,
	      unsigned int node, uint32_t epoch, enum super_type acked_type,
	      int64_t now_ms)
{
	struct super_entry *e = NULL;
	struct super_peer *p;
	int result = SUPER_ACK_UNKNOWN;

	if (node < table->max_nodes &&
	    (acked_type == SUPER_TYPE_UPGRADE || acked_type == SUPER_TYPE_DEMOTE)) {
		e = entry_find(table, session_id);
		result = ack_classify(table, e, node, epoch, acked_type);
	}
	ack_count(table, result);
	if (result != SUPER_ACK_ACCEPTED)
		return result;
	p = &e->peers[node];
	p->flags |= PEER_ACKED;
	p->since_ms = now_ms;
	/* The gateway dropped its cache before it sent this ack. */
	if (acked_type == SUPER_TYPE_DEMOTE)
		p->flags &= ~PEER_MAY_CACHE;
	entry_settle(table, e, now_ms);
	return result;
}

/* ---- nodes ---- */

int super_node_up(struct super_table *table, unsigned int node,
		  const char *boot_id, int64_t now_ms)
{
	struct super_node *sn;
	struct super_entry *e, *tmp;
	struct super_peer *p;
	int new_boot;

	if (node >= table->max_nodes || !boot_id || !boot_id[0] ||
	    strlen(boot_id) > SUPER_BOOT_ID_MAX)
		return -EINVAL;
	sn = &table->nodes[node];
	new_boot = !sn->known || strcmp(sn->boot_id, boot_id) != 0;
	strcpy(sn->boot_id, boot_id);
	sn->known = 1;
	sn->up = 1;
	HASH_ITER(hh, table->entries, e, tmp) {
		if (!e->peers)
			continue;
		p = &e->peers[node];
		/* A new process starts with no caches. */
		if (new_boot)
			p->flags &= ~PEER_MAY_CACHE;
		peer_reset(p, e->type, now_ms);
		if (p->flags & PEER_ACKED)
			entry_settle(table, e, now_ms);
		else
			entry_unsettle(e, now_ms);
	}
	return 0;
}

int super_node_down(struct super_table *table, unsigned int node,
		    int64_t now_ms)
{
	struct super_entry *e, *tmp;

	if (node >= table->max_nodes)
		return -EINVAL;
	table->nodes[node].up = 0;
	HASH_ITER(hh, table->entries, e, tmp)
		entry_settle(table, e, now_ms);
	return 0;
}

int super_node_is_up(const struct super_table *table, unsigned int node)
{
	return node < table->max_nodes && table->nodes[node].up;
}

/* ---- timers and queries ---- */

static int retries_of_entry(struct super_table *table, struct super_entry *e,
			    int64_t now_ms, super_retry_fn fn, void *arg)
{
	enum super_type transition;
	struct super_peer *p;
	unsigned int n;
	int64_t last;
	int ret;

	transition = e->type == SUPER_TYPE_SUPER ? SUPER_TYPE_UPGRADE :
						   SUPER_TYPE_DEMOTE;
	for (n = 0; n < table->max_nodes; n++) {
		p = &e->peers[n];
		if (!table->nodes[n].up || (p->flags & PEER_ACKED))
			continue;
		last = (p->flags & PEER_SENT) ? p->last_send_ms : p->since_ms;
		if (now_ms - last < table->rules.retry_ms)
			continue;
		ret = fn(arg, e->session_id, n, transition, e->epoch);
		if (ret)
			return ret;
	}
	return 0;
}

int super_due_retries(struct super_table *table, int64_t now_ms,
		      super_retry_fn fn, void *arg)
{
	struct super_entry *e, *tmp;
	int ret;

	HASH_ITER(hh, table->entries, e, tmp) {
		if (!e->peers)
			continue;
		ret = retries_of_entry(table, e, now_ms, fn, arg);
		if (ret)
			return ret;
	}
	return 0;
}

int super_converged(const struct super_table *table, uint64_t session_id)
{
	const struct super_entry *e = entry_find(table, session_id);

	return !e || entry_pending_nodes(table, e) == 0;
}

enum super_type super_type_of(const struct super_table *table,
			      uint64_t session_id)
{
	const struct super_entry *e = entry_find(table, session_id);

	return e ? e->type : SUPER_TYPE_NORMAL;
}

unsigned int super_sweep(struct super_table *table, int64_t now_ms)
{
	struct super_entry *e, *tmp;
	unsigned int freed = 0;

	HASH_ITER(hh, table->entries, e, tmp) {
		if (!entry_idle(table, e, now_ms))
			continue;
		entry_free(table, e);
		freed++;
	}
	return freed;
}

static void session_info_fill(const struct super_table *table,
			      const struct super_entry *e, int64_t now_ms,
			      struct super_session_info *info)
{
	uint64_t count = rate_count(&table->rules, e, now_ms);
	uint64_t window = (uint64_t)rate_slot_ms(&table->rules) *
			  SUPER_RATE_SLOTS;

	info->session_id = e->session_id;
	info->type = e->type;
	info->epoch = e->epoch;
	info->tracked = e->peers != NULL;
	info->pinned = !!(e->flags & ENTRY_PINNED);
	info->pending_nodes = entry_pending_nodes(table, e);
	info->converged = info->pending_nodes == 0;
	info->last_transition_ms = (e->flags & ENTRY_CHANGED) ?
					   e->last_transition_ms : -1;
	info->rate_milli = count * 1000 * 1000 / window;
}

int super_session_info(const struct super_table *table, uint64_t session_id,
		       int64_t now_ms, struct super_session_info *info)
{
	const struct super_entry *e = entry_find(table, session_id);

	if (!e)
		return -ENOENT;
	session_info_fill(table, e, now_ms, info);
	return 0;
}

int super_node_info(const struct super_table *table, uint64_t session_id,
		    unsigned int node, struct super_node_info *info)
{
	const struct super_entry *e;
	const struct super_peer *p;

	if (node >= table->max_nodes)
		return -EINVAL;
	e = entry_find(table, session_id);
	if (!e)
		return -ENOENT;
	if (!e->peers)
		return -ENODATA;
	p = &e->peers[node];
	info->state = (p->flags & PEER_ACKED) ? SUPER_NODE_ACKED :
						SUPER_NODE_PENDING;
	info->up = table->nodes[node].up;
	info->sent = !!(p->flags & PEER_SENT);
	info->may_cache = !!(p->flags & PEER_MAY_CACHE);
	info->since_ms = p->since_ms;
	info->last_send_ms = p->last_send_ms;
	info->retries = p->retries;
	return 0;
}

int super_foreach_session(const struct super_table *table, int64_t now_ms,
			  super_session_fn fn, void *arg)
{
	struct super_session_info info;
	struct super_entry *e, *tmp;
	int ret;

	HASH_ITER(hh, table->entries, e, tmp) {
		session_info_fill(table, e, now_ms, &info);
		ret = fn(arg, &info);
		if (ret)
			return ret;
	}
	return 0;
}

void super_stats_get(const struct super_table *table, struct super_stats *out)
{
	*out = table->stats;
}

/* SPDX-License-Identifier: MIT */
/*
 * Super-session state machine of the business daemon. A normal session gets
 * one DELIVER per gateway with the exact device list; a super session gets
 * one broadcast per gateway, which pushes to the connections it cached for
 * the session. This module decides when a session changes type, numbers
 * each change with an epoch, and tracks per gateway whether the change was
 * acknowledged, so the send pipeline knows what to send to each gateway.
 *
 * Pure logic: no I/O, no clock of its own (every call takes now_ms, a
 * monotonic time in milliseconds), no locking. docs/super-sessions.md
 * describes the state machine, the rules and their defaults.
 */
#ifndef BIZSVR_SUPER_H
#define BIZSVR_SUPER_H

#include <stddef.h>
#include <stdint.h>

/* Number of per-interval counters in a session's message-rate window. */
#define SUPER_RATE_SLOTS 10
/* Upper bound for max_nodes in super_table_new(). */
#define SUPER_MAX_NODES 4096
/* Maximum length of a boot id for super_node_up(), in bytes. */
#define SUPER_BOOT_ID_MAX 64

/* Same values as imgw.SessionType in proto/imgw.proto. */
enum super_type {
	SUPER_TYPE_NORMAL = 0,
	SUPER_TYPE_SUPER = 1,
	SUPER_TYPE_UPGRADE = 2,
	SUPER_TYPE_DEMOTE = 3,
};

enum super_ack_result {
	SUPER_ACK_ACCEPTED = 0,
	SUPER_ACK_STALE = 1,     /* older epoch, wrong type, or never sent */
	SUPER_ACK_DUPLICATE = 2, /* this node already acknowledged the epoch */
	SUPER_ACK_UNKNOWN = 3,   /* no tracked transition, unknown epoch or node */
};

/*
 * Upgrade and demote rules. A normal session is upgraded when it has at
 * least upgrade_min_members members and either upgrade_min_online members
 * online or a message rate of at least upgrade_rate. A super session is
 * demoted when both its rate is below demote_rate and fewer than
 * demote_online members are online. Neither happens sooner than
 * min_dwell_ms after the session's previous transition.
 */
struct super_rules {
	unsigned int upgrade_min_members; /* members */
	unsigned int upgrade_min_online;  /* online members */
	unsigned int upgrade_rate;        /* messages per second */
	unsigned int demote_rate;         /* messages per second */
	unsigned int demote_online;       /* online members */
	unsigned int window_ms;           /* rate window, >= SUPER_RATE_SLOTS */
	unsigned int min_dwell_ms;        /* hysteresis between transitions */
	unsigned int retry_ms;            /* quiet-session re-send period */
};

#define SUPER_DEFAULT_UPGRADE_MIN_MEMBERS 500
#define SUPER_DEFAULT_UPGRADE_MIN_ONLINE 200
#define SUPER_DEFAULT_UPGRADE_RATE 20
#define SUPER_DEFAULT_DEMOTE_RATE 5
#define SUPER_DEFAULT_DEMOTE_ONLINE 100
#define SUPER_DEFAULT_WINDOW_MS 10000
#define SUPER_DEFAULT_MIN_DWELL_MS 60000
#define SUPER_DEFAULT_RETRY_MS 2000
#define SUPER_DEFAULT_MAX_NODES 256

/* Frame type and epoch for the next message of a session to one gateway. */
struct super_plan {
	enum super_type type;
	uint32_t epoch;     /* the session's epoch (the origin without entry) */
	int with_devices;   /* 1 unless type is SUPER_TYPE_SUPER */
	int retry;          /* 1 when this re-sends an unacknowledged change */
};

enum super_node_state {
	SUPER_NODE_ACKED = 0,   /* acknowledged the current epoch */
	SUPER_NODE_PENDING = 1, /* must still get the transition */
};

/* Per-session, per-node state for the admin API. */
struct super_node_info {
	enum super_node_state state;
	int up;                 /* the node is registered */
	int sent;               /* the transition went out since the epoch began */
	int may_cache;          /* the node may hold a cache for the session */
	int64_t since_ms;       /* when state began */
	int64_t last_send_ms;   /* last send of the transition, 0 if none */
	uint32_t retries;       /* re-sends in the current epoch */
};

/* Per-session state for the admin API. */
struct super_session_info {
	uint64_t session_id;
	enum super_type type;   /* SUPER_TYPE_NORMAL or SUPER_TYPE_SUPER */
	uint32_t epoch;
	int tracked;            /* per-node state exists (a transition is live) */
	int pinned;             /* rules are ignored until super_unpin() */
	int converged;          /* as super_converged() */
	unsigned int pending_nodes; /* live nodes still to acknowledge */
	int64_t last_transition_ms; /* -1 when the session never changed */
	uint64_t rate_milli;    /* messages per 1000 s over the window */
};

/* Counters for metrics. convergence_ms_sum / convergences is the mean time
 * from a transition (or a node re-registering) to every live node's ack. */
struct super_stats {
	uint64_t upgrades;
	uint64_t demotes;
	uint64_t acks_accepted;
	uint64_t acks_stale;
	uint64_t acks_duplicate;
	uint64_t acks_unknown;
	uint64_t retries;
	uint64_t convergences;
	uint64_t convergence_ms_sum;
	uint64_t entries;       /* sessions with an entry, a gauge */
	uint64_t tracked;       /* entries with per-node state, a gauge */
};

struct super_table;

/* Fills rules with the SUPER_DEFAULT_* values. */
void super_rules_default(struct super_rules *rules);

/* Returns 0 when rules are consistent, -EINVAL otherwise: window_ms below
 * SUPER_RATE_SLOTS, retry_ms of 0, or demote thresholds above the upgrade
 * ones (which would let a session flap between the two types). */
int super_rules_check(const struct super_rules *rules);

/*
 * Allocates a table for nodes with index 0 .. max_nodes - 1 and copies
 * rules. Returns NULL with errno EINVAL (bad rules or max_nodes out of
 * 1 .. SUPER_MAX_NODES) or ENOMEM.
 */
struct super_table *super_table_new(const struct super_rules *rules,
				    unsigned int max_nodes);
void super_table_free(struct super_table *table);

/* Replaces the rules; entries keep their state. Returns 0 or -EINVAL. */
int super_set_rules(struct super_table *table, const struct super_rules *rules);

/*
 * Sets the epoch that new entries start from. Epochs only grow per session,
 * and a freed entry raises the origin to its last epoch, so a new entry of
 * the same session does not reuse an epoch whose acks may be in flight
 * (unless 2^31 transitions pass in between). Seeding it randomly at daemon
 * start keeps acks meant for a previous daemon process from matching.
 */
void super_set_epoch_origin(struct super_table *table, uint32_t epoch);

/* Returns whether epoch a is older than b in RFC 1982 serial-number
 * arithmetic on 32 bits (so 0xffffffff is older than 0). */
int super_epoch_before(uint32_t a, uint32_t b);

/* Counts one message of a session into its rate window, creating the entry
 * if needed. Returns 0 or -ENOMEM. */
int super_note_message(struct super_table *table, uint64_t session_id,
		       int64_t now_ms);

/*
 * Applies the rules and the hysteresis to a session with members members,
 * online of them online, and starts a transition (new epoch) when they call
 * for one. Pinned sessions keep their type. Returns the session's type after
 * the call (SUPER_TYPE_NORMAL or SUPER_TYPE_SUPER), or -ENOMEM when an
 * upgrade could not allocate its per-node state (the session stays normal).
 */
int super_evaluate(struct super_table *table, uint64_t session_id,
		   unsigned int members, unsigned int online, int64_t now_ms);

/*
 * Starts a transition to target (SUPER_TYPE_NORMAL or SUPER_TYPE_SUPER) now,
 * ignoring rules and dwell, with a new epoch even when the session already
 * has that type (every gateway then gets the transition again). With pin
 * set, super_evaluate() keeps the type until super_unpin(). Returns 0,
 * -EINVAL or -ENOMEM.
 */
int super_force(struct super_table *table, uint64_t session_id,
		enum super_type target, int pin, int64_t now_ms);

/* Lets the rules decide again for a pinned session. Returns 0 or -ENOENT. */
int super_unpin(struct super_table *table, uint64_t session_id);

/*
 * Fills plan with what to send to node for the next message of a session,
 * and records the send: a pending node gets the transition (counted as a
 * retry when it went out before in this epoch). All frames to one gateway
 * travel on one ordered link, so the gateway receives them in the order
 * they were planned. Returns 0, -EINVAL for a node index out
 * of range, or -ENOTCONN for a node that is down (send it nothing).
 */
int super_plan(struct super_table *table, uint64_t session_id,
	       unsigned int node, int64_t now_ms, struct super_plan *plan);

/*
 * Records a gateway's acknowledgement of a transition (acked_type is
 * SUPER_TYPE_UPGRADE or SUPER_TYPE_DEMOTE) and returns an enum
 * super_ack_result. A demote that becomes converged frees the session's
 * per-node state, and the entry too when the rules need nothing else from
 * it (see super_sweep()).
 */
int super_ack(struct super_table *table, uint64_t session_id,
	      unsigned int node, uint32_t epoch, enum super_type acked_type,
	      int64_t now_ms);

/*
 * Registers node with boot_id. Every tracked session sends its transition
 * to the node again, even with the same boot id, because acks may have been
 * lost with the old link. A boot id other than the last one also means a
 * new process without caches, so a pending demote counts as done. The
 * daemon must call this and super_node_down() for the node's current link
 * only: a late close of a replaced link must not mark the node down.
 * Returns 0 or -EINVAL (node out of range, boot_id NULL, empty or longer
 * than SUPER_BOOT_ID_MAX).
 */
int super_node_up(struct super_table *table, unsigned int node,
		  const char *boot_id, int64_t now_ms);

/*
 * Marks node down: plans skip it and convergence no longer waits for it,
 * so demotes that only waited for it complete (and free their state).
 * Returns 0 or -EINVAL.
 */
int super_node_down(struct super_table *table, unsigned int node,
		    int64_t now_ms);

/* Returns whether node is registered. */
int super_node_is_up(const struct super_table *table, unsigned int node);

/*
 * Calls fn for every (session, live node) pair whose transition is
 * unacknowledged and was last sent (or, if never sent, began) at least
 * retry_ms ago. fn may call super_plan() but nothing that frees entries.
 * A non-zero return from fn stops the walk and is returned.
 */
typedef int (*super_retry_fn)(void *arg, uint64_t session_id,
			      unsigned int node, enum super_type transition,
			      uint32_t epoch);
int super_due_retries(struct super_table *table, int64_t now_ms,
		      super_retry_fn fn, void *arg);

/* Returns 1 when every live node acknowledged the session's current epoch
 * (always for a session without tracked state), else 0. */
int super_converged(const struct super_table *table, uint64_t session_id);

/* Returns the session's type, SUPER_TYPE_NORMAL for an unknown session. */
enum super_type super_type_of(const struct super_table *table,
			      uint64_t session_id);

/*
 * Frees normal, unpinned entries without per-node state whose rate window
 * is empty and whose dwell time passed: they hold nothing the rules need.
 * Call it from a timer. Returns the number of entries freed.
 */
unsigned int super_sweep(struct super_table *table, int64_t now_ms);

/* Fills info for a session. Returns 0 or -ENOENT (no entry: normal). */
int super_session_info(const struct super_table *table, uint64_t session_id,
		       int64_t now_ms, struct super_session_info *info);

/* Fills info for one node of a session. Returns 0, -ENOENT (no entry),
 * -ENODATA (no per-node state: every node is acknowledged normal) or
 * -EINVAL (node out of range). */
int super_node_info(const struct super_table *table, uint64_t session_id,
		    unsigned int node, struct super_node_info *info);

/* Calls fn for every entry; a non-zero return stops the walk and is
 * returned. fn must not change the table. */
typedef int (*super_session_fn)(void *arg,
				const struct super_session_info *info);
int super_foreach_session(const struct super_table *table, int64_t now_ms,
			  super_session_fn fn, void *arg);

void super_stats_get(const struct super_table *table, struct super_stats *out);

/* Returns "normal", "super", "super_upgrade" or "super_demote". */
const char *super_type_name(enum super_type type);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Super sessions wired into the daemon: owns the super_table (super.h),
 * maps gateway node ids to its node indexes, feeds it messages, gateway
 * registrations and SUPER_ACK frames, runs the retry and sweep timer, and
 * sends SESSION_CACHE frames for membership changes. The send pipeline in
 * msg.c gets each gateway's plan from it. docs/super-sessions.md describes
 * the whole flow.
 */
#ifndef BIZSVR_SUPERWIRE_H
#define BIZSVR_SUPERWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "bizsvr.h"
#include "link.h"
#include "super.h"

/* Node index of a link that has none (more node ids than max_nodes). */
#define SUPERWIRE_NO_NODE (-1)

/* Creates the table from bz->cfg, seeds its epoch origin randomly and
 * starts the timer. NULL with errno set. */
struct superwire *superwire_new(struct bizsvr *bz);
void superwire_free(struct superwire *sw);

const struct super_table *superwire_table(const struct superwire *sw);

/* Returns the node id of index node, or NULL when none was assigned. */
const char *superwire_node_id(const struct superwire *sw, unsigned int node);
/* Returns how many node indexes were assigned (0 .. count - 1). */
unsigned int superwire_node_count(const struct superwire *sw);

/*
 * Marks the node of a newly registered link up and returns its index,
 * reusing the index of an earlier link of the same node id, or
 * SUPERWIRE_NO_NODE when the table is full (the node then gets NORMAL
 * DELIVERs only). Call it for the node's current link only.
 */
int superwire_node_up(struct superwire *sw, const char *node_id,
		      const char *boot_id);

/* Sends the node every transition it has not acknowledged, without a
 * message. Call it after REGISTER_RESULT went out. */
void superwire_node_resend(struct superwire *sw, int node);

/* Marks the node of the current link down when that link closes. */
void superwire_node_down(struct superwire *sw, int node);

/* SUPER_ACK from a registered link whose node index is node. */
void superwire_handle_ack(struct superwire *sw, struct link *l, int node,
			  const uint8_t *body, size_t len);

/*
 * Counts a stored message of s into its rate window and, at most once per
 * second per session, applies the upgrade and demote rules, which may
 * start a transition. Sessions smaller than upgrade_min_members without an
 * entry skip both steps. Does nothing when sw is NULL.
 */
void superwire_note_message(struct superwire *sw, struct session *s);

/*
 * Fills plan for the next message of a session to node and records the
 * send (see super_plan()). Without sw or a node index, plans NORMAL with
 * devices. Returns 0 or -ENOTCONN (send the node nothing).
 */
int superwire_plan(struct superwire *sw, uint64_t session_id, int node,
		   struct super_plan *plan);

/* Returns whether node may hold a cache for the session, so a device
 * logging in there must join it. */
int superwire_may_cache(const struct superwire *sw, uint64_t session_id,
			int node);

/* Returns the session's type, SUPER_TYPE_NORMAL without sw. */
enum super_type superwire_type(const struct superwire *sw,
			       uint64_t session_id);

/*
 * Sends SESSION_CACHE to every live node that may hold a cache for s and
 * has online devices of user: to add them after user joined (added 1), or
 * to remove them after user left (added 0). Call it after the member set
 * of s changed.
 */
void superwire_member_changed(struct superwire *sw, const struct session *s,
			      const char *user, int added);

/*
 * Starts a forced transition of s to target with pin and sends it to every
 * live node at once. Returns 0, -EINVAL or -ENOMEM.
 */
int superwire_force(struct superwire *sw, struct session *s,
		    enum super_type target);

/* Lets the rules decide again for a pinned session. Returns 0 or -ENOENT. */
int superwire_unpin(struct superwire *sw, uint64_t session_id);

#endif

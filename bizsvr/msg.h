/* SPDX-License-Identifier: MIT */
/*
 * The send pipeline: checks, storage with a sequence number, the sender's
 * result, then fan-out to the members' online devices with one DELIVER frame
 * per gateway node. Client SEND and SYNC arrive through msg_handle_upstream()
 * (handlers.h); the admin API posts through msg_post().
 */
#ifndef BIZSVR_MSG_H
#define BIZSVR_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "bizsvr.h"

/* Who sent a message. node_id is NULL for messages from the admin API. */
struct msg_origin {
	const char *user_id;
	const char *device_id;
	const char *node_id;
	uint64_t conn_id;
};

/*
 * Runs once for a posted message after its batch committed (err 0, res
 * filled) or rolled back (negative errno, res NULL).
 */
typedef void (*msg_done_fn)(struct bizsvr *bz, void *arg,
			    uint64_t session_id, int err,
			    const struct store_append_result *res);

/*
 * Stores a message in s within the open batch (see batch.h). After the
 * commit, done runs and then, unless the message is a duplicate of
 * client_msg_id, it is pushed to every online device of every member except
 * the origin's connection. Returns 0, or a negative errno from the store
 * when nothing was stored; done is not called then.
 */
int msg_post(struct bizsvr *bz, struct session *s,
	     const struct msg_origin *from, const char *client_msg_id,
	     const uint8_t *payload, size_t len, msg_done_fn done, void *arg);

/*
 * Sends each of the n super table node indexes in nodes its pending
 * transition of s (SUPER_UPGRADE or SUPER_DEMOTE, planned with
 * superwire_plan()) as a DELIVER with the node's devices and no message.
 * Nodes that acknowledged meanwhile, or have no link, get nothing.
 */
void msg_send_transitions(struct bizsvr *bz, const struct session *s,
			  const int *nodes, size_t n);

#endif

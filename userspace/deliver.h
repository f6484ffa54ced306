/* SPDX-License-Identifier: MIT */
/*
 * Push fan-out: one encoded frame, reference-counted, queued on many client
 * connections without copying. DELIVER frames from the daemon come here,
 * and so can any other broadcast that has its list of connections.
 */
#ifndef IMGW_DELIVER_H
#define IMGW_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "gateway.h"
#include "imgw.pb-c.h"

/* A complete frame (header and body) shared by every queue it is on. */
struct shared_frame {
	unsigned int refs;
	size_t len;
	uint8_t *data;
	/* The same frame in a WebSocket binary frame, built for the first
	 * WebSocket member (ws_shared_frame()); NULL before. */
	struct shared_frame *ws;
};

/* Frames body as op with request id 0. Returns NULL with errno set. The
 * caller holds the one reference. */
struct shared_frame *shared_frame_new(unsigned int op, const void *body,
				      size_t body_len);
void shared_frame_get(struct shared_frame *sf);
void shared_frame_put(struct shared_frame *sf);

/*
 * Queues the bytes of sf from offset on c, whose stream already carries the
 * bytes before offset. Returns 0, -EPIPE when c is closing, -ENOMEM, or
 * -ENOBUFS when c went over out_cap and was closed as slow.
 */
int deliver_rest(struct shared_frame *sf, struct conn *c, size_t offset);

/*
 * Queues sf on each of the n connections; closing ones are skipped, and one
 * pushed over out_cap is closed as slow. Returns how many got the frame.
 */
size_t deliver_frame(struct shared_frame *sf, struct conn **conns, size_t n);

/*
 * Collects into conns (room for msg->n_targets) the logged-in connections
 * of msg's targets on this node, exclude_conn_id included; returns how
 * many, and counts the targets not found in delivery_misses.
 */
size_t deliver_find_targets(struct gateway *gw, const Imgw__Deliver *msg,
			    struct conn **conns);

/*
 * Frames msg's Push body once and queues it on the n connections except
 * msg->exclude_conn_id, through the kernel path for a SUPER broadcast when
 * it is on (kmirror.h). Does nothing for an empty push. Reorders conns.
 * Returns how many connections got the frame.
 */
size_t deliver_push(struct gateway *gw, const Imgw__Deliver *msg,
		    struct conn **conns, size_t n);

/* Handles one DELIVER by its type (see Deliver in proto/imgw.proto). */
void deliver_handle(struct gateway *gw, const Imgw__Deliver *msg);

#endif

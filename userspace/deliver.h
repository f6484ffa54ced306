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
/* Wraps len bytes of complete frames in data, a malloc'd buffer that the
 * shared frame then owns. Returns NULL with errno set; data is freed then
 * too. The caller holds the one reference. */
struct shared_frame *shared_frame_adopt(uint8_t *data, size_t len);
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

/*
 * Handles one DELIVER by its type (see Deliver in proto/imgw.proto). SUPER
 * pushes may wait in the batch until deliver_batch_flush(); any other type
 * flushes the batch first.
 */
void deliver_handle(struct gateway *gw, const Imgw__Deliver *msg);

/* Maximum number of SUPER pushes in one batch. */
#define DELIVER_BATCH_MAX 64

/*
 * Adds msg's push to the batch, to go to the cached connections of its
 * session except msg->exclude_conn_id. The batch is flushed first when it
 * is full or contains the pushes of another session or of another excluded
 * connection. Returns 0 or -ENOMEM (the batch is flushed then and msg is not
 * in it).
 */
int deliver_batch_add(struct gateway *gw, const Imgw__Deliver *msg);

/*
 * Queues the batched SUPER pushes on each member of their session's cache:
 * one evbuffer reference per member for the whole batch, one per message
 * for WebSocket members. Every change of the caches and every other frame
 * to a client must come after a flush. The link read loop flushes before
 * any frame other than DELIVER and before it returns.
 */
void deliver_batch_flush(struct gateway *gw);

#endif

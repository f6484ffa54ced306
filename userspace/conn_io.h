/* SPDX-License-Identifier: MIT */
/*
 * Client sockets: accepting, the bufferevent of each connection, queueing
 * frames under the output cap, the login and heartbeat timers, and closing
 * (at once, or after the last queued frame is flushed).
 */
#ifndef IMGW_CONN_IO_H
#define IMGW_CONN_IO_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "conn.h"
#include "gateway.h"

/* Seconds a closing connection may take to flush its last frame. */
#define CONN_CLOSE_LINGER_SEC 2

/* Starts accepting clients on cfg.listen. Returns 0 or a negative errno. */
int conn_io_listen(struct gateway *gw);

/* Stops accepting and frees every connection, without kicks or presence. */
void conn_io_shutdown(struct gateway *gw);

/* Queue one frame to c. Return 0, -EPIPE when c is closing, -ENOMEM, or
 * -ENOBUFS when the frame pushed c over out_cap and c was closed. A frame
 * that finds the output empty is queued at any size, so these are for
 * replies and control frames, not pushes. */
int conn_send(struct conn *c, unsigned int op, uint32_t request_id,
	      const ProtobufCMessage *msg);
int conn_send_raw(struct conn *c, unsigned int op, uint32_t request_id,
		  const void *body, size_t len);

/*
 * Counts a frame the caller appended to c's output buffer and closes c as
 * slow when the buffer is now over out_cap. Returns 0 or -ENOBUFS.
 */
int conn_commit_frame(struct conn *c);

/*
 * Closes c: takes it out of the device index, sends PRESENCE offline when it
 * was logged in, and frees it on a later loop pass. With flush set the queued
 * output is sent first, for at most CONN_CLOSE_LINGER_SEC seconds. The
 * struct stays valid until the caller returns to the event loop.
 */
void conn_close(struct conn *c, const char *reason, int flush);

/* Sends KICK with reason and closes c after it is flushed. */
void conn_kick(struct conn *c, const char *reason);

/* Arms the heartbeat timer; any frame from a logged-in client re-arms it. */
void conn_touch(struct conn *c);

/* Returns whether c may still be served: in the registry and not closing. */
static inline int conn_is_live(const struct conn *c)
{
	return c && c->state != CONN_CLOSING;
}

#endif

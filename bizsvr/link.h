/* SPDX-License-Identifier: MIT */
/*
 * Gateway links: the listener, one connection per gateway node, frame
 * dispatch and sending. A link serves nothing before its REGISTER; a newer
 * link of the same node replaces the older one.
 */
#ifndef BIZSVR_LINK_H
#define BIZSVR_LINK_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "bizsvr.h"
#include "frame.h"

struct link;
struct link_server;

/* Starts listening on bz->cfg->listen. NULL with errno set. */
struct link_server *link_server_new(struct bizsvr *bz);
/* Closes every link and the listener. Presence of their nodes is dropped. */
void link_server_free(struct link_server *ls);

/* Returns the registered link of node_id, or NULL. */
struct link *link_find(struct link_server *ls, const char *node_id);
unsigned int link_count(const struct link_server *ls);
const char *link_node_id(const struct link *l);

/* Returns the registered link after prev (the first one for NULL), or NULL
 * after the last. The order is stable while no link registers or closes. */
struct link *link_next(struct link_server *ls, struct link *prev);

/* Returns the super table node index of a registered link, or
 * SUPERWIRE_NO_NODE (superwire.h). */
int link_super_node(const struct link *l);

/* Queue one frame on the link. Return 0, -ENOTCONN when the link is
 * closing, or -ENOMEM. */
int link_send(struct link *l, unsigned int op, uint32_t request_id,
	      const ProtobufCMessage *msg);
int link_send_raw(struct link *l, unsigned int op, uint32_t request_id,
		  const void *body, size_t len);

/* Closes the link from outside its own callbacks' stack, on the next loop
 * turn; its devices go offline then. */
void link_close_later(struct link *l, const char *reason);

#endif

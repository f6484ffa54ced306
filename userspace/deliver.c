// SPDX-License-Identifier: MIT
/*
 * Push fan-out; see deliver.h. Each target's output buffer holds a
 * reference to the one shared frame (evbuffer_add_reference), and the
 * buffer's cleanup callback drops it, so the bytes live until the last
 * target has written them or was freed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "conn_io.h"
#include "deliver.h"
#include "kmirror.h"
#include "log.h"
#include "super_gw.h"
#include "wire.h"
#include "ws.h"

struct shared_frame *shared_frame_new(unsigned int op, const void *body,
				      size_t body_len)
{
	struct shared_frame *sf = malloc(sizeof(*sf));

	if (!sf)
		return NULL;
	sf->data = wire_pack_frame_raw(op, 0, body, body_len, &sf->len);
	if (!sf->data) {
		free(sf);
		errno = ENOMEM;
		return NULL;
	}
	sf->refs = 1;
	sf->ws = NULL;
	return sf;
}

void shared_frame_get(struct shared_frame *sf)
{
	sf->refs++;
}

void shared_frame_put(struct shared_frame *sf)
{
	if (--sf->refs)
		return;
	if (sf->ws)
		shared_frame_put(sf->ws);
	free(sf->data);
	free(sf);
}

static void shared_frame_cleanup(const void *data, size_t len, void *arg)
{
	shared_frame_put(arg);
}

int deliver_rest(struct shared_frame *sf, struct conn *c, size_t offset)
{
	struct evbuffer *out;

	if (!conn_is_live(c))
		return -EPIPE;
	/* WebSocket members never take the kernel path, so offset is 0. */
	if (c->ws) {
		sf = ws_shared_frame(sf);
		if (!sf)
			return -ENOMEM;
	}
	out = bufferevent_get_output(c->bev);
	shared_frame_get(sf);
	if (evbuffer_add_reference(out, sf->data + offset, sf->len - offset,
				   shared_frame_cleanup, sf) < 0) {
		shared_frame_put(sf);
		return -ENOMEM;
	}
	return conn_commit_frame(c);
}

size_t deliver_frame(struct shared_frame *sf, struct conn **conns, size_t n)
{
	size_t queued = 0;

	for (size_t i = 0; i < n; i++) {
		struct conn *c = conns[i];
		int err = deliver_rest(sf, c, 0);

		/* A slow close still counts: the frame was queued. */
		if (err == 0 || err == -ENOBUFS) {
			c->gw->stats.deliveries++;
			queued++;
		} else if (err != -EPIPE) {
			pr_warn("conn %llu peer %s: queueing a push failed: %s",
				(unsigned long long)c->id, c->peer,
				strerror(-err));
		}
	}
	return queued;
}

size_t deliver_find_targets(struct gateway *gw, const Imgw__Deliver *msg,
			    struct conn **conns)
{
	size_t n = 0;

	for (size_t i = 0; i < msg->n_targets; i++) {
		const Imgw__Device *dev = msg->targets[i];
		struct conn *c;

		c = conn_registry_find_device(&gw->conns, dev->user_id,
					      dev->device_id);
		if (!c || (dev->conn_id && dev->conn_id != c->id)) {
			gw->stats.delivery_misses++;
			pr_debug("DELIVER session %llu seq %llu: user %s device %s conn %llu not connected here",
				 (unsigned long long)msg->session_id,
				 (unsigned long long)msg->seq, dev->user_id,
				 dev->device_id,
				 (unsigned long long)dev->conn_id);
			continue;
		}
		conns[n++] = c;
	}
	return n;
}

/* Moves the connection with id exclude (if any) to the end of conns and
 * returns how many come before it. */
static size_t deliver_exclude(struct conn **conns, size_t n, uint64_t exclude)
{
	if (!exclude)
		return n;
	for (size_t i = 0; i < n; i++) {
		if (conns[i]->id == exclude) {
			struct conn *c = conns[i];

			conns[i] = conns[n - 1];
			conns[n - 1] = c;
			return n - 1;
		}
	}
	return n;
}

size_t deliver_push(struct gateway *gw, const Imgw__Deliver *msg,
		    struct conn **conns, size_t n)
{
	struct shared_frame *sf;
	size_t queued;

	n = deliver_exclude(conns, n, msg->exclude_conn_id);
	if (msg->push.len == 0 || n == 0)
		return 0;
	sf = shared_frame_new(OP_PUSH, msg->push.data, msg->push.len);
	if (!sf) {
		pr_warn("DELIVER session %llu seq %llu to %zu connections dropped: out of memory",
			(unsigned long long)msg->session_id,
			(unsigned long long)msg->seq, n);
		return 0;
	}
	if (gw->kmirror &&
	    msg->type == IMGW__SESSION_TYPE__SESSION_TYPE_SUPER)
		queued = kmirror_broadcast(gw, msg->session_id, sf, conns, n);
	else
		queued = deliver_frame(sf, conns, n);
	shared_frame_put(sf);
	return queued;
}

static void deliver_normal(struct gateway *gw, const Imgw__Deliver *msg)
{
	struct conn **conns;
	size_t n;

	if (msg->n_targets == 0)
		return;
	conns = calloc(msg->n_targets, sizeof(*conns));
	if (!conns) {
		pr_warn("DELIVER session %llu seq %llu to %zu devices dropped: out of memory",
			(unsigned long long)msg->session_id,
			(unsigned long long)msg->seq, msg->n_targets);
		return;
	}
	n = deliver_find_targets(gw, msg, conns);
	deliver_push(gw, msg, conns, n);
	free(conns);
}

void deliver_handle(struct gateway *gw, const Imgw__Deliver *msg)
{
	gw->stats.deliver_frames++;
	switch (msg->type) {
	case IMGW__SESSION_TYPE__SESSION_TYPE_NORMAL:
		deliver_normal(gw, msg);
		break;
	case IMGW__SESSION_TYPE__SESSION_TYPE_SUPER:
		super_gw_broadcast(gw, msg);
		break;
	case IMGW__SESSION_TYPE__SESSION_TYPE_SUPER_UPGRADE:
		super_gw_upgrade(gw, msg);
		break;
	case IMGW__SESSION_TYPE__SESSION_TYPE_SUPER_DEMOTE:
		super_gw_demote(gw, msg);
		break;
	default:
		/* A newer daemon's type: the targets still get the message. */
		pr_warn("DELIVER session %llu seq %llu has unknown type %d; pushing to its %zu targets as NORMAL",
			(unsigned long long)msg->session_id,
			(unsigned long long)msg->seq, (int)msg->type,
			msg->n_targets);
		deliver_normal(gw, msg);
		break;
	}
}

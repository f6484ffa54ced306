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
#include <sys/types.h>

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

struct shared_frame *shared_frame_adopt(uint8_t *data, size_t len)
{
	struct shared_frame *sf = malloc(sizeof(*sf));

	if (!sf) {
		free(data);
		return NULL;
	}
	sf->data = data;
	sf->len = len;
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
	/* For a WebSocket member, offset counts bytes of the framed copy
	 * (the kernel path hands that copy to WebSocket members). */
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
	if (msg->type != IMGW__SESSION_TYPE__SESSION_TYPE_SUPER)
		deliver_batch_flush(gw);
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

/*
 * The push frames of consecutive SUPER DELIVERs for one session, back to
 * back in one buffer. The cache cannot change while pushes wait here,
 * because every cache change and every other frame flushes first, so the
 * members at the flush are those each push was meant for.
 */
struct deliver_batch {
	uint64_t session_id;
	uint64_t exclude_conn_id;
	size_t n_msgs;
	size_t len;
	size_t cap;
	uint8_t *data;
	/* End offset of each push frame in data. */
	size_t ends[DELIVER_BATCH_MAX];
};

/* The gateway is one per process, and a batch never outlives one call of
 * the link read callback. */
static struct deliver_batch batch;

static int batch_reserve(size_t more)
{
	size_t cap = batch.cap ? batch.cap : 4096;
	uint8_t *data;

	if (batch.len + more <= batch.cap)
		return 0;
	while (cap < batch.len + more)
		cap *= 2;
	data = realloc(batch.data, cap);
	if (!data)
		return -ENOMEM;
	batch.data = data;
	batch.cap = cap;
	return 0;
}

int deliver_batch_add(struct gateway *gw, const Imgw__Deliver *msg)
{
	struct frame_header hdr = {
		.body_len = (uint32_t)msg->push.len,
		.version = FRAME_VERSION,
		.op = OP_PUSH,
	};
	size_t frame_len = FRAME_HEADER_LEN + msg->push.len;

	if (batch.n_msgs && (batch.session_id != msg->session_id ||
			     batch.exclude_conn_id != msg->exclude_conn_id ||
			     batch.n_msgs == DELIVER_BATCH_MAX))
		deliver_batch_flush(gw);
	if (batch_reserve(frame_len) < 0) {
		deliver_batch_flush(gw);
		return -ENOMEM;
	}
	batch.session_id = msg->session_id;
	batch.exclude_conn_id = msg->exclude_conn_id;
	frame_header_pack(&hdr, batch.data + batch.len);
	memcpy(batch.data + batch.len + FRAME_HEADER_LEN, msg->push.data,
	       msg->push.len);
	batch.len += frame_len;
	batch.ends[batch.n_msgs++] = batch.len;
	return 0;
}

/* Returns the push frame of message i of the batch in data as a shared
 * frame of its own, made on the first call. */
static struct shared_frame *batch_frame(struct shared_frame **each,
					const uint8_t *data,
					const size_t *ends, size_t i)
{
	size_t start = i ? ends[i - 1] : 0;

	if (!each[i])
		each[i] = shared_frame_new(OP_PUSH,
					   data + start + FRAME_HEADER_LEN,
					   ends[i] - start - FRAME_HEADER_LEN);
	return each[i];
}

/* Queues every push of the batch on WebSocket member c, one WebSocket
 * message each. Returns how many were queued. */
static size_t batch_queue_ws(struct shared_frame **each,
			     const struct shared_frame *all,
			     const size_t *ends, size_t n_msgs, struct conn *c)
{
	size_t queued = 0;

	for (size_t i = 0; i < n_msgs; i++) {
		struct shared_frame *sf = batch_frame(each, all->data, ends, i);
		int err = sf ? deliver_rest(sf, c, 0) : -ENOMEM;

		if (err == 0 || err == -ENOBUFS) {
			queued++;
		} else if (err != -EPIPE) {
			pr_warn("conn %llu peer %s: queueing a push failed: %s",
				(unsigned long long)c->id, c->peer,
				strerror(-err));
		}
		if (err)
			break;
	}
	return queued;
}

/* Queues all, the frames of the whole batch, on member c. Returns how many
 * pushes c got. */
static size_t batch_queue(struct shared_frame **each, struct shared_frame *all,
			  const size_t *ends, size_t n_msgs, struct conn *c)
{
	int err;

	if (c->ws)
		return batch_queue_ws(each, all, ends, n_msgs, c);
	err = deliver_rest(all, c, 0);
	/* A slow close still counts: the frames were queued. */
	if (err == 0 || err == -ENOBUFS) {
		/* conn_commit_frame() counted one frame for the batch. */
		c->gw->stats.frames_sent += n_msgs - 1;
		return n_msgs;
	}
	if (err != -EPIPE)
		pr_warn("conn %llu peer %s: queueing %zu pushes failed: %s",
			(unsigned long long)c->id, c->peer, n_msgs,
			strerror(-err));
	return 0;
}

/* Copies the cached members of the batch's session except the excluded
 * one into *out, because a slow close during the flush leaves the cache.
 * Returns how many, or -ENOMEM. */
static ssize_t batch_members(struct gateway *gw, uint64_t session_id,
			     uint64_t exclude, struct conn ***out)
{
	struct sess_cache_entry *e = sess_cache_find(&gw->caches, session_id);
	struct conn **conns;
	ssize_t n = 0;

	*out = NULL;
	if (!e || e->n_members == 0)
		return 0;
	conns = malloc(e->n_members * sizeof(*conns));
	if (!conns)
		return -ENOMEM;
	for (uint32_t i = 0; i < e->n_members; i++) {
		if (!exclude || e->members[i].conn->id != exclude)
			conns[n++] = e->members[i].conn;
	}
	*out = conns;
	return n;
}

void deliver_batch_flush(struct gateway *gw)
{
	struct shared_frame *each[DELIVER_BATCH_MAX] = { NULL };
	size_t ends[DELIVER_BATCH_MAX];
	uint64_t session_id = batch.session_id;
	size_t n_msgs = batch.n_msgs;
	struct shared_frame *all;
	struct conn **conns;
	ssize_t n;

	if (n_msgs == 0)
		return;
	/* Reset first: a slow close during the pushes must find no batch. */
	memcpy(ends, batch.ends, n_msgs * sizeof(ends[0]));
	all = shared_frame_adopt(batch.data, batch.len);
	n = batch_members(gw, session_id, batch.exclude_conn_id, &conns);
	memset(&batch, 0, sizeof(batch));
	if (!all || n < 0) {
		pr_warn("DELIVER SUPER session %llu: %zu pushes dropped: out of memory",
			(unsigned long long)session_id, n_msgs);
		goto out_put;
	}
	for (ssize_t i = 0; i < n; i++) {
		size_t queued = batch_queue(each, all, ends, n_msgs, conns[i]);

		gw->stats.deliveries += queued;
		gw->stats.cache_deliveries += queued;
	}
out_put:
	free(conns);
	for (size_t i = 0; i < n_msgs; i++) {
		if (each[i])
			shared_frame_put(each[i]);
	}
	if (all)
		shared_frame_put(all);
}

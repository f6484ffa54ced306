// SPDX-License-Identifier: MIT
/*
 * Send pipeline and fan-out; see msg.h. The Push body of a message is
 * encoded once and the same bytes go into the DELIVER frame of every node.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>
#include <utlist.h>

#include "batch.h"
#include "handlers.h"
#include "imgw.pb-c.h"
#include "log.h"
#include "msg.h"
#include "superwire.h"

#define MSG_CLIENT_ID_MAX 128
/*
 * Payload bytes a SYNC_RESULT carries before it stops early with more set,
 * so that a reply stays well under the FRAME_HARD_MAX_BODY the gateway
 * accepts. The first message always goes in, whatever its size.
 */
#define MSG_SYNC_BYTES_BUDGET (1024 * 1024)

/* The devices of one gateway node that get a message. */
struct fanout_node {
	const char *node_id;         /* key; points into presence */
	Imgw__Device *devices;
	size_t count, cap;
	ssize_t origin;              /* index of the sending connection, or -1 */
	UT_hash_handle hh;
};

/* The plan for one gateway and one message. */
struct fanout_plan {
	struct link *link;
	struct super_plan plan;
};

static int fanout_add(struct fanout_node **nodes,
		      const struct presence_device *d, int is_origin)
{
	const char *node_id = d->node->node_id;
	struct fanout_node *fn;
	Imgw__Device *dev;

	HASH_FIND_STR(*nodes, node_id, fn);
	if (!fn) {
		fn = calloc(1, sizeof(*fn));
		if (!fn)
			return -ENOMEM;
		fn->node_id = node_id;
		fn->origin = -1;
		HASH_ADD_KEYPTR(hh, *nodes, node_id, strlen(node_id), fn);
	}
	if (fn->count == fn->cap) {
		size_t cap = fn->cap ? fn->cap * 2 : 8;
		Imgw__Device *p = realloc(fn->devices, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		fn->devices = p;
		fn->cap = cap;
	}
	if (is_origin)
		fn->origin = (ssize_t)fn->count;
	dev = &fn->devices[fn->count++];
	imgw__device__init(dev);
	dev->user_id = d->user->user_id;
	dev->device_id = d->device_id;
	dev->conn_id = d->conn_id;
	return 0;
}

static void fanout_free(struct fanout_node *nodes)
{
	struct fanout_node *fn, *tmp;

	HASH_ITER(hh, nodes, fn, tmp) {
		HASH_DEL(nodes, fn);
		free(fn->devices);
		free(fn);
	}
}

static int msg_is_origin(const struct presence_device *d,
			 const struct msg_origin *from)
{
	return from && from->node_id && d->conn_id == from->conn_id &&
	       strcmp(d->node->node_id, from->node_id) == 0;
}

/* Returns the presence entry of member m, looking it up again only when a
 * user entry was added or freed since the last lookup. */
static struct presence_user *msg_member_presence(struct presence *p,
						 struct session_member *m)
{
	if (m->presence_generation != p->users_generation) {
		m->presence = presence_user_find(p, m->user_id);
		m->presence_generation = p->users_generation;
	}
	return m->presence;
}

/*
 * Groups the online devices of the members of s by gateway node, marking
 * the origin's connection (the sender's other devices are plain targets).
 * This is the one place that decides who receives a session message.
 */
static int msg_group_targets(struct bizsvr *bz, const struct session *s,
			     const struct msg_origin *from,
			     struct fanout_node **nodes)
{
	struct session_member *m, *tmp;
	struct presence_device *d;
	struct presence_user *u;
	int err;

	*nodes = NULL;
	HASH_ITER(hh, s->members, m, tmp) {
		u = msg_member_presence(bz->presence, m);
		if (!u)
			continue;
		DL_FOREACH2(u->devices, d, user_next) {
			err = fanout_add(nodes, d, msg_is_origin(d, from));
			if (err < 0) {
				fanout_free(*nodes);
				*nodes = NULL;
				return err;
			}
		}
	}
	return 0;
}

/*
 * Points targets at the devices of fn for a DELIVER of type. The origin's
 * connection is left out, except from an upgrade: it is a member's device
 * and belongs in the gateway's cache, which exclude_conn_id keeps it from
 * being pushed to. Returns the count.
 */
static size_t msg_fill_targets(const struct fanout_node *fn,
			       enum super_type type, Imgw__Device **targets)
{
	size_t n = 0;

	for (size_t i = 0; fn && i < fn->count; i++) {
		if ((ssize_t)i == fn->origin && type != SUPER_TYPE_UPGRADE)
			continue;
		targets[n++] = &fn->devices[i];
	}
	return n;
}

/*
 * Sends one DELIVER of a session to l as the plan gives, with the devices of fn
 * unless the plan is SUPER. A NORMAL plan without devices sends nothing.
 * push may be empty: a transition without a message.
 */
static int msg_deliver_node(struct bizsvr *bz, struct link *l,
			    const struct super_plan *plan,
			    const struct fanout_node *fn, uint64_t session_id,
			    uint64_t seq, uint64_t exclude_conn_id,
			    const ProtobufCBinaryData *push)
{
	Imgw__Deliver deliver = IMGW__DELIVER__INIT;
	Imgw__Device **targets = NULL;
	size_t n = 0;
	int err;

	if (plan->with_devices && fn) {
		targets = malloc(fn->count * sizeof(*targets));
		if (!targets)
			return -ENOMEM;
		n = msg_fill_targets(fn, plan->type, targets);
	}
	if (plan->type == SUPER_TYPE_NORMAL && n == 0) {
		free(targets);
		return 0;
	}
	deliver.session_id = session_id;
	deliver.seq = seq;
	deliver.type = (Imgw__SessionType)plan->type;
	deliver.epoch = plan->epoch;
	deliver.targets = targets;
	deliver.n_targets = n;
	deliver.push = *push;
	deliver.exclude_conn_id = exclude_conn_id;
	err = link_send(l, OP_DELIVER, 0, &deliver.base);
	free(targets);
	if (err < 0)
		return err;
	bz->stats.deliver_frames++;
	bz->stats.deliveries += n;
	if (plan->type == SUPER_TYPE_SUPER)
		bz->stats.broadcasts++;
	return 0;
}

static void msg_push_init(Imgw__Push *push, const struct store_message *m)
{
	imgw__push__init(push);
	push->session_id = m->session_id;
	push->seq = m->seq;
	push->sender = m->sender;
	push->sender_device = m->sender_device;
	push->time_ms = m->time_ms;
	push->payload.data = m->payload;
	push->payload.len = m->payload_len;
	push->client_msg_id = m->client_msg_id;
	push->type = IMGW__SESSION_TYPE__SESSION_TYPE_NORMAL;
}

/* Returns the packed size of the Push of m with the largest seq, which
 * bounds its size once the store assigns the seq. */
static size_t msg_push_max_size(const struct store_message *m)
{
	struct store_message tmp = *m;
	Imgw__Push push;

	tmp.seq = UINT64_MAX;
	msg_push_init(&push, &tmp);
	return imgw__push__get_packed_size(&push);
}

/*
 * Plans the message for every registered gateway into plans (link_count()
 * elements). Returns how many were planned and sets *need_devices when at
 * least one plan needs a device list.
 */
static size_t msg_plan_nodes(struct bizsvr *bz, uint64_t session_id,
			     struct fanout_plan *plans, int *need_devices)
{
	struct link *l = NULL;
	size_t n = 0;

	*need_devices = 0;
	while ((l = link_next(bz->links, l))) {
		if (superwire_plan(bz->super, session_id, link_super_node(l),
				   &plans[n].plan) < 0)
			continue;
		plans[n].link = l;
		*need_devices |= plans[n].plan.with_devices;
		n++;
	}
	return n;
}

/* Returns the origin's connection id when l is the origin's node, else 0:
 * connection ids are per gateway. */
static uint64_t msg_exclude_on(struct link *l, const struct msg_origin *from)
{
	if (!from || !from->node_id ||
	    strcmp(link_node_id(l), from->node_id) != 0)
		return 0;
	return from->conn_id;
}

/* Sends the message (session_id, seq) to every planned gateway. */
static void msg_send_planned(struct bizsvr *bz, const struct fanout_plan *plans,
			     size_t n, struct fanout_node *nodes,
			     uint64_t session_id, uint64_t seq,
			     const struct msg_origin *from,
			     const ProtobufCBinaryData *push)
{
	struct fanout_node *fn;
	int err;

	for (size_t i = 0; i < n; i++) {
		HASH_FIND_STR(nodes, link_node_id(plans[i].link), fn);
		err = msg_deliver_node(bz, plans[i].link, &plans[i].plan, fn,
				       session_id, seq,
				       msg_exclude_on(plans[i].link, from),
				       push);
		if (err < 0)
			pr_warn("msg: DELIVER %s of session %llu seq %llu to node %s (%zu devices) failed: %s",
				super_type_name(plans[i].plan.type),
				(unsigned long long)session_id,
				(unsigned long long)seq,
				link_node_id(plans[i].link),
				fn ? fn->count : 0, strerror(-err));
	}
}

/*
 * Pushes a committed message, packed as push, to the online members of s. A
 * super session that every gateway acknowledged needs no device list, so the
 * member scan runs only when some gateway's plan needs one. A failure loses
 * the push only; receivers find the gap by seq and sync.
 */
static void msg_fanout(struct bizsvr *bz, struct session *s, uint64_t seq,
		       const struct msg_origin *from,
		       const ProtobufCBinaryData *push)
{
	struct fanout_node *nodes = NULL;
	struct fanout_plan *plans;
	int need_devices, err = -ENOMEM;
	size_t n;

	superwire_note_message(bz->super, s);
	plans = calloc(link_count(bz->links) + 1, sizeof(*plans));
	if (!plans)
		goto err_log;
	n = msg_plan_nodes(bz, s->id, plans, &need_devices);
	if (need_devices) {
		err = msg_group_targets(bz, s, from, &nodes);
		if (err < 0)
			goto err_free_plans;
	}
	msg_send_planned(bz, plans, n, nodes, s->id, seq, from, push);
	fanout_free(nodes);
	free(plans);
	return;

err_free_plans:
	free(plans);
err_log:
	/* XXX: Planned transitions count as sent although nothing went out, so those gateways get them again only from the retry timer. */
	pr_error("msg: fan-out of session %llu seq %llu failed: %s",
		 (unsigned long long)s->id, (unsigned long long)seq,
		 strerror(-err));
}

void msg_send_transitions(struct bizsvr *bz, const struct session *s,
			  const int *nodes, size_t n)
{
	ProtobufCBinaryData empty = { 0 };
	struct fanout_node *targets, *fn;
	struct super_plan plan;
	const char *node_id;
	struct link *l;
	int err;

	err = msg_group_targets(bz, s, NULL, &targets);
	if (err < 0) {
		pr_error("msg: grouping the devices of session %llu for %zu transitions failed: %s",
			 (unsigned long long)s->id, n, strerror(-err));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		node_id = superwire_node_id(bz->super, (unsigned int)nodes[i]);
		l = node_id ? link_find(bz->links, node_id) : NULL;
		if (!l || superwire_plan(bz->super, s->id, nodes[i], &plan) < 0)
			continue;
		/* The node acknowledged since it was listed. */
		if (plan.type != SUPER_TYPE_UPGRADE &&
		    plan.type != SUPER_TYPE_DEMOTE)
			continue;
		HASH_FIND_STR(targets, node_id, fn);
		err = msg_deliver_node(bz, l, &plan, fn, s->id, 0, 0, &empty);
		if (err < 0)
			pr_warn("msg: sending %s epoch %u of session %llu to node %s failed: %s",
				super_type_name(plan.type), plan.epoch,
				(unsigned long long)s->id, node_id,
				strerror(-err));
		else
			bz->stats.transition_frames++;
	}
	fanout_free(targets);
}

/* A posted message waiting for the commit of its batch. */
struct msg_pending {
	struct batch_entry entry;    /* first, see batch.h */
	uint64_t session_id;
	struct store_append_result res;
	char *origin_node_id;        /* NULL for the admin API */
	uint64_t origin_conn_id;
	ProtobufCBinaryData push;    /* the Push to fan out, packed */
	msg_done_fn done;
	void *arg;
	char data[];                 /* push bytes, then origin_node_id */
};

/* Allocates the pending record of m with room for its packed Push. */
static struct msg_pending *msg_pending_new(const struct store_message *m,
					   const struct msg_origin *from)
{
	size_t push_cap = msg_push_max_size(m);
	size_t node_len = from->node_id ? strlen(from->node_id) + 1 : 0;
	struct msg_pending *p = calloc(1, sizeof(*p) + push_cap + node_len);

	if (!p)
		return NULL;
	p->session_id = m->session_id;
	p->push.data = (uint8_t *)p->data;
	p->entry.bytes = push_cap;
	if (from->node_id) {
		p->origin_node_id = p->data + push_cap;
		memcpy(p->origin_node_id, from->node_id, node_len);
	}
	p->origin_conn_id = from->conn_id;
	return p;
}

/* Completes a pending message: on success records the seq, runs the
 * caller's done and pushes the message unless it was a duplicate. */
static void msg_pending_complete(struct bizsvr *bz, struct batch_entry *e,
				 int err)
{
	struct msg_pending *p = (struct msg_pending *)e;
	struct msg_origin from = {
		.node_id = p->origin_node_id,
		.conn_id = p->origin_conn_id,
	};
	struct session *s = NULL;

	if (err == 0) {
		s = session_get(bz->sessions, p->session_id);
		if (s)
			session_note_seq(s, p->res.seq);
		else
			pr_error("msg: loading session %llu to push seq %llu failed: %s",
				 (unsigned long long)p->session_id,
				 (unsigned long long)p->res.seq,
				 strerror(errno));
		if (p->res.duplicate)
			bz->stats.messages_duplicate++;
		else
			bz->stats.messages_stored++;
	}
	p->done(bz, p->arg, p->session_id, err, err == 0 ? &p->res : NULL);
	if (s && !p->res.duplicate)
		msg_fanout(bz, s, p->res.seq, &from, &p->push);
	free(p);
}

/* Stores m in the open batch and queues its completion. Returns 0, or a
 * negative errno and done is not called. */
static int msg_store(struct bizsvr *bz, struct store_message *m,
		     const struct msg_origin *from, msg_done_fn done,
		     void *arg)
{
	struct msg_pending *p = msg_pending_new(m, from);
	Imgw__Push push;
	int err;

	if (!p)
		return -ENOMEM;
	err = batch_append(bz->batch, m, &p->res);
	if (err < 0) {
		pr_error("msg: storing a message of %s in session %llu failed: %s",
			 m->sender, (unsigned long long)m->session_id,
			 strerror(-err));
		free(p);
		return err;
	}
	if (!p->res.duplicate) {
		m->seq = p->res.seq;
		msg_push_init(&push, m);
		p->push.len = imgw__push__pack(&push, p->push.data);
	}
	p->entry.complete = msg_pending_complete;
	p->done = done;
	p->arg = arg;
	batch_queue(bz->batch, &p->entry);
	return 0;
}

static void msg_init_message(struct store_message *m, const struct session *s,
			     const struct msg_origin *from,
			     const char *client_msg_id, const uint8_t *payload,
			     size_t len)
{
	memset(m, 0, sizeof(*m));
	m->session_id = s->id;
	m->sender = (char *)from->user_id;
	m->sender_device = (char *)(from->device_id ? from->device_id : "");
	m->client_msg_id = (char *)(client_msg_id ? client_msg_id : "");
	m->payload = (uint8_t *)payload;
	m->payload_len = len;
	m->time_ms = bizsvr_now_ms();
}

int msg_post(struct bizsvr *bz, struct session *s,
	     const struct msg_origin *from, const char *client_msg_id,
	     const uint8_t *payload, size_t len, msg_done_fn done, void *arg)
{
	struct store_message m;

	msg_init_message(&m, s, from, client_msg_id, payload, len);
	return msg_store(bz, &m, from, done, arg);
}

/* Sends body to the client connection of up as a client frame of op. */
static void msg_reply(struct link *l, uint32_t request_id,
		      const Imgw__Upstream *up, unsigned int op,
		      const ProtobufCMessage *body)
{
	Imgw__Reply reply = IMGW__REPLY__INIT;
	size_t len = protobuf_c_message_get_packed_size(body);
	uint8_t *buf = malloc(len ? len : 1);
	int err = -ENOMEM;

	if (buf) {
		protobuf_c_message_pack(body, buf);
		reply.conn_id = up->device->conn_id;
		reply.op = op;
		reply.client_request_id = up->client_request_id;
		reply.body.data = buf;
		reply.body.len = len;
		err = link_send(l, OP_REPLY, request_id, &reply.base);
		free(buf);
	}
	if (err < 0)
		pr_warn("msg: REPLY %s to node %s conn %llu failed: %s",
			frame_op_name(op), link_node_id(l),
			(unsigned long long)up->device->conn_id,
			strerror(-err));
}

static void msg_reply_error(struct link *l, uint32_t request_id,
			    const Imgw__Upstream *up, Imgw__ErrorCode code,
			    const char *text)
{
	Imgw__Error error = IMGW__ERROR__INIT;

	error.code = code;
	error.text = (char *)text;
	msg_reply(l, request_id, up, OP_ERROR, &error.base);
}

static void msg_send_reject(struct bizsvr *bz, struct link *l,
			    uint32_t request_id, const Imgw__Upstream *up,
			    const Imgw__SendRequest *req, Imgw__ErrorCode code,
			    const char *reason)
{
	Imgw__SendResult res = IMGW__SEND_RESULT__INIT;

	bz->stats.messages_rejected++;
	pr_debug("msg: SEND of %s/%s conn %llu on node %s rejected: %s",
		 up->device->user_id, up->device->device_id,
		 (unsigned long long)up->device->conn_id, link_node_id(l),
		 reason);
	res.code = code;
	res.reason = (char *)reason;
	res.session_id = req->session_id;
	res.client_msg_id = req->client_msg_id;
	msg_reply(l, request_id, up, OP_SEND_RESULT, &res.base);
}

/* Finds the target session of a SEND: by id, or the direct session with
 * to_user. Returns NULL with *code and *reason set when there is none. */
static struct session *msg_send_session(struct bizsvr *bz, const char *sender,
					const Imgw__SendRequest *req,
					Imgw__ErrorCode *code,
					const char **reason)
{
	struct session *s;
	int created;

	*code = IMGW__ERROR_CODE__ERROR_BAD_REQUEST;
	if (req->session_id) {
		s = session_get(bz->sessions, req->session_id);
	} else if (req->to_user && req->to_user[0]) {
		if (!bizsvr_valid_id(req->to_user)) {
			*reason = "invalid to_user";
			return NULL;
		}
		if (strcmp(req->to_user, sender) == 0) {
			*reason = "cannot send to yourself";
			return NULL;
		}
		s = session_direct(bz->sessions, sender, req->to_user,
				   (int64_t)bizsvr_now_ms(), &created);
	} else {
		*reason = "session_id or to_user required";
		return NULL;
	}
	if (s)
		return s;
	if (errno == ENOENT) {
		*code = IMGW__ERROR_CODE__ERROR_NO_SESSION;
		*reason = "no such session";
	} else {
		pr_error("msg: loading the session of a SEND from %s failed: %s",
			 sender, strerror(errno));
		*code = IMGW__ERROR_CODE__ERROR_INTERNAL;
		*reason = "session unavailable";
	}
	return NULL;
}

/* Returns NULL when sender may post req to s, or the reason it may not. */
static const char *msg_send_check(struct bizsvr *bz, const struct session *s,
				  const char *sender,
				  const Imgw__SendRequest *req,
				  Imgw__ErrorCode *code)
{
	*code = IMGW__ERROR_CODE__ERROR_BAD_REQUEST;
	if (req->client_msg_id && strlen(req->client_msg_id) > MSG_CLIENT_ID_MAX)
		return "client_msg_id longer than 128 bytes";
	*code = IMGW__ERROR_CODE__ERROR_NOT_MEMBER;
	if (!session_is_member(s, sender))
		return "not a member of the session";
	*code = IMGW__ERROR_CODE__ERROR_BAD_REQUEST;
	/* Notice sessions carry server pushes only. */
	if (s->kind == STORE_KIND_NOTICE)
		return "notice sessions are read-only";
	*code = IMGW__ERROR_CODE__ERROR_TOO_LARGE;
	if (req->payload.len > bz->cfg->max_payload)
		return "payload over max_payload";
	return NULL;
}

/*
 * Fields of a stored SEND that its SEND_RESULT needs after the commit. The
 * link is found again by node id because it may have closed meanwhile.
 */
struct msg_send_ctx {
	uint32_t request_id;
	uint32_t client_request_id;
	uint64_t conn_id;
	char *node_id;
	char *user_id;
	char *device_id;
	char *client_msg_id;
	char data[];                 /* the four strings */
};

/* Copies text to *pos and moves *pos past it. Returns the copy. */
static char *msg_copy_string(char **pos, const char *text)
{
	size_t len = strlen(text) + 1;
	char *copy = *pos;

	memcpy(copy, text, len);
	*pos += len;
	return copy;
}

static struct msg_send_ctx *msg_send_ctx_new(struct link *l,
					     uint32_t request_id,
					     const Imgw__Upstream *up,
					     const char *client_msg_id)
{
	const Imgw__Device *dev = up->device;
	const char *node_id = link_node_id(l);
	size_t len = strlen(node_id) + strlen(dev->user_id) +
		     strlen(dev->device_id) + strlen(client_msg_id) + 4;
	struct msg_send_ctx *c = malloc(sizeof(*c) + len);
	char *pos;

	if (!c)
		return NULL;
	c->request_id = request_id;
	c->client_request_id = up->client_request_id;
	c->conn_id = dev->conn_id;
	pos = c->data;
	c->node_id = msg_copy_string(&pos, node_id);
	c->user_id = msg_copy_string(&pos, dev->user_id);
	c->device_id = msg_copy_string(&pos, dev->device_id);
	c->client_msg_id = msg_copy_string(&pos, client_msg_id);
	return c;
}

/* Sends the SEND_RESULT of a committed (or failed) SEND. */
static void msg_send_done(struct bizsvr *bz, void *arg, uint64_t session_id,
			  int err, const struct store_append_result *stored)
{
	Imgw__SendResult res = IMGW__SEND_RESULT__INIT;
	Imgw__SendRequest req = IMGW__SEND_REQUEST__INIT;
	Imgw__Upstream up = IMGW__UPSTREAM__INIT;
	Imgw__Device dev = IMGW__DEVICE__INIT;
	struct msg_send_ctx *c = arg;
	struct link *l = link_find(bz->links, c->node_id);

	if (!l) {
		pr_info("msg: node %s closed before the SEND_RESULT of %s/%s conn %llu in session %llu",
			c->node_id, c->user_id, c->device_id,
			(unsigned long long)c->conn_id,
			(unsigned long long)session_id);
		free(c);
		return;
	}
	dev.user_id = c->user_id;
	dev.device_id = c->device_id;
	dev.conn_id = c->conn_id;
	up.device = &dev;
	up.client_request_id = c->client_request_id;
	if (err < 0) {
		req.session_id = session_id;
		req.client_msg_id = c->client_msg_id;
		msg_send_reject(bz, l, c->request_id, &up, &req,
				IMGW__ERROR_CODE__ERROR_INTERNAL,
				"store failed");
	} else {
		res.code = IMGW__ERROR_CODE__ERROR_NONE;
		res.session_id = session_id;
		res.seq = stored->seq;
		res.time_ms = stored->time_ms;
		res.client_msg_id = c->client_msg_id;
		msg_reply(l, c->request_id, &up, OP_SEND_RESULT, &res.base);
	}
	free(c);
}

/* Stores a checked SEND in s. Its result and fan-out follow the commit. */
static void msg_send_store(struct bizsvr *bz, struct link *l,
			   uint32_t request_id, const Imgw__Upstream *up,
			   const Imgw__SendRequest *req, struct session *s)
{
	const Imgw__Device *dev = up->device;
	struct msg_origin from = {
		.user_id = dev->user_id,
		.device_id = dev->device_id,
		.node_id = link_node_id(l),
		.conn_id = dev->conn_id,
	};
	const char *cmid = req->client_msg_id ? req->client_msg_id : "";
	struct msg_send_ctx *c;

	c = msg_send_ctx_new(l, request_id, up, cmid);
	if (c && msg_post(bz, s, &from, cmid, req->payload.data,
			  req->payload.len, msg_send_done, c) == 0)
		return;
	free(c);
	msg_send_reject(bz, l, request_id, up, req,
			IMGW__ERROR_CODE__ERROR_INTERNAL, "store failed");
}

static void msg_handle_send(struct bizsvr *bz, struct link *l,
			    uint32_t request_id, const Imgw__Upstream *up,
			    const Imgw__SendRequest *req)
{
	const Imgw__Device *dev = up->device;
	Imgw__ErrorCode code;
	const char *reason = NULL;
	struct session *s;

	/* Finding or creating a direct session writes outside the batch. */
	if (!req->session_id)
		batch_commit(bz->batch);
	s = msg_send_session(bz, dev->user_id, req, &code, &reason);
	if (s)
		reason = msg_send_check(bz, s, dev->user_id, req, &code);
	if (reason) {
		msg_send_reject(bz, l, request_id, up, req, code, reason);
		return;
	}
	msg_send_store(bz, l, request_id, up, req, s);
}

static void msg_sync_reject(struct bizsvr *bz, struct link *l,
			    uint32_t request_id, const Imgw__Upstream *up,
			    uint64_t session_id, Imgw__ErrorCode code,
			    const char *reason)
{
	Imgw__SyncResult res = IMGW__SYNC_RESULT__INIT;

	res.code = code;
	res.reason = (char *)reason;
	res.session_id = session_id;
	msg_reply(l, request_id, up, OP_SYNC_RESULT, &res.base);
}

/* Points pushes[i] at the stored messages, stopping at the byte budget.
 * Returns how many messages were taken. */
static size_t msg_sync_fill(const struct store_message *msgs, size_t n,
			    Imgw__Push *pushes, Imgw__Push **ptrs)
{
	size_t bytes = 0, i;

	for (i = 0; i < n; i++) {
		const struct store_message *m = &msgs[i];
		Imgw__Push *p = &pushes[i];

		if (i > 0 && bytes + m->payload_len > MSG_SYNC_BYTES_BUDGET)
			break;
		bytes += m->payload_len;
		msg_push_init(p, m);
		ptrs[i] = p;
	}
	return i;
}

/* Reads the messages of a SYNC and replies. Returns 0 or a negative errno
 * before anything was sent. */
static int msg_sync_reply(struct bizsvr *bz, struct link *l,
			  uint32_t request_id, const Imgw__Upstream *up,
			  const struct session *s, uint64_t from,
			  unsigned int limit)
{
	Imgw__SyncResult res = IMGW__SYNC_RESULT__INIT;
	struct store_message *msgs = NULL;
	Imgw__Push *pushes = NULL;
	Imgw__Push **ptrs = NULL;
	size_t n = 0;
	int err;

	/* One row past the limit shows whether there are more. */
	err = store_messages_range(bz->store, s->id, from, limit + 1, &msgs,
				   &n);
	if (err < 0)
		return err;
	pushes = calloc(n ? n : 1, sizeof(*pushes));
	ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	if (!pushes || !ptrs) {
		err = -ENOMEM;
		goto out;
	}
	res.code = IMGW__ERROR_CODE__ERROR_NONE;
	res.session_id = s->id;
	res.last_seq = s->last_seq;
	res.n_messages = msg_sync_fill(msgs, n < limit ? n : limit, pushes,
				       ptrs);
	res.messages = ptrs;
	res.more = n > res.n_messages;
	msg_reply(l, request_id, up, OP_SYNC_RESULT, &res.base);
	bz->stats.syncs++;
out:
	free(ptrs);
	free(pushes);
	store_messages_free(msgs, n);
	return err;
}

static void msg_handle_sync(struct bizsvr *bz, struct link *l,
			    uint32_t request_id, const Imgw__Upstream *up,
			    const Imgw__SyncRequest *req)
{
	const char *user = up->device->user_id;
	unsigned int limit = bz->cfg->sync_limit;
	struct session *s;
	int err;

	s = session_get(bz->sessions, req->session_id);
	if (!s) {
		err = errno;
		if (err != ENOENT)
			pr_error("msg: loading session %llu for a SYNC of %s failed: %s",
				 (unsigned long long)req->session_id, user,
				 strerror(err));
		msg_sync_reject(bz, l, request_id, up, req->session_id,
				err == ENOENT ? IMGW__ERROR_CODE__ERROR_NO_SESSION :
				IMGW__ERROR_CODE__ERROR_INTERNAL,
				err == ENOENT ? "no such session" :
				"session unavailable");
		return;
	}
	if (!session_is_member(s, user)) {
		msg_sync_reject(bz, l, request_id, up, s->id,
				IMGW__ERROR_CODE__ERROR_NOT_MEMBER,
				"not a member of the session");
		return;
	}
	if (req->limit && req->limit < limit)
		limit = req->limit;
	err = msg_sync_reply(bz, l, request_id, up, s,
			     req->from_seq ? req->from_seq : 1, limit);
	if (err < 0) {
		pr_error("msg: SYNC of session %llu for %s failed: %s",
			 (unsigned long long)s->id, user, strerror(-err));
		msg_sync_reject(bz, l, request_id, up, s->id,
				IMGW__ERROR_CODE__ERROR_INTERNAL,
				"store failed");
	}
}

/* Checks that the connection of up is the one recorded online, so a kicked
 * or closed connection cannot act for the device. */
static int msg_origin_online(struct bizsvr *bz, struct link *l,
			     const Imgw__Device *dev)
{
	struct presence_device *d;

	d = presence_find(bz->presence, dev->user_id, dev->device_id);
	return d && d->conn_id == dev->conn_id &&
	       strcmp(d->node->node_id, link_node_id(l)) == 0;
}

static void msg_dispatch(struct bizsvr *bz, struct link *l,
			 uint32_t request_id, const Imgw__Upstream *up)
{
	const ProtobufCBinaryData *body = &up->body;
	Imgw__SendRequest *send;
	Imgw__SyncRequest *sync;

	/* Only a SEND may join the open batch (see batch.h). */
	if (up->op != OP_SEND)
		batch_commit(bz->batch);
	if (up->op == OP_SEND) {
		send = imgw__send_request__unpack(NULL, body->len, body->data);
		if (send) {
			msg_handle_send(bz, l, request_id, up, send);
			imgw__send_request__free_unpacked(send, NULL);
			return;
		}
	} else if (up->op == OP_SYNC) {
		sync = imgw__sync_request__unpack(NULL, body->len, body->data);
		if (sync) {
			msg_handle_sync(bz, l, request_id, up, sync);
			imgw__sync_request__free_unpacked(sync, NULL);
			return;
		}
	} else {
		pr_warn("msg: UPSTREAM with op %u from node %s conn %llu is not served, replying ERROR",
			up->op, link_node_id(l),
			(unsigned long long)up->device->conn_id);
		msg_reply_error(l, request_id, up,
				IMGW__ERROR_CODE__ERROR_UNKNOWN_OP,
				"op not served by the business daemon");
		return;
	}
	pr_warn("msg: undecodable %s body (%zu bytes) from node %s conn %llu, replying ERROR",
		frame_op_name(up->op), body->len, link_node_id(l),
		(unsigned long long)up->device->conn_id);
	msg_reply_error(l, request_id, up, IMGW__ERROR_CODE__ERROR_BAD_BODY,
			"undecodable request body");
}

void msg_handle_upstream(struct bizsvr *bz, struct link *l,
			 uint32_t request_id, const uint8_t *body, size_t len)
{
	Imgw__Upstream *up = imgw__upstream__unpack(NULL, len, body);

	if (!up || !up->device || !bizsvr_valid_id(up->device->user_id)) {
		/* Without a device there is no connection to reply to. */
		pr_warn("msg: invalid UPSTREAM body (%zu bytes) from node %s, dropping it",
			len, link_node_id(l));
		imgw__upstream__free_unpacked(up, NULL);
		return;
	}
	if (!msg_origin_online(bz, l, up->device)) {
		pr_info("msg: UPSTREAM %s from %s/%s conn %llu on node %s, which is not online there; replying ERROR",
			frame_op_name(up->op) ? frame_op_name(up->op) : "?",
			up->device->user_id, up->device->device_id,
			(unsigned long long)up->device->conn_id,
			link_node_id(l));
		msg_reply_error(l, request_id, up,
				IMGW__ERROR_CODE__ERROR_NOT_LOGGED_IN,
				"connection is not logged in");
	} else {
		msg_dispatch(bz, l, request_id, up);
	}
	imgw__upstream__free_unpacked(up, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * The link to the business daemon; see upstream.h. The link is "up" only
 * after the daemon accepted REGISTER: until then clients get
 * ERROR_UNAVAILABLE, and when it drops the client of every AUTH, SEND and
 * SYNC in flight receives ERROR_UNAVAILABLE too. Logged-in clients stay
 * connected across a drop and are listed again in the next REGISTER.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <utlist.h>

#include "client.h"
#include "deliver.h"
#include "httputil.h"
#include "linkauth.h"
#include "log.h"
#include "super_gw.h"
#include "upstream.h"
#include "wire.h"

enum upstream_state {
	UPSTREAM_DOWN,
	UPSTREAM_CONNECTING,
	UPSTREAM_REGISTERING,
	UPSTREAM_UP,
};

/*
 * An AUTH in flight, keyed by the gateway's request id.
 * XXX: An entry is freed only by its AUTH_RESULT or a link drop, so AUTHs
 * the daemon never answers stay in memory while the link is up.
 */
struct upstream_pending {
	uint32_t request_id;
	uint64_t conn_id;
	uint32_t client_request_id;
	/* Copies, to withdraw a login whose connection closed meanwhile. */
	char *user_id;
	char *device_id;
	UT_hash_handle hh;
};

/* A client SEND or SYNC forwarded upstream, keyed by the request id of its
 * UPSTREAM frame, which the daemon's REPLY carries back. */
struct upstream_request {
	uint32_t request_id;
	uint64_t conn_id;
	unsigned int op;
	uint32_t client_request_id;
	uint64_t session_id;
	char *client_msg_id;
	struct upstream_request *prev, *next;    /* conn->requests */
	UT_hash_handle hh;                       /* upstream->requests */
};

struct upstream {
	struct gateway *gw;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	struct bufferevent *bev;
	enum upstream_state state;
	struct event *retry_timer;
	unsigned int backoff_ms;
	uint32_t last_request_id;
	struct upstream_pending *pending;
	struct upstream_request *requests;
};

static void upstream_connect(struct upstream *up);

int upstream_is_up(const struct upstream *up)
{
	return up && up->state == UPSTREAM_UP;
}

/*
 * XXX: The link's output buffer has no cap, so a daemon that stops reading
 * makes the gateway queue client requests in memory until the link drops.
 */
static int upstream_send(struct upstream *up, unsigned int op,
			 uint32_t request_id, const ProtobufCMessage *msg)
{
	if (!up->bev)
		return -ENOTCONN;
	return wire_append(bufferevent_get_output(up->bev), op, request_id,
			   msg);
}

static void pending_free(struct upstream *up, struct upstream_pending *p)
{
	HASH_DEL(up->pending, p);
	free(p->user_id);
	free(p->device_id);
	free(p);
}

/* Sends ERROR_UNAVAILABLE to the client of every AUTH in flight. */
static void pending_fail_all(struct upstream *up)
{
	struct upstream_pending *p, *tmp;
	struct conn *c;

	HASH_ITER(hh, up->pending, p, tmp) {
		c = conn_registry_find(&up->gw->conns, p->conn_id);
		if (c && c->state == CONN_LOGGING_IN &&
		    c->auth_request_id == p->request_id)
			client_login_unavailable(c);
		pending_free(up, p);
	}
}

static uint32_t upstream_next_request_id(struct upstream *up)
{
	/* Request id 0 is kept for frames that expect no answer. */
	do
		up->last_request_id++;
	while (up->last_request_id == 0);
	return up->last_request_id;
}

static void request_free(struct upstream *up, struct conn *c,
			 struct upstream_request *r)
{
	HASH_DEL(up->requests, r);
	DL_DELETE(c->requests, r);
	c->n_requests--;
	free(r->client_msg_id);
	free(r);
}

/* Answers every SEND and SYNC in flight with ERROR_UNAVAILABLE. */
static void requests_fail_all(struct upstream *up)
{
	struct upstream_request *r, *tmp;
	struct conn *c;

	HASH_ITER(hh, up->requests, r, tmp) {
		/* An entry lives no longer than its connection. */
		c = conn_registry_find(&up->gw->conns, r->conn_id);
		HASH_DEL(up->requests, r);
		if (c) {
			DL_DELETE(c->requests, r);
			c->n_requests--;
			client_send_unavailable(c, r->op, r->client_request_id,
						r->session_id,
						r->client_msg_id,
						"business daemon link dropped");
		}
		free(r->client_msg_id);
		free(r);
	}
}

/* Forgets the request a REPLY answers. */
static void request_answered(struct upstream *up, uint32_t request_id)
{
	struct upstream_request *r;
	struct conn *c;

	HASH_FIND(hh, up->requests, &request_id, sizeof(request_id), r);
	if (!r)
		return;
	c = conn_registry_find(&up->gw->conns, r->conn_id);
	if (c) {
		request_free(up, c, r);
	} else {
		HASH_DEL(up->requests, r);
		free(r->client_msg_id);
		free(r);
	}
}

void upstream_conn_gone(struct upstream *up, struct conn *c)
{
	struct upstream_request *r, *tmp;

	DL_FOREACH_SAFE(c->requests, r, tmp) {
		if (up)
			HASH_DEL(up->requests, r);
		DL_DELETE(c->requests, r);
		free(r->client_msg_id);
		free(r);
	}
	c->n_requests = 0;
}

/* Drops the link, fails the AUTHs in flight and schedules a reconnect. */
static void upstream_drop(struct upstream *up, const char *reason)
{
	struct timeval tv = {
		.tv_sec = up->backoff_ms / 1000,
		.tv_usec = (up->backoff_ms % 1000) * 1000,
	};

	pr_warn("%s bizsvr %s: %s; reconnecting in %u ms",
		up->state == UPSTREAM_CONNECTING ? "cannot connect to" :
		"link down to", up->gw->cfg.bizsvr, reason, up->backoff_ms);
	up->state = UPSTREAM_DOWN;
	if (up->bev) {
		bufferevent_free(up->bev);
		up->bev = NULL;
	}
	pending_fail_all(up);
	requests_fail_all(up);
	super_gw_link_down(up->gw);
	evtimer_add(up->retry_timer, &tv);
	up->backoff_ms *= 2;
	if (up->backoff_ms > UPSTREAM_BACKOFF_MAX_MS)
		up->backoff_ms = UPSTREAM_BACKOFF_MAX_MS;
}

static void retry_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *up = arg;

	up->gw->stats.upstream_reconnects++;
	pr_debug("reconnecting to bizsvr %s", up->gw->cfg.bizsvr);
	upstream_connect(up);
}

static void fill_device(Imgw__Device *dev, const struct conn *c)
{
	dev->user_id = c->user_id;
	dev->device_id = c->device_id;
	dev->conn_id = c->id;
	dev->platform = c->platform ? c->platform : "";
}

/* Signs msg with the link secret, when the gateway has one. */
static int upstream_sign_register(struct upstream *up, Imgw__Register *msg,
				  uint8_t mac[LINKAUTH_MAC_LEN])
{
	int err;

	if (!up->gw->cfg.link_secret[0])
		return 0;
	msg->auth_time = (int64_t)time(NULL);
	err = linkauth_mac(up->gw->cfg.link_secret, msg->node_id, msg->boot_id,
			   msg->auth_time, mac);
	if (err < 0)
		return err;
	msg->auth.data = mac;
	msg->auth.len = LINKAUTH_MAC_LEN;
	return 0;
}

/* Sends REGISTER listing every logged-in connection. */
static int upstream_register(struct upstream *up)
{
	struct conn_registry *reg = &up->gw->conns;
	Imgw__Register msg = IMGW__REGISTER__INIT;
	Imgw__Device *devices, **ptrs;
	uint8_t mac[LINKAUTH_MAC_LEN];
	struct conn *c, *tmp;
	size_t n = 0;
	int err;

	devices = calloc(reg->count + 1, sizeof(*devices));
	ptrs = calloc(reg->count + 1, sizeof(*ptrs));
	if (!devices || !ptrs) {
		err = -ENOMEM;
		goto out_free;
	}
	conn_registry_for_each(reg, c, tmp) {
		if (c->state != CONN_LOGGED_IN)
			continue;
		imgw__device__init(&devices[n]);
		fill_device(&devices[n], c);
		ptrs[n] = &devices[n];
		n++;
	}
	msg.node_id = up->gw->cfg.node_id;
	msg.boot_id = up->gw->boot_id;
	msg.n_devices = n;
	msg.devices = ptrs;
	err = upstream_sign_register(up, &msg, mac);
	if (err < 0)
		goto out_free;
	/*
	 * XXX: REGISTER is one frame, so a node with more logged-in
	 * devices than fit in FRAME_HARD_MAX_BODY (an estimate: about
	 * 200,000 at 80 bytes each) cannot register.
	 */
	err = upstream_send(up, OP_REGISTER, 0, &msg.base);
	if (!err)
		pr_info("sent REGISTER to bizsvr %s: node id %s, %zu devices, %s",
			up->gw->cfg.bizsvr, up->gw->cfg.node_id, n,
			msg.auth.len ? "signed with the link secret" :
			"unsigned");
out_free:
	free(devices);
	free(ptrs);
	return err;
}

static void upstream_on_connected(struct upstream *up)
{
	struct timeval register_tv = { .tv_sec = UPSTREAM_REGISTER_TIMEOUT_SEC };
	int fd = bufferevent_getfd(up->bev);
	int one = 1, err;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0)
		pr_warn("bizsvr link fd %d: setting socket options failed: %s",
			fd, strerror(errno));
	up->state = UPSTREAM_REGISTERING;
	bufferevent_set_timeouts(up->bev, &register_tv, NULL);
	err = upstream_register(up);
	if (err < 0)
		upstream_drop(up, err == -ENOMEM ?
			      "out of memory building REGISTER" :
			      "signing REGISTER failed");
}

static void upstream_on_register_result(struct upstream *up,
					const uint8_t *body, size_t len)
{
	Imgw__RegisterResult *res;
	char reason[512];

	res = imgw__register_result__unpack(NULL, len, body);
	if (!res) {
		upstream_drop(up, "REGISTER_RESULT does not decode");
		return;
	}
	if (res->code != IMGW__ERROR_CODE__ERROR_NONE) {
		/* One line per attempt, so a secret mismatch stays visible
		 * while the gateway keeps retrying. */
		snprintf(reason, sizeof(reason),
			 "bizsvr rejected REGISTER of node %s: code %d: %.160s",
			 up->gw->cfg.node_id, res->code, res->reason);
		imgw__register_result__free_unpacked(res, NULL);
		upstream_drop(up, reason);
		return;
	}
	up->state = UPSTREAM_UP;
	up->backoff_ms = UPSTREAM_BACKOFF_MIN_MS;
	bufferevent_set_timeouts(up->bev, NULL, NULL);
	pr_info("link to bizsvr %s up: daemon boot id %s", up->gw->cfg.bizsvr,
		res->daemon_boot_id);
	imgw__register_result__free_unpacked(res, NULL);
}

/* Adds a connection that just logged in to its super-session caches. */
static void auth_join_caches(struct upstream *up, uint64_t conn_id,
			     const Imgw__AuthResult *res)
{
	struct conn *c = conn_registry_find(&up->gw->conns, conn_id);

	/* The login may have failed, or the client is gone already. */
	if (!c || c->state != CONN_LOGGED_IN)
		return;
	super_gw_login(up->gw, c, res->cache_sessions, res->n_cache_sessions);
}

static void upstream_on_auth_result(struct upstream *up,
				    const struct frame_header *hdr,
				    const uint8_t *body)
{
	struct upstream_pending *p;
	Imgw__AuthResult *res;
	Imgw__Presence presence = IMGW__PRESENCE__INIT;
	Imgw__Device dev = IMGW__DEVICE__INIT;
	int err;

	HASH_FIND(hh, up->pending, &hdr->request_id, sizeof(hdr->request_id), p);
	if (!p) {
		pr_warn("AUTH_RESULT for unknown request %u from bizsvr; skipped",
			hdr->request_id);
		return;
	}
	res = imgw__auth_result__unpack(NULL, hdr->body_len, body);
	err = client_on_auth_result(up->gw, p->conn_id, p->request_id,
				    p->client_request_id,
				    res ? res->result : NULL);
	if (err == 0 && res && res->n_cache_sessions)
		auth_join_caches(up, p->conn_id, res);
	if (err == -ENOENT && res && res->result &&
	    res->result->code == IMGW__ERROR_CODE__ERROR_NONE) {
		/* The client left while the daemon marked it online. */
		dev.user_id = p->user_id;
		dev.device_id = p->device_id;
		dev.conn_id = p->conn_id;
		presence.device = &dev;
		upstream_send(up, OP_PRESENCE, 0, &presence.base);
	}
	if (!res)
		pr_warn("AUTH_RESULT for conn %llu does not decode",
			(unsigned long long)p->conn_id);
	else
		imgw__auth_result__free_unpacked(res, NULL);
	pending_free(up, p);
}

#define DEFINE_DISPATCH(name, type, unpack, handler, free_unpacked)	\
static void name(struct upstream *up, const uint8_t *body, size_t len)	\
{									\
	type *msg = unpack(NULL, len, body);				\
									\
	if (!msg) {							\
		pr_warn("%s from bizsvr does not decode; skipped", #type); \
		return;							\
	}								\
	handler(up->gw, msg);						\
	free_unpacked(msg, NULL);					\
}

DEFINE_DISPATCH(upstream_on_kick_device, Imgw__KickDevice,
		imgw__kick_device__unpack, client_on_kick_device,
		imgw__kick_device__free_unpacked)
DEFINE_DISPATCH(upstream_on_deliver, Imgw__Deliver, imgw__deliver__unpack,
		deliver_handle, imgw__deliver__free_unpacked)
DEFINE_DISPATCH(upstream_on_session_cache, Imgw__SessionCache,
		imgw__session_cache__unpack, super_gw_session_cache,
		imgw__session_cache__free_unpacked)

static void upstream_on_reply(struct upstream *up,
			      const struct frame_header *hdr,
			      const uint8_t *body)
{
	Imgw__Reply *reply = imgw__reply__unpack(NULL, hdr->body_len, body);

	if (hdr->request_id)
		request_answered(up, hdr->request_id);
	if (!reply) {
		pr_warn("REPLY request %u from bizsvr does not decode; skipped",
			hdr->request_id);
		return;
	}
	client_on_reply(up->gw, reply);
	imgw__reply__free_unpacked(reply, NULL);
}

static void upstream_on_error(struct upstream *up, const uint8_t *body,
			      size_t len)
{
	Imgw__Error *error = imgw__error__unpack(NULL, len, body);

	pr_warn("bizsvr %s sent ERROR code %d: %s", up->gw->cfg.bizsvr,
		error ? (int)error->code : -1,
		error && error->text ? error->text : "(undecodable body)");
	if (error)
		imgw__error__free_unpacked(error, NULL);
}

static void upstream_dispatch(struct upstream *up,
			      const struct frame_header *hdr,
			      const uint8_t *body)
{
	const char *name = frame_op_name(hdr->op);

	switch (hdr->op) {
	case OP_REGISTER_RESULT:
		upstream_on_register_result(up, body, hdr->body_len);
		break;
	case OP_AUTH_RESULT:
		upstream_on_auth_result(up, hdr, body);
		break;
	case OP_REPLY:
		upstream_on_reply(up, hdr, body);
		break;
	case OP_DELIVER:
		upstream_on_deliver(up, body, hdr->body_len);
		break;
	case OP_KICK_DEVICE:
		upstream_on_kick_device(up, body, hdr->body_len);
		break;
	case OP_SESSION_CACHE:
		upstream_on_session_cache(up, body, hdr->body_len);
		break;
	case OP_ERROR:
		upstream_on_error(up, body, hdr->body_len);
		break;
	default:
		pr_warn("bizsvr %s sent op %u (%s), which the gateway does not handle; skipped",
			up->gw->cfg.bizsvr, hdr->op, name ? name : "unknown");
		break;
	}
}

static void upstream_read_cb(struct bufferevent *bev, void *arg)
{
	struct upstream *up = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct frame_header hdr;
	const uint8_t *body;
	int rc;

	/* A handler may drop the link, which frees bev: stop then. */
	while (up->bev == bev) {
		rc = wire_peek(in, FRAME_HARD_MAX_BODY, &hdr);
		if (rc == 0)
			break;
		if (rc < 0) {
			upstream_drop(up, frame_status_str(rc));
			return;
		}
		body = wire_body(in, &hdr);
		if (!body) {
			upstream_drop(up, "out of memory reading a frame");
			return;
		}
		/* Batched SUPER pushes go out before anything else. */
		if (hdr.op != OP_DELIVER)
			deliver_batch_flush(up->gw);
		upstream_dispatch(up, &hdr, body);
		if (up->bev == bev)
			wire_consume(in, &hdr);
	}
	deliver_batch_flush(up->gw);
}

static void upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct upstream *up = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		upstream_on_connected(up);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		upstream_drop(up, up->state == UPSTREAM_REGISTERING ?
			      "timed out waiting for REGISTER_RESULT" :
			      "timed out");
	else if (what & BEV_EVENT_EOF)
		upstream_drop(up, "closed by bizsvr");
	else
		upstream_drop(up, strerror(err));
}

static void upstream_connect(struct upstream *up)
{
	struct timeval connect_tv = { .tv_sec = UPSTREAM_CONNECT_TIMEOUT_SEC };

	up->bev = bufferevent_socket_new(up->gw->base, -1,
					 BEV_OPT_CLOSE_ON_FREE);
	if (!up->bev) {
		upstream_drop(up, "out of memory");
		return;
	}
	up->state = UPSTREAM_CONNECTING;
	bufferevent_setcb(up->bev, upstream_read_cb, NULL, upstream_event_cb,
			  up);
	bufferevent_set_timeouts(up->bev, &connect_tv, &connect_tv);
	bufferevent_enable(up->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(up->bev, (struct sockaddr *)&up->addr,
				       (int)up->addr_len) < 0)
		upstream_drop(up, strerror(errno));
}

static int resolve_bizsvr(struct upstream *up, const char *text)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
	};
	struct addrinfo *res;
	char host[256], port[8];
	uint16_t port_num;
	int rc;

	if (parse_host_port(text, host, sizeof(host), &port_num) < 0)
		return -EINVAL;
	snprintf(port, sizeof(port), "%u", port_num);
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		pr_error("resolving bizsvr address %s failed: %s", text,
			 gai_strerror(rc));
		return -EINVAL;
	}
	memcpy(&up->addr, res->ai_addr, res->ai_addrlen);
	up->addr_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

struct upstream *upstream_new(struct gateway *gw)
{
	struct upstream *up = calloc(1, sizeof(*up));
	int err;

	if (!up)
		return NULL;
	up->gw = gw;
	up->backoff_ms = UPSTREAM_BACKOFF_MIN_MS;
	err = resolve_bizsvr(up, gw->cfg.bizsvr);
	if (err)
		goto err_free;
	up->retry_timer = evtimer_new(gw->base, retry_timer_cb, up);
	if (!up->retry_timer) {
		err = -ENOMEM;
		goto err_free;
	}
	return up;

err_free:
	free(up);
	errno = -err;
	return NULL;
}

void upstream_start(struct upstream *up)
{
	upstream_connect(up);
}

void upstream_free(struct upstream *up)
{
	struct upstream_pending *p, *tmp;

	if (!up)
		return;
	HASH_ITER(hh, up->pending, p, tmp)
		pending_free(up, p);
	/* Connections are freed first, and each took its requests along. */
	if (up->bev)
		bufferevent_free(up->bev);
	event_free(up->retry_timer);
	free(up);
}

int upstream_auth(struct upstream *up, struct conn *c,
		  Imgw__LoginRequest *login, uint32_t client_request_id)
{
	Imgw__Auth auth = IMGW__AUTH__INIT;
	Imgw__Device dev = IMGW__DEVICE__INIT;
	struct upstream_pending *p;
	int err;

	if (!upstream_is_up(up))
		return -ENOTCONN;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->user_id = strdup(c->user_id);
	p->device_id = strdup(c->device_id);
	if (!p->user_id || !p->device_id) {
		err = -ENOMEM;
		goto err_free;
	}
	p->request_id = upstream_next_request_id(up);
	p->conn_id = c->id;
	p->client_request_id = client_request_id;

	fill_device(&dev, c);
	auth.device = &dev;
	auth.login = login;
	auth.client_request_id = client_request_id;
	err = upstream_send(up, OP_AUTH, p->request_id, &auth.base);
	if (err)
		goto err_free;
	HASH_ADD(hh, up->pending, request_id, sizeof(p->request_id), p);
	c->auth_request_id = p->request_id;
	return 0;

err_free:
	free(p->user_id);
	free(p->device_id);
	free(p);
	return err;
}

int upstream_forward(struct upstream *up, struct conn *c, unsigned int op,
		     uint32_t client_request_id, const uint8_t *body,
		     size_t len, uint64_t session_id,
		     const char *client_msg_id)
{
	Imgw__Upstream msg = IMGW__UPSTREAM__INIT;
	Imgw__Device dev = IMGW__DEVICE__INIT;
	struct upstream_request *r;
	int err;

	if (!upstream_is_up(up))
		return -ENOTCONN;
	if (c->n_requests >= UPSTREAM_MAX_REQUESTS_PER_CONN)
		return -EBUSY;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->client_msg_id = client_msg_id ? strdup(client_msg_id) : NULL;
	if (client_msg_id && !r->client_msg_id) {
		free(r);
		return -ENOMEM;
	}
	r->request_id = upstream_next_request_id(up);
	r->conn_id = c->id;
	r->op = op;
	r->client_request_id = client_request_id;
	r->session_id = session_id;

	fill_device(&dev, c);
	msg.device = &dev;
	msg.op = op;
	msg.client_request_id = client_request_id;
	msg.body.data = (uint8_t *)body;
	msg.body.len = len;
	err = upstream_send(up, OP_UPSTREAM, r->request_id, &msg.base);
	if (err) {
		free(r->client_msg_id);
		free(r);
		return err;
	}
	HASH_ADD(hh, up->requests, request_id, sizeof(r->request_id), r);
	DL_APPEND(c->requests, r);
	c->n_requests++;
	return 0;
}

void upstream_presence_offline(struct upstream *up, const struct conn *c)
{
	Imgw__Presence msg = IMGW__PRESENCE__INIT;
	Imgw__Device dev = IMGW__DEVICE__INIT;

	if (!upstream_is_up(up))
		return;
	fill_device(&dev, c);
	msg.device = &dev;
	msg.online = 0;
	upstream_send(up, OP_PRESENCE, 0, &msg.base);
}

int upstream_super_ack(struct upstream *up, uint64_t session_id,
		       uint32_t epoch, Imgw__SessionType type, uint32_t cached)
{
	Imgw__SuperAck msg = IMGW__SUPER_ACK__INIT;

	if (!upstream_is_up(up))
		return -ENOTCONN;
	msg.session_id = session_id;
	msg.epoch = epoch;
	msg.type = type;
	msg.cached = cached;
	return upstream_send(up, OP_SUPER_ACK, 0, &msg.base);
}

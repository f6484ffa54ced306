// SPDX-License-Identifier: MIT
/*
 * Gateway link listener and per-link frame loop; see link.h. The links are
 * few (one per gateway) but carry every login, message and push, so a link
 * buffers without limit up to LINK_OUT_CAP and is closed past it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <utlist.h>

#include "batch.h"
#include "handlers.h"
#include "httputil.h"
#include "imgw.pb-c.h"
#include "link.h"
#include "linkauth.h"
#include "log.h"
#include "pbcheck.h"
#include "superwire.h"
#include "wire.h"

/* A gateway that falls this far behind is dropped; it reconnects, registers
 * again and its clients sync. */
#define LINK_OUT_CAP (256u * 1024 * 1024)
/* A connection must REGISTER this soon after accept, or it is closed. */
#define LINK_REGISTER_TIMEOUT_SEC 5
/* Connections accepted and not yet registered, at most; newer ones are
 * closed at accept so that idle sockets cannot pile up. */
#define LINK_MAX_UNREGISTERED 64

struct link {
	struct link_server *ls;
	struct bufferevent *bev;
	uint64_t id;                 /* for logs, counts up from 1 */
	char peer[64];
	char *node_id;               /* set by REGISTER */
	int registered;              /* owns node_id in ls->by_node */
	int super_node;              /* super table index, or SUPERWIRE_NO_NODE */
	int closing;
	const char *close_reason;
	struct event *close_ev;
	struct event *register_timer; /* until REGISTER; NULL after */
	struct link *prev, *next;    /* ls->all */
	UT_hash_handle hh;           /* ls->by_node */
};

struct link_server {
	struct bizsvr *bz;
	struct evconnlistener *listener;
	struct link *all;
	struct link *by_node;
	unsigned int registered;
	unsigned int unregistered;   /* accepted links before REGISTER */
	uint64_t next_id;
	/* Connections closed over LINK_MAX_UNREGISTERED, for the log that
	 * reports them at most once a second. */
	uint64_t refused;
	int64_t refused_logged_ms;
	/* REGISTERs rejected for their link auth, and those not logged
	 * since the last report (at most one line a second). */
	uint64_t auth_rejected;
	uint64_t auth_unlogged;
	int64_t auth_logged_ms;
};

static void link_event_cb(struct bufferevent *bev, short what, void *arg);

struct link *link_find(struct link_server *ls, const char *node_id)
{
	struct link *l;

	HASH_FIND_STR(ls->by_node, node_id, l);
	return l;
}

unsigned int link_count(const struct link_server *ls)
{
	return ls->registered;
}

const char *link_node_id(const struct link *l)
{
	return l->node_id ? l->node_id : "";
}

struct link *link_next(struct link_server *ls, struct link *prev)
{
	return prev ? prev->hh.next : ls->by_node;
}

int link_super_node(const struct link *l)
{
	return l->super_node;
}

/* Ends the unregistered state of l: its timer and its count. */
static void link_registered(struct link *l)
{
	if (!l->register_timer)
		return;
	event_free(l->register_timer);
	l->register_timer = NULL;
	l->ls->unregistered--;
}

static void link_free(struct link *l, const char *reason)
{
	struct link_server *ls = l->ls;
	size_t dropped = 0;

	/* Messages posted before the close are pushed with the node still
	 * online, as they would have been without the batch. */
	batch_commit(ls->bz->batch);
	if (l->registered) {
		/* Only the node's current link is registered, so a replaced
		 * link's late close never marks the new link's node down. */
		HASH_DEL(ls->by_node, l);
		ls->registered--;
		dropped = presence_drop_node(ls->bz->presence, l->node_id);
		if (ls->bz->super)
			superwire_node_down(ls->bz->super, l->super_node);
	}
	pr_info("link %llu from %s closed: node %s, %s, %zu devices offline",
		(unsigned long long)l->id, l->peer,
		l->node_id ? l->node_id : "(unregistered)", reason, dropped);
	DL_DELETE(ls->all, l);
	link_registered(l);
	if (l->close_ev)
		event_free(l->close_ev);
	bufferevent_free(l->bev);
	free(l->node_id);
	free(l);
}

static void link_close_cb(evutil_socket_t fd, short what, void *arg)
{
	struct link *l = arg;

	link_free(l, l->close_reason);
}

void link_close_later(struct link *l, const char *reason)
{
	if (l->closing)
		return;
	l->closing = 1;
	l->close_reason = reason;
	bufferevent_disable(l->bev, EV_READ);
	l->close_ev = event_new(l->ls->bz->base, -1, 0, link_close_cb, l);
	if (!l->close_ev) {
		/* Without an event the link cannot be freed later: keep it
		 * flagged so that nothing more is sent or read. */
		pr_error("link %llu node %s: scheduling close failed: %s",
			 (unsigned long long)l->id, link_node_id(l),
			 strerror(ENOMEM));
		return;
	}
	event_active(l->close_ev, 0, 0);
}

static int link_check_backlog(struct link *l)
{
	size_t queued = evbuffer_get_length(bufferevent_get_output(l->bev));

	if (queued <= LINK_OUT_CAP)
		return 0;
	pr_warn("link %llu node %s: output backlog %zu bytes over %u, closing",
		(unsigned long long)l->id, link_node_id(l), queued,
		LINK_OUT_CAP);
	link_close_later(l, "output backlog");
	return -ENOBUFS;
}

int link_send(struct link *l, unsigned int op, uint32_t request_id,
	      const ProtobufCMessage *msg)
{
	int err;

	if (l->closing)
		return -ENOTCONN;
	err = wire_append(bufferevent_get_output(l->bev), op, request_id, msg);
	if (err < 0)
		return err;
	return link_check_backlog(l);
}

int link_send_raw(struct link *l, unsigned int op, uint32_t request_id,
		  const void *body, size_t len)
{
	int err;

	if (l->closing)
		return -ENOTCONN;
	err = wire_append_raw(bufferevent_get_output(l->bev), op, request_id,
			      body, len);
	if (err < 0)
		return err;
	return link_check_backlog(l);
}

static void link_kick(struct link *l, const Imgw__Device *dev,
		      const char *reason)
{
	Imgw__KickDevice kick = IMGW__KICK_DEVICE__INIT;
	Imgw__Device target = IMGW__DEVICE__INIT;
	int err;

	target.user_id = dev->user_id;
	target.device_id = dev->device_id;
	target.conn_id = dev->conn_id;
	kick.device = &target;
	kick.reason = (char *)reason;
	err = link_send(l, OP_KICK_DEVICE, 0, &kick.base);
	if (err < 0)
		pr_warn("link %llu node %s: sending KICK_DEVICE for %s/%s conn %llu failed: %s",
			(unsigned long long)l->id, link_node_id(l),
			dev->user_id, dev->device_id,
			(unsigned long long)dev->conn_id, strerror(-err));
}

/*
 * Records one device a registering gateway reports. A device already online
 * on another node keeps that record, and this gateway's connection is
 * kicked, so a device is never online twice.
 * XXX: After a daemon restart the first gateway to register keeps a device that two gateways report, even when the other login is newer.
 */
static void link_register_device(struct link *l, const Imgw__Device *dev)
{
	struct presence *p = l->ls->bz->presence;
	struct presence_device *cur;
	int err;

	if (!bizsvr_valid_id(dev->user_id) || !bizsvr_valid_id(dev->device_id)) {
		pr_warn("link %llu node %s: REGISTER lists an invalid device (conn %llu), skipping it",
			(unsigned long long)l->id, l->node_id,
			(unsigned long long)dev->conn_id);
		return;
	}
	cur = presence_find(p, dev->user_id, dev->device_id);
	if (cur && strcmp(cur->node->node_id, l->node_id) != 0) {
		pr_info("link %llu node %s: %s/%s conn %llu is already online on node %s conn %llu, kicking the reported one",
			(unsigned long long)l->id, l->node_id, dev->user_id,
			dev->device_id, (unsigned long long)dev->conn_id,
			cur->node->node_id, (unsigned long long)cur->conn_id);
		link_kick(l, dev, "duplicate login");
		return;
	}
	err = presence_set(p, dev->user_id, dev->device_id, l->node_id,
			   dev->conn_id,
			   bizsvr_valid_text(dev->platform, 64) ?
			   dev->platform : "");
	if (err < 0)
		pr_error("link %llu node %s: recording %s/%s conn %llu online failed: %s",
			 (unsigned long long)l->id, l->node_id, dev->user_id,
			 dev->device_id, (unsigned long long)dev->conn_id,
			 strerror(-err));
}

/* Takes over node_id for l, closing an older link of the same node. */
static int link_claim_node(struct link *l, const char *node_id)
{
	struct link_server *ls = l->ls;
	struct link *old = link_find(ls, node_id);

	l->node_id = strdup(node_id);
	if (!l->node_id)
		return -ENOMEM;
	if (old) {
		pr_info("link %llu from %s: node %s registered again, replacing link %llu",
			(unsigned long long)l->id, l->peer, node_id,
			(unsigned long long)old->id);
		link_free(old, "replaced by a newer link");
	}
	HASH_ADD_KEYPTR(hh, ls->by_node, l->node_id, strlen(l->node_id), l);
	ls->registered++;
	l->registered = 1;
	link_registered(l);
	return 0;
}

/* Frees l once its output, the REGISTER_RESULT of a rejected REGISTER,
 * is written. */
static void link_flushed_cb(struct bufferevent *bev, void *arg)
{
	struct link *l = arg;

	link_free(l, l->close_reason);
}

/*
 * Closes l after its queued output is sent. The REGISTER timer stays
 * armed, so a peer that never reads is still freed within
 * LINK_REGISTER_TIMEOUT_SEC of accept.
 */
static void link_close_after_flush(struct link *l, const char *reason)
{
	struct evbuffer *out = bufferevent_get_output(l->bev);

	if (evbuffer_get_length(out) == 0) {
		link_close_later(l, reason);
		return;
	}
	l->closing = 1;
	l->close_reason = reason;
	bufferevent_disable(l->bev, EV_READ);
	bufferevent_setwatermark(l->bev, EV_WRITE, 0, 0);
	bufferevent_setcb(l->bev, NULL, link_flushed_cb, link_event_cb, l);
}

/* Logs a rejected REGISTER, at most one line a second with the count of
 * the ones left out, so a flood of forged REGISTERs cannot flood the log. */
static void link_log_auth_rejected(struct link *l, const char *node_id,
				   const char *reason)
{
	struct link_server *ls = l->ls;
	int64_t now = bizsvr_mono_ms();

	ls->auth_rejected++;
	if (ls->auth_logged_ms && now - ls->auth_logged_ms < 1000) {
		ls->auth_unlogged++;
		return;
	}
	pr_warn("link %llu from %s: rejected REGISTER of node %s: %s (%llu rejected in all, %llu not logged since the last report)",
		(unsigned long long)l->id, l->peer, node_id, reason,
		(unsigned long long)ls->auth_rejected,
		(unsigned long long)ls->auth_unlogged);
	ls->auth_unlogged = 0;
	ls->auth_logged_ms = now;
}

/*
 * Checks reg's link auth when the daemon has a link secret. On failure it
 * sends REGISTER_RESULT with ERROR_AUTH_FAILED and closes l once that is
 * written, before the node's current link or presence is touched. Returns 0 when reg may
 * register, 1 when it was rejected, or a negative errno.
 * XXX: Without TLS, a REGISTER captured on the network can be replayed
 * within LINKAUTH_MAX_SKEW_SEC of its auth_time and replaces the node's
 * link. The MAC does not cover the device list or any later frame.
 */
static int link_check_auth(struct link *l, uint32_t request_id,
			   const Imgw__Register *reg)
{
	Imgw__RegisterResult res = IMGW__REGISTER_RESULT__INIT;
	const char *secret = l->ls->bz->cfg->link_secret;
	const char *reason;
	int status, err;

	if (!secret)
		return 0;
	status = linkauth_verify(secret, reg->node_id, reg->boot_id,
				 reg->auth_time, reg->auth.data, reg->auth.len,
				 (int64_t)(bizsvr_now_ms() / 1000));
	if (status == LINKAUTH_OK)
		return 0;
	reason = linkauth_status_str(status);
	link_log_auth_rejected(l, reg->node_id, reason);
	res.code = IMGW__ERROR_CODE__ERROR_AUTH_FAILED;
	res.reason = (char *)reason;
	err = link_send(l, OP_REGISTER_RESULT, request_id, &res.base);
	if (err < 0)
		return err;
	link_close_after_flush(l, "link auth rejected");
	return 1;
}

static int link_handle_register(struct link *l, uint32_t request_id,
				const uint8_t *body, size_t len)
{
	Imgw__RegisterResult res = IMGW__REGISTER_RESULT__INIT;
	struct bizsvr *bz = l->ls->bz;
	Imgw__Register *reg;
	int err;

	reg = pb_check_strings(&imgw__register__descriptor, body, len, 1) == 0 ?
	      imgw__register__unpack(NULL, len, body) : NULL;
	if (!reg || !bizsvr_valid_id(reg->node_id)) {
		pr_warn("link %llu from %s: invalid REGISTER body (%zu bytes), closing",
			(unsigned long long)l->id, l->peer, len);
		imgw__register__free_unpacked(reg, NULL);
		return -EPROTO;
	}
	err = link_check_auth(l, request_id, reg);
	if (err != 0) {
		imgw__register__free_unpacked(reg, NULL);
		return err < 0 ? err : 0;
	}
	err = link_claim_node(l, reg->node_id);
	if (err < 0) {
		pr_error("link %llu from %s: registering node %s failed: %s",
			 (unsigned long long)l->id, l->peer, reg->node_id,
			 strerror(-err));
		imgw__register__free_unpacked(reg, NULL);
		return err;
	}
	for (size_t i = 0; i < reg->n_devices; i++)
		link_register_device(l, reg->devices[i]);
	if (bz->super)
		l->super_node = superwire_node_up(bz->super, l->node_id,
						  reg->boot_id);
	pr_info("link %llu from %s registered node %s boot %s with %zu devices",
		(unsigned long long)l->id, l->peer, l->node_id, reg->boot_id,
		reg->n_devices);
	imgw__register__free_unpacked(reg, NULL);

	res.code = IMGW__ERROR_CODE__ERROR_NONE;
	res.daemon_boot_id = bz->boot_id;
	err = link_send(l, OP_REGISTER_RESULT, request_id, &res.base);
	if (err < 0)
		return err;
	/* The new registration has no acknowledged transition. */
	if (bz->super)
		superwire_node_resend(bz->super, l->super_node);
	return 0;
}

/* Returns 0, or a negative errno when the link must close. */
static int link_dispatch(struct link *l, const struct frame_header *hdr,
			 const uint8_t *body)
{
	struct bizsvr *bz = l->ls->bz;
	size_t len = hdr->body_len;

	if (!l->registered) {
		if (hdr->op == OP_REGISTER)
			return link_handle_register(l, hdr->request_id, body,
						    len);
		pr_warn("link %llu from %s: op %u before REGISTER, closing",
			(unsigned long long)l->id, l->peer, hdr->op);
		return -EPROTO;
	}
	/* Only a SEND in an UPSTREAM may join the open batch (see batch.h). */
	if (hdr->op != OP_UPSTREAM)
		batch_commit(bz->batch);
	switch (hdr->op) {
	case OP_AUTH:
		auth_handle(bz, l, hdr->request_id, body, len);
		return 0;
	case OP_UPSTREAM:
		msg_handle_upstream(bz, l, hdr->request_id, body, len);
		return 0;
	case OP_PRESENCE:
		auth_handle_presence(bz, l, body, len);
		return 0;
	case OP_SUPER_ACK:
		if (bz->super)
			superwire_handle_ack(bz->super, l, l->super_node, body,
					     len);
		else
			pr_debug("link %llu node %s: SUPER_ACK while super sessions are disabled, ignoring it",
				 (unsigned long long)l->id, l->node_id);
		return 0;
	case OP_REGISTER:
		pr_warn("link %llu node %s: second REGISTER on one link, closing",
			(unsigned long long)l->id, l->node_id);
		return -EPROTO;
	default:
		pr_warn("link %llu node %s: unexpected op %u (%s), ignoring it",
			(unsigned long long)l->id, l->node_id, hdr->op,
			frame_op_name(hdr->op) ? frame_op_name(hdr->op) : "unknown");
		return 0;
	}
}

/* Rejects any op but REGISTER on an unregistered link as soon as its header
 * arrives, before the body is buffered. */
static int link_check_unregistered(struct link *l, struct evbuffer *in,
				   const struct frame_header *hdr)
{
	if (l->registered || hdr->op == OP_REGISTER ||
	    evbuffer_get_length(in) < FRAME_HEADER_LEN)
		return 0;
	pr_warn("link %llu from %s: op %u before REGISTER, closing",
		(unsigned long long)l->id, l->peer, hdr->op);
	return -EPROTO;
}

static void link_read_cb(struct bufferevent *bev, void *arg)
{
	struct link *l = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct frame_header hdr;
	const uint8_t *body;
	int rc, err;

	while (!l->closing) {
		rc = wire_peek(in, FRAME_HARD_MAX_BODY, &hdr);
		if (rc >= 0 && link_check_unregistered(l, in, &hdr) < 0) {
			link_free(l, "protocol error");
			return;
		}
		if (rc == 0)
			return;
		if (rc < 0) {
			pr_warn("link %llu from %s: invalid frame header: %s, closing",
				(unsigned long long)l->id, l->peer,
				frame_status_str(rc));
			link_free(l, "invalid frame header");
			return;
		}
		body = wire_body(in, &hdr);
		err = body ? link_dispatch(l, &hdr, body) : -ENOMEM;
		wire_consume(in, &hdr);
		if (err < 0) {
			link_free(l, "protocol error");
			return;
		}
	}
}

static void link_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct link *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_EOF) {
		link_free(l, "closed by the gateway");
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		pr_warn("link %llu from %s node %s: socket error: %s",
			(unsigned long long)l->id, l->peer, link_node_id(l),
			strerror(err));
		link_free(l, "socket error");
	}
}

static void format_peer(const struct sockaddr *sa, char *out, size_t cap)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];
	socklen_t len = sa->sa_family == AF_INET6 ?
			sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

	if (getnameinfo(sa, len, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, cap, "?");
		return;
	}
	snprintf(out, cap, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
		 host, port);
}

static void link_register_timeout_cb(evutil_socket_t fd, short what,
				     void *arg)
{
	struct link *l = arg;

	pr_warn("link %llu from %s: no REGISTER within %d s, closing",
		(unsigned long long)l->id, l->peer, LINK_REGISTER_TIMEOUT_SEC);
	link_free(l, "register timeout");
}

/* Returns whether another unregistered link may be accepted, and logs the
 * refused ones at most once a second. */
static int link_accept_allowed(struct link_server *ls, const char *peer)
{
	int64_t now = bizsvr_mono_ms();

	if (ls->unregistered < LINK_MAX_UNREGISTERED)
		return 1;
	ls->refused++;
	if (now - ls->refused_logged_ms >= 1000) {
		pr_warn("link: closing connection from %s: %u links await REGISTER already (%llu refused in all)",
			peer, ls->unregistered,
			(unsigned long long)ls->refused);
		ls->refused_logged_ms = now;
	}
	return 0;
}

static void link_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
			   struct sockaddr *sa, int socklen, void *arg)
{
	struct link_server *ls = arg;
	struct timeval register_tv = { .tv_sec = LINK_REGISTER_TIMEOUT_SEC };
	struct link *l;
	char peer[64];
	int one = 1;

	format_peer(sa, peer, sizeof(peer));
	if (!link_accept_allowed(ls, peer)) {
		evutil_closesocket(fd);
		return;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		pr_error("link: accepting fd %d failed: %s", (int)fd,
			 strerror(ENOMEM));
		evutil_closesocket(fd);
		return;
	}
	l->ls = ls;
	l->id = ++ls->next_id;
	l->super_node = SUPERWIRE_NO_NODE;
	memcpy(l->peer, peer, sizeof(l->peer));
	/* Replies and pushes are small and latency-bound. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	l->bev = bufferevent_socket_new(ls->bz->base, fd,
					BEV_OPT_CLOSE_ON_FREE);
	if (!l->bev) {
		pr_error("link: creating a bufferevent for fd %d from %s failed: %s",
			 (int)fd, l->peer, strerror(ENOMEM));
		evutil_closesocket(fd);
		free(l);
		return;
	}
	l->register_timer = evtimer_new(ls->bz->base, link_register_timeout_cb,
					l);
	if (!l->register_timer) {
		pr_error("link: creating the REGISTER timer for fd %d from %s failed: %s",
			 (int)fd, l->peer, strerror(ENOMEM));
		bufferevent_free(l->bev);
		free(l);
		return;
	}
	ls->unregistered++;
	evtimer_add(l->register_timer, &register_tv);
	bufferevent_setcb(l->bev, link_read_cb, NULL, link_event_cb, l);
	bufferevent_enable(l->bev, EV_READ | EV_WRITE);
	DL_APPEND(ls->all, l);
	pr_info("link %llu: gateway connected from %s",
		(unsigned long long)l->id, l->peer);
}

static void link_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	/* XXX: On EMFILE the listener keeps retrying at once, so the loop spins until a descriptor is freed. */
	pr_warn("link: accept failed: %s", strerror(err));
}

static int addr_is_loopback(const struct sockaddr *sa)
{
	const struct in6_addr *a6;

	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr)
			>> 24) == 127;
	if (sa->sa_family != AF_INET6)
		return 0;
	a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	return IN6_IS_ADDR_LOOPBACK(a6) ||
	       (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
}

/*
 * Warns once at start when gateways can register without the link secret
 * from beyond this host.
 * XXX: Without --link-secret any client that reaches the listen address can register as any node, then send and sync as any user it lists.
 */
static void link_warn_unauthenticated(struct bizsvr *bz,
				      const struct sockaddr *sa)
{
	if (bz->cfg->link_secret) {
		pr_info("link: gateways must sign REGISTER with the link secret");
		return;
	}
	if (!addr_is_loopback(sa))
		pr_warn("link: gateway links on %s are not authenticated: set --link-secret",
			bz->cfg->listen);
}

static struct evconnlistener *link_listen(struct bizsvr *bz,
					  struct link_server *ls)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct evconnlistener *lev = NULL;
	struct addrinfo *res;
	char host[256], port_text[8];
	uint16_t port;
	int rc;

	if (parse_host_port(bz->cfg->listen, host, sizeof(host), &port) < 0) {
		errno = EINVAL;
		return NULL;
	}
	snprintf(port_text, sizeof(port_text), "%u", port);
	rc = getaddrinfo(host[0] ? host : NULL, port_text, &hints, &res);
	if (rc != 0) {
		pr_error("link: resolving listen address %s failed: %s",
			 bz->cfg->listen, gai_strerror(rc));
		errno = EADDRNOTAVAIL;
		return NULL;
	}
	lev = evconnlistener_new_bind(bz->base, link_accept_cb, ls,
				      LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
				      LEV_OPT_CLOSE_ON_EXEC, -1,
				      res->ai_addr, (int)res->ai_addrlen);
	rc = errno;
	if (lev)
		link_warn_unauthenticated(bz, res->ai_addr);
	freeaddrinfo(res);
	errno = rc;
	return lev;
}

struct link_server *link_server_new(struct bizsvr *bz)
{
	struct link_server *ls = calloc(1, sizeof(*ls));
	int err;

	if (!ls)
		return NULL;
	ls->bz = bz;
	ls->listener = link_listen(bz, ls);
	if (!ls->listener) {
		err = errno;
		free(ls);
		errno = err;
		return NULL;
	}
	evconnlistener_set_error_cb(ls->listener, link_accept_error_cb);
	return ls;
}

void link_server_free(struct link_server *ls)
{
	if (!ls)
		return;
	evconnlistener_free(ls->listener);
	while (ls->all)
		link_free(ls->all, "daemon stopping");
	free(ls);
}

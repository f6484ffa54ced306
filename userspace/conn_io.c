// SPDX-License-Identifier: MIT
/*
 * Client sockets; see conn_io.h. Outside shutdown, a connection is freed only
 * from its close_timer callback, so a struct conn stays valid for the rest of the
 * loop pass in which it was closed, even when a caller keeps a list of them.
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
#include <sys/uio.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "client.h"
#include "clock.h"
#include "conn_io.h"
#include "httputil.h"
#include "kmirror.h"
#include "log.h"
#include "sendring.h"
#include "upstream.h"
#include "wire.h"
#include "ws.h"

/* Accept errors such as EMFILE pause the listener this long. */
#define ACCEPT_PAUSE_MS 100
#define LISTEN_BACKLOG 4096

static void conn_free(struct conn *c)
{
	if (c->flush_pending)
		TAILQ_REMOVE(&c->gw->flush_list, c, flush_link);
	upstream_conn_gone(c->gw->upstream, c);
	sess_cache_conn_gone(&c->gw->caches, c);
	kmirror_sock_release(c->gw->kmirror, c);
	conn_registry_remove(&c->gw->conns, c);
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->idle_timer)
		event_free(c->idle_timer);
	if (c->close_timer)
		event_free(c->close_timer);
	conn_clear_device(c);
	ws_detach(c);
	free(c);
}

static void close_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	pr_debug("conn %llu peer %s freed", (unsigned long long)c->id, c->peer);
	conn_free(c);
}

static void schedule_free(struct conn *c)
{
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	event_active(c->close_timer, EV_TIMEOUT, 1);
}

static void idle_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	const char *reason;

	if (c->state == CONN_LOGGED_IN)
		reason = "heartbeat timeout";
	else
		reason = "login timeout";
	pr_info("conn %llu peer %s user %s device %s: %s, kicking",
		(unsigned long long)c->id, c->peer,
		c->user_id ? c->user_id : "-",
		c->device_id ? c->device_id : "-", reason);
	conn_kick(c, reason);
}

void conn_touch(struct conn *c)
{
	evtimer_add(c->idle_timer, c->gw->heartbeat_tv);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->state != CONN_CLOSING) {
		/* Drained, so conn_flush_cb() writes from now on. */
		c->write_armed = 0;
		bufferevent_disable(bev, EV_WRITE);
		return;
	}
	if (!c->close_on_drain)
		return;
	/*
	 * The last frame is out. Half-close and wait for the peer's EOF
	 * rather than close() now: closing with unread input would send a
	 * RST that can discard the frame before the peer reads it.
	 */
	c->close_on_drain = 0;
	/* A peer that half-closed sends nothing more, so no RST can follow. */
	if (c->peer_eof || shutdown(c->fd, SHUT_WR) < 0)
		schedule_free(c);
}

/*
 * Stops reading after the peer's EOF. A half-closed peer may still read, so
 * a LOGIN or requests in flight get their replies first, and the close timer
 * frees the connection if the replies do not come.
 */
static void conn_peer_eof(struct conn *c)
{
	c->peer_eof = 1;
	bufferevent_disable(c->bev, EV_READ);
	if (c->state == CONN_LOGGING_IN || c->n_requests) {
		evtimer_add(c->close_timer,
			    &(struct timeval){ .tv_sec = CONN_CLOSE_LINGER_SEC });
		return;
	}
	conn_close(c, "peer closed", 1);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (c->state == CONN_CLOSING) {
		schedule_free(c);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		pr_debug("conn %llu peer %s: peer closed the connection",
			 (unsigned long long)c->id, c->peer);
		conn_peer_eof(c);
		return;
	}
	pr_info("conn %llu peer %s: socket error: %s",
		(unsigned long long)c->id, c->peer, strerror(err));
	conn_close(c, "socket error", 0);
}

void conn_close(struct conn *c, const char *reason, int flush)
{
	enum conn_state prev = c->state;

	if (prev == CONN_CLOSING) {
		if (!flush)
			schedule_free(c);
		return;
	}
	c->state = CONN_CLOSING;
	evtimer_del(c->idle_timer);
	conn_registry_unbind_device(&c->gw->conns, c);
	/* No broadcast may reach a closing connection. */
	sess_cache_conn_gone(&c->gw->caches, c);
	kmirror_sock_release(c->gw->kmirror, c);
	pr_debug("conn %llu peer %s closing: %s", (unsigned long long)c->id,
		 c->peer, reason);
	if (prev == CONN_LOGGED_IN)
		upstream_presence_offline(c->gw->upstream, c);
	if (flush && c->ws)
		ws_conn_closing(c, reason);

	if (!flush ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		schedule_free(c);
		return;
	}
	/* Keep reading (and discarding) so the peer does not receive a RST;
	 * after the peer's EOF there is nothing left to read. */
	c->close_on_drain = 1;
	bufferevent_enable(c->bev, c->peer_eof ? EV_WRITE :
			   EV_READ | EV_WRITE);
	evtimer_add(c->close_timer,
		    &(struct timeval){ .tv_sec = CONN_CLOSE_LINGER_SEC });
}

void conn_kick(struct conn *c, const char *reason)
{
	Imgw__Kick kick = IMGW__KICK__INIT;

	kick.reason = (char *)reason;
	if (conn_send(c, OP_KICK, 0, &kick.base) == 0)
		c->gw->stats.kicks++;
	conn_close(c, reason, 1);
}

/* Lets the bufferevent's write event send the rest once the kernel buffer
 * has room; it stays registered until the output drains. */
static void conn_arm_write(struct conn *c)
{
	c->write_armed = 1;
	if (bufferevent_enable(c->bev, EV_WRITE) < 0) {
		pr_warn("conn %llu peer %s fd %d: registering the write event failed, closing",
			(unsigned long long)c->id, c->peer, c->fd);
		conn_close(c, "socket error", 0);
	}
}

/*
 * Takes the result of one write of c's output: res bytes sent or a negative
 * errno. Returns 1 when output remains and the socket may take more now.
 */
static int conn_wrote(struct conn *c, ssize_t res)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	c->gw->stats.socket_writes++;
	if (res > 0) {
		/* The bufferevent keeps the head frozen outside its own
		 * writes; evbuffer_drain() fails on a frozen head. */
		evbuffer_unfreeze(out, 1);
		evbuffer_drain(out, (size_t)res);
		evbuffer_freeze(out, 1);
		return evbuffer_get_length(out) > 0;
	}
	if (res == -EINTR)
		return 1;
	if (res == 0 || res == -EAGAIN || res == -EWOULDBLOCK) {
		conn_arm_write(c);
		return 0;
	}
	pr_info("conn %llu peer %s: writing to the socket failed: %s",
		(unsigned long long)c->id, c->peer, strerror((int)-res));
	conn_close(c, "socket error", 0);
	return 0;
}

/* Writes c's output with writev() until it is empty or the kernel buffer
 * is full. */
static void conn_flush(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct iovec iov[SENDRING_IOV];
	ssize_t res;
	int n;

	do {
		if (!sendring_peek(out, c->gw->cfg.out_cap, iov, &n))
			return;
		res = writev(c->fd, iov, n);
		if (res < 0)
			res = -errno;
	} while (conn_wrote(c, res));
}

/* Returns whether c's queued output goes out in this flush. A closing
 * connection's write event sends its last bytes. */
static int conn_flush_due(const struct conn *c)
{
	return c->state != CONN_CLOSING && !c->write_armed;
}

static void conn_flush_each(struct gateway *gw)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&gw->flush_list))) {
		TAILQ_REMOVE(&gw->flush_list, c, flush_link);
		c->flush_pending = 0;
		if (conn_flush_due(c))
			conn_flush(c);
	}
}

static void conn_ring_done(struct conn *c, ssize_t res)
{
	if (res == -ECANCELED) {
		conn_flush(c);
		return;
	}
	if (!conn_wrote(c, res))
		return;
	/* More output than one entry holds: send the rest next round. */
	c->flush_pending = 1;
	TAILQ_INSERT_TAIL(&c->gw->flush_list, c, flush_link);
}

/* Submits the queued sends; on failure, falls back to writev() for good. */
static void conn_ring_submit(struct gateway *gw)
{
	int err;

	gw->stats.ring_submits++;
	err = sendring_submit(gw->sendring, conn_ring_done);
	if (!err)
		return;
	pr_warn("io_uring: submitting sends failed: %s; writing with writev() from now on",
		strerror(-err));
	sendring_free(gw->sendring);
	gw->sendring = NULL;
}

/* Adds c's output to the ring and submits once the ring is full. */
static void conn_ring_add(struct gateway *gw, struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (!evbuffer_get_length(out))
		return;
	/* sendring_full() is checked after every add, so this fails only
	 * if the kernel's submission queue is shorter than asked for. */
	if (sendring_add(gw->sendring, c, c->fd, out, gw->cfg.out_cap) < 0) {
		conn_flush(c);
		return;
	}
	if (sendring_full(gw->sendring))
		conn_ring_submit(gw);
}

/* Sends the output of every connection on the flush list with as few
 * io_uring_enter() calls as SENDRING_ENTRIES and SENDRING_MAX_BYTES allow. */
static void conn_flush_ring(struct gateway *gw)
{
	struct conn *c;

	while (gw->sendring) {
		c = TAILQ_FIRST(&gw->flush_list);
		if (!c) {
			/* A submit may put connections back on the list. */
			if (!sendring_pending(gw->sendring))
				return;
			conn_ring_submit(gw);
			continue;
		}
		TAILQ_REMOVE(&gw->flush_list, c, flush_link);
		c->flush_pending = 0;
		if (conn_flush_due(c))
			conn_ring_add(gw, c);
	}
	/* The ring failed: the rest goes out with writev(). */
	conn_flush_each(gw);
}

/*
 * Runs once in the loop pass after frames were queued, after that pass's
 * I/O callbacks, so frames read from the link in two passes share a write.
 * Each connection gets all of its new frames in one write, and no
 * epoll_ctl unless its kernel buffer is full. With io_uring, the writes of
 * all connections go to the kernel in one io_uring_enter().
 */
static void conn_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gateway *gw = arg;
	struct conn *first = TAILQ_FIRST(&gw->flush_list);
	uint64_t done_ns;

	/* A single connection, as in one-to-one chat, gains nothing from a
	 * batch, so it takes the plain writev(). */
	if (gw->sendring && first && TAILQ_NEXT(first, flush_link))
		conn_flush_ring(gw);
	else
		conn_flush_each(gw);
	done_ns = clock_ns(CLOCK_MONOTONIC);
	histogram_observe(&gw->flush_duration,
			  (done_ns - gw->flush_queued_ns) / 1000);
}

static void conn_schedule_flush(struct conn *c)
{
	struct gateway *gw = c->gw;

	if (c->flush_pending || c->write_armed)
		return;
	/* A zero timeout fires after the next epoll_wait()'s callbacks. */
	if (TAILQ_EMPTY(&gw->flush_list)) {
		evtimer_add(gw->flush_event, &(struct timeval){ 0 });
		gw->flush_queued_ns = clock_ns(CLOCK_MONOTONIC);
	}
	c->flush_pending = 1;
	TAILQ_INSERT_TAIL(&gw->flush_list, c, flush_link);
}

/*
 * Schedules the flush of a frame just appended to c's output, or closes c as
 * slow when its output is over out_cap. A frame that is alone in the output
 * passes at any size when over_cap_ok is set.
 */
static int conn_commit(struct conn *c, int over_cap_ok)
{
	struct gateway *gw = c->gw;
	size_t queued = evbuffer_get_length(bufferevent_get_output(c->bev));

	gw->stats.frames_sent++;
	if (queued <= gw->cfg.out_cap || over_cap_ok) {
		conn_schedule_flush(c);
		return 0;
	}
	gw->stats.slow_closes++;
	pr_warn("conn %llu peer %s user %s device %s: output buffer %zu bytes over out_cap %zu, closing as slow",
		(unsigned long long)c->id, c->peer,
		c->user_id ? c->user_id : "-",
		c->device_id ? c->device_id : "-", queued, gw->cfg.out_cap);
	conn_close(c, "slow", 0);
	return -ENOBUFS;
}

int conn_commit_frame(struct conn *c)
{
	return conn_commit(c, 0);
}

/*
 * Commits a reply to one of c's requests. A reply that finds the output
 * empty is sent whatever its size, because a SYNC_RESULT page of the largest
 * messages is over the default out_cap and the client is not behind.
 */
static int conn_commit_reply(struct conn *c, size_t queued_before)
{
	return conn_commit(c, queued_before == 0);
}

int conn_send(struct conn *c, unsigned int op, uint32_t request_id,
	      const ProtobufCMessage *msg)
{
	size_t queued;
	int err;

	if (c->state == CONN_CLOSING)
		return -EPIPE;
	queued = evbuffer_get_length(bufferevent_get_output(c->bev));
	if (c->ws)
		err = ws_append_frame(c, op, request_id, msg, NULL, 0);
	else
		err = wire_append(bufferevent_get_output(c->bev), op,
				  request_id, msg);
	if (err)
		return err;
	return conn_commit_reply(c, queued);
}

int conn_send_raw(struct conn *c, unsigned int op, uint32_t request_id,
		  const void *body, size_t len)
{
	size_t queued;
	int err;

	if (c->state == CONN_CLOSING)
		return -EPIPE;
	queued = evbuffer_get_length(bufferevent_get_output(c->bev));
	if (c->ws)
		err = ws_append_frame(c, op, request_id, NULL, body, len);
	else
		err = wire_append_raw(bufferevent_get_output(c->bev), op,
				      request_id, body, len);
	if (err)
		return err;
	return conn_commit_reply(c, queued);
}

static void format_peer(const struct sockaddr *sa, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned int port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(out, cap, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(out, cap, "[%s]:%u", host, port);
	} else {
		snprintf(out, cap, "unknown");
	}
}

static int conn_setup_bev(struct conn *c)
{
	struct gateway *gw = c->gw;
	size_t max_write = gw->cfg.out_cap;

	c->bev = bufferevent_socket_new(gw->base, c->fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev)
		return -ENOMEM;
	/*
	 * Frames go out from conn_flush_cb(); the write event is enabled
	 * only while the kernel buffer is full or the connection closes,
	 * and then sends up to out_cap bytes per writev.
	 */
	if (max_write > EV_SSIZE_MAX)
		max_write = EV_SSIZE_MAX;
	bufferevent_set_max_single_write(c->bev, (ev_ssize_t)max_write);
	/* Read at most one maximal frame ahead of the parser. */
	bufferevent_setwatermark(c->bev, EV_READ, 0,
				 FRAME_HEADER_LEN + gw->cfg.max_frame);
	bufferevent_setcb(c->bev, client_read_cb, conn_write_cb,
			  conn_event_cb, c);
	/* A new bufferevent has its write event on; the flush owns writing. */
	bufferevent_disable(c->bev, EV_WRITE);
	if (bufferevent_enable(c->bev, EV_READ) < 0)
		return -EIO;
	return 0;
}

static struct conn *conn_new(struct gateway *gw, int fd,
			     const struct sockaddr *sa)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c)
		return NULL;
	c->gw = gw;
	c->fd = fd;
	format_peer(sa, c->peer, sizeof(c->peer));
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		pr_warn("conn peer %s fd %d: setting TCP_NODELAY failed: %s",
			c->peer, fd, strerror(errno));
	c->idle_timer = evtimer_new(gw->base, idle_timer_cb, c);
	c->close_timer = evtimer_new(gw->base, close_timer_cb, c);
	if (!c->idle_timer || !c->close_timer || conn_setup_bev(c) < 0) {
		if (!c->bev)
			evutil_closesocket(fd);
		c->id = 0;
		conn_free(c);
		errno = ENOMEM;
		return NULL;
	}
	conn_registry_add(&gw->conns, c);
	evtimer_add(c->idle_timer, gw->login_tv);
	return c;
}

static void accept_cb(struct evconnlistener *listener, evutil_socket_t fd,
		      struct sockaddr *sa, int socklen, void *arg)
{
	struct gateway *gw = arg;
	struct conn *c;

	gw->stats.connections_accepted++;
	c = conn_new(gw, fd, sa);
	if (!c) {
		pr_warn("accepting fd %d failed: %s", fd, strerror(errno));
		return;
	}
	pr_debug("conn %llu peer %s fd %d accepted", (unsigned long long)c->id,
		 c->peer, fd);
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gateway *gw = arg;

	if (gw->listener)
		evconnlistener_enable(gw->listener);
}

static void accept_error_cb(struct evconnlistener *listener, void *arg)
{
	struct gateway *gw = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval pause = { .tv_usec = ACCEPT_PAUSE_MS * 1000 };

	/* Out of descriptors: retrying at once would spin the loop. */
	pr_warn("accept on %s failed: %s; pausing accepts for %d ms",
		gw->cfg.listen, strerror(err), ACCEPT_PAUSE_MS);
	evconnlistener_disable(listener);
	evtimer_add(gw->accept_pause_timer, &pause);
}

static int resolve_listen(const char *text, struct sockaddr_storage *ss,
			  int *len)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *res;
	char host[256], port[8];
	uint16_t port_num;
	int rc;

	if (parse_host_port(text, host, sizeof(host), &port_num) < 0)
		return -EINVAL;
	snprintf(port, sizeof(port), "%u", port_num);
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc) {
		pr_error("resolving listen address %s failed: %s", text,
			 gai_strerror(rc));
		return -EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = (int)res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Creates the io_uring for batched writes unless --flush-writev is set
 * or the kernel refuses it. */
static void conn_io_open_ring(struct gateway *gw)
{
	if (gw->cfg.flush_writev) {
		pr_info("writing client output with writev() (--flush-writev)");
		return;
	}
	gw->sendring = sendring_new();
	if (gw->sendring) {
		pr_info("writing client output through io_uring, up to %d connections per io_uring_enter()",
			SENDRING_ENTRIES);
		return;
	}
	pr_warn("io_uring is not available (%s); writing client output with writev()",
		strerror(errno));
}

int conn_io_listen(struct gateway *gw)
{
	struct sockaddr_storage ss;
	unsigned int flags;
	int len, err;

	err = resolve_listen(gw->cfg.listen, &ss, &len);
	if (err)
		return err;
	gw->accept_pause_timer = evtimer_new(gw->base, accept_resume_cb, gw);
	if (!gw->accept_pause_timer)
		return -ENOMEM;
	TAILQ_INIT(&gw->flush_list);
	gw->flush_event = evtimer_new(gw->base, conn_flush_cb, gw);
	if (!gw->flush_event)
		return -ENOMEM;
	conn_io_open_ring(gw);
	flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
		LEV_OPT_CLOSE_ON_EXEC;
	/* Workers each bind the port; the kernel spreads new connections. */
	if (gw->cfg.workers > 1)
		flags |= LEV_OPT_REUSEABLE_PORT;
	gw->listener = evconnlistener_new_bind(gw->base, accept_cb, gw, flags,
					       LISTEN_BACKLOG,
					       (struct sockaddr *)&ss, len);
	if (!gw->listener) {
		err = -errno;
		pr_error("listening on %s failed: %s", gw->cfg.listen,
			 strerror(-err));
		return err ? err : -EIO;
	}
	evconnlistener_set_error_cb(gw->listener, accept_error_cb);
	return 0;
}

void conn_io_shutdown(struct gateway *gw)
{
	struct conn *c, *tmp;

	if (gw->listener) {
		evconnlistener_free(gw->listener);
		gw->listener = NULL;
	}
	if (gw->accept_pause_timer) {
		event_free(gw->accept_pause_timer);
		gw->accept_pause_timer = NULL;
	}
	conn_registry_for_each(&gw->conns, c, tmp)
		conn_free(c);
	if (gw->flush_event) {
		event_free(gw->flush_event);
		gw->flush_event = NULL;
	}
	sendring_free(gw->sendring);
	gw->sendring = NULL;
}

// SPDX-License-Identifier: MIT
/*
 * imgw-bench: a load generator for one big session or many small ones. It
 * creates a group of --users members through the admin API, or --groups
 * groups with Zipf sizes and each member in one. It forks worker processes,
 * each of which logs in a share of the members over one or more gateways,
 * and can pin the sessions normal or super. Then it publishes --messages
 * messages through the admin API or as a client SEND, at a fixed rate or as
 * fast as possible with a bounded number in flight. Every payload carries its
 * publish time (CLOCK_REALTIME ns), so the workers measure the latency of
 * each delivery and the time until the last member has each message. Workers
 * check loss, duplicates and order by sequence number per receiver and
 * session (each receiver is in one session), and send their figures to the
 * parent through a socketpair. The parent reads the CPU time and peak RSS of
 * the daemons it is given from /proc, prints a summary and writes CSV or
 * JSON. It exits 1 when a delivery was lost or duplicated, a publish failed,
 * or a member failed to log in or was disconnected.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "admin_client.h"
#include "benchrun.h"
#include "benchstat.h"
#include "client.h"
#include "httputil.h"
#include "imgw.pb-c.h"
#include "token.h"
#include "wire.h"

#define NSEC_PER_SEC 1000000000ULL
#define NSEC_PER_MSEC 1000000ULL
#define NSEC_PER_USEC 1000ULL
#define BENCH_MAX_GATEWAYS 16
#define BENCH_MAX_PIDS 16
#define BENCH_MAX_IN_FLIGHT 256
#define BENCH_CONNECT_WINDOW 64         /* connects and logins in flight per worker */
#define BENCH_STALL_SEC 15              /* give up connecting after no progress */
#define BENCH_HEARTBEAT_SEC 20
#define BENCH_TOKEN_TTL 7200
#define BENCH_CONVERGE_SEC 20
#define BENCH_DRAIN_IDLE_SEC 5          /* end the drain after no delivery for this long */
#define BENCH_DRAIN_MAX_SEC 300
#define BENCH_FDS_PER_WORKER 16000      /* below the usual hard limit of 20,000 */
#define BENCH_RBUF_MIN 4096
#define BENCH_DEVICE "bench"

/* Payload head: "imgwbench:" 10-digit message index ":" 19-digit ns. */

enum publish_via {
	PUBLISH_ADMIN,
	PUBLISH_CLIENT,
};

struct bench_options {
	const char *gateways[BENCH_MAX_GATEWAYS];
	int gateway_count;
	const char *admin;
	const char *secret;
	const char *prefix;
	const char *pin;                /* "normal", "super" or NULL */
	const char *label;
	const char *csv;
	const char *json;
	int users;
	int workers;
	int messages;
	int groups;                     /* 1: one session of every member */
	double zipf_s;
	unsigned int seed;
	double rate;                    /* 0: as fast as in_flight allows */
	int in_flight;
	int payload_size;
	enum publish_via via;
	int window_delivered;           /* a message stays in flight until every member has it */
	pid_t biz_pids[BENCH_MAX_PIDS];
	int biz_pid_count;
	pid_t gw_pids[BENCH_MAX_PIDS];
	int gw_pid_count;
};

/*
 * Sessions of the run and the message targets, computed before the fork so
 * the workers inherit them. With one group, every member is in the one
 * session, every message goes to it and the arrays by member and message
 * stay NULL.
 */
struct group_plan {
	int groups;
	int *group_size;
	int *member_group;              /* members are laid out group by group */
	int *msg_group;
	uint64_t *session_ids;          /* by group */
};

static int plan_user_group(const struct group_plan *p, int user)
{
	return p->member_group ? p->member_group[user] : 0;
}

static int plan_msg_group(const struct group_plan *p, uint64_t index)
{
	return p->msg_group ? p->msg_group[index] : 0;
}

/* ---- control records between workers and the parent ---- */

enum ctl_type {
	CTL_READY = 1,                  /* worker -> parent: logins done */
	CTL_PROGRESS = 2,               /* worker -> parent, once per second */
	CTL_STOP = 3,                   /* parent -> worker: publishing done */
	CTL_RESULT = 4,                 /* worker -> parent, then it exits */
	CTL_DONE = 5,                   /* worker -> parent: uint32_t index every member here has */
};

struct ctl_hdr {
	uint32_t type;
	uint32_t len;                   /* bytes after the header */
};

struct ctl_ready {
	uint64_t online;
	uint64_t failed;
};

struct ctl_progress {
	uint64_t online;
	uint64_t deliveries;
};

/* Followed by groups x uint64_t messages stored per group: each receiver
 * expects those of its group. */
struct ctl_stop {
	uint64_t acked;                 /* messages stored in all */
	uint64_t idle_ms;               /* give up after this long without a delivery */
	uint64_t max_ms;                /* and after this long in any case */
};

/* Followed by messages x uint64_t last receive ns, messages x uint32_t count. */
struct ctl_result {
	uint64_t receivers;             /* members online at READY */
	uint64_t deliveries;            /* every PUSH of this session */
	uint64_t unique;
	uint64_t duplicates;
	uint64_t reordered;
	uint64_t unknown;               /* pushes that are not this run's messages */
	uint64_t missing;
	uint64_t disconnects;
	uint64_t kicks;
	struct benchstat_hist lat;
};

/* ---- shared helpers ---- */

static int ctl_send(int fd, enum ctl_type type, const void *body, size_t len,
		    const void *tail, size_t tail_len)
{
	struct ctl_hdr hdr = { .type = type, .len = (uint32_t)(len + tail_len) };
	int err;

	err = benchrun_write_full(fd, &hdr, sizeof(hdr));
	if (err == 0)
		err = benchrun_write_full(fd, body, len);
	if (err == 0 && tail_len)
		err = benchrun_write_full(fd, tail, tail_len);
	return err;
}

static void user_name(const struct bench_options *o, int index, char *out,
		      size_t len)
{
	snprintf(out, len, "%su%d", o->prefix, index);
}

/* ---- worker: receiving members ---- */

enum rconn_state {
	RCONN_IDLE,
	RCONN_CONNECTING,
	RCONN_LOGGING_IN,
	RCONN_ONLINE,
	RCONN_CLOSED,           /* was online, then the connection closed */
	RCONN_FAILED,           /* never got online */
};

struct rconn {
	int fd;
	enum rconn_state state;
	int user;                       /* user index */
	uint8_t *buf;                   /* received bytes not yet parsed */
	size_t len;
	size_t cap;
	uint8_t *seen;                  /* bitmap of received seqs */
	uint64_t unique;
	uint64_t last_seq;
	uint64_t last_tx_ns;            /* CLOCK_MONOTONIC */
};

struct worker {
	const struct bench_options *opt;
	struct sockaddr_storage *gw_addrs;
	socklen_t *gw_addr_lens;
	char **tokens;                  /* NULL when minting with the secret */
	const struct group_plan *plan;
	int index;
	int ctl_fd;
	int epfd;
	struct rconn *conns;
	int first_user;
	int count;
	int next_connect;
	int in_flight;
	uint64_t online;
	uint64_t failed;
	uint64_t last_progress_ns;
	int ready_sent;
	int stopping;
	uint64_t stop_deadline_ns;
	uint64_t stop_idle_ns;          /* when the last delivery of the drain came */
	uint64_t stop_deliveries;
	struct ctl_stop stop;
	uint64_t *group_acked;          /* messages stored per group, from CTL_STOP */
	uint32_t *group_online;         /* members online here per group */
	uint64_t *msg_last_ns;
	uint32_t *msg_count;
	struct ctl_result res;
};

/* Returns how many messages receiver c expects once publishing is done. */
static uint64_t rconn_expected(const struct worker *w, const struct rconn *c)
{
	return w->group_acked[plan_user_group(w->plan, c->user)];
}

static void worker_settle(struct worker *w)
{
	w->in_flight--;
	w->last_progress_ns = benchstat_now_ns(CLOCK_MONOTONIC);
}

static void rconn_close(struct worker *w, struct rconn *c)
{
	enum rconn_state old = c->state;

	if (c->fd >= 0) {
		close(c->fd);   /* also removes it from the epoll set */
		c->fd = -1;
	}
	if (old == RCONN_ONLINE) {
		c->state = RCONN_CLOSED;
		w->res.disconnects++;
		return;
	}
	c->state = RCONN_FAILED;
	w->failed++;
	if (old == RCONN_CONNECTING || old == RCONN_LOGGING_IN)
		worker_settle(w);
}

static int rconn_send_login(struct worker *w, struct rconn *c)
{
	Imgw__LoginRequest req = IMGW__LOGIN_REQUEST__INIT;
	char user[96], token[TOKEN_MAX_LEN];
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	uint8_t *frame;
	size_t len;
	ssize_t n;
	int err;

	user_name(w->opt, c->user, user, sizeof(user));
	if (w->tokens) {
		req.token = w->tokens[c->user];
	} else {
		err = token_mint(w->opt->secret, user,
				 (int64_t)(benchstat_now_ns(CLOCK_REALTIME) / NSEC_PER_SEC) +
				 BENCH_TOKEN_TTL, token, sizeof(token));
		if (err < 0)
			return err;
		req.token = token;
	}
	req.user_id = user;
	req.device_id = BENCH_DEVICE;
	req.platform = "imgw-bench";
	frame = wire_pack_frame(OP_LOGIN, 1, &req.base, &len);
	if (!frame)
		return -errno;
	/* A fresh socket's send buffer takes a login frame whole. */
	n = send(c->fd, frame, len, MSG_NOSIGNAL);
	if (n < 0)
		err = -errno;
	else if (n != (ssize_t)len)
		err = -EIO;
	else
		err = 0;
	free(frame);
	if (err == 0 && epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		err = -errno;
	c->state = RCONN_LOGGING_IN;
	c->last_tx_ns = benchstat_now_ns(CLOCK_MONOTONIC);
	return err;
}

static void rconn_connect(struct worker *w, struct rconn *c)
{
	int gw = c->user % w->opt->gateway_count, one = 1;
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };

	c->state = RCONN_CONNECTING;
	w->in_flight++;
	c->fd = socket(w->gw_addrs[gw].ss_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		rconn_close(w, c);
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((connect(c->fd, (struct sockaddr *)&w->gw_addrs[gw],
		     w->gw_addr_lens[gw]) < 0 && errno != EINPROGRESS) ||
	    epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		rconn_close(w, c);
}

/* Keeps at most BENCH_CONNECT_WINDOW connects and logins in flight, so the
 * connects cannot overrun a listen backlog of that size or more. */
static void worker_start_connects(struct worker *w)
{
	while (w->in_flight < BENCH_CONNECT_WINDOW && w->next_connect < w->count)
		rconn_connect(w, &w->conns[w->next_connect++]);
}

static void on_login_result(struct worker *w, struct rconn *c,
			    const uint8_t *body, size_t len)
{
	Imgw__LoginResult *res = imgw__login_result__unpack(NULL, len, body);
	int ok = res && res->code == IMGW__ERROR_CODE__ERROR_NONE;

	if (!ok && w->failed < 5)
		fprintf(stderr, "imgw-bench: worker %d: login of user %d failed: %s\n",
			w->index, c->user, res ? res->reason : "undecodable LOGIN_RESULT");
	if (res)
		imgw__login_result__free_unpacked(res, NULL);
	if (!ok) {
		rconn_close(w, c);
		return;
	}
	c->state = RCONN_ONLINE;
	w->online++;
	w->group_online[plan_user_group(w->plan, c->user)]++;
	worker_settle(w);
}

/* Reads a protobuf varint. Returns the bytes used, or 0 when invalid. */
static size_t pb_varint(const uint8_t *p, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	for (size_t i = 0; i < len && i < 10; i++) {
		v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*out = v;
			return i + 1;
		}
	}
	return 0;
}

/*
 * Decodes the fields of a Push the benchmark needs by hand: protobuf-c's
 * unpack allocates per message, and this runs once per delivery.
 */
static int push_decode(const uint8_t *p, size_t len, uint64_t *session_id,
		       uint64_t *seq, const uint8_t **payload,
		       size_t *payload_len)
{
	size_t off = 0, n;
	uint64_t key, v;

	*payload_len = 0;
	while (off < len) {
		n = pb_varint(p + off, len - off, &key);
		if (!n)
			return -EPROTO;
		off += n;
		switch (key & 7) {
		case 0:
			n = pb_varint(p + off, len - off, &v);
			if (!n)
				return -EPROTO;
			off += n;
			if ((key >> 3) == 1)
				*session_id = v;
			else if ((key >> 3) == 2)
				*seq = v;
			break;
		case 2:
			n = pb_varint(p + off, len - off, &v);
			if (!n || v > len - off - n)
				return -EPROTO;
			off += n;
			if ((key >> 3) == 5) {
				*payload = p + off;
				*payload_len = (size_t)v;
			}
			off += (size_t)v;
			break;
		case 1:
			off += 8;
			break;
		case 5:
			off += 4;
			break;
		default:
			return -EPROTO;
		}
	}
	return off == len ? 0 : -EPROTO;
}

/* Counts one PUSH to c received at recv_ns (CLOCK_REALTIME). */
static void on_push(struct worker *w, struct rconn *c, const uint8_t *body,
		    size_t len, uint64_t recv_ns)
{
	uint64_t session = 0, seq = 0, index, pub_ns;
	uint64_t messages = (uint64_t)w->opt->messages;
	int group = plan_user_group(w->plan, c->user);
	const uint8_t *payload = NULL;
	size_t payload_len;
	uint8_t mask;

	if (push_decode(body, len, &session, &seq, &payload, &payload_len) < 0 ||
	    session != w->plan->session_ids[group] || !payload ||
	    benchrun_payload_parse(payload, payload_len, &index, &pub_ns) < 0 ||
	    index >= messages || seq == 0 || seq > messages ||
	    plan_msg_group(w->plan, index) != group) {
		w->res.unknown++;
		return;
	}
	w->res.deliveries++;
	mask = (uint8_t)(1u << ((seq - 1) & 7));
	if (c->seen[(seq - 1) / 8] & mask) {
		w->res.duplicates++;
		return;
	}
	c->seen[(seq - 1) / 8] |= mask;
	c->unique++;
	w->res.unique++;
	if (seq < c->last_seq)
		w->res.reordered++;
	else
		c->last_seq = seq;
	benchstat_hist_add(&w->res.lat, recv_ns > pub_ns ? recv_ns - pub_ns : 0);
	if (recv_ns > w->msg_last_ns[index])
		w->msg_last_ns[index] = recv_ns;
	w->msg_count[index]++;
	if (w->opt->window_delivered && w->msg_count[index] == w->group_online[group]) {
		uint32_t done = (uint32_t)index;

		if (ctl_send(w->ctl_fd, CTL_DONE, &done, sizeof(done), NULL, 0) < 0)
			fprintf(stderr, "imgw-bench: worker %d: reporting message %u done failed\n",
				w->index, done);
	}
}

static void rconn_handle(struct worker *w, struct rconn *c,
			 const struct frame_header *hdr, const uint8_t *body,
			 uint64_t recv_ns)
{
	switch (hdr->op) {
	case OP_PUSH:
		on_push(w, c, body, hdr->body_len, recv_ns);
		break;
	case OP_LOGIN_RESULT:
		if (c->state == RCONN_LOGGING_IN)
			on_login_result(w, c, body, hdr->body_len);
		break;
	case OP_KICK:
	case OP_ERROR:
		w->res.kicks++;
		break;
	default:
		break;
	}
}

/* Handles every whole frame in c->buf. Returns 0 or a negative errno. */
static int rconn_parse(struct worker *w, struct rconn *c, uint64_t recv_ns)
{
	struct frame_header hdr;
	size_t off = 0;

	while (c->len - off >= FRAME_HEADER_LEN && c->fd >= 0) {
		if (frame_header_parse(c->buf + off, c->len - off,
				       FRAME_HARD_MAX_BODY, &hdr) < 0)
			return -EPROTO;
		if (c->len - off < FRAME_HEADER_LEN + (size_t)hdr.body_len)
			break;
		rconn_handle(w, c, &hdr, c->buf + off + FRAME_HEADER_LEN, recv_ns);
		off += FRAME_HEADER_LEN + hdr.body_len;
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
	return 0;
}

static int rconn_reserve(struct rconn *c)
{
	size_t cap = c->cap ? c->cap : BENCH_RBUF_MIN;
	uint8_t *buf;

	while (cap - c->len < BENCH_RBUF_MIN)
		cap *= 2;
	if (cap == c->cap)
		return 0;
	buf = realloc(c->buf, cap);
	if (!buf)
		return -ENOMEM;
	c->buf = buf;
	c->cap = cap;
	return 0;
}

static int rconn_read(struct worker *w, struct rconn *c)
{
	for (;;) {
		size_t room;
		ssize_t n;
		int err;

		err = rconn_reserve(c);
		if (err < 0)
			return err;
		room = c->cap - c->len;
		n = recv(c->fd, c->buf + c->len, room, 0);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		c->len += (size_t)n;
		err = rconn_parse(w, c, benchstat_now_ns(CLOCK_REALTIME));
		if (err < 0 || c->fd < 0 || (size_t)n < room)
			return err;
	}
}

static void rconn_event(struct worker *w, struct rconn *c, uint32_t events)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (c->state == RCONN_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
		    err || rconn_send_login(w, c) < 0)
			rconn_close(w, c);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		if (rconn_read(w, c) < 0 && c->fd >= 0)
			rconn_close(w, c);
	}
}

/* Closes the connects that made no progress for BENCH_STALL_SEC. */
static void worker_check_stall(struct worker *w, uint64_t mono)
{
	if (w->ready_sent || mono - w->last_progress_ns < BENCH_STALL_SEC * NSEC_PER_SEC)
		return;
	fprintf(stderr, "imgw-bench: worker %d: no login completed for %d s, giving up on %d members\n",
		w->index, BENCH_STALL_SEC, w->in_flight + w->count - w->next_connect);
	for (int i = 0; i < w->count; i++) {
		struct rconn *c = &w->conns[i];

		if (c->state == RCONN_CONNECTING || c->state == RCONN_LOGGING_IN)
			rconn_close(w, c);
	}
	w->failed += (uint64_t)(w->count - w->next_connect);
	w->next_connect = w->count;
}

static void worker_heartbeats(struct worker *w, uint64_t mono)
{
	uint8_t frame[FRAME_HEADER_LEN];
	struct frame_header hdr = { .version = FRAME_VERSION, .op = OP_HEARTBEAT };

	frame_header_pack(&hdr, frame);
	for (int i = 0; i < w->count; i++) {
		struct rconn *c = &w->conns[i];

		if (c->state != RCONN_ONLINE ||
		    mono - c->last_tx_ns < BENCH_HEARTBEAT_SEC * NSEC_PER_SEC)
			continue;
		/* XXX: A heartbeat that does not fit the send buffer is dropped, so a member that never reads could be kicked after the gateway's heartbeat timeout. */
		send(c->fd, frame, sizeof(frame), MSG_NOSIGNAL | MSG_DONTWAIT);
		c->last_tx_ns = mono;
	}
}

static int worker_second(struct worker *w, uint64_t mono)
{
	struct ctl_progress p = { w->online, w->res.deliveries };

	worker_heartbeats(w, mono);
	worker_check_stall(w, mono);
	return ctl_send(w->ctl_fd, CTL_PROGRESS, &p, sizeof(p), NULL, 0);
}

static int worker_read_stop(struct worker *w)
{
	size_t tail = (size_t)w->plan->groups * sizeof(uint64_t);
	struct ctl_hdr hdr;
	ssize_t n = read(w->ctl_fd, &hdr, sizeof(hdr));

	if (n == 0)
		return -ECONNRESET;     /* the parent is gone */
	if (n != sizeof(hdr) || hdr.type != CTL_STOP ||
	    hdr.len != sizeof(w->stop) + tail ||
	    benchrun_read_full(w->ctl_fd, &w->stop, sizeof(w->stop), -1) < 0 ||
	    benchrun_read_full(w->ctl_fd, w->group_acked, tail, -1) < 0)
		return -EPROTO;
	w->stopping = 1;
	w->stop_idle_ns = benchstat_now_ns(CLOCK_MONOTONIC);
	w->stop_deadline_ns = w->stop_idle_ns + w->stop.max_ms * NSEC_PER_MSEC;
	return 0;
}

/*
 * Returns whether every receiver has every stored message, or the drain is
 * over: no delivery for idle_ms, or max_ms in all. An overloaded run keeps
 * draining while deliveries still come, so it reports late deliveries as
 * latency, not as loss.
 */
static int worker_done(struct worker *w, uint64_t mono)
{
	if (!w->stopping)
		return 0;
	if (w->res.deliveries != w->stop_deliveries) {
		w->stop_deliveries = w->res.deliveries;
		w->stop_idle_ns = mono;
	}
	if (mono >= w->stop_deadline_ns ||
	    mono - w->stop_idle_ns >= w->stop.idle_ms * NSEC_PER_MSEC)
		return 1;
	for (int i = 0; i < w->count; i++) {
		const struct rconn *c = &w->conns[i];

		if (c->state == RCONN_ONLINE && c->unique < rconn_expected(w, c))
			return 0;
	}
	return 1;
}

static void worker_maybe_ready(struct worker *w)
{
	struct ctl_ready r;

	if (w->ready_sent || w->in_flight > 0 || w->next_connect < w->count)
		return;
	r.online = w->online;
	r.failed = w->failed;
	w->res.receivers = w->online;
	w->ready_sent = 1;
	ctl_send(w->ctl_fd, CTL_READY, &r, sizeof(r), NULL, 0);
}

static int worker_loop(struct worker *w)
{
	struct epoll_event evs[256], ctl = { .events = EPOLLIN, .data.ptr = NULL };
	uint64_t next_second = benchstat_now_ns(CLOCK_MONOTONIC) + NSEC_PER_SEC, mono;
	int err = 0;

	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->ctl_fd, &ctl) < 0)
		return -errno;
	w->last_progress_ns = benchstat_now_ns(CLOCK_MONOTONIC);
	worker_start_connects(w);
	for (;;) {
		int n = epoll_wait(w->epfd, evs, 256, 100);

		for (int i = 0; i < n && err == 0; i++) {
			if (evs[i].data.ptr)
				rconn_event(w, evs[i].data.ptr, evs[i].events);
			else
				err = worker_read_stop(w);
		}
		if (err < 0)
			return err;
		worker_start_connects(w);
		worker_maybe_ready(w);
		mono = benchstat_now_ns(CLOCK_MONOTONIC);
		if (mono >= next_second) {
			next_second = mono + NSEC_PER_SEC;
			err = worker_second(w, mono);
			if (err < 0)
				return err;
		}
		if (worker_done(w, mono))
			return 0;
	}
}

static void worker_count_missing(struct worker *w)
{
	for (int i = 0; i < w->count; i++) {
		const struct rconn *c = &w->conns[i];

		if ((c->state == RCONN_ONLINE || c->state == RCONN_CLOSED) &&
		    c->unique < rconn_expected(w, c))
			w->res.missing += rconn_expected(w, c) - c->unique;
	}
}

static int worker_init(struct worker *w)
{
	size_t bitmap = ((size_t)w->opt->messages + 7) / 8;

	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->conns = calloc((size_t)w->count, sizeof(*w->conns));
	w->msg_last_ns = calloc((size_t)w->opt->messages, sizeof(uint64_t));
	w->msg_count = calloc((size_t)w->opt->messages, sizeof(uint32_t));
	w->group_acked = calloc((size_t)w->plan->groups, sizeof(uint64_t));
	w->group_online = calloc((size_t)w->plan->groups, sizeof(uint32_t));
	if (w->epfd < 0 || !w->conns || !w->msg_last_ns || !w->msg_count ||
	    !w->group_acked || !w->group_online)
		return -ENOMEM;
	for (int i = 0; i < w->count; i++) {
		w->conns[i].fd = -1;
		w->conns[i].user = w->first_user + i;
		w->conns[i].seen = calloc(bitmap ? bitmap : 1, 1);
		if (!w->conns[i].seen)
			return -ENOMEM;
	}
	return 0;
}

static void worker_free(struct worker *w)
{
	for (int i = 0; w->conns && i < w->count; i++) {
		if (w->conns[i].fd >= 0)
			close(w->conns[i].fd);
		free(w->conns[i].buf);
		free(w->conns[i].seen);
	}
	free(w->conns);
	free(w->msg_last_ns);
	free(w->msg_count);
	free(w->group_acked);
	free(w->group_online);
	if (w->epfd >= 0)
		close(w->epfd);
}

/* Runs in the child process; returns its exit status. */
static int worker_main(struct worker *w)
{
	size_t m = (size_t)w->opt->messages;
	uint8_t *tail;
	int err;

	err = worker_init(w);
	if (err == 0)
		err = worker_loop(w);
	if (err < 0) {
		fprintf(stderr, "imgw-bench: worker %d failed: %s\n", w->index,
			strerror(-err));
		worker_free(w);
		return 1;
	}
	worker_count_missing(w);
	tail = malloc(m * (sizeof(uint64_t) + sizeof(uint32_t)));
	if (!tail) {
		worker_free(w);
		return 1;
	}
	memcpy(tail, w->msg_last_ns, m * sizeof(uint64_t));
	memcpy(tail + m * sizeof(uint64_t), w->msg_count, m * sizeof(uint32_t));
	err = ctl_send(w->ctl_fd, CTL_RESULT, &w->res, sizeof(w->res), tail,
		       m * (sizeof(uint64_t) + sizeof(uint32_t)));
	free(tail);
	worker_free(w);
	return err < 0;
}

/* ---- parent: workers ---- */

struct worker_link {
	pid_t pid;
	int fd;
	uint8_t *buf;
	size_t len;
	size_t cap;
	int ready;
	int done;
	struct ctl_ready ready_rec;
	struct ctl_progress progress;
	struct ctl_result *result;
	uint8_t *result_tail;
};

/* A published message, indexed by the number in its payload. */
struct pub_msg {
	uint64_t pub_ns;                /* CLOCK_REALTIME */
	uint64_t ack_ns;
	uint64_t seq;
	int state;                      /* 0 unsent, 1 in flight, 2 stored, 3 failed */
	int done_links;                 /* workers whose members all have it */
	int released;                   /* no longer counted in flight */
};

enum { MSG_UNSENT, MSG_IN_FLIGHT, MSG_STORED, MSG_FAILED };

struct admin_slot {
	struct bench *b;
	struct evhttp_connection *conn;
	int busy;
	int msg;
};

struct daemon_stat {
	pid_t pid;
	const char *role;
	uint64_t cpu_start_us;
	uint64_t cpu_end_us;
	uint64_t hwm_kb;
};

struct bench {
	struct bench_options opt;
	struct sockaddr_storage gw_addrs[BENCH_MAX_GATEWAYS];
	socklen_t gw_addr_lens[BENCH_MAX_GATEWAYS];
	struct event_base *base;
	struct admin_client *ac;
	char admin_host[256];
	uint16_t admin_port;
	char **tokens;
	struct group_plan plan;
	int *group_links;               /* workers with members of each group */
	struct worker_link *links;
	int link_count;

	struct pub_msg *msgs;
	int next_msg;
	int in_flight;
	uint64_t stored;
	uint64_t failed;
	uint64_t start_mono;
	uint64_t start_ns;              /* CLOCK_REALTIME of the first publish */
	uint64_t last_ack_ns;
	uint64_t last_report_deliveries;
	struct admin_slot *slots;
	struct bufferevent *pub_bev;    /* the publishing member, with --publish client */
	struct event *tick_ev;
	struct event *second_ev;
	struct event **link_evs;
	int interrupted;
	int active_links;               /* workers with members online */
	uint64_t last_release_mono;

	struct daemon_stat daemons[2 * BENCH_MAX_PIDS];
	int daemon_count;
	struct rusage self_start;

	/* merged results */
	struct ctl_result res;
	uint64_t online;
	uint64_t login_failed;
	uint64_t *last_member_ns;       /* latency of the last member, per stored message */
	uint64_t last_member_n;
	uint64_t incomplete_msgs;       /* stored messages some receiver lacks */
	uint64_t last_delivery_ns;
	uint64_t bench_cpu_us;
};

/* Returns how many workers report message done for a message to group. */
static int bench_group_links(const struct bench *b, int group)
{
	return b->plan.groups == 1 ? b->active_links : b->group_links[group];
}

/* Returns how many receivers a message to group must reach. */
static uint64_t bench_group_receivers(const struct bench *b, int group)
{
	return b->plan.groups == 1 ? b->res.receivers : (uint64_t)b->plan.group_size[group];
}

/* Returns the deliveries the stored messages make when none is lost. */
static uint64_t bench_expected(const struct bench *b)
{
	uint64_t n = 0;

	if (b->plan.groups == 1)
		return b->stored * b->res.receivers;
	for (int k = 0; k < b->next_msg; k++) {
		if (b->msgs[k].state == MSG_STORED)
			n += bench_group_receivers(b, plan_msg_group(&b->plan, (uint64_t)k));
	}
	return n;
}

static void daemons_snapshot(struct bench *b, int end)
{
	for (int i = 0; i < b->daemon_count; i++) {
		struct daemon_stat *d = &b->daemons[i];
		uint64_t *slot = end ? &d->cpu_end_us : &d->cpu_start_us;
		int err = benchstat_proc_cpu_us(d->pid, slot);

		if (err < 0)
			fprintf(stderr, "imgw-bench: reading the CPU time of %s pid %d failed: %s\n",
				d->role, (int)d->pid, strerror(-err));
		if (end && benchstat_proc_hwm_kb(d->pid, &d->hwm_kb) < 0)
			fprintf(stderr, "imgw-bench: reading VmHWM of %s pid %d failed\n",
				d->role, (int)d->pid);
	}
}

static void bench_delivered(struct bench *b, uint32_t index);

static int link_grow(struct worker_link *l, size_t need)
{
	size_t cap = l->cap ? l->cap : 4096;
	uint8_t *buf;

	while (cap < need)
		cap *= 2;
	if (cap == l->cap)
		return 0;
	buf = realloc(l->buf, cap);
	if (!buf)
		return -ENOMEM;
	l->buf = buf;
	l->cap = cap;
	return 0;
}

static int link_record(struct bench *b, struct worker_link *l,
		       const struct ctl_hdr *hdr, const uint8_t *body)
{
	size_t tail = (size_t)b->opt.messages * (sizeof(uint64_t) + sizeof(uint32_t));

	switch (hdr->type) {
	case CTL_READY:
		if (hdr->len != sizeof(l->ready_rec))
			return -EPROTO;
		memcpy(&l->ready_rec, body, sizeof(l->ready_rec));
		l->ready = 1;
		return 0;
	case CTL_PROGRESS:
		if (hdr->len != sizeof(l->progress))
			return -EPROTO;
		memcpy(&l->progress, body, sizeof(l->progress));
		return 0;
	case CTL_DONE:
		if (hdr->len != sizeof(uint32_t))
			return -EPROTO;
		{
			uint32_t index;

			memcpy(&index, body, sizeof(index));
			bench_delivered(b, index);
		}
		return 0;
	case CTL_RESULT:
		if (hdr->len != sizeof(*l->result) + tail)
			return -EPROTO;
		l->result = malloc(hdr->len);
		if (!l->result)
			return -ENOMEM;
		memcpy(l->result, body, hdr->len);
		l->result_tail = (uint8_t *)l->result + sizeof(*l->result);
		l->done = 1;
		return 0;
	default:
		return -EPROTO;
	}
}

/* Reads what worker l sent and handles every whole record. */
static int link_read(struct bench *b, struct worker_link *l)
{
	struct ctl_hdr hdr;
	size_t off = 0;
	ssize_t n;
	int err;

	err = link_grow(l, l->len + 65536);
	if (err < 0)
		return err;
	n = read(l->fd, l->buf + l->len, l->cap - l->len);
	if (n == 0)
		return -ECONNRESET;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	l->len += (size_t)n;
	while (l->len - off >= sizeof(hdr)) {
		memcpy(&hdr, l->buf + off, sizeof(hdr));
		if (l->len - off < sizeof(hdr) + hdr.len)
			break;
		err = link_record(b, l, &hdr, l->buf + off + sizeof(hdr));
		if (err < 0)
			return err;
		off += sizeof(hdr) + hdr.len;
	}
	memmove(l->buf, l->buf + off, l->len - off);
	l->len -= off;
	return 0;
}

static void bench_print_progress(struct bench *b, const char *phase)
{
	uint64_t online = 0, deliveries = 0;

	for (int i = 0; i < b->link_count; i++) {
		online += b->links[i].progress.online;
		deliveries += b->links[i].progress.deliveries;
	}
	fprintf(stderr, "imgw-bench: %s: %" PRIu64 " online, published %d stored %"
		PRIu64 " failed %" PRIu64 ", delivered %" PRIu64 " (%" PRIu64 "/s)\n",
		phase, online, b->next_msg, b->stored, b->failed, deliveries,
		deliveries - b->last_report_deliveries);
	b->last_report_deliveries = deliveries;
}

/* Reads worker records until every link has ready (or done) set, with a
 * progress line once per second. */
static int bench_wait_links(struct bench *b, int want_done, int timeout_sec)
{
	struct pollfd pfd[64];
	uint64_t start = benchstat_now_ns(CLOCK_MONOTONIC), next = start + NSEC_PER_SEC;

	for (;;) {
		int pending = 0, n;

		for (int i = 0; i < b->link_count; i++) {
			struct worker_link *l = &b->links[i];

			pfd[i] = (struct pollfd){ .fd = l->fd, .events = POLLIN };
			pending += want_done ? !l->done : !l->ready;
		}
		if (!pending)
			return 0;
		if (benchstat_now_ns(CLOCK_MONOTONIC) - start > (uint64_t)timeout_sec * NSEC_PER_SEC)
			return -ETIMEDOUT;
		n = poll(pfd, (nfds_t)b->link_count, 200);
		for (int i = 0; i < b->link_count && n > 0; i++) {
			struct worker_link *l = &b->links[i];

			if (!(want_done ? l->done : l->ready) &&
			    (pfd[i].revents & (POLLIN | POLLHUP)) &&
			    link_read(b, &b->links[i]) < 0)
				return -EPIPE;
		}
		if (benchstat_now_ns(CLOCK_MONOTONIC) >= next) {
			next += NSEC_PER_SEC;
			bench_print_progress(b, want_done ? "draining" : "logging in");
		}
	}
}

/* Counts the workers that host members of each group, when there are
 * several: worker i logs in users i * per up to (i + 1) * per - 1. */
static int bench_count_group_links(struct bench *b, int per)
{
	if (b->plan.groups == 1)
		return 0;
	b->group_links = calloc((size_t)b->plan.groups, sizeof(int));
	if (!b->group_links)
		return -ENOMEM;
	for (int u = 0; u < b->opt.users; u++) {
		if (u % per == 0 || b->plan.member_group[u] != b->plan.member_group[u - 1])
			b->group_links[b->plan.member_group[u]]++;
	}
	return 0;
}

static int bench_fork_workers(struct bench *b)
{
	int per = (b->opt.users + b->opt.workers - 1) / b->opt.workers;

	b->links = calloc((size_t)b->opt.workers, sizeof(*b->links));
	if (!b->links)
		return -ENOMEM;
	fflush(NULL);
	for (int i = 0; i < b->opt.workers; i++) {
		struct worker_link *l = &b->links[i];
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			return -errno;
		l->pid = fork();
		if (l->pid < 0)
			return -errno;
		if (l->pid == 0) {
			struct worker w = {
				.opt = &b->opt, .gw_addrs = b->gw_addrs,
				.gw_addr_lens = b->gw_addr_lens, .tokens = b->tokens,
				.plan = &b->plan, .index = i,
				.ctl_fd = sv[1], .epfd = -1, .first_user = i * per,
				.count = b->opt.users - i * per < per ?
					 b->opt.users - i * per : per,
			};

			close(sv[0]);
			for (int j = 0; j < i; j++)
				close(b->links[j].fd);
			_exit(worker_main(&w));
		}
		close(sv[1]);
		fcntl(sv[0], F_SETFL, O_NONBLOCK);
		l->fd = sv[0];
		b->link_count++;
	}
	return bench_count_group_links(b, per);
}

/* ---- parent: setup through the admin API ---- */

/*
 * Plans the sessions with the helpers bench-peer uses, so the same --users,
 * --zipf and --seed give the same session sizes and message targets. With
 * one session the arrays by member and message stay NULL. Returns the
 * members of all sessions, or -ENOMEM.
 */
static int plan_build(struct group_plan *p, const struct bench_options *o)
{
	int m;

	p->groups = o->groups;
	p->group_size = calloc((size_t)o->groups, sizeof(int));
	p->session_ids = calloc((size_t)o->groups, sizeof(uint64_t));
	if (!p->group_size || !p->session_ids)
		return -ENOMEM;
	m = benchrun_plan_sizes(p->group_size, o->groups, o->users, o->zipf_s);
	if (o->groups == 1)
		return 0;
	p->member_group = calloc((size_t)m, sizeof(int));
	p->msg_group = calloc((size_t)o->messages, sizeof(int));
	if (!p->member_group || !p->msg_group)
		return -ENOMEM;
	benchrun_plan_members(p->member_group, p->group_size, o->groups);
	benchrun_plan_messages(p->msg_group, o->messages, o->groups, o->seed);
	return m;
}

static void plan_free(struct group_plan *p)
{
	free(p->group_size);
	free(p->member_group);
	free(p->msg_group);
	free(p->session_ids);
}

/* Creates the session of group g with its members. */
static int bench_create_session(struct bench *b, int g)
{
	json_t *members = json_array(), *body, *id;
	struct admin_reply reply;
	char user[96], name[96];
	int err;

	for (int i = 0; i < b->opt.users; i++) {
		if (plan_user_group(&b->plan, i) != g)
			continue;
		user_name(&b->opt, i, user, sizeof(user));
		json_array_append_new(members, json_string(user));
	}
	if (b->opt.via == PUBLISH_CLIENT) {
		snprintf(user, sizeof(user), "%spub", b->opt.prefix);
		json_array_append_new(members, json_string(user));
	}
	if (b->plan.groups == 1)
		snprintf(name, sizeof(name), "%sbench", b->opt.prefix);
	else
		snprintf(name, sizeof(name), "%sbench-g%d", b->opt.prefix, g);
	body = json_pack("{s:s, s:s, s:o}", "kind", "group", "name", name,
			 "members", members);
	err = admin_call(b->ac, EVHTTP_REQ_POST, "/v1/sessions", body, &reply);
	json_decref(body);
	if (err < 0) {
		fprintf(stderr, "imgw-bench: creating session %s at %s failed: %s\n",
			name, admin_client_addr(b->ac), strerror(-err));
		return err;
	}
	id = json_object_get(reply.json, "session_id");
	if (reply.status / 100 != 2 || !json_is_integer(id)) {
		fprintf(stderr, "imgw-bench: creating session %s failed: HTTP %d: %s\n",
			name, reply.status, admin_reply_error(&reply));
		admin_reply_free(&reply);
		return -EPROTO;
	}
	b->plan.session_ids[g] = (uint64_t)json_integer_value(id);
	admin_reply_free(&reply);
	return 0;
}

static int bench_create_sessions(struct bench *b)
{
	int err = 0;

	for (int g = 0; g < b->plan.groups && err == 0; g++)
		err = bench_create_session(b, g);
	return err;
}

static int bench_mint_one(struct bench *b, const char *user, char **out)
{
	char token[TOKEN_MAX_LEN];
	int status = 0, err;

	if (b->opt.secret) {
		err = token_mint(b->opt.secret, user,
				 (int64_t)(benchstat_now_ns(CLOCK_REALTIME) / NSEC_PER_SEC) +
				 BENCH_TOKEN_TTL, token, sizeof(token));
	} else {
		err = admin_mint_token(b->ac, user, BENCH_TOKEN_TTL, token,
				       sizeof(token), &status);
	}
	if (err < 0) {
		fprintf(stderr, "imgw-bench: minting a token for %s failed: %s (HTTP %d)\n",
			user, strerror(-err), status);
		return err;
	}
	*out = strdup(token);
	return *out ? 0 : -ENOMEM;
}

/* Mints every member's token through the admin API before the fork; with
 * --secret the workers mint their own. */
static int bench_mint_tokens(struct bench *b)
{
	char user[96];
	int err;

	if (b->opt.secret)
		return 0;
	b->tokens = calloc((size_t)b->opt.users, sizeof(*b->tokens));
	if (!b->tokens)
		return -ENOMEM;
	for (int i = 0; i < b->opt.users; i++) {
		user_name(&b->opt, i, user, sizeof(user));
		err = bench_mint_one(b, user, &b->tokens[i]);
		if (err < 0)
			return err;
	}
	return 0;
}

/* Returns 1 when the super state of the session matches want, 0 when not
 * yet, or a negative errno. */
static int bench_super_state(struct bench *b, uint64_t session_id, const char *want,
			     enum evhttp_cmd_type method, const char *action)
{
	struct admin_reply reply;
	char path[96];
	json_t *body = NULL;
	const char *type;
	int err, converged;

	snprintf(path, sizeof(path), "/v1/sessions/%" PRIu64 "/super", session_id);
	if (action)
		body = json_pack("{s:s}", "action", action);
	err = admin_call(b->ac, method, path, body, &reply);
	json_decref(body);
	if (err < 0)
		return err;
	if (reply.status != 200) {
		fprintf(stderr, "imgw-bench: %s %s failed: HTTP %d: %s\n",
			action ? "POST" : "GET", path, reply.status,
			admin_reply_error(&reply));
		admin_reply_free(&reply);
		return -EPROTO;
	}
	type = json_string_value(json_object_get(reply.json, "type"));
	converged = json_is_true(json_object_get(reply.json, "converged"));
	err = type && strcmp(type, want) == 0 && converged;
	admin_reply_free(&reply);
	return err;
}

/*
 * Pins the session normal ("demote") or super ("upgrade") and waits until
 * every gateway has acknowledged, so the measured messages all go out in the
 * pinned mode and none carries the transition.
 */
static int bench_pin_one(struct bench *b, uint64_t session_id)
{
	int super = strcmp(b->opt.pin, "super") == 0;
	const char *want = super ? "super" : "normal";
	uint64_t start = benchstat_now_ns(CLOCK_MONOTONIC);
	int rc;

	rc = bench_super_state(b, session_id, want, EVHTTP_REQ_POST,
			       super ? "upgrade" : "demote");
	while (rc == 0) {
		if (benchstat_now_ns(CLOCK_MONOTONIC) - start > BENCH_CONVERGE_SEC * NSEC_PER_SEC) {
			fprintf(stderr, "imgw-bench: session %" PRIu64 " not %s and converged after %d s\n",
				session_id, want, BENCH_CONVERGE_SEC);
			return -ETIMEDOUT;
		}
		usleep(50000);
		rc = bench_super_state(b, session_id, want, EVHTTP_REQ_GET, NULL);
	}
	if (rc < 0)
		return rc;
	if (b->plan.groups == 1)
		fprintf(stderr, "imgw-bench: session %" PRIu64 " pinned %s, converged in %.2f s\n",
			session_id, want,
			(double)(benchstat_now_ns(CLOCK_MONOTONIC) - start) / NSEC_PER_SEC);
	return 0;
}

static int bench_pin(struct bench *b)
{
	uint64_t start = benchstat_now_ns(CLOCK_MONOTONIC);
	int err = 0;

	for (int g = 0; g < b->plan.groups && err == 0; g++)
		err = bench_pin_one(b, b->plan.session_ids[g]);
	if (err == 0 && b->plan.groups > 1)
		fprintf(stderr, "imgw-bench: %d sessions pinned %s, converged in %.2f s\n",
			b->plan.groups, b->opt.pin,
			(double)(benchstat_now_ns(CLOCK_MONOTONIC) - start) / NSEC_PER_SEC);
	return err;
}

/* ---- parent: publishing ---- */

static void bench_fill(struct bench *b);

/* Writes the payload of message index: the head, then '.' up to the size. */
static char *bench_fill_payload(struct bench *b, int index, uint64_t pub_ns)
{
	size_t size = (size_t)b->opt.payload_size;
	char *p = malloc(size + 1);

	if (!p)
		return NULL;
	benchrun_payload_stamp(p, index, pub_ns);
	memset(p + BENCHRUN_PAYLOAD_HEAD_LEN, '.', size - BENCHRUN_PAYLOAD_HEAD_LEN);
	p[size] = '\0';
	return p;
}

/* Frees message m's place in the window. */
static void bench_release(struct bench *b, struct pub_msg *m)
{
	if (m->released)
		return;
	m->released = 1;
	b->in_flight--;
	b->last_release_mono = benchstat_now_ns(CLOCK_MONOTONIC);
	if (b->next_msg == b->opt.messages && b->in_flight == 0)
		event_base_loopbreak(b->base);
	else
		bench_fill(b);
}

/* Counts a worker whose members all have message index; with --window
 * delivered the message leaves the window once it is stored and every
 * worker has reported it. */
static void bench_delivered(struct bench *b, uint32_t index)
{
	struct pub_msg *m;

	if (!b->msgs || index >= (uint32_t)b->opt.messages)
		return;
	m = &b->msgs[index];
	m->done_links++;
	if (b->opt.window_delivered && m->state == MSG_STORED &&
	    m->done_links >= bench_group_links(b, plan_msg_group(&b->plan, index)))
		bench_release(b, m);
}

static void bench_settle(struct bench *b, int index, uint64_t seq, int ok)
{
	struct pub_msg *m = &b->msgs[index];

	if (m->state != MSG_IN_FLIGHT)
		return;
	m->ack_ns = benchstat_now_ns(CLOCK_REALTIME);
	b->last_ack_ns = m->ack_ns;
	if (ok) {
		m->state = MSG_STORED;
		m->seq = seq;
		b->stored++;
	} else {
		m->state = MSG_FAILED;
		if (b->failed++ < 5)
			fprintf(stderr, "imgw-bench: publishing message %d failed\n", index);
	}
	if (!ok || !b->opt.window_delivered ||
	    m->done_links >= bench_group_links(b, plan_msg_group(&b->plan, (uint64_t)index)))
		bench_release(b, m);
}

static void admin_publish_done(struct evhttp_request *req, void *arg)
{
	struct admin_slot *s = arg;
	struct evbuffer *in;
	json_t *reply = NULL, *seq;
	int ok = 0;

	if (req && evhttp_request_get_response_code(req) == 200) {
		in = evhttp_request_get_input_buffer(req);
		reply = json_loadb((const char *)evbuffer_pullup(in, -1),
				   evbuffer_get_length(in), 0, NULL);
	}
	seq = json_object_get(reply, "seq");
	ok = json_is_integer(seq) && json_integer_value(seq) > 0;
	s->busy = 0;
	bench_settle(s->b, s->msg, ok ? (uint64_t)json_integer_value(seq) : 0, ok);
	json_decref(reply);
}

static int admin_publish(struct bench *b, int index, const char *payload)
{
	struct admin_slot *s = NULL;
	struct evhttp_request *req;
	char path[96], cmid[48];
	json_t *body;
	char *text;
	int err = -ENOMEM;

	for (int i = 0; i < b->opt.in_flight && !s; i++)
		s = b->slots[i].busy ? NULL : &b->slots[i];
	if (!s)
		return -EBUSY;
	snprintf(path, sizeof(path), "/v1/sessions/%" PRIu64 "/messages",
		 b->plan.session_ids[plan_msg_group(&b->plan, (uint64_t)index)]);
	snprintf(cmid, sizeof(cmid), "bench-%d", index);
	body = json_pack("{s:s, s:s}", "payload", payload, "client_msg_id", cmid);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	req = text ? evhttp_request_new(admin_publish_done, s) : NULL;
	if (req) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Host", b->admin_host);
		evhttp_add_header(evhttp_request_get_output_headers(req),
				  "Content-Type", "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(req), text, strlen(text));
		s->busy = 1;
		s->msg = index;
		err = evhttp_make_request(s->conn, req, EVHTTP_REQ_POST, path) ? -EIO : 0;
		if (err < 0)
			s->busy = 0;    /* libevent freed req */
	}
	free(text);
	return err;
}

static int client_publish(struct bench *b, int index, const char *payload)
{
	Imgw__SendRequest req = IMGW__SEND_REQUEST__INIT;
	char cmid[48];

	snprintf(cmid, sizeof(cmid), "bench-%d", index);
	req.session_id = b->plan.session_ids[0];        /* one group only */
	req.client_msg_id = cmid;
	req.payload.data = (uint8_t *)payload;
	req.payload.len = strlen(payload);
	/* The request id is the message index + 1, so SEND_RESULT finds it. */
	return wire_append(bufferevent_get_output(b->pub_bev), OP_SEND,
			   (uint32_t)index + 1, &req.base);
}

static int bench_publish_one(struct bench *b)
{
	int index = b->next_msg;
	struct pub_msg *m = &b->msgs[index];
	char *payload;
	int err;

	m->pub_ns = benchstat_now_ns(CLOCK_REALTIME);
	if (index == 0)
		b->start_ns = m->pub_ns;
	payload = bench_fill_payload(b, index, m->pub_ns);
	if (!payload)
		return -ENOMEM;
	m->state = MSG_IN_FLIGHT;
	b->next_msg++;
	b->in_flight++;
	err = b->opt.via == PUBLISH_ADMIN ? admin_publish(b, index, payload)
					  : client_publish(b, index, payload);
	free(payload);
	if (err < 0)
		bench_settle(b, index, 0, 0);
	return err;
}

/* Publishes what is due: at --rate, everything up to the message whose time
 * has come; at rate 0, as many as --in-flight allows. */
static void bench_fill(struct bench *b)
{
	uint64_t elapsed = benchstat_now_ns(CLOCK_MONOTONIC) - b->start_mono;

	while (b->next_msg < b->opt.messages && b->in_flight < b->opt.in_flight &&
	       !b->interrupted) {
		if (b->opt.rate > 0 &&
		    (double)b->next_msg / b->opt.rate * NSEC_PER_SEC > (double)elapsed)
			break;
		if (bench_publish_one(b) < 0)
			break;
	}
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;

	/* With --window delivered a lost delivery would hold its place forever. */
	if (b->opt.window_delivered && b->in_flight > 0 &&
	    benchstat_now_ns(CLOCK_MONOTONIC) - b->last_release_mono >
	    BENCH_DRAIN_IDLE_SEC * NSEC_PER_SEC * 2) {
		fprintf(stderr, "imgw-bench: no message reached every member for %d s; stopping\n",
			BENCH_DRAIN_IDLE_SEC * 2);
		b->interrupted = 1;
		event_base_loopbreak(b->base);
		return;
	}
	bench_fill(b);
}

static void second_cb(evutil_socket_t fd, short what, void *arg)
{
	bench_print_progress(arg, "publishing");
}

static void link_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;

	for (int i = 0; i < b->link_count; i++) {
		if (b->links[i].fd == fd && link_read(b, &b->links[i]) < 0) {
			fprintf(stderr, "imgw-bench: worker %d (pid %d) went away while publishing\n",
				i, (int)b->links[i].pid);
			b->interrupted = 1;
			event_base_loopbreak(b->base);
		}
	}
}

static void pub_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct bench *b = arg;
	struct frame_header hdr;

	while (wire_peek(in, FRAME_HARD_MAX_BODY, &hdr) == 1) {
		const uint8_t *body = wire_body(in, &hdr);
		Imgw__SendResult *res = NULL;
		uint32_t index = hdr.request_id - 1;

		if (hdr.op == OP_SEND_RESULT && body)
			res = imgw__send_result__unpack(NULL, hdr.body_len, body);
		wire_consume(in, &hdr);
		if (!res)
			continue;
		if (hdr.request_id > 0 && index < (uint32_t)b->opt.messages)
			bench_settle(b, (int)index, res->seq,
				     res->code == IMGW__ERROR_CODE__ERROR_NONE);
		imgw__send_result__free_unpacked(res, NULL);
	}
}

static void pub_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct bench *b = arg;

	fprintf(stderr, "imgw-bench: the publishing connection closed: %s\n",
		what & BEV_EVENT_EOF ? "closed by the gateway"
				     : strerror(EVUTIL_SOCKET_ERROR()));
	b->interrupted = 1;
	event_base_loopbreak(b->base);
}

/* Logs in the publishing member on the first gateway (--publish client). */
static int bench_connect_publisher(struct bench *b)
{
	Imgw__LoginResult *res = NULL;
	char host[256], user[96], *token = NULL;
	struct client *c;
	uint16_t port;
	int err, fd;

	parse_host_port(b->opt.gateways[0], host, sizeof(host), &port);
	snprintf(user, sizeof(user), "%spub", b->opt.prefix);
	err = bench_mint_one(b, user, &token);
	if (err < 0)
		return err;
	c = client_connect(host, port, 5000);
	err = c ? client_login(c, token, user, BENCH_DEVICE, "imgw-bench", 5000, &res)
		: -errno;
	free(token);
	if (res)
		imgw__login_result__free_unpacked(res, NULL);
	if (err < 0) {
		fprintf(stderr, "imgw-bench: logging in the publisher %s at %s failed: %s\n",
			user, b->opt.gateways[0], strerror(-err));
		if (c)
			client_close(c);
		return err;
	}
	fd = dup(c->fd);
	client_close(c);
	if (fd < 0)
		return -errno;
	evutil_make_socket_nonblocking(fd);
	b->pub_bev = bufferevent_socket_new(b->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!b->pub_bev) {
		close(fd);
		return -ENOMEM;
	}
	bufferevent_setcb(b->pub_bev, pub_read_cb, NULL, pub_event_cb, b);
	bufferevent_enable(b->pub_bev, EV_READ | EV_WRITE);
	return 0;
}

static int bench_open_slots(struct bench *b)
{
	b->slots = calloc((size_t)b->opt.in_flight, sizeof(*b->slots));
	if (!b->slots)
		return -ENOMEM;
	for (int i = 0; i < b->opt.in_flight; i++) {
		b->slots[i].b = b;
		b->slots[i].conn = evhttp_connection_base_new(b->base, NULL,
							      b->admin_host,
							      b->admin_port);
		if (!b->slots[i].conn)
			return -ENOMEM;
		evhttp_connection_set_timeout(b->slots[i].conn, 30);
	}
	return 0;
}

static int bench_publish(struct bench *b)
{
	struct timeval ms = { 0, 1000 }, second = { 1, 0 };

	b->msgs = calloc((size_t)b->opt.messages, sizeof(*b->msgs));
	b->link_evs = calloc((size_t)b->link_count, sizeof(*b->link_evs));
	b->tick_ev = event_new(b->base, -1, EV_PERSIST, tick_cb, b);
	b->second_ev = event_new(b->base, -1, EV_PERSIST, second_cb, b);
	if (!b->msgs || !b->link_evs || !b->tick_ev || !b->second_ev)
		return -ENOMEM;
	for (int i = 0; i < b->link_count; i++) {
		b->link_evs[i] = event_new(b->base, b->links[i].fd,
					   EV_READ | EV_PERSIST, link_event_cb, b);
		if (!b->link_evs[i])
			return -ENOMEM;
		event_add(b->link_evs[i], NULL);
	}
	if (b->opt.rate > 0)
		fprintf(stderr, "imgw-bench: publishing %d messages of %d bytes at %g msg/s, at most %d in flight\n",
			b->opt.messages, b->opt.payload_size, b->opt.rate,
			b->opt.in_flight);
	else
		fprintf(stderr, "imgw-bench: publishing %d messages of %d bytes as fast as possible, at most %d in flight\n",
			b->opt.messages, b->opt.payload_size, b->opt.in_flight);
	event_add(b->tick_ev, &ms);
	event_add(b->second_ev, &second);
	b->start_mono = benchstat_now_ns(CLOCK_MONOTONIC);
	b->last_release_mono = b->start_mono;
	bench_fill(b);
	if (b->next_msg < b->opt.messages || b->in_flight > 0)
		event_base_dispatch(b->base);
	event_del(b->tick_ev);
	event_del(b->second_ev);
	for (int i = 0; i < b->link_count; i++)
		event_del(b->link_evs[i]);
	return 0;
}

/* ---- parent: results ---- */

static void bench_merge_counts(struct bench *b, const struct ctl_result *r)
{
	b->res.receivers += r->receivers;
	b->res.deliveries += r->deliveries;
	b->res.unique += r->unique;
	b->res.duplicates += r->duplicates;
	b->res.reordered += r->reordered;
	b->res.unknown += r->unknown;
	b->res.missing += r->missing;
	b->res.disconnects += r->disconnects;
	b->res.kicks += r->kicks;
	benchstat_hist_merge(&b->res.lat, &r->lat);
}

/* Merges the workers' results; the last member of a message is the latest
 * receive over all workers, for messages every receiver got. */
static int bench_merge(struct bench *b)
{
	size_t m = (size_t)b->opt.messages;

	b->last_member_ns = calloc(m ? m : 1, sizeof(uint64_t));
	if (!b->last_member_ns)
		return -ENOMEM;
	for (int i = 0; i < b->link_count; i++)
		bench_merge_counts(b, b->links[i].result);
	for (size_t k = 0; k < m; k++) {
		uint64_t last = 0, count = 0;

		if (b->msgs[k].state != MSG_STORED)
			continue;
		for (int i = 0; i < b->link_count; i++) {
			const uint8_t *tail = b->links[i].result_tail;
			uint64_t t;
			uint32_t c;

			memcpy(&t, tail + k * sizeof(uint64_t), sizeof(t));
			memcpy(&c, tail + m * sizeof(uint64_t) + k * sizeof(c), sizeof(c));
			last = t > last ? t : last;
			count += c;
		}
		if (last > b->last_delivery_ns)
			b->last_delivery_ns = last;
		if (count < bench_group_receivers(b, plan_msg_group(&b->plan, k))) {
			b->incomplete_msgs++;
			continue;
		}
		b->last_member_ns[b->last_member_n++] =
			last > b->msgs[k].pub_ns ? last - b->msgs[k].pub_ns : 0;
	}
	benchstat_sort_u64(b->last_member_ns, b->last_member_n);
	return 0;
}

struct figures {
	double publish_s;
	double delivery_s;
	double msgs_per_s;
	double deliveries_per_s;
	uint64_t biz_cpu_us;
	uint64_t gw_cpu_us;
	uint64_t biz_hwm_kb;
	uint64_t gw_hwm_kb;
	double lat[BENCHRUN_QUANTILES];
	double last[BENCHRUN_QUANTILES];
};

static void bench_figures(const struct bench *b, struct figures *f)
{
	memset(f, 0, sizeof(*f));
	if (b->last_ack_ns > b->start_ns)
		f->publish_s = (double)(b->last_ack_ns - b->start_ns) / NSEC_PER_SEC;
	if (b->last_delivery_ns > b->start_ns)
		f->delivery_s = (double)(b->last_delivery_ns - b->start_ns) / NSEC_PER_SEC;
	f->msgs_per_s = f->publish_s > 0 ? (double)b->stored / f->publish_s : 0;
	f->deliveries_per_s = f->delivery_s > 0 ? (double)b->res.unique / f->delivery_s : 0;
	for (int i = 0; i < b->daemon_count; i++) {
		const struct daemon_stat *d = &b->daemons[i];
		uint64_t cpu = d->cpu_end_us - d->cpu_start_us;
		int biz = strcmp(d->role, "bizsvr") == 0;

		*(biz ? &f->biz_cpu_us : &f->gw_cpu_us) += cpu;
		if (biz && d->hwm_kb > f->biz_hwm_kb)
			f->biz_hwm_kb = d->hwm_kb;
		if (!biz && d->hwm_kb > f->gw_hwm_kb)
			f->gw_hwm_kb = d->hwm_kb;
	}
	benchrun_quantiles(&b->res.lat, b->last_member_ns, b->last_member_n,
			   f->lat, f->last);
}

static void bench_print_daemons(const struct bench *b)
{
	for (int i = 0; i < b->daemon_count; i++) {
		const struct daemon_stat *d = &b->daemons[i];
		uint64_t cpu = d->cpu_end_us - d->cpu_start_us;

		printf("  %-7s pid %-7d CPU %10" PRIu64 " us  %8.2f us/msg  peak RSS %" PRIu64 " kB\n",
		       d->role, (int)d->pid, cpu, benchrun_per(cpu, b->stored), d->hwm_kb);
	}
}

static void bench_print(const struct bench *b, const struct figures *f)
{
	const struct ctl_result *r = &b->res;

	printf("imgw-bench%s%s: %d members in %d sessions over %d gateways, %d workers, pin %s, %s\n",
	       b->opt.label ? " " : "", b->opt.label ? b->opt.label : "",
	       b->opt.users, b->plan.groups, b->opt.gateway_count, b->link_count,
	       b->opt.pin ? b->opt.pin : "none (rules)",
	       b->opt.via == PUBLISH_ADMIN ? "published through the admin API"
					  : "published as a client SEND");
	printf("  members online        %10" PRIu64 "   login failures %" PRIu64
	       ", disconnects %" PRIu64 ", kicks and errors %" PRIu64 "\n",
	       b->online, b->login_failed, r->disconnects, r->kicks);
	printf("  messages published    %10d   stored %" PRIu64 ", failed %" PRIu64
	       ", %.1f msg/s over %.2f s\n", b->next_msg, b->stored, b->failed,
	       f->msgs_per_s, f->publish_s);
	printf("  deliveries            %10" PRIu64 "   of %" PRIu64 " expected, %.0f/s over %.2f s\n",
	       r->unique, bench_expected(b), f->deliveries_per_s, f->delivery_s);
	printf("  missing %" PRIu64 ", duplicates %" PRIu64 ", out of order %" PRIu64
	       ", unknown pushes %" PRIu64 ", messages some member lacks %" PRIu64 "\n",
	       r->missing, r->duplicates, r->reordered, r->unknown, b->incomplete_msgs);
	bench_print_daemons(b);
	/* Each gateway makes only its share of the deliveries, so only the sum
	 * over the gateways is divided by the deliveries. */
	printf("  bizsvr total %.2f us/msg; gateways together %.3f us/delivery, %.1f us/msg\n",
	       benchrun_per(f->biz_cpu_us, b->stored), benchrun_per(f->gw_cpu_us, r->unique),
	       benchrun_per(f->gw_cpu_us, b->stored));
	printf("  imgw-bench itself: CPU %" PRIu64 " us (%.3f us/delivery)\n",
	       b->bench_cpu_us, benchrun_per(b->bench_cpu_us, r->unique));
	benchrun_print_latency(stdout, f->lat, r->lat.n, f->last,
			       b->last_member_n);
}

#define CSV_HEADER "label,pin,publish_via,members,gateways,workers,rate,in_flight," \
	"payload_bytes,published,stored,failed,receivers,deliveries,expected," \
	"missing,duplicates,reordered,disconnects,publish_s,delivery_s," \
	"msgs_per_s,deliveries_per_s,bizsvr_cpu_us,bizsvr_us_per_msg," \
	"gateway_cpu_us,gateway_us_per_delivery,gateway_us_per_msg," \
	"bizsvr_peak_rss_kb,gateway_peak_rss_kb,bench_cpu_us," \
	"lat_p50_ms,lat_p99_ms,lat_p999_ms,lat_max_ms," \
	"last_p50_ms,last_p99_ms,last_p999_ms,last_max_ms,window\n"

/* Appends one row to the --csv file, with the header when the file is new. */
static int bench_write_csv(const struct bench *b, const struct figures *f)
{
	const struct ctl_result *r = &b->res;
	FILE *out = benchrun_csv_open(b->opt.csv, CSV_HEADER);

	if (!out)
		return -errno;
	fprintf(out, "%s,%s,%s,%d,%d,%d,%g,%d,%d,%d,%" PRIu64 ",%" PRIu64 ",%" PRIu64
		",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
		",%.3f,%.3f,%.1f,%.0f,%" PRIu64 ",%.2f,%" PRIu64 ",%.4f,%.2f,%" PRIu64
		",%" PRIu64 ",%" PRIu64 ",%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%s\n",
		b->opt.label ? b->opt.label : "", b->opt.pin ? b->opt.pin : "none",
		b->opt.via == PUBLISH_ADMIN ? "admin" : "client", b->opt.users,
		b->opt.gateway_count, b->link_count, b->opt.rate, b->opt.in_flight,
		b->opt.payload_size, b->next_msg, b->stored, b->failed, r->receivers,
		r->unique, bench_expected(b), r->missing, r->duplicates,
		r->reordered, r->disconnects, f->publish_s, f->delivery_s,
		f->msgs_per_s, f->deliveries_per_s, f->biz_cpu_us,
		benchrun_per(f->biz_cpu_us, b->stored), f->gw_cpu_us,
		benchrun_per(f->gw_cpu_us, r->unique), benchrun_per(f->gw_cpu_us, b->stored),
		f->biz_hwm_kb, f->gw_hwm_kb, b->bench_cpu_us, f->lat[0], f->lat[1],
		f->lat[2], f->lat[3], f->last[0], f->last[1], f->last[2], f->last[3],
		b->opt.window_delivered ? "delivered" : "stored");
	return fclose(out) ? -errno : 0;
}

static json_t *latency_json(const double *v)
{
	return json_pack("{s:f, s:f, s:f, s:f}", "p50_ms", v[0], "p99_ms", v[1],
			 "p999_ms", v[2], "max_ms", v[3]);
}

static json_t *daemons_json(const struct bench *b)
{
	json_t *arr = json_array();

	for (int i = 0; i < b->daemon_count; i++) {
		const struct daemon_stat *d = &b->daemons[i];
		uint64_t cpu = d->cpu_end_us - d->cpu_start_us;

		json_array_append_new(arr, json_pack("{s:s, s:i, s:I, s:f, s:I}",
			"role", d->role, "pid", (int)d->pid, "cpu_us", (json_int_t)cpu,
			"cpu_us_per_msg", benchrun_per(cpu, b->stored),
			"peak_rss_kb", (json_int_t)d->hwm_kb));
	}
	return arr;
}

static int bench_write_json(const struct bench *b, const struct figures *f)
{
	const struct ctl_result *r = &b->res;
	json_t *out;
	int err;

	out = json_pack("{s:s?, s:s?, s:s, s:i, s:i, s:i, s:f, s:i, s:i, s:i, s:I, s:I,"
			" s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f,"
			" s:f, s:f, s:I, s:o, s:o, s:o}",
		"label", b->opt.label, "pin", b->opt.pin,
		"publish_via", b->opt.via == PUBLISH_ADMIN ? "admin" : "client",
		"members", b->opt.users, "gateways", b->opt.gateway_count,
		"workers", b->link_count, "rate", b->opt.rate,
		"in_flight", b->opt.in_flight, "payload_bytes", b->opt.payload_size,
		"published", b->next_msg, "stored", (json_int_t)b->stored,
		"failed", (json_int_t)b->failed, "receivers", (json_int_t)r->receivers,
		"deliveries", (json_int_t)r->unique,
		"expected", (json_int_t)bench_expected(b),
		"missing", (json_int_t)r->missing, "duplicates", (json_int_t)r->duplicates,
		"reordered", (json_int_t)r->reordered,
		"disconnects", (json_int_t)r->disconnects,
		"login_failures", (json_int_t)b->login_failed,
		"publish_s", f->publish_s, "delivery_s", f->delivery_s,
		"msgs_per_s", f->msgs_per_s, "deliveries_per_s", f->deliveries_per_s,
		"bizsvr_us_per_msg", benchrun_per(f->biz_cpu_us, b->stored),
		"gateway_us_per_delivery", benchrun_per(f->gw_cpu_us, r->unique),
		"bench_cpu_us", (json_int_t)b->bench_cpu_us,
		"daemons", daemons_json(b), "latency", latency_json(f->lat),
		"last_member_latency", latency_json(f->last));
	if (!out)
		return -ENOMEM;
	err = json_dump_file(out, b->opt.json, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
	json_decref(out);
	return err ? -EIO : 0;
}

/* Returns the exit status: 1 when the run lost, duplicated or failed
 * anything, so the figures do not describe the whole workload. */
static int bench_verdict(const struct bench *b)
{
	const struct ctl_result *r = &b->res;

	if (r->missing || r->duplicates || r->reordered || b->incomplete_msgs) {
		fprintf(stderr, "imgw-bench: FAILED: %" PRIu64 " deliveries missing, %" PRIu64
			" duplicated, %" PRIu64 " out of order\n", r->missing,
			r->duplicates, r->reordered);
		return 1;
	}
	if (b->failed || b->stored < (uint64_t)b->opt.messages || b->interrupted) {
		fprintf(stderr, "imgw-bench: FAILED: %" PRIu64 " of %d messages stored, %" PRIu64
			" failed\n", b->stored, b->opt.messages, b->failed);
		return 1;
	}
	if (b->login_failed || r->disconnects || r->receivers == 0) {
		fprintf(stderr, "imgw-bench: FAILED: %" PRIu64 " login failures, %" PRIu64
			" disconnects, %" PRIu64 " receivers\n", b->login_failed,
			r->disconnects, r->receivers);
		return 1;
	}
	return 0;
}

static int bench_report(struct bench *b)
{
	struct figures f;
	int err;

	if (bench_merge(b) < 0)
		return 1;
	bench_figures(b, &f);
	bench_print(b, &f);
	if (b->opt.csv && (err = bench_write_csv(b, &f)) < 0)
		fprintf(stderr, "imgw-bench: writing %s failed: %s\n", b->opt.csv,
			strerror(-err));
	if (b->opt.json && (err = bench_write_json(b, &f)) < 0)
		fprintf(stderr, "imgw-bench: writing %s failed: %s\n", b->opt.json,
			strerror(-err));
	return bench_verdict(b);
}

/* ---- options and startup ---- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: imgw-bench [options]\n"
		"  --gateway HOST:PORT    gateway; repeat for several, members spread round-robin (default 127.0.0.1:7070)\n"
		"  --admin URL            bizsvr admin API (default $IMGW_ADMIN or %s)\n"
		"  --secret SECRET        mint tokens locally with the daemon's secret (default: $IMGW_SECRET, else POST /v1/tokens)\n"
		"  --users N              members of the session, one connection each (default 1000)\n"
		"  --groups N             sessions; above 1, their sizes follow Zipf's law, add up to about\n"
		"                         --users and each member is in one (default 1)\n"
		"  --zipf S               Zipf exponent of the session sizes (default 1.0)\n"
		"  --seed N               seed of the session each message goes to (default 1)\n"
		"  --workers N            receiving processes (default: one per %d members)\n"
		"  --messages N           messages to publish (default 1000)\n"
		"  --rate MSG/S           fixed publish rate; 0 publishes as fast as --in-flight allows (default 0)\n"
		"  --in-flight N          most messages published and not yet stored, 1..%d (default 8)\n"
		"  --payload-size BYTES   payload size, %d..32768 (default 128)\n"
		"  --publish admin|client POST /v1/sessions/ID/messages, or SEND from one more member (default admin)\n"
		"  --window stored|delivered  a message leaves --in-flight once stored, or once every member has it (default stored)\n"
		"  --pin normal|super     pin the session's type and wait for every gateway before publishing\n"
		"  --bizsvr-pid PID       report this bizsvr's CPU time and peak RSS (repeatable)\n"
		"  --gateway-pid PID      report this gateway's CPU time and peak RSS (repeatable)\n"
		"  --prefix TEXT          user and session name prefix (default \"b<pid>-\")\n"
		"  --label TEXT           name of this run in the summary, CSV and JSON\n"
		"  --csv FILE             append one row of figures (a header first when FILE is new)\n"
		"  --json FILE            write the figures as JSON\n"
		"exits 1 when a delivery was missing, duplicated or out of order, a publish failed,\n"
		"or a member failed to log in or was disconnected\n",
		ADMIN_DEFAULT_URL, BENCH_FDS_PER_WORKER, BENCH_MAX_IN_FLIGHT,
		BENCHRUN_PAYLOAD_HEAD_LEN);
}

static int parse_long(const char *name, const char *text, long min, long max,
		      long *out)
{
	char *end;

	errno = 0;
	*out = strtol(text, &end, 10);
	if (errno || end == text || *end || *out < min || *out > max) {
		fprintf(stderr, "imgw-bench: invalid --%s '%s': expected an integer from %ld to %ld\n",
			name, text, min, max);
		return -EINVAL;
	}
	return 0;
}

static int add_pid(const char *name, const char *text, pid_t *pids, int *count)
{
	long v;

	if (*count == BENCH_MAX_PIDS) {
		fprintf(stderr, "imgw-bench: more than %d --%s options\n", BENCH_MAX_PIDS, name);
		return -EINVAL;
	}
	if (parse_long(name, text, 1, 1L << 30, &v) < 0)
		return -EINVAL;
	pids[(*count)++] = (pid_t)v;
	return 0;
}

static int parse_choice(const char *name, const char *text, const char *a,
			const char *b)
{
	if (strcmp(text, a) == 0)
		return 0;
	if (strcmp(text, b) == 0)
		return 1;
	fprintf(stderr, "imgw-bench: invalid --%s '%s': expected %s or %s\n", name,
		text, a, b);
	return -EINVAL;
}

static int parse_one(struct bench_options *o, int c, const char *name)
{
	long v = 0;
	int err = 0;

	switch (c) {
	case 'g':
		if (o->gateway_count == BENCH_MAX_GATEWAYS) {
			fprintf(stderr, "imgw-bench: more than %d --gateway options\n",
				BENCH_MAX_GATEWAYS);
			return -EINVAL;
		}
		o->gateways[o->gateway_count++] = optarg;
		return 0;
	case 'a': o->admin = optarg; return 0;
	case 's': o->secret = optarg; return 0;
	case 'x': o->prefix = optarg; return 0;
	case 'l': o->label = optarg; return 0;
	case 'c': o->csv = optarg; return 0;
	case 'j': o->json = optarg; return 0;
	case 'B': return add_pid(name, optarg, o->biz_pids, &o->biz_pid_count);
	case 'G': return add_pid(name, optarg, o->gw_pids, &o->gw_pid_count);
	case 'P':
		err = parse_choice(name, optarg, "admin", "client");
		o->via = err == 1 ? PUBLISH_CLIENT : PUBLISH_ADMIN;
		return err < 0 ? err : 0;
	case 'W':
		err = parse_choice(name, optarg, "stored", "delivered");
		o->window_delivered = err == 1;
		return err < 0 ? err : 0;
	case 'p':
		err = parse_choice(name, optarg, "normal", "super");
		o->pin = optarg;
		return err < 0 ? err : 0;
	case 'u': err = parse_long(name, optarg, 1, 1000000, &v); o->users = (int)v; break;
	case 'w': err = parse_long(name, optarg, 1, 64, &v); o->workers = (int)v; break;
	case 'm': err = parse_long(name, optarg, 1, 10000000, &v); o->messages = (int)v; break;
	case 'N': err = parse_long(name, optarg, 1, 100000, &v); o->groups = (int)v; break;
	case 'S': err = parse_long(name, optarg, 0, INT32_MAX, &v); o->seed = (unsigned int)v; break;
	case 'Z':
		o->zipf_s = strtod(optarg, NULL);
		if (o->zipf_s <= 0 || o->zipf_s > 10) {
			fprintf(stderr, "imgw-bench: invalid --zipf '%s': expected an exponent above 0, up to 10\n",
				optarg);
			return -EINVAL;
		}
		break;
	case 'i':
		err = parse_long(name, optarg, 1, BENCH_MAX_IN_FLIGHT, &v);
		o->in_flight = (int)v;
		break;
	case 'z':
		err = parse_long(name, optarg, BENCHRUN_PAYLOAD_HEAD_LEN, 32768, &v);
		o->payload_size = (int)v;
		break;
	case 'r':
		o->rate = strtod(optarg, NULL);
		if (o->rate < 0 || o->rate > 1e6) {
			fprintf(stderr, "imgw-bench: invalid --rate '%s': expected 0 to 1000000 msg/s\n",
				optarg);
			return -EINVAL;
		}
		break;
	default:
		return -EINVAL;
	}
	return err;
}

static int parse_options(int argc, char **argv, struct bench_options *o)
{
	static const struct option opts[] = {
		{ "gateway", required_argument, NULL, 'g' },
		{ "admin", required_argument, NULL, 'a' },
		{ "secret", required_argument, NULL, 's' },
		{ "users", required_argument, NULL, 'u' },
		{ "workers", required_argument, NULL, 'w' },
		{ "messages", required_argument, NULL, 'm' },
		{ "groups", required_argument, NULL, 'N' },
		{ "zipf", required_argument, NULL, 'Z' },
		{ "seed", required_argument, NULL, 'S' },
		{ "rate", required_argument, NULL, 'r' },
		{ "in-flight", required_argument, NULL, 'i' },
		{ "payload-size", required_argument, NULL, 'z' },
		{ "publish", required_argument, NULL, 'P' },
		{ "pin", required_argument, NULL, 'p' },
		{ "window", required_argument, NULL, 'W' },
		{ "bizsvr-pid", required_argument, NULL, 'B' },
		{ "gateway-pid", required_argument, NULL, 'G' },
		{ "prefix", required_argument, NULL, 'x' },
		{ "label", required_argument, NULL, 'l' },
		{ "csv", required_argument, NULL, 'c' },
		{ "json", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c, err = 0;

	while (err == 0 && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		const char *name = "";

		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		for (const struct option *p = opts; p->name; p++) {
			if (p->val == c)
				name = p->name;
		}
		err = parse_one(o, c, name);
	}
	if (err == 0 && optind != argc) {
		fprintf(stderr, "imgw-bench: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return err;
}

static int resolve_gateways(struct bench *b)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	char host[256], port_text[8];
	uint16_t port;
	int rc;

	for (int i = 0; i < b->opt.gateway_count; i++) {
		if (parse_host_port(b->opt.gateways[i], host, sizeof(host), &port) < 0) {
			fprintf(stderr, "imgw-bench: invalid --gateway '%s': expected HOST:PORT\n",
				b->opt.gateways[i]);
			return -EINVAL;
		}
		snprintf(port_text, sizeof(port_text), "%u", port);
		rc = getaddrinfo(host, port_text, &hints, &ai);
		if (rc) {
			fprintf(stderr, "imgw-bench: cannot resolve '%s': %s\n", host,
				gai_strerror(rc));
			return -EHOSTUNREACH;
		}
		memcpy(&b->gw_addrs[i], ai->ai_addr, ai->ai_addrlen);
		b->gw_addr_lens[i] = ai->ai_addrlen;
		freeaddrinfo(ai);
	}
	return 0;
}

static int parse_admin_url(struct bench *b)
{
	struct evhttp_uri *uri = evhttp_uri_parse(b->opt.admin);
	const char *host = uri ? evhttp_uri_get_host(uri) : NULL;
	int port = uri ? evhttp_uri_get_port(uri) : -1;

	if (!host || port <= 0 || port > 65535) {
		fprintf(stderr, "imgw-bench: invalid --admin '%s': expected http://HOST:PORT\n",
			b->opt.admin);
		if (uri)
			evhttp_uri_free(uri);
		return -EINVAL;
	}
	snprintf(b->admin_host, sizeof(b->admin_host), "%s", host);
	b->admin_port = (uint16_t)port;
	evhttp_uri_free(uri);
	return 0;
}

static int bench_check_options(struct bench *b)
{
	struct bench_options *o = &b->opt;

	int members;

	if (o->gateway_count == 0)
		o->gateways[o->gateway_count++] = "127.0.0.1:7070";
	if (o->groups > 1 && o->via == PUBLISH_CLIENT) {
		fprintf(stderr, "imgw-bench: --publish client needs --groups 1: the publishing member is in one session\n");
		return -EINVAL;
	}
	members = plan_build(&b->plan, o);
	if (members < 0) {
		fprintf(stderr, "imgw-bench: planning %d groups failed: %s\n", o->groups,
			strerror(-members));
		return members;
	}
	if (o->groups > 1)
		o->users = members;
	if (!o->workers)
		o->workers = (o->users + BENCH_FDS_PER_WORKER - 1) / BENCH_FDS_PER_WORKER;
	if (o->workers > o->users)
		o->workers = o->users;
	for (int i = 0; i < o->biz_pid_count; i++)
		b->daemons[b->daemon_count++] = (struct daemon_stat){
			.pid = o->biz_pids[i], .role = "bizsvr" };
	for (int i = 0; i < o->gw_pid_count; i++)
		b->daemons[b->daemon_count++] = (struct daemon_stat){
			.pid = o->gw_pids[i], .role = "gateway" };
	if (benchrun_raise_nofile("imgw-bench", (o->users + o->workers - 1) / o->workers) < 0)
		return -EINVAL;
	if (resolve_gateways(b) < 0 || parse_admin_url(b) < 0)
		return -EINVAL;
	return 0;
}

static int bench_setup(struct bench *b)
{
	int err;

	b->base = event_base_new();
	b->ac = b->base ? admin_client_new(b->base, b->opt.admin, 30) : NULL;
	if (!b->ac)
		return -ENOMEM;
	err = bench_create_sessions(b);
	if (err == 0)
		err = bench_mint_tokens(b);
	if (err == 0 && b->plan.groups == 1)
		fprintf(stderr, "imgw-bench: session %" PRIu64 " with %d members; starting %d workers\n",
			b->plan.session_ids[0], b->opt.users, b->opt.workers);
	else if (err == 0)
		fprintf(stderr, "imgw-bench: %d sessions of %d to %d members, %d members in all; starting %d workers\n",
			b->plan.groups, b->plan.group_size[b->plan.groups - 1],
			b->plan.group_size[0], b->opt.users, b->opt.workers);
	if (err == 0)
		err = bench_fork_workers(b);
	return err;
}

static int bench_collect_ready(struct bench *b)
{
	int err = bench_wait_links(b, 0, 600);

	if (err < 0) {
		fprintf(stderr, "imgw-bench: waiting for the logins failed: %s\n",
			strerror(-err));
		return err;
	}
	for (int i = 0; i < b->link_count; i++) {
		b->online += b->links[i].ready_rec.online;
		b->active_links += b->links[i].ready_rec.online > 0;
		b->login_failed += b->links[i].ready_rec.failed;
	}
	fprintf(stderr, "imgw-bench: %" PRIu64 " members online, %" PRIu64 " failed to log in\n",
		b->online, b->login_failed);
	return b->online ? 0 : -ENOTCONN;
}

/* Tells the workers how many messages were stored and waits for their
 * results. */
static int bench_stop_workers(struct bench *b)
{
	struct ctl_stop stop = {
		.acked = b->stored, .idle_ms = BENCH_DRAIN_IDLE_SEC * 1000,
		.max_ms = BENCH_DRAIN_MAX_SEC * 1000,
	};
	size_t tail = (size_t)b->plan.groups * sizeof(uint64_t);
	uint64_t *acked = calloc((size_t)b->plan.groups, sizeof(uint64_t));
	int err = acked ? 0 : -ENOMEM;

	for (int k = 0; acked && k < b->next_msg; k++) {
		if (b->msgs[k].state == MSG_STORED)
			acked[plan_msg_group(&b->plan, (uint64_t)k)]++;
	}
	for (int i = 0; i < b->link_count && err == 0; i++)
		err = ctl_send(b->links[i].fd, CTL_STOP, &stop, sizeof(stop), acked, tail);
	free(acked);
	if (err == 0)
		err = bench_wait_links(b, 1, BENCH_DRAIN_MAX_SEC + 30);
	if (err < 0)
		fprintf(stderr, "imgw-bench: collecting the workers' results failed: %s\n",
			strerror(-err));
	return err;
}

static void bench_reap(struct bench *b)
{
	struct rusage self, children;

	for (int i = 0; i < b->link_count; i++) {
		int status;

		if (b->links[i].fd >= 0)
			close(b->links[i].fd);
		b->links[i].fd = -1;
		if (b->links[i].pid > 0 && waitpid(b->links[i].pid, &status, 0) > 0 &&
		    !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			fprintf(stderr, "imgw-bench: worker %d (pid %d) failed\n", i,
				(int)b->links[i].pid);
		b->links[i].pid = 0;
	}
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &children);
	b->bench_cpu_us = benchrun_rusage_us(&self) +
			  benchrun_rusage_us(&children) -
			  benchrun_rusage_us(&b->self_start);
}

static void bench_free(struct bench *b)
{
	for (int i = 0; b->links && i < b->link_count; i++) {
		if (b->links[i].pid > 0)
			kill(b->links[i].pid, SIGTERM);
		if (b->link_evs && b->link_evs[i])
			event_free(b->link_evs[i]);
		free(b->links[i].buf);
		free(b->links[i].result);
	}
	bench_reap(b);
	for (int i = 0; b->tokens && i < b->opt.users; i++)
		free(b->tokens[i]);
	for (int i = 0; b->slots && i < b->opt.in_flight; i++) {
		if (b->slots[i].conn)
			evhttp_connection_free(b->slots[i].conn);
	}
	free(b->slots);
	free(b->tokens);
	free(b->links);
	free(b->link_evs);
	free(b->msgs);
	free(b->last_member_ns);
	free(b->group_links);
	plan_free(&b->plan);
	if (b->pub_bev)
		bufferevent_free(b->pub_bev);
	if (b->tick_ev)
		event_free(b->tick_ev);
	if (b->second_ev)
		event_free(b->second_ev);
	if (b->ac)
		admin_client_free(b->ac);
	if (b->base)
		event_base_free(b->base);
}

static int bench_run(struct bench *b)
{
	int err;

	err = bench_setup(b);
	if (err == 0)
		err = bench_collect_ready(b);
	if (err == 0 && b->opt.pin)
		err = bench_pin(b);
	if (err == 0 && b->opt.via == PUBLISH_CLIENT)
		err = bench_connect_publisher(b);
	if (err == 0 && b->opt.via == PUBLISH_ADMIN)
		err = bench_open_slots(b);
	if (err < 0)
		return err;
	getrusage(RUSAGE_SELF, &b->self_start);
	daemons_snapshot(b, 0);
	err = bench_publish(b);
	if (err == 0)
		err = bench_stop_workers(b);
	daemons_snapshot(b, 1);
	bench_reap(b);
	return err;
}

int main(int argc, char **argv)
{
	static struct bench b;
	static char prefix[32];
	int rc = 1;

	b.opt = (struct bench_options){
		.users = 1000, .messages = 1000, .in_flight = 8, .payload_size = 128,
		.via = PUBLISH_ADMIN, .groups = 1, .zipf_s = 1.0, .seed = 1,
	};
	b.opt.admin = getenv("IMGW_ADMIN");
	if (!b.opt.admin || !b.opt.admin[0])
		b.opt.admin = ADMIN_DEFAULT_URL;
	b.opt.secret = getenv("IMGW_SECRET");
	if (b.opt.secret && !b.opt.secret[0])
		b.opt.secret = NULL;
	snprintf(prefix, sizeof(prefix), "b%d-", (int)getpid());
	b.opt.prefix = prefix;
	if (parse_options(argc, argv, &b.opt) < 0) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (bench_check_options(&b) < 0) {
		plan_free(&b.plan);
		return 2;
	}
	if (bench_run(&b) == 0)
		rc = bench_report(&b);
	bench_free(&b);
	return rc;
}

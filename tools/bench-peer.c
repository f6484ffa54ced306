// SPDX-License-Identifier: MIT
/*
 * bench-peer: the imgw-bench workload shape against the systems users would
 * pick instead of imgw: Redis pub/sub (hiredis subscribers), MQTT QoS 0 on
 * Mosquitto (libmosquitto subscribers) and bench-sendloop, the reference
 * sender that makes one send() per delivery. It forks worker processes that
 * subscribe --members clients to one group (a Redis channel, an MQTT topic,
 * a sendloop group) or to --groups groups with Zipf sizes. The parent then
 * publishes --messages messages, at --rate msg/s or as fast as --in-flight
 * unacknowledged publishes allow, each to one group: the only group, or one
 * picked at random. A publish is acknowledged by the PUBLISH reply (Redis),
 * the PUBACK of a QoS 1 publish (MQTT: the server fans it out before the
 * PUBACK, and deliveries to the QoS 0 subscriptions stay QoS 0) or the ack
 * byte (sendloop). Payloads carry their index and publish time, so workers
 * check loss, duplicates and order per receiver and measure the latency of
 * every delivery and of the last member of each message. The parent reads
 * the server's CPU time and peak RSS from /proc, prints a summary and
 * appends a CSV row. It exits 1 on any loss, duplicate or failed subscribe.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/hiredis.h>
#include <mosquitto.h>

#include "benchrun.h"
#include "benchstat.h"

#define NSEC_PER_SEC 1000000000ULL
#define NSEC_PER_MSEC 1000000ULL
#define PEER_MAX_PIDS 8
#define PEER_MAX_IN_FLIGHT 4096
#define PEER_CONNECT_WINDOW 64          /* subscribes in flight per worker */
#define PEER_FDS_PER_WORKER 16000       /* below the usual hard limit of 20,000 */
#define PEER_DRAIN_IDLE_SEC 5
#define PEER_DRAIN_MAX_SEC 120
#define PEER_READY_SEC 300
#define PEER_MQTT_KEEPALIVE 3600
#define SENDLOOP_PUBLISHER 0xffffffffu
#define CTL_RESULT_MARK 0xffffffffu     /* ends the uint32_t done records of a worker */

/* Payload head: "imgwbench:" 10-digit message index ":" 19-digit ns. */

enum peer_system {
	SYS_REDIS,
	SYS_MQTT,
	SYS_SENDLOOP,
};

static const char *const system_names[] = { "redis", "mosquitto", "sendloop" };

struct peer_options {
	enum peer_system system;
	int port;
	int members;
	int groups;
	double zipf_s;
	int workers;
	int messages;
	int in_flight;
	double rate;
	int payload_size;
	int window_delivered;           /* a message stays in flight until every member has it */
	unsigned int seed;
	pid_t server_pids[PEER_MAX_PIDS];
	int server_pid_count;
	const char *label;
	const char *workload;
	const char *csv;
};

/* Group layout and message targets, computed before the fork so the
 * parent and every worker agree on them. */
struct plan {
	int *group_size;
	int *member_group;              /* members are laid out group by group */
	int *msg_group;
	int members;
};

/* ---- control records between workers and the parent ---- */

struct ctl_ready {
	uint64_t subscribed;
	uint64_t failed;
};

struct ctl_stop {
	uint64_t published;
};

/* Followed by messages x uint64_t last receive ns, messages x uint32_t count. */
struct ctl_result {
	uint64_t receivers;
	uint64_t deliveries;
	uint64_t unique;
	uint64_t duplicates;
	uint64_t reordered;
	uint64_t unknown;
	uint64_t missing;
	uint64_t disconnects;
	uint64_t last_ns;
	struct benchstat_hist lat;
};

/* ---- plan ---- */

/* Plans the groups with the helpers imgw-bench uses, so the same --members,
 * --zipf and --seed give the same group sizes and message targets. */
static int plan_build(struct plan *p, const struct peer_options *o)
{
	p->group_size = calloc((size_t)o->groups, sizeof(int));
	p->msg_group = calloc((size_t)o->messages + 1, sizeof(int));
	if (!p->group_size || !p->msg_group)
		return -ENOMEM;
	p->members = benchrun_plan_sizes(p->group_size, o->groups, o->members,
					 o->zipf_s);
	p->member_group = calloc((size_t)p->members, sizeof(int));
	if (!p->member_group)
		return -ENOMEM;
	benchrun_plan_members(p->member_group, p->group_size, o->groups);
	benchrun_plan_messages(p->msg_group, o->messages, o->groups, o->seed);
	return 0;
}

static void plan_free(struct plan *p)
{
	free(p->group_size);
	free(p->member_group);
	free(p->msg_group);
}

/* ---- worker: subscribers ---- */

struct worker;

struct member {
	struct worker *w;
	int index;                      /* global member index */
	int group;
	int subscribed;
	int closed;
	redisAsyncContext *redis;
	struct mosquitto *mosq;
	struct event *ev;
	int fd;                         /* sendloop only */
	uint8_t *buf;                   /* sendloop: received bytes not yet parsed */
	size_t len;
	uint8_t *seen;                  /* bitmap of received message indexes */
	int64_t last_index;
};

struct worker {
	const struct peer_options *opt;
	const struct plan *plan;
	struct event_base *base;
	struct event *ctl_ev;
	struct event *tick_ev;
	int ctl_fd;
	struct member *members;
	int first;
	int count;
	int next_connect;
	int pending;
	uint64_t subscribed;
	uint64_t failed;
	int ready_sent;
	int stopping;
	uint64_t published;
	uint64_t expected;
	uint64_t last_rx_mono;
	uint64_t stop_mono;
	uint64_t *msg_last_ns;
	uint32_t *msg_count;
	uint32_t *group_members;        /* members of each group in this worker */
	struct ctl_result res;
};

static void worker_connect_more(struct worker *w);

static void member_subscribed(struct member *m, int ok)
{
	struct worker *w = m->w;

	if (m->subscribed)
		return;
	m->subscribed = ok ? 1 : -1;
	w->pending--;
	*(ok ? &w->subscribed : &w->failed) += 1;
	worker_connect_more(w);
}

/* Records one delivery of payload p to member m. */
static void member_deliver(struct member *m, const uint8_t *p, size_t len)
{
	struct worker *w = m->w;
	uint64_t now = benchstat_now_ns(CLOCK_REALTIME), index, pub_ns;

	w->last_rx_mono = benchstat_now_ns(CLOCK_MONOTONIC);
	w->res.deliveries++;
	if (benchrun_payload_parse(p, len, &index, &pub_ns) < 0 ||
	    index >= (uint64_t)w->opt->messages ||
	    w->plan->msg_group[index] != m->group) {
		w->res.unknown++;
		return;
	}
	if (m->seen[index / 8] & (1u << (index % 8))) {
		w->res.duplicates++;
		return;
	}
	m->seen[index / 8] |= (uint8_t)(1u << (index % 8));
	if ((int64_t)index < m->last_index)
		w->res.reordered++;
	m->last_index = (int64_t)index;
	w->res.unique++;
	benchstat_hist_add(&w->res.lat, now > pub_ns ? now - pub_ns : 0);
	if (now > w->msg_last_ns[index])
		w->msg_last_ns[index] = now;
	w->msg_count[index]++;
	if (w->opt->window_delivered &&
	    w->msg_count[index] == w->group_members[m->group]) {
		uint32_t done = (uint32_t)index;

		if (benchrun_write_full(w->ctl_fd, &done, sizeof(done)) < 0)
			event_base_loopbreak(w->base);
	}
}

static void member_closed(struct member *m)
{
	if (m->subscribed > 0 && !m->closed)
		m->w->res.disconnects++;
	if (!m->subscribed)
		member_subscribed(m, 0);
	m->closed = 1;
}

/* ---- worker: Redis ---- */

static void redis_on_reply(redisAsyncContext *c, void *r, void *priv)
{
	struct member *m = priv;
	redisReply *reply = r;

	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
		return;
	if (strcmp(reply->element[0]->str, "subscribe") == 0)
		member_subscribed(m, 1);
	else if (strcmp(reply->element[0]->str, "message") == 0)
		member_deliver(m, (const uint8_t *)reply->element[2]->str,
			       reply->element[2]->len);
}

static void redis_on_disconnect(const redisAsyncContext *c, int status)
{
	struct member *m = c->data;

	m->redis = NULL;
	member_closed(m);
}

static int redis_member_start(struct member *m)
{
	redisAsyncContext *c = redisAsyncConnect("127.0.0.1", m->w->opt->port);

	if (!c || c->err) {
		fprintf(stderr, "bench-peer: redis connect for member %d failed: %s\n",
			m->index, c ? c->errstr : "out of memory");
		if (c)
			redisAsyncFree(c);
		return -ECONNREFUSED;
	}
	c->data = m;
	m->redis = c;
	redisLibeventAttach(c, m->w->base);
	redisAsyncSetDisconnectCallback(c, redis_on_disconnect);
	redisAsyncCommand(c, redis_on_reply, m, "SUBSCRIBE g%d", m->group);
	return 0;
}

/* ---- worker: MQTT ---- */

static void mqtt_pump(struct mosquitto *mosq);

static void mqtt_on_connect(struct mosquitto *mosq, void *priv, int rc)
{
	struct member *m = priv;
	char topic[32];

	if (rc != 0) {
		member_subscribed(m, 0);
		return;
	}
	snprintf(topic, sizeof(topic), "bench/g%d", m->group);
	if (mosquitto_subscribe(mosq, NULL, topic, 0) != MOSQ_ERR_SUCCESS)
		member_subscribed(m, 0);
}

static void mqtt_on_subscribe(struct mosquitto *mosq, void *priv, int mid,
			      int qos_count, const int *granted)
{
	member_subscribed(priv, qos_count == 1 && granted[0] == 0);
}

static void mqtt_on_message(struct mosquitto *mosq, void *priv,
			    const struct mosquitto_message *msg)
{
	member_deliver(priv, msg->payload, (size_t)msg->payloadlen);
}

static void mqtt_on_event(evutil_socket_t fd, short what, void *priv)
{
	struct member *m = priv;
	int rc = mosquitto_loop_read(m->mosq, 64);

	if (rc != MOSQ_ERR_SUCCESS) {
		event_del(m->ev);
		member_closed(m);
		return;
	}
	mqtt_pump(m->mosq);
}

/* Writes what libmosquitto queued inside a callback. */
static void mqtt_pump(struct mosquitto *mosq)
{
	int tries = 1000;

	while (mosquitto_want_write(mosq) && tries-- > 0)
		if (mosquitto_loop_write(mosq, 1) != MOSQ_ERR_SUCCESS)
			break;
}

static int mqtt_member_start(struct member *m)
{
	char id[48];
	int rc;

	snprintf(id, sizeof(id), "bench-%d-%d", (int)getpid(), m->index);
	m->mosq = mosquitto_new(id, true, m);
	if (!m->mosq)
		return -ENOMEM;
	mosquitto_connect_callback_set(m->mosq, mqtt_on_connect);
	mosquitto_subscribe_callback_set(m->mosq, mqtt_on_subscribe);
	mosquitto_message_callback_set(m->mosq, mqtt_on_message);
	rc = mosquitto_connect(m->mosq, "127.0.0.1", m->w->opt->port,
			       PEER_MQTT_KEEPALIVE);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "bench-peer: MQTT connect for member %d failed: %s\n",
			m->index, mosquitto_strerror(rc));
		return -ECONNREFUSED;
	}
	m->ev = event_new(m->w->base, mosquitto_socket(m->mosq),
			  EV_READ | EV_PERSIST, mqtt_on_event, m);
	if (!m->ev)
		return -ENOMEM;
	event_add(m->ev, NULL);
	return 0;
}

/* ---- worker: sendloop ---- */

static void sendloop_parse(struct member *m)
{
	size_t off = 0;

	if (!m->subscribed && m->len >= 1) {
		member_subscribed(m, m->buf[0] == 'k');
		off = 1;
	}
	while (m->len - off >= 4) {
		uint32_t n;

		memcpy(&n, m->buf + off, 4);
		n = ntohl(n);
		if (m->len - off < 4 + (size_t)n)
			break;
		member_deliver(m, m->buf + off + 4, n);
		off += 4 + n;
	}
	memmove(m->buf, m->buf + off, m->len - off);
	m->len -= off;
}

static void sendloop_on_read(evutil_socket_t fd, short what, void *priv)
{
	struct member *m = priv;
	size_t cap = 4 + 65536 + 1;
	ssize_t n;

	n = recv(fd, m->buf + m->len, cap - m->len, 0);
	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		event_del(m->ev);
		member_closed(m);
		return;
	}
	m->len += (size_t)n;
	sendloop_parse(m);
}

static int sendloop_connect(int port, uint32_t group)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	uint32_t hello = htonl(group);
	int fd, one = 1, err;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    benchrun_write_full(fd, &hello, sizeof(hello)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int sendloop_member_start(struct member *m)
{
	m->fd = sendloop_connect(m->w->opt->port, (uint32_t)m->group);
	if (m->fd < 0)
		return m->fd;
	evutil_make_socket_nonblocking(m->fd);
	m->buf = malloc(4 + 65536 + 1);
	m->ev = event_new(m->w->base, m->fd, EV_READ | EV_PERSIST, sendloop_on_read, m);
	if (!m->buf || !m->ev)
		return -ENOMEM;
	event_add(m->ev, NULL);
	return 0;
}

/* ---- worker: loop ---- */

static void worker_send_ready(struct worker *w)
{
	struct ctl_ready r = { .subscribed = w->subscribed, .failed = w->failed };

	if (w->ready_sent || w->subscribed + w->failed < (uint64_t)w->count)
		return;
	w->ready_sent = 1;
	w->res.receivers = w->subscribed;
	if (benchrun_write_full(w->ctl_fd, &r, sizeof(r)) < 0)
		event_base_loopbreak(w->base);
}

static void worker_connect_more(struct worker *w)
{
	while (w->pending < PEER_CONNECT_WINDOW && w->next_connect < w->count) {
		struct member *m = &w->members[w->next_connect++];
		int err;

		w->pending++;
		if (w->opt->system == SYS_REDIS)
			err = redis_member_start(m);
		else if (w->opt->system == SYS_MQTT)
			err = mqtt_member_start(m);
		else
			err = sendloop_member_start(m);
		if (err < 0) {
			m->closed = 1;
			member_subscribed(m, 0);
		}
	}
	worker_send_ready(w);
}

static void worker_finish(struct worker *w)
{
	size_t m = (size_t)w->opt->messages;
	uint32_t mark = CTL_RESULT_MARK;

	for (int i = 0; i < w->count; i++) {
		struct member *mb = &w->members[i];

		if (mb->subscribed <= 0)
			continue;
		for (uint64_t k = 0; k < w->published; k++)
			if (w->plan->msg_group[k] == mb->group &&
			    !(mb->seen[k / 8] & (1u << (k % 8))))
				w->res.missing++;
	}
	if (benchrun_write_full(w->ctl_fd, &mark, sizeof(mark)) < 0 ||
	    benchrun_write_full(w->ctl_fd, &w->res, sizeof(w->res)) < 0 ||
	    benchrun_write_full(w->ctl_fd, w->msg_last_ns, m * sizeof(uint64_t)) < 0 ||
	    benchrun_write_full(w->ctl_fd, w->msg_count, m * sizeof(uint32_t)) < 0)
		fprintf(stderr, "bench-peer: worker %d: sending the result failed\n",
			(int)getpid());
	event_base_loopbreak(w->base);
}

static void worker_on_tick(evutil_socket_t fd, short what, void *priv)
{
	struct worker *w = priv;
	uint64_t now = benchstat_now_ns(CLOCK_MONOTONIC);

	for (int i = 0; w->opt->system == SYS_MQTT && i < w->count; i++)
		if (w->members[i].mosq && !w->members[i].closed)
			mosquitto_loop_misc(w->members[i].mosq);
	if (!w->stopping)
		return;
	if (w->res.unique >= w->expected ||
	    now - w->last_rx_mono > PEER_DRAIN_IDLE_SEC * NSEC_PER_SEC ||
	    now - w->stop_mono > PEER_DRAIN_MAX_SEC * NSEC_PER_SEC)
		worker_finish(w);
}

static void worker_on_ctl(evutil_socket_t fd, short what, void *priv)
{
	struct worker *w = priv;
	struct ctl_stop stop;

	if (benchrun_read_full(fd, &stop, sizeof(stop), 10) < 0) {
		event_base_loopbreak(w->base);
		return;
	}
	w->published = stop.published;
	for (int i = 0; i < w->count; i++) {
		if (w->members[i].subscribed <= 0)
			continue;
		for (uint64_t k = 0; k < w->published; k++)
			w->expected += w->plan->msg_group[k] == w->members[i].group;
	}
	w->stopping = 1;
	w->stop_mono = benchstat_now_ns(CLOCK_MONOTONIC);
	w->last_rx_mono = w->last_rx_mono > w->stop_mono ? w->last_rx_mono : w->stop_mono;
	event_del(w->ctl_ev);
}

static void worker_free(struct worker *w)
{
	for (int i = 0; w->members && i < w->count; i++) {
		struct member *m = &w->members[i];

		if (m->ev)
			event_free(m->ev);
		if (m->redis) {
			m->redis->data = m;
			redisAsyncSetDisconnectCallback(m->redis, NULL);
			redisAsyncFree(m->redis);
		}
		if (m->mosq) {
			mosquitto_disconnect(m->mosq);
			mosquitto_destroy(m->mosq);
		}
		if (m->fd > 0)
			close(m->fd);
		free(m->buf);
		free(m->seen);
	}
	free(w->members);
	free(w->msg_last_ns);
	free(w->msg_count);
	free(w->group_members);
	if (w->ctl_ev)
		event_free(w->ctl_ev);
	if (w->tick_ev)
		event_free(w->tick_ev);
	if (w->base)
		event_base_free(w->base);
}

static int worker_init(struct worker *w)
{
	size_t bitmap = ((size_t)w->opt->messages + 7) / 8 + 1;
	struct timeval tick = { 0, 100000 };

	w->base = event_base_new();
	w->members = calloc((size_t)w->count, sizeof(*w->members));
	w->msg_last_ns = calloc((size_t)w->opt->messages + 1, sizeof(uint64_t));
	w->msg_count = calloc((size_t)w->opt->messages + 1, sizeof(uint32_t));
	w->group_members = calloc((size_t)w->opt->groups, sizeof(uint32_t));
	if (!w->base || !w->members || !w->msg_last_ns || !w->msg_count ||
	    !w->group_members)
		return -ENOMEM;
	for (int i = 0; i < w->count; i++) {
		struct member *m = &w->members[i];

		m->w = w;
		m->index = w->first + i;
		m->group = w->plan->member_group[m->index];
		w->group_members[m->group]++;
		m->last_index = -1;
		m->fd = -1;
		m->seen = calloc(bitmap, 1);
		if (!m->seen)
			return -ENOMEM;
	}
	w->ctl_ev = event_new(w->base, w->ctl_fd, EV_READ | EV_PERSIST, worker_on_ctl, w);
	w->tick_ev = event_new(w->base, -1, EV_PERSIST, worker_on_tick, w);
	if (!w->ctl_ev || !w->tick_ev)
		return -ENOMEM;
	event_add(w->ctl_ev, NULL);
	event_add(w->tick_ev, &tick);
	return 0;
}

static int worker_main(const struct peer_options *o, const struct plan *p,
		       int first, int count, int ctl_fd)
{
	static struct worker w;
	int err;

	w = (struct worker){ .opt = o, .plan = p, .first = first, .count = count,
			     .ctl_fd = ctl_fd };
	err = worker_init(&w);
	if (err == 0) {
		worker_connect_more(&w);
		event_base_dispatch(w.base);
	}
	worker_free(&w);
	return err < 0 ? 1 : 0;
}

/* ---- parent: publisher ---- */

struct link {
	pid_t pid;
	int fd;
	struct event *ev;
	struct ctl_ready ready;
	struct ctl_result *res;
	uint64_t *last_ns;
	uint32_t *count;
};

struct server_stat {
	pid_t pid;
	uint64_t cpu_start_us;
	uint64_t cpu_end_us;
	uint64_t hwm_kb;
};

struct bench {
	struct peer_options opt;
	struct plan plan;
	struct event_base *base;
	struct event *tick_ev;
	struct link *links;
	int link_count;
	uint64_t subscribed;
	uint64_t sub_failed;
	/* publisher, one of these per system */
	redisAsyncContext *redis;
	struct mosquitto *mosq;
	struct event *mosq_ev;
	struct bufferevent *sl_bev;
	char *payload;
	int next_msg;
	uint64_t acked;
	int outstanding;
	int pub_failed;
	int stalled;
	uint64_t *pub_ns;
	uint8_t *msg_acked;
	uint8_t *msg_released;
	uint32_t *msg_done;             /* workers that reported the message done */
	uint32_t *group_workers;        /* workers with members of each group */
	uint64_t last_release_mono;
	uint64_t start_ns;              /* CLOCK_REALTIME of the first publish */
	uint64_t start_mono;
	uint64_t last_progress_mono;
	struct server_stat servers[PEER_MAX_PIDS];
	struct ctl_result res;
	uint64_t *last_member_ns;
	uint64_t last_member_n;
	uint64_t incomplete_msgs;
	uint64_t last_delivery_ns;
	uint64_t bench_cpu_us;
};

static void bench_fill(struct bench *b);

static void bench_release(struct bench *b, uint64_t k)
{
	if (b->msg_released[k])
		return;
	b->msg_released[k] = 1;
	b->outstanding--;
	b->last_release_mono = benchstat_now_ns(CLOCK_MONOTONIC);
	bench_fill(b);
}

/* Handles the server's acknowledgement of the next message: every system
 * here acknowledges publishes on one connection in order. */
static void bench_settle(struct bench *b, int ok)
{
	uint64_t k = b->acked + (uint64_t)b->pub_failed;
	int group;

	if (k >= (uint64_t)b->next_msg)
		return;
	group = b->plan.msg_group[k];
	b->msg_acked[k] = 1;
	if (ok)
		b->acked++;
	else
		b->pub_failed++;
	if (!ok || !b->opt.window_delivered ||
	    b->msg_done[k] >= b->group_workers[group])
		bench_release(b, k);
}

/* Counts a worker whose members of its group all have message k. */
static void bench_done(struct bench *b, uint32_t k)
{
	if (k >= (uint32_t)b->next_msg)
		return;
	b->msg_done[k]++;
	if (b->msg_acked[k] &&
	    b->msg_done[k] >= b->group_workers[b->plan.msg_group[k]])
		bench_release(b, k);
}

static void bench_on_link(evutil_socket_t fd, short what, void *priv)
{
	struct bench *b = priv;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint32_t k;

	while (poll(&pfd, 1, 0) == 1) {
		if (benchrun_read_full(fd, &k, sizeof(k), 10) < 0) {
			fprintf(stderr, "bench-peer: a worker went away while publishing\n");
			b->stalled = 1;
			event_base_loopbreak(b->base);
			return;
		}
		if (k == CTL_RESULT_MARK) {
			fprintf(stderr, "bench-peer: a worker ended while publishing\n");
			b->stalled = 1;
			event_base_loopbreak(b->base);
			return;
		}
		bench_done(b, k);
	}
}

static void redis_on_publish(redisAsyncContext *c, void *r, void *priv)
{
	redisReply *reply = r;

	bench_settle(priv, reply && reply->type == REDIS_REPLY_INTEGER);
}

static void mqtt_on_publish(struct mosquitto *mosq, void *priv, int mid)
{
	bench_settle(priv, 1);
}

static void sl_on_read(struct bufferevent *bev, void *priv)
{
	struct bench *b = priv;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);

	evbuffer_drain(in, n);
	while (n-- > 0)
		bench_settle(b, 1);
}

static void sl_on_event(struct bufferevent *bev, short what, void *priv)
{
	struct bench *b = priv;

	fprintf(stderr, "bench-peer: sendloop publisher connection closed\n");
	b->pub_failed += b->outstanding;
	b->outstanding = 0;
	event_base_loopbreak(b->base);
}

static void bench_mqtt_on_event(evutil_socket_t fd, short what, void *priv)
{
	struct bench *b = priv;

	if (mosquitto_loop_read(b->mosq, 256) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "bench-peer: MQTT publisher connection closed\n");
		event_del(b->mosq_ev);
		b->pub_failed += b->outstanding;
		b->outstanding = 0;
		event_base_loopbreak(b->base);
		return;
	}
	mqtt_pump(b->mosq);
}

static int bench_publish_one(struct bench *b)
{
	int k = b->next_msg, group = b->plan.msg_group[k], len = b->opt.payload_size;
	uint64_t ns = benchstat_now_ns(CLOCK_REALTIME);
	char topic[32];
	int rc = 0;

	benchrun_payload_stamp(b->payload, k, ns);
	b->pub_ns[k] = ns;
	if (k == 0) {
		b->start_ns = ns;
		b->start_mono = benchstat_now_ns(CLOCK_MONOTONIC);
	}
	if (b->opt.system == SYS_REDIS) {
		rc = redisAsyncCommand(b->redis, redis_on_publish, b, "PUBLISH g%d %b",
				       group, b->payload, (size_t)len);
	} else if (b->opt.system == SYS_MQTT) {
		snprintf(topic, sizeof(topic), "bench/g%d", group);
		rc = mosquitto_publish(b->mosq, NULL, topic, len, b->payload, 1, false);
		mqtt_pump(b->mosq);
	} else {
		uint32_t hdr[2] = { htonl((uint32_t)group), htonl((uint32_t)len) };

		rc = bufferevent_write(b->sl_bev, hdr, sizeof(hdr));
		if (rc == 0)
			rc = bufferevent_write(b->sl_bev, b->payload, (size_t)len);
	}
	if (rc != 0)
		return -EIO;
	b->next_msg++;
	b->outstanding++;
	return 0;
}

/* Returns how many messages the rate allows by now (all without a rate). */
static int bench_due(const struct bench *b)
{
	double s;

	if (b->opt.rate <= 0 || b->next_msg == 0)
		return b->opt.messages;
	s = (double)(benchstat_now_ns(CLOCK_MONOTONIC) - b->start_mono) / NSEC_PER_SEC;
	return (int)fmin(b->opt.messages, floor(s * b->opt.rate) + 1);
}

static void bench_fill(struct bench *b)
{
	int due = bench_due(b);

	while (b->next_msg < due && b->outstanding < b->opt.in_flight) {
		if (bench_publish_one(b) < 0) {
			b->pub_failed++;
			event_base_loopbreak(b->base);
			return;
		}
	}
	if (b->next_msg >= b->opt.messages && b->outstanding == 0)
		event_base_loopbreak(b->base);
}

static void bench_on_tick(evutil_socket_t fd, short what, void *priv)
{
	struct bench *b = priv;
	uint64_t now = benchstat_now_ns(CLOCK_MONOTONIC);

	if (b->mosq)
		mosquitto_loop_misc(b->mosq);
	/* With --window delivered a lost delivery would hold its place forever. */
	if (b->outstanding > 0 &&
	    now - b->last_release_mono > 2 * PEER_DRAIN_IDLE_SEC * NSEC_PER_SEC) {
		fprintf(stderr, "bench-peer: no message left the window for %d s; stopping\n",
			2 * PEER_DRAIN_IDLE_SEC);
		b->stalled = 1;
		event_base_loopbreak(b->base);
		return;
	}
	if (now - b->last_progress_mono >= NSEC_PER_SEC) {
		b->last_progress_mono = now;
		fprintf(stderr, "bench-peer: published %d of %d, acknowledged %" PRIu64 "\n",
			b->next_msg, b->opt.messages, b->acked);
	}
	bench_fill(b);
}

static int bench_connect_redis(struct bench *b)
{
	b->redis = redisAsyncConnect("127.0.0.1", b->opt.port);
	if (!b->redis || b->redis->err)
		return -ECONNREFUSED;
	return redisLibeventAttach(b->redis, b->base) == REDIS_OK ? 0 : -EIO;
}

static int bench_connect_mqtt(struct bench *b)
{
	char id[32];

	snprintf(id, sizeof(id), "bench-pub-%d", (int)getpid());
	b->mosq = mosquitto_new(id, true, b);
	if (!b->mosq)
		return -ENOMEM;
	mosquitto_publish_callback_set(b->mosq, mqtt_on_publish);
	mosquitto_max_inflight_messages_set(b->mosq, 0);
	if (mosquitto_connect(b->mosq, "127.0.0.1", b->opt.port,
			      PEER_MQTT_KEEPALIVE) != MOSQ_ERR_SUCCESS)
		return -ECONNREFUSED;
	b->mosq_ev = event_new(b->base, mosquitto_socket(b->mosq),
			       EV_READ | EV_PERSIST, bench_mqtt_on_event, b);
	if (!b->mosq_ev)
		return -ENOMEM;
	event_add(b->mosq_ev, NULL);
	return 0;
}

static int bench_connect_sendloop(struct bench *b)
{
	int fd = sendloop_connect(b->opt.port, SENDLOOP_PUBLISHER);

	if (fd < 0)
		return fd;
	evutil_make_socket_nonblocking(fd);
	b->sl_bev = bufferevent_socket_new(b->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!b->sl_bev) {
		close(fd);
		return -ENOMEM;
	}
	bufferevent_setcb(b->sl_bev, sl_on_read, NULL, sl_on_event, b);
	return bufferevent_enable(b->sl_bev, EV_READ) ? -EIO : 0;
}

static int bench_connect_publisher(struct bench *b)
{
	struct timeval tick = { 0, 1000 };
	int err;

	b->payload = malloc((size_t)b->opt.payload_size);
	b->pub_ns = calloc((size_t)b->opt.messages + 1, sizeof(uint64_t));
	b->tick_ev = event_new(b->base, -1, EV_PERSIST, bench_on_tick, b);
	b->msg_acked = calloc((size_t)b->opt.messages + 1, 1);
	b->msg_released = calloc((size_t)b->opt.messages + 1, 1);
	b->msg_done = calloc((size_t)b->opt.messages + 1, sizeof(uint32_t));
	if (!b->payload || !b->pub_ns || !b->tick_ev || !b->msg_acked ||
	    !b->msg_released || !b->msg_done)
		return -ENOMEM;
	for (int i = 0; i < b->link_count; i++) {
		b->links[i].ev = event_new(b->base, b->links[i].fd, EV_READ | EV_PERSIST,
					   bench_on_link, b);
		if (!b->links[i].ev)
			return -ENOMEM;
		event_add(b->links[i].ev, NULL);
	}
	memset(b->payload, 'x', (size_t)b->opt.payload_size);
	if (b->opt.system == SYS_REDIS)
		err = bench_connect_redis(b);
	else if (b->opt.system == SYS_MQTT)
		err = bench_connect_mqtt(b);
	else
		err = bench_connect_sendloop(b);
	if (err < 0) {
		fprintf(stderr, "bench-peer: connecting the %s publisher to 127.0.0.1:%d failed: %s\n",
			system_names[b->opt.system], b->opt.port, strerror(-err));
		return err;
	}
	event_add(b->tick_ev, &tick);
	return 0;
}

static void servers_snapshot(struct bench *b, int end)
{
	for (int i = 0; i < b->opt.server_pid_count; i++) {
		struct server_stat *s = &b->servers[i];
		uint64_t v = 0;

		s->pid = b->opt.server_pids[i];
		if (benchstat_proc_cpu_us(s->pid, &v) < 0)
			fprintf(stderr, "bench-peer: reading the CPU time of pid %d failed\n",
				(int)s->pid);
		*(end ? &s->cpu_end_us : &s->cpu_start_us) = v;
		if (end)
			benchstat_proc_hwm_kb(s->pid, &s->hwm_kb);
	}
}

/* ---- parent: workers ---- */

static int bench_fork_workers(struct bench *b)
{
	int per = (b->plan.members + b->opt.workers - 1) / b->opt.workers;

	b->links = calloc((size_t)b->opt.workers, sizeof(*b->links));
	b->group_workers = calloc((size_t)b->opt.groups, sizeof(uint32_t));
	if (!b->links || !b->group_workers)
		return -ENOMEM;
	for (int i = 0, first = 0; i < b->opt.workers && first < b->plan.members; i++) {
		int sv[2], count = per < b->plan.members - first ? per : b->plan.members - first;
		pid_t pid;

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			return -errno;
		fflush(NULL);
		pid = fork();
		if (pid < 0)
			return -errno;
		if (pid == 0) {
			close(sv[0]);
			for (int k = 0; k < i; k++)
				close(b->links[k].fd);
			_exit(worker_main(&b->opt, &b->plan, first, count, sv[1]));
		}
		close(sv[1]);
		for (int j = first; j < first + count; j++)
			if (j == first || b->plan.member_group[j] != b->plan.member_group[j - 1])
				b->group_workers[b->plan.member_group[j]]++;
		b->links[i] = (struct link){ .pid = pid, .fd = sv[0] };
		b->link_count++;
		first += count;
	}
	return 0;
}

static int bench_collect_ready(struct bench *b)
{
	for (int i = 0; i < b->link_count; i++) {
		int err = benchrun_read_full(b->links[i].fd, &b->links[i].ready,
				    sizeof(b->links[i].ready), PEER_READY_SEC);

		if (err < 0) {
			fprintf(stderr, "bench-peer: worker %d (pid %d) did not report its subscribes: %s\n",
				i, (int)b->links[i].pid, strerror(-err));
			return err;
		}
		b->subscribed += b->links[i].ready.subscribed;
		b->sub_failed += b->links[i].ready.failed;
	}
	fprintf(stderr, "bench-peer: %" PRIu64 " members subscribed, %" PRIu64 " failed\n",
		b->subscribed, b->sub_failed);
	return b->sub_failed ? -ENOTCONN : 0;
}

static int bench_collect_results(struct bench *b)
{
	struct ctl_stop stop = { .published = (uint64_t)b->next_msg };
	size_t m = (size_t)b->opt.messages;
	int err = 0;

	for (int i = 0; i < b->link_count && err == 0; i++)
		err = benchrun_write_full(b->links[i].fd, &stop, sizeof(stop));
	for (int i = 0; i < b->link_count && err == 0; i++) {
		struct link *l = &b->links[i];

		uint32_t k = 0;

		l->res = malloc(sizeof(*l->res));
		l->last_ns = calloc(m + 1, sizeof(uint64_t));
		l->count = calloc(m + 1, sizeof(uint32_t));
		if (!l->res || !l->last_ns || !l->count)
			return -ENOMEM;
		if (l->ev)
			event_del(l->ev);
		while (err == 0 && k != CTL_RESULT_MARK)
			err = benchrun_read_full(l->fd, &k, sizeof(k), PEER_DRAIN_MAX_SEC + 30);
		if (err == 0)
			err = benchrun_read_full(l->fd, l->res, sizeof(*l->res), 30);
		if (err == 0)
			err = benchrun_read_full(l->fd, l->last_ns, m * sizeof(uint64_t), 30);
		if (err == 0)
			err = benchrun_read_full(l->fd, l->count, m * sizeof(uint32_t), 30);
	}
	if (err < 0)
		fprintf(stderr, "bench-peer: collecting the workers' results failed: %s\n",
			strerror(-err));
	return err;
}

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
	benchstat_hist_merge(&b->res.lat, &r->lat);
}

/* Merges the workers' results: the last member of a message is the latest
 * receive over all workers, for messages every member of the group got. */
static int bench_merge(struct bench *b)
{
	b->last_member_ns = calloc((size_t)b->next_msg + 1, sizeof(uint64_t));
	if (!b->last_member_ns)
		return -ENOMEM;
	for (int i = 0; i < b->link_count; i++)
		bench_merge_counts(b, b->links[i].res);
	for (int k = 0; k < b->next_msg; k++) {
		uint64_t last = 0, count = 0;

		for (int i = 0; i < b->link_count; i++) {
			last = b->links[i].last_ns[k] > last ? b->links[i].last_ns[k] : last;
			count += b->links[i].count[k];
		}
		if (last > b->last_delivery_ns)
			b->last_delivery_ns = last;
		if (count < (uint64_t)b->plan.group_size[b->plan.msg_group[k]]) {
			b->incomplete_msgs++;
			continue;
		}
		b->last_member_ns[b->last_member_n++] =
			last > b->pub_ns[k] ? last - b->pub_ns[k] : 0;
	}
	benchstat_sort_u64(b->last_member_ns, b->last_member_n);
	return 0;
}

static uint64_t bench_expected(const struct bench *b)
{
	uint64_t n = 0;

	for (int k = 0; k < b->next_msg; k++)
		n += (uint64_t)b->plan.group_size[b->plan.msg_group[k]];
	return n;
}

/* ---- parent: report ---- */

struct figures {
	double delivery_s;
	double deliveries_per_s;
	uint64_t cpu_us;
	uint64_t hwm_kb;
	double lat[BENCHRUN_QUANTILES];
	double last[BENCHRUN_QUANTILES];
};

static void bench_figures(const struct bench *b, struct figures *f)
{
	memset(f, 0, sizeof(*f));
	if (b->last_delivery_ns > b->start_ns)
		f->delivery_s = (double)(b->last_delivery_ns - b->start_ns) / NSEC_PER_SEC;
	f->deliveries_per_s = f->delivery_s > 0 ? (double)b->res.unique / f->delivery_s : 0;
	for (int i = 0; i < b->opt.server_pid_count; i++) {
		f->cpu_us += b->servers[i].cpu_end_us - b->servers[i].cpu_start_us;
		f->hwm_kb += b->servers[i].hwm_kb;
	}
	benchrun_quantiles(&b->res.lat, b->last_member_ns, b->last_member_n,
			   f->lat, f->last);
}

static void bench_print(const struct bench *b, const struct figures *f)
{
	const struct ctl_result *r = &b->res;

	printf("bench-peer %s%s%s: %d members in %d groups, %d workers, %d messages of %d bytes, %d in flight, rate %g\n",
	       system_names[b->opt.system], b->opt.label ? " " : "",
	       b->opt.label ? b->opt.label : "", b->plan.members, b->opt.groups,
	       b->link_count, b->opt.messages, b->opt.payload_size,
	       b->opt.in_flight, b->opt.rate);
	printf("  published %d, acknowledged %" PRIu64 ", failed %d\n",
	       b->next_msg, b->acked, b->pub_failed);
	printf("  deliveries %" PRIu64 " of %" PRIu64 " expected, %.0f/s over %.3f s\n",
	       r->unique, bench_expected(b), f->deliveries_per_s, f->delivery_s);
	printf("  missing %" PRIu64 ", duplicates %" PRIu64 ", out of order %" PRIu64
	       ", unknown %" PRIu64 ", disconnects %" PRIu64 ", incomplete messages %" PRIu64 "\n",
	       r->missing, r->duplicates, r->reordered, r->unknown, r->disconnects,
	       b->incomplete_msgs);
	printf("  server CPU %" PRIu64 " us, %.3f us/delivery, peak RSS %" PRIu64 " kB\n",
	       f->cpu_us, benchrun_per(f->cpu_us, r->unique), f->hwm_kb);
	printf("  bench-peer itself: CPU %" PRIu64 " us\n", b->bench_cpu_us);
	benchrun_print_latency(stdout, f->lat, r->lat.n, f->last,
			       b->last_member_n);
}

#define CSV_HEADER "system,workload,label,members,groups,workers,messages,in_flight," \
	"rate,payload_bytes,published,acked,receivers,deliveries,expected,missing," \
	"duplicates,reordered,disconnects,delivery_s,deliveries_per_s,server_cpu_us," \
	"server_us_per_delivery,server_peak_rss_kb,bench_cpu_us,lat_p50_ms,lat_p99_ms," \
	"lat_p999_ms,lat_max_ms,last_p50_ms,last_p99_ms,last_p999_ms,last_max_ms,window\n"

/* Appends one row to the --csv file, with the header when the file is new. */
static int bench_write_csv(const struct bench *b, const struct figures *f)
{
	const struct ctl_result *r = &b->res;
	FILE *out = benchrun_csv_open(b->opt.csv, CSV_HEADER);

	if (!out)
		return -errno;
	fprintf(out, "%s,%s,%s,%d,%d,%d,%d,%d,%g,%d,%d,%" PRIu64 ",%" PRIu64 ",%" PRIu64
		",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%.3f,%.0f,%"
		PRIu64 ",%.4f,%" PRIu64 ",%" PRIu64
		",%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%s\n",
		system_names[b->opt.system], b->opt.workload ? b->opt.workload : "",
		b->opt.label ? b->opt.label : "", b->plan.members, b->opt.groups,
		b->link_count, b->opt.messages, b->opt.in_flight, b->opt.rate,
		b->opt.payload_size, b->next_msg, b->acked, r->receivers, r->unique,
		bench_expected(b), r->missing, r->duplicates, r->reordered,
		r->disconnects, f->delivery_s, f->deliveries_per_s, f->cpu_us,
		benchrun_per(f->cpu_us, r->unique), f->hwm_kb, b->bench_cpu_us, f->lat[0],
		f->lat[1], f->lat[2], f->lat[3], f->last[0], f->last[1], f->last[2],
		f->last[3], b->opt.window_delivered ? "delivered" : "acked");
	return fclose(out) ? -errno : 0;
}

/* Returns the exit status: 1 when the figures do not describe the whole
 * workload because something was lost, duplicated or failed. */
static int bench_verdict(const struct bench *b)
{
	const struct ctl_result *r = &b->res;

	if (r->missing || r->duplicates || r->reordered || r->unknown ||
	    b->incomplete_msgs || r->unique != bench_expected(b)) {
		fprintf(stderr, "bench-peer: FAILED: %" PRIu64 " deliveries missing, %" PRIu64
			" duplicated, %" PRIu64 " out of order, %" PRIu64 " unknown\n",
			r->missing, r->duplicates, r->reordered, r->unknown);
		return 1;
	}
	if (b->pub_failed || b->stalled || b->next_msg < b->opt.messages ||
	    r->disconnects) {
		fprintf(stderr, "bench-peer: FAILED: %d of %d messages published, %d failed, %"
			PRIu64 " disconnects\n", b->next_msg, b->opt.messages,
			b->pub_failed, r->disconnects);
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
		fprintf(stderr, "bench-peer: writing %s failed: %s\n", b->opt.csv,
			strerror(-err));
	return bench_verdict(b);
}

/* ---- options and main ---- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: bench-peer --system redis|mosquitto|sendloop --port PORT [options]\n"
		"  --system NAME          server on 127.0.0.1:PORT: redis, mosquitto or sendloop\n"
		"  --port PORT            the server's TCP port on 127.0.0.1\n"
		"  --members N            subscribers, one connection each (default 1000)\n"
		"  --groups N             groups (channels, topics); above 1, sizes follow Zipf's law (default 1)\n"
		"  --zipf S               Zipf exponent of the group sizes (default 1.0)\n"
		"  --workers N            subscribing processes (default: one per %d members, at least 2)\n"
		"  --messages N           messages to publish (default 1000)\n"
		"  --rate MSG/S           fixed publish rate; 0 publishes as fast as --in-flight allows (default 0)\n"
		"  --in-flight N          most unacknowledged publishes, 1..%d (default 1)\n"
		"  --payload-size BYTES   payload size, %d..65536 (default 128)\n"
		"  --window acked|delivered  a message leaves --in-flight once the server acknowledges it,\n"
		"                         or once every member has it (default acked)\n"
		"  --seed N               seed of the group each message goes to (default 1)\n"
		"  --server-pid PID       report this server process's CPU time and peak RSS (repeatable)\n"
		"  --workload NAME        workload name in the CSV\n"
		"  --label TEXT           name of this run in the summary and CSV\n"
		"  --csv FILE             append one row of figures (a header first when FILE is new)\n"
		"exits 1 when a delivery was missing, duplicated or out of order, a publish failed\n"
		"or a subscriber failed to subscribe or was disconnected\n",
		PEER_FDS_PER_WORKER, PEER_MAX_IN_FLIGHT, BENCHRUN_PAYLOAD_HEAD_LEN);
}

static int parse_long(const char *name, const char *text, long min, long max,
		      long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < min || v > max) {
		fprintf(stderr, "bench-peer: invalid --%s '%s': expected %ld..%ld\n",
			name, text, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_system(const char *text, enum peer_system *out)
{
	for (int i = 0; i < 3; i++) {
		if (strcmp(text, system_names[i]) == 0) {
			*out = (enum peer_system)i;
			return 0;
		}
	}
	fprintf(stderr, "bench-peer: invalid --system '%s': expected redis, mosquitto or sendloop\n",
		text);
	return -EINVAL;
}

static int parse_double(const char *name, const char *text, double *out)
{
	char *end;

	*out = strtod(text, &end);
	if (end == text || *end || *out < 0) {
		fprintf(stderr, "bench-peer: invalid --%s '%s': expected a number >= 0\n",
			name, text);
		return -EINVAL;
	}
	return 0;
}

static int parse_one(struct peer_options *o, int c, const char *name)
{
	long v = 0;
	int err = 0;

	switch (c) {
	case 's': return parse_system(optarg, &o->system);
	case 'z': return parse_double(name, optarg, &o->zipf_s);
	case 'r': return parse_double(name, optarg, &o->rate);
	case 'l': o->label = optarg; return 0;
	case 'W': o->workload = optarg; return 0;
	case 'c': o->csv = optarg; return 0;
	case 'P':
		if (o->server_pid_count == PEER_MAX_PIDS)
			return -E2BIG;
		err = parse_long(name, optarg, 1, INT32_MAX, &v);
		o->server_pids[o->server_pid_count++] = (pid_t)v;
		return err;
	case 'p': err = parse_long(name, optarg, 1, 65535, &v); o->port = (int)v; break;
	case 'm': err = parse_long(name, optarg, 1, 1000000, &v); o->members = (int)v; break;
	case 'g': err = parse_long(name, optarg, 1, 100000, &v); o->groups = (int)v; break;
	case 'w': err = parse_long(name, optarg, 1, 256, &v); o->workers = (int)v; break;
	case 'n': err = parse_long(name, optarg, 1, 10000000, &v); o->messages = (int)v; break;
	case 'f':
		err = parse_long(name, optarg, 1, PEER_MAX_IN_FLIGHT, &v);
		o->in_flight = (int)v;
		break;
	case 'b':
		err = parse_long(name, optarg, BENCHRUN_PAYLOAD_HEAD_LEN, 65536, &v);
		o->payload_size = (int)v;
		break;
	case 'V':
		if (strcmp(optarg, "acked") && strcmp(optarg, "delivered")) {
			fprintf(stderr, "bench-peer: invalid --window '%s': expected acked or delivered\n",
				optarg);
			return -EINVAL;
		}
		o->window_delivered = optarg[0] == 'd';
		return 0;
	case 'S': err = parse_long(name, optarg, 0, INT32_MAX, &v); o->seed = (unsigned int)v; break;
	default: return -EINVAL;
	}
	return err;
}

static int parse_options(int argc, char **argv, struct peer_options *o)
{
	static const struct option longopts[] = {
		{ "system", required_argument, NULL, 's' },
		{ "port", required_argument, NULL, 'p' },
		{ "members", required_argument, NULL, 'm' },
		{ "groups", required_argument, NULL, 'g' },
		{ "zipf", required_argument, NULL, 'z' },
		{ "workers", required_argument, NULL, 'w' },
		{ "messages", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "in-flight", required_argument, NULL, 'f' },
		{ "payload-size", required_argument, NULL, 'b' },
		{ "seed", required_argument, NULL, 'S' },
		{ "window", required_argument, NULL, 'V' },
		{ "server-pid", required_argument, NULL, 'P' },
		{ "workload", required_argument, NULL, 'W' },
		{ "label", required_argument, NULL, 'l' },
		{ "csv", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, idx = 0;

	while ((c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (c == '?' || parse_one(o, c, longopts[idx].name) < 0)
			return -EINVAL;
	}
	if (optind < argc || o->port == 0) {
		fprintf(stderr, "bench-peer: --port is required and no arguments are taken\n");
		return -EINVAL;
	}
	return 0;
}

static void bench_reap(struct bench *b)
{
	struct rusage self, children;

	for (int i = 0; b->links && i < b->link_count; i++) {
		struct link *l = &b->links[i];
		int status;

		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
		if (l->pid > 0 && waitpid(l->pid, &status, 0) > 0 &&
		    !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			fprintf(stderr, "bench-peer: worker %d (pid %d) failed\n", i,
				(int)l->pid);
		l->pid = 0;
	}
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &children);
	b->bench_cpu_us = benchrun_rusage_us(&self) + benchrun_rusage_us(&children);
}

static void bench_free(struct bench *b)
{
	for (int i = 0; b->links && i < b->link_count; i++) {
		if (b->links[i].pid > 0)
			kill(b->links[i].pid, SIGTERM);
		free(b->links[i].res);
		free(b->links[i].last_ns);
		free(b->links[i].count);
		if (b->links[i].ev)
			event_free(b->links[i].ev);
	}
	bench_reap(b);
	free(b->links);
	if (b->redis)
		redisAsyncFree(b->redis);
	if (b->mosq_ev)
		event_free(b->mosq_ev);
	if (b->mosq) {
		mosquitto_disconnect(b->mosq);
		mosquitto_destroy(b->mosq);
	}
	if (b->sl_bev)
		bufferevent_free(b->sl_bev);
	if (b->tick_ev)
		event_free(b->tick_ev);
	if (b->base)
		event_base_free(b->base);
	free(b->payload);
	free(b->pub_ns);
	free(b->msg_acked);
	free(b->msg_released);
	free(b->msg_done);
	free(b->group_workers);
	free(b->last_member_ns);
	plan_free(&b->plan);
}

static int bench_run(struct bench *b)
{
	int err;

	err = bench_fork_workers(b);
	if (err == 0)
		err = bench_collect_ready(b);
	if (err == 0) {
		b->base = event_base_new();
		err = b->base ? bench_connect_publisher(b) : -ENOMEM;
	}
	if (err < 0)
		return err;
	servers_snapshot(b, 0);
	b->last_release_mono = benchstat_now_ns(CLOCK_MONOTONIC);
	bench_fill(b);
	event_base_dispatch(b->base);
	err = bench_collect_results(b);
	servers_snapshot(b, 1);
	bench_reap(b);
	return err;
}

int main(int argc, char **argv)
{
	static struct bench b;
	int rc = 1;

	b.opt = (struct peer_options){
		.members = 1000, .groups = 1, .zipf_s = 1.0, .messages = 1000,
		.in_flight = 1, .payload_size = 128, .seed = 1,
	};
	if (parse_options(argc, argv, &b.opt) < 0) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (plan_build(&b.plan, &b.opt) < 0)
		return 1;
	if (!b.opt.workers)
		b.opt.workers = (b.plan.members + PEER_FDS_PER_WORKER - 1) / PEER_FDS_PER_WORKER;
	if (b.opt.workers < 2)
		b.opt.workers = 2;
	if (benchrun_raise_nofile("bench-peer", (b.plan.members + b.opt.workers - 1) / b.opt.workers) < 0)
		return 2;
	mosquitto_lib_init();
	if (bench_run(&b) == 0)
		rc = bench_report(&b);
	bench_free(&b);
	mosquitto_lib_cleanup();
	return rc;
}

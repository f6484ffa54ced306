// SPDX-License-Identifier: MIT
/*
 * imgw-demo: a workload driver. It creates users, groups and tokens through
 * the admin API and connects one simulated client per user to the gateway,
 * all from a single libevent loop. Then it sends messages at a given total
 * rate and checks every delivery: missing and duplicate pushes per session
 * and sequence number, delivery latency (receive time minus the send time
 * carried in the payload) and ack latency. It exits 1 when an acknowledged
 * message was lost or duplicated.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <uthash.h>

#include "admin_client.h"
#include "httputil.h"
#include "imgw.pb-c.h"
#include "token.h"
#include "wire.h"

#define NSEC_PER_SEC 1000000000ULL
#define NSEC_PER_MSEC 1000000ULL
#define DEMO_TOKEN_TTL 7200
#define DEMO_CONNECT_WINDOW 64          /* connects and logins in flight */
#define DEMO_STALL_SEC 10               /* give up connecting after no progress */
#define DEMO_DRAIN_SEC 3                /* wait for stragglers after sending */
#define DEMO_HEARTBEAT_SEC 20
#define DEMO_SMALL_MIN 2
#define DEMO_SMALL_MAX 50
#define DEMO_ZIPF_S 1.0
#define DEMO_MAX_WARNINGS 10

enum demo_phase {
	PHASE_CONNECT,
	PHASE_SEND,
	PHASE_DRAIN,
	PHASE_DONE,
};

enum client_state {
	CLIENT_IDLE,
	CLIENT_CONNECTING,
	CLIENT_LOGGING_IN,
	CLIENT_ONLINE,
	CLIENT_CLOSED,          /* was online, then the connection closed */
	CLIENT_FAILED,          /* never got online */
};

enum send_state {
	SEND_PENDING,
	SEND_ACKED,
	SEND_FAILED,
};

struct demo;

/* A client's place in one session's member list. */
struct membership {
	int session;
	int pos;
};

struct demo_client {
	struct demo *demo;
	int index;
	char user[48];
	char *token;
	struct bufferevent *bev;
	enum client_state state;
	uint64_t online_ns;             /* CLOCK_REALTIME of the login result */
	uint64_t closed_ns;
	uint64_t last_tx_mono;          /* CLOCK_MONOTONIC of the last frame sent */
	struct membership *memberships;
	int membership_count;
};

/* Received sequence numbers of one member of a session, as a bitmap. */
struct seen_seqs {
	uint8_t *bits;
	uint64_t nbits;
};

struct demo_session {
	uint64_t id;
	int big;
	int *members;                   /* client indices */
	struct seen_seqs *seen;         /* parallel to members */
	int member_count;
	UT_hash_handle hh;              /* in demo.by_id, keyed by id */
};

struct demo_send {
	uint64_t sent_ns;               /* CLOCK_REALTIME */
	uint64_t ack_ns;
	uint64_t seq;
	int session;
	int sender;
	enum send_state state;
};

/* Latency samples in nanoseconds. */
struct samples {
	uint64_t *v;
	size_t n;
	size_t cap;
};

struct demo_options {
	const char *gateway;
	const char *admin;
	const char *prefix;
	int users;
	int groups;
	int big_groups;
	int big_size;
	double rate;
	double duration;
	uint64_t seed;
	int json;
};

struct demo_stats {
	uint64_t logins_ok;
	uint64_t logins_failed;
	uint64_t disconnects;
	uint64_t sent;
	uint64_t acked;
	uint64_t failed;
	uint64_t deliveries;            /* every PUSH received */
	uint64_t unique_deliveries;     /* first PUSH of a seq to a member */
	uint64_t self_deliveries;       /* pushes back to the sending device */
	uint64_t unknown_deliveries;    /* not a message this run sent */
	uint64_t duplicates;
	uint64_t expected_at_ack;       /* online recipients when acked */
	uint64_t expected;              /* recipients checked after the run */
	uint64_t missing;
	uint64_t errors;                /* ERROR and KICK frames */
	struct samples delivery_lat;
	struct samples ack_lat;
};

struct demo {
	struct demo_options opt;
	struct event_base *base;
	struct event *tick_ev;          /* 1 ms: sends */
	struct event *second_ev;        /* 1 s: progress, heartbeats, stalls */
	struct event *sigint_ev;
	struct event *sigterm_ev;
	struct sockaddr_storage gw_addr;
	socklen_t gw_addr_len;
	uint64_t rng;

	struct demo_client *clients;
	struct demo_session *sessions;
	int session_count;
	struct demo_session *by_id;
	double *session_cdf;            /* popularity of sessions */

	struct demo_send *sends;
	size_t send_cap;
	uint64_t pending;               /* sends without a result */

	enum demo_phase phase;
	int next_connect;
	int in_flight;
	uint64_t last_progress_mono;
	uint64_t phase_start_mono;
	uint64_t send_end_mono;
	uint64_t drain_end_mono;
	uint64_t next_send_mono;
	uint64_t send_start_ns;         /* CLOCK_REALTIME */
	uint64_t send_stop_ns;
	uint64_t last_report_deliveries;
	int warnings;
	struct demo_stats st;
};

static uint64_t now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: reproducible with --seed, good enough for a workload. */
static uint64_t rng_next(struct demo *d)
{
	d->rng ^= d->rng >> 12;
	d->rng ^= d->rng << 25;
	d->rng ^= d->rng >> 27;
	return d->rng * 0x2545F4914F6CDD1DULL;
}

/* Returns a uniform double in [0, 1). */
static double rng_unit(struct demo *d)
{
	return (double)(rng_next(d) >> 11) / (double)(1ULL << 53);
}

static int rng_below(struct demo *d, int n)
{
	return (int)(rng_unit(d) * n);
}

/* Builds the cumulative Zipf distribution over ranks 1..n with exponent s. */
static double *zipf_cdf(int n, double s)
{
	double *cdf = malloc(sizeof(*cdf) * (size_t)n);
	double sum = 0;

	if (!cdf)
		return NULL;
	for (int k = 0; k < n; k++) {
		sum += 1.0 / pow(k + 1, s);
		cdf[k] = sum;
	}
	for (int k = 0; k < n; k++)
		cdf[k] /= sum;
	return cdf;
}

/* Draws a rank in [0, n) from cdf by binary search. */
static int zipf_draw(struct demo *d, const double *cdf, int n)
{
	double u = rng_unit(d);
	int lo = 0, hi = n - 1;

	while (lo < hi) {
		int mid = (lo + hi) / 2;

		if (cdf[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static int samples_add(struct samples *s, uint64_t v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		uint64_t *nv = realloc(s->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = v;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Returns the q quantile (0..1) of sorted samples in ms, nearest rank. */
static double samples_quantile_ms(const struct samples *s, double q)
{
	size_t i;

	if (s->n == 0)
		return 0;
	i = (size_t)ceil(q * (double)s->n);
	i = i ? i - 1 : 0;
	if (i >= s->n)
		i = s->n - 1;
	return (double)s->v[i] / NSEC_PER_MSEC;
}

/* Marks seq as seen. Returns 1 when it was already seen, 0, or -ENOMEM. */
static int seen_mark(struct seen_seqs *seen, uint64_t seq)
{
	uint8_t mask = (uint8_t)(1u << (seq & 7));

	if (seq >= seen->nbits) {
		uint64_t nbits = seen->nbits ? seen->nbits : 1024;
		uint8_t *bits;

		while (nbits <= seq)
			nbits *= 2;
		bits = realloc(seen->bits, nbits / 8);
		if (!bits)
			return -ENOMEM;
		memset(bits + seen->nbits / 8, 0, (nbits - seen->nbits) / 8);
		seen->bits = bits;
		seen->nbits = nbits;
	}
	if (seen->bits[seq / 8] & mask)
		return 1;
	seen->bits[seq / 8] |= mask;
	return 0;
}

static int seen_test(const struct seen_seqs *seen, uint64_t seq)
{
	if (seq >= seen->nbits)
		return 0;
	return !!(seen->bits[seq / 8] & (1u << (seq & 7)));
}

/* ---- setup through the admin API ---- */

static int demo_mint_tokens(struct demo *d, struct admin_client *ac)
{
	char token[TOKEN_MAX_LEN];
	int status = 0, err;

	for (int i = 0; i < d->opt.users; i++) {
		struct demo_client *c = &d->clients[i];

		err = admin_mint_token(ac, c->user, DEMO_TOKEN_TTL, token,
				       sizeof(token), &status);
		if (err == -EPROTO) {
			fprintf(stderr, "imgw-demo: minting a token for %s failed: HTTP %d\n",
				c->user, status);
			return err;
		}
		if (err < 0) {
			fprintf(stderr, "imgw-demo: minting a token for %s at %s failed: %s\n",
				c->user, admin_client_addr(ac), strerror(-err));
			return err;
		}
		c->token = strdup(token);
		if (!c->token)
			return -ENOMEM;
	}
	return 0;
}

/* Picks size distinct random users for session s (partial Fisher-Yates). */
static int demo_pick_members(struct demo *d, struct demo_session *s, int size,
			     int *perm)
{
	int n = d->opt.users;

	if (size > n)
		size = n;
	s->members = malloc(sizeof(*s->members) * (size_t)size);
	s->seen = calloc((size_t)size, sizeof(*s->seen));
	if (!s->members || !s->seen)
		return -ENOMEM;
	for (int i = 0; i < size; i++) {
		int j = i + rng_below(d, n - i);
		int tmp = perm[i];

		perm[i] = perm[j];
		perm[j] = tmp;
		s->members[i] = perm[i];
	}
	s->member_count = size;
	return 0;
}

/* Chooses the members of every session: big groups first, then small groups
 * whose sizes follow a Zipf distribution over 2..50. */
static int demo_plan_sessions(struct demo *d)
{
	int span = DEMO_SMALL_MAX - DEMO_SMALL_MIN + 1;
	double *size_cdf = zipf_cdf(span, DEMO_ZIPF_S);
	int *perm = malloc(sizeof(*perm) * (size_t)d->opt.users);
	int err = -ENOMEM;

	d->session_count = d->opt.big_groups + d->opt.groups;
	d->sessions = calloc((size_t)d->session_count, sizeof(*d->sessions));
	if (!size_cdf || !perm || !d->sessions)
		goto out;
	for (int i = 0; i < d->opt.users; i++)
		perm[i] = i;
	for (int i = 0; i < d->session_count; i++) {
		struct demo_session *s = &d->sessions[i];
		int size;

		s->big = i < d->opt.big_groups;
		size = s->big ? d->opt.big_size
			      : DEMO_SMALL_MIN + zipf_draw(d, size_cdf, span);
		err = demo_pick_members(d, s, size, perm);
		if (err < 0)
			goto out;
	}
	err = 0;
out:
	free(perm);
	free(size_cdf);
	return err;
}

static int demo_create_session(struct demo *d, struct admin_client *ac,
			       struct demo_session *s, int index)
{
	json_t *members = json_array(), *body, *id;
	struct admin_reply reply;
	char name[64];
	int err;

	for (int i = 0; i < s->member_count; i++)
		json_array_append_new(members,
				      json_string(d->clients[s->members[i]].user));
	snprintf(name, sizeof(name), "%s-%s-%d", d->opt.prefix,
		 s->big ? "big" : "group", index);
	body = json_pack("{s:s, s:s, s:o}", "kind", "group", "name", name,
			 "members", members);
	err = admin_call(ac, EVHTTP_REQ_POST, "/v1/sessions", body, &reply);
	json_decref(body);
	if (err < 0) {
		fprintf(stderr, "imgw-demo: creating session %s at %s failed: %s\n",
			name, admin_client_addr(ac), strerror(-err));
		return err;
	}
	id = json_object_get(reply.json, "session_id");
	if (reply.status / 100 != 2 || !json_is_integer(id) ||
	    json_integer_value(id) <= 0) {
		fprintf(stderr, "imgw-demo: creating session %s failed: HTTP %d: %s\n",
			name, reply.status, admin_reply_error(&reply));
		admin_reply_free(&reply);
		return -EPROTO;
	}
	s->id = (uint64_t)json_integer_value(id);
	admin_reply_free(&reply);
	HASH_ADD(hh, d->by_id, id, sizeof(s->id), s);
	return 0;
}

/* Gives every client the list of its sessions and its place in each. */
static int demo_index_memberships(struct demo *d)
{
	for (int i = 0; i < d->session_count; i++) {
		struct demo_session *s = &d->sessions[i];

		for (int pos = 0; pos < s->member_count; pos++) {
			struct demo_client *c = &d->clients[s->members[pos]];
			struct membership *m;

			m = realloc(c->memberships, sizeof(*m) *
				    (size_t)(c->membership_count + 1));
			if (!m)
				return -ENOMEM;
			c->memberships = m;
			m[c->membership_count++] = (struct membership){ i, pos };
		}
	}
	return 0;
}

static int demo_setup(struct demo *d)
{
	struct admin_client *ac = admin_client_new(d->base, d->opt.admin, 10);
	uint64_t start = now_ns(CLOCK_MONOTONIC);
	int err;

	if (!ac) {
		fprintf(stderr, "imgw-demo: invalid admin URL '%s': expected http://HOST:PORT\n",
			d->opt.admin);
		return -EINVAL;
	}
	err = demo_plan_sessions(d);
	for (int i = 0; err == 0 && i < d->session_count; i++)
		err = demo_create_session(d, ac, &d->sessions[i], i);
	if (err == 0)
		err = demo_index_memberships(d);
	if (err == 0)
		err = demo_mint_tokens(d, ac);
	admin_client_free(ac);
	if (err == 0)
		fprintf(stderr, "imgw-demo: created %d sessions and %d tokens in %.2f s\n",
			d->session_count, d->opt.users,
			(double)(now_ns(CLOCK_MONOTONIC) - start) / NSEC_PER_SEC);
	return err;
}

/* ---- clients ---- */

static void demo_start_sending(struct demo *d);
static void demo_start_connects(struct demo *d);

static void demo_warn(struct demo *d, const char *fmt, const char *user,
		      const char *detail)
{
	if (++d->warnings > DEMO_MAX_WARNINGS)
		return;
	fprintf(stderr, "imgw-demo: ");
	fprintf(stderr, fmt, user, detail);
	fputc('\n', stderr);
	if (d->warnings == DEMO_MAX_WARNINGS)
		fprintf(stderr, "imgw-demo: further warnings are only counted\n");
}

static int client_send_frame(struct demo_client *c, unsigned int op,
			     uint32_t request_id, const ProtobufCMessage *msg)
{
	c->last_tx_mono = now_ns(CLOCK_MONOTONIC);
	return wire_append(bufferevent_get_output(c->bev), op, request_id, msg);
}

/* A connect or login ended, either way: start the next connects. */
static void demo_connect_settled(struct demo *d)
{
	d->in_flight--;
	d->last_progress_mono = now_ns(CLOCK_MONOTONIC);
	if (d->phase != PHASE_CONNECT)
		return;
	demo_start_connects(d);
	if (d->in_flight == 0 && d->next_connect == d->opt.users)
		demo_start_sending(d);
}

static void client_close(struct demo_client *c, const char *why)
{
	struct demo *d = c->demo;
	enum client_state old = c->state;

	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (old == CLIENT_ONLINE) {
		c->state = CLIENT_CLOSED;
		c->closed_ns = now_ns(CLOCK_REALTIME);
		d->st.disconnects++;
		demo_warn(d, "client %s disconnected: %s", c->user, why);
		return;
	}
	c->state = CLIENT_FAILED;
	d->st.logins_failed++;
	demo_warn(d, "client %s did not get online: %s", c->user, why);
	if (old == CLIENT_CONNECTING || old == CLIENT_LOGGING_IN)
		demo_connect_settled(d);
}

static int on_login_result(struct demo_client *c, const uint8_t *body,
			   size_t len)
{
	Imgw__LoginResult *res = imgw__login_result__unpack(NULL, len, body);
	struct demo *d = c->demo;
	char why[160];

	if (!res)
		return -EPROTO;
	if (res->code != IMGW__ERROR_CODE__ERROR_NONE) {
		snprintf(why, sizeof(why), "login rejected: %s (code %d)",
			 res->reason, res->code);
		imgw__login_result__free_unpacked(res, NULL);
		client_close(c, why);
		return 1;
	}
	imgw__login_result__free_unpacked(res, NULL);
	c->state = CLIENT_ONLINE;
	c->online_ns = now_ns(CLOCK_REALTIME);
	d->st.logins_ok++;
	demo_connect_settled(d);
	return 0;
}

/* Counts the members that should get send s: online since before it was
 * sent and still online, except the sender. */
static uint64_t demo_recipients(struct demo *d, const struct demo_send *s)
{
	const struct demo_session *sess = &d->sessions[s->session];
	uint64_t n = 0;

	for (int i = 0; i < sess->member_count; i++) {
		const struct demo_client *m = &d->clients[sess->members[i]];

		if (sess->members[i] != s->sender && m->state == CLIENT_ONLINE &&
		    m->online_ns < s->sent_ns)
			n++;
	}
	return n;
}

static int on_send_result(struct demo_client *c, uint32_t request_id,
			  const uint8_t *body, size_t len)
{
	Imgw__SendResult *res = imgw__send_result__unpack(NULL, len, body);
	struct demo *d = c->demo;
	struct demo_send *s;

	if (!res)
		return -EPROTO;
	if (request_id == 0 || request_id > d->st.sent ||
	    d->sends[request_id - 1].state != SEND_PENDING) {
		demo_warn(d, "client %s got a SEND_RESULT for an unknown request%s",
			  c->user, "");
		goto out;
	}
	s = &d->sends[request_id - 1];
	s->ack_ns = now_ns(CLOCK_REALTIME);
	d->pending--;
	if (res->code != IMGW__ERROR_CODE__ERROR_NONE) {
		s->state = SEND_FAILED;
		d->st.failed++;
		demo_warn(d, "send by %s failed: %s", c->user, res->reason);
		goto out;
	}
	s->state = SEND_ACKED;
	s->seq = res->seq;
	d->st.acked++;
	d->st.expected_at_ack += demo_recipients(d, s);
	samples_add(&d->st.ack_lat, s->ack_ns - s->sent_ns);
out:
	imgw__send_result__free_unpacked(res, NULL);
	return 0;
}

/* Returns the seen-set of client c in session sess, or NULL. */
static struct seen_seqs *client_seen(struct demo_client *c, int session)
{
	for (int i = 0; i < c->membership_count; i++) {
		if (c->memberships[i].session == session)
			return &c->demo->sessions[session].seen[c->memberships[i].pos];
	}
	return NULL;
}

/* Parses the payload "demo id=N t=NS" that demo_send_one() writes. */
static int parse_payload(const ProtobufCBinaryData *p, uint64_t *id,
			 uint64_t *sent_ns)
{
	char text[96];
	unsigned long long a, b;

	if (p->len == 0 || p->len >= sizeof(text))
		return -EINVAL;
	memcpy(text, p->data, p->len);
	text[p->len] = '\0';
	if (sscanf(text, "demo id=%llu t=%llu", &a, &b) != 2)
		return -EINVAL;
	*id = a;
	*sent_ns = b;
	return 0;
}

static void demo_count_push(struct demo_client *c, const Imgw__Push *p,
			    uint64_t recv_ns)
{
	struct demo *d = c->demo;
	struct demo_session *sess;
	struct seen_seqs *seen;
	uint64_t id, sent_ns;
	int rc;

	HASH_FIND(hh, d->by_id, &p->session_id, sizeof(p->session_id), sess);
	if (!sess || parse_payload(&p->payload, &id, &sent_ns) < 0 || id == 0 ||
	    id > d->st.sent || d->sends[id - 1].session != (int)(sess - d->sessions)) {
		d->st.unknown_deliveries++;
		return;
	}
	if (d->sends[id - 1].sender == c->index) {
		d->st.self_deliveries++;
		return;
	}
	seen = client_seen(c, (int)(sess - d->sessions));
	if (!seen) {
		d->st.unknown_deliveries++;
		demo_warn(d, "client %s got a push for a session it is not in%s",
			  c->user, "");
		return;
	}
	rc = seen_mark(seen, p->seq);
	if (rc == 1) {
		d->st.duplicates++;
		return;
	}
	d->st.unique_deliveries++;
	samples_add(&d->st.delivery_lat, recv_ns > sent_ns ? recv_ns - sent_ns : 0);
}

static int on_push(struct demo_client *c, const uint8_t *body, size_t len)
{
	uint64_t recv_ns = now_ns(CLOCK_REALTIME);
	Imgw__Push *p = imgw__push__unpack(NULL, len, body);

	if (!p)
		return -EPROTO;
	c->demo->st.deliveries++;
	demo_count_push(c, p, recv_ns);
	imgw__push__free_unpacked(p, NULL);
	return 0;
}

/* Records why the gateway is about to close the connection. */
static int on_kick_or_error(struct demo_client *c, unsigned int op,
			    const uint8_t *body, size_t len)
{
	char text[200] = "";

	if (op == OP_KICK) {
		Imgw__Kick *k = imgw__kick__unpack(NULL, len, body);

		if (!k)
			return -EPROTO;
		snprintf(text, sizeof(text), "kick: %s", k->reason);
		imgw__kick__free_unpacked(k, NULL);
	} else {
		Imgw__Error *e = imgw__error__unpack(NULL, len, body);

		if (!e)
			return -EPROTO;
		snprintf(text, sizeof(text), "error %d: %s", e->code, e->text);
		imgw__error__free_unpacked(e, NULL);
	}
	c->demo->st.errors++;
	demo_warn(c->demo, "client %s got %s", c->user, text);
	return 0;
}

/* Returns 1 when the client was closed while handling the frame. */
static int client_handle_frame(struct demo_client *c,
			       const struct frame_header *hdr,
			       const uint8_t *body)
{
	switch (hdr->op) {
	case OP_LOGIN_RESULT:
		return on_login_result(c, body, hdr->body_len);
	case OP_SEND_RESULT:
		return on_send_result(c, hdr->request_id, body, hdr->body_len);
	case OP_PUSH:
		return on_push(c, body, hdr->body_len);
	case OP_KICK:
	case OP_ERROR:
		return on_kick_or_error(c, hdr->op, body, hdr->body_len);
	default:
		return 0;
	}
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct demo_client *c = arg;
	struct frame_header hdr;
	int rc;

	while ((rc = wire_peek(in, FRAME_HARD_MAX_BODY, &hdr)) == 1) {
		const uint8_t *body = wire_body(in, &hdr);

		rc = body ? client_handle_frame(c, &hdr, body) : -ENOMEM;
		if (rc < 0) {
			client_close(c, "undecodable frame from the gateway");
			return;
		}
		if (rc == 1)
			return;
		wire_consume(in, &hdr);
	}
	if (rc < 0)
		client_close(c, frame_status_str(rc));
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct demo_client *c = arg;
	Imgw__LoginRequest req = IMGW__LOGIN_REQUEST__INIT;
	int err = EVUTIL_SOCKET_ERROR();
	int one = 1;

	if (what & BEV_EVENT_CONNECTED) {
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY,
			   &one, sizeof(one));
		c->state = CLIENT_LOGGING_IN;
		req.token = c->token;
		req.user_id = c->user;
		req.device_id = "demo";
		req.platform = "imgw-demo";
		if (client_send_frame(c, OP_LOGIN, 1, &req.base) < 0)
			client_close(c, strerror(ENOMEM));
		return;
	}
	client_close(c, what & BEV_EVENT_EOF ? "connection closed by the gateway"
					     : strerror(err));
}

static int client_connect(struct demo_client *c)
{
	struct demo *d = c->demo;

	c->bev = bufferevent_socket_new(d->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev)
		return -ENOMEM;
	bufferevent_setcb(c->bev, client_read_cb, NULL, client_event_cb, c);
	bufferevent_enable(c->bev, EV_READ);
	c->state = CLIENT_CONNECTING;
	d->in_flight++;
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&d->gw_addr,
				       (int)d->gw_addr_len) < 0) {
		client_close(c, strerror(errno));
		return -ECONNREFUSED;
	}
	return 0;
}

/* Keeps at most DEMO_CONNECT_WINDOW connects and logins in flight, so the
 * connects cannot overrun a listen backlog of that size or more. */
static void demo_start_connects(struct demo *d)
{
	while (d->phase == PHASE_CONNECT && d->in_flight < DEMO_CONNECT_WINDOW &&
	       d->next_connect < d->opt.users)
		client_connect(&d->clients[d->next_connect++]);
}

/* ---- sending ---- */

static int demo_grow_sends(struct demo *d)
{
	size_t cap = d->send_cap ? d->send_cap * 2 : 4096;
	struct demo_send *s = realloc(d->sends, cap * sizeof(*s));

	if (!s)
		return -ENOMEM;
	d->sends = s;
	d->send_cap = cap;
	return 0;
}

/* Picks an online sender among the session's members, or returns -1. */
static int demo_pick_sender(struct demo *d, const struct demo_session *sess)
{
	int start = rng_below(d, sess->member_count);

	for (int i = 0; i < sess->member_count; i++) {
		int idx = sess->members[(start + i) % sess->member_count];

		if (d->clients[idx].state == CLIENT_ONLINE)
			return idx;
	}
	return -1;
}

static void demo_send_one(struct demo *d)
{
	Imgw__SendRequest req = IMGW__SEND_REQUEST__INIT;
	int si = zipf_draw(d, d->session_cdf, d->session_count);
	struct demo_session *sess = &d->sessions[si];
	int sender = demo_pick_sender(d, sess);
	char payload[96], msg_id[48];
	struct demo_send *s;
	uint64_t id;

	if (sender < 0)
		return;
	if (d->st.sent == d->send_cap && demo_grow_sends(d) < 0)
		return;
	/* The request id doubles as the index into d->sends, so it must fit 32 bits. */
	if (d->st.sent >= UINT32_MAX)
		return;
	id = ++d->st.sent;
	s = &d->sends[id - 1];
	*s = (struct demo_send){ .session = si, .sender = sender,
				 .state = SEND_PENDING };
	s->sent_ns = now_ns(CLOCK_REALTIME);
	snprintf(payload, sizeof(payload), "demo id=%" PRIu64 " t=%" PRIu64,
		 id, s->sent_ns);
	snprintf(msg_id, sizeof(msg_id), "demo-%d-%" PRIu64, (int)getpid(), id);
	req.session_id = sess->id;
	req.client_msg_id = msg_id;
	req.payload.data = (uint8_t *)payload;
	req.payload.len = strlen(payload);
	d->pending++;
	if (client_send_frame(&d->clients[sender], OP_SEND, (uint32_t)id,
			      &req.base) < 0) {
		s->state = SEND_FAILED;
		d->pending--;
		d->st.failed++;
	}
}

/* Returns an exponential gap in ns for a Poisson process at rate per second. */
static uint64_t demo_poisson_gap(struct demo *d)
{
	double u = rng_unit(d);

	return (uint64_t)(-log(1.0 - u) / d->opt.rate * NSEC_PER_SEC);
}

static void demo_finish(struct demo *d)
{
	d->phase = PHASE_DONE;
	event_base_loopbreak(d->base);
}

static void demo_start_drain(struct demo *d)
{
	d->phase = PHASE_DRAIN;
	d->send_stop_ns = now_ns(CLOCK_REALTIME);
	d->drain_end_mono = now_ns(CLOCK_MONOTONIC) + DEMO_DRAIN_SEC * NSEC_PER_SEC;
	fprintf(stderr, "imgw-demo: send phase over, waiting up to %d s for results and deliveries\n",
		DEMO_DRAIN_SEC);
}

/* In the drain phase, stop once everything expected has arrived. */
static void demo_check_drained(struct demo *d, uint64_t mono)
{
	if (mono >= d->drain_end_mono ||
	    (d->pending == 0 && d->st.unique_deliveries >= d->st.expected_at_ack))
		demo_finish(d);
}

static void demo_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct demo *d = arg;
	uint64_t mono = now_ns(CLOCK_MONOTONIC);

	if (d->phase == PHASE_SEND) {
		while (d->next_send_mono <= mono && mono < d->send_end_mono) {
			demo_send_one(d);
			d->next_send_mono += demo_poisson_gap(d);
		}
		if (mono >= d->send_end_mono)
			demo_start_drain(d);
	}
	if (d->phase == PHASE_DRAIN)
		demo_check_drained(d, mono);
}

static void demo_start_sending(struct demo *d)
{
	struct timeval ms = { 0, 1000 };

	if (d->phase != PHASE_CONNECT)
		return;
	fprintf(stderr, "imgw-demo: %" PRIu64 " clients online, %" PRIu64
		" failed; sending %.0f msg/s for %.0f s\n", d->st.logins_ok,
		d->st.logins_failed, d->opt.rate, d->opt.duration);
	d->phase = PHASE_SEND;
	d->phase_start_mono = now_ns(CLOCK_MONOTONIC);
	d->send_start_ns = now_ns(CLOCK_REALTIME);
	d->next_send_mono = d->phase_start_mono;
	d->send_end_mono = d->phase_start_mono +
			   (uint64_t)(d->opt.duration * NSEC_PER_SEC);
	d->last_report_deliveries = d->st.deliveries;
	event_add(d->tick_ev, &ms);
}

/* Gives up on connects that made no progress for DEMO_STALL_SEC. */
static void demo_check_stall(struct demo *d, uint64_t mono)
{
	if (mono - d->last_progress_mono < DEMO_STALL_SEC * NSEC_PER_SEC)
		return;
	fprintf(stderr, "imgw-demo: no login completed for %d s, giving up on %d clients\n",
		DEMO_STALL_SEC, d->in_flight + d->opt.users - d->next_connect);
	d->phase = PHASE_SEND;  /* keeps client_close() from starting connects */
	for (int i = 0; i < d->opt.users; i++) {
		struct demo_client *c = &d->clients[i];

		if (c->state == CLIENT_CONNECTING || c->state == CLIENT_LOGGING_IN)
			client_close(c, "login timed out");
		else if (c->state == CLIENT_IDLE)
			c->state = CLIENT_FAILED;
	}
	d->st.logins_failed += (uint64_t)(d->opt.users - d->next_connect);
	d->next_connect = d->opt.users;
	d->phase = PHASE_CONNECT;
	demo_start_sending(d);
}

static void demo_heartbeats(struct demo *d, uint64_t mono)
{
	for (int i = 0; i < d->opt.users; i++) {
		struct demo_client *c = &d->clients[i];

		if (c->state == CLIENT_ONLINE &&
		    mono - c->last_tx_mono >= DEMO_HEARTBEAT_SEC * NSEC_PER_SEC)
			client_send_frame(c, OP_HEARTBEAT, 0, NULL);
	}
}

static void demo_second_cb(evutil_socket_t fd, short what, void *arg)
{
	struct demo *d = arg;
	uint64_t mono = now_ns(CLOCK_MONOTONIC);

	demo_heartbeats(d, mono);
	if (d->phase == PHASE_CONNECT) {
		fprintf(stderr, "imgw-demo: connecting: %" PRIu64 " online, %" PRIu64
			" failed, %d in flight\n", d->st.logins_ok,
			d->st.logins_failed, d->in_flight);
		demo_check_stall(d, mono);
		return;
	}
	fprintf(stderr, "imgw-demo: %5.1f s: sent %" PRIu64 " acked %" PRIu64
		" failed %" PRIu64 " delivered %" PRIu64 " (%" PRIu64 "/s)\n",
		(double)(mono - d->phase_start_mono) / NSEC_PER_SEC, d->st.sent,
		d->st.acked, d->st.failed, d->st.deliveries,
		d->st.deliveries - d->last_report_deliveries);
	d->last_report_deliveries = d->st.deliveries;
}

/* The first signal ends the send phase early but still waits for results,
 * so the figures stay exact. A second one stops at once. */
static void demo_signal_cb(evutil_socket_t fd, short what, void *arg)
{
	struct demo *d = arg;

	if (d->phase == PHASE_SEND) {
		fprintf(stderr, "imgw-demo: interrupted, stopping the send phase early\n");
		demo_start_drain(d);
		return;
	}
	fprintf(stderr, "imgw-demo: interrupted, printing the figures so far\n");
	demo_finish(d);
}

/* ---- results ---- */

/* Checks every acknowledged message against each member that was online
 * before it was sent and stayed online.
 * XXX: The member lists are the ones created at setup, so a member that
 * someone else removes during the run is counted as missing deliveries. */
static void demo_count_missing(struct demo *d)
{
	for (uint64_t i = 0; i < d->st.sent; i++) {
		const struct demo_send *s = &d->sends[i];
		const struct demo_session *sess = &d->sessions[s->session];

		if (s->state != SEND_ACKED)
			continue;
		for (int m = 0; m < sess->member_count; m++) {
			const struct demo_client *c = &d->clients[sess->members[m]];

			if (sess->members[m] == s->sender || c->state != CLIENT_ONLINE ||
			    c->online_ns >= s->sent_ns)
				continue;
			d->st.expected++;
			if (!seen_test(&sess->seen[m], s->seq))
				d->st.missing++;
		}
	}
}

static json_t *latency_json(struct samples *s)
{
	return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}",
			 "count", (json_int_t)s->n,
			 "p50_ms", samples_quantile_ms(s, 0.50),
			 "p90_ms", samples_quantile_ms(s, 0.90),
			 "p99_ms", samples_quantile_ms(s, 0.99),
			 "p999_ms", samples_quantile_ms(s, 0.999),
			 "max_ms", samples_quantile_ms(s, 1.0));
}

static double demo_send_seconds(const struct demo *d)
{
	uint64_t stop = d->send_stop_ns ? d->send_stop_ns : now_ns(CLOCK_REALTIME);

	if (!d->send_start_ns || stop <= d->send_start_ns)
		return 0;
	return (double)(stop - d->send_start_ns) / NSEC_PER_SEC;
}

static void demo_print_json(struct demo *d)
{
	const struct demo_stats *st = &d->st;
	json_t *out;
	char *text;

	out = json_pack("{s:i, s:i, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, "
			"s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
			"users", d->opt.users, "sessions", d->session_count,
			"rate", d->opt.rate, "send_seconds", demo_send_seconds(d),
			"logins_ok", (json_int_t)st->logins_ok,
			"logins_failed", (json_int_t)st->logins_failed,
			"disconnects", (json_int_t)st->disconnects,
			"sent", (json_int_t)st->sent,
			"acked", (json_int_t)st->acked,
			"failed", (json_int_t)st->failed,
			"pending", (json_int_t)d->pending,
			"deliveries", (json_int_t)st->deliveries,
			"unique_deliveries", (json_int_t)st->unique_deliveries,
			"expected_deliveries", (json_int_t)st->expected,
			"missing", (json_int_t)st->missing,
			"duplicates", (json_int_t)st->duplicates,
			"self_deliveries", (json_int_t)st->self_deliveries,
			"unknown_deliveries", (json_int_t)st->unknown_deliveries,
			"errors", (json_int_t)st->errors,
			"delivery_latency", latency_json(&d->st.delivery_lat),
			"ack_latency", latency_json(&d->st.ack_lat));
	text = out ? json_dumps(out, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) : NULL;
	if (text)
		printf("%s\n", text);
	free(text);
	json_decref(out);
}

static void print_latency_row(const char *name, const struct samples *s)
{
	printf("  %-18s %8.3f %8.3f %8.3f %8.3f %8.3f  (%zu samples)\n", name,
	       samples_quantile_ms(s, 0.50), samples_quantile_ms(s, 0.90),
	       samples_quantile_ms(s, 0.99), samples_quantile_ms(s, 0.999),
	       samples_quantile_ms(s, 1.0), s->n);
}

static void demo_print_table(struct demo *d)
{
	const struct demo_stats *st = &d->st;
	double secs = demo_send_seconds(d);

	printf("imgw-demo: %d users, %d sessions (%d big of %d), %.0f msg/s for %.1f s\n",
	       d->opt.users, d->session_count, d->opt.big_groups,
	       d->opt.big_size, d->opt.rate, secs);
	printf("  clients logged in     %10" PRIu64 "   login failures %" PRIu64
	       ", disconnects %" PRIu64 "\n", st->logins_ok, st->logins_failed,
	       st->disconnects);
	printf("  messages sent         %10" PRIu64 "   (%.1f/s)\n", st->sent,
	       secs > 0 ? (double)st->sent / secs : 0);
	printf("  acknowledged          %10" PRIu64 "   failed %" PRIu64
	       ", no result %" PRIu64 "\n", st->acked, st->failed, d->pending);
	printf("  deliveries received   %10" PRIu64 "   (%.1f/s)\n",
	       st->deliveries, secs > 0 ? (double)st->deliveries / secs : 0);
	printf("  expected deliveries   %10" PRIu64 "\n", st->expected);
	printf("  missing               %10" PRIu64 "\n", st->missing);
	printf("  duplicates            %10" PRIu64 "\n", st->duplicates);
	printf("  pushed to the sender  %10" PRIu64 "\n", st->self_deliveries);
	printf("  unknown pushes        %10" PRIu64 "\n", st->unknown_deliveries);
	printf("  latency (ms)              p50      p90      p99    p99.9      max\n");
	print_latency_row("delivery", &st->delivery_lat);
	print_latency_row("ack", &st->ack_lat);
}

static int demo_report(struct demo *d)
{
	demo_count_missing(d);
	qsort(d->st.delivery_lat.v, d->st.delivery_lat.n, sizeof(uint64_t), cmp_u64);
	qsort(d->st.ack_lat.v, d->st.ack_lat.n, sizeof(uint64_t), cmp_u64);
	if (d->opt.json)
		demo_print_json(d);
	else
		demo_print_table(d);
	if (d->st.missing || d->st.duplicates) {
		fprintf(stderr, "imgw-demo: FAILED: %" PRIu64 " deliveries missing, %"
			PRIu64 " duplicated\n", d->st.missing, d->st.duplicates);
		return 1;
	}
	if (d->st.acked == 0) {
		fprintf(stderr, "imgw-demo: FAILED: no message was acknowledged\n");
		return 1;
	}
	/* Clients that went away and sends without a result were not checked. */
	if (d->pending || d->st.disconnects || d->st.logins_failed) {
		fprintf(stderr, "imgw-demo: FAILED: the check is incomplete: %" PRIu64
			" sends without a result, %" PRIu64 " disconnects, %" PRIu64
			" login failures\n", d->pending, d->st.disconnects,
			d->st.logins_failed);
		return 1;
	}
	return 0;
}

/* ---- startup ---- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: imgw-demo [options]\n"
		"  --gateway HOST:PORT   gateway (default 127.0.0.1:7070)\n"
		"  --admin URL           bizsvr admin API (default $IMGW_ADMIN or %s)\n"
		"  --users N             simulated users, one connection each (default 1000)\n"
		"  --groups N            small groups, sizes Zipf over %d..%d (default 200)\n"
		"  --big-groups N        big groups (default 3)\n"
		"  --big-size N          members of each big group (default 300)\n"
		"  --rate N              messages per second in total, Poisson (default 200)\n"
		"  --duration SEC        length of the send phase (default 15)\n"
		"  --seed N              random seed (default: time and pid)\n"
		"  --prefix TEXT         user and session name prefix (default \"u\")\n"
		"  --json                print the figures as JSON\n"
		"exits 1 when a delivery was missing or duplicated, a send got no result,\n"
		"or a client failed to log in or was disconnected\n",
		ADMIN_DEFAULT_URL, DEMO_SMALL_MIN, DEMO_SMALL_MAX);
}

static int parse_number(const char *name, const char *text, double min,
			double max, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(text, &end);
	if (errno || end == text || *end || *out < min || *out > max) {
		fprintf(stderr, "imgw-demo: invalid --%s '%s': expected a number from %g to %g\n",
			name, text, min, max);
		return -EINVAL;
	}
	return 0;
}

static int parse_options(int argc, char **argv, struct demo_options *o)
{
	static const struct option opts[] = {
		{ "gateway", required_argument, NULL, 'g' },
		{ "admin", required_argument, NULL, 'a' },
		{ "users", required_argument, NULL, 'u' },
		{ "groups", required_argument, NULL, 'G' },
		{ "big-groups", required_argument, NULL, 'B' },
		{ "big-size", required_argument, NULL, 'S' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 's' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	double v = 0;
	int c, err = 0;

	while (err == 0 && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		const char *name = "";

		/* The long name, for error messages. */
		for (const struct option *p = opts; p->name; p++) {
			if (p->val == c)
				name = p->name;
		}
		switch (c) {
		case 'g': o->gateway = optarg; break;
		case 'a': o->admin = optarg; break;
		case 'p': o->prefix = optarg; break;
		case 'j': o->json = 1; break;
		case 'h': usage(stdout); exit(0);
		case 'u':
			err = parse_number(name, optarg, 1, 500000, &v);
			o->users = (int)v;
			break;
		case 'G':
			err = parse_number(name, optarg, 0, 1000000, &v);
			o->groups = (int)v;
			break;
		case 'B':
			err = parse_number(name, optarg, 0, 1000, &v);
			o->big_groups = (int)v;
			break;
		case 'S':
			err = parse_number(name, optarg, 2, 500000, &v);
			o->big_size = (int)v;
			break;
		case 'r': err = parse_number(name, optarg, 0.1, 1e6, &o->rate); break;
		case 'd': err = parse_number(name, optarg, 0.1, 86400, &o->duration); break;
		case 's':
			err = parse_number(name, optarg, 0, 1e18, &v);
			o->seed = (uint64_t)v;
			break;
		default: return -EINVAL;
		}
	}
	if (err == 0 && optind != argc) {
		fprintf(stderr, "imgw-demo: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (err == 0 && o->users < 2) {
		fprintf(stderr, "imgw-demo: --users must be at least 2\n");
		return -EINVAL;
	}
	if (err == 0 && o->groups + o->big_groups == 0) {
		fprintf(stderr, "imgw-demo: --groups and --big-groups are both 0, nothing to send to\n");
		return -EINVAL;
	}
	return err;
}

static int demo_resolve_gateway(struct demo *d)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	char host[256], port_text[8];
	uint16_t port;
	int rc;

	if (parse_host_port(d->opt.gateway, host, sizeof(host), &port) < 0) {
		fprintf(stderr, "imgw-demo: invalid --gateway '%s': expected HOST:PORT\n",
			d->opt.gateway);
		return -EINVAL;
	}
	snprintf(port_text, sizeof(port_text), "%u", port);
	rc = getaddrinfo(host, port_text, &hints, &ai);
	if (rc) {
		fprintf(stderr, "imgw-demo: cannot resolve '%s': %s\n", host,
			gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	memcpy(&d->gw_addr, ai->ai_addr, ai->ai_addrlen);
	d->gw_addr_len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* Raises the soft open-file limit to the hard one: one socket per user. */
static int demo_raise_nofile(int users)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)users + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			return -errno;
	}
	if (rl.rlim_cur < need) {
		fprintf(stderr, "imgw-demo: %d users need %llu open files, the limit is %llu\n",
			users, (unsigned long long)need,
			(unsigned long long)rl.rlim_cur);
		return -EMFILE;
	}
	return 0;
}

static int demo_init(struct demo *d)
{
	d->rng = d->opt.seed ? d->opt.seed
			     : now_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32);
	d->rng |= 1;    /* xorshift must not start at zero */
	d->base = event_base_new();
	d->clients = calloc((size_t)d->opt.users, sizeof(*d->clients));
	if (!d->base || !d->clients)
		return -ENOMEM;
	for (int i = 0; i < d->opt.users; i++) {
		d->clients[i].demo = d;
		d->clients[i].index = i;
		snprintf(d->clients[i].user, sizeof(d->clients[i].user), "%s%d",
			 d->opt.prefix, i);
	}
	d->tick_ev = event_new(d->base, -1, EV_PERSIST, demo_tick_cb, d);
	d->second_ev = event_new(d->base, -1, EV_PERSIST, demo_second_cb, d);
	d->sigint_ev = evsignal_new(d->base, SIGINT, demo_signal_cb, d);
	d->sigterm_ev = evsignal_new(d->base, SIGTERM, demo_signal_cb, d);
	if (!d->tick_ev || !d->second_ev || !d->sigint_ev || !d->sigterm_ev)
		return -ENOMEM;
	return 0;
}

static int demo_run(struct demo *d)
{
	struct timeval second = { 1, 0 };

	d->session_cdf = zipf_cdf(d->session_count, DEMO_ZIPF_S);
	if (!d->session_cdf)
		return -ENOMEM;
	evsignal_add(d->sigint_ev, NULL);
	evsignal_add(d->sigterm_ev, NULL);
	event_add(d->second_ev, &second);
	d->phase = PHASE_CONNECT;
	d->last_progress_mono = now_ns(CLOCK_MONOTONIC);
	demo_start_connects(d);
	if (event_base_dispatch(d->base) < 0)
		return -EIO;
	return 0;
}

static void demo_free(struct demo *d)
{
	for (int i = 0; d->clients && i < d->opt.users; i++) {
		if (d->clients[i].bev)
			bufferevent_free(d->clients[i].bev);
		free(d->clients[i].token);
		free(d->clients[i].memberships);
	}
	HASH_CLEAR(hh, d->by_id);
	for (int i = 0; d->sessions && i < d->session_count; i++) {
		for (int m = 0; d->sessions[i].seen && m < d->sessions[i].member_count; m++)
			free(d->sessions[i].seen[m].bits);
		free(d->sessions[i].seen);
		free(d->sessions[i].members);
	}
	free(d->sessions);
	free(d->clients);
	free(d->session_cdf);
	free(d->sends);
	free(d->st.delivery_lat.v);
	free(d->st.ack_lat.v);
	if (d->tick_ev)
		event_free(d->tick_ev);
	if (d->second_ev)
		event_free(d->second_ev);
	if (d->sigint_ev)
		event_free(d->sigint_ev);
	if (d->sigterm_ev)
		event_free(d->sigterm_ev);
	if (d->base)
		event_base_free(d->base);
}

int main(int argc, char **argv)
{
	struct demo d = {
		.opt = {
			.gateway = "127.0.0.1:7070",
			.prefix = "u",
			.users = 1000,
			.groups = 200,
			.big_groups = 3,
			.big_size = 300,
			.rate = 200,
			.duration = 15,
		},
	};
	int rc = 1;

	d.opt.admin = getenv("IMGW_ADMIN");
	if (!d.opt.admin || !d.opt.admin[0])
		d.opt.admin = ADMIN_DEFAULT_URL;
	if (parse_options(argc, argv, &d.opt) < 0) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (demo_raise_nofile(d.opt.users) < 0 || demo_resolve_gateway(&d) < 0)
		return 1;
	if (demo_init(&d) < 0) {
		fprintf(stderr, "imgw-demo: out of memory\n");
		goto out;
	}
	if (demo_setup(&d) < 0 || demo_run(&d) < 0)
		goto out;
	rc = demo_report(&d);
out:
	demo_free(&d);
	return rc;
}

// SPDX-License-Identifier: MIT
/*
 * Test clients over lib/client.h: log in, send and wait for the matching
 * SEND_RESULT, sync, heartbeat, and record every PUSH, KICK and ERROR that
 * arrives meanwhile so the tests can check delivery afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "token.h"

static struct tclient *tc_wrap(struct harness *h, int gw, struct client *c)
{
	struct tclient *t = calloc(1, sizeof(*t));

	H_CHECK(t != NULL, "out of memory");
	t->h = h;
	t->c = c;
	t->gw = gw;
	t->error_code = -1;
	return t;
}

struct tclient *tc_connect(struct harness *h, int gw)
{
	struct client *c = client_connect("127.0.0.1", h->gw[gw].port,
					  HARNESS_WAIT_MS);

	H_CHECK(c != NULL, "connect to %s (port %u) failed: %s",
		h->gw[gw].name, h->gw[gw].port, strerror(errno));
	return tc_wrap(h, gw, c);
}

struct tclient *tc_connect_rcvbuf(struct harness *h, int gw, int rcvbuf)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct client *c;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	H_CHECK(fd >= 0, "socket failed: %s", strerror(errno));
	/* Before connect, so the window scale is negotiated for it. */
	H_CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
			   sizeof(rcvbuf)) == 0,
		"SO_RCVBUF %d failed: %s", rcvbuf, strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(h->gw[gw].port);
	H_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		"connect to %s (port %u) failed: %s", h->gw[gw].name,
		h->gw[gw].port, strerror(errno));
	c = calloc(1, sizeof(*c));
	H_CHECK(c != NULL, "out of memory");
	c->fd = fd;
	c->next_request_id = 1;
	return tc_wrap(h, gw, c);
}

int tc_login_token(struct tclient *t, const char *user, const char *device,
		   const char *token)
{
	int err;

	snprintf(t->user, sizeof(t->user), "%s", user);
	snprintf(t->device, sizeof(t->device), "%s", device);
	if (t->login)
		imgw__login_result__free_unpacked(t->login, NULL);
	t->login = NULL;
	err = client_login(t->c, token, user, device, "test", HARNESS_WAIT_MS,
			   &t->login);
	if (t->login)
		t->conn_id = t->login->conn_id;
	return err;
}

struct tclient *tc_login(struct harness *h, int gw, const char *user,
			 const char *device)
{
	char token[TOKEN_MAX_LEN + 1];
	struct tclient *t = tc_connect(h, gw);
	int err;

	harness_token(h, user, (int64_t)time(NULL) + 3600, token);
	err = tc_login_token(t, user, device, token);
	H_CHECK(err == 0,
		"login of %s/%s on %s failed: %s (code %d, reason \"%s\")",
		user, device, h->gw[gw].name, strerror(-err),
		t->login ? (int)t->login->code : -1,
		t->login && t->login->reason ? t->login->reason : "");
	return t;
}

static void push_rec_free(struct push_rec *p)
{
	free(p->sender);
	free(p->sender_device);
	free(p->client_msg_id);
	free(p->payload);
}

void tc_free(struct tclient *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->push_count; i++)
		push_rec_free(&t->pushes[i]);
	free(t->pushes);
	if (t->login)
		imgw__login_result__free_unpacked(t->login, NULL);
	client_close(t->c);
	free(t);
}

static char *dup_or_empty(const char *s)
{
	char *copy = strdup(s ? s : "");

	H_CHECK(copy != NULL, "out of memory");
	return copy;
}

static void record_push(struct tclient *t, const struct client_frame *f)
{
	Imgw__Push *push = imgw__push__unpack(NULL, f->hdr.body_len, f->body);
	struct push_rec *p;

	H_CHECK(push != NULL, "%s/%s: PUSH body of %u bytes does not decode",
		t->user, t->device, f->hdr.body_len);
	if (t->push_count == t->push_cap) {
		t->push_cap = t->push_cap ? t->push_cap * 2 : 64;
		t->pushes = realloc(t->pushes,
				    t->push_cap * sizeof(*t->pushes));
		H_CHECK(t->pushes != NULL, "out of memory");
	}
	p = &t->pushes[t->push_count++];
	p->session_id = push->session_id;
	p->seq = push->seq;
	p->time_ms = push->time_ms;
	p->sender = dup_or_empty(push->sender);
	p->sender_device = dup_or_empty(push->sender_device);
	p->client_msg_id = dup_or_empty(push->client_msg_id);
	p->payload_len = push->payload.len;
	p->payload = malloc(push->payload.len + 1);
	H_CHECK(p->payload != NULL, "out of memory");
	if (push->payload.len)
		memcpy(p->payload, push->payload.data, push->payload.len);
	p->payload[push->payload.len] = '\0';
	imgw__push__free_unpacked(push, NULL);
}

int tc_record(struct tclient *t, const struct client_frame *f)
{
	switch (f->hdr.op) {
	case OP_PUSH:
		record_push(t, f);
		return 0;
	case OP_KICK: {
		Imgw__Kick *kick = imgw__kick__unpack(NULL, f->hdr.body_len,
						      f->body);

		H_CHECK(kick != NULL, "%s/%s: KICK body does not decode",
			t->user, t->device);
		t->kicked = 1;
		snprintf(t->kick_reason, sizeof(t->kick_reason), "%s",
			 kick->reason ? kick->reason : "");
		imgw__kick__free_unpacked(kick, NULL);
		return 0;
	}
	case OP_ERROR: {
		Imgw__Error *error = imgw__error__unpack(NULL, f->hdr.body_len,
							 f->body);

		H_CHECK(error != NULL, "%s/%s: ERROR body does not decode",
			t->user, t->device);
		t->error_code = (int)error->code;
		imgw__error__free_unpacked(error, NULL);
		return 0;
	}
	default:
		return 1;
	}
}

/* Receives one frame with the time left until deadline (monotonic ms). */
static int recv_until(struct tclient *t, uint64_t deadline,
		      struct client_frame *f)
{
	uint64_t now = client_now_ms(1);
	int err;

	err = client_recv(t->c, now >= deadline ? 0 : (int)(deadline - now), f);
	if (err == -ECONNRESET)
		t->closed = 1;
	if (err < 0)
		t->last_err = err;
	return err;
}

int tc_wait_op(struct tclient *t, unsigned int op, uint32_t request_id,
	       int timeout_ms, struct client_frame *f)
{
	uint64_t deadline = client_now_ms(1) + (uint64_t)timeout_ms;

	for (;;) {
		int err = recv_until(t, deadline, f);

		if (err < 0)
			return err;
		if (f->hdr.op == op &&
		    (request_id == 0 || f->hdr.request_id == request_id))
			return 0;
		H_CHECK(tc_record(t, f) == 0,
			"%s/%s: unexpected %s frame (op %u, request id %u) while waiting for %s",
			t->user, t->device,
			frame_op_name(f->hdr.op) ? frame_op_name(f->hdr.op) : "unknown",
			f->hdr.op, f->hdr.request_id, frame_op_name(op));
		client_frame_free(f);
	}
}

int tc_send_id(struct tclient *t, uint64_t session_id, const char *to_user,
	       const char *client_msg_id, const char *payload,
	       Imgw__SendResult **res)
{
	Imgw__SendRequest req = IMGW__SEND_REQUEST__INIT;
	struct client_frame f;
	int64_t rid;
	int err;

	*res = NULL;
	req.session_id = session_id;
	req.to_user = (char *)(to_user ? to_user : "");
	req.client_msg_id = (char *)client_msg_id;
	req.payload.data = (uint8_t *)payload;
	req.payload.len = strlen(payload);
	rid = client_send(t->c, OP_SEND, &req.base);
	if (rid < 0)
		return (int)rid;
	err = tc_wait_op(t, OP_SEND_RESULT, (uint32_t)rid, HARNESS_WAIT_MS,
			 &f);
	if (err < 0)
		return err;
	*res = imgw__send_result__unpack(NULL, f.hdr.body_len, f.body);
	client_frame_free(&f);
	H_CHECK(*res != NULL, "%s/%s: SEND_RESULT body does not decode",
		t->user, t->device);
	return 0;
}

int tc_send(struct tclient *t, uint64_t session_id, const char *to_user,
	    const char *payload, Imgw__SendResult **res)
{
	static unsigned int counter;
	char msg_id[48];

	/* Unique per test process: the daemon dedupes on (sender, id). */
	snprintf(msg_id, sizeof(msg_id), "m-%d-%u", (int)getpid(), ++counter);
	return tc_send_id(t, session_id, to_user, msg_id, payload, res);
}

uint64_t tc_send_ok(struct tclient *t, uint64_t session_id,
		    const char *payload)
{
	Imgw__SendResult *res;
	uint64_t seq;
	int err = tc_send(t, session_id, NULL, payload, &res);

	H_CHECK(err == 0, "%s/%s: send to session %llu failed: %s", t->user,
		t->device, (unsigned long long)session_id, strerror(-err));
	H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NONE,
		"%s/%s: SEND_RESULT code %d (%s), expected 0", t->user,
		t->device, res->code, res->reason ? res->reason : "");
	H_CHECK(res->session_id == session_id,
		"%s/%s: SEND_RESULT session %llu, expected %llu", t->user,
		t->device, (unsigned long long)res->session_id,
		(unsigned long long)session_id);
	H_CHECK(res->seq > 0, "%s/%s: SEND_RESULT seq 0, expected > 0",
		t->user, t->device);
	seq = res->seq;
	imgw__send_result__free_unpacked(res, NULL);
	return seq;
}

int tc_sync(struct tclient *t, uint64_t session_id, uint64_t from_seq,
	    uint32_t limit, Imgw__SyncResult **res)
{
	Imgw__SyncRequest req = IMGW__SYNC_REQUEST__INIT;
	struct client_frame f;
	int64_t rid;
	int err;

	*res = NULL;
	req.session_id = session_id;
	req.from_seq = from_seq;
	req.limit = limit;
	rid = client_send(t->c, OP_SYNC, &req.base);
	if (rid < 0)
		return (int)rid;
	err = tc_wait_op(t, OP_SYNC_RESULT, (uint32_t)rid, HARNESS_WAIT_MS,
			 &f);
	if (err < 0)
		return err;
	*res = imgw__sync_result__unpack(NULL, f.hdr.body_len, f.body);
	client_frame_free(&f);
	H_CHECK(*res != NULL, "%s/%s: SYNC_RESULT body does not decode",
		t->user, t->device);
	return 0;
}

int tc_heartbeat(struct tclient *t, int timeout_ms)
{
	struct client_frame f;
	int64_t rid = client_send(t->c, OP_HEARTBEAT, NULL);
	int err;

	if (rid < 0)
		return (int)rid;
	err = tc_wait_op(t, OP_HEARTBEAT_ACK, (uint32_t)rid, timeout_ms, &f);
	if (err == 0)
		client_frame_free(&f);
	return err;
}

size_t tc_collect(struct tclient *t, size_t count, int timeout_ms)
{
	uint64_t deadline = client_now_ms(1) + (uint64_t)timeout_ms;

	while (t->push_count < count && !t->closed) {
		struct client_frame f;

		if (recv_until(t, deadline, &f) < 0)
			break;
		H_CHECK(tc_record(t, &f) == 0,
			"%s/%s: unexpected %s frame (op %u) while collecting pushes",
			t->user, t->device,
			frame_op_name(f.hdr.op) ? frame_op_name(f.hdr.op) : "unknown",
			f.hdr.op);
		client_frame_free(&f);
	}
	return t->push_count;
}

int tc_wait_closed(struct tclient *t, int timeout_ms)
{
	uint64_t deadline = client_now_ms(1) + (uint64_t)timeout_ms;

	while (!t->closed) {
		struct client_frame f;
		int err = recv_until(t, deadline, &f);

		if (err == -ETIMEDOUT)
			return err;
		if (err < 0) {
			/* A reset or any other error ends the connection. */
			t->closed = 1;
			break;
		}
		tc_record(t, &f);
		client_frame_free(&f);
	}
	return 0;
}

long tc_find_push(const struct tclient *t, uint64_t session_id, uint64_t seq)
{
	for (size_t i = 0; i < t->push_count; i++)
		if (t->pushes[i].session_id == session_id &&
		    t->pushes[i].seq == seq)
			return (long)i;
	return -1;
}

long tc_wait_push(struct tclient *t, uint64_t session_id, uint64_t seq,
		  int timeout_ms)
{
	uint64_t deadline = client_now_ms(1) + (uint64_t)timeout_ms;
	long at;

	while ((at = tc_find_push(t, session_id, seq)) < 0) {
		uint64_t now = client_now_ms(1);
		size_t before = t->push_count;

		if (now >= deadline || t->closed)
			break;
		tc_collect(t, before + 1, (int)(deadline - now));
		if (t->push_count == before)
			break;
	}
	return at;
}

void sent_add(struct sent_msg *list, size_t *count, uint64_t seq,
	      const char *sender, const char *payload)
{
	struct sent_msg *m;

	H_CHECK(*count < HARNESS_MAX_MSGS, "more than %d messages in a list",
		HARNESS_MAX_MSGS);
	m = &list[(*count)++];
	m->seq = seq;
	snprintf(m->sender, sizeof(m->sender), "%s", sender);
	snprintf(m->payload, sizeof(m->payload), "%s", payload);
}

void tc_check_pushes(const struct tclient *t, uint64_t session_id,
		     const struct sent_msg *want, size_t count)
{
	size_t next = 0;
	uint64_t last_seq = 0;

	for (size_t i = 0; i < t->push_count; i++) {
		const struct push_rec *p = &t->pushes[i];

		if (p->session_id != session_id)
			continue;
		H_CHECK(p->seq > last_seq,
			"%s/%s: push seq %llu after seq %llu, expected increasing seqs without repeats",
			t->user, t->device, (unsigned long long)p->seq,
			(unsigned long long)last_seq);
		last_seq = p->seq;
		H_CHECK(next < count,
			"%s/%s: unexpected push seq %llu (\"%s\" from %s), expected %zu pushes in session %llu",
			t->user, t->device, (unsigned long long)p->seq,
			p->payload, p->sender, count,
			(unsigned long long)session_id);
		H_CHECK(p->seq == want[next].seq,
			"%s/%s: push seq %llu, expected seq %llu (\"%s\"): a message is missing",
			t->user, t->device, (unsigned long long)p->seq,
			(unsigned long long)want[next].seq, want[next].payload);
		H_CHECK(strcmp(p->sender, want[next].sender) == 0,
			"%s/%s: seq %llu sender \"%s\", expected \"%s\"",
			t->user, t->device, (unsigned long long)p->seq,
			p->sender, want[next].sender);
		H_CHECK(strcmp(p->payload, want[next].payload) == 0,
			"%s/%s: seq %llu payload \"%s\", expected \"%s\"",
			t->user, t->device, (unsigned long long)p->seq,
			p->payload, want[next].payload);
		next++;
	}
	H_CHECK(next == count,
		"%s/%s: %zu pushes in session %llu, expected %zu (first missing seq %llu)",
		t->user, t->device, next, (unsigned long long)session_id,
		count, next < count ? (unsigned long long)want[next].seq : 0ULL);
}

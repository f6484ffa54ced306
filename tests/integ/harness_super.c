// SPDX-License-Identifier: MIT
/*
 * Super-session helpers, declared in harness_super.h. Waits poll the admin APIs
 * every 20 ms up to a stall bound, so they end as soon as the condition
 * holds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness_super.h"

#define POLL_MS 20
#define SYNC_PAGE 50

void super_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static struct sg_msg *sg_add(struct sgroup *g, uint64_t seq,
			     const struct tclient *from, const char *sender,
			     const char *payload)
{
	struct sg_msg *m;

	H_CHECK(g->n_msgs < SG_MAX_MSGS, "more than %d messages in the log",
		SG_MAX_MSGS);
	H_CHECK(g->n_msgs == 0 || seq == g->msgs[g->n_msgs - 1].seq + 1,
		"session %llu: seq %llu after %llu, expected consecutive seqs",
		(unsigned long long)g->sid, (unsigned long long)seq,
		(unsigned long long)g->msgs[g->n_msgs - 1].seq);
	m = &g->msgs[g->n_msgs++];
	m->seq = seq;
	m->from = from;
	snprintf(m->sender, sizeof(m->sender), "%s", sender);
	snprintf(m->payload, sizeof(m->payload), "%s", payload);
	return m;
}

uint64_t sg_send(struct sgroup *g, struct tclient *t, const char *tag)
{
	char payload[64];
	uint64_t seq;

	snprintf(payload, sizeof(payload), "%s-%zu", tag, g->n_msgs);
	seq = tc_send_ok(t, g->sid, payload);
	sg_add(g, seq, t, t->user, payload);
	return seq;
}

uint64_t sg_push(struct sgroup *g, const char *tag)
{
	char payload[64];
	uint64_t seq;

	snprintf(payload, sizeof(payload), "%s-%zu", tag, g->n_msgs);
	seq = admin_push(g->h, g->sid, "system", payload);
	sg_add(g, seq, NULL, "system", payload);
	return seq;
}

uint64_t sg_last_seq(const struct sgroup *g)
{
	return g->n_msgs ? g->msgs[g->n_msgs - 1].seq : 0;
}

void sg_check_pushes(struct sgroup *g, struct tclient *t, uint64_t from_seq,
		     uint64_t to_seq)
{
	struct sent_msg *want = calloc(g->n_msgs + 1, sizeof(*want));
	size_t n = 0;

	H_CHECK(want != NULL, "out of memory");
	for (size_t i = 0; i < g->n_msgs; i++) {
		const struct sg_msg *m = &g->msgs[i];

		if (m->seq < from_seq || m->seq > to_seq || m->from == t)
			continue;
		want[n].seq = m->seq;
		snprintf(want[n].sender, sizeof(want[n].sender), "%s",
			 m->sender);
		snprintf(want[n].payload, sizeof(want[n].payload), "%s",
			 m->payload);
		n++;
	}
	/* Pushes of one session keep their order on a connection, so a
	 * duplicate or stray push shows up before the last wanted one. */
	if (n)
		H_CHECK(tc_wait_push(t, g->sid, want[n - 1].seq,
				     HARNESS_WAIT_MS) >= 0,
			"%s/%s (conn %llu on gw%d): seq %llu not pushed within %d ms",
			t->user, t->device, (unsigned long long)t->conn_id,
			t->gw, (unsigned long long)want[n - 1].seq,
			HARNESS_WAIT_MS);
	tc_check_pushes(t, g->sid, want, n);
	H_CHECK(!t->kicked, "%s/%s was kicked: %s", t->user, t->device,
		t->kick_reason);
	free(want);
}

/* Checks one synced message against the log and returns the next index. */
static size_t sync_check_one(struct sgroup *g, struct tclient *t, size_t at,
			     const Imgw__Push *p)
{
	const struct sg_msg *m;

	H_CHECK(at < g->n_msgs, "%s/%s: sync returned seq %llu past the last logged seq %llu",
		t->user, t->device, (unsigned long long)p->seq,
		(unsigned long long)sg_last_seq(g));
	m = &g->msgs[at];
	H_CHECK(p->seq == m->seq,
		"%s/%s: sync returned seq %llu, expected seq %llu",
		t->user, t->device, (unsigned long long)p->seq,
		(unsigned long long)m->seq);
	H_CHECK(p->payload.len == strlen(m->payload) &&
		memcmp(p->payload.data, m->payload, p->payload.len) == 0,
		"%s/%s: synced seq %llu has payload \"%.*s\", expected \"%s\"",
		t->user, t->device, (unsigned long long)p->seq,
		(int)p->payload.len, (const char *)p->payload.data,
		m->payload);
	return at + 1;
}

void sg_check_sync(struct sgroup *g, struct tclient *t, uint64_t from_seq)
{
	size_t at = 0;
	int more = 1;

	while (at < g->n_msgs && g->msgs[at].seq < from_seq)
		at++;
	for (int pages = 0; more; pages++) {
		Imgw__SyncResult *res;
		int err;

		H_CHECK(pages < 1000, "%s/%s: sync never ended", t->user,
			t->device);
		err = tc_sync(t, g->sid, from_seq, SYNC_PAGE, &res);
		H_CHECK(err == 0, "%s/%s: sync from %llu failed: %s", t->user,
			t->device, (unsigned long long)from_seq,
			strerror(-err));
		H_CHECK(res->code == IMGW__ERROR_CODE__ERROR_NONE,
			"%s/%s: sync from %llu: code %d, expected 0", t->user,
			t->device, (unsigned long long)from_seq, res->code);
		for (size_t i = 0; i < res->n_messages; i++) {
			at = sync_check_one(g, t, at, res->messages[i]);
			from_seq = res->messages[i]->seq + 1;
		}
		more = res->more;
		imgw__sync_result__free_unpacked(res, NULL);
	}
	H_CHECK(at == g->n_msgs,
		"%s/%s: sync ended before seq %llu, expected every logged seq",
		t->user, t->device,
		at < g->n_msgs ? (unsigned long long)g->msgs[at].seq : 0ULL);
}

/* Sends a request to an admin API and returns its JSON reply, which must have status want. */
static json_t *json_call(struct daemon_proc *d, const char *method,
			 const char *path, const char *request, int want)
{
	char *body = NULL;
	json_t *reply;
	int code = http_call(d->http_port, method, path, request, &body);

	H_CHECK(code == want, "%s %s on %s: status %d, expected %d; body: %s",
		method, path, d->name, code, want, body ? body : "(none)");
	reply = json_loads(body, 0, NULL);
	H_CHECK(reply != NULL, "%s %s on %s: reply is not JSON: %s", method,
		path, d->name, body);
	free(body);
	return reply;
}

json_t *super_get(struct harness *h, uint64_t sid)
{
	char path[64];

	snprintf(path, sizeof(path), "/v1/sessions/%llu/super",
		 (unsigned long long)sid);
	return json_call(&h->biz, "GET", path, NULL, 200);
}

json_t *super_post(struct harness *h, uint64_t sid, const char *action)
{
	char path[64], request[64];

	snprintf(path, sizeof(path), "/v1/sessions/%llu/super",
		 (unsigned long long)sid);
	snprintf(request, sizeof(request), "{\"action\": \"%s\"}", action);
	return json_call(&h->biz, "POST", path, request, 200);
}

json_t *super_gateway(json_t *reply, const char *node_id)
{
	json_t *gws = json_object_get(reply, "gateways"), *g;
	size_t i;

	json_array_foreach(gws, i, g) {
		const char *id = json_string_value(json_object_get(g,
								   "node_id"));

		if (id && strcmp(id, node_id) == 0)
			return g;
	}
	return NULL;
}

json_t *super_wait_for(struct harness *h, uint64_t sid,
		       int (*pred)(json_t *reply, void *arg), void *arg,
		       const char *what, int timeout_ms)
{
	uint64_t deadline = client_now_ms(1) + (uint64_t)timeout_ms;

	for (;;) {
		json_t *reply = super_get(h, sid);
		char *text;

		if (pred(reply, arg))
			return reply;
		if (client_now_ms(1) >= deadline) {
			text = json_dumps(reply, JSON_COMPACT);
			json_decref(reply);
			harness_fail(__FILE__, __LINE__,
				     "session %llu: not %s within %d ms; last state: %s",
				     (unsigned long long)sid, what, timeout_ms,
				     text);
		}
		json_decref(reply);
		super_sleep_ms(POLL_MS);
	}
}

struct type_state {
	const char *type;
	int converged;
};

static int has_type_state(json_t *reply, void *arg)
{
	const struct type_state *want = arg;
	const char *type = json_string_value(json_object_get(reply, "type"));

	return type && strcmp(type, want->type) == 0 &&
	       json_is_true(json_object_get(reply, "converged")) ==
	       want->converged;
}

json_t *super_wait(struct harness *h, uint64_t sid, const char *type,
		   int converged, int timeout_ms)
{
	struct type_state want = { type, converged };
	char what[64];

	snprintf(what, sizeof(what), "%s and %s", type,
		 converged ? "converged" : "pending");
	return super_wait_for(h, sid, has_type_state, &want, what,
			      timeout_ms);
}

json_t *gw_cache_get(struct harness *h, int gw, uint64_t sid)
{
	json_t *list = json_call(&h->gw[gw], "GET", "/v1/sessions", NULL,
				 200);
	json_t *e, *found = NULL;
	size_t i;

	H_CHECK(json_is_array(list), "GET /v1/sessions on %s: not an array",
		h->gw[gw].name);
	json_array_foreach(list, i, e) {
		if ((uint64_t)json_integer_value(json_object_get(e,
				"session_id")) == sid) {
			found = json_incref(e);
			break;
		}
	}
	json_decref(list);
	return found;
}

static int has_conn(json_t *conns, uint64_t id)
{
	json_t *c;
	size_t i;

	json_array_foreach(conns, i, c) {
		if ((uint64_t)json_integer_value(c) == id)
			return 1;
	}
	return 0;
}

void gw_cache_check(struct harness *h, int gw, uint64_t sid,
		    const uint64_t *conns, size_t n, long long epoch)
{
	json_t *e = gw_cache_get(h, gw, sid), *list;
	char *text;

	H_CHECK(e != NULL, "%s: no cache for session %llu, expected %zu connections",
		h->gw[gw].name, (unsigned long long)sid, n);
	list = json_object_get(e, "connections");
	text = json_dumps(e, JSON_COMPACT);
	H_CHECK(json_array_size(list) == n,
		"%s: cache of session %llu holds %zu connections, expected %zu: %s",
		h->gw[gw].name, (unsigned long long)sid, json_array_size(list),
		n, text);
	for (size_t i = 0; i < n; i++)
		H_CHECK(has_conn(list, conns[i]),
			"%s: cache of session %llu lacks conn %llu: %s",
			h->gw[gw].name, (unsigned long long)sid,
			(unsigned long long)conns[i], text);
	H_CHECK(epoch < 0 ||
		json_integer_value(json_object_get(e, "epoch")) == epoch,
		"%s: cache of session %llu at epoch %lld, expected %lld: %s",
		h->gw[gw].name, (unsigned long long)sid,
		(long long)json_integer_value(json_object_get(e, "epoch")),
		epoch, text);
	free(text);
	json_decref(e);
}

void gw_cache_wait_count(struct harness *h, int gw, uint64_t sid, size_t n)
{
	uint64_t deadline = client_now_ms(1) + SUPER_WAIT_MS;

	for (;;) {
		json_t *e = gw_cache_get(h, gw, sid);
		size_t count = json_array_size(json_object_get(e,
							       "connections"));

		H_CHECK(e != NULL, "%s: no cache for session %llu, expected one of %zu connections",
			h->gw[gw].name, (unsigned long long)sid, n);
		json_decref(e);
		if (count == n)
			return;
		H_CHECK(client_now_ms(1) < deadline,
			"%s: cache of session %llu holds %zu connections after %d ms, expected %zu",
			h->gw[gw].name, (unsigned long long)sid, count,
			SUPER_WAIT_MS, n);
		super_sleep_ms(POLL_MS);
	}
}

void gw_cache_wait_gone(struct harness *h, int gw, uint64_t sid)
{
	uint64_t deadline = client_now_ms(1) + SUPER_WAIT_MS;
	json_t *e;

	while ((e = gw_cache_get(h, gw, sid))) {
		json_decref(e);
		H_CHECK(client_now_ms(1) < deadline,
			"%s: still holds a cache for session %llu after %d ms",
			h->gw[gw].name, (unsigned long long)sid,
			SUPER_WAIT_MS);
		super_sleep_ms(POLL_MS);
	}
}

void gw_drop_acks(struct harness *h, int gw, int on)
{
	json_t *reply = json_call(&h->gw[gw], "POST", "/v1/faults",
				  on ? "{\"drop_super_acks\": true}" :
				  "{\"drop_super_acks\": false}", 200);

	H_CHECK(json_is_true(json_object_get(reply, "drop_super_acks")) == on,
		"POST /v1/faults on %s: drop_super_acks not %s in the reply",
		h->gw[gw].name, on ? "true" : "false");
	json_decref(reply);
}

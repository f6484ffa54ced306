// SPDX-License-Identifier: MIT
/*
 * Admin HTTP API of the business daemon; see admin.h. A request path is split
 * into URL-decoded segments and matched against the routes in admin_route().
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <utlist.h>

#include "admin.h"
#include "batch.h"
#include "httputil.h"
#include "link.h"
#include "log.h"
#include "msg.h"
#include "superwire.h"
#include "token.h"

#define ADMIN_MAX_SEGMENTS 6
#define ADMIN_MAX_BODY (16 * 1024 * 1024)
/* Longest session name in bytes, checked when a session is created. */
#define ADMIN_MAX_NAME_LEN 256

struct admin {
	struct bizsvr *bz;
	struct evhttp *http;
};

/* One request being served: the method and the decoded path segments. */
struct admin_req {
	struct bizsvr *bz;
	struct evhttp_request *req;
	enum evhttp_cmd_type method;
	char *seg[ADMIN_MAX_SEGMENTS];
	int n_seg;
};

static const char *const kind_names[] = {
	[STORE_KIND_GROUP] = "group",
	[STORE_KIND_DIRECT] = "direct",
	[STORE_KIND_NOTICE] = "notice",
};

static const char *kind_name(int kind)
{
	if (kind < 0 || kind > STORE_KIND_NOTICE)
		return "unknown";
	return kind_names[kind];
}

static int seg_is(const struct admin_req *r, int i, const char *text)
{
	return i < r->n_seg && strcmp(r->seg[i], text) == 0;
}

/* Replies 405 unless the request has method. Returns whether it has. */
static int admin_allow(struct admin_req *r, enum evhttp_cmd_type method,
		       const char *name)
{
	if (r->method == method)
		return 1;
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow",
			  name);
	http_reply_error(r->req, 405, "method not allowed: use %s", name);
	return 0;
}

/* Parses segment i as a session id. Replies 400 and returns -EINVAL when it
 * is not a number above 0. */
static int admin_session_id(struct admin_req *r, int i, uint64_t *id)
{
	const char *text = r->seg[i];
	char *end;

	/* strtoull() alone would also take leading spaces, '+' and '-'. */
	errno = 0;
	*id = strtoull(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || errno || *end || *id == 0 ||
	    *id > INT64_MAX) {
		http_reply_error(r->req, 400, "invalid session id '%s': expected a number above 0",
				 text);
		return -EINVAL;
	}
	return 0;
}

/* Returns the session of segment i, or NULL after replying 400, 404 or 500. */
static struct session *admin_session(struct admin_req *r, int i)
{
	struct session *s;
	uint64_t id;

	if (admin_session_id(r, i, &id) < 0)
		return NULL;
	s = session_get(r->bz->sessions, id);
	if (s)
		return s;
	if (errno == ENOENT) {
		http_reply_error(r->req, 404, "session %" PRIu64 " not found",
				 id);
	} else {
		pr_error("admin: loading session %" PRIu64 " failed: %s", id,
			 strerror(errno));
		http_reply_error(r->req, 500, "loading session %" PRIu64 " failed: %s",
				 id, strerror(errno));
	}
	return NULL;
}

/* Returns segment i as a user id, or NULL after replying 400. */
static const char *admin_user(struct admin_req *r, int i)
{
	if (bizsvr_valid_id(r->seg[i]))
		return r->seg[i];
	http_reply_error(r->req, 400, "invalid user id in the path: expected 1 to 128 bytes without control characters");
	return NULL;
}

static void admin_store_error(struct admin_req *r, const char *what, int err)
{
	pr_error("admin: %s failed: %s", what, strerror(-err));
	http_reply_error(r->req, 500, "%s failed: %s", what, strerror(-err));
}

static int cmp_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Returns the members of s as a sorted JSON array, or NULL on ENOMEM. */
static json_t *admin_members_json(const struct session *s)
{
	const char **names = calloc(s->member_count ? s->member_count : 1,
				    sizeof(*names));
	struct session_member *m, *tmp;
	json_t *arr = json_array();
	size_t n = 0;

	if (!names || !arr) {
		free(names);
		json_decref(arr);
		return NULL;
	}
	HASH_ITER(hh, s->members, m, tmp)
		names[n++] = m->user_id;
	qsort(names, n, sizeof(*names), cmp_strings);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_string(names[i]));
	free(names);
	return arr;
}

static void admin_healthz(struct admin_req *r)
{
	if (!admin_allow(r, EVHTTP_REQ_GET, "GET"))
		return;
	http_reply_json(r->req, 200,
			json_pack("{s:s, s:I, s:I}", "status", "ok",
				  "gateways", (json_int_t)link_count(r->bz->links),
				  "devices_online",
				  (json_int_t)r->bz->presence->devices));
}

static int admin_count_super(void *arg, const struct super_session_info *info)
{
	uint64_t *count = arg;

	if (info->type == SUPER_TYPE_SUPER)
		(*count)++;
	return 0;
}

/* Appends a counter with one line per label value. */
static void admin_metric_labeled(struct evbuffer *out, const char *name,
				 const char *help, const char *label,
				 const char *const *values,
				 const uint64_t *counts, size_t n)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name,
			    help, name);
	for (size_t i = 0; i < n; i++)
		evbuffer_add_printf(out, "%s{%s=\"%s\"} %" PRIu64 "\n", name,
				    label, values[i], counts[i]);
}

static void admin_super_metrics(struct superwire *sw, struct evbuffer *out)
{
	static const char *const kinds[] = { "upgrade", "demote" };
	static const char *const results[] = {
		"accepted", "stale", "duplicate", "unknown",
	};
	const struct super_table *table = superwire_table(sw);
	struct super_stats st;
	uint64_t supers = 0;

	super_stats_get(table, &st);
	super_foreach_session(table, bizsvr_mono_ms(), admin_count_super,
			      &supers);
	metrics_append(out, "bizsvr_super_sessions", "gauge",
		       "Sessions of type super.", supers);
	metrics_append(out, "bizsvr_super_entries", "gauge",
		       "Sessions with an entry in the super table.", st.entries);
	metrics_append(out, "bizsvr_super_tracked", "gauge",
		       "Sessions with per-gateway transition state.",
		       st.tracked);
	admin_metric_labeled(out, "bizsvr_super_transitions_total",
			     "Super-session transitions started, by kind.",
			     "kind", kinds,
			     (const uint64_t[]){ st.upgrades, st.demotes }, 2);
	admin_metric_labeled(out, "bizsvr_super_acks_total",
			     "SUPER_ACK frames, by how the table took them.",
			     "result", results,
			     (const uint64_t[]){ st.acks_accepted,
						 st.acks_stale,
						 st.acks_duplicate,
						 st.acks_unknown }, 4);
	metrics_append(out, "bizsvr_super_retries_total", "counter",
		       "Transitions sent again to a gateway that had not acknowledged.",
		       st.retries);
	metrics_append(out, "bizsvr_super_converge_ms_sum", "counter",
		       "Milliseconds from transitions to the last gateway's acknowledgement.",
		       st.convergence_ms_sum);
	metrics_append(out, "bizsvr_super_converge_ms_count", "counter",
		       "Transitions every live gateway acknowledged.",
		       st.convergences);
}

static void admin_metrics(struct admin_req *r)
{
	const struct bizsvr_stats *st = &r->bz->stats;
	struct evbuffer *out;

	if (!admin_allow(r, EVHTTP_REQ_GET, "GET"))
		return;
	out = evbuffer_new();
	if (!out) {
		http_reply_error(r->req, 500, "out of memory");
		return;
	}
	metrics_append(out, "bizsvr_gateways", "gauge",
		       "Registered gateway links.", link_count(r->bz->links));
	metrics_append(out, "bizsvr_devices_online", "gauge",
		       "Devices online on any gateway.",
		       r->bz->presence->devices);
	metrics_append(out, "bizsvr_logins_total", "counter",
		       "Logins accepted.", st->logins);
	metrics_append(out, "bizsvr_login_failures_total", "counter",
		       "Logins rejected.", st->login_failures);
	metrics_append(out, "bizsvr_messages_stored_total", "counter",
		       "Messages stored with a new sequence number.",
		       st->messages_stored);
	metrics_append(out, "bizsvr_messages_rejected_total", "counter",
		       "SEND requests rejected before storage.",
		       st->messages_rejected);
	metrics_append(out, "bizsvr_messages_duplicate_total", "counter",
		       "Messages whose client_msg_id was stored before.",
		       st->messages_duplicate);
	metrics_append(out, "bizsvr_store_commits_total", "counter",
		       "Commits of message batches; messages stored and duplicates over this is the batch size.",
		       st->store_commits);
	metrics_append(out, "bizsvr_deliver_frames_total", "counter",
		       "DELIVER frames sent to gateways.", st->deliver_frames);
	metrics_append(out, "bizsvr_deliveries_total", "counter",
		       "Device targets in DELIVER frames.", st->deliveries);
	metrics_append(out, "bizsvr_syncs_total", "counter",
		       "SYNC requests served.", st->syncs);
	metrics_append(out, "bizsvr_broadcasts_total", "counter",
		       "DELIVER frames of type SUPER, without a device list.",
		       st->broadcasts);
	metrics_append(out, "bizsvr_super_transition_frames_total", "counter",
		       "DELIVER frames re-sending a transition without a message.",
		       st->transition_frames);
	metrics_append(out, "bizsvr_session_cache_frames_total", "counter",
		       "SESSION_CACHE frames sent for membership changes.",
		       st->session_cache_frames);
	if (r->bz->super)
		admin_super_metrics(r->bz->super, out);
	metrics_append(out, "bizsvr_http_requests_total", "counter",
		       "Admin HTTP requests.", st->http_requests);
	evhttp_add_header(evhttp_request_get_output_headers(r->req),
			  "Content-Type", "text/plain; version=0.0.4");
	evhttp_send_reply(r->req, 200, "OK", out);
	evbuffer_free(out);
}

/* Reads an optional integer field. Returns 0, or -EINVAL after replying 400. */
static int admin_json_int(struct admin_req *r, json_t *body, const char *field,
			  long long min, long long max, long long *out)
{
	json_t *v = json_object_get(body, field);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max) {
		http_reply_error(r->req, 400, "invalid \"%s\": expected an integer from %lld to %lld",
				 field, min, max);
		return -EINVAL;
	}
	*out = json_integer_value(v);
	return 0;
}

/* Reads a string field, or def when absent. Returns NULL after replying 400
 * when the field is not a string or def is NULL and it is absent. */
static const char *admin_json_string(struct admin_req *r, json_t *body,
				     const char *field, const char *def)
{
	json_t *v = json_object_get(body, field);

	if (!v && def)
		return def;
	if (!json_is_string(v)) {
		http_reply_error(r->req, 400, "%s \"%s\": expected a string",
				 v ? "invalid" : "missing", field);
		return NULL;
	}
	return json_string_value(v);
}

/* Reads a user id field. Returns NULL after replying 400. */
static const char *admin_json_user(struct admin_req *r, json_t *body,
				   const char *field, const char *def)
{
	const char *user = admin_json_string(r, body, field, def);

	if (user && !bizsvr_valid_id(user)) {
		http_reply_error(r->req, 400, "invalid \"%s\": expected 1 to 128 bytes without control characters",
				 field);
		return NULL;
	}
	return user;
}

static void admin_tokens(struct admin_req *r)
{
	char token[TOKEN_MAX_LEN];
	long long ttl = r->bz->cfg->token_ttl;
	const char *user;
	int64_t expires;
	json_t *body;
	int err;

	if (!admin_allow(r, EVHTTP_REQ_POST, "POST"))
		return;
	body = http_read_json(r->req);
	if (!body)
		return;
	user = admin_json_user(r, body, "user_id", NULL);
	if (!user || admin_json_int(r, body, "ttl", 1, CONFIG_TOKEN_TTL_MAX,
				    &ttl) < 0)
		goto out;
	expires = (int64_t)time(NULL) + ttl;
	err = token_mint(r->bz->cfg->secret, user, expires, token,
			 sizeof(token));
	if (err < 0) {
		pr_error("admin: minting a token for %s failed: %s", user,
			 strerror(-err));
		http_reply_error(r->req, 500, "minting the token failed: %s",
				 strerror(-err));
		goto out;
	}
	http_reply_json(r->req, 200,
			json_pack("{s:s, s:s, s:I}", "token", token, "user_id",
				  user, "expires", (json_int_t)expires));
out:
	json_decref(body);
}

/* Reads a JSON array of user ids into a malloc'd array of pointers into the
 * JSON value. Returns the count, or -EINVAL after replying 400. */
static ssize_t admin_json_users(struct admin_req *r, json_t *body,
				const char *field, const char ***out)
{
	json_t *arr = json_object_get(body, field);
	const char **users;
	size_t i, n;

	if (!json_is_array(arr)) {
		http_reply_error(r->req, 400, "%s \"%s\": expected an array of user ids",
				 arr ? "invalid" : "missing", field);
		return -EINVAL;
	}
	n = json_array_size(arr);
	users = calloc(n ? n : 1, sizeof(*users));
	if (!users) {
		http_reply_error(r->req, 500, "out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		users[i] = json_string_value(json_array_get(arr, i));
		if (!bizsvr_valid_id(users[i])) {
			http_reply_error(r->req, 400, "invalid \"%s\"[%zu]: expected a user id of 1 to 128 bytes without control characters",
					 field, i);
			free(users);
			return -EINVAL;
		}
	}
	*out = users;
	return (ssize_t)n;
}

static void admin_create_direct(struct admin_req *r, const char **users,
				size_t n)
{
	struct session *s;
	int created;

	if (n != 2 || strcmp(users[0], users[1]) == 0) {
		http_reply_error(r->req, 400, "invalid \"members\": a direct session needs exactly two distinct users");
		return;
	}
	s = session_direct(r->bz->sessions, users[0], users[1],
			   (int64_t)bizsvr_now_ms(), &created);
	if (!s) {
		admin_store_error(r, "creating the direct session", -errno);
		return;
	}
	/* 200 for the session that already existed, 201 for a new one. */
	http_reply_json(r->req, created ? 201 : 200,
			json_pack("{s:I, s:b}", "session_id", (json_int_t)s->id,
				  "created", created));
}

static void admin_create_session(struct admin_req *r)
{
	const char *kind, *name, **users = NULL;
	struct session *s;
	json_t *body;
	ssize_t n;

	body = http_read_json(r->req);
	if (!body)
		return;
	kind = admin_json_string(r, body, "kind", "group");
	name = kind ? admin_json_string(r, body, "name", "") : NULL;
	if (!name)
		goto out;
	/* Names go into every member's login result. */
	if (!bizsvr_valid_text(name, ADMIN_MAX_NAME_LEN)) {
		http_reply_error(r->req, 400, "invalid \"name\": expected at most %d bytes of UTF-8 without control characters",
				 ADMIN_MAX_NAME_LEN);
		goto out;
	}
	n = admin_json_users(r, body, "members", &users);
	if (n < 0)
		goto out;
	if (strcmp(kind, "direct") == 0) {
		admin_create_direct(r, users, (size_t)n);
	} else if (strcmp(kind, "group") == 0) {
		s = session_create_group(r->bz->sessions, name, users,
					 (size_t)n, (int64_t)bizsvr_now_ms());
		if (s)
			http_reply_json(r->req, 201,
					json_pack("{s:I}", "session_id",
						  (json_int_t)s->id));
		else
			admin_store_error(r, "creating the group session",
					  -errno);
	} else {
		http_reply_error(r->req, 400, "invalid \"kind\" '%s': expected \"group\" or \"direct\"",
				 kind);
	}
	free(users);
out:
	json_decref(body);
}

static void admin_get_session(struct admin_req *r, struct session *s)
{
	json_t *members = admin_members_json(s);

	if (!members) {
		http_reply_error(r->req, 500, "out of memory");
		return;
	}
	http_reply_json(r->req, 200,
			json_pack("{s:I, s:s, s:s, s:I, s:o}", "session_id",
				  (json_int_t)s->id, "kind", kind_name(s->kind),
				  "name", s->name, "last_seq",
				  (json_int_t)s->last_seq, "members", members));
}

static void admin_list_members(struct admin_req *r, struct session *s)
{
	json_t *members = admin_members_json(s);

	if (!members) {
		http_reply_error(r->req, 500, "out of memory");
		return;
	}
	http_reply_json(r->req, 200,
			json_pack("{s:I, s:o}", "session_id", (json_int_t)s->id,
				  "members", members));
}

/* Replies 400 and returns 0 when the members of s may not change. */
static int admin_members_mutable(struct admin_req *r, const struct session *s)
{
	if (s->kind == STORE_KIND_GROUP)
		return 1;
	http_reply_error(r->req, 400, "session %" PRIu64 " is a %s session, whose members are fixed",
			 s->id, kind_name(s->kind));
	return 0;
}

static void admin_add_members(struct admin_req *r, struct session *s)
{
	const char **users = NULL;
	json_t *body;
	int added = 0, ret = 0;
	ssize_t n;

	if (!admin_members_mutable(r, s))
		return;
	body = http_read_json(r->req);
	if (!body)
		return;
	n = admin_json_users(r, body, "users", &users);
	if (n < 0)
		goto out;
	for (ssize_t i = 0; i < n && ret >= 0; i++) {
		ret = session_member_add(r->bz->sessions, s, users[i],
					 (int64_t)bizsvr_now_ms());
		added += ret > 0;
		/* Before the reply, so a caller that sees it can rely on
		 * the new member's devices being in the gateways' caches. */
		if (ret > 0)
			superwire_member_changed(r->bz->super, s, users[i], 1);
	}
	if (ret < 0)
		admin_store_error(r, "adding members", ret);
	else
		http_reply_json(r->req, 200, json_pack("{s:i}", "added", added));
	free(users);
out:
	json_decref(body);
}

static void admin_remove_member(struct admin_req *r, struct session *s,
				const char *user)
{
	int ret;

	if (!admin_members_mutable(r, s))
		return;
	ret = session_member_remove(r->bz->sessions, s, user);
	if (ret < 0) {
		admin_store_error(r, "removing the member", ret);
		return;
	}
	if (ret > 0)
		superwire_member_changed(r->bz->super, s, user, 0);
	http_reply_json(r->req, 200, json_pack("{s:i}", "removed", ret));
}

/*
 * Sends the 200 reply of a stored message, printed directly in the form
 * http_reply_json() gives. This reply is on the hot path of the message API,
 * where building and dumping a jansson object per message is wasted work.
 */
static void admin_reply_posted(struct evhttp_request *req,
			       uint64_t session_id,
			       const struct store_append_result *res)
{
	struct evbuffer *out = evbuffer_new();

	if (!out) {
		pr_error("admin: replying to the message post in session %llu failed: %s",
			 (unsigned long long)session_id, strerror(ENOMEM));
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_add_printf(out,
			    "{\"session_id\":%" PRIu64 ",\"seq\":%" PRIu64
			    ",\"time_ms\":%" PRIu64 ",\"duplicate\":%s}\n",
			    session_id, res->seq, res->time_ms,
			    res->duplicate ? "true" : "false");
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "Content-Type", "application/json");
	evhttp_send_reply(req, 200, NULL, out);
	evbuffer_free(out);
}

/* Replies to a message post once its batch committed or failed. */
static void admin_message_done(struct bizsvr *bz, void *arg,
			       uint64_t session_id, int err,
			       const struct store_append_result *res)
{
	struct evhttp_request *req = arg;

	if (err < 0) {
		pr_error("admin: storing the message in session %llu failed: %s",
			 (unsigned long long)session_id, strerror(-err));
		http_reply_error(req, 500, "storing the message failed: %s",
				 strerror(-err));
		return;
	}
	admin_reply_posted(req, session_id, res);
}

/*
 * Stores and pushes the "payload" of body in s from sender. The reply
 * follows the commit of the message's batch.
 */
static void admin_post_message(struct admin_req *r, struct session *s,
			       const char *sender, json_t *body)
{
	struct msg_origin from = { .user_id = sender, .device_id = "" };
	const char *payload, *cmid;
	size_t len;
	int err;

	payload = admin_json_string(r, body, "payload", NULL);
	cmid = payload ? admin_json_string(r, body, "client_msg_id", "") : NULL;
	if (!cmid)
		return;
	len = json_string_length(json_object_get(body, "payload"));
	if (len > r->bz->cfg->max_payload) {
		r->bz->stats.messages_rejected++;
		http_reply_error(r->req, 400, "invalid \"payload\": %zu bytes, over max_payload %zu",
				 len, r->bz->cfg->max_payload);
		return;
	}
	if (strlen(cmid) > 128) {
		http_reply_error(r->req, 400, "invalid \"client_msg_id\": longer than 128 bytes");
		return;
	}
	err = msg_post(r->bz, s, &from, cmid, (const uint8_t *)payload, len,
		       admin_message_done, r->req);
	if (err < 0)
		admin_store_error(r, "storing the message", err);
}

static void admin_session_message(struct admin_req *r, struct session *s)
{
	const char *sender;
	json_t *body;

	body = http_read_json(r->req);
	if (!body)
		return;
	/* The sender need not be a member because the server posts the message. */
	sender = admin_json_user(r, body, "sender", "system");
	if (sender)
		admin_post_message(r, s, sender, body);
	json_decref(body);
}

static void admin_user_message(struct admin_req *r, const char *user)
{
	struct session *s;
	json_t *body;
	int created;

	body = http_read_json(r->req);
	if (!body)
		return;
	s = session_notice(r->bz->sessions, user, (int64_t)bizsvr_now_ms(),
			   &created);
	if (s)
		admin_post_message(r, s, "system", body);
	else
		admin_store_error(r, "opening the notice session", -errno);
	json_decref(body);
}

static void admin_user_sessions(struct admin_req *r, const char *user)
{
	struct store_session *rows;
	json_t *arr;
	size_t n;
	int err;

	err = store_user_sessions(r->bz->store, user, &rows, &n);
	if (err < 0) {
		admin_store_error(r, "listing the sessions", err);
		return;
	}
	arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(arr,
			json_pack("{s:I, s:s, s:s, s:I}", "session_id",
				  (json_int_t)rows[i].id, "kind",
				  kind_name(rows[i].kind), "name", rows[i].name,
				  "last_seq", (json_int_t)rows[i].last_seq));
	store_sessions_free(rows, n);
	if (!arr) {
		http_reply_error(r->req, 500, "out of memory");
		return;
	}
	http_reply_json(r->req, 200,
			json_pack("{s:s, s:o}", "user_id", user, "sessions", arr));
}

static void admin_user_devices(struct admin_req *r, const char *user)
{
	struct presence_user *u = presence_user_find(r->bz->presence, user);
	struct presence_device *d;
	json_t *arr = json_array();

	if (!arr) {
		http_reply_error(r->req, 500, "out of memory");
		return;
	}
	if (u) {
		DL_FOREACH2(u->devices, d, user_next)
			json_array_append_new(arr,
				json_pack("{s:s, s:s, s:I, s:s}", "device_id",
					  d->device_id, "node_id",
					  d->node->node_id, "conn_id",
					  (json_int_t)d->conn_id, "platform",
					  d->platform));
	}
	http_reply_json(r->req, 200,
			json_pack("{s:s, s:o}", "user_id", user, "devices", arr));
}

/* The clocks for turning the super table's monotonic times into wall-clock
 * milliseconds, read once per request. */
struct admin_clock {
	int64_t mono_ms;
	uint64_t wall_ms;
};

static struct admin_clock admin_clock_now(void)
{
	struct admin_clock c = {
		.mono_ms = bizsvr_mono_ms(),
		.wall_ms = bizsvr_now_ms(),
	};

	return c;
}

/* Returns mono_ms as wall-clock milliseconds, or JSON null unless set. */
static json_t *admin_clock_json(const struct admin_clock *c, int64_t mono_ms,
				int set)
{
	if (!set)
		return json_null();
	return json_integer((json_int_t)c->wall_ms -
			    (json_int_t)(c->mono_ms - mono_ms));
}

static json_t *admin_super_summary(const struct super_session_info *info,
				   const struct admin_clock *c)
{
	return json_pack("{s:I, s:s, s:I, s:b, s:b, s:b, s:i, s:o, s:f}",
			 "session_id", (json_int_t)info->session_id,
			 "type", super_type_name(info->type),
			 "epoch", (json_int_t)info->epoch,
			 "pinned", info->pinned,
			 "converged", info->converged,
			 "tracked", info->tracked,
			 "pending_gateways", (int)info->pending_nodes,
			 "last_transition_ms",
			 admin_clock_json(c, info->last_transition_ms,
					  info->last_transition_ms >= 0),
			 "rate", (double)info->rate_milli / 1000.0);
}

/* Returns the per-gateway state of a session with tracked state, one
 * element per node index the daemon assigned, or an empty array. */
static json_t *admin_super_gateways(struct superwire *sw, uint64_t session_id,
				    const struct admin_clock *c)
{
	const struct super_table *table = superwire_table(sw);
	struct super_node_info ni;
	json_t *arr = json_array();

	for (unsigned int n = 0; arr && n < superwire_node_count(sw); n++) {
		if (super_node_info(table, session_id, n, &ni) < 0)
			break;
		json_array_append_new(arr,
			json_pack("{s:s, s:s, s:b, s:b, s:b, s:o, s:I, s:o}",
				  "node_id", superwire_node_id(sw, n),
				  "state", ni.state == SUPER_NODE_ACKED ?
				  "acked" : "pending",
				  "up", ni.up, "sent", ni.sent,
				  "may_cache", ni.may_cache,
				  "since_ms", admin_clock_json(c, ni.since_ms, 1),
				  "retries", (json_int_t)ni.retries,
				  "last_send_ms",
				  admin_clock_json(c, ni.last_send_ms,
						   ni.last_send_ms != 0)));
	}
	return arr;
}

static void admin_reply_super(struct admin_req *r, uint64_t session_id)
{
	struct superwire *sw = r->bz->super;
	struct admin_clock c = admin_clock_now();
	struct super_session_info info;
	json_t *body;

	if (super_session_info(superwire_table(sw), session_id, c.mono_ms,
			       &info) < 0) {
		/* No entry: the session is normal and every gateway agrees. */
		memset(&info, 0, sizeof(info));
		info.session_id = session_id;
		info.type = SUPER_TYPE_NORMAL;
		info.converged = 1;
		info.last_transition_ms = -1;
	}
	body = admin_super_summary(&info, &c);
	if (body)
		json_object_set_new(body, "gateways",
				    admin_super_gateways(sw, session_id, &c));
	if (!body) {
		http_reply_error(r->req, 500, "out of memory");
		return;
	}
	http_reply_json(r->req, 200, body);
}

/* Applies {"action": "upgrade" | "demote" | "auto"} to s. */
static void admin_super_action(struct admin_req *r, struct session *s)
{
	struct superwire *sw = r->bz->super;
	const char *action;
	json_t *body;
	int err = 0;

	body = http_read_json(r->req);
	if (!body)
		return;
	action = admin_json_string(r, body, "action", NULL);
	if (!action)
		goto out;
	if (strcmp(action, "upgrade") == 0) {
		err = superwire_force(sw, s, SUPER_TYPE_SUPER);
	} else if (strcmp(action, "demote") == 0) {
		err = superwire_force(sw, s, SUPER_TYPE_NORMAL);
	} else if (strcmp(action, "auto") == 0) {
		/* A session without an entry is already left to the rules. */
		err = superwire_unpin(sw, s->id);
		err = err == -ENOENT ? 0 : err;
	} else {
		http_reply_error(r->req, 400, "invalid \"action\" '%s': expected \"upgrade\", \"demote\" or \"auto\"",
				 action);
		goto out;
	}
	if (err < 0) {
		pr_error("admin: super action %s on session %" PRIu64 " failed: %s",
			 action, s->id, strerror(-err));
		http_reply_error(r->req, 500, "super action %s failed: %s",
				 action, strerror(-err));
		goto out;
	}
	admin_reply_super(r, s->id);
out:
	json_decref(body);
}

/* Serves /v1/sessions/{id}/super. */
static void admin_session_super(struct admin_req *r, struct session *s)
{
	if (!r->bz->super) {
		http_reply_error(r->req, 409, "super sessions are disabled: set [super] enabled = true");
		return;
	}
	if (r->method == EVHTTP_REQ_GET)
		admin_reply_super(r, s->id);
	else if (admin_allow(r, EVHTTP_REQ_POST, "GET, POST"))
		admin_super_action(r, s);
}

static int admin_super_list_one(void *arg, const struct super_session_info *info)
{
	struct admin_clock c = admin_clock_now();

	json_array_append_new(arg, admin_super_summary(info, &c));
	return 0;
}

/* Serves /v1/super: every session with an entry in the super table. */
static void admin_super_list(struct admin_req *r)
{
	json_t *arr;

	if (!admin_allow(r, EVHTTP_REQ_GET, "GET"))
		return;
	if (!r->bz->super) {
		http_reply_error(r->req, 409, "super sessions are disabled: set [super] enabled = true");
		return;
	}
	arr = json_array();
	if (!arr) {
		http_reply_error(r->req, 500, "out of memory");
		return;
	}
	super_foreach_session(superwire_table(r->bz->super), bizsvr_mono_ms(),
			      admin_super_list_one, arr);
	http_reply_json(r->req, 200, json_pack("{s:o}", "sessions", arr));
}

/* Serves /v1/sessions/{id}[/...]. */
static void admin_route_session(struct admin_req *r)
{
	struct session *s;

	if (r->n_seg > 5 || (r->n_seg >= 4 && !seg_is(r, 3, "members") &&
			     !seg_is(r, 3, "messages") &&
			     !seg_is(r, 3, "super")) ||
	    (r->n_seg == 5 && !seg_is(r, 3, "members"))) {
		http_reply_error(r->req, 404, "no such route");
		return;
	}
	s = admin_session(r, 2);
	if (!s)
		return;
	if (r->n_seg == 3) {
		if (admin_allow(r, EVHTTP_REQ_GET, "GET"))
			admin_get_session(r, s);
	} else if (r->n_seg == 5) {
		if (admin_allow(r, EVHTTP_REQ_DELETE, "DELETE") &&
		    admin_user(r, 4))
			admin_remove_member(r, s, r->seg[4]);
	} else if (seg_is(r, 3, "messages")) {
		if (admin_allow(r, EVHTTP_REQ_POST, "POST"))
			admin_session_message(r, s);
	} else if (seg_is(r, 3, "super")) {
		admin_session_super(r, s);
	} else if (r->method == EVHTTP_REQ_GET) {
		admin_list_members(r, s);
	} else if (admin_allow(r, EVHTTP_REQ_POST, "GET, POST")) {
		admin_add_members(r, s);
	}
}

/* Serves /v1/users/{user}/{messages,sessions,devices}. */
static void admin_route_user(struct admin_req *r)
{
	const char *user;

	if (r->n_seg != 4) {
		http_reply_error(r->req, 404, "no such route");
		return;
	}
	if (seg_is(r, 3, "messages")) {
		if (admin_allow(r, EVHTTP_REQ_POST, "POST") &&
		    (user = admin_user(r, 2)))
			admin_user_message(r, user);
	} else if (seg_is(r, 3, "sessions")) {
		if (admin_allow(r, EVHTTP_REQ_GET, "GET") &&
		    (user = admin_user(r, 2)))
			admin_user_sessions(r, user);
	} else if (seg_is(r, 3, "devices")) {
		if (admin_allow(r, EVHTTP_REQ_GET, "GET") &&
		    (user = admin_user(r, 2)))
			admin_user_devices(r, user);
	} else {
		http_reply_error(r->req, 404, "no such route");
	}
}

static void admin_route(struct admin_req *r)
{
	if (r->n_seg == 1 && seg_is(r, 0, "healthz"))
		admin_healthz(r);
	else if (r->n_seg == 1 && seg_is(r, 0, "metrics"))
		admin_metrics(r);
	else if (r->n_seg == 2 && seg_is(r, 0, "v1") && seg_is(r, 1, "tokens"))
		admin_tokens(r);
	else if (r->n_seg == 2 && seg_is(r, 0, "v1") &&
		 seg_is(r, 1, "sessions")) {
		if (admin_allow(r, EVHTTP_REQ_POST, "POST"))
			admin_create_session(r);
	} else if (r->n_seg >= 3 && seg_is(r, 0, "v1") &&
		   seg_is(r, 1, "sessions"))
		admin_route_session(r);
	else if (r->n_seg >= 3 && seg_is(r, 0, "v1") && seg_is(r, 1, "users"))
		admin_route_user(r);
	else if (r->n_seg == 2 && seg_is(r, 0, "v1") && seg_is(r, 1, "super"))
		admin_super_list(r);
	else
		http_reply_error(r->req, 404, "no such route");
}

/*
 * Splits the path into URL-decoded segments. Returns 0, or -EINVAL for a
 * path with too many segments, an empty segment or a NUL byte.
 */
static int admin_split_path(struct admin_req *r, const char *path)
{
	const char *p = path;

	while (*p == '/')
		p++;
	while (*p) {
		size_t len = strcspn(p, "/");
		size_t dec_len;
		char *raw;

		if (r->n_seg == ADMIN_MAX_SEGMENTS || len == 0)
			return -EINVAL;
		raw = strndup(p, len);
		if (!raw)
			return -ENOMEM;
		r->seg[r->n_seg] = evhttp_uridecode(raw, 0, &dec_len);
		free(raw);
		if (!r->seg[r->n_seg])
			return -ENOMEM;
		if (strlen(r->seg[r->n_seg++]) != dec_len)
			return -EINVAL;
		p += len;
		if (*p == '/')
			p++;
	}
	return 0;
}

/* Returns whether r posts to a session, the one request that may join the
 * open batch of messages. Any other request commits it first (batch.h). */
static int admin_joins_batch(const struct admin_req *r)
{
	return r->method == EVHTTP_REQ_POST && r->n_seg == 4 &&
	       seg_is(r, 0, "v1") && seg_is(r, 1, "sessions") &&
	       seg_is(r, 3, "messages");
}

static void admin_request_cb(struct evhttp_request *req, void *arg)
{
	struct admin *a = arg;
	struct admin_req r = {
		.bz = a->bz,
		.req = req,
		.method = evhttp_request_get_command(req),
	};
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	int err;

	a->bz->stats.http_requests++;
	err = admin_split_path(&r, path ? path : "/");
	if (!admin_joins_batch(&r))
		batch_commit(a->bz->batch);
	if (err == -ENOMEM)
		http_reply_error(req, 500, "out of memory");
	else if (err < 0)
		http_reply_error(req, 404, "no such route");
	else
		admin_route(&r);
	for (int i = 0; i < r.n_seg; i++)
		free(r.seg[i]);
}

struct admin *admin_new(struct bizsvr *bz)
{
	struct admin *a = calloc(1, sizeof(*a));
	int err;

	if (!a)
		return NULL;
	a->bz = bz;
	a->http = evhttp_new(bz->base);
	if (!a->http) {
		free(a);
		errno = ENOMEM;
		return NULL;
	}
	evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
	evhttp_set_gencb(a->http, admin_request_cb, a);
	err = http_bind(a->http, bz->cfg->http);
	if (err < 0) {
		evhttp_free(a->http);
		free(a);
		errno = -err;
		return NULL;
	}
	return a;
}

void admin_free(struct admin *a)
{
	if (!a)
		return;
	evhttp_free(a->http);
	free(a);
}

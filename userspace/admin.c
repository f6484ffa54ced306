// SPDX-License-Identifier: MIT
/* The admin HTTP endpoint; see admin.h. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <jansson.h>

#include "admin.h"
#include "httputil.h"
#include "guard.h"
#include "kmirror.h"
#include "log.h"
#include "super_gw.h"
#include "upstream.h"
#include "web.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static void admin_healthz(struct gateway *gw, struct evhttp_request *req)
{
	json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:I}",
				 "status", "ok",
				 "node_id", gw->cfg.node_id,
				 "boot_id", gw->boot_id,
				 "upstream",
				 upstream_is_up(gw->upstream) ? "up" : "down",
				 "connections", (json_int_t)gw->conns.count);

	http_reply_json(req, 200, body);
}

struct admin_counter {
	const char *name;
	const char *help;
	size_t offset;      /* of the uint64_t in struct gw_stats */
};

#define COUNTER(name, field, help) \
	{ name, help, offsetof(struct gw_stats, field) }

static const struct admin_counter admin_counters[] = {
	COUNTER("imgw_connections_accepted_total", connections_accepted,
		"Client connections accepted."),
	COUNTER("imgw_logins_total", logins, "Successful client logins."),
	COUNTER("imgw_login_failures_total", login_failures,
		"Client logins rejected or failed."),
	COUNTER("imgw_frames_received_total", frames_received,
		"Frames received from clients."),
	COUNTER("imgw_frames_sent_total", frames_sent,
		"Frames queued to clients."),
	COUNTER("imgw_protocol_errors_total", protocol_errors,
		"Client connections closed for a protocol error."),
	COUNTER("imgw_kicks_total", kicks, "KICK frames sent to clients."),
	COUNTER("imgw_slow_closes_total", slow_closes,
		"Client connections closed with an output buffer over out_cap."),
	COUNTER("imgw_socket_writes_total", socket_writes,
		"Writes of queued output to client sockets (writev calls or io_uring sendmsg entries)."),
	COUNTER("imgw_ring_submits_total", ring_submits,
		"io_uring_enter calls that sent the output of one loop pass."),
	COUNTER("imgw_deliver_frames_total", deliver_frames,
		"DELIVER frames received from the business daemon."),
	COUNTER("imgw_deliveries_total", deliveries,
		"Pushes queued to clients."),
	COUNTER("imgw_delivery_misses_total", delivery_misses,
		"DELIVER targets not connected to this gateway."),
	COUNTER("imgw_upstream_reconnects_total", upstream_reconnects,
		"Reconnect attempts to the business daemon."),
	COUNTER("imgw_upstream_unavailable_total", upstream_unavailable,
		"Client requests answered ERROR_UNAVAILABLE because the business daemon link was down."),
	COUNTER("imgw_broadcasts_total", broadcasts,
		"DELIVER frames of type SUPER received (pushed to a session's cache)."),
	COUNTER("imgw_cache_deliveries_total", cache_deliveries,
		"Pushes queued to cached connections by SUPER frames."),
	COUNTER("imgw_super_transitions_total", super_transitions,
		"Super-session upgrades and demotes applied with a new epoch (re-sent ones not counted)."),
	COUNTER("imgw_super_acks_sent_total", super_acks_sent,
		"SUPER_ACK frames sent to the business daemon."),
	COUNTER("imgw_super_acks_dropped_total", super_acks_dropped,
		"SUPER_ACK frames not sent because the drop_super_acks fault was on."),
	COUNTER("imgw_super_broadcast_without_cache_total",
		super_broadcast_without_cache,
		"SUPER frames for a session without a cache here (not pushed)."),
	COUNTER("imgw_session_cache_updates_total", session_cache_updates,
		"SESSION_CACHE frames received from the business daemon."),
};

static void admin_metrics(struct gateway *gw, struct evhttp_request *req)
{
	const char *stats = (const char *)&gw->stats;
	struct evbuffer *out = evbuffer_new();
	uint64_t value;

	if (!out) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	metrics_append(out, "imgw_connections", "gauge",
		       "Client connections open, closing ones included.",
		       gw->conns.count);
	metrics_append(out, "imgw_upstream_up", "gauge",
		       "1 when the business daemon accepted REGISTER on the current link, else 0.",
		       upstream_is_up(gw->upstream));
	metrics_append(out, "imgw_super_sessions", "gauge",
		       "Super sessions with a cache on this gateway.",
		       gw->caches.n_sessions);
	metrics_append(out, "imgw_super_cached_connections", "gauge",
		       "Connections in super-session caches, counted once per session.",
		       gw->caches.n_members);
	metrics_append(out, "imgw_fault_drop_super_acks", "gauge",
		       "1 while the drop_super_acks fault is on, else 0.",
		       gw->faults.drop_super_acks);
	for (size_t i = 0; i < ARRAY_SIZE(admin_counters); i++) {
		memcpy(&value, stats + admin_counters[i].offset, sizeof(value));
		metrics_append(out, admin_counters[i].name, "counter",
			       admin_counters[i].help, value);
	}
	histogram_append(out, "imgw_flush_duration_seconds",
			 "Time from the first frame queued for a flush to the end of that flush, which hands the output of all connections to the kernel: the gateway's share of a broadcast's last-member latency.",
			 &gw->flush_duration);
	kmirror_metrics(gw, out);
	guard_metrics(gw, out);
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "Content-Type", "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

static json_t *admin_conn_json(const struct conn *c)
{
	size_t queued = evbuffer_get_length(bufferevent_get_output(c->bev));

	return json_pack("{s:I, s:s?, s:s?, s:s?, s:s, s:s, s:I}",
			 "id", (json_int_t)c->id,
			 "user", c->user_id,
			 "device", c->device_id,
			 "platform", c->platform,
			 "peer", c->peer,
			 "state", conn_state_name(c->state),
			 "output_bytes", (json_int_t)queued);
}

static void admin_connections(struct gateway *gw, struct evhttp_request *req)
{
	json_t *list = json_array();
	struct conn *c, *tmp;

	if (!list) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	conn_registry_for_each(&gw->conns, c, tmp)
		json_array_append_new(list, admin_conn_json(c));
	http_reply_json(req, 200, list);
}

static json_t *admin_session_json(const struct sess_cache_entry *e)
{
	json_t *conns = json_array();

	for (uint32_t i = 0; i < e->n_members && conns; i++)
		json_array_append_new(conns,
				      json_integer((json_int_t)e->members[i].conn->id));
	return json_pack("{s:I, s:I, s:I, s:o*}",
			 "session_id", (json_int_t)e->session_id,
			 "epoch", (json_int_t)e->epoch,
			 "cached", (json_int_t)e->n_members,
			 "connections", conns);
}

/* GET /v1/sessions: the super-session caches held here. */
static void admin_sessions(struct gateway *gw, struct evhttp_request *req)
{
	json_t *list = json_array();
	struct sess_cache_entry *e, *tmp;

	if (!list) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	sess_cache_for_each(&gw->caches, e, tmp)
		json_array_append_new(list, admin_session_json(e));
	http_reply_json(req, 200, list);
}

static void admin_faults_reply(struct gateway *gw, struct evhttp_request *req)
{
	http_reply_json(req, 200, json_pack("{s:b}", "drop_super_acks",
					    gw->faults.drop_super_acks));
}

/* POST /v1/faults {"drop_super_acks": true|false}. */
static void admin_faults_set(struct gateway *gw, struct evhttp_request *req)
{
	json_t *body = http_read_json(req);
	json_t *value;

	if (!body)
		return;
	value = json_object_get(body, "drop_super_acks");
	if (!json_is_boolean(value) || json_object_size(body) != 1) {
		http_reply_error(req, 400,
				 "expected {\"drop_super_acks\": true|false}");
		json_decref(body);
		return;
	}
	super_gw_set_drop_acks(gw, json_is_true(value));
	json_decref(body);
	admin_faults_reply(gw, req);
}

static void admin_get(struct gateway *gw, struct evhttp_request *req,
		      const char *path)
{
	if (strcmp(path, "/healthz") == 0)
		admin_healthz(gw, req);
	else if (strcmp(path, "/metrics") == 0)
		admin_metrics(gw, req);
	else if (strcmp(path, "/v1/connections") == 0)
		admin_connections(gw, req);
	else if (strcmp(path, "/v1/sessions") == 0)
		admin_sessions(gw, req);
	else if (strcmp(path, "/v1/faults") == 0)
		admin_faults_reply(gw, req);
	else if (strcmp(path, "/v1/kpath") == 0)
		http_reply_json(req, 200, kmirror_state_json(gw));
	else if (web_is_path(path))
		web_serve(gw, req, path);
	else
		http_reply_error(req, 404, "not found: %s", path);
}

static void admin_request_cb(struct evhttp_request *req, void *arg)
{
	struct gateway *gw = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	if (!path)
		path = "/";
	if (cmd == EVHTTP_REQ_GET) {
		admin_get(gw, req, path);
	} else if (strcmp(path, "/v1/faults") == 0) {
		if (cmd == EVHTTP_REQ_POST)
			admin_faults_set(gw, req);
		else
			http_reply_error(req, 405,
					 "method not allowed on %s: use GET or POST",
					 path);
	} else {
		http_reply_error(req, 405, "method not allowed on %s: use GET",
				 path);
	}
}

int admin_start(struct gateway *gw)
{
	int err;

	err = web_check_dir(gw);
	if (err)
		return err;
	gw->http = evhttp_new(gw->base);
	if (!gw->http)
		return -ENOMEM;
	evhttp_set_gencb(gw->http, admin_request_cb, gw);
	err = http_bind(gw->http, gw->cfg.http);
	if (err) {
		pr_error("admin HTTP listen on %s failed: %s", gw->cfg.http,
			 strerror(-err));
		admin_stop(gw);
		return err;
	}
	return 0;
}

void admin_stop(struct gateway *gw)
{
	if (gw->http) {
		evhttp_free(gw->http);
		gw->http = NULL;
	}
}

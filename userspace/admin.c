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
#include "log.h"
#include "upstream.h"

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
	for (size_t i = 0; i < ARRAY_SIZE(admin_counters); i++) {
		memcpy(&value, stats + admin_counters[i].offset, sizeof(value));
		metrics_append(out, admin_counters[i].name, "counter",
			       admin_counters[i].help, value);
	}
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

static void admin_request_cb(struct evhttp_request *req, void *arg)
{
	struct gateway *gw = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));

	if (!path)
		path = "/";
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		http_reply_error(req, 405, "method not allowed on %s: use GET",
				 path);
		return;
	}
	if (strcmp(path, "/healthz") == 0)
		admin_healthz(gw, req);
	else if (strcmp(path, "/metrics") == 0)
		admin_metrics(gw, req);
	else if (strcmp(path, "/v1/connections") == 0)
		admin_connections(gw, req);
	else
		http_reply_error(req, 404, "not found: %s", path);
}

int admin_start(struct gateway *gw)
{
	int err;

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

// SPDX-License-Identifier: MIT
/* Admin HTTP API client over libevent's evhttp; see admin_client.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "admin_client.h"
#include "client.h"

struct admin_client {
	struct event_base *base;
	struct evhttp_connection *conn;
	char host[256];
	uint16_t port;
	char prefix[256];       /* path prefix from the URL, without a trailing '/' */
	char addr[300];         /* "host:port", for messages */
	int timeout_sec;
};

/* State of one request while the loop runs. */
struct admin_call_state {
	struct admin_reply *reply;
	int done;
	int err;
};

static int admin_parse_url(struct admin_client *ac, const char *url)
{
	struct evhttp_uri *uri = evhttp_uri_parse(url);
	const char *scheme, *host, *path;
	int port, err = -EINVAL;

	if (!uri)
		return -EINVAL;
	scheme = evhttp_uri_get_scheme(uri);
	host = evhttp_uri_get_host(uri);
	path = evhttp_uri_get_path(uri);
	port = evhttp_uri_get_port(uri);
	if (!scheme || strcmp(scheme, "http") != 0 || !host || !host[0])
		goto out;
	if (snprintf(ac->host, sizeof(ac->host), "%s", host) >=
	    (int)sizeof(ac->host))
		goto out;
	ac->port = port > 0 ? (uint16_t)port : 80;
	snprintf(ac->prefix, sizeof(ac->prefix), "%s", path ? path : "");
	while (ac->prefix[0] && ac->prefix[strlen(ac->prefix) - 1] == '/')
		ac->prefix[strlen(ac->prefix) - 1] = '\0';
	snprintf(ac->addr, sizeof(ac->addr), "%s:%u", ac->host, ac->port);
	err = 0;
out:
	evhttp_uri_free(uri);
	return err;
}

struct admin_client *admin_client_new(struct event_base *base,
				      const char *url, int timeout_sec)
{
	struct admin_client *ac = calloc(1, sizeof(*ac));
	int err;

	if (!ac)
		return NULL;
	err = admin_parse_url(ac, url);
	if (err < 0)
		goto err_free;
	ac->base = base;
	ac->timeout_sec = timeout_sec > 0 ? timeout_sec : 5;
	ac->conn = evhttp_connection_base_new(base, NULL, ac->host, ac->port);
	if (!ac->conn) {
		err = -ENOMEM;
		goto err_free;
	}
	evhttp_connection_set_timeout(ac->conn, ac->timeout_sec);
	evhttp_connection_set_retries(ac->conn, 0);
	return ac;

err_free:
	free(ac);
	errno = -err;
	return NULL;
}

void admin_client_free(struct admin_client *ac)
{
	if (!ac)
		return;
	evhttp_connection_free(ac->conn);
	free(ac);
}

const char *admin_client_addr(const struct admin_client *ac)
{
	return ac->addr;
}

static int admin_request_errno(enum evhttp_request_error error)
{
	switch (error) {
	case EVREQ_HTTP_TIMEOUT:
		return -ETIMEDOUT;
	case EVREQ_HTTP_EOF:
		return -ECONNRESET;
	case EVREQ_HTTP_INVALID_HEADER:
		return -EPROTO;
	case EVREQ_HTTP_DATA_TOO_LONG:
		return -EMSGSIZE;
	case EVREQ_HTTP_REQUEST_CANCEL:
		return -ECANCELED;
	default:
		return -EIO;
	}
}

static void admin_error_cb(enum evhttp_request_error error, void *arg)
{
	struct admin_call_state *st = arg;

	st->err = admin_request_errno(error);
}

/* Copies the reply body and parses it as JSON when it is JSON. */
static int admin_read_reply(struct evhttp_request *req,
			    struct admin_reply *reply)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);

	reply->status = evhttp_request_get_response_code(req);
	reply->body = malloc(len + 1);
	if (!reply->body)
		return -ENOMEM;
	evbuffer_copyout(in, reply->body, len);
	reply->body[len] = '\0';
	reply->body_len = len;
	reply->json = json_loadb(reply->body, len, JSON_DECODE_ANY, NULL);
	return 0;
}

/*
 * evhttp reports a failed connect without its socket error, so connect once
 * more to learn it. Returns the connect errno, or -ECONNRESET when the
 * server accepts connections but closed this one without a reply.
 */
static int admin_probe_connect(struct admin_client *ac)
{
	struct client *c = client_connect(ac->host, ac->port,
					  ac->timeout_sec * 1000);

	if (!c)
		return -errno;
	client_close(c);
	return -ECONNRESET;
}

static void admin_done_cb(struct evhttp_request *req, void *arg)
{
	struct admin_call_state *st = arg;

	st->done = 1;
	if (!req || evhttp_request_get_response_code(req) == 0) {
		if (!st->err)
			st->err = -ENOTCONN;
		return;
	}
	st->err = admin_read_reply(req, st->reply);
}

static int admin_add_body(struct evhttp_request *req, json_t *body)
{
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
	char *text;
	int err = 0;

	if (!body)
		return 0;
	text = json_dumps(body, JSON_COMPACT);
	if (!text)
		return -ENOMEM;
	evhttp_add_header(headers, "Content-Type", "application/json");
	if (evbuffer_add(evhttp_request_get_output_buffer(req), text,
			 strlen(text)) < 0)
		err = -ENOMEM;
	free(text);
	return err;
}

int admin_call(struct admin_client *ac, enum evhttp_cmd_type method,
	       const char *path, json_t *body, struct admin_reply *reply)
{
	struct admin_call_state st = { .reply = reply };
	struct evhttp_request *req;
	char uri[1024];
	int err;

	memset(reply, 0, sizeof(*reply));
	if (snprintf(uri, sizeof(uri), "%s%s", ac->prefix, path) >=
	    (int)sizeof(uri))
		return -ENAMETOOLONG;
	req = evhttp_request_new(admin_done_cb, &st);
	if (!req)
		return -ENOMEM;
	evhttp_request_set_error_cb(req, admin_error_cb);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host",
			  ac->host);
	err = admin_add_body(req, body);
	if (err < 0) {
		evhttp_request_free(req);
		return err;
	}
	/* evhttp_make_request() frees req itself when it fails. */
	if (evhttp_make_request(ac->conn, req, method, uri) < 0)
		return -EIO;
	while (!st.done) {
		if (event_base_loop(ac->base, EVLOOP_ONCE) < 0)
			return -EIO;
	}
	if (st.err == -ENOTCONN)
		st.err = admin_probe_connect(ac);
	if (st.err < 0)
		admin_reply_free(reply);
	return st.err;
}

void admin_reply_free(struct admin_reply *reply)
{
	json_decref(reply->json);
	free(reply->body);
	memset(reply, 0, sizeof(*reply));
}

const char *admin_reply_error(const struct admin_reply *reply)
{
	json_t *error = json_object_get(reply->json, "error");

	if (json_is_string(error))
		return json_string_value(error);
	return reply->body ? reply->body : "";
}

int admin_mint_token(struct admin_client *ac, const char *user_id, int ttl,
		     char *out, size_t out_len, int *status)
{
	struct admin_reply reply;
	const char *token;
	json_t *body;
	int err;

	body = json_pack("{s:s, s:i}", "user_id", user_id, "ttl", ttl);
	if (!body)
		return -ENOMEM;
	err = admin_call(ac, EVHTTP_REQ_POST, "/v1/tokens", body, &reply);
	json_decref(body);
	if (err < 0)
		return err;
	if (status)
		*status = reply.status;
	token = json_string_value(json_object_get(reply.json, "token"));
	if (reply.status / 100 != 2 || !token)
		err = -EPROTO;
	else if (snprintf(out, out_len, "%s", token) >= (int)out_len)
		err = -ENOSPC;
	admin_reply_free(&reply);
	return err;
}

// SPDX-License-Identifier: MIT
/* Helpers for the admin HTTP servers; see httputil.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/keyvalq_struct.h>

#include "httputil.h"
#include "log.h"

void http_reply_json(struct evhttp_request *req, int code, json_t *body)
{
	struct evbuffer *out = evbuffer_new();
	char *text = json_dumps(body, JSON_COMPACT);

	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "Content-Type", "application/json");
	if (text) {
		evbuffer_add(out, text, strlen(text));
		evbuffer_add(out, "\n", 1);
	}
	evhttp_send_reply(req, code, NULL, out);
	evbuffer_free(out);
	free(text);
	json_decref(body);
}

void http_reply_error(struct evhttp_request *req, int code, const char *fmt,
		      ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	http_reply_json(req, code, json_pack("{s:s}", "error", text));
}

json_t *http_read_json(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	json_error_t error;
	json_t *body;

	if (len == 0) {
		http_reply_error(req, 400, "missing JSON body");
		return NULL;
	}
	body = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, &error);
	if (!body) {
		http_reply_error(req, 400, "invalid JSON at line %d: %s",
				 error.line, error.text);
		return NULL;
	}
	if (!json_is_object(body)) {
		json_decref(body);
		http_reply_error(req, 400, "JSON body must be an object");
		return NULL;
	}
	return body;
}

void metrics_append(struct evbuffer *out, const char *name, const char *type,
		    const char *help, uint64_t value)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name,
			    help, name, type, name,
			    (unsigned long long)value);
}

int parse_host_port(const char *text, char *host, size_t cap, uint16_t *port)
{
	const char *colon = strrchr(text, ':');
	char *end;
	unsigned long p;

	if (!colon || (size_t)(colon - text) >= cap)
		return -EINVAL;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p > 65535)
		return -EINVAL;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	*port = (uint16_t)p;
	return 0;
}

int http_bind(struct evhttp *http, const char *host_port)
{
	char host[256];
	uint16_t port;

	if (parse_host_port(host_port, host, sizeof(host), &port) < 0)
		return -EINVAL;
	if (evhttp_bind_socket(http, host, port) < 0)
		return errno ? -errno : -EADDRINUSE;
	return 0;
}

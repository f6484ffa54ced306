/* SPDX-License-Identifier: MIT */
/* Helpers for the admin HTTP servers: JSON bodies, errors, Prometheus text. */
#ifndef IMGW_HTTPUTIL_H
#define IMGW_HTTPUTIL_H

#include <stdint.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

/* Sends body as JSON with status code and drops the reference to body. */
void http_reply_json(struct evhttp_request *req, int code, json_t *body);

/* Sends {"error": "<text>"} with status code. */
void http_reply_error(struct evhttp_request *req, int code, const char *fmt,
		      ...) __attribute__((format(printf, 3, 4)));

/* Parses the request body as a JSON object. Returns NULL after replying 400
 * when the body is missing or not a JSON object. */
json_t *http_read_json(struct evhttp_request *req);

/* Appends one Prometheus metric with its HELP and TYPE lines. */
void metrics_append(struct evbuffer *out, const char *name, const char *type,
		    const char *help, uint64_t value);

/* Binds an evhttp server to "host:port". Returns 0 or a negative errno. */
int http_bind(struct evhttp *http, const char *host_port);

/* Splits "host:port" into host (cap bytes) and port. Returns 0 or -EINVAL. */
int parse_host_port(const char *text, char *host, size_t cap, uint16_t *port);

#endif

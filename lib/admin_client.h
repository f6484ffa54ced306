/* SPDX-License-Identifier: MIT */
/*
 * A client for the business daemon's admin HTTP API, built on libevent's
 * evhttp client. admin_call() runs the caller's event base until the reply
 * arrives, so callers must not be inside that base's loop when they call it.
 */
#ifndef IMGW_ADMIN_CLIENT_H
#define IMGW_ADMIN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#define ADMIN_DEFAULT_URL "http://127.0.0.1:7081"

struct admin_client;

/* Reply of one admin call. json is NULL when the body is not JSON. */
struct admin_reply {
	int status;             /* HTTP status code */
	json_t *json;
	char *body;             /* the raw body, NUL-terminated */
	size_t body_len;
};

/*
 * Creates a client for url ("http://host:port", optional trailing path
 * prefix) on base, with a per-request timeout in seconds. Returns NULL with
 * errno set (EINVAL for a URL it cannot parse).
 */
struct admin_client *admin_client_new(struct event_base *base,
				      const char *url, int timeout_sec);
void admin_client_free(struct admin_client *ac);

/* Returns "host:port" of the server, for error messages. */
const char *admin_client_addr(const struct admin_client *ac);

/*
 * Sends method to path (which starts with '/') with body as the JSON
 * request body (NULL for none) and waits for the reply. Returns 0 with
 * *reply filled for any HTTP status, or a negative errno when no reply came
 * (-ECONNREFUSED, -ETIMEDOUT, ...). Free the reply with admin_reply_free().
 */
int admin_call(struct admin_client *ac, enum evhttp_cmd_type method,
	       const char *path, json_t *body, struct admin_reply *reply);
void admin_reply_free(struct admin_reply *reply);

/* Returns the "error" string of a failed reply, or its raw body. */
const char *admin_reply_error(const struct admin_reply *reply);

/*
 * Mints a token for user_id with ttl seconds through POST /v1/tokens into
 * out. Returns 0, -EPROTO for a non-2xx reply or one without a token, -ENOSPC
 * when out is too small, or as admin_call(). *status gets the HTTP status
 * when status is not NULL.
 */
int admin_mint_token(struct admin_client *ac, const char *user_id, int ttl,
		     char *out, size_t out_len, int *status);

#endif

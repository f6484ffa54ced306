// SPDX-License-Identifier: MIT
/*
 * A tiny blocking HTTP/1.1 client for the daemons' admin APIs, and the bizsvr
 * admin calls the integration tests use (sessions, members, server pushes,
 * tokens). One request per connection, "Connection: close".
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "token.h"

static int send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads until the peer closes, at most HARNESS_WAIT_MS in all. */
static int read_all(int fd, char **out, size_t *out_len)
{
	uint64_t deadline = client_now_ms(1) + HARNESS_WAIT_MS;
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		uint64_t now = client_now_ms(1);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) == 0) {
			free(buf);
			return -ETIMEDOUT;
		}
		if (len + 1024 > cap) {
			char *bigger = realloc(buf, cap * 2);

			if (!bigger) {
				free(buf);
				return -ENOMEM;
			}
			buf = bigger;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;

			free(buf);
			return err;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;
}

/* Decodes a chunked body in place. Returns its length or -EPROTO. */
static long dechunk(char *body)
{
	char *in = body, *out = body, *end;

	for (;;) {
		unsigned long size = strtoul(in, &end, 16);

		if (end == in)
			return -EPROTO;
		in = strstr(end, "\r\n");
		if (!in)
			return -EPROTO;
		in += 2;
		if (size == 0)
			break;
		if (strlen(in) < size)
			return -EPROTO;
		memmove(out, in, size);
		out += size;
		in += size + 2;
	}
	*out = '\0';
	return out - body;
}

static int parse_response(char *raw, char **body)
{
	char *head_end = strstr(raw, "\r\n\r\n");
	char *payload;
	int code;

	if (!head_end || sscanf(raw, "HTTP/1.%*d %d", &code) != 1)
		return -EPROTO;
	*head_end = '\0';
	payload = head_end + 4;
	if (strcasestr(raw, "transfer-encoding: chunked") &&
	    dechunk(payload) < 0)
		return -EPROTO;
	*body = strdup(payload);
	return *body ? code : -ENOMEM;
}

int http_call(uint16_t port, const char *method, const char *path,
	      const char *request_body, char **body)
{
	size_t body_len = request_body ? strlen(request_body) : 0;
	size_t raw_len;
	char *request, *raw = NULL;
	struct client *c;
	int err, len;

	*body = NULL;
	c = client_connect("127.0.0.1", port, HARNESS_WAIT_MS);
	if (!c)
		return -errno;
	len = asprintf(&request,
		       "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		       method, path, port, body_len,
		       request_body ? request_body : "");
	if (len < 0) {
		client_close(c);
		return -ENOMEM;
	}
	err = send_all(c->fd, request, (size_t)len);
	free(request);
	if (err == 0)
		err = read_all(c->fd, &raw, &raw_len);
	client_close(c);
	if (err < 0)
		return err;
	err = parse_response(raw, body);
	free(raw);
	return err;
}

json_t *harness_healthz(struct daemon_proc *d)
{
	char *body;
	json_t *j;
	int code = http_call(d->http_port, "GET", "/healthz", NULL, &body);

	H_CHECK(code == 200, "GET /healthz on %s: status %d, expected 200",
		d->name, code);
	j = json_loads(body, 0, NULL);
	H_CHECK(j != NULL, "GET /healthz on %s: body is not JSON: %s",
		d->name, body);
	free(body);
	return j;
}

double harness_metric(struct daemon_proc *d, const char *name)
{
	size_t name_len = strlen(name);
	char *body, *line;
	double value = -1;
	int code = http_call(d->http_port, "GET", "/metrics", NULL, &body);

	H_CHECK(code == 200, "GET /metrics on %s: status %d, expected 200",
		d->name, code);
	for (line = body; line && *line; line = strchr(line, '\n')) {
		if (*line == '\n')
			line++;
		if (strncmp(line, name, name_len) == 0 &&
		    (line[name_len] == ' ' || line[name_len] == '{')) {
			value = strtod(strchr(line, ' ') + 1, NULL);
			break;
		}
	}
	free(body);
	return value;
}

/* Accepts any 2xx status where the contract names none. */
#define STATUS_2XX 0

/* Sends a JSON request to bizsvr's admin API and takes the reference to
 * request. Returns the parsed reply, failing unless the status is want. */
static json_t *admin_call(struct harness *h, const char *method,
			  const char *path, json_t *request, int want)
{
	char *text = request ? json_dumps(request, JSON_COMPACT) : NULL;
	char *body;
	json_t *reply;
	int code;

	json_decref(request);
	code = http_call(h->biz.http_port, method, path, text, &body);
	H_CHECK(want == STATUS_2XX ? code / 100 == 2 : code == want,
		"%s %s with %s: status %d, expected %d (0: any 2xx); body: %s",
		method, path, text ? text : "no body", code, want,
		body ? body : "(none)");
	free(text);
	reply = json_loads(body, 0, NULL);
	H_CHECK(reply != NULL, "%s %s: reply is not JSON: %s", method, path,
		body);
	free(body);
	return reply;
}

static json_t *string_array(const char *const *items, size_t count)
{
	json_t *array = json_array();

	for (size_t i = 0; i < count; i++)
		json_array_append_new(array, json_string(items[i]));
	return array;
}

uint64_t admin_session_create(struct harness *h, const char *kind,
			      const char *name, const char *const *members,
			      size_t count)
{
	json_t *reply, *request = json_pack("{s:s, s:s, s:o}", "kind", kind,
					    "name", name, "members",
					    string_array(members, count));
	json_int_t id;

	reply = admin_call(h, "POST", "/v1/sessions", request, 201);
	id = json_integer_value(json_object_get(reply, "session_id"));
	json_decref(reply);
	H_CHECK(id > 0, "POST /v1/sessions: session_id %lld, expected > 0",
		(long long)id);
	return (uint64_t)id;
}

void admin_members_add(struct harness *h, uint64_t session_id,
		       const char *const *users, size_t count)
{
	char path[64];
	json_t *request = json_pack("{s:o}", "users",
				    string_array(users, count));

	snprintf(path, sizeof(path), "/v1/sessions/%llu/members",
		 (unsigned long long)session_id);
	json_decref(admin_call(h, "POST", path, request, STATUS_2XX));
}

void admin_member_remove(struct harness *h, uint64_t session_id,
			 const char *user)
{
	char path[256];

	snprintf(path, sizeof(path), "/v1/sessions/%llu/members/%s",
		 (unsigned long long)session_id, user);
	json_decref(admin_call(h, "DELETE", path, NULL, STATUS_2XX));
}

uint64_t admin_push(struct harness *h, uint64_t session_id,
		    const char *sender, const char *payload)
{
	char path[64];
	json_t *reply, *request = json_pack("{s:s, s:s}", "sender", sender,
					    "payload", payload);
	json_int_t seq;

	snprintf(path, sizeof(path), "/v1/sessions/%llu/messages",
		 (unsigned long long)session_id);
	reply = admin_call(h, "POST", path, request, STATUS_2XX);
	seq = json_integer_value(json_object_get(reply, "seq"));
	json_decref(reply);
	H_CHECK(seq > 0, "POST %s: seq %lld, expected > 0", path,
		(long long)seq);
	return (uint64_t)seq;
}

void admin_token(struct harness *h, const char *user, int ttl, char *out)
{
	json_t *reply, *request = json_pack("{s:s, s:i}", "user_id", user,
					    "ttl", ttl);
	const char *token;

	reply = admin_call(h, "POST", "/v1/tokens", request, STATUS_2XX);
	token = json_string_value(json_object_get(reply, "token"));
	H_CHECK(token != NULL, "POST /v1/tokens: no token in the reply");
	H_CHECK(strlen(token) <= TOKEN_MAX_LEN,
		"POST /v1/tokens: token of %zu bytes, expected at most %d",
		strlen(token), TOKEN_MAX_LEN);
	strcpy(out, token);
	json_decref(reply);
}

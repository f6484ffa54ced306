// SPDX-License-Identifier: MIT
/* Blocking imgw client; see client.h. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "clock.h"
#include "wire.h"

uint64_t client_now_ms(int monotonic)
{
	return clock_ns(monotonic ? CLOCK_MONOTONIC : CLOCK_REALTIME) / 1000000;
}

static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do {
		n = poll(&p, 1, timeout_ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

static int connect_addr(const struct addrinfo *ai, int timeout_ms)
{
	int fd, err, one = 1;
	socklen_t len = sizeof(err);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 &&
	    errno != EINPROGRESS) {
		err = -errno;
		goto err_close;
	}
	err = wait_fd(fd, POLLOUT, timeout_ms);
	if (err < 0)
		goto err_close;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err) {
		err = -err;
		goto err_close;
	}
	fcntl(fd, F_SETFL, 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;

err_close:
	close(fd);
	return err;
}

struct client *client_connect(const char *host, uint16_t port, int timeout_ms)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	struct client *c;
	char service[8];
	int fd, rc;

	snprintf(service, sizeof(service), "%u", port);
	rc = getaddrinfo(host, service, &hints, &res);
	if (rc != 0) {
		errno = EHOSTUNREACH;
		return NULL;
	}
	fd = connect_addr(res, timeout_ms);
	freeaddrinfo(res);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	c->fd = fd;
	c->next_request_id = 1;
	return c;
}

void client_close(struct client *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c->buf);
	free(c);
}

int client_send_bytes(struct client *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int64_t client_send(struct client *c, unsigned int op,
		    const ProtobufCMessage *msg)
{
	uint32_t rid = c->next_request_id++;
	size_t len;
	uint8_t *frame = wire_pack_frame(op, rid, msg, &len);
	int err;

	if (!frame)
		return -ENOMEM;
	err = client_send_bytes(c, frame, len);
	free(frame);
	return err < 0 ? err : (int64_t)rid;
}

/* Reads more bytes into c->buf, waiting until deadline (monotonic ms). */
static int fill(struct client *c, uint64_t deadline)
{
	uint64_t now = client_now_ms(1);
	ssize_t n;
	int err;

	if (c->cap - c->len < 65536) {
		size_t cap = c->cap ? c->cap * 2 : 131072;
		uint8_t *buf = realloc(c->buf, cap);

		if (!buf)
			return -ENOMEM;
		c->buf = buf;
		c->cap = cap;
	}
	err = wait_fd(c->fd, POLLIN, now >= deadline ? 0 : (int)(deadline - now));
	if (err < 0)
		return err;
	n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	c->len += (size_t)n;
	return 0;
}

int client_recv(struct client *c, int timeout_ms, struct client_frame *f)
{
	uint64_t deadline = client_now_ms(1) + (uint64_t)timeout_ms;
	size_t total;
	int status, err;

	memset(f, 0, sizeof(*f));
	for (;;) {
		status = frame_header_parse(c->buf, c->len, FRAME_HARD_MAX_BODY,
					    &f->hdr);
		if (status < 0)
			return -EPROTO;
		total = FRAME_HEADER_LEN + (size_t)f->hdr.body_len;
		if (status == FRAME_OK && c->len >= total)
			break;
		err = fill(c, deadline);
		if (err < 0)
			return err;
	}
	f->body = malloc(f->hdr.body_len ? f->hdr.body_len : 1);
	if (!f->body)
		return -ENOMEM;
	memcpy(f->body, c->buf + FRAME_HEADER_LEN, f->hdr.body_len);
	memmove(c->buf, c->buf + total, c->len - total);
	c->len -= total;
	return 0;
}

void client_frame_free(struct client_frame *f)
{
	free(f->body);
	f->body = NULL;
}

int client_recv_op(struct client *c, unsigned int op, int timeout_ms,
		   struct client_frame *f, client_skip_cb skip, void *arg)
{
	uint64_t deadline = client_now_ms(1) + (uint64_t)timeout_ms;

	for (;;) {
		uint64_t now = client_now_ms(1);
		int left = now >= deadline ? 0 : (int)(deadline - now);
		int err = client_recv(c, left, f);

		if (err < 0)
			return err;
		if (f->hdr.op == op)
			return 0;
		if (skip)
			skip(f, arg);
		client_frame_free(f);
	}
}

int client_login(struct client *c, const char *token, const char *user_id,
		 const char *device_id, const char *platform, int timeout_ms,
		 Imgw__LoginResult **result)
{
	Imgw__LoginRequest req = IMGW__LOGIN_REQUEST__INIT;
	Imgw__LoginResult *res;
	struct client_frame f;
	int64_t rid;
	int err;

	*result = NULL;
	req.token = (char *)token;
	req.user_id = (char *)user_id;
	req.device_id = (char *)device_id;
	req.platform = (char *)platform;
	rid = client_send(c, OP_LOGIN, &req.base);
	if (rid < 0)
		return (int)rid;
	err = client_recv_op(c, OP_LOGIN_RESULT, timeout_ms, &f, NULL, NULL);
	if (err < 0)
		return err;
	res = imgw__login_result__unpack(NULL, f.hdr.body_len, f.body);
	client_frame_free(&f);
	if (!res)
		return -EPROTO;
	*result = res;
	return res->code == IMGW__ERROR_CODE__ERROR_NONE ? 0 : -EACCES;
}

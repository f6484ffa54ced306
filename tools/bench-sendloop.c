// SPDX-License-Identifier: MIT
/*
 * bench-sendloop: the reference sender for the peer benchmark, the kernel's
 * floor for one send per delivery. Each client first sends a 4-byte group id
 * (big endian). A subscriber gets one byte 'k' back once it is a member; the
 * group id 0xffffffff makes the client the publisher. The publisher sends
 * frames of a 4-byte group id, a 4-byte length and the payload. For each
 * frame the server writes the 4-byte length and the payload to every member
 * of the group with one blocking send() each, then one byte 'a' to the
 * publisher. Nothing else: no queues, no coalescing. Exits 0 on SIGTERM.
 * Usage: bench-sendloop PORT   (listens on 127.0.0.1)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define SENDLOOP_PUBLISHER 0xffffffffu
#define SENDLOOP_MAX_PAYLOAD 65536
#define SENDLOOP_MAX_GROUPS 1000000

struct sendloop_group {
	int *fds;
	size_t count;
	size_t cap;
};

struct sendloop {
	int listen_fd;
	int epfd;
	int pub_fd;
	struct sendloop_group *groups;
	size_t group_count;
	uint8_t pub_buf[8 + SENDLOOP_MAX_PAYLOAD];
	size_t pub_len;
	uint8_t out[4 + SENDLOOP_MAX_PAYLOAD];
};

static volatile sig_atomic_t stop_requested;

static void on_term(int sig)
{
	stop_requested = 1;
}

static int group_add(struct sendloop *s, uint32_t gid, int fd)
{
	struct sendloop_group *g;

	if (gid >= SENDLOOP_MAX_GROUPS)
		return -EINVAL;
	if (gid >= s->group_count) {
		size_t n = gid + 1;
		struct sendloop_group *ng = realloc(s->groups, n * sizeof(*ng));

		if (!ng)
			return -ENOMEM;
		memset(ng + s->group_count, 0, (n - s->group_count) * sizeof(*ng));
		s->groups = ng;
		s->group_count = n;
	}
	g = &s->groups[gid];
	if (g->count == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 8;
		int *fds = realloc(g->fds, cap * sizeof(*fds));

		if (!fds)
			return -ENOMEM;
		g->fds = fds;
		g->cap = cap;
	}
	g->fds[g->count++] = fd;
	return 0;
}

/* Reads the 4-byte hello of a new client (blocking: it comes right away). */
static void sendloop_accept(struct sendloop *s)
{
	struct epoll_event ev = { .events = EPOLLIN };
	uint32_t gid;
	int one = 1, fd;

	fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "bench-sendloop: accept failed: %s\n", strerror(errno));
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (recv(fd, &gid, sizeof(gid), MSG_WAITALL) != sizeof(gid)) {
		fprintf(stderr, "bench-sendloop: fd %d sent no group id\n", fd);
		close(fd);
		return;
	}
	gid = ntohl(gid);
	if (gid == SENDLOOP_PUBLISHER && s->pub_fd < 0) {
		s->pub_fd = fd;
		ev.data.fd = fd;
		epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
		return;
	}
	if (gid == SENDLOOP_PUBLISHER || group_add(s, gid, fd) < 0 ||
	    send(fd, "k", 1, MSG_NOSIGNAL) != 1) {
		fprintf(stderr, "bench-sendloop: fd %d: group %u rejected\n", fd, gid);
		close(fd);
	}
}

/* Sends one frame to every member of its group, one send() each. */
static int sendloop_fanout(struct sendloop *s, uint32_t gid, uint32_t len)
{
	struct sendloop_group *g;
	uint32_t be_len = htonl(len);

	if (gid >= s->group_count)
		return 0;
	g = &s->groups[gid];
	memcpy(s->out, &be_len, 4);
	memcpy(s->out + 4, s->pub_buf + 8, len);
	for (size_t i = 0; i < g->count; i++) {
		if (g->fds[i] < 0 ||
		    send(g->fds[i], s->out, 4 + len, MSG_NOSIGNAL) == (ssize_t)(4 + len))
			continue;
		/* A short blocking send means the subscriber is gone: drop it. */
		fprintf(stderr, "bench-sendloop: send to fd %d failed, closing it: %s\n",
			g->fds[i], strerror(errno));
		close(g->fds[i]);
		g->fds[i] = -1;
	}
	return send(s->pub_fd, "a", 1, MSG_NOSIGNAL) == 1 ? 0 : -EPIPE;
}

static int sendloop_publisher(struct sendloop *s)
{
	ssize_t n = recv(s->pub_fd, s->pub_buf + s->pub_len,
			 sizeof(s->pub_buf) - s->pub_len, 0);
	uint32_t gid, len;

	if (n <= 0)
		return n == 0 ? -ECONNRESET : -errno;
	s->pub_len += (size_t)n;
	while (s->pub_len >= 8) {
		memcpy(&gid, s->pub_buf, 4);
		memcpy(&len, s->pub_buf + 4, 4);
		gid = ntohl(gid);
		len = ntohl(len);
		if (len > SENDLOOP_MAX_PAYLOAD)
			return -EMSGSIZE;
		if (s->pub_len < 8 + len)
			break;
		if (sendloop_fanout(s, gid, len) < 0)
			return -EPIPE;
		memmove(s->pub_buf, s->pub_buf + 8 + len, s->pub_len - 8 - len);
		s->pub_len -= 8 + len;
	}
	return 0;
}

static int sendloop_listen(struct sendloop *s, int port)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	struct epoll_event ev = { .events = EPOLLIN };
	int one = 1;

	s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0)
		return -errno;
	setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s->listen_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(s->listen_fd, 4096) < 0)
		return -errno;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0)
		return -errno;
	ev.data.fd = s->listen_fd;
	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listen_fd, &ev) < 0 ? -errno : 0;
}

static void sendloop_free(struct sendloop *s)
{
	for (size_t i = 0; i < s->group_count; i++) {
		for (size_t k = 0; k < s->groups[i].count; k++)
			if (s->groups[i].fds[k] >= 0)
				close(s->groups[i].fds[k]);
		free(s->groups[i].fds);
	}
	free(s->groups);
	if (s->pub_fd >= 0)
		close(s->pub_fd);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
}

int main(int argc, char **argv)
{
	static struct sendloop s = { .listen_fd = -1, .epfd = -1, .pub_fd = -1 };
	struct sigaction sa = { .sa_handler = on_term };
	int port = argc == 2 ? atoi(argv[1]) : 0, err;

	if (port <= 0 || port > 65535) {
		fprintf(stderr, "usage: bench-sendloop PORT   (listens on 127.0.0.1:PORT)\n");
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	err = sendloop_listen(&s, port);
	if (err < 0) {
		fprintf(stderr, "bench-sendloop: listening on 127.0.0.1:%d failed: %s\n",
			port, strerror(-err));
		sendloop_free(&s);
		return 1;
	}
	while (!stop_requested) {
		struct epoll_event ev;
		int n = epoll_wait(s.epfd, &ev, 1, 1000);

		if (n <= 0)
			continue;
		if (ev.data.fd == s.listen_fd) {
			sendloop_accept(&s);
		} else if ((err = sendloop_publisher(&s)) < 0) {
			fprintf(stderr, "bench-sendloop: publisher fd %d closed: %s\n",
				s.pub_fd, strerror(-err));
			epoll_ctl(s.epfd, EPOLL_CTL_DEL, s.pub_fd, NULL);
			close(s.pub_fd);
			s.pub_fd = -1;
			s.pub_len = 0;
		}
	}
	sendloop_free(&s);
	return 0;
}

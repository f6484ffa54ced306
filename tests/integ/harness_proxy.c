// SPDX-License-Identifier: MIT
/*
 * The loopback TCP proxy declared in harness_proxy.h. The child copies bytes
 * with poll() between up to PROXY_MAX_PAIRS connection pairs and closes
 * them all on SIGUSR1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "harness_proxy.h"

#define PROXY_MAX_PAIRS 16

static volatile sig_atomic_t proxy_cut_requested;

static void proxy_on_usr1(int sig)
{
	proxy_cut_requested = 1;
}

static int proxy_connect(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Copies what is readable from one socket to the other. Returns -1 at EOF
 * or on an error. */
static int proxy_copy(int from, int to)
{
	char buf[65536];
	ssize_t n = read(from, buf, sizeof(buf));

	if (n <= 0)
		return -1;
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(to, buf + off, (size_t)(n - off));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += w;
	}
	return 0;
}

static void proxy_close_pair(int *pair)
{
	close(pair[0]);
	close(pair[1]);
	pair[0] = pair[1] = -1;
}

/* Runs the child's loop, which never returns. pairs[i] is { client,
 * target }. */
static void proxy_run(int listen_fd, uint16_t target_port)
{
	int pairs[PROXY_MAX_PAIRS][2];
	struct pollfd pfd[1 + 2 * PROXY_MAX_PAIRS];

	memset(pairs, -1, sizeof(pairs));
	for (;;) {
		nfds_t n = 1;

		if (proxy_cut_requested) {
			proxy_cut_requested = 0;
			for (int i = 0; i < PROXY_MAX_PAIRS; i++)
				if (pairs[i][0] >= 0)
					proxy_close_pair(pairs[i]);
		}
		pfd[0] = (struct pollfd){ .fd = listen_fd, .events = POLLIN };
		for (int i = 0; i < PROXY_MAX_PAIRS; i++) {
			pfd[n++] = (struct pollfd){ .fd = pairs[i][0],
						    .events = POLLIN };
			pfd[n++] = (struct pollfd){ .fd = pairs[i][1],
						    .events = POLLIN };
		}
		if (poll(pfd, n, 20) <= 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
			int t = c >= 0 ? proxy_connect(target_port) : -1;
			int slot = 0;

			while (slot < PROXY_MAX_PAIRS && pairs[slot][0] >= 0)
				slot++;
			if (c >= 0 && t >= 0 && slot < PROXY_MAX_PAIRS) {
				pairs[slot][0] = c;
				pairs[slot][1] = t;
			} else {
				if (c >= 0)
					close(c);
				if (t >= 0)
					close(t);
			}
		}
		for (int i = 0; i < PROXY_MAX_PAIRS; i++) {
			short r0 = pfd[1 + 2 * i].revents;
			short r1 = pfd[2 + 2 * i].revents;

			if (pairs[i][0] < 0)
				continue;
			if ((r0 && proxy_copy(pairs[i][0], pairs[i][1]) < 0) ||
			    (r1 && proxy_copy(pairs[i][1], pairs[i][0]) < 0))
				proxy_close_pair(pairs[i]);
		}
	}
}

void proxy_start(struct tcp_proxy *p, uint16_t target_port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	H_CHECK(fd >= 0, "proxy socket failed: %s", strerror(errno));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	H_CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		listen(fd, 16) == 0 &&
		getsockname(fd, (struct sockaddr *)&sa, &len) == 0,
		"proxy listen on 127.0.0.1 failed: %s", strerror(errno));
	p->port = ntohs(sa.sin_port);
	fflush(NULL);
	p->pid = fork();
	H_CHECK(p->pid >= 0, "fork for the proxy failed: %s", strerror(errno));
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGUSR1, proxy_on_usr1);
		signal(SIGPIPE, SIG_IGN);
		proxy_run(fd, target_port);
	}
	close(fd);
}

void proxy_cut(struct tcp_proxy *p)
{
	H_CHECK(kill(p->pid, SIGUSR1) == 0, "signalling the proxy failed: %s",
		strerror(errno));
}

void proxy_stop(struct tcp_proxy *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	p->pid = 0;
}

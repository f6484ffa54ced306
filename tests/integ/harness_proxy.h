/* SPDX-License-Identifier: MIT */
/*
 * A TCP proxy on loopback for the integration tests, run as a child
 * process: it forwards every connection on its port to a target port, and
 * on request closes every forwarded connection at once, so a gateway's
 * link to bizsvr drops while both processes keep running.
 */
#ifndef IMGW_TEST_HARNESS_PROXY_H
#define IMGW_TEST_HARNESS_PROXY_H

#include <stdint.h>
#include <sys/types.h>

struct tcp_proxy {
	pid_t pid;
	uint16_t port;          /* the proxy's listening port */
};

/* Starts a proxy on a free 127.0.0.1 port forwarding to target_port. */
void proxy_start(struct tcp_proxy *p, uint16_t target_port);
/* Closes both ends of every forwarded connection; new ones are accepted. */
void proxy_cut(struct tcp_proxy *p);
/* Stops the proxy process and closes its connections. */
void proxy_stop(struct tcp_proxy *p);

#endif

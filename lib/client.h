/* SPDX-License-Identifier: MIT */
/*
 * A blocking imgw client over TCP, for the tools and the tests: connect, send
 * frames, and receive frames with a timeout. Not for use inside an event loop.
 */
#ifndef IMGW_CLIENT_H
#define IMGW_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "imgw.pb-c.h"

struct client {
	int fd;
	uint32_t next_request_id;
	uint8_t *buf;      /* received bytes not yet returned */
	size_t len;
	size_t cap;
};

struct client_frame {
	struct frame_header hdr;
	uint8_t *body;     /* hdr.body_len bytes, malloc'd; free with client_frame_free() */
};

/* Connects to host:port. Returns NULL with errno set. */
struct client *client_connect(const char *host, uint16_t port, int timeout_ms);
void client_close(struct client *c);

/* Sends one frame. Returns the request id used, or a negative errno. */
int64_t client_send(struct client *c, unsigned int op,
		    const ProtobufCMessage *msg);
int client_send_bytes(struct client *c, const void *data, size_t len);

/*
 * Receives one frame, waiting at most timeout_ms. Returns 0, -ETIMEDOUT,
 * -ECONNRESET when the peer closed, -EPROTO for an invalid header, or another
 * negative errno.
 */
int client_recv(struct client *c, int timeout_ms, struct client_frame *f);
void client_frame_free(struct client_frame *f);

/*
 * Receives frames until one with op arrives, handing the others to skip (when
 * not NULL) and dropping them otherwise. Returns as client_recv().
 */
typedef void (*client_skip_cb)(const struct client_frame *f, void *arg);
int client_recv_op(struct client *c, unsigned int op, int timeout_ms,
		   struct client_frame *f, client_skip_cb skip, void *arg);

/* Logs in and waits for the result; *result is NULL unless 0 is returned.
 * Returns 0, -EACCES when the gateway rejected the login, or as client_recv(). */
int client_login(struct client *c, const char *token, const char *user_id,
		 const char *device_id, const char *platform, int timeout_ms,
		 Imgw__LoginResult **result);

/* Returns the current time in milliseconds: CLOCK_REALTIME, or CLOCK_MONOTONIC when monotonic is set. */
uint64_t client_now_ms(int monotonic);

#endif

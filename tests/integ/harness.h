/* SPDX-License-Identifier: MIT */
/*
 * Integration test harness: runs the real bizsvr and gateways as child
 * processes on free loopback ports in a fresh temp dir, talks to their admin
 * HTTP APIs, and drives blocking clients that record every push they see.
 * Every wait has a stall bound (HARNESS_WAIT_MS); nothing measures speed.
 */
#ifndef IMGW_TEST_HARNESS_H
#define IMGW_TEST_HARNESS_H

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>
#include <jansson.h>

#include "client.h"
#include "frame.h"
#include "imgw.pb-c.h"

#define HARNESS_MAX_GW 4
/* Stall bound for one expected event: a reply, a push, a close. */
#define HARNESS_WAIT_MS 5000
/* Bound for a daemon to become healthy or to exit; sanitizer builds are slow. */
#define HARNESS_START_MS 20000

/* Gateway options; a zero field leaves the harness default. */
struct gw_options {
	int heartbeat_timeout;  /* seconds; default 60 */
	int login_timeout;      /* seconds; default 10 */
	size_t out_cap;         /* bytes; default 1 MiB */
	size_t max_frame;       /* body bytes; default 65536 */
	int drop_super_acks;    /* 1: start with --fault-drop-super-acks */
	uint16_t bizsvr_port;   /* link to this port; 0: the harness's bizsvr */
	/* Extra flags after the harness's own, NULL-terminated, or NULL. A
	 * repeated flag overrides the harness's value. Must outlive the
	 * harness, as they are kept for restarts. */
	const char *const *args;
};

struct daemon_proc {
	char name[16];          /* "bizsvr", "gw0", ... */
	pid_t pid;              /* 0 when not running */
	uint16_t port;          /* client or gateway-link listener */
	uint16_t http_port;
	char log_path[PATH_MAX];
	char node_id[32];
	struct gw_options opts;
};

struct harness {
	char dir[PATH_MAX];
	char secret[33];
	char db_path[PATH_MAX];
	size_t max_payload;
	struct daemon_proc biz;
	struct daemon_proc gw[HARNESS_MAX_GW];
	int gw_count;
	/* Extra bizsvr arguments, NULL-terminated, kept for restarts. */
	const char *const *biz_args;
};

/* The harness of the running test, for log dumps on failure. */
extern struct harness *harness_current;

/*
 * Fails the running cmocka test with a message, after printing the last 30
 * lines of every daemon log of the current harness.
 */
void harness_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

#define H_CHECK(cond, ...)                                          \
	do {                                                        \
		if (!(cond))                                        \
			harness_fail(__FILE__, __LINE__, __VA_ARGS__); \
	} while (0)

/*
 * Starts bizsvr and gw_count gateways (opts: one entry per gateway, or NULL
 * for defaults) and waits until all are healthy. Fails the test otherwise.
 */
struct harness *harness_start(int gw_count, const struct gw_options *opts);
/* As harness_start(), passing biz_args (NULL-terminated, or NULL) to every
 * bizsvr start after the harness's own arguments. biz_args must outlive
 * the harness. */
struct harness *harness_start_args(int gw_count, const struct gw_options *opts,
				   const char *const *biz_args);

/* Returns the directory of the imgw and bizsvr binaries under test:
 * $IMGW_BUILD, or the build directory this test binary lies in. */
const char *harness_build_dir(void);

/* Stops every daemon with SIGTERM and fails the test if one exits non-zero,
 * by a signal, or not in time. Removes the temp dir when all went well. */
void harness_stop(struct harness *h);

/* A cmocka teardown that stops harness_current, if any. */
int harness_teardown(void **state);

/*
 * Starts one more gateway with opt (NULL for defaults) and waits until its
 * /healthz responds, with upstream in any state. Returns its index.
 */
int harness_gw_add(struct harness *h, const struct gw_options *opt);

/* Stops gateway i with sig (SIGTERM: a clean exit is required). */
void harness_gw_stop(struct harness *h, int i, int sig);
/* Starts gateway i again on the same ports and waits until upstream is up. */
void harness_gw_start(struct harness *h, int i);
void harness_biz_stop(struct harness *h, int sig);
/* Starts bizsvr again on the same ports and database. */
void harness_biz_start(struct harness *h);

/* Waits until gateway i reports upstream "up" (up = 1) or "down". */
void harness_wait_upstream(struct harness *h, int i, int up);
/* Waits until bizsvr reports count gateways. */
void harness_wait_gateways(struct harness *h, int count);

/*
 * One blocking HTTP/1.1 request to 127.0.0.1:port. Returns the status code
 * and stores the malloc'd response body in *body, or returns a negative errno.
 */
int http_call(uint16_t port, const char *method, const char *path,
	      const char *request_body, char **body);

/* Returns the JSON reply of a daemon's /healthz, failing on any error. */
json_t *harness_healthz(struct daemon_proc *d);
/* Returns the value of a Prometheus metric, or -1 when it is missing. */
double harness_metric(struct daemon_proc *d, const char *name);

/* bizsvr admin API. Each fails the test on an unexpected status. */
uint64_t admin_session_create(struct harness *h, const char *kind,
			      const char *name, const char *const *members,
			      size_t count);
void admin_members_add(struct harness *h, uint64_t session_id,
		       const char *const *users, size_t count);
void admin_member_remove(struct harness *h, uint64_t session_id,
			 const char *user);
/* Stores and pushes a server message; returns its seq. */
uint64_t admin_push(struct harness *h, uint64_t session_id,
		    const char *sender, const char *payload);
/* Gets a token for user from POST /v1/tokens into out (TOKEN_MAX_LEN + 1). */
void admin_token(struct harness *h, const char *user, int ttl, char *out);

/* Mints a token with the harness secret, valid until expires (unix s). */
void harness_token(struct harness *h, const char *user, int64_t expires,
		   char *out);

/* A push as a test client received it. */
struct push_rec {
	uint64_t session_id;
	uint64_t seq;
	uint64_t time_ms;
	char *sender;
	char *sender_device;
	char *client_msg_id;
	char *payload;          /* NUL-terminated copy of the payload bytes */
	size_t payload_len;
};

/* A test client: one connection and everything it has received. */
struct tclient {
	struct harness *h;
	struct client *c;
	int gw;
	char user[64];
	char device[64];
	uint64_t conn_id;
	Imgw__LoginResult *login;
	struct push_rec *pushes;
	size_t push_count;
	size_t push_cap;
	int kicked;
	char kick_reason[128];
	int error_code;         /* code of the last ERROR frame, or -1 */
	int closed;             /* the gateway closed the connection */
	int last_err;           /* last receive error, a negative errno */
};

/* Connects to gateway gw without logging in. */
struct tclient *tc_connect(struct harness *h, int gw);
/* Connects with a socket receive buffer of rcvbuf bytes, set before connect. */
struct tclient *tc_connect_rcvbuf(struct harness *h, int gw, int rcvbuf);
/* Connects and logs in with a minted token; fails the test on error. */
struct tclient *tc_login(struct harness *h, int gw, const char *user,
			 const char *device);
/* Logs in on a connected client with token; returns as client_login(). */
int tc_login_token(struct tclient *t, const char *user, const char *device,
		   const char *token);
void tc_free(struct tclient *t);

/*
 * Handles one received frame: PUSH, KICK and ERROR are recorded, anything
 * else counts as unexpected and is returned as 1 (0 when recorded).
 */
int tc_record(struct tclient *t, const struct client_frame *f);

/* Receives frames until a frame with op and request_id (any id when
 * request_id is 0) arrives, recording the others. Returns as client_recv(). */
int tc_wait_op(struct tclient *t, unsigned int op, uint32_t request_id,
	       int timeout_ms, struct client_frame *f);

/* Sends a message and waits for its SEND_RESULT. Returns 0 and *res, or a
 * negative errno. session_id 0 with to_user set sends one-to-one. */
int tc_send(struct tclient *t, uint64_t session_id, const char *to_user,
	    const char *payload, Imgw__SendResult **res);
/* As tc_send(), with the given client_msg_id (retries reuse it). */
int tc_send_id(struct tclient *t, uint64_t session_id, const char *to_user,
	       const char *client_msg_id, const char *payload,
	       Imgw__SendResult **res);
/* Sends payload to a session, requires success and returns the seq. */
uint64_t tc_send_ok(struct tclient *t, uint64_t session_id,
		    const char *payload);
int tc_sync(struct tclient *t, uint64_t session_id, uint64_t from_seq,
	    uint32_t limit, Imgw__SyncResult **res);
/* Sends HEARTBEAT and waits for the HEARTBEAT_ACK with its request id. */
int tc_heartbeat(struct tclient *t, int timeout_ms);

/* Receives until count pushes are recorded in all, the connection closes, or
 * timeout_ms passes. Returns the number of pushes recorded. */
size_t tc_collect(struct tclient *t, size_t count, int timeout_ms);
/* Receives until the gateway closes the connection. Returns 0, or
 * -ETIMEDOUT when it stayed open for timeout_ms. */
int tc_wait_closed(struct tclient *t, int timeout_ms);

/* Returns the index of the push with session and seq, or -1. */
long tc_find_push(const struct tclient *t, uint64_t session_id, uint64_t seq);

/* Receives until the push with session and seq arrives or timeout_ms
 * passes. Returns its index, or -1. */
long tc_wait_push(struct tclient *t, uint64_t session_id, uint64_t seq,
		  int timeout_ms);

/* A message a test sent and got acknowledged. */
struct sent_msg {
	uint64_t seq;
	char sender[64];
	char payload[128];
};

/*
 * Checks that the pushes t received for session_id are exactly want (count
 * entries sorted by seq): same count, each once, in seq order, with the
 * right sender and payload.
 */
void tc_check_pushes(const struct tclient *t, uint64_t session_id,
		     const struct sent_msg *want, size_t count);

/* Appends a message to a list of count entries (cap HARNESS_MAX_MSGS). */
#define HARNESS_MAX_MSGS 512
void sent_add(struct sent_msg *list, size_t *count, uint64_t seq,
	      const char *sender, const char *payload);

#endif

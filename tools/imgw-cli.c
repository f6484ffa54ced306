// SPDX-License-Identifier: MIT
/*
 * imgw-cli: a terminal chat client. It logs in to a gateway, prints pushes
 * as they arrive and sends each stdin line to the open session. Commands
 * start with '/'. stdin may be a pipe or a file, so tests can drive it. At
 * EOF it waits up to 1 s for outstanding results, then exits.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "admin_client.h"
#include "httputil.h"
#include "imgw.pb-c.h"
#include "token.h"
#include "wire.h"

#define CLI_HEARTBEAT_SEC 20
#define CLI_EOF_WAIT_MS 1000
#define CLI_TOKEN_TTL 86400
#define CLI_MAX_SESSIONS 1024
#define CLI_MAX_LINE 8192
/* Kind of a session first seen in a push or a /open check, which carry none. */
#define CLI_KIND_UNKNOWN (-1)

struct cli_session {
	uint64_t id;
	int kind;               /* Imgw__SessionKind or CLI_KIND_UNKNOWN */
	char name[64];
	char peer[TOKEN_MAX_USER_LEN + 1];      /* the other user of a direct session */
	uint64_t last_seq;
};

struct cli {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *stdin_ev;
	struct event *heartbeat_ev;
	struct event *eof_ev;
	struct event *sigint_ev;
	struct evbuffer *lines;         /* stdin bytes not yet split into lines */
	const char *user;
	const char *device;
	const char *gateway;            /* HOST:PORT, for messages */
	char token[TOKEN_MAX_LEN];
	uint32_t next_request_id;
	uint64_t msg_counter;           /* for client_msg_id */
	int outstanding;                /* SEND and SYNC frames without a result */
	uint32_t hold_request_id;       /* stdin lines wait for this result */
	int stdin_closed;               /* read returned EOF or an error */
	int stdin_eof;                  /* every stdin line is handled */
	int exit_code;
	int connected;
	int closing;                    /* the reason a KICK or ERROR gave for the close */
	uint64_t open_session;
	char dm_user[TOKEN_MAX_USER_LEN + 1];   /* /dm target before its session is known */
	uint32_t dm_request_id;         /* first SEND to dm_user without a result */
	uint32_t open_request_id;       /* SYNC that checks a /open, or 0 */
	uint64_t open_check_session;    /* the session that SYNC checks */
	struct cli_session sessions[CLI_MAX_SESSIONS];
	int session_count;
};

static void cli_quit(struct cli *cli, int code)
{
	cli->exit_code = code;
	event_base_loopbreak(cli->base);
}

/* Prints "imgw-cli: " and the message to stderr, after pending stdout. */
__attribute__((format(printf, 1, 2)))
static void cli_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("imgw-cli: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static const char *plural(size_t n)
{
	return n == 1 ? "" : "s";
}

static const char *error_code_name(int code)
{
	const ProtobufCEnumValue *v =
		protobuf_c_enum_descriptor_get_value(&imgw__error_code__descriptor,
						     code);

	return v ? v->name : "unknown";
}

static const char *session_kind_name(int kind)
{
	switch (kind) {
	case IMGW__SESSION_KIND__SESSION_KIND_DIRECT:
		return "direct";
	case IMGW__SESSION_KIND__SESSION_KIND_NOTICE:
		return "notice";
	default:
		return "group";
	}
}

/* Returns the known session with this id, or NULL. */
static struct cli_session *cli_session_find(struct cli *cli, uint64_t id)
{
	for (int i = 0; i < cli->session_count; i++) {
		if (cli->sessions[i].id == id)
			return &cli->sessions[i];
	}
	return NULL;
}

/* Returns the known session with this id, adding it when it is new (NULL when full). */
static struct cli_session *cli_session_get(struct cli *cli, uint64_t id)
{
	struct cli_session *s = cli_session_find(cli, id);

	if (s)
		return s;
	if (cli->session_count == CLI_MAX_SESSIONS)
		return NULL;
	s = &cli->sessions[cli->session_count++];
	memset(s, 0, sizeof(*s));
	s->id = id;
	s->kind = CLI_KIND_UNKNOWN;
	return s;
}

static void cli_session_seen(struct cli *cli, uint64_t id, uint64_t seq)
{
	struct cli_session *s = cli_session_get(cli, id);

	if (s && seq > s->last_seq)
		s->last_seq = seq;
}

/* Prints a payload as text, escaping bytes that are not printable. */
static void print_payload(const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] >= 0x20 && data[i] != 0x7f)
			putchar(data[i]);
		else
			printf("\\x%02x", data[i]);
	}
}

static void print_message(const char *prefix, const Imgw__Push *p)
{
	time_t sec = (time_t)(p->time_ms / 1000);
	struct tm tm;
	char stamp[16];

	localtime_r(&sec, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	printf("%s[session %" PRIu64 " #%" PRIu64 " %s] %s: ", prefix,
	       p->session_id, p->seq, stamp, p->sender);
	print_payload(p->payload.data, p->payload.len);
	putchar('\n');
}

/* XXX: The list is the login result plus sessions seen since, so a group
 * this user joins later appears only after its first push. */
static void cli_print_sessions(struct cli *cli)
{
	if (cli->session_count == 0)
		printf("no sessions\n");
	for (int i = 0; i < cli->session_count; i++) {
		const struct cli_session *s = &cli->sessions[i];

		if (s->kind == IMGW__SESSION_KIND__SESSION_KIND_DIRECT && s->peer[0])
			printf("  session %" PRIu64 " direct with %s", s->id,
			       s->peer);
		else if (s->kind == CLI_KIND_UNKNOWN)
			printf("  session %" PRIu64, s->id);
		else
			printf("  session %" PRIu64 " %s \"%s\"", s->id,
			       session_kind_name(s->kind), s->name);
		printf(" last #%" PRIu64 "%s\n", s->last_seq,
		       s->id == cli->open_session ? " (open)" : "");
	}
}

/* Queues a frame and stores its request id in *rid_out unless it is NULL. */
static int cli_send_frame(struct cli *cli, unsigned int op,
			  const ProtobufCMessage *msg, uint32_t *rid_out)
{
	uint32_t rid = cli->next_request_id++;

	if (wire_append(bufferevent_get_output(cli->bev), op, rid, msg) < 0) {
		cli_error("queueing a %s frame failed: %s", frame_op_name(op),
			  strerror(ENOMEM));
		return -ENOMEM;
	}
	if (rid_out)
		*rid_out = rid;
	return 0;
}

/* Exits once stdin is done and every request has its result. */
static void cli_check_done(struct cli *cli)
{
	if (cli->stdin_eof && cli->outstanding == 0)
		cli_quit(cli, 0);
}

static void cli_resume_input(struct cli *cli);

static void cli_result_received(struct cli *cli, uint32_t request_id)
{
	if (cli->outstanding > 0)
		cli->outstanding--;
	if (request_id && request_id == cli->hold_request_id)
		cli_resume_input(cli);
	cli_check_done(cli);
}

static void cli_start_input(struct cli *cli);

/* Records the member of a direct session that is not this user. */
static void cli_session_set_peer(struct cli *cli, struct cli_session *s,
				 const Imgw__SessionInfo *info)
{
	if (info->kind != IMGW__SESSION_KIND__SESSION_KIND_DIRECT)
		return;
	for (size_t i = 0; i < info->n_members; i++) {
		if (strcmp(info->members[i], cli->user) != 0) {
			snprintf(s->peer, sizeof(s->peer), "%s",
				 info->members[i]);
			return;
		}
	}
}

/* Returns the known direct session with user, or NULL. */
static struct cli_session *cli_direct_find(struct cli *cli, const char *user)
{
	for (int i = 0; i < cli->session_count; i++) {
		struct cli_session *s = &cli->sessions[i];

		if (s->kind == IMGW__SESSION_KIND__SESSION_KIND_DIRECT &&
		    strcmp(s->peer, user) == 0)
			return s;
	}
	return NULL;
}

/* Makes the direct session that the first /dm message went to the open one,
 * so /sync and /sessions refer to it. */
static void cli_dm_opened(struct cli *cli, uint64_t session_id)
{
	struct cli_session *s = cli_session_get(cli, session_id);

	if (s) {
		s->kind = IMGW__SESSION_KIND__SESSION_KIND_DIRECT;
		snprintf(s->peer, sizeof(s->peer), "%s", cli->dm_user);
	}
	cli->open_session = session_id;
	printf("open: session %" PRIu64 ", direct with %s\n", session_id,
	       cli->dm_user);
	cli->dm_user[0] = '\0';
}

static int on_login_result(struct cli *cli, const uint8_t *body, size_t len)
{
	Imgw__LoginResult *res = imgw__login_result__unpack(NULL, len, body);

	if (!res)
		return -EPROTO;
	if (res->code != IMGW__ERROR_CODE__ERROR_NONE) {
		cli_error("logging in as %s/%s at the gateway %s failed: %s (%s)",
			  cli->user, cli->device, cli->gateway, res->reason,
			  error_code_name(res->code));
		imgw__login_result__free_unpacked(res, NULL);
		cli_quit(cli, 1);
		return 0;
	}
	for (size_t i = 0; i < res->n_sessions; i++) {
		const Imgw__SessionInfo *info = res->sessions[i];
		struct cli_session *s = cli_session_get(cli, info->session_id);

		if (!s)
			break;
		s->kind = info->kind;
		s->last_seq = info->last_seq;
		snprintf(s->name, sizeof(s->name), "%s", info->name);
		cli_session_set_peer(cli, s, info);
	}
	printf("logged in as %s/%s (conn %" PRIu64 "), ", cli->user,
	       cli->device, res->conn_id);
	if (res->n_sessions)
		printf("%zu session%s:\n", res->n_sessions,
		       plural(res->n_sessions));
	else
		printf("no sessions\n");
	imgw__login_result__free_unpacked(res, NULL);
	if (cli->session_count)
		cli_print_sessions(cli);
	printf("type /help for commands\n");
	cli_start_input(cli);
	return 0;
}

static int on_send_result(struct cli *cli, uint32_t request_id,
			  const uint8_t *body, size_t len)
{
	Imgw__SendResult *res = imgw__send_result__unpack(NULL, len, body);
	int first_dm = request_id && request_id == cli->dm_request_id;

	if (!res)
		return -EPROTO;
	if (first_dm)
		cli->dm_request_id = 0;
	if (res->code == IMGW__ERROR_CODE__ERROR_NONE) {
		printf("sent: session %" PRIu64 " #%" PRIu64 "\n",
		       res->session_id, res->seq);
		cli_session_seen(cli, res->session_id, res->seq);
		if (first_dm && cli->dm_user[0])
			cli_dm_opened(cli, res->session_id);
	} else {
		cli_error("sending a message failed: %s (%s)", res->reason,
			  error_code_name(res->code));
	}
	imgw__send_result__free_unpacked(res, NULL);
	cli_result_received(cli, request_id);
	return 0;
}

static void cli_open_session(struct cli *cli, uint64_t id)
{
	cli->open_session = id;
	cli->dm_user[0] = '\0';
	cli->dm_request_id = 0;
	printf("open: session %" PRIu64 "\n", id);
}

/* Opens the session that a /open checked, or prints why it cannot be opened. */
static void cli_open_checked(struct cli *cli, const Imgw__SyncResult *res)
{
	uint64_t id = cli->open_check_session;
	struct cli_session *s;

	cli->open_request_id = 0;
	switch (res->code) {
	case IMGW__ERROR_CODE__ERROR_NONE:
		break;
	case IMGW__ERROR_CODE__ERROR_NO_SESSION:
		cli_error("session %" PRIu64 " not found", id);
		return;
	case IMGW__ERROR_CODE__ERROR_NOT_MEMBER:
		cli_error("%s is not a member of session %" PRIu64, cli->user,
			  id);
		return;
	default:
		cli_error("opening session %" PRIu64 " failed: %s (%s)", id,
			  res->reason, error_code_name(res->code));
		return;
	}
	s = cli_session_get(cli, id);
	if (s && res->last_seq > s->last_seq)
		s->last_seq = res->last_seq;
	cli_open_session(cli, id);
}

static int on_sync_result(struct cli *cli, uint32_t request_id,
			  const uint8_t *body, size_t len)
{
	Imgw__SyncResult *res = imgw__sync_result__unpack(NULL, len, body);
	uint64_t next = 0;

	if (!res)
		return -EPROTO;
	if (request_id && request_id == cli->open_request_id) {
		cli_open_checked(cli, res);
		goto out;
	}
	if (res->code != IMGW__ERROR_CODE__ERROR_NONE) {
		cli_error("history of session %" PRIu64 " failed: %s (%s)",
			  res->session_id, res->reason,
			  error_code_name(res->code));
		goto out;
	}
	printf("history of session %" PRIu64 ": %zu message%s, last #%" PRIu64
	       "\n", res->session_id, res->n_messages,
	       plural(res->n_messages), res->last_seq);
	for (size_t i = 0; i < res->n_messages; i++) {
		print_message("  ", res->messages[i]);
		next = res->messages[i]->seq + 1;
	}
	cli_session_seen(cli, res->session_id, res->last_seq);
	if (res->more)
		printf("more history: /sync %" PRIu64 "\n", next);
out:
	imgw__sync_result__free_unpacked(res, NULL);
	cli_result_received(cli, request_id);
	return 0;
}

static int on_push(struct cli *cli, const uint8_t *body, size_t len)
{
	Imgw__Push *p = imgw__push__unpack(NULL, len, body);

	if (!p)
		return -EPROTO;
	print_message("", p);
	cli_session_seen(cli, p->session_id, p->seq);
	imgw__push__free_unpacked(p, NULL);
	return 0;
}

static int on_kick(struct cli *cli, const uint8_t *body, size_t len)
{
	Imgw__Kick *k = imgw__kick__unpack(NULL, len, body);

	if (!k)
		return -EPROTO;
	if (strcmp(k->reason, "duplicate login") == 0)
		cli_error("kicked by the gateway (duplicate login: another client logged in as %s/%s)",
			  cli->user, cli->device);
	else
		cli_error("kicked by the gateway (%s)", k->reason);
	imgw__kick__free_unpacked(k, NULL);
	cli->closing = 1;
	cli->exit_code = 1;
	return 0;
}

static int on_error(struct cli *cli, const uint8_t *body, size_t len)
{
	Imgw__Error *e = imgw__error__unpack(NULL, len, body);

	if (!e)
		return -EPROTO;
	cli_error("the gateway at %s reported an error: %s (%s)", cli->gateway,
		  e->text, error_code_name(e->code));
	imgw__error__free_unpacked(e, NULL);
	cli->closing = 1;
	cli->exit_code = 1;
	return 0;
}

static int cli_handle_frame(struct cli *cli, const struct frame_header *hdr,
			    const uint8_t *body)
{
	switch (hdr->op) {
	case OP_LOGIN_RESULT:
		return on_login_result(cli, body, hdr->body_len);
	case OP_SEND_RESULT:
		return on_send_result(cli, hdr->request_id, body,
				      hdr->body_len);
	case OP_SYNC_RESULT:
		return on_sync_result(cli, hdr->request_id, body,
				      hdr->body_len);
	case OP_PUSH:
		return on_push(cli, body, hdr->body_len);
	case OP_KICK:
		return on_kick(cli, body, hdr->body_len);
	case OP_ERROR:
		return on_error(cli, body, hdr->body_len);
	case OP_HEARTBEAT_ACK:
		return 0;
	default:
		cli_error("ignoring a frame with unexpected op %u from the gateway at %s",
			  hdr->op, cli->gateway);
		return 0;
	}
}

static void cli_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct cli *cli = arg;
	struct frame_header hdr;
	int rc;

	while ((rc = wire_peek(in, FRAME_HARD_MAX_BODY, &hdr)) == 1) {
		const uint8_t *body = wire_body(in, &hdr);

		if (!body || cli_handle_frame(cli, &hdr, body) < 0) {
			cli_error("decoding a %s frame from the gateway at %s failed",
				  frame_op_name(hdr.op) ? frame_op_name(hdr.op) : "?",
				  cli->gateway);
			cli_quit(cli, 1);
			return;
		}
		wire_consume(in, &hdr);
	}
	if (rc < 0) {
		cli_error("invalid frame header from the gateway at %s: %s",
			  cli->gateway, frame_status_str(rc));
		cli_quit(cli, 1);
	}
	fflush(stdout);
}

static int cli_send_login(struct cli *cli)
{
	Imgw__LoginRequest req = IMGW__LOGIN_REQUEST__INIT;

	req.token = cli->token;
	req.user_id = (char *)cli->user;
	req.device_id = (char *)cli->device;
	req.platform = "cli";
	return cli_send_frame(cli, OP_LOGIN, &req.base, NULL);
}

static void cli_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct cli *cli = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		cli->connected = 1;
		if (cli_send_login(cli) < 0)
			cli_quit(cli, 1);
		return;
	}
	/* After a KICK or ERROR frame, that frame's message gives the reason. */
	if (cli->closing)
		fflush(stdout);
	else if (!cli->connected)
		cli_error("connecting to the gateway at %s failed: %s",
			  cli->gateway, strerror(err));
	else if (what & BEV_EVENT_EOF)
		cli_error("the gateway at %s closed the connection",
			  cli->gateway);
	else
		cli_error("the connection to the gateway at %s failed: %s",
			  cli->gateway, strerror(err));
	cli_quit(cli, 1);
}

static void cli_help(void)
{
	printf("commands:\n"
	       "  /sessions       list known sessions\n"
	       "  /open ID        send the next lines to session ID\n"
	       "  /dm USER        send the next lines to USER one-to-one\n"
	       "  /sync [SEQ]     history of the open session from SEQ (default 1)\n"
	       "  /help           this list\n"
	       "  /quit           exit\n"
	       "any other line is sent as a message; start it with // to send a leading /\n");
}

static void cli_send_text(struct cli *cli, const char *text)
{
	Imgw__SendRequest req = IMGW__SEND_REQUEST__INIT;
	char msg_id[160];
	uint32_t rid;

	if (!cli->dm_user[0] && !cli->open_session) {
		cli_error("no open session: use /open ID or /dm USER first");
		return;
	}
	/* Unique per process run, so the daemon's retry check never merges two lines. */
	snprintf(msg_id, sizeof(msg_id), "cli-%s-%d-%" PRIu64, cli->device,
		 (int)getpid(), ++cli->msg_counter);
	if (cli->dm_user[0])
		req.to_user = cli->dm_user;
	else
		req.session_id = cli->open_session;
	req.client_msg_id = msg_id;
	req.payload.data = (uint8_t *)text;
	req.payload.len = strlen(text);
	if (cli_send_frame(cli, OP_SEND, &req.base, &rid) < 0)
		return;
	cli->outstanding++;
	/* Until a send to dm_user succeeds, its session id is unknown, so the
	 * next lines (a /sync, say) wait for the result. */
	if (cli->dm_user[0] && !cli->dm_request_id) {
		cli->dm_request_id = rid;
		cli->hold_request_id = rid;
	}
}

static void cli_sync(struct cli *cli, const char *arg)
{
	Imgw__SyncRequest req = IMGW__SYNC_REQUEST__INIT;
	char *end;

	if (cli->dm_user[0]) {
		cli_error("no session with %s yet: send a message first",
			  cli->dm_user);
		return;
	}
	if (!cli->open_session) {
		cli_error("no open session: use /open ID first");
		return;
	}
	req.session_id = cli->open_session;
	req.from_seq = 1;
	if (arg && *arg) {
		req.from_seq = strtoull(arg, &end, 10);
		if (*end || arg[0] == '-') {
			cli_error("invalid sequence number '%s': expected a number",
				  arg);
			return;
		}
	}
	if (cli_send_frame(cli, OP_SYNC, &req.base, NULL) == 0)
		cli->outstanding++;
}

/*
 * Opens a session from the login result or a push at once. Any other id is
 * checked with a one-message SYNC first, and the next stdin lines wait for
 * its result, so they never go to a session that does not exist.
 */
static void cli_open(struct cli *cli, const char *arg)
{
	Imgw__SyncRequest req = IMGW__SYNC_REQUEST__INIT;
	char *end;
	uint64_t id;
	uint32_t rid;

	id = arg ? strtoull(arg, &end, 10) : 0;
	if (!arg || *end || id == 0 || arg[0] == '-') {
		cli_error("usage: /open ID (a session id > 0)");
		return;
	}
	if (cli_session_find(cli, id)) {
		cli_open_session(cli, id);
		return;
	}
	req.session_id = id;
	req.from_seq = 1;
	req.limit = 1;
	if (cli_send_frame(cli, OP_SYNC, &req.base, &rid) < 0)
		return;
	cli->outstanding++;
	cli->open_request_id = rid;
	cli->open_check_session = id;
	cli->hold_request_id = rid;
}

static void cli_dm(struct cli *cli, const char *arg)
{
	struct cli_session *s;

	if (!arg || !*arg || strlen(arg) > TOKEN_MAX_USER_LEN) {
		cli_error("usage: /dm USER (a user id of 1 to %d bytes)",
			  TOKEN_MAX_USER_LEN);
		return;
	}
	cli->dm_request_id = 0;
	s = cli_direct_find(cli, arg);
	if (s) {
		cli->open_session = s->id;
		cli->dm_user[0] = '\0';
		printf("open: session %" PRIu64 ", direct with %s\n", s->id,
		       arg);
		return;
	}
	cli->open_session = 0;
	snprintf(cli->dm_user, sizeof(cli->dm_user), "%s", arg);
	printf("open: direct messages to %s (the session id follows the first message)\n",
	       arg);
}

static void cli_command(struct cli *cli, char *line)
{
	char *arg = strchr(line, ' ');

	if (arg) {
		*arg++ = '\0';
		arg += strspn(arg, " ");
	}
	if (strcmp(line, "/quit") == 0)
		cli_quit(cli, 0);
	else if (strcmp(line, "/help") == 0)
		cli_help();
	else if (strcmp(line, "/sessions") == 0)
		cli_print_sessions(cli);
	else if (strcmp(line, "/open") == 0)
		cli_open(cli, arg);
	else if (strcmp(line, "/dm") == 0)
		cli_dm(cli, arg);
	else if (strcmp(line, "/sync") == 0)
		cli_sync(cli, arg);
	else
		cli_error("unknown command '%s': type /help", line);
}

static void cli_line(struct cli *cli, char *line)
{
	size_t len = strlen(line);

	if (len && line[len - 1] == '\r')
		line[--len] = '\0';
	if (len == 0)
		return;
	if (line[0] == '/' && line[1] != '/')
		cli_command(cli, line);
	else
		cli_send_text(cli, line[0] == '/' ? line + 1 : line);
}

static void cli_eof_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cli *cli = arg;

	cli_error("timed out after %d ms waiting for %d result%s from the gateway at %s",
		  CLI_EOF_WAIT_MS, cli->outstanding,
		  plural((size_t)cli->outstanding), cli->gateway);
	cli_quit(cli, 1);
}

/* Handles the complete lines read so far, stopping at a line that makes
 * the next ones wait for a result. */
static void cli_handle_lines(struct cli *cli)
{
	char *line;

	while (!cli->hold_request_id &&
	       (line = evbuffer_readln(cli->lines, NULL, EVBUFFER_EOL_LF))) {
		cli_line(cli, line);
		free(line);
	}
}

static void cli_stdin_done(struct cli *cli)
{
	struct timeval wait = { 0, CLI_EOF_WAIT_MS * 1000 };
	char *rest;
	size_t len = evbuffer_get_length(cli->lines);

	/* The last line may lack its newline. */
	if (len) {
		rest = calloc(1, len + 1);
		if (rest) {
			evbuffer_remove(cli->lines, rest, len);
			cli_line(cli, rest);
			free(rest);
		}
	}
	cli->stdin_eof = 1;
	if (cli->outstanding)
		evtimer_add(cli->eof_ev, &wait);
	cli_check_done(cli);
}

/* Handles the lines that waited for a result, then reads stdin again. */
static void cli_resume_input(struct cli *cli)
{
	cli->hold_request_id = 0;
	cli_handle_lines(cli);
	if (cli->hold_request_id)
		return;
	if (!cli->stdin_closed)
		event_add(cli->stdin_ev, NULL);
	else if (!cli->stdin_eof)
		cli_stdin_done(cli);
}

static void cli_stdin_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval wait = { 0, CLI_EOF_WAIT_MS * 1000 };
	struct cli *cli = arg;
	int n = evbuffer_read(cli->lines, fd, 4096);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0)
		cli_error("reading stdin failed: %s", strerror(errno));
	cli_handle_lines(cli);
	if (!cli->hold_request_id &&
	    evbuffer_get_length(cli->lines) > CLI_MAX_LINE) {
		cli_error("dropped a line longer than %d bytes", CLI_MAX_LINE);
		evbuffer_drain(cli->lines, evbuffer_get_length(cli->lines));
	}
	if (n <= 0 || cli->hold_request_id)
		event_del(cli->stdin_ev);
	if (n <= 0)
		cli->stdin_closed = 1;
	if (cli->stdin_closed && cli->hold_request_id)
		evtimer_add(cli->eof_ev, &wait);
	else if (cli->stdin_closed)
		cli_stdin_done(cli);
	fflush(stdout);
}

static void cli_start_input(struct cli *cli)
{
	struct timeval beat = { CLI_HEARTBEAT_SEC, 0 };

	event_add(cli->stdin_ev, NULL);
	event_add(cli->heartbeat_ev, &beat);
}

static void cli_heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cli *cli = arg;

	cli_send_frame(cli, OP_HEARTBEAT, NULL, NULL);
}

static void cli_sigint_cb(evutil_socket_t fd, short what, void *arg)
{
	cli_quit(arg, 0);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: imgw-cli --user USER [--device ID] [--token TOKEN | --admin URL]\n"
		"                [--gateway HOST:PORT]\n"
		"\n"
		"  --user USER          user id to log in as (required)\n"
		"  --device ID          device id; a second login with the same user and device\n"
		"                       kicks the first (default \"cli\")\n"
		"  --token TOKEN        login token (default: one minted through --admin, valid\n"
		"                       for %d s)\n"
		"  --admin URL          bizsvr admin API that mints the token (default\n"
		"                       $IMGW_ADMIN, else %s)\n"
		"  --gateway HOST:PORT  gateway address (default 127.0.0.1:7070)\n"
		"  --help               print this help and exit\n"
		"\n"
		"The client sends a heartbeat every %d s. At the end of stdin it waits up to\n"
		"%d ms for outstanding results, then exits.\n",
		CLI_TOKEN_TTL, ADMIN_DEFAULT_URL, CLI_HEARTBEAT_SEC,
		CLI_EOF_WAIT_MS);
}

struct cli_options {
	const char *user;
	const char *device;
	const char *token;
	const char *admin;
	const char *gateway;
};

static int parse_options(int argc, char **argv, struct cli_options *o)
{
	static const struct option opts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "device", required_argument, NULL, 'd' },
		{ "token", required_argument, NULL, 't' },
		{ "admin", required_argument, NULL, 'a' },
		{ "gateway", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c;

	o->device = "cli";
	o->gateway = "127.0.0.1:7070";
	o->admin = getenv("IMGW_ADMIN");
	if (!o->admin || !o->admin[0])
		o->admin = ADMIN_DEFAULT_URL;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'u': o->user = optarg; break;
		case 'd': o->device = optarg; break;
		case 't': o->token = optarg; break;
		case 'a': o->admin = optarg; break;
		case 'g': o->gateway = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: return -EINVAL;
		}
	}
	if (optind != argc || !o->user || !o->user[0]) {
		if (optind != argc)
			cli_error("unexpected argument '%s'", argv[optind]);
		else
			cli_error("missing --user");
		return -EINVAL;
	}
	return 0;
}

/* Mints a login token through the admin API, before the loop runs. */
static int cli_mint_token(struct cli *cli, const char *url)
{
	struct admin_client *ac = admin_client_new(cli->base, url, 5);
	int status = 0, err;

	if (!ac) {
		fprintf(stderr, "imgw-cli: invalid admin URL '%s': expected http://HOST:PORT\n",
			url);
		return -EINVAL;
	}
	err = admin_mint_token(ac, cli->user, CLI_TOKEN_TTL, cli->token,
			       sizeof(cli->token), &status);
	if (err == -EPROTO)
		cli_error("minting a token through the bizsvr admin API at %s failed: HTTP %d",
			  admin_client_addr(ac), status);
	else if (err < 0)
		cli_error("minting a token through the bizsvr admin API at %s failed: %s (set --admin, or pass --token)",
			  admin_client_addr(ac), strerror(-err));
	admin_client_free(ac);
	return err;
}

static int cli_connect(struct cli *cli, const char *gateway)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	char host[256], port_text[8];
	uint16_t port;
	int one = 1, rc;

	if (parse_host_port(gateway, host, sizeof(host), &port) < 0) {
		fprintf(stderr, "imgw-cli: invalid --gateway '%s': expected HOST:PORT\n",
			gateway);
		return -EINVAL;
	}
	snprintf(port_text, sizeof(port_text), "%u", port);
	rc = getaddrinfo(host, port_text, &hints, &ai);
	if (rc) {
		cli_error("resolving the gateway host '%s' failed: %s", host,
			  gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	rc = bufferevent_socket_connect(cli->bev, ai->ai_addr,
					(int)ai->ai_addrlen);
	freeaddrinfo(ai);
	if (rc < 0) {
		cli_error("connecting to the gateway at %s failed: %s", gateway,
			  strerror(errno));
		return -ECONNREFUSED;
	}
	setsockopt(bufferevent_getfd(cli->bev), IPPROTO_TCP, TCP_NODELAY, &one,
		   sizeof(one));
	return 0;
}

/* Creates the event base and events. stdin may be a regular file, which
 * epoll rejects, so the base must support any file descriptor. */
static int cli_init(struct cli *cli)
{
	struct event_config *cfg = event_config_new();

	if (!cfg)
		return -ENOMEM;
	event_config_require_features(cfg, EV_FEATURE_FDS);
	cli->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (!cli->base)
		return -ENOMEM;
	cli->bev = bufferevent_socket_new(cli->base, -1, BEV_OPT_CLOSE_ON_FREE);
	cli->lines = evbuffer_new();
	cli->stdin_ev = event_new(cli->base, STDIN_FILENO, EV_READ | EV_PERSIST,
				  cli_stdin_cb, cli);
	cli->heartbeat_ev = event_new(cli->base, -1, EV_PERSIST,
				      cli_heartbeat_cb, cli);
	cli->eof_ev = evtimer_new(cli->base, cli_eof_cb, cli);
	cli->sigint_ev = evsignal_new(cli->base, SIGINT, cli_sigint_cb, cli);
	if (!cli->bev || !cli->lines || !cli->stdin_ev || !cli->heartbeat_ev ||
	    !cli->eof_ev || !cli->sigint_ev)
		return -ENOMEM;
	bufferevent_setcb(cli->bev, cli_read_cb, NULL, cli_event_cb, cli);
	bufferevent_enable(cli->bev, EV_READ);
	evsignal_add(cli->sigint_ev, NULL);
	cli->next_request_id = 1;
	return 0;
}

static void cli_free(struct cli *cli)
{
	if (cli->sigint_ev)
		event_free(cli->sigint_ev);
	if (cli->eof_ev)
		event_free(cli->eof_ev);
	if (cli->heartbeat_ev)
		event_free(cli->heartbeat_ev);
	if (cli->stdin_ev)
		event_free(cli->stdin_ev);
	if (cli->lines)
		evbuffer_free(cli->lines);
	if (cli->bev)
		bufferevent_free(cli->bev);
	if (cli->base)
		event_base_free(cli->base);
}

int main(int argc, char **argv)
{
	struct cli_options o = { 0 };
	struct cli *cli;
	int rc = 1;

	if (parse_options(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	cli = calloc(1, sizeof(*cli));
	if (!cli || cli_init(cli) < 0) {
		fprintf(stderr, "imgw-cli: out of memory\n");
		goto out;
	}
	cli->user = o.user;
	cli->device = o.device;
	cli->gateway = o.gateway;
	if (o.token) {
		snprintf(cli->token, sizeof(cli->token), "%s", o.token);
	} else if (cli_mint_token(cli, o.admin) < 0) {
		goto out;
	}
	if (cli_connect(cli, o.gateway) < 0)
		goto out;
	event_base_dispatch(cli->base);
	rc = cli->exit_code;
out:
	if (cli)
		cli_free(cli);
	free(cli);
	return rc;
}

// SPDX-License-Identifier: MIT
/*
 * imgwctl: the admin command line for the business daemon's HTTP API. Each
 * command makes one request, prints the JSON reply indented, and
 * exits 0, 1 when the request failed, or 2 for a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "admin_client.h"

#define EXIT_USAGE 2
#define CTL_TIMEOUT_SEC 10
#define CTL_TOKEN_TTL 3600
#define CTL_SENDER "system"

struct ctl {
	struct admin_client *ac;
	int argc;
	char **argv;            /* the command's arguments, after its name */
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: imgwctl [--admin URL] COMMAND [ARGS]\n"
		"\n"
		"  --admin URL   admin API of bizsvr (default $IMGW_ADMIN, else %s);\n"
		"                each request times out after %d s\n"
		"  --help        print this help and exit\n"
		"\n"
		"commands:\n"
		"  health                              daemon health\n"
		"  metrics                             Prometheus metrics text\n"
		"  token USER [--ttl SEC]              mint a login token, print only the token\n"
		"      --ttl SEC                       token lifetime in seconds (default %d)\n"
		"  session create [--direct] [--name NAME] [-q] USER...\n"
		"      --direct                        a one-to-one session of two USERs\n"
		"                                      (default: a group)\n"
		"      --name NAME                     session name (default empty)\n"
		"      -q, --quiet                     print only the new session id\n"
		"  session show ID\n"
		"  session super [ID [upgrade|demote|auto]]\n"
		"                                      super-session state of ID, or of\n"
		"                                      every tracked session; upgrade and\n"
		"                                      demote force and pin, auto unpins\n"
		"  members list ID\n"
		"  members add ID USER...\n"
		"  members remove ID USER\n"
		"  push session ID TEXT [--sender NAME]\n"
		"      --sender NAME                   sender shown to members (default \"" CTL_SENDER "\")\n"
		"  push user USER TEXT\n"
		"  user sessions USER\n"
		"  user devices USER\n",
		ADMIN_DEFAULT_URL, CTL_TIMEOUT_SEC, CTL_TOKEN_TTL);
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "imgwctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nrun 'imgwctl --help' for usage\n");
	return EXIT_USAGE;
}

/* Reports a missing or unknown subcommand of a command group such as
 * "session". Returns the usage exit status. */
static int subcommand_error(const char *group, const char *verb,
			    const char *choices)
{
	if (verb[0])
		fprintf(stderr, "imgwctl: unknown %s command '%s': expected %s\n",
			group, verb, choices);
	else
		fprintf(stderr, "imgwctl: %s needs a command: %s\n", group,
			choices);
	fprintf(stderr, "run 'imgwctl --help' for usage\n");
	return EXIT_USAGE;
}

/* Parses a session id. Returns 0 or -EINVAL. */
static int parse_id(const char *text, uint64_t *id)
{
	char *end;

	errno = 0;
	*id = strtoull(text, &end, 10);
	if (errno || end == text || *end || *id == 0 || text[0] == '-')
		return -EINVAL;
	return 0;
}

static int print_json(json_t *json)
{
	char *text = json_dumps(json, JSON_INDENT(2) | JSON_ENCODE_ANY);

	if (!text)
		return 1;
	printf("%s\n", text);
	free(text);
	return 0;
}

/*
 * Sends one request and reports failures. Returns 0 with *reply holding a
 * 2xx reply, or the exit status (1) after printing the error.
 */
static int ctl_call(struct ctl *ctl, enum evhttp_cmd_type method,
		    const char *path, json_t *body, struct admin_reply *reply)
{
	int err = admin_call(ctl->ac, method, path, body, reply);

	if (err < 0) {
		fprintf(stderr, "imgwctl: request to %s failed: %s\n",
			admin_client_addr(ctl->ac), strerror(-err));
		return 1;
	}
	if (reply->status / 100 != 2) {
		fprintf(stderr, "imgwctl: HTTP %d: %s\n", reply->status,
			admin_reply_error(reply));
		admin_reply_free(reply);
		return 1;
	}
	return 0;
}

/* Sends one request and prints the JSON reply. Drops the body reference. */
static int ctl_call_print(struct ctl *ctl, enum evhttp_cmd_type method,
			  const char *path, json_t *body)
{
	struct admin_reply reply;
	int rc = ctl_call(ctl, method, path, body, &reply);

	json_decref(body);
	if (rc)
		return rc;
	if (reply.json)
		rc = print_json(reply.json);
	else
		fwrite(reply.body, 1, reply.body_len, stdout);
	admin_reply_free(&reply);
	return rc;
}

/* Formats a path with one URL-encoded user name: fmt contains one %s. */
static int user_path(char *out, size_t cap, const char *fmt, const char *user)
{
	char *enc = evhttp_uriencode(user, -1, 0);
	int n;

	if (!enc)
		return -ENOMEM;
	n = snprintf(out, cap, fmt, enc);
	free(enc);
	return n < (int)cap ? 0 : -ENAMETOOLONG;
}

static int cmd_health(struct ctl *ctl)
{
	if (ctl->argc != 0)
		return usage_error("health takes no arguments%s", "");
	return ctl_call_print(ctl, EVHTTP_REQ_GET, "/healthz", NULL);
}

static int cmd_metrics(struct ctl *ctl)
{
	if (ctl->argc != 0)
		return usage_error("metrics takes no arguments%s", "");
	return ctl_call_print(ctl, EVHTTP_REQ_GET, "/metrics", NULL);
}

static int cmd_token(struct ctl *ctl)
{
	static const struct option opts[] = {
		{ "ttl", required_argument, NULL, 't' },
		{ 0 }
	};
	struct admin_reply reply;
	const char *token;
	long ttl = CTL_TOKEN_TTL;
	char *end;
	json_t *body;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(ctl->argc + 1, ctl->argv - 1, "", opts,
				NULL)) != -1) {
		if (c != 't')
			return EXIT_USAGE;
		ttl = strtol(optarg, &end, 10);
		if (*end || end == optarg || ttl <= 0 || ttl > 100L * 86400 * 365)
			return usage_error("invalid --ttl '%s': expected seconds > 0", optarg);
	}
	if (ctl->argc + 1 - optind != 1)
		return usage_error("token takes one USER%s", "");
	body = json_pack("{s:s, s:I}", "user_id", ctl->argv[optind - 1],
			 "ttl", (json_int_t)ttl);
	rc = ctl_call(ctl, EVHTTP_REQ_POST, "/v1/tokens", body, &reply);
	json_decref(body);
	if (rc)
		return rc;
	token = json_string_value(json_object_get(reply.json, "token"));
	if (token)
		printf("%s\n", token);
	else
		fprintf(stderr, "imgwctl: reply has no \"token\": %s\n", reply.body);
	admin_reply_free(&reply);
	return token ? 0 : 1;
}

/* Prints only the "session_id" of a session create reply. */
static int session_print_id(const struct admin_reply *reply)
{
	json_t *id = json_object_get(reply->json, "session_id");

	if (!json_is_integer(id)) {
		fprintf(stderr, "imgwctl: reply has no \"session_id\": %.*s\n",
			(int)reply->body_len, reply->body);
		return 1;
	}
	printf("%" JSON_INTEGER_FORMAT "\n", json_integer_value(id));
	return 0;
}

static int session_create(struct ctl *ctl)
{
	static const struct option opts[] = {
		{ "direct", no_argument, NULL, 'd' },
		{ "name", required_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ 0 }
	};
	const char *kind = "group", *name = "";
	struct admin_reply reply;
	json_t *body, *members;
	int c, quiet = 0, rc;

	optind = 0;
	while ((c = getopt_long(ctl->argc + 1, ctl->argv - 1, "q", opts,
				NULL)) != -1) {
		if (c == 'd')
			kind = "direct";
		else if (c == 'n')
			name = optarg;
		else if (c == 'q')
			quiet = 1;
		else
			return EXIT_USAGE;
	}
	if (optind > ctl->argc)
		return usage_error("session create needs at least one USER%s", "");
	members = json_array();
	for (int i = optind - 1; i < ctl->argc; i++)
		json_array_append_new(members, json_string(ctl->argv[i]));
	body = json_pack("{s:s, s:s, s:o}", "kind", kind, "name", name,
			 "members", members);
	if (!quiet)
		return ctl_call_print(ctl, EVHTTP_REQ_POST, "/v1/sessions", body);
	rc = ctl_call(ctl, EVHTTP_REQ_POST, "/v1/sessions", body, &reply);
	json_decref(body);
	if (rc)
		return rc;
	rc = session_print_id(&reply);
	admin_reply_free(&reply);
	return rc;
}

/* Parses the session ID at argv[index]. Returns 0 or the usage exit status. */
static int take_id(struct ctl *ctl, int index, uint64_t *id)
{
	if (index >= ctl->argc)
		return usage_error("missing session ID%s", "");
	if (parse_id(ctl->argv[index], id) < 0)
		return usage_error("invalid session ID '%s': expected a number > 0", ctl->argv[index]);
	return 0;
}

/* session super [ID [ACTION]]: show or force the super-session state. */
static int session_super(struct ctl *ctl)
{
	const char *action;
	char path[80];
	uint64_t id;
	int rc;

	if (ctl->argc == 1)
		return ctl_call_print(ctl, EVHTTP_REQ_GET, "/v1/super", NULL);
	if (ctl->argc > 3)
		return usage_error("usage: session super [ID [upgrade|demote|auto]]%s", "");
	rc = take_id(ctl, 1, &id);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "/v1/sessions/%" PRIu64 "/super", id);
	if (ctl->argc == 2)
		return ctl_call_print(ctl, EVHTTP_REQ_GET, path, NULL);
	action = ctl->argv[2];
	if (strcmp(action, "upgrade") && strcmp(action, "demote") &&
	    strcmp(action, "auto"))
		return usage_error("invalid super action '%s': expected upgrade, demote or auto", action);
	return ctl_call_print(ctl, EVHTTP_REQ_POST, path,
			      json_pack("{s:s}", "action", action));
}

static int cmd_session(struct ctl *ctl)
{
	const char *verb = ctl->argc > 0 ? ctl->argv[0] : "";
	char path[64];
	uint64_t id;
	int rc;

	if (strcmp(verb, "create") == 0) {
		ctl->argc--;
		ctl->argv++;
		return session_create(ctl);
	}
	if (strcmp(verb, "super") == 0)
		return session_super(ctl);
	if (strcmp(verb, "show") != 0)
		return subcommand_error("session", verb, "create, show or super");
	if (ctl->argc != 2)
		return usage_error("usage: session show ID%s", "");
	rc = take_id(ctl, 1, &id);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "/v1/sessions/%" PRIu64, id);
	return ctl_call_print(ctl, EVHTTP_REQ_GET, path, NULL);
}

static int members_add(struct ctl *ctl, uint64_t id)
{
	json_t *users = json_array();
	char path[64];

	if (ctl->argc < 3) {
		json_decref(users);
		return usage_error("usage: members add ID USER...%s", "");
	}
	for (int i = 2; i < ctl->argc; i++)
		json_array_append_new(users, json_string(ctl->argv[i]));
	snprintf(path, sizeof(path), "/v1/sessions/%" PRIu64 "/members", id);
	return ctl_call_print(ctl, EVHTTP_REQ_POST, path,
			      json_pack("{s:o}", "users", users));
}

/* Removes one member, failing when the user was not a member. */
static int members_remove(struct ctl *ctl, uint64_t id)
{
	const char *user = ctl->argc == 3 ? ctl->argv[2] : "";
	struct admin_reply reply;
	char path[512], fmt[64];
	json_t *removed;
	int rc;

	if (ctl->argc != 3)
		return usage_error("usage: members remove ID USER%s", "");
	snprintf(fmt, sizeof(fmt), "/v1/sessions/%" PRIu64 "/members/%%s", id);
	if (user_path(path, sizeof(path), fmt, user) < 0)
		return usage_error("user name too long: '%s'", user);
	rc = ctl_call(ctl, EVHTTP_REQ_DELETE, path, NULL, &reply);
	if (rc)
		return rc;
	removed = json_object_get(reply.json, "removed");
	if (!json_is_integer(removed)) {
		fprintf(stderr, "imgwctl: reply has no \"removed\": %.*s\n",
			(int)reply.body_len, reply.body);
		rc = 1;
	} else if (json_integer_value(removed) == 0) {
		fprintf(stderr, "imgwctl: %s is not a member of session %" PRIu64 "\n",
			user, id);
		rc = 1;
	} else {
		rc = print_json(reply.json);
	}
	admin_reply_free(&reply);
	return rc;
}

static int cmd_members(struct ctl *ctl)
{
	const char *verb = ctl->argc > 0 ? ctl->argv[0] : "";
	char path[512];
	uint64_t id;
	int rc;

	if (strcmp(verb, "list") && strcmp(verb, "add") && strcmp(verb, "remove"))
		return subcommand_error("members", verb, "list, add or remove");
	rc = take_id(ctl, 1, &id);
	if (rc)
		return rc;
	if (strcmp(verb, "add") == 0)
		return members_add(ctl, id);
	if (strcmp(verb, "list") == 0) {
		if (ctl->argc != 2)
			return usage_error("usage: members list ID%s", "");
		snprintf(path, sizeof(path), "/v1/sessions/%" PRIu64 "/members", id);
		return ctl_call_print(ctl, EVHTTP_REQ_GET, path, NULL);
	}
	return members_remove(ctl, id);
}

static int push_session(struct ctl *ctl)
{
	static const struct option opts[] = {
		{ "sender", required_argument, NULL, 's' },
		{ 0 }
	};
	const char *sender = CTL_SENDER;
	char path[64];
	uint64_t id;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(ctl->argc + 1, ctl->argv - 1, "", opts,
				NULL)) != -1) {
		if (c != 's')
			return EXIT_USAGE;
		sender = optarg;
	}
	/* What is left: "session" ID TEXT. */
	if (ctl->argc + 1 - optind != 3)
		return usage_error("usage: push session ID TEXT [--sender NAME]%s", "");
	rc = take_id(ctl, optind, &id);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "/v1/sessions/%" PRIu64 "/messages", id);
	return ctl_call_print(ctl, EVHTTP_REQ_POST, path,
			      json_pack("{s:s, s:s}", "sender", sender,
					"payload", ctl->argv[optind + 1]));
}

static int cmd_push(struct ctl *ctl)
{
	const char *verb = ctl->argc > 0 ? ctl->argv[0] : "";
	char path[512];

	if (strcmp(verb, "session") == 0)
		return push_session(ctl);
	if (strcmp(verb, "user") != 0)
		return subcommand_error("push", verb, "session or user");
	if (ctl->argc != 3)
		return usage_error("usage: push user USER TEXT%s", "");
	if (user_path(path, sizeof(path), "/v1/users/%s/messages", ctl->argv[1]) < 0)
		return usage_error("user name too long: '%s'", ctl->argv[1]);
	return ctl_call_print(ctl, EVHTTP_REQ_POST, path,
			      json_pack("{s:s}", "payload", ctl->argv[2]));
}

static int cmd_user(struct ctl *ctl)
{
	const char *verb = ctl->argc > 0 ? ctl->argv[0] : "";
	const char *fmt;
	char path[512];

	if (strcmp(verb, "sessions") == 0)
		fmt = "/v1/users/%s/sessions";
	else if (strcmp(verb, "devices") == 0)
		fmt = "/v1/users/%s/devices";
	else
		return subcommand_error("user", verb, "sessions or devices");
	if (ctl->argc != 2)
		return usage_error("usage: user sessions|devices USER%s", "");
	if (user_path(path, sizeof(path), fmt, ctl->argv[1]) < 0)
		return usage_error("user name too long: '%s'", ctl->argv[1]);
	return ctl_call_print(ctl, EVHTTP_REQ_GET, path, NULL);
}

static const struct ctl_command {
	const char *name;
	int (*run)(struct ctl *ctl);
} ctl_commands[] = {
	{ "health", cmd_health },
	{ "metrics", cmd_metrics },
	{ "token", cmd_token },
	{ "session", cmd_session },
	{ "members", cmd_members },
	{ "push", cmd_push },
	{ "user", cmd_user },
};

static int ctl_run(struct ctl *ctl, const char *name)
{
	for (size_t i = 0; i < sizeof(ctl_commands) / sizeof(ctl_commands[0]); i++) {
		if (strcmp(ctl_commands[i].name, name) == 0)
			return ctl_commands[i].run(ctl);
	}
	return usage_error("unknown command '%s'", name);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "admin", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *url = getenv("IMGW_ADMIN");
	struct event_base *base;
	struct ctl ctl = { 0 };
	int c, rc;

	if (!url || !url[0])
		url = ADMIN_DEFAULT_URL;
	/* '+' stops at the command name, so its own options stay for it. */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (c == 'a') {
			url = optarg;
		} else if (c == 'h') {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	base = event_base_new();
	if (!base) {
		fprintf(stderr, "imgwctl: cannot create an event base\n");
		return 1;
	}
	ctl.ac = admin_client_new(base, url, CTL_TIMEOUT_SEC);
	if (!ctl.ac) {
		rc = usage_error("invalid admin URL '%s': expected http://HOST:PORT", url);
		goto out_base;
	}
	ctl.argc = argc - optind - 1;
	ctl.argv = argv + optind + 1;
	rc = ctl_run(&ctl, argv[optind]);
	admin_client_free(ctl.ac);
out_base:
	event_base_free(base);
	return rc;
}

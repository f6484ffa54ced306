// SPDX-License-Identifier: MIT
/*
 * Daemon processes for the integration tests: a temp dir, free ports, a
 * random secret, bizsvr and gateways started as children with their stderr
 * in a log file each, health waits, clean stops and restarts on the same
 * ports. A daemon that exits non-zero or by a signal fails the test: this is
 * how sanitizer reports (exit code 66) reach the test result.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "token.h"

#define LOG_TAIL_LINES 30

struct harness *harness_current;

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void print_log_tail(const struct daemon_proc *d)
{
	char *lines[LOG_TAIL_LINES] = { 0 };
	char buf[2048];
	size_t n = 0;
	FILE *f;

	if (!d->log_path[0])
		return;
	f = fopen(d->log_path, "r");
	if (!f) {
		fprintf(stderr, "--- %s: cannot open log %s: %s\n", d->name,
			d->log_path, strerror(errno));
		return;
	}
	while (fgets(buf, sizeof(buf), f)) {
		free(lines[n % LOG_TAIL_LINES]);
		lines[n % LOG_TAIL_LINES] = strdup(buf);
		n++;
	}
	fclose(f);
	fprintf(stderr, "--- last lines of %s (%s)\n", d->name, d->log_path);
	for (size_t i = n > LOG_TAIL_LINES ? n - LOG_TAIL_LINES : 0; i < n;
	     i++) {
		fputs(lines[i % LOG_TAIL_LINES], stderr);
		free(lines[i % LOG_TAIL_LINES]);
		lines[i % LOG_TAIL_LINES] = NULL;
	}
}

static void dump_logs(struct harness *h)
{
	if (!h)
		return;
	print_log_tail(&h->biz);
	for (int i = 0; i < h->gw_count; i++)
		print_log_tail(&h->gw[i]);
	fprintf(stderr, "--- test dir kept: %s\n", h->dir);
}

void harness_fail(const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "FAILED at %s:%d: %s\n", file, line, msg);
	dump_logs(harness_current);
	print_error("%s\n", msg);
	_fail(file, line);
	abort();        /* _fail() jumps back into cmocka */
}

/* Returns whether port is free on 127.0.0.1 right now. */
static int port_is_free(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int ok;

	H_CHECK(fd >= 0, "socket() for a free port failed: %s",
		strerror(errno));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(port);
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/*
 * Picks a free loopback port in 20000-32767, below Linux's default
 * ephemeral range (32768-60999): a port from bind(0) is one that any
 * outgoing connection on the machine may take before the daemon binds it,
 * and that happened under load. Ports handed out once are not reused by
 * this process.
 * XXX: Another process may still take the port between the check and the
 * daemon's bind; the start then fails with the bind error in the daemon log.
 */
static uint16_t free_port(void)
{
	static uint16_t given[512];
	static size_t n_given;
	static int seeded;

	if (!seeded) {
		srandom((unsigned int)getpid() ^ (unsigned int)time(NULL));
		seeded = 1;
	}
	for (int tries = 0; tries < 2000; tries++) {
		uint16_t port = (uint16_t)(20000 + random() % 12768);
		size_t i;

		for (i = 0; i < n_given && given[i] != port; i++)
			;
		if (i < n_given || !port_is_free(port))
			continue;
		if (n_given < sizeof(given) / sizeof(given[0]))
			given[n_given++] = port;
		return port;
	}
	H_CHECK(0, "no free loopback port in 20000-32767 after 2000 tries");
	return 0;
}

static void random_hex(char *out, size_t bytes)
{
	uint8_t raw[64];
	int fd = open("/dev/urandom", O_RDONLY);

	H_CHECK(fd >= 0 && bytes <= sizeof(raw), "cannot open /dev/urandom");
	H_CHECK(read(fd, raw, bytes) == (ssize_t)bytes,
		"short read from /dev/urandom");
	close(fd);
	for (size_t i = 0; i < bytes; i++)
		sprintf(out + 2 * i, "%02x", raw[i]);
}

/* Returns the directory holding imgw and bizsvr: $IMGW_BUILD, or three
 * levels above this test binary (BUILD/tests/integ/test_x). */
const char *harness_build_dir(void)
{
	static char dir[PATH_MAX];
	ssize_t n;

	if (getenv("IMGW_BUILD"))
		return getenv("IMGW_BUILD");
	if (dir[0])
		return dir;
	n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	H_CHECK(n > 0, "IMGW_BUILD is not set and /proc/self/exe is unreadable");
	dir[n] = '\0';
	for (int i = 0; i < 3; i++) {
		char *slash = strrchr(dir, '/');

		if (slash)
			*slash = '\0';
	}
	return dir;
}

static void spawn(struct daemon_proc *d, char *const argv[])
{
	pid_t pid;
	int fd;

	H_CHECK(access(argv[0], X_OK) == 0,
		"daemon binary %s is missing or not executable: build it with make",
		argv[0]);
	fd = open(d->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		  0644);
	H_CHECK(fd >= 0, "cannot open log %s: %s", d->log_path,
		strerror(errno));
	fflush(NULL);
	pid = fork();
	H_CHECK(pid >= 0, "fork for %s failed: %s", d->name, strerror(errno));
	if (pid == 0) {
		int null_fd = open("/dev/null", O_RDONLY);

		/* Never outlive a crashed test. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(null_fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		dprintf(2, "harness: exec %s failed: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	close(fd);
	d->pid = pid;
}

#define HARNESS_MAX_ARGS 64

static void biz_spawn(struct harness *h)
{
	char bin[PATH_MAX], listen[32], http[32], max_payload[24];
	char *argv[HARNESS_MAX_ARGS] = {
		bin, "--listen", listen, "--http", http, "--db", h->db_path,
		"--secret", h->secret, "--max-payload", max_payload,
		"--log-level", "info", NULL,
	};
	size_t n = 13;

	for (size_t i = 0; h->biz_args && h->biz_args[i]; i++) {
		H_CHECK(n + 1 < HARNESS_MAX_ARGS,
			"more than %d bizsvr arguments", HARNESS_MAX_ARGS - 1);
		argv[n++] = (char *)h->biz_args[i];
	}
	argv[n] = NULL;
	snprintf(bin, sizeof(bin), "%s/bizsvr", harness_build_dir());
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", h->biz.port);
	snprintf(http, sizeof(http), "127.0.0.1:%u", h->biz.http_port);
	snprintf(max_payload, sizeof(max_payload), "%zu", h->max_payload);
	spawn(&h->biz, argv);
}

static void gw_spawn(struct harness *h, struct daemon_proc *d)
{
	char bin[PATH_MAX], listen[32], http[32], biz[32];
	char heartbeat[16], login[16], out_cap[24], max_frame[24];
	char *argv[HARNESS_MAX_ARGS] = {
		bin, "--listen", listen, "--http", http, "--bizsvr", biz,
		"--node-id", d->node_id, "--max-frame", max_frame,
		"--heartbeat-timeout", heartbeat, "--login-timeout", login,
		"--out-cap", out_cap, "--log-level", "info", NULL,
	};
	size_t n = 0;

	while (argv[n])
		n++;
	if (d->opts.drop_super_acks)
		argv[n++] = "--fault-drop-super-acks";
	for (size_t i = 0; d->opts.args && d->opts.args[i]; i++) {
		H_CHECK(n + 1 < HARNESS_MAX_ARGS,
			"more than %d %s arguments", HARNESS_MAX_ARGS - 1,
			d->name);
		argv[n++] = (char *)d->opts.args[i];
	}
	argv[n] = NULL;
	snprintf(bin, sizeof(bin), "%s/imgw", harness_build_dir());
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", d->port);
	snprintf(http, sizeof(http), "127.0.0.1:%u", d->http_port);
	snprintf(biz, sizeof(biz), "127.0.0.1:%u",
		 d->opts.bizsvr_port ? d->opts.bizsvr_port : h->biz.port);
	snprintf(heartbeat, sizeof(heartbeat), "%d", d->opts.heartbeat_timeout);
	snprintf(login, sizeof(login), "%d", d->opts.login_timeout);
	snprintf(out_cap, sizeof(out_cap), "%zu", d->opts.out_cap);
	snprintf(max_frame, sizeof(max_frame), "%zu", d->opts.max_frame);
	spawn(d, argv);
}

/* Fails the test when d has exited. */
static void check_alive(struct daemon_proc *d)
{
	int status;
	pid_t r = waitpid(d->pid, &status, WNOHANG);

	if (r == 0)
		return;
	d->pid = 0;
	if (WIFEXITED(status))
		harness_fail(__FILE__, __LINE__,
			     "%s exited early with status %d", d->name,
			     WEXITSTATUS(status));
	harness_fail(__FILE__, __LINE__, "%s was killed early by signal %d",
		     d->name, WTERMSIG(status));
}

/* Returns 1 when d's /healthz reports status "ok" and, for a gateway, the
 * expected upstream state: up = 1 for "up", 0 for "down", -1 for either. */
static int healthy(struct daemon_proc *d, int up)
{
	char path[] = "/healthz", *body = NULL;
	const char *status, *upstream;
	json_t *j;
	int code, ok;

	code = http_call(d->http_port, "GET", path, NULL, &body);
	if (code != 200) {
		free(body);
		return 0;
	}
	j = json_loads(body, 0, NULL);
	free(body);
	if (!j)
		return 0;
	status = json_string_value(json_object_get(j, "status"));
	upstream = json_string_value(json_object_get(j, "upstream"));
	ok = status && strcmp(status, "ok") == 0;
	if (ok && up >= 0)
		ok = upstream && strcmp(upstream, up ? "up" : "down") == 0;
	json_decref(j);
	return ok;
}

static void wait_healthy(struct daemon_proc *d, int up)
{
	static const char *const upstream_names[] = { "any", "down", "up" };
	uint64_t deadline = client_now_ms(1) + HARNESS_START_MS;

	for (;;) {
		check_alive(d);
		if (healthy(d, up))
			return;
		H_CHECK(client_now_ms(1) < deadline,
			"%s not healthy (expected upstream: %s) within %d ms on http port %u",
			d->name, upstream_names[up + 1], HARNESS_START_MS,
			d->http_port);
		sleep_ms(50);
	}
}

void harness_wait_upstream(struct harness *h, int i, int up)
{
	wait_healthy(&h->gw[i], up);
}

void harness_wait_gateways(struct harness *h, int count)
{
	uint64_t deadline = client_now_ms(1) + HARNESS_START_MS;
	json_int_t seen = -1;

	for (;;) {
		json_t *j = harness_healthz(&h->biz);

		seen = json_integer_value(json_object_get(j, "gateways"));
		json_decref(j);
		if (seen == count)
			return;
		H_CHECK(client_now_ms(1) < deadline,
			"bizsvr reports %lld gateways after %d ms, expected %d",
			(long long)seen, HARNESS_START_MS, count);
		sleep_ms(50);
	}
}

/* Waits for d to exit after sig. Returns 1 when it exited cleanly. */
static int reap(struct daemon_proc *d, int sig, int require_clean)
{
	uint64_t deadline = client_now_ms(1) + HARNESS_START_MS;
	int status;
	pid_t r;

	if (!d->pid)
		return 1;
	kill(d->pid, sig);
	while ((r = waitpid(d->pid, &status, WNOHANG)) == 0) {
		if (client_now_ms(1) >= deadline) {
			fprintf(stderr, "%s did not exit within %d ms after signal %d; killing it\n",
				d->name, HARNESS_START_MS, sig);
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &status, 0);
			d->pid = 0;
			return 0;
		}
		sleep_ms(10);
	}
	d->pid = 0;
	if (r < 0) {
		fprintf(stderr, "waitpid for %s failed: %s\n", d->name,
			strerror(errno));
		return 0;
	}
	if (!require_clean)
		return 1;
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "%s was killed by signal %d after signal %d, expected exit 0\n",
			d->name, WTERMSIG(status), sig);
		return 0;
	}
	if (WEXITSTATUS(status) != 0) {
		fprintf(stderr, "%s exited with status %d after signal %d, expected 0 (66: AddressSanitizer report, 67: UBSan)\n",
			d->name, WEXITSTATUS(status), sig);
		return 0;
	}
	return 1;
}

static void stop_checked(struct daemon_proc *d, int sig)
{
	if (!reap(d, sig, sig == SIGTERM)) {
		print_log_tail(d);
		harness_fail(__FILE__, __LINE__,
			     "%s did not exit cleanly after signal %d", d->name,
			     sig);
	}
}

void harness_gw_stop(struct harness *h, int i, int sig)
{
	stop_checked(&h->gw[i], sig);
}

void harness_gw_start(struct harness *h, int i)
{
	gw_spawn(h, &h->gw[i]);
	wait_healthy(&h->gw[i], 1);
}

void harness_biz_stop(struct harness *h, int sig)
{
	stop_checked(&h->biz, sig);
}

void harness_biz_start(struct harness *h)
{
	biz_spawn(h);
	wait_healthy(&h->biz, -1);
}

static void gw_setup(struct harness *h, int i, const struct gw_options *opt)
{
	struct daemon_proc *d = &h->gw[i];
	char log_path[sizeof(d->log_path)];
	int n;

	snprintf(d->name, sizeof(d->name), "gw%d", i);
	snprintf(d->node_id, sizeof(d->node_id), "node-%d", i);
	/* Built apart: gcc cannot tell that h->dir and h->gw[i] are
	 * disjoint when i comes from h->gw_count. */
	n = snprintf(log_path, sizeof(log_path), "%s/gw%d.log", h->dir, i);
	H_CHECK(n > 0 && (size_t)n < sizeof(log_path),
		"log path for gw%d in %s is too long", i, h->dir);
	memcpy(d->log_path, log_path, sizeof(log_path));
	d->port = free_port();
	d->http_port = free_port();
	d->opts.heartbeat_timeout = 60;
	d->opts.login_timeout = 10;
	d->opts.out_cap = 1024 * 1024;
	d->opts.max_frame = FRAME_DEFAULT_MAX_BODY;
	if (!opt)
		return;
	if (opt->heartbeat_timeout)
		d->opts.heartbeat_timeout = opt->heartbeat_timeout;
	if (opt->login_timeout)
		d->opts.login_timeout = opt->login_timeout;
	if (opt->out_cap)
		d->opts.out_cap = opt->out_cap;
	if (opt->max_frame)
		d->opts.max_frame = opt->max_frame;
	d->opts.drop_super_acks = opt->drop_super_acks;
	d->opts.bizsvr_port = opt->bizsvr_port;
	d->opts.args = opt->args;
}

int harness_gw_add(struct harness *h, const struct gw_options *opt)
{
	int i = h->gw_count;

	H_CHECK(i >= 0 && i < HARNESS_MAX_GW,
		"cannot add a gateway: %d run already", i);
	gw_setup(h, i, opt);
	h->gw_count++;
	gw_spawn(h, &h->gw[i]);
	wait_healthy(&h->gw[i], -1);
	return i;
}

struct harness *harness_start(int gw_count, const struct gw_options *opts)
{
	return harness_start_args(gw_count, opts, NULL);
}

struct harness *harness_start_args(int gw_count, const struct gw_options *opts,
				   const char *const *biz_args)
{
	struct harness *h = calloc(1, sizeof(*h));

	H_CHECK(h != NULL, "out of memory");
	/* Set first, so the teardown stops whatever starts before a failure. */
	harness_current = h;
	H_CHECK(gw_count >= 1 && gw_count <= HARNESS_MAX_GW,
		"gateway count %d out of range 1..%d", gw_count,
		HARNESS_MAX_GW);
	signal(SIGPIPE, SIG_IGN);
	strcpy(h->dir, "/tmp/imgw-integ-XXXXXX");
	H_CHECK(mkdtemp(h->dir) != NULL, "mkdtemp failed: %s",
		strerror(errno));
	random_hex(h->secret, 16);
	snprintf(h->db_path, sizeof(h->db_path), "%s/imgw.db", h->dir);
	h->max_payload = 32768;
	strcpy(h->biz.name, "bizsvr");
	snprintf(h->biz.log_path, sizeof(h->biz.log_path), "%s/bizsvr.log",
		 h->dir);
	h->biz.port = free_port();
	h->biz.http_port = free_port();
	h->gw_count = gw_count;
	h->biz_args = biz_args;
	for (int i = 0; i < gw_count; i++)
		gw_setup(h, i, opts ? &opts[i] : NULL);

	harness_biz_start(h);
	for (int i = 0; i < gw_count; i++)
		gw_spawn(h, &h->gw[i]);
	for (int i = 0; i < gw_count; i++)
		wait_healthy(&h->gw[i], 1);
	harness_wait_gateways(h, gw_count);
	return h;
}

static void remove_dir(const char *dir)
{
	char cmd[PATH_MAX + 16];

	/* The dir holds only the harness's own logs and database files. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

void harness_stop(struct harness *h)
{
	int clean = 1;

	if (!h)
		return;
	/* Gateways first, so bizsvr also handles their links closing. */
	for (int i = 0; i < h->gw_count; i++)
		if (!reap(&h->gw[i], SIGTERM, 1)) {
			print_log_tail(&h->gw[i]);
			clean = 0;
		}
	if (!reap(&h->biz, SIGTERM, 1)) {
		print_log_tail(&h->biz);
		clean = 0;
	}
	/* IMGW_TEST_KEEP=1 keeps the logs of passing tests for reading. */
	if (clean && !getenv("IMGW_TEST_KEEP"))
		remove_dir(h->dir);
	else
		fprintf(stderr, "--- test dir kept: %s\n", h->dir);
	if (harness_current == h)
		harness_current = NULL;
	free(h);
	if (!clean) {
		print_error("a daemon did not exit cleanly on SIGTERM\n");
		_fail(__FILE__, __LINE__);
	}
}

int harness_teardown(void **state)
{
	harness_stop(harness_current);
	return 0;
}

void harness_token(struct harness *h, const char *user, int64_t expires,
		   char *out)
{
	int err = token_mint(h->secret, user, expires, out, TOKEN_MAX_LEN + 1);

	H_CHECK(err == 0, "token_mint for user %s failed: %s", user,
		strerror(-err));
}

// SPDX-License-Identifier: MIT
/*
 * Settings both daemons must reject before they start: numbers with a sign
 * or a leading space, and a --config file that is a directory or an endless
 * stream of NUL bytes. Each run must exit with status 2 and name the bad
 * option or file on stderr, within the start bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define ARGS_MAX 16

/* Flags after the one under test. Should that one pass, --listen with port
 * 0 still stops the daemon before it binds, with a message that names
 * --listen instead of the expected one. */
static const char *const guard_args[] = { "--listen", "127.0.0.1:0" };
/* Reads the child's output into out until EOF or the start bound. Returns
 * 0, or -ETIMEDOUT. */
static int read_output(int fd, char *out, size_t cap)
{
	struct timespec start, now;
	size_t len = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long waited_ms;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		waited_ms = (now.tv_sec - start.tv_sec) * 1000 +
			    (now.tv_nsec - start.tv_nsec) / 1000000;
		if (waited_ms >= HARNESS_START_MS)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)(HARNESS_START_MS - waited_ms)) <= 0)
			continue;
		n = read(fd, out + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == cap - 1)
			break;
	}
	out[len] = '\0';
	return 0;
}

/*
 * Runs BUILD/daemon with args and stores its stderr and stdout in out.
 * Returns its exit status, or -1 when it was killed by a signal or ran past
 * the start bound (then it is killed).
 */
static int run_daemon(const char *daemon, const char *const *args,
		      char *out, size_t cap)
{
	char bin[PATH_MAX];
	char *argv[ARGS_MAX + 1] = { bin };
	int pipe_fds[2], status, err, argc = 1;
	pid_t pid;

	snprintf(bin, sizeof(bin), "%s/%s", harness_build_dir(), daemon);
	for (; args[argc - 1]; argc++) {
		H_CHECK(argc < ARGS_MAX, "too many arguments for %s", daemon);
		argv[argc] = (char *)args[argc - 1];
	}
	argv[argc] = NULL;
	H_CHECK(pipe2(pipe_fds, O_CLOEXEC) == 0, "pipe failed: %s",
		strerror(errno));
	fflush(NULL);
	pid = fork();
	H_CHECK(pid >= 0, "fork failed: %s", strerror(errno));
	if (pid == 0) {
		dup2(pipe_fds[1], STDERR_FILENO);
		dup2(pipe_fds[1], STDOUT_FILENO);
		execv(bin, argv);
		_exit(127);
	}
	close(pipe_fds[1]);
	err = read_output(pipe_fds[0], out, cap);
	close(pipe_fds[0]);
	if (err)
		kill(pid, SIGKILL);
	H_CHECK(waitpid(pid, &status, 0) == pid, "waitpid failed: %s",
		strerror(errno));
	if (err || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* Runs daemon with flag and value (after a token secret for bizsvr), then
 * guard_args, and expects exit status 2 with output that contains expected. */
static void expect_rejected(const char *daemon, const char *flag,
			    const char *value, const char *expected)
{
	const char *args[ARGS_MAX] = { 0 };
	char out[4096];
	size_t n = 0;
	int status;

	if (strcmp(daemon, "bizsvr") == 0) {
		args[n++] = "--secret";
		args[n++] = "test-secret";
	}
	args[n++] = flag;
	args[n++] = value;
	args[n++] = guard_args[0];
	args[n++] = guard_args[1];
	status = run_daemon(daemon, args, out, sizeof(out));
	H_CHECK(status == 2, "%s %s '%s': exit status %d, want 2; output: %s",
		daemon, flag, value, status, out);
	H_CHECK(strstr(out, expected), "%s %s '%s': output lacks '%s': %s",
		daemon, flag, value, expected, out);
}

static void config_number_forms(void **state)
{
	static const char *const bad[] = { "+5", " 5", "-0", "5 ", "0x5" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		expect_rejected("bizsvr", "--super-upgrade-rate", bad[i],
				"invalid --super-upgrade-rate");
		expect_rejected("bizsvr", "--sync-limit", bad[i],
				"invalid --sync-limit");
		expect_rejected("imgw", "--block-after", bad[i],
				"for --block-after");
	}
}

/* A plain number passes, so the next bad flag is the one named. */
static void config_number_plain(void **state)
{
	const char *biz[] = { "--secret", "s", "--sync-limit", "5",
			      "--listen", "127.0.0.1:0", NULL };
	const char *gw[] = { "--block-after", "5", "--listen", "127.0.0.1:0",
			     NULL };
	char out[4096];
	int status;

	status = run_daemon("bizsvr", biz, out, sizeof(out));
	H_CHECK(status == 2, "bizsvr: exit status %d, want 2", status);
	H_CHECK(strstr(out, "invalid --listen") && !strstr(out, "sync-limit"),
		"bizsvr did not name --listen alone: %s", out);
	status = run_daemon("imgw", gw, out, sizeof(out));
	H_CHECK(status == 2, "imgw: exit status %d, want 2", status);
	H_CHECK(strstr(out, "for --listen") && !strstr(out, "block-after"),
		"imgw did not name --listen alone: %s", out);
}

static void config_file_not_regular(void **state)
{
	static const char *const daemons[] = { "bizsvr", "imgw" };

	for (size_t i = 0; i < 2; i++) {
		expect_rejected(daemons[i], "--config", "/tmp",
				"Is a directory");
		expect_rejected(daemons[i], "--config", "/dev/zero",
				"/dev/zero:1");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(config_number_forms),
		cmocka_unit_test(config_number_plain),
		cmocka_unit_test(config_file_not_regular),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

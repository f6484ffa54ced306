// SPDX-License-Identifier: MIT
/*
 * The supervisor of the gateway's worker processes; see workers.h. It forks
 * before any event base or socket exists, so each worker starts from a clean
 * process, and waits for signals with sigtimedwait() and no event loop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httputil.h"
#include "log.h"
#include "workers.h"

/* A worker that dies sooner than this after its start is restarted only
 * after the same delay, so a worker that cannot start does not spin. */
#define WORKER_RESTART_DELAY_SEC 1

struct worker {
	pid_t pid;              /* 0 when not running */
	time_t started;
	time_t restart_at;      /* 0: no restart pending */
};

/* Sets the node id and admin HTTP address of worker index in cfg. */
static int worker_config(struct gw_config *cfg, unsigned int index)
{
	char host[CONFIG_ADDR_LEN], suffix[16];
	uint16_t port;
	unsigned int http_port;
	int len;

	cfg->worker_index = index;
	snprintf(suffix, sizeof(suffix), "-w%u", index);
	if (strlen(cfg->node_id) + strlen(suffix) >= sizeof(cfg->node_id))
		return -ENAMETOOLONG;
	strcat(cfg->node_id, suffix);
	if (parse_host_port(cfg->http, host, sizeof(host), &port) < 0)
		return -EINVAL;
	http_port = port + index;
	if (http_port > 65535)
		return -ERANGE;
	if (strchr(host, ':'))
		len = snprintf(cfg->http, sizeof(cfg->http), "[%s]:%u", host,
			       http_port);
	else
		len = snprintf(cfg->http, sizeof(cfg->http), "%s:%u", host,
			       http_port);
	return len < (int)sizeof(cfg->http) ? 0 : -ENAMETOOLONG;
}

/* Forks worker index. Returns 0 in the child, with cfg set up for it, 1 in
 * the parent, or a negative errno when fork() failed. A child whose
 * settings are invalid exits with status 2. */
static int worker_spawn(struct worker *w, unsigned int index,
			struct gw_config *cfg, const sigset_t *old_mask)
{
	pid_t pid = fork();
	int err;

	if (pid < 0) {
		err = -errno;
		pr_warn("forking worker %u failed: %s", index, strerror(-err));
		return err;
	}
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, old_mask, NULL);
		err = worker_config(cfg, index);
		if (err) {
			pr_error("worker %u: invalid node id or --http port: %s",
				 index, strerror(-err));
			_exit(2);
		}
		return 0;
	}
	w->pid = pid;
	w->started = time(NULL);
	w->restart_at = 0;
	pr_info("started worker %u as pid %d", index, (int)pid);
	return 1;
}

/* Reaps exited workers and schedules their restart. */
static void workers_reap(struct worker *ws, unsigned int n)
{
	int wstatus;
	pid_t pid;

	while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
		for (unsigned int i = 0; i < n; i++) {
			time_t now = time(NULL);

			if (ws[i].pid != pid)
				continue;
			ws[i].pid = 0;
			if (WIFSIGNALED(wstatus))
				pr_warn("worker %u pid %d was killed by %s; restarting it",
					i, (int)pid, strsignal(WTERMSIG(wstatus)));
			else
				pr_warn("worker %u pid %d exited with status %d; restarting it",
					i, (int)pid, WEXITSTATUS(wstatus));
			ws[i].restart_at = now;
			if (now - ws[i].started < WORKER_RESTART_DELAY_SEC)
				ws[i].restart_at += WORKER_RESTART_DELAY_SEC;
			break;
		}
	}
}

static unsigned int workers_running(const struct worker *ws, unsigned int n)
{
	unsigned int running = 0;

	for (unsigned int i = 0; i < n; i++)
		running += ws[i].pid != 0;
	return running;
}

/* Sends SIGTERM to every worker and waits until all have exited. */
static void workers_stop(struct worker *ws, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		if (ws[i].pid)
			kill(ws[i].pid, SIGTERM);
	}
	while (workers_running(ws, n)) {
		int wstatus;
		pid_t pid = waitpid(-1, &wstatus, 0);

		if (pid < 0 && errno != EINTR)
			break;
		for (unsigned int i = 0; i < n; i++) {
			if (pid > 0 && ws[i].pid == pid)
				ws[i].pid = 0;
		}
	}
}

/* Restarts the workers whose delay is over. Returns 0 in a restarted
 * child and 1 in the supervisor. */
static int workers_restart_due(struct worker *ws, unsigned int n,
			       struct gw_config *cfg, const sigset_t *old)
{
	time_t now = time(NULL);
	int rc;

	for (unsigned int i = 0; i < n; i++) {
		if (ws[i].pid || !ws[i].restart_at || ws[i].restart_at > now)
			continue;
		rc = worker_spawn(&ws[i], i, cfg, old);
		if (rc == 0)
			return 0;
		if (rc < 0)
			ws[i].restart_at = now + WORKER_RESTART_DELAY_SEC;
	}
	return 1;
}

static int workers_supervise(struct worker *ws, unsigned int n,
			     struct gw_config *cfg, const sigset_t *mask,
			     const sigset_t *old)
{
	struct timespec tick = { .tv_sec = WORKER_RESTART_DELAY_SEC };
	siginfo_t info;
	int sig;

	for (;;) {
		sig = sigtimedwait(mask, &info, &tick);
		if (sig == SIGTERM || sig == SIGINT) {
			pr_info("received %s, stopping %u workers",
				strsignal(sig), workers_running(ws, n));
			workers_stop(ws, n);
			return 1;
		}
		workers_reap(ws, n);
		if (workers_restart_due(ws, n, cfg, old) == 0)
			return 0;
	}
}

int workers_start(struct gw_config *cfg, int *status)
{
	struct worker ws[64] = { 0 };
	unsigned int n = cfg->workers;
	sigset_t mask, old;
	int rc;

	*status = 0;
	if (n <= 1)
		return 0;
	if (n > sizeof(ws) / sizeof(ws[0]))
		return -EINVAL;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, &old) < 0)
		return -errno;
	for (unsigned int i = 0; i < n; i++) {
		rc = worker_spawn(&ws[i], i, cfg, &old);
		if (rc == 0)
			return 0;
		if (rc < 0) {
			/* Half a set of workers is no gateway: stop them. */
			workers_stop(ws, n);
			*status = 1;
			return 1;
		}
	}
	pr_info("supervising %u workers on %s", n, cfg->listen);
	return workers_supervise(ws, n, cfg, &mask, &old);
}

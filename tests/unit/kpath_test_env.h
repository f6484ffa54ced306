/* SPDX-License-Identifier: MIT */
/*
 * Environment for the tests that load BPF programs: checks for root and
 * BPF, and gives the process its own mount namespace with a fresh bpffs,
 * so that what the tests pin can never touch a running gateway's
 * /sys/fs/bpf/imgw and vanishes with the process even after a crash.
 */
#ifndef IMGW_KPATH_TEST_ENV_H
#define IMGW_KPATH_TEST_ENV_H

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TEST_PIN_DIR "/sys/fs/bpf/imgw-test"

/* Returns 0 when BPF tests can run, else writes why into reason[]. */
static inline int test_env_enter(char *reason, size_t size)
{
	if (geteuid() != 0) {
		snprintf(reason, size, "needs root to load BPF programs");
		return -EPERM;
	}
	if (unshare(CLONE_NEWNS) < 0) {
		snprintf(reason, size, "unshare(CLONE_NEWNS) failed: %s", strerror(errno));
		return -errno;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("bpf", "/sys/fs/bpf", "bpf", 0, NULL) < 0) {
		snprintf(reason, size, "cannot mount a private bpffs on /sys/fs/bpf: %s", strerror(errno));
		return -errno;
	}
	if (mkdir(TEST_PIN_DIR, 0700) < 0 && errno != EEXIST) {
		snprintf(reason, size, "cannot create %s: %s", TEST_PIN_DIR, strerror(errno));
		return -errno;
	}
	return 0;
}

static inline double test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#endif

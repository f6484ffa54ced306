// SPDX-License-Identifier: MIT
/*
 * imgw-kpath-bench: one super-session broadcast workload through a userspace
 * send() loop and through the kernel path (userspace/kpath.c), side by
 * side. Receivers live in a child process, so that 10,000 socket pairs fit
 * the per-process open files limit; it reports the moment the last client
 * has a frame's last byte. One broadcast is in flight at a time.
 * Needs root: it loads the fan-out program into a private bpffs.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../userspace/kpath.h"
#include "imgw_fanout.skel.h"
#include "log.h"

#define PIN_DIR "/sys/fs/bpf/imgw-bench"

enum bench_path { PATH_USER, PATH_KERNEL, PATH_KERNEL_ONE_MSG };

struct phase {
	__u32 len;
	__u32 rounds;
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static double cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec +
	       ru.ru_stime.tv_sec * 1e6 + ru.ru_stime.tv_usec;
}

static void die(const char *what)
{
	fprintf(stderr, "imgw-kpath-bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Child: reads every client until each has len more bytes. */
static void receiver_round(int ep, const int *fds, size_t n, size_t len,
			   size_t *got, char *buf)
{
	struct epoll_event ev[256];
	size_t done = 0, idx;
	ssize_t r;
	int k, i;

	memset(got, 0, n * sizeof(*got));
	while (done < n) {
		k = epoll_wait(ep, ev, 256, 5000);
		if (k <= 0) {
			fprintf(stderr, "imgw-kpath-bench: receivers timed out with %zu of %zu clients complete\n", done, n);
			exit(1);
		}
		for (i = 0; i < k; i++) {
			idx = ev[i].data.u64;
			while ((r = recv(fds[idx], buf, 65536, MSG_DONTWAIT)) > 0) {
				if (got[idx] < len && got[idx] + r >= len)
					done++;
				got[idx] += r;
			}
		}
	}
}

static void receiver_main(int lport, size_t n, int ctl_rd, int res_wr)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLIN };
	size_t *got = calloc(n, sizeof(*got)), i;
	int *fds = calloc(n, sizeof(*fds));
	char *buf = malloc(65536);
	struct phase ph;
	double t;
	int ep;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr.sin_port = htons(lport);
	ep = epoll_create1(0);
	for (i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&addr,
					  sizeof(addr)) < 0)
			die("receiver connect");
		ev.data.u64 = i;
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
	}
	while (read(ctl_rd, &ph, sizeof(ph)) == sizeof(ph)) {
		for (i = 0; i < ph.rounds; i++) {
			receiver_round(ep, fds, n, ph.len, got, buf);
			t = now_us();
			if (write(res_wr, &t, sizeof(t)) != sizeof(t))
				exit(1);
		}
	}
	exit(0);
}

struct bench {
	size_t n;
	int *srv;
	uint64_t *ids;
	uint32_t *sent;
	struct kpath *kp;
	int ctl_wr, res_rd;
	pid_t child;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void send_round(struct bench *b, enum bench_path path,
		       const char *frame, size_t len)
{
	size_t i;

	if (path == PATH_USER) {
		for (i = 0; i < b->n; i++)
			if (send(b->srv[i], frame, len, 0) != (ssize_t)len)
				die("send");
		return;
	}
	kpath_set_send_mode(b->kp, path == PATH_KERNEL ? KPATH_SEND_MMSG :
							  KPATH_SEND_ONE_MSG);
	if (kpath_broadcast(b->kp, 0, frame, len, b->ids, b->n, b->sent))
		die("kpath_broadcast");
	/* In a closed loop nothing fills up; finish any short count anyway. */
	for (i = 0; i < b->n; i++)
		if (b->sent[i] < len &&
		    send(b->srv[i], frame + b->sent[i], len - b->sent[i], 0) < 0)
			die("send");
}

static void run_phase(struct bench *b, enum bench_path path, size_t len,
		      size_t rounds)
{
	static const char *const names[] = { "userspace send() loop",
		"kernel, sendmmsg", "kernel, one sendmsg" };
	struct phase ph = { len, rounds };
	double *lat = calloc(rounds, sizeof(double));
	double t0, t_start, cpu0, t_end, done;
	char frame[1024];
	size_t r;

	memset(frame, 'x', sizeof(frame));
	if (write(b->ctl_wr, &ph, sizeof(ph)) != sizeof(ph))
		die("write phase");
	cpu0 = cpu_us();
	t_start = now_us();
	for (r = 0; r < rounds; r++) {
		t0 = now_us();
		send_round(b, path, frame, len);
		if (read(b->res_rd, &done, sizeof(done)) != sizeof(done))
			die("read result");
		lat[r] = done - t0;
	}
	t_end = now_us();
	qsort(lat, rounds, sizeof(double), cmp_double);
	printf("%6zu x %4zu B  %-22s %9.0f %11.0f %8.3f %9.0f %9.0f %9.0f\n",
	       b->n, len, names[path], rounds / ((t_end - t_start) / 1e6),
	       rounds * b->n / ((t_end - t_start) / 1e6),
	       (cpu_us() - cpu0) / (rounds * b->n), lat[rounds / 2],
	       lat[rounds * 99 / 100], lat[rounds - 1]);
	free(lat);
}

static void bench_start(struct bench *b, size_t n, struct kpath *kp)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t alen = sizeof(addr);
	int lfd, ctl[2], res[2], one = 1;
	size_t i;

	memset(b, 0, sizeof(*b));
	b->n = n;
	b->kp = kp;
	b->srv = calloc(n, sizeof(*b->srv));
	b->ids = calloc(n, sizeof(*b->ids));
	b->sent = calloc(n, sizeof(*b->sent));
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(lfd, 4096) ||
	    getsockname(lfd, (struct sockaddr *)&addr, &alen))
		die("listen on 127.0.0.1");
	if (pipe(ctl) || pipe(res))
		die("pipe");
	b->child = fork();
	if (b->child < 0)
		die("fork");
	if (b->child == 0) {
		close(lfd);
		close(ctl[1]);
		close(res[0]);
		receiver_main(ntohs(addr.sin_port), n, ctl[0], res[1]);
	}
	close(ctl[0]);
	close(res[1]);
	b->ctl_wr = ctl[1];
	b->res_rd = res[0];
	for (i = 0; i < n; i++) {
		b->srv[i] = accept(lfd, NULL, NULL);
		if (b->srv[i] < 0)
			die("accept");
		setsockopt(b->srv[i], IPPROTO_TCP, TCP_NODELAY, &one,
			   sizeof(one));
		b->ids[i] = i + 1;
		if (kpath_sock_add(kp, b->ids[i], b->srv[i]))
			die("kpath_sock_add");
	}
	close(lfd);
}

static void bench_stop(struct bench *b)
{
	size_t i;

	close(b->ctl_wr);
	close(b->res_rd);
	waitpid(b->child, NULL, 0);
	for (i = 0; i < b->n; i++) {
		kpath_sock_remove(b->kp, b->ids[i]);
		close(b->srv[i]);
	}
	free(b->srv);
	free(b->ids);
	free(b->sent);
}

/* Loads the fan-out program into a bpffs of our own mount namespace. */
static struct imgw_fanout *load_private(void)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = PIN_DIR);
	struct imgw_fanout *skel;

	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("bpf", "/sys/fs/bpf", "bpf", 0, NULL))
		die("private bpffs (needs root)");
	mkdir(PIN_DIR, 0700);
	skel = imgw_fanout__open_opts(&opts);
	if (!skel || imgw_fanout__load(skel))
		die("load the fan-out program");
	if (bpf_prog_attach(bpf_program__fd(skel->progs.imgw_fanout),
			    bpf_map__fd(skel->maps.imgw_ctl),
			    BPF_SK_MSG_VERDICT, 0))
		die("attach the fan-out program");
	return skel;
}

int main(int argc, char **argv)
{
	static const size_t counts[] = { 1000, 10000 };
	static const size_t sizes[] = { 128, 1024 };
	int quick = argc > 1 && !strcmp(argv[1], "--quick");
	struct imgw_fanout *skel;
	struct kpath_stats st;
	struct bench b;
	struct kpath *kp;
	char reason[256];
	size_t c, s, rounds;

	setvbuf(stdout, NULL, _IOLBF, 0);
	log_init("imgw-kpath-bench", LOG_LEVEL_WARN);
	libbpf_set_print(NULL);
	skel = load_private();
	kp = kpath_open(PIN_DIR, reason, sizeof(reason));
	if (!kp) {
		fprintf(stderr, "imgw-kpath-bench: %s\n", reason);
		return 1;
	}
	printf("%-14s %-22s %9s %11s %8s %9s %9s %9s\n", "recipients", "path",
	       "bcast/s", "deliv/s", "cpu us/d", "p50 us", "p99 us", "max us");
	for (c = 0; c < 2; c++) {
		bench_start(&b, counts[c], kp);
		rounds = counts[c] == 1000 ? 400 : 60;
		if (quick)
			rounds /= 10;
		for (s = 0; s < 2; s++) {
			run_phase(&b, PATH_USER, sizes[s], rounds);
			run_phase(&b, PATH_KERNEL, sizes[s], rounds);
		}
		if (c == 0)
			run_phase(&b, PATH_KERNEL_ONE_MSG, 128, 10);
		bench_stop(&b);
	}
	kpath_get_stats(kp, &st);
	printf("kernel path: %llu broadcasts, %llu deliveries, %llu partial, %llu fallbacks, %llu errors\n",
	       (unsigned long long)st.broadcasts,
	       (unsigned long long)st.deliveries,
	       (unsigned long long)st.partial,
	       (unsigned long long)(st.fallback_full + st.fallback_no_socket +
				    st.fallback_not_member +
				    st.fallback_ctl_busy),
	       (unsigned long long)st.errors);
	kpath_close(kp);
	bpf_object__unpin_maps(skel->obj, NULL);
	imgw_fanout__destroy(skel);
	return 0;
}

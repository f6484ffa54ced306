// SPDX-License-Identifier: MIT
/*
 * Tests of the XDP guard (bpf/imgw_guard.bpf.c): blocklist, SYN limit and
 * pass-through cases through BPF_PROG_TEST_RUN on hand-built packets, then
 * end to end through a veth pair into a network namespace created here,
 * with the program attached through libxdp.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "imgw_guard.skel.h"
#include "imgw_shared.h"
#include "kpath_test_env.h"

#define GW_PORT 8443
#define SYN_RATE 100
#define SYN_BURST 3

struct pkt {
	struct ethhdr eth;
	union {
		struct {
			struct iphdr ip;
			struct tcphdr tcp;
		} __attribute__((packed)) v4;
		struct {
			struct ipv6hdr ip;
			struct tcphdr tcp;
		} __attribute__((packed)) v6;
	};
} __attribute__((packed));

static struct imgw_guard *guard_load(__u32 rate, __u32 burst, __u16 port)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = TEST_PIN_DIR);
	struct imgw_guard *skel;

	skel = imgw_guard__open_opts(&opts);
	assert_non_null(skel);
	skel->rodata->syn_rate = rate;
	skel->rodata->syn_burst = burst;
	skel->rodata->gw_port = port;
	assert_int_equal(imgw_guard__load(skel), 0);
	return skel;
}

static void guard_unload(struct imgw_guard *skel)
{
	bpf_object__unpin_maps(skel->obj, NULL);
	imgw_guard__destroy(skel);
}

static int setup(void **state)
{
	*state = guard_load(SYN_RATE, SYN_BURST, GW_PORT);
	return 0;
}

static int teardown(void **state)
{
	guard_unload(*state);
	return 0;
}

/* Builds an Ethernet + IPv4 + TCP packet; proto other than TCP keeps the
 * same bytes but changes the IP protocol field. */
static size_t pkt_v4(struct pkt *p, const char *src, __u8 proto, int syn,
		     int ack, __u16 dport)
{
	memset(p, 0, sizeof(*p));
	p->eth.h_proto = htons(ETH_P_IP);
	p->v4.ip.version = 4;
	p->v4.ip.ihl = 5;
	p->v4.ip.ttl = 64;
	p->v4.ip.protocol = proto;
	p->v4.ip.tot_len = htons(sizeof(p->v4));
	inet_pton(AF_INET, src, &p->v4.ip.saddr);
	inet_pton(AF_INET, "192.0.2.1", &p->v4.ip.daddr);
	p->v4.tcp.source = htons(40000);
	p->v4.tcp.dest = htons(dport);
	p->v4.tcp.doff = 5;
	p->v4.tcp.syn = syn;
	p->v4.tcp.ack = ack;
	return sizeof(p->eth) + sizeof(p->v4);
}

static size_t pkt_v6(struct pkt *p, const char *src, int syn, __u16 dport)
{
	memset(p, 0, sizeof(*p));
	p->eth.h_proto = htons(ETH_P_IPV6);
	p->v6.ip.version = 6;
	p->v6.ip.nexthdr = IPPROTO_TCP;
	p->v6.ip.hop_limit = 64;
	p->v6.ip.payload_len = htons(sizeof(struct tcphdr));
	inet_pton(AF_INET6, src, &p->v6.ip.saddr);
	inet_pton(AF_INET6, "2001:db8::1", &p->v6.ip.daddr);
	p->v6.tcp.source = htons(40000);
	p->v6.tcp.dest = htons(dport);
	p->v6.tcp.doff = 5;
	p->v6.tcp.syn = syn;
	return sizeof(p->eth) + sizeof(p->v6);
}

static int run(struct imgw_guard *skel, struct pkt *p, size_t len)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p,
		    .data_size_in = len, .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(
				 bpf_program__fd(skel->progs.imgw_guard), &opts),
			 0);
	return opts.retval;
}

static __u64 counter(struct imgw_guard *skel, __u32 idx)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 vals[ncpu], sum = 0;
	int i;

	assert_int_equal(bpf_map_lookup_elem(
				 bpf_map__fd(skel->maps.imgw_xdp_stats), &idx,
				 vals), 0);
	for (i = 0; i < ncpu; i++)
		sum += vals[i];
	return sum;
}

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void block_v4(struct imgw_guard *skel, const char *addr, __u32 plen,
		     __u64 expires_ns)
{
	struct imgw_lpm_v4 key = { .prefixlen = plen };
	struct imgw_block val = { .expires_ns = expires_ns };

	inet_pton(AF_INET, addr, key.addr);
	assert_int_equal(bpf_map_update_elem(
				 bpf_map__fd(skel->maps.imgw_block_v4), &key,
				 &val, BPF_ANY), 0);
}

static void test_guard_blocklist_v4(void **state)
{
	struct imgw_guard *skel = *state;
	struct pkt p;
	size_t len;

	block_v4(skel, "198.51.100.0", 24, 0);
	block_v4(skel, "203.0.113.0", 24, now_ns() + 60000000000ULL);
	block_v4(skel, "203.0.113.128", 25, now_ns() - 1);

	len = pkt_v4(&p, "198.51.100.77", IPPROTO_TCP, 0, 1, 80);
	assert_int_equal(run(skel, &p, len), XDP_DROP);
	len = pkt_v4(&p, "198.51.101.77", IPPROTO_TCP, 0, 1, 80);
	assert_int_equal(run(skel, &p, len), XDP_PASS);
	/* Live /24 entry; a UDP packet from it is dropped as well. */
	len = pkt_v4(&p, "203.0.113.5", IPPROTO_UDP, 0, 0, 53);
	assert_int_equal(run(skel, &p, len), XDP_DROP);
	/* The longer, expired /25 wins the match and lets it through. */
	len = pkt_v4(&p, "203.0.113.200", IPPROTO_TCP, 0, 1, 80);
	assert_int_equal(run(skel, &p, len), XDP_PASS);

	assert_int_equal(counter(skel, IMGW_XC_DROP_BLOCKED), 2);
	assert_int_equal(counter(skel, IMGW_XC_BLOCK_EXPIRED), 1);
}

static void test_guard_blocklist_v6(void **state)
{
	struct imgw_guard *skel = *state;
	struct imgw_lpm_v6 key = { .prefixlen = 48 };
	struct imgw_block val = { 0 };
	struct pkt p;
	size_t len;

	inet_pton(AF_INET6, "2001:db8:42::", key.addr);
	assert_int_equal(bpf_map_update_elem(
				 bpf_map__fd(skel->maps.imgw_block_v6), &key,
				 &val, BPF_ANY), 0);
	len = pkt_v6(&p, "2001:db8:42::9", 0, 80);
	assert_int_equal(run(skel, &p, len), XDP_DROP);
	len = pkt_v6(&p, "2001:db8:43::9", 0, 80);
	assert_int_equal(run(skel, &p, len), XDP_PASS);
	assert_int_equal(counter(skel, IMGW_XC_DROP_BLOCKED), 1);
}

static void test_guard_syn_limit(void **state)
{
	struct imgw_guard *skel = *state;
	__u64 empty_ns, max_tokens;
	unsigned int passed;
	struct pkt p;
	size_t len;
	int i;

	len = pkt_v4(&p, "192.0.2.10", IPPROTO_TCP, 1, 0, GW_PORT);
	for (i = 0; i < SYN_BURST; i++)
		assert_int_equal(run(skel, &p, len), XDP_PASS);
	/* The drop shows the bucket held less than one token after this. */
	empty_ns = now_ns();
	assert_int_equal(run(skel, &p, len), XDP_DROP);

	/* Another source has its own bucket. */
	len = pkt_v4(&p, "192.0.2.11", IPPROTO_TCP, 1, 0, GW_PORT);
	assert_int_equal(run(skel, &p, len), XDP_PASS);

	/*
	 * At 100 SYN/s a 25 ms sleep refills at least two tokens. A loaded
	 * machine may sleep longer, so the upper bound comes from the time
	 * that really passed since the bucket was known to be empty.
	 */
	len = pkt_v4(&p, "192.0.2.10", IPPROTO_TCP, 1, 0, GW_PORT);
	usleep(25000);
	for (passed = 0; passed < 100; passed++) {
		if (run(skel, &p, len) != XDP_PASS)
			break;
	}
	max_tokens = (now_ns() - empty_ns) * SYN_RATE / 1000000000ULL + 1;
	if (max_tokens > SYN_BURST)
		max_tokens = SYN_BURST;
	if (passed < 2 || passed > max_tokens)
		fail_msg("%u SYNs passed after the refill, expected 2 to %llu",
			 passed, (unsigned long long)max_tokens);

	/* Drops: one before the sleep and the one that ended the loop. */
	assert_int_equal(counter(skel, IMGW_XC_DROP_SYN_RATE), 2);
	assert_int_equal(counter(skel, IMGW_XC_SYN_PASSED),
			 SYN_BURST + 1 + passed);
}

static void test_guard_syn_limit_v6(void **state)
{
	struct imgw_guard *skel = *state;
	struct pkt p;
	size_t len;
	int i;

	len = pkt_v6(&p, "2001:db8::77", 1, GW_PORT);
	for (i = 0; i < SYN_BURST; i++)
		assert_int_equal(run(skel, &p, len), XDP_PASS);
	assert_int_equal(run(skel, &p, len), XDP_DROP);
}

static void test_guard_passes_other_traffic(void **state)
{
	struct imgw_guard *skel = *state;
	struct pkt p;
	size_t len;
	int i;

	for (i = 0; i < 10; i++) {
		/* SYN+ACK, plain ACK, UDP, SYN to another port. */
		len = pkt_v4(&p, "192.0.2.20", IPPROTO_TCP, 1, 1, GW_PORT);
		assert_int_equal(run(skel, &p, len), XDP_PASS);
		len = pkt_v4(&p, "192.0.2.20", IPPROTO_TCP, 0, 1, GW_PORT);
		assert_int_equal(run(skel, &p, len), XDP_PASS);
		len = pkt_v4(&p, "192.0.2.20", IPPROTO_UDP, 1, 0, GW_PORT);
		assert_int_equal(run(skel, &p, len), XDP_PASS);
		len = pkt_v4(&p, "192.0.2.20", IPPROTO_TCP, 1, 0, 22);
		assert_int_equal(run(skel, &p, len), XDP_PASS);
	}
	/* ARP and a truncated IPv4 header. */
	memset(&p, 0, sizeof(p));
	p.eth.h_proto = htons(ETH_P_ARP);
	assert_int_equal(run(skel, &p, sizeof(p.eth) + 28), XDP_PASS);
	len = pkt_v4(&p, "192.0.2.20", IPPROTO_TCP, 1, 0, GW_PORT);
	assert_int_equal(run(skel, &p, sizeof(p.eth) + 10), XDP_PASS);
	assert_int_equal(counter(skel, IMGW_XC_DROP_SYN_RATE), 0);
	assert_int_equal(counter(skel, IMGW_XC_DROP_BLOCKED), 0);
}

/* Namespace of the end-to-end test while it exists, for its teardown. */
static char veth_ns[32];

struct netns_env {
	char ns[32], host_if[16], ns_if[16];
	char host_ip[16], ns_ip[16];
	int orig_ns_fd;
	int ifindex;		/* of ns_if, inside the namespace */
};

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* Creates the namespace and a veth pair; 10.222.N.0/30 with N from the pid. */
static void netns_create(struct netns_env *e)
{
	int n = getpid() % 250;

	snprintf(e->ns, sizeof(e->ns), "imgwt%d", getpid());
	snprintf(e->host_if, sizeof(e->host_if), "imgwa%d", getpid());
	snprintf(e->ns_if, sizeof(e->ns_if), "imgwb%d", getpid());
	snprintf(e->host_ip, sizeof(e->host_ip), "10.222.%d.1", n);
	snprintf(e->ns_ip, sizeof(e->ns_ip), "10.222.%d.2", n);
	assert_int_equal(sh("ip netns add %s", e->ns), 0);
	assert_int_equal(sh("ip link add %s type veth peer name %s netns %s",
			    e->host_if, e->ns_if, e->ns), 0);
	assert_int_equal(sh("ip addr add %s/30 dev %s && ip link set %s up",
			    e->host_ip, e->host_if, e->host_if), 0);
	assert_int_equal(sh("ip -n %s addr add %s/30 dev %s && ip -n %s link set %s up && ip -n %s link set lo up",
			    e->ns, e->ns_ip, e->ns_if, e->ns, e->ns_if, e->ns),
			 0);
}

static void netns_enter(struct netns_env *e)
{
	char path[64];
	int fd;

	e->orig_ns_fd = open("/proc/self/ns/net", O_RDONLY);
	assert_true(e->orig_ns_fd >= 0);
	snprintf(path, sizeof(path), "/run/netns/%s", e->ns);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(setns(fd, CLONE_NEWNET), 0);
	close(fd);
}

static void netns_leave(struct netns_env *e)
{
	assert_int_equal(setns(e->orig_ns_fd, CLONE_NEWNET), 0);
	close(e->orig_ns_fd);
}

/* Returns 1 if a TCP connect from the host side completes within ms. */
static int try_connect(const char *ip, int port, int ms)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	struct pollfd pfd;
	int fd, err = 0, ok;
	socklen_t elen = sizeof(err);

	addr.sin_port = htons(port);
	inet_pton(AF_INET, ip, &addr.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	connect(fd, (struct sockaddr *)&addr, sizeof(addr));
	pfd.fd = fd;
	pfd.events = POLLOUT;
	ok = poll(&pfd, 1, ms) == 1 &&
	     !getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) && !err;
	close(fd);
	return ok;
}

static struct xdp_program *attach_guard(struct imgw_guard *skel, int ifindex,
					enum xdp_attach_mode *mode)
{
	struct xdp_program *xp;

	xp = xdp_program__from_fd(bpf_program__fd(skel->progs.imgw_guard));
	assert_false(libxdp_get_error(xp));
	*mode = XDP_MODE_NATIVE;
	if (xdp_program__attach(xp, ifindex, XDP_MODE_NATIVE, 0)) {
		*mode = XDP_MODE_SKB;
		assert_int_equal(xdp_program__attach(xp, ifindex, XDP_MODE_SKB,
						     0), 0);
	}
	return xp;
}

/*
 * A client in the root namespace connects through the veth pair to a
 * listener behind the guard: accepted, then dropped once its /32 is
 * blocked, then accepted again after the entry is removed.
 */
static void test_guard_veth_end_to_end(void **state)
{
	struct imgw_guard *skel;
	struct netns_env e;
	struct sockaddr_in addr = { .sin_family = AF_INET };
	struct imgw_lpm_v4 key = { .prefixlen = 32 };
	struct imgw_block val = { 0 };
	enum xdp_attach_mode mode;
	struct xdp_program *xp;
	int lfd, port = 20000 + getpid() % 30000;

	(void)state;
	netns_create(&e);
	snprintf(veth_ns, sizeof(veth_ns), "%s", e.ns);
	netns_enter(&e);
	skel = guard_load(0, 1, 0);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	addr.sin_port = htons(port);
	inet_pton(AF_INET, e.ns_ip, &addr.sin_addr);
	assert_int_equal(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(lfd, 16), 0);
	e.ifindex = if_nametoindex(e.ns_if);
	assert_true(e.ifindex > 0);
	xp = attach_guard(skel, e.ifindex, &mode);
	netns_leave(&e);
	print_message("veth: guard attached in %s mode\n",
		      mode == XDP_MODE_NATIVE ? "native" : "generic");

	assert_true(try_connect(e.ns_ip, port, 5000));

	inet_pton(AF_INET, e.host_ip, key.addr);
	assert_int_equal(bpf_map_update_elem(
				 bpf_map__fd(skel->maps.imgw_block_v4), &key,
				 &val, BPF_ANY), 0);
	assert_false(try_connect(e.ns_ip, port, 300));
	assert_true(counter(skel, IMGW_XC_DROP_BLOCKED) >= 1);

	assert_int_equal(bpf_map_delete_elem(
				 bpf_map__fd(skel->maps.imgw_block_v4), &key), 0);
	assert_true(try_connect(e.ns_ip, port, 5000));

	netns_enter(&e);
	assert_int_equal(xdp_program__detach(xp, e.ifindex, mode, 0), 0);
	netns_leave(&e);
	xdp_program__close(xp);
	close(lfd);
	guard_unload(skel);
	assert_int_equal(sh("ip netns del %s", e.ns), 0);
	veth_ns[0] = 0;
}

/* Deletes the namespace, and the veth pair with it, even after a failure. */
static int veth_teardown(void **state)
{
	(void)state;
	if (veth_ns[0])
		sh("ip netns del %s 2>/dev/null", veth_ns);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_guard_blocklist_v4, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_guard_blocklist_v6, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_guard_syn_limit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_guard_syn_limit_v6, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_guard_passes_other_traffic,
						setup, teardown),
		cmocka_unit_test_teardown(test_guard_veth_end_to_end,
					  veth_teardown),
	};
	char reason[256];

	if (test_env_enter(reason, sizeof(reason))) {
		printf("skipped: %s\n", reason);
		return 0;
	}
	if (access("/run/netns", F_OK) && mkdir("/run/netns", 0755)) {
		printf("skipped: cannot create /run/netns: %s\n", strerror(errno));
		return 0;
	}
	libbpf_set_print(NULL);
	libxdp_set_print(NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

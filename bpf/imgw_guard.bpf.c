// SPDX-License-Identifier: MIT
/*
 * XDP guard for the gateway's ingress interface: drops packets from blocked
 * source prefixes (IPv4 and IPv6 LPM tries, each entry with an expiry) and
 * new TCP connections (SYN without ACK) from a source over its SYN rate
 * (token bucket per source address). Everything else passes: non-IP,
 * non-TCP, non-SYN, and packets this parser does not understand.
 */
#define IMGW_MAPS_GUARD
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include "imgw_maps.h"

#define NSEC_PER_SEC 1000000000ULL
/* Refill at most this long a gap, so elapsed_ns * syn_rate cannot overflow. */
#define MAX_REFILL_NS (1000ULL * NSEC_PER_SEC)

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* New TCP connections per second and per source; 0 turns the limit off. */
const volatile __u32 syn_rate = 0;
/* SYNs a source may send at once before the rate applies. */
const volatile __u32 syn_burst = 1;
/* Gateway port (host order) whose SYNs are limited; 0 means every port. */
const volatile __u16 gw_port = 0;

static __always_inline void guard_count(__u32 idx)
{
	__u64 *val = bpf_map_lookup_elem(&imgw_xdp_stats, &idx);

	if (val)
		*val += 1;
}

/* Returns XDP_DROP for a live blocklist entry, else XDP_PASS. */
static __always_inline int guard_check_block(struct imgw_block *blk)
{
	if (!blk)
		return XDP_PASS;
	if (blk->expires_ns && blk->expires_ns <= bpf_ktime_get_ns()) {
		guard_count(IMGW_XC_BLOCK_EXPIRED);
		return XDP_PASS;
	}
	guard_count(IMGW_XC_DROP_BLOCKED);
	return XDP_DROP;
}

/*
 * Takes one token from the source's bucket. Two CPUs may update one bucket
 * at once and lose an update; the limit is approximate by that much.
 */
static __always_inline int guard_syn_allowed(struct imgw_src_key *src)
{
	__u64 cap = (__u64)syn_burst * NSEC_PER_SEC;
	__u64 now = bpf_ktime_get_ns();
	struct imgw_syn_bucket *b;
	__u64 elapsed, tokens;

	b = bpf_map_lookup_elem(&imgw_syn, src);
	if (!b) {
		struct imgw_syn_bucket fresh = {
			.tokens = cap - NSEC_PER_SEC,
			.last_ns = now,
		};

		if (cap < NSEC_PER_SEC)
			return 0;
		bpf_map_update_elem(&imgw_syn, src, &fresh, BPF_ANY);
		return 1;
	}

	elapsed = now > b->last_ns ? now - b->last_ns : 0;
	if (elapsed > MAX_REFILL_NS)
		elapsed = MAX_REFILL_NS;
	tokens = b->tokens + elapsed * syn_rate;
	if (tokens > cap)
		tokens = cap;
	b->last_ns = now;
	if (tokens < NSEC_PER_SEC) {
		b->tokens = tokens;
		return 0;
	}
	b->tokens = tokens - NSEC_PER_SEC;
	return 1;
}

/* Applies the SYN limit to a TCP header starting at l4; passes the rest. */
static __always_inline int guard_tcp(void *l4, void *end,
				     struct imgw_src_key *src)
{
	struct tcphdr *th = l4;

	if ((void *)(th + 1) > end)
		return XDP_PASS;
	if (!th->syn || th->ack)
		return XDP_PASS;
	if (!syn_rate)
		return XDP_PASS;
	if (gw_port && th->dest != bpf_htons(gw_port))
		return XDP_PASS;
	if (!guard_syn_allowed(src)) {
		guard_count(IMGW_XC_DROP_SYN_RATE);
		return XDP_DROP;
	}
	guard_count(IMGW_XC_SYN_PASSED);
	return XDP_PASS;
}

static __always_inline int guard_ipv4(void *l3, void *end)
{
	struct imgw_src_key src = { .family = 4 };
	struct imgw_lpm_v4 key = { .prefixlen = 32 };
	struct iphdr *iph = l3;
	__u32 hlen;
	int verdict;

	if ((void *)(iph + 1) > end)
		return XDP_PASS;
	__builtin_memcpy(key.addr, &iph->saddr, 4);
	verdict = guard_check_block(bpf_map_lookup_elem(&imgw_block_v4, &key));
	if (verdict != XDP_PASS)
		return verdict;

	/* Only the first fragment carries the TCP header. */
	if (iph->protocol != IPPROTO_TCP ||
	    (iph->frag_off & bpf_htons(0x1fff)))
		return XDP_PASS;
	hlen = iph->ihl * 4;
	if (hlen < sizeof(*iph))
		return XDP_PASS;
	__builtin_memcpy(src.addr, &iph->saddr, 4);
	return guard_tcp(l3 + hlen, end, &src);
}

/* XXX: IPv6 packets with extension headers before TCP skip the SYN limit. */
static __always_inline int guard_ipv6(void *l3, void *end)
{
	struct imgw_src_key src = { .family = 6 };
	struct imgw_lpm_v6 key = { .prefixlen = 128 };
	struct ipv6hdr *ip6 = l3;
	int verdict;

	if ((void *)(ip6 + 1) > end)
		return XDP_PASS;
	__builtin_memcpy(key.addr, &ip6->saddr, 16);
	verdict = guard_check_block(bpf_map_lookup_elem(&imgw_block_v6, &key));
	if (verdict != XDP_PASS)
		return verdict;

	if (ip6->nexthdr != IPPROTO_TCP)
		return XDP_PASS;
	__builtin_memcpy(src.addr, &ip6->saddr, 16);
	return guard_tcp(ip6 + 1, end, &src);
}

SEC("xdp")
int imgw_guard(struct xdp_md *ctx)
{
	void *end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return guard_ipv4(eth + 1, end);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return guard_ipv6(eth + 1, end);
	return XDP_PASS;
}

/* SPDX-License-Identifier: MIT */
/*
 * Structs and constants shared by the BPF programs and their userspace
 * callers (loader, kernel fan-out engine, tests). Fixed-width uapi types only,
 * so that both clang -target bpf and gcc see the same layout.
 */
#ifndef IMGW_BPF_SHARED_H
#define IMGW_BPF_SHARED_H

#include <linux/types.h>

/* Recipients per fan-out call: IOV_MAX, the most messages one sendmmsg takes. */
#define IMGW_FANOUT_MAX 1024

/* Outcome of one recipient in a fan-out call, written by the sk_msg program. */
enum imgw_fanout_status {
	IMGW_FANOUT_PENDING = 0,	/* the program has not run for it */
	IMGW_FANOUT_REDIRECTED = 1,	/* its bytes went to its socket */
	IMGW_FANOUT_NO_SOCKET = 2,	/* conn id not in the sockhash */
	IMGW_FANOUT_NOT_MEMBER = 3,	/* conn id not in the session's set */
};

/*
 * Per-call state of one control socket, keyed by the control socket's local
 * port. Userspace writes it before each sendmmsg batch; the program takes
 * conn_ids[next] for each message and records status[] for it.
 */
struct imgw_fanout_call {
	__u64 session_id;	/* 0: skip the membership check */
	__u32 frame_len;	/* bytes per recipient */
	__u32 count;		/* entries used in conn_ids[] */
	__u32 next;		/* index of the next recipient */
	__u32 pad;
	__u64 conn_ids[IMGW_FANOUT_MAX];
	__u8 status[IMGW_FANOUT_MAX];	/* enum imgw_fanout_status */
};

/* Key of the session member set: one entry per (session, connection). */
struct imgw_member_key {
	__u64 session_id;
	__u64 conn_id;
};

/* Indexes of the fan-out program's per-CPU counters. */
enum imgw_fanout_counter {
	IMGW_FC_REDIRECTED = 0,	/* messages redirected to a client socket */
	IMGW_FC_NO_SOCKET,	/* recipient missing from the sockhash */
	IMGW_FC_NOT_MEMBER,	/* recipient not in the session's member set */
	IMGW_FC_NO_CALL,	/* no call state for this control socket */
	IMGW_FC_PAST_END,	/* more messages than recipients in the call */
	IMGW_FC_MAX,
};

/* LPM trie keys: prefixlen first, as the kernel's struct bpf_lpm_trie_key. */
struct imgw_lpm_v4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct imgw_lpm_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Blocklist value: CLOCK_MONOTONIC nanoseconds after which it stops, 0: never. */
struct imgw_block {
	__u64 expires_ns;
};

/* Source of a SYN for the rate limit; IPv4 uses addr[0..3], family 4 or 6. */
struct imgw_src_key {
	__u32 family;
	__u8 addr[16];
};

/*
 * Token bucket of one source. tokens is in units of 1/rate second times
 * 10^9 (one SYN costs 10^9), so refill is elapsed_ns * rate without division.
 */
struct imgw_syn_bucket {
	__u64 tokens;
	__u64 last_ns;
};

/* Indexes of the XDP program's per-CPU counters. */
enum imgw_xdp_counter {
	IMGW_XC_DROP_BLOCKED = 0,	/* drop: source in the blocklist */
	IMGW_XC_DROP_SYN_RATE,		/* drop: source over its SYN rate */
	IMGW_XC_BLOCK_EXPIRED,		/* pass: blocklist entry expired */
	IMGW_XC_SYN_PASSED,		/* pass: SYN within its rate */
	IMGW_XC_MAX,
};

/* Where the loader attached the XDP program, for unload and status. */
struct imgw_attach_info {
	__u32 ifindex;	/* 0: not attached */
	__u32 mode;	/* enum xdp_attach_mode of libxdp */
};

#endif

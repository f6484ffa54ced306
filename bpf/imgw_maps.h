/* SPDX-License-Identifier: MIT */
/*
 * Every BPF map of imgw, BTF-defined and pinned by name, so that the loader,
 * the gateway and bpftool all find them under one directory (by default
 * /sys/fs/bpf/imgw/). A program includes this header after defining
 * IMGW_MAPS_FANOUT or IMGW_MAPS_GUARD, and gets only its own maps.
 */
#ifndef IMGW_BPF_MAPS_H
#define IMGW_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "imgw_shared.h"

#ifdef IMGW_MAPS_FANOUT
/* Client sockets by the gateway's 64-bit conn id; redirect targets only. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 131072);
	__type(key, __u64);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} imgw_socks SEC(".maps");

/* Control sockets, by slot; the fan-out program is attached to this map. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} imgw_ctl SEC(".maps");

/* Session member sets mirrored from the gateway: present means member. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct imgw_member_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} imgw_members SEC(".maps");

/* Per-call fan-out state, by the control socket's local port. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct imgw_fanout_call);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} imgw_calls SEC(".maps");

/* Fan-out counters, indexed by enum imgw_fanout_counter. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IMGW_FC_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} imgw_fo_stats SEC(".maps");
#endif

#ifdef IMGW_MAPS_GUARD
/* Blocked IPv4 source prefixes, with an expiry in the value. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct imgw_lpm_v4);
	__type(value, struct imgw_block);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} imgw_block_v4 SEC(".maps");

/* Blocked IPv6 source prefixes, with an expiry in the value. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct imgw_lpm_v6);
	__type(value, struct imgw_block);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} imgw_block_v6 SEC(".maps");

/* SYN token bucket per source address; LRU so a flood cannot fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct imgw_src_key);
	__type(value, struct imgw_syn_bucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} imgw_syn SEC(".maps");

/* XDP counters, indexed by enum imgw_xdp_counter. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IMGW_XC_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} imgw_xdp_stats SEC(".maps");

/* Interface the loader attached the guard to; written by the loader only. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct imgw_attach_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} imgw_attach SEC(".maps");
#endif

#endif

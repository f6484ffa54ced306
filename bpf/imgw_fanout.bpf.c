// SPDX-License-Identifier: MIT
/*
 * sk_msg fan-out: attached to the imgw_ctl sockmap, it runs for each message
 * the gateway sends on its control socket and redirects that message to the
 * client socket of the call's next recipient. Userspace sends one recipient
 * per sendmmsg entry, so each copy is its own verdict run and nothing is
 * queued with MSG_MORE (which corks it until a timer fires, about 200 ms).
 * The program never returns SK_DROP: the kernel would free the rest of the
 * batch while sendmsg still reports it sent. A recipient it cannot deliver to
 * gets SK_PASS, which sends that copy to the control socket's peer, and a
 * status entry saying why.
 */
#define IMGW_MAPS_FANOUT
#include "imgw_maps.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

static __always_inline void fanout_count(__u32 idx)
{
	__u64 *val = bpf_map_lookup_elem(&imgw_fo_stats, &idx);

	if (val)
		*val += 1;
}

static __always_inline int fanout_is_member(__u64 session_id, __u64 conn_id)
{
	struct imgw_member_key key = {
		.session_id = session_id,
		.conn_id = conn_id,
	};

	if (!session_id)
		return 1;
	return bpf_map_lookup_elem(&imgw_members, &key) != NULL;
}

SEC("sk_msg")
int imgw_fanout(struct sk_msg_md *msg)
{
	struct imgw_fanout_call *call;
	__u32 port = msg->local_port;
	__u64 conn_id;
	__u32 idx;

	call = bpf_map_lookup_elem(&imgw_calls, &port);
	if (!call) {
		fanout_count(IMGW_FC_NO_CALL);
		return SK_PASS;
	}

	idx = call->next;
	/* Both checks: count comes from userspace and may exceed the array. */
	if (idx >= call->count || idx >= IMGW_FANOUT_MAX) {
		fanout_count(IMGW_FC_PAST_END);
		return SK_PASS;
	}
	call->next = idx + 1;

	/* The verdict covers exactly one frame, whatever else is queued. */
	bpf_msg_apply_bytes(msg, call->frame_len);

	conn_id = call->conn_ids[idx];
	if (!fanout_is_member(call->session_id, conn_id)) {
		call->status[idx] = IMGW_FANOUT_NOT_MEMBER;
		fanout_count(IMGW_FC_NOT_MEMBER);
		return SK_PASS;
	}

	if (bpf_msg_redirect_hash(msg, &imgw_socks, &conn_id, 0) != SK_PASS) {
		call->status[idx] = IMGW_FANOUT_NO_SOCKET;
		fanout_count(IMGW_FC_NO_SOCKET);
		return SK_PASS;
	}

	call->status[idx] = IMGW_FANOUT_REDIRECTED;
	fanout_count(IMGW_FC_REDIRECTED);
	return SK_PASS;
}

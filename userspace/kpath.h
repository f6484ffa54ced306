/* SPDX-License-Identifier: MIT */
/*
 * Kernel fan-out engine: hands one broadcast frame to the kernel, which
 * copies it to each recipient's socket through the sk_msg program pinned by
 * imgw-loader. Independent of the gateway's connection struct: callers name
 * connections by their 64-bit conn id and register each socket's fd once.
 *
 * Contract for kpath_broadcast():
 * - Pass only connections whose userspace output buffer is empty, and write
 *   nothing else to them until the call returns: kernel bytes and userspace
 *   bytes must never interleave in one stream.
 * - sent[i] is how many bytes of the frame the kernel queued on conn_ids[i],
 *   0..len. The caller writes frame + sent[i] (len - sent[i] bytes) through
 *   that connection's own output buffer when sent[i] < len. sent[i] == 0
 *   also covers recipients the kernel could not reach (not in the sockhash,
 *   not in the session's member set): their copy went to the control
 *   socket's peer, which kpath drains and counts, and was never queued on
 *   any client.
 * - One thread per struct kpath.
 */
#ifndef IMGW_KPATH_H
#define IMGW_KPATH_H

#include <stddef.h>
#include <stdint.h>

#define KPATH_PIN_DIR "/sys/fs/bpf/imgw"
/* Largest frame the kernel path takes; larger ones fall back whole. */
#define KPATH_MAX_FRAME (64 * 1024 + 12)

struct kpath;

struct kpath_stats {
	uint64_t broadcasts;		/* kpath_broadcast() calls */
	uint64_t batches;		/* sendmmsg() calls */
	uint64_t deliveries;		/* recipients queued the whole frame */
	uint64_t partial;		/* recipients queued part of the frame */
	uint64_t fallback_full;		/* socket buffer full, nothing queued */
	uint64_t fallback_no_socket;	/* conn id missing from the sockhash */
	uint64_t fallback_not_member;	/* conn id not in the member set */
	uint64_t fallback_ctl_busy;	/* control socket took no more bytes */
	uint64_t fallback_too_big;	/* frame over KPATH_MAX_FRAME, or empty */
	uint64_t errors;		/* failed map updates and sendmmsg calls */
	uint64_t drained_bytes;		/* undeliverable bytes read back */
};

/*
 * Opens the maps pinned under pin_dir (KPATH_PIN_DIR when NULL) and creates
 * the control socket pair. Returns NULL with errno set and a one-line
 * reason in reason[] when the kernel path is unavailable.
 */
struct kpath *kpath_open(const char *pin_dir, char *reason, size_t reason_size);
void kpath_close(struct kpath *kp);

/* Adds an established TCP socket under conn_id; it stays owned by the caller. */
int kpath_sock_add(struct kpath *kp, uint64_t conn_id, int fd);
/* Removes conn_id; -ENOENT if absent. Closed sockets leave the map on their own. */
int kpath_sock_remove(struct kpath *kp, uint64_t conn_id);

int kpath_member_add(struct kpath *kp, uint64_t session_id, uint64_t conn_id);
int kpath_member_remove(struct kpath *kp, uint64_t session_id,
			uint64_t conn_id);
/* Replaces the session's whole member set with conn_ids[0..n). */
int kpath_session_set(struct kpath *kp, uint64_t session_id,
		      const uint64_t *conn_ids, size_t n);
/* Removes every member of the session; scans the whole member map. */
int kpath_session_clear(struct kpath *kp, uint64_t session_id);
/* Member entries kpath_members_clear() removes. */
struct kpath_member_filter {
	int match_session;	/* 0: any session */
	uint64_t session_id;
	uint64_t conn_mask;	/* entries with (conn_id & mask) == value */
	uint64_t conn_value;
};
/* Removes the member entries that match f; scans the whole member map. */
int kpath_members_clear(struct kpath *kp, const struct kpath_member_filter *f);
/*
 * Returns the slot of this kpath's control socket in imgw_ctl, 0..63. No two
 * open kpaths on one host share a slot, so callers that share the maps can
 * tell their keys apart by it.
 */
uint32_t kpath_ctl_slot(const struct kpath *kp);
/* Returns 1 if conn_id is in the session's set in the kernel, 0 if not. */
int kpath_member_test(struct kpath *kp, uint64_t session_id, uint64_t conn_id);

/*
 * Sends frame[0..len) to each conn_ids[i] through the kernel and fills
 * sent[i] (see the contract above). session_id 0 skips the membership check.
 * Returns 0, or a negative errno when the kernel path failed; then sent[]
 * is still valid for every recipient (0 for those not reached).
 */
int kpath_broadcast(struct kpath *kp, uint64_t session_id, const void *frame,
		    size_t len, const uint64_t *conn_ids, size_t n,
		    uint32_t *sent);

/* Reads and counts the undeliverable copies waiting at the control peer. */
void kpath_drain(struct kpath *kp);
/* The control peer's fd, readable when kpath_drain() has work. */
int kpath_drain_fd(const struct kpath *kp);

void kpath_get_stats(const struct kpath *kp, struct kpath_stats *out);

/*
 * Send mode of a batch. KPATH_SEND_MMSG (the default) sends one
 * sendmmsg entry per recipient. KPATH_SEND_ONE_MSG sends the whole batch as
 * one sendmsg with one iovec per recipient: every copy but the last is
 * queued with MSG_MORE and waits for a timer of about 200 ms. It exists
 * only so that the benchmark can show that stall; never use it to deliver.
 */
enum kpath_send_mode {
	KPATH_SEND_MMSG = 0,
	KPATH_SEND_ONE_MSG,
};
void kpath_set_send_mode(struct kpath *kp, enum kpath_send_mode mode);

#endif

// SPDX-License-Identifier: MIT
/*
 * Kernel fan-out engine: opens the maps that imgw-loader pinned, owns one
 * control socket pair on loopback, mirrors sockets and session member sets
 * into the maps, and sends broadcasts as one sendmmsg entry per recipient.
 * See kpath.h for the caller's contract and docs/kernel-path.md for why
 * sendmmsg and not one sendmsg.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "imgw_shared.h"
#include "kpath.h"
#include "log.h"

/* Bytes per sendmmsg batch: every copy is charged to the control socket. */
#define KPATH_BATCH_BYTES (4 * 1024 * 1024)
#define KPATH_CTL_SLOTS 64

struct kpath {
	int socks_fd;
	int ctl_map_fd;
	int members_fd;
	int calls_fd;
	int ctl_fd;		/* sends; in imgw_ctl, runs the sk_msg program */
	int peer_fd;		/* receives the copies nobody could take */
	__u32 ctl_slot;
	__u32 ctl_port;		/* key of our entry in imgw_calls */
	struct imgw_fanout_call *call;
	struct mmsghdr *msgs;
	struct iovec *iovs;
	char *drain_buf;
	enum kpath_send_mode mode;
	struct kpath_stats stats;
};

static int kpath_open_map(const char *dir, const char *name, char *reason,
			  size_t reason_size)
{
	char path[256];
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		err = -errno;
		snprintf(reason, reason_size, "cannot open pinned map %s: %s%s",
			 path, strerror(-err),
			 err == -ENOENT ? " (run imgw-loader load)" : "");
		errno = -err;
	}
	return fd;
}

static int kpath_open_maps(struct kpath *kp, const char *dir, char *reason,
			   size_t reason_size)
{
	kp->socks_fd = kpath_open_map(dir, "imgw_socks", reason, reason_size);
	if (kp->socks_fd < 0)
		return -errno;
	kp->ctl_map_fd = kpath_open_map(dir, "imgw_ctl", reason, reason_size);
	if (kp->ctl_map_fd < 0)
		return -errno;
	kp->members_fd = kpath_open_map(dir, "imgw_members", reason,
					reason_size);
	if (kp->members_fd < 0)
		return -errno;
	kp->calls_fd = kpath_open_map(dir, "imgw_calls", reason, reason_size);
	if (kp->calls_fd < 0)
		return -errno;
	return 0;
}

/* Connects ctl_fd to peer_fd over TCP on 127.0.0.1: sk_msg runs on TCP only. */
static int kpath_socket_pair(struct kpath *kp)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t alen = sizeof(addr);
	int lfd, err, one = 1, sndbuf = KPATH_BATCH_BYTES * 2;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -errno;
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0)
		goto err_close_listener;

	kp->ctl_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (kp->ctl_fd < 0)
		goto err_close_listener;
	if (connect(kp->ctl_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		goto err_close_listener;
	kp->peer_fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (kp->peer_fd < 0)
		goto err_close_listener;
	close(lfd);

	alen = sizeof(addr);
	if (getsockname(kp->ctl_fd, (struct sockaddr *)&addr, &alen) < 0)
		return -errno;
	kp->ctl_port = ntohs(addr.sin_port);
	setsockopt(kp->ctl_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* FORCE passes net.core.wmem_max as root; plain SNDBUF is capped by it. */
	if (setsockopt(kp->ctl_fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf,
		       sizeof(sndbuf)) < 0)
		setsockopt(kp->ctl_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
			   sizeof(sndbuf));
	return 0;

err_close_listener:
	err = -errno;
	close(lfd);
	return err;
}

/* Puts the control socket into the first free slot of imgw_ctl. */
static int kpath_ctl_insert(struct kpath *kp)
{
	__u32 fd = kp->ctl_fd;
	__u32 slot;

	for (slot = 0; slot < KPATH_CTL_SLOTS; slot++) {
		if (!bpf_map_update_elem(kp->ctl_map_fd, &slot, &fd,
					 BPF_NOEXIST)) {
			kp->ctl_slot = slot;
			return 0;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -ENOSPC;
}

static int kpath_alloc_buffers(struct kpath *kp)
{
	kp->call = calloc(1, sizeof(*kp->call));
	kp->msgs = calloc(IMGW_FANOUT_MAX, sizeof(*kp->msgs));
	kp->iovs = calloc(IMGW_FANOUT_MAX, sizeof(*kp->iovs));
	kp->drain_buf = malloc(65536);
	if (!kp->call || !kp->msgs || !kp->iovs || !kp->drain_buf)
		return -ENOMEM;
	return 0;
}

static void kpath_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

struct kpath *kpath_open(const char *pin_dir, char *reason, size_t reason_size)
{
	struct kpath *kp;
	int err;

	kp = calloc(1, sizeof(*kp));
	if (!kp) {
		snprintf(reason, reason_size, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	kp->socks_fd = kp->ctl_map_fd = kp->members_fd = kp->calls_fd = -1;
	kp->ctl_fd = kp->peer_fd = -1;
	kp->ctl_slot = KPATH_CTL_SLOTS;

	err = kpath_open_maps(kp, pin_dir ? pin_dir : KPATH_PIN_DIR, reason,
			      reason_size);
	if (err)
		goto err_close;
	err = kpath_alloc_buffers(kp);
	if (err) {
		snprintf(reason, reason_size, "out of memory");
		goto err_close;
	}
	err = kpath_socket_pair(kp);
	if (err) {
		snprintf(reason, reason_size, "cannot create the control socket pair on 127.0.0.1: %s", strerror(-err));
		goto err_close;
	}
	err = kpath_ctl_insert(kp);
	if (err) {
		snprintf(reason, reason_size, "cannot add the control socket to map imgw_ctl: %s", strerror(-err));
		goto err_close;
	}
	return kp;

err_close:
	kpath_close(kp);
	errno = -err;
	return NULL;
}

void kpath_close(struct kpath *kp)
{
	if (!kp)
		return;
	if (kp->ctl_slot < KPATH_CTL_SLOTS)
		bpf_map_delete_elem(kp->ctl_map_fd, &kp->ctl_slot);
	if (kp->calls_fd >= 0)
		bpf_map_delete_elem(kp->calls_fd, &kp->ctl_port);
	kpath_close_fd(&kp->ctl_fd);
	kpath_close_fd(&kp->peer_fd);
	kpath_close_fd(&kp->socks_fd);
	kpath_close_fd(&kp->ctl_map_fd);
	kpath_close_fd(&kp->members_fd);
	kpath_close_fd(&kp->calls_fd);
	free(kp->call);
	free(kp->msgs);
	free(kp->iovs);
	free(kp->drain_buf);
	free(kp);
}

int kpath_sock_add(struct kpath *kp, uint64_t conn_id, int fd)
{
	__u64 key = conn_id, val = fd;

	if (bpf_map_update_elem(kp->socks_fd, &key, &val, BPF_ANY) < 0)
		return -errno;
	return 0;
}

int kpath_sock_remove(struct kpath *kp, uint64_t conn_id)
{
	__u64 key = conn_id;

	if (bpf_map_delete_elem(kp->socks_fd, &key) < 0)
		return -errno;
	return 0;
}

int kpath_member_add(struct kpath *kp, uint64_t session_id, uint64_t conn_id)
{
	struct imgw_member_key key = { session_id, conn_id };
	__u8 one = 1;

	if (bpf_map_update_elem(kp->members_fd, &key, &one, BPF_ANY) < 0)
		return -errno;
	return 0;
}

int kpath_member_remove(struct kpath *kp, uint64_t session_id,
			uint64_t conn_id)
{
	struct imgw_member_key key = { session_id, conn_id };

	if (bpf_map_delete_elem(kp->members_fd, &key) < 0)
		return -errno;
	return 0;
}

int kpath_member_test(struct kpath *kp, uint64_t session_id, uint64_t conn_id)
{
	struct imgw_member_key key = { session_id, conn_id };
	__u8 val;

	if (bpf_map_lookup_elem(kp->members_fd, &key, &val) < 0)
		return errno == ENOENT ? 0 : -errno;
	return 1;
}

/* Deletes the listed keys; a key already gone is not an error. */
static int kpath_delete_keys(struct kpath *kp, struct imgw_member_key *keys,
			     size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (bpf_map_delete_elem(kp->members_fd, &keys[i]) < 0 &&
		    errno != ENOENT)
			return -errno;
	}
	return 0;
}

/* Returns whether the member key matches the filter of kpath_members_clear. */
static int kpath_key_matches(const struct imgw_member_key *key,
			     const struct kpath_member_filter *f)
{
	if (f->match_session && key->session_id != f->session_id)
		return 0;
	return (key->conn_id & f->conn_mask) == f->conn_value;
}

int kpath_members_clear(struct kpath *kp, const struct kpath_member_filter *f)
{
	struct imgw_member_key cur, next, *keys = NULL, *grown;
	size_t n = 0, cap = 0;
	void *prev = NULL;
	int err;

	/* Collect first: deleting while walking restarts get_next_key. */
	while (!bpf_map_get_next_key(kp->members_fd, prev, &next)) {
		cur = next;
		prev = &cur;
		if (!kpath_key_matches(&cur, f))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			grown = realloc(keys, cap * sizeof(*keys));
			if (!grown) {
				free(keys);
				return -ENOMEM;
			}
			keys = grown;
		}
		keys[n++] = cur;
	}
	err = errno == ENOENT ? 0 : -errno;
	if (!err)
		err = kpath_delete_keys(kp, keys, n);
	free(keys);
	return err;
}

int kpath_session_clear(struct kpath *kp, uint64_t session_id)
{
	struct kpath_member_filter f = {
		.match_session = 1,
		.session_id = session_id,
	};

	return kpath_members_clear(kp, &f);
}

uint32_t kpath_ctl_slot(const struct kpath *kp)
{
	return kp->ctl_slot;
}

int kpath_session_set(struct kpath *kp, uint64_t session_id,
		      const uint64_t *conn_ids, size_t n)
{
	size_t i;
	int err;

	err = kpath_session_clear(kp, session_id);
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		err = kpath_member_add(kp, session_id, conn_ids[i]);
		if (err)
			return err;
	}
	return 0;
}

void kpath_drain(struct kpath *kp)
{
	ssize_t r;

	for (;;) {
		r = recv(kp->peer_fd, kp->drain_buf, 65536, MSG_DONTWAIT);
		if (r <= 0)
			break;
		kp->stats.drained_bytes += r;
	}
}

int kpath_drain_fd(const struct kpath *kp)
{
	return kp->peer_fd;
}

void kpath_get_stats(const struct kpath *kp, struct kpath_stats *out)
{
	*out = kp->stats;
}

/* Writes the call state the sk_msg program reads for this batch. */
static int kpath_call_write(struct kpath *kp, uint64_t session_id,
			    size_t len, const uint64_t *ids, size_t count)
{
	struct imgw_fanout_call *call = kp->call;

	call->session_id = session_id;
	call->frame_len = len;
	call->count = count;
	call->next = 0;
	memcpy(call->conn_ids, ids, count * sizeof(ids[0]));
	memset(call->status, IMGW_FANOUT_PENDING, sizeof(call->status));
	if (bpf_map_update_elem(kp->calls_fd, &kp->ctl_port, call, BPF_ANY)) {
		pr_warn("kpath: cannot write call state to map imgw_calls (port %u): %s",
			kp->ctl_port, strerror(errno));
		return -errno;
	}
	return 0;
}

/* Fills sent[i] for a recipient the program has seen; queued is its msg_len. */
static void kpath_settle(struct kpath *kp, __u8 status, size_t len,
			 size_t queued, uint32_t *sent)
{
	*sent = 0;
	switch (status) {
	case IMGW_FANOUT_REDIRECTED:
		*sent = queued;
		if (queued == len)
			kp->stats.deliveries++;
		else if (queued)
			kp->stats.partial++;
		else
			kp->stats.fallback_full++;
		break;
	case IMGW_FANOUT_NO_SOCKET:
		kp->stats.fallback_no_socket++;
		break;
	case IMGW_FANOUT_NOT_MEMBER:
		kp->stats.fallback_not_member++;
		break;
	default:
		kp->stats.fallback_ctl_busy++;
		break;
	}
}

/*
 * Sends the batch as one message; recipient i got the bytes of the short
 * count that fall into [i * len, (i + 1) * len).
 */
static int kpath_send_one_msg(struct kpath *kp, size_t len, size_t count,
			      uint32_t *sent)
{
	struct msghdr mh = { .msg_iov = kp->iovs, .msg_iovlen = count };
	ssize_t total;
	size_t i, queued;

	total = sendmsg(kp->ctl_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (total < 0 && errno != EAGAIN)
		return -errno;
	if (total < 0)
		total = 0;
	if (bpf_map_lookup_elem(kp->calls_fd, &kp->ctl_port, kp->call))
		return -errno;
	for (i = 0; i < count; i++) {
		queued = 0;
		if ((size_t)total > i * len)
			queued = (size_t)total - i * len;
		if (queued > len)
			queued = len;
		kpath_settle(kp, kp->call->status[i], len, queued, &sent[i]);
	}
	return count;
}

/*
 * Sends one batch and settles its recipients from the front. Returns how
 * many were settled (at least one), or a negative errno. sendmmsg goes on
 * after a short count but stops at a message that queued nothing: that
 * recipient is settled with 0 and the caller starts a new batch after it.
 */
static int kpath_send_batch(struct kpath *kp, uint64_t session_id,
			    const void *frame, size_t len, const uint64_t *ids,
			    size_t count, uint32_t *sent)
{
	int r, err, i;

	err = kpath_call_write(kp, session_id, len, ids, count);
	if (err)
		return err;
	for (i = 0; i < (int)count; i++) {
		kp->iovs[i].iov_base = (void *)frame;
		kp->iovs[i].iov_len = len;
		memset(&kp->msgs[i], 0, sizeof(kp->msgs[i]));
		kp->msgs[i].msg_hdr.msg_iov = &kp->iovs[i];
		kp->msgs[i].msg_hdr.msg_iovlen = 1;
	}

	kp->stats.batches++;
	if (kp->mode == KPATH_SEND_ONE_MSG)
		return kpath_send_one_msg(kp, len, count, sent);
	r = sendmmsg(kp->ctl_fd, kp->msgs, count, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (r < 0 && errno != EAGAIN) {
		err = -errno;
		pr_warn("kpath: sendmmsg of %zu recipients on control fd %d failed: %s",
			count, kp->ctl_fd, strerror(-err));
		return err;
	}
	if (r < 0)
		r = 0;

	if (bpf_map_lookup_elem(kp->calls_fd, &kp->ctl_port, kp->call)) {
		err = -errno;
		pr_warn("kpath: cannot read call state from map imgw_calls (port %u): %s",
			kp->ctl_port, strerror(-err));
		return err;
	}
	for (i = 0; i < r; i++)
		kpath_settle(kp, kp->call->status[i], len, kp->msgs[i].msg_len,
			     &sent[i]);
	if (r == (int)count)
		return r;

	/* The message that stopped sendmmsg queued nothing. */
	if (kp->call->status[r] != IMGW_FANOUT_PENDING) {
		kpath_settle(kp, kp->call->status[r], len, 0, &sent[r]);
		return r + 1;
	}
	/* The program never ran for it: the control socket itself is full. */
	for (i = r; i < (int)count; i++)
		kpath_settle(kp, IMGW_FANOUT_PENDING, len, 0, &sent[i]);
	return count;
}

int kpath_broadcast(struct kpath *kp, uint64_t session_id, const void *frame,
		    size_t len, const uint64_t *conn_ids, size_t n,
		    uint32_t *sent)
{
	size_t i = 0, batch, per_batch;
	int r;

	kp->stats.broadcasts++;
	memset(sent, 0, n * sizeof(*sent));
	if (!len || len > KPATH_MAX_FRAME) {
		kp->stats.fallback_too_big += n;
		return 0;
	}
	per_batch = KPATH_BATCH_BYTES / len;
	if (per_batch > IMGW_FANOUT_MAX)
		per_batch = IMGW_FANOUT_MAX;

	while (i < n) {
		batch = n - i < per_batch ? n - i : per_batch;
		r = kpath_send_batch(kp, session_id, frame, len, conn_ids + i,
				     batch, sent + i);
		if (r < 0) {
			kp->stats.errors++;
			kpath_drain(kp);
			return r;
		}
		i += r;
	}
	kpath_drain(kp);
	return 0;
}

void kpath_set_send_mode(struct kpath *kp, enum kpath_send_mode mode)
{
	kp->mode = mode;
}

// SPDX-License-Identifier: MIT
/*
 * io_uring batch of socket sends; see sendring.h. The iovecs point into
 * the connections' output evbuffers, which nothing may change between
 * sendring_add() and the completion, so sendring_submit() waits for every
 * entry before it returns.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <liburing.h>

#include "log.h"
#include "sendring.h"

/* A wait for completions longer than this is logged. */
#define SENDRING_WAIT_WARN_MS 1000

struct sendring_slot {
	struct conn *conn;
	struct msghdr msg;
	struct iovec iov[SENDRING_IOV];
};

struct sendring {
	struct io_uring ring;
	struct sendring_slot *slots;
	unsigned int used;
	size_t bytes;           /* sent by the entries added since the submit */
};

struct sendring *sendring_new(void)
{
	struct sendring *sr = calloc(1, sizeof(*sr));
	/* One thread submits, and completions run only when it waits. */
	unsigned int flags = IORING_SETUP_SINGLE_ISSUER |
			     IORING_SETUP_DEFER_TASKRUN;
	int err;

	if (!sr)
		return NULL;
	sr->slots = calloc(SENDRING_ENTRIES, sizeof(*sr->slots));
	if (!sr->slots) {
		free(sr);
		errno = ENOMEM;
		return NULL;
	}
	/*
	 * Kernels before 6.1 reject DEFER_TASKRUN with EINVAL, and the ring
	 * is not used there: the flush relies on a MSG_DONTWAIT send failing
	 * with EAGAIN instead of waiting, which the unit tests check on the
	 * kernel they run on.
	 */
	err = io_uring_queue_init(SENDRING_ENTRIES, &sr->ring, flags);
	if (err) {
		free(sr->slots);
		free(sr);
		errno = -err;
		return NULL;
	}
	return sr;
}

void sendring_free(struct sendring *sr)
{
	if (!sr)
		return;
	io_uring_queue_exit(&sr->ring);
	free(sr->slots);
	free(sr);
}

size_t sendring_peek(struct evbuffer *out, size_t max_bytes,
		     struct iovec iov[SENDRING_IOV], int *count)
{
	struct evbuffer_iovec vec[SENDRING_IOV];
	size_t total = 0;
	int n;

	n = evbuffer_peek(out, (ev_ssize_t)max_bytes, NULL, vec, SENDRING_IOV);
	if (n > SENDRING_IOV)
		n = SENDRING_IOV;
	*count = 0;
	for (int i = 0; i < n && total < max_bytes; i++) {
		size_t len = vec[i].iov_len;

		/* evbuffer_peek() returns whole chains: cut the last one. */
		if (len > max_bytes - total)
			len = max_bytes - total;
		iov[i].iov_base = vec[i].iov_base;
		iov[i].iov_len = len;
		total += len;
		*count = i + 1;
	}
	return total;
}

int sendring_add(struct sendring *sr, struct conn *c, int fd,
		 struct evbuffer *out, size_t max_bytes)
{
	struct sendring_slot *slot;
	struct io_uring_sqe *sqe;
	int n;

	if (sr->used == SENDRING_ENTRIES)
		return -ENOSPC;
	sqe = io_uring_get_sqe(&sr->ring);
	if (!sqe)
		return -ENOSPC;
	slot = &sr->slots[sr->used];
	sr->bytes += sendring_peek(out, max_bytes, slot->iov, &n);
	memset(&slot->msg, 0, sizeof(slot->msg));
	slot->msg.msg_iov = slot->iov;
	slot->msg.msg_iovlen = (size_t)n;
	slot->conn = c;
	io_uring_prep_sendmsg(sqe, fd, &slot->msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, sr->used);
	sr->used++;
	return 0;
}

int sendring_full(const struct sendring *sr)
{
	return sr->used == SENDRING_ENTRIES || sr->bytes >= SENDRING_MAX_BYTES;
}

int sendring_pending(const struct sendring *sr)
{
	return sr->used > 0;
}

/*
 * Submits and waits for `want` completions, which inline sends post at once.
 * A long wait is logged and continued, because the kernel may still read
 * the iovecs until the completion arrives.
 */
static int sendring_wait(struct sendring *sr, unsigned int want)
{
	struct __kernel_timespec ts = {
		.tv_sec = SENDRING_WAIT_WARN_MS / 1000,
	};
	struct io_uring_cqe *cqe;
	int err;

	for (;;) {
		err = io_uring_submit_and_wait_timeout(&sr->ring, &cqe, want,
						       &ts, NULL);
		/* After EINTR the entries are submitted; wait again. */
		if (err >= 0 || err == -EINTR)
			return 0;
		if (err != -ETIME)
			return err;
		if (io_uring_cq_ready(&sr->ring) >= want)
			return 0;
		pr_warn("io_uring: %u of %u sends still running after %d ms, waiting",
			want - io_uring_cq_ready(&sr->ring), want,
			SENDRING_WAIT_WARN_MS);
	}
}

/* Calls done() for every completion posted so far; returns their number. */
static unsigned int sendring_reap(struct sendring *sr,
				  void (*done)(struct conn *c, ssize_t res))
{
	struct io_uring_cqe *cqe;
	unsigned int head, count = 0;

	io_uring_for_each_cqe(&sr->ring, head, cqe) {
		struct sendring_slot *slot;

		slot = &sr->slots[io_uring_cqe_get_data64(cqe)];
		done(slot->conn, cqe->res);
		slot->conn = NULL;
		count++;
	}
	io_uring_cq_advance(&sr->ring, count);
	return count;
}

int sendring_submit(struct sendring *sr,
		    void (*done)(struct conn *c, ssize_t res))
{
	unsigned int want = sr->used, seen = 0;
	int err = 0;

	if (!want)
		return 0;
	while (seen < want) {
		err = sendring_wait(sr, want - seen);
		seen += sendring_reap(sr, done);
		if (err)
			break;
	}
	/*
	 * NOTE: after a failed io_uring_enter() the entries without a
	 * completion are taken as not sent. An entry that the kernel did
	 * submit and that completes later would send its bytes again on the
	 * writev() fallback, because liburing does not return how many
	 * entries a failed call submitted.
	 */
	for (unsigned int i = 0; err && i < want; i++) {
		if (!sr->slots[i].conn)
			continue;
		done(sr->slots[i].conn, -ECANCELED);
		sr->slots[i].conn = NULL;
	}
	sr->used = 0;
	sr->bytes = 0;
	return err;
}

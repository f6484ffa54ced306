// SPDX-License-Identifier: MIT
/*
 * Group commit of posted messages (see batch.h). Under load one event loop
 * pass reads many posts, and one COMMIT for all of them replaces a COMMIT,
 * its WAL write and its file locking per message.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "batch.h"
#include "bizsvr.h"
#include "log.h"

/* Caps on one batch, so that a burst cannot hold many replies, or much
 * payload in memory, behind a single commit. */
#define BATCH_MAX_MESSAGES 256
#define BATCH_MAX_BYTES (4u * 1024 * 1024)

struct batch {
	struct bizsvr *bz;
	struct event *commit_ev;     /* runs batch_commit() later in the pass */
	int open;                    /* a store transaction is open */
	struct batch_entry *head, **tail;
	unsigned int count;
	size_t bytes;
};

static void batch_commit_cb(evutil_socket_t fd, short what, void *arg)
{
	batch_commit(arg);
}

struct batch *batch_new(struct bizsvr *bz)
{
	struct batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->bz = bz;
	b->tail = &b->head;
	b->commit_ev = event_new(bz->base, -1, 0, batch_commit_cb, b);
	if (!b->commit_ev) {
		free(b);
		errno = ENOMEM;
		return NULL;
	}
	return b;
}

void batch_free(struct batch *b)
{
	if (!b)
		return;
	batch_commit(b);
	event_free(b->commit_ev);
	free(b);
}

/* Takes the queued entries out of b and completes each with err. The list
 * is detached first because a completion may post or commit again. */
static void batch_complete_all(struct batch *b, int err)
{
	struct batch_entry *e = b->head, *next;

	b->head = NULL;
	b->tail = &b->head;
	b->count = 0;
	b->bytes = 0;
	for (; e; e = next) {
		next = e->next;
		e->complete(b->bz, e, err);
	}
}

static void batch_rollback(struct batch *b, int err)
{
	unsigned int count = b->count;

	/* XXX: One failed append or commit fails every message of the batch, up to BATCH_MAX_MESSAGES, including those that would have been stored alone. Their senders must retry with the same client_msg_id. */
	store_batch_rollback(b->bz->store);
	b->open = 0;
	pr_error("batch: rolled back %u queued messages: %s", count,
		 strerror(-err));
	batch_complete_all(b, err);
}

int batch_append(struct batch *b, const struct store_message *msg,
		 struct store_append_result *res)
{
	int err;

	if (!b->open) {
		err = store_batch_begin(b->bz->store);
		if (err < 0)
			return err;
		b->open = 1;
		/* Runs after the events already active in this pass. */
		event_active(b->commit_ev, 0, 0);
	}
	err = store_message_add(b->bz->store, msg, res);
	if (err < 0)
		batch_rollback(b, err);
	return err;
}

void batch_queue(struct batch *b, struct batch_entry *e)
{
	e->next = NULL;
	*b->tail = e;
	b->tail = &e->next;
	b->count++;
	b->bytes += e->bytes;
	if (b->count >= BATCH_MAX_MESSAGES || b->bytes >= BATCH_MAX_BYTES)
		batch_commit(b);
}

void batch_commit(struct batch *b)
{
	int err = 0;

	if (b->open) {
		b->open = 0;
		err = store_batch_commit(b->bz->store);
		if (err < 0)
			pr_error("batch: commit of %u messages failed: %s",
				 b->count, strerror(-err));
		else
			b->bz->stats.store_commits++;
	}
	if (b->head)
		batch_complete_all(b, err);
}

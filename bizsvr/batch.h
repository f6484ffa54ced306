/* SPDX-License-Identifier: MIT */
/*
 * Group commit of posted messages. A post appends its message to one open
 * SQLite transaction and queues a completion. A single COMMIT then makes the
 * whole batch durable, and the completions (replies, fan-out) run in post
 * order. The commit happens at the end of the event loop pass that opened
 * the batch, when the batch is full, or when batch_commit() is called.
 * Every event handler that is not a message post calls batch_commit() first,
 * so it reads the same state as if each message had committed on its own.
 */
#ifndef BIZSVR_BATCH_H
#define BIZSVR_BATCH_H

#include <stddef.h>

#include "store.h"

struct bizsvr;
struct batch;
struct batch_entry;

/* Runs once per queued entry: err is 0 after the commit, or the negative
 * errno of a failed commit or add (the batch was rolled back). Frees e. */
typedef void (*batch_complete_fn)(struct bizsvr *bz, struct batch_entry *e,
				  int err);

/* A queued completion, embedded at the start of the caller's struct. */
struct batch_entry {
	struct batch_entry *next;
	batch_complete_fn complete;
	size_t bytes;                /* counted against the batch byte cap */
};

struct batch *batch_new(struct bizsvr *bz);
/* Commits what is open and frees b. */
void batch_free(struct batch *b);

/*
 * Stores msg in the open batch (opening one) and fills res. On failure the
 * whole batch is rolled back, its queued entries complete with the error,
 * and the negative errno is returned.
 */
int batch_append(struct batch *b, const struct store_message *msg,
		 struct store_append_result *res);

/* Queues e to complete after the commit of the messages appended so far;
 * commits at once when the batch reaches its message or byte cap. */
void batch_queue(struct batch *b, struct batch_entry *e);

/* Commits the open batch, if any, and runs the queued completions. */
void batch_commit(struct batch *b);

#endif

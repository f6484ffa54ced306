/* SPDX-License-Identifier: MIT */
/*
 * Online devices: every logged-in (user id, device id) with the gateway node
 * and connection id it is on. Indexed by user for fan-out and by node so a
 * dropped gateway link removes its devices in one walk.
 */
#ifndef BIZSVR_PRESENCE_H
#define BIZSVR_PRESENCE_H

#include <stddef.h>
#include <stdint.h>

#include <uthash.h>

struct presence_user;
struct presence_node;

struct presence_device {
	char *device_id;
	char *platform;
	uint64_t conn_id;
	struct presence_user *user;
	struct presence_node *node;
	struct presence_device *user_prev, *user_next;
	struct presence_device *node_prev, *node_next;
};

struct presence_user {
	char *user_id;
	struct presence_device *devices;   /* utlist, user_prev/user_next */
	unsigned int count;
	UT_hash_handle hh;
};

struct presence_node {
	char *node_id;
	struct presence_device *devices;   /* utlist, node_prev/node_next */
	unsigned int count;
	UT_hash_handle hh;
};

struct presence {
	struct presence_user *users;
	struct presence_node *nodes;
	size_t devices;
	/* Changes whenever a user entry is added or freed, so that a cached
	 * presence_user_find() result is valid while it stays the same. */
	uint64_t users_generation;
};

struct presence *presence_new(void);
void presence_free(struct presence *p);

struct presence_user *presence_user_find(struct presence *p,
					 const char *user_id);
struct presence_device *presence_find(struct presence *p, const char *user_id,
				      const char *device_id);

/*
 * Records the device as online on node with conn_id, replacing any earlier
 * record of the same (user, device). Returns 0 or -ENOMEM; after -ENOMEM the
 * device may be offline.
 */
int presence_set(struct presence *p, const char *user_id,
		 const char *device_id, const char *node_id, uint64_t conn_id,
		 const char *platform);

/* Removes the device when it is recorded on node with conn_id, so the close
 * of an old connection keeps a newer login. Returns 1 when removed, else 0. */
int presence_remove_conn(struct presence *p, const char *user_id,
			 const char *device_id, const char *node_id,
			 uint64_t conn_id);

/* Removes every device on node. Returns how many were removed. */
size_t presence_drop_node(struct presence *p, const char *node_id);

#endif

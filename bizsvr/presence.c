// SPDX-License-Identifier: MIT
/*
 * Online device index; see presence.h. A device belongs to one user entry and
 * one node entry; an entry is freed with its last device.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "presence.h"

struct presence *presence_new(void)
{
	struct presence *p = calloc(1, sizeof(*p));

	/* Cached lookups start at generation 0, so none is taken as valid. */
	if (p)
		p->users_generation = 1;
	return p;
}

static struct presence_user *presence_user_get(struct presence *p,
					       const char *user_id)
{
	struct presence_user *u = presence_user_find(p, user_id);

	if (u)
		return u;
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->user_id = strdup(user_id);
	if (!u->user_id) {
		free(u);
		return NULL;
	}
	HASH_ADD_KEYPTR(hh, p->users, u->user_id, strlen(u->user_id), u);
	p->users_generation++;
	return u;
}

static struct presence_node *presence_node_get(struct presence *p,
					       const char *node_id)
{
	struct presence_node *n;

	HASH_FIND_STR(p->nodes, node_id, n);
	if (n)
		return n;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->node_id = strdup(node_id);
	if (!n->node_id) {
		free(n);
		return NULL;
	}
	HASH_ADD_KEYPTR(hh, p->nodes, n->node_id, strlen(n->node_id), n);
	return n;
}

static void presence_user_put(struct presence *p, struct presence_user *u)
{
	if (u->count)
		return;
	HASH_DEL(p->users, u);
	p->users_generation++;
	free(u->user_id);
	free(u);
}

static void presence_node_put(struct presence *p, struct presence_node *n)
{
	if (n->count)
		return;
	HASH_DEL(p->nodes, n);
	free(n->node_id);
	free(n);
}

/* Unlinks and frees d, and frees its user and node entries when empty. */
static void presence_device_remove(struct presence *p,
				   struct presence_device *d)
{
	struct presence_user *u = d->user;
	struct presence_node *n = d->node;

	DL_DELETE2(u->devices, d, user_prev, user_next);
	u->count--;
	DL_DELETE2(n->devices, d, node_prev, node_next);
	n->count--;
	p->devices--;
	free(d->device_id);
	free(d->platform);
	free(d);
	presence_user_put(p, u);
	presence_node_put(p, n);
}

void presence_free(struct presence *p)
{
	struct presence_node *n, *tmp;

	if (!p)
		return;
	HASH_ITER(hh, p->nodes, n, tmp)
		presence_drop_node(p, n->node_id);
	free(p);
}

struct presence_user *presence_user_find(struct presence *p,
					 const char *user_id)
{
	struct presence_user *u;

	HASH_FIND_STR(p->users, user_id, u);
	return u;
}

struct presence_device *presence_find(struct presence *p, const char *user_id,
				      const char *device_id)
{
	struct presence_user *u = presence_user_find(p, user_id);
	struct presence_device *d;

	if (!u)
		return NULL;
	DL_FOREACH2(u->devices, d, user_next) {
		if (strcmp(d->device_id, device_id) == 0)
			return d;
	}
	return NULL;
}

static struct presence_device *presence_device_new(const char *device_id,
						   const char *platform,
						   uint64_t conn_id)
{
	struct presence_device *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->device_id = strdup(device_id);
	d->platform = strdup(platform ? platform : "");
	d->conn_id = conn_id;
	if (!d->device_id || !d->platform) {
		free(d->device_id);
		free(d->platform);
		free(d);
		return NULL;
	}
	return d;
}

int presence_set(struct presence *p, const char *user_id,
		 const char *device_id, const char *node_id, uint64_t conn_id,
		 const char *platform)
{
	struct presence_device *old = presence_find(p, user_id, device_id);
	struct presence_device *d;
	struct presence_user *u;
	struct presence_node *n;

	d = presence_device_new(device_id, platform, conn_id);
	if (!d)
		return -ENOMEM;
	if (old)
		presence_device_remove(p, old);
	u = presence_user_get(p, user_id);
	n = u ? presence_node_get(p, node_id) : NULL;
	if (!n) {
		if (u)
			presence_user_put(p, u);
		free(d->device_id);
		free(d->platform);
		free(d);
		return -ENOMEM;
	}
	d->user = u;
	d->node = n;
	DL_APPEND2(u->devices, d, user_prev, user_next);
	u->count++;
	DL_APPEND2(n->devices, d, node_prev, node_next);
	n->count++;
	p->devices++;
	return 0;
}

int presence_remove_conn(struct presence *p, const char *user_id,
			 const char *device_id, const char *node_id,
			 uint64_t conn_id)
{
	struct presence_device *d = presence_find(p, user_id, device_id);

	if (!d || d->conn_id != conn_id || strcmp(d->node->node_id, node_id))
		return 0;
	presence_device_remove(p, d);
	return 1;
}

size_t presence_drop_node(struct presence *p, const char *node_id)
{
	struct presence_node *n;
	size_t count;

	HASH_FIND_STR(p->nodes, node_id, n);
	if (!n)
		return 0;
	count = n->count;
	/* The node entry is freed with its last device, so stop before. */
	while (n->count > 1)
		presence_device_remove(p, n->devices);
	presence_device_remove(p, n->devices);
	return count;
}

// SPDX-License-Identifier: MIT
/*
 * The connection registry; see conn.h. The device index is a second uthash
 * table over the same conn structs, keyed by "user id\0device id".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

void conn_registry_init(struct conn_registry *reg)
{
	memset(reg, 0, sizeof(*reg));
}

void conn_registry_add(struct conn_registry *reg, struct conn *c)
{
	c->id = ++reg->last_id;
	HASH_ADD(hh, reg->by_id, id, sizeof(c->id), c);
	reg->count++;
}

void conn_registry_remove(struct conn_registry *reg, struct conn *c)
{
	conn_registry_unbind_device(reg, c);
	if (conn_registry_find(reg, c->id) != c)
		return;
	HASH_DELETE(hh, reg->by_id, c);
	reg->count--;
}

struct conn *conn_registry_find(struct conn_registry *reg, uint64_t id)
{
	struct conn *c;

	HASH_FIND(hh, reg->by_id, &id, sizeof(id), c);
	return c;
}

static struct conn *find_device_key(struct conn_registry *reg,
				    const char *key, size_t len)
{
	struct conn *c;

	HASH_FIND(hh_device, reg->by_device, key, len, c);
	return c;
}

struct conn *conn_registry_find_device(struct conn_registry *reg,
				       const char *user_id,
				       const char *device_id)
{
	size_t user_len = strlen(user_id);
	size_t device_len = strlen(device_id);
	char key[2 * CONN_MAX_ID_LEN + 1];

	if (user_len > CONN_MAX_ID_LEN || device_len > CONN_MAX_ID_LEN)
		return NULL;
	memcpy(key, user_id, user_len);
	key[user_len] = '\0';
	memcpy(key + user_len + 1, device_id, device_len);
	return find_device_key(reg, key, user_len + 1 + device_len);
}

static int check_id(const char *id, int may_be_empty)
{
	size_t len = strlen(id);

	if (len > CONN_MAX_ID_LEN || (len == 0 && !may_be_empty))
		return -EINVAL;
	return 0;
}

int conn_set_device(struct conn *c, const char *user_id,
		    const char *device_id, const char *platform)
{
	size_t user_len = strlen(user_id);
	size_t device_len = strlen(device_id);

	if (c->device_key || check_id(user_id, 0) || check_id(device_id, 0) ||
	    check_id(platform, 1))
		return -EINVAL;
	c->user_id = strdup(user_id);
	c->device_id = strdup(device_id);
	c->platform = strdup(platform);
	c->device_key = malloc(user_len + 1 + device_len);
	if (!c->user_id || !c->device_id || !c->platform || !c->device_key) {
		conn_clear_device(c);
		return -ENOMEM;
	}
	memcpy(c->device_key, user_id, user_len + 1);
	memcpy(c->device_key + user_len + 1, device_id, device_len);
	c->device_key_len = user_len + 1 + device_len;
	return 0;
}

void conn_clear_device(struct conn *c)
{
	free(c->user_id);
	free(c->device_id);
	free(c->platform);
	free(c->device_key);
	c->user_id = NULL;
	c->device_id = NULL;
	c->platform = NULL;
	c->device_key = NULL;
	c->device_key_len = 0;
}

struct conn *conn_registry_bind_device(struct conn_registry *reg,
				       struct conn *c)
{
	struct conn *old;

	old = find_device_key(reg, c->device_key, c->device_key_len);
	if (old == c)
		return NULL;
	if (old) {
		HASH_DELETE(hh_device, reg->by_device, old);
		old->in_device_index = 0;
	}
	HASH_ADD_KEYPTR(hh_device, reg->by_device, c->device_key,
			c->device_key_len, c);
	c->in_device_index = 1;
	return old;
}

void conn_registry_unbind_device(struct conn_registry *reg, struct conn *c)
{
	/* A newer login of the same device may own the entry by now. */
	if (!c->in_device_index ||
	    find_device_key(reg, c->device_key, c->device_key_len) != c)
		return;
	HASH_DELETE(hh_device, reg->by_device, c);
	c->in_device_index = 0;
}

const char *conn_state_name(enum conn_state state)
{
	switch (state) {
	case CONN_NEW:
		return "new";
	case CONN_LOGGING_IN:
		return "logging_in";
	case CONN_LOGGED_IN:
		return "logged_in";
	case CONN_CLOSING:
		return "closing";
	}
	return "unknown";
}

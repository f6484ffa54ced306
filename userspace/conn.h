/* SPDX-License-Identifier: MIT */
/*
 * The per-node connection registry: every client connection keyed by a
 * 64-bit id that is never reused, plus an index (user id, device id) ->
 * logged-in connection. The registry only stores pointers and strings, so it
 * can be used and tested without sockets; conn_io.c owns the sockets.
 */
#ifndef IMGW_CONN_H
#define IMGW_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <uthash.h>

/* Maximum bytes of the user id, device id and platform of a login. */
#define CONN_MAX_ID_LEN 128
/* "[address]:port" of an IPv6 peer plus the terminating NUL. */
#define CONN_PEER_LEN 64

enum conn_state {
	CONN_NEW,
	CONN_LOGGING_IN,
	CONN_LOGGED_IN,
	CONN_CLOSING,
};

struct gateway;
struct bufferevent;
struct event;
struct sess_cache_entry;
struct upstream_request;
struct ws;

/* One super-session cache that contains a connection (see sess_cache.h). */
struct conn_cache_ref {
	struct sess_cache_entry *entry;
	uint32_t index;         /* in entry->members */
};

struct conn {
	uint64_t id;
	int fd;
	struct bufferevent *bev;
	/* WebSocket state (ws.h); NULL on a binary TCP connection. */
	struct ws *ws;
	struct gateway *gw;
	char peer[CONN_PEER_LEN];
	enum conn_state state;
	/* Set once a LOGIN frame was accepted; NULL before. */
	char *user_id;
	char *device_id;
	char *platform;
	/* user_id, a NUL byte, then device_id: the device index key. */
	char *device_key;
	size_t device_key_len;
	/* Gateway request id of the AUTH in flight, 0 when none. */
	uint32_t auth_request_id;
	/* Client request id of the LOGIN in progress. */
	uint32_t login_request_id;
	/* Login deadline, then heartbeat deadline. */
	struct event *idle_timer;
	/* Frees the connection: after the output drains, or a safety delay. */
	struct event *close_timer;
	/* Closes the connection at once when the output drains. */
	unsigned close_on_drain : 1;
	/* The peer half-closed: close once its requests have replies. */
	unsigned peer_eof : 1;
	unsigned in_device_index : 1;
	/* The socket is in the kernel path's sockhash (kmirror.c). */
	unsigned in_kpath : 1;
	/* On gw->flush_list: output queued in this loop pass. */
	unsigned flush_pending : 1;
	/* The kernel buffer was full: the bufferevent's write event owns
	 * the output until it drains. */
	unsigned write_armed : 1;
	TAILQ_ENTRY(conn) flush_link;
	/* SEND and SYNC requests forwarded upstream and still without a reply. */
	struct upstream_request *requests;
	uint32_t n_requests;
	/* Super-session caches holding this connection, in no order. */
	struct conn_cache_ref *cache_refs;
	uint32_t n_cache_refs;
	uint32_t cap_cache_refs;
	UT_hash_handle hh;          /* registry by id */
	UT_hash_handle hh_device;   /* registry by device key */
};

struct conn_registry {
	struct conn *by_id;
	struct conn *by_device;
	uint64_t last_id;
	size_t count;
};

void conn_registry_init(struct conn_registry *reg);

/* Gives c the next id and adds it to the registry. */
void conn_registry_add(struct conn_registry *reg, struct conn *c);

/* Removes c from the registry and from the device index when the index
 * entry still points to c. Harmless when c is not in the registry. */
void conn_registry_remove(struct conn_registry *reg, struct conn *c);

struct conn *conn_registry_find(struct conn_registry *reg, uint64_t id);
struct conn *conn_registry_find_device(struct conn_registry *reg,
				       const char *user_id,
				       const char *device_id);

/*
 * Sets the user, device and platform of c (copies them). Returns 0, -EINVAL
 * when c already has them or an id is empty or longer than CONN_MAX_ID_LEN,
 * or -ENOMEM.
 */
int conn_set_device(struct conn *c, const char *user_id,
		    const char *device_id, const char *platform);

/*
 * Points the device index entry of c's user and device at c. Returns the
 * connection that held the entry before (the one a duplicate login replaces)
 * or NULL.
 */
struct conn *conn_registry_bind_device(struct conn_registry *reg,
				       struct conn *c);

/* Drops c's device index entry when it still points to c. */
void conn_registry_unbind_device(struct conn_registry *reg, struct conn *c);

/* Frees the strings conn_set_device() copied. */
void conn_clear_device(struct conn *c);

const char *conn_state_name(enum conn_state state);

#define conn_registry_for_each(reg, c, tmp) \
	HASH_ITER(hh, (reg)->by_id, c, tmp)

#endif

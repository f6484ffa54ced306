/* SPDX-License-Identifier: MIT */
/*
 * The gateway's side of super sessions: DELIVER frames of type SUPER,
 * SUPER_UPGRADE and SUPER_DEMOTE, SUPER_ACK back to the daemon (unless the
 * drop_super_acks fault is on), SESSION_CACHE membership changes, the
 * caches a new login joins, and dropping every cache when the daemon link
 * drops. The caches themselves live in sess_cache.c.
 */
#ifndef IMGW_SUPER_GW_H
#define IMGW_SUPER_GW_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "gateway.h"
#include "imgw.pb-c.h"

/* Minimum time between two warnings about SUPER frames without a cache. */
#define SUPER_GW_WARN_INTERVAL_MS 1000

/* SUPER: pushes to the session's cached connections. */
void super_gw_broadcast(struct gateway *gw, const Imgw__Deliver *msg);

/* SUPER_UPGRADE: pushes to the targets, makes them the cache, acks. */
void super_gw_upgrade(struct gateway *gw, const Imgw__Deliver *msg);

/* SUPER_DEMOTE: pushes to the targets, drops the cache, acks. */
void super_gw_demote(struct gateway *gw, const Imgw__Deliver *msg);

/* SESSION_CACHE: adds devices to a held cache, removes them always. */
void super_gw_session_cache(struct gateway *gw, const Imgw__SessionCache *msg);

/* Adds logged-in connection c to the held caches of the n sessions. */
void super_gw_login(struct gateway *gw, struct conn *c,
		    const uint64_t *session_ids, size_t n);

/* Drops every cache: the daemon re-sends each upgrade after REGISTER. */
void super_gw_link_down(struct gateway *gw);

/* Turns the drop_super_acks fault on or off. */
void super_gw_set_drop_acks(struct gateway *gw, int on);

#endif

/* SPDX-License-Identifier: MIT */
/* The business daemon's admin HTTP API (JSON over evhttp): health, metrics,
 * tokens, sessions, members, server-sent messages and presence lookups. */
#ifndef BIZSVR_ADMIN_H
#define BIZSVR_ADMIN_H

#include "bizsvr.h"

/* Binds the API to bz->cfg->http. NULL with errno set. */
struct admin *admin_new(struct bizsvr *bz);
void admin_free(struct admin *a);

#endif

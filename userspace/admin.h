/* SPDX-License-Identifier: MIT */
/*
 * The admin HTTP endpoint: GET /healthz, /metrics (Prometheus text),
 * /v1/connections and /v1/sessions (JSON lists of connections and of
 * super-session caches), and GET or POST /v1/faults (test switches).
 */
#ifndef IMGW_ADMIN_H
#define IMGW_ADMIN_H

#include "gateway.h"

/* Serves the endpoint on cfg.http. Returns 0 or a negative errno. */
int admin_start(struct gateway *gw);
void admin_stop(struct gateway *gw);

#endif

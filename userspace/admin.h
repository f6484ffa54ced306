/* SPDX-License-Identifier: MIT */
/*
 * The admin HTTP endpoint: GET /healthz, /metrics (Prometheus text) and
 * /v1/connections (JSON list).
 */
#ifndef IMGW_ADMIN_H
#define IMGW_ADMIN_H

#include "gateway.h"

/* Serves the endpoint on cfg.http. Returns 0 or a negative errno. */
int admin_start(struct gateway *gw);
void admin_stop(struct gateway *gw);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Worker processes: with --workers N above 1 the first process becomes a
 * supervisor that forks N gateways sharing the listen port (SO_REUSEPORT).
 * Worker i registers as node <node-id>-w<i> and serves admin HTTP on the
 * --http port plus i. The supervisor restarts a worker that dies and stops
 * all of them on SIGTERM or SIGINT.
 */
#ifndef IMGW_WORKERS_H
#define IMGW_WORKERS_H

#include "config.h"

/*
 * Runs the supervisor when cfg->workers is above 1. Returns 0 in a worker
 * process, with cfg set up for that worker, and in the only process when
 * cfg->workers is 1. In the supervisor it returns 1 after every worker
 * stopped, with the exit status to use in *status. Returns -EINVAL when
 * cfg->workers is over 64, or a negative errno when blocking the signals
 * failed. A worker whose node id or HTTP port cannot be derived exits 2.
 */
int workers_start(struct gw_config *cfg, int *status);

#endif

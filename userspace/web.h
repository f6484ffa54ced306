/* SPDX-License-Identifier: MIT */
/*
 * Static files under /web/ on the admin HTTP port: the browser chat page
 * of the repository's web/ directory, served only when --web-dir is set.
 */
#ifndef IMGW_WEB_H
#define IMGW_WEB_H

#include <event2/http.h>

#include "gateway.h"

/* Returns whether path (as the request sent it) is /web or under /web/. */
int web_is_path(const char *path);

/*
 * Checks that --web-dir, when set, names a readable directory. Returns 0,
 * or a negative errno after logging what failed.
 */
int web_check_dir(const struct gateway *gw);

/*
 * Replies to a GET of path under /web/ with the file of --web-dir it names:
 * 404 when --web-dir is unset, the file is missing or not a regular file,
 * 400 for a path with an empty, "." or ".." segment, a NUL byte or a
 * character outside [A-Za-z0-9._-/], and 403 when the file resolves
 * outside --web-dir (through a symbolic link). "/web" redirects to "/web/",
 * and "/web/" serves index.html.
 */
void web_serve(struct gateway *gw, struct evhttp_request *req,
	       const char *path);

#endif

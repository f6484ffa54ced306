// SPDX-License-Identifier: MIT
/* Static files of --web-dir under /web/ on the admin HTTP port; see web.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "httputil.h"
#include "log.h"
#include "web.h"

#define WEB_PREFIX "/web/"

struct web_type {
	const char *ext;
	const char *content_type;
};

static const struct web_type web_types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".mjs", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".png", "image/png" },
	{ ".svg", "image/svg+xml" },
	{ ".ico", "image/x-icon" },
};

int web_is_path(const char *path)
{
	return strncmp(path, "/web", 4) == 0 &&
	       (path[4] == '\0' || path[4] == '/');
}

int web_check_dir(const struct gateway *gw)
{
	const char *dir = gw->cfg.web_dir;
	struct stat st;
	int err;

	if (!*dir)
		return 0;
	if (stat(dir, &st) < 0) {
		err = -errno;
		pr_error("web directory %s: stat failed: %s", dir,
			 strerror(-err));
		return err;
	}
	if (!S_ISDIR(st.st_mode)) {
		pr_error("web directory %s is not a directory", dir);
		return -ENOTDIR;
	}
	if (access(dir, R_OK | X_OK) < 0) {
		err = -errno;
		pr_error("web directory %s is not readable: %s", dir,
			 strerror(-err));
		return err;
	}
	return 0;
}

static const char *web_content_type(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (!dot || strchr(dot, '/'))
		return "application/octet-stream";
	for (size_t i = 0; i < sizeof(web_types) / sizeof(web_types[0]); i++)
		if (strcmp(dot, web_types[i].ext) == 0)
			return web_types[i].content_type;
	return "application/octet-stream";
}

/* Returns 0 when every segment of rel is a plain name: no "." or "..", no
 * empty segment, only [A-Za-z0-9._-] characters. Else -EINVAL. */
static int web_check_relative(const char *rel)
{
	const char *seg = rel;

	for (;;) {
		size_t len = strcspn(seg, "/");

		if (len == 0 || (len == 1 && seg[0] == '.') ||
		    (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return -EINVAL;
		for (size_t i = 0; i < len; i++) {
			char ch = seg[i];

			if (!((ch >= 'a' && ch <= 'z') ||
			      (ch >= 'A' && ch <= 'Z') ||
			      (ch >= '0' && ch <= '9') ||
			      ch == '.' || ch == '_' || ch == '-'))
				return -EINVAL;
		}
		if (seg[len] == '\0')
			return 0;
		seg += len + 1;
	}
}

/* Returns whether resolved lies inside the resolved directory dir. */
static int web_is_inside(const char *dir, const char *resolved)
{
	size_t len = strlen(dir);

	return strncmp(resolved, dir, len) == 0 && resolved[len] == '/';
}

/* Opens the regular file rel of the web directory. Returns its fd, or the
 * HTTP status to reply with as a negative number. */
static int web_open(const char *web_dir, const char *rel, off_t *size)
{
	char path[PATH_MAX], dir[PATH_MAX], resolved[PATH_MAX];
	struct stat st;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", web_dir, rel) >=
	    (int)sizeof(path))
		return -404;
	if (!realpath(web_dir, dir) || !realpath(path, resolved))
		return -404;
	/* A symbolic link inside the directory must not leave it. */
	if (!web_is_inside(dir, resolved))
		return -403;
	fd = open(resolved, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -404;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -404;
	}
	*size = st.st_size;
	return fd;
}

/* Appends size bytes of fd to out. Returns 0 or a negative errno. The
 * page's files are small, and evbuffer_add_file() of libevent 2.1 leaves
 * fd open or closes it depending on where it fails. */
static int web_read_file(struct evbuffer *out, int fd, off_t size)
{
	char chunk[16384];
	off_t left = size;
	ssize_t n;

	while (left > 0) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;    /* the file shrank */
		if (evbuffer_add(out, chunk, (size_t)n) < 0)
			return -ENOMEM;
		left -= n;
	}
	return 0;
}

static void web_send_file(struct evhttp_request *req, const char *rel,
			  int fd, off_t size)
{
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evbuffer_new();
	int err;

	if (!out) {
		close(fd);
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	err = web_read_file(out, fd, size);
	close(fd);
	if (err) {
		pr_warn("web file %s in --web-dir: read failed: %s", rel,
			strerror(-err));
		evbuffer_free(out);
		evhttp_send_error(req, 500, "cannot read the file");
		return;
	}
	evhttp_add_header(headers, "Content-Type", web_content_type(rel));
	evhttp_add_header(headers, "Cache-Control", "no-cache");
	evhttp_add_header(headers, "X-Content-Type-Options", "nosniff");
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

static void web_redirect(struct evhttp_request *req)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Location",
			  WEB_PREFIX);
	evhttp_send_reply(req, 301, "Moved Permanently", NULL);
}

void web_serve(struct gateway *gw, struct evhttp_request *req,
	       const char *path)
{
	const char *rel;
	char *decoded;
	size_t len;
	off_t size;
	int fd;

	if (!*gw->cfg.web_dir) {
		http_reply_error(req, 404, "not found: %s (the gateway serves the web page only with --web-dir)", path);
		return;
	}
	if (strcmp(path, "/web") == 0) {
		web_redirect(req);
		return;
	}
	decoded = evhttp_uridecode(path, 0, &len);
	if (!decoded) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	rel = decoded + strlen(WEB_PREFIX);
	if (!*rel)
		rel = "index.html";
	if (strlen(decoded) != len || web_check_relative(rel) < 0) {
		http_reply_error(req, 400, "invalid web path: %s", path);
		goto out_free;
	}
	fd = web_open(gw->cfg.web_dir, rel, &size);
	if (fd < 0)
		http_reply_error(req, -fd, "%s: %s", -fd == 403 ?
				 "outside the web directory" : "not found",
				 path);
	else
		web_send_file(req, rel, fd, size);
out_free:
	free(decoded);
}

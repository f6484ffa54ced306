// SPDX-License-Identifier: MIT
/*
 * The gateway's use of the kernel fan-out engine; see kmirror.h.
 *
 * Map contents, kept by the sess_cache hooks:
 * - imgw_socks holds conn id -> socket for every connection that entered a
 *   super-session cache and has not started closing (conn->in_kpath). The
 *   socket goes in on the first cache a connection joins, not at login:
 *   a socket in a sockmap sends through tcp_bpf for as long as it is there,
 *   so connections of no super session keep the plain TCP path.
 * - imgw_members holds {session id, conn id} for every cache membership.
 * A failed add rejects the cache change, so the maps never hold less than
 * the caches; a failed delete leaves a stale member entry, which the
 * broadcast never uses because it names its recipients from the cache.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conn_io.h"
#include "httputil.h"
#include "kmirror.h"
#include "ws.h"
#include "kpath.h"
#include "log.h"

static const char *const mode_names[] = {
	[KMIRROR_OFF] = "off",
	[KMIRROR_AUTO] = "auto",
	[KMIRROR_ON] = "on",
};

static const char *const reason_names[KMIRROR_MOVED_MAX] = {
	[KMIRROR_MOVED_OUTPUT_PENDING] = "output_pending",
	[KMIRROR_MOVED_NOT_MIRRORED] = "not_mirrored",
	[KMIRROR_MOVED_NOT_IN_MAP] = "not_in_map",
	[KMIRROR_MOVED_PARTIAL] = "partial",
	[KMIRROR_MOVED_FULL] = "socket_full",
	[KMIRROR_MOVED_CTL_BUSY] = "control_busy",
	[KMIRROR_MOVED_TOO_BIG] = "too_big",
	[KMIRROR_MOVED_ERROR] = "error",
};

const char *kmirror_mode_name(int mode)
{
	if (mode < KMIRROR_OFF || mode > KMIRROR_ON)
		return "?";
	return mode_names[mode];
}

int kmirror_mode_parse(const char *text)
{
	for (int i = KMIRROR_OFF; i <= KMIRROR_ON; i++) {
		if (strcmp(text, mode_names[i]) == 0)
			return i;
	}
	return -EINVAL;
}

uint64_t kmirror_key(const struct kmirror *km, uint64_t conn_id)
{
	return km->key_tag | (conn_id & KMIRROR_CONN_MASK);
}

/* Removes what an earlier process with this control slot left behind. */
static int kmirror_clear_stale(struct kmirror *km)
{
	struct kpath_member_filter f = {
		.conn_mask = ~KMIRROR_CONN_MASK,
		.conn_value = km->key_tag,
	};

	return kpath_members_clear(km->kp, &f);
}

struct kmirror *kmirror_new(struct kpath *kp)
{
	struct kmirror *km = calloc(1, sizeof(*km));
	int err;

	if (!km)
		return NULL;
	km->kp = kp;
	km->key_tag = (uint64_t)(kpath_ctl_slot(kp) + 1) << KMIRROR_CONN_BITS;
	err = kmirror_clear_stale(km);
	if (err) {
		free(km);
		errno = -err;
		return NULL;
	}
	return km;
}

void kmirror_free(struct kmirror *km)
{
	if (!km)
		return;
	if (km->drain_ev)
		event_free(km->drain_ev);
	kpath_close(km->kp);
	free(km->ids);
	free(km->sent);
	free(km->kernel);
	free(km->user);
	free(km);
}

/* Counts one map operation; logs and counts it when it failed. */
static int kmirror_op_done(struct kmirror *km, int err, const char *what,
			   uint64_t session_id, uint64_t conn_id)
{
	km->stats.mirror_ops++;
	if (!err)
		return 0;
	km->stats.mirror_failures++;
	pr_warn("kernel path: %s for session %llu conn %llu failed: %s", what,
		(unsigned long long)session_id, (unsigned long long)conn_id,
		strerror(-err));
	return err;
}

static int kmirror_sock_add(struct kmirror *km, uint64_t session_id,
			    struct conn *c)
{
	int err;

	if (c->in_kpath)
		return 0;
	err = kpath_sock_add(km->kp, kmirror_key(km, c->id), c->fd);
	err = kmirror_op_done(km, err, "adding the socket to imgw_socks",
			      session_id, c->id);
	if (err)
		return err;
	c->in_kpath = 1;
	km->stats.sockets++;
	return 0;
}

void kmirror_sock_release(struct kmirror *km, struct conn *c)
{
	int err;

	if (!km || !c->in_kpath)
		return;
	c->in_kpath = 0;
	km->stats.sockets--;
	err = kpath_sock_remove(km->kp, kmirror_key(km, c->id));
	/* A socket closed before leaves the map on its own. */
	if (err == -ENOENT)
		err = 0;
	kmirror_op_done(km, err, "removing the socket from imgw_socks", 0,
			c->id);
}

static int kmirror_conn_add(void *arg, uint64_t session_id,
			    const struct conn *cc)
{
	struct kmirror *km = arg;
	/* The hook gets a const pointer; only the in_kpath bit changes. */
	struct conn *c = (struct conn *)cc;
	int fresh = !c->in_kpath, err;

	err = kmirror_sock_add(km, session_id, c);
	if (err)
		return err;
	err = kpath_member_add(km->kp, session_id,
			       kmirror_key(km, c->id));
	err = kmirror_op_done(km, err, "adding the member to imgw_members",
			      session_id, c->id);
	/* The cache rejects c: a socket added for it alone goes again. */
	if (err && fresh)
		kmirror_sock_release(km, c);
	return err;
}

static void kmirror_conn_remove(void *arg, uint64_t session_id,
				const struct conn *c)
{
	struct kmirror *km = arg;
	int err;

	err = kpath_member_remove(km->kp, session_id,
				  kmirror_key(km, c->id));
	kmirror_op_done(km, err, "removing the member from imgw_members",
			session_id, c->id);
}

static void kmirror_session_drop(void *arg, uint64_t session_id)
{
	struct kmirror *km = arg;
	int err;
	struct kpath_member_filter f = {
		.match_session = 1,
		.session_id = session_id,
		.conn_mask = ~KMIRROR_CONN_MASK,
		.conn_value = km->key_tag,
	};

	/*
	 * Only our entries: another gateway may cache the same session.
	 * XXX: Clearing a session walks the whole imgw_members map, so a
	 * demote costs O(memberships of every gateway on the host), not
	 * O(its members).
	 */
	err = kpath_members_clear(km->kp, &f);
	kmirror_op_done(km, err, "clearing the session in imgw_members",
			session_id, 0);
}

const struct sess_cache_hooks kmirror_hooks = {
	.conn_add = kmirror_conn_add,
	.conn_remove = kmirror_conn_remove,
	.session_drop = kmirror_session_drop,
};

static void kmirror_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kmirror *km = arg;

	kpath_drain(km->kp);
}

/* Opens the kernel path; returns NULL with the reason in reason[]. */
static struct kmirror *kmirror_open(struct gateway *gw, char *reason,
				    size_t size)
{
	struct kpath *kp;
	struct kmirror *km;
	int err;

	kp = kpath_open(gw->cfg.bpf_pin_dir, reason, size);
	if (!kp)
		return NULL;
	km = kmirror_new(kp);
	if (!km) {
		err = -errno;
		snprintf(reason, size, "clearing stale entries of imgw_members failed: %s", strerror(-err));
		kpath_close(kp);
		errno = -err;
		return NULL;
	}
	km->drain_ev = event_new(gw->base, kpath_drain_fd(kp),
				 EV_READ | EV_PERSIST, kmirror_drain_cb, km);
	if (!km->drain_ev || event_add(km->drain_ev, NULL) < 0) {
		snprintf(reason, size, "watching the control socket failed");
		kmirror_free(km);
		errno = ENOMEM;
		return NULL;
	}
	return km;
}

int kmirror_start(struct gateway *gw)
{
	char reason[320];
	int mode = gw->cfg.kernel_path;

	if (mode == KMIRROR_OFF) {
		pr_info("kernel path off (kernel_path = off): SUPER broadcasts use the userspace path");
		return 0;
	}
	gw->kmirror = kmirror_open(gw, reason, sizeof(reason));
	if (!gw->kmirror && mode == KMIRROR_ON) {
		pr_error("kernel path unavailable and kernel_path = on: %s",
			 reason);
		return -errno;
	}
	if (!gw->kmirror) {
		pr_info("kernel path not used (kernel_path = auto): %s; SUPER broadcasts use the userspace path",
			reason);
		return 0;
	}
	gw->caches.hooks = &kmirror_hooks;
	gw->caches.hook_arg = gw->kmirror;
	pr_info("kernel path on (kernel_path = %s): maps pinned under %s, control slot %u; SUPER broadcasts go through the kernel to members with an empty output buffer",
		kmirror_mode_name(mode), gw->cfg.bpf_pin_dir,
		kpath_ctl_slot(gw->kmirror->kp));
	return 0;
}

void kmirror_stop(struct gateway *gw)
{
	gw->caches.hooks = NULL;
	gw->caches.hook_arg = NULL;
	kmirror_free(gw->kmirror);
	gw->kmirror = NULL;
}

static int kmirror_reserve(struct kmirror *km, size_t n)
{
	size_t cap = km->cap ? km->cap : 64;
	void *p;

	if (n <= km->cap)
		return 0;
	while (cap < n)
		cap *= 2;
	p = realloc(km->ids, cap * sizeof(*km->ids));
	if (!p)
		return -ENOMEM;
	km->ids = p;
	p = realloc(km->sent, cap * sizeof(*km->sent));
	if (!p)
		return -ENOMEM;
	km->sent = p;
	p = realloc(km->kernel, cap * sizeof(*km->kernel));
	if (!p)
		return -ENOMEM;
	km->kernel = p;
	p = realloc(km->user, cap * sizeof(*km->user));
	if (!p)
		return -ENOMEM;
	km->user = p;
	km->cap = cap;
	return 0;
}

/*
 * Splits conns into km->kernel (mirrored, output buffer empty) and
 * km->user, counting why each of the others stays in userspace. A closing
 * connection goes to the user list, where deliver_frame() skips it.
 */
static void kmirror_split(struct kmirror *km, struct conn **conns, size_t n,
			  size_t *n_kernel, size_t *n_ws, size_t *n_user)
{
	size_t nk = 0, nw = 0, nu = 0;

	for (size_t i = 0; i < n; i++) {
		struct conn *c = conns[i];

		if (!conn_is_live(c)) {
			km->user[nu++] = c;
		} else if (!c->in_kpath) {
			km->stats.moved[KMIRROR_MOVED_NOT_MIRRORED]++;
			km->user[nu++] = c;
		} else if (evbuffer_get_length(bufferevent_get_output(c->bev))) {
			/* Kernel bytes would overtake the queued ones. */
			km->stats.moved[KMIRROR_MOVED_OUTPUT_PENDING]++;
			km->user[nu++] = c;
		} else if (c->ws) {
			/* WebSocket members fill km->kernel from the end. */
			km->kernel[n - ++nw] = c;
		} else {
			km->kernel[nk++] = c;
		}
	}
	*n_kernel = nk;
	*n_ws = nw;
	*n_user = nu;
}

/* Counts the recipients kpath moved to userspace, from its counters. */
static void kmirror_count_moved(struct kmirror *km,
				const struct kpath_stats *a,
				const struct kpath_stats *b, int err, size_t n)
{
	uint64_t *moved = km->stats.moved;
	uint64_t settled;

	moved[KMIRROR_MOVED_PARTIAL] += b->partial - a->partial;
	moved[KMIRROR_MOVED_FULL] += b->fallback_full - a->fallback_full;
	moved[KMIRROR_MOVED_NOT_IN_MAP] +=
		b->fallback_no_socket - a->fallback_no_socket +
		b->fallback_not_member - a->fallback_not_member;
	moved[KMIRROR_MOVED_CTL_BUSY] +=
		b->fallback_ctl_busy - a->fallback_ctl_busy;
	moved[KMIRROR_MOVED_TOO_BIG] +=
		b->fallback_too_big - a->fallback_too_big;
	if (!err)
		return;
	settled = b->deliveries - a->deliveries + b->partial - a->partial +
		  b->fallback_full - a->fallback_full +
		  b->fallback_no_socket - a->fallback_no_socket +
		  b->fallback_not_member - a->fallback_not_member +
		  b->fallback_ctl_busy - a->fallback_ctl_busy;
	km->stats.errors++;
	moved[KMIRROR_MOVED_ERROR] += n - settled;
}

/*
 * Finishes c's copy after the kernel queued sent bytes of the len bytes it
 * was handed (the WebSocket-framed copy for a WebSocket member, whose
 * offset deliver_rest() applies to that copy).
 */
static int kmirror_settle(struct gateway *gw, struct kmirror *km,
			  struct shared_frame *sf, size_t len, struct conn *c,
			  uint32_t sent)
{
	int err;

	if (sent == len) {
		km->stats.deliveries_kernel++;
		gw->stats.deliveries++;
		gw->stats.frames_sent++;
		return 1;
	}
	/* The kernel bytes are a prefix; the rest follows them. */
	err = deliver_rest(sf, c, sent);
	if (err == 0 || err == -ENOBUFS) {
		km->stats.deliveries_user++;
		gw->stats.deliveries++;
		return 1;
	}
	pr_warn("conn %llu peer %s: queueing the last %zu bytes of a push after the kernel path failed: %s",
		(unsigned long long)c->id, c->peer, len - sent,
		strerror(-err));
	return 0;
}

/*
 * Hands wire (sf itself, or its WebSocket-framed copy) to the kernel for
 * the n connections at conns, and settles each one's copy.
 * XXX: Bytes the kernel queues do not count against --out-cap: on loopback
 * a member that never reads took 12 MB of redirected broadcasts without a
 * short count, so the slow-reader close does not bound its memory.
 */
static size_t kmirror_kernel_send(struct gateway *gw, struct kmirror *km,
				  uint64_t session_id,
				  struct shared_frame *sf,
				  const struct shared_frame *wire,
				  struct conn **conns, size_t n)
{
	struct kpath_stats before, after;
	size_t queued = 0;
	int err;

	for (size_t i = 0; i < n; i++)
		km->ids[i] = kmirror_key(km, conns[i]->id);
	kpath_get_stats(km->kp, &before);
	err = kpath_broadcast(km->kp, session_id, wire->data, wire->len,
			      km->ids, n, km->sent);
	kpath_get_stats(km->kp, &after);
	km->stats.broadcasts_kernel++;
	kmirror_count_moved(km, &before, &after, err, n);
	if (err)
		pr_warn("kernel path: broadcast of session %llu to %zu connections failed, sending the rest through userspace: %s",
			(unsigned long long)session_id, n, strerror(-err));
	for (size_t i = 0; i < n; i++)
		queued += kmirror_settle(gw, km, sf, wire->len, conns[i],
					 km->sent[i]);
	return queued;
}

size_t kmirror_broadcast(struct gateway *gw, uint64_t session_id,
			 struct shared_frame *sf, struct conn **conns,
			 size_t n)
{
	struct kmirror *km = gw->kmirror;
	size_t n_kernel = 0, n_ws = 0, n_user = 0, queued = 0, user_queued;
	struct shared_frame *wsf = NULL;

	if (kmirror_reserve(km, n)) {
		km->stats.broadcasts_user++;
		km->stats.moved[KMIRROR_MOVED_ERROR] += n;
		user_queued = deliver_frame(sf, conns, n);
		km->stats.deliveries_user += user_queued;
		return user_queued;
	}
	kmirror_split(km, conns, n, &n_kernel, &n_ws, &n_user);
	/* One WebSocket-framed copy serves every WebSocket member. */
	if (n_ws && !(wsf = ws_shared_frame(sf))) {
		for (size_t i = 0; i < n_ws; i++)
			km->user[n_user++] = km->kernel[n - 1 - i];
		km->stats.moved[KMIRROR_MOVED_ERROR] += n_ws;
		n_ws = 0;
	}
	if (n_kernel)
		queued = kmirror_kernel_send(gw, km, session_id, sf, sf,
					     km->kernel, n_kernel);
	if (n_ws)
		queued += kmirror_kernel_send(gw, km, session_id, sf, wsf,
					      km->kernel + n - n_ws, n_ws);
	if (!n_kernel && !n_ws)
		km->stats.broadcasts_user++;
	user_queued = deliver_frame(sf, km->user, n_user);
	km->stats.deliveries_user += user_queued;
	return queued + user_queued;
}

static void kmirror_metric_path(struct evbuffer *out, const char *name,
				const char *help, uint64_t kernel,
				uint64_t user)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name,
			    help, name);
	evbuffer_add_printf(out, "%s{path=\"kernel\"} %llu\n", name,
			    (unsigned long long)kernel);
	evbuffer_add_printf(out, "%s{path=\"user\"} %llu\n", name,
			    (unsigned long long)user);
}

static void kmirror_metric_moved(struct evbuffer *out,
				 const struct kmirror_stats *st)
{
	const char *name = "imgw_kpath_moved_to_user_total";

	evbuffer_add_printf(out, "# HELP %s Recipients of a SUPER broadcast sent through the userspace path instead of the kernel path, by reason.\n# TYPE %s counter\n",
			    name, name);
	for (int i = 0; i < KMIRROR_MOVED_MAX; i++)
		evbuffer_add_printf(out, "%s{reason=\"%s\"} %llu\n", name,
				    reason_names[i],
				    (unsigned long long)st->moved[i]);
}

void kmirror_metrics(struct gateway *gw, struct evbuffer *out)
{
	static const struct kmirror_stats zero;
	const struct kmirror_stats *st = gw->kmirror ? &gw->kmirror->stats :
				       &zero;

	metrics_append(out, "imgw_kpath_enabled", "gauge",
		       "1 when SUPER broadcasts may go through the kernel path, else 0.",
		       gw->kmirror != NULL);
	kmirror_metric_path(out, "imgw_super_broadcasts_by_path_total",
			    "SUPER broadcasts that made a kernel fan-out call (kernel) or went to userspace only (user).",
			    st->broadcasts_kernel, st->broadcasts_user);
	kmirror_metric_path(out, "imgw_super_deliveries_by_path_total",
			    "SUPER broadcast copies queued whole by the kernel (kernel) or through an output buffer (user).",
			    st->deliveries_kernel, st->deliveries_user);
	kmirror_metric_moved(out, st);
	metrics_append(out, "imgw_kpath_errors_total", "counter",
		       "Kernel fan-out calls that failed (map access or sendmmsg).",
		       st->errors);
	metrics_append(out, "imgw_kpath_mirror_ops_total", "counter",
		       "BPF map updates and deletes that mirror the super-session caches.",
		       st->mirror_ops);
	metrics_append(out, "imgw_kpath_mirror_failures_total", "counter",
		       "Mirror map operations that failed.",
		       st->mirror_failures);
	metrics_append(out, "imgw_kpath_sockets", "gauge",
		       "Client sockets this gateway holds in the imgw_socks sockhash.",
		       st->sockets);
}

static json_t *kmirror_moved_json(const struct kmirror_stats *st)
{
	json_t *moved = json_object();

	for (int i = 0; i < KMIRROR_MOVED_MAX && moved; i++)
		json_object_set_new(moved, reason_names[i],
				    json_integer((json_int_t)st->moved[i]));
	return moved;
}

json_t *kmirror_state_json(struct gateway *gw)
{
	struct kmirror *km = gw->kmirror;
	struct kpath_stats kst;

	if (!km)
		return json_pack("{s:s, s:b, s:s}",
				 "mode", kmirror_mode_name(gw->cfg.kernel_path),
				 "enabled", 0,
				 "pin_dir", gw->cfg.bpf_pin_dir);
	kpath_get_stats(km->kp, &kst);
	return json_pack("{s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o*}",
			 "mode", kmirror_mode_name(gw->cfg.kernel_path),
			 "enabled", 1,
			 "pin_dir", gw->cfg.bpf_pin_dir,
			 "control_slot", (json_int_t)kpath_ctl_slot(km->kp),
			 "sockets", (json_int_t)km->stats.sockets,
			 "broadcasts_kernel",
			 (json_int_t)km->stats.broadcasts_kernel,
			 "broadcasts_user", (json_int_t)km->stats.broadcasts_user,
			 "deliveries_kernel",
			 (json_int_t)km->stats.deliveries_kernel,
			 "deliveries_user", (json_int_t)km->stats.deliveries_user,
			 "errors", (json_int_t)km->stats.errors,
			 "mirror_ops", (json_int_t)km->stats.mirror_ops,
			 "mirror_failures", (json_int_t)km->stats.mirror_failures,
			 "sendmmsg_batches", (json_int_t)kst.batches,
			 "moved_to_user", kmirror_moved_json(&km->stats));
}

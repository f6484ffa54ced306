// SPDX-License-Identifier: MIT
/*
 * Login lifecycle on the daemon side: AUTH checks a token and records the
 * device online, PRESENCE offline removes it again. A device logged in twice
 * keeps the newer login; the older connection is kicked.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers.h"
#include "imgw.pb-c.h"
#include "log.h"
#include "pbcheck.h"
#include "superwire.h"
#include "token.h"

/* Sessions one login lists at most: a user in more gets those with the
 * latest messages and sessions_truncated, which keeps AUTH_RESULT far below
 * FRAME_HARD_MAX_BODY (names are at most 256 bytes). */
#define AUTH_MAX_SESSIONS 1000

/* The parts of a LoginResult that own memory, freed after sending. */
struct auth_reply {
	Imgw__LoginResult result;
	Imgw__SessionInfo *infos;
	Imgw__SessionInfo **info_ptrs;
	struct store_session *rows;
	size_t n_rows;
	uint64_t *cache_sessions;     /* AuthResult.cache_sessions */
	size_t n_cache_sessions;
};

static void auth_reply_free(struct auth_reply *r)
{
	for (size_t i = 0; r->infos && i < r->n_rows; i++)
		free(r->infos[i].members);
	free(r->infos);
	free(r->info_ptrs);
	free(r->cache_sessions);
	store_sessions_free(r->rows, r->n_rows);
}

static void auth_send(struct link *l, uint32_t request_id, const Imgw__Auth *a,
		      Imgw__LoginResult *result, const struct auth_reply *r)
{
	Imgw__AuthResult ar = IMGW__AUTH_RESULT__INIT;
	int err;

	ar.conn_id = a->device ? a->device->conn_id : 0;
	ar.client_request_id = a->client_request_id;
	ar.result = result;
	if (r) {
		ar.cache_sessions = r->cache_sessions;
		ar.n_cache_sessions = r->n_cache_sessions;
	}
	result->conn_id = ar.conn_id;
	result->server_time_ms = bizsvr_now_ms();
	err = link_send(l, OP_AUTH_RESULT, request_id, &ar.base);
	if (err < 0)
		pr_warn("auth: sending AUTH_RESULT to node %s conn %llu failed: %s",
			link_node_id(l), (unsigned long long)ar.conn_id,
			strerror(-err));
}

/* Returns whether the AUTH_RESULT carrying r fits in one frame, with room
 * for the fields auth_send() adds (ids, time: under 64 bytes). */
static int auth_result_fits(const struct auth_reply *r)
{
	size_t len = protobuf_c_message_get_packed_size(&r->result.base);

	len += r->n_cache_sessions * 11 + 64;
	return len <= FRAME_HARD_MAX_BODY;
}

static void auth_reject(struct bizsvr *bz, struct link *l, uint32_t request_id,
			const Imgw__Auth *a, Imgw__ErrorCode code,
			const char *reason)
{
	Imgw__LoginResult result = IMGW__LOGIN_RESULT__INIT;
	const Imgw__LoginRequest *login = a->login;

	bz->stats.login_failures++;
	/* An invalid id may carry a newline, so it is never logged. */
	pr_info("auth: login rejected: user %s, device %s, node %s conn %llu: %s",
		login && bizsvr_valid_id(login->user_id) ?
		login->user_id : "(invalid)",
		login && bizsvr_valid_id(login->device_id) ?
		login->device_id : "(invalid)",
		link_node_id(l),
		(unsigned long long)(a->device ? a->device->conn_id : 0),
		reason);
	result.code = code;
	result.reason = (char *)reason;
	auth_send(l, request_id, a, &result, NULL);
}

/* Returns NULL when the login may proceed, or the reason it may not. The
 * error code goes to *code. */
static const char *auth_check(struct bizsvr *bz, const Imgw__Auth *a,
			      Imgw__ErrorCode *code)
{
	const Imgw__LoginRequest *login = a->login;
	int status;

	*code = IMGW__ERROR_CODE__ERROR_BAD_REQUEST;
	if (!login || !a->device)
		return "AUTH without login or device";
	if (!bizsvr_valid_id(login->user_id))
		return "invalid user id";
	if (!bizsvr_valid_id(login->device_id))
		return "invalid device id";
	*code = IMGW__ERROR_CODE__ERROR_AUTH_FAILED;
	status = token_verify(bz->cfg->secret, login->token, login->user_id,
			      (int64_t)time(NULL));
	if (status != TOKEN_OK)
		return token_status_str(status);
	return NULL;
}

/* Points info->members at the cached members of a direct session. */
static int auth_fill_members(struct bizsvr *bz, Imgw__SessionInfo *info)
{
	struct session *s = session_get(bz->sessions, info->session_id);
	struct session_member *m, *tmp;
	size_t i = 0;

	if (!s)
		return -errno;
	info->members = calloc(s->member_count ? s->member_count : 1,
			       sizeof(*info->members));
	if (!info->members)
		return -ENOMEM;
	HASH_ITER(hh, s->members, m, tmp)
		info->members[i++] = m->user_id;
	info->n_members = i;
	return 0;
}

/*
 * Sets the type of info from the super table and, when the gateway of l
 * may hold a cache for the session, lists the session in
 * r->cache_sessions so the gateway adds the new connection to it.
 */
static void auth_super_session(struct bizsvr *bz, struct link *l,
			       Imgw__SessionInfo *info, struct auth_reply *r)
{
	info->type = (Imgw__SessionType)superwire_type(bz->super,
						       info->session_id);
	if (superwire_may_cache(bz->super, info->session_id,
				link_super_node(l)))
		r->cache_sessions[r->n_cache_sessions++] = info->session_id;
}

/* Fills r->result.sessions with the sessions of user. Returns 0 or a
 * negative errno. */
static int auth_list_sessions(struct bizsvr *bz, struct link *l,
			      const char *user, struct auth_reply *r)
{
	int err;

	/* One row more than listed shows whether the list was cut. */
	err = store_user_sessions_recent(bz->store, user,
					 AUTH_MAX_SESSIONS + 1, &r->rows,
					 &r->n_rows);
	if (err < 0)
		return err;
	if (r->n_rows > AUTH_MAX_SESSIONS) {
		r->result.sessions_truncated = 1;
		pr_info("auth: user %s is in more than %d sessions, listing the %d with the latest messages",
			user, AUTH_MAX_SESSIONS, AUTH_MAX_SESSIONS);
		store_session_clear(&r->rows[AUTH_MAX_SESSIONS]);
		r->n_rows = AUTH_MAX_SESSIONS;
	}
	r->infos = calloc(r->n_rows ? r->n_rows : 1, sizeof(*r->infos));
	r->info_ptrs = calloc(r->n_rows ? r->n_rows : 1,
			      sizeof(*r->info_ptrs));
	r->cache_sessions = calloc(r->n_rows ? r->n_rows : 1,
				   sizeof(*r->cache_sessions));
	if (!r->infos || !r->info_ptrs || !r->cache_sessions)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_rows; i++) {
		Imgw__SessionInfo *info = &r->infos[i];

		imgw__session_info__init(info);
		info->session_id = r->rows[i].id;
		info->kind = (Imgw__SessionKind)r->rows[i].kind;
		info->name = r->rows[i].name;
		info->last_seq = r->rows[i].last_seq;
		auth_super_session(bz, l, info, r);
		if (info->kind == IMGW__SESSION_KIND__SESSION_KIND_DIRECT) {
			err = auth_fill_members(bz, info);
			if (err < 0)
				return err;
		}
		r->info_ptrs[i] = info;
	}
	r->result.sessions = r->info_ptrs;
	r->result.n_sessions = r->n_rows;
	return 0;
}

/* Kicks the older connection of the device when it is on another node or
 * another connection than the new login. */
static void auth_kick_older(struct bizsvr *bz, struct link *l,
			    const Imgw__LoginRequest *login, uint64_t conn_id)
{
	struct presence_device *old;
	Imgw__KickDevice kick = IMGW__KICK_DEVICE__INIT;
	Imgw__Device dev = IMGW__DEVICE__INIT;
	struct link *old_link;
	int err;

	old = presence_find(bz->presence, login->user_id, login->device_id);
	if (!old || (old->conn_id == conn_id &&
		     strcmp(old->node->node_id, link_node_id(l)) == 0))
		return;
	old_link = link_find(bz->links, old->node->node_id);
	if (!old_link)
		return;
	dev.user_id = login->user_id;
	dev.device_id = login->device_id;
	dev.conn_id = old->conn_id;
	kick.device = &dev;
	kick.reason = "duplicate login";
	err = link_send(old_link, OP_KICK_DEVICE, 0, &kick.base);
	pr_info("auth: %s/%s logged in again on node %s conn %llu, kicking node %s conn %llu%s%s",
		login->user_id, login->device_id, link_node_id(l),
		(unsigned long long)conn_id, old->node->node_id,
		(unsigned long long)old->conn_id, err < 0 ? ": send failed: " : "",
		err < 0 ? strerror(-err) : "");
}

void auth_handle(struct bizsvr *bz, struct link *l, uint32_t request_id,
		 const uint8_t *body, size_t len)
{
	struct auth_reply r = { .result = IMGW__LOGIN_RESULT__INIT };
	Imgw__ErrorCode code;
	const char *reason;
	Imgw__Auth *a;
	int err;

	/* protobuf-c cuts strings at a NUL byte: "u\0x" would log in as u. */
	a = pb_check_strings(&imgw__auth__descriptor, body, len, 1) == 0 ?
	    imgw__auth__unpack(NULL, len, body) : NULL;
	if (!a) {
		Imgw__Auth empty = IMGW__AUTH__INIT;

		/* The gateway matches the reply by the frame's request id. */
		pr_warn("auth: undecodable AUTH body or a NUL in a string (%zu bytes) from node %s",
			len, link_node_id(l));
		auth_reject(bz, l, request_id, &empty,
			    IMGW__ERROR_CODE__ERROR_BAD_BODY,
			    "undecodable AUTH body");
		return;
	}
	reason = auth_check(bz, a, &code);
	if (reason) {
		auth_reject(bz, l, request_id, a, code, reason);
		goto out;
	}
	err = auth_list_sessions(bz, l, a->login->user_id, &r);
	if (err < 0) {
		pr_error("auth: listing sessions of %s failed: %s",
			 a->login->user_id, strerror(-err));
		auth_reject(bz, l, request_id, a,
			    IMGW__ERROR_CODE__ERROR_INTERNAL,
			    "session list unavailable");
		goto out;
	}
	if (!auth_result_fits(&r)) {
		/* Only this login fails: the link and its other users stay,
		 * and the device is not marked online. */
		pr_warn("auth: login result of %s exceeds %u bytes, rejecting the login on node %s conn %llu",
			a->login->user_id, FRAME_HARD_MAX_BODY, link_node_id(l),
			(unsigned long long)a->device->conn_id);
		auth_reject(bz, l, request_id, a,
			    IMGW__ERROR_CODE__ERROR_INTERNAL,
			    "login result too large");
		goto out;
	}
	auth_kick_older(bz, l, a->login, a->device->conn_id);
	/* The platform is informational: an unusable one is dropped. */
	err = presence_set(bz->presence, a->login->user_id,
			   a->login->device_id, link_node_id(l),
			   a->device->conn_id,
			   bizsvr_valid_text(a->login->platform, 64) ?
			   a->login->platform : "");
	if (err < 0) {
		pr_error("auth: recording %s/%s online failed: %s",
			 a->login->user_id, a->login->device_id,
			 strerror(-err));
		auth_reject(bz, l, request_id, a,
			    IMGW__ERROR_CODE__ERROR_INTERNAL, "out of memory");
		goto out;
	}
	bz->stats.logins++;
	pr_debug("auth: %s/%s online on node %s conn %llu",
		 a->login->user_id, a->login->device_id, link_node_id(l),
		 (unsigned long long)a->device->conn_id);
	auth_send(l, request_id, a, &r.result, &r);
out:
	auth_reply_free(&r);
	imgw__auth__free_unpacked(a, NULL);
}

void auth_handle_presence(struct bizsvr *bz, struct link *l,
			  const uint8_t *body, size_t len)
{
	Imgw__Presence *pr = imgw__presence__unpack(NULL, len, body);
	const Imgw__Device *dev;
	int removed;

	if (!pr || !pr->device || !pr->device->user_id ||
	    !pr->device->device_id) {
		pr_warn("auth: invalid PRESENCE body (%zu bytes) from node %s, ignoring it",
			len, link_node_id(l));
		imgw__presence__free_unpacked(pr, NULL);
		return;
	}
	dev = pr->device;
	if (pr->online) {
		/* Logins come through AUTH, which checks the token. */
		pr_warn("auth: PRESENCE online for %s/%s from node %s ignored: only AUTH brings a device online",
			dev->user_id, dev->device_id, link_node_id(l));
	} else {
		removed = presence_remove_conn(bz->presence, dev->user_id,
					       dev->device_id, link_node_id(l),
					       dev->conn_id);
		pr_debug("auth: %s/%s conn %llu on node %s offline%s",
			 dev->user_id, dev->device_id,
			 (unsigned long long)dev->conn_id, link_node_id(l),
			 removed ? "" : " (already replaced)");
	}
	imgw__presence__free_unpacked(pr, NULL);
}

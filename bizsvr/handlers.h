/* SPDX-License-Identifier: MIT */
/*
 * Handlers of the frames a registered gateway sends, called by the link
 * module with the frame's request id and body. They reply on the link and
 * never free it; a fatal problem with the link goes through
 * link_close_later().
 */
#ifndef BIZSVR_HANDLERS_H
#define BIZSVR_HANDLERS_H

#include <stddef.h>
#include <stdint.h>

#include "bizsvr.h"
#include "link.h"

/* AUTH: check a login, kick an older login of the device, record presence,
 * reply AUTH_RESULT. In auth.c. */
void auth_handle(struct bizsvr *bz, struct link *l, uint32_t request_id,
		 const uint8_t *body, size_t len);

/* PRESENCE: a logged-in connection closed. In auth.c. */
void auth_handle_presence(struct bizsvr *bz, struct link *l,
			  const uint8_t *body, size_t len);

/* UPSTREAM: a client SEND or SYNC, answered with REPLY. In msg.c. */
void msg_handle_upstream(struct bizsvr *bz, struct link *l,
			 uint32_t request_id, const uint8_t *body, size_t len);

#endif

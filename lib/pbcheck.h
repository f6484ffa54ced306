/* SPDX-License-Identifier: MIT */
/*
 * Checks of untrusted protobuf bodies that protobuf-c's unpack does not
 * make: it ends a string at its first NUL byte, so "fz\0evil" would unpack
 * as "fz". And a check of ids before they reach a log line.
 */
#ifndef IMGW_PBCHECK_H
#define IMGW_PBCHECK_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/*
 * Walks the wire fields of body as a message of desc and rejects a string
 * field whose bytes contain a NUL. With recursive set, nested messages are
 * walked too. Unknown fields are skipped. Returns 0, or -EBADMSG for a NUL
 * in a string or a body that is not valid protobuf wire format.
 */
int pb_check_strings(const ProtobufCMessageDescriptor *desc,
		     const uint8_t *body, size_t len, int recursive);

/* Returns whether text is valid UTF-8 of at most max_len bytes without
 * control characters (below 0x20, and 0x7f). NULL is not valid. */
int text_is_printable(const char *text, size_t max_len);

#endif

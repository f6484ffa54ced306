// SPDX-License-Identifier: MIT
/* Checks of untrusted protobuf bodies and ids; see pbcheck.h. */
#include <errno.h>
#include <string.h>

#include "pbcheck.h"

/* Depth of nested messages walked at most; deeper ones are rejected. */
#define PB_CHECK_MAX_DEPTH 8

/* Reads a varint at *p (before end). Returns 0 or -EBADMSG. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned int shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return -EBADMSG;
		v |= (uint64_t)(**p & 0x7f) << shift;
		if (!(*(*p)++ & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -EBADMSG;
}

static int check_message(const ProtobufCMessageDescriptor *desc,
			 const uint8_t *p, const uint8_t *end, int depth);

/* Checks one length-delimited field of desc with number num. */
static int check_delimited(const ProtobufCMessageDescriptor *desc,
			   uint64_t num, const uint8_t *data, size_t len,
			   int depth)
{
	const ProtobufCFieldDescriptor *field = NULL;

	if (num <= UINT32_MAX)
		field = protobuf_c_message_descriptor_get_field(desc,
								(unsigned)num);
	if (!field)
		return 0;
	if (field->type == PROTOBUF_C_TYPE_STRING)
		return memchr(data, 0, len) ? -EBADMSG : 0;
	if (field->type == PROTOBUF_C_TYPE_MESSAGE && depth > 0)
		return check_message(field->descriptor, data, data + len,
				     depth - 1);
	return 0;
}

static int check_message(const ProtobufCMessageDescriptor *desc,
			 const uint8_t *p, const uint8_t *end, int depth)
{
	uint64_t key, len;
	int err;

	while (p < end) {
		err = read_varint(&p, end, &key);
		if (err)
			return err;
		switch (key & 7) {
		case 0:
			err = read_varint(&p, end, &len);
			break;
		case 1:
			err = end - p < 8 ? -EBADMSG : 0;
			p += err ? 0 : 8;
			break;
		case 5:
			err = end - p < 4 ? -EBADMSG : 0;
			p += err ? 0 : 4;
			break;
		case 2:
			err = read_varint(&p, end, &len);
			if (!err && len > (uint64_t)(end - p))
				err = -EBADMSG;
			if (!err)
				err = check_delimited(desc, key >> 3, p,
						      (size_t)len, depth);
			p += err ? 0 : len;
			break;
		default:
			/* Groups are not used by proto3. */
			err = -EBADMSG;
			break;
		}
		if (err)
			return err;
	}
	return 0;
}

int pb_check_strings(const ProtobufCMessageDescriptor *desc,
		     const uint8_t *body, size_t len, int recursive)
{
	return check_message(desc, body, body + len,
			     recursive ? PB_CHECK_MAX_DEPTH : 0);
}

/* Returns the length of the UTF-8 sequence at s, or 0 when it is invalid
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_sequence_len(const unsigned char *s)
{
	unsigned char c = s[0];
	uint32_t cp;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	cp = c & (0xff >> (n + 1));
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

int text_is_printable(const char *text, size_t max_len)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t n;

	if (!text || strlen(text) > max_len)
		return 0;
	while (*p) {
		if (*p < 0x20 || *p == 0x7f)
			return 0;
		n = utf8_sequence_len(p);
		if (!n)
			return 0;
		p += n;
	}
	return 1;
}

// SPDX-License-Identifier: MIT
/* Helpers shared by the business daemon's modules; see bizsvr.h. */
#include <string.h>
#include <time.h>

#include "bizsvr.h"
#include "token.h"

uint64_t bizsvr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t bizsvr_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

int bizsvr_valid_text(const char *text, size_t max_len)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t len, n;

	if (!text)
		return 0;
	len = strlen(text);
	if (len > max_len)
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

int bizsvr_valid_id(const char *id)
{
	return id && id[0] && bizsvr_valid_text(id, TOKEN_MAX_USER_LEN);
}

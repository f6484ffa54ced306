// SPDX-License-Identifier: MIT
/* Helpers shared by the business daemon's modules; see bizsvr.h. */
#include <string.h>
#include <time.h>

#include "bizsvr.h"
#include "pbcheck.h"
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

int bizsvr_valid_text(const char *text, size_t max_len)
{
	return text_is_printable(text, max_len);
}

int bizsvr_valid_id(const char *id)
{
	return id && id[0] && bizsvr_valid_text(id, TOKEN_MAX_USER_LEN);
}

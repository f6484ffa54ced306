// SPDX-License-Identifier: MIT
/* Helpers shared by the business daemon's modules; see bizsvr.h. */
#include <string.h>
#include <time.h>

#include "bizsvr.h"
#include "clock.h"
#include "pbcheck.h"
#include "token.h"

uint64_t bizsvr_now_ms(void)
{
	return clock_ns(CLOCK_REALTIME) / 1000000;
}

int64_t bizsvr_mono_ms(void)
{
	return (int64_t)(clock_ns(CLOCK_MONOTONIC) / 1000000);
}

int bizsvr_valid_text(const char *text, size_t max_len)
{
	return text_is_printable(text, max_len);
}

int bizsvr_valid_id(const char *id)
{
	return id && id[0] && bizsvr_valid_text(id, TOKEN_MAX_USER_LEN);
}

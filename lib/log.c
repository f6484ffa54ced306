// SPDX-License-Identifier: MIT
/* Leveled logging to stderr; see log.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"

int log_threshold = LOG_LEVEL_INFO;
static const char *log_program = "imgw";

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_init(const char *program, int level)
{
	log_program = program;
	log_threshold = level;
}

int log_level_parse(const char *name)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(name, level_names[i]) == 0)
			return i;
	}
	return -1;
}

void log_write(int level, const char *fmt, ...)
{
	char stamp[32];
	struct timespec now;
	struct tm tm;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	/* One fprintf per part would interleave with other writers. */
	char line[2048];
	int n = snprintf(line, sizeof(line), "%s.%03ldZ %s %s: ", stamp,
			 now.tv_nsec / 1000000, log_program,
			 level_names[level & 3]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}

static void libevent_log_cb(int severity, const char *msg)
{
	int level;

	switch (severity) {
	case EVENT_LOG_ERR:
		level = LOG_LEVEL_WARN;
		break;
	case EVENT_LOG_WARN:
		level = LOG_LEVEL_INFO;
		break;
	default:
		level = LOG_LEVEL_DEBUG;
		break;
	}
	log_at(level, "libevent: %s", msg);
}

void log_route_libevent(void)
{
	event_set_log_callback(libevent_log_cb);
}

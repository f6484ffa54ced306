/* SPDX-License-Identifier: MIT */
/*
 * Leveled logging to stderr, one line per event, with a timestamp and the
 * program name. The level is checked before the arguments are formatted.
 */
#ifndef IMGW_LOG_H
#define IMGW_LOG_H

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN = 1,
	LOG_LEVEL_INFO = 2,
	LOG_LEVEL_DEBUG = 3,
};

extern int log_threshold;

void log_init(const char *program, int level);

/* Parses "error", "warn", "info" or "debug"; returns -1 for anything else. */
int log_level_parse(const char *name);

/* Routes libevent's own warnings into this log, one level lower. */
void log_route_libevent(void);

void log_write(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_at(level, ...)                                 \
	do {                                               \
		if ((level) <= log_threshold)              \
			log_write((level), __VA_ARGS__);   \
	} while (0)

#define pr_error(...) log_at(LOG_LEVEL_ERROR, __VA_ARGS__)
#define pr_warn(...) log_at(LOG_LEVEL_WARN, __VA_ARGS__)
#define pr_info(...) log_at(LOG_LEVEL_INFO, __VA_ARGS__)
#define pr_debug(...) log_at(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Table-driven settings parser shared by the daemons. Each key of a table
 * is both an INI key and a long flag. The daemon owns its table, its value
 * kinds (through an apply callback) and the wording of its messages
 * (through a report callback). This module owns the flow: --help, --config,
 * the INI sections, the environment hook and then the flags, which override
 * the file.
 */
#ifndef IMGW_CONFIG_PARSE_H
#define IMGW_CONFIG_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* Maximum number of keys in one table. */
#define CONFIG_KEYS_MAX 64
/* Maximum length of a flag name without the dashes, counting the NUL. */
#define CONFIG_FLAG_MAX 32

struct config_key {
	const char *section;    /* INI section */
	/* INI key. The flag is the same with '-' for '_', prefixed by
	 * "SECTION-" unless the key is in the table's first section. */
	const char *name;
	const char *metavar;    /* NULL: a flag without value */
	const char *help;       /* --help text after the metavar */
	int kind;               /* value kind, defined by the daemon */
	size_t offset;          /* of the field in the daemon's settings */
	unsigned long long min, max; /* range of a number kind */
	const char *expected;   /* valid values, or NULL: see the daemon */
	bool secret;            /* the value never appears in messages */
};

enum config_problem_kind {
	CONFIG_READ_FAILED,     /* path, status -1 (errno in err) or -2 */
	/* path, status: line of the first error; detail when the line is
	 * too long or contains a NUL byte */
	CONFIG_SYNTAX_ERROR,
	CONFIG_UNKNOWN_KEY,     /* path, section, name */
	/* key, name, value; path and section only for an INI value, where
	 * name is the INI key, else name is the flag with its dashes */
	CONFIG_INVALID_VALUE,
	CONFIG_EXTRA_ARGUMENT,  /* value */
};

/* A problem found in the file or the flags, handed to the daemon to print.
 * Its strings live only during the report call. */
struct config_problem {
	enum config_problem_kind kind;
	const char *path;
	int status;             /* ini_parse() result */
	int err;                /* errno for CONFIG_READ_FAILED */
	const char *section;
	const char *name;
	const char *value;      /* "(hidden)" for a secret key */
	const char *detail;     /* what is wrong with the line, or NULL */
	const struct config_key *key;
};

struct config_spec {
	const char *program;    /* message prefix and name in --help */
	const char *usage;      /* first line of --help */
	const char *config_help; /* --help text of --config */
	int help_width;         /* width of the flag column in --help */
	const char *const *sections; /* NULL-terminated INI sections */
	/* The sections as messages name them, such as "[bizsvr] or [super]". */
	const char *sections_text;
	const struct config_key *keys;
	size_t key_count;
	/* Parses value into the field of key; value is NULL for a flag
	 * without value. Returns 0 or a negative errno. */
	int (*apply)(void *cfg, const struct config_key *key, const char *value);
	/* Prints one problem to stderr. */
	void (*report)(const struct config_problem *problem);
	/* Applies the environment between the file and the flags. Returns 0,
	 * or -EINVAL after printing what was wrong. May be NULL. */
	int (*load_env)(void *cfg);
};

/*
 * Applies the file named by --config, then load_env, then the other flags
 * in argv to cfg, which contains the defaults. Returns 0, 1 when --help was
 * printed to stdout, or -EINVAL after printing what was wrong to stderr.
 */
int config_parse(const struct config_spec *spec, void *cfg, int argc,
		 char **argv);

/* Returns the key of section and name in spec's table, or NULL. */
const struct config_key *config_key_find(const struct config_spec *spec,
					 const char *section,
					 const char *name);

/* Returns 0 if value is HOST:PORT with a port from 1 to 65535, or -EINVAL. */
int config_check_addr(const char *value);

#endif

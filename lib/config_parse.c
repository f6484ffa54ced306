// SPDX-License-Identifier: MIT
/*
 * Settings parser shared by the daemons; see config_parse.h. getopt runs
 * twice: the first pass finds --help and --config, so that the second pass
 * can apply every other flag over the file.
 */
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config_parse.h"
#include "httputil.h"

enum {
	OPT_CONFIG = 1000,
	OPT_HELP,
	OPT_KEY_BASE,           /* OPT_KEY_BASE + i is keys[i] */
};

/* The getopt_long table of a spec and the flag names it points to. */
struct config_flags {
	struct option opts[CONFIG_KEYS_MAX + 3];
	char names[CONFIG_KEYS_MAX][CONFIG_FLAG_MAX];
};

/*
 * Line source for ini_parse_stream(). libinih reads a line in chunks of its
 * buffer size and parses each chunk as a line of its own, so the tail of a
 * long value would become an entry. This reader stops at such a line and at
 * a NUL byte instead, which also ends the read of a device like /dev/zero.
 * XXX: The limit is libinih's buffer (199 bytes in Debian's libinih 55), so
 * a longer ws_origins list or secret cannot come from a file.
 */
struct config_reader {
	FILE *file;
	int line;               /* lines returned so far */
	int err;                /* errno of a failed read, or 0 */
	char bad[64];           /* why the reader rejected a line, or "" */
};

struct ini_state {
	const struct config_spec *spec;
	void *cfg;
	const char *path;
	int failed;
	char bad_section[64];   /* the last unknown section reported */
};

static const char *shown_value(const struct config_key *key,
			       const char *value)
{
	return key->secret ? "(hidden)" : value;
}

/* Writes the flag name of key without the dashes. */
static void config_flag_name(const struct config_spec *spec,
			     const struct config_key *key, char *out,
			     size_t cap)
{
	const char *section = key->section;
	int main_section = strcmp(section, spec->sections[0]) == 0;

	snprintf(out, cap, "%s%s%s", main_section ? "" : section,
		 main_section ? "" : "-", key->name);
	for (char *p = out; *p; p++)
		*p = *p == '_' ? '-' : *p;
}

static void config_usage(const struct config_spec *spec, FILE *out)
{
	char name[CONFIG_FLAG_MAX], left[CONFIG_FLAG_MAX + 64];
	int width = spec->help_width;

	fprintf(out, "%s\n\n", spec->usage);
	fprintf(out, "  %-*s %s\n", width, "--config FILE", spec->config_help);
	for (size_t i = 0; i < spec->key_count; i++) {
		const struct config_key *key = &spec->keys[i];

		config_flag_name(spec, key, name, sizeof(name));
		snprintf(left, sizeof(left), "--%s%s%s", name,
			 key->metavar ? " " : "",
			 key->metavar ? key->metavar : "");
		fprintf(out, "  %-*s %s\n", width, left, key->help);
	}
	fprintf(out, "  %-*s %s\n", width, "--help", "print this help and exit");
}

static int config_section_known(const struct config_spec *spec,
				const char *section)
{
	for (const char *const *s = spec->sections; *s; s++) {
		if (strcmp(*s, section) == 0)
			return 1;
	}
	return 0;
}

const struct config_key *config_key_find(const struct config_spec *spec,
					 const char *section,
					 const char *name)
{
	for (size_t i = 0; i < spec->key_count; i++) {
		if (strcmp(spec->keys[i].section, section) == 0 &&
		    strcmp(spec->keys[i].name, name) == 0)
			return &spec->keys[i];
	}
	return NULL;
}

/* Rejects a key outside the spec's sections, naming each bad section once.
 * libinih reports sections only through their keys, so an empty unknown
 * section passes. */
static void config_ini_bad_section(struct ini_state *st, const char *section,
				   const char *name)
{
	const char *program = st->spec->program;
	const char *expected = st->spec->sections_text;

	st->failed = 1;
	if (!section[0]) {
		fprintf(stderr, "%s: %s: key '%s' is outside a section: expected it under %s\n",
			program, st->path, name, expected);
		return;
	}
	if (strcmp(st->bad_section, section) == 0)
		return;
	snprintf(st->bad_section, sizeof(st->bad_section), "%s", section);
	fprintf(stderr, "%s: %s: unknown section [%s]: expected %s\n",
		program, st->path, section, expected);
}

/* Applies one INI entry. Always returns 1, so that libinih goes on and
 * every problem of the file is reported. */
static int config_ini_entry(void *arg, const char *section, const char *name,
			    const char *value)
{
	struct ini_state *st = arg;
	struct config_problem problem = {
		.path = st->path, .section = section, .name = name,
	};
	const struct config_key *key;

	if (!config_section_known(st->spec, section)) {
		config_ini_bad_section(st, section, name);
		return 1;
	}
	key = config_key_find(st->spec, section, name);
	if (!key) {
		problem.kind = CONFIG_UNKNOWN_KEY;
		st->spec->report(&problem);
		st->failed = 1;
		return 1;
	}
	if (st->spec->apply(st->cfg, key, value)) {
		problem.kind = CONFIG_INVALID_VALUE;
		problem.key = key;
		problem.value = shown_value(key, value);
		st->spec->report(&problem);
		st->failed = 1;
	}
	return 1;
}

/* Reads one line of at most cap - 1 bytes, the line end included, into
 * str, as fgets() would. */
static char *config_read_line(char *str, int cap, void *arg)
{
	struct config_reader *r = arg;
	int len = 0, ch = EOF;

	while (len < cap - 1) {
		ch = getc(r->file);
		if (ch == EOF || ch == '\0')
			break;
		str[len++] = (char)ch;
		if (ch == '\n')
			break;
	}
	if (ch == '\0') {
		snprintf(r->bad, sizeof(r->bad), "NUL byte in the line");
		r->line++;
		return NULL;
	}
	if (ch == EOF && ferror(r->file)) {
		r->err = errno;
		return NULL;
	}
	if (len == cap - 1 && ch != '\n') {
		ch = getc(r->file);
		if (ch != EOF && ch != '\n') {
			snprintf(r->bad, sizeof(r->bad),
				 "line longer than %d bytes", cap - 1);
			r->line++;
			return NULL;
		}
	}
	if (!len)
		return NULL;
	str[len] = '\0';
	r->line++;
	return str;
}

/* Reports the first problem of the file itself, if any: a failed read, a
 * libinih syntax error or a line the reader rejected. */
static int config_check_read(const struct config_spec *spec,
			     const char *path, int rc,
			     const struct config_reader *r)
{
	struct config_problem problem = { .path = path, .status = rc };

	if (r->err) {
		problem.kind = CONFIG_READ_FAILED;
		problem.status = -1;
		problem.err = r->err;
	} else if (rc > 0) {
		/* libinih parsed only the lines before a rejected one. */
		problem.kind = CONFIG_SYNTAX_ERROR;
	} else if (r->bad[0]) {
		problem.kind = CONFIG_SYNTAX_ERROR;
		problem.status = r->line;
		problem.detail = r->bad;
	} else {
		return 0;
	}
	spec->report(&problem);
	return -EINVAL;
}

static int config_read_file(const struct config_spec *spec, void *cfg,
			    const char *path)
{
	struct ini_state st = { .spec = spec, .cfg = cfg, .path = path };
	struct config_reader reader = { 0 };
	struct config_problem problem = {
		.kind = CONFIG_READ_FAILED, .path = path, .status = -1,
	};
	int rc, err;

	reader.file = fopen(path, "r");
	if (!reader.file) {
		problem.err = errno;
		spec->report(&problem);
		return -EINVAL;
	}
	rc = ini_parse_stream(config_read_line, &reader, config_ini_entry,
			      &st);
	fclose(reader.file);
	if (rc == -2) {
		problem.status = -2;
		problem.err = ENOMEM;
		spec->report(&problem);
		return -EINVAL;
	}
	err = config_check_read(spec, path, rc, &reader);
	if (err)
		return err;
	return st.failed ? -EINVAL : 0;
}

static void config_flags_build(const struct config_spec *spec,
			       struct config_flags *flags)
{
	size_t i;

	for (i = 0; i < spec->key_count; i++) {
		const struct config_key *key = &spec->keys[i];

		config_flag_name(spec, key, flags->names[i], CONFIG_FLAG_MAX);
		flags->opts[i] = (struct option){
			flags->names[i],
			key->metavar ? required_argument : no_argument,
			NULL, OPT_KEY_BASE + (int)i };
	}
	flags->opts[i++] = (struct option){ "config", required_argument, NULL,
					    OPT_CONFIG };
	flags->opts[i++] = (struct option){ "help", no_argument, NULL,
					    OPT_HELP };
	flags->opts[i] = (struct option){ 0 };
}

/* First pass: --help and --config only. Returns 1 for --help. */
static int config_find_file(const struct config_flags *flags, int argc,
			    char **argv, const char **path)
{
	int opt;

	opterr = 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, "", flags->opts, NULL)) != -1) {
		if (opt == OPT_HELP)
			return 1;
		if (opt == OPT_CONFIG)
			*path = optarg;
	}
	return 0;
}

static int config_apply_flag(const struct config_spec *spec, void *cfg,
			     const struct config_flags *flags, int index)
{
	const struct config_key *key = &spec->keys[index];
	char name[CONFIG_FLAG_MAX + 2];
	struct config_problem problem = {
		.kind = CONFIG_INVALID_VALUE, .name = name, .key = key,
	};

	if (!spec->apply(cfg, key, optarg))
		return 0;
	snprintf(name, sizeof(name), "--%s", flags->names[index]);
	problem.value = shown_value(key, optarg ? optarg : "");
	spec->report(&problem);
	return -EINVAL;
}

/* Second pass: every flag but --config, in order, over the file. */
static int config_apply_flags(const struct config_spec *spec, void *cfg,
			      const struct config_flags *flags, int argc,
			      char **argv)
{
	struct config_problem problem = { .kind = CONFIG_EXTRA_ARGUMENT };
	int opt;

	opterr = 1;
	optind = 0;
	while ((opt = getopt_long(argc, argv, "", flags->opts, NULL)) != -1) {
		if (opt == OPT_CONFIG)
			continue;
		if (opt < OPT_KEY_BASE) {
			/* getopt_long has printed what was wrong. */
			fprintf(stderr, "%s: run '%s --help' for the options\n",
				spec->program, spec->program);
			return -EINVAL;
		}
		if (config_apply_flag(spec, cfg, flags, opt - OPT_KEY_BASE))
			return -EINVAL;
	}
	if (optind < argc) {
		problem.value = argv[optind];
		spec->report(&problem);
		return -EINVAL;
	}
	return 0;
}

int config_parse(const struct config_spec *spec, void *cfg, int argc,
		 char **argv)
{
	struct config_flags flags;
	const char *path = NULL;
	int err;

	if (spec->key_count > CONFIG_KEYS_MAX) {
		fprintf(stderr, "%s: %zu settings keys, more than the parser's maximum of %d\n",
			spec->program, spec->key_count, CONFIG_KEYS_MAX);
		return -EINVAL;
	}
	config_flags_build(spec, &flags);
	if (config_find_file(&flags, argc, argv, &path)) {
		config_usage(spec, stdout);
		return 1;
	}
	if (path) {
		err = config_read_file(spec, cfg, path);
		if (err)
			return err;
	}
	if (spec->load_env) {
		err = spec->load_env(cfg);
		if (err)
			return err;
	}
	return config_apply_flags(spec, cfg, &flags, argc, argv);
}

int config_check_addr(const char *value)
{
	char host[256];
	uint16_t port;

	if (parse_host_port(value, host, sizeof(host), &port) < 0 || port == 0)
		return -EINVAL;
	return 0;
}

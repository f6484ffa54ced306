// SPDX-License-Identifier: MIT
/*
 * Unit tests of the shared settings parser (lib/config_parse.c) with a small
 * table of its own: values from an INI file, the environment hook and
 * flags, and each problem it hands to the report callback.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config_parse.h"

enum { KIND_NUMBER, KIND_TEXT, KIND_SWITCH };

struct test_config {
	unsigned long port;
	char name[32];
	char token[32];
	unsigned long level;    /* in section [extra] */
	int verbose;            /* a flag without value */
	int env_calls;
	unsigned long port_at_env; /* port when the environment hook ran */
};

#define KEY(section, name, metavar, kind, field, min, max, secret) \
	{ section, name, metavar, name, kind,                       \
	  offsetof(struct test_config, field), min, max, NULL, secret }

static const struct config_key test_keys[] = {
	KEY("main", "port", "N", KIND_NUMBER, port, 1, 100, false),
	KEY("main", "name", "NAME", KIND_TEXT, name, 0, 0, false),
	KEY("main", "token", "SECRET", KIND_TEXT, token, 0, 0, true),
	KEY("main", "verbose", NULL, KIND_SWITCH, verbose, 0, 0, false),
	KEY("extra", "max_level", "N", KIND_NUMBER, level, 0, 9, false),
};

static const char *const test_sections[] = { "main", "extra", NULL };

/* The problems reported by the last config_parse() call. */
static struct config_problem problems[8];
static char problem_values[8][64];
static char problem_names[8][64];
static char problem_sections[8][64];
static size_t problem_count;

static int test_apply(void *arg, const struct config_key *key,
		      const char *value)
{
	char *field = (char *)arg + key->offset;
	unsigned long number;
	char *end;

	switch (key->kind) {
	case KIND_NUMBER:
		if (value[0] < '0' || value[0] > '9')
			return -EINVAL;
		number = strtoul(value, &end, 10);
		if (*end || number < key->min || number > key->max)
			return -EINVAL;
		*(unsigned long *)field = number;
		return 0;
	case KIND_TEXT:
		if (!value[0] || strlen(value) >= 32)
			return -EINVAL;
		strcpy(field, value);
		return 0;
	case KIND_SWITCH:
		if (value)
			return -EINVAL;
		*(int *)field = 1;
		return 0;
	}
	return -EINVAL;
}

/* Stores the problem with copies of its strings, which may live only during
 * the call. */
static void test_report(const struct config_problem *problem)
{
	struct config_problem *copy;

	if (problem_count == 8)
		return;
	copy = &problems[problem_count];
	*copy = *problem;
	if (problem->section) {
		snprintf(problem_sections[problem_count],
			 sizeof(problem_sections[0]), "%s", problem->section);
		copy->section = problem_sections[problem_count];
	}
	if (problem->value) {
		snprintf(problem_values[problem_count],
			 sizeof(problem_values[0]), "%s", problem->value);
		copy->value = problem_values[problem_count];
	}
	if (problem->name) {
		snprintf(problem_names[problem_count],
			 sizeof(problem_names[0]), "%s", problem->name);
		copy->name = problem_names[problem_count];
	}
	problem_count++;
}

/* Records the call and the port it saw, so a test can check the order. */
static int test_load_env(void *arg)
{
	struct test_config *cfg = arg;

	cfg->env_calls++;
	cfg->port_at_env = cfg->port;
	return 0;
}

static const struct config_spec test_spec = {
	.program = "test",
	.usage = "usage: test [options]",
	.config_help = "INI file",
	.help_width = 20,
	.sections = test_sections,
	.sections_text = "[main] or [extra]",
	.keys = test_keys,
	.key_count = sizeof(test_keys) / sizeof(test_keys[0]),
	.apply = test_apply,
	.report = test_report,
	.load_env = test_load_env,
};

static char ini_path[64];

/* Writes text to a new temporary INI file named in ini_path. */
static void write_ini(const char *text)
{
	int fd;

	snprintf(ini_path, sizeof(ini_path), "/tmp/imgw-config-test-XXXXXX");
	fd = mkstemp(ini_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Runs config_parse() on "test" and the given flags into a zeroed cfg. */
static int parse(struct test_config *cfg, int argc, const char **flags)
{
	char *argv[16] = { "test" };

	assert_true(argc < 15);
	for (int i = 0; i < argc; i++)
		argv[i + 1] = (char *)flags[i];
	memset(cfg, 0, sizeof(*cfg));
	memset(problems, 0, sizeof(problems));
	problem_count = 0;
	return config_parse(&test_spec, cfg, argc + 1, argv);
}

static int teardown_ini(void **state)
{
	if (ini_path[0])
		unlink(ini_path);
	ini_path[0] = '\0';
	return 0;
}

static void config_flags_apply(void **state)
{
	const char *flags[] = { "--port", "42", "--name=alpha", "--verbose",
				"--extra-max-level", "7" };
	struct test_config cfg;

	assert_int_equal(parse(&cfg, 6, flags), 0);
	assert_int_equal(cfg.port, 42);
	assert_string_equal(cfg.name, "alpha");
	assert_int_equal(cfg.verbose, 1);
	assert_int_equal(cfg.level, 7);
	assert_int_equal(cfg.env_calls, 1);
	assert_int_equal(problem_count, 0);
}

static void config_file_sections(void **state)
{
	const char *flags[] = { "--config", ini_path };
	struct test_config cfg;

	write_ini("[main]\nport = 5\nname = beta\n[extra]\nmax_level = 3\n");
	assert_int_equal(parse(&cfg, 2, flags), 0);
	assert_int_equal(cfg.port, 5);
	assert_string_equal(cfg.name, "beta");
	assert_int_equal(cfg.level, 3);
	assert_int_equal(problem_count, 0);
}

static void config_flag_overrides_file(void **state)
{
	/* --port comes before --config on purpose: the file is read first
	 * wherever --config appears. */
	const char *flags[] = { "--port", "9", "--config", ini_path };
	struct test_config cfg;

	write_ini("[main]\nport = 5\nname = beta\n");
	assert_int_equal(parse(&cfg, 4, flags), 0);
	assert_int_equal(cfg.port, 9);
	assert_string_equal(cfg.name, "beta");
	assert_int_equal(cfg.env_calls, 1);
	assert_int_equal(cfg.port_at_env, 5);
}

static void config_flag_bad_number(void **state)
{
	const char *flags[] = { "--port", "12x" };
	struct test_config cfg;

	assert_int_equal(parse(&cfg, 2, flags), -EINVAL);
	assert_int_equal(problem_count, 1);
	assert_int_equal(problems[0].kind, CONFIG_INVALID_VALUE);
	assert_null(problems[0].path);
	assert_ptr_equal(problems[0].key, &test_keys[0]);
	assert_string_equal(problems[0].name, "--port");
	assert_string_equal(problems[0].value, "12x");
}

static void config_flag_out_of_range(void **state)
{
	const char *low[] = { "--port", "0" };
	const char *high[] = { "--extra-max-level", "10" };
	struct test_config cfg;

	assert_int_equal(parse(&cfg, 2, low), -EINVAL);
	assert_int_equal(problem_count, 1);
	assert_int_equal(problems[0].kind, CONFIG_INVALID_VALUE);
	assert_int_equal(parse(&cfg, 2, high), -EINVAL);
	assert_int_equal(problem_count, 1);
	assert_ptr_equal(problems[0].key, &test_keys[4]);
	assert_string_equal(problems[0].name, "--extra-max-level");
	assert_string_equal(problems[0].value, "10");
}

static void config_file_out_of_range(void **state)
{
	const char *flags[] = { "--config", ini_path };
	struct test_config cfg;

	write_ini("[main]\nport = 101\nname = beta\n");
	assert_int_equal(parse(&cfg, 2, flags), -EINVAL);
	assert_int_equal(problem_count, 1);
	assert_int_equal(problems[0].kind, CONFIG_INVALID_VALUE);
	assert_string_equal(problems[0].path, ini_path);
	assert_string_equal(problems[0].section, "main");
	assert_string_equal(problems[0].name, "port");
	assert_ptr_equal(problems[0].key, &test_keys[0]);
	assert_string_equal(problems[0].value, "101");
	/* The file's other keys are still read, so every problem shows. */
	assert_string_equal(cfg.name, "beta");
	assert_int_equal(cfg.env_calls, 0);
}

static void config_file_unknown_key(void **state)
{
	const char *flags[] = { "--config", ini_path };
	struct test_config cfg;

	/* max_level is a key of [extra], not of [main]. */
	write_ini("[main]\nmax_level = 1\nport = 7\n");
	assert_int_equal(parse(&cfg, 2, flags), -EINVAL);
	assert_int_equal(problem_count, 1);
	assert_int_equal(problems[0].kind, CONFIG_UNKNOWN_KEY);
	assert_string_equal(problems[0].path, ini_path);
	assert_string_equal(problems[0].section, "main");
	assert_string_equal(problems[0].name, "max_level");
	assert_int_equal(cfg.port, 7);
}

static void config_file_unknown_section(void **state)
{
	const char *flags[] = { "--config", ini_path };
	struct test_config cfg;

	write_ini("[other]\nport = 7\n");
	assert_int_equal(parse(&cfg, 2, flags), -EINVAL);
	assert_int_equal(cfg.port, 0);
	/* The parser prints a bad section itself. */
	assert_int_equal(problem_count, 0);
}

static void config_file_key_outside_section(void **state)
{
	const char *flags[] = { "--config", ini_path };
	struct test_config cfg;

	write_ini("port = 7\n[main]\n");
	assert_int_equal(parse(&cfg, 2, flags), -EINVAL);
	assert_int_equal(cfg.port, 0);
}

static void config_file_syntax_error(void **state)
{
	const char *flags[] = { "--config", ini_path };
	struct test_config cfg;

	write_ini("[main]\nport = 7\nno equals sign\n");
	assert_int_equal(parse(&cfg, 2, flags), -EINVAL);
	assert_int_equal(problem_count, 1);
	assert_int_equal(problems[0].kind, CONFIG_SYNTAX_ERROR);
	assert_int_equal(problems[0].status, 3);
}

static void config_file_missing(void **state)
{
	const char *flags[] = { "--config", "/nonexistent/imgw-test.ini" };
	struct test_config cfg;

	assert_int_equal(parse(&cfg, 2, flags), -EINVAL);
	assert_int_equal(problem_count, 1);
	assert_int_equal(problems[0].kind, CONFIG_READ_FAILED);
	assert_int_equal(problems[0].status, -1);
	assert_int_equal(problems[0].err, ENOENT);
}

static void config_secret_hidden(void **state)
{
	const char *flags[] = { "--token", "" };
	struct test_config cfg;

	assert_int_equal(parse(&cfg, 2, flags), -EINVAL);
	assert_int_equal(problem_count, 1);
	assert_string_equal(problems[0].value, "(hidden)");
}

static void config_extra_argument(void **state)
{
	const char *flags[] = { "--port", "3", "stray" };
	struct test_config cfg;

	assert_int_equal(parse(&cfg, 3, flags), -EINVAL);
	assert_int_equal(problem_count, 1);
	assert_int_equal(problems[0].kind, CONFIG_EXTRA_ARGUMENT);
	assert_string_equal(problems[0].value, "stray");
}

static void config_unknown_flag(void **state)
{
	const char *flags[] = { "--nope", "1" };
	struct test_config cfg;

	assert_int_equal(parse(&cfg, 2, flags), -EINVAL);
	/* getopt_long prints an unknown flag itself. */
	assert_int_equal(problem_count, 0);
}

static void config_help_wins(void **state)
{
	const char *flags[] = { "--port", "bad", "--help" };
	struct test_config cfg;

	assert_int_equal(parse(&cfg, 3, flags), 1);
	assert_int_equal(cfg.port, 0);
	assert_int_equal(cfg.env_calls, 0);
}

static void config_key_find_sections(void **state)
{
	assert_ptr_equal(config_key_find(&test_spec, "extra", "max_level"),
			 &test_keys[4]);
	assert_null(config_key_find(&test_spec, "main", "max_level"));
}

static void config_check_addr_ports(void **state)
{
	assert_int_equal(config_check_addr("127.0.0.1:1"), 0);
	assert_int_equal(config_check_addr("[::1]:65535"), 0);
	assert_int_equal(config_check_addr("127.0.0.1:0"), -EINVAL);
	assert_int_equal(config_check_addr("127.0.0.1:65536"), -EINVAL);
	assert_int_equal(config_check_addr("127.0.0.1"), -EINVAL);
}

static void config_file_directory(void **state)
{
	const char *flags[] = { "--config", "/tmp" };
	struct test_config cfg;

	assert_int_equal(parse(&cfg, 2, flags), -EINVAL);
	assert_int_equal(problem_count, 1);
	assert_int_equal(problems[0].kind, CONFIG_READ_FAILED);
	assert_int_equal(problems[0].status, -1);
	assert_int_equal(problems[0].err, EISDIR);
}

/* A stream of NUL bytes without a line end must fail at once, not hang. */
static void config_file_nul_bytes(void **state)
{
	const char *flags[] = { "--config", "/dev/zero" };
	struct test_config cfg;

	alarm(10);
	assert_int_equal(parse(&cfg, 2, flags), -EINVAL);
	alarm(0);
	assert_int_equal(problem_count, 1);
	assert_int_equal(problems[0].kind, CONFIG_SYNTAX_ERROR);
	assert_int_equal(problems[0].status, 1);
	assert_non_null(problems[0].detail);
}

/* The tail of a line longer than libinih's line buffer must not be read as
 * a line of its own, where it could set another key. libinih 55 reads at
 * most 199 bytes of a line at a time, so "port = 5" starts a chunk. */
static void config_file_long_line(void **state)
{
	const char *flags[] = { "--config", ini_path };
	char text[512];
	struct test_config cfg;

	snprintf(text, sizeof(text), "[main]\nname = %0192d%s\n", 0,
		 "port = 5");
	write_ini(text);
	assert_int_equal(parse(&cfg, 2, flags), -EINVAL);
	assert_int_equal(cfg.port, 0);
	assert_int_equal(problem_count, 1);
	assert_int_equal(problems[0].kind, CONFIG_SYNTAX_ERROR);
	assert_int_equal(problems[0].status, 2);
	assert_non_null(problems[0].detail);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(config_flags_apply),
		cmocka_unit_test_teardown(config_file_sections, teardown_ini),
		cmocka_unit_test_teardown(config_flag_overrides_file,
					  teardown_ini),
		cmocka_unit_test(config_flag_bad_number),
		cmocka_unit_test(config_flag_out_of_range),
		cmocka_unit_test_teardown(config_file_out_of_range,
					  teardown_ini),
		cmocka_unit_test_teardown(config_file_unknown_key,
					  teardown_ini),
		cmocka_unit_test_teardown(config_file_unknown_section,
					  teardown_ini),
		cmocka_unit_test_teardown(config_file_key_outside_section,
					  teardown_ini),
		cmocka_unit_test_teardown(config_file_syntax_error,
					  teardown_ini),
		cmocka_unit_test(config_file_missing),
		cmocka_unit_test(config_file_directory),
		cmocka_unit_test(config_file_nul_bytes),
		cmocka_unit_test_teardown(config_file_long_line, teardown_ini),
		cmocka_unit_test(config_secret_hidden),
		cmocka_unit_test(config_extra_argument),
		cmocka_unit_test(config_unknown_flag),
		cmocka_unit_test(config_help_wins),
		cmocka_unit_test(config_key_find_sections),
		cmocka_unit_test(config_check_addr_ports),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

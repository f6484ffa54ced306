// SPDX-License-Identifier: MIT
/*
 * Unit tests of the gateway's connection registry (userspace/conn.c): ids,
 * lookups by id and by device, duplicate logins and removal. The registry
 * needs no sockets, so the connections here are bare structs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../userspace/conn.h"

static struct conn *new_conn(struct conn_registry *reg)
{
	struct conn *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	conn_registry_add(reg, c);
	return c;
}

static struct conn *new_device_conn(struct conn_registry *reg,
				    const char *user, const char *device)
{
	struct conn *c = new_conn(reg);

	assert_int_equal(conn_set_device(c, user, device, "ios"), 0);
	return c;
}

static void free_conn(struct conn_registry *reg, struct conn *c)
{
	conn_registry_remove(reg, c);
	conn_clear_device(c);
	free(c);
}

static void ids_never_reused(void **state)
{
	struct conn_registry reg;
	struct conn *a, *b, *c;
	uint64_t a_id, b_id;

	conn_registry_init(&reg);
	a = new_conn(&reg);
	b = new_conn(&reg);
	a_id = a->id;
	b_id = b->id;
	assert_int_not_equal(a_id, 0);
	assert_int_not_equal(a_id, b_id);

	free_conn(&reg, a);
	free_conn(&reg, b);
	c = new_conn(&reg);
	assert_int_not_equal(c->id, a_id);
	assert_int_not_equal(c->id, b_id);
	assert_true(c->id > b_id);
	assert_null(conn_registry_find(&reg, a_id));
	free_conn(&reg, c);
	assert_int_equal(reg.count, 0);
}

static void lookup_by_id(void **state)
{
	struct conn_registry reg;
	struct conn *conns[50];

	conn_registry_init(&reg);
	for (int i = 0; i < 50; i++)
		conns[i] = new_conn(&reg);
	assert_int_equal(reg.count, 50);
	for (int i = 0; i < 50; i++)
		assert_ptr_equal(conn_registry_find(&reg, conns[i]->id),
				 conns[i]);
	assert_null(conn_registry_find(&reg, 0));
	assert_null(conn_registry_find(&reg, conns[49]->id + 1));
	for (int i = 0; i < 50; i++)
		free_conn(&reg, conns[i]);
	assert_int_equal(reg.count, 0);
}

static void lookup_by_device(void **state)
{
	struct conn_registry reg;
	struct conn *a, *b;

	conn_registry_init(&reg);
	a = new_device_conn(&reg, "alice", "phone");
	b = new_device_conn(&reg, "alice", "laptop");
	/* Not indexed until the login is bound. */
	assert_null(conn_registry_find_device(&reg, "alice", "phone"));

	assert_null(conn_registry_bind_device(&reg, a));
	assert_null(conn_registry_bind_device(&reg, b));
	assert_ptr_equal(conn_registry_find_device(&reg, "alice", "phone"), a);
	assert_ptr_equal(conn_registry_find_device(&reg, "alice", "laptop"), b);
	assert_null(conn_registry_find_device(&reg, "alice", "tablet"));
	assert_null(conn_registry_find_device(&reg, "bob", "phone"));
	/* The key keeps user and device apart: "al"+"icephone" differs. */
	assert_null(conn_registry_find_device(&reg, "al", "icephone"));
	assert_null(conn_registry_find_device(&reg, "alicephone", ""));

	free_conn(&reg, a);
	assert_null(conn_registry_find_device(&reg, "alice", "phone"));
	assert_ptr_equal(conn_registry_find_device(&reg, "alice", "laptop"), b);
	free_conn(&reg, b);
}

static void duplicate_login_keeps_new_entry(void **state)
{
	struct conn_registry reg;
	struct conn *old, *new;

	conn_registry_init(&reg);
	old = new_device_conn(&reg, "bob", "phone");
	assert_null(conn_registry_bind_device(&reg, old));
	new = new_device_conn(&reg, "bob", "phone");

	assert_ptr_equal(conn_registry_bind_device(&reg, new), old);
	assert_ptr_equal(conn_registry_find_device(&reg, "bob", "phone"), new);

	/* The old connection's cleanup must leave the new entry alone. */
	conn_registry_unbind_device(&reg, old);
	assert_ptr_equal(conn_registry_find_device(&reg, "bob", "phone"), new);
	free_conn(&reg, old);
	assert_ptr_equal(conn_registry_find_device(&reg, "bob", "phone"), new);
	assert_ptr_equal(conn_registry_find(&reg, new->id), new);
	assert_int_equal(reg.count, 1);

	/* Binding again is a no-op, not a self-replacement. */
	assert_null(conn_registry_bind_device(&reg, new));
	free_conn(&reg, new);
	assert_null(conn_registry_find_device(&reg, "bob", "phone"));
	assert_int_equal(reg.count, 0);
}

static void remove_unknown_is_harmless(void **state)
{
	struct conn_registry reg;
	struct conn stranger = { .id = 12345 };
	struct conn *a;

	conn_registry_init(&reg);
	a = new_device_conn(&reg, "carol", "web");
	conn_registry_bind_device(&reg, a);

	conn_registry_remove(&reg, &stranger);
	assert_int_equal(reg.count, 1);
	stranger.id = a->id;    /* same id, different struct */
	conn_registry_remove(&reg, &stranger);
	assert_ptr_equal(conn_registry_find(&reg, a->id), a);
	assert_int_equal(reg.count, 1);

	free_conn(&reg, a);
	/* A connection that was removed already is unknown as well. */
	conn_registry_remove(&reg, &stranger);
	assert_int_equal(reg.count, 0);
	assert_null(conn_registry_find_device(&reg, "carol", "web"));
}

static void set_device_checks_ids(void **state)
{
	struct conn c = { 0 };
	char long_id[CONN_MAX_ID_LEN + 2];

	memset(long_id, 'x', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	assert_int_equal(conn_set_device(&c, "", "phone", ""), -EINVAL);
	assert_int_equal(conn_set_device(&c, "dave", "", ""), -EINVAL);
	assert_int_equal(conn_set_device(&c, long_id, "phone", ""), -EINVAL);
	assert_int_equal(conn_set_device(&c, "dave", long_id, ""), -EINVAL);
	assert_null(c.device_key);

	long_id[CONN_MAX_ID_LEN] = '\0';   /* exactly the maximum */
	assert_int_equal(conn_set_device(&c, long_id, "phone", ""), 0);
	assert_string_equal(c.user_id, long_id);
	/* A connection logs in once. */
	assert_int_equal(conn_set_device(&c, "dave", "phone", ""), -EINVAL);
	conn_clear_device(&c);
	assert_null(c.user_id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ids_never_reused),
		cmocka_unit_test(lookup_by_id),
		cmocka_unit_test(lookup_by_device),
		cmocka_unit_test(duplicate_login_keeps_new_entry),
		cmocka_unit_test(remove_unknown_is_harmless),
		cmocka_unit_test(set_device_checks_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

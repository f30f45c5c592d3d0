/*
 * Tests of the string index: keys found with their values, a key added
 * twice refused, thousands of keys across the index's growth, keys that
 * are not indexed (also prefixes and extensions of indexed ones), and an
 * index used again after strindex_free().
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "strindex.h"

#define MANY	5000

static void
test_strindex_empty_finds_nothing(void **state)
{
	struct strindex	 ix = { 0 };
	size_t		 v = 7;

	(void)state;
	assert_false(strindex_get(&ix, "a", &v));
	assert_false(strindex_get(&ix, "", &v));
	assert_int_equal(v, 7);
	strindex_free(&ix);
}

static void
test_strindex_finds_its_keys_and_refuses_a_second_add(void **state)
{
	struct strindex	 ix = { 0 };
	size_t		 v;

	(void)state;
	assert_true(strindex_add(&ix, "api.example.com", 1));
	assert_true(strindex_add(&ix, "*.example.com", 2));
	assert_true(strindex_add(&ix, "", 3));
	assert_false(strindex_add(&ix, "api.example.com", 9));
	assert_int_equal(ix.n, 3);
	assert_true(strindex_get(&ix, "api.example.com", &v));
	assert_int_equal(v, 1);
	assert_true(strindex_get(&ix, "*.example.com", &v));
	assert_int_equal(v, 2);
	assert_true(strindex_get(&ix, "", &v));
	assert_int_equal(v, 3);
	/* Prefixes, extensions and case differ. */
	assert_false(strindex_get(&ix, "api.example.co", &v));
	assert_false(strindex_get(&ix, "api.example.com.", &v));
	assert_false(strindex_get(&ix, "API.example.com", &v));
	strindex_free(&ix);
}

static void
test_strindex_holds_thousands_of_keys(void **state)
{
	static char	 keys[MANY][16];
	struct strindex	 ix = { 0 };
	char		 other[16];
	size_t		 i, v;

	(void)state;
	for (i = 0; i < MANY; i++) {
		snprintf(keys[i], sizeof(keys[i]), "h%zu.test", i);
		assert_true(strindex_add(&ix, keys[i], i));
	}
	assert_int_equal(ix.n, MANY);
	/* At most half full. */
	assert_true(ix.cap >= 2 * ix.n);
	for (i = 0; i < MANY; i++) {
		assert_true(strindex_get(&ix, keys[i], &v));
		assert_int_equal(v, i);
		snprintf(other, sizeof(other), "x%zu.test", i);
		assert_false(strindex_get(&ix, other, &v));
	}
	strindex_free(&ix);
	assert_int_equal(ix.n, 0);
	assert_false(strindex_get(&ix, keys[0], &v));
	/* Usable again. */
	assert_true(strindex_add(&ix, keys[1], 11));
	assert_true(strindex_get(&ix, keys[1], &v));
	assert_int_equal(v, 11);
	strindex_free(&ix);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strindex_empty_finds_nothing),
		cmocka_unit_test(
		    test_strindex_finds_its_keys_and_refuses_a_second_add),
		cmocka_unit_test(test_strindex_holds_thousands_of_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

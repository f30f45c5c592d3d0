/*
 * Tests of the log rate limiter, with the clock passed in: once per window
 * per key, keys apart, and a full table that forgets the oldest key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ratelimit.h"

static void
test_ratelimit_lets_a_key_through_once_per_window(void **state)
{
	struct ratelimit	*rl = ratelimit_new(8, 60);

	assert_true(ratelimit_allow(rl, "127.0.0.1 api.test", 1000));
	assert_false(ratelimit_allow(rl, "127.0.0.1 api.test", 1000));
	assert_false(ratelimit_allow(rl, "127.0.0.1 api.test", 1059));
	assert_true(ratelimit_allow(rl, "127.0.0.1 api.test", 1060));
	assert_false(ratelimit_allow(rl, "127.0.0.1 api.test", 1100));
	assert_true(ratelimit_allow(rl, "127.0.0.1 api.test", 1120));
	ratelimit_free(rl);
}

static void
test_ratelimit_keeps_keys_apart(void **state)
{
	struct ratelimit	*rl = ratelimit_new(8, 60);

	assert_true(ratelimit_allow(rl, "127.0.0.1 api.test", 5));
	assert_true(ratelimit_allow(rl, "127.0.0.2 api.test", 5));
	assert_true(ratelimit_allow(rl, "127.0.0.1 other.test", 5));
	assert_false(ratelimit_allow(rl, "127.0.0.2 api.test", 6));
	assert_false(ratelimit_allow(rl, "127.0.0.1 other.test", 7));
	ratelimit_free(rl);
}

static void
test_ratelimit_full_table_forgets_the_oldest_key(void **state)
{
	struct ratelimit	*rl = ratelimit_new(3, 60);
	char			 key[32];
	int			 i;

	for (i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "10.0.0.%d h", i);
		assert_true(ratelimit_allow(rl, key, 100 + i));
	}
	/* A fourth key takes the slot of the first, seen longest ago. */
	assert_true(ratelimit_allow(rl, "10.0.0.9 h", 110));
	assert_false(ratelimit_allow(rl, "10.0.0.1 h", 111));
	assert_false(ratelimit_allow(rl, "10.0.0.2 h", 111));
	assert_false(ratelimit_allow(rl, "10.0.0.9 h", 111));
	assert_true(ratelimit_allow(rl, "10.0.0.0 h", 111));
	ratelimit_free(rl);
}

static void
test_ratelimit_clock_going_back_opens_a_new_window(void **state)
{
	struct ratelimit	*rl = ratelimit_new(2, 60);

	assert_true(ratelimit_allow(rl, "k", 500));
	assert_true(ratelimit_allow(rl, "k", 400));
	assert_false(ratelimit_allow(rl, "k", 401));
	ratelimit_free(rl);
}

static void
test_ratelimit_cuts_long_keys(void **state)
{
	struct ratelimit	*rl = ratelimit_new(2, 60);
	char			 a[RATELIMIT_KEY_MAX + 20];

	memset(a, 'a', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	assert_true(ratelimit_allow(rl, a, 1));
	assert_false(ratelimit_allow(rl, a, 2));
	ratelimit_free(rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_ratelimit_lets_a_key_through_once_per_window),
		cmocka_unit_test(test_ratelimit_keeps_keys_apart),
		cmocka_unit_test(
		    test_ratelimit_full_table_forgets_the_oldest_key),
		cmocka_unit_test(
		    test_ratelimit_clock_going_back_opens_a_new_window),
		cmocka_unit_test(test_ratelimit_cuts_long_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

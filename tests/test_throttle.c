/*
 * Tests of the throttle that logs a repeated pin_mismatch once per window:
 * repeats within the window, a new window, distinct keys, and eviction of
 * the key used least recently when every slot is taken. The clock is
 * passed in, so nothing sleeps.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "throttle.h"

#define T0	((time_t)1000)

/* throttle_allow for a string key. */
static bool
allow(struct throttle *t, const char *key, time_t now)
{
	return throttle_allow(t, key, strlen(key), now);
}

static void
test_throttle_allows_the_first_event_of_a_key(void **state)
{
	struct throttle	*t = throttle_new(4, 10);

	assert_true(allow(t, "a", T0));
	throttle_free(t);
}

static void
test_throttle_suppresses_repeats_within_the_window(void **state)
{
	struct throttle	*t = throttle_new(4, 10);

	assert_true(allow(t, "a", T0));
	assert_false(allow(t, "a", T0));
	assert_false(allow(t, "a", T0 + 5));
	assert_false(allow(t, "a", T0 + 9));
	throttle_free(t);
}

static void
test_throttle_allows_again_once_the_window_passed(void **state)
{
	struct throttle	*t = throttle_new(4, 10);

	assert_true(allow(t, "a", T0));
	assert_false(allow(t, "a", T0 + 9));
	assert_true(allow(t, "a", T0 + 10));
	/* The window restarts at the event that was allowed. */
	assert_false(allow(t, "a", T0 + 19));
	assert_true(allow(t, "a", T0 + 20));
	throttle_free(t);
}

static void
test_throttle_keeps_keys_apart(void **state)
{
	struct throttle	*t = throttle_new(4, 10);

	assert_true(allow(t, "api.test 127.0.0.1 chain1", T0));
	assert_true(allow(t, "api.test 127.0.0.2 chain1", T0));
	assert_true(allow(t, "api.test 127.0.0.1 chain2", T0));
	assert_false(allow(t, "api.test 127.0.0.1 chain1", T0 + 1));
	throttle_free(t);
}

static void
test_throttle_forgets_the_least_recently_used_key(void **state)
{
	struct throttle	*t = throttle_new(2, 10);

	assert_true(allow(t, "a", T0));
	assert_true(allow(t, "b", T0));
	/* a is used again: b is now the least recently used. */
	assert_false(allow(t, "a", T0 + 1));
	assert_true(allow(t, "c", T0 + 2));
	assert_false(allow(t, "a", T0 + 3));
	assert_false(allow(t, "c", T0 + 3));
	/* b was forgotten, so it is logged again. */
	assert_true(allow(t, "b", T0 + 3));
	throttle_free(t);
}

static void
test_throttle_starts_a_new_window_when_the_clock_went_back(void **state)
{
	struct throttle	*t = throttle_new(4, 10);

	assert_true(allow(t, "a", T0));
	assert_true(allow(t, "a", T0 - 1));
	throttle_free(t);
}

static void
test_throttle_without_a_table_allows_everything(void **state)
{
	assert_true(allow(NULL, "a", T0));
	assert_true(allow(NULL, "a", T0));
}

static void
test_throttle_addr_len_drops_the_port(void **state)
{
	assert_int_equal(throttle_addr_len("127.0.0.1:40000"), 9);
	assert_int_equal(throttle_addr_len("[::1]:40000"), 5);
	assert_int_equal(throttle_addr_len("[2001:db8::1]:443"), 13);
	assert_int_equal(throttle_addr_len("127.0.0.1"), 9);
	assert_int_equal(throttle_addr_len("::1"), 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_throttle_allows_the_first_event_of_a_key),
		cmocka_unit_test(
		    test_throttle_suppresses_repeats_within_the_window),
		cmocka_unit_test(
		    test_throttle_allows_again_once_the_window_passed),
		cmocka_unit_test(test_throttle_keeps_keys_apart),
		cmocka_unit_test(
		    test_throttle_forgets_the_least_recently_used_key),
		cmocka_unit_test(
		    test_throttle_starts_a_new_window_when_the_clock_went_back),
		cmocka_unit_test(
		    test_throttle_without_a_table_allows_everything),
		cmocka_unit_test(test_throttle_addr_len_drops_the_port),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

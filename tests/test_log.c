/* Tests of the logger: logfmt layout, escaping and level filtering. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "log.h"

static char	captured[LOG_LINE_MAX];
static int	ncaptured;

static void
capture(enum log_level level, const char *line, void *arg)
{
	strncpy(captured, line, sizeof(captured) - 1);
	ncaptured++;
}

static int
setup(void **state)
{
	captured[0] = '\0';
	ncaptured = 0;
	log_set_level(LL_INFO);
	log_set_capture(capture, NULL);
	return 0;
}

static int
teardown(void **state)
{
	log_set_capture(NULL, NULL);
	return 0;
}

static void
test_log_line_starts_with_level_and_event(void **state)
{
	struct logline	 l;

	log_begin(&l, EV_PIN_MISMATCH);
	log_str(&l, LK_HOST, "api.example.com");
	log_int(&l, LK_PORT, 443);
	log_str(&l, LK_ENFORCED, "yes");
	log_end(&l);
	assert_string_equal(captured, "level=warn event=pin_mismatch "
	    "host=api.example.com port=443 enforced=yes");
}

static void
test_log_quotes_values_with_spaces_and_escapes_quotes(void **state)
{
	struct logline	 l;

	log_begin(&l, EV_ACCESS);
	log_str(&l, LK_REASON, "a \"b\" c\\d");
	log_end(&l);
	assert_string_equal(captured,
	    "level=info event=access reason=\"a \\\"b\\\" c\\\\d\"");
}

static void
test_log_never_lets_network_bytes_break_a_line(void **state)
{
	struct logline	 l;
	static const char evil[] = "x\ny\rz\x01\x7f\xff";

	log_begin(&l, EV_ACCESS);
	log_strn(&l, LK_HOST, evil, sizeof(evil) - 1);
	log_end(&l);
	assert_null(strchr(captured, '\n'));
	assert_null(strchr(captured, '\r'));
	assert_string_equal(captured, "level=info event=access "
	    "host=\"x\\ny\\rz\\x01\\x7f\\xff\"");
}

static void
test_log_empty_value_is_an_empty_quoted_string(void **state)
{
	struct logline	 l;

	log_begin(&l, EV_BLOCKED);
	log_str(&l, LK_HOST, "");
	log_str(&l, LK_CLIENT, NULL);
	log_end(&l);
	assert_string_equal(captured,
	    "level=info event=blocked host=\"\" client=\"\"");
}

static void
test_log_drops_events_below_the_level(void **state)
{
	struct logline	 l;

	log_begin(&l, EV_CONN_STATE);
	log_str(&l, LK_STATE, "read_head");
	log_end(&l);
	assert_int_equal(ncaptured, 0);
	log_set_level(LL_DEBUG);
	log_begin(&l, EV_CONN_STATE);
	log_str(&l, LK_STATE, "read_head");
	log_end(&l);
	assert_int_equal(ncaptured, 1);
	log_set_level(LL_ERROR);
	log_msg(EV_PIN_MISMATCH, "dropped");
	assert_int_equal(ncaptured, 1);
	log_msg(EV_RELOAD_FAILED, "kept");
	assert_int_equal(ncaptured, 2);
}

static void
test_log_levels_follow_the_spec(void **state)
{
	assert_int_equal(log_event_level(EV_RELOAD_FAILED), LL_ERROR);
	assert_int_equal(log_event_level(EV_PIN_MISMATCH), LL_WARN);
	assert_int_equal(log_event_level(EV_VERIFY_FAILED), LL_WARN);
	assert_int_equal(log_event_level(EV_PINSET_EXPIRED), LL_WARN);
	assert_int_equal(log_event_level(EV_UPSTREAM_ERROR), LL_WARN);
	assert_int_equal(log_event_level(EV_ACCESS), LL_INFO);
	assert_int_equal(log_event_level(EV_STARTED), LL_INFO);
	assert_int_equal(log_event_level(EV_STOPPING), LL_INFO);
	assert_int_equal(log_event_level(EV_BLOCKED), LL_INFO);
}

static void
test_log_every_event_and_key_has_a_name(void **state)
{
	int	 i;

	for (i = 0; i < EV__COUNT; i++)
		assert_non_null(log_event_name((enum log_event)i));
	for (i = 0; i < LK__COUNT; i++)
		assert_non_null(log_key_name((enum log_key)i));
}

static void
test_log_truncates_an_overlong_line_without_overflow(void **state)
{
	struct logline	 l;
	char		 big[3 * LOG_LINE_MAX];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_begin(&l, EV_ACCESS);
	log_str(&l, LK_HOST, big);
	log_str(&l, LK_CLIENT, big);
	log_end(&l);
	assert_true(l.truncated);
	assert_true(strlen(captured) < LOG_LINE_MAX);
}

/*
 * A pair that does not fit is left out whole, never cut in its quoted
 * value, and so are the ones after it; the line ends with truncated=1.
 */
static void
test_log_leaves_out_a_pair_that_does_not_fit(void **state)
{
	struct logline	 l;
	char		 big[LOG_LINE_MAX - 200];
	size_t		 n;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[10] = ' ';
	log_begin(&l, EV_ACCESS);
	log_str(&l, LK_HOST, "api.test");
	log_str(&l, LK_CLIENT, big);
	log_str(&l, LK_REASON, big);
	log_int(&l, LK_STATUS, 200);
	log_end(&l);
	n = strlen(captured);
	assert_true(n < LOG_LINE_MAX);
	assert_non_null(strstr(captured, " host=api.test client=\"aaaa"));
	assert_null(strstr(captured, " reason="));
	assert_null(strstr(captured, " status="));
	assert_true(n > 12);
	assert_string_equal(captured + n - 13, "\" truncated=1");
}

static void
test_log_level_parse_accepts_the_four_names(void **state)
{
	enum log_level	 lv;

	assert_true(log_level_parse("debug", &lv));
	assert_int_equal(lv, LL_DEBUG);
	assert_true(log_level_parse("error", &lv));
	assert_int_equal(lv, LL_ERROR);
	assert_false(log_level_parse("verbose", &lv));
	assert_false(log_level_parse("", &lv));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_log_line_starts_with_level_and_event, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_log_quotes_values_with_spaces_and_escapes_quotes,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_log_never_lets_network_bytes_break_a_line, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_log_empty_value_is_an_empty_quoted_string, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_log_drops_events_below_the_level, setup, teardown),
		cmocka_unit_test(test_log_levels_follow_the_spec),
		cmocka_unit_test(test_log_every_event_and_key_has_a_name),
		cmocka_unit_test_setup_teardown(
		    test_log_leaves_out_a_pair_that_does_not_fit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_log_truncates_an_overlong_line_without_overflow,
		    setup, teardown),
		cmocka_unit_test(test_log_level_parse_accepts_the_four_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

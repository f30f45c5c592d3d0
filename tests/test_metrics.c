/*
 * Tests of the metrics table: the exact Prometheus text it renders, and
 * counters and gauges that move as the daemon's events are counted.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/buffer.h>

#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "pincheck.h"
#include "upstream.h"
#include "xmalloc.h"

/* The rendering of m as a string; free it. */
static char *
render(const struct metrics *m)
{
	struct evbuffer	*out;
	char		*text;
	size_t		 len;

	out = evbuffer_new();
	assert_non_null(out);
	metrics_render(m, out);
	len = evbuffer_get_length(out);
	text = xmalloc(len + 1);
	evbuffer_remove(out, text, len);
	text[len] = '\0';
	evbuffer_free(out);
	return text;
}

static const char golden[] =
    "# HELP pinproxy_connections_active Client connections open now.\n"
    "# TYPE pinproxy_connections_active gauge\n"
    "pinproxy_connections_active 2\n"
    "# HELP pinproxy_connections_total Client connections accepted.\n"
    "# TYPE pinproxy_connections_total counter\n"
    "pinproxy_connections_total 3\n"
    "# HELP pinproxy_pin_checks_total Pin verdicts on verified upstream "
    "chains.\n"
    "# TYPE pinproxy_pin_checks_total counter\n"
    "pinproxy_pin_checks_total{result=\"match\"} 5\n"
    "pinproxy_pin_checks_total{result=\"mismatch\"} 1\n"
    "pinproxy_pin_checks_total{result=\"report_only\"} 0\n"
    "pinproxy_pin_checks_total{result=\"expired\"} 0\n"
    "# HELP pinproxy_verify_failures_total Upstream chains or host names "
    "that failed verification.\n"
    "# TYPE pinproxy_verify_failures_total counter\n"
    "pinproxy_verify_failures_total 0\n"
    "# HELP pinproxy_upstream_errors_total Upstream DNS, TCP, TLS, "
    "timeout and response failures.\n"
    "# TYPE pinproxy_upstream_errors_total counter\n"
    "pinproxy_upstream_errors_total 3\n"
    "# HELP pinproxy_upstream_errors_by_kind_total Upstream failures by "
    "kind (their sum is pinproxy_upstream_errors_total).\n"
    "# TYPE pinproxy_upstream_errors_by_kind_total counter\n"
    "pinproxy_upstream_errors_by_kind_total{error=\"dns-failed\"} 0\n"
    "pinproxy_upstream_errors_by_kind_total{error=\"connect-failed\"} 2\n"
    "pinproxy_upstream_errors_by_kind_total{error=\"tls-failed\"} 0\n"
    "pinproxy_upstream_errors_by_kind_total{error=\"timeout\"} 1\n"
    "pinproxy_upstream_errors_by_kind_total{error=\"bad-response\"} 0\n"
    "# HELP pinproxy_bytes_total Bytes relayed, up to upstreams and down "
    "to clients.\n"
    "# TYPE pinproxy_bytes_total counter\n"
    "pinproxy_bytes_total{direction=\"up\"} 1234\n"
    "pinproxy_bytes_total{direction=\"down\"} 18446744073709551615\n"
    "# HELP pinproxy_leafcert_cache_hits_total Forged leaf certificates "
    "found in the cache.\n"
    "# TYPE pinproxy_leafcert_cache_hits_total counter\n"
    "pinproxy_leafcert_cache_hits_total 0\n"
    "# HELP pinproxy_leafcert_cache_misses_total Forged leaf certificates "
    "issued because none was cached.\n"
    "# TYPE pinproxy_leafcert_cache_misses_total counter\n"
    "pinproxy_leafcert_cache_misses_total 0\n"
    "# HELP pinproxy_handshake_failures_total TLS handshakes that failed, "
    "by side.\n"
    "# TYPE pinproxy_handshake_failures_total counter\n"
    "pinproxy_handshake_failures_total{reason=\"client\"} 0\n"
    "pinproxy_handshake_failures_total{reason=\"upstream\"} 0\n"
    "# HELP pinproxy_config_reloads_total Configuration reloads on "
    "SIGHUP.\n"
    "# TYPE pinproxy_config_reloads_total counter\n"
    "pinproxy_config_reloads_total{result=\"ok\"} 0\n"
    "pinproxy_config_reloads_total{result=\"failed\"} 1\n"
    "# HELP pinproxy_pin_mismatch_suppressed_total Repeated pin_mismatch log "
    "lines left out (counted as checks).\n"
    "# TYPE pinproxy_pin_mismatch_suppressed_total counter\n"
    "pinproxy_pin_mismatch_suppressed_total 0\n"
    "# HELP pinproxy_pin_denied_total Verified upstream chains refused for "
    "holding a denied key.\n"
    "# TYPE pinproxy_pin_denied_total counter\n"
    "pinproxy_pin_denied_total 2\n"
    "# HELP pinproxy_upstream_pool_idle Idle checked upstream connections "
    "kept for reuse.\n"
    "# TYPE pinproxy_upstream_pool_idle gauge\n"
    "pinproxy_upstream_pool_idle 17\n"
    "# HELP pinproxy_upstream_pool_in_use Upstream connections of HTTP "
    "exchanges in use or being opened.\n"
    "# TYPE pinproxy_upstream_pool_in_use gauge\n"
    "pinproxy_upstream_pool_in_use 3\n"
    "# HELP pinproxy_candidate_seen_total Pin checks that found a candidate "
    "pin in the verified chain.\n"
    "# TYPE pinproxy_candidate_seen_total counter\n";

static void
test_metrics_render_the_documented_text_exactly(void **state)
{
	struct metrics	*m;
	char		*text;

	(void)state;
	m = metrics_new();
	metrics_inc(m, METRIC_CONNECTIONS_TOTAL);
	metrics_inc(m, METRIC_CONNECTIONS_TOTAL);
	metrics_inc(m, METRIC_CONNECTIONS_TOTAL);
	metrics_inc(m, METRIC_CONNECTIONS_ACTIVE);
	metrics_inc(m, METRIC_CONNECTIONS_ACTIVE);
	metrics_inc(m, METRIC_CONNECTIONS_ACTIVE);
	metrics_dec(m, METRIC_CONNECTIONS_ACTIVE);
	metrics_add(m, METRIC_PIN_CHECKS_MATCH, 5);
	metrics_inc(m, METRIC_PIN_CHECKS_MISMATCH);
	metrics_inc(m, METRIC_UPSTREAM_ERRORS_TIMEOUT);
	metrics_add(m, METRIC_UPSTREAM_ERRORS_CONNECT, 2);
	metrics_add(m, METRIC_BYTES_UP, 1000);
	metrics_add(m, METRIC_BYTES_UP, 234);
	metrics_set(m, METRIC_BYTES_DOWN, UINT64_MAX);
	metrics_inc(m, METRIC_CONFIG_RELOADS_FAILED);
	metrics_add(m, METRIC_PIN_DENIED, 2);
	metrics_set(m, METRIC_UPSTREAM_POOL_IDLE, 17);
	metrics_set(m, METRIC_UPSTREAM_POOL_IN_USE, 3);
	text = render(m);
	assert_string_equal(text, golden);
	free(text);
	metrics_free(m);
}

static void
test_metrics_start_at_zero(void **state)
{
	struct metrics	*m;
	size_t		 i;

	(void)state;
	m = metrics_new();
	for (i = 0; i < METRIC__COUNT; i++)
		assert_int_equal(metrics_get(m, i), 0);
	metrics_free(m);
}

static void
test_metrics_counters_move_by_what_is_added(void **state)
{
	struct metrics	*m;

	(void)state;
	m = metrics_new();
	metrics_inc(m, METRIC_VERIFY_FAILURES);
	assert_int_equal(metrics_get(m, METRIC_VERIFY_FAILURES), 1);
	metrics_add(m, METRIC_VERIFY_FAILURES, 41);
	assert_int_equal(metrics_get(m, METRIC_VERIFY_FAILURES), 42);
	assert_int_equal(metrics_get(m, METRIC_CONNECTIONS_TOTAL), 0);
	metrics_set(m, METRIC_LEAFCERT_CACHE_HITS, 7);
	assert_int_equal(metrics_get(m, METRIC_LEAFCERT_CACHE_HITS), 7);
	metrics_free(m);
}

static void
test_metrics_gauge_stops_at_zero(void **state)
{
	struct metrics	*m;

	(void)state;
	m = metrics_new();
	metrics_inc(m, METRIC_CONNECTIONS_ACTIVE);
	metrics_dec(m, METRIC_CONNECTIONS_ACTIVE);
	metrics_dec(m, METRIC_CONNECTIONS_ACTIVE);
	assert_int_equal(metrics_get(m, METRIC_CONNECTIONS_ACTIVE), 0);
	metrics_free(m);
}

static void
test_metrics_ignore_the_count_as_an_id(void **state)
{
	struct metrics	*m;
	char		*before, *after;

	(void)state;
	m = metrics_new();
	before = render(m);
	metrics_inc(m, METRIC__COUNT);
	metrics_add(m, METRIC__COUNT, 5);
	metrics_set(m, METRIC__COUNT, 5);
	after = render(m);
	assert_string_equal(before, after);
	assert_int_equal(metrics_get(m, METRIC__COUNT), 0);
	free(before);
	free(after);
	metrics_free(m);
}

static void
test_metrics_map_every_pin_verdict(void **state)
{
	(void)state;
	assert_int_equal(metrics_pin_check(PIN_MATCH),
	    METRIC_PIN_CHECKS_MATCH);
	assert_int_equal(metrics_pin_check(PIN_MISMATCH),
	    METRIC_PIN_CHECKS_MISMATCH);
	assert_int_equal(metrics_pin_check(PIN_REPORT_ONLY),
	    METRIC_PIN_CHECKS_REPORT_ONLY);
	assert_int_equal(metrics_pin_check(PIN_EXPIRED),
	    METRIC_PIN_CHECKS_EXPIRED);
	assert_int_equal(metrics_pin_check(PIN_UNPINNED), METRIC__COUNT);
}

/*
 * Each failed upstream status has one row: its answer, whose details code
 * is also the label of the upstream_errors series counting it.
 */
static void
test_metrics_count_each_upstream_status_once(void **state)
{
	static const struct {
		enum upstream_status	 st;
		const char		*details;
		enum metric_id		 metric;
		bool			 verdict;
	} want[] = {
		{ UPSTREAM_DNS_FAILED, "dns-failed",
		    METRIC_UPSTREAM_ERRORS_DNS, false },
		{ UPSTREAM_CONNECT_FAILED, "connect-failed",
		    METRIC_UPSTREAM_ERRORS_CONNECT, false },
		{ UPSTREAM_TIMEOUT, "timeout",
		    METRIC_UPSTREAM_ERRORS_TIMEOUT, false },
		{ UPSTREAM_TLS_FAILED, "tls-failed",
		    METRIC_UPSTREAM_ERRORS_TLS, false },
		{ UPSTREAM_VERIFY_FAILED, "verify-failed", METRIC__COUNT,
		    true },
		{ UPSTREAM_PIN_MISMATCH, "pin-mismatch", METRIC__COUNT, true },
		{ UPSTREAM_PIN_DENIED, "pin-denied", METRIC__COUNT, true },
		{ UPSTREAM_LOOP, "loop", METRIC__COUNT, false },
		{ UPSTREAM_ADDR_PINNED, "address-pinned", METRIC__COUNT,
		    false },
	};
	const struct upstream_outcome	*o;
	size_t				 i;

	(void)state;
	assert_int_equal(sizeof(want) / sizeof(want[0]), UPSTREAM__COUNT - 1);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		o = upstream_outcome(want[i].st);
		assert_string_equal(http_error_details(o->error),
		    want[i].details);
		assert_int_equal(o->metric, want[i].metric);
		assert_int_equal(o->verdict, want[i].verdict);
	}
}

/* Each pin set and candidate pin is a series of its own, made on use. */
static void
test_metrics_count_candidates_by_pinset_and_pin(void **state)
{
	struct metrics	*m;
	char		*text;

	(void)state;
	m = metrics_new();
	metrics_candidate_seen(m, "api", "sha256/AAAA");
	metrics_candidate_seen(m, "api", "sha256/AAAA");
	metrics_candidate_seen(m, "cdn", "sha256/AAAA");
	text = render(m);
	assert_non_null(strstr(text, "# TYPE pinproxy_candidate_seen_total "
	    "counter\n"
	    "pinproxy_candidate_seen_total{pinset=\"api\",pin=\"sha256/AAAA\"} "
	    "2\n"
	    "pinproxy_candidate_seen_total{pinset=\"cdn\",pin=\"sha256/AAAA\"} "
	    "1\n"));
	free(text);
	metrics_free(m);
}

/* Every family is introduced once, and each sample follows its header. */
static void
test_metrics_name_each_family_once(void **state)
{
	struct metrics	*m;
	char		*text, *line, *save, *family;
	size_t		 nhelp = 0;

	(void)state;
	m = metrics_new();
	text = render(m);
	family = NULL;
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# HELP ", 7) == 0) {
			nhelp++;
			family = line + 7;
			*strchr(family, ' ') = '\0';
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0)
			continue;
		assert_non_null(family);
		assert_int_equal(strncmp(line, family, strlen(family)), 0);
		assert_true(line[strlen(family)] == ' ' ||
		    line[strlen(family)] == '{');
	}
	assert_int_equal(nhelp, 16);
	free(text);
	metrics_free(m);
}

/* The gauge shows each pin set with expires, negative once it is over. */
static void
test_metrics_pinset_expiry_counts_down_past_zero(void **state)
{
	struct pinset	 sets[3];
	struct conf	 c;
	struct metrics	*m;
	char		*text;
	/* 2028-06-30 00:00:00 UTC. */
	time_t		 expires = 1845936000;

	(void)state;
	memset(sets, 0, sizeof(sets));
	memset(&c, 0, sizeof(c));
	sets[0].name = "soon";
	sets[0].has_expires = true;
	sets[0].expires = expires;
	sets[1].name = "never";
	sets[2].name = "over";
	sets[2].has_expires = true;
	sets[2].expires = expires - 10 * 86400;
	c.pinsets = sets;
	c.npinsets = 3;
	m = metrics_new();
	text = render(m);
	assert_null(strstr(text, "pinproxy_pinset_expiry_seconds"));
	free(text);
	metrics_set_pinset_expiry(m, &c, expires - 3600);
	text = render(m);
	assert_non_null(strstr(text, "\n# TYPE pinproxy_pinset_expiry_seconds "
	    "gauge\npinproxy_pinset_expiry_seconds{pinset=\"soon\"} 90000\n"
	    "pinproxy_pinset_expiry_seconds{pinset=\"over\"} -774000\n"));
	assert_null(strstr(text, "never"));
	free(text);
	metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_metrics_render_the_documented_text_exactly),
		cmocka_unit_test(test_metrics_start_at_zero),
		cmocka_unit_test(test_metrics_counters_move_by_what_is_added),
		cmocka_unit_test(test_metrics_gauge_stops_at_zero),
		cmocka_unit_test(test_metrics_ignore_the_count_as_an_id),
		cmocka_unit_test(test_metrics_map_every_pin_verdict),
		cmocka_unit_test(test_metrics_count_each_upstream_status_once),
		cmocka_unit_test(test_metrics_name_each_family_once),
		cmocka_unit_test(
		    test_metrics_count_candidates_by_pinset_and_pin),
		cmocka_unit_test(
		    test_metrics_pinset_expiry_counts_down_past_zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

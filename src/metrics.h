/*
 * Counters and gauges of the daemon, declared once in a table (name, help,
 * type, label) and rendered in the Prometheus text exposition format. The
 * daemon owns one struct metrics; nothing here is global.
 */
#ifndef PINPROXY_METRICS_H
#define PINPROXY_METRICS_H

#include <event2/buffer.h>

#include <stdint.h>
#include <time.h>

#include "pincheck.h"

/*
 * One series each: a metric, or one label value of a labelled metric. The
 * series of one metric are adjacent and in the order they are rendered.
 */
enum metric_id {
	METRIC_CONNECTIONS_ACTIVE,
	METRIC_CONNECTIONS_TOTAL,
	METRIC_PIN_CHECKS_MATCH,
	METRIC_PIN_CHECKS_MISMATCH,
	METRIC_PIN_CHECKS_REPORT_ONLY,
	METRIC_PIN_CHECKS_EXPIRED,
	METRIC_VERIFY_FAILURES,
	METRIC_UPSTREAM_ERRORS,		/* the sum of the five below */
	METRIC_UPSTREAM_ERRORS_DNS,
	METRIC_UPSTREAM_ERRORS_CONNECT,
	METRIC_UPSTREAM_ERRORS_TLS,
	METRIC_UPSTREAM_ERRORS_TIMEOUT,
	METRIC_UPSTREAM_ERRORS_BAD_RESPONSE,
	METRIC_BYTES_UP,
	METRIC_BYTES_DOWN,
	METRIC_LEAFCERT_CACHE_HITS,
	METRIC_LEAFCERT_CACHE_MISSES,
	METRIC_HANDSHAKE_FAILURES_CLIENT,
	METRIC_HANDSHAKE_FAILURES_UPSTREAM,
	METRIC_CONFIG_RELOADS_OK,
	METRIC_CONFIG_RELOADS_FAILED,
	METRIC_PIN_MISMATCH_SUPPRESSED,
	METRIC_PIN_DENIED,
	METRIC_UPSTREAM_POOL_IDLE,
	METRIC_UPSTREAM_POOL_IN_USE,
	METRIC__COUNT		/* not a series: the calls ignore it */
};

/* Pin set and pin series of pinproxy_candidate_seen_total kept at most. */
#define METRICS_CANDIDATES_MAX	256

struct metrics;

/* Every series at zero. */
struct metrics	*metrics_new(void);
/* Free (NULL is fine). */
void		 metrics_free(struct metrics *m);
/* Add one to a series. */
void		 metrics_inc(struct metrics *m, enum metric_id id);
/* Add n to a series. */
void		 metrics_add(struct metrics *m, enum metric_id id, uint64_t n);
/* Add one to pinproxy_candidate_seen_total{pinset,pin}. */
void		 metrics_candidate_seen(struct metrics *m, const char *pinset,
		    const char *pin);
/* Subtract one from a gauge, stopping at zero. */
void		 metrics_dec(struct metrics *m, enum metric_id id);
/* Set a series, e.g. a gauge or a counter kept by another module. */
void		 metrics_set(struct metrics *m, enum metric_id id, uint64_t v);
/* The value of a series. */
uint64_t	 metrics_get(const struct metrics *m, enum metric_id id);
/*
 * Set pinproxy_pinset_expiry_seconds{pinset} for every pin set of c that
 * has expires: the seconds from now until its pins stop being enforced,
 * negative once they have. Rendered only when at least one set has one.
 */
void		 metrics_set_pinset_expiry(struct metrics *m,
		    const struct conf *c, time_t now);
/* Append every metric in the Prometheus text format (version 0.0.4). */
void		 metrics_render(const struct metrics *m, struct evbuffer *out);
/* The pin_checks series of a verdict; METRIC__COUNT for an unpinned host. */
enum metric_id	 metrics_pin_check(enum pin_verdict v);

#endif

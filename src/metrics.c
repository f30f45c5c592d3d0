/*
 * The metrics table and its rendering. Each series names its metric family
 * and label value; a family carries the name, help text, type and label
 * name, so adding a metric is adding table rows.
 */
#include "config.h"

#include <event2/buffer.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "xmalloc.h"

enum metric_type {
	METRIC_COUNTER,
	METRIC_GAUGE
};

enum metric_family_id {
	MF_CONNECTIONS_ACTIVE,
	MF_CONNECTIONS_TOTAL,
	MF_PIN_CHECKS,
	MF_VERIFY_FAILURES,
	MF_UPSTREAM_ERRORS,
	MF_UPSTREAM_ERRORS_BY_KIND,
	MF_BYTES,
	MF_LEAFCERT_CACHE_HITS,
	MF_LEAFCERT_CACHE_MISSES,
	MF_HANDSHAKE_FAILURES,
	MF_CONFIG_RELOADS,
	MF_PIN_MISMATCH_SUPPRESSED,
	MF_PIN_DENIED,
	MF_UPSTREAM_POOL_IDLE,
	MF_UPSTREAM_POOL_IN_USE,
	MF__COUNT
};

struct metric_family {
	const char		*name;
	const char		*help;
	enum metric_type	 type;
	const char		*label;		/* NULL: no label */
};

struct metric_series {
	enum metric_family_id	 family;
	const char		*value;		/* of the family's label */
};

static const struct metric_family metric_families[MF__COUNT] = {
	[MF_CONNECTIONS_ACTIVE] = { "pinproxy_connections_active",
	    "Client connections open now.", METRIC_GAUGE, NULL },
	[MF_CONNECTIONS_TOTAL] = { "pinproxy_connections_total",
	    "Client connections accepted.", METRIC_COUNTER, NULL },
	[MF_PIN_CHECKS] = { "pinproxy_pin_checks_total",
	    "Pin verdicts on verified upstream chains.", METRIC_COUNTER,
	    "result" },
	[MF_VERIFY_FAILURES] = { "pinproxy_verify_failures_total",
	    "Upstream chains or host names that failed verification.",
	    METRIC_COUNTER, NULL },
	[MF_UPSTREAM_ERRORS] = { "pinproxy_upstream_errors_total",
	    "Upstream DNS, TCP, TLS, timeout and response failures.",
	    METRIC_COUNTER, NULL },
	[MF_UPSTREAM_ERRORS_BY_KIND] = {
	    "pinproxy_upstream_errors_by_kind_total",
	    "Upstream failures by kind (their sum is "
	    "pinproxy_upstream_errors_total).", METRIC_COUNTER, "error" },
	[MF_BYTES] = { "pinproxy_bytes_total",
	    "Bytes relayed, up to upstreams and down to clients.",
	    METRIC_COUNTER, "direction" },
	[MF_LEAFCERT_CACHE_HITS] = { "pinproxy_leafcert_cache_hits_total",
	    "Forged leaf certificates found in the cache.", METRIC_COUNTER,
	    NULL },
	[MF_LEAFCERT_CACHE_MISSES] = { "pinproxy_leafcert_cache_misses_total",
	    "Forged leaf certificates issued because none was cached.",
	    METRIC_COUNTER, NULL },
	[MF_HANDSHAKE_FAILURES] = { "pinproxy_handshake_failures_total",
	    "TLS handshakes that failed, by side.", METRIC_COUNTER,
	    "reason" },
	[MF_CONFIG_RELOADS] = { "pinproxy_config_reloads_total",
	    "Configuration reloads on SIGHUP.", METRIC_COUNTER, "result" },
	[MF_PIN_MISMATCH_SUPPRESSED] = {
	    "pinproxy_pin_mismatch_suppressed_total",
	    "Repeated pin_mismatch log lines left out (counted as checks).",
	    METRIC_COUNTER, NULL },
	[MF_PIN_DENIED] = { "pinproxy_pin_denied_total",
	    "Verified upstream chains refused for holding a denied key.",
	    METRIC_COUNTER, NULL },
	[MF_UPSTREAM_POOL_IDLE] = { "pinproxy_upstream_pool_idle",
	    "Idle checked upstream connections kept for reuse.", METRIC_GAUGE,
	    NULL },
	[MF_UPSTREAM_POOL_IN_USE] = { "pinproxy_upstream_pool_in_use",
	    "Upstream connections of HTTP exchanges in use or being opened.",
	    METRIC_GAUGE, NULL },
};

static const struct metric_series metric_series[METRIC__COUNT] = {
	[METRIC_CONNECTIONS_ACTIVE] =	{ MF_CONNECTIONS_ACTIVE, NULL },
	[METRIC_CONNECTIONS_TOTAL] =	{ MF_CONNECTIONS_TOTAL, NULL },
	[METRIC_PIN_CHECKS_MATCH] =	{ MF_PIN_CHECKS, "match" },
	[METRIC_PIN_CHECKS_MISMATCH] =	{ MF_PIN_CHECKS, "mismatch" },
	[METRIC_PIN_CHECKS_REPORT_ONLY] = { MF_PIN_CHECKS, "report_only" },
	[METRIC_PIN_CHECKS_EXPIRED] =	{ MF_PIN_CHECKS, "expired" },
	[METRIC_VERIFY_FAILURES] =	{ MF_VERIFY_FAILURES, NULL },
	[METRIC_UPSTREAM_ERRORS] =	{ MF_UPSTREAM_ERRORS, NULL },
	[METRIC_UPSTREAM_ERRORS_DNS] =	{ MF_UPSTREAM_ERRORS_BY_KIND,
					    "dns-failed" },
	[METRIC_UPSTREAM_ERRORS_CONNECT] = { MF_UPSTREAM_ERRORS_BY_KIND,
					    "connect-failed" },
	[METRIC_UPSTREAM_ERRORS_TLS] =	{ MF_UPSTREAM_ERRORS_BY_KIND,
					    "tls-failed" },
	[METRIC_UPSTREAM_ERRORS_TIMEOUT] = { MF_UPSTREAM_ERRORS_BY_KIND,
					    "timeout" },
	[METRIC_UPSTREAM_ERRORS_BAD_RESPONSE] = { MF_UPSTREAM_ERRORS_BY_KIND,
					    "bad-response" },
	[METRIC_BYTES_UP] =		{ MF_BYTES, "up" },
	[METRIC_BYTES_DOWN] =		{ MF_BYTES, "down" },
	[METRIC_LEAFCERT_CACHE_HITS] =	{ MF_LEAFCERT_CACHE_HITS, NULL },
	[METRIC_LEAFCERT_CACHE_MISSES] = { MF_LEAFCERT_CACHE_MISSES, NULL },
	[METRIC_HANDSHAKE_FAILURES_CLIENT] = { MF_HANDSHAKE_FAILURES,
					    "client" },
	[METRIC_HANDSHAKE_FAILURES_UPSTREAM] = { MF_HANDSHAKE_FAILURES,
					    "upstream" },
	[METRIC_CONFIG_RELOADS_OK] =	{ MF_CONFIG_RELOADS, "ok" },
	[METRIC_CONFIG_RELOADS_FAILED] = { MF_CONFIG_RELOADS, "failed" },
	[METRIC_PIN_MISMATCH_SUPPRESSED] = { MF_PIN_MISMATCH_SUPPRESSED,
					    NULL },
	[METRIC_PIN_DENIED] =		{ MF_PIN_DENIED, NULL },
	[METRIC_UPSTREAM_POOL_IDLE] =	{ MF_UPSTREAM_POOL_IDLE, NULL },
	[METRIC_UPSTREAM_POOL_IN_USE] =	{ MF_UPSTREAM_POOL_IN_USE, NULL },
};

/* The family of the per pin set gauges, which the table cannot hold. */
#define METRIC_PINSET_EXPIRY	"pinproxy_pinset_expiry_seconds"

/* The expiry gauge of one pin set. */
struct metric_pinset_expiry {
	char		 pinset[PINSET_NAME_MAX + 1];
	long long	 seconds;
};

/* A series of pinproxy_candidate_seen_total, made when first counted. */
struct metric_candidate {
	char		 pinset[PINSET_NAME_MAX + 1];
	char		 pin[PIN_TEXT_MAX];
	uint64_t	 count;
};

struct metrics {
	uint64_t			 value[METRIC__COUNT];
	struct metric_candidate		*cand;
	size_t				 ncand;
	struct metric_pinset_expiry	*expiry;
	size_t				 nexpiry;
};

struct metrics *
metrics_new(void)
{
	return xcalloc(1, sizeof(struct metrics));
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	free(m->cand);
	free(m->expiry);
	free(m);
}

void
metrics_candidate_seen(struct metrics *m, const char *pinset,
    const char *pin)
{
	struct metric_candidate	*c;
	size_t			 i;

	for (i = 0; i < m->ncand; i++) {
		c = &m->cand[i];
		if (strcmp(c->pinset, pinset) == 0 &&
		    strcmp(c->pin, pin) == 0) {
			c->count++;
			return;
		}
	}
	/* Reloads may name new sets and pins: the series stay bounded. */
	if (m->ncand == METRICS_CANDIDATES_MAX)
		return;
	m->cand = xreallocarray(m->cand, m->ncand + 1, sizeof(*m->cand));
	c = &m->cand[m->ncand++];
	xstrlcpy(c->pinset, pinset, sizeof(c->pinset));
	xstrlcpy(c->pin, pin, sizeof(c->pin));
	c->count = 1;
}

void
metrics_inc(struct metrics *m, enum metric_id id)
{
	metrics_add(m, id, 1);
}

void
metrics_add(struct metrics *m, enum metric_id id, uint64_t n)
{
	if (id >= METRIC__COUNT)
		return;
	m->value[id] += n;
	/* A failure of one kind counts in the total too. */
	if (metric_series[id].family == MF_UPSTREAM_ERRORS_BY_KIND)
		m->value[METRIC_UPSTREAM_ERRORS] += n;
}

void
metrics_dec(struct metrics *m, enum metric_id id)
{
	if (id < METRIC__COUNT && m->value[id] > 0)
		m->value[id]--;
}

void
metrics_set(struct metrics *m, enum metric_id id, uint64_t v)
{
	if (id < METRIC__COUNT)
		m->value[id] = v;
}

uint64_t
metrics_get(const struct metrics *m, enum metric_id id)
{
	return id < METRIC__COUNT ? m->value[id] : 0;
}

void
metrics_set_pinset_expiry(struct metrics *m, const struct conf *c,
    time_t now)
{
	const struct pinset	*ps;
	size_t			 i;

	m->nexpiry = 0;
	m->expiry = xreallocarray(m->expiry, c->npinsets + 1,
	    sizeof(*m->expiry));
	for (i = 0; i < c->npinsets; i++) {
		ps = &c->pinsets[i];
		if (!ps->has_expires)
			continue;
		xstrlcpy(m->expiry[m->nexpiry].pinset, ps->name,
		    sizeof(m->expiry[m->nexpiry].pinset));
		m->expiry[m->nexpiry++].seconds = pinset_seconds_left(ps, now);
	}
}

/* The per pin set expiry gauges; pin set names need no escaping. */
static void
metrics_render_expiry(const struct metrics *m, struct evbuffer *out)
{
	size_t	 i;

	if (m->nexpiry == 0)
		return;
	evbuffer_add_printf(out, "# HELP %s Seconds until the pins of a pin "
	    "set stop being enforced (expires); negative after.\n"
	    "# TYPE %s gauge\n", METRIC_PINSET_EXPIRY, METRIC_PINSET_EXPIRY);
	for (i = 0; i < m->nexpiry; i++)
		evbuffer_add_printf(out, "%s{pinset=\"%s\"} %lld\n",
		    METRIC_PINSET_EXPIRY, m->expiry[i].pinset,
		    m->expiry[i].seconds);
}

void
metrics_render(const struct metrics *m, struct evbuffer *out)
{
	const struct metric_family	*f;
	const struct metric_series	*s;
	int				 last = -1;
	size_t				 i;

	for (i = 0; i < METRIC__COUNT; i++) {
		s = &metric_series[i];
		f = &metric_families[s->family];
		if ((int)s->family != last) {
			evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n",
			    f->name, f->help, f->name,
			    f->type == METRIC_GAUGE ? "gauge" : "counter");
			last = s->family;
		}
		if (f->label != NULL)
			evbuffer_add_printf(out, "%s{%s=\"%s\"} %" PRIu64 "\n",
			    f->name, f->label, s->value, m->value[i]);
		else
			evbuffer_add_printf(out, "%s %" PRIu64 "\n", f->name,
			    m->value[i]);
	}
	evbuffer_add_printf(out, "# HELP pinproxy_candidate_seen_total "
	    "Pin checks that found a candidate pin in the verified chain.\n"
	    "# TYPE pinproxy_candidate_seen_total counter\n");
	for (i = 0; i < m->ncand; i++)
		evbuffer_add_printf(out, "pinproxy_candidate_seen_total"
		    "{pinset=\"%s\",pin=\"%s\"} %" PRIu64 "\n",
		    m->cand[i].pinset, m->cand[i].pin, m->cand[i].count);
	metrics_render_expiry(m, out);
}

enum metric_id
metrics_pin_check(enum pin_verdict v)
{
	switch (v) {
	case PIN_MATCH:
		return METRIC_PIN_CHECKS_MATCH;
	case PIN_MISMATCH:
		return METRIC_PIN_CHECKS_MISMATCH;
	case PIN_REPORT_ONLY:
		return METRIC_PIN_CHECKS_REPORT_ONLY;
	case PIN_EXPIRED:
		return METRIC_PIN_CHECKS_EXPIRED;
	case PIN_UNPINNED:
		break;
	}
	return METRIC__COUNT;
}

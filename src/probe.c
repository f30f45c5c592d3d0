/*
 * pinproxy-pin dials through the daemon's upstream code instead of a
 * client of its own, so that it resolves, connects and verifies exactly
 * as the daemon does. Sinks are the daemon's kinds, but nobody reads
 * them: the tool reports each outcome itself.
 */
#include "config.h"

#include <event2/dns.h>
#include <event2/event.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "probe.h"
#include "resolve.h"
#include "xmalloc.h"

/* The client address in what the upstream code records. */
#define PROBE_CLIENT	"pinproxy-pin"

struct probe {
	struct event_base	*base;
	struct evdns_base	*dns;
	struct metrics		*metrics;
	struct upstream_sinks	 sinks;
	struct conf_addr	*self;		/* owned */
	size_t			 nself;
};

/* One run of probe_run. */
struct probe_call {
	const struct probe_target *t;
	bool			 done;
	enum upstream_status	 st;
};

/* The addresses the daemon's proxy.c counts as its own under c. */
static void
probe_self(struct probe *p, const struct conf *c)
{
	size_t	 i;

	p->self = xcalloc(c->nlisten + c->ntransparent + 1, sizeof(*p->self));
	for (i = 0; i < c->nlisten; i++)
		p->self[p->nself++] = c->listen[i];
	for (i = 0; i < c->ntransparent; i++)
		p->self[p->nself++] = c->transparent[i];
	if (c->has_stats_listen) {
		p->self[p->nself] = c->stats_listen;
		/* Its socket is IPv6-only (stats_relisten). */
		p->self[p->nself++].v6only =
		    c->stats_listen.ss.ss_family == AF_INET6;
	}
}

struct probe *
probe_new(const struct conf *c, char *err, size_t errlen)
{
	struct probe	*p;

	p = xcalloc(1, sizeof(*p));
	if ((p->base = event_base_new()) == NULL ||
	    (p->dns = resolve_base_new(p->base)) == NULL) {
		snprintf(err, errlen, "cannot set up an event loop and a "
		    "resolver");
		probe_free(p);
		return NULL;
	}
	p->metrics = metrics_new();
	p->sinks.metrics = p->metrics;
	if (c != NULL)
		probe_self(p, c);
	return p;
}

void
probe_free(struct probe *p)
{
	if (p == NULL)
		return;
	/*
	 * A lookup given up (at connect_timeout) is freed by a callback that
	 * evdns defers to the loop: let it run before the loop goes.
	 */
	if (p->base != NULL)
		(void)event_base_loop(p->base, EVLOOP_NONBLOCK);
	if (p->dns != NULL)
		evdns_base_free(p->dns, 0);
	if (p->base != NULL)
		event_base_free(p->base);
	metrics_free(p->metrics);
	free(p->self);
	free(p);
}

/* The handshake ended, or the connection never came: the run is over. */
static void
probe_done_cb(struct upstream *u, enum upstream_status st, void *arg)
{
	struct probe_call	*call = arg;

	call->st = st;
	call->done = true;
}

/* TCP is up: TLS for the name to check, as a forwarder starts it. */
static void
probe_connected_cb(struct upstream *u, enum upstream_status st, void *arg)
{
	struct probe_call		*call = arg;
	const struct probe_target	*t = call->t;

	if (st != UPSTREAM_OK) {
		probe_done_cb(u, st, arg);
		return;
	}
	if (t->name != NULL)
		upstream_retarget(u, t->ps, t->name, false);
	upstream_start_tls(u, t->alpn, t->alpnlen, false, probe_done_cb,
	    call);
}

struct upstream *
probe_run(struct probe *p, struct runconf *rc, const struct probe_target *t,
    enum upstream_status *st)
{
	struct upstream_params	 up;
	struct probe_call	 call = { t, false, UPSTREAM_TIMEOUT };
	struct upstream		*u;

	memset(&up, 0, sizeof(up));
	up.base = p->base;
	up.dns = p->dns;
	up.rc = rc;
	up.ps = t->ps;
	up.host = t->host;
	up.port = t->port;
	up.client = PROBE_CLIENT;
	up.sinks = &p->sinks;
	up.self = p->self;
	up.nself = p->nself;
	/* As the daemon: its forwarders' listeners are itself too. */
	up.self_forwarders = true;
	u = upstream_connect(&up, probe_connected_cb, &call);
	/* The upstream's connect_timeout ends every wait. */
	while (!call.done)
		if (event_base_loop(p->base, EVLOOP_ONCE) != 0)
			break;
	*st = call.st;
	return u;
}

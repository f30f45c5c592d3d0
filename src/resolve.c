/*
 * The resolver shared by the daemon and the pin tool: one place reads
 * PINPROXY_RESOLV_CONF. The tool runs it on a private event base instead
 * of calling getaddrinfo, which would read another configuration than the
 * daemon's.
 *
 * Names are looked up exactly as spelled, never with the search list of
 * resolv.conf (or the domain libevent derives from the host name when it
 * has none): policy is chosen by the name the client sent, so "api" must
 * not reach the address of a pinned "api.corp.example" as an unpinned
 * name.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "resolve.h"

/* The resolv.conf read. */
static const char *
resolve_path(void)
{
	const char	*path;

	if ((path = getenv(RESOLVE_CONF_ENV)) == NULL)
		path = "/etc/resolv.conf";
	return path;
}

/* Read resolv.conf (and /etc/hosts) into dns: evdns's result, 0 good. */
static int
resolve_parse(struct evdns_base *dns)
{
	int	 r;

	r = evdns_base_resolv_conf_parse(dns,
	    DNS_OPTIONS_ALL & ~DNS_OPTION_SEARCH, resolve_path());
	evdns_base_search_clear(dns);
	return r;
}

struct evdns_base *
resolve_base_new(struct event_base *base)
{
	struct evdns_base	*dns;
	int			 r;

	if ((dns = evdns_base_new(base, 0)) == NULL)
		return NULL;
	if ((r = resolve_parse(dns)) != 0)
		log_msg(EV_DEBUG, "resolver: %s unusable (error %d); "
		    "using defaults", resolve_path(), r);
	return dns;
}

void
resolve_reload(struct event_base *base, struct evdns_base *dns)
{
	struct evdns_base	*trial;
	int			 r;

	/*
	 * Read on the side first: a file missing or without a nameserver
	 * just then must not swap working nameservers for evdns's default
	 * (127.0.0.1).
	 */
	if ((trial = evdns_base_new(base, 0)) == NULL)
		return;
	r = resolve_parse(trial);
	evdns_base_free(trial, 0);
	if (r != 0) {
		log_msg(EV_CONFIG_WARNING, "resolver: %s unusable (error %d); "
		    "the nameservers read before are kept", resolve_path(), r);
		return;
	}
	/* Lookups under way wait, then go to the new nameservers. */
	evdns_base_clear_nameservers_and_suspend(dns);
	evdns_base_clear_host_addresses(dns);
	(void)resolve_parse(dns);
	evdns_base_resume(dns);
}

void
resolve_set_capacity(struct evdns_base *dns, unsigned long connections)
{
	unsigned long	 n;
	char		 text[32];

	n = connections > (RESOLVE_INFLIGHT_MAX - 16) / 2 ?
	    RESOLVE_INFLIGHT_MAX : 2 * connections + 16;
	if (n < RESOLVE_INFLIGHT_MIN)
		n = RESOLVE_INFLIGHT_MIN;
	snprintf(text, sizeof(text), "%lu", n);
	if (evdns_base_set_option(dns, "max-inflight:", text) != 0)
		log_msg(EV_DEBUG, "resolver: cannot allow %s queries in "
		    "flight", text);
}

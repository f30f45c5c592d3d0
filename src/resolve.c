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

struct evdns_base *
resolve_base_new(struct event_base *base)
{
	struct evdns_base	*dns;
	const char		*path;
	int			 r;

	if ((dns = evdns_base_new(base, 0)) == NULL)
		return NULL;
	if ((path = getenv(RESOLVE_CONF_ENV)) == NULL)
		path = "/etc/resolv.conf";
	r = evdns_base_resolv_conf_parse(dns,
	    DNS_OPTIONS_ALL & ~DNS_OPTION_SEARCH, path);
	if (r != 0)
		log_msg(EV_DEBUG, "resolver: %s unusable (error %d); "
		    "using defaults", path, r);
	evdns_base_search_clear(dns);
	return dns;
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

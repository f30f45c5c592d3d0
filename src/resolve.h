/*
 * Name resolution as the daemon does it: libevent's evdns, reading
 * /etc/resolv.conf or the file PINPROXY_RESOLV_CONF names. The pin tool
 * sets up its resolver with the same code, so both find the same
 * addresses.
 */
#ifndef PINPROXY_RESOLVE_H
#define PINPROXY_RESOLVE_H

#include <event2/dns.h>
#include <event2/event.h>

/* The environment variable naming another resolv.conf. */
#define RESOLVE_CONF_ENV	"PINPROXY_RESOLV_CONF"

/*
 * A resolver on base configured from PINPROXY_RESOLV_CONF, else
 * /etc/resolv.conf (with evdns's defaults when the file is unusable);
 * NULL when evdns cannot start.
 */
struct evdns_base	*resolve_base_new(struct event_base *base);
/*
 * Read the same files again (a reload: the network, and so resolv.conf,
 * may have changed since the start); lookups under way are sent again
 * to the nameservers read. A file that cannot be read, or names no
 * nameserver, changes nothing (a config_warning line says so).
 */
void			 resolve_reload(struct event_base *base,
			    struct evdns_base *dns);
/*
 * Let dns have a query in flight for every lookup that connections
 * connections can make at once (two each, A and AAAA), between
 * RESOLVE_INFLIGHT_MIN and RESOLVE_INFLIGHT_MAX. evdns queues queries beyond its limit (64 by
 * default) behind those in flight: a few clients naming hosts whose
 * servers never answer would hold every other lookup until their own
 * were given up, at connect_timeout.
 */
void			 resolve_set_capacity(struct evdns_base *dns,
			    unsigned long connections);

/* The most queries in flight (transaction IDs are 16 bits). */
#define RESOLVE_INFLIGHT_MAX	30000
/* The fewest: evdns's own default. */
#define RESOLVE_INFLIGHT_MIN	64

#endif

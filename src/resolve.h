/*
 * Name resolution as the daemon does it: libevent's evdns, reading
 * /etc/resolv.conf or the file PINPROXY_RESOLV_CONF names. The pin tool
 * resolves through the same code, so both find the same addresses.
 */
#ifndef PINPROXY_RESOLVE_H
#define PINPROXY_RESOLVE_H

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include <stddef.h>
#include <stdint.h>

/* The environment variable naming another resolv.conf. */
#define RESOLVE_CONF_ENV	"PINPROXY_RESOLV_CONF"

/*
 * A resolver on base configured from PINPROXY_RESOLV_CONF, else
 * /etc/resolv.conf (with evdns's defaults when the file is unusable);
 * NULL when evdns cannot start.
 */
struct evdns_base	*resolve_base_new(struct event_base *base);
/*
 * Resolve host for TCP to port, waiting at most timeout_ms on a
 * private event base. Returns the addresses (free them with
 * evutil_freeaddrinfo), or NULL with err filled.
 */
struct evutil_addrinfo	*resolve_wait(const char *host, uint16_t port,
			    uint64_t timeout_ms, char *err, size_t errlen);

#endif

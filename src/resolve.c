/*
 * The resolver shared by the daemon and the pin tool: one place reads
 * PINPROXY_RESOLV_CONF, and the tool waits for an evdns answer on a
 * private event base instead of calling getaddrinfo, which would read
 * another configuration than the daemon's.
 */
#include "config.h"

#include <sys/socket.h>

#include <netinet/in.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_value.h"
#include "log.h"
#include "resolve.h"

/* What resolve_wait's callback hands back. */
struct resolve_answer {
	bool			 done;
	int			 result;
	struct evutil_addrinfo	*addrs;
};

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
	r = evdns_base_resolv_conf_parse(dns, DNS_OPTIONS_ALL, path);
	if (r != 0)
		log_msg(EV_DEBUG, "resolver: %s unusable (error %d); "
		    "using defaults", path, r);
	return dns;
}

/* Keep the answer for resolve_wait. */
static void
resolve_answer_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct resolve_answer	*a = arg;

	a->done = true;
	a->result = result;
	a->addrs = res;
}

/* No answer in time: stop waiting. */
static void
resolve_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct event_base	*base = arg;

	event_base_loopbreak(base);
}

struct evutil_addrinfo *
resolve_wait(const char *host, uint16_t port, uint64_t timeout_ms,
    char *err, size_t errlen)
{
	struct event_base			*base;
	struct evdns_base			*dns = NULL;
	struct evdns_getaddrinfo_request	*req;
	struct event				*timer = NULL;
	struct evutil_addrinfo			 hints;
	struct resolve_answer			 a = { false, 0, NULL };
	struct timeval				 tv = cv_timeval(timeout_ms);
	char					 portstr[8];

	if ((base = event_base_new()) == NULL ||
	    (dns = resolve_base_new(base)) == NULL) {
		snprintf(err, errlen, "cannot resolve %s: no resolver", host);
		goto out;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	snprintf(portstr, sizeof(portstr), "%u", port);
	timer = evtimer_new(base, resolve_timeout_cb, base);
	evtimer_add(timer, &tv);
	/* The answer may come before evdns_getaddrinfo returns. */
	req = evdns_getaddrinfo(dns, host, portstr, &hints, resolve_answer_cb,
	    &a);
	while (!a.done) {
		if (event_base_loop(base, EVLOOP_ONCE) == -1 ||
		    event_base_got_break(base))
			break;
	}
	if (!a.done) {
		/* The callback runs once more with EVUTIL_EAI_CANCEL. */
		if (req != NULL)
			evdns_getaddrinfo_cancel(req);
		a.addrs = NULL;
		snprintf(err, errlen, "cannot resolve %s: timed out", host);
		goto out;
	}
	if (a.result != 0 || a.addrs == NULL) {
		snprintf(err, errlen, "cannot resolve %s: %s", host,
		    a.result != 0 ? evutil_gai_strerror(a.result) :
		    "no address");
		if (a.addrs != NULL)
			evutil_freeaddrinfo(a.addrs);
		a.addrs = NULL;
	}
out:
	if (timer != NULL)
		event_free(timer);
	if (dns != NULL)
		evdns_base_free(dns, 0);
	if (base != NULL)
		event_base_free(base);
	return a.addrs;
}

/*
 * One upstream connection run to its verdict, for pinproxy-pin: the
 * daemon's upstream code (resolution, connect_to, loop refusal,
 * connect_timeout, verification, the pin verdict) driven on a private
 * event base until the TLS handshake ends.
 */
#ifndef PINPROXY_PROBE_H
#define PINPROXY_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "runconf.h"
#include "upstream.h"

struct probe;

/* What to dial and how; borrowed for the call. */
struct probe_target {
	const struct pinset	*ps;		/* NULL: unpinned */
	const char		*host;		/* resolved or dialled */
	uint16_t		 port;
	const char		*name;		/* checked; NULL: host */
	const unsigned char	*alpn;		/* wire format, or NULL */
	size_t			 alpnlen;
};

/*
 * A prober that refuses to dial what the daemon refuses under c, its
 * listen, transparent and stats_listen addresses, as loops (c NULL: no
 * address is refused); NULL with err when the event base or the resolver
 * cannot be set up.
 */
struct probe	*probe_new(const struct conf *c, char *err, size_t errlen);
/* Free (NULL ok); the upstreams it returned must be freed before. */
void		 probe_free(struct probe *p);
/*
 * Dial t under generation rc as a forwarder does, and run until the TLS
 * verdict or connect_timeout: the upstream, which the caller reads
 * (upstream_reason, upstream_pins, the chains) and frees, with *st.
 */
struct upstream	*probe_run(struct probe *p, struct runconf *rc,
		    const struct probe_target *t, enum upstream_status *st);

#endif

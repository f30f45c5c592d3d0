/*
 * The plaintext exchange: a request whose head the connection has read
 * and routed goes to a checked upstream (kept from the previous request,
 * taken from the pool, or opened now); its body and the response stream
 * verbatim with bounded buffers, and the upstream is kept for the next
 * request when both sides allow it.
 */
#ifndef PINPROXY_FORWARD_H
#define PINPROXY_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "phase.h"

struct forward;

/* Where a routed request goes. */
struct forward_target {
	const char		*host;	/* normalised name or IP literal */
	uint16_t		 port;
	bool			 tls;	/* upgrade to TLS, verified */
	const struct pinset	*ps;	/* borrowed; NULL: no pins */
	/*
	 * The Host the request names, when host is where it goes instead:
	 * the address a tunnel or a redirected connection was opened to.
	 * NULL: host.
	 */
	const char		*authority;
};

/* The phase: its events, and its free (which hands an idle upstream on). */
extern const struct phase_ops forward_ops;

/* The exchanges of one client connection, one at a time, on x. */
struct forward	*forward_new(struct phase_ctx *x);
/*
 * Send the request whose head x->req holds to t; it ends in phase_done()
 * (PHASE_NEXT_RELAY after a 101).
 */
void		 forward_start(struct forward *f,
		    const struct forward_target *t);

#endif

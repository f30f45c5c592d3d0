/*
 * CONNECT: the port check, the TCP connection to the target, the bare
 * "200 Connection established", the ClientHello, and then a blind tunnel,
 * plaintext HTTP in the tunnel, or interception, as the policy for the
 * host says.
 */
#ifndef PINPROXY_TUNNEL_H
#define PINPROXY_TUNNEL_H

#include <stdint.h>

#include "phase.h"

struct tunnel;

extern const struct phase_ops tunnel_ops;

/*
 * Run a CONNECT to host:port for the client of x, as x's phase from now
 * on; it ends in phase_done(), with PHASE_NEXT_RELAY (a blind tunnel),
 * PHASE_NEXT_PLAIN or PHASE_NEXT_INTERCEPT (the upstream handed over).
 */
/* The bare answer that opens a CONNECT tunnel. */
extern const char	 tunnel_established[];

struct tunnel	*tunnel_start(struct phase_ctx *x, const char *host,
		    uint16_t port);

#endif

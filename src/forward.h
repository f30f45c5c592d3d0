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

struct conn;
struct forward;

/* Where a routed request goes. */
struct forward_target {
	const char		*host;	/* normalised name or IP literal */
	uint16_t		 port;
	bool			 tls;	/* upgrade to TLS, verified */
	const struct pinset	*ps;	/* borrowed; NULL: no pins */
};

/* The exchanges of one client connection (owned by it). */
struct forward	*forward_new(struct conn *c);
/* Free, giving an idle upstream to the pool (NULL ok). */
void		 forward_free(struct forward *f);
/* Send the request whose head the connection's parser holds to t. */
void		 forward_start(struct forward *f,
		    const struct forward_target *t);
/* The client has more bytes for the current request's body. */
void		 forward_client_read(struct forward *f);
/* The client's output drained: the upstream may be read again. */
void		 forward_client_drained(struct forward *f);
/* Let go of the upstream: to the pool when idle, else closed. */
void		 forward_release(struct forward *f);

#endif

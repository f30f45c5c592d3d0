/*
 * Idle upstream connections kept for reuse by later requests to the same
 * host, port and configuration generation. Every entry passed verification
 * and the pin check when it was opened; a reload empties the pool. How many
 * a host may keep follows its recent demand: the most connections it had
 * in use at once lately.
 */
#ifndef PINPROXY_POOL_H
#define PINPROXY_POOL_H

#include <event2/event.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runconf.h"
#include "upstream.h"

/* Idle connections kept at most in all (fewer with pool_set_max_idle). */
#define POOL_MAX_IDLE		256
/* Idle connections a host may keep whatever its recent demand. */
#define POOL_MIN_PER_HOST	4
/*
 * Seconds of one demand window: a host keeps idle as many connections as
 * it had in use at once in the current window or the one before.
 */
#define POOL_WINDOW_SECONDS	5
/* Seconds an idle connection is kept at most. */
#define POOL_IDLE_SECONDS	60
/*
 * Milliseconds a connection given back after an answer without a body by
 * rule (HEAD, 204, 304) waits before another client may have it: a server
 * that sends a body anyway, a write or a delayed ACK later, is caught
 * idle (and the connection closed) instead of answering that client.
 */
#define POOL_SETTLE_MS		50

/* How pool_put keeps an upstream, and how pool_get found it. */
#define POOL_SETTLE	0x1	/* only its owner, for POOL_SETTLE_MS */
/*
 * Only its owner, as long as it is kept: it carried a request body. A
 * server that took less of a body than the request framed (one that does
 * not read the body of some request, say) takes the rest for the start of
 * the next request: that must be the same client's, never another's.
 */
#define POOL_OWNER_ONLY	0x2

struct pool;
/* One host, port, TLS or not and generation, while it has any connection. */
struct pool_host;

/* An empty pool. */
struct pool	*pool_new(struct event_base *base);
/* Close every idle connection and free the pool (NULL ok). */
void		 pool_free(struct pool *p);
/*
 * Open one use of an upstream for host:port under rc, for the client
 * connection owner, and count it in use until pool_put or pool_drop ends
 * it; *ph is the handle those take. The result is an idle upstream the
 * caller now owns, or NULL: then the caller dials one, which counts as in
 * use already. *how says how it was kept: POOL_SETTLE when it was still
 * settling (bytes its server sent late may come as the answer to this
 * use, so it must not be put back after it), POOL_OWNER_ONLY when only
 * owner may ever have it (then it is put back so again).
 */
struct upstream	*pool_get(struct pool *p, const struct runconf *rc,
		    const char *host, uint16_t port, bool tls,
		    unsigned long owner, struct pool_host **ph, unsigned *how);
/*
 * End a use by the client connection owner with a ready upstream whose
 * last exchange ended cleanly (takes it over): it is kept idle, or closed
 * when it cannot carry another exchange or its host keeps enough idle
 * ones already. how: POOL_SETTLE, POOL_OWNER_ONLY (either, both or 0).
 */
void		 pool_put(struct pool *p, struct pool_host *ph,
		    struct upstream *u, unsigned long owner, unsigned how);
/* The client connection owner ended: close the ones only it may have. */
void		 pool_forget(struct pool *p, unsigned long owner);
/* End a use whose upstream (NULL ok) is not reusable: close it. */
void		 pool_drop(struct pool *p, struct pool_host *ph,
		    struct upstream *u);
/* Close every idle connection. */
void		 pool_flush(struct pool *p);
/*
 * A reload made generation gen current: close every idle connection, and
 * from now on close instead of keeping an upstream of any other one.
 */
void		 pool_set_generation(struct pool *p, unsigned long gen);
/*
 * Keep at most max idle connections in all (at most POOL_MAX_IDLE), e.g.
 * max_connections: more could never be in use at once. Closes the oldest
 * idle ones beyond it.
 */
void		 pool_set_max_idle(struct pool *p, size_t max);
/*
 * End the current demand window: a host's need becomes the most it had in
 * use in the window that ends and the new one, and idle connections beyond
 * every host's need are closed, oldest first. The pool's own timer calls
 * it every POOL_WINDOW_SECONDS while the pool has a host.
 */
void		 pool_tick(struct pool *p);
/* How many connections are idle in the pool. */
size_t		 pool_count(const struct pool *p);
/* How many uses are open (upstreams checked out or being dialled). */
size_t		 pool_in_use(const struct pool *p);
/* How many hosts the pool tracks: each has an idle connection or a use. */
size_t		 pool_hosts(const struct pool *p);
/* How many idle connections a host may keep now (its recent need). */
size_t		 pool_host_limit(const struct pool *p,
		    const struct pool_host *ph);

#endif

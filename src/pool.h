/*
 * Idle upstream connections kept for reuse by later requests to the same
 * host, port and configuration generation. Every entry passed verification
 * and the pin check when it was opened; a reload empties the pool.
 */
#ifndef PINPROXY_POOL_H
#define PINPROXY_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runconf.h"
#include "upstream.h"

/* Idle connections kept at most, in all and for one host and port. */
#define POOL_MAX_IDLE		256
#define POOL_MAX_PER_HOST	16
/* Seconds an idle connection is kept at most. */
#define POOL_IDLE_SECONDS	60

struct pool;

/* An empty pool. */
struct pool	*pool_new(void);
/* Close every idle connection and free the pool (NULL ok). */
void		 pool_free(struct pool *p);
/*
 * Keep a ready upstream whose last exchange ended cleanly (takes it over;
 * it is closed instead when the pool is full).
 */
void		 pool_put(struct pool *p, struct upstream *u);
/* An idle upstream for host:port under rc, or NULL; the caller owns it. */
struct upstream	*pool_get(struct pool *p, const struct runconf *rc,
		    const char *host, uint16_t port, bool tls);
/* Close every idle connection. */
void		 pool_flush(struct pool *p);
/*
 * A reload made generation gen current: close every idle connection, and
 * from now on close instead of keeping an upstream of any other one.
 */
void		 pool_set_generation(struct pool *p, unsigned long gen);

#endif

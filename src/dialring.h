/*
 * The upstream connections pinproxy dialled lately, each as its own
 * address and the one it dialled: a connection that a redirect rule sends
 * back to a transparent listener (no upstream_mark, or a rule that does
 * not exempt it) comes from one of them, and is refused as a loop instead
 * of being dialled again, and again, until max_connections is reached.
 * A fixed ring: the oldest entry gives way, so memory is bounded whatever
 * the rate of connections; a loop is seen on the next turn of the event
 * loop after its dial, long before the ring turns. An entry counts for
 * DIALRING_TTL_MS only: a quiet ring would otherwise keep a dial for
 * hours, and a client that the kernel later gave the same port towards
 * the same address would be refused as a loop.
 */
#ifndef PINPROXY_DIALRING_H
#define PINPROXY_DIALRING_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stdint.h>

/* Dials remembered, and for how long. */
#define DIALRING_SLOTS	1024
#define DIALRING_TTL_MS	10000

struct dialring;

struct dialring	*dialring_new(void);
/* Free (NULL ok). */
void		 dialring_free(struct dialring *r);
/*
 * Remember a connection from local to remote (NULL r: nothing); an
 * address family other than IPv4 and IPv6 is not remembered.
 */
void		 dialring_add(struct dialring *r, const struct sockaddr *local,
		    const struct sockaddr *remote);
/*
 * Whether a connection from peer to dst is one of those remembered
 * (IPv4-mapped IPv6 addresses count as IPv4, and a dial of the unspecified
 * address as one of the loopback address it reaches).
 */
bool		 dialring_has(const struct dialring *r,
		    const struct sockaddr *peer, const struct sockaddr *dst);
/* The clock of the entries, in microseconds (tests; monotime_us). */
void		 dialring_set_clock(struct dialring *r, uint64_t (*clock)(void));

#endif

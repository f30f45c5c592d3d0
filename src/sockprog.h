/*
 * Whether a TCP peer still takes what is sent to it: the count of bytes
 * it acknowledged (TCP_INFO), which moves on however full the socket's
 * send buffer stays. A client reading slowly from a large buffer gets no
 * "writable" event for a long time; it is not idle while this count
 * grows.
 */
#ifndef PINPROXY_SOCKPROG_H
#define PINPROXY_SOCKPROG_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Whether the peer of fd is still taking what was sent to it: bytes wait
 * in fd's send queue and the peer acknowledged some since *seen was
 * taken (which this updates). False when nothing waits for the peer (an
 * idle connection is idle) and on a socket that is not TCP.
 */
bool		 sockprog_moved(int fd, uint64_t *seen);

/*
 * How often a wait for a peer's progress looks at it: SOCKPROG_LOOKS times
 * a wait, so that a peer that stopped is found at most one look past the
 * wait after its last progress. sockprog_look_ms() is the time between
 * two looks of a wait of wait_ms (at least 1 ms).
 */
#define SOCKPROG_LOOKS	4
uint64_t	 sockprog_look_ms(uint64_t wait_ms);

/* Whether fd has a pending error (a reset, say), which this takes. */
bool		 sockprog_failed(int fd);

/*
 * Whether the connection of fd is over (the closed state: a reset came,
 * say). Bytes the peer never acknowledged may still be counted in its
 * send queue then (SIOCOUTQ), for nobody.
 */
bool		 sockprog_gone(int fd);

/*
 * Whether the peer of fd ended its side (its FIN came, whatever of its
 * bytes still waits unread) or the whole connection (a reset).
 */
bool		 sockprog_peer_ended(int fd);

#endif

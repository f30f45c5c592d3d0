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

/* Whether fd has a pending error (a reset, say), which this takes. */
bool		 sockprog_failed(int fd);

/*
 * Whether the peer of fd, whose reading is off while something is
 * dialled for it, left: it reset, or it closed (closed: libevent said
 * EV_CLOSED) with nothing sent that is still unread, neither in fd nor
 * in the buffered bytes already read from it. A close after bytes (a
 * half-close behind a request) is no leaving: those bytes wait for the
 * verdict.
 */
bool		 sockprog_peer_left(int fd, bool closed, size_t buffered);

#endif

/*
 * Edge-triggered watches of a socket that nothing else reads meanwhile
 * (a client during a dial or the upstream's handshake, a peeked
 * ClientHello, an upstream before the relay, a forwarder's client): bytes
 * and the peer's end wake the callback once, not in a loop.
 */
#ifndef PINPROXY_SOCKWATCH_H
#define PINPROXY_SOCKWATCH_H

#include <event2/event.h>

/* Watch fd for EV_READ | EV_CLOSED, edge-triggered; NULL when it cannot. */
struct event	*sockwatch_new(struct event_base *base, evutil_socket_t fd,
		    event_callback_fn cb, void *arg);
/*
 * Free a watch (NULL ok) so that what watches its descriptor next is
 * level-triggered; *evp becomes NULL.
 */
void		 sockwatch_free(struct event **evp);

#endif

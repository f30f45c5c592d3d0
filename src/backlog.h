/*
 * The connections a listener's kernel queue holds when the listener is
 * closed. The kernel completed their handshakes, and their clients may
 * have sent a request already: closing the listening socket would reset
 * each of them. A stop takes them in first, as if accepted then, so that
 * they get what a connection opened just before the stop gets.
 */
#ifndef PINPROXY_BACKLOG_H
#define PINPROXY_BACKLOG_H

#include <event2/listener.h>

#include <stddef.h>

/* At most this many are taken from one listener (the kernel's own cap). */
#define BACKLOG_MAX	4096

/*
 * Accept, without waiting, every connection queued on l (at most
 * BACKLOG_MAX, and none once accept(2) fails: out of descriptors, the
 * rest are reset as before), handing each to cb as l would have.
 */
void		 backlog_take(struct evconnlistener *l, evconnlistener_cb cb,
		    void *arg);

#endif

/*
 * The daemon's event loop, with optional busy polling: after the loop
 * ran callbacks it can keep asking the kernel for more without going to
 * sleep, for a bounded time. On a virtual machine a process that sleeps
 * in epoll_wait(2) is woken tens of microseconds after its socket became
 * readable; a new intercepted connection waits for the proxy a dozen
 * times, and those wake-ups are a tenth of its time.
 */
#ifndef PINPROXY_EVLOOP_H
#define PINPROXY_EVLOOP_H

#include <event2/event.h>

#include <stdint.h>

struct evloop_stats {
	uint64_t	 waits;		/* passes that could sleep */
	uint64_t	 polls;		/* passes that did not */
};

/*
 * Run base until event_base_loopexit() or event_base_loopbreak() (0),
 * until no event is left (0), or a failure (-1). window(arg), read
 * before every pass (a reload may change it), is how many microseconds
 * the loop polls on without sleeping after the last pass that ran a
 * callback; 0 sleeps whenever nothing is ready, as event_base_dispatch()
 * does. stats (NULL ok) counts the passes.
 */
int	 evloop_run(struct event_base *base, uint64_t (*window)(void *),
	    void *arg, struct evloop_stats *stats);

#endif

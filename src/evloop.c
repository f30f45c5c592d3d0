/*
 * The daemon's event loop: event_base_dispatch(), or, with a busy-polling
 * window, passes that do not sleep for as long as work keeps coming.
 */
#include "config.h"

#include <stdbool.h>

#include "evloop.h"
#include "monotime.h"

/*
 * Whether the last pass ran a callback: libevent keeps the most events
 * that were active at once since this was last asked.
 */
static bool
evloop_pass_ran(struct event_base *base)
{
	return event_base_get_max_events(base, EVENT_BASE_COUNT_ACTIVE,
	    1) > 0;
}

int
evloop_run(struct event_base *base, uint64_t (*window)(void *), void *arg,
    struct evloop_stats *stats)
{
	uint64_t	 until = 0, win;
	int		 flags, r;

	/* Forget the callbacks run before: the first pass may sleep. */
	(void)evloop_pass_ran(base);
	for (;;) {
		win = window != NULL ? window(arg) : 0;
		flags = win > 0 && monotime_us() < until ? EVLOOP_NONBLOCK :
		    EVLOOP_ONCE;
		r = event_base_loop(base, flags);
		if (stats != NULL) {
			if (flags == EVLOOP_ONCE)
				stats->waits++;
			else
				stats->polls++;
		}
		if (r < 0)
			return -1;
		/* 1: no event left to wait for, as event_base_dispatch(). */
		if (r > 0 || event_base_got_exit(base) ||
		    event_base_got_break(base))
			return 0;
		if (evloop_pass_ran(base) && win > 0)
			until = monotime_us() + win;
	}
}

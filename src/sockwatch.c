/*
 * Edge-triggered socket watches: see sockwatch.h.
 */
#include "config.h"

#include "sockwatch.h"

struct event *
sockwatch_new(struct event_base *base, evutil_socket_t fd,
    event_callback_fn cb, void *arg)
{
	struct event	*ev;

	ev = event_new(base, fd, EV_READ | EV_CLOSED | EV_ET | EV_PERSIST, cb,
	    arg);
	if (ev != NULL && event_add(ev, NULL) != 0) {
		event_free(ev);
		ev = NULL;
	}
	return ev;
}

static void
sockwatch_noop_cb(evutil_socket_t fd, short what, void *arg)
{
}

/*
 * libevent's changelist merges the deletion of an edge-triggered event
 * with the events added to the same descriptor before the next dispatch
 * and keeps its EV_ET through the halves that nothing adds back: a
 * bufferevent or relay moving a few KiB per wake-up would then stall
 * with bytes in the socket, or room in it. Adding and deleting a
 * level-triggered EV_READ | EV_CLOSED event leaves deletions without
 * EV_ET (a bufferevent's write interest is level-triggered again too).
 */
void
sockwatch_free(struct event **evp)
{
	struct event		*ev = *evp, *plain;
	struct event_base	*base;
	evutil_socket_t		 fd;

	if (ev == NULL)
		return;
	*evp = NULL;
	base = event_get_base(ev);
	fd = event_get_fd(ev);
	event_free(ev);
	plain = event_new(base, fd, EV_READ | EV_CLOSED, sockwatch_noop_cb,
	    NULL);
	if (plain == NULL)
		return;
	event_add(plain, NULL);
	event_free(plain);
}

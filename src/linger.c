/*
 * The lingering close: one read event with the time left as its timeout,
 * and a scratch buffer shared by all (the daemon runs one thread).
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <linux/sockios.h>

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf_value.h"
#include "linger.h"
#include "monotime.h"
#include "sockprog.h"
#include "xmalloc.h"

struct linger_close {
	struct event	*ev;		/* readable, or the time is up; for
					   linger_start_cut, and linger_start
					   once watching, the next look */
	struct timeval	 end;
	struct timeval	 last;		/* linger_start_cut: the latest end */
	int		 outq;		/* linger_start_cut: last seen */
	uint64_t	 acked;		/* linger_start: by the client, last
					   seen (sockprog.h) */
	uint64_t	 stall_ms;	/* linger_start: how long it may take
					   nothing */
	bool		 stalled;	/* linger_start: it took nothing for
					   that long, and was reset */
	evutil_socket_t	 fd;		/* linger_close_server: its own */
	TAILQ_ENTRY(linger_close) entry; /* linger_close_server */
	linger_done_cb	 cb;
	void		*arg;
};

static unsigned char	 linger_discard[16 * 1024];

/* The server sockets waiting for their server (linger_close_server). */
static TAILQ_HEAD(, linger_close) linger_servers =
    TAILQ_HEAD_INITIALIZER(linger_servers);
static size_t		 linger_nservers;
static size_t		 linger_servers_max;	/* 0: none wait */

static void	linger_watch_cb(evutil_socket_t, short, void *);

/* Bytes fd's kernel still holds for the peer (unsent or unacknowledged). */
static bool
linger_outq(evutil_socket_t fd, int *n)
{
	return ioctl(fd, SIOCOUTQ, n) == 0;
}

bool
linger_queued(evutil_socket_t fd)
{
	int	 n;

	return linger_outq(fd, &n) && n > 0;
}

/*
 * How often a watch looks at the client's progress: as often as a wait
 * for it does (sockprog.h), and at least every LINGER_MS, so that a slot
 * is given back soon after the kernel delivered everything.
 */
static struct timeval
linger_look(const struct linger_close *l)
{
	uint64_t	 ms = sockprog_look_ms(l->stall_ms);

	return cv_timeval(ms < LINGER_MS ? ms : LINGER_MS);
}

/*
 * A watch begins: what the peer acknowledged so far, and stall_ms from
 * now for it to take more.
 */
static void
linger_watch_begin(struct linger_close *l, evutil_socket_t fd)
{
	struct timeval	 wait = cv_timeval(l->stall_ms);

	(void)sockprog_moved(fd, &l->acked);
	monotime_tv(&l->end);
	evutil_timeradd(&l->end, &wait, &l->end);
}

/*
 * The time is up, or the client ended, but the kernel still holds bytes
 * for it: the wait goes on while it takes them (linger_watch_cb).
 */
static void
linger_watch(struct linger_close *l, evutil_socket_t fd)
{
	struct event_base	*base = event_get_base(l->ev);
	struct timeval		 look = linger_look(l);

	event_free(l->ev);
	l->ev = event_new(base, fd, 0, linger_watch_cb, l);
	linger_watch_begin(l, fd);
	event_add(l->ev, &look);
}

static void
linger_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct linger_close	*l = arg;
	struct timeval		 now, look = linger_look(l);
	struct timeval		 wait = cv_timeval(l->stall_ms);

	/* A client that reset (or left) holds nothing any more. */
	if (!linger_queued(fd) || sockprog_gone(fd)) {
		l->cb(l->arg);
		return;
	}
	monotime_tv(&now);
	if (sockprog_moved(fd, &l->acked))
		evutil_timeradd(&now, &wait, &l->end);
	else if (!evutil_timercmp(&now, &l->end, <)) {
		/*
		 * It took nothing for stall_ms: a reset frees what the
		 * kernel held for it, which it would otherwise keep for as
		 * long as the client answers its probes.
		 */
		linger_reset(fd);
		l->stalled = true;
		l->cb(l->arg);
		return;
	}
	event_add(l->ev, &look);
}

static void
linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct linger_close	*l = arg;
	struct timeval	 now, left;
	size_t		 turn = 0;
	ssize_t		 n;
	bool		 ended = false;

	/*
	 * A share of each turn of the loop: a client that sends faster than
	 * this drops it comes back at the next (the event is level
	 * triggered), until its end of file or the time is up.
	 */
	while ((what & EV_READ) && turn < LINGER_TURN_BYTES) {
		n = recv(fd, linger_discard, sizeof(linger_discard), 0);
		if (n > 0)
			turn += (size_t)n;
		else if (n == -1 && errno == EINTR)
			continue;
		else if (n == 0) {
			ended = true;
			break;
		} else if (errno != EAGAIN)
			goto done;	/* gone: the kernel holds nothing more */
		else
			break;
	}
	monotime_tv(&now);
	evutil_timersub(&l->end, &now, &left);
	if (!ended && !(what & EV_TIMEOUT) && left.tv_sec >= 0) {
		event_add(l->ev, &left);
		return;
	}
	if (linger_queued(fd) && !sockprog_gone(fd)) {
		linger_watch(l, fd);
		return;
	}
done:
	l->cb(l->arg);
}

/*
 * How often linger_start_cut looks at what the client still has to take,
 * and how long it waits at most, however steadily the client takes it.
 */
#define LINGER_CUT_LOOK_MS	20
#define LINGER_CUT_MAX_MS	30000

static void
linger_cut_cb(evutil_socket_t fd, short what, void *arg)
{
	struct linger_close	*l = arg;
	struct timeval		 now, look = cv_timeval(LINGER_CUT_LOOK_MS);
	struct timeval		 wait = cv_timeval(LINGER_MS);
	int			 n;

	monotime_tv(&now);
	if (linger_outq(fd, &n) && n > 0) {
		/* Moving: the wait for it starts again, up to a bound. */
		if (n < l->outq)
			evutil_timeradd(&now, &wait, &l->end);
		if (evutil_timercmp(&l->last, &l->end, <))
			l->end = l->last;
		l->outq = n;
		if (evutil_timercmp(&now, &l->end, <)) {
			event_add(l->ev, &look);
			return;
		}
	}
	l->cb(l->arg);
}

/*
 * A wait on fd (what: EV_READ, or 0 for a timer that hands fd to fn) that
 * ends LINGER_MS from now unless fn moves it; fn's first call comes
 * within first_ms.
 */
static struct linger_close *
linger_new(struct event_base *base, evutil_socket_t fd, short what,
    event_callback_fn fn, linger_done_cb cb, void *arg, int first_ms)
{
	struct linger_close	*l;
	struct timeval		 wait = cv_timeval(LINGER_MS);
	struct timeval		 first = cv_timeval(first_ms);

	l = xcalloc(1, sizeof(*l));
	l->cb = cb;
	l->arg = arg;
	monotime_tv(&l->end);
	evutil_timeradd(&l->end, &wait, &l->end);
	l->ev = event_new(base, fd, what, fn, l);
	event_add(l->ev, &first);
	return l;
}

struct linger_close *
linger_start_cut(struct event_base *base, evutil_socket_t fd,
    linger_done_cb cb, void *arg)
{
	struct linger_close	*l;
	struct timeval		 now, max = cv_timeval(LINGER_CUT_MAX_MS);
	int			 n;

	linger_reset(fd);
	if (!linger_outq(fd, &n) || n == 0)
		return NULL;
	l = linger_new(base, fd, 0, linger_cut_cb, cb, arg,
	    LINGER_CUT_LOOK_MS);
	l->outq = n;
	monotime_tv(&now);
	evutil_timeradd(&now, &max, &l->last);
	return l;
}

struct linger_close *
linger_start(struct event_base *base, evutil_socket_t fd, uint64_t stall_ms,
    linger_done_cb cb, void *arg)
{
	struct linger_close	*l;

	if (shutdown(fd, SHUT_WR) == -1)
		return NULL;
	l = linger_new(base, fd, EV_READ, linger_cb, cb, arg, LINGER_MS);
	l->stall_ms = stall_ms;
	return l;
}

bool
linger_stalled(const struct linger_close *l)
{
	return l->stalled;
}

void
linger_free(struct linger_close *l)
{
	if (l == NULL)
		return;
	event_free(l->ev);
	free(l);
}

void
linger_drain(evutil_socket_t fd)
{
	size_t	 dropped = 0;
	ssize_t	 n;

	while (dropped < LINGER_DRAIN_BYTES) {
		n = recv(fd, linger_discard, sizeof(linger_discard),
		    MSG_DONTWAIT);
		if (n > 0)
			dropped += (size_t)n;
		else if (n == -1 && errno == EINTR)
			continue;
		else
			break;
	}
}

void
linger_reset(evutil_socket_t fd)
{
	struct linger	 l = { .l_onoff = 1, .l_linger = 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

/* A server socket's wait is over: it goes. */
static void
linger_server_done(void *arg)
{
	struct linger_close	*l = arg;

	TAILQ_REMOVE(&linger_servers, l, entry);
	linger_nservers--;
	close(l->fd);
	linger_free(l);
}

/* Whether a reset was asked for fd's close (linger_reset()). */
static bool
linger_resetting(evutil_socket_t fd)
{
	struct linger	 so;
	socklen_t	 len = sizeof(so);

	return getsockopt(fd, SOL_SOCKET, SO_LINGER, &so, &len) == 0 &&
	    so.l_onoff && so.l_linger == 0;
}

void
linger_close_server(struct event_base *base, evutil_socket_t fd,
    uint64_t stall_ms)
{
	struct linger_close	*l;

	/*
	 * A close at once: nothing waits for the server, it is gone, or a
	 * reset was asked for (the stream towards it was cut short).
	 * Bytes of its left unread (a close_notify after its answer) make
	 * the last close a reset, after it took the rest and its FIN.
	 */
	if (linger_servers_max == 0 || !linger_queued(fd) ||
	    sockprog_gone(fd) || linger_resetting(fd)) {
		close(fd);
		return;
	}
	/* Bounded: past the most that wait, what the server left goes. */
	if (linger_nservers >= linger_servers_max) {
		linger_reset(fd);
		close(fd);
		return;
	}
	/* Its FIN follows what it has to take, as a close would send it. */
	(void)shutdown(fd, SHUT_WR);
	l = linger_new(base, fd, 0, linger_watch_cb, linger_server_done, NULL,
	    LINGER_CUT_LOOK_MS);
	l->arg = l;
	l->fd = fd;
	l->stall_ms = stall_ms;
	linger_watch_begin(l, fd);
	TAILQ_INSERT_TAIL(&linger_servers, l, entry);
	linger_nservers++;
}

void
linger_set_servers_max(size_t n)
{
	linger_servers_max = n;
}

void
linger_close_servers(void)
{
	struct linger_close	*l;

	while ((l = TAILQ_FIRST(&linger_servers)) != NULL)
		linger_server_done(l);
}

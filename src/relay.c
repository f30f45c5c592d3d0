/*
 * The byte relay used after an Upgrade, inside intercepted TLS and for
 * blind tunnels. Between bufferevents, data moves buffer to buffer without
 * copies and a side stops reading while the other side's output is above
 * the high watermark. Between two plain sockets, each direction reads only
 * once what it read before has been written: at most one read (or one
 * pipe) is ever in flight, so memory stays bounded with no watermarks.
 */
#include "config.h"

#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf_value.h"
#include "relay.h"
#include "xmalloc.h"

/* Reads one wake-up may do per direction before others get their turn. */
#define RELAY_ROUNDS		16

/* What one step of a socket direction came to. */
enum relay_step {
	RELAY_MORE,		/* go on */
	RELAY_BLOCKED,		/* wait for the socket to be ready */
	RELAY_ENDED		/* the relay has ended: touch nothing */
};

/* One direction of a socket relay. */
struct relay_way {
	struct relay		*r;
	evutil_socket_t		 from;
	evutil_socket_t		 to;
	const char		*from_error;	/* reasons for the debug log */
	const char		*to_error;
	struct event		*readable;	/* on from */
	struct event		*writable;	/* on to, while a write waits */
	struct evbuffer		*queue;		/* read, not yet written */
	/*
	 * Once a read fills the whole scratch buffer the direction is
	 * carrying bulk data and moves it through this pipe with splice(2);
	 * small exchanges never need one.
	 */
	int			 pipe[2];
	size_t			 inpipe;
	uint64_t		*moved;
	bool			 eof;
	/*
	 * The last recv(2) came back short, so the socket had no more: the
	 * readable event says when it has, and a read to hear EAGAIN would
	 * be wasted. A short splice(2) proves nothing (the pipe may have run
	 * out of slots), so it never sets this.
	 */
	bool			 drained;
};

struct relay {
	struct bufferevent	*client;
	struct bufferevent	*server;
	struct relay_way	*way;		/* [2] up, down; on sockets only */
	struct event		*idle_ev;
	struct timeval		 idle;
	uint64_t		 up;
	uint64_t		 down;
	bool			 closing;	/* one side ended; flushing */
	relay_done_cb		 cb;
	void			*arg;
};

/* Small reads land here and are written at once; single-threaded. */
static unsigned char	relay_scratch[RELAY_IO_MAX];

/* Report the end once; the callee frees the relay. */
static void
relay_end(struct relay *r, const char *why)
{
	int	i;

	if (r->way != NULL) {
		for (i = 0; i < 2; i++) {
			event_del(r->way[i].readable);
			event_del(r->way[i].writable);
		}
	} else {
		bufferevent_disable(r->client, EV_READ | EV_WRITE);
		bufferevent_disable(r->server, EV_READ | EV_WRITE);
	}
	evtimer_del(r->idle_ev);
	r->cb(r, why, r->arg);
}

/* The side that is not bev. */
static struct bufferevent *
relay_peer(struct relay *r, struct bufferevent *bev)
{
	return bev == r->client ? r->server : r->client;
}

/* Move what src has read to dst, pausing src when dst is full. */
static void
relay_move(struct relay *r, struct bufferevent *src)
{
	struct bufferevent	*dst = relay_peer(r, src);
	struct evbuffer		*in = bufferevent_get_input(src);
	size_t			 n;

	n = evbuffer_get_length(in);
	if (n == 0)
		return;
	if (src == r->client)
		r->up += n;
	else
		r->down += n;
	evbuffer_add_buffer(bufferevent_get_output(dst), in);
	evtimer_add(r->idle_ev, &r->idle);
	relay_kick(dst);
	relay_throttle(src, dst);
}

static void
relay_read_cb(struct bufferevent *bev, void *arg)
{
	relay_move(arg, bev);
}

/* dst drained below the low watermark: its peer may read again. */
static void
relay_write_cb(struct bufferevent *bev, void *arg)
{
	struct relay	*r = arg;

	if (r->closing) {
		if (evbuffer_get_length(bufferevent_get_output(r->client)) ==
		    0 && evbuffer_get_length(
		    bufferevent_get_output(r->server)) == 0)
			relay_end(r, "closed");
		return;
	}
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_enable(relay_peer(r, bev), EV_READ);
}

static void
relay_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct relay		*r = arg;
	struct bufferevent	*peer = relay_peer(r, bev);

	if (what & BEV_EVENT_ERROR) {
		relay_end(r, bev == r->client ? "client error" :
		    "server error");
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* Deliver what the closing side sent, then end. */
		relay_move(r, bev);
		r->closing = true;
		bufferevent_disable(bev, EV_READ);
		bufferevent_disable(peer, EV_READ);
		bufferevent_setwatermark(peer, EV_WRITE, 0, 0);
		if (evbuffer_get_length(bufferevent_get_output(peer)) == 0)
			relay_end(r, "closed");
	}
}

static void
relay_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	relay_end(arg, "idle timeout");
}

/* The parts both kinds of relay share. */
static struct relay *
relay_alloc(struct event_base *base, struct bufferevent *client,
    struct bufferevent *server, uint64_t idle_ms, relay_done_cb cb,
    void *arg)
{
	struct relay	*r;

	r = xcalloc(1, sizeof(*r));
	r->client = client;
	r->server = server;
	r->cb = cb;
	r->arg = arg;
	r->idle = cv_timeval(idle_ms);
	r->idle_ev = evtimer_new(base, relay_idle_cb, r);
	evtimer_add(r->idle_ev, &r->idle);
	return r;
}

/* Wait until to can take more; read nothing new meanwhile. */
static enum relay_step
relay_way_block(struct relay_way *w)
{
	event_del(w->readable);
	event_add(w->writable, NULL);
	return RELAY_BLOCKED;
}

/* Write out what this direction holds: the queue, then the pipe. */
static enum relay_step
relay_way_flush(struct relay_way *w)
{
	ssize_t	 n;

	while (evbuffer_get_length(w->queue) > 0) {
		if (evbuffer_write(w->queue, w->to) == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return relay_way_block(w);
			relay_end(w->r, w->to_error);
			return RELAY_ENDED;
		}
	}
	while (w->inpipe > 0) {
		n = splice(w->pipe[0], NULL, w->to, NULL, w->inpipe,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return relay_way_block(w);
			relay_end(w->r, w->to_error);
			return RELAY_ENDED;
		}
		w->inpipe -= (size_t)n;
	}
	event_del(w->writable);
	if (!w->r->closing)
		event_add(w->readable, NULL);
	return RELAY_MORE;
}

/* Switch to splice(2); without a pipe to be had, go on copying. */
static void
relay_way_pipe(struct relay_way *w)
{
	/* A pipe holds 64 KiB by default: one read, one splice. */
	if (pipe2(w->pipe, O_NONBLOCK | O_CLOEXEC) == -1)
		w->pipe[0] = w->pipe[1] = -1;
}

/* Read once from from; what was read is written or queued. */
static enum relay_step
relay_way_read(struct relay_way *w)
{
	ssize_t	 n, sent;

	if (w->pipe[0] != -1)
		n = splice(w->from, NULL, w->pipe[1], NULL, RELAY_IO_MAX,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	else
		n = recv(w->from, relay_scratch, sizeof(relay_scratch), 0);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return RELAY_BLOCKED;
		relay_end(w->r, w->from_error);
		return RELAY_ENDED;
	}
	if (n == 0) {
		/* Deliver what this side sent, read nothing more, then end. */
		w->eof = true;
		w->r->closing = true;
		event_del(w->r->way[0].readable);
		event_del(w->r->way[1].readable);
		return RELAY_MORE;
	}
	*w->moved += (uint64_t)n;
	w->drained = w->pipe[0] == -1 && (size_t)n < RELAY_IO_MAX;
	evtimer_add(w->r->idle_ev, &w->r->idle);
	if (w->pipe[0] != -1) {
		w->inpipe = (size_t)n;
		return RELAY_MORE;
	}
	sent = send(w->to, relay_scratch, (size_t)n, MSG_NOSIGNAL);
	if (sent == -1) {
		if (errno != EAGAIN && errno != EINTR) {
			relay_end(w->r, w->to_error);
			return RELAY_ENDED;
		}
		sent = 0;
	}
	if (sent < n)
		evbuffer_add(w->queue, relay_scratch + sent,
		    (size_t)(n - sent));
	if (!w->drained)
		relay_way_pipe(w);
	return RELAY_MORE;
}

/* Move bytes one way until a socket would block or the relay ends. */
static void
relay_way_pump(struct relay_way *w)
{
	int	 i;

	w->drained = false;
	for (i = 0;; i++) {
		/* Every read is followed by a flush: nothing waits unwritten. */
		if (relay_way_flush(w) != RELAY_MORE)
			return;
		if (w->eof) {
			relay_end(w->r, "closed");
			return;
		}
		if (w->r->closing || w->drained)
			return;
		/*
		 * Others get their turn; this direction goes on in the next
		 * one. The readable event may be edge-triggered (libevent
		 * keeps the mode of an event the descriptor had before, such
		 * as the ClientHello peek's), so it is not left to fire again.
		 */
		if (i == RELAY_ROUNDS) {
			event_active(w->readable, EV_READ, 1);
			return;
		}
		if (relay_way_read(w) != RELAY_MORE)
			return;
	}
}

static void
relay_way_cb(evutil_socket_t fd, short what, void *arg)
{
	relay_way_pump(arg);
}

/* Set up one direction, taking the bytes it must send first. */
static void
relay_way_init(struct relay *r, struct relay_way *w, struct event_base *base,
    struct bufferevent *from, struct bufferevent *to, uint64_t *moved)
{
	struct evbuffer	*out;

	w->r = r;
	w->from = bufferevent_getfd(from);
	w->to = bufferevent_getfd(to);
	w->from_error = from == r->client ? "client error" : "server error";
	w->to_error = to == r->client ? "client error" : "server error";
	w->pipe[0] = w->pipe[1] = -1;
	w->moved = moved;
	w->readable = event_new(base, w->from, EV_READ | EV_PERSIST,
	    relay_way_cb, w);
	w->writable = event_new(base, w->to, EV_WRITE | EV_PERSIST,
	    relay_way_cb, w);
	w->queue = evbuffer_new();
	/*
	 * Queued for to before the relay, then read from from: in order.
	 * A bufferevent keeps the front of its output frozen for itself.
	 */
	out = bufferevent_get_output(to);
	evbuffer_unfreeze(out, 1);
	evbuffer_add_buffer(w->queue, out);
	evbuffer_freeze(out, 1);
	*moved += evbuffer_get_length(bufferevent_get_input(from));
	evbuffer_add_buffer(w->queue, bufferevent_get_input(from));
}

struct relay *
relay_new_sockets(struct event_base *base, struct bufferevent *client,
    struct bufferevent *server, uint64_t idle_ms, relay_done_cb cb,
    void *arg)
{
	struct relay	*r;
	int		 i;

	r = relay_alloc(base, client, server, idle_ms, cb, arg);
	r->way = xcalloc(2, sizeof(*r->way));
	bufferevent_disable(client, EV_READ | EV_WRITE);
	bufferevent_disable(server, EV_READ | EV_WRITE);
	bufferevent_setcb(client, NULL, NULL, NULL, NULL);
	bufferevent_setcb(server, NULL, NULL, NULL, NULL);
	bufferevent_set_timeouts(client, NULL, NULL);
	bufferevent_set_timeouts(server, NULL, NULL);
	relay_way_init(r, &r->way[0], base, client, server, &r->up);
	relay_way_init(r, &r->way[1], base, server, client, &r->down);
	for (i = 0; i < 2; i++) {
		event_add(r->way[i].readable, NULL);
		/*
		 * Bytes already held go first, from the loop: a write that
		 * fails here would end the relay before the caller has it.
		 */
		if (evbuffer_get_length(r->way[i].queue) > 0)
			event_active(r->way[i].writable, EV_WRITE, 1);
	}
	return r;
}

struct relay *
relay_new(struct event_base *base, struct bufferevent *client,
    struct bufferevent *server, uint64_t idle_ms, relay_done_cb cb,
    void *arg)
{
	struct relay	*r;

	r = relay_alloc(base, client, server, idle_ms, cb, arg);
	bufferevent_setcb(client, relay_read_cb, relay_write_cb,
	    relay_event_cb, r);
	bufferevent_setcb(server, relay_read_cb, relay_write_cb,
	    relay_event_cb, r);
	bufferevent_setwatermark(client, EV_WRITE, 0, 0);
	bufferevent_setwatermark(server, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(client, NULL, NULL);
	bufferevent_set_timeouts(server, NULL, NULL);
	bufferevent_enable(client, EV_READ | EV_WRITE);
	bufferevent_enable(server, EV_READ | EV_WRITE);
	/* Bytes already buffered (a ClientHello, an early body) go first. */
	relay_move(r, client);
	relay_move(r, server);
	return r;
}

bool
relay_peek(struct evbuffer *buf, struct evbuffer_iovec *v)
{
	struct evbuffer_ptr	 pos;

	if (evbuffer_get_length(buf) == 0)
		return false;
	/* A position skips empty chains; peek from there. */
	evbuffer_ptr_set(buf, &pos, 0, EVBUFFER_PTR_SET);
	return evbuffer_peek(buf, 1, &pos, v, 1) > 0 && v->iov_len > 0;
}

void
relay_throttle(struct bufferevent *src, struct bufferevent *dst)
{
	if (evbuffer_get_length(bufferevent_get_output(dst)) <
	    RELAY_HIGH_WATER)
		return;
	bufferevent_disable(src, EV_READ);
	bufferevent_setwatermark(dst, EV_WRITE, RELAY_HIGH_WATER / 2, 0);
}

void
relay_kick(struct bufferevent *bev)
{
	if ((bufferevent_get_enabled(bev) & EV_WRITE) != 0 &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		event_active(&bev->ev_write, EV_WRITE, 1);
}

void
relay_tune(struct bufferevent *bev)
{
	bufferevent_set_max_single_read(bev, RELAY_IO_MAX);
	bufferevent_set_max_single_write(bev, RELAY_IO_MAX);
}

void
relay_counts(const struct relay *r, uint64_t *up, uint64_t *down)
{
	*up = r->up;
	*down = r->down;
}

void
relay_free(struct relay *r)
{
	struct relay_way	*w;
	int			 i;

	if (r == NULL)
		return;
	for (i = 0; r->way != NULL && i < 2; i++) {
		w = &r->way[i];
		event_free(w->readable);
		event_free(w->writable);
		evbuffer_free(w->queue);
		if (w->pipe[0] != -1) {
			close(w->pipe[0]);
			close(w->pipe[1]);
		}
	}
	event_free(r->idle_ev);
	free(r->way);
	free(r);
}

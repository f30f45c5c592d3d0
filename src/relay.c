/*
 * The byte relay used after an Upgrade, inside intercepted TLS and for
 * blind tunnels. Data moves buffer to buffer without copies; a side stops
 * reading while the other side's output is above the high watermark.
 */
#include <event2/buffer.h>

#include <stdbool.h>
#include <stdlib.h>

#include "relay.h"
#include "xmalloc.h"

struct relay {
	struct bufferevent	*client;
	struct bufferevent	*server;
	struct event		*idle_ev;
	struct timeval		 idle;
	uint64_t		 up;
	uint64_t		 down;
	bool			 closing;	/* one side ended; flushing */
	relay_done_cb		 cb;
	void			*arg;
};

/* Report the end once; the callee frees the relay. */
static void
relay_end(struct relay *r, const char *why)
{
	bufferevent_disable(r->client, EV_READ | EV_WRITE);
	bufferevent_disable(r->server, EV_READ | EV_WRITE);
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

struct relay *
relay_new(struct event_base *base, struct bufferevent *client,
    struct bufferevent *server, unsigned int idle, relay_done_cb cb,
    void *arg)
{
	struct relay	*r;

	r = xcalloc(1, sizeof(*r));
	r->client = client;
	r->server = server;
	r->cb = cb;
	r->arg = arg;
	r->idle.tv_sec = idle;
	r->idle_ev = evtimer_new(base, relay_idle_cb, r);
	evtimer_add(r->idle_ev, &r->idle);
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
	if (r == NULL)
		return;
	event_free(r->idle_ev);
	free(r);
}

/*
 * The plaintext exchange. The request head goes upstream only once the
 * upstream passed verification and the pin check; the request body and
 * the response are parsed for framing only and forwarded verbatim (a
 * chunked response to an HTTP/1.0 client goes decoded, ended by the
 * close), each direction pausing while the other side's output is full.
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "hostmatch.h"
#include "http.h"
#include "linger.h"
#include "log.h"
#include "metrics.h"
#include "phase.h"
#include "pincheck.h"
#include "pool.h"
#include "relay.h"
#include "sockprog.h"
#include "sockwatch.h"
#include "upstream.h"
#include "xmalloc.h"

/*
 * Interim (1xx) responses taken for one request: a few are the norm (a
 * 100, 103s, WebDAV's 102s); a server that sends them without end would
 * keep the exchange busy, a CPU with it, and never let it time out,
 * since each is traffic.
 */
#define FORWARD_INTERIM_MAX	32

enum forward_state {
	FORWARD_IDLE,		/* between exchanges */
	FORWARD_CONNECTING,	/* opening and checking the upstream */
	FORWARD_EXCHANGE,	/* request and response streaming */
	FORWARD_UPGRADED	/* the upstream is in a byte relay */
};

static const unsigned char forward_alpn_http11[] = "\x08http/1.1";

struct forward {
	struct phase_ctx	*x;		/* the connection's */
	enum forward_state	 state;
	struct http_msg		*resp;
	struct evbuffer		*pending;	/* made, unsent; empty between calls */
	struct upstream		*up;		/* kept between exchanges */
	struct pool_host	*use;		/* the pool counts up in use */

	char			 host[HOSTMATCH_NAME_MAX];	/* dialled */
	char			 authority[HOSTMATCH_NAME_MAX];	/* Host */
	uint16_t		 port;
	bool			 tls;
	const struct pinset	*ps;		/* borrowed from x->rc */
	bool			 reused;	/* on a kept upstream */
	bool			 retried;
	bool			 up_keep;	/* it may carry another one */
	bool			 req_done;
	bool			 resp_head_sent;	/* one, 1xx too */
	bool			 head_timing;	/* head_timer runs */
	bool			 continued;	/* a 100 went to the client */
	unsigned int		 interims;	/* 1xx taken for this request */
	bool			 up_settle;	/* see POOL_SETTLE_MS */
	bool			 up_tainted;	/* taken settling: not kept */
	bool			 up_private;	/* see POOL_OWNER_ONLY */
	bool			 kept_private;	/* one was put back so */
	bool			 resp_done;
	bool			 close_after;	/* the client must be closed */
	bool			 client_eof;	/* it shut down its sending side */
	bool			 client_10;	/* the request is HTTP/1.0 */
	bool			 head_req;	/* the request is a HEAD */
	bool			 decode;	/* the body goes dechunked */
	bool			 upgrade;	/* the Upgrade goes on */
	int			 status;
	char			*offer;		/* request's Upgrade list */
	uint64_t		 resp_bytes;	/* from the upstream */
	uint64_t		 body_up;	/* request body sent upstream */
	struct event		*dial_ev;	/* the client, while CONNECTING */
	struct event		*head_timer;	/* a response head begun */
	struct event		*left_timer;	/* a held client: still there? */
};

static void	forward_open(struct forward *);
static bool	forward_upstream_read(struct forward *);
static void	forward_watch_left(struct forward *);

/* How often a request is routed again after reloads, at most. */
#define FORWARD_REROUTES_MAX	3

/* How often a client held back from sending its body is looked at. */
#define FORWARD_LEFT_LOOK_MS	1000

/* Count bytes of the exchange: up from, down to the client. */
static void
forward_count(struct forward *f, uint64_t up, uint64_t down)
{
	f->x->acc.up += up;
	f->x->acc.down += down;
}

/*
 * Send the client what the response so far made of the upstream's bytes:
 * one write for a head and the body that came with it. Before anything
 * that may end the exchange, and after each read.
 */
static void
forward_flush_down(struct forward *f)
{
	relay_push(f->x->bev, f->pending, evbuffer_get_length(f->pending));
}

/* The client left or timed out: nothing more reaches it. */
static void
forward_client_gone(struct forward *f)
{
	struct phase_outcome	 o;

	phase_outcome_init(&o);
	o.status = f->status;
	o.gone = true;
	phase_done(f->x, &o);
}

/*
 * Whether the server was given the whole request: all of it read from
 * the client and written out of the upstream's bufferevent (what the
 * kernel still holds reaches it; see linger.h). A server that answered
 * before it read the body has its tail still there when the answer ends.
 */
static bool
forward_request_written(const struct forward *f)
{
	struct bufferevent	*ub = upstream_bev(f->up);

	return f->req_done && (ub == NULL ||
	    evbuffer_get_length(bufferevent_get_output(ub)) == 0);
}

/*
 * Close the upstream; it cannot carry another exchange. One whose request
 * did not reach it whole (a body or trailers cut short, refused or left,
 * not begun after a head that announced one, or not yet written) is
 * reset: a lenient server could take an end of file for the end of it.
 */
static void
forward_drop(struct forward *f)
{
	if (f->up != NULL && !forward_request_written(f)) {
		if (f->req_done)
			log_msg(EV_DEBUG, "client %s: the server of %s "
			    "answered before it took the whole request: reset",
			    f->x->client, f->authority);
		linger_reset(upstream_fd(f->up));
	}
	/* A handshake under way runs on to its verdict, not counted in use. */
	if (f->use != NULL)
		pool_drop(f->x->env->pool, f->use, NULL);
	upstream_release(f->up);
	f->up = NULL;
	f->use = NULL;
}

/*
 * The upstream failed this exchange: log it, count it under metric (its
 * error is "timeout" or "bad-response"), and let go of the upstream.
 */
static void
forward_upstream_failed(struct forward *f, enum metric_id metric,
    const char *reason)
{
	struct logline	 l;

	forward_flush_down(f);
	log_begin(&l, EV_UPSTREAM_ERROR);
	log_str(&l, LK_HOST, f->host);
	log_int(&l, LK_PORT, f->port);
	log_str(&l, LK_CLIENT, f->x->client);
	log_str(&l, LK_ERROR, metric == METRIC_UPSTREAM_ERRORS_TIMEOUT ?
	    "timeout" : "bad-response");
	log_str(&l, LK_REASON, reason);
	log_end(&l);
	metrics_inc(f->x->env->sinks.metrics, metric);
	f->state = FORWARD_IDLE;
	forward_drop(f);
}

/*
 * The upstream's answer is not valid HTTP/1.1 for this request: log it
 * and answer 502, closing both sides.
 */
static void
forward_bad_response(struct forward *f, const char *reason)
{
	forward_upstream_failed(f, METRIC_UPSTREAM_ERRORS_BAD_RESPONSE, reason);
	phase_fail(f->x, HTTP_ERROR_BAD_RESPONSE, reason);
}

/*
 * The response broke after its head went to the client: log it and reset
 * the client's connection, so that the client cannot take what it got for
 * the whole body (which a close would say when only the close ends it).
 */
static void
forward_cut(struct forward *f, enum metric_id metric, const char *reason)
{
	forward_upstream_failed(f, metric, reason);
	phase_cut(f->x, f->status);
}

/*
 * Whether a final head (>= 200, or a 101) went to the client: only one
 * sets the status, an interim 1xx does not.
 */
static bool
forward_final_sent(const struct forward *f)
{
	return f->status != 0;
}

/*
 * Whether the upstream is dialled at an address and verified for the
 * request's host (unpinned = verify in a tunnel or a redirected
 * connection opened to an address): kept for no other request, as the
 * pool finds connections by where they go, not by the name verified.
 */
static bool
forward_retargeted(const struct forward *f)
{
	return f->tls && strcmp(f->host, f->authority) != 0;
}

/* Let go of the upstream: to the pool when idle, else closed. */
static void
forward_release(struct forward *f)
{
	if (f->up == NULL)
		return;
	if (f->state == FORWARD_IDLE && f->use != NULL) {
		/* One that carried a body is this client's alone. */
		if (f->body_up > 0)
			f->up_private = true;
		if (f->up_private)
			f->kept_private = true;
		pool_put(f->x->env->pool, f->use, f->up, f->x->id,
		    (f->up_settle ? POOL_SETTLE : 0) |
		    (f->up_private ? POOL_OWNER_ONLY : 0));
		f->up = NULL;
		f->use = NULL;
	} else
		forward_drop(f);
	f->state = FORWARD_IDLE;
}

/*
 * Bytes moved one way while the other side waits for its own: its wait
 * for traffic starts again (idle_timeout is no traffic either way). Only
 * while the request body flows, when both sides read at once.
 */
static void
forward_traffic(struct forward *f, struct bufferevent *waiting)
{
	uint64_t	 ms = f->x->rc->conf->idle_timeout_ms;
	struct timeval	 idle = cv_timeval(ms);

	if (waiting == f->x->bev)
		phase_client_timeouts(f->x, &idle, ms);
	else
		bufferevent_set_timeouts(waiting, &idle, &idle);
}

/* Answer the client about an upstream that failed a step. */
static void
forward_failed(struct forward *f, enum upstream_status st)
{
	char	 expl[4096];

	if (st == UPSTREAM_PIN_MISMATCH)
		pincheck_explain(f->ps, upstream_pins(f->up), expl,
		    sizeof(expl));
	else
		snprintf(expl, sizeof(expl), "%s", upstream_reason(f->up));
	f->state = FORWARD_IDLE;
	forward_drop(f);
	phase_fail_upstream(f->x, st, expl);
}

/*
 * Both halves ended. An upstream that may go on returns to the pool at
 * once, so that idle clients hold no upstream: the next request, from
 * this client or another, takes it back.
 */
static void
forward_done(struct forward *f)
{
	forward_flush_down(f);
	if (!f->up_keep || !forward_request_written(f))
		forward_drop(f);
	/* The server answered before the body ended: no more on this one. */
	if (!f->req_done)
		f->close_after = true;
	f->state = FORWARD_IDLE;
	forward_release(f);
	http_msg_trim(f->resp);
	phase_end(f->x, f->status, f->close_after);
}

/* A 101: from now on both sides are a byte relay. */
static void
forward_upgrade(struct forward *f)
{
	forward_flush_down(f);
	f->state = FORWARD_UPGRADED;
	phase_relay(f->x, upstream_bev(f->up), f->status, true, NULL);
}

/*
 * The whole request is upstream. The client's reading stays on, so that
 * a keep-alive client's next request costs no change of its events, but
 * without a read timeout: a client waiting for a long response sends
 * nothing. Bytes it sends now are a pipelined request, which waits until
 * this exchange ends: reading stops at the first of them (so at most one
 * read's worth is held).
 */
static void
forward_request_sent(struct forward *f)
{
	struct bufferevent	*cb = f->x->bev;

	if (evbuffer_get_length(bufferevent_get_input(cb)) > 0)
		bufferevent_disable(cb, EV_READ);
	else
		phase_client_timeouts(f->x, NULL,
		    f->x->rc->conf->idle_timeout_ms);
	if (f->resp_done)
		forward_done(f);
}

/*
 * Whether the client held back from sending its body (the server stopped
 * taking it) left: it reset the connection, or ended its side with less
 * of the body unread than its Content-Length still owes, so that the
 * request can never be whole. Its socket is not read meanwhile, so its
 * end would otherwise wait for idle_timeout. A chunked body cannot be
 * counted ahead; nor can one behind TLS, whose unread bytes are records.
 * Once the final answer is on its way, an end is a client that stops its
 * upload and reads the answer (RFC 9112, 9.6): only a reset counts then.
 */
static bool
forward_client_left(const struct forward *f)
{
	struct bufferevent	*cb = f->x->bev;
	const struct http_head	*h = http_msg_head(f->x->req);
	evutil_socket_t		 fd = bufferevent_getfd(cb);
	uint64_t		 have;
	int			 queued;

	if (fd == -1 || !sockprog_peer_ended(fd))
		return false;
	if (sockprog_failed(fd))
		return true;
	if (forward_final_sent(f) || h == NULL ||
	    h->framing != HTTP_FRAMING_LENGTH ||
	    bufferevent_get_underlying(cb) != NULL ||
	    bufferevent_openssl_get_ssl(cb) != NULL ||
	    ioctl(fd, FIONREAD, &queued) != 0 || queued < 0)
		return false;
	have = f->body_up + evbuffer_get_length(bufferevent_get_input(cb)) +
	    (uint64_t)queued;
	return have < h->content_length;
}

static void
forward_left_cb(evutil_socket_t fd, short what, void *arg)
{
	struct forward	*f = arg;

	(void)fd;
	(void)what;
	if (f->state != FORWARD_EXCHANGE || f->req_done || f->x->bev == NULL ||
	    (bufferevent_get_enabled(f->x->bev) & EV_READ))
		return;
	if (forward_client_left(f)) {
		log_msg(EV_DEBUG, "client %s: gone while its request body "
		    "waited for %s", f->x->client, f->authority);
		forward_client_gone(f);
		return;
	}
	forward_watch_left(f);
}

/* The client is held back: look at it now and then (forward_left_cb). */
static void
forward_watch_left(struct forward *f)
{
	struct timeval	 tv = cv_timeval(FORWARD_LEFT_LOOK_MS);

	if (f->left_timer == NULL)
		f->left_timer = evtimer_new(f->x->env->base, forward_left_cb,
		    f);
	if (f->left_timer != NULL)
		evtimer_add(f->left_timer, &tv);
}

/* Forward request body bytes that belong to the current request. */
static void
forward_request_body(struct forward *f)
{
	struct bufferevent	*cb = f->x->bev;
	struct bufferevent	*ub = upstream_bev(f->up);
	struct evbuffer		*in = bufferevent_get_input(cb);
	struct http_msg		*req = f->x->req;
	struct evbuffer_iovec	 v;
	enum http_result	 r;
	size_t			 consumed, before = f->body_up;

	while (!f->req_done) {
		if (!relay_peek(in, &v)) {
			v.iov_base = NULL;
			v.iov_len = 0;
		}
		r = http_msg_feed_body(req, v.iov_base, v.iov_len, &consumed);
		if (r == HTTP_ERR_BAD_REQUEST) {
			f->state = FORWARD_IDLE;
			forward_drop(f);
			/* A response still flowing is cut: see phase_cut(). */
			if (forward_final_sent(f) && f->resp_done)
				phase_end(f->x, f->status, true);
			else if (forward_final_sent(f))
				phase_cut(f->x, f->status);
			else
				phase_fail(f->x, HTTP_ERROR_BAD_REQUEST,
				    "The request body is not framed "
				    "correctly.");
			return;
		}
		relay_push(ub, in, consumed);
		forward_count(f, consumed, 0);
		f->body_up += consumed;
		if (r == HTTP_BODY_COMPLETE)
			f->req_done = true;
		else if (consumed == 0 && v.iov_len == 0)
			break;
	}
	if (f->body_up != before && !forward_final_sent(f))
		forward_traffic(f, ub);
	if (f->req_done) {
		forward_request_sent(f);
		return;
	}
	if (f->client_eof) {
		/*
		 * It shut down its side before its body ended: it stopped
		 * its upload for an answer on its way, which goes on, or
		 * it left.
		 */
		if (forward_final_sent(f))
			bufferevent_disable(cb, EV_READ);
		else
			forward_client_gone(f);
		return;
	}
	relay_throttle(cb, ub);
	if (!(bufferevent_get_enabled(cb) & EV_READ))
		forward_watch_left(f);
}

/* Whether a 101 names only protocols that the request offered. */
static bool
forward_upgrade_chosen(struct forward *f, const struct http_head *h)
{
	char	*chosen;
	bool	 ok;

	chosen = http_head_list(h, "Upgrade");
	ok = http_upgrade_offered(f->offer, chosen);
	free(chosen);
	return ok;
}

/*
 * What the response tells the client about its connection: an HTTP/1.0
 * client keeps it only when told so (it asked for that, else conn closes).
 */
static enum http_conn_token
forward_conn_token(struct forward *f, const struct http_head *h)
{
	if (h->status < 200)
		return HTTP_CONN_PERSIST;
	if (f->close_after || f->x->closing)
		return HTTP_CONN_CLOSE;
	return f->client_10 ? HTTP_CONN_KEEP_ALIVE : HTTP_CONN_PERSIST;
}

/* A response head arrived: pass it on, or switch protocols. */
static bool
forward_response_head(struct forward *f, struct evbuffer *out)
{
	const struct http_head	*h = http_msg_head(f->resp);
	enum http_conn_token	 token;
	size_t			 before, consumed;

	before = evbuffer_get_length(out);
	if (h->status == 101 && f->offer == NULL) {
		/* Else the client's next requests would reach this server. */
		forward_bad_response(f, "The server switched protocols but "
		    "the request asked for no Upgrade.");
		return false;
	}
	if (h->status == 101 && !forward_upgrade_chosen(f, h)) {
		forward_bad_response(f, "The server switched to a protocol "
		    "the request did not offer in Upgrade.");
		return false;
	}
	if (h->status == 101) {
		http_response_write(h, HTTP_CONN_PERSIST, false,
		    f->x->env->via, out);
		forward_count(f, 0, evbuffer_get_length(out) - before);
		f->status = 101;
		forward_upgrade(f);
		return false;
	}
	if (h->status < 200 && ++f->interims > FORWARD_INTERIM_MAX) {
		char	 why[96];

		snprintf(why, sizeof(why), "The server sent more than %d "
		    "interim (1xx) responses to one request.",
		    FORWARD_INTERIM_MAX);
		forward_bad_response(f, why);
		return false;
	}
	/*
	 * An interim response reaches the client only as the 100 (Continue)
	 * its Expect asked for (in whatever spelling). HTTP/1.0 knows none
	 * (RFC 9110 §15.2). And a client that takes another (a 102, a 103)
	 * for the final answer, as Python's http.client does, would read the
	 * real one as the answer to its next request on this connection,
	 * which may be a pinned host's: a cleartext server's words as that
	 * host's. Dropped, as a proxy may the 100 it did not ask for.
	 */
	if (h->status < 200 && (f->client_10 || h->status != 100 ||
	    !http_expect_names_continue(http_msg_head(f->x->req))))
		return true;
	/* The client was told to send its body: it owes it now. */
	if (h->status == 100)
		f->continued = true;
	if (h->status >= 200) {
		f->status = h->status;
		f->up_keep = h->keep_alive && h->framing != HTTP_FRAMING_CLOSE;
		/*
		 * No body (to a HEAD, a 204, a 304) where the head announced
		 * one, or a HEAD's answer that says nothing of its length (a
		 * GET would have a body that the close ends): a server that
		 * sends a body anyway, in a later write, would have it read as
		 * the next request's answer, another client's maybe. Such a
		 * connection is not used again.
		 */
		if (h->framing == HTTP_FRAMING_NONE && (h->chunked ||
		    (h->has_content_length && h->content_length > 0) ||
		    (f->head_req && !h->has_content_length)))
			f->up_keep = false;
		/*
		 * One that sends such a body a little later is caught idle
		 * if the connection waits before serving another client.
		 */
		f->up_settle = f->head_req || h->status == 204 ||
		    h->status == 304;
		/*
		 * Taken while it settled: its server's late bytes may have
		 * been this answer, and its real one is still to come.
		 */
		if (f->up_tainted)
			f->up_keep = false;
		/* Only a close can end such a body. */
		if (h->framing == HTTP_FRAMING_CLOSE)
			f->close_after = true;
		/*
		 * An answer before the request's end: nothing tells where a
		 * next request would begin, so none may follow (forward_done),
		 * and the answer says so.
		 */
		if (!f->req_done)
			f->close_after = true;
		/* HTTP/1.0 has no chunked coding: the close ends the body. */
		f->decode = f->client_10 && h->framing == HTTP_FRAMING_CHUNKED;
		if (f->decode)
			f->close_after = true;
		http_msg_decode_body(f->resp, f->decode ? out : NULL);
	}
	/*
	 * Whatever the framing, an HTTP/1.0 client is sent no
	 * Transfer-Encoding, which it does not know (RFC 9112, 6.1).
	 */
	token = forward_conn_token(f, h);
	http_response_write(h, token, f->client_10, f->x->env->via, out);
	/* Told so, the client sends nothing more: none may be read. */
	if (token == HTTP_CONN_CLOSE)
		f->close_after = true;
	forward_count(f, 0, evbuffer_get_length(out) - before);
	f->resp_head_sent = true;
	/* A message without a body (HEAD, 1xx, 204, 304) ends here. */
	if (http_msg_feed_body(f->resp, NULL, 0, &consumed) ==
	    HTTP_BODY_COMPLETE && h->status >= 200)
		f->resp_done = true;
	return true;
}

static void	forward_upstream_timeout(struct forward *, const char *);

/*
 * A response head has header_timeout from its first byte to arrive whole,
 * as a request's has: each byte restarts the wait for traffic, so a
 * server trickling a head would otherwise hold the exchange (and a client
 * that shut down its side, its slot) for as long as it likes.
 */
static void
forward_head_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct forward	*f = arg;

	if (f->state != FORWARD_EXCHANGE || !f->head_timing)
		return;
	f->head_timing = false;
	forward_upstream_timeout(f, "The server's response head did not "
	    "arrive whole within header_timeout of its first byte.");
}

/* Start the head's clock at its first byte, stop it at its end. */
static void
forward_head_timing(struct forward *f, bool on)
{
	struct timeval	 tv;

	if (on == f->head_timing)
		return;
	f->head_timing = on;
	if (!on) {
		evtimer_del(f->head_timer);
		return;
	}
	if (f->head_timer == NULL)
		f->head_timer = evtimer_new(f->x->env->base,
		    forward_head_timeout_cb, f);
	tv = cv_timeval(f->x->rc->conf->header_timeout_ms);
	evtimer_add(f->head_timer, &tv);
}

/*
 * Parse and forward what the upstream sent. False when the exchange ended
 * (f may be gone) or turned into a relay.
 */
static bool
forward_upstream_read(struct forward *f)
{
	struct bufferevent	*cb = f->x->bev;
	struct bufferevent	*ub = upstream_bev(f->up);
	struct evbuffer		*in = bufferevent_get_input(ub);
	struct evbuffer		*out = f->pending;
	struct evbuffer_iovec	 v;
	enum http_result	 r;
	size_t			 consumed, before;

	while (!f->resp_done && relay_peek(in, &v)) {
		if (http_msg_state(f->resp) != HTTP_MSG_BODY) {
			r = http_msg_feed_head(f->resp, v.iov_base, v.iov_len,
			    &consumed);
			evbuffer_drain(in, consumed);
			f->resp_bytes += consumed;
			forward_head_timing(f, r == HTTP_NEED_MORE);
			if (r == HTTP_NEED_MORE)
				continue;
			if (r != HTTP_HEAD_COMPLETE) {
				forward_bad_response(f, "The server's response "
				    "is not valid HTTP/1.1.");
				return false;
			}
			if (!forward_response_head(f, out))
				return false;
			continue;
		}
		before = evbuffer_get_length(out);
		r = http_msg_feed_body(f->resp, v.iov_base, v.iov_len,
		    &consumed);
		if (r == HTTP_ERR_BAD_REQUEST) {
			forward_cut(f, METRIC_UPSTREAM_ERRORS_BAD_RESPONSE,
			    "The body of the server's response is not valid "
			    "HTTP/1.1.");
			return false;
		}
		/* A decoded body is already in out, a smaller copy. */
		if (f->decode)
			evbuffer_drain(in, consumed);
		else
			evbuffer_remove_buffer(in, out, consumed);
		f->resp_bytes += consumed;
		forward_count(f, 0, evbuffer_get_length(out) - before);
		if (r == HTTP_BODY_COMPLETE && f->status >= 200)
			f->resp_done = true;
	}
	forward_flush_down(f);
	if (f->resp_done) {
		forward_done(f);
		return false;
	}
	if (!f->req_done)
		forward_traffic(f, cb);
	relay_throttle(ub, cb);
	return true;
}

/* The upstream sent bytes. */
static void
forward_upstream_readable(struct forward *f)
{
	if (f->state != FORWARD_EXCHANGE) {
		/* Bytes from a kept upstream between requests: drop it. */
		forward_drop(f);
		return;
	}
	forward_upstream_read(f);
}

/* The upstream drained: the client may send more body. */
static void
forward_upstream_drained(struct forward *f)
{
	if (f->state != FORWARD_EXCHANGE || f->req_done)
		return;
	if (f->left_timer != NULL)
		evtimer_del(f->left_timer);
	relay_unthrottle(f->x->bev, upstream_bev(f->up));
}

/* Why an exchange ended when its server was silent for idle_timeout. */
#define FORWARD_NO_RESPONSE	"The server sent no response within idle_timeout."

/* The server timed out before its final answer: log it, answer 504. */
static void
forward_upstream_timeout(struct forward *f, const char *why)
{
	forward_upstream_failed(f, METRIC_UPSTREAM_ERRORS_TIMEOUT, why);
	phase_fail(f->x, HTTP_ERROR_READ_TIMEOUT, why);
}

/*
 * Whether the client was free to send the rest of its request body: it
 * sent some already, or the server said 100 (Continue), or it waits for
 * no such word (RFC 9110 10.1.1: an HTTP/1.1 request with "Expect:
 * 100-continue" may wait for it, or for the final answer).
 */
static bool
forward_client_owes_body(const struct forward *f)
{
	return f->body_up > 0 || f->continued ||
	    !http_expects_continue(http_msg_head(f->x->req));
}

/*
 * Whether what, a read timeout of either side, came while the request's
 * body was still to come and no final answer was sent: body bytes moving
 * restart both waits (forward_traffic), so nothing moved either way.
 */
static bool
forward_body_stalled(const struct forward *f, short what)
{
	return what == (BEV_EVENT_TIMEOUT | BEV_EVENT_READING) &&
	    f->state == FORWARD_EXCHANGE && !f->req_done &&
	    !forward_final_sent(f);
}

/*
 * The body stalled: the client's timeout, unless it rightly waits for a
 * 100 (Continue), which the server never sent: then the server's.
 */
static void
forward_body_timeout(struct forward *f)
{
	if (forward_client_owes_body(f))
		forward_client_gone(f);
	else
		forward_upstream_timeout(f, FORWARD_NO_RESPONSE);
}

/* A kept upstream closed between requests, or one broke mid-exchange. */
static void
forward_upstream_event(struct forward *f, short what)
{
	const char	*why;

	if (f->state != FORWARD_EXCHANGE) {
		forward_drop(f);
		return;
	}
	if ((what & BEV_EVENT_EOF) && f->resp_head_sent) {
		/* The exchange may end in there, and f with it. */
		if (!forward_upstream_read(f))
			return;
		/* A TLS stream that just stopped may have been cut. */
		if (upstream_closed_cleanly(f->up) &&
		    http_msg_feed_eof(f->resp) == HTTP_BODY_COMPLETE) {
			/* Complete, also before the request's body ended. */
			f->resp_done = true;
			f->close_after = true;
			f->up_keep = false;
			forward_done(f);
			return;
		}
	}
	/* The server waited for the rest of the body: rightly, mostly. */
	if (forward_body_stalled(f, what)) {
		forward_body_timeout(f);
		return;
	}
	/* (After a 100 Continue, a final answer can still be given.) */
	if (!forward_final_sent(f) && (what & BEV_EVENT_TIMEOUT)) {
		forward_upstream_timeout(f, (what & BEV_EVENT_WRITING) ?
		    "The server took no more of the request within "
		    "idle_timeout." : FORWARD_NO_RESPONSE);
		return;
	}
	if (!f->resp_head_sent && f->reused && !f->retried &&
	    f->resp_bytes == 0 && f->body_up == 0 &&
	    http_method_idempotent(http_msg_head(f->x->req)->method)) {
		/*
		 * The kept connection was closed under us: try a fresh one,
		 * the same use for the pool. Only an idempotent request: the
		 * server may have carried out the first (RFC 9110 9.2.2).
		 */
		f->retried = true;
		/* Its server may have had the head of a body (above). */
		if (!forward_request_written(f))
			linger_reset(upstream_fd(f->up));
		upstream_free(f->up);
		f->up = NULL;
		f->up_tainted = false;
		forward_open(f);
		return;
	}
	if (!forward_final_sent(f)) {
		f->state = FORWARD_IDLE;
		forward_drop(f);
		phase_fail(f->x, HTTP_ERROR_CONNECT_FAILED,
		    "The server closed the connection before answering.");
		return;
	}
	/* Mid-body: nothing sensible can be sent any more. */
	if (what & BEV_EVENT_TIMEOUT)
		why = "The server sent nothing more in time, in the middle of "
		    "the response.";
	else if (!upstream_closed_cleanly(f->up))
		why = "The TLS connection to the server ended without "
		    "close_notify in the middle of the response.";
	else if (what & BEV_EVENT_EOF)
		why = "The server closed the connection before the end of the "
		    "response.";
	else
		why = "The connection to the server broke in the middle of "
		    "the response.";
	forward_cut(f, (what & BEV_EVENT_TIMEOUT) ?
	    METRIC_UPSTREAM_ERRORS_TIMEOUT :
	    METRIC_UPSTREAM_ERRORS_BAD_RESPONSE, why);
}

/* Send the request head upstream and start streaming. */
static void
forward_send_request(struct forward *f)
{
	const struct http_head	*h = http_msg_head(f->x->req);
	struct bufferevent	*cb = f->x->bev;
	struct bufferevent	*ub = upstream_bev(f->up);
	struct timeval		 idle;

	idle = cv_timeval(f->x->rc->conf->idle_timeout_ms);
	f->state = FORWARD_EXCHANGE;
	phase_set_state(f->x, CONN_EXCHANGE);
	phase_watch_upstream(f->x, ub);
	bufferevent_set_timeouts(ub, &idle, &idle);
	bufferevent_setwatermark(ub, EV_WRITE, 0, 0);
	http_request_write(h, f->upgrade, f->authority, f->port, f->tls,
	    f->x->env->via, f->pending);
	f->head_req = strcmp(h->method, "HEAD") == 0;
	if (f->head_req)
		http_msg_expect_no_body(f->resp);
	f->client_10 = h->http_minor == 0;
	/* Only what the request offered may answer a 101. */
	free(f->offer);
	f->offer = f->upgrade ? http_head_list(h, "Upgrade") : NULL;
	relay_enable(ub, EV_READ | EV_WRITE);
	/*
	 * The head goes now when it is the whole request; a body's bytes are
	 * judged first (forward_request_body()), and over TLS the head waits
	 * with them for the end of this turn, when a malformed body has
	 * taken them all back.
	 */
	if (h->framing == HTTP_FRAMING_NONE)
		relay_push_whole(ub, f->pending,
		    evbuffer_get_length(f->pending));
	else
		relay_push(ub, f->pending, evbuffer_get_length(f->pending));
	phase_client_timeouts(f->x, &idle, f->x->rc->conf->idle_timeout_ms);
	bufferevent_enable(cb, EV_READ);
	forward_request_body(f);
}

/*
 * Nothing of the request went: it is routed again, as if it came now; at
 * most FORWARD_REROUTES_MAX times, as each new dial has a connect_timeout
 * of its own, and reloads that come faster than its server is reached
 * would else hold it for ever.
 */
static void
forward_route_again(struct forward *f)
{
	struct phase_outcome	 o;
	char			 why[128];

	/* The dial's watch goes, and the client's writing comes back. */
	if (f->dial_ev != NULL) {
		sockwatch_free(&f->dial_ev);
		bufferevent_enable(f->x->bev, EV_WRITE);
	}
	if (++f->x->reroutes > FORWARD_REROUTES_MAX) {
		snprintf(why, sizeof(why), "Reloads came faster than the "
		    "server could be reached: the request was routed again %d "
		    "times.", FORWARD_REROUTES_MAX);
		forward_upstream_failed(f, METRIC_UPSTREAM_ERRORS_TIMEOUT, why);
		phase_fail(f->x, HTTP_ERROR_TIMEOUT, why);
		return;
	}
	log_msg(EV_DEBUG, "client %s: a reload while %s was dialled or "
	    "verified; the request is routed again", f->x->client, f->host);
	f->state = FORWARD_IDLE;
	forward_drop(f);
	phase_outcome_init(&o);
	o.next = PHASE_NEXT_ROUTE;
	phase_done(f->x, &o);
}

static void
forward_upstream_cb(struct upstream *u, enum upstream_status st, void *arg)
{
	struct forward	*f = arg;

	/* Opened and checked, or failed: the client is read or answered. */
	if (f->dial_ev != NULL &&
	    (st != UPSTREAM_OK || upstream_bev(u) != NULL || !f->tls)) {
		sockwatch_free(&f->dial_ev);
		bufferevent_enable(f->x->bev, EV_WRITE);
	}
	if (st != UPSTREAM_OK) {
		forward_failed(f, st);
		return;
	}
	/*
	 * Dialled or judged under a configuration a reload replaced since
	 * (its pins, its ports, its clients): nothing of the request went,
	 * and it is routed again under the new one.
	 */
	if (f->x->rc->retired) {
		forward_route_again(f);
		return;
	}
	if (upstream_bev(u) != NULL) {
		forward_send_request(f);
		return;
	}
	/* TCP is up; TLS (or nothing) comes next. */
	if (!f->tls) {
		upstream_start_plain(u);
		forward_send_request(f);
		return;
	}
	if (forward_retargeted(f))
		upstream_retarget(u, NULL, f->authority, false);
	upstream_start_tls(u, forward_alpn_http11,
	    sizeof(forward_alpn_http11) - 1, false, forward_upstream_cb, f);
}

/*
 * The client's socket while its upstream is opened and checked, when
 * nothing reads it: a reset ends the exchange now, not after the verdict
 * (a TLS handshake under way runs on alone to it, upstream_release()). A
 * FIN is a half-close HTTP allows, and bytes are a next request: both
 * wait. Edge-triggered, so neither wakes it again; not while an earlier
 * answer is still written, and the client's writing is off meanwhile, as
 * for a tunnel's peek (see tunnel_watch_dial()): a level-triggered event
 * on the socket would make the watch level-triggered too. An answer
 * queued meanwhile is written once the phase is freed.
 */
static void
forward_dial_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct forward	*f = arg;

	if (f->state != FORWARD_CONNECTING || !sockprog_failed(fd))
		return;
	log_msg(EV_DEBUG, "client %s reset while %s was opened", f->x->client,
	    f->host);
	forward_client_gone(f);
}

/* Open a new upstream for the exchange. */
static void
forward_open(struct forward *f)
{
	struct upstream_params	 p;

	phase_upstream_params(f->x, f->ps, f->host, f->port, &p);
	f->state = FORWARD_CONNECTING;
	phase_set_state(f->x, CONN_CONNECTING);
	f->reused = false;
	f->up_private = false;
	bufferevent_disable(f->x->bev, EV_READ);
	if (f->dial_ev == NULL &&
	    evbuffer_get_length(bufferevent_get_output(f->x->bev)) == 0) {
		bufferevent_disable(f->x->bev, EV_WRITE);
		f->dial_ev = sockwatch_new(f->x->env->base, f->x->fd,
		    forward_dial_watch_cb, f);
		if (f->dial_ev == NULL)
			bufferevent_enable(f->x->bev, EV_WRITE);
	}
	f->up = upstream_connect(&p, forward_upstream_cb, f);
}

void
forward_start(struct forward *f, const struct forward_target *t)
{
	struct runconf		*rc = f->x->rc;
	const struct http_head	*h;
	unsigned		 how = 0;

	xstrlcpy(f->host, t->host, sizeof(f->host));
	xstrlcpy(f->authority, t->authority != NULL ? t->authority : t->host,
	    sizeof(f->authority));
	f->port = t->port;
	f->tls = t->tls;
	f->ps = t->ps;
	f->retried = false;
	f->up_keep = false;
	f->req_done = false;
	f->resp_head_sent = false;
	forward_head_timing(f, false);
	f->continued = false;
	f->interims = 0;
	f->up_settle = false;
	f->resp_done = false;
	f->close_after = false;
	f->client_eof = false;
	f->decode = false;
	/*
	 * After a 101 the connection is a raw relay to this server, and the
	 * checks of each request's host (to the proxy: its routing and pins;
	 * in a tunnel or a redirected connection: that it names the tunnel's
	 * host) end. h2c would then carry requests for any host, pinned ones
	 * too, to this server, in cleartext to a plaintext one; only a
	 * WebSocket, bound to its one URL, goes on. An HTTP request at the
	 * start of the client's stream after the 101 is refused
	 * (relay_guard_line()): a WebSocket client waits for the 101 and
	 * then sends frames, so that is a request pipelined behind the
	 * Upgrade request, perhaps for another host.
	 */
	h = http_msg_head(f->x->req);
	f->upgrade = h->upgrade && http_upgrade_only(h, "websocket");
	f->status = 0;
	f->resp_bytes = 0;
	f->body_up = 0;
	f->up_tainted = false;
	if (f->up == NULL ||
	    !upstream_matches(f->up, rc, f->host, f->port, f->tls)) {
		forward_release(f);
		if (!forward_retargeted(f))
			f->up = pool_get(f->x->env->pool, rc, f->host,
			    f->port, f->tls, f->x->id, &f->use, &how);
		f->up_tainted = (how & POOL_SETTLE) != 0;
		f->up_private = (how & POOL_OWNER_ONLY) != 0;
	}
	if (f->up == NULL) {
		forward_open(f);
		return;
	}
	f->reused = true;
	forward_send_request(f);
}

/* The client sent more of the current request's body. */
static void
forward_client_read(struct forward *f)
{
	if (f->state == FORWARD_EXCHANGE)
		forward_request_body(f);
}

/* The client's output drained: the upstream may be read again. */
static void
forward_client_drained(struct forward *f)
{
	if (f->state != FORWARD_EXCHANGE || f->resp_done)
		return;
	relay_unthrottle(upstream_bev(f->up), f->x->bev);
}

/*
 * Whether the client may have shut down its sending side now: while the
 * upstream is dialled (its request's end is then judged from what it
 * sent, see forward_request_body), once its request is all upstream, or
 * once the final answer is on its way: a server that answers before the
 * body ended tells the client to stop sending it, and the client then
 * ends its side and reads the answer (RFC 9112, 9.6).
 */
static bool
forward_half_close_ok(const struct forward *f)
{
	return f->state == FORWARD_CONNECTING ||
	    (f->state == FORWARD_EXCHANGE && (f->req_done ||
	    forward_final_sent(f)));
}

static void
forward_on_client(void *arg, short what)
{
	struct forward	*f = arg;

	if (what == EV_READ)
		forward_client_read(f);
	else if (what == EV_WRITE)
		forward_client_drained(f);
	else if ((what & ~BEV_EVENT_READING) == BEV_EVENT_EOF &&
	    forward_half_close_ok(f)) {
		/*
		 * The client shut down its side: it still reads the
		 * response, then the connection closes. Only a bare EOF:
		 * deferred events arrive OR'ed together, and an EOF with a
		 * failed write is a client that left.
		 */
		f->client_eof = true;
		f->close_after = true;
	} else if (forward_body_stalled(f, what))
		forward_body_timeout(f);
	else
		forward_client_gone(f);
}

static void
forward_on_upstream(void *arg, short what)
{
	struct forward	*f = arg;

	if (what == EV_READ)
		forward_upstream_readable(f);
	else if (what == EV_WRITE)
		forward_upstream_drained(f);
	else
		forward_upstream_event(f, what);
}

static void
forward_free(void *arg)
{
	struct forward	*f = arg;

	forward_release(f);
	if (f->kept_private)
		pool_forget(f->x->env->pool, f->x->id);
	sockwatch_free(&f->dial_ev);
	if (f->head_timer != NULL)
		event_free(f->head_timer);
	if (f->left_timer != NULL)
		event_free(f->left_timer);
	http_msg_free(f->resp);
	evbuffer_free(f->pending);
	free(f->offer);
	free(f);
}

static SSL *
forward_upstream_tls(void *arg)
{
	struct forward	*f = arg;

	return f->up != NULL ? upstream_tls(f->up) : NULL;
}

static int
forward_answered(void *arg)
{
	struct forward	*f = arg;

	return f->resp_head_sent ? f->status : 0;
}

/*
 * An upgrade's relay runs: the connection keeps the upstream, which
 * carries another protocol now and is never pooled again; the relay
 * ends it (a reset when the client's stream did not end whole).
 */
static struct upstream *
forward_relayed(void *arg)
{
	struct forward	*f = arg;
	struct upstream	*up = f->up;

	if (f->use != NULL)
		pool_drop(f->x->env->pool, f->use, NULL);
	f->up = NULL;
	f->use = NULL;
	return up;
}

const struct phase_ops forward_ops = {
	.name = "forward",
	.on_client = forward_on_client,
	.on_upstream = forward_on_upstream,
	.free = forward_free,
	.relayed = forward_relayed,
	.upstream_tls = forward_upstream_tls,
	.answered = forward_answered,
};

struct forward *
forward_new(struct phase_ctx *x)
{
	struct forward	*f;

	f = xcalloc(1, sizeof(*f));
	f->x = x;
	f->resp = http_msg_new(HTTP_DIR_RESPONSE);
	f->pending = evbuffer_new();
	x->ops = &forward_ops;
	x->phase = f;
	return f;
}

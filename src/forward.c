/*
 * The plaintext exchange. The request head goes upstream only once the
 * upstream passed verification and the pin check; the request body and
 * the response are parsed for framing only and forwarded verbatim (a
 * chunked response to an HTTP/1.0 client goes decoded, ended by the
 * close), each direction pausing while the other side's output is full.
 */
#include "config.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "forward.h"
#include "hostmatch.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "pincheck.h"
#include "pool.h"
#include "relay.h"
#include "upstream.h"
#include "xmalloc.h"

enum forward_state {
	FORWARD_IDLE,		/* between exchanges */
	FORWARD_CONNECTING,	/* opening and checking the upstream */
	FORWARD_EXCHANGE,	/* request and response streaming */
	FORWARD_UPGRADED	/* the upstream is in a byte relay */
};

static const unsigned char forward_alpn_http11[] = "\x08http/1.1";

struct forward {
	struct conn		*conn;		/* owns the forward */
	enum forward_state	 state;
	struct http_msg		*resp;
	struct upstream		*up;		/* kept between exchanges */
	struct pool_host	*use;		/* the pool counts up in use */

	char			 host[HOSTMATCH_NAME_MAX];
	uint16_t		 port;
	bool			 tls;
	const struct pinset	*ps;		/* borrowed from conn's conf */
	bool			 reused;	/* on a kept upstream */
	bool			 retried;
	bool			 up_keep;	/* it may carry another one */
	bool			 req_done;
	bool			 resp_head_sent;
	bool			 resp_done;
	bool			 close_after;	/* the client must be closed */
	bool			 client_10;	/* the request is HTTP/1.0 */
	bool			 decode;	/* the body goes dechunked */
	int			 status;
	char			*offer;		/* request's Upgrade list */
	uint64_t		 resp_bytes;	/* from the upstream */
	uint64_t		 body_up;	/* request body sent upstream */
};

static void	forward_open(struct forward *);
static void	forward_upstream_read(struct forward *);

/* Close the upstream; it cannot carry another exchange. */
static void
forward_drop(struct forward *f)
{
	if (f->use != NULL)
		pool_drop(conn_env(f->conn)->pool, f->use, f->up);
	else
		upstream_free(f->up);
	f->up = NULL;
	f->use = NULL;
}

/*
 * The upstream's answer is not valid HTTP/1.1 for this request: log it
 * and answer 502, closing both sides.
 */
static void
forward_bad_response(struct forward *f, const char *reason)
{
	struct logline	 l;

	log_begin(&l, EV_UPSTREAM_ERROR);
	log_str(&l, LK_HOST, f->host);
	log_int(&l, LK_PORT, f->port);
	log_str(&l, LK_CLIENT, conn_client(f->conn));
	log_str(&l, LK_ERROR, "bad-response");
	log_str(&l, LK_REASON, reason);
	log_end(&l);
	metrics_inc(conn_env(f->conn)->sinks.metrics,
	    METRIC_UPSTREAM_ERRORS_BAD_RESPONSE);
	f->state = FORWARD_IDLE;
	forward_drop(f);
	conn_reply_error(f->conn, HTTP_ERROR_BAD_RESPONSE, f->host, reason);
}

void
forward_release(struct forward *f)
{
	if (f->up == NULL)
		return;
	if (f->state == FORWARD_IDLE && f->use != NULL) {
		pool_put(conn_env(f->conn)->pool, f->use, f->up);
		f->up = NULL;
		f->use = NULL;
	} else
		forward_drop(f);
	f->state = FORWARD_IDLE;
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
	conn_reply_error(f->conn, upstream_outcome(st)->error, f->host, expl);
}

/*
 * Both halves ended. An upstream that may go on returns to the pool at
 * once, so that idle clients hold no upstream: the next request, from
 * this client or another, takes it back.
 */
static void
forward_done(struct forward *f)
{
	if (!f->up_keep || !f->req_done)
		forward_drop(f);
	/* The server answered before the body ended: no more on this one. */
	if (!f->req_done)
		f->close_after = true;
	f->state = FORWARD_IDLE;
	forward_release(f);
	http_msg_trim(f->resp);
	conn_exchange_done(f->conn, f->status, f->close_after);
}

/* A 101: from now on both sides are a byte relay. */
static void
forward_upgrade(struct forward *f)
{
	f->state = FORWARD_UPGRADED;
	conn_upgrade(f->conn, upstream_bev(f->up), f->status);
}

/* Forward request body bytes that belong to the current request. */
static void
forward_request_body(struct forward *f)
{
	struct bufferevent	*cb = conn_client_bev(f->conn);
	struct bufferevent	*ub = upstream_bev(f->up);
	struct evbuffer		*in = bufferevent_get_input(cb);
	struct http_msg		*req = conn_request_msg(f->conn);
	struct evbuffer_iovec	 v;
	enum http_result	 r;
	size_t			 consumed;

	while (!f->req_done) {
		if (!relay_peek(in, &v)) {
			v.iov_base = NULL;
			v.iov_len = 0;
		}
		r = http_msg_feed_body(req, v.iov_base, v.iov_len, &consumed);
		if (r == HTTP_ERR_BAD_REQUEST) {
			f->state = FORWARD_IDLE;
			forward_drop(f);
			if (f->resp_head_sent)
				conn_finish(f->conn, f->status);
			else
				conn_reply_error(f->conn,
				    HTTP_ERROR_BAD_REQUEST, f->host,
				    "The request body is not framed "
				    "correctly.");
			return;
		}
		evbuffer_remove_buffer(in, bufferevent_get_output(ub),
		    consumed);
		conn_count(f->conn, consumed, 0);
		f->body_up += consumed;
		if (r == HTTP_BODY_COMPLETE)
			f->req_done = true;
		else if (consumed == 0 && v.iov_len == 0)
			break;
	}
	relay_kick(ub);
	if (f->req_done) {
		/* Pipelined requests wait until this exchange ends. */
		bufferevent_disable(cb, EV_READ);
		if (f->resp_done)
			forward_done(f);
		return;
	}
	relay_throttle(cb, ub);
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
	if (f->close_after || conn_closing(f->conn))
		return HTTP_CONN_CLOSE;
	return f->client_10 ? HTTP_CONN_KEEP_ALIVE : HTTP_CONN_PERSIST;
}

/* A response head arrived: pass it on, or switch protocols. */
static bool
forward_response_head(struct forward *f, struct evbuffer *out)
{
	const struct http_head	*h = http_msg_head(f->resp);
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
		http_response_write(h, HTTP_CONN_PERSIST, false, out);
		conn_count(f->conn, 0, evbuffer_get_length(out) - before);
		f->status = 101;
		forward_upgrade(f);
		return false;
	}
	/* RFC 9110 §15.2: HTTP/1.0 knows no interim response; drop it. */
	if (h->status < 200 && f->client_10)
		return true;
	if (h->status >= 200) {
		f->status = h->status;
		f->up_keep = h->keep_alive && h->framing != HTTP_FRAMING_CLOSE;
		/* Only a close can end such a body. */
		if (h->framing == HTTP_FRAMING_CLOSE)
			f->close_after = true;
		/* HTTP/1.0 has no chunked coding: the close ends the body. */
		f->decode = f->client_10 && h->framing == HTTP_FRAMING_CHUNKED;
		if (f->decode)
			f->close_after = true;
		http_msg_decode_body(f->resp, f->decode ? out : NULL);
	}
	http_response_write(h, forward_conn_token(f, h), f->decode, out);
	conn_count(f->conn, 0, evbuffer_get_length(out) - before);
	f->resp_head_sent = true;
	/* A message without a body (HEAD, 1xx, 204, 304) ends here. */
	if (http_msg_feed_body(f->resp, NULL, 0, &consumed) ==
	    HTTP_BODY_COMPLETE && h->status >= 200)
		f->resp_done = true;
	return true;
}

/* Parse and forward what the upstream sent. */
static void
forward_upstream_read(struct forward *f)
{
	struct bufferevent	*cb = conn_client_bev(f->conn);
	struct bufferevent	*ub = upstream_bev(f->up);
	struct evbuffer		*in = bufferevent_get_input(ub);
	struct evbuffer		*out = bufferevent_get_output(cb);
	struct evbuffer_iovec	 v;
	enum http_result	 r;
	size_t			 consumed, before;

	while (!f->resp_done && relay_peek(in, &v)) {
		if (http_msg_state(f->resp) != HTTP_MSG_BODY) {
			r = http_msg_feed_head(f->resp, v.iov_base, v.iov_len,
			    &consumed);
			evbuffer_drain(in, consumed);
			f->resp_bytes += consumed;
			if (r == HTTP_NEED_MORE)
				continue;
			if (r != HTTP_HEAD_COMPLETE) {
				forward_bad_response(f, "The server's response "
				    "is not valid HTTP/1.1.");
				return;
			}
			if (!forward_response_head(f, out))
				return;
			continue;
		}
		before = evbuffer_get_length(out);
		r = http_msg_feed_body(f->resp, v.iov_base, v.iov_len,
		    &consumed);
		if (r == HTTP_ERR_BAD_REQUEST) {
			f->state = FORWARD_IDLE;
			forward_drop(f);
			conn_finish(f->conn, f->status);
			return;
		}
		/* A decoded body is already in out, a smaller copy. */
		if (f->decode)
			evbuffer_drain(in, consumed);
		else
			evbuffer_remove_buffer(in, out, consumed);
		f->resp_bytes += consumed;
		conn_count(f->conn, 0, evbuffer_get_length(out) - before);
		if (r == HTTP_BODY_COMPLETE && f->status >= 200)
			f->resp_done = true;
	}
	relay_kick(cb);
	if (f->resp_done) {
		forward_done(f);
		return;
	}
	relay_throttle(ub, cb);
}

static void
forward_upstream_read_cb(struct bufferevent *bev, void *arg)
{
	struct forward	*f = arg;

	if (f->state != FORWARD_EXCHANGE) {
		/* Bytes from a kept upstream between requests: drop it. */
		forward_drop(f);
		return;
	}
	forward_upstream_read(f);
}

/* The upstream drained: the client may send more body. */
static void
forward_upstream_write_cb(struct bufferevent *bev, void *arg)
{
	struct forward	*f = arg;

	if (f->state != FORWARD_EXCHANGE || f->req_done)
		return;
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_enable(conn_client_bev(f->conn), EV_READ);
}

/* A kept upstream closed between requests, or one broke mid-exchange. */
static void
forward_upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct forward	*f = arg;

	if (f->state != FORWARD_EXCHANGE) {
		forward_drop(f);
		return;
	}
	if ((what & BEV_EVENT_EOF) && f->resp_head_sent) {
		forward_upstream_read(f);
		if (f->state != FORWARD_EXCHANGE)
			return;
		if (http_msg_feed_eof(f->resp) == HTTP_BODY_COMPLETE) {
			f->resp_done = true;
			f->close_after = true;
			f->up_keep = false;
			if (f->req_done) {
				forward_done(f);
				return;
			}
		}
	}
	if (!f->resp_head_sent && f->reused && !f->retried &&
	    f->resp_bytes == 0 && f->body_up == 0) {
		/*
		 * The kept connection was closed under us: try a fresh one,
		 * the same use for the pool.
		 */
		f->retried = true;
		upstream_free(f->up);
		f->up = NULL;
		forward_open(f);
		return;
	}
	f->state = FORWARD_IDLE;
	forward_drop(f);
	if (!f->resp_head_sent) {
		conn_reply_error(f->conn, HTTP_ERROR_CONNECT_FAILED, f->host,
		    (what & BEV_EVENT_TIMEOUT) ?
		    "The server sent no response in time." :
		    "The server closed the connection before answering.");
		return;
	}
	/* Mid-body: nothing sensible can be sent any more. */
	conn_finish(f->conn, f->status);
}

/* Send the request head upstream and start streaming. */
static void
forward_send_request(struct forward *f)
{
	const struct http_head	*h = http_msg_head(conn_request_msg(f->conn));
	struct bufferevent	*cb = conn_client_bev(f->conn);
	struct bufferevent	*ub = upstream_bev(f->up);
	struct timeval		 idle;

	idle = cv_timeval(conn_runconf(f->conn)->conf->idle_timeout_ms);
	f->state = FORWARD_EXCHANGE;
	conn_set_state(f->conn, CONN_EXCHANGE);
	bufferevent_setcb(ub, forward_upstream_read_cb,
	    forward_upstream_write_cb, forward_upstream_event_cb, f);
	bufferevent_set_timeouts(ub, &idle, &idle);
	bufferevent_setwatermark(ub, EV_WRITE, 0, 0);
	http_request_write(h, f->host, f->port, f->tls, conn_env(f->conn)->via,
	    bufferevent_get_output(ub));
	if (strcmp(h->method, "HEAD") == 0)
		http_msg_expect_no_body(f->resp);
	f->client_10 = h->http_minor == 0;
	/* Only what the request offered may answer a 101. */
	free(f->offer);
	f->offer = h->upgrade ? http_head_list(h, "Upgrade") : NULL;
	bufferevent_enable(ub, EV_READ | EV_WRITE);
	bufferevent_set_timeouts(cb, &idle, &idle);
	bufferevent_enable(cb, EV_READ);
	forward_request_body(f);
}

static void
forward_upstream_cb(struct upstream *u, enum upstream_status st, void *arg)
{
	struct forward	*f = arg;

	if (st != UPSTREAM_OK) {
		forward_failed(f, st);
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
	upstream_start_tls(u, forward_alpn_http11,
	    sizeof(forward_alpn_http11) - 1, false, forward_upstream_cb, f);
}

/* Open a new upstream for the exchange. */
static void
forward_open(struct forward *f)
{
	struct conn_env		*env = conn_env(f->conn);
	struct upstream_params	 p;

	memset(&p, 0, sizeof(p));
	p.base = env->base;
	p.dns = env->dns;
	p.rc = conn_runconf(f->conn);
	p.ps = f->ps;
	p.host = f->host;
	p.port = f->port;
	p.client = conn_client(f->conn);
	p.sinks = &env->sinks;
	p.self = env->listen;
	p.nself = env->nlisten;
	f->state = FORWARD_CONNECTING;
	conn_set_state(f->conn, CONN_CONNECTING);
	f->reused = false;
	bufferevent_disable(conn_client_bev(f->conn), EV_READ);
	f->up = upstream_connect(&p, forward_upstream_cb, f);
}

void
forward_start(struct forward *f, const struct forward_target *t)
{
	struct runconf	*rc = conn_runconf(f->conn);

	xstrlcpy(f->host, t->host, sizeof(f->host));
	f->port = t->port;
	f->tls = t->tls;
	f->ps = t->ps;
	f->retried = false;
	f->up_keep = false;
	f->req_done = false;
	f->resp_head_sent = false;
	f->resp_done = false;
	f->close_after = false;
	f->decode = false;
	f->status = 0;
	f->resp_bytes = 0;
	f->body_up = 0;
	if (f->up == NULL ||
	    !upstream_matches(f->up, rc, f->host, f->port, f->tls)) {
		forward_release(f);
		f->up = pool_get(conn_env(f->conn)->pool, rc, f->host,
		    f->port, f->tls, &f->use);
	}
	if (f->up == NULL) {
		forward_open(f);
		return;
	}
	f->reused = true;
	forward_send_request(f);
}

void
forward_client_read(struct forward *f)
{
	if (f->state == FORWARD_EXCHANGE)
		forward_request_body(f);
}

void
forward_client_drained(struct forward *f)
{
	if (f->state != FORWARD_EXCHANGE || f->resp_done)
		return;
	bufferevent_setwatermark(conn_client_bev(f->conn), EV_WRITE, 0, 0);
	bufferevent_enable(upstream_bev(f->up), EV_READ);
}

struct forward *
forward_new(struct conn *c)
{
	struct forward	*f;

	f = xcalloc(1, sizeof(*f));
	f->conn = c;
	f->resp = http_msg_new(HTTP_DIR_RESPONSE);
	return f;
}

void
forward_free(struct forward *f)
{
	if (f == NULL)
		return;
	forward_release(f);
	http_msg_free(f->resp);
	free(f->offer);
	free(f);
}

/*
 * The client connection state machine. A connection reads a request head
 * (under header_timeout), decides where it goes, opens or reuses a checked
 * upstream, and streams the exchange both ways with bounded buffers. Only
 * conn_close() frees a connection.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "hostmatch.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "relay.h"
#include "tunnel.h"
#include "upstream.h"
#include "xmalloc.h"

/* Output queued for one side before the other side stops reading. */
#define CONN_HIGH_WATER		(256 * 1024)

enum conn_state {
	CONN_READ_HEAD,		/* waiting for a complete request head */
	CONN_CONNECTING,	/* opening and checking the upstream */
	CONN_EXCHANGE,		/* request and response streaming */
	CONN_RELAY,		/* bytes after a 101 Switching Protocols */
	CONN_TUNNEL,		/* CONNECT, run by the tunnel module */
	CONN_CLOSING		/* flushing a last response, then close */
};

static const char *const conn_state_names[] = {
	[CONN_READ_HEAD] = "read_head",
	[CONN_CONNECTING] = "connecting",
	[CONN_EXCHANGE] = "exchange",
	[CONN_RELAY] = "relay",
	[CONN_TUNNEL] = "tunnel",
	[CONN_CLOSING] = "closing",
};

static const unsigned char conn_alpn_http11[] = "\x08http/1.1";

struct conn {
	TAILQ_ENTRY(conn)	 entry;		/* in env->conns */
	struct conn_env		*env;
	struct runconf		*rc;		/* reference */
	unsigned long		 id;
	char			 client[CONF_ADDR_TEXT_MAX];
	struct bufferevent	*bev;		/* the client; owns the fd */
	enum conn_state		 state;
	struct event		*head_timer;	/* header_timeout */
	struct http_msg		*req;
	struct http_msg		*resp;
	struct upstream		*up;		/* kept between requests */
	struct relay		*relay;
	struct tunnel		*tunnel;	/* CONNECT in progress */
	bool			 shutting_down;

	/* The exchange in progress. */
	char			 host[HOSTMATCH_NAME_MAX];
	uint16_t		 port;
	bool			 tls;
	const struct pinset	*ps;		/* borrowed from rc */
	bool			 reused;	/* on a kept upstream */
	bool			 up_keep;	/* it may carry another exchange */
	bool			 up_idle;	/* kept between exchanges */
	bool			 retried;
	bool			 head_started;	/* a byte of the head came */
	bool			 req_done;
	bool			 resp_head_sent;
	bool			 resp_done;
	bool			 close_after;
	int			 status;
	uint64_t		 bytes_up;
	uint64_t		 bytes_down;
	uint64_t		 resp_bytes;	/* from the upstream */
	uint64_t		 body_up;	/* request body sent upstream */
	struct timeval		 start;
};

static unsigned long	 conn_next_id = 1;

/*
 * The first non-empty extent of a buffer; false when it holds no byte.
 * (A buffer may hold empty chains, which evbuffer_peek also counts.)
 */
static bool
conn_peek(struct evbuffer *buf, struct evbuffer_iovec *v)
{
	struct evbuffer_ptr	 pos;

	if (evbuffer_get_length(buf) == 0)
		return false;
	/* A position skips empty chains; peek from there. */
	evbuffer_ptr_set(buf, &pos, 0, EVBUFFER_PTR_SET);
	return evbuffer_peek(buf, 1, &pos, v, 1) > 0 && v->iov_len > 0;
}

static void	conn_read_head(struct conn *);
static void	conn_client_body(struct conn *);
static void	conn_upstream_read(struct conn *);
static void	conn_open_upstream(struct conn *);
static void	conn_begin_exchange(struct conn *);
static void	conn_read_cb(struct bufferevent *, void *);
static void	conn_write_cb(struct bufferevent *, void *);
static void	conn_event_cb(struct bufferevent *, short, void *);

/* Every state change goes through here, for the debug log. */
static void
conn_set_state(struct conn *c, enum conn_state st)
{
	struct logline	 l;

	log_begin(&l, EV_CONN_STATE);
	log_int(&l, LK_CONN, (long long)c->id);
	log_str(&l, LK_FROM, conn_state_names[c->state]);
	log_str(&l, LK_STATE, conn_state_names[st]);
	log_end(&l);
	c->state = st;
}

/* Milliseconds since the exchange started. */
static long long
conn_elapsed_ms(const struct conn *c)
{
	struct timeval	 now, d;

	evutil_gettimeofday(&now, NULL);
	evutil_timersub(&now, &c->start, &d);
	return (long long)d.tv_sec * 1000 + d.tv_usec / 1000;
}

/* The access line at the end of every request or tunnel. */
static void
conn_log_access(struct conn *c, const char *mode, const char *host,
    int status, uint64_t up, uint64_t down)
{
	struct logline	 l;

	log_begin(&l, EV_ACCESS);
	log_str(&l, LK_CLIENT, c->client);
	log_str(&l, LK_MODE, mode);
	log_str(&l, LK_HOST, host);
	log_int(&l, LK_STATUS, status);
	log_int(&l, LK_BYTES_UP, (long long)up);
	log_int(&l, LK_BYTES_DOWN, (long long)down);
	log_int(&l, LK_MS, conn_elapsed_ms(c));
	log_end(&l);
	metrics_add(c->env->sinks.metrics, METRIC_BYTES_UP, up);
	metrics_add(c->env->sinks.metrics, METRIC_BYTES_DOWN, down);
}

/* Give an idle upstream to the pool, or close it. */
static void
conn_release_upstream(struct conn *c)
{
	if (c->up == NULL)
		return;
	if (c->up_idle && c->env->pool != NULL)
		pool_put(c->env->pool, c->up);
	else
		upstream_free(c->up);
	c->up = NULL;
	c->up_idle = false;
}

void
conn_close(struct conn *c)
{
	struct conn_env	*env = c->env;

	relay_free(c->relay);
	conn_release_upstream(c);
	tunnel_free(c->tunnel);
	bufferevent_free(c->bev);
	event_free(c->head_timer);
	http_msg_free(c->req);
	http_msg_free(c->resp);
	runconf_unref(c->rc);
	TAILQ_REMOVE(&env->conns, c, entry);
	env->nconns--;
	metrics_dec(env->sinks.metrics, METRIC_CONNECTIONS_ACTIVE);
	free(c);
	env->closed(env->closed_arg);
}

/* Close once the client has received everything queued for it. */
static void
conn_close_after_flush(struct conn *c)
{
	struct timeval	 tv = { c->rc->conf->header_timeout, 0 };

	conn_set_state(c, CONN_CLOSING);
	/* The tunnel or relay may own the callbacks: take them back. */
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
	    c);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(c->bev, NULL, &tv);
	bufferevent_enable(c->bev, EV_WRITE);
	bufferevent_disable(c->bev, EV_READ);
	evtimer_del(c->head_timer);
	conn_release_upstream(c);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_close(c);
}

void
conn_reply_error(struct conn *c, enum http_error_kind kind, const char *host,
    const char *explanation)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	size_t		 before = evbuffer_get_length(out);

	http_error_write(out, kind, host, explanation);
	c->bytes_down += evbuffer_get_length(out) - before;
	conn_log_access(c, c->state == CONN_TUNNEL ? "tunnel" : "plain",
	    host != NULL ? host : "", http_error_status(kind), c->bytes_up,
	    c->bytes_down);
	conn_close_after_flush(c);
}

/* The error answer for a failed upstream step. */
static enum http_error_kind
conn_upstream_error_kind(enum upstream_status st)
{
	switch (st) {
	case UPSTREAM_DNS_FAILED:
		return HTTP_ERROR_DNS_FAILED;
	case UPSTREAM_CONNECT_FAILED:
		return HTTP_ERROR_CONNECT_FAILED;
	case UPSTREAM_TIMEOUT:
		return HTTP_ERROR_TIMEOUT;
	case UPSTREAM_VERIFY_FAILED:
		return HTTP_ERROR_VERIFY_FAILED;
	case UPSTREAM_PIN_MISMATCH:
		return HTTP_ERROR_PIN_MISMATCH;
	case UPSTREAM_TLS_FAILED:
	case UPSTREAM_OK:
		break;
	}
	return HTTP_ERROR_TLS_FAILED;
}

/* Answer the client about an upstream that failed a step. */
static void
conn_upstream_failed(struct conn *c, enum upstream_status st)
{
	char	 expl[4096];

	if (st == UPSTREAM_PIN_MISMATCH)
		pincheck_explain(c->ps, upstream_pins(c->up), expl,
		    sizeof(expl));
	else
		snprintf(expl, sizeof(expl), "%s", upstream_reason(c->up));
	conn_reply_error(c, conn_upstream_error_kind(st), c->host, expl);
}

/* Start waiting for the next request head. */
static void
conn_await_head(struct conn *c)
{
	struct timeval	 tv = { c->rc->conf->header_timeout, 0 };

	conn_set_state(c, CONN_READ_HEAD);
	conn_begin_exchange(c);
	evtimer_add(c->head_timer, &tv);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_enable(c->bev, EV_READ);
	if (c->shutting_down) {
		conn_close(c);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		conn_read_head(c);
}

/* Both halves of the exchange ended: log, then keep or close. */
static void
conn_exchange_done(struct conn *c)
{
	conn_log_access(c, "plain", c->host, c->status, c->bytes_up,
	    c->bytes_down);
	c->up_idle = c->up != NULL;
	if (c->close_after) {
		conn_close_after_flush(c);
		return;
	}
	/* A kept upstream stays readable so that its close is noticed. */
	conn_await_head(c);
}

/* Pause src while dst holds more than the high watermark. */
static void
conn_throttle(struct bufferevent *src, struct bufferevent *dst)
{
	if (evbuffer_get_length(bufferevent_get_output(dst)) >=
	    CONN_HIGH_WATER) {
		bufferevent_disable(src, EV_READ);
		bufferevent_setwatermark(dst, EV_WRITE, CONN_HIGH_WATER / 2,
		    0);
	}
}

static void
conn_upstream_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	if (c->state != CONN_EXCHANGE) {
		/* Bytes from a kept upstream between requests: drop it. */
		upstream_free(c->up);
		c->up = NULL;
		return;
	}
	conn_upstream_read(c);
}

/* The upstream drained: the client may send more body. */
static void
conn_upstream_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	if (c->state != CONN_EXCHANGE || c->req_done)
		return;
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_enable(c->bev, EV_READ);
}

/* A kept upstream closed between requests, or one broke mid-exchange. */
static void
conn_upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;
	enum http_result r;

	if (c->state != CONN_EXCHANGE) {
		upstream_free(c->up);
		c->up = NULL;
		return;
	}
	if ((what & BEV_EVENT_EOF) && c->resp_head_sent) {
		conn_upstream_read(c);
		if (c->state != CONN_EXCHANGE)
			return;
		r = http_msg_feed_eof(c->resp);
		if (r == HTTP_BODY_COMPLETE) {
			c->resp_done = true;
			c->close_after = true;
			upstream_free(c->up);
			c->up = NULL;
			if (c->req_done) {
				conn_exchange_done(c);
				return;
			}
		}
	}
	if (!c->resp_head_sent && c->reused && !c->retried &&
	    c->resp_bytes == 0 && c->body_up == 0) {
		/* The kept connection was closed under us: try a fresh one. */
		c->retried = true;
		upstream_free(c->up);
		c->up = NULL;
		conn_open_upstream(c);
		return;
	}
	if (!c->resp_head_sent) {
		conn_reply_error(c, HTTP_ERROR_CONNECT_FAILED, c->host,
		    (what & BEV_EVENT_TIMEOUT) ?
		    "The server sent no response in time." :
		    "The server closed the connection before answering.");
		return;
	}
	/* Mid-body: nothing sensible can be sent any more. */
	conn_log_access(c, "plain", c->host, c->status, c->bytes_up,
	    c->bytes_down);
	conn_close_after_flush(c);
}

/* Send the request head upstream and start streaming. */
static void
conn_send_request(struct conn *c)
{
	const struct http_head	*h = http_msg_head(c->req);
	struct bufferevent	*ub = upstream_bev(c->up);
	struct timeval		 idle = { c->rc->conf->idle_timeout, 0 };

	conn_set_state(c, CONN_EXCHANGE);
	c->up_idle = false;
	bufferevent_setcb(ub, conn_upstream_read_cb, conn_upstream_write_cb,
	    conn_upstream_event_cb, c);
	bufferevent_set_timeouts(ub, &idle, &idle);
	bufferevent_setwatermark(ub, EV_WRITE, 0, 0);
	http_request_write(h, c->host, c->port, c->tls,
	    bufferevent_get_output(ub));
	if (strcmp(h->method, "HEAD") == 0)
		http_msg_expect_no_body(c->resp);
	bufferevent_enable(ub, EV_READ | EV_WRITE);
	bufferevent_set_timeouts(c->bev, &idle, &idle);
	bufferevent_enable(c->bev, EV_READ);
	conn_client_body(c);
}

static void
conn_upstream_cb(struct upstream *u, enum upstream_status st, void *arg)
{
	struct conn	*c = arg;

	if (st != UPSTREAM_OK) {
		conn_upstream_failed(c, st);
		return;
	}
	if (upstream_bev(u) == NULL) {
		/* TCP is up; TLS (or nothing) comes next. */
		if (c->tls)
			upstream_start_tls(u, conn_alpn_http11,
			    sizeof(conn_alpn_http11) - 1, false,
			    conn_upstream_cb, c);
		else {
			upstream_start_plain(u);
			conn_send_request(c);
		}
		return;
	}
	conn_send_request(c);
}

/* Open a new upstream for the exchange. */
static void
conn_open_upstream(struct conn *c)
{
	struct upstream_params	 p;

	memset(&p, 0, sizeof(p));
	p.base = c->env->base;
	p.dns = c->env->dns;
	p.rc = c->rc;
	p.ps = c->ps;
	p.host = c->host;
	p.port = c->port;
	p.client = c->client;
	p.sinks = &c->env->sinks;
	conn_set_state(c, CONN_CONNECTING);
	bufferevent_disable(c->bev, EV_READ);
	c->reused = false;
	c->up = upstream_connect(&p, conn_upstream_cb, c);
}

bool
conn_is_self(const struct conn *c, const char *host, uint16_t port)
{
	struct conf_addr	 a;
	char			 text[CONF_ADDR_TEXT_MAX + 8], err[64];
	size_t			 i;

	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	snprintf(text, sizeof(text), strchr(host, ':') != NULL ?
	    "[%s]:%u" : "%s:%u", host, port);
	if (!cv_addr(text, &a, err, sizeof(err)))
		return false;
	for (i = 0; i < c->env->nlisten; i++)
		if (strcmp(c->env->listen[i].text, a.text) == 0)
			return true;
	return false;
}

/* Reset what belongs to one exchange. */
static void
conn_begin_exchange(struct conn *c)
{
	c->ps = NULL;
	c->tls = false;
	c->retried = false;
	c->head_started = false;
	c->req_done = false;
	c->resp_head_sent = false;
	c->resp_done = false;
	c->up_keep = false;
	c->close_after = c->shutting_down;
	c->status = 0;
	c->bytes_up = 0;
	c->bytes_down = 0;
	c->resp_bytes = 0;
	c->body_up = 0;
	c->host[0] = '\0';
	evutil_gettimeofday(&c->start, NULL);
}

/* A complete request head arrived: decide where it goes. */
static void
conn_request(struct conn *c)
{
	const struct http_head	*h = http_msg_head(c->req);
	const struct conf	*conf = c->rc->conf;
	struct logline		 l;

	evtimer_del(c->head_timer);
	if (h->is_connect) {
		conn_set_state(c, CONN_TUNNEL);
		tunnel_start(c, h->host, h->port);
		return;
	}
	if (h->absolute_form && strcmp(h->scheme, "http") != 0) {
		conn_reply_error(c, HTTP_ERROR_BAD_REQUEST, h->host,
		    "Only http:// URLs can be sent to the proxy; "
		    "use CONNECT for https.");
		return;
	}
	if (!hostmatch_normalize(h->host, strlen(h->host), c->host,
	    sizeof(c->host))) {
		conn_reply_error(c, HTTP_ERROR_BAD_REQUEST, NULL,
		    "The request names no valid host.");
		return;
	}
	c->port = h->port != 0 ? h->port : 80;
	if (!h->keep_alive)
		c->close_after = true;
	if (conn_is_self(c, c->host, c->port)) {
		conn_reply_error(c, HTTP_ERROR_LOOP, c->host,
		    "The request is addressed to the proxy itself.");
		return;
	}
	c->ps = conf_lookup(conf, c->host);
	if (c->ps != NULL) {
		c->tls = true;
		c->port = c->ps->port;
	} else if (conf->unpinned == UNPINNED_VERIFY) {
		c->tls = true;
		c->port = 443;
	} else if (conf->unpinned == UNPINNED_BLOCK) {
		log_begin(&l, EV_BLOCKED);
		log_str(&l, LK_HOST, c->host);
		log_str(&l, LK_CLIENT, c->client);
		log_str(&l, LK_REASON, "unpinned host (unpinned = block)");
		log_end(&l);
		conn_reply_error(c, HTTP_ERROR_BLOCKED, c->host,
		    "No pin set covers this host and unpinned hosts are "
		    "blocked.");
		return;
	}
	if (c->up == NULL || !upstream_matches(c->up, c->rc, c->host,
	    c->port, c->tls)) {
		conn_release_upstream(c);
		c->up = pool_get(c->env->pool, c->rc, c->host, c->port,
		    c->tls);
	}
	if (c->up != NULL) {
		c->reused = true;
		conn_send_request(c);
		return;
	}
	conn_open_upstream(c);
}

/* Feed the buffered client bytes to the head parser. */
static void
conn_read_head(struct conn *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->bev);
	struct evbuffer_iovec	 v;
	enum http_result	 r;
	size_t			 consumed;

	while (conn_peek(in, &v)) {
		if (!c->head_started) {
			/* The time of a request counts from its first byte. */
			c->head_started = true;
			evutil_gettimeofday(&c->start, NULL);
		}
		r = http_msg_feed_head(c->req, v.iov_base, v.iov_len,
		    &consumed);
		evbuffer_drain(in, consumed);
		c->bytes_up += consumed;
		switch (r) {
		case HTTP_NEED_MORE:
			continue;
		case HTTP_HEAD_COMPLETE:
			conn_request(c);
			return;
		case HTTP_ERR_HEAD_TOO_LARGE:
			conn_reply_error(c, HTTP_ERROR_HEADER_TOO_LARGE, NULL,
			    "The request head is larger than 16 KiB.");
			return;
		default:
			conn_reply_error(c, HTTP_ERROR_BAD_REQUEST, NULL,
			    "The request is malformed.");
			return;
		}
	}
}

/* Forward request body bytes that belong to the current request. */
static void
conn_client_body(struct conn *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->bev);
	struct bufferevent	*ub = upstream_bev(c->up);
	struct evbuffer_iovec	 v;
	enum http_result	 r;
	size_t			 consumed;

	while (!c->req_done) {
		if (!conn_peek(in, &v)) {
			v.iov_base = NULL;
			v.iov_len = 0;
		}
		r = http_msg_feed_body(c->req, v.iov_base, v.iov_len,
		    &consumed);
		if (r == HTTP_ERR_BAD_REQUEST) {
			if (c->resp_head_sent) {
				conn_close_after_flush(c);
				return;
			}
			conn_reply_error(c, HTTP_ERROR_BAD_REQUEST, c->host,
			    "The request body is not framed correctly.");
			return;
		}
		evbuffer_remove_buffer(in, bufferevent_get_output(ub),
		    consumed);
		c->bytes_up += consumed;
		c->body_up += consumed;
		if (r == HTTP_BODY_COMPLETE)
			c->req_done = true;
		else if (consumed == 0 && v.iov_len == 0)
			break;
	}
	if (c->req_done) {
		/* Pipelined requests wait until this exchange ends. */
		bufferevent_disable(c->bev, EV_READ);
		if (c->resp_done)
			conn_exchange_done(c);
		return;
	}
	conn_throttle(c->bev, ub);
}

/* A 101: from now on both sides are a byte relay. */
static void
conn_relay_done_cb(struct relay *r, const char *why, void *arg)
{
	struct conn	*c = arg;
	uint64_t	 up, down;

	relay_counts(r, &up, &down);
	conn_log_access(c, "plain", c->host, c->status, c->bytes_up + up,
	    c->bytes_down + down);
	conn_close(c);
}

static void
conn_switch_to_relay(struct conn *c)
{
	conn_set_state(c, CONN_RELAY);
	c->relay = relay_new(c->env->base, c->bev, upstream_bev(c->up),
	    c->rc->conf->idle_timeout, conn_relay_done_cb, c);
}

/* Parse and forward what the upstream sent. */
static void
conn_upstream_read(struct conn *c)
{
	struct bufferevent	*ub = upstream_bev(c->up);
	struct evbuffer		*in = bufferevent_get_input(ub);
	struct evbuffer		*out = bufferevent_get_output(c->bev);
	const struct http_head	*h;
	struct evbuffer_iovec	 v;
	enum http_result	 r;
	size_t			 consumed, before;

	while (!c->resp_done && conn_peek(in, &v)) {
		if (http_msg_state(c->resp) != HTTP_MSG_BODY) {
			r = http_msg_feed_head(c->resp, v.iov_base, v.iov_len,
			    &consumed);
			evbuffer_drain(in, consumed);
			c->resp_bytes += consumed;
			if (r == HTTP_NEED_MORE)
				continue;
			if (r != HTTP_HEAD_COMPLETE) {
				conn_reply_error(c, HTTP_ERROR_TLS_FAILED,
				    c->host, "The server's response is not "
				    "valid HTTP/1.1.");
				return;
			}
			h = http_msg_head(c->resp);
			before = evbuffer_get_length(out);
			if (h->status == 101) {
				http_response_write(h, false, out);
				c->bytes_down += evbuffer_get_length(out) -
				    before;
				c->status = 101;
				conn_switch_to_relay(c);
				return;
			}
			if (h->status >= 200) {
				c->status = h->status;
				c->up_keep = h->keep_alive &&
				    h->framing != HTTP_FRAMING_CLOSE;
				/* Only a close can end such a body. */
				if (h->framing == HTTP_FRAMING_CLOSE)
					c->close_after = true;
			}
			http_response_write(h, h->status >= 200 &&
			    c->close_after, out);
			c->bytes_down += evbuffer_get_length(out) - before;
			c->resp_head_sent = true;
			/* A message without a body (HEAD, 1xx, 204, 304) ends here. */
			if (http_msg_feed_body(c->resp, NULL, 0, &consumed) ==
			    HTTP_BODY_COMPLETE && h->status >= 200)
				c->resp_done = true;
			continue;
		}
		r = http_msg_feed_body(c->resp, v.iov_base, v.iov_len,
		    &consumed);
		if (r == HTTP_ERR_BAD_REQUEST) {
			conn_close_after_flush(c);
			return;
		}
		evbuffer_remove_buffer(in, out, consumed);
		c->resp_bytes += consumed;
		c->bytes_down += consumed;
		if (r == HTTP_BODY_COMPLETE && c->status >= 200)
			c->resp_done = true;
	}
	if (c->resp_done) {
		if (!c->up_keep || !c->req_done) {
			upstream_free(c->up);
			c->up = NULL;
		}
		if (c->req_done) {
			conn_exchange_done(c);
			return;
		}
		/* The server answered before the body ended: stop here. */
		c->close_after = true;
		conn_exchange_done(c);
		return;
	}
	conn_throttle(ub, c->bev);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	switch (c->state) {
	case CONN_READ_HEAD:
		conn_read_head(c);
		break;
	case CONN_EXCHANGE:
		conn_client_body(c);
		break;
	default:
		break;
	}
}

/* The client drained: resume the upstream, or finish closing. */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	if (c->state == CONN_CLOSING) {
		conn_close(c);
		return;
	}
	if (c->state == CONN_EXCHANGE && c->up != NULL && !c->resp_done) {
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_enable(upstream_bev(c->up), EV_READ);
	}
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;

	/* The client left or timed out; nothing more can reach it. */
	if (c->state == CONN_EXCHANGE)
		conn_log_access(c, "plain", c->host, c->status, c->bytes_up,
		    c->bytes_down);
	conn_close(c);
}

static void
conn_head_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	if (c->state != CONN_READ_HEAD)
		return;
	if (!c->head_started) {
		/* An idle connection: close without a word. */
		conn_close(c);
		return;
	}
	conn_reply_error(c, HTTP_ERROR_HEADER_TIMEOUT, NULL,
	    "The request head did not arrive in time.");
}

struct conn *
conn_new(struct conn_env *env, struct runconf *rc, evutil_socket_t fd,
    const struct sockaddr *sa, socklen_t salen)
{
	struct conn	*c;
	int		 one = 1;

	c = xcalloc(1, sizeof(*c));
	c->env = env;
	c->rc = runconf_ref(rc);
	c->id = conn_next_id++;
	c->state = CONN_READ_HEAD;
	cv_sockaddr_text(sa, c->client, sizeof(c->client));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->bev = bufferevent_socket_new(env->base, fd,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	relay_tune(c->bev);
	c->req = http_msg_new(HTTP_DIR_REQUEST);
	c->resp = http_msg_new(HTTP_DIR_RESPONSE);
	c->head_timer = evtimer_new(env->base, conn_head_timeout_cb, c);
	TAILQ_INSERT_TAIL(&env->conns, c, entry);
	env->nconns++;
	metrics_inc(env->sinks.metrics, METRIC_CONNECTIONS_TOTAL);
	metrics_inc(env->sinks.metrics, METRIC_CONNECTIONS_ACTIVE);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
	    c);
	evutil_gettimeofday(&c->start, NULL);
	if (!conf_client_allowed(rc->conf, sa)) {
		struct logline	 l;

		log_begin(&l, EV_BLOCKED);
		log_str(&l, LK_HOST, "");
		log_str(&l, LK_CLIENT, c->client);
		log_str(&l, LK_REASON, "client not in allow_clients");
		log_end(&l);
		bufferevent_enable(c->bev, EV_WRITE);
		conn_reply_error(c, HTTP_ERROR_CLIENT_DENIED, NULL,
		    "This client address is not allowed to use the proxy.");
		return c;
	}
	conn_await_head(c);
	return c;
}

void
conn_shutdown(struct conn *c)
{
	c->shutting_down = true;
	c->close_after = true;
	if (c->state == CONN_READ_HEAD && !c->head_started)
		conn_close(c);
}

void
conn_shutdown_all(struct conn_env *env)
{
	struct conn	*c, *next;

	for (c = TAILQ_FIRST(&env->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		conn_shutdown(c);
	}
}

void
conn_close_all(struct conn_env *env)
{
	struct conn	*c;

	while ((c = TAILQ_FIRST(&env->conns)) != NULL)
		conn_close(c);
}

void
conn_set_tunnel(struct conn *c, struct tunnel *t)
{
	c->tunnel = t;
}

void
conn_set_client_bev(struct conn *c, struct bufferevent *bev)
{
	c->bev = bev;
}

struct bufferevent *
conn_client_bev(struct conn *c)
{
	return c->bev;
}

const char *
conn_client(const struct conn *c)
{
	return c->client;
}

struct runconf *
conn_runconf(struct conn *c)
{
	return c->rc;
}

struct conn_env *
conn_env(struct conn *c)
{
	return c->env;
}

void
conn_tunnel_done(struct conn *c, const char *mode, const char *host,
    int status, uint64_t up, uint64_t down)
{
	conn_log_access(c, mode, host, status, up, down);
	conn_close_after_flush(c);
}

/*
 * The client connection state machine. A connection reads a request head
 * under header_timeout, decides where it goes (the policy of SPEC §3), and
 * hands it to the forward module (plaintext requests) or the tunnel module
 * (CONNECT); errors are answered here. Only conn_close() frees one; a
 * connection that ends in order lingers first (conn_linger).
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>

#include <event2/buffer.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ca.h"
#include "capage.h"
#include "conn.h"
#include "dialring.h"
#include "forward.h"
#include "intercept.h"
#include "hostmatch.h"
#include "hostport.h"
#include "http.h"
#include "log.h"
#include "linger.h"
#include "metrics.h"
#include "monotime.h"
#include "relay.h"
#include "tunnel.h"
#include "xmalloc.h"

struct conn {
	struct phase_ctx	 x;		/* first: what its phases see */
	TAILQ_ENTRY(conn)	 entry;		/* in env->conns */
	char			 client[CONF_ADDR_TEXT_MAX];
	struct sockaddr_storage	 ss;		/* the client's address */
	struct event		*head_timer;	/* header_timeout */
	struct relay		*relay;
	bool			 shutting_down;

	/*
	 * Plaintext HTTP in a CONNECT tunnel: where every request goes. By
	 * address, the first request sets the host (tunnel_host_set), and
	 * the requests that stay in plaintext go to that address
	 * (tunnel_addr), whatever the host's name resolves to.
	 */
	bool			 in_tunnel;
	bool			 tunnel_host_set;
	char			*tunnel_host;	/* NULL outside such a tunnel */
	char			*tunnel_addr;	/* NULL: by name */
	uint16_t		 tunnel_port;

	bool			 head_started;	/* a byte of the head came */
	bool			 used;		/* a byte of any head came */
	bool			 answered;	/* an exchange of it ended */
	bool			 grace_cut;	/* head_timer ends the grace */
	struct timeval		 due;		/* its accept, or tunnel's */
	/*
	 * In CONN_READ_HEAD: the answers queued for the client reached
	 * RELAY_HIGH_WATER; the next head is read once it took half.
	 */
	bool			 await_drain;
	/*
	 * The client shut down its sending side between requests: the
	 * requests it sent whole are answered, then the connection closes.
	 */
	bool			 client_eof;

	struct linger_close	*linger;	/* in CONN_LINGER */
};

static unsigned long	 conn_next_id = 1;

/*
 * A client that connected this shortly before a stop began may have its
 * first request on the way: it is waited for until then, within half of
 * shutdown_timeout (conn_stop_grace()). Clients do not send a first
 * request again when the new connection they sent it on closes
 * unanswered.
 */
#define CONN_STOP_GRACE_MS	1000
/* The bytes a stop looks at to tell a pipelined request from empty lines. */
#define CONN_BLANK_LOOK		64

static void	conn_read_head(struct conn *);
static void	conn_deny(struct conn *);
static void	conn_read_cb(struct bufferevent *, void *);
static void	conn_request(struct conn *);
static void	conn_write_cb(struct bufferevent *, void *);
static void	conn_event_cb(struct bufferevent *, short, void *);

/* The states in which a phase runs with the client's events. */
static bool
conn_in_phase(const struct conn *c)
{
	return c->x.ops != NULL && c->x.state != CONN_READ_HEAD &&
	    c->x.state != CONN_RELAY && c->x.state != CONN_CLOSING &&
	    c->x.state != CONN_LINGER;
}

/* The states of a CONNECT (or redirected connection) before its relay. */
static bool
conn_tunnelling(const struct conn *c)
{
	enum conn_state	 st = c->x.state;

	return st == CONN_DIAL || st == CONN_AWAIT_HELLO ||
	    st == CONN_UPSTREAM_TLS || st == CONN_CLIENT_TLS;
}

/* Milliseconds since t. */
static long long
conn_ms_since(const struct timeval *t)
{
	struct timeval	 now, d;

	monotime_tv(&now);
	evutil_timersub(&now, t, &d);
	return (long long)d.tv_sec * 1000 + d.tv_usec / 1000;
}

/* Milliseconds since the request started. */
static long long
conn_elapsed_ms(const struct conn *c)
{
	return conn_ms_since(&c->x.acc.start);
}

/* The access line at the end of every request or tunnel: the only one. */
static void
conn_log_access(struct conn *c)
{
	const struct access_record	*a = &c->x.acc;
	struct logline			 l;

	log_begin(&l, EV_ACCESS);
	log_str(&l, LK_CLIENT, c->client);
	/* Whatever path it took, a redirected connection is "transparent". */
	log_str(&l, LK_MODE, c->x.transparent ? "transparent" : a->mode);
	log_str(&l, LK_HOST, a->host);
	log_int(&l, LK_STATUS, a->status);
	log_int(&l, LK_BYTES_UP, (long long)a->up);
	log_int(&l, LK_BYTES_DOWN, (long long)a->down);
	log_int(&l, LK_MS, conn_elapsed_ms(c));
	log_end(&l);
	metrics_add(c->x.env->sinks.metrics, METRIC_BYTES_UP, a->up);
	metrics_add(c->x.env->sinks.metrics, METRIC_BYTES_DOWN, a->down);
}

/* Free the phase that ran, giving back what it held. */
static void
conn_phase_free(struct conn *c)
{
	const struct phase_ops	*ops = c->x.ops;
	void			*phase = c->x.phase;

	c->x.ops = NULL;
	c->x.phase = NULL;
	if (ops != NULL)
		ops->free(phase);
}

void
conn_close(struct conn *c)
{
	struct conn_env	*env = c->x.env;

	/*
	 * What is still queued for the client is dropped: a FIN after it
	 * could pass for the end of a body that only the close delimits.
	 */
	if (c->x.bev != NULL &&
	    evbuffer_get_length(bufferevent_get_output(c->x.bev)) > 0)
		linger_reset(c->x.fd);
	relay_free(c->relay);
	conn_phase_free(c);
	/* The transport first: it stops using the others at once. */
	if (c->x.bev != NULL)
		bufferevent_free(c->x.bev);
	SSL_free(c->x.tls);
	close(c->x.fd);
	if (c->head_timer != NULL)
		event_free(c->head_timer);
	linger_free(c->linger);
	http_msg_free(c->x.req);
	free(c->tunnel_host);
	free(c->tunnel_addr);
	free(c->x.acc.host);
	runconf_unref(c->x.rc);
	TAILQ_REMOVE(&env->conns, c, entry);
	env->nconns--;
	metrics_dec(env->sinks.metrics, METRIC_CONNECTIONS_ACTIVE);
	free(c);
	env->closed(env->closed_arg);
}

/* Reset the client's connection: its answer was cut short. */
static void
conn_reset(struct conn *c)
{
	linger_reset(c->x.fd);
	conn_close(c);
}

static void
conn_linger_done(void *arg)
{
	struct conn	*c = arg;

	if (linger_stalled(c->linger))
		log_msg(EV_DEBUG, "client %s: reset, having taken nothing the "
		    "kernel held for it for idle_timeout", c->client);
	conn_close(c);
}

/*
 * Everything for the client is written: close it lingering (linger.h), or,
 * when its stream was cut upstream, reset it once it took what its socket
 * holds (linger_start_cut).
 */
static void
conn_linger(struct conn *c, bool cut)
{
	/*
	 * A plain client whose end of file was read sends nothing more, and
	 * its socket holds nothing unread: its close is a FIN after what
	 * was written, with nothing to linger for, once the kernel holds
	 * nothing more for it (else the linger waits for it to take that).
	 */
	if (!cut && c->client_eof && c->x.bev != NULL && c->x.tls == NULL &&
	    !linger_queued(c->x.fd)) {
		conn_close(c);
		return;
	}
	phase_set_state(&c->x, CONN_LINGER);
	/* Nothing is queued: the transport goes, the socket stays. */
	if (c->x.bev != NULL) {
		bufferevent_free(c->x.bev);
		c->x.bev = NULL;
	}
	if (c->head_timer != NULL)
		evtimer_del(c->head_timer);
	if (cut)
		c->linger = linger_start_cut(c->x.env->base, c->x.fd,
		    conn_linger_done, c);
	else
		c->linger = linger_start(c->x.env->base, c->x.fd,
		    c->x.rc->conf->idle_timeout_ms, conn_linger_done, c);
	if (c->linger == NULL)
		conn_close(c);
}

/* Close once the client has received everything queued for it. */
static void
conn_close_after_flush(struct conn *c)
{
	struct bufferevent	*bev = c->x.bev;

	phase_set_state(&c->x, CONN_CLOSING);
	conn_phase_free(c);
	/* After a relay, which freed the transport, nothing is queued. */
	if (bev == NULL) {
		conn_linger(c, false);
		return;
	}
	bufferevent_setcb(bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	phase_client_timeouts(&c->x, NULL, c->x.rc->conf->header_timeout_ms);
	bufferevent_enable(bev, EV_WRITE);
	bufferevent_disable(bev, EV_READ);
	if (c->head_timer != NULL)
		evtimer_del(c->head_timer);
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_linger(c, false);
}

/* Answer an HTTP error (none to a redirected client before its relay). */
static void
conn_answer(struct conn *c, enum http_error_kind kind,
    const char *explanation)
{
	struct access_record	*a = &c->x.acc;
	struct evbuffer		*out = bufferevent_get_output(c->x.bev);
	size_t			 before = evbuffer_get_length(out);

	/*
	 * A redirected client sent no request before its first bytes are
	 * judged: it expects TLS or its server's answer, never ours. The
	 * answer to a HEAD is its head (RFC 9110, 9.3.2), a HEAD whose head
	 * was refused included.
	 */
	if (!(c->x.transparent && conn_tunnelling(c)))
		http_error_write(out, kind, a->host[0] != '\0' ? a->host :
		    NULL, explanation, c->x.req != NULL &&
		    http_msg_is_head_request(c->x.req));
	a->down += evbuffer_get_length(out) - before;
	a->status = http_error_status(kind);
}

/* Reset what belongs to one request. */
static void
conn_begin_request(struct conn *c)
{
	struct access_record	*a = &c->x.acc;

	c->head_started = false;
	c->x.closing = c->shutting_down;
	a->mode = "plain";
	phase_set_host(&c->x, "");
	a->status = 0;
	a->up = 0;
	a->down = 0;
	monotime_tv(&a->start);
}

/*
 * How many of the n bytes at p are empty lines (CR or LF), which a client
 * may send before a request (RFC 9112, 2.2).
 */
static size_t
conn_blank(const unsigned char *p, size_t n)
{
	size_t	 i;

	for (i = 0; i < n && (p[i] == '\r' || p[i] == '\n'); i++)
		continue;
	return i;
}

/*
 * Whether the client sent what was not read as a request yet (a
 * pipelined request, most likely): bytes read and not parsed, or waiting
 * in its socket. Empty lines alone, which a client may send after a body
 * (RFC 9112, 2.2), are no request; more of them than are looked at are
 * taken for one.
 */
static bool
conn_request_came(struct conn *c)
{
	struct evbuffer	*in = bufferevent_get_input(c->x.bev);
	unsigned char	 b[CONN_BLANK_LOOK];
	ev_ssize_t	 n;
	ssize_t		 r;

	n = evbuffer_copyout(in, b, sizeof(b));
	if (n > 0 && (evbuffer_get_length(in) > sizeof(b) ||
	    conn_blank(b, (size_t)n) < (size_t)n))
		return true;
	if (c->client_eof)
		return false;
	r = recv(c->x.fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
	return r > 0 && ((size_t)r == sizeof(b) ||
	    conn_blank(b, (size_t)r) < (size_t)r);
}

/*
 * During a stop, the milliseconds c may still wait for its first request
 * (0: none): a connection accepted (or whose CONNECT tunnel began) less
 * than CONN_STOP_GRACE_MS before, within half of the current
 * shutdown_timeout, that sent no request yet.
 */
static long long
conn_stop_grace(const struct conn *c)
{
	long long	 grace = c->x.env->rc->conf->shutdown_timeout_ms / 2;
	long long	 age;

	if (c->used || c->await_drain || c->client_eof)
		return 0;
	if (grace > CONN_STOP_GRACE_MS)
		grace = CONN_STOP_GRACE_MS;
	age = conn_ms_since(&c->due);
	return age >= 0 && age < grace ? grace - age : 0;
}

/*
 * During a stop, c waits for a head and none was begun (empty lines may
 * have been read): read next if a request came (a first, or pipelined);
 * else its first request may be on the way, and the head timer ends the
 * wait (a head begun by then is answered, else the connection closes
 * without a word); else it is idle: close once the last response is out.
 * Called when the stop begins, and again when empty lines were drained
 * (they may have been all the stop saw in the socket).
 */
static void
conn_stop_idle(struct conn *c)
{
	struct timeval	 tv;
	long long	 grace;

	if (conn_request_came(c))
		return;
	if ((grace = conn_stop_grace(c)) > 0) {
		/* Once: a wait the grace cut already is not made longer. */
		if (!c->grace_cut) {
			tv = cv_timeval((uint64_t)grace);
			evtimer_add(c->head_timer, &tv);
			c->grace_cut = true;
		}
		return;
	}
	conn_close_after_flush(c);
}

/*
 * Start waiting for the next request head. Pipelined requests whose
 * answers the client does not read must not queue them without bound: at
 * RELAY_HIGH_WATER queued, the next head waits (unread, its timer not
 * started) until the client took half; a client that takes nothing for
 * idle_timeout is closed. A head already buffered is read from the loop,
 * not from here, so a burst of pipelined requests that are answered at
 * once (the CA page, errors) does not nest one call per request.
 */
static void
conn_await_head(struct conn *c)
{
	const struct conf	*conf = c->x.rc->conf;
	struct timeval		 tv = cv_timeval(conf->header_timeout_ms);
	long long		 grace;

	c->grace_cut = false;
	if (c->shutting_down) {
		/*
		 * A request that came before the stop is read, and answered
		 * with close; so is a first request (a redirected
		 * connection's, after its tunnel's start) that may still come
		 * (conn_stop_grace()). Else the last response may still be
		 * queued for the client.
		 */
		grace = conn_stop_grace(c);
		if (!conn_request_came(c) && (c->used || grace == 0)) {
			conn_close_after_flush(c);
			return;
		}
		if (grace > 0 && (uint64_t)grace < conf->header_timeout_ms) {
			tv = cv_timeval((uint64_t)grace);
			c->grace_cut = true;
		}
	}
	phase_set_state(&c->x, CONN_READ_HEAD);
	conn_begin_request(c);
	http_msg_trim(c->x.req);
	if (evbuffer_get_length(bufferevent_get_output(c->x.bev)) >=
	    RELAY_HIGH_WATER) {
		c->await_drain = true;
		bufferevent_disable(c->x.bev, EV_READ);
		bufferevent_setwatermark(c->x.bev, EV_WRITE,
		    RELAY_HIGH_WATER / 2, 0);
		phase_client_timeouts(&c->x, NULL, conf->idle_timeout_ms);
		bufferevent_enable(c->x.bev, EV_WRITE);
		return;
	}
	c->await_drain = false;
	bufferevent_setwatermark(c->x.bev, EV_WRITE, 0, 0);
	/*
	 * Heads are parsed one at a time, so pipelined bytes wait in the
	 * input: reading stops once it holds RELAY_IO_MAX (more than any
	 * head), else a client pipelining requests answered here (the CA
	 * page) grew it by a read a request.
	 */
	bufferevent_setwatermark(c->x.bev, EV_READ, 0, RELAY_IO_MAX);
	if (c->client_eof &&
	    evbuffer_get_length(bufferevent_get_input(c->x.bev)) == 0) {
		conn_close_after_flush(c);
		return;
	}
	evtimer_add(c->head_timer, &tv);
	if (!c->client_eof)
		bufferevent_enable(c->x.bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(c->x.bev)) > 0)
		bufferevent_trigger(c->x.bev, EV_READ,
		    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

static void	conn_phase_done(struct phase_ctx *, const struct phase_outcome *);

/* The relay is over: what it moved goes into the access record. */
static void
conn_relay_end(struct conn *c)
{
	uint64_t	 up, down;

	relay_counts(c->relay, &up, &down);
	relay_free(c->relay);
	c->relay = NULL;
	c->x.acc.up += up;
	c->x.acc.down += down;
}

static void
conn_relay_done_cb(struct relay *r, const char *why, void *arg)
{
	struct conn		*c = arg;
	struct phase_outcome	 o;
	bool			 gone, has_all;

	/*
	 * A client that failed, or whose stream was cut, is reset: once it
	 * took what its socket holds when the cut was upstream.
	 */
	gone = relay_client_cut(r);
	has_all = relay_client_has_all(r);
	log_msg(EV_DEBUG, "client %s: relay ended: %s", c->client, why);
	if (relay_outcome(r) == RELAY_REFUSED) {
		phase_log_blocked(&c->x, c->x.acc.host,
		    relay_refused_response(r) ? "an HTTP response after a "
		    "101 (at the start of the server's stream)" :
		    relay_refused_hello(r) ?
		    "a blind tunnel's further ClientHello (before the "
		    "server's ServerHello) named another server than the "
		    "first, or was none" :
		    c->x.acc.status == 101 ?
		    "plaintext HTTP after a 101 (an HTTP request at the start "
		    "of the client's stream)" : "plaintext HTTP in a blind "
		    "tunnel (an HTTP request at the start of the client's "
		    "stream)");
		/*
		 * A tunnel's server that spoke before the relay (its bytes
		 * went out while the client's first ones were awaited): its
		 * stream, cut here, must not end in order.
		 */
		gone = gone || (c->x.acc.status != 101 && c->x.acc.down > 0);
		c->x.acc.status = 403;
	}
	conn_relay_end(c);
	phase_outcome_init(&o);
	o.status = c->x.acc.status;
	o.close = true;
	o.gone = gone && !has_all;
	o.cut_delivered = gone && !o.gone;
	conn_phase_done(&c->x, &o);
}

/* Relay the client and upstream (borrowed from the phase) until done. */
static void
conn_relay(struct conn *c, const struct phase_outcome *o)
{
	struct bufferevent	*upstream = o->relay_with;
	struct upstream	*up;
	evutil_socket_t	 fd;
	SSL		*ssl;

	c->x.acc.status = o->status;
	phase_set_state(&c->x, CONN_RELAY);
	bufferevent_setwatermark(upstream, EV_READ, 0, 0);
	c->relay = relay_new(c->x.env->base, c->x.bev, upstream,
	    c->x.rc->conf->idle_timeout_ms, conn_relay_done_cb, c);
	if (o->relay_guard)
		relay_guard_line(c->relay);
	/* A 101's server must not answer as HTTP either. */
	if (o->relay_guard && o->status == 101)
		relay_guard_response(c->relay);
	if (o->relay_hello_len > 0)
		relay_guard_hello(c->relay, o->relay_hello_sni,
		    o->relay_hello_len);
	/*
	 * The relay runs on the upstream's socket: its bufferevent goes, and
	 * so does the phase that handed it over, with its timers and hello.
	 */
	if (c->x.ops != NULL && c->x.ops->relayed != NULL) {
		if ((up = c->x.ops->relayed(c->x.phase)) != NULL) {
			upstream_hand_over(up, &fd, &ssl);
			relay_adopt_server(c->relay, fd, ssl);
		}
		conn_phase_free(c);
	}
	event_free(c->head_timer);
	c->head_timer = NULL;
	/* And on the client's socket and TLS connection: its transport goes. */
	bufferevent_free(c->x.bev);
	c->x.bev = NULL;
	/*
	 * The connection closes when the relay ends: no request is read
	 * again, and the access line has what it needs in x.acc.
	 */
	http_msg_free(c->x.req);
	c->x.req = NULL;
	c->x.env->settled(c->x.env->closed_arg);
}

/* The tunnel hands over to interception, which copies what it needs. */
static void
conn_intercept(struct conn *c, const struct intercept_args *a)
{
	const struct phase_ops	*ops = c->x.ops;
	void			*tunnel = c->x.phase;

	c->x.ops = NULL;
	c->x.phase = NULL;
	intercept_start(&c->x, a);
	/* Not c's any more: c may even be gone by now. */
	ops->free(tunnel);
}

/*
 * Plaintext HTTP follows a CONNECT's 200: free the tunnel and read
 * requests as a plaintext proxy connection whose every request must name
 * host (or, when by_ip, the host its first request names) and goes to
 * port, the CONNECT's.
 */
static void
conn_tunnel_plain(struct conn *c, const char *host, bool by_ip,
    uint16_t port)
{
	struct bufferevent	*bev = c->x.bev;

	/* host is the tunnel's: copy it before freeing the tunnel. */
	c->tunnel_host = xstrdup(host);
	c->tunnel_host_set = !by_ip;
	c->tunnel_addr = by_ip ? xstrdup(host) : NULL;
	c->tunnel_port = port;
	c->in_tunnel = true;
	/*
	 * A CONNECT was answered (a redirected connection sent none); the
	 * tunnel's first request is waited for as a new connection's is
	 * during a stop (conn_stop_grace()).
	 */
	c->answered = !c->x.transparent;
	c->used = false;
	monotime_tv(&c->due);
	conn_phase_free(c);
	/* A fresh parser: the last one stopped after the CONNECT. */
	http_msg_free(c->x.req);
	c->x.req = http_msg_new(HTTP_DIR_REQUEST);
	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_setwatermark(bev, EV_READ, 0, 0);
	bufferevent_enable(bev, EV_WRITE);
	conn_await_head(c);
}

/*
 * A phase ended (or a request the connection answered itself, or a
 * relay): answer what is owed, write the access line, then go on.
 */
static void
conn_phase_done(struct phase_ctx *x, const struct phase_outcome *o)
{
	struct conn		*c = (struct conn *)x;
	enum http_error_kind	 kind = o->error;
	bool			 close = o->close || x->closing;

	switch (o->next) {
	case PHASE_NEXT_RELAY:
		conn_relay(c, o);
		return;
	case PHASE_NEXT_INTERCEPT:
		conn_intercept(c, o->intercept);
		return;
	case PHASE_NEXT_PLAIN:
		conn_tunnel_plain(c, o->plain_host, o->plain_by_ip,
		    o->plain_port);
		return;
	case PHASE_NEXT_ROUTE:
		conn_request(c);
		return;
	case PHASE_NEXT_END:
		break;
	}
	c->answered = true;
	if (o->upstream_status != UPSTREAM_OK)
		kind = upstream_outcome(o->upstream_status)->error;
	if (kind != PHASE_NO_ERROR) {
		conn_answer(c, kind, o->explanation);
		close = true;
	} else
		x->acc.status = o->status;
	conn_log_access(c);
	/*
	 * A client that left or timed out (one that stopped reading) is
	 * reset too: it may still read, and a FIN after what is dropped
	 * could pass for the end of a body that only the close delimits.
	 */
	if (o->cut || o->gone)
		conn_reset(c);
	else if (o->cut_delivered)
		conn_linger(c, true);
	else if (close && (o->close || kind != PHASE_NO_ERROR ||
	    !c->shutting_down))
		conn_close_after_flush(c);
	else
		/*
		 * Also when a stop came after the head of the answer, which
		 * kept the connection: a request the client sent by then is
		 * read and answered, with close (conn_await_head()).
		 */
		conn_await_head(c);
}

/* Answer an error about host (NULL: none) and close after it. */
static void
conn_reply_error(struct conn *c, enum http_error_kind kind, const char *host,
    const char *explanation)
{
	phase_set_host(&c->x, host != NULL ? host : "");
	phase_fail(&c->x, kind, explanation);
}

/* Whether the request already passed through this proxy (its Via). */
static bool
conn_came_back(const struct conn *c, const struct http_head *h)
{
	size_t	 i;

	for (i = 0; i < h->nheaders; i++)
		if (strcasecmp(h->headers[i].name, "Via") == 0 &&
		    strstr(h->headers[i].value, c->x.env->via) != NULL)
			return true;
	return false;
}

/* Refuse an unpinned host under unpinned = block. */
static void
conn_block(struct conn *c)
{
	phase_log_blocked(&c->x, c->x.acc.host,
	    "unpinned host (unpinned = block)");
	conn_reply_error(c, HTTP_ERROR_BLOCKED, c->x.acc.host,
	    "No pin set covers this host and unpinned hosts are blocked.");
}

/* Refuse a plaintext request to a port missing from plain_ports. */
static void
conn_port_denied(struct conn *c, uint16_t port)
{
	char	 why[64];

	snprintf(why, sizeof(why), "port %u not in plain_ports",
	    (unsigned int)port);
	phase_log_blocked(&c->x, c->x.acc.host, why);
	conn_reply_error(c, HTTP_ERROR_PLAIN_PORT_DENIED, c->x.acc.host,
	    "Plaintext requests to this port are not allowed (plain_ports).");
}

/*
 * Answer a request itself, where it never goes upstream: a request for
 * ca_host from the CA page (ca_page), or a TRACE or OPTIONS whose
 * Max-Forwards is 0, of which pinproxy is the final recipient (RFC 9110,
 * 7.6.2).
 */
static void
conn_answer_self(struct conn *c, const struct http_head *h, bool ca_page)
{
	struct evbuffer		*out = bufferevent_get_output(c->x.bev);
	size_t			 before = evbuffer_get_length(out);
	enum http_conn_token	 token;
	bool			 close;
	int			 status;

	/* A request body is not read: close after the answer instead. */
	close = c->x.closing || http_msg_state(c->x.req) != HTTP_MSG_DONE;
	/* An HTTP/1.0 client kept open is told so (RFC 9112, 9.3). */
	token = close ? HTTP_CONN_CLOSE : h->http_minor == 0 ?
	    HTTP_CONN_KEEP_ALIVE : HTTP_CONN_PERSIST;
	/* The CA of the generation this request runs under. */
	if (ca_page)
		status = capage_respond(ca_cert(c->x.rc->ca),
		    c->x.rc->conf->ca_host, h->method, h->path, token, out);
	else
		status = http_final_answer(h, token, out);
	c->x.acc.down += evbuffer_get_length(out) - before;
	phase_end(&c->x, status, close);
}

/*
 * A request starts: it runs under the current generation, not the one the
 * connection began under, so that a reload reaches keep-alive clients
 * (their address is checked against its allow_clients again). False when
 * the client was refused.
 */
static bool
conn_take_generation(struct conn *c)
{
	struct runconf	*cur = c->x.env->rc;

	if (cur == NULL || cur == c->x.rc)
		return true;
	runconf_unref(c->x.rc);
	c->x.rc = runconf_ref(cur);
	if (!conf_client_allowed(c->x.rc->conf, (struct sockaddr *)&c->ss)) {
		conn_deny(c);
		return false;
	}
	return true;
}

/*
 * In a CONNECT tunnel, a request must name the tunnel's host, so that a
 * tunnel opened to one host never carries a request for another (a pinned
 * one in cleartext, say). A tunnel opened by address takes the host of its
 * first request, as an interception takes the SNI. False: refused.
 */
static bool
conn_tunnel_host(struct conn *c)
{
	if (!c->tunnel_host_set) {
		free(c->tunnel_host);
		c->tunnel_host = xstrdup(c->x.acc.host);
		c->tunnel_host_set = true;
		return true;
	}
	if (strcmp(c->x.acc.host, c->tunnel_host) == 0)
		return true;
	/* A redirected client sent no CONNECT: its address stands for one. */
	if (c->x.transparent) {
		phase_log_blocked(&c->x, c->x.acc.host, "request host differs "
		    "from the host of the redirected connection");
		conn_reply_error(c, HTTP_ERROR_BAD_REQUEST, c->x.acc.host,
		    "A request on a redirected connection must name the "
		    "host it was sent to.");
		return false;
	}
	phase_log_blocked(&c->x, c->x.acc.host,
	    "request host differs from the CONNECT host");
	conn_reply_error(c, HTTP_ERROR_BAD_REQUEST, c->x.acc.host,
	    "A request in a CONNECT tunnel must name the CONNECT host.");
	return false;
}

/* A complete request head arrived: decide where it goes. */
static void
conn_request(struct conn *c)
{
	const struct http_head	*h = http_msg_head(c->x.req);
	const struct conf	*conf;
	struct forward_target	 t;
	char			 authority[HOSTMATCH_NAME_MAX];
	char			 host[HOSTMATCH_NAME_MAX];
	uint16_t		 port;
	bool			 back;

	evtimer_del(c->head_timer);
	if (!conn_take_generation(c))
		return;
	conf = c->x.rc->conf;
	/*
	 * Read during a stop behind an answer that kept the connection: the
	 * answer must say close, which a 200 to a CONNECT or a 101 cannot.
	 * (A connection's first request, which a client may have sent just
	 * before the stop, is served as ever: conn_stop_grace().)
	 */
	if (c->shutting_down && c->answered && (h->is_connect || h->upgrade)) {
		conn_reply_error(c, HTTP_ERROR_STOPPING, h->host, h->is_connect ?
		    "No tunnel is opened while pinproxy stops." :
		    "No protocol switch starts while pinproxy stops.");
		return;
	}
	if (h->is_connect && c->in_tunnel) {
		conn_reply_error(c, HTTP_ERROR_BAD_REQUEST, h->host,
		    "CONNECT inside a CONNECT tunnel is not allowed.");
		return;
	}
	/*
	 * A CONNECT has no content (RFC 9110, 9.3.6): bytes framed as its
	 * body would start the tunnel, where the guard of a blind tunnel
	 * judges the first line, and another hop may frame them otherwise.
	 */
	if (h->is_connect && (h->chunked || (h->has_content_length &&
	    h->content_length > 0))) {
		conn_reply_error(c, HTTP_ERROR_BAD_REQUEST, h->host,
		    "A CONNECT request has no body.");
		return;
	}
	if (h->is_connect) {
		/* Keep the authority; the rest of the head is done with. */
		xstrlcpy(authority, h->host, sizeof(authority));
		port = h->port;
		http_msg_trim(c->x.req);
		/* A keep-alive upstream of an earlier request goes back. */
		conn_phase_free(c);
		/*
		 * ca_host is pinproxy's own name: a tunnel to it (a client
		 * that sends http:// through CONNECT too) dials nothing and
		 * carries requests for the CA page.
		 */
		if (hostmatch_normalize(authority, strlen(authority), host,
		    sizeof(host)) && capage_is_host(conf->ca_host, host)) {
			/* connect_ports holds for the page's name too. */
			if (!conf_connect_port_allowed(conf, port)) {
				phase_log_blocked(&c->x, host, "port not in "
				    "connect_ports");
				conn_reply_error(c, HTTP_ERROR_PORT_DENIED, host,
				    "CONNECT to this port is not allowed "
				    "(connect_ports).");
				return;
			}
			bufferevent_write(c->x.bev, tunnel_established,
			    strlen(tunnel_established));
			conn_tunnel_plain(c, host, false, port);
			return;
		}
		tunnel_start(&c->x, authority, port);
		return;
	}
	if (h->absolute_form && strcmp(h->scheme, "http") != 0) {
		conn_reply_error(c, HTTP_ERROR_BAD_REQUEST, h->host,
		    "Only http:// URLs can be sent to the proxy; "
		    "use CONNECT for https.");
		return;
	}
	if (c->in_tunnel && h->host[0] == '\0')
		phase_set_host(&c->x, c->tunnel_host);
	else if (hostmatch_normalize(h->host, strlen(h->host), host,
	    sizeof(host)))
		phase_set_host(&c->x, host);
	else {
		conn_reply_error(c, HTTP_ERROR_BAD_REQUEST, NULL,
		    "The request names no valid host.");
		return;
	}
	if (c->in_tunnel && !conn_tunnel_host(c))
		return;
	if (!h->keep_alive)
		c->x.closing = true;
	if (capage_is_host(conf->ca_host, c->x.acc.host)) {
		conn_answer_self(c, h, true);
		return;
	}
	memset(&t, 0, sizeof(t));
	t.host = c->x.acc.host;
	t.port = h->port != 0 ? h->port : 80;
	/*
	 * In a tunnel, the CONNECT port: connect_ports allowed it, and must
	 * still, as a reload since may have taken it out.
	 */
	if (c->in_tunnel) {
		t.port = c->tunnel_port;
		if (!conf_connect_port_allowed(conf, t.port)) {
			phase_log_blocked(&c->x, c->x.acc.host, "port no longer "
			    "in connect_ports");
			conn_reply_error(c, HTTP_ERROR_PORT_DENIED,
			    c->x.acc.host, "The tunnel's port is no longer "
			    "allowed (connect_ports).");
			return;
		}
	}
	back = conn_came_back(c, h);
	if (back || phase_is_self(&c->x, c->x.acc.host, t.port)) {
		phase_log_blocked(&c->x, c->x.acc.host, back ?
		    "loop: the request already passed through pinproxy (Via)" :
		    "loop: the request is addressed to pinproxy itself");
		conn_reply_error(c, HTTP_ERROR_LOOP, c->x.acc.host,
		    "The request is addressed to the proxy itself.");
		return;
	}
	/* A pinned host is only ever reached over TLS, on its port. */
	if ((t.ps = conf_lookup(conf, c->x.acc.host)) != NULL) {
		t.tls = true;
		t.port = t.ps->port;
	} else if (conf->unpinned == UNPINNED_VERIFY) {
		t.tls = true;
		t.port = 443;
	} else if (conf->unpinned == UNPINNED_BLOCK) {
		conn_block(c);
		return;
	} else if (!c->in_tunnel && !conf_plain_port_allowed(conf, t.port)) {
		conn_port_denied(c, t.port);
		return;
	}
	/*
	 * What is not pinned, in a tunnel or a redirected connection opened
	 * to an address, goes to that address, as it would have without
	 * pinproxy: the Host header names the site, it does not choose the
	 * server (nor reach one the redirect rules would have kept the
	 * client from). In plaintext, or with unpinned = verify over TLS to
	 * its port 443, verified for the name the Host header gives.
	 */
	if (t.ps == NULL && c->tunnel_addr != NULL) {
		/* A reload since the CONNECT may have pinned the address. */
		if (conf_lookup(conf, c->tunnel_addr) != NULL) {
			phase_log_blocked(&c->x, c->x.acc.host, "the tunnel's "
			    "address is in a pin set since a reload");
			conn_reply_error(c, HTTP_ERROR_BAD_REQUEST,
			    c->x.acc.host, "The tunnel's address is now "
			    "pinned: a request in it must name a host of "
			    "its pin set.");
			return;
		}
		t.authority = t.host;
		t.host = c->tunnel_addr;
	}
	/*
	 * Of a request the rules above let through, pinproxy may be the
	 * final recipient: it answers without dialling. A refused one is
	 * refused as any other, so that an answer never tells a host or port
	 * is open that is not.
	 */
	if (http_max_forwards(h) == 0) {
		conn_answer_self(c, h, false);
		return;
	}
	/* The phase of the previous request serves this one too. */
	if (c->x.ops != &forward_ops) {
		conn_phase_free(c);
		forward_new(&c->x);
	}
	/* forward_start() says whether it connects or exchanges at once. */
	forward_start(c->x.phase, &t);
}

/* Feed the buffered client bytes to the head parser. */
static void
conn_read_head(struct conn *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->x.bev);
	struct evbuffer_iovec	 v;
	enum http_result	 r;
	size_t			 consumed;

	while (relay_peek(in, &v)) {
		if (!c->head_started) {
			/* Empty lines start no request: a stop closes then. */
			if ((consumed = conn_blank(v.iov_base, v.iov_len)) > 0) {
				evbuffer_drain(in, consumed);
				c->x.acc.up += consumed;
				continue;
			}
			/* The time of a request counts from its first byte. */
			c->head_started = true;
			c->used = true;
			monotime_tv(&c->x.acc.start);
			c->x.reroutes = 0;
		}
		r = http_msg_feed_head(c->x.req, v.iov_base, v.iov_len,
		    &consumed);
		evbuffer_drain(in, consumed);
		c->x.acc.up += consumed;
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
	/* A head begun before the client's end never completes. */
	if (c->client_eof)
		conn_close_after_flush(c);
	/* Empty lines alone during a stop: as if nothing had come. */
	else if (c->shutting_down && !c->head_started)
		conn_stop_idle(c);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	if (c->x.state == CONN_READ_HEAD) {
		if (!c->await_drain)
			conn_read_head(c);
	} else if (conn_in_phase(c))
		c->x.ops->on_client(c->x.phase, EV_READ);
}

/* The client drained: the phase goes on, or the close completes. */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	/*
	 * A callback queued under an older watermark may run while bytes
	 * are still queued: close only once the output is really empty.
	 */
	if (c->x.state == CONN_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_linger(c, false);
	} else if (c->x.state == CONN_READ_HEAD && c->await_drain) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) <=
		    RELAY_HIGH_WATER / 2)
			conn_await_head(c);
	} else if (conn_in_phase(c))
		c->x.ops->on_client(c->x.phase, EV_WRITE);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;

	/* A client that still takes bytes has not stalled. */
	if (phase_client_still_reading(&c->x, what))
		return;
	/*
	 * Once only the last answer is written, a read timeout means
	 * nothing: one armed for the exchange that ended can fire in the
	 * same turn as what ended it (the server's wait, say) and would
	 * reset the client before it read that answer. Nor does a bare
	 * EOF, read before and delivered after (deferred): a client that
	 * shut down its sending side still reads that answer.
	 */
	if (c->x.state == CONN_CLOSING &&
	    (what == (BEV_EVENT_TIMEOUT | BEV_EVENT_READING) ||
	    what == (BEV_EVENT_EOF | BEV_EVENT_READING)))
		return;
	/* A phase says what the client's leaving (or TLS) means to it. */
	if (conn_in_phase(c)) {
		c->x.ops->on_client(c->x.phase, what);
		return;
	}
	/*
	 * Between requests, a bare EOF is a client that shut down its
	 * sending side: the requests it sent whole are answered, what is
	 * queued for it written, then the connection closes. Deferred
	 * events arrive OR'ed together: an EOF with an error is a client
	 * that left.
	 */
	if (c->x.state == CONN_READ_HEAD &&
	    (what & ~BEV_EVENT_READING) == BEV_EVENT_EOF) {
		c->client_eof = true;
		bufferevent_disable(bev, EV_READ);
		if (!c->await_drain)
			conn_read_head(c);
		return;
	}
	conn_close(c);
}

static void
conn_head_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	struct timeval	 tv;
	long long	 left;

	if (c->x.state != CONN_READ_HEAD)
		return;
	if (!c->head_started) {
		/* An idle connection: close without a word, once flushed. */
		conn_close_after_flush(c);
		return;
	}
	/*
	 * A stop's grace cut the wait short (conn_stop_grace()): a head
	 * begun within it has header_timeout from its first byte, once.
	 */
	left = (long long)c->x.rc->conf->header_timeout_ms -
	    conn_ms_since(&c->x.acc.start);
	if (c->grace_cut && left > 0) {
		c->grace_cut = false;
		tv = cv_timeval((uint64_t)left);
		evtimer_add(c->head_timer, &tv);
		return;
	}
	conn_reply_error(c, HTTP_ERROR_HEADER_TIMEOUT, NULL,
	    "The request head did not arrive in time.");
}

/* Refuse a client outside allow_clients. */
static void
conn_deny(struct conn *c)
{
	phase_log_blocked(&c->x, "", "client not in allow_clients");
	bufferevent_enable(c->x.bev, EV_WRITE);
	conn_reply_error(c, HTTP_ERROR_CLIENT_DENIED, NULL,
	    "This client address is not allowed to use the proxy.");
}

/* Set up a connection for an accepted client (takes over fd). */
static struct conn *
conn_alloc(struct conn_env *env, evutil_socket_t fd,
    const struct sockaddr *sa, socklen_t salen)
{
	struct conn	*c;
	int		 one = 1;

	c = xcalloc(1, sizeof(*c));
	c->x.env = env;
	c->x.rc = runconf_ref(env->rc);
	if (salen > (socklen_t)sizeof(c->ss))
		salen = sizeof(c->ss);
	memcpy(&c->ss, sa, salen);
	c->x.id = conn_next_id++;
	c->x.state = CONN_READ_HEAD;
	monotime_tv(&c->due);
	cv_peer_text(sa, c->client, sizeof(c->client));
	c->x.client = c->client;
	c->x.client_read = conn_read_cb;
	c->x.client_write = conn_write_cb;
	c->x.client_event = conn_event_cb;
	c->x.done = conn_phase_done;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->x.fd = fd;
	c->x.bev = bufferevent_socket_new(env->base, fd,
	    BEV_OPT_DEFER_CALLBACKS);
	relay_tune(c->x.bev);
	c->x.req = http_msg_new(HTTP_DIR_REQUEST);
	c->head_timer = evtimer_new(env->base, conn_head_timeout_cb, c);
	TAILQ_INSERT_TAIL(&env->conns, c, entry);
	env->nconns++;
	metrics_inc(env->sinks.metrics, METRIC_CONNECTIONS_TOTAL);
	metrics_inc(env->sinks.metrics, METRIC_CONNECTIONS_ACTIVE);
	bufferevent_setcb(c->x.bev, conn_read_cb, conn_write_cb, conn_event_cb,
	    c);
	conn_begin_request(c);
	return c;
}

struct conn *
conn_new(struct conn_env *env, evutil_socket_t fd, const struct sockaddr *sa,
    socklen_t salen)
{
	struct conn	*c;

	c = conn_alloc(env, fd, sa, salen);
	if (!conf_client_allowed(c->x.rc->conf, sa))
		conn_deny(c);
	else
		conn_await_head(c);
	return c;
}

/*
 * Where a redirected client meant to go: the address before the kernel's
 * NAT (SO_ORIGINAL_DST, IP6T_SO_ORIGINAL_DST), else the socket's own local
 * address, which is the destination under tproxy and ours when nothing
 * redirected the connection. The normalised address (HOSTMATCH_NAME_MAX
 * bytes) and the port go to host, port.
 */
static bool
conn_original_dst(evutil_socket_t fd, struct sockaddr_storage *ss,
    char *host, uint16_t *port)
{
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	socklen_t		 len = sizeof(*ss);

	memset(ss, 0, sizeof(*ss));
	if (getsockname(fd, (struct sockaddr *)ss, &len) == -1)
		return false;
	len = sizeof(*ss);
	/* An IPv4 client of a dual-stack listener: IPv4's table knows it. */
	if (ss->ss_family == AF_INET || (ss->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)))
		getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, ss, &len);
	else
		getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, ss, &len);
	return hostport_sockaddr((struct sockaddr *)ss, host, port);
}

/* Refuse a redirected connection with a blocked line and a bare close. */
static void
conn_transparent_refuse(struct conn *c, const char *host,
    enum http_error_kind kind, const char *reason)
{
	phase_log_blocked(&c->x, host, reason);
	conn_reply_error(c, kind, host, reason);
}

struct conn *
conn_new_transparent(struct conn_env *env, evutil_socket_t fd,
    const struct sockaddr *sa, socklen_t salen)
{
	struct conn		*c;
	struct sockaddr_storage	 dst;
	char			 host[HOSTMATCH_NAME_MAX];
	uint16_t		 port = 0;

	c = conn_alloc(env, fd, sa, salen);
	c->x.transparent = true;
	/* No request head: the bytes are judged as after a CONNECT's 200. */
	phase_set_state(&c->x, CONN_DIAL);
	if (!conn_original_dst(fd, &dst, host, &port)) {
		conn_transparent_refuse(c, "", HTTP_ERROR_LOOP,
		    "no original destination");
		return c;
	}
	if (dialring_has(env->sinks.dials, sa, (struct sockaddr *)&dst)) {
		conn_transparent_refuse(c, host, HTTP_ERROR_LOOP, "loop: "
		    "pinproxy's own upstream connection was redirected back "
		    "(set upstream_mark and exempt it)");
		return c;
	}
	if (!conf_client_allowed(c->x.rc->conf, sa)) {
		conn_transparent_refuse(c, host, HTTP_ERROR_CLIENT_DENIED,
		    "client not in allow_clients");
		return c;
	}
	if (phase_is_self(&c->x, host, port)) {
		/* Not redirected, or redirected to pinproxy's own port. */
		conn_transparent_refuse(c, host, HTTP_ERROR_LOOP,
		    "loop: the original destination is pinproxy itself");
		return c;
	}
	tunnel_start(&c->x, host, port);
	return c;
}

void
conn_shutdown(struct conn *c)
{
	c->shutting_down = true;
	c->x.closing = true;
	if (c->x.state == CONN_READ_HEAD && !c->head_started)
		conn_stop_idle(c);
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

/*
 * Whether c is in the middle of an exchange or a tunnel: one whose access
 * line is still to be written. Between exchanges, and once the last
 * answer is out, it was written already.
 */
static bool
conn_mid_exchange(const struct conn *c)
{
	return c->x.state != CONN_READ_HEAD && c->x.state != CONN_CLOSING &&
	    c->x.state != CONN_LINGER;
}

/*
 * End c's exchange or tunnel now, cut short: its access line, with what
 * the relay moved and the status of what the client got (else fallback),
 * then a reset, as whatever the client got is incomplete; but a relay
 * whose server's end already reached the client closes in order (the
 * client has all of it, and the kernel may still hold some for it).
 * True when it was reset.
 */
static bool
conn_cut_short(struct conn *c, int fallback)
{
	struct phase_outcome	 o;
	bool			 whole = false;

	if (c->relay != NULL) {
		whole = relay_down_ended(c->relay);
		conn_relay_end(c);
	}
	phase_outcome_init(&o);
	o.status = c->x.acc.status;
	if (o.status == 0 && c->x.ops != NULL && c->x.ops->answered != NULL)
		o.status = c->x.ops->answered(c->x.phase);
	if (o.status == 0)
		o.status = fallback;
	o.cut = !whole;
	o.close = true;
	conn_phase_done(&c->x, &o);
	return !whole;
}

size_t
conn_close_all(struct conn_env *env)
{
	struct conn	*c;
	size_t		 cut = 0;
	bool		 clipped;

	/*
	 * shutdown_timeout passed: what is still under way is cut. The rest
	 * (and a relay whose server's end reached its client) close with a
	 * FIN, which cannot linger: what their clients sent is dropped.
	 */
	while ((c = TAILQ_FIRST(&env->conns)) != NULL) {
		if (conn_mid_exchange(c)) {
			cut += conn_cut_short(c, 503);
			continue;
		}
		/*
		 * An answer not all written yet is cut short too: conn_close()
		 * resets its client.
		 */
		clipped = c->x.bev != NULL && evbuffer_get_length(
		    bufferevent_get_output(c->x.bev)) > 0;
		/*
		 * A head under way: its request is cut short, but closed in
		 * order when nothing else is (a reset could drop the end of
		 * the answers before it that the kernel holds), and a close
		 * before any answer tells the client to send it again.
		 */
		if (c->x.state == CONN_READ_HEAD && c->head_started) {
			c->x.acc.status = 503;
			conn_log_access(c);
			clipped = true;
		}
		cut += clipped;
		linger_drain(c->x.fd);
		conn_close(c);
	}
	return cut;
}

/* The upstream TLS connection c relays to or its phase uses, or NULL. */
static SSL *
conn_upstream_tls(const struct conn *c)
{
	if (c->relay != NULL && relay_server_tls(c->relay) != NULL)
		return relay_server_tls(c->relay);
	if (c->x.ops != NULL && c->x.ops->upstream_tls != NULL)
		return c->x.ops->upstream_tls(c->x.phase);
	return NULL;
}

void
conn_recheck_all(struct conn_env *env)
{
	struct conn	*c, *next;

	for (c = TAILQ_FIRST(&env->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		/*
		 * Between exchanges an upstream kept for the next request
		 * is not used again: that request takes the new generation.
		 */
		if (!conn_mid_exchange(c))
			continue;
		if (c->x.rc != env->rc && upstream_denied_on_reload(
		    conn_upstream_tls(c), env->rc, c->client,
		    env->sinks.metrics))
			conn_cut_short(c, 502);
	}
}


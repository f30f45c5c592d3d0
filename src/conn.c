/*
 * The client connection state machine. A connection reads a request head
 * under header_timeout, decides where it goes (the policy of SPEC §3), and
 * hands it to the forward module (plaintext requests) or the tunnel module
 * (CONNECT); errors are answered here. Only conn_close() frees one.
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

#include "ca.h"
#include "capage.h"
#include "conn.h"
#include "forward.h"
#include "hostmatch.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "relay.h"
#include "tunnel.h"
#include "xmalloc.h"

static const char *const conn_state_names[CONN__STATES] = {
	[CONN_READ_HEAD] = "read_head",
	[CONN_CONNECTING] = "connecting",
	[CONN_EXCHANGE] = "exchange",
	[CONN_DIAL] = "dial",
	[CONN_AWAIT_HELLO] = "await_hello",
	[CONN_UPSTREAM_TLS] = "upstream_tls",
	[CONN_CLIENT_TLS] = "client_tls",
	[CONN_RELAY] = "relay",
	[CONN_CLOSING] = "closing",
};

struct conn {
	TAILQ_ENTRY(conn)	 entry;		/* in env->conns */
	struct conn_env		*env;
	struct runconf		*rc;		/* reference */
	unsigned long		 id;
	char			 client[CONF_ADDR_TEXT_MAX];
	struct sockaddr_storage	 ss;		/* the client's address */
	struct bufferevent	*bev;		/* the client; owns the fd */
	enum conn_state		 state;
	struct event		*head_timer;	/* header_timeout */
	struct http_msg		*req;
	struct forward		*fwd;
	struct relay		*relay;
	struct tunnel		*tunnel;	/* CONNECT in progress */
	bool			 shutting_down;
	bool			 transparent;	/* redirected, no CONNECT */

	/*
	 * Plaintext HTTP in a CONNECT tunnel: where every request goes. By
	 * address, the first request sets the host (tunnel_host_set).
	 */
	bool			 in_tunnel;
	bool			 tunnel_host_set;
	char			 tunnel_host[HOSTMATCH_NAME_MAX];
	uint16_t		 tunnel_port;

	/* The request in progress. */
	char			 host[HOSTMATCH_NAME_MAX];
	bool			 head_started;	/* a byte of the head came */
	bool			 close_after;	/* the client asked to close */
	int			 status;
	uint64_t		 bytes_up;
	uint64_t		 bytes_down;
	struct timeval		 start;
};

static unsigned long	 conn_next_id = 1;

static void	conn_read_head(struct conn *);
static void	conn_deny(struct conn *);
static void	conn_read_cb(struct bufferevent *, void *);
static void	conn_write_cb(struct bufferevent *, void *);
static void	conn_event_cb(struct bufferevent *, short, void *);

/* The states in which the forward module runs the exchange. */
static bool
conn_forwarding(const struct conn *c)
{
	return c->state == CONN_CONNECTING || c->state == CONN_EXCHANGE;
}

/* The states of a CONNECT (or redirected connection) before its relay. */
static bool
conn_tunnelling(const struct conn *c)
{
	return c->state == CONN_DIAL || c->state == CONN_AWAIT_HELLO ||
	    c->state == CONN_UPSTREAM_TLS || c->state == CONN_CLIENT_TLS;
}

void
conn_set_state(struct conn *c, enum conn_state st)
{
	struct logline	 l;

	if (c->state == st)
		return;
	log_begin(&l, EV_CONN_STATE);
	log_int(&l, LK_CONN, (long long)c->id);
	log_str(&l, LK_FROM, conn_state_names[c->state]);
	log_str(&l, LK_STATE, conn_state_names[st]);
	log_end(&l);
	c->state = st;
}

/* Milliseconds since the request started. */
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

	/* Whatever path it took, a redirected connection is "transparent". */
	if (c->transparent)
		mode = "transparent";
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

void
conn_close(struct conn *c)
{
	struct conn_env	*env = c->env;

	relay_free(c->relay);
	forward_free(c->fwd);
	tunnel_free(c->tunnel);
	bufferevent_free(c->bev);
	event_free(c->head_timer);
	http_msg_free(c->req);
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
	struct timeval	 tv = cv_timeval(c->rc->conf->header_timeout_ms);

	conn_set_state(c, CONN_CLOSING);
	/* The tunnel or relay may own the callbacks: take them back. */
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
	    c);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(c->bev, NULL, &tv);
	bufferevent_enable(c->bev, EV_WRITE);
	bufferevent_disable(c->bev, EV_READ);
	evtimer_del(c->head_timer);
	if (c->fwd != NULL)
		forward_release(c->fwd);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_close(c);
}

void
conn_reply_error(struct conn *c, enum http_error_kind kind, const char *host,
    const char *explanation)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	size_t		 before = evbuffer_get_length(out);

	/*
	 * A redirected client sent no request before its first bytes are
	 * judged: it expects TLS or its server's answer, never ours.
	 */
	if (!(c->transparent && conn_tunnelling(c)))
		http_error_write(out, kind, host, explanation);
	c->bytes_down += evbuffer_get_length(out) - before;
	conn_log_access(c, conn_tunnelling(c) ? "tunnel" : "plain",
	    host != NULL ? host : "", http_error_status(kind), c->bytes_up,
	    c->bytes_down);
	conn_close_after_flush(c);
}

/* Reset what belongs to one request. */
static void
conn_begin_request(struct conn *c)
{
	c->head_started = false;
	c->close_after = c->shutting_down;
	c->status = 0;
	c->bytes_up = 0;
	c->bytes_down = 0;
	c->host[0] = '\0';
	evutil_gettimeofday(&c->start, NULL);
}

/* Start waiting for the next request head. */
static void
conn_await_head(struct conn *c)
{
	struct timeval	 tv = cv_timeval(c->rc->conf->header_timeout_ms);

	if (c->shutting_down) {
		/* The last response may still be queued for the client. */
		conn_close_after_flush(c);
		return;
	}
	conn_set_state(c, CONN_READ_HEAD);
	conn_begin_request(c);
	http_msg_trim(c->req);
	evtimer_add(c->head_timer, &tv);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_enable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		conn_read_head(c);
}

void
conn_exchange_done(struct conn *c, int status, bool close)
{
	conn_log_access(c, "plain", c->host, status, c->bytes_up,
	    c->bytes_down);
	if (close || c->close_after) {
		conn_close_after_flush(c);
		return;
	}
	conn_await_head(c);
}

void
conn_finish(struct conn *c, int status)
{
	conn_log_access(c, "plain", c->host, status, c->bytes_up,
	    c->bytes_down);
	conn_close_after_flush(c);
}

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

void
conn_upgrade(struct conn *c, struct bufferevent *upstream, int status)
{
	c->status = status;
	conn_set_state(c, CONN_RELAY);
	c->relay = relay_new(c->env->base, c->bev, upstream,
	    c->rc->conf->idle_timeout_ms, conn_relay_done_cb, c);
}

bool
conn_is_self(const struct conn *c, const char *host, uint16_t port)
{
	struct conf_addr	 a;
	char			 text[CONF_ADDR_TEXT_MAX + 8], err[64];

	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	cv_hostport_text(host, port, text, sizeof(text));
	if (!cv_addr(text, &a, err, sizeof(err)))
		return false;
	return upstream_addr_is_self((const struct sockaddr *)&a.ss,
	    c->env->listen, c->env->nlisten);
}

/* Whether the request already passed through this proxy (its Via). */
static bool
conn_came_back(const struct conn *c, const struct http_head *h)
{
	size_t	 i;

	for (i = 0; i < h->nheaders; i++)
		if (strcasecmp(h->headers[i].name, "Via") == 0 &&
		    strstr(h->headers[i].value, c->env->via) != NULL)
			return true;
	return false;
}

/* Refuse an unpinned host under unpinned = block. */
static void
conn_block(struct conn *c)
{
	struct logline	 l;

	log_begin(&l, EV_BLOCKED);
	log_str(&l, LK_HOST, c->host);
	log_str(&l, LK_CLIENT, c->client);
	log_str(&l, LK_REASON, "unpinned host (unpinned = block)");
	log_end(&l);
	conn_reply_error(c, HTTP_ERROR_BLOCKED, c->host,
	    "No pin set covers this host and unpinned hosts are blocked.");
}

/* Refuse a plaintext request to a port missing from plain_ports. */
static void
conn_port_denied(struct conn *c, uint16_t port)
{
	struct logline	 l;
	char		 why[64];

	snprintf(why, sizeof(why), "port %u not in plain_ports",
	    (unsigned int)port);
	log_begin(&l, EV_BLOCKED);
	log_str(&l, LK_HOST, c->host);
	log_str(&l, LK_CLIENT, c->client);
	log_str(&l, LK_REASON, why);
	log_end(&l);
	conn_reply_error(c, HTTP_ERROR_PLAIN_PORT_DENIED, c->host,
	    "Plaintext requests to this port are not allowed (plain_ports).");
}

/* Answer a request for ca_host from the CA page: it never goes upstream. */
static void
conn_ca_page(struct conn *c, const struct http_head *h)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	size_t		 before = evbuffer_get_length(out);
	bool		 close;
	int		 status;

	/* A request body is not read: close after the answer instead. */
	close = c->close_after || http_msg_state(c->req) != HTTP_MSG_DONE;
	/* The CA of the generation this request runs under. */
	status = capage_respond(ca_cert(c->rc->ca), c->rc->conf->ca_host,
	    h->method, h->path, close, out);
	c->bytes_down += evbuffer_get_length(out) - before;
	conn_exchange_done(c, status, close);
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
	struct runconf	*cur = c->env->rc;

	if (cur == NULL || cur == c->rc)
		return true;
	runconf_unref(c->rc);
	c->rc = runconf_ref(cur);
	if (!conf_client_allowed(c->rc->conf, (struct sockaddr *)&c->ss)) {
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
	struct logline	 l;

	if (!c->tunnel_host_set) {
		xstrlcpy(c->tunnel_host, c->host, sizeof(c->tunnel_host));
		c->tunnel_host_set = true;
		return true;
	}
	if (strcmp(c->host, c->tunnel_host) == 0)
		return true;
	log_begin(&l, EV_BLOCKED);
	log_str(&l, LK_HOST, c->host);
	log_str(&l, LK_CLIENT, c->client);
	log_str(&l, LK_REASON, "request host differs from the CONNECT host");
	log_end(&l);
	conn_reply_error(c, HTTP_ERROR_BAD_REQUEST, c->host,
	    "A request in a CONNECT tunnel must name the CONNECT host.");
	return false;
}

/* A complete request head arrived: decide where it goes. */
static void
conn_request(struct conn *c)
{
	const struct http_head	*h = http_msg_head(c->req);
	const struct conf	*conf;
	struct forward_target	 t;
	char			 authority[HOSTMATCH_NAME_MAX];
	uint16_t		 port;

	evtimer_del(c->head_timer);
	if (!conn_take_generation(c))
		return;
	conf = c->rc->conf;
	if (h->is_connect && c->in_tunnel) {
		conn_reply_error(c, HTTP_ERROR_BAD_REQUEST, h->host,
		    "CONNECT inside a CONNECT tunnel is not allowed.");
		return;
	}
	if (h->is_connect) {
		conn_set_state(c, CONN_DIAL);
		/* Keep the authority; the rest of the head is done with. */
		xstrlcpy(authority, h->host, sizeof(authority));
		port = h->port;
		http_msg_trim(c->req);
		tunnel_start(c, authority, port);
		return;
	}
	if (h->absolute_form && strcmp(h->scheme, "http") != 0) {
		conn_reply_error(c, HTTP_ERROR_BAD_REQUEST, h->host,
		    "Only http:// URLs can be sent to the proxy; "
		    "use CONNECT for https.");
		return;
	}
	if (c->in_tunnel && h->host[0] == '\0')
		xstrlcpy(c->host, c->tunnel_host, sizeof(c->host));
	else if (!hostmatch_normalize(h->host, strlen(h->host), c->host,
	    sizeof(c->host))) {
		conn_reply_error(c, HTTP_ERROR_BAD_REQUEST, NULL,
		    "The request names no valid host.");
		return;
	}
	if (c->in_tunnel && !conn_tunnel_host(c))
		return;
	if (!h->keep_alive)
		c->close_after = true;
	if (capage_is_host(conf->ca_host, c->host)) {
		conn_ca_page(c, h);
		return;
	}
	memset(&t, 0, sizeof(t));
	t.host = c->host;
	t.port = h->port != 0 ? h->port : 80;
	/* In a tunnel, the CONNECT port, which connect_ports allowed. */
	if (c->in_tunnel)
		t.port = c->tunnel_port;
	if (conn_is_self(c, c->host, t.port) || conn_came_back(c, h)) {
		conn_reply_error(c, HTTP_ERROR_LOOP, c->host,
		    "The request is addressed to the proxy itself.");
		return;
	}
	/* A pinned host is only ever reached over TLS, on its port. */
	if ((t.ps = conf_lookup(conf, c->host)) != NULL) {
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
	/* forward_start() says whether it connects or exchanges at once. */
	if (c->fwd == NULL)
		c->fwd = forward_new(c);
	forward_start(c->fwd, &t);
}

/* Feed the buffered client bytes to the head parser. */
static void
conn_read_head(struct conn *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->bev);
	struct evbuffer_iovec	 v;
	enum http_result	 r;
	size_t			 consumed;

	while (relay_peek(in, &v)) {
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

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	if (c->state == CONN_READ_HEAD)
		conn_read_head(c);
	else if (conn_forwarding(c))
		forward_client_read(c->fwd);
}

/* The client drained: resume the upstream, or finish closing. */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	/*
	 * A callback queued under an older watermark may run while bytes
	 * are still queued: close only once the output is really empty.
	 */
	if (c->state == CONN_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_close(c);
	} else if (conn_forwarding(c))
		forward_client_drained(c->fwd);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;

	/* The client left or timed out; nothing more can reach it. */
	if (conn_forwarding(c))
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
		/* An idle connection: close without a word, once flushed. */
		conn_close_after_flush(c);
		return;
	}
	conn_reply_error(c, HTTP_ERROR_HEADER_TIMEOUT, NULL,
	    "The request head did not arrive in time.");
}

/* Refuse a client outside allow_clients. */
static void
conn_deny(struct conn *c)
{
	struct logline	 l;

	log_begin(&l, EV_BLOCKED);
	log_str(&l, LK_HOST, "");
	log_str(&l, LK_CLIENT, c->client);
	log_str(&l, LK_REASON, "client not in allow_clients");
	log_end(&l);
	bufferevent_enable(c->bev, EV_WRITE);
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
	c->env = env;
	c->rc = runconf_ref(env->rc);
	if (salen > (socklen_t)sizeof(c->ss))
		salen = sizeof(c->ss);
	memcpy(&c->ss, sa, salen);
	c->id = conn_next_id++;
	c->state = CONN_READ_HEAD;
	cv_sockaddr_text(sa, c->client, sizeof(c->client));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->bev = bufferevent_socket_new(env->base, fd,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	relay_tune(c->bev);
	c->req = http_msg_new(HTTP_DIR_REQUEST);
	c->head_timer = evtimer_new(env->base, conn_head_timeout_cb, c);
	TAILQ_INSERT_TAIL(&env->conns, c, entry);
	env->nconns++;
	metrics_inc(env->sinks.metrics, METRIC_CONNECTIONS_TOTAL);
	metrics_inc(env->sinks.metrics, METRIC_CONNECTIONS_ACTIVE);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
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
	if (!conf_client_allowed(c->rc->conf, sa))
		conn_deny(c);
	else
		conn_await_head(c);
	return c;
}

/*
 * Where a redirected client meant to go: the address before the kernel's
 * NAT (SO_ORIGINAL_DST, IP6T_SO_ORIGINAL_DST), else the socket's own local
 * address, which is the destination under tproxy and ours when nothing
 * redirected the connection. The address text and port go to host, port.
 */
static bool
conn_original_dst(evutil_socket_t fd, char *host, size_t hostlen,
    uint16_t *port)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return false;
	len = sizeof(ss);
	if (ss.ss_family == AF_INET)
		getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len);
	else
		getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len);
	if (ss.ss_family == AF_INET) {
		*port = ntohs(sin->sin_port);
		return inet_ntop(AF_INET, &sin->sin_addr, host,
		    (socklen_t)hostlen) != NULL;
	}
	if (ss.ss_family != AF_INET6)
		return false;
	*port = ntohs(sin6->sin6_port);
	return inet_ntop(AF_INET6, &sin6->sin6_addr, host,
	    (socklen_t)hostlen) != NULL;
}

/* Refuse a redirected connection with a blocked line and a bare close. */
static void
conn_transparent_refuse(struct conn *c, const char *host,
    enum http_error_kind kind, const char *reason)
{
	struct logline	 l;

	log_begin(&l, EV_BLOCKED);
	log_str(&l, LK_HOST, host);
	log_str(&l, LK_CLIENT, c->client);
	log_str(&l, LK_REASON, reason);
	log_end(&l);
	conn_reply_error(c, kind, host, reason);
}

struct conn *
conn_new_transparent(struct conn_env *env, evutil_socket_t fd,
    const struct sockaddr *sa, socklen_t salen)
{
	struct conn	*c;
	char		 host[INET6_ADDRSTRLEN];
	uint16_t	 port = 0;

	c = conn_alloc(env, fd, sa, salen);
	c->transparent = true;
	/* No request head: the bytes are judged as after a CONNECT's 200. */
	conn_set_state(c, CONN_DIAL);
	if (!conn_original_dst(fd, host, sizeof(host), &port)) {
		conn_transparent_refuse(c, "", HTTP_ERROR_LOOP,
		    "no original destination");
		return c;
	}
	if (!conf_client_allowed(c->rc->conf, sa)) {
		conn_transparent_refuse(c, host, HTTP_ERROR_CLIENT_DENIED,
		    "client not in allow_clients");
		return c;
	}
	if (conn_is_self(c, host, port)) {
		/* Not redirected, or redirected to pinproxy's own port. */
		conn_transparent_refuse(c, host, HTTP_ERROR_LOOP,
		    "loop: the original destination is pinproxy itself");
		return c;
	}
	tunnel_start(c, host, port);
	return c;
}

bool
conn_is_transparent(const struct conn *c)
{
	return c->transparent;
}

void
conn_shutdown(struct conn *c)
{
	c->shutting_down = true;
	c->close_after = true;
	/* Idle between requests: close once the last response is out. */
	if (c->state == CONN_READ_HEAD && !c->head_started)
		conn_close_after_flush(c);
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
conn_count(struct conn *c, uint64_t up, uint64_t down)
{
	c->bytes_up += up;
	c->bytes_down += down;
}

bool
conn_closing(const struct conn *c)
{
	return c->close_after || c->shutting_down;
}

struct http_msg *
conn_request_msg(struct conn *c)
{
	return c->req;
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
conn_tunnel_plain(struct conn *c, const char *host, bool by_ip,
    uint16_t port)
{
	/* host may be the tunnel's: copy it before freeing the tunnel. */
	xstrlcpy(c->tunnel_host, host, sizeof(c->tunnel_host));
	c->tunnel_host_set = !by_ip;
	c->tunnel_port = port;
	c->in_tunnel = true;
	tunnel_free(c->tunnel);
	c->tunnel = NULL;
	/* A fresh parser: the last one stopped after the CONNECT. */
	http_msg_free(c->req);
	c->req = http_msg_new(HTTP_DIR_REQUEST);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
	    c);
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	bufferevent_enable(c->bev, EV_WRITE);
	conn_await_head(c);
}

void
conn_tunnel_done(struct conn *c, const char *mode, const char *host,
    int status, uint64_t up, uint64_t down)
{
	conn_log_access(c, mode, host, status, up, down);
	conn_close_after_flush(c);
}

/*
 * CONNECT, in the order SPEC §3 gives: port check, TCP to the target
 * (failures answered over HTTP), the bare 200, the ClientHello read
 * without consuming it, and the policy for the host name. Then a blind
 * tunnel (a relay the connection runs), plaintext HTTP in the tunnel (the
 * connection reads requests again), or interception (intercept.c), which
 * takes over the upstream. Every refusal after the 200 is a fatal TLS
 * alert; nothing is relayed. The upstream is watched meanwhile: its close
 * ends the client at once. Its first bytes (a server-first protocol's
 * banner), where the client's would get a blind tunnel (a CONNECT by
 * name), are pumped to the client, one way, while the client's first
 * flight is still awaited and judged: only a blind verdict on it starts
 * the relay. Otherwise they wait in its socket for the client's verdict.
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/socket.h>

#include <event2/buffer.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alpnguess.h"
#include "clienthello.h"
#include "hostmatch.h"
#include "http.h"
#include "intercept.h"
#include "log.h"
#include "relay.h"
#include "reqguard.h"
#include "sockprog.h"
#include "sockwatch.h"
#include "tunnel.h"
#include "upstream.h"
#include "xmalloc.h"

const char tunnel_established[] =
    "HTTP/1.1 200 Connection established\r\n\r\n";

struct tunnel {
	struct phase_ctx	*x;		/* the connection's */
	const struct conf	*conf;		/* borrowed from x->rc */
	char			 connect_host[HOSTMATCH_NAME_MAX];
	bool			 connect_by_ip;
	const struct pinset	*connect_ps;	/* the CONNECT host's set */
	uint16_t		 port;
	char			 host[HOSTMATCH_NAME_MAX];	/* the name used */
	const struct pinset	*ps;
	bool			 by_address;	/* ps covers the address only */
	struct upstream		*up;
	/* header_timeout; idle_timeout once the upstream spoke first */
	struct event		*timer;
	struct clienthello	 hello;
	/*
	 * When nothing followed the CONNECT head, the hello is read with
	 * MSG_PEEK and stays in the socket; else the bufferevent holds it.
	 */
	struct event		*peek_ev;
	unsigned char		*peek_buf;	/* CLIENTHELLO_MAX_INPUT */
	bool			 peeked;	/* the hello is in the socket */
	bool			 said_200;	/* sent or queued */
	size_t			 peek_len;
	/*
	 * The upstream's socket until a verdict, edge-triggered: bytes it
	 * sends stay there, and wake us once per arrival, not in a loop.
	 */
	struct event		*up_ev;
	bool			 up_spoke;	/* its bytes wait in its socket */
	/* The client's socket while the target is dialled (see below). */
	struct event		*dial_ev;
	/*
	 * The upstream spoke first and its bytes are pumped to the client
	 * (upstream_bev() reads them) while the client's first flight, read
	 * into its bufferevent, is awaited: only a blind tunnel may follow.
	 */
	bool			 server_first;
	bool			 not_tls;	/* the first bytes said so */
};

/*
 * What came first after the 200 and is judged: the client's TLS
 * ClientHello, its HTTP request, other bytes of its, or the upstream's
 * bytes while the client was silent.
 */
enum tunnel_first {
	TUNNEL_FIRST_TLS,
	TUNNEL_FIRST_HTTP,
	TUNNEL_FIRST_OTHER,
	TUNNEL_FIRST_UPSTREAM
};

/* Stop peeking at the socket; the hello stays there for whoever reads. */
static void
tunnel_peek_done(struct tunnel *t)
{
	sockwatch_free(&t->peek_ev);
	free(t->peek_buf);
	t->peek_buf = NULL;
}

/* A verdict: stop watching the upstream, which is freed or handed on. */
static void
tunnel_unwatch(struct tunnel *t)
{
	sockwatch_free(&t->up_ev);
	sockwatch_free(&t->dial_ev);
}

/*
 * Stop looking at either socket; a peeked hello stays in the client's,
 * for whoever reads next.
 */
static void
tunnel_settle(struct tunnel *t)
{
	tunnel_unwatch(t);
	tunnel_peek_done(t);
	t->peeked = false;
}

/*
 * (Re)start the wait for the client's first flight: header_timeout, or,
 * once the upstream spoke first, idle_timeout, as in a relay: a client of
 * a server-first protocol may rightly stay silent (a person typing).
 */
static void
tunnel_arm(struct tunnel *t)
{
	struct timeval	 tv = cv_timeval(t->server_first ?
	    t->conf->idle_timeout_ms : t->conf->header_timeout_ms);

	evtimer_add(t->timer, &tv);
}

/* End the client's handshake with a fatal alert and close after it. */
static void
tunnel_refuse(struct tunnel *t, unsigned char alert, int status)
{
	size_t	 peeked = t->peeked ? t->peek_len : 0;

	tunnel_unwatch(t);
	t->peeked = false;
	evtimer_del(t->timer);
	intercept_alert(t->x, alert, status, peeked);
}

/* The client left, or sent something that is not judged: end quietly. */
static void
tunnel_end(struct tunnel *t, int status)
{
	tunnel_settle(t);
	phase_end(t->x, status, true);
}

/*
 * Whether data starts like git's request of the git:// protocol, a
 * pkt-line such as "0032git-upload-pack /repo\0host=...\0" (four hex
 * digits giving its length), after which git waits for its server.
 */
static bool
tunnel_is_git(const unsigned char *data, size_t len)
{
	size_t	 i;

	if (len < 8 || memcmp(data + 4, "git-", 4) != 0)
		return false;
	for (i = 0; i < 4; i++)
		if (!((data[i] >= '0' && data[i] <= '9') ||
		    (data[i] >= 'a' && data[i] <= 'f')))
			return false;
	return true;
}

/*
 * Whether the first line, as far as data holds it, names "HTTP/" at the
 * start of a word, where servers read a version.
 */
static bool
tunnel_names_version(const unsigned char *data, size_t len)
{
	size_t	 i;

	for (i = 0; i < len && data[i] != '\n'; i++)
		if ((i == 0 || http_is_split_space(data[i - 1])) &&
		    len - i >= 5 &&
		    strncasecmp((const char *)data + i, "HTTP/", 5) == 0)
			return true;
	return false;
}

/*
 * Whether the first bytes after the 200 (or after what an upstream that
 * speaks first said) start an HTTP/1.x request: 1 yes, 0 no, -1 too few
 * bytes to tell. Servers differ in what they take for a request line
 * (RFC 9112 lets them split it on any whitespace, and skip empty lines
 * before it; lenient ones take any word for a method, control bytes
 * included), so the test is loose: a first line that names "HTTP/" in any
 * case at the start of a word (where servers read a version; "/pub/http/"
 * in git's request is none); after any whitespace, a method of token
 * characters (RFC 9110: "M-SEARCH" as well as "GET") and whitespace,
 * until the line's end or REQGUARD_LINE_MAX; or "GET" and whitespace, with or without a
 * version (some servers read headers after an HTTP/0.9 line too). A
 * first word with another byte is no request (a binary protocol), nor is
 * a whole first line that names no version (SSH's "SSH-2.0-..." banner,
 * SMTP's "EHLO host", memcached's "get key"): without a version, a server
 * reads no header, so no request in it can name a host; nor is git's
 * request, which has no line end. Every blind tunnel is then guarded
 * (relay_guard_line(), reqguard.h), so that a request completed in a
 * later segment, or one after a ClientHello, still refuses it.
 */
static int
tunnel_is_http(const unsigned char *data, size_t len)
{
	const int	 more = len >= REQGUARD_LINE_MAX ? 1 : -1;
	size_t		 i = 0, start;

	if (len > REQGUARD_LINE_MAX)
		len = REQGUARD_LINE_MAX;
	while (i < len && http_is_split_space(data[i]))
		i++;
	if (tunnel_names_version(data + i, len - i))
		return 1;
	if (tunnel_is_git(data + i, len - i))
		return 0;
	for (start = i; i < len && http_is_tchar(data[i]); i++)
		continue;
	if (i == len)
		return more;
	if (i == start || !http_is_split_space(data[i]))
		return 0;
	if (i - start == 3 && memcmp(data + start, "GET", 3) == 0)
		return 1;
	return memchr(data + i, '\n', len - i) != NULL ? 0 : more;
}

/*
 * Whether data starts with a PROXY protocol header (version 1's "PROXY ",
 * version 2's binary signature): 1 yes, 0 no, -1 too few bytes to tell.
 * A server that takes one from its clients reads the ClientHello behind
 * it, which the tunnel's look at the first bytes would not see.
 */
static int
tunnel_is_proxy_header(const unsigned char *data, size_t len)
{
	static const struct {
		const char	*sig;
		size_t		 len;
	} sigs[] = {
		{ "PROXY ", 6 },
		{ "\r\n\r\n\0\r\nQUIT\n", 12 },
	};
	size_t	 i, n;
	int	 r = 0;

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		n = len < sigs[i].len ? len : sigs[i].len;
		if (memcmp(data, sigs[i].sig, n) != 0)
			continue;
		if (n == sigs[i].len)
			return 1;
		r = -1;
	}
	return r;
}

/*
 * Plaintext HTTP in the tunnel: the connection reads requests again, as a
 * plaintext proxy connection bound to the CONNECT host and port. The
 * tunnel, its upstream TCP connection included, is freed then: nothing of
 * it may be touched after this.
 */
static void
tunnel_plain(struct tunnel *t)
{
	struct phase_outcome	 o;

	tunnel_unwatch(t);
	if (t->peeked) {
		/* The request stays in the socket, for the connection. */
		tunnel_peek_done(t);
		t->peeked = false;
	}
	log_msg(EV_DEBUG, "client %s: plaintext HTTP in the CONNECT tunnel "
	    "to %s:%u", t->x->client, t->connect_host, (unsigned int)t->port);
	phase_outcome_init(&o);
	o.next = PHASE_NEXT_PLAIN;
	o.plain_host = t->connect_host;
	/* An address covered by a pin set binds the tunnel to itself. */
	o.plain_by_ip = t->connect_by_ip && t->connect_ps == NULL;
	o.plain_port = t->port;
	phase_done(t->x, &o);
}

/*
 * The pin set for the host name: the SNI's, or, for a CONNECT by address,
 * the address's when it has one and the SNI names an unpinned host, so
 * that a name never unpins a pinned address (its pins apply, its ca_file
 * does not: a private CA vouches for its set's hosts only). An address and
 * a name pinned by different sets are refused. False: refused.
 */
static bool
tunnel_pinset(struct tunnel *t)
{
	const struct pinset	*by_addr;

	t->ps = conf_lookup(t->conf, t->host);
	by_addr = t->connect_by_ip ? t->connect_ps : NULL;
	if (by_addr == NULL || by_addr == t->ps)
		return true;
	if (t->ps != NULL) {
		phase_log_blocked(t->x, t->host, "SNI and CONNECT address are "
		    "covered by different pin sets");
		tunnel_refuse(t, INTERCEPT_ALERT_ACCESS_DENIED, 403);
		return false;
	}
	t->ps = by_addr;
	t->by_address = true;
	return true;
}

/* Hand the upstream and the hello over to interception. */
static void
tunnel_intercept(struct tunnel *t)
{
	struct intercept_args	 a;
	struct phase_outcome	 o;

	evtimer_del(t->timer);
	tunnel_unwatch(t);
	tunnel_peek_done(t);
	memset(&a, 0, sizeof(a));
	a.up = t->up;
	a.ps = t->ps;
	a.by_address = t->by_address;
	a.host = t->host;
	a.port = t->port;
	a.alpn = t->hello.alpn;
	a.alpn_len = t->hello.alpn_len;
	a.peeked = t->peeked ? t->peek_len : 0;
	t->up = NULL;
	t->peeked = false;
	phase_outcome_init(&o);
	o.next = PHASE_NEXT_INTERCEPT;
	o.intercept = &a;
	phase_done(t->x, &o);
}

/*
 * A blind tunnel: what either side sent first stays in its socket (or
 * the client's bufferevent), for the relay to read; what the upstream
 * sent first and the client has not received yet is in the client's
 * output or the upstream's input, which the relay sends first, in order.
 */
static void
tunnel_blind(struct tunnel *t, enum tunnel_first first)
{
	tunnel_settle(t);
	evtimer_del(t->timer);
	if (!t->server_first)
		upstream_start_plain(t->up);
	/*
	 * Its start is looked at: a ClientHello too may hide a request; and
	 * after a ClientHello, a second one (after the server's retry
	 * request) may not name another server than the one judged here.
	 */
	phase_relay(t->x, upstream_bev(t->up), 200, true,
	    first == TUNNEL_FIRST_TLS && !t->server_first ? &t->hello : NULL);
}

/* Read the client's first flight into its bufferevent, up to a hello. */
static void
tunnel_read_client(struct tunnel *t)
{
	struct bufferevent	*bev = t->x->bev;

	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_setwatermark(bev, EV_READ, 0, CLIENTHELLO_MAX_INPUT + 1);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/*
 * The upstream spoke first where the client's bytes would get a blind
 * tunnel: pump its bytes to the client from now on, and read the client's
 * first flight from its bufferevent rather than peek at it (only a blind
 * tunnel or a refusal may follow, and neither needs it in the socket; an
 * edge-triggered peek must not share the socket with the bufferevent's
 * level-triggered writes either).
 */
static void
tunnel_server_first(struct tunnel *t)
{
	struct bufferevent	*up;

	tunnel_settle(t);
	t->server_first = true;
	upstream_start_plain(t->up);
	up = upstream_bev(t->up);
	phase_watch_upstream(t->x, up);
	bufferevent_enable(up, EV_READ);
	tunnel_read_client(t);
	tunnel_arm(t);
	log_msg(EV_DEBUG, "client %s: relaying the upstream's bytes for "
	    "%s:%u while the client's first bytes are awaited",
	    t->x->client, t->connect_host, (unsigned int)t->port);
}

/*
 * A reload came between the CONNECT (or the redirected connection) and
 * its first bytes: the tunnel was set up under the old configuration,
 * whose pins, deny pins and kept sessions no longer apply, and is not
 * judged again under the new one. The client connects again.
 */
static void
tunnel_reloaded(struct tunnel *t, enum tunnel_first first)
{
	phase_log_blocked(t->x, t->connect_host, "tunnel set up before a "
	    "reload, first bytes after it: connect again");
	if (first == TUNNEL_FIRST_TLS)
		tunnel_refuse(t, INTERCEPT_ALERT_HANDSHAKE_FAILURE, 503);
	else
		tunnel_end(t, 503);
}

/*
 * What came first decides. The upstream's bytes are judged as client
 * bytes of neither TLS nor HTTP would be, but may only decide that they
 * be pumped to the client (tunnel_server_first), and only for a CONNECT
 * by name: for an address the SNI to come may name a pinned host. The
 * client's first flight is judged all the same then, and anything but a
 * blind tunnel refuses it, so that an upstream cannot choose blind
 * relaying by speaking first. False: no verdict yet (the upstream's bytes
 * wait).
 */
static bool
tunnel_decide(struct tunnel *t, enum tunnel_first first)
{
	const struct conf	*conf = t->conf;
	struct phase_ctx	*x = t->x;

	if (first == TUNNEL_FIRST_UPSTREAM && t->connect_by_ip)
		return false;
	/* Plaintext requests each take the current generation. */
	if (first != TUNNEL_FIRST_HTTP && x->rc->retired) {
		tunnel_reloaded(t, first);
		return true;
	}
	/* The cap on buffered bytes was for the hello only. */
	if (first != TUNNEL_FIRST_UPSTREAM)
		bufferevent_setwatermark(x->bev, EV_READ, 0, 0);
	/*
	 * Before any blind tunnel: a request in it must not reach a pinned
	 * host in cleartext by naming it in its Host header.
	 */
	if (first == TUNNEL_FIRST_HTTP && !t->server_first) {
		tunnel_plain(t);
		return true;
	}
	if (first == TUNNEL_FIRST_TLS && t->hello.sni_len > 0) {
		if (!hostmatch_normalize(t->hello.sni, t->hello.sni_len,
		    t->host, sizeof(t->host))) {
			tunnel_refuse(t, INTERCEPT_ALERT_UNRECOGNIZED_NAME, 400);
			return true;
		}
		if (!t->connect_by_ip &&
		    strcmp(t->host, t->connect_host) != 0) {
			char	 why[HOSTMATCH_NAME_MAX + 48];

			/* The host asked for; the name, never looked up. */
			snprintf(why, sizeof(why), "SNI %s differs from the "
			    "CONNECT host", t->host);
			phase_log_blocked(x, t->connect_host, why);
			tunnel_refuse(t, INTERCEPT_ALERT_UNRECOGNIZED_NAME, 403);
			return true;
		}
		phase_set_host(x, t->host);
	} else
		xstrlcpy(t->host, t->connect_host, sizeof(t->host));

	/* Refuses only for an address, so never for the upstream's bytes. */
	if (!tunnel_pinset(t))
		return true;
	if (t->ps == NULL && conf->unpinned == UNPINNED_PASS &&
	    first != TUNNEL_FIRST_HTTP) {
		if (first == TUNNEL_FIRST_UPSTREAM)
			tunnel_server_first(t);
		else
			tunnel_blind(t, first);
		return true;
	}
	if (first == TUNNEL_FIRST_UPSTREAM)
		return false;
	if (t->server_first) {
		/* What the upstream sent first left already: blind or none. */
		if (first != TUNNEL_FIRST_TLS) {
			phase_log_blocked(x, t->host, "plaintext HTTP after "
			    "the upstream spoke first");
			tunnel_end(t, 403);
			return true;
		}
		phase_log_blocked(x, t->host, "a ClientHello that would not "
		    "get a blind tunnel, after the upstream spoke first");
		tunnel_refuse(t, INTERCEPT_ALERT_ACCESS_DENIED, 403);
		return true;
	}
	if (t->ps == NULL && conf->unpinned == UNPINNED_BLOCK) {
		phase_log_blocked(x, t->host, "unpinned host "
		    "(unpinned = block)");
		tunnel_refuse(t, INTERCEPT_ALERT_ACCESS_DENIED, 403);
		return true;
	}
	if (first != TUNNEL_FIRST_TLS) {
		phase_log_blocked(x, t->host, "not a TLS ClientHello");
		tunnel_end(t, 400);
		return true;
	}
	tunnel_intercept(t);
	return true;
}

/*
 * The client's ClientHello cannot be read (r): said at warn level, as a
 * client's failed handshake is, and as often (the access line says only
 * status=400).
 */
static void
tunnel_bad_hello(const struct tunnel *t, enum clienthello_result r)
{
	log_msg(EV_DEBUG, "client %s: bad ClientHello (%s)", t->x->client,
	    clienthello_result_name(r));
	intercept_log_tls_failed(t->x->env->intercept, t->x->client,
	    t->connect_host, "none", r == CH_MALFORMED ? "its ClientHello is "
	    "malformed" : "its ClientHello is larger than pinproxy reads",
	    NULL);
}

/*
 * Judge the len bytes the client sent so far after the 200. False when
 * they are too few for a verdict; true when one was reached (the tunnel
 * may be gone).
 */
static bool
tunnel_hello(struct tunnel *t, const unsigned char *data, size_t len)
{
	enum clienthello_result	 r;
	int			 http = 0;

	r = clienthello_parse(data, len, &t->hello);
	/* (A server that spoke first is no TLS server: the guard judges.) */
	if (r == CH_NOT_TLS && !t->server_first) {
		switch (tunnel_is_proxy_header(data, len)) {
		case -1:
			if (len < CLIENTHELLO_MAX_INPUT) {
				t->not_tls = true;
				return false;
			}
			break;
		case 1:
			phase_log_blocked(t->x, t->connect_host, "a PROXY "
			    "protocol header from the client");
			tunnel_end(t, 400);
			return true;
		}
	}
	if (r == CH_NOT_TLS && (http = tunnel_is_http(data, len)) == -1) {
		t->not_tls = true;
		return false;
	}
	/* A verdict on the hello: stop looking at the socket. */
	if (r != CH_NEED_MORE || len >= CLIENTHELLO_MAX_INPUT)
		tunnel_peek_done(t);
	switch (r) {
	case CH_NEED_MORE:
		if (len < CLIENTHELLO_MAX_INPUT)
			return false;
		/* FALLTHROUGH */
	case CH_TOO_LARGE:
	case CH_MALFORMED:
		tunnel_bad_hello(t, r);
		tunnel_refuse(t, INTERCEPT_ALERT_HANDSHAKE_FAILURE, 400);
		return true;
	case CH_NOT_TLS:
		(void)tunnel_decide(t, http == 1 ? TUNNEL_FIRST_HTTP :
		    TUNNEL_FIRST_OTHER);
		return true;
	case CH_OK:
		(void)tunnel_decide(t, TUNNEL_FIRST_TLS);
		return true;
	}
	return true;
}

/* Look at the hello buffered by the client's bufferevent. */
static void
tunnel_read_hello(struct tunnel *t)
{
	struct evbuffer	*in = bufferevent_get_input(t->x->bev);
	size_t		 len;

	len = evbuffer_get_length(in);
	if (len > CLIENTHELLO_MAX_INPUT)
		len = CLIENTHELLO_MAX_INPUT;
	/* After the upstream's first bytes, any traffic counts as activity. */
	if (t->server_first)
		tunnel_arm(t);
	/* Too few bytes yet for the hello's announced lengths. */
	if (len < t->hello.need && len < CLIENTHELLO_MAX_INPUT)
		return;
	if (t->not_tls && len > REQGUARD_LINE_MAX)
		len = REQGUARD_LINE_MAX;
	(void)tunnel_hello(t, evbuffer_pullup(in, (ev_ssize_t)len), len);
}

/*
 * Look at the hello in the socket without taking it. False while it is
 * too short for a verdict; true once one was reached (the tunnel may be
 * gone).
 */
static bool
tunnel_peek(struct tunnel *t)
{
	evutil_socket_t	 fd = bufferevent_getfd(t->x->bev);
	ssize_t		 n;
	int		 queued;

	/*
	 * Too few bytes yet for the hello's announced lengths: no copy, no
	 * parse (a hello sent a byte at a time is gathered a few dozen
	 * times, not once a byte).
	 */
	if (t->hello.need > 0 && ioctl(fd, FIONREAD, &queued) == 0 &&
	    queued >= 0 && (size_t)queued < t->hello.need &&
	    (size_t)queued < CLIENTHELLO_MAX_INPUT)
		return false;
	n = recv(fd, t->peek_buf, t->not_tls ? REQGUARD_LINE_MAX :
	    CLIENTHELLO_MAX_INPUT, MSG_PEEK);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return false;
	if (n <= 0) {
		/* The client left before its hello was complete. */
		tunnel_end(t, 200);
		return true;
	}
	t->peek_len = (size_t)n;
	return tunnel_hello(t, t->peek_buf, (size_t)n);
}

/*
 * While the target is dialled the client's reading is off. A reset, or
 * a close with nothing sent after the CONNECT head (a client that gave
 * up), ends the tunnel at once: the lookup and the dial go with it, and
 * its slot is free, not held until connect_timeout. A close after bytes
 * (a half-close behind a pipelined hello) waits for the verdict.
 */
static void
tunnel_dial_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tunnel	*t = arg;

	if (phase_client_left(t->x, what, 0)) {
		log_msg(EV_DEBUG, "client %s left while %s was dialled",
		    t->x->client, t->connect_host);
		tunnel_end(t, 0);
	}
}

/*
 * Watch the client's socket during the dial, edge-triggered: bytes that
 * arrive wake it once, not in a loop. Not while the bufferevent still
 * writes an earlier answer (the CONNECT was pipelined behind it): libevent
 * would make its writing edge-triggered too, and it writes a few KiB per
 * wake-up. Without the watch, the dial's own timeout ends it.
 */
static void
tunnel_watch_dial(struct tunnel *t)
{
	if (evbuffer_get_length(bufferevent_get_output(t->x->bev)) > 0)
		return;
	t->dial_ev = sockwatch_new(t->x->env->base, t->x->fd,
	    tunnel_dial_watch_cb, t);
}

/* New bytes arrived (edge-triggered: peeked bytes do not re-fire). */
static void
tunnel_peek_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tunnel	*t = arg;

	/*
	 * Bytes and then the client's end (a half-close): what came is
	 * judged as ever, and the relay passes the end on; bytes still too
	 * few for a verdict never will be, and the tunnel ends. A reset
	 * comes as a plain wake-up (libevent says EV_READ, not EV_CLOSED),
	 * and this edge-triggered event will not fire again: it ends the
	 * tunnel too.
	 */
	if (!tunnel_peek(t) && ((what & EV_CLOSED) || sockprog_failed(fd)))
		tunnel_end(t, 200);
}

/*
 * Send the bare 200 on a fresh socket, none to a redirected client, which
 * was never asked anything. False: what did not fit is queued in bev.
 */
static bool
tunnel_send_established(struct tunnel *t, struct bufferevent *bev)
{
	const size_t	 len = sizeof(tunnel_established) - 1;
	ssize_t		 n;

	if (t->x->transparent)
		return true;
	t->said_200 = true;
	n = send(bufferevent_getfd(bev), tunnel_established, len,
	    MSG_NOSIGNAL);
	if (n == (ssize_t)len)
		return true;
	/* A fresh socket takes 39 bytes; if not, write the rest. */
	bufferevent_write(bev, tunnel_established + (n > 0 ? n : 0),
	    len - (n > 0 ? (size_t)n : 0));
	return false;
}

/*
 * Send the bare 200 and wait for the hello in the socket. False when the
 * client already sent more than the CONNECT head, which the bufferevent
 * then holds: those bytes are judged from there instead.
 */
static bool
tunnel_start_peeking(struct tunnel *t)
{
	struct bufferevent	*bev = t->x->bev;
	evutil_socket_t		 fd = bufferevent_getfd(bev);

	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0 ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return false;
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	if (!tunnel_send_established(t, bev))
		return false;
	t->peek_buf = xmalloc(CLIENTHELLO_MAX_INPUT);
	t->peeked = true;
	t->peek_ev = sockwatch_new(t->x->env->base, fd, tunnel_peek_cb, t);
	return true;
}

/*
 * Whether the client sent nothing after the 200 yet: nothing buffered,
 * nothing unread in its socket.
 */
static bool
tunnel_client_silent(struct tunnel *t)
{
	char	 c;

	if (evbuffer_get_length(bufferevent_get_input(t->x->bev)) > 0)
		return false;
	return recv(bufferevent_getfd(t->x->bev), &c, 1,
	    MSG_PEEK | MSG_DONTWAIT) == -1 && errno == EAGAIN;
}

/* The upstream closed or failed before a verdict: the client ends, 502. */
static void
tunnel_upstream_gone(struct tunnel *t, bool failed)
{
	log_msg(EV_DEBUG, "client %s: the upstream for %s:%u %s before the "
	    "client's first bytes", t->x->client, t->connect_host,
	    (unsigned int)t->port, failed ? "failed" : "closed");
	tunnel_end(t, 502);
}

/*
 * The upstream's socket changed before a verdict: it sent bytes (looked
 * at, never read), closed or failed. Bytes sent before the client's may
 * decide a blind tunnel; else they wait, and a close ends the client now.
 */
static void
tunnel_upstream_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tunnel	*t = arg;
	char		 c;
	ssize_t		 n;
	bool		 failed;

	n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	failed = n == -1 && errno != EAGAIN && errno != EINTR;
	if (n == -1 && !failed && (what & EV_CLOSED) == 0)
		return;
	if (n > 0) {
		if (!t->up_spoke)
			log_msg(EV_DEBUG, "client %s: the upstream for %s:%u "
			    "sent bytes before the client's first",
			    t->x->client, t->connect_host,
			    (unsigned int)t->port);
		t->up_spoke = true;
		if (tunnel_client_silent(t) &&
		    tunnel_decide(t, TUNNEL_FIRST_UPSTREAM))
			return;
		/* Held for the client's verdict, unless the upstream left. */
		if ((what & EV_CLOSED) == 0)
			return;
	}
	tunnel_upstream_gone(t, failed);
}

/*
 * Pass what the upstream that spoke first sent on to the client, and stop
 * reading it while the client has RELAY_HIGH_WATER bytes queued.
 */
static void
tunnel_pump(struct tunnel *t)
{
	struct bufferevent	*up = upstream_bev(t->up);
	struct evbuffer		*in = bufferevent_get_input(up);
	size_t			 len = evbuffer_get_length(in);

	if (len == 0)
		return;
	t->x->acc.down += len;
	relay_push(t->x->bev, in, len);
	relay_throttle(up, t->x->bev);
	tunnel_arm(t);
}

/* The client drained below the throttle's watermark: read on. */
static void
tunnel_pump_resume(struct tunnel *t)
{
	struct bufferevent	*up = upstream_bev(t->up);

	if ((bufferevent_get_enabled(up) & EV_READ) != 0 ||
	    evbuffer_get_length(bufferevent_get_output(t->x->bev)) >=
	    RELAY_HIGH_WATER)
		return;
	relay_unthrottle(up, t->x->bev);
}

static void
tunnel_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tunnel	*t = arg;
	char		 within[32];

	if (t->server_first)
		log_msg(EV_DEBUG, "client %s: no first bytes from the client "
		    "within %s (idle_timeout) of the upstream's for %s:%u",
		    t->x->client, cv_duration_text(t->conf->idle_timeout_ms,
		    within, sizeof(within)), t->connect_host,
		    (unsigned int)t->port);
	else
		log_msg(EV_DEBUG, "client %s: no ClientHello within %s",
		    t->x->client, cv_duration_text(t->conf->header_timeout_ms,
		    within, sizeof(within)));
	tunnel_end(t, 408);
}

/*
 * While the client makes its hello: a CONNECT by name to a pinned host is
 * intercepted when the hello names that host, so the upstream's hello for
 * it is made now, with the ALPN list that the host's last intercepted
 * client offered (upstream_prepare_tls(): a hello that turns out to be
 * for another name or offer is dropped unsent).
 */
static void
tunnel_prepare_hello(struct tunnel *t)
{
	struct alpnguess_key	 k = { .host = t->connect_host,
	    .port = t->port, .pinset = t->connect_ps };
	unsigned char		 offer[ALPNGUESS_OFFER_MAX];
	size_t			 len;

	if (t->connect_by_ip || t->connect_ps == NULL ||
	    !alpnguess_get_offer(t->x->rc->alpn, &k, offer, &len))
		return;
	upstream_prepare_tls(t->up, t->connect_host, t->connect_ps, false,
	    offer, len);
}

static void
tunnel_connected_cb(struct upstream *u, enum upstream_status st, void *arg)
{
	struct tunnel		*t = arg;
	struct phase_ctx	*x = t->x;
	struct bufferevent	*bev = x->bev;
	char			 expl[512];

	sockwatch_free(&t->dial_ev);
	if (st != UPSTREAM_OK) {
		snprintf(expl, sizeof(expl), "%s", upstream_reason(u));
		phase_fail_upstream(x, st, expl);
		return;
	}
	/* From the 200 on, the access line counts the tunnel's bytes. */
	x->acc.up = 0;
	x->acc.down = 0;
	tunnel_arm(t);
	phase_set_state(x, CONN_AWAIT_HELLO);
	t->up_ev = sockwatch_new(x->env->base, upstream_fd(u),
	    tunnel_upstream_cb, t);
	if (tunnel_start_peeking(t)) {
		tunnel_prepare_hello(t);
		tunnel_peek(t);
		return;
	}
	/*
	 * Behind what is still queued for the client (the response to a
	 * request the CONNECT was pipelined behind), unless it went already.
	 */
	if (!t->said_200 && !x->transparent)
		bufferevent_write(bev, tunnel_established,
		    sizeof(tunnel_established) - 1);
	tunnel_read_client(t);
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		tunnel_read_hello(t);
}

static void
tunnel_on_client(void *arg, short what)
{
	struct tunnel	*t = arg;

	if (what == EV_READ) {
		if (t->x->state == CONN_AWAIT_HELLO)
			tunnel_read_hello(t);
		return;
	}
	if (what == EV_WRITE) {
		if (t->server_first)
			tunnel_pump_resume(t);
		return;
	}
	/* The client left, or its socket failed. */
	tunnel_end(t, 200);
}

/*
 * Only an upstream that spoke first has a bufferevent before a verdict
 * (until then tunnel_upstream_cb watches its socket); after one, the
 * relay or interception owns it.
 */
static void
tunnel_on_upstream(void *arg, short what)
{
	struct tunnel	*t = arg;

	if (what == EV_WRITE)
		return;
	tunnel_pump(t);
	if (what == EV_READ)
		return;
	tunnel_upstream_gone(t, (what & BEV_EVENT_ERROR) != 0);
}

static void
tunnel_free(void *arg)
{
	struct tunnel	*t = arg;

	tunnel_unwatch(t);
	upstream_free(t->up);
	tunnel_peek_done(t);
	clienthello_clear(&t->hello);
	event_free(t->timer);
	free(t);
}

/* The blind tunnel's relay runs: the connection keeps the upstream. */
static struct upstream *
tunnel_relayed(void *arg)
{
	struct tunnel	*t = arg;
	struct upstream	*up = t->up;

	t->up = NULL;
	return up;
}

const struct phase_ops tunnel_ops = {
	.name = "tunnel",
	.on_client = tunnel_on_client,
	.on_upstream = tunnel_on_upstream,
	.free = tunnel_free,
	.relayed = tunnel_relayed,
	/* No answered op: see intercept_ops. */
};

struct tunnel *
tunnel_start(struct phase_ctx *x, const char *host, uint16_t port)
{
	struct upstream_params	 p;
	struct tunnel		*t;

	t = xcalloc(1, sizeof(*t));
	t->x = x;
	t->conf = x->rc->conf;
	t->port = port;
	t->timer = evtimer_new(x->env->base, tunnel_timeout_cb, t);
	x->ops = &tunnel_ops;
	x->phase = t;
	x->acc.mode = "tunnel";
	phase_set_host(x, "");

	if (!hostmatch_normalize(host, strlen(host), t->connect_host,
	    sizeof(t->connect_host)) || port == 0) {
		phase_fail(x, HTTP_ERROR_BAD_REQUEST,
		    "CONNECT needs a host name or address and a port.");
		return t;
	}
	phase_set_host(x, t->connect_host);
	if (!conf_connect_port_allowed(t->conf, port)) {
		phase_log_blocked(x, t->connect_host, "port not in "
		    "connect_ports");
		phase_fail(x, HTTP_ERROR_PORT_DENIED,
		    "CONNECT to this port is not allowed (connect_ports).");
		return t;
	}
	if (phase_is_self(x, t->connect_host, port)) {
		phase_log_blocked(x, t->connect_host, "loop: the CONNECT target "
		    "is pinproxy itself");
		phase_fail(x, HTTP_ERROR_LOOP,
		    "The CONNECT target is the proxy itself.");
		return t;
	}
	t->connect_by_ip = hostmatch_is_ip(t->connect_host);
	t->connect_ps = conf_lookup(t->conf, t->connect_host);
	t->ps = t->connect_ps;
	if (!t->connect_by_ip && t->ps == NULL &&
	    t->conf->unpinned == UNPINNED_BLOCK) {
		phase_log_blocked(x, t->connect_host, "unpinned host "
		    "(unpinned = block)");
		phase_fail(x, HTTP_ERROR_BLOCKED,
		    "No pin set covers this host and unpinned hosts are "
		    "blocked.");
		return t;
	}
	phase_set_state(x, CONN_DIAL);
	phase_upstream_params(x, t->ps, t->connect_host, port, &p);
	bufferevent_disable(x->bev, EV_READ);
	tunnel_watch_dial(t);
	t->up = upstream_connect(&p, tunnel_connected_cb, t);
	return t;
}

/*
 * CONNECT, in the order SPEC §3 gives: port check, TCP to the target
 * (failures answered over HTTP), the bare 200, the ClientHello read
 * without consuming it, the policy for the host name, then a blind tunnel,
 * or the upstream TLS handshake with verification and pins and only then
 * the client's handshake with a forged leaf. Every refusal after the 200
 * is a fatal TLS alert; nothing is relayed. The client's TLS always runs on
 * its socket: bytes read with the CONNECT head reach OpenSSL first through
 * a small BIO in front of the socket, so no buffer grows behind a client
 * that stops reading.
 */
#include "config.h"

#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca.h"
#include "clienthello.h"
#include "conn.h"
#include "hostmatch.h"
#include "leafcert.h"
#include "log.h"
#include "metrics.h"
#include "relay.h"
#include "runconf.h"
#include "throttle.h"
#include "tunnel.h"
#include "upstream.h"
#include "xmalloc.h"

static const char tunnel_established[] =
    "HTTP/1.1 200 Connection established\r\n\r\n";

/* TLS alert descriptions sent in a bare alert record. */
#define TUNNEL_ALERT_HANDSHAKE_FAILURE	40
#define TUNNEL_ALERT_ACCESS_DENIED	49
#define TUNNEL_ALERT_UNRECOGNIZED_NAME	112

/* client_tls_failed: one line per client address and host a minute. */
#define TUNNEL_TLS_FAILED_SLOTS		64
#define TUNNEL_TLS_FAILED_WINDOW	60

static const char tunnel_hint_untrusted[] = "the client does not trust "
    "pinproxy's CA: install ca.pem, see pinproxy(8)";
static const char tunnel_hint_rejected[] = "the client rejected the "
    "certificate, most likely because it does not trust pinproxy's CA: "
    "install ca.pem, see pinproxy(8)";

/* The TLS alerts a client may send, by their RFC 8446 names. */
static const struct tunnel_alert {
	unsigned char	 code;
	const char	*name;
	const char	*hint;
} tunnel_alerts[] = {
	{ 0,	"close_notify",			NULL },
	{ 10,	"unexpected_message",		NULL },
	{ 20,	"bad_record_mac",		NULL },
	{ 22,	"record_overflow",		NULL },
	{ 40,	"handshake_failure",		NULL },
	{ 42,	"bad_certificate",		tunnel_hint_rejected },
	{ 43,	"unsupported_certificate",	NULL },
	{ 44,	"certificate_revoked",		NULL },
	{ 45,	"certificate_expired",		NULL },
	{ 46,	"certificate_unknown",		tunnel_hint_rejected },
	{ 47,	"illegal_parameter",		NULL },
	{ 48,	"unknown_ca",			tunnel_hint_untrusted },
	{ 49,	"access_denied",		NULL },
	{ 50,	"decode_error",			NULL },
	{ 51,	"decrypt_error",		NULL },
	{ 70,	"protocol_version",		NULL },
	{ 71,	"insufficient_security",	NULL },
	{ 80,	"internal_error",		NULL },
	{ 86,	"inappropriate_fallback",	NULL },
	{ 90,	"user_canceled",		NULL },
	{ 109,	"missing_extension",		NULL },
	{ 110,	"unsupported_extension",	NULL },
	{ 112,	"unrecognized_name",		NULL },
	{ 113,	"bad_certificate_status_response", NULL },
	{ 115,	"unknown_psk_identity",		NULL },
	{ 116,	"certificate_required",		NULL },
	{ 120,	"no_application_protocol",	NULL },
};

/* What every generation shares: none of it depends on the configuration. */
struct tunnel_env {
	SSL_CTX			*server;	/* for intercepted clients */
	struct throttle		*tls_failed;	/* client_tls_failed lines */
};

struct tunnel {
	struct conn		*conn;		/* owns the tunnel */
	struct tunnel_env	*env;		/* borrowed */
	struct runconf		*rc;		/* a reference: CA, leaves */
	const struct conf	*conf;		/* borrowed from rc */
	char			 connect_host[HOSTMATCH_NAME_MAX];
	bool			 connect_by_ip;
	const struct pinset	*connect_ps;	/* the CONNECT host's set */
	uint16_t		 port;
	char			 host[HOSTMATCH_NAME_MAX];	/* the name used */
	const struct pinset	*ps;
	struct upstream		*up;
	struct relay		*relay;
	struct event		*timer;		/* header_timeout */
	bool			 handshaking;	/* the client's TLS, forged leaf */
	struct clienthello	 hello;
	/*
	 * When nothing followed the CONNECT head, the hello is read with
	 * MSG_PEEK and stays in the socket; else the bufferevent holds it.
	 */
	struct event		*peek_ev;
	unsigned char		*peek_buf;	/* CLIENTHELLO_MAX_INPUT */
	bool			 peeked;	/* the hello is in the socket */
	size_t			 peek_len;
	unsigned char		 alpn[256];	/* what the upstream chose */
	unsigned char		 alpn_len;
	const char		*mode;
};

static int	tunnel_ssl_index = -1;

static void	tunnel_event_cb(struct bufferevent *, short, void *);
/* The BIO that hands OpenSSL the bytes read before the socket's. */
static BIO_METHOD *tunnel_prefix_method;

/* Log a refusal by policy. */
static void
tunnel_log_blocked(struct tunnel *t, const char *host, const char *reason)
{
	struct logline	 l;

	log_begin(&l, EV_BLOCKED);
	log_str(&l, LK_HOST, host);
	log_str(&l, LK_CLIENT, conn_client(t->conn));
	log_str(&l, LK_REASON, reason);
	log_end(&l);
}

/* Take the peeked hello out of the socket, so that a close is clean. */
static void
tunnel_drain_peeked(struct tunnel *t)
{
	evutil_socket_t	 fd = bufferevent_getfd(conn_client_bev(t->conn));
	char		 sink[4096];
	size_t		 left = t->peek_len;
	ssize_t		 n;

	while (left > 0) {
		n = recv(fd, sink, left < sizeof(sink) ? left : sizeof(sink),
		    MSG_DONTWAIT);
		if (n <= 0)
			break;
		left -= (size_t)n;
	}
	t->peeked = false;
}

/* End the client's handshake with a fatal alert and close after it. */
static void
tunnel_refuse(struct tunnel *t, unsigned char alert, int status)
{
	struct bufferevent	*bev = conn_client_bev(t->conn);
	unsigned char		 rec[7] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02,
				     0 };

	rec[6] = alert;
	/* Unread bytes would turn the close into a reset that eats the alert. */
	if (t->peeked)
		tunnel_drain_peeked(t);
	evtimer_del(t->timer);
	bufferevent_disable(bev, EV_READ);
	bufferevent_write(bev, rec, sizeof(rec));
	conn_tunnel_done(t->conn, t->mode, t->host[0] != '\0' ? t->host :
	    t->connect_host, status, 0, 0);
}

static void
tunnel_relay_done_cb(struct relay *r, const char *why, void *arg)
{
	struct tunnel	*t = arg;
	uint64_t	 up, down;

	relay_counts(r, &up, &down);
	conn_tunnel_done(t->conn, t->mode, t->host, 200, up, down);
}

/* Both sides are ready: pump bytes. */
static void
tunnel_relay(struct tunnel *t)
{
	conn_set_state(t->conn, CONN_RELAY);
	evtimer_del(t->timer);
	t->handshaking = false;
	bufferevent_setwatermark(upstream_bev(t->up), EV_READ, 0, 0);
	t->relay = relay_new(
	    conn_env(t->conn)->base, conn_client_bev(t->conn),
	    upstream_bev(t->up), t->conf->idle_timeout_ms,
	    tunnel_relay_done_cb, t);
}

/* The alert a client sent, from OpenSSL's error e; NULL when none. */
static const struct tunnel_alert *
tunnel_alert_of(unsigned long e)
{
	int	 r = ERR_GET_REASON(e);
	size_t	 i;

	if (ERR_GET_LIB(e) != ERR_LIB_SSL || r < SSL_AD_REASON_OFFSET ||
	    r > SSL_AD_REASON_OFFSET + 255)
		return NULL;
	for (i = 0; i < sizeof(tunnel_alerts) / sizeof(tunnel_alerts[0]); i++)
		if (tunnel_alerts[i].code == r - SSL_AD_REASON_OFFSET)
			return &tunnel_alerts[i];
	return NULL;
}

/*
 * Say at warn level why the client's handshake failed, once a minute per
 * client address (without its port) and host: an untrusted CA is the most
 * common setup mistake, and a client retrying must not flood the log.
 */
static void
tunnel_log_client_tls_failed(struct tunnel *t, struct bufferevent *bev)
{
	const struct tunnel_alert	*a = NULL;
	const char			*client = conn_client(t->conn);
	struct logline			 l;
	char				 key[CONF_ADDR_TEXT_MAX +
					    HOSTMATCH_NAME_MAX + 2], why[160];
	unsigned long			 e, first = 0;

	while ((e = bufferevent_get_openssl_error(bev)) != 0) {
		if (first == 0)
			first = e;
		if (a == NULL)
			a = tunnel_alert_of(e);
	}
	snprintf(why, sizeof(why), "%s", first != 0 ?
	    ERR_reason_error_string(first) : "connection closed");
	log_msg(EV_DEBUG, "client %s: TLS handshake for %s failed: %s",
	    client, t->host, why);
	snprintf(key, sizeof(key), "%.*s %s", (int)throttle_addr_len(client),
	    client, t->host);
	if (!throttle_allow(t->env->tls_failed, key, strlen(key),
	    throttle_now()))
		return;
	log_begin(&l, EV_CLIENT_TLS_FAILED);
	log_str(&l, LK_HOST, t->host);
	log_str(&l, LK_CLIENT, client);
	log_str(&l, LK_ALERT, a != NULL ? a->name : "none");
	if (a == NULL)
		log_str(&l, LK_REASON, why);
	if (a != NULL && a->hint != NULL)
		log_str(&l, LK_HINT, a->hint);
	log_end(&l);
}

static void
tunnel_client_tls_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct tunnel	*t = arg;

	if (what & BEV_EVENT_CONNECTED) {
		tunnel_relay(t);
		return;
	}
	metrics_inc(conn_env(t->conn)->sinks.metrics,
	    METRIC_HANDSHAKE_FAILURES_CLIENT);
	tunnel_log_client_tls_failed(t, bev);
	conn_tunnel_done(t->conn, t->mode, t->host, 502, 0, 0);
}

/* Stop peeking at the socket; the hello stays there for whoever reads. */
static void
tunnel_peek_done(struct tunnel *t)
{
	if (t->peek_ev != NULL)
		event_free(t->peek_ev);
	t->peek_ev = NULL;
	free(t->peek_buf);
	t->peek_buf = NULL;
}

/* Hand out what was read before the socket, then what the socket has. */
static int
tunnel_prefix_read(BIO *b, char *out, int outl)
{
	struct evbuffer	*prefix = BIO_get_data(b);
	int		 n;

	BIO_clear_retry_flags(b);
	if (outl <= 0)
		return 0;
	if (evbuffer_get_length(prefix) > 0)
		return evbuffer_remove(prefix, out, (size_t)outl);
	n = BIO_read(BIO_next(b), out, outl);
	BIO_copy_next_retry(b);
	return n;
}

/* Writes go straight to the socket. */
static int
tunnel_prefix_write(BIO *b, const char *in, int inl)
{
	int	 n;

	BIO_clear_retry_flags(b);
	n = BIO_write(BIO_next(b), in, inl);
	BIO_copy_next_retry(b);
	return n;
}

/* The socket answers; pending bytes include those not yet handed out. */
static long
tunnel_prefix_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct evbuffer	*prefix = BIO_get_data(b);
	long		 n;

	if (BIO_next(b) == NULL)
		return 0;
	n = BIO_ctrl(BIO_next(b), cmd, num, ptr);
	if (cmd == BIO_CTRL_PENDING && n >= 0)
		n += (long)evbuffer_get_length(prefix);
	return n;
}

/* A new BIO holds an empty buffer. */
static int
tunnel_prefix_create(BIO *b)
{
	BIO_set_data(b, evbuffer_new());
	BIO_set_init(b, BIO_get_data(b) != NULL);
	return BIO_get_data(b) != NULL;
}

/* Free the bytes never handed out. */
static int
tunnel_prefix_destroy(BIO *b)
{
	if (BIO_get_data(b) != NULL)
		evbuffer_free(BIO_get_data(b));
	BIO_set_data(b, NULL);
	return 1;
}

/* The method of the BIO above, made once. */
static BIO_METHOD *
tunnel_prefix_method_new(void)
{
	BIO_METHOD	*m;

	if ((m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER,
	    "pinproxy client prefix")) == NULL)
		return NULL;
	BIO_meth_set_read(m, tunnel_prefix_read);
	BIO_meth_set_write(m, tunnel_prefix_write);
	BIO_meth_set_ctrl(m, tunnel_prefix_ctrl);
	BIO_meth_set_create(m, tunnel_prefix_create);
	BIO_meth_set_destroy(m, tunnel_prefix_destroy);
	return m;
}

/*
 * The client's SSL on fd, its reads starting with what the bufferevent
 * already took from the socket (moved out of prefix). It never reads
 * ahead, so once those bytes are gone the socket's readiness tells
 * libevent the truth. The socket BIO, also the write side, is what libevent
 * finds the descriptor in.
 */
static bool
tunnel_client_bio(SSL *ssl, evutil_socket_t fd, struct evbuffer *prefix)
{
	BIO	*front, *sock;

	if ((front = BIO_new(tunnel_prefix_method)) == NULL)
		return false;
	if ((sock = BIO_new_socket(fd, BIO_NOCLOSE)) == NULL) {
		BIO_free(front);
		return false;
	}
	evbuffer_add_buffer(BIO_get_data(front), prefix);
	BIO_push(front, sock);
	/* One reference for the read chain, one for the write side. */
	BIO_up_ref(sock);
	SSL_set_bio(ssl, front, sock);
	return true;
}

/*
 * The TLS server side for the client, on its socket, replacing the
 * socket's bufferevent (whose output has been written).
 */
static struct bufferevent *
tunnel_client_tls(struct tunnel *t, SSL *ssl)
{
	struct event_base	*base = conn_env(t->conn)->base;
	struct bufferevent	*under = conn_client_bev(t->conn), *bev;
	evutil_socket_t		 fd = bufferevent_getfd(under);

	if (!tunnel_client_bio(ssl, fd, bufferevent_get_input(under)))
		return NULL;
	bev = bufferevent_openssl_socket_new(base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL)
		return NULL;
	/* The new bufferevent owns the socket; the old one lets it go. */
	bufferevent_setfd(under, -1);
	bufferevent_free(under);
	return bev;
}

/* The upstream ended before the relay began: so does the client. */
static void
tunnel_upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct tunnel	*t = arg;

	log_msg(EV_DEBUG, "client %s: the upstream for %s %s before the "
	    "relay", conn_client(t->conn), t->host, (what & BEV_EVENT_EOF) ?
	    "closed" : "failed");
	conn_tunnel_done(t->conn, t->mode, t->host, 502, 0, 0);
}

/*
 * The leaf for t->host from the generation's cache (the caller owns it),
 * counted as a hit or a miss.
 */
static X509 *
tunnel_leaf(struct tunnel *t)
{
	struct metrics		*m = conn_env(t->conn)->sinks.metrics;
	struct leafcert_stats	 before, after;
	X509			*leaf;

	leafcert_cache_stats(t->rc->leaves, &before);
	leaf = leafcert_get(t->rc->leaves, t->rc->ca, t->host);
	leafcert_cache_stats(t->rc->leaves, &after);
	metrics_add(m, METRIC_LEAFCERT_CACHE_HITS, after.hits - before.hits);
	metrics_add(m, METRIC_LEAFCERT_CACHE_MISSES,
	    after.misses - before.misses);
	return leaf;
}

/*
 * Answer the client's hello with a leaf forged by the CA of the
 * connection's generation, on its socket.
 */
static void
tunnel_handshake_client(struct tunnel *t)
{
	struct bufferevent	*bev;
	X509			*leaf;
	SSL			*ssl;

	conn_set_state(t->conn, CONN_CLIENT_TLS);
	if ((leaf = tunnel_leaf(t)) == NULL ||
	    (ssl = SSL_new(t->env->server)) == NULL) {
		X509_free(leaf);
		log_msg(EV_DEBUG, "cannot forge a certificate for %s",
		    t->host);
		tunnel_refuse(t, TUNNEL_ALERT_HANDSHAKE_FAILURE, 502);
		return;
	}
	SSL_use_certificate(ssl, leaf);
	SSL_use_PrivateKey(ssl, leafcert_key(t->rc->leaves));
	/* The CA too: a client may trust it by its SPKI (Chromium's flag). */
	SSL_add1_chain_cert(ssl, ca_cert(t->rc->ca));
	/*
	 * A client resumes only a session made under the same CA: one from
	 * before the CA changed would skip the new CA's certificate.
	 */
	SSL_set_session_id_context(ssl, ca_id(t->rc->ca), CA_ID_LEN);
	X509_free(leaf);
	SSL_set_ex_data(ssl, tunnel_ssl_index, t);
	tunnel_peek_done(t);
	t->peeked = false;
	if ((bev = tunnel_client_tls(t, ssl)) == NULL) {
		SSL_free(ssl);
		tunnel_refuse(t, TUNNEL_ALERT_HANDSHAKE_FAILURE, 502);
		return;
	}
	conn_set_client_bev(t->conn, bev);
	relay_tune(bev);
	bufferevent_setcb(bev, NULL, NULL, tunnel_client_tls_event_cb, t);
	/* Writable at once: that runs the handshake on the bytes it holds. */
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* The rest of the 200 reached the client: its handshake may start. */
static void
tunnel_flushed_cb(struct bufferevent *bev, void *arg)
{
	struct tunnel	*t = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		tunnel_handshake_client(t);
}

/*
 * The upstream passed. From here the client's handshake runs under
 * header_timeout, and an upstream that ends before the relay ends the
 * connection; what it sends meanwhile waits, up to RELAY_HIGH_WATER.
 */
static void
tunnel_accept_client(struct tunnel *t)
{
	struct bufferevent	*under = conn_client_bev(t->conn);
	struct bufferevent	*up = upstream_bev(t->up);
	struct timeval		 tv = cv_timeval(t->conf->header_timeout_ms);
	const unsigned char	*sel;
	unsigned int		 sel_len;

	upstream_alpn(t->up, &sel, &sel_len);
	if (sel_len > 0 && sel_len < sizeof(t->alpn)) {
		memcpy(t->alpn, sel, sel_len);
		t->alpn_len = (unsigned char)sel_len;
	}
	t->handshaking = true;
	evtimer_add(t->timer, &tv);
	bufferevent_setcb(up, NULL, NULL, tunnel_upstream_event_cb, t);
	bufferevent_setwatermark(up, EV_READ, 0, RELAY_HIGH_WATER);
	bufferevent_enable(up, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(under)) > 0) {
		/* The socket changes hands only once the 200 is out. */
		bufferevent_setcb(under, NULL, tunnel_flushed_cb,
		    tunnel_event_cb, t);
		bufferevent_setwatermark(under, EV_WRITE, 0, 0);
		bufferevent_enable(under, EV_WRITE);
		return;
	}
	tunnel_handshake_client(t);
}

static void
tunnel_upstream_tls_cb(struct upstream *u, enum upstream_status st,
    void *arg)
{
	struct tunnel	*t = arg;

	if (st != UPSTREAM_OK) {
		tunnel_refuse(t, upstream_outcome(st)->verdict ?
		    TUNNEL_ALERT_ACCESS_DENIED :
		    TUNNEL_ALERT_HANDSHAKE_FAILURE, 502);
		return;
	}
	tunnel_accept_client(t);
}

/*
 * Whether the first bytes after the 200 start an HTTP/1.x request: empty
 * lines (which servers skip), then a method of letters and a space. -1:
 * too few bytes to tell. Letters up to the end of what is inspected count
 * as a request, so that no length lets one through a blind tunnel. Any
 * other protocol (SSH's "SSH-2.0-", say) is not one.
 */
static int
tunnel_is_http(const unsigned char *data, size_t len)
{
	size_t	 i = 0, start;

	while (i < len && (data[i] == '\r' || data[i] == '\n'))
		i++;
	for (start = i; i < len; i++) {
		if (data[i] == ' ')
			return i > start;
		if (!((data[i] >= 'A' && data[i] <= 'Z') ||
		    (data[i] >= 'a' && data[i] <= 'z')))
			return 0;
	}
	return len >= CLIENTHELLO_MAX_INPUT ? 1 : -1;
}

/*
 * Plaintext HTTP in the tunnel: the connection reads requests again, as a
 * plaintext proxy connection bound to the CONNECT host and port. The
 * tunnel, its upstream TCP connection included, is freed: nothing of it
 * may be touched after this.
 */
static void
tunnel_plain(struct tunnel *t)
{
	if (t->peeked) {
		/* The request stays in the socket, for the connection. */
		tunnel_peek_done(t);
		t->peeked = false;
	}
	log_msg(EV_DEBUG, "client %s: plaintext HTTP in the CONNECT tunnel "
	    "to %s:%u", conn_client(t->conn), t->connect_host,
	    (unsigned int)t->port);
	/* An address covered by a pin set binds the tunnel to itself. */
	conn_tunnel_plain(t->conn, t->connect_host, t->connect_by_ip &&
	    t->connect_ps == NULL, t->port);
}

/*
 * The pin set for the host name: the SNI's, or, for a CONNECT by address,
 * the address's when it has one and the SNI names an unpinned host, so
 * that a name never unpins a pinned address. An address and a name pinned
 * by different sets are refused. False: refused.
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
		tunnel_log_blocked(t, t->host, "SNI and CONNECT address are "
		    "covered by different pin sets");
		tunnel_refuse(t, TUNNEL_ALERT_ACCESS_DENIED, 403);
		return false;
	}
	t->ps = by_addr;
	return true;
}

/* A complete hello (or none at all, for a blind tunnel): decide. */
static void
tunnel_decide(struct tunnel *t, bool is_tls, bool is_http)
{
	const struct conf	*conf = t->conf;

	/* The cap on buffered bytes was for the hello only. */
	bufferevent_setwatermark(conn_client_bev(t->conn), EV_READ, 0, 0);
	/*
	 * Before any blind tunnel: a request in it must not reach a pinned
	 * host in cleartext by naming it in its Host header.
	 */
	if (is_http) {
		tunnel_plain(t);
		return;
	}
	if (is_tls && t->hello.sni_len > 0) {
		if (!hostmatch_normalize(t->hello.sni, t->hello.sni_len,
		    t->host, sizeof(t->host))) {
			tunnel_refuse(t, TUNNEL_ALERT_UNRECOGNIZED_NAME, 400);
			return;
		}
		if (!t->connect_by_ip &&
		    strcmp(t->host, t->connect_host) != 0) {
			tunnel_log_blocked(t, t->host, "SNI differs from the "
			    "CONNECT host");
			tunnel_refuse(t, TUNNEL_ALERT_UNRECOGNIZED_NAME, 403);
			return;
		}
	} else
		xstrlcpy(t->host, t->connect_host, sizeof(t->host));

	if (!tunnel_pinset(t))
		return;
	if (t->ps == NULL && conf->unpinned == UNPINNED_PASS) {
		/* A peeked hello is still in the socket: the relay reads it. */
		tunnel_peek_done(t);
		t->mode = "tunnel";
		upstream_start_plain(t->up);
		tunnel_relay(t);
		return;
	}
	if (t->ps == NULL && conf->unpinned == UNPINNED_BLOCK) {
		tunnel_log_blocked(t, t->host, "unpinned host "
		    "(unpinned = block)");
		tunnel_refuse(t, TUNNEL_ALERT_ACCESS_DENIED, 403);
		return;
	}
	if (!is_tls) {
		tunnel_log_blocked(t, t->host, "not a TLS ClientHello");
		conn_tunnel_done(t->conn, t->mode, t->host, 400, 0, 0);
		return;
	}
	t->mode = "intercept";
	evtimer_del(t->timer);
	bufferevent_disable(conn_client_bev(t->conn), EV_READ);
	upstream_retarget(t->up, t->ps, t->host);
	conn_set_state(t->conn, CONN_UPSTREAM_TLS);
	upstream_start_tls(t->up, t->hello.alpn, t->hello.alpn_len, true,
	    tunnel_upstream_tls_cb, t);
}

/* Judge the len bytes the client sent so far after the 200. */
static void
tunnel_hello(struct tunnel *t, const unsigned char *data, size_t len)
{
	enum clienthello_result	 r;
	int			 http = 0;

	r = clienthello_parse(data, len, &t->hello);
	if (r == CH_NOT_TLS && (http = tunnel_is_http(data, len)) == -1)
		return;
	/* A verdict on the hello: stop looking at the socket. */
	if (r != CH_NEED_MORE || len >= CLIENTHELLO_MAX_INPUT)
		tunnel_peek_done(t);
	switch (r) {
	case CH_NEED_MORE:
		if (len < CLIENTHELLO_MAX_INPUT)
			return;
		/* FALLTHROUGH */
	case CH_TOO_LARGE:
	case CH_MALFORMED:
		log_msg(EV_DEBUG, "client %s: bad ClientHello (%s)",
		    conn_client(t->conn), clienthello_result_name(r));
		tunnel_refuse(t, TUNNEL_ALERT_HANDSHAKE_FAILURE, 400);
		return;
	case CH_NOT_TLS:
		tunnel_decide(t, false, http == 1);
		return;
	case CH_OK:
		tunnel_decide(t, true, false);
		return;
	}
}

/* Look at the hello buffered by the client's bufferevent. */
static void
tunnel_read_hello(struct tunnel *t)
{
	struct evbuffer	*in = bufferevent_get_input(conn_client_bev(t->conn));
	size_t		 len;

	len = evbuffer_get_length(in);
	if (len > CLIENTHELLO_MAX_INPUT)
		len = CLIENTHELLO_MAX_INPUT;
	tunnel_hello(t, evbuffer_pullup(in, (ev_ssize_t)len), len);
}

static void
tunnel_read_cb(struct bufferevent *bev, void *arg)
{
	tunnel_read_hello(arg);
}

/* Look at the hello in the socket without taking it. */
static void
tunnel_peek(struct tunnel *t)
{
	evutil_socket_t	 fd = bufferevent_getfd(conn_client_bev(t->conn));
	ssize_t		 n;

	n = recv(fd, t->peek_buf, CLIENTHELLO_MAX_INPUT, MSG_PEEK);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* The client left before its hello was complete. */
		tunnel_peek_done(t);
		t->peeked = false;
		conn_tunnel_done(t->conn, t->mode, t->connect_host, 200, 0,
		    0);
		return;
	}
	t->peek_len = (size_t)n;
	tunnel_hello(t, t->peek_buf, (size_t)n);
}

/* New bytes arrived (edge-triggered: peeked bytes do not re-fire). */
static void
tunnel_peek_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tunnel	*t = arg;

	/* A peek still sees the unread half hello: the close says it all. */
	if (what & EV_CLOSED) {
		tunnel_peek_done(t);
		t->peeked = false;
		conn_tunnel_done(t->conn, t->mode, t->connect_host, 200, 0,
		    0);
		return;
	}
	tunnel_peek(t);
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

	if (conn_is_transparent(t->conn))
		return true;
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
	struct bufferevent	*bev = conn_client_bev(t->conn);
	evutil_socket_t		 fd = bufferevent_getfd(bev);

	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0 ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return false;
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	if (!tunnel_send_established(t, bev))
		return false;
	t->peek_buf = xmalloc(CLIENTHELLO_MAX_INPUT);
	t->peeked = true;
	t->peek_ev = event_new(conn_env(t->conn)->base, fd,
	    EV_READ | EV_CLOSED | EV_ET | EV_PERSIST, tunnel_peek_cb, t);
	event_add(t->peek_ev, NULL);
	return true;
}

static void
tunnel_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct tunnel	*t = arg;

	conn_tunnel_done(t->conn, t->mode, t->connect_host, 200, 0, 0);
}

static void
tunnel_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tunnel	*t = arg;
	char		 within[32];

	log_msg(EV_DEBUG, "client %s: no %s within %s",
	    conn_client(t->conn), t->handshaking ? "complete TLS handshake" :
	    "ClientHello", cv_duration_text(t->conf->header_timeout_ms, within,
	    sizeof(within)));
	conn_tunnel_done(t->conn, t->mode, t->handshaking ? t->host :
	    t->connect_host, 408, 0, 0);
}

static void
tunnel_connected_cb(struct upstream *u, enum upstream_status st, void *arg)
{
	struct tunnel		*t = arg;
	struct bufferevent	*bev = conn_client_bev(t->conn);
	struct timeval		 tv = cv_timeval(t->conf->header_timeout_ms);
	char			 expl[512];

	if (st != UPSTREAM_OK) {
		snprintf(expl, sizeof(expl), "%s", upstream_reason(u));
		conn_reply_error(t->conn, upstream_outcome(st)->error,
		    t->connect_host, expl);
		return;
	}
	evtimer_add(t->timer, &tv);
	conn_set_state(t->conn, CONN_AWAIT_HELLO);
	if (tunnel_start_peeking(t)) {
		tunnel_peek(t);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 &&
	    !conn_is_transparent(t->conn))
		bufferevent_write(bev, tunnel_established,
		    sizeof(tunnel_established) - 1);
	bufferevent_setcb(bev, tunnel_read_cb, NULL, tunnel_event_cb, t);
	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_setwatermark(bev, EV_READ, 0, CLIENTHELLO_MAX_INPUT + 1);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		tunnel_read_hello(t);
}

void
tunnel_start(struct conn *c, const char *host, uint16_t port)
{
	struct conn_env		*env = conn_env(c);
	struct runconf		*rc = conn_runconf(c);
	struct upstream_params	 p;
	struct tunnel		*t;

	t = xcalloc(1, sizeof(*t));
	t->conn = c;
	t->env = env->tunnel;
	t->rc = runconf_ref(rc);
	t->conf = rc->conf;
	t->port = port;
	t->mode = "tunnel";
	t->timer = evtimer_new(env->base, tunnel_timeout_cb, t);
	conn_set_tunnel(c, t);

	if (!hostmatch_normalize(host, strlen(host), t->connect_host,
	    sizeof(t->connect_host)) || port == 0) {
		conn_reply_error(c, HTTP_ERROR_BAD_REQUEST, NULL,
		    "CONNECT needs a host name or address and a port.");
		return;
	}
	if (!conf_connect_port_allowed(t->conf, port)) {
		tunnel_log_blocked(t, t->connect_host, "port not in "
		    "connect_ports");
		conn_reply_error(c, HTTP_ERROR_PORT_DENIED, t->connect_host,
		    "CONNECT to this port is not allowed (connect_ports).");
		return;
	}
	if (conn_is_self(c, t->connect_host, port)) {
		conn_reply_error(c, HTTP_ERROR_LOOP, t->connect_host,
		    "The CONNECT target is the proxy itself.");
		return;
	}
	t->connect_by_ip = hostmatch_is_ip(t->connect_host);
	t->connect_ps = conf_lookup(t->conf, t->connect_host);
	t->ps = t->connect_ps;
	if (!t->connect_by_ip && t->ps == NULL &&
	    t->conf->unpinned == UNPINNED_BLOCK) {
		tunnel_log_blocked(t, t->connect_host, "unpinned host "
		    "(unpinned = block)");
		conn_reply_error(c, HTTP_ERROR_BLOCKED, t->connect_host,
		    "No pin set covers this host and unpinned hosts are "
		    "blocked.");
		return;
	}
	memset(&p, 0, sizeof(p));
	p.base = env->base;
	p.dns = env->dns;
	p.rc = rc;
	p.ps = t->ps;
	p.host = t->connect_host;
	p.port = port;
	p.client = conn_client(c);
	p.sinks = &env->sinks;
	p.self = env->listen;
	p.nself = env->nlisten;
	bufferevent_disable(conn_client_bev(c), EV_READ);
	t->up = upstream_connect(&p, tunnel_connected_cb, t);
}

void
tunnel_free(struct tunnel *t)
{
	if (t == NULL)
		return;
	relay_free(t->relay);
	upstream_free(t->up);
	tunnel_peek_done(t);
	clienthello_clear(&t->hello);
	event_free(t->timer);
	runconf_unref(t->rc);
	free(t);
}

/* Select the protocol the upstream selected, or none. */
static int
tunnel_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	struct tunnel	*t = SSL_get_ex_data(ssl, tunnel_ssl_index);

	if (t == NULL || t->alpn_len == 0)
		return SSL_TLSEXT_ERR_NOACK;
	*out = t->alpn;
	*outlen = t->alpn_len;
	return SSL_TLSEXT_ERR_OK;
}

struct tunnel_env *
tunnel_env_new(char *err, size_t errlen)
{
	struct tunnel_env	*te;

	if (tunnel_ssl_index == -1)
		tunnel_ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL,
		    NULL);
	if (tunnel_prefix_method == NULL &&
	    (tunnel_prefix_method = tunnel_prefix_method_new()) == NULL) {
		snprintf(err, errlen, "cannot create the client TLS BIO");
		return NULL;
	}
	te = xcalloc(1, sizeof(*te));
	if ((te->server = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errlen, "cannot create the TLS server context");
		free(te);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(te->server, TLS1_2_VERSION);
	SSL_CTX_set_mode(te->server, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(te->server, SSL_OP_NO_RENEGOTIATION);
	/*
	 * One TLS 1.3 ticket is what a client's next connection resumes
	 * with; OpenSSL's default second one costs an encryption on every
	 * intercepted handshake.
	 */
	SSL_CTX_set_num_tickets(te->server, 1);
	SSL_CTX_set_alpn_select_cb(te->server, tunnel_alpn_cb, NULL);
	te->tls_failed = throttle_new(TUNNEL_TLS_FAILED_SLOTS,
	    TUNNEL_TLS_FAILED_WINDOW);
	return te;
}

void
tunnel_env_free(struct tunnel_env *te)
{
	if (te == NULL)
		return;
	SSL_CTX_free(te->server);
	throttle_free(te->tls_failed);
	free(te);
}

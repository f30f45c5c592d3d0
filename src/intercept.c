/*
 * Interception, in the order SPEC §3 gives after the ClientHello: the
 * upstream TLS handshake with verification and pins, and only then the
 * client's handshake with a forged leaf, then the relay. With a guess of
 * the upstream's ALPN choice the client's handshake runs beside the
 * upstream's, and the last record of its flight waits for the verdict
 * (tlsflight.h). Every refusal is a fatal TLS alert where the client can
 * be sent one; nothing is relayed.
 * The client's TLS always runs on its socket: bytes read with the CONNECT
 * head reach OpenSSL first through a small BIO in front of the socket, so
 * no buffer grows behind a client that stops reading.
 */
#include "config.h"

#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alpnguess.h"
#include "ca.h"
#include "hostmatch.h"
#include "intercept.h"
#include "leafcert.h"
#include "log.h"
#include "metrics.h"
#include "relay.h"
#include "runconf.h"
#include "sockwatch.h"
#include "throttle.h"
#include "tlsflight.h"
#include "upstream.h"
#include "xmalloc.h"

/* client_tls_failed: one line per client address and host a minute. */
#define INTERCEPT_TLS_FAILED_SLOTS	64
#define INTERCEPT_TLS_FAILED_WINDOW	60

static const char intercept_hint_untrusted[] = "the client does not trust "
    "pinproxy's CA: install ca.pem, see pinproxy(8)";
static const char intercept_hint_rejected[] = "the client rejected the "
    "certificate, most likely because it does not trust pinproxy's CA: "
    "install ca.pem, see pinproxy(8)";

/* The TLS alerts a client may send, by their RFC 8446 names. */
static const struct intercept_alert_name {
	unsigned char	 code;
	const char	*name;
	const char	*hint;
} intercept_alerts[] = {
	{ 0,	"close_notify",			NULL },
	{ 10,	"unexpected_message",		NULL },
	{ 20,	"bad_record_mac",		NULL },
	{ 22,	"record_overflow",		NULL },
	{ 40,	"handshake_failure",		NULL },
	{ 42,	"bad_certificate",		intercept_hint_rejected },
	{ 43,	"unsupported_certificate",	NULL },
	{ 44,	"certificate_revoked",		NULL },
	{ 45,	"certificate_expired",		NULL },
	{ 46,	"certificate_unknown",		intercept_hint_rejected },
	{ 47,	"illegal_parameter",		NULL },
	{ 48,	"unknown_ca",			intercept_hint_untrusted },
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
struct intercept_env {
	SSL_CTX			*server;	/* for intercepted clients */
	struct throttle		*tls_failed;	/* client_tls_failed lines */
};

struct intercept {
	struct phase_ctx	*x;		/* the connection's */
	struct intercept_env	*env;		/* borrowed */
	struct upstream		*up;
	const struct pinset	*ps;		/* borrowed from x->rc */
	char			 host[HOSTMATCH_NAME_MAX];
	size_t			 peeked;	/* hello bytes in the socket */
	struct event		*timer;		/* header_timeout */
	uint16_t		 port;
	struct sockaddr_storage	 upaddr;	/* the upstream's, for guesses */
	socklen_t		 upaddrlen;	/* 0: unknown */
	unsigned char		*offer;		/* the client's ALPN list */
	size_t			 offer_len;
	/*
	 * The protocol the client's handshake selects: the upstream's, or,
	 * when the client's handshake runs beside the upstream's, the one
	 * it chose last time (guessed), checked against it afterwards.
	 */
	unsigned char		 alpn[256];
	unsigned char		 alpn_len;
	bool			 guessed;
	bool			 client_started;	/* its SSL runs */
	BIO			*front;		/* its BIO, holding if guessed */
	struct event		*flush_ev;	/* what of the flight may go */
	/* Guessed: the key a refusal's alert is sealed with (TLS 1.3). */
	unsigned char		 hs_secret[TLSFLIGHT_SECRET_MAX];
	size_t			 hs_secret_len;
	struct event		*gone_ev;	/* the client, until its turn */
	bool			 await_flush;	/* the 200 is still queued */
};

static int	intercept_ssl_index = -1;
/* The BIO that hands OpenSSL the bytes read before the socket's. */
static BIO_METHOD *intercept_prefix_method;

/* Take the peeked hello out of the socket, so that a close is clean. */
static void
intercept_drain(evutil_socket_t fd, size_t len)
{
	char	 sink[4096];
	ssize_t	 n;

	while (len > 0) {
		n = recv(fd, sink, len < sizeof(sink) ? len : sizeof(sink),
		    MSG_DONTWAIT);
		if (n <= 0)
			break;
		len -= (size_t)n;
	}
}

void
intercept_alert(struct phase_ctx *x, unsigned char alert, int status,
    size_t peeked)
{
	unsigned char	 rec[TLSFLIGHT_RECORD_MAX];

	intercept_drain(bufferevent_getfd(x->bev), peeked);
	bufferevent_disable(x->bev, EV_READ);
	bufferevent_write(x->bev, rec, tlsflight_plain(alert, rec));
	phase_end(x, status, true);
}

/*
 * The BIO in front of the client's socket, both ways. Reads hand out what
 * was read before the socket first. Writes may be held back: the answer
 * to a hello made while the upstream's handshake still runs waits until
 * the upstream passed, and is dropped unsent when it does not; all of its
 * first flight but the last record goes when OpenSSL, done writing it,
 * reads on (partial; after a HelloRetryRequest, the second flight).
 */
struct intercept_bio {
	struct evbuffer		*prefix;	/* read before the socket */
	struct evbuffer		*ready;		/* may go, not sent yet */
	struct evbuffer		*held;		/* written, waits the verdict */
	bool			 holding;
	bool			 partial;	/* a flight to cut, when written */
	SSL			*ssl;		/* borrowed: its version */
	struct event		*flush_ev;	/* borrowed: ready waits */
	size_t			 early;		/* bytes let go before verdict */
	unsigned int		 sealed;	/* records among them, TLS 1.3 */
};

/* The most a held handshake flight may take (certificates included). */
#define INTERCEPT_HELD_MAX	(64 * 1024)

/* Send what may go; false while some of it is still to go. */
static bool
intercept_bio_flush(BIO *b)
{
	struct intercept_bio	*ib = BIO_get_data(b);
	struct evbuffer_iovec	 v;
	int			 n;

	while (relay_peek(ib->ready, &v)) {
		n = BIO_write(BIO_next(b), v.iov_base, (int)v.iov_len);
		if (n <= 0)
			return false;
		evbuffer_drain(ib->ready, (size_t)n);
	}
	return true;
}

/* The suite the client's handshake chose, or NULL. */
static const SSL_CIPHER *
intercept_cipher(const SSL *ssl)
{
	const SSL_CIPHER	*c = SSL_get_current_cipher(ssl);

	return c != NULL ? c : SSL_get_pending_cipher(ssl);
}

/*
 * Whether a refusal could seal its alert for this TLS 1.3 connection: a
 * suite tlsflight_sealed() knows, and the handshake secret from the key
 * log. If not, nothing encrypted may go before the verdict.
 */
static bool
intercept_can_seal(SSL *ssl)
{
	const struct intercept	*ic = SSL_get_ex_data(ssl, intercept_ssl_index);

	return ic != NULL && ic->hs_secret_len > 0 &&
	    tlsflight_can_seal(intercept_cipher(ssl));
}

/*
 * OpenSSL wrote a flight and reads on: all of it but the last record
 * goes now (tlsflight.h), the rest waits for the verdict, and so does
 * everything it writes from here. A TLS 1.3 HelloRetryRequest's flight
 * has no encrypted record: the flight after the second hello is cut too.
 */
static void
intercept_bio_early(BIO *b)
{
	struct intercept_bio	*ib = BIO_get_data(b);
	bool			 tls13 = SSL_version(ib->ssl) == TLS1_3_VERSION;
	unsigned char		*p;
	unsigned int		 sealed;
	size_t			 n;

	ib->partial = false;
	if ((p = evbuffer_pullup(ib->held, -1)) == NULL)
		return;
	n = tlsflight_early(p, evbuffer_get_length(ib->held), tls13, &sealed);
	if (sealed > 0 && !intercept_can_seal(ib->ssl))
		return;
	ib->partial = tls13 && sealed == 0;
	if (n == 0)
		return;
	evbuffer_remove_buffer(ib->held, ib->ready, n);
	ib->early += n;
	ib->sealed += sealed;
	if (!intercept_bio_flush(b))
		event_add(ib->flush_ev, NULL);
}

static int
intercept_prefix_read(BIO *b, char *out, int outl)
{
	struct intercept_bio	*ib = BIO_get_data(b);
	int			 n;

	BIO_clear_retry_flags(b);
	if (ib->partial && evbuffer_get_length(ib->held) > 0)
		intercept_bio_early(b);
	if (outl <= 0)
		return 0;
	if (evbuffer_get_length(ib->prefix) > 0)
		return evbuffer_remove(ib->prefix, out, (size_t)outl);
	n = BIO_read(BIO_next(b), out, outl);
	BIO_copy_next_retry(b);
	return n;
}

static int
intercept_prefix_write(BIO *b, const char *in, int inl)
{
	struct intercept_bio	*ib = BIO_get_data(b);
	int			 n;

	BIO_clear_retry_flags(b);
	if (inl <= 0)
		return 0;
	if (ib->holding) {
		if (evbuffer_get_length(ib->held) + (size_t)inl >
		    INTERCEPT_HELD_MAX || evbuffer_add(ib->held, in,
		    (size_t)inl) == -1)
			return -1;
		return inl;
	}
	/* What was held goes first; until then, try again later. */
	if (!intercept_bio_flush(b)) {
		BIO_set_retry_write(b);
		return -1;
	}
	n = BIO_write(BIO_next(b), in, inl);
	BIO_copy_next_retry(b);
	return n;
}

/* The socket answers; pending bytes include those not yet handed out. */
static long
intercept_prefix_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct intercept_bio	*ib = BIO_get_data(b);
	long			 n;

	if (BIO_next(b) == NULL)
		return 0;
	n = BIO_ctrl(BIO_next(b), cmd, num, ptr);
	if (cmd == BIO_CTRL_PENDING && n >= 0)
		n += (long)evbuffer_get_length(ib->prefix);
	if (cmd == BIO_CTRL_WPENDING && n >= 0)
		n += (long)(evbuffer_get_length(ib->ready) +
		    evbuffer_get_length(ib->held));
	return n;
}

static int
intercept_prefix_create(BIO *b)
{
	struct intercept_bio	*ib;

	ib = xcalloc(1, sizeof(*ib));
	ib->prefix = evbuffer_new();
	ib->ready = evbuffer_new();
	ib->held = evbuffer_new();
	if (ib->prefix == NULL || ib->ready == NULL || ib->held == NULL) {
		if (ib->prefix != NULL)
			evbuffer_free(ib->prefix);
		if (ib->ready != NULL)
			evbuffer_free(ib->ready);
		if (ib->held != NULL)
			evbuffer_free(ib->held);
		free(ib);
		return 0;
	}
	BIO_set_data(b, ib);
	BIO_set_init(b, 1);
	return 1;
}

/* Free the bytes never handed out or sent. */
static int
intercept_prefix_destroy(BIO *b)
{
	struct intercept_bio	*ib = BIO_get_data(b);

	if (ib != NULL) {
		evbuffer_free(ib->prefix);
		evbuffer_free(ib->ready);
		evbuffer_free(ib->held);
		free(ib);
	}
	BIO_set_data(b, NULL);
	return 1;
}

/* The method of the BIO above, made once. */
static BIO_METHOD *
intercept_prefix_method_new(void)
{
	BIO_METHOD	*m;

	if ((m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER,
	    "pinproxy client prefix")) == NULL)
		return NULL;
	BIO_meth_set_read(m, intercept_prefix_read);
	BIO_meth_set_write(m, intercept_prefix_write);
	BIO_meth_set_ctrl(m, intercept_prefix_ctrl);
	BIO_meth_set_create(m, intercept_prefix_create);
	BIO_meth_set_destroy(m, intercept_prefix_destroy);
	return m;
}

/*
 * The client's SSL on fd through one BIO in front of the socket (the
 * socket BIO behind it is what libevent finds the descriptor in): its
 * reads start with what the bufferevent already took from the socket
 * (moved out of prefix), and never read ahead, so once those bytes are
 * gone the socket's readiness tells libevent the truth. With hold, what it
 * writes waits for intercept_release() (but the early part of its first
 * flight, which flush_ev sends when the socket cannot take it at once).
 * NULL on failure.
 */
static BIO *
intercept_client_bio(SSL *ssl, evutil_socket_t fd, struct evbuffer *prefix,
    struct event *flush_ev)
{
	struct intercept_bio	*ib;
	BIO			*front, *sock;

	if ((front = BIO_new(intercept_prefix_method)) == NULL)
		return NULL;
	if ((sock = BIO_new_socket(fd, BIO_NOCLOSE)) == NULL) {
		BIO_free(front);
		return NULL;
	}
	ib = BIO_get_data(front);
	evbuffer_add_buffer(ib->prefix, prefix);
	ib->holding = ib->partial = flush_ev != NULL;
	ib->ssl = ssl;
	ib->flush_ev = flush_ev;
	BIO_push(front, sock);
	SSL_set_bio(ssl, front, front);
	return front;
}

/* The alert a client sent, from OpenSSL's error e; NULL when none. */
static const struct intercept_alert_name *
intercept_alert_of(unsigned long e)
{
	int	 r = ERR_GET_REASON(e);
	size_t	 i;

	if (ERR_GET_LIB(e) != ERR_LIB_SSL || r < SSL_AD_REASON_OFFSET ||
	    r > SSL_AD_REASON_OFFSET + 255)
		return NULL;
	for (i = 0; i < sizeof(intercept_alerts) /
	    sizeof(intercept_alerts[0]); i++)
		if (intercept_alerts[i].code == r - SSL_AD_REASON_OFFSET)
			return &intercept_alerts[i];
	return NULL;
}

/*
 * The first OpenSSL error the client's TLS failed with (0: none, a socket
 * error or end), and the alert the client sent, if one (NULL); the
 * bufferevent's errors are taken.
 */
static unsigned long
intercept_tls_error(struct bufferevent *bev,
    const struct intercept_alert_name **a)
{
	unsigned long	 e, first = 0;

	*a = NULL;
	while ((e = bufferevent_get_openssl_error(bev)) != 0) {
		/* libevent's own result codes (SSL_ERROR_*) say nothing. */
		if (ERR_GET_LIB(e) == 0)
			continue;
		if (first == 0)
			first = e;
		if (*a == NULL)
			*a = intercept_alert_of(e);
	}
	return first;
}

void
intercept_log_tls_failed(struct intercept_env *ie, const char *client,
    const char *host, const char *alert, const char *reason,
    const char *hint)
{
	struct logline	 l;
	char		 key[CONF_ADDR_TEXT_MAX + HOSTMATCH_NAME_MAX + 2];

	snprintf(key, sizeof(key), "%.*s %s", (int)throttle_addr_len(client),
	    client, host);
	if (!throttle_allow(ie->tls_failed, key, strlen(key), throttle_now()))
		return;
	log_begin(&l, EV_CLIENT_TLS_FAILED);
	log_str(&l, LK_HOST, host);
	log_str(&l, LK_CLIENT, client);
	log_str(&l, LK_ALERT, alert);
	if (reason != NULL)
		log_str(&l, LK_REASON, reason);
	if (hint != NULL)
		log_str(&l, LK_HINT, hint);
	log_end(&l);
}

/*
 * Say at warn level why the client's handshake failed: an untrusted CA is
 * the most common setup mistake.
 */
static void
intercept_log_client_tls_failed(struct intercept *ic, unsigned long first,
    const struct intercept_alert_name *a)
{
	char	 why[160];

	snprintf(why, sizeof(why), "%s", first != 0 ?
	    ERR_reason_error_string(first) : "connection closed");
	log_msg(EV_DEBUG, "client %s: TLS handshake for %s failed: %s",
	    ic->x->client, ic->host, why);
	intercept_log_tls_failed(ic->env, ic->x->client, ic->host,
	    a != NULL ? a->name : "none", a == NULL ? why : NULL,
	    a != NULL ? a->hint : NULL);
}

/*
 * No leaf could be forged for ic->host (a CA OpenSSL cannot issue under):
 * every intercepted client fails so, so it is said at warn as the
 * client's own failures are.
 */
static void
intercept_log_forge_failed(struct intercept *ic)
{
	unsigned long	 e = ERR_peek_last_error();
	char		 why[200];

	snprintf(why, sizeof(why), "cannot forge a certificate under the "
	    "CA: %s", e != 0 && ERR_reason_error_string(e) != NULL ?
	    ERR_reason_error_string(e) : "no reason given");
	ERR_clear_error();
	log_msg(EV_DEBUG, "client %s: %s for %s", ic->x->client, why,
	    ic->host);
	intercept_log_tls_failed(ic->env, ic->x->client, ic->host,
	    "handshake_failure", why, NULL);
}

/*
 * The leaf for ic->host from the generation's cache (the caller owns it),
 * counted as a hit or a miss.
 */
static X509 *
intercept_leaf(struct intercept *ic)
{
	struct runconf		*rc = ic->x->rc;
	struct metrics		*m = ic->x->env->sinks.metrics;
	struct leafcert_stats	 before, after;
	X509			*leaf;

	leafcert_cache_stats(rc->leaves, &before);
	leaf = leafcert_get(rc->leaves, rc->ca, ic->host);
	leafcert_cache_stats(rc->leaves, &after);
	metrics_add(m, METRIC_LEAFCERT_CACHE_HITS, after.hits - before.hits);
	metrics_add(m, METRIC_LEAFCERT_CACHE_MISSES,
	    after.misses - before.misses);
	return leaf;
}

/*
 * The session-ID context of a client's connection: a digest of the CA
 * and of the host its leaf names. A client resumes only a session made
 * under the same CA (one from before the CA changed would skip the new
 * CA's certificate) for the same host (one made for another would skip
 * the certificate for this one): OpenSSL checks it for session IDs and
 * tickets alike, and makes a full handshake otherwise.
 */
static void
intercept_session_context(SSL *ssl, const struct ca *ca, const char *host)
{
	unsigned char	 in[CA_ID_LEN + HOSTMATCH_NAME_MAX];
	unsigned char	 ctx[SHA256_DIGEST_LENGTH];
	size_t		 len = strnlen(host, HOSTMATCH_NAME_MAX);

	memcpy(in, ca_id(ca), CA_ID_LEN);
	memcpy(in + CA_ID_LEN, host, len);
	/* Without a digest, a context no other connection has: no resuming. */
	if (!EVP_Digest(in, CA_ID_LEN + len, ctx, NULL, EVP_sha256(), NULL))
		(void)RAND_bytes(ctx, sizeof(ctx));
	SSL_set_session_id_context(ssl, ctx, sizeof(ctx));
}

/* The client's SSL, with a leaf forged by the generation's CA; or NULL. */
static SSL *
intercept_client_ssl(struct intercept *ic)
{
	struct runconf	*rc = ic->x->rc;
	X509		*leaf;
	SSL		*ssl;

	if ((leaf = intercept_leaf(ic)) == NULL)
		return NULL;
	if ((ssl = SSL_new(ic->env->server)) == NULL) {
		X509_free(leaf);
		return NULL;
	}
	SSL_use_certificate(ssl, leaf);
	SSL_use_PrivateKey(ssl, leafcert_key(rc->leaves));
	/* The CA too: a client may trust it by its SPKI (Chromium's flag). */
	SSL_add1_chain_cert(ssl, ca_cert(rc->ca));
	intercept_session_context(ssl, rc->ca, ic->host);
	X509_free(leaf);
	SSL_set_ex_data(ssl, intercept_ssl_index, ic);
	return ssl;
}

/* The socket can take more of what may go to the client. */
static void
intercept_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct intercept	*ic = arg;

	if (ic->front == NULL || intercept_bio_flush(ic->front) ||
	    !BIO_should_retry(BIO_next(ic->front)))
		event_del(ic->flush_ev);
}

/*
 * Answer the client's hello on its socket: the TLS bufferevent takes over
 * the socket and becomes the client's transport. With hold, all but the
 * last record of the answer goes when written (intercept_bio_early()),
 * the rest stays in the BIO until intercept_release(). False when the
 * connection ended.
 */
static bool
intercept_handshake_client(struct intercept *ic, bool hold)
{
	struct phase_ctx	*x = ic->x;
	evutil_socket_t		 fd = bufferevent_getfd(x->bev);
	struct bufferevent	*bev;
	SSL			*ssl;

	if (!hold)
		phase_set_state(x, CONN_CLIENT_TLS);
	sockwatch_free(&ic->gone_ev);
	if ((ssl = intercept_client_ssl(ic)) == NULL) {
		intercept_log_forge_failed(ic);
		intercept_alert(x, INTERCEPT_ALERT_HANDSHAKE_FAILURE, 502,
		    ic->peeked);
		return false;
	}
	if (hold && ic->flush_ev == NULL)
		ic->flush_ev = event_new(x->env->base, fd, EV_WRITE |
		    EV_PERSIST, intercept_flush_cb, ic);
	if ((hold && ic->flush_ev == NULL) ||
	    (ic->front = intercept_client_bio(ssl, fd,
	    bufferevent_get_input(x->bev), hold ? ic->flush_ev : NULL)) ==
	    NULL ||
	    (bev = bufferevent_openssl_socket_new(x->env->base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_DEFER_CALLBACKS)) == NULL) {
		SSL_free(ssl);
		ic->front = NULL;
		intercept_alert(x, INTERCEPT_ALERT_HANDSHAKE_FAILURE, 502,
		    ic->peeked);
		return false;
	}
	/* OpenSSL reads the hello from the socket from now on. */
	ic->peeked = 0;
	ic->client_started = true;
	/* The connection owns ssl from here, the bufferevent borrows it. */
	phase_set_transport(x, bev);
	relay_tune(bev);
	/* Writable at once: that runs the handshake on the bytes it holds. */
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return true;
}

/*
 * The alert sealed as the record the held Finished would have been (the
 * sealed-th under the server's handshake key); 0 when it cannot be.
 */
static size_t
intercept_sealed_alert(struct intercept *ic, unsigned int seq,
    unsigned char alert, unsigned char *rec)
{
	const SSL_CIPHER	*c = intercept_cipher(ic->x->tls);
	size_t			 n = 0;

	if (ic->hs_secret_len > 0)
		n = tlsflight_sealed(c, ic->hs_secret, ic->hs_secret_len, seq,
		    alert, rec);
	if (n == 0)
		log_msg(EV_DEBUG, "client %s: cannot seal the alert for %s "
		    "(%s): closed without one", ic->x->client, ic->host,
		    c != NULL ? SSL_CIPHER_get_name(c) : "no cipher");
	return n;
}

/*
 * Refuse the client whose handshake answer is held: a fatal alert ends
 * it in place of what was held, which is never sent. While the client
 * has seen no encrypted record it goes in the clear, as when its
 * handshake had not begun.
 */
static void
intercept_refuse_held(struct intercept *ic, unsigned char alert, int status)
{
	struct intercept_bio	*ib = ic->front != NULL ?
				    BIO_get_data(ic->front) : NULL;
	unsigned char		 rec[TLSFLIGHT_RECORD_MAX];
	unsigned int		 sealed = ib != NULL ? ib->sealed : 0;
	size_t			 n;

	if (sealed == 0)
		n = tlsflight_plain(alert, rec);
	else
		n = intercept_sealed_alert(ic, sealed, alert, rec);
	log_msg(EV_DEBUG, "client %s: answer for %s refused, %zu bytes of it "
	    "let go before the verdict, the alert %s", ic->x->client, ic->host,
	    ib != NULL ? ib->early : 0, n == 0 ? "not sent" : sealed > 0 ?
	    "sealed" : "in the clear");
	/*
	 * Behind what went early, if the socket takes all of that (a client
	 * that does not read during its own handshake may get no alert).
	 */
	if (n > 0 && (ib == NULL || intercept_bio_flush(ic->front)))
		(void)send(bufferevent_getfd(ic->x->bev), rec, n,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
	bufferevent_disable(ic->x->bev, EV_READ);
	phase_end(ic->x, status, true);
}

/* Let the held answer go: the upstream passed, as guessed. */
static void
intercept_release(struct intercept *ic)
{
	struct intercept_bio	*ib = BIO_get_data(ic->front);

	log_msg(EV_DEBUG, "client %s: answer for %s released, %zu bytes of it "
	    "let go before the verdict", ic->x->client, ic->host, ib->early);
	ib->holding = ib->partial = false;
	evbuffer_add_buffer(ib->ready, ib->held);
	/* A fresh socket takes a handshake flight; if not, when it can. */
	if (!intercept_bio_flush(ic->front))
		event_add(ic->flush_ev, NULL);
}

/*
 * The upstream passed. From here the client's handshake runs under
 * header_timeout, and an upstream that ends before the relay ends the
 * connection; what it sends meanwhile waits, up to RELAY_HIGH_WATER.
 */
static void
intercept_accept_client(struct intercept *ic)
{
	struct phase_ctx	*x = ic->x;
	struct bufferevent	*up = upstream_bev(ic->up);
	struct timeval		 tv = cv_timeval(x->rc->conf->header_timeout_ms);

	evtimer_add(ic->timer, &tv);
	phase_watch_upstream(x, up);
	bufferevent_setwatermark(up, EV_READ, 0, RELAY_HIGH_WATER);
	bufferevent_enable(up, EV_READ);
	if (ic->client_started) {
		phase_set_state(x, CONN_CLIENT_TLS);
		intercept_release(ic);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(x->bev)) > 0) {
		/* The socket changes hands only once the 200 is out. */
		ic->await_flush = true;
		bufferevent_setwatermark(x->bev, EV_WRITE, 0, 0);
		bufferevent_enable(x->bev, EV_WRITE);
		return;
	}
	(void)intercept_handshake_client(ic, false);
}

/* The key of the guess for this connection. */
static void
intercept_guess_key(const struct intercept *ic, struct alpnguess_key *k)
{
	k->host = ic->host;
	k->port = ic->port;
	k->pinset = ic->ps;
	k->addr = &ic->upaddr;
	k->addrlen = ic->upaddrlen;
	k->offer = ic->offer;
	k->offer_len = ic->offer_len;
}

/*
 * Refuse the client at the upstream's verdict: with the answer it was
 * being sent meanwhile held back, or before its handshake began.
 */
static void
intercept_refuse_at_verdict(struct intercept *ic, unsigned char alert,
    int status)
{
	if (ic->client_started)
		intercept_refuse_held(ic, alert, status);
	else
		intercept_alert(ic->x, alert, status, ic->peeked);
}

static void
intercept_upstream_tls_cb(struct upstream *u, enum upstream_status st,
    void *arg)
{
	struct intercept	*ic = arg;
	struct alpnguess	*g = ic->x->rc->alpn;
	struct alpnguess_key	 k;
	const unsigned char	*sel;
	unsigned int		 sel_len;
	unsigned char		 alert;
	int			 status;

	if (st != UPSTREAM_OK) {
		/* The access line's status is the one an HTTP client gets. */
		alert = upstream_outcome(st)->verdict ?
		    INTERCEPT_ALERT_ACCESS_DENIED :
		    INTERCEPT_ALERT_HANDSHAKE_FAILURE;
		status = http_error_status(upstream_outcome(st)->error);
		intercept_refuse_at_verdict(ic, alert, status);
		return;
	}
	/*
	 * Judged under pins a reload replaced since: not relayed. Its
	 * upstream was chosen and checked under the old configuration; the
	 * client connects again, under the new one.
	 */
	if (ic->x->rc->retired) {
		phase_log_blocked(ic->x, ic->host, "upstream verified after a "
		    "reload, under the old configuration: connect again");
		intercept_refuse_at_verdict(ic,
		    INTERCEPT_ALERT_HANDSHAKE_FAILURE, 503);
		return;
	}
	intercept_guess_key(ic, &k);
	upstream_alpn(ic->up, &sel, &sel_len);
	if (ic->guessed && (sel_len != ic->alpn_len ||
	    (sel_len > 0 && memcmp(sel, ic->alpn, sel_len) != 0))) {
		/* The client's retry runs in series, and succeeds. */
		alpnguess_drop(g, &k);
		log_msg(EV_DEBUG, "client %s: the upstream for %s chose "
		    "another ALPN protocol than last time: refused, the next "
		    "handshake waits for the upstream", ic->x->client,
		    ic->host);
		intercept_refuse_held(ic, INTERCEPT_ALERT_HANDSHAKE_FAILURE,
		    502);
		return;
	}
	alpnguess_put(g, &k, sel, sel_len);
	if (!ic->guessed && sel_len > 0 && sel_len < sizeof(ic->alpn)) {
		memcpy(ic->alpn, sel, sel_len);
		ic->alpn_len = (unsigned char)sel_len;
	}
	intercept_accept_client(ic);
}

/*
 * Whether the client's handshake can run beside the upstream's: the 200
 * is out, and the upstream chose a protocol last time that this client
 * offers too (or none). The guess goes to ic->alpn.
 */
static bool
intercept_guess(struct intercept *ic, const struct intercept_args *a)
{
	struct alpnguess_key	 k;
	unsigned char		 proto[ALPNGUESS_PROTO_MAX];
	size_t			 len;

	intercept_guess_key(ic, &k);
	/* The next CONNECT to this host makes the upstream's hello with it. */
	alpnguess_put_offer(ic->x->rc->alpn, &k);
	if (evbuffer_get_length(bufferevent_get_output(ic->x->bev)) > 0 ||
	    !alpnguess_get(ic->x->rc->alpn, &k, proto, &len) ||
	    !alpnguess_offered(a->alpn, a->alpn_len, proto, len))
		return false;
	memcpy(ic->alpn, proto, len);
	ic->alpn_len = (unsigned char)len;
	ic->guessed = true;
	return true;
}

/*
 * The client's socket while the upstream's handshake runs and the
 * client's waits: a client that left (a reset, or its end with nothing
 * beyond its hello) ends the connection now, not when the upstream is
 * done.
 */
static void
intercept_gone_cb(evutil_socket_t fd, short what, void *arg)
{
	struct intercept	*ic = arg;
	struct phase_ctx	*x = ic->x;

	if (!phase_client_left(x, what, ic->peeked +
	    evbuffer_get_length(bufferevent_get_input(x->bev))))
		return;
	log_msg(EV_DEBUG, "client %s left during the upstream handshake for "
	    "%s", x->client, ic->host);
	phase_end(x, 200, true);
}

static void
intercept_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct intercept	*ic = arg;
	char			 within[32];

	log_msg(EV_DEBUG, "client %s: no complete TLS handshake within %s",
	    ic->x->client, cv_duration_text(ic->x->rc->conf->header_timeout_ms,
	    within, sizeof(within)));
	phase_end(ic->x, 408, true);
}

/*
 * The handshake is over: when nothing waits in front of the socket, the
 * client's SSL reads and writes the socket itself from now on, one BIO
 * call less per record (and per control call) for the relay's life.
 */
static void
intercept_bio_drop(struct intercept *ic)
{
	struct intercept_bio	*ib;
	BIO			*sock;

	if (ic->front == NULL || ic->x->tls == NULL)
		return;
	ib = BIO_get_data(ic->front);
	if (ib->holding || evbuffer_get_length(ib->prefix) > 0 ||
	    evbuffer_get_length(ib->ready) > 0 ||
	    evbuffer_get_length(ib->held) > 0)
		return;
	sock = BIO_pop(ic->front);
	/* The SSL lets its one reference to front go: front is freed. */
	SSL_set_bio(ic->x->tls, sock, sock);
	ic->front = NULL;
}

static void
intercept_on_client(void *arg, short what)
{
	struct intercept			*ic = arg;
	struct phase_ctx			*x = ic->x;
	const struct intercept_alert_name	*a;
	unsigned long				 first;

	if (what == EV_READ)
		return;
	if (what == EV_WRITE) {
		/* The rest of the 200 reached the client: its turn now. */
		if (ic->await_flush && evbuffer_get_length(
		    bufferevent_get_output(x->bev)) == 0) {
			ic->await_flush = false;
			(void)intercept_handshake_client(ic, false);
		}
		return;
	}
	if (!ic->client_started) {
		/* The client left before its handshake began. */
		phase_end(x, 200, true);
		return;
	}
	if ((what & BEV_EVENT_CONNECTED) && x->state != CONN_CLIENT_TLS) {
		/*
		 * The client finished without the held last record: it
		 * computed it itself (the server's Finished in TLS 1.3, the
		 * four bytes of ServerHelloDone in TLS 1.2), which no client
		 * following the protocol does. Refused before the verdict;
		 * nothing it sent is relayed.
		 */
		phase_log_blocked(x, ic->host, "TLS handshake finished before "
		    "the upstream's verdict");
		intercept_refuse_held(ic, INTERCEPT_ALERT_ACCESS_DENIED, 502);
		return;
	}
	first = intercept_tls_error(x->bev, &a);
	if (x->state != CONN_CLIENT_TLS && ((what & BEV_EVENT_EOF) ||
	    first == 0 ||
	    ERR_GET_REASON(first) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
		/*
		 * The client left while the last of its answer was held: it
		 * waited for pinproxy, so its end without an alert (OpenSSL's
		 * "unexpected EOF", a reset) is a client that left, not one
		 * that refused the certificate.
		 */
		phase_end(x, 200, true);
		return;
	}
	if ((what & BEV_EVENT_CONNECTED) && x->state == CONN_CLIENT_TLS) {
		evtimer_del(ic->timer);
		/*
		 * Its upstream passed under pins that a reload replaced
		 * since, and the client chose when to finish: not relayed.
		 */
		if (x->rc->retired) {
			phase_log_blocked(x, ic->host, "TLS handshake finished "
			    "after a reload: connect again");
			phase_end(x, 503, true);
			return;
		}
		intercept_bio_drop(ic);
		phase_relay(x, upstream_bev(ic->up), 200, false, NULL);
		return;
	}
	metrics_inc(x->env->sinks.metrics, METRIC_HANDSHAKE_FAILURES_CLIENT);
	intercept_log_client_tls_failed(ic, first, a);
	/* Its answer still held: OpenSSL's alert went in there, unsent. */
	if (x->state != CONN_CLIENT_TLS) {
		intercept_refuse_held(ic, INTERCEPT_ALERT_HANDSHAKE_FAILURE,
		    502);
		return;
	}
	phase_end(x, 502, true);
}

/*
 * The upstream ended before the relay began: so does the client, but
 * when it ended in order (its close_notify came) after sending something.
 * Then the client gets that and the end once its handshake is done: the
 * relay reads the upstream first thing, and finds its end there.
 */
static void
intercept_on_upstream(void *arg, short what)
{
	struct intercept	*ic = arg;
	struct bufferevent	*up = upstream_bev(ic->up);
	SSL			*ssl;

	if (what == EV_READ || what == EV_WRITE)
		return;
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    up != NULL && evbuffer_get_length(bufferevent_get_input(up)) > 0 &&
	    (ssl = bufferevent_openssl_get_ssl(up)) != NULL &&
	    (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN)) {
		log_msg(EV_DEBUG, "client %s: the upstream for %s ended "
		    "after %zu bytes, relayed once the client's handshake is "
		    "done", ic->x->client, ic->host,
		    evbuffer_get_length(bufferevent_get_input(up)));
		return;
	}
	log_msg(EV_DEBUG, "client %s: the upstream for %s %s before the "
	    "relay", ic->x->client, ic->host, (what & BEV_EVENT_EOF) ?
	    "closed" : "failed");
	phase_end(ic->x, 502, true);
}

static void
intercept_free(void *arg)
{
	struct intercept	*ic = arg;

	upstream_release(ic->up);
	OPENSSL_cleanse(ic->hs_secret, sizeof(ic->hs_secret));
	event_free(ic->timer);
	sockwatch_free(&ic->gone_ev);
	if (ic->flush_ev != NULL)
		event_free(ic->flush_ev);
	free(ic->offer);
	free(ic);
}

/*
 * The relay runs: the connection keeps the upstream from now on, and
 * frees ic, which the client's SSL no longer points to.
 */
static struct upstream *
intercept_relayed(void *arg)
{
	struct intercept	*ic = arg;
	struct upstream		*up = ic->up;

	if (ic->x->tls != NULL)
		SSL_set_ex_data(ic->x->tls, intercept_ssl_index, NULL);
	ic->up = NULL;
	return up;
}

static SSL *
intercept_upstream_tls(void *arg)
{
	struct intercept	*ic = arg;

	return ic->up != NULL ? upstream_tls(ic->up) : NULL;
}

const struct phase_ops intercept_ops = {
	.name = "intercept",
	.on_client = intercept_on_client,
	.on_upstream = intercept_on_upstream,
	.free = intercept_free,
	.relayed = intercept_relayed,
	.upstream_tls = intercept_upstream_tls,
	/*
	 * No answered op: until the relay, whose start logs the 200, the
	 * tunnel is not set up, and a cut (a stop, a reload's deny pins)
	 * logs its own status, as a timeout or a failure then would.
	 */
};

void
intercept_start(struct phase_ctx *x, const struct intercept_args *a)
{
	struct intercept	*ic;
	bool			 guessed;

	ic = xcalloc(1, sizeof(*ic));
	ic->x = x;
	ic->env = x->env->intercept;
	ic->up = a->up;
	ic->ps = a->ps;
	ic->port = a->port;
	ic->peeked = a->peeked;
	if (a->alpn_len > 0) {
		ic->offer = xmalloc(a->alpn_len);
		memcpy(ic->offer, a->alpn, a->alpn_len);
		ic->offer_len = a->alpn_len;
	}
	xstrlcpy(ic->host, a->host, sizeof(ic->host));
	/* The upstream is connected: its address is part of a guess's key. */
	ic->upaddrlen = sizeof(ic->upaddr);
	if (getpeername(upstream_fd(ic->up), (struct sockaddr *)&ic->upaddr,
	    &ic->upaddrlen) == -1)
		ic->upaddrlen = 0;
	ic->timer = evtimer_new(x->env->base, intercept_timeout_cb, ic);
	x->ops = &intercept_ops;
	x->phase = ic;
	x->acc.mode = "intercept";
	phase_set_host(x, ic->host);
	bufferevent_disable(x->bev, EV_READ);
	upstream_retarget(ic->up, ic->ps, ic->host, a->by_address);
	phase_set_state(x, CONN_UPSTREAM_TLS);
	guessed = intercept_guess(ic, a);
	if (!upstream_start_tls(ic->up, a->alpn, a->alpn_len, true,
	    intercept_upstream_tls_cb, ic))
		return;
	/*
	 * With a guess, the client's handshake runs meanwhile, its last
	 * record held: the upstream's hello is out already, so the upstream works on its part
	 * while pinproxy works on the client's. Without one, the client's
	 * socket is watched meanwhile (not while the 200 is still queued:
	 * see tunnel_watch_dial()).
	 */
	if (!guessed) {
		if (evbuffer_get_length(bufferevent_get_output(x->bev)) == 0)
			ic->gone_ev = sockwatch_new(x->env->base, x->fd,
			    intercept_gone_cb, ic);
		return;
	}
	log_msg(EV_DEBUG, "client %s: answering the hello for %s beside the "
	    "upstream handshake (ALPN %.*s)", x->client, ic->host,
	    ic->alpn_len > 0 ? (int)ic->alpn_len : 4,
	    ic->alpn_len > 0 ? (const char *)ic->alpn : "none");
	(void)intercept_handshake_client(ic, true);
}

/*
 * OpenSSL's key log: the server's handshake traffic secret of a guessed
 * connection, which a refusal after the early part of the flight seals
 * its alert with (tlsflight.h). Nothing is written anywhere.
 */
static void
intercept_keylog_cb(const SSL *ssl, const char *line)
{
	static const char	 label[] = "SERVER_HANDSHAKE_TRAFFIC_SECRET ";
	struct intercept	*ic = SSL_get_ex_data(ssl, intercept_ssl_index);
	const char		*hex;
	size_t			 n;

	if (ic == NULL || !ic->guessed ||
	    strncmp(line, label, sizeof(label) - 1) != 0 ||
	    (hex = strrchr(line, ' ')) == NULL)
		return;
	if (OPENSSL_hexstr2buf_ex(ic->hs_secret, sizeof(ic->hs_secret), &n,
	    hex + 1, '\0') != 1)
		n = 0;
	ic->hs_secret_len = n;
}

/* Select the protocol the upstream selected, or none. */
static int
intercept_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	struct intercept	*ic = SSL_get_ex_data(ssl, intercept_ssl_index);

	if (ic == NULL || ic->alpn_len == 0)
		return SSL_TLSEXT_ERR_NOACK;
	*out = ic->alpn;
	*outlen = ic->alpn_len;
	return SSL_TLSEXT_ERR_OK;
}

struct intercept_env *
intercept_env_new(char *err, size_t errlen)
{
	struct intercept_env	*ie;

	if (intercept_ssl_index == -1)
		intercept_ssl_index = SSL_get_ex_new_index(0, NULL, NULL,
		    NULL, NULL);
	if (intercept_prefix_method == NULL &&
	    (intercept_prefix_method = intercept_prefix_method_new()) ==
	    NULL) {
		snprintf(err, errlen, "cannot create the client TLS BIO");
		return NULL;
	}
	ie = xcalloc(1, sizeof(*ie));
	if ((ie->server = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errlen, "cannot create the TLS server context");
		free(ie);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ie->server, TLS1_2_VERSION);
	SSL_CTX_set_mode(ie->server, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ie->server, SSL_OP_NO_RENEGOTIATION);
	/*
	 * One TLS 1.3 ticket is what a client's next connection resumes
	 * with; OpenSSL's default second one costs an encryption on every
	 * intercepted handshake.
	 */
	SSL_CTX_set_num_tickets(ie->server, 1);
	SSL_CTX_set_alpn_select_cb(ie->server, intercept_alpn_cb, NULL);
	SSL_CTX_set_keylog_callback(ie->server, intercept_keylog_cb);
	ie->tls_failed = throttle_new(INTERCEPT_TLS_FAILED_SLOTS,
	    INTERCEPT_TLS_FAILED_WINDOW);
	return ie;
}

void
intercept_env_free(struct intercept_env *ie)
{
	if (ie == NULL)
		return;
	SSL_CTX_free(ie->server);
	throttle_free(ie->tls_failed);
	free(ie);
}

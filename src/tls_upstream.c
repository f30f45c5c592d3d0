/*
 * Upstream TLS contexts and the session cache of one configuration
 * generation. A session is kept only once the full handshake that made it
 * passed verification and the pin check (TLS 1.3 tickets arrive after the
 * handshake, TLS 1.2 sessions before the verdict: both wait for it), keyed
 * by host, port and pin set; resuming one reuses that verdict.
 */
#include "config.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "hostmatch.h"
#include "keydecode.h"
#include "monotime.h"
#include "pincheck.h"
#include "tls_upstream.h"
#include "trust.h"
#include "verifycache.h"
#include "xmalloc.h"

/*
 * A kept session and the verdict of the handshake that made it, with the
 * context (the trust) that verified it: a session made under a pin set's
 * ca_file is never resumed where trust alone must vouch.
 */
struct tls_upstream_session {
	char			 host[HOSTMATCH_NAME_MAX];
	uint16_t		 port;
	const struct pinset	*ps;
	const SSL_CTX		*ctx;
	SSL_SESSION		*sess;		/* NULL: a free slot */
	struct pincheck_result	 res;
	unsigned long		 used;		/* for least-recently-used */
};

/* What one SSL carries (ex_data): where to keep its sessions. */
struct tls_upstream_conn {
	struct tls_upstream	*t;
	uint16_t		 port;
	const struct pinset	*ps;
	const SSL_CTX		*ctx;
	bool			 passed;
	bool			 offered;	/* a kept session */
	SSL_SESSION		*offered_sess;	/* it, until sent */
	struct pincheck_result	 res;
	SSL_SESSION		*pending;	/* before the verdict */
	char			 host[];	/* as long as it is */
};

struct tls_upstream {
	SSL_CTX			 *base;		/* trust only */
	SSL_CTX			**pinset;	/* one a pin set; NULL: use base */
	size_t			  npinset;
	const struct conf	 *conf;
	/*
	 * TLS_UPSTREAM_SESSIONS of them, from the first kept on until the
	 * generation retires: a generation held on by its connections after
	 * a reload then costs no space for them.
	 */
	struct tls_upstream_session *sessions;
	unsigned long		  clock;
	bool			  retired;	/* keeps and offers none */
	struct trust		 *trust;	/* the anchors, for the next */
	struct verifycache	 *verified;	/* chains, of every context */
};

static int	tls_upstream_index = -1;

/* Free what an SSL carries when the SSL goes. */
static void
tls_upstream_conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	struct tls_upstream_conn	*tc = ptr;

	if (tc == NULL)
		return;
	SSL_SESSION_free(tc->pending);
	SSL_SESSION_free(tc->offered_sess);
	free(tc);
}

/* Whether s holds a session for the host, port, pin set and trust of tc. */
static bool
tls_upstream_same(const struct tls_upstream_session *s,
    const struct tls_upstream_conn *tc)
{
	return s->sess != NULL && s->port == tc->port && s->ps == tc->ps &&
	    s->ctx == tc->ctx && strcmp(s->host, tc->host) == 0;
}

/*
 * Keep sess (taken over) for the host, port and pin set of tc: up to
 * TLS_UPSTREAM_PER_HOST of them, since each is used once and connections
 * opened together each want one; beyond that the oldest of the host's
 * goes, and when the cache is full the least recently kept of any.
 */
static void
tls_upstream_keep(struct tls_upstream_conn *tc, SSL_SESSION *sess)
{
	struct tls_upstream		*t = tc->t;
	struct tls_upstream_session	*s, *oldest = NULL, *slot = NULL;
	size_t				 i, same = 0;

	/*
	 * Nor after a report-only verdict: a resumed connection has no
	 * chain to report, and each new one is to be checked and reported
	 * as the first was, not stand on one report for the session's life.
	 */
	if (t->retired || tc->res.verdict == PIN_REPORT_ONLY) {
		SSL_SESSION_free(sess);
		return;
	}
	if (t->sessions == NULL)
		t->sessions = xcalloc(TLS_UPSTREAM_SESSIONS,
		    sizeof(*t->sessions));
	for (i = 0; i < TLS_UPSTREAM_SESSIONS; i++) {
		s = &t->sessions[i];
		if (tls_upstream_same(s, tc)) {
			same++;
			if (oldest == NULL || s->used < oldest->used)
				oldest = s;
		}
		if (slot == NULL || (slot->sess != NULL &&
		    (s->sess == NULL || s->used < slot->used)))
			slot = s;
	}
	if (same >= TLS_UPSTREAM_PER_HOST)
		slot = oldest;
	SSL_SESSION_free(slot->sess);
	xstrlcpy(slot->host, tc->host, sizeof(slot->host));
	slot->port = tc->port;
	slot->ps = tc->ps;
	slot->ctx = tc->ctx;
	slot->sess = sess;
	slot->res = tc->res;
	slot->used = ++t->clock;
}

/*
 * OpenSSL made a session: keep a copy if the pins passed, else wait. A
 * copy, because freeing a connection that was not shut down cleanly (the
 * usual end of an upstream) marks its own session as not resumable.
 */
static int
tls_upstream_new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_upstream_conn	*tc;
	SSL_SESSION			*copy;

	tc = SSL_get_ex_data(ssl, tls_upstream_index);
	if (tc == NULL || (copy = SSL_SESSION_dup(sess)) == NULL)
		return 0;
	if (tc->passed) {
		tls_upstream_keep(tc, copy);
		return 0;
	}
	SSL_SESSION_free(tc->pending);
	tc->pending = copy;
	return 0;
}

/*
 * OpenSSL's verification of a chain, through the chains verified lately
 * (verifycache.h) for the name this connection checks; a configuration
 * that a reload retired keeps none (its handshakes still running verify
 * in full).
 */
static int
tls_upstream_verify_cb(X509_STORE_CTX *sctx, void *arg)
{
	struct tls_upstream_conn	*tc = NULL;
	SSL				*ssl;

	(void)arg;
	/* The certificates are parsed: the rest runs on the providers. */
	keydecode_close();
	ssl = X509_STORE_CTX_get_ex_data(sctx,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl != NULL)
		tc = SSL_get_ex_data(ssl, tls_upstream_index);
	if (tc == NULL || tc->t->verified == NULL || tc->t->retired)
		return X509_verify_cert(sctx);
	return verifycache_verify(tc->t->verified, sctx, tc->host,
	    time(NULL), (long long)(monotime_us() / 1000000));
}

/* A client context that verifies peers against store (takes it over). */
static SSL_CTX *
tls_upstream_ctx(X509_STORE *store, char *err, size_t errlen)
{
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "cannot create a TLS context: %s",
		    ERR_reason_error_string(ERR_get_error()));
		X509_STORE_free(store);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, tls_upstream_verify_cb, NULL);
	/*
	 * Every certificate of a verified chain is pinned against: no chain
	 * verifies that is longer than the verdict records. A depth of d
	 * lets d + 2 certificates through (the leaf, d CAs, the anchor).
	 */
	SSL_CTX_set_verify_depth(ctx, PINCHECK_MAX_CHAIN - 2);
	SSL_CTX_set_cert_store(ctx, store);
	/* Sessions go to our own cache, through the callback only. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, tls_upstream_new_session_cb);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	keydecode_watch(ctx);
	return ctx;
}

struct tls_upstream *
tls_upstream_new(const struct conf *conf, const struct tls_upstream *prev,
    char *err, size_t errlen)
{
	struct tls_upstream	*t;
	struct trust		*tr = NULL;
	X509_STORE		*store;
	size_t			 i;

	if (tls_upstream_index == -1)
		tls_upstream_index = SSL_get_ex_new_index(0, NULL, NULL, NULL,
		    tls_upstream_conn_free);
	t = xcalloc(1, sizeof(*t));
	t->conf = conf;
	t->verified = verifycache_new();
	t->npinset = conf->npinsets;
	t->pinset = xcalloc(conf->npinsets, sizeof(*t->pinset));
	/* The anchors are read once; each context gets a copy. */
	if (prev != NULL)
		tr = trust_again(prev->trust, conf->trust);
	if (tr == NULL && (tr = trust_new(conf->trust, err, errlen)) == NULL)
		goto fail;
	t->trust = tr;
	if ((store = trust_store_plain(tr, err, errlen)) == NULL ||
	    (t->base = tls_upstream_ctx(store, err, errlen)) == NULL)
		goto fail;
	for (i = 0; i < conf->npinsets; i++) {
		if (conf->pinsets[i].ca_file == NULL)
			continue;
		store = trust_store(tr, conf->pinsets[i].ca_file, err, errlen);
		if (store == NULL ||
		    (t->pinset[i] = tls_upstream_ctx(store, err, errlen)) ==
		    NULL)
			goto fail;
	}
	return t;
fail:
	tls_upstream_free(t);
	return NULL;
}

/* Drop every kept session, and the room for them. */
static void
tls_upstream_flush(struct tls_upstream *t)
{
	size_t	 i;

	if (t->sessions == NULL)
		return;
	for (i = 0; i < TLS_UPSTREAM_SESSIONS; i++)
		SSL_SESSION_free(t->sessions[i].sess);
	free(t->sessions);
	t->sessions = NULL;
}

void
tls_upstream_retire(struct tls_upstream *t)
{
	tls_upstream_flush(t);
	if (t->verified != NULL)
		verifycache_flush(t->verified);
	t->retired = true;
}

void
tls_upstream_free(struct tls_upstream *t)
{
	size_t	 i;

	if (t == NULL)
		return;
	tls_upstream_flush(t);
	for (i = 0; i < t->npinset; i++)
		SSL_CTX_free(t->pinset[i]);
	free(t->pinset);
	SSL_CTX_free(t->base);
	trust_free(t->trust);
	verifycache_free(t->verified);
	free(t);
}

/*
 * The verdict of a kept session still stands at now: within the hour,
 * not before it, and not past the end of the chain it judged (a resumed
 * server sends no certificate to find expired).
 */
static bool
tls_upstream_fresh(const struct pincheck_result *res, time_t now)
{
	return now - res->checked < TLS_UPSTREAM_VERDICT_SECONDS &&
	    now >= res->checked && now < res->valid_until;
}

/* Offer the newest kept session for tc's host, port and pin set. */
static void
tls_upstream_offer(struct tls_upstream *t, SSL *ssl,
    struct tls_upstream_conn *tc)
{
	struct tls_upstream_session	*s, *best = NULL;
	time_t				 now = time(NULL);
	size_t				 i;

	if (t->sessions == NULL)
		return;
	for (i = 0; i < TLS_UPSTREAM_SESSIONS; i++) {
		s = &t->sessions[i];
		if (!tls_upstream_same(s, tc))
			continue;
		if (!SSL_SESSION_is_resumable(s->sess) ||
		    !tls_upstream_fresh(&s->res, now)) {
			SSL_SESSION_free(s->sess);
			s->sess = NULL;
			continue;
		}
		if (best == NULL || s->used > best->used)
			best = s;
	}
	if (best == NULL)
		return;
	/*
	 * A session is used once: tickets are not meant for reuse. The
	 * connection holds it until its hello is sent (tls_upstream_unsent).
	 */
	SSL_set_session(ssl, best->sess);
	tc->offered_sess = best->sess;
	best->sess = NULL;
	tc->res = best->res;
	tc->offered = true;
}

SSL *
tls_upstream_ssl(struct tls_upstream *t, const struct pinset *ps,
    bool base_trust, const char *host, uint16_t port,
    const unsigned char *alpn, size_t alpnlen)
{
	struct tls_upstream_conn	*tc;
	SSL_CTX				*ctx = t->base;
	SSL				*ssl;
	X509_VERIFY_PARAM		*param;
	size_t				 i, len;

	if (ps != NULL && !base_trust) {
		i = (size_t)(ps - t->conf->pinsets);
		if (i < t->npinset && t->pinset[i] != NULL)
			ctx = t->pinset[i];
	}
	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	len = strlen(host) + 1;
	tc = xcalloc(1, sizeof(*tc) + len);
	tc->t = t;
	memcpy(tc->host, host, len);
	tc->port = port;
	tc->ps = ps;
	tc->ctx = ctx;
	SSL_set_ex_data(ssl, tls_upstream_index, tc);
	param = SSL_get0_param(ssl);
	/* The name must be a subjectAltName: the subject CN never counts. */
	X509_VERIFY_PARAM_set_hostflags(param, TLS_UPSTREAM_HOSTFLAGS);
	if (hostmatch_is_ip(host)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1)
			goto fail;
	} else {
		if (SSL_set_tlsext_host_name(ssl, host) != 1 ||
		    SSL_set1_host(ssl, host) != 1)
			goto fail;
	}
	if (alpn != NULL && alpnlen > 0 &&
	    SSL_set_alpn_protos(ssl, alpn, (unsigned int)alpnlen) != 0)
		goto fail;
	tls_upstream_offer(t, ssl, tc);
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

void
tls_upstream_unsent(SSL *ssl)
{
	struct tls_upstream_conn	*tc;

	tc = SSL_get_ex_data(ssl, tls_upstream_index);
	if (tc == NULL || tc->offered_sess == NULL)
		return;
	tls_upstream_keep(tc, tc->offered_sess);
	tc->offered_sess = NULL;
	tc->offered = false;
}

void
tls_upstream_sent(SSL *ssl)
{
	struct tls_upstream_conn	*tc;

	tc = SSL_get_ex_data(ssl, tls_upstream_index);
	if (tc == NULL)
		return;
	/* The session is used up; OpenSSL holds it as long as it needs. */
	SSL_SESSION_free(tc->offered_sess);
	tc->offered_sess = NULL;
}

bool
tls_upstream_sendable(SSL *ssl)
{
	struct tls_upstream_conn	*tc;
	bool				 fresh;

	tc = SSL_get_ex_data(ssl, tls_upstream_index);
	if (tc == NULL || !tc->offered)
		return true;
	fresh = tls_upstream_fresh(&tc->res, time(NULL));
	/* Used up, or stale: not kept again, as an offer would drop it. */
	tls_upstream_sent(ssl);
	if (!fresh)
		tc->offered = false;
	return fresh;
}

/* tc's handshake passed: keep a session that came before the verdict. */
static void
tls_upstream_pass(struct tls_upstream_conn *tc)
{
	tc->passed = true;
	if (tc->pending != NULL) {
		tls_upstream_keep(tc, tc->pending);
		tc->pending = NULL;
	}
}

bool
tls_upstream_resumed(SSL *ssl, struct pincheck_result *res)
{
	struct tls_upstream_conn	*tc;

	tc = SSL_get_ex_data(ssl, tls_upstream_index);
	if (tc == NULL || !SSL_session_reused(ssl) || !tc->offered)
		return false;
	/* The resumed session stands for the checked one: it passed too. */
	tls_upstream_pass(tc);
	*res = tc->res;
	return true;
}

void
tls_upstream_passed(SSL *ssl, const struct pincheck_result *res)
{
	struct tls_upstream_conn	*tc;

	tc = SSL_get_ex_data(ssl, tls_upstream_index);
	if (tc == NULL)
		return;
	tc->res = *res;
	tls_upstream_pass(tc);
}

bool
tls_upstream_judged(const SSL *ssl, struct tls_upstream_verdict *v)
{
	const struct tls_upstream_conn	*tc;

	if (ssl == NULL ||
	    (tc = SSL_get_ex_data(ssl, tls_upstream_index)) == NULL ||
	    !tc->passed)
		return false;
	v->host = tc->host;
	v->port = tc->port;
	v->ps = tc->ps;
	v->res = &tc->res;
	v->conf = tc->t->conf;
	return true;
}

/* Drop every certificate of sk, leaving it empty (NULL ok). */
static void
tls_upstream_empty(STACK_OF(X509) *sk)
{
	if (sk == NULL)
		return;
	while (sk_X509_num(sk) > 0)
		X509_free(sk_X509_pop(sk));
}

/*
 * OpenSSL 3.0 keeps a connection's verified chain and the chain its peer
 * sent, parsed, until the connection is freed, and has no call to release
 * them: an upstream's intermediate with its key is some 5 KiB, more than a
 * tenth of what an idle intercepted connection holds. Both stacks belong
 * to the connection and hold one reference to each certificate, so taking
 * each one out and dropping that reference frees what nothing else holds
 * (the peer's certificate stays referenced by the session; a trust anchor
 * by the store) and leaves valid empty stacks. OpenSSL reads them in the
 * handshake, and afterwards only to duplicate the session for a new
 * ticket or to free it, which an empty stack suits; a session kept from
 * such a ticket then has no chain, which resumption does not need (its
 * verdict is kept with it).
 */
void
tls_upstream_release_chains(SSL *ssl)
{
	tls_upstream_empty(SSL_get0_verified_chain(ssl));
	tls_upstream_empty(SSL_get_peer_cert_chain(ssl));
}

void
tls_upstream_verified_counts(const struct tls_upstream *t,
    unsigned long *hits, unsigned long *misses)
{
	*hits = *misses = 0;
	if (t->verified != NULL)
		verifycache_counts(t->verified, hits, misses);
}

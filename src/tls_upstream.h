/*
 * TLS client contexts for upstream connections, built once per
 * configuration generation: one that trusts the configured anchors, and
 * one per pin set that adds its own ca_file. Each generation also keeps
 * the TLS sessions of upstreams that passed verification and the pin
 * check in a full handshake, so that the next connection to the same
 * host, port and pin set may resume; a reload starts a new, empty cache.
 */
#ifndef PINPROXY_TLS_UPSTREAM_H
#define PINPROXY_TLS_UPSTREAM_H

#include <openssl/ssl.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "pincheck.h"

/*
 * How an upstream's name is checked (X509_check_host(3)): a name of its
 * subjectAltName only, never the subject's CN, and no partial wildcard.
 */
#define TLS_UPSTREAM_HOSTFLAGS	(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | \
	X509_CHECK_FLAG_NEVER_CHECK_SUBJECT)

/* Sessions kept per generation, least recently used dropped first. */
#define TLS_UPSTREAM_SESSIONS	256
/* Sessions kept for one host, port and pin set. */
#define TLS_UPSTREAM_PER_HOST	8
/*
 * Seconds a full handshake's verdict stands for the sessions that go back
 * to it: a server that sends new tickets on each resumed connection is
 * checked again in a full handshake at least this often (its key may have
 * changed meanwhile, the ticket key not).
 */
#define TLS_UPSTREAM_VERDICT_SECONDS	3600

struct tls_upstream;

/*
 * Contexts for conf (borrowed: it must outlive the result), with the
 * trust anchors prev (NULL: none) read when conf's trust source is the
 * same, unchanged (trust_again()).
 */
struct tls_upstream	*tls_upstream_new(const struct conf *conf,
			    const struct tls_upstream *prev, char *err,
			    size_t errlen);
/*
 * t's configuration is no longer the current one: its kept sessions go,
 * and from now on it keeps and offers none, so that a connection set up
 * before a reload never resumes a verdict reached under the old pins.
 */
void			 tls_upstream_retire(struct tls_upstream *t);
/* Free the contexts and sessions (NULL ok). */
void			 tls_upstream_free(struct tls_upstream *t);
/*
 * A new client SSL for host:port (host normalised) under pin set ps (NULL
 * when the host is unpinned): SNI (not for IP literals), host-name or IP
 * checking, the ALPN list in wire format (NULL for none), and a kept
 * session to resume when there is one. The chain is verified against
 * trust plus the ca_file of ps, or, with base_trust, against trust alone
 * (ps was chosen for the address dialled, and its private CA vouches for
 * its own hosts only, not for host). The caller owns it.
 */
SSL			*tls_upstream_ssl(struct tls_upstream *t,
			    const struct pinset *ps, bool base_trust,
			    const char *host, uint16_t port,
			    const unsigned char *alpn, size_t alpnlen);
/*
 * ssl, made by tls_upstream_ssl(), goes without its hello ever sent (a
 * hello made ahead and dropped): the kept session it offered, if any, is
 * kept again.
 */
void			 tls_upstream_unsent(SSL *ssl);
/* ssl's hello is sent: the kept session it offered, if any, is used up. */
void			 tls_upstream_sent(SSL *ssl);
/*
 * Whether ssl's hello, made a while ago, may be sent now: false when the
 * kept session it offers is no longer fresh enough to resume on (it is
 * dropped, and a new hello made). True: as tls_upstream_sent().
 */
bool			 tls_upstream_sendable(SSL *ssl);
/*
 * Whether the handshake of ssl resumed a session it was offered; then res
 * gets the verdict of the full handshake that passed when the session was
 * made (a resumed handshake has no verified chain to judge). False for a
 * resumption of anything else, which the caller must refuse.
 */
bool			 tls_upstream_resumed(SSL *ssl,
			    struct pincheck_result *res);
/* What passed on an upstream TLS connection (tls_upstream_judged()). */
struct tls_upstream_verdict {
	const char			*host;	/* verified; owned by ssl */
	uint16_t			 port;
	const struct pinset		*ps;	/* NULL: unpinned */
	const struct pincheck_result	*res;	/* the keys of its chain */
	const struct conf		*conf;	/* the generation judging */
};

/*
 * Whether ssl, an upstream TLS connection, passed verification and the
 * pin check (or resumed a session that had): then *v says for which host
 * and with which keys in the verified chain. A reload checks connections
 * of an older generation against its deny pins with it.
 */
bool			 tls_upstream_judged(const SSL *ssl,
			    struct tls_upstream_verdict *v);
/*
 * The full handshake of ssl passed verification and the pin check with
 * res: its sessions, now or when they arrive, may be kept for resumption
 * (not after a report-only verdict, which each new connection repeats).
 */
void			 tls_upstream_passed(SSL *ssl,
			    const struct pincheck_result *res);
/*
 * Give back the certificates ssl parsed from its peer once nothing will
 * look at them again (a relay has the connection): the verified chain and
 * the chain the peer sent become empty; the peer's certificate stays.
 */
void			 tls_upstream_release_chains(SSL *ssl);
/* How often a chain was taken from the chains verified lately, or not. */
void			 tls_upstream_verified_counts(
			    const struct tls_upstream *t, unsigned long *hits,
			    unsigned long *misses);

#endif

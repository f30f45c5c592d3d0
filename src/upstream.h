/*
 * Upstream connections: resolve (evdns, or a pin set's connect_to), TCP
 * connect, then optionally TLS with verification and the pin verdict. No
 * byte of application data is written here: the caller gets the
 * connection only once it passed every check.
 */
#ifndef PINPROXY_UPSTREAM_H
#define PINPROXY_UPSTREAM_H

#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/x509.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "http_error.h"
#include "metrics.h"
#include "pincheck.h"
#include "runconf.h"

struct metrics;
struct observe;
struct report;
struct throttle;
struct upstream_alone;

enum upstream_status {
	UPSTREAM_OK,
	UPSTREAM_DNS_FAILED,
	UPSTREAM_CONNECT_FAILED,
	UPSTREAM_TIMEOUT,
	UPSTREAM_TLS_FAILED,
	UPSTREAM_VERIFY_FAILED,
	UPSTREAM_PIN_MISMATCH,
	UPSTREAM_PIN_DENIED,	/* the chain holds a deny_pin */
	UPSTREAM_LOOP,		/* the address is one of our own listeners */
	UPSTREAM_ADDR_PINNED,	/* an unpinned name resolved to a pinned address */
	UPSTREAM__COUNT
};

/*
 * What a status means outside upstream.c, one row each: the HTTP answer
 * (whose Proxy-Status details code is also the upstream_error code
 * logged), the upstream_errors series counting it (METRIC__COUNT when a
 * verification counter counts it instead, or none does), whether it is a
 * verdict on the certificates (an intercepted client gets access_denied),
 * and whether it is a refusal by policy, logged as blocked (its reason
 * starting with the details code), not as an upstream_error.
 */
struct upstream_outcome {
	enum http_error_kind	 error;
	enum metric_id		 metric;
	bool			 verdict;
	bool			 policy;
};

/* The row of a failed status (st != UPSTREAM_OK). */
const struct upstream_outcome *upstream_outcome(enum upstream_status st);

/* Where upstreams account for what they see; owned by the daemon. */
struct upstream_sinks {
	struct metrics		*metrics;
	struct report		*report;	/* NULL: no report_file */
	struct observe		*observe;	/* NULL: no observe_file */
	struct throttle		*mismatch_log;	/* NULL: log every one */
	struct dialring		*dials;		/* NULL: not remembered */
	/*
	 * The generation new connections take (NULL: the upstream's own
	 * always is): a handshake that ends after a reload is refused by
	 * its deny pins too.
	 */
	struct runconf *const	*current;
	/* Where released handshakes finish (NULL: they are freed). */
	struct upstream_alone	*alone;
};

struct upstream_params {
	struct event_base	*base;
	struct evdns_base	*dns;
	struct runconf		*rc;	/* the upstream takes a reference */
	const struct pinset	*ps;	/* borrowed from rc; NULL: unpinned */
	const char		*host;	/* normalised name or IP literal */
	uint16_t		 port;
	const char		*client; /* the client's address, for logs */
	struct upstream_sinks	*sinks;	/* borrowed; outlives the upstream */
	const struct conf_addr	*self;	/* our listeners, never dialled */
	size_t			 nself;
	/*
	 * The daemon's: the forwarders' listeners of rc are ours too (not
	 * for pinproxy-pin's probe, which is another process).
	 */
	bool			 self_forwarders;
};

struct upstream;

/* Called once per step; the callee may free the upstream. */
typedef void (*upstream_cb)(struct upstream *, enum upstream_status, void *);

/*
 * Whether dialling sa would reach one of the addresses in self (the
 * proxy's own listeners): the same address and port, IPv4-mapped IPv6 as
 * IPv4, the unspecified address as the loopback one; a wildcard listener
 * (0.0.0.0, ::) counts as listening on every loopback address and every
 * address of the machine's interfaces.
 */
bool		 upstream_addr_is_self(const struct sockaddr *sa,
		    const struct conf_addr *self, size_t nself);
/*
 * Whether dialling sa would reach a [forward:] listener of c (by the rule
 * of upstream_addr_is_self): pinproxy itself, one hop further.
 */
bool		 upstream_addr_is_forwarder(const struct sockaddr *sa,
		    const struct conf *c);
/*
 * Whether upstream sockets can carry SO_MARK mark (0: none asked); false
 * with err, which names the capability it needs.
 */
bool		 upstream_mark_check(unsigned long mark, char *err,
		    size_t errlen);
/*
 * A hello made ahead (upstream_prepare_tls()) offers at most this many
 * bytes of ALPN list and is at most this long; longer ones are made when
 * TLS starts, as any other.
 */
#define UPSTREAM_AHEAD_ALPN_MAX		64
#define UPSTREAM_AHEAD_HELLO_MAX	8192
/*
 * Hellos made ahead that wait at once, in the whole process: one holds
 * a TLS connection (about 40 KiB) until its client's hello comes or
 * header_timeout; beyond these, hellos are made when TLS starts.
 */
#define UPSTREAM_AHEAD_MAX		64

/* Resolve and connect TCP; cb(UPSTREAM_OK) when connected. */
struct upstream	*upstream_connect(const struct upstream_params *p,
		    upstream_cb cb, void *arg);
/*
 * Start TLS over the connected socket with the client's ALPN list (wire
 * format, NULL for none); cb(UPSTREAM_OK) once the chain verified and the
 * pin verdict allows traffic. With fresh_deadline the handshake gets a
 * whole connect_timeout; otherwise what remains of the one connect began.
 * False when TLS could not even be set up: cb has run already.
 */
bool		 upstream_start_tls(struct upstream *u,
		    const unsigned char *alpn, size_t alpnlen,
		    bool fresh_deadline, upstream_cb cb, void *arg);
/*
 * Make the TLS hello for host (pin set ps, by_address as in
 * upstream_retarget()) offering alpn, without sending it, while the
 * client's own hello is awaited: a start of TLS for the same name, pin
 * set and offer sends it at once instead of making one; any other start,
 * a plaintext one or none drops it. Nothing when the socket is not
 * connected and idle, the offer is longer than UPSTREAM_AHEAD_ALPN_MAX,
 * or UPSTREAM_AHEAD_MAX hellos made ahead wait already.
 */
void		 upstream_prepare_tls(struct upstream *u, const char *host,
		    const struct pinset *ps, bool by_address,
		    const unsigned char *alpn, size_t alpnlen);
/*
 * Change the name checked in the certificate and the pin set before TLS
 * starts: a CONNECT by IP learns its host name from the ClientHello.
 * by_address: ps is the pin set of the address dialled and does not
 * cover host, so its ca_file is not trusted for host (its pins are).
 */
void		 upstream_retarget(struct upstream *u, const struct pinset *ps,
		    const char *host, bool by_address);
/* Use the connected socket as is, without TLS. */
void		 upstream_start_plain(struct upstream *u);
/*
 * The connected socket (owned by the upstream), or -1: to watch it before
 * upstream_start_tls() or upstream_start_plain(), never to read or write.
 */
evutil_socket_t	 upstream_fd(const struct upstream *u);
/* The ready connection (owned by the upstream), or NULL. */
struct bufferevent *upstream_bev(struct upstream *u);
/*
 * A relay runs on the socket and TLS connection (NULL: none) of
 * upstream_bev() now: hand both to the caller, who closes them (see
 * relay_adopt_server()), and free everything else of u, u too. The TLS
 * connection gives back its parsed chains first (nothing looks at them
 * after the verdict: tls_upstream_release_chains()), and still files the
 * session tickets that arrive in the configuration generation it was
 * made in: the caller holds its own reference to that runconf until the
 * TLS connection is freed.
 */
void		 upstream_hand_over(struct upstream *u, evutil_socket_t *fd,
		    SSL **ssl);
/*
 * After the ready connection reported its end or an error: whether the
 * server ended it on purpose (TLS: with a close_notify; TCP has no other
 * sign than the close itself). A TLS connection that just stopped, or was
 * reset, may have been cut by anyone on the way.
 */
bool		 upstream_closed_cleanly(struct upstream *u);
/* A person-readable reason for the last failure. */
const char	*upstream_reason(const struct upstream *u);
/* The pin verdict and the pins seen (after TLS). */
const struct pincheck_result *upstream_pins(const struct upstream *u);
/* The TLS connection (owned by the upstream), or NULL. */
SSL		*upstream_tls(const struct upstream *u);
/*
 * A reload: whether the deny pins of now, the new generation, refuse ssl,
 * an upstream TLS connection of an older generation that passed
 * (tls_upstream_judged()), for the client at client. If so the refusal is
 * logged (event=pin_denied) and counted, and the caller ends the
 * connection. A connection whose handshake has not ended is not refused
 * here: its verdict checks the current generation's deny pins
 * (upstream_sinks.current).
 */
bool		 upstream_denied_on_reload(SSL *ssl,
		    const struct runconf *now, const char *client,
		    struct metrics *metrics);
/*
 * The chain the server sent, in its order, once a handshake got that far
 * (also when verification then failed), or NULL; owned by the upstream.
 */
STACK_OF(X509)	*upstream_peer_chain(const struct upstream *u);
/*
 * The chain verification built, leaf first, after a full handshake that
 * verified (also when the pins then refused it), or NULL; owned by the
 * upstream.
 */
STACK_OF(X509)	*upstream_verified_chain(const struct upstream *u);
/* The protocol the server selected with ALPN (len 0 for none). */
void		 upstream_alpn(const struct upstream *u,
		    const unsigned char **data, unsigned int *len);
/*
 * Whether the ready connection is quiet: nothing came from the server
 * since its last answer, neither buffered (in the bufferevent or in TLS)
 * nor waiting at the socket, nor its end. Bytes there (a body a broken
 * server sent after a HEAD, or beyond its Content-Length) would be taken
 * for the start of the next answer.
 */
bool		 upstream_quiet(struct upstream *u);
/* Whether this upstream can serve host:port with TLS or not, under rc. */
bool		 upstream_matches(const struct upstream *u,
		    const struct runconf *rc, const char *host, uint16_t port,
		    bool tls);
/* The configuration generation the upstream was checked under. */
unsigned long	 upstream_generation(const struct upstream *u);
/* Whether two upstreams reach the same host and port the same way. */
bool		 upstream_same_target(const struct upstream *a,
		    const struct upstream *b);
/* Close and free (NULL ok); cancels whatever is in progress. */
void		 upstream_free(struct upstream *u);

/*
 * The caller is done with u (NULL ok), its client gone: a TLS handshake
 * under way runs on alone to its verdict, which is logged and reported
 * as any, and is then freed; anything else is freed now. A client that
 * leaves or refuses the forged certificate before the verdict must not
 * keep a pin mismatch out of the log and the report. Alone, u has its
 * own deadline (connect_timeout) and sends no application byte.
 */
void		 upstream_release(struct upstream *u);

/*
 * A list of the handshakes running alone, at most max at once (the
 * daemon's max_connections): beyond, a released one is freed at once,
 * its verdict lost (event=check_abandoned, at most once a minute).
 */
struct upstream_alone	*upstream_alone_new(void);
/* Set the cap (max_connections; a lower one ends none running). */
void		 upstream_alone_set_max(struct upstream_alone *a, size_t max);
/* Stopping: free those running alone, and any released from now on. */
void		 upstream_alone_close(struct upstream_alone *a);
/* Free it and every handshake still running alone (NULL ok). */
void		 upstream_alone_free(struct upstream_alone *a);

#endif

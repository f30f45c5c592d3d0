/*
 * Interception, the phase after a CONNECT's ClientHello named a host to
 * verify: the upstream's TLS handshake, its chain and the pin verdict, and
 * only then the client's handshake with a leaf forged by the CA of the
 * connection's generation (or its answer but the last record before:
 * tlsflight.h). A refusal is a fatal TLS alert where the client can be
 * sent one; nothing is relayed before both handshakes completed.
 */
#ifndef PINPROXY_INTERCEPT_H
#define PINPROXY_INTERCEPT_H

#include <stddef.h>
#include <stdint.h>

#include "phase.h"

/* TLS alert descriptions of a refusal. */
#define INTERCEPT_ALERT_HANDSHAKE_FAILURE	40
#define INTERCEPT_ALERT_ACCESS_DENIED		49
#define INTERCEPT_ALERT_UNRECOGNIZED_NAME	112

struct intercept;
struct intercept_env;

/* What the tunnel phase hands over (PHASE_NEXT_INTERCEPT). */
struct intercept_args {
	struct upstream		*up;		/* connected; now the phase's */
	const struct pinset	*ps;		/* borrowed from x->rc */
	bool			 by_address;	/* ps is the address's, not host's */
	const char		*host;		/* the name to verify and forge */
	uint16_t		 port;
	const unsigned char	*alpn;		/* the client's list, wire form */
	size_t			 alpn_len;
	size_t			 peeked;	/* hello bytes left in the socket */
};

/*
 * What interception shares across generations: the TLS server context for
 * clients (the certificates are set per connection, from its generation's
 * CA and leaves) and the throttle of client_tls_failed lines.
 */
struct intercept_env *intercept_env_new(char *err, size_t errlen);
/* Free it (NULL ok). */
void		 intercept_env_free(struct intercept_env *ie);
/*
 * Log a client_tls_failed line (warn) for client (an address and port)
 * and host with alert and reason, hint (NULL: none), at most one a
 * minute per client address and host, so that a client retrying does not
 * flood the log.
 */
void		 intercept_log_tls_failed(struct intercept_env *ie,
		    const char *client, const char *host, const char *alert,
		    const char *reason, const char *hint);

extern const struct phase_ops intercept_ops;

/*
 * Run as x's phase with a (copied as needed); it ends in phase_done().
 * When the upstream for that host, port and pin set chose an ALPN
 * protocol in this generation before, and the client offers it, the
 * client's handshake runs beside the upstream's with that protocol: all
 * of its answer but the last record goes at once, that record waits
 * until the upstream passed and chose the same (tlsflight.h).
 */
void		 intercept_start(struct phase_ctx *x,
		    const struct intercept_args *a);
/*
 * End the client's handshake before it began with a fatal alert, logged
 * as status, and close after it. peeked bytes of the client's hello still
 * in its socket are read first: unread bytes would turn the close into a
 * reset that eats the alert.
 */
void		 intercept_alert(struct phase_ctx *x, unsigned char alert,
		    int status, size_t peeked);

#endif

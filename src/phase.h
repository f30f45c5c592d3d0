/*
 * The phases of a client connection, and what a phase may use of it.
 *
 * The connection (conn.c) owns the client's transport, its configuration
 * generation, the access record and the relay. It runs one phase at a
 * time: forward (a plaintext exchange), tunnel (a CONNECT up to its
 * verdict, then a blind tunnel) or intercept (the upstream's TLS, pins,
 * then the client's TLS with a forged leaf). A phase works on the
 * phase_ctx it is given, is told of client and upstream events through
 * its phase_ops, and reports its end once, with phase_done(): it never
 * knows struct conn, and no phase includes conn.h.
 */
#ifndef PINPROXY_PHASE_H
#define PINPROXY_PHASE_H

#include <sys/queue.h>

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include <stdbool.h>
#include <stdint.h>

#include "clienthello.h"
#include "hostmatch.h"
#include "http_error.h"
#include "runconf.h"
#include "upstream.h"

struct conn;
struct clienthello;
struct http_msg;
struct intercept_env;
struct pool;

/* What every connection shares; owned by the proxy, outlives them all. */
struct conn_env {
	struct event_base	*base;
	struct evdns_base	*dns;
	struct runconf		*rc;		/* current; borrowed from proxy */
	const struct conf_addr	*listen;	/* the listening addresses */
	size_t			 nlisten;
	struct intercept_env	*intercept;	/* TLS server side for clients */
	struct pool		*pool;		/* idle upstreams */
	struct upstream_sinks	 sinks;		/* metrics, report_file */
	char			 via[40];	/* our Via value, for loops */
	void			(*closed)(void *);	/* after a close */
	void			(*settled)(void *);	/* a relay started */
	void			*closed_arg;		/* for both */
	TAILQ_HEAD(, conn)	 conns;		/* every open connection */
	size_t			 nconns;
};

/*
 * Where a connection is, one state at a time, each change logged at debug
 * level (event=conn_state). The forward phase moves it between CONNECTING
 * and EXCHANGE, the tunnel phase through DIAL and AWAIT_HELLO, the
 * intercept phase through UPSTREAM_TLS and CLIENT_TLS.
 */
enum conn_state {
	CONN_READ_HEAD,		/* waiting for a complete request head */
	CONN_CONNECTING,	/* a plaintext request waits for its upstream */
	CONN_EXCHANGE,		/* the request and its response flow */
	CONN_DIAL,		/* CONNECT: the TCP connection to the target */
	CONN_AWAIT_HELLO,	/* after the 200: the client's first bytes */
	CONN_UPSTREAM_TLS,	/* the upstream's handshake, chain and pins */
	CONN_CLIENT_TLS,	/* the client's handshake with a forged leaf */
	CONN_RELAY,		/* bytes both ways: an upgrade or a tunnel */
	CONN_CLOSING,		/* flushing a last response, then close */
	CONN_LINGER,		/* all written; dropping the client's bytes */
	CONN__STATES
};

/* The access line of the request or tunnel in progress. */
struct access_record {
	const char		*mode;		/* plain, tunnel, intercept */
	char			*host;		/* phase_set_host; never NULL */
	size_t			 host_size;	/* what host can hold */
	int			 status;	/* 0: no answer yet */
	uint64_t		 up;		/* bytes from the client */
	uint64_t		 down;		/* bytes to the client */
	struct timeval		 start;
};

/*
 * What the connection does once a phase ended, after answering any error
 * and before writing the access line.
 */
enum phase_next {
	PHASE_NEXT_END,		/* the exchange ended: the next one, or close */
	PHASE_NEXT_RELAY,	/* relay the client and relay_with's bytes */
	PHASE_NEXT_INTERCEPT,	/* intercept the tunnel: see intercept.h */
	PHASE_NEXT_PLAIN,	/* plaintext HTTP in the CONNECT tunnel */
	PHASE_NEXT_ROUTE,	/* route the request again, under the
				   configuration now in force: none of it
				   went anywhere */
};

/* No HTTP error is owed to the client. */
#define PHASE_NO_ERROR		HTTP_ERROR__COUNT

/* How a phase ended: phase_outcome_init(), then fill in what applies. */
struct phase_outcome {
	enum phase_next		 next;
	int			 status;	/* for the access line */
	bool			 close;		/* close once flushed */
	bool			 gone;		/* the client left or timed
						   out: reset now */
	/*
	 * The answer was cut short after its head went out: reset the
	 * client's connection, as a close could pass for the end of a body
	 * that only the close delimits.
	 */
	bool			 cut;
	/*
	 * The client's stream was cut upstream, and all that was read for
	 * it is on its socket: reset it once it took that (linger.h's
	 * linger_start_cut), not at once.
	 */
	bool			 cut_delivered;
	/*
	 * An error to answer before the CONNECT's 200 or a response head:
	 * the row of a failed upstream status, else error. Its status and
	 * the closing of the connection follow from it.
	 */
	enum upstream_status	 upstream_status;
	enum http_error_kind	 error;		/* PHASE_NO_ERROR: none */
	const char		*explanation;
	/* PHASE_NEXT_RELAY: the upstream, borrowed from the phase. */
	struct bufferevent	*relay_with;
	/* PHASE_NEXT_RELAY: guard the client's stream (relay_guard_line). */
	bool			 relay_guard;
	/*
	 * PHASE_NEXT_RELAY after a ClientHello of hello_len bytes naming
	 * hello_sni (relay_guard_hello); 0: none.
	 */
	const char		*relay_hello_sni;
	size_t			 relay_hello_len;
	/* PHASE_NEXT_INTERCEPT: handed over to the intercept phase. */
	struct intercept_args	*intercept;
	/* PHASE_NEXT_PLAIN: where every request in the tunnel goes. */
	const char		*plain_host;
	bool			 plain_by_ip;	/* the first request names it */
	uint16_t		 plain_port;
};

/* A phase, as the connection drives it. */
struct phase_ops {
	const char	*name;
	/*
	 * Client events: EV_READ (bytes arrived), EV_WRITE (the output
	 * drained to its watermark), or BEV_EVENT_* flags.
	 */
	void		 (*on_client)(void *phase, short what);
	/* Upstream events, the same way (see phase_watch_upstream). */
	void		 (*on_upstream)(void *phase, short what);
	/* Free what the phase holds (its upstream too, unless handed on). */
	void		 (*free)(void *phase);
	/*
	 * A relay runs on the client and the upstream of phase_relay(): hand
	 * that upstream over to the connection, which gives its socket and
	 * TLS connection to the relay (upstream_hand_over()), frees the rest,
	 * and frees the phase at once. NULL: the phase and its upstream stay
	 * until the relay ends.
	 */
	struct upstream	*(*relayed)(void *phase);
	/*
	 * The upstream TLS connection the phase uses, or NULL (also for a
	 * phase without upstream TLS): a reload checks it against its deny
	 * pins. NULL op: never one.
	 */
	SSL		*(*upstream_tls)(void *phase);
	/*
	 * The status of the response head the client got in the exchange
	 * in progress, 0 for none yet (NULL op: none): what the access line
	 * says of an exchange the connection cuts short.
	 */
	int		 (*answered)(void *phase);
};

/* What a phase may use of its connection, which owns all of it. */
struct phase_ctx {
	struct conn_env		*env;
	struct runconf		*rc;		/* the request's generation */
	unsigned long		 id;
	const char		*client;	/* the client's address text */
	/*
	 * The connection owns the client's socket and TLS connection; the
	 * transport only borrows them, and goes (NULL) once a relay runs.
	 */
	evutil_socket_t		 fd;
	SSL			*tls;		/* NULL: plaintext */
	struct bufferevent	*bev;		/* the client's transport */
	struct http_msg		*req;		/* the request head; NULL in a relay */
	struct access_record	 acc;
	unsigned		 reroutes;	/* of the request, by reloads */
	enum conn_state		 state;
	uint64_t		 acked;		/* by the client, at the last
						   write timeout (sockprog.h) */
	unsigned int		 wlooks;	/* write timeouts of this wait */
	unsigned int		 wmoved;	/* the last one after acks */
	bool			 transparent;	/* redirected, no CONNECT */
	bool			 closing;	/* the client ends after this */

	const struct phase_ops	*ops;		/* the phase running, or NULL */
	void			*phase;

	/* The connection's side: its client callbacks and its end. */
	bufferevent_data_cb	 client_read;
	bufferevent_data_cb	 client_write;
	bufferevent_event_cb	 client_event;
	void			(*done)(struct phase_ctx *,
				    const struct phase_outcome *);
};

/* Move x to state st (a no-op when it is there already). */
void		 phase_set_state(struct phase_ctx *x, enum conn_state st);
/*
 * The client's transport times out reading after read (NULL: never), and
 * writing after write_ms without a byte written: its write timeout is a
 * quarter of that, for phase_client_still_reading() to look four times.
 */
void		 phase_client_timeouts(struct phase_ctx *x,
		    const struct timeval *read, uint64_t write_ms);
/*
 * An event of the client's transport: when it is a write timeout (a
 * quarter of the wait, see phase_client_timeouts()) and the client was
 * acknowledged bytes in one of the last four quarters (a slow reader of
 * a large socket buffer, which is writable again only when a third of it
 * is free), writing is enabled again and this says true. So a client
 * that stopped reading is given up at most a quarter past the wait.
 */
bool		 phase_client_still_reading(struct phase_ctx *x, short what);
/*
 * For an event what of a watch (sockwatch.h) of the client's socket:
 * whether the
 * client left, by a reset, or by its end with no bytes beyond the seen
 * ones pinproxy holds or peeked at (in its buffer and the socket).
 */
bool		 phase_client_left(struct phase_ctx *x, short what,
		    size_t seen);
/* Set the host of x's access record (a copy; host may be the current). */
void		 phase_set_host(struct phase_ctx *x, const char *host);
/* The name of a state, as logged. */
const char	*phase_state_name(enum conn_state st);
/* An outcome that ends the exchange with no error and no status. */
void		 phase_outcome_init(struct phase_outcome *o);
/*
 * The phase ended: the connection takes over, and may free the phase
 * before this returns. The caller returns at once.
 */
void		 phase_done(struct phase_ctx *x, const struct phase_outcome *o);
/* The exchange ended with status; the client's connection ends if close. */
void		 phase_end(struct phase_ctx *x, int status, bool close);
/* The answer (status status) was cut short: see phase_outcome.cut. */
void		 phase_cut(struct phase_ctx *x, int status);
/* Answer kind with explanation and close (phase_done). */
void		 phase_fail(struct phase_ctx *x, enum http_error_kind kind,
		    const char *explanation);
/* Answer the error of a failed upstream step and close (phase_done). */
void		 phase_fail_upstream(struct phase_ctx *x,
		    enum upstream_status st, const char *explanation);
/*
 * Relay the client and the upstream bev (borrowed), logged as status; with
 * guard_line, a blind tunnel's, refused once the start of the client's
 * stream is an HTTP request (relay_guard_line()); after hello (NULL: none),
 * the ClientHello that stream begins with, refused when a further one
 * names another server (relay_guard_hello()).
 */
void		 phase_relay(struct phase_ctx *x, struct bufferevent *bev,
		    int status, bool guard_line,
		    const struct clienthello *hello);
/*
 * Replace the client's transport with bev, on the client's socket and,
 * for TLS, a connection the connection owns from now on (bev must not
 * close or free either): the old bufferevent is freed, the connection's
 * callbacks installed.
 */
void		 phase_set_transport(struct phase_ctx *x,
		    struct bufferevent *bev);
/* Route bev's events to the running phase's on_upstream. */
void		 phase_watch_upstream(struct phase_ctx *x,
		    struct bufferevent *bev);
/* The parameters to open an upstream to host:port under x's generation. */
void		 phase_upstream_params(struct phase_ctx *x,
		    const struct pinset *ps, const char *host, uint16_t port,
		    struct upstream_params *p);
/*
 * Whether host:port (an IP literal or "localhost") names one of the
 * proxy's own listening sockets, a forwarder's included, by the rule of
 * upstream_addr_is_self.
 */
bool		 phase_is_self(const struct phase_ctx *x, const char *host,
		    uint16_t port);
/* Log a refusal by policy (event=blocked). */
void		 phase_log_blocked(const struct phase_ctx *x, const char *host,
		    const char *reason);

#endif

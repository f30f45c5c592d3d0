/*
 * A client connection: reads request heads, applies the policy, and hands
 * plaintext requests to the forward module and CONNECT requests to the
 * tunnel module. Every connection ends in conn_close().
 */
#ifndef PINPROXY_CONN_H
#define PINPROXY_CONN_H

#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>

#include <stdbool.h>
#include <stdint.h>

#include "http_error.h"
#include "runconf.h"
#include "upstream.h"

struct conn;
struct http_msg;
struct pool;
struct tunnel;
struct tunnel_env;

/* What every connection shares; owned by the proxy, outlives them all. */
struct conn_env {
	struct event_base	*base;
	struct evdns_base	*dns;
	struct runconf		*rc;		/* current; borrowed from proxy */
	const struct conf_addr	*listen;	/* the listening addresses */
	size_t			 nlisten;
	struct tunnel_env	*tunnel;	/* CONNECT: TLS server side */
	struct pool		*pool;		/* idle upstreams */
	struct upstream_sinks	 sinks;		/* metrics, report_file */
	char			 via[40];	/* our Via value, for loops */
	void			(*closed)(void *);	/* after a close */
	void			*closed_arg;
	TAILQ_HEAD(, conn)	 conns;		/* every open connection */
	size_t			 nconns;
};

/*
 * Where a connection is, one state at a time, each change logged at debug
 * level (event=conn_state). The forward module moves it between
 * CONNECTING and EXCHANGE, the tunnel module from DIAL to RELAY.
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
	CONN__STATES
};

/* Move c to state st (a no-op when it is there already). */
void		 conn_set_state(struct conn *c, enum conn_state st);
/*
 * Serve a freshly accepted client (takes over fd) under env->rc; each
 * later request on it takes the generation current when it arrives.
 */
struct conn	*conn_new(struct conn_env *env, evutil_socket_t fd,
		    const struct sockaddr *sa, socklen_t salen);
/*
 * Serve a client the kernel redirected to a transparent listener (takes
 * over fd): a CONNECT to its original destination whose 200 was sent.
 */
struct conn	*conn_new_transparent(struct conn_env *env, evutil_socket_t fd,
		    const struct sockaddr *sa, socklen_t salen);
/* Whether c came through a transparent listener (no 200, no HTTP errors). */
bool		 conn_is_transparent(const struct conn *c);
/* Close now, whatever is in progress: the single teardown. */
void		 conn_close(struct conn *c);
/* Finish the current exchange, then close; close at once when idle. */
void		 conn_shutdown(struct conn *c);

/* Shut every connection down gracefully (conn_shutdown). */
void		 conn_shutdown_all(struct conn_env *env);
/* Close every connection now. */
void		 conn_close_all(struct conn_env *env);

/* For the forward module: the parser holding the request head. */
struct http_msg	*conn_request_msg(struct conn *c);
/* Count bytes of the request in progress: up from, down to the client. */
void		 conn_count(struct conn *c, uint64_t up, uint64_t down);
/* Whether the client connection ends after the request in progress. */
bool		 conn_closing(const struct conn *c);
/* The exchange ended with status: log it, then await the next or close. */
void		 conn_exchange_done(struct conn *c, int status, bool close);
/* The exchange broke after the response began: log and close. */
void		 conn_finish(struct conn *c, int status);
/* A 101: relay bytes between the client and upstream (borrowed). */
void		 conn_upgrade(struct conn *c, struct bufferevent *upstream,
		    int status);

/* For the CONNECT path: the client's bufferevent, address and generation. */
struct bufferevent *conn_client_bev(struct conn *c);
const char	*conn_client(const struct conn *c);
struct runconf	*conn_runconf(struct conn *c);
struct conn_env	*conn_env(struct conn *c);
/* Register the CONNECT in progress, freed by conn_close. */
void		 conn_set_tunnel(struct conn *c, struct tunnel *t);
/* Replace the client's bufferevent (the TLS server side takes it over). */
void		 conn_set_client_bev(struct conn *c, struct bufferevent *bev);
/*
 * Whether host:port (an IP literal or "localhost") names one of the
 * proxy's own listening sockets, by the rule of upstream_addr_is_self.
 */
bool		 conn_is_self(const struct conn *c, const char *host,
		    uint16_t port);
/* Answer an HTTP error (before a CONNECT's 200) and close after it. */
void		 conn_reply_error(struct conn *c, enum http_error_kind kind,
		    const char *host, const char *explanation);
/*
 * Plaintext HTTP follows a CONNECT's 200: free the tunnel and read
 * requests as a plaintext proxy connection whose every request must name
 * host (or, when by_ip, the host its first request names) and goes to
 * port, the CONNECT's.
 */
void		 conn_tunnel_plain(struct conn *c, const char *host,
		    bool by_ip, uint16_t port);
/* Log the access line of a CONNECT that ended, then close. */
void		 conn_tunnel_done(struct conn *c, const char *mode,
		    const char *host, int status, uint64_t up, uint64_t down);

#endif

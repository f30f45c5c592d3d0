/*
 * A two-way byte pump on the sockets (and TLS connections) of two
 * bufferevents, with an idle timeout that counts traffic in either
 * direction. Writes go out at once; memory stays bounded because a
 * direction reads only once what it read before has been written; bulk
 * transfers between two plain sockets move through a kernel pipe with
 * splice(2) without entering user space. The helpers after it serve the
 * HTTP exchange, which streams bodies between bufferevents.
 */
#ifndef PINPROXY_RELAY_H
#define PINPROXY_RELAY_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <openssl/ssl.h>

#include <stdbool.h>
#include <stdint.h>

/*
 * Bytes a side may have queued before the other side stops reading: the
 * kernel's socket buffers hold far more, so more here buys no speed, only
 * memory for every connection whose peer stopped reading.
 */
#define RELAY_HIGH_WATER	(128 * 1024)
/* The most one read or write moves: fewer calls on bulk transfers. */
#define RELAY_IO_MAX		(64 * 1024)

struct relay;

/* How a relay ended (relay_outcome). */
enum relay_outcome {
	RELAY_CLOSED,		/* both ended, the last with a FIN; or a TLS
				   side stopped without close_notify */
	RELAY_CLOSE_NOTIFY,	/* both ended, the last with close_notify */
	RELAY_CLIENT_ERROR,	/* reading or writing the client failed */
	RELAY_SERVER_ERROR,	/* reading or writing the server failed */
	RELAY_IDLE,		/* idle_ms passed without a byte */
	RELAY_REFUSED		/* the client's stream started with an
				   HTTP request (relay_guard_line) */
};

/* Called once when the relay ends; why is a short reason for debug logs. */
typedef void (*relay_done_cb)(struct relay *, const char *why, void *arg);

/*
 * Pump bytes between client and server until both sides have ended their
 * streams and what they sent has been delivered, until one side stops a
 * TLS stream without close_notify or fails, or until nothing moved for
 * idle_ms milliseconds. Both are socket bufferevents, plain or OpenSSL,
 * never filters. The relay reads and writes their descriptors and TLS
 * connections itself, and what they hold (read and not yet relayed, or
 * queued and not yet written) goes first. It disables them and keeps no
 * reference to them: the caller may free them as soon as this returns
 * (an idle connection then holds none of their buffers), as long as the
 * descriptors and TLS connections stay until relay_free(). A clean end of
 * one side's stream (a FIN, a close_notify) is passed on to the other
 * side once everything before it is written: shutdown(2) for writing on a
 * plain socket, a close_notify (without waiting for the peer's) on TLS;
 * the other direction runs on (a half-close). A TLS side that stops
 * without close_notify gets nothing passed on (that would make a cut
 * stream look complete). A side that fails ends the relay, except a plain
 * server that stops taking the client's bytes: what it sent before is
 * relayed first. Nothing is closed.
 */
struct relay	*relay_new(struct event_base *base, struct bufferevent *client,
		    struct bufferevent *server, uint64_t idle_ms,
		    relay_done_cb cb, void *arg);
/*
 * Look at the start of the client's stream before it is written (in user
 * space: no splice(2) until then), however long, until reqguard.h says
 * no request can be in it or the server answers the client: a request a
 * lenient server would read (reqguard.h) ends the relay as RELAY_REFUSED
 * (once what was queued for the client is written: answers to requests
 * pipelined before the tunnel, its 200), with the bytes that completed
 * the request unwritten, however the client cut it
 * into segments or whatever precedes it (a ClientHello, say). A first
 * line that may still become one (reqguard_holding()) is not written at
 * all until it cannot, and refused past REQGUARD_LINE_MAX. Call it right
 * after relay_new().
 */
void		 relay_guard_line(struct relay *r);
/*
 * After a 101: the server's stream must not begin with "HTTP/" (no
 * upgraded protocol's does, and a client that took the 101 for an answer
 * would read that response as the answer to its next request); if it
 * does, the relay is refused (RELAY_REFUSED, relay_refused_response())
 * with none of those bytes written: the client has the 101 and the close.
 * The server's bytes do not go through splice(2) until the guard ended.
 */
void		 relay_guard_response(struct relay *r);
/* Whether a relay was refused for relay_guard_response()'s reason. */
bool		 relay_refused_response(const struct relay *r);
/*
 * The client's stream begins with a ClientHello of hello_len bytes naming
 * sni ("" for none), on whose verdict the tunnel went blind: until the
 * server's first ServerHello that is not a HelloRetryRequest, each further
 * ClientHello of the client's (a TLS 1.3 server reads the name again from
 * the one after its retry request) is held until whole and must name the
 * same server, else the relay is refused (RELAY_REFUSED,
 * relay_refused_hello()) without a byte of it written. Neither side's
 * bytes go through splice(2) meanwhile. Call it after relay_guard_line().
 */
void		 relay_guard_hello(struct relay *r, const char *sni,
		    size_t hello_len);
/* Whether a relay was refused for relay_guard_hello()'s reason. */
bool		 relay_refused_hello(const struct relay *r);
/*
 * The first non-empty extent of a buffer; false when it holds no byte.
 * (A buffer may hold empty chains, which evbuffer_peek also counts.)
 */
bool		 relay_peek(struct evbuffer *buf, struct evbuffer_iovec *v);
/*
 * Pause reading src while dst has RELAY_HIGH_WATER bytes queued; dst's
 * write callback fires at half that, when src may read again.
 */
void		 relay_throttle(struct bufferevent *src,
		    struct bufferevent *dst);
/* dst's write callback fired: src reads again (the end of a throttle). */
void		 relay_unthrottle(struct bufferevent *src,
		    struct bufferevent *dst);
/*
 * Move n bytes (at most all) from the front of src to dst's output. When
 * dst is a plain socket bufferevent with nothing queued, they go to its
 * socket at once and only what the socket did not take is queued: a
 * short message costs no poll and no change of dst's events. A TLS
 * bufferevent's bytes wait for its write event, the end of this turn of
 * the loop, until which the caller may still take them back (to a TLS
 * upstream, a request head with the body bytes judged in the same turn:
 * forward_send_request()). What is queued is copied, not moved: see
 * relay_move(). src must not be a bufferevent's output.
 */
void		 relay_push(struct bufferevent *dst, struct evbuffer *src,
		    size_t n);
/*
 * relay_push() for n bytes that are a whole message, judged, to a peer
 * whose verdict was given: to a TLS bufferevent whose handshake is over
 * they go at once as well. The handshake's end is not the verdict (the
 * pins are looked at after it): a caller must not push before.
 */
void		 relay_push_whole(struct bufferevent *dst,
		    struct evbuffer *src, size_t n);
/*
 * Enable what of bev that is not enabled yet. libevent enables again what
 * is enabled, and a write enabled again is waited for even with nothing
 * to write: a poll and two changes of the socket's events for nothing.
 */
void		 relay_enable(struct bufferevent *bev, short what);
/* Let a bufferevent read and write RELAY_IO_MAX bytes at a time. */
void		 relay_tune(struct bufferevent *bev);
/*
 * The newest OpenSSL error a TLS bufferevent recorded (taking it and those
 * after it), 0 for none. libevent records its own SSL_get_error() result
 * codes among them; those say nothing of why, and are skipped.
 */
unsigned long	 relay_tls_error(struct bufferevent *bev);
/* Bytes moved so far: up is client to server, down the other way. */
void		 relay_counts(const struct relay *r, uint64_t *up,
		    uint64_t *down);
/*
 * The relay takes the server's socket and TLS connection (NULL: none) and
 * relay_free() closes them, so that nothing else of the upstream need
 * stay while the relay runs. The client's stay the caller's.
 */
void		 relay_adopt_server(struct relay *r, evutil_socket_t fd,
		    SSL *ssl);
/* The server's TLS connection the relay adopted, or NULL. */
SSL		*relay_server_tls(const struct relay *r);
/* How the relay ended; for the done callback and after. */
enum relay_outcome	 relay_outcome(const struct relay *r);
/*
 * Whether the server's stream ended cleanly and its end was passed on to
 * the client: all of it is the client's then, whatever ends the relay.
 */
bool			 relay_down_ended(const struct relay *r);
/*
 * Whether the relay ended with the client's stream cut: bytes for the
 * client left unwritten (however the relay ended: a client that stopped
 * reading, then the server's failure, say), an idle timeout before the
 * server's stream ended, the client's failure, or, for a client without
 * TLS of its own, a server's stream that ended unproven or failed (unless
 * the client had ended its own first), or a refusal after the server's
 * bytes reached the client (relay_guard_line). Its connection is then
 * reset, as a FIN could pass for the end of a stream that only the close
 * delimits.
 */
bool			 relay_client_cut(const struct relay *r);
/*
 * Whether everything read for the client was handed to its socket and the
 * client did not fail nor stall: a client cut only upstream, which may
 * read up to the cut before its reset.
 */
bool			 relay_client_has_all(const struct relay *r);
/*
 * Stop pumping and free (NULL ok); leaves both bufferevents, descriptors
 * and TLS connections alone.
 */
void		 relay_free(struct relay *r);

#endif

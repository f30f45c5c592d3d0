/*
 * The byte relay used after an Upgrade, inside intercepted TLS, for blind
 * tunnels and for forwarders. It runs on the descriptors of the two
 * bufferevents it is given, which it disables: each end is a socket, or a
 * socket with its TLS connection, read and written with SSL_read(3) and
 * SSL_write(3) directly. Each direction reads only once what it read
 * before has been written: at most one read (or one pipe) is ever in
 * flight, so memory stays bounded with no watermarks. Between two plain
 * sockets, bulk data moves through a pipe with splice(2). An idle relay
 * holds no buffer: neither OpenSSL's record buffers nor space the
 * bufferevents reserved before the relay took over. A clean end of one
 * side's stream (a FIN, a TLS close_notify) is passed on to the other
 * side as its own (a FIN, a close_notify) and the other direction runs on
 * until that side ends too: a half-close is kept, bounded by the idle
 * timeout. A TLS stream that stops without close_notify may have been cut:
 * it is not passed on as an end, and the relay ends at once.
 */
#include "config.h"

#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf_value.h"
#include "http.h"
#include "linger.h"
#include "log.h"
#include "relay.h"
#include "reqguard.h"
#include "tlsguard.h"
#include "sockprog.h"
#include "xmalloc.h"

/* Reads one wake-up may do per direction before others get their turn. */
#define RELAY_ROUNDS		16

/* What one step of a direction came to. */
enum relay_step {
	RELAY_MORE,		/* go on */
	RELAY_BLOCKED,		/* wait for a descriptor to be ready */
	RELAY_ENDED		/* the relay has ended, or this direction
				   stopped: touch nothing */
};

/* What one read or write on an end came to. */
enum relay_io {
	RELAY_IO_DONE,		/* bytes moved */
	RELAY_IO_WANT_READ,	/* the descriptor must become readable */
	RELAY_IO_WANT_WRITE,	/* the descriptor must become writable */
	RELAY_IO_EOF,		/* the peer closed (TLS: no close_notify) */
	RELAY_IO_NOTIFY,	/* the peer sent a TLS close_notify */
	RELAY_IO_ERROR
};

/* One end: a socket, and its TLS connection if it has one (borrowed). */
struct relay_end {
	evutil_socket_t		 fd;
	SSL			*ssl;
	BIO			*sock;		/* ssl's socket BIO, or NULL */
};

/* One direction of the relay. */
struct relay_way {
	struct relay		*r;
	struct relay_end	 from;
	struct relay_end	 to;
	const char		*from_error;	/* reasons for the debug log */
	const char		*to_error;
	struct event		*readable;	/* on from */
	/*
	 * Made when first needed, as most relays never wait to write and
	 * never hold a byte unwritten: the event for to, while a write
	 * waits; and those for the other readiness TLS may need, a read that
	 * must write first (from) or a write that must read first (to).
	 */
	struct event		*writable;
	struct event		*from_writable;
	struct event		*to_readable;
	struct evbuffer		*queue;		/* read, not written; or NULL */
	/*
	 * Once a read between two plain sockets fills the whole scratch
	 * buffer the direction is carrying bulk data and moves it through
	 * this pipe with splice(2); small exchanges never need one.
	 */
	int			 pipe[2];
	size_t			 inpipe;
	uint64_t		*moved;
	bool			 eof;
	bool			 notify;	/* the eof was a close_notify */
	bool			 done;		/* the end was passed on */
	/*
	 * from is TLS 1.2 or older and was sent a close_notify: it may drop
	 * what it had not sent yet and answer with its own (RFC 5246 7.2.1),
	 * so its end no longer proves its stream whole.
	 */
	bool			 unproven;
	/*
	 * The socket had no more when last read: the readable event says
	 * when it has (relay_recv()). A short splice(2) proves nothing (the
	 * pipe may have run out of slots).
	 */
	bool			 drained;
	/*
	 * relay_guard_line(): the start of the stream is still being
	 * looked at; refused: the bytes held at the start were a request.
	 */
	bool			 guard;
	bool			 refused;
	struct reqguard		 guard_state;
	/*
	 * relay_guard_response(): how much of "HTTP/" the start of the
	 * server's stream matched so far, while it may still.
	 */
	bool			 resp_guard;
	unsigned char		 resp_seen;
	/*
	 * The start of the client's stream while it may be a request line
	 * (reqguard_holding()): read, neither written nor counted yet.
	 */
	struct evbuffer		*held;
	size_t			 before;	/* queue bytes not the client's */
};

struct relay {
	struct relay_way	 way[2];	/* up, down */
	/*
	 * The idle wait is looked at in quarters of the idle time (see
	 * relay_idle_cb()): looks counts the looks since the last read,
	 * moved is the last look that found a peer's acknowledgements
	 * moved, and acked[] are both peers' counts at the last look.
	 */
	struct event		*idle_ev;
	uint64_t		 idle_ms;
	struct timeval		 quarter;
	unsigned int		 looks;
	unsigned int		 moved;
	uint64_t		 acked[2];	/* by the client and the
						   server (sockprog.h) */
	uint64_t		 up;
	uint64_t		 down;
	bool			 server_failed;	/* a write to it failed */
	bool			 refusing;	/* relay_refuse_request() */
	/*
	 * relay_guard_hello(): until the server's ServerHello, the client's
	 * further ClientHellos are read (held while incomplete) and must
	 * name the first one's server; refused_hello: one did not.
	 */
	bool			 hello_guard;
	bool			 refused_hello;
	bool			 refused_response;	/* relay_guard_response */
	struct tlsguard		 tls_guard;
	enum relay_outcome	 outcome;
	bool			 down_dropped;	/* at the end, bytes for the
						   client were left unwritten */
	/*
	 * The server's stream to a client without TLS of its own ended
	 * unproven, or failed: a FIN would pass for its end.
	 */
	bool			 down_cut;
	relay_done_cb		 cb;
	void			*arg;
	evutil_socket_t		 server_fd;	/* adopted, or -1 */
	SSL			*server_ssl;	/* adopted, or NULL */
};

/* Reads land here and are written at once; single-threaded. */
static unsigned char	relay_scratch[RELAY_IO_MAX];

/*
 * SSL_free_buffers(3) refuses while a record is partly read only from
 * OpenSSL 3.0.14 on (CVE-2024-4741); before, a TLS end keeps its buffer.
 */
#if OPENSSL_VERSION_NUMBER >= 0x300000e0L
#define RELAY_FREE_TLS_BUFFERS	1
#else
#define RELAY_FREE_TLS_BUFFERS	0
#endif

/* Wait for nothing more in this direction. */
static void
relay_way_quiet(struct relay_way *w)
{
	event_del(w->readable);
	if (w->writable != NULL)
		event_del(w->writable);
	if (w->from_writable != NULL)
		event_del(w->from_writable);
	if (w->to_readable != NULL)
		event_del(w->to_readable);
}

/* Report the end once, as outcome; the callee frees the relay. */
static void
relay_end(struct relay *r, enum relay_outcome outcome, const char *why)
{
	struct relay_way	*down = &r->way[1];

	/* However a refused relay's last writes to the client went. */
	r->outcome = r->refusing ? RELAY_REFUSED : outcome;
	r->down_dropped = (down->queue != NULL &&
	    evbuffer_get_length(down->queue) > 0) || down->inpipe > 0;
	relay_way_quiet(&r->way[0]);
	relay_way_quiet(&r->way[1]);
	evtimer_del(r->idle_ev);
	r->cb(r, why, r->arg);
}

/*
 * A quarter of the idle time went by without a read. A peer that still
 * takes what was written to it (a slow reader of a large socket buffer,
 * which makes the socket writable only when a third of it is free) is
 * not idle while its acknowledgements move on; the relay ends a full
 * idle time after the last quarter in which one moved, or after the last
 * read. What the first look after a read sees moving may have moved
 * before it (a reader that just stopped is still acknowledged what its
 * kernel takes in), and counts for the first quarter: so a peer that
 * stopped reading is found stalled at most a quarter past the idle time,
 * and one that reads at least once in each idle time never is.
 */
static void
relay_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay	*r = arg;
	bool		 client, server;

	/*
	 * A client that reset its connection while its way waits on the
	 * server (nothing reads its socket then) shows only here.
	 */
	if (sockprog_failed(r->way[0].from.fd)) {
		relay_end(r, RELAY_CLIENT_ERROR, "the client reset");
		return;
	}
	/* Both looked at, so that both marks are of now. */
	client = sockprog_moved(r->way[0].from.fd, &r->acked[0]);
	server = sockprog_moved(r->way[1].from.fd, &r->acked[1]);
	r->looks++;
	if (client || server)
		r->moved = r->looks;
	if (r->looks - r->moved < SOCKPROG_LOOKS) {
		evtimer_add(r->idle_ev, &r->quarter);
		return;
	}
	relay_end(r, RELAY_IDLE, "idle timeout");
}

/* Traffic: the idle wait starts again. */
static void
relay_busy(struct relay *r)
{
	r->looks = 0;
	r->moved = 0;
	evtimer_add(r->idle_ev, &r->quarter);
}

/*
 * What a failed TLS call means; n is its return value. OpenSSL's error
 * queue, cleared before the call, is cleared again after it.
 */
static enum relay_io
relay_tls_result(SSL *ssl, int n)
{
	enum relay_io	 io;
	unsigned long	 e;

	switch (SSL_get_error(ssl, n)) {
	case SSL_ERROR_WANT_READ:
		io = RELAY_IO_WANT_READ;
		break;
	case SSL_ERROR_WANT_WRITE:
		io = RELAY_IO_WANT_WRITE;
		break;
	case SSL_ERROR_ZERO_RETURN:
		io = RELAY_IO_NOTIFY;
		break;
	case SSL_ERROR_SYSCALL:
		/* A close without close_notify: the end of the stream. */
		io = ERR_peek_error() == 0 && errno == 0 ? RELAY_IO_EOF :
		    RELAY_IO_ERROR;
		break;
	case SSL_ERROR_SSL:
		e = ERR_peek_last_error();
		io = ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) ==
		    SSL_R_UNEXPECTED_EOF_WHILE_READING ? RELAY_IO_EOF :
		    RELAY_IO_ERROR;
		break;
	default:
		io = RELAY_IO_ERROR;
		break;
	}
	ERR_clear_error();
	return io;
}

/*
 * The socket BIO under a TLS end, while relay_recv() reads: the last
 * read(2) of the socket was shorter than asked (it emptied the socket's
 * queue) or not.
 */
static long
relay_bio_cb(BIO *b, int oper, const char *argp, size_t len, int argi,
    long argl, int ret, size_t *processed)
{
	bool	*emptied;

	if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
		emptied = (bool *)BIO_get_callback_arg(b);
		*emptied = ret > 0 && processed != NULL && *processed < len;
	}
	return ret;
}

/*
 * Read at most len bytes from e into buf; *done says how many, *drained
 * whether e has no more to read now. A plain socket's short recv(2) says
 * so; a TLS read returns a record, and says so only when the socket was
 * read short during it and OpenSSL holds nothing unread: then the socket
 * is not read again to learn that it would block, which cost a system
 * call and a pass through OpenSSL for every record. What the short read
 * left (an end of file that came with the last bytes, or later bytes) is
 * reported by the readable event because it is level-triggered: an
 * edge-triggered watch of the socket (sockwatch.h) is made
 * level-triggered again by sockwatch_free() before a relay starts.
 */
static enum relay_io
relay_recv(const struct relay_end *e, void *buf, size_t len, size_t *done,
    bool *drained)
{
	ssize_t		 n;
	int		 ret;
	bool		 emptied = false;

	*done = 0;
	*drained = false;
	if (e->ssl != NULL) {
		ERR_clear_error();
		errno = 0;
		if (e->sock != NULL) {
			BIO_set_callback_arg(e->sock, (char *)&emptied);
			BIO_set_callback_ex(e->sock, relay_bio_cb);
		}
		ret = SSL_read_ex(e->ssl, buf, len, done);
		if (e->sock != NULL) {
			BIO_set_callback_ex(e->sock, NULL);
			BIO_set_callback_arg(e->sock, NULL);
		}
		if (ret == 1) {
			*drained = emptied && !SSL_has_pending(e->ssl);
			return RELAY_IO_DONE;
		}
		return relay_tls_result(e->ssl, ret);
	}
	if ((n = recv(e->fd, buf, len, 0)) > 0) {
		*done = (size_t)n;
		*drained = (size_t)n < len;
		return RELAY_IO_DONE;
	}
	if (n == 0)
		return RELAY_IO_EOF;
	return errno == EAGAIN || errno == EINTR ? RELAY_IO_WANT_READ :
	    RELAY_IO_ERROR;
}

/* Write at most len bytes of buf to e; *done says how many. */
static enum relay_io
relay_send(const struct relay_end *e, const void *buf, size_t len,
    size_t *done)
{
	enum relay_io	 io;
	ssize_t		 n;
	int		 ret;

	*done = 0;
	if (e->ssl != NULL) {
		ERR_clear_error();
		errno = 0;
		if ((ret = SSL_write_ex(e->ssl, buf, len, done)) == 1)
			return RELAY_IO_DONE;
		io = relay_tls_result(e->ssl, ret);
		/* A write cannot meet the end of the stream: it failed. */
		return io == RELAY_IO_EOF || io == RELAY_IO_NOTIFY ?
		    RELAY_IO_ERROR : io;
	}
	if ((n = send(e->fd, buf, len, MSG_NOSIGNAL)) >= 0) {
		*done = (size_t)n;
		return RELAY_IO_DONE;
	}
	return errno == EAGAIN || errno == EINTR ? RELAY_IO_WANT_WRITE :
	    RELAY_IO_ERROR;
}

/* Write buf to e until it is all out or e would block; *done is the sum. */
static enum relay_io
relay_send_all(const struct relay_end *e, const unsigned char *buf,
    size_t len, size_t *done)
{
	enum relay_io	 io = RELAY_IO_DONE;
	size_t		 n;

	*done = 0;
	while (*done < len) {
		io = relay_send(e, buf + *done, len - *done, &n);
		*done += n;
		if (io != RELAY_IO_DONE)
			break;
	}
	return io;
}

/* This direction moves nothing more: its side's bytes stay unread. */
static void
relay_way_stop(struct relay_way *w)
{
	relay_way_quiet(w);
	if (w->queue != NULL)
		evbuffer_drain(w->queue, evbuffer_get_length(w->queue));
	w->inpipe = 0;
	w->eof = true;
	w->done = true;
}

/*
 * A read from from (on_from) or a write to to failed: the relay ends,
 * except when a plain server stopped taking the client's bytes. It may
 * have answered before it closed (an error during an upload): the
 * client's direction stops, and the server's relays that answer up to
 * its end, which then ends the relay as the server's failure (the end of
 * a connection that failed is not passed on as a clean one). TLS allows
 * nothing more on a connection whose write failed.
 */
static void
relay_way_fail(struct relay_way *w, bool on_from)
{
	struct relay	*r = w->r;
	bool		 client = (w == &r->way[0]) == on_from;

	if (w == &r->way[0] && !on_from && w->to.ssl == NULL &&
	    !r->way[1].done) {
		log_msg(EV_DEBUG, "relay: the server takes no more; relaying "
		    "what it sent");
		r->server_failed = true;
		relay_way_stop(w);
		return;
	}
	/* A server that failed cut its stream to the client short. */
	r->down_cut = !client && r->way[1].to.ssl == NULL && !r->way[1].done;
	relay_end(r, client ? RELAY_CLIENT_ERROR : RELAY_SERVER_ERROR,
	    on_from ? w->from_error : w->to_error);
}

/*
 * Pass the end of a stream on to e as its own: a FIN, or a close_notify
 * (without waiting for the peer's). False when the socket cannot take it.
 */
static bool
relay_pass_end(const struct relay_end *e)
{
	int	 n;

	if (e->ssl == NULL)
		return shutdown(e->fd, SHUT_WR) == 0;
	ERR_clear_error();
	n = SSL_shutdown(e->ssl);
	ERR_clear_error();
	return n >= 0;
}

/*
 * The side this direction reads from ended and all it sent is written. A
 * clean end (a plain socket's FIN, a close_notify) is passed on, and the
 * relay ends once both directions have ended so (or when the end cannot
 * be passed on: the other side would wait for it). A TLS stream that just
 * stopped, or whose end is unproven, is not passed on, or a cut stream
 * would look complete: the relay ends now, and the other side sees its
 * connection close.
 */
static void
relay_way_closed(struct relay_way *w)
{
	struct relay		*r = w->r;
	struct relay_way	*other = &r->way[w == &r->way[0]];

	/*
	 * A client without TLS cannot tell this end from a whole stream,
	 * unless it ended its own first: many servers answer a close_notify
	 * by closing without one of their own.
	 */
	if ((!w->notify && w->from.ssl != NULL) || w->unproven) {
		r->down_cut = w == &r->way[1] && w->to.ssl == NULL &&
		    !r->way[0].done;
		relay_end(r, RELAY_CLOSED, "closed without a proven end");
		return;
	}
	if (w == &r->way[1] && r->server_failed) {
		relay_end(r, RELAY_SERVER_ERROR, "server error");
		return;
	}
	w->done = true;
	/*
	 * Even a close_notify of its own already on its way (not read yet)
	 * counts as unproven: there is no telling it from an answer to ours.
	 */
	if (w->to.ssl != NULL && SSL_version(w->to.ssl) < TLS1_3_VERSION)
		other->unproven = true;
	if (relay_pass_end(&w->to) && !other->done)
		return;
	relay_end(r, w->notify ? RELAY_CLOSE_NOTIFY : RELAY_CLOSED,
	    w->notify ? "closed with close_notify" : "closed");
}

/* An event made when first needed, added now. */
static void
relay_wait(struct relay_way *w, struct event **ev, evutil_socket_t fd,
    short what);

/* Wait until io's readiness on end; read nothing new meanwhile. */
static enum relay_step
relay_way_block(struct relay_way *w, enum relay_io io, bool on_to)
{
	/*
	 * Waiting to read from: its event stays added (deleted and added
	 * again in one turn, the changelist would still modify it in the
	 * kernel); adding it again only makes sure of that.
	 */
	if (!on_to && io == RELAY_IO_WANT_READ) {
		event_add(w->readable, NULL);
		return RELAY_BLOCKED;
	}
	event_del(w->readable);
	if (on_to && io == RELAY_IO_WANT_WRITE)
		relay_wait(w, &w->writable, w->to.fd, EV_WRITE);
	else if (on_to)
		relay_wait(w, &w->to_readable, w->to.fd, EV_READ);
	else
		relay_wait(w, &w->from_writable, w->from.fd, EV_WRITE);
	return RELAY_BLOCKED;
}

/* Write out what this direction holds: the queue, then the pipe. */
static enum relay_step
relay_way_flush(struct relay_way *w)
{
	enum relay_io	 io;
	size_t		 len, n;
	ssize_t		 sn;

	while (w->queue != NULL && (len = evbuffer_get_length(w->queue)) > 0) {
		if (len > RELAY_IO_MAX)
			len = RELAY_IO_MAX;
		/* TLS retries a write with at least the bytes it had. */
		io = relay_send(&w->to, evbuffer_pullup(w->queue, len), len,
		    &n);
		evbuffer_drain(w->queue, n);
		if (io == RELAY_IO_WANT_READ || io == RELAY_IO_WANT_WRITE)
			return relay_way_block(w, io, true);
		if (io != RELAY_IO_DONE) {
			relay_way_fail(w, false);
			return RELAY_ENDED;
		}
	}
	if (w->queue != NULL) {
		evbuffer_free(w->queue);
		w->queue = NULL;
	}
	while (w->inpipe > 0) {
		sn = splice(w->pipe[0], NULL, w->to.fd, NULL, w->inpipe,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (sn == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return relay_way_block(w,
				    RELAY_IO_WANT_WRITE, true);
			relay_way_fail(w, false);
			return RELAY_ENDED;
		}
		w->inpipe -= (size_t)sn;
	}
	if (w->writable != NULL)
		event_del(w->writable);
	if (!w->eof)
		event_add(w->readable, NULL);
	return RELAY_MORE;
}

/* Switch to splice(2); without a pipe to be had, go on copying. */
static void
relay_way_pipe(struct relay_way *w)
{
	/* A pipe holds 64 KiB by default: one read, one splice. */
	if (pipe2(w->pipe, O_NONBLOCK | O_CLOEXEC) == -1)
		w->pipe[0] = w->pipe[1] = -1;
}

/*
 * The TLS end e has nothing more to read: give back OpenSSL's record
 * buffers. SSL_MODE_RELEASE_BUFFERS frees the read buffer when a read
 * finds it empty and the write buffer after a whole write, but a message
 * after the handshake (a TLS 1.3 session ticket) sets up both and leaves
 * the write buffer, 16.5 KB, with nothing written through it. OpenSSL
 * keeps what holds part of a record, and allocates again when needed.
 */
static void
relay_idle_tls(const struct relay_end *e)
{
	if (RELAY_FREE_TLS_BUFFERS && e->ssl != NULL)
		(void)SSL_free_buffers(e->ssl);
}

static void	relay_refuse_request(struct relay *);

/*
 * The side this direction reads from ended: deliver what it sent first.
 * Nothing is read from it again, so a TLS end gives back its buffers now
 * (a half-closed relay may live on until idle_timeout).
 */
static enum relay_step
relay_way_eof(struct relay_way *w)
{
	/* Its end would end a request (the JDK's server's empty fields). */
	if (w->guard && reqguard_eof(&w->guard_state)) {
		relay_refuse_request(w->r);
		return RELAY_ENDED;
	}
	/* A start still held ended undecided: it is not written. */
	if (w->held != NULL) {
		evbuffer_free(w->held);
		w->held = NULL;
	}
	w->eof = true;
	event_del(w->readable);
	relay_idle_tls(&w->from);
	return RELAY_MORE;
}

/* Why a guarded relay ended (relay_guard_line, relay_guard_hello). */
static const char	relay_refused_why[] =
    "an HTTP request at the start of the client's stream";
static const char	relay_refused_hello_why[] =
    "before the server's ServerHello, a further handshake record was no "
    "ClientHello naming the first one's server";

static const char	relay_refused_response_why[] =
    "an HTTP response at the start of the server's stream";

static const char *
relay_refused_reason(const struct relay *r)
{
	if (r->refused_response)
		return relay_refused_response_why;
	return r->refused_hello ? relay_refused_hello_why : relay_refused_why;
}

/* The start of a response that relay_guard_response() refuses. */
static const char	relay_response_start[] = "HTTP/";

/*
 * Look at len more bytes of the start of the server's stream
 * (relay_guard_response): true once they complete "HTTP/"; the guard ends
 * at the first byte that does not match.
 */
static bool
relay_response_scan(struct relay_way *w, const unsigned char *data,
    size_t len)
{
	size_t	 i;

	for (i = 0; i < len && w->resp_guard; i++) {
		if (data[i] != (unsigned char)relay_response_start[w->resp_seen])
			w->resp_guard = false;
		else if (++w->resp_seen == sizeof(relay_response_start) - 1)
			return true;
	}
	return false;
}

/*
 * The refused relay's bytes for the client are written out: it ends.
 * Flushing may block, or fail (the end is then a cut, relay_client_cut).
 */
static void
relay_refused_flush(struct relay *r)
{
	if (relay_way_flush(&r->way[1]) == RELAY_MORE)
		relay_end(r, RELAY_REFUSED, relay_refused_reason(r));
}

/*
 * The start of the client's stream was a request (relay_guard_line): none
 * of its bytes is written, and nothing more is read from either side. What
 * was already queued for the client (answers to the requests it pipelined
 * before the CONNECT, and the 200) goes out first, so that it reaches the
 * client whole and the connection then closes in order; a client that
 * stops taking it is cut at idle_timeout. The relay may be freed on
 * return.
 */
static void
relay_refuse_request(struct relay *r)
{
	r->refusing = true;
	relay_way_stop(&r->way[0]);
	/*
	 * The server may have had the start of the stream (a first line
	 * whose request the next one completed): it is reset, never given
	 * an end of file that could end that request.
	 */
	linger_reset(r->way[0].to.fd);
	/* The server spoke: its stream, cut here, must not end in order. */
	if (r->down > 0) {
		r->down_cut = true;
		relay_end(r, RELAY_REFUSED, relay_refused_reason(r));
		return;
	}
	event_del(r->way[1].readable);
	r->way[1].eof = true;
	relay_refused_flush(r);
}

/*
 * Look at len more bytes of the start of the stream (relay_guard_line):
 * true when they complete a request; the guard ends once none can be.
 */
static bool
relay_guard_scan(struct relay_way *w, const unsigned char *data, size_t len)
{
	switch (reqguard_feed(&w->guard_state, data, len, NULL)) {
	case REQGUARD_REQUEST:
		return true;
	case REQGUARD_DONE:
		w->guard = false;
		break;
	case REQGUARD_MORE:
		break;
	}
	return false;
}

/*
 * The held client bytes (len of them) as relay_guard_hello() judges them:
 * what may go is queued; the rest stays held while the look goes on. The
 * look ended (hello_guard false) once the server's ServerHello came.
 */
static enum tlsguard_verdict
relay_hello_hold(struct relay_way *w, size_t len)
{
	struct relay	*r = w->r;
	size_t		 pass;

	if (tlsguard_client(&r->tls_guard, len > 0 ?
	    evbuffer_pullup(w->held, -1) : NULL, len, &pass) ==
	    TLSGUARD_REFUSE) {
		r->refused_hello = true;
		return TLSGUARD_REFUSE;
	}
	if (r->tls_guard.done) {
		r->hello_guard = false;
		return TLSGUARD_OK;
	}
	if (w->queue == NULL)
		w->queue = evbuffer_new();
	evbuffer_remove_buffer(w->held, w->queue, pass);
	*w->moved += (uint64_t)pass;
	return TLSGUARD_OK;
}

static enum relay_step relay_way_hold(struct relay_way *);

/*
 * n more bytes of the server's (in relay_scratch) for the look of
 * relay_guard_hello(): once its ServerHello came, what the client's way
 * held goes (unless a request line holds it still) and is flushed.
 */
static void
relay_hello_server(struct relay *r, size_t n)
{
	struct relay_way	*c = &r->way[0];

	tlsguard_server(&r->tls_guard, relay_scratch, n);
	if (!r->tls_guard.done)
		return;
	r->hello_guard = false;
	if (c->held == NULL || (c->guard && reqguard_holding(&c->guard_state)))
		return;
	/* Not holding a line, it releases all and cannot end the relay. */
	(void)relay_way_hold(c);
	event_active(c->readable, EV_READ, 1);
}

/*
 * The held start of the client's stream (relay_guard_line) after more
 * bytes: still held while it may be a request line, refused once longer
 * than any line taken for something else, else queued to be written.
 */
static enum relay_step
relay_way_hold(struct relay_way *w)
{
	size_t	 len = evbuffer_get_length(w->held);

	if (w->guard && reqguard_holding(&w->guard_state)) {
		if (len < REQGUARD_LINE_MAX)
			return RELAY_MORE;
		relay_refuse_request(w->r);
		return RELAY_ENDED;
	}
	if (w == &w->r->way[0] && w->r->hello_guard) {
		switch (relay_hello_hold(w, len)) {
		case TLSGUARD_REFUSE:
			relay_refuse_request(w->r);
			return RELAY_ENDED;
		case TLSGUARD_OK:
			if (w->r->hello_guard)
				return RELAY_MORE;
			len = evbuffer_get_length(w->held);
			break;
		}
	}
	if (w->queue == NULL)
		w->queue = evbuffer_new();
	evbuffer_add_buffer(w->queue, w->held);
	evbuffer_free(w->held);
	w->held = NULL;
	*w->moved += (uint64_t)len;
	return RELAY_MORE;
}

/* Read once from from; what was read is written or queued. */
static enum relay_step
relay_way_read(struct relay_way *w)
{
	enum relay_io	 io;
	size_t		 n, sent;
	ssize_t		 sn;
	bool		 plain = w->from.ssl == NULL && w->to.ssl == NULL;
	bool		 drained = false;

	if (w->pipe[0] != -1) {
		sn = splice(w->from.fd, NULL, w->pipe[1], NULL, RELAY_IO_MAX,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		io = sn > 0 ? RELAY_IO_DONE : sn == 0 ? RELAY_IO_EOF :
		    errno == EAGAIN || errno == EINTR ? RELAY_IO_WANT_READ :
		    RELAY_IO_ERROR;
		n = sn > 0 ? (size_t)sn : 0;
	} else
		io = relay_recv(&w->from, relay_scratch, sizeof(relay_scratch),
		    &n, &drained);
	switch (io) {
	case RELAY_IO_DONE:
		break;
	case RELAY_IO_WANT_READ:
		w->drained = true;
		relay_idle_tls(&w->from);
		/* FALLTHROUGH */
	case RELAY_IO_WANT_WRITE:
		return relay_way_block(w, io, false);
	case RELAY_IO_NOTIFY:
		w->notify = true;
		/* FALLTHROUGH */
	case RELAY_IO_EOF:
		return relay_way_eof(w);
	default:
		relay_way_fail(w, true);
		return RELAY_ENDED;
	}
	if (w->guard && relay_guard_scan(w, relay_scratch, n)) {
		relay_refuse_request(w->r);
		return RELAY_ENDED;
	}
	/* None of these bytes went; the client has the 101 at most. */
	if (w->resp_guard && relay_response_scan(w, relay_scratch, n)) {
		w->r->refused_response = true;
		relay_refuse_request(w->r);
		return RELAY_ENDED;
	}
	/* A splice(2) into the pipe proves nothing (see drained). */
	w->drained = drained;
	if (drained)
		relay_idle_tls(&w->from);
	/*
	 * The server answered what the client sent: it speaks the client's
	 * protocol, and an HTTP server answers no part of a request. Taken
	 * so only once no method can start the client's stream (binary, a
	 * ClientHello): a banner the server sent unasked, arriving just
	 * after a client's first line, is no answer to it.
	 */
	if (w == &w->r->way[1] && n > 0 && w->r->up > 0 &&
	    reqguard_binary(&w->r->way[0].guard_state))
		w->r->way[0].guard = false;
	/* The server's ServerHello ends the look at the client's hellos. */
	if (w == &w->r->way[1] && w->r->hello_guard)
		relay_hello_server(w->r, n);
	relay_busy(w->r);
	if (w->held != NULL) {
		evbuffer_add(w->held, relay_scratch, n);
		return relay_way_hold(w);
	}
	*w->moved += (uint64_t)n;
	if (w->pipe[0] != -1) {
		w->inpipe = n;
		return RELAY_MORE;
	}
	io = relay_send_all(&w->to, relay_scratch, n, &sent);
	if (io == RELAY_IO_ERROR || io == RELAY_IO_EOF) {
		relay_way_fail(w, false);
		return RELAY_ENDED;
	}
	/* The next flush waits for what the rest needs. */
	if (sent < n) {
		if (w->queue == NULL)
			w->queue = evbuffer_new();
		evbuffer_add(w->queue, relay_scratch + sent, n - sent);
	}
	/* A guarded line is read into user space, where it is looked at. */
	if (plain && w->pipe[0] == -1 && n == RELAY_IO_MAX && !w->guard &&
	    !w->resp_guard && !w->r->hello_guard)
		relay_way_pipe(w);
	return RELAY_MORE;
}

/*
 * Hold the client's bytes queued before the relay (behind the before bytes
 * that go first), unwritten and uncounted until released: their length.
 */
static size_t
relay_hold_queued(struct relay_way *w)
{
	struct evbuffer	*front;
	size_t		 len;

	w->held = evbuffer_new();
	if (w->queue != NULL) {
		front = evbuffer_new();
		evbuffer_remove_buffer(w->queue, front, w->before);
		evbuffer_add_buffer(w->held, w->queue);
		evbuffer_add_buffer(w->queue, front);
		evbuffer_free(front);
	}
	len = evbuffer_get_length(w->held);
	*w->moved -= (uint64_t)len;
	return len;
}

void
relay_guard_line(struct relay *r)
{
	struct relay_way	*w = &r->way[0];
	struct evbuffer_ptr	 at;
	struct evbuffer_iovec	 v;

	w->guard = true;
	reqguard_init(&w->guard_state);
	/* What the client sent before the relay goes first: look at it. */
	evbuffer_ptr_set(w->queue, &at, w->before, EVBUFFER_PTR_SET);
	while (w->guard && !w->refused &&
	    evbuffer_peek(w->queue, -1, &at, &v, 1) > 0) {
		w->refused = relay_guard_scan(w, v.iov_base, v.iov_len);
		if (evbuffer_ptr_set(w->queue, &at, v.iov_len,
		    EVBUFFER_PTR_ADD) == -1)
			break;
	}
	/* Refused at once: nothing of the client's was written. */
	if (w->refused) {
		*w->moved -= (uint64_t)(evbuffer_get_length(w->queue) -
		    w->before);
		return;
	}
	if (!reqguard_holding(&w->guard_state))
		return;
	/* It may be a request line: hold it, behind what goes first. */
	w->refused = relay_hold_queued(w) >= REQGUARD_LINE_MAX;
}

void
relay_guard_response(struct relay *r)
{
	struct relay_way	*w = &r->way[1];
	struct evbuffer		*front;
	struct evbuffer_ptr	 at;
	struct evbuffer_iovec	 v;
	size_t			 len;

	w->resp_guard = true;
	w->resp_seen = 0;
	/* What the server sent with its 101 goes after it: look at it. */
	evbuffer_ptr_set(w->queue, &at, w->before, EVBUFFER_PTR_SET);
	while (w->resp_guard && evbuffer_peek(w->queue, -1, &at, &v, 1) > 0) {
		if (relay_response_scan(w, v.iov_base, v.iov_len))
			break;
		if (evbuffer_ptr_set(w->queue, &at, v.iov_len,
		    EVBUFFER_PTR_ADD) == -1)
			break;
	}
	if (!w->resp_guard || w->resp_seen < sizeof(relay_response_start) - 1)
		return;
	/* Refused at once: the server's bytes go, the 101 before them stays. */
	len = evbuffer_get_length(w->queue) - w->before;
	front = evbuffer_new();
	evbuffer_remove_buffer(w->queue, front, w->before);
	evbuffer_free(w->queue);
	w->queue = front;
	*w->moved -= (uint64_t)len;
	r->refused_response = true;
	r->way[0].refused = true;
}

void
relay_guard_hello(struct relay *r, const char *sni, size_t hello_len)
{
	struct relay_way	*w = &r->way[0];

	r->hello_guard = true;
	tlsguard_init(&r->tls_guard, sni, hello_len);
	if (w->refused)
		return;
	/* What the client sent before the relay is held, then judged. */
	if (w->held == NULL)
		(void)relay_hold_queued(w);
	if (w->guard && reqguard_holding(&w->guard_state))
		return;
	if (relay_hello_hold(w, evbuffer_get_length(w->held)) ==
	    TLSGUARD_REFUSE)
		w->refused = true;
}

bool
relay_refused_hello(const struct relay *r)
{
	return r->refused_hello;
}

bool
relay_refused_response(const struct relay *r)
{
	return r->refused_response;
}

/* Move bytes one way until a descriptor would block or the relay ends. */
static void
relay_way_pump(struct relay_way *w)
{
	int	 i;

	/* A refused relay only writes what the client is still owed. */
	if (w->r->refusing) {
		if (w == &w->r->way[1])
			relay_refused_flush(w->r);
		return;
	}
	if (w->refused) {
		relay_refuse_request(w->r);
		return;
	}
	if (w->done)
		return;
	w->drained = false;
	if (w->from_writable != NULL)
		event_del(w->from_writable);
	if (w->to_readable != NULL)
		event_del(w->to_readable);
	for (i = 0;; i++) {
		/* Every read is followed by a flush: nothing waits unwritten. */
		if (relay_way_flush(w) != RELAY_MORE)
			return;
		if (w->eof) {
			relay_way_closed(w);
			return;
		}
		if (w->drained)
			return;
		/*
		 * Others get their turn; this direction goes on in the next
		 * one. TLS may hold read bytes the descriptor no longer
		 * shows, so the event is not left to fire again.
		 */
		if (i == RELAY_ROUNDS) {
			event_active(w->readable, EV_READ, 1);
			return;
		}
		if (relay_way_read(w) != RELAY_MORE)
			return;
	}
}

static void
relay_way_cb(evutil_socket_t fd, short what, void *arg)
{
	relay_way_pump(arg);
}

static void
relay_wait(struct relay_way *w, struct event **ev, evutil_socket_t fd,
    short what)
{
	if (*ev == NULL)
		*ev = event_new(event_get_base(w->readable), fd,
		    what | EV_PERSIST, relay_way_cb, w);
	event_add(*ev, NULL);
}

/*
 * An end from a bufferevent: its socket and, for TLS, its connection,
 * which now reads ahead as much as its buffer holds (the relay, unlike
 * the bufferevent, reads on while OpenSSL holds bytes: relay_recv()),
 * and its socket BIO, under any filter, whose reads relay_recv() watches.
 */
static void
relay_end_init(struct relay_end *e, struct bufferevent *bev)
{
	e->fd = bufferevent_getfd(bev);
	e->sock = NULL;
	if ((e->ssl = bufferevent_openssl_get_ssl(bev)) == NULL)
		return;
	e->sock = BIO_find_type(SSL_get_rbio(e->ssl), BIO_TYPE_SOCKET);
	SSL_set_mode(e->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_set_read_ahead(e->ssl, 1);
	SSL_set_default_read_buffer_len(e->ssl, RELAY_IO_MAX);
}

/*
 * Free the chains an empty buffer still holds. A bufferevent reserves
 * its read space before it reads (RELAY_IO_MAX rounded up to a power of
 * two, 128 KiB, once tuned) and keeps it when the read brought nothing,
 * as when OpenSSL took a TLS 1.3 session ticket; libevent frees chains
 * only as it drains bytes, and from an empty buffer it drains none. The
 * front of buf must not be frozen.
 */
static void
relay_release(struct evbuffer *buf)
{
	if (evbuffer_get_length(buf) == 0 && evbuffer_prepend(buf, "", 1) == 0)
		evbuffer_drain(buf, 1);
}

/* Set up one direction, taking the bytes it must send first. */
static void
relay_way_init(struct relay *r, struct relay_way *w, struct event_base *base,
    struct bufferevent *from, struct bufferevent *to, bool from_client,
    uint64_t *moved)
{
	struct evbuffer	*out;

	w->r = r;
	relay_end_init(&w->from, from);
	relay_end_init(&w->to, to);
	w->from_error = from_client ? "client error" : "server error";
	w->to_error = from_client ? "server error" : "client error";
	w->pipe[0] = w->pipe[1] = -1;
	w->moved = moved;
	w->readable = event_new(base, w->from.fd, EV_READ | EV_PERSIST,
	    relay_way_cb, w);
	w->queue = evbuffer_new();
	/*
	 * Queued for to before the relay, then read from from: in order.
	 * A bufferevent keeps the front of its output frozen for itself.
	 */
	out = bufferevent_get_output(to);
	evbuffer_unfreeze(out, 1);
	evbuffer_add_buffer(w->queue, out);
	relay_release(out);
	evbuffer_freeze(out, 1);
	w->before = evbuffer_get_length(w->queue);
	*moved += evbuffer_get_length(bufferevent_get_input(from));
	evbuffer_add_buffer(w->queue, bufferevent_get_input(from));
	relay_release(bufferevent_get_input(from));
}

/* Stop a bufferevent for good: the relay owns its descriptor's traffic. */
static void
relay_quiet(struct bufferevent *bev)
{
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_set_timeouts(bev, NULL, NULL);
}

/* A caller broke relay.h's rule: a bug, not a condition to handle. */
static void
relay_refuse(void)
{
	fprintf(stderr, "pinproxy: relay_new: a bufferevent without a "
	    "socket of its own\n");
	abort();
}

struct relay *
relay_new(struct event_base *base, struct bufferevent *client,
    struct bufferevent *server, uint64_t idle_ms, relay_done_cb cb,
    void *arg)
{
	struct relay	*r;
	int		 i;

	/* A filter has no descriptor of its own to relay on. */
	if (bufferevent_get_underlying(client) != NULL ||
	    bufferevent_get_underlying(server) != NULL ||
	    bufferevent_getfd(client) == -1 || bufferevent_getfd(server) == -1)
		relay_refuse();
	r = xcalloc(1, sizeof(*r));
	r->cb = cb;
	r->arg = arg;
	r->server_fd = -1;
	r->idle_ms = idle_ms;
	r->quarter = cv_timeval(sockprog_look_ms(idle_ms));
	r->idle_ev = evtimer_new(base, relay_idle_cb, r);
	relay_busy(r);
	relay_quiet(client);
	relay_quiet(server);
	relay_way_init(r, &r->way[0], base, client, server, true, &r->up);
	relay_way_init(r, &r->way[1], base, server, client, false, &r->down);
	for (i = 0; i < 2; i++) {
		/*
		 * Bytes already held go first, and TLS may hold read bytes
		 * the socket no longer shows: both directions start from the
		 * loop (a write that fails here would end the relay before
		 * the caller has it).
		 */
		event_active(r->way[i].readable, EV_READ, 1);
	}
	return r;
}

bool
relay_peek(struct evbuffer *buf, struct evbuffer_iovec *v)
{
	struct evbuffer_ptr	 pos;

	if (evbuffer_get_length(buf) == 0)
		return false;
	/* A position skips empty chains; peek from there. */
	evbuffer_ptr_set(buf, &pos, 0, EVBUFFER_PTR_SET);
	return evbuffer_peek(buf, 1, &pos, v, 1) > 0 && v->iov_len > 0;
}

void
relay_throttle(struct bufferevent *src, struct bufferevent *dst)
{
	if (evbuffer_get_length(bufferevent_get_output(dst)) <
	    RELAY_HIGH_WATER)
		return;
	bufferevent_disable(src, EV_READ);
	bufferevent_setwatermark(dst, EV_WRITE, RELAY_HIGH_WATER / 2, 0);
}

void
relay_unthrottle(struct bufferevent *src, struct bufferevent *dst)
{
	bufferevent_setwatermark(dst, EV_WRITE, 0, 0);
	bufferevent_enable(src, EV_READ);
}

/*
 * Whether bytes for bev may go straight to its socket, or (tls) to ssl,
 * its TLS connection (NULL for none), once the handshake is over: see
 * relay_move.
 */
static bool
relay_direct(struct bufferevent *bev, SSL *ssl, bool tls)
{
	if (bufferevent_getfd(bev) == -1 ||
	    bufferevent_get_underlying(bev) != NULL ||
	    (bufferevent_get_enabled(bev) & EV_WRITE) == 0 ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return false;
	return ssl == NULL || (tls && SSL_is_init_finished(ssl));
}

/* The most relay_direct_tls() writes: what a bufferevent writes at once. */
#define RELAY_DIRECT_TLS_MAX	16384

/*
 * Write n bytes of src to ssl, the TLS connection of dst, whose output is
 * empty: how many went (and left src). When OpenSSL could not take them
 * all at once it may hold part of a record, and only a write of the same
 * bytes, no fewer, may follow: they go to dst's output in one piece, from
 * which the bufferevent's own write sends them (or reports its failure),
 * as it would have without this one.
 */
static size_t
relay_direct_tls(struct bufferevent *dst, SSL *ssl, struct evbuffer *src,
    size_t n)
{
	struct evbuffer	*out = bufferevent_get_output(dst);
	unsigned char	*data;
	size_t		 w = 0;

	if (n > RELAY_DIRECT_TLS_MAX ||
	    (data = evbuffer_pullup(src, (ev_ssize_t)n)) == NULL)
		return 0;
	ERR_clear_error();
	if (SSL_write_ex(ssl, data, n, &w) != 1) {
		ERR_clear_error();
		if (evbuffer_add(out, data, n) == -1)
			return 0;
		/* Made sure of: a chain kept empty would split them. */
		(void)evbuffer_pullup(out, -1);
		w = n;
	}
	evbuffer_drain(src, w);
	return w;
}

/* relay_push(), relay_push_whole() (tls). */
static void
relay_move(struct bufferevent *dst, struct evbuffer *src, size_t n, bool tls)
{
	struct evbuffer		*out = bufferevent_get_output(dst);
	SSL			*ssl = bufferevent_openssl_get_ssl(dst);
	struct evbuffer_iovec	 v;
	size_t			 len;
	int			 w;

	if (n > evbuffer_get_length(src))
		n = evbuffer_get_length(src);
	if (n == 0)
		return;
	/*
	 * Nothing queued: write now, ahead of nothing. What is written never
	 * enters the output, so no write event is armed for it; a failure
	 * leaves the bytes to the bufferevent, whose own write reports it.
	 */
	if (relay_direct(dst, ssl, tls)) {
		if (ssl != NULL)
			n -= relay_direct_tls(dst, ssl, src, n);
		else if ((w = evbuffer_write_atmost(src,
		    bufferevent_getfd(dst), (ev_ssize_t)n)) > 0)
			n -= (size_t)w;
	}
	/*
	 * Copied into dst's chains, which fill up, rather than moved: the
	 * chains of src are the reads of its bufferevent, each allocated
	 * for a whole read and often half empty (a socket's reads are of at
	 * most 4 KiB, in chains of 8), and moved they would take twice the
	 * memory of the bytes they queue, for every connection whose peer
	 * stopped reading.
	 */
	while (n > 0 && relay_peek(src, &v)) {
		len = v.iov_len < n ? v.iov_len : n;
		if (evbuffer_add(out, v.iov_base, len) == -1)
			break;
		evbuffer_drain(src, len);
		n -= len;
	}
	/*
	 * Out of memory for a copy: move the rest, which needs none. Every
	 * caller counts the n bytes as gone from src; left there, a body's
	 * bytes would be read again, as the next request's head maybe.
	 */
	if (n > 0)
		evbuffer_remove_buffer(src, out, n);
}

void
relay_push(struct bufferevent *dst, struct evbuffer *src, size_t n)
{
	relay_move(dst, src, n, false);
}

void
relay_push_whole(struct bufferevent *dst, struct evbuffer *src, size_t n)
{
	relay_move(dst, src, n, true);
}

void
relay_enable(struct bufferevent *bev, short what)
{
	what &= ~bufferevent_get_enabled(bev);
	if (what != 0)
		bufferevent_enable(bev, what);
}

void
relay_tune(struct bufferevent *bev)
{
	bufferevent_set_max_single_read(bev, RELAY_IO_MAX);
	bufferevent_set_max_single_write(bev, RELAY_IO_MAX);
}

unsigned long
relay_tls_error(struct bufferevent *bev)
{
	unsigned long	 e;

	while ((e = bufferevent_get_openssl_error(bev)) != 0 &&
	    ERR_GET_LIB(e) == 0)
		continue;
	return e;
}

void
relay_counts(const struct relay *r, uint64_t *up, uint64_t *down)
{
	*up = r->up;
	*down = r->down;
}

void
relay_adopt_server(struct relay *r, evutil_socket_t fd, SSL *ssl)
{
	r->server_fd = fd;
	r->server_ssl = ssl;
}

SSL *
relay_server_tls(const struct relay *r)
{
	return r->server_ssl;
}

enum relay_outcome
relay_outcome(const struct relay *r)
{
	return r->outcome;
}

bool
relay_down_ended(const struct relay *r)
{
	return r->way[1].done;
}

bool
relay_client_cut(const struct relay *r)
{
	return r->down_cut || !relay_client_has_all(r);
}

bool
relay_client_has_all(const struct relay *r)
{
	return !r->down_dropped && r->outcome != RELAY_CLIENT_ERROR &&
	    !(r->outcome == RELAY_IDLE && !relay_down_ended(r));
}

void
relay_free(struct relay *r)
{
	struct relay_way	*w;
	int			 i;

	if (r == NULL)
		return;
	for (i = 0; i < 2; i++) {
		w = &r->way[i];
		event_free(w->readable);
		if (w->writable != NULL)
			event_free(w->writable);
		if (w->from_writable != NULL)
			event_free(w->from_writable);
		if (w->to_readable != NULL)
			event_free(w->to_readable);
		if (w->queue != NULL)
			evbuffer_free(w->queue);
		if (w->held != NULL)
			evbuffer_free(w->held);
		if (w->pipe[0] != -1) {
			close(w->pipe[0]);
			close(w->pipe[1]);
		}
	}
	SSL_free(r->server_ssl);
	if (r->server_fd != -1) {
		/*
		 * A client's stream whose end was not passed on (the client
		 * failed, the relay was idle or cut) ends at the server with
		 * a reset: a FIN could pass for the end of a whole one.
		 */
		if (!r->way[0].done)
			linger_reset(r->server_fd);
		/* What the server has not taken yet is still its own. */
		linger_close_server(event_get_base(r->idle_ev), r->server_fd,
		    r->idle_ms);
	}
	event_free(r->idle_ev);
	free(r);
}

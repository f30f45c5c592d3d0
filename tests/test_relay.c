/*
 * Tests of the socket relay used for blind tunnels, over real TCP
 * connections on 127.0.0.1: bytes the bufferevents held go first, bulk data
 * crosses intact both ways through pipes that are closed afterwards, a
 * half-close is passed on while the other way runs, idle time and resets
 * (of either side) end the relay with a reason and an outcome, and a
 * server's early answer still reaches the client after a failed write.
 * With a TLS end (a real TLS 1.3 handshake with an origin in a child
 * process), an idle relay holds no record buffer of OpenSSL's and no read
 * space of libevent's: every allocation of both libraries is counted.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"
#include "reqguard.h"
#include "testpki.h"
#include "tls_upstream.h"

/* The longest any test waits for the relay. */
#define DEADLINE_SEC	10

/*
 * app <-> [client bev | relay | server bev] <-> origin: app and origin are
 * the test's own non-blocking ends.
 */
struct fixture {
	struct event_base	*base;
	struct bufferevent	*client;
	struct bufferevent	*server;
	int			 app;
	int			 origin;
	struct relay		*relay;
	const char		*why;		/* set when the relay ended */
	enum relay_outcome	 outcome;
	bool			 cut;		/* relay_client_cut() */
	uint64_t		 up;
	uint64_t		 down;
	/* With a TLS server end: */
	SSL_CTX			*server_ctx;
	struct testpki_chain	 pki;
	pid_t			 child;		/* the TLS origin */
};

/*
 * Live blocks of this process as large as a TLS record or larger: of
 * OpenSSL's (its record buffers) and of libevent's (a bufferevent's read
 * space, RELAY_IO_MAX and more once tuned). Nothing else of the relay's
 * TLS end is that large; the origin, a child process, counts its own.
 */
#define BIG_BLOCK	16384

static int	big_ssl, big_event;
/* Bytes OpenSSL holds in live blocks. */
static long	ssl_live;

/* A block with its length in front, counted in *big when it is large. */
static void *
track_malloc(size_t len, int *big)
{
	unsigned char	*p;

	if ((p = malloc(len + 16)) == NULL)
		return NULL;
	memcpy(p, &len, sizeof(len));
	if (len >= BIG_BLOCK)
		(*big)++;
	return p + 16;
}

static void
track_free(void *ptr, int *big)
{
	unsigned char	*p = ptr;
	size_t		 len;

	if (p == NULL)
		return;
	memcpy(&len, p - 16, sizeof(len));
	if (len >= BIG_BLOCK)
		(*big)--;
	free(p - 16);
}

static void *
track_realloc(void *ptr, size_t len, int *big)
{
	unsigned char	*p = ptr;
	size_t		 old;

	if (p == NULL)
		return track_malloc(len, big);
	if (len == 0) {
		track_free(ptr, big);
		return NULL;
	}
	memcpy(&old, p - 16, sizeof(old));
	if ((p = realloc(p - 16, len + 16)) == NULL)
		return NULL;
	memcpy(p, &len, sizeof(len));
	*big += (len >= BIG_BLOCK) - (old >= BIG_BLOCK);
	return p + 16;
}

/* The length track_malloc() put in front of a live block (NULL: 0). */
static long
tracked_len(void *ptr)
{
	size_t	 len = 0;

	if (ptr != NULL)
		memcpy(&len, (unsigned char *)ptr - 16, sizeof(len));
	return (long)len;
}

static void *
ssl_malloc(size_t len, const char *file, int line)
{
	void	*p;

	if ((p = track_malloc(len, &big_ssl)) != NULL)
		ssl_live += (long)len;
	return p;
}

static void *
ssl_realloc(void *ptr, size_t len, const char *file, int line)
{
	long	 old = tracked_len(ptr);
	void	*p;

	if ((p = track_realloc(ptr, len, &big_ssl)) != NULL || len == 0)
		ssl_live += (long)len - old;
	return p;
}

static void
ssl_free(void *ptr, const char *file, int line)
{
	ssl_live -= tracked_len(ptr);
	track_free(ptr, &big_ssl);
}

static void *
event_malloc(size_t len)
{
	return track_malloc(len, &big_event);
}

static void *
event_realloc(void *ptr, size_t len)
{
	return track_realloc(ptr, len, &big_event);
}

static void
event_free_block(void *ptr)
{
	track_free(ptr, &big_event);
}

/*
 * A connected pair of TCP sockets on 127.0.0.1, both non-blocking; a's
 * receive buffer is rcvbuf bytes (0: the default), set before it connects.
 */
static void
tcp_pair_sized(int *a, int *b, int rcvbuf)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 l;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((l = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	assert_true((*a = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	if (rcvbuf > 0)
		assert_int_equal(setsockopt(*a, SOL_SOCKET, SO_RCVBUF,
		    &rcvbuf, sizeof(rcvbuf)), 0);
	assert_int_equal(connect(*a, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	assert_true((*b = accept(l, NULL, NULL)) != -1);
	close(l);
	assert_int_equal(evutil_make_socket_nonblocking(*a), 0);
	assert_int_equal(evutil_make_socket_nonblocking(*b), 0);
}

static void
tcp_pair(int *a, int *b)
{
	tcp_pair_sized(a, b, 0);
}

static int
setup(void **state)
{
	struct fixture	*f;
	int		 c, s;

	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->base = event_base_new();
	tcp_pair(&f->app, &c);
	tcp_pair(&s, &f->origin);
	f->client = bufferevent_socket_new(f->base, c, BEV_OPT_CLOSE_ON_FREE);
	f->server = bufferevent_socket_new(f->base, s, BEV_OPT_CLOSE_ON_FREE);
	*state = f;
	return 0;
}

static void	fill(unsigned char *, size_t, unsigned int);

/* Read exactly len bytes from a blocking TLS connection. */
static bool
origin_expect(SSL *ssl, const char *want, size_t len)
{
	char	 buf[16];
	size_t	 got = 0, n;

	while (got < len && SSL_read_ex(ssl, buf + got, len - got, &n) == 1)
		got += n;
	return got == len && memcmp(buf, want, len) == 0;
}

/*
 * The origin, in the child: a TLS 1.3 server on fd (blocking) that sends
 * its session tickets with the handshake, reads "ping", answers with
 * ORIGIN_BULK bytes, reads "again", answers "ok" and exits 0 once the
 * connection closes, or 1 at the first thing that differs.
 */
#define ORIGIN_BULK	40000

/*
 * With origin_half, the origin answers "ping" with "pong" and its
 * close_notify instead, keeps its TCP connection open and reads until the
 * relay's close_notify: exit status 0 once it came.
 */
static bool	origin_half;

/*
 * With origin_slow, the origin reads nothing for SLOW_MS after the
 * handshake, with a small receive buffer, then reads SLOW_BYTES bytes that
 * must be fill()'s with seed 5, and reads on until the close: exit status
 * 0 if they were.
 */
static bool	origin_slow;
#define SLOW_MS		300
#define SLOW_BYTES	16000

static void
origin_run(const struct testpki_chain *pki, int fd)
{
	SSL_CTX		*ctx;
	SSL		*ssl;
	unsigned char	*bulk;
	size_t		 n;

	if ((bulk = malloc(ORIGIN_BULK)) == NULL ||
	    (ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_use_certificate(ctx, pki->leaf) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, pki->leaf_key) != 1 ||
	    SSL_CTX_add1_chain_cert(ctx, pki->ca) != 1 ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    (ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    fcntl(fd, F_SETFL, 0) == -1 || SSL_accept(ssl) != 1 ||
	    (!origin_slow && !origin_expect(ssl, "ping", 4)))
		_exit(1);
	if (origin_slow) {
		unsigned char	want[SLOW_BYTES];
		size_t		got = 0;

		usleep(SLOW_MS * 1000);
		fill(want, sizeof(want), 5);
		while (got < SLOW_BYTES && SSL_read_ex(ssl, bulk + got,
		    SLOW_BYTES - got, &n) == 1)
			got += n;
		if (got != SLOW_BYTES || memcmp(bulk, want, SLOW_BYTES) != 0)
			_exit(1);
		while (SSL_read_ex(ssl, bulk, ORIGIN_BULK, &n) == 1)
			continue;
		_exit(0);
	}
	if (origin_half) {
		if (SSL_write_ex(ssl, "pong", 4, &n) != 1 ||
		    SSL_shutdown(ssl) < 0)
			_exit(1);
		while (SSL_read_ex(ssl, bulk, ORIGIN_BULK, &n) == 1)
			continue;
		_exit(SSL_get_error(ssl, 0) == SSL_ERROR_ZERO_RETURN ? 0 : 1);
	}
	fill(bulk, ORIGIN_BULK, 3);
	if (SSL_write_ex(ssl, bulk, ORIGIN_BULK, &n) != 1 ||
	    !origin_expect(ssl, "again", 5) ||
	    SSL_write_ex(ssl, "ok", 2, &n) != 1)
		_exit(1);
	while (SSL_read_ex(ssl, bulk, ORIGIN_BULK, &n) == 1)
		continue;
	_exit(0);
}

/*
 * The same with a TLS server end, as a forwarder's upstream: the relay's
 * server bufferevent is a TLS client with the context options of
 * pinproxy's upstream contexts, and its peer is the origin, a child
 * process, so that only the relay's end counts here.
 */
static int
setup_tls(void **state)
{
	struct fixture	*f;
	SSL		*ssl;
	int		 c, s;

	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->base = event_base_new();
	tcp_pair(&f->app, &c);
	/* A slow origin's receive buffer is small from the start. */
	if (origin_slow)
		tcp_pair_sized(&f->origin, &s, 2048);
	else
		tcp_pair(&s, &f->origin);
	f->client = bufferevent_socket_new(f->base, c, BEV_OPT_CLOSE_ON_FREE);
	testpki_chain_make(&f->pki, "relay", "origin.test");
	assert_true((f->child = fork()) != -1);
	if (f->child == 0) {
		close(f->app);
		close(s);
		origin_run(&f->pki, f->origin);
	}
	close(f->origin);
	f->origin = -1;
	assert_non_null(f->server_ctx = SSL_CTX_new(TLS_client_method()));
	SSL_CTX_set_mode(f->server_ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Verified as pinproxy verifies an upstream: chain and name. */
	SSL_CTX_set_cert_store(f->server_ctx, testpki_store(f->pki.root, NULL));
	SSL_CTX_set_verify(f->server_ctx, SSL_VERIFY_PEER, NULL);
	assert_non_null(ssl = SSL_new(f->server_ctx));
	assert_int_equal(SSL_set1_host(ssl, "origin.test"), 1);
	f->server = bufferevent_openssl_socket_new(f->base, s, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(f->server);
	*state = f;
	return 0;
}

static int
setup_tls_half(void **state)
{
	origin_half = true;
	return setup_tls(state);
}

static int
setup_tls_slow(void **state)
{
	origin_slow = true;
	return setup_tls(state);
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	origin_half = false;
	origin_slow = false;
	relay_free(f->relay);
	if (f->client != NULL)
		bufferevent_free(f->client);
	if (f->server != NULL)
		bufferevent_free(f->server);
	SSL_CTX_free(f->server_ctx);
	if (f->pki.leaf != NULL)
		testpki_chain_free(&f->pki);
	if (f->child > 0 && waitpid(f->child, NULL, WNOHANG) == 0) {
		kill(f->child, SIGKILL);
		waitpid(f->child, NULL, 0);
	}
	close(f->app);
	if (f->origin != -1)
		close(f->origin);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void
done_cb(struct relay *r, const char *why, void *arg)
{
	struct fixture	*f = arg;

	f->why = why;
	f->outcome = relay_outcome(r);
	f->cut = relay_client_cut(r);
	relay_counts(r, &f->up, &f->down);
	event_base_loopbreak(f->base);
}

static void
start(struct fixture *f, uint64_t idle_ms)
{
	f->relay = relay_new(f->base, f->client, f->server, idle_ms,
	    done_cb, f);
	assert_non_null(f->relay);
}

static double
now(void)
{
	struct timeval	 tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec + tv.tv_usec / 1e6;
}

/*
 * Write out[0..outlen) into src while reading what arrives at dst into
 * in (up to inlen bytes), running the loop in between, until all of it
 * arrived or the deadline passes. Returns the bytes read.
 */
static size_t
transfer(struct fixture *f, int src, const unsigned char *out, size_t outlen,
    int dst, unsigned char *in, size_t inlen)
{
	size_t	 sent = 0, got = 0;
	ssize_t	 n;
	double	 end = now() + DEADLINE_SEC;

	while (got < inlen && now() < end && f->why == NULL) {
		if (sent < outlen) {
			n = send(src, out + sent, outlen - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
		}
		event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		n = recv(dst, in + got, inlen - got, 0);
		if (n > 0)
			got += (size_t)n;
	}
	return got;
}

/*
 * Run the loop until the relay ends or the deadline passes (at once when
 * it ended already, while the loop ran for something else).
 */
static void
run_until_end(struct fixture *f)
{
	struct timeval	 tv = { DEADLINE_SEC, 0 };

	if (f->why != NULL)
		return;
	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
}

/* Run the loop for ms milliseconds. */
static void
run_for(struct fixture *f, long ms)
{
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
}

/*
 * After the relay ended: what still reaches fd while the loop runs for
 * ms milliseconds (the relay sends nothing after its end, so a byte that
 * was to come has come by then).
 */
static ssize_t
recv_after_end(struct fixture *f, int fd, unsigned char *buf, size_t len,
    long ms)
{
	ssize_t	 n;

	assert_non_null(f->why);
	run_for(f, ms);
	n = recv(fd, buf, len, MSG_DONTWAIT);
	return n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : n;
}

/* How many of this process's descriptors are pipes. */
static int
pipe_count(void)
{
	DIR		*d;
	struct dirent	*e;
	struct stat	 st;
	char		 path[300];
	int		 n = 0;

	assert_non_null(d = opendir("/proc/self/fd"));
	while ((e = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
			n++;
	}
	closedir(d);
	return n;
}

static void
fill(unsigned char *p, size_t len, unsigned int seed)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)((i * 131 + seed) % 251);
}

static void
test_relay_sockets_sends_the_bytes_the_bufferevents_held_first(
    void **state)
{
	struct fixture	*f = *state;
	unsigned char	 buf[64];
	size_t		 n;

	/* Read by the bufferevents before the relay. */
	assert_int_equal(send(f->app, "hello ", 6, 0), 6);
	assert_int_equal(send(f->origin, "banner ", 7, 0), 7);
	bufferevent_enable(f->client, EV_READ);
	bufferevent_enable(f->server, EV_READ);
	while (evbuffer_get_length(bufferevent_get_input(f->client)) < 6 ||
	    evbuffer_get_length(bufferevent_get_input(f->server)) < 7)
		event_base_loop(f->base, EVLOOP_ONCE);
	/* Queued and not yet written (a 200 for the app). */
	bufferevent_disable(f->client, EV_WRITE);
	bufferevent_disable(f->server, EV_WRITE);
	bufferevent_write(f->server, "early ", 6);
	bufferevent_write(f->client, "200 ", 4);
	start(f, 60000);

	n = transfer(f, f->app, (const unsigned char *)"world", 5, f->origin,
	    buf, 17);
	assert_int_equal(n, 17);
	assert_memory_equal(buf, "early hello world", 17);
	n = transfer(f, f->origin, (const unsigned char *)"ok", 2, f->app,
	    buf, 13);
	assert_int_equal(n, 13);
	assert_memory_equal(buf, "200 banner ok", 13);
	assert_null(f->why);
	relay_counts(f->relay, &f->up, &f->down);
	/* Bytes read from each side count; bytes queued before do not. */
	assert_int_equal(f->up, 11);
	assert_int_equal(f->down, 9);
}

/* Free a bufferevent but keep its socket; the socket, or -1. */
static int
bev_shed(struct bufferevent **bev)
{
	int	 fd = bufferevent_getfd(*bev);

	bufferevent_setfd(*bev, -1);
	bufferevent_free(*bev);
	*bev = NULL;
	return fd;
}

static void
test_relay_sockets_runs_on_after_the_bufferevents_are_freed(void **state)
{
	struct fixture	*f = *state;
	unsigned char	 buf[16];
	int		 c, s;

	/* What they held goes first, as ever. */
	bufferevent_disable(f->server, EV_WRITE);
	bufferevent_write(f->server, "early ", 6);
	start(f, 60000);
	c = bev_shed(&f->client);
	s = bev_shed(&f->server);
	assert_int_equal(transfer(f, f->app, (const unsigned char *)"ping", 4,
	    f->origin, buf, 10), 10);
	assert_memory_equal(buf, "early ping", 10);
	assert_int_equal(transfer(f, f->origin, (const unsigned char *)"pong",
	    4, f->app, buf, 4), 4);
	assert_memory_equal(buf, "pong", 4);
	assert_int_equal(send(f->app, "bye", 3, 0), 3);
	assert_int_equal(shutdown(f->app, SHUT_WR), 0);
	assert_int_equal(shutdown(f->origin, SHUT_WR), 0);
	run_until_end(f);
	assert_non_null(f->why);
	assert_string_equal(f->why, "closed");
	assert_int_equal(f->up, 7);
	assert_int_equal(f->down, 4);
	relay_free(f->relay);
	f->relay = NULL;
	close(c);
	close(s);
}

static void
test_relay_sockets_moves_8_mib_each_way_intact_through_pipes(void **state)
{
	struct fixture	*f = *state;
	size_t		 len = 8 << 20;
	unsigned char	*out, *in;
	int		 pipes;

	out = malloc(len);
	in = malloc(len);
	assert_non_null(out);
	assert_non_null(in);
	pipes = pipe_count();
	start(f, 60000);

	fill(out, len, 7);
	assert_int_equal(transfer(f, f->app, out, len, f->origin, in, len),
	    len);
	assert_memory_equal(in, out, len);
	fill(out, len, 11);
	assert_int_equal(transfer(f, f->origin, out, len, f->app, in, len),
	    len);
	assert_memory_equal(in, out, len);
	relay_counts(f->relay, &f->up, &f->down);
	assert_int_equal(f->up, len);
	assert_int_equal(f->down, len);
	/* Bulk data went through one pipe each way... */
	assert_int_equal(pipe_count(), pipes + 4);
	/* ...which the relay closes. */
	relay_free(f->relay);
	f->relay = NULL;
	assert_int_equal(pipe_count(), pipes);
	free(out);
	free(in);
}

static void
test_relay_sockets_keeps_small_exchanges_off_pipes(void **state)
{
	struct fixture	*f = *state;
	unsigned char	 buf[512];
	int		 i, pipes;

	pipes = pipe_count();
	start(f, 60000);
	for (i = 0; i < 20; i++) {
		fill(buf, sizeof(buf), (unsigned int)i);
		assert_int_equal(transfer(f, f->app, buf, sizeof(buf),
		    f->origin, buf, sizeof(buf)), sizeof(buf));
		assert_int_equal(transfer(f, f->origin, buf, sizeof(buf),
		    f->app, buf, sizeof(buf)), sizeof(buf));
	}
	assert_int_equal(pipe_count(), pipes);
}

/* Read from fd until want bytes came, or its end (then *eof). */
static size_t
recv_upto(struct fixture *f, int fd, unsigned char *buf, size_t want,
    bool *eof)
{
	double		 end = now() + DEADLINE_SEC;
	ssize_t		 n;
	size_t		 got = 0;

	*eof = false;
	while (got < want && now() < end) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		n = recv(fd, buf + got, want - got, MSG_DONTWAIT);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0) {
			*eof = true;
			break;
		}
	}
	return got;
}

/*
 * A half-close: the side that shuts down its sending side gets its bytes
 * delivered and its end passed on (a FIN), and still gets what the other
 * side sends after that; the relay ends when the other side ends too.
 */
static void
test_relay_sockets_passes_a_half_close_on_and_runs_until_both_ended(
    void **state)
{
	struct fixture	*f = *state;
	unsigned char	 buf[16];
	bool		 eof;

	start(f, 60000);
	assert_int_equal(send(f->app, "bye", 3, 0), 3);
	assert_int_equal(shutdown(f->app, SHUT_WR), 0);
	/* The bytes, then the FIN, reach the origin. */
	assert_int_equal(recv_upto(f, f->origin, buf, 3, &eof), 3);
	assert_memory_equal(buf, "bye", 3);
	assert_int_equal(recv_upto(f, f->origin, buf, 1, &eof), 0);
	assert_true(eof);
	assert_null(f->why);
	/* The other way still runs. */
	assert_int_equal(send(f->origin, "late answer", 11, 0), 11);
	assert_int_equal(recv_upto(f, f->app, buf, 11, &eof), 11);
	assert_memory_equal(buf, "late answer", 11);
	assert_null(f->why);
	/* Both ended: so does the relay, and the app sees the end. */
	assert_int_equal(shutdown(f->origin, SHUT_WR), 0);
	run_until_end(f);
	assert_non_null(f->why);
	assert_string_equal(f->why, "closed");
	assert_int_equal(f->outcome, RELAY_CLOSED);
	assert_int_equal(f->up, 3);
	assert_int_equal(f->down, 11);
	assert_int_equal(recv_upto(f, f->app, buf, 1, &eof), 0);
	assert_true(eof);
}

/*
 * relay_guard_line(): a version completed on the client's first line ends
 * the relay before the bytes that completed it are written, also when
 * "HTTP/" is cut between reads; after empty lines too (servers skip
 * them).
 */
static void
test_relay_sockets_guard_refuses_a_version_on_the_first_line(void **state)
{
	static const char	 first[] = "\r\n0030git-x /a\1 HT";
	static const char	 rest[] = "tp/1.1\r\nHost: a\r\n";
	struct fixture		*f = *state;
	unsigned char		 buf[32];
	bool			 eof;

	assert_int_equal(send(f->app, first, sizeof(first) - 1, 0),
	    sizeof(first) - 1);
	start(f, 60000);
	relay_guard_line(f->relay);
	assert_int_equal(recv_upto(f, f->origin, buf, sizeof(first) - 1,
	    &eof), sizeof(first) - 1);
	assert_int_equal(send(f->app, rest, sizeof(rest) - 1, 0),
	    sizeof(rest) - 1);
	run_until_end(f);
	assert_int_equal(f->outcome, RELAY_REFUSED);
	assert_int_equal(recv_after_end(f, f->origin, buf, 1, 50), 0);
}

/* The same version held before the relay: refused before a byte goes. */
static void
test_relay_sockets_guard_refuses_what_was_held_before(void **state)
{
	static const char	 line[] = "G\1T / HTTP/1.1\r\n";
	struct fixture		*f = *state;
	unsigned char		 buf[8];

	assert_int_equal(send(f->app, line, sizeof(line) - 1, 0),
	    sizeof(line) - 1);
	bufferevent_enable(f->client, EV_READ);
	while (evbuffer_get_length(bufferevent_get_input(f->client)) <
	    sizeof(line) - 1)
		event_base_loop(f->base, EVLOOP_ONCE);
	start(f, 60000);
	relay_guard_line(f->relay);
	run_until_end(f);
	assert_int_equal(f->outcome, RELAY_REFUSED);
	assert_int_equal(recv_after_end(f, f->origin, buf, 1, 50), 0);
}

/*
 * Once the server answered what the client sent, it speaks the client's
 * protocol: the guard ends, and a version later is just data (a
 * PostgreSQL query naming one, say).
 */
static void
test_relay_sockets_guard_ends_when_the_server_answers(void **state)
{
	static const char	 first[] = "\0\0\0\x08startup";
	static const char	 later[] = "Q SELECT ' HTTP/1.1'\r\nHost: a\r\n";
	struct fixture		*f = *state;
	unsigned char		 buf[64];
	size_t			 n;

	start(f, 60000);
	relay_guard_line(f->relay);
	n = transfer(f, f->app, (const unsigned char *)first,
	    sizeof(first) - 1, f->origin, buf, sizeof(first) - 1);
	assert_int_equal(n, sizeof(first) - 1);
	n = transfer(f, f->origin, (const unsigned char *)"R", 1, f->app,
	    buf, 1);
	assert_int_equal(n, 1);
	n = transfer(f, f->app, (const unsigned char *)later,
	    sizeof(later) - 1, f->origin, buf, sizeof(later) - 1);
	assert_int_equal(n, sizeof(later) - 1);
	assert_memory_equal(buf, later, n);
	assert_null(f->why);
}

/* Nothing of the client's stream reached the origin (yet). */
static void
assert_origin_got_nothing(struct fixture *f)
{
	unsigned char	 buf[1];

	assert_int_equal(recv(f->origin, buf, sizeof(buf), MSG_DONTWAIT), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

/*
 * A start that may be a request line is held unwritten: a method and a
 * URL without their version yet go nowhere (a server could act on what
 * they name), and the version refuses the relay.
 */
static void
test_relay_sockets_guard_holds_a_request_line_start(void **state)
{
	static const char	 first[] = "POST http://a.test/login?pw=secret ";
	static const char	 rest[] = "HTTP/1.1\r\n";
	struct fixture		*f = *state;
	unsigned char		 buf[8];

	start(f, 60000);
	relay_guard_line(f->relay);
	assert_int_equal(send(f->app, first, sizeof(first) - 1, 0),
	    sizeof(first) - 1);
	run_for(f, 100);
	assert_origin_got_nothing(f);
	assert_int_equal(send(f->app, rest, sizeof(rest) - 1, 0),
	    sizeof(rest) - 1);
	run_until_end(f);
	assert_int_equal(f->outcome, RELAY_REFUSED);
	assert_int_equal(recv_after_end(f, f->origin, buf, 1, 50), 0);
	assert_int_equal(f->up, 0);
}

/* A held start whose line ends as no request is written whole. */
static void
test_relay_sockets_guard_writes_a_held_start_once_its_line_ends(
    void **state)
{
	static const char	 data[] = "EHLO a.test\r\n";
	struct fixture		*f = *state;
	unsigned char		 buf[32];
	bool			 eof;

	start(f, 60000);
	relay_guard_line(f->relay);
	assert_int_equal(send(f->app, data, 6, 0), 6);
	run_for(f, 100);
	assert_origin_got_nothing(f);
	assert_int_equal(send(f->app, data + 6, sizeof(data) - 7, 0),
	    sizeof(data) - 7);
	assert_int_equal(recv_upto(f, f->origin, buf, sizeof(data) - 1, &eof),
	    sizeof(data) - 1);
	assert_memory_equal(buf, data, sizeof(data) - 1);
	assert_null(f->why);
}

/* A first line that goes on past REQGUARD_LINE_MAX undecided: refused. */
static void
test_relay_sockets_guard_refuses_a_long_undecided_line(void **state)
{
	struct fixture		*f = *state;
	unsigned char		 line[REQGUARD_LINE_MAX], buf[8];

	memset(line, 'a', sizeof(line));
	memcpy(line, "POST /", 6);
	start(f, 60000);
	relay_guard_line(f->relay);
	assert_int_equal(send(f->app, line, sizeof(line), 0), sizeof(line));
	run_until_end(f);
	assert_int_equal(f->outcome, RELAY_REFUSED);
	assert_int_equal(recv_after_end(f, f->origin, buf, 1, 50), 0);
}

/* A WebSocket frame is no request line: written at once. */
static void
test_relay_sockets_guard_passes_a_websocket_frame_at_once(void **state)
{
	static const unsigned char frame[] = {
		0x81, 0x85, 1, 2, 3, 4, 'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4,
		'o' ^ 1 };
	struct fixture		*f = *state;
	unsigned char		 buf[16];
	size_t			 n;

	start(f, 60000);
	relay_guard_line(f->relay);
	n = transfer(f, f->app, frame, sizeof(frame), f->origin, buf,
	    sizeof(frame));
	assert_int_equal(n, sizeof(frame));
	assert_memory_equal(buf, frame, n);
}

/* Once the first line ended, "HTTP/" is just data. */
static void
test_relay_sockets_guard_ends_with_the_first_line(void **state)
{
	struct fixture	*f = *state;
	static const char	 data[] = "EHLO a\r\nHTTP/1.1 in a mail\r\n";
	unsigned char		 buf[64];
	size_t			 n;

	start(f, 60000);
	relay_guard_line(f->relay);
	n = transfer(f, f->app, (const unsigned char *)data, sizeof(data) - 1,
	    f->origin, buf, sizeof(data) - 1);
	assert_int_equal(n, sizeof(data) - 1);
	assert_memory_equal(buf, data, n);
	assert_null(f->why);
}

static void
test_relay_sockets_ends_after_idle_time_without_traffic(void **state)
{
	struct fixture	*f = *state;
	double		 t0;

	/* 300 ms: cut to 0 s or rounded to 1 s, it would end out of range. */
	start(f, 300);
	t0 = now();
	run_until_end(f);
	assert_non_null(f->why);
	assert_string_equal(f->why, "idle timeout");
	assert_int_equal(f->outcome, RELAY_IDLE);
	assert_true(now() - t0 >= 0.29);
	assert_true(now() - t0 < 0.9);
	/* The server's stream did not end: the client's was cut. */
	assert_false(relay_down_ended(f->relay));
	assert_true(f->cut);
}

/* A read of all the client has, from the loop (event_base_once()). */
static void
app_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture	*f = arg;
	char		 buf[65536];

	while (recv(f->app, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		continue;
}

/*
 * A client that reads less often than a quarter of the idle time but
 * more often than the idle time, with small buffers so that what the
 * relay has for it waits in the relay's socket: its first read (in the
 * first quarter after the relay's last read) and its second (after the
 * fourth quarter) are 780 ms apart, less than idle_timeout, so it is not
 * idle (the first read early in its quarter: the client's kernel may
 * delay its acknowledgement by 40 ms). Once it stops reading, the relay
 * ends a quarter past the idle time at most.
 */
static void
test_relay_sockets_slow_reader_is_not_idle(void **state)
{
	struct fixture	*f = *state;
	static char	 bulk[48000];
	struct timeval	 first = { 0, 100 * 1000 }, second = { 0, 880 * 1000 };
	int		 c, s, sndbuf = 8192;
	size_t		 sent = 0;
	ssize_t		 n;
	double		 t0;

	bufferevent_free(f->client);
	bufferevent_free(f->server);
	close(f->app);
	close(f->origin);
	tcp_pair_sized(&f->app, &c, 4096);
	assert_int_equal(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &sndbuf,
	    sizeof(sndbuf)), 0);
	tcp_pair(&s, &f->origin);
	f->client = bufferevent_socket_new(f->base, c, BEV_OPT_CLOSE_ON_FREE);
	f->server = bufferevent_socket_new(f->base, s, BEV_OPT_CLOSE_ON_FREE);
	memset(bulk, 'x', sizeof(bulk));
	while (sent < sizeof(bulk) &&
	    (n = send(f->origin, bulk + sent, sizeof(bulk) - sent, 0)) > 0)
		sent += (size_t)n;
	/* 800 ms: a look every 200 ms. */
	t0 = now();
	start(f, 800);
	event_base_once(f->base, -1, EV_TIMEOUT, app_read_cb, f, &first);
	event_base_once(f->base, -1, EV_TIMEOUT, app_read_cb, f, &second);
	run_for(f, 1100);
	assert_null(f->why);
	run_until_end(f);
	assert_non_null(f->why);
	assert_string_equal(f->why, "idle timeout");
	/* The last read at 880 ms: 800 ms on, at most a quarter more. */
	assert_true(now() - t0 >= 1.6);
	assert_true(now() - t0 < 2.6);
}

/*
 * The server ended its stream, and its end reached the client; the
 * client's side then stays silent until the idle timeout: the client has
 * all of the server's stream, and its connection need not be reset.
 */
static void
test_relay_sockets_idle_after_the_servers_end_is_no_cut(void **state)
{
	struct fixture	*f = *state;
	unsigned char	 buf[16];
	bool		 eof;

	start(f, 300);
	assert_int_equal(send(f->origin, "all of it", 9, 0), 9);
	assert_int_equal(shutdown(f->origin, SHUT_WR), 0);
	assert_int_equal(recv_upto(f, f->app, buf, 9, &eof), 9);
	assert_int_equal(recv_upto(f, f->app, buf, 1, &eof), 0);
	assert_true(eof);
	run_until_end(f);
	assert_int_equal(f->outcome, RELAY_IDLE);
	assert_true(relay_down_ended(f->relay));
	assert_false(f->cut);
}

static void
test_relay_sockets_reports_a_reset_by_the_server(void **state)
{
	struct fixture	*f = *state;
	struct linger	 lin = { 1, 0 };

	start(f, 60000);
	assert_int_equal(setsockopt(f->origin, SOL_SOCKET, SO_LINGER, &lin,
	    sizeof(lin)), 0);
	close(f->origin);
	f->origin = -1;
	run_until_end(f);
	assert_non_null(f->why);
	assert_string_equal(f->why, "server error");
	assert_int_equal(f->outcome, RELAY_SERVER_ERROR);
	/*
	 * A client without TLS could not tell a FIN from the end of a whole
	 * stream: it is reset (pinproxy(8)).
	 */
	assert_true(f->cut);
}

/*
 * A server that answers an upload early and resets: the client's next
 * bytes come first (its socket is ready first), and their write to the
 * server fails; the answer the server sent before its reset still
 * reaches the client.
 */
static void
test_relay_sockets_relays_an_early_answer_after_a_failed_write(
    void **state)
{
	struct fixture	*f = *state;
	struct linger	 lin = { 1, 0 };
	unsigned char	 buf[16];
	bool		 eof;

	start(f, 60000);
	run_for(f, 20);
	assert_int_equal(send(f->app, "more of the upload", 18, 0), 18);
	run_for(f, 20);
	assert_int_equal(send(f->app, "and more", 8, 0), 8);
	assert_int_equal(send(f->origin, "NO\n", 3, 0), 3);
	assert_int_equal(setsockopt(f->origin, SOL_SOCKET, SO_LINGER, &lin,
	    sizeof(lin)), 0);
	close(f->origin);
	f->origin = -1;
	assert_int_equal(recv_upto(f, f->app, buf, 3, &eof), 3);
	assert_memory_equal(buf, "NO\n", 3);
	/* Then the end, as the server's failure, not a clean end. */
	run_until_end(f);
	assert_int_equal(f->outcome, RELAY_SERVER_ERROR);
}

static void
test_relay_sockets_reports_a_reset_by_the_client(void **state)
{
	struct fixture	*f = *state;
	struct linger	 lin = { 1, 0 };

	start(f, 60000);
	assert_int_equal(setsockopt(f->app, SOL_SOCKET, SO_LINGER, &lin,
	    sizeof(lin)), 0);
	close(f->app);
	f->app = -1;
	run_until_end(f);
	assert_non_null(f->why);
	assert_string_equal(f->why, "client error");
	assert_int_equal(f->outcome, RELAY_CLIENT_ERROR);
	assert_true(f->cut);
}

/* Shake hands with the origin and read its tickets, as a tunnel does. */
static void
tls_ready(struct fixture *f)
{
	double	 end = now() + DEADLINE_SEC;

	relay_tune(f->server);
	bufferevent_setwatermark(f->server, EV_READ, 0, RELAY_HIGH_WATER);
	bufferevent_enable(f->server, EV_READ | EV_WRITE);
	while (big_event == 0 && now() < end)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_true(big_event > 0);
}

/* The origin ended (the loop runs meanwhile) and exited 0. */
static void
origin_exited_ok(struct fixture *f)
{
	double	 end = now() + DEADLINE_SEC;
	int	 status = -1;

	while (waitpid(f->child, &status, WNOHANG) == 0 && now() < end)
		run_for(f, 10);
	assert_true(now() < end);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	f->child = 0;
}

/* The origin's exchange: "ping" brings ORIGIN_BULK bytes, "again" "ok". */
static void
origin_ping(struct fixture *f)
{
	unsigned char	 out[ORIGIN_BULK], in[ORIGIN_BULK];

	fill(out, sizeof(out), 3);
	assert_int_equal(transfer(f, f->app, (const unsigned char *)"ping", 4,
	    f->app, in, sizeof(in)), sizeof(in));
	assert_memory_equal(in, out, sizeof(in));
}

static void
origin_again(struct fixture *f)
{
	unsigned char	 in[2];

	assert_int_equal(transfer(f, f->app, (const unsigned char *)"again",
	    5, f->app, in, 2), 2);
	assert_memory_equal(in, "ok", 2);
}

/*
 * The relay and the server end go; the origin read all it expected, sees
 * the close (libevent closes the socket from the loop) and exits 0.
 */
static void
origin_done(struct fixture *f)
{
	relay_free(f->relay);
	f->relay = NULL;
	bufferevent_free(f->server);
	f->server = NULL;
	origin_exited_ok(f);
}

/*
 * relay_push_whole() to a TLS upstream whose socket cannot take the
 * message at once: OpenSSL keeps part of a record, the rest goes to the
 * bufferevent's output, and the bufferevent's own write, retrying the
 * same bytes, delivers all of them intact once the origin reads.
 */
static void
test_relay_tls_whole_message_goes_on_when_the_socket_is_full(void **state)
{
	struct fixture	*f = *state;
	struct evbuffer	*msg;
	unsigned char	 bytes[SLOW_BYTES];
	int		 small = 4096;

	tls_ready(f);
	assert_int_equal(setsockopt(bufferevent_getfd(f->server), SOL_SOCKET,
	    SO_SNDBUF, &small, sizeof(small)), 0);
	fill(bytes, sizeof(bytes), 5);
	assert_non_null(msg = evbuffer_new());
	assert_int_equal(evbuffer_add(msg, bytes, sizeof(bytes)), 0);
	relay_push_whole(f->server, msg, sizeof(bytes));
	assert_int_equal(evbuffer_get_length(msg), 0);
	/* The socket took part of it: the rest waits in the output. */
	assert_true(evbuffer_get_length(bufferevent_get_output(f->server)) >
	    0);
	evbuffer_free(msg);
	bufferevent_free(f->client);
	f->client = NULL;
	run_for(f, SLOW_MS + 200);
	assert_int_equal(evbuffer_get_length(
	    bufferevent_get_output(f->server)), 0);
	bufferevent_free(f->server);
	f->server = NULL;
	origin_exited_ok(f);
}

static void
test_relay_tls_idle_holds_no_buffer(void **state)
{
	struct fixture	*f = *state;

	/*
	 * The handshake, then the origin's session tickets, read by the
	 * bufferevent as a tunnel's upstream is read while its client shakes
	 * hands: into space reserved for RELAY_IO_MAX bytes, which tickets
	 * leave empty. OpenSSL sets up its record buffers to take them.
	 */
	tls_ready(f);
	assert_int_equal(evbuffer_get_length(bufferevent_get_input(f->server)),
	    0);
	start(f, 60000);
	run_for(f, 50);
	assert_int_equal(big_event, 0);
	assert_int_equal(big_ssl, 0);

	/* Each direction ends its turn wanting to read: no buffer stays. */
	origin_ping(f);
	run_for(f, 50);
	assert_int_equal(big_ssl, 0);
	assert_int_equal(big_event, 0);

	/* The next read gets a buffer again. */
	origin_again(f);
	run_for(f, 50);
	assert_int_equal(big_ssl, 0);
	relay_counts(f->relay, &f->up, &f->down);
	assert_int_equal(f->up, 9);
	assert_int_equal(f->down, ORIGIN_BULK + 2);
	assert_null(f->why);
	origin_done(f);
}

/*
 * Once the verdict is in, the upstream's TLS connection gives back the
 * certificates it parsed (the intermediate with its key: kilobytes an
 * idle connection would otherwise hold); the peer's certificate stays,
 * and the relay runs on it to the end as before.
 */
static void
test_relay_tls_runs_after_the_chains_are_released(void **state)
{
	struct fixture	*f = *state;
	SSL		*ssl;
	long		 before;

	tls_ready(f);
	ssl = bufferevent_openssl_get_ssl(f->server);
	assert_int_equal(SSL_get_verify_result(ssl), X509_V_OK);
	assert_int_equal(sk_X509_num(SSL_get0_verified_chain(ssl)), 3);
	assert_int_equal(sk_X509_num(SSL_get_peer_cert_chain(ssl)), 2);
	before = ssl_live;
	tls_upstream_release_chains(ssl);
	assert_int_equal(sk_X509_num(SSL_get0_verified_chain(ssl)), 0);
	assert_int_equal(sk_X509_num(SSL_get_peer_cert_chain(ssl)), 0);
	assert_non_null(SSL_get0_peer_certificate(ssl));
	/* The intermediate, parsed with its P-256 key, is gone. */
	assert_true(before - ssl_live >= 1024);
	/* Again: nothing left to release, nothing freed twice. */
	before = ssl_live;
	tls_upstream_release_chains(ssl);
	assert_int_equal(ssl_live, before);

	start(f, 60000);
	origin_ping(f);
	origin_again(f);
	assert_null(f->why);
	origin_done(f);
}

/*
 * The upstream ends its TLS stream (close_notify) and keeps its socket:
 * the app gets the answer and the end (a FIN); the relay lives on for the
 * app's side, holding no TLS buffer meanwhile; the app's end reaches the
 * upstream as a close_notify, and the relay ends.
 */
static void
test_relay_tls_half_closed_holds_no_buffer(void **state)
{
	struct fixture	*f = *state;
	unsigned char	 in[8];
	bool		 eof;

	tls_ready(f);
	start(f, 60000);
	assert_int_equal(transfer(f, f->app, (const unsigned char *)"ping", 4,
	    f->app, in, 4), 4);
	assert_memory_equal(in, "pong", 4);
	assert_int_equal(recv_upto(f, f->app, in, 1, &eof), 0);
	assert_true(eof);
	run_for(f, 50);
	assert_null(f->why);
	assert_int_equal(big_ssl, 0);
	assert_int_equal(shutdown(f->app, SHUT_WR), 0);
	run_until_end(f);
	assert_non_null(f->why);
	assert_string_equal(f->why, "closed");
	origin_exited_ok(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_sends_the_bytes_the_bufferevents_held_first,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_runs_on_after_the_bufferevents_are_freed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_moves_8_mib_each_way_intact_through_pipes,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_keeps_small_exchanges_off_pipes,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_passes_a_half_close_on_and_runs_until_both_ended,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_guard_refuses_a_version_on_the_first_line,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_guard_refuses_what_was_held_before,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_guard_ends_with_the_first_line,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_guard_holds_a_request_line_start,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_guard_writes_a_held_start_once_its_line_ends,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_guard_refuses_a_long_undecided_line,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_guard_passes_a_websocket_frame_at_once,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_guard_ends_when_the_server_answers,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_ends_after_idle_time_without_traffic,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_slow_reader_is_not_idle,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_idle_after_the_servers_end_is_no_cut,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_reports_a_reset_by_the_server,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_relays_an_early_answer_after_a_failed_write,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_reports_a_reset_by_the_client,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_tls_idle_holds_no_buffer,
		    setup_tls, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_tls_runs_after_the_chains_are_released,
		    setup_tls, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_tls_half_closed_holds_no_buffer,
		    setup_tls_half, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_tls_whole_message_goes_on_when_the_socket_is_full,
		    setup_tls_slow, teardown),
	};

	/* Before either library allocates anything. */
	if (!CRYPTO_set_mem_functions(ssl_malloc, ssl_realloc, ssl_free)) {
		fprintf(stderr, "cannot count OpenSSL's allocations\n");
		return 1;
	}
	event_set_mem_functions(event_malloc, event_realloc,
	    event_free_block);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

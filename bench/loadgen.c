/*
 * A small HTTP/1.1 load client for the benchmark: one thread, epoll,
 * non-blocking sockets and OpenSSL. It speaks origin-form to a plain
 * server, absolute-form through a proxy, TLS straight to a server, or
 * CONNECT through a proxy followed by verified TLS, and prints one line of
 * key=value per run. Build: cc -O2 -o loadgen loadgen.c -lssl -lcrypto
 */

#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define HEAD_MAX	16384
#define OUT_MAX		2048
#define READ_CHUNK	65536
#define IDLE_INFLIGHT	64
#define MAX_ERRORS	10000
#define MAX_MESSAGES	5
#define NS		1000000000ULL

enum mode {
	MODE_PLAIN,
	MODE_ABSOLUTE,
	MODE_TLS,
	MODE_CONNECT
};

enum test {
	TEST_KEEPALIVE,
	TEST_NEWCONN,
	TEST_DOWNLOAD,
	TEST_IDLE
};

enum cstate {
	CS_TCP,
	CS_CONNECT_SEND,
	CS_CONNECT_RECV,
	CS_TLS,
	CS_REQ_SEND,
	CS_RESP_HEAD,
	CS_RESP_BODY,
	CS_IDLE
};

enum io_result {
	IO_AGAIN = -1,
	IO_ERROR = -2
};

static const char *const mode_names[] = {
	[MODE_PLAIN] = "plain",
	[MODE_ABSOLUTE] = "absolute",
	[MODE_TLS] = "tls",
	[MODE_CONNECT] = "connect",
};

static const char *const test_names[] = {
	[TEST_KEEPALIVE] = "keepalive",
	[TEST_NEWCONN] = "newconn",
	[TEST_DOWNLOAD] = "download",
	[TEST_IDLE] = "idle",
};

struct opts {
	enum mode		 mode;
	enum test		 test;
	struct sockaddr_storage	 server;
	socklen_t		 serverlen;
	const char		*server_text;
	const char		*host;
	const char		*target;
	const char		*sni;
	const char		*cafile;
	const char		*path;
	int			 conns;
	double			 duration;
	int			 idle;
	double			 hold;
	bool			 resume;
	int			 sources;
};

/* The buffers come last: conn_open() clears only what precedes them. */
struct conn {
	int		 fd;
	SSL		*ssl;
	enum cstate	 state;
	uint32_t	 events;
	size_t		 outlen;
	size_t		 outoff;
	size_t		 headlen;
	uint64_t	 body_left;
	uint64_t	 body_read;
	bool		 close_delimited;
	bool		 server_closes;
	uint64_t	 t_open;
	uint64_t	 t_req;
	unsigned	 requests;
	bool		 in_use;
	char		 out[OUT_MAX];
	char		 head[HEAD_MAX];
};

struct samples {
	uint32_t	*v;
	size_t		 n;
	size_t		 cap;
};

struct run {
	struct opts	 o;
	int		 epfd;
	SSL_CTX		*ctx;
	struct conn	*conns;
	int		 nconns;
	struct samples	 lat;
	uint64_t	 t_begin;
	uint64_t	 t_end;
	bool		 measuring;
	bool		 stopping;
	int		 warm;
	uint64_t	 done;
	uint64_t	 errors;
	uint64_t	 connections;
	uint64_t	 bytes;
	uint64_t	 download_ns;
	int		 idle_opened;
	int		 idle_ready;
	int		 idle_dropped;
	int		 messages;
	char		 req[OUT_MAX];
	size_t		 reqlen;
	unsigned	 next_source;
};

static volatile sig_atomic_t got_signal;

static void conn_open(struct run *, struct conn *);
static void conn_drive(struct run *, struct conn *);

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen MODE TEST -s ADDR:PORT [options]\n"
	    "  MODE  plain | absolute | tls | connect\n"
	    "  TEST  keepalive | newconn | download | idle\n"
	    "  -s ADDR:PORT  the server to dial (origin, or the proxy)\n"
	    "  -H HOST       Host header and URL host (default bench.test)\n"
	    "  -C HOST:PORT  CONNECT target (default HOST:443)\n"
	    "  -S NAME       SNI and verified name (default HOST)\n"
	    "  -A CAFILE     trust anchors for tls and connect\n"
	    "  -P PATH       request path (default /small, /big to download)\n"
	    "  -c N          connections (keepalive, newconn; default 8)\n"
	    "  -d SECONDS    duration (keepalive, newconn; default 5)\n"
	    "  -k K          idle connections to open and hold (default 1000)\n"
	    "  -w SECONDS    longest hold of the idle connections "
	    "(default 60)\n"
	    "  -R            resume TLS sessions (tls and connect): each new\n"
	    "                connection offers a ticket an earlier one got\n"
	    "  -b N          dial from N source addresses, 127.0.0.1 to\n"
	    "                127.0.0.N, in turn (a 127.0.0.0/8 server only;\n"
	    "                default 1): each has its own ephemeral ports\n");
	exit(2);
}

static void
die(const char *fmt, ...)
{
	va_list	ap;

	fputs("loadgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static void
on_signal(int sig)
{
	got_signal = sig;
}

/* Count one failure and show the first few, so a broken peer is obvious. */
static void
run_error(struct run *r, const char *fmt, ...)
{
	va_list	ap;

	r->errors++;
	if (r->messages++ >= MAX_MESSAGES)
		return;
	fputs("loadgen: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
samples_add(struct samples *s, uint64_t ns)
{
	uint64_t	us = ns / 1000;

	if (s->n == s->cap) {
		s->cap = s->cap == 0 ? 65536 : s->cap * 2;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (s->v == NULL)
			die("out of memory");
	}
	s->v[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The q-th percentile (0-100) of the sorted samples, in microseconds. */
static uint32_t
samples_pct(const struct samples *s, unsigned q)
{
	size_t	i;

	if (s->n == 0)
		return 0;
	i = s->n * q / 100;
	if (i >= s->n)
		i = s->n - 1;
	return s->v[i];
}

static void
parse_addr(struct opts *o, const char *text)
{
	struct addrinfo	 hints, *res;
	char		 host[256];
	const char	*colon, *port;
	size_t		 len;

	colon = strrchr(text, ':');
	if (colon == NULL)
		die("-s wants ADDR:PORT: %s", text);
	port = colon + 1;
	if (text[0] == '[') {
		if (colon == text || colon[-1] != ']')
			die("bad address: %s", text);
		text++;
		len = (size_t)(colon - text) - 1;
	} else
		len = (size_t)(colon - text);
	if (len >= sizeof(host))
		die("address too long");
	memcpy(host, text, len);
	host[len] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		die("-s wants a numeric ADDR:PORT: %s", o->server_text);
	memcpy(&o->server, res->ai_addr, res->ai_addrlen);
	o->serverlen = res->ai_addrlen;
	freeaddrinfo(res);
}

static double
parse_seconds(const char *s)
{
	char	*end;
	double	 v;

	v = strtod(s, &end);
	if (*end != '\0' || v <= 0)
		die("bad number of seconds: %s", s);
	return v;
}

static int
parse_count(const char *s)
{
	char	*end;
	long	 v;

	v = strtol(s, &end, 10);
	if (*end != '\0' || v < 1 || v > 1000000)
		die("bad count: %s", s);
	return (int)v;
}

static void
parse_args(struct opts *o, int argc, char **argv)
{
	static char	 target[300];
	size_t		 i;
	int		 ch;

	if (argc < 3)
		usage();
	memset(o, 0, sizeof(*o));
	o->mode = (enum mode)-1;
	for (i = 0; i < sizeof(mode_names) / sizeof(*mode_names); i++)
		if (strcmp(argv[1], mode_names[i]) == 0)
			o->mode = (enum mode)i;
	o->test = (enum test)-1;
	for (i = 0; i < sizeof(test_names) / sizeof(*test_names); i++)
		if (strcmp(argv[2], test_names[i]) == 0)
			o->test = (enum test)i;
	if ((int)o->mode < 0 || (int)o->test < 0)
		usage();
	o->host = "bench.test";
	o->conns = 8;
	o->duration = 5;
	o->idle = 1000;
	o->hold = 60;
	o->sources = 1;
	optind = 3;
	while ((ch = getopt(argc, argv, "s:H:C:S:A:P:c:d:k:w:Rb:")) != -1) {
		switch (ch) {
		case 's':
			o->server_text = optarg;
			break;
		case 'H':
			o->host = optarg;
			break;
		case 'C':
			o->target = optarg;
			break;
		case 'S':
			o->sni = optarg;
			break;
		case 'A':
			o->cafile = optarg;
			break;
		case 'P':
			o->path = optarg;
			break;
		case 'c':
			o->conns = parse_count(optarg);
			break;
		case 'd':
			o->duration = parse_seconds(optarg);
			break;
		case 'k':
			o->idle = parse_count(optarg);
			break;
		case 'R':
			o->resume = true;
			break;
		case 'w':
			o->hold = parse_seconds(optarg);
			break;
		case 'b':
			o->sources = parse_count(optarg);
			if (o->sources > 254)
				die("-b: at most 254 source addresses");
			break;
		default:
			usage();
		}
	}
	if (optind != argc || o->server_text == NULL)
		usage();
	parse_addr(o, o->server_text);
	if (o->sources > 1 && (o->server.ss_family != AF_INET ||
	    (ntohl(((struct sockaddr_in *)&o->server)->sin_addr.s_addr) >>
	    24) != 127))
		die("-b needs a server in 127.0.0.0/8");
	if (o->sni == NULL)
		o->sni = o->host;
	if (o->target == NULL) {
		snprintf(target, sizeof(target), "%s:443", o->host);
		o->target = target;
	}
	if (o->path == NULL)
		o->path = o->test == TEST_DOWNLOAD ? "/big" : "/small";
	if ((o->mode == MODE_TLS || o->mode == MODE_CONNECT) &&
	    o->cafile == NULL)
		die("TLS modes need -A CAFILE");
}

/* Session tickets for -R, newest first; the oldest go when it is full. */
#define STASH_MAX	256
static SSL_SESSION	*stash[STASH_MAX];
static int		 nstash;
static uint64_t		 resumed;

static int
stash_put(SSL *ssl, SSL_SESSION *sess)
{
	(void)ssl;
	if (nstash == STASH_MAX) {
		SSL_SESSION_free(stash[0]);
		memmove(stash, stash + 1, sizeof(stash[0]) * (STASH_MAX - 1));
		nstash--;
	}
	stash[nstash++] = sess;
	return 1;	/* the reference is ours */
}

static void
stash_offer(SSL *ssl)
{
	if (nstash == 0)
		return;
	SSL_set_session(ssl, stash[--nstash]);
	SSL_SESSION_free(stash[nstash]);
}

static SSL_CTX *
tls_context(const struct opts *o)
{
	static const unsigned char	 alpn[] = "\x08http/1.1";
	SSL_CTX				*ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		die("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (o->resume) {
		/* Tickets go to a stash; each is offered once. */
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
		    SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx, stash_put);
	} else {
		/* Every connection is a full handshake: what is measured. */
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	}
	if (SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1)
		die("cannot load %s", o->cafile);
	if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0)
		die("cannot set ALPN");
	return ctx;
}

static void
build_request(struct run *r)
{
	const struct opts	*o = &r->o;
	int			 n;

	if (o->mode == MODE_ABSOLUTE)
		n = snprintf(r->req, sizeof(r->req),
		    "GET http://%s%s HTTP/1.1\r\nHost: %s\r\n"
		    "User-Agent: pinproxy-bench\r\nAccept: */*\r\n\r\n",
		    o->host, o->path, o->host);
	else
		n = snprintf(r->req, sizeof(r->req),
		    "GET %s HTTP/1.1\r\nHost: %s\r\n"
		    "User-Agent: pinproxy-bench\r\nAccept: */*\r\n\r\n",
		    o->path, o->host);
	if (n < 0 || (size_t)n >= sizeof(r->req))
		die("request too long");
	r->reqlen = (size_t)n;
}

static void
conn_want(struct run *r, struct conn *c, uint32_t events)
{
	struct epoll_event	ev;

	if (c->events == events)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = c;
	if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
	c->events = events;
}

/* Tear a connection down; the slot can be reopened. */
static void
conn_close(struct run *r, struct conn *c)
{
	if (!c->in_use)
		return;
	if (c->ssl != NULL) {
		if (SSL_is_init_finished(c->ssl))
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->in_use = false;
}

static void
conn_fail(struct run *r, struct conn *c, const char *what)
{
	unsigned long	e;
	char		buf[256];

	e = ERR_peek_last_error();
	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		run_error(r, "%s (%s)", what, buf);
	} else if (c->ssl != NULL &&
	    SSL_get_verify_result(c->ssl) != X509_V_OK)
		run_error(r, "%s (verify: %s)", what,
		    X509_verify_cert_error_string(
		    SSL_get_verify_result(c->ssl)));
	else
		run_error(r, "%s", what);
	ERR_clear_error();
	conn_close(r, c);
}

/* Read from the socket or the TLS session: bytes, 0 at EOF, or IO_*. */
static ssize_t
conn_read(struct conn *c, void *buf, size_t len)
{
	ssize_t	n;
	int	rv, err;

	if (c->ssl == NULL) {
		n = read(c->fd, buf, len);
		if (n >= 0)
			return n;
		if (errno == EAGAIN || errno == EINTR)
			return IO_AGAIN;
		return IO_ERROR;
	}
	rv = SSL_read(c->ssl, buf, (int)len);
	if (rv > 0)
		return rv;
	err = SSL_get_error(c->ssl, rv);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return IO_AGAIN;
	if (err == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		return 0;
	return IO_ERROR;
}

static ssize_t
conn_write(struct conn *c, const void *buf, size_t len)
{
	ssize_t	n;
	int	rv, err;

	if (c->ssl == NULL) {
		n = write(c->fd, buf, len);
		if (n >= 0)
			return n;
		if (errno == EAGAIN || errno == EINTR)
			return IO_AGAIN;
		return IO_ERROR;
	}
	rv = SSL_write(c->ssl, buf, (int)len);
	if (rv > 0)
		return rv;
	err = SSL_get_error(c->ssl, rv);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return IO_AGAIN;
	return IO_ERROR;
}

/* The epoll interest after an IO_AGAIN in a TLS session or on a socket. */
static uint32_t
conn_again_events(struct conn *c, uint32_t plain)
{
	if (c->ssl != NULL && SSL_want_write(c->ssl))
		return EPOLLOUT;
	if (c->ssl != NULL && SSL_want_read(c->ssl))
		return EPOLLIN;
	return plain;
}

static void
conn_send_request(struct run *r, struct conn *c)
{
	memcpy(c->out, r->req, r->reqlen);
	c->outlen = r->reqlen;
	c->outoff = 0;
	c->headlen = 0;
	c->t_req = now_ns();
	c->state = CS_REQ_SEND;
}

/* The next step once the transport (TCP, tunnel, TLS) is ready. */
static void
conn_transport_ready(struct run *r, struct conn *c)
{
	int	n;

	if (r->o.mode == MODE_CONNECT && c->state == CS_TCP) {
		n = snprintf(c->out, sizeof(c->out),
		    "CONNECT %s HTTP/1.1\r\nHost: %s\r\n"
		    "User-Agent: pinproxy-bench\r\n\r\n",
		    r->o.target, r->o.target);
		c->outlen = (size_t)n;
		c->outoff = 0;
		c->headlen = 0;
		c->state = CS_CONNECT_SEND;
		return;
	}
	if ((r->o.mode == MODE_TLS || r->o.mode == MODE_CONNECT) &&
	    c->state != CS_TLS) {
		if ((c->ssl = SSL_new(r->ctx)) == NULL)
			die("SSL_new failed");
		SSL_set_fd(c->ssl, c->fd);
		SSL_set_tlsext_host_name(c->ssl, r->o.sni);
		if (SSL_set1_host(c->ssl, r->o.sni) != 1)
			die("SSL_set1_host failed");
		SSL_set_connect_state(c->ssl);
		if (r->o.resume)
			stash_offer(c->ssl);
		c->state = CS_TLS;
		return;
	}
	conn_send_request(r, c);
}

/* Parse a response or CONNECT answer head; false if it is unusable. */
static bool
parse_head(struct conn *c, size_t headlen, int *status)
{
	char	*line, *end, *p;
	bool	 http10, keepalive = false, chunked = false;
	bool	 have_len = false;

	c->head[headlen - 2] = '\0';
	if (strncmp(c->head, "HTTP/1.", 7) != 0 || strlen(c->head) < 12)
		return false;
	http10 = c->head[7] == '0';
	*status = atoi(c->head + 9);
	c->body_left = 0;
	c->close_delimited = false;
	line = strstr(c->head, "\r\n");
	while (line != NULL) {
		line += 2;
		end = strstr(line, "\r\n");
		if (end != NULL)
			*end = '\0';
		if ((p = strchr(line, ':')) != NULL) {
			*p++ = '\0';
			while (*p == ' ' || *p == '\t')
				p++;
			if (strcasecmp(line, "Content-Length") == 0) {
				c->body_left = strtoull(p, NULL, 10);
				have_len = true;
			} else if (strcasecmp(line, "Connection") == 0) {
				if (strcasestr(p, "close") != NULL)
					c->server_closes = true;
				if (strcasestr(p, "keep-alive") != NULL)
					keepalive = true;
			} else if (strcasecmp(line, "Transfer-Encoding") == 0 &&
			    strcasestr(p, "chunked") != NULL)
				chunked = true;
		}
		line = end;
	}
	if (chunked)
		return false;
	if (http10 && !keepalive)
		c->server_closes = true;
	if (!have_len && *status >= 200 && *status != 204 && *status != 304) {
		c->close_delimited = true;
		c->server_closes = true;
		c->body_left = UINT64_MAX;
	}
	return true;
}

/* Reopen the connection slot (keep-alive after a close, new-conn test). */
static void
conn_again(struct run *r, struct conn *c)
{
	conn_close(r, c);
	if (!r->stopping)
		conn_open(r, c);
}

/*
 * A whole response arrived: account for it and decide what comes next.
 * True when the same connection goes on at once with its next request.
 */
static bool
conn_response_done(struct run *r, struct conn *c, uint64_t t)
{
	c->requests++;
	switch (r->o.test) {
	case TEST_KEEPALIVE:
		if (r->measuring && c->t_req >= r->t_begin && t <= r->t_end) {
			r->done++;
			samples_add(&r->lat, t - c->t_req);
		}
		if (c->requests == 1)
			r->warm++;
		if (r->stopping) {
			conn_close(r, c);
			return false;
		}
		if (c->server_closes) {
			conn_again(r, c);
			return false;
		}
		conn_send_request(r, c);
		return true;
	case TEST_NEWCONN:
		if (t <= r->t_end) {
			r->done++;
			samples_add(&r->lat, t - c->t_open);
		}
		conn_again(r, c);
		return false;
	case TEST_DOWNLOAD:
		r->download_ns = t - c->t_req;
		r->bytes = c->body_read;
		r->done++;
		r->stopping = true;
		conn_close(r, c);
		return false;
	case TEST_IDLE:
		r->idle_ready++;
		c->state = CS_IDLE;
		conn_want(r, c, EPOLLIN);
		return false;
	}
	return false;
}

static void
conn_body(struct conn *c, size_t n)
{
	if (c->close_delimited)
		c->body_read += n;
	else {
		if (n > c->body_left)
			n = (size_t)c->body_left;
		c->body_left -= n;
		c->body_read += n;
	}
}

/* Advance a connection as far as it goes without blocking. */
static void
conn_drive(struct run *r, struct conn *c)
{
	static char	 scratch[READ_CHUNK];
	ssize_t		 n;
	char		*eoh;
	int		 rv, err, status, soerr;
	socklen_t	 slen;
	size_t		 hl, extra;

	for (;;) {
		if (!c->in_use)
			return;
		switch (c->state) {
		case CS_TCP:
			slen = sizeof(soerr);
			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr,
			    &slen) == -1 || soerr != 0) {
				run_error(r, "connect: %s", strerror(soerr));
				conn_close(r, c);
				return;
			}
			r->connections++;
			conn_transport_ready(r, c);
			break;
		case CS_CONNECT_SEND:
		case CS_REQ_SEND:
			n = conn_write(c, c->out + c->outoff,
			    c->outlen - c->outoff);
			if (n == IO_AGAIN) {
				conn_want(r, c, conn_again_events(c, EPOLLOUT));
				return;
			}
			if (n < 0) {
				conn_fail(r, c, "write failed");
				return;
			}
			c->outoff += (size_t)n;
			if (c->outoff < c->outlen)
				break;
			c->headlen = 0;
			c->state = c->state == CS_CONNECT_SEND ?
			    CS_CONNECT_RECV : CS_RESP_HEAD;
			break;
		case CS_CONNECT_RECV:
		case CS_RESP_HEAD:
			if (c->headlen >= sizeof(c->head) - 1) {
				conn_fail(r, c, "response head too large");
				return;
			}
			n = conn_read(c, c->head + c->headlen,
			    sizeof(c->head) - 1 - c->headlen);
			if (n == IO_AGAIN) {
				conn_want(r, c, conn_again_events(c, EPOLLIN));
				return;
			}
			if (n <= 0) {
				conn_fail(r, c, n == 0 ?
				    (c->state == CS_CONNECT_RECV ?
				    "proxy closed before answering CONNECT" :
				    "server closed before answering") :
				    "read failed");
				return;
			}
			c->headlen += (size_t)n;
			c->head[c->headlen] = '\0';
			if ((eoh = strstr(c->head, "\r\n\r\n")) == NULL)
				break;
			hl = (size_t)(eoh - c->head) + 4;
			extra = c->headlen - hl;
			if (!parse_head(c, hl, &status)) {
				conn_fail(r, c, "unusable response head");
				return;
			}
			if (c->state == CS_CONNECT_RECV) {
				if (status != 200 || extra != 0) {
					run_error(r, "CONNECT answered %d",
					    status);
					conn_close(r, c);
					return;
				}
				c->server_closes = false;
				conn_transport_ready(r, c);
				break;
			}
			if (status != 200) {
				run_error(r, "response status %d", status);
				conn_close(r, c);
				return;
			}
			c->body_read = 0;
			conn_body(c, extra);
			c->state = CS_RESP_BODY;
			if (!c->close_delimited && c->body_left == 0 &&
			    !conn_response_done(r, c, now_ns()))
				return;
			break;
		case CS_RESP_BODY:
			n = conn_read(c, scratch, sizeof(scratch));
			if (n == IO_AGAIN) {
				conn_want(r, c, conn_again_events(c, EPOLLIN));
				return;
			}
			if (n == 0 && c->close_delimited) {
				c->server_closes = true;
				if (!conn_response_done(r, c, now_ns()))
					return;
				break;
			}
			if (n <= 0) {
				conn_fail(r, c, "body cut short");
				return;
			}
			conn_body(c, (size_t)n);
			if (!c->close_delimited && c->body_left == 0 &&
			    !conn_response_done(r, c, now_ns()))
				return;
			break;
		case CS_TLS:
			ERR_clear_error();
			rv = SSL_connect(c->ssl);
			if (rv == 1) {
				if (SSL_session_reused(c->ssl))
					resumed++;
				conn_send_request(r, c);
				break;
			}
			err = SSL_get_error(c->ssl, rv);
			if (err == SSL_ERROR_WANT_READ) {
				conn_want(r, c, EPOLLIN);
				return;
			}
			if (err == SSL_ERROR_WANT_WRITE) {
				conn_want(r, c, EPOLLOUT);
				return;
			}
			conn_fail(r, c, "TLS handshake failed");
			return;
		case CS_IDLE:
			n = conn_read(c, scratch, sizeof(scratch));
			if (n == IO_AGAIN) {
				conn_want(r, c, conn_again_events(c, EPOLLIN));
				return;
			}
			r->idle_dropped++;
			conn_close(r, c);
			return;
		}
	}
}

/* Start a non-blocking TCP connection in slot c. */
static void
conn_open(struct run *r, struct conn *c)
{
	struct epoll_event	ev;
	int			one = 1;

	if (r->errors >= MAX_ERRORS) {
		r->stopping = true;
		return;
	}
	memset(c, 0, offsetof(struct conn, out));
	c->fd = socket(r->o.server.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		die("socket: %s", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/*
	 * Linux reuses a loopback port in TIME_WAIT for a new connection to
	 * the same server only a second or two after: with one source
	 * address, about 28,000 ephemeral ports cap new connections at
	 * about 14,000 a second. The port is still chosen at connect(2).
	 */
	if (r->o.sources > 1) {
		struct sockaddr_in	sin;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK +
		    r->next_source++ % (unsigned)r->o.sources);
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		    sizeof(one));
		if (bind(c->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
			die("bind: %s", strerror(errno));
	}
	c->in_use = true;
	c->state = CS_TCP;
	c->t_open = now_ns();
	c->events = EPOLLOUT;
	memset(&ev, 0, sizeof(ev));
	ev.events = c->events;
	ev.data.ptr = c;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, c->fd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&r->o.server,
	    r->o.serverlen) == -1 && errno != EINPROGRESS) {
		run_error(r, "connect: %s", strerror(errno));
		conn_close(r, c);
	}
}

/* Wait for events for at most ms milliseconds and drive what is ready. */
static void
run_poll(struct run *r, int ms)
{
	struct epoll_event	evs[256];
	int			n, i;

	n = epoll_wait(r->epfd, evs, 256, ms);
	if (n == -1) {
		if (errno == EINTR)
			return;
		die("epoll_wait: %s", strerror(errno));
	}
	for (i = 0; i < n; i++)
		conn_drive(r, evs[i].data.ptr);
}

static int
run_open_count(const struct run *r)
{
	int	i, n = 0;

	for (i = 0; i < r->nconns; i++)
		if (r->conns[i].in_use)
			n++;
	return n;
}

static void
run_close_all(struct run *r)
{
	int	i;

	for (i = 0; i < r->nconns; i++)
		conn_close(r, &r->conns[i]);
}

static void
run_alloc(struct run *r, int n)
{
	r->nconns = n;
	r->conns = calloc((size_t)n, sizeof(*r->conns));
	if (r->conns == NULL)
		die("out of memory");
}

static void
print_common(const struct run *r)
{
	struct rusage	ru;
	uint64_t	cpu_us = 0;

	/* The client's own CPU: with the origin's, the cost of the endpoints. */
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu_us = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) *
		    1000000 + (uint64_t)(ru.ru_utime.tv_usec +
		    ru.ru_stime.tv_usec);
	printf("mode=%s test=%s server=%s cpu_us=%" PRIu64,
	    mode_names[r->o.mode], test_names[r->o.test], r->o.server_text,
	    cpu_us);
}

/* Many keep-alive connections, one request in flight on each. */
static void
test_keepalive(struct run *r)
{
	uint64_t	t, deadline;
	double		secs;
	int		i;

	run_alloc(r, r->o.conns);
	for (i = 0; i < r->nconns; i++)
		conn_open(r, &r->conns[i]);
	deadline = now_ns() + 30 * NS;
	while (r->warm < r->nconns && now_ns() < deadline && !r->stopping &&
	    !got_signal) {
		for (i = 0; i < r->nconns; i++)
			if (!r->conns[i].in_use)
				conn_open(r, &r->conns[i]);
		run_poll(r, 50);
	}
	r->t_begin = now_ns();
	r->t_end = r->t_begin + (uint64_t)(r->o.duration * NS);
	r->measuring = true;
	while ((t = now_ns()) < r->t_end && !got_signal && !r->stopping) {
		for (i = 0; i < r->nconns; i++)
			if (!r->conns[i].in_use)
				conn_open(r, &r->conns[i]);
		run_poll(r, (int)((r->t_end - t) / 1000000) + 1);
	}
	r->stopping = true;
	secs = (double)(now_ns() - r->t_begin) / NS;
	run_close_all(r);
	qsort(r->lat.v, r->lat.n, sizeof(*r->lat.v), cmp_u32);
	print_common(r);
	printf(" conns=%d warm=%d secs=%.3f requests=%" PRIu64
	    " errors=%" PRIu64 " rate=%.1f p50_us=%u p99_us=%u\n",
	    r->nconns, r->warm, secs, r->done, r->errors,
	    (double)r->done / secs, samples_pct(&r->lat, 50),
	    samples_pct(&r->lat, 99));
}

/* New connection, one request, close; several such loops at once. */
static void
test_newconn(struct run *r)
{
	uint64_t	t;
	double		secs;
	int		i;

	run_alloc(r, r->o.conns);
	r->t_begin = now_ns();
	r->t_end = r->t_begin + (uint64_t)(r->o.duration * NS);
	r->measuring = true;
	for (i = 0; i < r->nconns; i++)
		conn_open(r, &r->conns[i]);
	while ((t = now_ns()) < r->t_end && !got_signal && !r->stopping) {
		for (i = 0; i < r->nconns; i++)
			if (!r->conns[i].in_use)
				conn_open(r, &r->conns[i]);
		run_poll(r, (int)((r->t_end - t) / 1000000) + 1);
	}
	r->stopping = true;
	secs = (double)(now_ns() - r->t_begin) / NS;
	run_close_all(r);
	qsort(r->lat.v, r->lat.n, sizeof(*r->lat.v), cmp_u32);
	print_common(r);
	printf(" conns=%d secs=%.3f connections=%" PRIu64 " errors=%" PRIu64
	    " rate=%.1f p50_us=%u p99_us=%u resumed=%" PRIu64 "\n",
	    r->nconns, secs, r->done, r->errors, (double)r->done / secs,
	    samples_pct(&r->lat, 50), samples_pct(&r->lat, 99), resumed);
}

/* One connection, one large response, timed from request to last byte. */
static void
test_download(struct run *r)
{
	uint64_t	deadline;
	double		secs;

	run_alloc(r, 1);
	conn_open(r, &r->conns[0]);
	deadline = now_ns() + 600 * NS;
	while (r->conns[0].in_use && !got_signal && now_ns() < deadline)
		run_poll(r, 100);
	run_close_all(r);
	secs = (double)r->download_ns / NS;
	print_common(r);
	printf(" path=%s bytes=%" PRIu64 " secs=%.3f mib_s=%.1f errors=%"
	    PRIu64 "\n", r->o.path, r->bytes, secs,
	    secs > 0 ? (double)r->bytes / 1048576.0 / secs : 0.0,
	    r->done == 1 ? r->errors : r->errors + 1);
}

/*
 * Open K connections, each with one completed request, and hold them
 * idle until a signal or the hold time; "ready" is printed once all are
 * open so that the caller can measure the server meanwhile.
 */
static void
test_idle(struct run *r)
{
	uint64_t	deadline, start;
	int		next = 0, i;

	run_alloc(r, r->o.idle);
	start = now_ns();
	deadline = start + 120 * NS;
	while (r->idle_ready + (int)r->errors < r->nconns && !got_signal &&
	    now_ns() < deadline) {
		while (next < r->nconns && next - r->idle_ready -
		    (int)r->errors < IDLE_INFLIGHT)
			conn_open(r, &r->conns[next++]);
		run_poll(r, 50);
	}
	print_common(r);
	printf(" ready=1 idle=%d open=%d errors=%" PRIu64 " secs=%.3f\n",
	    r->nconns, run_open_count(r), r->errors,
	    (double)(now_ns() - start) / NS);
	fflush(stdout);
	deadline = now_ns() + (uint64_t)(r->o.hold * NS);
	while (!got_signal && now_ns() < deadline)
		run_poll(r, 100);
	for (i = 0; i < r->nconns; i++)
		if (r->conns[i].in_use && r->conns[i].state != CS_IDLE)
			conn_close(r, &r->conns[i]);
	print_common(r);
	printf(" done=1 idle=%d open=%d dropped=%d\n", r->nconns,
	    run_open_count(r), r->idle_dropped);
	run_close_all(r);
}

int
main(int argc, char **argv)
{
	struct run		 r;
	struct rlimit		 rl;
	struct sigaction	 sa;

	memset(&r, 0, sizeof(r));
	parse_args(&r.o, argc, argv);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (r.o.mode == MODE_TLS || r.o.mode == MODE_CONNECT)
		r.ctx = tls_context(&r.o);
	if ((r.epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1: %s", strerror(errno));
	build_request(&r);
	switch (r.o.test) {
	case TEST_KEEPALIVE:
		test_keepalive(&r);
		break;
	case TEST_NEWCONN:
		test_newconn(&r);
		break;
	case TEST_DOWNLOAD:
		test_download(&r);
		break;
	case TEST_IDLE:
		test_idle(&r);
		break;
	}
	fflush(stdout);
	free(r.lat.v);
	free(r.conns);
	SSL_CTX_free(r.ctx);
	close(r.epfd);
	return r.errors > 0 && r.done == 0 && r.idle_ready == 0 ? 1 : 0;
}

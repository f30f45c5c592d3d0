/*
 * The metrics endpoint: a listener of its own on the stats_listen address
 * and a few short-lived connections, each reading one request head,
 * answering it with "Connection: close" and closing. Clients outside the
 * filter are closed at once, as is any connection beyond STATS_MAX_CONNS,
 * and every connection ends within STATS_TIMEOUT seconds: the endpoint
 * holds a fixed, small number of descriptors whoever connects to it.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "hostport.h"
#include "log.h"
#include "stats.h"
#include "xmalloc.h"

#define STATS_PATH		"/metrics"
#define STATS_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"
#define STATS_TEXT_TYPE		"text/plain; charset=utf-8"
/* How long accepting pauses when the process is out of descriptors. */
#define STATS_EMFILE_PAUSE	1

/* Where a stats connection stands. */
enum stats_conn_state {
	STATS_READING,		/* the request head */
	STATS_WRITING,		/* the answer, then our half is closed */
	STATS_DRAINING		/* what the client still sends, until EOF */
};

struct stats_conn {
	TAILQ_ENTRY(stats_conn)	 entry;
	struct stats		*s;
	struct bufferevent	*bev;		/* owns the socket */
	struct event		*deadline;	/* STATS_TIMEOUT */
	enum stats_conn_state	 state;
	size_t			 head_len;	/* head bytes read so far */
	bool			 have_line;	/* the request line is in */
	int			 minor;		/* the request's HTTP/1.x */
	char			*method;
	char			*target;
	unsigned long long	 content_length;
	bool			 bad;		/* a malformed head */
	bool			 eof;		/* the client sends no more */
};

struct stats {
	struct event_base	*base;
	struct evconnlistener	*lev;
	struct event		*resume_ev;	/* after EMFILE */
	struct metrics		*metrics;	/* borrowed */
	stats_refresh_cb	 refresh;
	void			*refresh_arg;
	stats_allow_cb		 allow;
	void			*allow_arg;
	TAILQ_HEAD(, stats_conn) conns;
	size_t			 nconns;
};

/* The single teardown of a stats connection. */
static void
stats_conn_free(struct stats_conn *sc)
{
	TAILQ_REMOVE(&sc->s->conns, sc, entry);
	sc->s->nconns--;
	bufferevent_free(sc->bev);
	event_free(sc->deadline);
	free(sc->method);
	free(sc->target);
	free(sc);
}

/* Queue an answer with the given body (NULL: none) and close after it. */
static void
stats_conn_reply(struct stats_conn *sc, int code, const char *reason,
    const char *type, struct evbuffer *body, bool head_only)
{
	struct evbuffer	*out = bufferevent_get_output(sc->bev);
	size_t		 len = body != NULL ? evbuffer_get_length(body) : 0;

	evbuffer_add_printf(out, "HTTP/1.%d %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "Connection: close\r\n"
	    "%s"
	    "\r\n", sc->minor, code, reason, type, len,
	    code == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (body != NULL && !head_only)
		evbuffer_add_buffer(out, body);
	sc->state = STATS_WRITING;
	bufferevent_enable(sc->bev, EV_WRITE);
}

/* Answer with a one-line plain text body. */
static void
stats_conn_reply_text(struct stats_conn *sc, int code, const char *reason,
    const char *text)
{
	struct evbuffer	*body;

	if ((body = evbuffer_new()) == NULL) {
		stats_conn_reply(sc, code, reason, STATS_TEXT_TYPE, NULL,
		    false);
		return;
	}
	evbuffer_add_printf(body, "%s\n", text);
	stats_conn_reply(sc, code, reason, STATS_TEXT_TYPE, body, false);
	evbuffer_free(body);
}

/* The head is complete: route it and answer. */
static void
stats_conn_answer(struct stats_conn *sc)
{
	struct stats	*s = sc->s;
	struct evbuffer	*body;
	size_t		 pathlen;
	bool		 head;

	if (sc->bad) {
		stats_conn_reply_text(sc, 400, "Bad Request",
		    "bad request");
		return;
	}
	if (sc->content_length > STATS_MAX_BODY) {
		stats_conn_reply_text(sc, 413, "Content Too Large",
		    "request body too large");
		return;
	}
	pathlen = strcspn(sc->target, "?");
	if (pathlen != strlen(STATS_PATH) ||
	    strncmp(sc->target, STATS_PATH, pathlen) != 0) {
		stats_conn_reply_text(sc, 404, "Not Found",
		    "not found: only " STATS_PATH " is served here");
		return;
	}
	head = strcmp(sc->method, "HEAD") == 0;
	if (!head && strcmp(sc->method, "GET") != 0) {
		stats_conn_reply_text(sc, 405, "Method Not Allowed",
		    "method not allowed: use GET");
		return;
	}
	if ((body = evbuffer_new()) == NULL) {
		stats_conn_reply_text(sc, 500, "Internal Server Error",
		    "out of memory");
		return;
	}
	if (s->refresh != NULL)
		s->refresh(s->metrics, s->refresh_arg);
	metrics_render(s->metrics, body);
	stats_conn_reply(sc, 200, "OK", STATS_CONTENT_TYPE, body, head);
	evbuffer_free(body);
}

/* "METHOD SP TARGET SP HTTP/1.x": false when it is not one. */
static bool
stats_conn_request_line(struct stats_conn *sc, const char *line)
{
	const char	*sp1, *sp2;

	if ((sp1 = strchr(line, ' ')) == NULL || sp1 == line ||
	    (sp2 = strchr(sp1 + 1, ' ')) == NULL || sp2 == sp1 + 1)
		return false;
	if (strcmp(sp2 + 1, "HTTP/1.1") == 0)
		sc->minor = 1;
	else if (strcmp(sp2 + 1, "HTTP/1.0") == 0)
		sc->minor = 0;
	else
		return false;
	sc->method = xstrndup(line, (size_t)(sp1 - line));
	sc->target = xstrndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
	return true;
}

/* One header line: only Content-Length matters here. */
static void
stats_conn_header(struct stats_conn *sc, const char *line)
{
	static const char	 name[] = "Content-Length:";
	const char		*v;
	char			*end;

	if (strncasecmp(line, name, sizeof(name) - 1) != 0)
		return;
	v = line + sizeof(name) - 1;
	v += strspn(v, " \t");
	errno = 0;
	sc->content_length = strtoull(v, &end, 10);
	if (end == v || errno != 0 || *end != '\0' || *v == '-')
		sc->bad = true;
}

/* Read head lines as they come; answer once the head is complete. */
static void
stats_conn_read_head(struct stats_conn *sc)
{
	struct evbuffer	*in = bufferevent_get_input(sc->bev);
	char		*line;
	size_t		 before, n;

	for (;;) {
		before = evbuffer_get_length(in);
		line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
		if (line == NULL)
			break;
		sc->head_len += before - evbuffer_get_length(in);
		if (sc->head_len > STATS_MAX_HEADERS) {
			free(line);
			break;
		}
		if (!sc->have_line) {
			sc->have_line = true;
			if (!stats_conn_request_line(sc, line)) {
				free(line);
				sc->minor = 1;
				stats_conn_reply_text(sc, 400, "Bad Request",
				    "bad request line");
				return;
			}
		} else if (n == 0) {
			free(line);
			stats_conn_answer(sc);
			return;
		} else
			stats_conn_header(sc, line);
		free(line);
	}
	if (sc->head_len + evbuffer_get_length(in) > STATS_MAX_HEADERS)
		stats_conn_reply_text(sc, 431,
		    "Request Header Fields Too Large",
		    "request head too large");
}

static void
stats_conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct stats_conn	*sc = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);

	if (sc->state == STATS_READING)
		stats_conn_read_head(sc);
	if (sc->state != STATS_READING)
		evbuffer_drain(in, evbuffer_get_length(in));
}

/*
 * The answer is out: close our half and read what the client still sends
 * until it closes, so that a request body in flight does not turn the
 * close into a reset that could destroy the answer.
 */
static void
stats_conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct stats_conn	*sc = arg;

	if (sc->state != STATS_WRITING ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	/* It shut down its side already: nothing is left to drain. */
	if (sc->eof) {
		stats_conn_free(sc);
		return;
	}
	sc->state = STATS_DRAINING;
	shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void
stats_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct stats_conn	*sc = arg;

	/*
	 * A client that shut down its side after its request (a half-close)
	 * still reads: the rest of the answer is written first.
	 */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    sc->state == STATS_WRITING &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		sc->eof = true;
		bufferevent_disable(bev, EV_READ);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		stats_conn_free(sc);
}

static void
stats_conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	stats_conn_free(arg);
}

/* Serve one admitted client (takes over fd). */
static void
stats_conn_new(struct stats *s, evutil_socket_t fd)
{
	struct stats_conn	*sc;
	struct timeval		 tv = { STATS_TIMEOUT, 0 };

	sc = xcalloc(1, sizeof(*sc));
	sc->s = s;
	sc->minor = 1;
	sc->state = STATS_READING;
	sc->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	sc->deadline = evtimer_new(s->base, stats_conn_deadline_cb, sc);
	if (sc->bev == NULL || sc->deadline == NULL) {
		if (sc->bev != NULL)
			bufferevent_free(sc->bev);
		else
			close(fd);
		if (sc->deadline != NULL)
			event_free(sc->deadline);
		free(sc);
		return;
	}
	TAILQ_INSERT_TAIL(&s->conns, sc, entry);
	s->nconns++;
	bufferevent_setcb(sc->bev, stats_conn_read_cb, stats_conn_write_cb,
	    stats_conn_event_cb, sc);
	bufferevent_enable(sc->bev, EV_READ);
	evtimer_add(sc->deadline, &tv);
}

/*
 * Room for one more connection: the oldest still reading its request
 * goes, so that clients that open connections and send nothing cannot
 * keep a scraper out. False when every connection is being answered.
 */
static bool
stats_make_room(struct stats *s)
{
	struct stats_conn	*sc;

	TAILQ_FOREACH(sc, &s->conns, entry) {
		if (sc->state == STATS_READING) {
			log_msg(EV_DEBUG, "stats: %d connections open; the "
			    "oldest still reading its request closed",
			    STATS_MAX_CONNS);
			stats_conn_free(sc);
			return true;
		}
	}
	return false;
}

/*
 * A new connection: refused clients are closed at once, and when
 * STATS_MAX_CONNS are open, the oldest still reading its request (or,
 * with every one being answered, the new one), so that none can hold a
 * descriptor, and accepting never pauses for them.
 */
static void
stats_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct stats	*s = arg;

	if (s->allow != NULL && !s->allow(sa, s->allow_arg)) {
		log_msg(EV_DEBUG, "stats: client refused by allow_clients");
		close(fd);
		return;
	}
	if (s->nconns >= STATS_MAX_CONNS && !stats_make_room(s)) {
		log_msg(EV_DEBUG, "stats: %d connections open, one more "
		    "closed", STATS_MAX_CONNS);
		close(fd);
		return;
	}
	stats_conn_new(s, fd);
}

static void
stats_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stats	*s = arg;

	if (s->lev != NULL)
		evconnlistener_enable(s->lev);
}

/* accept() failed: out of descriptors pauses a moment, never spins. */
static void
stats_accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct stats	*s = arg;
	struct timeval	 tv = { STATS_EMFILE_PAUSE, 0 };
	int		 err = EVUTIL_SOCKET_ERROR();

	log_msg(EV_DEBUG, "stats: accept: %s", strerror(err));
	if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM) {
		evconnlistener_disable(s->lev);
		evtimer_add(s->resume_ev, &tv);
	}
}

bool
stats_relisten(struct stats *s, const struct conf_addr *addr, char *err,
    size_t errlen)
{
	unsigned int	 flags;

	flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
	    LEV_OPT_REUSEABLE;
	if (addr->ss.ss_family == AF_INET6)
		flags |= LEV_OPT_BIND_IPV6ONLY;
	s->lev = evconnlistener_new_bind(s->base, stats_accept_cb, s, flags,
	    -1, (const struct sockaddr *)&addr->ss,
	    (int)addr->sslen);
	if (s->lev == NULL) {
		snprintf(err, errlen, "cannot listen on %s: %s", addr->text,
		    strerror(errno));
		return false;
	}
	evconnlistener_set_error_cb(s->lev, stats_accept_error_cb);
	return true;
}

void
stats_unlisten(struct stats *s)
{
	if (s->lev != NULL)
		evconnlistener_free(s->lev);
	s->lev = NULL;
}

struct stats *
stats_new(struct event_base *base, const struct conf_addr *addr,
    struct metrics *m, char *err, size_t errlen)
{
	struct stats	*s;
	int		 e;

	s = xcalloc(1, sizeof(*s));
	s->base = base;
	s->metrics = m;
	TAILQ_INIT(&s->conns);
	if (!stats_relisten(s, addr, err, errlen)) {
		e = errno;
		free(s);
		errno = e;
		return NULL;
	}
	s->resume_ev = evtimer_new(base, stats_resume_cb, s);
	return s;
}

void
stats_set_refresh(struct stats *s, stats_refresh_cb cb, void *arg)
{
	s->refresh = cb;
	s->refresh_arg = arg;
}

void
stats_set_allow(struct stats *s, stats_allow_cb cb, void *arg)
{
	s->allow = cb;
	s->allow_arg = arg;
}

uint16_t
stats_port(const struct stats *s)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);

	if (s->lev == NULL || getsockname(evconnlistener_get_fd(s->lev),
	    (struct sockaddr *)&ss, &len) == -1)
		return 0;
	return hostport_sockaddr_port((struct sockaddr *)&ss);
}

size_t
stats_nconns(const struct stats *s)
{
	return s->nconns;
}

void
stats_free(struct stats *s)
{
	if (s == NULL)
		return;
	while (!TAILQ_EMPTY(&s->conns))
		stats_conn_free(TAILQ_FIRST(&s->conns));
	stats_unlisten(s);
	if (s->resume_ev != NULL)
		event_free(s->resume_ev);
	free(s);
}

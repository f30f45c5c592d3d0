/*
 * The log's output (logsink.h). stderr is written through a descriptor
 * of its own that does not block: a pipe, a FIFO or a terminal is opened
 * again (/proc/self/fd/2) with O_NONBLOCK, which leaves the flags of the
 * description that others share alone; a socket (the journal's stream
 * under systemd) is sent to with MSG_DONTWAIT; a regular file is written
 * as it is, since a disk does not make a write wait for a reader. Syslog
 * lines go as datagrams to /dev/log, as syslog(3) sends them, but from a
 * non-blocking socket. Queued syslog lines keep their boundaries: each
 * is stored after its length.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "logsink.h"
#include "monotime.h"

#define LOGSINK_SYSLOG_PATH	"/dev/log"
/* A header ("<191>Dec  7 02:17:00 pinproxy[4194304]: ") and a line. */
#define LOGSINK_DGRAM_MAX	(64 + 4096)

enum logsink_how {
	LOGSINK_WRITE,		/* write(2), it never waits for long */
	LOGSINK_NONBLOCK,	/* write(2) on our own O_NONBLOCK description */
	LOGSINK_SEND,		/* send(2) with MSG_DONTWAIT: a socket */
	LOGSINK_POLL,		/* write(2) only when poll(2) says it may */
	LOGSINK_DGRAM		/* syslog: a datagram a line */
};

static struct {
	bool			 opened;
	bool			 syslog;
	enum logsink_how	 how;
	int			 fd;
	bool			 own;		/* fd is ours to close */
	struct event_base	*base;		/* attached to */
	struct evbuffer		*pending;
	struct event		*ev;		/* writable, while pending */
	unsigned long		 dropped;
	bool			 midline;	/* a line partly written */
	bool			 adding;	/* in event_add(): see queue */
	void			(*drained)(void);
} ls = { .fd = -1 };

/* What putting a line out came to. */
enum logsink_result {
	LOGSINK_SENT,
	LOGSINK_BLOCKED,	/* the output takes nothing more now */
	LOGSINK_FAILED		/* for good: the reader is gone */
};

static void	logsink_drain(void);
static ssize_t	logsink_put(const char *, size_t);
static void	logsink_writable_cb(evutil_socket_t, short, void *);

/* Connect the syslog socket (again, after syslogd restarted). */
static bool
logsink_syslog_connect(void)
{
	struct sockaddr_un	 sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, LOGSINK_SYSLOG_PATH, sizeof(LOGSINK_SYSLOG_PATH));
	return connect(ls.fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
}

/* Set up the output for stderr. */
static void
logsink_stderr(void)
{
	struct stat	 st;
	int		 fd;

	ls.fd = STDERR_FILENO;
	ls.own = false;
	ls.how = LOGSINK_WRITE;
	if (fstat(STDERR_FILENO, &st) == -1 || S_ISREG(st.st_mode))
		return;
	if (S_ISSOCK(st.st_mode)) {
		ls.how = LOGSINK_SEND;
		return;
	}
	fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC |
	    O_NOCTTY);
	if (fd == -1) {
		ls.how = LOGSINK_POLL;
		return;
	}
	ls.fd = fd;
	ls.own = true;
	ls.how = LOGSINK_NONBLOCK;
}

/* Drop what is queued, counting its lines. */
static void
logsink_drop_pending(void)
{
	struct evbuffer_ptr	 at;
	uint16_t		 n;

	if (ls.how == LOGSINK_DGRAM) {
		while (evbuffer_copyout(ls.pending, &n, sizeof(n)) ==
		    sizeof(n)) {
			evbuffer_drain(ls.pending, sizeof(n) + n);
			ls.dropped++;
		}
		return;
	}
	/* A line partly written counts as dropped too. */
	evbuffer_ptr_set(ls.pending, &at, 0, EVBUFFER_PTR_SET);
	while ((at = evbuffer_search(ls.pending, "\n", 1, &at)).pos != -1) {
		ls.dropped++;
		if (evbuffer_ptr_set(ls.pending, &at, 1, EVBUFFER_PTR_ADD) == -1)
			break;
	}
	evbuffer_drain(ls.pending, evbuffer_get_length(ls.pending));
}

/* (Re)make the event that drains the queue, for the current output. */
static void
logsink_event(void)
{
	if (ls.ev != NULL) {
		event_free(ls.ev);
		ls.ev = NULL;
	}
	if (ls.base != NULL && ls.fd != -1)
		ls.ev = event_new(ls.base, ls.fd, EV_WRITE | EV_PERSIST,
		    logsink_writable_cb, NULL);
}

/*
 * Drop what is queued for good; a line begun on a stream is ended, as
 * far as the output takes it now, so that no later line is glued to it.
 */
static void
logsink_give_up(void)
{
	if (ls.pending != NULL)
		logsink_drop_pending();
	if (ls.midline && ls.fd != -1 && ls.how != LOGSINK_DGRAM)
		(void)logsink_put("\n", 1);
	ls.midline = false;
}

/* Close the output: what it does not take now is dropped. */
static void
logsink_close(void)
{
	if (ls.pending != NULL && evbuffer_get_length(ls.pending) > 0) {
		logsink_drain();
		logsink_give_up();
	}
	if (ls.ev != NULL)
		event_del(ls.ev);
	if (ls.own)
		close(ls.fd);
	ls.fd = -1;
	ls.own = false;
}

void
logsink_open(bool syslog)
{
	if (ls.opened && ls.syslog == syslog)
		return;
	logsink_close();
	ls.opened = true;
	ls.syslog = syslog;
	if (!syslog)
		logsink_stderr();
	else {
		ls.how = LOGSINK_DGRAM;
		ls.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		ls.own = ls.fd != -1;
		if (ls.fd != -1)
			(void)logsink_syslog_connect();
	}
	logsink_event();
}

/*
 * Try to put len bytes out once, without waiting: the bytes taken, or
 * -1 with errno (EAGAIN when the reader is behind).
 */
static ssize_t
logsink_put(const char *p, size_t len)
{
	struct pollfd	 pfd;
	ssize_t		 n;

	switch (ls.how) {
	case LOGSINK_SEND:
		return send(ls.fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	case LOGSINK_DGRAM:
		n = send(ls.fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == -1 && (errno == ENOTCONN || errno == ECONNREFUSED ||
		    errno == ENOENT) && logsink_syslog_connect())
			n = send(ls.fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		return n;
	case LOGSINK_POLL:
		pfd.fd = ls.fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, 0) == 0) {
			errno = EAGAIN;
			return -1;
		}
		return write(ls.fd, p, len);
	default:
		return write(ls.fd, p, len);
	}
}

/* Wait until the output may take more, at most ms (-1: no limit). */
static bool
logsink_wait(int ms)
{
	struct pollfd	 pfd;

	pfd.fd = ls.fd;
	pfd.events = POLLOUT;
	return poll(&pfd, 1, ms) > 0;
}

/*
 * Put a whole line (a datagram, or bytes of a stream) out now; when it
 * is blocked, *done bytes of a stream went. Waits when wait is set.
 */
static enum logsink_result
logsink_put_all(const char *p, size_t len, size_t *done, bool wait)
{
	ssize_t	 n;

	*done = 0;
	while (*done < len) {
		n = logsink_put(p + *done, len - *done);
		if (n > 0) {
			if (ls.how == LOGSINK_DGRAM)
				return LOGSINK_SENT;
			*done += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == ENOBUFS)) {
			if (wait && logsink_wait(-1))
				continue;
			return LOGSINK_BLOCKED;
		}
		return LOGSINK_FAILED;
	}
	return LOGSINK_SENT;
}

/* Queue what could not go; false when there is no room (dropped). */
static bool
logsink_queue(const char *p, size_t len)
{
	uint16_t	 n = (uint16_t)len;
	size_t		 need = len + (ls.how == LOGSINK_DGRAM ? sizeof(n) : 0);

	if (evbuffer_get_length(ls.pending) + need > LOGSINK_PENDING_MAX) {
		ls.dropped++;
		return false;
	}
	if (ls.how == LOGSINK_DGRAM)
		evbuffer_add(ls.pending, &n, sizeof(n));
	evbuffer_add(ls.pending, p, len);
	/*
	 * libevent logs through us: a failing event_add() would log, queue
	 * and add again, without end.
	 */
	if (!ls.adding) {
		ls.adding = true;
		event_add(ls.ev, NULL);
		ls.adding = false;
	}
	return true;
}

/* Write what is queued, as far as the output takes it now. */
static void
logsink_drain(void)
{
	struct evbuffer_iovec	 v;
	unsigned char		 dgram[LOGSINK_DGRAM_MAX];
	uint16_t		 n;
	size_t			 done;

	enum logsink_result	 r;

	while (evbuffer_get_length(ls.pending) > 0) {
		if (ls.how == LOGSINK_DGRAM) {
			evbuffer_copyout(ls.pending, &n, sizeof(n));
			evbuffer_copyout(ls.pending, dgram, sizeof(n) + n);
			r = logsink_put_all((char *)dgram + sizeof(n), n,
			    &done, false);
			if (r == LOGSINK_BLOCKED)
				break;
			evbuffer_drain(ls.pending, sizeof(n) + n);
			if (r == LOGSINK_FAILED)
				ls.dropped++;
			continue;
		}
		if (evbuffer_peek(ls.pending, -1, NULL, &v, 1) < 1)
			break;
		r = logsink_put_all(v.iov_base, v.iov_len, &done, false);
		if (r == LOGSINK_SENT) {
			evbuffer_drain(ls.pending, v.iov_len);
			continue;
		}
		evbuffer_drain(ls.pending, done);
		if (r == LOGSINK_FAILED) {
			/* Its reader is gone: all queued is lost, counted. */
			logsink_drop_pending();
			ls.midline = false;
		} else if (done > 0)
			ls.midline = true;
		break;
	}
	if (evbuffer_get_length(ls.pending) == 0) {
		ls.midline = false;
		if (ls.ev != NULL)
			event_del(ls.ev);
	}
}

/* The drained callback reports drops, if any, once the queue is empty. */
static void
logsink_writable_cb(evutil_socket_t fd, short what, void *arg)
{
	logsink_drain();
	if (ls.drained != NULL)
		ls.drained();
}

void
logsink_on_drained(void (*cb)(void))
{
	ls.drained = cb;
}

bool
logsink_write(int prio, const char *line, size_t len)
{
	char		 buf[LOGSINK_DGRAM_MAX];
	char		 stamp[32];
	struct tm	 tm;
	time_t		 now;
	size_t		 n, done;
	int		 h;

	if (!ls.opened)
		logsink_open(false);
	if (ls.fd == -1)
		return false;
	if (len > sizeof(buf) - 64)
		len = sizeof(buf) - 64;
	if (ls.how == LOGSINK_DGRAM) {
		now = time(NULL);
		localtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
		h = snprintf(buf, sizeof(buf), "<%d>%s pinproxy[%ld]: ",
		    LOG_DAEMON | prio, stamp, (long)getpid());
		n = (size_t)h;
	} else
		n = 0;
	memcpy(buf + n, line, len);
	n += len;
	if (ls.how != LOGSINK_DGRAM)
		buf[n++] = '\n';
	/* Behind lines already queued, in their order. */
	if (ls.pending != NULL && evbuffer_get_length(ls.pending) > 0)
		return logsink_queue(buf, n);
	switch (logsink_put_all(buf, n, &done, ls.pending == NULL)) {
	case LOGSINK_SENT:
		return true;
	case LOGSINK_FAILED:
		ls.dropped++;
		return false;
	default:
		break;
	}
	if (ls.pending == NULL) {
		ls.dropped++;
		return false;
	}
	if (done > 0)
		ls.midline = true;
	return logsink_queue(buf + done, n - done);
}

void
logsink_attach(struct event_base *base)
{
	if (!ls.opened)
		logsink_open(false);
	if (ls.pending == NULL)
		ls.pending = evbuffer_new();
	ls.base = base;
	logsink_event();
}

void
logsink_detach(void)
{
	uint64_t	 until = monotime_us() / 1000 + LOGSINK_EXIT_MS;
	uint64_t	 now;

	if (ls.pending == NULL)
		return;
	ls.base = NULL;
	logsink_event();
	while (evbuffer_get_length(ls.pending) > 0 && ls.fd != -1 &&
	    (now = monotime_us() / 1000) < until &&
	    logsink_wait((int)(until - now)))
		logsink_drain();
	logsink_give_up();
	evbuffer_free(ls.pending);
	ls.pending = NULL;
}

unsigned long
logsink_take_dropped(void)
{
	unsigned long	 n;

	if (ls.pending != NULL && evbuffer_get_length(ls.pending) > 0)
		return 0;
	n = ls.dropped;
	ls.dropped = 0;
	return n;
}

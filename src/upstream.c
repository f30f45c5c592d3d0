/*
 * Upstream connections, step by step: resolve, TCP connect (every
 * address in turn, a new one beside those still opening every 250 ms),
 * then TLS with verification and the pin verdict. Each failure
 * is logged here, where host, port and client are known, and reported to
 * the caller once.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/bufferevent_ssl.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <errno.h>
#include <limits.h>
#include <ifaddrs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deny.h"
#include "dialring.h"
#include "hostmatch.h"
#include "hostport.h"
#include "linger.h"
#include "log.h"
#include "metrics.h"
#include "monotime.h"
#include "relay.h"
#include "observe.h"
#include "report.h"
#include "throttle.h"
#include "upstream.h"
#include "xmalloc.h"

enum upstream_state {
	UPSTREAM_RESOLVING,
	UPSTREAM_CONNECTING,
	UPSTREAM_CONNECTED,	/* TCP up, no bufferevent yet */
	UPSTREAM_HANDSHAKING,
	UPSTREAM_READY,
	UPSTREAM_FAILED
};

/* TCP connections opened at once for one upstream, and their stagger. */
#define UPSTREAM_ATTEMPTS	4
#define UPSTREAM_STAGGER_MS	250

struct upstream {
	enum upstream_state		 state;
	struct event_base		*base;
	struct evdns_base		*dns;
	struct runconf			*rc;		/* reference */
	const struct pinset		*ps;		/* borrowed from rc */
	bool				 by_address;	/* see upstream_retarget */
	char				 host[HOSTMATCH_NAME_MAX];
	uint16_t			 port;
	char				 client[CONF_ADDR_TEXT_MAX];
	bool				 tls;
	struct upstream_sinks		*sinks;		/* borrowed */
	const struct conf_addr		*self;		/* borrowed */
	size_t				 nself;
	bool				 self_forwarders;

	upstream_cb			 cb;
	void				*arg;

	struct event			*kick;		/* starts resolution */
	struct event			*timer;		/* connect_timeout */
	struct timeval			 deadline;
	struct evdns_getaddrinfo_request *dns_req;
	bool				 in_resolve_call;
	bool				 looped;	/* an address was ours */
	/* A resolved address a pin set other than the name's covers. */
	const struct pinset		*addr_ps;
	char				 addr_pinned[INET6_ADDRSTRLEN];
	int				 resolve_result;
	struct evutil_addrinfo		*addrs;
	struct evutil_addrinfo		*next_addr;
	struct sockaddr_storage		 one_addr;	/* IP literal, connect_to */
	socklen_t			 one_addrlen;

	/*
	 * TCP connections being opened: a new one each UPSTREAM_STAGGER_MS
	 * while addresses are left, at most UPSTREAM_ATTEMPTS at once (the
	 * oldest is given up for a new one); the first to connect is the
	 * upstream's, and the others are closed (RFC 8305's connection
	 * attempt delay: an address that drops packets costs that delay,
	 * not the whole connect_timeout).
	 */
	struct upstream_attempt {
		struct upstream		*u;
		int			 fd;	/* -1: a free slot */
		struct event		*ev;
		unsigned int		 seq;	/* the oldest is given up */
		struct sockaddr_storage	 sa;	/* the address dialled */
		socklen_t		 salen;
	}				 att[UPSTREAM_ATTEMPTS];
	size_t				 natt;
	unsigned int			 att_seq;
	struct event			*stagger;	/* the next attempt */
	int				 fd;		/* connected */
	struct sockaddr_storage		 peer;		/* fd's; see */
	socklen_t			 peerlen;	/* upstream_peer_text */
	int				 last_errno;

	/*
	 * The upstream owns its socket and TLS connection; the bufferevent
	 * only borrows them, and goes once a relay runs on them.
	 */
	struct bufferevent		*bev;
	SSL				*ssl;
	/* Why sending the hello at once failed: the handshake then fails. */
	unsigned long			 hello_error;
	int				 hello_errno;
	/*
	 * A hello made ahead (upstream_prepare_tls()): its TLS connection,
	 * its bufferevent (made while the connection was new, idle until
	 * used), the name, pin set and offer it is for, and the hello, held
	 * in memory.
	 */
	struct upstream_ahead {
		SSL			*ssl;		/* NULL: none */
		struct bufferevent	*bev;
		char			 host[HOSTMATCH_NAME_MAX];
		const struct pinset	*ps;
		bool			 by_address;
		unsigned char		 alpn[UPSTREAM_AHEAD_ALPN_MAX];
		size_t			 alpnlen;
	}				 ahead;
	struct pincheck_result		 pins;
	char				 reason[256];
	TAILQ_ENTRY(upstream)		 alone_entry;	/* released */
};

struct upstream_alone {
	TAILQ_HEAD(, upstream)	 list;
	size_t			 n;
	size_t			 max;
	bool			 closed;	/* stopping: free at once */
	unsigned long		 abandoned;	/* since the last line */
	long long		 warned_us;	/* that line, monotime_us() */
};

/* At most one check_abandoned line in this many seconds. */
#define UPSTREAM_ABANDONED_LOG_SECONDS	60

/* Not an evutil_getaddrinfo result: no answer has come yet. */
#define UPSTREAM_NO_ANSWER	1

static void	upstream_try_next(struct upstream *);
static void	upstream_attempts_end(struct upstream *);

/* Stop the clock, record the outcome and tell the caller (last thing). */
static void
upstream_finish(struct upstream *u, enum upstream_status st)
{
	evtimer_del(u->timer);
	if (st != UPSTREAM_OK) {
		/* Nothing of a failed dial may call back later. */
		upstream_attempts_end(u);
		u->state = UPSTREAM_FAILED;
		if (u->bev != NULL) {
			bufferevent_setcb(u->bev, NULL, NULL, NULL, NULL);
			bufferevent_disable(u->bev, EV_READ | EV_WRITE);
		}
	}
	u->cb(u, st, u->arg);
}

static const struct upstream_outcome upstream_outcomes[UPSTREAM__COUNT] = {
	[UPSTREAM_OK] =
	    { HTTP_ERROR__COUNT, METRIC__COUNT, false, false },
	[UPSTREAM_DNS_FAILED] =
	    { HTTP_ERROR_DNS_FAILED, METRIC_UPSTREAM_ERRORS_DNS, false, false },
	[UPSTREAM_CONNECT_FAILED] =
	    { HTTP_ERROR_CONNECT_FAILED, METRIC_UPSTREAM_ERRORS_CONNECT, false,
	    false },
	[UPSTREAM_TIMEOUT] =
	    { HTTP_ERROR_TIMEOUT, METRIC_UPSTREAM_ERRORS_TIMEOUT, false, false },
	[UPSTREAM_TLS_FAILED] =
	    { HTTP_ERROR_TLS_FAILED, METRIC_UPSTREAM_ERRORS_TLS, false, false },
	[UPSTREAM_VERIFY_FAILED] =
	    { HTTP_ERROR_VERIFY_FAILED, METRIC__COUNT, true, false },
	[UPSTREAM_PIN_MISMATCH] =
	    { HTTP_ERROR_PIN_MISMATCH, METRIC__COUNT, true, false },
	[UPSTREAM_PIN_DENIED] =
	    { HTTP_ERROR_PIN_DENIED, METRIC__COUNT, true, false },
	[UPSTREAM_LOOP] =
	    { HTTP_ERROR_LOOP, METRIC__COUNT, false, true },
	[UPSTREAM_ADDR_PINNED] =
	    { HTTP_ERROR_ADDR_PINNED, METRIC__COUNT, false, true },
};

const struct upstream_outcome *
upstream_outcome(enum upstream_status st)
{
	return &upstream_outcomes[st];
}

/*
 * Log and report a failure that is not about certificates: an
 * upstream_error, or a refusal by policy, blocked, whose reason starts
 * with its details code ("loop: ", "address-pinned: ").
 */
static void
upstream_fail(struct upstream *u, enum upstream_status st, const char *fmt,
    ...)
{
	const struct upstream_outcome	*o = &upstream_outcomes[st];
	struct logline			 l;
	va_list				 ap;
	char				 why[sizeof(u->reason) + 32];

	va_start(ap, fmt);
	vsnprintf(u->reason, sizeof(u->reason), fmt, ap);
	va_end(ap);
	if (o->policy) {
		snprintf(why, sizeof(why), "%s: %s",
		    http_error_details(o->error), u->reason);
		log_blocked(u->host, u->client, why);
	} else {
		log_begin(&l, EV_UPSTREAM_ERROR);
		log_str(&l, LK_HOST, u->host);
		log_int(&l, LK_PORT, u->port);
		log_str(&l, LK_CLIENT, u->client);
		log_str(&l, LK_ERROR, http_error_details(o->error));
		log_str(&l, LK_REASON, u->reason);
		log_end(&l);
	}
	metrics_inc(u->sinks->metrics, o->metric);
	upstream_finish(u, st);
}

static void
upstream_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream	*u = arg;
	char		 within[32];

	upstream_fail(u, UPSTREAM_TIMEOUT, "no %s within %s",
	    u->state == UPSTREAM_HANDSHAKING ?
	    "TLS handshake" : u->state == UPSTREAM_RESOLVING ?
	    "DNS answer" : "TCP connection",
	    cv_duration_text(u->rc->conf->connect_timeout_ms, within,
	    sizeof(within)));
}

/* Arm the timer for what remains until the deadline. */
static void
upstream_arm_timer(struct upstream *u, bool fresh)
{
	struct timeval	 now, left, timeout;

	monotime_tv(&now);
	if (fresh) {
		timeout = cv_timeval(u->rc->conf->connect_timeout_ms);
		evutil_timeradd(&now, &timeout, &u->deadline);
	}
	if (evutil_timercmp(&u->deadline, &now, <))
		evutil_timerclear(&left);
	else
		evutil_timersub(&u->deadline, &now, &left);
	evtimer_add(u->timer, &left);
}

static void
upstream_dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct upstream	*u = arg;

	/* Cancelled by upstream_free: u is gone, touch nothing. */
	if (result == EVUTIL_EAI_CANCEL)
		return;
	u->dns_req = NULL;
	u->addrs = res;
	u->next_addr = res;
	u->resolve_result = result;
	if (u->in_resolve_call)
		return;
	if (result != 0 || res == NULL) {
		upstream_fail(u, UPSTREAM_DNS_FAILED, "cannot resolve %s: %s",
		    u->host,
		    result != 0 ? evutil_gai_strerror(result) : "no address");
		return;
	}
	u->state = UPSTREAM_CONNECTING;
	upstream_try_next(u);
}

/* Whether host is a name for DNS: normalised, and not an address. */
static bool
upstream_name_resolvable(const char *host)
{
	char	 norm[HOSTMATCH_NAME_MAX];

	return hostmatch_normalize(host, strlen(host), norm, sizeof(norm)) &&
	    strcmp(norm, host) == 0 && !hostmatch_is_ip(norm);
}

/* Begin resolution from the event loop, never from the caller's stack. */
static void
upstream_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream			*u = arg;
	struct evutil_addrinfo		 hints;
	char				 port[8];

	if (u->one_addrlen > 0) {
		u->state = UPSTREAM_CONNECTING;
		upstream_try_next(u);
		return;
	}
	/*
	 * Only a normalised host name goes to the resolver: one that reads
	 * as a number (0177.0.0.1) would be an address it spells its own way.
	 */
	if (!upstream_name_resolvable(u->host)) {
		upstream_fail(u, UPSTREAM_DNS_FAILED, "not resolving %s: not "
		    "a normalised host name", u->host);
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	snprintf(port, sizeof(port), "%u", u->port);
	/* evdns may answer before it returns; finish the step after. */
	u->in_resolve_call = true;
	u->resolve_result = UPSTREAM_NO_ANSWER;
	u->dns_req = evdns_getaddrinfo(u->dns, u->host, port, &hints,
	    upstream_dns_cb, u);
	u->in_resolve_call = false;
	if (u->resolve_result != UPSTREAM_NO_ANSWER) {
		u->dns_req = NULL;
		upstream_dns_cb(u->resolve_result, u->addrs, u);
	}
}

/* Take an attempt's socket out of it, leaving its slot free. */
static int
upstream_attempt_take(struct upstream_attempt *a)
{
	int	 fd = a->fd;

	event_free(a->ev);
	a->ev = NULL;
	a->fd = -1;
	a->u->natt--;
	return fd;
}

/* Give up one TCP attempt (a free slot: nothing to do). */
static void
upstream_attempt_end(struct upstream_attempt *a)
{
	if (a->fd != -1)
		close(upstream_attempt_take(a));
}

/* Give up every attempt still opening. */
static void
upstream_attempts_end(struct upstream *u)
{
	size_t	 i;

	for (i = 0; i < UPSTREAM_ATTEMPTS; i++)
		upstream_attempt_end(&u->att[i]);
	if (u->stagger != NULL)
		evtimer_del(u->stagger);
}

static void
upstream_connect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_attempt	*a = arg;
	struct upstream		*u = a->u;
	socklen_t		 len = sizeof(u->last_errno);
	int			 err = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		u->last_errno = err;
		upstream_attempt_end(a);
		/* The next address now; none: the others may still connect. */
		if (u->next_addr != NULL || u->natt == 0) {
			evtimer_del(u->stagger);
			upstream_try_next(u);
		}
		return;
	}
	/* This one won: it is the upstream's, the others go. */
	memcpy(&u->peer, &a->sa, a->salen);
	u->peerlen = a->salen;
	u->fd = upstream_attempt_take(a);
	upstream_attempts_end(u);
	u->state = UPSTREAM_CONNECTED;
	upstream_finish(u, UPSTREAM_OK);
}

/*
 * The address of the server as "1.2.3.4:443" or "[::1]:443", the one its
 * connection was dialled to (a reset would take it from the socket): the
 * host name is what is checked, this is who answers (an address the
 * client chose, for a CONNECT to one with a name in its hello). Empty
 * before a connection.
 */
static const char *
upstream_peer_text(const struct upstream *u, char *buf, size_t len)
{
	buf[0] = '\0';
	if (u->peerlen > 0)
		cv_peer_text((const struct sockaddr *)&u->peer, buf, len);
	return buf;
}

/* Time for another address, beside the attempts still opening. */
static void
upstream_stagger_cb(evutil_socket_t fd, short what, void *arg)
{
	upstream_try_next(arg);
}

/*
 * An address as compared for loops: IPv4 as IPv4-mapped IPv6, port kept.
 * The unspecified address is the loopback address it reaches when
 * dialled.
 */
static void
upstream_loop_key(const struct sockaddr *sa, struct sockaddr_in6 *key)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)sa;

	memset(key, 0, sizeof(*key));
	key->sin6_family = AF_INET6;
	if (sa->sa_family == AF_INET) {
		key->sin6_port = sin->sin_port;
		key->sin6_addr.s6_addr[10] = 0xff;
		key->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&key->sin6_addr.s6_addr[12], &sin->sin_addr, 4);
		if (sin->sin_addr.s_addr == htonl(INADDR_ANY)) {
			key->sin6_addr.s6_addr[12] = 127;
			key->sin6_addr.s6_addr[15] = 1;
		}
		return;
	}
	key->sin6_port = sin6->sin6_port;
	key->sin6_addr = sin6->sin6_addr;
	if (IN6_IS_ADDR_UNSPECIFIED(&key->sin6_addr))
		key->sin6_addr = in6addr_loopback;
	/* ::ffff:0.0.0.0 reaches this machine as 0.0.0.0 does. */
	if (IN6_IS_ADDR_V4MAPPED(&key->sin6_addr) &&
	    key->sin6_addr.s6_addr[12] == 0 && key->sin6_addr.s6_addr[13] == 0 &&
	    key->sin6_addr.s6_addr[14] == 0 && key->sin6_addr.s6_addr[15] == 0) {
		key->sin6_addr.s6_addr[12] = 127;
		key->sin6_addr.s6_addr[15] = 1;
	}
}

/* Whether a listening address is a wildcard (0.0.0.0 or ::). */
static bool
upstream_is_wildcard(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr ==
		    htonl(INADDR_ANY);
	return sa->sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(
	    &((const struct sockaddr_in6 *)sa)->sin6_addr);
}

/*
 * Whether the wildcard listener own accepts on a loop key's family: 0.0.0.0
 * IPv4 only, [::] IPv6 and, unless bound IPv6-only, IPv4 too.
 */
static bool
upstream_wildcard_takes(const struct conf_addr *own, const struct in6_addr *a)
{
	if (own->ss.ss_family == AF_INET)
		return IN6_IS_ADDR_V4MAPPED(a);
	return !own->v6only || !IN6_IS_ADDR_V4MAPPED(a);
}

/* Whether a loop key names this machine: loopback or an interface's. */
static bool
upstream_is_local(const struct in6_addr *a)
{
	struct ifaddrs		*ifa, *i;
	struct sockaddr_in6	 key;
	bool			 found = false;

	/* 127.0.0.0/8 and ::1 never leave the machine. */
	if (IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) &&
	    a->s6_addr[12] == 127))
		return true;
	/* Read at each check: interfaces come and go while we run. */
	if (getifaddrs(&ifa) == -1)
		return false;
	for (i = ifa; i != NULL && !found; i = i->ifa_next) {
		if (i->ifa_addr == NULL || (i->ifa_addr->sa_family !=
		    AF_INET && i->ifa_addr->sa_family != AF_INET6))
			continue;
		upstream_loop_key(i->ifa_addr, &key);
		found = memcmp(&key.sin6_addr, a, sizeof(*a)) == 0;
	}
	freeifaddrs(ifa);
	return found;
}

bool
upstream_addr_is_self(const struct sockaddr *sa, const struct conf_addr *self,
    size_t nself)
{
	const struct sockaddr	*own;
	struct sockaddr_in6	 a, b;
	size_t			 i;

	upstream_loop_key(sa, &a);
	for (i = 0; i < nself; i++) {
		own = (const struct sockaddr *)&self[i].ss;
		upstream_loop_key(own, &b);
		if (a.sin6_port != b.sin6_port)
			continue;
		/*
		 * A wildcard listener accepts on every address of the
		 * machine: 127.0.0.2 or an interface's address reaches it
		 * as surely as 127.0.0.1 does.
		 */
		if (upstream_is_wildcard(own)) {
			if (upstream_wildcard_takes(&self[i], &a.sin6_addr) &&
			    upstream_is_local(&a.sin6_addr))
				return true;
		} else if (memcmp(&a.sin6_addr, &b.sin6_addr,
		    sizeof(a.sin6_addr)) == 0)
			return true;
	}
	return false;
}

bool
upstream_mark_check(unsigned long mark, char *err, size_t errlen)
{
	unsigned int	 m = (unsigned int)mark;
	int		 fd, saved;

	if (mark == 0)
		return true;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_MARK, &m, sizeof(m)) == -1) {
		saved = errno;
		if (fd != -1)
			close(fd);
		snprintf(err, errlen, "upstream_mark = %lu: cannot set "
		    "SO_MARK: %s (it needs CAP_NET_ADMIN or CAP_NET_RAW)", mark,
		    strerror(saved));
		return false;
	}
	close(fd);
	return true;
}

bool
upstream_addr_is_forwarder(const struct sockaddr *sa, const struct conf *c)
{
	size_t	 i;

	for (i = 0; i < c->nforwarders; i++)
		if (upstream_addr_is_self(sa, c->forwarders[i].listen,
		    c->forwarders[i].nlisten))
			return true;
	return false;
}

/*
 * Whether dialling sa would reach one of the proxy's own listeners (and,
 * with self_forwarders, those of the forwarders of its generation, bound
 * once it is the current one).
 */
static bool
upstream_is_self(const struct upstream *u, const struct sockaddr *sa)
{
	return upstream_addr_is_self(sa, u->self, u->nself) ||
	    (u->self_forwarders &&
	    upstream_addr_is_forwarder(sa, u->rc->conf));
}

/*
 * Remember the dial of u to sa, from the address the connect gave it: a
 * redirect that sends it back to a transparent listener is seen as a loop.
 * Without such a listener nothing can come back: no system call then.
 */
static void
upstream_remember_dial(struct upstream *u, int fd, const struct sockaddr *sa)
{
	struct sockaddr_storage	 local;
	socklen_t		 len = sizeof(local);

	if (u->sinks->dials != NULL && u->rc->conf->ntransparent > 0 &&
	    getsockname(fd, (struct sockaddr *)&local, &len) == 0)
		dialring_add(u->sinks->dials, (struct sockaddr *)&local, sa);
}

/* A slot for a new attempt: a free one, else the oldest, given up. */
static struct upstream_attempt *
upstream_attempt_slot(struct upstream *u)
{
	struct upstream_attempt	*a, *oldest = NULL;
	size_t			 i;

	for (i = 0; i < UPSTREAM_ATTEMPTS; i++) {
		a = &u->att[i];
		if (a->fd == -1)
			return a;
		if (oldest == NULL || a->seq - oldest->seq > UINT_MAX / 2)
			oldest = a;
	}
	upstream_attempt_end(oldest);
	return oldest;
}

/* Start a TCP connection to one address; false if it failed at once. */
static bool
upstream_dial(struct upstream *u, const struct sockaddr *sa, socklen_t salen)
{
	struct upstream_attempt	*a;
	unsigned int		 mark = (unsigned int)u->rc->conf->upstream_mark;
	int			 one = 1, fd;

	if (upstream_is_self(u, sa)) {
		u->looped = true;
		return false;
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1) {
		u->last_errno = errno;
		return false;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/*
	 * Unmarked, a connection would be redirected back to a transparent
	 * listener: better no connection at all.
	 */
	if (mark != 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark,
	    sizeof(mark)) == -1) {
		u->last_errno = errno;
		log_msg(EV_UPSTREAM_ERROR, "cannot set upstream_mark: %s "
		    "(SO_MARK needs CAP_NET_ADMIN)", strerror(errno));
		close(fd);
		return false;
	}
	if (connect(fd, sa, salen) == -1 && errno != EINPROGRESS) {
		u->last_errno = errno;
		close(fd);
		return false;
	}
	upstream_remember_dial(u, fd, sa);
	a = upstream_attempt_slot(u);
	a->u = u;
	a->fd = fd;
	memcpy(&a->sa, sa, salen);
	a->salen = salen;
	a->seq = u->att_seq++;
	a->ev = event_new(u->base, fd, EV_WRITE, upstream_connect_cb, a);
	event_add(a->ev, NULL);
	u->natt++;
	return true;
}

/*
 * Whether a resolved address is one a pin set covers other than the
 * name's (none, or another set: report-only, say, or with its own
 * ca_file): a name never unpins an address, whether the client pairs them
 * (a CONNECT by address with a SNI) or DNS does. Such an address is never
 * dialled, nor one that no host spells (an IPv4-compatible ::a.b.c.d, an
 * IPv4-translated ::ffff:0:a.b.c.d), whose pin set cannot be told.
 */
static bool
upstream_addr_pinned(struct upstream *u, const struct sockaddr *sa)
{
	const struct pinset	*ps;
	char			 host[HOSTMATCH_NAME_MAX];
	uint16_t		 port;

	if (!hostport_sockaddr(sa, host, &port)) {
		u->last_errno = EADDRNOTAVAIL;
		return true;
	}
	if ((ps = conf_lookup(u->rc->conf, host)) == NULL || ps == u->ps)
		return false;
	if (u->addr_ps == NULL) {
		u->addr_ps = ps;
		xstrlcpy(u->addr_pinned, host, sizeof(u->addr_pinned));
	}
	return true;
}

/*
 * " at ADDR:PORT" when a pin set's connect_to chose the address dialled
 * (the host and port named are not where the connection went), else "".
 */
static const char *
upstream_dialled(const struct upstream *u, char *buf, size_t len)
{
	if (u->ps == NULL || !u->ps->has_connect_to)
		return "";
	snprintf(buf, len, " at %s", u->ps->connect_to.text);
	return buf;
}

/* Try the next resolved address, or fail when none is left. */
static void
upstream_try_next(struct upstream *u)
{
	struct evutil_addrinfo	*ai;
	char			 dialled[CONF_ADDR_TEXT_MAX + 4];

	if (u->one_addrlen > 0) {
		/*
		 * An address literal is judged as a resolved address when
		 * nothing pins the dial: no plaintext or unpinned connection
		 * reaches an address a pin set covers.
		 */
		if (u->last_errno == 0 && (u->ps != NULL ||
		    !upstream_addr_pinned(u, (struct sockaddr *)&u->one_addr)) &&
		    upstream_dial(u, (struct sockaddr *)&u->one_addr,
		    u->one_addrlen))
			return;
	} else {
		while ((ai = u->next_addr) != NULL) {
			u->next_addr = ai->ai_next;
			if (!upstream_addr_pinned(u, ai->ai_addr) &&
			    upstream_dial(u, ai->ai_addr, ai->ai_addrlen)) {
				if (u->next_addr != NULL) {
					struct timeval	 tv = cv_timeval(
					    UPSTREAM_STAGGER_MS);

					evtimer_add(u->stagger, &tv);
				}
				return;
			}
		}
	}
	/* The last addresses are still being tried. */
	if (u->natt > 0)
		return;
	if (u->looped)
		upstream_fail(u, UPSTREAM_LOOP, "%s port %u is the "
		    "proxy's own listening address", u->host, u->port);
	else if (u->addr_ps != NULL && u->ps == NULL &&
	    strcmp(u->host, u->addr_pinned) == 0)
		upstream_fail(u, UPSTREAM_ADDR_PINNED, "%s is in pin set %s: "
		    "it is reached over TLS with its pins only", u->host,
		    u->addr_ps->name);
	else if (u->addr_ps != NULL && u->ps == NULL)
		upstream_fail(u, UPSTREAM_ADDR_PINNED, "%s resolves to %s, "
		    "which pin set %s covers: add the name to its hosts to "
		    "reach it", u->host, u->addr_pinned, u->addr_ps->name);
	else if (u->addr_ps != NULL)
		upstream_fail(u, UPSTREAM_ADDR_PINNED, "%s resolves to %s, "
		    "which pin set %s covers, not the name's set %s",
		    u->host, u->addr_pinned, u->addr_ps->name, u->ps->name);
	else
		upstream_fail(u, UPSTREAM_CONNECT_FAILED,
		    "cannot connect to %s port %u%s: %s", u->host, u->port,
		    upstream_dialled(u, dialled, sizeof(dialled)),
		    strerror(u->last_errno != 0 ? u->last_errno :
		    ECONNREFUSED));
}

/* Fill one_addr when no resolution is needed (connect_to, IP literal). */
static void
upstream_fixed_address(struct upstream *u)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&u->one_addr;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&u->one_addr;

	if (u->ps != NULL && u->ps->has_connect_to) {
		memcpy(&u->one_addr, &u->ps->connect_to.ss,
		    u->ps->connect_to.sslen);
		u->one_addrlen = u->ps->connect_to.sslen;
		return;
	}
	memset(&u->one_addr, 0, sizeof(u->one_addr));
	if (inet_pton(AF_INET, u->host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(u->port);
		u->one_addrlen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, u->host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(u->port);
		u->one_addrlen = sizeof(*sin6);
	}
}

struct upstream *
upstream_connect(const struct upstream_params *p, upstream_cb cb, void *arg)
{
	struct upstream	*u;
	struct timeval	 now = { 0, 0 };
	size_t		 i;

	u = xcalloc(1, sizeof(*u));
	u->state = UPSTREAM_RESOLVING;
	u->base = p->base;
	u->dns = p->dns;
	u->rc = runconf_ref(p->rc);
	u->ps = p->ps;
	xstrlcpy(u->host, p->host, sizeof(u->host));
	u->port = p->port;
	xstrlcpy(u->client, p->client, sizeof(u->client));
	u->sinks = p->sinks;
	u->self = p->self;
	u->nself = p->nself;
	u->self_forwarders = p->self_forwarders;
	u->cb = cb;
	u->arg = arg;
	u->fd = -1;
	for (i = 0; i < UPSTREAM_ATTEMPTS; i++)
		u->att[i].fd = -1;
	u->pins.matched_depth = -1;
	u->timer = evtimer_new(u->base, upstream_timeout_cb, u);
	u->stagger = evtimer_new(u->base, upstream_stagger_cb, u);
	u->kick = evtimer_new(u->base, upstream_kick_cb, u);
	upstream_fixed_address(u);
	upstream_arm_timer(u, true);
	evtimer_add(u->kick, &now);
	return u;
}

/*
 * Whether a pin failure is to be logged: the first for its host, port,
 * client address (not port: each retry has a new one) and chain within
 * THROTTLE_MISMATCH_SECONDS. Repeats are counted instead.
 */
static bool
upstream_mismatch_news(struct upstream *u)
{
	unsigned char	 key[HOSTMATCH_NAME_MAX + CONF_ADDR_TEXT_MAX + 2 +
			    PINCHECK_MAX_CHAIN * PIN_DIGEST_LEN];
	size_t		 n, len, i;

	n = strlen(u->host) + 1;
	memcpy(key, u->host, n);
	key[n++] = u->port >> 8;
	key[n++] = u->port & 0xff;
	len = throttle_addr_len(u->client);
	memcpy(key + n, u->client, len);
	n += len;
	key[n++] = '\0';
	for (i = 0; i < u->pins.nseen && i < PINCHECK_MAX_CHAIN; i++) {
		memcpy(key + n, u->pins.seen[i].digest, PIN_DIGEST_LEN);
		n += PIN_DIGEST_LEN;
	}
	if (throttle_allow(u->sinks->mismatch_log, key, n, throttle_now()))
		return true;
	metrics_inc(u->sinks->metrics, METRIC_PIN_MISMATCH_SUPPRESSED);
	log_msg(EV_DEBUG, "pin_mismatch for %s from %s repeated within %ds: "
	    "not logged", u->host, u->client, THROTTLE_MISMATCH_SECONDS);
	return false;
}

/* Log a pin verdict that lets traffic through with a warning. */
static void
upstream_log_verdict(struct upstream *u, bool resumed)
{
	struct logline	 l;
	char		 seen[PINCHECK_MAX_CHAIN * PIN_TEXT_MAX];
	char		 addr[CONF_ADDR_TEXT_MAX];

	switch (u->pins.verdict) {
	case PIN_MISMATCH:
	case PIN_REPORT_ONLY:
		if (!upstream_mismatch_news(u))
			break;
		pincheck_seen_text(&u->pins, seen, sizeof(seen));
		log_begin(&l, EV_PIN_MISMATCH);
		log_str(&l, LK_HOST, u->host);
		log_int(&l, LK_PORT, u->port);
		log_str(&l, LK_ADDR, upstream_peer_text(u, addr,
		    sizeof(addr)));
		log_str(&l, LK_CLIENT, u->client);
		log_str(&l, LK_PINSET, u->ps->name);
		log_str(&l, LK_ENFORCED, u->pins.verdict == PIN_MISMATCH ?
		    "yes" : "no");
		log_str(&l, LK_CHAIN, seen);
		if (u->pins.matched_depth >= 0)
			log_int(&l, LK_DEPTH, u->pins.matched_depth);
		log_end(&l);
		break;
	case PIN_EXPIRED:
		log_begin(&l, EV_PINSET_EXPIRED);
		log_str(&l, LK_HOST, u->host);
		log_str(&l, LK_PINSET, u->ps->name);
		log_str(&l, LK_EXPIRES, u->ps->expires_text);
		log_end(&l);
		break;
	case PIN_MATCH:
	case PIN_UNPINNED:
		log_begin(&l, EV_DEBUG);
		log_str(&l, LK_HOST, u->host);
		log_int(&l, LK_PORT, u->port);
		log_str(&l, LK_MSG, pincheck_verdict_name(u->pins.verdict));
		if (u->pins.matched_depth >= 0)
			log_int(&l, LK_DEPTH, u->pins.matched_depth);
		log_str(&l, LK_STATE, resumed ? "resumed" : "full");
		log_end(&l);
		break;
	}
}

/*
 * Count the candidates the check found; the first sighting of each in this
 * generation in a chain that met the pins, and the first in one that did
 * not, is logged with the check's result: the server has rotated to the
 * next key, or (not met) someone else holds a certificate with it.
 */
static void
upstream_note_candidates(struct upstream *u)
{
	const struct pincheck_candidate	*c;
	struct logline			 l;
	char				 pin[PIN_TEXT_MAX];
	size_t				 i;

	for (i = 0; i < u->pins.ncandidates; i++) {
		c = &u->pins.candidates[i];
		pin_format(&u->ps->candidates[c->index], pin, sizeof(pin));
		metrics_candidate_seen(u->sinks->metrics, u->ps->name, pin);
		if (!runconf_candidate_first(u->rc, u->ps, c->index,
		    u->pins.verdict == PIN_MATCH))
			continue;
		log_begin(&l, EV_CANDIDATE_SEEN);
		log_str(&l, LK_HOST, u->host);
		log_int(&l, LK_PORT, u->port);
		log_str(&l, LK_PINSET, u->ps->name);
		log_str(&l, LK_PIN, pin);
		log_int(&l, LK_DEPTH, c->depth);
		log_str(&l, LK_RESULT, pincheck_verdict_name(u->pins.verdict));
		log_end(&l);
	}
}

/* Append a pin failure to report_file, when one is configured. */
static void
upstream_report(struct upstream *u, STACK_OF(X509) *chain)
{
	struct report_event	 ev;
	struct logline		 l;
	char			 err[256], addr[CONF_ADDR_TEXT_MAX];

	if (u->sinks->report == NULL)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.time = time(NULL);
	ev.hostname = u->host;
	ev.port = u->port;
	ev.ps = u->ps;
	ev.enforced = u->pins.verdict == PIN_MISMATCH;
	ev.pins = &u->pins;
	ev.client = u->client;
	ev.server_address = upstream_peer_text(u, addr, sizeof(addr));
	ev.served_chain = SSL_get_peer_cert_chain(u->ssl);
	ev.validated_chain = chain;
	switch (report_pin_failure(u->sinks->report, &ev,
	    u->rc->conf->report_max, err, sizeof(err))) {
	case REPORT_WRITTEN:
	case REPORT_FULL:	/* logged once a day by the report */
		break;
	case REPORT_DUPLICATE:
		log_begin(&l, EV_DEBUG);
		log_str(&l, LK_HOST, u->host);
		log_str(&l, LK_MSG, "duplicate pin failure report suppressed");
		log_int(&l, LK_COUNT,
		    (long long)report_suppressed(u->sinks->report));
		log_end(&l);
		break;
	case REPORT_FAILED:
		report_log_error(u->sinks->report, err);
		break;
	}
}

/*
 * The depth at which the deny pins of now, the current configuration,
 * refuse the keys of res, the recorded chain of a connection judged under
 * was, an older one (*which: the key), or -1. A record that misses keys
 * of the chain (partial) cannot be cleared of a pin that was did not
 * deny: it is refused at the depth of the first key missing (*which
 * zeroed).
 */
static int
upstream_deny_keys(const struct conf *now, const struct conf *was,
    const struct pincheck_result *res, struct pin *which)
{
	int	 depth;

	depth = deny_match_keys(now->deny_pins, now->ndeny_pins, res->seen,
	    res->nseen, which);
	if (depth < 0 && res->partial && deny_adds(now->deny_pins,
	    now->ndeny_pins, was->deny_pins, was->ndeny_pins)) {
		memset(which, 0, sizeof(*which));
		depth = (int)res->nseen;
	}
	return depth;
}

/* Log a refusal by a deny pin and count it; reason goes into the line. */
static void
upstream_log_denied(const char *host, uint16_t port, const char *client,
    const struct pinset *ps, int depth, const struct pin *which, bool known,
    const char *reason, struct metrics *metrics)
{
	struct logline	 l;
	char		 text[PIN_TEXT_MAX];

	log_begin(&l, EV_PIN_DENIED);
	log_str(&l, LK_HOST, host);
	log_int(&l, LK_PORT, port);
	log_str(&l, LK_CLIENT, client);
	if (known) {
		pin_format(which, text, sizeof(text));
		log_str(&l, LK_PIN, text);
	}
	log_int(&l, LK_DEPTH, depth);
	if (ps != NULL)
		log_str(&l, LK_PINSET, ps->name);
	if (reason != NULL)
		log_str(&l, LK_REASON, reason);
	log_end(&l);
	metrics_inc(metrics, METRIC_PIN_DENIED);
}

/*
 * Whether the verified chain (NULL after a resumption) holds a key of
 * deny_pin or deny_file, of the upstream's generation or, after a reload,
 * of the current one; if so the connection is refused here, whatever the
 * pin set would say.
 */
static bool
upstream_denied(struct upstream *u, STACK_OF(X509) *chain)
{
	const struct conf	*c = u->rc->conf;
	const struct runconf	*now;
	struct pin		 which;
	char			 text[PIN_TEXT_MAX];
	const char		*since = NULL;
	bool			 known = true;
	int			 depth;

	depth = deny_match(c->deny_pins, c->ndeny_pins, chain, &which);
	now = u->sinks->current != NULL && *u->sinks->current != NULL ?
	    *u->sinks->current : u->rc;
	if (depth < 0 && now != u->rc) {
		/* The whole chain when there is one; a resumption's record. */
		if (chain != NULL)
			depth = deny_match(now->conf->deny_pins,
			    now->conf->ndeny_pins, chain, &which);
		else if ((depth = upstream_deny_keys(now->conf, c, &u->pins,
		    &which)) >= 0)
			known = depth < (int)u->pins.nseen;
		if (depth >= 0)
			since = "denied by a reload during the handshake";
	}
	if (depth < 0)
		return false;
	pin_format(&which, text, sizeof(text));
	if (known)
		snprintf(u->reason, sizeof(u->reason), "the verified chain "
		    "holds a denied key at depth %d: %s", depth, text);
	else
		snprintf(u->reason, sizeof(u->reason), "the key at depth %d "
		    "of the verified chain cannot be checked against the deny "
		    "pins a reload added", depth);
	upstream_log_denied(u->host, u->port, u->client, u->ps, depth,
	    &which, known, since, u->sinks->metrics);
	bufferevent_setcb(u->bev, NULL, NULL, NULL, NULL);
	upstream_finish(u, UPSTREAM_PIN_DENIED);
	return true;
}

bool
upstream_denied_on_reload(SSL *ssl, const struct runconf *now,
    const char *client, struct metrics *metrics)
{
	struct tls_upstream_verdict	 v;
	struct pin			 which;
	bool				 known;
	int				 depth;

	if (!tls_upstream_judged(ssl, &v) ||
	    (depth = upstream_deny_keys(now->conf, v.conf, v.res,
	    &which)) < 0)
		return false;
	known = depth < (int)v.res->nseen;
	upstream_log_denied(v.host, v.port, client, v.ps, depth, &which,
	    known, known ? "a reload denied a key of the connection's "
	    "verified chain: closed" : "a reload added deny pins and the "
	    "connection's chain has keys that cannot be checked: closed",
	    metrics);
	return true;
}

/* The handshake finished: the chain verified; now the pins decide. */
static void
upstream_handshake_done(struct upstream *u)
{
	STACK_OF(X509)	*chain;
	bool		 resumed;

	/*
	 * A resumed session has no chain to judge; it was kept only after
	 * the full handshake that made it passed, in this generation, for
	 * this host, port and pin set, and that verdict stands.
	 */
	chain = NULL;
	resumed = tls_upstream_resumed(u->ssl, &u->pins);
	if (!resumed && SSL_session_reused(u->ssl)) {
		/* Nothing else is offered: never take a verdict on trust. */
		upstream_fail(u, UPSTREAM_TLS_FAILED,
		    "resumed a session that was not offered");
		return;
	}
	if (!resumed) {
		chain = SSL_get0_verified_chain(u->ssl);
		if (SSL_get_verify_result(u->ssl) != X509_V_OK ||
		    chain == NULL) {
			upstream_fail(u, UPSTREAM_TLS_FAILED,
			    "no verified chain after the handshake");
			return;
		}
		pincheck_verdict(u->ps, chain, time(NULL), &u->pins);
	}
	if (upstream_denied(u, chain))
		return;
	if (!resumed)
		upstream_note_candidates(u);
	upstream_log_verdict(u, resumed);
	if (!resumed && u->pins.verdict == PIN_UNPINNED)
		observe_chain(u->sinks->observe, u->rc->conf->observe_max,
		    u->host, u->port, u->client, chain, time(NULL));
	metrics_inc(u->sinks->metrics, metrics_pin_check(u->pins.verdict));
	if (!resumed && (u->pins.verdict == PIN_MISMATCH ||
	    u->pins.verdict == PIN_REPORT_ONLY))
		upstream_report(u, chain);
	if (pincheck_allows(u->pins.verdict))
		tls_upstream_passed(u->ssl, &u->pins);
	bufferevent_setcb(u->bev, NULL, NULL, NULL, NULL);
	if (!pincheck_allows(u->pins.verdict)) {
		snprintf(u->reason, sizeof(u->reason), "no pin of [pins:%s] "
		    "is in the verified chain", u->ps->name);
		upstream_finish(u, UPSTREAM_PIN_MISMATCH);
		return;
	}
	u->state = UPSTREAM_READY;
	upstream_finish(u, UPSTREAM_OK);
}

/* The handshake failed: a certificate problem or another TLS error. */
static void
upstream_handshake_failed(struct upstream *u, short what)
{
	struct logline	 l;
	char		 addr[CONF_ADDR_TEXT_MAX];
	unsigned long	 e;
	long		 v;

	metrics_inc(u->sinks->metrics, METRIC_HANDSHAKE_FAILURES_UPSTREAM);
	v = SSL_get_verify_result(u->ssl);
	if (v != X509_V_OK) {
		metrics_inc(u->sinks->metrics, METRIC_VERIFY_FAILURES);
		snprintf(u->reason, sizeof(u->reason), "%s",
		    X509_verify_cert_error_string(v));
		log_begin(&l, EV_VERIFY_FAILED);
		log_str(&l, LK_HOST, u->host);
		log_int(&l, LK_PORT, u->port);
		log_str(&l, LK_ADDR, upstream_peer_text(u, addr,
		    sizeof(addr)));
		log_str(&l, LK_CLIENT, u->client);
		log_str(&l, LK_REASON, u->reason);
		log_end(&l);
		upstream_finish(u, UPSTREAM_VERIFY_FAILED);
		return;
	}
	/* What the hello's own step saw first: the loop's step only echoes. */
	e = u->hello_error;
	if (e == 0 && u->hello_errno == 0)
		e = relay_tls_error(u->bev);
	if (e != 0)
		upstream_fail(u, UPSTREAM_TLS_FAILED,
		    "TLS handshake failed: %s", ERR_reason_error_string(e) ?
		    ERR_reason_error_string(e) : "unknown error");
	else if (u->hello_errno != 0)
		upstream_fail(u, UPSTREAM_TLS_FAILED, "TLS handshake failed: %s",
		    evutil_socket_error_to_string(u->hello_errno));
	else if ((what & BEV_EVENT_ERROR) && EVUTIL_SOCKET_ERROR() != 0)
		upstream_fail(u, UPSTREAM_TLS_FAILED, "TLS handshake failed: %s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	else
		upstream_fail(u, UPSTREAM_TLS_FAILED, "the server closed the "
		    "connection during the TLS handshake");
}

static void
upstream_tls_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct upstream	*u = arg;

	if (what & BEV_EVENT_CONNECTED)
		upstream_handshake_done(u);
	else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))
		upstream_handshake_failed(u, what);
}

/*
 * Send the hello now rather than a turn of the loop later: the upstream
 * starts on it while pinproxy does the rest of this turn (an intercepted
 * client's own handshake, say). The bufferevent, set to connect, goes on
 * from there: its next step finds the hello sent (or the handshake done,
 * when the answer was there already) and reports the outcome, a failure
 * too, with what failed here, from the loop, as ever.
 */
static void
upstream_send_hello(struct upstream *u)
{
	int	 r;

	/* SSL_get_error() reads the queue: nothing stale may be left in it. */
	ERR_clear_error();
	r = SSL_do_handshake(u->ssl);
	switch (SSL_get_error(u->ssl, r)) {
	case SSL_ERROR_NONE:
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		break;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			u->hello_errno = r == 0 ? 0 : EVUTIL_SOCKET_ERROR();
			break;
		}
		/* FALLTHROUGH */
	default:
		u->hello_error = ERR_peek_last_error();
		break;
	}
	ERR_clear_error();
}

/* Hellos made ahead that wait, in the whole process. */
static size_t	upstream_ahead_waiting;

/* Forget the hello made ahead, if any: nothing of it was sent. */
static void
upstream_ahead_drop(struct upstream *u)
{
	if (u->ahead.ssl == NULL)
		return;
	tls_upstream_unsent(u->ahead.ssl);
	if (u->ahead.bev != NULL)
		bufferevent_free(u->ahead.bev);
	SSL_free(u->ahead.ssl);
	memset(&u->ahead, 0, sizeof(u->ahead));
	upstream_ahead_waiting--;
}

void
upstream_prepare_tls(struct upstream *u, const char *host,
    const struct pinset *ps, bool by_address, const unsigned char *alpn,
    size_t alpnlen)
{
	struct upstream_ahead	*a = &u->ahead;
	BIO			*in, *out;
	int			 r;

	upstream_ahead_drop(u);
	if (u->state != UPSTREAM_CONNECTED || u->bev != NULL ||
	    alpnlen > sizeof(a->alpn) || strlen(host) >= sizeof(a->host) ||
	    upstream_ahead_waiting >= UPSTREAM_AHEAD_MAX)
		return;
	a->ssl = tls_upstream_ssl(u->rc->tls, ps, by_address, host, u->port,
	    alpn, alpnlen);
	if (a->ssl == NULL)
		return;
	/* Counted from here: every way out below goes by the drop. */
	upstream_ahead_waiting++;
	/*
	 * The bufferevent now, while the TLS connection is new: made later,
	 * it would start the connection afresh (SSL_clear), hello and all.
	 * It waits, disabled, until upstream_start_tls() takes it.
	 */
	a->bev = bufferevent_openssl_socket_new(u->base, u->fd, a->ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_DEFER_CALLBACKS);
	in = BIO_new(BIO_s_mem());
	out = BIO_new(BIO_s_mem());
	if (a->bev == NULL || in == NULL || out == NULL) {
		BIO_free(in);
		BIO_free(out);
		upstream_ahead_drop(u);
		return;
	}
	bufferevent_disable(a->bev, EV_READ | EV_WRITE);
	/* Nothing is read from the server meanwhile: it waits in the socket. */
	BIO_set_mem_eof_return(in, -1);
	SSL_set_bio(a->ssl, in, out);
	ERR_clear_error();
	r = SSL_do_handshake(a->ssl);
	if (SSL_get_error(a->ssl, r) != SSL_ERROR_WANT_READ ||
	    BIO_pending(out) <= 0) {
		ERR_clear_error();
		upstream_ahead_drop(u);
		return;
	}
	xstrlcpy(a->host, host, sizeof(a->host));
	a->ps = ps;
	a->by_address = by_address;
	if (alpnlen > 0)
		memcpy(a->alpn, alpn, alpnlen);
	a->alpnlen = alpnlen;
	log_msg(EV_DEBUG, "client %s: the hello to %s made ahead (%zu "
	    "waiting)", u->client, host, upstream_ahead_waiting);
}

/*
 * Take the hello made ahead when it is for what this start asks for, and
 * send it: the TLS connection goes on from there on the socket.
 */
static bool
upstream_ahead_take(struct upstream *u, const unsigned char *alpn,
    size_t alpnlen)
{
	struct upstream_ahead	*a = &u->ahead;
	unsigned char		 hello[UPSTREAM_AHEAD_HELLO_MAX];
	const char		*why = NULL;
	BIO			*sock;
	size_t			 len, off = 0;
	ssize_t			 n;
	int			 r;

	if (a->ssl == NULL)
		return false;
	r = BIO_pending(SSL_get_wbio(a->ssl));
	if (strcmp(a->host, u->host) != 0 || a->ps != u->ps ||
	    a->by_address != u->by_address || a->alpnlen != alpnlen ||
	    (alpnlen > 0 && memcmp(a->alpn, alpn, alpnlen) != 0))
		why = "was for another name or offer";
	else if (r <= 0 || r > (int)sizeof(hello) ||
	    BIO_read(SSL_get_wbio(a->ssl), hello, r) != r)
		why = "could not be read back";
	else if ((sock = BIO_new_socket(u->fd, BIO_NOCLOSE)) == NULL)
		why = "has no socket to go on";
	else if (!tls_upstream_sendable(a->ssl)) {
		BIO_free(sock);
		why = "offers a session no longer fresh";
	}
	if (why != NULL) {
		log_msg(EV_DEBUG, "client %s: the hello to %s made ahead %s: "
		    "dropped unsent", u->client, u->host, why);
		upstream_ahead_drop(u);
		return false;
	}
	len = (size_t)r;
	SSL_set_bio(a->ssl, sock, sock);
	u->ssl = a->ssl;
	u->bev = a->bev;
	memset(a, 0, sizeof(*a));
	upstream_ahead_waiting--;
	/*
	 * A new connection's socket takes a hello whole. One that does not
	 * (it cannot be written again from where it stopped) ends the
	 * connection, and the handshake fails at once.
	 */
	while (off < len) {
		n = send(u->fd, hello + off, len - off, MSG_NOSIGNAL);
		if (n > 0)
			off += (size_t)n;
		else if (n == -1 && errno == EINTR)
			continue;
		else
			break;
	}
	if (off < len) {
		/* EAGAIN would read as a failure worth a retry: no room. */
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			u->hello_errno = ENOBUFS;
		else
			u->hello_errno = n == -1 ? errno : EPIPE;
		(void)shutdown(u->fd, SHUT_RDWR);
		log_msg(EV_DEBUG, "client %s: the hello to %s made ahead went "
		    "in part (%zu of %zu bytes): the connection is ended",
		    u->client, u->host, off, len);
		return true;
	}
	log_msg(EV_DEBUG, "client %s: the hello to %s made ahead, sent",
	    u->client, u->host);
	return true;
}

bool
upstream_start_tls(struct upstream *u, const unsigned char *alpn,
    size_t alpnlen, bool fresh_deadline, upstream_cb cb, void *arg)
{
	bool	 ahead;

	u->cb = cb;
	u->arg = arg;
	u->tls = true;
	u->state = UPSTREAM_HANDSHAKING;
	u->hello_error = 0;
	u->hello_errno = 0;
	upstream_arm_timer(u, fresh_deadline);
	if (!(ahead = upstream_ahead_take(u, alpn, alpnlen))) {
		u->ssl = tls_upstream_ssl(u->rc->tls, u->ps, u->by_address,
		    u->host, u->port, alpn, alpnlen);
		if (u->ssl != NULL) {
			/* Its hello goes now (upstream_send_hello()). */
			tls_upstream_sent(u->ssl);
			u->bev = bufferevent_openssl_socket_new(u->base, u->fd,
			    u->ssl, BUFFEREVENT_SSL_CONNECTING,
			    BEV_OPT_DEFER_CALLBACKS);
		}
	}
	if (u->bev == NULL) {
		SSL_free(u->ssl);
		u->ssl = NULL;
		upstream_fail(u, UPSTREAM_TLS_FAILED, "cannot set up TLS for %s",
		    u->host);
		return false;
	}
	relay_tune(u->bev);
	bufferevent_openssl_set_allow_dirty_shutdown(u->bev, 1);
	bufferevent_setcb(u->bev, NULL, NULL, upstream_tls_event_cb, u);
	bufferevent_enable(u->bev, EV_READ | EV_WRITE);
	if (!ahead)
		upstream_send_hello(u);
	return true;
}

void
upstream_retarget(struct upstream *u, const struct pinset *ps,
    const char *host, bool by_address)
{
	u->ps = ps;
	u->by_address = by_address;
	xstrlcpy(u->host, host, sizeof(u->host));
}

void
upstream_start_plain(struct upstream *u)
{
	upstream_ahead_drop(u);
	u->bev = bufferevent_socket_new(u->base, u->fd,
	    BEV_OPT_DEFER_CALLBACKS);
	relay_tune(u->bev);
	u->tls = false;
	u->state = UPSTREAM_READY;
}

evutil_socket_t
upstream_fd(const struct upstream *u)
{
	return u->fd;
}

struct bufferevent *
upstream_bev(struct upstream *u)
{
	return u->state == UPSTREAM_READY ? u->bev : NULL;
}

bool
upstream_quiet(struct upstream *u)
{
	char	 c;

	if (u->state != UPSTREAM_READY || u->bev == NULL)
		return false;
	if (evbuffer_get_length(bufferevent_get_input(u->bev)) > 0)
		return false;
	/* Any byte in TLS: also part of a record not yet complete. */
	if (u->tls && (u->ssl == NULL || SSL_has_pending(u->ssl)))
		return false;
	/* Nothing to read, and no end: the socket has nothing to say. */
	return recv(u->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK);
}

bool
upstream_closed_cleanly(struct upstream *u)
{
	if (!u->tls || u->bev == NULL)
		return true;
	return u->ssl != NULL &&
	    (SSL_get_shutdown(u->ssl) & SSL_RECEIVED_SHUTDOWN) != 0;
}

void
upstream_hand_over(struct upstream *u, evutil_socket_t *fd, SSL **ssl)
{
	/* The verdict is in: the relay never looks at the chain again. */
	if (u->ssl != NULL)
		tls_upstream_release_chains(u->ssl);
	*fd = u->fd;
	*ssl = u->ssl;
	u->fd = -1;
	u->ssl = NULL;
	upstream_free(u);
}

const char *
upstream_reason(const struct upstream *u)
{
	return u->reason;
}

const struct pincheck_result *
upstream_pins(const struct upstream *u)
{
	return &u->pins;
}

SSL *
upstream_tls(const struct upstream *u)
{
	return u->ssl;
}

STACK_OF(X509) *
upstream_peer_chain(const struct upstream *u)
{
	return u->ssl != NULL ? SSL_get_peer_cert_chain(u->ssl) : NULL;
}

STACK_OF(X509) *
upstream_verified_chain(const struct upstream *u)
{
	/* A resumed session carries no chain of its own. */
	if (u->ssl == NULL || SSL_session_reused(u->ssl) ||
	    SSL_get_verify_result(u->ssl) != X509_V_OK)
		return NULL;
	return SSL_get0_verified_chain(u->ssl);
}

void
upstream_alpn(const struct upstream *u, const unsigned char **data,
    unsigned int *len)
{
	*data = NULL;
	*len = 0;
	if (u->ssl != NULL)
		SSL_get0_alpn_selected(u->ssl, data, len);
}

bool
upstream_matches(const struct upstream *u, const struct runconf *rc,
    const char *host, uint16_t port, bool tls)
{
	/* Not once the chain its verdict judged ended, as for a session. */
	return u->state == UPSTREAM_READY && u->rc == rc && u->port == port &&
	    u->tls == tls && strcmp(u->host, host) == 0 &&
	    (!tls || time(NULL) < u->pins.valid_until);
}

unsigned long
upstream_generation(const struct upstream *u)
{
	return u->rc->generation;
}

bool
upstream_same_target(const struct upstream *a, const struct upstream *b)
{
	return a->rc == b->rc && a->port == b->port && a->tls == b->tls &&
	    strcmp(a->host, b->host) == 0;
}

/* A released handshake reached its verdict, logged and reported. */
static void
upstream_alone_done_cb(struct upstream *u, enum upstream_status st,
    void *arg)
{
	struct upstream_alone	*a = arg;

	log_msg(EV_DEBUG, "the upstream handshake for %s:%u that ran on "
	    "without client %s ended: %s", u->host, u->port, u->client,
	    st == UPSTREAM_OK ? "passed" : u->reason[0] != '\0' ? u->reason :
	    http_error_details(upstream_outcomes[st].error));
	TAILQ_REMOVE(&a->list, u, alone_entry);
	a->n--;
	upstream_free(u);
}

/*
 * max handshakes run alone already: u's verdict is lost. Said at warn
 * level, the first time and then at most once a minute with the count.
 */
static void
upstream_abandon(struct upstream_alone *a, struct upstream *u)
{
	struct logline	 l;
	long long	 now = (long long)monotime_us();

	a->abandoned++;
	if (a->warned_us != 0 && now - a->warned_us <
	    UPSTREAM_ABANDONED_LOG_SECONDS * 1000000LL) {
		log_msg(EV_DEBUG, "client %s is gone: the upstream handshake "
		    "for %s:%u is abandoned", u->client, u->host, u->port);
	} else {
		log_begin(&l, EV_CHECK_ABANDONED);
		log_str(&l, LK_HOST, u->host);
		log_int(&l, LK_PORT, u->port);
		log_str(&l, LK_CLIENT, u->client);
		log_int(&l, LK_COUNT, (long long)a->abandoned);
		log_str(&l, LK_MSG, "the client is gone and max_connections "
		    "handshakes run on without theirs: this one's verdict is "
		    "not waited for");
		log_end(&l);
		a->warned_us = now;
		a->abandoned = 0;
	}
	upstream_free(u);
}

void
upstream_release(struct upstream *u)
{
	struct upstream_alone	*a;

	if (u == NULL)
		return;
	a = u->sinks->alone;
	if (u->state != UPSTREAM_HANDSHAKING || a == NULL || a->closed) {
		upstream_free(u);
		return;
	}
	if (a->n >= a->max) {
		upstream_abandon(a, u);
		return;
	}
	log_msg(EV_DEBUG, "client %s is gone: the upstream handshake for "
	    "%s:%u runs on alone to its verdict", u->client, u->host,
	    u->port);
	u->cb = upstream_alone_done_cb;
	u->arg = a;
	TAILQ_INSERT_TAIL(&a->list, u, alone_entry);
	a->n++;
}

struct upstream_alone *
upstream_alone_new(void)
{
	struct upstream_alone	*a;

	a = xcalloc(1, sizeof(*a));
	TAILQ_INIT(&a->list);
	return a;
}

void
upstream_alone_set_max(struct upstream_alone *a, size_t max)
{
	a->max = max;
}

void
upstream_alone_close(struct upstream_alone *a)
{
	struct upstream	*u;

	if (a == NULL)
		return;
	a->closed = true;
	while ((u = TAILQ_FIRST(&a->list)) != NULL) {
		TAILQ_REMOVE(&a->list, u, alone_entry);
		a->n--;
		upstream_free(u);
	}
}

void
upstream_alone_free(struct upstream_alone *a)
{
	upstream_alone_close(a);
	free(a);
}

void
upstream_free(struct upstream *u)
{
	if (u == NULL)
		return;
	if (u->dns_req != NULL)
		evdns_getaddrinfo_cancel(u->dns_req);
	if (u->addrs != NULL)
		evutil_freeaddrinfo(u->addrs);
	upstream_attempts_end(u);
	if (u->stagger != NULL)
		event_free(u->stagger);
	upstream_ahead_drop(u);
	/*
	 * Bytes still queued for the server never reach it: a FIN after
	 * part of them could pass for the whole (a request's end, say).
	 */
	if (u->bev != NULL && u->fd != -1 &&
	    evbuffer_get_length(bufferevent_get_output(u->bev)) > 0)
		linger_reset(u->fd);
	/* The bufferevent first: it stops using the others at once. */
	if (u->bev != NULL)
		bufferevent_free(u->bev);
	SSL_free(u->ssl);
	/* What the server has not taken yet is still its own (linger.h). */
	if (u->fd != -1)
		linger_close_server(u->base, u->fd,
		    u->rc->conf->idle_timeout_ms);
	if (u->timer != NULL)
		event_free(u->timer);
	if (u->kick != NULL)
		event_free(u->kick);
	runconf_unref(u->rc);
	free(u);
}

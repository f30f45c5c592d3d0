/*
 * The daemon: event base, resolver, listeners, signals, reloads and the
 * graceful stop. It owns the current configuration generation; each
 * connection keeps a reference to the one it started under.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <netinet/in.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/rand.h>

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf_parse.h"
#include "conn.h"
#include "backlog.h"
#include "ca.h"
#include "dialring.h"
#include "evloop.h"
#include "hostport.h"
#include "linger.h"
#include "log.h"
#include "logsink.h"
#include "metrics.h"
#include "monotime.h"
#include "notify.h"
#include "pool.h"
#include "proxy.h"
#include "observe.h"
#include "report.h"
#include "resolve.h"
#include "runconf.h"
#include "stats.h"
#include "tcpfwd.h"
#include "throttle.h"
#include "intercept.h"
#include "version.h"
#include "xmalloc.h"

/* How long accepting pauses after running out of descriptors. */
#define PROXY_EMFILE_PAUSE	1
/*
 * Freed memory goes back once handshakes and closes have paused this many
 * milliseconds, and at the latest this long after the first of them.
 */
#define PROXY_TRIM_QUIET_MS	250
#define PROXY_TRIM_MAX_MS	5000
/* Pin sets expiring within this many days are logged ... */
#define PROXY_EXPIRING_DAYS	30
/* ... at start, on reload and then every this many seconds. */
#define PROXY_EXPIRING_PERIOD	86400
/*
 * What a stop may take beyond shutdown_timeout (the last closes, the
 * teardown), in the EXTEND_TIMEOUT_USEC it tells the service manager.
 */
#define PROXY_STOP_SLACK_MS	10000

/*
 * Descriptors one connection may hold: its client and its upstream (up
 * to UPSTREAM_ATTEMPTS of them while it is dialled), an idle pooled
 * upstream, a blind tunnel's two pipes for splice (two ends
 * each), an upstream handshake left running alone once its client is
 * gone (upstream_release()), and a socket towards its server waiting
 * for the server after it (linger_close_server(), max_connections of
 * them); and those beside them (listeners, the log, report and observe
 * files, DNS).
 */
#define PROXY_FDS_PER_CONN	9
#define PROXY_FDS_SPARE		64

struct proxy {
	struct event_base	 *base;
	struct evdns_base	 *dns;
	struct runconf		 *rc;		/* the current generation */
	unsigned long		  generation;
	const char		 *path;
	bool			  debug;
	struct conn_env		  env;
	struct conf_addr	 *listen;	/* as bound at start */
	size_t			  nlisten;	/* listen, then transparent */
	size_t			  nplain;	/* of them, listen */
	/* What loops are checked against: listen, then the stats address. */
	struct conf_addr	 *self;
	size_t			  nself;
	struct evconnlistener	**listeners;
	struct event		 *sighup;
	struct event		 *sigterm;
	struct event		 *sigint;
	struct event		 *resume_ev;	/* after EMFILE */
	struct event		 *stop_ev;	/* shutdown_timeout */
	struct event		 *reload_ev;	/* SIGHUPs, merged */
	struct event		 *trim_ev;	/* give freed memory back */
	long long		  trim_first;	/* µs, monotonic: churn began */
	struct event		 *expiring_ev;	/* daily expiry log */
	struct metrics		 *metrics;
	struct stats		 *stats;	/* NULL: no stats_listen */
	struct tcpfwd		 *fwd;		/* [forward:] listeners */
	bool			  paused;
	bool			  fd_short;	/* paused for want of fds */
	unsigned		  fd_warned;	/* max_connections warned of */
	bool			  stopping;
	bool			  stopped;	/* event=stopped logged */
};

void
proxy_log_warnings(const struct diag *d)
{
	size_t	 i;

	for (i = 0; i < diag_count(d); i++)
		if (diag_severity(d, i) == DIAG_WARNING)
			log_msg(EV_CONFIG_WARNING, "%s", diag_text(d, i));
}

/* Stop or restart accepting on every listener; why NULL: say nothing. */
static void
proxy_set_accepting(struct proxy *p, bool on, const char *why)
{
	size_t	 i;

	if (p->stopping || on == !p->paused)
		return;
	for (i = 0; i < p->nlisten; i++) {
		if (on)
			evconnlistener_enable(p->listeners[i]);
		else
			evconnlistener_disable(p->listeners[i]);
	}
	tcpfwd_set_accepting(p->fwd, on);
	p->paused = !on;
	if (why != NULL)
		log_msg(on ? EV_ACCEPT_RESUMED : EV_ACCEPT_PAUSED, "%s", why);
}

/*
 * The end of every stop: close what is still open (cut=, how many
 * connections that cuts short: idle ones, and those whose end reached
 * their client, close in order), log event=stopped once, leave the loop.
 */
static void
proxy_stopped(struct proxy *p, const char *reason)
{
	struct logline	 l;
	size_t		 cut;

	if (p->stopped)
		return;
	p->stopped = true;
	cut = conn_close_all(&p->env);
	cut += tcpfwd_close_all(p->fwd);
	evtimer_del(p->expiring_ev);
	log_begin(&l, EV_STOPPED);
	log_str(&l, LK_REASON, reason);
	log_int(&l, LK_CUT, (long long)cut);
	log_end(&l);
	event_base_loopexit(p->base, NULL);
}

static void	proxy_trim_soon(void *);

/*
 * Accept while fewer than max_connections are open, not at or over it:
 * after a connection came or went, or a reload changed the limit.
 */
static void
proxy_follow_limit(struct proxy *p)
{
	if (p->env.nconns >= p->rc->conf->max_connections)
		proxy_set_accepting(p, false, "max_connections reached");
	else if (p->paused)
		proxy_set_accepting(p, true, p->fd_short ? NULL :
		    "below max_connections");
}

/*
 * Raise the soft descriptor limit to what max_connections may take,
 * within the hard limit (a shell's ulimit -n of 1024 would otherwise stop
 * accepts at EMFILE with as few as 140 connections); warn, once for each
 * max_connections in a row, when the hard limit is short of it.
 */
static void
proxy_fd_limit(struct proxy *p, unsigned max)
{
	struct rlimit	 rl;
	struct logline	 l;
	rlim_t		 need;
	char		 hint[160];

	need = (rlim_t)max * PROXY_FDS_PER_CONN + PROXY_FDS_SPARE;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
		    rl.rlim_max >= need ? need : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1 &&
		    getrlimit(RLIMIT_NOFILE, &rl) == -1)
			return;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) {
		p->fd_warned = 0;	/* a later shortage is told again */
		return;
	}
	if (p->fd_warned == max)
		return;
	p->fd_warned = max;
	snprintf(hint, sizeof(hint), "max_connections = %u may take %llu "
	    "descriptors: raise LimitNOFILE or ulimit -n", max,
	    (unsigned long long)need);
	log_begin(&l, EV_FD_LIMIT);
	log_int(&l, LK_COUNT, (long long)rl.rlim_cur);
	log_str(&l, LK_HINT, hint);
	log_end(&l);
}

/* A connection closed: accept again if we had stopped, or finish. */
static void
proxy_conn_closed(void *arg)
{
	struct proxy	*p = arg;

	if (p->stopping) {
		if (p->env.nconns == 0)
			proxy_stopped(p, "connections finished");
		return;
	}
	proxy_follow_limit(p);
	proxy_trim_soon(p);
}

/*
 * A connection's handshakes ended (its relay started) or it closed: both
 * free memory in bulk (a TLS handshake's buffers, a connection's state)
 * that malloc keeps resident inside its heap. It goes back to the system
 * once such churn pauses, or PROXY_TRIM_MAX_MS after it began, so that a
 * daemon holding idle connections after a burst, or none, does not keep
 * the burst's memory resident for months.
 */
static void
proxy_trim_soon(void *arg)
{
	struct proxy	*p = arg;
	struct timeval	 quiet = { 0, PROXY_TRIM_QUIET_MS * 1000 };

	if (!evtimer_pending(p->trim_ev, NULL))
		p->trim_first = (long long)monotime_us();
	else if ((long long)monotime_us() - p->trim_first >=
	    PROXY_TRIM_MAX_MS * 1000LL)
		return;
	evtimer_add(p->trim_ev, &quiet);
}

static void
proxy_trim_cb(evutil_socket_t fd, short what, void *arg)
{
	long long	 t0 = (long long)monotime_us();
	int		 freed = malloc_trim(0);

	log_msg(EV_DEBUG, "freed memory given back to the system: %s, in "
	    "%lld us", freed ? "some" : "none", (long long)monotime_us() - t0);
}

/* A client was accepted (by the proxy or a forwarder). */
static void
proxy_accepted(void *arg)
{
	struct proxy	*p = arg;

	if (p->fd_short) {
		/* The retries were quiet: say once that it is over. */
		p->fd_short = false;
		log_msg(EV_ACCEPT_RESUMED, "file descriptors available again");
	}
	proxy_follow_limit(p);
}

static void
proxy_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct proxy	*p = arg;

	conn_new(&p->env, fd, sa, (socklen_t)salen);
	proxy_accepted(p);
}

static void
proxy_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy	*p = arg;

	/* A quiet retry: accept_resumed comes with the first success. */
	if (p->env.nconns < p->rc->conf->max_connections)
		proxy_set_accepting(p, true, NULL);
}

/*
 * accept() failed on a listener of the proxy or of a forwarder: out of
 * descriptors pauses every listener (a level-triggered one would else
 * spin), the rest is logged.
 */
static void
proxy_accept_failed(void *arg)
{
	struct proxy	*p = arg;
	struct timeval	 tv = { PROXY_EMFILE_PAUSE, 0 };
	int		 err = EVUTIL_SOCKET_ERROR();

	if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM) {
		/* Logged once per shortage, not at every retry. */
		proxy_set_accepting(p, false, p->fd_short ? NULL :
		    strerror(err));
		p->fd_short = true;
		evtimer_add(p->resume_ev, &tv);
		return;
	}
	log_msg(EV_DEBUG, "accept: %s", strerror(err));
}

static void
proxy_accept_error_cb(struct evconnlistener *l, void *arg)
{
	proxy_accept_failed(arg);
}

/* A client the kernel redirected to a transparent listener. */
static void
proxy_transparent_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct proxy	*p = arg;

	conn_new_transparent(&p->env, fd, sa, (socklen_t)salen);
	proxy_accepted(p);
}

/* Address i of conf's proxy listeners: listen, then transparent. */
static const struct conf_addr *
proxy_listen_addr(const struct conf *conf, size_t i)
{
	return i < conf->nlisten ? &conf->listen[i] :
	    &conf->transparent[i - conf->nlisten];
}

/* Bind every listen address; false with a logged error on failure. */
/*
 * Whether a listener's IPv6 socket was bound IPv6-only (the system's
 * net.ipv6.bindv6only decides, as nothing sets it): its wildcard then
 * takes no IPv4 client, and dialling an IPv4 address is no loop.
 */
static bool
proxy_bound_v6only(struct evconnlistener *l)
{
	evutil_socket_t	 fd = evconnlistener_get_fd(l);
	int		 on = 0;
	socklen_t	 len = sizeof(on);

	if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, &len) == -1)
		return false;
	return on != 0;
}

/*
 * A transparent listener: also IP_TRANSPARENT (IPV6_TRANSPARENT), so that
 * nftables' tproxy can hand it connections to any address; without
 * CAP_NET_ADMIN only redirect works, which the debug log says.
 */
static struct evconnlistener *
proxy_listen_transparent(struct proxy *p, const struct conf_addr *a)
{
	struct evconnlistener	*l;
	evutil_socket_t		 fd;
	int			 one = 1, v6 = a->ss.ss_family == AF_INET6;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1)
		return NULL;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ==
	    -1 || bind(fd, (const struct sockaddr *)&a->ss, a->sslen) == -1)
		goto fail;
	if (setsockopt(fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_TRANSPARENT :
	    IP_TRANSPARENT, &one, sizeof(one)) == -1)
		log_msg(EV_DEBUG, "transparent %s: no %s (%s): nftables "
		    "redirect works, tproxy does not", a->text,
		    v6 ? "IPV6_TRANSPARENT" : "IP_TRANSPARENT",
		    strerror(errno));
	l = evconnlistener_new(p->base, proxy_transparent_accept_cb, p,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 511, fd);
	if (l != NULL)
		return l;
fail:
	one = errno;
	close(fd);
	errno = one;
	return NULL;
}

static bool
proxy_listen(struct proxy *p)
{
	const struct conf	*conf = p->rc->conf;
	const struct conf_addr	*a;
	char			 err[1024];
	size_t			 i, n = conf->nlisten + conf->ntransparent;

	p->nlisten = n;
	p->nplain = conf->nlisten;
	p->listen = xcalloc(n, sizeof(*p->listen));
	p->listeners = xcalloc(n, sizeof(*p->listeners));
	for (i = 0; i < n; i++) {
		a = proxy_listen_addr(conf, i);
		p->listen[i] = *a;
		if (i >= conf->nlisten)
			p->listeners[i] = proxy_listen_transparent(p, a);
		else
			p->listeners[i] = evconnlistener_new_bind(p->base,
			    proxy_accept_cb, p, LEV_OPT_CLOSE_ON_FREE |
			    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 511,
			    (const struct sockaddr *)&a->ss, (int)a->sslen);
		if (p->listeners[i] == NULL) {
			snprintf(err, sizeof(err), "cannot listen on %s: %s",
			    a->text, strerror(errno));
			conf_locate(conf, a->line, err, sizeof(err));
			log_msg(EV_START_FAILED, "%s", err);
			return false;
		}
		evconnlistener_set_error_cb(p->listeners[i],
		    proxy_accept_error_cb);
		p->listen[i].v6only = proxy_bound_v6only(p->listeners[i]);
	}
	/* One more slot, for the stats address (proxy_self_update). */
	p->self = xcalloc(n + 1, sizeof(*p->self));
	memcpy(p->self, p->listen, n * sizeof(*p->self));
	p->nself = n;
	p->env.listen = p->self;
	p->env.nlisten = p->nself;
	return true;
}

/*
 * The stats listener is ours too: a request to it through the proxy is a
 * loop. The array keeps its size, so an upstream that borrowed it before
 * a reload reads valid memory.
 */
static void
proxy_self_update(struct proxy *p)
{
	struct conf_addr	*a = &p->self[p->nself];
	struct sockaddr_in	*sin = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&a->ss;

	p->env.nlisten = p->nself;
	if (p->stats == NULL)
		return;
	*a = p->rc->conf->stats_listen;
	a->v6only = a->ss.ss_family == AF_INET6;	/* stats_relisten */
	/* The port bound, when stats_listen asked for port 0. */
	if (a->ss.ss_family == AF_INET)
		sin->sin_port = htons(stats_port(p->stats));
	else
		sin6->sin6_port = htons(stats_port(p->stats));
	cv_sockaddr_text((struct sockaddr *)&a->ss, a->text, sizeof(a->text));
	p->env.nlisten = p->nself + 1;
}

/* Whether a new configuration asks for other listen or transparent ones. */
static bool
proxy_listen_changed(const struct proxy *p, const struct conf *c)
{
	size_t	 i;

	if (c->nlisten + c->ntransparent != p->nlisten)
		return true;
	for (i = 0; i < p->nlisten; i++)
		if (strcmp(proxy_listen_addr(c, i)->text, p->listen[i].text) !=
		    0)
			return true;
	return false;
}

/* Refresh the gauges that live elsewhere before /metrics is rendered. */
static void
proxy_stats_refresh_cb(struct metrics *m, void *arg)
{
	struct proxy	*p = arg;

	metrics_set(m, METRIC_UPSTREAM_POOL_IDLE, pool_count(p->env.pool));
	metrics_set(m, METRIC_UPSTREAM_POOL_IN_USE, pool_in_use(p->env.pool));
	metrics_set_pinset_expiry(m, p->rc->conf, time(NULL));
}

/* allow_clients of the current generation applies to /metrics too. */
static bool
proxy_stats_allow_cb(const struct sockaddr *sa, void *arg)
{
	struct proxy	*p = arg;

	return conf_client_allowed(p->rc->conf, sa);
}

/* Put FILE:LINE of the key of conf that err is about (if set) before it. */
static void
proxy_locate(const struct conf *conf, char *err, size_t errlen)
{
	conf_locate(conf, conf_error_line(conf, err), err, errlen);
}

/* Open what report_file and stats_listen of conf ask for (NULL: none). */
static bool
proxy_open_outputs(struct proxy *p, const struct conf *conf,
    struct report **report, struct stats **stats, char *err, size_t errlen)
{
	*report = NULL;
	*stats = NULL;
	if (conf->report_file != NULL &&
	    (*report = report_open(conf->report_file, err, errlen)) == NULL)
		return false;
	if (conf->has_stats_listen) {
		*stats = stats_new(p->base, &conf->stats_listen, p->metrics, err,
		    errlen);
		if (*stats == NULL) {
			conf_locate(conf, conf->stats_listen.line, err, errlen);
			report_discard(*report);
			*report = NULL;
			return false;
		}
		stats_set_refresh(*stats, proxy_stats_refresh_cb, p);
		stats_set_allow(*stats, proxy_stats_allow_cb, p);
	}
	return true;
}

/*
 * Whether the old stats listener holds the port of the new address a: a
 * wildcard and a specific address of one port cannot both be bound.
 */
static bool
proxy_stats_same_port(const struct proxy *p, const struct conf_addr *a)
{
	uint16_t	 port = hostport_sockaddr_port((const struct sockaddr *)
			    &a->ss);

	return p->stats != NULL && port != 0 && port == stats_port(p->stats);
}

/*
 * The old stats listener, closed for a reload that then failed, listens
 * on its address again.
 */
static void
proxy_stats_restore(struct proxy *p)
{
	const struct conf_addr	*a = &p->rc->conf->stats_listen;
	char			 err[256];

	if (stats_relisten(p->stats, a, err, sizeof(err)))
		return;
	log_msg(EV_CONFIG_WARNING, "stats_listen: %s; /metrics is not served "
	    "until a reload", err);
}

/*
 * The outputs a reload wants: the same report file is reopened (log
 * rotation), a changed one opened anew; the stats listener is replaced
 * only when its address changed. Nothing is swapped on failure; a stats
 * listener closed so that the new one could take its port (*moved) is
 * the caller's to restore.
 */
static bool
proxy_reload_outputs(struct proxy *p, const struct conf *conf,
    struct report **report, struct stats **stats, bool *keep_stats,
    bool *moved, char *err, size_t errlen)
{
	const struct conf	*old = p->rc->conf;
	struct report		*cur = p->env.sinks.report;

	*report = NULL;
	*stats = NULL;
	*keep_stats = (old->has_stats_listen == conf->has_stats_listen) &&
	    (!conf->has_stats_listen ||
	    strcmp(old->stats_listen.text, conf->stats_listen.text) == 0);
	if (conf->report_file != NULL && cur != NULL &&
	    strcmp(report_path(cur), conf->report_file) == 0) {
		if (!report_reopen(cur, err, errlen))
			return false;
		*report = cur;
	} else if (conf->report_file != NULL &&
	    (*report = report_open(conf->report_file, err, errlen)) == NULL)
		return false;
	if (!*keep_stats && conf->has_stats_listen) {
		/* Another address: the old listener serves until the swap. */
		*stats = stats_new(p->base, &conf->stats_listen, p->metrics,
		    err, errlen);
		/* Unless it holds the port: then it closes first. */
		if (*stats == NULL && errno == EADDRINUSE &&
		    proxy_stats_same_port(p, &conf->stats_listen)) {
			stats_unlisten(p->stats);
			*moved = true;
			*stats = stats_new(p->base, &conf->stats_listen,
			    p->metrics, err, errlen);
		}
		/* The caller closes a new *report, once. */
		if (*stats == NULL) {
			conf_locate(conf, conf->stats_listen.line, err, errlen);
			return false;
		}
		stats_set_refresh(*stats, proxy_stats_refresh_cb, p);
		stats_set_allow(*stats, proxy_stats_allow_cb, p);
	}
	return true;
}

/*
 * Log event=pinset_expiring for every enforced pin set whose expires date
 * is at most PROXY_EXPIRING_DAYS away, with ca a warning if the CA expires
 * within as many days (or has), and arm the next day's check. The start,
 * and a reload that loaded a CA, warned of theirs already.
 */
static void
proxy_log_expiring(struct proxy *p, bool ca)
{
	const struct conf	*c = p->rc->conf;
	const struct pinset	*ps;
	struct timeval		 tv = { PROXY_EXPIRING_PERIOD, 0 };
	struct logline		 l;
	time_t			 now = time(NULL);
	size_t			 i;
	long			 days;
	char			 text[512];

	for (i = 0; i < c->npinsets; i++) {
		ps = &c->pinsets[i];
		if (!ps->enforce || !ps->has_expires ||
		    pinset_expired(ps, now))
			continue;
		if ((days = pinset_days_left(ps, now)) > PROXY_EXPIRING_DAYS)
			continue;
		log_begin(&l, EV_PINSET_EXPIRING);
		log_str(&l, LK_PINSET, ps->name);
		log_int(&l, LK_DAYS, days);
		log_str(&l, LK_EXPIRES, ps->expires_text);
		log_end(&l);
	}
	if (ca && ca_expiry_warning(p->rc->ca, c->ca_cert, now, text,
	    sizeof(text)))
		log_msg(EV_CONFIG_WARNING, "interception CA: %s", text);
	/* A reload starts the day over, so the timer is re-armed. */
	evtimer_add(p->expiring_ev, &tv);
}

/* The daily timer of the expiry log. */
static void
proxy_expiring_cb(evutil_socket_t fd, short what, void *arg)
{
	proxy_log_expiring(arg, true);
}

/*
 * The observe_file a configuration wants: the current one reopened when
 * the path is the same (log rotation; the day's memory stays), a new one
 * otherwise, NULL when unset. False with err when it cannot be opened.
 */
static bool
proxy_observe_for(struct observe *cur, const struct conf *conf,
    struct observe **out, char *err, size_t errlen)
{
	*out = NULL;
	if (conf->observe_file == NULL)
		return true;
	if (cur != NULL && strcmp(observe_path(cur), conf->observe_file) == 0) {
		*out = cur;
		return observe_reopen(cur, err, errlen);
	}
	*out = observe_open(conf->observe_file, err, errlen);
	return *out != NULL;
}

/* SIGHUP: read the file again; keep the old generation on any error. */
static void
proxy_reload(struct proxy *p)
{
	struct diag	*d;
	struct conf	*conf;
	struct runconf	*rc;
	struct report	*report = NULL;
	struct observe	*observe = NULL;
	struct stats	*stats = NULL;
	struct logline	 l;
	char		 err[512];
	bool		 keep_stats = true, stats_moved = false, ca_kept;

	notify_sendf("RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)monotime_us());
	d = diag_new();
	conf = conf_parse_file(p->path, time(NULL), d);
	rc = NULL;
	/* The first error, and how many more pinproxy -t would list. */
	if (conf == NULL && diag_errors(d) > 1)
		snprintf(err, sizeof(err), "%s (and %zu more error%s: "
		    "pinproxy -t lists them)", diag_first_error(d),
		    diag_errors(d) - 1, diag_errors(d) > 2 ? "s" : "");
	else if (conf == NULL)
		snprintf(err, sizeof(err), "%s", diag_first_error(d) != NULL ?
		    diag_first_error(d) : "cannot read the configuration");
	/*
	 * The generation last: it may create a CA, which a reload that
	 * fails must not leave behind (nor log as created).
	 */
	else if (!proxy_reload_outputs(p, conf, &report, &stats, &keep_stats,
	    &stats_moved, err, sizeof(err)) ||
	    !upstream_mark_check(conf->upstream_mark, err, sizeof(err)) ||
	    !tcpfwd_prepare(p->fwd, conf, err, sizeof(err)) ||
	    !proxy_observe_for(p->env.sinks.observe, conf, &observe, err,
	    sizeof(err)) ||
	    (rc = runconf_new(conf, p->generation + 1, p->rc, err,
	    sizeof(err))) == NULL) {
		tcpfwd_abort(p->fwd);
		/* A file the failed reload made goes again. */
		if (report != p->env.sinks.report)
			report_discard(report);
		if (observe != p->env.sinks.observe)
			observe_discard(observe);
		stats_free(stats);
		if (stats_moved)
			proxy_stats_restore(p);
		runconf_unref(rc);
		rc = NULL;
		proxy_locate(conf, err, sizeof(err));
	}
	if (rc == NULL) {
		metrics_inc(p->metrics, METRIC_CONFIG_RELOADS_FAILED);
		log_begin(&l, EV_RELOAD_FAILED);
		log_str(&l, LK_FILE, p->path);
		log_str(&l, LK_ERROR, err);
		log_end(&l);
	} else {
		if (!p->debug)
			log_open(conf->log, conf->log_level);
		proxy_log_warnings(d);
		tcpfwd_commit(p->fwd);
		if (proxy_listen_changed(p, conf))
			log_msg(EV_CONFIG_WARNING, "listen and transparent "
			    "addresses change only on restart; still listening "
			    "on the old ones");
		/* A file saved half-way, most likely: say what it means. */
		if (conf->npinsets == 0 && p->rc->conf->npinsets > 0)
			log_msg(EV_CONFIG_WARNING, "the configuration has no pin "
			    "set now (%zu before): every host follows unpinned = "
			    "%s", p->rc->conf->npinsets,
			    conf_unpinned_name(conf->unpinned));
		if (p->env.sinks.report != report)
			report_close(p->env.sinks.report);
		p->env.sinks.report = report;
		if (p->env.sinks.observe != observe)
			observe_close(p->env.sinks.observe);
		p->env.sinks.observe = observe;
		if (!keep_stats) {
			stats_free(p->stats);
			p->stats = stats;
		}
		metrics_inc(p->metrics, METRIC_CONFIG_RELOADS_OK);
		ca_kept = rc->ca == p->rc->ca;
		p->generation++;
		runconf_retire(p->rc);
		runconf_unref(p->rc);
		p->rc = rc;
		proxy_self_update(p);
		/* A new max_connections counts at once, both ways. */
		proxy_follow_limit(p);
		resolve_reload(p->base, p->dns);
		resolve_set_capacity(p->dns, conf->max_connections);
		proxy_fd_limit(p, conf->max_connections);
		linger_set_servers_max(conf->max_connections);
		/*
		 * Nothing checked under the old configuration is reused: the
		 * next request of every connection takes the new generation,
		 * and upstreams of the old one are closed, never kept.
		 */
		p->env.rc = rc;
		pool_set_generation(p->env.pool, rc->generation);
		pool_set_max_idle(p->env.pool, conf->max_connections);
		upstream_alone_set_max(p->env.sinks.alone,
		    conf->max_connections);
		/* Nor is a key it denies used a moment longer. */
		conn_recheck_all(&p->env);
		tcpfwd_recheck_all(p->fwd);
		log_begin(&l, EV_RELOADED);
		log_int(&l, LK_PINSETS, (long long)conf->npinsets);
		log_end(&l);
		proxy_log_expiring(p, ca_kept);
	}
	conf_unref(conf);
	diag_free(d);
	notify_sendf("READY=1\nSTATUS=%zu pin sets, %zu connections",
	    p->rc->conf->npinsets, p->env.nconns);
}

/* SIGTERM/SIGINT: stop accepting; let open connections finish. */
static void
proxy_stop(struct proxy *p)
{
	struct timeval	 tv = cv_timeval(p->rc->conf->shutdown_timeout_ms);
	size_t		 i;

	if (p->stopping) {
		/* A second signal: do not wait any longer. */
		proxy_stopped(p, "second signal");
		return;
	}
	/*
	 * What the kernel queued is taken in first, as if accepted now
	 * (past max_connections: no more will follow), from every listener
	 * before any closes: each one taken may pause or resume them all.
	 * Then the sockets close; those connections would else be reset.
	 */
	for (i = 0; i < p->nlisten; i++)
		backlog_take(p->listeners[i], i < p->nplain ?
		    proxy_accept_cb : proxy_transparent_accept_cb, p);
	tcpfwd_take_queued(p->fwd);
	for (i = 0; i < p->nlisten; i++) {
		evconnlistener_free(p->listeners[i]);
		p->listeners[i] = NULL;
	}
	p->nlisten = 0;
	tcpfwd_stop_listening(p->fwd);
	/* Logged once new connections are refused: the line says so. */
	log_msg(EV_STOPPING, "%zu connections open", p->env.nconns);
	/*
	 * The service manager's stop timeout (TimeoutStopSec) must not end
	 * the wait for open connections before shutdown_timeout does.
	 */
	notify_sendf("STOPPING=1\nEXTEND_TIMEOUT_USEC=%llu",
	    (unsigned long long)(p->rc->conf->shutdown_timeout_ms +
	    PROXY_STOP_SLACK_MS) * 1000ULL);
	p->stopping = true;
	/* No verdict is waited for that no client waits for. */
	upstream_alone_close(p->env.sinks.alone);
	conn_shutdown_all(&p->env);
	if (p->env.nconns == 0) {
		proxy_stopped(p, "connections finished");
		return;
	}
	evtimer_add(p->stop_ev, &tv);
}

static void
proxy_stop_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy	*p = arg;

	proxy_stopped(p, "shutdown_timeout");
}

static void
proxy_reload_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy	*p = arg;

	if (!p->stopping)
		proxy_reload(p);
}

/*
 * SIGHUPs that arrive together (a storm, or during a slow reload) make
 * one reload, on the loop's next turn: the configuration is read once,
 * not once per signal, and a stop is not queued behind them.
 */
static void
proxy_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct proxy	*p = arg;
	struct timeval	 now = { 0, 0 };

	if (sig == SIGHUP) {
		if (!p->stopping)
			evtimer_add(p->reload_ev, &now);
		return;
	}
	evtimer_del(p->reload_ev);
	proxy_stop(p);
}

/*
 * The Via value this process adds to forwarded requests: a random token,
 * so that a request coming back (a loop through DNS or another spelling
 * of our address) is recognised, and another pinproxy in a chain is not.
 */
static void
proxy_via(char *buf, size_t len)
{
	unsigned char	 r[4];

	if (RAND_bytes(r, sizeof(r)) != 1)
		memset(r, 0, sizeof(r));
	snprintf(buf, len, "1.1 pinproxy-%02x%02x%02x%02x", r[0], r[1], r[2],
	    r[3]);
}

/*
 * The event loop. With the epoll changelist, changes to a descriptor's
 * events within one turn of the loop are applied once, just before the
 * next poll: an event disabled and enabled again in the same turn costs
 * nothing. pinproxy never dup(2)s a watched descriptor,
 * which is what the changelist cannot follow.
 */
static struct event_base *
proxy_base(void)
{
	struct event_config	*cfg;
	struct event_base	*base;

	if ((cfg = event_config_new()) == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

/* Append the text of n addresses, comma-separated, to buf (*o used). */
static void
proxy_addrs_text(const struct conf_addr *a, size_t n, char *buf, size_t len,
    size_t *o)
{
	size_t	 i;

	for (i = 0; i < n && *o < len; i++)
		*o += (size_t)snprintf(buf + *o, len - *o, "%s%s",
		    *o > 0 ? "," : "", a[i].text);
}

/* busy_poll of the generation in force, read before every pass. */
static uint64_t
proxy_busy_poll(void *arg)
{
	struct proxy	*p = arg;

	return p->rc->conf->busy_poll_us;
}

/*
 * Log "started" (the proxy's and transparent addresses, then the
 * forwarders' and the stats address when there are any) and tell systemd.
 */
static void
proxy_started(struct proxy *p)
{
	const struct conf	*conf = p->rc->conf;
	struct logline		 l;
	char			 addrs[1024], fwd[1024];
	size_t			 i, o = 0, fo = 0;

	addrs[0] = fwd[0] = '\0';
	proxy_addrs_text(p->listen, p->nlisten, addrs, sizeof(addrs), &o);
	for (i = 0; i < conf->nforwarders; i++)
		proxy_addrs_text(conf->forwarders[i].listen,
		    conf->forwarders[i].nlisten, fwd, sizeof(fwd), &fo);
	log_begin(&l, EV_STARTED);
	log_str(&l, LK_LISTEN, addrs);
	if (fo > 0)
		log_str(&l, LK_FORWARD, fwd);
	if (conf->has_stats_listen)
		log_str(&l, LK_STATS, conf->stats_listen.text);
	log_str(&l, LK_VERSION, version_string());
	log_int(&l, LK_PINSETS, (long long)conf->npinsets);
	log_end(&l);
	proxy_log_expiring(p, false);
	notify_sendf("READY=1\nSTATUS=listening on %s, %zu pin sets", addrs,
	    conf->npinsets);
}

/* Free what proxy_main set up (every field may be NULL). */
static void
proxy_teardown(struct proxy *p)
{
	size_t	 i;

	conn_close_all(&p->env);
	tcpfwd_free(p->fwd);
	upstream_alone_free(p->env.sinks.alone);
	for (i = 0; i < p->nlisten; i++)
		if (p->listeners[i] != NULL)
			evconnlistener_free(p->listeners[i]);
	free(p->listeners);
	free(p->listen);
	free(p->self);
	pool_free(p->env.pool);
	/* The closes above may have left server sockets waiting. */
	linger_close_servers();
	stats_free(p->stats);
	report_close(p->env.sinks.report);
	observe_close(p->env.sinks.observe);
	throttle_free(p->env.sinks.mismatch_log);
	dialring_free(p->env.sinks.dials);
	intercept_env_free(p->env.intercept);
	if (p->sighup != NULL)
		event_free(p->sighup);
	if (p->sigterm != NULL)
		event_free(p->sigterm);
	if (p->sigint != NULL)
		event_free(p->sigint);
	if (p->resume_ev != NULL)
		event_free(p->resume_ev);
	if (p->stop_ev != NULL)
		event_free(p->stop_ev);
	if (p->reload_ev != NULL)
		event_free(p->reload_ev);
	if (p->trim_ev != NULL)
		event_free(p->trim_ev);
	if (p->expiring_ev != NULL)
		event_free(p->expiring_ev);
	if (p->dns != NULL)
		evdns_base_free(p->dns, 0);
	runconf_unref(p->rc);
	/* The last lines (event=stopped) go before the loop does. */
	logsink_detach();
	if (p->base != NULL)
		event_base_free(p->base);
	metrics_free(p->metrics);
}

/* The signals the event loop handles. */
static void
proxy_loop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
}

void
proxy_hold_signals(void)
{
	sigset_t	 set;

	proxy_loop_signals(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

int
proxy_main(struct conf *conf, const char *path, bool debug)
{
	sigset_t	 held;
	struct proxy	 p;
	char		 err[512];
	int		 rc = 1;

	memset(&p, 0, sizeof(p));
	p.path = path;
	p.debug = debug;
	p.generation = 1;
	TAILQ_INIT(&p.env.conns);
	signal(SIGPIPE, SIG_IGN);
	/* A file size limit makes a write fail (EFBIG), not the process. */
	signal(SIGXFSZ, SIG_IGN);
	/* Log rotation sends these to many daemons; they must not stop it. */
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);

	/* A CA it creates is kept, and logged, once the start succeeded. */
	if ((p.rc = runconf_new(conf, p.generation, NULL, err,
	    sizeof(err))) == NULL) {
		proxy_locate(conf, err, sizeof(err));
		log_msg(EV_START_FAILED, "%s", err);
		goto out;
	}
	if ((p.base = proxy_base()) == NULL ||
	    (p.dns = resolve_base_new(p.base)) == NULL) {
		log_msg(EV_START_FAILED, "cannot set up the event loop");
		goto out;
	}
	resolve_set_capacity(p.dns, conf->max_connections);
	proxy_fd_limit(&p, conf->max_connections);
	linger_set_servers_max(conf->max_connections);
	if ((p.env.intercept = intercept_env_new(err, sizeof(err))) == NULL) {
		log_msg(EV_START_FAILED, "%s", err);
		goto out;
	}
	p.env.base = p.base;
	p.env.rc = p.rc;
	p.env.pool = pool_new(p.base);
	pool_set_generation(p.env.pool, p.rc->generation);
	pool_set_max_idle(p.env.pool, conf->max_connections);
	proxy_via(p.env.via, sizeof(p.env.via));
	p.metrics = metrics_new();
	p.env.sinks.metrics = p.metrics;
	p.env.sinks.mismatch_log = throttle_new(THROTTLE_MISMATCH_SLOTS,
	    THROTTLE_MISMATCH_SECONDS);
	p.env.sinks.dials = dialring_new();
	p.env.sinks.current = &p.env.rc;
	p.env.sinks.alone = upstream_alone_new();
	upstream_alone_set_max(p.env.sinks.alone, conf->max_connections);
	if (!proxy_open_outputs(&p, conf, &p.env.sinks.report, &p.stats, err,
	    sizeof(err)) || !proxy_observe_for(NULL, conf,
	    &p.env.sinks.observe, err, sizeof(err))) {
		proxy_locate(conf, err, sizeof(err));
		log_msg(EV_START_FAILED, "%s", err);
		goto out;
	}
	p.env.dns = p.dns;
	p.env.closed = proxy_conn_closed;
	p.env.settled = proxy_trim_soon;
	p.env.closed_arg = &p;
	if (!upstream_mark_check(conf->upstream_mark, err, sizeof(err))) {
		proxy_locate(conf, err, sizeof(err));
		log_msg(EV_START_FAILED, "%s", err);
		goto out;
	}
	if (!proxy_listen(&p))
		goto out;
	p.fwd = tcpfwd_new(&p.env, proxy_accepted, proxy_accept_failed, &p);
	if (!tcpfwd_prepare(p.fwd, conf, err, sizeof(err))) {
		log_msg(EV_START_FAILED, "%s", err);
		goto out;
	}
	tcpfwd_commit(p.fwd);
	runconf_ca_settle(p.rc, true);
	proxy_self_update(&p);
	p.sighup = evsignal_new(p.base, SIGHUP, proxy_signal_cb, &p);
	p.sigterm = evsignal_new(p.base, SIGTERM, proxy_signal_cb, &p);
	p.sigint = evsignal_new(p.base, SIGINT, proxy_signal_cb, &p);
	p.resume_ev = evtimer_new(p.base, proxy_resume_cb, &p);
	p.stop_ev = evtimer_new(p.base, proxy_stop_timeout_cb, &p);
	p.reload_ev = evtimer_new(p.base, proxy_reload_cb, &p);
	p.trim_ev = evtimer_new(p.base, proxy_trim_cb, &p);
	p.expiring_ev = evtimer_new(p.base, proxy_expiring_cb, &p);
	evsignal_add(p.sighup, NULL);
	evsignal_add(p.sigterm, NULL);
	evsignal_add(p.sigint, NULL);
	/* Those that came during the start are handled now, in order. */
	proxy_loop_signals(&held);
	sigprocmask(SIG_UNBLOCK, &held, NULL);
	logsink_attach(p.base);
	proxy_started(&p);
	if (evloop_run(p.base, proxy_busy_poll, &p, NULL) != 0)
		log_msg(EV_LIBEVENT_ERROR, "the event loop failed");
	rc = 0;
out:
	/* A failed start leaves no new empty file, nor a new CA, behind. */
	if (rc != 0) {
		if (p.rc != NULL)
			runconf_ca_settle(p.rc, false);
		report_discard(p.env.sinks.report);
		p.env.sinks.report = NULL;
		observe_discard(p.env.sinks.observe);
		p.env.sinks.observe = NULL;
	}
	proxy_teardown(&p);
	return rc;
}

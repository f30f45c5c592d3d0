/*
 * Pinned TCP forwarders: a listener per listen address of every
 * [forward:NAME] section, and per accepted client an upstream (resolve,
 * TCP, TLS, verification and pins, all in upstream.c) then a relay. The
 * client's socket is not read before the pin verdict. Listeners whose
 * address a reload keeps stay open, with their connections.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backlog.h"
#include "linger.h"
#include "log.h"
#include "metrics.h"
#include "monotime.h"
#include "relay.h"
#include "sockprog.h"
#include "sockwatch.h"
#include "tcpfwd.h"
#include "upstream.h"
#include "xmalloc.h"

/* The access status of a relayed and of a refused connection. */
#define TCPFWD_RELAYED	200
#define TCPFWD_REFUSED	502
#define TCPFWD_LEFT	0	/* the client left during the dial */

struct tcpfwd_listener {
	struct tcpfwd		*t;
	struct evconnlistener	*l;
	struct conf_addr	 addr;
};

struct tcpfwd_conn {
	TAILQ_ENTRY(tcpfwd_conn)	 entry;
	struct tcpfwd			*t;
	struct runconf			*rc;	/* reference */
	const struct forwarder		*f;	/* borrowed from rc */
	/*
	 * The client's socket, in a bufferevent until the relay runs on
	 * the socket itself (then fd).
	 */
	struct bufferevent		*client;
	int				 fd;
	struct event			*dial_ev;	/* watches the client */
	struct upstream			*up;
	struct relay			*relay;
	struct linger_close		*linger;	/* after the relay */
	char				 addr[CONF_ADDR_TEXT_MAX];
	struct timeval			 start;
};

struct tcpfwd {
	struct conn_env			*env;	/* borrowed */
	void				(*accepted)(void *);
	void				(*accept_failed)(void *);
	void				*arg;
	struct tcpfwd_listener		**cur;
	size_t				 ncur;
	struct tcpfwd_listener		**next;	/* prepared, or NULL */
	size_t				 nnext;
	bool				 paused;
	TAILQ_HEAD(, tcpfwd_conn)	 conns;
};

/* The access line (mode=forward) and the bytes it moved. */
static void
tcpfwd_log_access(struct tcpfwd_conn *c, int status, uint64_t up,
    uint64_t down)
{
	struct logline	 l;
	struct timeval	 now, d;

	monotime_tv(&now);
	evutil_timersub(&now, &c->start, &d);
	log_begin(&l, EV_ACCESS);
	log_str(&l, LK_CLIENT, c->addr);
	log_str(&l, LK_MODE, "forward");
	log_str(&l, LK_HOST, c->f != NULL ? c->f->host : "");
	log_int(&l, LK_STATUS, status);
	log_int(&l, LK_BYTES_UP, (long long)up);
	log_int(&l, LK_BYTES_DOWN, (long long)down);
	log_int(&l, LK_MS, (long long)d.tv_sec * 1000 + d.tv_usec / 1000);
	log_end(&l);
	metrics_add(c->t->env->sinks.metrics, METRIC_BYTES_UP, up);
	metrics_add(c->t->env->sinks.metrics, METRIC_BYTES_DOWN, down);
}

/* The single teardown of a forwarded connection. */
static void
tcpfwd_conn_close(struct tcpfwd_conn *c)
{
	struct conn_env	*env = c->t->env;

	relay_free(c->relay);
	linger_free(c->linger);
	upstream_release(c->up);
	sockwatch_free(&c->dial_ev);
	if (c->client != NULL)
		bufferevent_free(c->client);
	if (c->fd != -1)
		close(c->fd);
	runconf_unref(c->rc);
	TAILQ_REMOVE(&c->t->conns, c, entry);
	free(c);
	env->nconns--;
	metrics_dec(env->sinks.metrics, METRIC_CONNECTIONS_ACTIVE);
	env->closed(env->closed_arg);
}

static void
tcpfwd_linger_done(void *arg)
{
	struct tcpfwd_conn	*c = arg;

	if (linger_stalled(c->linger))
		log_msg(EV_DEBUG, "forward %s from %s: reset, having taken "
		    "nothing the kernel held for it for idle_timeout",
		    c->f->name, c->addr);
	tcpfwd_conn_close(c);
}

/*
 * The relay is over and its client has all of it: close lingering, or,
 * when its stream was cut upstream, reset it once it took that.
 */
static void
tcpfwd_linger(struct tcpfwd_conn *c, bool cut)
{
	relay_free(c->relay);
	c->relay = NULL;
	if (cut)
		c->linger = linger_start_cut(c->t->env->base, c->fd,
		    tcpfwd_linger_done, c);
	else
		c->linger = linger_start(c->t->env->base, c->fd,
		    c->rc->conf->idle_timeout_ms, tcpfwd_linger_done, c);
	if (c->linger == NULL)
		tcpfwd_conn_close(c);
}

static void
tcpfwd_relay_done_cb(struct relay *r, const char *why, void *arg)
{
	struct tcpfwd_conn	*c = arg;
	uint64_t		 up, down;

	relay_counts(r, &up, &down);
	log_msg(EV_DEBUG, "forward %s from %s ended: %s", c->f->name, c->addr,
	    why);
	tcpfwd_log_access(c, TCPFWD_RELAYED, up, down);
	/*
	 * A client that failed, or whose stream was cut, is reset: once it
	 * took what its socket holds when the cut was upstream.
	 */
	if (!relay_client_cut(r))
		tcpfwd_linger(c, false);
	else if (relay_client_has_all(r))
		tcpfwd_linger(c, true);
	else {
		linger_reset(c->fd);
		tcpfwd_conn_close(c);
	}
}

/*
 * Cut a relaying connection (a reload denied its server's key, or
 * shutdown_timeout passed, exiting): its access line with what it moved,
 * then a reset, as a close could pass for the end of the stream; but once
 * the server's end reached the client, the client has all of it and the
 * close is in order (at the exit, without lingering). True when it was
 * reset.
 */
static bool
tcpfwd_cut(struct tcpfwd_conn *c, bool exiting)
{
	uint64_t	 up, down;
	bool		 whole = relay_down_ended(c->relay);

	relay_counts(c->relay, &up, &down);
	tcpfwd_log_access(c, TCPFWD_RELAYED, up, down);
	if (!whole)
		linger_reset(c->fd);
	else if (!exiting) {
		tcpfwd_linger(c, false);
		return false;
	} else
		linger_drain(c->fd);
	tcpfwd_conn_close(c);
	return !whole;
}

void
tcpfwd_recheck_all(struct tcpfwd *t)
{
	struct tcpfwd_conn	*c, *next;

	for (c = TAILQ_FIRST(&t->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		/* Before the relay, the verdict checks the current deny pins. */
		if (c->relay != NULL && c->rc != t->env->rc &&
		    upstream_denied_on_reload(relay_server_tls(c->relay),
		    t->env->rc, c->addr, t->env->sinks.metrics))
			tcpfwd_cut(c, false);
	}
}

/* The upstream failed (already logged there): close with nothing sent. */
static void
tcpfwd_refuse(struct tcpfwd_conn *c)
{
	tcpfwd_log_access(c, TCPFWD_REFUSED, 0, 0);
	tcpfwd_conn_close(c);
}

/*
 * Whether a reload came since the connection was accepted: its upstream
 * was dialled or judged under pins that no longer apply, and it is closed
 * before a byte is relayed (the client connects again, under the new
 * configuration).
 */
static bool
tcpfwd_reloaded(struct tcpfwd_conn *c)
{
	if (!c->rc->retired)
		return false;
	log_blocked(c->f->host, c->addr, "upstream dialled or verified "
	    "across a reload: connect again");
	tcpfwd_refuse(c);
	return true;
}

static void
tcpfwd_tls_cb(struct upstream *u, enum upstream_status st, void *arg)
{
	struct tcpfwd_conn	*c = arg;
	evutil_socket_t		 fd;
	SSL			*ssl;

	if (st != UPSTREAM_OK) {
		tcpfwd_refuse(c);
		return;
	}
	if (tcpfwd_reloaded(c))
		return;
	/* The verdict allows traffic: only now is the client read. */
	sockwatch_free(&c->dial_ev);
	c->relay = relay_new(c->t->env->base, c->client, upstream_bev(u),
	    c->rc->conf->idle_timeout_ms, tcpfwd_relay_done_cb, c);
	/* The relay runs on the sockets: the bufferevents go, idle or not. */
	c->fd = bufferevent_getfd(c->client);
	bufferevent_setfd(c->client, -1);
	bufferevent_free(c->client);
	c->client = NULL;
	/* And the upstream, except its socket and TLS: the relay's now. */
	upstream_hand_over(u, &fd, &ssl);
	c->up = NULL;
	relay_adopt_server(c->relay, fd, ssl);
	c->t->env->settled(c->t->env->closed_arg);
}

static void
tcpfwd_connected_cb(struct upstream *u, enum upstream_status st, void *arg)
{
	struct tcpfwd_conn	*c = arg;
	const struct pinset	*ps = &c->rc->conf->pinsets[c->f->pinset];

	if (st != UPSTREAM_OK) {
		tcpfwd_refuse(c);
		return;
	}
	if (tcpfwd_reloaded(c))
		return;
	/* sni is both the name sent and the name verified. */
	if (c->f->sni != NULL)
		upstream_retarget(u, ps, c->f->sni, false);
	upstream_start_tls(u, c->f->alpn, c->f->alpnlen, false,
	    tcpfwd_tls_cb, c);
}

/*
 * While the server is dialled and judged, the client's reading is off: a
 * client that resets ends its connection at once (a dial still under way
 * goes with it; a TLS handshake under way runs on to its verdict,
 * upstream_release()), instead of holding its place in max_connections
 * until connect_timeout. Its FIN
 * says nothing of the kind: a client that half-closes at once still
 * reads what the server says first (a banner), and gets it.
 */
static void
tcpfwd_dial_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcpfwd_conn	*c = arg;

	(void)what;
	if (!sockprog_failed(fd))
		return;
	log_msg(EV_DEBUG, "forward %s: client %s left during the dial",
	    c->f->name, c->addr);
	tcpfwd_log_access(c, TCPFWD_LEFT, 0, 0);
	tcpfwd_conn_close(c);
}

/* Refuse a client outside allow_clients. */
static void
tcpfwd_deny(struct tcpfwd_conn *c)
{
	log_blocked(c->f->host, c->addr, "client not in allow_clients");
	tcpfwd_refuse(c);
}

static void
tcpfwd_accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct tcpfwd_listener	*tl = arg;
	struct tcpfwd		*t = tl->t;
	struct conn_env		*env = t->env;
	struct upstream_params	 up;
	struct tcpfwd_conn	*c;
	int			 one = 1;

	c = xcalloc(1, sizeof(*c));
	c->t = t;
	c->fd = -1;
	c->rc = runconf_ref(env->rc);
	c->f = conf_forwarder_at(c->rc->conf, tl->addr.text);
	monotime_tv(&c->start);
	cv_peer_text(sa, c->addr, sizeof(c->addr));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->client = bufferevent_socket_new(env->base, fd,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	relay_tune(c->client);
	bufferevent_disable(c->client, EV_READ);
	TAILQ_INSERT_TAIL(&t->conns, c, entry);
	env->nconns++;
	metrics_inc(env->sinks.metrics, METRIC_CONNECTIONS_TOTAL);
	metrics_inc(env->sinks.metrics, METRIC_CONNECTIONS_ACTIVE);
	t->accepted(t->arg);
	if (c->f == NULL) {
		/* A reload that failed half-way left this listener behind. */
		tcpfwd_conn_close(c);
		return;
	}
	if (!conf_client_allowed(c->rc->conf, sa)) {
		tcpfwd_deny(c);
		return;
	}
	memset(&up, 0, sizeof(up));
	up.base = env->base;
	up.dns = env->dns;
	up.rc = c->rc;
	up.ps = &c->rc->conf->pinsets[c->f->pinset];
	up.host = c->f->host;
	up.port = c->f->port;
	up.client = c->addr;
	up.sinks = &env->sinks;
	/* Forwarders' listeners too: one to itself would dial forever. */
	up.self = env->listen;
	up.nself = env->nlisten;
	up.self_forwarders = true;
	/* Edge-triggered: bytes the client sends wake it once. */
	c->dial_ev = sockwatch_new(env->base, fd, tcpfwd_dial_watch_cb, c);
	c->up = upstream_connect(&up, tcpfwd_connected_cb, c);
}

/* Free one listener entry (NULL ok). */
static void
tcpfwd_listener_free(struct tcpfwd_listener *tl)
{
	if (tl == NULL)
		return;
	evconnlistener_free(tl->l);
	free(tl);
}

/* The listener among n bound to an address with this text, or NULL. */
static struct tcpfwd_listener *
tcpfwd_find(struct tcpfwd_listener **v, size_t n, const char *text)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (v[i] != NULL && strcmp(v[i]->addr.text, text) == 0)
			return v[i];
	return NULL;
}

/* accept() failed (errno says why): the proxy pauses or logs, as for its own. */
static void
tcpfwd_accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct tcpfwd_listener	*tl = arg;

	tl->t->accept_failed(tl->t->arg);
}

/* Bind a new listener for addr; NULL with err. */
static struct tcpfwd_listener *
tcpfwd_bind(struct tcpfwd *t, const struct conf_addr *addr, char *err,
    size_t errlen)
{
	struct tcpfwd_listener	*tl;

	tl = xcalloc(1, sizeof(*tl));
	tl->t = t;
	tl->addr = *addr;
	tl->l = evconnlistener_new_bind(t->env->base, tcpfwd_accept_cb, tl,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    511, (const struct sockaddr *)&addr->ss, (int)addr->sslen);
	if (tl->l == NULL) {
		xseterr(err, errlen, "cannot listen on %s: %s", addr->text,
		    strerror(errno));
		free(tl);
		return NULL;
	}
	evconnlistener_set_error_cb(tl->l, tcpfwd_accept_error_cb);
	if (t->paused)
		evconnlistener_disable(tl->l);
	return tl;
}

struct tcpfwd *
tcpfwd_new(struct conn_env *env, void (*accepted)(void *),
    void (*accept_failed)(void *), void *arg)
{
	struct tcpfwd	*t;

	t = xcalloc(1, sizeof(*t));
	t->env = env;
	t->accepted = accepted;
	t->accept_failed = accept_failed;
	t->arg = arg;
	TAILQ_INIT(&t->conns);
	return t;
}

bool
tcpfwd_prepare(struct tcpfwd *t, const struct conf *conf, char *err,
    size_t errlen)
{
	const struct forwarder	*f;
	const struct conf_addr	*a;
	struct tcpfwd_listener	*tl;
	size_t			 i, j, n = 0;

	tcpfwd_abort(t);
	for (i = 0; i < conf->nforwarders; i++)
		n += conf->forwarders[i].nlisten;
	t->next = xcalloc(n + 1, sizeof(*t->next));
	for (i = 0; i < conf->nforwarders; i++) {
		f = &conf->forwarders[i];
		for (j = 0; j < f->nlisten; j++) {
			a = &f->listen[j];
			if ((tl = tcpfwd_find(t->cur, t->ncur, a->text)) ==
			    NULL && (tl = tcpfwd_bind(t, a, err, errlen)) ==
			    NULL) {
				conf_locate(conf, a->line, err, errlen);
				tcpfwd_abort(t);
				return false;
			}
			t->next[t->nnext++] = tl;
		}
	}
	return true;
}

void
tcpfwd_commit(struct tcpfwd *t)
{
	size_t	 i;

	for (i = 0; i < t->ncur; i++)
		if (tcpfwd_find(t->next, t->nnext, t->cur[i]->addr.text) ==
		    NULL)
			tcpfwd_listener_free(t->cur[i]);
	free(t->cur);
	t->cur = t->next;
	t->ncur = t->nnext;
	t->next = NULL;
	t->nnext = 0;
}

void
tcpfwd_abort(struct tcpfwd *t)
{
	size_t	 i;

	if (t == NULL || t->next == NULL)
		return;
	for (i = 0; i < t->nnext; i++)
		if (tcpfwd_find(t->cur, t->ncur, t->next[i]->addr.text) ==
		    NULL)
			tcpfwd_listener_free(t->next[i]);
	free(t->next);
	t->next = NULL;
	t->nnext = 0;
}

void
tcpfwd_set_accepting(struct tcpfwd *t, bool on)
{
	size_t	 i;

	t->paused = !on;
	for (i = 0; i < t->ncur; i++) {
		if (on)
			evconnlistener_enable(t->cur[i]->l);
		else
			evconnlistener_disable(t->cur[i]->l);
	}
}

void
tcpfwd_take_queued(struct tcpfwd *t)
{
	size_t	 i;

	for (i = 0; i < t->ncur; i++)
		backlog_take(t->cur[i]->l, tcpfwd_accept_cb, t->cur[i]);
}

void
tcpfwd_stop_listening(struct tcpfwd *t)
{
	size_t	 i;

	tcpfwd_abort(t);
	for (i = 0; i < t->ncur; i++)
		tcpfwd_listener_free(t->cur[i]);
	free(t->cur);
	t->cur = NULL;
	t->ncur = 0;
}

size_t
tcpfwd_close_all(struct tcpfwd *t)
{
	struct tcpfwd_conn	*c;
	size_t			 cut = 0;

	/*
	 * What is still under way is cut, with its access line: a relay
	 * with what it moved, a connection still waiting for its upstream
	 * as unavailable. One that lingers was logged already.
	 */
	while ((c = TAILQ_FIRST(&t->conns)) != NULL) {
		if (c->relay != NULL) {
			cut += tcpfwd_cut(c, true);
			continue;
		}
		if (c->linger == NULL && c->f != NULL) {
			tcpfwd_log_access(c, 503, 0, 0);
			cut++;
		} else
			linger_drain(c->fd);
		tcpfwd_conn_close(c);
	}
	return cut;
}

void
tcpfwd_free(struct tcpfwd *t)
{
	if (t == NULL)
		return;
	tcpfwd_stop_listening(t);
	tcpfwd_close_all(t);
	free(t);
}

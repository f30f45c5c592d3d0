/*
 * What the phases of a connection share: the state names, the one way a
 * phase ends, the client transport's replacement, the routing of
 * upstream events to the phase running, and whether a watched client
 * left.
 */
#include "config.h"

#include <sys/ioctl.h>

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

#include "conf_value.h"
#include "log.h"
#include "phase.h"
#include "sockprog.h"
#include "xmalloc.h"

static const char *const phase_state_names[CONN__STATES] = {
	[CONN_READ_HEAD] = "read_head",
	[CONN_CONNECTING] = "connecting",
	[CONN_EXCHANGE] = "exchange",
	[CONN_DIAL] = "dial",
	[CONN_AWAIT_HELLO] = "await_hello",
	[CONN_UPSTREAM_TLS] = "upstream_tls",
	[CONN_CLIENT_TLS] = "client_tls",
	[CONN_RELAY] = "relay",
	[CONN_CLOSING] = "closing",
	[CONN_LINGER] = "linger",
};

void
phase_set_host(struct phase_ctx *x, const char *host)
{
	struct access_record	*a = &x->acc;
	size_t			 len = strlen(host);

	/* Most hosts are short: a buffer that fits is kept, not remade. */
	if (len < a->host_size) {
		memmove(a->host, host, len + 1);
		return;
	}
	free(a->host);
	a->host_size = len < 32 ? 32 : len + 1;
	a->host = xmalloc(a->host_size);
	memcpy(a->host, host, len + 1);
}

void
phase_client_timeouts(struct phase_ctx *x, const struct timeval *read,
    uint64_t write_ms)
{
	struct timeval	 quarter = cv_timeval(sockprog_look_ms(write_ms));

	bufferevent_set_timeouts(x->bev, read, &quarter);
	x->wlooks = 0;
	x->wmoved = 0;
}

/*
 * A write timeout comes only after a quarter of the wait without a byte
 * written, so the client's socket was full at the last one, and a write
 * since then means it acknowledged bytes: the acknowledgements of one
 * quarter are those since the look before (a mark older than that, its
 * first look, puts earlier ones in this quarter: at most one more).
 */
bool
phase_client_still_reading(struct phase_ctx *x, short what)
{
	/* Events OR'ed with it (an EOF, a read timeout) go on to the phase. */
	if (what != (BEV_EVENT_TIMEOUT | BEV_EVENT_WRITING) || x->bev == NULL)
		return false;
	x->wlooks++;
	if (sockprog_moved(x->fd, &x->acked))
		x->wmoved = x->wlooks;
	if (x->wlooks - x->wmoved >= SOCKPROG_LOOKS)
		return false;
	bufferevent_enable(x->bev, EV_WRITE);
	return true;
}

bool
phase_client_left(struct phase_ctx *x, short what, size_t seen)
{
	size_t	 held = evbuffer_get_length(bufferevent_get_input(x->bev));
	int	 queued;

	if (sockprog_failed(x->fd))
		return true;
	return (what & EV_CLOSED) && held <= seen &&
	    ioctl(x->fd, FIONREAD, &queued) == 0 && queued >= 0 &&
	    (size_t)queued <= seen - held;
}

const char *
phase_state_name(enum conn_state st)
{
	return phase_state_names[st];
}

void
phase_set_state(struct phase_ctx *x, enum conn_state st)
{
	struct logline	 l;

	if (x->state == st)
		return;
	log_begin(&l, EV_CONN_STATE);
	log_int(&l, LK_CONN, (long long)x->id);
	log_str(&l, LK_FROM, phase_state_names[x->state]);
	log_str(&l, LK_STATE, phase_state_names[st]);
	log_end(&l);
	x->state = st;
}

void
phase_done(struct phase_ctx *x, const struct phase_outcome *o)
{
	x->done(x, o);
}

void
phase_outcome_init(struct phase_outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->next = PHASE_NEXT_END;
	o->upstream_status = UPSTREAM_OK;
	o->error = PHASE_NO_ERROR;
}

void
phase_end(struct phase_ctx *x, int status, bool close)
{
	struct phase_outcome	 o;

	phase_outcome_init(&o);
	o.status = status;
	o.close = close;
	phase_done(x, &o);
}

void
phase_cut(struct phase_ctx *x, int status)
{
	struct phase_outcome	 o;

	phase_outcome_init(&o);
	o.status = status;
	o.cut = true;
	phase_done(x, &o);
}

void
phase_fail(struct phase_ctx *x, enum http_error_kind kind,
    const char *explanation)
{
	struct phase_outcome	 o;

	phase_outcome_init(&o);
	o.error = kind;
	o.explanation = explanation;
	phase_done(x, &o);
}

void
phase_fail_upstream(struct phase_ctx *x, enum upstream_status st,
    const char *explanation)
{
	struct phase_outcome	 o;

	phase_outcome_init(&o);
	o.upstream_status = st;
	o.explanation = explanation;
	phase_done(x, &o);
}

void
phase_relay(struct phase_ctx *x, struct bufferevent *bev, int status,
    bool guard_line, const struct clienthello *hello)
{
	struct phase_outcome	 o;

	phase_outcome_init(&o);
	o.next = PHASE_NEXT_RELAY;
	o.relay_with = bev;
	o.relay_guard = guard_line;
	if (hello != NULL) {
		o.relay_hello_sni = hello->sni;
		o.relay_hello_len = hello->consumed;
	}
	o.status = status;
	phase_done(x, &o);
}

void
phase_set_transport(struct phase_ctx *x, struct bufferevent *bev)
{
	SSL	*tls = bufferevent_openssl_get_ssl(bev);

	/* Neither owns the socket: the old one just goes. */
	if (x->bev != NULL && x->bev != bev)
		bufferevent_free(x->bev);
	if (x->tls != NULL && x->tls != tls)
		SSL_free(x->tls);
	x->bev = bev;
	x->tls = tls;
	bufferevent_setcb(bev, x->client_read, x->client_write,
	    x->client_event, x);
}

static void
phase_upstream_read_cb(struct bufferevent *bev, void *arg)
{
	struct phase_ctx	*x = arg;

	x->ops->on_upstream(x->phase, EV_READ);
}

static void
phase_upstream_write_cb(struct bufferevent *bev, void *arg)
{
	struct phase_ctx	*x = arg;

	x->ops->on_upstream(x->phase, EV_WRITE);
}

static void
phase_upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct phase_ctx	*x = arg;

	x->ops->on_upstream(x->phase, what);
}

void
phase_watch_upstream(struct phase_ctx *x, struct bufferevent *bev)
{
	bufferevent_setcb(bev, phase_upstream_read_cb,
	    phase_upstream_write_cb, phase_upstream_event_cb, x);
}

void
phase_upstream_params(struct phase_ctx *x, const struct pinset *ps,
    const char *host, uint16_t port, struct upstream_params *p)
{
	memset(p, 0, sizeof(*p));
	p->base = x->env->base;
	p->dns = x->env->dns;
	p->rc = x->rc;
	p->ps = ps;
	p->host = host;
	p->port = port;
	p->client = x->client;
	p->sinks = &x->env->sinks;
	p->self = x->env->listen;
	p->nself = x->env->nlisten;
	/* A forwarder's listener is pinproxy too (a redirect, a CONNECT). */
	p->self_forwarders = true;
}

bool
phase_is_self(const struct phase_ctx *x, const char *host, uint16_t port)
{
	struct conf_addr	 a;
	char			 text[CONF_ADDR_TEXT_MAX + 8], err[64];

	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	cv_hostport_text(host, port, text, sizeof(text));
	if (!cv_addr(text, &a, err, sizeof(err)))
		return false;
	return upstream_addr_is_self((const struct sockaddr *)&a.ss,
	    x->env->listen, x->env->nlisten) ||
	    upstream_addr_is_forwarder((const struct sockaddr *)&a.ss,
	    x->rc->conf);
}

void
phase_log_blocked(const struct phase_ctx *x, const char *host,
    const char *reason)
{
	log_blocked(host, x->client, reason);
}

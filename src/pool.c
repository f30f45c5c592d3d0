/*
 * The upstream pool: idle, checked connections listed per host and all
 * together, newest first. Each host counts its uses (upstreams checked out
 * or being dialled); the most it had at once in the current and the
 * previous demand window is its need, and it keeps at most that many idle
 * (at least POOL_MIN_PER_HOST), the pool at most max_idle in all. An idle
 * connection that closes, sends anything, or stays idle too long is
 * dropped. A host with nothing idle and no use is freed at once, so there
 * are never more hosts than idle connections plus uses.
 */
#include "config.h"

#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include <stdlib.h>
#include <string.h>

#include "hostmatch.h"
#include "monotime.h"
#include "pool.h"
#include "xmalloc.h"

/* Hash buckets of the hosts. */
#define POOL_BUCKETS	64

struct pool_entry {
	TAILQ_ENTRY(pool_entry)	 by_host;
	TAILQ_ENTRY(pool_entry)	 all;
	struct pool_host	*host;
	struct upstream		*up;
	unsigned long		 owner;		/* its last client connection */
	uint64_t		 settled_us;	/* others may have it from then */
	bool			 owner_only;	/* see POOL_OWNER_ONLY */
};

TAILQ_HEAD(pool_list, pool_entry);

struct pool_host {
	LIST_ENTRY(pool_host)	 bucket;
	struct pool		*pool;
	char			 name[HOSTMATCH_NAME_MAX];
	uint16_t		 port;
	bool			 tls;
	unsigned long		 generation;
	struct pool_list	 idle;		/* by_host, newest first */
	size_t			 nidle;
	size_t			 in_use;
	size_t			 peak;		/* most in use, this window */
	size_t			 prev_peak;	/* and in the one before */
};

LIST_HEAD(pool_bucket, pool_host);

struct pool {
	struct event_base	*base;
	struct event		*tick;		/* pending while nhosts > 0 */
	struct pool_list	 idle;		/* all, newest first */
	struct pool_bucket	 hosts[POOL_BUCKETS];
	size_t			 count;
	size_t			 nhosts;
	size_t			 in_use;
	size_t			 max_idle;
	unsigned long		 generation;	/* the only one kept */
};

static void
pool_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	pool_tick(arg);
}

struct pool *
pool_new(struct event_base *base)
{
	struct pool	*p;
	size_t		 i;

	p = xcalloc(1, sizeof(*p));
	p->base = base;
	p->max_idle = POOL_MAX_IDLE;
	TAILQ_INIT(&p->idle);
	for (i = 0; i < POOL_BUCKETS; i++)
		LIST_INIT(&p->hosts[i]);
	p->tick = event_new(base, -1, EV_PERSIST, pool_tick_cb, p);
	return p;
}

/* FNV-1a over what tells hosts apart. */
static size_t
pool_bucket_of(const char *name, uint16_t port, bool tls, unsigned long gen)
{
	uint32_t	 h = 2166136261u;
	unsigned char	 tail[2 + 1 + sizeof(gen)];
	size_t		 i;

	for (i = 0; name[i] != '\0'; i++)
		h = (h ^ (unsigned char)name[i]) * 16777619u;
	tail[0] = port >> 8;
	tail[1] = port & 0xff;
	tail[2] = tls;
	memcpy(tail + 3, &gen, sizeof(gen));
	for (i = 0; i < sizeof(tail); i++)
		h = (h ^ tail[i]) * 16777619u;
	return h % POOL_BUCKETS;
}

/* The host entry of a target, made when missing. */
static struct pool_host *
pool_host_get(struct pool *p, const char *name, uint16_t port, bool tls,
    unsigned long gen)
{
	struct pool_bucket	*b;
	struct pool_host	*h;
	struct timeval		 tv = { POOL_WINDOW_SECONDS, 0 };

	b = &p->hosts[pool_bucket_of(name, port, tls, gen)];
	LIST_FOREACH(h, b, bucket) {
		if (h->port == port && h->tls == tls &&
		    h->generation == gen && strcmp(h->name, name) == 0)
			return h;
	}
	h = xcalloc(1, sizeof(*h));
	h->pool = p;
	xstrlcpy(h->name, name, sizeof(h->name));
	h->port = port;
	h->tls = tls;
	h->generation = gen;
	TAILQ_INIT(&h->idle);
	LIST_INSERT_HEAD(b, h, bucket);
	if (p->nhosts++ == 0)
		evtimer_add(p->tick, &tv);
	return h;
}

/* Free a host once it has nothing idle and no use. */
static void
pool_host_release(struct pool_host *h)
{
	struct pool	*p = h->pool;

	if (h->nidle > 0 || h->in_use > 0)
		return;
	LIST_REMOVE(h, bucket);
	free(h);
	if (--p->nhosts == 0)
		evtimer_del(p->tick);
}

/* Remove an entry; close its upstream unless keep. Its host stays. */
static struct upstream *
pool_remove(struct pool_entry *e, bool keep)
{
	struct pool_host	*h = e->host;
	struct pool		*p = h->pool;
	struct upstream		*u = e->up;

	TAILQ_REMOVE(&h->idle, e, by_host);
	TAILQ_REMOVE(&p->idle, e, all);
	h->nidle--;
	p->count--;
	free(e);
	if (keep)
		return u;
	upstream_free(u);
	return NULL;
}

/* Close an idle connection, and free its host if that was all it had. */
static void
pool_close(struct pool_entry *e)
{
	struct pool_host	*h = e->host;

	pool_remove(e, false);
	pool_host_release(h);
}

/* Close the oldest idle connections until at most max are left. */
static void
pool_trim(struct pool *p, size_t max)
{
	while (p->count > max)
		pool_close(TAILQ_LAST(&p->idle, pool_list));
}

/* Anything from an idle connection (bytes, close, timeout) ends it. */
static void
pool_read_cb(struct bufferevent *bev, void *arg)
{
	pool_close(arg);
}

static void
pool_event_cb(struct bufferevent *bev, short what, void *arg)
{
	pool_close(arg);
}

/* Whether e is still settling (see POOL_SETTLE_MS). */
static bool
pool_settling(const struct pool_entry *e)
{
	return e->settled_us != 0 && monotime_us() < e->settled_us;
}

struct upstream *
pool_get(struct pool *p, const struct runconf *rc, const char *host,
    uint16_t port, bool tls, unsigned long owner, struct pool_host **ph,
    unsigned *how)
{
	struct pool_host	*h;
	struct pool_entry	*e, *next;
	struct upstream		*u;
	bool			 settling, owner_only;
	int			 pass;

	h = pool_host_get(p, host, port, tls, rc->generation);
	h->in_use++;
	p->in_use++;
	if (h->in_use > h->peak)
		h->peak = h->in_use;
	*ph = h;
	/* A settled one first; only then the owner's still settling. */
	for (pass = 0; pass < 2; pass++) {
		settling = pass == 1;
		for (e = TAILQ_FIRST(&h->idle); e != NULL; e = next) {
			next = TAILQ_NEXT(e, by_host);
			if (pool_settling(e) != settling ||
			    ((settling || e->owner_only) && e->owner != owner))
				continue;
			owner_only = e->owner_only;
			u = pool_remove(e, true);
			/* Bytes it sent while idle answer no next request. */
			if (upstream_matches(u, rc, host, port, tls) &&
			    upstream_quiet(u)) {
				*how = (settling ? POOL_SETTLE : 0) |
				    (owner_only ? POOL_OWNER_ONLY : 0);
				return u;
			}
			upstream_free(u);
		}
	}
	*how = 0;
	return NULL;
}

/* One use of h ended. */
static void
pool_end_use(struct pool_host *h)
{
	if (h->in_use == 0)
		return;
	h->in_use--;
	h->pool->in_use--;
}

void
pool_forget(struct pool *p, unsigned long owner)
{
	struct pool_entry	*e, *next;

	for (e = TAILQ_FIRST(&p->idle); e != NULL; e = next) {
		next = TAILQ_NEXT(e, all);
		if (e->owner_only && e->owner == owner)
			pool_close(e);
	}
}

void
pool_drop(struct pool *p, struct pool_host *ph, struct upstream *u)
{
	upstream_free(u);
	pool_end_use(ph);
	pool_host_release(ph);
}

void
pool_put(struct pool *p, struct pool_host *ph, struct upstream *u,
    unsigned long owner, unsigned how)
{
	struct bufferevent	*bev = upstream_bev(u);
	struct timeval		 tv = { POOL_IDLE_SECONDS, 0 };
	struct pool_entry	*e;
	size_t			 limit;

	if (bev == NULL || ph->generation != p->generation ||
	    upstream_generation(u) != p->generation ||
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0 ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		pool_drop(p, ph, u);
		return;
	}
	pool_end_use(ph);
	/* Keep the newest: the oldest is the likeliest to be closed soon. */
	limit = pool_host_limit(p, ph);
	while (ph->nidle > 0 && ph->nidle >= limit)
		pool_remove(TAILQ_LAST(&ph->idle, pool_list), false);
	while (p->count > 0 && p->count >= p->max_idle) {
		e = TAILQ_LAST(&p->idle, pool_list);
		if (e->host == ph)
			pool_remove(e, false);
		else
			pool_close(e);
	}
	e = xcalloc(1, sizeof(*e));
	e->host = ph;
	e->up = u;
	e->owner = owner;
	e->owner_only = (how & POOL_OWNER_ONLY) != 0;
	if (how & POOL_SETTLE)
		e->settled_us = monotime_us() + POOL_SETTLE_MS * 1000;
	bufferevent_setcb(bev, pool_read_cb, NULL, pool_event_cb, e);
	bufferevent_set_timeouts(bev, &tv, NULL);
	bufferevent_enable(bev, EV_READ);
	TAILQ_INSERT_HEAD(&ph->idle, e, by_host);
	TAILQ_INSERT_HEAD(&p->idle, e, all);
	ph->nidle++;
	p->count++;
}

void
pool_tick(struct pool *p)
{
	struct pool_host	*h, *next;
	size_t			 i, limit;

	for (i = 0; i < POOL_BUCKETS; i++) {
		for (h = LIST_FIRST(&p->hosts[i]); h != NULL; h = next) {
			next = LIST_NEXT(h, bucket);
			h->prev_peak = h->peak;
			h->peak = h->in_use;
			limit = pool_host_limit(p, h);
			while (h->nidle > limit)
				pool_remove(TAILQ_LAST(&h->idle, pool_list),
				    false);
			pool_host_release(h);
		}
	}
}

void
pool_flush(struct pool *p)
{
	pool_trim(p, 0);
}

void
pool_set_generation(struct pool *p, unsigned long gen)
{
	p->generation = gen;
	pool_flush(p);
}

void
pool_set_max_idle(struct pool *p, size_t max)
{
	if (max > POOL_MAX_IDLE)
		max = POOL_MAX_IDLE;
	if (max < 1)
		max = 1;
	p->max_idle = max;
	pool_trim(p, max);
}

size_t
pool_count(const struct pool *p)
{
	return p->count;
}

size_t
pool_in_use(const struct pool *p)
{
	return p->in_use;
}

size_t
pool_hosts(const struct pool *p)
{
	return p->nhosts;
}

size_t
pool_host_limit(const struct pool *p, const struct pool_host *ph)
{
	size_t	 n = POOL_MIN_PER_HOST;

	if (ph->peak > n)
		n = ph->peak;
	if (ph->prev_peak > n)
		n = ph->prev_peak;
	return n < p->max_idle ? n : p->max_idle;
}

void
pool_free(struct pool *p)
{
	struct pool_host	*h;
	size_t			 i;

	if (p == NULL)
		return;
	pool_flush(p);
	/* Uses still open have no one left to end them. */
	for (i = 0; i < POOL_BUCKETS; i++) {
		while ((h = LIST_FIRST(&p->hosts[i])) != NULL) {
			LIST_REMOVE(h, bucket);
			free(h);
		}
	}
	event_free(p->tick);
	free(p);
}

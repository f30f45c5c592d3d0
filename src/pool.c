/*
 * The upstream pool: a list of idle, checked connections, newest first.
 * An idle connection that closes, sends anything, or stays idle too long
 * is dropped; the pool never holds more than POOL_MAX_IDLE.
 */
#include "config.h"

#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include <stdlib.h>

#include "pool.h"
#include "xmalloc.h"

struct pool_entry {
	TAILQ_ENTRY(pool_entry)	 entry;
	struct pool		*pool;
	struct upstream		*up;
};

TAILQ_HEAD(pool_list, pool_entry);

struct pool {
	struct pool_list	 idle;
	size_t			 count;
	unsigned long		 generation;	/* the only one kept */
};

struct pool *
pool_new(void)
{
	struct pool	*p;

	p = xcalloc(1, sizeof(*p));
	TAILQ_INIT(&p->idle);
	return p;
}

/* Remove an entry; close its upstream unless keep. */
static struct upstream *
pool_remove(struct pool_entry *e, bool keep)
{
	struct pool	*p = e->pool;
	struct upstream	*u = e->up;

	TAILQ_REMOVE(&p->idle, e, entry);
	p->count--;
	free(e);
	if (keep)
		return u;
	upstream_free(u);
	return NULL;
}

/* Anything from an idle connection (bytes, close, timeout) ends it. */
static void
pool_read_cb(struct bufferevent *bev, void *arg)
{
	pool_remove(arg, false);
}

static void
pool_event_cb(struct bufferevent *bev, short what, void *arg)
{
	pool_remove(arg, false);
}

void
pool_put(struct pool *p, struct upstream *u)
{
	struct bufferevent	*bev = upstream_bev(u);
	struct timeval		 tv = { POOL_IDLE_SECONDS, 0 };
	struct pool_entry	*e;
	size_t			 same = 0;

	if (bev == NULL || upstream_generation(u) != p->generation ||
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0 ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		upstream_free(u);
		return;
	}
	TAILQ_FOREACH(e, &p->idle, entry)
		if (upstream_same_target(e->up, u))
			same++;
	if (same >= POOL_MAX_PER_HOST) {
		upstream_free(u);
		return;
	}
	if (p->count >= POOL_MAX_IDLE)
		pool_remove(TAILQ_LAST(&p->idle, pool_list), false);
	e = xcalloc(1, sizeof(*e));
	e->pool = p;
	e->up = u;
	bufferevent_setcb(bev, pool_read_cb, NULL, pool_event_cb, e);
	bufferevent_set_timeouts(bev, &tv, NULL);
	bufferevent_enable(bev, EV_READ);
	TAILQ_INSERT_HEAD(&p->idle, e, entry);
	p->count++;
}

struct upstream *
pool_get(struct pool *p, const struct runconf *rc, const char *host,
    uint16_t port, bool tls)
{
	struct pool_entry	*e;

	TAILQ_FOREACH(e, &p->idle, entry) {
		if (upstream_matches(e->up, rc, host, port, tls))
			return pool_remove(e, true);
	}
	return NULL;
}

void
pool_flush(struct pool *p)
{
	while (!TAILQ_EMPTY(&p->idle))
		pool_remove(TAILQ_FIRST(&p->idle), false);
}

void
pool_set_generation(struct pool *p, unsigned long gen)
{
	p->generation = gen;
	pool_flush(p);
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pool_flush(p);
	free(p);
}

/*
 * The stats_listen endpoint: a small HTTP server on the configured address
 * that answers GET /metrics with the metrics in the Prometheus text format,
 * 404 for any other path and 405 for any other method.
 */
#ifndef PINPROXY_STATS_H
#define PINPROXY_STATS_H

#include <event2/event.h>

#include <stddef.h>
#include <stdint.h>

#include "conf_value.h"
#include "metrics.h"

/* Seconds a stats client may take to send a request or read the answer. */
#define STATS_TIMEOUT		10
/* The largest request head and body a stats client may send. */
#define STATS_MAX_HEADERS	8192
#define STATS_MAX_BODY		1024

/* Called before each rendering, to copy counters kept elsewhere into m. */
typedef void (*stats_refresh_cb)(struct metrics *m, void *arg);

struct stats;

/*
 * Listen on addr and serve m (borrowed: it must outlive the stats). NULL
 * with err filled when the address cannot be bound.
 */
struct stats	*stats_new(struct event_base *base,
		    const struct conf_addr *addr, struct metrics *m, char *err,
		    size_t errlen);
/* Call cb(m, arg) before each rendering (cb NULL: none). */
void		 stats_set_refresh(struct stats *s, stats_refresh_cb cb,
		    void *arg);
/* The port bound, useful when addr asked for port 0. */
uint16_t	 stats_port(const struct stats *s);
/* Stop listening, close open stats connections and free (NULL is fine). */
void		 stats_free(struct stats *s);

#endif

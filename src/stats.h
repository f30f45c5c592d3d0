/*
 * The stats_listen endpoint: a small HTTP server on the configured address
 * that answers GET /metrics with the metrics in the Prometheus text format,
 * 404 for any other path and 405 for any other method. It admits only the
 * clients its filter allows, holds at most STATS_MAX_CONNS connections and
 * gives each STATS_TIMEOUT seconds, so that it can never take descriptors
 * or time from the proxy listeners.
 */
#ifndef PINPROXY_STATS_H
#define PINPROXY_STATS_H

#include <sys/socket.h>

#include <event2/event.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf_value.h"
#include "metrics.h"

/* Seconds a stats connection may last, request and answer together. */
#define STATS_TIMEOUT		5
/* Stats connections open at once; one more is closed when accepted. */
#define STATS_MAX_CONNS		16
/* The largest request head and body a stats client may send. */
#define STATS_MAX_HEADERS	8192
#define STATS_MAX_BODY		1024

/* Called before each rendering, to copy counters kept elsewhere into m. */
typedef void (*stats_refresh_cb)(struct metrics *m, void *arg);
/* Whether a client at sa may read the metrics. */
typedef bool (*stats_allow_cb)(const struct sockaddr *sa, void *arg);

struct stats;

/*
 * Listen on addr and serve m (borrowed: it must outlive the stats). NULL
 * with err filled and errno kept when the address cannot be bound.
 */
struct stats	*stats_new(struct event_base *base,
		    const struct conf_addr *addr, struct metrics *m, char *err,
		    size_t errlen);
/* Call cb(m, arg) before each rendering (cb NULL: none). */
void		 stats_set_refresh(struct stats *s, stats_refresh_cb cb,
		    void *arg);
/* Admit only clients for which cb(sa, arg) is true (cb NULL: every one). */
void		 stats_set_allow(struct stats *s, stats_allow_cb cb,
		    void *arg);
/* The port bound, useful when addr asked for port 0; 0 when none. */
uint16_t	 stats_port(const struct stats *s);
/*
 * Close the listening socket, so that another listener may bind its port
 * (a reload moving it to another address of that port); open stats
 * connections stay. stats_relisten() binds addr again: false, with err,
 * when it cannot.
 */
void		 stats_unlisten(struct stats *s);
bool		 stats_relisten(struct stats *s, const struct conf_addr *addr,
		    char *err, size_t errlen);
/* How many stats connections are open. */
size_t		 stats_nconns(const struct stats *s);
/* Stop listening, close open stats connections and free (NULL is fine). */
void		 stats_free(struct stats *s);

#endif

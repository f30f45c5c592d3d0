/*
 * A small, bounded table that lets an event through at most once per
 * window for each key (a client address and a host name, say), so that a
 * log line repeated by a misconfigured client cannot flood the log.
 */
#ifndef PINPROXY_RATELIMIT_H
#define PINPROXY_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Keys longer than this are cut (the cut part then shares one slot). */
#define RATELIMIT_KEY_MAX	320

struct ratelimit;

/* A table of slots keys, each let through once per window seconds. */
struct ratelimit *ratelimit_new(size_t slots, time_t window);
/* Free it (NULL ok). */
void		 ratelimit_free(struct ratelimit *rl);
/*
 * Whether an event for key may pass at now (seconds of any steady clock):
 * true the first time and once window seconds have passed since it last
 * did. When the table is full, the key seen longest ago is forgotten.
 */
bool		 ratelimit_allow(struct ratelimit *rl, const char *key,
		    time_t now);

#endif

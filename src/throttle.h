/*
 * A small, bounded memory of recent events by key, to log a repeated event
 * once per time window: Chromium retries a refused handshake several times
 * per page load, and one log line says as much as six.
 */
#ifndef PINPROXY_THROTTLE_H
#define PINPROXY_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Keys remembered by the daemon's pin_mismatch throttle. */
#define THROTTLE_MISMATCH_SLOTS		64
/* Seconds during which a repeated pin_mismatch is not logged again. */
#define THROTTLE_MISMATCH_SECONDS	10

struct throttle;

/* Remember up to slots keys, each for window seconds. */
struct throttle	*throttle_new(size_t slots, time_t window);
/* Free it (NULL ok). */
void		 throttle_free(struct throttle *t);
/*
 * Whether the event key (len bytes) is to be logged at now (seconds of a
 * monotonic clock): true when it was not allowed within the last window
 * seconds, and then remembered; false for a repeat. When every slot is
 * taken, the key used least recently is forgotten. A NULL t allows all.
 */
bool		 throttle_allow(struct throttle *t, const void *key,
		    size_t len, time_t now);
/* Seconds of the monotonic clock, the now of throttle_allow. */
time_t		 throttle_now(void);
/*
 * How much of a client's "ADDR:PORT" or "[ADDR]:PORT" text is the address:
 * a client retrying comes from a new port each time.
 */
size_t		 throttle_addr_len(const char *client);

#endif

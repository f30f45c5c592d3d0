/*
 * The monotonic clock, for waits and rates that a step of the wall clock
 * must not shorten or stretch.
 */
#ifndef PINPROXY_MONOTIME_H
#define PINPROXY_MONOTIME_H

#include <stdint.h>

/* Microseconds of CLOCK_MONOTONIC. */
uint64_t	 monotime_us(void);

#endif

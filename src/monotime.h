/*
 * The monotonic clock, for waits and rates that a step of the wall clock
 * must not shorten or stretch.
 */
#ifndef PINPROXY_MONOTIME_H
#define PINPROXY_MONOTIME_H

#include <sys/time.h>

#include <stdint.h>

/* Microseconds of CLOCK_MONOTONIC. */
uint64_t	 monotime_us(void);
/* CLOCK_MONOTONIC as a timeval: for deadlines and durations, not dates. */
void		 monotime_tv(struct timeval *tv);

#endif

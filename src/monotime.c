/*
 * The monotonic clock: see monotime.h.
 */
#include "config.h"

#include <time.h>

#include "monotime.h"

uint64_t
monotime_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void
monotime_tv(struct timeval *tv)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
}

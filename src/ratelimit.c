/*
 * The rate limiter of log lines: a fixed array searched linearly (it is
 * only consulted on failures, and holds a few dozen keys), with the key
 * seen longest ago replaced when it is full.
 */
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"
#include "xmalloc.h"

struct ratelimit_slot {
	char		 key[RATELIMIT_KEY_MAX];
	time_t		 last;		/* when it last passed */
	bool		 used;
};

struct ratelimit {
	struct ratelimit_slot	*slots;
	size_t			 nslots;
	time_t			 window;
};

struct ratelimit *
ratelimit_new(size_t slots, time_t window)
{
	struct ratelimit	*rl;

	rl = xcalloc(1, sizeof(*rl));
	rl->nslots = slots > 0 ? slots : 1;
	rl->slots = xcalloc(rl->nslots, sizeof(*rl->slots));
	rl->window = window;
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	free(rl->slots);
	free(rl);
}

bool
ratelimit_allow(struct ratelimit *rl, const char *key, time_t now)
{
	struct ratelimit_slot	*s, *victim = NULL;
	size_t			 i;

	for (i = 0; i < rl->nslots; i++) {
		s = &rl->slots[i];
		if (s->used && strncmp(s->key, key, sizeof(s->key) - 1) == 0) {
			/* A clock that went back counts as a new window. */
			if (now >= s->last && now - s->last < rl->window)
				return false;
			s->last = now;
			return true;
		}
		if (victim == NULL || (victim->used && (!s->used ||
		    s->last < victim->last)))
			victim = s;
	}
	xstrlcpy(victim->key, key, sizeof(victim->key));
	victim->last = now;
	victim->used = true;
	return true;
}

/*
 * Throttling repeated events: keys are reduced to their SHA-256 and kept
 * in a fixed array of slots with the time each was last allowed and a use
 * counter for least-recently-used eviction. A linear scan of 64 slots
 * costs less than the TLS handshake whose outcome it throttles.
 */
#include "config.h"

#include <openssl/sha.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "monotime.h"
#include "throttle.h"
#include "xmalloc.h"

struct throttle_slot {
	bool		 used;
	unsigned char	 key[SHA256_DIGEST_LENGTH];
	time_t		 allowed;	/* when it was last allowed */
	uint64_t	 touched;	/* use counter, for LRU */
};

struct throttle {
	time_t			 window;
	size_t			 nslots;
	uint64_t		 clock;		/* counts uses */
	struct throttle_slot	*slots;
};

struct throttle *
throttle_new(size_t slots, time_t window)
{
	struct throttle	*t;

	t = xcalloc(1, sizeof(*t));
	t->window = window;
	t->nslots = slots > 0 ? slots : 1;
	t->slots = xcalloc(t->nslots, sizeof(*t->slots));
	return t;
}

void
throttle_free(struct throttle *t)
{
	if (t == NULL)
		return;
	free(t->slots);
	free(t);
}

/* The slot holding digest, or the one to reuse for it (*found false). */
static struct throttle_slot *
throttle_slot(struct throttle *t, const unsigned char *digest, bool *found)
{
	struct throttle_slot	*victim = NULL, *s;
	size_t			 i;

	*found = false;
	for (i = 0; i < t->nslots; i++) {
		s = &t->slots[i];
		if (s->used && memcmp(s->key, digest, sizeof(s->key)) == 0) {
			*found = true;
			return s;
		}
		if (victim == NULL || (victim->used && (!s->used ||
		    s->touched < victim->touched)))
			victim = s;
	}
	return victim;
}

bool
throttle_allow(struct throttle *t, const void *key, size_t len, time_t now)
{
	struct throttle_slot	*s;
	unsigned char		 digest[SHA256_DIGEST_LENGTH];
	bool			 found;

	if (t == NULL)
		return true;
	SHA256(key, len, digest);
	s = throttle_slot(t, digest, &found);
	s->touched = ++t->clock;
	/* A clock that went back counts as a new window. */
	if (found && now >= s->allowed && now - s->allowed < t->window)
		return false;
	s->used = true;
	memcpy(s->key, digest, sizeof(s->key));
	s->allowed = now;
	return true;
}

time_t
throttle_now(void)
{
	return (time_t)(monotime_us() / 1000000);
}

size_t
throttle_addr_len(const char *client)
{
	const char	*colon = strrchr(client, ':');

	/* A bare IPv6 address has colons but no port. */
	if (colon == NULL || (client[0] != '[' && strchr(client, ':') != colon))
		return strlen(client);
	return (size_t)(colon - client);
}

/*
 * The ALPN guesses of one generation: a direct-mapped table keyed by the
 * FNV-1a hash of host, port, pin set and the client's offer.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "alpnguess.h"
#include "hostmatch.h"
#include "xmalloc.h"

struct alpnguess_slot {
	bool		 used;
	char		 host[HOSTMATCH_NAME_MAX];
	uint16_t	 port;
	const void	*pinset;
	uint64_t	 hash;		/* of the whole key */
	unsigned char	 proto[ALPNGUESS_PROTO_MAX];
	unsigned char	 len;
};

struct alpnguess {
	struct alpnguess_slot	 slot[ALPNGUESS_SLOTS];
};

struct alpnguess *
alpnguess_new(void)
{
	return xcalloc(1, sizeof(struct alpnguess));
}

void
alpnguess_free(struct alpnguess *g)
{
	free(g);
}

static uint64_t
alpnguess_mix(uint64_t h, const void *data, size_t len)
{
	const unsigned char	*p = data;
	size_t			 i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t
alpnguess_hash(const struct alpnguess_key *k)
{
	uint64_t	 h = 0xcbf29ce484222325ULL;

	h = alpnguess_mix(h, k->host, strlen(k->host));
	h = alpnguess_mix(h, &k->port, sizeof(k->port));
	h = alpnguess_mix(h, &k->pinset, sizeof(k->pinset));
	if (k->offer_len > 0)
		h = alpnguess_mix(h, k->offer, k->offer_len);
	return h;
}

/* Whether slot s holds the key k whose hash is h. */
static bool
alpnguess_holds(const struct alpnguess_slot *s, const struct alpnguess_key *k,
    uint64_t h)
{
	return s->used && s->hash == h && s->port == k->port &&
	    s->pinset == k->pinset && strcmp(s->host, k->host) == 0;
}

bool
alpnguess_get(const struct alpnguess *g, const struct alpnguess_key *k,
    unsigned char *proto, size_t *len)
{
	uint64_t			 h = alpnguess_hash(k);
	const struct alpnguess_slot	*s = &g->slot[h % ALPNGUESS_SLOTS];

	if (!alpnguess_holds(s, k, h))
		return false;
	if (s->len > 0)
		memcpy(proto, s->proto, s->len);
	*len = s->len;
	return true;
}

void
alpnguess_put(struct alpnguess *g, const struct alpnguess_key *k,
    const unsigned char *proto, size_t len)
{
	uint64_t		 h = alpnguess_hash(k);
	struct alpnguess_slot	*s = &g->slot[h % ALPNGUESS_SLOTS];

	if (len > ALPNGUESS_PROTO_MAX || strlen(k->host) >= sizeof(s->host)) {
		alpnguess_drop(g, k);
		return;
	}
	s->used = true;
	s->hash = h;
	memcpy(s->host, k->host, strlen(k->host) + 1);
	s->port = k->port;
	s->pinset = k->pinset;
	if (len > 0)
		memcpy(s->proto, proto, len);
	s->len = (unsigned char)len;
}

void
alpnguess_drop(struct alpnguess *g, const struct alpnguess_key *k)
{
	uint64_t		 h = alpnguess_hash(k);
	struct alpnguess_slot	*s = &g->slot[h % ALPNGUESS_SLOTS];

	if (alpnguess_holds(s, k, h))
		s->used = false;
}

bool
alpnguess_offered(const unsigned char *list, size_t listlen,
    const unsigned char *proto, size_t len)
{
	size_t	 i = 0;

	if (len == 0)
		return true;
	while (i < listlen) {
		size_t	 n = list[i];

		if (i + 1 + n > listlen)
			return false;
		if (n == len && memcmp(list + i + 1, proto, len) == 0)
			return true;
		i += 1 + n;
	}
	return false;
}

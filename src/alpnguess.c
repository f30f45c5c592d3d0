/*
 * The ALPN guesses of one generation: a table of sets of two slots keyed
 * by a SHA-256 digest of host, port, pin set, the upstream's address and
 * the client's offer, salted per table. A slot holds only a whole key's
 * digest, so a client cannot plant a guess for a key it does not know,
 * and cannot aim at the set of another's to evict it. Two keys that fall
 * in one set both stay; a third takes the slot used least recently.
 */
#include "config.h"

#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alpnguess.h"
#include "xmalloc.h"

#define ALPNGUESS_DIGEST	32
#define ALPNGUESS_SALT		16
#define ALPNGUESS_WAYS		2
/* Handshakes in a row that chose the same, after a wrong guess. */
#define ALPNGUESS_AGREE		2

struct alpnguess_slot {
	bool		 used;
	unsigned char	 digest[ALPNGUESS_DIGEST];	/* of the whole key */
	unsigned char	 proto[ALPNGUESS_PROTO_MAX];
	unsigned char	 len;
	/*
	 * A guess for the key was wrong: none is made until
	 * ALPNGUESS_AGREE handshakes in a row chose the same (agreed).
	 */
	bool		 wrong;
	unsigned char	 agreed;	/* 0: proto and len are not set */
	uint64_t	 touched;	/* the table's tick at the last use */
};

/* The last offer for a host, port and pin set (one slot each). */
struct alpnguess_offer {
	bool		 used;
	unsigned char	 digest[ALPNGUESS_DIGEST];	/* of host, port, set */
	unsigned char	 offer[ALPNGUESS_OFFER_MAX];
	unsigned char	 len;
};

struct alpnguess {
	unsigned char		 salt[ALPNGUESS_SALT];
	uint64_t		 tick;
	struct alpnguess_slot	 slot[ALPNGUESS_SLOTS];
	struct alpnguess_offer	 offer[ALPNGUESS_OFFERS];
};

struct alpnguess *
alpnguess_new(void)
{
	struct alpnguess	*g = xcalloc(1, sizeof(*g));

	/* Without randomness the salt is zero: slots are then predictable. */
	(void)RAND_bytes(g->salt, sizeof(g->salt));
	return g;
}

void
alpnguess_free(struct alpnguess *g)
{
	free(g);
}

/* The digest of k under g's salt; false when it cannot be computed. */
static bool
alpnguess_digest(const struct alpnguess *g, const struct alpnguess_key *k,
    unsigned char digest[ALPNGUESS_DIGEST])
{
	EVP_MD_CTX	*ctx;
	unsigned char	 port[2] = { k->port >> 8, k->port & 0xff };
	unsigned int	 len = ALPNGUESS_DIGEST;
	bool		 ok;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return false;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, g->salt, sizeof(g->salt)) == 1 &&
	    EVP_DigestUpdate(ctx, k->host, strlen(k->host) + 1) == 1 &&
	    EVP_DigestUpdate(ctx, port, sizeof(port)) == 1 &&
	    EVP_DigestUpdate(ctx, &k->pinset, sizeof(k->pinset)) == 1 &&
	    EVP_DigestUpdate(ctx, &k->addrlen, sizeof(k->addrlen)) == 1 &&
	    (k->addrlen == 0 ||
	    EVP_DigestUpdate(ctx, k->addr, k->addrlen) == 1) &&
	    EVP_DigestUpdate(ctx, &k->offer_len, sizeof(k->offer_len)) == 1 &&
	    (k->offer_len == 0 ||
	    EVP_DigestUpdate(ctx, k->offer, k->offer_len) == 1) &&
	    EVP_DigestFinal_ex(ctx, digest, &len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/*
 * The slot of k in its set, with k's digest: the one holding k, else (with
 * take) the one to put k in, unused or used least recently; NULL when
 * there is none or no digest can be computed.
 */
static struct alpnguess_slot *
alpnguess_slot(struct alpnguess *g, const struct alpnguess_key *k,
    unsigned char digest[ALPNGUESS_DIGEST], bool take)
{
	struct alpnguess_slot	*set, *victim;
	uint32_t		 i;
	int			 w;

	if (!alpnguess_digest(g, k, digest))
		return NULL;
	memcpy(&i, digest, sizeof(i));
	set = &g->slot[(i % (ALPNGUESS_SLOTS / ALPNGUESS_WAYS)) *
	    ALPNGUESS_WAYS];
	victim = &set[0];
	for (w = 0; w < ALPNGUESS_WAYS; w++) {
		if (set[w].used &&
		    memcmp(set[w].digest, digest, ALPNGUESS_DIGEST) == 0)
			return &set[w];
		if (!set[w].used ||
		    (victim->used && set[w].touched < victim->touched))
			victim = &set[w];
	}
	return take ? victim : NULL;
}

bool
alpnguess_get(struct alpnguess *g, const struct alpnguess_key *k,
    unsigned char *proto, size_t *len)
{
	struct alpnguess_slot	*s;
	unsigned char		 d[ALPNGUESS_DIGEST];

	if ((s = alpnguess_slot(g, k, d, false)) == NULL)
		return false;
	/* Kept before others of its set, a wrong one too: it is news. */
	s->touched = ++g->tick;
	if (s->wrong)
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
	struct alpnguess_slot	*s;
	unsigned char		 d[ALPNGUESS_DIGEST];
	bool			 same;

	if (len > ALPNGUESS_PROTO_MAX) {
		alpnguess_drop(g, k);
		return;
	}
	if ((s = alpnguess_slot(g, k, d, true)) == NULL)
		return;
	same = s->used && memcmp(s->digest, d, sizeof(d)) == 0;
	/* The same choice again, since a wrong guess: trusted once more. */
	if (same && s->wrong && s->agreed > 0 && s->len == len &&
	    (len == 0 || memcmp(s->proto, proto, len) == 0)) {
		if (++s->agreed >= ALPNGUESS_AGREE)
			s->wrong = false;
		s->touched = ++g->tick;
		return;
	}
	if (!same)
		s->wrong = false;
	s->used = true;
	s->agreed = 1;
	s->touched = ++g->tick;
	memcpy(s->digest, d, sizeof(d));
	if (len > 0)
		memcpy(s->proto, proto, len);
	s->len = (unsigned char)len;
}

void
alpnguess_drop(struct alpnguess *g, const struct alpnguess_key *k)
{
	struct alpnguess_slot	*s;
	unsigned char		 d[ALPNGUESS_DIGEST];

	/* Only a key still in the table: another key's guess stays. */
	if ((s = alpnguess_slot(g, k, d, false)) == NULL)
		return;
	s->wrong = true;
	s->agreed = 0;
	s->touched = ++g->tick;
}

/*
 * The offer slot of k's host, port and pin set, with their digest; NULL
 * when no digest can be computed. A slot takes one key at a time.
 */
static struct alpnguess_offer *
alpnguess_offer_slot(struct alpnguess *g, const struct alpnguess_key *k,
    unsigned char digest[ALPNGUESS_DIGEST])
{
	struct alpnguess_key	 hp = *k;
	uint32_t		 i;

	hp.addr = NULL;
	hp.addrlen = 0;
	hp.offer = NULL;
	hp.offer_len = 0;
	if (!alpnguess_digest(g, &hp, digest))
		return NULL;
	memcpy(&i, digest, sizeof(i));
	return &g->offer[i % ALPNGUESS_OFFERS];
}

void
alpnguess_put_offer(struct alpnguess *g, const struct alpnguess_key *k)
{
	struct alpnguess_offer	*o;
	unsigned char		 d[ALPNGUESS_DIGEST];

	if ((o = alpnguess_offer_slot(g, k, d)) == NULL)
		return;
	if (k->offer_len > ALPNGUESS_OFFER_MAX) {
		if (o->used && memcmp(o->digest, d, sizeof(d)) == 0)
			o->used = false;
		return;
	}
	o->used = true;
	memcpy(o->digest, d, sizeof(d));
	if (k->offer_len > 0)
		memcpy(o->offer, k->offer, k->offer_len);
	o->len = (unsigned char)k->offer_len;
}

bool
alpnguess_get_offer(struct alpnguess *g, const struct alpnguess_key *k,
    unsigned char *offer, size_t *len)
{
	struct alpnguess_offer	*o;
	unsigned char		 d[ALPNGUESS_DIGEST];

	if ((o = alpnguess_offer_slot(g, k, d)) == NULL || !o->used ||
	    memcmp(o->digest, d, sizeof(d)) != 0)
		return false;
	if (o->len > 0)
		memcpy(offer, o->offer, o->len);
	*len = o->len;
	return true;
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

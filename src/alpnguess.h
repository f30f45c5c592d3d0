/*
 * What an upstream chose with ALPN the last time, per host, port, pin set,
 * upstream address (a name's addresses, or the address a CONNECT by IP
 * dialled, may be different servers) and the list of protocols the client
 * offered (different clients offer different lists, and the upstream
 * chooses from the list), within one configuration generation:
 * interception answers the client's handshake with it while the
 * upstream's handshake still runs.
 * A fixed table (sets of two slots: a new key takes the one of its set
 * used least recently), so memory is bounded whatever the number of
 * hosts.
 */
#ifndef PINPROXY_ALPNGUESS_H
#define PINPROXY_ALPNGUESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Slots of a table, and the longest protocol name remembered. */
#define ALPNGUESS_SLOTS		128
#define ALPNGUESS_PROTO_MAX	32
/* Offers remembered (one per host, port and pin set), and their length. */
#define ALPNGUESS_OFFERS	64
#define ALPNGUESS_OFFER_MAX	64

struct alpnguess;

/* What a guess is for. */
struct alpnguess_key {
	const char		*host;
	uint16_t		 port;
	const void		*pinset;
	const void		*addr;		/* the upstream's sockaddr */
	size_t			 addrlen;	/* 0: none known */
	const unsigned char	*offer;		/* the client's list, wire form */
	size_t			 offer_len;
};

struct alpnguess *alpnguess_new(void);
/* Free (NULL ok). */
void		 alpnguess_free(struct alpnguess *g);
/*
 * The protocol last chosen for the key: true with its name in proto
 * (ALPNGUESS_PROTO_MAX bytes) and *len (0: the server chose none); false
 * when nothing is known. A guess used is kept before others of its set.
 */
bool		 alpnguess_get(struct alpnguess *g,
		    const struct alpnguess_key *k, unsigned char *proto,
		    size_t *len);
/* Remember what the upstream chose (len 0: none); too long: forget. */
void		 alpnguess_put(struct alpnguess *g,
		    const struct alpnguess_key *k, const unsigned char *proto,
		    size_t len);
/*
 * A guess for the key turned out wrong: none is made for it until two
 * handshakes in a row chose the same again (alpnguess_put), so an
 * upstream that alternates gets none; a key whose slot went to others
 * meanwhile is learnt afresh.
 */
void		 alpnguess_drop(struct alpnguess *g,
		    const struct alpnguess_key *k);
/*
 * Remember k's offer as the last one a client made for k's host, port and
 * pin set (k's address is not part of it), so that the upstream's hello
 * can be made before the next client's arrives; a longer offer than
 * ALPNGUESS_OFFER_MAX is not kept.
 */
void		 alpnguess_put_offer(struct alpnguess *g,
		    const struct alpnguess_key *k);
/*
 * The offer last remembered for k's host, port and pin set, into offer
 * (ALPNGUESS_OFFER_MAX bytes) and *len; false when none is known.
 */
bool		 alpnguess_get_offer(struct alpnguess *g,
		    const struct alpnguess_key *k, unsigned char *offer,
		    size_t *len);
/*
 * Whether proto (len bytes, a name, not wire format) is in the client's
 * ALPN list (wire format); a guess of no protocol always fits.
 */
bool		 alpnguess_offered(const unsigned char *list, size_t listlen,
		    const unsigned char *proto, size_t len);

#endif

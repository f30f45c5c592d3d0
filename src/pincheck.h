/*
 * The pin verdict: given the pin set that covers a host and the chain that
 * OpenSSL verified (leaf first, as it built it, never as the server sent
 * it), decide whether the connection may carry traffic.
 */
#ifndef PINPROXY_PINCHECK_H
#define PINPROXY_PINCHECK_H

#include <openssl/x509.h>

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "conf.h"
#include "pin.h"

/* Longest chain whose pins are recorded; deeper certificates are ignored. */
#define PINCHECK_MAX_CHAIN	10
/* A buffer that holds pincheck_seen_text() of the longest chain. */
#define PINCHECK_SEEN_TEXT_MAX	(PINCHECK_MAX_CHAIN * PIN_TEXT_MAX)

enum pin_verdict {
	PIN_MATCH,		/* a pin of the set is in the chain */
	PIN_MISMATCH,		/* enforced, and no pin matched: refuse */
	PIN_REPORT_ONLY,	/* enforce = no, and no pin matched: relay */
	PIN_EXPIRED,		/* the set is past expires: not enforced */
	PIN_UNPINNED		/* no pin set: verification only */
};

/* A candidate of the set found in the verified chain. */
struct pincheck_candidate {
	size_t			 index;		/* in the set's candidates */
	int			 depth;		/* where it was found */
};

struct pincheck_result {
	enum pin_verdict	 verdict;
	/*
	 * The lowest depth where a pin matched within its scope, -1 when
	 * none did; set also when require = leaf+ca was only half met.
	 */
	int			 matched_depth;
	bool			 leaf_matched;	/* a pin matched at depth 0 */
	bool			 ca_matched;	/* one matched at depth >= 1 */
	size_t			 nseen;
	struct pin		 seen[PINCHECK_MAX_CHAIN];	/* leaf first */
	/*
	 * The chain held more than seen: a key that could not be hashed,
	 * or certificates beyond PINCHECK_MAX_CHAIN.
	 */
	bool			 partial;
	size_t			 ncandidates;
	struct pincheck_candidate candidates[PINCHECK_MAX_CHAIN];
	/*
	 * When the chain was checked; a resumed session's result is that of
	 * the full handshake it goes back to, and so is this.
	 */
	time_t			 checked;
	/*
	 * The first notAfter of the chain checked: its verdict stands no
	 * longer (0: unknown, which stands for nothing).
	 */
	time_t			 valid_until;
};

/*
 * The verdict for a verified chain against ps (NULL for an unpinned host)
 * at time now; res gets the pins seen, leaf first, the depth that matched
 * and the candidates of ps present in the chain.
 */
enum pin_verdict pincheck_verdict(const struct pinset *ps,
		    STACK_OF(X509) *verified_chain, time_t now,
		    struct pincheck_result *res);
/* Whether a verdict lets traffic through. */
bool		 pincheck_allows(enum pin_verdict v);
/* The seen pins, space-separated, leaf first, into buf. */
void		 pincheck_seen_text(const struct pincheck_result *res,
		    char *buf, size_t len);
/*
 * A text for a person: the pins seen, leaf first, and the pins of ps, the
 * pin set that was applied (for the body of a pin-mismatch answer).
 */
void		 pincheck_explain(const struct pinset *ps,
		    const struct pincheck_result *res, char *buf, size_t len);
/* A verdict's name: "match", "mismatch", "report_only", "expired"... */
const char	*pincheck_verdict_name(enum pin_verdict v);

#endif

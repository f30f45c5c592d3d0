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

struct pincheck_result {
	enum pin_verdict	 verdict;
	int			 matched_depth;	/* -1 when none matched */
	size_t			 nseen;
	struct pin		 seen[PINCHECK_MAX_CHAIN];	/* leaf first */
};

/*
 * The verdict for a verified chain against ps (NULL for an unpinned host)
 * at time now; res gets the pins seen, leaf first.
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

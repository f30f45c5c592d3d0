/*
 * The pin verdict: hash every certificate of the chain OpenSSL verified and
 * compare the hashes with the pin set of the host. Only the verified path
 * counts; what else the server sent is never looked at here.
 */
#include "config.h"

#include <openssl/x509.h>

#include <stdio.h>
#include <string.h>

#include "certfile.h"
#include "pincheck.h"

static const char *const pincheck_verdict_names[] = {
	[PIN_MATCH] =		"match",
	[PIN_MISMATCH] =	"mismatch",
	[PIN_REPORT_ONLY] =	"report_only",
	[PIN_EXPIRED] =		"expired",
	[PIN_UNPINNED] =	"unpinned",
};

/*
 * Record the pins of the chain, leaf first. A certificate whose key cannot
 * be hashed ends the record there: fewer pins can only fail closed.
 */
static void
pincheck_record(STACK_OF(X509) *chain, struct pincheck_result *res)
{
	time_t	 from;
	int	 i, n;

	res->nseen = 0;
	res->partial = false;
	res->valid_until = 0;
	if (chain == NULL)
		return;
	(void)certfile_chain_window(chain, &from, &res->valid_until);
	n = sk_X509_num(chain);
	for (i = 0; i < n && i < PINCHECK_MAX_CHAIN; i++) {
		if (!pin_from_cert(sk_X509_value(chain, i),
		    &res->seen[res->nseen]))
			break;
		res->nseen++;
	}
	res->partial = res->nseen < (size_t)n;
}

/*
 * Match the seen pins with the pins of the set, each within its scope:
 * the lowest depth that matched, and whether the leaf and a CA matched.
 * Every pair is compared and the result is selected with masks, so the
 * time taken does not depend on which digest bytes, or which pair,
 * matched.
 */
static void
pincheck_match(const struct pinset *ps, struct pincheck_result *res)
{
	unsigned int	 eq, take, mask, found, leaf, ca;
	int		 depth;
	size_t		 i, j;

	depth = -1;
	found = leaf = ca = 0;
	for (i = 0; i < res->nseen; i++) {
		for (j = 0; j < ps->npins; j++) {
			eq = (unsigned int)pin_equal(&res->seen[i],
			    &ps->pins[j]) & (unsigned int)pin_scope_allows(
			    ps->pins[j].scope, i);
			take = eq & (found ^ 1u);
			mask = 0u - take;
			depth = (int)(((unsigned int)depth & ~mask) |
			    ((unsigned int)i & mask));
			found |= eq;
			leaf |= eq & (unsigned int)(i == 0);
			ca |= eq & (unsigned int)(i != 0);
		}
	}
	res->matched_depth = depth;
	res->leaf_matched = leaf != 0;
	res->ca_matched = ca != 0;
}

/* Record the candidates of the set in the chain, at their lowest depth. */
static void
pincheck_candidates(const struct pinset *ps, struct pincheck_result *res)
{
	size_t	 i, j;

	res->ncandidates = 0;
	for (j = 0; j < ps->ncandidates; j++) {
		for (i = 0; i < res->nseen; i++) {
			if (!pin_equal(&res->seen[i], &ps->candidates[j]))
				continue;
			if (res->ncandidates < PINCHECK_MAX_CHAIN) {
				res->candidates[res->ncandidates].index = j;
				res->candidates[res->ncandidates].depth =
				    (int)i;
				res->ncandidates++;
			}
			break;
		}
	}
}

/* Whether the matches meet what the set requires. */
static bool
pincheck_met(const struct pinset *ps, const struct pincheck_result *res)
{
	if (ps->require == PINSET_REQUIRE_LEAF_CA)
		return res->leaf_matched && res->ca_matched;
	return res->matched_depth >= 0;
}

enum pin_verdict
pincheck_verdict(const struct pinset *ps, STACK_OF(X509) *verified_chain,
    time_t now, struct pincheck_result *res)
{
	memset(res, 0, sizeof(*res));
	res->matched_depth = -1;
	res->checked = now;
	pincheck_record(verified_chain, res);

	if (ps == NULL) {
		res->verdict = PIN_UNPINNED;
		return res->verdict;
	}
	pincheck_match(ps, res);
	pincheck_candidates(ps, res);
	if (pinset_expired(ps, now))
		res->verdict = PIN_EXPIRED;
	else if (pincheck_met(ps, res))
		res->verdict = PIN_MATCH;
	else if (ps->enforce)
		res->verdict = PIN_MISMATCH;
	else
		res->verdict = PIN_REPORT_ONLY;
	return res->verdict;
}

bool
pincheck_allows(enum pin_verdict v)
{
	return v != PIN_MISMATCH;
}

void
pincheck_seen_text(const struct pincheck_result *res, char *buf, size_t len)
{
	char	 text[PIN_TEXT_MAX];
	size_t	 i, used;
	int	 n;

	if (len == 0)
		return;
	buf[0] = '\0';
	used = 0;
	for (i = 0; i < res->nseen; i++) {
		pin_format(&res->seen[i], text, sizeof(text));
		n = snprintf(buf + used, len - used, "%s%s", i > 0 ? " " : "",
		    text);
		/* Leave out a pin that does not fit rather than cut it. */
		if (n < 0 || (size_t)n >= len - used) {
			buf[used] = '\0';
			break;
		}
		used += (size_t)n;
	}
}

const char *
pincheck_verdict_name(enum pin_verdict v)
{
	if ((size_t)v >= sizeof(pincheck_verdict_names) /
	    sizeof(pincheck_verdict_names[0]) ||
	    pincheck_verdict_names[v] == NULL)
		return "unknown";
	return pincheck_verdict_names[v];
}

void
pincheck_explain(const struct pinset *ps,
    const struct pincheck_result *res, char *buf, size_t len)
{
	char	 pin[PIN_SCOPED_TEXT_MAX];
	size_t	 i, o;
	int	 n;

	if (ps->require == PINSET_REQUIRE_LEAF_CA && res->matched_depth >= 0)
		n = snprintf(buf, len, "Pin set \"%s\" requires a leaf pin "
		    "and a CA pin; the server's verified chain matched no %s "
		    "pin.\nPins seen (leaf first):\n", ps->name,
		    res->leaf_matched ? "CA" : "leaf");
	else
		n = snprintf(buf, len, "The server's verified chain matched "
		    "no pin of pin set \"%s\".\nPins seen (leaf first):\n",
		    ps->name);
	o = n < 0 ? 0 : (size_t)n;
	for (i = 0; i < res->nseen && o < len; i++) {
		pin_format(&res->seen[i], pin, sizeof(pin));
		n = snprintf(buf + o, len - o, "  depth %zu: %s\n", i, pin);
		o += n < 0 ? 0 : (size_t)n;
	}
	if (o < len) {
		n = snprintf(buf + o, len - o, "Pins of [pins:%s]:\n",
		    ps->name);
		o += n < 0 ? 0 : (size_t)n;
	}
	for (i = 0; i < ps->npins && o < len; i++) {
		pin_format_scoped(&ps->pins[i], pin, sizeof(pin));
		n = snprintf(buf + o, len - o, "  %s\n", pin);
		o += n < 0 ? 0 : (size_t)n;
	}
}

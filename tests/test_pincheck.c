/*
 * Tests of the pin verdict on chains verified for real at test time, the
 * attack of a pinned certificate appended to an unrelated chain, and the
 * trust stores the verification runs against.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/x509.h>

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "deny.h"
#include "pin.h"
#include "pincheck.h"
#include "testpki.h"
#include "trust.h"
#include "xmalloc.h"

#define HOST	"api.example.test"

/* Two unrelated PKIs, both trusted, and a scratch directory. */
struct fixture {
	struct testpki_chain	 a;	/* root A -> intermediate A -> leaf */
	struct testpki_chain	 b;	/* root B -> intermediate B -> leaf */
	EVP_PKEY		*b_direct_key;
	X509			*b_direct;	/* HOST, issued by root B */
	X509_STORE		*store;		/* trusts root A and root B */
	char			*dir;
};

static int
setup(void **state)
{
	struct fixture	*f;

	f = xcalloc(1, sizeof(*f));
	testpki_chain_make(&f->a, "Pinned", HOST);
	testpki_chain_make(&f->b, "Other", HOST);
	f->b_direct_key = testpki_key(TESTPKI_EC);
	f->b_direct = testpki_leaf(HOST, f->b_direct_key, f->b.root,
	    f->b.root_key);
	f->store = testpki_store(f->a.root, f->b.root, NULL);
	f->dir = testpki_tmpdir();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	testpki_rmdir(f->dir);
	free(f->dir);
	X509_STORE_free(f->store);
	X509_free(f->b_direct);
	EVP_PKEY_free(f->b_direct_key);
	testpki_chain_free(&f->b);
	testpki_chain_free(&f->a);
	free(f);
	return 0;
}

/* The pin of a certificate, which must have one. */
static struct pin
pin_of(X509 *cert)
{
	struct pin	 p;

	assert_true(pin_from_cert(cert, &p));
	return p;
}

/* An enforced pin set over HOST with the given pins, without expiry. */
static struct pinset
pinset_of(struct pin *pins, size_t npins)
{
	static char	*hosts[] = { HOST };
	struct pinset	 ps = {
		.name = "test",
		.line = 1,
		.hosts = hosts,
		.nhosts = 1,
		.pins = pins,
		.npins = npins,
		.enforce = true,
		.port = 443,
	};

	return ps;
}

/* Verify chain a as served by a server (leaf, intermediate) for HOST. */
static STACK_OF(X509) *
verified_a(struct fixture *f)
{
	STACK_OF(X509)	*served, *chain;
	char		 why[256];

	served = testpki_stack(f->a.leaf, f->a.ca, NULL);
	chain = testpki_verify(f->store, served, HOST, why, sizeof(why));
	if (chain == NULL)
		fail_msg("chain A did not verify: %s", why);
	testpki_stack_free(served);
	assert_int_equal(sk_X509_num(chain), 3);
	return chain;
}

static void
test_verdict_matches_a_pin_of_the_leaf(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 pins[1];
	struct pinset		 ps;

	pins[0] = pin_of(f->a.leaf);
	ps = pinset_of(pins, 1);
	chain = verified_a(f);
	assert_int_equal(pincheck_verdict(&ps, chain, time(NULL), &res),
	    PIN_MATCH);
	assert_int_equal(res.verdict, PIN_MATCH);
	assert_int_equal(res.matched_depth, 0);
	testpki_stack_free(chain);
}

static void
test_verdict_matches_a_pin_of_the_intermediate(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 pins[1];
	struct pinset		 ps;

	pins[0] = pin_of(f->a.ca);
	ps = pinset_of(pins, 1);
	chain = verified_a(f);
	assert_int_equal(pincheck_verdict(&ps, chain, time(NULL), &res),
	    PIN_MATCH);
	assert_int_equal(res.matched_depth, 1);
	testpki_stack_free(chain);
}

static void
test_verdict_matches_a_root_the_server_did_not_send(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 pins[1];
	struct pinset		 ps;

	pins[0] = pin_of(f->a.root);
	ps = pinset_of(pins, 1);
	chain = verified_a(f);
	assert_int_equal(pincheck_verdict(&ps, chain, time(NULL), &res),
	    PIN_MATCH);
	assert_int_equal(res.matched_depth, 2);
	testpki_stack_free(chain);
}

static void
test_verdict_matches_a_backup_pin(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 pins[2];
	struct pinset		 ps;

	pins[0] = pin_of(f->b.ca);
	pins[1] = pin_of(f->a.ca);
	ps = pinset_of(pins, 2);
	chain = verified_a(f);
	assert_int_equal(pincheck_verdict(&ps, chain, time(NULL), &res),
	    PIN_MATCH);
	assert_int_equal(res.matched_depth, 1);
	testpki_stack_free(chain);
}

static void
test_verdict_reports_the_depth_closest_to_the_leaf(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 pins[2];
	struct pinset		 ps;

	pins[0] = pin_of(f->a.root);
	pins[1] = pin_of(f->a.ca);
	ps = pinset_of(pins, 2);
	chain = verified_a(f);
	assert_int_equal(pincheck_verdict(&ps, chain, time(NULL), &res),
	    PIN_MATCH);
	assert_int_equal(res.matched_depth, 1);
	testpki_stack_free(chain);
}

/* The pin of a certificate with a scope. */
static struct pin
scoped_pin_of(X509 *cert, enum pin_scope scope)
{
	struct pin	 p;

	p = pin_of(cert);
	p.scope = scope;
	return p;
}

static void
test_verdict_ignores_a_leaf_pin_of_the_intermediate(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 pins[1];
	struct pinset		 ps;

	pins[0] = scoped_pin_of(f->a.ca, PIN_SCOPE_LEAF);
	ps = pinset_of(pins, 1);
	chain = verified_a(f);
	assert_int_equal(pincheck_verdict(&ps, chain, time(NULL), &res),
	    PIN_MISMATCH);
	assert_int_equal(res.matched_depth, -1);
	testpki_stack_free(chain);
}

static void
test_verdict_ignores_a_ca_pin_of_the_leaf(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 pins[1];
	struct pinset		 ps;

	pins[0] = scoped_pin_of(f->a.leaf, PIN_SCOPE_CA);
	ps = pinset_of(pins, 1);
	chain = verified_a(f);
	assert_int_equal(pincheck_verdict(&ps, chain, time(NULL), &res),
	    PIN_MISMATCH);
	testpki_stack_free(chain);
}

static void
test_verdict_matches_a_ca_pin_of_the_root(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 pins[1];
	struct pinset		 ps;

	pins[0] = scoped_pin_of(f->a.root, PIN_SCOPE_CA);
	ps = pinset_of(pins, 1);
	chain = verified_a(f);
	assert_int_equal(pincheck_verdict(&ps, chain, time(NULL), &res),
	    PIN_MATCH);
	assert_int_equal(res.matched_depth, 2);
	assert_true(res.ca_matched);
	assert_false(res.leaf_matched);
	testpki_stack_free(chain);
}

static void
test_verdict_requires_both_a_leaf_and_a_ca_pin(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 pins[2];
	struct pinset		 ps;

	pins[0] = scoped_pin_of(f->a.leaf, PIN_SCOPE_LEAF);
	pins[1] = scoped_pin_of(f->b.ca, PIN_SCOPE_CA);
	ps = pinset_of(pins, 2);
	ps.require = PINSET_REQUIRE_LEAF_CA;
	chain = verified_a(f);
	assert_int_equal(pincheck_verdict(&ps, chain, time(NULL), &res),
	    PIN_MISMATCH);
	assert_int_equal(res.matched_depth, 0);
	assert_true(res.leaf_matched);
	assert_false(res.ca_matched);

	pins[1] = scoped_pin_of(f->a.ca, PIN_SCOPE_CA);
	assert_int_equal(pincheck_verdict(&ps, chain, time(NULL), &res),
	    PIN_MATCH);
	assert_true(res.leaf_matched);
	assert_true(res.ca_matched);
	testpki_stack_free(chain);
}

static void
test_verdict_records_candidates_that_never_grant_access(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 pins[1], cands[2];
	struct pinset		 ps;

	pins[0] = pin_of(f->b.root);
	cands[0] = pin_of(f->b.ca);
	cands[1] = pin_of(f->a.ca);
	ps = pinset_of(pins, 1);
	ps.candidates = cands;
	ps.ncandidates = 2;
	chain = verified_a(f);
	assert_int_equal(pincheck_verdict(&ps, chain, time(NULL), &res),
	    PIN_MISMATCH);
	assert_int_equal(res.ncandidates, 1);
	assert_int_equal(res.candidates[0].index, 1);
	assert_int_equal(res.candidates[0].depth, 1);
	testpki_stack_free(chain);
}

static void
test_verdict_is_mismatch_when_no_pin_is_in_the_chain(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 pins[2];
	struct pinset		 ps;

	pins[0] = pin_of(f->b.root);
	pins[1] = pin_of(f->b.ca);
	ps = pinset_of(pins, 2);
	chain = verified_a(f);
	assert_int_equal(pincheck_verdict(&ps, chain, time(NULL), &res),
	    PIN_MISMATCH);
	assert_int_equal(res.matched_depth, -1);
	assert_false(pincheck_allows(res.verdict));
	testpki_stack_free(chain);
}

static void
test_verdict_is_report_only_when_not_enforced(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 pins[1];
	struct pinset		 ps;

	pins[0] = pin_of(f->b.root);
	ps = pinset_of(pins, 1);
	ps.enforce = false;
	chain = verified_a(f);
	assert_int_equal(pincheck_verdict(&ps, chain, time(NULL), &res),
	    PIN_REPORT_ONLY);
	assert_int_equal(res.matched_depth, -1);
	assert_true(pincheck_allows(res.verdict));
	testpki_stack_free(chain);
}

static void
test_verdict_is_match_when_not_enforced_and_a_pin_matches(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 pins[1];
	struct pinset		 ps;

	pins[0] = pin_of(f->a.leaf);
	ps = pinset_of(pins, 1);
	ps.enforce = false;
	chain = verified_a(f);
	assert_int_equal(pincheck_verdict(&ps, chain, time(NULL), &res),
	    PIN_MATCH);
	testpki_stack_free(chain);
}

static void
test_verdict_is_expired_after_the_expiry_date(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 pins[1];
	struct pinset		 ps;
	time_t			 now;

	now = time(NULL);
	pins[0] = pin_of(f->b.root);
	ps = pinset_of(pins, 1);
	ps.has_expires = true;
	ps.expires = now - 2 * TESTPKI_DAY;
	chain = verified_a(f);
	assert_int_equal(pincheck_verdict(&ps, chain, now, &res),
	    PIN_EXPIRED);
	assert_true(pincheck_allows(res.verdict));
	assert_int_equal(res.nseen, 3);
	testpki_stack_free(chain);
}

static void
test_verdict_is_enforced_until_the_expiry_date_ends(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 pins[1];
	struct pinset		 ps;
	time_t			 now;

	now = time(NULL);
	pins[0] = pin_of(f->b.root);
	ps = pinset_of(pins, 1);
	ps.has_expires = true;
	ps.expires = now - TESTPKI_DAY + 60;
	chain = verified_a(f);
	assert_int_equal(pincheck_verdict(&ps, chain, now, &res),
	    PIN_MISMATCH);
	ps.expires = now + 30 * TESTPKI_DAY;
	assert_int_equal(pincheck_verdict(&ps, chain, now, &res),
	    PIN_MISMATCH);
	testpki_stack_free(chain);
}

static void
test_verdict_is_unpinned_without_a_pin_set(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;

	chain = verified_a(f);
	assert_int_equal(pincheck_verdict(NULL, chain, time(NULL), &res),
	    PIN_UNPINNED);
	assert_int_equal(res.matched_depth, -1);
	assert_int_equal(res.nseen, 3);
	assert_true(pincheck_allows(res.verdict));
	testpki_stack_free(chain);
}

static void
test_verdict_records_the_verified_chain_leaf_first(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 pins[1], want;
	struct pinset		 ps;

	pins[0] = pin_of(f->b.root);
	ps = pinset_of(pins, 1);
	chain = verified_a(f);
	pincheck_verdict(&ps, chain, time(NULL), &res);
	assert_int_equal(res.nseen, 3);
	want = pin_of(f->a.leaf);
	assert_true(pin_equal(&res.seen[0], &want));
	want = pin_of(f->a.ca);
	assert_true(pin_equal(&res.seen[1], &want));
	want = pin_of(f->a.root);
	assert_true(pin_equal(&res.seen[2], &want));
	assert_false(res.partial);
	testpki_stack_free(chain);
}

/*
 * Whether a reload's deny list holds a pin the older one did not: what a
 * connection whose record misses keys of its chain is refused for.
 */
static void
test_deny_adds_finds_a_pin_the_old_list_lacks(void **state)
{
	struct pin	 p[4];
	size_t		 i;

	(void)state;
	memset(p, 0, sizeof(p));
	for (i = 0; i < 4; i++)
		p[i].digest[0] = (unsigned char)(i + 1);	/* sorted */
	assert_false(deny_adds(p, 0, NULL, 0));		/* none at all */
	assert_true(deny_adds(p, 2, NULL, 0));		/* the first ones */
	assert_false(deny_adds(p, 2, p, 2));		/* the same */
	assert_false(deny_adds(p + 1, 1, p, 3));	/* fewer */
	assert_true(deny_adds(p, 3, p, 2));		/* one more */
	assert_true(deny_adds(p + 3, 1, p, 3));		/* another */
	assert_false(deny_adds(p, 2, p, 4));
}

/*
 * A reload checks the keys recorded at the verdict against its deny pins:
 * the same depth and key as a check of the chain itself.
 */
static void
test_deny_pins_match_the_recorded_keys_as_the_chain(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 deny[2], other, which, want;

	chain = verified_a(f);
	pincheck_verdict(NULL, chain, time(NULL), &res);
	deny[0] = other = pin_of(f->b.root);
	deny[1] = want = pin_of(f->a.ca);
	deny_sort(deny, 2);
	assert_int_equal(deny_match(deny, 2, chain, &which), 1);
	assert_true(pin_equal(&which, &want));
	memset(&which, 0, sizeof(which));
	assert_int_equal(deny_match_keys(deny, 2, res.seen, res.nseen,
	    &which), 1);
	assert_true(pin_equal(&which, &want));
	/* Nothing denied: neither finds a key. */
	assert_int_equal(deny_match(&other, 1, chain, &which), -1);
	assert_int_equal(deny_match_keys(&other, 1, res.seen, res.nseen,
	    &which), -1);
	assert_int_equal(deny_match_keys(deny, 0, res.seen, res.nseen,
	    &which), -1);
	testpki_stack_free(chain);
}

/*
 * The attack: a server for HOST presents an unrelated leaf, issued by a
 * trusted CA, and appends the pinned intermediate (and root) of the real
 * operator. The pinned certificates are sent but are not on the path that
 * OpenSSL verified, so they must not count.
 */
static void
test_verdict_ignores_a_pinned_ca_appended_to_another_chain(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*served, *chain;
	struct pin		 pins[2], sent;
	struct pinset		 ps;
	char			 why[256];
	int			 i;

	pins[0] = pin_of(f->a.ca);
	pins[1] = pin_of(f->a.root);
	ps = pinset_of(pins, 2);

	served = testpki_stack(f->b_direct, f->a.ca, f->a.root, NULL);
	chain = testpki_verify(f->store, served, HOST, why, sizeof(why));
	if (chain == NULL)
		fail_msg("the attacker's chain did not verify: %s", why);

	/* A check of the chain as sent would have been fooled. */
	sent = pin_of(sk_X509_value(served, 1));
	assert_true(pin_equal(&sent, &pins[0]));

	assert_int_equal(sk_X509_num(chain), 2);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 0), f->b_direct), 0);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 1), f->b.root), 0);
	assert_int_equal(pincheck_verdict(&ps, chain, time(NULL), &res),
	    PIN_MISMATCH);
	assert_int_equal(res.matched_depth, -1);
	assert_false(pincheck_allows(res.verdict));
	assert_int_equal(res.nseen, 2);
	for (i = 0; i < (int)res.nseen; i++) {
		assert_false(pin_equal(&res.seen[i], &pins[0]));
		assert_false(pin_equal(&res.seen[i], &pins[1]));
	}
	testpki_stack_free(chain);
	testpki_stack_free(served);
}

static void
test_verdict_of_an_empty_chain_is_mismatch(void **state)
{
	struct pincheck_result	 res;
	struct pin		 pins[1];
	struct pinset		 ps;
	STACK_OF(X509)		*empty;

	memset(pins, 0, sizeof(pins));
	ps = pinset_of(pins, 1);
	assert_int_equal(pincheck_verdict(&ps, NULL, time(NULL), &res),
	    PIN_MISMATCH);
	assert_int_equal(res.nseen, 0);
	empty = sk_X509_new_null();
	assert_int_equal(pincheck_verdict(&ps, empty, time(NULL), &res),
	    PIN_MISMATCH);
	assert_int_equal(res.nseen, 0);
	testpki_stack_free(empty);
}

static void
test_verdict_ignores_certificates_past_the_longest_chain(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 pins[1];
	struct pinset		 ps;
	int			 i;

	chain = sk_X509_new_null();
	for (i = 0; i < PINCHECK_MAX_CHAIN; i++) {
		assert_true(X509_up_ref(f->a.leaf) == 1);
		assert_true(sk_X509_push(chain, f->a.leaf) > 0);
	}
	assert_true(X509_up_ref(f->a.root) == 1);
	assert_true(sk_X509_push(chain, f->a.root) > 0);

	pins[0] = pin_of(f->a.root);
	ps = pinset_of(pins, 1);
	assert_int_equal(pincheck_verdict(&ps, chain, time(NULL), &res),
	    PIN_MISMATCH);
	assert_int_equal(res.nseen, PINCHECK_MAX_CHAIN);
	/* A later check of the recorded keys knows it misses one. */
	assert_true(res.partial);
	testpki_stack_free(chain);
}

static void
test_verify_fails_on_a_host_name_mismatch(void **state)
{
	struct fixture	*f = *state;
	STACK_OF(X509)	*served, *chain;
	char		 why[256];

	served = testpki_stack(f->a.leaf, f->a.ca, NULL);
	chain = testpki_verify(f->store, served, "other.example.test", why,
	    sizeof(why));
	assert_null(chain);
	assert_non_null(strstr(why, "hostname mismatch"));
	testpki_stack_free(served);
}

static void
test_verify_fails_without_a_trusted_root(void **state)
{
	struct fixture	*f = *state;
	STACK_OF(X509)	*served;
	X509_STORE	*only_b;
	char		 why[256];

	only_b = testpki_store(f->b.root, NULL);
	served = testpki_stack(f->a.leaf, f->a.ca, NULL);
	assert_null(testpki_verify(only_b, served, HOST, why, sizeof(why)));
	testpki_stack_free(served);
	X509_STORE_free(only_b);
}

static void
test_verify_fails_for_an_expired_leaf(void **state)
{
	struct fixture		*f = *state;
	struct testpki_spec	 spec = {
		.cn = HOST,
		.san = "DNS:" HOST,
		.not_before = -10 * TESTPKI_DAY,
		.not_after = -TESTPKI_DAY,
	};
	STACK_OF(X509)		*served;
	X509			*old;
	char			 why[256];

	old = testpki_issue(&spec, f->a.leaf_key, f->a.ca, f->a.ca_key);
	served = testpki_stack(old, f->a.ca, NULL);
	assert_null(testpki_verify(f->store, served, HOST, why, sizeof(why)));
	assert_non_null(strstr(why, "expired"));
	testpki_stack_free(served);
	X509_free(old);
}

static void
test_verify_checks_an_ip_address_leaf(void **state)
{
	struct fixture	*f = *state;
	STACK_OF(X509)	*served, *chain;
	X509		*leaf;

	leaf = testpki_leaf("127.0.0.1", f->a.leaf_key, f->a.ca, f->a.ca_key);
	served = testpki_stack(leaf, f->a.ca, NULL);
	chain = testpki_verify(f->store, served, "127.0.0.1", NULL, 0);
	assert_non_null(chain);
	testpki_stack_free(chain);
	assert_null(testpki_verify(f->store, served, "127.0.0.2", NULL, 0));
	testpki_stack_free(served);
	X509_free(leaf);
}

static void
test_allows_everything_but_mismatch(void **state)
{
	assert_true(pincheck_allows(PIN_MATCH));
	assert_false(pincheck_allows(PIN_MISMATCH));
	assert_true(pincheck_allows(PIN_REPORT_ONLY));
	assert_true(pincheck_allows(PIN_EXPIRED));
	assert_true(pincheck_allows(PIN_UNPINNED));
}

static void
test_verdict_names_are_the_documented_ones(void **state)
{
	assert_string_equal(pincheck_verdict_name(PIN_MATCH), "match");
	assert_string_equal(pincheck_verdict_name(PIN_MISMATCH), "mismatch");
	assert_string_equal(pincheck_verdict_name(PIN_REPORT_ONLY),
	    "report_only");
	assert_string_equal(pincheck_verdict_name(PIN_EXPIRED), "expired");
	assert_string_equal(pincheck_verdict_name(PIN_UNPINNED), "unpinned");
}

static void
test_seen_text_lists_pins_leaf_first_separated_by_spaces(void **state)
{
	struct fixture		*f = *state;
	struct pincheck_result	 res;
	STACK_OF(X509)		*chain;
	struct pin		 p;
	char			 text[PINCHECK_SEEN_TEXT_MAX];
	char			 expect[PINCHECK_SEEN_TEXT_MAX];
	char			 want[3][PIN_TEXT_MAX];

	chain = verified_a(f);
	pincheck_verdict(NULL, chain, time(NULL), &res);
	p = pin_of(f->a.leaf);
	pin_format(&p, want[0], sizeof(want[0]));
	p = pin_of(f->a.ca);
	pin_format(&p, want[1], sizeof(want[1]));
	p = pin_of(f->a.root);
	pin_format(&p, want[2], sizeof(want[2]));
	snprintf(expect, sizeof(expect), "%s %s %s", want[0], want[1],
	    want[2]);
	pincheck_seen_text(&res, text, sizeof(text));
	assert_string_equal(text, expect);

	/* A short buffer keeps whole pins only. */
	pincheck_seen_text(&res, text, PIN_TEXT_MAX + 10);
	assert_string_equal(text, want[0]);
	pincheck_seen_text(&res, text, 5);
	assert_string_equal(text, "");
	testpki_stack_free(chain);
}

static void
test_seen_text_of_a_full_chain_fits_the_documented_buffer(void **state)
{
	struct pincheck_result	 res;
	char			 text[PINCHECK_SEEN_TEXT_MAX];
	size_t			 i;

	memset(&res, 0, sizeof(res));
	res.nseen = PINCHECK_MAX_CHAIN;
	for (i = 0; i < res.nseen; i++)
		res.seen[i].digest[0] = (unsigned char)i;
	pincheck_seen_text(&res, text, sizeof(text));
	assert_int_equal(strlen(text),
	    PINCHECK_MAX_CHAIN * PIN_TEXT_MAX - 1);
}

static void
test_trust_store_from_a_pem_file_verifies_its_chains(void **state)
{
	struct fixture	*f = *state;
	STACK_OF(X509)	*served, *chain;
	X509_STORE	*store;
	char		*path, err[512];

	path = testpki_write_cert(f->dir, "roots-a.pem", f->a.root);
	store = trust_store_new(path, NULL, err, sizeof(err));
	if (store == NULL)
		fail_msg("%s", err);
	served = testpki_stack(f->a.leaf, f->a.ca, NULL);
	chain = testpki_verify(store, served, HOST, NULL, 0);
	assert_non_null(chain);
	testpki_stack_free(chain);
	testpki_stack_free(served);

	served = testpki_stack(f->b.leaf, f->b.ca, NULL);
	assert_null(testpki_verify(store, served, HOST, NULL, 0));
	testpki_stack_free(served);
	X509_STORE_free(store);
	free(path);
}

static void
test_trust_store_adds_the_extra_ca_file(void **state)
{
	struct fixture	*f = *state;
	STACK_OF(X509)	*served, *chain;
	X509_STORE	*store;
	char		*a, *b, err[512];

	a = testpki_write_cert(f->dir, "extra-a.pem", f->a.root);
	b = testpki_write_cert(f->dir, "extra-b.pem", f->b.root);
	store = trust_store_new(b, a, err, sizeof(err));
	if (store == NULL)
		fail_msg("%s", err);
	served = testpki_stack(f->a.leaf, f->a.ca, NULL);
	chain = testpki_verify(store, served, HOST, NULL, 0);
	assert_non_null(chain);
	testpki_stack_free(chain);
	testpki_stack_free(served);
	X509_STORE_free(store);

	/* The same roots twice are not an error. */
	store = trust_store_new(a, a, err, sizeof(err));
	if (store == NULL)
		fail_msg("%s", err);
	X509_STORE_free(store);
	free(a);
	free(b);
}

static void
test_trust_stores_of_one_source_keep_their_extra_files_apart(void **state)
{
	struct fixture	*f = *state;
	STACK_OF(X509)	*served_a, *served_b, *chain;
	X509_STORE	*with_a, *plain;
	struct trust	*tr;
	char		*a, *b, err[512];

	a = testpki_write_cert(f->dir, "apart-a.pem", f->a.root);
	b = testpki_write_cert(f->dir, "apart-b.pem", f->b.root);
	if ((tr = trust_new(b, err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	with_a = trust_store(tr, a, err, sizeof(err));
	plain = trust_store(tr, NULL, err, sizeof(err));
	assert_non_null(with_a);
	assert_non_null(plain);
	/* The stores keep their anchors once the source is gone. */
	trust_free(tr);
	served_a = testpki_stack(f->a.leaf, f->a.ca, NULL);
	served_b = testpki_stack(f->b.leaf, f->b.ca, NULL);
	assert_non_null(chain = testpki_verify(with_a, served_a, HOST, NULL,
	    0));
	testpki_stack_free(chain);
	assert_non_null(chain = testpki_verify(with_a, served_b, HOST, NULL,
	    0));
	testpki_stack_free(chain);
	assert_non_null(chain = testpki_verify(plain, served_b, HOST, NULL,
	    0));
	testpki_stack_free(chain);
	assert_null(testpki_verify(plain, served_a, HOST, NULL, 0));
	testpki_stack_free(served_a);
	testpki_stack_free(served_b);
	X509_STORE_free(with_a);
	X509_STORE_free(plain);
	free(a);
	free(b);
}

static void
test_trust_store_copies_every_system_root(void **state)
{
	X509_STORE	*direct, *copy;
	struct trust	*tr;
	char		 err[512];

	direct = X509_STORE_new();
	assert_non_null(direct);
	assert_int_equal(X509_STORE_set_default_paths(direct), 1);
	if ((tr = trust_new("system", err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	if ((copy = trust_store(tr, NULL, err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	assert_int_equal(sk_X509_OBJECT_num(X509_STORE_get0_objects(copy)),
	    sk_X509_OBJECT_num(X509_STORE_get0_objects(direct)));
	trust_free(tr);
	X509_STORE_free(copy);
	X509_STORE_free(direct);
}

static void
test_trust_store_from_a_directory_of_hashed_roots(void **state)
{
	struct fixture	*f = *state;
	STACK_OF(X509)	*served, *chain;
	X509_STORE	*store;
	char		*sub, *path, name[32], err[512];

	sub = xasprintf("%s/roots.d", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(name, sizeof(name), "%08lx.0",
	    X509_subject_name_hash(f->a.root));
	path = testpki_write_cert(sub, name, f->a.root);
	store = trust_store_new(sub, NULL, err, sizeof(err));
	if (store == NULL)
		fail_msg("%s", err);
	served = testpki_stack(f->a.leaf, f->a.ca, NULL);
	chain = testpki_verify(store, served, HOST, NULL, 0);
	assert_non_null(chain);
	testpki_stack_free(chain);
	testpki_stack_free(served);
	X509_STORE_free(store);
	testpki_rmdir(sub);
	free(path);
	free(sub);
}

/*
 * A directory without hashed roots (empty, or certificates never hashed)
 * is refused as a file without certificates is: every verification
 * would fail.
 */
static void
test_trust_store_refuses_a_directory_without_hashed_roots(void **state)
{
	struct fixture	*f = *state;
	char		*sub, *path, err[512];

	sub = xasprintf("%s/unhashed.d", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_null(trust_store_new(sub, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "no root certificate found in"));
	path = testpki_write_cert(sub, "root.pem", f->a.root);
	assert_false(trust_check(sub, err, sizeof(err)));
	assert_non_null(strstr(err, "openssl rehash"));
	testpki_rmdir(sub);
	free(path);
	free(sub);
}

static void
test_trust_store_refuses_a_file_without_certificates(void **state)
{
	struct fixture	*f = *state;
	char		*path, err[512], want[512];

	path = testpki_write_key(f->dir, "not-roots.pem", f->a.leaf_key);
	assert_null(trust_store_new(path, NULL, err, sizeof(err)));
	snprintf(want, sizeof(want), "no certificate found in %s", path);
	assert_string_equal(err, want);
	assert_false(trust_check(path, err, sizeof(err)));
	assert_string_equal(err, want);
	free(path);
}

static void
test_trust_store_names_a_missing_file(void **state)
{
	struct fixture	*f = *state;
	char		*path, *roots, err[512];

	path = xasprintf("%s/missing.pem", f->dir);
	assert_null(trust_store_new(path, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file or directory"));

	roots = testpki_write_cert(f->dir, "roots-ok.pem", f->a.root);
	err[0] = '\0';
	assert_null(trust_store_new(roots, path, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	free(roots);
	free(path);
}

static void
test_trust_store_loads_the_system_roots(void **state)
{
	X509_STORE	*store;
	char		 err[512];

	store = trust_store_new("system", NULL, err, sizeof(err));
	assert_non_null(store);
	X509_STORE_free(store);
	assert_true(trust_check("system", err, sizeof(err)));
}

static void
test_trust_store_refuses_an_empty_source(void **state)
{
	char	 err[512];

	assert_null(trust_store_new("", NULL, err, sizeof(err)));
	assert_false(trust_check("", err, sizeof(err)));
}

static void
test_pincheck_explain_names_the_set_the_seen_pins_and_the_wanted_ones(
    void **state)
{
	struct pin		 pins[2];
	struct pinset		 ps;
	struct pincheck_result	 res;
	char			 text[2048], pin[PIN_TEXT_MAX];

	memset(pins, 0, sizeof(pins));
	pins[1].digest[0] = 1;
	memset(&ps, 0, sizeof(ps));
	ps.name = (char *)"api-set";
	ps.pins = pins;
	ps.npins = 2;
	memset(&res, 0, sizeof(res));
	res.verdict = PIN_MISMATCH;
	res.nseen = 2;
	res.seen[0].digest[0] = 0xaa;
	res.seen[1].digest[0] = 0xbb;
	pincheck_explain(&ps, &res, text, sizeof(text));
	assert_non_null(strstr(text, "\"api-set\""));
	pin_format(&res.seen[0], pin, sizeof(pin));
	assert_non_null(strstr(text, pin));
	pin_format(&res.seen[1], pin, sizeof(pin));
	assert_non_null(strstr(text, pin));
	/* Seen pins come leaf first, before the pins of the set. */
	assert_true(strstr(text, "depth 0") < strstr(text, "depth 1"));
	pin_format(&pins[1], pin, sizeof(pin));
	assert_true(strstr(text, "depth 1") < strstr(text, pin));
	/* A small buffer is cut, never overrun. */
	pincheck_explain(&ps, &res, text, 40);
	assert_int_equal(strlen(text), 39);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verdict_matches_a_pin_of_the_leaf),
		cmocka_unit_test(
		    test_verdict_matches_a_pin_of_the_intermediate),
		cmocka_unit_test(
		    test_verdict_matches_a_root_the_server_did_not_send),
		cmocka_unit_test(test_verdict_matches_a_backup_pin),
		cmocka_unit_test(
		    test_verdict_ignores_a_leaf_pin_of_the_intermediate),
		cmocka_unit_test(test_verdict_ignores_a_ca_pin_of_the_leaf),
		cmocka_unit_test(test_verdict_matches_a_ca_pin_of_the_root),
		cmocka_unit_test(
		    test_verdict_requires_both_a_leaf_and_a_ca_pin),
		cmocka_unit_test(
		    test_verdict_records_candidates_that_never_grant_access),
		cmocka_unit_test(
		    test_verdict_reports_the_depth_closest_to_the_leaf),
		cmocka_unit_test(
		    test_verdict_is_mismatch_when_no_pin_is_in_the_chain),
		cmocka_unit_test(test_verdict_is_report_only_when_not_enforced),
		cmocka_unit_test(
		    test_verdict_is_match_when_not_enforced_and_a_pin_matches),
		cmocka_unit_test(test_verdict_is_expired_after_the_expiry_date),
		cmocka_unit_test(
		    test_verdict_is_enforced_until_the_expiry_date_ends),
		cmocka_unit_test(test_verdict_is_unpinned_without_a_pin_set),
		cmocka_unit_test(
		    test_verdict_records_the_verified_chain_leaf_first),
		cmocka_unit_test(
		    test_deny_pins_match_the_recorded_keys_as_the_chain),
		cmocka_unit_test(test_deny_adds_finds_a_pin_the_old_list_lacks),
		cmocka_unit_test(
		    test_verdict_ignores_a_pinned_ca_appended_to_another_chain),
		cmocka_unit_test(test_verdict_of_an_empty_chain_is_mismatch),
		cmocka_unit_test(
		    test_verdict_ignores_certificates_past_the_longest_chain),
		cmocka_unit_test(test_verify_fails_on_a_host_name_mismatch),
		cmocka_unit_test(test_verify_fails_without_a_trusted_root),
		cmocka_unit_test(test_verify_fails_for_an_expired_leaf),
		cmocka_unit_test(test_verify_checks_an_ip_address_leaf),
		cmocka_unit_test(test_allows_everything_but_mismatch),
		cmocka_unit_test(test_verdict_names_are_the_documented_ones),
		cmocka_unit_test(
		    test_seen_text_lists_pins_leaf_first_separated_by_spaces),
		cmocka_unit_test(
		    test_seen_text_of_a_full_chain_fits_the_documented_buffer),
		cmocka_unit_test(
		    test_trust_store_from_a_pem_file_verifies_its_chains),
		cmocka_unit_test(test_trust_store_adds_the_extra_ca_file),
		cmocka_unit_test(
		    test_trust_stores_of_one_source_keep_their_extra_files_apart),
		cmocka_unit_test(test_trust_store_copies_every_system_root),
		cmocka_unit_test(
		    test_trust_store_from_a_directory_of_hashed_roots),
		cmocka_unit_test(
		    test_trust_store_refuses_a_file_without_certificates),
		cmocka_unit_test(test_trust_store_names_a_missing_file),
		cmocka_unit_test(
		    test_trust_store_refuses_a_directory_without_hashed_roots),
		cmocka_unit_test(test_trust_store_loads_the_system_roots),
		cmocka_unit_test(test_trust_store_refuses_an_empty_source),
		cmocka_unit_test(
	    test_pincheck_explain_names_the_set_the_seen_pins_and_the_wanted_ones),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

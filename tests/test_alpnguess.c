/*
 * Tests of the ALPN guesses: a key is host, port, pin set and the client's
 * offer; what is put is got back, a drop forgets it until two handshakes
 * in a row agree again, a set keeps two keys
 * and then the one used last, and a guess is only used when the client
 * offers it. The last offer of a host, port and pin set is kept too.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "alpnguess.h"

#define OFFER_BOTH	"\x02h2\x08http/1.1"
#define OFFER_11	"\x08http/1.1"

static const int	 pinset_a, pinset_b;

static struct alpnguess_key
key(const char *host, uint16_t port, const void *ps, const char *offer)
{
	struct alpnguess_key	 k;

	k.host = host;
	k.port = port;
	k.pinset = ps;
	k.addr = NULL;
	k.addrlen = 0;
	k.offer = (const unsigned char *)offer;
	k.offer_len = offer != NULL ? strlen(offer) : 0;
	return k;
}

static void
test_put_then_get_returns_the_protocol(void **state)
{
	struct alpnguess	*g = alpnguess_new();
	struct alpnguess_key	 k = key("api.test", 443, &pinset_a, OFFER_BOTH);
	unsigned char		 p[ALPNGUESS_PROTO_MAX];
	size_t			 len = 99;

	assert_false(alpnguess_get(g, &k, p, &len));
	alpnguess_put(g, &k, (const unsigned char *)"h2", 2);
	assert_true(alpnguess_get(g, &k, p, &len));
	assert_int_equal(len, 2);
	assert_memory_equal(p, "h2", 2);
	alpnguess_free(g);
}

static void
test_no_protocol_is_a_guess_too(void **state)
{
	struct alpnguess	*g = alpnguess_new();
	struct alpnguess_key	 k = key("api.test", 443, &pinset_a, NULL);
	unsigned char		 p[ALPNGUESS_PROTO_MAX];
	size_t			 len = 99;

	alpnguess_put(g, &k, NULL, 0);
	assert_true(alpnguess_get(g, &k, p, &len));
	assert_int_equal(len, 0);
	alpnguess_free(g);
}

static void
test_every_part_of_the_key_counts(void **state)
{
	struct alpnguess	*g = alpnguess_new();
	struct alpnguess_key	 k = key("api.test", 443, &pinset_a, OFFER_BOTH);
	struct alpnguess_key	 others[] = {
		key("other.test", 443, &pinset_a, OFFER_BOTH),
		key("api.test", 8443, &pinset_a, OFFER_BOTH),
		key("api.test", 443, &pinset_b, OFFER_BOTH),
		key("api.test", 443, &pinset_a, OFFER_11),
		key("api.test", 443, &pinset_a, NULL),
		key("api.test", 443, &pinset_a, OFFER_BOTH),
		key("api.test", 443, &pinset_a, OFFER_BOTH),
	};
	/* Two servers of one name: a guess of one is not the other's. */
	struct sockaddr_in	 a1, a2;
	unsigned char		 p[ALPNGUESS_PROTO_MAX];
	size_t			 len, i;

	memset(&a1, 0, sizeof(a1));
	a1.sin_family = AF_INET;
	a1.sin_port = htons(443);
	a1.sin_addr.s_addr = htonl(0x7f000001);
	a2 = a1;
	a2.sin_addr.s_addr = htonl(0x7f000002);
	k.addr = &a1;
	k.addrlen = sizeof(a1);
	others[5].addr = &a2;
	others[5].addrlen = sizeof(a2);
	/* others[6]: no address known. */
	alpnguess_put(g, &k, (const unsigned char *)"h2", 2);
	assert_true(alpnguess_get(g, &k, p, &len));
	for (i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		assert_false(alpnguess_get(g, &others[i], p, &len));
	alpnguess_free(g);
}

static void
test_drop_forgets(void **state)
{
	struct alpnguess	*g = alpnguess_new();
	struct alpnguess_key	 k = key("api.test", 443, &pinset_a, OFFER_BOTH);
	unsigned char		 p[ALPNGUESS_PROTO_MAX];
	size_t			 len;

	alpnguess_put(g, &k, (const unsigned char *)"h2", 2);
	alpnguess_drop(g, &k);
	assert_false(alpnguess_get(g, &k, p, &len));
	alpnguess_free(g);
}

/*
 * After a wrong guess, a key is guessed again only once two handshakes in
 * a row chose the same: an upstream that alternates between two
 * protocols gets no guess (each would be wrong), one that changed once
 * gets them back.
 */
static void
test_a_wrong_guess_waits_for_two_agreeing_choices(void **state)
{
	struct alpnguess	*g = alpnguess_new();
	struct alpnguess_key	 k = key("api.test", 443, &pinset_a, OFFER_BOTH);
	struct alpnguess_key	 o = key("other.test", 443, &pinset_a,
				    OFFER_BOTH);
	unsigned char		 p[ALPNGUESS_PROTO_MAX];
	size_t			 len;
	int			 i;

	alpnguess_put(g, &k, (const unsigned char *)"h2", 2);
	alpnguess_put(g, &o, (const unsigned char *)"h2", 2);
	alpnguess_drop(g, &k);
	assert_false(alpnguess_get(g, &k, p, &len));
	/* Alternating: never a guess. */
	for (i = 0; i < 6; i++) {
		if (i % 2 == 0)
			alpnguess_put(g, &k, (const unsigned char *)
			    "http/1.1", 8);
		else
			alpnguess_put(g, &k, (const unsigned char *)"h2", 2);
		assert_false(alpnguess_get(g, &k, p, &len));
	}
	/* The same twice in a row: guessed again. */
	alpnguess_put(g, &k, (const unsigned char *)"h2", 2);
	assert_true(alpnguess_get(g, &k, p, &len));
	assert_int_equal(len, 2);
	assert_memory_equal(p, "h2", 2);
	/* And no protocol agreeing with itself counts too. */
	alpnguess_drop(g, &k);
	alpnguess_put(g, &k, NULL, 0);
	assert_false(alpnguess_get(g, &k, p, &len));
	alpnguess_put(g, &k, NULL, 0);
	assert_true(alpnguess_get(g, &k, p, &len));
	assert_int_equal(len, 0);
	/* Asked for (no guess), a wrong key keeps its slot before others. */
	alpnguess_drop(g, &k);
	assert_false(alpnguess_get(g, &k, p, &len));
	/* Another key kept its guess throughout. */
	assert_true(alpnguess_get(g, &o, p, &len));
	assert_memory_equal(p, "h2", 2);
	alpnguess_free(g);
}

/* A drop of a key not in the table takes no other key's slot. */
static void
test_a_drop_takes_no_slot(void **state)
{
	struct alpnguess	*g = alpnguess_new();
	struct alpnguess_key	 k;
	unsigned char		 p[ALPNGUESS_PROTO_MAX];
	char			 host[32];
	size_t			 len;
	int			 i, kept = 0;

	for (i = 0; i < ALPNGUESS_SLOTS; i++) {
		snprintf(host, sizeof(host), "h%d.test", i);
		k = key(host, 443, &pinset_a, OFFER_BOTH);
		alpnguess_put(g, &k, (const unsigned char *)"h2", 2);
	}
	for (i = 0; i < 4 * ALPNGUESS_SLOTS; i++) {
		snprintf(host, sizeof(host), "gone%d.test", i);
		k = key(host, 443, &pinset_a, OFFER_BOTH);
		alpnguess_drop(g, &k);
	}
	for (i = 0; i < ALPNGUESS_SLOTS; i++) {
		snprintf(host, sizeof(host), "h%d.test", i);
		k = key(host, 443, &pinset_a, OFFER_BOTH);
		kept += alpnguess_get(g, &k, p, &len);
	}
	/* Those the sets had room for (two ways each) are all still there. */
	assert_true(kept > ALPNGUESS_SLOTS / 2);
	k = key("gone0.test", 443, &pinset_a, OFFER_BOTH);
	assert_false(alpnguess_get(g, &k, p, &len));
	alpnguess_free(g);
}

static void
test_a_too_long_protocol_is_forgotten(void **state)
{
	struct alpnguess	*g = alpnguess_new();
	struct alpnguess_key	 k = key("api.test", 443, &pinset_a, OFFER_BOTH);
	unsigned char		 p[ALPNGUESS_PROTO_MAX], big[ALPNGUESS_PROTO_MAX + 1];
	size_t			 len;

	memset(big, 'x', sizeof(big));
	alpnguess_put(g, &k, (const unsigned char *)"h2", 2);
	alpnguess_put(g, &k, big, sizeof(big));
	assert_false(alpnguess_get(g, &k, p, &len));
	alpnguess_free(g);
}

static void
test_many_hosts_stay_bounded_and_correct(void **state)
{
	struct alpnguess	*g = alpnguess_new();
	struct alpnguess_key	 k;
	unsigned char		 p[ALPNGUESS_PROTO_MAX];
	char			 host[32];
	size_t			 len, i, found = 0;

	for (i = 0; i < 4 * ALPNGUESS_SLOTS; i++) {
		snprintf(host, sizeof(host), "h%zu.test", i);
		k = key(host, 443, &pinset_a, NULL);
		alpnguess_put(g, &k, (const unsigned char *)host, strlen(host));
	}
	for (i = 0; i < 4 * ALPNGUESS_SLOTS; i++) {
		snprintf(host, sizeof(host), "h%zu.test", i);
		k = key(host, 443, &pinset_a, NULL);
		if (!alpnguess_get(g, &k, p, &len))
			continue;
		/* What is found is always that host's own guess. */
		assert_int_equal(len, strlen(host));
		assert_memory_equal(p, host, len);
		found++;
	}
	assert_true(found > 0 && found <= ALPNGUESS_SLOTS);
	alpnguess_free(g);
}

static void
test_offered_finds_a_protocol_in_the_list(void **state)
{
	const unsigned char	*both = (const unsigned char *)OFFER_BOTH;
	size_t			 n = strlen(OFFER_BOTH);

	assert_true(alpnguess_offered(both, n, (const unsigned char *)"h2", 2));
	assert_true(alpnguess_offered(both, n,
	    (const unsigned char *)"http/1.1", 8));
	assert_false(alpnguess_offered(both, n,
	    (const unsigned char *)"http/1", 6));
	assert_false(alpnguess_offered(NULL, 0,
	    (const unsigned char *)"h2", 2));
	/* No protocol fits any offer; a truncated list offers nothing. */
	assert_true(alpnguess_offered(NULL, 0, NULL, 0));
	assert_false(alpnguess_offered(both, 5,
	    (const unsigned char *)"http/1.1", 8));
}

/*
 * Two keys always both stay, whatever their sets (in a direct-mapped
 * table, one in 128 pairs took each other's slot), and a third in a full
 * set takes the slot used least recently.
 */
static void
test_two_keys_both_stay(void **state)
{
	struct alpnguess	*g;
	struct alpnguess_key	 a = key("a.test", 443, &pinset_a, OFFER_BOTH);
	struct alpnguess_key	 b = key("a.test", 443, &pinset_a, OFFER_11);
	unsigned char		 p[ALPNGUESS_PROTO_MAX];
	size_t			 len;
	int			 i;

	for (i = 0; i < 1000; i++) {
		g = alpnguess_new();
		alpnguess_put(g, &a, (const unsigned char *)"h2", 2);
		alpnguess_put(g, &b, (const unsigned char *)"http/1.1", 8);
		assert_true(alpnguess_get(g, &a, p, &len));
		assert_int_equal(len, 2);
		assert_true(alpnguess_get(g, &b, p, &len));
		assert_int_equal(len, 8);
		alpnguess_free(g);
	}
}

static void
test_a_used_guess_outlives_an_unused_one(void **state)
{
	struct alpnguess	*g = alpnguess_new();
	struct alpnguess_key	 k, first;
	unsigned char		 p[ALPNGUESS_PROTO_MAX];
	char			 host[32];
	size_t			 len, i;

	/*
	 * The first key, used after every put: whatever falls in its set
	 * later evicts the other slot, never it.
	 */
	first = key("first.test", 443, &pinset_a, NULL);
	alpnguess_put(g, &first, (const unsigned char *)"h2", 2);
	for (i = 0; i < 4 * ALPNGUESS_SLOTS; i++) {
		snprintf(host, sizeof(host), "h%zu.test", i);
		k = key(host, 443, &pinset_a, NULL);
		alpnguess_put(g, &k, (const unsigned char *)"x", 1);
		assert_true(alpnguess_get(g, &first, p, &len));
	}
	alpnguess_free(g);
}

static void
test_the_last_offer_is_kept_per_host_port_and_pin_set(void **state)
{
	struct alpnguess	*g = alpnguess_new();
	struct alpnguess_key	 k = key("api.test", 443, &pinset_a, OFFER_BOTH);
	struct alpnguess_key	 same = key("api.test", 443, &pinset_a, NULL);
	struct alpnguess_key	 others[] = {
		key("other.test", 443, &pinset_a, NULL),
		key("api.test", 8443, &pinset_a, NULL),
		key("api.test", 443, &pinset_b, NULL),
	};
	struct sockaddr_in	 a1;
	unsigned char		 o[ALPNGUESS_OFFER_MAX];
	size_t			 len = 99, i;

	(void)state;
	assert_false(alpnguess_get_offer(g, &k, o, &len));
	memset(&a1, 0, sizeof(a1));
	a1.sin_family = AF_INET;
	a1.sin_addr.s_addr = htonl(0x7f000001);
	k.addr = &a1;
	k.addrlen = sizeof(a1);
	alpnguess_put_offer(g, &k);
	/* Neither the address nor an offer is part of the lookup. */
	assert_true(alpnguess_get_offer(g, &same, o, &len));
	assert_int_equal(len, strlen(OFFER_BOTH));
	assert_memory_equal(o, OFFER_BOTH, len);
	for (i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		assert_false(alpnguess_get_offer(g, &others[i], o, &len));
	/* The last client's offer replaces the one before, none too. */
	k = key("api.test", 443, &pinset_a, NULL);
	alpnguess_put_offer(g, &k);
	assert_true(alpnguess_get_offer(g, &same, o, &len));
	assert_int_equal(len, 0);
	alpnguess_free(g);
}

static void
test_a_too_long_offer_is_not_kept_and_forgets(void **state)
{
	struct alpnguess	*g = alpnguess_new();
	struct alpnguess_key	 k = key("api.test", 443, &pinset_a, OFFER_11);
	unsigned char		 longer[ALPNGUESS_OFFER_MAX + 1];
	unsigned char		 o[ALPNGUESS_OFFER_MAX];
	size_t			 len;

	(void)state;
	alpnguess_put_offer(g, &k);
	assert_true(alpnguess_get_offer(g, &k, o, &len));
	memset(longer, 'x', sizeof(longer));
	longer[0] = sizeof(longer) - 1;
	k.offer = longer;
	k.offer_len = sizeof(longer);
	alpnguess_put_offer(g, &k);
	assert_false(alpnguess_get_offer(g, &k, o, &len));
	alpnguess_free(g);
}

static void
test_many_offers_stay_bounded_and_correct(void **state)
{
	struct alpnguess	*g = alpnguess_new();
	struct alpnguess_key	 k;
	unsigned char		 o[ALPNGUESS_OFFER_MAX];
	char			 host[32];
	size_t			 len, i, found = 0;

	(void)state;
	for (i = 0; i < 4 * ALPNGUESS_OFFERS; i++) {
		snprintf(host, sizeof(host), "h%zu.test", i);
		k = key(host, 443, &pinset_a, i % 2 ? OFFER_11 : OFFER_BOTH);
		alpnguess_put_offer(g, &k);
	}
	for (i = 0; i < 4 * ALPNGUESS_OFFERS; i++) {
		snprintf(host, sizeof(host), "h%zu.test", i);
		k = key(host, 443, &pinset_a, NULL);
		if (!alpnguess_get_offer(g, &k, o, &len))
			continue;
		found++;
		/* Whatever is found is that host's own. */
		assert_int_equal(len, strlen(i % 2 ? OFFER_11 : OFFER_BOTH));
		assert_memory_equal(o, i % 2 ? OFFER_11 : OFFER_BOTH, len);
	}
	assert_true(found > 0 && found <= ALPNGUESS_OFFERS);
	alpnguess_free(g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_then_get_returns_the_protocol),
		cmocka_unit_test(test_no_protocol_is_a_guess_too),
		cmocka_unit_test(test_every_part_of_the_key_counts),
		cmocka_unit_test(test_drop_forgets),
		cmocka_unit_test(test_a_wrong_guess_waits_for_two_agreeing_choices),
		cmocka_unit_test(test_a_drop_takes_no_slot),
		cmocka_unit_test(test_a_too_long_protocol_is_forgotten),
		cmocka_unit_test(test_many_hosts_stay_bounded_and_correct),
		cmocka_unit_test(test_two_keys_both_stay),
		cmocka_unit_test(test_a_used_guess_outlives_an_unused_one),
		cmocka_unit_test(test_offered_finds_a_protocol_in_the_list),
		cmocka_unit_test(
		    test_the_last_offer_is_kept_per_host_port_and_pin_set),
		cmocka_unit_test(test_a_too_long_offer_is_not_kept_and_forgets),
		cmocka_unit_test(test_many_offers_stay_bounded_and_correct),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Tests of the ring of recent upstream dials that tells a redirected
 * connection of pinproxy's own from a client's: a dial is known by both
 * its ends, IPv4-mapped IPv6 spellings count as IPv4, a dial of the
 * unspecified address as one of loopback, and the oldest dial gives way
 * when the ring is full.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string.h>

#include "dialring.h"

/* An address and port as a sockaddr, IPv4 or IPv6 by its spelling. */
static const struct sockaddr *
sa(struct sockaddr_storage *ss, const char *addr, uint16_t port)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
	} else {
		assert_int_equal(inet_pton(AF_INET6, addr, &sin6->sin6_addr),
		    1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
	}
	return (struct sockaddr *)ss;
}

static void
test_dialring_knows_a_dial_by_both_ends(void **state)
{
	struct dialring		*r = dialring_new();
	struct sockaddr_storage	 a, b;

	(void)state;
	assert_false(dialring_has(r, sa(&a, "127.0.0.1", 40000),
	    sa(&b, "127.0.0.2", 443)));
	dialring_add(r, sa(&a, "127.0.0.1", 40000), sa(&b, "127.0.0.2", 443));
	assert_true(dialring_has(r, sa(&a, "127.0.0.1", 40000),
	    sa(&b, "127.0.0.2", 443)));
	/* Another port or address at either end: a client's. */
	assert_false(dialring_has(r, sa(&a, "127.0.0.1", 40001),
	    sa(&b, "127.0.0.2", 443)));
	assert_false(dialring_has(r, sa(&a, "127.0.0.1", 40000),
	    sa(&b, "127.0.0.2", 8443)));
	assert_false(dialring_has(r, sa(&a, "127.0.0.3", 40000),
	    sa(&b, "127.0.0.2", 443)));
	assert_false(dialring_has(r, sa(&a, "127.0.0.1", 40000),
	    sa(&b, "127.0.0.3", 443)));
	dialring_free(r);
}

static void
test_dialring_takes_ipv4_mapped_addresses_as_ipv4(void **state)
{
	struct dialring		*r = dialring_new();
	struct sockaddr_storage	 a, b;

	(void)state;
	dialring_add(r, sa(&a, "127.0.0.1", 40000), sa(&b, "127.0.0.2", 443));
	/* A dual-stack listener sees the peer as ::ffff:127.0.0.1. */
	assert_true(dialring_has(r, sa(&a, "::ffff:127.0.0.1", 40000),
	    sa(&b, "::ffff:127.0.0.2", 443)));
	/* A dial of 0.0.0.0 or :: arrives at loopback. */
	dialring_add(r, sa(&a, "127.0.0.1", 40003), sa(&b, "0.0.0.0", 443));
	assert_true(dialring_has(r, sa(&a, "127.0.0.1", 40003),
	    sa(&b, "127.0.0.1", 443)));
	dialring_add(r, sa(&a, "::1", 40004), sa(&b, "::", 443));
	assert_true(dialring_has(r, sa(&a, "::1", 40004), sa(&b, "::1", 443)));
	dialring_add(r, sa(&a, "127.0.0.1", 40005),
	    sa(&b, "::ffff:0.0.0.0", 443));
	assert_true(dialring_has(r, sa(&a, "127.0.0.1", 40005),
	    sa(&b, "127.0.0.1", 443)));
	dialring_add(r, sa(&a, "::1", 40002), sa(&b, "::1", 443));
	assert_true(dialring_has(r, sa(&a, "::1", 40002), sa(&b, "::1", 443)));
	assert_false(dialring_has(r, sa(&a, "::2", 40002),
	    sa(&b, "::1", 443)));
	dialring_free(r);
}

static void
test_dialring_forgets_the_oldest_when_full(void **state)
{
	struct dialring		*r = dialring_new();
	struct sockaddr_storage	 a, b;
	unsigned int		 i;

	(void)state;
	for (i = 0; i <= DIALRING_SLOTS; i++)
		dialring_add(r, sa(&a, "127.0.0.1", (uint16_t)(20000 + i)),
		    sa(&b, "127.0.0.2", 443));
	assert_false(dialring_has(r, sa(&a, "127.0.0.1", 20000),
	    sa(&b, "127.0.0.2", 443)));
	assert_true(dialring_has(r, sa(&a, "127.0.0.1", 20001),
	    sa(&b, "127.0.0.2", 443)));
	assert_true(dialring_has(r, sa(&a, "127.0.0.1",
	    (uint16_t)(20000 + DIALRING_SLOTS)), sa(&b, "127.0.0.2", 443)));
	/* No ring: nothing is remembered, nothing is known. */
	dialring_add(NULL, sa(&a, "127.0.0.1", 1), sa(&b, "127.0.0.2", 443));
	assert_false(dialring_has(NULL, sa(&a, "127.0.0.1", 1),
	    sa(&b, "127.0.0.2", 443)));
	dialring_free(r);
}

static uint64_t	 fake_now_us;

static uint64_t
fake_clock(void)
{
	return fake_now_us;
}

/*
 * A dial counts for DIALRING_TTL_MS: long after, the kernel may give a
 * client the same port towards the same address, and it is no loop.
 */
static void
test_dialring_forgets_a_dial_after_its_time(void **state)
{
	struct dialring		*r = dialring_new();
	struct sockaddr_storage	 a, b;

	(void)state;
	dialring_set_clock(r, fake_clock);
	fake_now_us = 1000000;
	dialring_add(r, sa(&a, "127.0.0.1", 40000), sa(&b, "127.0.0.2", 443));
	fake_now_us += (uint64_t)DIALRING_TTL_MS * 1000;
	assert_true(dialring_has(r, sa(&a, "127.0.0.1", 40000),
	    sa(&b, "127.0.0.2", 443)));
	fake_now_us += 1;
	assert_false(dialring_has(r, sa(&a, "127.0.0.1", 40000),
	    sa(&b, "127.0.0.2", 443)));
	/* The same ends dialled again count again. */
	dialring_add(r, sa(&a, "127.0.0.1", 40000), sa(&b, "127.0.0.2", 443));
	assert_true(dialring_has(r, sa(&a, "127.0.0.1", 40000),
	    sa(&b, "127.0.0.2", 443)));
	dialring_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dialring_knows_a_dial_by_both_ends),
		cmocka_unit_test(
		    test_dialring_takes_ipv4_mapped_addresses_as_ipv4),
		cmocka_unit_test(test_dialring_forgets_the_oldest_when_full),
		cmocka_unit_test(test_dialring_forgets_a_dial_after_its_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

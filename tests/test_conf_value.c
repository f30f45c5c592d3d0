/*
 * Tests of the configuration value parsers: every accepted spelling, the
 * boundaries, and that each rejection explains itself in err.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "conf_value.h"

/* Run a parser on bad input and require a non-empty reason. */
#define assert_rejected(call, err) do {					\
	(err)[0] = '\0';						\
	assert_false(call);						\
	assert_true((err)[0] != '\0');					\
} while (0)

static struct sockaddr_in
v4(const char *text, uint16_t port)
{
	struct sockaddr_in	 sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, text, &sin.sin_addr), 1);
	return sin;
}

static struct sockaddr_in6
v6(const char *text, uint16_t port)
{
	struct sockaddr_in6	 sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(port);
	assert_int_equal(inet_pton(AF_INET6, text, &sin6.sin6_addr), 1);
	return sin6;
}

static bool
match4(const struct cidr *c, const char *text)
{
	struct sockaddr_in	 sin = v4(text, 1);

	return cidr_match(c, (struct sockaddr *)&sin);
}

static bool
match6(const struct cidr *c, const char *text)
{
	struct sockaddr_in6	 sin6 = v6(text, 1);

	return cidr_match(c, (struct sockaddr *)&sin6);
}

static void
test_duration_accepts_plain_seconds_and_units(void **state)
{
	uint64_t	 ms;
	char		 err[128];

	assert_true(cv_duration("30", &ms, err, sizeof(err)));
	assert_int_equal(ms, 30000);
	assert_true(cv_duration("30s", &ms, err, sizeof(err)));
	assert_int_equal(ms, 30000);
	assert_true(cv_duration("5m", &ms, err, sizeof(err)));
	assert_int_equal(ms, 300000);
	assert_true(cv_duration("1h", &ms, err, sizeof(err)));
	assert_int_equal(ms, 3600000);
	assert_true(cv_duration("0", &ms, err, sizeof(err)));
	assert_int_equal(ms, 0);
	assert_true(cv_duration("0s", &ms, err, sizeof(err)));
	assert_int_equal(ms, 0);
}

static void
test_duration_accepts_milliseconds(void **state)
{
	uint64_t	 ms;
	char		 err[128];

	assert_true(cv_duration("300ms", &ms, err, sizeof(err)));
	assert_int_equal(ms, 300);
	assert_true(cv_duration("1ms", &ms, err, sizeof(err)));
	assert_int_equal(ms, 1);
	assert_true(cv_duration("0ms", &ms, err, sizeof(err)));
	assert_int_equal(ms, 0);
	assert_true(cv_duration("1500ms", &ms, err, sizeof(err)));
	assert_int_equal(ms, 1500);
	assert_true(cv_duration("0300ms", &ms, err, sizeof(err)));
	assert_int_equal(ms, 300);
}

static void
test_duration_accepts_exactly_one_year(void **state)
{
	uint64_t	 ms;
	char		 err[128];

	assert_true(cv_duration("31536000", &ms, err, sizeof(err)));
	assert_true(ms == UINT64_C(31536000000));
	assert_true(cv_duration("8760h", &ms, err, sizeof(err)));
	assert_true(ms == UINT64_C(31536000000));
	assert_true(cv_duration("525600m", &ms, err, sizeof(err)));
	assert_true(ms == UINT64_C(31536000000));
	assert_true(cv_duration("31536000000ms", &ms, err, sizeof(err)));
	assert_true(ms == UINT64_C(31536000000));
}

static void
test_duration_rejects_more_than_one_year(void **state)
{
	uint64_t	 ms = 7;
	char		 err[128];

	assert_rejected(cv_duration("31536001", &ms, err, sizeof(err)), err);
	assert_non_null(strstr(err, "31536000"));
	assert_rejected(cv_duration("8761h", &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration("525601m", &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration("31536000001ms", &ms, err, sizeof(err)),
	    err);
	assert_rejected(cv_duration("99999999999999999999999", &ms, err,
	    sizeof(err)), err);
	assert_rejected(cv_duration("99999999999999999999999ms", &ms, err,
	    sizeof(err)), err);
	assert_rejected(cv_duration("4294967296s", &ms, err, sizeof(err)),
	    err);
	assert_int_equal(ms, 7);
}

static void
test_duration_rejects_negative_empty_and_junk(void **state)
{
	uint64_t	 ms;
	char		 err[128];

	assert_rejected(cv_duration("-5", &ms, err, sizeof(err)), err);
	assert_non_null(strstr(err, "negative"));
	assert_rejected(cv_duration("", &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration(NULL, &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration("s", &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration("ms", &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration("5x", &ms, err, sizeof(err)), err);
	assert_non_null(strstr(err, "use ms, s, m or h"));
	assert_rejected(cv_duration("5 m", &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration("5 ms", &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration(" 5", &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration("+5", &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration("1.5h", &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration("1.5ms", &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration("5M", &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration("5MS", &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration("5msx", &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration("5mss", &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration("5us", &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration("1h30m", &ms, err, sizeof(err)), err);
	assert_rejected(cv_duration("0x10", &ms, err, sizeof(err)), err);
}

static void
test_duration_tolerates_a_missing_err_buffer(void **state)
{
	uint64_t	 ms;

	assert_false(cv_duration("junk", &ms, NULL, 0));
}

static void
test_duration_to_timeval_keeps_milliseconds(void **state)
{
	struct timeval	 tv;

	tv = cv_timeval(1500);
	assert_int_equal(tv.tv_sec, 1);
	assert_int_equal(tv.tv_usec, 500000);
	tv = cv_timeval(300);
	assert_int_equal(tv.tv_sec, 0);
	assert_int_equal(tv.tv_usec, 300000);
	tv = cv_timeval(UINT64_C(31536000000));
	assert_int_equal(tv.tv_sec, 31536000);
	assert_int_equal(tv.tv_usec, 0);
}

static void
test_duration_us_reads_microseconds_and_every_other_unit(void **state)
{
	uint64_t	 us;
	char		 err[128];

	assert_true(cv_duration_us("200us", 10000, &us, err, sizeof(err)));
	assert_int_equal(us, 200);
	assert_true(cv_duration_us("0us", 10000, &us, err, sizeof(err)));
	assert_int_equal(us, 0);
	assert_true(cv_duration_us("0", 10000, &us, err, sizeof(err)));
	assert_int_equal(us, 0);
	assert_true(cv_duration_us("1ms", 10000, &us, err, sizeof(err)));
	assert_int_equal(us, 1000);
	assert_true(cv_duration_us("10ms", 10000, &us, err, sizeof(err)));
	assert_int_equal(us, 10000);
	assert_true(cv_duration_us("10000us", 10000, &us, err, sizeof(err)));
	assert_int_equal(us, 10000);
	assert_true(cv_duration_us("2s", 5000000, &us, err, sizeof(err)));
	assert_int_equal(us, 2000000);
}

static void
test_duration_us_rejects_too_long_and_junk(void **state)
{
	uint64_t	 us = 7;
	char		 err[128];

	assert_rejected(cv_duration_us("10001us", 10000, &us, err,
	    sizeof(err)), err);
	assert_non_null(strstr(err, "at most 10ms"));
	assert_rejected(cv_duration_us("11ms", 10000, &us, err, sizeof(err)),
	    err);
	assert_rejected(cv_duration_us("1", 10000, &us, err, sizeof(err)),
	    err);
	assert_non_null(strstr(err, "alone is seconds"));
	assert_rejected(cv_duration_us("251us", 250, &us, err, sizeof(err)),
	    err);
	assert_non_null(strstr(err, "at most 250us"));
	assert_rejected(cv_duration_us("99999999999999999999999us", 10000,
	    &us, err, sizeof(err)), err);
	assert_non_null(strstr(err, "too long"));
	assert_rejected(cv_duration_us("us", 10000, &us, err, sizeof(err)),
	    err);
	assert_rejected(cv_duration_us("-5us", 10000, &us, err, sizeof(err)),
	    err);
	assert_rejected(cv_duration_us("5 us", 10000, &us, err, sizeof(err)),
	    err);
	assert_rejected(cv_duration_us("5usus", 10000, &us, err, sizeof(err)),
	    err);
	assert_rejected(cv_duration_us("5µs", 10000, &us, err, sizeof(err)),
	    err);
	assert_rejected(cv_duration_us("1.5ms", 10000, &us, err, sizeof(err)),
	    err);
	assert_non_null(strstr(err, "us, ms, s, m or h"));
	assert_rejected(cv_duration_us("1m", 10000, &us, err, sizeof(err)),
	    err);
	assert_rejected(cv_duration_us("", 10000, &us, err, sizeof(err)),
	    err);
	assert_int_equal(us, 7);
}

static void
test_duration_text_is_seconds_when_whole(void **state)
{
	char	 buf[32];

	assert_string_equal(cv_duration_text(10000, buf, sizeof(buf)), "10s");
	assert_string_equal(cv_duration_text(0, buf, sizeof(buf)), "0s");
	assert_string_equal(cv_duration_text(300, buf, sizeof(buf)), "300ms");
	assert_string_equal(cv_duration_text(1500, buf, sizeof(buf)),
	    "1500ms");
}

static void
test_bool_accepts_every_spelling_in_any_case(void **state)
{
	static const char *const yes[] = { "yes", "YES", "true", "True", "on",
	    "ON", "1" };
	static const char *const no[] = { "no", "No", "false", "FALSE", "off",
	    "Off", "0" };
	bool		 b;
	size_t		 i;
	char		 err[128];

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		b = false;
		assert_true(cv_bool(yes[i], &b, err, sizeof(err)));
		assert_true(b);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		b = true;
		assert_true(cv_bool(no[i], &b, err, sizeof(err)));
		assert_false(b);
	}
}

static void
test_bool_rejects_other_words(void **state)
{
	bool	 b;
	char	 err[128];

	assert_rejected(cv_bool("", &b, err, sizeof(err)), err);
	assert_rejected(cv_bool("y", &b, err, sizeof(err)), err);
	assert_rejected(cv_bool("2", &b, err, sizeof(err)), err);
	assert_rejected(cv_bool("yes ", &b, err, sizeof(err)), err);
	assert_rejected(cv_bool("enabled", &b, err, sizeof(err)), err);
	assert_rejected(cv_bool(NULL, &b, err, sizeof(err)), err);
}

static void
test_uint_accepts_the_bounds_of_its_range(void **state)
{
	unsigned long	 v;
	char		 err[128];

	assert_true(cv_uint("1", 1, 1024, &v, err, sizeof(err)));
	assert_int_equal(v, 1);
	assert_true(cv_uint("1024", 1, 1024, &v, err, sizeof(err)));
	assert_int_equal(v, 1024);
	assert_true(cv_uint("0", 0, 10, &v, err, sizeof(err)));
	assert_int_equal(v, 0);
	assert_true(cv_uint("18446744073709551615", 0, ~0UL, &v, err,
	    sizeof(err)));
	assert_true(v == ~0UL);
}

static void
test_uint_rejects_out_of_range_and_junk(void **state)
{
	unsigned long	 v = 99;
	char		 err[128];

	assert_rejected(cv_uint("0", 1, 1024, &v, err, sizeof(err)), err);
	assert_non_null(strstr(err, "1024"));
	assert_rejected(cv_uint("1025", 1, 1024, &v, err, sizeof(err)), err);
	assert_rejected(cv_uint("18446744073709551616", 0, ~0UL, &v, err,
	    sizeof(err)), err);
	assert_rejected(cv_uint("", 0, 10, &v, err, sizeof(err)), err);
	assert_rejected(cv_uint("-1", 0, 10, &v, err, sizeof(err)), err);
	assert_rejected(cv_uint("+1", 0, 10, &v, err, sizeof(err)), err);
	assert_rejected(cv_uint("1a", 0, 10, &v, err, sizeof(err)), err);
	assert_rejected(cv_uint(" 1", 0, 10, &v, err, sizeof(err)), err);
	assert_rejected(cv_uint("0x1", 0, 10, &v, err, sizeof(err)), err);
	assert_int_equal(v, 99);
}

static void
test_port_accepts_1_and_65535(void **state)
{
	uint16_t	 p;
	char		 err[128];

	assert_true(cv_port("1", &p, err, sizeof(err)));
	assert_int_equal(p, 1);
	assert_true(cv_port("443", &p, err, sizeof(err)));
	assert_int_equal(p, 443);
	assert_true(cv_port("65535", &p, err, sizeof(err)));
	assert_int_equal(p, 65535);
}

static void
test_port_rejects_0_65536_and_junk(void **state)
{
	uint16_t	 p;
	char		 err[128];

	assert_rejected(cv_port("0", &p, err, sizeof(err)), err);
	assert_non_null(strstr(err, "65535"));
	assert_rejected(cv_port("65536", &p, err, sizeof(err)), err);
	assert_rejected(cv_port("", &p, err, sizeof(err)), err);
	assert_rejected(cv_port("https", &p, err, sizeof(err)), err);
	assert_rejected(cv_port("-443", &p, err, sizeof(err)), err);
	assert_rejected(cv_port("+443", &p, err, sizeof(err)), err);
	assert_rejected(cv_port("443 ", &p, err, sizeof(err)), err);
}

/* One to five digits, as in a request: leading zeros within five. */
static void
test_port_takes_five_digits_at_most(void **state)
{
	uint16_t	 p;
	char		 err[128];

	assert_true(cv_port("08080", &p, err, sizeof(err)));
	assert_int_equal(p, 8080);
	assert_rejected(cv_port("038471", &p, err, sizeof(err)), err);
	assert_non_null(strstr(err, "five digits"));
	assert_rejected(cv_port("0000000443", &p, err, sizeof(err)), err);
}

static void
test_addr_parses_ipv4_with_port(void **state)
{
	struct conf_addr	 a;
	struct sockaddr_in	*sin;
	char			 err[128];

	assert_true(cv_addr("127.0.0.1:8080", &a, err, sizeof(err)));
	sin = (struct sockaddr_in *)&a.ss;
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 8080);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(a.sslen, sizeof(struct sockaddr_in));
	assert_string_equal(a.text, "127.0.0.1:8080");
}

static void
test_addr_parses_bracketed_ipv6_into_canonical_text(void **state)
{
	struct conf_addr	 a;
	struct sockaddr_in6	*sin6;
	char			 err[128];

	assert_true(cv_addr("[::1]:8080", &a, err, sizeof(err)));
	sin6 = (struct sockaddr_in6 *)&a.ss;
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 8080);
	assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	assert_int_equal(a.sslen, sizeof(struct sockaddr_in6));
	assert_string_equal(a.text, "[::1]:8080");

	assert_true(cv_addr("[0:0:0:0:0:0:0:1]:65535", &a, err, sizeof(err)));
	assert_string_equal(a.text, "[::1]:65535");
	assert_true(cv_addr("[FE80::A]:1", &a, err, sizeof(err)));
	assert_string_equal(a.text, "[fe80::a]:1");
}

static void
test_addr_rejects_unbracketed_ipv6_missing_port_and_names(void **state)
{
	struct conf_addr	 a;
	char			 err[128];

	assert_rejected(cv_addr("::1:8080", &a, err, sizeof(err)), err);
	assert_non_null(strstr(err, "brackets"));
	assert_rejected(cv_addr("127.0.0.1", &a, err, sizeof(err)), err);
	assert_non_null(strstr(err, "PORT"));
	assert_rejected(cv_addr("127.0.0.1:", &a, err, sizeof(err)), err);
	assert_rejected(cv_addr("[::1]", &a, err, sizeof(err)), err);
	assert_rejected(cv_addr("[::1]:", &a, err, sizeof(err)), err);
	assert_rejected(cv_addr("[::1:8080", &a, err, sizeof(err)), err);
	assert_rejected(cv_addr("[]:8080", &a, err, sizeof(err)), err);
	assert_rejected(cv_addr(":8080", &a, err, sizeof(err)), err);
	assert_rejected(cv_addr("localhost:8080", &a, err, sizeof(err)), err);
	assert_rejected(cv_addr("[127.0.0.1]:8080", &a, err, sizeof(err)),
	    err);
	assert_rejected(cv_addr("127.0.0.256:8080", &a, err, sizeof(err)),
	    err);
	assert_rejected(cv_addr("", &a, err, sizeof(err)), err);
	assert_rejected(cv_addr("[fe80::1%eth0]:80", &a, err, sizeof(err)),
	    err);
}

static void
test_addr_rejects_port_0_and_65536(void **state)
{
	struct conf_addr	 a;
	char			 err[128];

	assert_rejected(cv_addr("127.0.0.1:0", &a, err, sizeof(err)), err);
	assert_rejected(cv_addr("127.0.0.1:65536", &a, err, sizeof(err)),
	    err);
	assert_rejected(cv_addr("[::1]:0", &a, err, sizeof(err)), err);
	assert_rejected(cv_addr("127.0.0.1:80x", &a, err, sizeof(err)), err);
	assert_true(cv_addr("127.0.0.1:65535", &a, err, sizeof(err)));
}

static void
test_cidr_parses_blocks_and_lone_addresses(void **state)
{
	struct cidr	 c;
	char		 err[128];

	assert_true(cv_cidr("127.0.0.0/8", &c, err, sizeof(err)));
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 8);
	assert_int_equal(c.addr[0], 127);

	assert_true(cv_cidr("10.0.0.1", &c, err, sizeof(err)));
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 32);

	assert_true(cv_cidr("::1", &c, err, sizeof(err)));
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(c.prefix, 128);
	assert_int_equal(c.addr[15], 1);

	assert_true(cv_cidr("fe80::/10", &c, err, sizeof(err)));
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(c.prefix, 10);
	assert_int_equal(c.addr[0], 0xfe);
	assert_int_equal(c.addr[1], 0x80);

	assert_true(cv_cidr("0.0.0.0/0", &c, err, sizeof(err)));
	assert_int_equal(c.prefix, 0);
	assert_true(cv_cidr("::/0", &c, err, sizeof(err)));
	assert_int_equal(c.prefix, 0);
	assert_true(cv_cidr("10.0.0.1/32", &c, err, sizeof(err)));
	assert_true(cv_cidr("::1/128", &c, err, sizeof(err)));
}

static void
test_cidr_rejects_host_bits_and_suggests_the_block(void **state)
{
	struct cidr	 c;
	char		 err[128];

	assert_rejected(cv_cidr("127.0.0.1/8", &c, err, sizeof(err)), err);
	assert_non_null(strstr(err, "host bits set"));
	assert_non_null(strstr(err, "127.0.0.0/8"));
	assert_rejected(cv_cidr("fe80::1/10", &c, err, sizeof(err)), err);
	assert_non_null(strstr(err, "fe80::/10"));
	assert_true(cv_cidr("10.0.0.128/25", &c, err, sizeof(err)));
	assert_rejected(cv_cidr("10.0.0.192/25", &c, err, sizeof(err)), err);
	assert_non_null(strstr(err, "10.0.0.128/25"));
}

static void
test_cidr_rejects_too_long_prefixes_and_junk(void **state)
{
	struct cidr	 c;
	char		 err[128];

	assert_rejected(cv_cidr("10.0.0.0/33", &c, err, sizeof(err)), err);
	assert_non_null(strstr(err, "32"));
	assert_rejected(cv_cidr("::/129", &c, err, sizeof(err)), err);
	assert_non_null(strstr(err, "128"));
	assert_rejected(cv_cidr("10.0.0.0/", &c, err, sizeof(err)), err);
	assert_rejected(cv_cidr("10.0.0.0/-1", &c, err, sizeof(err)), err);
	assert_rejected(cv_cidr("10.0.0.0/8x", &c, err, sizeof(err)), err);
	assert_rejected(cv_cidr("10.0.0.0/99999999999999999999", &c, err,
	    sizeof(err)), err);
	assert_rejected(cv_cidr("/8", &c, err, sizeof(err)), err);
	assert_rejected(cv_cidr("", &c, err, sizeof(err)), err);
	assert_rejected(cv_cidr("localhost", &c, err, sizeof(err)), err);
	assert_rejected(cv_cidr("10.0.0/8", &c, err, sizeof(err)), err);
	assert_rejected(cv_cidr("[::1]", &c, err, sizeof(err)), err);
	assert_rejected(cv_cidr("::1/64/64", &c, err, sizeof(err)), err);
}

static void
test_cidr_match_compares_only_the_prefix(void **state)
{
	struct cidr	 c;
	char		 err[128];

	assert_true(cv_cidr("127.0.0.0/8", &c, err, sizeof(err)));
	assert_true(match4(&c, "127.0.0.1"));
	assert_true(match4(&c, "127.255.255.255"));
	assert_false(match4(&c, "128.0.0.1"));
	assert_false(match4(&c, "126.255.255.255"));

	assert_true(cv_cidr("10.0.0.128/25", &c, err, sizeof(err)));
	assert_true(match4(&c, "10.0.0.128"));
	assert_true(match4(&c, "10.0.0.255"));
	assert_false(match4(&c, "10.0.0.127"));

	assert_true(cv_cidr("10.0.0.1", &c, err, sizeof(err)));
	assert_true(match4(&c, "10.0.0.1"));
	assert_false(match4(&c, "10.0.0.2"));

	assert_true(cv_cidr("fe80::/10", &c, err, sizeof(err)));
	assert_true(match6(&c, "fe80::1"));
	assert_true(match6(&c, "febf:ffff::1"));
	assert_false(match6(&c, "fec0::1"));
	assert_false(match4(&c, "127.0.0.1"));

	assert_true(cv_cidr("::1", &c, err, sizeof(err)));
	assert_true(match6(&c, "::1"));
	assert_false(match6(&c, "::2"));
	assert_false(match4(&c, "127.0.0.1"));
}

static void
test_cidr_match_treats_mapped_ipv6_clients_as_ipv4(void **state)
{
	struct cidr	 c;
	char		 err[128];

	assert_true(cv_cidr("127.0.0.0/8", &c, err, sizeof(err)));
	assert_true(match6(&c, "::ffff:127.0.0.1"));
	assert_false(match6(&c, "::ffff:10.0.0.1"));
	assert_false(match6(&c, "::1"));
	/* The same four bytes outside the mapped range are not IPv4. */
	assert_false(match6(&c, "::127.0.0.1"));
	assert_false(match6(&c, "64:ff9b::127.0.0.1"));

	assert_true(cv_cidr("0.0.0.0/0", &c, err, sizeof(err)));
	assert_true(match6(&c, "::ffff:8.8.8.8"));
	assert_false(match6(&c, "2001:db8::1"));

	/* An IPv6 block holds no IPv4 client, mapped or not. */
	assert_true(cv_cidr("::/0", &c, err, sizeof(err)));
	assert_false(match6(&c, "::ffff:127.0.0.2"));
	assert_true(match6(&c, "::127.0.0.2"));
}

static void
test_cidr_reads_a_mapped_block_as_ipv4(void **state)
{
	struct cidr	 c;
	char		 err[128];

	assert_true(cv_cidr("::ffff:127.0.0.3", &c, err, sizeof(err)));
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 32);
	assert_true(match4(&c, "127.0.0.3"));
	assert_true(match6(&c, "::ffff:127.0.0.3"));
	assert_false(match4(&c, "127.0.0.2"));

	assert_true(cv_cidr("::ffff:10.0.0.0/104", &c, err, sizeof(err)));
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 8);
	assert_true(match4(&c, "10.9.8.7"));
	assert_false(match4(&c, "11.0.0.1"));

	assert_true(cv_cidr("::ffff:0.0.0.0/96", &c, err, sizeof(err)));
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 0);
	assert_true(match4(&c, "192.0.2.1"));
}

static void
test_cidr_match_with_prefix_0_covers_the_whole_family(void **state)
{
	struct cidr	 c;
	char		 err[128];

	assert_true(cv_cidr("0.0.0.0/0", &c, err, sizeof(err)));
	assert_true(match4(&c, "0.0.0.0"));
	assert_true(match4(&c, "255.255.255.255"));
	assert_false(match6(&c, "::1"));

	assert_true(cv_cidr("::/0", &c, err, sizeof(err)));
	assert_true(match6(&c, "::1"));
	assert_true(match6(&c, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	assert_false(match4(&c, "127.0.0.1"));
}

static void
test_cidr_match_refuses_other_families_and_null(void **state)
{
	struct cidr		 c;
	struct sockaddr		 sa;
	char			 err[128];

	assert_true(cv_cidr("0.0.0.0/0", &c, err, sizeof(err)));
	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	assert_false(cidr_match(&c, &sa));
	assert_false(cidr_match(&c, NULL));
	assert_false(cidr_match(NULL, &sa));
}

static void
test_date_is_midnight_utc(void **state)
{
	time_t	 t;
	char	 err[128];

	assert_true(cv_date("1970-01-01", &t, err, sizeof(err)));
	assert_int_equal(t, 0);
	assert_true(cv_date("2027-06-30", &t, err, sizeof(err)));
	assert_int_equal(t, 1814313600);
	assert_true(cv_date("2000-03-01", &t, err, sizeof(err)));
	assert_int_equal(t, 951868800);
	assert_true(cv_date("2027-12-31", &t, err, sizeof(err)));
	assert_int_equal(t, 1830211200);
}

static void
test_date_knows_leap_years(void **state)
{
	time_t	 t, next;
	char	 err[128];

	assert_true(cv_date("2028-02-29", &t, err, sizeof(err)));
	assert_true(cv_date("2028-03-01", &next, err, sizeof(err)));
	assert_int_equal(next - t, 86400);
	assert_true(cv_date("2000-02-29", &t, err, sizeof(err)));
	assert_int_equal(t, 951782400);
	assert_rejected(cv_date("2027-02-29", &t, err, sizeof(err)), err);
	assert_rejected(cv_date("2100-02-29", &t, err, sizeof(err)), err);
	assert_rejected(cv_date("2028-02-30", &t, err, sizeof(err)), err);
}

static void
test_date_rejects_impossible_days_and_months(void **state)
{
	time_t	 t = 42;
	char	 err[128];

	assert_rejected(cv_date("2027-02-30", &t, err, sizeof(err)), err);
	assert_rejected(cv_date("2027-13-01", &t, err, sizeof(err)), err);
	assert_rejected(cv_date("2027-00-10", &t, err, sizeof(err)), err);
	assert_rejected(cv_date("2027-04-31", &t, err, sizeof(err)), err);
	assert_rejected(cv_date("2027-01-00", &t, err, sizeof(err)), err);
	assert_rejected(cv_date("2027-01-32", &t, err, sizeof(err)), err);
	assert_true(cv_date("2027-01-31", &t, err, sizeof(err)));
	assert_true(cv_date("2027-04-30", &t, err, sizeof(err)));
}

static void
test_date_rejects_other_formats(void **state)
{
	time_t	 t = 42;
	char	 err[128];

	assert_rejected(cv_date("2027-6-30", &t, err, sizeof(err)), err);
	assert_rejected(cv_date("2027/06/30", &t, err, sizeof(err)), err);
	assert_rejected(cv_date("30-06-2027", &t, err, sizeof(err)), err);
	assert_rejected(cv_date("2027-06-30 ", &t, err, sizeof(err)), err);
	assert_rejected(cv_date("2027-06-30T00:00:00Z", &t, err, sizeof(err)),
	    err);
	assert_rejected(cv_date("20270630", &t, err, sizeof(err)), err);
	assert_rejected(cv_date("+027-06-30", &t, err, sizeof(err)), err);
	assert_rejected(cv_date("", &t, err, sizeof(err)), err);
	assert_rejected(cv_date("1969-12-31", &t, err, sizeof(err)), err);
	assert_int_equal(t, 42);
}

static void
test_list_splits_on_commas_and_blanks(void **state)
{
	char	**items;
	size_t	  n;

	items = cv_list("a, b,c\td  e,,, f", &n);
	assert_int_equal(n, 6);
	assert_string_equal(items[0], "a");
	assert_string_equal(items[1], "b");
	assert_string_equal(items[2], "c");
	assert_string_equal(items[3], "d");
	assert_string_equal(items[4], "e");
	assert_string_equal(items[5], "f");
	cv_list_free(items, n);

	items = cv_list("127.0.0.0/8 ::1", &n);
	assert_int_equal(n, 2);
	assert_string_equal(items[0], "127.0.0.0/8");
	assert_string_equal(items[1], "::1");
	cv_list_free(items, n);

	items = cv_list(" ,only, ", &n);
	assert_int_equal(n, 1);
	assert_string_equal(items[0], "only");
	cv_list_free(items, n);
}

static void
test_list_of_nothing_is_empty(void **state)
{
	char	**items;
	size_t	  n = 99;

	items = cv_list("", &n);
	assert_int_equal(n, 0);
	cv_list_free(items, n);
	n = 99;
	items = cv_list(" , \t,", &n);
	assert_int_equal(n, 0);
	cv_list_free(items, n);
	cv_list_free(NULL, 0);
}

static void
test_sockaddr_text_formats_both_families(void **state)
{
	struct sockaddr_in	 sin = v4("1.2.3.4", 80);
	struct sockaddr_in6	 sin6 = v6("::1", 80);
	struct sockaddr_in6	 mapped = v6("::ffff:1.2.3.4", 443);
	struct sockaddr		 other;
	char			 buf[CONF_ADDR_TEXT_MAX];

	cv_sockaddr_text((struct sockaddr *)&sin, buf, sizeof(buf));
	assert_string_equal(buf, "1.2.3.4:80");
	cv_sockaddr_text((struct sockaddr *)&sin6, buf, sizeof(buf));
	assert_string_equal(buf, "[::1]:80");
	cv_sockaddr_text((struct sockaddr *)&mapped, buf, sizeof(buf));
	assert_string_equal(buf, "[::ffff:1.2.3.4]:443");
	/* A peer's: as its IPv4 address. */
	cv_peer_text((struct sockaddr *)&mapped, buf, sizeof(buf));
	assert_string_equal(buf, "1.2.3.4:443");
	cv_peer_text((struct sockaddr *)&sin6, buf, sizeof(buf));
	assert_string_equal(buf, "[::1]:80");
	cv_peer_text((struct sockaddr *)&sin, buf, sizeof(buf));
	assert_string_equal(buf, "1.2.3.4:80");
	memset(&other, 0, sizeof(other));
	other.sa_family = AF_UNIX;
	cv_sockaddr_text(&other, buf, sizeof(buf));
	assert_string_equal(buf, "?");
}

static void
test_sockaddr_text_fits_the_longest_ipv6_address(void **state)
{
	struct sockaddr_in6	 sin6;
	char			 buf[CONF_ADDR_TEXT_MAX];

	sin6 = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	cv_sockaddr_text((struct sockaddr *)&sin6, buf, sizeof(buf));
	assert_string_equal(buf,
	    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
}

static void
test_sockaddr_text_truncates_to_the_buffer(void **state)
{
	struct sockaddr_in	 sin = v4("192.168.100.200", 8080);
	char			 buf[8];

	memset(buf, 'x', sizeof(buf));
	cv_sockaddr_text((struct sockaddr *)&sin, buf, sizeof(buf));
	assert_string_equal(buf, "192.168");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_accepts_plain_seconds_and_units),
		cmocka_unit_test(test_duration_accepts_milliseconds),
		cmocka_unit_test(test_duration_accepts_exactly_one_year),
		cmocka_unit_test(test_duration_rejects_more_than_one_year),
		cmocka_unit_test(test_duration_rejects_negative_empty_and_junk),
		cmocka_unit_test(test_duration_tolerates_a_missing_err_buffer),
		cmocka_unit_test(test_duration_to_timeval_keeps_milliseconds),
		cmocka_unit_test(test_duration_text_is_seconds_when_whole),
		cmocka_unit_test(
		    test_duration_us_reads_microseconds_and_every_other_unit),
		cmocka_unit_test(test_duration_us_rejects_too_long_and_junk),
		cmocka_unit_test(test_bool_accepts_every_spelling_in_any_case),
		cmocka_unit_test(test_bool_rejects_other_words),
		cmocka_unit_test(test_uint_accepts_the_bounds_of_its_range),
		cmocka_unit_test(test_uint_rejects_out_of_range_and_junk),
		cmocka_unit_test(test_port_accepts_1_and_65535),
		cmocka_unit_test(test_port_rejects_0_65536_and_junk),
		cmocka_unit_test(test_port_takes_five_digits_at_most),
		cmocka_unit_test(test_addr_parses_ipv4_with_port),
		cmocka_unit_test(
		    test_addr_parses_bracketed_ipv6_into_canonical_text),
		cmocka_unit_test(
		    test_addr_rejects_unbracketed_ipv6_missing_port_and_names),
		cmocka_unit_test(test_addr_rejects_port_0_and_65536),
		cmocka_unit_test(test_cidr_parses_blocks_and_lone_addresses),
		cmocka_unit_test(test_cidr_reads_a_mapped_block_as_ipv4),
		cmocka_unit_test(
		    test_cidr_rejects_host_bits_and_suggests_the_block),
		cmocka_unit_test(test_cidr_rejects_too_long_prefixes_and_junk),
		cmocka_unit_test(test_cidr_match_compares_only_the_prefix),
		cmocka_unit_test(
		    test_cidr_match_treats_mapped_ipv6_clients_as_ipv4),
		cmocka_unit_test(
		    test_cidr_match_with_prefix_0_covers_the_whole_family),
		cmocka_unit_test(
		    test_cidr_match_refuses_other_families_and_null),
		cmocka_unit_test(test_date_is_midnight_utc),
		cmocka_unit_test(test_date_knows_leap_years),
		cmocka_unit_test(test_date_rejects_impossible_days_and_months),
		cmocka_unit_test(test_date_rejects_other_formats),
		cmocka_unit_test(test_list_splits_on_commas_and_blanks),
		cmocka_unit_test(test_list_of_nothing_is_empty),
		cmocka_unit_test(test_sockaddr_text_formats_both_families),
		cmocka_unit_test(
		    test_sockaddr_text_fits_the_longest_ipv6_address),
		cmocka_unit_test(test_sockaddr_text_truncates_to_the_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

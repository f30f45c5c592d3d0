/*
 * Tests of host name normalisation, host pattern validation and the
 * specificity score that picks the pin set for a host.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "hostmatch.h"
#include "hostport.h"

/* A name of labels of the given lengths made of 'a', joined by dots. */
static void
make_name(char *buf, size_t bufsize, const size_t *labels, size_t n)
{
	size_t	 i, o = 0;

	for (i = 0; i < n; i++) {
		if (i > 0)
			buf[o++] = '.';
		assert_true(o + labels[i] < bufsize);
		memset(buf + o, 'a', labels[i]);
		o += labels[i];
	}
	buf[o] = '\0';
}

/* Normalise a NUL-terminated name. */
static bool
norm(const char *in, char *out, size_t outsize)
{
	return hostmatch_normalize(in, strlen(in), out, outsize);
}

static void
test_normalize_lowercases_and_drops_one_trailing_dot(void **state)
{
	char	 out[HOSTMATCH_NAME_MAX];

	assert_true(norm("API.Example.COM", out, sizeof(out)));
	assert_string_equal(out, "api.example.com");
	assert_true(norm("api.example.com.", out, sizeof(out)));
	assert_string_equal(out, "api.example.com");
	assert_true(norm("localhost", out, sizeof(out)));
	assert_string_equal(out, "localhost");
	assert_true(norm("_srv-1.x_y.example", out, sizeof(out)));
	assert_string_equal(out, "_srv-1.x_y.example");
	assert_true(norm("127.0.0.1", out, sizeof(out)));
	assert_string_equal(out, "127.0.0.1");
}

/* Dialled, the unspecified address reaches the loopback one. */
static void
test_normalize_spells_the_unspecified_address_as_loopback(void **state)
{
	char		 out[HOSTMATCH_NAME_MAX];
	size_t		 i;
	const char	*v4[] = { "0.0.0.0", "0.0.0.0.", "[::ffff:0.0.0.0]",
		"::ffff:0:0" };
	const char	*v6[] = { "[::]", "::", "[0:0:0:0:0:0:0:0]" };

	(void)state;
	for (i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
		assert_true(norm(v4[i], out, sizeof(out)));
		assert_string_equal(out, "127.0.0.1");
	}
	for (i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
		assert_true(norm(v6[i], out, sizeof(out)));
		assert_string_equal(out, "::1");
	}
	/* Not the other spellings of a number, still. */
	assert_false(norm("0", out, sizeof(out)));
	assert_false(norm("0.0", out, sizeof(out)));
	/* Too small a buffer for the loopback address: refused. */
	assert_false(norm("0.0.0.0", out, 9));
}

static void
test_nat64_gives_the_ipv4_address_of_the_well_known_prefix(void **state)
{
	char	 v4[HOSTMATCH_NAT64_MAX][16];

	(void)state;
	assert_int_equal(hostmatch_nat64("64:ff9b::7f00:1", v4), 1);
	assert_string_equal(v4[0], "127.0.0.1");
	assert_int_equal(hostmatch_nat64("64:ff9b::c000:201", v4), 1);
	assert_string_equal(v4[0], "192.0.2.1");
	assert_int_equal(hostmatch_nat64("2001:db8::7f00:1", v4), 0);
	assert_int_equal(hostmatch_nat64("64:ff9b:2::7f00:1", v4), 0);
	assert_int_equal(hostmatch_nat64("127.0.0.1", v4), 0);
	assert_int_equal(hostmatch_nat64("api.test", v4), 0);
}

/*
 * The local-use prefix 64:ff9b:1::/48 (RFC 8215): its network chooses the
 * prefix length, so each place RFC 6052 allows is a candidate, the /96
 * one first; with a non-zero "u" octet (bits 64-71) only that one.
 */
static void
test_nat64_gives_each_candidate_of_the_local_use_prefix(void **state)
{
	char	 v4[HOSTMATCH_NAT64_MAX][16];

	(void)state;
	/* 192.0.2.1 after a /48: bits 48-63 and 72-87. */
	assert_int_equal(hostmatch_nat64("64:ff9b:1:c000:2:100::", v4), 4);
	assert_string_equal(v4[0], "0.0.0.0");
	assert_string_equal(v4[1], "192.0.2.1");
	assert_string_equal(v4[2], "0.2.1.0");
	assert_string_equal(v4[3], "2.1.0.0");
	/* After a /56: bits 56-63 and 72-95. */
	assert_int_equal(hostmatch_nat64("64:ff9b:1:c0:0:201::", v4), 4);
	assert_string_equal(v4[2], "192.0.2.1");
	/* After a /64: bits 72-103. */
	assert_int_equal(hostmatch_nat64("64:ff9b:1:0:c0:2:100:0", v4), 4);
	assert_string_equal(v4[3], "192.0.2.1");
	/* After a /96, whatever the bits between. */
	assert_int_equal(hostmatch_nat64("64:ff9b:1:0:ff00:0:c000:201", v4),
	    1);
	assert_string_equal(v4[0], "192.0.2.1");
	assert_int_equal(hostmatch_nat64("64:ff9b:1::c000:201", v4), 4);
	assert_string_equal(v4[0], "192.0.2.1");
}

static void
test_normalize_rejects_two_trailing_dots_and_empty_labels(void **state)
{
	char	 out[HOSTMATCH_NAME_MAX];

	assert_false(norm("example.com..", out, sizeof(out)));
	assert_false(norm("a..b", out, sizeof(out)));
	assert_false(norm(".example.com", out, sizeof(out)));
	assert_false(norm(".", out, sizeof(out)));
	assert_false(norm("", out, sizeof(out)));
}

static void
test_normalize_rejects_bytes_no_host_name_has(void **state)
{
	char	 out[HOSTMATCH_NAME_MAX];

	assert_false(norm("exa mple.com", out, sizeof(out)));
	assert_false(norm("example.com/", out, sizeof(out)));
	assert_false(norm("user@example.com", out, sizeof(out)));
	assert_false(norm("*.example.com", out, sizeof(out)));
	assert_false(norm("example.com\r\n", out, sizeof(out)));
	assert_false(norm("b\xc3\xbc" "cher.de", out, sizeof(out)));
	assert_false(norm("example.com:443", out, sizeof(out)));
}

static void
test_normalize_rejects_a_nul_byte_inside_the_length(void **state)
{
	static const char	 evil[] = "good.example.com\0.evil.net";
	char			 out[HOSTMATCH_NAME_MAX];

	assert_false(hostmatch_normalize(evil, sizeof(evil) - 1, out,
	    sizeof(out)));
	assert_false(hostmatch_normalize("a\0", 2, out, sizeof(out)));
	assert_false(hostmatch_normalize("::1\0:2", 6, out, sizeof(out)));
	assert_false(hostmatch_normalize("[::1\0]", 6, out, sizeof(out)));
	assert_true(hostmatch_normalize(evil, strlen(evil), out,
	    sizeof(out)));
	assert_string_equal(out, "good.example.com");
}

static void
test_normalize_uses_only_the_given_length(void **state)
{
	char	 out[HOSTMATCH_NAME_MAX];

	assert_true(hostmatch_normalize("example.com:443", 11, out,
	    sizeof(out)));
	assert_string_equal(out, "example.com");
	assert_false(hostmatch_normalize("example.com", 0, out, sizeof(out)));
}

static void
test_normalize_accepts_253_bytes_and_rejects_254(void **state)
{
	static const size_t	 l253[] = { 63, 63, 63, 61 };
	static const size_t	 l254[] = { 63, 63, 63, 62 };
	char			 name[300], out[HOSTMATCH_NAME_MAX];

	make_name(name, sizeof(name), l253, 4);
	assert_int_equal(strlen(name), 253);
	assert_true(norm(name, out, sizeof(out)));
	assert_string_equal(out, name);

	strcat(name, ".");
	assert_true(norm(name, out, sizeof(out)));
	assert_int_equal(strlen(out), 253);

	make_name(name, sizeof(name), l254, 4);
	assert_int_equal(strlen(name), 254);
	assert_false(norm(name, out, sizeof(out)));
}

static void
test_normalize_accepts_63_byte_labels_and_rejects_64(void **state)
{
	static const size_t	 l63[] = { 63, 7 };
	static const size_t	 l64[] = { 64, 7 };
	static const size_t	 last64[] = { 3, 64 };
	char			 name[300], out[HOSTMATCH_NAME_MAX];

	make_name(name, sizeof(name), l63, 2);
	assert_true(norm(name, out, sizeof(out)));
	make_name(name, sizeof(name), l64, 2);
	assert_false(norm(name, out, sizeof(out)));
	make_name(name, sizeof(name), last64, 2);
	assert_false(norm(name, out, sizeof(out)));
}

static void
test_normalize_refuses_an_output_buffer_too_small(void **state)
{
	char	 out[8];

	assert_true(norm("a.b.cde", out, sizeof(out)));
	assert_false(norm("a.b.cdef", out, sizeof(out)));
	assert_false(norm("2001:db8::1", out, sizeof(out)));
}

static void
test_normalize_unwraps_and_canonicalises_ipv6_literals(void **state)
{
	char	 out[HOSTMATCH_NAME_MAX];

	assert_true(norm("[::1]", out, sizeof(out)));
	assert_string_equal(out, "::1");
	assert_true(norm("::1", out, sizeof(out)));
	assert_string_equal(out, "::1");
	assert_true(norm("[2001:DB8:0:0::1]", out, sizeof(out)));
	assert_string_equal(out, "2001:db8::1");
	assert_false(norm("[::1", out, sizeof(out)));
	assert_false(norm("[]", out, sizeof(out)));
	assert_false(norm("[", out, sizeof(out)));
	assert_false(norm("[example.com]", out, sizeof(out)));
	assert_false(norm("[127.0.0.1]", out, sizeof(out)));
	assert_false(norm("[::1].", out, sizeof(out)));
	assert_false(norm("fe80::1%eth0", out, sizeof(out)));
	assert_false(norm("1:2:3:4:5:6:7:8:9", out, sizeof(out)));
}

static void
test_normalize_reads_an_ipv4_mapped_ipv6_address_as_ipv4(void **state)
{
	const char	*spellings[] = {
		"[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::FFFF:7F00:1]",
		"[0:0:0:0:0:ffff:127.0.0.1]", "::ffff:127.0.0.1",
		"[0000::FFFF:7f00:0001]", "127.0.0.1", "127.0.0.1.",
	};
	char		 out[HOSTMATCH_NAME_MAX];
	size_t		 i;

	for (i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		assert_true(norm(spellings[i], out, sizeof(out)));
		assert_string_equal(out, "127.0.0.1");
	}
	assert_true(norm("[::0001]", out, sizeof(out)));
	assert_string_equal(out, "::1");
}

static void
test_normalize_refuses_every_other_spelling_of_an_ipv4_address(void **state)
{
	const char	*spellings[] = {
		"127.000.000.001", "127.0.0.01", "0177.0.0.1", "0x7f.0.0.1",
		"0X7F.0.0.1", "127.0.0.0x1", "0x7f000001", "2130706433",
		"127.1", "127.0.1", "017700000001", "127.0.0.1.1",
		"256.0.0.1", "1.2.3.4.5", "00.0.0.0", "127.0.0.01.",
		"[::ffff:127.0.0.01]", "[::ffff:0177.0.0.1]",
		/* libevent's sscanf("%u") takes a sign, and wraps. */
		"127.0.0.-4294967295", "4294967423.0.0.-4294967295",
		"-0.-0.-0.-0", "0127.0.0.-18446744073709551615",
		/* IPv4-translated (SIIT). */
		"[::ffff:0:7f00:1]", "[::ffff:0:127.0.0.1]",
	};
	char		 out[HOSTMATCH_NAME_MAX];
	size_t		 i;

	for (i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		if (norm(spellings[i], out, sizeof(out)))
			fail_msg("accepted %s as %s", spellings[i], out);
	}
	assert_true(norm("0.0.0.0", out, sizeof(out)));
	assert_true(norm("255.255.255.255", out, sizeof(out)));
}

static void
test_normalize_refuses_a_name_whose_last_label_is_a_number(void **state)
{
	char	 out[HOSTMATCH_NAME_MAX];

	assert_false(norm("foo.123", out, sizeof(out)));
	assert_false(norm("foo.0x1f", out, sizeof(out)));
	assert_false(norm("foo.0x", out, sizeof(out)));
	assert_false(norm("example.com.0", out, sizeof(out)));
	assert_true(norm("123.example.com", out, sizeof(out)));
	assert_true(norm("0177.0.0.1.example", out, sizeof(out)));
	assert_true(norm("foo.0xg", out, sizeof(out)));
	assert_true(norm("foo.1a", out, sizeof(out)));
	assert_true(norm("x0", out, sizeof(out)));
}

static void
test_normalize_refuses_ipv4_compatible_addresses_and_zone_ids(void **state)
{
	char	 out[HOSTMATCH_NAME_MAX];

	assert_false(norm("[::127.0.0.1]", out, sizeof(out)));
	assert_false(norm("::7f00:1", out, sizeof(out)));
	assert_false(norm("[fe80::1%eth0]", out, sizeof(out)));
	assert_false(norm("[fe80::1%25eth0]", out, sizeof(out)));
	assert_true(norm("[fe80::1]", out, sizeof(out)));
	assert_string_equal(out, "fe80::1");
}

static void
test_pattern_gives_every_spelling_of_an_address_one_form(void **state)
{
	char	 out[HOSTMATCH_NAME_MAX], err[160];

	assert_true(hostmatch_pattern("::ffff:127.0.0.1", out, sizeof(out),
	    err, sizeof(err)));
	assert_string_equal(out, "127.0.0.1");
	assert_true(hostmatch_pattern("[::FFFF:7F00:1]", out, sizeof(out),
	    err, sizeof(err)));
	assert_string_equal(out, "127.0.0.1");
	assert_false(hostmatch_pattern("127.000.000.001", out, sizeof(out),
	    err, sizeof(err)));
	assert_non_null(strstr(err, "IPv4 address"));
	assert_false(hostmatch_pattern("*.foo.123", out, sizeof(out), err,
	    sizeof(err)));
	assert_false(hostmatch_pattern("::127.0.0.1", out, sizeof(out), err,
	    sizeof(err)));
	assert_non_null(strstr(err, "IPv4-compatible"));
}

static void
test_pattern_accepts_exact_names_wildcards_and_ip_literals(void **state)
{
	char	 out[HOSTMATCH_NAME_MAX], err[160];

	assert_true(hostmatch_pattern("API.Example.com.", out, sizeof(out),
	    err, sizeof(err)));
	assert_string_equal(out, "api.example.com");
	assert_true(hostmatch_pattern("*.CDN.example.com", out, sizeof(out),
	    err, sizeof(err)));
	assert_string_equal(out, "*.cdn.example.com");
	assert_true(hostmatch_pattern("*.example.com.", out, sizeof(out),
	    err, sizeof(err)));
	assert_string_equal(out, "*.example.com");
	assert_true(hostmatch_pattern("10.0.0.1", out, sizeof(out), err,
	    sizeof(err)));
	assert_string_equal(out, "10.0.0.1");
	assert_true(hostmatch_pattern("[::1]", out, sizeof(out), err,
	    sizeof(err)));
	assert_string_equal(out, "::1");
}

static void
test_pattern_rejects_wildcards_that_cover_too_much(void **state)
{
	char	 out[HOSTMATCH_NAME_MAX], err[160];

	err[0] = '\0';
	assert_false(hostmatch_pattern("*.com", out, sizeof(out), err,
	    sizeof(err)));
	assert_non_null(strstr(err, "two labels"));
	err[0] = '\0';
	assert_false(hostmatch_pattern("*", out, sizeof(out), err,
	    sizeof(err)));
	assert_true(err[0] != '\0');
	err[0] = '\0';
	assert_false(hostmatch_pattern("*.", out, sizeof(out), err,
	    sizeof(err)));
	assert_true(err[0] != '\0');
	err[0] = '\0';
	assert_false(hostmatch_pattern("*.com.", out, sizeof(out), err,
	    sizeof(err)));
	assert_true(err[0] != '\0');
}

static void
test_pattern_rejects_a_wildcard_outside_the_first_label(void **state)
{
	static const char *const bad[] = { "a.*.com", "*foo.example.com",
	    "foo*.example.com", "*.*.example.com", "**.example.com",
	    "example.*", "*example.com" };
	char	 out[HOSTMATCH_NAME_MAX], err[160];
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_false(hostmatch_pattern(bad[i], out, sizeof(out), err,
		    sizeof(err)));
		assert_non_null(strstr(err, "first label"));
	}
}

static void
test_pattern_rejects_wildcards_before_ip_addresses(void **state)
{
	char	 out[HOSTMATCH_NAME_MAX], err[160];

	err[0] = '\0';
	assert_false(hostmatch_pattern("*.10.0.0.1", out, sizeof(out), err,
	    sizeof(err)));
	assert_non_null(strstr(err, "IP address"));
	err[0] = '\0';
	assert_false(hostmatch_pattern("*.::1", out, sizeof(out), err,
	    sizeof(err)));
	assert_true(err[0] != '\0');
}

static void
test_pattern_rejects_bad_names_with_a_reason(void **state)
{
	static const char *const bad[] = { "", "a..b", "exa mple.com",
	    "example.com..", "api.example.com:443", "[::1", "*.a..b",
	    "*.exa mple.com", "http://example.com" };
	char	 out[HOSTMATCH_NAME_MAX], err[160];
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_false(hostmatch_pattern(bad[i], out, sizeof(out), err,
		    sizeof(err)));
		assert_true(err[0] != '\0');
	}
	err[0] = '\0';
	assert_false(hostmatch_pattern(NULL, out, sizeof(out), err,
	    sizeof(err)));
	assert_true(err[0] != '\0');
}

static void
test_pattern_applies_the_length_limits_to_wildcards(void **state)
{
	static const size_t	 l251[] = { 63, 63, 63, 59 };
	static const size_t	 l252[] = { 63, 63, 63, 60 };
	static const size_t	 l64[] = { 64, 3 };
	char			 name[300], pat[310];
	char			 out[HOSTMATCH_NAME_MAX], err[160];

	make_name(name, sizeof(name), l251, 4);
	snprintf(pat, sizeof(pat), "*.%s", name);
	assert_int_equal(strlen(pat), 253);
	assert_true(hostmatch_pattern(pat, out, sizeof(out), err,
	    sizeof(err)));
	assert_string_equal(out, pat);

	make_name(name, sizeof(name), l252, 4);
	snprintf(pat, sizeof(pat), "*.%s", name);
	err[0] = '\0';
	assert_false(hostmatch_pattern(pat, out, sizeof(out), err,
	    sizeof(err)));
	assert_non_null(strstr(err, "253"));

	make_name(name, sizeof(name), l64, 2);
	snprintf(pat, sizeof(pat), "*.%s", name);
	err[0] = '\0';
	assert_false(hostmatch_pattern(pat, out, sizeof(out), err,
	    sizeof(err)));
	assert_non_null(strstr(err, "63"));
}

static void
test_score_of_an_equal_host_is_exact(void **state)
{
	assert_int_equal(hostmatch_score("api.example.com", "api.example.com",
	    false), HOSTMATCH_EXACT);
	assert_int_equal(hostmatch_score("api.example.com", "api.example.com",
	    true), HOSTMATCH_EXACT);
	assert_int_equal(hostmatch_score("api.example.com", "www.example.com",
	    false), -1);
}

static void
test_score_of_a_wildcard_covers_exactly_one_label(void **state)
{
	assert_int_equal(hostmatch_score("*.example.com", "a.example.com",
	    false), (int)strlen("*.example.com"));
	assert_int_equal(hostmatch_score("*.example.com", "example.com",
	    false), -1);
	assert_int_equal(hostmatch_score("*.example.com", "a.b.example.com",
	    false), -1);
	assert_int_equal(hostmatch_score("*.example.com", "abadexample.com",
	    false), -1);
	assert_int_equal(hostmatch_score("*.example.com", "a.example.com.evil",
	    false), -1);
	assert_int_equal(hostmatch_score("*.example.com", "a.example.org",
	    false), -1);
}

static void
test_score_of_a_wildcard_ignores_include_subdomains(void **state)
{
	assert_int_equal(hostmatch_score("*.example.com", "a.example.com",
	    true), (int)strlen("*.example.com"));
	assert_int_equal(hostmatch_score("*.example.com", "a.b.example.com",
	    true), -1);
	assert_int_equal(hostmatch_score("*.example.com", "example.com",
	    true), -1);
}

static void
test_score_with_include_subdomains_covers_every_subdomain(void **state)
{
	int	 len = (int)strlen("example.com");

	assert_int_equal(hostmatch_score("example.com", "a.example.com",
	    true), len);
	assert_int_equal(hostmatch_score("example.com", "a.b.example.com",
	    true), len);
	assert_int_equal(hostmatch_score("example.com", "badexample.com",
	    true), -1);
	assert_int_equal(hostmatch_score("example.com", ".example.com",
	    true), -1);
	assert_int_equal(hostmatch_score("example.com", "example.com.evil",
	    true), -1);
	assert_int_equal(hostmatch_score("example.com", "a.example.com",
	    false), -1);
}

static void
test_score_prefers_the_more_specific_pattern(void **state)
{
	int	 exact, wild, sub;

	exact = hostmatch_score("a.example.com", "a.example.com", true);
	wild = hostmatch_score("*.example.com", "a.example.com", false);
	sub = hostmatch_score("example.com", "a.example.com", true);
	assert_true(exact > wild);
	assert_true(wild > sub);
	assert_true(sub > 0);
	assert_true(hostmatch_score("b.a.example.com", "c.b.a.example.com",
	    true) > hostmatch_score("a.example.com", "c.b.a.example.com",
	    true));
}

static void
test_score_of_ip_literals_matches_only_the_same_address(void **state)
{
	assert_int_equal(hostmatch_score("10.0.0.1", "10.0.0.1", true),
	    HOSTMATCH_EXACT);
	assert_int_equal(hostmatch_score("::1", "::1", false),
	    HOSTMATCH_EXACT);
	assert_int_equal(hostmatch_score("0.0.1", "10.0.0.1", true), -1);
	assert_int_equal(hostmatch_score("*.0.0.1", "10.0.0.1", false), -1);
	assert_int_equal(hostmatch_score("10.0.0.1", "10.0.0.10", true), -1);
	assert_int_equal(hostmatch_score("::1", "::2", true), -1);
}

static void
test_score_accepts_what_normalize_and_pattern_produce(void **state)
{
	char	 host[HOSTMATCH_NAME_MAX], pat[HOSTMATCH_NAME_MAX];
	char	 err[160];

	assert_true(hostmatch_pattern("*.Example.COM.", pat, sizeof(pat), err,
	    sizeof(err)));
	assert_true(norm("WWW.example.com.", host, sizeof(host)));
	assert_true(hostmatch_score(pat, host, false) > 0);
	assert_true(hostmatch_pattern("[0::1]", pat, sizeof(pat), err,
	    sizeof(err)));
	assert_true(norm("[::1]", host, sizeof(host)));
	assert_int_equal(hostmatch_score(pat, host, false), HOSTMATCH_EXACT);
}

static void
test_is_ip_recognises_both_families(void **state)
{
	assert_true(hostmatch_is_ip("127.0.0.1"));
	assert_true(hostmatch_is_ip("93.184.216.34"));
	assert_true(hostmatch_is_ip("::1"));
	assert_true(hostmatch_is_ip("::ffff:127.0.0.1"));
	assert_true(hostmatch_is_ip("2001:db8::1"));
	assert_false(hostmatch_is_ip("example.com"));
	assert_false(hostmatch_is_ip("1.2.3"));
	assert_false(hostmatch_is_ip("1.2.3.4.5"));
	assert_false(hostmatch_is_ip("256.0.0.1"));
	assert_false(hostmatch_is_ip("[::1]"));
	assert_false(hostmatch_is_ip(""));
	assert_false(hostmatch_is_ip(NULL));
}

/* A socket address's port and host, as the stats listener reads them. */
static void
test_hostport_sockaddr_port(void **state)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	struct sockaddr		 other;
	char			 host[HOSTMATCH_NAME_MAX];
	uint16_t		 port = 0;

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(9101);
	assert_int_equal(inet_pton(AF_INET, "127.0.0.2", &sin.sin_addr), 1);
	assert_int_equal(hostport_sockaddr_port((struct sockaddr *)&sin),
	    9101);
	assert_true(hostport_sockaddr((struct sockaddr *)&sin, host, &port));
	assert_string_equal(host, "127.0.0.2");
	assert_int_equal(port, 9101);
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(65535);
	sin6.sin6_addr = in6addr_loopback;
	assert_int_equal(hostport_sockaddr_port((struct sockaddr *)&sin6),
	    65535);
	assert_true(hostport_sockaddr((struct sockaddr *)&sin6, host,
	    &port));
	assert_string_equal(host, "::1");
	assert_int_equal(port, 65535);
	memset(&other, 0, sizeof(other));
	other.sa_family = AF_UNIX;
	assert_int_equal(hostport_sockaddr_port(&other), 0);
	assert_false(hostport_sockaddr(&other, host, &port));
}

/* Every spelling of HOST[:PORT] the inputs use, through one parser. */
static void
test_hostport_parses_every_form(void **state)
{
	static const struct {
		const char		*in;
		int			 flags;
		enum hostport_error	 want;
		const char		*host;
		uint16_t		 port;
	} cases[] = {
		{ "Api.Example.COM.", 0, HOSTPORT_OK, "api.example.com", 0 },
		{ "api.test:8443", 0, HOSTPORT_OK, "api.test", 8443 },
		{ "[::1]", 0, HOSTPORT_OK, "::1", 0 },
		{ "[0:0::1]:443", 0, HOSTPORT_OK, "::1", 443 },
		{ "[::ffff:127.0.0.1]:80", 0, HOSTPORT_OK, "127.0.0.1", 80 },
		{ "::1", HOSTPORT_BARE_V6_OK, HOSTPORT_OK, "::1", 0 },
		{ "::1", 0, HOSTPORT_BARE_V6, NULL, 0 },
		{ "::1:443", HOSTPORT_NEED_PORT, HOSTPORT_BARE_V6, NULL, 0 },
		{ "api.test", HOSTPORT_NEED_PORT, HOSTPORT_NO_PORT, NULL, 0 },
		{ "[::1]", HOSTPORT_NEED_PORT, HOSTPORT_NO_PORT, NULL, 0 },
		{ "api.test:", 0, HOSTPORT_BAD_PORT, NULL, 0 },
		{ "api.test:0", 0, HOSTPORT_BAD_PORT, NULL, 0 },
		{ "api.test:65536", 0, HOSTPORT_BAD_PORT, NULL, 0 },
		{ "api.test:080800", 0, HOSTPORT_BAD_PORT, NULL, 0 },
		{ "api.test:+80", 0, HOSTPORT_BAD_PORT, NULL, 0 },
		{ "api.test:80x", 0, HOSTPORT_BAD_PORT, NULL, 0 },
		{ ":80", 0, HOSTPORT_BAD_HOST, NULL, 0 },
		{ "[::1", 0, HOSTPORT_BAD_HOST, NULL, 0 },
		{ "[::1]x", 0, HOSTPORT_BAD_HOST, NULL, 0 },
		{ "[api.test]:80", 0, HOSTPORT_BAD_HOST, NULL, 0 },
		{ "127.1:80", 0, HOSTPORT_BAD_HOST, NULL, 0 },
		{ "0x7f.0.0.1", 0, HOSTPORT_BAD_HOST, NULL, 0 },
		{ "[fe80::1%eth0]:80", 0, HOSTPORT_BAD_HOST, NULL, 0 },
		{ "", 0, HOSTPORT_BAD_HOST, NULL, 0 },
	};
	char		 host[HOSTMATCH_NAME_MAX];
	uint16_t	 port;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		port = 1;
		if (hostport_parse(cases[i].in, strlen(cases[i].in),
		    cases[i].flags, host, &port) != cases[i].want)
			fail_msg("%s: not error %d", cases[i].in,
			    (int)cases[i].want);
		if (cases[i].want != HOSTPORT_OK)
			continue;
		assert_string_equal(host, cases[i].host);
		assert_int_equal(port, cases[i].port);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_normalize_lowercases_and_drops_one_trailing_dot),
		cmocka_unit_test(
		    test_normalize_spells_the_unspecified_address_as_loopback),
		cmocka_unit_test(
		    test_nat64_gives_the_ipv4_address_of_the_well_known_prefix),
		cmocka_unit_test(
		    test_nat64_gives_each_candidate_of_the_local_use_prefix),
		cmocka_unit_test(
		    test_normalize_rejects_two_trailing_dots_and_empty_labels),
		cmocka_unit_test(test_normalize_rejects_bytes_no_host_name_has),
		cmocka_unit_test(test_hostport_parses_every_form),
		cmocka_unit_test(test_hostport_sockaddr_port),
		cmocka_unit_test(
		    test_normalize_rejects_a_nul_byte_inside_the_length),
		cmocka_unit_test(test_normalize_uses_only_the_given_length),
		cmocka_unit_test(
		    test_normalize_accepts_253_bytes_and_rejects_254),
		cmocka_unit_test(
		    test_normalize_accepts_63_byte_labels_and_rejects_64),
		cmocka_unit_test(
		    test_normalize_refuses_an_output_buffer_too_small),
		cmocka_unit_test(
		    test_normalize_unwraps_and_canonicalises_ipv6_literals),
		cmocka_unit_test(
		    test_normalize_reads_an_ipv4_mapped_ipv6_address_as_ipv4),
		cmocka_unit_test(
		    test_normalize_refuses_every_other_spelling_of_an_ipv4_address),
		cmocka_unit_test(
		    test_normalize_refuses_a_name_whose_last_label_is_a_number),
		cmocka_unit_test(
		    test_normalize_refuses_ipv4_compatible_addresses_and_zone_ids),
		cmocka_unit_test(
		    test_pattern_gives_every_spelling_of_an_address_one_form),
		cmocka_unit_test(
		    test_pattern_accepts_exact_names_wildcards_and_ip_literals),
		cmocka_unit_test(
		    test_pattern_rejects_wildcards_that_cover_too_much),
		cmocka_unit_test(
		    test_pattern_rejects_a_wildcard_outside_the_first_label),
		cmocka_unit_test(
		    test_pattern_rejects_wildcards_before_ip_addresses),
		cmocka_unit_test(test_pattern_rejects_bad_names_with_a_reason),
		cmocka_unit_test(
		    test_pattern_applies_the_length_limits_to_wildcards),
		cmocka_unit_test(test_score_of_an_equal_host_is_exact),
		cmocka_unit_test(
		    test_score_of_a_wildcard_covers_exactly_one_label),
		cmocka_unit_test(
		    test_score_of_a_wildcard_ignores_include_subdomains),
		cmocka_unit_test(
		    test_score_with_include_subdomains_covers_every_subdomain),
		cmocka_unit_test(test_score_prefers_the_more_specific_pattern),
		cmocka_unit_test(
		    test_score_of_ip_literals_matches_only_the_same_address),
		cmocka_unit_test(
		    test_score_accepts_what_normalize_and_pattern_produce),
		cmocka_unit_test(test_is_ip_recognises_both_families),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Host name normalisation and host pattern matching. Names come from the
 * network (SNI, CONNECT, Host) with an explicit length and are checked byte
 * by byte. This is the one parser of host names and addresses: IPv6
 * literals are rewritten in their canonical text form, an IPv4-mapped IPv6
 * address becomes its IPv4 address, and a name that ends in a number must be
 * a canonical dotted-quad IPv4 address, so that every spelling of one
 * address compares equal and none reaches a resolver that reads it otherwise.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hostmatch.h"
#include "xmalloc.h"

/* The longest DNS name and label, in bytes. */
/* The longest DNS name (RFC 1035): the terminator aside. */
#define HOSTMATCH_LEN_MAX	(HOSTMATCH_NAME_MAX - 1)
#define HOSTMATCH_LABEL_MAX	63

/*
 * Whether a6 is an IPv4-translated address, ::ffff:0:a.b.c.d (RFC 2765's
 * SIIT): a translator on the way would make it the IPv4 host a.b.c.d.
 */
static bool
hostmatch_v4translated(const struct in6_addr *a6)
{
	static const unsigned char	 prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff, 0, 0 };

	return memcmp(a6->s6_addr, prefix, sizeof(prefix)) == 0;
}

/* Parse an IPv6 literal of len bytes and write its canonical text form. */
static bool
hostmatch_ipv6(const char *in, size_t len, char *out, size_t outsize,
    const char **why)
{
	char		 text[INET6_ADDRSTRLEN];
	struct in6_addr	 a6;

	*why = "contains ':' but is not an IPv6 address";
	if (len == 0 || len >= sizeof(text))
		return false;
	if (memchr(in, '%', len) != NULL) {
		*why = "an IPv6 zone index (%...) is refused: it names an "
		    "interface, not a host";
		return false;
	}
	memcpy(text, in, len);
	text[len] = '\0';
	if (inet_pton(AF_INET6, text, &a6) != 1)
		return false;
	/* ::ffff:a.b.c.d is the IPv4 host a.b.c.d, in every spelling. */
	if (IN6_IS_ADDR_V4MAPPED(&a6))
		inet_ntop(AF_INET, &a6.s6_addr[12], text, sizeof(text));
	/* Dialled, the unspecified address is the loopback one. */
	else if (IN6_IS_ADDR_UNSPECIFIED(&a6))
		xstrlcpy(text, "::1", sizeof(text));
	else if (IN6_IS_ADDR_V4COMPAT(&a6)) {
		*why = "an IPv4-compatible IPv6 address (::a.b.c.d) is "
		    "deprecated and refused; write the IPv4 address";
		return false;
	} else if (hostmatch_v4translated(&a6)) {
		*why = "an IPv4-translated IPv6 address (::ffff:0:a.b.c.d) is "
		    "refused; write the IPv4 address";
		return false;
	} else
		inet_ntop(AF_INET6, &a6, text, sizeof(text));
	if (xstrlcpy(out, text, outsize) >= outsize) {
		*why = "IPv6 address does not fit the buffer";
		return false;
	}
	return true;
}

/*
 * Whether the last label of a lower-case name of len bytes is a number as
 * URL parsers and inet_aton() see one: all digits, or "0x" and hex digits;
 * or as libevent's resolver sees one (sscanf()'s "%u": a '-' first, and
 * numbers that wrap, so that "127.0.0.-4294967295" is 127.0.0.1). No
 * host name's label starts with a '-'.
 */
static bool
hostmatch_ends_in_number(const char *name, size_t len)
{
	size_t	 start = len, i;

	while (start > 0 && name[start - 1] != '.')
		start--;
	if (len - start >= 2 && name[start] == '0' && name[start + 1] == 'x') {
		for (i = start + 2; i < len; i++)
			if (!((name[i] >= '0' && name[i] <= '9') ||
			    (name[i] >= 'a' && name[i] <= 'f')))
				return false;
		return true;
	}
	if (start < len && name[start] == '-')
		start++;
	for (i = start; i < len; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	return len > start;
}

/*
 * Whether a lower-case name of len bytes that ends in a number is an IPv4
 * address written as inet_ntop() writes it: four decimal parts, no leading
 * zeros. Resolvers read the other spellings (0177.0.0.1, 127.1,
 * 2130706433, 0x7f.0.0.1) in different ways, so they are never accepted.
 */
static bool
hostmatch_ipv4_canonical(const char *name, size_t len)
{
	char		 text[INET_ADDRSTRLEN];
	struct in_addr	 a4;

	if (len >= sizeof(text))
		return false;
	memcpy(text, name, len);
	text[len] = '\0';
	if (inet_pton(AF_INET, text, &a4) != 1)
		return false;
	inet_ntop(AF_INET, &a4, text, sizeof(text));
	return strlen(text) == len && memcmp(text, name, len) == 0;
}

static bool
hostmatch_name_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '_';
}

/* The spelling of a host name or address in out, or why it has none. */
static bool
hostmatch_spell(const char *in, size_t len, char *out, size_t outsize,
    const char **why)
{
	size_t		 i, label = 0;
	unsigned char	 c;

	if (len == 0) {
		*why = "empty host name";
		return false;
	}
	if (memchr(in, '\0', len) != NULL) {
		*why = "host name contains a NUL byte";
		return false;
	}
	if (in[0] == '[') {
		if (len < 2 || in[len - 1] != ']') {
			*why = "missing ] after the IPv6 address";
			return false;
		}
		return hostmatch_ipv6(in + 1, len - 2, out, outsize, why);
	}
	if (memchr(in, ':', len) != NULL)
		return hostmatch_ipv6(in, len, out, outsize, why);
	if (in[len - 1] == '.')
		len--;
	if (len == 0) {
		*why = "empty host name";
		return false;
	}
	if (len > HOSTMATCH_LEN_MAX) {
		*why = "host name longer than 253 bytes";
		return false;
	}
	if (outsize <= len) {
		*why = "host name does not fit the buffer";
		return false;
	}
	for (i = 0; i < len; i++) {
		c = (unsigned char)in[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0) {
				*why = "empty label in host name";
				return false;
			}
			label = 0;
		} else if (!hostmatch_name_byte(c)) {
			*why = "host name contains a byte other than a "
			    "letter, digit, '-', '_' or '.'";
			return false;
		} else if (++label > HOSTMATCH_LABEL_MAX) {
			*why = "label longer than 63 bytes in host name";
			return false;
		}
		out[i] = (char)c;
	}
	if (label == 0) {
		*why = "empty label in host name";
		return false;
	}
	if (hostmatch_ends_in_number(out, len) &&
	    !hostmatch_ipv4_canonical(out, len)) {
		*why = "a host name ending in a number must be an IPv4 "
		    "address in dotted-decimal form without leading zeros, "
		    "as in 127.0.0.1";
		return false;
	}
	out[len] = '\0';
	return true;
}

/*
 * The work of hostmatch_normalize, with the reason for a rejection in *why
 * so that the configuration can explain a bad pattern.
 */
static bool
hostmatch_check(const char *in, size_t len, char *out, size_t outsize,
    const char **why)
{
	if (!hostmatch_spell(in, len, out, outsize, why))
		return false;
	/* Dialled, 0.0.0.0 (however spelled) is the loopback address. */
	if (strcmp(out, "0.0.0.0") == 0 &&
	    xstrlcpy(out, HOSTMATCH_LOOPBACK4, outsize) >= outsize) {
		*why = "host name does not fit the buffer";
		return false;
	}
	return true;
}

size_t
hostmatch_nat64(const char *host, char v4[HOSTMATCH_NAT64_MAX][16])
{
	static const uint8_t	 wkp[12] = { 0x00, 0x64, 0xff, 0x9b };
	static const uint8_t	 local[6] = { 0x00, 0x64, 0xff, 0x9b, 0x00,
	    0x01 };
	/*
	 * Where the four bytes sit after a prefix of 48, 56 and 64 bits:
	 * around byte 8 (bits 64-71, the "u" octet, zero).
	 */
	static const uint8_t	 at[3][4] = {
		{ 6, 7, 9, 10 }, { 7, 9, 10, 11 }, { 9, 10, 11, 12 }
	};
	struct in6_addr		 a6;
	const uint8_t		*b = a6.s6_addr;
	uint8_t			 q[4];
	size_t			 n = 0, i, k;

	if (inet_pton(AF_INET6, host, &a6) != 1)
		return 0;
	if (memcmp(b, wkp, sizeof(wkp)) == 0) {
		inet_ntop(AF_INET, &b[12], v4[n++], 16);
		return n;
	}
	if (memcmp(b, local, sizeof(local)) != 0)
		return 0;
	inet_ntop(AF_INET, &b[12], v4[n++], 16);
	for (i = 0; i < 3 && b[8] == 0; i++) {
		for (k = 0; k < 4; k++)
			q[k] = b[at[i][k]];
		inet_ntop(AF_INET, q, v4[n++], 16);
	}
	return n;
}

bool
hostmatch_normalize(const char *in, size_t inlen, char *out, size_t outsize)
{
	const char	*why;

	if (in == NULL || out == NULL || outsize == 0)
		return false;
	return hostmatch_check(in, inlen, out, outsize, &why);
}

bool
hostmatch_pattern(const char *in, char *out, size_t outsize, char *err,
    size_t errlen)
{
	char		 rest[HOSTMATCH_NAME_MAX];
	const char	*why;
	size_t		 len;

	if (in == NULL || *in == '\0') {
		xseterr(err, errlen, "empty host pattern");
		return false;
	}
	if (strchr(in, '*') == NULL) {
		if (!hostmatch_check(in, strlen(in), out, outsize, &why)) {
			xseterr(err, errlen, "%s", why);
			return false;
		}
		return true;
	}
	if (strcmp(in, "*") == 0 || strcmp(in, "*.") == 0) {
		xseterr(err, errlen, "a lone * is not a host pattern; "
		    "write *.example.com to cover the names one label below "
		    "example.com");
		return false;
	}
	if (in[0] != '*' || in[1] != '.' || strchr(in + 1, '*') != NULL) {
		xseterr(err, errlen, "a wildcard must be the whole "
		    "first label and appear once, as in *.example.com");
		return false;
	}
	if (!hostmatch_check(in + 2, strlen(in + 2), rest, sizeof(rest),
	    &why)) {
		xseterr(err, errlen, "%s", why);
		return false;
	}
	if (hostmatch_is_ip(rest)) {
		xseterr(err, errlen, "a wildcard cannot stand before an "
		    "IP address");
		return false;
	}
	if (strchr(rest, '.') == NULL) {
		xseterr(err, errlen, "a wildcard needs at least two "
		    "labels after it, as in *.example.com: *.%s would cover a "
		    "whole top-level domain", rest);
		return false;
	}
	len = 2 + strlen(rest);
	if (len > HOSTMATCH_LEN_MAX) {
		xseterr(err, errlen, "host pattern longer than 253 "
		    "bytes");
		return false;
	}
	if (outsize <= len) {
		xseterr(err, errlen, "host pattern does not fit the "
		    "buffer");
		return false;
	}
	snprintf(out, outsize, "*.%s", rest);
	return true;
}

int
hostmatch_score(const char *pattern, const char *host,
    bool include_subdomains)
{
	size_t	 plen, hlen;

	if (pattern == NULL || host == NULL)
		return -1;
	if (strcmp(pattern, host) == 0)
		return HOSTMATCH_EXACT;
	if (hostmatch_is_ip(host) || hostmatch_is_ip(pattern))
		return -1;
	plen = strlen(pattern);
	hlen = strlen(host);
	if (pattern[0] == '*' && pattern[1] == '.') {
		/* "*.example.com" covers exactly one label more. */
		if (hlen <= plen - 1 ||
		    strcmp(host + hlen - (plen - 1), pattern + 1) != 0)
			return -1;
		if (memchr(host, '.', hlen - (plen - 1)) != NULL)
			return -1;
		return (int)plen;
	}
	if (include_subdomains && hlen > plen + 1 &&
	    host[hlen - plen - 1] == '.' &&
	    strcmp(host + hlen - plen, pattern) == 0)
		return (int)plen;
	return -1;
}

bool
hostmatch_is_ip(const char *host)
{
	unsigned char	 buf[sizeof(struct in6_addr)];

	if (host == NULL)
		return false;
	return inet_pton(AF_INET, host, buf) == 1 ||
	    inet_pton(AF_INET6, host, buf) == 1;
}

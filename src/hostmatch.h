/*
 * Host names and the host patterns of pin sets: "api.example.com" (exact),
 * "*.example.com" (exactly one more label, not the apex) and IP literals.
 * Matching is case-insensitive and ignores one trailing dot; every spelling
 * of one IP address normalises to the same text.
 */
#ifndef PINPROXY_HOSTMATCH_H
#define PINPROXY_HOSTMATCH_H

#include <stdbool.h>
#include <stddef.h>

/* The longest DNS name, plus room for the terminator. */
#define HOSTMATCH_NAME_MAX	254
/* The score of a pattern equal to the host: beats every other match. */
#define HOSTMATCH_EXACT		1000
/* What the unspecified address 0.0.0.0 (or ::ffff:0.0.0.0) stands for. */
#define HOSTMATCH_LOOPBACK4	"127.0.0.1"

/*
 * Normalise a host name (SNI, CONNECT host, Host header): lower-case, one
 * trailing dot removed, brackets of an IPv6 literal removed, an IPv6
 * literal in canonical form and an IPv4-mapped one (::ffff:a.b.c.d) as its
 * IPv4 address, the unspecified address (0.0.0.0, ::, ::ffff:0.0.0.0) as
 * the loopback one it reaches when dialled (127.0.0.1, ::1). Returns false for an empty name, one longer than 253 bytes,
 * bytes no host name has, a zone id, an IPv4-compatible IPv6 address, and a
 * name ending in a number that is not a canonical dotted-quad IPv4 address
 * (127.000.000.001, 0177.0.0.1, 0x7f.0.0.1, 127.1, 2130706433, foo.123).
 */
bool	 hostmatch_normalize(const char *in, size_t inlen, char *out,
	    size_t outsize);
/* Validate a pattern from the configuration and normalise it into out. */
bool	 hostmatch_pattern(const char *in, char *out, size_t outsize,
	    char *err, size_t errlen);
/*
 * How specifically a normalised pattern covers a normalised host: -1 when
 * it does not, HOSTMATCH_EXACT when they are equal, else the pattern's
 * length (a wildcard, or an exact host covering a subdomain because of
 * include_subdomains).
 */
int	 hostmatch_score(const char *pattern, const char *host,
	    bool include_subdomains);
/* Whether a normalised host is an IPv4 or IPv6 literal. */
bool	 hostmatch_is_ip(const char *host);
/* The most IPv4 addresses one IPv6 address may carry through NAT64. */
#define HOSTMATCH_NAT64_MAX	4

/*
 * The IPv4 addresses that a NAT64 gateway may turn a normalised host into
 * (RFC 6052), into v4[] (dotted quads), and how many: one for the
 * well-known prefix 64:ff9b::/96 (its last 32 bits), up to four for the
 * local-use prefix 64:ff9b:1::/48, whose network may embed the address
 * after a prefix of 48, 56, 64 or 96 bits (the /96 one first); none for
 * any other address.
 */
size_t	 hostmatch_nat64(const char *host,
	    char v4[HOSTMATCH_NAT64_MAX][16]);

#endif

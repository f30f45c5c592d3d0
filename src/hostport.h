/*
 * HOST[:PORT] however it arrives: a request's authority or Host field, a
 * CONNECT target, a configuration value, a command-line target. One parser
 * splits it ("host", "host:port", "[v6]", "[v6]:port"), hostmatch.c makes
 * the host canonical (every spelling of an address the same text, every
 * ambiguous numeric name refused), and one rule reads the port.
 */
#ifndef PINPROXY_HOSTPORT_H
#define PINPROXY_HOSTPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "hostmatch.h"

/* What is wrong with a HOST[:PORT]; HOSTPORT_OK when nothing. */
enum hostport_error {
	HOSTPORT_OK,
	HOSTPORT_BAD_HOST,	/* not a host name or address */
	HOSTPORT_BARE_V6,	/* an IPv6 address without brackets */
	HOSTPORT_NO_PORT,	/* a port is required */
	HOSTPORT_BAD_PORT	/* not a number from 1 to 65535 */
};

/* Flags of hostport_parse(). */
#define HOSTPORT_NEED_PORT	0x1	/* "host" alone is an error */
#define HOSTPORT_BARE_V6_OK	0x2	/* "::1" is a host (a command line) */

/*
 * Split s (len bytes) into a normalised host, written to host (at least
 * HOSTMATCH_NAME_MAX bytes), and a port (0 when none and none is needed).
 */
enum hostport_error hostport_parse(const char *s, size_t len, int flags,
		    char *host, uint16_t *port);
/*
 * Normalise one host as it appeared inside brackets (bracketed: an IPv6
 * literal, nothing else) or outside them (never an IPv6 literal); host
 * has HOSTMATCH_NAME_MAX bytes.
 */
bool		 hostport_host(const char *s, size_t len, bool bracketed,
		    char *host);
/* A port: one to five digits, 1 to 65535, nothing else. */
bool		 hostport_port(const char *s, size_t len, uint16_t *port);
/*
 * The normalised host and the port of a socket address (an IPv4-mapped
 * IPv6 address is its IPv4 host, the unspecified address the loopback
 * one: see hostmatch_normalize()); host has HOSTMATCH_NAME_MAX bytes.
 * False for another family or an address hostmatch_normalize() refuses.
 */
bool		 hostport_sockaddr(const struct sockaddr *sa, char *host,
		    uint16_t *port);
/* The port of an IPv4 or IPv6 socket address, in host order; else 0. */
uint16_t	 hostport_sockaddr_port(const struct sockaddr *sa);

#endif

/*
 * HOST[:PORT] parsing shared by the request parser, the configuration and
 * the pin tool.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hostport.h"

uint16_t
hostport_sockaddr_port(const struct sockaddr *sa)
{
	switch (sa->sa_family) {
	case AF_INET:
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	case AF_INET6:
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	default:
		return 0;
	}
}

bool
hostport_sockaddr(const struct sockaddr *sa, char *host, uint16_t *port)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6	*sin6 =
	    (const struct sockaddr_in6 *)sa;

	*port = hostport_sockaddr_port(sa);
	switch (sa->sa_family) {
	case AF_INET:
		if (inet_ntop(AF_INET, &sin->sin_addr, host,
		    HOSTMATCH_NAME_MAX) == NULL)
			return false;
		break;
	case AF_INET6:
		if (inet_ntop(AF_INET6, &sin6->sin6_addr, host,
		    HOSTMATCH_NAME_MAX) == NULL)
			return false;
		break;
	default:
		return false;
	}
	/* Spelled as every other host is: ::ffff:a.b.c.d, 0.0.0.0. */
	return hostmatch_normalize(host, strlen(host), host,
	    HOSTMATCH_NAME_MAX);
}

bool
hostport_host(const char *s, size_t len, bool bracketed, char *host)
{
	if (len == 0)
		return false;
	/* Inside brackets only an IPv6 literal; outside, never one. */
	if ((memchr(s, ':', len) != NULL) != bracketed)
		return false;
	return hostmatch_normalize(s, len, host, HOSTMATCH_NAME_MAX);
}

bool
hostport_port(const char *s, size_t len, uint16_t *port)
{
	unsigned long	 v = 0;
	size_t		 i;

	if (len == 0 || len > 5)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

enum hostport_error
hostport_parse(const char *s, size_t len, int flags, char *host,
    uint16_t *port)
{
	const char	*end = s + len, *close, *colon;

	*port = 0;
	if (len > 0 && s[0] == '[') {
		if ((close = memchr(s, ']', len)) == NULL ||
		    !hostport_host(s + 1, (size_t)(close - s - 1), true, host))
			return HOSTPORT_BAD_HOST;
		colon = close + 1;
		if (colon == end)
			colon = NULL;
		else if (*colon != ':')
			return HOSTPORT_BAD_HOST;
	} else {
		colon = memchr(s, ':', len);
		if (colon != NULL && memchr(colon + 1, ':',
		    (size_t)(end - colon - 1)) != NULL) {
			/* Two colons: an IPv6 address, never HOST:PORT. */
			if ((flags & HOSTPORT_BARE_V6_OK) == 0)
				return HOSTPORT_BARE_V6;
			colon = NULL;
			if (!hostport_host(s, len, true, host))
				return HOSTPORT_BAD_HOST;
		} else if (!hostport_host(s, colon != NULL ?
		    (size_t)(colon - s) : len, false, host))
			return HOSTPORT_BAD_HOST;
	}
	if (colon == NULL)
		return (flags & HOSTPORT_NEED_PORT) != 0 ? HOSTPORT_NO_PORT :
		    HOSTPORT_OK;
	if (!hostport_port(colon + 1, (size_t)(end - colon - 1), port))
		return HOSTPORT_BAD_PORT;
	return HOSTPORT_OK;
}

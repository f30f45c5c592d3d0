/*
 * Parsers for the typed values of the configuration. They are strict: no
 * signs, no surrounding white space, no name resolution, and every
 * rejection says why in the caller's err buffer.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_value.h"
#include "hostport.h"
#include "xmalloc.h"

/* The longest duration accepted: one year, in seconds and milliseconds. */
#define CV_DURATION_MAX		31536000UL
#define CV_DURATION_MAX_MS	(CV_DURATION_MAX * UINT64_C(1000))
/* Separators of a list value. */
#define CV_LIST_SEPARATORS	", \t\r\n"

static bool
cv_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Read the digits at *sp into *out, stopping at the first other byte.
 * Returns false when there is no digit or the value exceeds max.
 */
static bool
cv_digits(const char **sp, unsigned long max, unsigned long *out)
{
	const char	*s = *sp;
	unsigned long	 v = 0, d;

	if (!cv_is_digit(*s))
		return false;
	while (cv_is_digit(*s)) {
		d = (unsigned long)(*s - '0');
		if (d > max || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
		s++;
	}
	*sp = s;
	*out = v;
	return true;
}

bool
cv_duration(const char *s, uint64_t *ms, char *err, size_t errlen)
{
	uint64_t	 v = 0, unit, d;
	const char	*p = s;

	if (s == NULL || *s == '\0') {
		xseterr(err, errlen, "empty duration");
		return false;
	}
	if (*s == '-') {
		xseterr(err, errlen, "a duration cannot be negative");
		return false;
	}
	if (!cv_is_digit(*s)) {
		xseterr(err, errlen, "not a duration: expected seconds or a "
		    "number followed by ms, s, m or h");
		return false;
	}
	/* No unit makes the number larger than milliseconds do. */
	for (; cv_is_digit(*p); p++) {
		d = (uint64_t)(*p - '0');
		if (v > (CV_DURATION_MAX_MS - d) / 10) {
			xseterr(err, errlen, "duration too long: at most %lu "
			    "seconds (365 days)", CV_DURATION_MAX);
			return false;
		}
		v = v * 10 + d;
	}
	if (strcmp(p, "") == 0 || strcmp(p, "s") == 0)
		unit = 1000;
	else if (strcmp(p, "ms") == 0)
		unit = 1;
	else if (strcmp(p, "m") == 0)
		unit = 60 * 1000;
	else if (strcmp(p, "h") == 0)
		unit = 3600 * 1000;
	else {
		xseterr(err, errlen, "unknown unit in duration: use ms, s, m "
		    "or h");
		return false;
	}
	if (v > CV_DURATION_MAX_MS / unit) {
		xseterr(err, errlen, "duration too long: at most %lu seconds "
		    "(365 days)", CV_DURATION_MAX);
		return false;
	}
	*ms = v * unit;
	return true;
}

bool
cv_duration_us(const char *s, uint64_t max_us, uint64_t *us, char *err,
    size_t errlen)
{
	static const struct {
		const char	*name;
		uint64_t	 us;
	} units[] = {
		{ "", 1000000 }, { "us", 1 }, { "ms", 1000 }, { "s", 1000000 },
		{ "m", 60000000 }, { "h", UINT64_C(3600000000) },
	};
	char		 text[32];
	unsigned long	 v;
	const char	*p = s;
	size_t		 i;

	if (s != NULL && *s == '-') {
		xseterr(err, errlen, "a duration cannot be negative");
		return false;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (s != NULL && cv_is_digit(*s) &&
		    strcmp(s + strspn(s, "0123456789"), units[i].name) == 0)
			break;
	if (i == sizeof(units) / sizeof(units[0])) {
		xseterr(err, errlen, "not a duration: expected a number "
		    "followed by us, ms, s, m or h (none: seconds)");
		return false;
	}
	/* A number too big for an unsigned long is too long as well. */
	if (!cv_digits(&p, ULONG_MAX, &v) || v > max_us / units[i].us) {
		if (max_us % 1000 == 0)
			snprintf(text, sizeof(text), "%llums",
			    (unsigned long long)(max_us / 1000));
		else
			snprintf(text, sizeof(text), "%lluus",
			    (unsigned long long)max_us);
		xseterr(err, errlen, "duration too long: at most %s%s", text,
		    units[i].name[0] == '\0' ? " (a number alone is seconds)" :
		    "");
		return false;
	}
	*us = v * units[i].us;
	return true;
}

struct timeval
cv_timeval(uint64_t ms)
{
	struct timeval	 tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return tv;
}

const char *
cv_duration_text(uint64_t ms, char *buf, size_t len)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	return buf;
}

bool
cv_bool(const char *s, bool *out, char *err, size_t errlen)
{
	static const struct {
		const char	*word;
		bool		 value;
	} words[] = {
		{ "yes", true },	{ "no", false },
		{ "true", true },	{ "false", false },
		{ "on", true },		{ "off", false },
		{ "1", true },		{ "0", false },
	};
	size_t	 i;

	for (i = 0; s != NULL && i < sizeof(words) / sizeof(words[0]); i++) {
		if (strcasecmp(s, words[i].word) == 0) {
			*out = words[i].value;
			return true;
		}
	}
	xseterr(err, errlen, "expected yes or no (or true/false, on/off, 1/0)");
	return false;
}

bool
cv_uint(const char *s, unsigned long min, unsigned long max,
    unsigned long *out, char *err, size_t errlen)
{
	const char	*p = s;
	unsigned long	 v;

	if (s == NULL || *s == '\0') {
		xseterr(err, errlen, "empty number");
		return false;
	}
	if (!cv_is_digit(*s)) {
		xseterr(err, errlen, "not a number from %lu to %lu", min, max);
		return false;
	}
	if (!cv_digits(&p, ULONG_MAX, &v)) {
		xseterr(err, errlen, "number out of range: must be from %lu to "
		    "%lu", min, max);
		return false;
	}
	if (*p != '\0') {
		xseterr(err, errlen, "not a number from %lu to %lu", min, max);
		return false;
	}
	if (v < min || v > max) {
		xseterr(err, errlen, "number out of range: must be from %lu to "
		    "%lu", min, max);
		return false;
	}
	*out = v;
	return true;
}

bool
cv_port(const char *s, uint16_t *out, char *err, size_t errlen)
{
	size_t	 len = s != NULL ? strlen(s) : 0;

	/* As a request's port is read: one to five digits. */
	if (hostport_port(s, len, out))
		return true;
	if (len > 5 && strspn(s, "0123456789") == len)
		xseterr(err, errlen, "not a port: at most five digits");
	else
		xseterr(err, errlen, "not a port: expected a number from 1 to "
		    "65535");
	return false;
}

bool
cv_addr(const char *s, struct conf_addr *out, char *err, size_t errlen)
{
	struct conf_addr	 a;
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	char			 host[INET6_ADDRSTRLEN];
	unsigned char		 bin[16];
	const char		*hs, *he, *port;
	uint16_t		 portnum;
	int			 v6;

	if (s == NULL || *s == '\0') {
		xseterr(err, errlen, "empty address");
		return false;
	}
	if (*s == '[') {
		v6 = 1;
		hs = s + 1;
		if ((he = strchr(hs, ']')) == NULL) {
			xseterr(err, errlen, "missing ] after the IPv6 address");
			return false;
		}
		if (he[1] != ':') {
			xseterr(err, errlen, "missing :PORT after [ADDRESS], "
			    "as in [::1]:8080");
			return false;
		}
		port = he + 2;
	} else {
		v6 = 0;
		hs = s;
		if ((he = strchr(s, ':')) == NULL) {
			xseterr(err, errlen, "missing :PORT, as in "
			    "127.0.0.1:8080");
			return false;
		}
		if (strchr(he + 1, ':') != NULL) {
			xseterr(err, errlen, "an IPv6 address needs brackets, "
			    "as in [::1]:8080");
			return false;
		}
		port = he + 1;
	}
	if (he == hs || (size_t)(he - hs) >= sizeof(host)) {
		xseterr(err, errlen, "not a numeric IP%s address (host names "
		    "are not accepted)", v6 ? "v6" : "v4");
		return false;
	}
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, host, bin) != 1) {
		xseterr(err, errlen, "not a numeric IP%s address (host names "
		    "are not accepted)", v6 ? "v6" : "v4");
		return false;
	}
	if (*port == '\0') {
		xseterr(err, errlen, "missing port after ':'");
		return false;
	}
	if (!cv_port(port, &portnum, err, errlen))
		return false;

	memset(&a, 0, sizeof(a));
	if (v6) {
		sin6 = (struct sockaddr_in6 *)&a.ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(portnum);
		memcpy(&sin6->sin6_addr, bin, sizeof(sin6->sin6_addr));
		a.sslen = sizeof(*sin6);
	} else {
		sin = (struct sockaddr_in *)&a.ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(portnum);
		memcpy(&sin->sin_addr, bin, sizeof(sin->sin_addr));
		a.sslen = sizeof(*sin);
	}
	cv_sockaddr_text((struct sockaddr *)&a.ss, a.text, sizeof(a.text));
	*out = a;
	return true;
}

/* Whether the first prefix bits of a and b are equal. */
static bool
cv_prefix_equal(const unsigned char *a, const unsigned char *b,
    unsigned int prefix)
{
	unsigned int	 whole = prefix / 8, rest = prefix % 8;
	unsigned char	 mask;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

bool
cv_cidr(const char *s, struct cidr *out, char *err, size_t errlen)
{
	struct cidr	 c;
	char		 host[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN];
	unsigned char	 masked[16];
	const char	*slash, *p;
	unsigned long	 prefix;
	unsigned int	 maxprefix, i, bits;
	size_t		 len;

	if (s == NULL || *s == '\0') {
		xseterr(err, errlen, "empty address block");
		return false;
	}
	slash = strchr(s, '/');
	len = slash != NULL ? (size_t)(slash - s) : strlen(s);
	memset(&c, 0, sizeof(c));
	c.family = memchr(s, ':', len) != NULL ? AF_INET6 : AF_INET;
	maxprefix = c.family == AF_INET6 ? 128 : 32;
	if (len == 0 || len >= sizeof(host)) {
		xseterr(err, errlen, "not a numeric IP address");
		return false;
	}
	memcpy(host, s, len);
	host[len] = '\0';
	if (inet_pton(c.family, host, c.addr) != 1) {
		xseterr(err, errlen, "not a numeric IP%s address",
		    c.family == AF_INET6 ? "v6" : "v4");
		return false;
	}
	c.prefix = maxprefix;
	if (slash != NULL) {
		p = slash + 1;
		if (!cv_digits(&p, 1000, &prefix) || *p != '\0') {
			xseterr(err, errlen, "not a prefix length after '/': "
			    "expected 0 to %u", maxprefix);
			return false;
		}
		if (prefix > maxprefix) {
			xseterr(err, errlen, "prefix /%lu too long: an IP%s "
			    "prefix is at most /%u", prefix,
			    c.family == AF_INET6 ? "v6" : "v4", maxprefix);
			return false;
		}
		c.prefix = (unsigned int)prefix;
	}
	memset(masked, 0, sizeof(masked));
	for (i = 0; i < maxprefix / 8; i++) {
		bits = c.prefix > i * 8 ? c.prefix - i * 8 : 0;
		if (bits >= 8)
			masked[i] = c.addr[i];
		else if (bits > 0)
			masked[i] = c.addr[i] & (unsigned char)(0xff <<
			    (8 - bits));
	}
	if (memcmp(masked, c.addr, maxprefix / 8) != 0) {
		inet_ntop(c.family, masked, text, sizeof(text));
		xseterr(err, errlen, "host bits set; did you mean %s/%u?", text,
		    c.prefix);
		return false;
	}
	/*
	 * ::ffff:a.b.c.d is the IPv4 address a.b.c.d everywhere: a block
	 * inside the mapped range is that IPv4 block (and a wider IPv6 one
	 * holds no IPv4 client, see cidr_match()).
	 */
	if (c.family == AF_INET6 && c.prefix >= 96 &&
	    IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)c.addr)) {
		c.family = AF_INET;
		memmove(c.addr, c.addr + 12, 4);
		memset(c.addr + 4, 0, 12);
		c.prefix -= 96;
	}
	*out = c;
	return true;
}

bool
cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	const unsigned char		*a;

	if (c == NULL || sa == NULL)
		return false;
	switch (sa->sa_family) {
	case AF_INET:
		if (c->family != AF_INET)
			return false;
		sin = (const struct sockaddr_in *)sa;
		a = (const unsigned char *)&sin->sin_addr;
		break;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)sa;
		a = (const unsigned char *)&sin6->sin6_addr;
		/*
		 * A dual-stack listener sees IPv4 clients this way: they are
		 * IPv4 clients, for IPv4 blocks only.
		 */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) !=
		    (c->family == AF_INET))
			return false;
		if (c->family == AF_INET)
			a += 12;
		break;
	default:
		return false;
	}
	return cv_prefix_equal(a, c->addr, c->prefix);
}

static bool
cv_leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

bool
cv_date(const char *s, time_t *out, char *err, size_t errlen)
{
	static const int	 mdays[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};
	struct tm		 tm;
	int			 y, m, d, maxday;
	size_t			 i;

	if (s == NULL || strlen(s) != 10) {
		xseterr(err, errlen, "not a date: expected YYYY-MM-DD");
		return false;
	}
	for (i = 0; i < 10; i++) {
		if (i == 4 || i == 7 ? s[i] != '-' : !cv_is_digit(s[i])) {
			xseterr(err, errlen, "not a date: expected YYYY-MM-DD");
			return false;
		}
	}
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
	    (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (y < 1970) {
		xseterr(err, errlen, "year %d out of range: from 1970 to 9999",
		    y);
		return false;
	}
	if (m < 1 || m > 12) {
		xseterr(err, errlen, "month %d out of range: from 01 to 12", m);
		return false;
	}
	maxday = mdays[m - 1] + (m == 2 && cv_leap_year(y) ? 1 : 0);
	if (d < 1 || d > maxday) {
		xseterr(err, errlen, "day %d out of range: %04d-%02d has %d "
		    "days", d, y, m, maxday);
		return false;
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	*out = timegm(&tm);
	return true;
}

char **
cv_list(const char *s, size_t *count)
{
	char		**items = NULL;
	size_t		  n = 0, len;

	while (s != NULL && *s != '\0') {
		s += strspn(s, CV_LIST_SEPARATORS);
		if ((len = strcspn(s, CV_LIST_SEPARATORS)) == 0)
			break;
		items = xreallocarray(items, n + 1, sizeof(*items));
		items[n++] = xstrndup(s, len);
		s += len;
	}
	*count = n;
	return items;
}

void
cv_list_free(char **items, size_t count)
{
	size_t	 i;

	if (items == NULL)
		return;
	for (i = 0; i < count; i++)
		free(items[i]);
	free(items);
}

void
cv_hostport_text(const char *host, uint16_t port, char *buf, size_t len)
{
	/* Only an IPv6 literal has a colon, and needs brackets. */
	snprintf(buf, len, strchr(host, ':') != NULL ? "[%s]:%u" : "%s:%u",
	    host, port);
}

void
cv_peer_text(const struct sockaddr *sa, char *buf, size_t len)
{
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)sa;
	struct sockaddr_in		 sin;

	if (sa == NULL || sa->sa_family != AF_INET6 ||
	    !IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		cv_sockaddr_text(sa, buf, len);
		return;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = sin6->sin6_port;
	memcpy(&sin.sin_addr, &sin6->sin6_addr.s6_addr[12],
	    sizeof(sin.sin_addr));
	cv_sockaddr_text((const struct sockaddr *)&sin, buf, len);
}

void
cv_sockaddr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	char				 host[INET6_ADDRSTRLEN];

	if (len == 0)
		return;
	if (sa == NULL) {
		snprintf(buf, len, "?");
		return;
	}
	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
		break;
	case AF_INET6:
		/* A mapped IPv4 client prints as "[::ffff:1.2.3.4]:80". */
		sin6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
		break;
	default:
		snprintf(buf, len, "?");
		break;
	}
}

/*
 * Typed values of the configuration: durations, booleans, numbers, ports,
 * ADDR:PORT, CIDR blocks, UTC dates and comma/space separated lists. Every
 * parser returns false and explains why in err when the text is not valid.
 */
#ifndef PINPROXY_CONF_VALUE_H
#define PINPROXY_CONF_VALUE_H

#include <sys/socket.h>
#include <sys/time.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Long enough for "[ffff:...:ffff]:65535". */
#define CONF_ADDR_TEXT_MAX	64

/* A numeric socket address with its canonical text form. */
struct conf_addr {
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			 text[CONF_ADDR_TEXT_MAX];
	int			 line;	/* of the key that named it; 0: none */
	bool			 v6only; /* bound so: [::] takes no IPv4 */
};

/* An address block; family is AF_INET or AF_INET6. */
struct cidr {
	int			 family;
	unsigned char		 addr[16];
	unsigned int		 prefix;
};

/*
 * Milliseconds from seconds, or from a number with the suffix ms, s, m or
 * h ("300ms", "30s", "5m", "1h"); at most 365 days.
 */
bool	 cv_duration(const char *s, uint64_t *ms, char *err, size_t errlen);
/*
 * Microseconds from seconds, or from a number with the suffix us, ms, s,
 * m or h ("200us", "1ms"); at most max_us.
 */
bool	 cv_duration_us(const char *s, uint64_t max_us, uint64_t *us,
	    char *err, size_t errlen);
/* The timeval of ms milliseconds, for libevent's timers. */
struct timeval cv_timeval(uint64_t ms);
/* ms as a duration in messages: "10s" in whole seconds, else "300ms". */
const char *cv_duration_text(uint64_t ms, char *buf, size_t len);
/* yes/no, true/false, on/off, 1/0 (case-insensitive). */
bool	 cv_bool(const char *s, bool *out, char *err, size_t errlen);
/* A decimal integer within [min, max]. */
bool	 cv_uint(const char *s, unsigned long min, unsigned long max,
	    unsigned long *out, char *err, size_t errlen);
/* A TCP port, 1 to 65535. */
bool	 cv_port(const char *s, uint16_t *out, char *err, size_t errlen);
/* A numeric "IPv4:PORT" or "[IPv6]:PORT"; no name resolution. */
bool	 cv_addr(const char *s, struct conf_addr *out, char *err,
	    size_t errlen);
/* "ADDR/PREFIX" or a single address (a /32 or /128); host bits must be 0. */
bool	 cv_cidr(const char *s, struct cidr *out, char *err, size_t errlen);
/*
 * Whether sa falls in the block; IPv4-mapped IPv6 addresses count as IPv4
 * (for IPv4 blocks, and only for them).
 */
bool	 cidr_match(const struct cidr *c, const struct sockaddr *sa);
/* A calendar date "YYYY-MM-DD"; *out is its first second, 00:00:00 UTC. */
bool	 cv_date(const char *s, time_t *out, char *err, size_t errlen);
/* Split a list on commas and/or white space; empty items are skipped. */
char	**cv_list(const char *s, size_t *count);
/* Free what cv_list returned. */
void	 cv_list_free(char **items, size_t count);
/* Format host and port as "example.com:443", "1.2.3.4:80" or "[::1]:80". */
void	 cv_hostport_text(const char *host, uint16_t port, char *buf,
	    size_t len);
/* Format a socket address as "1.2.3.4:80" or "[::1]:80". */
void	 cv_sockaddr_text(const struct sockaddr *sa, char *buf, size_t len);
/*
 * The same for a peer, in logs: an IPv4 client of a dual-stack listener
 * (an IPv4-mapped address) as its IPv4 address, as SPEC has it.
 */
void	 cv_peer_text(const struct sockaddr *sa, char *buf, size_t len);

#endif

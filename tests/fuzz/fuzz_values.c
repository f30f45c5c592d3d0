/*
 * libFuzzer target for the small parsers of untrusted text: pins, host
 * names and host patterns, addresses, address blocks and the other typed
 * configuration values, and the host:port authority of a CONNECT request.
 * Every parser sees every input; what one accepts must survive a round
 * trip through its canonical form.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_value.h"
#include "hostmatch.h"
#include "hostport.h"
#include "http.h"
#include "pin.h"

/* Room for the reasons the parsers give, and a cramped one. */
#define FUZZ_ERR_LEN		256
#define FUZZ_SMALL_ERR_LEN	7

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A parsed pin formats to text that parses to the same digest. */
static void
fuzz_pin(const char *s, char *small)
{
	struct pin	 p, again;
	char		 err[FUZZ_ERR_LEN], text[PIN_TEXT_MAX];

	(void)pin_parse(s, &p, small, FUZZ_SMALL_ERR_LEN);
	if (!pin_parse(s, &p, err, sizeof(err))) {
		assert(err[0] != '\0');
		return;
	}
	pin_format(&p, text, sizeof(text));
	assert(strlen(text) == PIN_TEXT_MAX - 1);
	assert(pin_parse(text, &again, err, sizeof(err)));
	assert(pin_equal(&p, &again));
}

/*
 * A normalised host is a fixed point of normalisation, matches itself
 * exactly, and fits any buffer that has room for it.
 */
static void
fuzz_host(const char *in, size_t len)
{
	char	 out[HOSTMATCH_NAME_MAX], again[HOSTMATCH_NAME_MAX], *tight;
	size_t	 n;

	if (!hostmatch_normalize(in, len, out, sizeof(out)))
		return;
	n = strlen(out);
	assert(n > 0 && n < sizeof(out));
	assert(hostmatch_normalize(out, n, again, sizeof(again)));
	assert(strcmp(out, again) == 0);
	assert(hostmatch_score(out, out, false) == HOSTMATCH_EXACT);
	/* Exactly the room needed, so an overrun hits the redzone. */
	tight = malloc(n + 1);
	assert(tight != NULL);
	assert(hostmatch_normalize(in, len, tight, n + 1));
	assert(strcmp(tight, out) == 0);
	assert(!hostmatch_normalize(in, len, tight, n));
	free(tight);
}

/*
 * A HOST[:PORT] that parses writes back (brackets around an IPv6 host) to
 * text that parses to the same host and port.
 */
static void
fuzz_hostport(const char *in, size_t len)
{
	char		 host[HOSTMATCH_NAME_MAX], again[HOSTMATCH_NAME_MAX];
	char		 text[HOSTMATCH_NAME_MAX + 8];
	uint16_t	 port, port2;
	int		 flags, n;

	for (flags = 0; flags < 4; flags++) {
		if (hostport_parse(in, len, flags, host, &port) != HOSTPORT_OK)
			continue;
		assert(strlen(host) > 0 && strlen(host) < sizeof(host));
		assert(port != 0 || (flags & HOSTPORT_NEED_PORT) == 0);
		n = snprintf(text, sizeof(text), strchr(host, ':') != NULL ?
		    "[%s]:%u" : "%s:%u", host, port != 0 ? port : 1u);
		assert(n > 0 && (size_t)n < sizeof(text));
		assert(hostport_parse(text, (size_t)n, HOSTPORT_NEED_PORT,
		    again, &port2) == HOSTPORT_OK);
		assert(strcmp(host, again) == 0);
		assert(port2 == (port != 0 ? port : 1));
	}
}

/* Match a pattern against a host, both as the configuration has them. */
static void
fuzz_pattern(const char *pattern, const char *host, char *small)
{
	char	 p[HOSTMATCH_NAME_MAX], h[HOSTMATCH_NAME_MAX];
	char	 err[FUZZ_ERR_LEN];
	int	 score;

	(void)hostmatch_pattern(pattern, p, sizeof(p), small,
	    FUZZ_SMALL_ERR_LEN);
	if (!hostmatch_pattern(pattern, p, sizeof(p), err, sizeof(err))) {
		assert(err[0] != '\0');
		return;
	}
	assert(hostmatch_score(p, p, true) == HOSTMATCH_EXACT);
	if (!hostmatch_normalize(host, strlen(host), h, sizeof(h)))
		return;
	score = hostmatch_score(p, h, false);
	assert(score == -1 || score == HOSTMATCH_EXACT ||
	    score == (int)strlen(p));
	if (score != -1)
		assert(hostmatch_score(p, h, true) == score);
	score = hostmatch_score(p, h, true);
	assert(score == -1 || score == HOSTMATCH_EXACT ||
	    score == (int)strlen(p));
}

/* An address parses again from its own text, and a block holds itself. */
static void
fuzz_addr(const char *s, char *small)
{
	struct conf_addr	 a, again;
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	struct cidr		 c;
	char			 err[FUZZ_ERR_LEN], text[CONF_ADDR_TEXT_MAX];

	(void)cv_addr(s, &a, small, FUZZ_SMALL_ERR_LEN);
	if (cv_addr(s, &a, err, sizeof(err))) {
		assert(cv_addr(a.text, &again, err, sizeof(err)));
		assert(strcmp(a.text, again.text) == 0);
		assert(a.sslen == again.sslen);
		cv_sockaddr_text((struct sockaddr *)&a.ss, text, sizeof(text));
		assert(strcmp(text, a.text) == 0);
	}

	(void)cv_cidr(s, &c, small, FUZZ_SMALL_ERR_LEN);
	if (!cv_cidr(s, &c, err, sizeof(err)))
		return;
	memset(&ss, 0, sizeof(ss));
	if (c.family == AF_INET) {
		assert(c.prefix <= 32);
		sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, c.addr, 4);
	} else {
		assert(c.family == AF_INET6 && c.prefix <= 128);
		sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, c.addr, 16);
	}
	assert(cidr_match(&c, (struct sockaddr *)&ss));
}

/* The other typed values: they must only accept or refuse. */
static void
fuzz_scalars(const char *s, char *small)
{
	char		  err[FUZZ_ERR_LEN];
	char		**items;
	unsigned long	  ul;
	uint64_t	  ms;
	uint16_t	  port;
	time_t		  t;
	size_t		  i, n;
	bool		  b;

	(void)cv_duration(s, &ms, small, FUZZ_SMALL_ERR_LEN);
	(void)cv_duration_us(s, 10000, &ms, small, FUZZ_SMALL_ERR_LEN);
	(void)cv_bool(s, &b, small, FUZZ_SMALL_ERR_LEN);
	(void)cv_uint(s, 1, 100000, &ul, err, sizeof(err));
	if (cv_port(s, &port, err, sizeof(err)))
		assert(port != 0);
	if (cv_date(s, &t, err, sizeof(err)))
		assert(t >= 0 && t % 86400 == 0);
	items = cv_list(s, &n);
	for (i = 0; i < n; i++)
		assert(items[i][0] != '\0' &&
		    strpbrk(items[i], ", \t") == NULL);
	cv_list_free(items, n);
}

/* The authority of a CONNECT request, through the request parser. */
static void
fuzz_authority(const uint8_t *data, size_t size)
{
	static const char	 pre[] = "CONNECT ";
	static const char	 post[] = " HTTP/1.1\r\nHost: x\r\n\r\n";
	const struct http_head	*h;
	struct http_msg		*m;
	char			*req;
	size_t			 len, used, i;

	len = sizeof(pre) - 1 + size + sizeof(post) - 1;
	req = malloc(len);
	assert(req != NULL);
	memcpy(req, pre, sizeof(pre) - 1);
	memcpy(req + sizeof(pre) - 1, data, size);
	memcpy(req + sizeof(pre) - 1 + size, post, sizeof(post) - 1);

	m = http_msg_new(HTTP_DIR_REQUEST);
	if (http_msg_feed_head(m, req, len, &used) == HTTP_HEAD_COMPLETE &&
	    (h = http_msg_head(m))->is_connect) {
		assert(used == len);
		assert(h->port != 0 && h->host[0] != '\0');
		assert(strlen(h->host) < HOSTMATCH_NAME_MAX);
		for (i = 0; h->host[i] != '\0'; i++)
			assert(h->host[i] > 0x20 && h->host[i] < 0x7f &&
			    !(h->host[i] >= 'A' && h->host[i] <= 'Z'));
	}
	http_msg_free(m);
	free(req);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*s, *small, *nl;

	/* Values are C strings: everything after a NUL goes unseen. */
	s = malloc(size + 1);
	small = malloc(FUZZ_SMALL_ERR_LEN);
	assert(s != NULL && small != NULL);
	memcpy(s, data, size);
	s[size] = '\0';

	fuzz_pin(s, small);
	fuzz_host((const char *)data, size);
	fuzz_hostport((const char *)data, size);
	fuzz_addr(s, small);
	fuzz_scalars(s, small);
	fuzz_authority(data, size);
	if ((nl = strchr(s, '\n')) != NULL) {
		*nl = '\0';
		fuzz_pattern(s, nl + 1, small);
	} else
		fuzz_pattern(s, s, small);

	free(small);
	free(s);
	return 0;
}

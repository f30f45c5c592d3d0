/*
 * Tests of the HTTP framing module: request and response heads, the head
 * limits, the request-smuggling rules, body framing and the heads written
 * for the next hop.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "http.h"

/* A request head parsed in one call, which must take all of it. */
static struct http_msg *
request(const char *s)
{
	struct http_msg	*m = http_msg_new(HTTP_DIR_REQUEST);
	size_t		 used;

	assert_int_equal(http_msg_feed_head(m, s, strlen(s), &used),
	    HTTP_HEAD_COMPLETE);
	assert_int_equal(used, strlen(s));
	assert_non_null(http_msg_head(m));
	return m;
}

/* A response head parsed in one call, which must take all of it. */
static struct http_msg *
response(const char *s)
{
	struct http_msg	*m = http_msg_new(HTTP_DIR_RESPONSE);
	size_t		 used;

	assert_int_equal(http_msg_feed_head(m, s, strlen(s), &used),
	    HTTP_HEAD_COMPLETE);
	assert_int_equal(used, strlen(s));
	return m;
}

/* Feed a head in pieces of step bytes; returns the first final result. */
static enum http_result
feed_in_steps(struct http_msg *m, const char *s, size_t len, size_t step,
    size_t *total)
{
	enum http_result	 r = HTTP_NEED_MORE;
	size_t			 off = 0, n, used;

	*total = 0;
	while (off < len) {
		n = len - off < step ? len - off : step;
		r = http_msg_feed_head(m, s + off, n, &used);
		*total += used;
		if (r != HTTP_NEED_MORE)
			return r;
		assert_int_equal(used, n);
		off += n;
	}
	return r;
}

/* The result of a fresh parser fed a head whole, and byte by byte. */
static enum http_result
head_result(enum http_dir dir, const char *s, size_t len)
{
	struct http_msg		*m;
	enum http_result	 whole, bytewise;
	size_t			 used;

	m = http_msg_new(dir);
	whole = http_msg_feed_head(m, s, len, &used);
	http_msg_free(m);
	m = http_msg_new(dir);
	bytewise = feed_in_steps(m, s, len, 1, &used);
	http_msg_free(m);
	assert_int_equal(whole, bytewise);
	return whole;
}

#define REQUEST_RESULT(lit) \
	head_result(HTTP_DIR_REQUEST, (lit), sizeof(lit) - 1)
#define RESPONSE_RESULT(lit) \
	head_result(HTTP_DIR_RESPONSE, (lit), sizeof(lit) - 1)

/* The contents of an evbuffer as a string; the caller frees it. */
static char *
buffer_string(struct evbuffer *b)
{
	size_t	 len = evbuffer_get_length(b);
	char	*s = malloc(len + 1);

	assert_non_null(s);
	evbuffer_copyout(b, s, len);
	s[len] = '\0';
	return s;
}

/* A request head of exactly size bytes, padded with one header. */
static char *
head_of_size(size_t size)
{
	static const char	 prefix[] =
	    "GET / HTTP/1.1\r\nHost: a.example\r\nX-Pad: ";
	static const char	 suffix[] = "\r\n\r\n";
	size_t			 pad;
	char			*s;

	pad = size - (sizeof(prefix) - 1) - (sizeof(suffix) - 1);
	s = malloc(size + 1);
	assert_non_null(s);
	memcpy(s, prefix, sizeof(prefix) - 1);
	memset(s + sizeof(prefix) - 1, 'p', pad);
	memcpy(s + sizeof(prefix) - 1 + pad, suffix, sizeof(suffix));
	assert_int_equal(strlen(s), size);
	return s;
}

/* A request head with nfields header fields, Host among them. */
static char *
head_with_fields(size_t nfields)
{
	size_t	 i, len = 0, size = 64 + nfields * 32;
	char	*s = malloc(size);

	assert_non_null(s);
	len += (size_t)snprintf(s + len, size - len,
	    "GET / HTTP/1.1\r\nHost: a.example\r\n");
	for (i = 1; i < nfields; i++)
		len += (size_t)snprintf(s + len, size - len,
		    "X-Field-%zu: v\r\n", i);
	snprintf(s + len, size - len, "\r\n");
	return s;
}

static void
test_http_parses_an_origin_form_request(void **state)
{
	struct http_msg		*m;
	const struct http_head	*h;

	(void)state;
	m = request("GET /a/b?q=1 HTTP/1.1\r\nHost: Example.COM:8080\r\n"
	    "User-Agent: test\r\n\r\n");
	h = http_msg_head(m);
	assert_string_equal(h->method, "GET");
	assert_string_equal(h->target, "/a/b?q=1");
	assert_false(h->absolute_form);
	assert_false(h->is_connect);
	assert_string_equal(h->host, "example.com");
	assert_int_equal(h->port, 8080);
	assert_string_equal(h->path, "/a/b?q=1");
	assert_string_equal(h->scheme, "");
	assert_int_equal(h->http_major, 1);
	assert_int_equal(h->http_minor, 1);
	assert_int_equal(h->nheaders, 2);
	assert_string_equal(h->headers[0].name, "Host");
	assert_string_equal(h->headers[0].value, "Example.COM:8080");
	assert_string_equal(h->headers[1].name, "User-Agent");
	assert_string_equal(h->headers[1].value, "test");
	assert_true(h->keep_alive);
	assert_false(h->upgrade);
	assert_int_equal(h->framing, HTTP_FRAMING_NONE);
	assert_int_equal(http_msg_state(m), HTTP_MSG_DONE);
	http_msg_free(m);
}

static void
test_http_absolute_form_url_host_beats_host_header(void **state)
{
	struct http_msg		*m;
	const struct http_head	*h;

	(void)state;
	m = request("GET http://API.Example.com/path?x=1 HTTP/1.1\r\n"
	    "Host: other.example\r\n\r\n");
	h = http_msg_head(m);
	assert_true(h->absolute_form);
	assert_string_equal(h->scheme, "http");
	assert_string_equal(h->host, "api.example.com");
	assert_int_equal(h->port, 0);
	assert_string_equal(h->path, "/path?x=1");
	assert_string_equal(h->target, "http://API.Example.com/path?x=1");
	http_msg_free(m);
}

static void
test_http_absolute_form_without_path_gets_slash(void **state)
{
	struct http_msg		*m;
	const struct http_head	*h;

	(void)state;
	m = request("GET http://example.com:8080 HTTP/1.1\r\n\r\n");
	h = http_msg_head(m);
	assert_string_equal(h->path, "/");
	assert_int_equal(h->port, 8080);
	assert_string_equal(h->host, "example.com");
	http_msg_free(m);
}

static void
test_http_absolute_form_reports_other_schemes(void **state)
{
	struct http_msg		*m;

	(void)state;
	m = request("GET HTTPS://example.com/ HTTP/1.1\r\n"
	    "Host: example.com\r\n\r\n");
	assert_string_equal(http_msg_head(m)->scheme, "https");
	http_msg_free(m);
}

static void
test_http_parses_ipv6_hosts(void **state)
{
	struct http_msg		*m;
	const struct http_head	*h;

	(void)state;
	m = request("GET http://[::1]:8080/x HTTP/1.1\r\nHost: [::1]:8080\r\n"
	    "\r\n");
	h = http_msg_head(m);
	assert_string_equal(h->host, "::1");
	assert_int_equal(h->port, 8080);
	assert_string_equal(h->path, "/x");
	http_msg_free(m);

	m = request("GET / HTTP/1.1\r\nHost: [2001:DB8::1]:80\r\n\r\n");
	h = http_msg_head(m);
	assert_string_equal(h->host, "2001:db8::1");
	assert_int_equal(h->port, 80);
	http_msg_free(m);

	m = request("GET / HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n");
	assert_string_equal(http_msg_head(m)->host, "2001:db8::1");
	assert_int_equal(http_msg_head(m)->port, 0);
	http_msg_free(m);
}

/* The result of a request head made of before, host and after. */
static enum http_result
request_with_host(const char *before, const char *host, const char *after)
{
	char	 buf[512];
	int	 n;

	n = snprintf(buf, sizeof(buf), "%s%s%s", before, host, after);
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	return head_result(HTTP_DIR_REQUEST, buf, (size_t)n);
}

static void
test_http_gives_every_spelling_of_an_ipv4_address_one_host(void **state)
{
	const char	*mapped[] = {
		"[::ffff:127.0.0.1]", "[::FFFF:7F00:1]",
		"[0:0:0:0:0:ffff:127.0.0.1]", "127.0.0.1.",
	};
	struct http_msg	*m;
	char		 buf[256];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(mapped) / sizeof(mapped[0]); i++) {
		snprintf(buf, sizeof(buf), "GET http://%s:8080/ HTTP/1.1\r\n"
		    "\r\n", mapped[i]);
		m = request(buf);
		assert_string_equal(http_msg_head(m)->host, "127.0.0.1");
		http_msg_free(m);
		snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n"
		    "\r\n", mapped[i]);
		m = request(buf);
		assert_string_equal(http_msg_head(m)->host, "127.0.0.1");
		http_msg_free(m);
		snprintf(buf, sizeof(buf), "CONNECT %s:443 HTTP/1.1\r\n\r\n",
		    mapped[i]);
		m = request(buf);
		assert_string_equal(http_msg_head(m)->host, "127.0.0.1");
		http_msg_free(m);
	}
}

static void
test_http_refuses_non_canonical_numeric_hosts(void **state)
{
	const char	*hosts[] = {
		"127.000.000.001", "127.0.0.01", "0177.0.0.1", "0x7f.0.0.1",
		"0x7f000001", "2130706433", "127.1", "127.0.1", "foo.123",
		"[::127.0.0.1]", "[fe80::1%25eth0]",
	};
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		assert_int_equal(request_with_host("GET http://", hosts[i],
		    "/ HTTP/1.1\r\n\r\n"), HTTP_ERR_BAD_REQUEST);
		assert_int_equal(request_with_host("GET / HTTP/1.1\r\nHost: ",
		    hosts[i], "\r\n\r\n"), HTTP_ERR_BAD_REQUEST);
		assert_int_equal(request_with_host("CONNECT ", hosts[i],
		    ":443 HTTP/1.1\r\n\r\n"), HTTP_ERR_BAD_REQUEST);
	}
}

static void
test_http_rejects_malformed_targets_and_hosts(void **state)
{
	(void)state;
	assert_int_equal(REQUEST_RESULT(
	    "GET http://user:pw@example.com/ HTTP/1.1\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET http://example.com/#frag HTTP/1.1\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET http://example.com:0/ HTTP/1.1\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	/* Ports as Host and CONNECT read them: 1-5 digits. */
	assert_int_equal(REQUEST_RESULT(
	    "GET http://example.com:018080/ HTTP/1.1\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET http://example.com:/ HTTP/1.1\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	/* The URL wins over Host, but an invalid Host is still refused. */
	assert_int_equal(REQUEST_RESULT(
	    "GET http://example.com/ HTTP/1.1\r\nHost: example.com:\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET http://example.com/ HTTP/1.1\r\nHost: a.test:+80\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET http://example.com/ HTTP/1.1\r\nHost: a b\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET http://example.com/ HTTP/1.1\r\nHost:\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET http://example.com/ HTTP/1.1\r\nHost: h:018080\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET http://[abc]/ HTTP/1.1\r\n\r\n"), HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET * HTTP/1.1\r\nHost: example.com\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET / HTTP/1.1\r\nHost: exa$mple.com\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET / HTTP/1.1\r\nHost: a:b:c\r\n\r\n"), HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET / HTTP/1.1\r\nHost: example.com:99999\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET / HTTP/2.0\r\nHost: example.com\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "BREW / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
}

static void
test_http_accepts_options_asterisk(void **state)
{
	struct http_msg	*m;

	(void)state;
	m = request("OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n");
	assert_string_equal(http_msg_head(m)->path, "*");
	assert_string_equal(http_msg_head(m)->host, "example.com");
	http_msg_free(m);
	/*
	 * An absolute-form OPTIONS without a path asks about the server:
	 * "*" upstream, not "/" (RFC 9112, 3.2.4); any other method's is "/".
	 */
	m = request("OPTIONS http://example.com HTTP/1.1\r\n"
	    "Host: example.com\r\n\r\n");
	assert_string_equal(http_msg_head(m)->path, "*");
	http_msg_free(m);
	m = request("GET http://example.com HTTP/1.1\r\n"
	    "Host: example.com\r\n\r\n");
	assert_string_equal(http_msg_head(m)->path, "/");
	http_msg_free(m);
}

/*
 * HTTP/1.0 may leave Host out: the head parses with no host, which the
 * connection supplies (a tunnel's) or refuses.
 */
static void
test_http_origin_form_http10_without_host(void **state)
{
	struct http_msg	*m;

	(void)state;
	m = request("GET /x HTTP/1.0\r\n\r\n");
	assert_string_equal(http_msg_head(m)->host, "");
	assert_string_equal(http_msg_head(m)->path, "/x");
	assert_int_equal(http_msg_head(m)->port, 0);
	http_msg_free(m);
}

static void
test_http_origin_form_needs_exactly_one_host(void **state)
{
	(void)state;
	assert_int_equal(REQUEST_RESULT("GET / HTTP/1.1\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT("GET / HTTP/1.1\r\nHost:\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n"
	    "Host: b.example\r\n\r\n"), HTTP_ERR_BAD_REQUEST);
}

static void
test_http_parses_connect_authorities(void **state)
{
	struct http_msg		*m;
	const struct http_head	*h;

	(void)state;
	m = request("CONNECT API.example.com:443 HTTP/1.1\r\n"
	    "Host: api.example.com:443\r\n\r\n");
	h = http_msg_head(m);
	assert_true(h->is_connect);
	assert_false(h->upgrade);
	assert_string_equal(h->method, "CONNECT");
	assert_string_equal(h->host, "api.example.com");
	assert_int_equal(h->port, 443);
	assert_int_equal(h->framing, HTTP_FRAMING_NONE);
	assert_int_equal(http_msg_state(m), HTTP_MSG_DONE);
	http_msg_free(m);

	m = request("CONNECT [::1]:8443 HTTP/1.1\r\n\r\n");
	h = http_msg_head(m);
	assert_string_equal(h->host, "::1");
	assert_int_equal(h->port, 8443);
	http_msg_free(m);

	m = request("CONNECT 93.184.216.34:443 HTTP/1.1\r\n\r\n");
	h = http_msg_head(m);
	assert_string_equal(h->host, "93.184.216.34");
	assert_int_equal(h->port, 443);
	http_msg_free(m);
}

static void
test_http_rejects_connect_without_port_or_with_junk(void **state)
{
	(void)state;
	assert_int_equal(REQUEST_RESULT(
	    "CONNECT example.com HTTP/1.1\r\n\r\n"), HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "CONNECT [::1] HTTP/1.1\r\n\r\n"), HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "CONNECT example.com:0 HTTP/1.1\r\n\r\n"), HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "CONNECT example.com:https HTTP/1.1\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "CONNECT example.com:65536 HTTP/1.1\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "CONNECT exa$mple.com:443 HTTP/1.1\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "CONNECT /path HTTP/1.1\r\n\r\n"), HTTP_ERR_BAD_REQUEST);
	assert_int_equal(REQUEST_RESULT(
	    "CONNECT :443 HTTP/1.1\r\n\r\n"), HTTP_ERR_BAD_REQUEST);
}

static void
test_http_keep_alive_follows_version_and_connection(void **state)
{
	struct http_msg	*m;

	(void)state;
	m = request("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_true(http_msg_head(m)->keep_alive);
	http_msg_free(m);
	m = request("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
	assert_false(http_msg_head(m)->keep_alive);
	http_msg_free(m);
	m = request("GET / HTTP/1.0\r\nHost: a\r\n\r\n");
	assert_false(http_msg_head(m)->keep_alive);
	http_msg_free(m);
	m = request("GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n"
	    "\r\n");
	assert_true(http_msg_head(m)->keep_alive);
	http_msg_free(m);
	m = request("GET http://a/ HTTP/1.0\r\n"
	    "Proxy-Connection: keep-alive\r\n\r\n");
	assert_true(http_msg_head(m)->keep_alive);
	http_msg_free(m);

	m = response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	assert_true(http_msg_head(m)->keep_alive);
	http_msg_free(m);
	m = response("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
	assert_false(http_msg_head(m)->keep_alive);
	http_msg_free(m);
	m = response("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
	    "Content-Length: 0\r\n\r\n");
	assert_true(http_msg_head(m)->keep_alive);
	http_msg_free(m);
	/* Chunks in HTTP/1.0 are faulty framing: the connection ends. */
	m = response("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n");
	assert_true(http_msg_head(m)->chunked);
	assert_false(http_msg_head(m)->keep_alive);
	http_msg_free(m);
}

static void
test_http_head_fed_one_byte_at_a_time_matches_whole(void **state)
{
	static const char	 s[] =
	    "POST http://example.com:81/up HTTP/1.1\r\nHost: example.com:81\r\n"
	    "Content-Length: 3\r\nX-A: b c\r\n\r\nxyz";
	static const char	 reply[] = "HTTP/1.1 404 Not Found\r\n"
	    "Content-Length: 0\r\n\r\n";
	struct http_msg		*m;
	const struct http_head	*h;
	size_t			 total, used;

	(void)state;
	m = http_msg_new(HTTP_DIR_REQUEST);
	assert_int_equal(feed_in_steps(m, s, sizeof(s) - 1, 1, &total),
	    HTTP_HEAD_COMPLETE);
	assert_int_equal(total, sizeof(s) - 1 - 3);
	h = http_msg_head(m);
	assert_non_null(h);
	assert_string_equal(h->method, "POST");
	assert_string_equal(h->host, "example.com");
	assert_int_equal(h->port, 81);
	assert_string_equal(h->path, "/up");
	assert_int_equal(h->nheaders, 3);
	assert_string_equal(h->headers[2].name, "X-A");
	assert_string_equal(h->headers[2].value, "b c");
	assert_true(h->has_content_length);
	assert_int_equal(h->content_length, 3);
	assert_int_equal(h->framing, HTTP_FRAMING_LENGTH);
	assert_int_equal(http_msg_state(m), HTTP_MSG_BODY);
	assert_int_equal(http_msg_feed_body(m, "x", 1, &used), HTTP_NEED_MORE);
	assert_int_equal(http_msg_feed_body(m, "y", 1, &used), HTTP_NEED_MORE);
	assert_int_equal(http_msg_feed_body(m, "z", 1, &used),
	    HTTP_BODY_COMPLETE);
	assert_int_equal(used, 1);
	http_msg_free(m);

	m = http_msg_new(HTTP_DIR_RESPONSE);
	assert_int_equal(feed_in_steps(m, reply, sizeof(reply) - 1, 1, &total),
	    HTTP_HEAD_COMPLETE);
	assert_int_equal(total, sizeof(reply) - 1);
	assert_int_equal(http_msg_head(m)->status, 404);
	assert_string_equal(http_msg_head(m)->reason, "Not Found");
	http_msg_free(m);
}

static void
test_http_consumed_stops_at_the_end_of_the_head(void **state)
{
	static const char	 head[] = "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 5\r\n\r\n";
	char			 s[128];
	struct http_msg		*m;
	size_t			 used;

	(void)state;
	snprintf(s, sizeof(s), "%shelloGET", head);
	m = http_msg_new(HTTP_DIR_REQUEST);
	assert_int_equal(http_msg_feed_head(m, s, strlen(s), &used),
	    HTTP_HEAD_COMPLETE);
	assert_int_equal(used, sizeof(head) - 1);
	assert_int_equal(http_msg_feed_body(m, s + used, strlen(s) - used,
	    &used), HTTP_BODY_COMPLETE);
	assert_int_equal(used, 5);
	http_msg_free(m);
}

static void
test_http_head_of_exactly_16_kib_passes(void **state)
{
	struct http_msg	*m;
	char		*s = head_of_size(HTTP_HEAD_MAX);
	size_t		 total;

	(void)state;
	m = request(s);
	http_msg_free(m);
	m = http_msg_new(HTTP_DIR_REQUEST);
	assert_int_equal(feed_in_steps(m, s, HTTP_HEAD_MAX, 1000, &total),
	    HTTP_HEAD_COMPLETE);
	assert_int_equal(total, HTTP_HEAD_MAX);
	http_msg_free(m);
	free(s);
}

static void
test_http_head_one_byte_over_16_kib_is_too_large(void **state)
{
	struct http_msg	*m;
	char		*s = head_of_size(HTTP_HEAD_MAX + 1);
	size_t		 total;

	(void)state;
	m = http_msg_new(HTTP_DIR_REQUEST);
	assert_int_equal(http_msg_feed_head(m, s, HTTP_HEAD_MAX + 1, &total),
	    HTTP_ERR_HEAD_TOO_LARGE);
	assert_int_equal(http_msg_state(m), HTTP_MSG_FAILED);
	http_msg_free(m);
	m = http_msg_new(HTTP_DIR_REQUEST);
	assert_int_equal(feed_in_steps(m, s, HTTP_HEAD_MAX + 1, 1000, &total),
	    HTTP_ERR_HEAD_TOO_LARGE);
	http_msg_free(m);
	free(s);
}

static void
test_http_head_of_20_kib_in_small_pieces_is_too_large(void **state)
{
	struct http_msg	*m;
	char		*s = head_of_size(20 * 1024);
	size_t		 total;

	(void)state;
	m = http_msg_new(HTTP_DIR_REQUEST);
	assert_int_equal(feed_in_steps(m, s, 20 * 1024, 7, &total),
	    HTTP_ERR_HEAD_TOO_LARGE);
	assert_true(total <= HTTP_HEAD_MAX);
	http_msg_free(m);
	free(s);
}

/* A HEAD is known from its start line on, whether its head passes or not. */
static void
test_http_knows_a_head_request_from_its_start_line(void **state)
{
	static const char	 ok[] = "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char	 bad[] = "HEAD / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
	struct http_msg		*m;
	size_t			 used;

	(void)state;
	m = http_msg_new(HTTP_DIR_REQUEST);
	assert_false(http_msg_is_head_request(m));
	assert_int_equal(http_msg_feed_head(m, "HEA", 3, &used),
	    HTTP_NEED_MORE);
	assert_false(http_msg_is_head_request(m));
	assert_int_equal(http_msg_feed_head(m, "D /", 3, &used),
	    HTTP_NEED_MORE);
	assert_true(http_msg_is_head_request(m));
	http_msg_free(m);

	m = http_msg_new(HTTP_DIR_REQUEST);
	assert_int_equal(http_msg_feed_head(m, ok, strlen(ok), &used),
	    HTTP_HEAD_COMPLETE);
	assert_true(http_msg_is_head_request(m));
	http_msg_trim(m);
	assert_false(http_msg_is_head_request(m));
	http_msg_free(m);

	m = http_msg_new(HTTP_DIR_REQUEST);
	assert_int_equal(http_msg_feed_head(m, bad, strlen(bad), &used),
	    HTTP_ERR_BAD_REQUEST);
	assert_true(http_msg_is_head_request(m));
	http_msg_free(m);

	m = http_msg_new(HTTP_DIR_REQUEST);
	assert_int_equal(http_msg_feed_head(m, "HEAX / HTTP/1.1\r\n", 17,
	    &used), HTTP_ERR_BAD_REQUEST);
	assert_false(http_msg_is_head_request(m));
	http_msg_free(m);

	m = http_msg_new(HTTP_DIR_REQUEST);
	assert_int_equal(http_msg_feed_head(m, "GET / ", 6, &used),
	    HTTP_NEED_MORE);
	assert_false(http_msg_is_head_request(m));
	http_msg_free(m);
}

static void
test_http_allows_100_header_fields_but_not_101(void **state)
{
	struct http_msg	*m;
	char		*s;

	(void)state;
	s = head_with_fields(HTTP_HEADERS_MAX);
	m = request(s);
	assert_int_equal(http_msg_head(m)->nheaders, HTTP_HEADERS_MAX);
	http_msg_free(m);
	free(s);

	s = head_with_fields(HTTP_HEADERS_MAX + 1);
	assert_int_equal(head_result(HTTP_DIR_REQUEST, s, strlen(s)),
	    HTTP_ERR_HEAD_TOO_LARGE);
	free(s);
}

static void
test_http_rejects_each_smuggling_shape(void **state)
{
	static const struct {
		const char	*head;
		size_t		 len;
	} bad[] = {
#define SHAPE(lit)	{ (lit), sizeof(lit) - 1 }
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\n"
		    "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
		    "Content-Length: 6\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
		    "Content-Length: 5\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n"
		    "\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\n"
		    "Transfer-Encoding: gzip\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\n"
		    "Transfer-Encoding: gzip, chunked\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\n"
		    "Transfer-Encoding: chunked, chunked\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\n"
		    "Transfer-Encoding: chunked\r\n"
		    "Transfer-Encoding: identity\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\n"
		    "Transfer-Encoding: xchunked\r\n\r\n"),
		SHAPE("GET / HTTP/1.1\r\nHost: a\r\n"
		    "Transfer-Encodingx: o\r\n\r\n"),
		SHAPE("GET / HTTP/1.0\r\nHost: a\r\nUpgrade: e\r\n"
		    "Transfer-Encodingt: o\r\nConnection: Upgrade\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\n"
		    "Transfer-Encoding:\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n"
		    "Transfer-Encoding: chunked\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\n"
		    "Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n"),
		SHAPE("POST / HTTP/1.0\r\nHost: a\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\n"
		    "Transfer-Encoding : chunked\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\n"
		    "Transfer-Encoding: \x0b" "chunked\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n"
		    "\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n"
		    "\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n"
		    "\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n"
		    "\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\n"
		    "Content-Length: 99999999999999999999999\r\n\r\n"),
		SHAPE("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n"),
		SHAPE("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n"),
		SHAPE("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\r\n\r\n"),
		SHAPE("GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n"),
		SHAPE("GET / HTTP/1.1\nHost: a\n\n"),
		SHAPE("GET / HTTP/1.1\r\nHost: a\r\n\n"),
		SHAPE("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01" "c\r\n\r\n"),
		SHAPE("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f" "c\r\n\r\n"),
		SHAPE("GET / HTTP/1.1\r\nHost: a\r\nX-\0A: b\r\n\r\n"),
		SHAPE("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"),
		SHAPE("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n"),
		SHAPE("GET / HTTP/1.1\r\n Host: a\r\n\r\n"),
		SHAPE("GET / HTTP/1.1\r\nHost: a\r\nX A: b\r\n\r\n"),
		SHAPE("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
		SHAPE("GET / HTTP/1.1\r\nHost: a\r\nX-A\x80: b\r\n\r\n"),
		SHAPE("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n"),
		SHAPE("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"),
		SHAPE("GET http://a.example/\x7f HTTP/1.1\r\n\r\n"),
		/* Read as framing where '_' stands for '-' (CGI, WSGI). */
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
		    "Transfer_Encoding: chunked\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\n"
		    "Transfer-Encoding: chunked\r\nContent_Length: 5\r\n\r\n"),
		SHAPE("POST / HTTP/1.1\r\nHost: a\r\nCONTENT_LENGTH: 5\r\n"
		    "\r\n"),
#undef SHAPE
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (head_result(HTTP_DIR_REQUEST, bad[i].head, bad[i].len) !=
		    HTTP_ERR_BAD_REQUEST)
			fail_msg("smuggling shape %zu was accepted", i);
	}
	/* A response's framing is as ambiguous with such a name. */
	assert_int_equal(head_result(HTTP_DIR_RESPONSE,
	    "HTTP/1.1 200 OK\r\nTransfer-Encodingx: o\r\n\r\n", 42),
	    HTTP_ERR_BAD_REQUEST);
	/* And with a line that names no coding beside a chunked one. */
	assert_int_equal(head_result(HTTP_DIR_RESPONSE,
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", 68),
	    HTTP_ERR_BAD_REQUEST);
}

static void
test_http_accepts_lone_chunked_in_any_case(void **state)
{
	struct http_msg	*m;

	(void)state;
	m = request("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: Chunked \r\n\r\n");
	assert_true(http_msg_head(m)->chunked);
	assert_false(http_msg_head(m)->has_content_length);
	assert_int_equal(http_msg_head(m)->framing, HTTP_FRAMING_CHUNKED);
	http_msg_free(m);
}

static void
test_http_keeps_empty_values_and_trims_whitespace(void **state)
{
	static const char	 s[] =
	    "GET / HTTP/1.1\r\nX-Empty:\r\nHost: a\r\n"
	    "X-Spaced:   v  w \t\r\nX-Empty-Too:   \r\n\r\n";
	struct http_msg		*m;
	const struct http_head	*h;
	size_t			 used;

	(void)state;
	m = request(s);
	h = http_msg_head(m);
	assert_int_equal(h->nheaders, 4);
	assert_string_equal(h->headers[0].name, "X-Empty");
	assert_string_equal(h->headers[0].value, "");
	assert_string_equal(h->headers[1].name, "Host");
	assert_string_equal(h->headers[2].value, "v  w");
	assert_string_equal(h->headers[3].name, "X-Empty-Too");
	assert_string_equal(h->headers[3].value, "");
	assert_string_equal(http_head_get(h, "x-spaced"), "v  w");
	assert_null(http_head_get(h, "X-Missing"));
	http_msg_free(m);

	m = http_msg_new(HTTP_DIR_REQUEST);
	assert_int_equal(feed_in_steps(m, s, sizeof(s) - 1, 1, &used),
	    HTTP_HEAD_COMPLETE);
	h = http_msg_head(m);
	assert_int_equal(h->nheaders, 4);
	assert_string_equal(h->headers[0].value, "");
	assert_string_equal(h->headers[1].value, "a");
	assert_string_equal(h->headers[2].value, "v  w");
	assert_string_equal(h->headers[3].value, "");
	http_msg_free(m);
}

static void
test_http_chunked_body_with_extensions_and_trailers(void **state)
{
	static const char	 body[] = "5;ext=1;name=\"v\"\r\nhello\r\n"
	    "6 ; x\r\n world\r\n0\r\nTrailer-X: y\r\nTrailer-Z: w\r\n\r\n";
	static const char	 next[] =
	    "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
	char			 s[256];
	struct http_msg		*m;
	size_t			 used, len;

	(void)state;
	m = request("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n");
	assert_int_equal(http_msg_state(m), HTTP_MSG_BODY);
	len = (size_t)snprintf(s, sizeof(s), "%s%s", body, next);
	assert_int_equal(http_msg_feed_body(m, s, len, &used),
	    HTTP_BODY_COMPLETE);
	assert_int_equal(used, sizeof(body) - 1);
	assert_int_equal(http_msg_state(m), HTTP_MSG_DONE);
	assert_int_equal(http_msg_feed_head(m, s + used, len - used, &used),
	    HTTP_HEAD_COMPLETE);
	assert_int_equal(used, sizeof(next) - 1);
	assert_string_equal(http_msg_head(m)->path, "/next");
	assert_int_equal(http_msg_head(m)->nheaders, 1);
	http_msg_free(m);
}

static void
test_http_chunked_body_fed_one_byte_at_a_time(void **state)
{
	static const char	 body[] = "5\r\nhello\r\n1a\r\n"
	    "abcdefghijklmnopqrstuvwxyz\r\n0\r\nT: x\r\n\r\n";
	struct http_msg		*m;
	enum http_result	 r = HTTP_NEED_MORE;
	size_t			 i, used;

	(void)state;
	m = request("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n");
	for (i = 0; i < sizeof(body) - 1; i++) {
		r = http_msg_feed_body(m, body + i, 1, &used);
		assert_int_equal(used, 1);
		if (i + 1 < sizeof(body) - 1)
			assert_int_equal(r, HTTP_NEED_MORE);
	}
	assert_int_equal(r, HTTP_BODY_COMPLETE);
	http_msg_free(m);
}

/* Feed a chunked request body whole and byte by byte; return the result. */
static enum http_result
chunked_body_result(const char *body, size_t len)
{
	static const char	 head[] = "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n";
	struct http_msg		*m;
	enum http_result	 whole, bytewise = HTTP_NEED_MORE;
	size_t			 i, used;

	m = request(head);
	whole = http_msg_feed_body(m, body, len, &used);
	http_msg_free(m);
	m = request(head);
	for (i = 0; i < len && bytewise == HTTP_NEED_MORE; i++)
		bytewise = http_msg_feed_body(m, body + i, 1, &used);
	http_msg_free(m);
	assert_int_equal(whole, bytewise);
	return whole;
}

#define CHUNKED_RESULT(lit)	chunked_body_result((lit), sizeof(lit) - 1)

/* Chunk-size lines and trailers are bounded: extensions are not content. */
static void
test_http_bounds_chunk_lines_and_trailers(void **state)
{
	char	*body;
	size_t	 len;

	(void)state;
	body = malloc(3 * HTTP_HEAD_MAX);
	assert_non_null(body);
	/* An extension that makes the line just the most, then one more. */
	len = (size_t)snprintf(body, 16, "5;");
	memset(body + len, 'e', HTTP_CHUNK_LINE_MAX - len);
	len = HTTP_CHUNK_LINE_MAX;
	len += (size_t)sprintf(body + len, "\r\nhello\r\n0\r\n\r\n");
	assert_int_equal(chunked_body_result(body, len), HTTP_BODY_COMPLETE);
	len = (size_t)snprintf(body, 16, "5;");
	memset(body + len, 'e', HTTP_CHUNK_LINE_MAX + 1 - len);
	len = HTTP_CHUNK_LINE_MAX + 1;
	len += (size_t)sprintf(body + len, "\r\nhello\r\n0\r\n\r\n");
	assert_int_equal(chunked_body_result(body, len),
	    HTTP_ERR_BAD_REQUEST);
	/* Every chunk's line counts alone. */
	len = 0;
	for (int i = 0; i < 8; i++) {
		len += (size_t)sprintf(body + len, "1;");
		memset(body + len, 'e', 3000);
		len += 3000;
		len += (size_t)sprintf(body + len, "\r\nx\r\n");
	}
	len += (size_t)sprintf(body + len, "0\r\n\r\n");
	assert_int_equal(chunked_body_result(body, len), HTTP_BODY_COMPLETE);
	/* Trailers longer than a head. */
	len = (size_t)sprintf(body, "0\r\n");
	for (int i = 0; i < 5; i++) {
		len += (size_t)sprintf(body + len, "X-T%d: ", i);
		memset(body + len, 'v', 4000);
		len += 4000;
		len += (size_t)sprintf(body + len, "\r\n");
	}
	len += (size_t)sprintf(body + len, "\r\n");
	assert_int_equal(chunked_body_result(body, len),
	    HTTP_ERR_BAD_REQUEST);
	free(body);
}

static void
test_http_rejects_bad_chunk_sizes(void **state)
{
	(void)state;
	assert_int_equal(CHUNKED_RESULT("zz\r\n"), HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("\r\n"), HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("-5\r\nhello\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("0x5\r\nhello\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("5\nhello\r\n0\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("5\r\nhelloXY0\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("5\r\nhello\n0\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("5;a\x01" "b\r\nhello\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("0\r\nT: x\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("0\r\n\n"), HTTP_ERR_BAD_REQUEST);
}

/*
 * A trailer line is a field line: a token and ':'. libhttp-parser lets a
 * space into a name, so a request line in the trailers would pass for a
 * field "GET http" where a server that reads no trailers takes it for a
 * second request: refused, as in a head.
 */
static void
test_http_rejects_trailer_lines_that_are_not_fields(void **state)
{
	(void)state;
	assert_int_equal(CHUNKED_RESULT("0\r\nGET http://b.example/x "
	    "HTTP/1.1\r\nHost: b.example\r\n\r\n"), HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("0\r\nX A: b\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("0\r\nX-A : b\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("0\r\n: b\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("0\r\nX-\x80: b\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	/* Field lines, empty values and no trailers at all still pass. */
	assert_int_equal(CHUNKED_RESULT("0\r\nX-Sum: a b:c\r\nY:\r\n\r\n"),
	    HTTP_BODY_COMPLETE);
	/* Names that only start or end like a refused one pass too. */
	assert_int_equal(CHUNKED_RESULT("0\r\nProxy-Authorization-X: a\r\n"
	    "X-Host: b\r\nTE-X: c\r\nT: d\r\n"
	    "Proxy-Authorization-Of-A-Long-Name: e\r\n\r\n"),
	    HTTP_BODY_COMPLETE);
	assert_int_equal(CHUNKED_RESULT("1\r\na\r\n0\r\n\r\n"),
	    HTTP_BODY_COMPLETE);
}

/*
 * A request's trailers carry no hop-by-hop, framing or routing field
 * (RFC 9110, 6.5.1): Proxy-Authorization there would take the proxy's
 * credentials past it. Refused at the name, in any case and with '_'
 * for '-'; a response's trailers are the client's to judge.
 */
static void
test_http_rejects_hop_by_hop_request_trailers(void **state)
{
	static const char *const names[] = {
		"Proxy-Authorization", "proxy_authorization", "CONNECTION",
		"Proxy-Connection", "Keep-Alive", "TE", "Trailer", "Upgrade",
		"Transfer-Encoding", "Content_Length", "Host"
	};
	static const char rhead[] = "HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n";
	static const char rbody[] = "0\r\nConnection: x\r\n\r\n";
	static const char conn_body[] = "0\r\nX-Sum: 1\r\nx_hop: s\r\n\r\n";
	struct http_msg	*m;
	char		 body[128];
	size_t		 i, used;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(body, sizeof(body), "0\r\nX-Sum: 1\r\n%s: secret\r\n"
		    "\r\n", names[i]);
		assert_int_equal(chunked_body_result(body, strlen(body)),
		    HTTP_ERR_BAD_REQUEST);
	}
	/* A name too long to be looked at is refused. */
	snprintf(body, sizeof(body), "0\r\nX-%0*d: v\r\n\r\n", 70, 0);
	assert_int_equal(chunked_body_result(body, strlen(body)),
	    HTTP_ERR_BAD_REQUEST);
	/* And a field that the request's Connection names, as in its head. */
	m = request("POST http://a.example/ HTTP/1.1\r\nHost: a.example\r\n"
	    "Connection: X-Hop\r\nTransfer-Encoding: chunked\r\n\r\n");
	assert_int_equal(http_msg_feed_body(m, conn_body,
	    sizeof(conn_body) - 1, &used), HTTP_ERR_BAD_REQUEST);
	http_msg_free(m);
	m = http_msg_new(HTTP_DIR_RESPONSE);
	assert_int_equal(http_msg_feed_head(m, rhead, sizeof(rhead) - 1,
	    &used), HTTP_HEAD_COMPLETE);
	assert_int_equal(http_msg_feed_body(m, rbody, sizeof(rbody) - 1,
	    &used), HTTP_BODY_COMPLETE);
	http_msg_free(m);
}

/*
 * libhttp-parser reads a byte from 0x80 up in a chunk size as the digit 0:
 * "\x80" would end the body where an upstream sees no size, "1\x80\x80"
 * be 256 bytes where an upstream reading up to the first non-digit sees
 * one. Any byte but a hex digit before the blanks, ';' or CR is refused,
 * in either direction, so that no framing differs from the upstream's.
 */
static void
test_http_rejects_non_hex_chunk_size_bytes(void **state)
{
	struct http_msg	*m;
	size_t		 used;

	(void)state;
	assert_int_equal(CHUNKED_RESULT("\x80\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("\xda" "0\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("5\xbc\r\nhello"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("1\x80\x80\r\nx"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("5\r\nhello\r\n\xff\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("5 xx\r\nhello\r\n0\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("5 \r\nhello\r\n0 ;e=\x80\r\n\r\n"),
	    HTTP_BODY_COMPLETE);

	m = response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
	assert_int_equal(http_msg_feed_body(m, "1\x80\r\nx", 5, &used),
	    HTTP_ERR_BAD_REQUEST);
	http_msg_free(m);
}

static void
test_http_rejects_chunk_size_overflow(void **state)
{
	(void)state;
	assert_int_equal(CHUNKED_RESULT("ffffffffffffffffff\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(CHUNKED_RESULT("10000000000000000\r\n"),
	    HTTP_ERR_BAD_REQUEST);
}

static void
test_http_content_length_body_split_across_feeds(void **state)
{
	struct http_msg	*m;
	size_t		 used;

	(void)state;
	m = request("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n");
	assert_int_equal(http_msg_feed_body(m, "0123", 4, &used),
	    HTTP_NEED_MORE);
	assert_int_equal(used, 4);
	assert_int_equal(http_msg_feed_body(m, "", 0, &used), HTTP_NEED_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(http_msg_feed_body(m, "456", 3, &used),
	    HTTP_NEED_MORE);
	assert_int_equal(http_msg_feed_body(m, "789GET", 6, &used),
	    HTTP_BODY_COMPLETE);
	assert_int_equal(used, 3);
	assert_int_equal(http_msg_feed_body(m, "GET", 3, &used),
	    HTTP_BODY_COMPLETE);
	assert_int_equal(used, 0);
	http_msg_free(m);
}

static void
test_http_parses_pipelined_requests_after_a_body(void **state)
{
	static const char	 s[] =
	    "POST /one HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
	    "GET /two HTTP/1.1\r\nHost: b\r\n\r\n"
	    "GET /three HTTP/1.1\r\nHost: c\r\n\r\n";
	struct http_msg		*m;
	size_t			 off = 0, used;

	(void)state;
	m = http_msg_new(HTTP_DIR_REQUEST);
	assert_int_equal(http_msg_feed_head(m, s, sizeof(s) - 1, &used),
	    HTTP_HEAD_COMPLETE);
	off += used;
	assert_string_equal(http_msg_head(m)->path, "/one");
	assert_int_equal(http_msg_feed_body(m, s + off, sizeof(s) - 1 - off,
	    &used), HTTP_BODY_COMPLETE);
	off += used;
	assert_int_equal(http_msg_feed_head(m, s + off, sizeof(s) - 1 - off,
	    &used), HTTP_HEAD_COMPLETE);
	off += used;
	assert_string_equal(http_msg_head(m)->path, "/two");
	assert_string_equal(http_msg_head(m)->host, "b");
	assert_int_equal(http_msg_feed_body(m, s + off, sizeof(s) - 1 - off,
	    &used), HTTP_BODY_COMPLETE);
	assert_int_equal(used, 0);
	assert_int_equal(http_msg_feed_head(m, s + off, sizeof(s) - 1 - off,
	    &used), HTTP_HEAD_COMPLETE);
	off += used;
	assert_int_equal(off, sizeof(s) - 1);
	assert_string_equal(http_msg_head(m)->path, "/three");
	assert_int_equal(http_msg_head(m)->nheaders, 1);
	http_msg_free(m);
}

static void
test_http_response_to_head_has_no_body(void **state)
{
	static const char	 s[] =
	    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
	struct http_msg		*m;
	size_t			 used;

	(void)state;
	m = http_msg_new(HTTP_DIR_RESPONSE);
	http_msg_expect_no_body(m);
	assert_int_equal(http_msg_feed_head(m, s, sizeof(s) - 1, &used),
	    HTTP_HEAD_COMPLETE);
	assert_int_equal(http_msg_state(m), HTTP_MSG_DONE);
	assert_int_equal(http_msg_head(m)->framing, HTTP_FRAMING_NONE);
	assert_true(http_msg_head(m)->has_content_length);
	assert_int_equal(http_msg_head(m)->content_length, 100);
	assert_true(http_msg_head(m)->keep_alive);

	/* Only that one response: the next carries its body. */
	assert_int_equal(http_msg_feed_head(m, s, sizeof(s) - 1, &used),
	    HTTP_HEAD_COMPLETE);
	assert_int_equal(http_msg_state(m), HTTP_MSG_BODY);
	assert_int_equal(http_msg_head(m)->framing, HTTP_FRAMING_LENGTH);
	http_msg_free(m);
}

static void
test_http_204_and_304_responses_have_no_body(void **state)
{
	struct http_msg	*m;

	(void)state;
	m = response("HTTP/1.1 204 No Content\r\n\r\n");
	assert_int_equal(http_msg_state(m), HTTP_MSG_DONE);
	assert_true(http_msg_head(m)->keep_alive);
	http_msg_free(m);
	m = response("HTTP/1.1 304 Not Modified\r\nContent-Length: 12\r\n\r\n");
	assert_int_equal(http_msg_state(m), HTTP_MSG_DONE);
	assert_int_equal(http_msg_head(m)->framing, HTTP_FRAMING_NONE);
	http_msg_free(m);
	m = response("HTTP/1.1 304 Not Modified\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n");
	assert_int_equal(http_msg_state(m), HTTP_MSG_DONE);
	http_msg_free(m);
}

static void
test_http_100_continue_is_followed_by_the_real_response(void **state)
{
	static const char	 s[] = "HTTP/1.1 100 Continue\r\n\r\n"
	    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	struct http_msg		*m;
	size_t			 off = 0, used;

	(void)state;
	m = http_msg_new(HTTP_DIR_RESPONSE);
	http_msg_expect_no_body(m);
	assert_int_equal(http_msg_feed_head(m, s, sizeof(s) - 1, &used),
	    HTTP_HEAD_COMPLETE);
	off += used;
	assert_int_equal(used, 25);
	assert_int_equal(http_msg_head(m)->status, 100);
	assert_int_equal(http_msg_state(m), HTTP_MSG_DONE);
	assert_int_equal(http_msg_feed_head(m, s + off, sizeof(s) - 1 - off,
	    &used), HTTP_HEAD_COMPLETE);
	off += used;
	assert_int_equal(http_msg_head(m)->status, 200);
	/* The HEAD request's promise holds for the final response. */
	assert_int_equal(http_msg_state(m), HTTP_MSG_DONE);
	assert_int_equal(off, sizeof(s) - 1 - 2);
	http_msg_free(m);

	m = http_msg_new(HTTP_DIR_RESPONSE);
	assert_int_equal(http_msg_feed_head(m, s, sizeof(s) - 1, &used),
	    HTTP_HEAD_COMPLETE);
	off = used;
	assert_int_equal(http_msg_feed_head(m, s + off, sizeof(s) - 1 - off,
	    &used), HTTP_HEAD_COMPLETE);
	off += used;
	assert_int_equal(http_msg_state(m), HTTP_MSG_BODY);
	assert_int_equal(http_msg_feed_body(m, s + off, sizeof(s) - 1 - off,
	    &used), HTTP_BODY_COMPLETE);
	assert_int_equal(used, 2);
	http_msg_free(m);
}

static void
test_http_close_delimited_response_ends_at_eof(void **state)
{
	struct http_msg	*m;
	size_t		 used;

	(void)state;
	m = response("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
	assert_int_equal(http_msg_head(m)->framing, HTTP_FRAMING_CLOSE);
	assert_false(http_msg_head(m)->keep_alive);
	assert_int_equal(http_msg_state(m), HTTP_MSG_BODY);
	assert_int_equal(http_msg_feed_body(m, "abc", 3, &used),
	    HTTP_NEED_MORE);
	assert_int_equal(used, 3);
	assert_int_equal(http_msg_feed_body(m, "HTTP/1.1 200", 12, &used),
	    HTTP_NEED_MORE);
	assert_int_equal(used, 12);
	assert_int_equal(http_msg_feed_eof(m), HTTP_BODY_COMPLETE);
	assert_int_equal(http_msg_state(m), HTTP_MSG_DONE);
	http_msg_free(m);

	m = response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
	assert_int_equal(http_msg_head(m)->framing, HTTP_FRAMING_CLOSE);
	assert_int_equal(http_msg_feed_eof(m), HTTP_BODY_COMPLETE);
	http_msg_free(m);
}

static void
test_http_eof_inside_a_message_is_an_error(void **state)
{
	struct http_msg	*m;
	size_t		 used;

	(void)state;
	m = response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
	assert_int_equal(http_msg_feed_body(m, "abc", 3, &used),
	    HTTP_NEED_MORE);
	assert_int_equal(http_msg_feed_eof(m), HTTP_ERR_BAD_REQUEST);
	http_msg_free(m);

	m = response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
	assert_int_equal(http_msg_feed_eof(m), HTTP_ERR_BAD_REQUEST);
	http_msg_free(m);

	m = http_msg_new(HTTP_DIR_REQUEST);
	assert_int_equal(http_msg_feed_head(m, "GET / HT", 8, &used),
	    HTTP_NEED_MORE);
	assert_int_equal(http_msg_feed_eof(m), HTTP_ERR_BAD_REQUEST);
	http_msg_free(m);

	m = request("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(http_msg_feed_eof(m), HTTP_NEED_MORE);
	http_msg_free(m);
	m = http_msg_new(HTTP_DIR_REQUEST);
	assert_int_equal(http_msg_feed_eof(m), HTTP_NEED_MORE);
	http_msg_free(m);
}

static void
test_http_101_response_switches_protocols(void **state)
{
	static const char	 s[] = "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello";
	struct http_msg		*m;
	size_t			 used;

	(void)state;
	m = http_msg_new(HTTP_DIR_RESPONSE);
	assert_int_equal(http_msg_feed_head(m, s, sizeof(s) - 1, &used),
	    HTTP_HEAD_COMPLETE);
	assert_int_equal(used, sizeof(s) - 1 - 7);
	assert_true(http_msg_head(m)->upgrade);
	assert_int_equal(http_msg_state(m), HTTP_MSG_SWITCHED);
	assert_int_equal(http_msg_feed_body(m, s + used, 7, &used),
	    HTTP_BODY_COMPLETE);
	assert_int_equal(used, 0);
	http_msg_free(m);
}

static void
test_http_upgrade_request_is_reported(void **state)
{
	struct http_msg	*m;

	(void)state;
	m = request("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\n\r\n");
	assert_true(http_msg_head(m)->upgrade);
	assert_int_equal(http_msg_state(m), HTTP_MSG_DONE);
	http_msg_free(m);
	m = request("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
	    "\r\n");
	assert_false(http_msg_head(m)->upgrade);
	http_msg_free(m);
}

static void
test_http_response_status_outside_100_to_599_is_malformed(void **state)
{
	static const char *const bad[] = { "000", "099", "600", "999" };
	static const char *const good[] = { "100", "199", "200", "599" };
	char		 s[64];
	struct http_msg	*m;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(s, sizeof(s), "HTTP/1.1 %s X\r\n\r\n", bad[i]);
		if (head_result(HTTP_DIR_RESPONSE, s, strlen(s)) !=
		    HTTP_ERR_BAD_REQUEST)
			fail_msg("status %s was accepted", bad[i]);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(s, sizeof(s), "HTTP/1.1 %s X\r\nContent-Length: 0"
		    "\r\n\r\n", good[i]);
		m = response(s);
		assert_int_equal(http_msg_head(m)->status, atoi(good[i]));
		http_msg_free(m);
	}
}

static void
test_http_head_list_joins_every_header_of_a_name(void **state)
{
	struct http_msg	*m;
	char		*v;

	(void)state;
	m = request("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n"
	    "X: y\r\nupgrade: websocket/13\r\n\r\n");
	v = http_head_list(http_msg_head(m), "Upgrade");
	assert_string_equal(v, "h2c, websocket/13");
	free(v);
	assert_null(http_head_list(http_msg_head(m), "Connection"));
	http_msg_free(m);
}

static void
test_http_upgrade_offered_needs_every_chosen_one_offered(void **state)
{
	(void)state;
	assert_true(http_upgrade_offered("websocket", "websocket"));
	assert_true(http_upgrade_offered("h2c, WebSocket", "websocket"));
	assert_true(http_upgrade_offered("a, b", " b ,a"));
	assert_false(http_upgrade_offered("websocket", "h2c"));
	assert_false(http_upgrade_offered("websocket", "websocket, h2c"));
	assert_false(http_upgrade_offered("websocket/13", "websocket"));
	assert_false(http_upgrade_offered("websocket", ""));
	assert_false(http_upgrade_offered("websocket", " , "));
	assert_false(http_upgrade_offered(NULL, "websocket"));
	assert_false(http_upgrade_offered("websocket", NULL));
}

static void
test_http_response_framing_rules(void **state)
{
	struct http_msg	*m;

	(void)state;
	m = response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n"
	    "\r\n");
	assert_true(http_msg_head(m)->chunked);
	assert_int_equal(http_msg_head(m)->framing, HTTP_FRAMING_CHUNKED);
	http_msg_free(m);
	assert_int_equal(RESPONSE_RESULT("HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: chunked, gzip\r\n\r\n"), HTTP_ERR_BAD_REQUEST);
	assert_int_equal(RESPONSE_RESULT("HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(RESPONSE_RESULT("HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(RESPONSE_RESULT("HTTP/1.1 200 OK\r\n"
	    "Content-Length: 3\r\nContent-Length: 4\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(RESPONSE_RESULT("HTTP/1.1 2000 OK\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(RESPONSE_RESULT("HTTP/1.1 200 O\x01K\r\n\r\n"),
	    HTTP_ERR_BAD_REQUEST);
}

static void
test_http_failed_parser_refuses_more_input(void **state)
{
	struct http_msg	*m;
	size_t		 used;

	(void)state;
	m = http_msg_new(HTTP_DIR_REQUEST);
	assert_int_equal(http_msg_feed_head(m, "GET / HTTP/1.1\r\n\r\n", 18,
	    &used), HTTP_ERR_BAD_REQUEST);
	assert_null(http_msg_head(m));
	assert_int_equal(http_msg_state(m), HTTP_MSG_FAILED);
	assert_int_equal(http_msg_feed_head(m, "GET / HTTP/1.1\r\nHost: a\r\n"
	    "\r\n", 27, &used), HTTP_ERR_BAD_REQUEST);
	assert_int_equal(http_msg_feed_body(m, "x", 1, &used),
	    HTTP_ERR_BAD_REQUEST);
	assert_int_equal(http_msg_feed_eof(m), HTTP_ERR_BAD_REQUEST);
	http_msg_free(m);
	http_msg_free(NULL);
}

static void
test_http_request_write_removes_hop_by_hop_headers(void **state)
{
	struct http_msg		*m;
	struct evbuffer		*out;
	char			*s;

	(void)state;
	m = request("POST http://api.example.com/v1?x=2 HTTP/1.1\r\n"
	    "Host: api.example.com\r\n"
	    "User-Agent: test\r\n"
	    "Proxy-Connection: keep-alive\r\n"
	    "Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"
	    "Proxy_Authorization: Basic Zm9vOmJhcg==\r\n"
	    "Keep-Alive: timeout=5\r\n"
	    "keep_alive: 1\r\n"
	    "TE: trailers\r\n"
	    "Trailer: X-Sum\r\n"
	    "Connection: X-Secret, keep-alive\r\n"
	    "connection: transfer-encoding, X-Other\r\n"
	    "X-Secret: s\r\n"
	    "X_Secret: s2\r\n"
	    "x-other: o\r\n"
	    "Upgrade: h2c\r\n"
	    "Accept: */*\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n");
	out = evbuffer_new();
	http_request_write(http_msg_head(m), true, "api.example.com", 443, true,
	    NULL, out);
	s = buffer_string(out);
	assert_string_equal(s,
	    "POST /v1?x=2 HTTP/1.1\r\n"
	    "Host: api.example.com\r\n"
	    "User-Agent: test\r\n"
	    "Accept: */*\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n");
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
}

/* Max-Forwards of a request (-1: none that counts), its head freed. */
static long
max_forwards_of(const char *req)
{
	struct http_msg	*m = request(req);
	long		 n = http_max_forwards(http_msg_head(m));

	http_msg_free(m);
	return n;
}

static void
test_http_max_forwards_counts_for_trace_and_options_only(void **state)
{
	(void)state;
	assert_int_equal(max_forwards_of("TRACE http://a.test/ HTTP/1.1\r\n"
	    "Host: a.test\r\nMax-Forwards: 0\r\n\r\n"), 0);
	assert_int_equal(max_forwards_of("OPTIONS * HTTP/1.1\r\n"
	    "Host: a.test\r\nmax-forwards: 007\r\n\r\n"), 7);
	assert_int_equal(max_forwards_of("OPTIONS http://a.test/ HTTP/1.1\r\n"
	    "Host: a.test\r\nMax-Forwards: 1000000000\r\n\r\n"),
	    1000000000L);
	/* Another method: the field is the server's business. */
	assert_int_equal(max_forwards_of("GET http://a.test/ HTTP/1.1\r\n"
	    "Host: a.test\r\nMax-Forwards: 0\r\n\r\n"), -1);
	/* Repeated: the least. */
	assert_int_equal(max_forwards_of("TRACE http://a.test/ HTTP/1.1\r\n"
	    "Host: a.test\r\nMax-Forwards: 5\r\nMax-Forwards: 3\r\n\r\n"),
	    3);
	/* Beyond the maximum: the maximum and one, whatever its length. */
	assert_int_equal(max_forwards_of("TRACE http://a.test/ HTTP/1.1\r\n"
	    "Host: a.test\r\nMax-Forwards: 1000000001\r\n\r\n"),
	    HTTP_MAX_FORWARDS_MAX + 1);
	assert_int_equal(max_forwards_of("TRACE http://a.test/ HTTP/1.1\r\n"
	    "Host: a.test\r\nMax-Forwards: 99999999999999999999999\r\n"
	    "\r\n"), HTTP_MAX_FORWARDS_MAX + 1);
	/* Missing, not 1*DIGIT (in any of its fields): as if missing. */
	assert_int_equal(max_forwards_of("TRACE http://a.test/ HTTP/1.1\r\n"
	    "Host: a.test\r\n\r\n"), -1);
	assert_int_equal(max_forwards_of("TRACE http://a.test/ HTTP/1.1\r\n"
	    "Host: a.test\r\nMax_Forwards: 0\r\n\r\n"), -1);
	assert_int_equal(max_forwards_of("TRACE http://a.test/ HTTP/1.1\r\n"
	    "Host: a.test\r\nMax-Forwards: 0\r\nMax-Forwards: x\r\n\r\n"),
	    -1);
	assert_int_equal(max_forwards_of("TRACE http://a.test/ HTTP/1.1\r\n"
	    "Host: a.test\r\nMax-Forwards: 2, 2\r\n\r\n"), -1);
	assert_int_equal(max_forwards_of("TRACE http://a.test/ HTTP/1.1\r\n"
	    "Host: a.test\r\nMax-Forwards: -1\r\n\r\n"), -1);
	assert_int_equal(max_forwards_of("TRACE http://a.test/ HTTP/1.1\r\n"
	    "Host: a.test\r\nMax-Forwards: 0x1\r\n\r\n"), -1);
	assert_int_equal(max_forwards_of("TRACE http://a.test/ HTTP/1.1\r\n"
	    "Host: a.test\r\nMax-Forwards: 1 2\r\n\r\n"), -1);
	assert_int_equal(max_forwards_of("TRACE http://a.test/ HTTP/1.1\r\n"
	    "Host: a.test\r\nMax-Forwards: \r\n\r\n"), -1);
}

/*
 * The framing goes on as parsed, whatever its spelling: a length without
 * its leading zeros (which a server might read in octal), the coding's
 * name in lower case (which a server might compare case-sensitively).
 */
static void
test_http_request_write_spells_the_framing_as_parsed(void **state)
{
	struct http_msg		*m;
	struct evbuffer		*out;
	char			*s;

	(void)state;
	m = request("POST http://a.test/x HTTP/1.1\r\nHost: a.test\r\n"
	    "Content-Length: 0010\r\n\r\n");
	out = evbuffer_new();
	http_request_write(http_msg_head(m), false, "a.test", 80, false,
	    NULL, out);
	s = buffer_string(out);
	assert_string_equal(s, "POST /x HTTP/1.1\r\nHost: a.test\r\n"
	    "Content-Length: 10\r\n\r\n");
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
	m = request("POST http://a.test/x HTTP/1.1\r\nHost: a.test\r\n"
	    "Transfer-Encoding: CHUNKED\r\n\r\n");
	out = evbuffer_new();
	http_request_write(http_msg_head(m), false, "a.test", 80, false,
	    NULL, out);
	s = buffer_string(out);
	assert_string_equal(s, "POST /x HTTP/1.1\r\nHost: a.test\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n");
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
}

static void
test_http_request_write_decrements_max_forwards(void **state)
{
	struct http_msg		*m;
	struct evbuffer		*out;
	char			*s;

	(void)state;
	m = request("OPTIONS http://a.test/x HTTP/1.1\r\nMax-Forwards: 10\r\n"
	    "Host: a.test\r\nAccept: */*\r\n\r\n");
	out = evbuffer_new();
	http_request_write(http_msg_head(m), false, "a.test", 80, false,
	    "1.1 p", out);
	s = buffer_string(out);
	assert_string_equal(s, "OPTIONS /x HTTP/1.1\r\nHost: a.test\r\n"
	    "Accept: */*\r\nMax-Forwards: 9\r\nVia: 1.1 p\r\n\r\n");
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
	/* Beyond the maximum, repeated: one field, the maximum. */
	m = request("OPTIONS http://a.test/x HTTP/1.1\r\n"
	    "Max-Forwards: 123456789012\r\nHost: a.test\r\n"
	    "Max-Forwards: 99999999999\r\n\r\n");
	out = evbuffer_new();
	http_request_write(http_msg_head(m), false, "a.test", 80, false,
	    NULL, out);
	s = buffer_string(out);
	assert_string_equal(s, "OPTIONS /x HTTP/1.1\r\nHost: a.test\r\n"
	    "Max-Forwards: 1000000000\r\n\r\n");
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
	/* Named by Connection: for this hop only, not passed on. */
	m = request("OPTIONS http://a.test/x HTTP/1.1\r\nMax-Forwards: 4\r\n"
	    "Host: a.test\r\nConnection: close, Max-Forwards\r\n\r\n");
	out = evbuffer_new();
	http_request_write(http_msg_head(m), false, "a.test", 80, false,
	    NULL, out);
	s = buffer_string(out);
	assert_string_equal(s, "OPTIONS /x HTTP/1.1\r\nHost: a.test\r\n"
	    "\r\n");
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
	/* A GET's goes as it came. */
	m = request("GET http://a.test/x HTTP/1.1\r\nMax-Forwards: 10\r\n"
	    "Host: a.test\r\n\r\n");
	out = evbuffer_new();
	http_request_write(http_msg_head(m), false, "a.test", 80, false,
	    NULL, out);
	s = buffer_string(out);
	assert_string_equal(s, "GET /x HTTP/1.1\r\nHost: a.test\r\n"
	    "Max-Forwards: 10\r\n\r\n");
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
}

static void
test_http_final_answer_echoes_a_trace_without_credentials(void **state)
{
	struct http_msg		*m;
	struct evbuffer		*out;
	char			*s;
	const char		*echo =
	    "TRACE http://a.test/t?q HTTP/1.1\r\n"
	    "Host: a.test\r\n"
	    "Max-Forwards: 0\r\n"
	    "X-Trace: me\r\n\r\n";
	char			 want[512];

	(void)state;
	m = request("TRACE http://a.test/t?q HTTP/1.1\r\nHost: a.test\r\n"
	    "Max-Forwards: 0\r\nCookie: s=1\r\nAuthorization: Basic eA==\r\n"
	    "Proxy-Authorization: Basic eQ==\r\nX-Trace: me\r\n"
	    "proxy_authorization: Basic eg==\r\nCOOKIE: t=2\r\n\r\n");
	out = evbuffer_new();
	assert_int_equal(http_final_answer(http_msg_head(m), HTTP_CONN_CLOSE,
	    out), 200);
	s = buffer_string(out);
	snprintf(want, sizeof(want), "HTTP/1.1 200 OK\r\n"
	    "Content-Type: message/http\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n%s", strlen(echo), echo);
	assert_string_equal(s, want);
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
	/* OPTIONS: no content. */
	m = request("OPTIONS * HTTP/1.0\r\nHost: a.test\r\n"
	    "Max-Forwards: 0\r\n\r\n");
	out = evbuffer_new();
	assert_int_equal(http_final_answer(http_msg_head(m),
	    HTTP_CONN_KEEP_ALIVE, out), 200);
	s = buffer_string(out);
	assert_string_equal(s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
	    "Connection: keep-alive\r\n\r\n");
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
}

static void
test_http_request_write_names_the_port_unless_default(void **state)
{
	struct http_msg		*m;
	struct evbuffer		*out;
	char			*s;

	(void)state;
	m = request("GET / HTTP/1.1\r\nHost: Example.com:8080\r\n"
	    "Content-Length: 0\r\n\r\n");
	out = evbuffer_new();
	http_request_write(http_msg_head(m), true, "example.com", 8443, true,
	    NULL, out);
	s = buffer_string(out);
	assert_string_equal(s, "GET / HTTP/1.1\r\nHost: example.com:8443\r\n"
	    "Content-Length: 0\r\n\r\n");
	free(s);
	evbuffer_drain(out, evbuffer_get_length(out));
	http_request_write(http_msg_head(m), true, "example.com", 80, false,
	    NULL, out);
	s = buffer_string(out);
	assert_string_equal(s, "GET / HTTP/1.1\r\nHost: example.com\r\n"
	    "Content-Length: 0\r\n\r\n");
	free(s);
	evbuffer_drain(out, evbuffer_get_length(out));
	http_request_write(http_msg_head(m), true, "::1", 443, false, NULL, out);
	s = buffer_string(out);
	assert_string_equal(s, "GET / HTTP/1.1\r\nHost: [::1]:443\r\n"
	    "Content-Length: 0\r\n\r\n");
	free(s);
	evbuffer_drain(out, evbuffer_get_length(out));
	http_request_write(http_msg_head(m), true, "example.com", 0, true,
	    NULL, out);
	s = buffer_string(out);
	assert_string_equal(s, "GET / HTTP/1.1\r\nHost: example.com\r\n"
	    "Content-Length: 0\r\n\r\n");
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
}

static void
test_http_request_write_keeps_upgrade_for_websocket(void **state)
{
	struct http_msg		*m;
	struct evbuffer		*out;
	char			*s;

	(void)state;
	m = request("GET /ws HTTP/1.1\r\nHost: a.example\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade, X-A\r\nX-A: 1\r\n"
	    "Sec-WebSocket-Key: k\r\n\r\n");
	out = evbuffer_new();
	http_request_write(http_msg_head(m), true, "a.example", 443, true,
	    NULL, out);
	s = buffer_string(out);
	assert_string_equal(s, "GET /ws HTTP/1.1\r\nHost: a.example\r\n"
	    "Upgrade: websocket\r\nSec-WebSocket-Key: k\r\n"
	    "Connection: upgrade\r\n\r\n");
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
}

/*
 * An Upgrade that does not go on (h2c sent to the proxy, an HTTP/1.0
 * request's) leaves no trace: Upgrade is hop-by-hop like Connection.
 */
static void
test_http_request_write_drops_an_upgrade_that_does_not_go_on(void **state)
{
	struct http_msg		*m;
	struct evbuffer		*out;
	char			*s;
	size_t			 i;
	const char		*heads[] = {
		"GET / HTTP/1.1\r\nHost: a.example\r\nUpgrade: h2c\r\n"
		"Connection: Upgrade, HTTP2-Settings\r\n"
		"HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nX-B: 2\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: a.example\r\nUpgrade: websocket\r\n"
		"X-B: 2\r\n\r\n",
	};

	(void)state;
	for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		m = request(heads[i]);
		out = evbuffer_new();
		http_request_write(http_msg_head(m), false, "a.example", 80,
		    false, NULL, out);
		s = buffer_string(out);
		assert_string_equal(s, "GET / HTTP/1.1\r\nHost: a.example\r\n"
		    "X-B: 2\r\n\r\n");
		free(s);
		evbuffer_free(out);
		http_msg_free(m);
	}
}

static void
test_http_upgrade_only_names_one_protocol(void **state)
{
	struct http_msg	*m;
	size_t		 i;
	const struct {
		const char	*fields;
		bool		 only;
	} cases[] = {
		{ "Upgrade: websocket\r\nConnection: Upgrade\r\n", true },
		{ "Upgrade: WebSocket\r\nConnection: upgrade\r\n", true },
		{ "Upgrade: websocket,  websocket\r\nConnection: upgrade\r\n",
		    true },
		{ "Upgrade: h2c\r\nConnection: Upgrade\r\n", false },
		{ "Upgrade: websocket, h2c\r\nConnection: Upgrade\r\n",
		    false },
		{ "Upgrade: websocket\r\nUpgrade: h2c\r\n"
		    "Connection: Upgrade\r\n", false },
		{ "Upgrade: websocket/13\r\nConnection: Upgrade\r\n", false },
		/* Not offered: Connection does not name it. */
		{ "Upgrade: websocket\r\n", false },
	};
	char	 head[256];

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(head, sizeof(head), "GET / HTTP/1.1\r\n"
		    "Host: a.example\r\n%s\r\n", cases[i].fields);
		m = request(head);
		if (http_upgrade_only(http_msg_head(m), "websocket") !=
		    cases[i].only)
			fail_msg("case %zu: %s", i, cases[i].fields);
		http_msg_free(m);
	}
}

/*
 * http_expects_continue(): one Expect field, 100-continue, sent upstream
 * (what decides whether the client may wait for the 100 before its
 * body); http_expect_names_continue(): any Expect naming 100-continue
 * that goes upstream (what decides whether a server's 100 is passed on).
 */
static void
test_http_expects_continue_only_for_one_forwarded_expect(void **state)
{
	struct http_msg	*m;
	size_t		 i;
	const struct {
		const char	*line;
		const char	*fields;
		bool		 expects;
		bool		 names;
	} cases[] = {
		{ "PUT / HTTP/1.1", "Expect: 100-continue\r\n", true, true },
		{ "PUT / HTTP/1.1", "Expect: 100-Continue\r\n", true, true },
		/* Lists servers read differently: not counted, but named. */
		{ "PUT / HTTP/1.1", "Expect: foo, 100-continue\r\n", false,
		    true },
		{ "PUT / HTTP/1.1", "Expect: foo\r\nExpect: 100-continue\r\n",
		    false, true },
		{ "PUT / HTTP/1.1", "Expect: 100-continue\r\n"
		    "Expect: 100-continue\r\n", false, true },
		/* Not sent upstream. */
		{ "PUT / HTTP/1.1", "Expect: 100-continue\r\n"
		    "Connection: keep-alive, Expect\r\n", false, false },
		{ "PUT / HTTP/1.1", "Expect: foo\r\n", false, false },
		{ "PUT / HTTP/1.1", "Expect: 100-continued\r\n", false, false },
		{ "PUT / HTTP/1.1", "X-Expect: 100-continue\r\n", false, false },
		{ "PUT / HTTP/1.1", "", false, false },
		/* RFC 9110 10.1.1: an HTTP/1.0 request's are ignored. */
		{ "PUT / HTTP/1.0", "Expect: 100-continue\r\n", false, false },
	};
	char		 head[256];

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(head, sizeof(head), "%s\r\nHost: a.example\r\n"
		    "Content-Length: 3\r\n%s\r\n", cases[i].line,
		    cases[i].fields);
		m = request(head);
		if (http_expects_continue(http_msg_head(m)) !=
		    cases[i].expects ||
		    http_expect_names_continue(http_msg_head(m)) !=
		    cases[i].names)
			fail_msg("case %zu: %s %s", i, cases[i].line,
			    cases[i].fields);
		http_msg_free(m);
	}
}

static void
test_http_response_write_removes_hop_by_hop_headers(void **state)
{
	struct http_msg		*m;
	struct evbuffer		*out;
	char			*s;

	(void)state;
	/* A server's Proxy-Authenticate is for the proxy next to it. */
	m = response("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
	    "Connection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\n"
	    "Proxy-Authenticate: Basic realm=\"corp\"\r\n"
	    "Proxy-Authentication-Info: nextnonce=\"x\"\r\n"
	    "X-Hop: 1\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n");
	out = evbuffer_new();
	http_response_write(http_msg_head(m), HTTP_CONN_PERSIST, false,
	    NULL, out);
	s = buffer_string(out);
	assert_string_equal(s, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n");
	free(s);
	evbuffer_drain(out, evbuffer_get_length(out));
	http_response_write(http_msg_head(m), HTTP_CONN_CLOSE, false,
	    NULL, out);
	s = buffer_string(out);
	assert_string_equal(s, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
	    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
}

/* A 1xx or 204 announces no content: its framing fields are dropped. */
static void
test_http_response_write_drops_framing_of_bodiless_answers(void **state)
{
	static const struct {
		const char	*head, *want;
	} cases[] = {
		{ "HTTP/1.1 100 Continue\r\nContent-Length: 40\r\n\r\n",
		  "HTTP/1.1 100 Continue\r\n\r\n" },
		{ "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n",
		  "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" },
		{ "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n"
		  "X-A: 1\r\n\r\n",
		  "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n" },
		/* A 304's length is the representation's: it stays. */
		{ "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
		  "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n" },
	};
	struct http_msg		*m;
	struct evbuffer		*out;
	char			*s;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		m = response(cases[i].head);
		out = evbuffer_new();
		http_response_write(http_msg_head(m), HTTP_CONN_PERSIST, false,
		    NULL, out);
		s = buffer_string(out);
		assert_string_equal(s, cases[i].want);
		free(s);
		evbuffer_free(out);
		http_msg_free(m);
	}
}

static void
test_http_response_write_keeps_upgrade_for_101(void **state)
{
	struct http_msg		*m;
	struct evbuffer		*out;
	char			*s;

	(void)state;
	m = response("HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: a\r\n\r\n");
	out = evbuffer_new();
	http_response_write(http_msg_head(m), HTTP_CONN_CLOSE, false,
	    NULL, out);
	s = buffer_string(out);
	assert_string_equal(s, "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\nSec-WebSocket-Accept: a\r\n"
	    "Connection: upgrade\r\n\r\n");
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
}

static void
test_http_trim_between_messages_forgets_the_head_and_parses_the_next(
    void **state)
{
	static const char	 two[] = "GET /2 HTTP/1.1\r\nHost: b\r\n\r\n";
	static const char	 half[] = "GET /3 HTTP/1.1\r\nHo";
	struct http_msg		*m;
	size_t			 used;

	(void)state;
	m = request("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n");
	http_msg_trim(m);
	assert_null(http_msg_head(m));
	assert_int_equal(http_msg_feed_head(m, two, strlen(two), &used),
	    HTTP_HEAD_COMPLETE);
	assert_string_equal(http_msg_head(m)->path, "/2");
	assert_string_equal(http_msg_head(m)->host, "b");
	/* In the middle of a head, trimming keeps what was parsed. */
	assert_int_equal(http_msg_feed_head(m, half, strlen(half), &used),
	    HTTP_NEED_MORE);
	http_msg_trim(m);
	assert_int_equal(http_msg_feed_head(m, "st: c\r\n\r\n", 9, &used),
	    HTTP_HEAD_COMPLETE);
	assert_string_equal(http_msg_head(m)->path, "/3");
	assert_string_equal(http_msg_head(m)->host, "c");
	http_msg_free(m);
}

static void
test_http_request_write_appends_via_after_the_clients_own(void **state)
{
	struct http_msg	*m;
	struct evbuffer	*out;
	char		*s;

	(void)state;
	m = request("GET / HTTP/1.1\r\nHost: a.example\r\n"
	    "Via: 1.0 other\r\n\r\n");
	out = evbuffer_new();
	http_request_write(http_msg_head(m), true, "a.example", 443, true,
	    "1.1 pinproxy-0a1b2c3d", out);
	s = buffer_string(out);
	assert_string_equal(s, "GET / HTTP/1.1\r\nHost: a.example\r\n"
	    "Via: 1.0 other\r\nVia: 1.1 pinproxy-0a1b2c3d\r\n\r\n");
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
}

static void
test_http_head_answered_by_304_leaves_the_next_response_its_body(
    void **state)
{
	static const char	 s[] = "HTTP/1.1 304 Not Modified\r\n\r\n"
	    "HTTP/1.1 200 OK\r\nContent-Length: 53\r\n\r\n"
	    "HTTP/1.1 200 OK\r\nX-Injected: 1\r\nContent-Length: 0\r\n\r\n";
	struct http_msg		*m;
	size_t			 off = 0, used;

	(void)state;
	m = http_msg_new(HTTP_DIR_RESPONSE);
	/* The 304 answers a HEAD; the 200 answers the GET after it. */
	http_msg_expect_no_body(m);
	assert_int_equal(http_msg_feed_head(m, s, sizeof(s) - 1, &used),
	    HTTP_HEAD_COMPLETE);
	off += used;
	assert_int_equal(http_msg_head(m)->status, 304);
	assert_int_equal(http_msg_state(m), HTTP_MSG_DONE);
	assert_int_equal(http_msg_feed_head(m, s + off, sizeof(s) - 1 - off,
	    &used), HTTP_HEAD_COMPLETE);
	off += used;
	assert_int_equal(http_msg_head(m)->status, 200);
	/* Its 53 bytes are body, not a response of their own. */
	assert_int_equal(http_msg_state(m), HTTP_MSG_BODY);
	assert_int_equal(http_msg_feed_body(m, s + off, sizeof(s) - 1 - off,
	    &used), HTTP_BODY_COMPLETE);
	assert_int_equal(used, 53);
	assert_int_equal(off + used, sizeof(s) - 1);
	http_msg_free(m);
}

static void
test_http_decoded_chunked_body_drops_framing_and_trailers(void **state)
{
	static const char	 body[] = "5;ext=1\r\nhello\r\n"
	    "6\r\n world\r\n0\r\nX-Sum: 1\r\nX-More: 2\r\n\r\n";
	static const char	 next[] = "HTTP/1.1 204 No Content\r\n\r\n";
	char			 s[256], *got;
	struct http_msg		*m;
	struct evbuffer		*sink;
	size_t			 used, len;

	(void)state;
	m = response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	    "Trailer: X-Sum\r\n\r\n");
	sink = evbuffer_new();
	http_msg_decode_body(m, sink);
	len = (size_t)snprintf(s, sizeof(s), "%s%s", body, next);
	assert_int_equal(http_msg_feed_body(m, s, len, &used),
	    HTTP_BODY_COMPLETE);
	assert_int_equal(used, sizeof(body) - 1);
	got = buffer_string(sink);
	assert_string_equal(got, "hello world");
	free(got);
	/* The next message starts without a sink. */
	assert_int_equal(http_msg_feed_head(m, s + used, len - used, &used),
	    HTTP_HEAD_COMPLETE);
	assert_int_equal(evbuffer_get_length(sink), 11);
	evbuffer_free(sink);
	http_msg_free(m);
}

static void
test_http_decoded_chunked_body_fed_one_byte_at_a_time(void **state)
{
	static const char	 body[] = "5\r\nhello\r\n1a\r\n"
	    "abcdefghijklmnopqrstuvwxyz\r\n0\r\nT: x\r\n\r\n";
	struct http_msg		*m;
	struct evbuffer		*sink;
	enum http_result	 r = HTTP_NEED_MORE;
	size_t			 i, used;
	char			*got;

	(void)state;
	m = response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
	sink = evbuffer_new();
	http_msg_decode_body(m, sink);
	for (i = 0; i < sizeof(body) - 1; i++) {
		r = http_msg_feed_body(m, body + i, 1, &used);
		assert_int_equal(used, 1);
	}
	assert_int_equal(r, HTTP_BODY_COMPLETE);
	got = buffer_string(sink);
	assert_string_equal(got, "helloabcdefghijklmnopqrstuvwxyz");
	free(got);
	evbuffer_free(sink);
	http_msg_free(m);
}

static void
test_http_decoded_body_with_bad_chunk_framing_is_an_error(void **state)
{
	static const char	 body[] = "5\r\nhelloXX\r\n0\r\n\r\n";
	struct http_msg		*m;
	struct evbuffer		*sink;
	size_t			 used;

	(void)state;
	m = response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
	sink = evbuffer_new();
	http_msg_decode_body(m, sink);
	assert_int_equal(http_msg_feed_body(m, body, sizeof(body) - 1, &used),
	    HTTP_ERR_BAD_REQUEST);
	evbuffer_free(sink);
	http_msg_free(m);
}

/* The head written for a decoded body of response head, then closed. */
static void
assert_decoded_head(const char *head, const char *expect)
{
	struct http_msg		*m;
	struct evbuffer		*out;
	char			*s;

	m = response(head);
	out = evbuffer_new();
	http_response_write(http_msg_head(m), HTTP_CONN_CLOSE, true,
	    NULL, out);
	s = buffer_string(out);
	assert_string_equal(s, expect);
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
}

static void
test_http_response_write_drops_te_for_a_decoded_body(void **state)
{
	(void)state;
	assert_decoded_head("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Connection: close\r\n\r\n");
}

/*
 * "gzip, chunked" decoded for an HTTP/1.0 client: the body is still
 * gzip-coded, which the client can only learn as a content coding, after
 * any it already has.
 */
static void
test_http_response_write_keeps_other_codings_of_a_decoded_body(void **state)
{
	(void)state;
	assert_decoded_head("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Transfer-Encoding: gzip, chunked\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Content-Encoding: gzip\r\nConnection: close\r\n\r\n");
	assert_decoded_head("HTTP/1.1 200 OK\r\nContent-Encoding: br\r\n"
	    "Transfer-Encoding: x-a\r\nTransfer-Encoding: gzip ,chunked\r\n"
	    "Content-Encoding: x-b\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Encoding: br, x-b, x-a, gzip\r\n"
	    "Connection: close\r\n\r\n");
	/* Empty elements are left out; a hop-by-hop one stays out. */
	assert_decoded_head("HTTP/1.1 200 OK\r\nContent-Encoding: ,\r\n"
	    "Content-Encoding:\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
	    "Connection: close\r\n\r\n");
	assert_decoded_head("HTTP/1.1 200 OK\r\n"
	    "Connection: Content-Encoding\r\nContent-Encoding: secret\r\n"
	    "Transfer-Encoding: gzip, chunked\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
	    "Connection: close\r\n\r\n");
}

/*
 * Codings without chunked, which the close ends: an HTTP/1.0 client gets
 * every one of them as a content coding, the body as it came.
 */
static void
test_http_response_write_gives_http10_every_coding_of_a_closed_body(
    void **state)
{
	(void)state;
	assert_decoded_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n"
	    "\r\n", "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
	    "Connection: close\r\n\r\n");
	assert_decoded_head("HTTP/1.1 200 OK\r\nContent-Encoding: br\r\n"
	    "Transfer-Encoding: gzip, x-y\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Encoding: br, gzip, x-y\r\n"
	    "Connection: close\r\n\r\n");
	/* None: the head as it was. */
	assert_decoded_head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
	    "Connection: close\r\n\r\n");
	/* identity is no coding; a 204 has no content to code. */
	assert_decoded_head("HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: identity, gzip\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
	    "Connection: close\r\n\r\n");
	assert_decoded_head("HTTP/1.1 204 No Content\r\n"
	    "Transfer-Encoding: gzip\r\n\r\n",
	    "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
}

/* RFC 9110 (7.6.3): a proxy adds its Via to every message it forwards. */
static void
test_http_response_write_adds_via(void **state)
{
	struct http_msg	*m;
	struct evbuffer	*out;
	char		*s;

	(void)state;
	m = response("HTTP/1.1 200 OK\r\nVia: 1.0 fred\r\n"
	    "Content-Length: 2\r\n\r\n");
	out = evbuffer_new();
	http_response_write(http_msg_head(m), HTTP_CONN_PERSIST, false,
	    "1.1 pinproxy-0a0b0c0d", out);
	s = buffer_string(out);
	assert_string_equal(s, "HTTP/1.1 200 OK\r\nVia: 1.0 fred\r\n"
	    "Content-Length: 2\r\nVia: 1.1 pinproxy-0a0b0c0d\r\n\r\n");
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
}

static void
test_http_response_write_says_keep_alive_when_asked(void **state)
{
	struct http_msg		*m;
	struct evbuffer		*out;
	char			*s;

	(void)state;
	m = response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
	    "Connection: close\r\n\r\n");
	out = evbuffer_new();
	http_response_write(http_msg_head(m), HTTP_CONN_KEEP_ALIVE, false,
	    NULL, out);
	s = buffer_string(out);
	assert_string_equal(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
	    "Connection: keep-alive\r\n\r\n");
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
}

static void
test_http_upgrade_in_an_http_1_0_request_is_not_offered(void **state)
{
	struct http_msg		*m;
	struct evbuffer		*out;
	char			*s;

	(void)state;
	m = request("GET /ws HTTP/1.0\r\nHost: a\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\n\r\n");
	assert_false(http_msg_head(m)->upgrade);
	out = evbuffer_new();
	http_request_write(http_msg_head(m), true, "a", 443, true, NULL, out);
	s = buffer_string(out);
	assert_string_equal(s, "GET /ws HTTP/1.1\r\nHost: a\r\n\r\n");
	free(s);
	evbuffer_free(out);
	http_msg_free(m);
}

/* Only the idempotent methods may be sent again by the proxy. */
static void
test_http_idempotent_methods(void **state)
{
	const char	*yes[] = { "GET", "HEAD", "OPTIONS", "TRACE", "PUT",
			    "DELETE" };
	const char	*no[] = { "POST", "PATCH", "CONNECT", "M-SEARCH",
			    "LOCK", "get", "" };
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_true(http_method_idempotent(yes[i]));
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(http_method_idempotent(no[i]));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_parses_an_origin_form_request),
		cmocka_unit_test(
		    test_http_trim_between_messages_forgets_the_head_and_parses_the_next),
		cmocka_unit_test(
		    test_http_absolute_form_url_host_beats_host_header),
		cmocka_unit_test(
		    test_http_absolute_form_without_path_gets_slash),
		cmocka_unit_test(test_http_absolute_form_reports_other_schemes),
		cmocka_unit_test(test_http_parses_ipv6_hosts),
		cmocka_unit_test(
		    test_http_gives_every_spelling_of_an_ipv4_address_one_host),
		cmocka_unit_test(
		    test_http_refuses_non_canonical_numeric_hosts),
		cmocka_unit_test(test_http_rejects_malformed_targets_and_hosts),
		cmocka_unit_test(test_http_accepts_options_asterisk),
		cmocka_unit_test(test_http_origin_form_needs_exactly_one_host),
		cmocka_unit_test(test_http_origin_form_http10_without_host),
		cmocka_unit_test(test_http_parses_connect_authorities),
		cmocka_unit_test(
		    test_http_rejects_connect_without_port_or_with_junk),
		cmocka_unit_test(
		    test_http_keep_alive_follows_version_and_connection),
		cmocka_unit_test(
		    test_http_head_fed_one_byte_at_a_time_matches_whole),
		cmocka_unit_test(
		    test_http_consumed_stops_at_the_end_of_the_head),
		cmocka_unit_test(test_http_head_of_exactly_16_kib_passes),
		cmocka_unit_test(
		    test_http_head_one_byte_over_16_kib_is_too_large),
		cmocka_unit_test(
		    test_http_head_of_20_kib_in_small_pieces_is_too_large),
		cmocka_unit_test(
		    test_http_allows_100_header_fields_but_not_101),
		cmocka_unit_test(
		    test_http_knows_a_head_request_from_its_start_line),
		cmocka_unit_test(test_http_rejects_each_smuggling_shape),
		cmocka_unit_test(test_http_accepts_lone_chunked_in_any_case),
		cmocka_unit_test(
		    test_http_keeps_empty_values_and_trims_whitespace),
		cmocka_unit_test(
		    test_http_chunked_body_with_extensions_and_trailers),
		cmocka_unit_test(
		    test_http_rejects_trailer_lines_that_are_not_fields),
		cmocka_unit_test(
		    test_http_rejects_hop_by_hop_request_trailers),
		cmocka_unit_test(test_http_chunked_body_fed_one_byte_at_a_time),
		cmocka_unit_test(test_http_bounds_chunk_lines_and_trailers),
		cmocka_unit_test(test_http_rejects_bad_chunk_sizes),
		cmocka_unit_test(test_http_rejects_non_hex_chunk_size_bytes),
		cmocka_unit_test(test_http_rejects_chunk_size_overflow),
		cmocka_unit_test(
		    test_http_content_length_body_split_across_feeds),
		cmocka_unit_test(
		    test_http_parses_pipelined_requests_after_a_body),
		cmocka_unit_test(test_http_response_to_head_has_no_body),
		cmocka_unit_test(test_http_204_and_304_responses_have_no_body),
		cmocka_unit_test(
		    test_http_100_continue_is_followed_by_the_real_response),
		cmocka_unit_test(
		    test_http_close_delimited_response_ends_at_eof),
		cmocka_unit_test(test_http_eof_inside_a_message_is_an_error),
		cmocka_unit_test(test_http_101_response_switches_protocols),
		cmocka_unit_test(test_http_upgrade_request_is_reported),
		cmocka_unit_test(
		    test_http_response_status_outside_100_to_599_is_malformed),
		cmocka_unit_test(
		    test_http_head_list_joins_every_header_of_a_name),
		cmocka_unit_test(
		    test_http_upgrade_offered_needs_every_chosen_one_offered),
		cmocka_unit_test(test_http_response_framing_rules),
		cmocka_unit_test(test_http_failed_parser_refuses_more_input),
		cmocka_unit_test(test_http_idempotent_methods),
		cmocka_unit_test(
		    test_http_request_write_removes_hop_by_hop_headers),
		cmocka_unit_test(
		    test_http_request_write_appends_via_after_the_clients_own),
		cmocka_unit_test(
		    test_http_head_answered_by_304_leaves_the_next_response_its_body),
		cmocka_unit_test(
		    test_http_max_forwards_counts_for_trace_and_options_only),
		cmocka_unit_test(
		    test_http_request_write_decrements_max_forwards),
		cmocka_unit_test(
		    test_http_request_write_spells_the_framing_as_parsed),
		cmocka_unit_test(
		    test_http_final_answer_echoes_a_trace_without_credentials),
		cmocka_unit_test(
		    test_http_request_write_names_the_port_unless_default),
		cmocka_unit_test(
		    test_http_request_write_keeps_upgrade_for_websocket),
		cmocka_unit_test(
		    test_http_request_write_drops_an_upgrade_that_does_not_go_on),
		cmocka_unit_test(test_http_upgrade_only_names_one_protocol),
		cmocka_unit_test(
		    test_http_expects_continue_only_for_one_forwarded_expect),
		cmocka_unit_test(
		    test_http_response_write_removes_hop_by_hop_headers),
		cmocka_unit_test(
		    test_http_response_write_keeps_other_codings_of_a_decoded_body),
		cmocka_unit_test(
		    test_http_response_write_gives_http10_every_coding_of_a_closed_body),
		cmocka_unit_test(
		    test_http_response_write_drops_framing_of_bodiless_answers),
		cmocka_unit_test(
		    test_http_response_write_keeps_upgrade_for_101),
		cmocka_unit_test(
		    test_http_decoded_chunked_body_drops_framing_and_trailers),
		cmocka_unit_test(
		    test_http_decoded_chunked_body_fed_one_byte_at_a_time),
		cmocka_unit_test(
		    test_http_decoded_body_with_bad_chunk_framing_is_an_error),
		cmocka_unit_test(
		    test_http_response_write_drops_te_for_a_decoded_body),
		cmocka_unit_test(
		    test_http_response_write_says_keep_alive_when_asked),
		cmocka_unit_test(test_http_response_write_adds_via),
		cmocka_unit_test(
		    test_http_upgrade_in_an_http_1_0_request_is_not_offered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

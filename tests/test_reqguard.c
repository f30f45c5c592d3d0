/*
 * reqguard: what a lenient server would read as a request at the start of
 * a blind tunnel's client stream, fed whole and a byte at a time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "reqguard.h"

struct reqguard_case {
	const char		*what;
	const char		*bytes;
	size_t			 len;
	enum reqguard_verdict	 want;
};

#define CASE(what, lit, want)	{ (what), (lit), sizeof(lit) - 1, (want) }

static const struct reqguard_case reqguard_cases[] = {
	/* Requests, each read with its headers by some server. */
	CASE("a request line", "GET / HTTP/1.1\r\nHost: a\r\n",
	    REQGUARD_REQUEST),
	CASE("a method of any bytes (wsgiref)", "G\x01T / HTTP/1.1\r\n",
	    REQGUARD_REQUEST),
	CASE("after empty lines", "\r\n\r\nPOST / http/1.0\r\n",
	    REQGUARD_REQUEST),
	CASE("git's request, then a version (Python)",
	    "0030git-upload-pack /p.git\0host=h\0 HTTP/1.1\r\n",
	    REQGUARD_REQUEST),
	CASE("a ClientHello, then a version (wsgiref)",
	    "\x16\x03\x01\x00\x2d\x01\x00\x00\x29\x03\x03" "AAAA / HTTP/1.1\r\n",
	    REQGUARD_REQUEST),
	CASE("any third word, then a field (the JDK's server)",
	    "POST /x x\r\nHost: a\r\n", REQGUARD_REQUEST),
	CASE("an empty third word, then a field", "PUT /x \r\nHost: a\r\n",
	    REQGUARD_REQUEST),
	CASE("RTSP/ as a version, then a field (Node)",
	    "POST / RTSP/1.0\r\nHost: a\r\n", REQGUARD_REQUEST),
	CASE("a bare LF inside the line (gunicorn)",
	    "POST /x\nfoo HTTP/1.1\r\nHost: a\r\n", REQGUARD_REQUEST),
	CASE("a bare LF before the version (CRLF-only servers)",
	    "POST /x\nHTTP/1.1\r\nHost: a\r\n", REQGUARD_REQUEST),
	CASE("a tab between the words", "POST\t/x\tx\r\nHost: a\r\n",
	    REQGUARD_REQUEST),
	CASE("a method of printable bytes, no version (the JDK's server)",
	    "GET/ /x x\r\nHost: a\r\n", REQGUARD_REQUEST),
	CASE("a request without fields, then another (the JDK's server)",
	    "FOO / X\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n",
	    REQGUARD_REQUEST),
	CASE("the same with bare LFs", "FOO / X\n\nGET / HTTP/1.1\n",
	    REQGUARD_REQUEST),
	CASE("a PROXY v1 header (nginx's proxy_protocol)",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET / HTTP/1.1\r\n",
	    REQGUARD_REQUEST),
	CASE("a PROXY v2 header",
	    "\r\n\r\n\0\r\nQUIT\n\x20\0\0\0GET / HTTP/1.1\r\n",
	    REQGUARD_REQUEST),
	CASE("GET without a version (HTTP/0.9: nginx)",
	    "GET http://a.test/account?token=x\r\n", REQGUARD_REQUEST),
	CASE("GET and a tab", "\r\nGET\t/", REQGUARD_REQUEST),
	CASE("GET and NBSP (Python reads Latin-1, splits on it)",
	    "GET\xa0/admin\r\nHost: internal\r\n", REQGUARD_REQUEST),
	CASE("GET and NEL", "GET\x85/admin\r\n", REQGUARD_REQUEST),
	CASE("GET and a form feed (Python splits on any whitespace)",
	    "GET\x0c/secret?tok", REQGUARD_REQUEST),
	CASE("a method, a vertical tab, a field (Python)",
	    "PUT\x0b/x\r\nHost: a\r\n", REQGUARD_REQUEST),
	CASE("a no-break space ends no method (a WebSocket masked length)",
	    "A\xa0/x\r\nHost: a\r\n", REQGUARD_DONE),
	CASE("GET and a CR that no LF follows (Python)", "GET\r/secret\r\n",
	    REQGUARD_REQUEST),
	CASE("a control byte in the method, a third word, a field (the JDK)",
	    "\x01POST /x X\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
	    REQGUARD_REQUEST),
	CASE("a method above 0x7e (the JDK's server)",
	    "\xc3\xa9 /x X\r\nHost: a\r\n", REQGUARD_REQUEST),
	CASE("a ClientHello whose random holds the JDK's request line",
	    "\x16\x03\x01\x00\x45\x01\x00\x00\x41\x03\x03 /x X\r\n"
	    "Host: a\r\n\r\nAAAAAA", REQGUARD_REQUEST),
	CASE("a control byte in the method, no fields (the JDK's server)",
	    "\x01GET / X\r\n\r\n", REQGUARD_REQUEST),
	CASE("a bare LF in the method (the JDK ends lines at CRLF only)",
	    "\x01PO\nST /x X\r\nHost: a\r\n", REQGUARD_REQUEST),
	CASE("a bare LF in a printable method (the JDK's server)",
	    "PO\nST /x X\r\nHost: a\r\n", REQGUARD_REQUEST),
	CASE("a bare LF in the third word (the JDK's server)",
	    "\x01POST /x X\nY\r\nHost: a\r\n", REQGUARD_REQUEST),
	CASE("a lone CR in the method (the JDK's server)",
	    "\x01PO\rST /x X\r\nHost: a\r\n", REQGUARD_REQUEST),
	CASE("CR CR for an empty header block (the JDK's server)",
	    "\x01POST /x X\r\n\r\r", REQGUARD_REQUEST),
	CASE("LF CR for an empty header block (the JDK's server)",
	    "\x01POST /x X\r\n\n\r", REQGUARD_REQUEST),
	CASE("an empty line, then the JDK's request line",
	    "\r\n\x01POST /x X\r\nHost: a\r\n", REQGUARD_REQUEST),
	CASE("CR CR LF inside the JDK's request line",
	    "A\r\r\nB / C\r\nHost: a\r\n\r\n", REQGUARD_REQUEST),
	CASE("a control byte, CR CR LF, then a request line (the JDK)",
	    "\x01\r\r\nGET /secret HTTP/1.1\r\nHost: a\r\n", REQGUARD_REQUEST),
	CASE("an absolute URL for the JDK's server, in upper case",
	    "\x01GET HTTP://a.test/ X\r\nHost: a\r\n", REQGUARD_REQUEST),
	CASE("an escaped '/' first in the target (the JDK decodes it)",
	    "\x01 %2Fsecret x\r\nHost: a\r\n", REQGUARD_REQUEST),
	/* Other protocols: no request, and a verdict once one is sure. */
	CASE("SMTP", "EHLO a.test\r\nMAIL FROM:<a@b>\r\n", REQGUARD_DONE),
	CASE("a word that starts like PROXY", "PROXYX a\r\nb c\r\n",
	    REQGUARD_DONE),
	CASE("IRC", "CAP LS 302\r\nNICK x\r\nUSER x 0 * :X\r\n",
	    REQGUARD_DONE),
	CASE("Redis", "*1\r\n$4\r\nPING\r\n", REQGUARD_DONE),
	CASE("an SSH client's banner", "SSH-2.0-OpenSSH_9.2\r\n\0\0\x01",
	    REQGUARD_MORE),
	CASE("STOMP", "CONNECT\naccept-version:1.2\nhost:h\n\n\0",
	    REQGUARD_MORE),
	CASE("git's request for a path with /http/",
	    "0036git-upload-pack /pub/http/curl.git\0host=h\0",
	    REQGUARD_MORE),
	CASE("http/ inside a word (an ALPN name)",
	    "\x16\x03\x01\x00\x08http/1.1\x02h2", REQGUARD_MORE),
	CASE("HTTP/ in the third line", "A b\r\nc d\r\nHTTP/1.1\r\n",
	    REQGUARD_DONE),
	CASE("a ClientHello with a space, a LF and a colon by chance",
	    "\x16\x03\x01\x02\x00 \x01\nAb:c\n\n", REQGUARD_MORE),
	CASE("binary bytes with a space and an empty line by chance",
	    "\0\0\x08x y\r\n\r\nmore", REQGUARD_DONE),
	CASE("binary bytes, two spaces and a CRLF, no field",
	    "\0a b c\r\n\x01\x02\r\n", REQGUARD_DONE),
	CASE("binary bytes, two spaces around a control byte, a field",
	    "\0a \x01 c\r\nHost: a\r\n", REQGUARD_DONE),
	CASE("binary bytes, two spaces, a bare LF, a field",
	    "\0a b c\nHost: a\n", REQGUARD_MORE),
	CASE("a bare LF in the target (no URI to the JDK's server)",
	    "\x01POST /x\ny X\r\nHost: a\r\n", REQGUARD_DONE),
	CASE("the JDK's request line, then a line without a name",
	    "\x01POST /x X\r\n Host: a\r\n", REQGUARD_DONE),
	CASE("binary bytes, two spaces around a word no client sends",
	    "\x01POST x X\r\nHost: a\r\n", REQGUARD_DONE),
	CASE("binary bytes, two spaces around nothing",
	    "\x01  x\r\nHost: a\r\n", REQGUARD_DONE),
	CASE("binary bytes, two spaces around a start of http",
	    "\x01 htt x\r\nHost: a\r\n", REQGUARD_DONE),
	CASE("binary bytes, two spaces, a CRLF, a name of other bytes",
	    "\x01POST /x X\r\nHo\x80st: a\r\n", REQGUARD_DONE),
	CASE("HTTP/ after the first CRLF", "EHLO a\r\nHTTP/1.1 x\r\n",
	    REQGUARD_DONE),
	CASE("memcached's get, in lower case", "get k\r\n", REQGUARD_MORE),
	CASE("a word, its CRLF, an empty line", "PING\r\n\r\n", REQGUARD_DONE),
	CASE("a longer word than GET", "GETX /x\r\nfoo\r\n", REQGUARD_DONE),
};

/* Whether a start is held unwritten: it may still be a request line. */
struct reqguard_hold {
	const char		*what;
	const char		*bytes;
	size_t			 len;
	bool			 holding;
};

#define HOLD(what, lit, holding)	{ (what), (lit), sizeof(lit) - 1, (holding) }

static const struct reqguard_hold reqguard_holds[] = {
	HOLD("nothing yet", "", true),
	HOLD("whitespace", "\r\n ", true),
	HOLD("a method and a target, no version yet",
	    "POST http://a.test/login?pw=x ", true),
	HOLD("a first word", "EHLO a.test", true),
	HOLD("a first line that ended", "POST x\r\n", false),
	HOLD("a WebSocket frame", "\x81\x85mask", false),
	HOLD("a compressed WebSocket fragment", "A\x85mask", false),
	HOLD("a ClientHello", "\x16\x03\x01", false),
	HOLD("git's request", "0032git-upload-pack /p\0host=h", false),
	HOLD("a request", "GET ", false),
	HOLD("XMPP's stream header, which waits for the server's",
	    "<?xml version='1.0'?><stream:stream to='a.test'", false),
	HOLD("a first word of other printable bytes", "G\"T /x", false),
	HOLD("a method and a form feed", "POST\x0c/x?pw=x", true),
	HOLD("a method and a CR, the next byte not yet", "POST\r", true),
	HOLD("a compressed fragment of 32 bytes", "B\xa0mask", false),
};

static void
test_reqguard_cases(void **state)
{
	const struct reqguard_case	*c;
	struct reqguard			 g;
	enum reqguard_verdict		 whole, bytewise;
	size_t				 i, k, used;

	(void)state;
	for (k = 0; k < sizeof(reqguard_cases) / sizeof(reqguard_cases[0]);
	    k++) {
		c = &reqguard_cases[k];
		reqguard_init(&g);
		whole = reqguard_feed(&g, (const unsigned char *)c->bytes,
		    c->len, &used);
		reqguard_init(&g);
		bytewise = REQGUARD_MORE;
		for (i = 0; i < c->len && bytewise == REQGUARD_MORE; i++)
			bytewise = reqguard_feed(&g,
			    (const unsigned char *)c->bytes + i, 1, NULL);
		if (whole != c->want || bytewise != c->want)
			fail_msg("%s: whole %d, a byte at a time %d, want %d",
			    c->what, whole, bytewise, c->want);
	}
}

static void
test_reqguard_holding(void **state)
{
	const struct reqguard_hold	*c;
	struct reqguard			 g;
	size_t				 k;

	(void)state;
	for (k = 0; k < sizeof(reqguard_holds) / sizeof(reqguard_holds[0]);
	    k++) {
		c = &reqguard_holds[k];
		reqguard_init(&g);
		(void)reqguard_feed(&g, (const unsigned char *)c->bytes, c->len,
		    NULL);
		if (reqguard_holding(&g) != c->holding)
			fail_msg("%s: holding %d", c->what,
			    reqguard_holding(&g));
	}
}

/*
 * Only a version can still make a request of a start without a method: a
 * binary one, a ClientHello. A first line with a method and whitespace
 * (XMPP's "<?xml version" is one, to the JDK's server) may still be
 * followed by fields: relay.c then takes no bytes from the server for an
 * answer that ends the guard.
 */
static void
test_reqguard_binary(void **state)
{
	static const struct {
		const char	*bytes;
		size_t		 len;
		bool		 binary;
	} cases[] = {
		{ "\0\0\0\x08startup", 11, true },
		{ "\x16\x03\x01\x00\x2d\x01", 6, true },
		{ "\x80\x81 binary", 9, true },
		{ "<?xml version='1.0'?>", 21, false },
		{ "FOO /x\r\n", 8, false },
		{ "EHLO a", 6, false },
		{ "GET", 3, false },
		{ "", 0, false }
	};
	struct reqguard	 g;
	size_t		 k;

	(void)state;
	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		reqguard_init(&g);
		(void)reqguard_feed(&g, (const unsigned char *)cases[k].bytes,
		    cases[k].len, NULL);
		if (reqguard_binary(&g) != cases[k].binary)
			fail_msg("case %zu: binary %d", k,
			    reqguard_binary(&g));
	}
}

/*
 * The end of the stream ends the JDK's server's header block: right after
 * its request line, or after one CR or LF.
 */
static void
test_reqguard_eof(void **state)
{
	static const struct {
		const char	*bytes;
		size_t		 len;
		bool		 eof;
	} cases[] = {
#define EOFCASE(lit, eof)	{ (lit), sizeof(lit) - 1, (eof) }
		EOFCASE("\x01 /secret x\r\n", true),
		EOFCASE("\x01 /secret x\r\n\r", true),
		EOFCASE("\x01 /secret x\r\n\n", true),
		EOFCASE("\x01 /secret x", false),
		EOFCASE("\x01 /secret x\r\nHo", false),
		EOFCASE("\x01 x y\r\n", false),
		EOFCASE("\0\0\x08binary", false),
#undef EOFCASE
	};
	struct reqguard	 g;
	size_t		 k;

	(void)state;
	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		reqguard_init(&g);
		assert_int_equal(reqguard_feed(&g,
		    (const unsigned char *)cases[k].bytes, cases[k].len, NULL),
		    REQGUARD_MORE);
		if (reqguard_eof(&g) != cases[k].eof)
			fail_msg("case %zu: eof %d", k, reqguard_eof(&g));
	}
}

/* The JDK's server reads request lines far longer than the others'. */
static void
test_reqguard_long_jdk_line(void **state)
{
	static const char	 head[] = "\x01 /secret?";
	static const char	 tail[] = " x\r\nHost: a\r\n";
	unsigned char		*b;
	size_t			 n, pad = 9000;
	struct reqguard		 g;

	(void)state;
	b = malloc(sizeof(head) + pad + sizeof(tail));
	assert_non_null(b);
	memcpy(b, head, sizeof(head) - 1);
	n = sizeof(head) - 1;
	memset(b + n, 'a', pad);
	n += pad;
	memcpy(b + n, tail, sizeof(tail) - 1);
	n += sizeof(tail) - 1;
	reqguard_init(&g);
	assert_int_equal(reqguard_feed(&g, b, n, NULL), REQGUARD_REQUEST);
	free(b);
}

/* The bytes that completed a request are counted; later feeds keep it. */
static void
test_reqguard_counts_the_bytes_that_decided(void **state)
{
	static const char	 req[] = "POST /x x\r\nHost: a\r\nmore";
	struct reqguard		 g;
	size_t			 used;

	(void)state;
	reqguard_init(&g);
	assert_int_equal(reqguard_feed(&g, (const unsigned char *)req,
	    sizeof(req) - 1, &used), REQGUARD_REQUEST);
	assert_int_equal(used, strlen("POST /x x\r\nHost:"));
	assert_int_equal(reqguard_feed(&g, (const unsigned char *)"x", 1,
	    &used), REQGUARD_REQUEST);
	assert_int_equal(used, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reqguard_cases),
		cmocka_unit_test(test_reqguard_holding),
		cmocka_unit_test(test_reqguard_binary),
		cmocka_unit_test(test_reqguard_eof),
		cmocka_unit_test(test_reqguard_long_jdk_line),
		cmocka_unit_test(test_reqguard_counts_the_bytes_that_decided),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

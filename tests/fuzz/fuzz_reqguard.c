/*
 * libFuzzer target for the blind-tunnel guard (reqguard.c). The first
 * input byte picks how the rest is cut into the calls of reqguard_feed();
 * the rest is a client's stream. The stream is fed twice, whole and in
 * pieces, and both must reach the same verdict at the same byte. Two
 * servers are then read as they read a request, each written here from
 * its own code and not from the guard's rules: Python's http.server and
 * the JDK's com.sun.net.httpserver. Where either would act on a request
 * within the stream (or at its end), the guard must have found one by
 * then; a guard that is done first let a request through.
 */
#include "config.h"

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "reqguard.h"

/* Where a server stands after the whole stream. */
struct fuzz_server {
	bool	 request;	/* it acts on a request... */
	size_t	 at;		/* ...once it has read this many bytes */
	bool	 at_end;	/* or once the stream ends after them all */
};

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t fuzz_pieces[] = { 1, 2, 3, 7, 64, 1000, SIZE_MAX };

/* Python's str.isspace() on a byte decoded as Latin-1. */
static bool
fuzz_py_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') ||
	    (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xa0;
}

/*
 * BaseHTTPRequestHandler: a line read to its LF (or the stream's end),
 * '\r' and '\n' stripped from its end, split on whitespace: a method, a
 * target and a version starting "HTTP/", or "GET" and a target
 * (HTTP/0.9). Its header block is read after it; the request is acted
 * on at its end at the latest, so the line's end is where the guard must
 * have seen it.
 */
static struct fuzz_server
fuzz_python(const unsigned char *d, size_t n)
{
	struct fuzz_server	 s = { false, 0, false };
	const unsigned char	*lf = memchr(d, '\n', n);
	size_t			 len = lf != NULL ? (size_t)(lf - d) : n;
	size_t			 i, nw = 0, w[4] = { 0 }, wl[4] = { 0 };

	if (len + 1 > 65536)
		return s;
	while (len > 0 && (d[len - 1] == '\r' || d[len - 1] == '\n'))
		len--;
	for (i = 0; i < len; ) {
		while (i < len && fuzz_py_space(d[i]))
			i++;
		if (i == len)
			break;
		if (nw < 4)
			w[nw] = i;
		while (i < len && !fuzz_py_space(d[i]))
			i++;
		if (nw < 4)
			wl[nw] = i - w[nw];
		nw++;
	}
	if ((nw == 3 && wl[2] >= 5 && memcmp(d + w[2], "HTTP/", 5) == 0) ||
	    (nw == 2 && wl[0] == 3 && memcmp(d + w[0], "GET", 3) == 0)) {
		s.request = true;
		if (lf != NULL)
			s.at = (size_t)(lf - d) + 1;
		else {
			s.at = n;
			s.at_end = true;
		}
	}
	return s;
}

/* A byte of an RFC 9110 token, as the JDK's Headers take field names. */
static bool
fuzz_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || (c != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/*
 * Whether the JDK's request line (its bytes kept in line) has a method,
 * a space, a target a client sends (see reqguard.h: no control byte,
 * '/', '*', '%' or "http" first), a space and a version of any bytes.
 */
static bool
fuzz_jdk_line(const unsigned char *line, size_t len)
{
	const unsigned char	*s1, *s2, *t;
	size_t			 tl, i;

	if ((s1 = memchr(line, ' ', len)) == NULL)
		return false;
	t = s1 + 1;
	if ((s2 = memchr(t, ' ', len - (size_t)(t - line))) == NULL)
		return false;
	tl = (size_t)(s2 - t);
	for (i = 0; i < tl; i++)
		if (t[i] < ' ' || t[i] == 0x7f)
			return false;
	if (tl > 0 && (t[0] == '/' || t[0] == '*' || t[0] == '%'))
		return true;
	if (tl < 4)
		return false;
	for (i = 0; i < 4; i++)
		if ((t[i] | 0x20) != (unsigned char)"http"[i])
			return false;
	return true;
}

/*
 * sun.net.httpserver.Request: readLine() ends a line at CR LF only (a CR
 * and the byte after it are kept, whatever it is) and gives nothing at
 * the stream's end; empty lines before the request line are skipped. The
 * header block is empty when its first two bytes are each a CR or a LF,
 * or when the stream ends before a second; else its first line starts
 * with a field name, a token that ':' ends.
 */
static struct fuzz_server
fuzz_jdk(const unsigned char *d, size_t n)
{
	static unsigned char	 line[REQGUARD_JDK_LINE_MAX + 2];
	struct fuzz_server	 s = { false, 0, false };
	size_t			 pos = 0, len;
	bool			 cr;

	do {
		len = 0;
		cr = false;
		for (;;) {
			if (pos == n)
				return s;	/* no line: no request */
			if (cr) {
				cr = false;
				if (d[pos] == '\n') {
					pos++;
					break;
				}
				line[len++] = '\r';
				line[len++] = d[pos++];
			} else if (d[pos] == '\r') {
				cr = true;
				pos++;
			} else
				line[len++] = d[pos++];
			if (len > REQGUARD_JDK_LINE_MAX)
				return s;
		}
	} while (len == 0);
	if (!fuzz_jdk_line(line, len))
		return s;

	s.request = true;
	if (pos == n || ((d[pos] == '\r' || d[pos] == '\n') && pos + 1 == n)) {
		s.at = n;
		s.at_end = true;
		return s;
	}
	if (d[pos] == '\r' || d[pos] == '\n') {
		s.request = d[pos + 1] == '\r' || d[pos + 1] == '\n';
		s.at = pos + 2;
		return s;
	}
	for (; pos < n && fuzz_tchar(d[pos]); pos++)
		;
	s.request = pos < n && d[pos] == ':' && pos > 0 &&
	    fuzz_tchar(d[pos - 1]);
	s.at = pos + 1;
	return s;
}

/* Feed the stream in pieces of piece bytes; the verdict and its byte. */
static enum reqguard_verdict
fuzz_feed(struct reqguard *g, const unsigned char *d, size_t n,
    size_t piece, size_t *at)
{
	enum reqguard_verdict	 v = REQGUARD_MORE, before;
	size_t			 off = 0, len, used;

	*at = n;
	while (off < n) {
		len = n - off < piece ? n - off : piece;
		before = g->verdict;
		v = reqguard_feed(g, d + off, len, &used);
		assert(used <= len);
		if (before != REQGUARD_MORE) {
			/* A verdict stays, and takes no more bytes. */
			assert(v == before && used == 0);
		} else if (v != REQGUARD_MORE) {
			*at = off + used;
			assert(used > 0);
		} else
			assert(used == len);
		/* Holding bytes back is for a stream with no verdict. */
		assert(!reqguard_holding(g) || v == REQGUARD_MORE);
		assert(!reqguard_eof(g) || v == REQGUARD_MORE);
		off += len;
	}
	return v;
}

/* Where the server would act, the guard must have found a request. */
static void
fuzz_check_server(const struct reqguard *g, enum reqguard_verdict v,
    size_t at, struct fuzz_server s)
{
	if (!s.request)
		return;
	if (s.at_end) {
		assert(v == REQGUARD_REQUEST || reqguard_eof(g));
		return;
	}
	assert(v == REQGUARD_REQUEST && at <= s.at);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reqguard		 whole, cut;
	enum reqguard_verdict	 v1, v2;
	size_t			 at1, at2, piece;

	if (size < 1)
		return 0;
	piece = fuzz_pieces[data[0] % (sizeof(fuzz_pieces) /
	    sizeof(fuzz_pieces[0]))];
	data++;
	size--;

	reqguard_init(&whole);
	v1 = fuzz_feed(&whole, data, size, SIZE_MAX, &at1);
	reqguard_init(&cut);
	v2 = fuzz_feed(&cut, data, size, piece, &at2);
	assert(v1 == v2 && at1 == at2);
	assert(reqguard_eof(&whole) == reqguard_eof(&cut));
	assert(reqguard_binary(&whole) == reqguard_binary(&cut));

	fuzz_check_server(&whole, v1, at1, fuzz_python(data, size));
	fuzz_check_server(&whole, v1, at1, fuzz_jdk(data, size));
	return 0;
}

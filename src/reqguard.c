/*
 * One pass over the bytes, a few flags of state: see reqguard.h for the
 * rules and why they are these.
 */
#include "config.h"

#include "http.h"
#include "reqguard.h"

static const char	reqguard_http[] = "HTTP/";
/* The PROXY protocol's headers, v1 and v2 (its 12-byte signature). */
static const char	reqguard_proxy_v1[] = "PROXY ";
static const char	reqguard_proxy_v2[] =
    "\r\n\r\n\0\r\nQUIT\n";

void
reqguard_init(struct reqguard *g)
{
	g->text = false;
	g->get = 0;
	g->ctl = false;
	g->token = true;
	g->word = true;
	g->cr = false;
	g->crlf = false;
	g->lines = 0;
	g->match = 0;
	g->pos = 0;
	g->jdk = REQGUARD_JDK_LINE;
	g->jdk_spaces = 0;
	g->jdk_bad = false;
	g->jdk_cr = false;
	g->jdk_len = 0;
	g->jdk_target = 0;
	g->v1 = true;
	g->v2 = true;
	g->first = REQGUARD_FIRST_START;
	g->second = REQGUARD_SECOND_NONE;
	g->verdict = REQGUARD_MORE;
}

/* A byte of a method as lax servers take one: printable, not a space. */
static bool
reqguard_is_method(unsigned char c)
{
	return c > ' ' && c < 0x7f;
}

/*
 * The first line's shape after byte c (not part of the leading space):
 * true when it makes the first word "GET" and a space or tab.
 */
static bool
reqguard_first(struct reqguard *g, unsigned char c)
{
	switch (g->first) {
	case REQGUARD_FIRST_START:
		g->first = reqguard_is_method(c) ? REQGUARD_FIRST_WORD :
		    REQGUARD_FIRST_OTHER;
		g->get = c == 'G';
		g->token = http_is_tchar(c);
		break;
	case REQGUARD_FIRST_WORD:
		/* A CR ends the line or splits it: the next byte says. */
		if (c == '\r')
			break;
		/*
		 * Servers split on any whitespace (Python's str.split()),
		 * but NEL and NBSP, above 0x7e, are no client's and may be a
		 * WebSocket fragment's masked length (after 'A' or 'B'):
		 * they end a method as any other byte above 0x7e does.
		 */
		if (g->cr || (http_is_split_space(c) && c < 0x7f)) {
			g->first = REQGUARD_FIRST_SPACED;
			return g->get == 3;
		}
		/*
		 * But "GET" then NEL or NBSP is a request to a server that
		 * reads Latin-1 and splits on them (Python's, as HTTP/0.9):
		 * no WebSocket frame starts "GE" ('E' has no mask bit).
		 */
		if (g->get == 3 && (c == 0x85 || c == 0xa0))
			return true;
		if (!reqguard_is_method(c))
			g->first = REQGUARD_FIRST_OTHER;
		g->token = g->token && http_is_tchar(c);
		g->get = g->get > 0 && g->get < 3 &&
		    c == (unsigned char)"GET"[g->get] ? g->get + 1 : 0;
		break;
	default:
		break;
	}
	return false;
}

/* The second line's start after byte c: true when it names a field. */
static bool
reqguard_second(struct reqguard *g, unsigned char c)
{
	switch (g->second) {
	case REQGUARD_SECOND_START:
	case REQGUARD_SECOND_NAME:
		if (http_is_tchar(c))
			g->second = REQGUARD_SECOND_NAME;
		else if (c == ':' && g->second == REQGUARD_SECOND_NAME)
			return g->first == REQGUARD_FIRST_SPACED;
		else if (c == '\r' && g->second == REQGUARD_SECOND_START)
			g->second = REQGUARD_SECOND_CR;
		else
			g->second = REQGUARD_SECOND_OTHER;
		break;
	case REQGUARD_SECOND_CR:
		g->second = REQGUARD_SECOND_OTHER;
		break;
	default:
		break;
	}
	return false;
}

/*
 * Byte c of the JDK's request line: its words split at a space only, and
 * the target between the first two takes no control byte (java.net.URI)
 * and starts as a client's does ('/', '*', "http" of an absolute URL, or
 * '%' of an escaped '/'), which keeps the rule from binary streams that
 * hold the rest by chance (a random byte is a space, a CRLF, a field's
 * colon often enough).
 */
static void
reqguard_jdk_byte(struct reqguard *g, unsigned char c)
{
	unsigned char	 u = c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;

	if (++g->jdk_len > REQGUARD_JDK_LINE_MAX)
		g->jdk = REQGUARD_JDK_NO;
	if (c == ' ') {
		if (g->jdk_spaces < 2)
			g->jdk_spaces++;
		return;
	}
	if (g->jdk_spaces != 1)
		return;
	if (c < ' ' || c == 0x7f)
		g->jdk_bad = true;
	/* Its first bytes: '/', '*', '%', or "http". */
	if (g->jdk_target == 0 && (c == '/' || c == '*' || c == '%'))
		g->jdk_target = 4;
	else if (g->jdk_target < 4 && u == (unsigned char)"http"[g->jdk_target])
		g->jdk_target++;
	else if (g->jdk_target < 4)
		g->jdk_bad = true;
}

/*
 * The JDK's server's reading after byte c, as its reader goes
 * (sun.net.httpserver's Request): true when the bytes so far are a
 * request to it.
 */
static bool
reqguard_jdk(struct reqguard *g, unsigned char c)
{
	switch (g->jdk) {
	case REQGUARD_JDK_LINE:
		if (g->jdk_cr) {
			g->jdk_cr = false;
			if (c == '\n') {
				/* An empty line before it is skipped. */
				if (g->jdk_len > 0)
					g->jdk = g->jdk_spaces == 2 &&
					    g->jdk_target == 4 && !g->jdk_bad ?
					    REQGUARD_JDK_HEAD : REQGUARD_JDK_NO;
				break;
			}
			/*
			 * A CR and the byte after it stay in the line, a
			 * second CR too: it starts no line end.
			 */
			reqguard_jdk_byte(g, '\r');
			reqguard_jdk_byte(g, c);
		} else if (c == '\r')
			g->jdk_cr = true;
		else
			reqguard_jdk_byte(g, c);
		break;
	case REQGUARD_JDK_HEAD:
		if (c == '\r' || c == '\n')
			g->jdk = REQGUARD_JDK_EMPTY;
		else
			g->jdk = http_is_tchar(c) ? REQGUARD_JDK_NAME :
			    REQGUARD_JDK_NO;
		break;
	case REQGUARD_JDK_EMPTY:
		if (c == '\r' || c == '\n')
			return true;
		g->jdk = REQGUARD_JDK_NO;
		break;
	case REQGUARD_JDK_NAME:
		if (c == ':')
			return true;
		if (!http_is_tchar(c))
			g->jdk = REQGUARD_JDK_NO;
		break;
	default:
		break;
	}
	return false;
}

/* Whether byte c, the stream's next, completes a PROXY header's start. */
static bool
reqguard_proxy(struct reqguard *g, unsigned char c)
{
	const size_t	 at = g->pos++;

	g->v1 = g->v1 && at < sizeof(reqguard_proxy_v1) - 1 &&
	    c == (unsigned char)reqguard_proxy_v1[at];
	g->v2 = g->v2 && at < sizeof(reqguard_proxy_v2) - 1 &&
	    c == (unsigned char)reqguard_proxy_v2[at];
	return (g->v1 && at == sizeof(reqguard_proxy_v1) - 2) ||
	    (g->v2 && at == sizeof(reqguard_proxy_v2) - 2);
}

/* Whether byte c completes "HTTP/" begun at a word's start. */
static bool
reqguard_version(struct reqguard *g, unsigned char c)
{
	unsigned char	 u = c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;

	if (g->match > 0 && u == (unsigned char)reqguard_http[g->match])
		g->match++;
	else
		g->match = u == (unsigned char)reqguard_http[0] && g->word ?
		    1 : 0;
	return g->match == sizeof(reqguard_http) - 1;
}

enum reqguard_verdict
reqguard_feed(struct reqguard *g, const unsigned char *data, size_t len,
    size_t *used)
{
	size_t		 i;
	unsigned char	 c;

	for (i = 0; i < len && g->verdict == REQGUARD_MORE; i++) {
		c = data[i];
		if (reqguard_jdk(g, c)) {
			g->verdict = REQGUARD_REQUEST;
			continue;
		}
		if ((g->v1 || g->v2) && reqguard_proxy(g, c))
			g->verdict = REQGUARD_REQUEST;
		else if (!g->text && http_is_split_space(c)) {
			/* Whitespace and empty lines before the first line. */
		} else if (!g->crlf && reqguard_version(g, c))
			g->verdict = REQGUARD_REQUEST;
		else if (c == '\n') {
			g->crlf = g->crlf || g->cr;
			if (g->lines < 2)
				g->lines++;
			if (g->lines == 1)
				g->second = REQGUARD_SECOND_START;
			else if ((g->second == REQGUARD_SECOND_START ||
			    g->second == REQGUARD_SECOND_CR) &&
			    g->first == REQGUARD_FIRST_SPACED) {
				/* An empty line: a request without fields. */
				g->verdict = REQGUARD_REQUEST;
				continue;
			} else if (g->second != REQGUARD_SECOND_NONE)
				g->second = REQGUARD_SECOND_OTHER;
		} else if (g->lines == 0) {
			g->text = true;
			g->ctl = g->ctl || (c < ' ' && !http_is_split_space(c)) ||
			    c == 0x7f;
			if (reqguard_first(g, c))
				g->verdict = REQGUARD_REQUEST;
		} else if (reqguard_second(g, c))
			g->verdict = REQGUARD_REQUEST;
		g->word = http_is_split_space(c);
		g->cr = c == '\r';
		/* Past two lines, and the JDK's reading too. */
		if (g->verdict == REQGUARD_MORE && g->crlf && g->lines == 2 &&
		    g->jdk == REQGUARD_JDK_NO)
			g->verdict = REQGUARD_DONE;
	}
	if (used != NULL)
		*used = i;
	return g->verdict;
}

bool
reqguard_eof(const struct reqguard *g)
{
	return g->verdict == REQGUARD_MORE && (g->jdk == REQGUARD_JDK_HEAD ||
	    g->jdk == REQGUARD_JDK_EMPTY);
}

bool
reqguard_binary(const struct reqguard *g)
{
	return g->ctl || g->first == REQGUARD_FIRST_OTHER;
}

bool
reqguard_holding(const struct reqguard *g)
{
	return g->verdict == REQGUARD_MORE && g->lines == 0 &&
	    g->first != REQGUARD_FIRST_OTHER && g->token && !g->ctl;
}

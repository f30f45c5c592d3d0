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
	g->spaces = 0;
	g->bad_target = false;
	g->jdk = false;
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
			return g->first == REQGUARD_FIRST_SPACED || g->jdk;
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
 * The JDK's request line after byte c of the first line: a space, a
 * target (java.net.URI takes no control byte), a space.
 */
static void
reqguard_spaces(struct reqguard *g, unsigned char c)
{
	if (c == ' ') {
		if (g->spaces < 2)
			g->spaces++;
	} else if (g->spaces == 1 && c != '\r' && (c < ' ' || c == 0x7f))
		g->bad_target = true;
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
			if (g->lines == 1) {
				g->second = REQGUARD_SECOND_START;
				g->jdk = g->cr && g->spaces == 2 &&
				    !g->bad_target;
			} else if ((g->second == REQGUARD_SECOND_START ||
			    g->second == REQGUARD_SECOND_CR) &&
			    (g->first == REQGUARD_FIRST_SPACED || g->jdk)) {
				/* An empty line: a request without fields. */
				g->verdict = REQGUARD_REQUEST;
				continue;
			} else if (g->second != REQGUARD_SECOND_NONE)
				g->second = REQGUARD_SECOND_OTHER;
			if (g->crlf && g->lines == 2)
				g->verdict = REQGUARD_DONE;
		} else if (g->lines == 0) {
			g->text = true;
			g->ctl = g->ctl || (c < ' ' && !http_is_split_space(c)) ||
			    c == 0x7f;
			reqguard_spaces(g, c);
			if (reqguard_first(g, c))
				g->verdict = REQGUARD_REQUEST;
		} else if (reqguard_second(g, c))
			g->verdict = REQGUARD_REQUEST;
		g->word = http_is_split_space(c);
		g->cr = c == '\r';
	}
	if (used != NULL)
		*used = i;
	return g->verdict;
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

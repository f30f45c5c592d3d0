/*
 * One pass over the bytes, a few flags of state: see reqguard.h for the
 * rules and why they are these.
 */
#include "config.h"

#include "http.h"
#include "reqguard.h"

static const char	reqguard_http[] = "HTTP/";

void
reqguard_init(struct reqguard *g)
{
	g->text = false;
	g->word = true;
	g->cr = false;
	g->crlf = false;
	g->lines = 0;
	g->match = 0;
	g->first = REQGUARD_FIRST_START;
	g->second = REQGUARD_SECOND_NONE;
	g->verdict = REQGUARD_MORE;
}

/* The first line's shape after byte c (not part of the leading space). */
static void
reqguard_first(struct reqguard *g, unsigned char c)
{
	switch (g->first) {
	case REQGUARD_FIRST_START:
		g->first = REQGUARD_FIRST_WORD;
		break;
	case REQGUARD_FIRST_WORD:
		if (c == ' ' || c == '\t')
			g->first = REQGUARD_FIRST_SPACED;
		else if (http_is_split_space(c))
			g->first = REQGUARD_FIRST_OTHER;
		break;
	default:
		break;
	}
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
		else
			g->second = REQGUARD_SECOND_OTHER;
		break;
	default:
		break;
	}
	return false;
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
		if (!g->text && http_is_split_space(c)) {
			/* Whitespace and empty lines before the first line. */
		} else if (!g->crlf && reqguard_version(g, c))
			g->verdict = REQGUARD_REQUEST;
		else if (c == '\n') {
			g->crlf = g->crlf || g->cr;
			if (g->lines < 2)
				g->lines++;
			if (g->lines == 1)
				g->second = REQGUARD_SECOND_START;
			else if (g->second != REQGUARD_SECOND_NONE)
				g->second = REQGUARD_SECOND_OTHER;
			if (g->crlf && g->lines == 2)
				g->verdict = REQGUARD_DONE;
		} else if (g->lines == 0) {
			g->text = true;
			reqguard_first(g, c);
		} else if (reqguard_second(g, c))
			g->verdict = REQGUARD_REQUEST;
		g->word = http_is_split_space(c);
		g->cr = c == '\r';
	}
	if (used != NULL)
		*used = i;
	return g->verdict;
}

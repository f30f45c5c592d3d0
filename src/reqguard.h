/*
 * Whether the bytes a client sends through a blind tunnel start with what
 * a lenient HTTP server would read as a request, fed as they come, in
 * any segments. Servers differ: Python, Go and nginx end a line at a LF,
 * gunicorn, the JDK's server and hand-written ones only at a CRLF; the
 * JDK's takes any third word for a version and reads the header lines
 * after it. So a request is either
 *   - "HTTP/", in any case, at the start of a word (after whitespace a
 *     server splits on, see http_is_split_space()) before the first CRLF
 *     (a bare LF before it ends the first line for some servers, not for
 *     others); or
 *   - a first line that starts with a method (printable characters: the
 *     JDK's server takes "GET/" for one) and whitespace (a space or a
 *     tab; Python's server splits on any, see http_is_split_space(),
 *     and on a CR that no LF follows: all but NEL and NBSP count), and a
 *     second line that starts with a field name and ':', or is empty
 *     (the JDK's server answers a request without header lines and
 *     reads the next one on the connection); or
 *   - a first word "GET" and whitespace: servers that take HTTP/0.9
 *     (nginx) answer "GET /path" without a version; or
 *   - a PROXY protocol header (v1 "PROXY ", or v2's signature) at the
 *     very start: a server that takes one from whoever connects reads
 *     the request after it, and no client of a proxy sends one; or
 *   - a request as the JDK's server reads one, whatever its first
 *     word: a request line ended only by a CRLF (a bare LF, or a CR
 *     and the byte after it, stays in it; empty lines before it are
 *     skipped) within REQGUARD_JDK_LINE_MAX bytes, of any bytes, a
 *     space, a target as a client sends one (no control byte, as in a
 *     URI; '/', '*', '%' or "http" first), a space and any bytes; then
 *     a field name and ':', or an empty header block (its first two
 *     bytes each a CR or a LF), or the end of the client's stream right
 *     after the line or a CR or LF (reqguard_eof()). That server takes
 *     any bytes for a method, a control byte or one above 0x7e too, and
 *     any third word for a version. (It takes any target java.net.URI
 *     takes, "ftp:/x" too; clients send none such, and binary streams
 *     would hold them by chance.)
 * Whitespace and empty lines before the first line are skipped, as
 * servers do. In a stream that starts with a control byte or one above
 * 0x7e, a ClientHello or a binary protocol, only a version and the
 * JDK's line count: there a space, a line feed and a colon or another
 * line feed come by chance, and a server that takes any method
 * (wsgiref) still wants a version; the JDK's line asks for two spaces
 * around a target, a CRLF and a field name's colon, far rarer by
 * chance. Once the first CRLF and the second line's end have passed,
 * and the JDK's reading has ended (at most a field name after its
 * line), nothing later can make a request of the start: the verdict is
 * done.
 */
#ifndef PINPROXY_REQGUARD_H
#define PINPROXY_REQGUARD_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The longest first line taken for anything but a request while it has
 * not ended: past it, a method and a space (or a first word still going
 * on) are a request line (tunnel.c's first look, relay.c's hold). Bytes
 * that are not TLS are looked at no further, so that a client that sends
 * them one at a time costs a bounded copy and scan each.
 */
#define REQGUARD_LINE_MAX	1024
/*
 * The longest request line looked for as the JDK's server reads one (see
 * above): that server's own limit for a request's head is 380 KiB.
 */
#define REQGUARD_JDK_LINE_MAX	(384 * 1024)

enum reqguard_verdict {
	REQGUARD_MORE,		/* no request so far; go on feeding */
	REQGUARD_DONE,		/* no request: the rest need not be fed */
	REQGUARD_REQUEST	/* a request: its last byte was fed */
};

/* The first line's shape so far. */
enum reqguard_first {
	REQGUARD_FIRST_START,	/* no byte of it yet */
	REQGUARD_FIRST_WORD,	/* in its first word, printable so far */
	REQGUARD_FIRST_SPACED,	/* a method, then a space or tab */
	REQGUARD_FIRST_OTHER	/* anything else */
};

/* The second line's start so far. */
enum reqguard_second {
	REQGUARD_SECOND_NONE,	/* not begun */
	REQGUARD_SECOND_START,	/* begun, no byte yet */
	REQGUARD_SECOND_NAME,	/* a field name so far */
	REQGUARD_SECOND_CR,	/* a CR alone so far: an empty line? */
	REQGUARD_SECOND_OTHER	/* no field name */
};

/* The JDK's server's reading of the stream so far. */
enum reqguard_jdk {
	REQGUARD_JDK_LINE,	/* its request line, ended by a CRLF only */
	REQGUARD_JDK_HEAD,	/* the line fits: the header block's start */
	REQGUARD_JDK_EMPTY,	/* a CR or LF first: a second ends it */
	REQGUARD_JDK_NAME,	/* a field name so far */
	REQGUARD_JDK_NO		/* no request to it */
};

struct reqguard {
	bool			 text;	/* a byte that is not whitespace came */
	unsigned int		 get;	/* bytes of "GET" the first word matched */
	bool			 ctl;	/* a control byte in the first line */
	bool			 token;	/* the first word: token bytes only */
	bool			 word;	/* the next byte starts a word */
	bool			 cr;	/* the last byte was a CR */
	bool			 crlf;	/* a CRLF came after the text began */
	unsigned int		 lines;	/* LFs since the text began (to 2) */
	size_t			 match;	/* bytes of "HTTP/" matched */
	size_t			 pos;	/* bytes fed so far */
	enum reqguard_jdk	 jdk;	/* the JDK's server's reading */
	unsigned int		 jdk_spaces; /* in its request line (to 2) */
	bool			 jdk_bad;	/* its target: a control byte */
	bool			 jdk_cr;	/* a CR, what follows not yet */
	size_t			 jdk_len;	/* its request line's bytes */
	unsigned int		 jdk_target;	/* its start matched (4: all) */
	bool			 v1;	/* they start a PROXY v1 header */
	bool			 v2;	/* they start a PROXY v2 header */
	enum reqguard_first	 first;
	enum reqguard_second	 second;
	enum reqguard_verdict	 verdict;
};

/* Start looking at a new stream. */
void			 reqguard_init(struct reqguard *g);
/*
 * Look at len more bytes; once the verdict is DONE or REQUEST it stays,
 * and *used (NULL: not wanted) says how many bytes led to it.
 */
enum reqguard_verdict	 reqguard_feed(struct reqguard *g,
			    const unsigned char *data, size_t len,
			    size_t *used);
/*
 * Whether the bytes fed so far may still be the start of a request line
 * as a client sends one (no verdict, no line end yet, a first word of
 * token bytes as methods are, no control byte such as git's NUL):
 * written now, a server could act on what they name before the verdict.
 * Hold them until this is false. (XMPP's "<?xml ...", sent without a
 * line end before the server answers, is no such start.)
 */
bool			 reqguard_holding(const struct reqguard *g);
/*
 * Whether the bytes fed so far start as no client's request does: with a
 * control byte (a binary protocol, a ClientHello), or a first line with
 * no method and whitespace. Only a version ("HTTP/" before the first
 * CRLF) or the JDK's request line could still make a request of them,
 * and a server that answered them is no HTTP server waiting for one.
 */
bool			 reqguard_binary(const struct reqguard *g);
/*
 * Whether the end of the client's stream, after the bytes fed so far,
 * would end a request: the JDK's server takes it for the end of an empty
 * header block. The stream is then refused as for REQUEST, and its end
 * is not passed on.
 */
bool			 reqguard_eof(const struct reqguard *g);

#endif

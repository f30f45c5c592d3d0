/*
 * HTTP heads and body framing on top of libhttp-parser. The parser is
 * paused at the end of every head and every message so that callers learn
 * exactly where each ends; the head is stored once, in a buffer that grows
 * as it arrives up to the largest head accepted, and checked against
 * request smuggling.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <http_parser.h>

#include "hostport.h"
#include "http.h"
#include "xmalloc.h"

/* Which string of the head the parser is delivering. */
enum http_piece {
	PIECE_NONE,
	PIECE_URL,
	PIECE_REASON,
	PIECE_NAME,
	PIECE_VALUE
};

/*
 * Where chunked framing is: the chunk-size line's grammar is checked here,
 * since libhttp-parser reads any byte from 0x80 up as the hex digit 0.
 */
enum http_frame {
	FRAME_NONE,		/* a head, or a body without chunks */
	FRAME_SIZE_FIRST,	/* the first digit of a chunk size */
	FRAME_SIZE,		/* more digits */
	FRAME_SIZE_WS,		/* blanks after the digits: ';' or CR next */
	FRAME_EXT,		/* a chunk extension, up to the CR */
	FRAME_DATA,		/* chunk data, then its CRLF */
	FRAME_TRAILER,		/* a trailer line's start, after the last
				   chunk: a field name, or the end's CR */
	FRAME_TRAILER_NAME,	/* more of the name, up to its ':' */
	FRAME_TRAILER_VALUE,	/* the value, up to the LF */
	FRAME_TRAILER_END	/* the LF of the empty line that ends it */
};

/*
 * The longest trailer name a request may carry: one is checked against
 * the fields its trailers may not carry, Connection's included.
 */
#define HTTP_TRAILER_NAME_MAX	64

static bool	http_connection_lists(const struct http_head *, const char *,
		    size_t);

/*
 * The line discipline of a head or of chunked framing: CRLF line ends, no
 * control bytes but HTAB, no line starting with whitespace (obs-fold);
 * and in chunked framing, chunk sizes of hex digits (RFC 9112, 7.1).
 */
struct http_lines {
	unsigned char	 prev;
	bool		 line_start;
	bool		 need_cr;	/* chunk data ended: CRLF must follow */
	bool		 last;		/* the chunk size so far is zero */
	enum http_frame	 frame;
	bool		 request;	/* trailer names are checked */
	const struct http_head *head;	/* against its Connection too */
	char		 tname[HTTP_TRAILER_NAME_MAX];	/* its start */
	size_t		 tlen;		/* the name's length so far */
	size_t		 framed;	/* of this chunk-size line, or of
					   the trailer section, so far */
};

/* Offsets of a header's name and value in the store. */
struct http_field {
	size_t		 name;
	size_t		 value;
};

struct http_msg {
	http_parser		 parser;
	enum http_dir		 dir;
	enum http_msg_state	 state;
	bool			 started;	/* a start line has begun */
	bool			 head_valid;
	bool			 too_large;	/* why a callback stopped */
	bool			 no_body_next;
	size_t			 head_len;
	struct http_lines	 lines;

	/* Chunked framing not yet checked, and data left in this chunk. */
	const char		*frame_from;
	uint64_t		 chunk_left;
	struct evbuffer		*sink;		/* decoded body; borrowed */

	/* Parser fields read when the head ends, before the body uses them. */
	uint64_t		 content_length;
	unsigned int		 parser_flags;
	bool			 parser_upgrade;

	enum http_piece		 piece;
	size_t			 used;
	size_t			 url;
	size_t			 reason;
	struct http_field	*fields;	/* grown to HTTP_HEADERS_MAX */
	size_t			 nfields;
	size_t			 fields_cap;

	struct http_head	 head;
	struct http_header	*headers;	/* fields_cap entries */
	char			 host[HOSTMATCH_NAME_MAX];
	char			 scheme[16];
	char			*store;		/* grown to HTTP_HEAD_MAX + 1 */
	size_t			 store_cap;
};

/* The first size of the head store and of the field table. */
#define HTTP_STORE_FIRST	1024
#define HTTP_FIELDS_FIRST	16

/*
 * Headers never forwarded (SPEC §3), besides those named in Connection;
 * lowercase, matched as http_name_like() does. A server's
 * Proxy-Authenticate is for the proxy next to it (RFC 9110, 11.7.1):
 * passed on, it would have a browser ask its user for credentials in
 * pinproxy's name.
 */
static const char *const http_hop_by_hop_names[] = {
	"connection",
	"proxy-connection",
	"proxy-authorization",
	"proxy-authenticate",
	"proxy-authentication-info",
	"keep-alive",
	"te",
	"trailer",
	"upgrade"		/* but for the exchange that upgrades */
};

/*
 * Fields a request's trailers may not carry (RFC 9110, 6.5.1), besides
 * the hop-by-hop ones, which would pass the proxy's hop with its
 * credentials (Proxy-Authorization) or orders: framing and routing.
 */
static const char *const http_trailer_refused[] = {
	"transfer-encoding", "content-length", "host"
};

#define HTTP_NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

/* A name's byte as servers that map names to variables (CGI) read it. */
static char
http_name_fold(char c)
{
	return c == '_' ? '-' : (char)tolower((unsigned char)c);
}

/* Whether two names are alike: in any case, '_' read as '-'. */
static bool
http_names_alike(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t	 i;

	if (alen != blen)
		return false;
	for (i = 0; i < alen; i++)
		if (http_name_fold(a[i]) != http_name_fold(b[i]))
			return false;
	return true;
}

/* Whether the name of len bytes is target (lowercase), as above. */
static bool
http_name_like(const char *name, size_t len, const char *target)
{
	return http_names_alike(name, len, target, strlen(target));
}

/* A request's trailer line just named a field: whether it may. */
static bool
http_trailer_allowed(const struct http_lines *l)
{
	size_t	 i;

	if (!l->request)
		return true;
	/* Too long to be looked at: refused, whatever Connection lists. */
	if (l->tlen > sizeof(l->tname))
		return false;
	for (i = 0; i < HTTP_NITEMS(http_hop_by_hop_names); i++)
		if (http_name_like(l->tname, l->tlen, http_hop_by_hop_names[i]))
			return false;
	for (i = 0; i < HTTP_NITEMS(http_trailer_refused); i++)
		if (http_name_like(l->tname, l->tlen, http_trailer_refused[i]))
			return false;
	return !http_connection_lists(l->head, l->tname, l->tlen);
}

static bool
http_is_hexdig(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/*
 * One byte of chunked framing that passed the line discipline: chunk-size
 * = 1*HEXDIG, then blanks, ';' and an extension, or the CRLF. Whatever
 * the parser takes for a size is what an upstream reads. A trailer line
 * is a field line as in a head: a token, then ':' (libhttp-parser lets a
 * space into a name, so "GET http://..." would pass for a field, where a
 * server that reads no trailers takes it for the next request), and in a
 * request one that http_trailer_allowed() takes, refused at its ':'
 * before any byte of its value.
 */
static bool
http_frame_step(struct http_lines *l, unsigned char c)
{
	/* Framing, not content: bounded, as a head is (CRLF aside). */
	if (l->frame != FRAME_NONE && l->frame != FRAME_DATA &&
	    ++l->framed > (l->frame >= FRAME_TRAILER ? HTTP_HEAD_MAX :
	    HTTP_CHUNK_LINE_MAX + 2))
		return false;
	switch (l->frame) {
	case FRAME_NONE:
	case FRAME_TRAILER_END:
		return true;
	case FRAME_TRAILER:
		if (c == '\r') {
			l->frame = FRAME_TRAILER_END;
			return true;
		}
		l->frame = FRAME_TRAILER_NAME;
		l->tlen = 0;
		break;
	case FRAME_TRAILER_NAME:
		if (c == ':') {
			l->frame = FRAME_TRAILER_VALUE;
			return http_trailer_allowed(l);
		}
		break;
	case FRAME_TRAILER_VALUE:
		if (c == '\n')
			l->frame = FRAME_TRAILER;
		return true;
	case FRAME_DATA:
		if (c == '\n') {
			l->frame = FRAME_SIZE_FIRST;
			l->framed = 0;
		}
		return true;
	case FRAME_SIZE_FIRST:
		if (!http_is_hexdig(c))
			return false;
		l->frame = FRAME_SIZE;
		l->last = c == '0';
		return true;
	case FRAME_SIZE:
		if (http_is_hexdig(c)) {
			l->last = l->last && c == '0';
			return true;
		}
		break;
	case FRAME_SIZE_WS:
		break;
	case FRAME_EXT:
		if (c != '\n')
			return true;
		break;
	}
	if (l->frame == FRAME_TRAILER_NAME) {
		/* A longer name is only counted: too long, it is refused. */
		if (l->tlen < sizeof(l->tname))
			l->tname[l->tlen] = (char)c;
		if (l->tlen <= sizeof(l->tname))
			l->tlen++;
		return http_is_tchar(c);
	}
	if (c == ' ' || c == '\t') {
		if (l->frame != FRAME_EXT)
			l->frame = FRAME_SIZE_WS;
	} else if (c == ';')
		l->frame = FRAME_EXT;
	else if (c == '\n') {
		l->frame = l->last ? FRAME_TRAILER : FRAME_DATA;
		l->framed = 0;
	}
	else if (c != '\r')
		return false;
	return true;
}

/* Check bytes against the line discipline, carrying state across calls. */
static bool
http_lines_check(struct http_lines *l, const char *data, size_t len)
{
	size_t		 i;
	unsigned char	 c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)data[i];
		if (l->need_cr) {
			if (c != '\r')
				return false;
			l->need_cr = false;
		}
		if (l->prev == '\r' && c != '\n')
			return false;
		if (c == '\n') {
			if (l->prev != '\r')
				return false;
			l->line_start = true;
		} else if (c != '\r') {
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return false;
			if (l->line_start && (c == ' ' || c == '\t'))
				return false;
			l->line_start = false;
		}
		if (!http_frame_step(l, c))
			return false;
		l->prev = c;
	}
	return true;
}

/* Reset the line discipline for a new head or body. */
static void
http_lines_reset(struct http_lines *l)
{
	l->prev = '\0';
	l->line_start = true;
	l->need_cr = false;
	l->last = false;
	l->frame = FRAME_NONE;
	l->framed = 0;
}

/* Forget the previous message and wait for the next head. */
static void
http_msg_begin(struct http_msg *m)
{
	m->state = HTTP_MSG_HEAD;
	m->started = false;
	m->head_valid = false;
	m->too_large = false;
	m->head_len = 0;
	http_lines_reset(&m->lines);
	m->frame_from = NULL;
	m->sink = NULL;
	m->piece = PIECE_NONE;
	m->used = 0;
	m->url = SIZE_MAX;
	m->reason = SIZE_MAX;
	m->nfields = 0;
}

/* Stop parsing for good and return the error. */
static enum http_result
http_msg_fail(struct http_msg *m, enum http_result r)
{
	m->state = HTTP_MSG_FAILED;
	m->head_valid = false;
	return r;
}

/* Make the store hold at least size bytes (at most HTTP_HEAD_MAX + 1). */
static void
http_store_reserve(struct http_msg *m, size_t size)
{
	size_t	 cap;

	if (size <= m->store_cap)
		return;
	cap = m->store_cap == 0 ? HTTP_STORE_FIRST : m->store_cap;
	while (cap < size)
		cap *= 2;
	if (cap > HTTP_HEAD_MAX + 1)
		cap = HTTP_HEAD_MAX + 1;
	m->store = xreallocarray(m->store, cap, 1);
	m->store_cap = cap;
}

/* Make room for more header fields (up to HTTP_HEADERS_MAX). */
static void
http_fields_grow(struct http_msg *m)
{
	size_t	 cap;

	cap = m->fields_cap == 0 ? HTTP_FIELDS_FIRST : m->fields_cap * 2;
	if (cap > HTTP_HEADERS_MAX)
		cap = HTTP_HEADERS_MAX;
	m->fields = xreallocarray(m->fields, cap, sizeof(*m->fields));
	m->headers = xreallocarray(m->headers, cap, sizeof(*m->headers));
	m->fields_cap = cap;
}

/* Terminate the string being stored; a value loses trailing whitespace. */
static void
http_piece_end(struct http_msg *m)
{
	size_t	 start;

	if (m->piece == PIECE_NONE)
		return;
	if (m->piece == PIECE_VALUE) {
		start = m->fields[m->nfields - 1].value;
		while (m->used > start && (m->store[m->used - 1] == ' ' ||
		    m->store[m->used - 1] == '\t'))
			m->used--;
	}
	m->store[m->used++] = '\0';
	m->piece = PIECE_NONE;
}

/* Store bytes of a string of the head; the parser may split any string. */
static int
http_piece_add(struct http_msg *m, enum http_piece piece, const char *at,
    size_t len)
{
	if (m->piece != piece) {
		http_piece_end(m);
		switch (piece) {
		case PIECE_URL:
			m->url = m->used;
			break;
		case PIECE_REASON:
			m->reason = m->used;
			break;
		case PIECE_NAME:
			if (m->nfields == HTTP_HEADERS_MAX) {
				m->too_large = true;
				return -1;
			}
			if (m->nfields == m->fields_cap)
				http_fields_grow(m);
			m->fields[m->nfields].name = m->used;
			m->fields[m->nfields].value = SIZE_MAX;
			m->nfields++;
			break;
		case PIECE_VALUE:
			if (m->nfields == 0)
				return -1;
			m->fields[m->nfields - 1].value = m->used;
			break;
		case PIECE_NONE:
			return -1;
		}
		m->piece = piece;
	}
	/* Keep room for the terminator. */
	if (len >= HTTP_HEAD_MAX + 1 - m->used) {
		m->too_large = true;
		return -1;
	}
	http_store_reserve(m, m->used + len + 1);
	memcpy(m->store + m->used, at, len);
	m->used += len;
	return 0;
}

static int
http_on_message_begin(http_parser *p)
{
	struct http_msg	*m = p->data;

	m->started = true;
	return 0;
}

static int
http_on_url(http_parser *p, const char *at, size_t len)
{
	return http_piece_add(p->data, PIECE_URL, at, len);
}

static int
http_on_status(http_parser *p, const char *at, size_t len)
{
	return http_piece_add(p->data, PIECE_REASON, at, len);
}

static int
http_on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_msg	*m = p->data;

	/* Trailers are forwarded with the body, not kept. */
	if (m->state != HTTP_MSG_HEAD)
		return 0;
	return http_piece_add(m, PIECE_NAME, at, len);
}

static int
http_on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_msg	*m = p->data;

	if (m->state != HTTP_MSG_HEAD)
		return 0;
	return http_piece_add(m, PIECE_VALUE, at, len);
}

/*
 * Pause at the end of the head so the caller sees it before any body byte;
 * the return value tells the parser which responses carry no body.
 */
static int
http_on_headers_complete(http_parser *p)
{
	struct http_msg	*m = p->data;
	bool		 no_body;

	m->content_length = p->content_length;
	m->parser_flags = p->flags;
	m->parser_upgrade = p->upgrade;
	http_parser_pause(p, 1);
	if (m->dir == HTTP_DIR_REQUEST)
		return 0;
	if (p->status_code == 101)
		return 2;
	/* An interim response leaves the mark for the final one. */
	if (p->status_code / 100 == 1)
		return 1;
	/* Any final response consumes it, 204 and 304 included. */
	no_body = m->no_body_next;
	m->no_body_next = false;
	return no_body || p->status_code == 204 || p->status_code == 304 ?
	    1 : 0;
}

static int
http_on_chunk_header(http_parser *p)
{
	struct http_msg	*m = p->data;

	m->chunk_left = p->content_length;
	return 0;
}

/*
 * Body bytes are forwarded by the caller, who gets them here without chunk
 * framing when it asked for a decoded body; chunk framing is checked.
 */
static int
http_on_body(http_parser *p, const char *at, size_t len)
{
	struct http_msg	*m = p->data;

	if (m->frame_from != NULL) {
		if (!http_lines_check(&m->lines, m->frame_from,
		    (size_t)(at - m->frame_from)))
			return -1;
		m->frame_from = at + len;
		m->chunk_left -= len < m->chunk_left ? len : m->chunk_left;
		if (m->chunk_left == 0)
			m->lines.need_cr = true;
	}
	if (m->sink != NULL && evbuffer_add(m->sink, at, len) != 0)
		return -1;
	return 0;
}

static int
http_on_message_complete(http_parser *p)
{
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings http_settings = {
	.on_message_begin = http_on_message_begin,
	.on_url = http_on_url,
	.on_status = http_on_status,
	.on_header_field = http_on_header_field,
	.on_header_value = http_on_header_value,
	.on_headers_complete = http_on_headers_complete,
	.on_body = http_on_body,
	.on_message_complete = http_on_message_complete,
	.on_chunk_header = http_on_chunk_header
};

bool
http_method_idempotent(const char *method)
{
	static const char *const idempotent[] = {
		"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"
	};
	size_t	 i;

	for (i = 0; i < sizeof(idempotent) / sizeof(idempotent[0]); i++)
		if (strcmp(method, idempotent[i]) == 0)
			return true;
	return false;
}

bool
http_is_split_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' ||
	    c == '\r' || c == '\n' || (c >= 0x1c && c <= 0x1f) ||
	    c == 0x85 || c == 0xa0;
}

bool
http_is_tchar(unsigned char c)
{
	static const char	 punct[] = "!#$%&'*+-.^_`|~";

	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || (c != '\0' &&
	    strchr(punct, c) != NULL);
}

/* Whether s is a non-empty RFC 9110 token (a field name, a coding). */
static bool
http_is_token(const char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (!http_is_tchar((unsigned char)s[i]))
			return false;
	return len > 0;
}

/* Whether a request target is visible ASCII only, as RFC 9112 wants. */
static bool
http_is_target(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* Parse a Host field or CONNECT target into the head's host and port. */
static bool
http_hostport_parse(const char *s, char *host, uint16_t *port,
    bool need_port)
{
	return hostport_parse(s, strlen(s), need_port ? HOSTPORT_NEED_PORT : 0,
	    host, port) == HOSTPORT_OK;
}

/* Split an absolute-form target into scheme, host, port and path. */
static bool
http_absolute_parse(struct http_msg *m)
{
	struct http_head	*h = &m->head;
	struct http_parser_url	 u;
	const char		*t = h->target;
	size_t			 off, len, i;

	http_parser_url_init(&u);
	if (http_parser_parse_url(t, strlen(t), 0, &u) != 0)
		return false;
	if ((u.field_set & (1 << UF_SCHEMA)) == 0 ||
	    (u.field_set & (1 << UF_HOST)) == 0 ||
	    (u.field_set & (1 << UF_USERINFO)) != 0)
		return false;

	len = u.field_data[UF_SCHEMA].len;
	off = u.field_data[UF_SCHEMA].off;
	if (len >= sizeof(m->scheme))
		return false;
	for (i = 0; i < len; i++) {
		m->scheme[i] = t[off + i];
		if (m->scheme[i] >= 'A' && m->scheme[i] <= 'Z')
			m->scheme[i] += 'a' - 'A';
	}
	m->scheme[len] = '\0';

	off = u.field_data[UF_HOST].off;
	if (!hostport_host(t + off, u.field_data[UF_HOST].len,
	    off > 0 && t[off - 1] == '[', m->host))
		return false;
	/* The port as Host and CONNECT read it: 1-5 digits, not 0. */
	if ((u.field_set & (1 << UF_PORT)) != 0 &&
	    !hostport_port(t + u.field_data[UF_PORT].off,
	    u.field_data[UF_PORT].len, &h->port))
		return false;

	/* Fragments were refused, so path and query run to the end. */
	if ((u.field_set & (1 << UF_PATH)) != 0)
		h->path = t + u.field_data[UF_PATH].off;
	else if ((u.field_set & (1 << UF_QUERY)) != 0)
		return false;
	else if (strcmp(h->method, "OPTIONS") == 0)
		/* The server itself, not its root (RFC 9112, 3.2.4). */
		h->path = "*";
	else
		h->path = "/";
	h->absolute_form = true;
	return true;
}

/* Work out where a request goes: CONNECT, origin- or absolute-form. */
static bool
http_target_parse(struct http_msg *m)
{
	struct http_head	*h = &m->head;
	const char		*host;
	char			 scratch[HOSTMATCH_NAME_MAX];
	uint16_t		 port;
	size_t			 i, nhost = 0;

	for (i = 0; i < h->nheaders; i++)
		if (strcasecmp(h->headers[i].name, "Host") == 0)
			nhost++;
	if (nhost > 1 || strchr(h->target, '#') != NULL)
		return false;
	if (h->is_connect)
		return http_hostport_parse(h->target, m->host, &h->port, true);
	/*
	 * RFC 9112 §3.2.2: an absolute URL wins over the Host header, which
	 * must still be valid (§3.2: a 400 otherwise), as it is elsewhere.
	 */
	if (h->target[0] != '/' && (strcmp(h->target, "*") != 0 ||
	    strcmp(h->method, "OPTIONS") != 0)) {
		if (!http_absolute_parse(m))
			return false;
		host = http_head_get(h, "Host");
		return host == NULL ||
		    http_hostport_parse(host, scratch, &port, false);
	}
	h->path = h->target;
	/*
	 * HTTP/1.0 may leave Host out: the host is then the connection's
	 * (a tunnel's, see conn_request), or there is none.
	 */
	if ((host = http_head_get(h, "Host")) == NULL)
		return h->http_minor == 0;
	return http_hostport_parse(host, m->host, &h->port, false);
}

/* The next element of a comma-separated list, without whitespace. */
static bool
http_list_next(const char **pp, const char **tok, size_t *toklen)
{
	const char	*p = *pp;
	size_t		 n;

	while (*p == ' ' || *p == '\t' || *p == ',')
		p++;
	if (*p == '\0') {
		*pp = p;
		return false;
	}
	n = strcspn(p, ",");
	*tok = p;
	*pp = p + n;
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	*toklen = n;
	return true;
}

/* Whether a comma-separated list names a token of tlen bytes (any case). */
static bool
http_list_has_n(const char *list, const char *token, size_t tlen)
{
	const char	*tok;
	size_t		 len;

	while (http_list_next(&list, &tok, &len))
		if (len == tlen && strncasecmp(tok, token, len) == 0)
			return true;
	return false;
}

/*
 * Whether name is target (lowercase, with '-') spelled with an '_' for a
 * '-': servers that map field names to variables (CGI, WSGI) read the two
 * alike.
 */
static bool
http_name_underscored(const char *name, const char *target)
{
	return strchr(name, '_') != NULL &&
	    http_name_like(name, strlen(name), target);
}

/*
 * The framing rules against request smuggling: Transfer-Encoding ends in
 * chunked (a request's is exactly "chunked"), never with Content-Length,
 * no other field name starts with it, and the parser must agree on
 * whether the body is chunked.
 */
static bool
http_framing_check(struct http_msg *m)
{
	struct http_head	*h = &m->head;
	const char		*v, *tok;
	size_t			 i, len, nte = 0, ntok = 0, ncl = 0, before;
	bool			 chunked = false;

	for (i = 0; i < h->nheaders; i++) {
		/* Framing another parser may see: refused. */
		if (http_name_underscored(h->headers[i].name,
		    "content-length") || http_name_underscored(
		    h->headers[i].name, "transfer-encoding"))
			return false;
		if (strcasecmp(h->headers[i].name, "Content-Length") == 0)
			ncl++;
		/*
		 * libhttp-parser marks a message as transfer-coded as soon as
		 * a field name begins with Transfer-Encoding, so a name such
		 * as Transfer-Encodingx frames differently in it and in
		 * any other parser: refused, like every ambiguous framing.
		 */
		if (strncasecmp(h->headers[i].name, "Transfer-Encoding",
		    17) == 0 && h->headers[i].name[17] != '\0')
			return false;
		if (strcasecmp(h->headers[i].name, "Transfer-Encoding") != 0)
			continue;
		nte++;
		v = h->headers[i].value;
		before = ntok;
		while (http_list_next(&v, &tok, &len)) {
			if (chunked)
				return false;
			chunked = len == 7 &&
			    strncasecmp(tok, "chunked", 7) == 0;
			ntok++;
		}
		/*
		 * A line without a coding, beside one with "chunked": a
		 * parser reading the first line alone sees no coding.
		 */
		if (ntok == before)
			return false;
	}
	if (nte == 0)
		return ncl <= 1 && (m->parser_flags & F_CHUNKED) == 0;
	if (ncl > 0 || ntok == 0)
		return false;
	if (h->dir == HTTP_DIR_REQUEST &&
	    (ntok != 1 || !chunked || h->http_minor == 0))
		return false;
	if (chunked != ((m->parser_flags & F_CHUNKED) != 0))
		return false;
	h->chunked = chunked;
	return true;
}

/* Fill in the head from the stored strings and check it. */
static bool
http_head_build(struct http_msg *m)
{
	struct http_head	*h = &m->head;
	http_parser		*p = &m->parser;
	size_t			 i;

	http_piece_end(m);
	memset(h, 0, sizeof(*h));
	m->host[0] = '\0';
	m->scheme[0] = '\0';
	h->dir = m->dir;
	h->http_major = p->http_major;
	h->http_minor = p->http_minor;
	h->method = "";
	h->target = "";
	h->scheme = m->scheme;
	h->host = m->host;
	h->path = "";
	h->reason = "";
	/* The parser lets spaces into names; a proxy must not. */
	for (i = 0; i < m->nfields; i++) {
		m->headers[i].name = m->store + m->fields[i].name;
		m->headers[i].value = m->fields[i].value == SIZE_MAX ? "" :
		    m->store + m->fields[i].value;
		if (!http_is_token(m->headers[i].name,
		    strlen(m->headers[i].name)))
			return false;
	}
	h->headers = m->headers;
	h->nheaders = m->nfields;
	if (h->http_major != 1 || !http_framing_check(m))
		return false;
	if ((m->parser_flags & F_CONTENTLENGTH) != 0) {
		h->has_content_length = true;
		h->content_length = m->content_length;
	}
	if (m->dir == HTTP_DIR_RESPONSE) {
		h->status = p->status_code;
		if (m->reason != SIZE_MAX)
			h->reason = m->store + m->reason;
		h->upgrade = h->status == 101;
		/* Three digits are not enough: RFC 9110 defines 100 to 599. */
		return h->status >= 100 && h->status <= 599;
	}
	if (m->url == SIZE_MAX || !http_is_target(m->store + m->url))
		return false;
	h->method = http_method_str((enum http_method)p->method);
	h->target = m->store + m->url;
	h->is_connect = p->method == HTTP_CONNECT;
	/* Upgrade is HTTP/1.1's: an HTTP/1.0 request offers nothing. */
	h->upgrade = m->parser_upgrade && !h->is_connect && h->http_minor > 0;
	return http_target_parse(m);
}

/* The head ended: check it, then let the parser decide on the body. */
static enum http_result
http_msg_head_done(struct http_msg *m)
{
	struct http_head	*h = &m->head;
	enum http_errno		 err;

	if (!http_head_build(m))
		return http_msg_fail(m, HTTP_ERR_BAD_REQUEST);

	/* The parser stopped on the head's final LF; hand it over again. */
	http_parser_pause(&m->parser, 0);
	(void)http_parser_execute(&m->parser, &http_settings, "\n", 1);
	err = HTTP_PARSER_ERRNO(&m->parser);
	if (err == HPE_PAUSED) {
		http_parser_pause(&m->parser, 0);
		m->state = h->upgrade && m->dir == HTTP_DIR_RESPONSE ?
		    HTTP_MSG_SWITCHED : HTTP_MSG_DONE;
		h->framing = HTTP_FRAMING_NONE;
	} else if (err != HPE_OK)
		return http_msg_fail(m, HTTP_ERR_BAD_REQUEST);
	else {
		m->state = HTTP_MSG_BODY;
		if (h->chunked)
			h->framing = HTTP_FRAMING_CHUNKED;
		else if (h->has_content_length)
			h->framing = HTTP_FRAMING_LENGTH;
		else
			h->framing = HTTP_FRAMING_CLOSE;
		http_lines_reset(&m->lines);
		if (h->chunked)
			m->lines.frame = FRAME_SIZE_FIRST;
		m->chunk_left = 0;
	}
	h->keep_alive = http_should_keep_alive(&m->parser) != 0;
	/*
	 * Chunks in an HTTP/1.0 response are faulty framing (RFC 9112,
	 * 6.1): the connection ends after it, whatever it says.
	 */
	if (h->dir == HTTP_DIR_RESPONSE && h->http_minor == 0 && h->chunked)
		h->keep_alive = false;
	m->head_valid = true;
	return HTTP_HEAD_COMPLETE;
}

struct http_msg *
http_msg_new(enum http_dir dir)
{
	struct http_msg	*m;

	m = xcalloc(1, sizeof(*m));
	m->dir = dir;
	http_parser_init(&m->parser,
	    dir == HTTP_DIR_REQUEST ? HTTP_REQUEST : HTTP_RESPONSE);
	m->parser.data = m;
	m->lines.request = dir == HTTP_DIR_REQUEST;
	m->lines.head = &m->head;
	http_msg_begin(m);
	return m;
}

void
http_msg_free(struct http_msg *m)
{
	if (m == NULL)
		return;
	free(m->store);
	free(m->fields);
	free(m->headers);
	free(m);
}

void
http_msg_trim(struct http_msg *m)
{
	/* Only between messages: a head or body in progress keeps them. */
	if (m->state == HTTP_MSG_BODY ||
	    (m->state == HTTP_MSG_HEAD && m->started))
		return;
	free(m->store);
	free(m->fields);
	free(m->headers);
	m->store = NULL;
	m->fields = NULL;
	m->headers = NULL;
	m->store_cap = 0;
	m->fields_cap = 0;
	m->nfields = 0;
	m->used = 0;
	m->url = SIZE_MAX;
	m->head_valid = false;
}

enum http_result
http_msg_feed_head(struct http_msg *m, const char *data, size_t len,
    size_t *consumed)
{
	size_t		 room, n, parsed;
	enum http_errno	 err;

	*consumed = 0;
	if (m->state == HTTP_MSG_DONE)
		http_msg_begin(m);
	if (m->state != HTTP_MSG_HEAD)
		return http_msg_fail(m, HTTP_ERR_BAD_REQUEST);
	/* Zero bytes would tell the parser the peer closed. */
	if (len == 0)
		return HTTP_NEED_MORE;

	room = HTTP_HEAD_MAX - m->head_len;
	/* Zero bytes would read as end of input: the limit is reached. */
	if (room == 0)
		return http_msg_fail(m, HTTP_ERR_HEAD_TOO_LARGE);
	n = len < room ? len : room;
	parsed = http_parser_execute(&m->parser, &http_settings, data, n);
	err = HTTP_PARSER_ERRNO(&m->parser);
	if (err == HPE_PAUSED)
		parsed++;
	else if (err != HPE_OK)
		return http_msg_fail(m, m->too_large ?
		    HTTP_ERR_HEAD_TOO_LARGE : HTTP_ERR_BAD_REQUEST);
	if (!http_lines_check(&m->lines, data, parsed))
		return http_msg_fail(m, HTTP_ERR_BAD_REQUEST);
	m->head_len += parsed;
	*consumed = parsed;
	if (err == HPE_PAUSED)
		return http_msg_head_done(m);
	if (n < len)
		return http_msg_fail(m, HTTP_ERR_HEAD_TOO_LARGE);
	return HTTP_NEED_MORE;
}

const struct http_head *
http_msg_head(const struct http_msg *m)
{
	return m->head_valid ? &m->head : NULL;
}

bool
http_msg_is_head_request(const struct http_msg *m)
{
	/* The target has begun: the method before it was read whole. */
	return m->dir == HTTP_DIR_REQUEST && m->url != SIZE_MAX &&
	    m->parser.method == HTTP_HEAD;
}

enum http_msg_state
http_msg_state(const struct http_msg *m)
{
	return m->state;
}

enum http_result
http_msg_feed_body(struct http_msg *m, const char *data, size_t len,
    size_t *consumed)
{
	size_t		 parsed;
	enum http_errno	 err;

	*consumed = 0;
	if (m->state == HTTP_MSG_DONE || m->state == HTTP_MSG_SWITCHED)
		return HTTP_BODY_COMPLETE;
	if (m->state != HTTP_MSG_BODY)
		return http_msg_fail(m, HTTP_ERR_BAD_REQUEST);
	if (len == 0)
		return HTTP_NEED_MORE;

	m->frame_from = m->head.chunked ? data : NULL;
	parsed = http_parser_execute(&m->parser, &http_settings, data, len);
	err = HTTP_PARSER_ERRNO(&m->parser);
	if (err != HPE_OK && err != HPE_PAUSED)
		return http_msg_fail(m, HTTP_ERR_BAD_REQUEST);
	if (m->frame_from != NULL && !http_lines_check(&m->lines,
	    m->frame_from, (size_t)(data + parsed - m->frame_from)))
		return http_msg_fail(m, HTTP_ERR_BAD_REQUEST);
	m->frame_from = NULL;
	*consumed = parsed;
	if (err == HPE_PAUSED) {
		http_parser_pause(&m->parser, 0);
		m->state = HTTP_MSG_DONE;
		return HTTP_BODY_COMPLETE;
	}
	return HTTP_NEED_MORE;
}

enum http_result
http_msg_feed_eof(struct http_msg *m)
{
	switch (m->state) {
	case HTTP_MSG_HEAD:
		if (m->started)
			return http_msg_fail(m, HTTP_ERR_BAD_REQUEST);
		return HTTP_NEED_MORE;
	case HTTP_MSG_BODY:
		(void)http_parser_execute(&m->parser, &http_settings, NULL, 0);
		if (HTTP_PARSER_ERRNO(&m->parser) != HPE_PAUSED)
			return http_msg_fail(m, HTTP_ERR_BAD_REQUEST);
		http_parser_pause(&m->parser, 0);
		m->state = HTTP_MSG_DONE;
		return HTTP_BODY_COMPLETE;
	case HTTP_MSG_DONE:
	case HTTP_MSG_SWITCHED:
		return HTTP_NEED_MORE;
	case HTTP_MSG_FAILED:
		break;
	}
	return HTTP_ERR_BAD_REQUEST;
}

void
http_msg_expect_no_body(struct http_msg *m)
{
	m->no_body_next = true;
}

void
http_msg_decode_body(struct http_msg *m, struct evbuffer *sink)
{
	m->sink = sink;
}

const char *
http_head_get(const struct http_head *h, const char *name)
{
	size_t	 i;

	for (i = 0; i < h->nheaders; i++)
		if (strcasecmp(h->headers[i].name, name) == 0)
			return h->headers[i].value;
	return NULL;
}

char *
http_head_list(const struct http_head *h, const char *name)
{
	char	*list = NULL, *joined;
	size_t	 i;

	for (i = 0; i < h->nheaders; i++) {
		if (strcasecmp(h->headers[i].name, name) != 0)
			continue;
		if (list == NULL)
			list = xstrdup(h->headers[i].value);
		else {
			joined = xasprintf("%s, %s", list, h->headers[i].value);
			free(list);
			list = joined;
		}
	}
	return list;
}

long
http_max_forwards(const struct http_head *h)
{
	const char	*p;
	long		 n, least = -1;
	size_t		 i;

	if (strcmp(h->method, "TRACE") != 0 &&
	    strcmp(h->method, "OPTIONS") != 0)
		return -1;
	for (i = 0; i < h->nheaders; i++) {
		if (strcasecmp(h->headers[i].name, "Max-Forwards") != 0)
			continue;
		p = h->headers[i].value;
		if (*p == '\0')
			return -1;
		for (n = 0; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			/* Past the maximum, the digits no longer count. */
			if (n <= HTTP_MAX_FORWARDS_MAX)
				n = n * 10 + (*p - '0');
		}
		if (n > HTTP_MAX_FORWARDS_MAX)
			n = HTTP_MAX_FORWARDS_MAX + 1;
		if (least == -1 || n < least)
			least = n;
	}
	return least;
}

/* Fields a TRACE's echo leaves out: they carry credentials. */
static bool
http_is_credential(const char *name)
{
	size_t	 len = strlen(name);

	/* With '_' for '-' too, as the hop-by-hop names. */
	return http_name_like(name, len, "authorization") ||
	    http_name_like(name, len, "proxy-authorization") ||
	    http_name_like(name, len, "cookie");
}

int
http_final_answer(const struct http_head *h, enum http_conn_token conn,
    struct evbuffer *out)
{
	struct evbuffer	*echo = NULL;
	size_t		 i;

	/* The echo is made first, so that its length is what it is. */
	if (strcmp(h->method, "TRACE") == 0) {
		echo = evbuffer_new();
		evbuffer_add_printf(echo, "%s %s HTTP/%u.%u\r\n", h->method,
		    h->target, h->http_major, h->http_minor);
		for (i = 0; i < h->nheaders; i++)
			if (!http_is_credential(h->headers[i].name))
				evbuffer_add_printf(echo, "%s: %s\r\n",
				    h->headers[i].name, h->headers[i].value);
		evbuffer_add(echo, "\r\n", 2);
	}
	evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\n%sContent-Length: "
	    "%zu\r\n%s\r\n", echo != NULL ? "Content-Type: message/http\r\n" :
	    "", echo != NULL ? evbuffer_get_length(echo) : 0,
	    conn == HTTP_CONN_CLOSE ? "Connection: close\r\n" :
	    conn == HTTP_CONN_KEEP_ALIVE ? "Connection: keep-alive\r\n" : "");
	if (echo != NULL) {
		evbuffer_add_buffer(out, echo);
		evbuffer_free(echo);
	}
	return 200;
}

/*
 * Whether h is a request whose Expect fields count and go upstream: RFC
 * 9110 10.1.1 has an HTTP/1.0 request's ignored, and Connection may name
 * them for this hop only.
 */
static bool
http_expect_forwarded(const struct http_head *h)
{
	return h->dir == HTTP_DIR_REQUEST && h->http_minor > 0 &&
	    !http_connection_lists(h, "expect", strlen("expect"));
}

bool
http_expects_continue(const struct http_head *h)
{
	size_t	 i, n = 0;
	bool	 plain = false;

	if (!http_expect_forwarded(h))
		return false;
	for (i = 0; i < h->nheaders; i++) {
		if (strcasecmp(h->headers[i].name, "Expect") != 0)
			continue;
		n++;
		plain = strcasecmp(h->headers[i].value, "100-continue") == 0;
	}
	return n == 1 && plain;
}

bool
http_expect_names_continue(const struct http_head *h)
{
	char		*list;
	const char	*p, *tok;
	size_t		 len;
	bool		 found = false;

	if (!http_expect_forwarded(h) ||
	    (list = http_head_list(h, "Expect")) == NULL)
		return false;
	p = list;
	while (!found && http_list_next(&p, &tok, &len))
		found = len == strlen("100-continue") &&
		    strncasecmp(tok, "100-continue", len) == 0;
	free(list);
	return found;
}

bool
http_upgrade_offered(const char *offered, const char *chosen)
{
	const char	*tok;
	size_t		 len;
	bool		 any = false;

	if (offered == NULL || chosen == NULL)
		return false;
	while (http_list_next(&chosen, &tok, &len)) {
		if (!http_list_has_n(offered, tok, len))
			return false;
		any = true;
	}
	return any;
}

/*
 * Whether a header stays on this hop: the fixed list and whatever
 * Connection names, except the framing headers of a body forwarded as is
 * (Transfer-Encoding goes to an HTTP/1.0 client, http10), and Upgrade
 * when the connection is being upgraded.
 */
static bool
http_is_hop_by_hop(const struct http_head *h, const char *name,
    bool keep_upgrade, bool http10)
{
	size_t	 i;

	if (strcasecmp(name, "Transfer-Encoding") == 0)
		return http10;
	if (strcasecmp(name, "Content-Length") == 0)
		return false;
	if (keep_upgrade && strcasecmp(name, "Upgrade") == 0)
		return false;
	/* With '_' for '-' too: CGI and WSGI servers read them alike. */
	for (i = 0; i < HTTP_NITEMS(http_hop_by_hop_names); i++)
		if (http_name_like(name, strlen(name), http_hop_by_hop_names[i]))
			return true;
	return http_connection_lists(h, name, strlen(name));
}

/* Whether a Connection field of h names the field name of len bytes. */
static bool
http_connection_lists(const struct http_head *h, const char *name,
    size_t len)
{
	const char	*list, *tok;
	size_t		 i, toklen;

	for (i = 0; i < h->nheaders; i++) {
		if (strcasecmp(h->headers[i].name, "Connection") != 0)
			continue;
		list = h->headers[i].value;
		while (http_list_next(&list, &tok, &toklen))
			if (http_names_alike(tok, toklen, name, len))
				return true;
	}
	return false;
}

/* Append one element to a list, after ", " unless it is the first. */
static void
http_list_put(struct evbuffer *list, const char *tok, size_t len)
{
	/* No coding at all (RFC 9110, 8.4.1): nothing to name. */
	if (len == 8 && strncasecmp(tok, "identity", 8) == 0)
		return;
	if (evbuffer_get_length(list) > 0)
		evbuffer_add(list, ", ", 2);
	evbuffer_add(list, tok, len);
}

/*
 * Append the elements of value (NULL ok) to list, all but its last with
 * but_last; empty elements are left out. One pass, whatever their number.
 */
static void
http_list_add(struct evbuffer *list, const char *value, bool but_last)
{
	const char	*p = value, *tok, *held = NULL;
	size_t		 len, heldlen = 0;

	while (value != NULL && http_list_next(&p, &tok, &len)) {
		if (held != NULL)
			http_list_put(list, held, heldlen);
		held = tok;
		heldlen = len;
	}
	if (held != NULL && !but_last)
		http_list_put(list, held, heldlen);
}

/*
 * For an HTTP/1.0 client, which knows no transfer coding, the
 * Content-Encoding it must see into ce: its own (unless a Connection
 * header makes it hop-by-hop), then the transfer codings but a last
 * chunked, which the caller decodes: what the body still carries ("gzip,
 * chunked", or "gzip" that the close ends), which HTTP/1.0 knows only as
 * content codings. False when there are none of those.
 */
static bool
http_10_encoding(const struct http_head *h, struct evbuffer *ce)
{
	char	*te, *own = NULL;
	size_t	 before;

	/* A 1xx or a 204 goes without either (http_bodiless_framing()). */
	if (h->status / 100 == 1 || h->status == 204)
		return false;
	if ((te = http_head_list(h, "Transfer-Encoding")) == NULL)
		return false;
	if (!http_is_hop_by_hop(h, "Content-Encoding", false, true))
		own = http_head_list(h, "Content-Encoding");
	http_list_add(ce, own, false);
	before = evbuffer_get_length(ce);
	http_list_add(ce, te, h->chunked);
	free(own);
	free(te);
	return evbuffer_get_length(ce) > before;
}

/*
 * A field that announces content a response cannot have (RFC 9110 §8.6,
 * RFC 9112 §6.1: none in a 1xx or a 204): a client that believed it would
 * take the start of what follows, its final response, for that content.
 */
static bool
http_bodiless_framing(const struct http_head *h, const char *name)
{
	return h->status != 0 && (h->status < 200 || h->status == 204) &&
	    (strcasecmp(name, "Content-Length") == 0 ||
	    strcasecmp(name, "Transfer-Encoding") == 0);
}

/*
 * Append the end-to-end headers, and Connection: upgrade if upgrading; a
 * request's without Host and the Max-Forwards its writer decrements.
 */
static void
http_headers_write(const struct http_head *h, bool upgrade, bool request,
    bool http10, struct evbuffer *out)
{
	const struct http_header	*f;
	struct evbuffer			*ce = NULL;
	size_t				 i;

	if (http10 && !http_10_encoding(h, (ce = evbuffer_new()))) {
		evbuffer_free(ce);
		ce = NULL;
	}
	for (i = 0; i < h->nheaders; i++) {
		f = &h->headers[i];
		if (request && strcasecmp(f->name, "Host") == 0)
			continue;
		/* Written one less by http_request_write(). */
		if (request && strcasecmp(f->name, "Max-Forwards") == 0 &&
		    http_max_forwards(h) > 0)
			continue;
		if (http_is_hop_by_hop(h, f->name, upgrade, http10) ||
		    http_bodiless_framing(h, f->name))
			continue;
		/* Written below, with the codings applied after it. */
		if (ce != NULL && strcasecmp(f->name, "Content-Encoding") == 0)
			continue;
		/*
		 * The framing as parsed, not as spelled ("0010", "CHUNKED"):
		 * a server that reads a length in another base, or a coding's
		 * name case-sensitively, would else frame the body otherwise.
		 */
		if (h->has_content_length &&
		    strcasecmp(f->name, "Content-Length") == 0) {
			evbuffer_add_printf(out, "%s: %llu\r\n", f->name,
			    (unsigned long long)h->content_length);
			continue;
		}
		if (request && h->chunked &&
		    strcasecmp(f->name, "Transfer-Encoding") == 0) {
			evbuffer_add_printf(out, "%s: chunked\r\n", f->name);
			continue;
		}
		evbuffer_add_printf(out, "%s: %s\r\n", f->name, f->value);
	}
	if (ce != NULL) {
		evbuffer_add(out, "Content-Encoding: ", 18);
		evbuffer_add_buffer(out, ce);
		evbuffer_add(out, "\r\n", 2);
		evbuffer_free(ce);
	}
	if (upgrade)
		evbuffer_add_printf(out, "Connection: upgrade\r\n");
}

bool
http_upgrade_only(const struct http_head *h, const char *proto)
{
	char		*list;
	const char	*p, *tok;
	size_t		 len;
	bool		 only = false;

	if (!h->upgrade || (list = http_head_list(h, "Upgrade")) == NULL)
		return false;
	p = list;
	while (http_list_next(&p, &tok, &len)) {
		only = len == strlen(proto) && strncasecmp(tok, proto, len) == 0;
		if (!only)
			break;
	}
	free(list);
	return only;
}

void
http_request_write(const struct http_head *h, bool upgrade, const char *host,
    uint16_t port, bool tls, const char *via, struct evbuffer *out)
{
	long	 hops;

	evbuffer_add_printf(out, "%s %s HTTP/1.1\r\n", h->method, h->path);
	if (strchr(host, ':') != NULL)
		evbuffer_add_printf(out, "Host: [%s]", host);
	else
		evbuffer_add_printf(out, "Host: %s", host);
	if (port != 0 && port != (tls ? 443 : 80))
		evbuffer_add_printf(out, ":%u", (unsigned int)port);
	evbuffer_add_printf(out, "\r\n");
	http_headers_write(h, upgrade && h->upgrade, true, false, out);
	/* Not when Connection names it: then it was for this hop only. */
	if ((hops = http_max_forwards(h)) > 0 &&
	    !http_is_hop_by_hop(h, "Max-Forwards", false, false))
		evbuffer_add_printf(out, "Max-Forwards: %ld\r\n", hops - 1);
	if (via != NULL)
		evbuffer_add_printf(out, "Via: %s\r\n", via);
	evbuffer_add_printf(out, "\r\n");
}

void
http_response_write(const struct http_head *h, enum http_conn_token conn,
    bool http10, const char *via, struct evbuffer *out)
{
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", h->status, h->reason);
	http_headers_write(h, h->status == 101, false, http10, out);
	if (via != NULL)
		evbuffer_add_printf(out, "Via: %s\r\n", via);
	if (h->status != 101 && conn == HTTP_CONN_CLOSE)
		evbuffer_add_printf(out, "Connection: close\r\n");
	else if (h->status != 101 && conn == HTTP_CONN_KEEP_ALIVE)
		evbuffer_add_printf(out, "Connection: keep-alive\r\n");
	evbuffer_add_printf(out, "\r\n");
}

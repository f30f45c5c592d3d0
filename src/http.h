/*
 * HTTP/1.1 message framing over libhttp-parser: parses the heads of one
 * direction of a connection with the limits and request-smuggling rules of
 * a proxy, tracks where each body ends so bodies can be forwarded verbatim
 * (or decoded, for an HTTP/1.0 peer), and writes the heads that go on with
 * hop-by-hop headers removed.
 */
#ifndef PINPROXY_HTTP_H
#define PINPROXY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* The largest head accepted, from the first byte to the empty line. */
#define HTTP_HEAD_MAX		16384
/* The most header fields a head may carry. */
#define HTTP_HEADERS_MAX	100
/*
 * The longest chunk-size line, extensions included; the trailer section
 * may be as long as a head.
 */
#define HTTP_CHUNK_LINE_MAX	4096

/* Which side of a connection a parser reads. */
enum http_dir {
	HTTP_DIR_REQUEST,
	HTTP_DIR_RESPONSE
};

/* The outcome of feeding bytes to a parser. */
enum http_result {
	HTTP_NEED_MORE,		/* every byte taken; the head or body goes on */
	HTTP_HEAD_COMPLETE,	/* the head ended; the body starts after it */
	HTTP_BODY_COMPLETE,	/* the message ended */
	HTTP_ERR_BAD_REQUEST,	/* malformed message or bad framing */
	HTTP_ERR_HEAD_TOO_LARGE	/* head over HTTP_HEAD_MAX or too many fields */
};

/* Where a parser stands. */
enum http_msg_state {
	HTTP_MSG_HEAD,		/* reading a head (or waiting for one) */
	HTTP_MSG_BODY,		/* reading the body of the current message */
	HTTP_MSG_DONE,		/* the message ended; a next head may follow */
	HTTP_MSG_SWITCHED,	/* a 101 response: the rest is not HTTP */
	HTTP_MSG_FAILED		/* an error was returned: close the link */
};

/* How the body of a message is delimited. */
enum http_framing {
	HTTP_FRAMING_NONE,	/* no body */
	HTTP_FRAMING_LENGTH,	/* Content-Length bytes */
	HTTP_FRAMING_CHUNKED,	/* chunked, up to the last chunk and trailers */
	HTTP_FRAMING_CLOSE	/* a response body up to the peer's close */
};

/* What a response head tells the client about its connection. */
enum http_conn_token {
	HTTP_CONN_PERSIST,	/* nothing: persistent in HTTP/1.1 */
	HTTP_CONN_CLOSE,	/* "Connection: close" */
	HTTP_CONN_KEEP_ALIVE	/* "Connection: keep-alive", for HTTP/1.0 */
};

/* One header field as received, names in their original case. */
struct http_header {
	const char	*name;
	const char	*value;		/* without surrounding whitespace */
};

/*
 * A parsed head; every pointer is owned by the parser and stays valid until
 * the next head starts or the parser is freed.
 */
struct http_head {
	enum http_dir		 dir;
	unsigned short		 http_major;
	unsigned short		 http_minor;

	/* Requests. */
	const char		*method;	/* "GET", "CONNECT", ... */
	const char		*target;	/* the request target as sent */
	bool			 absolute_form;	/* "http://host/path" */
	bool			 is_connect;	/* "CONNECT host:port" */
	const char		*scheme;	/* lower case, absolute-form */
	/*
	 * Lower case, no port, no []; empty only for an HTTP/1.0
	 * origin-form request without Host (the connection's host, or none).
	 */
	const char		*host;
	uint16_t		 port;		/* from URL or Host; 0 unset */
	const char		*path;		/* origin-form path and query */

	/* Responses. */
	int			 status;
	const char		*reason;

	const struct http_header *headers;
	size_t			 nheaders;

	bool			 keep_alive;	/* more messages may follow */
	bool			 upgrade;	/* 1.1 Upgrade request; 101 */
	bool			 chunked;
	bool			 has_content_length;
	uint64_t		 content_length;
	enum http_framing	 framing;
};

struct http_msg;

/* A parser for the messages of one direction of a connection. */
struct http_msg		*http_msg_new(enum http_dir dir);
/* Free a parser (NULL is fine). */
void			 http_msg_free(struct http_msg *m);
/*
 * Feed bytes of a head. *consumed is how many belong to it; on
 * HTTP_HEAD_COMPLETE the body (or the next message) starts right after.
 * Starts a new message when the previous one is done. After a CONNECT or
 * an Upgrade request, feed nothing more until the answer says it is HTTP.
 */
enum http_result	 http_msg_feed_head(struct http_msg *m,
			    const char *data, size_t len, size_t *consumed);
/* The head of the current message, or NULL while it is being read. */
const struct http_head	*http_msg_head(const struct http_msg *m);
/*
 * Whether the request being read, or last read, is a HEAD: known from
 * its start line on, so that an answer to a head that failed (too large,
 * bad framing) is still the head alone.
 */
bool			 http_msg_is_head_request(const struct http_msg *m);
/* Where the parser stands. */
enum http_msg_state	 http_msg_state(const struct http_msg *m);
/*
 * Feed body bytes: *consumed of them belong to the current message and are
 * to be forwarded verbatim. Returns HTTP_BODY_COMPLETE when the message
 * ended (at once for a message without a body), HTTP_NEED_MORE when the
 * body goes on, HTTP_ERR_BAD_REQUEST on bad framing.
 */
enum http_result	 http_msg_feed_body(struct http_msg *m,
			    const char *data, size_t len, size_t *consumed);
/*
 * The peer closed: HTTP_BODY_COMPLETE when that ended a close-delimited
 * body, HTTP_NEED_MORE when it came between messages, HTTP_ERR_BAD_REQUEST
 * when it cut a message short.
 */
enum http_result	 http_msg_feed_eof(struct http_msg *m);
/*
 * Between messages, give back the memory of the last head (its strings
 * are gone: http_msg_head() returns NULL until the next one); an idle
 * keep-alive connection then costs little. Does nothing mid-message.
 */
void			 http_msg_trim(struct http_msg *m);
/* A response parser: the next final response answers HEAD, so no body. */
void			 http_msg_expect_no_body(struct http_msg *m);
/*
 * Append the body of the current message, as http_msg_feed_body() reads
 * it, to sink (borrowed; NULL stops) without chunk framing or trailers;
 * the caller then drains the bytes consumed instead of forwarding them.
 * A new message starts with this off.
 */
void			 http_msg_decode_body(struct http_msg *m,
			    struct evbuffer *sink);

/* The value of the first header called name (any case), or NULL. */
const char		*http_head_get(const struct http_head *h,
			    const char *name);
/*
 * The values of every header called name (any case) joined with ", ", as
 * one list the caller frees; NULL when there is none.
 */
char			*http_head_list(const struct http_head *h,
			    const char *name);
/*
 * Whether a method is idempotent (RFC 9110 9.2.2: GET, HEAD, OPTIONS,
 * TRACE, PUT, DELETE), the only requests a proxy may send again on its own.
 */
bool			 http_method_idempotent(const char *method);
/*
 * RFC 9110, 7.6.2: the Max-Forwards of a TRACE or OPTIONS request, which
 * a proxy answers itself at 0 and decrements otherwise: the least of its
 * fields, a value above HTTP_MAX_FORWARDS_MAX counting as that plus one
 * (it goes on as the maximum); -1 for another method, or when the field
 * is missing or one is not 1*DIGIT (such a request goes on as it came).
 */
#define HTTP_MAX_FORWARDS_MAX	1000000000L
long			 http_max_forwards(const struct http_head *h);
/*
 * Append pinproxy's own answer to a TRACE or OPTIONS request whose
 * Max-Forwards is 0 to out: for OPTIONS a 200 without content, for TRACE
 * a 200 whose content (message/http) is the request's head as parsed
 * (values without the blanks around them), less the fields that carry
 * credentials (RFC 9110, 9.3.8), '_' for '-' too; with the
 * Connection field conn says. Returns the status.
 */
int			 http_final_answer(const struct http_head *h,
			    enum http_conn_token conn, struct evbuffer *out);
/* Whether c may be part of an RFC 9110 token (a method, a field name). */
bool			 http_is_tchar(unsigned char c);
/*
 * Whether a lenient server may take c for whitespace between request-line
 * words, or for an empty line before one: RFC 9112's (SP, HTAB, VT, FF,
 * CR, LF), and what a server that splits the line as Latin-1 text with
 * Python's str.split() also splits on.
 */
bool			 http_is_split_space(unsigned char c);
/*
 * Whether an HTTP/1.1 request has one Expect header, 100-continue (any
 * case), which goes upstream (its Connection does not name it): its
 * client may wait for a 100 (Continue) before its body, and every server
 * sees what it waits for. Other lists of expectations, which servers
 * read differently, count for nothing.
 */
bool			 http_expects_continue(const struct http_head *h);
/*
 * Whether an HTTP/1.1 request's Expect fields name 100-continue at all,
 * in any list or number of fields, and go upstream: its client may wait
 * for the 100, and one its server sends is passed on.
 */
bool			 http_expect_names_continue(const struct http_head *h);
/*
 * Whether a 101's Upgrade list (chosen) names at least one protocol and
 * only protocols of the request's Upgrade list (offered), in any case;
 * false when either is NULL.
 */
bool			 http_upgrade_offered(const char *offered,
			    const char *chosen);
/*
 * Append a request head for an upstream: origin-form request line, a Host
 * header naming host (with port unless 0 or the default of the scheme, 443
 * when tls, else 80), the headers that are not hop-by-hop (Upgrade and
 * Connection: upgrade only with upgrade, for a request that offers one),
 * Max-Forwards one less where http_max_forwards() reads one, and a Via
 * header with the value via (NULL for none) after the client's own.
 */
void			 http_request_write(const struct http_head *h,
			    bool upgrade, const char *host, uint16_t port,
			    bool tls, const char *via, struct evbuffer *out);
/* Whether h offers an Upgrade to proto alone (any case, one or more). */
bool			 http_upgrade_only(const struct http_head *h,
			    const char *proto);
/*
 * Append a response head for the client without the hop-by-hop headers,
 * with a Via header of via (none when NULL) after the server's own, and
 * the Connection header conn says (ignored for a 101). With http10 (the
 * client is HTTP/1.0), without Transfer-Encoding: its codings but a last
 * chunked, which the caller decodes, go as Content-Encoding.
 */
void			 http_response_write(const struct http_head *h,
			    enum http_conn_token conn, bool http10,
			    const char *via, struct evbuffer *out);

#endif

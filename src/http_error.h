/*
 * The error replies of SPEC §3: one table giving each failure its status,
 * reason phrase and RFC 9209 Proxy-Status error type and details code, and
 * the complete plain-text responses built from it.
 */
#ifndef PINPROXY_HTTP_ERROR_H
#define PINPROXY_HTTP_ERROR_H

#include <stdbool.h>

struct evbuffer;

/* Every failure answered over HTTP, one row of the SPEC §3 table each. */
enum http_error_kind {
	HTTP_ERROR_PIN_MISMATCH,
	HTTP_ERROR_PIN_DENIED,
	HTTP_ERROR_VERIFY_FAILED,
	HTTP_ERROR_TLS_FAILED,
	HTTP_ERROR_DNS_FAILED,
	HTTP_ERROR_CONNECT_FAILED,
	HTTP_ERROR_TIMEOUT,
	HTTP_ERROR_READ_TIMEOUT,
	HTTP_ERROR_BLOCKED,
	HTTP_ERROR_PORT_DENIED,
	HTTP_ERROR_CLIENT_DENIED,
	HTTP_ERROR_BAD_REQUEST,
	HTTP_ERROR_HEADER_TOO_LARGE,
	HTTP_ERROR_HEADER_TIMEOUT,
	HTTP_ERROR_LOOP,
	HTTP_ERROR_BAD_RESPONSE,
	HTTP_ERROR_PLAIN_PORT_DENIED,
	HTTP_ERROR_ADDR_PINNED,
	HTTP_ERROR_STOPPING,
	HTTP_ERROR__COUNT
};

/*
 * Append a complete response for kind: status line, Proxy-Status and the
 * other headers, and a body naming host (NULL when unknown) and the reason,
 * followed by explanation (NULL or lines of text, e.g. the pins seen).
 * Control bytes in host and explanation, but newlines in explanation, are
 * replaced by '?'. head_only (the answer to a HEAD): the head alone, its
 * Content-Length still the body's.
 */
void		 http_error_write(struct evbuffer *out,
		    enum http_error_kind kind, const char *host,
		    const char *explanation, bool head_only);
/* The status code of kind, e.g. 502. */
int		 http_error_status(enum http_error_kind kind);
/* The reason phrase of kind, e.g. "Bad Gateway". */
const char	*http_error_reason(enum http_error_kind kind);
/* The Proxy-Status error type of kind, e.g. "tls_certificate_error". */
const char	*http_error_type(enum http_error_kind kind);
/* The Proxy-Status details code of kind, e.g. "pin-mismatch". */
const char	*http_error_details(enum http_error_kind kind);

#endif

/*
 * The SPEC §3 error table and the responses built from it. Bodies are
 * short plain text for a person: what failed, for which host, and the
 * caller's explanation, with bytes from the network made harmless.
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include <event2/buffer.h>

#include "http_error.h"

struct http_error_def {
	int		 status;
	const char	*reason;
	const char	*type;
	const char	*details;
	const char	*summary;
};

static const struct http_error_def http_errors[HTTP_ERROR__COUNT] = {
	[HTTP_ERROR_PIN_MISMATCH] = { 502, "Bad Gateway",
	    "tls_certificate_error", "pin-mismatch",
	    "the server's certificate chain matches none of the pinned keys" },
	[HTTP_ERROR_PIN_DENIED] = { 502, "Bad Gateway",
	    "tls_certificate_error", "pin-denied",
	    "the server's certificate chain holds a key that deny_pin or "
	    "deny_file refuses" },
	[HTTP_ERROR_VERIFY_FAILED] = { 502, "Bad Gateway",
	    "tls_certificate_error", "verify-failed",
	    "the server's certificate chain or host name failed verification" },
	[HTTP_ERROR_TLS_FAILED] = { 502, "Bad Gateway",
	    "tls_protocol_error", "tls-failed",
	    "the TLS handshake with the server failed" },
	[HTTP_ERROR_DNS_FAILED] = { 502, "Bad Gateway",
	    "dns_error", "dns-failed",
	    "the host name could not be resolved" },
	[HTTP_ERROR_CONNECT_FAILED] = { 502, "Bad Gateway",
	    "connection_refused", "connect-failed",
	    "the server refused the connection or is unreachable" },
	[HTTP_ERROR_TIMEOUT] = { 504, "Gateway Timeout",
	    "connection_timeout", "timeout",
	    "the server was not ready within connect_timeout" },
	[HTTP_ERROR_READ_TIMEOUT] = { 504, "Gateway Timeout",
	    "connection_read_timeout", "timeout",
	    "the server sent no response (or took no more of the request) "
	    "within idle_timeout" },
	[HTTP_ERROR_BLOCKED] = { 403, "Forbidden",
	    "http_request_denied", "blocked",
	    "no pin set covers the host and unpinned = block" },
	[HTTP_ERROR_PORT_DENIED] = { 403, "Forbidden",
	    "http_request_denied", "port-denied",
	    "CONNECT to this port is not allowed by connect_ports" },
	[HTTP_ERROR_CLIENT_DENIED] = { 403, "Forbidden",
	    "http_request_denied", "client-denied",
	    "the client address is not in allow_clients" },
	[HTTP_ERROR_BAD_REQUEST] = { 400, "Bad Request",
	    "http_request_error", "bad-request",
	    "the request is malformed or its body framing is ambiguous" },
	[HTTP_ERROR_HEADER_TOO_LARGE] = { 431,
	    "Request Header Fields Too Large",
	    "http_request_error", "header-too-large",
	    "the request head is larger than 16 KiB or has too many fields" },
	[HTTP_ERROR_HEADER_TIMEOUT] = { 408, "Request Timeout",
	    "http_request_error", "header-timeout",
	    "no complete request head arrived within header_timeout" },
	[HTTP_ERROR_LOOP] = { 508, "Loop Detected",
	    "proxy_loop_detected", "loop",
	    "the request is addressed to pinproxy itself" },
	[HTTP_ERROR_BAD_RESPONSE] = { 502, "Bad Gateway",
	    "http_protocol_error", "bad-response",
	    "the server's answer is not a valid HTTP/1.1 response to the "
	    "request" },
	[HTTP_ERROR_PLAIN_PORT_DENIED] = { 403, "Forbidden",
	    "http_request_denied", "port-denied",
	    "plaintext requests to this port are not allowed by plain_ports" },
	[HTTP_ERROR_ADDR_PINNED] = { 403, "Forbidden",
	    "http_request_denied", "address-pinned",
	    "the host name resolves to an address that a pin set other than "
	    "the name's covers" },
	[HTTP_ERROR_STOPPING] = { 503, "Service Unavailable",
	    "proxy_internal_response", "stopping",
	    "pinproxy is stopping, and starts no tunnel or protocol switch "
	    "any more" }
};

/* The row of kind; an unknown kind is answered as a bad request. */
static const struct http_error_def *
http_error_def(enum http_error_kind kind)
{
	if ((unsigned int)kind >= HTTP_ERROR__COUNT)
		kind = HTTP_ERROR_BAD_REQUEST;
	return &http_errors[kind];
}

/* Append s with control bytes (newlines too, unless kept) replaced. */
static void
http_error_add_clean(struct evbuffer *b, const char *s, bool keep_newlines)
{
	size_t		 run;
	unsigned char	 c;

	while (*s != '\0') {
		for (run = 0; (c = (unsigned char)s[run]) != '\0'; run++)
			if ((c < 0x20 && !(c == '\n' && keep_newlines)) ||
			    c == 0x7f)
				break;
		evbuffer_add(b, s, run);
		s += run;
		if (*s != '\0') {
			evbuffer_add(b, "?", 1);
			s++;
		}
	}
}

void
http_error_write(struct evbuffer *out, enum http_error_kind kind,
    const char *host, const char *explanation, bool head_only)
{
	static const char		 lead[] =
	    "pinproxy could not forward the request";
	const struct http_error_def	*e = http_error_def(kind);
	size_t				 len;
	bool				 has_host, has_text, add_newline;

	/* Cleaning replaces byte for byte, so the length is known first. */
	has_host = host != NULL && *host != '\0';
	has_text = explanation != NULL && *explanation != '\0';
	add_newline = has_text &&
	    explanation[strlen(explanation) - 1] != '\n';
	len = strlen(lead) + strlen(": ") + strlen(e->summary) + strlen(".\n");
	if (has_host)
		len += strlen(" to ") + strlen(host);
	if (has_text)
		len += strlen(explanation) + (add_newline ? 1 : 0);

	evbuffer_add_printf(out,
	    "HTTP/1.1 %d %s\r\n"
	    "Proxy-Status: pinproxy; error=%s; details=\"%s\"\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Length: %zu\r\n"
	    "Connection: close\r\n"
	    "Cache-Control: no-store\r\n"
	    "\r\n",
	    e->status, e->reason, e->type, e->details, len);
	if (head_only)
		return;
	evbuffer_add_printf(out, "%s", lead);
	if (has_host) {
		evbuffer_add_printf(out, " to ");
		http_error_add_clean(out, host, false);
	}
	evbuffer_add_printf(out, ": %s.\n", e->summary);
	if (has_text) {
		http_error_add_clean(out, explanation, true);
		if (add_newline)
			evbuffer_add(out, "\n", 1);
	}
}

int
http_error_status(enum http_error_kind kind)
{
	return http_error_def(kind)->status;
}

const char *
http_error_reason(enum http_error_kind kind)
{
	return http_error_def(kind)->reason;
}

const char *
http_error_type(enum http_error_kind kind)
{
	return http_error_def(kind)->type;
}

const char *
http_error_details(enum http_error_kind kind)
{
	return http_error_def(kind)->details;
}

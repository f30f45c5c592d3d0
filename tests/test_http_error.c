/*
 * Tests of the SPEC §3 error replies: every row of the table, the exact
 * response bytes, and the cleaning of text that came from the network.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "http_error.h"

/* The response written for kind, as a string the caller frees. */
static char *
error_response(enum http_error_kind kind, const char *host,
    const char *explanation)
{
	struct evbuffer	*out = evbuffer_new();
	size_t		 len;
	char		*s;

	assert_non_null(out);
	http_error_write(out, kind, host, explanation, false);
	len = evbuffer_get_length(out);
	s = malloc(len + 1);
	assert_non_null(s);
	evbuffer_copyout(out, s, len);
	s[len] = '\0';
	evbuffer_free(out);
	return s;
}

/* The body of a response, after the empty line. */
static const char *
body_of(const char *response)
{
	const char	*p = strstr(response, "\r\n\r\n");

	assert_non_null(p);
	return p + 4;
}

static void
test_http_error_every_row_has_its_status_line_and_proxy_status(void **state)
{
	static const struct {
		enum http_error_kind	 kind;
		const char		*status_line;
		const char		*proxy_status;
	} rows[] = {
		{ HTTP_ERROR_PIN_MISMATCH, "HTTP/1.1 502 Bad Gateway",
		    "pinproxy; error=tls_certificate_error; "
		    "details=\"pin-mismatch\"" },
		{ HTTP_ERROR_PIN_DENIED, "HTTP/1.1 502 Bad Gateway",
		    "pinproxy; error=tls_certificate_error; "
		    "details=\"pin-denied\"" },
		{ HTTP_ERROR_VERIFY_FAILED, "HTTP/1.1 502 Bad Gateway",
		    "pinproxy; error=tls_certificate_error; "
		    "details=\"verify-failed\"" },
		{ HTTP_ERROR_TLS_FAILED, "HTTP/1.1 502 Bad Gateway",
		    "pinproxy; error=tls_protocol_error; "
		    "details=\"tls-failed\"" },
		{ HTTP_ERROR_DNS_FAILED, "HTTP/1.1 502 Bad Gateway",
		    "pinproxy; error=dns_error; details=\"dns-failed\"" },
		{ HTTP_ERROR_CONNECT_FAILED, "HTTP/1.1 502 Bad Gateway",
		    "pinproxy; error=connection_refused; "
		    "details=\"connect-failed\"" },
		{ HTTP_ERROR_TIMEOUT, "HTTP/1.1 504 Gateway Timeout",
		    "pinproxy; error=connection_timeout; details=\"timeout\"" },
		{ HTTP_ERROR_READ_TIMEOUT, "HTTP/1.1 504 Gateway Timeout",
		    "pinproxy; error=connection_read_timeout; "
		    "details=\"timeout\"" },
		{ HTTP_ERROR_BLOCKED, "HTTP/1.1 403 Forbidden",
		    "pinproxy; error=http_request_denied; "
		    "details=\"blocked\"" },
		{ HTTP_ERROR_PORT_DENIED, "HTTP/1.1 403 Forbidden",
		    "pinproxy; error=http_request_denied; "
		    "details=\"port-denied\"" },
		{ HTTP_ERROR_CLIENT_DENIED, "HTTP/1.1 403 Forbidden",
		    "pinproxy; error=http_request_denied; "
		    "details=\"client-denied\"" },
		{ HTTP_ERROR_BAD_REQUEST, "HTTP/1.1 400 Bad Request",
		    "pinproxy; error=http_request_error; "
		    "details=\"bad-request\"" },
		{ HTTP_ERROR_HEADER_TOO_LARGE,
		    "HTTP/1.1 431 Request Header Fields Too Large",
		    "pinproxy; error=http_request_error; "
		    "details=\"header-too-large\"" },
		{ HTTP_ERROR_HEADER_TIMEOUT, "HTTP/1.1 408 Request Timeout",
		    "pinproxy; error=http_request_error; "
		    "details=\"header-timeout\"" },
		{ HTTP_ERROR_LOOP, "HTTP/1.1 508 Loop Detected",
		    "pinproxy; error=proxy_loop_detected; details=\"loop\"" },
		{ HTTP_ERROR_BAD_RESPONSE, "HTTP/1.1 502 Bad Gateway",
		    "pinproxy; error=http_protocol_error; "
		    "details=\"bad-response\"" },
		{ HTTP_ERROR_PLAIN_PORT_DENIED, "HTTP/1.1 403 Forbidden",
		    "pinproxy; error=http_request_denied; "
		    "details=\"port-denied\"" },
		{ HTTP_ERROR_ADDR_PINNED, "HTTP/1.1 403 Forbidden",
		    "pinproxy; error=http_request_denied; "
		    "details=\"address-pinned\"" },
		{ HTTP_ERROR_STOPPING, "HTTP/1.1 503 Service Unavailable",
		    "pinproxy; error=proxy_internal_response; "
		    "details=\"stopping\"" },
	};
	char	 expect[256], *s;
	size_t	 i;
	int	 status;

	(void)state;
	assert_int_equal(sizeof(rows) / sizeof(rows[0]), HTTP_ERROR__COUNT);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		s = error_response(rows[i].kind, "api.example.com", NULL);
		snprintf(expect, sizeof(expect), "%s\r\nProxy-Status: %s\r\n",
		    rows[i].status_line, rows[i].proxy_status);
		if (strncmp(s, expect, strlen(expect)) != 0)
			fail_msg("row %zu starts with \"%.*s\"", i,
			    (int)strlen(expect), s);
		assert_int_equal(sscanf(rows[i].status_line, "HTTP/1.1 %d",
		    &status), 1);
		assert_int_equal(http_error_status(rows[i].kind), status);
		assert_string_equal(rows[i].status_line + 13,
		    http_error_reason(rows[i].kind));
		snprintf(expect, sizeof(expect),
		    "pinproxy; error=%s; details=\"%s\"",
		    http_error_type(rows[i].kind),
		    http_error_details(rows[i].kind));
		assert_string_equal(expect, rows[i].proxy_status);
		free(s);
	}
}

static void
test_http_error_pin_mismatch_response_is_exact(void **state)
{
	static const char	 body[] =
	    "pinproxy could not forward the request to api.example.com: "
	    "the server's certificate chain matches none of the pinned keys.\n"
	    "seen: sha256/AAA= sha256/BBB=\n"
	    "pin set example-api: sha256/CCC=\n";
	char			 expect[1024], *s;

	(void)state;
	snprintf(expect, sizeof(expect),
	    "HTTP/1.1 502 Bad Gateway\r\n"
	    "Proxy-Status: pinproxy; error=tls_certificate_error; "
	    "details=\"pin-mismatch\"\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Length: %zu\r\n"
	    "Connection: close\r\n"
	    "Cache-Control: no-store\r\n"
	    "\r\n%s", sizeof(body) - 1, body);
	s = error_response(HTTP_ERROR_PIN_MISMATCH, "api.example.com",
	    "seen: sha256/AAA= sha256/BBB=\npin set example-api: sha256/CCC=");
	assert_string_equal(s, expect);
	free(s);
}

static void
test_http_error_content_length_matches_the_body(void **state)
{
	enum http_error_kind	 kind;
	const char		*len;
	char			*s;

	(void)state;
	for (kind = 0; kind < HTTP_ERROR__COUNT; kind++) {
		s = error_response(kind, kind % 2 ? "h.example" : NULL,
		    kind % 3 ? "line one\nline\ttwo\r\n" : NULL);
		len = strstr(s, "Content-Length: ");
		assert_non_null(len);
		assert_int_equal(strtoul(len + 16, NULL, 10),
		    strlen(body_of(s)));
		free(s);
	}
}

static void
test_http_error_body_without_host_states_the_reason(void **state)
{
	char	*s;

	(void)state;
	s = error_response(HTTP_ERROR_CLIENT_DENIED, NULL, NULL);
	assert_string_equal(body_of(s), "pinproxy could not forward the "
	    "request: the client address is not in allow_clients.\n");
	free(s);
	s = error_response(HTTP_ERROR_HEADER_TIMEOUT, "", NULL);
	assert_string_equal(body_of(s), "pinproxy could not forward the "
	    "request: no complete request head arrived within "
	    "header_timeout.\n");
	free(s);
}

static void
test_http_error_cleans_network_text(void **state)
{
	char	*s;

	(void)state;
	s = error_response(HTTP_ERROR_DNS_FAILED, "evil\r\nX-Injected: 1",
	    "reason\rwith\x1b[31m escape\x7f\nnext\tline\n");
	assert_non_null(strstr(s, "request to evil??X-Injected: 1: "));
	assert_null(strstr(s, "\r\nX-Injected"));
	assert_non_null(strstr(s, "\nreason?with?[31m escape?\nnext?line\n"));
	assert_null(strchr(body_of(s), '\r'));
	assert_null(strchr(body_of(s), '\x1b'));
	free(s);
}

static void
test_http_error_unknown_kind_is_a_bad_request(void **state)
{
	(void)state;
	assert_int_equal(http_error_status(HTTP_ERROR__COUNT), 400);
	assert_string_equal(http_error_details(HTTP_ERROR__COUNT),
	    "bad-request");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
	    test_http_error_every_row_has_its_status_line_and_proxy_status),
		cmocka_unit_test(
		    test_http_error_pin_mismatch_response_is_exact),
		cmocka_unit_test(
		    test_http_error_content_length_matches_the_body),
		cmocka_unit_test(
		    test_http_error_body_without_host_states_the_reason),
		cmocka_unit_test(test_http_error_cleans_network_text),
		cmocka_unit_test(test_http_error_unknown_kind_is_a_bad_request),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

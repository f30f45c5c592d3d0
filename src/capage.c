/*
 * The CA download page. Every answer is built whole in memory (the CA
 * certificate is a few KiB) and carries Cache-Control: no-store, so that a
 * device never keeps an old CA after it changed.
 */
#include "config.h"

#include <event2/buffer.h>
#include <openssl/pem.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capage.h"
#include "pin.h"

/* What one path of the page serves. */
struct capage_doc {
	const char	*path;
	const char	*type;
	int		 (*body)(X509 *, const char *, struct evbuffer *);
};

static int	capage_index(X509 *, const char *, struct evbuffer *);
static int	capage_pem(X509 *, const char *, struct evbuffer *);
static int	capage_der(X509 *, const char *, struct evbuffer *);

static const struct capage_doc capage_docs[] = {
	{ "/", "text/html; charset=utf-8", capage_index },
	{ "/ca.pem", "application/x-pem-file", capage_pem },
	{ "/ca.crt", "application/x-x509-ca-cert", capage_der },
};

bool
capage_is_host(const char *ca_host, const char *host)
{
	return ca_host != NULL && ca_host[0] != '\0' &&
	    strcmp(ca_host, host) == 0;
}

/* The HTML page: what the files are, and the CA's pin to compare. */
static int
capage_index(X509 *ca, const char *ca_host, struct evbuffer *out)
{
	struct pin	 p;
	char		 pin[PIN_TEXT_MAX];

	if (!pin_from_cert(ca, &p))
		return -1;
	pin_format(&p, pin, sizeof(pin));
	evbuffer_add_printf(out,
	    "<!DOCTYPE html>\n"
	    "<html><head><meta charset=\"utf-8\">"
	    "<title>pinproxy CA</title></head><body>\n"
	    "<h1>pinproxy interception CA</h1>\n"
	    "<p>Install this certificate as a trusted CA on the device that "
	    "uses this proxy:</p>\n"
	    "<ul>\n"
	    "<li><a href=\"http://%s/ca.crt\">ca.crt</a> (DER: Android, "
	    "iOS, Windows)</li>\n"
	    "<li><a href=\"http://%s/ca.pem\">ca.pem</a> (PEM: Linux, "
	    "macOS, command-line tools)</li>\n"
	    "</ul>\n"
	    "<p>Its pin: <code>%s</code></p>\n"
	    "</body></html>\n", ca_host, ca_host, pin);
	return 0;
}

/* The CA certificate in PEM. */
static int
capage_pem(X509 *ca, const char *ca_host, struct evbuffer *out)
{
	BIO	*bio;
	char	*data;
	long	 len;
	int	 r = -1;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return -1;
	if (PEM_write_bio_X509(bio, ca) == 1 &&
	    (len = BIO_get_mem_data(bio, &data)) > 0) {
		evbuffer_add(out, data, (size_t)len);
		r = 0;
	}
	BIO_free(bio);
	return r;
}

/* The CA certificate in DER. */
static int
capage_der(X509 *ca, const char *ca_host, struct evbuffer *out)
{
	unsigned char	*der = NULL;
	int		 len;

	if ((len = i2d_X509(ca, &der)) <= 0)
		return -1;
	evbuffer_add(out, der, (size_t)len);
	OPENSSL_free(der);
	return 0;
}

/* Append a head and a body (sent only when with_body). */
static void
capage_reply(struct evbuffer *out, int status, const char *reason,
    const char *type, const char *extra, struct evbuffer *body,
    bool with_body, enum http_conn_token conn)
{
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n"
	    "%s%s\r\n", status, reason, type, evbuffer_get_length(body),
	    extra, conn == HTTP_CONN_CLOSE ? "Connection: close\r\n" :
	    conn == HTTP_CONN_KEEP_ALIVE ? "Connection: keep-alive\r\n" : "");
	if (with_body)
		evbuffer_add_buffer(out, body);
}

int
capage_respond(X509 *ca, const char *ca_host, const char *method,
    const char *path, enum http_conn_token conn, struct evbuffer *out)
{
	const struct capage_doc	*doc = NULL;
	struct evbuffer		*body;
	size_t			 i, len;
	bool			 head;
	int			 status;

	body = evbuffer_new();
	head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		evbuffer_add_printf(body, "Only GET and HEAD are answered "
		    "for %s.\n", ca_host);
		capage_reply(out, 405, "Method Not Allowed",
		    "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n", body,
		    true, conn);
		status = 405;
		goto out;
	}
	/* The query does not choose the document. */
	len = strcspn(path, "?");
	for (i = 0; i < sizeof(capage_docs) / sizeof(capage_docs[0]); i++)
		if (strlen(capage_docs[i].path) == len &&
		    strncmp(capage_docs[i].path, path, len) == 0)
			doc = &capage_docs[i];
	if (doc == NULL) {
		evbuffer_add_printf(body, "%s serves /, /ca.pem and /ca.crt "
		    "only.\n", ca_host);
		capage_reply(out, 404, "Not Found",
		    "text/plain; charset=utf-8", "", body, !head, conn);
		status = 404;
	} else if (ca == NULL || doc->body(ca, ca_host, body) != 0) {
		evbuffer_drain(body, evbuffer_get_length(body));
		evbuffer_add_printf(body, "The CA certificate cannot be "
		    "encoded.\n");
		capage_reply(out, 500, "Internal Server Error",
		    "text/plain; charset=utf-8", "", body, !head, conn);
		status = 500;
	} else {
		capage_reply(out, 200, "OK", doc->type, "", body, !head,
		    conn);
		status = 200;
	}
out:
	evbuffer_free(body);
	return status;
}

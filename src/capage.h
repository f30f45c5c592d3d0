/*
 * The CA download page: pinproxy answers plaintext requests for its
 * reserved name (ca_host, pinproxy.internal by default) itself, with a
 * short HTML page and the interception CA certificate in PEM and DER, so
 * that a device can install the CA through the proxy it is set up to use.
 */
#ifndef PINPROXY_CAPAGE_H
#define PINPROXY_CAPAGE_H

#include <openssl/x509.h>

#include <stdbool.h>

#include "http.h"

struct evbuffer;

/*
 * Whether a normalised request host is ca_host (NULL: the page is
 * disabled, never).
 */
bool	 capage_is_host(const char *ca_host, const char *host);
/*
 * Append the whole response to method and path (origin-form, with any
 * query) to out: the page at "/", the CA at "/ca.pem" and "/ca.crt", 404
 * elsewhere, 405 for methods other than GET and HEAD; the Connection
 * field conn says. ca is borrowed. Returns the status.
 */
int	 capage_respond(X509 *ca, const char *ca_host, const char *method,
	    const char *path, enum http_conn_token conn, struct evbuffer *out);

#endif

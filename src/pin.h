/*
 * SPKI pins: parsing "sha256/BASE64" and pin-sha256="BASE64", formatting,
 * the SHA-256 of a certificate's DER SubjectPublicKeyInfo, and comparison
 * in constant time.
 */
#ifndef PINPROXY_PIN_H
#define PINPROXY_PIN_H

#include <openssl/x509.h>

#include <stdbool.h>
#include <stddef.h>

#define PIN_DIGEST_LEN	32
/* "sha256/" + 44 base64 characters + NUL. */
#define PIN_TEXT_MAX	52

struct pin {
	unsigned char	 digest[PIN_DIGEST_LEN];
};

/* Parse a pin; on failure err says why (SHA-1, bad base64, wrong length). */
bool	 pin_parse(const char *text, struct pin *out, char *err,
	    size_t errlen);
/* Format as "sha256/BASE64" into buf of at least PIN_TEXT_MAX bytes. */
void	 pin_format(const struct pin *p, char *buf, size_t len);
/* The pin of a certificate's public key; false if it has none. */
bool	 pin_from_cert(X509 *cert, struct pin *out);
/* Constant-time equality of two digests. */
bool	 pin_equal(const struct pin *a, const struct pin *b);

#endif

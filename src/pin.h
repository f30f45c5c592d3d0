/*
 * SPKI pins: parsing "sha256/BASE64" and pin-sha256="BASE64" (with an
 * optional leaf: or ca: scope), formatting, the SHA-256 of a certificate's
 * DER SubjectPublicKeyInfo, and comparison in constant time.
 */
#ifndef PINPROXY_PIN_H
#define PINPROXY_PIN_H

#include <openssl/x509.h>

#include <stdbool.h>
#include <stddef.h>

#define PIN_DIGEST_LEN	32
/* "sha256/" + 44 base64 characters + NUL. */
#define PIN_TEXT_MAX	52
/* The same after a "leaf:" or "ca:" scope. */
#define PIN_SCOPED_TEXT_MAX	(PIN_TEXT_MAX + 5)

/* Where in the verified chain a pin may match. */
enum pin_scope {
	PIN_SCOPE_ANY,		/* a bare pin: any depth */
	PIN_SCOPE_LEAF,		/* leaf: depth 0 only */
	PIN_SCOPE_CA		/* ca: a CA certificate, depth >= 1 */
};

struct pin {
	unsigned char	 digest[PIN_DIGEST_LEN];
	enum pin_scope	 scope;
};

/* Parse a pin; on failure err says why (SHA-1, bad base64, wrong length). */
bool	 pin_parse(const char *text, struct pin *out, char *err,
	    size_t errlen);
/* Parse a pin that may carry a "leaf:" or "ca:" scope prefix. */
bool	 pin_parse_scoped(const char *text, struct pin *out, char *err,
	    size_t errlen);
/* Whether a pin of this scope may match a certificate at depth. */
bool	 pin_scope_allows(enum pin_scope scope, size_t depth);
/* The name of a scope: "any", "leaf" or "ca". */
const char *pin_scope_name(enum pin_scope scope);
/* Format as "sha256/BASE64" into buf of at least PIN_TEXT_MAX bytes. */
void	 pin_format(const struct pin *p, char *buf, size_t len);
/* The same with its scope, as configured: "leaf:sha256/BASE64". */
void	 pin_format_scoped(const struct pin *p, char *buf, size_t len);
/* The pin of a certificate's public key; false if it has none. */
bool	 pin_from_cert(X509 *cert, struct pin *out);
/* Constant-time equality of two digests. */
bool	 pin_equal(const struct pin *a, const struct pin *b);
/* Order of digests, for qsort and bsearch (public keys: not constant time). */
int	 pin_cmp(const void *a, const void *b);

#endif

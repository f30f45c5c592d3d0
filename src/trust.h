/*
 * Trust anchors for upstream verification: the system store or a PEM file
 * or directory of roots, plus a pin set's optional extra CA file.
 */
#ifndef PINPROXY_TRUST_H
#define PINPROXY_TRUST_H

#include <openssl/x509.h>

#include <stdbool.h>
#include <stddef.h>

/*
 * A new store from trust ("system", a PEM file or a directory of hashed
 * roots) plus extra (a PEM file, or NULL). NULL with err filled on failure.
 */
X509_STORE	*trust_store_new(const char *trust, const char *extra,
		    char *err, size_t errlen);
/* Whether a trust source can be loaded: for configuration checks. */
bool		 trust_check(const char *trust, char *err, size_t errlen);

#endif

/*
 * The interception CA: loads its certificate and key, or creates both on
 * first start, and signs forged leaf certificates. This is the only module
 * that holds the CA private key; it never hands the key out.
 */
#ifndef PINPROXY_CA_H
#define PINPROXY_CA_H

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* The length of a CA identity: the SHA-256 of its certificate's DER. */
#define CA_ID_LEN	32

struct ca;

/*
 * Load the CA from cert_path and key_path, or create both files when both
 * are missing (the key with mode 0600, the parent directory with 0700 if it
 * is missing); *created says which happened. Returns NULL with err filled
 * when only one file exists, a file is a symbolic link or not a regular
 * file, is unreadable, the key is not owned by the effective user or is
 * open to group or others, the key does not match the certificate, the
 * key or the certificate's signature is weaker than 112 bits (RSA under
 * 2048, SHA-1), or the certificate is not a valid, unexpired CA.
 */
struct ca	*ca_load_or_create(const char *cert_path, const char *key_path,
		    bool *created, char *err, size_t errlen);
/*
 * Check the CA files without creating anything, for configuration checks:
 * true when both are missing (they would be created) or both load, with
 * warn set to a warning (empty when none; see ca_warning()).
 */
bool		 ca_check(const char *cert_path, const char *key_path,
		    char *warn, size_t warnlen, char *err, size_t errlen);
/*
 * Remove the files ca was created as, each only while it is still that
 * file, unchanged (a start that failed leaves no CA it made behind).
 */
void		 ca_discard(const struct ca *ca);
/*
 * Whether ca was read from (or created as) cert_path and key_path and both
 * files are unchanged since: same inode, size, modification and status
 * change times. False means a reload must load them again.
 */
bool		 ca_unchanged(const struct ca *ca, const char *cert_path,
		    const char *key_path);
/* Take another reference to a CA. */
struct ca	*ca_ref(struct ca *ca);
/* Drop a reference (NULL is fine); the last one frees and wipes the key. */
void		 ca_unref(struct ca *ca);
/* The CA certificate, borrowed from ca. */
X509		*ca_cert(const struct ca *ca);
/* When the CA certificate expires. */
time_t		 ca_not_after(const struct ca *ca);
/*
 * Whether the CA expires within 30 days of now, or has expired: then the
 * warning to log, naming cert_path, into buf.
 */
bool		 ca_expiry_warning(const struct ca *ca, const char *cert_path,
		    time_t now, char *buf, size_t len);
/*
 * What is usable but unwise about the CA (valid for more than about ten
 * years), or NULL; borrowed from ca.
 */
const char	*ca_warning(const struct ca *ca);
/* The CA identity (CA_ID_LEN bytes, borrowed): a key for caches. */
const unsigned char *ca_id(const struct ca *ca);
/*
 * Issue cert: set its issuer name to the CA subject and sign it with the CA
 * key (SHA-256 unless the key type fixes its own digest).
 */
bool		 ca_sign(struct ca *ca, X509 *cert);
/* Give cert a fresh random, positive 128-bit serial number. */
bool		 ca_set_random_serial(X509 *cert);

/* Add the extension nid with a value in openssl.cnf syntax to cert. */
bool		 ca_add_ext(X509 *cert, X509V3_CTX *ctx, int nid,
		    const char *value);

#endif

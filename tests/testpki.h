/*
 * A small PKI for tests, made in memory at test time: keys, a root CA,
 * intermediates and leaf certificates, PEM files in a scratch directory,
 * and real chain verification that returns the chain OpenSSL built.
 * Every function aborts the test program when OpenSSL fails, so callers
 * need no error handling.
 */
#ifndef PINPROXY_TESTPKI_H
#define PINPROXY_TESTPKI_H

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <stdbool.h>
#include <stddef.h>

#define TESTPKI_HOUR	3600L
#define TESTPKI_DAY	86400L

enum testpki_keytype {
	TESTPKI_EC,		/* P-256: fast */
	TESTPKI_RSA		/* 2048 bits: slow, make at most a couple */
};

/* What to put in a certificate; zero fields take the defaults. */
struct testpki_spec {
	const char	*cn;		/* subject CN; default "testpki" */
	const char	*san;		/* "DNS:a.test,IP:127.0.0.1" or NULL */
	bool		 ca;		/* CA:TRUE with keyCertSign */
	long		 not_before;	/* seconds from now; 0: -1 hour */
	long		 not_after;	/* seconds from now; 0: +30 days */
};

/* A root, an intermediate and a leaf for one host, all with EC keys. */
struct testpki_chain {
	EVP_PKEY	*root_key;
	X509		*root;
	EVP_PKEY	*ca_key;
	X509		*ca;		/* the intermediate, issued by root */
	EVP_PKEY	*leaf_key;
	X509		*leaf;		/* issued by ca, SAN = the host */
};

/* A new key of the given type. */
EVP_PKEY	*testpki_key(enum testpki_keytype type);
/*
 * A certificate for key as spec says, signed by issuer_key and named after
 * issuer; a self-signed one when issuer is NULL.
 */
X509		*testpki_issue(const struct testpki_spec *spec, EVP_PKEY *key,
		    X509 *issuer, EVP_PKEY *issuer_key);
/* A self-signed root CA named cn, valid from an hour ago for 30 days. */
X509		*testpki_root(const char *cn, EVP_PKEY *key);
/* An intermediate CA named cn issued by issuer. */
X509		*testpki_ca(const char *cn, EVP_PKEY *key, X509 *issuer,
		    EVP_PKEY *issuer_key);
/* A server leaf for host (a DNS name or an IP literal) issued by issuer. */
X509		*testpki_leaf(const char *host, EVP_PKEY *key, X509 *issuer,
		    EVP_PKEY *issuer_key);

/* Make root -> intermediate -> leaf for host; names start with label. */
void		 testpki_chain_make(struct testpki_chain *c, const char *label,
		    const char *host);
/* Free the keys and certificates of a chain. */
void		 testpki_chain_free(struct testpki_chain *c);

/* A stack of the certificates given, NULL-terminated, each up-referenced. */
STACK_OF(X509)	*testpki_stack(X509 *first, ...)
		    __attribute__((sentinel));
/* Free a stack and drop its references (NULL is fine). */
void		 testpki_stack_free(STACK_OF(X509) *s);
/* A store trusting the anchors given, NULL-terminated. */
X509_STORE	*testpki_store(X509 *first, ...)
		    __attribute__((sentinel));
/*
 * Verify a chain as a TLS client would: served is leaf first as a server
 * sends it, host (DNS name, IP literal or NULL for none) is checked.
 * Returns the verified chain, leaf first, or NULL with the reason in why
 * (why may be NULL).
 */
STACK_OF(X509)	*testpki_verify(X509_STORE *store, STACK_OF(X509) *served,
		    const char *host, char *why, size_t whylen);

/* A new scratch directory under $TMPDIR or /tmp; free the result. */
char		*testpki_tmpdir(void);
/* Remove the files of a scratch directory and the directory. */
void		 testpki_rmdir(const char *dir);
/* Write certificates as PEM to dir/name; returns the path (free it). */
char		*testpki_write_certs(const char *dir, const char *name,
		    STACK_OF(X509) *certs);
/* Write one certificate as PEM to dir/name; returns the path. */
char		*testpki_write_cert(const char *dir, const char *name,
		    X509 *cert);
/* Write one certificate as DER to dir/name; returns the path. */
char		*testpki_write_der(const char *dir, const char *name,
		    X509 *cert);
/* Write a key as unencrypted PKCS#8 PEM, mode 0600; returns the path. */
char		*testpki_write_key(const char *dir, const char *name,
		    EVP_PKEY *key);
/*
 * Connect client and server (their connect and accept states set) over a
 * memory BIO pair and run both handshakes until neither wants more.
 */
bool		 testpki_handshake(SSL *client, SSL *server);

#endif

/*
 * A small PKI for tests: keys, CA and leaf certificates made in memory,
 * written to a scratch directory on demand, and verified the way a TLS
 * client verifies a server so tests see the chain OpenSSL really built.
 */
#include "config.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testpki.h"
#include "xmalloc.h"

/* Stop the test program: a broken fixture must not pass for a result. */
static void __attribute__((noreturn))
testpki_die(const char *what)
{
	fprintf(stderr, "testpki: %s failed\n", what);
	ERR_print_errors_fp(stderr);
	abort();
}

EVP_PKEY *
testpki_key(enum testpki_keytype type)
{
	EVP_PKEY	*key;

	if (type == TESTPKI_RSA)
		key = EVP_RSA_gen(2048);
	else
		key = EVP_EC_gen("P-256");
	if (key == NULL)
		testpki_die("key generation");
	return key;
}

/* Add one extension written in openssl.cnf syntax. */
static void
testpki_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION	*ext;

	if ((ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value)) == NULL)
		testpki_die(value);
	if (X509_add_ext(x, ext, -1) != 1)
		testpki_die("X509_add_ext");
	X509_EXTENSION_free(ext);
}

/* A random positive 63-bit serial number. */
static void
testpki_serial(X509 *x)
{
	unsigned char	 buf[8];
	BIGNUM		*bn;

	if (RAND_bytes(buf, sizeof(buf)) != 1)
		testpki_die("RAND_bytes");
	buf[0] &= 0x7f;
	buf[0] |= 0x01;
	if ((bn = BN_bin2bn(buf, sizeof(buf), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		testpki_die("serial number");
	BN_free(bn);
}

X509 *
testpki_issue(const struct testpki_spec *spec, EVP_PKEY *key, X509 *issuer,
    EVP_PKEY *issuer_key)
{
	X509		*x;
	X509_NAME	*name;
	X509V3_CTX	 ctx;
	const char	*cn;
	long		 nb, na;

	if ((x = X509_new()) == NULL ||
	    X509_set_version(x, X509_VERSION_3) != 1)
		testpki_die("X509_new");
	testpki_serial(x);

	nb = spec->not_before != 0 ? spec->not_before : -TESTPKI_HOUR;
	na = spec->not_after != 0 ? spec->not_after : 30 * TESTPKI_DAY;
	if (X509_gmtime_adj(X509_getm_notBefore(x), nb) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), na) == NULL)
		testpki_die("validity");

	cn = spec->cn != NULL ? spec->cn : "testpki";
	name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"pinproxy tests", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) != 1)
		testpki_die("subject name");
	if (X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : name) != 1)
		testpki_die("issuer name");
	if (X509_set_pubkey(x, key) != 1)
		testpki_die("X509_set_pubkey");

	X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	testpki_add_ext(x, &ctx, NID_basic_constraints,
	    spec->ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	testpki_add_ext(x, &ctx, NID_key_usage, spec->ca ?
	    "critical,keyCertSign,cRLSign" :
	    "critical,digitalSignature,keyEncipherment");
	if (!spec->ca)
		testpki_add_ext(x, &ctx, NID_ext_key_usage, "serverAuth");
	testpki_add_ext(x, &ctx, NID_subject_key_identifier, "hash");
	testpki_add_ext(x, &ctx, NID_authority_key_identifier,
	    "keyid:always");
	if (spec->san != NULL)
		testpki_add_ext(x, &ctx, NID_subject_alt_name, spec->san);

	if (X509_sign(x, issuer != NULL ? issuer_key : key, EVP_sha256()) <= 0)
		testpki_die("X509_sign");
	return x;
}

X509 *
testpki_root(const char *cn, EVP_PKEY *key)
{
	struct testpki_spec	 spec = { .cn = cn, .ca = true };

	return testpki_issue(&spec, key, NULL, NULL);
}

X509 *
testpki_ca(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
	struct testpki_spec	 spec = { .cn = cn, .ca = true };

	return testpki_issue(&spec, key, issuer, issuer_key);
}

X509 *
testpki_leaf(const char *host, EVP_PKEY *key, X509 *issuer,
    EVP_PKEY *issuer_key)
{
	struct testpki_spec	 spec = { .cn = host };
	unsigned char		 addr[16];
	char			*san;
	X509			*x;

	if (inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1)
		san = xasprintf("IP:%s", host);
	else
		san = xasprintf("DNS:%s", host);
	spec.san = san;
	x = testpki_issue(&spec, key, issuer, issuer_key);
	free(san);
	return x;
}

void
testpki_chain_make(struct testpki_chain *c, const char *label,
    const char *host)
{
	char	*cn;

	c->root_key = testpki_key(TESTPKI_EC);
	cn = xasprintf("%s Root", label);
	c->root = testpki_root(cn, c->root_key);
	free(cn);

	c->ca_key = testpki_key(TESTPKI_EC);
	cn = xasprintf("%s Intermediate", label);
	c->ca = testpki_ca(cn, c->ca_key, c->root, c->root_key);
	free(cn);

	c->leaf_key = testpki_key(TESTPKI_EC);
	c->leaf = testpki_leaf(host, c->leaf_key, c->ca, c->ca_key);
}

void
testpki_chain_free(struct testpki_chain *c)
{
	X509_free(c->leaf);
	EVP_PKEY_free(c->leaf_key);
	X509_free(c->ca);
	EVP_PKEY_free(c->ca_key);
	X509_free(c->root);
	EVP_PKEY_free(c->root_key);
	memset(c, 0, sizeof(*c));
}

STACK_OF(X509) *
testpki_stack(X509 *first, ...)
{
	STACK_OF(X509)	*s;
	va_list		 ap;
	X509		*x;

	if ((s = sk_X509_new_null()) == NULL)
		testpki_die("sk_X509_new_null");
	va_start(ap, first);
	for (x = first; x != NULL; x = va_arg(ap, X509 *)) {
		if (X509_up_ref(x) != 1 || sk_X509_push(s, x) == 0)
			testpki_die("sk_X509_push");
	}
	va_end(ap);
	return s;
}

void
testpki_stack_free(STACK_OF(X509) *s)
{
	sk_X509_pop_free(s, X509_free);
}

X509_STORE *
testpki_store(X509 *first, ...)
{
	X509_STORE	*store;
	va_list		 ap;
	X509		*x;

	if ((store = X509_STORE_new()) == NULL)
		testpki_die("X509_STORE_new");
	va_start(ap, first);
	for (x = first; x != NULL; x = va_arg(ap, X509 *)) {
		if (X509_STORE_add_cert(store, x) != 1)
			testpki_die("X509_STORE_add_cert");
	}
	va_end(ap);
	return store;
}

STACK_OF(X509) *
testpki_verify(X509_STORE *store, STACK_OF(X509) *served, const char *host,
    char *why, size_t whylen)
{
	X509_STORE_CTX		*ctx;
	X509_VERIFY_PARAM	*param;
	STACK_OF(X509)		*chain;
	unsigned char		 addr[16];
	int			 ok;

	if (sk_X509_num(served) < 1)
		testpki_die("testpki_verify without a leaf");
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, store, sk_X509_value(served, 0),
	    served) != 1 ||
	    X509_STORE_CTX_set_default(ctx, "ssl_server") != 1)
		testpki_die("X509_STORE_CTX_init");

	/* As a TLS client: the server's chain is untrusted, leaf included. */
	param = X509_STORE_CTX_get0_param(ctx);
	if (host != NULL) {
		if (inet_pton(AF_INET, host, addr) == 1 ||
		    inet_pton(AF_INET6, host, addr) == 1)
			ok = X509_VERIFY_PARAM_set1_ip_asc(param, host);
		else
			ok = X509_VERIFY_PARAM_set1_host(param, host, 0);
		if (ok != 1)
			testpki_die("X509_VERIFY_PARAM host");
	}

	chain = NULL;
	if (X509_verify_cert(ctx) == 1) {
		if ((chain = X509_STORE_CTX_get1_chain(ctx)) == NULL)
			testpki_die("X509_STORE_CTX_get1_chain");
	} else if (why != NULL && whylen > 0) {
		snprintf(why, whylen, "%s", X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(ctx)));
	}
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return chain;
}

char *
testpki_tmpdir(void)
{
	const char	*base;
	char		*dir;

	if ((base = getenv("TMPDIR")) == NULL || *base == '\0')
		base = "/tmp";
	dir = xasprintf("%s/pinproxy-testpki.XXXXXX", base);
	if (mkdtemp(dir) == NULL)
		testpki_die("mkdtemp");
	return dir;
}

void
testpki_rmdir(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	char		*path;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		unlink(path);
		free(path);
	}
	closedir(d);
	rmdir(dir);
}

/* Open dir/name for writing with the given mode; sets *pathp. */
static FILE *
testpki_create(const char *dir, const char *name, mode_t mode, char **pathp)
{
	FILE	*fp;
	int	 fd;

	*pathp = xasprintf("%s/%s", dir, name);
	if ((fd = open(*pathp, O_WRONLY | O_CREAT | O_TRUNC, mode)) == -1 ||
	    (fp = fdopen(fd, "w")) == NULL)
		testpki_die(*pathp);
	return fp;
}

char *
testpki_write_certs(const char *dir, const char *name, STACK_OF(X509) *certs)
{
	FILE	*fp;
	char	*path;
	int	 i;

	fp = testpki_create(dir, name, 0644, &path);
	for (i = 0; i < sk_X509_num(certs); i++) {
		if (PEM_write_X509(fp, sk_X509_value(certs, i)) != 1)
			testpki_die("PEM_write_X509");
	}
	if (fclose(fp) != 0)
		testpki_die(path);
	return path;
}

char *
testpki_write_cert(const char *dir, const char *name, X509 *cert)
{
	STACK_OF(X509)	*s;
	char		*path;

	s = testpki_stack(cert, NULL);
	path = testpki_write_certs(dir, name, s);
	testpki_stack_free(s);
	return path;
}

char *
testpki_write_der(const char *dir, const char *name, X509 *cert)
{
	FILE	*fp;
	char	*path;

	fp = testpki_create(dir, name, 0644, &path);
	if (i2d_X509_fp(fp, cert) != 1)
		testpki_die("i2d_X509_fp");
	if (fclose(fp) != 0)
		testpki_die(path);
	return path;
}

char *
testpki_write_key(const char *dir, const char *name, EVP_PKEY *key)
{
	FILE	*fp;
	char	*path;

	fp = testpki_create(dir, name, 0600, &path);
	if (PEM_write_PKCS8PrivateKey(fp, key, NULL, NULL, 0, NULL,
	    NULL) != 1)
		testpki_die("PEM_write_PKCS8PrivateKey");
	if (fclose(fp) != 0)
		testpki_die(path);
	return path;
}

bool
testpki_handshake(SSL *client, SSL *server)
{
	BIO	*cbio, *sbio;
	int	 i, rc, crc = 0, src = 0;

	if (BIO_new_bio_pair(&cbio, 0, &sbio, 0) != 1)
		return false;
	SSL_set_bio(client, cbio, cbio);
	SSL_set_bio(server, sbio, sbio);
	for (i = 0; i < 100 && (crc != 1 || src != 1); i++) {
		if (crc != 1) {
			rc = SSL_do_handshake(client);
			crc = rc;
			if (rc <= 0 && SSL_get_error(client, rc) !=
			    SSL_ERROR_WANT_READ)
				return false;
		}
		if (src != 1) {
			rc = SSL_do_handshake(server);
			src = rc;
			if (rc <= 0 && SSL_get_error(server, rc) !=
			    SSL_ERROR_WANT_READ)
				return false;
		}
	}
	return crc == 1 && src == 1;
}

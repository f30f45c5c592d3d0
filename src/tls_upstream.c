/*
 * Upstream TLS contexts. Sessions are never resumed: every handshake is a
 * full one, so OpenSSL always has a verified chain for the pin check.
 */
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>

#include "conf.h"
#include "hostmatch.h"
#include "tls_upstream.h"
#include "trust.h"
#include "xmalloc.h"

struct tls_upstream {
	SSL_CTX		 *base;		/* trust only */
	SSL_CTX		**pinset;	/* one a pin set; NULL: use base */
	size_t		  npinset;
	const struct conf *conf;
};

/* A client context that verifies peers against store (takes it over). */
static SSL_CTX *
tls_upstream_ctx(X509_STORE *store, char *err, size_t errlen)
{
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "cannot create a TLS context: %s",
		    ERR_reason_error_string(ERR_get_error()));
		X509_STORE_free(store);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_store(ctx, store);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

struct tls_upstream *
tls_upstream_new(const struct conf *conf, char *err, size_t errlen)
{
	struct tls_upstream	*t;
	X509_STORE		*store;
	size_t			 i;

	t = xcalloc(1, sizeof(*t));
	t->conf = conf;
	if ((store = trust_store_new(conf->trust, NULL, err, errlen)) == NULL ||
	    (t->base = tls_upstream_ctx(store, err, errlen)) == NULL)
		goto fail;
	t->npinset = conf->npinsets;
	t->pinset = xcalloc(conf->npinsets, sizeof(*t->pinset));
	for (i = 0; i < conf->npinsets; i++) {
		if (conf->pinsets[i].ca_file == NULL)
			continue;
		store = trust_store_new(conf->trust, conf->pinsets[i].ca_file,
		    err, errlen);
		if (store == NULL ||
		    (t->pinset[i] = tls_upstream_ctx(store, err, errlen)) ==
		    NULL)
			goto fail;
	}
	return t;
fail:
	tls_upstream_free(t);
	return NULL;
}

void
tls_upstream_free(struct tls_upstream *t)
{
	size_t	 i;

	if (t == NULL)
		return;
	for (i = 0; i < t->npinset; i++)
		SSL_CTX_free(t->pinset[i]);
	free(t->pinset);
	SSL_CTX_free(t->base);
	free(t);
}

SSL *
tls_upstream_ssl(struct tls_upstream *t, const struct pinset *ps,
    const char *host, const unsigned char *alpn, size_t alpnlen)
{
	SSL_CTX			*ctx = t->base;
	SSL			*ssl;
	X509_VERIFY_PARAM	*param;
	size_t			 i;

	if (ps != NULL) {
		i = (size_t)(ps - t->conf->pinsets);
		if (i < t->npinset && t->pinset[i] != NULL)
			ctx = t->pinset[i];
	}
	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	param = SSL_get0_param(ssl);
	X509_VERIFY_PARAM_set_hostflags(param,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (hostmatch_is_ip(host)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1)
			goto fail;
	} else {
		if (SSL_set_tlsext_host_name(ssl, host) != 1 ||
		    SSL_set1_host(ssl, host) != 1)
			goto fail;
	}
	if (alpn != NULL && alpnlen > 0 &&
	    SSL_set_alpn_protos(ssl, alpn, (unsigned int)alpnlen) != 0)
		goto fail;
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

/*
 * TLS client contexts for upstream connections, built once per
 * configuration generation: one that trusts the configured anchors, and
 * one per pin set that adds its own ca_file.
 */
#ifndef PINPROXY_TLS_UPSTREAM_H
#define PINPROXY_TLS_UPSTREAM_H

#include <openssl/ssl.h>

#include <stddef.h>

#include "conf.h"

struct tls_upstream;

/* Contexts for conf (borrowed: it must outlive the result). */
struct tls_upstream	*tls_upstream_new(const struct conf *conf, char *err,
			    size_t errlen);
/* Free the contexts (NULL ok). */
void			 tls_upstream_free(struct tls_upstream *t);
/*
 * A new client SSL for host (normalised) under pin set ps (NULL when the
 * host is unpinned): SNI (not for IP literals), host-name or IP checking,
 * and the ALPN list in wire format (NULL for none). The caller owns it.
 */
SSL			*tls_upstream_ssl(struct tls_upstream *t,
			    const struct pinset *ps, const char *host,
			    const unsigned char *alpn, size_t alpnlen);

#endif

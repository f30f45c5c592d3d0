/*
 * Forged leaf certificates: one per host name, issued by the interception CA
 * for one shared leaf key (never the CA key), and kept in a bounded LRU cache
 * keyed by host name and CA identity. Used from one thread only.
 */
#ifndef PINPROXY_LEAFCERT_H
#define PINPROXY_LEAFCERT_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stddef.h>
#include <stdint.h>

#include "ca.h"

/* Forged certificates are valid for at most this many days. */
#define LEAFCERT_VALID_DAYS	90
/* A cached certificate with less than this left is forged again. */
#define LEAFCERT_RENEW_SECONDS	(24 * 60 * 60)
/* The cache size the daemon uses. */
#define LEAFCERT_CACHE_DEFAULT	1024

struct leafcert_cache;

/* Counters, for metrics. */
struct leafcert_stats {
	uint64_t	 hits;
	uint64_t	 misses;
	uint64_t	 evictions;
	size_t		 entries;
};

/*
 * A cache of at most capacity certificates (at least 1), with a newly
 * generated EC P-256 leaf key. NULL with err filled on failure.
 */
struct leafcert_cache	*leafcert_cache_new(size_t capacity, char *err,
			    size_t errlen);
/* Free a cache, its certificates and its key (NULL is fine). */
void			 leafcert_cache_free(struct leafcert_cache *lc);
/*
 * The certificate for host issued by ca, from the cache or forged now. host
 * is a DNS name (matched without case and without a trailing dot) or a bare
 * IPv4 or IPv6 literal. The caller owns one reference and must X509_free()
 * it (SSL_use_certificate() takes its own). NULL when host is not a usable
 * name or forging fails.
 */
X509			*leafcert_get(struct leafcert_cache *lc, struct ca *ca,
			    const char *host);
/* The shared leaf key, borrowed from lc: pair it with any leafcert_get(). */
EVP_PKEY		*leafcert_key(const struct leafcert_cache *lc);
/* Drop every cached certificate, e.g. when the CA changes. */
void			 leafcert_cache_flush(struct leafcert_cache *lc);
/* Copy the counters into st. */
void			 leafcert_cache_stats(const struct leafcert_cache *lc,
			    struct leafcert_stats *st);

#endif

/*
 * Forged leaf certificates and their cache: a hash table for lookups by
 * (host, CA identity) and a doubly-linked list in least-recently-used order
 * for eviction, so both lookups and evictions take constant time.
 */
#include "config.h"

#include <sys/queue.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "hostmatch.h"
#include "leafcert.h"
#include "xmalloc.h"

/* ub-common-name in RFC 5280. */
#define LEAFCERT_CN_MAX		64
#define LEAFCERT_BACKDATE	(24 * 60 * 60)
#define LEAFCERT_BUCKETS_MAX	((size_t)1 << 24)

struct leafcert_entry {
	TAILQ_ENTRY(leafcert_entry)	 lru;	/* most recent first */
	struct leafcert_entry		*next;	/* in its hash bucket */
	uint64_t			 hash;
	char				*host;
	unsigned char			 ca_id[CA_ID_LEN];
	X509				*cert;
	time_t				 made;	/* the clock when forged */
	time_t				 renew_at;
};

TAILQ_HEAD(leafcert_list, leafcert_entry);

struct leafcert_cache {
	EVP_PKEY		*key;
	struct leafcert_entry	**buckets;
	size_t			 nbuckets;	/* a power of two */
	size_t			 capacity;
	struct leafcert_list	 lru;
	uint64_t		 seed;
	struct leafcert_stats	 stats;
};

/*
 * Normalise host into buf (lower case, no trailing dot) and tell whether it
 * is an IP literal; false when it is not a name a certificate can carry.
 */
static bool
leafcert_normalize(const char *host, char *buf, size_t size, bool *is_ip,
    unsigned char *ip, size_t *iplen)
{
	size_t	 len, i;
	char	 c;

	len = strlen(host);
	if (len > 0 && host[len - 1] == '.')
		len--;
	if (len == 0 || len >= HOSTMATCH_NAME_MAX || len >= size)
		return false;
	for (i = 0; i < len; i++) {
		c = host[i];
		if (c >= 'A' && c <= 'Z')
			c = c - 'A' + 'a';
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == ':'))
			return false;
		buf[i] = c;
	}
	buf[len] = '\0';
	*is_ip = true;
	if (inet_pton(AF_INET, buf, ip) == 1) {
		*iplen = 4;
		return true;
	}
	if (inet_pton(AF_INET6, buf, ip) == 1) {
		*iplen = 16;
		return true;
	}
	*is_ip = false;
	return buf[0] != '.' && buf[len - 1] != '.' &&
	    strstr(buf, "..") == NULL && strchr(buf, ':') == NULL;
}

/* FNV-1a over host and the CA identity, from a per-cache random seed. */
static uint64_t
leafcert_hash(const struct leafcert_cache *lc, const char *host,
    const unsigned char *id)
{
	uint64_t	 h = lc->seed;
	size_t		 i;

	for (i = 0; host[i] != '\0'; i++)
		h = (h ^ (unsigned char)host[i]) * 0x100000001b3ULL;
	for (i = 0; i < CA_ID_LEN; i++)
		h = (h ^ id[i]) * 0x100000001b3ULL;
	return h;
}

/* subjectAltName with exactly one entry: DNS:host or IP:host. */
static bool
leafcert_add_san(X509 *cert, const char *host, bool is_ip,
    const unsigned char *ip, size_t iplen)
{
	GENERAL_NAMES		*names;
	GENERAL_NAME		*gn;
	ASN1_OCTET_STRING	*os;
	ASN1_IA5STRING		*dns;
	bool			 ok = false;

	if ((names = GENERAL_NAMES_new()) == NULL)
		return false;
	if ((gn = GENERAL_NAME_new()) == NULL)
		goto done;
	if (is_ip) {
		if ((os = ASN1_OCTET_STRING_new()) == NULL ||
		    ASN1_OCTET_STRING_set(os, ip, (int)iplen) != 1) {
			ASN1_OCTET_STRING_free(os);
			GENERAL_NAME_free(gn);
			goto done;
		}
		GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
	} else {
		if ((dns = ASN1_IA5STRING_new()) == NULL ||
		    ASN1_STRING_set(dns, host, -1) != 1) {
			ASN1_IA5STRING_free(dns);
			GENERAL_NAME_free(gn);
			goto done;
		}
		GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
	}
	if (sk_GENERAL_NAME_push(names, gn) <= 0) {
		GENERAL_NAME_free(gn);
		goto done;
	}
	ok = X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0,
	    X509V3_ADD_DEFAULT) == 1;
done:
	GENERAL_NAMES_free(names);
	return ok;
}

/* A new certificate for host, signed by ca; *not_after is when it ends. */
static X509 *
leafcert_forge(struct leafcert_cache *lc, struct ca *ca, const char *host,
    bool is_ip, const unsigned char *ip, size_t iplen, time_t *not_after)
{
	X509		*cert;
	X509V3_CTX	 ctx;
	size_t		 cnlen;
	time_t		 now;

	now = time(NULL);
	*not_after = now + (time_t)LEAFCERT_VALID_DAYS * 24 * 60 * 60;
	if (ca_not_after(ca) < *not_after)
		*not_after = ca_not_after(ca);
	cnlen = strlen(host);
	if (cnlen > LEAFCERT_CN_MAX)
		cnlen = LEAFCERT_CN_MAX;

	if ((cert = X509_new()) == NULL)
		return NULL;
	if (X509_set_version(cert, X509_VERSION_3) != 1 ||
	    !ca_set_random_serial(cert) ||
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN",
	    MBSTRING_ASC, (const unsigned char *)host, (int)cnlen, -1,
	    0) != 1 ||
	    ASN1_TIME_set(X509_getm_notBefore(cert),
	    now - LEAFCERT_BACKDATE) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(cert), *not_after) == NULL ||
	    X509_set_pubkey(cert, lc->key) != 1)
		goto fail;
	X509V3_set_ctx(&ctx, ca_cert(ca), cert, NULL, NULL, 0);
	if (!ca_add_ext(cert, &ctx, NID_basic_constraints,
	    "critical,CA:FALSE") ||
	    !ca_add_ext(cert, &ctx, NID_key_usage,
	    "critical,digitalSignature") ||
	    !ca_add_ext(cert, &ctx, NID_ext_key_usage, "serverAuth") ||
	    !ca_add_ext(cert, &ctx, NID_subject_key_identifier,
	    "hash") ||
	    /* The CA's issuer and serial when it has no key identifier. */
	    !ca_add_ext(cert, &ctx, NID_authority_key_identifier,
	    "keyid,issuer") ||
	    !leafcert_add_san(cert, host, is_ip, ip, iplen) ||
	    !ca_sign(ca, cert))
		goto fail;
	return cert;

fail:
	X509_free(cert);
	return NULL;
}

static struct leafcert_entry *
leafcert_find(struct leafcert_cache *lc, const char *host,
    const unsigned char *id, uint64_t hash)
{
	struct leafcert_entry	*e;

	for (e = lc->buckets[hash & (lc->nbuckets - 1)]; e != NULL;
	    e = e->next) {
		if (e->hash == hash && strcmp(e->host, host) == 0 &&
		    memcmp(e->ca_id, id, CA_ID_LEN) == 0)
			return e;
	}
	return NULL;
}

/* Unlink e from its bucket and from the LRU list, and free it. */
static void
leafcert_remove(struct leafcert_cache *lc, struct leafcert_entry *e)
{
	struct leafcert_entry	**pp;

	for (pp = &lc->buckets[e->hash & (lc->nbuckets - 1)]; *pp != e;
	    pp = &(*pp)->next)
		;
	*pp = e->next;
	TAILQ_REMOVE(&lc->lru, e, lru);
	lc->stats.entries--;
	X509_free(e->cert);
	free(e->host);
	free(e);
}

/* Add cert for (host, id), evicting the least recently used if full. */
static void
leafcert_insert(struct leafcert_cache *lc, const char *host,
    const unsigned char *id, uint64_t hash, X509 *cert, time_t made,
    time_t renew_at)
{
	struct leafcert_entry	*e;
	size_t			 b;

	if (lc->stats.entries >= lc->capacity) {
		leafcert_remove(lc, TAILQ_LAST(&lc->lru, leafcert_list));
		lc->stats.evictions++;
	}
	e = xcalloc(1, sizeof(*e));
	e->hash = hash;
	e->host = xstrdup(host);
	memcpy(e->ca_id, id, CA_ID_LEN);
	e->cert = cert;
	e->made = made;
	e->renew_at = renew_at;
	b = hash & (lc->nbuckets - 1);
	e->next = lc->buckets[b];
	lc->buckets[b] = e;
	TAILQ_INSERT_HEAD(&lc->lru, e, lru);
	lc->stats.entries++;
}

struct leafcert_cache *
leafcert_cache_new(size_t capacity, char *err, size_t errlen)
{
	struct leafcert_cache	*lc;

	lc = xcalloc(1, sizeof(*lc));
	if ((lc->key = EVP_EC_gen("P-256")) == NULL ||
	    RAND_bytes((unsigned char *)&lc->seed, sizeof(lc->seed)) != 1) {
		snprintf(err, errlen, "cannot generate the leaf key");
		EVP_PKEY_free(lc->key);
		free(lc);
		return NULL;
	}
	lc->capacity = capacity > 0 ? capacity : 1;
	lc->nbuckets = 1;
	while (lc->nbuckets < lc->capacity &&
	    lc->nbuckets < LEAFCERT_BUCKETS_MAX)
		lc->nbuckets <<= 1;
	lc->buckets = xcalloc(lc->nbuckets, sizeof(*lc->buckets));
	TAILQ_INIT(&lc->lru);
	return lc;
}

void
leafcert_cache_free(struct leafcert_cache *lc)
{
	if (lc == NULL)
		return;
	leafcert_cache_flush(lc);
	free(lc->buckets);
	EVP_PKEY_free(lc->key);
	free(lc);
}

X509 *
leafcert_get(struct leafcert_cache *lc, struct ca *ca, const char *host)
{
	struct leafcert_entry	*e;
	X509			*cert;
	unsigned char		 ip[16];
	char			 name[HOSTMATCH_NAME_MAX];
	size_t			 iplen = 0;
	uint64_t		 hash;
	time_t			 not_after, now = time(NULL);
	bool			 is_ip;

	if (!leafcert_normalize(host, name, sizeof(name), &is_ip, ip, &iplen))
		return NULL;
	hash = leafcert_hash(lc, name, ca_id(ca));
	if ((e = leafcert_find(lc, name, ca_id(ca), hash)) != NULL) {
		/*
		 * Not once the clock went back more than half the leaf's
		 * backdating since it was forged: made while the clock was
		 * ahead (then set right), it is not valid yet for clients.
		 */
		if (now < e->renew_at &&
		    now >= e->made - LEAFCERT_BACKDATE / 2) {
			lc->stats.hits++;
			TAILQ_REMOVE(&lc->lru, e, lru);
			TAILQ_INSERT_HEAD(&lc->lru, e, lru);
			X509_up_ref(e->cert);
			return e->cert;
		}
		leafcert_remove(lc, e);
	}
	lc->stats.misses++;
	cert = leafcert_forge(lc, ca, name, is_ip, ip, iplen, &not_after);
	if (cert == NULL)
		return NULL;
	leafcert_insert(lc, name, ca_id(ca), hash, cert, now,
	    not_after - LEAFCERT_RENEW_SECONDS);
	X509_up_ref(cert);
	return cert;
}

EVP_PKEY *
leafcert_key(const struct leafcert_cache *lc)
{
	return lc->key;
}

void
leafcert_cache_flush(struct leafcert_cache *lc)
{
	struct leafcert_entry	*e;

	while ((e = TAILQ_FIRST(&lc->lru)) != NULL)
		leafcert_remove(lc, e);
}

void
leafcert_cache_stats(const struct leafcert_cache *lc,
    struct leafcert_stats *st)
{
	*st = lc->stats;
}

/*
 * Chains verified lately: see verifycache.h. The key is a SHA-256 over
 * the trust store's identity, the name and every certificate as sent, so
 * a hit stands for the very inputs that verified before; the time is the
 * one input that changes, and the entry's window keeps it in bounds.
 */
#include "config.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "certfile.h"
#include "verifycache.h"
#include "xmalloc.h"

#define VERIFYCACHE_KEY_LEN	32

struct verifycache_entry {
	unsigned char		 key[VERIFYCACHE_KEY_LEN];
	STACK_OF(X509)		*chain;		/* NULL: a free slot */
	time_t			 from;		/* valid from, */
	time_t			 until;		/* until (as OpenSSL, a
						   notAfter of now is past) */
	long long		 expires;	/* monotonic: kept until */
	unsigned long		 used;		/* the clock when last used */
};

struct verifycache {
	struct verifycache_entry e[VERIFYCACHE_SIZE];
	EVP_MD			*sha256;
	EVP_MD_CTX		*md;
	unsigned long		 clock;
	unsigned long		 hits;
	unsigned long		 misses;
};

struct verifycache *
verifycache_new(void)
{
	struct verifycache	*vc;

	vc = xcalloc(1, sizeof(*vc));
	vc->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	vc->md = EVP_MD_CTX_new();
	if (vc->sha256 == NULL || vc->md == NULL) {
		verifycache_free(vc);
		return NULL;
	}
	return vc;
}

void
verifycache_flush(struct verifycache *vc)
{
	size_t	 i;

	for (i = 0; i < VERIFYCACHE_SIZE; i++) {
		sk_X509_pop_free(vc->e[i].chain, X509_free);
		vc->e[i].chain = NULL;
	}
}

void
verifycache_free(struct verifycache *vc)
{
	if (vc == NULL)
		return;
	verifycache_flush(vc);
	EVP_MD_free(vc->sha256);
	EVP_MD_CTX_free(vc->md);
	free(vc);
}

/* Hash one certificate's DER, its length first. */
static bool
verifycache_add_cert(struct verifycache *vc, X509 *x)
{
	unsigned char	*der = NULL;
	uint32_t	 n;
	int		 len;
	bool		 ok;

	if ((len = i2d_X509(x, &der)) <= 0)
		return false;
	n = (uint32_t)len;
	ok = EVP_DigestUpdate(vc->md, &n, sizeof(n)) == 1 &&
	    EVP_DigestUpdate(vc->md, der, (size_t)len) == 1;
	OPENSSL_free(der);
	return ok;
}

/* The key of what sctx is to verify, for name; false if it has none. */
static bool
verifycache_key(struct verifycache *vc, X509_STORE_CTX *sctx,
    const char *name, unsigned char key[VERIFYCACHE_KEY_LEN])
{
	uintptr_t		 store = (uintptr_t)X509_STORE_CTX_get0_store(sctx);
	STACK_OF(X509)		*sent = X509_STORE_CTX_get0_untrusted(sctx);
	X509			*leaf = X509_STORE_CTX_get0_cert(sctx);
	unsigned int		 len;
	int			 i;

	if (leaf == NULL || name == NULL ||
	    EVP_DigestInit_ex(vc->md, vc->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(vc->md, &store, sizeof(store)) != 1 ||
	    EVP_DigestUpdate(vc->md, name, strlen(name) + 1) != 1 ||
	    !verifycache_add_cert(vc, leaf))
		return false;
	for (i = 0; i < sk_X509_num(sent); i++)
		if (!verifycache_add_cert(vc, sk_X509_value(sent, i)))
			return false;
	return EVP_DigestFinal_ex(vc->md, key, &len) == 1 &&
	    len == VERIFYCACHE_KEY_LEN;
}

/* Whether chain is small enough to keep (VERIFYCACHE_CHAIN_MAX). */
static bool
verifycache_small(STACK_OF(X509) *chain)
{
	size_t	 total = 0;
	int	 i, len;

	for (i = 0; i < sk_X509_num(chain); i++) {
		if ((len = i2d_X509(sk_X509_value(chain, i), NULL)) <= 0)
			return false;
		total += (size_t)len;
	}
	return total <= VERIFYCACHE_CHAIN_MAX;
}

/* The window in which every certificate of chain is valid; false: none. */
static bool
verifycache_window(STACK_OF(X509) *chain, time_t now, time_t *from,
    time_t *until)
{
	return certfile_chain_window(chain, from, until) && *from <= now &&
	    now < *until;
}

/* A hit: the kept chain becomes sctx's, verified. */
static int
verifycache_use(struct verifycache *vc, struct verifycache_entry *e,
    X509_STORE_CTX *sctx)
{
	STACK_OF(X509)	*chain;
	int		 i;

	if ((chain = sk_X509_dup(e->chain)) == NULL)
		return -1;
	for (i = 0; i < sk_X509_num(chain); i++)
		X509_up_ref(sk_X509_value(chain, i));
	X509_STORE_CTX_set0_verified_chain(sctx, chain);
	X509_STORE_CTX_set_error(sctx, X509_V_OK);
	e->used = ++vc->clock;
	vc->hits++;
	return 1;
}

/* Keep sctx's verified chain under key, in the least recently used slot. */
static void
verifycache_keep(struct verifycache *vc, X509_STORE_CTX *sctx,
    const unsigned char key[VERIFYCACHE_KEY_LEN], time_t now, long long mono)
{
	struct verifycache_entry	*e = &vc->e[0];
	STACK_OF(X509)			*chain;
	time_t				 from, until;
	size_t				 i;

	if ((chain = X509_STORE_CTX_get1_chain(sctx)) == NULL)
		return;
	if (!verifycache_small(chain) ||
	    !verifycache_window(chain, now, &from, &until)) {
		sk_X509_pop_free(chain, X509_free);
		return;
	}
	for (i = 1; i < VERIFYCACHE_SIZE && e->chain != NULL; i++)
		if (vc->e[i].chain == NULL || vc->e[i].used < e->used)
			e = &vc->e[i];
	sk_X509_pop_free(e->chain, X509_free);
	memcpy(e->key, key, VERIFYCACHE_KEY_LEN);
	e->chain = chain;
	e->from = from;
	e->until = until;
	e->expires = mono + VERIFYCACHE_SECONDS;
	e->used = ++vc->clock;
}

int
verifycache_verify(struct verifycache *vc, X509_STORE_CTX *sctx,
    const char *name, time_t now, long long mono)
{
	struct verifycache_entry	*e;
	unsigned char			 key[VERIFYCACHE_KEY_LEN];
	bool				 keyed;
	size_t				 i;
	int				 ok;

	keyed = verifycache_key(vc, sctx, name, key);
	for (i = 0; keyed && i < VERIFYCACHE_SIZE; i++) {
		e = &vc->e[i];
		if (e->chain == NULL ||
		    memcmp(e->key, key, VERIFYCACHE_KEY_LEN) != 0)
			continue;
		if (e->from <= now && now < e->until && mono < e->expires)
			return verifycache_use(vc, e, sctx);
		/* Out of its window: verified again, and kept anew. */
		sk_X509_pop_free(e->chain, X509_free);
		e->chain = NULL;
		break;
	}
	vc->misses++;
	ok = X509_verify_cert(sctx);
	if (keyed && ok > 0 && X509_STORE_CTX_get_error(sctx) == X509_V_OK)
		verifycache_keep(vc, sctx, key, now, mono);
	return ok;
}

void
verifycache_counts(const struct verifycache *vc, unsigned long *hits,
    unsigned long *misses)
{
	*hits = vc->hits;
	*misses = vc->misses;
}

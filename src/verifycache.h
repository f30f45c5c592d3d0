/*
 * Chains verified lately. A server sends the same chain on every full
 * handshake, and OpenSSL 3.0 spends about a tenth of a millisecond
 * verifying it again (two signature checks, the path built anew) on the
 * critical path of every new upstream connection. An entry is the chain
 * X509_verify_cert(3) built for exactly the same certificates as sent
 * (every DER byte, in order), the same name checked and the same trust
 * store; it is used only while every certificate of that chain is within
 * its validity (by the wall clock, as OpenSSL checks it), and at most
 * VERIFYCACHE_SECONDS after the verification (by a monotonic clock, which
 * a step of the wall clock does not stretch).
 * Only successes are kept: a chain that failed is verified each time.
 */
#ifndef PINPROXY_VERIFYCACHE_H
#define PINPROXY_VERIFYCACHE_H

#include <openssl/x509_vfy.h>

#include <stddef.h>
#include <time.h>

/* Chains kept; the least recently used goes first. */
#define VERIFYCACHE_SIZE	32
/* How long a verification stands. */
#define VERIFYCACHE_SECONDS	600
/*
 * The largest chain kept, in DER bytes (real ones take a few KiB): the
 * cache holds at most VERIFYCACHE_SIZE times this, parsed.
 */
#define VERIFYCACHE_CHAIN_MAX	(32 * 1024)

struct verifycache;

struct verifycache	*verifycache_new(void);
/* Forget every chain (a retired configuration keeps none). */
void			 verifycache_flush(struct verifycache *vc);
void			 verifycache_free(struct verifycache *vc);
/*
 * What X509_verify_cert(sctx) returns, with name the host or address its
 * parameters check, at now (the wall clock) and mono (seconds of a
 * monotonic clock): from the cache when it holds the chain, which then
 * becomes sctx's verified chain with X509_V_OK; otherwise verified, and
 * kept when it passed.
 */
int			 verifycache_verify(struct verifycache *vc,
			    X509_STORE_CTX *sctx, const char *name, time_t now,
			    long long mono);
/* Hits and misses so far, for tests and debugging. */
void			 verifycache_counts(const struct verifycache *vc,
			    unsigned long *hits, unsigned long *misses);

#endif

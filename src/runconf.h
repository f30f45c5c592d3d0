/*
 * A configuration generation at run time: the parsed configuration plus
 * what is built from it (upstream TLS contexts and sessions) and what
 * interception uses under it (the CA and a cache of forged leaves).
 * Connections hold a reference to the generation they started under, so
 * a reload never changes anything beneath them.
 */
#ifndef PINPROXY_RUNCONF_H
#define PINPROXY_RUNCONF_H

#include <stdbool.h>
#include <stddef.h>

#include "alpnguess.h"
#include "ca.h"
#include "conf.h"
#include "leafcert.h"
#include "tls_upstream.h"

struct runconf {
	int			 refs;
	unsigned long		 generation;
	bool			 retired;	/* a reload replaced it */
	struct conf		*conf;		/* a reference of our own */
	struct tls_upstream	*tls;		/* owned */
	/* Both NULL in a generation for upstreams only. */
	struct ca		*ca;		/* a reference of our own */
	struct leafcert_cache	*leaves;	/* owned, issued by ca */
	struct alpnguess	*alpn;		/* owned: upstreams' last ALPN */
	/*
	 * Per pin set, per candidate: candidate_seen was logged for a chain
	 * that met the pins (RUNCONF_CANDIDATE_MET) or did not (_UNMET).
	 */
	unsigned char		**candidate_logged;
	bool			 ca_created;	/* this generation made its CA */
};

/*
 * Build generation number gen from conf, after prev (NULL at start): the
 * CA of prev when conf names the same, unchanged files (ca_unchanged()),
 * else the one conf names, loaded or created. NULL with err on failure.
 */
struct runconf	*runconf_new(struct conf *conf, unsigned long gen,
		    const struct runconf *prev, char *err, size_t errlen);
/*
 * At start, whether the generation runconf_new() built is kept (started):
 * a CA it created is then logged as created (ca_created), else its files
 * are removed, so that a start that failed leaves no CA nobody used. A
 * reload's generation, built last, logs its new CA when it is built.
 */
void		 runconf_ca_settle(struct runconf *rc, bool started);
/*
 * A generation for upstream connections only: the TLS contexts, without
 * the CA and forged leaves of interception (ca and leaves stay NULL), so
 * no CA file is read or created. pinproxy-pin checks hosts with it.
 */
struct runconf	*runconf_new_upstream(struct conf *conf, unsigned long gen,
		    char *err, size_t errlen);
/* Take a reference. */
struct runconf	*runconf_ref(struct runconf *rc);
#define RUNCONF_CANDIDATE_MET	0x1
#define RUNCONF_CANDIDATE_UNMET	0x2
/*
 * Whether candidate i of ps, a pin set of this generation, is seen for the
 * first time in it in a chain that met the pins (met) or did not; later
 * calls for the same return false.
 */
bool		 runconf_candidate_first(struct runconf *rc,
		    const struct pinset *ps, size_t i, bool met);
/*
 * rc is no longer the current generation: drop its cached leaves, which
 * only connections set up before the reload may still ask for, and its
 * kept TLS sessions, which nothing may resume any more.
 */
void		 runconf_retire(struct runconf *rc);
/* Drop a reference (NULL ok). */
void		 runconf_unref(struct runconf *rc);

#endif

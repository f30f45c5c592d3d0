/*
 * Reference-counted configuration generations. A generation keeps the CA
 * of the previous one when its files are unchanged, and otherwise loads
 * (or creates) its own; its forged leaves are always its own.
 */
#include "config.h"

#include <stdlib.h>

#include "log.h"
#include "runconf.h"
#include "xmalloc.h"

/*
 * The CA for conf: prev's when it came from the same, unchanged files,
 * else loaded or created. A CA loaded for a reload is warned about here;
 * at start, pinproxy -t's checks did that already.
 */
static struct ca *
runconf_ca(const struct conf *conf, const struct runconf *prev,
    bool *created, char *err, size_t errlen)
{
	struct ca	*ca;

	/* Unchanged, but expired since it was loaded: checked again. */
	if (prev != NULL && ca_unchanged(prev->ca, conf->ca_cert,
	    conf->ca_key) && ca_not_after(prev->ca) > time(NULL))
		return ca_ref(prev->ca);
	if ((ca = ca_load_or_create(conf->ca_cert, conf->ca_key, created,
	    err, errlen)) == NULL)
		return NULL;
	if (prev != NULL && ca_warning(ca) != NULL)
		log_msg(EV_CONFIG_WARNING, "interception CA: %s",
		    ca_warning(ca));
	return ca;
}

/* Log that rc's CA was created, if it was. */
static void
runconf_log_created(const struct runconf *rc)
{
	struct logline	 l;

	if (!rc->ca_created)
		return;
	log_begin(&l, EV_CA_CREATED);
	log_str(&l, LK_FILE, rc->conf->ca_cert);
	log_end(&l);
}

void
runconf_ca_settle(struct runconf *rc, bool started)
{
	if (started)
		runconf_log_created(rc);
	else if (rc->ca_created)
		ca_discard(rc->ca);
	rc->ca_created = false;
}

/* The generation's upstream part, reusing what prev (NULL ok) read. */
static struct runconf *
runconf_build(struct conf *conf, unsigned long gen, const struct runconf *prev,
    char *err, size_t errlen)
{
	struct runconf	*rc;
	size_t		 i;

	rc = xcalloc(1, sizeof(*rc));
	rc->refs = 1;
	rc->generation = gen;
	rc->conf = conf_ref(conf);
	rc->alpn = alpnguess_new();
	rc->candidate_logged = xcalloc(conf->npinsets,
	    sizeof(*rc->candidate_logged));
	for (i = 0; i < conf->npinsets; i++)
		rc->candidate_logged[i] = xcalloc(
		    conf->pinsets[i].ncandidates + 1,
		    sizeof(**rc->candidate_logged));
	if ((rc->tls = tls_upstream_new(conf, prev != NULL ? prev->tls : NULL,
	    err, errlen)) == NULL) {
		runconf_unref(rc);
		return NULL;
	}
	return rc;
}

struct runconf *
runconf_new_upstream(struct conf *conf, unsigned long gen, char *err,
    size_t errlen)
{
	return runconf_build(conf, gen, NULL, err, errlen);
}

struct runconf *
runconf_new(struct conf *conf, unsigned long gen, const struct runconf *prev,
    char *err, size_t errlen)
{
	struct runconf	*rc;

	if ((rc = runconf_build(conf, gen, prev, err, errlen)) == NULL)
		return NULL;
	if ((rc->ca = runconf_ca(conf, prev, &rc->ca_created, err,
	    errlen)) == NULL ||
	    (rc->leaves = leafcert_cache_new(LEAFCERT_CACHE_DEFAULT, err,
	    errlen)) == NULL) {
		/* A CA made for a generation not built goes again. */
		if (rc->ca != NULL)
			runconf_ca_settle(rc, false);
		runconf_unref(rc);
		return NULL;
	}
	/* A reload builds its generation last: what it made is kept. */
	if (prev != NULL)
		runconf_ca_settle(rc, true);
	return rc;
}

struct runconf *
runconf_ref(struct runconf *rc)
{
	rc->refs++;
	return rc;
}

bool
runconf_candidate_first(struct runconf *rc, const struct pinset *ps,
    size_t i, bool met)
{
	unsigned char	 bit = met ? RUNCONF_CANDIDATE_MET :
			    RUNCONF_CANDIDATE_UNMET;
	size_t		 set;

	if (ps < rc->conf->pinsets ||
	    ps >= rc->conf->pinsets + rc->conf->npinsets)
		return false;
	set = (size_t)(ps - rc->conf->pinsets);
	if (i >= ps->ncandidates || (rc->candidate_logged[set][i] & bit))
		return false;
	rc->candidate_logged[set][i] |= bit;
	return true;
}

void
runconf_retire(struct runconf *rc)
{
	rc->retired = true;
	leafcert_cache_flush(rc->leaves);
	tls_upstream_retire(rc->tls);
}

void
runconf_unref(struct runconf *rc)
{
	size_t	 i;

	if (rc == NULL || --rc->refs > 0)
		return;
	for (i = 0; rc->candidate_logged != NULL &&
	    i < rc->conf->npinsets; i++)
		free(rc->candidate_logged[i]);
	free(rc->candidate_logged);
	leafcert_cache_free(rc->leaves);
	alpnguess_free(rc->alpn);
	ca_unref(rc->ca);
	tls_upstream_free(rc->tls);
	conf_unref(rc->conf);
	free(rc);
}

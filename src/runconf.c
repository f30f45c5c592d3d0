/* Reference-counted configuration generations. */
#include "config.h"

#include <stdlib.h>

#include "runconf.h"
#include "xmalloc.h"

struct runconf *
runconf_new(struct conf *conf, unsigned long gen, char *err, size_t errlen)
{
	struct runconf	*rc;
	size_t		 i;

	rc = xcalloc(1, sizeof(*rc));
	rc->refs = 1;
	rc->generation = gen;
	rc->conf = conf_ref(conf);
	rc->candidate_logged = xcalloc(conf->npinsets,
	    sizeof(*rc->candidate_logged));
	for (i = 0; i < conf->npinsets; i++)
		rc->candidate_logged[i] = xcalloc(
		    conf->pinsets[i].ncandidates + 1, sizeof(bool));
	if ((rc->tls = tls_upstream_new(conf, err, errlen)) == NULL) {
		runconf_unref(rc);
		return NULL;
	}
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
    size_t i)
{
	size_t	 set;

	if (ps < rc->conf->pinsets ||
	    ps >= rc->conf->pinsets + rc->conf->npinsets)
		return false;
	set = (size_t)(ps - rc->conf->pinsets);
	if (i >= ps->ncandidates || rc->candidate_logged[set][i])
		return false;
	rc->candidate_logged[set][i] = true;
	return true;
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
	tls_upstream_free(rc->tls);
	conf_unref(rc->conf);
	free(rc);
}

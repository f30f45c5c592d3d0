/* Reference-counted configuration generations. */
#include <stdlib.h>

#include "runconf.h"
#include "xmalloc.h"

struct runconf *
runconf_new(struct conf *conf, unsigned long gen, char *err, size_t errlen)
{
	struct runconf	*rc;

	rc = xcalloc(1, sizeof(*rc));
	rc->refs = 1;
	rc->generation = gen;
	rc->conf = conf_ref(conf);
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

void
runconf_unref(struct runconf *rc)
{
	if (rc == NULL || --rc->refs > 0)
		return;
	tls_upstream_free(rc->tls);
	conf_unref(rc->conf);
	free(rc);
}

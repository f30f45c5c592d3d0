/*
 * libFuzzer target for the observe_file reader of pinproxy-pin
 * --from-observed: the input is a whole file, read through
 * observed_load() from memory. Whatever the lines, the reader keeps
 * within them, and every group it returns has hosts and pins.
 */
#include "config.h"

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "diag.h"
#include "observed.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every group has a domain, hosts and pins, each seen by a host. */
static void
fuzz_check_groups(const struct observed *o)
{
	const struct observed_group	*g;
	size_t				 i, k;

	for (i = 0; i < o->ngroups; i++) {
		g = &o->groups[i];
		assert(g->domain != NULL && g->nhosts > 0 && g->npins > 0);
		for (k = 0; k < g->nhosts; k++)
			assert(g->hosts[k] != NULL);
		for (k = 0; k < g->npins; k++)
			assert(g->pins[k].pin[0] != '\0' &&
			    g->pins[k].nseen > 0 &&
			    g->pins[k].seen_by != NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diag	*d;
	struct observed	*o;
	FILE		*fp;

	if (size == 0 || (fp = fmemopen((void *)data, size, "r")) == NULL)
		return 0;
	d = diag_new();
	o = observed_load(fp, "fuzz.jsonl", NULL, d);
	fclose(fp);
	assert(o != NULL);
	fuzz_check_groups(o);
	observed_free(o);
	diag_free(d);
	return 0;
}

/*
 * libFuzzer target for the configuration loader: the input is a whole
 * configuration file, read through conf_parse_stream() from memory. A file
 * is either accepted without errors or refused with at least one, and every
 * host of an accepted pin set must be found again by conf_lookup().
 */
#include "config.h"

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "conf_parse.h"
#include "diag.h"

/* 2025-01-01 00:00:00 UTC: expiry warnings must not depend on the day. */
#define FUZZ_NOW	((time_t)1735689600)

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every host of every pin set leads back to a pin set. */
static void
fuzz_check_lookup(const struct conf *c)
{
	const struct pinset	*ps;
	char			 host[300];
	size_t			 i, j;

	for (i = 0; i < c->npinsets; i++) {
		ps = &c->pinsets[i];
		assert(ps->name != NULL && ps->nhosts > 0);
		for (j = 0; j < ps->nhosts; j++) {
			if (strncmp(ps->hosts[j], "*.", 2) != 0) {
				/* Two sections never claim the same host. */
				assert(conf_lookup(c, ps->hosts[j]) == ps);
				continue;
			}
			snprintf(host, sizeof(host), "fuzz%s",
			    ps->hosts[j] + 1);
			assert(conf_lookup(c, host) != NULL);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE	*devnull;
	struct diag	*d;
	struct conf	*c;
	FILE		*fp;
	size_t		 i;

	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		return 0;
	if ((fp = fmemopen((void *)data, size, "r")) == NULL)
		return 0;
	d = diag_new();
	c = conf_parse_stream(fp, "fuzz.conf", FUZZ_NOW, d);
	fclose(fp);

	if (c != NULL) {
		assert(diag_errors(d) == 0);
		fuzz_check_lookup(c);
		conf_unref(c);
	} else
		assert(diag_errors(d) > 0 && diag_first_error(d) != NULL);
	for (i = 0; i < diag_count(d); i++)
		assert(strncmp(diag_text(d, i), "fuzz.conf:", 10) == 0);
	diag_print(d, devnull);
	diag_free(d);
	return 0;
}

/*
 * libFuzzer target for the configuration loader: the input is a whole
 * configuration file, read through conf_parse_stream() from memory. A file
 * is either accepted without errors or refused with at least one, every
 * host of an accepted pin set must be found again by conf_lookup(), and
 * conf_lookup() must agree with a scan of every pattern ranked by
 * hostmatch_score() for names made from the patterns.
 */
#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "conf_parse.h"
#include "diag.h"
#include "hostmatch.h"

/* 2025-01-01 00:00:00 UTC: expiry warnings must not depend on the day. */
#define FUZZ_NOW	((time_t)1735689600)

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The pin set a scan of every pattern finds, ties to the earlier set. */
static const struct pinset *
fuzz_scan(const struct conf *c, const char *host)
{
	const struct pinset	*best = NULL;
	int			 best_score = -1, score;
	size_t			 i, j;

	for (i = 0; i < c->npinsets; i++)
		for (j = 0; j < c->pinsets[i].nhosts; j++) {
			score = hostmatch_score(c->pinsets[i].hosts[j], host,
			    c->pinsets[i].include_subdomains);
			if (score > best_score) {
				best_score = score;
				best = &c->pinsets[i];
			}
		}
	return best;
}

/* What conf_lookup() promises: the scan, then through NAT64. */
static const struct pinset *
fuzz_lookup(const struct conf *c, const char *host)
{
	const struct pinset	*ps;
	char			 v4[HOSTMATCH_NAT64_MAX][16];
	size_t			 i, n;

	if ((ps = fuzz_scan(c, host)) != NULL)
		return ps;
	n = hostmatch_nat64(host, v4);
	for (i = 0; i < n && ps == NULL; i++)
		ps = fuzz_scan(c, v4[i]);
	return ps;
}

/* The index and the scan agree on names made from each pattern. */
static void
fuzz_check_index(const struct conf *c)
{
	static const char *const	 fmt[] = { "%s", "a.%s", "a.b.%s",
	    "a%s", ".%s", "..%s", ".a.%s", "a..%s", "%s." };
	const char			*pattern, *dot;
	char				 host[300];
	size_t				 i, j, k;

	for (i = 0; i < c->npinsets; i++)
		for (j = 0; j < c->pinsets[i].nhosts; j++) {
			pattern = c->pinsets[i].hosts[j];
			for (k = 0; k < sizeof(fmt) / sizeof(fmt[0]); k++) {
				snprintf(host, sizeof(host), fmt[k], pattern);
				assert(conf_lookup(c, host) ==
				    fuzz_lookup(c, host));
			}
			for (dot = strchr(pattern, '.'); dot != NULL;
			    dot = strchr(dot + 1, '.'))
				assert(conf_lookup(c, dot + 1) ==
				    fuzz_lookup(c, dot + 1));
		}
}

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
		fuzz_check_index(c);
		conf_unref(c);
	} else
		assert(diag_errors(d) > 0 && diag_first_error(d) != NULL);
	for (i = 0; i < diag_count(d); i++)
		assert(strncmp(diag_text(d, i), "fuzz.conf:", 10) == 0);
	diag_print(d, devnull);
	diag_free(d);
	return 0;
}

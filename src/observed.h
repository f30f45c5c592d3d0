/*
 * Reading an observe_file for pinproxy-pin --from-observed: the JSON lines
 * are parsed, and the hosts grouped by registrable domain (by the public
 * suffix list when one is installed, else the last two labels) and port,
 * with the pins of the chains they served; hosts of a domain and port
 * whose chains share no CA key, even through other hosts, are in groups
 * of their own.
 */
#ifndef PINPROXY_OBSERVED_H
#define PINPROXY_OBSERVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pin.h"

/* Where Debian's publicsuffix package installs the list. */
#define OBSERVED_PSL_PATH	"/usr/share/publicsuffix/public_suffix_list.dat"

/* One certificate of an observed chain. */
struct observed_pin {
	char		 pin[PIN_TEXT_MAX];
	int		 depth;
	char		*subject;	/* owned */
	/* In a group: of how many of its hosts' chains, the first of them. */
	size_t		 nseen;
	const char	*seen_by;	/* one of the group's hosts */
};

/*
 * Hosts of one registrable domain and port whose chains share CA keys
 * (directly or through each other), and their pins.
 */
struct observed_group {
	char			*domain;	/* owned */
	uint16_t		 port;
	char			**hosts;	/* owned, sorted */
	size_t			 nhosts;
	struct observed_pin	*pins;		/* depth order, distinct */
	size_t			 npins;
	/*
	 * Hosts seen with chains that share no CA key (no key at all, for
	 * chains of one certificate): an interception while observing, or
	 * a change of CA; their pins were merged all the same. Sorted.
	 */
	char			**conflicts;	/* owned */
	size_t			 nconflicts;
	bool			 conflict;	/* while one group a host */
};

struct observed {
	/* Sorted by domain, port and first host. */
	struct observed_group	*groups;
	size_t			 ngroups;
	bool			 psl;		/* the suffix list was used */
};

struct diag;

/*
 * Read the observe_file lines of fp (named name in messages) and group
 * them; psl_path is read when it exists. A line that is not an observation
 * is reported in d as NAME:LINE and left out.
 */
struct observed	*observed_load(FILE *fp, const char *name,
		    const char *psl_path, struct diag *d);
/* Free (NULL is fine). */
void		 observed_free(struct observed *o);

#endif

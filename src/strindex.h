/*
 * An index of strings: each key (a string the caller owns and keeps
 * unchanged while it is indexed) maps to a number. Open addressing, at
 * most half full, so a lookup costs a hash and a few comparisons however
 * many keys there are. The keys come from the configuration, never from
 * the network: no seed is needed against crafted collisions.
 */
#ifndef PINPROXY_STRINDEX_H
#define PINPROXY_STRINDEX_H

#include <stdbool.h>
#include <stddef.h>

struct strindex_slot {
	const char	*key;		/* NULL: empty */
	size_t		 value;
};

/* All zero is an empty index. */
struct strindex {
	struct strindex_slot	*slot;
	size_t			 cap;	/* 0 or a power of two */
	size_t			 n;
};

/* Map key to value; false (and nothing changes) when key is indexed. */
bool	 strindex_add(struct strindex *, const char *key, size_t value);
/* The value of key, if it is indexed. */
bool	 strindex_get(const struct strindex *, const char *key,
	    size_t *value);
/* Forget every key; the index is empty and can be used again. */
void	 strindex_free(struct strindex *);

#endif

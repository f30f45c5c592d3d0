/*
 * An index of strings: see strindex.h.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strindex.h"
#include "xmalloc.h"

#define STRINDEX_MIN_CAP	64

/* FNV-1a. */
static uint64_t
strindex_hash(const char *key)
{
	uint64_t	 h = 14695981039346656037ULL;

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ULL;
	return h;
}

/* The slot of key, or the empty slot where it would go. */
static struct strindex_slot *
strindex_slot(const struct strindex *ix, const char *key)
{
	size_t	 i, mask = ix->cap - 1;

	for (i = strindex_hash(key) & mask; ix->slot[i].key != NULL;
	    i = (i + 1) & mask)
		if (strcmp(ix->slot[i].key, key) == 0)
			break;
	return &ix->slot[i];
}

/* Room for one more key, with at most half the slots taken. */
static void
strindex_room(struct strindex *ix)
{
	struct strindex_slot	*old = ix->slot;
	size_t			 i, oldcap = ix->cap;

	if (2 * (ix->n + 1) <= ix->cap)
		return;
	ix->cap = oldcap == 0 ? STRINDEX_MIN_CAP : 2 * oldcap;
	ix->slot = xcalloc(ix->cap, sizeof(*ix->slot));
	for (i = 0; i < oldcap; i++)
		if (old[i].key != NULL)
			*strindex_slot(ix, old[i].key) = old[i];
	free(old);
}

bool
strindex_add(struct strindex *ix, const char *key, size_t value)
{
	struct strindex_slot	*s;

	strindex_room(ix);
	s = strindex_slot(ix, key);
	if (s->key != NULL)
		return false;
	s->key = key;
	s->value = value;
	ix->n++;
	return true;
}

bool
strindex_get(const struct strindex *ix, const char *key, size_t *value)
{
	const struct strindex_slot	*s;

	if (ix->n == 0)
		return false;
	s = strindex_slot(ix, key);
	if (s->key == NULL)
		return false;
	*value = s->value;
	return true;
}

void
strindex_free(struct strindex *ix)
{
	free(ix->slot);
	memset(ix, 0, sizeof(*ix));
}

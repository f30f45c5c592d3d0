/*
 * The observe_file reader: a small JSON parser for the lines the daemon
 * writes (objects, arrays, strings, numbers, literals; unknown members are
 * skipped), the public suffix list, and the grouping of hosts by
 * registrable domain and port, and within those by the CA keys their
 * chains share.
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "hostmatch.h"
#include "observed.h"
#include "pin.h"
#include "xmalloc.h"

/* Nesting allowed in a line; the daemon writes three levels. */
#define OBSERVED_DEPTH_MAX	8
/* Longest line read; the daemon's are far shorter. */
#define OBSERVED_LINE_MAX	(256 * 1024)

/* A cursor over one line. */
struct json {
	const char	*p;
	const char	*end;
};

/* The public suffix rules, sorted for bsearch. */
struct psl {
	char		**rules;
	size_t		 nrules;
	size_t		 cap;		/* rules has room for */
};

static bool	json_skip_value(struct json *, int);

static void
json_ws(struct json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
	    *j->p == '\r' || *j->p == '\n'))
		j->p++;
}

static bool
json_eat(struct json *j, char c)
{
	json_ws(j);
	if (j->p < j->end && *j->p == c) {
		j->p++;
		return true;
	}
	return false;
}

/* Four hex digits at p (before end) into *u. */
static bool
json_hex4(const char *p, const char *end, unsigned int *u)
{
	int	 i, d;

	if (end - p < 4)
		return false;
	*u = 0;
	for (i = 0; i < 4; i++) {
		if (p[i] >= '0' && p[i] <= '9')
			d = p[i] - '0';
		else if (p[i] >= 'a' && p[i] <= 'f')
			d = p[i] - 'a' + 10;
		else if (p[i] >= 'A' && p[i] <= 'F')
			d = p[i] - 'A' + 10;
		else
			return false;
		*u = *u << 4 | (unsigned int)d;
	}
	return true;
}

/*
 * A string into a new buffer (*out may be NULL to skip it). \uXXXX
 * escapes of bytes below 0x80 are decoded; others are kept as '?'.
 */
static bool
json_string(struct json *j, char **out)
{
	const char	*q;
	char		*buf;
	size_t		 n = 0, cap;
	unsigned int	 u;

	if (!json_eat(j, '"'))
		return false;
	/* As long as the string's text, no longer: decoding only shortens. */
	for (q = j->p; q < j->end && *q != '"'; q++)
		if (*q == '\\' && q + 1 < j->end)
			q++;
	cap = (size_t)(q - j->p);
	buf = xmalloc(cap + 1);
	while (j->p < j->end && *j->p != '"') {
		/* Never past the text measured (a cut escape, say). */
		if ((unsigned char)*j->p < 0x20 || n >= cap)
			goto bad;
		if (*j->p != '\\') {
			buf[n++] = *j->p++;
			continue;
		}
		if (++j->p >= j->end)
			goto bad;
		switch (*j->p) {
		case 'u':
			if (!json_hex4(j->p + 1, j->end, &u))
				goto bad;
			buf[n++] = u > 0 && u < 0x80 ? (char)u : '?';
			j->p += 5;
			continue;
		case 'n':
			buf[n++] = '\n';
			break;
		case 't':
			buf[n++] = '\t';
			break;
		case '"': case '\\': case '/':
			buf[n++] = *j->p;
			break;
		default:
			buf[n++] = '?';
			break;
		}
		j->p++;
	}
	if (j->p >= j->end)
		goto bad;
	j->p++;
	buf[n] = '\0';
	if (out != NULL)
		*out = buf;
	else
		free(buf);
	return true;
bad:
	free(buf);
	return false;
}

/* A non-negative integer, within the line, that fits an unsigned long. */
static bool
json_uint(struct json *j, unsigned long *out)
{
	unsigned long	 d;

	json_ws(j);
	if (j->p >= j->end || *j->p < '0' || *j->p > '9')
		return false;
	*out = 0;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
		d = (unsigned long)(*j->p++ - '0');
		if (*out > (ULONG_MAX - d) / 10)
			return false;
		*out = *out * 10 + d;
	}
	return true;
}

/* Skip any value: the members a newer daemon may add. */
static bool
json_skip_value(struct json *j, int depth)
{
	json_ws(j);
	if (j->p >= j->end || depth > OBSERVED_DEPTH_MAX)
		return false;
	if (*j->p == '"')
		return json_string(j, NULL);
	if (*j->p == '{' || *j->p == '[') {
		char close = *j->p == '{' ? '}' : ']';

		j->p++;
		if (json_eat(j, close))
			return true;
		do {
			if (close == '}' && (!json_string(j, NULL) ||
			    !json_eat(j, ':')))
				return false;
			if (!json_skip_value(j, depth + 1))
				return false;
		} while (json_eat(j, ','));
		return json_eat(j, close);
	}
	while (j->p < j->end && strchr(",]} \t\r\n", *j->p) == NULL)
		j->p++;
	return true;
}

/* A member's name and its colon; nothing to free when false. */
static bool
json_key(struct json *j, char **key)
{
	if (!json_string(j, key))
		return false;
	if (json_eat(j, ':'))
		return true;
	free(*key);
	return false;
}

/*
 * Whether key is one of names (a NULL-terminated list) seen before in the
 * object whose seen bits are *seen: a key given twice makes the line
 * ambiguous (which one counts?), and pinproxy never writes one.
 */
static bool
json_key_repeated(const char *key, const char *const *names, unsigned *seen)
{
	unsigned	 i;

	for (i = 0; names[i] != NULL; i++) {
		if (strcmp(key, names[i]) != 0)
			continue;
		if ((*seen & (1u << i)) != 0)
			return true;
		*seen |= 1u << i;
	}
	return false;
}

/* One chain entry: pin, depth and subject. */
static bool
json_cert(struct json *j, struct observed_pin *op)
{
	static const char *const names[] = { "pin", "depth", "subject", NULL };
	struct pin	 pin;
	unsigned long	 depth = 0;
	unsigned	 seen = 0;
	char		*key, *val, perr[128];
	bool		 ok;

	memset(op, 0, sizeof(*op));
	op->depth = -1;
	if (!json_eat(j, '{'))
		return false;
	if (json_eat(j, '}'))
		return false;
	do {
		if (!json_key(j, &key))
			return false;
		ok = true;
		if (json_key_repeated(key, names, &seen))
			ok = false;
		else if (strcmp(key, "pin") == 0 && (ok = json_string(j, &val))) {
			ok = pin_parse(val, &pin, perr, sizeof(perr));
			if (ok)
				pin_format(&pin, op->pin, sizeof(op->pin));
			free(val);
		} else if (strcmp(key, "depth") == 0 &&
		    (ok = json_uint(j, &depth)))
			op->depth = depth < 64 ? (int)depth : -1;
		else if (strcmp(key, "subject") == 0)
			ok = json_string(j, &op->subject);
		else if (ok)
			ok = json_skip_value(j, 2);
		free(key);
		if (!ok)
			return false;
	} while (json_eat(j, ','));
	return json_eat(j, '}') && op->pin[0] != '\0' && op->depth >= 0;
}

/* One observation line: host, port and chain. */
static bool
json_line(struct json *j, char **host, unsigned long *port,
    struct observed_pin **chain, size_t *nchain)
{
	static const char *const names[] = { "host", "port", "chain", NULL };
	struct observed_pin	 op;
	unsigned		 seen = 0;
	char			*key;
	bool			 ok;

	if (!json_eat(j, '{'))
		return false;
	do {
		if (!json_key(j, &key))
			return false;
		if (json_key_repeated(key, names, &seen))
			ok = false;
		else if (strcmp(key, "host") == 0)
			ok = json_string(j, host);
		else if (strcmp(key, "port") == 0)
			ok = json_uint(j, port);
		else if (strcmp(key, "chain") == 0) {
			ok = json_eat(j, '[');
			if (ok && !json_eat(j, ']')) {
				do {
					if (!(ok = json_cert(j, &op))) {
						free(op.subject);
						break;
					}
					*chain = xreallocarray(*chain,
					    *nchain + 1, sizeof(op));
					(*chain)[(*nchain)++] = op;
				} while (json_eat(j, ','));
				ok = ok && json_eat(j, ']');
			}
		} else
			ok = json_skip_value(j, 1);
		free(key);
		if (!ok)
			return false;
	} while (json_eat(j, ','));
	if (!json_eat(j, '}'))
		return false;
	json_ws(j);
	return j->p == j->end;
}

static int
psl_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read the list (rules, one a line; // comments); an empty one if absent. */
static bool
psl_load(const char *path, struct psl *psl)
{
	FILE	*fp;
	char	 line[512], *s;
	size_t	 len;

	memset(psl, 0, sizeof(*psl));
	if (path == NULL || (fp = fopen(path, "r")) == NULL)
		return false;
	while (fgets(line, sizeof(line), fp) != NULL) {
		s = line;
		len = strcspn(s, " \t\r\n");
		s[len] = '\0';
		if (len == 0 || strncmp(s, "//", 2) == 0)
			continue;
		/* Doubling: Debian's list has some 10,000 rules. */
		if (psl->nrules == psl->cap) {
			psl->cap = psl->cap == 0 ? 1024 : 2 * psl->cap;
			psl->rules = xreallocarray(psl->rules, psl->cap,
			    sizeof(char *));
		}
		psl->rules[psl->nrules++] = xstrdup(s);
	}
	fclose(fp);
	if (psl->nrules > 0)
		qsort(psl->rules, psl->nrules, sizeof(char *), psl_cmp);
	return true;
}

static bool
psl_has(const struct psl *psl, const char *rule)
{
	return psl->nrules > 0 && bsearch(&rule, psl->rules, psl->nrules,
	    sizeof(char *), psl_cmp) != NULL;
}

static void
psl_free(struct psl *psl)
{
	size_t	 i;

	for (i = 0; i < psl->nrules; i++)
		free(psl->rules[i]);
	free(psl->rules);
}

/*
 * The registrable domain of host: the public suffix (longest rule;
 * "*.x" covers one label under x; "!y" makes y's parent the suffix) plus
 * one label. Without a list, the last two labels. An IP literal or a name
 * that is itself a suffix stays as it is.
 */
static char *
registrable(const struct psl *psl, const char *host)
{
	const char	*labels[128], *s, *suffix = NULL;
	char		 rule[HOSTMATCH_NAME_MAX + 2];
	size_t		 n = 0, i;

	if (strchr(host, ':') != NULL || strspn(host, "0123456789.") ==
	    strlen(host))
		return xstrdup(host);
	labels[n++] = host;
	for (s = host; (s = strchr(s, '.')) != NULL && n < 128; s++)
		labels[n++] = s + 1;
	if (psl->nrules == 0)
		return xstrdup(labels[n >= 2 ? n - 2 : 0]);
	/* labels[i] is host from its i-th label on; look longest first. */
	for (i = 0; i < n && suffix == NULL; i++) {
		snprintf(rule, sizeof(rule), "!%s", labels[i]);
		if (psl_has(psl, rule)) {
			suffix = i + 1 < n ? labels[i + 1] : labels[i];
			break;
		}
		if (psl_has(psl, labels[i]))
			suffix = labels[i];
		else if (i + 1 < n) {
			snprintf(rule, sizeof(rule), "*.%s", labels[i + 1]);
			if (psl_has(psl, rule))
				suffix = labels[i];
		}
	}
	if (suffix == NULL)
		suffix = labels[n - 1];	/* the implicit "*" rule */
	for (i = 0; i < n; i++)
		if (labels[i] == suffix)
			break;
	return xstrdup(i > 0 ? labels[i - 1] : host);
}

/* A CA key one host's chains held, to find the hosts that share it. */
struct ca_key {
	const char		*domain;
	uint16_t		 port;
	const char		*pin;
	size_t			 group;
};

/* A new group for domain and port in o (its pointer moves later). */
static struct observed_group *
group_new(struct observed *o, const char *domain, uint16_t port)
{
	struct observed_group	*g;

	o->groups = xappendarray(o->groups, o->ngroups, sizeof(*g));
	g = &o->groups[o->ngroups++];
	memset(g, 0, sizeof(*g));
	g->domain = xstrdup(domain);
	g->port = port;
	return g;
}

/*
 * Where the pins of many groups are, by group and pin, for merging groups
 * of thousands of hosts: a slot holds a group and its pin's index + 1
 * (0: empty), at most half of them taken.
 */
struct pin_at {
	size_t	 group;
	size_t	 pin;
};

struct pin_index {
	struct pin_at	*slot;
	size_t		 cap;		/* 0 or a power of two */
	size_t		 n;
};

static uint64_t	 text_hash(const char *, uint64_t);

/* The free slot or the slot of pin in group gi of groups. */
static struct pin_at *
pin_slot(const struct observed_group *groups, const struct pin_index *ix,
    size_t gi, const char *pin)
{
	size_t	 i, mask = ix->cap - 1;

	for (i = text_hash(pin, gi) & mask; ix->slot[i].pin != 0;
	    i = (i + 1) & mask)
		if (ix->slot[i].group == gi && strcmp(
		    groups[gi].pins[ix->slot[i].pin - 1].pin, pin) == 0)
			break;
	return &ix->slot[i];
}

/* Room for one more pin in ix. */
static void
pin_index_room(const struct observed_group *groups, struct pin_index *ix)
{
	struct pin_at	*old = ix->slot;
	size_t		 i, oldcap = ix->cap;

	if (2 * (ix->n + 1) <= ix->cap)
		return;
	ix->cap = ix->cap == 0 ? 64 : 2 * ix->cap;
	ix->slot = xcalloc(ix->cap, sizeof(*ix->slot));
	for (i = 0; i < oldcap; i++)
		if (old[i].pin != 0)
			*pin_slot(groups, ix, old[i].group, groups[old[i].group]
			    .pins[old[i].pin - 1].pin) = old[i];
	free(old);
}

/*
 * Add the pins of chain to group gi of groups, taking their subjects: a
 * new host's (not in the group yet) when host is set, else more of the
 * last host's. Each pin counts the hosts it was seen for. With ix, the
 * group's pins are found through it, else by a look at each.
 */
static void
group_add(struct observed_group *groups, size_t gi, struct pin_index *ix,
    const char *host, struct observed_pin *chain, size_t nchain)
{
	struct observed_group	*g = &groups[gi];
	struct pin_at		*at = NULL;
	size_t			 i, k;

	if (host != NULL) {
		g->hosts = xappendarray(g->hosts, g->nhosts, sizeof(char *));
		g->hosts[g->nhosts++] = xstrdup(host);
	}
	for (i = 0; i < nchain; i++) {
		if (ix != NULL) {
			pin_index_room(groups, ix);
			at = pin_slot(groups, ix, gi, chain[i].pin);
			k = at->pin != 0 ? at->pin - 1 : g->npins;
		} else {
			for (k = 0; k < g->npins; k++)
				if (strcmp(g->pins[k].pin, chain[i].pin) == 0)
					break;
		}
		if (k < g->npins) {
			if (host != NULL)
				g->pins[k].nseen += chain[i].nseen;
			free(chain[i].subject);
			continue;
		}
		g->pins = xappendarray(g->pins, g->npins, sizeof(*g->pins));
		g->pins[g->npins] = chain[i];
		g->pins[g->npins].seen_by = g->hosts[g->nhosts - 1];
		if (g->pins[g->npins].nseen == 0)
			g->pins[g->npins].nseen = 1;
		g->npins++;
		if (at != NULL) {
			at->group = gi;
			at->pin = g->npins;
			ix->n++;
		}
	}
}

/* Order by domain, port, then what (a host, a pin): the sort of all. */
static int
domain_port_cmp(const char *d1, uint16_t p1, const char *w1, const char *d2,
    uint16_t p2, const char *w2)
{
	int	 c;

	if ((c = strcmp(d1, d2)) != 0)
		return c;
	if (p1 != p2)
		return p1 < p2 ? -1 : 1;
	return strcmp(w1, w2);
}

/* The groups of o, one per host and port, by a hash of both. */
struct host_index {
	size_t	*slot;		/* a group's index + 1; 0: empty */
	size_t	 cap;		/* a power of two */
};

/* FNV-1a of s, from salt (a port, a group). */
static uint64_t
text_hash(const char *s, uint64_t salt)
{
	uint64_t	 h = 14695981039346656037ULL ^ salt;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* The free slot or the slot of the group for host and port. */
static size_t *
host_slot(const struct observed *o, const struct host_index *ix,
    const char *host, uint16_t port)
{
	const struct observed_group	*g;
	size_t				 i, mask = ix->cap - 1;

	for (i = text_hash(host, port) & mask; ix->slot[i] != 0;
	    i = (i + 1) & mask) {
		g = &o->groups[ix->slot[i] - 1];
		if (g->port == port && strcmp(g->hosts[0], host) == 0)
			break;
	}
	return &ix->slot[i];
}

/* Room for one more group, at most half the slots taken. */
static void
host_index_room(const struct observed *o, struct host_index *ix)
{
	size_t	 i;

	if (2 * (o->ngroups + 1) <= ix->cap)
		return;
	free(ix->slot);
	ix->cap = ix->cap == 0 ? 64 : 2 * ix->cap;
	ix->slot = xcalloc(ix->cap, sizeof(*ix->slot));
	for (i = 0; i < o->ngroups; i++)
		*host_slot(o, ix, o->groups[i].hosts[0],
		    o->groups[i].port) = i + 1;
}

/*
 * Whether chain holds a key of g's chains: a CA key (depth 1 and up) when
 * both have one, else any key.
 */
static bool
chain_shares(const struct observed_group *g, const struct observed_pin *chain,
    size_t nchain)
{
	bool	 ca_g = false, ca_c = false, both;
	size_t	 i, k;

	for (k = 0; k < g->npins; k++)
		ca_g = ca_g || g->pins[k].depth > 0;
	for (i = 0; i < nchain; i++)
		ca_c = ca_c || chain[i].depth > 0;
	both = ca_g && ca_c;
	for (i = 0; i < nchain; i++)
		for (k = 0; k < g->npins; k++)
			if ((!both || (chain[i].depth > 0 &&
			    g->pins[k].depth > 0)) &&
			    strcmp(chain[i].pin, g->pins[k].pin) == 0)
				return true;
	return false;
}

/*
 * Add the pins of chain (taking their subjects) to the group of host and
 * port, made when new: one group a host, the lines of a file merged as
 * they are read, so that memory follows hosts and pins, not lines. A
 * chain that shares no CA key with the host's earlier ones marks it.
 */
static void
host_add(struct observed *o, struct host_index *ix, const char *domain,
    const char *host, uint16_t port, struct observed_pin *chain,
    size_t nchain)
{
	size_t	*slot;

	host_index_room(o, ix);
	slot = host_slot(o, ix, host, port);
	if (*slot != 0) {
		if (!chain_shares(&o->groups[*slot - 1], chain, nchain))
			o->groups[*slot - 1].conflict = true;
		group_add(o->groups, *slot - 1, NULL, NULL, chain, nchain);
		return;
	}
	(void)group_new(o, domain, port);
	group_add(o->groups, o->ngroups - 1, NULL, host, chain, nchain);
	*slot = o->ngroups;
}

static int
ca_key_cmp(const void *a, const void *b)
{
	const struct ca_key *x = a, *y = b;

	return domain_port_cmp(x->domain, x->port, x->pin, y->domain,
	    y->port, y->pin);
}

static size_t
set_find(size_t *parent, size_t i)
{
	while (parent[i] != i)
		i = parent[i] = parent[parent[i]];
	return i;
}

/*
 * Join the hosts of one domain and port whose chains share a CA key
 * (depth 1 and up), directly or through other hosts: a host whose chains
 * have no CA key in common with the others stays apart, so that a host a
 * client happened to visit (user content, another tenant) never adds its
 * CA to the pins of the rest. parent[i] ends as the set of group i.
 */
static void
join_by_ca(const struct observed *o, size_t *parent)
{
	struct ca_key	*keys;
	size_t		 n = 0, i, k, a, b;

	for (i = 0; i < o->ngroups; i++)
		n += o->groups[i].npins;
	keys = xreallocarray(NULL, n + 1, sizeof(*keys));
	n = 0;
	for (i = 0; i < o->ngroups; i++) {
		parent[i] = i;
		for (k = 0; k < o->groups[i].npins; k++) {
			if (o->groups[i].pins[k].depth == 0)
				continue;
			keys[n].domain = o->groups[i].domain;
			keys[n].port = o->groups[i].port;
			keys[n].pin = o->groups[i].pins[k].pin;
			keys[n++].group = i;
		}
	}
	if (n > 0)
		qsort(keys, n, sizeof(*keys), ca_key_cmp);
	for (i = 1; i < n; i++) {
		if (ca_key_cmp(&keys[i - 1], &keys[i]) != 0)
			continue;
		a = set_find(parent, keys[i - 1].group);
		b = set_find(parent, keys[i].group);
		if (a != b)
			parent[a > b ? a : b] = a < b ? a : b;
	}
	free(keys);
}

/* Merge the per-host groups of o into one group per set of join_by_ca. */
static void
group_by_ca(struct observed *o)
{
	struct observed	 joined = { 0 };
	struct observed_group *src, *dst;
	struct pin_index ix = { 0 };
	size_t		*parent, *slot, i, root;

	parent = xcalloc(o->ngroups + 1, sizeof(*parent));
	slot = xcalloc(o->ngroups + 1, sizeof(*slot));
	join_by_ca(o, parent);
	for (i = 0; i < o->ngroups; i++) {
		src = &o->groups[i];
		root = set_find(parent, i);
		if (root == i) {
			slot[i] = joined.ngroups;
			group_new(&joined, src->domain, src->port);
		}
		group_add(joined.groups, slot[root], &ix, src->hosts[0],
		    src->pins, src->npins);
		if (src->conflict) {
			dst = &joined.groups[slot[root]];
			dst->conflicts = xappendarray(dst->conflicts,
			    dst->nconflicts, sizeof(char *));
			dst->conflicts[dst->nconflicts++] =
			    xstrdup(src->hosts[0]);
		}
		free(src->hosts[0]);
		free(src->hosts);
		free(src->pins);
		free(src->domain);
	}
	free(o->groups);
	o->groups = joined.groups;
	o->ngroups = joined.ngroups;
	free(ix.slot);
	free(parent);
	free(slot);
}

static int
host_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
pin_depth_cmp(const void *a, const void *b)
{
	const struct observed_pin *x = a, *y = b;

	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	return strcmp(x->pin, y->pin);
}

static int
group_cmp(const void *a, const void *b)
{
	const struct observed_group *x = a, *y = b;

	/* Hosts sorted, no host in two groups of a domain and port. */
	return domain_port_cmp(x->domain, x->port, x->hosts[0], y->domain,
	    y->port, y->hosts[0]);
}

/* Parse one line into o; false when it is not an observation. */
static bool
observed_line(struct observed *o, struct host_index *ix,
    const struct psl *psl, const char *line, size_t len)
{
	struct json		 j = { line, line + len };
	struct observed_pin	*chain = NULL;
	char			*host = NULL, *domain;
	char			 norm[HOSTMATCH_NAME_MAX];
	unsigned long		 port = 0;
	size_t			 nchain = 0, i;
	bool			 ok;

	ok = json_line(&j, &host, &port, &chain, &nchain) && host != NULL &&
	    port > 0 && port <= 65535 && nchain > 0 &&
	    hostmatch_normalize(host, strlen(host), norm, sizeof(norm));
	free(host);
	if (!ok) {
		for (i = 0; i < nchain; i++)
			free(chain[i].subject);
		free(chain);
		return false;
	}
	domain = registrable(psl, norm);
	host_add(o, ix, domain, norm, (uint16_t)port, chain, nchain);
	free(domain);
	free(chain);
	return true;
}

/*
 * The next line of fp, without its LF, in buf (size bytes, not
 * NUL-terminated); the bytes of a longer line past size are read and
 * dropped, and *too_long says so. -1 at the end of the file.
 */
static ssize_t
observed_getline(FILE *fp, char *buf, size_t size, bool *too_long)
{
	size_t	 n = 0;
	int	 c;

	*too_long = false;
	while ((c = getc_unlocked(fp)) != EOF && c != '\n') {
		if (n < size)
			buf[n++] = (char)c;
		else
			*too_long = true;
	}
	if (c == EOF && n == 0)
		return -1;
	return (ssize_t)n;
}

struct observed *
observed_load(FILE *fp, const char *name, const char *psl_path,
    struct diag *d)
{
	struct observed		*o;
	struct psl		 psl;
	struct host_index	 ix = { NULL, 0 };
	char			*line;
	size_t			 i;
	ssize_t			 len;
	int			 lineno = 0;
	bool			 too_long;

	o = xcalloc(1, sizeof(*o));
	o->psl = psl_load(psl_path, &psl);
	/* The parser keeps within len; the NUL is for safety's sake. */
	line = xmalloc(OBSERVED_LINE_MAX + 1);
	while ((len = observed_getline(fp, line, OBSERVED_LINE_MAX,
	    &too_long)) != -1) {
		line[len] = '\0';
		lineno++;
		while (len > 0 && line[len - 1] == '\r')
			len--;
		if (len == 0 && !too_long)
			continue;
		if (too_long ||
		    !observed_line(o, &ix, &psl, line, (size_t)len))
			diag_error(d, name, lineno, "not an observe_file line:"
			    " left out");
	}
	free(line);
	free(ix.slot);
	psl_free(&psl);
	group_by_ca(o);
	for (i = 0; i < o->ngroups; i++) {
		qsort(o->groups[i].hosts, o->groups[i].nhosts,
		    sizeof(char *), host_cmp);
		if (o->groups[i].nconflicts > 0)
			qsort(o->groups[i].conflicts, o->groups[i].nconflicts,
			    sizeof(char *), host_cmp);
		qsort(o->groups[i].pins, o->groups[i].npins,
		    sizeof(struct observed_pin), pin_depth_cmp);
	}
	if (o->ngroups > 0)
		qsort(o->groups, o->ngroups, sizeof(*o->groups), group_cmp);
	return o;
}

void
observed_free(struct observed *o)
{
	size_t	 i, k;

	if (o == NULL)
		return;
	for (i = 0; i < o->ngroups; i++) {
		for (k = 0; k < o->groups[i].nhosts; k++)
			free(o->groups[i].hosts[k]);
		for (k = 0; k < o->groups[i].npins; k++)
			free(o->groups[i].pins[k].subject);
		for (k = 0; k < o->groups[i].nconflicts; k++)
			free(o->groups[i].conflicts[k]);
		free(o->groups[i].conflicts);
		free(o->groups[i].hosts);
		free(o->groups[i].pins);
		free(o->groups[i].domain);
	}
	free(o->groups);
	free(o);
}

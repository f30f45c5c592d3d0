/*
 * The configuration object: defaults, reference counting, and the lookups
 * the runtime needs (pin set for a host, connect_ports, plain_ports,
 * allow_clients).
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "hostmatch.h"
#include "xmalloc.h"

static const char *const conf_unpinned_names[] = {
	[UNPINNED_PASS] = "pass",
	[UNPINNED_VERIFY] = "verify",
	[UNPINNED_BLOCK] = "block",
};

struct conf *
conf_new_default(void)
{
	struct conf	*c;
	char		 err[128];

	c = xcalloc(1, sizeof(*c));
	c->refs = 1;
	c->listen = xcalloc(1, sizeof(*c->listen));
	if (!cv_addr("127.0.0.1:8080", &c->listen[0], err, sizeof(err)))
		abort();
	c->nlisten = 1;
	c->ca_cert = xstrdup(PINPROXY_STATEDIR "/ca.pem");
	c->ca_key = xstrdup(PINPROXY_STATEDIR "/ca.key");
	c->trust = xstrdup("system");
	c->unpinned = UNPINNED_PASS;
	/* 80 too: clients CONNECT for http:// URLs (undici, ws://). */
	c->connect_ports = xcalloc(2, sizeof(*c->connect_ports));
	c->connect_ports[0] = 80;
	c->connect_ports[1] = 443;
	c->nconnect_ports = 2;
	c->plain_ports = xcalloc(2, sizeof(*c->plain_ports));
	c->plain_ports[0] = 80;
	c->plain_ports[1] = 443;
	c->nplain_ports = 2;
	c->allow_clients = xcalloc(2, sizeof(*c->allow_clients));
	if (!cv_cidr("127.0.0.0/8", &c->allow_clients[0], err, sizeof(err)) ||
	    !cv_cidr("::1", &c->allow_clients[1], err, sizeof(err)))
		abort();
	c->nallow_clients = 2;
	c->max_connections = 1024;
	c->observe_max = 10000;
	c->report_max = 1000;
	c->connect_timeout_ms = 10 * 1000;
	c->header_timeout_ms = 30 * 1000;
	c->idle_timeout_ms = 300 * 1000;
	c->shutdown_timeout_ms = 10 * 1000;
	c->log = LOG_SINK_STDERR;
	c->log_level = LL_INFO;
	c->ca_host = xstrdup(CONF_DEFAULT_CA_HOST);
	return c;
}

struct conf *
conf_ref(struct conf *c)
{
	c->refs++;
	return c;
}

/* Free the contents of one pin set. */
static void
conf_pinset_clear(struct pinset *ps)
{
	size_t	 i;

	free(ps->name);
	for (i = 0; i < ps->nhosts; i++)
		free(ps->hosts[i]);
	free(ps->hosts);
	free(ps->pins);
	free(ps->candidates);
	free(ps->ca_file);
}

void
conf_unref(struct conf *c)
{
	size_t	 i;

	if (c == NULL || --c->refs > 0)
		return;
	for (i = 0; i < c->npinsets; i++)
		conf_pinset_clear(&c->pinsets[i]);
	free(c->pinsets);
	for (i = 0; i < c->nforwarders; i++) {
		free(c->forwarders[i].name);
		free(c->forwarders[i].listen);
		free(c->forwarders[i].host);
		free(c->forwarders[i].sni);
		free(c->forwarders[i].alpn);
	}
	free(c->forwarders);
	free(c->path);
	free(c->listen);
	free(c->transparent);
	free(c->ca_cert);
	free(c->ca_key);
	free(c->trust);
	free(c->connect_ports);
	free(c->plain_ports);
	free(c->allow_clients);
	free(c->report_file);
	free(c->observe_file);
	free(c->ca_host);
	free(c->deny_pins);
	free(c->deny_file);
	strindex_free(&c->hostindex);
	free(c);
}

const struct forwarder *
conf_forwarder_at(const struct conf *c, const char *listen)
{
	size_t	 i, j;

	for (i = 0; i < c->nforwarders; i++)
		for (j = 0; j < c->forwarders[i].nlisten; j++)
			if (strcmp(c->forwarders[i].listen[j].text, listen) ==
			    0)
				return &c->forwarders[i];
	return NULL;
}

void
conf_index_hosts(struct conf *c)
{
	size_t	 i, j;

	strindex_free(&c->hostindex);
	for (i = 0; i < c->npinsets; i++)
		for (j = 0; j < c->pinsets[i].nhosts; j++)
			(void)strindex_add(&c->hostindex,
			    c->pinsets[i].hosts[j], i);
}

/*
 * The pin set whose hosts cover host most specifically, found in the
 * index as hostmatch_score() ranks patterns: the host itself; then
 * "*.PARENT" for the name one label below PARENT (an address has no
 * parent); then the longest parent listed by a set with
 * include_subdomains. Two patterns never tie: they differ in length.
 */
static const struct pinset *
conf_lookup_host(const struct conf *c, const char *host)
{
	const struct pinset	*ps;
	const char		*dot, *parent;
	char			 wild[HOSTMATCH_NAME_MAX + 2];
	size_t			 i;

	if (strindex_get(&c->hostindex, host, &i))
		return &c->pinsets[i];
	if (hostmatch_is_ip(host) || (dot = strchr(host, '.')) == NULL)
		return NULL;
	/* (A name starting with a dot has no first label: no wildcard.) */
	if (dot != host && snprintf(wild, sizeof(wild), "*%s", dot) <
	    (int)sizeof(wild) && strindex_get(&c->hostindex, wild, &i))
		return &c->pinsets[i];
	for (; dot != NULL; dot = strchr(dot + 1, '.')) {
		if (dot == host)
			continue;
		parent = dot + 1;
		if (!strindex_get(&c->hostindex, parent, &i))
			continue;
		ps = &c->pinsets[i];
		if (ps->include_subdomains && strncmp(parent, "*.", 2) != 0 &&
		    !hostmatch_is_ip(parent))
			return ps;
	}
	return NULL;
}

int
conf_error_line(const struct conf *c, const char *err)
{
	const struct {
		const char	*key;
		int		 line;
	} keys[] = {
		{ "ca_cert ", c->lines.ca_cert },
		{ "ca_key ", c->lines.ca_key },
		{ "report_file ", c->lines.report_file },
		{ "observe_file ", c->lines.observe_file },
		{ "stats_listen ", c->stats_listen.line },
		{ "upstream_mark ", c->lines.upstream_mark },
	};
	const char	*at, *first = NULL;
	size_t		 i;
	int		 line = 0;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		at = strstr(err, keys[i].key);
		if (at != NULL && (at == err || at[-1] == ' ') &&
		    (first == NULL || at < first)) {
			first = at;
			line = keys[i].line;
		}
	}
	return line;
}

void
conf_locate(const struct conf *c, int line, char *err, size_t errlen)
{
	char	 buf[1024];

	if (line <= 0 || c->path == NULL)
		return;
	snprintf(buf, sizeof(buf), "%s:%d: %s", c->path, line, err);
	xstrlcpy(err, buf, errlen);
}

const struct pinset *
conf_lookup(const struct conf *c, const char *host)
{
	const struct pinset	*ps;
	char			 v4[HOSTMATCH_NAT64_MAX][16];
	size_t			 i, n;

	/*
	 * Through NAT64, an IPv4 host's, unless a set covers its own: of
	 * the local-use prefix, any address it may carry (a wrong guess
	 * only checks a host more than it needed).
	 */
	if ((ps = conf_lookup_host(c, host)) != NULL)
		return ps;
	n = hostmatch_nat64(host, v4);
	for (i = 0; i < n && ps == NULL; i++)
		ps = conf_lookup_host(c, v4[i]);
	return ps;
}

bool
conf_connect_port_allowed(const struct conf *c, uint16_t port)
{
	size_t	 i;

	for (i = 0; i < c->nconnect_ports; i++)
		if (c->connect_ports[i] == port)
			return true;
	return false;
}

bool
conf_plain_port_allowed(const struct conf *c, uint16_t port)
{
	size_t	 i;

	for (i = 0; i < c->nplain_ports; i++)
		if (c->plain_ports[i] == port)
			return true;
	if (c->plain_ports_set)
		return false;
	for (i = 0; i < c->npinsets; i++)
		if (c->pinsets[i].port == port)
			return true;
	return false;
}

bool
conf_client_allowed(const struct conf *c, const struct sockaddr *sa)
{
	size_t	 i;

	for (i = 0; i < c->nallow_clients; i++)
		if (cidr_match(&c->allow_clients[i], sa))
			return true;
	return false;
}

time_t
pinset_end(const struct pinset *ps)
{
	/* The date itself is still covered: expiry starts the day after. */
	return ps->expires + 86400;
}

bool
pinset_expired(const struct pinset *ps, time_t now)
{
	return ps->has_expires && now >= pinset_end(ps);
}

long
pinset_days_left(const struct pinset *ps, time_t now)
{
	return (long)((ps->expires - (now - now % 86400)) / 86400);
}

long long
pinset_seconds_left(const struct pinset *ps, time_t now)
{
	return (long long)pinset_end(ps) - (long long)now;
}

const char *
conf_unpinned_name(enum unpinned_policy p)
{
	return conf_unpinned_names[p];
}

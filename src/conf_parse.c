/*
 * Reading the configuration. inih does the INI syntax; it is fed through
 * our own line reader, which counts lines (Debian's inih gives the handler
 * none), rejects long lines and bad section headers before inih truncates
 * them, reports every malformed line (inih reports only the first), and
 * tracks sections itself. Keys are dispatched through one table.
 */
#include "config.h"

#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certfile.h"
#include "conf_parse.h"
#include "conf_value.h"
#include "deny.h"
#include "hostmatch.h"
#include "hostport.h"
#include "regfile.h"
#include "strindex.h"
#include "trust.h"
#include "xmalloc.h"

/* Lines of this many bytes (without the newline) or more are errors. */
#define CONF_LINE_MAX		199
/* Pin sets expiring within this many days are warned about. */
#define CONF_EXPIRY_WARN_DAYS	30

enum conf_section {
	SECTION_NONE,		/* before the first header */
	SECTION_PROXY,
	SECTION_PINS,
	SECTION_FORWARD,
	SECTION_IGNORED		/* bad header, already reported */
};

enum conf_key_id {
	KEY_LISTEN,
	KEY_CA_CERT,
	KEY_CA_KEY,
	KEY_TRUST,
	KEY_UNPINNED,
	KEY_CONNECT_PORTS,
	KEY_PLAIN_PORTS,
	KEY_ALLOW_CLIENTS,
	KEY_MAX_CONNECTIONS,
	KEY_CONNECT_TIMEOUT,
	KEY_HEADER_TIMEOUT,
	KEY_IDLE_TIMEOUT,
	KEY_SHUTDOWN_TIMEOUT,
	KEY_BUSY_POLL,
	KEY_LOG,
	KEY_LOG_LEVEL,
	KEY_REPORT_FILE,
	KEY_REPORT_MAX,
	KEY_OBSERVE_FILE,
	KEY_OBSERVE_MAX,
	KEY_STATS_LISTEN,
	KEY_CA_HOST,
	KEY_DENY_PIN,
	KEY_DENY_FILE,
	KEY_TRANSPARENT,
	KEY_UPSTREAM_MARK,
	KEY_HOSTS,
	KEY_PIN,
	KEY_CANDIDATE,
	KEY_REQUIRE,
	KEY_INCLUDE_SUBDOMAINS,
	KEY_ENFORCE,
	KEY_EXPIRES,
	KEY_PORT,
	KEY_CA_FILE,
	KEY_CONNECT_TO,
	KEY_FWD_LISTEN,
	KEY_UPSTREAM,
	KEY_PINSET,
	KEY_FWD_PIN,
	KEY_SNI,
	KEY_ALPN,
	KEY__COUNT
};

/* A host pattern already claimed by a section, to find duplicates. */
struct conf_host_seen {
	const char	*pattern;	/* borrowed from the pin set */
	const char	*pinset;
	int		 line;
};

/* What the end of the file checks about a forwarder. */
struct conf_fwd_ref {
	char		*pinset;	/* pinset = NAME, or NULL */
	int		 pinset_line;
	size_t		 inline_ps;	/* 1 + index of its pin lines' set */
};

struct conf_parse {
	FILE			*fp;
	const char		*file;
	struct diag		*diag;
	time_t			 now;
	int			 lineno;
	struct conf		*conf;

	enum conf_section	 section;
	bool			 proxy_seen;
	int			 proxy_line;
	struct pinset		*pinset;	/* the current [pins:] */
	struct forwarder	*fwd;		/* the current [forward:] */
	struct conf_fwd_ref	*fwdrefs;	/* one per forwarder */
	int			*candidate_lines; /* of its candidates */
	int			 key_line[KEY__COUNT]; /* 0: not seen */
	bool			 listen_default;
	int			 ca_host_line;	/* 0: the default name */

	struct conf_host_seen	*hosts;
	size_t			 nhosts;
	struct strindex		 claimed;	/* pattern -> hosts[] */
	struct strindex		 pins_seen;	/* [pins:] name -> its line */
	struct strindex		 fwd_seen;	/* [forward:] name -> line */
};

typedef bool (*conf_setter)(struct conf_parse *, const char *, char *,
    size_t);

struct conf_key {
	const char		*name;
	enum conf_section	 section;
	bool			 repeatable;
	conf_setter		 set;
};

static bool conf_set_listen(struct conf_parse *, const char *, char *, size_t);
static bool conf_set_ca_cert(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_ca_key(struct conf_parse *, const char *, char *, size_t);
static bool conf_set_trust(struct conf_parse *, const char *, char *, size_t);
static bool conf_set_unpinned(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_connect_ports(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_plain_ports(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_allow_clients(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_max_connections(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_connect_timeout(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_header_timeout(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_idle_timeout(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_busy_poll(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_shutdown_timeout(struct conf_parse *, const char *,
    char *, size_t);
static bool conf_set_log(struct conf_parse *, const char *, char *, size_t);
static bool conf_set_log_level(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_report_file(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_observe_file(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_observe_max(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_report_max(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_stats_listen(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_ca_host(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_deny_pin(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_deny_file(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_transparent(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_upstream_mark(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_hosts(struct conf_parse *, const char *, char *, size_t);
static bool conf_set_pin(struct conf_parse *, const char *, char *, size_t);
static bool conf_set_candidate(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_require(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_include_subdomains(struct conf_parse *, const char *,
    char *, size_t);
static bool conf_set_enforce(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_expires(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_port(struct conf_parse *, const char *, char *, size_t);
static bool conf_set_ca_file(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_connect_to(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_fwd_listen(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_upstream(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_pinset(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_fwd_pin(struct conf_parse *, const char *, char *,
    size_t);
static bool conf_set_sni(struct conf_parse *, const char *, char *, size_t);
static bool conf_set_alpn(struct conf_parse *, const char *, char *, size_t);
static void conf_end_forward(struct conf_parse *);

static const struct conf_key conf_keys[KEY__COUNT] = {
	[KEY_LISTEN] = { "listen", SECTION_PROXY, true, conf_set_listen },
	[KEY_CA_CERT] = { "ca_cert", SECTION_PROXY, false, conf_set_ca_cert },
	[KEY_CA_KEY] = { "ca_key", SECTION_PROXY, false, conf_set_ca_key },
	[KEY_TRUST] = { "trust", SECTION_PROXY, false, conf_set_trust },
	[KEY_UNPINNED] = { "unpinned", SECTION_PROXY, false,
	    conf_set_unpinned },
	[KEY_CONNECT_PORTS] = { "connect_ports", SECTION_PROXY, false,
	    conf_set_connect_ports },
	[KEY_PLAIN_PORTS] = { "plain_ports", SECTION_PROXY, false,
	    conf_set_plain_ports },
	[KEY_ALLOW_CLIENTS] = { "allow_clients", SECTION_PROXY, false,
	    conf_set_allow_clients },
	[KEY_MAX_CONNECTIONS] = { "max_connections", SECTION_PROXY, false,
	    conf_set_max_connections },
	[KEY_CONNECT_TIMEOUT] = { "connect_timeout", SECTION_PROXY, false,
	    conf_set_connect_timeout },
	[KEY_HEADER_TIMEOUT] = { "header_timeout", SECTION_PROXY, false,
	    conf_set_header_timeout },
	[KEY_IDLE_TIMEOUT] = { "idle_timeout", SECTION_PROXY, false,
	    conf_set_idle_timeout },
	[KEY_SHUTDOWN_TIMEOUT] = { "shutdown_timeout", SECTION_PROXY, false,
	    conf_set_shutdown_timeout },
	[KEY_BUSY_POLL] = { "busy_poll", SECTION_PROXY, false,
	    conf_set_busy_poll },
	[KEY_LOG] = { "log", SECTION_PROXY, false, conf_set_log },
	[KEY_LOG_LEVEL] = { "log_level", SECTION_PROXY, false,
	    conf_set_log_level },
	[KEY_REPORT_FILE] = { "report_file", SECTION_PROXY, false,
	    conf_set_report_file },
	[KEY_REPORT_MAX] = { "report_max", SECTION_PROXY, false,
	    conf_set_report_max },
	[KEY_OBSERVE_FILE] = { "observe_file", SECTION_PROXY, false,
	    conf_set_observe_file },
	[KEY_OBSERVE_MAX] = { "observe_max", SECTION_PROXY, false,
	    conf_set_observe_max },
	[KEY_STATS_LISTEN] = { "stats_listen", SECTION_PROXY, false,
	    conf_set_stats_listen },
	[KEY_CA_HOST] = { "ca_host", SECTION_PROXY, false, conf_set_ca_host },
	[KEY_DENY_PIN] = { "deny_pin", SECTION_PROXY, true, conf_set_deny_pin },
	[KEY_DENY_FILE] = { "deny_file", SECTION_PROXY, false,
	    conf_set_deny_file },
	[KEY_TRANSPARENT] = { "transparent", SECTION_PROXY, true,
	    conf_set_transparent },
	[KEY_UPSTREAM_MARK] = { "upstream_mark", SECTION_PROXY, false,
	    conf_set_upstream_mark },
	[KEY_HOSTS] = { "hosts", SECTION_PINS, true, conf_set_hosts },
	[KEY_PIN] = { "pin", SECTION_PINS, true, conf_set_pin },
	[KEY_CANDIDATE] = { "candidate", SECTION_PINS, true,
	    conf_set_candidate },
	[KEY_REQUIRE] = { "require", SECTION_PINS, false, conf_set_require },
	[KEY_INCLUDE_SUBDOMAINS] = { "include_subdomains", SECTION_PINS,
	    false, conf_set_include_subdomains },
	[KEY_ENFORCE] = { "enforce", SECTION_PINS, false, conf_set_enforce },
	[KEY_EXPIRES] = { "expires", SECTION_PINS, false, conf_set_expires },
	[KEY_PORT] = { "port", SECTION_PINS, false, conf_set_port },
	[KEY_CA_FILE] = { "ca_file", SECTION_PINS, false, conf_set_ca_file },
	[KEY_CONNECT_TO] = { "connect_to", SECTION_PINS, false,
	    conf_set_connect_to },
	[KEY_FWD_LISTEN] = { "listen", SECTION_FORWARD, true,
	    conf_set_fwd_listen },
	[KEY_UPSTREAM] = { "upstream", SECTION_FORWARD, false,
	    conf_set_upstream },
	[KEY_PINSET] = { "pinset", SECTION_FORWARD, false, conf_set_pinset },
	[KEY_FWD_PIN] = { "pin", SECTION_FORWARD, true, conf_set_fwd_pin },
	[KEY_SNI] = { "sni", SECTION_FORWARD, false, conf_set_sni },
	[KEY_ALPN] = { "alpn", SECTION_FORWARD, false, conf_set_alpn },
};

/* Replace a string setting; an empty value leaves it unset (NULL). */
static void
conf_set_string(char **dst, const char *value)
{
	free(*dst);
	*dst = value[0] == '\0' ? NULL : xstrdup(value);
}

/*
 * Append the addresses of value (a list) to *v, which holds *n, each with
 * the line that named it; nothing changes when one of them is bad.
 */
static bool
conf_add_addrs(struct conf_parse *p, const char *value, struct conf_addr **v,
    size_t *n, char *err, size_t errlen)
{
	struct conf_addr	 addr;
	char			**items;
	size_t			 k, i;
	bool			 ok = true;

	items = cv_list(value, &k);
	if (k == 0) {
		snprintf(err, errlen, "an address is required");
		ok = false;
	}
	for (i = 0; ok && i < k; i++)
		ok = cv_addr(items[i], &addr, err, errlen);
	if (ok) {
		*v = xreallocarray(*v, *n + k, sizeof(**v));
		for (i = 0; i < k; i++) {
			cv_addr(items[i], &(*v)[*n], err, errlen);
			(*v)[(*n)++].line = p->lineno;
		}
	}
	cv_list_free(items, k);
	return ok;
}

static bool
conf_set_listen(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	struct conf	*c = p->conf;
	/* The first listen line replaces the default address. */
	size_t		 n = p->listen_default ? 0 : c->nlisten;

	if (!conf_add_addrs(p, value, &c->listen, &n, err, errlen))
		return false;
	c->nlisten = n;
	p->listen_default = false;
	return true;
}

/* Another address (or list of them) for redirected connections. */
static bool
conf_set_transparent(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	return conf_add_addrs(p, value, &p->conf->transparent,
	    &p->conf->ntransparent, err, errlen);
}

/* The SO_MARK of upstream sockets; empty or 0: none. */
static bool
conf_set_upstream_mark(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	if (value[0] == '\0') {
		p->conf->upstream_mark = 0;
		return true;
	}
	return cv_uint(value, 0, 0xffffffffUL, &p->conf->upstream_mark, err,
	    errlen);
}

/* A required, non-empty path. */
static bool
conf_set_path(char **dst, const char *value, char *err, size_t errlen)
{
	if (value[0] == '\0') {
		snprintf(err, errlen, "a path is required");
		return false;
	}
	conf_set_string(dst, value);
	return true;
}

static bool
conf_set_ca_cert(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	return conf_set_path(&p->conf->ca_cert, value, err, errlen);
}

static bool
conf_set_ca_key(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	return conf_set_path(&p->conf->ca_key, value, err, errlen);
}

static bool
conf_set_trust(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	if (strcmp(value, "system") != 0 && !trust_check(value, err, errlen))
		return false;
	return conf_set_path(&p->conf->trust, value, err, errlen);
}

static bool
conf_set_unpinned(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	enum unpinned_policy	 u;

	for (u = UNPINNED_PASS; u <= UNPINNED_BLOCK; u++) {
		if (strcmp(value, conf_unpinned_name(u)) == 0) {
			p->conf->unpinned = u;
			return true;
		}
	}
	snprintf(err, errlen, "expected pass, verify or block");
	return false;
}

/* Replace a list of ports; at least one is required. */
static bool
conf_set_ports(uint16_t **dst, size_t *ndst, const char *value, char *err,
    size_t errlen)
{
	uint16_t	*ports;
	char		**items;
	size_t		 n, i;
	bool		 ok = true;

	items = cv_list(value, &n);
	if (n == 0) {
		snprintf(err, errlen, "at least one port is required");
		ok = false;
	}
	ports = xcalloc(n, sizeof(*ports));
	for (i = 0; ok && i < n; i++)
		ok = cv_port(items[i], &ports[i], err, errlen);
	cv_list_free(items, n);
	if (!ok) {
		free(ports);
		return false;
	}
	free(*dst);
	*dst = ports;
	*ndst = n;
	return true;
}

static bool
conf_set_connect_ports(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	return conf_set_ports(&p->conf->connect_ports,
	    &p->conf->nconnect_ports, value, err, errlen);
}

static bool
conf_set_plain_ports(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	if (!conf_set_ports(&p->conf->plain_ports, &p->conf->nplain_ports,
	    value, err, errlen))
		return false;
	p->conf->plain_ports_set = true;
	return true;
}

static bool
conf_set_allow_clients(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	struct conf	*c = p->conf;
	struct cidr	*blocks;
	char		**items;
	size_t		 n, i;
	bool		 ok = true;

	items = cv_list(value, &n);
	if (n == 0) {
		snprintf(err, errlen, "at least one address block is required");
		ok = false;
	}
	blocks = xcalloc(n, sizeof(*blocks));
	for (i = 0; ok && i < n; i++)
		ok = cv_cidr(items[i], &blocks[i], err, errlen);
	cv_list_free(items, n);
	if (!ok) {
		free(blocks);
		return false;
	}
	free(c->allow_clients);
	c->allow_clients = blocks;
	c->nallow_clients = n;
	return true;
}

static bool
conf_set_max_connections(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	return cv_uint(value, 1, 1000000, &p->conf->max_connections, err,
	    errlen);
}

/* A timeout of at least min_ms milliseconds. */
static bool
conf_set_timeout(uint64_t *dst, uint64_t min_ms, const char *value,
    char *err, size_t errlen)
{
	uint64_t	 ms;
	char		 min[32];

	if (!cv_duration(value, &ms, err, errlen))
		return false;
	if (ms < min_ms) {
		snprintf(err, errlen, "must be at least %s",
		    cv_duration_text(min_ms, min, sizeof(min)));
		return false;
	}
	*dst = ms;
	return true;
}

static bool
conf_set_connect_timeout(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	return conf_set_timeout(&p->conf->connect_timeout_ms, 1, value, err,
	    errlen);
}

static bool
conf_set_header_timeout(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	return conf_set_timeout(&p->conf->header_timeout_ms, 1, value, err,
	    errlen);
}

static bool
conf_set_idle_timeout(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	return conf_set_timeout(&p->conf->idle_timeout_ms, 1, value, err,
	    errlen);
}

static bool
conf_set_shutdown_timeout(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	return conf_set_timeout(&p->conf->shutdown_timeout_ms, 0, value, err,
	    errlen);
}

static bool
conf_set_busy_poll(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	return cv_duration_us(value, CONF_BUSY_POLL_MAX_US,
	    &p->conf->busy_poll_us, err, errlen);
}

static bool
conf_set_log(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	if (strcmp(value, "stderr") == 0)
		p->conf->log = LOG_SINK_STDERR;
	else if (strcmp(value, "syslog") == 0)
		p->conf->log = LOG_SINK_SYSLOG;
	else {
		snprintf(err, errlen, "expected stderr or syslog");
		return false;
	}
	return true;
}

static bool
conf_set_log_level(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	if (!log_level_parse(value, &p->conf->log_level)) {
		snprintf(err, errlen, "expected error, warn, info or debug");
		return false;
	}
	return true;
}

static bool
conf_set_report_file(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	conf_set_string(&p->conf->report_file, value);
	return true;
}

static bool
conf_set_observe_file(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	conf_set_string(&p->conf->observe_file, value);
	return true;
}

static bool
conf_set_observe_max(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	return cv_uint(value, 1, 10000000, &p->conf->observe_max, err,
	    errlen);
}

static bool
conf_set_report_max(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	return cv_uint(value, 1, 10000000, &p->conf->report_max, err,
	    errlen);
}

/* The name of the CA download page; empty disables it. */
static bool
conf_set_ca_host(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	char	 host[HOSTMATCH_NAME_MAX];

	if (value[0] == '\0') {
		conf_set_string(&p->conf->ca_host, value);
		return true;
	}
	if (!hostmatch_normalize(value, strlen(value), host, sizeof(host)) ||
	    hostmatch_is_ip(host) || strchr(host, '*') != NULL) {
		snprintf(err, errlen, "not a host name: %s", value);
		return false;
	}
	conf_set_string(&p->conf->ca_host, host);
	p->ca_host_line = p->lineno;
	return true;
}

static bool
conf_set_stats_listen(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	struct conf	*c = p->conf;

	if (value[0] == '\0') {
		c->has_stats_listen = false;
		return true;
	}
	if (!cv_addr(value, &c->stats_listen, err, errlen))
		return false;
	/* Its socket is IPv6-only, where a mapped address cannot be bound. */
	if (c->stats_listen.ss.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(
	    &((struct sockaddr_in6 *)&c->stats_listen.ss)->sin6_addr)) {
		snprintf(err, errlen, "an IPv4-mapped address: write the IPv4 "
		    "address");
		return false;
	}
	c->has_stats_listen = true;
	c->stats_listen.line = p->lineno;
	return true;
}

/* A key refused for every host. */
static bool
conf_set_deny_pin(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	struct conf	*c = p->conf;
	struct pin	 pin;

	if (!pin_parse(value, &pin, err, errlen))
		return false;
	c->deny_pins = xreallocarray(c->deny_pins, c->ndeny_pins + 1,
	    sizeof(*c->deny_pins));
	c->deny_pins[c->ndeny_pins++] = pin;
	return true;
}

/* Read the deny file now: every start and reload reads it afresh. */
static bool
conf_set_deny_file(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	struct conf	*c = p->conf;
	bool		 ok;

	if (value[0] != '\0') {
		/* The file's own messages come just before this line's. */
		diag_anchor(p->diag, p->lineno);
		ok = deny_file_read(value, &c->deny_pins, &c->ndeny_pins,
		    p->diag, err, errlen);
		diag_anchor(p->diag, 0);
		if (!ok)
			return false;
	}
	conf_set_string(&c->deny_file, value);
	return true;
}

/* Record a host pattern, refusing one that another line already claims. */
static bool
conf_claim_host(struct conf_parse *p, const char *pattern, char *err,
    size_t errlen)
{
	struct pinset	*ps = p->pinset;
	size_t		 i;

	if (strindex_get(&p->claimed, pattern, &i)) {
		snprintf(err, errlen, "host %s is already listed in "
		    "[pins:%s] at line %d", pattern, p->hosts[i].pinset,
		    p->hosts[i].line);
		return false;
	}
	ps->hosts = xappendarray(ps->hosts, ps->nhosts, sizeof(*ps->hosts));
	ps->hosts[ps->nhosts] = xstrdup(pattern);
	(void)strindex_add(&p->claimed, ps->hosts[ps->nhosts], p->nhosts);
	p->hosts = xappendarray(p->hosts, p->nhosts, sizeof(*p->hosts));
	p->hosts[p->nhosts].pattern = ps->hosts[ps->nhosts];
	p->hosts[p->nhosts].pinset = ps->name;
	p->hosts[p->nhosts].line = p->lineno;
	p->nhosts++;
	ps->nhosts++;
	return true;
}

static bool
conf_set_hosts(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	char		 pattern[HOSTMATCH_NAME_MAX + 2];
	char		**items;
	size_t		 n, i;
	bool		 ok = true;

	items = cv_list(value, &n);
	if (n == 0) {
		snprintf(err, errlen, "at least one host pattern is required");
		ok = false;
	}
	/* Validate every pattern before claiming any. */
	for (i = 0; ok && i < n; i++)
		ok = hostmatch_pattern(items[i], pattern, sizeof(pattern), err,
		    errlen);
	for (i = 0; ok && i < n; i++) {
		hostmatch_pattern(items[i], pattern, sizeof(pattern), err,
		    errlen);
		ok = conf_claim_host(p, pattern, err, errlen);
	}
	cv_list_free(items, n);
	return ok;
}

static bool
conf_set_pin(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	struct pinset	*ps = p->pinset;
	struct pin	 pin;

	if (!pin_parse_scoped(value, &pin, err, errlen))
		return false;
	ps->pins = xappendarray(ps->pins, ps->npins, sizeof(*ps->pins));
	ps->pins[ps->npins++] = pin;
	return true;
}

static bool
conf_set_candidate(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	struct pinset	*ps = p->pinset;
	struct pin	 pin;

	if (!pin_parse(value, &pin, err, errlen))
		return false;
	ps->candidates = xappendarray(ps->candidates, ps->ncandidates,
	    sizeof(*ps->candidates));
	p->candidate_lines = xappendarray(p->candidate_lines,
	    ps->ncandidates, sizeof(*p->candidate_lines));
	p->candidate_lines[ps->ncandidates] = p->lineno;
	ps->candidates[ps->ncandidates++] = pin;
	return true;
}

static bool
conf_set_require(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	if (strcmp(value, "leaf+ca") == 0)
		p->pinset->require = PINSET_REQUIRE_LEAF_CA;
	else if (strcmp(value, "any") == 0)
		p->pinset->require = PINSET_REQUIRE_ANY;
	else {
		snprintf(err, errlen, "require must be leaf+ca or any");
		return false;
	}
	return true;
}

static bool
conf_set_include_subdomains(struct conf_parse *p, const char *value,
    char *err, size_t errlen)
{
	return cv_bool(value, &p->pinset->include_subdomains, err, errlen);
}

static bool
conf_set_enforce(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	return cv_bool(value, &p->pinset->enforce, err, errlen);
}

static bool
conf_set_expires(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	struct pinset	*ps = p->pinset;

	if (value[0] == '\0') {
		ps->has_expires = false;
		return true;
	}
	if (!cv_date(value, &ps->expires, err, errlen))
		return false;
	ps->has_expires = true;
	xstrlcpy(ps->expires_text, value, sizeof(ps->expires_text));
	return true;
}

static bool
conf_set_port(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	return cv_port(value, &p->pinset->port, err, errlen);
}

static bool
conf_set_ca_file(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	STACK_OF(X509)	*certs;

	/* The runtime loads ca_file as one file, never as a directory. */
	if (value[0] != '\0') {
		if ((certs = certfile_load(value, true, err, errlen)) == NULL)
			return false;
		sk_X509_pop_free(certs, X509_free);
	}
	conf_set_string(&p->pinset->ca_file, value);
	return true;
}

static bool
conf_set_connect_to(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	struct pinset	*ps = p->pinset;

	if (value[0] == '\0') {
		ps->has_connect_to = false;
		return true;
	}
	if (!cv_addr(value, &ps->connect_to, err, errlen))
		return false;
	ps->has_connect_to = true;
	return true;
}

/* Whether a pin set has at least two different pins. */
static bool
conf_has_backup_pin(const struct pinset *ps)
{
	size_t	 i;

	for (i = 1; i < ps->npins; i++)
		if (!pin_equal(&ps->pins[0], &ps->pins[i]))
			return true;
	return false;
}

/* Warn about an enforced pin set that has expired or expires soon. */
static void
conf_check_expiry(struct conf_parse *p, const struct pinset *ps)
{
	long	 days;
	int	 line = p->key_line[KEY_EXPIRES];

	if (!ps->enforce || !ps->has_expires)
		return;
	if (pinset_expired(ps, p->now)) {
		diag_warn(p->diag, p->file, line, "[pins:%s] expired on %s: "
		    "its pins are no longer enforced", ps->name,
		    ps->expires_text);
		return;
	}
	days = pinset_days_left(ps, p->now);
	if (days > CONF_EXPIRY_WARN_DAYS)
		return;
	if (days <= 0)
		diag_warn(p->diag, p->file, line, "[pins:%s] expires today "
		    "(%s): after that date its pins are not enforced",
		    ps->name, ps->expires_text);
	else
		diag_warn(p->diag, p->file, line, "[pins:%s] expires in %ld "
		    "day%s (%s): after that date its pins are not enforced",
		    ps->name, days, days == 1 ? "" : "s", ps->expires_text);
}

/* A candidate and its place in the set, sorted by digest, then place. */
struct conf_cand {
	struct pin	 pin;	/* first: pin_cmp reads it */
	size_t		 i;
};

static int
conf_cand_cmp(const void *a, const void *b)
{
	const struct conf_cand	*x = a, *y = b;
	int			 r;

	if ((r = pin_cmp(&x->pin, &y->pin)) != 0)
		return r;
	return x->i < y->i ? -1 : x->i > y->i;
}

/*
 * A candidate that is also a pin, or a repeated one, is dropped with a
 * warning: it would announce a rotation that the set already accepts.
 * Sorted copies keep a set of 100,000 lines to n log n.
 */
static void
conf_check_candidates(struct conf_parse *p, struct pinset *ps)
{
	char			 text[PIN_TEXT_MAX];
	struct conf_cand	*sorted;
	struct pin		*pins;
	bool			*repeated;
	size_t			 i, kept, n = ps->ncandidates;

	if (n == 0)
		return;
	pins = xreallocarray(NULL, ps->npins + 1, sizeof(*pins));
	memcpy(pins, ps->pins, ps->npins * sizeof(*pins));
	qsort(pins, ps->npins, sizeof(*pins), pin_cmp);
	sorted = xreallocarray(NULL, n, sizeof(*sorted));
	repeated = xcalloc(n, sizeof(*repeated));
	for (i = 0; i < n; i++)
		sorted[i] = (struct conf_cand){ ps->candidates[i], i };
	qsort(sorted, n, sizeof(*sorted), conf_cand_cmp);
	for (i = 1; i < n; i++)
		if (pin_cmp(&sorted[i - 1].pin, &sorted[i].pin) == 0)
			repeated[sorted[i].i] = true;

	kept = 0;
	for (i = 0; i < n; i++) {
		pin_format(&ps->candidates[i], text, sizeof(text));
		if (bsearch(&ps->candidates[i], pins, ps->npins,
		    sizeof(*pins), pin_cmp) != NULL)
			diag_warn(p->diag, p->file, p->candidate_lines[i],
			    "[pins:%s] candidate %s is also a pin of the set: "
			    "it is ignored (remove the candidate line)",
			    ps->name, text);
		else if (repeated[i])
			diag_warn(p->diag, p->file, p->candidate_lines[i],
			    "[pins:%s] candidate %s is repeated", ps->name,
			    text);
		else
			ps->candidates[kept++] = ps->candidates[i];
	}
	ps->ncandidates = kept;
	free(repeated);
	free(sorted);
	free(pins);
}

/* require = leaf+ca needs a pin of each scope to be satisfiable. */
static void
conf_check_require(struct conf_parse *p, const struct pinset *ps)
{
	bool	 leaf = false, ca = false;
	size_t	 i;

	if (ps->require != PINSET_REQUIRE_LEAF_CA)
		return;
	for (i = 0; i < ps->npins; i++) {
		leaf |= ps->pins[i].scope == PIN_SCOPE_LEAF;
		ca |= ps->pins[i].scope == PIN_SCOPE_CA;
	}
	if (!leaf || !ca)
		diag_error(p->diag, p->file, p->key_line[KEY_REQUIRE],
		    "[pins:%s] require = leaf+ca needs at least one leaf: pin "
		    "and one ca: pin; it has no %s: pin", ps->name,
		    !leaf ? "leaf" : "ca");
}

/* Checks that need the whole section: required keys, warnings. */
/*
 * Each file of [proxy] has one use: a report appended to the CA's key, or
 * to the configuration, would spoil it for the next start.
 */
static void
conf_check_files(struct conf_parse *p)
{
	const struct conf	*c = p->conf;
	const struct {
		enum conf_key_id key;		/* KEY__COUNT: the file read */
		const char	*path;
	} f[] = {
		{ KEY__COUNT, p->file },
		{ KEY_CA_CERT, c->ca_cert },
		{ KEY_CA_KEY, c->ca_key },
		{ KEY_REPORT_FILE, c->report_file },
		{ KEY_OBSERVE_FILE, c->observe_file },
		{ KEY_DENY_FILE, c->deny_file },
		{ KEY_TRUST, c->trust != NULL &&
		    strcmp(c->trust, "system") != 0 ? c->trust : NULL },
	};
	size_t			 i, j, a, b, n = sizeof(f) / sizeof(f[0]);

	for (i = 0; i < n; i++) {
		for (j = i + 1; j < n; j++) {
			/* One PEM file may hold the CA's certificate and key. */
			if (f[i].key == KEY_CA_CERT && f[j].key == KEY_CA_KEY)
				continue;
			if (f[i].path == NULL || f[j].path == NULL ||
			    *f[i].path == '\0' || *f[j].path == '\0' ||
			    !regfile_same(f[i].path, f[j].path))
				continue;
			/* Told at the line of the key set last (b). */
			a = i;
			b = j;
			if (f[i].key != KEY__COUNT &&
			    p->key_line[f[i].key] > p->key_line[f[j].key]) {
				a = j;
				b = i;
			}
			diag_error(p->diag, p->file, p->key_line[f[b].key],
			    "%s %s is also %s: each file has one use",
			    conf_keys[f[b].key].name, f[b].path,
			    f[a].key == KEY__COUNT ? "the configuration file" :
			    conf_keys[f[a].key].name);
		}
	}
}

static void
conf_end_section(struct conf_parse *p)
{
	struct pinset	*ps = p->pinset;

	if (p->section == SECTION_PROXY) {
		conf_check_files(p);
		p->conf->lines.ca_cert = p->key_line[KEY_CA_CERT];
		p->conf->lines.ca_key = p->key_line[KEY_CA_KEY];
		p->conf->lines.report_file = p->key_line[KEY_REPORT_FILE];
		p->conf->lines.observe_file = p->key_line[KEY_OBSERVE_FILE];
		p->conf->lines.upstream_mark = p->key_line[KEY_UPSTREAM_MARK];
	}
	if (p->section == SECTION_FORWARD)
		conf_end_forward(p);
	if (p->section != SECTION_PINS || ps == NULL)
		return;
	if (ps->nhosts == 0 && p->key_line[KEY_HOSTS] == 0)
		diag_error(p->diag, p->file, ps->line, "[pins:%s] has no "
		    "hosts line: at least one host pattern is required",
		    ps->name);
	if (ps->npins == 0 && p->key_line[KEY_PIN] == 0)
		diag_error(p->diag, p->file, ps->line, "[pins:%s] has no "
		    "pin line: at least one pin is required", ps->name);
	if (ps->npins > 0 && !conf_has_backup_pin(ps))
		diag_warn(p->diag, p->file, ps->line,
		    "[pins:%s] has no backup pin: a key change on the server "
		    "will break every connection", ps->name);
	conf_check_candidates(p, ps);
	conf_check_require(p, ps);
	conf_check_expiry(p, ps);
}

/* Whether a pin set name is acceptable; err says why not. */
static bool
conf_pinset_name_ok(const char *name, size_t len, char *err, size_t errlen)
{
	size_t	 i;

	if (len == 0) {
		snprintf(err, errlen, "pin set name is empty");
		return false;
	}
	if (len > PINSET_NAME_MAX) {
		snprintf(err, errlen, "pin set name is %zu characters long; "
		    "the limit is %d", len, PINSET_NAME_MAX);
		return false;
	}
	for (i = 0; i < len; i++) {
		if (!isalnum((unsigned char)name[i]) && name[i] != '-' &&
		    name[i] != '_' && name[i] != '.') {
			snprintf(err, errlen, "pin set name may contain only "
			    "letters, digits, '-', '_' and '.'");
			return false;
		}
	}
	return true;
}

static bool
conf_set_fwd_listen(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	struct forwarder	*f = p->fwd;
	struct conf_addr	 addr;

	if (!cv_addr(value, &addr, err, errlen))
		return false;
	f->listen = xreallocarray(f->listen, f->nlisten + 1,
	    sizeof(*f->listen));
	addr.line = p->lineno;
	f->listen[f->nlisten++] = addr;
	return true;
}

/* HOST:PORT ([ADDR]:PORT for IPv6); host through the one name parser. */
static bool
conf_set_upstream(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	struct forwarder	*f = p->fwd;
	char			 host[HOSTMATCH_NAME_MAX];
	const char		*colon;
	uint16_t		 port;

	switch (hostport_parse(value, strlen(value), HOSTPORT_NEED_PORT, host,
	    &port)) {
	case HOSTPORT_OK:
		break;
	case HOSTPORT_NO_PORT:
		snprintf(err, errlen, "expected HOST:PORT");
		return false;
	case HOSTPORT_BARE_V6:
		snprintf(err, errlen, "an IPv6 address goes in brackets");
		return false;
	case HOSTPORT_BAD_PORT:
		/* The port text hostport_parse() refused, told as for listen. */
		colon = strchr(value[0] == '[' ? strchr(value, ']') : value,
		    ':');
		return cv_port(colon + 1, &port, err, errlen);
	case HOSTPORT_BAD_HOST:
		snprintf(err, errlen, "not a host name or address: %.*s",
		    (int)strcspn(value, value[0] == '[' ? "]" : ":") +
		    (value[0] == '[' ? 1 : 0), value);
		return false;
	}
	if (strchr(host, '*') != NULL) {
		snprintf(err, errlen, "not a host name or address: %s", host);
		return false;
	}
	conf_set_string(&f->host, host);
	f->port = port;
	return true;
}

static bool
conf_set_pinset(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	struct conf_fwd_ref	*r = &p->fwdrefs[p->fwd - p->conf->forwarders];

	if (r->inline_ps != 0) {
		snprintf(err, errlen, "pin lines are already given at line "
		    "%d: use either pinset or pin", p->key_line[KEY_FWD_PIN]);
		return false;
	}
	if (!conf_pinset_name_ok(value, strlen(value), err, errlen))
		return false;
	conf_set_string(&r->pinset, value);
	r->pinset_line = p->lineno;
	return true;
}

/* A pin line of a forwarder: into its anonymous pin set. */
static bool
conf_set_fwd_pin(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	struct conf		*c = p->conf;
	struct conf_fwd_ref	*r = &p->fwdrefs[p->fwd - c->forwarders];
	struct pinset		*ps;

	if (r->pinset != NULL) {
		snprintf(err, errlen, "pinset is already set at line %d: use "
		    "either pinset or pin", r->pinset_line);
		return false;
	}
	if (r->inline_ps == 0) {
		c->pinsets = xappendarray(c->pinsets, c->npinsets,
		    sizeof(*c->pinsets));
		ps = &c->pinsets[c->npinsets++];
		memset(ps, 0, sizeof(*ps));
		ps->name = xasprintf("forward:%s", p->fwd->name);
		ps->line = p->fwd->line;
		ps->enforce = true;
		ps->port = 443;
		r->inline_ps = c->npinsets;
	}
	p->pinset = &c->pinsets[r->inline_ps - 1];
	return conf_set_pin(p, value, err, errlen);
}

static bool
conf_set_sni(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	char	 host[HOSTMATCH_NAME_MAX];

	if (value[0] == '\0') {
		snprintf(err, errlen, "empty: leave the line out to send and "
		    "check the upstream host");
		return false;
	}
	if (!hostmatch_normalize(value, strlen(value), host, sizeof(host)) ||
	    hostmatch_is_ip(host) || strchr(host, '*') != NULL) {
		snprintf(err, errlen, "not a host name");
		return false;
	}
	conf_set_string(&p->fwd->sni, host);
	return true;
}

/* A list of ALPN protocol names, kept in wire format. */
static bool
conf_set_alpn(struct conf_parse *p, const char *value, char *err,
    size_t errlen)
{
	struct forwarder	*f = p->fwd;
	char			**items;
	size_t			 n, i, len, o = 0;
	bool			 ok = true;

	items = cv_list(value, &n);
	free(f->alpn);
	f->alpn = NULL;
	f->alpnlen = 0;
	for (i = 0; i < n; i++)
		o += strlen(items[i]) + 1;
	if (n > 0)
		f->alpn = xmalloc(o);
	for (i = 0; ok && i < n; i++) {
		if ((len = strlen(items[i])) > 255) {
			snprintf(err, errlen, "a protocol name is at most 255 "
			    "bytes");
			ok = false;
			break;
		}
		f->alpn[f->alpnlen++] = (unsigned char)len;
		memcpy(f->alpn + f->alpnlen, items[i], len);
		f->alpnlen += len;
	}
	cv_list_free(items, n);
	return ok;
}

/*
 * Whether a section [KIND:NAME] (name of len bytes) repeats one first seen
 * at line as have: if so it is reported and the rest of it ignored.
 */
static bool
conf_section_repeats(struct conf_parse *p, const struct strindex *seen,
    const char *kind, const char *name)
{
	size_t	 line;

	if (!strindex_get(seen, name, &line))
		return false;
	diag_error(p->diag, p->file, p->lineno,
	    "duplicate section [%s:%s], first at line %zu", kind, name, line);
	p->section = SECTION_IGNORED;
	return true;
}

/* A new [forward:NAME] section. */
static void
conf_begin_forward(struct conf_parse *p, const char *name, size_t len)
{
	struct conf		*c = p->conf;
	struct forwarder	*f;
	char			*key = xstrndup(name, len);

	if (conf_section_repeats(p, &p->fwd_seen, "forward", key)) {
		free(key);
		return;
	}
	c->forwarders = xappendarray(c->forwarders, c->nforwarders,
	    sizeof(*c->forwarders));
	p->fwdrefs = xappendarray(p->fwdrefs, c->nforwarders,
	    sizeof(*p->fwdrefs));
	memset(&p->fwdrefs[c->nforwarders], 0, sizeof(*p->fwdrefs));
	f = &c->forwarders[c->nforwarders++];
	memset(f, 0, sizeof(*f));
	f->name = key;
	f->line = p->lineno;
	(void)strindex_add(&p->fwd_seen, f->name, (size_t)f->line);
	p->fwd = f;
	p->section = SECTION_FORWARD;
}

/* Required keys of a [forward:] section. */
static void
conf_end_forward(struct conf_parse *p)
{
	struct forwarder	*f = p->fwd;
	struct conf_fwd_ref	*r = &p->fwdrefs[f - p->conf->forwarders];

	if (f->nlisten == 0 && p->key_line[KEY_FWD_LISTEN] == 0)
		diag_error(p->diag, p->file, f->line, "[forward:%s] has no "
		    "listen line", f->name);
	if (f->host == NULL && p->key_line[KEY_UPSTREAM] == 0)
		diag_error(p->diag, p->file, f->line, "[forward:%s] has no "
		    "upstream line", f->name);
	if (r->pinset == NULL && r->inline_ps == 0 &&
	    p->key_line[KEY_PINSET] == 0 && p->key_line[KEY_FWD_PIN] == 0)
		diag_error(p->diag, p->file, f->line, "[forward:%s] has "
		    "neither a pinset nor a pin line", f->name);
	if (r->inline_ps != 0 &&
	    !conf_has_backup_pin(&p->conf->pinsets[r->inline_ps - 1]))
		diag_warn(p->diag, p->file, f->line,
		    "[forward:%s] has no backup pin: a key change on the "
		    "server will break every connection", f->name);
}

/* A listening address as the kernel binds it. */
struct conf_bind {
	int		 family;	/* AF_INET or AF_INET6 */
	unsigned char	 addr[16];	/* 4 bytes for AF_INET */
	uint16_t	 port;
	bool		 any;		/* 0.0.0.0 or :: */
	bool		 v6only;	/* stats_listen's socket */
};

/* One listening address of the configuration, for the clash check. */
struct conf_addr_use {
	const struct conf_addr	*addr;
	const char		*key;
	const char		*fwd;	/* the forwarder's name, or NULL */
	int			 line;	/* addr's: 0, the default listen */
	size_t			 seq;	/* order within a line */
	struct conf_bind	 bind;
};

/* An IPv4-mapped IPv6 address binds its IPv4 address (bindv6only = 0). */
static void
conf_bind_of(const struct conf_addr_use *u, struct conf_bind *b)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	static const unsigned char	 zero[16];

	memset(b, 0, sizeof(*b));
	if (u->addr->ss.ss_family == AF_INET) {
		sin = (const struct sockaddr_in *)&u->addr->ss;
		b->family = AF_INET;
		memcpy(b->addr, &sin->sin_addr, 4);
		b->port = sin->sin_port;
	} else {
		sin6 = (const struct sockaddr_in6 *)&u->addr->ss;
		b->port = sin6->sin6_port;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			b->family = AF_INET;
			memcpy(b->addr, &sin6->sin6_addr.s6_addr[12], 4);
		} else {
			b->family = AF_INET6;
			memcpy(b->addr, &sin6->sin6_addr, 16);
			b->v6only = strcmp(u->key, "stats_listen") == 0;
		}
	}
	b->any = memcmp(b->addr, zero, b->family == AF_INET ? 4 : 16) == 0;
}

/*
 * Whether two listening addresses cannot both be bound: one address, or a
 * wildcard and another of its family, on one port. An IPv6 wildcard takes
 * the IPv4 port too (Linux's default, net.ipv6.bindv6only = 0), except
 * stats_listen's, which is bound IPv6-only.
 */
static bool
conf_addr_clash(const struct conf_bind *a, const struct conf_bind *b)
{
	if (a->port != b->port)
		return false;
	if (a->family == b->family)
		return a->any || b->any || memcmp(a->addr, b->addr,
		    a->family == AF_INET ? 4 : 16) == 0;
	return (a->family == AF_INET6 && a->any && !a->v6only) ||
	    (b->family == AF_INET6 && b->any && !b->v6only);
}

/* By port, then in file order: clashes are within a port. */
static int
conf_addr_use_cmp(const void *a, const void *b)
{
	const struct conf_addr_use	*x = a, *y = b;

	if (x->bind.port != y->bind.port)
		return x->bind.port < y->bind.port ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The section of u's line, as its errors name it. */
static void
conf_addr_use_section(const struct conf_addr_use *u, char *buf, size_t len)
{
	if (u->fwd == NULL)
		snprintf(buf, len, "[proxy]");
	else
		snprintf(buf, len, "[forward:%s]", u->fwd);
}

static void
conf_addr_use_add(struct conf_addr_use *u, size_t *n,
    const struct conf_addr *addr, const char *key, const char *fwd)
{
	u[*n] = (struct conf_addr_use){ addr, key, fwd, addr->line, *n,
	    { 0 } };
	conf_bind_of(&u[*n], &u[*n].bind);
	(*n)++;
}

/*
 * Every address the daemon listens on can be bound once: the later line
 * of two that clash is the error, named by the earlier one's owner.
 */
static void
conf_check_addresses(struct conf_parse *p)
{
	const struct conf	*c = p->conf;
	struct conf_addr_use	*u, *a, *b;
	char			 sa[300], sb[300];
	size_t			 n = 0, max, i, j, k, first;

	max = c->nlisten + c->ntransparent + 1;
	for (i = 0; i < c->nforwarders; i++)
		max += c->forwarders[i].nlisten;
	u = xreallocarray(NULL, max, sizeof(*u));
	for (i = 0; i < c->nlisten; i++)
		conf_addr_use_add(u, &n, &c->listen[i], "listen", NULL);
	if (c->has_stats_listen)
		conf_addr_use_add(u, &n, &c->stats_listen, "stats_listen",
		    NULL);
	for (i = 0; i < c->ntransparent; i++)
		conf_addr_use_add(u, &n, &c->transparent[i], "transparent",
		    NULL);
	for (i = 0; i < c->nforwarders; i++)
		for (k = 0; k < c->forwarders[i].nlisten; k++)
			conf_addr_use_add(u, &n, &c->forwarders[i].listen[k],
			    "listen", c->forwarders[i].name);
	/* Each against the earlier ones of its port (diag sorts by line). */
	qsort(u, n, sizeof(*u), conf_addr_use_cmp);
	for (i = 0, first = 0; i < n; i++) {
		b = &u[i];
		if (b->bind.port != u[first].bind.port)
			first = i;
		for (j = first; j < i && !conf_addr_clash(&b->bind,
		    &u[j].bind); j++)
			;
		if (j == i)
			continue;
		a = &u[j];
		conf_addr_use_section(a, sa, sizeof(sa));
		conf_addr_use_section(b, sb, sizeof(sb));
		/* A forwarder has one key: its section names it. */
		diag_error(p->diag, p->file, b->line,
		    "%s: %s %s is already used by %s%s%s%s", sb, b->key,
		    b->addr->text, a->line == 0 ? "the default address of " :
		    "", sa, a->fwd == NULL ? " " : "",
		    a->fwd == NULL ? a->key : "");
	}
	free(u);
}

/* Whole-file checks of forwarders: pin set names. */
static void
conf_check_forwarders(struct conf_parse *p)
{
	struct conf		*c = p->conf;
	struct forwarder	*f;
	struct conf_fwd_ref	*r;
	size_t			 i, k;

	for (i = 0; i < c->nforwarders; i++) {
		f = &c->forwarders[i];
		r = &p->fwdrefs[i];
		if (r->inline_ps != 0)
			f->pinset = r->inline_ps - 1;
		for (k = 0; r->pinset != NULL && k < c->npinsets; k++)
			if (strcmp(c->pinsets[k].name, r->pinset) == 0)
				break;
		if (r->pinset != NULL && k == c->npinsets)
			diag_error(p->diag, p->file, r->pinset_line,
			    "[forward:%s]: unknown pin set %s (no [pins:%s] "
			    "section)", f->name, r->pinset, r->pinset);
		else if (r->pinset != NULL)
			f->pinset = k;
	}
}

/* Free the parse state of forwarders. */
static void
conf_fwdrefs_free(struct conf_parse *p)
{
	size_t	 i;

	for (i = 0; i < p->conf->nforwarders; i++)
		free(p->fwdrefs[i].pinset);
	free(p->fwdrefs);
}

/* A new [pins:NAME] section. */
static void
conf_begin_pinset(struct conf_parse *p, const char *name, size_t len)
{
	struct conf	*c = p->conf;
	struct pinset	*ps;
	char		*key = xstrndup(name, len);

	if (conf_section_repeats(p, &p->pins_seen, "pins", key)) {
		free(key);
		return;
	}
	/* Host claims hold the names' strings, which do not move here. */
	c->pinsets = xappendarray(c->pinsets, c->npinsets,
	    sizeof(*c->pinsets));
	ps = &c->pinsets[c->npinsets++];
	memset(ps, 0, sizeof(*ps));
	ps->name = key;
	ps->line = p->lineno;
	(void)strindex_add(&p->pins_seen, ps->name, (size_t)ps->line);
	ps->enforce = true;
	ps->port = 443;
	p->pinset = ps;
	p->section = SECTION_PINS;
}

/* Handle a section header line (trimmed, starting with '['). */
static void
conf_header(struct conf_parse *p, const char *line)
{
	const char	*end, *name, *rest;
	char		 err[128];
	size_t		 len;

	conf_end_section(p);
	memset(p->key_line, 0, sizeof(p->key_line));
	p->pinset = NULL;
	p->fwd = NULL;
	p->section = SECTION_IGNORED;

	if ((end = strchr(line, ']')) == NULL) {
		diag_error(p->diag, p->file, p->lineno,
		    "section header has no closing ']'");
		return;
	}
	/* inih would silently drop what follows the ']'. */
	for (rest = end + 1; isspace((unsigned char)*rest); rest++)
		continue;
	if (*rest != '\0' && *rest != ';')
		diag_error(p->diag, p->file, p->lineno,
		    "unexpected text after the section header: \"%s\" "
		    "(a comment after a header starts with ';')", rest);
	name = line + 1;
	len = (size_t)(end - name);
	if (len == 5 && strncmp(name, "proxy", 5) == 0) {
		if (p->proxy_seen) {
			diag_error(p->diag, p->file, p->lineno,
			    "duplicate section [proxy], first at line %d",
			    p->proxy_line);
			return;
		}
		p->proxy_seen = true;
		p->proxy_line = p->lineno;
		p->section = SECTION_PROXY;
		return;
	}
	if (len >= 5 && strncmp(name, "pins:", 5) == 0) {
		if (!conf_pinset_name_ok(name + 5, len - 5, err, sizeof(err))) {
			diag_error(p->diag, p->file, p->lineno,
			    "bad section [%.*s]: %s", (int)len, name, err);
			return;
		}
		conf_begin_pinset(p, name + 5, len - 5);
		return;
	}
	if (len >= 8 && strncmp(name, "forward:", 8) == 0) {
		if (!conf_pinset_name_ok(name + 8, len - 8, err, sizeof(err))) {
			diag_error(p->diag, p->file, p->lineno,
			    "bad section [%.*s]: %s", (int)len, name, err);
			return;
		}
		conf_begin_forward(p, name + 8, len - 8);
		return;
	}
	diag_error(p->diag, p->file, p->lineno,
	    "unknown section [%.*s]; expected [proxy], [pins:NAME] or "
	    "[forward:NAME]",
	    (int)len, name);
}

/*
 * Check a "key = value" line the way inih will split it: at the first '='
 * or ':', unless an inline comment (" ;") comes first. inih reports only
 * the first bad line of a file, so every bad line is reported here instead.
 */
static bool
conf_key_line_ok(struct conf_parse *p, const char *line)
{
	const char	*s;
	bool		 was_space = false;

	for (s = line; *s != '\0' && *s != '=' && *s != ':'; s++) {
		if (was_space && *s == ';')
			break;
		was_space = isspace((unsigned char)*s);
	}
	if (*s != '=' && *s != ':') {
		diag_error(p->diag, p->file, p->lineno, "expected \"key = "
		    "value\" or a [section] header, not \"%s\"", line);
		return false;
	}
	if (s == line) {
		diag_error(p->diag, p->file, p->lineno,
		    "missing key name before '%c'", *s);
		return false;
	}
	return true;
}

/*
 * The reader inih calls for each line. It reads a whole line whatever its
 * length, counts it, and screens it: section headers are handled here, and
 * inih receives only "key = value" lines, with their leading white space
 * removed so that an indented key is never taken for a continuation line.
 * Any other line reaches inih as an empty line.
 */
static char *
conf_reader(char *str, int num, void *arg)
{
	struct conf_parse	*p = arg;
	char			 buf[CONF_LINE_MAX + 1];
	const char		*line;
	size_t			 len = 0, total = 0;
	int			 ch, last = EOF;
	bool			 nul = false;

	while ((ch = getc(p->fp)) != EOF && ch != '\n') {
		if (ch == '\0')
			nul = true;
		if (len < sizeof(buf) - 1)
			buf[len++] = (char)ch;
		total++;
		last = ch;
	}
	if (ch == EOF && total == 0)
		return NULL;
	p->lineno++;
	/* The '\r' of a CRLF line ending is not part of the line. */
	if (last == '\r') {
		total--;
		if (len > total)
			len--;
	}
	buf[len] = '\0';
	str[0] = '\0';
	if (total >= CONF_LINE_MAX) {
		diag_error(p->diag, p->file, p->lineno, "line is %zu bytes "
		    "long; the limit is %d", total, CONF_LINE_MAX - 1);
		return str;
	}
	if (nul) {
		diag_error(p->diag, p->file, p->lineno,
		    "line contains a NUL byte");
		return str;
	}
	if (memchr(buf, '\r', len) != NULL) {
		diag_error(p->diag, p->file, p->lineno, DIAG_BARE_CR);
		return str;
	}
	line = buf;
	if (p->lineno == 1 && strncmp(line, "\xef\xbb\xbf", 3) == 0)
		line += 3;
	while (isspace((unsigned char)*line))
		line++;
	switch (*line) {
	case '\0':
	case ';':
	case '#':
		return str;
	case '[':
		conf_header(p, line);
		return str;
	default:
		break;
	}
	if (!conf_key_line_ok(p, line) || strlen(line) + 2 > (size_t)num)
		return str;
	snprintf(str, (size_t)num, "%s\n", line);
	return str;
}

/* Report a key that the current section does not have. */
static void
conf_unknown_key(struct conf_parse *p, const char *name)
{
	static const char *const where[] = {
		[SECTION_PROXY] = "[proxy]",
		[SECTION_PINS] = "a [pins:NAME] section",
		[SECTION_FORWARD] = "a [forward:NAME] section",
	};
	char	 section[PINSET_NAME_MAX + 16];
	size_t	 i;

	if (p->section == SECTION_PROXY)
		snprintf(section, sizeof(section), "proxy");
	else if (p->section == SECTION_FORWARD)
		snprintf(section, sizeof(section), "forward:%s", p->fwd->name);
	else
		snprintf(section, sizeof(section), "pins:%s", p->pinset->name);
	for (i = 0; i < KEY__COUNT; i++) {
		if (strcmp(conf_keys[i].name, name) != 0)
			continue;
		diag_error(p->diag, p->file, p->lineno,
		    "unknown key \"%s\" in [%s]: it belongs in %s", name,
		    section, where[conf_keys[i].section]);
		return;
	}
	diag_error(p->diag, p->file, p->lineno, "unknown key \"%s\" in [%s]",
	    name, section);
}

/* inih's handler: one key = value in the section the reader tracked. */
static int
conf_handler(void *arg, const char *section, const char *name,
    const char *value)
{
	struct conf_parse	*p = arg;
	const struct conf_key	*k = NULL;
	char			 err[256];
	size_t			 i;

	if (p->section == SECTION_IGNORED)
		return 1;
	if (p->section == SECTION_NONE) {
		diag_error(p->diag, p->file, p->lineno,
		    "key \"%s\" before any [section]", name);
		return 1;
	}
	for (i = 0; i < KEY__COUNT; i++) {
		if (conf_keys[i].section == p->section &&
		    strcmp(conf_keys[i].name, name) == 0) {
			k = &conf_keys[i];
			break;
		}
	}
	if (k == NULL) {
		conf_unknown_key(p, name);
		return 1;
	}
	if (!k->repeatable && p->key_line[i] != 0) {
		diag_error(p->diag, p->file, p->lineno,
		    "duplicate key %s: already set at line %d", name,
		    p->key_line[i]);
		return 1;
	}
	p->key_line[i] = p->lineno;
	err[0] = '\0';
	if (!k->set(p, value, err, sizeof(err)))
		diag_error(p->diag, p->file, p->lineno,
		    "bad value for %s: \"%s\": %s", name, value, err);
	return 1;
}

struct conf *
conf_parse_stream(FILE *fp, const char *name, time_t now, struct diag *d)
{
	struct conf_parse	 p;
	struct conf		*c;
	int			 rc;

	memset(&p, 0, sizeof(p));
	p.fp = fp;
	p.file = name;
	p.diag = d;
	p.now = now;
	p.conf = conf_new_default();
	p.conf->path = xstrdup(name);
	p.listen_default = true;
	p.section = SECTION_NONE;

	/* The reader reports bad lines itself; this is a safety net. */
	rc = ini_parse_stream(conf_reader, &p, conf_handler, &p);
	if (rc > 0)
		diag_error(d, name, rc, "inih cannot parse this line");
	conf_end_section(&p);
	conf_check_forwarders(&p);
	conf_check_addresses(&p);
	conf_fwdrefs_free(&p);
	if (ferror(fp))
		diag_error(d, name, 0, "read error: %s", strerror(errno));

	free(p.hosts);
	strindex_free(&p.claimed);
	strindex_free(&p.pins_seen);
	strindex_free(&p.fwd_seen);
	free(p.candidate_lines);
	c = p.conf;
	if (diag_errors(d) > 0) {
		conf_unref(c);
		return NULL;
	}
	conf_index_hosts(c);
	deny_sort(c->deny_pins, c->ndeny_pins);
	/*
	 * The CA page answers for ca_host before any pin set is looked up:
	 * a pinned host of that name would be served the page, plaintext,
	 * its CONNECT a tunnel to the page, never its pinned server.
	 */
	if (c->ca_host != NULL && c->ca_host[0] != '\0' &&
	    conf_lookup(c, c->ca_host) != NULL) {
		diag_error(d, name, p.ca_host_line, "ca_host %s is a host of "
		    "pin set %s: the CA page would answer for it; choose a "
		    "name no pin set covers", c->ca_host,
		    conf_lookup(c, c->ca_host)->name);
		conf_unref(c);
		return NULL;
	}
	return c;
}

struct conf *
conf_parse_file(const char *path, time_t now, struct diag *d)
{
	struct conf	*c;
	FILE		*fp;
	char		 err[512];

	if ((fp = regfile_fopen(path, NULL, err, sizeof(err))) == NULL) {
		diag_error(d, path, 0, "%s", err);
		return NULL;
	}
	c = conf_parse_stream(fp, path, now, d);
	fclose(fp);
	return c;
}

/*
 * The configuration: an immutable, reference-counted object. A reload
 * builds a new one; connections hold a reference to the one they started
 * with, so nothing is ever changed under them.
 */
#ifndef PINPROXY_CONF_H
#define PINPROXY_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf_value.h"
#include "log.h"
#include "pin.h"
#include "strindex.h"

enum unpinned_policy {
	UNPINNED_PASS,
	UNPINNED_VERIFY,
	UNPINNED_BLOCK
};

/* The default ca_host: .internal is reserved for private use. */
#define CONF_DEFAULT_CA_HOST	"pinproxy.internal"

/*
 * The longest busy_poll accepted: polling longer than a wake-up costs
 * buys nothing, and a poller holds its CPU for all of it.
 */
#define CONF_BUSY_POLL_MAX_US	10000

/* The longest pin set name accepted: names of 40 characters are errors. */
#define PINSET_NAME_MAX		39

/* What a pin set needs to match: any one pin, or a leaf and a CA pin. */
enum pinset_require {
	PINSET_REQUIRE_ANY,
	PINSET_REQUIRE_LEAF_CA
};

/* One [pins:NAME] section. */
struct pinset {
	char			*name;
	int			 line;		/* of the section header */
	char			**hosts;	/* normalised patterns */
	size_t			 nhosts;
	struct pin		*pins;
	size_t			 npins;
	struct pin		*candidates;	/* never grant access */
	size_t			 ncandidates;
	enum pinset_require	 require;
	bool			 include_subdomains;
	bool			 enforce;
	bool			 has_expires;
	time_t			 expires;	/* 00:00 UTC of the date */
	char			 expires_text[11];	/* "YYYY-MM-DD" */
	uint16_t		 port;
	char			*ca_file;	/* NULL when unset */
	bool			 has_connect_to;
	struct conf_addr	 connect_to;
};

/*
 * One [forward:NAME] section: plaintext TCP accepted on listen, relayed
 * over TLS to host:port once its chain verified for sni and held a pin of
 * pinsets[pinset]. Inline pin lines make an anonymous pin set (no hosts)
 * named "forward:NAME".
 */
struct forwarder {
	char			*name;
	int			 line;		/* of the section header */
	struct conf_addr	*listen;
	size_t			 nlisten;
	char			*host;		/* normalised upstream host */
	uint16_t		 port;
	char			*sni;		/* NULL: host */
	unsigned char		*alpn;		/* wire format; NULL: none */
	size_t			 alpnlen;
	size_t			 pinset;	/* index into pinsets */
};

/*
 * The lines of the keys naming what the daemon opens or sets when it
 * starts (0: the default), for its errors' FILE:LINE.
 */
struct conf_file_lines {
	int			 ca_cert;
	int			 ca_key;
	int			 report_file;
	int			 observe_file;
	int			 upstream_mark;
};

struct conf {
	int			 refs;
	unsigned long		 generation;
	char			*path;
	struct conf_file_lines	 lines;

	struct conf_addr	*listen;
	size_t			 nlisten;
	char			*ca_cert;
	char			*ca_key;
	char			*trust;		/* "system" or a path */
	enum unpinned_policy	 unpinned;
	uint16_t		*connect_ports;
	size_t			 nconnect_ports;
	uint16_t		*plain_ports;
	size_t			 nplain_ports;
	bool			 plain_ports_set; /* else + pin set ports */
	struct cidr		*allow_clients;
	size_t			 nallow_clients;
	unsigned long		 max_connections;
	uint64_t		 connect_timeout_ms;
	uint64_t		 header_timeout_ms;
	uint64_t		 idle_timeout_ms;
	uint64_t		 shutdown_timeout_ms;
	uint64_t		 busy_poll_us;	/* 0: sleep when idle */
	enum log_sink		 log;
	enum log_level		 log_level;
	char			*report_file;	/* NULL when unset */
	char			*observe_file;	/* NULL when unset */
	unsigned long		 observe_max;	/* new lines a UTC day */
	unsigned long		 report_max;	/* report_file lines a UTC day */
	bool			 has_stats_listen;
	struct conf_addr	 stats_listen;
	char			*ca_host;	/* NULL: no CA page */
	struct pin		*deny_pins;	/* deny_pin and deny_file */
	size_t			 ndeny_pins;
	char			*deny_file;	/* NULL when unset */
	struct conf_addr	*transparent;	/* redirected connections */
	size_t			 ntransparent;
	unsigned long		 upstream_mark;	/* SO_MARK; 0: none */

	struct pinset		*pinsets;
	size_t			 npinsets;
	struct forwarder	*forwarders;
	size_t			 nforwarders;
	struct strindex		 hostindex;	/* host pattern -> pin set */
};

/* A configuration with every default and no pin sets; refs = 1. */
struct conf	*conf_new_default(void);
/* Take a reference. */
struct conf	*conf_ref(struct conf *c);
/* Drop a reference, freeing the configuration with the last (NULL ok). */
void		 conf_unref(struct conf *c);
/*
 * Index the host patterns of the pin sets for conf_lookup(), once they
 * are complete (no pattern is listed twice).
 */
void		 conf_index_hosts(struct conf *c);
/*
 * The pin set that covers a normalised host name: an exact host first,
 * then the longest pattern; for an address of the NAT64 prefix
 * 64:ff9b::/96 that no section covers, the one of the IPv4 address it
 * carries; NULL when no section covers it.
 */
const struct pinset *conf_lookup(const struct conf *c, const char *host);
/*
 * The line of c's file that set the key an error about a file names
 * first (ca_cert, ca_key, report_file, observe_file), or 0.
 */
int	conf_error_line(const struct conf *c, const char *err);
/* Put "FILE:LINE: " of c's file before err (nothing for line 0). */
void	conf_locate(const struct conf *c, int line, char *err, size_t errlen);
/* Whether a port is in connect_ports. */
bool		 conf_connect_port_allowed(const struct conf *c, uint16_t port);
/*
 * Whether plaintext requests may go to a port: plain_ports, or when it is
 * not set, 80, 443 and the port of every pin set.
 */
bool		 conf_plain_port_allowed(const struct conf *c,
		    uint16_t port);
/* Whether a client address is in allow_clients. */
bool		 conf_client_allowed(const struct conf *c,
		    const struct sockaddr *sa);
/* The forwarder listening on the address with this text, or NULL. */
const struct forwarder *conf_forwarder_at(const struct conf *c,
		    const char *listen);
/* When the pins stop being enforced: the end of the expires date. */
time_t		 pinset_end(const struct pinset *ps);
/* Whether the pin set's expires date has passed at now. */
bool		 pinset_expired(const struct pinset *ps, time_t now);
/* Whole days from now's date (UTC) to the expires date (has_expires). */
long		 pinset_days_left(const struct pinset *ps, time_t now);
/* Seconds from now until the pins stop being enforced; negative after. */
long long	 pinset_seconds_left(const struct pinset *ps, time_t now);
/* The name of a policy ("pass", "verify", "block"). */
const char	*conf_unpinned_name(enum unpinned_policy p);

#endif

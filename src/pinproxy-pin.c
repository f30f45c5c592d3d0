/*
 * pinproxy-pin: prints the SPKI pins of the certificates in files or of a
 * live server's chain, writes them as a ready-to-paste [pins:NAME] section,
 * and checks every exact host of a configuration against its pin set.
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "certfile.h"
#include "conf.h"
#include "conf_parse.h"
#include "conf_value.h"
#include "diag.h"
#include "hostmatch.h"
#include "hostport.h"
#include "log.h"
#include "observed.h"
#include "pin.h"
#include "pincheck.h"
#include "probe.h"
#include "regfile.h"
#include "runconf.h"
#include "strindex.h"
#include "tls_upstream.h"
#include "upstream.h"
#include "version.h"
#include "xmalloc.h"

#define PROGRAM			"pinproxy-pin"
#define DEFAULT_PORT		443
/* The name of the pin set that -s dials with. */
#define SERVER_PINSET		"server"
/* The configuration parser rejects lines of 199 bytes or more. */
#define INI_LINE_MAX		190
/* Room for "[HOST]:PORT". */
#define TARGET_TEXT_MAX		(HOSTMATCH_NAME_MAX + 8)

enum exit_status {
	EXIT_OK = 0,
	EXIT_FAILED = 1,
	EXIT_USAGE = 2
};

enum tool_mode {
	MODE_NONE,
	MODE_FILES,
	MODE_SERVER,
	MODE_CHECK,
	MODE_CA,
	MODE_OBSERVED
};

/* What the command line asked for; strings are borrowed from argv. */
struct tool_opts {
	enum tool_mode	 mode;
	bool		 ini;
	bool		 check;
	bool		 ca;
	bool		 json;
	const char	*server;
	const char	*sni;
	const char	*ca_file;
	const char	*connect_to;
	const char	*conf_path;
	const char	*observed;
	char		**files;
	int		 nfiles;
};

/* A host name or IP literal (normalised, without brackets) and a port. */
struct target {
	char		 host[HOSTMATCH_NAME_MAX];
	uint16_t	 port;
};

/* Printed by --check under a set that warrants them. */
#define CHECK_WARN_LEAF_ONLY \
	"leaf-only pins break at every certificate renewal"
#define CHECK_WARN_NO_BACKUP	"no backup pin"

/* What --check found for one host; the pointers are borrowed. */
struct check_result {
	const char		*host;
	const struct pinset	*ps;
	uint16_t		 port;
	const char		*fwd;		/* a forwarder's name, or NULL */
	char			 text[TARGET_TEXT_MAX];	/* HOST:PORT */
	const char		*result;	/* match, mismatch, ... */
	char			 outcome[1024];	/* as printed after pinset= */
	bool			 ok;
	STACK_OF(X509)		*chain;		/* verified; NULL if none */
	int			 chain_len;
	int			*depths;	/* per pin, -1: not in chain */
	bool			*strays;	/* per pin: only outside its scope */
	int			*cand_depths;	/* per candidate, -1: none */
	bool			 leaf_only;
	bool			 no_backup;
};

/* A name, port and pin set that --check dialled; borrowed from conf. */
struct check_dialled {
	const char		*name;
	uint16_t		 port;
	const struct pinset	*ps;
};

/* --check's state across hosts. */
struct check_run {
	struct probe		*probe;
	struct conf		*c;
	struct runconf		*rc;		/* the generation of the run */
	unsigned long		 gen;
	struct check_dialled	*dialled;	/* owned */
	size_t			 ndialled;
	bool			 json;
	size_t			 n;		/* hosts printed */
};

/* The host names of a [pins:] section, owned. */
struct hostlist {
	char		**names;
	size_t		 count;
};

enum {
	OPT_CONNECT_TO = 256,
	OPT_INI,
	OPT_CHECK,
	OPT_CA,
	OPT_JSON,
	OPT_FROM_OBSERVED
};

static const struct option tool_longopts[] = {
	{ .name = "server",	.has_arg = required_argument, .val = 's' },
	{ .name = "sni",	.has_arg = required_argument, .val = 'n' },
	{ .name = "ca-file",	.has_arg = required_argument, .val = 'a' },
	{ .name = "connect-to",	.has_arg = required_argument,
	    .val = OPT_CONNECT_TO },
	{ .name = "ini",	.has_arg = no_argument, .val = OPT_INI },
	{ .name = "check",	.has_arg = no_argument, .val = OPT_CHECK },
	{ .name = "ca",		.has_arg = no_argument, .val = OPT_CA },
	{ .name = "json",	.has_arg = no_argument, .val = OPT_JSON },
	{ .name = "from-observed", .has_arg = required_argument,
	    .val = OPT_FROM_OBSERVED },
	{ .name = "config",	.has_arg = required_argument, .val = 'c' },
	{ .name = "help",	.has_arg = no_argument, .val = 'h' },
	{ .name = "version",	.has_arg = no_argument, .val = 'V' },
	{ 0 }
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: " PROGRAM " [--ini] FILE...\n"
	    "       " PROGRAM " [--ini] -s HOST[:PORT] [-n NAME] [-a CAFILE]\n"
	    "                    [--connect-to ADDR:PORT]\n"
	    "       " PROGRAM " --check [--json] [-c FILE]\n"
	    "       " PROGRAM " --ca [-c FILE]\n"
	    "       " PROGRAM " --from-observed FILE\n"
	    "       " PROGRAM " -h | -V\n"
	    "  FILE...                 pins of every certificate in PEM or DER"
	    " files\n"
	    "  -s HOST[:PORT]          pins of a live server's chain"
	    " (port 443 by default)\n"
	    "  -n NAME                 name to send as SNI and to verify,\n"
	    "                          instead of HOST\n"
	    "  -a CAFILE               trust CAFILE besides the system store\n"
	    "  --connect-to ADDR:PORT  dial ADDR:PORT instead of resolving"
	    " HOST\n"
	    "  --ini                   print a [pins:NAME] section\n"
	    "  --check                 check the configuration's hosts live\n"
	    "  --json                  with --check: one JSON document\n"
	    "  --ca                    print the daemon's interception CA\n"
	    "  --from-observed FILE    [pins:NAME] sections from an"
	    " observe_file\n"
	    "  -c FILE                 configuration for --check and --ca\n"
	    "                          (default %s)\n"
	    "  -h                      print this help\n"
	    "  -V                      print the version\n",
	    PINPROXY_CONF_PATH);
}

static enum exit_status __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, PROGRAM ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage(stderr);
	return EXIT_USAGE;
}

/*
 * Copy len bytes for a terminal: printable ASCII stays, every other byte
 * becomes \XX, so that no certificate can send control sequences.
 * Returns a new string.
 */
static char *
terminal_safe(const char *in, size_t len)
{
	static const char	 hex[] = "0123456789ABCDEF";
	unsigned char		 c;
	char			*out;
	size_t			 i, n = 0;

	out = xmalloc(len * 3 + 1);
	for (i = 0; i < len; i++) {
		c = (unsigned char)in[i];
		if (c >= 0x20 && c < 0x7f) {
			out[n++] = (char)c;
			continue;
		}
		out[n++] = '\\';
		out[n++] = hex[c >> 4];
		out[n++] = hex[c & 0x0f];
	}
	out[n] = '\0';
	return out;
}

/*
 * The subject in RFC 2253 form, safe for a terminal, and with no two
 * spaces in a row (the second is written \20): two spaces end a field of
 * the chain line, which a subject must not forge. A new string.
 */
static char *
cert_subject(X509 *cert)
{
	BIO	*bio;
	char	*data, *text, *out;
	long	 len;
	size_t	 i, n = 0;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return xstrdup("");
	if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0,
	    XN_FLAG_RFC2253) < 0) {
		BIO_free(bio);
		return xstrdup("");
	}
	len = BIO_get_mem_data(bio, &data);
	text = terminal_safe(data, len > 0 ? (size_t)len : 0);
	BIO_free(bio);
	out = xmalloc(strlen(text) * 3 + 1);
	for (i = 0; text[i] != '\0'; i++) {
		if (text[i] == ' ' && n > 0 && out[n - 1] == ' ') {
			memcpy(out + n, "\\20", 3);
			n += 3;
		} else
			out[n++] = text[i];
	}
	out[n] = '\0';
	free(text);
	return out;
}

/*
 * Whether value can follow "key = " on a configuration line and be read
 * back as it is: printable ASCII, no white space at either end nor before
 * a ';' (an inline comment), no ';' first, the whole line within
 * INI_LINE_MAX.
 */
static bool
ini_value_fits(const char *key, const char *value)
{
	size_t		 i, n = strlen(value);
	unsigned char	 c;

	if (n == 0 || strlen(key) + 3 + n > INI_LINE_MAX ||
	    value[0] == ' ' || value[0] == ';' || value[n - 1] == ' ')
		return false;
	for (i = 0; i < n; i++) {
		c = (unsigned char)value[i];
		if (c < 0x20 || c >= 0x7f ||
		    (c == ';' && i > 0 && value[i - 1] == ' '))
			return false;
	}
	return true;
}

/*
 * A comment line of the INI output: "; " and the text, with every byte a
 * terminal or the configuration parser would read otherwise (a line end
 * in a file name, say) escaped as terminal_safe() does, cut to a line the
 * parser takes.
 */
static void
ini_comment(const char *fmt, ...)
{
	char	 text[4 * INI_LINE_MAX], *safe;
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	safe = terminal_safe(text, strlen(text));
	if (strlen(safe) > INI_LINE_MAX - 2)
		safe[INI_LINE_MAX - 2] = '\0';
	printf("; %s\n", safe);
	free(safe);
}

/* The notAfter date as YYYY-MM-DD into buf of at least 11 bytes. */
static void
cert_not_after(X509 *cert, char *buf, size_t len)
{
	struct tm	 tm;

	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1 ||
	    strftime(buf, len, "%Y-%m-%d", &tm) == 0)
		xstrlcpy(buf, "unknown", len);
}

/* The pin text of a certificate; false (with a message) if it has none. */
static bool
cert_pin_text(X509 *cert, int depth, char *buf, size_t len)
{
	struct pin	 pin;

	if (!pin_from_cert(cert, &pin)) {
		fprintf(stderr, PROGRAM ": certificate at depth %d: "
		    "cannot compute the pin of its public key\n", depth);
		return false;
	}
	pin_format(&pin, buf, len);
	return true;
}

/* How many certificates of a chain chain_has_pin looks back over. */
#define CHAIN_KEYS_MAX	64

/*
 * Whether one of the certificates before the one at i in chain (of the
 * first CHAIN_KEYS_MAX: a file of thousands is no chain) has the same
 * pin: a section needs it once, however often a file or a server repeats
 * the certificate, or its key under another certificate. The pins are
 * compared, not the keys: one key encoded two ways (an EC point
 * compressed, then not) has two pins, and each must stay.
 */
static bool
chain_has_pin(STACK_OF(X509) *chain, int i)
{
	struct pin	 mine, other;
	int		 j;

	if (!pin_from_cert(sk_X509_value(chain, i), &mine))
		return false;
	for (j = 0; j < i && j < CHAIN_KEYS_MAX; j++)
		if (pin_from_cert(sk_X509_value(chain, j), &other) &&
		    memcmp(mine.digest, other.digest, sizeof(mine.digest)) == 0)
			return true;
	return false;
}

/*
 * Call line() for every certificate of chain, leaf (index 0) first, with
 * its depth, pin and subject, or with once, for the first of each pin;
 * false when a pin could not be computed.
 */
static bool
chain_each(STACK_OF(X509) *chain, bool once,
    void (*line)(X509 *, int, const char *, const char *))
{
	X509	*cert;
	char	 pin[PIN_TEXT_MAX], *subject;
	bool	 ok = true;
	int	 i;

	for (i = 0; i < sk_X509_num(chain); i++) {
		cert = sk_X509_value(chain, i);
		if (!cert_pin_text(cert, i, pin, sizeof(pin))) {
			ok = false;
			continue;
		}
		if (once && chain_has_pin(chain, i))
			continue;
		subject = cert_subject(cert);
		line(cert, i, pin, subject);
		free(subject);
	}
	return ok;
}

/* "sha256/...  depth=N  subject=...  not_after=YYYY-MM-DD" */
static void
print_chain_line(X509 *cert, int depth, const char *pin, const char *subject)
{
	char	 date[16];

	cert_not_after(cert, date, sizeof(date));
	printf("%s  depth=%d  subject=%s  not_after=%s\n", pin, depth,
	    subject, date);
}

/* One line per certificate, leaf (index 0) first. */
static bool
print_chain(STACK_OF(X509) *chain)
{
	return chain_each(chain, false, print_chain_line);
}

static void
hostlist_add(struct hostlist *hl, const char *name)
{
	size_t	 i;

	for (i = 0; i < hl->count; i++)
		if (strcmp(hl->names[i], name) == 0)
			return;
	hl->names = xreallocarray(hl->names, hl->count + 1, sizeof(char *));
	hl->names[hl->count++] = xstrdup(name);
}

static void
hostlist_clear(struct hostlist *hl)
{
	size_t	 i;

	for (i = 0; i < hl->count; i++)
		free(hl->names[i]);
	free(hl->names);
	hl->names = NULL;
	hl->count = 0;
}

/*
 * Whether the daemon's check of leaf for host (a pattern of hosts =: "*."
 * stands for any one label) would pass: a DNS name OpenSSL does not match
 * (a trailing dot, a wildcard in a label it takes for no wildcard) would
 * make a pin set that never verifies.
 */
static bool
ini_host_verifies(X509 *leaf, const char *host)
{
	char	 name[HOSTMATCH_NAME_MAX + 16];

	if (strncmp(host, "*.", 2) == 0)
		snprintf(name, sizeof(name), "pinproxy-check%s", host + 1);
	else
		snprintf(name, sizeof(name), "%s", host);
	return X509_check_host(leaf, name, 0, TLS_UPSTREAM_HOSTFLAGS,
	    NULL) == 1;
}

/* Add a SAN entry to hl when the configuration would accept it. */
static void
hostlist_add_san(struct hostlist *hl, X509 *leaf, const GENERAL_NAME *gen)
{
	const unsigned char	*data;
	char			 text[HOSTMATCH_NAME_MAX];
	char			 norm[HOSTMATCH_NAME_MAX], err[128];
	int			 len;

	if (gen->type == GEN_DNS) {
		data = ASN1_STRING_get0_data(gen->d.dNSName);
		len = ASN1_STRING_length(gen->d.dNSName);
		if (len <= 0 || (size_t)len >= sizeof(text) ||
		    memchr(data, '\0', len) != NULL)
			return;
		memcpy(text, data, len);
		text[len] = '\0';
	} else if (gen->type == GEN_IPADD) {
		data = ASN1_STRING_get0_data(gen->d.iPAddress);
		len = ASN1_STRING_length(gen->d.iPAddress);
		if ((len != 4 && len != 16) || inet_ntop(len == 4 ? AF_INET :
		    AF_INET6, data, text, sizeof(text)) == NULL)
			return;
	} else
		return;
	/*
	 * A DNS name spelling an address verifies for no address, and an
	 * address the configuration would read as another (0.0.0.0 as
	 * 127.0.0.1, ::ffff:a.b.c.d as a.b.c.d) does not for that one.
	 */
	if (hostmatch_pattern(text, norm, sizeof(norm), err, sizeof(err)) &&
	    (gen->type == GEN_IPADD ? strcmp(norm, text) == 0 :
	    !hostmatch_is_ip(norm) && ini_host_verifies(leaf, norm)))
		hostlist_add(hl, norm);
}

/*
 * The leaf's host names for hosts =: its DNS names, or its IP addresses
 * when it names no host.
 */
static void
leaf_hosts(X509 *leaf, struct hostlist *hl)
{
	GENERAL_NAMES	*gens;
	GENERAL_NAME	*gen;
	int		 i, pass;

	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	if (gens == NULL)
		return;
	for (pass = GEN_DNS; pass <= GEN_IPADD && hl->count == 0;
	    pass = pass == GEN_DNS ? GEN_IPADD : GEN_IPADD + 1) {
		for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
			gen = sk_GENERAL_NAME_value(gens, i);
			if (gen->type == pass)
				hostlist_add_san(hl, leaf, gen);
		}
	}
	GENERAL_NAMES_free(gens);
}

/*
 * A pin set name from a host: its letters and digits, dash-separated; an
 * IPv6 address's start with "ipv6-" (else "::1" would be named "1").
 */
static void
ini_name(const char *host, char *out, size_t outlen)
{
	size_t	 n = 0, max;
	bool	 gap = false;
	char	 c;

	max = outlen - 1 < PINSET_NAME_MAX ? outlen - 1 : PINSET_NAME_MAX;
	if (strchr(host, ':') != NULL && max > 5) {
		memcpy(out, "ipv6", 4);
		n = 4;
	}
	for (; *host != '\0'; host++) {
		c = *host;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
			gap = n > 0;
			continue;
		}
		if (n + (gap ? 2 : 1) > max)
			break;
		if (gap)
			out[n++] = '-';
		out[n++] = c;
		gap = false;
	}
	out[n] = '\0';
	if (n == 0)
		xstrlcpy(out, "pins", outlen);
}

/*
 * The section names printed so far, each new to the output, with the
 * name it was made from and the number it got (1: none).
 */
struct ini_section_name {
	char		 name[PINSET_NAME_MAX + 1];
	char		 base[PINSET_NAME_MAX + 1];
	size_t		 n;
};

static struct {
	struct ini_section_name	*names;
	size_t			 count;
	size_t			 cap;
} ini_printed;

/* Whether a section of that name was printed. */
static bool
ini_name_taken(const char *name)
{
	size_t	 i;

	for (i = 0; i < ini_printed.count; i++)
		if (strcmp(ini_printed.names[i].name, name) == 0)
			return true;
	return false;
}

/*
 * A pin set name from a host that no section printed before has: two
 * hosts may make one name ("x--y.com", "x-y.com"; a cut), and pinproxy
 * refuses a second section of a name, so the later ones get "-2", "-3"...
 * (after the last number that name got: one pass over the names printed,
 * a second only when another name took that spelling). out has
 * PINSET_NAME_MAX + 1 bytes.
 */
static void
ini_name_unique(const char *host, char *out)
{
	struct ini_section_name	*e;
	char			 base[PINSET_NAME_MAX + 1], suffix[24];
	size_t			 i, n = 1, keep;

	ini_name(host, base, sizeof(base));
	xstrlcpy(out, base, PINSET_NAME_MAX + 1);
	for (i = 0; i < ini_printed.count; i++) {
		e = &ini_printed.names[i];
		if (strcmp(e->base, base) == 0 && e->n >= n)
			n = e->n + 1;
	}
	while (n > 1 || ini_name_taken(out)) {
		n = n > 1 ? n : 2;
		snprintf(suffix, sizeof(suffix), "-%zu", n);
		keep = strlen(base);
		if (keep + strlen(suffix) > PINSET_NAME_MAX)
			keep = PINSET_NAME_MAX - strlen(suffix);
		snprintf(out, PINSET_NAME_MAX + 1, "%.*s%s", (int)keep, base,
		    suffix);
		if (!ini_name_taken(out))
			break;
		n++;
	}
	if (ini_printed.count == ini_printed.cap) {
		ini_printed.cap = ini_printed.cap == 0 ? 16 : ini_printed.cap * 2;
		ini_printed.names = xreallocarray(ini_printed.names,
		    ini_printed.cap, sizeof(*ini_printed.names));
	}
	e = &ini_printed.names[ini_printed.count++];
	xstrlcpy(e->name, out, sizeof(e->name));
	xstrlcpy(e->base, base, sizeof(e->base));
	e->n = n;
}

/* The hosts the sections printed so far list (the keys are their own). */
static struct strindex	 ini_hosts;

/*
 * The hosts of in that no earlier section listed, into fresh (empty):
 * pinproxy takes a host in one pin set only, whatever the port, and
 * refuses it in a second. Each one left out gets an error on stderr and
 * a comment; false when one was.
 */
static bool
ini_fresh_hosts(const struct hostlist *in, struct hostlist *fresh)
{
	size_t	 i, section;
	bool	 ok = true;

	for (i = 0; i < in->count; i++) {
		if (!strindex_get(&ini_hosts, in->names[i], &section)) {
			hostlist_add(fresh, in->names[i]);
			continue;
		}
		fprintf(stderr, PROGRAM ": %.60s: an earlier section lists "
		    "this host already (a host has one pin set, whatever the "
		    "port); it is left out here\n", in->names[i]);
		ini_comment("%.60s is left out: an earlier section lists it",
		    in->names[i]);
		ok = false;
	}
	return ok;
}

/*
 * hosts = lines, as many as needed to keep each under INI_LINE_MAX. A
 * name too long for a line of its own cannot be pinned by a configuration
 * file: it is left out, with an error on stderr and a comment, never cut
 * (a cut name would pin another host and leave this one unpinned). The
 * ones printed are remembered (ini_fresh_hosts()). False when a name was
 * left out.
 */
static bool
ini_print_hosts(const struct hostlist *hl)
{
	char	 line[INI_LINE_MAX + 1], *key;
	size_t	 i, len, start, n;
	bool	 ok = true;

	start = (size_t)snprintf(line, sizeof(line), "hosts = ");
	len = start;
	for (i = 0; i < hl->count; i++) {
		n = strlen(hl->names[i]);
		if (start + n > INI_LINE_MAX) {
			fprintf(stderr, PROGRAM ": %.40s...: a host name of %zu "
			    "bytes does not fit a configuration line (at most "
			    "%zu); it is left out, not pinned\n", hl->names[i],
			    n, (size_t)INI_LINE_MAX - start);
			ini_comment("a host name of %zu bytes is left out: it "
			    "does not fit a configuration line", n);
			ok = false;
			continue;
		}
		if (len > start && len + 2 + n > INI_LINE_MAX) {
			printf("%s\n", line);
			len = start;
		}
		key = xstrdup(hl->names[i]);
		if (!strindex_add(&ini_hosts, key, 0))
			free(key);
		len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s",
		    len > start ? ", " : "", hl->names[i]);
	}
	if (len > start)
		printf("%s\n", line);
	return ok;
}

/* "pin = sha256/...  ; depth=N SUBJECT", cut to a line the parser takes. */
static void
ini_pin_line(X509 *cert, int depth, const char *pin, const char *subject)
{
	char	 line[INI_LINE_MAX + 1];

	/* Truncation only shortens the comment. */
	snprintf(line, sizeof(line), "pin = %s  ; depth=%d%s%s", pin, depth,
	    *subject != '\0' ? " " : "", subject);
	printf("%s\n", line);
}

/*
 * A [pins:NAME] section: the hosts, extra lines (port, ca_file,
 * connect_to; may be NULL), then one pin line per certificate.
 */
static bool
ini_print(const struct hostlist *hl, const char *name_from,
    const char *extra, STACK_OF(X509) *chain)
{
	struct hostlist	 fresh = { 0 };
	char		 name[PINSET_NAME_MAX + 1];
	bool		 ok;

	ok = ini_fresh_hosts(hl, &fresh);
	if (hl->count > 0 && fresh.count == 0) {
		ini_comment("no section for %.60s: an earlier one lists its "
		    "hosts", hl->names[0]);
		return false;
	}
	ini_name_unique(name_from, name);
	printf("[pins:%s]\n", name);
	if (fresh.count > 0)
		ok = ini_print_hosts(&fresh) && ok;
	else
		ini_comment("hosts = (the leaf certificate names no host:"
		    " add the hosts here)");
	hostlist_clear(&fresh);
	if (extra != NULL)
		printf("%s", extra);
	return chain_each(chain, true, ini_pin_line) && ok;
}

static enum exit_status
run_files(const struct tool_opts *o)
{
	STACK_OF(X509)		*certs;
	struct hostlist		 hl = { 0 };
	enum exit_status	 status = EXIT_OK;
	const char		*slash;
	char			 err[512], *name;
	int			 i;

	for (i = 0; i < o->nfiles; i++) {
		certs = certfile_load(o->files[i], false, err, sizeof(err));
		if (certs == NULL) {
			fprintf(stderr, PROGRAM ": %s\n", err);
			status = EXIT_FAILED;
			continue;
		}
		if (o->ini) {
			if (i > 0)
				printf("\n");
			leaf_hosts(sk_X509_value(certs, 0), &hl);
			slash = strrchr(o->files[i], '/');
			if (!ini_print(&hl, hl.count > 0 ? hl.names[0] :
			    slash != NULL ? slash + 1 : o->files[i], NULL,
			    certs))
				status = EXIT_FAILED;
			hostlist_clear(&hl);
		} else {
			if (o->nfiles > 1) {
				name = terminal_safe(o->files[i],
				    strlen(o->files[i]));
				printf("# %s\n", name);
				free(name);
			}
			if (!print_chain(certs))
				status = EXIT_FAILED;
		}
		sk_X509_pop_free(certs, X509_free);
	}
	return status;
}

/* Split HOST[:PORT], "[IPv6]:PORT" or a bare IPv6 literal. */
static bool
parse_target(const char *arg, struct target *t, char *err, size_t errlen)
{
	switch (hostport_parse(arg, strlen(arg), HOSTPORT_BARE_V6_OK, t->host,
	    &t->port)) {
	case HOSTPORT_OK:
		if (t->port == 0)
			t->port = DEFAULT_PORT;
		return true;
	case HOSTPORT_BAD_PORT:
		snprintf(err, errlen, "not a port: expected a number from 1 "
		    "to 65535");
		return false;
	default:
		snprintf(err, errlen, "not a host name or address");
		return false;
	}
}

/* port, connect_to and ca_file lines for an -s section; a new string. */
static char *
server_ini_extra(const struct target *t, const struct tool_opts *o,
    bool *ok)
{
	char	*extra, *next, *abs = NULL, *safe;
	const char *path;

	extra = xstrdup("");
	if (t->port != DEFAULT_PORT) {
		next = xasprintf("%sport = %u\n", extra, t->port);
		free(extra);
		extra = next;
	}
	if (o->connect_to != NULL) {
		next = xasprintf("%sconnect_to = %s\n", extra, o->connect_to);
		free(extra);
		extra = next;
	}
	*ok = true;
	if (o->ca_file != NULL) {
		abs = realpath(o->ca_file, NULL);
		path = abs != NULL ? abs : o->ca_file;
		if (ini_value_fits("ca_file", path))
			next = xasprintf("%sca_file = %s\n", extra, path);
		else {
			safe = terminal_safe(path, strlen(path));
			fprintf(stderr, PROGRAM ": %.60s...: the path of "
			    "--ca-file cannot be written on a configuration "
			    "line (at most %d bytes, printable ASCII, no ' ;'); "
			    "ca_file is left out\n", safe, INI_LINE_MAX);
			free(safe);
			next = xasprintf("%s; ca_file = (left out: its path "
			    "cannot be written on a configuration line)\n",
			    extra);
			*ok = false;
		}
		free(abs);
		free(extra);
		extra = next;
	}
	return extra;
}

/*
 * The configuration -s dials with: the daemon's defaults, and the pin set
 * that --ini prints, before it has pins: port, connect_to, ca_file. With
 * no pin and enforce = no, any chain that verifies passes it.
 */
static struct conf *
server_conf(const struct target *t, const struct conf_addr *connect_to,
    const char *ca_file)
{
	struct conf	*c;
	struct pinset	*ps;

	c = conf_new_default();
	c->pinsets = xcalloc(1, sizeof(*c->pinsets));
	c->npinsets = 1;
	ps = &c->pinsets[0];
	ps->name = xstrdup(SERVER_PINSET);
	ps->port = t->port;
	ps->enforce = false;
	if (ca_file != NULL)
		ps->ca_file = xstrdup(ca_file);
	if (connect_to != NULL) {
		ps->has_connect_to = true;
		ps->connect_to = *connect_to;
	}
	return c;
}

/* Print what -s found: the chain, then the verification's outcome. */
static enum exit_status
server_print(const struct tool_opts *o, const struct target *t,
    const char *name, struct upstream *u, enum upstream_status st)
{
	STACK_OF(X509)		*chain;
	struct hostlist		 hl = { 0 };
	enum exit_status	 status = EXIT_OK;
	char			 text[TARGET_TEXT_MAX], *extra;
	bool			 extra_ok;

	cv_hostport_text(t->host, t->port, text, sizeof(text));
	chain = upstream_verified_chain(u);
	if (st == UPSTREAM_VERIFY_FAILED) {
		if (!o->ini) {
			if (upstream_peer_chain(u) != NULL)
				print_chain(upstream_peer_chain(u));
			printf("verify: FAILED (%s)\n", upstream_reason(u));
		}
		fprintf(stderr, PROGRAM ": %s: the chain did not verify: %s\n",
		    text, upstream_reason(u));
		return EXIT_FAILED;
	}
	if (st != UPSTREAM_OK || chain == NULL) {
		fprintf(stderr, PROGRAM ": %s\n", st != UPSTREAM_OK ?
		    upstream_reason(u) : "no verified chain after the "
		    "handshake");
		return EXIT_FAILED;
	}
	if (o->ini) {
		hostlist_add(&hl, name);
		extra = server_ini_extra(t, o, &extra_ok);
		if (!ini_print(&hl, name, extra, chain) || !extra_ok)
			status = EXIT_FAILED;
		free(extra);
		hostlist_clear(&hl);
	} else {
		if (!print_chain(chain))
			status = EXIT_FAILED;
		printf("verify: ok\n");
	}
	return status;
}

static enum exit_status
run_server(const struct tool_opts *o)
{
	struct conf_addr	 addr;
	struct target		 t;
	struct probe_target	 pt;
	struct conf		*c;
	struct runconf		*rc = NULL;
	struct probe		*p = NULL;
	struct upstream		*u;
	enum upstream_status	 st;
	enum exit_status	 status = EXIT_FAILED;
	char			 err[512], sni[HOSTMATCH_NAME_MAX];

	if (!parse_target(o->server, &t, err, sizeof(err)))
		return usage_error("-s %s: %s", o->server, err);
	if (o->sni != NULL && !hostmatch_normalize(o->sni, strlen(o->sni),
	    sni, sizeof(sni)))
		return usage_error("-n %s: not a host name", o->sni);
	if (o->connect_to != NULL &&
	    !cv_addr(o->connect_to, &addr, err, sizeof(err)))
		return usage_error("--connect-to %s: not a numeric ADDR:PORT",
		    o->connect_to);

	/*
	 * Without a configuration no listener of the daemon is known: -s
	 * dials any address, 127.0.0.1:8080 too.
	 */
	c = server_conf(&t, o->connect_to != NULL ? &addr : NULL, o->ca_file);
	if ((rc = runconf_new_upstream(c, 1, err, sizeof(err))) == NULL ||
	    (p = probe_new(NULL, err, sizeof(err))) == NULL) {
		fprintf(stderr, PROGRAM ": %s\n", err);
		goto out;
	}
	/* -n NAME is both the SNI sent and the name verified. */
	memset(&pt, 0, sizeof(pt));
	pt.ps = &c->pinsets[0];
	pt.host = t.host;
	pt.port = t.port;
	pt.name = o->sni != NULL ? sni : NULL;
	u = probe_run(p, rc, &pt, &st);
	status = server_print(o, &t, o->sni != NULL ? sni : t.host, u, st);
	upstream_free(u);
out:
	probe_free(p);
	runconf_unref(rc);
	conf_unref(c);
	return status;
}

/*
 * Whether a verdict passes --check: a report-only mismatch fails too,
 * since the check exists to catch it before the pins are enforced.
 */
static bool
check_verdict(const struct pinset *ps, const struct pincheck_result *pr,
    struct check_result *cr)
{
	char			 seen[PINCHECK_MAX_CHAIN * (PIN_TEXT_MAX + 1)];

	switch (pr->verdict) {
	case PIN_MATCH:
		cr->result = "match";
		snprintf(cr->outcome, sizeof(cr->outcome), "match");
		return true;
	case PIN_EXPIRED:
		cr->result = "expired";
		snprintf(cr->outcome, sizeof(cr->outcome),
		    "expired (expires=%s)", ps->expires_text);
		return true;
	case PIN_UNPINNED:
		cr->result = "unpinned";
		snprintf(cr->outcome, sizeof(cr->outcome), "unpinned");
		return true;
	case PIN_REPORT_ONLY:
		cr->result = "mismatch";
		pincheck_seen_text(pr, seen, sizeof(seen));
		snprintf(cr->outcome, sizeof(cr->outcome),
		    "MISMATCH (report-only; seen: %s)", seen);
		return false;
	case PIN_MISMATCH:
	default:
		cr->result = "mismatch";
		pincheck_seen_text(pr, seen, sizeof(seen));
		snprintf(cr->outcome, sizeof(cr->outcome),
		    "MISMATCH (seen: %s)", seen);
		return false;
	}
}

/*
 * Where each pin of the set sits in the verified chain, and the warnings
 * that follow: only leaf pins match, or no pin is left outside the chain.
 */
static void
check_places(const struct pinset *ps, STACK_OF(X509) *chain,
    struct check_result *cr)
{
	struct pin	 seen;
	size_t		 i, nin = 0, nleaf = 0, nstray = 0;
	int		 d, n, stray;

	n = sk_X509_num(chain);
	cr->depths = xreallocarray(NULL, ps->npins > 0 ? ps->npins : 1,
	    sizeof(int));
	cr->strays = xcalloc(ps->npins > 0 ? ps->npins : 1, sizeof(bool));
	for (i = 0; i < ps->npins; i++) {
		/* Where it matches, as the daemon matches: within its scope. */
		cr->depths[i] = -1;
		stray = -1;
		for (d = 0; d < n && cr->depths[i] < 0; d++) {
			if (!pin_from_cert(sk_X509_value(chain, d), &seen) ||
			    !pin_equal(&seen, &ps->pins[i]))
				continue;
			if (pin_scope_allows(ps->pins[i].scope, (size_t)d))
				cr->depths[i] = d;
			else if (stray < 0)
				stray = d;
		}
		if (cr->depths[i] >= 0) {
			nin++;
			nleaf += cr->depths[i] == 0;
		} else if (stray >= 0) {
			cr->depths[i] = stray;
			cr->strays[i] = true;
			nstray++;
		}
	}
	/* Candidates: where the server's next key is in use already. */
	cr->cand_depths = xreallocarray(NULL, ps->ncandidates > 0 ?
	    ps->ncandidates : 1, sizeof(int));
	for (i = 0; i < ps->ncandidates; i++) {
		cr->cand_depths[i] = -1;
		for (d = 0; d < n && cr->cand_depths[i] < 0; d++)
			if (pin_from_cert(sk_X509_value(chain, d), &seen) &&
			    pin_equal(&seen, &ps->candidates[i]))
				cr->cand_depths[i] = d;
	}
	cr->chain_len = n;
	cr->leaf_only = nin > 0 && nleaf == nin;
	/*
	 * A pin outside its scope matches nothing, but is no backup either.
	 * A set that matches nothing has a worse problem than its backup.
	 */
	cr->no_backup = nin > 0 && nin + nstray == ps->npins;
}

/* "leaf", "intermediate", "root" or "backup" for a depth of n (-1: none). */
static const char *
check_place_name(int depth, int n)
{
	if (depth < 0)
		return "backup";
	if (depth == 0)
		return "leaf";
	if (depth == n - 1)
		return "root";
	return "intermediate";
}

/* The host line as before, then one line per pin and the warnings. */
static void
check_print_text(const struct check_result *cr)
{
	char	 pin[PIN_SCOPED_TEXT_MAX];
	size_t	 i;

	printf("%s%s%s  pinset=%s  %s\n", cr->text, cr->fwd != NULL ?
	    "  forward=" : "", cr->fwd != NULL ? cr->fwd : "", cr->ps->name,
	    cr->outcome);
	if (cr->depths == NULL)
		return;
	for (i = 0; i < cr->ps->npins; i++) {
		pin_format_scoped(&cr->ps->pins[i], pin, sizeof(pin));
		if (cr->depths[i] < 0)
			printf("  pin %s  not in chain (backup)\n", pin);
		else if (cr->strays[i])
			printf("  pin %s  %s depth=%d, outside its scope "
			    "(matches nothing)\n", pin, check_place_name(
			    cr->depths[i], cr->chain_len), cr->depths[i]);
		else if (cr->depths[i] > 0 &&
		    cr->depths[i] < cr->chain_len - 1)
			printf("  pin %s  intermediate depth=%d\n", pin,
			    cr->depths[i]);
		else
			printf("  pin %s  %s\n", pin,
			    check_place_name(cr->depths[i], cr->chain_len));
	}
	for (i = 0; i < cr->ps->ncandidates; i++) {
		pin_format_scoped(&cr->ps->candidates[i], pin, sizeof(pin));
		if (cr->cand_depths[i] < 0)
			printf("  candidate %s  not in chain\n", pin);
		else
			printf("  candidate %s  %s depth=%d: in use, promote "
			    "it\n", pin, check_place_name(cr->cand_depths[i],
			    cr->chain_len), cr->cand_depths[i]);
	}
	if (cr->leaf_only)
		printf("  warning: %s\n", CHECK_WARN_LEAF_ONLY);
	if (cr->no_backup)
		printf("  warning: %s\n", CHECK_WARN_NO_BACKUP);
}

/* A JSON string of s, escaped. */
static void
json_str(const char *s)
{
	const unsigned char	*p;

	putchar('"');
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* The verified chain as a JSON array, leaf first. */
static void
check_json_chain(STACK_OF(X509) *chain)
{
	X509	*cert;
	char	 pin[PIN_TEXT_MAX], date[16], *subject;
	int	 i;

	printf("[");
	for (i = 0; i < sk_X509_num(chain); i++) {
		cert = sk_X509_value(chain, i);
		if (!cert_pin_text(cert, i, pin, sizeof(pin)))
			pin[0] = '\0';
		subject = cert_subject(cert);
		cert_not_after(cert, date, sizeof(date));
		printf("%s{\"pin\":", i > 0 ? "," : "");
		json_str(pin);
		printf(",\"depth\":%d,\"subject\":", i);
		json_str(subject);
		printf(",\"not_after\":");
		json_str(date);
		printf("}");
		free(subject);
	}
	printf("]");
}

/* One host of --check --json: an object of the "hosts" array. */
static void
check_print_json(const struct check_result *cr, bool first)
{
	char	 pin[PIN_SCOPED_TEXT_MAX];
	size_t	 i;

	printf("%s\n{\"host\":", first ? "" : ",");
	json_str(cr->host);
	printf(",\"port\":%u,", cr->port);
	if (cr->fwd != NULL) {
		printf("\"forward\":");
		json_str(cr->fwd);
		printf(",");
	}
	printf("\"pinset\":");
	json_str(cr->ps->name);
	printf(",\"enforce\":%s,\"result\":", cr->ps->enforce ? "true" :
	    "false");
	json_str(cr->result);
	printf(",\"ok\":%s,\"detail\":", cr->ok ? "true" : "false");
	json_str(cr->outcome);
	printf(",\"chain\":");
	if (cr->chain != NULL)
		check_json_chain(cr->chain);
	else
		printf("null");
	printf(",\"pins\":[");
	for (i = 0; i < cr->ps->npins; i++) {
		pin_format_scoped(&cr->ps->pins[i], pin, sizeof(pin));
		printf("%s{\"pin\":", i > 0 ? "," : "");
		json_str(pin);
		if (cr->depths == NULL)
			printf(",\"place\":null,\"depth\":null}");
		else if (cr->depths[i] < 0)
			printf(",\"place\":\"backup\",\"depth\":null}");
		else if (cr->strays[i])
			printf(",\"place\":\"out-of-scope\",\"depth\":%d}",
			    cr->depths[i]);
		else
			printf(",\"place\":\"%s\",\"depth\":%d}",
			    check_place_name(cr->depths[i], cr->chain_len),
			    cr->depths[i]);
	}
	printf("],\"candidates\":[");
	for (i = 0; i < cr->ps->ncandidates; i++) {
		pin_format_scoped(&cr->ps->candidates[i], pin, sizeof(pin));
		printf("%s{\"pin\":", i > 0 ? "," : "");
		json_str(pin);
		if (cr->cand_depths == NULL || cr->cand_depths[i] < 0)
			printf(",\"place\":null,\"depth\":null}");
		else
			printf(",\"place\":\"%s\",\"depth\":%d}",
			    check_place_name(cr->cand_depths[i],
			    cr->chain_len), cr->cand_depths[i]);
	}
	printf("],\"warnings\":[");
	if (cr->leaf_only)
		json_str(CHECK_WARN_LEAF_ONLY);
	if (cr->no_backup) {
		if (cr->leaf_only)
			printf(",");
		json_str(CHECK_WARN_NO_BACKUP);
	}
	printf("]}");
}

/*
 * The generation to dial name:port under ps with: the run's, unless that
 * host was dialled already; then a fresh one, so that each check is a
 * full handshake with a chain to show, never a session resumed from the
 * one before. NULL with err when a fresh one cannot be built.
 */
static struct runconf *
check_generation(struct check_run *run, const char *name, uint16_t port,
    const struct pinset *ps, char *err, size_t errlen)
{
	struct check_dialled	*dd;
	size_t			 i;

	for (i = 0; i < run->ndialled; i++) {
		dd = &run->dialled[i];
		if (dd->port == port && dd->ps == ps &&
		    strcmp(dd->name, name) == 0)
			return runconf_new_upstream(run->c, ++run->gen, err,
			    errlen);
	}
	run->dialled = xreallocarray(run->dialled, run->ndialled + 1,
	    sizeof(*run->dialled));
	dd = &run->dialled[run->ndialled++];
	dd->name = name;
	dd->port = port;
	dd->ps = ps;
	return runconf_ref(run->rc);
}

/* What an upstream that came to an end says about the host, into cr. */
static void
check_outcome(const struct pinset *ps, struct upstream *u,
    enum upstream_status st, struct check_result *cr)
{
	switch (st) {
	case UPSTREAM_OK:
	case UPSTREAM_PIN_MISMATCH:
		cr->ok = check_verdict(ps, upstream_pins(u), cr);
		break;
	case UPSTREAM_PIN_DENIED:
		cr->result = "denied";
		snprintf(cr->outcome, sizeof(cr->outcome), "DENIED (%s)",
		    upstream_reason(u));
		break;
	case UPSTREAM_VERIFY_FAILED:
		cr->result = "verify-failed";
		snprintf(cr->outcome, sizeof(cr->outcome),
		    "verify FAILED (%s)", upstream_reason(u));
		return;
	default:
		cr->result = "error";
		snprintf(cr->outcome, sizeof(cr->outcome), "error (%s)",
		    upstream_reason(u));
		return;
	}
	if ((cr->chain = upstream_verified_chain(u)) != NULL)
		check_places(ps, cr->chain, cr);
}

/*
 * Dial one host of a pin set (or a forwarder's upstream, f) as the daemon
 * does and print what it found; false unless it passed.
 */
static bool
check_host(struct check_run *run, const struct pinset *ps, const char *host,
    uint16_t port, const struct forwarder *f)
{
	struct check_result	 cr;
	struct probe_target	 pt;
	struct runconf		*rc;
	struct upstream		*u = NULL;
	enum upstream_status	 st;
	char			 err[512];

	memset(&cr, 0, sizeof(cr));
	cr.host = f != NULL && f->sni != NULL ? f->sni : host;
	cr.ps = ps;
	cr.port = port;
	cr.fwd = f != NULL ? f->name : NULL;
	cv_hostport_text(cr.host, port, cr.text, sizeof(cr.text));
	if ((rc = check_generation(run, cr.host, port, ps, err,
	    sizeof(err))) != NULL) {
		/* A forwarder's sni is the name sent and verified. */
		memset(&pt, 0, sizeof(pt));
		pt.ps = ps;
		pt.host = host;
		pt.port = port;
		if (f != NULL) {
			pt.name = f->sni;
			pt.alpn = f->alpn;
			pt.alpnlen = f->alpnlen;
		}
		u = probe_run(run->probe, rc, &pt, &st);
		check_outcome(ps, u, st, &cr);
	} else {
		cr.result = "error";
		snprintf(cr.outcome, sizeof(cr.outcome), "error (%s)", err);
	}
	/* The chain printed belongs to the upstream: free it after. */
	if (run->json)
		check_print_json(&cr, run->n == 0);
	else
		check_print_text(&cr);
	run->n++;
	fflush(stdout);
	free(cr.depths);
	free(cr.strays);
	free(cr.cand_depths);
	upstream_free(u);
	runconf_unref(rc);
	return cr.ok;
}

/* A wildcard pattern names no host to dial: say so and go on. */
static void
check_skip(const struct pinset *ps, const char *pattern, bool json,
    bool first)
{
	char	 text[TARGET_TEXT_MAX];

	if (!json) {
		cv_hostport_text(pattern, ps->port, text, sizeof(text));
		printf("%s  pinset=%s  skipped (a wildcard pattern names no"
		    " host to dial)\n", text, ps->name);
		return;
	}
	printf("%s\n{\"host\":", first ? "" : ",");
	json_str(pattern);
	printf(",\"port\":%u,\"pinset\":", ps->port);
	json_str(ps->name);
	printf(",\"enforce\":%s,\"result\":\"skipped\",\"ok\":true,"
	    "\"detail\":\"a wildcard pattern names no host to dial\","
	    "\"chain\":null,\"pins\":[],\"warnings\":[]}",
	    ps->enforce ? "true" : "false");
}

/*
 * Set up a --check run of c as the daemon would start with it: its
 * upstream_mark usable, a generation built, its listeners known.
 */
static bool
check_start(struct check_run *run, struct conf *c, char *err, size_t errlen)
{
	memset(run, 0, sizeof(*run));
	run->c = c;
	run->gen = 1;
	if (!upstream_mark_check(c->upstream_mark, err, errlen) ||
	    (run->rc = runconf_new_upstream(c, run->gen, err,
	    errlen)) == NULL ||
	    (run->probe = probe_new(c, err, errlen)) == NULL) {
		runconf_unref(run->rc);
		return false;
	}
	return true;
}

/*
 * --check --json of a configuration that cannot be checked: a document
 * still, with no hosts and the errors of d (or err) as "errors".
 */
static void
check_json_refused(const char *path, const struct diag *d, const char *err)
{
	size_t	 i, n = 0;

	printf("{\"config\":");
	json_str(path);
	printf(",\"hosts\":[],\"ok\":false,\"errors\":[");
	for (i = 0; d != NULL && i < diag_count(d); i++) {
		if (diag_severity(d, i) != DIAG_ERROR)
			continue;
		printf("%s", n++ == 0 ? "" : ",");
		json_str(diag_text(d, i));
	}
	if (err != NULL)
		json_str(err);
	printf("]}\n");
}

/* The configuration file named, or the daemon's default one. */
static const char *
tool_conf_path(const struct tool_opts *o)
{
	return o->conf_path != NULL ? o->conf_path : PINPROXY_CONF_PATH;
}

/*
 * The configuration the daemon would run with, its errors and warnings
 * in d: conf_path, or the default file, or the built-in defaults when
 * there is no default file (said on the standard error when note is set,
 * as the daemon's -t says it). NULL on errors.
 */
static struct conf *
tool_conf(const struct tool_opts *o, struct diag *d, bool note)
{
	if (o->conf_path == NULL && access(PINPROXY_CONF_PATH, F_OK) == -1 &&
	    errno == ENOENT) {
		if (note)
			fprintf(stderr, PROGRAM ": %s: not found; the built-in "
			    "defaults apply\n", PINPROXY_CONF_PATH);
		return conf_new_default();
	}
	return conf_parse_file(tool_conf_path(o), time(NULL), d);
}

static enum exit_status
run_check(const struct tool_opts *o)
{
	struct check_run	 run;
	struct diag		*d;
	struct conf		*c;
	const struct pinset	*ps;
	const struct forwarder	*f;
	enum exit_status	 status = EXIT_OK;
	const char		*path = tool_conf_path(o);
	char			 err[512], msg[1024];
	size_t			 i, j;

	d = diag_new();
	c = tool_conf(o, d, true);
	if (diag_count(d) > 0)
		diag_print(d, stderr);
	if (c == NULL && o->json)
		check_json_refused(path, d, NULL);
	diag_free(d);
	if (c == NULL)
		return EXIT_FAILED;
	if (c->npinsets == 0 && c->nforwarders == 0)
		fprintf(stderr, PROGRAM ": %s: no pin sets to check\n", path);
	if (!check_start(&run, c, err, sizeof(err))) {
		snprintf(msg, sizeof(msg), "%s: %s", path, err);
		fprintf(stderr, PROGRAM ": %s\n", msg);
		if (o->json)
			check_json_refused(path, NULL, msg);
		conf_unref(c);
		return EXIT_FAILED;
	}
	run.json = o->json;
	if (o->json) {
		printf("{\"config\":");
		json_str(path);
		printf(",\"hosts\":[");
	}
	for (i = 0; i < c->npinsets; i++) {
		ps = &c->pinsets[i];
		for (j = 0; j < ps->nhosts; j++) {
			if (strchr(ps->hosts[j], '*') != NULL)
				check_skip(ps, ps->hosts[j], o->json,
				    run.n++ == 0);
			else if (!check_host(&run, ps, ps->hosts[j], ps->port,
			    NULL))
				status = EXIT_FAILED;
		}
	}
	/* Forwarders: their upstream, as the daemon dials it. */
	for (i = 0; i < c->nforwarders; i++) {
		f = &c->forwarders[i];
		if (!check_host(&run, &c->pinsets[f->pinset], f->host, f->port,
		    f))
			status = EXIT_FAILED;
	}
	if (o->json)
		printf("\n],\"ok\":%s}\n", status == EXIT_OK ? "true" :
		    "false");
	runconf_unref(run.rc);
	free(run.dialled);
	probe_free(run.probe);
	conf_unref(c);
	return status;
}

/*
 * Print the daemon's interception CA (ca_cert) in PEM, then its pin line
 * and the file name Android's CA store wants for it: OpenSSL's old subject
 * hash in 8 hex digits and ".0".
 */
static enum exit_status
run_ca(const struct tool_opts *o)
{
	STACK_OF(X509)	*certs;
	struct diag	*d;
	struct conf	*c;
	X509		*ca;
	char		 err[512];
	enum exit_status status = EXIT_FAILED;

	d = diag_new();
	c = tool_conf(o, d, false);
	if (diag_count(d) > 0)
		diag_print(d, stderr);
	diag_free(d);
	if (c == NULL)
		return EXIT_FAILED;
	if ((certs = certfile_load(c->ca_cert, true, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, PROGRAM ": %s\n", err);
		if (access(c->ca_cert, F_OK) == -1 && errno == ENOENT)
			fprintf(stderr, PROGRAM ": pinproxy creates %s on its "
			    "first start\n", c->ca_cert);
		conf_unref(c);
		return EXIT_FAILED;
	}
	ca = sk_X509_value(certs, 0);
	if (PEM_write_X509(stdout, ca) == 1 && print_chain(certs)) {
		printf("android: %08lx.0\n", X509_subject_name_hash_old(ca));
		status = EXIT_OK;
	}
	sk_X509_pop_free(certs, X509_free);
	conf_unref(c);
	return status;
}

/*
 * "pin = sha256/...  ; depth=N SUBJECT", or commented out for a leaf but
 * when the chains had nothing else (leaf_only: a self-signed certificate
 * that is its own trust anchor), where a section needs it.
 */
static void
observed_pin_line(const struct observed_pin *op, bool leaf_only)
{
	char		 line[INI_LINE_MAX + 1], *subject;
	const char	*sep;

	subject = terminal_safe(op->subject != NULL ? op->subject : "",
	    op->subject != NULL ? strlen(op->subject) : 0);
	/* Truncation only shortens the comment. */
	sep = *subject != '\0' ? ": " : "";
	if (op->depth == 0 && leaf_only)
		snprintf(line, sizeof(line), "pin = leaf:%s  ; leaf, the whole"
		    " chain%s%s", op->pin, sep, subject);
	else if (op->depth == 0)
		snprintf(line, sizeof(line), ";pin = %s  ; leaf, changes at"
		    " renewal%s%s", op->pin, sep, subject);
	else
		snprintf(line, sizeof(line), "pin = %s  ; depth=%d%s%s",
		    op->pin, op->depth, *sep != '\0' ? " " : "", subject);
	printf("%s\n", line);
	free(subject);
}

/*
 * One [pins:NAME] section per group: a registrable domain and port, or
 * part of one (split, when other sections have the rest); false when a
 * host was left out (see ini_print_hosts).
 */
static bool
observed_print(const struct observed_group *g, bool split)
{
	struct hostlist	 hl, fresh = { 0 };
	char		 name[PINSET_NAME_MAX + 1];
	char		 from[HOSTMATCH_NAME_MAX + 8];
	size_t		 i;
	bool		 ok, leaf_only = true;

	hl.names = g->hosts;
	hl.count = g->nhosts;
	ok = ini_fresh_hosts(&hl, &fresh);
	if (fresh.count == 0) {
		ini_comment("no section for %.60s port %u: an earlier one "
		    "lists its hosts", g->domain, g->port);
		return false;
	}
	if (g->port != DEFAULT_PORT)
		snprintf(from, sizeof(from), "%s-%u", g->domain, g->port);
	else
		snprintf(from, sizeof(from), "%s", g->domain);
	ini_name_unique(from, name);
	printf("[pins:%s]\n", name);
	if (split)
		ini_comment("hosts of %s whose chains share no CA key with"
		    " these are in another section", g->domain);
	ok = ini_print_hosts(&fresh) && ok;
	hostlist_clear(&fresh);
	if (g->port != DEFAULT_PORT)
		printf("port = %u\n", g->port);
	/*
	 * A host seen with chains that share no CA key: one of them may be
	 * an interceptor's, whose CA is among the pins below.
	 */
	for (i = 0; i < g->nconflicts; i++) {
		ini_comment("WARNING: %.80s was seen with chains that share no"
		    " CA key", g->conflicts[i]);
		ini_comment("  (an interception while observing, or a change "
		    "of CA): confirm each pin below with the server's owner");
		fprintf(stderr, "pinproxy-pin: %s port %u was seen with chains"
		    " that share no CA key: confirm the pins of its section"
		    " before using them\n", g->conflicts[i], g->port);
		ok = false;
	}
	for (i = 0; i < g->npins; i++) {
		if (g->pins[i].depth == 0)
			continue;
		/* A CA some hosts' chains did not hold: which ones did. */
		if (g->pins[i].nseen < g->nhosts)
			ini_comment("seen for %zu of the %zu hosts, %s%s",
			    g->pins[i].nseen, g->nhosts, g->pins[i].seen_by,
			    g->pins[i].nseen > 1 ? " among them" : "");
		observed_pin_line(&g->pins[i], false);
		leaf_only = false;
	}
	if (leaf_only)
		ini_comment("chains of one certificate, each its own trust "
		    "anchor: its key is the pin, to change with it");
	for (i = 0; i < g->npins; i++)
		if (g->pins[i].depth == 0)
			observed_pin_line(&g->pins[i], leaf_only);
	printf("; reminder: every pin above is in the live chain; add a backup"
	    " pin (a key\n;   or CA these hosts do not use yet), then run"
	    " pinproxy-pin --check\n");
	return ok;
}

/* Whether groups a and b are of one domain and port. */
static bool
observed_same(const struct observed_group *a, const struct observed_group *b)
{
	return a->port == b->port && strcmp(a->domain, b->domain) == 0;
}

/* Whether group i shares its domain and port with a neighbour. */
static bool
observed_split(const struct observed *obs, size_t i)
{
	const struct observed_group *g = &obs->groups[i];

	return (i > 0 && observed_same(&obs->groups[i - 1], g)) ||
	    (i + 1 < obs->ngroups && observed_same(&obs->groups[i + 1], g));
}

/*
 * Turn an observe_file into ready-to-paste [pins:NAME] sections: one per
 * registrable domain and port (split by the CA keys its hosts' chains
 * share), the CA pins first, leaf pins commented out.
 */
static enum exit_status
run_observed(const struct tool_opts *o)
{
	struct observed	*obs;
	struct diag	*d;
	FILE		*fp;
	enum exit_status status = EXIT_OK;
	size_t		 i;
	char		*name;
	struct stat	 st;

	name = terminal_safe(o->observed, strlen(o->observed));
	if ((fp = fopen(o->observed, "r")) == NULL) {
		fprintf(stderr, PROGRAM ": cannot open %s: %s\n", name,
		    strerror(errno));
		free(name);
		return EXIT_FAILED;
	}
	/* A file or a pipe ends; a device (/dev/zero) need not. */
	if (fstat(fileno(fp), &st) == -1)
		st.st_mode = 0;		/* "not a regular file" */
	if (!(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))) {
		fprintf(stderr, PROGRAM ": %s is %s, not a file or a pipe: "
		    "refused\n", name, regfile_kind(st.st_mode));
		fclose(fp);
		free(name);
		return EXIT_FAILED;
	}
	d = diag_new();
	errno = 0;
	obs = observed_load(fp, o->observed, OBSERVED_PSL_PATH, d);
	if (ferror(fp)) {
		fprintf(stderr, PROGRAM ": cannot read %s: %s\n", name,
		    strerror(errno != 0 ? errno : EIO));
		status = EXIT_FAILED;
	}
	free(name);
	fclose(fp);
	if (diag_count(d) > 0) {
		diag_print(d, stderr);
		status = EXIT_FAILED;
	}
	diag_free(d);
	ini_comment("from %s, registrable domains by %s", o->observed,
	    obs->psl ? "the public suffix list" : "the last two labels");
	for (i = 0; i < obs->ngroups; i++) {
		printf("\n");
		if (!observed_print(&obs->groups[i],
		    observed_split(obs, i)))
			status = EXIT_FAILED;
	}
	observed_free(obs);
	return status;
}

/* Parse the command line into o; returns -1 to go on, else an exit code. */
static int
parse_args(int argc, char **argv, struct tool_opts *o)
{
	int	 ch;

	o->conf_path = NULL;
	while ((ch = getopt_long(argc, argv, "a:c:hn:s:V", tool_longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'a':
			o->ca_file = optarg;
			break;
		case 'c':
			o->conf_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'n':
			o->sni = optarg;
			break;
		case 's':
			o->server = optarg;
			break;
		case 'V':
			version_print(stdout, PROGRAM);
			return EXIT_OK;
		case OPT_CONNECT_TO:
			o->connect_to = optarg;
			break;
		case OPT_INI:
			o->ini = true;
			break;
		case OPT_CHECK:
			o->check = true;
			break;
		case OPT_CA:
			o->ca = true;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_FROM_OBSERVED:
			o->observed = optarg;
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	o->files = argv + optind;
	o->nfiles = argc - optind;

	if (o->observed != NULL) {
		if (o->ca || o->check || o->server != NULL || o->nfiles > 0 ||
		    o->ini)
			return usage_error("--from-observed takes no FILE, -s,"
			    " --ini, --check or --ca");
		o->mode = MODE_OBSERVED;
	} else if (o->ca) {
		if (o->check || o->server != NULL || o->nfiles > 0 || o->ini)
			return usage_error("--ca takes no FILE, -s, --ini or"
			    " --check");
		o->mode = MODE_CA;
	} else if (o->check) {
		if (o->server != NULL || o->nfiles > 0 || o->ini)
			return usage_error("--check takes no FILE, -s or"
			    " --ini");
		o->mode = MODE_CHECK;
	} else if (o->server != NULL) {
		if (o->nfiles > 0)
			return usage_error("-s takes no FILE");
		o->mode = MODE_SERVER;
	} else if (o->nfiles > 0)
		o->mode = MODE_FILES;
	else
		return usage_error("give a FILE, -s HOST, --check, --ca or"
		    " --from-observed FILE");

	if (o->json && o->mode != MODE_CHECK)
		return usage_error("--json goes with --check");
	if (o->mode != MODE_CHECK && o->mode != MODE_CA &&
	    o->conf_path != NULL)
		return usage_error("-c goes with --check or --ca");
	if (o->mode != MODE_SERVER &&
	    (o->sni != NULL || o->ca_file != NULL || o->connect_to != NULL))
		return usage_error("-n, -a and --connect-to go with -s");
	return -1;
}

int
main(int argc, char **argv)
{
	struct tool_opts	 o = { 0 };
	int			 r;

	/* A server that resets the connection must not kill the tool. */
	signal(SIGPIPE, SIG_IGN);
	/*
	 * The tool says what happened in its own words; the upstream code's
	 * warnings (upstream_error, verify_failed, pin_mismatch) would say it
	 * twice.
	 */
	log_set_level(LL_ERROR);
	if ((r = parse_args(argc, argv, &o)) != -1)
		return r;
	switch (o.mode) {
	case MODE_FILES:
		return run_files(&o);
	case MODE_SERVER:
		return run_server(&o);
	case MODE_CHECK:
		return run_check(&o);
	case MODE_CA:
		return run_ca(&o);
	case MODE_OBSERVED:
		return run_observed(&o);
	case MODE_NONE:
	default:
		return EXIT_USAGE;
	}
}

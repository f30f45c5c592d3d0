/*
 * Tests of the configuration parser and the configuration object: every
 * key of SPEC §2, the INI syntax as inih is fed it, every error with its
 * exact line, the warnings, and the lookups the runtime makes.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_parse.h"
#include "diag.h"
#include "hostmatch.h"
#include "testpki.h"
#include "xmalloc.h"

/* 2025-06-15 12:00:00 UTC: the date every test parses at. */
#define NOW		((time_t)1749988800)
#define FILE_NAME	"test.conf"

/* Three distinct, canonical pins. */
#define PIN_A	"sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define PIN_B	"sha256/BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA="
#define PIN_C	"sha256/CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCA="
/* PIN_B in the RFC 7469 spelling. */
#define PIN_B_RFC "pin-sha256=\"BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=\""

/* A [pins:NAME] section that is complete on its own. */
#define PINSET(name, hosts)						\
	"[pins:" name "]\n"						\
	"hosts = " hosts "\n"						\
	"pin = " PIN_A "\n"						\
	"pin = " PIN_B "\n"

struct parsed {
	struct conf	*conf;
	struct diag	*diag;
};

/* Parse len bytes of text at now; the caller frees with parsed_free. */
static struct parsed
parse_at(const char *text, size_t len, time_t now)
{
	struct parsed	 r;
	FILE		*fp;

	fp = fmemopen((void *)text, len, "r");
	assert_non_null(fp);
	r.diag = diag_new();
	r.conf = conf_parse_stream(fp, FILE_NAME, now, r.diag);
	fclose(fp);
	return r;
}

static struct parsed
parse(const char *text)
{
	return parse_at(text, strlen(text), NOW);
}

static void
parsed_free(struct parsed *r)
{
	conf_unref(r->conf);
	diag_free(r->diag);
}

/*
 * Require exactly the messages given, NULL-terminated, in order. On a
 * mismatch, print every message so that the failure explains itself.
 */
static void
expect_diags(const struct diag *d, ...)
{
	va_list		 ap;
	const char	*want;
	size_t		 i, n = 0;

	va_start(ap, d);
	while (va_arg(ap, const char *) != NULL)
		n++;
	va_end(ap);
	if (diag_count(d) != n) {
		for (i = 0; i < diag_count(d); i++)
			print_message("got: %s\n", diag_text(d, i));
		fail_msg("expected %zu messages, got %zu", n, diag_count(d));
	}
	va_start(ap, d);
	for (i = 0; i < n; i++) {
		want = va_arg(ap, const char *);
		assert_string_equal(diag_text(d, i), want);
	}
	va_end(ap);
}

/* Parse text that must be rejected with exactly the messages given. */
#define expect_rejected(text, ...) do {					\
	struct parsed	 r_ = parse(text);				\
									\
	assert_null(r_.conf);						\
	expect_diags(r_.diag, __VA_ARGS__, NULL);			\
	parsed_free(&r_);						\
} while (0)

/* Parse text that must be accepted with exactly the warnings given. */
#define expect_accepted(text, ...) do {					\
	struct parsed	 r_ = parse(text);				\
									\
	assert_non_null(r_.conf);					\
	expect_diags(r_.diag, __VA_ARGS__, NULL);			\
	parsed_free(&r_);						\
} while (0)

/* A normalised host looked up in c; returns the pin set's name or NULL. */
static const char *
lookup(const struct conf *c, const char *host)
{
	const struct pinset	*ps;
	char			 norm[HOSTMATCH_NAME_MAX + 1];

	assert_true(hostmatch_normalize(host, strlen(host), norm,
	    sizeof(norm)));
	ps = conf_lookup(c, norm);
	return ps == NULL ? NULL : ps->name;
}

static bool
client4(const struct conf *c, const char *text)
{
	struct sockaddr_in	 sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(40000);
	assert_int_equal(inet_pton(AF_INET, text, &sin.sin_addr), 1);
	return conf_client_allowed(c, (struct sockaddr *)&sin);
}

static bool
client6(const struct conf *c, const char *text)
{
	struct sockaddr_in6	 sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(40000);
	assert_int_equal(inet_pton(AF_INET6, text, &sin6.sin6_addr), 1);
	return conf_client_allowed(c, (struct sockaddr *)&sin6);
}

/* A line of exactly len bytes: "report_file = /xxx...". */
static char *
line_of(size_t len)
{
	char	*s;

	s = xcalloc(1, len + 1);
	memcpy(s, "report_file = /", 15);
	memset(s + 15, 'x', len - 15);
	return s;
}

static void
test_empty_file_gives_every_default(void **state)
{
	struct parsed	 r = parse("");
	struct conf	*c = r.conf;

	(void)state;
	assert_non_null(c);
	expect_diags(r.diag, NULL);
	assert_int_equal(c->refs, 1);
	assert_string_equal(c->path, FILE_NAME);
	assert_int_equal(c->nlisten, 1);
	assert_string_equal(c->listen[0].text, "127.0.0.1:8080");
	assert_string_equal(c->ca_cert, PINPROXY_STATEDIR "/ca.pem");
	assert_string_equal(c->ca_key, PINPROXY_STATEDIR "/ca.key");
	assert_string_equal(c->trust, "system");
	assert_int_equal(c->unpinned, UNPINNED_PASS);
	assert_int_equal(c->nconnect_ports, 2);
	assert_true(conf_connect_port_allowed(c, 80));
	assert_true(conf_connect_port_allowed(c, 443));
	assert_false(conf_connect_port_allowed(c, 8443));
	assert_true(client4(c, "127.0.0.1"));
	assert_true(client4(c, "127.255.0.9"));
	assert_true(client6(c, "::1"));
	assert_false(client4(c, "10.0.0.1"));
	assert_false(client6(c, "::2"));
	assert_int_equal(c->max_connections, 1024);
	assert_int_equal(c->connect_timeout_ms, 10000);
	assert_int_equal(c->header_timeout_ms, 30000);
	assert_int_equal(c->idle_timeout_ms, 300000);
	assert_int_equal(c->shutdown_timeout_ms, 10000);
	assert_int_equal(c->log, LOG_SINK_STDERR);
	assert_int_equal(c->log_level, LL_INFO);
	assert_null(c->report_file);
	assert_false(c->has_stats_listen);
	assert_string_equal(c->ca_host, "pinproxy.internal");
	assert_int_equal(c->npinsets, 0);
	parsed_free(&r);
}

static void
test_comments_blank_lines_and_empty_proxy_give_defaults(void **state)
{
	struct parsed	 r = parse("; a comment\n# another\n\n   \n"
	    "[proxy]\n  ; indented comment\n\t# and another\n");

	(void)state;
	assert_non_null(r.conf);
	expect_diags(r.diag, NULL);
	assert_int_equal(r.conf->nlisten, 1);
	assert_string_equal(r.conf->listen[0].text, "127.0.0.1:8080");
	assert_int_equal(r.conf->npinsets, 0);
	parsed_free(&r);
}

static void
test_every_proxy_key_is_parsed(void **state)
{
	struct parsed	 r = parse("[proxy]\n"
	    "listen = 127.0.0.2:3128\n"
	    "ca_cert = /tmp/x/ca.pem\n"
	    "ca_key = /tmp/x/ca.key\n"
	    "trust = system\n"
	    "unpinned = block\n"
	    "connect_ports = 443 8443\n"
	    "allow_clients = 10.0.0.0/8, fd00::/8\n"
	    "max_connections = 77\n"
	    "connect_timeout = 7s\n"
	    "header_timeout = 2m\n"
	    "idle_timeout = 1h\n"
	    "shutdown_timeout = 0\n"
	    "log = syslog\n"
	    "log_level = debug\n"
	    "report_file = /tmp/x/reports.jsonl\n"
	    "stats_listen = 127.0.0.1:9101\n");
	struct conf	*c = r.conf;

	(void)state;
	assert_non_null(c);
	expect_diags(r.diag, NULL);
	assert_int_equal(c->nlisten, 1);
	assert_string_equal(c->listen[0].text, "127.0.0.2:3128");
	assert_string_equal(c->ca_cert, "/tmp/x/ca.pem");
	assert_string_equal(c->ca_key, "/tmp/x/ca.key");
	assert_string_equal(c->trust, "system");
	assert_int_equal(c->unpinned, UNPINNED_BLOCK);
	assert_int_equal(c->nconnect_ports, 2);
	assert_int_equal(c->connect_ports[0], 443);
	assert_int_equal(c->connect_ports[1], 8443);
	assert_int_equal(c->nallow_clients, 2);
	assert_true(client4(c, "10.1.2.3"));
	assert_true(client6(c, "fd12::1"));
	assert_false(client4(c, "127.0.0.1"));
	assert_int_equal(c->max_connections, 77);
	assert_int_equal(c->connect_timeout_ms, 7000);
	assert_int_equal(c->header_timeout_ms, 120000);
	assert_int_equal(c->idle_timeout_ms, 3600000);
	assert_int_equal(c->shutdown_timeout_ms, 0);
	assert_int_equal(c->log, LOG_SINK_SYSLOG);
	assert_int_equal(c->log_level, LL_DEBUG);
	assert_string_equal(c->report_file, "/tmp/x/reports.jsonl");
	assert_true(c->has_stats_listen);
	assert_string_equal(c->stats_listen.text, "127.0.0.1:9101");
	parsed_free(&r);
}

static void
test_every_unpinned_policy_and_log_level_is_accepted(void **state)
{
	static const struct {
		const char		*text;
		enum unpinned_policy	 policy;
	} policies[] = {
		{ "pass", UNPINNED_PASS },
		{ "verify", UNPINNED_VERIFY },
		{ "block", UNPINNED_BLOCK },
	};
	static const struct {
		const char		*text;
		enum log_level		 level;
	} levels[] = {
		{ "error", LL_ERROR },
		{ "warn", LL_WARN },
		{ "info", LL_INFO },
		{ "debug", LL_DEBUG },
	};
	struct parsed	 r;
	char		 text[128];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
		snprintf(text, sizeof(text), "[proxy]\nunpinned = %s\n",
		    policies[i].text);
		r = parse(text);
		assert_non_null(r.conf);
		assert_int_equal(r.conf->unpinned, policies[i].policy);
		assert_string_equal(conf_unpinned_name(policies[i].policy),
		    policies[i].text);
		parsed_free(&r);
	}
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		snprintf(text, sizeof(text), "[proxy]\nlog_level = %s\n",
		    levels[i].text);
		r = parse(text);
		assert_non_null(r.conf);
		assert_int_equal(r.conf->log_level, levels[i].level);
		parsed_free(&r);
	}
}

static void
test_listen_repeats_and_replaces_the_default(void **state)
{
	struct parsed	 r = parse("[proxy]\n"
	    "listen = 127.0.0.1:3128\n"
	    "listen = [::1]:3128\n"
	    "listen = 127.0.0.3:1, 127.0.0.4:2\n");
	struct conf	*c = r.conf;
	struct sockaddr_in6	*sin6;

	(void)state;
	assert_non_null(c);
	expect_diags(r.diag, NULL);
	assert_int_equal(c->nlisten, 4);
	assert_string_equal(c->listen[0].text, "127.0.0.1:3128");
	assert_string_equal(c->listen[1].text, "[::1]:3128");
	assert_string_equal(c->listen[2].text, "127.0.0.3:1");
	assert_string_equal(c->listen[3].text, "127.0.0.4:2");
	sin6 = (struct sockaddr_in6 *)&c->listen[1].ss;
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 3128);
	assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	parsed_free(&r);
}

static void
test_durations_are_seconds_or_take_a_unit(void **state)
{
	struct parsed	 r = parse("[proxy]\n"
	    "connect_timeout = 45\n"
	    "header_timeout = 45s\n"
	    "idle_timeout = 5m\n"
	    "shutdown_timeout = 2h\n");
	struct parsed	 ms = parse("[proxy]\n"
	    "connect_timeout = 300ms\n"
	    "header_timeout = 1ms\n"
	    "idle_timeout = 1500ms\n"
	    "shutdown_timeout = 0ms\n");

	(void)state;
	assert_non_null(r.conf);
	assert_int_equal(r.conf->connect_timeout_ms, 45000);
	assert_int_equal(r.conf->header_timeout_ms, 45000);
	assert_int_equal(r.conf->idle_timeout_ms, 300000);
	assert_int_equal(r.conf->shutdown_timeout_ms, 7200000);
	parsed_free(&r);
	assert_non_null(ms.conf);
	assert_int_equal(ms.conf->connect_timeout_ms, 300);
	assert_int_equal(ms.conf->header_timeout_ms, 1);
	assert_int_equal(ms.conf->idle_timeout_ms, 1500);
	assert_int_equal(ms.conf->shutdown_timeout_ms, 0);
	parsed_free(&ms);
}

static void
test_plain_ports_default_to_80_443_and_pin_set_ports(void **state)
{
	struct parsed	 r;

	(void)state;
	r = parse("[pins:a]\nhosts = a.example\npin = " PIN_A "\n"
	    "pin = " PIN_B "\nport = 8443\n");
	assert_non_null(r.conf);
	assert_false(r.conf->plain_ports_set);
	assert_true(conf_plain_port_allowed(r.conf, 80));
	assert_true(conf_plain_port_allowed(r.conf, 443));
	assert_true(conf_plain_port_allowed(r.conf, 8443));
	assert_false(conf_plain_port_allowed(r.conf, 8080));
	assert_false(conf_plain_port_allowed(r.conf, 22));
	parsed_free(&r);
	r = parse("[proxy]\nplain_ports = 8080, 81\n"
	    "[pins:a]\nhosts = a.example\npin = " PIN_A "\n"
	    "pin = " PIN_B "\nport = 8443\n");
	assert_non_null(r.conf);
	assert_true(r.conf->plain_ports_set);
	assert_int_equal(r.conf->nplain_ports, 2);
	assert_true(conf_plain_port_allowed(r.conf, 8080));
	assert_true(conf_plain_port_allowed(r.conf, 81));
	assert_false(conf_plain_port_allowed(r.conf, 80));
	assert_false(conf_plain_port_allowed(r.conf, 8443));
	parsed_free(&r);
}

static void
test_lists_split_on_commas_and_or_spaces(void **state)
{
	static const char *const spellings[] = {
		"443,8443,9443",
		"443 8443 9443",
		"443, 8443 ,9443",
		"443 ,\t8443,, 9443",
	};
	struct parsed	 r;
	char		 text[128];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		snprintf(text, sizeof(text), "[proxy]\nconnect_ports = %s\n",
		    spellings[i]);
		r = parse(text);
		assert_non_null(r.conf);
		assert_int_equal(r.conf->nconnect_ports, 3);
		assert_true(conf_connect_port_allowed(r.conf, 443));
		assert_true(conf_connect_port_allowed(r.conf, 8443));
		assert_true(conf_connect_port_allowed(r.conf, 9443));
		assert_false(conf_connect_port_allowed(r.conf, 80));
		parsed_free(&r);
	}
}

static void
test_allow_clients_takes_a_cidr_list_for_both_families(void **state)
{
	struct parsed	 r = parse("[proxy]\n"
	    "allow_clients = 192.168.1.0/24 10.0.0.7, 2001:db8::/32 ::1\n");
	struct conf	*c = r.conf;

	(void)state;
	assert_non_null(c);
	assert_int_equal(c->nallow_clients, 4);
	assert_true(client4(c, "192.168.1.0"));
	assert_true(client4(c, "192.168.1.255"));
	assert_false(client4(c, "192.168.2.1"));
	assert_true(client4(c, "10.0.0.7"));
	assert_false(client4(c, "10.0.0.8"));
	assert_false(client4(c, "127.0.0.1"));
	assert_true(client6(c, "2001:db8:ffff::1"));
	assert_false(client6(c, "2001:db9::1"));
	assert_true(client6(c, "::1"));
	/* A dual-stack listener sees IPv4 clients as mapped addresses. */
	assert_true(client6(c, "::ffff:192.168.1.20"));
	assert_true(client6(c, "::ffff:10.0.0.7"));
	assert_false(client6(c, "::ffff:10.0.0.8"));
	assert_false(client6(c, "::ffff:127.0.0.1"));
	parsed_free(&r);
}

static void
test_empty_report_file_and_stats_listen_mean_unset(void **state)
{
	struct parsed	 r = parse("[proxy]\n"
	    "report_file =\n"
	    "stats_listen =                ; optional\n");

	(void)state;
	assert_non_null(r.conf);
	expect_diags(r.diag, NULL);
	assert_null(r.conf->report_file);
	assert_false(r.conf->has_stats_listen);
	parsed_free(&r);
}

static void
test_stats_listen_takes_an_ipv6_address(void **state)
{
	struct parsed	 r = parse("[proxy]\nstats_listen = [::1]:9101\n");

	(void)state;
	assert_non_null(r.conf);
	assert_true(r.conf->has_stats_listen);
	assert_string_equal(r.conf->stats_listen.text, "[::1]:9101");
	parsed_free(&r);
}

static void
test_transparent_repeats_and_upstream_mark_is_a_number(void **state)
{
	struct parsed	 r = parse("[proxy]\ntransparent = 127.0.0.1:8081\n"
	    "transparent = [::1]:8081\nupstream_mark = 4660\n");

	(void)state;
	assert_non_null(r.conf);
	expect_diags(r.diag, NULL);
	assert_int_equal(r.conf->nlisten, 1);
	assert_int_equal(r.conf->ntransparent, 2);
	assert_string_equal(r.conf->transparent[0].text, "127.0.0.1:8081");
	assert_string_equal(r.conf->transparent[1].text, "[::1]:8081");
	assert_int_equal(r.conf->upstream_mark, 4660);
	parsed_free(&r);
	r = parse("[proxy]\n");
	assert_non_null(r.conf);
	assert_int_equal(r.conf->ntransparent, 0);
	assert_int_equal(r.conf->upstream_mark, 0);
	parsed_free(&r);
}

static void
test_transparent_and_upstream_mark_reject_bad_values(void **state)
{
	struct parsed	 r;

	(void)state;
	r = parse("[proxy]\ntransparent = localhost:8081\n");
	assert_null(r.conf);
	parsed_free(&r);
	r = parse("[proxy]\nupstream_mark = -1\n");
	assert_null(r.conf);
	parsed_free(&r);
	r = parse("[proxy]\nupstream_mark = 4294967296\n");
	assert_null(r.conf);
	parsed_free(&r);
}

static void
test_ca_host_is_normalised_and_empty_disables_it(void **state)
{
	struct parsed	 r;

	(void)state;
	r = parse("[proxy]\nca_host = CA.Example.Internal.\n");
	assert_non_null(r.conf);
	assert_string_equal(r.conf->ca_host, "ca.example.internal");
	parsed_free(&r);
	r = parse("[proxy]\nca_host =\n");
	assert_non_null(r.conf);
	assert_null(r.conf->ca_host);
	parsed_free(&r);
}

static void
test_ca_host_rejects_an_address_and_a_wildcard(void **state)
{
	(void)state;
	expect_rejected("[proxy]\nca_host = 127.0.0.1\n",
	    FILE_NAME ":2: bad value for ca_host: \"127.0.0.1\": "
	    "not a host name: 127.0.0.1");
	expect_rejected("[proxy]\nca_host = *.internal\n",
	    FILE_NAME ":2: bad value for ca_host: \"*.internal\": "
	    "not a host name: *.internal");
}

static void
test_trust_and_ca_file_take_pem_files(void **state)
{
	EVP_PKEY	*key;
	X509		*root;
	struct parsed	 r;
	char		*dir, *pem, *text, hashed[32];

	(void)state;
	key = testpki_key(TESTPKI_EC);
	root = testpki_root("conf test root", key);
	dir = testpki_tmpdir();
	pem = testpki_write_cert(dir, "root.pem", root);
	text = xasprintf("[proxy]\ntrust = %s\n"
	    PINSET("a", "a.example") "ca_file = %s\n", pem, pem);
	r = parse(text);
	assert_non_null(r.conf);
	expect_diags(r.diag, NULL);
	assert_string_equal(r.conf->trust, pem);
	assert_string_equal(r.conf->pinsets[0].ca_file, pem);
	parsed_free(&r);
	free(text);

	/*
	 * A directory of hashed roots is a trust source, but not a
	 * ca_file.
	 */
	snprintf(hashed, sizeof(hashed), "%08lx.0",
	    X509_subject_name_hash(root));
	free(testpki_write_cert(dir, hashed, root));
	text = xasprintf("[proxy]\ntrust = %s\n", dir);
	r = parse(text);
	assert_non_null(r.conf);
	assert_string_equal(r.conf->trust, dir);
	parsed_free(&r);
	free(text);
	text = xasprintf(PINSET("a", "a.example") "ca_file = %s\n", dir);
	r = parse(text);
	assert_null(r.conf);
	assert_int_equal(diag_count(r.diag), 1);
	assert_non_null(strstr(diag_text(r.diag, 0),
	    FILE_NAME ":5: bad value for ca_file: \""));
	parsed_free(&r);
	free(text);

	testpki_rmdir(dir);
	free(pem);
	free(dir);
	X509_free(root);
	EVP_PKEY_free(key);
}

static void
test_missing_trust_and_ca_file_are_errors(void **state)
{
	(void)state;
	expect_rejected("[proxy]\ntrust = /nonexistent/roots.pem\n"
	    PINSET("a", "a.example")
	    "ca_file = /nonexistent/extra.pem\n",
	    FILE_NAME ":2: bad value for trust: \"/nonexistent/roots.pem\": "
	    "cannot open /nonexistent/roots.pem: No such file or directory",
	    FILE_NAME ":7: bad value for ca_file: \"/nonexistent/extra.pem\": "
	    "cannot open /nonexistent/extra.pem: No such file or directory");
}

static void
test_every_pins_key_is_parsed(void **state)
{
	struct parsed	 r = parse("[pins:example-api]\n"
	    "hosts = api.example.com, *.cdn.example.com\n"
	    "pin = " PIN_A "\n"
	    "pin = " PIN_B_RFC "\n"
	    "include_subdomains = yes\n"
	    "enforce = no\n"
	    "expires = 2027-06-30\n"
	    "port = 8443\n"
	    "ca_file =\n"
	    "connect_to = 127.0.0.1:4433\n");
	const struct pinset	*ps;
	struct pin		 pin;
	char			 err[128];

	(void)state;
	assert_non_null(r.conf);
	expect_diags(r.diag, NULL);
	assert_int_equal(r.conf->npinsets, 1);
	ps = &r.conf->pinsets[0];
	assert_string_equal(ps->name, "example-api");
	assert_int_equal(ps->line, 1);
	assert_int_equal(ps->nhosts, 2);
	assert_string_equal(ps->hosts[0], "api.example.com");
	assert_string_equal(ps->hosts[1], "*.cdn.example.com");
	assert_int_equal(ps->npins, 2);
	assert_true(pin_parse(PIN_A, &pin, err, sizeof(err)));
	assert_true(pin_equal(&ps->pins[0], &pin));
	assert_true(pin_parse(PIN_B, &pin, err, sizeof(err)));
	assert_true(pin_equal(&ps->pins[1], &pin));
	assert_true(ps->include_subdomains);
	assert_false(ps->enforce);
	assert_true(ps->has_expires);
	assert_string_equal(ps->expires_text, "2027-06-30");
	assert_int_equal(ps->expires, 1814313600);
	assert_int_equal(ps->port, 8443);
	assert_null(ps->ca_file);
	assert_true(ps->has_connect_to);
	assert_string_equal(ps->connect_to.text, "127.0.0.1:4433");
	parsed_free(&r);
}

static void
test_scopes_require_and_candidates_are_parsed(void **state)
{
	struct parsed	 r = parse("[pins:rot]\n"
	    "hosts = api.example.com\n"
	    "require = leaf+ca\n"
	    "pin = leaf:" PIN_A "\n"
	    "pin = ca:" PIN_B_RFC "\n"
	    "candidate = " PIN_C "\n"
	    "candidate = " PIN_A "\n");
	const struct pinset	*ps;
	struct pin		 pin;
	char			 err[128];

	(void)state;
	assert_non_null(r.conf);
	expect_diags(r.diag, FILE_NAME ":7: warning: [pins:rot] candidate "
	    PIN_A " is also a pin of the set: it is ignored (remove the "
	    "candidate line)", NULL);
	ps = &r.conf->pinsets[0];
	assert_int_equal(ps->require, PINSET_REQUIRE_LEAF_CA);
	assert_int_equal(ps->npins, 2);
	assert_int_equal(ps->pins[0].scope, PIN_SCOPE_LEAF);
	assert_int_equal(ps->pins[1].scope, PIN_SCOPE_CA);
	assert_int_equal(ps->ncandidates, 1);
	assert_true(pin_parse(PIN_C, &pin, err, sizeof(err)));
	assert_true(pin_equal(&ps->candidates[0], &pin));
	parsed_free(&r);
}

static void
test_scope_require_and_candidate_errors_name_their_lines(void **state)
{
	(void)state;
	expect_rejected("[pins:a]\nhosts = a.example\n"
	    "pin = leaf:" PIN_A "\npin = " PIN_B "\n"
	    "require = leaf+ca\n"
	    "candidate = leaf:" PIN_C "\n"
	    "require = both\n"
	    "pin = root:" PIN_C "\n",
	    FILE_NAME ":5: [pins:a] require = leaf+ca needs at least one "
	    "leaf: pin and one ca: pin; it has no ca: pin",
	    FILE_NAME ":6: bad value for candidate: \"leaf:" PIN_C "\": a "
	    "scope (leaf: or ca:) is allowed only on a pin line",
	    FILE_NAME ":7: duplicate key require: already set at line 5",
	    FILE_NAME ":8: bad value for pin: \"root:" PIN_C "\": a pin "
	    "must look like sha256/BASE64 or pin-sha256=\"BASE64\"");
	expect_rejected("[pins:a]\nhosts = a.example\n"
	    "pin = " PIN_A "\npin = " PIN_B "\nrequire = all\n",
	    FILE_NAME ":5: bad value for require: \"all\": require must be "
	    "leaf+ca or any");
	expect_accepted(PINSET("a", "a.example")
	    "candidate = " PIN_C "\ncandidate = " PIN_C "\n",
	    FILE_NAME ":6: warning: [pins:a] candidate " PIN_C " is "
	    "repeated");
}

/*
 * Repeats found by sorting still warn in file order, keep each first
 * candidate in its place, and a pin among them is named as a pin.
 */
static void
test_candidates_keep_file_order(void **state)
{
#define PIN_D	"sha256/DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDA="
	struct parsed	 r = parse(PINSET("a", "a.example")
	    "candidate = " PIN_D "\n"
	    "candidate = " PIN_C "\n"
	    "candidate = " PIN_D "\n"
	    "candidate = " PIN_A "\n"
	    "candidate = " PIN_C "\n"
	    "candidate = " PIN_A "\n"
	    "candidate = " PIN_D "\n");
	const struct pinset	*ps;
	struct pin		 pin;
	char			 err[128];

	(void)state;
	assert_non_null(r.conf);
	expect_diags(r.diag,
	    FILE_NAME ":7: warning: [pins:a] candidate " PIN_D " is repeated",
	    FILE_NAME ":8: warning: [pins:a] candidate " PIN_A " is also a "
	    "pin of the set: it is ignored (remove the candidate line)",
	    FILE_NAME ":9: warning: [pins:a] candidate " PIN_C " is repeated",
	    FILE_NAME ":10: warning: [pins:a] candidate " PIN_A " is also a "
	    "pin of the set: it is ignored (remove the candidate line)",
	    FILE_NAME ":11: warning: [pins:a] candidate " PIN_D " is repeated",
	    NULL);
	ps = &r.conf->pinsets[0];
	assert_int_equal(ps->ncandidates, 2);
	assert_true(pin_parse(PIN_D, &pin, err, sizeof(err)));
	assert_true(pin_equal(&ps->candidates[0], &pin));
	assert_true(pin_parse(PIN_C, &pin, err, sizeof(err)));
	assert_true(pin_equal(&ps->candidates[1], &pin));
	parsed_free(&r);
#undef PIN_D
}

static void
test_pins_section_defaults(void **state)
{
	struct parsed		 r = parse(PINSET("a", "a.example"));
	const struct pinset	*ps;

	(void)state;
	assert_non_null(r.conf);
	expect_diags(r.diag, NULL);
	ps = &r.conf->pinsets[0];
	assert_false(ps->include_subdomains);
	assert_true(ps->enforce);
	assert_false(ps->has_expires);
	assert_false(pinset_expired(ps, NOW));
	assert_int_equal(ps->port, 443);
	assert_null(ps->ca_file);
	assert_false(ps->has_connect_to);
	assert_int_equal(ps->require, PINSET_REQUIRE_ANY);
	assert_int_equal(ps->ncandidates, 0);
	parsed_free(&r);
}

static void
test_hosts_repeat_and_are_normalised(void **state)
{
	struct parsed	 r = parse("[pins:a]\n"
	    "hosts = API.Example.COM.\n"
	    "hosts = b.example.com c.example.com,*.D.example.com\n"
	    "hosts = 192.0.2.1 [2001:DB8::1]\n"
	    "pin = " PIN_A "\npin = " PIN_B "\n");
	const struct pinset	*ps;

	(void)state;
	assert_non_null(r.conf);
	expect_diags(r.diag, NULL);
	ps = &r.conf->pinsets[0];
	assert_int_equal(ps->nhosts, 6);
	assert_string_equal(ps->hosts[0], "api.example.com");
	assert_string_equal(ps->hosts[1], "b.example.com");
	assert_string_equal(ps->hosts[2], "c.example.com");
	assert_string_equal(ps->hosts[3], "*.d.example.com");
	assert_string_equal(ps->hosts[4], "192.0.2.1");
	assert_string_equal(ps->hosts[5], "2001:db8::1");
	parsed_free(&r);
}

static void
test_pin_sections_keep_file_order_and_header_lines(void **state)
{
	struct parsed	 r = parse("[proxy]\n\n"
	    PINSET("first", "a.example") "\n"
	    PINSET("second", "b.example"));

	(void)state;
	assert_non_null(r.conf);
	assert_int_equal(r.conf->npinsets, 2);
	assert_string_equal(r.conf->pinsets[0].name, "first");
	assert_int_equal(r.conf->pinsets[0].line, 3);
	assert_string_equal(r.conf->pinsets[1].name, "second");
	assert_int_equal(r.conf->pinsets[1].line, 8);
	parsed_free(&r);
}

static void
test_inline_comments_need_a_space_before_the_semicolon(void **state)
{
	struct parsed	 r = parse("[proxy]   ; the proxy\n"
	    "unpinned = block ; comment\n"
	    "log_level = debug\t; after a tab\n"
	    "report_file = /tmp/a;b\n"
	    "ca_cert = /tmp/c #d\n"
	    PINSET("a", "a.example ; b.example"));

	(void)state;
	assert_non_null(r.conf);
	expect_diags(r.diag, NULL);
	assert_int_equal(r.conf->unpinned, UNPINNED_BLOCK);
	assert_int_equal(r.conf->log_level, LL_DEBUG);
	assert_string_equal(r.conf->report_file, "/tmp/a;b");
	assert_string_equal(r.conf->ca_cert, "/tmp/c #d");
	assert_int_equal(r.conf->pinsets[0].nhosts, 1);
	parsed_free(&r);
}

static void
test_hash_is_no_inline_comment(void **state)
{
	(void)state;
	expect_rejected("[proxy]\nunpinned = block # comment\n",
	    FILE_NAME ":2: bad value for unpinned: \"block # comment\": "
	    "expected pass, verify or block");
}

static void
test_indented_keys_are_not_continuation_lines(void **state)
{
	struct parsed	 r = parse("[proxy]\n"
	    "listen = 127.0.0.1:3128\n"
	    "    listen = 127.0.0.1:3129\n"
	    "\tunpinned = verify\n"
	    "  [pins:a]\n"
	    "  hosts = a.example\n"
	    "\t\tpin = " PIN_A "\n"
	    "\t\tpin = " PIN_B "\n");

	(void)state;
	assert_non_null(r.conf);
	expect_diags(r.diag, NULL);
	assert_int_equal(r.conf->nlisten, 2);
	assert_string_equal(r.conf->listen[1].text, "127.0.0.1:3129");
	assert_int_equal(r.conf->unpinned, UNPINNED_VERIFY);
	assert_int_equal(r.conf->npinsets, 1);
	assert_int_equal(r.conf->pinsets[0].npins, 2);
	parsed_free(&r);
}

static void
test_crlf_line_endings_are_accepted(void **state)
{
	struct parsed	 r = parse("[proxy]\r\n"
	    "unpinned = block\r\n"
	    "report_file = /tmp/r.jsonl\r\n"
	    "\r\n"
	    "[pins:a]\r\n"
	    "hosts = a.example\r\n"
	    "pin = " PIN_A "\r\n"
	    "pin = " PIN_B "\r\n"
	    "bogus = 1\r\n");

	(void)state;
	assert_null(r.conf);
	expect_diags(r.diag,
	    FILE_NAME ":9: unknown key \"bogus\" in [pins:a]", NULL);
	parsed_free(&r);

	r = parse("[proxy]\r\nunpinned = block\r\n"
	    "report_file = /tmp/r.jsonl\r\n[pins:a]\r\nhosts = a.example\r\n"
	    "pin = " PIN_A "\r\npin = " PIN_B "\r\n");
	assert_non_null(r.conf);
	assert_int_equal(r.conf->unpinned, UNPINNED_BLOCK);
	assert_string_equal(r.conf->report_file, "/tmp/r.jsonl");
	assert_string_equal(r.conf->pinsets[0].hosts[0], "a.example");
	parsed_free(&r);
}

static void
test_utf8_bom_is_skipped(void **state)
{
	struct parsed	 r;

	(void)state;
	r = parse("\xef\xbb\xbf[proxy]\nunpinned = verify\n");
	assert_non_null(r.conf);
	expect_diags(r.diag, NULL);
	assert_int_equal(r.conf->unpinned, UNPINNED_VERIFY);
	parsed_free(&r);

	r = parse("\xef\xbb\xbf; comment\n[proxy]\n");
	assert_non_null(r.conf);
	expect_diags(r.diag, NULL);
	parsed_free(&r);
}

static void
test_last_line_without_newline_is_parsed(void **state)
{
	struct parsed	 r = parse("[proxy]\nunpinned = block");

	(void)state;
	assert_non_null(r.conf);
	assert_int_equal(r.conf->unpinned, UNPINNED_BLOCK);
	parsed_free(&r);
}

static void
test_unknown_section_is_reported_at_its_header(void **state)
{
	(void)state;
	expect_rejected("[proxy]\n\n[pins]\nhosts = a.example\n"
	    "[Proxy]\nlisten = nonsense\n",
	    FILE_NAME ":3: unknown section [pins]; expected [proxy], "
	    "[pins:NAME] or [forward:NAME]",
	    FILE_NAME ":5: unknown section [Proxy]; expected [proxy], "
	    "[pins:NAME] or [forward:NAME]");
}

static void
test_unknown_key_is_reported_with_its_section(void **state)
{
	(void)state;
	expect_rejected("[proxy]\nlisten = 127.0.0.1:1\nlistn = x\n"
	    PINSET("api", "a.example") "hots = b.example\n",
	    FILE_NAME ":3: unknown key \"listn\" in [proxy]",
	    FILE_NAME ":8: unknown key \"hots\" in [pins:api]");
}

static void
test_key_of_the_other_section_is_reported_with_a_hint(void **state)
{
	(void)state;
	expect_rejected("[proxy]\nhosts = a.example\n"
	    PINSET("api", "b.example") "listen = 127.0.0.1:1\n",
	    FILE_NAME ":2: unknown key \"hosts\" in [proxy]: it belongs in "
	    "a [pins:NAME] section",
	    FILE_NAME ":7: unknown key \"listen\" in [pins:api]: it belongs "
	    "in [proxy]");
}

static void
test_bad_proxy_values_name_the_key_and_the_value(void **state)
{
	(void)state;
	expect_rejected("[proxy]\n"
	    "listen = localhost:8080\n"
	    "ca_cert =\n"
	    "unpinned = allow\n"
	    "connect_ports = 443 0\n"
	    "allow_clients = 10.0.0.1/8\n"
	    "max_connections = 0\n"
	    "connect_timeout = 10d\n"
	    "header_timeout = 0\n"
	    "idle_timeout = -1\n"
	    "log = file\n"
	    "log_level = verbose\n"
	    "stats_listen = 9101\n"
	    "plain_ports = 80 x\n",
	    FILE_NAME ":2: bad value for listen: \"localhost:8080\": not a "
	    "numeric IPv4 address (host names are not accepted)",
	    FILE_NAME ":3: bad value for ca_cert: \"\": a path is required",
	    FILE_NAME ":4: bad value for unpinned: \"allow\": expected pass, "
	    "verify or block",
	    FILE_NAME ":5: bad value for connect_ports: \"443 0\": not a "
	    "port: expected a number from 1 to 65535",
	    FILE_NAME ":6: bad value for allow_clients: \"10.0.0.1/8\": host "
	    "bits set; did you mean 10.0.0.0/8?",
	    FILE_NAME ":7: bad value for max_connections: \"0\": number out "
	    "of range: must be from 1 to 1000000",
	    FILE_NAME ":8: bad value for connect_timeout: \"10d\": unknown "
	    "unit in duration: use ms, s, m or h",
	    FILE_NAME ":9: bad value for header_timeout: \"0\": must be at "
	    "least 1ms",
	    FILE_NAME ":10: bad value for idle_timeout: \"-1\": a duration "
	    "cannot be negative",
	    FILE_NAME ":11: bad value for log: \"file\": expected stderr or "
	    "syslog",
	    FILE_NAME ":12: bad value for log_level: \"verbose\": expected "
	    "error, warn, info or debug",
	    FILE_NAME ":13: bad value for stats_listen: \"9101\": missing "
	    ":PORT, as in 127.0.0.1:8080",
	    FILE_NAME ":14: bad value for plain_ports: \"80 x\": not a "
	    "port: expected a number from 1 to 65535");
}

static void
test_empty_lists_are_bad_values(void **state)
{
	(void)state;
	expect_rejected("[proxy]\nlisten =\nconnect_ports = ,\n"
	    "allow_clients =\n[pins:a]\nhosts =\npin = " PIN_A "\n"
	    "pin = " PIN_B "\n",
	    FILE_NAME ":2: bad value for listen: \"\": an address is required",
	    FILE_NAME ":3: bad value for connect_ports: \",\": at least one "
	    "port is required",
	    FILE_NAME ":4: bad value for allow_clients: \"\": at least one "
	    "address block is required",
	    FILE_NAME ":6: bad value for hosts: \"\": at least one host "
	    "pattern is required");
}

static void
test_bad_pins_values_name_the_key_and_the_value(void **state)
{
	(void)state;
	expect_rejected("[pins:a]\n"
	    "hosts = a.example, *\n"
	    "hosts = a..example\n"
	    "pin = sha1/AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	    "pin = sha256/AAAA\n"
	    "pin = " PIN_A "\n"
	    "include_subdomains = maybe\n"
	    "enforce = sometimes\n"
	    "expires = 2027-02-30\n"
	    "port = 70000\n"
	    "connect_to = staging.example:443\n",
	    FILE_NAME ":1: warning: [pins:a] has no backup pin: a key change "
	    "on the server will break every connection",
	    FILE_NAME ":2: bad value for hosts: \"a.example, *\": a lone * is "
	    "not a host pattern; write *.example.com to cover the names one "
	    "label below example.com",
	    FILE_NAME ":3: bad value for hosts: \"a..example\": empty label "
	    "in host name",
	    FILE_NAME ":4: bad value for pin: "
	    "\"sha1/AAAAAAAAAAAAAAAAAAAAAAAAAAA=\": SHA-1 pins are not "
	    "accepted; use sha256/",
	    FILE_NAME ":5: bad value for pin: \"sha256/AAAA\": digest is 3 "
	    "bytes, a SHA-256 pin has 32",
	    FILE_NAME ":7: bad value for include_subdomains: \"maybe\": "
	    "expected yes or no (or true/false, on/off, 1/0)",
	    FILE_NAME ":8: bad value for enforce: \"sometimes\": expected yes "
	    "or no (or true/false, on/off, 1/0)",
	    FILE_NAME ":9: bad value for expires: \"2027-02-30\": day 30 out "
	    "of range: 2027-02 has 28 days",
	    FILE_NAME ":10: bad value for port: \"70000\": not a port: "
	    "expected a number from 1 to 65535",
	    FILE_NAME ":11: bad value for connect_to: "
	    "\"staging.example:443\": not a numeric IPv4 address (host names "
	    "are not accepted)");
}

static void
test_duplicate_key_is_reported_at_its_second_line(void **state)
{
	(void)state;
	expect_rejected("[proxy]\nunpinned = block\nlog = stderr\n"
	    "unpinned = pass\n"
	    PINSET("a", "a.example") "enforce = no\nenforce = yes\n",
	    FILE_NAME ":4: duplicate key unpinned: already set at line 2",
	    FILE_NAME ":10: duplicate key enforce: already set at line 9");
}

static void
test_bad_value_still_counts_as_set(void **state)
{
	(void)state;
	expect_rejected("[proxy]\nunpinned = maybe\nunpinned = pass\n",
	    FILE_NAME ":2: bad value for unpinned: \"maybe\": expected pass, "
	    "verify or block",
	    FILE_NAME ":3: duplicate key unpinned: already set at line 2");
}

static void
test_same_key_in_two_sections_is_no_duplicate(void **state)
{
	(void)state;
	expect_accepted(PINSET("a", "a.example") "port = 8443\n"
	    PINSET("b", "b.example") "port = 9443\n", NULL);
}

static void
test_key_before_any_section_is_reported(void **state)
{
	(void)state;
	expect_rejected("; leading comment\nlisten = 127.0.0.1:1\n"
	    "hosts = a.example\n[proxy]\n",
	    FILE_NAME ":2: key \"listen\" before any [section]",
	    FILE_NAME ":3: key \"hosts\" before any [section]");
}

static void
test_host_in_two_sections_is_reported_at_its_second_line(void **state)
{
	(void)state;
	expect_rejected(PINSET("a", "a.example, *.b.example") "\n"
	    PINSET("b", "c.example A.Example.") "\n"
	    PINSET("c", "*.B.example"),
	    FILE_NAME ":7: bad value for hosts: \"c.example A.Example.\": "
	    "host a.example is already listed in [pins:a] at line 2",
	    FILE_NAME ":12: bad value for hosts: \"*.B.example\": host "
	    "*.b.example is already listed in [pins:a] at line 2");
}

static void
test_missing_hosts_and_pin_are_reported_at_the_header(void **state)
{
	(void)state;
	expect_rejected("[proxy]\n\n[pins:nohosts]\npin = " PIN_A "\n"
	    "pin = " PIN_B "\n\n[pins:nopin]\nhosts = b.example\n"
	    "[pins:empty]\n",
	    FILE_NAME ":3: [pins:nohosts] has no hosts line: at least one "
	    "host pattern is required",
	    FILE_NAME ":7: [pins:nopin] has no pin line: at least one pin is "
	    "required",
	    FILE_NAME ":9: [pins:empty] has no hosts line: at least one host "
	    "pattern is required",
	    FILE_NAME ":9: [pins:empty] has no pin line: at least one pin is "
	    "required");
}

static void
test_pinset_name_of_39_characters_is_accepted(void **state)
{
	struct parsed	 r;
	char		*text;
	char		 name[PINSET_NAME_MAX + 1];

	(void)state;
	memset(name, 'n', 39);
	name[39] = '\0';
	text = xasprintf("[pins:%s]\nhosts = a.example\npin = " PIN_A "\n"
	    "pin = " PIN_B "\n", name);
	r = parse(text);
	assert_non_null(r.conf);
	expect_diags(r.diag, NULL);
	assert_string_equal(r.conf->pinsets[0].name, name);
	parsed_free(&r);
	free(text);
}

static void
test_pinset_name_of_40_characters_is_rejected(void **state)
{
	struct parsed	 r;
	char		*text, *want;
	char		 name[41];

	(void)state;
	memset(name, 'n', 40);
	name[40] = '\0';
	text = xasprintf("[proxy]\n[pins:%s]\nhosts = a.example\n"
	    "pin = " PIN_A "\nbogus = 1\n", name);
	want = xasprintf(FILE_NAME ":2: bad section [pins:%s]: pin set name "
	    "is 40 characters long; the limit is 39", name);
	r = parse(text);
	assert_null(r.conf);
	/* The section is skipped whole: no cascade of errors from its keys. */
	expect_diags(r.diag, want, NULL);
	parsed_free(&r);
	free(want);
	free(text);
}

static void
test_pinset_names_are_labels(void **state)
{
	(void)state;
	expect_rejected("[pins:]\n[pins:a b]\n[pins:api.example.com/x]\n"
	    PINSET("Ok_name-1.2", "a.example"),
	    FILE_NAME ":1: bad section [pins:]: pin set name is empty",
	    FILE_NAME ":2: bad section [pins:a b]: pin set name may contain "
	    "only letters, digits, '-', '_' and '.'",
	    FILE_NAME ":3: bad section [pins:api.example.com/x]: pin set name "
	    "may contain only letters, digits, '-', '_' and '.'");
}

static void
test_line_of_198_bytes_is_accepted(void **state)
{
	struct parsed	 r;
	char		*line, *text;

	(void)state;
	line = line_of(198);
	text = xasprintf("[proxy]\n%s\nunpinned = block\n", line);
	r = parse(text);
	assert_non_null(r.conf);
	expect_diags(r.diag, NULL);
	assert_int_equal(strlen(r.conf->report_file), 198 - 14);
	assert_int_equal(r.conf->unpinned, UNPINNED_BLOCK);
	parsed_free(&r);
	free(text);

	/* The '\r' of a CRLF ending does not count. */
	text = xasprintf("[proxy]\r\n%s\r\nunpinned = block\r\n", line);
	r = parse(text);
	assert_non_null(r.conf);
	expect_diags(r.diag, NULL);
	assert_int_equal(strlen(r.conf->report_file), 198 - 14);
	parsed_free(&r);
	free(text);
	free(line);
}

static void
test_line_of_199_bytes_is_rejected_and_parsing_goes_on(void **state)
{
	struct parsed	 r;
	char		*line, *text;

	(void)state;
	line = line_of(199);
	text = xasprintf("[proxy]\n%s\nunpinned = sometimes\n"
	    "log = syslog\n", line);
	r = parse(text);
	assert_null(r.conf);
	expect_diags(r.diag,
	    FILE_NAME ":2: line is 199 bytes long; the limit is 198",
	    FILE_NAME ":3: bad value for unpinned: \"sometimes\": expected "
	    "pass, verify or block", NULL);
	parsed_free(&r);
	free(text);
	free(line);

	line = line_of(5000);
	text = xasprintf("[proxy]\r\n%s\r\nlog = file\r\n", line);
	r = parse(text);
	assert_null(r.conf);
	expect_diags(r.diag,
	    FILE_NAME ":2: line is 5000 bytes long; the limit is 198",
	    FILE_NAME ":3: bad value for log: \"file\": expected stderr or "
	    "syslog", NULL);
	parsed_free(&r);
	free(text);
	free(line);
}

static void
test_long_comment_line_is_rejected_too(void **state)
{
	struct parsed	 r;
	char		 text[256];

	(void)state;
	memset(text, '#', 199);
	text[199] = '\n';
	text[200] = '\0';
	r = parse(text);
	assert_null(r.conf);
	expect_diags(r.diag,
	    FILE_NAME ":1: line is 199 bytes long; the limit is 198", NULL);
	parsed_free(&r);
}

static void
test_unterminated_section_header_is_reported_once(void **state)
{
	(void)state;
	expect_rejected("[proxy\nlisten = 127.0.0.1:1\n"
	    PINSET("a", "a.example") "[pins:b ; comment]\n",
	    FILE_NAME ":1: section header has no closing ']'",
	    FILE_NAME ":7: bad section [pins:b ; comment]: pin set name may "
	    "contain only letters, digits, '-', '_' and '.'");
}

static void
test_text_after_a_section_header_is_reported(void **state)
{
	(void)state;
	expect_rejected("[proxy] # main\nunpinned = nope\n",
	    FILE_NAME ":1: unexpected text after the section header: "
	    "\"# main\" (a comment after a header starts with ';')",
	    FILE_NAME ":2: bad value for unpinned: \"nope\": expected pass, "
	    "verify or block");
	expect_accepted("[proxy];main\n[pins:a] ; api\nhosts = a.example\n"
	    "pin = " PIN_A "\npin = " PIN_B "\n", NULL);
}

static void
test_duplicate_sections_are_reported(void **state)
{
	(void)state;
	expect_rejected("[proxy]\n" PINSET("a", "a.example")
	    "[proxy]\n" PINSET("a", "b.example"),
	    FILE_NAME ":6: duplicate section [proxy], first at line 1",
	    FILE_NAME ":7: duplicate section [pins:a], first at line 2");
}

static void
test_nul_byte_is_reported(void **state)
{
	static const char text[] = "[proxy]\nunpinned = bl\0ock\n"
	    "log = nowhere\n";
	struct parsed	 r;

	(void)state;
	r = parse_at(text, sizeof(text) - 1, NOW);
	assert_null(r.conf);
	expect_diags(r.diag,
	    FILE_NAME ":2: line contains a NUL byte",
	    FILE_NAME ":3: bad value for log: \"nowhere\": expected stderr or "
	    "syslog", NULL);
	parsed_free(&r);
}

/*
 * Lines end with LF or CR LF: a file whose lines end with CR alone would
 * be read as one line, a comment hiding the settings after it.
 */
static void
test_bare_carriage_return_is_reported(void **state)
{
	(void)state;
	expect_rejected("#pinproxy\r[proxy]\runpinned = block\r\n"
	    "[proxy]\r\nlog = nowhere ; note\rlog = stderr\n",
	    FILE_NAME ":1: line holds a carriage return before its end; "
	    "lines end with LF or CR LF",
	    FILE_NAME ":3: line holds a carriage return before its end; "
	    "lines end with LF or CR LF");
}

static void
test_line_that_is_not_key_value_is_reported(void **state)
{
	(void)state;
	expect_rejected("[proxy]\nunpinned\nlisten ; = 127.0.0.1:1\n"
	    "= block\n  : x\nlog = nowhere\n",
	    FILE_NAME ":2: expected \"key = value\" or a [section] header, "
	    "not \"unpinned\"",
	    FILE_NAME ":3: expected \"key = value\" or a [section] header, "
	    "not \"listen ; = 127.0.0.1:1\"",
	    FILE_NAME ":4: missing key name before '='",
	    FILE_NAME ":5: missing key name before ':'",
	    FILE_NAME ":6: bad value for log: \"nowhere\": expected stderr or "
	    "syslog");
}

static void
test_colon_separates_like_equals(void **state)
{
	struct parsed	 r = parse("[proxy]\nunpinned: block\n"
	    "listen: [::1]:3128\n");

	(void)state;
	assert_non_null(r.conf);
	assert_int_equal(r.conf->unpinned, UNPINNED_BLOCK);
	assert_string_equal(r.conf->listen[0].text, "[::1]:3128");
	parsed_free(&r);
}

static void
test_every_error_of_a_file_is_reported(void **state)
{
	(void)state;
	expect_rejected("listen = 127.0.0.1:1\n"
	    "[proxy]\n"
	    "unpinned = allow\n"
	    "bogus = 1\n"
	    "unpinned = pass\n"
	    "[pins:a]\n"
	    "hosts = a.example\n"
	    "pin = sha256/short\n"
	    "[pins:b]\n"
	    "hosts = a.example\n"
	    "[elsewhere]\n"
	    "junk\n",
	    FILE_NAME ":1: key \"listen\" before any [section]",
	    FILE_NAME ":3: bad value for unpinned: \"allow\": expected pass, "
	    "verify or block",
	    FILE_NAME ":4: unknown key \"bogus\" in [proxy]",
	    FILE_NAME ":5: duplicate key unpinned: already set at line 3",
	    FILE_NAME ":8: bad value for pin: \"sha256/short\": bad base64: "
	    "5 characters is not a padded encoding (missing or extra '=' "
	    "padding?)",
	    FILE_NAME ":9: [pins:b] has no pin line: at least one pin is "
	    "required",
	    FILE_NAME ":10: bad value for hosts: \"a.example\": host "
	    "a.example is already listed in [pins:a] at line 7",
	    FILE_NAME ":11: unknown section [elsewhere]; expected [proxy], "
	    "[pins:NAME] or [forward:NAME]",
	    FILE_NAME ":12: expected \"key = value\" or a [section] header, "
	    "not \"junk\"");
}

static void
test_single_pin_is_a_warning(void **state)
{
	(void)state;
	expect_accepted("[pins:one]\nhosts = a.example\npin = " PIN_A "\n"
	    "[pins:same]\nhosts = b.example\npin = " PIN_B "\n"
	    "pin = " PIN_B_RFC "\n"
	    "[pins:two]\nhosts = c.example\npin = " PIN_A "\npin = " PIN_C
	    "\n",
	    FILE_NAME ":1: warning: [pins:one] has no backup pin: a key change "
	    "on the server will break every connection",
	    FILE_NAME ":4: warning: [pins:same] has no backup pin: a key "
	    "change on the server will break every connection");
}

static void
test_expired_enforced_pinset_is_a_warning(void **state)
{
	struct parsed	 r;

	(void)state;
	r = parse(PINSET("old", "a.example") "expires = 2025-06-14\n"
	    PINSET("ancient", "b.example") "expires = 2001-01-01\n");
	assert_non_null(r.conf);
	expect_diags(r.diag,
	    FILE_NAME ":5: warning: [pins:old] expired on 2025-06-14: its "
	    "pins are no longer enforced",
	    FILE_NAME ":10: warning: [pins:ancient] expired on 2001-01-01: "
	    "its pins are no longer enforced", NULL);
	assert_true(pinset_expired(&r.conf->pinsets[0], NOW));
	parsed_free(&r);
}

static void
test_pinset_expiring_within_30_days_is_a_warning(void **state)
{
	(void)state;
	expect_accepted(PINSET("today", "a.example") "expires = 2025-06-15\n"
	    PINSET("tomorrow", "b.example") "expires = 2025-06-16\n"
	    PINSET("month", "c.example") "expires = 2025-07-15\n"
	    PINSET("later", "d.example") "expires = 2025-07-16\n",
	    FILE_NAME ":5: warning: [pins:today] expires today (2025-06-15): "
	    "after that date its pins are not enforced",
	    FILE_NAME ":10: warning: [pins:tomorrow] expires in 1 day "
	    "(2025-06-16): after that date its pins are not enforced",
	    FILE_NAME ":15: warning: [pins:month] expires in 30 days "
	    "(2025-07-15): after that date its pins are not enforced");
}

static void
test_report_only_pinset_gets_no_expiry_warning(void **state)
{
	(void)state;
	expect_accepted(PINSET("old", "a.example") "enforce = no\n"
	    "expires = 2001-01-01\n"
	    PINSET("soon", "b.example") "expires = 2025-06-20\n"
	    "enforce = off\n", NULL);
}

static void
test_expiry_is_judged_at_the_given_time(void **state)
{
	static const char text[] = PINSET("a", "a.example")
	    "expires = 2025-06-15\n";
	struct parsed	 r;

	(void)state;
	/* The whole date is covered; the first second after it is not. */
	r = parse_at(text, sizeof(text) - 1, 1750031999);
	expect_diags(r.diag, FILE_NAME ":5: warning: [pins:a] expires today "
	    "(2025-06-15): after that date its pins are not enforced", NULL);
	assert_false(pinset_expired(&r.conf->pinsets[0], 1750031999));
	assert_true(pinset_expired(&r.conf->pinsets[0], 1750032000));
	parsed_free(&r);
	r = parse_at(text, sizeof(text) - 1, 1750032000);
	expect_diags(r.diag, FILE_NAME ":5: warning: [pins:a] expired on "
	    "2025-06-15: its pins are no longer enforced", NULL);
	parsed_free(&r);
	r = parse_at(text, sizeof(text) - 1, 1747267200);
	expect_diags(r.diag, NULL);
	parsed_free(&r);
}

static void
test_warnings_and_errors_come_in_line_order(void **state)
{
	(void)state;
	expect_rejected("[pins:a]\nhosts = a.example\npin = " PIN_A "\n"
	    "expires = 2001-01-01\nport = 0\n",
	    FILE_NAME ":1: warning: [pins:a] has no backup pin: a key change "
	    "on the server will break every connection",
	    FILE_NAME ":4: warning: [pins:a] expired on 2001-01-01: its pins "
	    "are no longer enforced",
	    FILE_NAME ":5: bad value for port: \"0\": not a port: expected a "
	    "number from 1 to 65535");
}

static void
test_lookup_prefers_an_exact_host_to_a_wildcard(void **state)
{
	struct parsed	 r = parse(PINSET("wild", "*.example.com")
	    PINSET("exact", "api.example.com"));

	(void)state;
	assert_non_null(r.conf);
	assert_string_equal(lookup(r.conf, "api.example.com"), "exact");
	assert_string_equal(lookup(r.conf, "www.example.com"), "wild");
	parsed_free(&r);
}

/*
 * The unspecified address is dialled as the loopback one, and a NAT64
 * address as the IPv4 address it carries: both get that address's pins.
 */
static void
test_lookup_follows_unspecified_and_nat64_addresses(void **state)
{
	struct parsed	 r = parse(PINSET("local4", "127.0.0.1")
	    PINSET("local6", "::1") PINSET("own64", "64:ff9b::a00:2"));

	(void)state;
	assert_non_null(r.conf);
	assert_string_equal(lookup(r.conf, "0.0.0.0"), "local4");
	assert_string_equal(lookup(r.conf, "[::ffff:0.0.0.0]"), "local4");
	assert_string_equal(lookup(r.conf, "[::]"), "local6");
	assert_string_equal(lookup(r.conf, "[64:ff9b::7f00:1]"), "local4");
	assert_string_equal(lookup(r.conf, "64:ff9b::127.0.0.1"), "local4");
	/* A set of the NAT64 address itself comes first. */
	assert_string_equal(lookup(r.conf, "64:ff9b::a00:2"), "own64");
	assert_null(lookup(r.conf, "64:ff9b::a00:3"));
	/* The local-use prefix, at each length its network may use. */
	assert_string_equal(lookup(r.conf, "64:ff9b:1::7f00:1"), "local4");
	assert_string_equal(lookup(r.conf, "64:ff9b:1:7f00:0:100::"),
	    "local4");
	assert_string_equal(lookup(r.conf, "64:ff9b:1:0:7f:0:100:0"),
	    "local4");
	assert_null(lookup(r.conf, "64:ff9b:1::a00:3"));
	/* Another prefix carries no IPv4 address this way. */
	assert_null(lookup(r.conf, "64:ff9b:2::7f00:1"));
	assert_null(lookup(r.conf, "2001:db8::7f00:1"));
	parsed_free(&r);
}

static void
test_lookup_prefers_the_longer_pattern(void **state)
{
	struct parsed	 r = parse(PINSET("short", "example.com")
	    "include_subdomains = yes\n"
	    PINSET("long", "*.api.example.com")
	    PINSET("mid", "eu.example.com")
	    "include_subdomains = yes\n"
	    PINSET("wild", "*.example.com"));

	(void)state;
	assert_non_null(r.conf);
	assert_string_equal(lookup(r.conf, "v1.api.example.com"), "long");
	assert_string_equal(lookup(r.conf, "a.b.eu.example.com"), "mid");
	assert_string_equal(lookup(r.conf, "www.example.com"), "wild");
	assert_string_equal(lookup(r.conf, "a.b.example.com"), "short");
	assert_string_equal(lookup(r.conf, "example.com"), "short");
	assert_string_equal(lookup(r.conf, "eu.example.com"), "mid");
	parsed_free(&r);
}

static void
test_lookup_covers_subdomains_only_when_asked(void **state)
{
	struct parsed	 r = parse(PINSET("plain", "a.example")
	    PINSET("deep", "b.example") "include_subdomains = yes\n");

	(void)state;
	assert_non_null(r.conf);
	assert_string_equal(lookup(r.conf, "a.example"), "plain");
	assert_null(lookup(r.conf, "x.a.example"));
	assert_string_equal(lookup(r.conf, "b.example"), "deep");
	assert_string_equal(lookup(r.conf, "x.b.example"), "deep");
	assert_string_equal(lookup(r.conf, "y.x.b.example"), "deep");
	assert_null(lookup(r.conf, "xb.example"));
	parsed_free(&r);
}

static void
test_lookup_wildcard_covers_exactly_one_label(void **state)
{
	struct parsed	 r = parse(PINSET("wild", "*.cdn.example"));

	(void)state;
	assert_non_null(r.conf);
	assert_string_equal(lookup(r.conf, "img.cdn.example"), "wild");
	assert_null(lookup(r.conf, "cdn.example"));
	assert_null(lookup(r.conf, "a.img.cdn.example"));
	parsed_free(&r);
}

static void
test_lookup_ignores_case_and_a_trailing_dot(void **state)
{
	struct parsed	 r = parse(PINSET("api", "Api.Example.COM.")
	    PINSET("wild", "*.CDN.example.com"));

	(void)state;
	assert_non_null(r.conf);
	assert_string_equal(lookup(r.conf, "API.EXAMPLE.COM."), "api");
	assert_string_equal(lookup(r.conf, "api.example.com"), "api");
	assert_string_equal(lookup(r.conf, "Img.Cdn.Example.Com."), "wild");
	parsed_free(&r);
}

static void
test_lookup_of_an_uncovered_host_is_null(void **state)
{
	struct parsed	 r = parse(PINSET("api", "api.example.com"));

	(void)state;
	assert_non_null(r.conf);
	assert_null(lookup(r.conf, "example.com"));
	assert_null(lookup(r.conf, "api.example.org"));
	assert_null(lookup(r.conf, "xapi.example.com"));
	parsed_free(&r);

	r = parse("");
	assert_null(lookup(r.conf, "api.example.com"));
	parsed_free(&r);
}

static void
test_lookup_matches_ip_literals_exactly(void **state)
{
	struct parsed	 r;

	(void)state;
	r = parse(PINSET("ip", "192.0.2.7 [2001:db8::7]"));
	assert_non_null(r.conf);
	assert_string_equal(lookup(r.conf, "192.0.2.7"), "ip");
	assert_string_equal(lookup(r.conf, "[2001:DB8:0::7]"), "ip");
	assert_null(lookup(r.conf, "192.0.2.8"));
	parsed_free(&r);
}

/*
 * Thousands of sets: each pattern is found by its index, as a scan would
 * find it, and a pattern listed again far below its first line is refused
 * with that line (both once took a scan of every pattern per host).
 */
static void
test_lookup_of_many_sets(void **state)
{
	static const char	 again[] = PINSET("again", "*.w0.example");
	static const char	 twice[] = PINSET("s17", "zz.example");
	struct parsed		 r;
	char			*text, *p;
	size_t			 size = 4000 * 256 + sizeof(again);
	int			 i, n;

	(void)state;
	text = p = test_malloc(size);
	for (i = 0; i < 4000; i++) {
		n = snprintf(p, size - (size_t)(p - text), "[pins:s%d]\n"
		    "hosts = h%d.example, *.w%d.example\n%s"
		    "pin = " PIN_A "\npin = " PIN_B "\n", i, i, i,
		    i % 2 == 0 ? "include_subdomains = yes\n" : "");
		assert_true(n > 0 && n < 256);
		p += n;
	}
	r = parse_at(text, (size_t)(p - text), NOW);
	assert_non_null(r.conf);
	assert_int_equal(r.conf->npinsets, 4000);
	assert_string_equal(lookup(r.conf, "h3999.example"), "s3999");
	assert_string_equal(lookup(r.conf, "a.w17.example"), "s17");
	assert_null(lookup(r.conf, "a.b.w17.example"));
	assert_string_equal(lookup(r.conf, "x.y.h18.example"), "s18");
	assert_null(lookup(r.conf, "x.h19.example"));
	assert_null(lookup(r.conf, "h4000.example"));
	parsed_free(&r);

	/* The same pattern again, 4000 sets below. */
	memcpy(p, again, sizeof(again));
	r = parse_at(text, strlen(text), NOW);
	assert_null(r.conf);
	assert_int_equal(diag_errors(r.diag), 1);
	assert_non_null(strstr(diag_first_error(r.diag), "host *.w0.example "
	    "is already listed in [pins:s0] at line 2"));
	parsed_free(&r);

	/* A section name again, 4000 sets below (s17's header: line 78). */
	memcpy(p, twice, sizeof(twice));
	r = parse_at(text, strlen(text), NOW);
	assert_null(r.conf);
	assert_int_equal(diag_errors(r.diag), 1);
	assert_non_null(strstr(diag_first_error(r.diag),
	    "duplicate section [pins:s17], first at line 78"));
	parsed_free(&r);
	test_free(text);
}

static void
test_references_keep_the_configuration_alive(void **state)
{
	struct parsed	 r = parse(PINSET("a", "a.example"));
	struct conf	*c = r.conf;

	(void)state;
	assert_non_null(c);
	assert_ptr_equal(conf_ref(c), c);
	assert_int_equal(c->refs, 2);
	conf_unref(c);
	assert_int_equal(c->refs, 1);
	assert_string_equal(c->pinsets[0].hosts[0], "a.example");
	/* parsed_free drops the last reference; ASan reports any leak. */
	parsed_free(&r);
	conf_unref(NULL);
}

static void
test_default_configuration_is_a_fresh_object(void **state)
{
	struct conf	*a, *b;

	(void)state;
	a = conf_new_default();
	b = conf_new_default();
	assert_ptr_not_equal(a, b);
	assert_int_equal(a->refs, 1);
	assert_null(a->path);
	assert_true(conf_connect_port_allowed(a, 443));
	assert_true(conf_connect_port_allowed(a, 80));
	assert_false(conf_connect_port_allowed(a, 8080));
	conf_unref(a);
	conf_unref(b);
}

static void
test_missing_file_is_reported_with_its_name(void **state)
{
	struct diag	*d = diag_new();

	(void)state;
	assert_null(conf_parse_file("/nonexistent/pinproxy.conf", NOW, d));
	expect_diags(d, "/nonexistent/pinproxy.conf: cannot open: No such "
	    "file or directory", NULL);
	diag_free(d);
}

static void
test_parse_file_reads_a_real_file(void **state)
{
	struct diag	*d = diag_new();
	struct conf	*c;
	char		*dir, *path;
	FILE		*fp;

	(void)state;
	dir = testpki_tmpdir();
	path = xasprintf("%s/pinproxy.conf", dir);
	assert_non_null(fp = fopen(path, "w"));
	fputs("[proxy]\nunpinned = verify\n" PINSET("a", "a.example"), fp);
	fclose(fp);
	c = conf_parse_file(path, NOW, d);
	assert_non_null(c);
	assert_string_equal(c->path, path);
	assert_int_equal(c->unpinned, UNPINNED_VERIFY);
	assert_int_equal(c->npinsets, 1);
	conf_unref(c);
	diag_free(d);
	testpki_rmdir(dir);
	free(path);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_file_gives_every_default),
		cmocka_unit_test(
		    test_comments_blank_lines_and_empty_proxy_give_defaults),
		cmocka_unit_test(test_every_proxy_key_is_parsed),
		cmocka_unit_test(
		    test_every_unpinned_policy_and_log_level_is_accepted),
		cmocka_unit_test(test_listen_repeats_and_replaces_the_default),
		cmocka_unit_test(test_durations_are_seconds_or_take_a_unit),
		cmocka_unit_test(
		    test_plain_ports_default_to_80_443_and_pin_set_ports),
		cmocka_unit_test(test_lists_split_on_commas_and_or_spaces),
		cmocka_unit_test(
		    test_allow_clients_takes_a_cidr_list_for_both_families),
		cmocka_unit_test(
		    test_empty_report_file_and_stats_listen_mean_unset),
		cmocka_unit_test(test_stats_listen_takes_an_ipv6_address),
		cmocka_unit_test(
		    test_transparent_repeats_and_upstream_mark_is_a_number),
		cmocka_unit_test(
		    test_transparent_and_upstream_mark_reject_bad_values),
		cmocka_unit_test(
		    test_ca_host_is_normalised_and_empty_disables_it),
		cmocka_unit_test(
		    test_ca_host_rejects_an_address_and_a_wildcard),
		cmocka_unit_test(test_trust_and_ca_file_take_pem_files),
		cmocka_unit_test(test_missing_trust_and_ca_file_are_errors),
		cmocka_unit_test(test_every_pins_key_is_parsed),
		cmocka_unit_test(test_pins_section_defaults),
		cmocka_unit_test(test_scopes_require_and_candidates_are_parsed),
		cmocka_unit_test(test_candidates_keep_file_order),
		cmocka_unit_test(
		    test_scope_require_and_candidate_errors_name_their_lines),
		cmocka_unit_test(test_hosts_repeat_and_are_normalised),
		cmocka_unit_test(
		    test_pin_sections_keep_file_order_and_header_lines),
		cmocka_unit_test(
		    test_inline_comments_need_a_space_before_the_semicolon),
		cmocka_unit_test(test_hash_is_no_inline_comment),
		cmocka_unit_test(
		    test_indented_keys_are_not_continuation_lines),
		cmocka_unit_test(test_crlf_line_endings_are_accepted),
		cmocka_unit_test(test_utf8_bom_is_skipped),
		cmocka_unit_test(test_last_line_without_newline_is_parsed),
		cmocka_unit_test(
		    test_unknown_section_is_reported_at_its_header),
		cmocka_unit_test(test_unknown_key_is_reported_with_its_section),
		cmocka_unit_test(
		    test_key_of_the_other_section_is_reported_with_a_hint),
		cmocka_unit_test(
		    test_bad_proxy_values_name_the_key_and_the_value),
		cmocka_unit_test(test_empty_lists_are_bad_values),
		cmocka_unit_test(
		    test_bad_pins_values_name_the_key_and_the_value),
		cmocka_unit_test(
		    test_duplicate_key_is_reported_at_its_second_line),
		cmocka_unit_test(test_bad_value_still_counts_as_set),
		cmocka_unit_test(test_same_key_in_two_sections_is_no_duplicate),
		cmocka_unit_test(test_key_before_any_section_is_reported),
		cmocka_unit_test(
		    test_host_in_two_sections_is_reported_at_its_second_line),
		cmocka_unit_test(
		    test_missing_hosts_and_pin_are_reported_at_the_header),
		cmocka_unit_test(test_pinset_name_of_39_characters_is_accepted),
		cmocka_unit_test(test_pinset_name_of_40_characters_is_rejected),
		cmocka_unit_test(test_pinset_names_are_labels),
		cmocka_unit_test(test_line_of_198_bytes_is_accepted),
		cmocka_unit_test(
		    test_line_of_199_bytes_is_rejected_and_parsing_goes_on),
		cmocka_unit_test(test_long_comment_line_is_rejected_too),
		cmocka_unit_test(
		    test_unterminated_section_header_is_reported_once),
		cmocka_unit_test(test_text_after_a_section_header_is_reported),
		cmocka_unit_test(test_duplicate_sections_are_reported),
		cmocka_unit_test(test_nul_byte_is_reported),
		cmocka_unit_test(test_bare_carriage_return_is_reported),
		cmocka_unit_test(test_line_that_is_not_key_value_is_reported),
		cmocka_unit_test(test_colon_separates_like_equals),
		cmocka_unit_test(test_every_error_of_a_file_is_reported),
		cmocka_unit_test(test_single_pin_is_a_warning),
		cmocka_unit_test(test_expired_enforced_pinset_is_a_warning),
		cmocka_unit_test(
		    test_pinset_expiring_within_30_days_is_a_warning),
		cmocka_unit_test(
		    test_report_only_pinset_gets_no_expiry_warning),
		cmocka_unit_test(test_expiry_is_judged_at_the_given_time),
		cmocka_unit_test(test_warnings_and_errors_come_in_line_order),
		cmocka_unit_test(
		    test_lookup_prefers_an_exact_host_to_a_wildcard),
		cmocka_unit_test(test_lookup_prefers_the_longer_pattern),
		cmocka_unit_test(
		    test_lookup_follows_unspecified_and_nat64_addresses),
		cmocka_unit_test(test_lookup_covers_subdomains_only_when_asked),
		cmocka_unit_test(test_lookup_wildcard_covers_exactly_one_label),
		cmocka_unit_test(test_lookup_ignores_case_and_a_trailing_dot),
		cmocka_unit_test(test_lookup_of_an_uncovered_host_is_null),
		cmocka_unit_test(test_lookup_matches_ip_literals_exactly),
		cmocka_unit_test(test_lookup_of_many_sets),
		cmocka_unit_test(
		    test_references_keep_the_configuration_alive),
		cmocka_unit_test(test_default_configuration_is_a_fresh_object),
		cmocka_unit_test(test_missing_file_is_reported_with_its_name),
		cmocka_unit_test(test_parse_file_reads_a_real_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

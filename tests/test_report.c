/*
 * Tests of the report_file: the exact JSON line of a pin failure, its
 * validity as JSON for an independent parser, escaping of hostile names,
 * suppression of repeats within the hour, rotation and write errors.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/resource.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "jsonl.h"
#include "log.h"
#include "pin.h"
#include "report.h"
#include "testpki.h"
#include "xmalloc.h"

#define HOST	"api.example.test"
/* 2024-05-01T12:00:00Z */
#define T0	((time_t)1714564800)

#define PIN_A	"sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define PIN_B_B64 "YLh1dUR9y6Kja30RrAn7JKnbQG/uEtLMkBgFF2Fuihg="
#define PIN_B	"sha256/" PIN_B_B64

/*
 * Checks every line of a report file with Python's JSON parser: the field
 * set, the types, PEM strings and the pin form, then prints a summary of
 * each line for the test to compare.
 */
static const char checker[] =
    "import json, re, sys\n"
    "keys = {'date-time', 'hostname', 'port', 'effective-expiration-date',\n"
    "    'include-subdomains', 'noted-hostname', 'served-certificate-chain',\n"
    "    'validated-certificate-chain', 'known-pins', 'enforced', 'pinset',\n"
    "    'client'}\n"
    "for line in open(sys.argv[1], encoding='ascii'):\n"
    "    assert line.endswith('}\\n') and line.count('\\n') == 1\n"
    "    o = json.loads(line)\n"
    "    assert set(o) - {'server-address'} == keys, set(o) ^ keys\n"
    "    assert re.fullmatch(r'\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ',\n"
    "        o['date-time'])\n"
    "    assert type(o['port']) is int\n"
    "    assert type(o['enforced']) is bool\n"
    "    assert type(o['include-subdomains']) is bool\n"
    "    for k in ('served-certificate-chain',\n"
    "        'validated-certificate-chain'):\n"
    "        for c in o[k]:\n"
    "            assert c.startswith('-----BEGIN CERTIFICATE-----\\n'), c\n"
    "            assert c.endswith('-----END CERTIFICATE-----\\n'), c\n"
    "    for p in o['known-pins']:\n"
    "        assert re.fullmatch(r'pin-sha256=\"[A-Za-z0-9+/]{43}=\"', p), p\n"
    "    print(len(o['served-certificate-chain']),\n"
    "        len(o['validated-certificate-chain']), len(o['known-pins']),\n"
    "        o['port'], o['enforced'], ascii(o['hostname']),\n"
    "        ascii(o['pinset']), ascii(o['client']))\n";

/* A PKI shared by every test. */
struct fixture {
	struct testpki_chain	 pki;
	struct testpki_chain	 other;
	STACK_OF(X509)		*served;	/* leaf, intermediate */
	STACK_OF(X509)		*validated;	/* leaf, intermediate, root */
	STACK_OF(X509)		*other_validated;
};

/* A pin set with two known pins, one host and an expiry date. */
struct test_pinset {
	struct pinset	 ps;
	char		*hosts[2];
	struct pin	 pins[2];
};

static int
setup(void **state)
{
	struct fixture	*fx;

	fx = xcalloc(1, sizeof(*fx));
	testpki_chain_make(&fx->pki, "Report", HOST);
	testpki_chain_make(&fx->other, "Other", HOST);
	fx->served = testpki_stack(fx->pki.leaf, fx->pki.ca, NULL);
	fx->validated = testpki_stack(fx->pki.leaf, fx->pki.ca, fx->pki.root,
	    NULL);
	fx->other_validated = testpki_stack(fx->other.leaf, fx->other.ca,
	    fx->other.root, NULL);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	testpki_stack_free(fx->other_validated);
	testpki_stack_free(fx->validated);
	testpki_stack_free(fx->served);
	testpki_chain_free(&fx->other);
	testpki_chain_free(&fx->pki);
	free(fx);
	return 0;
}

static void
pinset_make(struct test_pinset *t)
{
	char	 err[128];

	memset(t, 0, sizeof(*t));
	t->hosts[0] = xstrdup(HOST);
	t->hosts[1] = xstrdup("*.cdn.example.test");
	assert_true(pin_parse(PIN_A, &t->pins[0], err, sizeof(err)));
	assert_true(pin_parse(PIN_B, &t->pins[1], err, sizeof(err)));
	t->ps.name = xstrdup("example-api");
	t->ps.hosts = t->hosts;
	t->ps.nhosts = 2;
	t->ps.pins = t->pins;
	t->ps.npins = 2;
	t->ps.enforce = true;
	t->ps.has_expires = true;
	assert_true(cv_date("2027-06-30", &t->ps.expires, err, sizeof(err)));
	xstrlcpy(t->ps.expires_text, "2027-06-30",
	    sizeof(t->ps.expires_text));
	t->ps.port = 443;
}

static void
pinset_clear(struct test_pinset *t)
{
	free(t->hosts[0]);
	free(t->hosts[1]);
	free(t->ps.name);
}

/* An enforced failure for HOST:443 at T0 with the fixture's chains. */
static void
event_make(struct report_event *ev, const struct pinset *ps,
    const struct fixture *fx)
{
	memset(ev, 0, sizeof(*ev));
	ev->time = T0;
	ev->hostname = HOST;
	ev->port = 443;
	ev->ps = ps;
	ev->enforced = true;
	ev->client = "127.0.0.1:5555";
	ev->served_chain = fx->served;
	ev->validated_chain = fx->validated;
}

/* The whole content of a file; free it. */
static char *
slurp(const char *path)
{
	FILE	*fp;
	char	*buf;
	long	 len;

	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	len = ftell(fp);
	assert_true(len >= 0);
	rewind(fp);
	buf = xmalloc(len + 1);
	assert_int_equal(fread(buf, 1, len, fp), (size_t)len);
	buf[len] = '\0';
	fclose(fp);
	return buf;
}

/* Write ev as the only report of a new file at path; the file's content. */
static char *
report_once(const char *path, const struct report_event *ev)
{
	struct report	*r;
	char		 err[256];

	r = report_open(path, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(report_pin_failure(r, ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	report_close(r);
	return slurp(path);
}

static size_t
count_lines(const char *path)
{
	char	*text, *p;
	size_t	 n = 0;

	text = slurp(path);
	for (p = text; *p != '\0'; p++)
		if (*p == '\n')
			n++;
	free(text);
	return n;
}

/* A report file in a scratch directory, with the event of event_make(). */
struct report_case {
	char			*dir;
	char			*path;
	struct test_pinset	 t;
	struct report_event	 ev;
	struct report		*r;
};

static void
report_case_open(struct report_case *c, struct fixture *fx)
{
	char	 err[256];

	c->dir = testpki_tmpdir();
	c->path = xasprintf("%s/report.jsonl", c->dir);
	pinset_make(&c->t);
	event_make(&c->ev, &c->t.ps, fx);
	c->r = report_open(c->path, err, sizeof(err));
	assert_non_null(c->r);
}

static void
report_case_close(struct report_case *c)
{
	report_close(c->r);
	pinset_clear(&c->t);
	testpki_rmdir(c->dir);
	free(c->path);
	free(c->dir);
}

/* A certificate as a JSON string, written independently of report.c. */
static char *
pem_json(X509 *cert)
{
	BIO	*bio;
	char	*pem, *out, *q;
	long	 len, i;

	bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_X509(bio, cert), 1);
	len = BIO_get_mem_data(bio, &pem);
	out = xmalloc(2 * len + 3);
	q = out;
	*q++ = '"';
	for (i = 0; i < len; i++) {
		if (pem[i] == '\n') {
			*q++ = '\\';
			*q++ = 'n';
		} else
			*q++ = pem[i];
	}
	*q++ = '"';
	*q = '\0';
	BIO_free(bio);
	return out;
}

/*
 * The Python interpreter itself, asked once of the python3 in PATH (which
 * may be a wrapper that looks for it anew at every call, a second or more
 * on a loaded machine), or NULL when there is none.
 */
static const char *
python_path(void)
{
	static char	 path[4096];
	static int	 asked;
	FILE		*fp;

	if (asked)
		return path[0] != '\0' ? path : NULL;
	asked = 1;
	fp = popen("python3 -c 'import sys; print(sys.executable)' "
	    "2>/dev/null", "r");
	if (fp == NULL)
		return NULL;
	if (fgets(path, sizeof(path), fp) == NULL ||
	    strchr(path, '\'') != NULL)
		path[0] = '\0';
	path[strcspn(path, "\n")] = '\0';
	if (pclose(fp) != 0)
		path[0] = '\0';
	return path[0] != '\0' ? path : NULL;
}

/*
 * Run the Python checker over a report file; returns its output, or NULL
 * (and skips the test) when Python is not installed. It needs only the
 * standard library: -S spares it the imports of site-packages.
 */
static char *
python_check(const char *dir, const char *report)
{
	FILE		*fp;
	const char	*python;
	char		*script, *cmd, *out;
	char		 buf[4096];
	size_t		 len = 0, n;
	int		 status;

	if ((python = python_path()) == NULL)
		return NULL;
	script = xasprintf("%s/check.py", dir);
	fp = fopen(script, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(checker, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	cmd = xasprintf("'%s' -S '%s' '%s' 2>&1", python, script, report);
	fp = popen(cmd, "r");
	assert_non_null(fp);
	out = xmalloc(1);
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0) {
		out = xreallocarray(out, len + n + 1, 1);
		memcpy(out + len, buf, n);
		len += n;
	}
	out[len] = '\0';
	status = pclose(fp);
	if (status != 0)
		fail_msg("the report is not valid: %s", out);
	unlink(script);
	free(script);
	free(cmd);
	return out;
}

static void
test_report_writes_every_rfc7469_field_exactly(void **state)
{
	struct fixture		*fx = *state;
	struct test_pinset	 t;
	struct report_event	 ev;
	struct report		*r;
	char			*dir, *path, *text, *expected;
	char			*leaf, *ca, *root;
	char			 err[256];

	dir = testpki_tmpdir();
	path = xasprintf("%s/report.jsonl", dir);
	pinset_make(&t);
	event_make(&ev, &t.ps, fx);
	r = report_open(path, err, sizeof(err));
	assert_non_null(r);
	assert_string_equal(report_path(r), path);
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	report_close(r);

	leaf = pem_json(fx->pki.leaf);
	ca = pem_json(fx->pki.ca);
	root = pem_json(fx->pki.root);
	expected = xasprintf("{\"date-time\":\"2024-05-01T12:00:00Z\","
	    "\"hostname\":\"api.example.test\",\"port\":443,"
	    "\"effective-expiration-date\":\"2027-07-01T00:00:00Z\","
	    "\"include-subdomains\":false,"
	    "\"noted-hostname\":\"api.example.test\","
	    "\"served-certificate-chain\":[%s,%s],"
	    "\"validated-certificate-chain\":[%s,%s,%s],"
	    "\"known-pins\":["
	    "\"pin-sha256=\\\""
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\\\"\","
	    "\"pin-sha256=\\\""
	    "YLh1dUR9y6Kja30RrAn7JKnbQG/uEtLMkBgFF2Fuihg=\\\"\"],"
	    "\"enforced\":true,\"pinset\":\"example-api\","
	    "\"client\":\"127.0.0.1:5555\"}\n", leaf, ca, leaf, ca, root);
	text = slurp(path);
	assert_string_equal(text, expected);
	free(text);

	text = python_check(dir, path);
	if (text != NULL)
		assert_string_equal(text, "2 3 2 443 True 'api.example.test' "
		    "'example-api' '127.0.0.1:5555'\n");
	free(text);
	free(expected);
	free(leaf);
	free(ca);
	free(root);
	pinset_clear(&t);
	testpki_rmdir(dir);
	free(path);
	free(dir);
}

static void
test_report_only_without_expiry_writes_false_and_null(void **state)
{
	struct fixture		*fx = *state;
	struct test_pinset	 t;
	struct report_event	 ev;
	char			*dir, *path, *text;

	dir = testpki_tmpdir();
	path = xasprintf("%s/report.jsonl", dir);
	pinset_make(&t);
	t.ps.has_expires = false;
	t.ps.enforce = false;
	t.ps.include_subdomains = true;
	event_make(&ev, &t.ps, fx);
	ev.enforced = false;
	ev.served_chain = NULL;
	ev.hostname = "x.api.example.test";
	text = report_once(path, &ev);
	assert_non_null(strstr(text,
	    "\"effective-expiration-date\":null,"
	    "\"include-subdomains\":true,"
	    "\"noted-hostname\":\"api.example.test\","
	    "\"served-certificate-chain\":[],"));
	assert_non_null(strstr(text, "\"enforced\":false,"));
	assert_non_null(strstr(text, "\"hostname\":\"x.api.example.test\","));
	free(text);
	text = python_check(dir, path);
	if (text != NULL)
		assert_string_equal(text, "0 3 2 443 False "
		    "'x.api.example.test' 'example-api' '127.0.0.1:5555'\n");
	free(text);
	pinset_clear(&t);
	testpki_rmdir(dir);
	free(path);
	free(dir);
}

/* The end of the last day RFC 3339 can write is written as its last second. */
static void
test_report_expiry_of_the_last_day_stays_in_rfc3339(void **state)
{
	struct fixture		*fx = *state;
	struct test_pinset	 t;
	struct report_event	 ev;
	char			*dir, *path, *text;
	char			 err[256];

	dir = testpki_tmpdir();
	path = xasprintf("%s/report.jsonl", dir);
	pinset_make(&t);
	assert_true(cv_date("9999-12-31", &t.ps.expires, err, sizeof(err)));
	event_make(&ev, &t.ps, fx);
	text = report_once(path, &ev);
	assert_non_null(strstr(text,
	    "\"effective-expiration-date\":\"9999-12-31T23:59:59Z\","));
	free(text);
	pinset_clear(&t);
	testpki_rmdir(dir);
	free(path);
	free(dir);
}

static void
test_report_adds_matched_depth_and_candidates_when_found(void **state)
{
	struct fixture		*fx = *state;
	struct test_pinset	 t;
	struct report_event	 ev;
	struct pincheck_result	 res;
	struct report		*r;
	struct pin		 cands[2];
	char			*dir, *path, *text, *second;
	char			 err[256];

	dir = testpki_tmpdir();
	path = xasprintf("%s/report.jsonl", dir);
	pinset_make(&t);
	assert_true(pin_parse(PIN_A, &cands[0], err, sizeof(err)));
	assert_true(pin_parse(PIN_B, &cands[1], err, sizeof(err)));
	t.ps.candidates = cands;
	t.ps.ncandidates = 2;
	memset(&res, 0, sizeof(res));
	res.matched_depth = -1;
	event_make(&ev, &t.ps, fx);
	ev.pins = &res;
	r = report_open(path, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	res.matched_depth = 0;
	res.ncandidates = 1;
	res.candidates[0].index = 1;
	res.candidates[0].depth = 2;
	ev.port = 8443;
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	/* The same failure again: the dedupe rules are unchanged. */
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_DUPLICATE);
	report_close(r);
	text = slurp(path);
	second = strchr(text, '\n');
	assert_non_null(second);
	*second++ = '\0';
	assert_null(strstr(text, "matched-depth"));
	assert_null(strstr(text, "candidate-pins"));
	assert_non_null(strstr(second, "\"matched-depth\":0,"
	    "\"candidate-pins\":[\"pin-sha256=\\\"" PIN_B_B64 "\\\"\"],"
	    "\"enforced\":true,"));
	free(text);
	pinset_clear(&t);
	testpki_rmdir(dir);
	free(path);
	free(dir);
}

static void
test_report_escapes_a_hostile_host_name(void **state)
{
	struct fixture		*fx = *state;
	struct test_pinset	 t;
	struct report_event	 ev;
	struct report		*r;
	char			*dir, *path, *text;
	char			 err[256];

	dir = testpki_tmpdir();
	path = xasprintf("%s/report.jsonl", dir);
	pinset_make(&t);
	event_make(&ev, &t.ps, fx);
	ev.hostname = "evil\"\\\n\x01\x1f\x7f\xc3\xa9}.test";
	ev.client = "[::1]:1\"";
	ev.server_address = "[2001:db8::1]:443";
	r = report_open(path, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	report_close(r);
	text = slurp(path);
	assert_non_null(strstr(text, "\"hostname\":\"evil\\\"\\\\\\n"
	    "\\u0001\\u001f\\u007f\\u00c3\\u00a9}.test\","));
	/* No pattern of the set covers it: the host itself, escaped. */
	assert_non_null(strstr(text, "\"noted-hostname\":\"evil\\\"\\\\\\n"
	    "\\u0001\\u001f\\u007f\\u00c3\\u00a9}.test\","));
	assert_non_null(strstr(text, "\"client\":\"[::1]:1\\\"\","
	    "\"server-address\":\"[2001:db8::1]:443\"}\n"));
	assert_int_equal(count_lines(path), 1);
	free(text);
	text = python_check(dir, path);
	if (text != NULL)
		assert_string_equal(text, "2 3 2 443 True "
		    "'evil\"\\\\\\n\\x01\\x1f\\x7f\\xc3\\xa9}.test' "
		    "'example-api' '[::1]:1\"'\n");
	free(text);
	pinset_clear(&t);
	testpki_rmdir(dir);
	free(path);
	free(dir);
}

/*
 * report_max bounds the lines of a UTC day: hosts under a wildcard are a
 * client's to choose, each a new report. The day after, there is room.
 */
static void
test_report_writes_at_most_max_lines_a_day(void **state)
{
	struct report_case	 c;
	char			 err[256];

	report_case_open(&c, *state);
	c.ev.hostname = "a.wild.test";
	assert_int_equal(report_pin_failure(c.r, &c.ev, 2, err, sizeof(err)),
	    REPORT_WRITTEN);
	c.ev.hostname = "b.wild.test";
	assert_int_equal(report_pin_failure(c.r, &c.ev, 2, err, sizeof(err)),
	    REPORT_WRITTEN);
	c.ev.hostname = "c.wild.test";
	assert_int_equal(report_pin_failure(c.r, &c.ev, 2, err, sizeof(err)),
	    REPORT_FULL);
	c.ev.hostname = "d.wild.test";
	assert_int_equal(report_pin_failure(c.r, &c.ev, 2, err, sizeof(err)),
	    REPORT_FULL);
	assert_int_equal(count_lines(c.path), 2);
	/* A reload that raised the limit gives room at once. */
	assert_int_equal(report_pin_failure(c.r, &c.ev, 3, err, sizeof(err)),
	    REPORT_WRITTEN);
	c.ev.hostname = "e.wild.test";
	assert_int_equal(report_pin_failure(c.r, &c.ev, 3, err, sizeof(err)),
	    REPORT_FULL);
	/* T0 is noon UTC: half a day later is the next day. */
	c.ev.time = T0 + 12 * 3600;
	assert_int_equal(report_pin_failure(c.r, &c.ev, 3, err, sizeof(err)),
	    REPORT_WRITTEN);
	assert_int_equal(count_lines(c.path), 4);
	report_case_close(&c);
}

static void
test_report_suppresses_the_same_failure_within_the_hour(void **state)
{
	struct report_case	 c;
	char			 err[256];

	report_case_open(&c, *state);
	assert_int_equal(report_pin_failure(c.r, &c.ev, 10000, err,
	    sizeof(err)), REPORT_WRITTEN);
	assert_int_equal(report_suppressed(c.r), 0);

	c.ev.time = T0 + 10;
	c.ev.client = "127.0.0.2:6000";	/* another client: still the same */
	c.ev.served_chain = NULL;
	assert_int_equal(report_pin_failure(c.r, &c.ev, 10000, err,
	    sizeof(err)), REPORT_DUPLICATE);
	assert_int_equal(report_suppressed(c.r), 1);
	c.ev.time = T0 + REPORT_DEDUP_SECONDS - 1;
	assert_int_equal(report_pin_failure(c.r, &c.ev, 10000, err,
	    sizeof(err)), REPORT_DUPLICATE);
	assert_int_equal(report_suppressed(c.r), 2);
	assert_int_equal(count_lines(c.path), 1);

	c.ev.time = T0 + REPORT_DEDUP_SECONDS;
	assert_int_equal(report_pin_failure(c.r, &c.ev, 10000, err,
	    sizeof(err)), REPORT_WRITTEN);
	assert_int_equal(report_suppressed(c.r), 0);
	assert_int_equal(count_lines(c.path), 2);
	c.ev.time = T0 + REPORT_DEDUP_SECONDS + 1;
	assert_int_equal(report_pin_failure(c.r, &c.ev, 10000, err,
	    sizeof(err)), REPORT_DUPLICATE);
	report_case_close(&c);
}

static void
test_report_writes_each_distinct_failure(void **state)
{
	struct fixture		*fx = *state;
	struct test_pinset	 t, t2;
	struct report_event	 ev;
	struct report		*r;
	char			*dir, *path;
	char			 err[256];

	dir = testpki_tmpdir();
	path = xasprintf("%s/report.jsonl", dir);
	pinset_make(&t);
	pinset_make(&t2);
	free(t2.ps.name);
	t2.ps.name = xstrdup("example-other");
	r = report_open(path, err, sizeof(err));
	assert_non_null(r);
	event_make(&ev, &t.ps, fx);
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	ev.port = 8443;
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	event_make(&ev, &t.ps, fx);
	ev.hostname = "a.cdn.example.test";
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	event_make(&ev, &t2.ps, fx);
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	event_make(&ev, &t.ps, fx);
	ev.validated_chain = fx->other_validated;
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	assert_int_equal(count_lines(path), 5);
	report_close(r);
	pinset_clear(&t2);
	pinset_clear(&t);
	testpki_rmdir(dir);
	free(path);
	free(dir);
}

static void
test_report_forgets_the_oldest_failure_when_full(void **state)
{
	struct fixture		*fx = *state;
	struct test_pinset	 t;
	struct report_event	 ev;
	struct report		*r;
	char			*dir, *path;
	char			 err[256];
	unsigned int		 i;

	dir = testpki_tmpdir();
	path = xasprintf("%s/report.jsonl", dir);
	pinset_make(&t);
	event_make(&ev, &t.ps, fx);
	ev.served_chain = NULL;
	ev.validated_chain = NULL;
	r = report_open(path, err, sizeof(err));
	assert_non_null(r);
	for (i = 0; i <= REPORT_DEDUP_ENTRIES; i++) {
		ev.port = 1 + i;
		ev.time = T0 + i;
		assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
		    REPORT_WRITTEN);
	}
	ev.time = T0 + REPORT_DEDUP_ENTRIES + 1;
	ev.port = 1 + REPORT_DEDUP_ENTRIES;
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_DUPLICATE);
	ev.port = 2;
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_DUPLICATE);
	ev.port = 1;
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	assert_int_equal(count_lines(path), REPORT_DEDUP_ENTRIES + 2);
	report_close(r);
	pinset_clear(&t);
	testpki_rmdir(dir);
	free(path);
	free(dir);
}

static void
test_report_writes_at_most_ten_certificates_per_chain(void **state)
{
	struct fixture		*fx = *state;
	struct test_pinset	 t;
	struct report_event	 ev;
	struct report		*r;
	STACK_OF(X509)		*long_chain;
	char			*dir, *path, *text;
	char			 err[256];
	int			 i;

	dir = testpki_tmpdir();
	path = xasprintf("%s/report.jsonl", dir);
	pinset_make(&t);
	event_make(&ev, &t.ps, fx);
	long_chain = testpki_stack(fx->pki.leaf, NULL);
	for (i = 1; i < REPORT_MAX_CHAIN + 3; i++) {
		X509_up_ref(fx->pki.ca);
		sk_X509_push(long_chain, fx->pki.ca);
	}
	ev.served_chain = long_chain;
	r = report_open(path, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	report_close(r);
	text = python_check(dir, path);
	if (text != NULL)
		assert_string_equal(text, "10 3 2 443 True 'api.example.test' "
		    "'example-api' '127.0.0.1:5555'\n");
	free(text);
	testpki_stack_free(long_chain);
	pinset_clear(&t);
	testpki_rmdir(dir);
	free(path);
	free(dir);
}

static void
test_report_reopens_the_path_after_rotation(void **state)
{
	struct fixture		*fx = *state;
	struct test_pinset	 t;
	struct report_event	 ev;
	struct report		*r;
	char			*dir, *path, *rotated;
	char			 err[256];

	dir = testpki_tmpdir();
	path = xasprintf("%s/report.jsonl", dir);
	rotated = xasprintf("%s/report.jsonl.1", dir);
	pinset_make(&t);
	event_make(&ev, &t.ps, fx);
	r = report_open(path, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	assert_int_equal(rename(path, rotated), 0);
	ev.port = 8443;
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	assert_int_equal(access(path, F_OK), -1);
	assert_true(report_reopen(r, err, sizeof(err)));
	ev.port = 9443;
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	report_close(r);
	assert_int_equal(count_lines(rotated), 2);
	assert_int_equal(count_lines(path), 1);
	pinset_clear(&t);
	testpki_rmdir(dir);
	free(rotated);
	free(path);
	free(dir);
}

static void
test_report_keeps_the_old_file_when_reopen_fails(void **state)
{
	struct fixture		*fx = *state;
	struct test_pinset	 t;
	struct report_event	 ev;
	struct report		*r;
	char			*dir, *sub, *moved, *path, *moved_path;
	char			 err[256];

	dir = testpki_tmpdir();
	sub = xasprintf("%s/logs", dir);
	moved = xasprintf("%s/logs.old", dir);
	path = xasprintf("%s/report.jsonl", sub);
	moved_path = xasprintf("%s/report.jsonl", moved);
	assert_int_equal(mkdir(sub, 0700), 0);
	pinset_make(&t);
	event_make(&ev, &t.ps, fx);
	r = report_open(path, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(rename(sub, moved), 0);
	err[0] = '\0';
	assert_false(report_reopen(r, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	report_close(r);
	assert_int_equal(count_lines(moved_path), 1);
	pinset_clear(&t);
	testpki_rmdir(moved);
	testpki_rmdir(dir);
	free(moved_path);
	free(path);
	free(moved);
	free(sub);
	free(dir);
}

static void
test_report_file_is_created_with_mode_0640(void **state)
{
	struct report	*r;
	struct stat	 st;
	char		*dir, *path;
	char		 err[256];
	mode_t		 old;

	(void)state;
	dir = testpki_tmpdir();
	path = xasprintf("%s/report.jsonl", dir);
	old = umask(022);
	r = report_open(path, err, sizeof(err));
	umask(old);
	assert_non_null(r);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	report_close(r);
	testpki_rmdir(dir);
	free(path);
	free(dir);
}

static void
test_report_open_names_a_path_that_cannot_be_created(void **state)
{
	char	 err[256];

	(void)state;
	assert_null(report_open("/nonexistent-dir/report.jsonl", err,
	    sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent-dir/report.jsonl"));
	assert_non_null(strstr(err, "No such file"));
}

static void
test_report_returns_a_failed_write_and_retries_later(void **state)
{
	struct fixture		*fx = *state;
	struct test_pinset	 t;
	struct report_event	 ev;
	struct report		*r;
	struct rlimit		 old, none;
	char			*dir, *path;
	char			 err[256];

	dir = testpki_tmpdir();
	path = xasprintf("%s/report.jsonl", dir);
	pinset_make(&t);
	event_make(&ev, &t.ps, fx);
	r = report_open(path, err, sizeof(err));
	assert_non_null(r);
	/* A file size limit of 0 makes every write fail, as a full disk. */
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	none = old;
	none.rlim_cur = 0;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &none), 0);
	err[0] = '\0';
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_FAILED);
	assert_non_null(strstr(err, "File too large"));
	ev.time = T0 + 1;
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_FAILED);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	ev.time = T0 + 2;
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	report_close(r);
	assert_int_equal(count_lines(path), 1);
	pinset_clear(&t);
	testpki_rmdir(dir);
	free(path);
	free(dir);
}

/* Append text to the file at path (created when missing). */
static void
append_file(const char *path, const char *text)
{
	FILE	*fp;

	fp = fopen(path, "a");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	fclose(fp);
}

/* Whether the last line of the file at path is a whole report. */
static bool
last_line_whole(const char *path)
{
	char	*text, *end, *start;
	bool	 whole;

	text = slurp(path);
	end = text + strlen(text);
	assert_true(end > text && end[-1] == '\n');
	end[-1] = '\0';
	start = strrchr(text, '\n');
	start = start != NULL ? start + 1 : text;
	whole = start[0] == '{' && end[-2] == '}' &&
	    strstr(start, "\"noted-hostname\"") != NULL;
	free(text);
	return whole;
}

/*
 * A line a full disk cut short in an earlier run, or before a reopen of
 * the same file (a SIGHUP without rotation), is ended before the next
 * report, which stays a line of its own.
 */
static void
test_report_ends_a_line_cut_before_open_or_reopen(void **state)
{
	struct report_case	 c;
	char			 err[256];

	report_case_open(&c, *state);
	append_file(c.path, "{\"date-time\":\"2026-");
	assert_true(report_reopen(c.r, err, sizeof(err)));
	assert_int_equal(report_pin_failure(c.r, &c.ev, 10000, err,
	    sizeof(err)), REPORT_WRITTEN);
	assert_int_equal(count_lines(c.path), 2);
	assert_true(last_line_whole(c.path));
	/* The next run finds the file cut. */
	report_close(c.r);
	append_file(c.path, "{\"date-time\":");
	c.r = report_open(c.path, err, sizeof(err));
	assert_non_null(c.r);
	c.ev.port = 8443;
	assert_int_equal(report_pin_failure(c.r, &c.ev, 10000, err,
	    sizeof(err)), REPORT_WRITTEN);
	assert_int_equal(count_lines(c.path), 4);
	assert_true(last_line_whole(c.path));
	/* A whole last line gets no empty line after it. */
	assert_true(report_reopen(c.r, err, sizeof(err)));
	c.ev.port = 9443;
	assert_int_equal(report_pin_failure(c.r, &c.ev, 10000, err,
	    sizeof(err)), REPORT_WRITTEN);
	assert_int_equal(count_lines(c.path), 5);
	report_case_close(&c);
}

/* The lines logged, last one kept. */
static int	 logged;
static char	 last_logged[1024];

static void
capture_log(enum log_level level, const char *line, void *arg)
{
	(void)level;
	(void)arg;
	snprintf(last_logged, sizeof(last_logged), "%s", line);
	logged++;
}

/*
 * A failing file (a full disk fails every write) is logged at most once
 * a minute; the next line, or the close of the file, counts the failures
 * left out.
 */
static void
test_report_logs_a_failing_file_once_a_minute(void **state)
{
	struct jsonl_file	*f;
	char			*dir, *path;
	char			 err[256];

	(void)state;
	dir = testpki_tmpdir();
	path = xasprintf("%s/report.jsonl", dir);
	f = jsonl_open("report_file", path, err, sizeof(err));
	assert_non_null(f);
	logged = 0;
	log_set_level(LL_INFO);
	log_set_capture(capture_log, NULL);
	jsonl_log_error(f, "short write", T0);
	assert_int_equal(logged, 1);
	assert_non_null(strstr(last_logged, "event=report_error"));
	assert_null(strstr(last_logged, "count="));
	jsonl_log_error(f, "short write", T0 + 1);
	jsonl_log_error(f, "short write", T0 + 59);
	assert_int_equal(logged, 1);
	jsonl_log_error(f, "No space left on device", T0 + 60);
	assert_int_equal(logged, 2);
	assert_non_null(strstr(last_logged, "count=2"));
	assert_non_null(strstr(last_logged, "No space left on device"));
	jsonl_log_error(f, "short write", T0 + 61);
	assert_int_equal(logged, 2);
	/* Closing the file (a reload, the exit) says what was left out. */
	jsonl_close(f);
	assert_int_equal(logged, 3);
	assert_non_null(strstr(last_logged, "count=1"));
	log_set_capture(NULL, NULL);
	testpki_rmdir(dir);
	free(path);
	free(dir);
}

/* Create an empty file at path. */
static void
touch_file(const char *path)
{
	FILE	*fp;

	fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
}

/* Expect report_open() of path to fail with a message containing want. */
static void
assert_open_refused(const char *path, const char *want)
{
	char	 err[256] = "";

	assert_null(report_open(path, err, sizeof(err)));
	if (strstr(err, want) == NULL || strstr(err, path) == NULL)
		fail_msg("error \"%s\" lacks \"%s\" or the path", err, want);
}

static void
test_report_refuses_a_symbolic_link(void **state)
{
	char	*dir, *target, *link, *dangling;

	(void)state;
	dir = testpki_tmpdir();
	target = xasprintf("%s/target", dir);
	link = xasprintf("%s/report.jsonl", dir);
	dangling = xasprintf("%s/dangling.jsonl", dir);
	touch_file(target);
	assert_int_equal(symlink(target, link), 0);
	assert_open_refused(link, "is a symbolic link");
	assert_int_equal(symlink("nowhere", dangling), 0);
	assert_open_refused(dangling, "is a symbolic link");
	assert_int_equal(access(dangling, F_OK), -1);
	assert_int_equal(count_lines(target), 0);
	testpki_rmdir(dir);
	free(dangling);
	free(link);
	free(target);
	free(dir);
}

static void
test_report_refuses_a_fifo_and_a_directory(void **state)
{
	char	*dir, *fifo, *sub;
	int	 reader;

	(void)state;
	dir = testpki_tmpdir();
	fifo = xasprintf("%s/fifo", dir);
	sub = xasprintf("%s/sub", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(mkdir(sub, 0700), 0);
	/* With a reader, opening the FIFO for writing would succeed. */
	reader = open(fifo, O_RDONLY | O_NONBLOCK);
	assert_true(reader != -1);
	assert_open_refused(fifo, "is a FIFO");
	close(reader);
	assert_open_refused(fifo, "is a FIFO");
	assert_open_refused(sub, "is a directory");
	assert_open_refused("/dev/null", "is a device");
	assert_int_equal(rmdir(sub), 0);
	testpki_rmdir(dir);
	free(sub);
	free(fifo);
	free(dir);
}

static void
test_report_reopen_refuses_a_symbolic_link_put_in_place(void **state)
{
	struct fixture		*fx = *state;
	struct test_pinset	 t;
	struct report_event	 ev;
	struct report		*r;
	char			*dir, *path, *rotated, *target;
	char			 err[256];

	dir = testpki_tmpdir();
	path = xasprintf("%s/report.jsonl", dir);
	rotated = xasprintf("%s/report.jsonl.1", dir);
	target = xasprintf("%s/target", dir);
	pinset_make(&t);
	event_make(&ev, &t.ps, fx);
	touch_file(target);
	r = report_open(path, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(rename(path, rotated), 0);
	assert_int_equal(symlink(target, path), 0);
	err[0] = '\0';
	assert_false(report_reopen(r, err, sizeof(err)));
	assert_non_null(strstr(err, "is a symbolic link"));
	assert_int_equal(report_pin_failure(r, &ev, 10000, err, sizeof(err)),
	    REPORT_WRITTEN);
	report_close(r);
	assert_int_equal(count_lines(rotated), 1);
	assert_int_equal(count_lines(target), 0);
	pinset_clear(&t);
	testpki_rmdir(dir);
	free(target);
	free(rotated);
	free(path);
	free(dir);
}

static void
test_report_notes_the_most_specific_pattern(void **state)
{
	struct test_pinset	 t;

	(void)state;
	pinset_make(&t);
	free(t.hosts[0]);
	t.hosts[0] = xstrdup("example.test");
	t.ps.include_subdomains = true;
	assert_string_equal(report_noted_hostname(&t.ps, "example.test"),
	    "example.test");
	assert_string_equal(report_noted_hostname(&t.ps, "a.example.test"),
	    "example.test");
	assert_string_equal(report_noted_hostname(&t.ps,
	    "a.cdn.example.test"), "*.cdn.example.test");
	assert_null(report_noted_hostname(&t.ps, "example.org"));
	t.ps.include_subdomains = false;
	assert_null(report_noted_hostname(&t.ps, "a.example.test"));
	pinset_clear(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_report_writes_every_rfc7469_field_exactly),
		cmocka_unit_test(
		    test_report_only_without_expiry_writes_false_and_null),
		cmocka_unit_test(
		    test_report_expiry_of_the_last_day_stays_in_rfc3339),
		cmocka_unit_test(test_report_escapes_a_hostile_host_name),
		cmocka_unit_test(
		    test_report_adds_matched_depth_and_candidates_when_found),
		cmocka_unit_test(
		    test_report_suppresses_the_same_failure_within_the_hour),
		cmocka_unit_test(test_report_writes_each_distinct_failure),
		cmocka_unit_test(
		    test_report_forgets_the_oldest_failure_when_full),
		cmocka_unit_test(
		    test_report_writes_at_most_ten_certificates_per_chain),
		cmocka_unit_test(test_report_reopens_the_path_after_rotation),
		cmocka_unit_test(
		    test_report_ends_a_line_cut_before_open_or_reopen),
		cmocka_unit_test(test_report_logs_a_failing_file_once_a_minute),
		cmocka_unit_test(
		    test_report_keeps_the_old_file_when_reopen_fails),
		cmocka_unit_test(test_report_file_is_created_with_mode_0640),
		cmocka_unit_test(
		    test_report_open_names_a_path_that_cannot_be_created),
		cmocka_unit_test(
		    test_report_returns_a_failed_write_and_retries_later),
		cmocka_unit_test(test_report_refuses_a_symbolic_link),
		cmocka_unit_test(
		    test_report_refuses_a_fifo_and_a_directory),
		cmocka_unit_test(
		    test_report_reopen_refuses_a_symbolic_link_put_in_place),
		cmocka_unit_test(test_report_notes_the_most_specific_pattern),
		cmocka_unit_test(test_report_writes_at_most_max_lines_a_day),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

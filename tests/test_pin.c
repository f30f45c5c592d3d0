/*
 * Tests of pin parsing and formatting, the SPKI hash of real certificates
 * made at test time (checked against an independent computation and the
 * openssl command line), constant-time equality, and reading certificate
 * files.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certfile.h"
#include "pin.h"
#include "testpki.h"
#include "xmalloc.h"

/* SHA-256("abc") in base64, and the same digest cut or extended. */
#define ABC_B64		"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
#define ABC_31_B64	"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFQ=="
#define ABC_33_B64	"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa14"

static const unsigned char abc_digest[PIN_DIGEST_LEN] = {
	0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
	0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
	0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
	0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad
};

/* Keys and certificates shared by the tests of one run. */
struct fixture {
	EVP_PKEY	*ec_key;
	EVP_PKEY	*rsa_key;
	X509		*ec_root;
	X509		*rsa_leaf;
	char		*dir;
};

static int
setup(void **state)
{
	struct fixture	*f;

	f = xcalloc(1, sizeof(*f));
	f->ec_key = testpki_key(TESTPKI_EC);
	f->rsa_key = testpki_key(TESTPKI_RSA);
	f->ec_root = testpki_root("Pin Test Root", f->ec_key);
	f->rsa_leaf = testpki_leaf("rsa.example.test", f->rsa_key, f->ec_root,
	    f->ec_key);
	f->dir = testpki_tmpdir();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	testpki_rmdir(f->dir);
	free(f->dir);
	X509_free(f->rsa_leaf);
	X509_free(f->ec_root);
	EVP_PKEY_free(f->rsa_key);
	EVP_PKEY_free(f->ec_key);
	free(f);
	return 0;
}

/* Assert that text is refused with an error containing want. */
static void
assert_rejected(const char *text, const char *want)
{
	struct pin	 p;
	char		 err[256];

	err[0] = '\0';
	if (pin_parse(text, &p, err, sizeof(err)))
		fail_msg("accepted: %s", text);
	if (strstr(err, want) == NULL)
		fail_msg("%s: error \"%s\" does not say \"%s\"", text, err,
		    want);
}

/* The pin of key, computed from the key's own SPKI encoding. */
static void
pin_of_key(EVP_PKEY *key, unsigned char out[PIN_DIGEST_LEN])
{
	unsigned char	*der;
	unsigned int	 mdlen;
	int		 len;

	der = NULL;
	len = i2d_PUBKEY(key, &der);
	assert_true(len > 0);
	assert_int_equal(EVP_Digest(der, (size_t)len, out, &mdlen,
	    EVP_sha256(), NULL), 1);
	assert_int_equal(mdlen, PIN_DIGEST_LEN);
	OPENSSL_free(der);
}

/* The pin of a PEM file as the SPEC's openssl pipeline prints it. */
static bool
pin_by_openssl_cli(const char *pem, char *out, size_t len)
{
	FILE	*p;
	char	*cmd;
	bool	 ok;

	cmd = xasprintf("openssl x509 -in '%s' -pubkey -noout | "
	    "openssl pkey -pubin -outform der | "
	    "openssl dgst -sha256 -binary | openssl enc -base64", pem);
	p = popen(cmd, "r");
	free(cmd);
	if (p == NULL)
		return false;
	ok = fgets(out, (int)len, p) != NULL;
	if (pclose(p) != 0)
		ok = false;
	out[strcspn(out, "\n")] = '\0';
	return ok;
}

static void
test_pin_parses_the_sha256_form(void **state)
{
	struct pin	 p;
	char		 err[256];

	assert_true(pin_parse("sha256/" ABC_B64, &p, err, sizeof(err)));
	assert_memory_equal(p.digest, abc_digest, PIN_DIGEST_LEN);
}

static void
test_pin_parses_the_rfc7469_form(void **state)
{
	struct pin	 p;
	char		 err[256];

	assert_true(pin_parse("pin-sha256=\"" ABC_B64 "\"", &p, err,
	    sizeof(err)));
	assert_memory_equal(p.digest, abc_digest, PIN_DIGEST_LEN);
}

static void
test_pin_format_gives_back_the_parsed_text(void **state)
{
	struct pin	 p;
	char		 err[256], text[PIN_TEXT_MAX];

	assert_true(pin_parse("sha256/" ABC_B64, &p, err, sizeof(err)));
	pin_format(&p, text, sizeof(text));
	assert_string_equal(text, "sha256/" ABC_B64);
	assert_int_equal(strlen(text), PIN_TEXT_MAX - 1);
}

static void
test_pin_format_of_rfc7469_form_is_the_sha256_form(void **state)
{
	struct pin	 p;
	char		 err[256], text[PIN_TEXT_MAX];

	assert_true(pin_parse("pin-sha256=\"" ABC_B64 "\"", &p, err,
	    sizeof(err)));
	pin_format(&p, text, sizeof(text));
	assert_string_equal(text, "sha256/" ABC_B64);
}

static void
test_pin_rejects_sha1_pins(void **state)
{
	assert_rejected("sha1/qZk+NkcGgWq6PiVxeFDCbJzQ2J0=",
	    "SHA-1 pins are not accepted; use sha256/");
	assert_rejected("pin-sha1=\"qZk+NkcGgWq6PiVxeFDCbJzQ2J0=\"",
	    "SHA-1 pins are not accepted; use sha256/");
}

static void
test_pin_rejects_other_algorithms(void **state)
{
	assert_rejected("sha384/" ABC_B64, "unsupported pin algorithm "
	    "'sha384'");
	assert_rejected("pin-sha512=\"" ABC_B64 "\"",
	    "unsupported pin algorithm 'sha512'");
	assert_rejected("md5/" ABC_B64, "unsupported pin algorithm 'md5'");
}

static void
test_pin_rejects_text_that_is_not_a_pin(void **state)
{
	assert_rejected("", "a pin must look like");
	assert_rejected(ABC_B64, "a pin must look like");
	assert_rejected(" sha256/" ABC_B64, "a pin must look like");
	assert_rejected("sha256/", "empty digest");
	assert_rejected("pin-sha256=\"\"", "empty digest");
}

static void
test_pin_rejects_bad_base64_characters(void **state)
{
	/* The URL-safe alphabet is not standard base64. */
	assert_rejected("sha256/ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=",
	    "bad base64 character '-'");
	assert_rejected("sha256/ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD!YfIAFa0=",
	    "bad base64 character '!'");
	assert_rejected("sha256/ungWv48Bz+pBQUDeXa4iI7A YaOWF3qctBD/YfIAFa0=",
	    "bad base64 character byte 0x20");
	assert_rejected("sha256/ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAF\na0=",
	    "bad base64 character byte 0x0a");
}

static void
test_pin_rejects_missing_padding(void **state)
{
	assert_rejected("sha256/ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0",
	    "padding");
	assert_rejected("pin-sha256=\"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/"
	    "YfIAFa0\"", "padding");
}

static void
test_pin_rejects_padding_in_the_middle(void **state)
{
	assert_rejected("sha256/ungWv48Bz+pBQUDeXa4iI7AD=aOWF3qctBD/YfIAFa0=",
	    "padding");
}

static void
test_pin_rejects_digest_of_31_bytes(void **state)
{
	assert_rejected("sha256/" ABC_31_B64, "digest is 31 bytes");
	assert_rejected("pin-sha256=\"" ABC_31_B64 "\"", "digest is 31 bytes");
}

static void
test_pin_rejects_digest_of_33_bytes(void **state)
{
	assert_rejected("sha256/" ABC_33_B64, "digest is 33 bytes");
	assert_rejected("pin-sha256=\"" ABC_33_B64 "\"", "digest is 33 bytes");
}

static void
test_pin_rejects_a_longer_digest(void **state)
{
	/* SHA-384 of "abc" and its first 46 bytes, as sha256 pins. */
	assert_rejected("sha256/ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2A"
	    "hgcroefMI1i67KE0yCWn", "digest is 48 bytes");
	assert_rejected("sha256/ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2A"
	    "hgcroefMI1i67KE0yA==", "digest is 46 bytes");
}

static void
test_pin_rejects_trailing_junk(void **state)
{
	assert_rejected("sha256/" ABC_B64 "x", "trailing characters");
	assert_rejected("sha256/" ABC_B64 " ", "trailing characters");
	assert_rejected("sha256/" ABC_B64 "=", "trailing characters");
	assert_rejected("sha256/" ABC_B64 "AAAA", "trailing characters");
	assert_rejected("pin-sha256=\"" ABC_B64 "\"x", "trailing characters");
	assert_rejected("pin-sha256=\"" ABC_B64 "\";", "trailing characters");
	assert_rejected("pin-sha256=\"" ABC_B64 "x\"", "trailing characters");
}

static void
test_pin_parse_scoped_reads_leaf_and_ca_in_both_forms(void **state)
{
	struct pin	 p, plain;
	char		 err[256];

	(void)state;
	assert_true(pin_parse("sha256/" ABC_B64, &plain, err, sizeof(err)));
	assert_int_equal(plain.scope, PIN_SCOPE_ANY);
	assert_true(pin_parse_scoped("leaf:sha256/" ABC_B64, &p, err,
	    sizeof(err)));
	assert_int_equal(p.scope, PIN_SCOPE_LEAF);
	assert_true(pin_equal(&p, &plain));
	assert_true(pin_parse_scoped("ca:pin-sha256=\"" ABC_B64 "\"", &p, err,
	    sizeof(err)));
	assert_int_equal(p.scope, PIN_SCOPE_CA);
	assert_true(pin_equal(&p, &plain));
	assert_true(pin_parse_scoped("sha256/" ABC_B64, &p, err,
	    sizeof(err)));
	assert_int_equal(p.scope, PIN_SCOPE_ANY);
	assert_false(pin_parse_scoped("root:sha256/" ABC_B64, &p, err,
	    sizeof(err)));
	assert_false(pin_parse_scoped("leaf:sha1/qZk+NkcGgWq6PiVxeFDCbJzQ2J0=",
	    &p, err, sizeof(err)));
	assert_non_null(strstr(err, "SHA-1"));
}

static void
test_pin_rejects_a_scope_where_none_is_allowed(void **state)
{
	assert_rejected("leaf:sha256/" ABC_B64, "scope");
	assert_rejected("ca:sha256/" ABC_B64, "scope");
}

static void
test_pin_scope_allows_only_its_depths(void **state)
{
	(void)state;
	assert_true(pin_scope_allows(PIN_SCOPE_LEAF, 0));
	assert_false(pin_scope_allows(PIN_SCOPE_LEAF, 1));
	assert_false(pin_scope_allows(PIN_SCOPE_CA, 0));
	assert_true(pin_scope_allows(PIN_SCOPE_CA, 1));
	assert_true(pin_scope_allows(PIN_SCOPE_CA, 9));
	assert_true(pin_scope_allows(PIN_SCOPE_ANY, 0));
	assert_true(pin_scope_allows(PIN_SCOPE_ANY, 3));
}

static void
test_pin_rejects_rfc7469_form_without_quotes(void **state)
{
	assert_rejected("pin-sha256=" ABC_B64, "double quotes");
	assert_rejected("pin-sha256='" ABC_B64 "'", "double quotes");
	assert_rejected("pin-sha256=\"" ABC_B64, "missing closing quote");
}

static void
test_pin_ignores_the_spare_bits_of_the_last_base64_group(void **state)
{
	struct pin	 a, b;
	char		 err[128];

	/* "1" differs from "0" only in the two bits past the digest. */
	assert_true(pin_parse(
	    "sha256/ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa1=", &a, err,
	    sizeof(err)));
	assert_true(pin_parse(
	    "sha256/ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=", &b, err,
	    sizeof(err)));
	assert_true(pin_equal(&a, &b));
	/* The sample backup pin of the configuration manual. */
	assert_true(pin_parse(
	    "sha256/BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=", &a, err,
	    sizeof(err)));
}

static void
test_pin_of_an_ec_cert_is_the_sha256_of_its_spki(void **state)
{
	struct fixture	*f = *state;
	unsigned char	 want[PIN_DIGEST_LEN];
	struct pin	 p;

	pin_of_key(f->ec_key, want);
	assert_true(pin_from_cert(f->ec_root, &p));
	assert_memory_equal(p.digest, want, PIN_DIGEST_LEN);
}

static void
test_pin_of_an_rsa_cert_is_the_sha256_of_its_spki(void **state)
{
	struct fixture	*f = *state;
	unsigned char	 want[PIN_DIGEST_LEN];
	struct pin	 p;

	pin_of_key(f->rsa_key, want);
	assert_true(pin_from_cert(f->rsa_leaf, &p));
	assert_memory_equal(p.digest, want, PIN_DIGEST_LEN);
}

static void
test_pin_of_a_cert_differs_from_the_pin_of_another_key(void **state)
{
	struct fixture	*f = *state;
	struct pin	 a, b;

	assert_true(pin_from_cert(f->ec_root, &a));
	assert_true(pin_from_cert(f->rsa_leaf, &b));
	assert_false(pin_equal(&a, &b));
}

static void
test_pin_of_a_cert_equals_the_openssl_cli_pipeline(void **state)
{
	struct fixture	*f = *state;
	X509		*certs[2];
	char		*path, text[PIN_TEXT_MAX], cli[128], want[160];
	struct pin	 p;
	size_t		 i;

	if (system("openssl version >/dev/null 2>&1") != 0)
		skip();
	certs[0] = f->ec_root;
	certs[1] = f->rsa_leaf;
	for (i = 0; i < 2; i++) {
		path = testpki_write_cert(f->dir, i == 0 ? "ec.pem" : "rsa.pem",
		    certs[i]);
		assert_true(pin_by_openssl_cli(path, cli, sizeof(cli)));
		snprintf(want, sizeof(want), "sha256/%s", cli);
		assert_true(pin_from_cert(certs[i], &p));
		pin_format(&p, text, sizeof(text));
		assert_string_equal(text, want);
		free(path);
	}
}

static void
test_pin_from_cert_refuses_null(void **state)
{
	struct pin	 p;

	assert_false(pin_from_cert(NULL, &p));
}

static void
test_pin_equal_is_true_for_the_same_digest(void **state)
{
	struct pin	 a, b;

	memcpy(a.digest, abc_digest, PIN_DIGEST_LEN);
	memcpy(b.digest, abc_digest, PIN_DIGEST_LEN);
	assert_true(pin_equal(&a, &b));
}

static void
test_pin_equal_detects_a_difference_in_any_byte(void **state)
{
	struct pin	 a, b;
	size_t		 i;

	memcpy(a.digest, abc_digest, PIN_DIGEST_LEN);
	for (i = 0; i < PIN_DIGEST_LEN; i++) {
		memcpy(b.digest, abc_digest, PIN_DIGEST_LEN);
		b.digest[i] ^= 0x80;
		if (pin_equal(&a, &b))
			fail_msg("a difference in byte %zu was missed", i);
		b.digest[i] ^= 0x81;
		if (pin_equal(&a, &b))
			fail_msg("a difference in byte %zu was missed", i);
	}
}

static void
test_certfile_loads_every_pem_certificate_in_order(void **state)
{
	struct fixture	*f = *state;
	STACK_OF(X509)	*s, *got;
	char		*path, err[256];

	s = testpki_stack(f->rsa_leaf, f->ec_root, NULL);
	path = testpki_write_certs(f->dir, "bundle.pem", s);
	got = certfile_load(path, true, err, sizeof(err));
	assert_non_null(got);
	assert_int_equal(sk_X509_num(got), 2);
	assert_int_equal(X509_cmp(sk_X509_value(got, 0), f->rsa_leaf), 0);
	assert_int_equal(X509_cmp(sk_X509_value(got, 1), f->ec_root), 0);
	sk_X509_pop_free(got, X509_free);
	testpki_stack_free(s);
	free(path);
}

static void
test_certfile_skips_keys_in_a_pem_file(void **state)
{
	struct fixture	*f = *state;
	STACK_OF(X509)	*got;
	FILE		*out, *in;
	char		*key, *cert, *both, err[256], buf[4096];
	size_t		 n;

	key = testpki_write_key(f->dir, "k.pem", f->ec_key);
	cert = testpki_write_cert(f->dir, "c.pem", f->ec_root);
	both = xasprintf("%s/key-and-cert.pem", f->dir);
	assert_non_null(out = fopen(both, "w"));
	assert_non_null(in = fopen(key, "r"));
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_non_null(in = fopen(cert, "r"));
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);

	got = certfile_load(both, true, err, sizeof(err));
	assert_non_null(got);
	assert_int_equal(sk_X509_num(got), 1);
	assert_int_equal(X509_cmp(sk_X509_value(got, 0), f->ec_root), 0);
	sk_X509_pop_free(got, X509_free);
	free(key);
	free(cert);
	free(both);
}

static void
test_certfile_loads_a_der_certificate(void **state)
{
	struct fixture	*f = *state;
	STACK_OF(X509)	*got;
	char		*path, err[256];

	path = testpki_write_der(f->dir, "leaf.der", f->rsa_leaf);
	got = certfile_load(path, true, err, sizeof(err));
	assert_non_null(got);
	assert_int_equal(sk_X509_num(got), 1);
	assert_int_equal(X509_cmp(sk_X509_value(got, 0), f->rsa_leaf), 0);
	sk_X509_pop_free(got, X509_free);
	free(path);
}

static void
test_certfile_says_no_certificate_found_in_a_key_file(void **state)
{
	struct fixture	*f = *state;
	char		*path, err[256], want[512];

	path = testpki_write_key(f->dir, "only-key.pem", f->ec_key);
	assert_null(certfile_load(path, true, err, sizeof(err)));
	snprintf(want, sizeof(want), "no certificate found in %s", path);
	assert_string_equal(err, want);
	free(path);
}

static void
test_certfile_says_why_a_file_cannot_be_opened(void **state)
{
	struct fixture	*f = *state;
	char		*path, err[256];

	path = xasprintf("%s/missing.pem", f->dir);
	assert_null(certfile_load(path, true, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot open"));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file or directory"));
	free(path);
}

static void
test_certfile_refuses_a_corrupt_pem_certificate(void **state)
{
	struct fixture	*f = *state;
	FILE		*fp;
	char		*path, err[256];

	path = xasprintf("%s/corrupt.pem", f->dir);
	assert_non_null(fp = fopen(path, "w"));
	fputs("-----BEGIN CERTIFICATE-----\nMIIBbm90IGEgY2VydA==\n"
	    "-----END CERTIFICATE-----\n", fp);
	assert_int_equal(fclose(fp), 0);
	assert_null(certfile_load(path, true, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "bad certificate"));
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pin_parses_the_sha256_form),
		cmocka_unit_test(test_pin_parses_the_rfc7469_form),
		cmocka_unit_test(test_pin_format_gives_back_the_parsed_text),
		cmocka_unit_test(
		    test_pin_format_of_rfc7469_form_is_the_sha256_form),
		cmocka_unit_test(test_pin_rejects_sha1_pins),
		cmocka_unit_test(test_pin_rejects_other_algorithms),
		cmocka_unit_test(test_pin_rejects_text_that_is_not_a_pin),
		cmocka_unit_test(test_pin_rejects_bad_base64_characters),
		cmocka_unit_test(test_pin_rejects_missing_padding),
		cmocka_unit_test(test_pin_rejects_padding_in_the_middle),
		cmocka_unit_test(test_pin_rejects_digest_of_31_bytes),
		cmocka_unit_test(test_pin_rejects_digest_of_33_bytes),
		cmocka_unit_test(test_pin_rejects_a_longer_digest),
		cmocka_unit_test(test_pin_rejects_trailing_junk),
		cmocka_unit_test(
		    test_pin_parse_scoped_reads_leaf_and_ca_in_both_forms),
		cmocka_unit_test(
		    test_pin_rejects_a_scope_where_none_is_allowed),
		cmocka_unit_test(test_pin_scope_allows_only_its_depths),
		cmocka_unit_test(test_pin_rejects_rfc7469_form_without_quotes),
		cmocka_unit_test(
		    test_pin_ignores_the_spare_bits_of_the_last_base64_group),
		cmocka_unit_test(
		    test_pin_of_an_ec_cert_is_the_sha256_of_its_spki),
		cmocka_unit_test(
		    test_pin_of_an_rsa_cert_is_the_sha256_of_its_spki),
		cmocka_unit_test(
		    test_pin_of_a_cert_differs_from_the_pin_of_another_key),
		cmocka_unit_test(
		    test_pin_of_a_cert_equals_the_openssl_cli_pipeline),
		cmocka_unit_test(test_pin_from_cert_refuses_null),
		cmocka_unit_test(test_pin_equal_is_true_for_the_same_digest),
		cmocka_unit_test(
		    test_pin_equal_detects_a_difference_in_any_byte),
		cmocka_unit_test(
		    test_certfile_loads_every_pem_certificate_in_order),
		cmocka_unit_test(test_certfile_skips_keys_in_a_pem_file),
		cmocka_unit_test(test_certfile_loads_a_der_certificate),
		cmocka_unit_test(
		    test_certfile_says_no_certificate_found_in_a_key_file),
		cmocka_unit_test(
		    test_certfile_says_why_a_file_cannot_be_opened),
		cmocka_unit_test(
		    test_certfile_refuses_a_corrupt_pem_certificate),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

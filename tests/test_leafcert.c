/*
 * Tests of forged leaf certificates: they verify against the CA for their
 * one host name only, carry the promised extensions and validity, pair with
 * the shared leaf key in a real handshake, and the LRU cache behaves.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "leafcert.h"
#include "testpki.h"

#define DAY	(24 * 60 * 60)

/* Two CAs in a scratch directory, shared by every test. */
struct fixture {
	char		 dir[64];
	struct ca	*ca;
	struct ca	*other;
};

static struct ca *
make_ca(const char *dir, const char *name)
{
	struct ca	*ca;
	char		 cert[128], key[128], err[512] = "";
	bool		 created;

	snprintf(cert, sizeof(cert), "%s/%s.pem", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	ca = ca_load_or_create(cert, key, &created, err, sizeof(err));
	if (ca == NULL)
		fail_msg("%s: %s", name, err);
	return ca;
}

/*
 * A CA whose certificate expires in `until` seconds, with a subject key
 * identifier or not, loaded from files.
 */
static struct ca *
make_custom_ca(const char *dir, long until, bool ski)
{
	struct ca	*ca;
	EVP_PKEY	*key;
	X509		*cert;
	X509_EXTENSION	*ext;
	X509V3_CTX	 v3;
	FILE		*fp;
	char		 cpath[128], kpath[128], err[512] = "";
	bool		 created;

	key = EVP_EC_gen("P-256");
	cert = X509_new();
	assert_non_null(key);
	assert_non_null(cert);
	X509_set_version(cert, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN",
	    MBSTRING_ASC, (const unsigned char *)"short-lived", -1, -1, 0);
	X509_set_issuer_name(cert, X509_get_subject_name(cert));
	X509_gmtime_adj(X509_getm_notBefore(cert), -DAY);
	X509_gmtime_adj(X509_getm_notAfter(cert), until);
	X509_set_pubkey(cert, key);
	X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
	    "critical,CA:TRUE");
	X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	if (ski) {
		ext = X509V3_EXT_conf_nid(NULL, &v3,
		    NID_subject_key_identifier, "hash");
		X509_add_ext(cert, ext, -1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(cert, key, EVP_sha256()) > 0);

	snprintf(cpath, sizeof(cpath), "%s/short-%ld-%d.pem", dir, until, ski);
	snprintf(kpath, sizeof(kpath), "%s/short-%ld-%d.key", dir, until, ski);
	fp = fopen(kpath, "w");
	assert_non_null(fp);
	/* The CA key must be private to its owner, or it is refused. */
	assert_int_equal(fchmod(fileno(fp), 0600), 0);
	PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
	fp = fopen(cpath, "w");
	assert_non_null(fp);
	PEM_write_X509(fp, cert);
	fclose(fp);
	X509_free(cert);
	EVP_PKEY_free(key);

	ca = ca_load_or_create(cpath, kpath, &created, err, sizeof(err));
	if (ca == NULL)
		fail_msg("short-lived CA: %s", err);
	return ca;
}

static struct ca *
make_short_lived_ca(const char *dir, long until)
{
	return make_custom_ca(dir, until, true);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
setup_cas(void **state)
{
	struct fixture	*fx;

	fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	strcpy(fx->dir, "/tmp/pinproxy-test-leafcert.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	fx->ca = make_ca(fx->dir, "ca");
	fx->other = make_ca(fx->dir, "other");
	*state = fx;
	return 0;
}

static int
teardown_cas(void **state)
{
	struct fixture	*fx = *state;

	ca_unref(fx->ca);
	ca_unref(fx->other);
	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

static struct leafcert_cache *
new_cache(size_t capacity)
{
	struct leafcert_cache	*lc;
	char			 err[256] = "";

	lc = leafcert_cache_new(capacity, err, sizeof(err));
	if (lc == NULL)
		fail_msg("leafcert_cache_new: %s", err);
	return lc;
}

/*
 * Verify leaf against ca as a TLS server certificate for host (a name, or
 * an IP literal when ip is set); returns the verification error.
 */
static int
verify(struct ca *ca, X509 *leaf, const char *host, bool ip)
{
	X509_STORE	*store;
	X509_STORE_CTX	*ctx;
	X509_VERIFY_PARAM *param;
	int		 rc, error;

	store = X509_STORE_new();
	ctx = X509_STORE_CTX_new();
	assert_non_null(store);
	assert_non_null(ctx);
	assert_int_equal(X509_STORE_add_cert(store, ca_cert(ca)), 1);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	param = X509_STORE_CTX_get0_param(ctx);
	if (ip)
		assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(param, host), 1);
	else
		assert_int_equal(X509_VERIFY_PARAM_set1_host(param, host, 0),
		    1);
	rc = X509_verify_cert(ctx);
	error = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	if (rc == 1)
		assert_int_equal(error, X509_V_OK);
	else
		assert_int_not_equal(error, X509_V_OK);
	return error;
}

/* The subjectAltName of cert, checked to hold exactly one entry. */
static GENERAL_NAMES *
sans(X509 *cert)
{
	GENERAL_NAMES	*names;

	names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	assert_non_null(names);
	assert_int_equal(sk_GENERAL_NAME_num(names), 1);
	return names;
}

static time_t
asn1_time(const ASN1_TIME *t)
{
	struct tm	 tm;

	assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
	return timegm(&tm);
}

/*
 * A CA certificate without a subject key identifier (RFC 5280 wants one,
 * but not every CA has it) still forges leaves that verify.
 */
static void
test_leafcert_forges_under_a_ca_without_a_key_identifier(void **state)
{
	struct fixture		*fx = *state;
	struct leafcert_cache	*lc = new_cache(16);
	struct ca		*ca = make_custom_ca(fx->dir, 400 * DAY, false);
	X509			*leaf;

	leaf = leafcert_get(lc, ca, "api.example.com");
	assert_non_null(leaf);
	assert_int_equal(verify(ca, leaf, "api.example.com", false),
	    X509_V_OK);
	X509_free(leaf);
	leafcert_cache_free(lc);
	ca_unref(ca);
}

static void
test_leafcert_verifies_against_the_ca_for_its_host_only(void **state)
{
	struct fixture		*fx = *state;
	struct leafcert_cache	*lc = new_cache(16);
	X509			*leaf;

	leaf = leafcert_get(lc, fx->ca, "api.example.com");
	assert_non_null(leaf);
	assert_int_equal(verify(fx->ca, leaf, "api.example.com", false),
	    X509_V_OK);
	assert_int_equal(verify(fx->ca, leaf, "other.example.com", false),
	    X509_V_ERR_HOSTNAME_MISMATCH);
	assert_int_equal(verify(fx->ca, leaf, "www.api.example.com", false),
	    X509_V_ERR_HOSTNAME_MISMATCH);
	assert_int_not_equal(verify(fx->other, leaf, "api.example.com",
	    false), X509_V_OK);
	X509_free(leaf);
	leafcert_cache_free(lc);
}

static void
test_leafcert_has_exactly_one_dns_san_and_the_host_as_cn(void **state)
{
	struct fixture		*fx = *state;
	struct leafcert_cache	*lc = new_cache(16);
	GENERAL_NAMES		*names;
	GENERAL_NAME		*gn;
	X509			*leaf;
	char			 cn[256];

	leaf = leafcert_get(lc, fx->ca, "API.Example.COM.");
	assert_non_null(leaf);
	names = sans(leaf);
	gn = sk_GENERAL_NAME_value(names, 0);
	assert_int_equal(gn->type, GEN_DNS);
	assert_string_equal((const char *)ASN1_STRING_get0_data(gn->d.dNSName),
	    "api.example.com");
	GENERAL_NAMES_free(names);
	X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName,
	    cn, sizeof(cn));
	assert_string_equal(cn, "api.example.com");
	X509_free(leaf);
	leafcert_cache_free(lc);
}

static void
test_leafcert_gives_ip_literals_an_ip_san(void **state)
{
	static const unsigned char v4[] = { 93, 184, 216, 34 };
	struct fixture		*fx = *state;
	struct leafcert_cache	*lc = new_cache(16);
	GENERAL_NAMES		*names;
	GENERAL_NAME		*gn;
	X509			*leaf;

	leaf = leafcert_get(lc, fx->ca, "93.184.216.34");
	assert_non_null(leaf);
	names = sans(leaf);
	gn = sk_GENERAL_NAME_value(names, 0);
	assert_int_equal(gn->type, GEN_IPADD);
	assert_int_equal(ASN1_STRING_length(gn->d.iPAddress), 4);
	assert_memory_equal(ASN1_STRING_get0_data(gn->d.iPAddress), v4, 4);
	GENERAL_NAMES_free(names);
	assert_int_equal(verify(fx->ca, leaf, "93.184.216.34", true),
	    X509_V_OK);
	assert_int_equal(verify(fx->ca, leaf, "93.184.216.35", true),
	    X509_V_ERR_IP_ADDRESS_MISMATCH);
	X509_free(leaf);

	leaf = leafcert_get(lc, fx->ca, "2001:db8::1");
	assert_non_null(leaf);
	names = sans(leaf);
	gn = sk_GENERAL_NAME_value(names, 0);
	assert_int_equal(gn->type, GEN_IPADD);
	assert_int_equal(ASN1_STRING_length(gn->d.iPAddress), 16);
	GENERAL_NAMES_free(names);
	assert_int_equal(verify(fx->ca, leaf, "2001:db8::1", true), X509_V_OK);
	X509_free(leaf);
	leafcert_cache_free(lc);
}

static void
test_leafcert_rejects_names_a_certificate_cannot_carry(void **state)
{
	static const char *const bad[] = {
		"", ".", "a b", "bad/host", "a..b", ".a", "[::1]", "a:b",
		"host\n", "caf\xc3\xa9.example"
	};
	struct fixture		*fx = *state;
	struct leafcert_cache	*lc = new_cache(16);
	struct leafcert_stats	 st;
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (leafcert_get(lc, fx->ca, bad[i]) != NULL)
			fail_msg("\"%s\" accepted", bad[i]);
	}
	leafcert_cache_stats(lc, &st);
	assert_int_equal(st.entries, 0);
	leafcert_cache_free(lc);
}

static void
test_leafcert_truncates_a_long_common_name_but_not_the_san(void **state)
{
	struct fixture		*fx = *state;
	struct leafcert_cache	*lc = new_cache(16);
	GENERAL_NAMES		*names;
	X509			*leaf;
	char			 host[128], cn[256];

	memset(host, 'a', 60);
	strcpy(host + 60, ".bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.example.com");
	leaf = leafcert_get(lc, fx->ca, host);
	assert_non_null(leaf);
	X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName,
	    cn, sizeof(cn));
	assert_int_equal(strlen(cn), 64);
	assert_true(strncmp(cn, host, 64) == 0);
	names = sans(leaf);
	assert_string_equal((const char *)ASN1_STRING_get0_data(
	    sk_GENERAL_NAME_value(names, 0)->d.dNSName), host);
	GENERAL_NAMES_free(names);
	assert_int_equal(verify(fx->ca, leaf, host, false), X509_V_OK);
	X509_free(leaf);
	leafcert_cache_free(lc);
}

static void
test_leafcert_carries_the_promised_extensions(void **state)
{
	struct fixture		*fx = *state;
	struct leafcert_cache	*lc = new_cache(16);
	const ASN1_OCTET_STRING	*akid, *skid;
	X509			*leaf;

	leaf = leafcert_get(lc, fx->ca, "api.example.com");
	assert_non_null(leaf);
	assert_int_equal(X509_get_version(leaf), X509_VERSION_3);
	assert_int_equal(X509_check_ca(leaf), 0);
	assert_true((X509_get_extension_flags(leaf) & EXFLAG_BCONS) != 0);
	assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER);
	akid = X509_get0_authority_key_id(leaf);
	skid = X509_get0_subject_key_id(ca_cert(fx->ca));
	assert_non_null(akid);
	assert_int_equal(ASN1_OCTET_STRING_cmp(akid, skid), 0);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(leaf),
	    X509_get_subject_name(ca_cert(fx->ca))), 0);
	assert_int_equal(X509_get_signature_nid(leaf), NID_ecdsa_with_SHA256);
	X509_free(leaf);
	leafcert_cache_free(lc);
}

static void
test_leafcert_validity_starts_a_day_back_and_lasts_90_days(void **state)
{
	struct fixture		*fx = *state;
	struct leafcert_cache	*lc = new_cache(16);
	X509			*leaf;
	time_t			 before, after, nb, na;

	before = time(NULL);
	leaf = leafcert_get(lc, fx->ca, "api.example.com");
	after = time(NULL);
	assert_non_null(leaf);
	nb = asn1_time(X509_get0_notBefore(leaf));
	na = asn1_time(X509_get0_notAfter(leaf));
	assert_true(nb >= before - DAY && nb <= after - DAY);
	assert_true(na >= before + 90 * DAY && na <= after + 90 * DAY);
	assert_true(na <= ca_not_after(fx->ca));
	X509_free(leaf);
	leafcert_cache_free(lc);
}

static void
test_leafcert_validity_ends_with_a_short_lived_ca(void **state)
{
	struct fixture		*fx = *state;
	struct leafcert_cache	*lc = new_cache(16);
	struct ca		*ca;
	X509			*leaf;

	ca = make_short_lived_ca(fx->dir, 10 * DAY);
	leaf = leafcert_get(lc, ca, "api.example.com");
	assert_non_null(leaf);
	assert_int_equal(asn1_time(X509_get0_notAfter(leaf)),
	    ca_not_after(ca));
	assert_int_equal(verify(ca, leaf, "api.example.com", false),
	    X509_V_OK);
	X509_free(leaf);
	leafcert_cache_free(lc);
	ca_unref(ca);
}

static void
test_leafcert_serials_are_random_positive_and_distinct(void **state)
{
	struct fixture		*fx = *state;
	struct leafcert_cache	*lc = new_cache(16);
	X509			*a, *b, *c;
	BIGNUM			*bn;

	a = leafcert_get(lc, fx->ca, "a.example.com");
	b = leafcert_get(lc, fx->ca, "b.example.com");
	leafcert_cache_flush(lc);
	c = leafcert_get(lc, fx->ca, "a.example.com");
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a),
	    X509_get0_serialNumber(b)), 0);
	assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a),
	    X509_get0_serialNumber(c)), 0);
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(a), NULL);
	assert_false(BN_is_negative(bn));
	assert_true(BN_num_bits(bn) > 120);
	BN_free(bn);
	X509_free(a);
	X509_free(b);
	X509_free(c);
	leafcert_cache_free(lc);
}

static void
test_leafcert_cache_hit_returns_the_same_certificate(void **state)
{
	struct fixture		*fx = *state;
	struct leafcert_cache	*lc = new_cache(16);
	struct leafcert_stats	 st;
	X509			*a, *b, *c;

	a = leafcert_get(lc, fx->ca, "api.example.com");
	b = leafcert_get(lc, fx->ca, "api.example.com");
	c = leafcert_get(lc, fx->ca, "API.example.com.");
	assert_non_null(a);
	assert_ptr_equal(a, b);
	assert_ptr_equal(a, c);
	leafcert_cache_stats(lc, &st);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.entries, 1);
	X509_free(a);
	X509_free(b);
	X509_free(c);
	leafcert_cache_free(lc);
}

static void
test_leafcert_cache_evicts_the_least_recently_used(void **state)
{
	static const char *const hosts[] = {
		"a.example", "b.example", "c.example", "d.example"
	};
	struct fixture		*fx = *state;
	struct leafcert_cache	*lc = new_cache(3);
	struct leafcert_stats	 st;
	X509			*held[4], *again;
	size_t			 i;

	for (i = 0; i < 3; i++)
		held[i] = leafcert_get(lc, fx->ca, hosts[i]);
	/* Touch a, so that b is now the least recently used. */
	again = leafcert_get(lc, fx->ca, hosts[0]);
	assert_ptr_equal(again, held[0]);
	X509_free(again);
	held[3] = leafcert_get(lc, fx->ca, hosts[3]);

	leafcert_cache_stats(lc, &st);
	assert_int_equal(st.entries, 3);
	assert_int_equal(st.evictions, 1);
	assert_int_equal(st.misses, 4);

	for (i = 0; i < 4; i++) {
		if (i == 1)
			continue;
		again = leafcert_get(lc, fx->ca, hosts[i]);
		assert_ptr_equal(again, held[i]);
		X509_free(again);
	}
	again = leafcert_get(lc, fx->ca, hosts[1]);
	assert_non_null(again);
	assert_ptr_not_equal(again, held[1]);
	X509_free(again);
	leafcert_cache_stats(lc, &st);
	assert_int_equal(st.misses, 5);
	assert_int_equal(st.hits, 4);
	assert_int_equal(st.evictions, 2);

	for (i = 0; i < 4; i++)
		X509_free(held[i]);
	leafcert_cache_free(lc);
}

static void
test_leafcert_cache_misses_for_another_ca(void **state)
{
	struct fixture		*fx = *state;
	struct leafcert_cache	*lc = new_cache(16);
	struct leafcert_stats	 st;
	X509			*a, *b;

	a = leafcert_get(lc, fx->ca, "api.example.com");
	b = leafcert_get(lc, fx->other, "api.example.com");
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(b),
	    X509_get_subject_name(ca_cert(fx->other))), 0);
	assert_int_equal(verify(fx->other, b, "api.example.com", false),
	    X509_V_OK);
	leafcert_cache_stats(lc, &st);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.hits, 0);
	assert_int_equal(st.entries, 2);
	X509_free(a);
	X509_free(b);
	leafcert_cache_free(lc);
}

static void
test_leafcert_cache_flush_empties_the_cache(void **state)
{
	struct fixture		*fx = *state;
	struct leafcert_cache	*lc = new_cache(16);
	struct leafcert_stats	 st;
	X509			*a, *b;

	a = leafcert_get(lc, fx->ca, "api.example.com");
	leafcert_cache_flush(lc);
	leafcert_cache_stats(lc, &st);
	assert_int_equal(st.entries, 0);
	b = leafcert_get(lc, fx->ca, "api.example.com");
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	leafcert_cache_stats(lc, &st);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.entries, 1);
	X509_free(a);
	X509_free(b);
	leafcert_cache_free(lc);
}

static void
test_leafcert_forges_again_when_the_cached_one_nears_expiry(void **state)
{
	struct fixture		*fx = *state;
	struct leafcert_cache	*lc = new_cache(16);
	struct leafcert_stats	 st;
	struct ca		*ca;
	X509			*a, *b;

	ca = make_short_lived_ca(fx->dir, 3600);
	a = leafcert_get(lc, ca, "api.example.com");
	b = leafcert_get(lc, ca, "api.example.com");
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	leafcert_cache_stats(lc, &st);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.entries, 1);
	X509_free(a);
	X509_free(b);
	leafcert_cache_free(lc);
	ca_unref(ca);
}

static void
test_leafcert_key_is_the_leaf_key_and_not_the_ca_key(void **state)
{
	struct fixture		*fx = *state;
	struct leafcert_cache	*lc = new_cache(16);
	struct leafcert_cache	*lc2 = new_cache(16);
	EVP_PKEY		*key = leafcert_key(lc);
	X509			*leaf;

	assert_non_null(key);
	assert_true(EVP_PKEY_is_a(key, "EC"));
	assert_int_equal(EVP_PKEY_get_bits(key), 256);
	assert_int_not_equal(EVP_PKEY_eq(key,
	    X509_get0_pubkey(ca_cert(fx->ca))), 1);
	assert_int_not_equal(EVP_PKEY_eq(key, leafcert_key(lc2)), 1);
	leaf = leafcert_get(lc, fx->ca, "api.example.com");
	assert_non_null(leaf);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), key), 1);
	assert_int_equal(X509_check_private_key(leaf, key), 1);
	X509_free(leaf);
	leafcert_cache_free(lc);
	leafcert_cache_free(lc2);
}

static void
test_leafcert_serves_a_handshake_the_client_accepts(void **state)
{
	struct fixture		*fx = *state;
	struct leafcert_cache	*lc = new_cache(16);
	SSL_CTX			*cctx, *sctx;
	SSL			*client, *server;
	X509			*leaf;

	sctx = SSL_CTX_new(TLS_server_method());
	cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(sctx);
	assert_non_null(cctx);
	X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), ca_cert(fx->ca));
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);

	server = SSL_new(sctx);
	client = SSL_new(cctx);
	leaf = leafcert_get(lc, fx->ca, "api.example.com");
	assert_non_null(leaf);
	assert_int_equal(SSL_use_certificate(server, leaf), 1);
	X509_free(leaf);
	assert_int_equal(SSL_use_PrivateKey(server, leafcert_key(lc)), 1);
	SSL_set_accept_state(server);
	SSL_set_connect_state(client);
	SSL_set_tlsext_host_name(client, "api.example.com");
	assert_int_equal(SSL_set1_host(client, "api.example.com"), 1);
	if (!testpki_handshake(client, server)) {
		ERR_print_errors_fp(stderr);
		fail_msg("handshake failed: verify result %ld",
		    SSL_get_verify_result(client));
	}
	assert_int_equal(SSL_get_verify_result(client), X509_V_OK);

	SSL_free(client);
	SSL_free(server);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	leafcert_cache_free(lc);
}

#define T(f)	cmocka_unit_test(f)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_leafcert_verifies_against_the_ca_for_its_host_only),
		T(test_leafcert_has_exactly_one_dns_san_and_the_host_as_cn),
		T(test_leafcert_gives_ip_literals_an_ip_san),
		T(test_leafcert_rejects_names_a_certificate_cannot_carry),
		T(test_leafcert_truncates_a_long_common_name_but_not_the_san),
		T(test_leafcert_carries_the_promised_extensions),
		T(test_leafcert_validity_starts_a_day_back_and_lasts_90_days),
		T(test_leafcert_validity_ends_with_a_short_lived_ca),
		T(test_leafcert_forges_under_a_ca_without_a_key_identifier),
		T(test_leafcert_serials_are_random_positive_and_distinct),
		T(test_leafcert_cache_hit_returns_the_same_certificate),
		T(test_leafcert_cache_evicts_the_least_recently_used),
		T(test_leafcert_cache_misses_for_another_ca),
		T(test_leafcert_cache_flush_empties_the_cache),
		T(test_leafcert_forges_again_when_the_cached_one_nears_expiry),
		T(test_leafcert_key_is_the_leaf_key_and_not_the_ca_key),
		T(test_leafcert_serves_a_handshake_the_client_accepts),
	};

	return cmocka_run_group_tests(tests, setup_cas, teardown_cas);
}

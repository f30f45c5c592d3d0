/*
 * Tests of the held flight: a real OpenSSL client given what may go early
 * verifies the server's certificate and cannot finish; given the alert
 * that replaces the rest (sealed under the server's handshake traffic
 * secret in TLS 1.3, with each AEAD suite; in the clear in TLS 1.2) it
 * fails with that alert. The key and IV derivation against RFC 8448, and
 * the cut on made-up records.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testpki.h"
#include "tlsflight.h"

#define ALERT_ACCESS_DENIED	49

static unsigned char
unhex1(char c)
{
	return (unsigned char)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
}

static size_t
unhex(const char *s, unsigned char *out)
{
	size_t	 n = 0;

	for (; s[0] != '\0' && s[1] != '\0'; s += 2)
		out[n++] = (unsigned char)(unhex1(s[0]) << 4 | unhex1(s[1]));
	return n;
}

/* RFC 8448 §3: the server's handshake traffic secret, key and IV. */
static void
test_expand_label_rfc8448(void **state)
{
	unsigned char	 secret[32], want_key[16], want_iv[12], key[16], iv[12];

	(void)state;
	unhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38",
	    secret);
	unhex("3fce516009c21727d0f2e4e86ee403bc", want_key);
	unhex("5d313eb2671276ee13000b30", want_iv);
	assert_true(tlsflight_expand_label(EVP_sha256(), secret,
	    sizeof(secret), "key", key, sizeof(key)));
	assert_true(tlsflight_expand_label(EVP_sha256(), secret,
	    sizeof(secret), "iv", iv, sizeof(iv)));
	assert_memory_equal(key, want_key, sizeof(key));
	assert_memory_equal(iv, want_iv, sizeof(iv));
}

/* A record of type and len bytes at p; its end. */
static unsigned char *
record(unsigned char *p, unsigned char type, size_t len)
{
	p[0] = type;
	p[1] = 0x03;
	p[2] = 0x03;
	p[3] = (unsigned char)(len >> 8);
	p[4] = (unsigned char)len;
	memset(p + 5, 0xab, len);
	return p + 5 + len;
}

static void
test_early_cut(void **state)
{
	unsigned char	 buf[1024], *p = buf, *sh, *ccs, *fin;
	unsigned int	 sealed;

	(void)state;
	/* TLS 1.3: ServerHello, CCS, EE, Certificate, CV, Finished. */
	p = record(p, 22, 90);
	ccs = p;
	p = record(p, 20, 1);
	p = record(p, 23, 30);
	p = record(p, 23, 300);
	p = record(p, 23, 80);
	fin = p;
	p = record(p, 23, 52);
	assert_int_equal(tlsflight_early(buf, (size_t)(p - buf), true,
	    &sealed), fin - buf);
	assert_int_equal(sealed, 3);
	/* The same bytes read as TLS 1.2: nothing from the CCS on. */
	assert_int_equal(tlsflight_early(buf, (size_t)(p - buf), false,
	    &sealed), ccs - buf);
	assert_int_equal(sealed, 0);
	/* A record not whole yet stays, the whole ones before it go. */
	assert_int_equal(tlsflight_early(buf, (size_t)(fin - buf) + 9, true,
	    &sealed), fin - buf);
	assert_int_equal(sealed, 3);
	assert_int_equal(tlsflight_early(buf, (size_t)(fin - buf) + 3, true,
	    &sealed), fin - buf);
	/* One record alone stays; nothing is nothing. */
	sh = buf;
	assert_int_equal(tlsflight_early(sh, 95, true, &sealed), 0);
	assert_int_equal(tlsflight_early(sh, 0, true, &sealed), 0);
	/* Not records: nothing goes. */
	buf[0] = 0x16 + 0x40;
	assert_int_equal(tlsflight_early(buf, (size_t)(p - buf), true,
	    &sealed), 0);
	buf[0] = 22;
	buf[1] = 0x02;
	assert_int_equal(tlsflight_early(buf, (size_t)(p - buf), true,
	    &sealed), 0);
	buf[1] = 0x03;
	buf[3] = 0x50;
	assert_int_equal(tlsflight_early(buf, (size_t)(p - buf), true,
	    &sealed), 0);
}

static void
test_plain(void **state)
{
	unsigned char	 rec[8];
	const unsigned char want[] = { 21, 3, 3, 0, 2, 2, 40 };

	(void)state;
	assert_int_equal(tlsflight_plain(40, rec), sizeof(want));
	assert_memory_equal(rec, want, sizeof(want));
}

/* The server's handshake traffic secret, from OpenSSL's key log. */
static unsigned char	 hs_secret[TLSFLIGHT_SECRET_MAX];
static size_t		 hs_secret_len;
static int		 verified;

static void
keylog(const SSL *ssl, const char *line)
{
	const char	*label = "SERVER_HANDSHAKE_TRAFFIC_SECRET ", *sp;

	(void)ssl;
	if (strncmp(line, label, strlen(label)) != 0)
		return;
	sp = strrchr(line, ' ');
	assert_non_null(sp);
	assert_true(strlen(sp + 1) <= 2 * TLSFLIGHT_SECRET_MAX);
	hs_secret_len = unhex(sp + 1, hs_secret);
}

static int
verify_cb(int ok, X509_STORE_CTX *ctx)
{
	(void)ctx;
	verified++;
	return ok;
}

/* Move what w holds to r; the bytes are returned (the caller frees). */
static unsigned char *
take(BIO *w, size_t *len)
{
	unsigned char	*out;
	char		*p;
	long		 n = BIO_get_mem_data(w, &p);

	out = malloc((size_t)n + 1);
	assert_non_null(out);
	memcpy(out, p, (size_t)n);
	*len = (size_t)n;
	(void)BIO_reset(w);
	return out;
}

/*
 * A client and a server in memory with version and (TLS 1.3) suite: the
 * server's flight is cut, the client gets the early part, then the alert.
 */
static void
refused(int version, const char *suite)
{
	struct testpki_chain	 c;
	SSL_CTX			*sctx, *cctx;
	SSL			*s, *cl;
	BIO			*c2s, *s2c;
	X509_STORE		*store;
	unsigned char		*flight, rec[TLSFLIGHT_RECORD_MAX];
	size_t			 len, early, n;
	unsigned int		 sealed;
	unsigned long		 e;

	testpki_chain_make(&c, "held", "held.test");
	sctx = SSL_CTX_new(TLS_server_method());
	cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(sctx);
	assert_non_null(cctx);
	SSL_CTX_set_min_proto_version(sctx, version);
	SSL_CTX_set_max_proto_version(sctx, version);
	if (suite != NULL)
		assert_int_equal(SSL_CTX_set_ciphersuites(cctx, suite), 1);
	SSL_CTX_set_keylog_callback(sctx, keylog);
	assert_int_equal(SSL_CTX_use_certificate(sctx, c.leaf), 1);
	assert_int_equal(SSL_CTX_add1_chain_cert(sctx, c.ca), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(sctx, c.leaf_key), 1);
	store = SSL_CTX_get_cert_store(cctx);
	assert_int_equal(X509_STORE_add_cert(store, c.root), 1);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, verify_cb);

	s = SSL_new(sctx);
	cl = SSL_new(cctx);
	c2s = BIO_new(BIO_s_mem());
	s2c = BIO_new(BIO_s_mem());
	BIO_up_ref(c2s);
	BIO_up_ref(s2c);
	SSL_set_bio(cl, s2c, c2s);
	SSL_set_bio(s, c2s, s2c);
	assert_int_equal(SSL_set_tlsext_host_name(cl, "held.test"), 1);
	assert_int_equal(SSL_set1_host(cl, "held.test"), 1);
	hs_secret_len = 0;
	verified = 0;

	/* The hello, and the server's flight, which the client must not see. */
	assert_true(SSL_connect(cl) <= 0);
	assert_true(SSL_accept(s) <= 0);
	assert_int_equal(SSL_get_error(s, -1), SSL_ERROR_WANT_READ);
	flight = take(s2c, &len);
	early = tlsflight_early(flight, len, version == TLS1_3_VERSION,
	    &sealed);
	assert_true(early > 0 && early < len);
	assert_int_equal(BIO_write(s2c, flight, (int)early), (int)early);

	/* The client verifies the certificate, and waits. */
	assert_true(SSL_connect(cl) <= 0);
	assert_int_equal(SSL_get_error(cl, -1), SSL_ERROR_WANT_READ);
	assert_true(verified > 0);
	assert_false(SSL_is_init_finished(cl));

	if (version == TLS1_3_VERSION) {
		assert_true(sealed > 0);
		assert_true(hs_secret_len > 0);
		n = tlsflight_sealed(SSL_get_current_cipher(s), hs_secret,
		    hs_secret_len, sealed, ALERT_ACCESS_DENIED, rec);
	} else {
		assert_int_equal(sealed, 0);
		n = tlsflight_plain(ALERT_ACCESS_DENIED, rec);
	}
	assert_true(n > 0);
	assert_int_equal(BIO_write(s2c, rec, (int)n), (int)n);
	ERR_clear_error();
	assert_true(SSL_connect(cl) <= 0);
	assert_int_equal(SSL_get_error(cl, -1), SSL_ERROR_SSL);
	e = ERR_peek_error();
	assert_int_equal(ERR_GET_REASON(e),
	    SSL_AD_REASON_OFFSET + ALERT_ACCESS_DENIED);
	ERR_clear_error();

	free(flight);
	SSL_free(cl);
	SSL_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	testpki_chain_free(&c);
}

static void
test_tls13_aes128(void **state)
{
	(void)state;
	refused(TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256");
}

static void
test_tls13_aes256(void **state)
{
	(void)state;
	refused(TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384");
}

static void
test_tls13_chacha(void **state)
{
	(void)state;
	refused(TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256");
}

static void
test_tls12(void **state)
{
	(void)state;
	refused(TLS1_2_VERSION, NULL);
}

/* A suite this cannot seal with (AES-CCM, none): nothing, no crash. */
static void
test_sealed_unsupported(void **state)
{
	const unsigned char	 ccm[2] = { 0x13, 0x04 }, gcm[2] = { 0x13, 0x01 };
	unsigned char		 rec[TLSFLIGHT_RECORD_MAX], secret[32] = { 0 };
	SSL_CTX			*ctx = SSL_CTX_new(TLS_method());
	SSL			*ssl;
	const SSL_CIPHER	*c;

	(void)state;
	assert_non_null(ctx);
	ssl = SSL_new(ctx);
	assert_non_null(ssl);
	assert_false(tlsflight_can_seal(NULL));
	assert_int_equal(tlsflight_sealed(NULL, secret, sizeof(secret), 0,
	    40, rec), 0);
	c = SSL_CIPHER_find(ssl, ccm);
	assert_non_null(c);
	assert_false(tlsflight_can_seal(c));
	assert_int_equal(tlsflight_sealed(c, secret, sizeof(secret), 0, 40,
	    rec), 0);
	c = SSL_CIPHER_find(ssl, gcm);
	assert_non_null(c);
	assert_true(tlsflight_can_seal(c));
	assert_int_equal(tlsflight_sealed(c, secret, sizeof(secret), 0, 40,
	    rec), TLSFLIGHT_RECORD_MAX);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand_label_rfc8448),
		cmocka_unit_test(test_early_cut),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_tls13_aes128),
		cmocka_unit_test(test_tls13_aes256),
		cmocka_unit_test(test_tls13_chacha),
		cmocka_unit_test(test_tls12),
		cmocka_unit_test(test_sealed_unsupported),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
